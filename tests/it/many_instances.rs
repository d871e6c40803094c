//! Several instances, one catalog, one object store: three `dbkeep serve` processes (each
//! with its own backup folder, standing for three machines) on one PostgreSQL catalog and one
//! S3-compatible store (moto). Every fire runs once, never two backups of a database at once;
//! a killed instance's run is marked failed by another, which takes the next fire; any
//! instance serves any backup; sessions and the login throttle hold across instances.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::common::*;
use crate::http::{http_get, login_request, send};

const PASSWORD: &str = "a long password";

/// One instance: its configuration file (its own backup folder and port) and process.
struct Instance {
    name: String,
    port: u16,
    config: PathBuf,
    process: Option<Running>,
}

impl Instance {
    fn new(dir: &Path, name: &str, shared: &str) -> Instance {
        let port = crate::http::free_port();
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!(
                "instance_name = \"{name}\"\nlisten = \"127.0.0.1:{port}\"\nbackup_dir = \"{name}-backups\"\n{shared}"
            ),
        )
        .unwrap();
        Instance {
            name: name.to_string(),
            port,
            config,
            process: None,
        }
    }

    fn start(&mut self, env: &[(&str, &str)]) {
        let mut cmd = Command::new(bin_path());
        cmd.arg("--config").arg(&self.config).arg("serve");
        for var in SCRUBBED_ENV {
            cmd.env_remove(var);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        self.process = Some(spawn_listening(&mut cmd, self.port, &self.name));
    }

    /// SIGTERM, and wait.
    fn stop(&mut self) {
        if let Some(mut p) = self.process.take() {
            let _ = p.terminate();
        }
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = assert_cmd::Command::new(bin_path());
        cmd.arg("--config").arg(&self.config).args(args);
        for var in SCRUBBED_ENV {
            cmd.env_remove(var);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        run_cmd(&mut cmd)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.stop();
    }
}

/// (id, database, started_at, finished_at, status, instance) of every backup.
type Row = (
    i64,
    String,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    String,
    Option<String>,
);

fn backups(catalog: &PgDb) -> Vec<Row> {
    catalog
        .psql(
            "SELECT id, database, to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), \
             coalesce(to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), ''), \
             status, coalesce(instance, '') FROM backups ORDER BY id",
        )
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            let time = |s: &str| s.parse::<DateTime<Utc>>().ok();
            (
                f[0].parse().unwrap(),
                f[1].to_string(),
                time(f[2]).unwrap(),
                time(f[3]),
                f[4].to_string(),
                Some(f[5].to_string()).filter(|s| !s.is_empty()),
            )
        })
        .collect()
}

