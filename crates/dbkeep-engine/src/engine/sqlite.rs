//! SQLite: a consistent copy of a live database through SQLite's online backup API.
//!
//! The whole copy is one `step(-1)`: it reads every page inside a single read transaction, so
//! a concurrent writer neither restarts it (as small steps would, for ever) nor fails (WAL
//! writers go on; rollback-journal writers wait on their busy timeout for a moment).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use super::{Engine, FileCopy};
use dbkeep_model::cancel::Cancel;
use dbkeep_model::catalog::Kind;
use dbkeep_model::error::{Error, Result};
use dbkeep_model::runlog::RunLog;
use dbkeep_model::stream::TableRows;

/// The first bytes of every SQLite database file (of its 100-byte header).
const HEADER: &[u8; 16] = b"SQLite format 3\0";

/// How long to keep retrying while a writer holds a lock the copy needs.
const BUSY_WAIT: Duration = Duration::from_secs(60);

/// Backs up one SQLite database file.
pub struct SqliteEngine {
    path: PathBuf,
}

impl SqliteEngine {
    /// An engine for the database file at `path`.
    pub fn new(path: PathBuf) -> Self {
        SqliteEngine { path }
    }

    fn fail(&self, what: impl std::fmt::Display) -> Error {
        Error::Engine(format!("SQLite database {}: {what}", self.path.display()))
    }

    fn open_source(&self) -> Result<Connection> {
        let meta = std::fs::metadata(&self.path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                self.fail("no such file; check the `url` of this database")
            } else {
                self.fail(format!("cannot read: {e}"))
            }
        })?;
        if !meta.is_file() {
            return Err(self.fail("is not a regular file"));
        }
        if meta.len() == 0 {
            return Err(self.fail("is empty (0 bytes), not a SQLite database"));
        }
        // The smallest database is one 512-byte page.
        if meta.len() < 512 {
            return Err(self.fail(format!(
                "is too short to be a SQLite database ({} bytes); check the `url` of this database",
                meta.len()
            )));
        }
        self.check_header()?;
        // Read-only and never created: a wrong path must not leave an empty database behind.
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags).map_err(|e| self.fail(e))?;
        conn.busy_timeout(BUSY_WAIT).map_err(|e| self.fail(e))?;
        Ok(conn)
    }
}

impl Engine for SqliteEngine {
    fn kind(&self) -> Kind {
        Kind::Sqlite
    }

    fn file_name(&self, stamp: &str) -> (String, &'static str) {
        (format!("sqlite_backup_{stamp}"), ".db")
    }

    fn dump(
        &self,
        out: &mut dyn Write,
        scratch: &Path,
        _cancel: &Cancel,
        _log: &RunLog,
    ) -> Result<Option<TableRows>> {
        dbkeep_model::storage::create_private_file(scratch)
            .map_err(Error::io("cannot create", scratch))?;
        self.backup_into(scratch)?;
        let rows = self.check_copy(scratch)?;
        let mut file = std::fs::File::open(scratch).map_err(Error::io("cannot read", scratch))?;
        dbkeep_model::stream::copy(&mut file, out)
            .map_err(Error::io("cannot write the copy of", scratch))?;
        Ok(Some(rows))
    }

    fn file_copy(&self) -> Option<&dyn FileCopy> {
        Some(self)
    }

