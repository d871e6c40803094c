//! Restoring a server to a point in time: the base backup that ended before the target,
//! unpacked into a new data directory (its stored file checked against its SHA-256 as it is
//! read: a damaged one leaves nothing), with the recovery settings that replay the archive
//! to the target and promote; then, when asked, PostgreSQL started on it until recovery ended.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::runner::Runner;
use dbkeep_model::catalog::BackupRecord;
use dbkeep_model::error::{Error, Result};
use dbkeep_model::storage;
use dbkeep_model::wal::{BaseBackup, Lsn};
use dbkeep_pipeline::pipeline::checked::open_checked;

/// Where recovery stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecoveryTarget {
    /// The end of the archive.
    Latest,
    /// The last transaction committed at or before this moment.
    Time(DateTime<Utc>),
    /// This position in the log.
    Lsn(Lsn),
    /// Up to and including this transaction.
    Xid(u64),
}

impl std::fmt::Display for RecoveryTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecoveryTarget::Latest => f.write_str("the end of the archive"),
            RecoveryTarget::Time(t) => write!(f, "{}", t.format("%Y-%m-%d %H:%M:%S%.3f UTC")),
            RecoveryTarget::Lsn(l) => write!(f, "WAL position {l}"),
            RecoveryTarget::Xid(x) => write!(f, "transaction {x}"),
        }
    }
}

/// The span a server can be recovered to.
#[derive(Debug, Clone)]
pub struct Recoverable {
    /// The end of its oldest kept base backup.
    pub from: DateTime<Utc>,
    /// When its newest archived file was made durable.
    pub to: DateTime<Utc>,
    /// Its base backups still stored, oldest first, with their rows.
    pub bases: Vec<(BaseBackup, BackupRecord)>,
}

/// What `server` can be recovered to, or `None` when it has no stored base backup or no
/// archived WAL yet.
///
/// # Errors
/// When the catalog cannot be read.
pub fn recoverable(runner: &dyn crate::runner::View, server: &str) -> Result<Option<Recoverable>> {
    let bases = super::stored_bases(runner, server)?;
    let (Some((first, _)), Some(to)) = (bases.first(), runner.catalog().last_archived(server)?)
    else {
        return Ok(None);
    };
    Ok(Some(Recoverable {
        from: first.stopped_at,
        to: to.max(first.stopped_at),
        bases,
    }))
}

/// A data directory made ready for recovery.
#[derive(Debug)]
pub struct Prepared {
    /// The base backup it was made from.
    pub base: BaseBackup,
    /// Where it is.
    pub dir: PathBuf,
    /// What was written into its settings.
    pub settings: Vec<String>,
    /// How long unpacking took.
    pub unpacked_in: Duration,
}

/// Unpacks the base backup of `server` that `target` needs into `dir` (absent or empty) and
/// writes the settings that recover it to `target`: `restore_command` (this program's
/// `wal fetch`, with `config_path` and the configuration's `identity_file` in force), the target, `promote`, `archive_mode = off` (a restored
/// copy must not archive into the original's archive), and `port` when given.
///
/// # Errors
/// [`Error::Refused`] when nothing can be recovered, `target` is outside the recoverable span
/// (the error gives the span), or `dir` holds something; I/O errors while unpacking (what was
/// unpacked is removed again).
pub fn prepare(
    runner: &Runner,
    config_path: &Path,
    server: &str,
    target: &RecoveryTarget,
    dir: &Path,
    port: Option<u16>,
) -> Result<Prepared> {
    let config = runner.config();
    if config.server(server).is_none_or(|s| !s.archives_wal()) {
        return Err(Error::Refused(format!(
            "--server {server}: no [[servers]] entry of that name has `wal_archive = true`"
        )));
    }
    let span = recoverable(runner, server)?.ok_or_else(|| {
        Error::Refused(format!(
            "server `{server}` has no stored base backup with archived WAL yet: take one with `dbkeep backup --server {server}`"
        ))
    })?;
    let shown = |t: DateTime<Utc>| {
        t.with_timezone(&config.service.timezone)
            .format("%Y-%m-%d %H:%M:%S %Z")
            .to_string()
    };
    let range = format!("from {} to {}", shown(span.from), shown(span.to));
    let (base, record) = match target {
        RecoveryTarget::Time(t) if *t < span.from || *t > span.to => {
            return Err(Error::Refused(format!(
                "server `{server}` can be recovered {range}; {} is outside that",
                shown(*t)
            )));
        }
        RecoveryTarget::Time(t) => span.bases.iter().rev().find(|(b, _)| b.stopped_at <= *t),
        RecoveryTarget::Lsn(l) => span.bases.iter().rev().find(|(b, _)| b.stop_lsn <= *l),
        // A transaction's time is not known here: the oldest base replays past any of them.
        RecoveryTarget::Xid(_) => span.bases.first(),
        RecoveryTarget::Latest => span.bases.last(),
    }
    .cloned()
    .ok_or_else(|| {
        Error::Refused(format!(
            "no stored base backup of server `{server}` ends before {target}; it can be recovered {range}"
        ))
    })?;
    prepare_base(
        runner,
        config_path,
        server,
        (base, record),
        target,
        dir,
        port,
    )
}

