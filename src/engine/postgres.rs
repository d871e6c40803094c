//! PostgreSQL: `pg_dump` in plain SQL as a child process, its output streamed to the pipeline.
//!
//! The password reaches `pg_dump` only through `PGPASSWORD` in its environment; the URL on
//! its command line carries none, and `--no-password` stops it from ever waiting on a prompt.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::Engine;
use crate::cancel::Cancel;
use crate::catalog::Kind;
use crate::config::PgTarget;
use crate::runlog::RunLog;
use crate::{Error, Result};

/// How much of `pg_dump`'s stderr is kept for the error message and the run's log.
const STDERR_LIMIT: usize = crate::runlog::MAX_BYTES;

/// Backs up one PostgreSQL database with `pg_dump`.
pub struct PostgresEngine {
    target: PgTarget,
    pg_dump: PathBuf,
}

impl PostgresEngine {
    /// An engine for `target`, running the `pg_dump` program at `pg_dump` (a path or a name on `PATH`).
    pub fn new(target: PgTarget, pg_dump: PathBuf) -> Self {
        PostgresEngine { target, pg_dump }
    }

    fn spawn(&self) -> Result<(Child, Option<crate::config::Secret>)> {
        let password = self.target.resolve_password().map_err(Error::Engine)?;
        let mut cmd = Command::new(&self.pg_dump);
        // Its own process group, so cancelling kills pg_dump and anything a wrapper script
        // started, and a Ctrl-C meant for dbkeep is handled by dbkeep first.
        cmd.process_group(0);
        cmd.arg("--no-password")
            .arg("--format=plain")
            .arg(format!("--dbname={}", self.target.url))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(pw) = &password {
            cmd.env("PGPASSWORD", pw.expose());
        }
        let child = cmd.spawn().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::Engine(format!(
                    "{} not found: install the PostgreSQL client tools and put pg_dump on PATH, or set pg_dump_path",
                    self.pg_dump.display()
                ))
            } else {
                Error::Engine(format!("cannot run {}: {e}", self.pg_dump.display()))
            }
        })?;
        Ok((child, password))
    }
}

/// Reads a child's stderr on a thread of its own, so neither pipe can fill and stall the other.
fn collect_stderr(mut stderr: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut dropped = 0usize;
        let mut buf = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            let room = STDERR_LIMIT.saturating_sub(kept.len());
            kept.extend_from_slice(&buf[..n.min(room)]);
            dropped += n.saturating_sub(room);
        }
        let mut text = String::from_utf8_lossy(&kept).trim().to_string();
        if dropped > 0 {
            text.push_str(&format!(
                "\n… {dropped} more byte(s) not kept (at most {} KiB are)",
                STDERR_LIMIT / 1024
            ));
        }
        text
    })
}

impl Engine for PostgresEngine {
    fn kind(&self) -> Kind {
        Kind::Postgres
    }

    fn file_name(&self, stamp: &str) -> (String, &'static str) {
        (format!("postgres_backup_{stamp}"), ".sql")
    }

    fn dump(
        &self,
        out: &mut dyn Write,
        _scratch: &Path,
        cancel: &Cancel,
        log: &RunLog,
    ) -> Result<()> {
        let (mut child, password) = self.spawn()?;
        let stderr = child.stderr.take().map(collect_stderr);
        let stdout = child.stdout.take();
        let child = Arc::new(Mutex::new(child));
        let kill = |child: &Mutex<Child>| {
            let mut child = child.lock().unwrap_or_else(|p| p.into_inner());
            // Only while the child is unreaped: its pid, and so its group, cannot be reused yet.
            if let Ok(None) = child.try_wait() {
                let group = rustix::process::Pid::from_child(&child);
                let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
                let _ = child.kill();
            }
        };
        {
            let child = Arc::clone(&child);
            cancel.on_cancel(move || kill(&child));
        }
        let copied = match stdout {
            Some(mut stdout) => crate::pipeline::copy(&mut stdout, out),
            None => Ok(0),
        };
        if copied.is_err() {
            // Our side failed (disk full, say): stop pg_dump rather than let it block.
            kill(&child);
        }
        let status = child
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .wait()
            .map_err(|e| Error::Engine(format!("pg_dump: {e}")))?;
        if let Some(reason) = cancel.reason() {
            return Err(Error::Cancelled(reason));
        }
        let stderr = stderr.and_then(|h| h.join().ok()).unwrap_or_default();
        let redact = |text: String| match &password {
            Some(pw) if !pw.expose().is_empty() => text.replace(pw.expose(), "***"),
            _ => text,
        };
        let stderr = redact(stderr);
        log.tool_output("pg_dump", &stderr);
        copied
            .map_err(|e| Error::Engine(redact(format!("writing pg_dump's output failed: {e}"))))?;
        if !status.success() {
            let code = status
                .code()
                .map_or_else(|| "a signal".to_string(), |c| format!("code {c}"));
            let detail = if stderr.is_empty() {
                "no message".to_string()
            } else {
                stderr
            };
            return Err(Error::Engine(redact(format!(
                "pg_dump exited with {code}: {detail}"
            ))));
        }
        Ok(())
    }
}