    fn restore(
        &self,
        source: &mut dyn std::io::Read,
        _reopen: Option<super::Reopen<'_>>,
        opts: &super::RestoreOptions,
        cancel: &Cancel,
        log: &RunLog,
    ) -> Result<usize> {
        let target = &self.path;
        if std::fs::symlink_metadata(target).is_ok() && !opts.force {
            return Err(Error::Refused(format!(
                "{} exists; pass --force to replace it (stop the application first)",
                target.display()
            )));
        }
        let name = target.file_name().unwrap_or_default().to_string_lossy();
        let part = target.with_file_name(format!(".{name}.restore.part"));
        let _ = dbkeep_model::storage::remove_if_exists(&part);
        let written = (|| {
            let mut file = dbkeep_model::storage::create_private_file(&part)
                .map_err(Error::io("cannot create", &part))?;
            let mut out = CancellableWriter {
                inner: dbkeep_model::storage::LeavesRoom::new(
                    &mut file,
                    &part,
                    opts.min_free_space,
                ),
                cancel,
            };
            let bytes = dbkeep_model::stream::copy(source, &mut out)
                .map_err(Error::io("cannot write", &part))?;
            file.sync_all().map_err(Error::io("cannot sync", &part))?;
            self.check_copy(&part)?;
            Ok::<u64, Error>(bytes)
        })();
        let bytes = match written {
            Ok(bytes) => bytes,
            Err(e) => {
                let _ = dbkeep_model::storage::remove_if_exists(&part);
                return Err(cancel.reason().map_or(e, Error::Cancelled));
            }
        };
        log.step(format_args!(
            "wrote and checked {} beside the target",
            indicatif::HumanBytes(bytes)
        ));
        // The restored file takes the place of the old one: with its mode and owner, so that
        // the application can still open it.
        if let Ok(old) = std::fs::metadata(target) {
            use std::os::unix::fs::MetadataExt;
            let _ = std::fs::set_permissions(&part, old.permissions());
            let _ = std::os::unix::fs::chown(&part, Some(old.uid()), Some(old.gid()));
        }
        // The target's own journal, WAL and shared memory would be replayed on top of the
        // restored file, giving back the wrong data. They are moved aside first, and back if
        // the swap fails, so that a failed restore loses nothing of the live database.
        let mut aside = Vec::new();
        for side in ["-wal", "-shm", "-journal"] {
            let mut p = target.as_os_str().to_os_string();
            p.push(side);
            let file = std::path::PathBuf::from(p);
            if std::fs::symlink_metadata(&file).is_ok() {
                let mut kept = file.as_os_str().to_os_string();
                kept.push(".dbkeep-replaced");
                let kept = std::path::PathBuf::from(kept);
                if let Err(e) = std::fs::rename(&file, &kept) {
                    put_back(&aside);
                    let _ = dbkeep_model::storage::remove_if_exists(&part);
                    return Err(Error::io("cannot move aside", &file)(e));
                }
                aside.push((file, kept));
            }
        }
        if let Err(e) = std::fs::rename(&part, target) {
            put_back(&aside);
            let _ = dbkeep_model::storage::remove_if_exists(&part);
            return Err(Error::io("cannot rename into place", &part)(e));
        }
        for (_, kept) in &aside {
            let _ = dbkeep_model::storage::remove_if_exists(kept);
        }
        if let Some(dir) = target.parent() {
            dbkeep_model::storage::sync_dir(dir).map_err(Error::io("cannot sync", dir))?;
        }
        log.step(format_args!("renamed into place as {}", target.display()));
        Ok(1)
    }

    fn discard(&self, _cancel: &Cancel) -> Result<()> {
        for side in ["", "-wal", "-shm", "-journal"] {
            let mut p = self.path.as_os_str().to_os_string();
            p.push(side);
            dbkeep_model::storage::remove_if_exists(Path::new(&p))
                .map_err(Error::io("cannot remove", Path::new(&p)))?;
        }
        Ok(())
    }

