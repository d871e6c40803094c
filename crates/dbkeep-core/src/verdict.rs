//! The verdict on one database, as the home page, the metrics and the command line give it:
//! failing, unprotected, stale or protected, and why, in words a person reads at 3 a.m.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;

use dbkeep_config::config::DatabaseConfig;
use dbkeep_config::config::cron::{next_fire, previous_fire};
use dbkeep_model::catalog::{BackupRecord, ListFilter, Status};

/// How long after a scheduled fire its backup may take before the database counts as stale.
pub const FIRE_GRACE: Duration = Duration::minutes(30);

/// How many of a database's latest runs a verdict looks at.
pub const RECENT: u32 = 30;

/// Where a database stands, most urgent first (the order the home page lists them in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    /// Its latest run failed.
    Failing,
    /// It was never backed up.
    Unprotected,
    /// Its last good backup is older than its schedule or `stale_after` allows.
    Stale,
    /// Its newest good backup is recent, but did not reach every off-site destination.
    NotOffsite,
    /// It has a recent good backup (and its off-site copies).
    Protected,
    /// Its server no longer has it: not backed up any more, its backups kept.
    Gone,
}

impl State {
    /// Every state, most urgent first.
    pub const ALL: [State; 6] = [
        State::Failing,
        State::Unprotected,
        State::Stale,
        State::NotOffsite,
        State::Protected,
        State::Gone,
    ];

    /// The word shown and exported (`dbkeep_database_status{status="…"}`).
    pub fn as_str(self) -> &'static str {
        match self {
            State::Failing => "failing",
            State::Unprotected => "unprotected",
            State::Stale => "stale",
            State::NotOffsite => "not_offsite",
            State::Protected => "protected",
            State::Gone => "gone",
        }
    }

    /// The words shown on the pages: `not off-site` for [`State::NotOffsite`], else
    /// [`State::as_str`].
    pub fn label(self) -> &'static str {
        match self {
            State::NotOffsite => "not off-site",
            other => other.as_str(),
        }
    }

    /// The colour class of the state on the pages.
    pub fn colour(self) -> &'static str {
        match self {
            State::Failing | State::Unprotected => "red",
            State::Stale | State::NotOffsite => "orange",
            State::Protected => "green",
            State::Gone => "grey",
        }
    }

    /// A symbol for the state, so that it never rests on colour alone.
    pub fn icon(self) -> &'static str {
        match self {
            State::Failing => "✕",
            State::Unprotected => "!",
            State::Stale => "◷",
            State::NotOffsite => "⇡",
            State::Protected => "✓",
            State::Gone => "–",
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A database's state and the reason for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Where it stands.
    pub state: State,
    /// Why, in words: the latest error and how long it has been failing, or how old the last
    /// good backup is against what its schedule expects.
    pub reason: String,
    /// When its newest successful backup finished.
    pub last_good: Option<DateTime<Utc>>,
}

/// What a verdict is judged from.
#[derive(Debug, Clone, Copy)]
pub struct Judge<'a> {
    /// The database's latest runs, newest first (at most [`RECENT`] are needed).
    pub recent: &'a [BackupRecord],
    /// Its newest successful backup, however far back (it may be older than `recent`).
    pub last_success: Option<&'a BackupRecord>,
    /// The database's configuration (its schedules).
    pub database: &'a DatabaseConfig,
    /// `stale_after` from the configuration.
    pub stale_after: Duration,
    /// The zone times in reasons are written in.
    pub tz: Tz,
    /// Now.
    pub now: DateTime<Utc>,
}

