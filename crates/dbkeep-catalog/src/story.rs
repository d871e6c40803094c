//! Story tests: one contract for every catalog, told as scenarios and run against each
//! implementation — SQLite in a temporary file, PostgreSQL in a fresh database per test on the
//! test server (`DBKEEP_TEST_PG_URL`, by default trust-authenticated on 127.0.0.1:5432). An
//! unreachable server fails the PostgreSQL tests; it never skips them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod audit;
mod beside;
mod discovery;
mod harness;
mod instances;
mod postgres_only;
mod retention;
mod wal;

use std::fmt::Debug;
use std::sync::Barrier;

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};

use audit::{the_audit_log_is_append_only, the_audit_log_is_read_newest_first_with_filters};
use beside::{
    a_disk_filling_up_is_claimed_once_per_episode, accounts_sessions_and_tokens,
    copies_are_replaced_and_failures_counted, deliveries_and_stale_alerts,
    single_sign_on_users_and_states_are_used_once,
    two_factor_recovery_codes_pending_logins_and_sessions,
};
use dbkeep_model::catalog::{
    FireId, ListFilter, NewBackup, Outcome, Status, Stored, Verification, VerifyLevel, format_time,
};
use dbkeep_model::vocab::{Compression, Kind, Trigger};
use discovery::{
    discovered_databases_change_state_once, server_checks_keep_the_last_answer,
    two_instances_record_a_found_database_once,
};
use harness::{Harness, Shared};
use instances::{instances_heartbeat_and_depart, leases_are_held_by_one_instance_at_a_time};
use retention::{
    copies_are_marked_pruned, many_rows_are_marked_pruned_at_once, pins_are_kept_with_their_notes,
    retention_marks_are_set_replaced_and_cleared,
};
use wal::{
    archives_belong_to_one_cluster_and_bases_are_kept, wal_segments_are_recorded_once_and_queued,
};

/// Every story, run once on each implementation.
macro_rules! stories {
    ($($story:ident),+ $(,)?) => {
        mod on_sqlite {
            $(#[test]
            fn $story() {
                super::$story(&super::harness::Sqlite::new());
            })+
        }
        mod on_postgres {
            $(#[test]
            fn $story() {
                super::$story(&super::harness::Postgres::new());
            })+
        }
    };
}

stories!(
    a_backups_life,
    a_failed_backup,
    fires_run_once,
    verifications_are_kept_and_the_latest_is_on_the_row,
    accounts_sessions_and_tokens,
    copies_are_replaced_and_failures_counted,
    deliveries_and_stale_alerts,
    a_disk_filling_up_is_claimed_once_per_episode,
    leases_are_held_by_one_instance_at_a_time,
    instances_heartbeat_and_depart,
    every_database_at_once,
    the_stamp_moves_with_what_a_verdict_sees,
    a_row_this_version_cannot_read_is_left_out_and_named,
    pins_are_kept_with_their_notes,
    many_rows_are_marked_pruned_at_once,
    copies_are_marked_pruned,
    retention_marks_are_set_replaced_and_cleared,
    discovered_databases_change_state_once,
    two_instances_record_a_found_database_once,
    server_checks_keep_the_last_answer,
    the_audit_log_is_read_newest_first_with_filters,
    the_audit_log_is_append_only,
    two_factor_recovery_codes_pending_logins_and_sessions,
    single_sign_on_users_and_states_are_used_once,
    wal_segments_are_recorded_once_and_queued,
    archives_belong_to_one_cluster_and_bases_are_kept,
);

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

/// A time as every catalog keeps it: to the millisecond.
fn ms(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(3)
}

fn same<T: Debug>(actual: T, expected: T) {
    assert_eq!(format!("{actual:#?}"), format!("{expected:#?}"));
}

const T0: &str = "2026-12-01T00:00:03.123456789Z";

/// Channels of failed notifications as dbkeep named them before it named them by host (until
/// SQLite's migration 19 and PostgreSQL's 5), each with the name the migration gives it.
pub(super) const OLD_CHANNELS: &[(&str, &str)] = &[
    (
        "webhook https://hooks.slack.com/services/T0/B0/SECRET",
        "webhook https://hooks.slack.com",
    ),
    (
        "webhook http://127.0.0.1:8080/hook/SECRET",
        "webhook http://127.0.0.1:8080",
    ),
    (
        "webhook http://[::1]:9000/x?y#z",
        "webhook http://[::1]:9000",
    ),
    (
        "webhook https://discord.com/",
        "webhook https://discord.com",
    ),
    (
        "ping https://hc-ping.com/0b7f3e5c-SECRET",
        "ping https://hc-ping.com",
    ),
    (
        "email smtp://mail.example.com:25/ehlo.example.com",
        "email smtp://mail.example.com:25",
    ),
    (
        "email smtp://mail.example.com:587",
        "email smtp://mail.example.com:587",
    ),
    ("webhook ops-slack", "webhook ops-slack"),
];

