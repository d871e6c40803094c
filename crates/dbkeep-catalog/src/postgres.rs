//! A catalog on a PostgreSQL server, so several dbkeep instances on several machines share one
//! record. The trait stays synchronous: the `postgres` crate runs the asynchronous driver on a
//! private runtime per connection (the one adapter), so these calls block their thread as
//! SQLite's do; call them where blocking is fine (`spawn_blocking`, as the web does).

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::ToSql;
use postgres::{Row, Transaction};

use crate::postgres_connect::{self as connect, Connection, Pool, describe};
use crate::postgres_rows::{
    Params, RowResult, VERIFICATION, columns, fire, listed, ms, signed, storable, unsigned,
    verification,
};
use dbkeep_config::config::ServerTarget;
use dbkeep_model::catalog::{
    BackupId, BackupRecord, Catalog, FireId, FireRecord, LastFire, LeftOut, ListFilter, Listed,
    NewBackup, Outcome, Status, Stored, Verification,
};
use dbkeep_model::error::{Error, Result};

/// A catalog in a PostgreSQL database, shared safely by several processes on several machines.
pub struct PostgresCatalog {
    /// The URL, without a password: what messages name.
    url: String,
    /// Always `Some` until dropped (see [`Drop`]).
    pool: Option<Pool>,
    /// Why the pool last failed to connect.
    last_error: connect::LastError,
    /// The rows listings left out.
    left_out: LeftOut,
}

impl PostgresCatalog {
    /// Connects to the catalog database at `target` (its password given to the driver, never
    /// shown), and creates or migrates its schema. The URL's `sslmode` (`disable`, `allow`,
    /// `prefer`, the default, `require`, `verify-ca`, `verify-full`) and `sslrootcert` (a PEM
    /// file; else the system's authorities) mean what they mean to libpq.
    ///
    /// Like every method it blocks its thread: call it where blocking is fine (a plain thread,
    /// `spawn_blocking`). On an async runtime's thread it still works, blocking that thread.
    ///
    /// # Errors
    /// [`Error::Catalog`], naming the URL, when the URL or password is unusable, the server
    /// cannot be reached or refuses the login, the schema is newer than this build knows, or a
    /// migration fails.
    pub fn open(target: &ServerTarget) -> Result<PostgresCatalog> {
        let url = target.url.to_string();
        let err = |message: String| Error::Catalog {
            path: PathBuf::from(&url),
            message,
        };
        let settings = connect::settings(target).map_err(err)?;
        blocking(|| {
            let mut client = connect::connect(&settings)?;
            connect::migrate(&mut client).map_err(|e| format!("cannot migrate: {e}"))
        })
        .map_err(err)?;
        let last_error = Arc::new(Mutex::new(None));
        let pool = connect::pool(settings, &url, Arc::clone(&last_error));
        Ok(PostgresCatalog {
            pool: Some(pool),
            url,
            last_error,
            left_out: LeftOut::default(),
        })
    }

    /// An error of this catalog, naming its URL.
    pub(super) fn err(&self, message: impl std::fmt::Display) -> Error {
        Error::Catalog {
            path: PathBuf::from(&self.url),
            message: message.to_string(),
        }
    }

    fn db(&self, e: &postgres::Error) -> Error {
        self.err(describe(e))
    }

