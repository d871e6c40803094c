//! `dbkeep wal push`: one file PostgreSQL hands to `archive_command`, made durable in the
//! server's archive folder before the command says yes.
//!
//! The file is compressed (and encrypted) into a hidden temporary, synced, then recorded in
//! the catalog with the SHA-256 of what PostgreSQL handed over, and only then renamed into
//! place: the final name only ever holds a whole file, and the catalog knows each file's
//! content before it appears. The same file pushed again (PostgreSQL retries after a crash)
//! succeeds; a different file of a recorded name fails loudly.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use dbkeep_config::config::Config;
use dbkeep_model::cancel::Cancel;
use dbkeep_model::catalog::Catalog;
use dbkeep_model::error::{Error, Result};
use dbkeep_model::storage;
use dbkeep_model::stream::NoProgress;
use dbkeep_model::vocab::Compression;
use dbkeep_model::wal::{Recorded, Segment, WalFile, stored_name};
use dbkeep_pipeline::pipeline::{HashingWriter, Pipeline, Stages};

/// What a push did.
#[derive(Debug)]
pub struct Pushed {
    /// The server whose archive took it.
    pub server: String,
    /// The file's name.
    pub name: String,
    /// Whether it was there already (the same file pushed again).
    pub again: bool,
    /// Bytes handed over.
    pub raw_bytes: u64,
    /// Bytes stored.
    pub stored_bytes: u64,
}

/// Archives the file at `path` (`%p`: relative to the data directory, the working directory
/// PostgreSQL runs `archive_command` in) into the archive of server `named` (else the one
/// [`super::server_for`] finds).
///
/// # Errors
/// [`Error::Refused`] for a name PostgreSQL never archives, an archive that belongs to another
/// cluster, or a different file under a recorded name; I/O errors (a full disk) and catalog
/// errors as they are. Any error means PostgreSQL keeps the file and tries again.
pub fn push(
    config: &Config,
    catalog: &dyn Catalog,
    path: &Path,
    named: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Pushed> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if WalFile::of(&name).is_none() {
        return Err(Error::Refused(format!(
            "{}: not a file PostgreSQL archives (a WAL segment, .partial, .backup or .history); archive_command must pass %p",
            path.display()
        )));
    }
    let data_dir = data_dir_of(path);
    let server = super::server_for(config, catalog, named, &data_dir)?;
    // A second cluster must never write into this archive: its segments' names are the same.
    match super::system_identifier(&data_dir) {
        Ok(id) => {
            let owner = catalog.claim_system(&server.name, &id)?;
            if owner != id {
                return Err(Error::Refused(format!(
                    "the WAL archive of server `{}` belongs to the cluster with system identifier {owner}, and this one ({}) is {id}: another cluster (or a restored copy) is archiving into it; give that cluster an archive of its own ([[servers]] entry) or switch its archiving off",
                    server.name,
                    data_dir.display()
                )));
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the cluster's system identifier; archiving without checking it")
        }
    }
    let db = config.database(&server.name)?;
    let compression = match db.compression {
        Compression::None => Compression::None,
        _ => Compression::Zstd,
    };
    let encrypted = db.encryption.is_some();
    let dir = super::wal_dir(config, &server.name);
    storage::create_private_dir(&dir).map_err(Error::io("cannot create", &dir))?;
    let final_path = dir.join(stored_name(&name, compression, encrypted));
    let temp = storage::temp_path(&final_path, "part");
    // A push killed before its rename left this; the retry replaces it.
    storage::remove_if_exists(&temp).map_err(Error::io("cannot remove", &temp))?;
    let written = write_temp(path, &temp, compression, db.encryption.as_ref(), config)
        .inspect_err(|_| {
            let _ = storage::remove_if_exists(&temp);
        })?;
    let segment = Segment {
        server: server.name.clone(),
        name: name.clone(),
        sha256: written.raw_sha256.clone(),
        raw_bytes: written.raw_bytes,
        stored_bytes: written.stored_bytes,
        compression,
        encrypted,
        archived_at: None,
    };
    let destinations: Vec<String> = config
        .offsite
        .iter()
        .filter(|o| o.takes(&server.name))
        .map(|o| o.name.clone())
        .collect();
    let recorded = catalog.add_segment(&segment, &destinations);
    let again = match recorded {
        Ok(Recorded::New) => false,
        Ok(Recorded::Again { .. }) => true,
        Ok(Recorded::Different { recorded }) => {
            let _ = storage::remove_if_exists(&temp);
            return Err(Error::Refused(format!(
                "{name} is archived already for server `{}` with other content (SHA-256 {recorded}, this one {}): another cluster writes into this archive, or this cluster was restored and went its own way; nothing was overwritten",
                server.name, written.raw_sha256
            )));
        }
        Err(e) => {
            let _ = storage::remove_if_exists(&temp);
            return Err(e);
        }
    };
    // A file under the final name is always whole, and was recorded with this content.
    if std::fs::symlink_metadata(&final_path).is_ok() {
        storage::remove_if_exists(&temp).map_err(Error::io("cannot remove", &temp))?;
    } else {
        storage::publish(&temp, &final_path)
            .map_err(Error::io("cannot rename into place", &final_path))?;
    }
    catalog.segment_archived(&server.name, &name, now)?;
    Ok(Pushed {
        server: server.name.clone(),
        name,
        again,
        raw_bytes: written.raw_bytes,
        stored_bytes: written.stored_bytes,
    })
}

/// The data directory of the cluster handing over `path`: the working directory for a
/// relative `%p` (`pg_wal/…`), else the folder above the file's.
fn data_dir_of(path: &Path) -> PathBuf {
    if path.is_relative() {
        return PathBuf::from(".");
    }
    path.parent()
        .and_then(Path::parent)
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

struct Written {
    raw_sha256: String,
    raw_bytes: u64,
    stored_bytes: u64,
}

/// Compresses (and encrypts) `source` into the new file `temp`, synced, never leaving less
/// than `min_free_space` free on its disk.
fn write_temp(
    source: &Path,
    temp: &Path,
    compression: Compression,
    encryption: Option<&dbkeep_config::config::Encryption>,
    config: &Config,
) -> Result<Written> {
    let mut input = std::fs::File::open(source).map_err(Error::io("cannot read", source))?;
    let file = storage::create_private_file(temp).map_err(Error::io("cannot create", temp))?;
    let cancel = Cancel::new();
    let mut out = Pipeline::new(
        file,
        Stages {
            compression,
            rows: None,
            encryption,
        },
        &NoProgress,
        &cancel,
    )
    .map_err(Error::io("cannot write", temp))?;
    // What PostgreSQL handed over is hashed on its way in.
    let mut raw = HashingWriter::new(storage::LeavesRoom::new(
        &mut out,
        temp,
        config.min_free_space,
    ));
    dbkeep_model::stream::copy(&mut input, &mut raw)
        .map_err(Error::io("cannot archive into", temp))?;
    let (_, raw_bytes, raw_sha256) = raw.finish();
    let written = out.finish().map_err(Error::io("cannot write", temp))?;
    Ok(Written {
        raw_sha256,
        raw_bytes,
        stored_bytes: written.size_bytes,
    })
}