/// Checks that `renamed`, the channels read back in [`OLD_CHANNELS`] order, are the names
/// after, and that each is the name dbkeep now gives the channel of that URL.
pub(super) fn assert_renamed(renamed: &[String]) {
    let after: Vec<&str> = OLD_CHANNELS.iter().map(|(_, a)| *a).collect();
    assert_eq!(renamed, after);
    for (before, after) in OLD_CHANNELS {
        if let Some((kind, url)) = before.split_once(' ')
            && let Ok(url) = url::Url::parse(url)
        {
            assert_eq!(
                *after,
                format!("{kind} {}", dbkeep_config::config::url_origin(&url)),
                "{before}"
            );
        }
    }
}

/// Begins a backup of `database` named `file`, started `secs` after [`T0`].
fn begin(c: &dyn Shared, database: &str, file: &str, secs: i64) -> i64 {
    let path = std::path::PathBuf::from(format!("/backups/{database}/{file}"));
    c.begin(&NewBackup {
        database,
        kind: if database == "main" {
            Kind::Postgres
        } else {
            Kind::Sqlite
        },
        trigger: Trigger::Scheduled,
        file_name: file,
        path: &path,
        compression: Compression::Gzip,
        started_at: at(T0) + TimeDelta::seconds(secs),
        instance: "web-1",
    })
    .unwrap()
}

fn stored(size: u64, finished: DateTime<Utc>) -> Stored {
    Stored {
        size_bytes: size,
        sha256: "ab".repeat(32),
        finished_at: finished,
        duration_ms: 2000,
    }
}

/// A backup of `database` that succeeded.
fn good(c: &dyn Shared, database: &str, file: &str, secs: i64) -> i64 {
    let id = begin(c, database, file, secs);
    let finished = at(T0) + TimeDelta::seconds(secs + 2);
    c.succeed(id, &stored(100, finished)).unwrap();
    id
}

fn ids(c: &dyn Shared, filter: ListFilter) -> Vec<i64> {
    c.list(&filter).unwrap().iter().map(|r| r.id).collect()
}

