//! Whole servers: `[[servers]]` entries discover every database of the real PostgreSQL and
//! MariaDB servers (and a folder of SQLite files), back them up, follow databases created and
//! dropped while `dbkeep serve` runs, and keep what a stopped server had.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;
use crate::mysql::try_mariadb;
use crate::notify::{Answer, Receiver};
use crate::service::Serve;

/// Waits until `check` gives a value, for at most `limit`.
#[track_caller]
fn wait_until<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The successful backups per database.
fn successes(sandbox: &Sandbox) -> BTreeMap<String, Vec<Value>> {
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for row in sandbox.list_json() {
        if row["status"] == "success" {
            out.entry(row["database"].as_str().unwrap().to_string())
                .or_default()
                .push(row);
        }
    }
    out
}

/// The events of `kind` the receiver got, by database.
fn events(receiver: &Receiver, kind: &str) -> Vec<String> {
    receiver
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.json())
        .filter(|j| j["event"] == kind)
        .map(|j| j["database"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn time(v: &Value) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc)
}

/// Counts the `pg_dump` sessions on databases named with `prefix`, as often as it can, and
/// keeps the most seen at once.
struct DumpWatch {
    stop: Arc<AtomicBool>,
    most: Arc<AtomicUsize>,
    looks: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DumpWatch {
    fn start(prefix: &str) -> DumpWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let most = Arc::new(AtomicUsize::new(0));
        let looks = Arc::new(AtomicUsize::new(0));
        let (s, m, l) = (Arc::clone(&stop), Arc::clone(&most), Arc::clone(&looks));
        let sql = format!(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_dump' AND datname LIKE '{prefix}%'"
        );
        let url = pg_url();
        let thread = std::thread::spawn(move || {
            let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            while !s.load(Ordering::Relaxed) {
                let n: i64 = client.query_one(sql.as_str(), &[]).unwrap().get(0);
                m.fetch_max(n as usize, Ordering::Relaxed);
                l.fetch_add(1, Ordering::Relaxed);
            }
        });
        DumpWatch {
            stop,
            most,
            looks,
            thread: Some(thread),
        }
    }

    /// The most `pg_dump` sessions seen at once, and how many times it looked.
    fn finish(mut self) -> (usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        (
            self.most.load(Ordering::Relaxed),
            self.looks.load(Ordering::Relaxed),
        )
    }
}

/// Runs `sql` on the PostgreSQL server (its maintenance database).
#[track_caller]
fn pg(sql: &str) {
    psql(&pg_url(), None, sql);
}

/// Drops every database (PostgreSQL and MariaDB) named with `prefix`, when dropped.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let prefix = &self.0;
        if let Ok(names) = try_psql(
            &pg_url(),
            None,
            &format!("SELECT datname FROM pg_database WHERE datname LIKE '{prefix}%'"),
        ) {
            for name in names.lines().map(str::trim).filter(|l| !l.is_empty()) {
                let _ = try_psql(
                    &pg_url(),
                    None,
                    &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
                );
            }
        }
        if let Ok(names) = try_mariadb(
            None,
            &format!(
                "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '{prefix}%'"
            ),
        ) {
            for name in names.lines().map(str::trim).filter(|l| !l.is_empty()) {
                let _ = try_mariadb(None, &format!("DROP DATABASE IF EXISTS `{name}`"));
            }
        }
    }
}

/// Creates PostgreSQL database `name` with one table of `n` rows.
fn pg_tenant(name: &str, n: i32) {
    pg(&format!("CREATE DATABASE \"{name}\""));
    psql(
        &url_with(&pg_url(), name, None),
        None,
        &format!(
            "CREATE TABLE orders (id int PRIMARY KEY, note text); INSERT INTO orders SELECT g, 'order ' || g FROM generate_series(1, {n}) g;"
        ),
    );
}

