//! Off-site copies: a second disk (`file://`), a real S3-compatible server on loopback (moto)
//! and Azure's emulator (azurite), which the test script installs; uploads checked and recorded, retention pruning the copies,
//! restores and verifications from a copy when the local file is gone, and failures.

use std::fs;
use std::path::Path;

use crate::common::*;

fn copies(sandbox: &Sandbox, id: i64) -> Vec<(String, String, Option<String>, Option<String>)> {
    let conn = rusqlite::Connection::open(sandbox.catalog_path()).unwrap();
    let mut stmt = conn
        .prepare("SELECT store, state, sha256, pruned_at FROM copies WHERE backup_id = ?1 ORDER BY store")
        .unwrap();
    stmt.query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn a_second_disk_gets_every_backup_serves_restores_and_is_pruned_with_them() {
    let sandbox = Sandbox::new();
    let db = sandbox.path().join("app.db");
    create_sample_sqlite(&db);
    let disk2 = sandbox.path().join("disk2");
    sandbox.write_config(&format!(
        "retention_days = 0\nkeep_last = 1\n[[offsite]]\nname = \"disk2\"\nurl = \"file://{}\"\n\
         [[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n",
        disk2.display()
    ));
    sandbox.run(&["backup"]).assert_success();
    let row = sandbox.rows_for("app")[0].clone();
    let id = row["id"].as_i64().unwrap();
    let local = assert_success_row(&row, "app", "sqlite");
    let copy = disk2.join("app").join(row["file_name"].as_str().unwrap());
    assert_eq!(fs::read(&copy).unwrap(), fs::read(&local).unwrap());
    let recorded = copies(&sandbox, id);
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].0, "disk2");
    assert_eq!(recorded[0].1, "uploaded");
    assert_eq!(recorded[0].2.as_deref(), row["sha256"].as_str());
    assert_eq!(row["copies"][0]["store"], "disk2", "{row:#}");
    assert_eq!(row["copies"][0]["state"], "uploaded", "{row:#}");
    assert_eq!(row["copies"][0]["sha256"], row["sha256"], "{row:#}");
    let list = sandbox.run(&["offsite", "list"]);
    assert!(list.stdout.contains(&format!("#{id}  app  ")), "{list:?}");
    assert!(list.stdout.contains("disk2: uploaded"), "{list:?}");

    // The copy itself, proven by a restore of it.
    let run = sandbox.run(&["verify", &id.to_string(), "--from", "disk2"]);
    run.assert_success();
    assert!(run.stdout.contains("(from off-site `disk2`)"), "{run:?}");
    let conn = rusqlite::Connection::open(sandbox.catalog_path()).unwrap();
    let source: Option<String> = conn
        .query_row(
            "SELECT source FROM verifications ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(source.as_deref(), Some("disk2"));
    sandbox
        .run(&["verify", &id.to_string(), "--from", "nowhere"])
        .assert_code(2);
    // The local disk lost the file: verify and restore read the copy.
    fs::remove_file(&local).unwrap();
    let run = sandbox.run(&["verify", &id.to_string()]);
    run.assert_success();
    assert!(run.stdout.contains("restore  (restored in "), "{run:?}");
    let restored = sandbox.path().join("restored.db");
    sandbox
        .run(&[
            "restore",
            &id.to_string(),
            "--to",
            restored.to_str().unwrap(),
        ])
        .assert_success();
    let fingerprint = |p: &Path| sqlite_fingerprint(&rusqlite::Connection::open(p).unwrap());
    assert_eq!(fingerprint(&restored), fingerprint(&db));

    // The next backup reaches the destination, so retention prunes the first one everywhere.
    sandbox.run(&["backup"]).assert_success();
    assert!(!copy.exists(), "the pruned backup's copy is deleted");
    let recorded = copies(&sandbox, id);
    assert!(recorded[0].3.is_some(), "recorded pruned: {recorded:?}");
    let newest = sandbox.rows_for("app")[0].clone();
    assert!(
        disk2
            .join("app")
            .join(newest["file_name"].as_str().unwrap())
            .exists()
    );
    // A file the catalog does not know stays, there as here.
    fs::write(disk2.join("app").join("notes.txt"), "mine").unwrap();
    sandbox.run(&["backup"]).assert_success();
    assert!(disk2.join("app").join("notes.txt").exists());
}

