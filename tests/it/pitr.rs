//! Point-in-time recovery of a private PostgreSQL cluster: WAL archived by `dbkeep wal push`,
//! base backups by `dbkeep backup --server`, and restores to moments between marked
//! transactions, each started and queried.

mod cluster;
mod crash;
mod watched;

use std::time::Duration;

use crate::common::{Sandbox, assert_absent_bytes, parse_rows};
use cluster::{Cluster, dbkeep, free_port, sql_at, stop_at};

/// The configuration of a sandbox whose server `pg` (on `port`) archives WAL; `extra` is
/// added to the server's entry, `tail` after it.
pub(super) fn config(sandbox: &Sandbox, port: u16, extra: &str, tail: &str) {
    config_with(sandbox, "", port, extra, tail);
}

/// [`config`] with `top` among the top-level keys.
pub(super) fn config_with(sandbox: &Sandbox, top: &str, port: u16, extra: &str, tail: &str) {
    sandbox.write_config(&format!(
        r#"backup_dir = "backups"
{top}

[[servers]]
name = "pg"
url = "postgres://postgres@127.0.0.1:{port}/"
exclude = ["*"]
wal_archive = true
{extra}
{tail}"#
    ));
}

/// The server's clock now, as an RFC 3339 time in UTC.
pub(super) fn server_now(cluster: &Cluster) -> String {
    cluster.sql(
        "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
    )
}

/// A mark committed now, with a pause on each side so that a moment between two marks is
/// clearly between them.
pub(super) fn mark(cluster: &Cluster, n: u32) {
    std::thread::sleep(Duration::from_millis(1100));
    cluster.sql(&format!("INSERT INTO marks VALUES ({n})"));
    std::thread::sleep(Duration::from_millis(1100));
}

/// Restores `pg` to `at` into a new folder of `sandbox`, starts it, and returns the marks it
/// holds and the rows of pgbench's accounts.
pub(super) fn restored_marks(sandbox: &Sandbox, at: &str, name: &str) -> (String, String) {
    restored_marks_to(sandbox, &["--at", at], name)
}

/// [`restored_marks`] to `target` (`--at TIME`, `--lsn LSN` or `--xid XID`).
fn restored_marks_to(sandbox: &Sandbox, target: &[&str], name: &str) -> (String, String) {
    let dir = sandbox.path().join(name);
    let port = free_port().to_string();
    let mut args = vec!["restore", "--server", "pg"];
    args.extend(target);
    // A recovery whose end is never seen fails in minutes, not after the default hour.
    args.extend(["--to-dir", dir.to_str().unwrap(), "--start", "--wait", "2m"]);
    args.extend(["--port", &port]);
    let run = dbkeep(sandbox, &args);
    let port: u16 = port.parse().unwrap();
    let result = std::panic::catch_unwind(|| {
        run.assert_success();
        assert!(run.stdout.contains("recovered to"), "{run:?}");
        assert!(run.stdout.contains(&format!("port {port}")), "{run:?}");
        (
            sql_at(
                port,
                "SELECT coalesce(string_agg(n::text, ',' ORDER BY n), '') FROM marks",
            ),
            sql_at(port, "SELECT count(*) FROM pgbench_accounts"),
        )
    });
    stop_at(&dir);
    result.unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// A restore of `pg` to `at`, a moment before what its stored base backups can rebuild: refused
/// with the span, and nothing unpacked.
fn refused_before_the_span(sandbox: &Sandbox, at: &str) {
    let dir = sandbox.path().join("early");
    let early = dbkeep(
        sandbox,
        &[
            "restore",
            "--server",
            "pg",
            "--at",
            at,
            "--to-dir",
            dir.to_str().unwrap(),
        ],
    );
    early.assert_code(2);
    assert!(early.stderr.contains("can be recovered from"), "{early:?}");
    assert!(!dir.join("PG_VERSION").exists());
}

/// The level and detail of `dbkeep doctor`'s check `database pg: CHECK`.
pub(super) fn doctor_finding(sandbox: &Sandbox, check: &str) -> (String, String) {
    let run = dbkeep(sandbox, &["doctor", "--json"]);
    let found: Vec<serde_json::Value> = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("doctor --json printed no JSON ({e}): {run:?}"));
    let name = format!("database pg: {check}");
    let f = found
        .iter()
        .find(|f| f["check"] == name.as_str())
        .unwrap_or_else(|| panic!("no check `{name}`: {found:#?}"));
    (
        f["level"].as_str().unwrap().to_string(),
        f["detail"].as_str().unwrap().to_string(),
    )
}

