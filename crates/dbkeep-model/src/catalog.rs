//! The catalog: the record of every backup attempt, behind a small trait.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};

use crate::accounts::{Accounts, LoginFailures};
use crate::audit::AuditLog;
use crate::copies::{Copies, CopyState};
use crate::deliveries::Deliveries;
use crate::discovery::Discoveries;
use crate::error::Result;
use crate::instances::Instances;
use crate::leases::Leases;
use crate::vocab::Compression;
use crate::wal::WalArchive;

pub use crate::clock::format_time;
pub use crate::error::Unreadable;
use crate::vocab::string_enum;
pub use crate::vocab::{BackupId, Kind, Status, Trigger};

string_enum! {
    /// What became of one scheduled fire.
    Outcome {
        /// Claimed by a process and backing up now.
        Running => "running",
        /// A backup ran; `backup_id` names it.
        Ran => "ran",
        /// Not run: the previous backup of the database was still going, or it could not start.
        Skipped => "skipped",
        /// Its time passed while no dbkeep was running.
        Missed => "missed",
    }
}

/// The identifier of one scheduled fire.
pub type FireId = i64;

/// A schedule's newest fire and the status of the backup it ran, if it ran one.
pub type LastFire = (FireRecord, Option<Status>);

/// One row of the job history: a schedule's fire and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FireRecord {
    /// History identifier.
    pub id: FireId,
    /// The configured database name.
    pub database: String,
    /// The cron expression that fired.
    pub schedule: String,
    /// The instant the schedule named.
    #[serde(serialize_with = "rfc3339")]
    pub planned_at: DateTime<Utc>,
    /// When the backup actually started, if it did.
    #[serde(serialize_with = "rfc3339_opt")]
    pub started_at: Option<DateTime<Utc>>,
    /// What became of it.
    pub outcome: Outcome,
    /// The backup it ran.
    pub backup_id: Option<BackupId>,
    /// Why it was skipped or missed, or that it was a catch-up.
    pub detail: Option<String>,
    /// The instance that claimed it (`None` for fires recorded before instances were).
    pub claimed_by: Option<String>,
}

string_enum! {
    /// How deeply a verification checked a backup; each level includes the ones before.
    VerifyLevel {
        /// The stored file's SHA-256 equals the catalog's.
        Checksum => "checksum",
        /// The whole file decompresses.
        Readable => "readable",
        /// It restores into a throwaway database that passes its checks.
        Restore => "restore",
    }
}

/// One verification of a backup and its result.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    /// The backup verified.
    pub backup_id: BackupId,
    /// How deeply.
    pub level: VerifyLevel,
    /// Whether it passed.
    pub ok: bool,
    /// Why it failed (or a note on what was checked).
    pub message: Option<String>,
    /// When it began.
    #[serde(serialize_with = "rfc3339")]
    pub started_at: DateTime<Utc>,
    /// When it ended.
    #[serde(serialize_with = "rfc3339")]
    pub finished_at: DateTime<Utc>,
    /// How long the restore took, at restore level: the time a real restore would take.
    pub restore_ms: Option<u64>,
    /// The off-site destination whose copy it read; `None` for the local file.
    pub source: Option<String>,
}

