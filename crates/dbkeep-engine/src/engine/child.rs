//! A database tool (`pg_dump`, `psql`, …) as a child process, handled the one way every engine
//! needs: its own process group (so cancelling kills it and whatever a wrapper started, and a
//! Ctrl-C meant for dbkeep reaches dbkeep first), its stderr kept on a thread of its own
//! (bounded), an environment of only what it needs (its password, and the user's settings for
//! its family of tools: never dbkeep's other secrets), the password redacted from everything
//! it says, and a kill when the backup is cancelled.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use dbkeep_config::config::Secret;
use dbkeep_model::cancel::Cancel;
use dbkeep_model::error::{Error, Result};
use dbkeep_model::runlog::RunLog;

/// How much of a tool's stderr is kept for the error message and the run's log.
const STDERR_LIMIT: usize = dbkeep_model::runlog::MAX_BYTES;

/// Which family of database tools a program is: what of dbkeep's environment it is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `pg_dump`, `psql`, `pg_dumpall`: the `PG…` variables, the password as `PGPASSWORD`.
    Postgres,
    /// `mariadb-dump`, `mariadb`, `mysqldump`, `mysql`: the `MYSQL_…` and `MARIADB_…`
    /// variables, the password as `MYSQL_PWD`.
    Mysql,
}

impl Family {
    fn password_var(self) -> &'static str {
        match self {
            Family::Postgres => "PGPASSWORD",
            Family::Mysql => "MYSQL_PWD",
        }
    }

    /// Whether a variable of dbkeep's environment is passed on: the system's basics (where
    /// programs and home are, the locale, the time zone, temporary files, certificates,
    /// Kerberos) and this family's own settings.
    fn passes(self, name: &str) -> bool {
        const BASICS: &[&str] = &[
            "PATH",
            "HOME",
            "USER",
            "LOGNAME",
            "LANG",
            "LANGUAGE",
            "TZ",
            "TMPDIR",
            "SSL_CERT_FILE",
            "SSL_CERT_DIR",
            "KRB5CCNAME",
            "KRB5_CONFIG",
        ];
        let own: &[&str] = match self {
            Family::Postgres => &["PG"],
            Family::Mysql => &["MYSQL_", "MARIADB_"],
        };
        BASICS.contains(&name)
            || name.starts_with("LC_")
            || own.iter().any(|prefix| name.starts_with(prefix))
    }
}

/// What a load sends around a dump, and how the tool confirms it ran to the end.
#[derive(Debug, Clone, Copy)]
pub struct Feed<'a> {
    /// Sent before the dump.
    pub prologue: &'a [u8],
    /// Sent after the dump, once it has been read to its end without error (and its checksum
    /// matched): what commits.
    pub epilogue: &'a [u8],
    /// What the tool prints once it has run the epilogue; empty for none.
    pub confirm: &'a [u8],
    /// Said after a failed read of the dump: what became of the load.
    pub stopped: &'a str,
    /// Said when the tool ended well without printing `confirm`.
    pub unconfirmed: &'a str,
}

/// A running database tool.
pub struct Tool {
    name: String,
    child: Arc<Mutex<Child>>,
    stderr: Option<JoinHandle<String>>,
    secret: Option<Secret>,
}

