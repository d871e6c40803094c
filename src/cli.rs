//! The command line: one clap struct per subcommand, each a thin layer over the library.

mod audit;
mod backup;
mod catalog;
mod check;
mod demo;
mod discover;
mod docs;
mod doctor;
mod download;
mod import;
mod init;
mod list;
mod notify;
mod offsite;
mod pin;
mod prune;
mod render;
mod restore;
mod restore_server;
mod schedule;
mod serve;
mod status;
mod systemd;
mod user;
mod verify;
mod wal;

use std::path::PathBuf;
use std::process::ExitCode;

use dbkeep::audit::{Action, Entry, Outcome};

use clap::{Parser, Subcommand};
use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::MakeExt;

/// Automatic, verified backups of SQLite, PostgreSQL and MySQL/MariaDB databases.
#[derive(Debug, Parser)]
#[command(name = "dbkeep", version, about, max_term_width = 100)]
struct Cli {
    /// Configuration file [default: ./dbkeep.toml]
    #[arg(long, global = true, env = "DBKEEP_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,

    /// Log more (repeat for more detail); logs go to stderr. RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    /// Log format: text for people, json for log collectors (one object per line)
    #[arg(long, global = true, value_enum, value_name = "FORMAT", default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Back up every configured database, or those named
    Backup(backup::Args),
    /// Show recorded backups, newest first
    List(list::Args),
    /// Show whether each database is protected, stale or failing, and why
    Status(status::Args),
    /// Write a backup's file (as stored) to standard output or a file
    Download(download::Args),
    /// Delete backups that the retention policy lets go
    Prune(prune::Args),
    /// Keep a backup from every prune (local and off-site), whatever the policy: `--note WHY`
    Pin(pin::PinArgs),
    /// Let retention prune a pinned backup again
    Unpin(pin::UnpinArgs),
    /// Restore a backup into a SQLite file, a PostgreSQL or a MySQL/MariaDB database (its SHA-256
    /// checked first)
    Restore(restore::Args),
    /// Prove backups restorable: checksum, decompression, or a restore into a throwaway database
    Verify(verify::Args),
    /// Add outside backup files (.db, .sql, .sql.gz, .sql.zst, each also as .age) to a database's
    /// backups
    Import(import::Args),
    /// Check the notification channels: `dbkeep notify test`
    Notify(notify::Args),
    /// Off-site copies: `dbkeep offsite list`, `dbkeep offsite sync`
    Offsite(offsite::Args),
    /// Archive PostgreSQL's WAL for point-in-time recovery (archive_command, restore_command)
    Wal(wal::Args),
    /// Run scheduled backups and the web admin until stopped (SIGINT/SIGTERM: graceful)
    Serve(serve::Args),
    /// Show each schedule, its next fire time and its last outcome
    Schedule(schedule::Args),
    /// Ask each [[servers]] entry for its databases: new, known, gone or excluded (why)
    Discover(discover::Args),
    /// Manage web admin users (add, set-role, passwd, delete, list)
    User(user::UserArgs),
    /// Manage API tokens (create, revoke, list), each with a role, databases and an expiry
    Token(user::TokenArgs),
    /// Show the audit log: logins, downloads, restores, changes of who may do what
    Audit(audit::Args),
    /// The catalog: `dbkeep catalog migrate --to postgres://…` moves a SQLite one to PostgreSQL
    Catalog(catalog::Args),
    /// Check the configuration file and exit (no catalog is opened, nothing is written)
    Check(check::Args),
    /// Check the whole setup end to end, each check with ok, warn or fail and what to do
    Doctor(doctor::Args),
    /// Write a commented example dbkeep.toml
    Init(init::Args),
    /// Create a sample database and config, back it up, and list the result
    Demo(demo::Args),
    /// Print the completion script for bash, zsh or fish
    Completions(docs::CompletionsArgs),
    /// Print the manual page, or write one per command into a folder (--dir)
    Man(docs::ManArgs),
}

/// An error in what the user asked for (exit code 2), as opposed to a failed run (exit code 1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Exit code when some backup or deletion failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit code for invalid arguments or configuration.
pub const EXIT_USAGE: u8 = 2;

