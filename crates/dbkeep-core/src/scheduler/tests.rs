#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};

use super::*;
use dbkeep_catalog::sqlite::SqliteCatalog;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn next(expr: &str, tz: &str, after: &str) -> String {
    let cron = Cron::from_str(expr).unwrap();
    let tz: Tz = tz.parse().unwrap();
    next_fire(&cron, tz, utc(after)).unwrap().to_rfc3339()
}

/// (expression, zone, after, expected next fire), all instants in UTC.
const NEXT_FIRES: &[(&str, &str, &str, &str)] = &[
    (
        "0 0 * * *",
        "UTC",
        "2026-11-26T05:00:00Z",
        "2026-11-27T00:00:00+00:00",
    ),
    (
        "0 0 * * *",
        "UTC",
        "2026-11-26T23:59:59Z",
        "2026-11-27T00:00:00+00:00",
    ),
    (
        "0 0 * * *",
        "UTC",
        "2026-11-27T00:00:00Z",
        "2026-11-28T00:00:00+00:00",
    ),
    (
        "0 */6 * * *",
        "UTC",
        "2026-11-26T05:00:00Z",
        "2026-11-26T06:00:00+00:00",
    ),
    (
        "0 */6 * * *",
        "UTC",
        "2026-11-26T18:00:00Z",
        "2026-11-27T00:00:00+00:00",
    ),
    // 2026-11-26 is a Thursday.
    (
        "0 0 * * sun",
        "UTC",
        "2026-11-26T05:00:00Z",
        "2026-11-29T00:00:00+00:00",
    ),
    (
        "@weekly",
        "UTC",
        "2026-11-26T05:00:00Z",
        "2026-11-29T00:00:00+00:00",
    ),
    (
        "@daily",
        "UTC",
        "2026-11-26T05:00:00Z",
        "2026-11-27T00:00:00+00:00",
    ),
    (
        "@hourly",
        "UTC",
        "2026-11-26T05:00:00Z",
        "2026-11-26T06:00:00+00:00",
    ),
    (
        "@monthly",
        "UTC",
        "2026-11-26T05:00:00Z",
        "2026-12-01T00:00:00+00:00",
    ),
    (
        "*/15 * * * * *",
        "UTC",
        "2026-11-26T05:00:07Z",
        "2026-11-26T05:00:15+00:00",
    ),
    (
        "*/15 * * * * *",
        "UTC",
        "2026-11-26T05:00:45Z",
        "2026-11-26T05:01:00+00:00",
    ),
    // 29 February comes every four years.
    (
        "0 0 29 2 *",
        "UTC",
        "2026-03-01T00:00:00Z",
        "2028-02-29T00:00:00+00:00",
    ),
    // Month ends: the 31st skips 30-day months; L is the last day.
    (
        "0 0 31 * *",
        "UTC",
        "2026-04-01T00:00:00Z",
        "2026-05-31T00:00:00+00:00",
    ),
    (
        "0 0 L * *",
        "UTC",
        "2027-02-01T00:00:00Z",
        "2027-02-28T00:00:00+00:00",
    ),
    // Local midnight in Berlin is 23:00 UTC in winter.
    (
        "0 0 * * *",
        "Europe/Berlin",
        "2026-11-26T05:00:00Z",
        "2026-11-26T23:00:00+00:00",
    ),
    // Berlin springs forward on 2027-03-28 at 02:00 -> 03:00: 02:30 does not exist that day and
    // fires once at the first instant after the gap (03:00 CEST = 01:00 UTC), then as usual.
    (
        "30 2 * * *",
        "Europe/Berlin",
        "2027-03-27T12:00:00Z",
        "2027-03-28T01:00:00+00:00",
    ),
    (
        "30 2 * * *",
        "Europe/Berlin",
        "2027-03-28T01:00:00Z",
        "2027-03-29T00:30:00+00:00",
    ),
    // Berlin falls back on 2026-10-25 at 03:00 -> 02:00: 02:30 happens twice and fires once.
    (
        "30 2 * * *",
        "Europe/Berlin",
        "2026-10-24T12:00:00Z",
        "2026-10-25T00:30:00+00:00",
    ),
    (
        "30 2 * * *",
        "Europe/Berlin",
        "2026-10-25T00:30:00Z",
        "2026-10-26T01:30:00+00:00",
    ),
    // New York springs forward on 2027-03-14 at 02:00 -> 03:00 ...
    (
        "30 2 * * *",
        "America/New_York",
        "2027-03-13T12:00:00Z",
        "2027-03-14T07:00:00+00:00",
    ),
    (
        "30 2 * * *",
        "America/New_York",
        "2027-03-14T07:00:00Z",
        "2027-03-15T06:30:00+00:00",
    ),
    // ... and falls back on 2026-11-01 at 02:00 -> 01:00: 01:30 fires once.
    (
        "30 1 * * *",
        "America/New_York",
        "2026-10-31T12:00:00Z",
        "2026-11-01T05:30:00+00:00",
    ),
    (
        "30 1 * * *",
        "America/New_York",
        "2026-11-01T05:30:00Z",
        "2026-11-02T06:30:00+00:00",
    ),
];

