//! Proving a backup restorable: its checksum, its decompression, or a real restore into a
//! throwaway target (a temporary SQLite file, a temporary PostgreSQL database on the source's
//! server) that is removed afterwards, also when the check fails. Every verification is
//! recorded in the catalog.

use crate::runner::Runner;
use dbkeep_config::config::Target;
use dbkeep_engine::engine::{self, Engine, RestoreOptions};
use dbkeep_engine::throwaway::{self, on_server, orphaned};
use dbkeep_model::cancel::Cancel;
use dbkeep_model::catalog::{BackupRecord, Verification, VerifyLevel};
use dbkeep_model::error::{Error, Result};
use dbkeep_model::stream::NoProgress;
use dbkeep_pipeline::pipeline::{self};

/// Verifies `record` at `level` (each level includes the ones before), records the result, and
/// returns it. A check that fails is an `Ok` verification with `ok: false` and the reason. An
/// encrypted backup whose identity is not at hand is verified at checksum level (the level
/// recorded says so): the deeper levels need the identity.
///
/// # Errors
/// [`Error::Refused`] for a backup that has no file to verify (failed, running, pruned, or not
/// this configuration's); [`Error::Cancelled`] when `cancel` was raised (nothing is recorded);
/// a catalog failure.
pub fn verify(
    runner: &Runner,
    record: &BackupRecord,
    level: VerifyLevel,
    cancel: &Cancel,
) -> Result<Verification> {
    verify_from(runner, record, level, None, cancel)
}

/// [`verify`], reading the copy at off-site destination `from` (the local file for `None`).
///
/// # Errors
/// As [`verify`]; [`Error::Refused`] also for a destination without a checked copy of it.
pub fn verify_from(
    runner: &Runner,
    record: &BackupRecord,
    level: VerifyLevel,
    from: Option<&str>,
    cancel: &Cancel,
) -> Result<Verification> {
    let id = record.id;
    if !record.is_stored() || !runner.owns(record) {
        return Err(Error::Refused(format!(
            "backup #{id} has no stored file of this configuration to verify"
        )));
    }
    // An encrypted backup with no way to open it configured here can only be checked as
    // stored bytes; keys that are configured but do not load fail the verification.
    let (keys, level) = match dbkeep_pipeline::crypt::Keys::for_record(&runner.config(), record) {
        Ok(keys) => (Ok(keys), level),
        Err(e) if !dbkeep_pipeline::crypt::Keys::configured(&runner.config(), record) => {
            tracing::info!(backup = id, reason = %e, "verifying the checksum only");
            (Ok(None), VerifyLevel::Checksum)
        }
        Err(e) => (Err(e.to_string()), level),
    };
    let started_at = runner.clock().now();
    if let Some(name) = from
        && !crate::offsite::holders(runner.copies(), record)?
            .iter()
            .any(|h| h == name)
    {
        return Err(Error::Refused(format!(
            "backup #{id} has no checked copy at off-site `{name}`; see `dbkeep offsite list`"
        )));
    }
    let checked = keys.and_then(|keys| check(runner, record, level, keys.as_ref(), from, cancel));
    let (ok, message, restore_ms) = match checked {
        Ok(restore_ms) => (true, None, restore_ms),
        Err(e) => (false, Some(e), None),
    };
    // Stopped from outside: that says nothing about the backup, so nothing is recorded.
    if let Some(reason) = cancel.reason() {
        return Err(Error::Cancelled(reason));
    }
    let verification = Verification {
        backup_id: id,
        level,
        ok,
        message,
        started_at,
        finished_at: runner.clock().now(),
        restore_ms,
        source: from.map(str::to_string),
    };
    runner.catalog().record_verification(&verification)?;
    if !verification.ok {
        let mut event =
            dbkeep_notify::notify::Event::of(dbkeep_model::vocab::EventKind::VerifyFailed, record);
        event.error.clone_from(&verification.message);
        runner.notifier().notify(event);
    }
    Ok(verification)
}