fn a_backups_life(h: &dyn Harness) {
    let c = h.catalog();
    let id = begin(c, "app", "app_1.db.gz", 0);
    let r = c.get(id).unwrap().unwrap();
    assert_eq!(
        (r.id, r.database.as_str(), r.kind),
        (id, "app", Kind::Sqlite)
    );
    assert_eq!(
        (r.status, r.trigger),
        (Status::InProgress, Trigger::Scheduled)
    );
    assert_eq!(r.file_name.as_deref(), Some("app_1.db.gz"));
    assert_eq!(r.path.as_deref(), Some("/backups/app/app_1.db.gz".as_ref()));
    assert_eq!(r.compression, Compression::Gzip);
    assert_eq!(r.started_at, ms(at(T0)));
    assert_eq!(format_time(&r.started_at), "2026-12-01T00:00:03.123Z");
    assert!(r.finished_at.is_none() && r.size_bytes.is_none() && r.copies.is_empty());
    assert!(!r.encrypted && r.verified_at.is_none());
    assert!(c.name_in_use("app", "app_1.db.gz").unwrap());
    assert!(!c.name_in_use("main", "app_1.db.gz").unwrap());
    assert!(!c.name_in_use("app", "app_2.db.gz").unwrap());

    let finished = at(T0) + TimeDelta::microseconds(2_000_999);
    c.succeed(id, &stored(1234, finished)).unwrap();
    let r = c.get(id).unwrap().unwrap();
    assert_eq!(
        (r.status, r.size_bytes, r.duration_ms),
        (Status::Success, Some(1234), Some(2000))
    );
    assert_eq!(r.sha256, Some("ab".repeat(32)));
    assert_eq!(r.finished_at, Some(ms(finished)));
    assert_eq!(r.error, None);

    assert_eq!(c.log(id).unwrap(), None);
    c.set_log(id, "+0.000s started\n+2.000s stored").unwrap();
    assert_eq!(
        c.log(id).unwrap().as_deref(),
        Some("+0.000s started\n+2.000s stored")
    );
    assert_eq!(c.log(9999).unwrap(), None);

    // Counts are kept by name: a name given again takes its new count, others stay.
    let rows = |list: &[(&str, u64)]| -> Vec<(String, u64)> {
        list.iter().map(|(n, r)| (n.to_string(), *r)).collect()
    };
    assert_eq!(c.table_rows(id).unwrap(), vec![]);
    c.set_table_rows(id, &rows(&[("users", 10), ("orders", 5)]))
        .unwrap();
    c.set_table_rows(
        id,
        &rows(&[("orders", 7), ("zeta", 0), ("Alpha", 1), ("zeta", 2)]),
    )
    .unwrap();
    c.set_table_rows(id, &[]).unwrap();
    let expected = rows(&[("Alpha", 1), ("orders", 7), ("users", 10), ("zeta", 2)]);
    assert_eq!(c.table_rows(id).unwrap(), expected, "by name, byte-wise");

    assert_eq!(c.globals_file(id).unwrap(), None);
    c.set_globals_file(id, "app_1.globals.sql.gz").unwrap();
    assert_eq!(
        c.globals_file(id).unwrap().as_deref(),
        Some("app_1.globals.sql.gz")
    );
    assert_eq!(c.globals_file(9999).unwrap(), None);

    // More rows: listed newest first, by database, by status, a page at a time.
    let failed = begin(c, "main", "main_1.sql.gz", 10);
    c.fail(failed, "pg_dump exited with code 1", at(T0), 5)
        .unwrap();
    let second = good(c, "app", "app_2.db.gz", 20);
    let running = begin(c, "app", "app_3.db.gz", 30);
    assert_eq!(
        ids(c, ListFilter::default()),
        vec![running, second, failed, id]
    );
    let app = |status, before, limit| ListFilter {
        database: Some("app".into()),
        status,
        before,
        limit,
    };
    assert_eq!(ids(c, app(None, None, None)), vec![running, second, id]);
    assert_eq!(
        ids(c, app(Some(Status::Success), None, None)),
        vec![second, id]
    );
    assert_eq!(
        ids(c, app(Some(Status::Failed), None, None)),
        Vec::<i64>::new()
    );
    let status = |status| ListFilter {
        status: Some(status),
        ..ListFilter::default()
    };
    assert_eq!(ids(c, status(Status::Failed)), vec![failed]);
    let page = |before, limit| ListFilter {
        before,
        limit: Some(limit),
        ..ListFilter::default()
    };
    assert_eq!(ids(c, page(None, 2)), vec![running, second]);
    assert_eq!(ids(c, page(Some(second), 2)), vec![failed, id]);
    assert_eq!(ids(c, page(Some(id), 2)), Vec::<i64>::new());
    assert_eq!(ids(c, page(None, 0)), Vec::<i64>::new());
    assert_eq!(ids(c, app(None, Some(running), Some(1))), vec![second]);
    assert_eq!(
        ids(
            c,
            ListFilter {
                database: Some("nosuch".into()),
                ..ListFilter::default()
            }
        ),
        Vec::<i64>::new()
    );

    let pruned = at("2026-12-09T00:00:00.5009Z");
    c.mark_pruned(id, pruned).unwrap();
    let r = c.get(id).unwrap().unwrap();
    assert_eq!(r.pruned_at, Some(ms(pruned)));
    assert!(
        c.name_in_use("app", "app_1.db.gz").unwrap(),
        "pruned rows keep their names"
    );
    same(
        c.status_counts().unwrap(),
        vec![
            ("app".to_string(), Status::InProgress, 1),
            ("app".to_string(), Status::Success, 2),
            ("main".to_string(), Status::Failed, 1),
        ],
    );
    assert!(c.get(9999).unwrap().is_none());
}