/// Runs the command line and turns every error into a message and an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // The service's log is its record of what ran; one-shot commands print results instead.
    let serving = matches!(cli.command, Command::Serve(_) | Command::Demo(_));
    init_tracing(cli.verbose + u8::from(serving), cli.log_format);
    // A bug must still end with one readable line and a failure code, not a stack trace.
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!(panic = %what, "internal error{place}");
        eprintln!("error: internal error (a bug in dbkeep; please report it): {what}{place}");
    }));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(cli)))
        .unwrap_or_else(|_| Ok(ExitCode::from(EXIT_FAILED)));
    match result {
        Ok(code) => code,
        // The reader of the output stopped reading (`dbkeep list | head`): nothing failed.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            let message = format!("{e:#}");
            eprintln!("error: {}", dbkeep::text::escape_controls(&message, true));
            let usage = e.downcast_ref::<UsageError>().is_some()
                || e.downcast_ref::<dbkeep::error::ConfigError>().is_some()
                || e.downcast_ref::<dbkeep::Error>()
                    .is_some_and(dbkeep::Error::is_usage);
            ExitCode::from(if usage { EXIT_USAGE } else { EXIT_FAILED })
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config_path = dbkeep::Config::locate(cli.config.as_deref());
    match cli.command {
        Command::Backup(args) => {
            let what = args.audited();
            audited(&config_path, Action::Backup, what, || {
                backup::run(&config_path, args)
            })
        }
        Command::List(args) => list::run(&config_path, args),
        Command::Status(args) => status::run(&config_path, args),
        Command::Download(args) => {
            let what = args.audited();
            audited(&config_path, Action::Download, what, || {
                download::run(&config_path, args)
            })
        }
        Command::Prune(args) => match args.audited() {
            Some(what) => audited(&config_path, Action::Prune, what, || {
                prune::run(&config_path, args)
            }),
            None => prune::run(&config_path, args),
        },
        Command::Pin(args) => {
            let what = args.audited();
            audited(&config_path, Action::Pin, what, || {
                pin::run_pin(&config_path, args)
            })
        }
        Command::Unpin(args) => {
            let what = args.audited();
            audited(&config_path, Action::Unpin, what, || {
                pin::run_unpin(&config_path, args)
            })
        }
        Command::Restore(args) => {
            let what = args.audited();
            audited(&config_path, Action::Restore, what, || {
                restore::run(&config_path, args)
            })
        }
        Command::Verify(args) => {
            let what = args.audited();
            audited(&config_path, Action::Verify, what, || {
                verify::run(&config_path, args)
            })
        }
        Command::Import(args) => {
            let what = args.audited();
            audited(&config_path, Action::Import, what, || {
                import::run(&config_path, args)
            })
        }
        Command::Notify(args) => notify::run(&config_path, args),
        Command::Offsite(args) => offsite::run(&config_path, args),
        Command::Wal(args) => wal::run(&config_path, args),
        Command::Serve(args) => serve::run(&config_path, args),
        Command::Schedule(args) => schedule::run(&config_path, args),
        Command::Discover(args) => discover::run(&config_path, args),
        Command::User(args) => user::run_user(&config_path, args),
        Command::Token(args) => user::run_token(&config_path, args),
        Command::Audit(args) => audit::run(&config_path, args),
        Command::Catalog(args) => catalog::run(&config_path, args),
        Command::Check(args) => check::run(&config_path, args),
        Command::Doctor(args) => doctor::run(&config_path, args),
        Command::Init(args) => init::run(&config_path, args),
        Command::Demo(args) => demo::run(args),
        Command::Completions(args) => docs::completions(args),
        Command::Man(args) => docs::man(args),
    }
}

