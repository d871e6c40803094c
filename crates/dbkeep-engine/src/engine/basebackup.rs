//! A whole PostgreSQL cluster's base backup: `pg_basebackup` writing one tar to its standard
//! output (`-D - -Ft`), without WAL (`-X none`: the archive holds it), after a fast
//! checkpoint (the backup starts at once rather than after the next timed checkpoint, at the
//! price of a burst of writes). Where the copy sits in the log is read from the stream as it
//! passes (its `backup_label` and `backup_manifest`) and kept for the catalog: where replay
//! begins and where the copy is consistent.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use super::Engine;
use super::child::{Family, Tool};
use super::postgres::PostgresEngine;
use dbkeep_config::config::ServerTarget;
use dbkeep_model::cancel::Cancel;
use dbkeep_model::catalog::Kind;
use dbkeep_model::error::{Error, Result};
use dbkeep_model::health::{Finding, Level};
use dbkeep_model::runlog::RunLog;
use dbkeep_model::stream::TableRows;
use dbkeep_model::wal::{Archiver, Lsn, WalRange};

const HINT: &str = "install the PostgreSQL client tools (Debian: postgresql-client) of the server's version or newer, beside pg_dump_path";

/// Base backups of one PostgreSQL server with `pg_basebackup`.
pub struct BaseBackupEngine {
    target: ServerTarget,
    pg: PostgresEngine,
    found: Mutex<Option<WalRange>>,
}

impl BaseBackupEngine {
    /// An engine for the server of `target`, running the `pg_basebackup` beside `pg_dump`.
    pub fn new(target: ServerTarget, pg_dump: PathBuf) -> Self {
        BaseBackupEngine {
            pg: PostgresEngine::new(target.clone(), pg_dump),
            target,
            found: Mutex::new(None),
        }
    }

    /// What the server's archiver says of itself, and where the server writes now.
    ///
    /// # Errors
    /// When the server cannot be asked.
    pub fn archiver(&self, cancel: &Cancel) -> Result<Archiver> {
        let url = super::listing::with_connect_timeout(&self.target.url);
        let line = self.pg.query(
            &url,
            "SELECT failed_count, coalesce(extract(epoch FROM last_failed_time)::text, ''), \
               coalesce(extract(epoch FROM last_archived_time)::text, ''), \
               coalesce(last_archived_wal, ''), pg_current_wal_lsn() FROM pg_stat_archiver",
            cancel,
        )?;
        let fields: Vec<&str> = line.split('|').collect();
        let bad = || Error::Engine(format!("pg_stat_archiver said `{line}`"));
        let time = |s: &str| {
            s.parse::<f64>()
                .ok()
                .and_then(|secs| chrono::DateTime::from_timestamp_millis((secs * 1000.0) as i64))
        };
        let [failed, last_failed, last_archived, wal, current] = fields.as_slice() else {
            return Err(bad());
        };
        Ok(Archiver {
            failed_count: failed.parse().map_err(|_| bad())?,
            last_failed_at: time(last_failed),
            last_archived_at: time(last_archived),
            last_archived_wal: (!wal.is_empty()).then(|| wal.to_string()),
            current: current.parse().map_err(|_| bad())?,
        })
    }

    fn refused(&self) -> Error {
        Error::Refused(
            "a base backup is restored to a point in time with `dbkeep restore --server NAME --at TIME --to-dir PATH`, never into a database".into(),
        )
    }
}

/// Watches the tar stream on its way out for the two files that say where the copy sits in
/// the log: `backup_label` (its first entry: `START WAL LOCATION`, `START TIMELINE`) and
/// `backup_manifest` (its last: the `End-LSN` of its `WAL-Ranges`, kept from its tail only).
struct TarWatch<'a> {
    out: &'a mut dyn Write,
    header: Vec<u8>,
    /// Bytes of the current entry's data still to come, and its padding after them.
    data_left: u64,
    pad_left: u64,
    capture: Capture,
    label: Vec<u8>,
    manifest_tail: Vec<u8>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Capture {
    None,
    Label,
    Manifest,
}

