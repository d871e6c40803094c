//! Grandfather-father-son retention on a real history: 400 daily backups of the original
//! design's names brought in with one `import`, a guard rail that holds the first prune, a pin,
//! the explanation of every decision, and a local folder and an S3 destination pruned each by
//! its own policy.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use chrono::{Duration, NaiveDate};
use serde_json::Value;

use crate::common::*;
use crate::offsite::S3;

/// The first of the 400 days; the last is 2026-12-06, a Sunday.
fn first_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 11, 2).unwrap()
}

/// The days `keep_daily 7, keep_weekly 4, keep_monthly 12, keep_yearly 3` keeps of one
/// backup a day from 2025-11-02 to 2026-12-06: the last 7 days; the last day of weeks 46 to 49
/// of 2026 (Sundays); the last day of each month of 2026; and 2025's last day.
const SURVIVORS: [&str; 21] = [
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
];

/// 400 SQLite backups named as the original design named them, one a day at midnight, each a
/// little different from the one before.
fn old_backups(dir: &Path) -> Vec<PathBuf> {
    fs::create_dir_all(dir).unwrap();
    let sample = dir.join("sample.sqlite3");
    create_sample_sqlite(&sample);
    (0..400)
        .map(|i| {
            let day = first_day() + Duration::days(i);
            let file = dir.join(format!("sqlite_backup_{}_000000.db", day.format("%Y%m%d")));
            fs::copy(&sample, &file).unwrap();
            let conn = rusqlite::Connection::open(&file).unwrap();
            conn.execute("INSERT INTO users (name) VALUES (?1)", [day.to_string()])
                .unwrap();
            file
        })
        .collect()
}

/// The day (in UTC, the configured zone) each backup of `rows` was taken.
fn day_of(row: &Value) -> String {
    row["started_at"].as_str().unwrap()[..10].to_string()
}

/// Imports the 400 files into `app` with one command.
fn import_history(sb: &Sandbox, env: &[(&str, &str)]) {
    let files = old_backups(&sb.path().join("old"));
    let mut cmd = sb.cmd();
    cmd.args(["import", "-d", "app"]).args(&files);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let run = run_cmd(&mut cmd);
    run.assert_success();
    assert_eq!(sb.rows_for("app").len(), 400, "{run:?}");
}

fn run_env(sb: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = sb.cmd();
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_cmd(&mut cmd)
}

#[test]
fn four_hundred_days_under_grandfather_father_son_held_until_confirmed_with_a_pin() {
    four_hundred_days("");
}

#[test]
fn the_same_story_on_a_postgres_catalog() {
    let catalog = PgDb::create("retention_story");
    four_hundred_days(&format!("catalog = \"{}\"\n", catalog.url()));
}