/// How log lines are written: human-readable lines, or one JSON object per line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn init_tracing(verbose: u8, format: LogFormat) {
    let default = match verbose {
        0 => "error",
        1 => "info,rusqlite_migration=warn",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        // Colour only on a terminal, and every value with its control characters escaped, so
        // that text from outside (a user name, a server's error) cannot forge a line.
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
            .fmt_fields(
                tracing_subscriber::fmt::format::debug_fn(|w, field, value| {
                    let text = format!("{value:?}");
                    let text = dbkeep::text::escape_controls(&text, false);
                    if field.name() == "message" {
                        write!(w, "{text}")
                    } else {
                        write!(w, "{}={text}", field.name())
                    }
                })
                .delimited(" "),
            )
            .init(),
        // JSON strings escape control characters themselves.
        LogFormat::Json => builder.json().init(),
    }
}

/// Parses `--retention-days`: a whole number of days within the range the configuration allows.
fn retention_days(value: &str) -> Result<u32, String> {
    let max = dbkeep::config::MAX_RETENTION_DAYS;
    value
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|d| *d <= max)
        .ok_or_else(|| format!("expected a whole number of days from 0 to {max}, e.g. 30"))
}

/// Loads and validates the configuration, then opens its catalog (recovering dead runs).
/// How long a command waits, before it exits, for its notifications to be delivered (every
/// try of every channel, at most).
const NOTIFY_WAIT: std::time::Duration = std::time::Duration::from_secs(40);

/// Runs a command that acts on backups, then records it in the audit log as done by this
/// shell's Unix user (`cli:NAME`), with its outcome: failed, with the error, when it failed.
fn audited(
    config_path: &std::path::Path,
    action: Action,
    (target, detail): (String, Option<String>),
    run: impl FnOnce() -> anyhow::Result<ExitCode>,
) -> anyhow::Result<ExitCode> {
    let result = run();
    let (outcome, detail) = match &result {
        Ok(code) if *code == ExitCode::SUCCESS => (Outcome::Ok, detail),
        Ok(_) => (
            Outcome::Failed,
            Some(detail.map_or_else(|| "exit 1".to_string(), |d| format!("{d}; exit 1"))),
        ),
        Err(e) => (Outcome::Failed, Some(format!("{e:#}"))),
    };
    // A configuration that does not load has no catalog to write to: the error says so.
    if let Ok(runner) = open_runner(config_path) {
        dbkeep::audit::record(
            runner.catalog(),
            command_entry(action, target, outcome, detail),
        );
    }
    result
}

/// An audit row for a command: by the Unix user, or by the application user it runs for
/// (`DBKEEP_AUDIT_ACTOR`), with that note before `detail`.
pub(crate) fn command_entry(
    action: Action,
    target: impl Into<String>,
    outcome: Outcome,
    detail: Option<String>,
) -> Entry {
    let (actor, note) = dbkeep::audit::command_actor();
    let detail = match (note, detail) {
        (Some(n), Some(d)) => Some(format!("{d} ({n})")),
        (n, d) => d.or(n),
    };
    Entry {
        detail,
        ..Entry::new(actor, action, target, outcome)
    }
}

fn open_runner(config_path: &std::path::Path) -> anyhow::Result<dbkeep::Runner> {
    open_runner_with(config_path, None)
}

/// Says on stderr which catalog rows this command could not read and left out, each once.
fn warn_left_out(runner: &dbkeep::Runner) {
    for row in runner.catalog().left_out().rows() {
        eprintln!(
            "warning: {}; it is left out: correct or delete that row (or use the dbkeep that wrote it)",
            dbkeep::text::escape_controls(&row.to_string(), false)
        );
    }
}

/// The runner, with `identity` (an `--identity FILE`) opening encrypted backups in place of
/// the configuration's `identity_file`.
fn open_runner_with(
    config_path: &std::path::Path,
    identity: Option<&std::path::Path>,
) -> anyhow::Result<dbkeep::Runner> {
    let mut config = dbkeep::Config::load(config_path)?;
    if let Some(path) = identity {
        // Read now: a bad --identity is a mistake on the command line, never a quiet fallback.
        dbkeep::crypt::Keys::from_identity_file(path)
            .map_err(|e| UsageError(format!("--identity: {e}")))?;
        config.identity_file = Some(std::path::absolute(path)?);
    }
    Ok(dbkeep::Runner::open(config)?)
}