/// One row of the catalog. Its JSON form (`dbkeep list --json`) is a public contract.
#[derive(Debug, Clone, Serialize)]
pub struct BackupRecord {
    /// Catalog identifier, increasing with time.
    pub id: BackupId,
    /// The configured database name.
    pub database: String,
    /// The kind of database.
    pub kind: Kind,
    /// Where the attempt stands.
    pub status: Status,
    /// What started it.
    pub trigger: Trigger,
    /// The backup file's name (success and in-progress rows).
    pub file_name: Option<String>,
    /// The backup file's absolute path (success and in-progress rows).
    pub path: Option<PathBuf>,
    /// Size of the stored file in bytes.
    pub size_bytes: Option<u64>,
    /// SHA-256 of the stored file, lowercase hex, as `sha256sum` prints it.
    pub sha256: Option<String>,
    /// Compression of the stored file.
    pub compression: Compression,
    /// When the attempt began.
    #[serde(serialize_with = "rfc3339")]
    pub started_at: DateTime<Utc>,
    /// When it ended.
    #[serde(serialize_with = "rfc3339_opt")]
    pub finished_at: Option<DateTime<Utc>>,
    /// How long it took, in milliseconds.
    pub duration_ms: Option<u64>,
    /// Why it failed, in words.
    pub error: Option<String>,
    /// When retention deleted its file.
    #[serde(serialize_with = "rfc3339_opt")]
    pub pruned_at: Option<DateTime<Utc>>,
    /// Whether it is pinned: never pruned from any destination, whatever the policy.
    pub pinned: bool,
    /// Why it is pinned, in the words of whoever pinned it.
    pub pin_note: Option<String>,
    /// When it was last verified.
    #[serde(serialize_with = "rfc3339_opt")]
    pub verified_at: Option<DateTime<Utc>>,
    /// How deeply it was last verified.
    pub verify_level: Option<VerifyLevel>,
    /// `ok` or `failed`: how its last verification ended.
    pub verify_status: Option<String>,
    /// Why its last verification failed.
    pub verify_error: Option<String>,
    /// Whether its file is encrypted with age (its name ends `.age`).
    pub encrypted: bool,
    /// Its off-site copies, by destination.
    pub copies: Vec<CopySummary>,
    /// The instance that made it: its local file is on that instance's disk.
    pub instance: Option<String>,
}

/// A row of a listing as read: its record, or why it cannot be read.
pub type Listed = std::result::Result<BackupRecord, Unreadable>;

/// The id of a listed row, read or not.
pub fn listed_id(row: &Listed) -> BackupId {
    match row {
        Ok(r) => r.id,
        Err(u) => u.id,
    }
}

impl BackupRecord {
    /// Whether a copy of it is still stored somewhere: its local file (not pruned), or an
    /// off-site copy that arrived and that retention has not deleted.
    pub fn is_stored(&self) -> bool {
        self.status == Status::Success
            && (self.pruned_at.is_none() || !self.offsite_holders().is_empty())
    }

    /// The off-site destinations that still hold a copy of it, by name.
    pub fn offsite_holders(&self) -> Vec<&str> {
        self.copies
            .iter()
            .filter(|c| c.state == CopyState::Uploaded && c.pruned_at.is_none())
            .map(|c| c.store.as_str())
            .collect()
    }
}

/// The rows a catalog left out of its listings because it could not read them: each logged
/// once (a page read every few seconds does not repeat it), all of them there to be shown.
#[derive(Debug, Default)]
pub struct LeftOut(Mutex<BTreeMap<BackupId, Unreadable>>);

impl LeftOut {
    /// Notes that `row` was left out, with a warning in the log the first time (or when what
    /// it holds changed).
    pub fn note(&self, row: Unreadable) {
        let mut rows = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if rows.get(&row.id) == Some(&row) {
            return;
        }
        tracing::warn!(
            id = row.id,
            column = row.column,
            value = %row.value,
            why = %row.why,
            "a catalog row cannot be read; it is left out"
        );
        rows.insert(row.id, row);
    }

    /// Every row left out so far, by id.
    pub fn rows(&self) -> Vec<Unreadable> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }
}

/// A backup's copy at one off-site destination, as `list --json` and the API show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct CopySummary {
    /// The destination (`[[offsite]] name`).
    pub store: String,
    /// Whether it arrived (`uploaded`) or every try failed (`failed`).
    pub state: CopyState,
    /// Bytes uploaded.
    pub size_bytes: Option<u64>,
    /// SHA-256 of the bytes uploaded.
    pub sha256: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// When it arrived (RFC 3339).
    pub uploaded_at: Option<String>,
    /// When retention deleted it (RFC 3339).
    pub pruned_at: Option<String>,
}

fn rfc3339<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_time(t))
}

fn rfc3339_opt<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => rfc3339(t, s),
        None => s.serialize_none(),
    }
}

