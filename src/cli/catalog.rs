//! `dbkeep catalog migrate`: this configuration's SQLite catalog into a new PostgreSQL one.

use std::path::Path;
use std::process::ExitCode;

use dbkeep::catalog::PostgresCatalog;
use dbkeep::config::{CatalogLocation, ServerTarget, Target};

use super::UsageError;

/// The catalog itself.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Copy this configuration's SQLite catalog into a new, empty PostgreSQL catalog
    ///
    /// Copies all history (backups and their pins, fires, verifications, tables, off-site
    /// copies and failures, failed notifications, stale alerts, retention marks), users,
    /// sessions and API tokens with their ids, in one transaction, then compares every table's row counts. Leases,
    /// instances and failed logins are live state and stay behind. Afterwards set `catalog` to
    /// the URL. Stop every dbkeep that uses the SQLite catalog first: what it writes meanwhile
    /// is not copied.
    Migrate {
        /// The PostgreSQL catalog: postgres://user@host:port/dbname (its password from
        /// --password-env or PGPASSWORD, never in the URL)
        #[arg(long, value_name = "URL")]
        to: String,

        /// The environment variable holding the PostgreSQL catalog's password
        #[arg(long, value_name = "NAME")]
        password_env: Option<String>,
    },
}

pub fn run(config_path: &Path, args: Args) -> anyhow::Result<ExitCode> {
    match args.action {
        Action::Migrate { to, password_env } => migrate(config_path, &to, password_env),
    }
}

/// The `--to` URL as a server target, its password to come from `password_env`, else
/// `PGPASSWORD`.
fn target(to: &str, password_env: Option<String>) -> anyhow::Result<ServerTarget> {
    let wanted = "--to: give the PostgreSQL catalog as postgres://user@host:port/dbname";
    if !(to.starts_with("postgres://") || to.starts_with("postgresql://")) {
        return Err(UsageError(wanted.into()).into());
    }
    let Target::Postgres(mut server) = Target::parse(to, Path::new("."))
        .map_err(|e| UsageError(format!("--to: {}", e.replace("`url`", "the URL"))))?
    else {
        return Err(UsageError(wanted.into()).into());
    };
    if server.password.is_some() {
        return Err(UsageError(
            "--to: put no password in the URL (it would show in the process list); use \
             --password-env NAME or PGPASSWORD"
                .into(),
        )
        .into());
    }
    server.password_env = match password_env {
        Some(name) => {
            let ok =
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                return Err(UsageError(format!(
                    "--password-env: `{name}` is not an environment variable name; give one \
                     such as DBKEEP_CATALOG_PASSWORD"
                ))
                .into());
            }
            Some(name)
        }
        None => std::env::var_os("PGPASSWORD").map(|_| "PGPASSWORD".to_string()),
    };
    Ok(server)
}

fn migrate(config_path: &Path, to: &str, password_env: Option<String>) -> anyhow::Result<ExitCode> {
    let server = target(to, password_env)?;
    let url = server.url.to_string();
    let config = dbkeep::Config::load(config_path)?;
    let sqlite = match &config.catalog {
        CatalogLocation::Sqlite(path) => path.clone(),
        CatalogLocation::Postgres(current) => {
            return Err(UsageError(format!(
                "this configuration's catalog is on PostgreSQL already ({}); `catalog migrate` \
                 copies a SQLite catalog",
                current.url
            ))
            .into());
        }
    };
    if !sqlite.is_file() {
        return Err(UsageError(format!(
            "there is no SQLite catalog at {} (`catalog` in {}): nothing to migrate",
            sqlite.display(),
            config_path.display()
        ))
        .into());
    }
    // Every failure here is the target's (unreachable, not empty, a count that differs): it
    // names the URL, never its password, and leaves the target as it was.
    let failed = |e: dbkeep::Error| {
        let why = match e {
            // Its own errors name the URL already.
            dbkeep::Error::Catalog { path, message } if path == Path::new(&url) => message,
            other => other.to_string(),
        };
        UsageError(format!("cannot migrate to {url}: {why}"))
    };
    let catalog = PostgresCatalog::open(&server).map_err(failed)?;
    let copied = catalog.copy_from_sqlite(&sqlite).map_err(failed)?;
    drop(catalog);
    let width = copied
        .iter()
        .map(|(t, _, _)| t.len())
        .max()
        .unwrap_or(0)
        .max("table".len());
    let _ = super::render::line(format!(
        "{:<width$}  {:>10}  {:>10}",
        "table", "sqlite", "postgres"
    ));
    for (table, read, written) in &copied {
        let _ = super::render::line(format!("{table:<width$}  {read:>10}  {written:>10}"));
    }
    let _ = super::render::line(format!(
        "not copied (live state that running instances recreate): {}",
        PostgresCatalog::LIVE_TABLES.join(", ")
    ));
    let rows: u64 = copied.iter().map(|(_, n, _)| n).sum();
    let _ = super::render::line(format!(
        "migrated {rows} row(s) from {} to {url}; every count matches",
        sqlite.display()
    ));
    let password = match &server.password_env {
        Some(name) if name != "PGPASSWORD" => {
            format!(" and catalog_password_env = \"{name}\"")
        }
        _ => String::new(),
    };
    let _ = super::render::line(format!(
        "next: set catalog = \"{url}\"{password} in {}",
        config_path.display()
    ));
    Ok(ExitCode::SUCCESS)
}
