//! Throttling of failed logins per user name and per client address, counted atomically:
//! an attempt is counted when it starts, so parallel requests cannot slip past the limit,
//! and the table is bounded, so a spray of names cannot grow the process.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed (or still running) logins allowed per key within `WINDOW` ...
pub const MAX_FAILURES: usize = 5;
/// ... this long ...
pub const WINDOW: Duration = Duration::from_secs(60);
/// ... before the key is refused for this long.
pub const LOCKOUT: Duration = Duration::from_secs(300);
/// At most this many keys are remembered (each at most a few hundred bytes).
pub const MAX_KEYS: usize = 10_000;

/// Why a login attempt is refused before any password is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// A key failed `MAX_FAILURES` times within `WINDOW`; wait this long.
    Locked(Duration),
    /// `MAX_FAILURES` attempts for a key are already counted (some still running).
    TooMany,
    /// The table of keys is full of recent failures from many names and addresses.
    Full,
}

impl Refused {
    /// How long to tell the client to wait before trying again (`Retry-After`), in seconds.
    pub fn retry_after(self) -> u64 {
        match self {
            Refused::Locked(wait) => wait.as_secs().max(1),
            Refused::TooMany | Refused::Full => WINDOW.as_secs(),
        }
    }
}

#[derive(Default)]
struct Failures {
    /// Failures within the last `WINDOW`.
    failed: Vec<Instant>,
    /// Attempts counted that have not ended yet.
    running: usize,
    /// Refused until then, once `MAX_FAILURES` failed within a `WINDOW`.
    locked_until: Option<Instant>,
}

impl Failures {
    fn forget_old(&mut self, now: Instant) {
        self.failed.retain(|t| now.duration_since(*t) < WINDOW);
        if self.locked_until.is_some_and(|until| until <= now) {
            self.locked_until = None;
        }
    }

    fn idle(&self) -> bool {
        self.failed.is_empty() && self.running == 0 && self.locked_until.is_none()
    }
}

/// Login attempts per key (`user:NAME`, `addr:IP`).
#[derive(Default)]
pub struct Throttle(Mutex<HashMap<String, Failures>>);

/// A counted attempt. Report a wrong password with [`Attempt::failed`]; dropped any other way
/// (logged in, an error, the client gone) it stops counting.
#[must_use]
pub struct Attempt<'a> {
    throttle: &'a Throttle,
    keys: Vec<String>,
    ended: bool,
}

impl std::fmt::Debug for Attempt<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attempt").field("keys", &self.keys).finish()
    }
}

impl Throttle {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Failures>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts an attempt for every key, or refuses it when any key is locked or has
    /// `MAX_FAILURES` failed and running attempts already. Check and count happen under one
    /// lock, so parallel requests cannot pass the limit together.
    ///
    /// # Errors
    /// [`Refused`] says why the attempt may not go on.
    pub fn begin(&self, keys: Vec<String>, now: Instant) -> Result<Attempt<'_>, Refused> {
        let mut map = self.map();
        let new_keys = keys.iter().filter(|k| !map.contains_key(*k)).count();
        if map.len() + new_keys > MAX_KEYS {
            map.retain(|_, f| {
                f.forget_old(now);
                !f.idle()
            });
            if map.len() + new_keys > MAX_KEYS {
                return Err(Refused::Full);
            }
        }
        for key in &keys {
            if let Some(f) = map.get_mut(key) {
                f.forget_old(now);
                if let Some(until) = f.locked_until {
                    return Err(Refused::Locked(until.saturating_duration_since(now)));
                }
                if f.failed.len() + f.running >= MAX_FAILURES {
                    return Err(Refused::TooMany);
                }
            }
        }
        for key in &keys {
            map.entry(key.clone()).or_default().running += 1;
        }
        Ok(Attempt {
            throttle: self,
            keys,
            ended: false,
        })
    }

    /// How many keys are remembered.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.map().len()
    }
}

