//! `dbkeep offsite list` and `dbkeep offsite sync`.

use std::path::Path;
use std::process::ExitCode;

use dbkeep::catalog::{ListFilter, Status};

use super::{EXIT_FAILED, open_runner, render};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Show each stored backup's off-site copies
    List {
        /// Only this database
        #[arg(long, short = 'd', value_name = "NAME")]
        database: Option<String>,
    },
    /// Upload the copies that are missing or failed (after an outage)
    Sync,
}

pub fn run(config_path: &Path, args: Args) -> anyhow::Result<ExitCode> {
    let runner = open_runner(config_path)?;
    if runner.config().offsite.is_empty() {
        let _ = render::line(
            "no off-site destinations configured: add an [[offsite]] entry to dbkeep.toml",
        );
        return Ok(ExitCode::SUCCESS);
    }
    match args.action {
        Action::List { database } => {
            if let Some(d) = &database {
                runner.config().database(d)?;
            }
            let records = runner.catalog().list(&ListFilter {
                database,
                status: Some(Status::Success),
                ..ListFilter::default()
            })?;
            let copies = runner.copies();
            for r in records.iter().filter(|r| r.pruned_at.is_none()) {
                let file = r.file_name.as_deref().unwrap_or("-");
                let have = copies.copies(r.id)?;
                let mut line = format!("#{}  {}  {file}", r.id, r.database);
                for o in runner.offsite().taking(&r.database) {
                    let state = match have.iter().find(|c| c.store == o.name) {
                        Some(c) if c.pruned_at.is_some() => "pruned".to_string(),
                        Some(c) => c.state.as_str().to_string(),
                        None => "missing".to_string(),
                    };
                    line.push_str(&format!("  {}: {state}", o.name));
                }
                let _ = render::line(line);
            }
            Ok(ExitCode::SUCCESS)
        }
        Action::Sync => {
            // Ctrl-C stops the upload under way (nothing of it stays) and the ones after it.
            let interrupted = super::backup::Interrupt::watch()?;
            let synced = {
                let bar = super::backup::Bar::new("offsite sync");
                let cancel = interrupted.arm();
                let sending = dbkeep::store::Sending {
                    progress: &bar,
                    cancel: &cancel,
                };
                runner.sync_offsite(&[], sending)?
            };
            if synced.is_empty() {
                let _ = render::line("every stored backup is at every destination");
            }
            let mut all_ok = true;
            for s in &synced {
                match &s.result {
                    Ok(()) => render::line(format!(
                        "ok      #{}  {}  -> {}",
                        s.backup_id, s.database, s.store
                    ))?,
                    Err(e) => {
                        all_ok = false;
                        let _ = render::line(format!(
                            "failed  #{}  {}  -> {}  {}",
                            s.backup_id,
                            s.database,
                            s.store,
                            render::one_line(e)
                        ));
                    }
                }
            }
            Ok(match interrupted.code() {
                Some(code) => ExitCode::from(code),
                None if all_ok => ExitCode::SUCCESS,
                None => ExitCode::from(EXIT_FAILED),
            })
        }
    }
}
