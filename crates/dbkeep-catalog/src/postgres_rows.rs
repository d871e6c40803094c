//! How values and rows cross between dbkeep and the PostgreSQL catalog: times to the
//! millisecond, counts as `bigint`, and the rows read back as the records SQLite's catalog
//! returns.

use std::path::PathBuf;
use std::str::FromStr;

use chrono::{DateTime, SubsecRound, Utc};
use postgres::Row;
use postgres::types::{FromSql, ToSql};

use crate::columns::RECORD_COLUMNS;
use crate::columns::quoted;
use dbkeep_model::catalog::{BackupRecord, FireRecord, Listed, Unreadable, Verification};

/// What reading one row can fail with: the driver's error or a word this version does not know.
pub(super) type RowResult<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Query parameters.
pub(super) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// A time as the catalog keeps it: to the millisecond, as SQLite's RFC 3339 text does.
pub(super) fn ms(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(3)
}

/// A stored count or size, never negative.
pub(super) fn unsigned(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// A count or size to store (saturating at the largest the column holds).
pub(super) fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Whether `text` can be stored in a `text` column: PostgreSQL's text holds every character
/// but NUL, so a value with one matches no row (as it matches none in SQLite's catalog) and
/// must not be sent to the server, which refuses it with an error.
pub(super) fn storable(text: &str) -> bool {
    !text.contains('\0')
}

/// A key dbkeep writes and later looks up the same way (a login throttle's user name), with
/// any NUL as U+FFFD so that the server takes it.
pub(super) fn storable_key(text: &str) -> String {
    text.replace('\0', "\u{FFFD}")
}

/// RFC 3339 in UTC with milliseconds, as [`super::format_time`] writes it.
const RFC3339: &str = r#"'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'"#;

/// The columns of a [`BackupRecord`], its copies as JSON (times written as SQLite keeps them).
pub(super) fn columns() -> String {
    let text = |column: &str| format!("to_char({column} AT TIME ZONE 'UTC', {RFC3339})");
    format!(
        "id, database, kind, status, trigger, file_name, path, size_bytes, sha256, \
         compression, started_at, finished_at, duration_ms, error, pruned_at, \
         verified_at, verify_level, verify_status, verify_error, \
         (SELECT coalesce(json_agg(json_build_object('store', store, 'state', state, \
            'size_bytes', size_bytes, 'sha256', sha256, 'error', error, \
            'uploaded_at', {}, 'pruned_at', {}) ORDER BY store), '[]')::text \
          FROM copies WHERE copies.backup_id = backups.id), instance, pinned, pin_note",
        text("uploaded_at"),
        text("pruned_at")
    )
}

/// The column of a row that does not read, and why.
struct BadColumn {
    idx: usize,
    why: String,
}

/// Column `idx` of `r`.
fn get<'a, T: FromSql<'a>>(r: &'a Row, idx: usize) -> Result<T, BadColumn> {
    r.try_get(idx).map_err(|e| BadColumn {
        idx,
        why: e.to_string(),
    })
}

/// Column `idx` of `r`, a word of dbkeep's vocabulary.
fn word<T: FromStr<Err = String>>(r: &Row, idx: usize) -> Result<T, BadColumn> {
    get::<&str>(r, idx)?
        .parse()
        .map_err(|why| BadColumn { idx, why })
}

/// A row of [`columns`] as a record.
fn record(r: &Row) -> Result<BackupRecord, BadColumn> {
    let file_name: Option<String> = get(r, 5)?;
    Ok(BackupRecord {
        id: get(r, 0)?,
        database: get(r, 1)?,
        kind: word(r, 2)?,
        status: word(r, 3)?,
        trigger: word(r, 4)?,
        encrypted: file_name
            .as_deref()
            .is_some_and(dbkeep_model::vocab::is_encrypted),
        file_name,
        path: get::<Option<String>>(r, 6)?.map(PathBuf::from),
        size_bytes: get::<Option<i64>>(r, 7)?.map(unsigned),
        sha256: get(r, 8)?,
        compression: word(r, 9)?,
        started_at: get(r, 10)?,
        finished_at: get(r, 11)?,
        duration_ms: get::<Option<i64>>(r, 12)?.map(unsigned),
        error: get(r, 13)?,
        pruned_at: get(r, 14)?,
        verified_at: get(r, 15)?,
        verify_level: match get::<Option<&str>>(r, 16)? {
            Some(level) => Some(level.parse().map_err(|why| BadColumn { idx: 16, why })?),
            None => None,
        },
        verify_status: get(r, 17)?,
        verify_error: get(r, 18)?,
        copies: serde_json::from_str(get(r, 19)?).map_err(|e| BadColumn {
            idx: 19,
            why: e.to_string(),
        })?,
        instance: get(r, 20)?,
        pinned: get(r, 21)?,
        pin_note: get(r, 22)?,
    })
}

/// A row of [`columns`] as read: its record, or the column this version cannot read.
pub(super) fn listed(r: &Row) -> RowResult<Listed> {
    let bad = match record(r) {
        Ok(record) => return Ok(Ok(record)),
        Err(bad) => bad,
    };
    let value = match r.try_get::<_, Option<&str>>(bad.idx) {
        Ok(Some(text)) => quoted(text),
        Ok(None) => "NULL".to_string(),
        Err(_) => match r.columns().get(bad.idx) {
            Some(c) => format!("a value of type {}", c.type_()),
            None => "missing".to_string(),
        },
    };
    Ok(Err(Unreadable {
        id: r.try_get(0)?,
        database: r.try_get(1).ok(),
        column: RECORD_COLUMNS.get(bad.idx).copied().unwrap_or("?"),
        value,
        why: bad.why.trim().to_string(),
    }))
}

/// The columns of a [`Verification`], of `verifications v`.
pub(super) const VERIFICATION: &str = "v.backup_id, v.level, v.status, v.message, v.started_at, v.finished_at, v.restore_ms, v.source";

/// A row of [`VERIFICATION`] as a verification.
pub(super) fn verification(r: &Row) -> RowResult<Verification> {
    Ok(Verification {
        backup_id: r.try_get(0)?,
        level: r.try_get::<_, &str>(1)?.parse()?,
        ok: r.try_get::<_, &str>(2)? == "ok",
        message: r.try_get(3)?,
        started_at: r.try_get(4)?,
        finished_at: r.try_get(5)?,
        restore_ms: r.try_get::<_, Option<i64>>(6)?.map(unsigned),
        source: r.try_get(7)?,
    })
}

/// A row of the `fires` table (its columns in order) as a fire.
pub(super) fn fire(r: &Row) -> RowResult<FireRecord> {
    Ok(FireRecord {
        id: r.try_get(0)?,
        database: r.try_get(1)?,
        schedule: r.try_get(2)?,
        planned_at: r.try_get(3)?,
        started_at: r.try_get(4)?,
        outcome: r.try_get::<_, &str>(5)?.parse()?,
        backup_id: r.try_get(6)?,
        detail: r.try_get(7)?,
        claimed_by: r.try_get(8)?,
    })
}
