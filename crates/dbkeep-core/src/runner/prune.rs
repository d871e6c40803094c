//! Retention applied: each destination (the local folder, each off-site one) prunes its own
//! copies of a database's backups by its own policy, explains every decision first, and holds
//! back a first prune under a new policy that would delete much.

use std::collections::BTreeMap;

use dbkeep_config::config::{Destination, Retention};

use super::*;
use crate::retention::{Action, Entry};

/// A prune under a policy that has not pruned the database there before is held when it
/// would delete more than this many backups at once (or more than half of those there).
pub const HOLD_OVER: usize = 20;

/// Local files deleted per sync of their folder.
const LOCAL_BATCH: usize = 1000;

/// How a prune runs.
#[derive(Debug, Clone, Default)]
pub struct PruneOptions {
    /// Use this `retention_days` instead of the configured one, everywhere.
    pub retention_days: Option<u32>,
    /// Decide as if it were this time (a preview; only with `dry_run`).
    pub at: Option<DateTime<Utc>>,
    /// Decide and say, delete nothing.
    pub dry_run: bool,
    /// Let a held prune go.
    pub confirm: bool,
}

/// What retention says of one backup at one destination.
#[derive(Debug, Clone)]
pub struct Decision {
    /// The backup.
    pub record: BackupRecord,
    /// Where this copy of it is.
    pub destination: Destination,
    /// Whether it stays or goes.
    pub action: Action,
    /// The rules that keep it, or why none does.
    pub reasons: Vec<String>,
    /// Why a deletion waits (a guard rail, or the newest backup not yet off-site).
    pub held: Option<String>,
    /// The policy that decided.
    pub policy: Retention,
}

/// One database at one destination: the unit a policy prunes and a guard rail holds.
type Group = (String, Destination);

/// The policy that last pruned each (database, destination name).
type Marks = BTreeMap<(String, String), String>;

impl Runner {
    /// What retention says of every backup of `database` (or all), at every destination that
    /// holds it: stays or goes, and why. Deletes nothing.
    ///
    /// # Errors
    /// An unknown database or a catalog failure.
    pub fn retention_plan(
        &self,
        database: Option<&str>,
        opts: &PruneOptions,
    ) -> Result<Vec<Decision>> {
        self.plan_with(database, opts, &self.marks()?)
    }

    /// The policy that last pruned each database at each destination, by (database,
    /// destination name).
    fn marks(&self) -> Result<Marks> {
        Ok(self
            .catalog
            .retention_marks()?
            .into_iter()
            .map(|(d, dest, policy)| ((d, dest), policy))
            .collect())
    }

