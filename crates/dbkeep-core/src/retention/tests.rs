//! The policy against cases written from restic's documentation of `forget --keep-*`:
//! `--keep-last n` keeps the n newest; `--keep-{hourly,daily,weekly,monthly,yearly} n` keeps,
//! for the last n periods that have one or more backups, the newest of each; periods without
//! backups do not count; weeks are ISO weeks (Monday to Sunday); every rule looks at every
//! backup; times are read in the local time zone.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

use super::*;

const UTC: Tz = chrono_tz::UTC;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn entry(id: i64, started: &str) -> Entry {
    Entry {
        id,
        started_at: at(started),
        pinned: false,
    }
}

fn policy() -> Retention {
    Retention {
        within_days: 0,
        last: 1,
        hourly: 0,
        daily: 0,
        weekly: 0,
        monthly: 0,
        yearly: 0,
    }
}

/// The ids kept, ascending.
fn kept(entries: &[Entry], p: &Retention, tz: Tz, now: &str) -> Vec<i64> {
    let mut ids: Vec<i64> = decide(entries, p, tz, at(now), None)
        .into_iter()
        .filter(|d| d.action == Action::Keep)
        .map(|d| d.id)
        .collect();
    ids.sort_unstable();
    ids
}

fn reasons_of(entries: &[Entry], p: &Retention, tz: Tz, now: &str, id: i64) -> Vec<String> {
    decide(entries, p, tz, at(now), None)
        .into_iter()
        .find(|d| d.id == id)
        .unwrap()
        .reasons
}

#[test]
fn without_calendar_rules_it_is_the_old_policy_exactly() {
    // retention_days 30, keep_last 1: everything newer than 30 days, and the newest.
    let p = Retention::default();
    let e = [
        entry(1, "2026-05-01T12:00:00Z"),
        entry(2, "2026-05-31T11:59:59Z"),
        entry(3, "2026-05-31T12:00:01Z"),
        entry(4, "2026-06-29T12:00:00Z"),
    ];
    assert_eq!(kept(&e, &p, UTC, "2026-06-30T12:00:00Z"), vec![3, 4]);
    // All old: the newest stays.
    assert_eq!(kept(&e[..2], &p, UTC, "2026-06-30T12:00:00Z"), vec![2]);
    // keep_last 2 with nothing recent.
    let two = Retention { last: 2, ..p };
    assert_eq!(kept(&e[..3], &two, UTC, "2026-09-30T12:00:00Z"), vec![2, 3]);
    // keep_last 0 is 1.
    let zero = Retention {
        last: 0,
        within_days: 0,
        ..p
    };
    assert_eq!(kept(&e, &zero, UTC, "2026-09-30T12:00:00Z"), vec![4]);
    // A retention reaching back past the calendar keeps everything, and never panics.
    for days in [100_000_000, u32::MAX] {
        let huge = Retention {
            within_days: days,
            ..p
        };
        assert_eq!(
            kept(&e, &huge, UTC, "2026-06-30T12:00:00Z"),
            vec![1, 2, 3, 4]
        );
    }
}

#[test]
fn keep_daily_counts_only_days_that_have_backups_and_keeps_the_newest_of_each() {
    let p = Retention {
        daily: 3,
        ..policy()
    };
    let e = [
        entry(1, "2026-11-20T08:00:00Z"),
        entry(2, "2026-11-24T08:00:00Z"),
        entry(3, "2026-11-24T20:00:00Z"),
        // Nothing on the 25th to the 27th: those days do not count.
        entry(4, "2026-11-28T01:00:00Z"),
        entry(5, "2026-11-28T23:00:00Z"),
        entry(6, "2026-11-30T00:00:00Z"),
    ];
    assert_eq!(kept(&e, &p, UTC, "2026-12-01T00:00:00Z"), vec![3, 5, 6]);
    assert_eq!(
        reasons_of(&e, &p, UTC, "2026-12-01T00:00:00Z", 3),
        vec!["daily 2026-11-24"]
    );
    // Fewer days with backups than the rule asks for: the newest of each is kept.
    let ten = Retention {
        daily: 10,
        ..policy()
    };
    assert_eq!(
        kept(&e, &ten, UTC, "2026-12-01T00:00:00Z"),
        vec![1, 3, 5, 6]
    );
}

