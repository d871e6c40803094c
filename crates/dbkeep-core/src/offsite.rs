//! Off-site copies: after a successful local backup, each `[[offsite]]` destination that takes
//! its database receives the file (streamed, retried), checked against the catalog's size and
//! SHA-256 and recorded per destination. Retention prunes only after every copy arrived, and
//! prunes the copies with the backup; only keys the catalog recorded are ever deleted. When the
//! local file is gone, a checked copy serves restores and verifications.

use std::io::Read;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};

use dbkeep_config::config::Offsite;
use dbkeep_model::catalog::BackupRecord;
use dbkeep_model::copies::{Copies, Copy, CopyState};
use dbkeep_model::error::Result;
use dbkeep_model::runlog::RunLog;
use dbkeep_model::stream::NoProgress;
use dbkeep_store::store::{ObjectStorage, Sending, Store, store_key};

/// Tries of one upload before it counts as failed.
const TRIES: u32 = 3;
/// The pause after the first failed try; it doubles after each.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// A destination's store, or why it could not be opened.
pub type Opened = std::result::Result<Arc<dyn Store>, String>;

/// The configured destinations, each store opened on first use and kept once it opened (one
/// that could not be opened is tried again the next time: its disk may be mounted by then).
pub struct Destinations {
    entries: Vec<Offsite>,
    stores: Mutex<Vec<Option<Arc<dyn Store>>>>,
}

impl Destinations {
    /// The destinations of a configuration.
    pub fn new(entries: Vec<Offsite>) -> Destinations {
        let stores = Mutex::new(entries.iter().map(|_| None).collect());
        Destinations { entries, stores }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The store of entry `index`: kept, or opened now.
    fn opened(&self, index: usize) -> Opened {
        let mut stores = self.stores.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(Some(store)) = stores.get(index) {
            return Ok(Arc::clone(store));
        }
        let o = &self.entries[index];
        let store: Arc<dyn Store> =
            Arc::new(ObjectStorage::new(&o.name, &o.url, &o.options).map_err(|e| e.to_string())?);
        if let Some(slot) = stores.get_mut(index) {
            *slot = Some(Arc::clone(&store));
        }
        Ok(store)
    }

    /// The destinations that take `database`'s backups, without opening their stores (for
    /// what only needs their names: verdicts, listings).
    pub fn taking<'a>(&'a self, database: &'a str) -> impl Iterator<Item = &'a Offsite> + 'a {
        self.entries.iter().filter(move |o| o.takes(database))
    }

    /// The destinations that take `database`'s backups, with their store (or why it could not
    /// be opened).
    pub fn for_database(&self, database: &str) -> Vec<(&Offsite, Opened)> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, o)| o.takes(database))
            .map(|(i, o)| (o, self.opened(i)))
            .collect()
    }

    /// The store named `name`.
    pub fn store(&self, name: &str) -> Option<Arc<dyn Store>> {
        let index = self.entries.iter().position(|o| o.name == name)?;
        self.opened(index).ok()
    }
}

/// The key of `record`'s copy: `<database>/<file_name>`.
pub fn key_of(record: &BackupRecord) -> Option<String> {
    record
        .file_name
        .as_ref()
        .map(|f| store_key(&record.database, f))
}

/// Deletes the copy at `key` and, when `record` stored the server's roles (`globals`, the
/// catalog's name of that file), their copy beside it.
pub(crate) fn delete_copy(
    store: &dyn Store,
    record: &BackupRecord,
    key: &str,
    globals: Option<&str>,
) -> Result<()> {
    store.delete(key)?;
    match globals {
        Some(name) => store.delete(&store_key(&record.database, name)),
        None => Ok(()),
    }
}

