//! `dbkeep restore`: a backup back into a database, after checking its SHA-256.

use std::path::Path;
use std::process::ExitCode;

use dbkeep::config::Target;
use dbkeep::engine::RestoreOptions;

use super::backup::{Bar, Interrupt};
use super::{UsageError, open_runner_with, render};

/// Restore a backup into a SQLite file, a PostgreSQL or a MySQL/MariaDB database.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The backup's id (see `dbkeep list`)
    #[arg(value_name = "ID", required_unless_present_any = ["latest", "server"])]
    id: Option<i64>,

    /// Restore the newest successful backup of --database instead of an id
    #[arg(long, requires = "database", conflicts_with = "id")]
    latest: bool,

    /// The database whose newest backup --latest restores
    #[arg(long, short = 'd', value_name = "NAME")]
    database: Option<String>,

    /// Where to: a SQLite file's path, a postgres:// URL (its password from --password-env or
    /// PGPASSWORD, never in the URL) or a mysql:// URL (--password-env or MYSQL_PWD)
    #[arg(long, value_name = "TARGET", required_unless_present = "server")]
    to: Option<String>,

    #[command(flatten)]
    pub(super) server: super::restore_server::ServerArgs,

    /// Create the PostgreSQL or MySQL database first (a failed load then drops it again)
    #[arg(long)]
    create: bool,

    /// Replace a target that has content (a SQLite file that exists, a PostgreSQL database
    /// with tables: replaced in the same transaction as the load; a MySQL database: its tables
    /// and views dropped before the load, which MySQL cannot undo)
    #[arg(long)]
    force: bool,

    /// Leave out the dump's `ALTER … OWNER TO` statements (onto a server without its roles);
    /// the objects then belong to the restoring user
    #[arg(long)]
    no_owner: bool,

    /// Leave out the dump's GRANT and REVOKE statements
    #[arg(long)]
    no_privileges: bool,

    /// First create the roles stored beside the backup (globals = true) that the target server
    /// lacks; existing roles are never changed
    #[arg(long)]
    with_globals: bool,

    /// Connections that load tables at once when restoring into a PostgreSQL database that
    /// --create creates (schema first, indexes and constraints after, as `pg_restore -j`
    /// does); 1 loads over one connection in one transaction
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=32))]
    jobs: u16,

    /// Restore from the copy at this off-site destination (`[[offsite]] name`)
    #[arg(long, value_name = "NAME")]
    from: Option<String>,

    /// The age identity file (from `age-keygen`) that opens encrypted backups, in place of
    /// the configuration's `identity_file`
    #[arg(long, value_name = "FILE")]
    identity: Option<std::path::PathBuf>,

    /// The environment variable holding the target's PostgreSQL or MySQL password
    #[arg(long, value_name = "NAME")]
    password_env: Option<String>,
}

impl Args {
    /// What the audit log names this restore: from which backup, to where.
    pub(super) fn audited(&self) -> (String, Option<String>) {
        let from = match (self.id, &self.database) {
            (Some(id), _) => format!("backup:{id}"),
            (None, Some(d)) => format!("latest of {d}"),
            (None, None) => "latest".into(),
        };
        if let Some(server) = &self.server.server {
            return self.server.audited(server);
        }
        (
            from,
            Some(format!("to {}", self.to.as_deref().unwrap_or_default())),
        )
    }
}

fn target(args: &Args) -> anyhow::Result<Target> {
    let text = args.to.as_deref().unwrap_or_default();
    let server = ["postgres://", "postgresql://", "mysql://", "mariadb://"];
    if server.iter().any(|s| text.starts_with(s)) {
        let mut target = Target::parse(text, Path::new("."))
            .map_err(|e| UsageError(format!("--to: {}", e.replace("`url`", "the URL"))))?;
        let standard = match target {
            Target::Mysql(_) => "MYSQL_PWD",
            _ => "PGPASSWORD",
        };
        if let Target::Postgres(s) | Target::Mysql(s) = &mut target {
            if s.password.is_some() {
                return Err(UsageError(format!(
                    "--to: put no password in the URL (it would show in the process list); use --password-env NAME or {standard}"
                ))
                .into());
            }
            s.password_env = args.password_env.clone();
        }
        return Ok(target);
    }
    let path = text.strip_prefix("sqlite:").unwrap_or(text);
    if path.is_empty() {
        return Err(
            UsageError("--to: give a SQLite file's path or a postgres:// URL".into()).into(),
        );
    }
    Ok(Target::Sqlite {
        path: std::path::absolute(path)?,
    })
}

