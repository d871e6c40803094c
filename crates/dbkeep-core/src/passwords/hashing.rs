//! Argon2id on one dedicated thread with one working buffer. However many logins arrive at
//! once, one hash runs at a time and every hash reuses the same 19 MiB of memory (the
//! allocator does not reliably reuse a freed buffer that large, so each hash would otherwise
//! add its own); a login that finds the short queue full is refused at once.

use std::panic::AssertUnwindSafe;
use std::sync::OnceLock;
use std::sync::mpsc::{self, SyncSender, TrySendError};

use dbkeep_model::error::{Error, Result};

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

thread_local! {
    /// The Argon2 working memory of this thread (only the hashing thread ever has one).
    static MEMORY: std::cell::RefCell<Vec<argon2::Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs Argon2 with `params` into `out`, in this thread's reused working memory.
fn compute(
    argon: &argon2::Argon2<'_>,
    password: &str,
    salt: &[u8],
    out: &mut [u8],
) -> std::result::Result<(), argon2::Error> {
    MEMORY.with(|memory| {
        let mut memory = memory.borrow_mut();
        let blocks = argon.params().block_count();
        if memory.len() < blocks {
            memory.resize(blocks, argon2::Block::new());
        }
        argon.hash_password_into_with_memory(password.as_bytes(), salt, out, &mut memory[..blocks])
    })
}

/// Argon2id of `password` with a random salt and the crate's default cost, as a PHC string;
/// computed on the calling thread.
pub(super) fn hash_here(password: &str) -> Result<String> {
    use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
    let failed =
        |e: &dyn std::fmt::Display| Error::Engine(format!("cannot hash the password: {e}"));
    let mut salt = [0u8; argon2::RECOMMENDED_SALT_LEN];
    getrandom::fill(&mut salt).map_err(|e| failed(&e))?;
    let argon = argon2::Argon2::default();
    let mut out = [0u8; argon2::Params::DEFAULT_OUTPUT_LEN];
    compute(&argon, password, &salt, &mut out).map_err(|e| failed(&e))?;
    let phc = PasswordHash {
        algorithm: argon2::Algorithm::Argon2id.ident(),
        version: Some(argon2::Version::V0x13.into()),
        params: ParamsString::try_from(argon.params()).map_err(|e| failed(&e))?,
        salt: Some(Salt::new(&salt).map_err(|e| failed(&e))?),
        hash: Some(Output::new(&out).map_err(|e| failed(&e))?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the Argon2 PHC string `hash` (its own algorithm, version, cost
/// and salt), compared in constant time; computed on the calling thread.
pub(super) fn verify_here(password: &str, hash: &str) -> bool {
    use subtle::ConstantTimeEq;
    let check = || -> Option<bool> {
        let phc = argon2::PasswordHash::new(hash).ok()?;
        let algorithm = argon2::Algorithm::try_from(phc.algorithm.as_str()).ok()?;
        let version = match phc.version {
            Some(v) => argon2::Version::try_from(v).ok()?,
            None => argon2::Version::default(),
        };
        let params = argon2::Params::try_from(&phc).ok()?;
        let expected = phc.hash.as_ref()?.as_bytes();
        let mut out = vec![0u8; expected.len()];
        let argon = argon2::Argon2::new(algorithm, version, params);
        compute(&argon, password, phc.salt.as_ref()?, &mut out).ok()?;
        Some(bool::from(out.ct_eq(expected)))
    };
    check().unwrap_or(false)
}

/// A hash of a random password no one knows, so that an unknown user name costs a login
/// as long as a wrong password does. Made on the hashing thread on first use.
pub(super) fn stand_in_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        let secret = dbkeep_model::token::random_token().unwrap_or_else(|_| "x".repeat(64));
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

    #[test]
    fn hashes_verify_here_and_with_the_argon2_crate_itself() {
        use argon2::password_hash::PasswordVerifier;
        let hash = run(|| hash_here("a passphrase")).unwrap().unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        let theirs = argon2::PasswordHash::new(&hash).unwrap();
        assert!(
            argon2::Argon2::default()
                .verify_password(b"a passphrase", &theirs)
                .is_ok()
        );
        let check = |password: &'static str, hash: String| {
            run(move || verify_here(password, &hash)).unwrap()
        };
        assert!(check("a passphrase", hash.clone()));
        assert!(!check("another one", hash.clone()));
        assert!(!check("a passphrase", "not a hash".into()));
        // A hash made by the crate, with other costs, verifies too.
        let other = {
            use argon2::password_hash::PasswordHasher;
            let params = argon2::Params::new(8 * 1024, 3, 1, None).unwrap();
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
                .hash_password(b"a passphrase")
                .unwrap()
                .to_string()
        };
        assert!(check("a passphrase", other.clone()));
        assert!(!check("a passphrasE", other));
    }
}
