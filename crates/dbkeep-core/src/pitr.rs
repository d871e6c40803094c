//! Point-in-time recovery of a PostgreSQL server: its WAL archived by `dbkeep wal push`
//! (PostgreSQL's `archive_command`) into the server's folder (`<backup_dir>/<server>/wal/`)
//! and queued for its off-site destinations, served back by `dbkeep wal fetch`
//! (`restore_command`), and base backups (kept as the backups of a database named as the
//! server) that the archive replays onto, to any moment it covers.

mod drill;
mod fetch;
mod push;
mod recover;
mod send;
mod state;

use std::path::Path;

use dbkeep_config::config::{Config, ServerConfig};
use dbkeep_model::catalog::{BackupRecord, Catalog, Kind};
use dbkeep_model::error::{Error, Result};

pub use crate::runner::wal::{prune_wal, stored_bases, wal_dir, wal_key};
pub use drill::{Drilled, drill};
pub use fetch::{Fetched, fetch};
pub use push::{Pushed, push};
pub use recover::{Prepared, Recoverable, RecoveryTarget, free_port, prepare, recoverable, start};
pub use send::{Sent, send_queued};
pub use state::{ArchiveState, states};

/// Refuses to load `record` into a database when it is a base backup.
///
/// # Errors
/// [`Error::Refused`] for a base backup, saying how it is restored.
pub fn refuse_base(record: &BackupRecord) -> Result<()> {
    if record.kind == Kind::PostgresBase {
        return Err(Error::Refused(format!(
            "backup #{} is a base backup of server `{}`: restore it to a point in time with `dbkeep restore --server {} --at \"YYYY-MM-DD HH:MM:SS\" --to-dir PATH`",
            record.id, record.database, record.database
        )));
    }
    Ok(())
}

/// The `[[servers]]` entry whose archive a command is about: `named` (`--server`), else the
/// only one archiving WAL, else the one the cluster of `data_dir` archives into.
///
/// # Errors
/// [`Error::Refused`] when `named` is not a server that archives WAL, or none can be told.
pub fn server_for<'c>(
    config: &'c Config,
    catalog: &dyn Catalog,
    named: Option<&str>,
    data_dir: &Path,
) -> Result<&'c ServerConfig> {
    let archiving: Vec<&ServerConfig> =
        config.servers.iter().filter(|s| s.archives_wal()).collect();
    let names = || {
        archiving
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(name) = named {
        return archiving
            .iter()
            .find(|s| s.name == name)
            .copied()
            .ok_or_else(|| {
                Error::Refused(format!(
                    "--server {name}: no [[servers]] entry of that name has `wal_archive = true` (those that do: {})",
                    if archiving.is_empty() { "none".to_string() } else { names() }
                ))
            });
    }
    match archiving.as_slice() {
        [] => Err(Error::Refused(format!(
            "no [[servers]] entry in {} has `wal_archive = true`: add it to the PostgreSQL server's entry",
            config.path.display()
        ))),
        [only] => Ok(only),
        _ => {
            let known = system_identifier(data_dir)
                .ok()
                .map(|id| catalog.server_of_system(&id))
                .transpose()?
                .flatten();
            known
                .and_then(|name| archiving.iter().find(|s| s.name == name).copied())
                .ok_or_else(|| {
                    Error::Refused(format!(
                        "several servers archive WAL ({}), and this cluster is not known to any of them yet: name it with --server NAME",
                        names()
                    ))
                })
        }
    }
}

/// The system identifier of the cluster in `data_dir` (`pg_control`'s first field), which
/// every cluster draws at `initdb` and its copies keep.
///
/// # Errors
/// When `global/pg_control` cannot be read.
pub fn system_identifier(data_dir: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let path = data_dir.join("global").join("pg_control");
    let mut first = [0u8; 8];
    std::fs::File::open(&path)
        .and_then(|mut f| f.read_exact(&mut first))
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    Ok(u64::from_le_bytes(first).to_string())
}
