//! Retention applied: what the policy lets go is deleted from its database's own folder.

use super::*;

impl Runner {
    /// Deletes (or, with `dry_run`, lists) the backups retention lets go, for one database or all.
    ///
    /// # Errors
    /// An unknown database or a catalog failure. A file that cannot be deleted is reported in
    /// its [`Pruned::error`] and stays recorded as present.
    pub fn prune(
        &self,
        database: Option<&str>,
        retention_days: Option<u32>,
        dry_run: bool,
    ) -> Result<Vec<Pruned>> {
        if let Some(name) = database {
            self.config.database(name)?;
        }
        let policy = Policy {
            retention_days: retention_days.unwrap_or(self.config.retention_days),
            keep_last: self.config.keep_last,
        };
        let mut records = self.catalog.list(&ListFilter {
            database: database.map(str::to_string),
            status: Some(Status::Success),
            ..ListFilter::default()
        })?;
        // A catalog shared with other configurations holds their backups too: never ours to prune.
        records.retain(|r| self.owns(r));
        let now = self.clock.now();
        let mut out = Vec::new();
        for p in retention::plan(&records, policy, now) {
            let Some(record) = records.iter().find(|r| r.id == p.id).cloned() else {
                continue;
            };
            let error = if dry_run {
                None
            } else {
                self.delete(&record, now).err()
            };
            if let Some(e) = &error {
                warn!(database = %record.database, id = record.id, error = %e, "could not prune");
            } else if !dry_run {
                info!(database = %record.database, id = record.id, reason = %p.reason, "pruned");
            }
            out.push(Pruned {
                record,
                reason: p.reason,
                error,
            });
        }
        Ok(out)
    }

    fn delete(&self, record: &BackupRecord, now: DateTime<Utc>) -> std::result::Result<(), String> {
        // Its off-site copies first: a copy that cannot be deleted keeps the backup recorded.
        if let Some(copies) = self.copies() {
            crate::offsite::prune_copies(&self.offsite, copies, record, now)
                .map_err(|e| format!("{e}; not deleted"))?;
        }
        // A file already gone is fine: the row only needs to say so.
        let removed = match self.owned_name(record) {
            Ok(name) => self
                .local
                .delete(&store_key(&record.database, name))
                .map_err(|e| e.to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.to_string()),
        };
        // The server's roles stored beside it go with it (also when the dump was gone already).
        if removed.is_ok()
            && let Ok(Some(globals)) = self.catalog.globals_file(record.id)
            && let Err(e) = self.local.delete(&store_key(&record.database, &globals))
        {
            warn!(database = %record.database, id = record.id, error = %e, "could not delete the stored roles");
        }
        removed.map_err(|e| format!("{e}; not deleted"))?;
        self.catalog
            .mark_pruned(record.id, now)
            .map_err(|e| e.to_string())
    }
}
