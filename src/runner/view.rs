//! The read side of a configuration's backups: what the web admin, the API and the verdicts
//! need (the configuration, the catalog, the accounts and the stored files) and nothing that
//! runs a backup, a prune or a restore. Those go through the service's jobs.

use crate::accounts::Accounts;
use crate::catalog::{BackupRecord, Catalog};
use crate::config::Config;

/// Reads a configuration's backups; [`crate::Runner`] is one.
pub trait View: Send + Sync {
    /// The configuration.
    fn config(&self) -> &Config;

    /// The catalog.
    fn catalog(&self) -> &dyn Catalog;

    /// The users, sessions and API tokens kept beside the catalog, when it keeps them.
    fn accounts(&self) -> Option<&dyn Accounts>;

    /// Whether a catalog row is one of this configuration's backups ([`crate::Runner::owns`]).
    fn owns(&self, record: &BackupRecord) -> bool;

    /// Where events go, and what failed to get there.
    fn notifier(&self) -> &crate::notify::Notifier;

    /// A backup's stored bytes: its local file, or a checked copy off-site
    /// ([`crate::Runner::open_stored`]).
    ///
    /// # Errors
    /// As [`crate::Runner::open_stored`].
    fn open_stored(&self, record: &BackupRecord) -> std::io::Result<Box<dyn std::io::Read + Send>>;

    /// The off-site destinations.
    fn offsite(&self) -> &crate::offsite::Destinations;

    /// The off-site copies the catalog records, when it records them.
    fn copies(&self) -> Option<&dyn crate::offsite::Copies>;

    /// Opens a backup row's file for reading ([`crate::Runner::open_backup`]).
    ///
    /// # Errors
    /// As [`crate::Runner::open_backup`].
    fn open_backup(&self, record: &BackupRecord) -> std::io::Result<std::fs::File>;

    /// This instance's name ([`crate::Runner::instance`]).
    fn instance_name(&self) -> &str;

    /// What the verdicts were last judged from, kept until the catalog changes.
    fn facts_cache(&self) -> &crate::verdict::FactsCache;
}

impl View for crate::Runner {
    fn config(&self) -> &Config {
        crate::Runner::config(self)
    }

    fn catalog(&self) -> &dyn Catalog {
        crate::Runner::catalog(self)
    }

    fn accounts(&self) -> Option<&dyn Accounts> {
        crate::Runner::accounts(self)
    }

    fn owns(&self, record: &BackupRecord) -> bool {
        crate::Runner::owns(self, record)
    }

    fn open_backup(&self, record: &BackupRecord) -> std::io::Result<std::fs::File> {
        crate::Runner::open_backup(self, record)
    }

    fn notifier(&self) -> &crate::notify::Notifier {
        crate::Runner::notifier(self)
    }

    fn offsite(&self) -> &crate::offsite::Destinations {
        crate::Runner::offsite(self)
    }

    fn open_stored(&self, record: &BackupRecord) -> std::io::Result<Box<dyn std::io::Read + Send>> {
        crate::Runner::open_stored(self, record)
    }

    fn copies(&self) -> Option<&dyn crate::offsite::Copies> {
        crate::Runner::copies(self)
    }

    fn instance_name(&self) -> &str {
        &crate::Runner::instance(self).name
    }

    fn facts_cache(&self) -> &crate::verdict::FactsCache {
        crate::Runner::facts_cache(self)
    }
}