/// [`prepare`] from the base backup `base` (with its row) chosen already.
///
/// # Errors
/// As [`prepare`].
pub fn prepare_base(
    runner: &Runner,
    config_path: &Path,
    server: &str,
    (base, record): (BaseBackup, BackupRecord),
    target: &RecoveryTarget,
    dir: &Path,
    port: Option<u16>,
) -> Result<Prepared> {
    let config = runner.config();
    ensure_empty(dir)?;
    let started = Instant::now();
    if let Err(e) = unpack(runner, &record, dir) {
        clear(dir);
        return Err(e);
    }
    let unpacked_in = started.elapsed();
    let settings = settings(
        config_path,
        config.identity_file.as_deref(),
        server,
        target,
        port,
    )?;
    let written = write_settings(dir, &settings);
    if let Err(e) = written {
        clear(dir);
        return Err(e);
    }
    Ok(Prepared {
        base,
        dir: dir.to_path_buf(),
        settings,
        unpacked_in,
    })
}

/// Refuses a `dir` that holds anything; creates it (0700, as PostgreSQL wants) when absent.
fn ensure_empty(dir: &Path) -> Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(Error::Refused(format!(
                    "--to-dir {}: it holds files; give a new or empty folder",
                    dir.display()
                )));
            }
            storage::create_private_dir(dir).map_err(Error::io("cannot use", dir))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            storage::create_private_parents(dir).map_err(Error::io("cannot create", dir))
        }
        Err(e) => Err(Error::io("cannot read", dir)(e)),
    }
}

/// Removes what an unfinished preparation left in `dir` (never `dir` itself).
fn clear(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            let _ = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
        }
    }
}

/// Unpacks `record`'s tar into `dir`, from the local file or a checked off-site copy; the
/// stream ends only once the stored bytes matched the recorded SHA-256.
fn unpack(runner: &Runner, record: &BackupRecord, dir: &Path) -> Result<()> {
    let id = record.id;
    let file = runner
        .open_from(record, None)
        .map_err(|e| Error::Refused(format!("backup #{id}: {e}")))?;
    let keys = dbkeep_pipeline::crypt::Keys::for_record(&runner.config(), record)?;
    let unreadable =
        |e: std::io::Error| Error::Refused(format!("backup #{id}: cannot unpack it: {e}"));
    let mut reader = open_checked(
        file,
        record.compression,
        keys.as_ref(),
        record.sha256.as_deref().unwrap_or_default(),
    )
    .map_err(unreadable)?;
    let mut archive = tar::Archive::new(&mut reader);
    archive.set_preserve_permissions(true);
    archive.set_overwrite(false);
    archive.unpack(dir).map_err(unreadable)?;
    // The tar ends before the file does (its padding): reading on to the end is the check.
    std::io::copy(&mut reader, &mut std::io::sink()).map_err(unreadable)?;
    Ok(())
}

/// The lines recovery needs, in `postgresql.conf` syntax.
fn settings(
    config_path: &Path,
    identity: Option<&Path>,
    server: &str,
    target: &RecoveryTarget,
    port: Option<u16>,
) -> Result<Vec<String>> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::Engine(format!("cannot tell where this program is: {e}")))?;
    let config = std::path::absolute(config_path).unwrap_or_else(|_| config_path.to_path_buf());
    let quote = |s: &str| format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"));
    let shell = |p: &Path| {
        let s = p.to_string_lossy();
        format!("'{}'", s.replace('\'', "'\\''"))
    };
    let identity = identity
        .map(|p| format!(" --identity {}", shell(p)))
        .unwrap_or_default();
    let command = format!(
        "{} --config {} wal fetch --server {server}{identity} %f %p",
        shell(&exe),
        shell(&config)
    );
    let mut lines = vec![
        format!("restore_command = {}", quote(&command)),
        "recovery_target_timeline = 'latest'".to_string(),
    ];
    match target {
        RecoveryTarget::Latest => {}
        RecoveryTarget::Time(t) => lines.push(format!(
            "recovery_target_time = '{}'",
            t.format("%Y-%m-%d %H:%M:%S%.6f+00")
        )),
        RecoveryTarget::Lsn(l) => lines.push(format!("recovery_target_lsn = '{l}'")),
        RecoveryTarget::Xid(x) => lines.push(format!("recovery_target_xid = '{x}'")),
    }
    if *target != RecoveryTarget::Latest {
        lines.push("recovery_target_action = 'promote'".to_string());
    }
    lines.push("archive_mode = 'off'".to_string());
    if let Some(port) = port {
        lines.push(format!("port = {port}"));
    }
    Ok(lines)
}

