//! The runner: one configuration's backups against one catalog. Its parts: `backup` (one
//! backup from start to record), `prune` (retention applied), `recover` (runs whose process
//! died), `space` (what the backups use where); and here, which rows and files are this
//! configuration's own.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use crate::lease::LeaseGuard;
use crate::retention;
use dbkeep_catalog::sqlite::SqliteCatalog;
use dbkeep_config::config::{Config, DatabaseConfig};
use dbkeep_engine::engine::{self, Engine};
use dbkeep_model::accounts::Accounts;
use dbkeep_model::cancel::Cancel;
use dbkeep_model::catalog::{
    BackupId, BackupRecord, Catalog, ListFilter, NewBackup, Status, Stored, Trigger,
};
use dbkeep_model::clock::{Clock, SystemClock};
use dbkeep_model::error::{Error, Result};
use dbkeep_model::runlog::RunLog;
use dbkeep_model::storage;
use dbkeep_model::storage::temp_path;
use dbkeep_model::stream::Progress;
use dbkeep_model::stream::TableRows;
use dbkeep_model::vocab::{Compression, EventKind};
use dbkeep_pipeline::pipeline::{self, Pipeline, Stages, Written};
use dbkeep_pipeline::watchdog::{self, Limits};
use dbkeep_store::store::Store as _;
use dbkeep_store::store::store_key;

mod backup;
mod globals;
mod prune;
mod recover;
mod slots;
mod space;
mod sync;

pub use prune::{Decision, PruneOptions};
pub use slots::{SLOT_POLL, ServerSlot, Slot};
pub use sync::Synced;
mod view;
pub mod wal;

pub use view::View;

use recover::{remove_sqlite_files, remove_temp_files};

/// How a backup is started.
#[derive(Debug, Clone)]
pub struct BackupOptions {
    /// What started it.
    pub trigger: Trigger,
    /// Prune old backups of the database afterwards (when it succeeded).
    pub cleanup: bool,
    /// Use this retention instead of the configured one.
    pub retention_days: Option<u32>,
    /// Raised from elsewhere to stop the backup; its reason becomes the recorded error.
    pub cancel: Cancel,
}

impl Default for BackupOptions {
    fn default() -> Self {
        BackupOptions {
            trigger: Trigger::Manual,
            cleanup: true,
            retention_days: None,
            cancel: Cancel::new(),
        }
    }
}

/// What one backup did: its catalog row (success or failed) and what retention pruned after it.
#[derive(Debug, Clone)]
pub struct BackupOutcome {
    /// The finished catalog row.
    pub record: BackupRecord,
    /// Backups pruned afterwards.
    pub pruned: Vec<Pruned>,
    /// Why pruning afterwards could not run, if it could not (the backup itself stands).
    pub prune_error: Option<String>,
}

/// A backup's copy that retention deleted at one destination (or would delete, on a dry run,
/// or holds back).
#[derive(Debug, Clone)]
pub struct Pruned {
    /// Its catalog row, as it was before pruning.
    pub record: BackupRecord,
    /// Where the copy was: `local`, or an off-site destination's name.
    pub destination: String,
    /// Why the policy let it go.
    pub reason: String,
    /// Why it was not deleted although the policy lets it go (a guard rail, or the newest
    /// backup not yet off-site); not a failure.
    pub held: Option<String>,
    /// Why it could not be deleted, if it could not.
    pub error: Option<String>,
}

/// A backup that has its lock and its `in_progress` row, ready for [`Runner::complete`].
pub struct Started {
    /// The catalog row of this attempt.
    pub id: BackupId,
    database: String,
    compression: Compression,
    engine: Box<dyn Engine>,
    dir: PathBuf,
    path: PathBuf,
    opts: BackupOptions,
    hold: LeaseGuard,
    /// Its server's slot, once taken (else [`Runner::complete`] waits for one).
    slot: Option<ServerSlot>,
}

impl Started {
    /// Gives the backup the slot of its server it runs in (taken by the caller's own wait).
    pub fn hold_slot(&mut self, slot: ServerSlot) {
        self.slot = Some(slot);
    }

