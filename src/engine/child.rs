//! A database tool (`pg_dump`, `psql`, …) as a child process, handled the one way every engine
//! needs: its own process group (so cancelling kills it and whatever a wrapper started, and a
//! Ctrl-C meant for dbkeep reaches dbkeep first), its stderr kept on a thread of its own
//! (bounded), the password only in its environment and redacted from everything it says, and
//! a kill when the backup is cancelled.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::cancel::Cancel;
use crate::config::Secret;
use crate::runlog::RunLog;
use crate::{Error, Result};

/// How much of a tool's stderr is kept for the error message and the run's log.
const STDERR_LIMIT: usize = crate::runlog::MAX_BYTES;

/// A running database tool.
pub struct Tool {
    name: String,
    child: Arc<Mutex<Child>>,
    stderr: Option<JoinHandle<String>>,
    secret: Option<Secret>,
}

impl Tool {
    /// Starts `program` with `args`, `envs` (the password as `password_var`, if any), stdin and
    /// stdout piped as asked, stderr collected; killed when `cancel` is raised.
    ///
    /// # Errors
    /// [`Error::Engine`] naming the program when it cannot be started (with a hint when it is
    /// not installed: `hint`).
    pub fn spawn(
        program: &Path,
        args: &[String],
        password: Option<(&str, Secret)>,
        pipe_stdin: bool,
        cancel: &Cancel,
        hint: &str,
    ) -> Result<Tool> {
        let name = program.file_name().map_or_else(
            || program.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let mut cmd = Command::new(program);
        cmd.process_group(0)
            .args(args)
            .stdin(if pipe_stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let secret = password.map(|(var, secret)| {
            cmd.env(var, secret.expose());
            secret
        });
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
            Some(mut stdout) => crate::pipeline::copy(&mut stdout, out),
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

    /// Feeds `prologue` and then `source` to the tool's input (its output drained, so it
    /// never blocks on it), then waits for it ([`Tool::finish`]). When reading `source` fails,
    /// the tool is stopped before its input closes (so a client that commits at the end of
    /// its input commits nothing), and the error says so, with `stopped`.
    ///
    /// # Errors
    /// As [`Tool::finish`]: the tool's own message when it stopped first (an error in the
    /// SQL); [`Error::Engine`] when reading `source` failed.
    pub fn stream_in(
        self,
        prologue: &[u8],
        source: &mut dyn Read,
        stopped: &str,
        cancel: &Cancel,
        log: &RunLog,
    ) -> Result<u64> {
        use std::io::Write;
        let drain = self.stdout().map(|mut stdout| {
            std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()))
        });
        let fed = match self.stdin() {
            Some(mut stdin) => {
                let fed = (|| -> std::io::Result<u64> {
                    stdin.write_all(prologue)?;
                    let n = crate::pipeline::copy(source, &mut stdin)?;
                    stdin.flush()?;
                    Ok(n)
                })();
                if fed.is_err() {
                    self.kill();
                }
                drop(stdin);
                fed
            }
            None => Ok(0),
        };
        let finished = self.finish(cancel, log);
        if let Some(drain) = drain {
            let _ = drain.join();
        }
        match (fed, finished) {
            (_, Err(e @ Error::Cancelled(_))) => Err(e),
            // The tool stopped first (an error in the SQL): its own message says why.
            (_, Err(Error::Engine(m))) if !m.contains("exited with a signal") => {
                Err(Error::Engine(m))
            }
            (Err(read), _) => Err(Error::Engine(format!(
                "reading the backup failed: {read}; {stopped}"
            ))),
            (Ok(_), Err(e)) => Err(e),
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
