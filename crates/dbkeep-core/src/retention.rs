//! Retention: which backups may be deleted, as a pure function of the records, the policy and now.

use chrono::{DateTime, Duration, Utc};

use dbkeep_model::catalog::{BackupId, BackupRecord, Status};

/// How long backups are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Backups older than this many days may be pruned.
    pub retention_days: u32,
    /// The newest N successful backups of each database are kept whatever their age (at least 1).
    pub keep_last: u32,
}

/// A backup that the policy lets go, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prune {
    /// The catalog row whose file goes.
    pub id: BackupId,
    /// Why, in words.
    pub reason: String,
}

/// The backups in `records` whose files may be deleted under `policy` at `now`.
///
/// Only successful, not yet pruned rows with a file are candidates; the newest `keep_last`
/// (never fewer than one) of each database are always kept; failed and in-progress rows never
/// count as "newest". Oldest first.
pub fn plan(records: &[BackupRecord], policy: Policy, now: DateTime<Utc>) -> Vec<Prune> {
    let keep = policy.keep_last.max(1) as usize;
    // A retention reaching back before the calendar's start keeps everything.
    let Some(cutoff) = Duration::try_days(i64::from(policy.retention_days))
        .and_then(|d| now.checked_sub_signed(d))
    else {
        return Vec::new();
    };
    let mut good: Vec<&BackupRecord> = records
        .iter()
        .filter(|r| r.status == Status::Success && r.pruned_at.is_none() && r.path.is_some())
        .collect();
    // Newest first within each database; ids break ties between backups of the same instant.
    good.sort_by(|a, b| {
        a.database
            .cmp(&b.database)
            .then(b.started_at.cmp(&a.started_at))
            .then(b.id.cmp(&a.id))
    });
    let mut out = Vec::new();
    let mut seen = 0usize;
    let mut current: Option<&str> = None;
    for r in good {
        if current != Some(r.database.as_str()) {
            current = Some(r.database.as_str());
            seen = 0;
        }
        seen += 1;
        if seen <= keep || r.started_at > cutoff {
            continue;
        }
        let age_days = (now - r.started_at).num_days();
        out.push(Prune {
            id: r.id,
            reason: format!(
                "{age_days} day(s) old, retention is {} day(s), and {keep} newer backup(s) are kept",
                policy.retention_days
            ),
        });
    }
    out.sort_by_key(|p| p.id);
    out
}

#[cfg(test)]
mod tests;