#[test]
fn next_fire_table() {
    for (expr, tz, after, expected) in NEXT_FIRES {
        assert_eq!(
            &next(expr, tz, after),
            expected,
            "{expr} in {tz} after {after}"
        );
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    catalog: SqliteCatalog,
    config: Config,
}

fn fixture(schedules: &str, extra: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "timezone = \"UTC\"\n{extra}\n[[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\nschedules = [{schedules}]\n"
    );
    let config = Config::parse(&dir.path().join("dbkeep.toml"), &text, &|_| None).unwrap();
    let catalog = SqliteCatalog::open(config.catalog.sqlite_file().unwrap()).unwrap();
    Fixture {
        _dir: dir,
        catalog,
        config,
    }
}

fn planned(claims: &[Claimed]) -> Vec<String> {
    claims.iter().map(|c| c.planned_at.to_rfc3339()).collect()
}

#[test]
fn fires_at_the_planned_instants_and_not_before() {
    let f = fixture("\"*/10 * * * * *\"", "");
    let mut s = Scheduler::new(&f.config);
    assert!(
        s.start(&f.catalog, utc("2026-01-01T00:00:03Z"))
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.next_wakeup(), Some(utc("2026-01-01T00:00:10Z")));
    assert!(
        s.due(&f.catalog, utc("2026-01-01T00:00:09.999Z"))
            .unwrap()
            .is_empty()
    );
    let due = s.due(&f.catalog, utc("2026-01-01T00:00:10Z")).unwrap();
    assert_eq!(planned(&due), ["2026-01-01T00:00:10+00:00"]);
    assert_eq!(due[0].database, "app");
    assert_eq!(s.next_wakeup(), Some(utc("2026-01-01T00:00:20Z")));
    // Woken late, past several fires: the schedule fires once and plans from now.
    let due = s.due(&f.catalog, utc("2026-01-01T00:00:45Z")).unwrap();
    assert_eq!(planned(&due), ["2026-01-01T00:00:20+00:00"]);
    assert_eq!(s.next_wakeup(), Some(utc("2026-01-01T00:00:50Z")));
}

#[test]
fn two_schedulers_on_one_catalog_claim_each_fire_once() {
    let f = fixture("\"*/2 * * * * *\", \"*/3 * * * * *\"", "");
    let other = SqliteCatalog::open(f.config.catalog.sqlite_file().unwrap()).unwrap();
    let (mut a, mut b) = (Scheduler::new(&f.config), Scheduler::new(&f.config));
    let t0 = utc("2026-01-01T00:00:00.500Z");
    a.start(&f.catalog, t0).unwrap();
    b.start(&other, t0).unwrap();
    let mut claimed = Vec::new();
    for ms in (1000..=30_000).step_by(250) {
        let now = t0 + chrono::Duration::milliseconds(ms);
        // Alternate who looks first, as two processes racing would.
        let (first, second) = if ms % 500 == 0 {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        claimed.extend(first.due(&f.catalog, now).unwrap());
        claimed.extend(second.due(&other, now).unwrap());
    }
    let mut keys: Vec<_> = claimed
        .iter()
        .map(|c| (c.schedule.clone(), c.planned_at))
        .collect();
    let total = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), total, "a fire was claimed twice");
    // Every even second and every third second in (0.5 s, 30.5 s].
    assert_eq!(keys.iter().filter(|k| k.0 == "*/2 * * * * *").count(), 15);
    assert_eq!(keys.iter().filter(|k| k.0 == "*/3 * * * * *").count(), 10);
    assert_eq!(f.catalog.fires("app", None, 1000).unwrap().len(), 25);
}

#[test]
fn nothing_is_missed_on_the_very_first_start() {
    let f = fixture("\"0 * * * *\"", "");
    let mut s = Scheduler::new(&f.config);
    assert!(
        s.start(&f.catalog, utc("2026-01-01T10:30:00Z"))
            .unwrap()
            .is_empty()
    );
    assert!(f.catalog.fires("app", None, 10).unwrap().is_empty());
}