fn a_failed_backup(h: &dyn Harness) {
    let c = h.catalog();
    let id = begin(c, "app", "app_1.db.gz.age", 0);
    assert!(
        c.get(id).unwrap().unwrap().encrypted,
        "named .age while it runs"
    );
    let finished = at("2026-12-01T00:00:04.9999Z");
    c.fail(id, "disk full", finished, 1500).unwrap();
    let r = c.get(id).unwrap().unwrap();
    assert_eq!(
        (r.status, r.error.as_deref()),
        (Status::Failed, Some("disk full"))
    );
    assert_eq!(
        (r.finished_at, r.duration_ms),
        (Some(ms(finished)), Some(1500))
    );
    assert_eq!(
        (r.file_name, r.path, r.size_bytes, r.sha256),
        (None, None, None, None)
    );
    assert!(!r.encrypted);
    assert!(
        !c.name_in_use("app", "app_1.db.gz.age").unwrap(),
        "a failure keeps no file"
    );
    let ok = good(c, "app", "app_2.db.gz.age", 10);
    assert!(c.get(ok).unwrap().unwrap().encrypted);
    let failed = ListFilter {
        status: Some(Status::Failed),
        ..ListFilter::default()
    };
    assert_eq!(ids(c, failed), vec![id]);
}

fn fires_run_once(h: &dyn Harness) {
    let c = h.catalog();
    let (daily, often) = ("0 0 * * *", "*/5 * * * *");
    let planned = at("2026-12-01T00:00:00Z");
    let day = TimeDelta::days(1);
    let claim = |db: &str, schedule, t, outcome, detail| {
        c.claim_fire(db, schedule, t, outcome, detail, Some("web-1"))
            .unwrap()
    };
    let first = claim("app", daily, planned, Outcome::Running, None).expect("the first claim");
    assert_eq!(claim("app", daily, planned, Outcome::Running, None), None);
    let same_ms = planned + TimeDelta::microseconds(400);
    assert_eq!(
        claim("app", daily, same_ms, Outcome::Running, None),
        None,
        "same millisecond"
    );
    let missed = claim(
        "app",
        daily,
        planned + day,
        Outcome::Missed,
        Some("no dbkeep ran"),
    );
    let skipped = claim(
        "app",
        often,
        planned,
        Outcome::Skipped,
        Some("still running"),
    );
    let other = claim("main", daily, planned, Outcome::Running, None);
    let (missed, skipped) = (missed.unwrap(), skipped.unwrap());
    assert!(other.is_some());

    // Claimed and not started: the two running ones, and only those.
    let unstarted: Vec<i64> = c.unstarted_fires().unwrap().iter().map(|f| f.id).collect();
    assert_eq!(unstarted, vec![first, other.unwrap()]);
    assert!(
        c.unstarted_fires()
            .unwrap()
            .iter()
            .all(|f| f.claimed_by.as_deref() == Some("web-1"))
    );

    let backup = good(c, "app", "app_1.db.gz", 0);
    let started = planned + TimeDelta::microseconds(1_500_700);
    c.finish_fire(first, Outcome::Ran, Some(started), Some(backup), None)
        .unwrap();
    assert_eq!(
        c.unstarted_fires()
            .unwrap()
            .iter()
            .map(|f| f.id)
            .collect::<Vec<_>>(),
        vec![other.unwrap()]
    );
    // What is not given is kept.
    c.finish_fire(skipped, Outcome::Skipped, None, None, None)
        .unwrap();
    let fires = c.fires("app", None, 10).unwrap();
    let order: Vec<FireId> = fires.iter().map(|f| f.id).collect();
    assert_eq!(
        order,
        vec![missed, skipped, first],
        "newest planned first, then newest"
    );
    let f = &fires[2];
    assert_eq!((f.database.as_str(), f.schedule.as_str()), ("app", daily));
    assert_eq!((f.planned_at, f.started_at), (planned, Some(ms(started))));
    assert_eq!(
        (f.outcome, f.backup_id, f.detail.as_deref()),
        (Outcome::Ran, Some(backup), None)
    );
    assert_eq!(fires[1].detail.as_deref(), Some("still running"));
    assert_eq!(
        (fires[0].outcome, fires[0].started_at),
        (Outcome::Missed, None)
    );
    let daily_ids: Vec<FireId> = c
        .fires("app", Some(daily), 10)
        .unwrap()
        .iter()
        .map(|f| f.id)
        .collect();
    assert_eq!(daily_ids, vec![missed, first]);
    assert_eq!(c.fires("app", Some(daily), 1).unwrap().len(), 1);
    assert!(c.fires("nosuch", None, 10).unwrap().is_empty());
    // Each schedule's last fire at once, in the order asked.
    let pairs: Vec<(String, String)> = [
        ("main", daily),
        ("nosuch", daily),
        ("app", often),
        ("app", daily),
    ]
    .map(|(d, s)| (d.to_string(), s.to_string()))
    .to_vec();
    let main_backup = good(c, "main", "main_1.db.gz", 0);
    c.finish_fire(other.unwrap(), Outcome::Ran, None, Some(main_backup), None)
        .unwrap();
    let lasts = c.last_fires(&pairs).unwrap();
    let summary: Vec<_> = lasts
        .iter()
        .map(|l| l.as_ref().map(|(f, status)| (f.id, f.planned_at, *status)))
        .collect();
    assert_eq!(
        summary,
        vec![
            Some((other.unwrap(), planned, Some(Status::Success))),
            None,
            Some((skipped, planned, None)),
            Some((missed, planned + day, None)),
        ]
    );
    // The whole record, as `fires` gives it.
    assert_eq!(
        lasts[0].as_ref().map(|l| &l.0),
        c.fires("main", Some(daily), 1).unwrap().first()
    );
    assert!(c.last_fires(&[]).unwrap().is_empty());

    // Instances claiming one fire at once (each on its own connection): exactly one wins.
    let later = planned + day * 2;
    let others: Vec<Box<dyn Shared>> = (0..4).map(|_| h.open()).collect();
    let barrier = Barrier::new(others.len());
    let won = std::thread::scope(|s| {
        let runs: Vec<_> = others
            .iter()
            .map(|o| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    o.claim_fire("app", daily, later, Outcome::Running, None, Some("web-2"))
                        .unwrap()
                })
            })
            .collect();
        runs.into_iter().filter_map(|r| r.join().unwrap()).count()
    });
    assert_eq!(won, 1);
    assert_eq!(c.fires("app", Some(daily), 10).unwrap().len(), 3);
}

