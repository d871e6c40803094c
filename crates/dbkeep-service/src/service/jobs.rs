//! Running backups inside the service: one per database at a time, at most
//! `max_concurrent_backups` at once, each watched for timeouts and cancellable at shutdown.
//! Scheduled fires and "back up now" requests both go through here.

pub mod restores;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use dbkeep_core::runner::Started;
use dbkeep_core::runner::{BackupOptions, Runner};
use dbkeep_core::scheduler::Claimed;
use dbkeep_core::verdict::FactsCache;
use dbkeep_model::cancel::Cancel;
use dbkeep_model::catalog::{BackupId, Outcome, Trigger};
use dbkeep_model::clock::Clock;
use dbkeep_model::error::{Error, Result};
use dbkeep_model::stream::NoProgress;

/// How a fire ended: its outcome, when its work started, the backup it ran or verified, and a
/// detail.
type FireEnd = (
    Outcome,
    Option<chrono::DateTime<chrono::Utc>>,
    Option<BackupId>,
    Option<String>,
);

/// Where a restore drill reads `record` from: the local file and each off-site destination
/// holding a checked copy, in turn, one per drill, so that every copy is proven restorable.
fn drill_source(
    runner: &Runner,
    record: &dbkeep_model::catalog::BackupRecord,
) -> Result<Option<String>> {
    let copies = runner.copies();
    let holders = dbkeep_core::offsite::holders(copies, record)?;
    if holders.is_empty() {
        return Ok(None);
    }
    // The database's drills so far decide whose turn it is.
    let done = runner
        .catalog()
        .fires(&record.database, None, 1000)?
        .iter()
        .filter(|f| f.schedule.starts_with(dbkeep_core::scheduler::DRILL_PREFIX))
        .count();
    // The fire being run is already recorded: the first drill has `done == 1`.
    let turn = done.saturating_sub(1) % (holders.len() + 1);
    let local_exists = runner.backup_file(record).is_ok();
    Ok(match turn {
        0 if local_exists => None,
        0 => holders.first().cloned(),
        n => holders.get(n - 1).cloned(),
    })
}

/// The backups this process is running.
pub struct Jobs {
    pub runner: Arc<Runner>,
    clock: Arc<dyn Clock>,
    /// The databases backing up in this process, with the flag that cancels each.
    running: Mutex<HashMap<String, Cancel>>,
    permits: Arc<Semaphore>,
    /// Restore drills run one at a time (and each within a backup slot).
    drills: Semaphore,
    pub tracker: TaskTracker,
    /// What the verdicts were last judged from, shared by the stale watch and every page.
    facts: Arc<FactsCache>,
    /// Raised when discovery changed the set of databases: the scheduler plans again.
    pub reschedule: tokio::sync::Notify,
    /// Per server, this process's queue for its slots: as many turns as it has slots, given
    /// in order, so that only that many backups ask the catalog and a freed slot is taken at
    /// once.
    turns: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// The restores started from the admin or the API.
    restores: restores::Restores,
}

impl Jobs {
    pub fn new(runner: Arc<Runner>, clock: Arc<dyn Clock>) -> Arc<Self> {
        let permits = Arc::new(Semaphore::new(
            runner.config().service.max_concurrent_backups,
        ));
        Arc::new(Jobs {
            runner,
            clock,
            running: Mutex::new(HashMap::new()),
            permits,
            drills: Semaphore::new(1),
            tracker: TaskTracker::new(),
            facts: Arc::default(),
            reschedule: tokio::sync::Notify::new(),
            turns: Mutex::new(HashMap::new()),
            restores: restores::Restores::default(),
        })
    }

    /// What the verdicts were last judged from, kept until the catalog changes.
    pub fn facts(&self) -> &Arc<FactsCache> {
        &self.facts
    }

