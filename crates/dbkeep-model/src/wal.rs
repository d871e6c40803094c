//! PostgreSQL's write-ahead log as dbkeep archives it: the names of the files a server hands
//! to `archive_command`, positions in the log (LSNs), the segments the catalog records, and
//! the base backups that WAL replays onto. The catalog reaches them through [`WalArchive`].

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use crate::error::Result;
use crate::vocab::{BackupId, Compression};

/// A position in the write-ahead log, written `X/Y` (two hexadecimal halves).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(pub u64);

impl FromStr for Lsn {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Lsn, String> {
        let bad =
            || format!("`{s}` is not a WAL position: write it as PostgreSQL does, e.g. 0/16B3748");
        let (high, low) = s.trim().split_once('/').ok_or_else(bad)?;
        let half = |h: &str| {
            (!h.is_empty() && h.len() <= 8)
                .then(|| u32::from_str_radix(h, 16).ok())
                .flatten()
                .ok_or_else(bad)
        };
        Ok(Lsn((u64::from(half(high)?) << 32) | u64::from(half(low)?)))
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

/// The size of a WAL segment as PostgreSQL makes it by default, 16 MiB: what
/// [`segment_start`] and [`Archiver::wrote_since_archiving`] assume (names of another size
/// sort the same way, and pruning goes by the names a base backup's label gives).
pub const SEGMENT_BYTES: u64 = 16 * 1024 * 1024;

/// Where the segment named `name` (`000000010000000000000003`, 16 MiB segments) begins, and
/// its timeline; `None` for any other name.
pub fn segment_start(name: &str) -> Option<(u32, Lsn)> {
    if WalFile::of(name) != Some(WalFile::Segment) {
        return None;
    }
    let part = |i: usize| u64::from_str_radix(&name[i..i + 8], 16).ok();
    let timeline = u32::try_from(part(0)?).ok()?;
    let per_id = 0x1_0000_0000 / SEGMENT_BYTES;
    Some((
        timeline,
        Lsn((part(8)? * per_id + part(16)?) * SEGMENT_BYTES),
    ))
}

/// What a server's archiver says of itself (`pg_stat_archiver`), and where it writes now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archiver {
    /// Pushes that failed since the statistics were reset.
    pub failed_count: u64,
    /// When the last push failed.
    pub last_failed_at: Option<DateTime<Utc>>,
    /// When the last push succeeded.
    pub last_archived_at: Option<DateTime<Utc>>,
    /// The file it last archived.
    pub last_archived_wal: Option<String>,
    /// Where the server writes now.
    pub current: Lsn,
}

impl Archiver {
    /// Whether its last push failed (and none succeeded since).
    pub fn failing(&self) -> bool {
        match (self.last_failed_at, self.last_archived_at) {
            (Some(failed), Some(archived)) => failed > archived,
            (Some(_), None) => true,
            _ => false,
        }
    }

    /// Whether the server wrote past the end of the last segment it archived: a full
    /// segment (or more) waits for the archive.
    pub fn wrote_since_archiving(&self) -> bool {
        self.last_archived_wal
            .as_deref()
            .and_then(segment_start)
            .is_some_and(|(_, start)| self.current.0 > start.0 + SEGMENT_BYTES)
    }
}

/// What kind of file PostgreSQL archived, told by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalFile {
    /// A segment: `000000010000000000000003`.
    Segment,
    /// The last, partial segment of a timeline that a promotion ended: `….partial`.
    Partial,
    /// A base backup's history file: `000000010000000000000002.00000028.backup`.
    BackupHistory,
    /// A timeline's history: `00000002.history`.
    TimelineHistory,
}

impl WalFile {
    /// The kind of file `name` is, or `None` when PostgreSQL never archives a file so named
    /// (which also keeps any other name, `../x` say, out of the archive's folder).
    pub fn of(name: &str) -> Option<WalFile> {
        let hex = |s: &str, n: usize| {
            s.len() == n
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
        };
        if hex(name, 24) {
            return Some(WalFile::Segment);
        }
        if let Some(base) = name.strip_suffix(".partial") {
            return hex(base, 24).then_some(WalFile::Partial);
        }
        if let Some(base) = name.strip_suffix(".history") {
            return hex(base, 8).then_some(WalFile::TimelineHistory);
        }
        if let Some(base) = name.strip_suffix(".backup") {
            let (segment, offset) = base.split_once('.')?;
            return (hex(segment, 24) && hex(offset, 8)).then_some(WalFile::BackupHistory);
        }
        None
    }
}

