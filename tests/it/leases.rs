//! Many instances, one catalog: a database's run held by another instance (here one on another
//! machine, written into the catalog as that instance would) is waited for until its lease
//! expires by the catalog's clock, and its run, once the lease lapsed, is marked failed by the
//! next instance that looks; serving instances heartbeat into the catalog; failed logins count
//! across instances.

use crate::common::*;

/// Writes a lease on `app`'s backups held by an instance of another machine, expiring
/// `seconds` from now (negative: already expired), covering `run`.
fn foreign_lease(sandbox: &Sandbox, seconds: i64, run: Option<i64>) {
    let conn = rusqlite::Connection::open(sandbox.catalog_path()).unwrap();
    conn.execute(
        "INSERT OR REPLACE INTO leases (resource, holder, host, pid, run, acquired_at, expires_at) \
         VALUES ('backup:app', 'web-2:4242', 'web-2', 4242, ?1, \
         strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?2))",
        rusqlite::params![run, format!("{seconds:+} seconds")],
    )
    .unwrap();
}

#[test]
fn a_live_lease_of_another_instance_is_waited_for_and_an_expired_one_taken_over() {
    let sandbox = Sandbox::new();
    create_sample_sqlite(&sandbox.path().join("app.db"));
    sandbox.write_config("[[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n");
    // The catalog exists (and has its tables) once any command ran.
    sandbox.run(&["list"]).assert_success();

    // Another machine's instance is backing up `app` (its run not named yet): refused here.
    foreign_lease(&sandbox, 60, None);
    let run = sandbox.run(&["backup"]);
    assert_ne!(run.code, Some(0), "{run:?}");
    assert!(run.all_output().contains("already running"), "{run:?}");
    assert!(sandbox.rows_for("app").is_empty());

    // Its lease lapsed (by the catalog's clock): the next backup takes over.
    foreign_lease(&sandbox, -1, None);
    sandbox.run(&["backup"]).assert_success();
    assert_eq!(sandbox.rows_for("app")[0]["status"], "success");
    // And gives the lease up when done.
    let conn = rusqlite::Connection::open(sandbox.catalog_path()).unwrap();
    let left: i64 = conn
        .query_row("SELECT count(*) FROM leases", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0);
}

#[test]
fn a_run_whose_instance_stopped_renewing_its_lease_is_marked_failed_naming_it() {
    let sandbox = Sandbox::new();
    create_sample_sqlite(&sandbox.path().join("app.db"));
    sandbox.write_config("[[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n");
    sandbox.run(&["list"]).assert_success();
    // A run of another machine's instance, recorded in progress.
    let conn = rusqlite::Connection::open(sandbox.catalog_path()).unwrap();
    conn.execute(
        "INSERT INTO backups (database, kind, status, trigger, file_name, compression, started_at) \
         VALUES ('app', 'sqlite', 'in_progress', 'scheduled', 'sqlite_backup_20260101_000000.db', 'none', \
         strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
        [],
    )
    .unwrap();
    let id = conn.last_insert_rowid();
    // While its lease holds, it is left alone.
    foreign_lease(&sandbox, 60, Some(id));
    sandbox.run(&["list"]).assert_success();
    assert_eq!(sandbox.rows_for("app")[0]["status"], "in_progress");
    // Once it lapsed, the next command marks it failed, naming the instance.
    foreign_lease(&sandbox, -1, Some(id));
    sandbox.run(&["list"]).assert_success();
    let row = sandbox.rows_for("app")[0].clone();
    let error = assert_failed_row(&row, "app");
    assert!(
        error.contains("instance web-2:4242 stopped renewing its lease"),
        "{error}"
    );
}

#[test]
fn a_long_run_keeps_renewing_its_lease_past_the_timeout() {
    use std::os::unix::fs::PermissionsExt;
    let sandbox = Sandbox::new();
    // A dump tool that takes three times the lease's timeout.
    let slow = sandbox.path().join("slow_pg_dump");
    std::fs::write(
        &slow,
        "#!/bin/sh\necho 'SET x = 1;'\nsleep 3\necho 'SELECT 1;'\n",
    )
    .unwrap();
    std::fs::set_permissions(&slow, std::fs::Permissions::from_mode(0o755)).unwrap();
    sandbox.write_config(&format!(
        "lease_timeout = \"1s\"\npg_dump_path = \"{}\"\n\
         [[databases]]\nname = \"app\"\nurl = \"postgres://nobody@127.0.0.1:1/app\"\n",
        slow.display()
    ));
    let mut first = std::process::Command::new(bin_path())
        .arg("--config")
        .arg(sandbox.config_path())
        .arg("backup")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2000));
    // Past its timeout, the lease still holds: renewed while the run goes on.
    let conn = rusqlite::Connection::open(sandbox.catalog_path()).unwrap();
    let live: bool = conn
        .query_row(
            "SELECT expires_at > strftime('%Y-%m-%dT%H:%M:%fZ', 'now') FROM leases WHERE resource = 'backup:app'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(live);
    let second = sandbox.run(&["backup"]);
    assert!(
        second.all_output().contains("already running"),
        "{second:?}"
    );
    assert!(first.wait().unwrap().success());
    let rows = sandbox.rows_for("app");
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0]["status"], "success");
}

