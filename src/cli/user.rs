//! `dbkeep user` and `dbkeep token`: who may use the web admin and the API.

use std::io::{BufRead, IsTerminal};
use std::path::Path;
use std::process::ExitCode;

use dbkeep::accounts::{self, Accounts, Databases, Grant, NewToken, Role};
use dbkeep::audit::{Action, Entry, Outcome};

use super::{UsageError, open_runner};

/// What a user or token may do: `--role` and `--databases`.
#[derive(Debug, clap::Args)]
struct GrantArgs {
    /// viewer (sees status and history), operator (also backs up, verifies, downloads) or
    /// admin (also restores, pins, prunes, manages users and tokens)
    #[arg(long, value_parser = parse_role)]
    role: Option<Role>,
    /// Only these databases: names or patterns, comma-separated (`app,shop,tenants-*`);
    /// every database when left out
    #[arg(long, value_parser = parse_databases)]
    databases: Option<Databases>,
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
}

fn parse_databases(s: &str) -> Result<Databases, String> {
    Databases::parse(s)
}

impl GrantArgs {
    fn grant(&self, default: Role) -> Grant {
        Grant {
            role: self.role.unwrap_or(default),
            databases: self.databases.clone().unwrap_or_default(),
        }
    }
}

/// Manage web admin users.
#[derive(Debug, clap::Args)]
pub struct UserArgs {
    #[command(subcommand)]
    command: UserCommand,
}

#[derive(Debug, clap::Subcommand)]
enum UserCommand {
    /// Add a user; the password is asked for (or read from standard input's first line).
    /// The first user is an admin; later ones are viewers unless `--role` says otherwise
    Add {
        name: String,
        #[command(flatten)]
        grant: GrantArgs,
    },
    /// Change what a user may do (`--role`, `--databases`) and end their sessions
    SetRole {
        name: String,
        #[command(flatten)]
        grant: GrantArgs,
    },
    /// Change a user's password and end their sessions
    Passwd { name: String },
    /// Delete a user and end their sessions
    Delete { name: String },
    /// List users: name, role, databases, when added
    List,
}

/// Manage API tokens.
#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Debug, clap::Subcommand)]
enum TokenCommand {
    /// Create a token (an operator over every database unless told); it is printed once,
    /// alone on the last line
    Create {
        name: String,
        #[command(flatten)]
        grant: GrantArgs,
        /// Stop working after this long (`90d`, `12h`); never when left out
        #[arg(long, value_parser = parse_expiry)]
        expires: Option<std::time::Duration>,
    },
    /// Revoke a token
    Revoke { name: String },
    /// List tokens: scope, expiry and last use (never the tokens)
    List,
}

fn parse_expiry(s: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(s)
        .map_err(|e| format!("`{s}` is not a duration like 90d or 12h: {e}"))?;
    if d.is_zero() {
        return Err("a token must live longer than nothing".into());
    }
    Ok(d)
}

/// Runs `f` on the accounts, with the audit log beside them.
fn with_accounts<T>(
    config_path: &Path,
    f: impl FnOnce(&dyn Accounts, &dyn Fn(Entry)) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let runner = open_runner(config_path)?;
    let audit = |entry: Entry| {
        dbkeep::audit::record(runner.catalog(), entry);
    };
    f(runner.accounts(), &audit)
}

/// An act of this command's user on `target`, done.
fn done(action: Action, target: &str) -> Entry {
    super::command_entry(action, target, Outcome::Ok, None)
}

fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c));
    if ok {
        Ok(())
    } else {
        Err(UsageError(format!(
            "`{name}` is not a valid name: use 1 to 64 letters, digits, -, _, . or @"
        ))
        .into())
    }
}

/// A new password: asked twice on a terminal, else the first line of standard input.
fn read_password() -> anyhow::Result<String> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Password again: ")?;
        if first != again {
            return Err(UsageError("the passwords differ; nothing changed".into()).into());
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    dbkeep::web::check_new_password(&password)
        .map_err(|problem| UsageError(format!("{problem}; nothing changed")))?;
    Ok(password)
}