impl Tool {
    /// Starts `program` of `family` with `args`, its password (if any) in its environment,
    /// stdin and stdout piped as asked, stderr collected; killed when `cancel` is raised.
    ///
    /// # Errors
    /// [`Error::Engine`] naming the program when it cannot be started (with a hint when it is
    /// not installed: `hint`).
    pub fn spawn(
        program: &Path,
        family: Family,
        args: &[String],
        password: Option<Secret>,
        pipe_stdin: bool,
        cancel: &Cancel,
        hint: &str,
    ) -> Result<Tool> {
        let name = program.file_name().map_or_else(
            || program.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .envs(
                std::env::vars_os()
                    .filter(|(name, _)| name.to_str().is_some_and(|name| family.passes(name))),
            )
            .process_group(0)
            .args(args)
            .stdin(if pipe_stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(secret) = &password {
            cmd.env(family.password_var(), secret.expose());
        }
        let secret = password;
        let mut child = cmd.spawn().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::Engine(format!("{} not found: {hint}", program.display()))
            } else {
                Error::Engine(format!("cannot run {}: {e}", program.display()))
            }
        })?;
        let stderr = child.stderr.take().map(collect_stderr);
        let child = Arc::new(Mutex::new(child));
        {
            let child = Arc::clone(&child);
            cancel.on_cancel(move || kill(&child));
        }
        Ok(Tool {
            name,
            child,
            stderr,
            secret,
        })
    }

    /// The tool's standard output, once.
    pub fn stdout(&self) -> Option<ChildStdout> {
        self.lock().stdout.take()
    }

    /// The tool's standard input, once (dropping it closes the pipe).
    pub fn stdin(&self) -> Option<ChildStdin> {
        self.lock().stdin.take()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Child> {
        self.child.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops the tool and what it started (our side failed: a full disk, say).
    pub fn kill(&self) {
        kill(&self.child);
    }

    /// `text` with the password replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        match &self.secret {
            Some(pw) if !pw.expose().is_empty() => text.replace(pw.expose(), "***"),
            _ => text.to_string(),
        }
    }

    /// Streams the tool's output into `out`, then waits for it ([`Tool::finish`]). When
    /// writing fails (our side: a full disk, say), the tool is stopped and that is the error,
    /// named as `what`'s output.
    ///
    /// # Errors
    /// As [`Tool::finish`]; [`Error::Engine`] when writing the output failed.
    pub fn stream_out(
        self,
        out: &mut dyn std::io::Write,
        what: &str,
        cancel: &Cancel,
        log: &RunLog,
    ) -> Result<u64> {
        let copied = match self.stdout() {
            Some(mut stdout) => dbkeep_model::stream::copy(&mut stdout, out),
            None => Ok(0),
        };
        let copy_failed = copied.as_ref().err().map(|e| {
            // Stopped rather than left blocked on a pipe no one reads.
            self.kill();
            self.redact(&format!("writing {what}'s output failed: {e}"))
        });
        let finished = self.finish(cancel, log);
        match (copy_failed, finished) {
            (_, Err(e @ Error::Cancelled(_))) => Err(e),
            (Some(message), _) => Err(Error::Engine(message)),
            (None, finished) => finished.and(copied.map_err(|e| Error::Engine(e.to_string()))),
        }
    }

    /// Feeds `feed.prologue`, `source` and then `feed.epilogue` to the tool's input (its
    /// output watched for `feed.confirm` on a thread of its own, so it never blocks on it),
    /// then waits for it ([`Tool::finish`]). When reading `source` fails, the tool is stopped
    /// before the epilogue is sent and before its input closes, so that a load that commits in
    /// its epilogue commits nothing, and the error says so, with `feed.stopped`.
    ///
    /// # Errors
    /// As [`Tool::finish`]: the tool's own message when it stopped first (an error in the
    /// SQL); [`Error::Engine`] when reading `source` failed, or the tool ended without
    /// confirming (`feed.unconfirmed`).
    pub fn stream_in(
        self,
        feed: &Feed<'_>,
        source: &mut dyn Read,
        cancel: &Cancel,
        log: &RunLog,
    ) -> Result<u64> {
        let watch = self.stdout().map(|stdout| watch_for(stdout, feed.confirm));
        let self_name = self.name.clone();
        // Only a failed read stops the tool: a failed write means it stopped reading by
        // itself, and its end says why.
        let fed = match self.stdin() {
            Some(mut stdin) => {
                let fed = feed_all(&mut stdin, feed, source);
                if matches!(fed, Err(Fed::Read(_))) {
                    self.kill();
                }
                drop(stdin);
                fed
            }
            None => Ok(0),
        };
        let finished = self.finish(cancel, log);
        let confirmed = watch.is_none_or(|w| w.join().unwrap_or(false));
        match (fed, finished) {
            (_, Err(e @ Error::Cancelled(_))) => Err(e),
            // The tool stopped first (an error in the SQL): its own message says why.
            (_, Err(Error::Engine(m))) if !m.contains("exited with a signal") => {
                Err(Error::Engine(m))
            }
            (Err(Fed::Read(read)), _) => Err(Error::Engine(format!(
                "reading the backup failed: {read}; {}",
                feed.stopped
            ))),
            (Err(Fed::Write(write)), Ok(())) => Err(Error::Engine(format!(
                "{} stopped reading its input: {write}",
                self_name
            ))),
            (_, Err(e)) => Err(e),
            (Ok(_), Ok(())) if !confirmed => Err(Error::Engine(feed.unconfirmed.to_string())),
            (Ok(bytes), Ok(())) => Ok(bytes),
        }
    }

    /// Waits for the tool; its stderr (redacted) goes to `log`.
    ///
    /// # Errors
    /// [`Error::Cancelled`] when `cancel` was raised; [`Error::Engine`] with the tool's own
    /// message when it exited non-zero (whatever it wrote before).
    pub fn finish(mut self, cancel: &Cancel, log: &RunLog) -> Result<()> {
        // Polled, never waited on under the lock: the kill hook (a cancel, a signal) needs the
        // lock to stop the tool while it still runs.
        let status = loop {
            let polled = self.lock().try_wait();
            match polled {
                Ok(Some(status)) => break status,
                Ok(None) => std::thread::sleep(std::time::Duration::from_millis(10)),
                Err(e) => return Err(Error::Engine(format!("{}: {e}", self.name))),
            }
        };
        if let Some(reason) = cancel.reason() {
            return Err(Error::Cancelled(reason));
        }
        let stderr = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        let stderr = self.redact(&stderr);
        log.tool_output(&self.name, &stderr);
        if status.success() {
            return Ok(());
        }
        let code = status
            .code()
            .map_or_else(|| "a signal".to_string(), |c| format!("code {c}"));
        let detail = if stderr.is_empty() {
            "no message".to_string()
        } else {
            stderr
        };
        Err(Error::Engine(format!(
            "{} exited with {code}: {detail}",
            self.name
        )))
    }
}

