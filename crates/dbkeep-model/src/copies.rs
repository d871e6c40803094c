//! Off-site copies as the catalog records them: one row per backup and destination.

use chrono::{DateTime, Utc};

use crate::error::Result;
use crate::vocab::BackupId;

/// Whether a copy arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CopyState {
    /// Uploaded, and its size and SHA-256 match the backup's.
    Uploaded,
    /// Every try failed; `error` says why.
    Failed,
}

impl CopyState {
    /// The word stored in the catalog.
    pub fn as_str(self) -> &'static str {
        match self {
            CopyState::Uploaded => "uploaded",
            CopyState::Failed => "failed",
        }
    }
}

/// One backup's copy at one destination.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Copy {
    /// The backup.
    pub backup_id: BackupId,
    /// The destination's name.
    pub store: String,
    /// Where it is there: `<database>/<file_name>`.
    pub key: String,
    /// Bytes uploaded.
    pub size_bytes: Option<u64>,
    /// SHA-256 of the bytes uploaded.
    pub sha256: Option<String>,
    /// Whether it arrived.
    pub state: CopyState,
    /// Why it did not.
    pub error: Option<String>,
    /// When it arrived.
    pub uploaded_at: Option<DateTime<Utc>>,
    /// When retention deleted it.
    pub pruned_at: Option<DateTime<Utc>>,
}

/// Where copies are recorded: the catalog.
pub trait Copies: Send + Sync {
    /// Records (or replaces) a backup's copy at one destination.
    ///
    /// # Errors
    /// When the catalog cannot be written.
    fn record_copy(&self, copy: &Copy) -> Result<()>;

    /// A backup's copies, by destination.
    ///
    /// # Errors
    /// When the catalog cannot be read.
    fn copies(&self, backup_id: BackupId) -> Result<Vec<Copy>>;

    /// How many copies failed after every try, per destination, ever.
    ///
    /// # Errors
    /// When the catalog cannot be read.
    fn failure_counts(&self) -> Result<Vec<(String, u64)>>;

    /// When each database's newest copy arrived at each destination: (database, destination,
    /// time).
    ///
    /// # Errors
    /// When the catalog cannot be read.
    fn last_uploads(&self) -> Result<Vec<(String, String, DateTime<Utc>)>>;

    /// Records that retention deleted each (backup, destination) copy of `copies` at `at`,
    /// all in one transaction (pairs with no copy are passed over).
    ///
    /// # Errors
    /// When the catalog cannot be written; then none of them is marked.
    fn mark_copies_pruned(&self, copies: &[(BackupId, String)], at: DateTime<Utc>) -> Result<()>;
}