impl Attempt<'_> {
    /// The password was wrong: the attempt counts as a failure, and a key with `MAX_FAILURES`
    /// failures within `WINDOW` is locked out for `LOCKOUT`. Returns whether this locked a key.
    pub fn failed(mut self, now: Instant) -> bool {
        self.ended = true;
        let mut map = self.throttle.map();
        let mut locked = false;
        for key in &self.keys {
            let f = map.entry(key.clone()).or_default();
            f.running = f.running.saturating_sub(1);
            f.forget_old(now);
            f.failed.push(now);
            if f.failed.len() >= MAX_FAILURES {
                f.locked_until = Some(now + LOCKOUT);
                f.failed.clear();
                locked = true;
            }
        }
        locked
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        let mut map = self.throttle.map();
        for key in &self.keys {
            if let Some(f) = map.get_mut(key) {
                f.running = f.running.saturating_sub(1);
                if f.idle() {
                    map.remove(key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn keys(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn five_failures_in_a_minute_lock_the_key_out_and_others_stay_open() {
        let throttle = Throttle::default();
        let now = Instant::now();
        for _ in 0..MAX_FAILURES {
            let a = throttle.begin(keys(&["user:alice"]), now).unwrap();
            let _ = a.failed(now);
        }
        assert!(matches!(
            throttle.begin(keys(&["user:alice"]), now),
            Err(Refused::Locked(_))
        ));
        let bob = throttle.begin(keys(&["user:bob"]), now).unwrap();
        drop(bob);
        // Any of a request's keys (its user or its address) being locked refuses it.
        assert!(
            throttle
                .begin(keys(&["user:bob", "user:alice"]), now)
                .is_err()
        );
        // The lockout lasts `LOCKOUT`, not `WINDOW`.
        let later = now + WINDOW + Duration::from_secs(1);
        assert!(throttle.begin(keys(&["user:alice"]), later).is_err());
        let after = now + LOCKOUT + Duration::from_secs(1);
        assert!(throttle.begin(keys(&["user:alice"]), after).is_ok());
    }

    #[test]
    fn attempts_still_running_count_so_parallel_requests_cannot_pass_the_limit() {
        let throttle = Throttle::default();
        let now = Instant::now();
        let running: Vec<Attempt<'_>> = (0..MAX_FAILURES)
            .map(|_| throttle.begin(keys(&["user:a", "addr:1"]), now).unwrap())
            .collect();
        assert_eq!(
            throttle
                .begin(keys(&["user:a", "addr:1"]), now)
                .unwrap_err(),
            Refused::TooMany
        );
        // One logs in (and stops counting); four failures do not lock the key yet.
        let mut running = running.into_iter();
        drop(running.next());
        for a in running {
            assert!(!a.failed(now));
        }
        let fifth = throttle.begin(keys(&["user:a"]), now).unwrap();
        assert!(fifth.failed(now));
        assert!(matches!(
            throttle.begin(keys(&["user:a"]), now),
            Err(Refused::Locked(_))
        ));
        // An attempt abandoned half-way (the client went away) stops counting too.
        let gone = throttle.begin(keys(&["user:b"]), now).unwrap();
        drop(gone);
        assert_eq!(throttle.len(), 2);
    }

    #[test]
    fn the_table_is_bounded_and_forgets_what_expired() {
        let throttle = Throttle::default();
        let now = Instant::now();
        for i in 0..MAX_KEYS {
            let a = throttle.begin(vec![format!("user:{i}")], now).unwrap();
            let _ = a.failed(now);
        }
        assert_eq!(
            throttle.begin(keys(&["user:new"]), now).unwrap_err(),
            Refused::Full
        );
        assert_eq!(throttle.len(), MAX_KEYS);
        let later = now + WINDOW + Duration::from_secs(1);
        let fresh = throttle.begin(keys(&["user:new"]), later).unwrap();
        assert_eq!(throttle.len(), 1);
        drop(fresh);
    }
}
