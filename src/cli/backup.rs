//! `dbkeep backup`: back up every configured database, or those named.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use dbkeep::BackupOptions;
use dbkeep::catalog::{Status, Trigger};
use dbkeep::pipeline::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{EXIT_FAILED, UsageError, open_runner, render};

/// Back up databases now, then prune old backups.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Back up only this database (repeat for several) [default: all]
    #[arg(long = "database", short = 'd', value_name = "NAME")]
    databases: Vec<String>,

    /// Prune backups older than this many days instead of the configured retention_days
    #[arg(long, value_name = "N")]
    retention_days: Option<u32>,

    /// Do not prune old backups afterwards
    #[arg(long)]
    no_cleanup: bool,
}

/// A progress line on stderr while a backup runs; drawn only when stderr is a terminal.
struct Bar(ProgressBar);

impl Bar {
    fn new(database: &str) -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{spinner} {prefix}: {bytes} read ({bytes_per_sec}, {elapsed})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
        bar.set_style(style);
        bar.set_prefix(database.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        Bar(bar)
    }
}

impl Progress for Bar {
    fn advance(&self, bytes: u64) {
        self.0.inc(bytes);
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

pub fn run(config_path: &Path, args: Args) -> anyhow::Result<ExitCode> {
    let runner = open_runner(config_path)?;
    let config = runner.config();
    if config.databases.is_empty() {
        return Err(UsageError(format!(
            "{}: no databases configured; add a [[databases]] entry with a name and url",
            config.path.display()
        ))
        .into());
    }
    let names: Vec<String> = if args.databases.is_empty() {
        config.databases.iter().map(|d| d.name.clone()).collect()
    } else {
        for name in &args.databases {
            config.database(name)?;
        }
        args.databases
    };
    let opts = BackupOptions {
        trigger: Trigger::Manual,
        cleanup: !args.no_cleanup,
        retention_days: args.retention_days,
        ..BackupOptions::default()
    };
    let mut all_ok = true;
    for name in &names {
        let outcome = {
            let bar = Bar::new(name);
            runner.backup(name, &opts, &bar)
        };
        match outcome {
            Ok(o) => {
                all_ok &= o.record.status == Status::Success
                    && o.pruned.iter().all(|p| p.error.is_none());
                println!("{}", render::outcome(&o));
            }
            Err(e @ dbkeep::Error::AlreadyRunning(_)) => {
                all_ok = false;
                println!("failed  {name}  {e}");
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}
