//! Database engines: each kind of database knows how to produce a consistent copy of itself.

mod basebackup;
pub mod child;
mod health;
pub mod listing;
mod mysql;
mod postgres;
mod sqlite;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use dbkeep_config::config::{Config, DatabaseConfig, Target};
use dbkeep_model::cancel::Cancel;
use dbkeep_model::catalog::Kind;
use dbkeep_model::error::Result;
use dbkeep_model::runlog::RunLog;
use dbkeep_model::stream::{RowFormat, TableRows};

pub use basebackup::BaseBackupEngine;
pub use mysql::MysqlEngine;
pub use postgres::PostgresEngine;
pub use sqlite::SqliteEngine;

/// A kind of database that dbkeep can back up.
pub trait Engine: Send + Sync {
    /// Which kind this is, as recorded in the catalog.
    fn kind(&self) -> Kind;

    /// The backup file's base name for a backup taken at `stamp` (`YYYYMMDD_HHMMSS`), before
    /// any collision suffix and compression suffix: e.g. `sqlite_backup_20260101_000000.db`.
    fn file_name(&self, stamp: &str) -> (String, &'static str);

    /// Streams a consistent copy of the database into `out`. `scratch` is a path (in the
    /// backup folder, which the caller removes afterwards) for any intermediate file. When
    /// `cancel` is raised the engine stops as soon as it can (killing any child process).
    /// What the database tool says (warnings too, secrets redacted) goes to `log`. Returns each
    /// table's rows when the engine counted them itself; an engine whose stream a tap can count
    /// ([`Engine::stream_rows`]) returns `None`.
    ///
    /// # Errors
    /// [`dbkeep_model::error::Error::Engine`] with the database tool's own message when no consistent
    /// copy could be made; I/O errors from `out`.
    fn dump(
        &self,
        out: &mut dyn Write,
        scratch: &Path,
        cancel: &Cancel,
        log: &RunLog,
    ) -> Result<Option<TableRows>>;

    /// How this engine's dump stream holds its rows, so the pipeline counts them as they pass
    /// (no second pass); `None` when the engine counts them itself.
    fn stream_rows(&self) -> Option<RowFormat> {
        None
    }

    /// The engine's whole-file copy, when its native copy is a file (SQLite's online backup):
    /// an uncompressed backup then needs no second pass, and since such a copy yields nothing
    /// until it is done, the stall clock starts with its first byte.
    fn file_copy(&self) -> Option<&dyn FileCopy> {
        None
    }

    /// Where the last dump sits in the write-ahead log, for an engine whose dumps are base
    /// backups that WAL replays onto (`None` for every other).
    fn wal_range(&self) -> Option<dbkeep_model::wal::WalRange> {
        None
    }

    /// Loads `source`, a backup's uncompressed stream, into this engine's database. An existing
    /// database with content is refused unless `opts.force`; a failed load leaves the target as
    /// it was. `reopen`, when given, reads the same stream again from its start: a load over
    /// several connections (`opts.jobs`) reads it once per connection. Returns how many
    /// connections loaded it.
    ///
    /// # Errors
    /// [`dbkeep_model::error::Error::Refused`] when the target has content and `opts.force` is not set;
    /// [`dbkeep_model::error::Error::Engine`] with the tool's own message when the load fails.
    fn restore(
        &self,
        source: &mut dyn Read,
        reopen: Option<Reopen<'_>>,
        opts: &RestoreOptions,
        cancel: &Cancel,
        log: &RunLog,
    ) -> Result<usize>;

    /// Writes the server's roles into `out` (PostgreSQL: `pg_dumpall --globals-only
    /// --no-role-passwords`), to store beside a backup.
    ///
    /// # Errors
    /// [`dbkeep_model::error::Error::Engine`] with the tool's message; for a kind of database without server
    /// roles, always.
    fn dump_globals(&self, _out: &mut dyn Write, _cancel: &Cancel, _log: &RunLog) -> Result<()> {
        Err(dbkeep_model::error::Error::Engine(
            "this kind of database has no server roles to store".into(),
        ))
    }

    /// Removes this engine's target altogether: a throwaway restore's file or database.
    ///
    /// # Errors
    /// When it exists and cannot be removed.
    fn discard(&self, cancel: &Cancel) -> Result<()>;

    /// The rows of each of `tables` (named as the backup recorded them) in this engine's
    /// database: after a restore, to compare with what the backup held.
    ///
    /// # Errors
    /// [`dbkeep_model::error::Error::Engine`] when a table cannot be counted (it is missing, say).
    fn count_rows(&self, tables: &[String], cancel: &Cancel) -> Result<TableRows>;

    /// How many tables of the user's (not the database system's own) this engine's database
    /// holds: after a restore of a file without recorded tables, to tell a restore from one
    /// that made nothing.
    ///
    /// # Errors
    /// [`dbkeep_model::error::Error::Engine`] when the database cannot be asked.
    fn table_count(&self, cancel: &Cancel) -> Result<u64>;

    /// Whether this engine's database is there at all: the SQLite file, or the database on
    /// its server (before a restore that must create it, or must not).
    ///
    /// # Errors
    /// [`dbkeep_model::error::Error::Engine`] when the server cannot be asked.
    fn exists(&self, cancel: &Cancel) -> Result<bool>;

    /// What `dbkeep doctor` checks of this engine's database before a night's backup needs it:
    /// reachable with its credentials, the dump tool found and fit for the server, privileges
    /// enough for every table. `what` begins each check's name (`database app`).
    fn health(&self, what: &str, cancel: &Cancel) -> Vec<dbkeep_model::health::Finding>;
}

/// A native copy that is a whole database file.
pub trait FileCopy: Send + Sync {
    /// Writes a consistent copy straight into the existing empty file `dest`.
    ///
    /// # Errors
    /// [`dbkeep_model::error::Error::Engine`] when no consistent copy could be made.
    fn copy_to_file(&self, dest: &Path) -> Result<()>;