#[test]
fn ties_in_one_instant_keep_the_later_row() {
    let p = Retention {
        daily: 1,
        ..policy()
    };
    let e = [
        entry(7, "2026-11-30T00:00:00Z"),
        entry(8, "2026-11-30T00:00:00Z"),
    ];
    assert_eq!(kept(&e, &p, UTC, "2026-12-01T00:00:00Z"), vec![8]);
    let reasons = reasons_of(&e, &p, UTC, "2026-12-01T00:00:00Z", 8);
    assert_eq!(reasons, vec!["last 1", "daily 2026-11-30"]);
}

#[test]
fn weeks_are_iso_weeks_from_monday_to_sunday() {
    let p = Retention {
        weekly: 2,
        ..policy()
    };
    let e = [
        // Week 2026-W48: Monday 23 November to Sunday 29 November.
        entry(1, "2026-11-23T00:00:00Z"),
        entry(2, "2026-11-28T12:00:00Z"),
        entry(3, "2026-11-29T23:59:00Z"),
        // 2026-W49 begins on Monday 30 November.
        entry(4, "2026-11-30T00:00:00Z"),
        entry(5, "2026-12-01T00:00:00Z"),
    ];
    assert_eq!(kept(&e, &p, UTC, "2026-12-02T00:00:00Z"), vec![3, 5]);
    assert_eq!(
        reasons_of(&e, &p, UTC, "2026-12-02T00:00:00Z", 3),
        vec!["weekly 2026-W48"]
    );
    // The ISO year: 1 January 2027 is a Friday of 2026-W53.
    let e = [
        entry(1, "2026-12-28T00:00:00Z"),
        entry(2, "2027-01-01T00:00:00Z"),
    ];
    assert_eq!(kept(&e, &p, UTC, "2027-01-02T00:00:00Z"), vec![2]);
    assert_eq!(
        reasons_of(&e, &p, UTC, "2027-01-02T00:00:00Z", 2),
        vec!["last 1", "weekly 2026-W53"]
    );
}

#[test]
fn months_and_years_keep_their_last_backup() {
    let p = Retention {
        monthly: 2,
        yearly: 2,
        ..policy()
    };
    let e = [
        entry(1, "2024-06-01T00:00:00Z"),
        entry(2, "2024-12-31T00:00:00Z"),
        entry(3, "2025-10-15T00:00:00Z"),
        entry(4, "2025-10-31T00:00:00Z"),
        entry(5, "2025-11-02T00:00:00Z"),
        entry(6, "2025-11-03T00:00:00Z"),
    ];
    // Monthly: 2025-11 (6) and 2025-10 (4); yearly: 2025 (6) and 2024 (2).
    assert_eq!(kept(&e, &p, UTC, "2025-12-01T00:00:00Z"), vec![2, 4, 6]);
    assert_eq!(
        reasons_of(&e, &p, UTC, "2025-12-01T00:00:00Z", 4),
        vec!["monthly 2025-10"]
    );
    assert_eq!(
        reasons_of(&e, &p, UTC, "2025-12-01T00:00:00Z", 6),
        vec!["last 1", "monthly 2025-11", "yearly 2025"]
    );
}

#[test]
fn periods_are_read_in_the_configured_time_zone() {
    let berlin: Tz = "Europe/Berlin".parse().unwrap();
    let p = Retention {
        daily: 2,
        ..policy()
    };
    let e = [
        // 1 December 00:30 in Berlin, 30 November in UTC.
        entry(1, "2026-11-30T23:30:00Z"),
        entry(2, "2026-11-30T12:00:00Z"),
        entry(3, "2026-11-29T06:00:00Z"),
    ];
    assert_eq!(kept(&e, &p, UTC, "2026-12-02T00:00:00Z"), vec![1, 3]);
    assert_eq!(kept(&e, &p, berlin, "2026-12-02T00:00:00Z"), vec![1, 2]);
    assert_eq!(
        reasons_of(&e, &p, berlin, "2026-12-02T00:00:00Z", 1),
        vec!["last 1", "daily 2026-12-01"]
    );
}

