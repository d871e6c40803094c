//! Leases: which instance runs what, kept in the catalog, so that several instances (on one
//! machine or several) run each database's backups one at a time and notice a run whose
//! instance is gone. A lease is taken for `lease_timeout` and renewed while its run goes on;
//! it expires by the catalog's own clock, never an instance's. On the machine that holds it, a
//! lease whose process is gone may be taken over at once.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::Result;
use crate::catalog::Catalog;
pub use crate::instance::Instance;

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

/// The resource a database's backups are run under.
pub fn backup_resource(database: &str) -> String {
    format!("backup:{database}")
}

/// The leases `catalog` keeps.
fn leases_of(catalog: &dyn Catalog) -> Result<&dyn Leases> {
    catalog.leases().ok_or_else(|| crate::Error::Catalog {
        path: std::path::PathBuf::from("catalog"),
        message: "this catalog keeps no leases".into(),
    })
}

/// A lease held while a run goes on: renewed on a thread of its own every third of its
/// time, released when dropped.
pub struct LeaseGuard {
    catalog: Arc<dyn Catalog>,
    resource: String,
    holder: String,
    stop: Option<mpsc::Sender<()>>,
    renewer: Option<JoinHandle<()>>,
    lost: Arc<Mutex<bool>>,
}

impl std::fmt::Debug for LeaseGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseGuard")
            .field("resource", &self.resource)
            .field("holder", &self.holder)
            .finish_non_exhaustive()
    }
}

impl LeaseGuard {
    /// Takes `resource` for `holder` in `catalog` and keeps it renewed; `None` when another
    /// holds it.
    ///
    /// # Errors
    /// When the catalog keeps no leases or cannot be written.
    pub fn acquire(
        catalog: Arc<dyn Catalog>,
        resource: &str,
        holder: &Instance,
        ttl: Duration,
    ) -> Result<Option<LeaseGuard>> {
        if !leases_of(catalog.as_ref())?.acquire(resource, holder, ttl)? {
            return Ok(None);
        }
        let (stop, stopped) = mpsc::channel::<()>();
        let lost = Arc::new(Mutex::new(false));
        let renewer = {
            let catalog = Arc::clone(&catalog);
            let resource = resource.to_string();
            let name = holder.name.clone();
            let lost = Arc::clone(&lost);
            let every = (ttl / 3).max(Duration::from_millis(100));
            std::thread::Builder::new()
                .name("dbkeep-lease".into())
                .spawn(move || {
                    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                        let renewed = leases_of(catalog.as_ref())
                            .and_then(|l| l.renew(&resource, &name, ttl));
                        match renewed {
                            Ok(true) => {}
                            Ok(false) => {
                                tracing::error!(
                                    resource,
                                    holder = name,
                                    "lost the lease: another instance took it over"
                                );
                                *lost.lock().unwrap_or_else(|p| p.into_inner()) = true;
                                return;
                            }
                            // A catalog that does not answer for a moment: tried again.
                            Err(e) => {
                                tracing::warn!(resource, error = %e, "could not renew the lease")
                            }
                        }
                    }
                })
                .ok()
        };
        Ok(Some(LeaseGuard {
            catalog,
            resource: resource.to_string(),
            holder: holder.name.clone(),
            stop: Some(stop),
            renewer,
            lost,
        }))
    }

    /// Records the run this lease covers.
    ///
    /// # Errors
    /// When the catalog cannot be written.
    pub fn set_run(&self, run: i64) -> Result<()> {
        leases_of(self.catalog.as_ref())?.set_run(&self.resource, &self.holder, run)
    }

    /// Whether another instance took the lease over (it stopped being renewed in time).
    pub fn lost(&self) -> bool {
        *self.lost.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(renewer) = self.renewer.take() {
            let _ = renewer.join();
        }
        let released =
            leases_of(self.catalog.as_ref()).and_then(|l| l.release(&self.resource, &self.holder));
        if let Err(e) = released {
            tracing::warn!(resource = %self.resource, error = %e, "could not release the lease; it expires by itself");
        }
    }
}

/// What keeps a database's runs one at a time: a lease in the catalog, or, for a catalog
/// that keeps none, a lock file beside it.
#[derive(Debug)]
pub enum Hold {
    /// A lease, renewed while held.
    Lease(LeaseGuard),
    /// A lock file, held by this process.
    File(crate::lock::DatabaseLock),
}

impl Hold {
    /// Records the run this hold covers.
    ///
    /// # Errors
    /// When the catalog cannot be written.
    pub fn set_run(&self, run: i64) -> Result<()> {
        match self {
            Hold::Lease(guard) => guard.set_run(run),
            Hold::File(_) => Ok(()),
        }
    }
}
