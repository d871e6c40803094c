//! The stale alert: a database without a successful backup for longer than `stale_after` is
//! announced once per episode, noticed by dbkeep itself even when no backup ran at all. The
//! episodes announced are kept in the catalog, so a restarted service does not announce them
//! again.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use dbkeep_core::runner::View;
use dbkeep_core::verdict::FactsCache;
use dbkeep_model::vocab::EventKind;
use dbkeep_notify::notify::Event;

/// Which databases are stale now, so that each episode is announced once.
pub struct StaleWatch {
    /// When watching began: a database that never had a backup is stale `stale_after` later.
    since: DateTime<Utc>,
    /// The databases announced stale, with the last success they were judged by; read from
    /// the catalog at the first check.
    announced: Option<HashMap<String, Option<DateTime<Utc>>>>,
}

impl StaleWatch {
    /// A watch that starts at `since` (the service's start).
    pub fn new(since: DateTime<Utc>) -> StaleWatch {
        StaleWatch {
            since,
            announced: None,
        }
    }

    /// Announces each database that became stale by `now`; one that has a newer successful
    /// backup since its announcement ends its episode.
    ///
    /// # Errors
    /// When the catalog cannot be read.
    pub fn check(
        &mut self,
        view: &dyn View,
        facts: &FactsCache,
        now: DateTime<Utc>,
    ) -> dbkeep_model::error::Result<()> {
        let config = view.config();
        let store = view.catalog();
        let announced = match self.announced.take() {
            Some(known) => known,
            None => store.stale_announced()?.into_iter().collect(),
        };
        let announced = self.announced.insert(announced);
        // Only what changes is written: most checks change nothing.
        let remember = |database: &str, state: Option<(Option<DateTime<Utc>>, DateTime<Utc>)>| {
            if let Err(e) = store.set_stale_announced(database, state) {
                tracing::warn!(database, error = %e, "could not record the stale alert in the catalog");
            }
        };
        let stale_after =
            chrono::Duration::from_std(config.web.stale_after).unwrap_or(chrono::Duration::MAX);
        // Every database's last success in one read, not one each.
        let mut lasts = dbkeep_core::verdict::last_successes(view, facts)?.into_iter();
        for db in &config.databases {
            let last = lasts.next().and_then(|(_, last)| last);
            let at = last
                .as_ref()
                .and_then(|r| r.finished_at.or(Some(r.started_at)));
            // A database no longer backed up (gone from its server) does not go stale; one
            // that cannot be read does, like any other that has no fresh backup.
            let gone = db
                .discovered
                .as_ref()
                .is_some_and(|d| d.state == dbkeep_model::discovery::DiscoveryState::Gone);
            let limit =
                dbkeep_core::verdict::stale_limit(db, stale_after, config.service.timezone, now);
            let stale = !gone && now - at.unwrap_or(self.since) > limit;
            // An episode ends with a newer success; a database that never had one stays in
            // its episode even when a restart moved `since`.
            let ongoing = at.is_none() && announced.get(&db.name) == Some(&None);
            if !stale && !ongoing {
                if announced.remove(&db.name).is_some() {
                    remember(&db.name, None);
                }
                continue;
            }
            if announced.get(&db.name) == Some(&at) {
                continue;
            }
            announced.insert(db.name.clone(), at);
            remember(&db.name, Some((at, now)));
            let why = match at {
                Some(t) => format!(
                    "no successful backup since {} (stale_after {})",
                    t.to_rfc3339(),
                    humantime::format_duration(config.web.stale_after)
                ),
                None => format!(
                    "no successful backup at all in {}",
                    humantime::format_duration(config.web.stale_after)
                ),
            };
            tracing::warn!(database = %db.name, reason = %why, "database is stale");
            let mut event = match &last {
                Some(r) => Event::of(EventKind::Stale, r),
                None => Event::about(EventKind::Stale, &db.name),
            };
            event.error = Some(why);
            view.notifier().notify(event);
        }
        Ok(())
    }
}