#[test]
fn missed_fires_within_grace_coalesce_into_one_catch_up() {
    let f = fixture("\"0 * * * *\"", "misfire_grace = \"1h\"");
    let mut s = Scheduler::new(&f.config);
    s.start(&f.catalog, utc("2026-01-01T09:59:00Z")).unwrap();
    assert_eq!(
        s.due(&f.catalog, utc("2026-01-01T10:00:00Z"))
            .unwrap()
            .len(),
        1
    );
    // Down from just after 10:00 until 13:20: 11:00, 12:00 and 13:00 were missed.
    let mut restarted = Scheduler::new(&f.config);
    let catch_up = restarted
        .start(&f.catalog, utc("2026-01-01T13:20:00Z"))
        .unwrap();
    assert_eq!(planned(&catch_up), ["2026-01-01T13:00:00+00:00"]);
    let fires = f.catalog.fires("app", None, 10).unwrap();
    let outcomes: Vec<_> = fires
        .iter()
        .map(|f| (f.planned_at.to_rfc3339(), f.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("2026-01-01T13:00:00+00:00".to_string(), Outcome::Running),
            ("2026-01-01T12:00:00+00:00".to_string(), Outcome::Missed),
            ("2026-01-01T11:00:00+00:00".to_string(), Outcome::Missed),
            ("2026-01-01T10:00:00+00:00".to_string(), Outcome::Running),
        ]
    );
    assert_eq!(
        fires[0].detail.as_deref(),
        Some("catch-up run for 3 missed fire(s)")
    );
    assert_eq!(restarted.next_wakeup(), Some(utc("2026-01-01T14:00:00Z")));
    // A second process starting at the same moment records nothing twice and runs nothing.
    let mut third = Scheduler::new(&f.config);
    assert!(
        third
            .start(&f.catalog, utc("2026-01-01T13:20:01Z"))
            .unwrap()
            .is_empty()
    );
    assert_eq!(f.catalog.fires("app", None, 10).unwrap().len(), 4);
}

#[test]
fn missed_fires_outside_grace_are_recorded_and_not_run() {
    let f = fixture("\"0 0 * * *\"", "misfire_grace = \"1h\"");
    let mut s = Scheduler::new(&f.config);
    s.start(&f.catalog, utc("2026-01-01T23:00:00Z")).unwrap();
    assert_eq!(
        s.due(&f.catalog, utc("2026-01-02T00:00:00Z"))
            .unwrap()
            .len(),
        1
    );
    let mut restarted = Scheduler::new(&f.config);
    assert!(
        restarted
            .start(&f.catalog, utc("2026-01-04T09:00:00Z"))
            .unwrap()
            .is_empty()
    );
    let fires = f.catalog.fires("app", None, 10).unwrap();
    let missed: Vec<_> = fires
        .iter()
        .filter(|f| f.outcome == Outcome::Missed)
        .map(|f| f.planned_at.to_rfc3339())
        .collect();
    assert_eq!(
        missed,
        ["2026-01-04T00:00:00+00:00", "2026-01-03T00:00:00+00:00"]
    );
}

#[test]
fn a_long_downtime_records_a_bounded_number_of_missed_fires() {
    let f = fixture("\"* * * * * *\"", "misfire_grace = \"1s\"");
    let mut s = Scheduler::new(&f.config);
    let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    s.start(&f.catalog, t0).unwrap();
    s.due(&f.catalog, t0 + chrono::Duration::seconds(1))
        .unwrap();
    let mut restarted = Scheduler::new(&f.config);
    let catch_up = restarted
        .start(&f.catalog, t0 + chrono::Duration::days(30))
        .unwrap();
    assert_eq!(
        catch_up.len(),
        1,
        "the latest missed second is within a second's grace"
    );
    let fires = f.catalog.fires("app", None, 1000).unwrap();
    assert_eq!(fires.len(), 1 + MISSED_RECORDED);
    assert!(fires.iter().any(|f| {
        f.detail
            .as_deref()
            .is_some_and(|d| d.contains("not listed"))
    }));
}

#[test]
fn restore_drills_fire_on_verify_schedule_beside_the_backups() {
    // 2026-01-04 is a Sunday.
    let f = fixture("\"0 0 * * *\"", "verify_schedule = \"0 3 * * sun\"");
    let mut s = Scheduler::new(&f.config);
    s.start(&f.catalog, utc("2026-01-03T12:00:00Z")).unwrap();
    let due = s.due(&f.catalog, utc("2026-01-04T00:00:00Z")).unwrap();
    assert_eq!(due.len(), 1);
    assert!(!due[0].is_drill());
    let due = s.due(&f.catalog, utc("2026-01-04T03:00:00Z")).unwrap();
    assert_eq!(due.len(), 1);
    assert!(due[0].is_drill());
    assert_eq!(due[0].schedule, "verify 0 3 * * sun");
    assert_eq!(due[0].database, "app");
    assert_eq!(s.next_wakeup(), Some(utc("2026-01-05T00:00:00Z")));
    // Off: no drill at all.
    let f = fixture("\"0 0 * * *\"", "verify_schedule = \"off\"");
    let s = Scheduler::new(&f.config);
    assert!(
        s.upcoming()
            .iter()
            .all(|u| !u.schedule.starts_with(DRILL_PREFIX))
    );
}