impl Judge<'_> {
    /// The verdict.
    pub fn verdict(&self) -> Verdict {
        // A discovered database that is gone or unreadable is not backed up: say which.
        if let Some(found) = self.database.discovered.as_ref() {
            use dbkeep_model::discovery::DiscoveryState;
            let why = found.detail.as_deref().map(first_line).unwrap_or_default();
            let why = dbkeep_model::text::escape_controls(&why, false);
            let (state, reason) = match found.state {
                DiscoveryState::Known => (None, String::new()),
                DiscoveryState::Gone => (
                    Some(State::Gone),
                    format!(
                        "gone from server `{}` ({why}); not backed up any more, its backups are kept",
                        found.server
                    ),
                ),
                DiscoveryState::Unreadable => (
                    Some(State::Failing),
                    format!(
                        "unreadable on server `{}`, not backed up: {why}",
                        found.server
                    ),
                ),
            };
            if let Some(state) = state {
                return Verdict {
                    state,
                    reason,
                    last_good: self
                        .last_success
                        .map(|g| g.finished_at.unwrap_or(g.started_at)),
                };
            }
        }
        let good = self
            .recent
            .iter()
            .find(|r| r.status == Status::Success)
            .or(self.last_success);
        let last_good = good.map(|g| g.finished_at.unwrap_or(g.started_at));
        let done: Vec<&BackupRecord> = self
            .recent
            .iter()
            .filter(|r| r.status != Status::InProgress)
            .collect();
        let streak: Vec<&&BackupRecord> = done
            .iter()
            .take_while(|r| r.status == Status::Failed)
            .collect();
        if let (Some(latest), Some(first)) = (streak.first(), streak.last()) {
            let error = dbkeep_model::text::escape_controls(
                &first_line(latest.error.as_deref().unwrap_or("unknown error")),
                false,
            )
            .into_owned();
            let count = if streak.len() == done.len() && self.recent.len() >= RECENT as usize {
                format!("at least {}×", streak.len())
            } else {
                format!("{}×", streak.len())
            };
            let how = if streak.len() == 1 {
                format!(
                    "the last backup failed at {}",
                    self.when(&latest.started_at)
                )
            } else {
                format!("failing {count} since {}", self.when(&first.started_at))
            };
            let never = if good.is_none() {
                "no backup has succeeded yet; "
            } else {
                ""
            };
            return Verdict {
                state: State::Failing,
                reason: format!("{never}{how}: {error}"),
                last_good,
            };
        }
        // A backup that failed its verification (a restore drill) cannot be counted on.
        if let Some(g) = good.filter(|g| g.verify_status.as_deref() == Some("failed")) {
            let error = first_line(g.verify_error.as_deref().unwrap_or("unknown error"));
            let when = g.verified_at.map(|t| self.when(&t)).unwrap_or_default();
            return Verdict {
                state: State::Failing,
                reason: format!(
                    "the newest backup (#{}) failed its verification at {when}: {}",
                    g.id,
                    dbkeep_model::text::escape_controls(&error, false)
                ),
                last_good,
            };
        }
        let Some(at) = last_good else {
            return Verdict {
                state: State::Unprotected,
                reason: "never backed up yet".into(),
                last_good,
            };
        };
        let age = self.now - at;
        if let Some((last_fire, every)) = self.schedule()
            && at < last_fire
            && self.now - last_fire > FIRE_GRACE
        {
            return Verdict {
                state: State::Stale,
                reason: format!(
                    "last good backup {} ago, schedule expects one every {}",
                    span(age),
                    span(every)
                ),
                last_good,
            };
        }

        let limit = stale_limit(self.database, self.stale_after, self.tz, self.now);
        if age > limit {
            return Verdict {
                state: State::Stale,
                reason: if limit == self.stale_after {
                    format!(
                        "last good backup {} ago, older than stale_after ({})",
                        span(age),
                        span(self.stale_after)
                    )
                } else {
                    format!(
                        "last good base backup {} ago, older than base_schedules allow ({})",
                        span(age),
                        span(limit)
                    )
                },
                last_good,
            };
        }
        Verdict {
            state: State::Protected,
            reason: format!("last good backup {} ago", span(age)),
            last_good,
        }
    }

    /// The latest fire of any schedule, and the shortest interval between two fires.
    fn schedule(&self) -> Option<(DateTime<Utc>, Duration)> {
        let fires: Vec<(DateTime<Utc>, Duration)> = self
            .database
            .schedules
            .iter()
            .filter_map(|s| {
                let last = previous_fire(&s.cron, self.tz, self.now)?;
                let next = next_fire(&s.cron, self.tz, last)?;
                Some((last, next - last))
            })
            .collect();
        let last = fires.iter().map(|(l, _)| *l).max()?;
        let every = fires.iter().map(|(_, e)| *e).min()?;
        Some((last, every))
    }

    /// `t` as a person reads it: the time alone today, else with the date; with the zone.
    fn when(&self, t: &DateTime<Utc>) -> String {
        let (local, today) = (t.with_timezone(&self.tz), self.now.with_timezone(&self.tz));
        if local.date_naive() == today.date_naive() {
            local.format("%H:%M %Z").to_string()
        } else {
            local.format("%Y-%m-%d %H:%M %Z").to_string()
        }
    }
}

