//! The WAL archive's records in the SQLite catalog: segments, their off-site queue, the
//! cluster each server's archive belongs to, and base backups' places in the log.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row, params};

use crate::sqlite::{SqliteCatalog, time};
use dbkeep_model::clock::format_time;
use dbkeep_model::error::Result;
use dbkeep_model::wal::{BaseBackup, Lsn, Recorded, Segment, WalArchive};

const SEGMENT_COLUMNS: &str =
    "server, name, sha256, raw_bytes, stored_bytes, compression, encrypted, archived_at";

fn segment(r: &Row<'_>) -> rusqlite::Result<Segment> {
    let compression: String = r.get(5)?;
    Ok(Segment {
        server: r.get(0)?,
        name: r.get(1)?,
        sha256: r.get(2)?,
        raw_bytes: r.get::<_, i64>(3)?.max(0) as u64,
        stored_bytes: r.get::<_, i64>(4)?.max(0) as u64,
        compression: compression.parse().map_err(|e: String| {
            rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Text, e.into())
        })?,
        encrypted: r.get(6)?,
        archived_at: time(7, r.get(7)?)?,
    })
}

fn base(r: &Row<'_>) -> rusqlite::Result<BaseBackup> {
    let required = |idx: usize, t: Option<DateTime<Utc>>| {
        t.ok_or(rusqlite::Error::InvalidColumnType(
            idx,
            "time".into(),
            rusqlite::types::Type::Null,
        ))
    };
    Ok(BaseBackup {
        backup_id: r.get(0)?,
        server: r.get(1)?,
        timeline: r.get(2)?,
        start_lsn: Lsn(r.get::<_, i64>(3)? as u64),
        stop_lsn: Lsn(r.get::<_, i64>(4)? as u64),
        stopped_at: required(5, time(5, r.get(5)?)?)?,
        start_wal: r.get(6)?,
    })
}

impl WalArchive for SqliteCatalog {
    fn add_segment(&self, s: &Segment, destinations: &[String]) -> Result<Recorded> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        let inserted = tx
            .execute(
                "INSERT INTO wal_segments (server, name, sha256, raw_bytes, stored_bytes, \
                   compression, encrypted, archived_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL) ON CONFLICT DO NOTHING",
                params![
                    s.server,
                    s.name,
                    s.sha256,
                    s.raw_bytes as i64,
                    s.stored_bytes as i64,
                    s.compression.as_str(),
                    s.encrypted
                ],
            )
            .map_err(|e| self.err(e))?;
        let found = if inserted == 1 {
            for d in destinations {
                tx.execute(
                    "INSERT INTO wal_queue (server, name, destination) VALUES (?1, ?2, ?3) \
                     ON CONFLICT DO NOTHING",
                    params![s.server, s.name, d],
                )
                .map_err(|e| self.err(e))?;
            }
            Recorded::New
        } else {
            let (sha256, archived): (String, Option<String>) = tx
                .query_row(
                    "SELECT sha256, archived_at FROM wal_segments WHERE server = ?1 AND name = ?2",
                    params![s.server, s.name],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(|e| self.err(e))?;
            if sha256 == s.sha256 {
                Recorded::Again {
                    archived: archived.is_some(),
                }
            } else {
                Recorded::Different { recorded: sha256 }
            }
        };
        tx.commit().map_err(|e| self.err(e))?;
        Ok(found)
    }

    fn segment_archived(&self, server: &str, name: &str, at: DateTime<Utc>) -> Result<()> {
        self.conn()
            .execute(
                "UPDATE wal_segments SET archived_at = ?3 WHERE server = ?1 AND name = ?2",
                params![server, name, format_time(&at)],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn segment(&self, server: &str, name: &str) -> Result<Option<Segment>> {
        self.conn()
            .query_row(
                &format!(
                    "SELECT {SEGMENT_COLUMNS} FROM wal_segments WHERE server = ?1 AND name = ?2"
                ),
                params![server, name],
                segment,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    fn segments(&self, server: &str) -> Result<Vec<Segment>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {SEGMENT_COLUMNS} FROM wal_segments WHERE server = ?1 ORDER BY name"
            ))
            .map_err(|e| self.err(e))?;
        stmt.query_map(params![server], segment)
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))
    }

    fn last_archived(&self, server: &str) -> Result<Option<DateTime<Utc>>> {
        let text: Option<String> = self
            .conn()
            .query_row(
                "SELECT max(archived_at) FROM wal_segments WHERE server = ?1",
                params![server],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?;
        time(0, text).map_err(|e| self.err(e))
    }

    fn wal_queue(&self, server: &str, destination: &str) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT q.name FROM wal_queue q JOIN wal_segments s \
                   ON s.server = q.server AND s.name = q.name \
                 WHERE q.server = ?1 AND q.destination = ?2 AND s.archived_at IS NOT NULL \
                 ORDER BY s.archived_at, q.name",
            )
            .map_err(|e| self.err(e))?;
        stmt.query_map(params![server, destination], |r| r.get(0))
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))
    }

    fn wal_sent(&self, server: &str, name: &str, destination: &str) -> Result<()> {
        self.conn()
            .execute(
                "DELETE FROM wal_queue WHERE server = ?1 AND name = ?2 AND destination = ?3",
                params![server, name, destination],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn forget_segments(&self, server: &str, names: &[String]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        for name in names {
            for table in ["wal_queue", "wal_segments"] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE server = ?1 AND name = ?2"),
                    params![server, name],
                )
                .map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }

    fn claim_system(&self, server: &str, system_identifier: &str) -> Result<String> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO wal_systems (server, system_identifier) VALUES (?1, ?2) \
             ON CONFLICT DO NOTHING",
            params![server, system_identifier],
        )
        .map_err(|e| self.err(e))?;
        conn.query_row(
            "SELECT system_identifier FROM wal_systems WHERE server = ?1",
            params![server],
            |r| r.get(0),
        )
        .map_err(|e| self.err(e))
    }

    fn server_of_system(&self, system_identifier: &str) -> Result<Option<String>> {
        self.conn()
            .query_row(
                "SELECT server FROM wal_systems WHERE system_identifier = ?1 ORDER BY server",
                params![system_identifier],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    fn add_base(&self, b: &BaseBackup) -> Result<()> {
        self.conn()
            .execute(
                "INSERT INTO base_backups (backup_id, server, timeline, start_lsn, stop_lsn, \
                   stopped_at, start_wal) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    b.backup_id,
                    b.server,
                    b.timeline,
                    b.start_lsn.0 as i64,
                    b.stop_lsn.0 as i64,
                    format_time(&b.stopped_at),
                    b.start_wal
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn bases(&self, server: &str) -> Result<Vec<BaseBackup>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT backup_id, server, timeline, start_lsn, stop_lsn, stopped_at, start_wal \
                 FROM base_backups WHERE server = ?1 ORDER BY stopped_at, backup_id",
            )
            .map_err(|e| self.err(e))?;
        stmt.query_map(params![server], base)
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))
    }
}