    /// The flag that stops this backup.
    pub fn cancel(&self) -> &Cancel {
        &self.opts.cancel
    }
}

impl std::fmt::Debug for Started {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Started")
            .field("id", &self.id)
            .field("database", &self.database)
            .finish()
    }
}

/// Runs backups and pruning for one configuration against one catalog.
pub struct Runner {
    /// The configuration as loaded: its `[[databases]]` entries and servers.
    base: Config,
    /// The configuration in force: `base` with the databases its servers' discovery recorded
    /// in the catalog; replaced when discovery changes them.
    config: std::sync::RwLock<Arc<Config>>,
    catalog: Arc<dyn Catalog>,
    clock: Arc<dyn Clock>,
    notifier: dbkeep_notify::notify::Notifier,
    offsite: crate::offsite::Destinations,
    local: dbkeep_store::store::LocalStore,
    instance: dbkeep_model::instances::Instance,
    /// What the space report reads from the catalog, kept until the catalog changes.
    holdings: crate::space::HoldingsCache,
    /// The per-server slots this process holds.
    slots: slots::Taken,
}

/// The catalog `config` names, opened (and migrated) without a runner: for the commands a
/// database server runs often (`wal push`, `wal fetch`).
///
/// # Errors
/// When it cannot be opened or migrated.
pub fn open_catalog(config: &Config) -> Result<Arc<dyn Catalog>> {
    Ok(match &config.catalog {
        dbkeep_config::config::CatalogLocation::Sqlite(path) => {
            Arc::new(SqliteCatalog::open(path)?)
        }
        dbkeep_config::config::CatalogLocation::Postgres(server) => {
            Arc::new(dbkeep_catalog::postgres::PostgresCatalog::open(server)?)
        }
    })
}

impl Runner {
    /// Opens the configured catalog (a SQLite file, or a PostgreSQL database) and marks runs
    /// that died as interrupted.
    ///
    /// # Errors
    /// When the catalog cannot be opened or written.
    pub fn open(config: Config) -> Result<Self> {
        let catalog = open_catalog(&config)?;
        Self::with_parts(config, catalog, Arc::new(SystemClock))
    }

    /// A runner with the given catalog and clock; marks runs that died as interrupted.
    ///
    /// # Errors
    /// When the catalog cannot be read or written.
    pub fn with_parts(
        config: Config,
        catalog: Arc<dyn Catalog>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        let notifier = dbkeep_notify::notify::Notifier::new(&config, Arc::clone(&catalog) as _);
        let offsite = crate::offsite::Destinations::new(config.offsite.clone());
        let local = dbkeep_store::store::LocalStore::new(&config.backup_dir);
        let instance =
            dbkeep_model::instances::Instance::this(config.service.instance_name.as_deref());
        let runner = Runner {
            config: std::sync::RwLock::new(Arc::new(config.clone())),
            base: config,
            catalog,
            clock,
            notifier,
            offsite,
            local,
            instance,
            holdings: crate::space::HoldingsCache::default(),
            slots: slots::Taken::default(),
        };
        runner.recover_interrupted()?;
        if !runner.base.servers.is_empty() {
            runner.refresh_discovered()?;
        }
        Ok(runner)
    }

