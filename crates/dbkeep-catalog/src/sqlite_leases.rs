//! Leases and instances' heartbeats in the SQLite catalog: times by SQLite's clock (this
//! machine's, where the file is).

use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use crate::sqlite::SqliteCatalog;
use dbkeep_model::error::{Error, Result};
use dbkeep_model::instances::{Instance, InstanceRecord, Instances};
use dbkeep_model::leases::{Lease, Leases};

/// Now, as the catalog writes times.
const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

fn later(ttl: Duration) -> String {
    format!(
        "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+{:.3} seconds')",
        ttl.as_secs_f64()
    )
}

fn parse(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).map_or(DateTime::<Utc>::MIN_UTC, |t| t.with_timezone(&Utc))
}

impl Leases for SqliteCatalog {
    fn acquire(&self, resource: &str, holder: &Instance, ttl: Duration) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let held: Option<(String, String, u32, bool)> = tx
            .query_row(
                &format!(
                    "SELECT holder, host, pid, expires_at <= {NOW} FROM leases WHERE resource = ?1"
                ),
                [resource],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let take = match &held {
            None => true,
            Some((name, _, _, _)) if *name == holder.name => true,
            Some((_, _, _, true)) => true,
            Some((_, host, pid, false)) => Instance::is_gone_here(host, *pid),
        };
        if take {
            let same = held.as_ref().is_some_and(|(name, ..)| *name == holder.name);
            let sql = if same {
                format!(
                    "UPDATE leases SET expires_at = {} WHERE resource = ?1",
                    later(ttl)
                )
            } else {
                format!(
                    "INSERT OR REPLACE INTO leases (resource, holder, host, pid, run, acquired_at, expires_at) \
                     VALUES (?1, ?2, ?3, ?4, NULL, {NOW}, {})",
                    later(ttl)
                )
            };
            if same {
                tx.execute(&sql, [resource])
            } else {
                tx.execute(
                    &sql,
                    params![resource, holder.name, holder.host, holder.pid],
                )
            }
            .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(take)
    }

    fn renew(&self, resource: &str, holder: &str, ttl: Duration) -> Result<bool> {
        let n = self
            .conn()
            .execute(
                &format!(
                    "UPDATE leases SET expires_at = {} WHERE resource = ?1 AND holder = ?2",
                    later(ttl)
                ),
                [resource, holder],
            )
            .map_err(|e| self.err(e))?;
        Ok(n == 1)
    }

    fn set_run(&self, resource: &str, holder: &str, run: i64) -> Result<()> {
        self.conn()
            .execute(
                "UPDATE leases SET run = ?3 WHERE resource = ?1 AND holder = ?2",
                params![resource, holder, run],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn release(&self, resource: &str, holder: &str) -> Result<()> {
        self.conn()
            .execute(
                "DELETE FROM leases WHERE resource = ?1 AND holder = ?2",
                [resource, holder],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn lease(&self, resource: &str) -> Result<Option<Lease>> {
        self.conn()
            .query_row(
                &format!(
                    "SELECT holder, host, pid, run, acquired_at, expires_at, expires_at > {NOW} \
                     FROM leases WHERE resource = ?1"
                ),
                [resource],
                |r| {
                    let host: String = r.get(1)?;
                    let pid: u32 = r.get(2)?;
                    let unexpired: bool = r.get(6)?;
                    Ok(Lease {
                        live: unexpired && !Instance::is_gone_here(&host, pid),
                        holder: r.get(0)?,
                        run: r.get(3)?,
                        acquired_at: parse(&r.get::<_, String>(4)?),
                        expires_at: parse(&r.get::<_, String>(5)?),
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }
}

impl Instances for SqliteCatalog {
    fn heartbeat(
        &self,
        instance: &Instance,
        version: &str,
        started_at: DateTime<Utc>,
        running: &[String],
    ) -> Result<()> {
        let running = serde_json::to_string(running).map_err(|e| Error::Catalog {
            path: self.path.clone(),
            message: format!("cannot record what this instance runs: {e}"),
        })?;
        self.conn()
            .execute(
                &format!(
                    "INSERT INTO instances (name, host, pid, version, started_at, heartbeat_at, running) \
                     VALUES (?1, ?2, ?3, ?4, ?5, {NOW}, ?6) ON CONFLICT (name) DO UPDATE SET \
                     host = ?2, pid = ?3, version = ?4, started_at = ?5, heartbeat_at = {NOW}, running = ?6"
                ),
                params![
                    instance.name,
                    instance.host,
                    instance.pid,
                    version,
                    dbkeep_model::catalog::format_time(&started_at),
                    running
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn instances(
        &self,
        alive_within: Duration,
        forget_after: Duration,
    ) -> Result<Vec<InstanceRecord>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT name, host, pid, version, started_at, heartbeat_at, running, \
                 heartbeat_at > strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-{:.3} seconds') \
                 FROM instances \
                 WHERE heartbeat_at > strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-{:.3} seconds') \
                 ORDER BY name",
                alive_within.as_secs_f64(),
                forget_after.as_secs_f64()
            ))
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                let host: String = r.get(1)?;
                let pid: u32 = r.get(2)?;
                let recent: bool = r.get(7)?;
                let running: String = r.get(6)?;
                Ok(InstanceRecord {
                    name: r.get(0)?,
                    alive: recent && !Instance::is_gone_here(&host, pid),
                    host,
                    pid,
                    version: r.get(3)?,
                    started_at: parse(&r.get::<_, String>(4)?),
                    heartbeat_at: parse(&r.get::<_, String>(5)?),
                    running: serde_json::from_str(&running).unwrap_or_default(),
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    fn depart(&self, name: &str) -> Result<()> {
        self.conn()
            .execute("DELETE FROM instances WHERE name = ?1", [name])
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}
