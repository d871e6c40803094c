//! The audit log in the PostgreSQL catalog.

use crate::postgres::PostgresCatalog;
use crate::postgres_rows::{storable_key, unsigned};
use dbkeep_model::audit::{AuditLog, Entry, MIN_RETENTION_DAYS, Query, Row};
use dbkeep_model::error::Result;

impl AuditLog for PostgresCatalog {
    fn append_audit(&self, entry: &Entry) -> Result<Row> {
        let e = entry.clone().bounded();
        // PostgreSQL text cannot hold NUL: it is stored as U+FFFD, as every other catalog text.
        let text = |s: &str| storable_key(s);
        let opt = |s: &Option<String>| s.as_deref().map(storable_key);
        let row = self.row(
            "INSERT INTO audit_log (actor, action, target, outcome, detail, source, user_agent)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id, at",
            &[
                &text(&e.actor),
                &e.action.as_str(),
                &text(&e.target),
                &e.outcome.as_str(),
                &opt(&e.detail),
                &opt(&e.source),
                &opt(&e.user_agent),
            ],
            |r| Ok((r.try_get::<_, i64>(0)?, r.try_get(1)?)),
        )?;
        let (id, time) = row.ok_or_else(|| self.err("the new audit row was not returned"))?;
        Ok(Row { id, time, entry: e })
    }

    fn audit(&self, q: &Query) -> Result<Vec<Row>> {
        let actor = q.actor.as_deref().map(storable_key);
        let limit = i64::from(q.limit);
        self.rows(
            "SELECT id, at, actor, action, target, outcome, detail, source, user_agent
             FROM audit_log
             WHERE ($1::timestamptz IS NULL OR at >= $1)
               AND ($2::text IS NULL OR actor = $2
                    OR (right($2, 1) = ':' AND left(actor, length($2)) = $2))
               AND ($3::text IS NULL OR action = $3)
               AND ($4::bigint IS NULL OR id < $4)
             ORDER BY id DESC LIMIT $5",
            &[
                &q.since,
                &actor,
                &q.action.map(|a| a.as_str()),
                &q.before_id,
                &limit,
            ],
            |r| {
                let action: String = r.try_get(3)?;
                let outcome: String = r.try_get(5)?;
                Ok(Row {
                    id: r.try_get(0)?,
                    time: r.try_get(1)?,
                    entry: Entry {
                        actor: r.try_get(2)?,
                        action: action.parse()?,
                        target: r.try_get(4)?,
                        outcome: outcome.parse()?,
                        detail: r.try_get(6)?,
                        source: r.try_get(7)?,
                        user_agent: r.try_get(8)?,
                    },
                })
            },
        )
    }

    fn prune_audit(&self, days: u32) -> Result<u64> {
        let days = i64::from(days).max(MIN_RETENTION_DAYS);
        let n = self.execute(
            "DELETE FROM audit_log WHERE at < now() - make_interval(days => $1::int)",
            &[&(days as i32)],
        )?;
        Ok(unsigned(n as i64))
    }
}