/// The most of `backup_label` kept (it is a few lines), and of the manifest's tail.
const LABEL_MAX: usize = 64 * 1024;
const TAIL_MAX: usize = 16 * 1024;

impl<'a> TarWatch<'a> {
    fn new(out: &'a mut dyn Write) -> Self {
        TarWatch {
            out,
            header: Vec::with_capacity(512),
            data_left: 0,
            pad_left: 0,
            capture: Capture::None,
            label: Vec::new(),
            manifest_tail: Vec::new(),
        }
    }

    fn observe(&mut self, mut buf: &[u8]) {
        while !buf.is_empty() {
            if self.data_left > 0 {
                let n = buf
                    .len()
                    .min(usize::try_from(self.data_left).unwrap_or(usize::MAX));
                let part = &buf[..n];
                match self.capture {
                    Capture::Label if self.label.len() < LABEL_MAX => {
                        self.label.extend_from_slice(part)
                    }
                    Capture::Manifest => {
                        self.manifest_tail.extend_from_slice(part);
                        if self.manifest_tail.len() > 2 * TAIL_MAX {
                            let cut = self.manifest_tail.len() - TAIL_MAX;
                            self.manifest_tail.drain(..cut);
                        }
                    }
                    _ => {}
                }
                self.data_left -= n as u64;
                buf = &buf[n..];
                continue;
            }
            if self.pad_left > 0 {
                let n = buf
                    .len()
                    .min(usize::try_from(self.pad_left).unwrap_or(usize::MAX));
                self.pad_left -= n as u64;
                buf = &buf[n..];
                continue;
            }
            let n = buf.len().min(512 - self.header.len());
            self.header.extend_from_slice(&buf[..n]);
            buf = &buf[n..];
            if self.header.len() == 512 {
                self.start_entry();
                self.header.clear();
            }
        }
    }

    /// Reads a complete 512-byte header: the entry's name and size.
    fn start_entry(&mut self) {
        let h = &self.header;
        let field = |from: usize, len: usize| {
            let raw = &h[from..from + len];
            let end = raw.iter().position(|&b| b == 0).unwrap_or(len);
            String::from_utf8_lossy(&raw[..end]).trim().to_string()
        };
        let size = u64::from_str_radix(&field(124, 12), 8).unwrap_or(0);
        self.capture = match field(0, 100).as_str() {
            "backup_label" => Capture::Label,
            "backup_manifest" => Capture::Manifest,
            _ => Capture::None,
        };
        if self.capture == Capture::Manifest {
            self.manifest_tail.clear();
        }
        self.data_left = size;
        self.pad_left = (512 - size % 512) % 512;
    }

    /// Where the copy sits in the log, once both files passed.
    fn range(&self) -> Option<WalRange> {
        parse_range(
            &String::from_utf8_lossy(&self.label),
            &String::from_utf8_lossy(&self.manifest_tail),
        )
    }
}

