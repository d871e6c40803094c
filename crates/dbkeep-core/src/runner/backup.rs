//! One backup from its start to its record: the lock, the file, the server's roles, the row.

use super::*;

impl Runner {
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
        let config = self.config();
        let db = config.database(name)?;
        if let Some(found) = db.discovered.as_ref().filter(|_| !db.is_scheduled()) {
            return Err(Error::Refused(format!(
                "`{name}` is {} on server `{}` ({}): it is not backed up; its backups are kept and can be restored",
                found.state,
                found.server,
                found.detail.as_deref().unwrap_or("see dbkeep discover"),
            )));
        }
        let hold = self
            .hold(name)?
            .ok_or_else(|| Error::AlreadyRunning(name.to_string()))?;
        let engine = engine::for_database(&config, db);
        let started_at = self.clock.now();
        let dir = config.database_dir(name);
        let (file_name, path) = self.choose_name(
            db,
            db.compression,
            db.encryption.is_some(),
            engine.as_ref(),
            &dir,
            started_at,
        )?;
        let id = self.catalog.begin(&NewBackup {
            database: name,
            kind: engine.kind(),
            trigger: opts.trigger,
            file_name: &file_name,
            path: &path,
            compression: db.compression,
            started_at,
            instance: &self.instance.name,
        })?;
        // The lease now names its run: another instance can tell this run alive from a dead one.
        if let Err(e) = hold.set_run(id) {
            warn!(database = name, id, error = %e, "could not record the run in its lease");
        }
        info!(database = name, id, file = %file_name, target = %db.target.display(), "backup started");
        self.notifier.notify(dbkeep_notify::notify::Event {
            status: Some(Status::InProgress),
            backup_id: Some(id),
            file_name: Some(file_name.clone()),
            started_at: Some(started_at),
            ..dbkeep_notify::notify::Event::about(EventKind::Start, name)
        });
        Ok(Started {
            id,
            database: name.to_string(),
            compression: db.compression,
            engine,
            dir,
            path,
            opts: opts.clone(),
            hold,
            slot: None,
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
            hold,
            slot,
        } = started;
        let name = database.as_str();
        // At most `max_concurrent_per_server` runs against one server, across instances; the
        // slot is held to the end of the run.
        let (_slot, waited) = match slot.map_or_else(
            || self.wait_server_slot(name, &opts.cancel),
            |s| Ok(Some(s)),
        ) {
            Ok(slot) => (slot, Ok(())),
            Err(e) => (None, Err(e)),
        };
        // One configuration for the whole run, whatever discovery puts in force meanwhile.
        let config = self.config();
        let db = config.database(name).ok();
        // The run itself: a backup waiting for a free slot is not slow.
        let clock = Instant::now();
        let settings = &config.service;
        let limits = Limits {
            timeout: settings.backup_timeout,
            stall: settings.stall_timeout,
            stall_before_first_byte: engine.file_copy().is_none(),
        };
        let log = RunLog::new();
        log.step(format_args!(
            "started: {} backup of {}",
            engine.kind(),
            db.map(|d| d.target.display()).unwrap_or_default()
        ));
        // A discovered database stores its server's roles once per run of the server.
        let globals = match self.stores_globals(name, self.clock.now()) {
            Ok(stores) => stores,
            Err(e) => {
                warn!(database = name, error = %e, "could not tell whether the server's roles are stored for this run; storing them");
                db.is_some_and(|d| d.globals)
            }
        };
        let encryption = db.and_then(|d| d.encryption.as_ref());
        let globals_part = temp_path(&path, "globals");
        let result = waited
            .and_then(|()| {
                watchdog::watch(limits, &opts.cancel, progress, |progress| {
                    catch_panic(|| {
                        // The server's roles first: when they cannot be stored, nothing is.
                        if globals {
                            write_globals(
                                engine.as_ref(),
                                &dir,
                                &globals_part,
                                &opts.cancel,
                                &log,
                            )?;
                        }
                        write_backup(
                            engine.as_ref(),
                            &dir,
                            &path,
                            Stages {
                                compression,
                                rows: engine.stream_rows(),
                                encryption,
                            },
                            progress,
                            &opts.cancel,
                            &log,
                        )
                    })
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
                    .and_then(|()| match engine.wal_range() {
                        Some(range) => {
                            record_base(self.catalog.as_ref(), id, name, range, finished_at)
                        }
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
        drop(hold);
        let record = self.catalog.get(id)?.ok_or_else(|| Error::Catalog {
            path: config.catalog.as_path(),
            message: format!("backup #{id} vanished from the catalog"),
        })?;
        // Off-site copies first: retention runs only once every destination holds one.
        let missed = match record.status {
            Status::Success if !self.offsite.is_empty() => {
                let globals = self.catalog.globals_file(id)?;
                crate::offsite::copy_backup(
                    &self.offsite,
                    self.copies(),
                    &record,
                    &path,
                    globals.as_deref(),
                    &log,
                    dbkeep_store::store::Sending {
                        progress,
                        cancel: &opts.cancel,
                    },
                )
            }
            _ => Vec::new(),
        };
        for (store, why) in &missed {
            let mut event = dbkeep_notify::notify::Event::of(EventKind::OffsiteFailed, &record);
            event.error = Some(format!("off-site `{store}`: {why}"));
            self.notifier.notify(event);
        }
        let offsite_ok = missed.is_empty();
        // Every destination holds a checked copy: the local file may go, if so configured.
        let keep_local = db.is_some_and(|d| d.keep_local);
        if offsite_ok && !keep_local && record.status == Status::Success && !self.offsite.is_empty()
        {
            match self.remove_local(&record) {
                Ok(()) => {
                    log.step("local file removed (keep_local = false): the off-site copies hold it")
                }
                Err(e) => warn!(database = name, id, error = %e, "could not remove the local file"),
            }
        }
        if !offsite_ok && opts.cleanup {
            log.step(
                "nothing pruned: an off-site copy failed (it is retried by `dbkeep offsite sync`)",
            );
        }
        let (pruned, prune_error) = if record.status == Status::Success
            && opts.cleanup
            && offsite_ok
        {
            match catch_panic(|| {
                self.prune(
                    Some(name),
                    &PruneOptions {
                        retention_days: opts.retention_days,
                        ..PruneOptions::default()
                    },
                )
            }) {
                Ok(pruned) => {
                    let failed = pruned.iter().filter(|p| p.error.is_some()).count();
                    let held = pruned.iter().filter(|p| p.held.is_some()).count();
                    log.step(format_args!(
                        "pruned {} older backup(s){}{}",
                        pruned.len() - failed - held,
                        if failed > 0 {
                            format!("; {failed} could not be deleted")
                        } else {
                            String::new()
                        },
                        if held > 0 {
                            format!("; {held} held back (see `dbkeep prune --dry-run`)")
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
        self.announce(&record);
        Ok(BackupOutcome {
            record,
            pruned,
            prune_error,
        })
    }

    /// Tells the channels how a backup ended: succeeded (and whether it is suspiciously
    /// small beside the one before it) or failed.
    fn announce(&self, record: &BackupRecord) {
        if self.notifier.is_empty() {
            return;
        }
        if record.status != Status::Success {
            self.notifier
                .notify(dbkeep_notify::notify::Event::of(EventKind::Failure, record));
            return;
        }
        self.notifier
            .notify(dbkeep_notify::notify::Event::of(EventKind::Success, record));
        // Less than half the size of the one before: a table emptied by mistake, say.
        let before = self.catalog.list(&ListFilter {
            database: Some(record.database.clone()),
            status: Some(Status::Success),
            before: Some(record.id),
            limit: Some(1),
        });
        if let (Ok(before), Some(size)) = (before, record.size_bytes)
            && let Some(previous) = before.first().and_then(|b| b.size_bytes)
            && dbkeep_notify::notify::suspicious(Some(size), Some(previous))
        {
            let mut event = dbkeep_notify::notify::Event::of(EventKind::Suspicious, record);
            event.error = Some(format!(
                "{size} bytes, less than half of the previous backup's {previous}"
            ));
            warn!(database = %record.database, id = record.id, size, previous, "backup is less than half the size of the previous one");
            self.notifier.notify(event);
        }
    }

    /// Picks a final name no file, temporary file or catalog row uses yet, stamped with `at`
    /// as the configured `timezone`'s wall clock reads it (see [`name_stamp`]).
    pub(crate) fn choose_name(
        &self,
        db: &DatabaseConfig,
        compression: Compression,
        encrypted: bool,
        engine: &dyn Engine,
        dir: &Path,
        at: DateTime<Utc>,
    ) -> Result<(String, PathBuf)> {
        let sealed = if encrypted {
            dbkeep_model::vocab::ENCRYPTED_SUFFIX
        } else {
            ""
        };
        let (base, ext) = engine.file_name(&name_stamp(at, self.config().service.timezone));
        for n in 1u32.. {
            let unique = if n == 1 {
                String::new()
            } else {
                format!("_{n}")
            };
            let name = format!("{base}{unique}{ext}{}{sealed}", compression.suffix());
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

    /// Removes `record`'s local file and the server's roles stored with it, once every
    /// destination holds a checked copy (`keep_local = false`).
    ///
    /// # Errors
    /// Why the file could not be removed (or is not one of this instance's).
    pub(crate) fn remove_local(&self, record: &BackupRecord) -> std::result::Result<(), String> {
        let key = self
            .owned_name(record)
            .map(|file| store_key(&record.database, file))
            .map_err(|e| e.to_string())?;
        self.local.delete(&key).map_err(|e| e.to_string())?;
        // The server's roles stored with it went off-site too.
        match self.catalog.globals_file(record.id).ok().flatten() {
            Some(file) => self
                .local
                .delete(&store_key(&record.database, &file))
                .map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }
}

/// The `YYYYMMDD_HHMMSS` of a backup file's name: `at` on the wall clock of `zone`, as the
/// original design named its files (a midnight backup in Europe/Berlin is `…_000000`). The
/// catalog keeps the exact UTC instant; the hour repeated when the clocks go back gives two
/// instants the same stamp, and [`Runner::choose_name`] a suffix to the second.
pub(crate) fn name_stamp(at: DateTime<Utc>, zone: chrono_tz::Tz) -> String {
    at.with_timezone(&zone).format("%Y%m%d_%H%M%S").to_string()
}

/// Writes one backup to `.NAME.part` beside `path`, syncs it and renames it to `path`.
fn write_backup(
    engine: &dyn Engine,
    dir: &Path,
    path: &Path,
    stages: Stages<'_>,
    progress: &dyn Progress,
    cancel: &Cancel,
    log: &RunLog,
) -> Result<(Written, TableRows)> {
    let compression = stages.compression;
    // Cancelled while waiting for its turn (shutdown): do not start at all.
    if let Some(reason) = cancel.reason() {
        return Err(Error::Cancelled(reason));
    }
    storage::create_private_dir(dir).map_err(Error::io("cannot create backup folder", dir))?;
    let part = temp_path(path, "part");
    let file = storage::create_private_file(&part).map_err(Error::io("cannot create", &part))?;
    // A whole-file copy is the stored file only when nothing is done to its bytes.
    let direct = match (compression, stages.encryption) {
        (Compression::None, None) => engine.file_copy(),
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
            let mut out = Pipeline::new(file, stages, progress, cancel)
                .map_err(Error::io("cannot compress or encrypt into", &part))?;
            let scratch = temp_path(path, "snapshot");
            let dumped = engine.dump(&mut out, &scratch, cancel, log);
            remove_sqlite_files(&scratch);
            let counted = dumped?;
            let mut written = out.finish().map_err(Error::io("cannot write", &part))?;
            let tables = counted.or(written.tables.take()).unwrap_or_default();
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

/// Records where the base backup `id` of `server` sits in the log (`range`, read from its
/// stream), ended at `stopped_at`.
fn record_base(
    catalog: &dyn Catalog,
    id: BackupId,
    server: &str,
    range: dbkeep_model::wal::WalRange,
    stopped_at: DateTime<Utc>,
) -> Result<()> {
    catalog.add_base(&dbkeep_model::wal::BaseBackup {
        backup_id: id,
        server: server.to_string(),
        timeline: range.timeline,
        start_lsn: range.start,
        start_wal: range.start_wal,
        stop_lsn: range.stop,
        stopped_at,
    })
}
