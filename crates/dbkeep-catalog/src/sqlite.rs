//! The default catalog: an embedded SQLite database beside the configuration.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use rusqlite_migration::{M, Migrations};

use crate::columns::RECORD_COLUMNS;
use crate::columns::quoted;
use dbkeep_model::catalog::{
    BackupId, BackupRecord, Catalog, FireId, FireRecord, LeftOut, ListFilter, Listed, NewBackup,
    Outcome, Status, Stored, Unreadable, Verification, format_time,
};
use dbkeep_model::error::{Error, Result};

/// Schema versions, applied in order; never edit one that has shipped, add the next.
const MIGRATIONS: &[M<'static>] = &[
    M::up(include_str!("../migrations/0001_backups.sql")),
    M::up(include_str!("../migrations/0002_fires.sql")),
    M::up(include_str!("../migrations/0003_accounts.sql")),
    // Rebuilds `backups`, which `fires` references: foreign keys are off while migrating, so
    // this migration checks them itself before it commits.
    M::up(include_str!(
        "../migrations/0004_run_log_and_open_lists.sql"
    ))
    .foreign_key_check(),
    M::up(include_str!("../migrations/0005_verifications.sql")),
    M::up(include_str!("../migrations/0006_backup_tables.sql")),
    M::up(include_str!("../migrations/0007_globals.sql")),
    M::up(include_str!("../migrations/0008_notifications.sql")),
    M::up(include_str!("../migrations/0009_copies.sql")),
    M::up(include_str!("../migrations/0010_verification_source.sql")),
    M::up(include_str!("../migrations/0011_offsite_failures.sql")),
    M::up(include_str!("../migrations/0012_stale_alerts.sql")),
    M::up(include_str!("../migrations/0013_leases.sql")),
    M::up(include_str!("../migrations/0014_instances.sql")),
    M::up(include_str!("../migrations/0015_login_failures.sql")),
    M::up(include_str!("../migrations/0016_instance_columns.sql")),
    M::up(include_str!("../migrations/0017_running_fires.sql")),
    M::up(include_str!("../migrations/0018_change_stamp.sql")),
    M::up(include_str!("../migrations/0019_channel_names.sql")),
    M::up(include_str!(
        "../migrations/0020_pins_and_retention_marks.sql"
    )),
    M::up(include_str!("../migrations/0021_disk_alerts.sql")),
    M::up(include_str!("../migrations/0022_discovered.sql")),
    M::up(include_str!("../migrations/0023_roles_and_audit.sql")),
    M::up(include_str!("../migrations/0024_two_factor.sql")),
    M::up(include_str!("../migrations/0025_single_sign_on.sql")),
    M::up(include_str!("../migrations/0026_wal_archive.sql")),
];

/// A catalog in a SQLite file, safe for several processes at once (WAL, busy timeout).
pub struct SqliteCatalog {
    pub(crate) path: PathBuf,
    conn: Mutex<Connection>,
    left_out: LeftOut,
}

impl SqliteCatalog {
    /// Opens (creating when absent, mode 0600) and migrates the catalog at `path`.
    ///
    /// # Errors
    /// [`Error::Catalog`] when the file cannot be created, opened or migrated.
    pub fn open(path: &Path) -> Result<Self> {
        let err = |message: String| Error::Catalog {
            path: path.to_path_buf(),
            message,
        };
        if let Some(dir) = path.parent() {
            dbkeep_model::storage::create_private_parents(dir)
                .map_err(|e| err(format!("cannot create its folder: {e}")))?;
        }
        match dbkeep_model::storage::create_private_file(path) {
            // Another process created it a moment ago: fine, it migrates under the lock below.
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(err(format!("cannot create: {e}")));
            }
            _ => {}
        }
        // Several processes may open a new catalog at once; one migrates while the others wait.
        let _migrating = dbkeep_model::lock::exclusive(
            &dbkeep_model::lock::lock_dir(path).join(".catalog.lock"),
        )
        .map_err(|e| err(format!("cannot lock for migration: {e}")))?;
        let mut conn = Connection::open(path).map_err(|e| err(e.to_string()))?;
        conn.busy_timeout(Duration::from_secs(30))
            .map_err(|e| err(e.to_string()))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| err(e.to_string()))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| err(e.to_string()))?;
        // A migration that rebuilds a table needs foreign keys off (outside its transaction);
        // each such migration checks them itself before committing.
        conn.pragma_update(None, "foreign_keys", "OFF")
            .map_err(|e| err(e.to_string()))?;
        Migrations::from_slice(MIGRATIONS)
            .to_latest(&mut conn)
            .map_err(|e| err(format!("cannot migrate: {e}")))?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(|e| err(e.to_string()))?;
        Ok(SqliteCatalog {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
            left_out: LeftOut::default(),
        })
    }

    pub(super) fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half-written row: SQLite rolls back.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn err(&self, e: rusqlite::Error) -> Error {
        Error::Catalog {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }
}

