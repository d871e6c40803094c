//! One backup from start to record, pruning afterwards, and the recovery of runs that died.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use crate::accounts::Accounts;
use crate::cancel::Cancel;
use crate::catalog::{
    BackupId, BackupRecord, Catalog, ListFilter, NewBackup, SqliteCatalog, Status, Stored, Trigger,
};
use crate::clock::{Clock, SystemClock};
use crate::config::{Compression, Config, DatabaseConfig};
use crate::engine::{self, Engine, TableRows};
use crate::lock::DatabaseLock;
use crate::pipeline::{self, Pipeline, Progress, Written};
use crate::retention::{self, Policy};
use crate::runlog::RunLog;
use crate::watchdog::{self, Limits};
use crate::{Error, Result, storage};

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

/// A backup that retention deleted (or would delete, on a dry run).
#[derive(Debug, Clone)]
pub struct Pruned {
    /// Its catalog row, as it was before pruning.
    pub record: BackupRecord,
    /// Why the policy let it go.
    pub reason: String,
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
    _lock: DatabaseLock,
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
    config: Config,
    catalog: Arc<dyn Catalog>,
    accounts: Option<Arc<dyn Accounts>>,
    clock: Arc<dyn Clock>,
}

impl Runner {
    /// Opens the configured SQLite catalog and marks runs that died as interrupted.
    ///
    /// # Errors
    /// When the catalog cannot be opened or written.
    pub fn open(config: Config) -> Result<Self> {
        let catalog = Arc::new(SqliteCatalog::open(&config.catalog)?);
        let mut runner = Self::with_parts(
            config,
            Arc::clone(&catalog) as Arc<dyn Catalog>,
            Arc::new(SystemClock),
        )?;
        runner.accounts = Some(catalog);
        Ok(runner)
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
        let runner = Runner {
            config,
            catalog,
            accounts: None,
            clock,
        };
        runner.recover_interrupted()?;
        Ok(runner)
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The catalog.
    pub fn catalog(&self) -> &dyn Catalog {
        self.catalog.as_ref()
    }

    /// The clock the runner reads time from.
    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// The users, sessions and API tokens kept beside the catalog, when it keeps them.
    pub fn accounts(&self) -> Option<&dyn Accounts> {
        self.accounts.as_deref()
    }

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
            let Some(_lock) = DatabaseLock::try_acquire(&self.config.catalog, &row.database)?
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

    /// Backs up the database named `name` and, when it succeeds and `opts.cleanup` is set,
    /// prunes its old backups: [`Runner::begin`] then [`Runner::complete`].
    ///
    /// A failed backup is not an `Err`: it is a `failed` row in the returned outcome.
    ///
    /// # Errors
    /// An unknown database, another run of the same database in progress, or a catalog failure.
    pub fn backup(
        &self,
        name: &str,
        opts: &BackupOptions,
        progress: &dyn Progress,
    ) -> Result<BackupOutcome> {
        let started = self.begin(name, opts)?;
        self.complete(started, progress)
    }

    /// Takes the database's lock and records the attempt as `in_progress`; the returned
    /// [`Started`] (whose `id` callers may hand out at once) is then run by [`Runner::complete`].
    ///
    /// # Errors
    /// An unknown database, another run of the same database in progress, or a catalog failure.
    pub fn begin(&self, name: &str, opts: &BackupOptions) -> Result<Started> {
        let db = self.config.database(name)?;
        let lock = DatabaseLock::try_acquire(&self.config.catalog, name)?
            .ok_or_else(|| Error::AlreadyRunning(name.to_string()))?;
        let engine = engine::for_database(&self.config, db);
        let started_at = self.clock.now();
        let dir = self.config.database_dir(name);
        let (file_name, path) =
            self.choose_name(db, db.compression, engine.as_ref(), &dir, started_at)?;
        let id = self.catalog.begin(&NewBackup {
            database: name,
            kind: engine.kind(),
            trigger: opts.trigger,
            file_name: &file_name,
            path: &path,
            compression: db.compression,
            started_at,
        })?;
        info!(database = name, id, file = %file_name, target = %db.target.display(), "backup started");
        Ok(Started {
            id,
            database: name.to_string(),
            compression: db.compression,
            engine,
            dir,
            path,
            opts: opts.clone(),
            _lock: lock,
        })
    }

    /// Runs a begun backup to its end, records it, and prunes when it succeeded.
    ///
    /// # Errors
    /// A catalog failure.
    pub fn complete(&self, started: Started, progress: &dyn Progress) -> Result<BackupOutcome> {
        let Started {
            id,
            database,
            compression,
            engine,
            dir,
            path,
            opts,
            _lock,
        } = started;
        // The run itself: a backup waiting for a free slot is not slow.
        let clock = Instant::now();
        let name = database.as_str();
        let settings = &self.config.service;
        let limits = Limits {
            timeout: settings.backup_timeout,
            stall: settings.stall_timeout,
            stall_before_first_byte: engine.file_copy().is_none(),
        };
        let log = RunLog::new();
        log.step(format_args!(
            "started: {} backup of {}",
            engine.kind(),
            self.config
                .database(name)
                .map(|d| d.target.display())
                .unwrap_or_default()
        ));
        let globals = self.config.database(name).is_ok_and(|d| d.globals);
        let globals_part = temp_path(&path, "globals");
        let result = watchdog::watch(limits, &opts.cancel, progress, |progress| {
            catch_panic(|| {
                // The server's roles first: when they cannot be stored, nothing is.
                if globals {
                    write_globals(engine.as_ref(), &dir, &globals_part, &opts.cancel, &log)?;
                }
                write_backup(
                    engine.as_ref(),
                    &dir,
                    &path,
                    compression,
                    progress,
                    &opts.cancel,
                    &log,
                )
            })
        })
        .and_then(|written| match opts.cancel.reason() {
            // Cancelled after the last byte: the file is complete, but the caller gave up on it.
            Some(reason) => {
                let _ = storage::remove_if_exists(&path);
                Err(Error::Cancelled(reason))
            }
            None => Ok(written),
        })
        .and_then(|written| {
            if !globals {
                return Ok((written, None));
            }
            let name = globals_name(&path);
            if let Err(e) = storage::publish(&globals_part, &path.with_file_name(&name)) {
                // Not one without the other: the dump goes too.
                let _ = storage::remove_if_exists(&path);
                return Err(Error::io("cannot rename into place", &globals_part)(e));
            }
            Ok((written, Some(name)))
        });
        let _ = storage::remove_if_exists(&globals_part);
        let duration_ms = clock.elapsed().as_millis() as u64;
        let finished_at = self.clock.now();
        match result {
            Ok(((written, tables), globals_file)) => {
                // The counts go first: a backup recorded successful always has its rows.
                let size = written.size_bytes;
                let recorded = self
                    .catalog
                    .set_table_rows(id, &tables)
                    .and_then(|()| match &globals_file {
                        Some(file) => self.catalog.set_globals_file(id, file),
                        None => Ok(()),
                    })
                    .and_then(|()| {
                        self.catalog.succeed(
                            id,
                            &Stored {
                                size_bytes: written.size_bytes,
                                sha256: written.sha256,
                                finished_at,
                                duration_ms,
                            },
                        )
                    });
                if let Err(e) = recorded {
                    // A file the catalog cannot vouch for does not stay.
                    let _ = storage::remove_if_exists(&path);
                    if let Some(file) = &globals_file {
                        let _ = storage::remove_if_exists(&path.with_file_name(file));
                    }
                    let message = format!("the backup could not be recorded: {e}");
                    let _ = self.catalog.fail(id, &message, finished_at, duration_ms);
                    return Err(e);
                }
                info!(database = name, id, size, duration_ms, "backup succeeded");
            }
            Err(e) => {
                remove_temp_files(&path);
                let message = opts.cancel.reason().unwrap_or_else(|| e.to_string());
                log.step(format_args!("failed: {message}"));
                self.catalog.fail(id, &message, finished_at, duration_ms)?;
                warn!(database = name, id, error = %message, "backup failed");
            }
        }
        drop(_lock);
        let record = self.catalog.get(id)?.ok_or_else(|| Error::Catalog {
            path: self.config.catalog.clone(),
            message: format!("backup #{id} vanished from the catalog"),
        })?;
        let (pruned, prune_error) = if record.status == Status::Success && opts.cleanup {
            match catch_panic(|| self.prune(Some(name), opts.retention_days, false)) {
                Ok(pruned) => {
                    let failed = pruned.iter().filter(|p| p.error.is_some()).count();
                    log.step(format_args!(
                        "pruned {} older backup(s){}",
                        pruned.len() - failed,
                        if failed > 0 {
                            format!("; {failed} could not be deleted")
                        } else {
                            String::new()
                        }
                    ));
                    (pruned, None)
                }
                Err(e) => {
                    warn!(database = name, error = %e, "backup succeeded, but pruning afterwards failed");
                    log.step(format_args!("pruning afterwards failed: {e}"));
                    (Vec::new(), Some(e.to_string()))
                }
            }
        } else {
            (Vec::new(), None)
        };
        if let Err(e) = self.catalog.set_log(id, &log.text()) {
            warn!(database = name, id, error = %e, "could not keep the run's log");
        }
        Ok(BackupOutcome {
            record,
            pruned,
            prune_error,
        })
    }

    /// Picks a final name no file, temporary file or catalog row uses yet.
    pub(crate) fn choose_name(
        &self,
        db: &DatabaseConfig,
        compression: Compression,
        engine: &dyn Engine,
        dir: &Path,
        at: DateTime<Utc>,
    ) -> Result<(String, PathBuf)> {
        let (base, ext) = engine.file_name(&at.format("%Y%m%d_%H%M%S").to_string());
        for n in 1u32.. {
            let unique = if n == 1 {
                String::new()
            } else {
                format!("_{n}")
            };
            let name = format!("{base}{unique}{ext}{}", compression.suffix());
            let path = dir.join(&name);
            let taken = path.exists()
                || temp_path(&path, "part").exists()
                || self.catalog.name_in_use(&db.name, &name)?;
            if !taken {
                return Ok((name, path));
            }
        }
        unreachable!("u32 names run out only after four billion backups in one second")
    }

    /// Deletes (or, with `dry_run`, lists) the backups retention lets go, for one database or all.
    ///
    /// # Errors
    /// An unknown database or a catalog failure. A file that cannot be deleted is reported in
    /// its [`Pruned::error`] and stays recorded as present.
    pub fn prune(
        &self,
        database: Option<&str>,
        retention_days: Option<u32>,
        dry_run: bool,
    ) -> Result<Vec<Pruned>> {
        if let Some(name) = database {
            self.config.database(name)?;
        }
        let policy = Policy {
            retention_days: retention_days.unwrap_or(self.config.retention_days),
            keep_last: self.config.keep_last,
        };
        let mut records = self.catalog.list(&ListFilter {
            database: database.map(str::to_string),
            status: Some(Status::Success),
            ..ListFilter::default()
        })?;
        // A catalog shared with other configurations holds their backups too: never ours to prune.
        records.retain(|r| self.owns(r));
        let now = self.clock.now();
        let mut out = Vec::new();
        for p in retention::plan(&records, policy, now) {
            let Some(record) = records.iter().find(|r| r.id == p.id).cloned() else {
                continue;
            };
            let error = if dry_run {
                None
            } else {
                self.delete(&record, now).err()
            };
            if let Some(e) = &error {
                warn!(database = %record.database, id = record.id, error = %e, "could not prune");
            } else if !dry_run {
                info!(database = %record.database, id = record.id, reason = %p.reason, "pruned");
            }
            out.push(Pruned {
                record,
                reason: p.reason,
                error,
            });
        }
        Ok(out)
    }

    fn delete(&self, record: &BackupRecord, now: DateTime<Utc>) -> std::result::Result<(), String> {
        let removed = self.owned_name(record).and_then(|name| {
            storage::remove_backup(&self.config.backup_dir, &record.database, name)
        });
        // The server's roles stored beside it go with it (also when the dump was gone already).
        let gone = removed
            .as_ref()
            .err()
            .is_none_or(|e| e.kind() == std::io::ErrorKind::NotFound);
        if gone
            && let Ok(Some(globals)) = self.catalog.globals_file(record.id)
            && let Err(e) =
                storage::remove_backup(&self.config.backup_dir, &record.database, &globals)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            warn!(database = %record.database, id = record.id, error = %e, "could not delete the stored roles");
        }
        match removed {
            Ok(()) => {}
            // Already gone: the row only needs to say so.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{e}; not deleted")),
        }
        self.catalog
            .mark_pruned(record.id, now)
            .map_err(|e| e.to_string())
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
        storage::backup_file(&self.config.backup_dir, &record.database, name)
    }