/// One file of a server's archive, as the catalog records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// The `[[servers]]` entry whose archive holds it.
    pub server: String,
    /// Its name as PostgreSQL gave it (`%f`).
    pub name: String,
    /// SHA-256 of the file PostgreSQL handed over (before compression and encryption).
    pub sha256: String,
    /// Its size as handed over.
    pub raw_bytes: u64,
    /// The size of the stored file.
    pub stored_bytes: u64,
    /// How the stored file is compressed.
    pub compression: Compression,
    /// Whether the stored file is encrypted with age.
    pub encrypted: bool,
    /// When it was durable in the local folder; `None` while it is being written.
    pub archived_at: Option<DateTime<Utc>>,
}

impl Segment {
    /// The stored file's name: its name, the compression's suffix, `.age` when encrypted.
    pub fn file_name(&self) -> String {
        stored_name(&self.name, self.compression, self.encrypted)
    }
}

/// The name a stored archive file of `name` gets.
pub fn stored_name(name: &str, compression: Compression, encrypted: bool) -> String {
    format!(
        "{name}{}{}",
        compression.suffix(),
        if encrypted { ".age" } else { "" }
    )
}

/// What recording a segment found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// It was new: recorded now.
    New,
    /// The same file (same SHA-256) was recorded before: archiving it again changes nothing.
    Again {
        /// Whether the earlier push made it durable.
        archived: bool,
    },
    /// A different file of the same name was recorded before: another cluster writes into
    /// this archive, or this one was restored and went its own way.
    Different {
        /// The recorded file's SHA-256.
        recorded: String,
    },
}

/// A base backup's place in the log, recorded beside its backup row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseBackup {
    /// The backup row holding its file.
    pub backup_id: BackupId,
    /// The `[[servers]]` entry it was taken of.
    pub server: String,
    /// The timeline it began on.
    pub timeline: u32,
    /// Where replay must begin.
    pub start_lsn: Lsn,
    /// The segment holding `start_lsn`, as the server named it (whatever its segment size).
    pub start_wal: String,
    /// Where it became consistent: no recovery may stop before this.
    pub stop_lsn: Lsn,
    /// When it had ended (the earliest time it can be recovered to).
    pub stopped_at: DateTime<Utc>,
}

impl BaseBackup {
    /// The name of the first segment replay needs.
    pub fn first_segment(&self) -> &str {
        &self.start_wal
    }
}

/// Where a base backup sits in the log, as `pg_basebackup` reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalRange {
    /// The timeline it began on.
    pub timeline: u32,
    /// Where replay must begin.
    pub start: Lsn,
    /// The segment holding `start`, as the server named it.
    pub start_wal: String,
    /// Where the copy is consistent.
    pub stop: Lsn,
}

/// Where the archive is recorded: the catalog.
pub trait WalArchive: Send + Sync {
    /// Records `segment` (its `archived_at` not yet set) unless a file of its name is
    /// recorded, and queues it for each of `destinations`; says what it found.
    ///
    /// # Errors
    /// When the catalog cannot be written.
    fn add_segment(&self, segment: &Segment, destinations: &[String]) -> Result<Recorded>;

    /// Marks `name` of `server` durable in the local folder at `at`.
    ///
    /// # Errors
    /// When the catalog cannot be written.
    fn segment_archived(&self, server: &str, name: &str, at: DateTime<Utc>) -> Result<()>;

    /// The recorded file `name` of `server`'s archive.
    ///
    /// # Errors
    /// When the catalog cannot be read.
    fn segment(&self, server: &str, name: &str) -> Result<Option<Segment>>;

    /// Every recorded file of `server`'s archive, by name.
    ///
    /// # Errors
    /// When the catalog cannot be read.
    fn segments(&self, server: &str) -> Result<Vec<Segment>>;