#[test]
fn a_serving_instance_heartbeats_into_the_catalog_and_leaves_when_stopped() {
    let sandbox = Sandbox::new();
    create_sample_sqlite(&sandbox.path().join("app.db"));
    let port = crate::http::free_port();
    sandbox.write_config(&format!(
        "listen = \"127.0.0.1:{port}\"\ninstance_name = \"web-1\"\n\
         [[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\nschedules = [\"0 0 1 1 *\"]\n"
    ));
    let token = sandbox.run(&["token", "create", "t"]).stdout;
    let token = token.lines().last().unwrap().trim().to_string();
    // Another machine's instance that stopped heartbeating an hour ago: listed, not alive.
    let conn = rusqlite::Connection::open(sandbox.catalog_path()).unwrap();
    conn.execute(
        "INSERT INTO instances (name, host, pid, version, started_at, heartbeat_at, running) VALUES \
         ('web-2', 'web-2', 4242, '0.0.1', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-2 hours'), \
         strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 hours'), '[\"app\"]')",
        [],
    )
    .unwrap();
    let server = crate::http::Server::start(
        &sandbox,
        port,
        &[("DBKEEP_ADMIN_PASSWORD", "a long password")],
    );
    // Its first heartbeat goes out as it starts.
    let started = std::time::Instant::now();
    let list = loop {
        let got = crate::http::http_get(port, "/api/v1/instances", Some(&token)).unwrap();
        assert_eq!(got.status, 200, "{}", got.text());
        let list = got.json("instances");
        if list.as_array().unwrap().len() == 2 || started.elapsed().as_secs() > 10 {
            break list;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2, "{list:#?}");
    assert_eq!(list[0]["name"], "web-1");
    assert_eq!(list[0]["alive"], true);
    assert_eq!(list[0]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(list[1]["name"], "web-2");
    assert_eq!(list[1]["alive"], false);
    assert_eq!(list[1]["running"][0], "app");
    let metrics = crate::http::http_get(port, "/metrics", Some(&token))
        .unwrap()
        .text();
    assert!(
        metrics.contains("\ndbkeep_instances_alive 1\n"),
        "{metrics}"
    );
    let anonymous = crate::http::http_get(port, "/api/v1/instances", None).unwrap();
    assert_eq!(anonymous.status, 401);
    // A clean stop takes the instance off the list.
    assert!(server.terminate().success());
    let names: Vec<String> = conn
        .prepare("SELECT name FROM instances ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(names, ["web-2"]);
}

#[test]
fn failed_logins_on_one_instance_lock_the_user_out_on_another() {
    use crate::http::{Server, login_request, send};
    let sandbox = Sandbox::new();
    create_sample_sqlite(&sandbox.path().join("app.db"));
    let (a, b) = (crate::http::free_port(), crate::http::free_port());
    // Two instances, one catalog: each its own configuration file, its own port.
    for (file, port) in [("a.toml", a), ("b.toml", b)] {
        std::fs::write(
            sandbox.path().join(file),
            format!(
                "listen = \"127.0.0.1:{port}\"\ncatalog = \"dbkeep.sqlite3\"\n\
                 [[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\nschedules = [\"0 0 1 1 *\"]\n"
            ),
        )
        .unwrap();
    }
    sandbox.write_config(&std::fs::read_to_string(sandbox.path().join("a.toml")).unwrap());
    let env = [("DBKEEP_ADMIN_PASSWORD", "a long password")];
    let first = Server::start(&sandbox, a, &env);
    sandbox.write_config(&std::fs::read_to_string(sandbox.path().join("b.toml")).unwrap());
    let second = Server::start(&sandbox, b, &env);
    let login = |server: &Server, password: &str| {
        let csrf = server.login_csrf();
        send(
            server.port,
            &login_request(server.port, &csrf, "admin", password, "/"),
        )
        .unwrap()
        .status
    };
    for _ in 0..5 {
        assert_eq!(login(&first, "wrong password"), 401);
    }
    // The other instance never saw these attempts, but the catalog counted them.
    assert_eq!(login(&second, "a long password"), 429);
    assert_eq!(login(&first, "a long password"), 429);
}

#[test]
fn a_fire_claimed_by_an_instance_that_died_before_its_run_is_finished_as_not_started() {
    let sandbox = Sandbox::new();
    create_sample_sqlite(&sandbox.path().join("app.db"));
    sandbox.write_config("[[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n");
    sandbox.run(&["list"]).assert_success();
    let conn = rusqlite::Connection::open(sandbox.catalog_path()).unwrap();
    // Two claimed fires without a run yet: one of an instance still heartbeating, one of an
    // instance last heard of an hour ago.
    conn.execute_batch(
        "INSERT INTO instances (name, host, pid, version, started_at, heartbeat_at) VALUES \
         ('web-1', 'web-1', 1, 'x', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now')), \
         ('web-2', 'web-2', 2, 'x', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-2 hours'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 hours'));
         INSERT INTO fires (database, schedule, planned_at, outcome, claimed_by) VALUES \
         ('app', '0 0 * * *', '2026-11-30T00:00:00.000Z', 'running', 'web-1'), \
         ('app', '0 0 * * *', '2026-12-01T00:00:00.000Z', 'running', 'web-2');",
    )
    .unwrap();
    sandbox.run(&["list"]).assert_success();
    let fires: Vec<(String, String, Option<String>)> = conn
        .prepare("SELECT claimed_by, outcome, detail FROM fires ORDER BY planned_at")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(fires[0].1, "running", "{fires:?}");
    assert_eq!(fires[1].1, "skipped", "{fires:?}");
    assert_eq!(
        fires[1].2.as_deref(),
        Some("could not start: instance web-2 stopped before its run began")
    );
    let schedule = sandbox.run(&["schedule"]);
    assert!(schedule.stdout.contains("not started"), "{schedule:?}");
}
