//! The off-site queue of each server's archive: files that reached the local folder but not
//! yet a destination, sent oldest first. `dbkeep serve` drains it as files arrive, and
//! `dbkeep wal sync` on demand; a destination that fails keeps the rest for the next round,
//! in order.

use dbkeep_config::config::Config;
use dbkeep_model::cancel::Cancel;
use dbkeep_model::catalog::Catalog;
use dbkeep_model::error::Result;
use dbkeep_model::stream::NoProgress;
use dbkeep_store::store::Sending;

use crate::offsite::Destinations;

/// What one round sent to one destination.
#[derive(Debug)]
pub struct Sent {
    /// The server whose archive it was.
    pub server: String,
    /// The destination.
    pub destination: String,
    /// Files sent.
    pub sent: usize,
    /// Files still queued.
    pub left: usize,
    /// Why the round stopped early.
    pub error: Option<String>,
}

/// Sends every queued archive file of every server that archives WAL to each destination
/// that takes it, oldest first, stopping a destination at its first failure.
///
/// # Errors
/// When the catalog cannot be read.
pub fn send_queued(
    config: &Config,
    catalog: &dyn Catalog,
    destinations: &Destinations,
    cancel: &Cancel,
) -> Result<Vec<Sent>> {
    let mut rounds = Vec::new();
    for server in config.servers.iter().filter(|s| s.archives_wal()) {
        for (o, store) in destinations.for_database(&server.name) {
            let queue = catalog.wal_queue(&server.name, &o.name)?;
            let mut round = Sent {
                server: server.name.clone(),
                destination: o.name.clone(),
                sent: 0,
                left: queue.len(),
                error: None,
            };
            if queue.is_empty() {
                continue;
            }
            let store = match store {
                Ok(store) => store,
                Err(e) => {
                    round.error = Some(e);
                    rounds.push(round);
                    continue;
                }
            };
            for name in queue {
                if cancel.reason().is_some() {
                    break;
                }
                let Some(segment) = catalog.segment(&server.name, &name)? else {
                    continue;
                };
                let file_name = segment.file_name();
                let path = super::wal_dir(config, &server.name).join(&file_name);
                let sent = store.put_file(
                    &super::wal_key(&server.name, &file_name),
                    &path,
                    Sending {
                        progress: &NoProgress,
                        cancel,
                    },
                );
                match sent {
                    Ok(stored) if stored.size_bytes == segment.stored_bytes => {
                        catalog.wal_sent(&server.name, &name, &o.name)?;
                        round.sent += 1;
                        round.left -= 1;
                    }
                    Ok(stored) => {
                        round.error = Some(format!(
                            "{name}: the destination holds {} bytes, the archive {}",
                            stored.size_bytes, segment.stored_bytes
                        ));
                        break;
                    }
                    Err(e) => {
                        round.error = Some(format!("{name}: {e}"));
                        break;
                    }
                }
            }
            rounds.push(round);
        }
    }
    Ok(rounds)
}
