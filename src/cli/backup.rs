//! `dbkeep backup`: back up every configured database, or those named.

use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, OnceLock};

use dbkeep::cancel::Cancel;
use std::time::Duration;

use dbkeep::BackupOptions;
use dbkeep::catalog::{Status, Trigger};
use dbkeep::stream::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{EXIT_FAILED, UsageError, open_runner, render};

/// Back up databases now, then prune old backups.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Back up only this database (repeat for several) [default: all]
    #[arg(long = "database", short = 'd', value_name = "NAME")]
    databases: Vec<String>,

    /// Take a base backup of this server (a [[servers]] entry with wal_archive = true) for
    /// point-in-time recovery (repeat for several)
    #[arg(long = "server", value_name = "NAME")]
    servers: Vec<String>,

    /// Prune backups older than this many days instead of the configured retention_days
    #[arg(long, value_name = "N", value_parser = super::retention_days)]
    retention_days: Option<u32>,

    /// Do not prune old backups afterwards
    #[arg(long)]
    no_cleanup: bool,
}

impl Args {
    /// What the audit log names this run: the databases asked for, or all.
    pub(super) fn audited(&self) -> (String, Option<String>) {
        let what = if self.databases.is_empty() && self.servers.is_empty() {
            "all".to_string()
        } else {
            self.databases
                .iter()
                .chain(&self.servers)
                .cloned()
                .collect::<Vec<_>>()
                .join(",")
        };
        (what, None)
    }
}

/// A progress line on stderr while a backup runs; drawn only when stderr is a terminal.
pub(super) struct Bar(ProgressBar);