    /// When `server`'s newest archived file was made durable.
    ///
    /// # Errors
    /// When the catalog cannot be read.
    fn last_archived(&self, server: &str) -> Result<Option<DateTime<Utc>>>;

    /// The files of `server` still to send to `destination`, oldest first.
    ///
    /// # Errors
    /// When the catalog cannot be read.
    fn wal_queue(&self, server: &str, destination: &str) -> Result<Vec<String>>;

    /// `name` of `server` arrived at `destination`: it leaves that queue.
    ///
    /// # Errors
    /// When the catalog cannot be written.
    fn wal_sent(&self, server: &str, name: &str, destination: &str) -> Result<()>;

    /// Forgets `names` of `server` (pruned), and their queued sends.
    ///
    /// # Errors
    /// When the catalog cannot be written.
    fn forget_segments(&self, server: &str, names: &[String]) -> Result<()>;

    /// Records the system identifier of the cluster archiving as `server`, unless one is
    /// recorded; returns the one recorded (this one when it was the first).
    ///
    /// # Errors
    /// When the catalog cannot be written.
    fn claim_system(&self, server: &str, system_identifier: &str) -> Result<String>;

    /// The server whose archive the cluster `system_identifier` writes into, if one claimed it.
    ///
    /// # Errors
    /// When the catalog cannot be read.
    fn server_of_system(&self, system_identifier: &str) -> Result<Option<String>>;

    /// Records a base backup's place in the log.
    ///
    /// # Errors
    /// When the catalog cannot be written.
    fn add_base(&self, base: &BaseBackup) -> Result<()>;

    /// `server`'s recorded base backups, oldest first (of any state: the caller joins them
    /// with their backup rows).
    ///
    /// # Errors
    /// When the catalog cannot be read.
    fn bases(&self, server: &str) -> Result<Vec<BaseBackup>>;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn positions_read_and_print_as_postgresql_writes_them() {
        let lsn: Lsn = "0/16B3748".parse().unwrap();
        assert_eq!(lsn.0, 0x16B_3748);
        assert_eq!(lsn.to_string(), "0/16B3748");
        assert_eq!("1A/0".parse::<Lsn>().unwrap().to_string(), "1A/0");
        for bad in ["", "0", "/1", "1/", "G/1", "123456789/0", "0/1/2"] {
            assert!(bad.parse::<Lsn>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_segment_name_gives_its_start() {
        let (tl, start) = segment_start("000000010000000000000003").unwrap();
        assert_eq!((tl, start.to_string()), (1, "0/3000000".to_string()));
        let (tl, start) = segment_start("0000000200000001000000FF").unwrap();
        assert_eq!((tl, start.to_string()), (2, "1/FF000000".to_string()));
        assert_eq!(segment_start("00000002.history"), None);
    }

    #[test]
    fn an_archiver_that_wrote_a_segment_past_its_last_archive_waits() {
        let mut a = Archiver {
            failed_count: 0,
            last_failed_at: None,
            last_archived_at: None,
            last_archived_wal: Some("000000010000000000000003".into()),
            current: "0/4000000".parse().unwrap(),
        };
        assert!(
            !a.wrote_since_archiving(),
            "at the start of the next: nothing waits"
        );
        a.current = "0/5000010".parse().unwrap();
        assert!(a.wrote_since_archiving());
        assert!(!a.failing());
        a.last_failed_at = Some(Utc::now());
        assert!(a.failing());
    }

    #[test]
    fn only_names_postgresql_archives_are_archive_files() {
        assert_eq!(
            WalFile::of("000000010000000000000003"),
            Some(WalFile::Segment)
        );
        assert_eq!(
            WalFile::of("000000010000000000000003.partial"),
            Some(WalFile::Partial)
        );
        assert_eq!(
            WalFile::of("000000010000000000000002.00000028.backup"),
            Some(WalFile::BackupHistory)
        );
        assert_eq!(
            WalFile::of("00000002.history"),
            Some(WalFile::TimelineHistory)
        );
        for bad in [
            "",
            "../000000010000000000000003",
            "00000001000000000000000g",
            "000000010000000000000003.zst",
            "RECOVERYXLOG",
            "0000000100000000000000031",
        ] {
            assert_eq!(WalFile::of(bad), None, "{bad}");
        }
    }
}
