//! Leases and instances' heartbeats in the PostgreSQL catalog: times by the server's clock, the
//! one clock every instance sharing the catalog agrees on.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::postgres::PostgresCatalog;
use dbkeep_model::error::Result;
use dbkeep_model::instances::Instance;
use dbkeep_model::instances::{InstanceRecord, Instances};
use dbkeep_model::leases::{Lease, Leases};

/// Now by the server's clock, to the millisecond as the catalog keeps times.
const NOW: &str = "date_trunc('milliseconds', clock_timestamp())";

/// `ttl` from now, for a statement whose `$n` is the time in seconds.
fn later(n: usize) -> String {
    format!("date_trunc('milliseconds', clock_timestamp() + make_interval(secs => ${n}))")
}

/// A process id as stored (a `bigint`), or 0 for one that cannot be (so never judged gone).
fn pid(stored: i64) -> u32 {
    u32::try_from(stored).unwrap_or(0)
}

impl Leases for PostgresCatalog {
    fn acquire(&self, resource: &str, holder: &Instance, ttl: Duration) -> Result<bool> {
        let secs = ttl.as_secs_f64();
        let pid_here = i64::from(holder.pid);
        self.transaction(|tx| {
            // A free resource is taken by the first insert; a held one is locked while it is
            // judged, so two instances cannot both take it over. One released between the two
            // statements is free again: try once more.
            for _ in 0..3 {
                let taken = tx.execute(
                    &format!(
                        "INSERT INTO leases (resource, holder, host, pid, run, acquired_at, expires_at)
                         VALUES ($1, $2, $3, $4, NULL, {NOW}, {}) ON CONFLICT (resource) DO NOTHING",
                        later(5)
                    ),
                    &[&resource, &holder.name, &holder.host, &pid_here, &secs],
                )?;
                if taken == 1 {
                    return Ok(true);
                }
                let held = tx.query_opt(
                    &format!(
                        "SELECT holder, host, pid, expires_at <= {NOW} FROM leases
                         WHERE resource = $1 FOR UPDATE"
                    ),
                    &[&resource],
                )?;
                let Some(row) = held else { continue };
                let (name, host, pid_there, expired): (String, String, i64, bool) =
                    (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?, row.try_get(3)?);
                if name == holder.name {
                    tx.execute(
                        &format!("UPDATE leases SET expires_at = {} WHERE resource = $1", later(2)),
                        &[&resource, &secs],
                    )?;
                    return Ok(true);
                }
                if !expired && !Instance::is_gone_here(&host, pid(pid_there)) {
                    return Ok(false);
                }
                tx.execute(
                    &format!(
                        "UPDATE leases SET holder = $2, host = $3, pid = $4, run = NULL,
                         acquired_at = {NOW}, expires_at = {} WHERE resource = $1",
                        later(5)
                    ),
                    &[&resource, &holder.name, &holder.host, &pid_here, &secs],
                )?;
                return Ok(true);
            }
            Ok(false)
        })
    }

    fn renew(&self, resource: &str, holder: &str, ttl: Duration) -> Result<bool> {
        let n = self.execute(
            &format!(
                "UPDATE leases SET expires_at = {} WHERE resource = $1 AND holder = $2",
                later(3)
            ),
            &[&resource, &holder, &ttl.as_secs_f64()],
        )?;
        Ok(n == 1)
    }

    fn set_run(&self, resource: &str, holder: &str, run: i64) -> Result<()> {
        self.execute(
            "UPDATE leases SET run = $3 WHERE resource = $1 AND holder = $2",
            &[&resource, &holder, &run],
        )?;
        Ok(())
    }

    fn release(&self, resource: &str, holder: &str) -> Result<()> {
        self.execute(
            "DELETE FROM leases WHERE resource = $1 AND holder = $2",
            &[&resource, &holder],
        )?;
        Ok(())
    }

    fn lease(&self, resource: &str) -> Result<Option<Lease>> {
        self.row(
            &format!(
                "SELECT holder, host, pid, run, acquired_at, expires_at, expires_at > {NOW}
                 FROM leases WHERE resource = $1"
            ),
            &[&resource],
            |r| {
                let host: String = r.try_get(1)?;
                let unexpired: bool = r.try_get(6)?;
                Ok(Lease {
                    live: unexpired && !Instance::is_gone_here(&host, pid(r.try_get(2)?)),
                    holder: r.try_get(0)?,
                    run: r.try_get(3)?,
                    acquired_at: r.try_get::<_, DateTime<Utc>>(4)?,
                    expires_at: r.try_get(5)?,
                })
            },
        )
    }
}

impl Instances for PostgresCatalog {
    fn server_time(&self) -> Result<Option<DateTime<Utc>>> {
        let ms = self.rows(
            "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint",
            &[],
            |r| Ok(r.try_get::<_, i64>(0)?),
        )?;
        Ok(ms
            .first()
            .and_then(|ms| DateTime::<Utc>::from_timestamp_millis(*ms)))
    }

    fn heartbeat(
        &self,
        instance: &Instance,
        version: &str,
        started_at: DateTime<Utc>,
        running: &[String],
    ) -> Result<()> {
        let running = serde_json::to_string(running).map_err(|e| self.err(e))?;
        self.execute(
            &format!(
                "INSERT INTO instances (name, host, pid, version, started_at, heartbeat_at, running)
                 VALUES ($1, $2, $3, $4, $5, {NOW}, $6) ON CONFLICT (name) DO UPDATE SET
                   host = excluded.host, pid = excluded.pid, version = excluded.version,
                   started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at,
                   running = excluded.running"
            ),
            &[
                &instance.name,
                &instance.host,
                &i64::from(instance.pid),
                &version,
                &super::postgres_rows::ms(started_at),
                &running,
            ],
        )?;
        Ok(())
    }

    fn instances(
        &self,
        alive_within: Duration,
        forget_after: Duration,
    ) -> Result<Vec<InstanceRecord>> {
        self.rows(
            &format!(
                "SELECT name, host, pid, version, started_at, heartbeat_at, running,
                   heartbeat_at > {NOW} - make_interval(secs => $1)
                 FROM instances WHERE heartbeat_at > {NOW} - make_interval(secs => $2)
                 ORDER BY name"
            ),
            &[&alive_within.as_secs_f64(), &forget_after.as_secs_f64()],
            |r| {
                let host: String = r.try_get(1)?;
                let pid = pid(r.try_get(2)?);
                let recent: bool = r.try_get(7)?;
                Ok(InstanceRecord {
                    name: r.try_get(0)?,
                    alive: recent && !Instance::is_gone_here(&host, pid),
                    host,
                    pid,
                    version: r.try_get(3)?,
                    started_at: r.try_get(4)?,
                    heartbeat_at: r.try_get(5)?,
                    running: serde_json::from_str(r.try_get(6)?).unwrap_or_default(),
                })
            },
        )
    }

    fn depart(&self, name: &str) -> Result<()> {
        self.execute("DELETE FROM instances WHERE name = $1", &[&name])?;
        Ok(())
    }
}
