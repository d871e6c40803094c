//! The server's roles (`globals = true`) of databases a `[[servers]]` entry found: stored once
//! per run of the server (the first backup of its databases after each cron time stores them
//! beside itself), and found for any of its databases' backups at restore.

use chrono::{DateTime, Utc};

use super::Runner;
use dbkeep_config::config::cron::previous_fire;
use dbkeep_model::catalog::{BackupRecord, ListFilter, Status};
use dbkeep_model::error::Result;

/// Rows read at once when looking through a run's backups.
const PAGE: u32 = 1000;

impl Runner {
    /// The names of the databases in force that the `[[servers]]` entry `server` found.
    fn server_databases(&self, server: &str) -> Vec<String> {
        self.config()
            .databases
            .iter()
            .filter(|d| d.server() == Some(server))
            .map(|d| d.name.clone())
            .collect()
    }

    /// Whether a backup of `name` starting at `now` stores its server's roles: every backup of
    /// a `[[databases]]` entry with `globals = true`; of a discovered database, only the first
    /// of its server's run (no backup of the server's databases since the run's cron time
    /// stored them).
    ///
    /// # Errors
    /// When the catalog cannot be read.
    pub(super) fn stores_globals(&self, name: &str, now: DateTime<Utc>) -> Result<bool> {
        let config = self.config();
        let Ok(db) = config.database(name) else {
            return Ok(false);
        };
        let Some(server) = db.server().filter(|_| db.globals) else {
            return Ok(db.globals);
        };
        // The run's cron time: the latest at or before now, before this database's spread.
        let offset = crate::scheduler::offset_of(&config, db);
        let Some(since) = db
            .schedules
            .iter()
            .filter_map(|s| previous_fire(&s.cron, config.service.timezone, now - offset))
            .max()
        else {
            return Ok(true);
        };
        let siblings = self.server_databases(server);
        // The server's successful backups of this run, read newest first a page at a time.
        let mut runs: Vec<BackupRecord> = Vec::new();
        let mut before = None;
        loop {
            let page = self.catalog.list(&ListFilter {
                status: Some(Status::Success),
                before,
                limit: Some(PAGE),
                ..ListFilter::default()
            })?;
            let done = page.len() < PAGE as usize || page.iter().any(|r| r.started_at < since);
            before = page.last().map(|r| r.id);
            runs.extend(
                page.into_iter()
                    .filter(|r| r.is_stored() && r.started_at >= since)
                    .filter(|r| siblings.contains(&r.database)),
            );
            if done {
                break;
            }
        }
        // The first of the run stored them: look there first.
        runs.sort_by_key(|r| (r.started_at, r.id));
        for r in &runs {
            if self.catalog.globals_file(r.id)?.is_some() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The backup whose stored roles serve `record` at restore: `record` itself when it has
    /// them, else (a discovered database) the backup of its server's databases with stored
    /// roles nearest before it (else nearest after it). With its roles file's name.
    ///
    /// # Errors
    /// When the catalog cannot be read.
    pub fn globals_for(&self, record: &BackupRecord) -> Result<Option<(BackupRecord, String)>> {
        if let Some(name) = self.catalog.globals_file(record.id)? {
            return Ok(Some((record.clone(), name)));
        }
        let config = self.config();
        let Some(server) = config
            .database(&record.database)
            .ok()
            .and_then(|d| d.server().map(str::to_string))
        else {
            return Ok(None);
        };
        let siblings = self.server_databases(&server);
        let mut rows: Vec<BackupRecord> = self
            .catalog
            .list(&ListFilter {
                status: Some(Status::Success),
                ..ListFilter::default()
            })?
            .into_iter()
            .filter(|r| r.is_stored() && siblings.contains(&r.database))
            .collect();
        // Nearest before first (the roles as they were then), then nearest after.
        rows.sort_by_key(|r| {
            let after = r.started_at > record.started_at;
            (
                after,
                (r.started_at - record.started_at).num_milliseconds().abs(),
            )
        });
        for r in rows {
            if let Some(name) = self.catalog.globals_file(r.id)? {
                return Ok(Some((r, name)));
            }
        }
        Ok(None)
    }
}
