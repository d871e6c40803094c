//! The library's error type: every failure names what it was doing and how to fix it.

use std::io;
use std::path::{Path, PathBuf};

/// Anything that can go wrong in dbkeep's library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid; nothing was done.
    #[error(transparent)]
    Config(#[from] ConfigError),

    /// The catalog database could not be opened, migrated, read or written.
    #[error("catalog {path}: {message}")]
    Catalog {
        /// The catalog file.
        path: PathBuf,
        /// What went wrong, in words.
        message: String,
    },

    /// A catalog row that this version cannot read (asked for by id; listings leave it out).
    #[error("{0}; correct or delete that row (or use the dbkeep that wrote it)")]
    Unreadable(Unreadable),

    /// A file-system operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What dbkeep was doing, naming the file.
        context: String,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },

    /// The database engine (SQLite, `pg_dump`) failed to produce a consistent copy.
    #[error("{0}")]
    Engine(String),

    /// A database name that the configuration does not define.
    #[error(
        "no database named `{name}` in the configuration; {}",
        known_names(known)
    )]
    UnknownDatabase {
        /// The name asked for.
        name: String,
        /// The names the configuration defines.
        known: Vec<String>,
    },

    /// The backup was stopped from outside: a timeout, a stall or shutdown.
    #[error("{0}")]
    Cancelled(String),

    /// dbkeep would overwrite or destroy something it was not told to (a restore onto a target
    /// with content, a backup whose checksum no longer matches).
    #[error("{0}")]
    Refused(String),

    /// The thing asked for (a backup id) is not in the catalog.
    #[error("{0}")]
    NotFound(String),

    /// The operating system's random source failed.
    #[error("no random numbers: {0}")]
    NoRandom(String),

    /// A backup of this database, or a restore over it, is running already (in this process
    /// or another).
    #[error("a backup of {0}, or a restore over it, is already running; wait for it to finish")]
    AlreadyRunning(String),
}

impl From<Unreadable> for Error {
    fn from(row: Unreadable) -> Error {
        Error::Unreadable(row)
    }
}

/// A configuration problem, naming the file, the key and (where known) the line.
#[derive(Debug, thiserror::Error)]
#[error("{}: {}{}", path.display(), line.map(|l| format!("line {l}: ")).unwrap_or_default(), message)]
pub struct ConfigError {
    /// The configuration file (or the environment variable's name) at fault.
    pub path: PathBuf,
    /// The 1-based line of the offending key, when the parser knows it.
    pub line: Option<usize>,
    /// What is wrong and what is expected.
    pub message: String,
}

/// A backup's row that this version cannot read: a word it does not know (a newer version
/// wrote it, or a hand edit), a time it cannot parse. Listings leave it out and go on with
/// the other rows; asked for by id, it is this error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("backup #{id} in the catalog cannot be read: its `{column}` is {value} ({why})")]
pub struct Unreadable {
    /// The row's id.
    pub id: crate::vocab::BackupId,
    /// The row's database, when that column reads.
    pub database: Option<String>,
    /// The first column that does not read.
    pub column: &'static str,
    /// What that column holds, as a message shows it (`'bogus'`, `NULL`).
    pub value: String,
    /// Why it does not read, in words.
    pub why: String,
}

/// Shorthand for results with dbkeep's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with what was being done to which file.
    pub fn io(action: &str, path: &Path) -> impl FnOnce(io::Error) -> Error {
        let context = format!("{action} {}", path.display());
        move |source| Error::Io { context, source }
    }

    /// True when the error is the user's input (configuration, names), not a failed run.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Error::Config(_)
                | Error::UnknownDatabase { .. }
                | Error::Refused(_)
                | Error::NotFound(_)
        )
    }
}

fn known_names(known: &[String]) -> String {
    if known.is_empty() {
        "it defines none yet: add a [[databases]] entry".to_string()
    } else {
        format!("configured: {}", known.join(", "))
    }
}
