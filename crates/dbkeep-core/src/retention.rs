//! Retention: which backups stay at one destination and which go, and why, as a pure function
//! of the backups there, the policy, the time zone and now.
//!
//! The rules are restic's `forget --keep-*`: `keep_last` keeps the newest N; `retention_days`
//! keeps everything that recent; each calendar rule (`keep_hourly` … `keep_yearly`) walks the
//! backups newest first and keeps the newest of each of the last N periods (hours, days, ISO
//! weeks, months, years in the configured time zone) that have one. Every rule looks at every
//! backup, so one backup may be kept by several. A backup no rule keeps goes, except a pinned
//! one and the database's newest good backup, which always stay.

use chrono::{DateTime, Datelike, Duration, Timelike, Utc};
use chrono_tz::Tz;

use dbkeep_config::config::Retention;
use dbkeep_model::catalog::BackupId;

/// One successful backup present at the destination being pruned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Its catalog row.
    pub id: BackupId,
    /// When it was taken.
    pub started_at: DateTime<Utc>,
    /// Whether it is pinned.
    pub pinned: bool,
}

/// Whether a backup stays or goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A rule keeps it.
    Keep,
    /// No rule keeps it: the policy lets it go.
    Delete,
}

impl Action {
    /// `keep` or `delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Keep => "keep",
            Action::Delete => "delete",
        }
    }
}

/// What the policy says of one backup, and every rule that says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The backup.
    pub id: BackupId,
    /// Stay or go.
    pub action: Action,
    /// The rules that keep it ("daily 2026-11-30", "last 3", "pinned", …), or why none does.
    pub reasons: Vec<String>,
}

/// How many periods a calendar rule of a policy counts.
type Limit = fn(&Retention) -> u32;

/// The calendar rules: their name on screens, and how many periods each counts.
const CALENDAR: [(&str, Limit); 5] = [
    ("hourly", |p| p.hourly),
    ("daily", |p| p.daily),
    ("weekly", |p| p.weekly),
    ("monthly", |p| p.monthly),
    ("yearly", |p| p.yearly),
];

/// The period of `rule` that `at` falls in, as its label: `2026-11-30 14:00`, `2026-11-30`,
/// `2026-W48`, `2026-11`, `2026`.
fn period(rule: &str, at: DateTime<Tz>) -> String {
    match rule {
        "hourly" => format!("{} {:02}:00", at.format("%Y-%m-%d"), at.hour()),
        "daily" => at.format("%Y-%m-%d").to_string(),
        "weekly" => {
            let week = at.iso_week();
            format!("{}-W{:02}", week.year(), week.week())
        }
        "monthly" => at.format("%Y-%m").to_string(),
        _ => at.year().to_string(),
    }
}

/// Decides every backup in `entries` (one database's, at one destination) under `policy` at
/// `now`, its periods read in `tz`. `newest_good` is the database's newest successful backup
/// anywhere: it stays wherever it is. Backups taken after `now` (a preview of a past time)
/// stay, and count for nothing. Newest first.
pub fn decide(
    entries: &[Entry],
    policy: &Retention,
    tz: Tz,
    now: DateTime<Utc>,
    newest_good: Option<BackupId>,
) -> Vec<Decision> {
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    // Newest first; ids break ties between backups of the same instant.
    sorted.sort_by(|a, b| b.started_at.cmp(&a.started_at).then(b.id.cmp(&a.id)));
    // A retention reaching back before the calendar's start keeps everything.
    let cutoff =
        Duration::try_days(i64::from(policy.within_days)).and_then(|d| now.checked_sub_signed(d));
    let mut reasons: Vec<Vec<String>> = vec![Vec::new(); sorted.len()];
    let mut counted = 0u32;
    let mut last_period: [Option<String>; 5] = Default::default();
    let mut kept_periods = [0u32; 5];
    for (i, e) in sorted.iter().enumerate() {
        let why = &mut reasons[i];
        if e.started_at > now {
            why.push("taken after the preview time".to_string());
            continue;
        }
        if e.pinned {
            why.push("pinned".to_string());
        }
        if Some(e.id) == newest_good {
            why.push("newest good backup".to_string());
        }
        if counted < policy.last.max(1) {
            counted += 1;
            why.push(format!("last {}", policy.last.max(1)));
        }
        if cutoff.is_none_or(|c| e.started_at > c) {
            why.push(format!("within {} days", policy.within_days));
        }
        let local = e.started_at.with_timezone(&tz);
        for (r, (rule, limit)) in CALENDAR.iter().enumerate() {
            let limit = limit(policy);
            if kept_periods[r] >= limit {
                continue;
            }
            let label = period(rule, local);
            if last_period[r].as_ref() != Some(&label) {
                kept_periods[r] += 1;
                why.push(format!("{rule} {label}"));
                last_period[r] = Some(label);
            }
        }
    }
    sorted
        .iter()
        .zip(reasons)
        .map(|(e, reasons)| {
            if reasons.is_empty() {
                Decision {
                    id: e.id,
                    action: Action::Delete,
                    reasons: vec!["no rule keeps it".to_string()],
                }
            } else {
                Decision {
                    id: e.id,
                    action: Action::Keep,
                    reasons,
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
