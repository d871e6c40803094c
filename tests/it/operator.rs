//! What an operator reads: the command line's messages and times, each run's log, the
//! metrics and the README's alert rules, and the README's manual SQLite restore after a crash.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;

use crate::common::*;

/// A sandbox with `app` (a good SQLite file) and `broken` (a missing one), read in Tokyo time
/// (a zone without daylight saving, so the snapshots hold all year).
fn two_databases() -> Sandbox {
    let sandbox = Sandbox::new();
    create_sample_sqlite(&sandbox.path().join("app.db"));
    sandbox.write_config(
        "timezone = \"Asia/Tokyo\"\nretention_days = 0\nkeep_last = 1\n\
         [[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\nschedules = [\"0 0 1 1 *\"]\n\
         [[databases]]\nname = \"broken\"\nurl = \"sqlite:missing.db\"\nschedules = [\"0 0 1 1 *\"]\n",
    );
    sandbox
}

#[test]
fn the_command_line_says_what_matched_nothing_and_writes_times_with_their_zone() {
    let sandbox = two_databases();
    let empty = sandbox.run(&["list"]);
    let unknown_list = sandbox.run(&["list", "-d", "nosuch"]);
    let no_failures = sandbox.run(&["list", "--status", "failed"]);
    let unknown_backup = sandbox.run(&["backup", "-d", "nosuch"]);
    unknown_backup.assert_code(2);
    for _ in 0..3 {
        sandbox
            .run(&["backup", "-d", "app", "--no-cleanup"])
            .assert_success();
    }
    let list = sandbox.run(&["list", "-d", "app"]);
    let dry_run = sandbox.run(&["prune", "--dry-run"]);
    dry_run.assert_success();
    let mut settings = snapshot_settings(&sandbox);
    // Backups in the same second get `_2`, `_3`: whether they do depends on the clock.
    settings.add_filter(r"\[TS\](_\d+)?", "[TS]");
    settings.bind(|| {
        insta::assert_snapshot!("empty_list", empty.stdout);
        insta::assert_snapshot!("list_unknown_database", unknown_list.stdout);
        insta::assert_snapshot!("list_no_failures", no_failures.stdout);
        insta::assert_snapshot!("backup_unknown_database", unknown_backup.stderr);
        insta::assert_snapshot!("list_with_zone", list.stdout);
        insta::assert_snapshot!("prune_dry_run_total", dry_run.stdout);
    });
    assert!(list.stdout.contains(" JST"), "{list:?}");
    assert!(
        dry_run
            .stdout
            .contains("\nwould prune 0 file(s), 0 B; 2 more held back"),
        "{dry_run:?}"
    );
}

