//! Point-in-time recovery of a private PostgreSQL cluster: WAL archived by `dbkeep wal push`,
//! base backups by `dbkeep backup --server`, and restores to moments between marked
//! transactions, each started and queried.

mod cluster;

use std::time::Duration;

use crate::common::{Sandbox, parse_rows};
use cluster::{Cluster, dbkeep, free_port, sql_at, stop_at};

/// The configuration of a sandbox whose server `pg` (on `port`) archives WAL; `extra` is
/// added to the server's entry, `tail` after it.
fn config(sandbox: &Sandbox, port: u16, extra: &str, tail: &str) {
    sandbox.write_config(&format!(
        r#"backup_dir = "backups"

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
fn server_now(cluster: &Cluster) -> String {
    cluster.sql(
        "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
    )
}

/// A mark committed now, with a pause on each side so that a moment between two marks is
/// clearly between them.
fn mark(cluster: &Cluster, n: u32) {
    std::thread::sleep(Duration::from_millis(1100));
    cluster.sql(&format!("INSERT INTO marks VALUES ({n})"));
    std::thread::sleep(Duration::from_millis(1100));
}

/// Restores `pg` to `at` into a new folder of `sandbox`, starts it, and returns the marks it
/// holds and the rows of pgbench's accounts.
fn restored_marks(sandbox: &Sandbox, at: &str, name: &str) -> (String, String) {
    let dir = sandbox.path().join(name);
    let port = free_port();
    let run = dbkeep(
        sandbox,
        &[
            "restore",
            "--server",
            "pg",
            "--at",
            at,
            "--to-dir",
            dir.to_str().unwrap(),
            "--start",
            "--port",
            &port.to_string(),
        ],
    );
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

#[test]
fn a_server_is_recovered_to_the_moments_between_marked_transactions() {
    let sandbox = Sandbox::new();
    let port = free_port();
    config(&sandbox, port, "", "");
    let cluster = Cluster::start(&sandbox, port, "30s");
    cluster.sql("CREATE TABLE marks (n int PRIMARY KEY)");
    cluster.pgbench(&["-i", "-s", "2", "-q"]);
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
    mark(&cluster, 1);
    let between_1_2 = server_now(&cluster);
    cluster.pgbench(&["-T", "2", "-c", "2"]);
    mark(&cluster, 2);
    let between_2_3 = server_now(&cluster);
    mark(&cluster, 3);
    cluster.archive_now();

    // Before the base backup ended: nothing can rebuild it, and the range is named.
    let early = dbkeep(
        &sandbox,
        &[
            "restore",
            "--server",
            "pg",
            "--at",
            &before_base,
            "--to-dir",
            sandbox.path().join("early").to_str().unwrap(),
        ],
    );
    early.assert_code(2);
    assert!(early.stderr.contains("can be recovered from"), "{early:?}");
    assert!(!sandbox.path().join("early").join("PG_VERSION").exists());

    let accounts = "200000".to_string();
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
        ("1,2,3".into(), accounts)
    );
    drop(cluster);
}
