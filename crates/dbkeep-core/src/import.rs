//! `dbkeep import`: outside backup files (a `.db`, `.sql`, `.sql.gz` or `.sql.zst`, such as
//! the original Django setup made, each also encrypted with age) become backups like any other: copied into their database's
//! folder under a standard name, hashed, checked, their rows counted, and recorded with trigger
//! `import`. They can then be verified, restored, downloaded and pruned. [`import`] takes one
//! file; [`import_many`] a folder's whole history, oldest first, skipping the files the
//! catalog holds already.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

use crate::runner::Runner;
use dbkeep_config::config::Target;
use dbkeep_engine::engine::{self, SqliteEngine};
use dbkeep_model::catalog::{
    BackupId, BackupRecord, Kind, ListFilter, NewBackup, Status, Stored, Trigger,
};
use dbkeep_model::error::{Error, Result};
use dbkeep_model::storage;
use dbkeep_model::stream::TableRows;
use dbkeep_model::vocab::Compression;
use dbkeep_pipeline::crypt::Keys;
use dbkeep_pipeline::pipeline::{self, HashingWriter};

/// How bytes are compressed, by the first of them.
fn compression_of(magic: &[u8]) -> Compression {
    match magic {
        [0x1f, 0x8b, ..] => Compression::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
        _ => Compression::None,
    }
}

/// The first line of an age file (the binary format, as dbkeep and `age` write it).
const AGE_MAGIC: &[u8] = b"age-encryption.org/v1";

/// What a file's bytes are, by their first bytes whatever its name says: encrypted with age
/// (then opened with `keys`, which it calls only then) or not, and how they (once decrypted)
/// are compressed.
fn sniff(file: &Path, keys: impl FnOnce() -> Result<Keys>) -> Result<(Compression, Option<Keys>)> {
    let mut magic = [0u8; AGE_MAGIC.len()];
    let n = std::fs::File::open(file)
        .and_then(|mut f| read_up_to(&mut f, &mut magic))
        .map_err(Error::io("cannot read", file))?;
    if !magic[..n].starts_with(AGE_MAGIC) {
        return Ok((compression_of(&magic[..n]), None));
    }
    let keys = keys()?;
    let opened = std::fs::File::open(file).map_err(Error::io("cannot read", file))?;
    let mut plain = keys
        .decrypt(Box::new(opened))
        .map_err(|e| Error::Refused(format!("is encrypted with age, and {e}")))?;
    let mut inner = [0u8; 4];
    let n = read_up_to(&mut plain, &mut inner)
        .map_err(|e| Error::Refused(format!("is encrypted with age and does not decrypt: {e}")))?;
    Ok((compression_of(&inner[..n]), Some(keys)))
}

/// Reads until `buf` is full or the input ends; how many bytes it read.
fn read_up_to(input: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// What became of one file given to [`import_many`].
#[derive(Debug)]
pub enum ImportOutcome {
    /// It is a backup now.
    Imported {
        /// Its catalog row.
        record: Box<BackupRecord>,
        /// How many tables its rows were counted in.
        tables: usize,
    },
    /// Not imported: a backup of the database in the catalog has the same SHA-256 (one
    /// imported before, or a file given earlier in the same call).
    Skipped {
        /// That backup.
        id: BackupId,
    },
    /// Not imported, and why; nothing of it is left in the backup folder or the catalog.
    Failed(Error),
}

/// Where [`import_many`] is, for a progress display.
#[derive(Debug, Clone, Copy)]
pub enum ImportStep<'a> {
    /// `file` is next: the `index`th (from 0) of `total`.
    Starting {
        /// The file as given.
        file: &'a Path,
        /// How many came before it.
        index: usize,
        /// How many files there are.
        total: usize,
    },
    /// `file` is done.
    Done {
        /// The file as given.
        file: &'a Path,
        /// What became of it.
        outcome: &'a ImportOutcome,
    },
}

/// The time a file name like `sqlite_backup_20250101_120000.db` says it was taken, read on the
/// wall clock of `zone` (the original design named its files in local time).
fn stamp_in_name(name: &str, zone: Tz) -> Option<DateTime<Utc>> {
    let at = name.find("_backup_")? + "_backup_".len();
    let stamp = name.get(at..at + 15)?;
    let wall = NaiveDateTime::parse_from_str(stamp, "%Y%m%d_%H%M%S").ok()?;
    on_wall_clock(wall, zone)
}

