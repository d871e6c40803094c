//! `dbkeep wal`: PostgreSQL's `archive_command` (`wal push %p`) and `restore_command`
//! (`wal fetch %f %p`), and the off-site queue of the archive (`wal sync`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use dbkeep::pitr;

/// Archive PostgreSQL's WAL (archive_command and restore_command)
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Archive one WAL file: archive_command = 'dbkeep --config FILE wal push %p'. Exits 0
    /// only once the file is durable in the server's archive folder
    Push {
        /// The file PostgreSQL hands over (%p, relative to its data directory)
        #[arg(value_name = "PATH")]
        path: PathBuf,
        /// The [[servers]] entry whose archive takes it [default: the only one with
        /// wal_archive = true, else the one this cluster archived into before]
        #[arg(long, value_name = "NAME")]
        server: Option<String>,
    },
    /// Give one archived WAL file back: restore_command = 'dbkeep --config FILE wal fetch %f %p'
    Fetch {
        /// The file PostgreSQL asks for (%f)
        #[arg(value_name = "NAME")]
        name: String,
        /// Where it goes (%p)
        #[arg(value_name = "PATH")]
        path: PathBuf,
        /// The [[servers]] entry whose archive holds it [default: as for push]
        #[arg(long, value_name = "NAME")]
        server: Option<String>,
        /// The age identity file that opens an encrypted archive, in place of the
        /// configuration's `identity_file`
        #[arg(long, value_name = "FILE")]
        identity: Option<PathBuf>,
    },
    /// Send the archive files not yet at every off-site destination, oldest first
    Sync,
}

pub fn run(config_path: &Path, args: Args) -> anyhow::Result<ExitCode> {
    let mut config = dbkeep::Config::load(config_path)?;
    if let Command::Fetch {
        identity: Some(path),
        ..
    } = &args.command
    {
        dbkeep::crypt::Keys::from_identity_file(path)
            .map_err(|e| super::UsageError(format!("--identity: {e}")))?;
        config.identity_file = Some(std::path::absolute(path)?);
    }
    let catalog = dbkeep::runner::open_catalog(&config)?;
    match args.command {
        Command::Push { path, server } => {
            let pushed = pitr::push(
                &config,
                catalog.as_ref(),
                &path,
                server.as_deref(),
                chrono::Utc::now(),
            )?;
            tracing::info!(
                server = %pushed.server,
                file = %pushed.name,
                again = pushed.again,
                raw_bytes = pushed.raw_bytes,
                stored_bytes = pushed.stored_bytes,
                "WAL archived"
            );
        }
        Command::Fetch {
            name, path, server, ..
        } => {
            let fetched = pitr::fetch(&config, catalog.as_ref(), &name, &path, server.as_deref())?;
            tracing::info!(file = %name, from = %fetched.from, bytes = fetched.bytes, "WAL fetched");
        }
        Command::Sync => {
            let destinations = dbkeep::offsite::Destinations::new(config.offsite.clone());
            let rounds = pitr::send_queued(
                &config,
                catalog.as_ref(),
                &destinations,
                &dbkeep::cancel::Cancel::new(),
            )?;
            let mut failed = false;
            for r in &rounds {
                println!(
                    "{} → {}: {} sent, {} queued{}",
                    r.server,
                    r.destination,
                    r.sent,
                    r.left,
                    r.error
                        .as_deref()
                        .map(|e| format!(" ({})", super::render::one_line(e)))
                        .unwrap_or_default()
                );
                failed |= r.error.is_some();
            }
            if rounds.is_empty() {
                println!("nothing queued");
            }
            if failed {
                return Ok(ExitCode::from(super::EXIT_FAILED));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