    /// The clock the service reads time from.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The databases with a run going on here, by name.
    pub fn running_names(&self) -> Vec<String> {
        // A restore's own key names its target's server: not shown (its database's key is).
        let mut names: Vec<String> = self
            .running()
            .keys()
            .filter(|k| !k.starts_with(restores::KEY_PREFIX))
            .cloned()
            .collect();
        names.sort();
        names
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cancel>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a run of `database`, or says it is already running here.
    fn claim(&self, database: &str) -> Option<Cancel> {
        let mut running = self.running();
        if running.contains_key(database) {
            return None;
        }
        let cancel = Cancel::new();
        running.insert(database.to_string(), cancel.clone());
        Some(cancel)
    }

    fn release(&self, database: &str) {
        self.running().remove(database);
    }

    /// Starts a backup of `database` now and returns its catalog id as soon as it is recorded
    /// `in_progress`; it then runs in the background.
    ///
    /// # Errors
    /// [`Error::AlreadyRunning`] when the database is backing up (here or in another process),
    /// an unknown database, or a catalog failure.
    pub async fn start_now(self: &Arc<Self>, database: &str, trigger: Trigger) -> Result<BackupId> {
        let cancel = self
            .claim(database)
            .ok_or_else(|| Error::AlreadyRunning(database.to_string()))?;
        let opts = BackupOptions {
            trigger,
            cancel,
            ..BackupOptions::default()
        };
        let started = match self.begin(database, opts).await {
            Ok(started) => started,
            Err(e) => {
                self.release(database);
                return Err(e);
            }
        };
        let id = started.id;
        let jobs = Arc::clone(self);
        let database = database.to_string();
        let cancel = started.cancel().clone();
        self.tracker.spawn(async move {
            let mut started = started;
            // Recorded `in_progress` at once; it runs when its server has a slot free and a
            // backup slot is free, like scheduled ones.
            match jobs.server_slot(&database, &cancel).await {
                Ok(Some(slot)) => started.hold_slot(slot),
                Ok(None) => {}
                // Cancelled while waiting: the run records why.
                Err(_) => {}
            }
            let _permit = jobs.permits.acquire().await;
            if let Err(e) = jobs.complete(started).await {
                warn!(database = %database, error = %e, "backup could not be recorded");
            }
            jobs.release(&database);
        });
        Ok(id)
    }

    /// Queues a backup of `database` to run like a scheduled fire: once its server has a
    /// slot free and a backup slot is free, and only then recorded `in_progress` (a found
    /// database's first backup). Nothing happens when the database is backing up here already.
    pub fn queue(self: &Arc<Self>, database: &str, trigger: Trigger) {
        let jobs = Arc::clone(self);
        let database = database.to_string();
        self.tracker.spawn(async move {
            let Some(cancel) = jobs.claim(&database) else {
                return;
            };
            let slot = jobs.server_slot(&database, &cancel).await;
            let _permit = jobs.permits.acquire().await;
            let opts = BackupOptions {
                trigger,
                cancel,
                ..BackupOptions::default()
            };
            let ran = match (slot, jobs.begin(&database, opts).await) {
                (Ok(slot), Ok(mut started)) => {
                    if let Some(slot) = slot {
                        started.hold_slot(slot);
                    }
                    jobs.complete(started).await
                }
                (Err(e), _) | (_, Err(e)) => Err(e),
            };
            if let Err(e) = ran {
                warn!(database = %database, error = %e, "the queued backup could not run");
            }
            jobs.release(&database);
        });
    }

    /// Starts verifying backup `id` at restore level now; it waits for a backup slot like
    /// "back up now", runs in the background, and records its result.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an id the catalog does not hold, [`Error::Refused`] for a backup
    /// with nothing to verify or one being verified already, or a catalog failure.
    pub async fn verify_now(self: &Arc<Self>, id: BackupId) -> Result<()> {
        let record = super::blocking(&self.runner, move |r| {
            let b = r
                .catalog()
                .get(id)?
                .ok_or_else(|| Error::NotFound(format!("no backup #{id} in the catalog")))?;
            if b.is_stored() && r.owns(&b) {
                Ok(b)
            } else {
                Err(Error::Refused(format!(
                    "backup #{id} has no stored file of this configuration to verify"
                )))
            }
        })
        .await?;
        let key = format!("verify #{id}");
        let cancel = self.claim(&key).ok_or_else(|| {
            Error::Refused(format!(
                "backup #{id} is being verified already; wait for it to finish"
            ))
        })?;
        let jobs = Arc::clone(self);
        self.tracker.spawn(async move {
            let _permit = jobs.permits.acquire().await;
            let verified = super::blocking(&jobs.runner, move |r| {
                dbkeep_core::verify::verify(
                    r,
                    &record,
                    dbkeep_model::catalog::VerifyLevel::Restore,
                    &cancel,
                )
            })
            .await;
            if let Err(e) = verified {
                warn!(backup = id, error = %e, "verification could not run");
            }
            jobs.release(&key);
        });
        Ok(())
    }

    /// Runs a claimed scheduled fire, or records it skipped when its database is busy here.
    pub fn run_fire(self: &Arc<Self>, fire: Claimed) {
        let jobs = Arc::clone(self);
        self.tracker.spawn(async move {
            let (outcome, started, backup_id, detail) = if fire.is_drill() {
                jobs.drill(&fire).await
            } else {
                jobs.fire(&fire).await
            };
            let id = fire.fire_id;
            let recorded = super::blocking(&jobs.runner, move |r| {
                r.catalog()
                    .finish_fire(id, outcome, started, backup_id, detail.as_deref())
            })
            .await;
            if recorded.is_err() {
                warn!(database = %fire.database, "could not record the fire's outcome");
            }
        });
    }

    async fn fire(self: &Arc<Self>, fire: &Claimed) -> FireEnd {
        let skipped = |detail: String| (Outcome::Skipped, None, None, Some(detail));
        let Some(cancel) = self.claim(&fire.database) else {
            info!(database = %fire.database, schedule = %fire.schedule, "skipped: the previous backup is still running");
            let why = if self.restores.is_over(&fire.database) {
                "a restore over this database was running"
            } else {
                "the previous backup of this database was still running"
            };
            return skipped(why.into());
        };
        // Its server's slot first: a backup waiting for its server holds no backup slot
        // that another server's backup could use.
        let slot = match self.server_slot(&fire.database, &cancel).await {
            Ok(slot) => slot,
            Err(e) => {
                self.release(&fire.database);
                return skipped(format!("could not start: {e}"));
            }
        };
        let _permit = self.permits.acquire().await;
        let started_at = self.clock.now();
        let opts = BackupOptions {
            trigger: Trigger::Scheduled,
            cancel,
            ..BackupOptions::default()
        };
        let mut started = match self.begin(&fire.database, opts).await {
            Ok(started) => started,
            Err(e) => {
                self.release(&fire.database);
                return match e {
                    Error::AlreadyRunning(_) => skipped(e.to_string()),
                    e => skipped(format!("could not start: {e}")),
                };
            }
        };
        if let Some(slot) = slot {
            started.hold_slot(slot);
        }
        let id = started.id;
        // Linked to its backup at once: should this process die, the fire shows that backup's
        // fate (recorded "interrupted" by the next dbkeep), not "running" for ever.
        let fire_id = fire.fire_id;
        let linked = super::blocking(&self.runner, move |r| {
            r.catalog()
                .finish_fire(fire_id, Outcome::Running, Some(started_at), Some(id), None)
        })
        .await;
        if let Err(e) = linked {
            warn!(database = %fire.database, error = %e, "could not link the fire to its backup");
        }
        let completed = self.complete(started).await;
        self.release(&fire.database);
        // It ran: whatever happened after the start, the fire names its backup, whose row
        // says how it ended.
        let detail = completed
            .err()
            .map(|e| format!("the backup could not be recorded to its end: {e}"));
        (Outcome::Ran, Some(started_at), Some(id), detail)
    }

    /// A restore drill: verifies the newest successful backup of the fire's database at restore
    /// level. A failed verification is recorded (the database then shows as failing) and named
    /// in the fire's detail.
    async fn drill(self: &Arc<Self>, fire: &Claimed) -> FireEnd {
        let skipped = |detail: String| (Outcome::Skipped, None, None, Some(detail));
        let key = format!("{}{}", dbkeep_core::scheduler::DRILL_PREFIX, fire.database);
        let Some(cancel) = self.claim(&key) else {
            return skipped("the previous restore drill of this database was still running".into());
        };
        let _turn = self.drills.acquire().await;
        let _permit = self.permits.acquire().await;
        let started_at = self.clock.now();
        let database = fire.database.clone();
        let result = super::blocking(&self.runner, move |r| {
            let Some(record) = dbkeep_core::verdict::last_success(r, &database)? else {
                return Ok(None);
            };
            let from = drill_source(r, &record)?;
            let v = dbkeep_core::verify::verify_from(
                r,
                &record,
                dbkeep_model::catalog::VerifyLevel::Restore,
                from.as_deref(),
                &cancel,
            )?;
            Ok(Some((record.id, v)))
        })
        .await;
        self.release(&key);
        match result {
            Ok(None) => skipped("no successful backup to verify yet".into()),
            Ok(Some((id, v))) if v.ok => {
                info!(database = %fire.database, backup = id, restore_ms = v.restore_ms, "restore drill passed");
                (Outcome::Ran, Some(started_at), Some(id), None)
            }
            Ok(Some((id, v))) => {
                let why = v.message.unwrap_or_default();
                warn!(database = %fire.database, backup = id, error = %why, "restore drill failed");
                (
                    Outcome::Ran,
                    Some(started_at),
                    Some(id),
                    Some(dbkeep_core::scheduler::drill_failed(&why)),
                )
            }
            Err(e) => skipped(format!("could not start: {e}")),
        }
    }

    /// Waits, without holding a thread, for a slot of `database`'s server
    /// (`max_concurrent_per_server`, across instances); `None` when it needs none.
    ///
    /// # Errors
    /// When the catalog cannot be written, or `cancel` was raised while waiting.
    async fn server_slot(
        &self,
        database: &str,
        cancel: &Cancel,
    ) -> Result<Option<dbkeep_core::runner::ServerSlot>> {
        let Some((server, slots)) = self.runner.slot_limit(database) else {
            return Ok(None);
        };
        let queue = Arc::clone(
            self.turns
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(server)
                .or_insert_with(|| Arc::new(Semaphore::new(slots))),
        );
        // This process's turn first, in order, without a thread.
        let turn = queue.acquire_owned();
        tokio::pin!(turn);
        let turn = loop {
            tokio::select! {
                t = &mut turn => break t.map_err(|e| Error::Engine(format!("the slot queue closed: {e}")))?,
                () = tokio::time::sleep(dbkeep_core::runner::SLOT_POLL) => {
                    if let Some(reason) = cancel.reason() {
                        return Err(Error::Cancelled(reason));
                    }
                }
            }
        };
        // Then a slot in the catalog, which another instance may hold.
        loop {
            if let Some(reason) = cancel.reason() {
                return Err(Error::Cancelled(reason));
            }
            let db = database.to_string();
            match super::blocking(&self.runner, move |r| r.try_server_slot(&db)).await? {
                dbkeep_core::runner::Slot::Unlimited => return Ok(None),
                dbkeep_core::runner::Slot::Taken(slot) => return Ok(Some(slot.with(turn))),
                dbkeep_core::runner::Slot::Busy => {}
            }
            tokio::time::sleep(dbkeep_core::runner::SLOT_POLL).await;
        }
    }

    /// Records a backup of `database` as `in_progress` under its lock ([`Runner::begin`]).
    async fn begin(&self, database: &str, opts: BackupOptions) -> Result<Started> {
        let database = database.to_string();
        super::blocking(&self.runner, move |r| r.begin(&database, &opts)).await
    }

    /// Runs a begun backup to its end (the runner's watchdog enforces `backup_timeout` and
    /// `stall_timeout`; its cancel flag stops it at shutdown).
    async fn complete(&self, started: Started) -> Result<()> {
        super::blocking(&self.runner, move |r| {
            r.complete(started, &NoProgress).map(drop)
        })
        .await
    }

    /// Cancels every running backup with `reason`.
    pub fn cancel_all(&self, reason: &str) {
        for (database, cancel) in self.running().iter() {
            warn!(database = %database, "cancelling a backup still running at shutdown");
            cancel.cancel(reason);
        }
    }
}
