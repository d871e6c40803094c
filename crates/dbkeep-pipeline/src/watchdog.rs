//! Stops a backup that runs too long or goes quiet: every backup, from the command line, the
//! scheduler or the web, runs under `backup_timeout` and `stall_timeout`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dbkeep_model::cancel::Cancel;
use dbkeep_model::stream::Progress;

/// How often the limits are checked.
const INTERVAL: Duration = Duration::from_millis(250);

/// The limits a backup runs under.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Cancel after this long in all.
    pub timeout: Duration,
    /// Cancel after this long without a byte of progress.
    pub stall: Duration,
    /// Whether the stall clock runs before the first byte (false for engines that copy the
    /// whole database in one local step before producing anything).
    pub stall_before_first_byte: bool,
}

/// Passes progress on, noting when the last bytes came.
struct Activity<'a> {
    inner: &'a dyn Progress,
    started: Instant,
    last_ms: AtomicU64,
}

impl Progress for Activity<'_> {
    fn advance(&self, bytes: u64) {
        // One past the elapsed milliseconds, so that 0 means "no bytes yet".
        self.last_ms.store(
            self.started.elapsed().as_millis() as u64 + 1,
            Ordering::Relaxed,
        );
        self.inner.advance(bytes);
    }

    fn phase(&self, what: &str, total: Option<u64>) {
        self.inner.phase(what, total);
    }
}

/// Runs `work` (given a progress sink to report through) while a watchdog thread raises
/// `cancel` when `limits` are passed; the reason names the limit.
pub fn watch<T>(
    limits: Limits,
    cancel: &Cancel,
    progress: &dyn Progress,
    work: impl FnOnce(&dyn Progress) -> T,
) -> T {
    let activity = Activity {
        inner: progress,
        started: Instant::now(),
        last_ms: AtomicU64::new(0),
    };
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let dog = scope.spawn(|| {
            while !done.load(Ordering::Acquire) {
                std::thread::park_timeout(INTERVAL);
                let elapsed = activity.started.elapsed();
                let last_ms = activity.last_ms.load(Ordering::Relaxed);
                let quiet = if last_ms == 0 && !limits.stall_before_first_byte {
                    Duration::ZERO
                } else {
                    elapsed.saturating_sub(Duration::from_millis(last_ms.saturating_sub(1)))
                };
                if elapsed > limits.timeout {
                    cancel.cancel(format!(
                        "timed out: still running after backup_timeout = {}",
                        humantime::format_duration(limits.timeout)
                    ));
                } else if quiet > limits.stall {
                    cancel.cancel(format!(
                        "stalled: no data for stall_timeout = {}",
                        humantime::format_duration(limits.stall)
                    ));
                }
            }
        });
        let result = work(&activity);
        done.store(true, Ordering::Release);
        dog.thread().unpark();
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use dbkeep_model::stream::NoProgress;

    const LIMITS: Limits = Limits {
        timeout: Duration::from_millis(900),
        stall: Duration::from_millis(400),
        stall_before_first_byte: true,
    };

    #[test]
    fn a_quiet_run_is_cancelled_as_stalled() {
        let cancel = Cancel::new();
        watch(LIMITS, &cancel, &NoProgress, |_| {
            std::thread::sleep(Duration::from_millis(800))
        });
        assert_eq!(
            cancel.reason().as_deref(),
            Some("stalled: no data for stall_timeout = 400ms")
        );
    }

    #[test]
    fn a_busy_run_is_cancelled_at_the_timeout() {
        let cancel = Cancel::new();
        watch(LIMITS, &cancel, &NoProgress, |p| {
            for _ in 0..30 {
                p.advance(1);
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        assert_eq!(
            cancel.reason().as_deref(),
            Some("timed out: still running after backup_timeout = 900ms")
        );
    }

    #[test]
    fn a_slow_first_byte_can_be_allowed() {
        let cancel = Cancel::new();
        let limits = Limits {
            stall_before_first_byte: false,
            ..LIMITS
        };
        watch(limits, &cancel, &NoProgress, |p| {
            std::thread::sleep(Duration::from_millis(600));
            p.advance(1);
        });
        assert!(cancel.reason().is_none(), "{:?}", cancel.reason());
        // Once bytes flow, silence counts again.
        let cancel = Cancel::new();
        watch(limits, &cancel, &NoProgress, |p| {
            p.advance(1);
            std::thread::sleep(Duration::from_millis(600));
        });
        assert_eq!(
            cancel.reason().as_deref(),
            Some("stalled: no data for stall_timeout = 400ms")
        );
    }

    #[test]
    fn a_run_within_limits_is_left_alone_and_ends_the_watch_at_once() {
        let cancel = Cancel::new();
        let start = Instant::now();
        let value = watch(LIMITS, &cancel, &NoProgress, |_| 42);
        assert_eq!(value, 42);
        assert!(cancel.reason().is_none());
        assert!(
            start.elapsed() < Duration::from_millis(200),
            "the watchdog held the run up"
        );
    }
}