    /// Opens a backup row's file for reading, as [`Runner::backup_file`] finds it, without
    /// following any link on the way ([`storage::open_backup`]).
    ///
    /// # Errors
    /// As [`Runner::backup_file`].
    pub fn open_backup(&self, record: &BackupRecord) -> std::io::Result<std::fs::File> {
        let name = self.owned_name(record)?;
        storage::open_backup(&self.config.backup_dir, &record.database, name)
    }

    /// The file name of one of this configuration's backup rows.
    fn owned_name<'r>(&self, record: &'r BackupRecord) -> std::io::Result<&'r str> {
        if !self.owns(record) {
            return Err(std::io::Error::other(format!(
                "backup #{} is not one of this configuration's backups (its database or folder is not in {}); it is left alone",
                record.id,
                self.config.path.display()
            )));
        }
        record.file_name.as_deref().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "this backup has no file")
        })
    }

    /// Whether a catalog row is one of this configuration's backups: its database is
    /// configured here, and the path it recorded (if any) is where this configuration puts that
    /// file. A catalog shared with other configurations holds their rows too.
    pub fn owns(&self, record: &BackupRecord) -> bool {
        if self.config.database(&record.database).is_err() {
            return false;
        }
        match (&record.path, &record.file_name) {
            (Some(path), Some(name)) => {
                same_place(path, &self.config.database_dir(&record.database).join(name))
            }
            (Some(_), None) => false,
            (None, _) => true,
        }
    }

    /// Stored backups in the catalog that are not this configuration's ([`Runner::owns`]),
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
            .filter(|r| r.pruned_at.is_none() && !self.owns(r))
        {
            match out.iter_mut().find(|l| l.database == r.database) {
                Some(l) => l.backups += 1,
                None => out.push(LeftAlone {
                    database: r.database.clone(),
                    backups: 1,
                    configured: self.config.database(&r.database).is_ok(),
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

/// Writes one backup to `.NAME.part` beside `path`, syncs it and renames it to `path`.
fn write_backup(
    engine: &dyn Engine,
    dir: &Path,
    path: &Path,
    compression: Compression,
    progress: &dyn Progress,
    cancel: &Cancel,
    log: &RunLog,
) -> Result<(Written, TableRows)> {
    // Cancelled while waiting for its turn (shutdown): do not start at all.
    if let Some(reason) = cancel.reason() {
        return Err(Error::Cancelled(reason));
    }
    storage::create_private_dir(dir).map_err(Error::io("cannot create backup folder", dir))?;
    let part = temp_path(path, "part");
    let file = storage::create_private_file(&part).map_err(Error::io("cannot create", &part))?;
    let direct = match compression {
        Compression::None => engine.file_copy(),
        _ => None,
    };
    let (written, tables) = match direct {
        Some(copier) => {
            drop(file);
            copier.copy_to_file(&part)?;
            // Hash, check and sync the copy at once: each reads or flushes the same cached pages.
            let (written, checked, synced) = std::thread::scope(|s| {
                let hash = s.spawn(|| pipeline::hash_file(&part));
                let check = s.spawn(|| copier.check_copy(&part));
                let synced = std::fs::File::open(&part).and_then(|f| f.sync_all());
                (hash.join(), check.join(), synced)
            });
            let panicked = || Error::Engine("a thread checking the copy panicked".into());
            let tables = checked.map_err(|_| panicked())??;
            synced.map_err(Error::io("cannot sync", &part))?;
            let written = written
                .map_err(|_| panicked())?
                .map_err(Error::io("cannot read", &part))?;
            progress.advance(written.size_bytes);
            log.step(format_args!(
                "copied {}, checked (quick_check ok), hashed and synced",
                indicatif::HumanBytes(written.size_bytes)
            ));
            (written, tables)
        }
        None => {
            let mut out = Pipeline::new(file, compression, progress, cancel)
                .map_err(Error::io("cannot compress into", &part))?;
            let scratch = temp_path(path, "snapshot");
            let dumped = engine.dump(&mut out, &scratch, cancel, log);
            remove_sqlite_files(&scratch);
            let tables = dumped?;
            let written = out.finish().map_err(Error::io("cannot write", &part))?;
            if written.raw_bytes == 0 {
                return Err(Error::Engine(
                    "the database produced no data; nothing was stored".into(),
                ));
            }
            log.step(format_args!(
                "dump finished: {} read, {} stored ({}), hashed and synced",
                indicatif::HumanBytes(written.raw_bytes),
                indicatif::HumanBytes(written.size_bytes),
                compression.as_str()
            ));
            (written, tables)
        }
    };
    let rows: u64 = tables.iter().map(|(_, n)| n).sum();
    log.step(format_args!(
        "counted {rows} row(s) in {} table(s)",
        tables.len()
    ));
    storage::publish(&part, path).map_err(Error::io("cannot rename into place", &part))?;
    log.step(format_args!(
        "renamed into place as {}",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    Ok((written, tables))
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
    if lexical(a) == lexical(b) {
        return true;
    }
    let folder = |p: &Path| p.parent().and_then(|d| std::fs::canonicalize(d).ok());
    a.file_name() == b.file_name() && folder(a).is_some() && folder(a) == folder(b)
}

/// The file beside backup `path` that holds its server's roles: `NAME.globals.sql`.
pub(crate) fn globals_name(path: &Path) -> String {
    format!(
        "{}.globals.sql",
        path.file_name().unwrap_or_default().to_string_lossy()
    )
}

/// Stores the server's roles in the private, synced temporary file `part`.
fn write_globals(
    engine: &dyn Engine,
    dir: &Path,
    part: &Path,
    cancel: &Cancel,
    log: &RunLog,
) -> Result<()> {
    storage::create_private_dir(dir).map_err(Error::io("cannot create backup folder", dir))?;
    let mut file = storage::create_private_file(part).map_err(Error::io("cannot create", part))?;
    engine.dump_globals(&mut file, cancel, log).map_err(|e| {
        Error::Engine(format!(
            "storing the server's roles (globals = true) failed: {e}"
        ))
    })?;
    file.sync_all().map_err(Error::io("cannot sync", part))
}

/// Runs `f`, turning a panic into an error, so that a bug fails one backup (recorded, with its
/// lock released) rather than the process or the scheduler.
fn catch_panic<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown cause".into());
        Err(Error::Engine(format!(
            "internal error (a bug in dbkeep; please report it): {what}"
        )))
    })
}

/// `dir/.NAME.suffix`: a hidden temporary beside the final file, on the same file system.
pub(crate) fn temp_path(path: &Path, suffix: &str) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(".{name}.{suffix}"))
}

/// Removes a SQLite file together with the journal, WAL and shared-memory files SQLite may leave.
fn remove_sqlite_files(path: &Path) {
    for side in ["", "-journal", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_os_string();
        p.push(side);
        let _ = storage::remove_if_exists(Path::new(&p));
    }
}

/// Removes every temporary file a run for `path` may have left.
fn remove_temp_files(path: &Path) {
    remove_sqlite_files(&temp_path(path, "part"));
    remove_sqlite_files(&temp_path(path, "snapshot"));
    let _ = storage::remove_if_exists(&temp_path(path, "globals"));
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
}