/// Connections that load a throwaway PostgreSQL database at once.
const VERIFY_JOBS: usize = 2;

/// The checks themselves; the restore's duration at restore level.
fn check(
    runner: &Runner,
    record: &BackupRecord,
    level: VerifyLevel,
    keys: Option<&dbkeep_pipeline::crypt::Keys>,
    from: Option<&str>,
    cancel: &Cancel,
) -> std::result::Result<Option<u64>, String> {
    // An uncompressed SQLite backup is the database file itself: restoring it is copying its
    // bytes. It is checked in place (read-only), while it is hashed.
    // A base backup's drill is a recovery with its archive (its stored file checked as it
    // is unpacked).
    if level == VerifyLevel::Restore && record.kind == dbkeep_model::catalog::Kind::PostgresBase {
        let drilled = crate::pitr::drill(runner, record).map_err(|e| e.to_string())?;
        tracing::info!(
            backup = record.id,
            rto_ms = drilled.rto.as_millis() as u64,
            databases = drilled.databases,
            tables = drilled.tables,
            rows = drilled.rows,
            "base backup recovered with its archive, every table counted"
        );
        return Ok(Some(drilled.rto.as_millis() as u64));
    }
    if level == VerifyLevel::Restore {
        if let Err(e) = remove_orphans(runner, record) {
            tracing::warn!(error = %e, "could not look for throwaways of killed verifications");
        }
        if record.kind == dbkeep_model::catalog::Kind::Sqlite
            && record.compression == dbkeep_model::vocab::Compression::None
            && !record.encrypted
            // Only the local file can be read in place; a copy off-site is restored.
            && from.is_none()
            && runner.backup_file(record).is_ok()
        {
            return check_sqlite_in_place(runner, record);
        }
    }
    let open = || {
        runner
            .open_from(record, from)
            .map_err(|e| format!("checksum: cannot open the file: {e}"))
    };
    let (_, sha256) = pipeline::hash_reader(&mut open()?)
        .map_err(|e| format!("checksum: cannot read the file: {e}"))?;
    let expected = record.sha256.as_deref().unwrap_or_default();
    if sha256 != expected {
        return Err(format!(
            "checksum: the file's SHA-256 is {sha256}, the catalog recorded {expected}: the file is damaged"
        ));
    }
    if level == VerifyLevel::Checksum {
        return Ok(None);
    }
    let mut reader = pipeline::open_reader(open()?, record.compression, keys)
        .map_err(|e| format!("readable: cannot open: {e}"))?;
    dbkeep_model::stream::copy(&mut reader, &mut std::io::sink()).map_err(|e| {
        let what = if record.encrypted {
            "decrypt and decompress"
        } else {
            "decompress"
        };
        format!("readable: the file does not {what} to its end: {e}")
    })?;
    if level == VerifyLevel::Readable {
        return Ok(None);
    }
    let target = throwaway(runner, record).map_err(|e| format!("restore: {e}"))?;
    let engine = engine::for_target(&runner.config(), &target);
    // On the source's own server the dump's roles exist; on a `verify_url` server they may
    // not, and the dump's owners and grants are left out.
    let elsewhere = runner
        .config()
        .database(&record.database)
        .is_ok_and(|d| d.verify_url.is_some());
    let opts = RestoreOptions {
        force: true,
        create: true,
        jobs: VERIFY_JOBS,
        from: from.map(str::to_string),
        leave: dbkeep_model::stream::Leave {
            owners: elsewhere,
            privileges: elsewhere,
        },
        ..RestoreOptions::default()
    };
    // The checksum was checked above: the load checks its stream again at its end.
    let log = dbkeep_model::runlog::RunLog::new();
    let restored = crate::restore::load(runner, record, &target, &opts, cancel, &NoProgress, log)
        .map_err(|e| e.to_string())
        .and_then(|restored| {
            // The load alone: the checksum pass before it is not part of a recovery's time.
            let ms = restored.duration.as_millis() as u64;
            if let Target::Sqlite { path } = &target {
                engine::SqliteEngine::new(path.clone())
                    .integrity_check()
                    .map_err(|e| e.to_string())?;
            }
            same_rows(runner, record, engine.as_ref(), cancel)?;
            Ok(ms)
        });
    // Removed whatever happened (a fresh flag: a cancelled run must still clean up).
    let discarded = engine.discard(&Cancel::new());
    let ms = restored.map_err(|e| format!("restore: {e}"))?;
    discarded.map_err(|e| format!("restore: could not remove the throwaway copy: {e}"))?;
    Ok(Some(ms))
}

