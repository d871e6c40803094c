//! Recovery of runs whose process died: their rows marked failed, their temporary files removed.

use super::*;

impl Runner {
    /// Marks `in_progress` rows whose process is gone as failed ("interrupted") and removes
    /// their temporary files. A run that is still alive in another process holds its
    /// database's lock and is left alone.
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
            // Another configuration sharing the catalog recovers its own runs.
            if !self.owns(&row) {
                continue;
            }
            let Some(_lock) = DatabaseLock::try_acquire(&self.config.lock_base(), &row.database)?
            else {
                continue;
            };
            // Re-read under the lock: the run may have finished between the list and the lock.
            if self
                .catalog
                .get(row.id)?
                .is_none_or(|r| r.status != Status::InProgress)
            {
                continue;
            }
            self.mark_interrupted(&row)?;
            recovered.push(row);
        }
        Ok(recovered)
    }

    fn mark_interrupted(&self, row: &BackupRecord) -> Result<()> {
        // The temporary files sit beside the final name in the database's own folder, whatever
        // path the row holds.
        if let Some(name) = row.file_name.as_deref().filter(|n| !n.contains('/')) {
            remove_temp_files(&self.config.database_dir(&row.database).join(name));
        }
        let now = self.clock.now();
        let ms = (now - row.started_at).num_milliseconds().max(0) as u64;
        warn!(database = %row.database, id = row.id, "marking a backup whose process stopped as failed");
        self.catalog.fail(
            row.id,
            "interrupted: the process running this backup stopped before it finished (killed, crashed or machine restarted)",
            now,
            ms,
        )
    }
}

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
