//! `dbkeep user` and `dbkeep token`: who may use the web admin and the API.

use std::io::{BufRead, IsTerminal};
use std::path::Path;
use std::process::ExitCode;

use dbkeep::accounts::{self, Accounts};

use super::{UsageError, open_runner};

/// Manage web admin users.
#[derive(Debug, clap::Args)]
pub struct UserArgs {
    #[command(subcommand)]
    command: UserCommand,
}

#[derive(Debug, clap::Subcommand)]
enum UserCommand {
    /// Add a user; the password is asked for (or read from standard input's first line)
    Add { name: String },
    /// Change a user's password and end their sessions
    Passwd { name: String },
    /// Delete a user and end their sessions
    Delete { name: String },
    /// List users (names and when they were added)
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
    /// Create a token; it is printed once, alone on the last line
    Create { name: String },
    /// Revoke a token
    Revoke { name: String },
    /// List tokens (names and use, never the tokens)
    List,
}

fn with_accounts<T>(
    config_path: &Path,
    f: impl FnOnce(&dyn Accounts) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let runner = open_runner(config_path)?;
    let accounts = runner.accounts();
    f(accounts)
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
    with_accounts(config_path, |accounts| {
        match args.command {
            UserCommand::Add { name } => {
                check_name(&name)?;
                if accounts.user_by_name(&name)?.is_some() {
                    return Err(UsageError(format!(
                        "user `{name}` exists; change the password with `dbkeep user passwd {name}`"
                    ))
                    .into());
                }
                let hash = accounts::hash_password(&read_password()?)?;
                accounts.add_user(&name, &hash, chrono::Utc::now())?;
                let _ = super::render::line(format!("added user {name}"));
            }
            UserCommand::Passwd { name } => {
                if accounts.user_by_name(&name)?.is_none() {
                    return Err(UsageError(format!("no user named `{name}`")).into());
                }
                let hash = accounts::hash_password(&read_password()?)?;
                accounts.set_password(&name, &hash)?;
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
                for (name, created) in users {
                    let _ = super::render::line(format!(
                        "{name}  added {}",
                        dbkeep::catalog::format_time(&created)
                    ));
                }
            }
            UserCommand::Delete { name } => {
                if !accounts.delete_user(&name)? {
                    return Err(UsageError(format!("no user named `{name}`")).into());
                }
                let _ = super::render::line(format!("deleted user {name}"));
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub fn run_token(config_path: &Path, args: TokenArgs) -> anyhow::Result<ExitCode> {
    with_accounts(config_path, |accounts| {
        match args.command {
            TokenCommand::Create { name } => {
                check_name(&name)?;
                if accounts.tokens()?.iter().any(|t| t.name == name) {
                    return Err(UsageError(format!(
                        "a token named `{name}` exists; revoke it first or pick another name"
                    ))
                    .into());
                }
                let token = format!("dbk_{}", dbkeep::token::random_token()?);
                accounts.add_token(
                    &name,
                    &dbkeep::token::token_digest(&token),
                    chrono::Utc::now(),
                )?;
                let _ = super::render::line(format!(
                    "created token {name}; it is shown only now, send it as `Authorization: Bearer TOKEN`:"
                ));
                let _ = super::render::line(token);
            }
            TokenCommand::Revoke { name } => {
                if !accounts.revoke_token(&name)? {
                    return Err(UsageError(format!("no token named `{name}`")).into());
                }
                let _ = super::render::line(format!("revoked token {name}"));
            }
            TokenCommand::List => {
                for t in accounts.tokens()? {
                    let used = t.last_used_at.map_or_else(
                        || "never used".into(),
                        |u| format!("last used {}", dbkeep::catalog::format_time(&u)),
                    );
                    let _ = super::render::line(format!(
                        "{}  created {}  {used}",
                        t.name,
                        dbkeep::catalog::format_time(&t.created_at)
                    ));
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