pub fn run_user(config_path: &Path, args: UserArgs) -> anyhow::Result<ExitCode> {
    with_accounts(config_path, |accounts, audit| {
        match args.command {
            UserCommand::Add { name, grant } => {
                check_name(&name)?;
                if accounts.user_by_name(&name)?.is_some() {
                    return Err(UsageError(format!(
                        "user `{name}` exists; change the password with `dbkeep user passwd {name}`"
                    ))
                    .into());
                }
                // The first user must be able to add the others.
                let first = accounts.user_count()? == 0;
                let grant = grant.grant(if first { Role::Admin } else { Role::Viewer });
                let hash = accounts::hash_password(&read_password()?)?;
                accounts.add_user(&name, &hash, &grant, chrono::Utc::now())?;
                audit(done(Action::UserAdd, &name).detail(grant.to_string()));
                let _ = super::render::line(format!("added user {name}: {grant}"));
            }
            UserCommand::SetRole { name, grant: args } => {
                let Some((user, _)) = accounts.user_by_name(&name)? else {
                    return Err(UsageError(format!("no user named `{name}`")).into());
                };
                if args.role.is_none() && args.databases.is_none() {
                    return Err(UsageError(
                        "say what changes: --role viewer|operator|admin and/or --databases LIST"
                            .into(),
                    )
                    .into());
                }
                let grant = Grant {
                    role: args.role.unwrap_or(user.grant.role),
                    databases: args.databases.unwrap_or(user.grant.databases),
                };
                if grant.role != Role::Admin && user.grant.role == Role::Admin {
                    let admins = accounts
                        .users()?
                        .iter()
                        .filter(|u| u.grant.role == Role::Admin)
                        .count();
                    if admins <= 1 {
                        return Err(UsageError(format!(
                            "`{name}` is the only admin; make another user an admin first"
                        ))
                        .into());
                    }
                }
                accounts.set_grant(&name, &grant)?;
                audit(done(Action::UserChange, &name).detail(grant.to_string()));
                let _ =
                    super::render::line(format!("{name} is now {grant}; their sessions are ended"));
            }
            UserCommand::Passwd { name } => {
                if accounts.user_by_name(&name)?.is_none() {
                    return Err(UsageError(format!("no user named `{name}`")).into());
                }
                let hash = accounts::hash_password(&read_password()?)?;
                accounts.set_password(&name, &hash)?;
                audit(done(Action::PasswordChange, &name));
                let _ = super::render::line(format!(
                    "changed the password of {name}; their sessions are ended"
                ));
            }
            UserCommand::List => {
                let users = accounts.users()?;
                if users.is_empty() {
                    let _ =
                        super::render::line("no users yet; add one with `dbkeep user add NAME`");
                }
                for u in users {
                    let _ = super::render::line(format!(
                        "{}  {}  added {}",
                        u.name,
                        u.grant,
                        dbkeep::catalog::format_time(&u.created_at)
                    ));
                }
            }
            UserCommand::Delete { name } => {
                if !accounts.delete_user(&name)? {
                    return Err(UsageError(format!("no user named `{name}`")).into());
                }
                audit(done(Action::UserDelete, &name));
                let _ = super::render::line(format!("deleted user {name}"));
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub fn run_token(config_path: &Path, args: TokenArgs) -> anyhow::Result<ExitCode> {
    with_accounts(config_path, |accounts, audit| {
        match args.command {
            TokenCommand::Create {
                name,
                grant,
                expires,
            } => {
                check_name(&name)?;
                if accounts.tokens()?.iter().any(|t| t.name == name) {
                    return Err(UsageError(format!(
                        "a token named `{name}` exists; revoke it first or pick another name"
                    ))
                    .into());
                }
                let grant = grant.grant(Role::Operator);
                let now = chrono::Utc::now();
                let expires_at = match expires {
                    None => None,
                    Some(d) => Some(
                        chrono::Duration::from_std(d)
                            .ok()
                            .and_then(|d| now.checked_add_signed(d))
                            .ok_or_else(|| {
                                UsageError(format!(
                                    "--expires {} is too far off",
                                    humantime::format_duration(d)
                                ))
                            })?,
                    ),
                };
                let token = format!("dbk_{}", dbkeep::token::random_token()?);
                accounts.add_token(
                    &NewToken {
                        name: &name,
                        token_sha256: &dbkeep::token::token_digest(&token),
                        grant: &grant,
                        expires_at,
                    },
                    now,
                )?;
                let until = expires_at.map_or_else(
                    || "never expires".to_string(),
                    |t| format!("expires {}", dbkeep::catalog::format_time(&t)),
                );
                audit(done(Action::TokenCreate, &name).detail(format!("{grant}; {until}")));
                let _ = super::render::line(format!(
                    "created token {name}: {grant}, {until}; it is shown only now, send it as `Authorization: Bearer TOKEN`:"
                ));
                let _ = super::render::line(token);
            }
            TokenCommand::Revoke { name } => {
                if !accounts.revoke_token(&name)? {
                    return Err(UsageError(format!("no token named `{name}`")).into());
                }
                audit(done(Action::TokenRevoke, &name));
                let _ = super::render::line(format!("revoked token {name}"));
            }
            TokenCommand::List => {
                let now = chrono::Utc::now();
                for t in accounts.tokens()? {
                    let used = t.last_used_at.map_or_else(
                        || "never used".into(),
                        |u| format!("last used {}", dbkeep::catalog::format_time(&u)),
                    );
                    let until = match t.expires_at {
                        None => "never expires".to_string(),
                        Some(e) if e <= now => {
                            format!("EXPIRED {}", dbkeep::catalog::format_time(&e))
                        }
                        Some(e) => format!("expires {}", dbkeep::catalog::format_time(&e)),
                    };
                    let _ = super::render::line(format!(
                        "{}  {}  created {}  {until}  {used}",
                        t.name,
                        t.grant,
                        dbkeep::catalog::format_time(&t.created_at)
                    ));
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
