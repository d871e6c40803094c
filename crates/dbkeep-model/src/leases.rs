//! Leases as the catalog keeps them: which instance runs what, until when.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::error::Result;
use crate::instances::Instance;

/// A lease as the catalog holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The holding instance's name.
    pub holder: String,
    /// The run it covers (a backup's id), once that is recorded.
    pub run: Option<i64>,
    /// When the holder took it.
    pub acquired_at: DateTime<Utc>,
    /// When it expires unless renewed.
    pub expires_at: DateTime<Utc>,
    /// Whether it still holds: not expired by the catalog's clock, and its holder not a
    /// process of this machine that is gone.
    pub live: bool,
}

/// Where leases are kept: the catalog.
pub trait Leases: Send + Sync {
    /// Takes `resource` for `holder` for `ttl`, when it is free, expired, held by a process
    /// of this machine that is gone, or `holder`'s already. Returns whether it did.
    ///
    /// # Errors
    /// When the catalog cannot be written.
    fn acquire(&self, resource: &str, holder: &Instance, ttl: Duration) -> Result<bool>;

    /// Extends `holder`'s lease on `resource` by `ttl` from now; false when it no longer
    /// holds it.
    ///
    /// # Errors
    /// When the catalog cannot be written.
    fn renew(&self, resource: &str, holder: &str, ttl: Duration) -> Result<bool>;

    /// Records the run `holder`'s lease on `resource` covers.
    ///
    /// # Errors
    /// When the catalog cannot be written.
    fn set_run(&self, resource: &str, holder: &str, run: i64) -> Result<()>;

    /// Gives `resource` up, when `holder` holds it.
    ///
    /// # Errors
    /// When the catalog cannot be written.
    fn release(&self, resource: &str, holder: &str) -> Result<()>;

    /// The lease on `resource`, live or not.
    ///
    /// # Errors
    /// When the catalog cannot be read.
    fn lease(&self, resource: &str) -> Result<Option<Lease>>;
}