#[test]
fn a_destination_that_fails_prunes_nothing_and_sync_repairs_it() {
    let sandbox = Sandbox::new();
    create_sample_sqlite(&sandbox.path().join("app.db"));
    // The destination's folder is a regular file: nothing can be stored there.
    let disk2 = sandbox.path().join("disk2");
    fs::write(&disk2, "not a folder").unwrap();
    let hooks = crate::notify::Receiver::start(crate::notify::Answer::Ok);
    sandbox.write_config(&format!(
        "retention_days = 0\nkeep_last = 1\n[[offsite]]\nname = \"disk2\"\nurl = \"file://{}\"\n\
         [[notify.webhook]]\nurl = \"{}\"\non = [\"offsite_failed\"]\n\
         [[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n",
        disk2.display(),
        hooks.url("/hook")
    ));
    sandbox.run(&["backup"]).assert_success();
    sandbox.run(&["backup"]).assert_success();
    // Each failed copy is announced.
    let seen = hooks.wait_for(2);
    let first = seen[0].json();
    assert_eq!(first["event"], "offsite_failed", "{first:#}");
    assert!(
        first["error"]
            .as_str()
            .unwrap()
            .contains("off-site `disk2`"),
        "{first:#}"
    );
    let rows = sandbox.rows_for("app");
    // Both backups stand, neither pruned: the copies failed.
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter()
            .all(|r| r["status"] == "success" && r["pruned_at"].is_null()),
        "{rows:#?}"
    );
    let id = rows[0]["id"].as_i64().unwrap();
    let recorded = copies(&sandbox, id);
    assert_eq!(recorded[0].1, "failed", "{recorded:?}");
    assert!(
        sandbox
            .run(&["offsite", "list"])
            .stdout
            .contains("disk2: failed")
    );
    let verdict = || {
        let runner =
            dbkeep::Runner::open(dbkeep::Config::load(&sandbox.config_path()).unwrap()).unwrap();
        dbkeep::verdict::all(
            &runner,
            &dbkeep::verdict::FactsCache::default(),
            chrono::Utc::now(),
        )
        .unwrap()[0]
            .verdict
            .clone()
    };
    let v = verdict();
    assert_eq!(v.state, dbkeep::verdict::State::NotOffsite, "{v:?}");
    assert!(
        v.reason
            .contains("not off-site: the copy to `disk2` failed"),
        "{v:?}"
    );
    // A prune by hand waits for the copies too, and says why.
    let run = sandbox.run(&["prune"]);
    assert!(
        run.all_output()
            .contains("is not yet copied to `disk2`; run `dbkeep offsite sync`"),
        "{run:?}"
    );
    assert!(
        sandbox
            .rows_for("app")
            .iter()
            .all(|r| r["pruned_at"].is_null())
    );
    // The outage ends: sync uploads what is missing.
    fs::remove_file(&disk2).unwrap();
    let run = sandbox.run(&["offsite", "sync"]);
    run.assert_success();
    assert_eq!(run.stdout.matches("ok      #").count(), 2, "{run:?}");
    assert_eq!(copies(&sandbox, id)[0].1, "uploaded");
    assert_eq!(verdict().state, dbkeep::verdict::State::Protected);
    assert!(
        sandbox
            .run(&["offsite", "sync"])
            .stdout
            .contains("every stored backup is at every destination")
    );
    // Then the prune goes ahead: the older backup goes, here and at the destination.
    sandbox.run(&["prune"]).assert_success();
    assert!(!sandbox.rows_for("app")[1]["pruned_at"].is_null());
    // The failures stay counted after the repair.
    let conn = rusqlite::Connection::open(sandbox.catalog_path()).unwrap();
    let failures: i64 = conn
        .query_row(
            "SELECT count(*) FROM offsite_failures WHERE store = 'disk2'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(failures, 2);
}

/// moto's S3 server on a free port, with a bucket.
pub struct S3 {
    _server: Running,
    pub port: u16,
}

impl S3 {
    pub fn start(bucket: &str) -> S3 {
        let port = crate::http::free_port();
        let child = spawn_listening(
            std::process::Command::new(venv_bin("moto_server", "moto")).args([
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ]),
            port,
            "moto",
        );
        // CreateBucket: moto needs no signature for it.
        ureq::put(&format!("http://127.0.0.1:{port}/{bucket}"))
            .send_empty()
            .unwrap();
        S3 {
            _server: child,
            port,
        }
    }
}

