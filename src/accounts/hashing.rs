//! Argon2id on one dedicated thread. However many logins arrive at once, one hash runs at a
//! time on the same thread, so its 19 MiB of working memory is reused rather than multiplied by
//! the number of waiting threads; a login that finds the short queue full is refused at once.

use std::panic::AssertUnwindSafe;
use std::sync::OnceLock;
use std::sync::mpsc::{self, SyncSender, TrySendError};

use crate::{Error, Result};

/// Hashes that may wait for the worker beside the one it is computing.
pub const QUEUE: usize = 8;

type Job = Box<dyn FnOnce() + Send>;

/// The hashing queue was full: too many password checks at once. Try again in a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// The queue of the hashing thread, started on first use.
fn worker() -> Option<&'static SyncSender<Job>> {
    static WORKER: OnceLock<Option<SyncSender<Job>>> = OnceLock::new();
    WORKER
        .get_or_init(|| {
            let (tx, rx) = mpsc::sync_channel::<Job>(QUEUE);
            std::thread::Builder::new()
                .name("dbkeep-argon2".into())
                .spawn(move || {
                    for job in rx {
                        // A job that panics must not take the only hashing thread with it.
                        let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
                    }
                })
                .ok()
                .map(|_| tx)
        })
        .as_ref()
}

/// Runs `f` on the hashing thread, waiting for room in the queue; for the command line and
/// start-up, where waiting is right.
///
/// # Errors
/// When the hashing thread is gone or `f` panicked.
pub fn run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let Some(worker) = worker() else {
        return Ok(f()); // No thread could be started: hash here.
    };
    let (tx, rx) = mpsc::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(f());
    });
    let lost = || Error::Engine("the password hashing thread stopped".into());
    worker.send(job).map_err(|_| lost())?;
    rx.recv().map_err(|_| lost())
}

/// Queues `f` on the hashing thread unless the queue is full; its result arrives on the
/// returned receiver (closed without a value if `f` panicked).
///
/// # Errors
/// [`Busy`] when [`QUEUE`] jobs are waiting already (or the thread is gone).
pub fn try_queue<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> std::result::Result<tokio::sync::oneshot::Receiver<T>, Busy> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(f());
    });
    match worker().map(|w| w.try_send(job)) {
        Some(Ok(())) => Ok(rx),
        Some(Err(TrySendError::Full(_) | TrySendError::Disconnected(_))) | None => Err(Busy),
    }
}

/// Argon2id of `password` with a random salt, computed on the calling thread.
pub(super) fn hash_here(password: &str) -> Result<String> {
    use argon2::password_hash::PasswordHasher;
    argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| Error::Engine(format!("cannot hash the password: {e}")))
}

/// Whether `password` matches the PHC string `hash`, computed on the calling thread.
pub(super) fn verify_here(password: &str, hash: &str) -> bool {
    use argon2::password_hash::{PasswordVerifier, phc::PasswordHash};
    PasswordHash::new(hash).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A hash of a random password no one knows, so that an unknown user name costs a login
/// as long as a wrong password does. Made on the hashing thread on first use.
pub(super) fn stand_in_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        let secret = super::random_token().unwrap_or_else(|_| "x".repeat(64));
        hash_here(&secret).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_full_queue_refuses_at_once_and_the_worker_survives_a_panicking_job() {
        // Hold the worker, then fill the queue behind it.
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let held = try_queue(move || {
            let _ = release_rx.recv();
        })
        .unwrap();
        let mut waiting = Vec::new();
        let busy = loop {
            match try_queue(|| 1) {
                Ok(rx) => waiting.push(rx),
                Err(busy) => break busy,
            }
            assert!(waiting.len() <= QUEUE + 1, "the queue never filled");
        };
        assert_eq!(busy, Busy);
        release_tx.send(()).unwrap();
        held.blocking_recv().unwrap();
        for rx in waiting {
            assert_eq!(rx.blocking_recv().unwrap(), 1);
        }
        let panicked = try_queue(|| -> u8 { panic!("a job panics") }).unwrap();
        assert!(panicked.blocking_recv().is_err());
        assert_eq!(run(|| 7).unwrap(), 7);
    }
}
