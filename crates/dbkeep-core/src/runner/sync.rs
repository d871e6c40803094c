//! Off-site sync: after an outage, every stored backup's missing or failed copies are sent
//! again, oldest first, and a local file whose copies all arrived may go (`keep_local`).

use chrono::Utc;

use super::Runner;
use crate::offsite::{delete_copy, holders, key_of, upload};
use dbkeep_model::catalog::BackupRecord;
use dbkeep_model::copies::{Copies, Copy, CopyState};
use dbkeep_model::error::Result;
use dbkeep_model::vocab::BackupId;
use dbkeep_store::store::Sending;

/// What `dbkeep offsite sync` did for one backup at one destination.
#[derive(Debug)]
pub struct Synced {
    /// The backup.
    pub backup_id: BackupId,
    /// Its database.
    pub database: String,
    /// The destination.
    pub store: String,
    /// `Ok` once the copy arrived, or why it did not.
    pub result: std::result::Result<(), String>,
}

impl Runner {
    /// Uploads every stored backup's missing or failed copies (after an outage), oldest first,
    /// until `cancel` is raised.
    ///
    /// # Errors
    /// When the catalog cannot be read.
    pub fn sync_offsite(&self, except: &[String], sending: Sending<'_>) -> Result<Vec<Synced>> {
        let copies = self.copies();
        let mut out = Vec::new();
        let config = self.config();
        let databases = config.databases.iter();
        for db in databases.filter(|d| !except.contains(&d.name)) {
            let mut records = self.catalog().list(&dbkeep_model::catalog::ListFilter {
                database: Some(db.name.clone()),
                status: Some(dbkeep_model::catalog::Status::Success),
                ..dbkeep_model::catalog::ListFilter::default()
            })?;
            records.retain(|r| r.pruned_at.is_none() && self.on_this_disk(r));
            records.reverse();
            for record in records {
                let have = copies.copies(record.id)?;
                let missing: Vec<String> = self
                    .offsite()
                    .taking(&db.name)
                    .map(|o| o.name.clone())
                    .filter(|name| {
                        !have
                            .iter()
                            .any(|c| &c.store == name && c.state == CopyState::Uploaded)
                    })
                    .collect();
                if missing.is_empty() {
                    continue;
                }
                let path = self.backup_file(&record);
                let globals = self.catalog().globals_file(record.id)?;
                for name in missing {
                    if sending.cancel.reason().is_some() {
                        return Ok(out); // Stopped: what is left waits for the next sync.
                    }
                    let result = match (&path, self.offsite().store(&name), key_of(&record)) {
                        (Ok(path), Some(store), Some(key)) => {
                            let sent = upload(
                                store.as_ref(),
                                &key,
                                path,
                                globals.as_deref(),
                                &record,
                                sending,
                            );
                            let mut copy = Copy {
                                backup_id: record.id,
                                store: name.clone(),
                                key,
                                size_bytes: sent.as_ref().ok().map(|s| s.size_bytes),
                                sha256: sent.as_ref().ok().map(|s| s.sha256.clone()),
                                state: if sent.is_ok() {
                                    CopyState::Uploaded
                                } else {
                                    CopyState::Failed
                                },
                                error: sent.as_ref().err().cloned(),
                                uploaded_at: sent.is_ok().then(Utc::now),
                                pruned_at: None,
                            };
                            // Retention took the backup while it was being sent: the copy goes too.
                            if sent.is_ok()
                                && let Some(at) =
                                    self.catalog().get(record.id)?.and_then(|r| r.pruned_at)
                                && delete_copy(
                                    store.as_ref(),
                                    &record,
                                    &copy.key,
                                    globals.as_deref(),
                                )
                                .is_ok()
                            {
                                copy.pruned_at = Some(at);
                            }
                            copies.record_copy(&copy)?;
                            sent.map(drop)
                        }
                        (Err(e), _, _) => Err(format!("its local file: {e}")),
                        (_, None, _) => Err(format!("off-site `{name}` cannot be opened")),
                        (_, _, None) => Err("it has no file".into()),
                    };
                    out.push(Synced {
                        backup_id: record.id,
                        database: db.name.clone(),
                        store: name,
                        result,
                    });
                }
                // keep_local = false: once every destination holds it, the local file goes, as
                // after a backup whose copies all arrived.
                if !db.keep_local
                    && every_copy_arrived(self, copies, &record)?
                    && let Err(e) = self.remove_local(&record)
                {
                    tracing::warn!(database = %db.name, id = record.id, error = %e, "could not remove the local file");
                }
            }
        }
        Ok(out)
    }
}

/// Whether every destination taking `record`'s database holds a checked copy of it.
fn every_copy_arrived(
    runner: &crate::runner::Runner,
    copies: &dyn Copies,
    record: &BackupRecord,
) -> Result<bool> {
    let held = holders(copies, record)?;
    Ok(runner
        .offsite()
        .taking(&record.database)
        .all(|o| held.contains(&o.name)))
}
