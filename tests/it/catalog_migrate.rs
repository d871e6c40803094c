//! `dbkeep catalog migrate`: a SQLite catalog's history, users, sessions and API tokens moved
//! into a new PostgreSQL catalog (the test server), which then serves exactly as the file did.

use serde_json::Value;

use crate::common::*;
use crate::http::{Server, free_port, http_get, login_request, send};

fn config(catalog: Option<&str>, port: u16) -> String {
    let catalog = catalog
        .map(|c| format!("catalog = \"{c}\"\n"))
        .unwrap_or_default();
    format!(
        "{catalog}listen = \"127.0.0.1:{port}\"\n\
         [[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\nschedules = [\"0 0 1 1 *\"]\n\n\
         [[databases]]\nname = \"gone\"\nurl = \"sqlite:missing.db\"\nschedules = [\"0 0 1 1 *\"]\n"
    )
}

/// `GET path` with a session cookie.
fn get_with_session(port: u16, path: &str, session: &str) -> crate::http::Response {
    send(
        port,
        format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: dbkeep_session={session}\r\n\
             Connection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap()
}

/// Rows of `table` in the SQLite catalog.
fn sqlite_count(sandbox: &Sandbox, table: &str) -> u64 {
    let conn = rusqlite::Connection::open(sandbox.catalog_path()).unwrap();
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| {
        r.get::<_, i64>(0)
    })
    .unwrap() as u64
}

/// The counts `catalog migrate` printed for `table`: (in SQLite, in PostgreSQL).
fn printed_counts(stdout: &str, table: &str) -> (u64, u64) {
    let line = stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(table))
        .unwrap_or_else(|| panic!("no line for {table}:\n{stdout}"));
    let numbers: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(numbers.len(), 2, "{line}");
    (numbers[0], numbers[1])
}

