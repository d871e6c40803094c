//! `dbkeep wal fetch`: one archived file back to PostgreSQL's `restore_command`, from the
//! nearest copy (the local folder, then each off-site destination), decrypted and
//! decompressed, checked against the SHA-256 recorded when it was pushed, and renamed into
//! place only once whole.

use std::io::Read;
use std::path::Path;

use dbkeep_config::config::Config;
use dbkeep_model::catalog::Catalog;
use dbkeep_model::error::{Error, Result};
use dbkeep_model::storage;
use dbkeep_model::wal::WalFile;
use dbkeep_pipeline::crypt::Keys;
use dbkeep_pipeline::pipeline::{self, HashingWriter};

use crate::offsite::Destinations;

/// Opens one copy of an archive file.
type Opener = Box<dyn Fn() -> Result<Box<dyn Read + Send>>>;

/// What a fetch did.
#[derive(Debug)]
pub struct Fetched {
    /// Where the copy came from: `local` or a destination's name.
    pub from: String,
    /// Bytes written to PostgreSQL's path.
    pub bytes: u64,
}

/// Writes the archived file `name` of server `named` (else the one [`super::server_for`]
/// finds) to `dest` (`%p`).
///
/// # Errors
/// [`Error::Refused`] when the archive has no such file (PostgreSQL asks for files past the
/// archive's end: that ends its recovery), or when no copy could be read whole and matching
/// its SHA-256.
pub fn fetch(
    config: &Config,
    catalog: &dyn Catalog,
    name: &str,
    dest: &Path,
    named: Option<&str>,
) -> Result<Fetched> {
    if WalFile::of(name).is_none() {
        return Err(Error::Refused(format!(
            "`{name}` is not a file PostgreSQL archives; restore_command must pass %f"
        )));
    }
    let server = super::server_for(config, catalog, named, Path::new("."))?;
    let Some(segment) = catalog.segment(&server.name, name)? else {
        return Err(Error::Refused(format!(
            "{name} is not in the WAL archive of server `{}`",
            server.name
        )));
    };
    if segment.archived_at.is_none() {
        return Err(Error::Refused(format!(
            "{name} of server `{}` was never made durable (its push did not end)",
            server.name
        )));
    }
    let file_name = segment.file_name();
    let keys = if segment.encrypted {
        Some(Keys::for_database(config, &server.name, &file_name)?)
    } else {
        None
    };
    let mut tried = Vec::new();
    let local = super::wal_dir(config, &server.name).join(&file_name);
    let mut sources: Vec<(String, Opener)> = Vec::new();
    sources.push((
        "local".into(),
        Box::new(move || {
            let meta =
                std::fs::symlink_metadata(&local).map_err(Error::io("cannot read", &local))?;
            if !meta.is_file() {
                return Err(Error::Refused(format!(
                    "{} is not a regular file",
                    local.display()
                )));
            }
            let f = std::fs::File::open(&local).map_err(Error::io("cannot read", &local))?;
            Ok(Box::new(f) as Box<dyn Read + Send>)
        }),
    ));
    let destinations = Destinations::new(config.offsite.clone());
    for (o, store) in destinations.for_database(&server.name) {
        let key = super::wal_key(&server.name, &file_name);
        sources.push((
            o.name.clone(),
            Box::new(move || {
                let store = store.clone().map_err(Error::Engine)?;
                store.open(&key)
            }),
        ));
    }
    for (from, open) in &sources {
        match open().and_then(|file| {
            write_checked(
                file,
                segment.compression,
                keys.as_ref(),
                &segment.sha256,
                dest,
            )
        }) {
            Ok(bytes) => {
                return Ok(Fetched {
                    from: from.clone(),
                    bytes,
                });
            }
            Err(e) => tried.push(format!("{from}: {e}")),
        }
    }
    Err(Error::Refused(format!(
        "no readable copy of {name} of server `{}`: {}",
        server.name,
        tried.join("; ")
    )))
}

/// Decrypts and decompresses `file` into a temporary beside `dest`, checks its SHA-256 and
/// renames it onto `dest`.
fn write_checked(
    file: Box<dyn Read + Send>,
    compression: dbkeep_model::vocab::Compression,
    keys: Option<&Keys>,
    sha256: &str,
    dest: &Path,
) -> Result<u64> {
    let temp = storage::temp_path(dest, "dbkeep");
    let _ = storage::remove_if_exists(&temp);
    let done = (|| {
        let mut reader = pipeline::open_reader(file, compression, keys)
            .map_err(|e| Error::Refused(e.to_string()))?;
        let mut out = HashingWriter::new(
            storage::create_private_file(&temp).map_err(Error::io("cannot create", &temp))?,
        );
        dbkeep_model::stream::copy(&mut reader, &mut out)
            .map_err(|e| Error::Refused(format!("cannot read it into {}: {e}", temp.display())))?;
        let (out, bytes, found) = out.finish();
        if found != sha256 {
            return Err(Error::Refused(format!(
                "it does not match the SHA-256 recorded when it was archived (recorded {sha256}, found {found}): it is damaged"
            )));
        }
        out.sync_all().map_err(Error::io("cannot sync", &temp))?;
        std::fs::rename(&temp, dest).map_err(Error::io("cannot rename into place", dest))?;
        Ok(bytes)
    })();
    if done.is_err() {
        let _ = storage::remove_if_exists(&temp);
    }
    done
}
