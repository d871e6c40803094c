//! Point-in-time recovery watched by `dbkeep serve`: the overview's RPO under load, the
//! metrics, and a stalled archiver announced.

use std::time::Duration;

use super::cluster::{self, Cluster, dbkeep, free_port};
use super::config_with;
use crate::common::Sandbox;

/// The overview's RPO of server `pg`, in seconds, and its state.
fn overview_rpo(web_port: u16, token: &str) -> (Option<u64>, String) {
    let page = crate::http::http_get(web_port, "/", Some(token))
        .unwrap()
        .text();
    let Some(at) = page.find("id=\"pitr-pg\"") else {
        panic!("no point-in-time box for pg: {page}");
    };
    let tag = &page[at..at + page[at..].find('>').unwrap()];
    let attr = |name: &str| {
        tag.split(&format!("{name}=\""))
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .map(str::to_string)
    };
    (
        attr("data-rpo").and_then(|s| s.parse().ok()),
        attr("data-state").unwrap_or_default(),
    )
}

#[test]
fn the_overview_keeps_the_rpo_under_a_minute_under_load_and_a_stalled_archiver_is_announced() {
    use crate::notify::{Answer, Receiver};
    let hooks = Receiver::start(Answer::Ok);
    // A PostgreSQL catalog: `dbkeep serve` (this user) and `wal push` (the cluster's) share it.
    let catalog = crate::common::PgDb::create("pitr_catalog");
    let sandbox = Sandbox::new();
    let (port, web_port) = (free_port(), free_port());
    config_with(
        &sandbox,
        &format!(
            "catalog = \"{}\"\nlisten = \"127.0.0.1:{web_port}\"",
            catalog.url()
        ),
        port,
        "wal_stalled_after = \"45s\"",
        &format!(
            "[[notify.webhook]]\nurl = \"{}\"\non = [\"wal_archive_stalled\", \"wal_archive_failing\"]\n",
            hooks.url("/hook")
        ),
    );
    let cluster = Cluster::start(&sandbox, port, "30s");
    cluster.sql("CREATE TABLE marks (n int PRIMARY KEY)");
    cluster.pgbench(&["-i", "-s", "1", "-q"]);
    dbkeep(&sandbox, &["backup", "--server", "pg"]).assert_success();
    let token = dbkeep(&sandbox, &["token", "create", "pitr"]).stdout;
    let token = token.lines().last().unwrap().trim().to_string();
    let server = crate::http::Server::start(&sandbox, web_port, &[]);

    // A steady, light load: segments fill slowly, so archive_timeout is what archives them.
    let load = {
        let port = cluster.port;
        std::thread::spawn(move || {
            std::process::Command::new(cluster::pg_bin().join("pgbench"))
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
                .args(["-T", "75", "-R", "20", "-c", "2", "postgres"])
                .output()
                .unwrap()
        })
    };
    let started = std::time::Instant::now();
    let mut worst = 0;
    let mut samples = 0;
    while !load.is_finished() {
        std::thread::sleep(Duration::from_secs(3));
        if started.elapsed() < Duration::from_secs(35) {
            continue; // The first archive_timeout after the base backup.
        }
        let (rpo, state) = overview_rpo(web_port, &token);
        let rpo = rpo.unwrap_or_else(|| panic!("no RPO on the overview ({state})"));
        assert_eq!(state, "archiving", "RPO {rpo} s");
        worst = worst.max(rpo);
        samples += 1;
        assert!(rpo < 60, "the overview's RPO reached {rpo} s under load");
    }
    let load = load.join().unwrap();
    assert!(load.status.success(), "{load:?}");
    assert!(samples >= 10, "{samples} samples");
    let metrics = crate::http::http_get(web_port, "/metrics", Some(&token))
        .unwrap()
        .text();
    assert!(
        metrics.contains("dbkeep_wal_last_archived_timestamp_seconds{server=\"pg\"} "),
        "{metrics}"
    );
    let recoverable: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("dbkeep_pitr_recoverable_seconds{server=\"pg\"} "))
        .unwrap_or_else(|| panic!("{metrics}"))
        .parse()
        .unwrap();
    assert!(
        recoverable >= 30,
        "{recoverable} s recoverable after a 75 s load"
    );

    // The archiver stops (no archive_command) while the server writes on.
    cluster.sql("ALTER SYSTEM SET archive_command = ''");
    cluster.sql("SELECT pg_reload_conf()");
    std::thread::sleep(Duration::from_secs(1));
    cluster.pgbench(&["-i", "-s", "3", "-q"]);
    let started = std::time::Instant::now();
    let stalled = loop {
        let seen = hooks.seen.lock().unwrap().clone();
        if let Some(r) = seen
            .iter()
            .find(|r| r.json()["event"] == "wal_archive_stalled")
        {
            break r.json();
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "no wal_archive_stalled within 90 s: {seen:?}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(stalled["database"], "pg", "{stalled}");
    assert!(
        stalled["error"]
            .as_str()
            .unwrap()
            .contains("no WAL archived for"),
        "{stalled}"
    );
    let status = dbkeep(&sandbox, &["status"]);
    status.assert_code(1);
    assert!(status.stdout.contains("POINT-IN-TIME"), "{status:?}");
    assert!(status.stdout.contains("no WAL archived for"), "{status:?}");
    let (_, state) = overview_rpo(web_port, &token);
    assert_eq!(state, "no recent WAL");
    let (level, detail) = super::doctor_finding(&sandbox, "archiving");
    assert_eq!(level, "fail", "{detail}");
    drop(server);
    drop(cluster);
}
