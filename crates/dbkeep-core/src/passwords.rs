//! Accounts for the web admin and the API: users with Argon2id passwords, login sessions,
//! and API tokens. Secrets are random, shown once, and stored only as digests.

use dbkeep_model::error::{Error, Result};

mod hashing;

pub use hashing::Busy;

/// Hashes a password with Argon2id (a random salt, the crate's default cost), on the one
/// hashing thread.
///
/// # Errors
/// When hashing fails (it does not, short of a broken random source).
pub fn hash_password(password: &str) -> Result<String> {
    let password = password.to_string();
    hashing::run(move || hashing::hash_here(&password))?
}

/// Whether `password` matches the Argon2id PHC string `hash`, checked on the hashing thread.
pub fn verify_password(password: &str, hash: &str) -> bool {
    let (password, hash) = (password.to_string(), hash.to_string());
    hashing::run(move || hashing::verify_here(&password, &hash)).unwrap_or(false)
}

/// Queues a login's password check: against `hash`, or, for an unknown user (`None`),
/// against a stand-in hash so that both cost the same. The answer arrives on the receiver.
///
/// # Errors
/// [`Busy`] when too many checks are waiting already.
pub fn queue_login_check(
    password: String,
    hash: Option<String>,
) -> std::result::Result<tokio::sync::oneshot::Receiver<bool>, Busy> {
    hashing::try_queue(move || match hash {
        Some(hash) => hashing::verify_here(&password, &hash),
        None => {
            let _ = hashing::verify_here(&password, hashing::stand_in_hash());
            false
        }
    })
}

/// A readable random password for a first administrator: 24 characters from an unambiguous set.
///
/// # Errors
/// When the operating system's random source fails.
pub fn random_password() -> Result<String> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| Error::NoRandom(e.to_string()))?;
    Ok(bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect())
}
