//! Recovery of runs whose process died: their rows marked failed, their temporary files removed.

use super::*;
use dbkeep_model::catalog::Outcome;

impl Runner {
    /// Marks `in_progress` rows whose process is gone as failed ("interrupted") and removes
    /// their temporary files. A run that is still alive, in this process or another, on this
    /// machine or another, holds its database's lease and is left alone.
    ///
    /// # Errors
    /// When the catalog cannot be read or written.
    pub fn recover_interrupted(&self) -> Result<Vec<BackupRecord>> {
        let filter = ListFilter {
            status: Some(Status::InProgress),
            ..ListFilter::default()
        };
        let mut recovered = Vec::new();
        for row in self.catalog.list(&filter)? {
            // Another configuration sharing the catalog recovers its own runs; with leases, a
            // run of this database whose lease lapsed is failed by whoever notices (another
            // instance's, on another machine: its temporary files are that machine's).
            let ours = self.on_this_disk(&row);
            let peer = self.config().database(&row.database).is_ok();
            if !ours && !peer {
                continue;
            }
            let lease = self
                .catalog
                .lease(&crate::lease::backup_resource(&row.database))?;
            let why = match lease {
                // The holder is starting (its run not yet named), or runs this very row.
                Some(l) if l.live && l.run.is_none_or(|run| run == row.id) => continue,
                Some(l) if l.run == Some(row.id) => format!(
                    "interrupted: instance {} stopped renewing its lease before the backup finished (killed, crashed, machine restarted or cut off)",
                    l.holder
                ),
                _ => INTERRUPTED.to_string(),
            };
            // Re-read: the run may have finished between the list and the check.
            if self
                .catalog
                .get(row.id)?
                .is_none_or(|r| r.status != Status::InProgress)
            {
                continue;
            }
            self.mark_interrupted(&row, &why, ours)?;
            recovered.push(row);
        }
        self.recover_fires()?;
        Ok(recovered)
    }

    /// Finishes the fires that an instance claimed and then stopped before their run began:
    /// they show "not started", with the reason, never "running" for ever. (A fire whose run
    /// began shows its backup's fate, which recovery records above.)
    fn recover_fires(&self) -> Result<()> {
        // One indexed read; most often empty.
        let unstarted = self.catalog.unstarted_fires()?;
        if unstarted.is_empty() {
            return Ok(());
        }
        let alive: std::collections::HashSet<String> = self
            .catalog
            .instances(
                self.config().service.lease_timeout,
                dbkeep_model::instances::LISTED_FOR,
            )?
            .into_iter()
            .filter(|i| i.alive)
            .map(|i| i.name)
            .collect();
        for fire in unstarted {
            if self.config().database(&fire.database).is_err() {
                continue;
            }
            let Some(claimant) = &fire.claimed_by else {
                continue;
            };
            if *claimant == self.instance.name || alive.contains(claimant) {
                continue;
            }
            warn!(database = %fire.database, fire = fire.id, claimant = %claimant, "finishing a fire whose instance stopped before its run began");
            self.catalog.finish_fire(
                fire.id,
                Outcome::Skipped,
                None,
                None,
                Some(&format!(
                    "could not start: instance {claimant} stopped before its run began"
                )),
            )?;
        }
        Ok(())
    }

    fn mark_interrupted(&self, row: &BackupRecord, why: &str, ours: bool) -> Result<()> {
        // The temporary files sit beside the final name in the database's own folder, whatever
        // path the row holds (only this configuration's own runs have theirs here).
        if let Some(name) = row
            .file_name
            .as_deref()
            .filter(|n| ours && !n.contains('/'))
        {
            remove_temp_files(&self.config().database_dir(&row.database).join(name));
        }
        let now = self.clock.now();
        let ms = (now - row.started_at).num_milliseconds().max(0) as u64;
        warn!(database = %row.database, id = row.id, "marking a backup whose process stopped as failed");
        self.catalog.fail(row.id, why, now, ms)
    }
}

/// Why a run whose process is gone failed.
const INTERRUPTED: &str = "interrupted: the process running this backup stopped before it finished (killed, crashed or machine restarted)";

/// Removes a SQLite file together with the journal, WAL and shared-memory files SQLite may leave.
pub(super) fn remove_sqlite_files(path: &Path) {
    for side in ["", "-journal", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_os_string();
        p.push(side);
        let _ = storage::remove_if_exists(Path::new(&p));
    }
}

/// Removes every temporary file a run for `path` may have left.
pub(crate) fn remove_temp_files(path: &Path) {
    remove_sqlite_files(&temp_path(path, "part"));
    remove_sqlite_files(&temp_path(path, "snapshot"));
    let _ = storage::remove_if_exists(&temp_path(path, "globals"));
}