#[test]
fn every_database_of_two_servers_is_found_backed_up_and_followed_while_serve_runs() {
    require_pg(&pg_url(), None);
    try_mariadb(None, "SELECT 1").expect("MariaDB must answer on the local socket");
    let prefix = unique_name("whole");
    let _cleanup = Cleanup(prefix.clone());
    for i in 0..30 {
        pg_tenant(&format!("{prefix}_t{i:02}"), i + 1);
    }
    pg(&format!("CREATE DATABASE \"{prefix}_skip_pg\""));
    for i in 0..10 {
        let name = format!("{prefix}_m{i:02}");
        try_mariadb(None, &format!("CREATE DATABASE `{name}`")).unwrap();
        try_mariadb(
            Some(&name),
            &format!("CREATE TABLE items (id INT PRIMARY KEY, label VARCHAR(20)); INSERT INTO items VALUES (1, 'x{i}')"),
        )
        .unwrap();
    }
    try_mariadb(None, &format!("CREATE DATABASE `{prefix}_skip_my`")).unwrap();
    let receiver = Receiver::start(Answer::Ok);
    let sandbox = Sandbox::new();
    let pg_server = pg_url().trim_end_matches(|c| c != '/').to_string();
    sandbox.write_config(&format!(
        r#"
verify_schedule = "off"
discover_every = "2s"
[[notify.webhook]]
url = "{hook}"
on = ["failure", "database_found", "database_gone"]

[[servers]]
name = "pg"
url = "{pg_server}"
include = ["{prefix}_*"]
exclude = ["*_skip_*"]
schedules = ["0 0 1 1 *"]

[[servers]]
name = "my"
url = "{my_server}/"
include = ["{prefix}_*"]
exclude = ["*_skip_*"]
schedules = ["0 0 1 1 *"]
"#,
        hook = receiver.url("/hook"),
        my_server = crate::mysql::server_url().trim_end_matches('/'),
    ));

    // What discovery sees, before anything is recorded.
    let seen = sandbox.run(&["discover", "--json"]);
    seen.assert_success();
    let report: Value = serde_json::from_str(&seen.stdout).unwrap();
    let lines = |server: &str| -> Vec<Value> {
        report["servers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["server"] == server)
            .unwrap()["databases"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["database"].as_str().unwrap().starts_with(&prefix))
            .cloned()
            .collect()
    };
    let (pg_lines, my_lines) = (lines("pg"), lines("my"));
    assert_eq!(pg_lines.iter().filter(|l| l["state"] == "new").count(), 30);
    assert_eq!(my_lines.iter().filter(|l| l["state"] == "new").count(), 10);
    for l in pg_lines.iter().chain(&my_lines) {
        if l["database"].as_str().unwrap().contains("_skip_") {
            assert_eq!(l["state"], "excluded", "{l}");
            assert_eq!(l["why"], "matches exclude `*_skip_*`", "{l}");
        }
    }
    assert_eq!(
        pg_lines
            .iter()
            .find(|l| l["database"] == format!("{prefix}_t07"))
            .unwrap()["name"],
        format!("pg-{prefix}_t07")
    );
    // Nothing recorded without --apply: nothing to list or back up yet.
    assert!(sandbox.list_json().is_empty());

    let watch = DumpWatch::start(&prefix);
    let serve = Serve::start(&sandbox, "serve");
    let done = wait_until(Duration::from_secs(240), "40 first backups", || {
        let s = successes(&sandbox);
        (s.len() >= 40).then_some(s)
    });
    let (most, looks) = watch.finish();
    assert!(looks > 20, "the watch looked only {looks} times");
    // Seen running (the watch can see one), never two at once.
    assert_eq!(
        most, 1,
        "{most} pg_dump sessions at most at once against one server (limit 1)"
    );
    assert!(
        !done.keys().any(|k| k.contains("_skip_")),
        "{:?}",
        done.keys()
    );
    // One at a time per server, by the catalog's own times too: each started after the one
    // before it on that server finished.
    for server in ["pg-", "my-"] {
        let mut runs: Vec<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)> = done
            .iter()
            .filter(|(k, _)| k.starts_with(server))
            .flat_map(|(_, rows)| rows.iter())
            .map(|r| (time(&r["started_at"]), time(&r["finished_at"])))
            .collect();
        runs.sort();
        for pair in runs.windows(2) {
            assert!(
                pair[1].0 >= pair[0].1,
                "{server} backups overlapped: {pair:?}"
            );
        }
    }
    let found = wait_until(Duration::from_secs(30), "40 database_found events", || {
        let f = events(&receiver, "database_found");
        (f.len() >= 40).then_some(f)
    });
    assert!(found.contains(&format!("pg-{prefix}_t00")), "{found:?}");
    assert!(found.contains(&format!("my-{prefix}_m09")), "{found:?}");

    // While it runs: one tenant dropped, one created.
    let gone = format!("pg-{prefix}_t05");
    pg(&format!("DROP DATABASE \"{prefix}_t05\" WITH (FORCE)"));
    let created_at = Instant::now();
    pg_tenant(&format!("{prefix}_t30"), 7);
    let new = format!("pg-{prefix}_t30");
    wait_until(
        Duration::from_secs(60),
        "database_gone and database_found",
        || {
            (events(&receiver, "database_gone").contains(&gone)
                && events(&receiver, "database_found").contains(&new))
            .then_some(())
        },
    );
    wait_until(
        Duration::from_secs(60),
        "the new tenant's first backup",
        || successes(&sandbox).contains_key(&new).then_some(()),
    );
    // Within one discovery period (2 s) and the backup's own time, not at the next midnight.
    assert!(
        created_at.elapsed() < Duration::from_secs(30),
        "the first backup took {:?}",
        created_at.elapsed()
    );
    assert_eq!(
        events(&receiver, "database_gone"),
        std::slice::from_ref(&gone),
        "gone once, nothing else"
    );
    drop(serve);

    // The gone tenant: listed, shown as gone (not failing), its backup restorable.
    let status = sandbox.run(&["status", "--json"]);
    let all: Vec<Value> = serde_json::from_str(&status.stdout).unwrap();
    let of = |name: &str| all.iter().find(|d| d["name"] == name).unwrap().clone();
    assert_eq!(of(&gone)["status"], "gone", "{}", of(&gone));
    assert_eq!(of(&gone)["server"], "pg");
    assert_eq!(of(&new)["status"], "protected", "{}", of(&new));
    status.assert_success();
    let rows = sandbox.rows_for(&gone);
    let id = rows
        .iter()
        .find(|r| r["status"] == "success")
        .expect("the gone tenant's backup is still listed")["id"]
        .to_string();
    let target = PgDb::create("whole_back");
    sandbox
        .run(&["restore", &id, "--to", &target.url()])
        .assert_success();
    assert_eq!(target.scalar("SELECT count(*) FROM orders"), "6");
    // A gone database is not backed up (it has nothing to back up) but names why.
    let refused = sandbox.run(&["backup", "-d", &gone]);
    assert_ne!(refused.code, Some(0));
    assert!(
        refused.all_output().contains("is gone on server `pg`"),
        "{}",
        refused.all_output()
    );
    // The MySQL schemas' backups load with the standard client.
    let my = successes(&sandbox);
    assert_eq!(my.keys().filter(|k| k.starts_with("my-")).count(), 10);
}

