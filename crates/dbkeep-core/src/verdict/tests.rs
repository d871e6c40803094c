#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration, TimeZone, Utc};

use super::*;
use dbkeep_config::config::Config;
use dbkeep_model::catalog::{Kind, Trigger};
use dbkeep_model::vocab::Compression;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 2, 12, 0, 0).unwrap()
}

fn run(id: i64, status: Status, hours_ago: i64) -> BackupRecord {
    let started = now() - Duration::hours(hours_ago);
    BackupRecord {
        id,
        database: "app".into(),
        kind: Kind::Sqlite,
        status,
        trigger: Trigger::Scheduled,
        file_name: None,
        path: None,
        size_bytes: None,
        sha256: None,
        compression: Compression::None,
        started_at: started,
        finished_at: Some(started),
        duration_ms: None,
        error: (status == Status::Failed).then(|| format!("boom {id}\nsecond line")),
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

fn config(schedules: &str) -> Config {
    Config::parse(
        std::path::Path::new("/etc/dbkeep/dbkeep.toml"),
        &format!("[[databases]]\nname = \"app\"\nurl = \"sqlite:a.db\"\nschedules = {schedules}\n"),
        &|_| None,
    )
    .unwrap()
}

fn judge(rows: &[BackupRecord], schedules: &str) -> Verdict {
    let config = config(schedules);
    Judge {
        recent: rows,
        last_success: None,
        database: &config.databases[0],
        stale_after: Duration::hours(26),
        tz: chrono_tz::UTC,
        now: now(),
    }
    .verdict()
}

const DAILY: &str = "[\"0 0 * * *\"]";
const NEVER_SOON: &str = "[\"0 0 1 1 *\"]";

#[test]
fn a_failing_database_says_since_when_how_often_and_why() {
    let v = judge(&[run(2, Status::Failed, 1)], DAILY);
    assert_eq!(v.state, State::Failing);
    assert_eq!(
        v.reason,
        "no backup has succeeded yet; the last backup failed at 11:00 UTC: boom 2"
    );
    let rows = [
        run(5, Status::InProgress, 0),
        run(4, Status::Failed, 1),
        run(3, Status::Failed, 2),
        run(2, Status::Failed, 30),
        run(1, Status::Success, 40),
    ];
    let v = judge(&rows, DAILY);
    assert_eq!(v.state, State::Failing);
    assert_eq!(v.reason, "failing 3× since 2026-06-01 06:00 UTC: boom 4");
    assert_eq!(v.last_good, Some(now() - Duration::hours(40)));
}

#[test]
fn staleness_follows_the_schedule_then_stale_after() {
    assert_eq!(judge(&[], DAILY).state, State::Unprotected);
    // The last good backup predates today's midnight run, which left none: stale.
    let v = judge(&[run(1, Status::Success, 13)], DAILY);
    assert_eq!(v.state, State::Stale);
    assert_eq!(
        v.reason,
        "last good backup 13 h ago, schedule expects one every 24 h"
    );
    let v = judge(&[run(1, Status::Success, 11)], DAILY);
    assert_eq!(
        (v.state, v.reason.as_str()),
        (State::Protected, "last good backup 11 h ago")
    );
    // A run in progress does not hide the verdict of the one before.
    let v = judge(
        &[run(2, Status::InProgress, 0), run(1, Status::Success, 11)],
        DAILY,
    );
    assert_eq!(v.state, State::Protected);
    // A schedule that has not fired lately: age against stale_after decides.
    let v = judge(&[run(1, Status::Success, 30)], NEVER_SOON);
    assert_eq!(v.state, State::Stale);
    assert_eq!(
        v.reason,
        "last good backup 30 h ago, older than stale_after (26 h)"
    );
}

#[test]
fn a_weekly_base_backup_is_protected_all_week_and_stale_past_it() {
    let servers = Config::parse(
        std::path::Path::new("/etc/dbkeep/dbkeep.toml"),
        "[[servers]]\nname = \"pg\"\nurl = \"postgres://u@h/\"\nwal_archive = true\nbase_schedules = [\"0 1 * * sun\"]\n",
        &|_| None,
    )
    .unwrap();
    let base = servers.database("pg").unwrap();
    // Tuesday noon: the last base backup ran on Sunday at 01:00, 59 hours ago.
    let judged = |hours_ago: i64| {
        let mut row = run(1, Status::Success, hours_ago);
        row.kind = Kind::PostgresBase;
        let rows = [row];
        Judge {
            recent: &rows,
            last_success: None,
            database: base,
            stale_after: Duration::hours(26),
            tz: chrono_tz::UTC,
            now: now(),
        }
        .verdict()
    };
    assert_eq!(judged(59).state, State::Protected, "{:?}", judged(59));
    let limit = stale_limit(base, Duration::hours(26), chrono_tz::UTC, now());
    assert_eq!(limit, Duration::days(7) + FIRE_GRACE);
    // Past a whole week and its grace (the Sunday run left none): stale, and it says why.
    let v = judged(24 * 8);
    assert_eq!(v.state, State::Stale);
    // A [[databases]] entry keeps stale_after as it was.
    let plain = config(NEVER_SOON);
    assert_eq!(
        stale_limit(
            &plain.databases[0],
            Duration::hours(26),
            chrono_tz::UTC,
            now()
        ),
        Duration::hours(26)
    );
}

#[test]
fn states_sort_by_urgency_and_spans_read_well() {
    let mut states = vec![
        State::Gone,
        State::Protected,
        State::NotOffsite,
        State::Stale,
        State::Failing,
        State::Unprotected,
    ];
    states.sort();
    assert_eq!(states, State::ALL);
    assert_eq!(span(Duration::seconds(40)), "40 s");
    assert_eq!(span(Duration::minutes(12)), "12 min");
    assert_eq!(span(Duration::hours(31)), "31 h");
    assert_eq!(span(Duration::days(3)), "3 days");
}

#[test]
fn a_success_older_than_the_recent_runs_still_counts() {
    let config = config(DAILY);
    let old = run(1, Status::Success, 100);
    let failures: Vec<BackupRecord> = (2..32).rev().map(|id| run(id, Status::Failed, 1)).collect();
    let v = Judge {
        recent: &failures,
        last_success: Some(&old),
        database: &config.databases[0],
        stale_after: Duration::hours(26),
        tz: chrono_tz::UTC,
        now: now(),
    }
    .verdict();
    assert_eq!(v.state, State::Failing);
    assert!(
        v.reason.starts_with("failing at least 30× since"),
        "{}",
        v.reason
    );
    assert!(
        !v.reason.contains("no backup has succeeded"),
        "{}",
        v.reason
    );
    assert_eq!(v.last_good, Some(now() - Duration::hours(100)));
}

#[test]
fn a_backup_that_failed_its_verification_makes_the_database_failing() {
    let mut good = run(3, Status::Success, 2);
    good.verify_status = Some("failed".into());
    good.verify_error = Some("restore: psql exited with code 3: ERROR: boom\nmore".into());
    good.verified_at = Some(now() - Duration::hours(1));
    let v = judge(&[good], DAILY);
    assert_eq!(v.state, State::Failing);
    assert_eq!(
        v.reason,
        "the newest backup (#3) failed its verification at 11:00 UTC: restore: psql exited with code 3: ERROR: boom"
    );
}

#[test]
fn a_success_under_half_its_predecessor_is_suspicious_across_databases_and_failures() {
    let sized = |id: i64, db: &str, status: Status, size: u64| BackupRecord {
        database: db.into(),
        size_bytes: Some(size),
        ..run(id, status, 10 - id)
    };
    // Newest first, as the catalog lists them.
    let records = vec![
        sized(6, "app", Status::Success, 40), // under half of #4 (100): suspicious
        sized(5, "other", Status::Success, 10), // its predecessor #3 is 12: fine
        sized(4, "app", Status::Success, 100), // over half of #2
        sized(3, "other", Status::Success, 12),
        sized(2, "app", Status::Failed, 1), // failures do not count
        sized(1, "app", Status::Success, 150),
    ];
    let ids = dbkeep_notify::notify::suspicious_ids(&records);
    assert_eq!(ids.into_iter().collect::<Vec<_>>(), vec![6]);
    assert!(!dbkeep_notify::notify::suspicious(Some(50), Some(100)));
    assert!(dbkeep_notify::notify::suspicious(Some(49), Some(100)));
    assert!(!dbkeep_notify::notify::suspicious(None, Some(100)));
}

#[test]
fn the_facts_are_read_again_only_when_the_catalog_changed() {
    use dbkeep_catalog::sqlite::SqliteCatalog;
    use dbkeep_model::catalog::{Catalog, NewBackup, Stored};
    let dir = tempfile::tempdir().unwrap();
    let config = Config::parse(
        &dir.path().join("dbkeep.toml"),
        "backup_dir = \"backups\"\n[[databases]]\nname = \"app\"\nurl = \"sqlite:a.db\"\n",
        &|_| None,
    )
    .unwrap();
    let file = config.database_dir("app").join("app_1.db");
    let catalog = std::sync::Arc::new(SqliteCatalog::open(&dir.path().join("c.sqlite3")).unwrap());
    let runner = crate::runner::Runner::with_parts(
        config,
        catalog,
        std::sync::Arc::new(dbkeep_model::clock::SystemClock),
    )
    .unwrap();
    let cache = FactsCache::default();
    let first = all(&runner, &cache, now()).unwrap();
    assert_eq!(first[0].verdict.state, State::Unprotected);
    let again = all(&runner, &cache, now()).unwrap();
    assert!(
        std::sync::Arc::ptr_eq(&first[0].facts, &again[0].facts),
        "nothing changed: the rows kept are used"
    );
    // Another process writes a backup: the next verdict sees it.
    let writer = SqliteCatalog::open(&dir.path().join("c.sqlite3")).unwrap();
    let id = writer
        .begin(&NewBackup {
            database: "app",
            kind: Kind::Sqlite,
            trigger: Trigger::Manual,
            file_name: "app_1.db",
            path: &file,
            compression: Compression::None,
            started_at: now() - Duration::hours(1),
            instance: "other",
        })
        .unwrap();
    let running = all(&runner, &cache, now()).unwrap();
    assert_eq!(running[0].facts.recent.len(), 1);
    assert_eq!(running[0].facts.recent[0].status, Status::InProgress);
    writer
        .succeed(
            id,
            &Stored {
                size_bytes: 1,
                sha256: "ab".repeat(32),
                finished_at: now() - Duration::minutes(59),
                duration_ms: 1,
            },
        )
        .unwrap();
    let done = all(&runner, &cache, now()).unwrap();
    assert_eq!(
        done[0].verdict.state,
        State::Protected,
        "{:?}",
        done[0].verdict
    );
    assert_eq!(done[0].facts.last_success.as_ref().map(|r| r.id), Some(id));
}

#[test]
fn a_discovered_database_gone_or_unreadable_says_so_whatever_its_backups() {
    let mut config = config(DAILY);
    let good = run(1, Status::Success, 1);
    let judge = |db: &dbkeep_config::config::DatabaseConfig| {
        Judge {
            recent: std::slice::from_ref(&good),
            last_success: Some(&good),
            database: db,
            stale_after: Duration::hours(26),
            tz: chrono_tz::UTC,
            now: now(),
        }
        .verdict()
    };
    let found = |state| {
        Some(dbkeep_config::config::Discovered {
            server: "pg".into(),
            database: "app".into(),
            state,
            detail: Some("no longer on the server".into()),
        })
    };
    let db = &mut config.databases[0];
    db.discovered = found(dbkeep_model::discovery::DiscoveryState::Known);
    assert_eq!(judge(db).state, State::Protected);
    db.discovered = found(dbkeep_model::discovery::DiscoveryState::Gone);
    let gone = judge(db);
    assert_eq!(gone.state, State::Gone);
    assert_eq!(
        gone.reason,
        "gone from server `pg` (no longer on the server); not backed up any more, its backups are kept"
    );
    assert!(gone.last_good.is_some());
    db.discovered = found(dbkeep_model::discovery::DiscoveryState::Unreadable);
    assert_eq!(judge(db).state, State::Failing);
}