    /// Runs `f` with a connection of the pool (and the statements it keeps prepared; see
    /// [`blocking`]).
    fn with_connection<T: Send>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T> + Send,
    ) -> Result<T> {
        blocking(|| {
            let pool = self.pool.as_ref().ok_or_else(|| self.err("closed"))?;
            let mut client = pool.get().map_err(|e| {
                match self
                    .last_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take()
                {
                    Some(last) => self.err(format!("cannot connect: {last}")),
                    None => self.err(format!("no free connection: {e}")),
                }
            })?;
            f(&mut client)
        })
    }

    /// Runs one statement; returns how many rows it changed.
    pub(super) fn execute(&self, sql: &str, params: Params<'_>) -> Result<u64> {
        self.with_connection(|c| {
            let done = c
                .prepared(sql)
                .and_then(|statement| c.client.execute(&statement, params));
            done.map_err(|e| {
                c.lost(&e);
                self.db(&e)
            })
        })
    }

    /// The rows of a query, each read by `read` as it arrives: a large result is never held
    /// twice, as the driver's rows and as records.
    pub(super) fn rows<T: Send>(
        &self,
        sql: &str,
        params: Params<'_>,
        read: impl Fn(&Row) -> RowResult<T> + Send + Sync,
    ) -> Result<Vec<T>> {
        self.read(|c| {
            let statement = c.prepared(sql).map_err(Failed::Db)?;
            let mut rows = c
                .client
                .query_raw(&statement, params.iter().copied())
                .map_err(Failed::Db)?;
            let mut records = Vec::new();
            while let Some(row) = rows.next().map_err(Failed::Db)? {
                records.push(read(&row).map_err(Failed::Row)?);
            }
            Ok(records)
        })
    }

    /// The row of a query that returns at most one, read by `read`.
    pub(super) fn row<T: Send>(
        &self,
        sql: &str,
        params: Params<'_>,
        read: impl Fn(&Row) -> RowResult<T> + Send + Sync,
    ) -> Result<Option<T>> {
        self.read(|c| {
            let statement = c.prepared(sql).map_err(Failed::Db)?;
            let row = c.client.query_opt(&statement, params).map_err(Failed::Db)?;
            row.map(|r| read(&r).map_err(Failed::Row)).transpose()
        })
    }

    /// Runs `query`, which changes nothing, with a connection of the pool; once more with
    /// another connection when the first was found lost (ended by the server while it sat in
    /// the pool).
    fn read<T: Send>(
        &self,
        query: impl Fn(&mut Connection) -> std::result::Result<T, Failed> + Send + Sync,
    ) -> Result<T> {
        let once = || {
            self.with_connection(|c| {
                let result = query(c);
                let lost = matches!(&result, Err(Failed::Db(e)) if c.lost(e));
                Ok((result, lost))
            })
        };
        let (mut result, lost) = once()?;
        if lost {
            result = once()?.0;
        }
        result.map_err(|failed| match failed {
            Failed::Db(e) => self.db(&e),
            Failed::Row(e) => self.err(e),
        })
    }

    /// Runs `f` in one transaction, committed when it returns `Ok`.
    pub(super) fn transaction<T: Send>(
        &self,
        f: impl FnOnce(&mut Transaction<'_>) -> std::result::Result<T, postgres::Error> + Send,
    ) -> Result<T> {
        self.with_connection(|c| {
            let done = c.client.transaction().and_then(|mut tx| {
                let value = f(&mut tx)?;
                tx.commit().map(|()| value)
            });
            done.map_err(|e| {
                c.lost(&e);
                self.db(&e)
            })
        })
    }

    /// The rows of `sql`, a `SELECT key, count(*) … GROUP BY key`, as (key, count) pairs.
    pub(super) fn counts(&self, sql: &str) -> Result<Vec<(String, u64)>> {
        self.rows(sql, &[], |r| Ok((r.try_get(0)?, unsigned(r.try_get(1)?))))
    }
}

impl Drop for PostgresCatalog {
    fn drop(&mut self) {
        // Closing the connections blocks too (a catalog is dropped on the runtime at the end
        // of `serve`).
        if let Some(pool) = self.pool.take() {
            blocking(move || drop(pool));
        }
    }
}

/// Why a read failed: the server or the connection, or a row this version cannot read.
enum Failed {
    Db(postgres::Error),
    Row(Box<dyn std::error::Error + Send + Sync>),
}

/// Runs `f`, which blocks on the driver's private runtime (one per connection). Off any async
/// runtime, or on a `spawn_blocking` thread, it just runs. On a thread that drives async tasks
/// (where that private runtime would panic) it runs as `block_in_place` (multi-thread runtime)
/// or on a thread of its own (current-thread runtime): it blocks there, as SQLite's catalog
/// does, rather than panic.
fn blocking<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Err(_) => f(),
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        Ok(_) => std::thread::scope(|s| {
            s.spawn(f)
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        }),
    }
}

impl Catalog for PostgresCatalog {
    fn begin(&self, new: &NewBackup<'_>) -> Result<BackupId> {
        let path = new.path.to_string_lossy().into_owned();
        let id = self.row(
            "INSERT INTO backups (database, kind, status, trigger, file_name, path, compression, started_at, instance)
             VALUES ($1, $2, 'in_progress', $3, $4, $5, $6, $7, $8) RETURNING id",
            &[
                &new.database,
                &new.kind.as_str(),
                &new.trigger.as_str(),
                &new.file_name,
                &path,
                &new.compression.as_str(),
                &ms(new.started_at),
                &new.instance,
            ],
            |r| Ok(r.try_get::<_, i64>(0)?),
        )?;
        id.ok_or_else(|| self.err("the new row's id was not returned"))
    }