/// Restore level for an uncompressed SQLite backup: its SHA-256, `PRAGMA integrity_check` and
/// its tables' rows, on the stored file itself (opened immutable, so nothing is written beside
/// it), hashing and checking side by side. The time recorded is the check's.
fn check_sqlite_in_place(
    runner: &Runner,
    record: &BackupRecord,
) -> std::result::Result<Option<u64>, String> {
    let started = std::time::Instant::now();
    let path = runner
        .backup_file(record)
        .map_err(|e| format!("checksum: cannot open the file: {e}"))?;
    let names: Vec<String> = runner
        .catalog()
        .table_rows(record.id)
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let (hashed, checked) = std::thread::scope(|s| {
        let hash = s.spawn(|| pipeline::hash_file(&path));
        let engine = engine::SqliteEngine::new(path.clone());
        let checked = engine
            .integrity_check()
            .and_then(|()| engine.count_rows(&names, &Cancel::new()));
        (hash.join(), checked)
    });
    let recorded = runner
        .catalog()
        .table_rows(record.id)
        .map_err(|e| e.to_string())?;
    let hashed = hashed
        .map_err(|_| "checksum: the hashing thread panicked".to_string())?
        .map_err(|e| format!("checksum: cannot read the file: {e}"))?;
    let expected = record.sha256.as_deref().unwrap_or_default();
    if hashed.sha256 != expected {
        return Err(format!(
            "checksum: the file's SHA-256 is {}, the catalog recorded {expected}: the file is damaged",
            hashed.sha256
        ));
    }
    let found = checked.map_err(|e| format!("restore: {e}"))?;
    compare_rows(&recorded, &found)?;
    Ok(Some(started.elapsed().as_millis() as u64))
}

/// Compares the restored tables' rows with the counts the backup recorded, naming each table
/// that differs (a backup made before dbkeep counted rows has none to compare; an imported
/// file with none must restore at least one table).
fn same_rows(
    runner: &Runner,
    record: &BackupRecord,
    restored: &dyn engine::Engine,
    cancel: &Cancel,
) -> std::result::Result<(), String> {
    let recorded = runner
        .catalog()
        .table_rows(record.id)
        .map_err(|e| e.to_string())?;
    if recorded.is_empty() {
        // A backup dbkeep made of an empty database restores to one; an outside file that
        // restores no table is not the backup of a database.
        if record.trigger == dbkeep_model::catalog::Trigger::Import
            && restored
                .table_count(cancel)
                .map_err(|e| format!("cannot count the restored tables: {e}"))?
                == 0
        {
            return Err("restored nothing: the file loads without error but makes no table, so it is not a backup of a database's tables".into());
        }
        return Ok(());
    }
    let names: Vec<String> = recorded.iter().map(|(n, _)| n.clone()).collect();
    let found = restored
        .count_rows(&names, cancel)
        .map_err(|e| format!("cannot count the restored rows: {e}"))?;
    compare_rows(&recorded, &found)
}