    /// The configuration in force: the file's, with the databases its servers' discovery
    /// recorded. A snapshot: discovery may replace it while it is held.
    pub fn config(&self) -> Arc<Config> {
        Arc::clone(&self.config.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// The configuration as loaded, without discovered databases.
    pub fn base_config(&self) -> &Config {
        &self.base
    }

    /// Reads the databases discovery recorded in the catalog and puts them in force beside
    /// the `[[databases]]` entries. Returns whether the set (or a state in it) changed.
    ///
    /// # Errors
    /// When the catalog cannot be read.
    pub fn refresh_discovered(&self) -> Result<bool> {
        let rows = self.catalog.discovered()?;
        let next = self.base.with_discovered(&rows);
        let mut current = self.config.write().unwrap_or_else(|p| p.into_inner());
        let same = current.databases.len() == next.databases.len()
            && current
                .databases
                .iter()
                .zip(&next.databases)
                .all(|(a, b)| a.name == b.name && a.discovered == b.discovered);
        if !same {
            // A ping channel serves a set of databases: the found ones ping too.
            self.notifier.reconfigure(&next);
            *current = Arc::new(next);
        }
        Ok(!same)
    }

    /// The catalog.
    pub fn catalog(&self) -> &dyn Catalog {
        self.catalog.as_ref()
    }

    /// The clock the runner reads time from.
    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// Where events go (pings, webhooks).
    pub fn notifier(&self) -> &dbkeep_notify::notify::Notifier {
        &self.notifier
    }

    /// The users, sessions and API tokens kept beside the catalog.
    pub fn accounts(&self) -> &dyn Accounts {
        self.catalog.as_ref()
    }

    /// The file of a backup row, found in the configured folder of its database by name
    /// ([`storage::backup_file`]): never the row's stored path as such, never a link, never a
    /// database of another configuration.
    ///
    /// # Errors
    /// `NotFound` when the row has no file or the file is missing; another error, naming the
    /// reason, when the row is not one of this configuration's backups or the file is refused.
    pub fn backup_file(&self, record: &BackupRecord) -> std::io::Result<PathBuf> {
        let name = self.owned_name(record)?;
        storage::backup_file(&self.config().backup_dir, &record.database, name)
    }

    /// Opens a backup row's file for reading, as [`Runner::backup_file`] finds it, without
    /// following any link on the way ([`storage::open_backup`]).
    ///
    /// # Errors
    /// As [`Runner::backup_file`].
    pub fn open_backup(&self, record: &BackupRecord) -> std::io::Result<std::fs::File> {
        let name = self.owned_name(record)?;
        self.local.open_file(&store_key(&record.database, name))
    }

    /// This process, as the catalog's leases name it.
    pub fn instance(&self) -> &dbkeep_model::instances::Instance {
        &self.instance
    }

    /// Takes `database`'s hold: its lease in the catalog; `None` while another run of it goes
    /// on.
    ///
    /// # Errors
    /// When the catalog cannot be written.
    pub fn hold(&self, database: &str) -> Result<Option<LeaseGuard>> {
        LeaseGuard::acquire(
            Arc::clone(&self.catalog),
            &crate::lease::backup_resource(database),
            &self.instance,
            self.config().service.lease_timeout,
        )
    }

    /// The local backup folder, as a store.
    pub fn local(&self) -> &dbkeep_store::store::LocalStore {
        &self.local
    }

    /// The configured off-site destinations.
    pub fn offsite(&self) -> &crate::offsite::Destinations {
        &self.offsite
    }

    /// The off-site copies the catalog records.
    pub fn copies(&self) -> &dyn dbkeep_model::copies::Copies {
        self.catalog.as_ref()
    }

    /// A backup row's stored bytes: its local file ([`Runner::open_backup`]), or, when that is
    /// gone, a copy off-site whose SHA-256 matched the backup's when it was uploaded.
    ///
    /// # Errors
    /// As [`Runner::open_backup`] when there is no copy to fall back on either.
    pub fn open_stored(
        &self,
        record: &BackupRecord,
    ) -> std::io::Result<Box<dyn std::io::Read + Send>> {
        // Read by name from this instance's folder: a backup another instance made (another
        // machine's folder) is read from an off-site copy.
        let local = self
            .readable_name(record)
            .and_then(|name| self.local.open_file(&store_key(&record.database, name)));
        match local {
            Ok(file) => Ok(Box::new(file)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let copies = self.copies();
                match crate::offsite::open_copy(&self.offsite, copies, record) {
                    Ok(reader) => {
                        info!(database = %record.database, id = record.id, "the local file is gone; reading an off-site copy");
                        Ok(reader)
                    }
                    Err(why) => {
                        // Made on another instance: its file is on that instance's disk.
                        let elsewhere = match &record.instance {
                            Some(other) if *other != self.instance.name => format!(
                                " (backup #{} was made by instance {other}: its file may be on that instance's disk; an [[offsite]] destination lets every instance read it)",
                                record.id
                            ),
                            _ => String::new(),
                        };
                        Err(std::io::Error::new(
                            std::io::ErrorKind::NotFound,
                            format!("{e}, and {why}{elsewhere}"),
                        ))
                    }
                }
            }
            Err(e) => Err(e),
        }
    }

    /// A backup row's stored bytes from `from`: the off-site destination of that name, or, for
    /// `None`, wherever they are ([`Runner::open_stored`]).
    ///
    /// # Errors
    /// When that copy is missing or cannot be read.
    pub fn open_from(
        &self,
        record: &BackupRecord,
        from: Option<&str>,
    ) -> std::io::Result<Box<dyn std::io::Read + Send>> {
        let Some(name) = from else {
            return self.open_stored(record);
        };
        self.readable_name(record)?;
        crate::offsite::open_copy_at(&self.offsite, self.copies(), record, name)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::NotFound, e))
    }