fn verification(
    backup_id: i64,
    level: VerifyLevel,
    ok: bool,
    message: &str,
    secs: i64,
) -> Verification {
    let started = at(T0) + TimeDelta::seconds(secs);
    Verification {
        backup_id,
        level,
        ok,
        message: Some(message.to_string()),
        started_at: started,
        finished_at: started + TimeDelta::microseconds(1_234_567),
        restore_ms: (level == VerifyLevel::Restore).then_some(1234),
        source: None,
    }
}

/// `v` as a catalog gives it back: its times to the millisecond.
fn kept(v: &Verification) -> Verification {
    Verification {
        started_at: ms(v.started_at),
        finished_at: ms(v.finished_at),
        ..v.clone()
    }
}

fn verifications_are_kept_and_the_latest_is_on_the_row(h: &dyn Harness) {
    let c = h.catalog();
    let (b1, b2) = (
        good(c, "app", "a1.db.gz", 0),
        good(c, "app", "a2.db.gz", 10),
    );
    let b3 = good(c, "main", "m1.sql.gz", 20);
    assert!(c.last_verification("app", false).unwrap().is_none());
    let v1 = verification(
        b1,
        VerifyLevel::Restore,
        false,
        "restore failed: no such table",
        100,
    );
    let v2 = Verification {
        source: Some("offsite-s3".into()),
        ..verification(b1, VerifyLevel::Checksum, true, "sha256 matches", 200)
    };
    let v3 = verification(b2, VerifyLevel::Readable, false, "truncated gzip", 300);
    for v in [&v1, &v2, &v3] {
        c.record_verification(v).unwrap();
    }
    let r1 = c.get(b1).unwrap().unwrap();
    assert_eq!(
        (r1.verified_at, r1.verify_level),
        (Some(ms(v2.finished_at)), Some(VerifyLevel::Checksum))
    );
    assert_eq!(
        (r1.verify_status.as_deref(), r1.verify_error),
        (Some("ok"), None)
    );
    let r2 = c.get(b2).unwrap().unwrap();
    assert_eq!(r2.verify_status.as_deref(), Some("failed"));
    assert_eq!(r2.verify_error.as_deref(), Some("truncated gzip"));
    assert!(c.get(b3).unwrap().unwrap().verify_status.is_none());
    same(c.last_verification("app", false).unwrap(), Some(kept(&v3)));
    same(c.last_verification("app", true).unwrap(), Some(kept(&v2)));
    same(c.last_verification("main", false).unwrap(), None);
    same(c.verifications(b1).unwrap(), vec![kept(&v2), kept(&v1)]);
    assert!(c.verifications(b3).unwrap().is_empty());
}