/// A TCP forwarder on loopback to the PostgreSQL server: stopping it is the server stopping
/// to answer, for this test alone.
struct Proxy {
    port: u16,
    open: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(to: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let open = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (o, c) = (Arc::clone(&open), Arc::clone(&conns));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if !o.load(Ordering::Relaxed) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", to)) else {
                    continue;
                };
                c.lock().unwrap().push(client.try_clone().unwrap());
                let pipe = |mut a: TcpStream, mut b: TcpStream| {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16384];
                        while let Ok(n) = a.read(&mut buf) {
                            if n == 0 || b.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = b.shutdown(Shutdown::Both);
                    });
                };
                pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                pipe(server, client);
            }
        });
        Proxy { port, open, conns }
    }

    /// Refuses every new connection and cuts the open ones.
    fn stop(&self) {
        self.open.store(false, Ordering::Relaxed);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

#[test]
fn a_server_that_stops_answering_keeps_its_databases_and_fails_its_verdict() {
    require_pg(&pg_url(), None);
    let prefix = unique_name("down");
    let _cleanup = Cleanup(prefix.clone());
    pg_tenant(&format!("{prefix}_a"), 3);
    pg_tenant(&format!("{prefix}_b"), 4);
    // A name that cannot be a folder is refused, naming the database.
    pg(&format!("CREATE DATABASE \"{prefix}.x\""));
    let port: u16 = url::Url::parse(&pg_url()).unwrap().port().unwrap_or(5432);
    let proxy = Proxy::start(port);
    let sandbox = Sandbox::new();
    sandbox.write_config(&format!(
        r#"
verify_schedule = "off"
[[servers]]
name = "far"
url = "postgres://postgres@127.0.0.1:{}/"
include = ["{prefix}*"]

[[databases]]
name = "far-{prefix}_b"
url = "sqlite:other.db"
"#,
        proxy.port
    ));
    let applied = sandbox.run(&["discover", "--apply"]);
    applied.assert_success();
    let out = applied.stdout.clone();
    assert!(
        out.contains(&format!("new        {prefix}_a as far-{prefix}_a")),
        "{out}"
    );
    // The [[databases]] entry took the name discovery would give `_b`: refused, both named.
    assert!(
        out.contains(&format!("excluded   {prefix}_b (its name `far-{prefix}_b` is taken by the [[databases]] entry `far-{prefix}_b`")),
        "{out}"
    );
    assert!(
        out.contains(&format!("excluded   {prefix}.x (its name would be `far-{prefix}.x`, which is not a safe folder name")),
        "{out}"
    );
    sandbox.run(&["backup"]).assert_code(1); // other.db does not exist: that entry fails
    assert_eq!(
        successes(&sandbox)
            .get(&format!("far-{prefix}_a"))
            .map(Vec::len),
        Some(1)
    );

    proxy.stop();
    let down = sandbox.run(&["discover", "--apply", "--json"]);
    down.assert_code(1);
    let report: Value = serde_json::from_str(&down.stdout).unwrap();
    let far = &report["servers"][0];
    assert!(
        far["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{far}"
    );
    let a = far["databases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == format!("far-{prefix}_a"))
        .unwrap();
    assert_eq!(a["state"], "unreachable", "{a}");
    assert_eq!(
        a["why"], "the server did not answer; kept as recorded (known)",
        "{a}"
    );
    // Not gone: status still judges it (protected: its backup is fresh), the server fails.
    let status = sandbox.run(&["status"]);
    status.assert_code(1);
    let text = status.stdout.clone();
    let far_line = text
        .lines()
        .find(|l| l.starts_with("far "))
        .expect(&text)
        .to_string();
    assert!(
        far_line.contains("failing") && far_line.contains("did not answer"),
        "{text}"
    );
    let json: Vec<Value> =
        serde_json::from_str(&sandbox.run(&["status", "--json"]).stdout).unwrap();
    let a = json
        .iter()
        .find(|d| d["name"] == format!("far-{prefix}_a"))
        .unwrap();
    assert_eq!(a["status"], "protected", "{a}");
    // The next backup of it fails like any backup against a server that is down, recorded.
    sandbox
        .run(&["backup", "-d", &format!("far-{prefix}_a")])
        .assert_code(1);
}

#[test]
fn a_sqlite_glob_picks_up_a_file_created_later_and_leaves_side_files_alone() {
    let sandbox = Sandbox::new();
    let dir = sandbox.path().join("tenants");
    std::fs::create_dir(&dir).unwrap();
    create_sample_sqlite(&dir.join("alpha.sqlite3"));
    std::fs::write(dir.join("alpha.sqlite3-wal"), b"").unwrap();
    std::fs::write(dir.join("notes.txt"), b"not a database").unwrap();
    let monitor = Receiver::start(Answer::Ok);
    sandbox.write_config(&format!(
        r#"
verify_schedule = "off"
discover_every = "1s"
[notify]
ping_url = "{}"
[[servers]]
name = "lite"
url = "sqlite:tenants/*.sqlite3"
schedules = ["0 0 1 1 *"]
"#,
        monitor.url("/check")
    ));
    let serve = Serve::start(&sandbox, "serve");
    wait_until(Duration::from_secs(60), "alpha's first backup", || {
        successes(&sandbox).contains_key("lite-alpha").then_some(())
    });
    // Made beside the folder and moved in whole: discovery every second must not find it
    // half-written (its first backup would fail, and it is next due in January).
    let made = sandbox.path().join("beta.sqlite3");
    create_sample_sqlite(&made);
    std::fs::rename(&made, dir.join("beta.sqlite3")).unwrap();
    wait_until(
        Duration::from_secs(60),
        "beta, created later, backed up",
        || successes(&sandbox).contains_key("lite-beta").then_some(()),
    );
    // Found databases ping the monitor like configured ones: start and success, each. Heard
    // before serve is killed: a success is recorded before its ping goes out.
    let pings: Vec<String> = monitor.wait_for(4).iter().map(|r| r.path.clone()).collect();
    drop(serve);
    let names: Vec<String> = successes(&sandbox).keys().cloned().collect();
    assert_eq!(names, ["lite-alpha", "lite-beta"]);
    assert_eq!(
        pings.iter().filter(|p| *p == "/check/start").count(),
        2,
        "{pings:?}"
    );
    assert_eq!(
        pings.iter().filter(|p| *p == "/check").count(),
        2,
        "{pings:?}"
    );
    let file = sandbox.rows_for("lite-beta")[0]["path"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(file.contains("/lite-beta/sqlite_backup_"), "{file}");
    let schedule = sandbox.run(&["schedule"]);
    assert!(schedule.stdout.contains("lite-beta"), "{}", schedule.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_overview_and_metrics_show_each_server_and_its_databases() {
    let app = crate::web::App::start_with_databases(
        "discover_every = \"1s\"\nverify_schedule = \"off\"",
        "[[servers]]\nname = \"lite\"\nurl = \"sqlite:tenants/*.sqlite3\"\nschedules = [\"0 0 1 1 *\"]\n",
    )
    .await;
    let auth = app.login().await;
    // The folder is not there yet: the server did not answer.
    let failing = wait_for_page(&app, &auth, "/", |page| {
        page.contains("id=\"server-lite\" data-state=\"failing\"")
    })
    .await;
    assert!(failing.contains("did not answer"), "{failing}");
    let dir = app.sandbox.path().join("tenants");
    std::fs::create_dir(&dir).unwrap();
    create_sample_sqlite(&dir.join("acme.sqlite3"));
    let page = wait_for_page(&app, &auth, "/", |page| {
        page.contains("id=\"server-lite\" data-state=\"ok\"")
            && page.contains("id=\"db-lite-acme\"")
    })
    .await;
    assert!(page.contains("1 known · 0 gone · 0 unreadable"), "{page}");
    assert!(page.contains("SQLite · server lite"), "{page}");
    let metrics = wait_for_page(&app, &auth, "/metrics", |m| {
        m.contains("dbkeep_backup_last_success_timestamp_seconds{database=\"lite-acme\"} 1")
    })
    .await;
    assert!(
        metrics.contains("dbkeep_server_up{server=\"lite\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("dbkeep_server_databases{server=\"lite\",state=\"known\"} 1"),
        "{metrics}"
    );
    // Gone: the file removed, the card grey and not failing, /healthz not counting it.
    std::fs::remove_file(dir.join("acme.sqlite3")).unwrap();
    let page = wait_for_page(&app, &auth, "/", |page| {
        page.contains("id=\"db-lite-acme\" data-state=\"gone\"")
    })
    .await;
    assert!(page.contains("0 known · 1 gone"), "{page}");
    // (`app` and `other`, never backed up here, make it unhealthy: the gone one is not named.)
    let health = app.get("/healthz", &auth).await.text();
    assert!(health.contains("\"app\""), "{health}");
    assert!(!health.contains("lite-acme"), "{health}");
    app.stop().await;
}

/// The page at `path` once `ready` holds for it (at most 60 s).
async fn wait_for_page(
    app: &crate::web::App,
    auth: &crate::web::Auth,
    path: &str,
    ready: impl Fn(&str) -> bool,
) -> String {
    let start = Instant::now();
    loop {
        let page = app.get(path, auth).await.text();
        if ready(&page) {
            return page;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{path} never got ready:\n{page}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A login role of the test server, dropped when dropped (after the databases it may own).
struct Role(String);

impl Drop for Role {
    fn drop(&mut self) {
        let _ = try_psql(
            &pg_url(),
            None,
            &format!("DROP ROLE IF EXISTS \"{}\"", self.0),
        );
    }
}

#[test]
fn a_database_the_user_cannot_connect_to_is_unreadable_with_the_servers_words_not_a_nightly_failure()
 {
    require_pg(&pg_url(), None);
    let _roles = server_roles();
    let prefix = unique_name("perm");
    let role = Role(format!("{prefix}_r"));
    let _cleanup = Cleanup(prefix.clone());
    pg(&format!("CREATE ROLE \"{}\" LOGIN", role.0));
    pg_tenant(&format!("{prefix}_open"), 2);
    psql(
        &url_with(&pg_url(), &format!("{prefix}_open"), None),
        None,
        &format!("GRANT SELECT ON orders TO \"{}\"", role.0),
    );
    pg_tenant(&format!("{prefix}_locked"), 2);
    pg(&format!(
        "REVOKE CONNECT ON DATABASE \"{prefix}_locked\" FROM PUBLIC"
    ));
    let port = url::Url::parse(&pg_url()).unwrap().port().unwrap_or(5432);
    let sandbox = Sandbox::new();
    sandbox.write_config(&format!(
        "verify_schedule = \"off\"\n[[servers]]\nname = \"pg\"\nurl = \"postgres://{}@127.0.0.1:{port}/\"\ninclude = [\"{prefix}_*\"]\n",
        role.0
    ));
    let run = sandbox.run(&["discover", "--apply"]);
    run.assert_success();
    let out = run.stdout.clone();
    assert!(
        out.contains(&format!("new        {prefix}_open as pg-{prefix}_open")),
        "{out}"
    );
    assert!(
        out.contains(&format!("unreadable {prefix}_locked as pg-{prefix}_locked (permission denied for database \"{prefix}_locked\"")),
        "{out}"
    );
    assert!(
        out.contains("is neither a superuser nor a member of pg_read_all_data"),
        "{out}"
    );
    // Everything backs up but the one it cannot read, which is not attempted at all.
    sandbox.run(&["backup"]).assert_success();
    assert!(successes(&sandbox).contains_key(&format!("pg-{prefix}_open")));
    assert!(sandbox.rows_for(&format!("pg-{prefix}_locked")).is_empty());
    // It shows as failing, with the server's words, and so does its server.
    let status = sandbox.run(&["status", "--json"]);
    status.assert_code(1);
    let all: Vec<Value> = serde_json::from_str(&status.stdout).unwrap();
    let locked = all
        .iter()
        .find(|d| d["name"] == format!("pg-{prefix}_locked"))
        .unwrap();
    assert_eq!(locked["status"], "failing", "{locked}");
    let reason = locked["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("unreadable on server `pg`, not backed up: permission denied"),
        "{reason}"
    );
}

#[test]
fn a_server_s_roles_are_stored_once_per_run_and_restore_with_any_of_its_databases() {
    require_pg(&pg_url(), None);
    let _roles = server_roles();
    let prefix = unique_name("globals");
    let role = Role(format!("{prefix}_owner"));
    let _cleanup = Cleanup(prefix.clone());
    pg(&format!("CREATE ROLE \"{}\" NOLOGIN", role.0));
    for i in 0..3 {
        pg_tenant(&format!("{prefix}_t{i}"), 5);
    }
    let last = url_with(&pg_url(), &format!("{prefix}_t2"), None);
    psql(
        &last,
        None,
        &format!("ALTER TABLE orders OWNER TO \"{}\"", role.0),
    );
    let sandbox = Sandbox::new();
    sandbox.write_config(&format!(
        "verify_schedule = \"off\"\ntimezone = \"UTC\"\n[[servers]]\nname = \"pg\"\nurl = \"{}\"\ninclude = [\"{prefix}_*\"]\nglobals = true\nschedules = [\"0 0 1 1 *\"]\n",
        pg_url().trim_end_matches(|c| c != '/')
    ));
    sandbox.run(&["backup"]).assert_success();
    sandbox.run(&["backup"]).assert_success();
    // Six backups of one run of the server: its roles stored once, beside the first.
    let rows = sandbox.list_json();
    assert_eq!(rows.iter().filter(|r| r["status"] == "success").count(), 6);
    let roles: Vec<_> = files_below(&sandbox.backup_dir())
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".globals.sql"))
        .collect();
    assert_eq!(roles.len(), 1, "{roles:?}");
    assert!(
        roles[0]
            .to_string_lossy()
            .contains(&format!("/pg-{prefix}_t0/")),
        "{roles:?}"
    );
    // The role gone from the server, the last tenant's newest backup brings it back from the
    // roles stored with another database's backup.
    psql(&last, None, "ALTER TABLE orders OWNER TO postgres");
    pg(&format!("DROP ROLE \"{}\"", role.0));
    let id = sandbox.rows_for(&format!("pg-{prefix}_t2"))[0]["id"].to_string();
    let target = PgDb::create("globals_back");
    let restored = sandbox.run(&["restore", &id, "--to", &target.url(), "--with-globals"]);
    restored.assert_success();
    assert_eq!(
        target.scalar("SELECT tableowner FROM pg_tables WHERE tablename = 'orders'"),
        role.0
    );
    assert_eq!(target.scalar("SELECT count(*) FROM orders"), "5");
}

#[test]
fn two_instances_on_one_catalog_announce_and_back_up_each_found_database_once_one_dump_at_a_time() {
    require_pg(&pg_url(), None);
    let prefix = unique_name("pair");
    let _cleanup = Cleanup(prefix.clone());
    for i in 0..8 {
        pg_tenant(&format!("{prefix}_t{i}"), 50);
    }
    let catalog = PgDb::create("pair_catalog");
    let receiver = Receiver::start(Answer::Ok);
    let instance = |name: &str| {
        let sandbox = Sandbox::new();
        sandbox.write_config(&format!(
            r#"
instance_name = "{name}"
catalog = "{catalog}"
listen = "127.0.0.1:{port}"
verify_schedule = "off"
discover_every = "1s"
[[notify.webhook]]
url = "{hook}"
on = ["database_found", "database_gone"]
[[servers]]
name = "pg"
url = "{server}"
include = ["{prefix}_*"]
schedules = ["0 0 1 1 *"]
"#,
            catalog = catalog.url(),
            port = crate::http::free_port(),
            hook = receiver.url("/hook"),
            server = pg_url().trim_end_matches(|c| c != '/'),
        ));
        sandbox
    };
    let (a, b) = (instance("a"), instance("b"));
    let watch = DumpWatch::start(&prefix);
    let serve_a = Serve::start(&a, "serve");
    let serve_b = Serve::start(&b, "serve");
    wait_until(Duration::from_secs(120), "8 first backups", || {
        (successes(&a).len() >= 8).then_some(())
    });
    pg_tenant(&format!("{prefix}_t8"), 50);
    let late = format!("pg-{prefix}_t8");
    wait_until(
        Duration::from_secs(60),
        "the late tenant's first backup",
        || successes(&a).contains_key(&late).then_some(()),
    );
    // Both instances keep discovering for a while: nothing is announced or backed up twice.
    std::thread::sleep(Duration::from_secs(4));
    drop((serve_a, serve_b));
    let (most, looks) = watch.finish();
    assert!(looks > 20, "the watch looked only {looks} times");
    assert_eq!(
        most, 1,
        "{most} dumps at once against one server across two instances"
    );
    let found = events(&receiver, "database_found");
    assert_eq!(
        found.len(),
        9,
        "each found database announced once: {found:?}"
    );
    let all = successes(&a);
    assert_eq!(all.len(), 9);
    for (name, rows) in &all {
        assert_eq!(rows.len(), 1, "{name} backed up {} times", rows.len());
    }
}

#[test]
fn a_mysql_user_without_the_dump_privileges_is_warned_and_sees_only_its_schemas() {
    try_mariadb(None, "SELECT 1").expect("MariaDB must answer on the local socket");
    let prefix = unique_name("mylim");
    let _cleanup = Cleanup(prefix.clone());
    let user = format!("{prefix}_u");
    for name in ["a", "b"] {
        try_mariadb(None, &format!("CREATE DATABASE `{prefix}_{name}`")).unwrap();
    }
    try_mariadb(
        None,
        &format!("CREATE USER '{user}'@'%'; GRANT SELECT ON `{prefix}_a`.* TO '{user}'@'%'"),
    )
    .unwrap();
    struct User(String);
    impl Drop for User {
        fn drop(&mut self) {
            let _ = try_mariadb(None, &format!("DROP USER IF EXISTS '{}'@'%'", self.0));
        }
    }
    let _user = User(user.clone());
    let server = url::Url::parse(&crate::mysql::server_url()).unwrap();
    let sandbox = Sandbox::new();
    sandbox.write_config(&format!(
        "[[servers]]\nname = \"my\"\nurl = \"mysql://{user}@{}:{}/\"\ninclude = [\"{prefix}_*\"]\n",
        server.host_str().unwrap(),
        server.port().unwrap_or(3306)
    ));
    let run = sandbox.run(&["discover", "--json"]);
    run.assert_success();
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let my = &report["servers"][0];
    assert_eq!(
        my["warning"],
        "the user lacks SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES, PROCESS on *.*: a schema it cannot read fully fails its backup; GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES, PROCESS ON *.* TO the user",
        "{my}"
    );
    let names: Vec<&str> = my["databases"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [format!("my-{prefix}_a")],
        "MySQL shows a user only its schemas"
    );
}