#[test]
fn an_s3_destination_takes_a_large_backup_in_parts_with_bounded_memory() {
    let s3 = S3::start("dbkeep-test");
    let sandbox = Sandbox::new();
    let db = sandbox.path().join("big.db");
    {
        // About 110 MB that does not compress: every byte is uploaded.
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(
            "CREATE TABLE t (b BLOB);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1100)
             INSERT INTO t SELECT randomblob(100000) FROM n;",
        )
        .unwrap();
    }
    sandbox.write_config(&format!(
        "[[offsite]]\nname = \"s3\"\nurl = \"s3://dbkeep-test/backups\"\nendpoint = \"http://127.0.0.1:{}\"\nregion = \"us-east-1\"\n\
         [[databases]]\nname = \"big\"\nurl = \"sqlite:big.db\"\n",
        s3.port
    ));
    let rss = sandbox.path().join("rss");
    let out = std::process::Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(&rss)
        .arg(bin_path())
        .arg("--config")
        .arg(sandbox.config_path())
        .arg("backup")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let row = sandbox.rows_for("big")[0].clone();
    let id = row["id"].as_i64().unwrap();
    assert!(row["size_bytes"].as_u64().unwrap() > 100_000_000, "{row:#}");
    let recorded = copies(&sandbox, id);
    assert_eq!(recorded[0].1, "uploaded", "{recorded:?}");
    assert_eq!(recorded[0].2.as_deref(), row["sha256"].as_str());
    let peak_kib: u64 = fs::read_to_string(&rss).unwrap().trim().parse().unwrap();
    assert!(peak_kib < 128 * 1024, "peak RSS {peak_kib} KiB");
    // The copy, read back from S3, is the backup.
    let local = assert_success_row(&row, "big", "sqlite");
    fs::remove_file(&local).unwrap();
    let run = run_cmd(
        sandbox
            .cmd()
            .args(["verify", &id.to_string(), "--level", "checksum"])
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test"),
    );
    run.assert_success();
    assert!(run.stdout.starts_with(&format!("ok      #{id}")), "{run:?}");
}