    /// [`Runner::retention_plan`] against `marks`, read once by the caller.
    fn plan_with(
        &self,
        database: Option<&str>,
        opts: &PruneOptions,
        marks: &Marks,
    ) -> Result<Vec<Decision>> {
        if let Some(name) = database {
            self.config().database(name)?;
        }
        let records = self.catalog.list(&ListFilter {
            database: database.map(str::to_string),
            status: Some(Status::Success),
            ..ListFilter::default()
        })?;
        let now = opts.at.unwrap_or_else(|| self.clock.now());
        let tz = self.config().service.timezone;
        let mut by_database: BTreeMap<&str, Vec<&BackupRecord>> = BTreeMap::new();
        for r in &records {
            by_database.entry(r.database.as_str()).or_default().push(r);
        }
        let mut out = Vec::new();
        for (name, rows) in by_database {
            if self.config().database(name).is_err() {
                continue; // Another configuration's: never ours to prune.
            }
            // The newest good backup anywhere (as of `now`) stays wherever it is.
            let newest_good = rows
                .iter()
                .filter(|r| r.started_at <= now && r.is_stored())
                .max_by_key(|r| (r.started_at, r.id))
                .map(|r| r.id);
            // A catalog shared with other instances holds their backups too: each prunes its own.
            let own: Vec<&BackupRecord> = rows
                .iter()
                .copied()
                .filter(|r| self.on_this_disk(r))
                .collect();
            let mut destinations = vec![Destination::Local];
            destinations.extend(
                self.offsite
                    .taking(name)
                    .map(|o| Destination::Offsite(o.name.clone())),
            );
            let waiting = self.not_yet_offsite(&own, name)?;
            for destination in destinations {
                let here: Vec<&BackupRecord> = own
                    .iter()
                    .copied()
                    .filter(|r| present_at(r, &destination))
                    .collect();
                if here.is_empty() {
                    continue;
                }
                let policy = self
                    .config()
                    .retention(name, &destination, opts.retention_days);
                let entries: Vec<Entry> = here
                    .iter()
                    .map(|r| Entry {
                        id: r.id,
                        started_at: r.started_at,
                        pinned: r.pinned,
                    })
                    .collect();
                let decisions = retention::decide(&entries, &policy, tz, now, newest_good);
                let deleting = decisions
                    .iter()
                    .filter(|d| d.action == Action::Delete)
                    .count();
                let mark = marks.get(&(name.to_string(), destination.name().to_string()));
                let held = match &waiting {
                    Some(why) if destination == Destination::Local => Some(why.clone()),
                    _ if opts.confirm => None,
                    _ => hold(name, &destination, &policy, mark, deleting, here.len()),
                };
                let by_id: BTreeMap<BackupId, &BackupRecord> =
                    here.iter().map(|r| (r.id, *r)).collect();
                for d in decisions {
                    let Some(record) = by_id.get(&d.id) else {
                        continue;
                    };
                    out.push(Decision {
                        record: (*record).clone(),
                        destination: destination.clone(),
                        held: (d.action == Action::Delete).then(|| held.clone()).flatten(),
                        action: d.action,
                        reasons: d.reasons,
                        policy,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Deletes (or, with `dry_run`, lists) the backups retention lets go, for one database or
    /// all, each destination by its own policy; held deletions are listed, not done.
    ///
    /// # Errors
    /// An unknown database or a catalog failure. A file that cannot be deleted is reported in
    /// its [`Pruned::error`] and stays recorded as present.
    pub fn prune(&self, database: Option<&str>, opts: &PruneOptions) -> Result<Vec<Pruned>> {
        let marks = self.marks()?;
        let plan = self.plan_with(database, opts, &marks)?;
        let now = self.clock.now();
        let mut groups: BTreeMap<Group, (Retention, Vec<Decision>)> = BTreeMap::new();
        for d in plan {
            groups
                .entry((d.record.database.clone(), d.destination.clone()))
                .or_insert_with(|| (d.policy, Vec::new()))
                .1
                .push(d);
        }
        let mut out = Vec::new();
        for ((name, destination), (policy, decisions)) in groups {
            let deletions: Vec<Decision> = decisions
                .into_iter()
                .filter(|d| d.action == Action::Delete)
                .collect();
            let held_any = deletions.iter().any(|d| d.held.is_some());
            let going: Vec<&BackupRecord> = deletions
                .iter()
                .filter(|d| d.held.is_none())
                .map(|d| &d.record)
                .collect();
            let mut results = if opts.dry_run {
                Vec::new()
            } else {
                self.delete_all(&going, &destination)
            }
            .into_iter();
            let mut done = Vec::new();
            for d in deletions {
                let error = match (&d.held, opts.dry_run) {
                    (Some(_), _) | (None, true) => None,
                    (None, false) => results.next().and_then(|r| r.err()),
                };
                match (&error, &d.held) {
                    (Some(e), _) => {
                        warn!(database = %name, id = d.record.id, destination = %destination, error = %e, "could not prune");
                    }
                    (None, None) if !opts.dry_run => {
                        info!(database = %name, id = d.record.id, destination = %destination, reason = %d.reasons.join("; "), "pruned");
                        done.push(d.record.id);
                    }
                    _ => {}
                }
                out.push(Pruned {
                    reason: d.reasons.join("; "),
                    record: d.record,
                    destination: destination.name().to_string(),
                    held: d.held,
                    error,
                });
            }
            if opts.dry_run {
                continue;
            }
            self.record_pruned(&destination, &done, now)?;
            if held_any {
                warn!(database = %name, destination = %destination, "prune held: see `dbkeep prune --dry-run`");
            } else {
                let text = policy.to_string();
                let key = (name.clone(), destination.name().to_string());
                if marks.get(&key) != Some(&text) {
                    self.catalog
                        .set_retention_mark(&name, destination.name(), &text, now)?;
                }
            }
        }
        // A server's archive follows its base backups.
        if !opts.dry_run {
            let config = self.config();
            for server in config.servers.iter().filter(|s| s.archives_wal()) {
                if database.is_some_and(|d| d != server.name) {
                    continue;
                }
                if let Err(e) = super::wal::prune_wal(self, &server.name) {
                    warn!(server = %server.name, error = %e, "could not prune the WAL archive");
                }
            }
        }
        Ok(out)
    }

    /// Records in one write that `ids` left `destination`.
    fn record_pruned(
        &self,
        destination: &Destination,
        ids: &[BackupId],
        now: DateTime<Utc>,
    ) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        match destination {
            Destination::Local => self.catalog.mark_pruned_many(ids, now),
            Destination::Offsite(store) => {
                let copies: Vec<(BackupId, String)> =
                    ids.iter().map(|id| (*id, store.clone())).collect();
                self.copies().mark_copies_pruned(&copies, now)
            }
        }
    }

    /// Why `database`'s local backups must wait: a destination that takes it holds no checked
    /// copy of its newest successful backup yet.
    fn not_yet_offsite(&self, records: &[&BackupRecord], database: &str) -> Result<Option<String>> {
        let Some(newest) = records
            .iter()
            .filter(|r| r.database == database && r.pruned_at.is_none())
            .max_by_key(|r| (r.started_at, r.id))
        else {
            return Ok(None);
        };
        let config = self.config();
        let missing: Vec<&str> = config
            .offsite
            .iter()
            .filter(|o| o.takes(database))
            .filter(|o| !present_at(newest, &Destination::Offsite(o.name.clone())))
            .map(|o| o.name.as_str())
            .collect();
        Ok((!missing.is_empty()).then(|| {
            format!(
                "kept: the newest backup #{} is not yet copied to {}; run `dbkeep offsite sync`, then prune",
                newest.id,
                missing
                    .iter()
                    .map(|m| format!("`{m}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }))
    }

    /// Deletes each of `records`' copies at `destination`, one outcome per record in order;
    /// the catalog is told by the caller. Local files go in batches, each with one sync of the
    /// folder.
    fn delete_all(
        &self,
        records: &[&BackupRecord],
        destination: &Destination,
    ) -> Vec<std::result::Result<(), String>> {
        let Destination::Offsite(name) = destination else {
            return records
                .chunks(LOCAL_BATCH)
                .flat_map(|batch| self.delete_local(batch))
                .collect();
        };
        let Some(store) = self.offsite.store(name) else {
            let why = format!("off-site `{name}` cannot be opened; not deleted");
            return records.iter().map(|_| Err(why.clone())).collect();
        };
        records
            .iter()
            .map(|record| {
                let globals = self.globals_of(record)?;
                let key = crate::offsite::key_of(record)
                    .ok_or_else(|| "this backup has no file".to_string())?;
                crate::offsite::delete_copy(store.as_ref(), record, &key, globals.as_deref())
                    .map_err(|e| format!("{e}; not deleted"))
            })
            .collect()
    }

    /// Deletes the local files of `records` (all of one database), with the server's roles
    /// stored beside them.
    fn delete_local(&self, records: &[&BackupRecord]) -> Vec<std::result::Result<(), String>> {
        let Some(database) = records.first().map(|r| r.database.as_str()) else {
            return Vec::new();
        };
        // A file already gone is fine, and so is a row that never had one: the row only needs
        // to say so.
        let names: Vec<std::result::Result<Option<&str>, String>> = records
            .iter()
            .map(|r| match self.owned_name(r) {
                Ok(name) => Ok(Some(name)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(format!("{e}; not deleted")),
            })
            .collect();
        let present: Vec<&str> = names
            .iter()
            .filter_map(|n| n.clone().ok().flatten())
            .collect();
        let mut deleted = match self.local.delete_many(database, &present) {
            Ok(done) => done
                .into_iter()
                .map(|r| r.map_err(|e| format!("{e}; not deleted"))),
            Err(e) => {
                let why = format!("{e}; not deleted");
                return records.iter().map(|_| Err(why.clone())).collect();
            }
        };
        names
            .into_iter()
            .zip(records)
            .map(|(name, record)| {
                let removed = match name? {
                    Some(_) => deleted.next().unwrap_or(Ok(())),
                    None => Ok(()),
                };
                // The server's roles stored beside it go with it.
                if removed.is_ok()
                    && let Some(globals) = self.globals_of(record)?
                    && let Err(e) = self.local.delete(&store_key(&record.database, &globals))
                {
                    warn!(database = %record.database, id = record.id, error = %e, "could not delete the stored roles");
                }
                removed
            })
            .collect()
    }

    /// The name of the file holding the server's roles stored beside `record`, if any (only
    /// PostgreSQL backups store them).
    fn globals_of(&self, record: &BackupRecord) -> std::result::Result<Option<String>, String> {
        if record.kind != dbkeep_model::catalog::Kind::Postgres {
            return Ok(None);
        }
        self.catalog
            .globals_file(record.id)
            .map_err(|e| format!("{e}; not deleted"))
    }
}

/// Whether `record` has a copy at `destination` that retention has not deleted.
fn present_at(record: &BackupRecord, destination: &Destination) -> bool {
    match destination {
        Destination::Local => record.pruned_at.is_none() && record.path.is_some(),
        Destination::Offsite(name) => record.offsite_holders().contains(&name.as_str()),
    }
}

/// Why a prune of `database` at `destination` must wait for `--confirm`: its policy has not
/// pruned there before (`mark` is the policy that last did) and it would delete more than half
/// of the `total` backups there, or more than [`HOLD_OVER`] at once.
fn hold(
    database: &str,
    destination: &Destination,
    policy: &Retention,
    mark: Option<&String>,
    deleting: usize,
    total: usize,
) -> Option<String> {
    let text = policy.to_string();
    if mark.is_some_and(|m| *m == text) || (deleting * 2 <= total && deleting <= HOLD_OVER) {
        return None;
    }
    let before = match mark {
        Some(m) => format!("it changed from ({m})"),
        None => "it has not pruned there before".to_string(),
    };
    Some(format!(
        "held: the policy ({text}) would delete {deleting} of {total} backups of `{database}` at {destination}, and {before}; check `dbkeep prune --dry-run -d {database}`, then run `dbkeep prune --confirm -d {database}`"
    ))
}
