//! The running service: fires schedules on time, runs backups (never two of one database at
//! once, at most `max_concurrent_backups` in all), enforces timeouts, and shuts down gracefully.
//! `dbkeep serve` runs it; an application embeds it with [`Service::start`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::cancel::Cancel;
use crate::catalog::{Outcome, Trigger};
use crate::clock::{Clock, SystemClock};
use crate::pipeline::Progress;
use crate::scheduler::{Claimed, Scheduler};
use crate::{BackupOptions, Config, Error, Result, Runner};

/// The longest the scheduler sleeps at once, so a changed system clock is noticed.
const MAX_SLEEP: Duration = Duration::from_secs(60);
/// How soon a fire the catalog did not take is tried again.
const RETRY: Duration = Duration::from_secs(1);
/// How often a running backup is checked against its timeouts.
const WATCH_INTERVAL: Duration = Duration::from_millis(500);

/// The backup scheduler, ready to start.
pub struct Service {
    runner: Arc<Runner>,
    clock: Arc<dyn Clock>,
}

/// A started service: keep it to shut the service down.
pub struct ServiceHandle {
    runner: Arc<Runner>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Service {
    /// A service for `config`, with its SQLite catalog and the system clock.
    ///
    /// # Errors
    /// When the catalog cannot be opened.
    pub fn from_config(config: Config) -> Result<Self> {
        Ok(Self::new(
            Arc::new(Runner::open(config)?),
            Arc::new(SystemClock),
        ))
    }

    /// A service running backups with `runner`, reading time from `clock`.
    pub fn new(runner: Arc<Runner>, clock: Arc<dyn Clock>) -> Self {
        Service { runner, clock }
    }

    /// Plans every schedule (recording missed fires, starting catch-ups) and starts firing
    /// them in the background on the current tokio runtime.
    ///
    /// # Errors
    /// When the catalog cannot be read or written.
    pub async fn start(self) -> Result<ServiceHandle> {
        let mut scheduler = Scheduler::new(self.runner.config());
        let now = self.clock.now();
        let (scheduler, catch_ups) = blocking(&self.runner, move |runner| {
            let catch_ups = scheduler.start(runner.catalog(), now)?;
            Ok((scheduler, catch_ups))
        })
        .await?;
        log_summary(&self.runner, &scheduler);
        let (shutdown, stop) = watch::channel(false);
        let state = Loop {
            runner: Arc::clone(&self.runner),
            clock: self.clock,
            running: Arc::new(Mutex::new(HashMap::new())),
            permits: Arc::new(Semaphore::new(
                self.runner.config().service.max_concurrent_backups,
            )),
            tasks: JoinSet::new(),
        };
        let task = tokio::spawn(state.run(scheduler, catch_ups, stop));
        Ok(ServiceHandle {
            runner: self.runner,
            shutdown,
            task,
        })
    }
}

impl ServiceHandle {
    /// The runner the service backs up with, for backups on demand.
    pub fn runner(&self) -> &Arc<Runner> {
        &self.runner
    }

    /// Stops firing, gives running backups `shutdown_grace` to finish, cancels the rest
    /// (recorded as failed, "cancelled: shutdown"), and returns once all have ended.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        if let Err(e) = self.task.await {
            warn!(error = %e, "the scheduler task ended abnormally");
        }
    }
}

/// Runs catalog work off the async threads: SQLite may wait on another process's lock.
async fn blocking<T: Send + 'static>(
    runner: &Arc<Runner>,
    f: impl FnOnce(&Runner) -> Result<T> + Send + 'static,
) -> Result<T> {
    let runner = Arc::clone(runner);
    tokio::task::spawn_blocking(move || f(&runner))
        .await
        .map_err(|e| Error::Engine(format!("a scheduler thread failed: {e}")))?
}

fn log_summary(runner: &Runner, scheduler: &Scheduler) {
    let config = runner.config();
    let tz = scheduler.timezone();
    info!(
        config = %config.path.display(),
        databases = config.databases.len(),
        timezone = %tz,
        "dbkeep service starting"
    );
    for u in scheduler.upcoming() {
        let next = u
            .next
            .map(|t| t.with_timezone(&tz).to_rfc3339())
            .unwrap_or_else(|| "never".into());
        info!(database = %u.database, schedule = %u.schedule, next = %next, "scheduled");
    }
}

/// Watches a running backup's bytes so the watchdog can tell a stall.
struct Activity {
    started: Instant,
    last_ms: AtomicU64,
}