#[test]
fn a_sqlite_catalog_moves_to_an_empty_postgres_catalog_and_works_the_same_there() {
    let target = PgDb::create("migrate");
    let sandbox = Sandbox::new();
    create_sample_sqlite(&sandbox.path().join("app.db"));
    let port = free_port();
    sandbox.write_config(&config(None, port));

    // Some history: two good backups, a failed one, a verification.
    sandbox.run(&["backup", "-d", "app"]).assert_success();
    sandbox.run(&["backup", "-d", "gone"]).assert_code(1);
    sandbox.run(&["backup", "-d", "app"]).assert_success();
    sandbox
        .run(&["verify", "--latest", "-d", "app"])
        .assert_success();
    // A user, and API tokens: the last one made is revoked, so its id is used but not kept.
    run_cmd(
        sandbox
            .cmd()
            .args(["user", "add", "alice"])
            .write_stdin("a long passphrase\n"),
    )
    .assert_success();
    let created = sandbox.run(&["token", "create", "ci"]);
    created.assert_success();
    let token = created.stdout.lines().last().unwrap().trim().to_string();
    sandbox.run(&["token", "create", "old"]).assert_success();
    sandbox.run(&["token", "revoke", "old"]).assert_success();
    // A session, logged in through the web, and a failed login (live state, not copied).
    let session = {
        let server = Server::start(&sandbox, port, &[]);
        let csrf = server.login_csrf();
        let wrong = send(port, &login_request(port, &csrf, "alice", "not it", "/")).unwrap();
        assert_eq!(wrong.status, 401, "{}", wrong.text());
        let login = send(
            port,
            &login_request(port, &csrf, "alice", "a long passphrase", "/"),
        )
        .unwrap();
        assert_eq!(login.status, 303, "{}", login.text());
        let session = login.cookie("dbkeep_session").expect("a session cookie");
        assert_eq!(get_with_session(port, "/", &session).status, 200);
        assert!(server.terminate().success());
        session
    };
    // The rest of the history, as other parts of dbkeep would have written it.
    let conn = rusqlite::Connection::open(sandbox.catalog_path()).unwrap();
    conn.execute_batch(
        "INSERT INTO fires (database, schedule, planned_at, started_at, outcome, backup_id, detail)
             VALUES ('app', '0 0 1 1 *', '2024-01-01T00:00:00.000Z', '2024-01-01T00:00:01.250Z', 'ran', 1, NULL),
                    ('app', '0 0 1 1 *', '2023-01-01T00:00:00.000Z', NULL, 'missed', NULL, 'no dbkeep was running');
         INSERT INTO copies (backup_id, store, key, size_bytes, sha256, state, error, uploaded_at, pruned_at)
             VALUES (1, 'remote', 'app/one.db', 123, 'ab', 'uploaded', NULL, '2024-01-01T00:00:02.500Z', NULL);
         INSERT INTO offsite_failures (store, backup_id, at, error)
             VALUES ('remote', 1, '2024-01-01T00:00:02.000Z', 'connection refused');
         INSERT INTO failed_notifications (at, channel, event, database, backup_id, error)
             VALUES ('2024-01-01T00:00:03.000Z', 'webhook', 'failure', 'gone', 2, 'HTTP 500');
         INSERT INTO stale_alerts (database, last_success, announced_at)
             VALUES ('gone', NULL, '2024-01-02T00:00:00.000Z');
         INSERT OR REPLACE INTO retention_marks (database, destination, policy, marked_at)
             VALUES ('app', 'local', 'keep_last = 3', '2024-01-03T00:00:00.000Z'),
                    ('app', 'remote', 'keep_days = 30', '2024-01-03T00:00:00.000Z');
         UPDATE backups SET pinned = 1, pin_note = 'before the move' WHERE id = 1;
         INSERT INTO discovered (name, server, database, state, found_at, changed_at, detail)
             VALUES ('pg-shop', 'pg', 'shop', 'known', '2024-01-01T00:00:00.000Z', '2024-01-01T00:00:00.000Z', NULL),
                    ('pg-old', 'pg', 'old', 'gone', '2024-01-01T00:00:00.000Z', '2024-01-04T00:00:00.000Z', 'no longer on the server');
         INSERT INTO server_checks (server, checked_at, error) VALUES ('pg', '2024-01-04T00:00:00.000Z', NULL);
         INSERT INTO leases (resource, holder, host, pid, run, acquired_at, expires_at)
             VALUES ('db:app', 'web-2:4242', 'web-2', 4242, 9, '2024-01-01T00:00:00.000Z', '2024-01-01T00:01:00.000Z');
         INSERT INTO instances (name, host, pid, version, started_at, heartbeat_at)
             VALUES ('web-2', 'web-2', 4242, '0.0.1', '2024-01-01T00:00:00.000Z', '2024-01-01T00:00:30.000Z');",
    )
    .unwrap();
    drop(conn);
    let before = sandbox.list_json();
    assert_eq!(before.len(), 3, "{before:#?}");
    assert!(before.iter().any(|r| r["status"] == "failed"));
    assert_eq!(before[2]["copies"][0]["store"], "remote", "{before:#?}");
    assert_eq!(
        (&before[2]["pinned"], &before[2]["pin_note"]),
        (&Value::Bool(true), &Value::from("before the move")),
        "{before:#?}"
    );

    let url = target.url();
    let run = sandbox.run(&["catalog", "migrate", "--to", &url]);
    run.assert_success();
    for table in [
        "backups",
        "fires",
        "verifications",
        "backup_tables",
        "copies",
        "offsite_failures",
        "failed_notifications",
        "stale_alerts",
        "retention_marks",
        "discovered",
        "users",
        "sessions",
        "api_tokens",
    ] {
        let (in_sqlite, in_pg) = printed_counts(&run.stdout, table);
        let want = sqlite_count(&sandbox, table);
        assert_eq!((in_sqlite, in_pg), (want, want), "{table}\n{run:?}");
        assert_eq!(
            target.scalar(&format!("SELECT count(*) FROM {table}")),
            want.to_string(),
            "{table}"
        );
    }
    assert_eq!(printed_counts(&run.stdout, "backups"), (3, 3));
    assert_eq!(printed_counts(&run.stdout, "sessions"), (1, 1));
    assert_eq!(printed_counts(&run.stdout, "retention_marks"), (2, 2));
    assert_eq!(printed_counts(&run.stdout, "discovered"), (2, 2));
    assert_eq!(
        target.scalar(
            "SELECT state || ' ' || changed_at::text FROM discovered WHERE name = 'pg-old'"
        ),
        "gone 2024-01-04 00:00:00+00"
    );
    assert!(
        run.stdout
            .contains("leases, instances, login_failures, server_checks"),
        "{run:?}"
    );
    assert!(run.stdout.contains(&url), "{run:?}");
    // Live state stays behind.
    assert!(sqlite_count(&sandbox, "login_failures") > 0);
    for table in ["leases", "instances", "login_failures", "server_checks"] {
        assert_eq!(
            target.scalar(&format!("SELECT count(*) FROM {table}")),
            "0",
            "{table}"
        );
    }

    // Again, into what is now not empty: refused, naming the URL, and nothing changes.
    let again = sandbox.run(&["catalog", "migrate", "--to", &url]);
    again.assert_code(2);
    assert!(again.stderr.contains(&url), "{again:?}");
    assert!(again.stderr.contains("not empty"), "{again:?}");
    assert_eq!(target.scalar("SELECT count(*) FROM backups"), "3");

    // The configuration moves to the server: the same rows, the same token, the same session.
    sandbox.write_config(&config(Some(&url), port));
    let after = sandbox.list_json();
    assert_eq!(after, before);
    let refused = sandbox.run(&["catalog", "migrate", "--to", &url]);
    refused.assert_code(2);
    assert!(
        refused.stderr.contains("on PostgreSQL already"),
        "{refused:?}"
    );
    {
        let server = Server::start(&sandbox, port, &[]);
        let api = http_get(port, "/api/v1/backups", Some(&token)).unwrap();
        assert_eq!(api.status, 200, "{}", api.text());
        assert_eq!(api.json("backups"), Value::Array(before.clone()));
        let page = get_with_session(port, "/", &session);
        assert_eq!(page.status, 200, "{}", page.text());
        assert!(server.terminate().success());
    }
    // New rows continue after the old ids (also after the revoked token's).
    sandbox.run(&["backup", "-d", "app"]).assert_success();
    let newest = sandbox.list_json();
    assert_eq!(newest.len(), 4);
    let old_max = before.iter().map(|r| r["id"].as_i64().unwrap()).max();
    assert!(newest[0]["id"].as_i64() > old_max, "{:#}", newest[0]);
    assert_eq!(newest[0]["status"], "success");
    sandbox.run(&["token", "create", "new"]).assert_success();
    assert_eq!(
        target.scalar("SELECT id FROM api_tokens WHERE name = 'new'"),
        "3"
    );
    let listed = sandbox.run(&["token", "list"]);
    assert!(listed.stdout.contains("ci "), "{listed:?}");
}