    /// The server's roles stored with `record` (`globals = true`; `file_name` as the catalog
    /// names that file): from this instance's folder, else from a destination holding a
    /// checked copy of the backup; only from the destination `from` when it is given.
    ///
    /// # Errors
    /// When neither this folder nor any such destination has them, or they cannot be read.
    pub fn open_globals(
        &self,
        record: &BackupRecord,
        file_name: &str,
        from: Option<&str>,
    ) -> std::io::Result<Box<dyn std::io::Read + Send>> {
        let key = store_key(&record.database, file_name);
        let mut why = format!("{file_name} is not in this instance's backup folder");
        if from.is_none() {
            match self.local.open_file(&key) {
                Ok(file) => return Ok(Box::new(file)),
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                Err(_) => {}
            }
        }
        let copies = self.copies();
        let holders = crate::offsite::holders(copies, record).map_err(std::io::Error::other)?;
        for name in holders.iter().filter(|h| from.is_none_or(|f| f == *h)) {
            let Some(store) = self.offsite.store(name) else {
                continue;
            };
            match store.open(&key) {
                Ok(reader) => return Ok(reader),
                Err(e) => why = format!("off-site `{name}`: {e}"),
            }
        }
        if let Some(f) = from
            && !holders.iter().any(|h| h == f)
        {
            why = format!("backup #{} has no checked copy at `{f}`", record.id);
        }
        Err(std::io::Error::new(std::io::ErrorKind::NotFound, why))
    }

    /// The file name of a backup of one of this configuration's databases, to read: made by
    /// this configuration or by another instance of it (whose file is on its own machine).
    fn readable_name<'r>(&self, record: &'r BackupRecord) -> std::io::Result<&'r str> {
        if self.config().database(&record.database).is_err() {
            return Err(std::io::Error::other(format!(
                "backup #{} is of database `{}`, which this configuration does not have",
                record.id, record.database
            )));
        }
        record.file_name.as_deref().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "this backup has no file")
        })
    }

    /// The file name of one of this configuration's backup rows on this instance's disk.
    fn owned_name<'r>(&self, record: &'r BackupRecord) -> std::io::Result<&'r str> {
        if !self.on_this_disk(record) {
            return Err(std::io::Error::other(format!(
                "backup #{} is not one of this configuration's backups (its database or folder is not in {}); it is left alone",
                record.id,
                self.config().path.display()
            )));
        }
        record.file_name.as_deref().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "this backup has no file")
        })
    }

    /// Whether a catalog row is one of this deployment's backups: on this instance's disk
    /// ([`Runner::on_this_disk`]), or, with a catalog on a server that several instances
    /// share, made by another instance for a database configured here (its file on that
    /// instance's machine; read here from an off-site copy). A SQLite catalog shared with other
    /// configurations holds their rows too, and they are not this one's.
    pub fn owns(&self, record: &BackupRecord) -> bool {
        self.on_this_disk(record)
            || (matches!(
                self.config().catalog,
                dbkeep_config::config::CatalogLocation::Postgres(_)
            ) && self.config().database(&record.database).is_ok()
                && record
                    .instance
                    .as_ref()
                    .is_some_and(|i| *i != self.instance.name))
    }

    /// Whether a catalog row's file is this configuration's on this instance's disk: its
    /// database is configured here, and the path it recorded (if any) is where this
    /// configuration puts that file. Only such files are ever deleted here.
    pub fn on_this_disk(&self, record: &BackupRecord) -> bool {
        if self.config().database(&record.database).is_err() {
            return false;
        }
        match (&record.path, &record.file_name) {
            (Some(path), Some(name)) => same_place(
                path,
                &self.config().database_dir(&record.database).join(name),
            ),
            (Some(_), None) => false,
            (None, _) => true,
        }
    }

    /// Stored backups in the catalog that are not this configuration's on this disk ([`Runner::on_this_disk`]),
    /// counted per database: pruning and recovery leave them alone.
    ///
    /// # Errors
    /// When the catalog cannot be read.
    pub fn left_alone(&self) -> Result<Vec<LeftAlone>> {
        let stored = self.catalog.list(&ListFilter {
            status: Some(Status::Success),
            ..ListFilter::default()
        })?;
        let mut out: Vec<LeftAlone> = Vec::new();
        for r in stored
            .iter()
            .filter(|r| r.pruned_at.is_none() && !self.on_this_disk(r))
        {
            match out.iter_mut().find(|l| l.database == r.database) {
                Some(l) => l.backups += 1,
                None => out.push(LeftAlone {
                    database: r.database.clone(),
                    backups: 1,
                    configured: self.config().database(&r.database).is_ok(),
                }),
            }
        }
        out.sort_by(|a, b| a.database.cmp(&b.database));
        Ok(out)
    }
}

