//! What discovery has seen of each `[[servers]]` entry, as the catalog keeps it: every
//! database a server showed (and whether it is still there), and how each server answered
//! last. Kept in the catalog so that every instance sharing it sees the same set, and so that
//! "found" and "gone" are announced once, by the instance whose write changed the state.

use chrono::{DateTime, Utc};

use crate::error::Result;

/// Where a discovered database stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DiscoveryState {
    /// The server shows it and dbkeep can read it: it is backed up on the server's schedules.
    Known,
    /// The server no longer shows it (dropped, renamed, now excluded): not scheduled, its
    /// backups kept under retention.
    Gone,
    /// The server shows it but the configured user cannot read it: not scheduled, and shown
    /// with the server's error.
    Unreadable,
}

impl DiscoveryState {
    /// The word kept in the catalog and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            DiscoveryState::Known => "known",
            DiscoveryState::Gone => "gone",
            DiscoveryState::Unreadable => "unreadable",
        }
    }

    /// The state a stored word names.
    pub fn from_word(word: &str) -> Option<DiscoveryState> {
        match word {
            "known" => Some(DiscoveryState::Known),
            "gone" => Some(DiscoveryState::Gone),
            "unreadable" => Some(DiscoveryState::Unreadable),
            _ => None,
        }
    }
}

impl std::fmt::Display for DiscoveryState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One database a server showed, as the catalog records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredDatabase {
    /// dbkeep's name for it (also its backup folder): unique across the catalog.
    pub name: String,
    /// The `[[servers]]` entry that found it.
    pub server: String,
    /// Its name on the server (a SQLite glob's: the file's path).
    pub database: String,
    /// Where it stands.
    pub state: DiscoveryState,
    /// When it was first seen.
    pub found_at: DateTime<Utc>,
    /// When its state last changed.
    pub changed_at: DateTime<Utc>,
    /// Why it is unreadable (the server's error), or what made it gone.
    pub detail: Option<String>,
}

/// How a server answered its last discovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerCheck {
    /// The `[[servers]]` entry.
    pub server: String,
    /// When it was asked.
    pub checked_at: DateTime<Utc>,
    /// Why it could not be asked (unreachable, refused the login); `None`: it answered.
    pub error: Option<String>,
}

/// Where discovery's findings are kept: the catalog.
pub trait Discoveries: Send + Sync {
    /// Every discovered database of every server, by name.
    ///
    /// # Errors
    /// When the catalog cannot be read.
    fn discovered(&self) -> Result<Vec<DiscoveredDatabase>>;

    /// Records `database` as its `state` says (its `found_at` is kept when the row exists;
    /// `changed_at` and `detail` are written when the state changes). Returns whether this
    /// call created the row or changed its state: the caller that sees `true` announces it.
    /// Atomic across processes sharing the catalog: of two racing writes, one sees `true`.
    ///
    /// # Errors
    /// When the catalog cannot be written.
    fn set_discovered(&self, database: &DiscoveredDatabase) -> Result<bool>;

    /// Records how `server` answered at `at` (`error`: why it did not).
    ///
    /// # Errors
    /// When the catalog cannot be written.
    fn record_server_check(
        &self,
        server: &str,
        at: DateTime<Utc>,
        error: Option<&str>,
    ) -> Result<()>;

    /// The last answer of every server asked so far.
    ///
    /// # Errors
    /// When the catalog cannot be read.
    fn server_checks(&self) -> Result<Vec<ServerCheck>>;
}