/// The most rows one statement of [`Catalog::mark_pruned_many`] marks (each id is a
/// parameter; SQLite takes at most 32,766).
const PRUNED_PER_STATEMENT: usize = 500;

const COLUMNS: &str = "id, database, kind, status, trigger, file_name, path, size_bytes, sha256, \
    compression, started_at, finished_at, duration_ms, error, pruned_at, \
    verified_at, verify_level, verify_status, verify_error, \
    (SELECT json_group_array(json_object('store', store, 'state', state, 'size_bytes', size_bytes, \
      'sha256', sha256, 'error', error, 'uploaded_at', uploaded_at, 'pruned_at', pruned_at) \
      ORDER BY store) \
     FROM copies WHERE copies.backup_id = backups.id), instance, pinned, pin_note";

impl SqliteCatalog {
    /// The rows of `sql`, a `SELECT key, count(*) … GROUP BY key`, as (key, count) pairs.
    pub(super) fn counts(&self, sql: &str) -> Result<Vec<(String, u64)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)?.max(0) as u64)))
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }
}

fn parse<T: std::str::FromStr<Err = String>>(idx: usize, text: String) -> rusqlite::Result<T> {
    text.parse().map_err(|e: String| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, e.into())
    })
}

pub(super) fn time(idx: usize, text: Option<String>) -> rusqlite::Result<Option<DateTime<Utc>>> {
    text.map(|t| {
        DateTime::parse_from_rfc3339(&t)
            .map(|d| d.with_timezone(&Utc))
            .map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    idx,
                    rusqlite::types::Type::Text,
                    format!("not an RFC 3339 time: {e}").into(),
                )
            })
    })
    .transpose()
}

fn verification(r: &Row<'_>) -> rusqlite::Result<Verification> {
    Ok(Verification {
        backup_id: r.get(0)?,
        level: parse(1, r.get(1)?)?,
        ok: r.get::<_, String>(2)? == "ok",
        message: r.get(3)?,
        started_at: time(4, Some(r.get(4)?))?.unwrap_or_default(),
        finished_at: time(5, Some(r.get(5)?))?.unwrap_or_default(),
        restore_ms: r.get::<_, Option<i64>>(6)?.map(|n| n.max(0) as u64),
        source: r.get(7)?,
    })
}

/// A row of the fires table (its columns in their order) as a fire.
fn fire(row: &Row<'_>) -> rusqlite::Result<FireRecord> {
    Ok(FireRecord {
        id: row.get(0)?,
        database: row.get(1)?,
        schedule: row.get(2)?,
        planned_at: time(3, Some(row.get(3)?))?.unwrap_or_default(),
        started_at: time(4, row.get(4)?)?,
        outcome: parse(5, row.get(5)?)?,
        backup_id: row.get(6)?,
        detail: row.get(7)?,
        claimed_by: row.get(8)?,
    })
}

fn record(row: &Row<'_>) -> rusqlite::Result<BackupRecord> {
    Ok(BackupRecord {
        id: row.get(0)?,
        database: row.get(1)?,
        kind: parse(2, row.get(2)?)?,
        status: parse(3, row.get(3)?)?,
        trigger: parse(4, row.get(4)?)?,
        file_name: row.get(5)?,
        path: row.get::<_, Option<String>>(6)?.map(PathBuf::from),
        size_bytes: row.get::<_, Option<i64>>(7)?.map(|n| n.max(0) as u64),
        sha256: row.get(8)?,
        compression: parse(9, row.get(9)?)?,
        started_at: time(10, Some(row.get(10)?))?.unwrap_or_default(),
        finished_at: time(11, row.get(11)?)?,
        duration_ms: row.get::<_, Option<i64>>(12)?.map(|n| n.max(0) as u64),
        error: row.get(13)?,
        pruned_at: time(14, row.get(14)?)?,
        verified_at: time(15, row.get(15)?)?,
        verify_level: row
            .get::<_, Option<String>>(16)?
            .map(|l| parse(16, l))
            .transpose()?,
        verify_status: row.get(17)?,
        verify_error: row.get(18)?,
        encrypted: row
            .get::<_, Option<String>>(5)?
            .is_some_and(|n| dbkeep_model::vocab::is_encrypted(&n)),
        copies: match row.get::<_, Option<String>>(19)? {
            Some(json) => serde_json::from_str(&json).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(19, rusqlite::types::Type::Text, e.into())
            })?,
            None => Vec::new(),
        },
        instance: row.get(20)?,
        pinned: row.get(21)?,
        pin_note: row.get(22)?,
    })
}