/// Backups of one database that this configuration leaves alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftAlone {
    /// The database name recorded in the catalog.
    pub database: String,
    /// How many stored (not pruned) backups.
    pub backups: u64,
    /// Whether this configuration has a database of that name (then the files were recorded
    /// in another folder: another configuration's, or a `backup_dir` that moved).
    pub configured: bool,
}

/// Whether two paths name the same file: equal once `.` and `..` are resolved, or in the same
/// folder as the file system resolves it (a configuration reached through a link or a
/// relative `--config` records the same folder under another spelling).
fn same_place(a: &Path, b: &Path) -> bool {
    fn lexical(p: &Path) -> PathBuf {
        let mut out = PathBuf::new();
        for part in p.components() {
            match part {
                std::path::Component::CurDir => {}
                std::path::Component::ParentDir => {
                    out.pop();
                }
                other => out.push(other),
            }
        }
        out
    }
    // Most often the very path this configuration records: no work at all.
    if a.as_os_str() == b.as_os_str() || lexical(a) == lexical(b) {
        return true;
    }
    let folder = |p: &Path| p.parent().and_then(|d| std::fs::canonicalize(d).ok());
    a.file_name() == b.file_name() && folder(a).is_some() && folder(a) == folder(b)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_same_file_under_other_spellings_is_the_same_place() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("backups/app");
        std::fs::create_dir_all(&real).unwrap();
        std::os::unix::fs::symlink(dir.path().join("backups"), dir.path().join("link")).unwrap();
        let file = real.join("x.db");
        assert!(same_place(
            &file,
            &dir.path().join("cfg/../backups/./app/x.db")
        ));
        assert!(same_place(&file, &dir.path().join("link/app/x.db")));
        assert!(!same_place(&file, &dir.path().join("backups/other/x.db")));
        assert!(!same_place(&file, &real.join("y.db")));
    }

    #[test]
    fn file_names_are_stamped_with_the_configured_zones_wall_clock() {
        let utc = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let berlin = chrono_tz::Europe::Berlin;
        // Midnight in Berlin, in winter and in summer.
        assert_eq!(
            backup::name_stamp(utc("2025-01-14T23:00:00Z"), berlin),
            "20250115_000000"
        );
        assert_eq!(
            backup::name_stamp(utc("2025-07-14T22:00:00Z"), berlin),
            "20250715_000000"
        );
        assert_eq!(
            backup::name_stamp(utc("2025-07-14T22:00:00Z"), chrono_tz::UTC),
            "20250714_220000"
        );
        // The hour the clocks go back: two instants, one stamp (choose_name adds `_2`).
        assert_eq!(
            backup::name_stamp(utc("2025-10-26T00:30:00Z"), berlin),
            backup::name_stamp(utc("2025-10-26T01:30:00Z"), berlin)
        );
    }
}
