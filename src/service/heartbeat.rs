//! The service's heartbeat: every third of `lease_timeout`, this instance tells the catalog
//! it is alive and what it runs; on a clean stop it leaves.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::warn;

use super::jobs::Jobs;

/// Heartbeats until `stop` changes, then removes this instance's row.
pub(super) async fn run(jobs: Arc<Jobs>, mut stop: watch::Receiver<bool>) {
    let runner = Arc::clone(&jobs.runner);
    let every = (runner.config().service.lease_timeout / 3).max(Duration::from_secs(1));
    let started = jobs.clock().now();
    loop {
        let beat = {
            let runner = Arc::clone(&runner);
            let running = jobs.running_names();
            tokio::task::spawn_blocking(move || {
                let Some(instances) = runner.catalog().instances() else {
                    return Ok(());
                };
                instances.heartbeat(
                    runner.instance(),
                    env!("CARGO_PKG_VERSION"),
                    started,
                    &running,
                )
            })
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
        if let Some(instances) = runner.catalog().instances()
            && let Err(e) = instances.depart(&runner.instance().name)
        {
            warn!(error = %e, "could not remove this instance from the catalog");
        }
    })
    .await;
}
