//! Off-site copies in the PostgreSQL catalog.

use chrono::{DateTime, Utc};

use crate::postgres::PostgresCatalog;
use crate::postgres_rows::{ms, signed, storable, unsigned};
use dbkeep_model::catalog::BackupId;
use dbkeep_model::copies::{Copies, Copy, CopyState};
use dbkeep_model::error::Result;

impl Copies for PostgresCatalog {
    fn record_copy(&self, c: &Copy) -> Result<()> {
        // The failure is counted in the same transaction as the copy's new state.
        let failed_at = ms(Utc::now());
        self.transaction(|tx| {
            tx.execute(
                "INSERT INTO copies (backup_id, store, key, size_bytes, sha256, state, error, uploaded_at, pruned_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (backup_id, store) DO UPDATE SET key = excluded.key,
                   size_bytes = excluded.size_bytes, sha256 = excluded.sha256, state = excluded.state,
                   error = excluded.error, uploaded_at = excluded.uploaded_at, pruned_at = excluded.pruned_at",
                &[
                    &c.backup_id,
                    &c.store,
                    &c.key,
                    &c.size_bytes.map(signed),
                    &c.sha256,
                    &c.state.as_str(),
                    &c.error,
                    &c.uploaded_at.map(ms),
                    &c.pruned_at.map(ms),
                ],
            )?;
            if let (CopyState::Failed, Some(error)) = (c.state, &c.error) {
                tx.execute(
                    "INSERT INTO offsite_failures (store, backup_id, at, error) VALUES ($1, $2, $3, $4)",
                    &[&c.store, &c.backup_id, &failed_at, error],
                )?;
            }
            Ok(())
        })
    }

    fn failure_counts(&self) -> Result<Vec<(String, u64)>> {
        self.counts("SELECT store, count(*) FROM offsite_failures GROUP BY store ORDER BY store")
    }

    fn last_uploads(&self) -> Result<Vec<(String, String, DateTime<Utc>)>> {
        self.rows(
            "SELECT b.database, c.store, max(c.uploaded_at) FROM copies c JOIN backups b ON b.id = c.backup_id
             WHERE c.state = 'uploaded' GROUP BY b.database, c.store ORDER BY b.database, c.store",
            &[],
            |r| {
                Ok((
                    r.try_get(0)?,
                    r.try_get(1)?,
                    r.try_get::<_, Option<DateTime<Utc>>>(2)?.unwrap_or_default(),
                ))
            },
        )
    }

    fn mark_copies_pruned(&self, copies: &[(BackupId, String)], at: DateTime<Utc>) -> Result<()> {
        // A destination with a NUL in its name has no copy here (PostgreSQL text cannot hold
        // one): there is nothing to mark.
        let (ids, stores): (Vec<BackupId>, Vec<&str>) = copies
            .iter()
            .filter(|(_, store)| storable(store))
            .map(|(id, store)| (*id, store.as_str()))
            .unzip();
        if ids.is_empty() {
            return Ok(());
        }
        self.execute(
            "UPDATE copies SET pruned_at = $3 FROM unnest($1::bigint[], $2::text[]) AS t (backup_id, store)
             WHERE copies.backup_id = t.backup_id AND copies.store = t.store",
            &[&ids, &stores, &ms(at)],
        )?;
        Ok(())
    }

    fn copies(&self, backup_id: BackupId) -> Result<Vec<Copy>> {
        self.rows(
            "SELECT backup_id, store, key, size_bytes, sha256, state, error, uploaded_at, pruned_at
             FROM copies WHERE backup_id = $1 ORDER BY store",
            &[&backup_id],
            |r| {
                Ok(Copy {
                    backup_id: r.try_get(0)?,
                    store: r.try_get(1)?,
                    key: r.try_get(2)?,
                    size_bytes: r.try_get::<_, Option<i64>>(3)?.map(unsigned),
                    sha256: r.try_get(4)?,
                    state: if r.try_get::<_, &str>(5)? == "uploaded" {
                        CopyState::Uploaded
                    } else {
                        CopyState::Failed
                    },
                    error: r.try_get(6)?,
                    uploaded_at: r.try_get(7)?,
                    pruned_at: r.try_get(8)?,
                })
            },
        )
    }
}
