//! Where backup files live: a small [`Store`] trait, keyed by `<database>/<file_name>`, with
//! two implementations: [`LocalStore`], the local backup folder, and [`ObjectStorage`], the
//! off-site destinations.

use std::io::Read;
use std::path::Path;

use dbkeep_model::cancel::Cancel;
use dbkeep_model::error::Result;
use dbkeep_model::stream::Progress;

mod local;
mod object;

pub use local::LocalStore;
pub use object::ObjectStorage;

/// The key of `file_name` of `database` in a [`Store`].
pub fn store_key(database: &str, file_name: &str) -> String {
    format!("{database}/{file_name}")
}

/// What a store holds of an uploaded file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Bytes uploaded.
    pub size_bytes: u64,
    /// SHA-256 of the bytes uploaded, lowercase hex.
    pub sha256: String,
}

/// How an upload reports and stops: the run's progress line (each upload a phase of it) and
/// its cancel flag (a shutdown, Ctrl-C), which stops an upload under way.
#[derive(Clone, Copy)]
pub struct Sending<'a> {
    /// Where the bytes sent are counted.
    pub progress: &'a dyn Progress,
    /// Raised to stop.
    pub cancel: &'a Cancel,
}

/// A place that keeps copies of backup files.
pub trait Store: Send + Sync {
    /// Its name: `local`, or the destination's `[[offsite]] name`.
    fn name(&self) -> &str;

    /// Uploads the file at `path` as `key`, streaming, and returns what was sent; the size the
    /// store then reports is checked against it. The bytes read for sending are counted in
    /// `sending.progress`; once `sending.cancel` is raised the upload stops, and nothing of it
    /// stays.
    ///
    /// # Errors
    /// [`dbkeep_model::error::Error::Engine`] with the store's message, or the reason it was cancelled.
    fn put_file(&self, key: &str, path: &Path, sending: Sending<'_>) -> Result<Stored>;

    /// Reads the copy at `key`.
    ///
    /// # Errors
    /// [`dbkeep_model::error::Error::Engine`] when it is missing or cannot be read.
    fn open(&self, key: &str) -> Result<Box<dyn Read + Send>>;

    /// Whether the store holds `key`.
    ///
    /// # Errors
    /// [`dbkeep_model::error::Error::Engine`] when the store cannot tell.
    fn exists(&self, key: &str) -> Result<bool>;

    /// Deletes the copy at `key` (gone already is fine).
    ///
    /// # Errors
    /// [`dbkeep_model::error::Error::Engine`] with the store's message.
    fn delete(&self, key: &str) -> Result<()>;
}