#[test]
fn three_instances_run_every_fire_once_serve_every_backup_and_share_logins() {
    let catalog = PgDb::create("many_catalog");
    let s3 = crate::offsite::S3::start("dbkeep-many");
    let sandbox = Sandbox::new();
    create_sample_sqlite(&sandbox.path().join("app.db"));
    let shared = format!(
        "catalog = \"{}\"\ntimezone = \"UTC\"\nlease_timeout = \"3s\"\n\
         [[offsite]]\nname = \"s3\"\nurl = \"s3://dbkeep-many/backups\"\nendpoint = \"http://127.0.0.1:{}\"\nregion = \"us-east-1\"\n\
         [[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\nschedules = [\"*/2 * * * * *\"]\n",
        catalog.url(),
        s3.port
    );
    let env = [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("DBKEEP_ADMIN_PASSWORD", PASSWORD),
    ];
    let mut instances: Vec<Instance> = ["i1", "i2", "i3"]
        .iter()
        .map(|n| Instance::new(sandbox.path(), n, &shared))
        .collect();
    for i in &mut instances {
        i.start(&env);
    }
    std::thread::sleep(Duration::from_secs(30));
    for i in &mut instances {
        i.stop();
    }

    // Fire by fire: each that ran has its one backup, and no other backup exists.
    let fires: Vec<(String, Option<i64>)> = catalog
        .psql("SELECT outcome, backup_id FROM fires WHERE schedule = '*/2 * * * * *' ORDER BY planned_at")
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (o, b) = l.split_once('|').unwrap();
            (o.to_string(), b.parse().ok())
        })
        .collect();
    let ran: Vec<i64> = fires
        .iter()
        .filter(|(o, _)| o == "ran")
        .filter_map(|(_, b)| *b)
        .collect();
    assert!(ran.len() >= 5, "{fires:?}");
    let rows = backups(&catalog);
    let mut ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    ids.sort_unstable();
    let mut ran_sorted = ran.clone();
    ran_sorted.sort_unstable();
    assert_eq!(ids, ran_sorted, "one backup per fire, and none without one");
    assert!(rows.iter().all(|r| r.4 == "success"), "{rows:?}");
    // Never two backups of the database at once.
    for pair in rows.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(
            a.3.is_some_and(|end| end <= b.2),
            "backups #{} and #{} overlap: {pair:?}",
            a.0,
            b.0
        );
    }
    // The work was shared: more than one instance made backups.
    let makers: std::collections::BTreeSet<_> = rows.iter().filter_map(|r| r.5.clone()).collect();
    assert!(makers.len() >= 2, "{makers:?}");

    // Any instance serves any backup: one made by i1 downloads from the others (from the
    // off-site copy: their own disks do not hold it) with the same SHA-256.
    for i in &mut instances {
        i.start(&env);
    }
    let token = instances[0].run(&["token", "create", "t"], &env).stdout;
    let token = token.lines().last().unwrap().trim().to_string();
    let made = rows
        .iter()
        .find(|r| r.5.as_deref() == Some("i1"))
        .unwrap_or(&rows[0]);
    let sha = catalog.scalar(&format!("SELECT sha256 FROM backups WHERE id = {}", made.0));
    for i in &instances {
        let got = http_get(
            i.port,
            &format!("/api/v1/backups/{}/download", made.0),
            Some(&token),
        )
        .unwrap();
        assert_eq!(got.status, 200, "{}: {}", i.name, got.text());
        assert_eq!(
            got.header("x-backup-sha256"),
            Some(sha.as_str()),
            "{}",
            i.name
        );
        assert_eq!(sha256_hex(&got.body), sha, "{}", i.name);
    }

    // A session started on one instance is valid on another.
    let csrf = http_get(instances[0].port, "/login", None)
        .unwrap()
        .cookie("dbkeep_login_csrf")
        .unwrap();
    let login = send(
        instances[0].port,
        &login_request(instances[0].port, &csrf, "admin", PASSWORD, "/"),
    )
    .unwrap();
    assert_eq!(login.status, 303, "{}", login.text());
    let session = login.cookie("dbkeep_session").unwrap();
    let page = send(
        instances[2].port,
        format!(
            "GET / HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nCookie: dbkeep_session={session}\r\nConnection: close\r\n\r\n",
            instances[2].port
        )
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(page.status, 200, "{}", page.text());

    // Five failed logins spread over two instances lock the user on all of them.
    for n in 0..5 {
        let i = &instances[n % 2];
        let csrf = http_get(i.port, "/login", None)
            .unwrap()
            .cookie("dbkeep_login_csrf")
            .unwrap();
        let r = send(
            i.port,
            &login_request(i.port, &csrf, "admin", "wrong password", "/"),
        )
        .unwrap();
        assert_eq!(r.status, 401, "{}", r.text());
    }
    let i = &instances[2];
    let csrf = http_get(i.port, "/login", None)
        .unwrap()
        .cookie("dbkeep_login_csrf")
        .unwrap();
    let r = send(
        i.port,
        &login_request(i.port, &csrf, "admin", PASSWORD, "/"),
    )
    .unwrap();
    assert_eq!(r.status, 429, "{}", r.text());
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn a_killed_instance_s_run_is_failed_by_another_which_takes_the_next_fire() {
    let catalog = PgDb::create("many_kill");
    let source = PgDb::create("many_kill_src");
    source.psql("CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 100) g;");
    let sandbox = Sandbox::new();
    // A dump that takes six seconds: long enough to be killed in the middle.
    let slow = sandbox.path().join("slow_pg_dump");
    std::fs::write(&slow, "#!/bin/sh\nsleep 6\nexec pg_dump \"$@\"\n").unwrap();
    std::fs::set_permissions(&slow, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let shared = format!(
        "catalog = \"{}\"\ntimezone = \"UTC\"\nlease_timeout = \"3s\"\npg_dump_path = \"{}\"\n\
         [[databases]]\nname = \"pg\"\nurl = \"{}\"\nschedules = [\"*/2 * * * * *\"]\n",
        catalog.url(),
        slow.display(),
        source.url()
    );
    let mut instances: Vec<Instance> = ["k1", "k2"]
        .iter()
        .map(|n| Instance::new(sandbox.path(), n, &shared))
        .collect();
    for i in &mut instances {
        i.start(&[]);
    }
    // Wait for a run to be going, and find whose it is.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (holder, run) = loop {
        // Until the first instance has migrated the new catalog, it has no leases table.
        let row = try_psql(
            &catalog.url(),
            None,
            "SELECT holder || '|' || coalesce(run::text, '') FROM leases WHERE resource = 'backup:pg'",
        )
        .unwrap_or_default()
        .trim()
        .to_string();
        if let Some((h, r)) = row.split_once('|')
            && let Ok(r) = r.parse::<i64>()
        {
            break (h.to_string(), r);
        }
        assert!(Instant::now() < deadline, "no backup started");
        std::thread::sleep(Duration::from_millis(100));
    };
    let victim = instances.iter().position(|i| i.name == holder).unwrap();
    let killed = Instant::now();
    if let Some(mut p) = instances[victim].process.take() {
        p.stop(); // SIGKILL
    }
    // Within the lease's timeout and a heartbeat, the survivor marks the run failed…
    let error = loop {
        let row = catalog.scalar(&format!(
            "SELECT status || '|' || coalesce(error, '') FROM backups WHERE id = {run}"
        ));
        if let Some(("failed", e)) = row.split_once('|') {
            break e.to_string();
        }
        assert!(
            killed.elapsed() < Duration::from_secs(15),
            "run #{run} still {row}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        error.contains(&format!(
            "interrupted: instance {holder} stopped renewing its lease"
        )),
        "{error}"
    );
    // … and a later fire runs there to its end.
    let survivor = &instances[1 - victim].name;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let done = catalog.scalar(&format!(
            "SELECT count(*) FROM backups WHERE instance = '{survivor}' AND status = 'success' AND id > {run}"
        ));
        if done != "0" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no backup succeeded on {survivor}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
