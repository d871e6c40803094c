//! The audit log's retention: once at start and then daily, rows older than
//! `audit_retention` are removed (the catalog itself refuses to remove younger ones), and the
//! removal is itself a row.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::warn;

use super::jobs::Jobs;
use dbkeep_model::audit::{Action, Entry, Outcome};

/// How often the audit log is pruned.
const EVERY: Duration = Duration::from_secs(24 * 3600);

/// Prunes the audit log now and every day until `stop` changes.
pub(super) async fn run(jobs: Arc<Jobs>, mut stop: watch::Receiver<bool>) {
    loop {
        let runner = Arc::clone(&jobs.runner);
        let pruned = tokio::task::spawn_blocking(move || {
            let days = runner.config().service.audit_retention_days;
            let removed = runner.catalog().prune_audit(days)?;
            if removed > 0 {
                let entry = Entry::new("scheduler", Action::AuditPrune, "", Outcome::Ok)
                    .detail(format!("{removed} row(s) older than {days} days"));
                dbkeep_core::audit::record(runner.catalog(), entry);
            }
            Ok::<_, dbkeep_model::error::Error>(())
        })
        .await;
        match pruned {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(error = %e, "could not prune the audit log; trying again tomorrow"),
            Err(e) => warn!(error = %e, "the audit log's pruning thread failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = stop.changed() => return,
        }
    }
}
