//! Off-site copies sent again: every `offsite_retry`, the copies of this instance's backups
//! that failed or are missing are uploaded, as `dbkeep offsite sync` does, so that a
//! destination's outage heals without anyone running a command. Databases backing up here at
//! that moment are left for the next round (their run copies its own backup).

use std::sync::Arc;

use tokio::sync::watch;
use tracing::{info, warn};

use super::jobs::Jobs;
use dbkeep_model::cancel::Cancel;
use dbkeep_model::stream::NoProgress;
use dbkeep_store::store::Sending;

/// Sends the missing copies every `offsite_retry` until `stop` changes; a stop during an
/// upload cancels it.
pub(super) async fn run(jobs: Arc<Jobs>, mut stop: watch::Receiver<bool>) {
    let runner = Arc::clone(&jobs.runner);
    if runner.offsite().is_empty() {
        return;
    }
    let every = runner.config().service.offsite_retry;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        let cancel = Cancel::new();
        let round = {
            let (runner, cancel, busy) =
                (Arc::clone(&runner), cancel.clone(), jobs.running_names());
            tokio::task::spawn_blocking(move || {
                let sending = Sending {
                    progress: &NoProgress,
                    cancel: &cancel,
                };
                runner.sync_offsite(&busy, sending)
            })
        };
        tokio::pin!(round);
        let done = tokio::select! {
            done = &mut round => done,
            _ = stop.changed() => {
                cancel.cancel("cancelled: shutdown");
                let _ = round.await;
                return;
            }
        };
        match done {
            Ok(Ok(synced)) => {
                for s in synced {
                    match s.result {
                        Ok(()) => {
                            info!(database = %s.database, id = s.backup_id, offsite = %s.store, "off-site copy sent again");
                        }
                        Err(e) => {
                            warn!(database = %s.database, id = s.backup_id, offsite = %s.store, error = %e, "off-site copy failed again");
                        }
                    }
                }
            }
            Ok(Err(e)) => warn!(error = %e, "could not send the missing off-site copies"),
            Err(e) => warn!(error = %e, "the off-site retry panicked"),
        }
    }
}