#[test]
fn the_repeated_hour_of_a_dst_change_is_one_local_hour() {
    // 25 October 2026, Berlin: 02:00 to 03:00 comes twice (CEST, then CET).
    let berlin: Tz = "Europe/Berlin".parse().unwrap();
    let p = Retention {
        hourly: 24,
        ..policy()
    };
    let e = [
        entry(1, "2026-10-25T00:30:00Z"), // 02:30 CEST
        entry(2, "2026-10-25T01:30:00Z"), // 02:30 CET
        entry(3, "2026-10-25T02:30:00Z"), // 03:30 CET
    ];
    assert_eq!(kept(&e, &p, berlin, "2026-10-25T12:00:00Z"), vec![2, 3]);
    assert_eq!(kept(&e, &p, UTC, "2026-10-25T12:00:00Z"), vec![1, 2, 3]);
    assert_eq!(
        reasons_of(&e, &p, berlin, "2026-10-25T12:00:00Z", 2),
        vec!["hourly 2026-10-25 02:00"]
    );
    // The skipped hour in spring: 29 March 2026, 02:00 to 03:00 does not exist.
    let d = Retention {
        daily: 1,
        ..policy()
    };
    let e = [
        entry(1, "2026-03-29T00:30:00Z"), // 01:30 CET
        entry(2, "2026-03-29T01:30:00Z"), // 03:30 CEST
    ];
    assert_eq!(kept(&e, &d, berlin, "2026-03-30T00:00:00Z"), vec![2]);
}

#[test]
fn every_rule_looks_at_every_backup() {
    // restic: "--keep-daily 7 --keep-weekly 5" keeps 7 dailies, and the weeklies include
    // the week of the dailies.
    let p = Retention {
        daily: 2,
        weekly: 2,
        ..policy()
    };
    let e = [
        entry(1, "2026-11-22T00:00:00Z"), // Sunday of W47
        entry(2, "2026-11-27T00:00:00Z"),
        entry(3, "2026-11-28T00:00:00Z"),
        entry(4, "2026-11-29T00:00:00Z"), // Sunday of W48
    ];
    assert_eq!(kept(&e, &p, UTC, "2026-11-30T00:00:00Z"), vec![1, 3, 4]);
    assert_eq!(
        reasons_of(&e, &p, UTC, "2026-11-30T00:00:00Z", 4),
        vec!["last 1", "daily 2026-11-29", "weekly 2026-W48"]
    );
}

#[test]
fn pinned_and_newest_good_stay_whatever_the_policy() {
    let mut e = vec![
        entry(1, "2020-01-01T00:00:00Z"),
        entry(2, "2021-01-01T00:00:00Z"),
        entry(3, "2026-11-29T00:00:00Z"),
    ];
    e[0].pinned = true;
    let p = policy();
    let d = decide(&e, &p, UTC, at("2026-12-01T00:00:00Z"), Some(2));
    let by_id: BTreeMap<i64, (Action, Vec<String>)> = d
        .into_iter()
        .map(|d| (d.id, (d.action, d.reasons)))
        .collect();
    assert_eq!(by_id[&1], (Action::Keep, vec!["pinned".to_string()]));
    assert_eq!(
        by_id[&2],
        (Action::Keep, vec!["newest good backup".to_string()])
    );
    assert_eq!(by_id[&3], (Action::Keep, vec!["last 1".to_string()]));
    // Without the pin and the newest good backup elsewhere, both go, saying why.
    e[0].pinned = false;
    let d = decide(&e, &p, UTC, at("2026-12-01T00:00:00Z"), Some(3));
    let gone: Vec<&Decision> = d.iter().filter(|d| d.action == Action::Delete).collect();
    assert_eq!(gone.len(), 2);
    assert_eq!(gone[0].reasons, vec!["no rule keeps it"]);
}