/// The whole story, with `catalog` (a `catalog = …` line, or nothing for the SQLite file).
fn four_hundred_days(catalog: &str) {
    let sb = Sandbox::new();
    create_sample_sqlite(&sb.path().join("app.db"));
    sb.write_config(&format!(
        "{catalog}keep_daily = 7\nkeep_weekly = 4\nkeep_monthly = 12\nkeep_yearly = 3\n\
         [[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n",
    ));
    import_history(&sb, &[]);
    let rows = sb.rows_for("app");
    // Each file's time is the one its name says.
    let days: BTreeSet<String> = rows.iter().map(day_of).collect();
    assert_eq!(days.len(), 400);
    assert!(rows.iter().all(|r| {
        r["started_at"]
            .as_str()
            .unwrap()
            .ends_with("T00:00:00.000Z")
    }));

    // A pin keeps a day that no rule keeps, whatever the policy.
    let pinned = rows.iter().find(|r| day_of(r) == "2026-06-15").unwrap();
    let pinned_id = pinned["id"].as_i64().unwrap().to_string();
    sb.run(&["pin", &pinned_id, "--note", "before the schema change"])
        .assert_success();

    // The explanation, before anything goes: every backup, its action and its rules.
    let dry = sb.run(&["prune", "--dry-run", "--json"]);
    dry.assert_success();
    let plan: Vec<Value> = serde_json::from_str(&dry.stdout).unwrap();
    assert_eq!(plan.len(), 400, "{}", dry.stdout);
    let reasons = |day: &str| -> Vec<String> {
        let d = plan
            .iter()
            .find(|d| d["started_at"].as_str().unwrap().starts_with(day))
            .unwrap();
        assert_eq!(d["destination"], "local");
        assert_eq!(d["database"], "app");
        assert!(
            d["file_name"]
                .as_str()
                .unwrap()
                .starts_with("sqlite_backup_")
        );
        d["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        reasons("2026-12-06"),
        [
            "newest good backup",
            "last 1",
            "daily 2026-12-06",
            "weekly 2026-W49",
            "monthly 2026-12",
            "yearly 2026"
        ]
    );
    assert_eq!(reasons("2026-10-31"), ["monthly 2026-10"]);
    assert_eq!(reasons("2026-11-29"), ["weekly 2026-W48"]);
    assert_eq!(reasons("2025-12-31"), ["yearly 2025"]);
    assert_eq!(reasons("2026-06-15"), ["pinned"]);
    assert!(reasons("2026-06-14")[0].starts_with("no rule keeps it"));
    let deleting = plan.iter().filter(|d| d["action"] == "delete").count();
    assert_eq!(deleting, 400 - 22);
    assert!(
        plan.iter()
            .all(|d| d["action"] == "keep" || d["action"] == "delete")
    );

    // The first prune under this policy would delete 378 of 400: it is held, nothing goes.
    let held = sb.run(&["prune"]);
    held.assert_success();
    assert!(
        held.stdout.contains("held: the policy (retention_days 0, keep_last 1, keep_daily 7, keep_weekly 4, keep_monthly 12, keep_yearly 3) would delete 378 of 400 backups of `app` at local"),
        "{held:?}"
    );
    assert!(
        held.stdout.contains("dbkeep prune --confirm -d app"),
        "{held:?}"
    );
    assert_eq!(file_names(&sb.db_dir("app")).len(), 400);
    assert!(sb.rows_for("app").iter().all(|r| r["pruned_at"].is_null()));
    // So does a backup's own prune afterwards, and `status` says why.
    let status = sb.run(&["status", "--json"]);
    let status: Vec<Value> = serde_json::from_str(&status.stdout).unwrap();
    assert!(
        status[0]["prune_held"][0]
            .as_str()
            .unwrap()
            .contains("would delete 378 of 400"),
        "{status:#?}"
    );
    let text = sb.run(&["status"]);
    assert!(text.stdout.contains("prune of app: held:"), "{text:?}");

    // Confirmed, exactly the calendar's days and the pin survive.
    let confirmed = sb.run(&["prune", "--confirm"]);
    confirmed.assert_success();
    assert!(
        confirmed.stdout.contains("pruned 378 file(s)"),
        "{confirmed:?}"
    );
    let rows = sb.rows_for("app");
    let kept: BTreeSet<String> = rows
        .iter()
        .filter(|r| r["pruned_at"].is_null())
        .map(day_of)
        .collect();
    let mut expected: BTreeSet<String> = SURVIVORS.iter().map(|d| d.to_string()).collect();
    expected.insert("2026-06-15".into());
    assert_eq!(kept, expected);
    assert_eq!(file_names(&sb.db_dir("app")).len(), 22);
    let pin = rows.iter().find(|r| day_of(r) == "2026-06-15").unwrap();
    assert_eq!(pin["pinned"], true);
    assert_eq!(pin["pin_note"], "before the schema change");
    // The policy has pruned once: the next prune runs without asking.
    let again = sb.run(&["prune"]);
    again.assert_success();
    assert!(!again.stdout.contains("held"), "{again:?}");

    // A later typo (keep_daily = 1, keep_monthly = 1) is a new policy: held again.
    sb.write_config(&format!(
        "{catalog}keep_daily = 1\nkeep_monthly = 1\n\
         [[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n",
    ));
    let typo = sb.run(&["prune"]);
    typo.assert_success();
    assert!(
        typo.stdout.contains("would delete 20 of 22 backups")
            && typo
                .stdout
                .contains("it changed from (retention_days 0, keep_last 1, keep_daily 7"),
        "{typo:?}"
    );
    assert_eq!(file_names(&sb.db_dir("app")).len(), 22);

    // A preview of another time: on 2026-07-01 the pin and the newest stayed, and the backups
    // taken afterwards did not exist yet.
    let at = sb.run(&["prune", "--dry-run", "--json", "--at", "2026-07-01 00:00"]);
    at.assert_success();
    let plan: Vec<Value> = serde_json::from_str(&at.stdout).unwrap();
    let later = plan
        .iter()
        .find(|d| d["started_at"].as_str().unwrap().starts_with("2026-12-06"))
        .unwrap();
    assert_eq!(later["reasons"][0], "taken after the preview time");
    let bad = sb.run(&["prune", "--dry-run", "--at", "July"]);
    bad.assert_code(2);
    assert!(bad.stderr.contains("--at `July`"), "{bad:?}");
}

#[test]
fn the_local_folder_keeps_three_while_s3_keeps_the_monthlies() {
    let s3 = S3::start("dbkeep-gfs");
    let sb = Sandbox::new();
    create_sample_sqlite(&sb.path().join("app.db"));
    sb.write_config(&format!(
        "retention_days = 0\nkeep_last = 3\n\
         [[offsite]]\nname = \"s3\"\nurl = \"s3://dbkeep-gfs/backups\"\nendpoint = \"http://127.0.0.1:{}\"\nregion = \"us-east-1\"\n\
         keep_monthly = 12\n\
         [[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n",
        s3.port
    ));
    let env = [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
    ];
    import_history(&sb, &env);
    run_env(&sb, &["offsite", "sync"], &env).assert_success();
    assert!(
        sb.rows_for("app")
            .iter()
            .all(|r| r["copies"][0]["state"] == "uploaded"),
        "not every backup went to s3"
    );

    let plan = run_env(&sb, &["prune", "--dry-run", "--json"], &env);
    plan.assert_success();
    let plan: Vec<Value> = serde_json::from_str(&plan.stdout).unwrap();
    // Every backup is decided at both places.
    assert_eq!(plan.len(), 800);
    run_env(&sb, &["prune", "--confirm"], &env).assert_success();

    let rows = sb.rows_for("app");
    let local: BTreeSet<String> = rows
        .iter()
        .filter(|r| r["pruned_at"].is_null())
        .map(day_of)
        .collect();
    assert_eq!(
        local,
        ["2026-12-04", "2026-12-05", "2026-12-06"]
            .map(String::from)
            .into()
    );
    assert_eq!(file_names(&sb.db_dir("app")).len(), 3);
    let offsite: BTreeSet<String> = rows
        .iter()
        .filter(|r| r["copies"][0]["pruned_at"].is_null())
        .map(day_of)
        .collect();
    let monthlies: BTreeSet<String> = [
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
        "2026-11-30",
        "2026-12-06",
    ]
    .map(String::from)
    .into();
    assert_eq!(offsite, monthlies);

    // A monthly that left the local disk still verifies and restores from S3.
    let march = rows.iter().find(|r| day_of(r) == "2026-03-31").unwrap();
    assert!(march["pruned_at"].is_string());
    let id = march["id"].as_i64().unwrap().to_string();
    let verify = run_env(&sb, &["verify", &id, "--level", "restore"], &env);
    verify.assert_success();
    let out = sb.path().join("march.db");
    run_env(
        &sb,
        &["download", &id, "--output", out.to_str().unwrap()],
        &env,
    )
    .assert_success();
    let conn = rusqlite::Connection::open(&out).unwrap();
    let last: String = conn
        .query_row("SELECT name FROM users ORDER BY id DESC LIMIT 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(last, "2026-03-31");
    // A backup gone from both places is refused by name.
    let june = rows.iter().find(|r| day_of(r) == "2026-06-15").unwrap();
    let id = june["id"].as_i64().unwrap().to_string();
    let gone = run_env(&sb, &["verify", &id], &env);
    assert_ne!(gone.code, Some(0), "{gone:?}");
}
