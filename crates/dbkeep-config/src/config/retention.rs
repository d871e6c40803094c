//! Retention policies: how long backups stay, on the local disk and at each destination.
//!
//! A policy is a set of rules, each keeping some backups; a backup that no rule keeps goes.
//! The keys are the same everywhere they may appear: at top level (the local folder's policy,
//! and every database's default), in a `[[databases]]` entry (that database's local policy),
//! in an `[[offsite]]` entry (that destination's own policy, for every database it takes) and
//! under `[databases.offsite_retention.NAME]` (one database at one destination).

use std::fmt;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use dbkeep_model::error::ConfigError;

use super::Source;

/// The most days `retention_days` may say (a century).
pub const MAX_RETENTION_DAYS: u32 = 36_500;
/// The most backups `keep_last` may keep regardless of age.
pub const MAX_KEEP_LAST: u32 = 1_000_000;
/// The most periods a `keep_hourly` … `keep_yearly` rule may count.
pub const MAX_PERIODS: u32 = 1_000_000;

/// The default of `retention_days` for a policy without calendar rules.
pub const DEFAULT_RETENTION_DAYS: u32 = 30;

/// One retention policy, resolved: every rule has its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Everything this many days old or newer stays (`retention_days`).
    pub within_days: u32,
    /// The newest N successful backups stay whatever their age (`keep_last`, at least 1).
    pub last: u32,
    /// For each of the last N hours that have a successful backup, its newest stays.
    pub hourly: u32,
    /// For each of the last N days that have a successful backup, its newest stays.
    pub daily: u32,
    /// For each of the last N ISO weeks that have a successful backup, its newest stays.
    pub weekly: u32,
    /// For each of the last N months that have a successful backup, its newest stays.
    pub monthly: u32,
    /// For each of the last N years that have a successful backup, its newest stays.
    pub yearly: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            within_days: DEFAULT_RETENTION_DAYS,
            last: 1,
            hourly: 0,
            daily: 0,
            weekly: 0,
            monthly: 0,
            yearly: 0,
        }
    }
}

impl Retention {
    /// Whether any calendar rule (`keep_hourly` … `keep_yearly`) is set.
    pub fn has_calendar(&self) -> bool {
        self.hourly + self.daily + self.weekly + self.monthly + self.yearly > 0
    }
}

/// The policy in its own keys, as `dbkeep.toml` would say it: what a prune records as the
/// policy it applied, and what screens show.
impl fmt::Display for Retention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "retention_days {}, keep_last {}",
            self.within_days, self.last
        )?;
        for (key, n) in [
            ("keep_hourly", self.hourly),
            ("keep_daily", self.daily),
            ("keep_weekly", self.weekly),
            ("keep_monthly", self.monthly),
            ("keep_yearly", self.yearly),
        ] {
            if n > 0 {
                write!(f, ", {key} {n}")?;
            }
        }
        Ok(())
    }
}

/// The [`RawRetention`] of a raw table that has the seven retention keys as fields of its own
/// (serde cannot flatten them into a table that refuses unknown keys).
macro_rules! raw_retention_of {
    ($raw:expr) => {
        $crate::config::retention::RawRetention {
            retention_days: $raw.retention_days.clone(),
            keep_last: $raw.keep_last.clone(),
            keep_hourly: $raw.keep_hourly.clone(),
            keep_daily: $raw.keep_daily.clone(),
            keep_weekly: $raw.keep_weekly.clone(),
            keep_monthly: $raw.keep_monthly.clone(),
            keep_yearly: $raw.keep_yearly.clone(),
        }
    };
}
pub(super) use raw_retention_of;

/// The retention keys of one table of `dbkeep.toml`, as written; unset keys inherit.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRetention {
    pub retention_days: Option<Spanned<u32>>,
    pub keep_last: Option<Spanned<u32>>,
    pub keep_hourly: Option<Spanned<u32>>,
    pub keep_daily: Option<Spanned<u32>>,
    pub keep_weekly: Option<Spanned<u32>>,
    pub keep_monthly: Option<Spanned<u32>>,
    pub keep_yearly: Option<Spanned<u32>>,
}

/// One table's retention keys, checked against their ranges: `None` where a key is unset
/// (it inherits).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionKeys {
    within_days: Option<u32>,
    last: Option<u32>,
    hourly: Option<u32>,
    daily: Option<u32>,
    weekly: Option<u32>,
    monthly: Option<u32>,
    yearly: Option<u32>,
}

