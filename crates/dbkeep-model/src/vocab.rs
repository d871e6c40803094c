//! The words dbkeep's parts share: the kinds of database, the compressions, the states and
//! triggers of a backup. They live here so that the catalog and the configuration need not
//! import each other; both re-export them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An enum stored and printed as lowercase words, with `as_str`, `FromStr` and `Display`.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every value, in the order declared.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The word stored in the catalog and printed by the CLI.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(format!(concat!("unknown ", stringify!($name), " `{}`: expected one of ", $($text, " "),+), s)),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use string_enum;

string_enum! {
    /// The state of a backup attempt.
    Status {
        /// Running now (or interrupted, until the next run notices).
        InProgress => "in_progress",
        /// Stored, checked and recorded.
        Success => "success",
        /// Ended without a stored file; `error` says why.
        Failed => "failed",
    }
}
string_enum! {
    /// What started a backup.
    Trigger {
        /// A person, through the CLI.
        Manual => "manual",
        /// The scheduler.
        Scheduled => "scheduled",
        /// The HTTP API.
        Api => "api",
        /// The web admin's "Back up now" button.
        Web => "web",
        /// An outside backup file added with `dbkeep import`.
        Import => "import",
    }
}
string_enum! {
    /// The kind of database backed up.
    Kind {
        /// A SQLite file.
        Sqlite => "sqlite",
        /// A PostgreSQL database.
        Postgres => "postgres",
        /// A MySQL or MariaDB database.
        Mysql => "mysql",
        /// A whole PostgreSQL cluster's base backup (`pg_basebackup`), replayed with its
        /// server's archived WAL.
        PostgresBase => "postgres_base",
    }
}

/// How a backup stream is compressed before it is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// gzip (deflate), readable with `gunzip`.
    Gzip,
    /// Zstandard, readable with `zstd -d`.
    Zstd,
    /// Stored as produced.
    None,
}

impl Compression {
    /// The name used in the configuration and the catalog.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::None => "none",
        }
    }

    /// The file-name suffix this compression adds (`.gz`, `.zst` or nothing).
    pub fn suffix(self) -> &'static str {
        match self {
            Compression::Gzip => ".gz",
            Compression::Zstd => ".zst",
            Compression::None => "",
        }
    }
}

impl FromStr for Compression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "gzip" => Ok(Compression::Gzip),
            "zstd" => Ok(Compression::Zstd),
            "none" => Ok(Compression::None),
            _ => Err(format!(
                "unknown compression `{s}`: expected gzip, zstd or none"
            )),
        }
    }
}

/// What can be notified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A backup started (pings only).
    Start,
    /// A backup succeeded.
    Success,
    /// A backup failed.
    Failure,
    /// A successful backup is less than half the size of the one before it.
    Suspicious,
    /// A verification (or restore drill) failed.
    VerifyFailed,
    /// No successful backup within `stale_after`.
    Stale,
    /// A backup could not be copied to an off-site destination.
    OffsiteFailed,
    /// The disk of the local backup folder fills up within a week at the current growth.
    DiskFilling,
    /// Discovery found a database on a server (new, or back after it was gone).
    DatabaseFound,
    /// A database discovery had found is no longer on its server (or is now excluded).
    DatabaseGone,
    /// A server that archives WAL wrote, and no WAL reached its archive for longer than
    /// `wal_stalled_after`.
    WalArchiveStalled,
    /// A server's `archive_command` fails (`pg_stat_archiver.failed_count` rising).
    WalArchiveFailing,
    /// `dbkeep notify test`.
    Test,
}

impl EventKind {
    /// The word used in configuration and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Start => "start",
            EventKind::Success => "success",
            EventKind::Failure => "failure",
            EventKind::Suspicious => "suspicious",
            EventKind::VerifyFailed => "verify_failed",
            EventKind::Stale => "stale",
            EventKind::OffsiteFailed => "offsite_failed",
            EventKind::DiskFilling => "disk_filling",
            EventKind::DatabaseFound => "database_found",
            EventKind::DatabaseGone => "database_gone",
            EventKind::WalArchiveStalled => "wal_archive_stalled",
            EventKind::WalArchiveFailing => "wal_archive_failing",
            EventKind::Test => "test",
        }
    }

    /// The event a configuration's `on` names (`start` and `test` cannot be asked for).
    pub fn from_word(word: &str) -> Option<EventKind> {
        [
            EventKind::Success,
            EventKind::Failure,
            EventKind::Suspicious,
            EventKind::VerifyFailed,
            EventKind::Stale,
            EventKind::OffsiteFailed,
            EventKind::DiskFilling,
            EventKind::DatabaseFound,
            EventKind::DatabaseGone,
            EventKind::WalArchiveStalled,
            EventKind::WalArchiveFailing,
        ]
        .into_iter()
        .find(|k| k.as_str() == word)
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What dbkeep appends to the name of an encrypted backup file.
pub const ENCRYPTED_SUFFIX: &str = ".age";

/// Whether a stored file is encrypted: dbkeep names its own files, ending them in `.age`.
pub fn is_encrypted(file_name: &str) -> bool {
    file_name.ends_with(ENCRYPTED_SUFFIX)
}

/// The identifier of one backup attempt.
pub type BackupId = i64;