/// A new attempt, recorded as `in_progress` before any work starts.
#[derive(Debug, Clone)]
pub struct NewBackup<'a> {
    /// The configured database name.
    pub database: &'a str,
    /// The kind of database.
    pub kind: Kind,
    /// What started it.
    pub trigger: Trigger,
    /// The final file name it will be stored under.
    pub file_name: &'a str,
    /// The final path it will be stored at.
    pub path: &'a std::path::Path,
    /// Compression of the stored file.
    pub compression: Compression,
    /// When it began.
    pub started_at: DateTime<Utc>,
    /// The instance making it (on whose disk its file is written).
    pub instance: &'a str,
}

/// What a successful attempt produced.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Size of the stored file in bytes.
    pub size_bytes: u64,
    /// SHA-256 of the stored file, lowercase hex.
    pub sha256: String,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
}

/// Which rows to list; empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only this database.
    pub database: Option<String>,
    /// Only this status.
    pub status: Option<Status>,
    /// Only rows with an id below this one (keyset pagination, newest first).
    pub before: Option<BackupId>,
    /// At most this many rows.
    pub limit: Option<u32>,
}

/// The record of every backup attempt, and beside it the accounts, off-site copies,
/// notification deliveries, leases and instances that the other layers record. Implementations
/// must be safe to share across threads and, for shared catalogs, across processes.
pub trait Catalog:
    Accounts
    + AuditLog
    + LoginFailures
    + Copies
    + Deliveries
    + Discoveries
    + Leases
    + Instances
    + WalArchive
    + Send
    + Sync
{
    /// Records a new attempt as `in_progress` and returns its id.
    ///
    /// # Errors
    /// When the catalog cannot be written.
    fn begin(&self, new: &NewBackup<'_>) -> Result<BackupId>;

    /// Marks an attempt `success` with what it stored.
    ///
    /// # Errors
    /// When the catalog cannot be written.
    fn succeed(&self, id: BackupId, stored: &Stored) -> Result<()>;

    /// Marks an attempt `failed` with a readable reason; it keeps no file.
    ///
    /// # Errors
    /// When the catalog cannot be written.
    fn fail(
        &self,
        id: BackupId,
        error: &str,
        finished_at: DateTime<Utc>,
        duration_ms: u64,
    ) -> Result<()>;

    /// Records that retention deleted the attempt's file.
    ///
    /// # Errors
    /// When the catalog cannot be written.
    fn mark_pruned(&self, id: BackupId, at: DateTime<Utc>) -> Result<()> {
        self.mark_pruned_many(&[id], at)
    }

    /// Records that retention deleted the files of every attempt of `ids`, all in one
    /// transaction (ids with no row are passed over).
    ///
    /// # Errors
    /// When the catalog cannot be written; then none of them is marked.
    fn mark_pruned_many(&self, ids: &[BackupId], at: DateTime<Utc>) -> Result<()>;

    /// Pins a backup (with `note`, which replaces an earlier one) so that retention never
    /// prunes it from any destination, or unpins it (and forgets its note). Returns false
    /// when no row has that id.
    ///
    /// # Errors
    /// [`crate::error::Error::Refused`] when the backup is not a successful one (only those
    /// can be pinned; unpinning is always allowed); when the catalog cannot be written.
    fn set_pin(&self, id: BackupId, pinned: bool, note: Option<&str>) -> Result<bool>;

    /// The policy, in words, that the last prune of `database` at `destination` (`"local"`,
    /// or an `[[offsite]]` name) applied, if one was recorded.
    ///
    /// # Errors
    /// When the catalog cannot be read.
    fn retention_mark(&self, database: &str, destination: &str) -> Result<Option<String>> {
        Ok(self
            .retention_marks()?
            .into_iter()
            .find(|(d, dest, _)| d == database && dest == destination)
            .map(|(_, _, policy)| policy))
    }

    /// Records (or replaces) the policy a prune of `database` at `destination` applied, at
    /// `at`.
    ///
    /// # Errors
    /// When the catalog cannot be written.
    fn set_retention_mark(
        &self,
        database: &str,
        destination: &str,
        policy: &str,
        at: DateTime<Utc>,
    ) -> Result<()>;

    /// Forgets the marks of every destination of `database`, so that its next prune counts as
    /// a first one.
    ///
    /// # Errors
    /// When the catalog cannot be written.
    fn clear_retention_marks(&self, database: &str) -> Result<()>;

    /// Every recorded mark as (database, destination, policy), by database then destination.
    ///
    /// # Errors
    /// When the catalog cannot be read.
    fn retention_marks(&self) -> Result<Vec<(String, String, String)>>;

    /// Rows matching `filter`, newest first, each read or [`Unreadable`]; `limit` counts both.
    ///
    /// # Errors
    /// When the catalog cannot be read.
    fn scan(&self, filter: &ListFilter) -> Result<Vec<Listed>>;

    /// Rows matching `filter` that this version can read, newest first; the others are left
    /// out (and noted in [`Catalog::left_out`]), and a page with a `limit` still holds that
    /// many readable rows when the catalog has them.
    ///
    /// # Errors
    /// When the catalog cannot be read.
    fn list(&self, filter: &ListFilter) -> Result<Vec<BackupRecord>> {
        let mut out = Vec::new();
        let mut page = filter.clone();
        loop {
            let rows = self.scan(&page)?;
            let (full, last) = (
                page.limit.is_some_and(|n| rows.len() == n as usize),
                rows.last().map(listed_id),
            );
            let mut missing = 0u32;
            for row in rows {
                match row {
                    Ok(r) => out.push(r),
                    Err(u) => {
                        missing += 1;
                        self.left_out().note(u);
                    }
                }
            }
            // A full page with rows left out: as many more, from further back.
            match last {
                Some(last) if full && missing > 0 => {
                    page.before = Some(last);
                    page.limit = Some(missing);
                }
                _ => return Ok(out),
            }
        }
    }

    /// The rows that listings left out because this version cannot read them.
    fn left_out(&self) -> &LeftOut;

    /// The newest `per` rows of each of `databases` (with `status`, when given), newest first
    /// within each database: what a page about every database reads, in one request where
    /// the catalog is on a server.
    ///
    /// # Errors
    /// When the catalog cannot be read.
    fn recent_of_each(
        &self,
        databases: &[String],
        status: Option<Status>,
        per: u32,
    ) -> Result<Vec<BackupRecord>> {
        let mut out = Vec::new();
        for database in databases {
            out.extend(self.list(&ListFilter {
                database: Some(database.clone()),
                status,
                limit: Some(per),
                ..ListFilter::default()
            })?);
        }
        Ok(out)
    }

    /// The newest verification of each of `databases` that has one (only passed ones with
    /// `ok_only`), by database.
    ///
    /// # Errors
    /// When the catalog cannot be read.
    fn last_verifications(
        &self,
        databases: &[String],
        ok_only: bool,
    ) -> Result<Vec<(String, Verification)>> {
        let mut out = Vec::new();
        for database in databases {
            if let Some(v) = self.last_verification(database, ok_only)? {
                out.push((database.clone(), v));
            }
        }
        Ok(out)
    }

    /// One row by id.
    ///
    /// # Errors
    /// When the catalog cannot be read; [`crate::error::Error::Unreadable`] when that row cannot.
    fn get(&self, id: BackupId) -> Result<Option<BackupRecord>>;

    /// One row's status alone (a column every version reads): what a fire's result needs,
    /// also of a row whose other columns do not read.
    ///
    /// # Errors
    /// When the catalog cannot be read.
    fn status(&self, id: BackupId) -> Result<Option<Status>>;

    /// Whether any row of `database`, pruned or not, already uses `file_name`.
    ///
    /// # Errors
    /// When the catalog cannot be read.
    fn name_in_use(&self, database: &str, file_name: &str) -> Result<bool>;

    /// Records a fire of `schedule` planned for `planned_at` with `outcome` (claimed by the
    /// instance `claimant`), unless a row for that fire exists already. Returns its id when this call created it: with `Running`,
    /// that is the claim that makes a fire run exactly once across processes.
    ///
    /// # Errors
    /// When the catalog cannot be written.
    fn claim_fire(
        &self,
        database: &str,
        schedule: &str,
        planned_at: DateTime<Utc>,
        outcome: Outcome,
        detail: Option<&str>,
        claimant: Option<&str>,
    ) -> Result<Option<FireId>>;

    /// Records what became of a claimed fire.
    ///
    /// # Errors
    /// When the catalog cannot be written.
    fn finish_fire(
        &self,
        id: FireId,
        outcome: Outcome,
        started_at: Option<DateTime<Utc>>,
        backup_id: Option<BackupId>,
        detail: Option<&str>,
    ) -> Result<()>;

    /// Keeps a run's log with its row: the database tool's messages and dbkeep's steps.
    ///
    /// # Errors
    /// When the catalog cannot be written.
    fn set_log(&self, id: BackupId, log: &str) -> Result<()>;

    /// A run's log, if it kept one.
    ///
    /// # Errors
    /// When the catalog cannot be read.
    fn log(&self, id: BackupId) -> Result<Option<String>>;

    /// Records a verification, and keeps it on the backup's row as its latest.
    ///
    /// # Errors
    /// When the catalog cannot be written.
    fn record_verification(&self, v: &Verification) -> Result<()>;

    /// The newest verification of any backup of `database` (only passed ones with `ok_only`).
    ///
    /// # Errors
    /// When the catalog cannot be read.
    fn last_verification(&self, database: &str, ok_only: bool) -> Result<Option<Verification>>;

    /// A backup's verifications, newest first.
    ///
    /// # Errors
    /// When the catalog cannot be read.
    fn verifications(&self, backup_id: BackupId) -> Result<Vec<Verification>>;

    /// Keeps a backup's tables with their row counts.
    ///
    /// # Errors
    /// When the catalog cannot be written.
    fn set_table_rows(&self, id: BackupId, tables: &[(String, u64)]) -> Result<()>;

    /// A backup's tables with their row counts, by name (empty when none were recorded).
    ///
    /// # Errors
    /// When the catalog cannot be read.
    fn table_rows(&self, id: BackupId) -> Result<Vec<(String, u64)>>;

    /// Records the name of the file beside a backup that holds its server's roles.
    ///
    /// # Errors
    /// When the catalog cannot be written.
    fn set_globals_file(&self, id: BackupId, file_name: &str) -> Result<()>;

    /// The name of the file beside a backup that holds its server's roles, if one was stored.
    ///
    /// # Errors
    /// When the catalog cannot be read.
    fn globals_file(&self, id: BackupId) -> Result<Option<String>>;

    /// How many rows each (database, status) pair has.
    ///
    /// # Errors
    /// When the catalog cannot be read.
    fn status_counts(&self) -> Result<Vec<(String, Status, u64)>>;

    /// A number that changes whenever a backup, an off-site copy or a verification is
    /// written, in the same transaction as the change: what was read after an equal stamp is
    /// still what the catalog holds.
    ///
    /// # Errors
    /// When the catalog cannot be read.
    fn change_stamp(&self) -> Result<i64>;

    /// The fires still marked running, of every database, that have no run yet (claimed, not
    /// started, or whose instance stopped before it started one).
    ///
    /// # Errors
    /// When the catalog cannot be read.
    fn unstarted_fires(&self) -> Result<Vec<FireRecord>>;

    /// The fires of `database` (and `schedule`, when given), newest planned first.
    ///
    /// # Errors
    /// When the catalog cannot be read.
    fn fires(&self, database: &str, schedule: Option<&str>, limit: u32) -> Result<Vec<FireRecord>>;

    /// Each (database, schedule) pair's newest fire, in the order given, with the status of
    /// the backup it ran (for the verdict); `None` for a pair that never
    /// fired. A catalog on a server answers in one request.
    ///
    /// # Errors
    /// When the catalog cannot be read.
    fn last_fires(&self, pairs: &[(String, String)]) -> Result<Vec<Option<LastFire>>> {
        pairs
            .iter()
            .map(|(database, schedule)| {
                let Some(fire) = self.fires(database, Some(schedule), 1)?.pop() else {
                    return Ok(None);
                };
                let status = match fire.backup_id {
                    Some(id) => self.status(id)?,
                    None => None,
                };
                Ok(Some((fire, status)))
            })
            .collect()
    }
}
