//! Discovery in the service: at start and every `discover_every`, each `[[servers]]` entry is
//! asked for its databases; what changed is recorded and announced, a database found gets its
//! first backup at once, and the scheduler plans the new set.

use std::sync::Arc;

use tokio::sync::watch;
use tracing::warn;

use super::Jobs;
use dbkeep_core::discovery::Change;
use dbkeep_model::catalog::Trigger;

/// Runs discovery until `stop` is raised. Does nothing when no server is configured.
pub async fn run(jobs: Arc<Jobs>, mut stop: watch::Receiver<bool>) {
    if jobs.runner.base_config().servers.is_empty() {
        return;
    }
    let every = jobs.runner.base_config().service.discover_every;
    loop {
        once(&jobs).await;
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => break,
        }
    }
}

/// One discovery: ask, record, announce, back up what was found, plan again.
pub async fn once(jobs: &Arc<Jobs>) {
    let before = jobs.runner.config();
    let applied = super::blocking(&jobs.runner, |r| {
        let report = r.discover()?;
        r.apply_discovery(&report)
    })
    .await;
    let changes = match applied {
        Ok(changes) => changes,
        Err(e) => {
            warn!(error = %e, "discovery could not be recorded; trying again at the next period");
            // Another instance's findings may still be in the catalog.
            let _ = super::blocking(&jobs.runner, |r| r.refresh_discovered()).await;
            Vec::new()
        }
    };
    if !Arc::ptr_eq(&before, &jobs.runner.config()) {
        jobs.reschedule.notify_one();
    }
    // A database found gets its first backup now, not at its next cron time: queued like a
    // fire, under its server's limit.
    for change in changes {
        if let Change::Found { name, .. } = change {
            jobs.queue(&name, Trigger::Scheduled);
        }
    }
}