#[test]
fn the_servers_roles_go_off_site_with_their_backup_and_restore_from_there() {
    let _roles = server_roles();
    let role = unique_name("offsite_roles");
    let source = pg_owned_by_a_new_role("offsite_roles_src", &role, 7);
    let sandbox = Sandbox::new();
    let disk2 = sandbox.path().join("disk2");
    let configure = |url: &str, extra: &str| {
        sandbox.write_config(&format!(
            "retention_days = 0\nkeep_last = 1\n{extra}[[offsite]]\nname = \"disk2\"\n\
             url = \"file://{}\"\n[[databases]]\nname = \"pg\"\nurl = \"{url}\"\nglobals = true\n",
            disk2.display(),
        ));
    };
    configure(&source.url(), "");
    sandbox.run(&["backup"]).assert_success();
    let row = sandbox.rows_for("pg")[0].clone();
    let id = row["id"].as_i64().unwrap();
    let local = assert_success_row(&row, "pg", "postgres");
    let name = row["file_name"].as_str().unwrap();
    let local_roles = local.with_file_name(format!("{name}.globals.sql"));
    let copied_roles = disk2.join("pg").join(format!("{name}.globals.sql"));
    assert_eq!(
        fs::read(&copied_roles).unwrap(),
        fs::read(&local_roles).unwrap()
    );
    assert_eq!(copies(&sandbox, id)[0].1, "uploaded");

    // This machine lost both files: the restore reads the backup and its roles from the copy,
    // into a server that lacks the role.
    fs::remove_file(&local).unwrap();
    fs::remove_file(&local_roles).unwrap();
    drop(source);
    psql(&pg_url(), None, &format!("DROP ROLE {role};"));
    // Read from the copy by default, and from the destination named with --from.
    for from in [&[][..], &["--from", "disk2"]] {
        let target = PgDb::create("offsite_roles_dst");
        let mut args = vec![
            "restore".to_string(),
            id.to_string(),
            "--to".into(),
            target.url(),
        ];
        args.push("--with-globals".into());
        args.extend(from.iter().map(|a| a.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        sandbox.run(&args).assert_success();
        assert_owned_by(&target, &role, 7);
        drop(target);
        psql(&pg_url(), None, &format!("DROP ROLE IF EXISTS {role};"));
    }

    // Retention takes the roles off-site with the backup.
    let again = PgDb::create("offsite_roles_src2");
    configure(&again.url(), "");
    sandbox.run(&["backup"]).assert_success();
    assert!(
        !disk2.join("pg").join(name).exists(),
        "the pruned copy is gone"
    );
    assert!(
        !copied_roles.exists(),
        "the pruned copy's roles are still there"
    );
    let newest = sandbox.rows_for("pg")[0]["file_name"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        disk2
            .join("pg")
            .join(format!("{newest}.globals.sql"))
            .exists()
    );

    // keep_local = false: once the copy holds both, neither stays on this disk.
    configure(&again.url(), "keep_local = false\n");
    sandbox.run(&["backup"]).assert_success();
    let last = sandbox.rows_for("pg")[0]["file_name"]
        .as_str()
        .unwrap()
        .to_string();
    let folder = sandbox.db_dir("pg");
    assert!(!folder.join(&last).exists(), "the local backup stayed");
    assert!(
        !folder.join(format!("{last}.globals.sql")).exists(),
        "the local roles stayed"
    );
    assert!(
        disk2
            .join("pg")
            .join(format!("{last}.globals.sql"))
            .exists()
    );
}

/// What a run reported: its phases in order, each with its total and the bytes counted in it
/// (the first, unnamed, is the dump).
#[derive(Default)]
struct Phases(std::sync::Mutex<Vec<(String, Option<u64>, u64)>>);

impl dbkeep::stream::Progress for Phases {
    fn advance(&self, bytes: u64) {
        let mut phases = self.0.lock().unwrap();
        if phases.is_empty() {
            phases.push((String::new(), None, 0));
        }
        phases.last_mut().unwrap().2 += bytes;
    }

    fn phase(&self, what: &str, total: Option<u64>) {
        self.0.lock().unwrap().push((what.to_string(), total, 0));
    }
}

#[test]
fn an_upload_is_reported_as_a_phase_of_its_backup_and_of_sync() {
    let sandbox = Sandbox::new();
    create_sample_sqlite(&sandbox.path().join("app.db"));
    let disk2 = sandbox.path().join("disk2");
    sandbox.write_config(&format!(
        "[[offsite]]\nname = \"disk2\"\nurl = \"file://{}\"\n\
         [[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n",
        disk2.display()
    ));
    let runner =
        dbkeep::Runner::open(dbkeep::Config::load(&sandbox.config_path()).unwrap()).unwrap();
    let seen = Phases::default();
    let outcome = runner
        .backup("app", &dbkeep::BackupOptions::default(), &seen)
        .unwrap();
    let (id, size) = (outcome.record.id, outcome.record.size_bytes.unwrap());
    let phases = seen.0.into_inner().unwrap();
    assert_eq!(phases.len(), 2, "{phases:?}");
    assert!(phases[0].2 > 0, "the dump counted no bytes: {phases:?}");
    assert_eq!(
        phases[1],
        (
            format!("#{id} copying to off-site `disk2`"),
            Some(size),
            size
        )
    );
    // The copy is lost there: sync sends it again, and says so as it goes.
    fs::remove_dir_all(&disk2).unwrap();
    let conn = rusqlite::Connection::open(sandbox.catalog_path()).unwrap();
    conn.execute("DELETE FROM copies", []).unwrap();
    let seen = Phases::default();
    let cancel = dbkeep::cancel::Cancel::new();
    let sending = dbkeep::store::Sending {
        progress: &seen,
        cancel: &cancel,
    };
    let synced = runner.sync_offsite(&[], sending).unwrap();
    assert_eq!(synced.len(), 1);
    assert!(synced[0].result.is_ok(), "{synced:?}");
    assert_eq!(
        seen.0.into_inner().unwrap(),
        vec![(
            format!("#{id} copying to off-site `disk2`"),
            Some(size),
            size
        )]
    );
}

/// Raises its flag once more than `after` bytes were sent.
struct CancelAfter {
    cancel: dbkeep::cancel::Cancel,
    after: u64,
    sent: std::sync::atomic::AtomicU64,
}

impl dbkeep::stream::Progress for CancelAfter {
    fn advance(&self, bytes: u64) {
        use std::sync::atomic::Ordering;
        if self.sent.fetch_add(bytes, Ordering::Relaxed) + bytes > self.after {
            self.cancel.cancel("cancelled: shutdown");
        }
    }
}

#[test]
fn a_cancelled_upload_stops_and_leaves_nothing_at_the_destination() {
    use dbkeep::store::Store;
    let s3 = S3::start("dbkeep-cancel");
    let sandbox = Sandbox::new();
    // 40 MiB: five parts of 8 MiB, so the upload is a multipart one.
    let file = sandbox.path().join("big.bin");
    let chunk: Vec<u8> = (0..1024 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    fs::write(&file, chunk.repeat(40)).unwrap();
    let options: Vec<(String, String)> = [
        ("endpoint", format!("http://127.0.0.1:{}", s3.port)),
        ("region", "us-east-1".into()),
        ("allow_http", "true".into()),
        ("access_key_id", "test".into()),
        ("secret_access_key", "test".into()),
    ]
    .map(|(k, v)| (k.to_string(), v))
    .to_vec();
    let disk2 = sandbox.path().join("disk2");
    let stores = [
        dbkeep::store::ObjectStorage::new(
            "s3",
            &url::Url::parse("s3://dbkeep-cancel/backups").unwrap(),
            &options,
        )
        .unwrap(),
        dbkeep::store::ObjectStorage::new(
            "disk2",
            &url::Url::from_directory_path(&disk2).unwrap(),
            &[],
        )
        .unwrap(),
    ];
    for store in &stores {
        let progress = CancelAfter {
            cancel: dbkeep::cancel::Cancel::new(),
            after: 10 * 1024 * 1024,
            sent: 0.into(),
        };
        let sending = dbkeep::store::Sending {
            progress: &progress,
            cancel: &progress.cancel,
        };
        let e = store
            .put_file("app/big.bin", &file, sending)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cancelled: shutdown"), "{}: {e}", store.name());
        assert!(!e.contains("cancelled: cancelled"), "{}: {e}", store.name());
        let sent = progress.sent.into_inner();
        assert!(
            sent < 40 * 1024 * 1024,
            "{}: read it all ({sent})",
            store.name()
        );
        assert!(!store.exists("app/big.bin").unwrap(), "{}", store.name());
        // A flag raised before the upload: nothing is sent at all.
        let raised = dbkeep::cancel::Cancel::new();
        raised.cancel("cancelled: shutdown");
        let sending = dbkeep::store::Sending {
            progress: &dbkeep::stream::NoProgress,
            cancel: &raised,
        };
        let e = store
            .put_file("app/small.bin", &file, sending)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cancelled: shutdown"), "{e}");
        assert!(!store.exists("app/small.bin").unwrap());
    }
    // No multipart upload was left open on S3 (its parts would be kept, and billed).
    let open = crate::http::http_get(s3.port, "/dbkeep-cancel?uploads", None)
        .unwrap()
        .text();
    assert!(open.contains("ListMultipartUploadsResult"), "{open}");
    assert!(
        !open.contains("<UploadId>"),
        "an upload was left open: {open}"
    );
    // Nor a part file on the other disk.
    assert!(files_below(&disk2).is_empty(), "{:?}", files_below(&disk2));
}

#[test]
fn serve_sends_a_failed_copy_again_once_the_destination_is_back() {
    let s3 = S3::start("dbkeep-other");
    let sandbox = Sandbox::new();
    create_sample_sqlite(&sandbox.path().join("app.db"));
    let port = crate::http::free_port();
    sandbox.write_config(&format!(
        "listen = \"127.0.0.1:{port}\"\noffsite_retry = \"1s\"\nkeep_local = false\n\
         [[offsite]]\nname = \"s3\"\nurl = \"s3://dbkeep-later/backups\"\n\
         endpoint = \"http://127.0.0.1:{}\"\nregion = \"us-east-1\"\n\
         [[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\nschedules = [\"0 0 1 1 *\"]\n",
        s3.port
    ));
    let aws = [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
    ];
    // The bucket does not exist yet: the copy fails (the backup itself is good).
    run_cmd(sandbox.cmd().arg("backup").envs(aws)).assert_success();
    let row = sandbox.rows_for("app")[0].clone();
    let id = row["id"].as_i64().unwrap();
    assert_eq!(copies(&sandbox, id)[0].1, "failed");
    // keep_local = false keeps the file while no copy holds it.
    let local = assert_success_row(&row, "app", "sqlite");
    assert!(local.exists(), "removed with no copy anywhere");
    let server = crate::http::Server::start(
        &sandbox,
        port,
        &[aws[0], aws[1], ("DBKEEP_ADMIN_PASSWORD", "a long password")],
    );
    // The destination comes back: serve sends the copy within a retry or two.
    ureq::put(&format!("http://127.0.0.1:{}/dbkeep-later", s3.port))
        .send_empty()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while copies(&sandbox, id)[0].1 != "uploaded" {
        assert!(
            std::time::Instant::now() < deadline,
            "not sent again: {:?}\n{}",
            copies(&sandbox, id),
            server.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(copies(&sandbox, id)[0].2.as_deref(), row["sha256"].as_str());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !server.log().contains("off-site copy sent again") || local.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "local file there: {}\n{}",
            local.exists(),
            server.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn keep_local_false_leaves_the_copy_only_and_it_still_restores_and_downloads() {
    let sandbox = Sandbox::new();
    let db = sandbox.path().join("app.db");
    create_sample_sqlite(&db);
    let disk2 = sandbox.path().join("disk2");
    let port = crate::http::free_port();
    sandbox.write_config(&format!(
        "listen = \"127.0.0.1:{port}\"\nkeep_local = false\n\
         [[offsite]]\nname = \"disk2\"\nurl = \"file://{}\"\n\
         [[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\nschedules = [\"0 0 1 1 *\"]\n",
        disk2.display()
    ));
    sandbox.run(&["backup"]).assert_success();
    let row = sandbox.rows_for("app")[0].clone();
    let id = row["id"].as_i64().unwrap();
    let name = row["file_name"].as_str().unwrap().to_string();
    assert!(
        !sandbox.db_dir("app").join(&name).exists(),
        "the local file went"
    );
    let copy = disk2.join("app").join(&name);
    assert_eq!(sha256sum(&copy), row["sha256"].as_str().unwrap());
    let restored = sandbox.path().join("restored.db");
    sandbox
        .run(&[
            "restore",
            &id.to_string(),
            "--to",
            restored.to_str().unwrap(),
        ])
        .assert_success();
    let fingerprint = |p: &Path| sqlite_fingerprint(&rusqlite::Connection::open(p).unwrap());
    assert_eq!(fingerprint(&restored), fingerprint(&db));
    // The web admin serves the copy.
    let token = sandbox.run(&["token", "create", "dl"]).stdout;
    let token = token.lines().last().unwrap().trim().to_string();
    let _server = crate::http::Server::start(
        &sandbox,
        port,
        &[("DBKEEP_ADMIN_PASSWORD", "a long password")],
    );
    let got = crate::http::http_get(
        port,
        &format!("/api/v1/backups/{id}/download"),
        Some(&token),
    )
    .unwrap();
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.body, fs::read(&copy).unwrap());
    assert_eq!(got.header("x-backup-sha256"), row["sha256"].as_str());
    let metrics = crate::http::http_get(port, "/metrics", Some(&token))
        .unwrap()
        .text();
    assert!(
        metrics.contains(
            "dbkeep_offsite_last_success_timestamp_seconds{database=\"app\",destination=\"disk2\"} "
        ),
        "{metrics}"
    );
    // The backup's page lists its copies.
    let page = crate::http::http_get(port, &format!("/backups/{id}"), Some(&token))
        .unwrap()
        .text();
    assert!(page.contains("<h2>Off-site copies</h2>"), "{page}");
    assert!(
        page.contains("<td>disk2</td><td><span class=\"dot green\" aria-hidden=\"true\"></span> <span class=\"state\">uploaded</span>"),
        "{page}"
    );
}

#[test]
fn keep_local_false_without_a_destination_is_refused() {
    let sandbox = Sandbox::new();
    sandbox.write_config(
        "[[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\nkeep_local = false\n",
    );
    let run = sandbox.run(&["list"]);
    run.assert_code(2);
    assert!(
        run.stderr.contains("would leave its backups nowhere"),
        "{run:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_weekly_drill_restores_the_local_file_and_each_copy_in_turn() {
    let sandbox = Sandbox::new();
    create_sample_sqlite(&sandbox.path().join("app.db"));
    let disk2 = sandbox.path().join("disk2");
    sandbox.write_config(&format!(
        "timezone = \"UTC\"\n[[offsite]]\nname = \"disk2\"\nurl = \"file://{}\"\n\
         [[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\nschedules = [\"0 0 1 1 *\"]\n",
        disk2.display()
    ));
    sandbox.run(&["backup"]).assert_success();
    // Three Sundays at 03:00 UTC, the default verify_schedule.
    for week in [
        "2026-12-06T02:59:58Z",
        "2026-12-13T02:59:58Z",
        "2026-12-20T02:59:58Z",
    ] {
        let row = crate::restore::drill_at(&sandbox, week).await;
        assert_eq!(row["verify_status"], "ok", "{row:#}");
    }
    let conn = rusqlite::Connection::open(sandbox.catalog_path()).unwrap();
    let mut stmt = conn
        .prepare("SELECT source FROM verifications ORDER BY id")
        .unwrap();
    let sources: Vec<Option<String>> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(sources, vec![None, Some("disk2".to_string()), None]);
}

/// azurite's blob service (installed by the test script into target/azurite) on a free port,
/// with a container.
struct Azurite {
    _server: Running,
    port: u16,
    _data: tempfile::TempDir,
}

impl Azurite {
    fn start(container: &str) -> Azurite {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let bin = root.join("target/azurite/node_modules/.bin/azurite-blob");
        assert!(
            bin.exists(),
            "{} is missing: run the tests with scripts/test.sh, which installs azurite",
            bin.display()
        );
        let data = tempfile::tempdir().unwrap();
        let port = crate::http::free_port();
        let child = spawn_listening(
            std::process::Command::new(bin)
                .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
                .args(["--silent", "--skipApiVersionCheck", "--disableTelemetry"])
                .arg("--location")
                .arg(data.path()),
            port,
            "azurite",
        );
        let made = std::process::Command::new("python3")
            .arg(root.join("tests/it/support/azure_container.py"))
            .args([&port.to_string(), container])
            .output()
            .unwrap();
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
        Azurite {
            _server: child,
            port,
            _data: data,
        }
    }
}

impl Azurite {
    /// The HTTP status of a HEAD of `blob` (signed, as the account's owner).
    fn status(&self, container: &str, blob: &str) -> String {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let out = std::process::Command::new("python3")
            .arg(root.join("tests/it/support/azure_container.py"))
            .args([&self.port.to_string(), container, blob])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }
}

#[test]
fn an_azure_destination_puts_reads_and_deletes_copies_on_azurite() {
    let azure = Azurite::start("dbkeep");
    let sandbox = Sandbox::new();
    let db = sandbox.path().join("app.db");
    create_sample_sqlite(&db);
    sandbox.write_config(
        "retention_days = 0\nkeep_last = 1\n[[offsite]]\nname = \"azure\"\nurl = \"az://dbkeep/backups\"\n\
         [[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n",
    );
    let emulator = format!("http://127.0.0.1:{}", azure.port);
    let run = |args: &[&str]| {
        run_cmd(
            sandbox
                .cmd()
                .args(args)
                .env("AZURE_STORAGE_USE_EMULATOR", "true")
                .env("AZURITE_BLOB_STORAGE_URL", &emulator),
        )
    };
    run(&["backup"]).assert_success();
    let row = sandbox.rows_for("app")[0].clone();
    let id = row["id"].as_i64().unwrap();
    assert_eq!(row["copies"][0]["state"], "uploaded", "{row:#}");
    // Read back: a restore from the copy alone.
    let restored = sandbox.path().join("restored.db");
    run(&[
        "restore",
        &id.to_string(),
        "--from",
        "azure",
        "--to",
        restored.to_str().unwrap(),
    ])
    .assert_success();
    let fingerprint = |p: &Path| sqlite_fingerprint(&rusqlite::Connection::open(p).unwrap());
    assert_eq!(fingerprint(&restored), fingerprint(&db));
    // Deleted with its backup by retention: the copy is then gone from azurite too.
    let blob = format!("backups/app/{}", row["file_name"].as_str().unwrap());
    assert_eq!(azure.status("dbkeep", &blob), "200");
    run(&["backup"]).assert_success();
    let recorded = copies(&sandbox, id);
    assert!(recorded[0].3.is_some(), "{recorded:?}");
    assert_eq!(azure.status("dbkeep", &blob), "404");
}