#[test]
fn migrate_refuses_a_password_in_the_url_an_unreachable_server_and_a_server_catalog() {
    let sandbox = Sandbox::new();
    create_sample_sqlite(&sandbox.path().join("app.db"));
    sandbox.write_config(&config(None, free_port()));
    // Nothing to migrate yet.
    // (A database that is never made: no run here may write anywhere.)
    let never = url_with(&pg_url(), "dbkeep_never_made", None);
    let none = sandbox.run(&["catalog", "migrate", "--to", &never]);
    none.assert_code(2);
    assert!(none.stderr.contains("no SQLite catalog"), "{none:?}");
    sandbox.run(&["backup", "-d", "app"]).assert_success();

    let secret = "Secret-pw-42";
    let with_password = url_with(&pg_url(), "dbkeep_never_made", Some(secret));
    let run = sandbox.run(&["catalog", "migrate", "--to", &with_password]);
    run.assert_code(2);
    assert!(run.stderr.contains("no password in the URL"), "{run:?}");
    assert_absent(&run.all_output(), secret, "the output");

    let run = sandbox.run(&["catalog", "migrate", "--to", "mysql://root@127.0.0.1/x"]);
    run.assert_code(2);
    assert!(run.stderr.contains("postgres://"), "{run:?}");

    let run = sandbox.run(&[
        "catalog",
        "migrate",
        "--to",
        "postgres://nobody@127.0.0.1:1/none",
    ]);
    run.assert_code(2);
    assert!(
        run.stderr.contains("postgres://nobody@127.0.0.1:1/none"),
        "{run:?}"
    );

    let run = sandbox.run(&[
        "catalog",
        "migrate",
        "--to",
        &never,
        "--password-env",
        "DBKEEP_TEST_SURELY_UNSET_VARIABLE",
    ]);
    run.assert_code(2);
    assert!(
        run.stderr.contains("DBKEEP_TEST_SURELY_UNSET_VARIABLE"),
        "{run:?}"
    );
}

#[test]
fn a_failed_migration_leaves_the_target_empty() {
    let target = PgDb::create("migrate_fail");
    let sandbox = Sandbox::new();
    create_sample_sqlite(&sandbox.path().join("app.db"));
    sandbox.write_config(&config(None, free_port()));
    sandbox.run(&["backup", "-d", "app"]).assert_success();
    sandbox.run(&["backup", "-d", "app"]).assert_success();
    // A time PostgreSQL's column cannot take, in a table copied after backups.
    let conn = rusqlite::Connection::open(sandbox.catalog_path()).unwrap();
    conn.execute(
        "INSERT INTO stale_alerts (database, last_success, announced_at) VALUES ('app', NULL, 'yesterday')",
        [],
    )
    .unwrap();
    drop(conn);
    let url = target.url();
    let run = sandbox.run(&["catalog", "migrate", "--to", &url]);
    run.assert_code(2);
    assert!(run.stderr.contains(&url), "{run:?}");
    assert!(
        run.stderr.contains("stale_alerts.announced_at") && run.stderr.contains("yesterday"),
        "{run:?}"
    );
    for table in ["backups", "backup_tables", "stale_alerts"] {
        assert_eq!(
            target.scalar(&format!("SELECT count(*) FROM {table}")),
            "0",
            "{table}"
        );
    }
    // Once the value is fixed, the same target takes it all.
    let conn = rusqlite::Connection::open(sandbox.catalog_path()).unwrap();
    conn.execute(
        "UPDATE stale_alerts SET announced_at = '2024-05-01T10:00:00.000Z'",
        [],
    )
    .unwrap();
    drop(conn);
    let run = sandbox.run(&["catalog", "migrate", "--to", &url]);
    run.assert_success();
    assert_eq!(printed_counts(&run.stdout, "backups"), (2, 2));
    assert_eq!(
        target.scalar("SELECT to_char(announced_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS') FROM stale_alerts"),
        "2024-05-01 10:00:00.000"
    );
}