/// A row of [`COLUMNS`] as read: its record, or the column this version cannot read.
fn listed(row: &Row<'_>) -> rusqlite::Result<Listed> {
    use rusqlite::Error::{FromSqlConversionFailure, IntegralValueOutOfRange, InvalidColumnType};
    use rusqlite::types::ValueRef;
    let e = match record(row) {
        Ok(r) => return Ok(Ok(r)),
        Err(e) => e,
    };
    let (idx, why) = match &e {
        FromSqlConversionFailure(idx, _, why) => (*idx, why.to_string()),
        InvalidColumnType(idx, _, found) => (*idx, format!("a {found} value, of no use there")),
        IntegralValueOutOfRange(idx, _) => (*idx, "out of range".to_string()),
        _ => return Err(e),
    };
    let value = match row.get_ref(idx)? {
        ValueRef::Null => "NULL".to_string(),
        ValueRef::Integer(n) => n.to_string(),
        ValueRef::Real(x) => x.to_string(),
        ValueRef::Text(t) => quoted(&String::from_utf8_lossy(t)),
        ValueRef::Blob(b) => format!("a blob of {} bytes", b.len()),
    };
    Ok(Err(Unreadable {
        id: row.get(0)?,
        database: row.get(1).ok(),
        column: RECORD_COLUMNS.get(idx).copied().unwrap_or("?"),
        value,
        why: why.trim().to_string(),
    }))
}

