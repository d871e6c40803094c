//! Restores started from the admin or the API: planned and checked before anything runs,
//! then run in the background like a backup (in a backup slot, cancelled at shutdown), with
//! their progress and result kept in memory for the page that watches them, and each step in
//! the audit log.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use super::Jobs;
use dbkeep_core::lease::LeaseGuard;
use dbkeep_core::restore::plan::{self, Plan, RestoreTo, TableCount};
use dbkeep_model::audit::{Action, Entry, Outcome};
use dbkeep_model::cancel::Cancel;
use dbkeep_model::catalog::{BackupId, ListFilter, Status};
use dbkeep_model::error::{Error, Result};
use dbkeep_model::stream::Progress;

/// How many restores the service remembers (the audit log keeps them all).
const KEPT: usize = 50;

/// What a restore's own key in [`Jobs`]'s running set begins with.
pub(crate) const KEY_PREFIX: &str = "restore into ";

/// A restore the service runs or ran.
#[derive(Debug)]
pub struct RestoreRun {
    /// Its number, counted from 1 in this process.
    pub id: u64,
    /// The backup it restores.
    pub backup: BackupId,
    /// The backup's database.
    pub database: String,
    /// Where it goes, in words.
    pub target: String,
    /// Who asked, as the audit log names them.
    pub actor: String,
    /// When it was asked for.
    pub started_at: DateTime<Utc>,
    /// What the plan said would happen.
    pub effects: Vec<String>,
    /// The configured database it goes into, when it goes into one.
    pub into: Option<String>,
    cancel: Cancel,
    phase: Mutex<(String, Option<u64>)>,
    done: AtomicU64,
    state: Mutex<RunState>,
}

/// Where a restore is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunState {
    /// Waiting for a slot, or loading.
    Running,
    /// Loaded and committed; the target's rows beside the backup's.
    Restored {
        /// Each table's rows, recorded and found.
        tables: Vec<TableCount>,
        /// Uncompressed bytes loaded.
        bytes: u64,
        /// How long it took, from the start of the load.
        duration_ms: u64,
        /// Why the target's rows could not be counted after the load had committed.
        uncounted: Option<String>,
    },
    /// It failed, was stopped, or was refused by the target, before anything committed.
    Failed(String),
}

impl RunState {
    /// Whether the restore loaded and every table holds the rows the backup recorded.
    pub fn rows_match(&self) -> bool {
        matches!(self, RunState::Restored { tables, uncounted: None, .. } if tables.iter().all(|t| t.expected == t.found))
    }
}

/// A restore's progress at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The step it is at (`checking its SHA-256`, `loading`).
    pub phase: String,
    /// Bytes of the backup file done in that step.
    pub done: u64,
    /// The backup file's size, when known.
    pub total: Option<u64>,
    /// Running, restored or failed.
    pub state: RunState,
}

impl RestoreRun {
    /// Its progress and state now.
    pub fn snapshot(&self) -> Snapshot {
        let (phase, total) = lock(&self.phase).clone();
        Snapshot {
            phase,
            done: self.done.load(Ordering::Relaxed),
            total,
            state: lock(&self.state).clone(),
        }
    }

    fn finish(&self, state: RunState) {
        *lock(&self.state) = state;
    }

    /// Stops it, if it is still running, saying `why`: the load is cancelled and its
    /// transaction rolled back (or its new database dropped). Whether it was running.
    pub fn stop(&self, why: &str) -> bool {
        let running = *lock(&self.state) == RunState::Running;
        if running {
            self.cancel.cancel(why);
        }
        running
    }
}

impl Progress for RestoreRun {
    fn advance(&self, bytes: u64) {
        self.done.fetch_add(bytes, Ordering::Relaxed);
    }

