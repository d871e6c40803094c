//! Leases: which instance runs what, kept in the catalog, so that several instances (on one
//! machine or several) run each database's backups one at a time and notice a run whose
//! instance is gone. A lease is taken for `lease_timeout` and renewed while its run goes on;
//! it expires by the catalog's own clock, never an instance's. On the machine that holds it, a
//! lease whose process is gone may be taken over at once.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use dbkeep_model::catalog::Catalog;
use dbkeep_model::error::Result;
use dbkeep_model::instances::Instance;

/// The resource a database's backups are run under.
pub fn backup_resource(database: &str) -> String {
    format!("backup:{database}")
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
    /// When the catalog cannot be written.
    pub fn acquire(
        catalog: Arc<dyn Catalog>,
        resource: &str,
        holder: &Instance,
        ttl: Duration,
    ) -> Result<Option<LeaseGuard>> {
        if !catalog.acquire(resource, holder, ttl)? {
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
                        let renewed = catalog.renew(&resource, &name, ttl);
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
        self.catalog.set_run(&self.resource, &self.holder, run)
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
        let released = self.catalog.release(&self.resource, &self.holder);
        if let Err(e) = released {
            tracing::warn!(resource = %self.resource, error = %e, "could not release the lease; it expires by itself");
        }
    }
}