/// What a page about every database reads at once equals what it would read one by one.
fn every_database_at_once(h: &dyn Harness) {
    let c = h.catalog();
    for (n, db) in ["app", "main", "app", "app", "main", "other"]
        .iter()
        .enumerate()
    {
        let id = good(c, db, &format!("f{n}.db.gz"), n as i64);
        c.record_verification(&verification(
            id,
            VerifyLevel::Checksum,
            n != 3,
            "checked",
            100 + n as i64,
        ))
        .unwrap();
    }
    let failed = begin(c, "main", "broken.sql.gz", 50);
    c.fail(failed, "pg_dump failed", at(T0), 1).unwrap();
    let names: Vec<String> = ["app", "main", "missing"].map(String::from).to_vec();
    let one_by_one = |status: Option<Status>, per: u32| -> Vec<i64> {
        names
            .iter()
            .flat_map(|d| {
                ids(
                    c,
                    ListFilter {
                        database: Some(d.clone()),
                        status,
                        limit: Some(per),
                        ..ListFilter::default()
                    },
                )
            })
            .collect()
    };
    for (status, per) in [
        (None, 2),
        (Some(Status::Success), 5),
        (Some(Status::Failed), 1),
    ] {
        let at_once: Vec<i64> = c
            .recent_of_each(&names, status, per)
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(at_once, one_by_one(status, per), "{status:?} {per}");
    }
    for ok_only in [false, true] {
        let at_once = c.last_verifications(&names, ok_only).unwrap();
        let expected: Vec<(String, Verification)> = names
            .iter()
            .filter_map(|d| {
                c.last_verification(d, ok_only)
                    .unwrap()
                    .map(|v| (d.clone(), v))
            })
            .collect();
        same(at_once, expected);
    }
}

/// The change stamp moves with every write to backups, copies and verifications, is the same
/// for every instance, and stays put for reads and for the tables a verdict never reads.
/// Writers of the same backup row at once (a verification, a copy, a prune) never deadlock on
/// it.
fn the_stamp_moves_with_what_a_verdict_sees(h: &dyn Harness) {
    let c = h.catalog();
    let other = h.open();
    let stamp = || {
        let s = c.change_stamp().unwrap();
        assert_eq!(other.change_stamp().unwrap(), s, "both instances agree");
        s
    };
    let mut last = stamp();
    let mut moved = |what: &str, write: &dyn Fn()| {
        write();
        let now = stamp();
        assert!(now > last, "{what}: the stamp stayed at {last}");
        last = now;
    };
    let id = std::cell::Cell::new(0);
    moved("begin", &|| id.set(begin(c, "app", "a1.db.gz", 0)));
    moved("succeed", &|| {
        c.succeed(id.get(), &stored(100, at(T0))).unwrap()
    });
    moved("fail", &|| {
        let failed = begin(c, "app", "a2.db.gz", 5);
        c.fail(failed, "disk full", at(T0), 1).unwrap()
    });
    moved("verification", &|| {
        c.record_verification(&verification(
            id.get(),
            VerifyLevel::Checksum,
            true,
            "ok",
            9,
        ))
        .unwrap()
    });
    moved("copy", &|| {
        c.record_copy(&beside::copy(id.get(), "s3", Some(at(T0))))
            .unwrap()
    });
    moved("prune", &|| c.mark_pruned(id.get(), at(T0)).unwrap());
    moved("pin", &|| {
        assert!(c.set_pin(id.get(), true, Some("keep")).unwrap());
    });
    moved("unpin", &|| {
        assert!(c.set_pin(id.get(), false, None).unwrap());
    });
    moved("prune of many", &|| {
        c.mark_pruned_many(&[id.get()], at(T0)).unwrap()
    });
    moved("copies pruned", &|| {
        c.mark_copies_pruned(&[(id.get(), "s3".to_string())], at(T0))
            .unwrap()
    });

    // Reads, leases, heartbeats and fires leave it.
    let before = stamp();
    c.list(&ListFilter::default()).unwrap();
    c.recent_of_each(&["app".to_string()], None, 30).unwrap();
    let me = instances::elsewhere("a", 1);
    assert!(
        c.acquire("backup:app", &me, std::time::Duration::from_secs(60))
            .unwrap()
    );
    c.heartbeat(&me, "1.0", at(T0), &[]).unwrap();
    assert_eq!(stamp(), before);

    // Three writers of one row at once: each finishes.
    let target = good(c, "app", "a3.db.gz", 20);
    let others: Vec<Box<dyn Shared>> = (0..3).map(|_| h.open()).collect();
    let start = Barrier::new(3);
    std::thread::scope(|s| {
        for (n, w) in others.iter().enumerate() {
            let start = &start;
            s.spawn(move || {
                start.wait();
                for round in 0..20_i64 {
                    match n {
                        0 => w
                            .record_verification(&verification(
                                target,
                                VerifyLevel::Checksum,
                                true,
                                "ok",
                                round,
                            ))
                            .unwrap(),
                        1 => w
                            .record_copy(&beside::copy(target, "s3", Some(at(T0))))
                            .unwrap(),
                        _ => w.mark_pruned(target, at(T0)).unwrap(),
                    }
                }
            });
        }
    });
    assert!(stamp() >= before + 60);
}

