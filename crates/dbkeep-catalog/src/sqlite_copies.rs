//! Off-site copies in the SQLite catalog.

use rusqlite::params;

use crate::sqlite::SqliteCatalog;
use crate::sqlite::time;
use dbkeep_model::catalog::{BackupId, format_time};
use dbkeep_model::copies::{Copies, Copy, CopyState};
use dbkeep_model::error::Result;

impl Copies for SqliteCatalog {
    fn record_copy(&self, c: &Copy) -> Result<()> {
        self.conn()
            .execute(
                "INSERT INTO copies (backup_id, store, key, size_bytes, sha256, state, error, uploaded_at, pruned_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (backup_id, store) DO UPDATE SET key = ?3, size_bytes = ?4, sha256 = ?5,
                   state = ?6, error = ?7, uploaded_at = ?8, pruned_at = ?9",
                params![
                    c.backup_id,
                    c.store,
                    c.key,
                    c.size_bytes.map(|n| n as i64),
                    c.sha256,
                    c.state.as_str(),
                    c.error,
                    c.uploaded_at.as_ref().map(format_time),
                    c.pruned_at.as_ref().map(format_time),
                ],
            )
            .map_err(|e| self.err(e))?;
        if let (CopyState::Failed, Some(error)) = (c.state, &c.error) {
            self.conn()
                .execute(
                    "INSERT INTO offsite_failures (store, backup_id, at, error) VALUES (?1, ?2, ?3, ?4)",
                    params![c.store, c.backup_id, format_time(&chrono::Utc::now()), error],
                )
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    fn failure_counts(&self) -> Result<Vec<(String, u64)>> {
        self.counts("SELECT store, count(*) FROM offsite_failures GROUP BY store ORDER BY store")
    }

    fn last_uploads(&self) -> Result<Vec<(String, String, chrono::DateTime<chrono::Utc>)>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT b.database, c.store, max(c.uploaded_at) FROM copies c JOIN backups b ON b.id = c.backup_id
                 WHERE c.state = 'uploaded' GROUP BY b.database, c.store ORDER BY b.database, c.store",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    time(2, r.get(2)?)?.unwrap_or_default(),
                ))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    fn mark_copies_pruned(
        &self,
        copies: &[(BackupId, String)],
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<()> {
        if copies.is_empty() {
            return Ok(());
        }
        let at = format_time(&at);
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "UPDATE copies SET pruned_at = ?3 WHERE backup_id = ?1 AND store = ?2",
                )
                .map_err(|e| self.err(e))?;
            for (backup_id, store) in copies {
                stmt.execute(params![backup_id, store, at])
                    .map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }

    fn copies(&self, backup_id: BackupId) -> Result<Vec<Copy>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT backup_id, store, key, size_bytes, sha256, state, error, uploaded_at, pruned_at
                 FROM copies WHERE backup_id = ?1 ORDER BY store",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([backup_id], |r| {
                Ok(Copy {
                    backup_id: r.get(0)?,
                    store: r.get(1)?,
                    key: r.get(2)?,
                    size_bytes: r.get::<_, Option<i64>>(3)?.map(|n| n.max(0) as u64),
                    sha256: r.get(4)?,
                    state: if r.get::<_, String>(5)? == "uploaded" {
                        CopyState::Uploaded
                    } else {
                        CopyState::Failed
                    },
                    error: r.get(6)?,
                    uploaded_at: time(7, r.get(7)?)?,
                    pruned_at: time(8, r.get(8)?)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }
}
