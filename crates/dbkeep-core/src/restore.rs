//! Restoring a backup into a target: the file's SHA-256 checked before anything is touched,
//! then its uncompressed stream loaded by the target's engine (a new SQLite file swapped in
//! atomically; `psql` in one transaction for PostgreSQL). The stream the engine reads ends
//! only once the file matched its SHA-256 again (it might have changed since the first check),
//! and a dump's SQL passes through [`pipeline::filter`] on its way to the client.

pub mod plan;

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::runner::Runner;
use dbkeep_config::config::Target;
use dbkeep_engine::engine::{self, RestoreOptions};
use dbkeep_model::cancel::Cancel;
use dbkeep_model::catalog::{BackupRecord, Kind, Status};
use dbkeep_model::error::{Error, Result};
use dbkeep_model::runlog::RunLog;
use dbkeep_model::stream::Progress;
use dbkeep_pipeline::pipeline::filter::{Dialect, Filter, SqlFilter};
use dbkeep_pipeline::pipeline::{self};

/// What a restore did.
#[derive(Debug)]
pub struct Restored {
    /// Uncompressed bytes loaded.
    pub bytes: u64,
    /// How long the load took (the checksum pass not counted).
    pub duration: Duration,
    /// How many connections loaded it (PostgreSQL's parallel load; otherwise 1).
    pub connections: usize,
    /// The steps and the tool's messages, as a run's log.
    pub log: String,
}

/// Counts the bytes of the stored file read through it (compressed, maybe encrypted), for a
/// [`Counting`] further up the stream to report.
struct Tally<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Tally<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Counts the uncompressed bytes read through it, and reports how far into the stored file
/// (whose size is known, unlike the stream's) the read has come. Once `cancel` is raised it
/// reads no more.
struct Counting<'a, R> {
    inner: R,
    bytes: u64,
    stored: Arc<AtomicU64>,
    reported: u64,
    progress: &'a dyn Progress,
    cancel: &'a Cancel,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Some(reason) = self.cancel.reason() {
            return Err(std::io::Error::new(std::io::ErrorKind::Interrupted, reason));
        }
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        let stored = self.stored.load(Ordering::Relaxed);
        self.progress.advance(stored.saturating_sub(self.reported));
        self.reported = stored.max(self.reported);
        Ok(n)
    }
}

/// The server's roles stored with `record` (`globals = true`): beside it, or at the
/// destination its copy is read from.
fn stored_globals(runner: &Runner, record: &BackupRecord, from: Option<&str>) -> Result<String> {
    let id = record.id;
    // A discovered database's roles are its server's, stored with one backup of each run.
    let (holder, name) = runner.globals_for(record)?.ok_or_else(|| {
        Error::Refused(format!(
            "backup #{id} has no stored roles (its database did not say globals = true when it was made); restore without --with-globals"
        ))
    })?;
    if holder.id != id {
        tracing::info!(
            backup = id,
            roles_from = holder.id,
            "the server's roles are stored with another backup of its server"
        );
    }
    let file = runner
        .open_globals(&holder, &name, from)
        .map_err(|e| Error::Refused(format!("backup #{id}'s stored roles: {e}")))?;
    let mut text = String::new();
    // Roles are a few lines: a file far larger is not what dbkeep stored.
    file.take(16 * 1024 * 1024)
        .read_to_string(&mut text)
        .map_err(|e| Error::Refused(format!("backup #{id}'s stored roles: {e}")))?;
    Ok(text)
}

