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
        records.retain(|r| self.on_this_disk(r));
        let now = self.clock.now();
        let mut out = Vec::new();
        let mut waiting: std::collections::HashMap<String, Option<String>> = Default::default();
        for p in retention::plan(&records, policy, now) {
            let Some(record) = records.iter().find(|r| r.id == p.id).cloned() else {
                continue;
            };
            // Nothing of a database is pruned until its newest backup is off-site everywhere.
            let held_back = match waiting.get(&record.database) {
                Some(why) => why.clone(),
                None => {
                    let why = self.not_yet_offsite(&records, &record.database)?;
                    waiting.insert(record.database.clone(), why.clone());
                    why
                }
            };
            let error = match held_back {
                Some(why) => Some(why),
                None if dry_run => None,
                None => self.delete(&record, now).err(),
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

    /// Why `database`'s backups must wait: a destination that takes it holds no checked copy
    /// of its newest successful backup yet.
    fn not_yet_offsite(&self, records: &[BackupRecord], database: &str) -> Result<Option<String>> {
        let copies = self.copies();
        let Some(newest) = records
            .iter()
            .filter(|r| r.database == database && r.pruned_at.is_none())
            .max_by_key(|r| (r.started_at, r.id))
        else {
            return Ok(None);
        };
        let held = copies.copies(newest.id)?;
        let missing: Vec<&str> = self
            .config
            .offsite
            .iter()
            .filter(|o| o.takes(database))
            .filter(|o| {
                !held.iter().any(|c| {
                    c.store == o.name
                        && c.state == dbkeep_model::copies::CopyState::Uploaded
                        && c.pruned_at.is_none()
                })
            })
            .map(|o| o.name.as_str())
            .collect();
        Ok((!missing.is_empty()).then(|| {
            format!(
                "kept: the newest backup #{} is not yet copied to {}; run `dbkeep offsite sync`, then prune",
                newest.id,
                missing
                    .iter()
                    .map(|m| format!("`{m}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }))
    }

    fn delete(&self, record: &BackupRecord, now: DateTime<Utc>) -> std::result::Result<(), String> {
        // Its off-site copies first: a copy that cannot be deleted keeps the backup recorded.
        let globals = self
            .catalog
            .globals_file(record.id)
            .map_err(|e| format!("{e}; not deleted"))?;
        let copies = self.copies();
        crate::offsite::prune_copies(&self.offsite, copies, record, globals.as_deref(), now)
            .map_err(|e| format!("{e}; not deleted"))?;
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
            && let Some(globals) = &globals
            && let Err(e) = self.local.delete(&store_key(&record.database, globals))
        {
            warn!(database = %record.database, id = record.id, error = %e, "could not delete the stored roles");
        }
        removed.map_err(|e| format!("{e}; not deleted"))?;
        self.catalog
            .mark_pruned(record.id, now)
            .map_err(|e| e.to_string())
    }
}