/// The instant `wall` names on `zone`'s clock. In the hour repeated when the clocks go back,
/// the earlier of its two instants; for a time skipped when they go forward, the first instant
/// after the gap (02:30 on a night that jumps from 02:00 to 03:00 is 03:00).
fn on_wall_clock(wall: NaiveDateTime, zone: Tz) -> Option<DateTime<Utc>> {
    let valid = |t: NaiveDateTime| zone.from_local_datetime(&t).earliest();
    if let Some(at) = valid(wall) {
        return Some(at.with_timezone(&Utc));
    }
    // In a gap: the first valid minute after it, then the first valid second of that minute.
    // No zone has skipped more than a day.
    let minute = (1..=2 * 24 * 60)
        .filter_map(|m| wall.checked_add_signed(TimeDelta::minutes(m)))
        .find(|t| valid(*t).is_some())?;
    let before = minute.checked_sub_signed(TimeDelta::minutes(1))?;
    (1..=60)
        .filter_map(|s| before.checked_add_signed(TimeDelta::seconds(s)))
        .find_map(valid)
        .map(|at| at.with_timezone(&Utc))
}

/// When `file` was taken: the time in its name (`…_backup_YYYYMMDD_HHMMSS…`, read in `zone`),
/// else its modification time, else `now`.
fn taken_at(file: &Path, zone: Tz, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
    let name = file.file_name().unwrap_or_default().to_string_lossy();
    if let Some(at) = stamp_in_name(&name, zone) {
        return Ok(at);
    }
    let meta = std::fs::metadata(file).map_err(Error::io("cannot read", file))?;
    Ok(meta.modified().map(DateTime::<Utc>::from).unwrap_or(now))
}

/// The SHA-256 of each of `database`'s backups in the catalog (pruned ones too), with the id
/// of the oldest backup that has it.
fn known_hashes(runner: &Runner, database: &str) -> Result<HashMap<String, BackupId>> {
    let rows = runner.catalog().list(&ListFilter {
        database: Some(database.to_string()),
        status: Some(Status::Success),
        ..ListFilter::default()
    })?;
    // Newest first: an older row with the same hash replaces a newer one.
    Ok(rows
        .into_iter()
        .filter_map(|r| Some((r.sha256?, r.id)))
        .collect())
}

/// Imports `file` as a backup of `database`: the new catalog row, `success` with trigger
/// `import`. Its time is the one in its name (`…_backup_YYYYMMDD_HHMMSS…`, read in the
/// configured `timezone`), else the file's. It is imported even when the catalog holds the
/// same file already; [`import_many`] skips those.
///
/// # Errors
/// [`Error::Refused`] when the file does not fit the database (a SQL dump for a SQLite
/// database, a file that is not a SQLite database, or one that does not decompress);
/// [`Error::AlreadyRunning`] while the database backs up; I/O and catalog failures.
pub fn import(runner: &Runner, file: &Path, database: &str) -> Result<BackupRecord> {
    runner.config().database(database)?;
    let _hold = runner
        .hold(database)?
        .ok_or_else(|| Error::AlreadyRunning(database.to_string()))?;
    let imported = taken_at(file, runner.config().service.timezone, runner.clock().now())
        .and_then(|at| import_held(runner, file, database, at, None))
        .map_err(|e| match e {
            Error::Refused(why) => {
                Error::Refused(format!("{}: {why}; nothing was imported", file.display()))
            }
            e => e,
        })?;
    match imported {
        Imported::New { record, .. } => {
            forget_policies(runner, database);
            Ok(*record)
        }
        Imported::Known(id) => Err(Error::Refused(format!(
            "{} is backup #{id} already",
            file.display()
        ))),
    }
}

