//! The running service: fires schedules on time, runs backups (never two of one database at
//! once, at most `max_concurrent_backups` in all), enforces timeouts, watches for stale
//! databases and a filling disk, and shuts down gracefully.
//! `dbkeep serve` runs it; an application embeds it with [`Service::start`].

mod audit_prune;
pub mod discover;
pub mod disk;
mod heartbeat;
mod jobs;
mod resend;
pub mod stale;
mod wal;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, warn};

use dbkeep_config::config::Config;
use dbkeep_core::runner::Runner;
use dbkeep_core::scheduler::{Claimed, Scheduler, Upcoming};
use dbkeep_model::catalog::{BackupId, Trigger};
use dbkeep_model::clock::{Clock, SystemClock};
use dbkeep_model::error::{Error, Result};

pub use jobs::Jobs;
pub use jobs::restores::{RestoreRequest, RestoreRun, RunState, Snapshot};

/// How long a stopping service waits for notifications still under way.
const NOTIFY_GRACE: Duration = Duration::from_secs(10);

/// The longest the scheduler sleeps at once, so a changed system clock is noticed.
const MAX_SLEEP: Duration = Duration::from_secs(60);
/// How soon a fire the catalog did not take is tried again.
const RETRY: Duration = Duration::from_secs(1);

/// The backup scheduler, ready to start.
pub struct Service {
    runner: Arc<Runner>,
    clock: Arc<dyn Clock>,
}

/// A started service: keep it to run backups on demand, read its state, and shut it down.
pub struct ServiceHandle {
    jobs: Arc<Jobs>,
    status: Arc<ServiceStatus>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// What the running service knows that the catalog does not: whether it is alive and when
/// each schedule fires next.
#[derive(Debug, Default)]
pub struct ServiceStatus {
    alive: AtomicBool,
    upcoming: std::sync::Mutex<Vec<Upcoming>>,
}

impl ServiceStatus {
    /// Whether the scheduler loop is running.
    pub fn alive(&self) -> bool {
        self.alive.load(Ordering::Relaxed)
    }

    /// Every schedule and its next fire.
    pub fn upcoming(&self) -> Vec<Upcoming> {
        self.upcoming
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn publish(&self, scheduler: &Scheduler) {
        *self.upcoming.lock().unwrap_or_else(|p| p.into_inner()) = scheduler.upcoming();
    }
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
        let mut scheduler = Scheduler::new(&self.runner.config());
        let now = self.clock.now();
        let (scheduler, catch_ups) = blocking(&self.runner, move |runner| {
            // Alive in the catalog before it claims any fire: others must not take its claims
            // for a dead instance's.
            heartbeat::beat(runner, now, &[])?;
            let catch_ups = scheduler.start(runner.catalog(), now)?;
            Ok((scheduler, catch_ups))
        })
        .await?;
        log_summary(&self.runner, &scheduler);
        let status = Arc::new(ServiceStatus::default());
        status.publish(&scheduler);
        status.alive.store(true, Ordering::Relaxed);
        let jobs = Jobs::new(Arc::clone(&self.runner), Arc::clone(&self.clock));
        let (shutdown, stop) = watch::channel(false);
        let beat = tokio::spawn(heartbeat::run(Arc::clone(&jobs), stop.clone()));
        let resend = tokio::spawn(resend::run(Arc::clone(&jobs), stop.clone()));
        let discovery = tokio::spawn(discover::run(Arc::clone(&jobs), stop.clone()));
        let audit = tokio::spawn(audit_prune::run(Arc::clone(&jobs), stop.clone()));
        let wal = tokio::spawn(wal::run(Arc::clone(&jobs), stop.clone()));
        let scheduled = run(
            Arc::clone(&jobs),
            self.clock,
            Arc::clone(&status),
            scheduler,
            catch_ups,
            stop,
        );
        let task = tokio::spawn(async move {
            scheduled.await;
            let _ = resend.await;
            let _ = discovery.await;
            let _ = audit.await;
            let _ = wal.await;
            // The instance leaves the catalog's list as the service stops.
            let _ = beat.await;
        });
        Ok(ServiceHandle {
            jobs,
            status,
            shutdown,
            task,
        })
    }
}

impl ServiceHandle {
    /// The runner the service backs up with, and through it the configuration and catalog.
    pub fn runner(&self) -> &Arc<Runner> {
        &self.jobs.runner
    }

    /// The scheduler's live state.
    pub fn status(&self) -> &Arc<ServiceStatus> {
        &self.status
    }

    /// Starts a backup of `database` now (trigger `api`) and returns its catalog id once it is
    /// recorded `in_progress`; it runs in the background under the same limits as scheduled ones.
    ///
    /// # Errors
    /// [`Error::AlreadyRunning`] when that database is backing up, [`Error::UnknownDatabase`],
    /// or a catalog failure.
    pub async fn backup_now(&self, database: &str) -> Result<BackupId> {
        self.jobs.start_now(database, Trigger::Api).await
    }

    /// Starts verifying backup `id` at restore level in the background, under the same limits
    /// as backups; its result is recorded in the catalog.
    ///
    /// # Errors
    /// [`Error::Refused`] when the backup has no stored file to verify or is being verified
    /// already, or a catalog failure.
    pub async fn verify_now(&self, id: BackupId) -> Result<()> {
        self.jobs.verify_now(id).await
    }