/// A row with a word this version does not know is left out of every listing and named once
/// (by id, column and value); a page still holds as many readable rows as it asks for, its
/// status still reads for the fire that ran it, and asked for by id it is an error naming it.
fn a_row_this_version_cannot_read_is_left_out_and_named(h: &dyn Harness) {
    let c = h.catalog();
    let (first, second, third) = (
        good(c, "app", "a.db.gz", 0),
        good(c, "app", "b.db.gz", 10),
        good(c, "app", "c.db.gz", 20),
    );
    let (main, newest) = (
        good(c, "main", "m.sql.gz", 30),
        good(c, "app", "d.db.gz", 40),
    );
    h.tamper(&format!(
        "UPDATE backups SET trigger = 'bogus' WHERE id = {second};
         UPDATE backups SET kind = 'teleport' WHERE id = {newest};"
    ));
    assert_eq!(ids(c, ListFilter::default()), [main, third, first]);
    let page = |database: Option<&str>, before: Option<i64>, limit: u32| {
        ids(
            c,
            ListFilter {
                database: database.map(str::to_string),
                status: Some(Status::Success),
                before,
                limit: Some(limit),
            },
        )
    };
    // Each page is full while readable rows remain, and the next one starts after it.
    assert_eq!(page(Some("app"), None, 1), [third]);
    assert_eq!(page(Some("app"), Some(third), 1), [first]);
    assert_eq!(page(Some("app"), None, 2), [third, first]);
    assert_eq!(page(None, None, 2), [main, third]);
    assert_eq!(page(Some("app"), Some(first), 5), Vec::<i64>::new());
    let names = ["app".to_string(), "main".to_string()];
    let recent: Vec<i64> = c
        .recent_of_each(&names, None, 2)
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(recent, [third, first, main]);

    let left: Vec<_> = c
        .left_out()
        .rows()
        .into_iter()
        .map(|u| (u.id, u.database, u.column, u.value))
        .collect();
    same(
        left,
        vec![
            (
                second,
                Some("app".to_string()),
                "trigger",
                "'bogus'".to_string(),
            ),
            (
                newest,
                Some("app".to_string()),
                "kind",
                "'teleport'".to_string(),
            ),
        ],
    );
    match c.get(second) {
        Err(dbkeep_model::error::Error::Unreadable(u)) => {
            assert_eq!(
                (u.id, u.column, u.value.as_str()),
                (second, "trigger", "'bogus'")
            );
            assert!(u.why.contains("bogus"), "{u}");
        }
        other => panic!("backup #{second} read as {other:?}"),
    }
    assert_eq!(c.get(third).unwrap().map(|r| r.id), Some(third));
    assert_eq!(c.status(second).unwrap(), Some(Status::Success));
    assert_eq!(c.status(9999).unwrap(), None);
    let fire = c
        .claim_fire(
            "app",
            "0 0 * * *",
            at(T0),
            Outcome::Running,
            None,
            Some("web-1"),
        )
        .unwrap()
        .unwrap();
    c.finish_fire(fire, Outcome::Ran, Some(at(T0)), Some(second), None)
        .unwrap();
    let last = c
        .last_fires(&[("app".to_string(), "0 0 * * *".to_string())])
        .unwrap();
    assert_eq!(
        last[0].as_ref().map(|(_, s)| *s),
        Some(Some(Status::Success))
    );
    // Another instance leaves them out too.
    assert_eq!(
        ids(h.open().as_ref(), ListFilter::default()),
        [main, third, first]
    );
}