/// Restores `record` (one of `runner`'s successful, unpruned backups) into `target`.
///
/// # Errors
/// [`Error::Refused`] when the backup cannot be restored as asked (not a stored backup, another
/// kind of database than the target, a file that no longer matches its SHA-256, a target with
/// content and no `force`); [`Error::Engine`] with the tool's message when the load fails.
pub fn restore(
    runner: &Runner,
    record: &BackupRecord,
    target: &Target,
    opts: &RestoreOptions,
    cancel: &Cancel,
    progress: &dyn Progress,
) -> Result<Restored> {
    let id = record.id;
    if record.status != Status::Success {
        return Err(Error::Refused(format!(
            "backup #{id} is {}: only a successful backup can be restored",
            record.status
        )));
    }
    if !record.is_stored() {
        return Err(Error::Refused(format!(
            "backup #{id} was pruned by the retention policy everywhere: neither its local file nor any off-site copy is left"
        )));
    }
    crate::pitr::refuse_base(record)?;
    if record.kind != target.kind() {
        return Err(Error::Refused(format!(
            "backup #{id} is a {} backup; restore it into a {} target",
            record.kind, record.kind
        )));
    }
    let log = RunLog::new();
    let open = || {
        runner
            .open_from(record, opts.from.as_deref())
            .map_err(|e| Error::Refused(format!("backup #{id}: {e}")))
    };
    // The whole file is checked first: a damaged backup touches nothing.
    progress.phase("checking its SHA-256", record.size_bytes);
    let read = Arc::new(AtomicU64::new(0));
    let mut file = Counting {
        inner: Tally {
            inner: open()?,
            read: Arc::clone(&read),
        },
        bytes: 0,
        stored: read,
        reported: 0,
        progress,
        cancel,
    };
    let (size, sha256) = pipeline::hash_reader(&mut file).map_err(|e| match cancel.reason() {
        Some(reason) => Error::Cancelled(reason),
        None => Error::Refused(format!("backup #{id}: cannot read its file: {e}")),
    })?;
    let expected = record.sha256.as_deref().unwrap_or_default();
    if sha256 != expected {
        return Err(Error::Refused(format!(
            "backup #{id}'s file no longer matches its recorded SHA-256 (recorded {expected}, found {sha256}, {size} bytes): it is damaged, and nothing was restored"
        )));
    }
    log.step(format_args!("checked: SHA-256 {sha256}"));
    load(runner, record, target, opts, cancel, progress, log)
}

/// Loads `record` into `target` as [`restore`] does, without first reading its file whole to
/// check it (the caller has: a verification): the stream is still checked at its end, before
/// anything commits, and `log` gets the steps.
///
/// # Errors
/// As [`restore`], but for the checks `restore` makes before the load.
pub fn load(
    runner: &Runner,
    record: &BackupRecord,
    target: &Target,
    opts: &RestoreOptions,
    cancel: &Cancel,
    progress: &dyn Progress,
    log: RunLog,
) -> Result<Restored> {
    let id = record.id;
    let expected = record.sha256.as_deref().unwrap_or_default();
    let engine = engine::for_target(&runner.config(), target);
    let mut opts = opts.clone();
    opts.min_free_space = runner.config().min_free_space;
    if opts.with_globals {
        opts.globals = Some(stored_globals(runner, record, opts.from.as_deref())?);
    }
    let keys = dbkeep_pipeline::crypt::Keys::for_record(&runner.config(), record)?;
    let started = Instant::now();
    let dialect = match record.kind {
        Kind::Postgres => Some(Dialect::Postgres),
        Kind::Mysql => Some(Dialect::Mysql),
        Kind::Sqlite | Kind::PostgresBase => None,
    };
    let filter = dialect.map(|dialect| Filter {
        dialect,
        leave: opts.leave,
        line_limit: runner.config().restore_line_limit,
    });
    // The uncompressed stream as the target gets it, checked at its end; the first one
    // counts how much of the stored file it has read.
    let read = Arc::new(AtomicU64::new(0));
    let tallied = std::sync::atomic::AtomicBool::new(false);
    let stream = || -> std::io::Result<Box<dyn Read + Send>> {
        let file = runner
            .open_from(record, opts.from.as_deref())
            .map_err(|e| std::io::Error::other(format!("backup #{id}: {e}")))?;
        let file: Box<dyn Read + Send> = if tallied.swap(true, Ordering::Relaxed) {
            file
        } else {
            Box::new(Tally {
                inner: file,
                read: Arc::clone(&read),
            })
        };
        let reader =
            pipeline::checked::open_checked(file, record.compression, keys.as_ref(), expected)?;
        Ok(match filter {
            Some(filter) => {
                let buffered =
                    std::io::BufReader::with_capacity(dbkeep_model::stream::CHUNK, reader);
                Box::new(SqlFilter::new(buffered, filter))
            }
            None => reader,
        })
    };
    let reader = stream().map_err(|e| Error::Refused(format!("backup #{id}: cannot open: {e}")))?;
    progress.phase("loading", record.size_bytes);
    let mut source = Counting {
        inner: reader,
        bytes: 0,
        stored: Arc::clone(&read),
        reported: 0,
        progress,
        cancel,
    };
    let connections = engine.restore(&mut source, Some(&stream), &opts, cancel, &log)?;
    Ok(Restored {
        bytes: source.bytes,
        duration: started.elapsed(),
        connections,
        log: log.text(),
    })
}