    pub fn jobs(&self) -> &Arc<Jobs> {
        &self.jobs
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

/// Runs catalog, file or backup work off the async threads: SQLite may wait on another
/// process's lock, and a backup runs for minutes.
pub(crate) async fn blocking<T: Send + 'static>(
    runner: &Arc<Runner>,
    f: impl FnOnce(&Runner) -> Result<T> + Send + 'static,
) -> Result<T> {
    let runner = Arc::clone(runner);
    tokio::task::spawn_blocking(move || f(&runner))
        .await
        .map_err(|e| Error::Engine(format!("a worker thread failed: {e}")))?
}

fn log_summary(runner: &Runner, scheduler: &Scheduler) {
    let config = runner.config();
    let tz = scheduler.timezone();
    info!(config = %config.path.display(), databases = config.databases.len(), timezone = %tz, "dbkeep service starting");
    for u in scheduler.upcoming() {
        let next = u
            .next
            .map(|t| t.with_timezone(&tz).to_rfc3339())
            .unwrap_or_else(|| "never".into());
        info!(database = %u.database, schedule = %u.schedule, next = %next, "scheduled");
    }
}

/// The scheduler loop: claim due fires, hand them to `jobs`, sleep until the next one.
async fn run(
    jobs: Arc<Jobs>,
    clock: Arc<dyn Clock>,
    status: Arc<ServiceStatus>,
    mut scheduler: Scheduler,
    catch_ups: Vec<Claimed>,
    mut stop: watch::Receiver<bool>,
) {
    for fire in catch_ups {
        jobs.run_fire(fire);
    }
    let mut stale = crate::service::stale::StaleWatch::new(clock.now());
    // The set of databases the scheduler planned; discovery may replace it.
    let mut planned_for = jobs.runner.config();
    let mut disk =
        crate::service::disk::DiskWatch::new(crate::service::disk::DiskWatch::disk_name(
            &jobs.runner.instance().host,
            &jobs.runner.config().backup_dir,
        ));
    loop {
        let now = clock.now();
        let runner = Arc::clone(&jobs.runner);
        let facts = Arc::clone(jobs.facts());
        let current = jobs.runner.config();
        let replan = (!Arc::ptr_eq(&planned_for, &current)).then(|| Arc::clone(&current));
        planned_for = current;
        let joined = tokio::task::spawn_blocking(move || {
            // Discovery changed the databases: plan their schedules again (a database new
            // here has no fire recorded, so nothing of it counts as missed).
            let mut catch_ups = Vec::new();
            if let Some(config) = replan {
                let mut fresh = Scheduler::new(&config);
                match fresh.start(runner.catalog(), now) {
                    Ok(claimed) => {
                        scheduler = fresh;
                        catch_ups = claimed;
                    }
                    Err(e) => {
                        warn!(error = %e, "could not plan the discovered databases' schedules")
                    }
                }
            }
            // A backup whose process died (another dbkeep, killed) must not stay
            // `in_progress` until the next restart; live runs hold their lock and are kept.
            if let Err(e) = runner.recover_interrupted() {
                warn!(error = %e, "could not check for interrupted backups");
            }
            // A database gone stale is announced even when nothing ran at all.
            if !runner.notifier().is_empty()
                && let Err(e) = stale.check(runner.as_ref(), &facts, now)
            {
                warn!(error = %e, "could not check for stale databases");
            }
            // The backup folder's disk filling up is announced before it is full.
            if !runner.notifier().is_empty() {
                match runner
                    .space(now)
                    .and_then(|space| disk.check(runner.catalog(), &space, now))
                {
                    Ok(Some(event)) => runner.notifier().notify(event),
                    Ok(None) => {}
                    Err(e) => warn!(error = %e, "could not check the backup folder's disk"),
                }
            }
            let due = scheduler.due(runner.catalog(), now).map(|mut due| {
                due.extend(catch_ups);
                due
            });
            (scheduler, (stale, disk), due)
        })
        .await;
        let Ok((planned, watched, due)) = joined else {
            warn!("the scheduler thread panicked; no more backups will be scheduled");
            break;
        };
        scheduler = planned;
        (stale, disk) = watched;
        status.publish(&scheduler);
        let (due, retry) = match due {
            Ok(due) => (due, Duration::ZERO),
            Err(e) => {
                warn!(error = %e, "could not claim due fires; trying again");
                (Vec::new(), RETRY)
            }
        };
        for fire in due {
            jobs.run_fire(fire);
        }
        // A fire already due again (or one the catalog refused) is taken up after `retry`.
        let sleep = match scheduler.next_wakeup() {
            Some(t) => (t - clock.now()).to_std().unwrap_or(retry),
            None => MAX_SLEEP,
        }
        .min(MAX_SLEEP);
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = jobs.reschedule.notified() => {}
            _ = stop.changed() => break,
        }
    }
    status.alive.store(false, Ordering::Relaxed);
    drain(&jobs).await;
}

/// Lets running backups finish within `shutdown_grace`, then cancels them and waits.
async fn drain(jobs: &Jobs) {
    let grace = jobs.runner.config().service.shutdown_grace;
    jobs.tracker.close();
    if !jobs.tracker.is_empty() {
        info!(running = jobs.tracker.len(), grace = %humantime::format_duration(grace), "waiting for running backups");
    }
    if tokio::time::timeout(grace, jobs.tracker.wait())
        .await
        .is_err()
    {
        jobs.cancel_all("cancelled: shutdown");
        jobs.tracker.wait().await;
    }
    // The last runs' notifications get a moment to go out.
    let runner = Arc::clone(&jobs.runner);
    let _ = tokio::task::spawn_blocking(move || runner.notifier().wait(NOTIFY_GRACE)).await;
    info!("dbkeep service stopped");
}
