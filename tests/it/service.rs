//! `dbkeep serve`: scheduled backups, overlap, timeouts, graceful shutdown, and several
//! processes sharing one catalog. Each test runs the real binary for a few seconds.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// A running `dbkeep serve`, stopped with SIGTERM (killed when dropped).
pub(crate) struct Serve {
    child: Child,
    log: PathBuf,
}

impl Serve {
    pub(crate) fn start(sandbox: &Sandbox, name: &str) -> Self {
        let log = sandbox.path().join(format!("{name}.log"));
        let mut cmd = Command::new(bin_path());
        cmd.current_dir(sandbox.path())
            .arg("--config")
            .arg(sandbox.config_path())
            .arg("serve")
            .env("RUST_LOG", "dbkeep=debug")
            .stdin(Stdio::null())
            .stdout(fs::File::create(sandbox.path().join(format!("{name}.out"))).unwrap())
            .stderr(fs::File::create(&log).unwrap());
        for var in SCRUBBED_ENV {
            cmd.env_remove(var);
        }
        Serve {
            child: cmd.spawn().expect("start dbkeep serve"),
            log,
        }
    }

    /// Sends SIGTERM and returns the exit code and how long the process took to exit.
    fn terminate(mut self) -> (Option<i32>, Duration, String) {
        let sent = Instant::now();
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let log = fs::read_to_string(&self.log).unwrap_or_default();
                return (status.code(), sent.elapsed(), log);
            }
            if sent.elapsed() > Duration::from_secs(60) {
                let _ = self.child.kill();
                panic!("dbkeep serve did not exit within 60 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `pg_dump` stand-in script (for slow or hung dumps) at `path`.
fn script(path: &Path, body: &str) -> String {
    fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

/// Waits until `check` holds, for at most `limit`.
fn wait_for(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One row of the job history: (database, planned_at, outcome, backup_id, detail).
type Fire = (String, String, String, Option<i64>, Option<String>);

/// The job history, oldest planned first.
fn fires(sandbox: &Sandbox) -> Vec<Fire> {
    // Read-only and never created: the service creates and migrates the catalog itself.
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
    let Ok(conn) = rusqlite::Connection::open_with_flags(sandbox.catalog_path(), flags) else {
        return Vec::new();
    };
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    let Ok(mut stmt) =
        conn.prepare("SELECT database, planned_at, outcome, backup_id, detail FROM fires ORDER BY planned_at, database")
    else {
        return Vec::new(); // Not migrated yet.
    };
    stmt.query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

#[test]
fn serve_backs_up_sqlite_and_postgres_on_schedule_and_stops_on_sigterm() {
    let sandbox = Sandbox::new();
    create_sample_sqlite(&sandbox.path().join("app.db"));
    let pg = PgDb::create("serve");
    pg.psql("CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 1000) g;");
    sandbox.write_config(&format!(
        "timezone = \"UTC\"\nlisten = \"127.0.0.1:0\"\n\
         [[databases]]\nname = \"lite\"\nurl = \"sqlite:app.db\"\nschedules = [\"*/2 * * * * *\"]\n\
         [[databases]]\nname = \"pg\"\nurl = \"{}\"\nschedules = [\"*/2 * * * * *\"]\n",
        pg.url()
    ));
    let serve = Serve::start(&sandbox, "serve");
    std::thread::sleep(Duration::from_secs(7));
    let (code, took, log) = serve.terminate();
    assert_eq!(code, Some(0), "log:\n{log}");
    assert!(took < Duration::from_secs(10), "took {took:?} to stop");
    assert!(
        log.contains("scheduled") && log.contains("*/2 * * * * *"),
        "start-up summary missing:\n{log}"
    );

    for db in ["lite", "pg"] {
        let rows = sandbox.rows_for(db);
        let good: Vec<_> = rows
            .iter()
            .filter(|r| r["trigger"] == "scheduled" && r["status"] == "success")
            .collect();
        assert!(
            good.len() >= 2,
            "{db}: {} scheduled successes in 7 s:\n{rows:#?}",
            good.len()
        );
        assert!(
            rows.iter().all(|r| r["status"] != "in_progress"),
            "{db}: {rows:#?}"
        );
    }
    let history = fires(&sandbox);
    assert!(
        history.iter().filter(|f| f.2 == "ran").count() >= 4,
        "{history:#?}"
    );
    let schedule = sandbox.run(&["schedule"]);
    schedule.assert_success();
    assert!(
        schedule.stdout.contains("*/2 * * * * *") && schedule.stdout.contains("success (backup #"),
        "{schedule:?}"
    );
    assert!(schedule.stdout.contains("time zone: UTC"), "{schedule:?}");
}

#[test]
fn overlapping_fires_are_skipped_and_shutdown_cancels_a_running_backup() {
    let sandbox = Sandbox::new();
    let pg = PgDb::create("slow");
    pg.psql("CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 5000) g;");
    // A real dump that trickles out, one line every 50 ms: far slower than the schedule.
    let slow = script(
        &sandbox.path().join("slow_pg_dump"),
        "pg_dump \"$@\" | while IFS= read -r line; do printf '%s\\n' \"$line\"; sleep 0.05; done",
    );
    sandbox.write_config(&format!(
        "timezone = \"UTC\"\nlisten = \"127.0.0.1:0\"\nshutdown_grace = \"1s\"\npg_dump_path = \"{slow}\"\n\
         [[databases]]\nname = \"pg\"\nurl = \"{}\"\nschedules = [\"* * * * * *\"]\n",
        pg.url()
    ));
    let serve = Serve::start(&sandbox, "serve");
    wait_for(Duration::from_secs(20), "two skipped fires", || {
        fires(&sandbox).iter().filter(|f| f.2 == "skipped").count() >= 2
    });
    assert!(
        !file_names(&sandbox.db_dir("pg")).is_empty(),
        "no temporary file while dumping"
    );
    let (code, took, log) = serve.terminate();
    assert_eq!(code, Some(0), "log:\n{log}");
    assert!(
        took < Duration::from_secs(8),
        "grace is 1 s, yet stopping took {took:?}:\n{log}"
    );

    let history = fires(&sandbox);
    let skipped: Vec<_> = history.iter().filter(|f| f.2 == "skipped").collect();
    assert!(
        skipped
            .iter()
            .all(|f| f.4.as_deref()
                == Some("the previous backup of this database was still running")),
        "{history:#?}"
    );
    let rows = sandbox.rows_for("pg");
    assert_eq!(
        rows.len(),
        1,
        "one backup ran, the rest were skipped: {rows:#?}"
    );
    let error = assert_failed_row(&rows[0], "pg");
    assert_eq!(error, "cancelled: shutdown");
    assert_eq!(
        file_names(&sandbox.db_dir("pg")),
        Vec::<String>::new(),
        "stray files after cancel"
    );
    let ran: Vec<_> = history.iter().filter(|f| f.2 == "ran").collect();
    assert_eq!(ran.len(), 1, "{history:#?}");
    assert_eq!(ran[0].3, rows[0]["id"].as_i64());
}

#[test]
fn stalled_and_overlong_backups_are_stopped_with_the_reason() {
    let sandbox = Sandbox::new();
    let (stalls, endless) = (PgDb::create("stalls"), PgDb::create("endless"));
    // One pg_dump stand-in for both (pg_dump_path is global), told apart by the database name:
    // one says a line and then hangs (its child `sleep` holding the pipe open), the other
    // never stops talking.
    let fake = script(
        &sandbox.path().join("fake_pg_dump"),
        "case \"$*\" in\n  *stalls*) echo '-- dump begins'; sleep 600 ;;\n  *) while :; do echo '-- still dumping'; sleep 0.1; done ;;\nesac",
    );
    sandbox.write_config(&format!(
        "timezone = \"UTC\"\nlisten = \"127.0.0.1:0\"\nstall_timeout = \"1s\"\nbackup_timeout = \"3s\"\nshutdown_grace = \"1s\"\npg_dump_path = \"{fake}\"\n\
         [[databases]]\nname = \"stalls\"\nurl = \"{}\"\nschedules = [\"* * * * * *\"]\n\
         [[databases]]\nname = \"endless\"\nurl = \"{}\"\nschedules = [\"* * * * * *\"]\n",
        stalls.url(),
        endless.url()
    ));
    let serve = Serve::start(&sandbox, "serve");
    let failed = |db: &str| -> Vec<String> {
        sandbox
            .rows_for(db)
            .iter()
            .filter(|r| r["status"] == "failed")
            .map(|r| r["error"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    wait_for(
        Duration::from_secs(30),
        "both backups to be stopped",
        || !failed("stalls").is_empty() && !failed("endless").is_empty(),
    );
    let (code, _, log) = serve.terminate();
    assert_eq!(code, Some(0), "log:\n{log}");
    let stalled = failed("stalls");
    assert_eq!(
        stalled.last().map(String::as_str),
        Some("stalled: no data for stall_timeout = 1s"),
        "{stalled:?}"
    );
    let timed_out = failed("endless");
    assert_eq!(
        timed_out.last().map(String::as_str),
        Some("timed out: still running after backup_timeout = 3s"),
        "{timed_out:?}"
    );
    for db in ["stalls", "endless"] {
        assert!(
            sandbox.rows_for(db).iter().all(|r| r["status"] == "failed"),
            "{db}"
        );
        assert_eq!(
            file_names(&sandbox.db_dir(db)),
            Vec::<String>::new(),
            "{db}: stray files"
        );
    }
    // The hung stand-in's `sleep` was killed with it.
    let orphans = Command::new("pgrep")
        .args(["-f", "sleep 600"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&orphans.stdout).trim().is_empty(),
        "left a child running"
    );
}

#[test]
fn two_serve_processes_on_one_catalog_run_every_fire_exactly_once() {
    let sandbox = Sandbox::new();
    create_sample_sqlite(&sandbox.path().join("app.db"));
    sandbox.write_config(
        "timezone = \"UTC\"\nlisten = \"127.0.0.1:0\"\n[[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\nschedules = [\"* * * * * *\"]\n",
    );
    let (a, b) = (Serve::start(&sandbox, "a"), Serve::start(&sandbox, "b"));
    std::thread::sleep(Duration::from_secs(10));
    let (code_a, _, log_a) = a.terminate();
    let (code_b, _, log_b) = b.terminate();
    assert_eq!(
        (code_a, code_b),
        (Some(0), Some(0)),
        "logs:\n{log_a}\n{log_b}"
    );

    let history = fires(&sandbox);
    assert!(history.len() >= 8, "{history:#?}");
    // One row per planned second, every second from the first to the last, each one run.
    let seconds: Vec<i64> = history
        .iter()
        .map(|f| {
            chrono::DateTime::parse_from_rfc3339(&f.1)
                .unwrap()
                .timestamp()
        })
        .collect();
    let expected: Vec<i64> = (seconds[0]..=seconds[seconds.len() - 1]).collect();
    assert_eq!(
        seconds, expected,
        "a fire is missing or doubled: {history:#?}"
    );
    assert!(
        history.iter().all(|f| f.2 == "ran" || f.2 == "skipped"),
        "{history:#?}"
    );
    let ran: Vec<i64> = history.iter().filter_map(|f| f.3).collect();
    let scheduled: Vec<i64> = sandbox
        .rows_for("app")
        .iter()
        .filter(|r| r["trigger"] == "scheduled")
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        ran.len(),
        scheduled.len(),
        "every scheduled backup belongs to exactly one fire"
    );
    let mut sorted = scheduled.clone();
    sorted.sort();
    let mut ran_sorted = ran.clone();
    ran_sorted.sort();
    assert_eq!(ran_sorted, sorted);
}

#[test]
fn a_fire_whose_process_was_killed_shows_its_backup_failed_not_running() {
    let sandbox = Sandbox::new();
    // A pg_dump stand-in that writes a little and hangs, noting its pid.
    let pid_file = sandbox.path().join("dump.pid");
    let hang = script(
        &sandbox.path().join("pg_dump"),
        &format!(
            "echo $$ > '{}'\necho '-- started'\nexec sleep 300",
            pid_file.display()
        ),
    );
    // One fire, three seconds from now, so that it is the schedule's last one.
    let at = chrono::Utc::now() + chrono::Duration::seconds(3);
    let cron = at.format("%-S %-M %-H %-d %-m *").to_string();
    sandbox.write_config(&format!(
        "timezone = \"UTC\"\nlisten = \"127.0.0.1:0\"\npg_dump_path = \"{hang}\"\n\
         [[databases]]\nname = \"pg\"\nurl = \"postgres://nobody@127.0.0.1:1/none\"\nschedules = [\"{cron}\"]\n"
    ));
    let mut serve = Serve::start(&sandbox, "serve");
    wait_for(
        Duration::from_secs(20),
        "the fire linked to its backup",
        || {
            fires(&sandbox)
                .iter()
                .any(|f| f.2 == "running" && f.3.is_some())
        },
    );
    serve.child.kill().unwrap();
    serve.child.wait().unwrap();
    if let Ok(pid) = fs::read_to_string(&pid_file) {
        let _ = Command::new("kill").args(["-KILL", pid.trim()]).status();
    }
    // The next command marks the dead run's backup failed; the fire then says so.
    let schedule = sandbox.run(&["schedule"]);
    schedule.assert_success();
    let row = &sandbox.rows_for("pg")[0];
    let error = assert_failed_row(row, "pg");
    assert!(error.starts_with("interrupted"), "{error}");
    assert!(
        schedule
            .stdout
            .contains(&format!("last: failed (backup #{})", row["id"])),
        "{schedule:?}"
    );
}