    fn succeed(&self, id: BackupId, s: &Stored) -> Result<()> {
        self.execute(
            "UPDATE backups SET status = 'success', size_bytes = $2, sha256 = $3, finished_at = $4,
             duration_ms = $5, error = NULL WHERE id = $1",
            &[
                &id,
                &signed(s.size_bytes),
                &s.sha256,
                &ms(s.finished_at),
                &signed(s.duration_ms),
            ],
        )?;
        Ok(())
    }

    fn fail(
        &self,
        id: BackupId,
        error: &str,
        finished_at: DateTime<Utc>,
        duration_ms: u64,
    ) -> Result<()> {
        self.execute(
            "UPDATE backups SET status = 'failed', error = $2, finished_at = $3, duration_ms = $4,
             file_name = NULL, path = NULL, size_bytes = NULL, sha256 = NULL WHERE id = $1",
            &[&id, &error, &ms(finished_at), &signed(duration_ms)],
        )?;
        Ok(())
    }

    fn mark_pruned_many(&self, ids: &[BackupId], at: DateTime<Utc>) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.execute(
            "UPDATE backups SET pruned_at = $2 WHERE id = ANY($1)",
            &[&ids, &ms(at)],
        )?;
        Ok(())
    }

    fn set_pin(&self, id: BackupId, pinned: bool, note: Option<&str>) -> Result<bool> {
        let note = if pinned { note } else { None };
        if note.is_some_and(|n| !storable(n)) {
            return Err(Error::Refused(
                "a pin's note cannot hold a NUL character".to_string(),
            ));
        }
        // Its status first, so that a refused pin writes nothing (the change stamp's trigger
        // runs for every statement on backups, whatever it changes). The write asks for that
        // status again: a row that is not a success by then is not pinned.
        let status = |c: &Self| {
            c.row("SELECT status FROM backups WHERE id = $1", &[&id], |r| {
                Ok(r.try_get::<_, String>(0)?)
            })
        };
        match status(self)? {
            None => return Ok(false),
            Some(s) if pinned && s != Status::Success.as_str() => {
                return Err(crate::columns::unpinnable(id, &s));
            }
            Some(_) => {}
        }
        let changed = self.execute(
            "UPDATE backups SET pinned = $2, pin_note = $3
             WHERE id = $1 AND (NOT $2 OR status = 'success')",
            &[&id, &pinned, &note],
        )?;
        if changed > 0 {
            return Ok(true);
        }
        match status(self)? {
            None => Ok(false),
            Some(s) => Err(crate::columns::unpinnable(id, &s)),
        }
    }

    fn set_retention_mark(
        &self,
        database: &str,
        destination: &str,
        policy: &str,
        at: DateTime<Utc>,
    ) -> Result<()> {
        self.execute(
            "INSERT INTO retention_marks (database, destination, policy, marked_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (database, destination) DO UPDATE SET policy = excluded.policy,
               marked_at = excluded.marked_at",
            &[&database, &destination, &policy, &ms(at)],
        )?;
        Ok(())
    }

    fn clear_retention_marks(&self, database: &str) -> Result<()> {
        if !storable(database) {
            return Ok(());
        }
        self.execute(
            "DELETE FROM retention_marks WHERE database = $1",
            &[&database],
        )?;
        Ok(())
    }

    fn retention_marks(&self) -> Result<Vec<(String, String, String)>> {
        self.rows(
            "SELECT database, destination, policy FROM retention_marks ORDER BY database, destination",
            &[],
            |r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)),
        )
    }

    fn scan(&self, f: &ListFilter) -> Result<Vec<Listed>> {
        if f.database.as_deref().is_some_and(|d| !storable(d)) {
            return Ok(Vec::new());
        }
        // Only the conditions asked for, so the server can walk an index newest first and stop
        // at the limit.
        let status = f.status.map(Status::as_str);
        let limit = f.limit.map(i64::from);
        let mut params: Vec<&(dyn ToSql + Sync)> = Vec::new();
        let mut conditions = Vec::new();
        if let Some(database) = &f.database {
            params.push(database);
            conditions.push(format!("database = ${}", params.len()));
        }
        if let Some(status) = &status {
            params.push(status);
            conditions.push(format!("status = ${}", params.len()));
        }
        if let Some(before) = &f.before {
            params.push(before);
            conditions.push(format!("id < ${}", params.len()));
        }
        params.push(&limit);
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let sql = format!(
            "SELECT {} FROM backups {filter} ORDER BY id DESC LIMIT ${}",
            columns(),
            params.len()
        );
        self.rows(&sql, &params, listed)
    }

    fn left_out(&self) -> &LeftOut {
        &self.left_out
    }

    fn get(&self, id: BackupId) -> Result<Option<BackupRecord>> {
        let sql = format!("SELECT {} FROM backups WHERE id = $1", columns());
        Ok(self.row(&sql, &[&id], listed)?.transpose()?)
    }

    fn status(&self, id: BackupId) -> Result<Option<Status>> {
        self.row("SELECT status FROM backups WHERE id = $1", &[&id], |r| {
            Ok(r.try_get::<_, &str>(0)?.parse()?)
        })
    }

    fn name_in_use(&self, database: &str, file_name: &str) -> Result<bool> {
        let found = self.row(
            "SELECT EXISTS (SELECT 1 FROM backups WHERE database = $1 AND file_name = $2)",
            &[&database, &file_name],
            |r| Ok(r.try_get::<_, bool>(0)?),
        )?;
        Ok(found.unwrap_or(false))
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
        // The unique key decides between processes: only the first insert returns its id.
        self.row(
            "INSERT INTO fires (database, schedule, planned_at, outcome, detail, claimed_by) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (database, schedule, planned_at) DO NOTHING RETURNING id",
            &[&database, &schedule, &ms(planned_at), &outcome.as_str(), &detail, &claimant],
            |r| Ok(r.try_get::<_, i64>(0)?),
        )
    }

    fn finish_fire(
        &self,
        id: FireId,
        outcome: Outcome,
        started_at: Option<DateTime<Utc>>,
        backup_id: Option<BackupId>,
        detail: Option<&str>,
    ) -> Result<()> {
        self.execute(
            "UPDATE fires SET outcome = $2, started_at = COALESCE($3, started_at), backup_id = $4,
             detail = COALESCE($5, detail) WHERE id = $1",
            &[
                &id,
                &outcome.as_str(),
                &started_at.map(ms),
                &backup_id,
                &detail,
            ],
        )?;
        Ok(())
    }

    fn unstarted_fires(&self) -> Result<Vec<FireRecord>> {
        self.rows(
            "SELECT id, database, schedule, planned_at, started_at, outcome, backup_id, detail, claimed_by FROM fires
             WHERE outcome = 'running' AND backup_id IS NULL ORDER BY id",
            &[],
            fire,
        )
    }

    fn fires(&self, database: &str, schedule: Option<&str>, limit: u32) -> Result<Vec<FireRecord>> {
        self.rows(
            "SELECT id, database, schedule, planned_at, started_at, outcome, backup_id, detail, claimed_by FROM fires
             WHERE database = $1 AND ($2::text IS NULL OR schedule = $2)
             ORDER BY planned_at DESC, id DESC LIMIT $3",
            &[&database, &schedule, &i64::from(limit)],
            fire,
        )
    }

    fn last_fires(&self, pairs: &[(String, String)]) -> Result<Vec<Option<LastFire>>> {
        let (databases, schedules): (Vec<&str>, Vec<&str>) =
            pairs.iter().map(|(d, s)| (d.as_str(), s.as_str())).unzip();
        // Each pair's newest fire through the unique key (database, schedule, planned_at).
        self.rows(
            "SELECT f.id, f.database, f.schedule, f.planned_at, f.started_at, f.outcome,
                    f.backup_id, f.detail, f.claimed_by, b.status
             FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS wanted(database, schedule, n)
             LEFT JOIN LATERAL (SELECT * FROM fires
                                WHERE fires.database = wanted.database
                                  AND fires.schedule = wanted.schedule
                                ORDER BY planned_at DESC, id DESC LIMIT 1) AS f ON true
             LEFT JOIN backups b ON b.id = f.backup_id
             ORDER BY wanted.n",
            &[&databases, &schedules],
            |r| {
                if r.try_get::<_, Option<i64>>(0)?.is_none() {
                    return Ok(None);
                }
                let status = r
                    .try_get::<_, Option<&str>>(9)?
                    .map(str::parse)
                    .transpose()?;
                Ok(Some((fire(r)?, status)))
            },
        )
    }

    fn set_log(&self, id: BackupId, log: &str) -> Result<()> {
        self.execute("UPDATE backups SET log = $2 WHERE id = $1", &[&id, &log])?;
        Ok(())
    }

    fn log(&self, id: BackupId) -> Result<Option<String>> {
        let log = self.row("SELECT log FROM backups WHERE id = $1", &[&id], |r| {
            Ok(r.try_get::<_, Option<String>>(0)?)
        })?;
        Ok(log.flatten())
    }

    fn record_verification(&self, v: &Verification) -> Result<()> {
        let status = if v.ok { "ok" } else { "failed" };
        let error = if v.ok { None } else { v.message.as_deref() };
        self.transaction(|tx| {
            tx.execute(
                "INSERT INTO verifications (backup_id, level, status, message, started_at, finished_at, restore_ms, source)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &v.backup_id,
                    &v.level.as_str(),
                    &status,
                    &v.message,
                    &ms(v.started_at),
                    &ms(v.finished_at),
                    &v.restore_ms.map(signed),
                    &v.source,
                ],
            )?;
            tx.execute(
                "UPDATE backups SET verified_at = $2, verify_level = $3, verify_status = $4, verify_error = $5
                 WHERE id = $1",
                &[&v.backup_id, &ms(v.finished_at), &v.level.as_str(), &status, &error],
            )?;
            Ok(())
        })
    }

    fn verifications(&self, backup_id: BackupId) -> Result<Vec<Verification>> {
        self.rows(
            &format!("SELECT {VERIFICATION} FROM verifications v WHERE v.backup_id = $1 ORDER BY v.id DESC"),
            &[&backup_id],
            verification,
        )
    }

    fn recent_of_each(
        &self,
        databases: &[String],
        status: Option<Status>,
        per: u32,
    ) -> Result<Vec<BackupRecord>> {
        let rows = self.recent_of_each_at_once(databases, status, per)?;
        crate::columns::readable_of_each(self, databases, rows, status, per)
    }

    fn last_verifications(
        &self,
        databases: &[String],
        ok_only: bool,
    ) -> Result<Vec<(String, Verification)>> {
        self.last_verifications_at_once(databases, ok_only)
    }

    fn last_verification(&self, database: &str, ok_only: bool) -> Result<Option<Verification>> {
        self.row(
            &format!(
                "SELECT {VERIFICATION} FROM verifications v JOIN backups b ON b.id = v.backup_id
                 WHERE b.database = $1 AND (NOT $2::boolean OR v.status = 'ok') ORDER BY v.id DESC LIMIT 1"
            ),
            &[&database, &ok_only],
            verification,
        )
    }

    fn set_table_rows(&self, id: BackupId, tables: &[(String, u64)]) -> Result<()> {
        // One statement for all of them; a name given twice keeps its last count, as one
        // `INSERT OR REPLACE` after another does in SQLite.
        let mut counts = std::collections::BTreeMap::new();
        for (name, rows) in tables {
            counts.insert(name.as_str(), signed(*rows));
        }
        if counts.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = counts.keys().copied().collect();
        let rows: Vec<i64> = counts.values().copied().collect();
        self.execute(
            "INSERT INTO backup_tables (backup_id, name, rows)
             SELECT $1, t.name, t.rows FROM unnest($2::text[], $3::bigint[]) AS t (name, rows)
             ON CONFLICT (backup_id, name) DO UPDATE SET rows = excluded.rows",
            &[&id, &names, &rows],
        )?;
        Ok(())
    }

    fn table_rows(&self, id: BackupId) -> Result<Vec<(String, u64)>> {
        self.rows(
            "SELECT name, rows FROM backup_tables WHERE backup_id = $1 ORDER BY name",
            &[&id],
            |r| Ok((r.try_get(0)?, unsigned(r.try_get(1)?))),
        )
    }

    fn set_globals_file(&self, id: BackupId, file_name: &str) -> Result<()> {
        self.execute(
            "UPDATE backups SET globals_file = $2 WHERE id = $1",
            &[&id, &file_name],
        )?;
        Ok(())
    }

    fn globals_file(&self, id: BackupId) -> Result<Option<String>> {
        let file = self.row(
            "SELECT globals_file FROM backups WHERE id = $1",
            &[&id],
            |r| Ok(r.try_get::<_, Option<String>>(0)?),
        )?;
        Ok(file.flatten())
    }

    fn change_stamp(&self) -> Result<i64> {
        self.row("SELECT n FROM catalog_stamp WHERE id = 1", &[], |r| {
            Ok(r.try_get(0)?)
        })?
        .ok_or_else(|| self.err("its catalog_stamp row is missing"))
    }

    fn status_counts(&self) -> Result<Vec<(String, Status, u64)>> {
        self.rows(
            "SELECT database, status, count(*) FROM backups GROUP BY database, status ORDER BY database, status",
            &[],
            |r| {
                Ok((
                    r.try_get(0)?,
                    r.try_get::<_, &str>(1)?.parse()?,
                    unsigned(r.try_get(2)?),
                ))
            },
        )
    }
}
