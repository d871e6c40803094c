//! Per-server slots: at most `max_concurrent_per_server` backups run against one server at
//! once, across every instance on the catalog. Slot `i` of server `S` is the catalog lease
//! `server:S#i`; inside this process a slot is also marked taken, since an instance may take
//! its own lease again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::Runner;
use crate::lease::LeaseGuard;
use dbkeep_model::cancel::Cancel;
use dbkeep_model::error::{Error, Result};

/// How often a backup waiting for its server's slot asks again.
pub const SLOT_POLL: Duration = Duration::from_millis(500);

/// The slots this process holds, by server.
#[derive(Debug, Default)]
pub(crate) struct Taken(Arc<Mutex<HashMap<String, Vec<bool>>>>);

/// A slot of a server, held until dropped.
#[derive(Debug)]
pub struct ServerSlot {
    _lease: LeaseGuard,
    server: String,
    index: usize,
    taken: Arc<Mutex<HashMap<String, Vec<bool>>>>,
}

impl Drop for ServerSlot {
    fn drop(&mut self) {
        let mut taken = self.taken.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = taken
            .get_mut(&self.server)
            .and_then(|v| v.get_mut(self.index))
        {
            *slot = false;
        }
    }
}

/// What asking for a slot gave.
#[derive(Debug)]
pub enum Slot {
    /// The database's server sets no limit (or it is no server's).
    Unlimited,
    /// A slot, held until dropped.
    Taken(ServerSlot),
    /// Every slot is in use; ask again later.
    Busy,
}

impl Runner {
    /// The server whose slots `database` needs, with their number, if it needs any.
    fn slot_limit(&self, database: &str) -> Option<(String, usize)> {
        let config = self.config();
        let server = config.server(config.database(database).ok()?.server()?)?;
        Some((server.name.clone(), server.max_concurrent? as usize))
    }

    /// Whether this process holds fewer than all of `database`'s server's slots (asking the
    /// catalog may then give one); true when it needs none.
    pub fn slot_free_here(&self, database: &str) -> bool {
        let Some((server, n)) = self.slot_limit(database) else {
            return true;
        };
        let taken = self.slots.0.lock().unwrap_or_else(|p| p.into_inner());
        taken
            .get(&server)
            .is_none_or(|v| v.iter().filter(|t| **t).count() < n)
    }

    /// Takes a free slot of `database`'s server, if it has a limit and one is free.
    ///
    /// # Errors
    /// When the catalog cannot be written.
    pub fn try_server_slot(&self, database: &str) -> Result<Slot> {
        let Some((server, n)) = self.slot_limit(database) else {
            return Ok(Slot::Unlimited);
        };
        let ttl = self.config().service.lease_timeout;
        for index in 0..n {
            {
                let mut taken = self.slots.0.lock().unwrap_or_else(|p| p.into_inner());
                let mine = taken.entry(server.clone()).or_default();
                mine.resize(n.max(mine.len()), false);
                if mine[index] {
                    continue;
                }
                // Marked before the catalog is asked: two threads never try one slot.
                mine[index] = true;
            }
            let resource = format!("server:{server}#{index}");
            let lease =
                LeaseGuard::acquire(Arc::clone(&self.catalog), &resource, &self.instance, ttl);
            let release = || {
                let mut taken = self.slots.0.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(slot) = taken.get_mut(&server).and_then(|v| v.get_mut(index)) {
                    *slot = false;
                }
            };
            match lease {
                Ok(Some(lease)) => {
                    return Ok(Slot::Taken(ServerSlot {
                        _lease: lease,
                        server,
                        index,
                        taken: Arc::clone(&self.slots.0),
                    }));
                }
                Ok(None) => release(),
                Err(e) => {
                    release();
                    return Err(e);
                }
            }
        }
        Ok(Slot::Busy)
    }

    /// Waits for a slot of `database`'s server (none when it needs none), asking every
    /// [`SLOT_POLL`]; gives up when `cancel` is raised.
    ///
    /// # Errors
    /// When the catalog cannot be written, or `cancel` was raised (its reason).
    pub fn wait_server_slot(&self, database: &str, cancel: &Cancel) -> Result<Option<ServerSlot>> {
        loop {
            if let Some(reason) = cancel.reason() {
                return Err(Error::Cancelled(reason));
            }
            if self.slot_free_here(database) {
                match self.try_server_slot(database)? {
                    Slot::Unlimited => return Ok(None),
                    Slot::Taken(slot) => return Ok(Some(slot)),
                    Slot::Busy => {}
                }
            }
            std::thread::sleep(SLOT_POLL);
        }
    }
}