/// How old `database`'s last good backup may grow before it is stale: `stale_after`; for a
/// server's base backups at least their schedule's interval and [`FIRE_GRACE`] (between two
/// of them the WAL archive protects the server, and `wal_archive_stalled` watches that).
pub fn stale_limit(
    database: &DatabaseConfig,
    stale_after: Duration,
    tz: Tz,
    now: DateTime<Utc>,
) -> Duration {
    if database.target.kind() != dbkeep_model::catalog::Kind::PostgresBase {
        return stale_after;
    }
    let every = database
        .schedules
        .iter()
        .filter_map(|s| {
            let last = previous_fire(&s.cron, tz, now)?;
            Some(next_fire(&s.cron, tz, last)? - last)
        })
        .min();
    every.map_or(stale_after, |every| stale_after.max(every + FIRE_GRACE))
}

/// What became of a scheduled fire, told by its backup's outcome: `success`, `failed`,
/// `running`, `skipped`, `not started` or `missed` (and for a restore drill `verified` or
/// `failed`), with the colour class to show it in. A fire whose backup (or verification) failed
/// is never shown as a success.
pub fn fire_result(
    fire: &dbkeep_model::catalog::FireRecord,
    backup: Option<Status>,
) -> (&'static str, &'static str) {
    use dbkeep_model::catalog::Outcome;
    // A restore drill ran when it verified a backup: its detail says whether that passed.
    if fire.schedule.starts_with(crate::scheduler::DRILL_PREFIX) && fire.outcome == Outcome::Ran {
        return match &fire.detail {
            Some(d) if crate::scheduler::is_failed_drill(d) => ("failed", "red"),
            _ => ("verified", "green"),
        };
    }
    match (fire.outcome, backup) {
        (Outcome::Ran | Outcome::Running, Some(Status::Success)) => ("success", "green"),
        (Outcome::Ran | Outcome::Running, Some(Status::Failed)) => ("failed", "red"),
        (Outcome::Ran | Outcome::Running, Some(Status::InProgress)) | (Outcome::Running, _) => {
            ("running", "orange")
        }
        // Its row is gone (an edited catalog): it ran, no one can say how.
        (Outcome::Ran, None) => ("ran", "grey"),
        (Outcome::Skipped, _)
            if fire
                .detail
                .as_deref()
                .is_some_and(|d| d.starts_with("could not start")) =>
        {
            ("not started", "red")
        }
        (Outcome::Skipped, _) => ("skipped", "orange"),
        (Outcome::Missed, _) => ("missed", "red"),
    }
}

/// The latest `limit` fires of one schedule, newest first, each with the status of the backup
/// it ran (for [`fire_result`]).
///
/// # Errors
/// When the catalog cannot be read.
pub fn fires(
    catalog: &dyn dbkeep_model::catalog::Catalog,
    database: &str,
    schedule: &str,
    limit: u32,
) -> dbkeep_model::error::Result<Vec<(dbkeep_model::catalog::FireRecord, Option<Status>)>> {
    catalog
        .fires(database, Some(schedule), limit)?
        .into_iter()
        .map(|f| {
            let status = match f.backup_id {
                Some(id) => catalog.status(id)?,
                None => None,
            };
            Ok((f, status))
        })
        .collect()
}

