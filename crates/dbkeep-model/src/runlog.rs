//! The log of one run, kept with its catalog row: dbkeep's own steps with their timings and the
//! database tool's messages (warnings included), bounded in size.

use std::sync::Mutex;
use std::time::Instant;

/// The most a run's log keeps; later lines are counted, not kept.
pub const MAX_BYTES: usize = 32 * 1024;

/// A run's log, written from the runner and the engine (possibly from several threads).
#[derive(Debug)]
pub struct RunLog {
    started: Instant,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    lines: Vec<String>,
    bytes: usize,
    dropped: usize,
}

impl Default for RunLog {
    fn default() -> Self {
        Self::new()
    }
}

impl RunLog {
    /// An empty log whose clock starts now.
    pub fn new() -> Self {
        RunLog {
            started: Instant::now(),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn push(&self, line: String) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.bytes + line.len() > MAX_BYTES {
            inner.dropped += 1;
            return;
        }
        inner.bytes += line.len() + 1;
        inner.lines.push(line);
    }

    /// One of dbkeep's steps, stamped with the time since the run started (`+1.234s`).
    pub fn step(&self, text: impl std::fmt::Display) {
        let elapsed = self.started.elapsed().as_secs_f64();
        self.push(format!("+{elapsed:.3}s {text}"));
    }

    /// What a database tool wrote to its error stream, one entry per line, prefixed with the
    /// tool's name. The caller redacts secrets first.
    pub fn tool_output(&self, tool: &str, text: &str) {
        for line in text.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
            self.push(format!("{tool}: {line}"));
        }
    }

    /// The whole log as text, one line per entry.
    pub fn text(&self) -> String {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut text = inner.lines.join("\n");
        if inner.dropped > 0 {
            text.push_str(&format!(
                "\n… {} more line(s) not kept (the log keeps {} KiB)",
                inner.dropped,
                MAX_BYTES / 1024
            ));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_timed_tool_lines_prefixed_and_the_size_bounded() {
        let log = RunLog::new();
        log.step("started");
        log.tool_output("pg_dump", "warning: one\n\nwarning: two\n");
        let text = log.text();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("+0.0") && lines[0].ends_with("s started"),
            "{text}"
        );
        assert_eq!(
            &lines[1..],
            ["pg_dump: warning: one", "pg_dump: warning: two"]
        );
        let long = "x".repeat(1000);
        for _ in 0..100 {
            log.tool_output("pg_dump", &long);
        }
        let text = log.text();
        assert!(text.len() < MAX_BYTES + 200, "{}", text.len());
        assert!(text.ends_with("not kept (the log keeps 32 KiB)"), "{text}");
    }
}
