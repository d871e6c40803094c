//! Random secrets and the digests they are stored under.

use crate::error::{Error, Result};

/// A new random secret (256 bits, hex) for session cookies, CSRF and API tokens.
///
/// # Errors
/// When the operating system's random source fails.
pub fn random_token() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| Error::NoRandom(e.to_string()))?;
    Ok(crate::text::hex(&bytes))
}

/// The digest under which a token is stored.
pub fn token_digest(token: &str) -> String {
    use sha2::{Digest, Sha256};
    crate::text::hex(&Sha256::digest(token.as_bytes()))
}
