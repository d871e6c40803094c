//! The audit log in the SQLite catalog.

use rusqlite::params;

use crate::sqlite::{SqliteCatalog, time};
use dbkeep_model::audit::{AuditLog, Entry, MIN_RETENTION_DAYS, Query, Row};
use dbkeep_model::catalog::format_time;
use dbkeep_model::error::Result;

/// The catalog's clock, as the audit log's `at` column holds it.
const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

impl AuditLog for SqliteCatalog {
    fn append_audit(&self, entry: &Entry) -> Result<Row> {
        let e = entry.clone().bounded();
        let (id, at) = self
            .conn()
            .query_row(
                &format!(
                    "INSERT INTO audit_log (at, actor, action, target, outcome, detail, source, user_agent)
                     VALUES ({NOW}, ?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id, at"
                ),
                params![
                    e.actor,
                    e.action.as_str(),
                    e.target,
                    e.outcome.as_str(),
                    e.detail,
                    e.source,
                    e.user_agent
                ],
                |r| Ok((r.get::<_, i64>(0)?, time(1, Some(r.get(1)?))?)),
            )
            .map_err(|e| self.err(e))?;
        Ok(Row {
            id,
            time: at.unwrap_or_default(),
            entry: e,
        })
    }

    fn audit(&self, q: &Query) -> Result<Vec<Row>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT id, at, actor, action, target, outcome, detail, source, user_agent
                 FROM audit_log
                 WHERE (?1 IS NULL OR at >= ?1)
                   AND (?2 IS NULL OR actor = ?2
                        OR (substr(?2, -1) = ':' AND substr(actor, 1, length(?2)) = ?2))
                   AND (?3 IS NULL OR action = ?3)
                   AND (?4 IS NULL OR id < ?4)
                 ORDER BY id DESC LIMIT ?5",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(
                params![
                    q.since.as_ref().map(format_time),
                    q.actor,
                    q.action.map(|a| a.as_str()),
                    q.before_id,
                    q.limit
                ],
                |r| {
                    let word = |i: usize| -> rusqlite::Result<String> { r.get(i) };
                    let parsed = |i: usize, e: String| {
                        rusqlite::Error::FromSqlConversionFailure(
                            i,
                            rusqlite::types::Type::Text,
                            e.into(),
                        )
                    };
                    Ok(Row {
                        id: r.get(0)?,
                        time: time(1, Some(r.get(1)?))?.unwrap_or_default(),
                        entry: Entry {
                            actor: r.get(2)?,
                            action: word(3)?.parse().map_err(|e| parsed(3, e))?,
                            target: r.get(4)?,
                            outcome: word(5)?.parse().map_err(|e| parsed(5, e))?,
                            detail: r.get(6)?,
                            source: r.get(7)?,
                            user_agent: r.get(8)?,
                        },
                    })
                },
            )
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    fn prune_audit(&self, days: u32) -> Result<u64> {
        let days = i64::from(days).max(MIN_RETENTION_DAYS);
        let n = self
            .conn()
            .execute(
                "DELETE FROM audit_log WHERE at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?1)",
                [format!("-{days} days")],
            )
            .map_err(|e| self.err(e))?;
        Ok(n as u64)
    }
}