/// A sandbox whose server `pg` (with `extra` in its entry) runs, archiving every 30 s, with an
/// empty table of marks.
pub(super) fn marked_cluster(extra: &str) -> (Sandbox, Cluster) {
    let sandbox = Sandbox::new();
    let port = free_port();
    config(&sandbox, port, extra, "");
    let cluster = Cluster::start(&sandbox, port, "30s");
    cluster.sql("CREATE TABLE marks (n int PRIMARY KEY)");
    (sandbox, cluster)
}

#[test]
fn a_server_is_recovered_to_the_moments_between_marked_transactions() {
    let (sandbox, cluster) = marked_cluster("");
    cluster.pgbench(&["-i", "-s", "2", "-q"]);
    // The base backup carries this setting: the restored servers send their log elsewhere,
    // and dbkeep must still see their recovery end.
    cluster.sql("ALTER SYSTEM SET logging_collector = on");
    let before_base = server_now(&cluster);
    std::thread::sleep(Duration::from_millis(1100));

    let base = dbkeep(&sandbox, &["backup", "--server", "pg"]);
    base.assert_success();
    let rows = parse_rows(
        &dbkeep(&sandbox, &["list", "--json"])
            .assert_success()
            .stdout,
    );
    let row = rows
        .iter()
        .find(|r| r["database"] == "pg")
        .unwrap_or_else(|| panic!("no base backup row: {rows:?}"));
    assert_eq!(row["kind"], "postgres_base", "{row}");
    assert_eq!(row["status"], "success", "{row}");
    let file = row["file_name"].as_str().unwrap();
    assert!(
        file.starts_with("postgres_base_") && file.ends_with(".tar.zst"),
        "{file}"
    );

    cluster.pgbench(&["-T", "2", "-c", "2"]);
    std::thread::sleep(Duration::from_millis(1100));
    let before_1 = server_now(&cluster);
    mark(&cluster, 1);
    let between_1_2 = server_now(&cluster);
    cluster.pgbench(&["-T", "2", "-c", "2"]);
    std::thread::sleep(Duration::from_millis(1100));
    let xid_2 = cluster.sql("INSERT INTO marks VALUES (2) RETURNING txid_current()");
    // psql prints the command tag after the returned row.
    let xid_2 = xid_2.lines().next().unwrap().to_string();
    let lsn_after_2 = cluster.sql("SELECT pg_current_wal_insert_lsn()");
    std::thread::sleep(Duration::from_millis(1100));
    let between_2_3 = server_now(&cluster);
    mark(&cluster, 3);
    cluster.archive_now();

    // Before the base backup ended: nothing can rebuild it, and the range is named.
    refused_before_the_span(&sandbox, &before_base);

    let accounts = "200000".to_string();
    assert_eq!(
        restored_marks(&sandbox, &before_1, "at_0"),
        (String::new(), accounts.clone())
    );
    assert_eq!(
        restored_marks(&sandbox, &between_1_2, "at_1"),
        ("1".into(), accounts.clone())
    );
    assert_eq!(
        restored_marks(&sandbox, &between_2_3, "at_2"),
        ("1,2".into(), accounts.clone())
    );
    assert_eq!(
        restored_marks(&sandbox, "latest", "at_latest"),
        ("1,2,3".into(), accounts.clone())
    );
    assert_eq!(
        restored_marks_to(&sandbox, &["--lsn", &lsn_after_2], "at_lsn"),
        ("1,2".into(), accounts.clone())
    );
    assert_eq!(
        restored_marks_to(&sandbox, &["--xid", &xid_2], "at_xid"),
        ("1,2".into(), accounts)
    );

    // doctor checks the server's settings for archiving, and finds them right.
    for check in [
        "base backups",
        "wal_level",
        "archiving",
        "archive_timeout",
        "archiver",
    ] {
        let (level, detail) = doctor_finding(&sandbox, check);
        assert_eq!(level, "ok", "{check}: {detail}");
    }

    // The drill: recovered to the archive's end beside the backups, counted, removed.
    let id = row["id"].as_i64().unwrap().to_string();
    let drill = dbkeep(&sandbox, &["verify", &id, "--level", "restore"]);
    drill.assert_success();
    assert!(
        drill.stdout.starts_with(&format!("ok      #{id}")),
        "{drill:?}"
    );
    let rows = parse_rows(
        &dbkeep(&sandbox, &["list", "--json"])
            .assert_success()
            .stdout,
    );
    let row = rows.iter().find(|r| r["id"] == row["id"]).unwrap();
    assert_eq!(row["verify_level"], "restore", "{row}");
    assert_eq!(row["verify_status"], "ok", "{row}");
    let left: Vec<String> = std::fs::read_dir(sandbox.db_dir("pg"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".drill_"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    drop(cluster);
}

/// The stored files of `pg`'s archive, by name.
pub(super) fn archived(sandbox: &Sandbox) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(sandbox.db_dir("pg").join("wal"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn an_encrypted_archive_recovers_from_its_off_site_copy_alone() {
    let s3 = crate::offsite::S3::start("pitr");
    let sandbox = Sandbox::new();
    let (identity, public) = crate::encryption::keygen(sandbox.path(), "key.txt");
    let port = free_port();
    config(
        &sandbox,
        port,
        &format!("age_recipients = [\"{public}\"]"),
        &format!(
            "[[offsite]]\nname = \"s3\"\nurl = \"s3://pitr/dbkeep\"\nendpoint = \"http://127.0.0.1:{}\"\nregion = \"us-east-1\"\n",
            s3.port
        ),
    );
    let cluster = Cluster::start(&sandbox, port, "30s");
    let aws = |args: &[&str]| {
        let mut cmd = cluster::as_owner(std::path::Path::new(crate::common::bin_path()));
        let out = cmd
            .arg("--config")
            .arg(sandbox.config_path())
            .args(args)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .output()
            .unwrap();
        crate::common::Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    };
    cluster.sql("CREATE TABLE marks (n int PRIMARY KEY, note text)");
    cluster.pgbench(&["-i", "-s", "1", "-q"]);
    aws(&["backup", "--server", "pg"]).assert_success();
    mark(&cluster, 1);
    cluster.sql("UPDATE marks SET note = 'plaintext-that-must-not-rest' WHERE n = 1");
    let between = server_now(&cluster);
    mark(&cluster, 2);
    cluster.archive_now();

    let files = archived(&sandbox);
    assert!(
        !files.is_empty() && files.iter().all(|f| f.ends_with(".zst.age")),
        "{files:?}"
    );
    for f in &files {
        let bytes = std::fs::read(sandbox.db_dir("pg").join("wal").join(f)).unwrap();
        assert!(bytes.starts_with(b"age-encryption.org/v1"), "{f}");
        assert_absent_bytes(&bytes, "plaintext-that-must-not-rest", f);
    }
    // An outage (its bucket gone, which S3 answers at once): the queue stays, and goes once
    // the destination takes files again.
    let s3_entry = |bucket: &str| {
        format!(
            "[[offsite]]\nname = \"s3\"\nurl = \"s3://{bucket}/dbkeep\"\nendpoint = \"http://127.0.0.1:{}\"\nregion = \"us-east-1\"\n",
            s3.port
        )
    };
    let keys = format!("age_recipients = [\"{public}\"]");
    config(&sandbox, port, &keys, &s3_entry("gone"));
    let down = aws(&["wal", "sync"]);
    assert_eq!(down.code, Some(1), "{down:?}");
    assert!(down.stdout.contains("0 sent"), "{down:?}");
    assert!(!down.stdout.contains(" 0 queued"), "{down:?}");
    config(&sandbox, port, &keys, &s3_entry("pitr"));
    // The queue goes off-site; then this machine's copies are lost.
    let sync = aws(&["wal", "sync"]);
    sync.assert_success();
    assert!(sync.stdout.contains("pg → s3:"), "{sync:?}");
    assert!(sync.stdout.contains("0 queued"), "{sync:?}");
    aws(&["wal", "sync"]).assert_success();
    drop(cluster);
    std::fs::remove_dir_all(sandbox.backup_dir()).unwrap();

    // Without the identity the archive cannot be read: recovery never starts.
    let dir = sandbox.path().join("restored");
    let port = free_port();
    let restore = |extra: &[&str]| {
        let mut args = vec![
            "restore",
            "--server",
            "pg",
            "--at",
            &between,
            "--to-dir",
            dir.to_str().unwrap(),
            "--start",
        ];
        let port = port.to_string();
        args.extend(["--port", &port]);
        args.extend(extra);
        aws(&args)
    };
    let refused = restore(&[]);
    assert_ne!(refused.code, Some(0), "{refused:?}");
    assert!(refused.stderr.contains("encrypted"), "{refused:?}");
    let run = restore(&["--identity", identity.to_str().unwrap()]);
    let marks = std::panic::catch_unwind(|| {
        run.assert_success();
        sql_at(
            port,
            "SELECT string_agg(n || ':' || coalesce(note, ''), ',' ORDER BY n) FROM marks",
        )
    });
    stop_at(&dir);
    assert_eq!(
        marks.unwrap_or_else(|p| std::panic::resume_unwind(p)),
        "1:plaintext-that-must-not-rest"
    );
}

#[test]
fn the_archive_follows_the_base_backups_that_retention_keeps() {
    let (sandbox, cluster) = marked_cluster("retention_days = 0\nkeep_last = 1");
    dbkeep(&sandbox, &["backup", "--server", "pg"]).assert_success();
    mark(&cluster, 1);
    let before_second = server_now(&cluster);
    cluster.pgbench(&["-i", "-s", "1", "-q"]);
    cluster.archive_now();
    let first_files = archived(&sandbox);
    // The second base backup lets the first go, and with it the WAL only the first needed.
    dbkeep(&sandbox, &["backup", "--server", "pg"]).assert_success();
    mark(&cluster, 2);
    cluster.archive_now();
    let rows = parse_rows(
        &dbkeep(&sandbox, &["list", "--json"])
            .assert_success()
            .stdout,
    );
    let kept: Vec<&serde_json::Value> = rows
        .iter()
        .filter(|r| r["database"] == "pg" && r["pruned_at"].is_null())
        .collect();
    assert_eq!(kept.len(), 1, "{rows:?}");
    let files = archived(&sandbox);
    let gone: Vec<&String> = first_files.iter().filter(|f| !files.contains(f)).collect();
    assert!(!gone.is_empty(), "nothing pruned: {files:?}");
    // What is left begins at the kept base backup's first segment: nothing it needs went.
    let label = std::fs::read_dir(sandbox.db_dir("pg").join("wal"))
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.contains(".backup").then_some(name)
        })
        .collect::<Vec<_>>();
    assert_eq!(
        label.len(),
        1,
        "one base backup's history file is left: {files:?}"
    );
    let start = &label[0][..24];
    assert!(
        files
            .iter()
            .filter(|f| !f.contains(".history"))
            .all(|f| f[..24] >= *start),
        "{start}: {files:?}"
    );
    refused_before_the_span(&sandbox, &before_second);
    drop(cluster);
    let (marks, _) = restored_marks(&sandbox, "latest", "after_prune");
    assert_eq!(marks, "1,2");
}