fn kill(child: &Mutex<Child>) {
    let mut child = child.lock().unwrap_or_else(|p| p.into_inner());
    // Only while the child is unreaped: its pid, and so its group, cannot be reused yet.
    if let Ok(None) = child.try_wait() {
        let group = rustix::process::Pid::from_child(&child);
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        let _ = child.kill();
    }
}

/// What failed while feeding a tool.
enum Fed {
    /// Reading the source: our side.
    Read(std::io::Error),
    /// Writing to the tool: it stopped reading.
    Write(std::io::Error),
}

/// Writes `feed`'s prologue, `source` and `feed`'s epilogue into `stdin`.
fn feed_all(
    stdin: &mut ChildStdin,
    feed: &Feed<'_>,
    source: &mut dyn Read,
) -> std::result::Result<u64, Fed> {
    use std::io::Write;
    stdin.write_all(feed.prologue).map_err(Fed::Write)?;
    let mut buf = vec![0u8; dbkeep_model::stream::CHUNK];
    let mut total = 0u64;
    loop {
        let n = match source.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Fed::Read(e)),
        };
        stdin.write_all(&buf[..n]).map_err(Fed::Write)?;
        total += n as u64;
    }
    stdin.write_all(feed.epilogue).map_err(Fed::Write)?;
    stdin.flush().map_err(Fed::Write)?;
    Ok(total)
}

/// Reads a child's output to its end on a thread of its own (so the child never blocks on it),
/// telling whether `marker` passed in it (true for an empty marker).
pub fn watch_for(mut stdout: impl Read + Send + 'static, marker: &[u8]) -> JoinHandle<bool> {
    let marker = marker.to_vec();
    std::thread::spawn(move || {
        let mut seen = marker.is_empty();
        // The end of what was read before, so that a marker split across reads is found.
        let mut window: Vec<u8> = Vec::with_capacity(4096 + marker.len());
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            if !seen {
                window.extend_from_slice(&buf[..n]);
                seen = memchr::memmem::find(&window, &marker).is_some();
                let keep = marker.len().saturating_sub(1).min(window.len());
                window.drain(..window.len() - keep);
            }
        }
        seen
    })
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
