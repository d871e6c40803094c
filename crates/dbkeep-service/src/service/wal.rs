//! The WAL archive's watch: every few seconds, the archive files still owed to off-site
//! destinations are sent (oldest first), and each server that archives WAL is asked how its
//! archiver stands: `wal_archive_failing` when its last push failed, `wal_archive_stalled`
//! when it wrote a segment past its last archive and nothing was archived for longer than
//! `wal_stalled_after`. Each episode is announced once by this process, and ends when WAL
//! is archived again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, warn};

use super::jobs::Jobs;
use dbkeep_model::cancel::Cancel;
use dbkeep_model::vocab::EventKind;
use dbkeep_notify::notify::Event;

/// How often the archive is watched and its queue sent.
const EVERY: Duration = Duration::from_secs(10);

/// Which episodes this process announced, by server.
#[derive(Default)]
struct Announced {
    stalled: HashMap<String, bool>,
    failing: HashMap<String, bool>,
}

/// Watches until `stop` changes.
pub(super) async fn run(jobs: Arc<Jobs>, mut stop: watch::Receiver<bool>) {
    if !jobs
        .runner
        .config()
        .servers
        .iter()
        .any(|s| s.archives_wal())
    {
        return;
    }
    let mut announced = Announced::default();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = stop.changed() => return,
        }
        let runner = Arc::clone(&jobs.runner);
        let cancel = Cancel::new();
        let round = {
            let cancel = cancel.clone();
            tokio::task::spawn_blocking(move || {
                check(&runner, &mut announced, &cancel);
                announced
            })
        };
        tokio::pin!(round);
        tokio::select! {
            done = &mut round => match done {
                Ok(kept) => announced = kept,
                Err(e) => {
                    warn!(error = %e, "the WAL archive's watch panicked");
                    return;
                }
            },
            _ = stop.changed() => {
                cancel.cancel("cancelled: shutdown");
                let _ = round.await;
                return;
            }
        }
    }
}

fn check(runner: &dbkeep_core::runner::Runner, announced: &mut Announced, cancel: &Cancel) {
    let config = runner.config();
    match dbkeep_core::pitr::send_queued(&config, runner.catalog(), runner.offsite(), cancel) {
        Ok(rounds) => {
            for r in rounds {
                match &r.error {
                    None => {
                        info!(server = %r.server, offsite = %r.destination, sent = r.sent, "WAL sent off-site")
                    }
                    Some(e) => {
                        warn!(server = %r.server, offsite = %r.destination, sent = r.sent, queued = r.left, error = %e, "WAL could not be sent off-site; it stays queued")
                    }
                }
            }
        }
        Err(e) => warn!(error = %e, "could not read the WAL archive's off-site queue"),
    }
    let states = match dbkeep_core::pitr::states(runner, chrono::Utc::now(), true) {
        Ok(states) => states,
        Err(e) => {
            warn!(error = %e, "could not read the WAL archive's state");
            return;
        }
    };
    for state in states {
        if let Some(Err(e)) = &state.archiver {
            warn!(server = %state.server, error = %e, "could not ask the server how its archiver stands");
            continue;
        }
        let episodes = [
            (
                EventKind::WalArchiveStalled,
                state.stalled(),
                &mut announced.stalled,
            ),
            (
                EventKind::WalArchiveFailing,
                state.failing(),
                &mut announced.failing,
            ),
        ];
        for (kind, why, seen) in episodes {
            let was = seen.insert(state.server.clone(), why.is_some()) == Some(true);
            if let (Some(why), false) = (why, was) {
                warn!(server = %state.server, event = %kind, reason = %why, "the WAL archive needs attention");
                runner.notifier().notify(Event {
                    error: Some(why),
                    finished_at: Some(chrono::Utc::now()),
                    ..Event::about(kind, &state.server)
                });
            }
        }
    }
}
