//! The read side of a configuration's backups: what the web admin, the API and the verdicts
//! need (the configuration, the catalog, the accounts and the stored files) and nothing that
//! runs a backup, a prune or a restore. Those go through the service's jobs.

use dbkeep_config::config::Config;
use dbkeep_model::accounts::Accounts;
use dbkeep_model::catalog::{BackupRecord, Catalog};

/// Reads a configuration's backups; [`crate::runner::Runner`] is one.
pub trait View: Send + Sync {
    /// The configuration.
    fn config(&self) -> std::sync::Arc<Config>;

    /// The catalog.
    fn catalog(&self) -> &dyn Catalog;

    /// The users, sessions and API tokens kept beside the catalog.
    fn accounts(&self) -> &dyn Accounts;

    /// Whether a catalog row is one of this configuration's backups ([`crate::runner::Runner::owns`]).
    fn owns(&self, record: &BackupRecord) -> bool;

    /// Where events go, and what failed to get there.
    fn notifier(&self) -> &dbkeep_notify::notify::Notifier;

    /// A backup's stored bytes: its local file, or a checked copy off-site
    /// ([`crate::runner::Runner::open_stored`]).
    ///
    /// # Errors
    /// As [`crate::runner::Runner::open_stored`].
    fn open_stored(&self, record: &BackupRecord) -> std::io::Result<Box<dyn std::io::Read + Send>>;

    /// The off-site destinations.
    fn offsite(&self) -> &crate::offsite::Destinations;

    /// The off-site copies the catalog records.
    fn copies(&self) -> &dyn dbkeep_model::copies::Copies;

    /// Opens a backup row's file for reading ([`crate::runner::Runner::open_backup`]).
    ///
    /// # Errors
    /// As [`crate::runner::Runner::open_backup`].
    fn open_backup(&self, record: &BackupRecord) -> std::io::Result<std::fs::File>;

    /// This instance's name ([`crate::runner::Runner::instance`]).
    fn instance_name(&self) -> &str;

    /// What the backups use where, and when the local disk fills up
    /// ([`crate::runner::Runner::space`]).
    ///
    /// # Errors
    /// As [`crate::runner::Runner::space`].
    fn space(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> dbkeep_model::error::Result<crate::space::Space>;
}

impl View for crate::runner::Runner {
    fn config(&self) -> std::sync::Arc<Config> {
        crate::runner::Runner::config(self)
    }

    fn catalog(&self) -> &dyn Catalog {
        crate::runner::Runner::catalog(self)
    }

    fn accounts(&self) -> &dyn Accounts {
        crate::runner::Runner::accounts(self)
    }

    fn owns(&self, record: &BackupRecord) -> bool {
        crate::runner::Runner::owns(self, record)
    }

    fn open_backup(&self, record: &BackupRecord) -> std::io::Result<std::fs::File> {
        crate::runner::Runner::open_backup(self, record)
    }

    fn notifier(&self) -> &dbkeep_notify::notify::Notifier {
        crate::runner::Runner::notifier(self)
    }

    fn offsite(&self) -> &crate::offsite::Destinations {
        crate::runner::Runner::offsite(self)
    }

    fn open_stored(&self, record: &BackupRecord) -> std::io::Result<Box<dyn std::io::Read + Send>> {
        crate::runner::Runner::open_stored(self, record)
    }

    fn copies(&self) -> &dyn dbkeep_model::copies::Copies {
        crate::runner::Runner::copies(self)
    }

    fn instance_name(&self) -> &str {
        &crate::runner::Runner::instance(self).name
    }

    fn space(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> dbkeep_model::error::Result<crate::space::Space> {
        crate::runner::Runner::space(self, now)
    }
}
