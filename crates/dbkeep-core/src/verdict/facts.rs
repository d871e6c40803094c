//! What the verdicts are judged from: each database's latest runs, newest success and newest
//! verification, read for every database at once and kept until the catalog changes.
//!
//! With a thousand databases that read is 30,000 rows; the home page, `/healthz`, `/metrics`
//! and the API all need it, often many times a second. [`FactsCache`] keeps the last read
//! under the catalog's change stamp ([`dbkeep_model::catalog::Catalog::change_stamp`]): a reader asks
//! the catalog for the stamp (one small read) and reads the rows again only when it moved.
//! Readers that find the rows outdated at once wait for one of them to read them.

use std::sync::{Arc, Mutex, PoisonError};

use super::{RECENT, by_database, last_success};
use crate::runner::View;
use dbkeep_model::catalog::{BackupRecord, Status, Verification};

/// What one database's verdict is judged from: this configuration's own rows only.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Its latest runs, newest first (at most [`RECENT`]), as summaries: what a verdict, a run
    /// strip and a chart read. Their `path`, `sha256`, `copies` and `instance` are left out
    /// (read the row itself for those); `last_success` has them.
    pub recent: Vec<BackupRecord>,
    /// Its newest successful backup, however far back.
    pub last_success: Option<BackupRecord>,
    /// The newest verification of any of its backups.
    pub last_verification: Option<Verification>,
}

impl Facts {
    /// Whether its latest run is still running.
    pub fn running(&self) -> bool {
        self.recent
            .first()
            .is_some_and(|r| r.status == Status::InProgress)
    }
}

/// Every configured database's [`Facts`], in configuration order.
pub type AllFacts = Arc<Vec<Arc<Facts>>>;

/// The last [`AllFacts`] read, with the change stamp read before it; and the last verdicts
/// judged from them, with the second they were judged at.
#[derive(Default)]
pub struct FactsCache {
    kept: Mutex<Option<(i64, AllFacts)>>,
    /// Held by the one reader reading the rows again.
    reading: Mutex<()>,
    judged: Mutex<Option<Judgement>>,
}

/// Verdicts judged from the facts of one change stamp, within one second.
struct Judgement {
    stamp: i64,
    second: i64,
    verdicts: Arc<Vec<super::Judged>>,
}

impl std::fmt::Debug for FactsCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FactsCache").finish_non_exhaustive()
    }
}

impl FactsCache {
    /// Every database's facts as the catalog holds them now: those kept when the catalog has
    /// not changed since, else read again.
    ///
    /// The stamp is read before the rows, so rows written after it only make the next call
    /// read again; they never hide under an old stamp.
    ///
    /// # Errors
    /// When the catalog cannot be read.
    pub fn get(&self, runner: &dyn View) -> dbkeep_model::error::Result<AllFacts> {
        Ok(self.get_stamped(runner)?.1)
    }

    /// [`FactsCache::get`], with the change stamp the facts are of.
    ///
    /// # Errors
    /// When the catalog cannot be read.
    pub fn get_stamped(&self, runner: &dyn View) -> dbkeep_model::error::Result<(i64, AllFacts)> {
        // The catalog's state and the set of databases judged: discovery may change the set.
        let stamp = runner.catalog().change_stamp()? ^ databases_fingerprint(&runner.config());
        if let Some(kept) = self.kept_at(stamp) {
            return Ok((stamp, kept));
        }
        let _one = self.reading.lock().unwrap_or_else(PoisonError::into_inner);
        // Another reader may have read them while this one waited.
        if let Some(kept) = self.kept_at(stamp) {
            return Ok((stamp, kept));
        }
        let facts: AllFacts = Arc::new(read(runner)?.into_iter().map(Arc::new).collect());
        *self.kept.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((stamp, Arc::clone(&facts)));
        Ok((stamp, facts))
    }

    /// The verdicts judged at `second` (a Unix time) from the facts of `stamp`, when kept.
    pub(super) fn judged_at(&self, stamp: i64, second: i64) -> Option<Arc<Vec<super::Judged>>> {
        match &*self.judged.lock().unwrap_or_else(PoisonError::into_inner) {
            Some(j) if j.stamp == stamp && j.second == second => Some(Arc::clone(&j.verdicts)),
            _ => None,
        }
    }

    /// Keeps `verdicts`, judged at `second` from the facts of `stamp`.
    pub(super) fn keep_judged(&self, stamp: i64, second: i64, verdicts: &Arc<Vec<super::Judged>>) {
        *self.judged.lock().unwrap_or_else(PoisonError::into_inner) = Some(Judgement {
            stamp,
            second,
            verdicts: Arc::clone(verdicts),
        });
    }

    fn kept_at(&self, stamp: i64) -> Option<AllFacts> {
        match &*self.kept.lock().unwrap_or_else(PoisonError::into_inner) {
            Some((at, facts)) if *at == stamp => Some(Arc::clone(facts)),
            _ => None,
        }
    }
}

/// Every configured database's facts, read from the catalog: one read for all the recent rows,
/// one for the verifications, and only when some database's recent rows hold no success of
/// its own, one for every database's successes.
fn read(runner: &dyn View) -> dbkeep_model::error::Result<Vec<Facts>> {
    let config = runner.config();
    let names: Vec<String> = config.databases.iter().map(|d| d.name.clone()).collect();
    let mut all_recent = by_database(runner.catalog().recent_of_each(&names, None, RECENT)?);
    let mut verified: std::collections::HashMap<String, Verification> = runner
        .catalog()
        .last_verifications(&names, false)?
        .into_iter()
        .collect();
    let mut successes = None;
    config
        .databases
        .iter()
        .map(|db| {
            let recent: Vec<BackupRecord> = all_recent
                .remove(&db.name)
                .into_iter()
                .flatten()
                .filter(|r| runner.owns(r))
                .collect();
            let last_success = match recent.iter().find(|r| r.status == Status::Success) {
                Some(r) => Some(r.clone()),
                None => {
                    // Older than the recent rows: the successes of every database, read once.
                    if successes.is_none() {
                        successes = Some(by_database(runner.catalog().recent_of_each(
                            &names,
                            Some(Status::Success),
                            RECENT,
                        )?));
                    }
                    let page: Vec<&BackupRecord> = successes
                        .as_ref()
                        .and_then(|s| s.get(&db.name))
                        .into_iter()
                        .flatten()
                        .collect();
                    match page
                        .iter()
                        .filter(|r| runner.owns(r))
                        .max_by_key(|r| (r.started_at, r.id))
                    {
                        Some(ours) => Some((*ours).clone()),
                        // A full page of other configurations' rows: look further back.
                        None if page.len() == RECENT as usize => last_success(runner, &db.name)?,
                        None => None,
                    }
                }
            };
            Ok(Facts {
                recent: recent.into_iter().map(summary).collect(),
                last_success,
                last_verification: verified.remove(&db.name),
            })
        })
        .collect()
}

/// `r` without what a verdict, a strip or a chart never reads: a thousand databases' recent
/// runs are kept in memory.
fn summary(mut r: BackupRecord) -> BackupRecord {
    r.path = None;
    r.sha256 = None;
    r.copies = Vec::new();
    r.instance = None;
    r
}

/// A number that changes when the configured databases (their names, their discovery
/// states) change.
fn databases_fingerprint(config: &dbkeep_config::config::Config) -> i64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for db in &config.databases {
        db.name.hash(&mut h);
        db.discovered.as_ref().map(|d| d.state).hash(&mut h);
    }
    h.finish() as i64
}
