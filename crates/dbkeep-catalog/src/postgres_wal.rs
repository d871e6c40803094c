//! The WAL archive's records in the PostgreSQL catalog: segments, their off-site queue, the
//! cluster each server's archive belongs to, and base backups' places in the log.

use chrono::{DateTime, Utc};
use postgres::Row;

use crate::postgres::PostgresCatalog;
use crate::postgres_rows::{RowResult, ms, signed, unsigned};
use dbkeep_model::error::Result;
use dbkeep_model::wal::{BaseBackup, Lsn, Recorded, Segment, WalArchive};

const SEGMENT_COLUMNS: &str =
    "server, name, sha256, raw_bytes, stored_bytes, compression, encrypted, archived_at";

fn segment(r: &Row) -> RowResult<Segment> {
    let compression: String = r.try_get(5)?;
    Ok(Segment {
        server: r.try_get(0)?,
        name: r.try_get(1)?,
        sha256: r.try_get(2)?,
        raw_bytes: unsigned(r.try_get(3)?),
        stored_bytes: unsigned(r.try_get(4)?),
        compression: compression.parse()?,
        encrypted: r.try_get(6)?,
        archived_at: r.try_get(7)?,
    })
}

fn base(r: &Row) -> RowResult<BaseBackup> {
    Ok(BaseBackup {
        backup_id: r.try_get(0)?,
        server: r.try_get(1)?,
        timeline: u32::try_from(r.try_get::<_, i32>(2)?)?,
        start_lsn: Lsn(r.try_get::<_, i64>(3)? as u64),
        stop_lsn: Lsn(r.try_get::<_, i64>(4)? as u64),
        stopped_at: r.try_get(5)?,
        start_wal: r.try_get(6)?,
    })
}

impl WalArchive for PostgresCatalog {
    fn add_segment(&self, s: &Segment, destinations: &[String]) -> Result<Recorded> {
        self.transaction(|tx| {
            let inserted = tx.execute(
                "INSERT INTO wal_segments (server, name, sha256, raw_bytes, stored_bytes, \
                   compression, encrypted, archived_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, NULL) ON CONFLICT DO NOTHING",
                &[
                    &s.server,
                    &s.name,
                    &s.sha256,
                    &signed(s.raw_bytes),
                    &signed(s.stored_bytes),
                    &s.compression.as_str(),
                    &s.encrypted,
                ],
            )?;
            if inserted == 1 {
                for d in destinations {
                    tx.execute(
                        "INSERT INTO wal_queue (server, name, destination) VALUES ($1, $2, $3) \
                         ON CONFLICT DO NOTHING",
                        &[&s.server, &s.name, d],
                    )?;
                }
                return Ok(Recorded::New);
            }
            let row = tx.query_one(
                "SELECT sha256, archived_at IS NOT NULL FROM wal_segments \
                 WHERE server = $1 AND name = $2",
                &[&s.server, &s.name],
            )?;
            let sha256: String = row.try_get(0)?;
            Ok(if sha256 == s.sha256 {
                Recorded::Again {
                    archived: row.try_get(1)?,
                }
            } else {
                Recorded::Different { recorded: sha256 }
            })
        })
    }

    fn segment_archived(&self, server: &str, name: &str, at: DateTime<Utc>) -> Result<()> {
        self.execute(
            "UPDATE wal_segments SET archived_at = $3 WHERE server = $1 AND name = $2",
            &[&server, &name, &ms(at)],
        )?;
        Ok(())
    }

    fn segment(&self, server: &str, name: &str) -> Result<Option<Segment>> {
        self.row(
            &format!("SELECT {SEGMENT_COLUMNS} FROM wal_segments WHERE server = $1 AND name = $2"),
            &[&server, &name],
            segment,
        )
    }

    fn segments(&self, server: &str) -> Result<Vec<Segment>> {
        self.rows(
            &format!("SELECT {SEGMENT_COLUMNS} FROM wal_segments WHERE server = $1 ORDER BY name"),
            &[&server],
            segment,
        )
    }

    fn last_archived(&self, server: &str) -> Result<Option<DateTime<Utc>>> {
        Ok(self
            .row(
                "SELECT max(archived_at) FROM wal_segments WHERE server = $1",
                &[&server],
                |r| Ok(r.try_get::<_, Option<DateTime<Utc>>>(0)?),
            )?
            .flatten())
    }

    fn wal_queue(&self, server: &str, destination: &str) -> Result<Vec<String>> {
        self.rows(
            "SELECT q.name FROM wal_queue q JOIN wal_segments s \
               ON s.server = q.server AND s.name = q.name \
             WHERE q.server = $1 AND q.destination = $2 AND s.archived_at IS NOT NULL \
             ORDER BY s.archived_at, q.name",
            &[&server, &destination],
            |r| Ok(r.try_get(0)?),
        )
    }

    fn wal_sent(&self, server: &str, name: &str, destination: &str) -> Result<()> {
        self.execute(
            "DELETE FROM wal_queue WHERE server = $1 AND name = $2 AND destination = $3",
            &[&server, &name, &destination],
        )?;
        Ok(())
    }

    fn forget_segments(&self, server: &str, names: &[String]) -> Result<()> {
        self.transaction(|tx| {
            tx.execute(
                "DELETE FROM wal_queue WHERE server = $1 AND name = ANY($2)",
                &[&server, &names],
            )?;
            tx.execute(
                "DELETE FROM wal_segments WHERE server = $1 AND name = ANY($2)",
                &[&server, &names],
            )?;
            Ok(())
        })
    }

    fn claim_system(&self, server: &str, system_identifier: &str) -> Result<String> {
        self.execute(
            "INSERT INTO wal_systems (server, system_identifier) VALUES ($1, $2) \
             ON CONFLICT DO NOTHING",
            &[&server, &system_identifier],
        )?;
        self.row(
            "SELECT system_identifier FROM wal_systems WHERE server = $1",
            &[&server],
            |r| Ok(r.try_get(0)?),
        )?
        .ok_or_else(|| {
            self.err(format!(
                "the archive of server `{server}` has no cluster recorded"
            ))
        })
    }

    fn server_of_system(&self, system_identifier: &str) -> Result<Option<String>> {
        self.row(
            "SELECT server FROM wal_systems WHERE system_identifier = $1 ORDER BY server LIMIT 1",
            &[&system_identifier],
            |r| Ok(r.try_get(0)?),
        )
    }

    fn add_base(&self, b: &BaseBackup) -> Result<()> {
        self.execute(
            "INSERT INTO base_backups (backup_id, server, timeline, start_lsn, stop_lsn, \
               stopped_at, start_wal) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &b.backup_id,
                &b.server,
                &i32::try_from(b.timeline).unwrap_or(i32::MAX),
                &(b.start_lsn.0 as i64),
                &(b.stop_lsn.0 as i64),
                &ms(b.stopped_at),
                &b.start_wal,
            ],
        )?;
        Ok(())
    }

    fn bases(&self, server: &str) -> Result<Vec<BaseBackup>> {
        self.rows(
            "SELECT backup_id, server, timeline, start_lsn, stop_lsn, stopped_at, start_wal \
             FROM base_backups WHERE server = $1 ORDER BY stopped_at, backup_id",
            &[&server],
            base,
        )
    }
}