/// Imports each of `files` as a backup of `database`, as [`import`] does, in the order of
/// their times (the oldest first, so that ids increase with time), and returns what became of
/// each in that order. A file whose SHA-256 a backup of the database in the catalog has (read
/// once, before the first file) or one imported before it in this call has, is skipped. A file
/// that fails (unreadable, not a backup of that kind, does not decompress) fails alone, leaving
/// nothing behind, and the others still go in. `on_step` hears of each file as it starts and
/// ends. The database's hold is kept from the first file to the last.
///
/// # Errors
/// An unknown database; [`Error::AlreadyRunning`] while the database backs up; a catalog that
/// cannot be read. Nothing is imported then.
pub fn import_many(
    runner: &Runner,
    files: &[PathBuf],
    database: &str,
    on_step: &mut dyn FnMut(ImportStep<'_>),
) -> Result<Vec<(PathBuf, ImportOutcome)>> {
    let config = runner.config();
    config.database(database)?;
    let _hold = runner
        .hold(database)?
        .ok_or_else(|| Error::AlreadyRunning(database.to_string()))?;
    // Read under the hold: no other import of the database adds to them meanwhile.
    let mut known = known_hashes(runner, database)?;
    let now = runner.clock().now();
    let mut planned: Vec<(PathBuf, Result<DateTime<Utc>>)> = files
        .iter()
        .map(|f| (f.clone(), taken_at(f, config.service.timezone, now)))
        .collect();
    // Oldest first (a file without a time fails first), the given order among equals.
    planned.sort_by_key(|(_, at)| at.as_ref().ok().copied());
    let total = planned.len();
    let mut done = Vec::with_capacity(total);
    for (index, (file, at)) in planned.into_iter().enumerate() {
        on_step(ImportStep::Starting {
            file: &file,
            index,
            total,
        });
        let held = at.and_then(|at| import_held(runner, &file, database, at, Some(&mut known)));
        let outcome = match held {
            Ok(Imported::New { record, tables }) => ImportOutcome::Imported { record, tables },
            Ok(Imported::Known(id)) => ImportOutcome::Skipped { id },
            Err(e) => ImportOutcome::Failed(e),
        };
        on_step(ImportStep::Done {
            file: &file,
            outcome: &outcome,
        });
        done.push((file, outcome));
    }
    let imported_any = done
        .iter()
        .any(|(_, o)| matches!(o, ImportOutcome::Imported { .. }));
    if imported_any {
        forget_policies(runner, database);
    }
    Ok(done)
}

/// After an import the next prune of `database` counts as a first one: the guard rail holds
/// it if it would delete many of the backups just brought in. A catalog that cannot record
/// that is logged; the backups stand.
fn forget_policies(runner: &Runner, database: &str) {
    if let Err(e) = runner.catalog().clear_retention_marks(database) {
        tracing::warn!(database, error = %e, "could not reset the retention guard rail after an import");
    }
}

/// What [`import_held`] did with a file.
enum Imported {
    /// Imported it: its row, and how many tables it counted.
    New {
        record: Box<BackupRecord>,
        tables: usize,
    },
    /// Left it out: this backup has the same SHA-256.
    Known(BackupId),
}

/// Imports `file`, taken at `taken_at`, while the caller holds `database`'s hold; with
/// `known`, a file whose SHA-256 is among them is left out (its copy removed before anything
/// is checked or recorded), and one imported is added to them. The errors it makes itself do
/// not name `file` (the caller does).
fn import_held(
    runner: &Runner,
    file: &Path,
    database: &str,
    taken_at: DateTime<Utc>,
    known: Option<&mut HashMap<String, BackupId>>,
) -> Result<Imported> {
    let config = runner.config();
    let db = config.database(database)?;
    let meta = std::fs::metadata(file).map_err(Error::io("cannot read", file))?;
    if !meta.is_file() {
        return Err(Error::Refused("is not a file".to_string()));
    }
    let name = file.file_name().unwrap_or_default().to_string_lossy();
    let (compression, keys) = sniff(file, || {
        Keys::for_database(&config, database, &format!("{name}"))
    })?;
    let kind = db.target.kind();
    let looks_sql = name.contains(".sql");
    if (kind == Kind::Sqlite) == looks_sql {
        return Err(Error::Refused(format!(
            "does not look like a {kind} backup (a {kind} database's backups are {}); import it into a {} database",
            if kind == Kind::Sqlite {
                ".db files"
            } else {
                ".sql, .sql.gz or .sql.zst dumps"
            },
            if looks_sql {
                "PostgreSQL or MySQL"
            } else {
                "SQLite"
            },
        )));
    }
    let engine = engine::for_database(&config, db);
    let dir = config.database_dir(database);
    storage::create_private_dir(&dir).map_err(Error::io("cannot create backup folder", &dir))?;
    let (file_name, path) = runner.choose_name(
        db,
        compression,
        keys.is_some(),
        engine.as_ref(),
        &dir,
        taken_at,
    )?;
    let part = dbkeep_model::storage::temp_path(&path, "part");
    // Checked before anything is recorded: a file that is not a backup leaves no trace.
    let checked = copy_hashed(file, &part).and_then(|(out, size, sha256)| {
        if let Some(id) = known.as_ref().and_then(|k| k.get(&sha256)) {
            return Ok(Err(*id));
        }
        out.sync_all().map_err(Error::io("cannot sync", &part))?;
        drop(out);
        let tables = check(
            &part,
            compression,
            keys.as_ref(),
            &db.target,
            config.min_free_space,
        )?;
        Ok(Ok((size, sha256, tables)))
    });
    let (size, sha256, tables) = match checked {
        Ok(Ok(done)) => done,
        Ok(Err(id)) => {
            let _ = storage::remove_if_exists(&part);
            return Ok(Imported::Known(id));
        }
        Err(e) => {
            let _ = storage::remove_if_exists(&part);
            return Err(e);
        }
    };
    // Recorded in progress before it is published: a kill from here on leaves a row the next
    // run recovers (with its temporary file).
    let catalog = runner.catalog();
    let id = catalog.begin(&NewBackup {
        database,
        kind,
        trigger: Trigger::Import,
        file_name: &file_name,
        path: &path,
        compression,
        started_at: taken_at,
        instance: &runner.instance().name,
    })?;
    let done = (|| {
        storage::publish(&part, &path).map_err(Error::io("cannot rename into place", &part))?;
        catalog.set_table_rows(id, &tables)?;
        catalog.succeed(
            id,
            &Stored {
                size_bytes: size,
                sha256: sha256.clone(),
                // Its own time: an old file does not become the newest good backup.
                finished_at: taken_at,
                duration_ms: 0,
            },
        )?;
        catalog.set_log(
            id,
            &format!(
                "imported from {} ({size} bytes, {} table(s) counted)",
                file.display(),
                tables.len()
            ),
        )
    })();
    if let Err(e) = done {
        let _ = storage::remove_if_exists(&part);
        let _ = storage::remove_if_exists(&path);
        let _ = catalog.fail(id, &format!("import failed: {e}"), runner.clock().now(), 0);
        return Err(e);
    }
    let record = catalog.get(id)?.ok_or_else(|| Error::Catalog {
        path: config.catalog.as_path(),
        message: format!("backup #{id} vanished from the catalog"),
    })?;
    if let Some(known) = known {
        known.insert(sha256, id);
    }
    Ok(Imported::New {
        record: Box::new(record),
        tables: tables.len(),
    })
}

/// Copies `file` to `part` (private) while hashing it: the open copy, its size and SHA-256.
fn copy_hashed(file: &Path, part: &Path) -> Result<(std::fs::File, u64, String)> {
    let out = storage::create_private_file(part).map_err(Error::io("cannot create", part))?;
    let mut hashing = HashingWriter::new(out);
    let mut source = std::fs::File::open(file).map_err(Error::io("cannot read", file))?;
    dbkeep_model::stream::copy(&mut source, &mut hashing)
        .map_err(Error::io("cannot copy into", part))?;
    Ok(hashing.finish())
}

/// Checks the copy `part` of an outside file and counts its rows: a SQLite copy is opened (decompressed
/// to a scratch file when compressed, which stops before its disk has less than
/// `min_free_space` free); a dump's COPY blocks are counted as it decompresses.
fn check(
    part: &Path,
    compression: Compression,
    keys: Option<&Keys>,
    target: &Target,
    min_free_space: u64,
) -> Result<TableRows> {
    let unreadable = |e: std::io::Error| match keys {
        Some(_) => Error::Refused(format!("does not decrypt and decompress ({e})")),
        None => Error::Refused(format!("does not decompress ({e})")),
    };
    let reader = || -> Result<Box<dyn Read + Send>> {
        let f = std::fs::File::open(part).map_err(Error::io("cannot read", part))?;
        pipeline::open_reader(Box::new(f), compression, keys).map_err(unreadable)
    };
    let tables = match target {
        Target::Sqlite { .. } => {
            let scratch = dbkeep_model::storage::temp_path(part, "check");
            let checked = (|| {
                let copy = if compression == Compression::None && keys.is_none() {
                    part.to_path_buf()
                } else {
                    let out = storage::create_private_file(&scratch)
                        .map_err(Error::io("cannot create", &scratch))?;
                    let mut out = storage::LeavesRoom::new(out, &scratch, min_free_space);
                    dbkeep_model::stream::copy(&mut reader()?, &mut out).map_err(|e| {
                        if e.kind() == std::io::ErrorKind::StorageFull {
                            Error::Refused(format!("expands to more than its disk can hold: {e}"))
                        } else {
                            unreadable(e)
                        }
                    })?;
                    scratch.clone()
                };
                SqliteEngine::new(copy.clone())
                    .inspect()
                    .map_err(|e| sqlite_refused(&e, &copy))
            })();
            let _ = storage::remove_if_exists(&scratch);
            checked?
        }
        Target::Postgres(_) | Target::Mysql(_) => {
            let format = match target {
                Target::Mysql(_) => dbkeep_model::stream::RowFormat::MysqlInsert,
                _ => dbkeep_model::stream::RowFormat::PgCopy,
            };
            let mut tap = pipeline::rows::RowTap::new(format);
            dbkeep_model::stream::copy(&mut reader()?, &mut tap).map_err(unreadable)?;
            tap.tables()
        }
        Target::PostgresBase(_) => {
            return Err(Error::Refused(
                "a server's base backups are taken by dbkeep with its WAL archive; outside files cannot be imported as base backups".into(),
            ));
        }
    };
    Ok(tables)
}

/// SQLite's verdict on the copy `copy`, said of the file imported: without the copy's path,
/// nor the hint to check a configured `url`.
fn sqlite_refused(e: &Error, copy: &Path) -> Error {
    let text = e.to_string();
    let prefix = format!("SQLite database {}: ", copy.display());
    let text = text.strip_prefix(&prefix).unwrap_or(&text);
    let text = text
        .strip_suffix("; check the `url` of this database")
        .unwrap_or(text);
    Error::Refused(text.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_name_s_time_is_read_on_the_configured_zone_s_wall_clock() {
        let berlin = chrono_tz::Europe::Berlin;
        let at = |name: &str| stamp_in_name(name, berlin);
        assert_eq!(
            at("sqlite_backup_20250101_120000.db"),
            Some(utc("2025-01-01T11:00:00Z"))
        );
        assert_eq!(
            at("postgres_backup_20250715_000000.sql.gz"),
            Some(utc("2025-07-14T22:00:00Z"))
        );
        assert_eq!(
            stamp_in_name("sqlite_backup_20250101_120000_2.db", chrono_tz::UTC),
            Some(utc("2025-01-01T12:00:00Z"))
        );
        // Skipped when the clocks went forward (02:00 became 03:00): the first instant after.
        assert_eq!(
            at("sqlite_backup_20250330_023000.db"),
            Some(utc("2025-03-30T01:00:00Z"))
        );
        assert_eq!(
            at("sqlite_backup_20250330_020000.db"),
            Some(utc("2025-03-30T01:00:00Z"))
        );
        assert_eq!(
            at("sqlite_backup_20250330_030000.db"),
            Some(utc("2025-03-30T01:00:00Z"))
        );
        // Repeated when they went back (03:00 became 02:00): the earlier of the two.
        assert_eq!(
            at("sqlite_backup_20251026_023000.db"),
            Some(utc("2025-10-26T00:30:00Z"))
        );
        // A whole day skipped: Samoa went from 29 to 31 December 2011.
        assert_eq!(
            stamp_in_name("sqlite_backup_20111230_120000.db", chrono_tz::Pacific::Apia),
            Some(utc("2011-12-30T10:00:00Z"))
        );
        for name in [
            "app.db",
            "sqlite_backup_2025.db",
            "sqlite_backup_20251301_000000.db",
            "sqlite_backup_20250101-120000.db",
        ] {
            assert_eq!(at(name), None, "{name}");
        }
    }
}