impl RawRetention {
    /// Whether the table sets any retention key.
    pub(super) fn is_set(&self) -> bool {
        self.keys().iter().any(|(_, v)| v.is_some())
    }

    fn keys(&self) -> [(&'static str, &Option<Spanned<u32>>); 7] {
        [
            ("retention_days", &self.retention_days),
            ("keep_last", &self.keep_last),
            ("keep_hourly", &self.keep_hourly),
            ("keep_daily", &self.keep_daily),
            ("keep_weekly", &self.keep_weekly),
            ("keep_monthly", &self.keep_monthly),
            ("keep_yearly", &self.keep_yearly),
        ]
    }

    /// The keys checked: each in its range, or an error naming the file, line and key (`owner`
    /// says whose key it is, e.g. "of database `app`").
    pub(super) fn check(
        &self,
        src: &Source<'_>,
        owner: &str,
    ) -> Result<RetentionKeys, ConfigError> {
        let owner = if owner.is_empty() {
            String::new()
        } else {
            format!(" {owner}")
        };
        let get = |key: &str, value: &Option<Spanned<u32>>| -> Result<Option<u32>, ConfigError> {
            let Some(v) = value else { return Ok(None) };
            let (range, meaning): (Range<u32>, &str) = match key {
                "retention_days" => (
                    0..MAX_RETENTION_DAYS + 1,
                    "days of backups to keep, e.g. 30",
                ),
                "keep_last" => (
                    1..MAX_KEEP_LAST + 1,
                    "the newest successful backup is never pruned",
                ),
                _ => (
                    0..MAX_PERIODS + 1,
                    "how many periods keep their newest backup, e.g. 7",
                ),
            };
            if !range.contains(v.get_ref()) {
                return Err(src.error(
                    v.span(),
                    format!(
                        "`{key}`{owner} = {} is out of range: it must be from {} to {} ({meaning})",
                        v.get_ref(),
                        range.start,
                        range.end - 1
                    ),
                ));
            }
            Ok(Some(*v.get_ref()))
        };
        Ok(RetentionKeys {
            within_days: get("retention_days", &self.retention_days)?,
            last: get("keep_last", &self.keep_last)?,
            hourly: get("keep_hourly", &self.keep_hourly)?,
            daily: get("keep_daily", &self.keep_daily)?,
            weekly: get("keep_weekly", &self.keep_weekly)?,
            monthly: get("keep_monthly", &self.keep_monthly)?,
            yearly: get("keep_yearly", &self.keep_yearly)?,
        })
    }
}

impl RetentionKeys {
    /// These keys over `base`'s: each key set here wins, the others are `base`'s.
    pub fn over(self, base: RetentionKeys) -> RetentionKeys {
        RetentionKeys {
            within_days: self.within_days.or(base.within_days),
            last: self.last.or(base.last),
            hourly: self.hourly.or(base.hourly),
            daily: self.daily.or(base.daily),
            weekly: self.weekly.or(base.weekly),
            monthly: self.monthly.or(base.monthly),
            yearly: self.yearly.or(base.yearly),
        }
    }

    /// The same keys with `retention_days` set, as the environment or a command line says.
    pub fn with_days(self, days: Option<u32>) -> RetentionKeys {
        RetentionKeys {
            within_days: days.or(self.within_days),
            ..self
        }
    }

    /// The policy these keys make. Unset calendar rules keep nothing and `keep_last` is 1;
    /// `retention_days` is 30 unless a calendar rule is set, when it is 0 (the calendar
    /// decides alone unless `retention_days` is given too).
    pub fn resolve(self) -> Retention {
        let mut policy = Retention {
            within_days: 0,
            last: self.last.unwrap_or(1),
            hourly: self.hourly.unwrap_or(0),
            daily: self.daily.unwrap_or(0),
            weekly: self.weekly.unwrap_or(0),
            monthly: self.monthly.unwrap_or(0),
            yearly: self.yearly.unwrap_or(0),
        };
        policy.within_days = self.within_days.unwrap_or(if policy.has_calendar() {
            0
        } else {
            DEFAULT_RETENTION_DAYS
        });
        policy
    }
}

/// Where a backup is kept: its database's own folder, or an off-site destination.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Destination {
    /// This instance's `backup_dir`.
    Local,
    /// An `[[offsite]]` entry, by name.
    Offsite(String),
}

impl Destination {
    /// Its name on screens and in the catalog: `local`, or the destination's name.
    pub fn name(&self) -> &str {
        match self {
            Destination::Local => "local",
            Destination::Offsite(name) => name,
        }
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
