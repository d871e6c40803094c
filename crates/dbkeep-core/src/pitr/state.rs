//! How a server's point-in-time recovery stands: the span it can be recovered to, the RPO
//! (how old its newest archived WAL is), and what its archiver says, for `dbkeep status`,
//! the overview, `/metrics` and the service's alerts.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::runner::View;
use dbkeep_config::config::{ServerConfig, ServerSource};
use dbkeep_engine::engine::BaseBackupEngine;
use dbkeep_model::cancel::Cancel;
use dbkeep_model::error::Result;
use dbkeep_model::wal::Archiver;

/// One server's point-in-time recovery, now.
#[derive(Debug, Clone)]
pub struct ArchiveState {
    /// The `[[servers]]` entry.
    pub server: String,
    /// The span it can be recovered to (from the end of its oldest stored base backup to its
    /// newest archived WAL); `None` before its first base backup with archived WAL.
    pub recoverable: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// When its newest WAL was archived.
    pub last_archived: Option<DateTime<Utc>>,
    /// How much of the server's writes a loss now could cost at most: the age of its newest
    /// archived WAL.
    pub rpo: Option<Duration>,
    /// Archive files not yet at every off-site destination.
    pub queued: usize,
    /// Its `wal_stalled_after`.
    pub stalled_after: Duration,
    /// What the server's archiver says, when it was asked (or why it could not be).
    pub archiver: Option<std::result::Result<Archiver, String>>,
}

impl ArchiveState {
    /// Whether nothing was archived for longer than `wal_stalled_after` (the server may be
    /// quiet: [`ArchiveState::stalled`] asks it).
    pub fn quiet_too_long(&self) -> bool {
        self.rpo.is_some_and(|rpo| rpo > self.stalled_after)
    }

    /// Why `wal_archive_stalled` holds (the server wrote a segment past its last archive,
    /// and nothing was archived for longer than `wal_stalled_after`), or `None`.
    pub fn stalled(&self) -> Option<String> {
        let archiver = self.archiver.as_ref()?.as_ref().ok()?;
        let (rpo, limit) = (self.rpo?, self.stalled_after);
        (self.quiet_too_long() && archiver.wrote_since_archiving()).then(|| {
            format!(
                "no WAL archived for {} (wal_stalled_after = {}) while the server wrote on to {}",
                humantime::format_duration(Duration::from_secs(rpo.as_secs())),
                humantime::format_duration(limit),
                archiver.current
            )
        })
    }

    /// Why `wal_archive_failing` holds (the server's last push failed), or `None`.
    pub fn failing(&self) -> Option<String> {
        let archiver = self.archiver.as_ref()?.as_ref().ok()?;
        archiver.failing().then(|| {
            format!(
                "archive_command failed {} time(s) since the statistics were reset, the last at {}; PostgreSQL keeps the WAL and retries (its log says why)",
                archiver.failed_count,
                archiver
                    .last_failed_at
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                    .unwrap_or_default()
            )
        })
    }
}

/// How each server that archives WAL stands at `now`; with `ask` its archiver is asked too.
///
/// # Errors
/// When the catalog cannot be read.
pub fn states(runner: &dyn View, now: DateTime<Utc>, ask: bool) -> Result<Vec<ArchiveState>> {
    let config = runner.config();
    config
        .servers
        .iter()
        .filter(|s| s.archives_wal())
        .map(|server| state(runner, server, now, ask))
        .collect()
}

fn state(
    runner: &dyn View,
    server: &ServerConfig,
    now: DateTime<Utc>,
    ask: bool,
) -> Result<ArchiveState> {
    let catalog = runner.catalog();
    let span = super::recoverable(runner, &server.name)?;
    let last_archived = catalog.last_archived(&server.name)?;
    let mut queued = 0;
    for o in runner
        .config()
        .offsite
        .iter()
        .filter(|o| o.takes(&server.name))
    {
        queued += catalog.wal_queue(&server.name, &o.name)?.len();
    }
    let archiver = match (&server.source, ask) {
        (ServerSource::Postgres(target), true) => Some(
            BaseBackupEngine::new(
                target.clone(),
                runner
                    .config()
                    .pg_dump_path
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("pg_dump")),
            )
            .archiver(&Cancel::new())
            .map_err(|e| e.to_string()),
        ),
        _ => None,
    };
    Ok(ArchiveState {
        server: server.name.clone(),
        recoverable: span.as_ref().map(|s| (s.from, s.to)),
        rpo: last_archived.map(|t| (now - t).to_std().unwrap_or_default()),
        last_archived,
        queued,
        stalled_after: server.wal_stalled_after,
        archiver,
    })
}