impl Bar {
    pub(super) fn new(database: &str) -> Self {
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

    /// An upload after the dump: "app: #12 copying to off-site `s3`: 40 MiB/120 MiB (…)".
    fn phase(&self, what: &str, total: Option<u64>) {
        let template = match total {
            Some(_) => {
                "{spinner} {prefix}: {msg}: {bytes}/{total_bytes} ({bytes_per_sec}, {elapsed})"
            }
            None => "{spinner} {prefix}: {msg}: {bytes} ({bytes_per_sec}, {elapsed})",
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            self.0.set_style(style);
        }
        self.0.reset();
        if let Some(total) = total {
            self.0.set_length(total);
        }
        self.0
            .set_message(dbkeep::text::escape_controls(what, false).into_owned());
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

pub fn run(config_path: &Path, mut args: Args) -> anyhow::Result<ExitCode> {
    let runner = open_runner(config_path)?;
    // A server's base backups are kept as the backups of a database named as the server.
    for server in std::mem::take(&mut args.servers) {
        if runner
            .base_config()
            .server(&server)
            .is_none_or(|s| !s.archives_wal())
        {
            return Err(UsageError(format!(
                "--server {server}: no [[servers]] entry of that name has `wal_archive = true`; base backups are for point-in-time recovery"
            ))
            .into());
        }
        args.databases.push(server);
    }
    // Run from cron without `dbkeep serve`, a backup of everything still finds new databases.
    if !runner.base_config().servers.is_empty() && args.databases.is_empty() {
        let report = runner.discover()?;
        for server in report.servers.iter().filter(|s| s.error.is_some()) {
            eprintln!(
                "warning: server {} did not answer ({}); its databases are backed up as recorded",
                server.server,
                super::render::one_line(server.error.as_deref().unwrap_or_default())
            );
        }
        runner.apply_discovery(&report)?;
    }
    let config = runner.config();
    if config.databases.is_empty() {
        return Err(UsageError(format!(
            "{}: no databases configured; add a [[databases]] entry with a name and url",
            config.path.display()
        ))
        .into());
    }
    let names: Vec<String> = if args.databases.is_empty() {
        // Every database in force: a discovered one that is gone or unreadable is not backed up.
        config
            .databases
            .iter()
            .filter(|d| d.is_scheduled())
            .map(|d| d.name.clone())
            .collect()
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
    let interrupted = Interrupt::watch()?;
    let mut all_ok = true;
    for name in &names {
        if interrupted.code().is_some() {
            break; // The backups not started yet stay unstarted.
        }
        // A flag of its own for each backup: one timing out must not cancel the next.
        let opts = BackupOptions {
            cancel: interrupted.arm(),
            ..opts.clone()
        };
        let outcome = {
            let bar = Bar::new(name);
            runner.backup(name, &opts, &bar)
        };
        match outcome {
            Ok(o) => {
                all_ok &= o.record.status == Status::Success
                    && o.prune_error.is_none()
                    && o.pruned.iter().all(|p| p.error.is_none());
                let _ = render::line(render::outcome(&o, config.service.timezone));
            }
            Err(e @ dbkeep::Error::AlreadyRunning(_)) => {
                all_ok = false;
                let _ = render::line(format!("failed  {name}  {e}"));
            }
            Err(e) => return Err(e.into()),
        }
    }
    // The notifications of these runs are delivered before the command ends.
    runner.notifier().wait(super::NOTIFY_WAIT);
    Ok(match interrupted.code() {
        Some(code) => ExitCode::from(code),
        None if all_ok => ExitCode::SUCCESS,
        None => ExitCode::from(EXIT_FAILED),
    })
}

/// SIGINT and SIGTERM during `dbkeep backup`: the first cancels the running backup (its tool is
/// killed, its temporary file removed, its row recorded failed) so the command can exit with
/// 128 + the signal's number; a second one exits at once.
pub(super) struct Interrupt {
    code: Arc<OnceLock<u8>>,
    /// The running backup's flag.
    current: Arc<Mutex<Cancel>>,
}

impl Interrupt {
    /// Listens for the signals on a thread of its own until the process exits.
    pub(super) fn watch() -> anyhow::Result<Interrupt> {
        let code = Arc::new(OnceLock::new());
        let current = Arc::new(Mutex::new(Cancel::new()));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (running, seen) = (Arc::clone(&current), Arc::clone(&code));
        std::thread::Builder::new()
            .name("dbkeep-signals".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .build();
                let Ok(runtime) = runtime else {
                    let _ = ready_tx.send(false);
                    return;
                };
                runtime.block_on(async move {
                    use tokio::signal::unix::{SignalKind, signal};
                    let (Ok(mut int), Ok(mut term)) = (
                        signal(SignalKind::interrupt()),
                        signal(SignalKind::terminate()),
                    ) else {
                        let _ = ready_tx.send(false);
                        return;
                    };
                    let _ = ready_tx.send(true);
                    let (name, code) = tokio::select! {
                        _ = int.recv() => ("SIGINT", 130),
                        _ = term.recv() => ("SIGTERM", 143),
                    };
                    let _ = seen.set(code);
                    eprintln!("{name}: stopping (again to exit at once)");
                    let cancel = running.lock().unwrap_or_else(|p| p.into_inner()).clone();
                    cancel.cancel(format!("cancelled: interrupted by {name}"));
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                    std::process::exit(i32::from(code));
                });
            })?;
        if ready_rx.recv().unwrap_or(false) {
            Ok(Interrupt { code, current })
        } else {
            anyhow::bail!("cannot listen for SIGINT and SIGTERM")
        }
    }

    /// A new flag for the next backup, raised by the first signal.
    pub(super) fn arm(&self) -> Cancel {
        let cancel = Cancel::new();
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = cancel.clone();
        // A signal that came while the previous flag was current.
        if let Some(code) = self.code() {
            let name = if code == 130 { "SIGINT" } else { "SIGTERM" };
            cancel.cancel(format!("cancelled: interrupted by {name}"));
        }
        cancel
    }

    /// 130 after SIGINT, 143 after SIGTERM.
    pub(super) fn code(&self) -> Option<u8> {
        self.code.get().copied()
    }
}