/// Each table whose rows differ from the recorded count, named (`row counts differ: t has 4
/// rows, the backup recorded 5`); `Ok` when none does. Verifications and restores say it alike.
///
/// # Errors
/// The differences, in words.
pub fn compare_rows(
    recorded: &[(String, u64)],
    found: &[(String, u64)],
) -> std::result::Result<(), String> {
    let differ: Vec<String> = recorded
        .iter()
        .zip(found)
        .filter(|((_, want), (_, got))| want != got)
        .map(|((name, want), (_, got))| {
            format!("{name} has {got} rows, the backup recorded {want}")
        })
        .collect();
    if differ.is_empty() {
        Ok(())
    } else {
        Err(format!("row counts differ: {}", differ.join("; ")))
    }
}

/// Where a restore-level check restores to: a hidden file in the database's backup folder, or
/// a database named `dbkeep_verify_<id>_<mark>_<pid>_<random>` on the source's server
/// (PostgreSQL, MySQL), named so that the next verification can remove what a killed one left
/// behind ([`dbkeep_engine::throwaway`]).
fn throwaway(runner: &Runner, record: &BackupRecord) -> Result<Target> {
    let config = runner.config();
    let db = config.database(&record.database)?;
    let name = throwaway::name(&format!("{VERIFY_PREFIX}_{}", record.id))?;
    match &db.target {
        Target::Sqlite { .. } => Ok(Target::Sqlite {
            path: runner
                .config()
                .database_dir(&record.database)
                .join(format!(".{}.db", name.trim_start_matches("dbkeep_"))),
        }),
        Target::Postgres(pg) => Ok(Target::Postgres(on_server(
            db.verify_url.as_ref().unwrap_or(pg),
            &name,
        ))),
        Target::Mysql(server) => Ok(Target::Mysql(on_server(
            db.verify_url.as_ref().unwrap_or(server),
            &name,
        ))),
        Target::PostgresBase(_) => Err(Error::Refused(format!(
            "backup #{} is a base backup: it is proven by restoring it to a point in time (`dbkeep restore --server {} --at latest --to-dir PATH --start`), not into a database",
            record.id, record.database
        ))),
    }
}

/// What the throwaways of verifications are named with (after it, the backup's id).
const VERIFY_PREFIX: &str = "dbkeep_verify";

fn log_dropped(databases: Vec<String>) {
    for database in databases {
        tracing::info!(%database, "dropped a throwaway database a killed verification left");
    }
}

/// Removes the throwaways of `record`'s database that killed verifications left: files in its
/// folder, databases on its server.
fn remove_orphans(runner: &Runner, record: &BackupRecord) -> Result<()> {
    let config = runner.config();
    let db = config.database(&record.database)?;
    match &db.target {
        Target::PostgresBase(_) => Ok(()),
        Target::Sqlite { .. } => {
            let dir = runner.config().database_dir(&record.database);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                return Ok(());
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let base = name.trim_start_matches('.');
                let verify = base
                    .strip_prefix("verify_")
                    .map(|rest| rest.split(".db").next().unwrap_or(rest).to_string());
                if let Some(stem) = verify.filter(|s| orphaned(s)) {
                    tracing::info!(file = %name, stem, "removing a throwaway copy a killed verification left");
                    let _ = dbkeep_model::storage::remove_if_exists(&entry.path());
                }
            }
            Ok(())
        }
        Target::Mysql(source) => {
            let server = db.verify_url.as_ref().unwrap_or(source);
            let engine = engine::MysqlEngine::new(
                server.clone(),
                runner.config().mysqldump_path.clone(),
                runner.config().mysql_path.clone(),
            );
            log_dropped(engine.drop_orphans(VERIFY_PREFIX)?);
            Ok(())
        }
        Target::Postgres(source) => {
            let server = engine::PostgresEngine::new(
                db.verify_url.as_ref().unwrap_or(source).clone(),
                runner
                    .config()
                    .pg_dump_path
                    .clone()
                    .unwrap_or_else(|| "pg_dump".into()),
            );
            log_dropped(server.drop_orphans(VERIFY_PREFIX)?);
            Ok(())
        }
    }
}