impl Progress for Activity {
    fn advance(&self, _bytes: u64) {
        self.last_ms
            .store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

struct Loop {
    runner: Arc<Runner>,
    clock: Arc<dyn Clock>,
    /// The databases backing up in this process, with the flag that cancels each.
    running: Arc<Mutex<HashMap<String, Cancel>>>,
    permits: Arc<Semaphore>,
    tasks: JoinSet<()>,
}

impl Loop {
    async fn run(
        mut self,
        mut scheduler: Scheduler,
        catch_ups: Vec<Claimed>,
        mut stop: watch::Receiver<bool>,
    ) {
        for fire in catch_ups {
            self.dispatch(fire);
        }
        loop {
            let now = self.clock.now();
            let runner = Arc::clone(&self.runner);
            let joined = tokio::task::spawn_blocking(move || {
                let due = scheduler.due(runner.catalog(), now);
                (scheduler, due)
            })
            .await;
            let Ok((planned, due)) = joined else {
                warn!("the scheduler thread panicked; no more backups will be scheduled");
                break;
            };
            scheduler = planned;
            let (due, retry) = match due {
                Ok(due) => (due, Duration::ZERO),
                Err(e) => {
                    warn!(error = %e, "could not claim due fires; trying again");
                    (Vec::new(), RETRY)
                }
            };
            for fire in due {
                self.dispatch(fire);
            }
            // A fire already due again (or one the catalog refused) is taken up after `retry`.
            let sleep = match scheduler.next_wakeup() {
                Some(t) => (t - self.clock.now()).to_std().unwrap_or(retry),
                None => MAX_SLEEP,
            }
            .min(MAX_SLEEP);
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = stop.changed() => break,
                Some(_) = self.tasks.join_next(), if !self.tasks.is_empty() => {}
            }
        }
        self.drain().await;
    }

    /// Starts the backup of one claimed fire, unless this database is already backing up here.
    fn dispatch(&mut self, fire: Claimed) {
        let cancel = Cancel::new();
        {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            if running.contains_key(&fire.database) {
                drop(running);
                info!(database = %fire.database, schedule = %fire.schedule, "skipped: the previous backup is still running");
                self.finish(
                    &fire,
                    Outcome::Skipped,
                    None,
                    None,
                    Some("the previous backup of this database was still running"),
                );
                return;
            }
            running.insert(fire.database.clone(), cancel.clone());
        }
        let runner = Arc::clone(&self.runner);
        let clock = Arc::clone(&self.clock);
        let running = Arc::clone(&self.running);
        let permits = Arc::clone(&self.permits);
        self.tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let started_at = clock.now();
            let result = run_watched(&runner, &fire.database, cancel).await;
            let (outcome, backup_id, detail) = match result {
                Ok(id) => (Outcome::Ran, Some(id), None),
                Err(e @ Error::AlreadyRunning(_)) => (Outcome::Skipped, None, Some(e.to_string())),
                Err(e) => (
                    Outcome::Skipped,
                    None,
                    Some(format!("could not start: {e}")),
                ),
            };
            let id = fire.fire_id;
            let detail_owned = detail.clone();
            let recorded = blocking(&runner, move |r| {
                r.catalog().finish_fire(
                    id,
                    outcome,
                    Some(started_at),
                    backup_id,
                    detail_owned.as_deref(),
                )
            })
            .await;
            if let Err(e) = recorded {
                warn!(database = %fire.database, error = %e, "could not record the fire's outcome");
            }
            running
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&fire.database);
        });
    }

    fn finish(
        &self,
        fire: &Claimed,
        outcome: Outcome,
        started: Option<chrono::DateTime<chrono::Utc>>,
        backup_id: Option<i64>,
        detail: Option<&str>,
    ) {
        if let Err(e) =
            self.runner
                .catalog()
                .finish_fire(fire.fire_id, outcome, started, backup_id, detail)
        {
            warn!(database = %fire.database, error = %e, "could not record the fire's outcome");
        }
    }

    /// Lets running backups finish within `shutdown_grace`, then cancels them and waits.
    async fn drain(&mut self) {
        let grace = self.runner.config().service.shutdown_grace;
        if !self.tasks.is_empty() {
            info!(running = self.tasks.len(), grace = %humantime::format_duration(grace), "waiting for running backups");
        }
        let deadline = tokio::time::sleep(grace);
        tokio::pin!(deadline);
        let mut cancelled = false;
        loop {
            tokio::select! {
                next = self.tasks.join_next() => if next.is_none() { break },
                _ = &mut deadline, if !cancelled => {
                    cancelled = true;
                    let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
                    for (database, cancel) in running.iter() {
                        warn!(database = %database, "cancelling a backup still running at shutdown");
                        cancel.cancel("cancelled: shutdown");
                    }
                }
            }
        }
        info!("dbkeep service stopped");
    }
}

/// Runs one scheduled backup on a blocking thread, cancelling it when it runs past
/// `backup_timeout` or produces nothing for `stall_timeout`. Returns the backup's id.
async fn run_watched(runner: &Arc<Runner>, database: &str, cancel: Cancel) -> Result<i64> {
    let settings = runner.config().service.clone();
    let activity = Arc::new(Activity {
        started: Instant::now(),
        last_ms: AtomicU64::new(0),
    });
    let opts = BackupOptions {
        trigger: Trigger::Scheduled,
        cancel: cancel.clone(),
        ..BackupOptions::default()
    };
    let job = {
        let runner = Arc::clone(runner);
        let activity = Arc::clone(&activity);
        let database = database.to_string();
        tokio::task::spawn_blocking(move || runner.backup(&database, &opts, activity.as_ref()))
    };
    tokio::pin!(job);
    loop {
        tokio::select! {
            result = &mut job => {
                let outcome = result.map_err(|e| Error::Engine(format!("the backup thread failed: {e}")))??;
                return Ok(outcome.record.id);
            }
            _ = tokio::time::sleep(WATCH_INTERVAL) => {
                let elapsed = activity.started.elapsed();
                let idle = elapsed.saturating_sub(Duration::from_millis(activity.last_ms.load(Ordering::Relaxed)));
                if elapsed > settings.backup_timeout {
                    cancel.cancel(format!(
                        "timed out: still running after backup_timeout = {}",
                        humantime::format_duration(settings.backup_timeout)
                    ));
                } else if idle > settings.stall_timeout {
                    cancel.cancel(format!(
                        "stalled: no data for stall_timeout = {}",
                        humantime::format_duration(settings.stall_timeout)
                    ));
                }
            }
        }
    }
}