/// A configuration with one PostgreSQL server spreading `count` discovered tenants over
/// `spread`, the tenants recorded in the catalog as known (and `gone` of them as gone).
fn tenants(count: usize, gone: usize, spread: &str) -> Config {
    let dir = std::path::Path::new("/nonexistent");
    let text = format!(
        "timezone = \"UTC\"\nverify_schedule = \"off\"\n[[servers]]\nname = \"pg\"\nurl = \"postgres://u@db.example:5432/\"\nschedules = [\"0 0 * * *\"]\nspread = \"{spread}\"\n"
    );
    let config = Config::parse(&dir.join("dbkeep.toml"), &text, &|_| None).unwrap();
    let at = utc("2026-01-01T00:00:00Z");
    let rows: Vec<_> = (0..count)
        .map(|i| dbkeep_model::discovery::DiscoveredDatabase {
            name: format!("pg-tenant_{i:03}"),
            server: "pg".into(),
            database: format!("tenant_{i:03}"),
            state: if i < gone {
                dbkeep_model::discovery::DiscoveryState::Gone
            } else {
                dbkeep_model::discovery::DiscoveryState::Known
            },
            found_at: at,
            changed_at: at,
            detail: None,
        })
        .collect();
    config.with_discovered(&rows)
}

#[test]
fn a_spread_gives_five_hundred_tenants_distinct_fire_times_within_the_hour_every_day_alike() {
    let config = tenants(500, 0, "1h");
    let s = Scheduler::new(&config);
    let midnight = utc("2026-03-02T00:00:00Z");
    let mut s = s;
    // Planned from just before midnight: every tenant's next fire is in the hour after it.
    for job in &mut s.jobs {
        job.next = job.next_after(s.tz, midnight - Duration::seconds(1));
    }
    let times: Vec<DateTime<Utc>> = s.upcoming().iter().map(|u| u.next.unwrap()).collect();
    assert_eq!(times.len(), 500);
    let distinct: std::collections::BTreeSet<_> = times.iter().collect();
    assert_eq!(distinct.len(), 500, "two tenants share a fire time");
    assert!(
        times
            .iter()
            .all(|t| *t >= midnight && *t < midnight + Duration::hours(1)),
        "a fire outside the hour after midnight"
    );
    // Spread over the hour, not bunched: every quarter of it has its share.
    for q in 0..4 {
        let from = midnight + Duration::minutes(15 * q);
        let n = times
            .iter()
            .filter(|t| **t >= from && **t < from + Duration::minutes(15))
            .count();
        assert!((80..=170).contains(&n), "quarter {q} has {n} of 500 fires");
    }
    // The same tenant fires at the same offset the next day, and after a fresh start.
    let again = Scheduler::new(&config);
    let next_day: Vec<DateTime<Utc>> = again
        .jobs
        .iter()
        .map(|j| {
            j.next_after(again.tz, midnight + Duration::hours(23))
                .unwrap()
        })
        .collect();
    for (a, b) in times.iter().zip(&next_day) {
        assert_eq!(*b - *a, Duration::days(1));
    }
    // Without a spread, all fire at midnight.
    let bunched = tenants(5, 0, "0s");
    let b = Scheduler::new(&bunched);
    assert!(
        b.jobs
            .iter()
            .all(|j| j.next_after(b.tz, midnight - Duration::seconds(1)) == Some(midnight))
    );
}

#[test]
fn a_gone_database_is_not_scheduled_and_its_missed_fires_count_from_its_offset() {
    let config = tenants(3, 1, "1h");
    let s = Scheduler::new(&config);
    let names: Vec<&str> = s.jobs.iter().map(|j| j.database.as_str()).collect();
    assert_eq!(names, ["pg-tenant_001", "pg-tenant_002"]);
    // previous_before and next_after agree on the same shifted instants.
    let job = &s.jobs[0];
    let fire = job.next_after(s.tz, utc("2026-03-02T00:00:00Z")).unwrap();
    assert_eq!(job.previous_before(s.tz, fire), Some(fire));
    assert_eq!(
        job.previous_before(s.tz, fire - Duration::milliseconds(1)),
        Some(fire - Duration::days(1))
    );
}
