#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::*;
use dbkeep_model::catalog::{Kind, Trigger};
use dbkeep_model::vocab::Compression;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 30, 12, 0, 0).unwrap()
}

fn rec(id: i64, database: &str, status: Status, days_ago: i64) -> BackupRecord {
    BackupRecord {
        id,
        database: database.to_string(),
        kind: Kind::Sqlite,
        status,
        trigger: Trigger::Manual,
        file_name: Some(format!("f{id}.db")),
        path: (status == Status::Success).then(|| PathBuf::from(format!("/b/{database}/f{id}.db"))),
        size_bytes: Some(1),
        sha256: None,
        compression: Compression::None,
        started_at: now() - Duration::days(days_ago),
        finished_at: None,
        duration_ms: None,
        error: None,
        pruned_at: None,
        pinned: false,
        pin_note: None,
        verified_at: None,
        verify_level: None,
        verify_status: None,
        encrypted: false,
        copies: Vec::new(),
        verify_error: None,
        instance: None,
    }
}

fn ids(p: &[Prune]) -> Vec<i64> {
    p.iter().map(|p| p.id).collect()
}

const POLICY: Policy = Policy {
    retention_days: 30,
    keep_last: 1,
};

#[test]
fn prunes_only_backups_older_than_retention() {
    let records = [
        rec(1, "a", Status::Success, 40),
        rec(2, "a", Status::Success, 31),
        rec(3, "a", Status::Success, 29),
    ];
    assert_eq!(ids(&plan(&records, POLICY, now())), vec![1, 2]);
}

#[test]
fn never_prunes_the_newest_good_backup_even_when_all_are_old() {
    let records = [
        rec(1, "a", Status::Success, 90),
        rec(2, "a", Status::Success, 60),
        rec(3, "a", Status::Failed, 1),
    ];
    assert_eq!(ids(&plan(&records, POLICY, now())), vec![1]);
    // keep_last = 0 is treated as 1.
    let zero = Policy {
        retention_days: 0,
        keep_last: 0,
    };
    assert_eq!(ids(&plan(&records, zero, now())), vec![1]);
}

#[test]
fn keep_last_counts_per_database() {
    let records = [
        rec(1, "a", Status::Success, 50),
        rec(2, "a", Status::Success, 40),
        rec(3, "a", Status::Success, 35),
        rec(4, "b", Status::Success, 45),
    ];
    let policy = Policy {
        retention_days: 30,
        keep_last: 2,
    };
    assert_eq!(ids(&plan(&records, policy, now())), vec![1]);
}

#[test]
fn retention_zero_keeps_only_keep_last() {
    let records = [
        rec(1, "a", Status::Success, 0),
        rec(2, "a", Status::Success, 0),
        rec(3, "a", Status::Success, 0),
    ];
    let policy = Policy {
        retention_days: 0,
        keep_last: 1,
    };
    assert_eq!(ids(&plan(&records, policy, now())), vec![1, 2]);
}

#[test]
fn ignores_failed_in_progress_and_already_pruned_rows() {
    let mut pruned = rec(1, "a", Status::Success, 100);
    pruned.pruned_at = Some(now());
    let records = [
        pruned,
        rec(2, "a", Status::Failed, 100),
        rec(3, "a", Status::InProgress, 100),
        rec(4, "a", Status::Success, 100),
        rec(5, "a", Status::Success, 99),
    ];
    assert_eq!(ids(&plan(&records, POLICY, now())), vec![4]);
}

#[test]
fn same_instant_backups_are_ordered_by_id() {
    let records = [
        rec(7, "a", Status::Success, 10),
        rec(8, "a", Status::Success, 10),
    ];
    let policy = Policy {
        retention_days: 0,
        keep_last: 1,
    };
    assert_eq!(ids(&plan(&records, policy, now())), vec![7]);
}

#[test]
fn reasons_say_why() {
    let records = [
        rec(1, "a", Status::Success, 40),
        rec(2, "a", Status::Success, 1),
    ];
    let p = plan(&records, POLICY, now());
    assert_eq!(
        p[0].reason,
        "40 day(s) old, retention is 30 day(s), and 1 newer backup(s) are kept"
    );
}

#[test]
fn retention_beyond_the_calendar_keeps_everything_and_never_panics() {
    let records = [
        rec(1, "a", Status::Success, 400),
        rec(2, "a", Status::Success, 1),
    ];
    for days in [100_000_000, u32::MAX] {
        let policy = Policy {
            retention_days: days,
            keep_last: 1,
        };
        assert!(plan(&records, policy, now()).is_empty(), "{days}");
    }
}