impl Write for TarWatch<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.observe(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// The range a base backup covers, from its `backup_label` and the end of its
/// `backup_manifest`.
pub fn parse_range(label: &str, manifest_tail: &str) -> Option<WalRange> {
    let value = |key: &str| {
        label
            .lines()
            .find_map(|l| l.strip_prefix(key).map(|rest| rest.trim().to_string()))
    };
    // `0/2000028 (file 000000010000000000000002)`: the file as the server names it.
    let location = value("START WAL LOCATION:")?;
    let start = location.split_whitespace().next()?.parse::<Lsn>().ok()?;
    let start_wal = location
        .split_once("(file ")?
        .1
        .trim_end_matches(')')
        .trim()
        .to_string();
    if dbkeep_model::wal::WalFile::of(&start_wal) != Some(dbkeep_model::wal::WalFile::Segment) {
        return None;
    }
    let timeline = value("START TIMELINE:")?.parse().ok()?;
    let (_, after) = manifest_tail.rsplit_once("\"End-LSN\"")?;
    let stop = after.split('"').nth(1)?.parse::<Lsn>().ok()?;
    Some(WalRange {
        timeline,
        start,
        start_wal,
        stop,
    })
}

impl Engine for BaseBackupEngine {
    fn kind(&self) -> Kind {
        Kind::PostgresBase
    }

    fn file_name(&self, stamp: &str) -> (String, &'static str) {
        (format!("postgres_base_{stamp}"), ".tar")
    }

    fn dump(
        &self,
        out: &mut dyn Write,
        _scratch: &Path,
        cancel: &Cancel,
        log: &RunLog,
    ) -> Result<Option<TableRows>> {
        let password = self.target.resolve_password().map_err(Error::Engine)?;
        let args = [
            "--no-password".to_string(),
            format!("--dbname={}", self.target.url),
            "--pgdata=-".to_string(),
            "--format=tar".to_string(),
            "--wal-method=none".to_string(),
            "--checkpoint=fast".to_string(),
            "--label=dbkeep base backup".to_string(),
            "--verbose".to_string(),
        ];
        let tool = Tool::spawn(
            &self.pg.sibling("pg_basebackup"),
            Family::Postgres,
            &args,
            password,
            false,
            cancel,
            HINT,
        )?;
        let mut watch = TarWatch::new(out);
        tool.stream_out(&mut watch, "pg_basebackup", cancel, log)?;
        let range = watch.range().ok_or_else(|| {
            Error::Engine(
                "pg_basebackup's copy holds no backup_label and backup_manifest saying where it sits in the write-ahead log (is pg_basebackup older than PostgreSQL 13?)".into(),
            )
        })?;
        *self.found.lock().unwrap_or_else(PoisonError::into_inner) = Some(range);
        Ok(None)
    }

    fn wal_range(&self) -> Option<WalRange> {
        self.found
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn restore(
        &self,
        _source: &mut dyn std::io::Read,
        _reopen: Option<super::Reopen<'_>>,
        _opts: &super::RestoreOptions,
        _cancel: &Cancel,
        _log: &RunLog,
    ) -> Result<usize> {
        Err(self.refused())
    }

    fn discard(&self, _cancel: &Cancel) -> Result<()> {
        Err(self.refused())
    }

    fn count_rows(&self, _tables: &[String], _cancel: &Cancel) -> Result<TableRows> {
        Err(self.refused())
    }

    fn table_count(&self, _cancel: &Cancel) -> Result<u64> {
        Err(self.refused())
    }

    fn exists(&self, _cancel: &Cancel) -> Result<bool> {
        Ok(true)
    }

    /// Reachable; allowed to take base backups; and set to archive its WAL through dbkeep,
    /// with an `archive_timeout` that bounds how much a quiet server can lose.
    fn health(&self, what: &str, cancel: &Cancel) -> Vec<Finding> {
        let mut found = Vec::new();
        let url = super::listing::with_connect_timeout(&self.target.url);
        let facts = self.pg.query(
            &url,
            "SELECT v FROM (VALUES \
               (1, current_user::text), \
               (2, (SELECT (rolreplication OR rolsuper)::text FROM pg_roles WHERE rolname = current_user)), \
               (3, current_setting('wal_level')), \
               (4, current_setting('archive_mode')), \
               (5, current_setting('archive_timeout')), \
               (6, replace(current_setting('archive_command'), E'\\n', ' '))) v(i, v) ORDER BY i",
            cancel,
        );
        let reach = format!("{what}: reachable");
        let facts = match facts {
            Ok(text) => text.lines().map(str::to_string).collect::<Vec<_>>(),
            Err(e) => {
                found.push(super::health::unreachable(reach, &e));
                return found;
            }
        };
        let fact = |i: usize| facts.get(i).map(String::as_str).unwrap_or_default();
        let user = fact(0);
        found.push(Finding::ok(reach, format!("{} as {user}", self.target.url)));
        let check = format!("{what}: base backups");
        found.push(if fact(1) == "true" {
            Finding::ok(check, format!("{user} may take base backups (REPLICATION)"))
        } else {
            Finding::bad(
                Level::Fail,
                check,
                format!("{user} may not take base backups"),
                format!("ALTER ROLE {user} REPLICATION, and allow it a `replication` line in pg_hba.conf"),
            )
        });
        let check = format!("{what}: wal_level");
        found.push(if matches!(fact(2), "replica" | "logical") {
            Finding::ok(check, format!("wal_level = {}", fact(2)))
        } else {
            Finding::bad(
                Level::Fail,
                check,
                format!(
                    "wal_level = {}: its WAL cannot rebuild the cluster",
                    fact(2)
                ),
                "set wal_level = replica in postgresql.conf and restart PostgreSQL",
            )
        });
        let check = format!("{what}: archiving");
        let command = fact(5);
        found.push(
            if matches!(fact(3), "on" | "always") && command.contains("wal push") {
                Finding::ok(check, format!("archive_mode = {}, archive_command = '{command}'", fact(3)))
            } else {
                Finding::bad(
                    Level::Fail,
                    check,
                    format!("archive_mode = {}, archive_command = '{command}': WAL does not reach dbkeep", fact(3)),
                    "set archive_mode = on and archive_command = 'dbkeep --config /etc/dbkeep/dbkeep.toml wal push %p' in postgresql.conf, then restart PostgreSQL",
                )
            },
        );
        let check = format!("{what}: archive_timeout");
        found.push(match fact(4) {
            "0" => Finding::bad(
                Level::Warn,
                check,
                "archive_timeout = 0: on a quiet server a partly filled segment waits for ever, and so do its writes",
                "set archive_timeout = '60s' (the longest you accept to lose), then reload PostgreSQL",
            ),
            t => Finding::ok(check, format!("archive_timeout = {t}: a segment is archived at least that often while the server writes")),
        });
        let check = format!("{what}: archiver");
        found.push(match self.archiver(cancel) {
            Ok(a) if a.failing() => Finding::bad(
                Level::Fail,
                check,
                format!("the last push failed ({} failures since the statistics were reset): PostgreSQL keeps the WAL until it succeeds", a.failed_count),
                "read PostgreSQL's log for what `dbkeep wal push` said",
            ),
            Ok(_) => Finding::ok(check, "the last push succeeded"),
            Err(e) => Finding::bad(Level::Warn, check, e.to_string(), "check that pg_stat_archiver can be read"),
        });
        found
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_range_is_read_from_a_real_tar_stream() {
        let label = "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n\
                     CHECKPOINT LOCATION: 0/2000060\nSTART TIMELINE: 1\n";
        let manifest = format!(
            "{{ \"Files\": [{}],\n\"WAL-Ranges\": [\n{{ \"Timeline\": 1, \"Start-LSN\": \"0/2000028\", \"End-LSN\": \"0/2000100\" }}\n] }}",
            "{ \"Path\": \"base/1/1\" },".repeat(2000)
        );
        let mut tar = tar::Builder::new(Vec::new());
        for (name, body) in [
            ("backup_label", label.as_bytes()),
            ("base/1/1", &[7u8; 5000][..]),
            ("backup_manifest", manifest.as_bytes()),
        ] {
            let mut header = tar::Header::new_ustar();
            header.set_size(body.len() as u64);
            header.set_mode(0o600);
            header.set_cksum();
            tar.append_data(&mut header, name, body).unwrap();
        }
        let bytes = tar.into_inner().unwrap();
        let mut sink = Vec::new();
        let mut watch = TarWatch::new(&mut sink);
        // In odd pieces, as a pipe delivers them.
        for part in bytes.chunks(333) {
            watch.write_all(part).unwrap();
        }
        let range = watch.range().unwrap();
        assert_eq!(sink, bytes, "every byte passes through");
        assert_eq!(range.timeline, 1);
        assert_eq!(range.start.to_string(), "0/2000028");
        assert_eq!(range.start_wal, "000000010000000000000002");
        assert_eq!(range.stop.to_string(), "0/2000100");
        assert_eq!(parse_range(label, "no ranges"), None);
    }
}