/// Appends `settings` to `postgresql.auto.conf` (read last, so they win) and writes
/// `recovery.signal`.
fn write_settings(dir: &Path, settings: &[String]) -> Result<()> {
    let auto = dir.join("postgresql.auto.conf");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&auto)
        .map_err(Error::io("cannot write", &auto))?;
    let mut text = String::from("\n# Written by dbkeep restore: recovery from the WAL archive.\n");
    for line in settings {
        text.push_str(line);
        text.push('\n');
    }
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(Error::io("cannot write", &auto))?;
    let signal = dir.join("recovery.signal");
    std::fs::File::create(&signal)
        .and_then(|f| f.sync_all())
        .map_err(Error::io("cannot write", &signal))?;
    Ok(())
}

/// How a started recovery ended.
#[derive(Debug)]
pub struct Started {
    /// How long from the start of PostgreSQL to the end of recovery.
    pub took: Duration,
}

/// Starts PostgreSQL on `prepared` (its `pg_ctl` of the data directory's major version) and
/// waits, at most `limit`, until recovery ended and the server was promoted.
///
/// # Errors
/// [`Error::Refused`] as root (PostgreSQL refuses it); [`Error::Engine`] with the end of the
/// server's log when it stopped (a target the archive does not reach) or did not finish in time.
pub fn start(prepared: &Prepared, limit: Duration) -> Result<Started> {
    start_in(prepared, limit, &[])
}

/// [`start`] with `options` given to the server too (`-c name=value`).
///
/// # Errors
/// As [`start`].
pub fn start_in(prepared: &Prepared, limit: Duration, options: &[&str]) -> Result<Started> {
    if rustix::process::geteuid().is_root() {
        return Err(Error::Refused(
            "PostgreSQL does not run as root: run this command as the PostgreSQL user (e.g. `runuser -u postgres -- dbkeep …`), or leave out --start and start it yourself".into(),
        ));
    }
    let dir = &prepared.dir;
    let log = dir.join("dbkeep-recovery.log");
    let pg_ctl = server_program(dir, "pg_ctl");
    let started = Instant::now();
    let out = Command::new(&pg_ctl)
        .arg("-D")
        .arg(dir)
        .arg("-l")
        .arg(&log)
        .arg("-W")
        .arg("-o")
        // Its messages in English, and all of them in the log read here, whatever its
        // configuration says (until it is restarted).
        .arg(
            [
                "lc_messages=C",
                "logging_collector=off",
                "log_destination=stderr",
            ]
            .iter()
            .chain(options)
            .map(|o| format!("-c {o}"))
            .collect::<Vec<_>>()
            .join(" "),
        )
        .arg("start")
        .output()
        .map_err(|e| Error::Engine(format!("cannot run {}: {e}", pg_ctl.display())))?;
    if !out.status.success() {
        return Err(Error::Engine(format!(
            "{} could not start PostgreSQL: {}",
            pg_ctl.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let signal = dir.join("recovery.signal");
    let pid = dir.join("postmaster.pid");
    loop {
        std::thread::sleep(Duration::from_millis(100));
        // Promoted: recovery.signal is gone, and the server says it takes writes (its
        // "ready" status line alone also means a hot standby's read-only connections).
        let ready = std::fs::read_to_string(&pid)
            .is_ok_and(|t| t.lines().nth(7).is_some_and(|l| l.trim() == "ready"));
        let promoted = || {
            std::fs::read_to_string(&log).is_ok_and(|t| {
                t.lines()
                    .any(|l| l.ends_with("database system is ready to accept connections"))
            })
        };
        if !signal.exists() && ready && promoted() {
            return Ok(Started {
                took: started.elapsed(),
            });
        }
        let stopped = started.elapsed() > Duration::from_secs(2) && !pid.exists();
        if stopped || started.elapsed() > limit {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(8).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(Error::Engine(format!(
                "{}: {}",
                if stopped {
                    "PostgreSQL stopped before recovery ended"
                } else {
                    "recovery did not end in time (PostgreSQL is left running)"
                },
                tail.join(" | ")
            )));
        }
    }
}

/// A port of loopback nothing listens on now, for a recovered server.
///
/// # Errors
/// When none can be bound.
pub fn free_port() -> Result<u16> {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| Error::Engine(format!("no free port on 127.0.0.1: {e}")))
}

/// A PostgreSQL server program of the data directory's major version (`PG_VERSION`): the
/// Debian place first, else from `PATH`.
pub(super) fn server_program(dir: &Path, program: &str) -> PathBuf {
    let version = std::fs::read_to_string(dir.join("PG_VERSION")).unwrap_or_default();
    let debian = Path::new("/usr/lib/postgresql")
        .join(version.trim())
        .join("bin")
        .join(program);
    if !version.trim().is_empty() && debian.exists() {
        debian
    } else {
        PathBuf::from(program)
    }
}
