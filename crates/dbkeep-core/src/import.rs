//! `dbkeep import`: an outside backup file (a `.db`, `.sql`, `.sql.gz` or `.sql.zst`, such as
//! the original Django setup made) becomes a backup like any other: copied into its database's
//! folder under a standard name, hashed, checked, its rows counted, and recorded with trigger
//! `import`. It can then be verified, restored, downloaded and pruned.

use std::io::Read;
use std::path::Path;

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::runner::Runner;
use dbkeep_config::config::Target;
use dbkeep_engine::engine::{self, SqliteEngine};
use dbkeep_model::catalog::{BackupRecord, Kind, NewBackup, Stored, Trigger};
use dbkeep_model::error::{Error, Result};
use dbkeep_model::storage;
use dbkeep_model::stream::TableRows;
use dbkeep_model::vocab::Compression;
use dbkeep_pipeline::pipeline::{self, HashingWriter};

/// How a file's bytes are compressed: by their first bytes, whatever its name says.
fn sniff(file: &Path) -> Result<Compression> {
    let mut magic = [0u8; 4];
    let n = std::fs::File::open(file)
        .and_then(|mut f| f.read(&mut magic))
        .map_err(Error::io("cannot read", file))?;
    Ok(match &magic[..n] {
        [0x1f, 0x8b, ..] => Compression::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd] => Compression::Zstd,
        _ => Compression::None,
    })
}

/// The time a file name like `sqlite_backup_20250101_120000.db` says it was taken.
fn stamp_in_name(name: &str) -> Option<DateTime<Utc>> {
    let at = name.find("_backup_")? + "_backup_".len();
    let stamp = name.get(at..at + 15)?;
    NaiveDateTime::parse_from_str(stamp, "%Y%m%d_%H%M%S")
        .ok()
        .map(|t| t.and_utc())
}

/// Imports `file` as a backup of `database`: the new catalog row, `success` with trigger
/// `import`. Its time is the one in its name (`…_backup_YYYYMMDD_HHMMSS…`), else the file's.
///
/// # Errors
/// [`Error::Refused`] when the file does not fit the database (a SQL dump for a SQLite
/// database, a file that is not a SQLite database, or one that does not decompress);
/// [`Error::AlreadyRunning`] while the database backs up; I/O and catalog failures.
pub fn import(runner: &Runner, file: &Path, database: &str) -> Result<BackupRecord> {
    let config = runner.config();
    let db = config.database(database)?;
    let meta = std::fs::metadata(file).map_err(Error::io("cannot read", file))?;
    if !meta.is_file() {
        return Err(Error::Refused(format!("{} is not a file", file.display())));
    }
    let compression = sniff(file)?;
    let name = file.file_name().unwrap_or_default().to_string_lossy();
    let kind = db.target.kind();
    let looks_sql = name.contains(".sql");
    if (kind == Kind::Sqlite) == looks_sql {
        return Err(Error::Refused(format!(
            "{} does not look like a {kind} backup (a {kind} database's backups are {}); import it into a {} database",
            file.display(),
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
    let taken_at = stamp_in_name(&name)
        .or_else(|| meta.modified().ok().map(DateTime::<Utc>::from))
        .unwrap_or_else(|| runner.clock().now());
    let _hold = runner
        .hold(database)?
        .ok_or_else(|| Error::AlreadyRunning(database.to_string()))?;
    let engine = engine::for_database(config, db);
    let dir = config.database_dir(database);
    storage::create_private_dir(&dir).map_err(Error::io("cannot create backup folder", &dir))?;
    let (file_name, path) =
        runner.choose_name(db, compression, false, engine.as_ref(), &dir, taken_at)?;
    let part = dbkeep_model::storage::temp_path(&path, "part");
    // Checked before anything is recorded: a file that is not a backup leaves no trace.
    let (size, sha256, tables) =
        match copy_in(file, &part, compression, &db.target, config.min_free_space) {
            Ok(done) => done,
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
                sha256,
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
    catalog.get(id)?.ok_or_else(|| Error::Catalog {
        path: config.catalog.as_path(),
        message: format!("backup #{id} vanished from the catalog"),
    })
}

/// Copies `file` to `part` (private, synced) while hashing it, then checks it and counts its
/// rows: a SQLite copy is opened (decompressed to a scratch file when compressed, which stops
/// before its disk has less than `min_free_space` free); a dump's COPY blocks are counted as
/// it decompresses.
fn copy_in(
    file: &Path,
    part: &Path,
    compression: Compression,
    target: &Target,
    min_free_space: u64,
) -> Result<(u64, String, TableRows)> {
    let out = storage::create_private_file(part).map_err(Error::io("cannot create", part))?;
    let mut hashing = HashingWriter::new(out);
    let mut source = std::fs::File::open(file).map_err(Error::io("cannot read", file))?;
    dbkeep_model::stream::copy(&mut source, &mut hashing)
        .map_err(Error::io("cannot copy into", part))?;
    let (out, size, sha256) = hashing.finish();
    out.sync_all().map_err(Error::io("cannot sync", part))?;
    let unreadable = |e: std::io::Error| {
        Error::Refused(format!(
            "{} does not decompress ({e}); nothing was imported",
            file.display()
        ))
    };
    let reader = || -> Result<Box<dyn Read + Send>> {
        let f = std::fs::File::open(part).map_err(Error::io("cannot read", part))?;
        pipeline::open_reader(Box::new(f), compression, None).map_err(unreadable)
    };
    let tables = match target {
        Target::Sqlite { .. } => {
            let scratch = dbkeep_model::storage::temp_path(part, "check");
            let checked = (|| {
                let copy = if compression == Compression::None {
                    part.to_path_buf()
                } else {
                    let out = storage::create_private_file(&scratch)
                        .map_err(Error::io("cannot create", &scratch))?;
                    let mut out = storage::LeavesRoom::new(out, &scratch, min_free_space);
                    dbkeep_model::stream::copy(&mut reader()?, &mut out).map_err(|e| {
                        if e.kind() == std::io::ErrorKind::StorageFull {
                            Error::Refused(format!(
                                "{} expands to more than its disk can hold: {e}; nothing was imported",
                                file.display()
                            ))
                        } else {
                            unreadable(e)
                        }
                    })?;
                    scratch.clone()
                };
                SqliteEngine::new(copy).inspect().map_err(|e| {
                    Error::Refused(format!("{}: {e}; nothing was imported", file.display()))
                })
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
    };
    Ok((size, sha256, tables))
}