/// Copies `record` (a successful backup whose file is `path`, with the server's roles beside
/// it in the file named `globals` when it stored them) to every destination that takes its
/// database and records each copy; returns the destinations it did not reach, with why.
pub fn copy_backup(
    destinations: &Destinations,
    copies: &dyn Copies,
    record: &BackupRecord,
    path: &std::path::Path,
    globals: Option<&str>,
    log: &RunLog,
    sending: Sending<'_>,
) -> Vec<(String, String)> {
    let Some(key) = key_of(record) else {
        return Vec::new();
    };
    let mut failed = Vec::new();
    for (offsite, store) in destinations.for_database(&record.database) {
        let sent = store.and_then(|s| upload(s.as_ref(), &key, path, globals, record, sending));
        let copy = match sent {
            Ok(stored) => {
                log.step(format_args!(
                    "copied to off-site `{}` ({} bytes, SHA-256 checked)",
                    offsite.name, stored.size_bytes
                ));
                tracing::info!(database = %record.database, id = record.id, offsite = %offsite.name, "copied off-site");
                Copy {
                    backup_id: record.id,
                    store: offsite.name.clone(),
                    key: key.clone(),
                    size_bytes: Some(stored.size_bytes),
                    sha256: Some(stored.sha256),
                    state: CopyState::Uploaded,
                    error: None,
                    uploaded_at: Some(Utc::now()),
                    pruned_at: None,
                }
            }
            Err(e) => {
                failed.push((offsite.name.clone(), e.clone()));
                log.step(format_args!("off-site `{}` failed: {e}", offsite.name));
                tracing::warn!(database = %record.database, id = record.id, offsite = %offsite.name, error = %e, "off-site copy failed");
                Copy {
                    backup_id: record.id,
                    store: offsite.name.clone(),
                    key: key.clone(),
                    size_bytes: None,
                    sha256: None,
                    state: CopyState::Failed,
                    error: Some(e),
                    uploaded_at: None,
                    pruned_at: None,
                }
            }
        };
        if let Err(e) = copies.record_copy(&copy) {
            failed.push((
                offsite.name.clone(),
                format!("could not record the copy: {e}"),
            ));
            tracing::warn!(error = %e, "could not record an off-site copy");
        }
    }
    failed
}

/// Uploads the backup at `path` (and the roles file named `globals` beside it, if any) with
/// retries, and checks what arrived against the catalog's record. A copy counts only with its
/// roles: without them a restore `--with-globals` from it could not work. The upload is a
/// phase of `progress`.
pub(crate) fn upload(
    store: &dyn Store,
    key: &str,
    path: &std::path::Path,
    globals: Option<&str>,
    record: &BackupRecord,
    sending: Sending<'_>,
) -> std::result::Result<dbkeep_store::store::Stored, String> {
    let what = format!("#{} copying to off-site `{}`", record.id, store.name());
    sending.progress.phase(&what, record.size_bytes);
    let stored = put_with_retries(store, key, path, sending)?;
    if Some(&stored.sha256) != record.sha256.as_ref()
        || Some(stored.size_bytes) != record.size_bytes
    {
        return Err(format!(
            "the copy ({} bytes, SHA-256 {}) does not match the backup's record: the local file changed",
            stored.size_bytes, stored.sha256
        ));
    }
    if let Some(name) = globals {
        put_with_retries(
            store,
            &store_key(&record.database, name),
            &path.with_file_name(name),
            Sending {
                progress: &NoProgress,
                ..sending
            },
        )
        .map_err(|e| format!("its stored roles ({name}): {e}"))?;
    }
    Ok(stored)
}

/// Uploads the file at `path` as `key`, trying again after a pause when it fails.
fn put_with_retries(
    store: &dyn Store,
    key: &str,
    path: &std::path::Path,
    sending: Sending<'_>,
) -> std::result::Result<dbkeep_store::store::Stored, String> {
    let Sending { progress, cancel } = sending;
    let mut backoff = FIRST_BACKOFF;
    let mut last = String::new();
    for attempt in 1..=TRIES {
        if let Some(reason) = cancel.reason() {
            return Err(reason);
        }
        if attempt > 1 {
            progress.phase(&format!("again ({attempt} of {TRIES}) {key}"), None);
        }
        match store.put_file(key, path, sending) {
            Ok(stored) => return Ok(stored),
            Err(e) => {
                last = e.to_string();
                if cancel.reason().is_some() {
                    return Err(last); // Stopped: not tried again.
                }
                if attempt < TRIES {
                    std::thread::sleep(backoff);
                    backoff *= 2;
                }
            }
        }
    }
    Err(format!("{last} (after {TRIES} tries)"))
}