#[test]
fn a_fire_whose_backup_failed_is_shown_failed_and_users_are_listed() {
    let sandbox = two_databases();
    sandbox.run(&["backup", "-d", "broken"]).assert_code(1);
    let failed = sandbox.rows_for("broken")[0]["id"].as_i64().unwrap();
    let conn = rusqlite::Connection::open(sandbox.catalog_path()).unwrap();
    conn.execute(
        "INSERT INTO fires (database, schedule, planned_at, started_at, outcome, backup_id)
         VALUES ('broken', '0 0 1 1 *', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z', 'ran', ?1)",
        [failed],
    )
    .unwrap();
    drop(conn);
    let schedule = sandbox.run(&["schedule"]);
    schedule.assert_success();
    let line = schedule
        .stdout
        .lines()
        .skip_while(|l| *l != "broken")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    assert!(
        line.contains(&format!("last: failed (backup #{failed})")),
        "{schedule:?}"
    );
    assert!(line.contains("2026-01-01 09:00:00 JST"), "{line}");

    sandbox
        .run_with_stdin(&["user", "add", "zoe"], "zoe's password\n")
        .assert_success();
    sandbox
        .run_with_stdin(&["user", "add", "al"], "al's password\n")
        .assert_success();
    let users = sandbox.run(&["user", "list"]);
    users.assert_success();
    let names: Vec<&str> = users
        .stdout
        .lines()
        .map(|l| l.split_whitespace().next().unwrap_or_default())
        .collect();
    assert_eq!(names, ["al", "zoe"], "{users:?}");
}

#[test]
fn each_run_keeps_its_log_with_the_tools_words_and_no_password() {
    let sandbox = Sandbox::new();
    let secret = "s3cret-in-the-logs";
    // A pg_dump that warns, prints its password (as a careless wrapper might) and fails.
    let dump = sandbox.path().join("pg_dump");
    fs::write(
        &dump,
        "#!/bin/sh\necho 'pg_dump: warning: there are circular foreign-key constraints' >&2\n\
         echo \"connecting with password $PGPASSWORD\" >&2\necho 'SELECT 1;'\nexit 3\n",
    )
    .unwrap();
    fs::set_permissions(&dump, fs::Permissions::from_mode(0o755)).unwrap();
    create_sample_sqlite(&sandbox.path().join("app.db"));
    sandbox.write_config(&format!(
        "pg_dump_path = \"{}\"\n\
         [[databases]]\nname = \"pg\"\nurl = \"postgres://app:{secret}@127.0.0.1:1/app\"\n\
         [[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n",
        dump.display()
    ));
    sandbox.run(&["backup"]).assert_code(1);
    let log_of = |database: &str| -> String {
        let id = sandbox.rows_for(database)[0]["id"].as_i64().unwrap();
        let conn = rusqlite::Connection::open(sandbox.catalog_path()).unwrap();
        conn.query_row("SELECT log FROM backups WHERE id = ?1", [id], |r| {
            r.get::<_, Option<String>>(0)
        })
        .unwrap()
        .unwrap_or_default()
    };
    let failed = log_of("pg");
    assert!(
        failed.contains("pg_dump: pg_dump: warning: there are circular foreign-key constraints"),
        "{failed}"
    );
    assert!(
        failed.contains("pg_dump: connecting with password ***"),
        "{failed}"
    );
    assert!(
        failed.contains("s failed: pg_dump exited with code 3"),
        "{failed}"
    );
    assert_absent(&failed, secret, "the run's log");
    assert_absent_bytes(&sandbox.catalog_bytes(), secret, "the catalog");
    let good = log_of("app");
    let steps: Vec<&str> = good
        .lines()
        .map(|l| l.split_once("s ").map_or(l, |(_, rest)| rest))
        .collect();
    assert!(
        steps[0].starts_with("started: sqlite backup of sqlite:"),
        "{good}"
    );
    assert!(steps[1].starts_with("copied "), "{good}");
    assert!(
        steps[2].starts_with("counted 2004 row(s) in 2 table(s)"),
        "{good}"
    );
    assert!(
        steps[3].starts_with("renamed into place as sqlite_backup_"),
        "{good}"
    );
    assert!(steps[4].starts_with("pruned 0 older backup(s)"), "{good}");
    assert!(good.lines().all(|l| l.starts_with('+')), "{good}");
}

/// The code block that follows `marker` (an HTML comment) in the README.
fn readme_block(marker: &str) -> String {
    let readme = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("read README.md");
    let after = readme
        .split_once(marker)
        .unwrap_or_else(|| panic!("README.md has no {marker}"))
        .1;
    let body = after
        .split_once("```")
        .and_then(|(_, rest)| rest.split_once('\n'))
        .map(|(_, rest)| rest)
        .expect("a code block after the marker");
    body.split_once("```")
        .expect("the block's end")
        .0
        .to_string()
}

#[test]
fn the_readmes_alert_rules_parse_and_name_series_every_database_has() {
    let rules = readme_block("<!-- alert-rules -->");
    // YAML, parsed by PyYAML from the test virtualenv (schemathesis brings it).
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run the tests with scripts/test.sh",
        python.display()
    );
    let out = Command::new(&python)
        .args([
            "-c",
            "import json, sys, yaml; d = yaml.safe_load(sys.stdin); \
             print(json.dumps([r['expr'] for g in d['groups'] for r in g['rules']]))",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(rules.as_bytes())?;
            child.wait_with_output()
        })
        .expect("run python");
    assert!(
        out.status.success(),
        "the alert rules are not valid YAML: {out:?}"
    );
    let exprs: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(exprs.len(), 3, "{exprs:?}");

    // A database that never succeeded has every series the rules use, and is flagged.
    let sandbox = two_databases();
    sandbox.run(&["backup"]).assert_code(1);
    let metrics_port = crate::http::free_port();
    let web_port = crate::http::free_port();
    let config = fs::read_to_string(sandbox.config_path()).unwrap();
    sandbox.write_config(&format!(
        "listen = \"127.0.0.1:{web_port}\"\nmetrics_listen = \"127.0.0.1:{metrics_port}\"\n{config}"
    ));
    let _server = crate::http::Server::start(
        &sandbox,
        web_port,
        &[("DBKEEP_ADMIN_PASSWORD", "a long password")],
    );
    let metrics = crate::http::http_get(metrics_port, "/metrics", None)
        .unwrap()
        .text();
    assert!(
        metrics.contains("dbkeep_backup_last_success_timestamp_seconds{database=\"broken\"} 0\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("dbkeep_database_status{database=\"broken\",status=\"failing\"} 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("dbkeep_database_status{database=\"app\",status=\"protected\"} 1\n"),
        "{metrics}"
    );
    for expr in &exprs {
        for name in expr
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("dbkeep_"))
        {
            // A series of the instance (the disk's free space) has no database to name.
            if metrics.contains(&format!("\n{name} ")) {
                continue;
            }
            assert!(
                metrics.contains(&format!("\n{name}{{database=\"broken\"")),
                "the rule `{expr}` uses {name}, which has no series for the failing database:\n{metrics}"
            );
        }
    }
}

#[test]
fn the_readmes_sqlite_restore_gives_back_the_backup_after_a_crash_left_a_wal() {
    let sandbox = Sandbox::new();
    let db = sandbox.path().join("db.sqlite3");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);
             WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000)
             INSERT INTO t SELECT x, 'row ' || x FROM c;",
        )
        .unwrap();
    }
    sandbox.write_config("[[databases]]\nname = \"app\"\nurl = \"sqlite:db.sqlite3\"\n");
    sandbox.run(&["backup"]).assert_success();
    let backup = assert_success_row(&sandbox.rows_for("app")[0], "app", "sqlite");

    // The application deletes most rows, then crashes before any checkpoint: a -wal is left.
    let crash = Command::new("python3")
        .arg("-c")
        .arg(
            "import os, signal, sqlite3, sys\n\
             c = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
             c.execute('PRAGMA wal_autocheckpoint = 0')\n\
             c.execute('DELETE FROM t WHERE id > 3100')\n\
             os.kill(os.getpid(), signal.SIGKILL)\n",
        )
        .arg(&db)
        .status()
        .unwrap();
    assert!(!crash.success(), "the writer was meant to die");
    let wal = sandbox.path().join("db.sqlite3-wal");
    assert!(
        wal.metadata().map(|m| m.len() > 0).unwrap_or(false),
        "no -wal left"
    );
    let count = |path: &Path| -> i64 {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap()
    };

    // The README's steps, run as written with this test's paths.
    let steps = readme_block("<!-- sqlite-restore -->")
        .replace("/srv/app/db.sqlite3", &db.display().to_string())
        .replace(
            "backups/app/sqlite_backup_20261126_000000.db",
            &backup.display().to_string(),
        );
    let wal_copy = fs::read(&wal).unwrap();
    let shm = sandbox.path().join("db.sqlite3-shm");
    let shm_copy = fs::read(&shm).ok();
    let ran = Command::new("sh").arg("-ec").arg(&steps).status().unwrap();
    assert!(ran.success(), "the README's restore failed:\n{steps}");
    assert_eq!(count(&db), 20000, "the restored database lost rows");
    let (_dir, restored) = open_copy(&db);
    assert_eq!(sqlite_integrity(&restored), "ok");

    // Why the `rm` matters: the same copy with the -wal left in place gives the wrong data.
    let naive = sandbox.path().join("naive.sqlite3");
    fs::copy(&backup, &naive).unwrap();
    fs::write(sandbox.path().join("naive.sqlite3-wal"), wal_copy).unwrap();
    if let Some(shm) = shm_copy {
        fs::write(sandbox.path().join("naive.sqlite3-shm"), shm).unwrap();
    }
    assert_eq!(count(&naive), 3100, "a left-over -wal was not replayed");
}

#[test]
fn the_first_admins_password_is_a_message_of_its_own_and_no_log_field() {
    let sandbox = Sandbox::new();
    let port = crate::http::free_port();
    sandbox.write_config(&format!("listen = \"127.0.0.1:{port}\"\n"));
    let server = crate::http::Server::start(&sandbox, port, &[]);
    let log = server.log();
    let password = log
        .lines()
        .find_map(|l| l.trim().strip_prefix("password: "))
        .unwrap_or_else(|| panic!("no password message:\n{log}"))
        .to_string();
    assert!(password.len() >= 20, "{password}");
    let mentions: Vec<&str> = log.lines().filter(|l| l.contains(&password)).collect();
    assert_eq!(
        mentions.len(),
        1,
        "the password is printed more than once:\n{log}"
    );
    assert!(
        log.contains("created the first user; its password was printed once"),
        "{log}"
    );
    // Logs written to a file carry no colour codes.
    assert!(!server.log_bytes().contains(&0x1b), "{log}");
}