#[test]
fn within_days_reason_names_the_days() {
    let p = Retention {
        within_days: 30,
        daily: 1,
        ..policy()
    };
    let e = [
        entry(1, "2026-11-20T00:00:00Z"),
        entry(2, "2026-11-29T00:00:00Z"),
    ];
    assert_eq!(
        reasons_of(&e, &p, UTC, "2026-12-01T00:00:00Z", 1),
        vec!["within 30 days"]
    );
    let last = Retention {
        last: 3,
        ..policy()
    };
    assert_eq!(
        reasons_of(&e, &last, UTC, "2026-12-01T00:00:00Z", 1),
        vec!["last 3"]
    );
}

#[test]
fn a_preview_of_a_past_time_ignores_later_backups() {
    let p = policy();
    let e = [
        entry(1, "2026-11-01T00:00:00Z"),
        entry(2, "2026-11-02T00:00:00Z"),
        entry(3, "2026-11-03T00:00:00Z"),
    ];
    // On 2 November at noon, #2 was the newest: #1 went, #3 did not exist yet.
    assert_eq!(kept(&e, &p, UTC, "2026-11-02T12:00:00Z"), vec![2, 3]);
    assert_eq!(
        reasons_of(&e, &p, UTC, "2026-11-02T12:00:00Z", 3),
        vec!["taken after the preview time"]
    );
}

/// The rules as restic's documentation states them, written as sets: for each rule, the
/// newest backup of each period, of the N newest periods that have one.
fn by_the_book(entries: &[Entry], p: &Retention, tz: Tz) -> BTreeSet<i64> {
    let mut out = BTreeSet::new();
    let mut newest: Vec<&Entry> = entries.iter().collect();
    newest.sort_by_key(|e| std::cmp::Reverse((e.started_at, e.id)));
    out.extend(newest.iter().take(p.last.max(1) as usize).map(|e| e.id));
    for (rule, n) in [
        ("hourly", p.hourly),
        ("daily", p.daily),
        ("weekly", p.weekly),
        ("monthly", p.monthly),
        ("yearly", p.yearly),
    ] {
        let mut periods: BTreeMap<String, &Entry> = BTreeMap::new();
        for e in &newest {
            periods
                .entry(period(rule, e.started_at.with_timezone(&tz)))
                .or_insert(e);
        }
        // Period labels sort as time does.
        out.extend(periods.values().rev().take(n as usize).map(|e| e.id));
    }
    out
}

#[test]
fn four_hundred_daily_backups_under_grandfather_father_son() {
    let p = Retention {
        daily: 7,
        weekly: 4,
        monthly: 12,
        yearly: 3,
        ..policy()
    };
    let first = NaiveDate::from_ymd_opt(2025, 11, 2).unwrap();
    let e: Vec<Entry> = (0..400)
        .map(|i| Entry {
            id: i + 1,
            started_at: Utc
                .from_utc_datetime(&(first + Duration::days(i)).and_hms_opt(0, 0, 0).unwrap()),
            pinned: false,
        })
        .collect();
    // The last one is 2026-12-06.
    let now = "2026-12-06T12:00:00Z";
    let got: BTreeSet<i64> = kept(&e, &p, UTC, now).into_iter().collect();
    assert_eq!(got, by_the_book(&e, &p, UTC));
    let day = |id: i64| (first + Duration::days(id - 1)).to_string();
    let days: Vec<String> = got.iter().map(|&id| day(id)).collect();
    assert_eq!(
        days,
        [
            "2025-12-31",
            "2026-01-31",
            "2026-02-28",
            "2026-03-31",
            "2026-04-30",
            "2026-05-31",
            "2026-06-30",
            "2026-07-31",
            "2026-08-31",
            "2026-09-30",
            "2026-10-31",
            "2026-11-15",
            "2026-11-22",
            "2026-11-29",
            "2026-11-30",
            "2026-12-01",
            "2026-12-02",
            "2026-12-03",
            "2026-12-04",
            "2026-12-05",
            "2026-12-06",
        ]
    );
}