    fn table_count(&self, _cancel: &Cancel) -> Result<u64> {
        let conn = self.open_immutable(&self.path)?;
        conn.query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
            [],
            |row| row.get::<_, i64>(0),
        )
        .map(|n| n.max(0) as u64)
        .map_err(|e| self.fail(format!("cannot count the tables: {e}")))
    }

    fn count_rows(&self, tables: &[String], _cancel: &Cancel) -> Result<TableRows> {
        let conn = self.open_immutable(&self.path)?;
        count(&conn, tables).map_err(|e| self.fail(format!("cannot count rows: {e}")))
    }

    fn health(&self, what: &str, _cancel: &Cancel) -> Vec<dbkeep_model::health::Finding> {
        use dbkeep_model::health::{Finding, Level};
        let check = format!("{what}: readable");
        let shown = self.path.display();
        // Opened as a backup opens it (read-only, not immutable): a WAL database whose folder
        // cannot be written fails here as it would fail at night.
        let opened = rusqlite::Connection::open_with_flags(
            &self.path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .and_then(|conn| {
            conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
                r.get::<_, i64>(0)
            })
        })
        .map_err(|e| self.fail(e));
        vec![match (std::fs::metadata(&self.path), opened) {
            (Err(e), _) => Finding::bad(
                Level::Fail,
                check,
                format!("{shown}: {e}"),
                "check its url: the SQLite file must exist and be readable by the user dbkeep runs as",
            ),
            (Ok(_), Err(e)) => Finding::bad(
                Level::Fail,
                check,
                format!("{shown}: {e}"),
                "check that it is a SQLite database, readable by the user dbkeep runs as",
            ),
            (Ok(meta), Ok(objects)) => Finding::ok(
                check,
                format!(
                    "{shown} ({}, {objects} object(s))",
                    indicatif::HumanBytes(meta.len())
                ),
            ),
        }]
    }

    fn exists(&self, _cancel: &Cancel) -> Result<bool> {
        // A link counts as there, whether or not it leads anywhere: a restore never follows one.
        match std::fs::symlink_metadata(&self.path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("cannot look for", &self.path)(e)),
        }
    }
}

impl FileCopy for SqliteEngine {
    fn copy_to_file(&self, dest: &Path) -> Result<()> {
        self.backup_into(dest)
    }

    fn check_copy(&self, copy: &Path) -> Result<TableRows> {
        // `immutable`: nothing else touches the copy, and a read-only connection to a copy of a
        // WAL database would otherwise leave -wal and -shm files behind it.
        let mut uri = url::Url::from_file_path(copy)
            .map_err(|()| self.fail(format!("{} is not an absolute path", copy.display())))?;
        uri.set_query(Some("immutable=1"));
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(uri.as_str(), flags).map_err(|e| self.fail(e))?;
        let check: String = conn
            .query_row("PRAGMA quick_check", [], |row| row.get(0))
            .map_err(|e| self.fail(format!("the copy failed its quick check: {e}")))?;
        if check != "ok" {
            return Err(self.fail(format!("the copy failed its quick check: {check}")));
        }
        let tables = table_names(&conn).map_err(|e| self.fail(e))?;
        count(&conn, &tables)
            .map_err(|e| self.fail(format!("cannot count the rows of the copy: {e}")))
    }
}

/// Moves side files set aside by a restore back where they were.
fn put_back(aside: &[(std::path::PathBuf, std::path::PathBuf)]) {
    for (file, kept) in aside {
        let _ = std::fs::rename(kept, file);
    }
}

/// The database's own tables (not SQLite's internal ones), by name.
fn table_names(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
         AND coalesce(sql, '') NOT LIKE 'CREATE VIRTUAL TABLE%' ORDER BY name",
    )?;
    stmt.query_map([], |row| row.get(0))?.collect()
}

/// The rows of each of `tables`.
fn count(conn: &Connection, tables: &[String]) -> rusqlite::Result<TableRows> {
    tables
        .iter()
        .map(|t| {
            let quoted = format!("\"{}\"", t.replace('"', "\"\""));
            let n: i64 =
                conn.query_row(&format!("SELECT count(*) FROM {quoted}"), [], |r| r.get(0))?;
            Ok((t.clone(), n.max(0) as u64))
        })
        .collect()
}

/// Fails writes once the restore is cancelled.
struct CancellableWriter<'a, W> {
    inner: W,
    cancel: &'a Cancel,
}

