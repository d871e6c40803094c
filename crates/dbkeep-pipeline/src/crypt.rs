//! Encryption at rest with age: the keys that open a backup, and the decrypting side of the
//! read pipeline. (The encrypting stage is in [`crate::pipeline`].) Files are standard age
//! files: `age -d -i key.txt FILE` opens them without dbkeep.

use std::io::{self, Read};
use std::path::Path;

use dbkeep_config::config::encryption::{IdentityFileError, read_identities};
use dbkeep_config::config::{Config, Encryption};
use dbkeep_model::catalog::BackupRecord;
use dbkeep_model::error::{Error, Result};

/// The identities that open encrypted backups, each with where it came from.
pub struct Keys {
    identities: Vec<Box<dyn age::Identity + Send + Sync>>,
    /// Where the identities came from, in the order tried: "identity_file /k.txt".
    sources: Vec<String>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Keys({} identities from {:?})",
            self.identities.len(),
            self.sources
        )
    }
}

impl Keys {
    /// The identities (`AGE-SECRET-KEY-1…` lines, as `age-keygen` writes them) in `path`.
    ///
    /// # Errors
    /// [`Error::Refused`] naming the file when it cannot be read or holds no identity.
    pub fn from_identity_file(path: &Path) -> Result<Keys> {
        Keys::read_identity_file(path).map_err(|why| {
            Error::Refused(format!(
                "age identity file {}: {why}; give the file `age-keygen -o` wrote (--identity FILE or identity_file)",
                path.display()
            ))
        })
    }

    /// [`Keys::from_identity_file`], saying what is wrong with the file.
    ///
    /// # Errors
    /// [`IdentityFileError`]: the file cannot be read, or it holds no age identity.
    pub fn read_identity_file(path: &Path) -> std::result::Result<Keys, IdentityFileError> {
        let identities = read_identities(path)?;
        Ok(Keys {
            identities,
            sources: vec![format!("the identity file {}", path.display())],
        })
    }

    /// The passphrase in environment variable `env` (age's scrypt mode).
    ///
    /// # Errors
    /// [`Error::Refused`] when the variable is unset or empty.
    pub fn from_passphrase(env: &str) -> Result<Keys> {
        let passphrase = dbkeep_config::config::passphrase(env).map_err(Error::Refused)?;
        Ok(Keys {
            identities: vec![Box::new(age::scrypt::Identity::new(passphrase))],
            sources: vec![format!("the passphrase in ${env}")],
        })
    }

    /// Whether this configuration names any way to open `record` (an `identity_file`, or its
    /// database's `age_passphrase_env`), whether or not it works.
    pub fn configured(config: &Config, record: &BackupRecord) -> bool {
        config.identity_file.is_some() || passphrase_env(config, &record.database).is_some()
    }

    /// The keys that open `record`: `None` when it is not encrypted; else every way this
    /// configuration has: the passphrase of its database's `age_passphrase_env` and the
    /// `identity_file`, the way its database encrypts with now first. One that cannot be
    /// loaded is left out while another can.
    ///
    /// # Errors
    /// [`Error::Refused`] when it is encrypted and nothing here can open it: saying what was
    /// tried and why it failed.
    pub fn for_record(config: &Config, record: &BackupRecord) -> Result<Option<Keys>> {
        if !record.encrypted {
            return Ok(None);
        }
        Keys::for_database(config, &record.database, &format!("backup #{}", record.id)).map(Some)
    }

    /// The keys that open an age file of `database` (`what` names it in errors: `backup #12`,
    /// a file's name), as [`Keys::for_record`] finds them.
    ///
    /// # Errors
    /// [`Error::Refused`] when nothing here can open it, saying what was tried.
    pub fn for_database(config: &Config, database: &str, what: &str) -> Result<Keys> {
        let passphrase = || passphrase_env(config, database).map(|env| Keys::from_passphrase(&env));
        let identity = || {
            config
                .identity_file
                .as_deref()
                .map(Keys::from_identity_file)
        };
        let by_passphrase = config
            .database(database)
            .is_ok_and(|db| matches!(db.encryption, Some(Encryption::Passphrase { .. })));
        let ways: Vec<Result<Keys>> = if by_passphrase {
            [passphrase(), identity()]
        } else {
            [identity(), passphrase()]
        }
        .into_iter()
        .flatten()
        .collect();
        if ways.is_empty() {
            return Err(Error::Refused(format!(
                "{what} is encrypted with age; opening it needs an identity that it was encrypted to: give --identity FILE (or set identity_file), or the passphrase its database's age_passphrase_env names"
            )));
        }
        let mut keys = Keys {
            identities: Vec::new(),
            sources: Vec::new(),
        };
        let mut failed = Vec::new();
        for way in ways {
            match way {
                Ok(k) => {
                    keys.identities.extend(k.identities);
                    keys.sources.extend(k.sources);
                }
                Err(e) => failed.push(e.to_string()),
            }
        }
        if keys.identities.is_empty() {
            return Err(Error::Refused(format!(
                "{what} is encrypted with age, and nothing configured can open it: {}",
                failed.join("; ")
            )));
        }
        Ok(keys)
    }

    /// The plaintext of the age file read from `input`.
    ///
    /// # Errors
    /// When `input` is not an age file, or none of these identities opens it (a wrong key).
    pub fn decrypt(&self, input: Box<dyn Read + Send>) -> io::Result<Box<dyn Read + Send>> {
        let decryptor = age::Decryptor::new_buffered(io::BufReader::new(input))
            .map_err(|e| io::Error::other(format!("not a readable age file: {e}")))?;
        let reader = decryptor
            .decrypt(
                self.identities
                    .iter()
                    .map(|i| i.as_ref() as &dyn age::Identity),
            )
            .map_err(|e| {
                io::Error::other(format!(
                    "cannot decrypt it with {}: {e}",
                    self.sources.join(" nor with ")
                ))
            })?;
        Ok(Box::new(reader))
    }
}

/// The variable holding the passphrase of `record`'s database, when it encrypts with one.
fn passphrase_env(config: &Config, database: &str) -> Option<String> {
    config
        .database(database)
        .ok()
        .and_then(|db| match &db.encryption {
            Some(Encryption::Passphrase { env }) => Some(env.clone()),
            _ => None,
        })
}

/// An age encryptor for `encryption`.
///
/// # Errors
/// [`Error::Engine`] when its keys cannot be used (the passphrase variable is unset).
pub fn encryptor(encryption: &Encryption) -> Result<age::Encryptor> {
    let recipients = encryption.recipients().map_err(Error::Engine)?;
    age::Encryptor::with_recipients(recipients.iter().map(|r| r.as_ref() as &dyn age::Recipient))
        .map_err(|e| Error::Engine(format!("cannot encrypt with age: {e}")))
}
