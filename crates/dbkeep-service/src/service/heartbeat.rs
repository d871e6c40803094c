//! The service's heartbeat: every third of `lease_timeout`, this instance tells the catalog
//! it is alive and what it runs; on a clean stop it leaves.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::warn;

use super::jobs::Jobs;

/// One heartbeat: `runner`'s instance, started at `started`, is alive and runs `running`.
///
/// # Errors
/// When the catalog cannot be written.
pub(super) fn beat(
    runner: &dbkeep_core::runner::Runner,
    started: chrono::DateTime<chrono::Utc>,
    running: &[String],
) -> dbkeep_model::error::Result<()> {
    runner.catalog().heartbeat(
        runner.instance(),
        env!("CARGO_PKG_VERSION"),
        started,
        running,
    )
}

/// Heartbeats until `stop` changes, then removes this instance's row.
pub(super) async fn run(jobs: Arc<Jobs>, mut stop: watch::Receiver<bool>) {
    let runner = Arc::clone(&jobs.runner);
    let every = (runner.config().service.lease_timeout / 3).max(Duration::from_secs(1));
    let started = jobs.clock().now();
    loop {
        let beat = {
            let runner = Arc::clone(&runner);
            let running = jobs.running_names();
            tokio::task::spawn_blocking(move || beat(&runner, started, &running))
        };
        match beat.await {
            Ok(Err(e)) => warn!(error = %e, "could not heartbeat into the catalog"),
            Err(e) => warn!(error = %e, "the heartbeat thread panicked"),
            Ok(Ok(())) => {}
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => break,
        }
    }
    let _ = tokio::task::spawn_blocking(move || {
        if let Err(e) = runner.catalog().depart(&runner.instance().name) {
            warn!(error = %e, "could not remove this instance from the catalog");
        }
    })
    .await;
}