/// A span of time, short: "40 s", "12 min", "31 h", "3 days".
pub fn span(d: Duration) -> String {
    let s = d.num_seconds().max(0);
    match s {
        0..=59 => format!("{s} s"),
        60..=5_399 => format!("{} min", s / 60),
        5_400..=172_799 => format!("{} h", (s + 1800) / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

/// The first line of a message, cut to a readable length.
fn first_line(text: &str) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or(text);
    let mut out: String = line.chars().take(200).collect();
    if line.chars().count() > 200 {
        out.push('…');
    }
    out
}

/// One database's verdict with what it was judged from.
#[derive(Debug, Clone)]
pub struct Judged {
    /// The verdict.
    pub verdict: Verdict,
    /// What it was judged from (shared with the other readers of the same catalog state).
    pub facts: std::sync::Arc<Facts>,
}

/// The verdict on every configured database, in configuration order. Only this
/// configuration's own rows count ([`crate::runner::Runner::owns`]): another configuration sharing the
/// catalog cannot make a database look protected. The rows are read again only when the
/// catalog changed since `cache` last read them (a service keeps one [`FactsCache`] for all
/// its readers; a one-off reader passes a new one).
///
/// # Errors
/// When the catalog cannot be read.
pub fn all(
    runner: &dyn crate::runner::View,
    cache: &FactsCache,
    now: DateTime<Utc>,
) -> dbkeep_model::error::Result<std::sync::Arc<Vec<Judged>>> {
    let config = runner.config();
    let stale_after = Duration::from_std(config.web.stale_after).unwrap_or(Duration::hours(26));
    let (stamp, facts) = cache.get_stamped(runner)?;
    // Judged again at most once a second while the catalog stays the same: the verdicts
    // change with time only at second granularity.
    let second = now.timestamp();
    if let Some(kept) = cache.judged_at(stamp, second) {
        return Ok(kept);
    }
    let judged: Vec<Judged> = config
        .databases
        .iter()
        .zip(facts.iter())
        .map(|(db, facts)| {
            let verdict = Judge {
                recent: &facts.recent,
                last_success: facts.last_success.as_ref(),
                database: db,
                stale_after,
                tz: config.service.timezone,
                now,
            }
            .verdict();
            let verdict = match (&verdict.state, &facts.last_success) {
                (State::Protected, Some(good)) => match missing_copies(runner, good)? {
                    Some(why) => Verdict {
                        state: State::NotOffsite,
                        reason: format!("{}, but it is not off-site: {why}", verdict.reason),
                        last_good: verdict.last_good,
                    },
                    None => verdict,
                },
                _ => verdict,
            };
            Ok(Judged {
                verdict,
                facts: std::sync::Arc::clone(facts),
            })
        })
        .collect::<dbkeep_model::error::Result<_>>()?;
    let judged = std::sync::Arc::new(judged);
    cache.keep_judged(stamp, second, &judged);
    Ok(judged)
}

/// Why `good` (a successful backup) lacks a copy at a destination that takes its database;
/// `None` when every one holds it.
///
/// # Errors
/// When the catalog cannot be read.
pub fn missing_copies(
    runner: &dyn crate::runner::View,
    good: &BackupRecord,
) -> dbkeep_model::error::Result<Option<String>> {
    let wanted: Vec<_> = runner.offsite().taking(&good.database).collect();
    if wanted.is_empty() {
        return Ok(None);
    }
    // The record carries its copies: no request of its own.
    let have = &good.copies;
    let mut missing = Vec::new();
    for offsite in wanted {
        match have.iter().find(|c| c.store == offsite.name) {
            Some(c) if c.state == dbkeep_model::copies::CopyState::Uploaded => {}
            Some(c) => missing.push(format!(
                "the copy to `{}` failed ({})",
                offsite.name,
                first_line(c.error.as_deref().unwrap_or("unknown error"))
            )),
            None => missing.push(format!("no copy at `{}` yet", offsite.name)),
        }
    }
    Ok((!missing.is_empty()).then(|| missing.join("; ")))
}

/// The newest successful backup of each configured database that is this configuration's
/// own, in configuration order: from the facts the verdicts are judged from (read by `cache`
/// once per change of the catalog).
///
/// # Errors
/// When the catalog cannot be read.
pub fn last_successes(
    runner: &dyn crate::runner::View,
    cache: &FactsCache,
) -> dbkeep_model::error::Result<Vec<(String, Option<BackupRecord>)>> {
    let facts = cache.get(runner)?;
    Ok(runner
        .config()
        .databases
        .iter()
        .zip(facts.iter())
        .map(|(db, f)| (db.name.clone(), f.last_success.clone()))
        .collect())
}

/// `records` grouped by database, each group in the order given.
fn by_database(records: Vec<BackupRecord>) -> std::collections::HashMap<String, Vec<BackupRecord>> {
    let mut groups: std::collections::HashMap<String, Vec<BackupRecord>> =
        std::collections::HashMap::new();
    for r in records {
        groups.entry(r.database.clone()).or_default().push(r);
    }
    groups
}

/// The newest successful backup of `database` that is this configuration's own.
///
/// # Errors
/// When the catalog cannot be read.
pub fn last_success(
    runner: &dyn crate::runner::View,
    database: &str,
) -> dbkeep_model::error::Result<Option<BackupRecord>> {
    let mut before = None;
    // Pages of successes, newest first, until one is ours (most often the first).
    loop {
        let page = runner.catalog().list(&ListFilter {
            database: Some(database.to_string()),
            status: Some(Status::Success),
            before,
            limit: Some(RECENT),
        })?;
        // The newest by its time, not its id: an imported old file is not the newest backup.
        if let Some(ours) = page
            .iter()
            .filter(|r| runner.owns(r))
            .max_by_key(|r| (r.started_at, r.id))
        {
            return Ok(Some(ours.clone()));
        }
        match page.last() {
            Some(last) if page.len() == RECENT as usize => before = Some(last.id),
            _ => return Ok(None),
        }
    }
}

mod facts;
pub use facts::{Facts, FactsCache};

#[cfg(test)]
mod tests;