impl<W: std::io::Write> std::io::Write for CancellableWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(reason) = self.cancel.reason() {
            return Err(std::io::Error::other(reason));
        }
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl SqliteEngine {
    /// Checks that the file is a SQLite database that passes its quick check, and counts the
    /// rows of its tables (an imported backup, say).
    ///
    /// # Errors
    /// [`Error::Engine`] when it is not a database or is damaged.
    pub fn inspect(&self) -> Result<TableRows> {
        self.check_header()?;
        self.check_copy(&self.path)
    }

    /// Opens `file` read-only and immutable: nothing else may change it meanwhile, and no -wal
    /// or -shm file is made beside it (a copy keeps its source's WAL flag).
    fn open_immutable(&self, file: &Path) -> Result<Connection> {
        let mut uri = url::Url::from_file_path(file)
            .map_err(|()| self.fail(format!("{} is not an absolute path", file.display())))?;
        uri.set_query(Some("immutable=1"));
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        Connection::open_with_flags(uri.as_str(), flags).map_err(|e| self.fail(e))
    }

    /// Runs SQLite's full `PRAGMA integrity_check` on the database file.
    ///
    /// # Errors
    /// [`Error::Engine`] with SQLite's findings when it is not `ok`.
    pub fn integrity_check(&self) -> Result<()> {
        let conn = self.open_immutable(&self.path)?;
        let mut stmt = conn
            .prepare("PRAGMA integrity_check")
            .map_err(|e| self.fail(e))?;
        let findings: Vec<String> = stmt
            .query_map([], |row| row.get(0))
            .map_err(|e| self.fail(e))?
            .collect::<rusqlite::Result<_>>()
            .map_err(|e| self.fail(e))?;
        if findings == ["ok"] {
            Ok(())
        } else {
            Err(self.fail(format!("integrity_check failed: {}", findings.join("; "))))
        }
    }

    /// Refuses a file that does not start with SQLite's header: SQLite itself would treat a
    /// tiny non-database as an empty database and back up nothing, "successfully".
    fn check_header(&self) -> Result<()> {
        let mut header = [0u8; HEADER.len()];
        let read = std::fs::File::open(&self.path)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut header));
        match read {
            Ok(()) if header == *HEADER => Ok(()),
            Ok(()) => Err(self.fail(
                "is not a SQLite database (it does not start with the SQLite header); check the `url` of this database",
            )),
            Err(e) => Err(self.fail(format!("cannot read: {e}"))),
        }
    }

    /// An error while writing the copy at `dest`: a full disk is the backup folder's, not the
    /// source database's.
    fn copy_error(&self, dest: &Path, e: rusqlite::Error) -> Error {
        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
            let folder = dest.parent().unwrap_or(dest);
            return Error::Engine(format!(
                "the backup folder {} is full: no space left for the copy of {}; free some space or move backup_dir",
                folder.display(),
                self.path.display()
            ));
        }
        self.fail(e)
    }

    fn backup_into(&self, dest: &Path) -> Result<()> {
        let started = Instant::now();
        let src = self.open_source()?;
        let mut dst = Connection::open_with_flags(
            dest,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| self.fail(format!("cannot open the copy {}: {e}", dest.display())))?;
        // The copy is fsynced and renamed by the caller; a journal would only cost time.
        dst.pragma_update(None, "journal_mode", "OFF")
            .map_err(|e| self.fail(e))?;
        dst.pragma_update(None, "synchronous", "OFF")
            .map_err(|e| self.fail(e))?;
        {
            let backup = Backup::new(&src, &mut dst).map_err(|e| self.fail(e))?;
            let deadline = Instant::now() + BUSY_WAIT;
            loop {
                match backup.step(-1).map_err(|e| self.copy_error(dest, e))? {
                    StepResult::Done => break,
                    StepResult::More => {}
                    StepResult::Busy | StepResult::Locked if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    StepResult::Busy | StepResult::Locked => {
                        return Err(self.fail(
                            "stayed locked by another connection for 60 s; try again later",
                        ));
                    }
                    _ => {}
                }
            }
        }
        drop(src);
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "sqlite online backup copied"
        );
        dst.close().map_err(|(_, e)| self.copy_error(dest, e))?;
        Ok(())
    }
}