impl Catalog for SqliteCatalog {
    fn begin(&self, new: &NewBackup<'_>) -> Result<BackupId> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO backups (database, kind, status, trigger, file_name, path, compression, started_at, instance)
             VALUES (?1, ?2, 'in_progress', ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                new.database,
                new.kind.as_str(),
                new.trigger.as_str(),
                new.file_name,
                new.path.to_string_lossy(),
                new.compression.as_str(),
                format_time(&new.started_at),
                new.instance,
            ],
        )
        .map_err(|e| self.err(e))?;
        Ok(conn.last_insert_rowid())
    }

    fn succeed(&self, id: BackupId, s: &Stored) -> Result<()> {
        self.conn()
            .execute(
                "UPDATE backups SET status = 'success', size_bytes = ?2, sha256 = ?3, finished_at = ?4,
                 duration_ms = ?5, error = NULL WHERE id = ?1",
                params![id, s.size_bytes as i64, s.sha256, format_time(&s.finished_at), s.duration_ms as i64],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn fail(
        &self,
        id: BackupId,
        error: &str,
        finished_at: DateTime<Utc>,
        duration_ms: u64,
    ) -> Result<()> {
        self.conn()
            .execute(
                "UPDATE backups SET status = 'failed', error = ?2, finished_at = ?3, duration_ms = ?4,
                 file_name = NULL, path = NULL, size_bytes = NULL, sha256 = NULL WHERE id = ?1",
                params![id, error, format_time(&finished_at), duration_ms as i64],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn mark_pruned_many(&self, ids: &[BackupId], at: DateTime<Utc>) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let at = format_time(&at);
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        for chunk in ids.chunks(PRUNED_PER_STATEMENT) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let sql = format!("UPDATE backups SET pruned_at = ? WHERE id IN ({marks})");
            let values = std::iter::once(rusqlite::types::Value::from(at.clone()))
                .chain(chunk.iter().map(|id| rusqlite::types::Value::from(*id)));
            tx.prepare_cached(&sql)
                .and_then(|mut stmt| stmt.execute(rusqlite::params_from_iter(values)))
                .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    fn set_pin(&self, id: BackupId, pinned: bool, note: Option<&str>) -> Result<bool> {
        let mut conn = self.conn();
        // Taken for writing from the start: the status read is still true when the row is
        // written.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let status = tx
            .query_row("SELECT status FROM backups WHERE id = ?1", [id], |r| {
                r.get::<_, String>(0)
            })
            .optional()
            .map_err(|e| self.err(e))?;
        let Some(status) = status else {
            return Ok(false);
        };
        if pinned && status != Status::Success.as_str() {
            return Err(crate::columns::unpinnable(id, &status));
        }
        tx.execute(
            "UPDATE backups SET pinned = ?2, pin_note = ?3 WHERE id = ?1",
            params![id, pinned, if pinned { note } else { None }],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(true)
    }

    fn set_retention_mark(
        &self,
        database: &str,
        destination: &str,
        policy: &str,
        at: DateTime<Utc>,
    ) -> Result<()> {
        self.conn()
            .execute(
                "INSERT INTO retention_marks (database, destination, policy, marked_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (database, destination) DO UPDATE SET policy = excluded.policy,
                   marked_at = excluded.marked_at",
                params![database, destination, policy, format_time(&at)],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn clear_retention_marks(&self, database: &str) -> Result<()> {
        self.conn()
            .execute(
                "DELETE FROM retention_marks WHERE database = ?1",
                [database],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn retention_marks(&self) -> Result<Vec<(String, String, String)>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT database, destination, policy FROM retention_marks ORDER BY database, destination",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    fn scan(&self, f: &ListFilter) -> Result<Vec<Listed>> {
        // Only the conditions asked for, so SQLite can walk an index (or the primary key)
        // newest first and stop at the limit, however deep the page: `?1 IS NULL OR …`
        // forms would make it scan the table.
        let mut conditions = Vec::new();
        let mut values: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(database) = &f.database {
            values.push(database.clone().into());
            conditions.push(format!("database = ?{}", values.len()));
        }
        if let Some(status) = f.status {
            values.push(status.as_str().to_string().into());
            conditions.push(format!("status = ?{}", values.len()));
        }
        if let Some(before) = f.before {
            values.push(before.into());
            conditions.push(format!("id < ?{}", values.len()));
        }
        values.push(f.limit.map_or(-1, i64::from).into());
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM backups {filter} ORDER BY id DESC LIMIT ?{}",
            values.len()
        );
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(values), listed)
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    fn left_out(&self) -> &LeftOut {
        &self.left_out
    }

    fn get(&self, id: BackupId) -> Result<Option<BackupRecord>> {
        let conn = self.conn();
        let row = conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM backups WHERE id = ?1"),
                [id],
                listed,
            )
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(row.transpose()?)
    }

    fn status(&self, id: BackupId) -> Result<Option<Status>> {
        self.conn()
            .query_row("SELECT status FROM backups WHERE id = ?1", [id], |r| {
                parse(0, r.get(0)?)
            })
            .optional()
            .map_err(|e| self.err(e))
    }

    fn name_in_use(&self, database: &str, file_name: &str) -> Result<bool> {
        self.conn()
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM backups WHERE database = ?1 AND file_name = ?2)",
                params![database, file_name],
                |row| row.get(0),
            )
            .map_err(|e| self.err(e))
    }

    fn claim_fire(
        &self,
        database: &str,
        schedule: &str,
        planned_at: DateTime<Utc>,
        outcome: Outcome,
        detail: Option<&str>,
        claimant: Option<&str>,
    ) -> Result<Option<FireId>> {
        let conn = self.conn();
        let inserted = conn
            .execute(
                "INSERT INTO fires (database, schedule, planned_at, outcome, detail, claimed_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (database, schedule, planned_at) DO NOTHING",
                params![database, schedule, format_time(&planned_at), outcome.as_str(), detail, claimant],
            )
            .map_err(|e| self.err(e))?;
        Ok((inserted == 1).then(|| conn.last_insert_rowid()))
    }

    fn finish_fire(
        &self,
        id: FireId,
        outcome: Outcome,
        started_at: Option<DateTime<Utc>>,
        backup_id: Option<BackupId>,
        detail: Option<&str>,
    ) -> Result<()> {
        self.conn()
            .execute(
                "UPDATE fires SET outcome = ?2, started_at = COALESCE(?3, started_at), backup_id = ?4,
                 detail = COALESCE(?5, detail) WHERE id = ?1",
                params![id, outcome.as_str(), started_at.as_ref().map(format_time), backup_id, detail],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn unstarted_fires(&self) -> Result<Vec<FireRecord>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, database, schedule, planned_at, started_at, outcome, backup_id, detail, claimed_by FROM fires
                 WHERE outcome = 'running' AND backup_id IS NULL ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map([], fire).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    fn fires(&self, database: &str, schedule: Option<&str>, limit: u32) -> Result<Vec<FireRecord>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, database, schedule, planned_at, started_at, outcome, backup_id, detail, claimed_by FROM fires
                 WHERE database = ?1 AND (?2 IS NULL OR schedule = ?2) ORDER BY planned_at DESC, id DESC LIMIT ?3",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![database, schedule, limit], fire)
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    fn set_log(&self, id: BackupId, log: &str) -> Result<()> {
        self.conn()
            .execute(
                "UPDATE backups SET log = ?2 WHERE id = ?1",
                params![id, log],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn log(&self, id: BackupId) -> Result<Option<String>> {
        self.conn()
            .query_row("SELECT log FROM backups WHERE id = ?1", [id], |r| r.get(0))
            .optional()
            .map(Option::flatten)
            .map_err(|e| self.err(e))
    }

    fn record_verification(&self, v: &Verification) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        let status = if v.ok { "ok" } else { "failed" };
        tx.execute(
            "INSERT INTO verifications (backup_id, level, status, message, started_at, finished_at, restore_ms, source)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                v.backup_id,
                v.level.as_str(),
                status,
                v.message,
                format_time(&v.started_at),
                format_time(&v.finished_at),
                v.restore_ms.map(|ms| ms as i64),
                v.source
            ],
        )
        .map_err(|e| self.err(e))?;
        tx.execute(
            "UPDATE backups SET verified_at = ?2, verify_level = ?3, verify_status = ?4, verify_error = ?5 WHERE id = ?1",
            params![
                v.backup_id,
                format_time(&v.finished_at),
                v.level.as_str(),
                status,
                if v.ok { None } else { v.message.as_deref() }
            ],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    fn verifications(&self, backup_id: BackupId) -> Result<Vec<Verification>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT backup_id, level, status, message, started_at, finished_at, restore_ms, source
                 FROM verifications WHERE backup_id = ?1 ORDER BY id DESC",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([backup_id], verification)
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    fn last_verification(&self, database: &str, ok_only: bool) -> Result<Option<Verification>> {
        self.conn()
            .query_row(
                "SELECT v.backup_id, v.level, v.status, v.message, v.started_at, v.finished_at, v.restore_ms, v.source
                 FROM verifications v JOIN backups b ON b.id = v.backup_id
                 WHERE b.database = ?1 AND (?2 = 0 OR v.status = 'ok') ORDER BY v.id DESC LIMIT 1",
                params![database, i64::from(ok_only)],
                verification,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    fn set_table_rows(&self, id: BackupId, tables: &[(String, u64)]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        for (name, rows) in tables {
            tx.execute(
                "INSERT OR REPLACE INTO backup_tables (backup_id, name, rows) VALUES (?1, ?2, ?3)",
                params![id, name, *rows as i64],
            )
            .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    fn table_rows(&self, id: BackupId) -> Result<Vec<(String, u64)>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT name, rows FROM backup_tables WHERE backup_id = ?1 ORDER BY name",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([id], |r| Ok((r.get(0)?, r.get::<_, i64>(1)?.max(0) as u64)))
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    fn set_globals_file(&self, id: BackupId, file_name: &str) -> Result<()> {
        self.conn()
            .execute(
                "UPDATE backups SET globals_file = ?2 WHERE id = ?1",
                params![id, file_name],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn globals_file(&self, id: BackupId) -> Result<Option<String>> {
        self.conn()
            .query_row(
                "SELECT globals_file FROM backups WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()
            .map(Option::flatten)
            .map_err(|e| self.err(e))
    }

    fn change_stamp(&self) -> Result<i64> {
        self.conn()
            .prepare_cached("SELECT n FROM catalog_stamp WHERE id = 1")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .map_err(|e| self.err(e))
    }

    fn status_counts(&self) -> Result<Vec<(String, Status, u64)>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT database, status, count(*) FROM backups GROUP BY database, status ORDER BY database, status")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    parse(1, r.get(1)?)?,
                    r.get::<_, i64>(2)?.max(0) as u64,
                ))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn the_rebuild_of_migration_4_keeps_every_row_id_and_fire_link() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.sqlite3");
        {
            let mut conn = Connection::open(&path).unwrap();
            Migrations::from_slice(&MIGRATIONS[..3])
                .to_latest(&mut conn)
                .unwrap();
            conn.execute_batch(
                "INSERT INTO backups (id, database, kind, status, trigger, file_name, path, size_bytes, sha256, compression, started_at, finished_at, duration_ms)
                 VALUES (41, 'app', 'sqlite', 'success', 'api', 'a.db', '/b/app/a.db', 10, 'ab', 'none', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:01.000Z', 5);
                 INSERT INTO fires (database, schedule, planned_at, outcome, backup_id)
                 VALUES ('app', '0 0 * * *', '2026-01-01T00:00:00.000Z', 'ran', 41);",
            )
            .unwrap();
        }
        let catalog = SqliteCatalog::open(&path).unwrap();
        let old = catalog.get(41).unwrap().unwrap();
        assert_eq!(
            (old.file_name.as_deref(), old.size_bytes),
            (Some("a.db"), Some(10))
        );
        assert_eq!(
            catalog.fires("app", None, 10).unwrap()[0].backup_id,
            Some(41)
        );
        let new = catalog
            .begin(&NewBackup {
                database: "app",
                kind: dbkeep_model::catalog::Kind::Sqlite,
                trigger: dbkeep_model::catalog::Trigger::Web,
                file_name: "b.db",
                path: std::path::Path::new("/b/app/b.db"),
                compression: dbkeep_model::vocab::Compression::None,
                started_at: Utc::now(),
                instance: "web-1",
            })
            .unwrap();
        assert!(new > 41, "ids went back: {new}");
        catalog.set_log(new, "+0.000s started").unwrap();
        assert_eq!(
            catalog.log(new).unwrap().as_deref(),
            Some("+0.000s started")
        );
        assert_eq!(catalog.log(41).unwrap(), None);
        // A kind or trigger this version does not know is refused when read, not stored blindly.
        catalog
            .conn()
            .execute("UPDATE backups SET trigger = 'teleport' WHERE id = 41", [])
            .unwrap();
        assert!(matches!(
            catalog.get(41),
            Err(Error::Unreadable(u)) if u.id == 41 && u.column == "trigger"
        ));
    }

    #[test]
    fn migration_20_leaves_every_older_row_unpinned_and_readable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.sqlite3");
        {
            let mut conn = Connection::open(&path).unwrap();
            Migrations::from_slice(&MIGRATIONS[..19])
                .to_latest(&mut conn)
                .unwrap();
            conn.execute_batch(
                "INSERT INTO backups (id, database, kind, status, trigger, file_name, path, size_bytes, sha256, compression, started_at, finished_at, duration_ms, instance)
                 VALUES (7, 'app', 'sqlite', 'success', 'manual', 'a.db', '/b/app/a.db', 10, 'ab', 'none', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:01.000Z', 5, 'web-1');",
            )
            .unwrap();
        }
        let catalog = SqliteCatalog::open(&path).unwrap();
        let old = catalog.get(7).unwrap().unwrap();
        assert_eq!((old.pinned, old.pin_note), (false, None));
        assert!(catalog.set_pin(7, true, Some("kept by hand")).unwrap());
        let listed = catalog.list(&ListFilter::default()).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(
            (listed[0].pinned, listed[0].pin_note.as_deref()),
            (true, Some("kept by hand"))
        );
        assert_eq!(catalog.retention_marks().unwrap(), vec![]);
        // A pin this version cannot read is named, as any other column is.
        catalog
            .conn()
            .execute("UPDATE backups SET pinned = 'maybe' WHERE id = 7", [])
            .unwrap();
        assert!(matches!(
            catalog.get(7),
            Err(Error::Unreadable(u)) if u.id == 7 && u.column == "pinned"
        ));
    }

    #[test]
    fn migration_19_names_kept_notification_channels_by_host_never_by_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.sqlite3");
        {
            let mut conn = Connection::open(&path).unwrap();
            Migrations::from_slice(&MIGRATIONS[..18])
                .to_latest(&mut conn)
                .unwrap();
            for (before, _) in crate::story::OLD_CHANNELS {
                conn.execute(
                    "INSERT INTO failed_notifications (at, channel, event, database, error)
                     VALUES ('2026-01-01T00:00:00.000Z', ?1, 'failure', 'app', 'http status: 500')",
                    [before],
                )
                .unwrap();
            }
        }
        let catalog = SqliteCatalog::open(&path).unwrap();
        let conn = catalog.conn();
        let mut stmt = conn
            .prepare("SELECT channel FROM failed_notifications ORDER BY id")
            .unwrap();
        let channels: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        crate::story::assert_renamed(&channels);
    }
}