/// Deletes `record`'s copies that arrived and were not pruned yet, with the server's roles
/// stored beside them (`globals`, the catalog's name of that file), recording each as pruned.
///
/// # Errors
/// The first copy that could not be deleted (the others are still tried).
pub fn prune_copies(
    destinations: &Destinations,
    copies: &dyn Copies,
    record: &BackupRecord,
    globals: Option<&str>,
    now: DateTime<Utc>,
) -> std::result::Result<(), String> {
    let mut first = None;
    for mut copy in copies.copies(record.id).map_err(|e| e.to_string())? {
        if copy.state != CopyState::Uploaded || copy.pruned_at.is_some() {
            continue;
        }
        let Some(store) = destinations.store(&copy.store) else {
            first.get_or_insert(format!(
                "off-site `{}` is not configured any more; its copy {} is left alone",
                copy.store, copy.key
            ));
            continue;
        };
        match delete_copy(store.as_ref(), record, &copy.key, globals) {
            Ok(()) => {
                copy.pruned_at = Some(now);
                if let Err(e) = copies.record_copy(&copy) {
                    first.get_or_insert(e.to_string());
                }
            }
            Err(e) => {
                first.get_or_insert(e.to_string());
            }
        }
    }
    first.map_or(Ok(()), Err)
}

/// `record`'s copy at destination `name`, if it arrived there with the backup's SHA-256.
///
/// # Errors
/// When it has no such copy, or it cannot be read.
pub fn open_copy_at(
    destinations: &Destinations,
    copies: &dyn Copies,
    record: &BackupRecord,
    name: &str,
) -> std::result::Result<Box<dyn Read + Send>, String> {
    let copy = copies
        .copies(record.id)
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|c| c.store == name)
        .filter(|c| {
            c.state == CopyState::Uploaded && c.pruned_at.is_none() && c.sha256 == record.sha256
        })
        .ok_or_else(|| format!("backup #{} has no checked copy at `{name}`", record.id))?;
    let store = destinations
        .store(name)
        .ok_or_else(|| format!("off-site `{name}` is not configured, or cannot be opened"))?;
    store.open(&copy.key).map_err(|e| e.to_string())
}

/// The destinations holding a checked copy of `record`, by name.
///
/// # Errors
/// When the catalog cannot be read.
pub fn holders(copies: &dyn Copies, record: &BackupRecord) -> Result<Vec<String>> {
    Ok(copies
        .copies(record.id)?
        .into_iter()
        .filter(|c| {
            c.state == CopyState::Uploaded && c.pruned_at.is_none() && c.sha256 == record.sha256
        })
        .map(|c| c.store)
        .collect())
}

/// A checked copy of `record`, for when its local file is gone.
///
/// # Errors
/// When it has no copy that arrived, or none can be read.
pub fn open_copy(
    destinations: &Destinations,
    copies: &dyn Copies,
    record: &BackupRecord,
) -> std::result::Result<Box<dyn Read + Send>, String> {
    let mut why = format!("backup #{} has no off-site copy", record.id);
    for copy in copies.copies(record.id).map_err(|e| e.to_string())? {
        if copy.state != CopyState::Uploaded
            || copy.pruned_at.is_some()
            || copy.sha256 != record.sha256
        {
            continue;
        }
        match destinations.store(&copy.store).map(|s| s.open(&copy.key)) {
            Some(Ok(reader)) => return Ok(reader),
            Some(Err(e)) => why = e.to_string(),
            None => why = format!("off-site `{}` is not configured any more", copy.store),
        }
    }
    Err(why)
}
