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
pub struct ServerSlot {
    // Given back in this order: the catalog's lease, then this process's mark.
    _lease: LeaseGuard,
    mark: Mark,
    /// Whatever else the holder gives up with the slot (the service's turn in its queue).
    _with: Option<Box<dyn std::any::Any + Send + Sync>>,
}

impl std::fmt::Debug for ServerSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerSlot")
            .field("server", &self.mark.server)
            .field("index", &self.mark.index)
            .finish_non_exhaustive()
    }
}

impl ServerSlot {
    /// The slot, also holding `guard` until it is given back.
    pub fn with(mut self, guard: impl std::any::Any + Send + Sync) -> ServerSlot {
        self._with = Some(Box::new(guard));
        self
    }
}

/// Slot `index` of `server` marked taken in this process, until dropped.
struct Mark {
    taken: Arc<Mutex<HashMap<String, Vec<bool>>>>,
    server: String,
    index: usize,
}

impl Drop for Mark {
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
    pub fn slot_limit(&self, database: &str) -> Option<(String, usize)> {
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
            let mark = Mark {
                taken: Arc::clone(&self.slots.0),
                server: server.clone(),
                index,
            };
            let resource = format!("server:{server}#{index}");
            // Not taken (or an error): the mark goes, and the slot is free here again.
            if let Some(lease) =
                LeaseGuard::acquire(Arc::clone(&self.catalog), &resource, &self.instance, ttl)?
            {
                return Ok(Slot::Taken(ServerSlot {
                    _lease: lease,
                    mark,
                    _with: None,
                }));
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::Arc;

    use super::*;
    use dbkeep_catalog::sqlite::SqliteCatalog;
    use dbkeep_config::config::Config;
    use dbkeep_model::discovery::{DiscoveredDatabase, Discoveries, DiscoveryState};

    /// A runner named `instance` on the catalog in `dir`, whose server `pg` (at most `max`
    /// backups at once) found `a` and `b`.
    fn runner(dir: &std::path::Path, instance: &str, max: u32) -> Runner {
        let text = format!(
            "instance_name = \"{instance}\"\n[[servers]]\nname = \"pg\"\nurl = \"postgres://u@db.example/\"\nmax_concurrent_per_server = {max}\n\
             [[databases]]\nname = \"solo\"\nurl = \"sqlite:solo.db\"\n"
        );
        let config = Config::parse(&dir.join("dbkeep.toml"), &text, &|_| None).unwrap();
        let catalog = Arc::new(SqliteCatalog::open(config.catalog.sqlite_file().unwrap()).unwrap());
        for name in ["a", "b"] {
            catalog
                .set_discovered(&DiscoveredDatabase {
                    name: format!("pg-{name}"),
                    server: "pg".into(),
                    database: name.into(),
                    state: DiscoveryState::Known,
                    found_at: chrono::Utc::now(),
                    changed_at: chrono::Utc::now(),
                    detail: None,
                })
                .unwrap();
        }
        Runner::with_parts(config, catalog, Arc::new(dbkeep_model::clock::SystemClock)).unwrap()
    }

    #[test]
    fn a_server_s_slots_are_shared_by_every_instance_on_the_catalog() {
        let dir = tempfile::tempdir().unwrap();
        let one = runner(dir.path(), "one", 1);
        let two = runner(dir.path(), "two", 1);
        assert!(matches!(
            one.try_server_slot("solo").unwrap(),
            Slot::Unlimited
        ));
        let Slot::Taken(held) = one.try_server_slot("pg-a").unwrap() else {
            panic!("the first slot is free")
        };
        // Another database of the server, here and in the other instance: no slot.
        assert!(!one.slot_free_here("pg-b"));
        assert!(matches!(one.try_server_slot("pg-b").unwrap(), Slot::Busy));
        assert!(two.slot_free_here("pg-b"));
        assert!(matches!(two.try_server_slot("pg-b").unwrap(), Slot::Busy));
        let cancel = Cancel::new();
        cancel.cancel("stop waiting");
        assert!(matches!(
            two.wait_server_slot("pg-b", &cancel),
            Err(Error::Cancelled(reason)) if reason == "stop waiting"
        ));
        drop(held);
        assert!(one.slot_free_here("pg-b"));
        let Slot::Taken(_theirs) = two.try_server_slot("pg-b").unwrap() else {
            panic!("the slot was given back")
        };
        assert!(matches!(one.try_server_slot("pg-a").unwrap(), Slot::Busy));
    }

    #[test]
    fn two_slots_let_two_run_and_no_third() {
        let dir = tempfile::tempdir().unwrap();
        let one = runner(dir.path(), "one", 2);
        let two = runner(dir.path(), "two", 2);
        let Slot::Taken(_a) = one.try_server_slot("pg-a").unwrap() else {
            panic!("slot 0")
        };
        let Slot::Taken(_b) = one.try_server_slot("pg-b").unwrap() else {
            panic!("slot 1")
        };
        assert!(matches!(two.try_server_slot("pg-a").unwrap(), Slot::Busy));
    }
}