    /// Checks a copy before it counts as a success, and counts its tables' rows. Runs while
    /// the caller hashes and syncs the same file.
    ///
    /// # Errors
    /// [`dbkeep_model::error::Error::Engine`] when the copy is damaged.
    fn check_copy(&self, copy: &Path) -> Result<TableRows>;
}

/// Opens a backup's uncompressed stream again from its start, for one more connection of a
/// parallel restore.
pub type Reopen<'a> = &'a (dyn Fn() -> std::io::Result<Box<dyn Read + Send>> + Sync);

/// How a restore may treat its target.
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    /// Replace a target that has content.
    pub force: bool,
    /// Create the target database first (PostgreSQL).
    pub create: bool,
    /// Leave the dump's owners and privileges out (PostgreSQL, onto another server).
    pub leave: dbkeep_model::stream::Leave,
    /// Create the roles stored beside the backup that the target server lacks, first.
    pub with_globals: bool,
    /// Connections that load table data at once when restoring into a database the restore
    /// creates (PostgreSQL); 0 or 1 loads over one connection, in one transaction.
    pub jobs: usize,
    /// Read the backup from this off-site destination's copy instead of the local file.
    pub from: Option<String>,
    /// The stored roles themselves (`pg_dumpall --globals-only`), filled in by the restore when
    /// `with_globals` is set: the engine creates the missing ones in the load's transaction.
    pub globals: Option<String>,
    /// The free space a restored file must leave on its disk (SQLite), filled in by the
    /// restore from `min_free_space`.
    pub min_free_space: u64,
}

/// The engine for a target (a configured database's, or any other, such as a restore's).
pub fn for_target(config: &Config, target: &Target) -> Box<dyn Engine> {
    match target {
        Target::Sqlite { path } => Box::new(SqliteEngine::new(path.clone())),
        Target::Postgres(pg) => Box::new(PostgresEngine::new(
            pg.clone(),
            config
                .pg_dump_path
                .clone()
                .unwrap_or_else(|| PathBuf::from("pg_dump")),
        )),
        Target::PostgresBase(server) => Box::new(BaseBackupEngine::new(
            server.clone(),
            config
                .pg_dump_path
                .clone()
                .unwrap_or_else(|| PathBuf::from("pg_dump")),
        )),
        Target::Mysql(server) => Box::new(MysqlEngine::new(
            server.clone(),
            config.mysqldump_path.clone(),
            config.mysql_path.clone(),
        )),
    }
}

/// The engine for a configured database.
pub fn for_database(config: &Config, db: &DatabaseConfig) -> Box<dyn Engine> {
    for_target(config, &db.target)
}