/// `e`, with what to do added when the server asked for a password that the restore did not
/// have: where a password goes (never into the URL).
fn with_password_hint(e: dbkeep::Error, target: &Target) -> anyhow::Error {
    let said = e.to_string();
    let (Target::Postgres(server) | Target::Mysql(server)) = target else {
        return e.into();
    };
    let (standard, asked) = match target {
        Target::Mysql(_) => ("MYSQL_PWD", said.contains("(using password: NO)")),
        _ => (
            "PGPASSWORD",
            said.contains("no password supplied")
                || said.contains("password authentication failed"),
        ),
    };
    let given = server.password_env.is_some() || std::env::var_os(standard).is_some();
    match (asked, given) {
        (true, false) => anyhow::anyhow!(
            "{said}\nhint: the server wants a password for this user: put it in an environment variable and name it with --password-env NAME, or set {standard} (never in the URL, where the process list would show it)"
        ),
        (true, true) => anyhow::anyhow!(
            "{said}\nhint: the server refused the password given ({}): check it",
            server
                .password_env
                .as_deref()
                .map_or_else(|| standard.to_string(), |v| format!("--password-env {v}"))
        ),
        _ => e.into(),
    }
}

pub fn run(config_path: &Path, args: Args) -> anyhow::Result<ExitCode> {
    let runner = open_runner_with(config_path, args.identity.as_deref())?;
    if let Some(server) = &args.server.server {
        return super::restore_server::run(config_path, &runner, server, &args.server);
    }
    let target = target(&args)?;
    let record = match (args.id, &args.database) {
        (Some(id), _) => runner.catalog().get(id)?.ok_or_else(|| {
            UsageError(format!("no backup #{id} in the catalog; see `dbkeep list`"))
        })?,
        (None, Some(database)) => {
            runner.config().database(database)?;
            dbkeep::verdict::last_success(&runner, database)?.ok_or_else(|| {
                UsageError(format!("{database} has no successful backup to restore"))
            })?
        }
        (None, None) => {
            return Err(UsageError("give a backup id, or --latest --database NAME".into()).into());
        }
    };
    let opts = RestoreOptions {
        force: args.force,
        create: args.create,
        leave: dbkeep::stream::Leave {
            owners: args.no_owner,
            privileges: args.no_privileges,
        },
        with_globals: args.with_globals,
        jobs: usize::from(args.jobs),
        from: args.from.clone(),
        ..RestoreOptions::default()
    };
    let interrupted = Interrupt::watch()?;
    let cancel = interrupted.arm();
    let restored = {
        let bar = Bar::new(&format!("restore #{}", record.id));
        dbkeep::restore::restore(&runner, &record, &target, &opts, &cancel, &bar)
    };
    let restored = match (restored, interrupted.code()) {
        (Err(dbkeep::Error::Cancelled(_)), Some(code)) => {
            eprintln!(
                "restore of backup #{} was interrupted; the target was left as it was",
                record.id
            );
            return Ok(ExitCode::from(code));
        }
        // A signal that came once the load had committed: the restore stands.
        (Ok(restored), _) => restored,
        (Err(e), _) => return Err(with_password_hint(e, &target)),
    };
    let over = match restored.connections {
        0 | 1 => String::new(),
        n => format!(" over {n} connections"),
    };
    // What the backup held, as recorded when it was taken.
    let tables = runner.catalog().table_rows(record.id).unwrap_or_default();
    let held = if tables.is_empty() {
        String::new()
    } else {
        let rows: u64 = tables.iter().map(|(_, n)| n).sum();
        format!("{} table(s), {rows} row(s), ", tables.len())
    };
    let _ = render::line(format!(
        "restored  #{}  {}  {}  into {}  ({held}{} in {}{over})",
        record.id,
        record.database,
        record.file_name.as_deref().unwrap_or("-"),
        target.display(),
        render::size(Some(restored.bytes)),
        render::duration(Some(restored.duration.as_millis() as u64)),
    ));
    Ok(ExitCode::SUCCESS)
}