    fn phase(&self, what: &str, total: Option<u64>) {
        *lock(&self.phase) = (what.to_string(), total);
        self.done.store(0, Ordering::Relaxed);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The restores this process remembers, newest last.
#[derive(Debug, Default)]
pub struct Restores {
    next: AtomicU64,
    runs: Mutex<VecDeque<Arc<RestoreRun>>>,
    /// The configured databases restores are replacing now.
    over: Mutex<HashSet<String>>,
}

impl Restores {
    /// Whether a restore is replacing `database` now.
    pub fn is_over(&self, database: &str) -> bool {
        lock(&self.over).contains(database)
    }

    /// Restore `id`, when this process remembers it.
    pub fn get(&self, id: u64) -> Option<Arc<RestoreRun>> {
        lock(&self.runs).iter().find(|r| r.id == id).cloned()
    }

    fn add(&self, run: RestoreRun) -> Arc<RestoreRun> {
        let run = Arc::new(run);
        let mut runs = lock(&self.runs);
        runs.push_back(Arc::clone(&run));
        // The oldest finished ones make room; a running one is never forgotten.
        while runs.len() > KEPT {
            match runs
                .iter()
                .position(|r| *lock(&r.state) != RunState::Running)
            {
                Some(i) => drop(runs.remove(i)),
                None => break,
            }
        }
        run
    }
}

/// A restore asked for: which backup, where to, and who asks.
#[derive(Debug, Clone)]
pub struct RestoreRequest {
    /// The backup to restore.
    pub backup: BackupId,
    /// Where it goes.
    pub to: RestoreTo,
    /// Whether the stored roles the server lacks are created first.
    pub with_globals: bool,
    /// The name typed to confirm restoring over a configured database.
    pub confirm: Option<String>,
    /// Who asks, with their address and agent: the audit rows of the run's end copy them.
    pub caller: Entry,
}

impl Jobs {
    /// The restores this process remembers.
    pub fn restores(&self) -> &Restores {
        &self.restores
    }

    /// Plans restoring backup `backup` as `to` says, without running it: what the page
    /// shows before it is started.
    ///
    /// # Errors
    /// As [`plan::plan`], and [`Error::NotFound`] for an id the catalog does not hold.
    pub async fn plan_restore(
        self: &Arc<Self>,
        backup: BackupId,
        to: RestoreTo,
        with_globals: bool,
    ) -> Result<Plan> {
        super::super::blocking(&self.runner, move |r| {
            let record = r
                .catalog()
                .get(backup)?
                .ok_or_else(|| Error::NotFound(format!("no backup #{backup} in the catalog")))?;
            plan::plan(r, &record, &to, with_globals)
        })
        .await
    }

    /// Starts the restore `request` asks for, once its plan holds, its confirmation matches,
    /// and no backup (nor other restore) of the database it goes into is running, here or on
    /// another instance. It then runs in the background; the run's end is audited.
    ///
    /// # Errors
    /// [`Error::Refused`] saying why it may not start; [`Error::NotFound`] for an unknown id.
    pub async fn restore_now(self: &Arc<Self>, request: RestoreRequest) -> Result<Arc<RestoreRun>> {
        let backup = request.backup;
        let (record, plan) = super::super::blocking(&self.runner, {
            let to = request.to.clone();
            let with_globals = request.with_globals;
            move |r| {
                let record = r.catalog().get(backup)?.ok_or_else(|| {
                    Error::NotFound(format!("no backup #{backup} in the catalog"))
                })?;
                let plan = plan::plan(r, &record, &to, with_globals)?;
                Ok((record, plan))
            }
        })
        .await?;
        plan.confirm(request.confirm.as_deref())?;
        // The target's own key keeps two restores out of one place; a configured database's
        // name and lease keep its backups out while it is replaced, as a backup keeps others out.
        let place = format!("{KEY_PREFIX}{}", plan.target.display());
        let cancel = self.claim(&place).ok_or_else(|| {
            Error::Refused(format!(
                "a restore into {} is running already; wait for it to finish",
                plan.target_label
            ))
        })?;
        let mut claims = Claims {
            jobs: Arc::clone(self),
            keys: vec![place],
            over: None,
        };
        let lease = match plan.replaces.clone() {
            Some(database) => Some(
                self.keep_backups_out(&database, &cancel, &mut claims)
                    .await?,
            ),
            None => None,
        };
        let run = self.restores.add(RestoreRun {
            id: self.restores.next.fetch_add(1, Ordering::Relaxed) + 1,
            backup,
            database: record.database.clone(),
            target: plan.target_label.clone(),
            actor: request.caller.actor.clone(),
            started_at: self.clock.now(),
            effects: plan.effects.clone(),
            into: plan.replaces.clone(),
            cancel: cancel.clone(),
            phase: Mutex::new(("waiting for a backup slot".into(), None)),
            done: AtomicU64::new(0),
            state: Mutex::new(RunState::Running),
        });
        info!(restore = run.id, backup, target = %plan.target_label, actor = %run.actor, "restore started");
        let jobs = Arc::clone(self);
        let watched = Arc::clone(&run);
        self.tracker.spawn(async move {
            let _claims = claims;
            // Like a backup: its server's slot first, then a backup slot.
            let slot = jobs.server_slot(&record.database, &cancel).await;
            let _permit = jobs.permits.acquire().await;
            let state = match slot {
                Ok(slot) => {
                    jobs.run_restore(record, plan, &watched, cancel, (lease, slot))
                        .await
                }
                Err(e) => RunState::Failed(e.to_string()),
            };
            let (outcome, detail) = ending(&watched, &state);
            if outcome == Outcome::Ok {
                info!(restore = watched.id, %detail, "restore finished");
            } else {
                warn!(restore = watched.id, %detail, "restore failed");
            }
            let entry = Entry {
                action: Action::Restore,
                target: format!("backup:{backup}"),
                outcome,
                detail: Some(detail),
                ..request.caller
            };
            let runner = Arc::clone(&jobs.runner);
            let _ = tokio::task::spawn_blocking(move || {
                dbkeep_core::audit::record(runner.catalog(), entry);
            })
            .await;
            watched.finish(state);
        });
        Ok(run)
    }

    /// Claims `database` as a backup would (here, and its lease in the catalog for every
    /// instance), so that no backup of it starts while it is replaced, after checking that
    /// none is running here or on another instance.
    async fn keep_backups_out(
        self: &Arc<Self>,
        database: &str,
        cancel: &dbkeep_model::cancel::Cancel,
        claims: &mut Claims,
    ) -> Result<LeaseGuard> {
        let refused = |why: String| {
            Error::Refused(format!(
                "{why}; restore over {database} once it has finished"
            ))
        };
        {
            let mut running = self.running();
            if running.contains_key(database) {
                return Err(refused(format!(
                    "a backup of {database} is running on this instance"
                )));
            }
            running.insert(database.to_string(), cancel.clone());
        }
        claims.keys.push(database.to_string());
        lock(&self.restores.over).insert(database.to_string());
        claims.over = Some(database.to_string());
        let name = database.to_string();
        let held = super::super::blocking(&self.runner, move |r| {
            let running = r.catalog().list(&ListFilter {
                database: Some(name.clone()),
                status: Some(Status::InProgress),
                before: None,
                limit: Some(1),
            })?;
            if let Some(b) = running.first() {
                return Ok(Err(format!(
                    "backup #{} of {name} is running (on instance {})",
                    b.id,
                    b.instance.as_deref().unwrap_or("unknown")
                )));
            }
            Ok(r.hold(&name)?.ok_or_else(|| {
                format!("another instance holds the lease of {name}: a backup of it is starting or running there")
            }))
        })
        .await
        .map_err(|e| refused(format!("cannot tell whether a backup of {database} is running ({e})")))?;
        held.map_err(refused)
    }

    /// Runs a planned restore under `backup_timeout` and counts the target's rows after it;
    /// `held` (the replaced database's lease, its server's slot) is let go only once it has
    /// ended.
    async fn run_restore(
        self: &Arc<Self>,
        record: dbkeep_model::catalog::BackupRecord,
        plan: Plan,
        run: &Arc<RestoreRun>,
        cancel: Cancel,
        held: (Option<LeaseGuard>, Option<dbkeep_core::runner::ServerSlot>),
    ) -> RunState {
        let run = Arc::clone(run);
        let ran = super::super::blocking(&self.runner, move |r| {
            let _held = held;
            let started = Instant::now();
            // A load may wait on the application's locks, and build indexes for long without
            // a byte read: only the whole run is limited, not its quiet.
            let limits = dbkeep_pipeline::watchdog::Limits {
                timeout: r.config().service.backup_timeout,
                stall: std::time::Duration::MAX,
                stall_before_first_byte: false,
            };
            let restored =
                dbkeep_pipeline::watchdog::watch(limits, &cancel, run.as_ref(), |progress| {
                    dbkeep_core::restore::restore(
                        r,
                        &record,
                        &plan.target,
                        &plan.options,
                        &cancel,
                        progress,
                    )
                })?;
            let duration_ms = started.elapsed().as_millis() as u64;
            // The load has committed: what follows cannot make it a failure.
            run.phase("counting the restored rows", None);
            let (tables, uncounted) = match plan::compare(r, &record, &plan.target, &Cancel::new())
            {
                Ok(tables) => (tables, None),
                Err(e) => (Vec::new(), Some(e.to_string())),
            };
            Ok(RunState::Restored {
                tables,
                bytes: restored.bytes,
                duration_ms,
                uncounted,
            })
        })
        .await;
        ran.unwrap_or_else(|e| RunState::Failed(e.to_string()))
    }
}

/// The keys a restore holds in [`Jobs`]'s running set, given back when it ends however it
/// ends (a refusal on the way, a panic).
struct Claims {
    jobs: Arc<Jobs>,
    keys: Vec<String>,
    /// The configured database it replaces, marked in [`Restores`].
    over: Option<String>,
}

impl Drop for Claims {
    fn drop(&mut self) {
        if let Some(database) = &self.over {
            lock(&self.jobs.restores.over).remove(database);
        }
        for key in &self.keys {
            self.jobs.release(key);
        }
    }
}

/// How a restore's end is audited: its outcome (a restore whose rows differ failed), and
/// what it did in words.
fn ending(run: &RestoreRun, state: &RunState) -> (Outcome, String) {
    let (id, target) = (run.id, &run.target);
    match state {
        RunState::Restored {
            bytes,
            uncounted: Some(why),
            ..
        } => (
            Outcome::Failed,
            format!(
                "restore #{id} into {target}: {} loaded and committed, but its rows could not be counted: {why}",
                indicatif::HumanBytes(*bytes)
            ),
        ),
        RunState::Restored { tables, bytes, .. } => {
            let rows: u64 = tables.iter().map(|t| t.found).sum();
            let pairs = |rows: fn(&TableCount) -> u64| -> Vec<(String, u64)> {
                tables.iter().map(|t| (t.table.clone(), rows(t))).collect()
            };
            let (outcome, verdict) = match dbkeep_core::verify::compare_rows(
                &pairs(|t| t.expected),
                &pairs(|t| t.found),
            ) {
                Ok(()) => (
                    Outcome::Ok,
                    "every table has the rows the backup recorded".to_string(),
                ),
                Err(differ) => (Outcome::Failed, differ),
            };
            let loaded = indicatif::HumanBytes(*bytes);
            (
                outcome,
                format!(
                    "restore #{id} into {target}: {} table(s), {rows} row(s), {loaded} loaded; {verdict}",
                    tables.len()
                ),
            )
        }
        RunState::Failed(why) => (
            Outcome::Failed,
            format!("restore #{id} into {target} failed: {why}"),
        ),
        RunState::Running => (
            Outcome::Failed,
            format!("restore #{id} into {target} ended without a result"),
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn run(id: u64, state: RunState) -> RestoreRun {
        RestoreRun {
            id,
            backup: 1,
            database: "app".into(),
            target: "new database x".into(),
            actor: "user:admin".into(),
            started_at: Utc::now(),
            effects: Vec::new(),
            into: None,
            cancel: Cancel::new(),
            phase: Mutex::new(("waiting".into(), None)),
            done: AtomicU64::new(0),
            state: Mutex::new(state),
        }
    }

    #[test]
    fn progress_counts_each_phase_from_zero() {
        let r = run(1, RunState::Running);
        r.phase("checking its SHA-256", Some(100));
        r.advance(60);
        let s = r.snapshot();
        assert_eq!(
            (s.phase.as_str(), s.done, s.total),
            ("checking its SHA-256", 60, Some(100))
        );
        r.phase("loading", Some(100));
        r.advance(10);
        assert_eq!(r.snapshot().done, 10);
    }

    #[test]
    fn rows_match_only_when_every_table_has_its_recorded_rows() {
        let table = |expected, found| TableCount {
            table: "t".into(),
            expected,
            found,
        };
        let restored = |tables| RunState::Restored {
            tables,
            bytes: 1,
            duration_ms: 1,
            uncounted: None,
        };
        assert!(restored(vec![table(3, 3), table(0, 0)]).rows_match());
        assert!(!restored(vec![table(3, 3), table(5, 4)]).rows_match());
        assert!(!RunState::Failed("x".into()).rows_match());
        let uncounted = RunState::Restored {
            tables: Vec::new(),
            bytes: 1,
            duration_ms: 1,
            uncounted: Some("gone".into()),
        };
        assert!(!uncounted.rows_match());
        assert!(!RunState::Running.rows_match());
    }

    #[test]
    fn the_oldest_finished_restores_make_room_and_running_ones_stay() {
        let restores = Restores::default();
        restores.add(run(1, RunState::Running));
        for id in 2..=(KEPT as u64 + 5) {
            restores.add(run(id, RunState::Failed("x".into())));
        }
        assert_eq!(lock(&restores.runs).len(), KEPT);
        assert!(restores.get(1).is_some(), "a running restore was forgotten");
        assert!(restores.get(2).is_none());
        assert!(restores.get(KEPT as u64 + 5).is_some());
    }
}
