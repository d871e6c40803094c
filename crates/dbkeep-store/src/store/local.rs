//! The local backup folder as a [`Store`]: `backup_dir/<database>/<file_name>`, every file
//! found through [`storage::backup_file`]'s checks (plain names, no links, regular files inside
//! their database's folder), written by temporary file, fsync and rename.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{Sending, Store, Stored};
use dbkeep_model::error::{Error, Result};
use dbkeep_model::storage;

/// The local backup folder.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    /// The store over `backup_dir` (created, private, on the first write).
    pub fn new(backup_dir: &Path) -> LocalStore {
        LocalStore {
            root: backup_dir.to_path_buf(),
        }
    }

    /// `<database>/<file_name>` split in two; anything else is refused.
    fn split<'k>(&self, key: &'k str) -> Result<(&'k str, &'k str)> {
        key.split_once('/')
            .filter(|(_, name)| !name.contains('/'))
            .ok_or_else(|| {
                Error::Refused(format!(
                    "`{key}` is not a backup key (<database>/<file_name>)"
                ))
            })
    }

    fn fail(&self, what: &str, key: &str, e: impl std::fmt::Display) -> Error {
        Error::Engine(format!("{what} {}: {e}", self.root.join(key).display()))
    }

    /// Deletes many of `database`'s stored files at once, as [`Store::delete`] deletes one,
    /// with one sync of its folder: each name's outcome, in order (a file already gone is
    /// deleted).
    ///
    /// # Errors
    /// When the folder cannot be opened or synced.
    pub fn delete_many(&self, database: &str, file_names: &[&str]) -> Result<Vec<Result<()>>> {
        let done = storage::remove_backups(&self.root, database, file_names)
            .map_err(|e| self.fail("cannot delete in", database, e))?;
        Ok(done
            .into_iter()
            .zip(file_names)
            .map(|(r, name)| match r {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(self.fail("cannot delete", &format!("{database}/{name}"), e)),
            })
            .collect())
    }

    /// The stored file at `key`, as [`storage::open_backup`] opens it.
    ///
    /// # Errors
    /// `NotFound` when it is missing; another error naming the path when it is refused.
    pub fn open_file(&self, key: &str) -> io::Result<std::fs::File> {
        let (database, name) = self.split(key).map_err(io::Error::other)?;
        storage::open_backup(&self.root, database, name)
    }
}

impl Store for LocalStore {
    fn name(&self) -> &str {
        "local"
    }

    fn put_file(&self, key: &str, path: &Path, sending: Sending<'_>) -> Result<Stored> {
        let Sending { progress, cancel } = sending;
        let (database, name) = self.split(key)?;
        let dir = self.root.join(database);
        storage::create_private_dir(&dir).map_err(|e| self.fail("cannot create", database, e))?;
        let target = dir.join(name);
        let part = dbkeep_model::storage::temp_path(&target, "part");
        let copy = || -> io::Result<Stored> {
            let mut from = std::fs::File::open(path)?;
            let mut to = storage::create_private_file(&part)?;
            let mut hasher = Sha256::new();
            let mut size_bytes = 0u64;
            let mut buf = vec![0u8; 1 << 20];
            loop {
                if let Some(reason) = cancel.reason() {
                    return Err(io::Error::other(reason));
                }
                let n = match from.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                to.write_all(&buf[..n])?;
                hasher.update(&buf[..n]);
                size_bytes += n as u64;
                progress.advance(n as u64);
            }
            to.sync_all()?;
            storage::publish(&part, &target)?;
            Ok(Stored {
                size_bytes,
                sha256: dbkeep_model::text::hex(&hasher.finalize()),
            })
        };
        copy().map_err(|e| {
            let _ = storage::remove_if_exists(&part);
            self.fail("cannot write", key, e)
        })
    }

    fn open(&self, key: &str) -> Result<Box<dyn Read + Send>> {
        self.open_file(key)
            .map(|f| Box::new(f) as Box<dyn Read + Send>)
            .map_err(|e| self.fail("cannot read", key, e))
    }

    fn exists(&self, key: &str) -> Result<bool> {
        let (database, name) = self.split(key)?;
        match storage::backup_file(&self.root, database, name) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.fail("cannot look up", key, e)),
        }
    }

    fn delete(&self, key: &str) -> Result<()> {
        let (database, name) = self.split(key)?;
        match storage::remove_backup(&self.root, database, name) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.fail("cannot delete", key, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use dbkeep_model::cancel::Cancel;
    use dbkeep_model::stream::NoProgress;

    #[test]
    fn puts_opens_and_deletes_inside_the_database_folder_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(&dir.path().join("backups"));
        let source = dir.path().join("dump.sql");
        std::fs::write(&source, b"select 1;\n").unwrap();
        let cancel = Cancel::new();
        let sending = Sending {
            progress: &NoProgress,
            cancel: &cancel,
        };
        let stored = store.put_file("app/x.sql", &source, sending).unwrap();
        assert_eq!(stored.size_bytes, 10);
        assert!(store.exists("app/x.sql").unwrap());
        let mut text = String::new();
        store
            .open("app/x.sql")
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "select 1;\n");
        // The same key twice: the first file is never overwritten.
        assert!(store.put_file("app/x.sql", &source, sending).is_err());
        for bad in [
            "x.sql",
            "../x.sql",
            "app/../x.sql",
            "../app/x.sql",
            "app/sub/x.sql",
        ] {
            assert!(store.exists(bad).is_err(), "{bad}");
            assert!(store.delete(bad).is_err(), "{bad}");
        }
        store.delete("app/x.sql").unwrap();
        assert!(!store.exists("app/x.sql").unwrap());
        // Gone already is fine.
        store.delete("app/x.sql").unwrap();
        let left: Vec<_> = std::fs::read_dir(dir.path().join("backups/app"))
            .unwrap()
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
