//! The archive follows the base backups: once retention has pruned a server's base backups,
//! the archive files from before the oldest one still stored (locally or off-site) are
//! deleted, locally and at each destination, and forgotten. Nothing a stored base backup
//! needs goes, nothing goes while no base backup is stored, and only files the catalog
//! recorded are ever deleted. Timeline histories are kept: they are small and every
//! recovery across a promotion needs them.

use tracing::{info, warn};

use super::View;
use dbkeep_model::catalog::{BackupRecord, Status};
use dbkeep_model::error::Result;
use dbkeep_model::storage;
use dbkeep_model::wal::{BaseBackup, WalFile};

/// The folder of `server`'s archive.
pub fn wal_dir(config: &dbkeep_config::config::Config, server: &str) -> std::path::PathBuf {
    config.database_dir(server).join("wal")
}

/// The key of an archive file at an off-site destination.
pub fn wal_key(server: &str, file_name: &str) -> String {
    format!("{server}/wal/{file_name}")
}

/// `server`'s base backups still stored somewhere (locally or off-site), oldest first, with
/// their rows.
///
/// # Errors
/// When the catalog cannot be read.
pub fn stored_bases(runner: &dyn View, server: &str) -> Result<Vec<(BaseBackup, BackupRecord)>> {
    let catalog = runner.catalog();
    let mut bases = Vec::new();
    for base in catalog.bases(server)? {
        if let Some(record) = catalog.get(base.backup_id)?
            && record.status == Status::Success
            && record.is_stored()
        {
            bases.push((base, record));
        }
    }
    Ok(bases)
}

/// Deletes the archive files of `server` that no stored base backup needs; returns their
/// names.
///
/// # Errors
/// When the catalog cannot be read or written. A file that cannot be deleted somewhere is
/// kept (and recorded) for the next prune.
pub fn prune_wal(runner: &dyn View, server: &str) -> Result<Vec<String>> {
    let bases = stored_bases(runner, server)?;
    let Some((oldest, _)) = bases.first() else {
        return Ok(Vec::new());
    };
    let keep_from = oldest.first_segment().to_string();
    // The log and segment numbers, across timelines: what began before the oldest base.
    let before = |name: &str| name.get(8..24).is_some_and(|pos| pos < &keep_from[8..24]);
    let config = runner.config();
    let catalog = runner.catalog();
    let dir = wal_dir(&config, server);
    let mut gone = Vec::new();
    for segment in catalog.segments(server)? {
        let prunable = matches!(
            WalFile::of(&segment.name),
            Some(WalFile::Segment | WalFile::Partial | WalFile::BackupHistory)
        );
        if !prunable || !before(&segment.name) {
            continue;
        }
        let file_name = segment.file_name();
        let mut kept = None;
        if let Err(e) = storage::remove_if_exists(&dir.join(&file_name)) {
            kept = Some(format!("local: {e}"));
        }
        for (o, store) in runner.offsite().for_database(server) {
            let deleted = store.and_then(|s| {
                s.delete(&wal_key(server, &file_name))
                    .map_err(|e| e.to_string())
            });
            if let Err(e) = deleted {
                kept = Some(format!("{}: {e}", o.name));
            }
        }
        match kept {
            None => gone.push(segment.name),
            Some(why) => {
                warn!(server, file = %segment.name, error = %why, "could not prune an archive file; kept for the next prune")
            }
        }
    }
    if !gone.is_empty() {
        storage::sync_dir(&dir).ok();
        catalog.forget_segments(server, &gone)?;
        info!(server, files = gone.len(), keep_from = %keep_from, "pruned the WAL archive before its oldest base backup");
    }
    Ok(gone)
}
