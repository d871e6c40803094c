//! Encryption settings: `age_recipients` or `age_passphrase_env`, at the top level or per
//! database, and the `identity_file` that opens what they encrypted.

use std::io::{self, Read};
use std::path::Path;
use std::str::FromStr;

use toml::Spanned;

use dbkeep_model::error::ConfigError;

use super::Source;

/// How a database's backups are encrypted with age (the standard `age` command opens them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encryption {
    /// To these X25519 recipients (`age1…`); any one of their identities decrypts.
    Recipients(Vec<String>),
    /// With the passphrase in this environment variable (age's scrypt mode).
    Passphrase {
        /// The variable's name.
        env: String,
    },
}

impl Encryption {
    /// The age recipients this encryption writes to.
    ///
    /// # Errors
    /// When the passphrase variable is unset or empty.
    pub fn recipients(&self) -> Result<Vec<Box<dyn age::Recipient + Send>>, String> {
        match self {
            Encryption::Recipients(keys) => keys
                .iter()
                .map(|k| {
                    age::x25519::Recipient::from_str(k)
                        .map(|r| Box::new(r) as Box<dyn age::Recipient + Send>)
                        .map_err(|e| format!("age recipient {k}: {e}"))
                })
                .collect(),
            Encryption::Passphrase { env } => {
                let passphrase = passphrase(env)?;
                Ok(vec![Box::new(age::scrypt::Recipient::new(passphrase))])
            }
        }
    }
}

/// The passphrase in environment variable `env`.
///
/// # Errors
/// When it is unset or empty.
pub fn passphrase(env: &str) -> Result<age::secrecy::SecretString, String> {
    match std::env::var(env) {
        Ok(v) if !v.is_empty() => Ok(v.into()),
        _ => Err(format!(
            "the age passphrase variable {env} (age_passphrase_env) is unset or empty; set it in the environment of dbkeep"
        )),
    }
}

/// The encryption keys of one level (the top level or a `[[databases]]` entry), checked.
pub(super) fn parse(
    src: &Source<'_>,
    whose: &str,
    recipients: Option<&Spanned<Vec<Spanned<String>>>>,
    passphrase_env: Option<&Spanned<String>>,
) -> Result<Option<Encryption>, ConfigError> {
    match (recipients, passphrase_env) {
        (Some(_), Some(env)) => Err(src.error(
            env.span(),
            format!("{whose}: give `age_recipients` or `age_passphrase_env`, not both (age cannot mix a passphrase with recipients)"),
        )),
        (Some(list), None) => {
            if list.get_ref().is_empty() {
                return Err(src.error(
                    list.span(),
                    format!("`age_recipients` of {whose} is empty; list public keys made by `age-keygen` (age1…), or remove it"),
                ));
            }
            let mut keys = Vec::new();
            for key in list.get_ref() {
                let text = key.get_ref().trim();
                if let Err(e) = age::x25519::Recipient::from_str(text) {
                    return Err(src.error(
                        key.span(),
                        format!("`age_recipients` of {whose}: `{text}` is not an age public key ({e}); write the `age1…` line that `age-keygen` prints as its public key"),
                    ));
                }
                keys.push(text.to_string());
            }
            Ok(Some(Encryption::Recipients(keys)))
        }
        (None, Some(env)) => {
            let name = env.get_ref();
            if !super::names::is_env_name(name) {
                return Err(src.error(
                    env.span(),
                    format!("`age_passphrase_env` of {whose} must be an environment variable name such as DBKEEP_AGE_PASSPHRASE"),
                ));
            }
            Ok(Some(Encryption::Passphrase { env: name.clone() }))
        }
        (None, None) => Ok(None),
    }
}

/// The largest identity file read: a few keys, not a file of another kind.
const IDENTITY_LIMIT: u64 = 1024 * 1024;

/// Why a file does not give age identities.
#[derive(Debug, thiserror::Error)]
pub enum IdentityFileError {
    /// It cannot be opened or read.
    #[error("{0}")]
    Unreadable(io::Error),
    /// It is read, and holds no identity (`AGE-SECRET-KEY-1…` lines) that age can use.
    #[error("{0}")]
    NotAnIdentity(String),
}

/// The age identities in the file at `path`, saying what is wrong with the file.
///
/// # Errors
/// [`IdentityFileError`]: the file cannot be read, or it holds no age identity.
pub fn read_identities(
    path: &Path,
) -> Result<Vec<Box<dyn age::Identity + Send + Sync>>, IdentityFileError> {
    let file = std::fs::File::open(path).map_err(IdentityFileError::Unreadable)?;
    let file = io::BufReader::new(file.take(IDENTITY_LIMIT));
    let identities = age::IdentityFile::from_buffer(file)
        .map_err(|e| IdentityFileError::NotAnIdentity(e.to_string()))?
        .into_identities()
        .map_err(|e| IdentityFileError::NotAnIdentity(e.to_string()))?;
    if identities.is_empty() {
        return Err(IdentityFileError::NotAnIdentity(
            "it holds no identity".into(),
        ));
    }
    Ok(identities)
}
