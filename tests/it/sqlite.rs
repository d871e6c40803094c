//! SQLite backups: fidelity, consistency under concurrent writers, clean
//! failures, compression, permissions, checksums and file naming.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as StdCommand, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::Timelike as _;

use crate::common::*;

fn single_db_config(name: &str, url: &str, extra: &str) -> String {
    format!("[[databases]]\nname = \"{name}\"\nurl = \"{url}\"\n{extra}\n")
}

#[test]
fn backup_copy_has_same_schema_and_rows() {
    backup_copy_matches_source(None);
}

#[test]
fn backup_copy_of_wal_database_has_same_schema_and_rows() {
    backup_copy_matches_source(Some("wal"));
}

fn backup_copy_matches_source(journal_mode: Option<&str>) {
    let sb = Sandbox::new();
    let src = sb.path().join("app.db");
    create_sample_sqlite(&src);
    if let Some(mode) = journal_mode {
        let conn = rusqlite::Connection::open(&src).unwrap();
        let set: String = conn
            .query_row(&format!("PRAGMA journal_mode = {mode}"), [], |r| r.get(0))
            .unwrap();
        assert_eq!(set, mode);
    }
    sb.write_config(&single_db_config("app", "sqlite:app.db", ""));

    let before = sqlite_fingerprint(&rusqlite::Connection::open(&src).unwrap());
    let run = sb.run(&["backup"]);
    run.assert_success();
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("ok") && l.contains("app")),
        "{run:?}"
    );

    let rows = sb.rows_for("app");
    assert_eq!(rows.len(), 1, "{rows:#?}");
    let path = assert_success_row(&rows[0], "app", "sqlite");
    assert_eq!(rows[0]["compression"], "none");
    assert_eq!(rows[0]["trigger"], "manual");
    assert_eq!(path.parent(), Some(sb.db_dir("app").as_path()));
    let name = rows[0]["file_name"].as_str().unwrap();
    assert!(
        name.starts_with("sqlite_backup_") && name.ends_with(".db"),
        "unexpected file name {name}"
    );

    let (_tmp, copy) = open_copy(&path);
    assert_eq!(sqlite_integrity(&copy), "ok");
    let after_copy = sqlite_fingerprint(&copy);
    assert!(
        after_copy
            .iter()
            .any(|l| l.starts_with("table order items: 2000 rows")),
        "{after_copy:#?}"
    );
    assert_eq!(before, after_copy, "backup differs from the source");

    // The source itself is untouched.
    let after_src = sqlite_fingerprint(&rusqlite::Connection::open(&src).unwrap());
    assert_eq!(before, after_src);

    // Only the finished backup is left in the database folder (no
    // temporary files, no -wal / -shm / -journal side files).
    assert_eq!(file_names(&sb.db_dir("app")), vec![name.to_string()]);
}

/// A separate process that commits one row every few milliseconds until a
/// stop file appears, then prints how many commits and errors it saw.
const WRITER_SCRIPT: &str = r#"
import os, sqlite3, sys, time
db, stop_file, ready_file = sys.argv[1:4]
con = sqlite3.connect(db, timeout=10.0, isolation_level=None)
con.execute("PRAGMA busy_timeout = 10000")
commits = 0
errors = 0
while not os.path.exists(stop_file):
    try:
        con.execute("BEGIN IMMEDIATE")
        con.execute("INSERT INTO writes (ts, payload) VALUES (?, randomblob(256))", (time.time(),))
        con.execute("COMMIT")
        commits += 1
        if commits == 20:
            open(ready_file, "w").close()
    except sqlite3.Error as e:
        errors += 1
        sys.stderr.write("writer error: %r\n" % (e,))
        try:
            con.execute("ROLLBACK")
        except sqlite3.Error:
            pass
    time.sleep(0.003)
con.close()
print("commits=%d errors=%d" % (commits, errors))
"#;

/// Stops the writer (stop file, then kill) even when the test panics.
struct Writer {
    child: Option<Child>,
    stop_file: PathBuf,
}

impl Writer {
    fn start(db: &Path, dir: &Path) -> Self {
        let stop_file = dir.join("writer.stop");
        let ready_file = dir.join("writer.ready");
        let child = StdCommand::new("python3")
            .arg("-c")
            .arg(WRITER_SCRIPT)
            .arg(db)
            .arg(&stop_file)
            .arg(&ready_file)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start python3 writer");
        let mut writer = Writer {
            child: Some(child),
            stop_file,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ready_file.exists() {
            if let Some(status) = writer.child.as_mut().unwrap().try_wait().unwrap() {
                let (out, err) = writer.finish_output();
                panic!("writer exited early ({status}): {out}\n{err}");
            }
            assert!(Instant::now() < deadline, "writer never became ready");
            sleep(Duration::from_millis(10));
        }
        writer
    }

    fn finish_output(&mut self) -> (String, String) {
        let child = self.child.take().expect("writer already stopped");
        let out = child.wait_with_output().expect("wait for writer");
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Stops the writer and returns (commits, errors).
    fn stop(mut self) -> (u64, u64) {
        fs::write(&self.stop_file, "").expect("write stop file");
        let (out, err) = self.finish_output();
        let mut commits = None;
        let mut errors = None;
        for field in out.split_whitespace() {
            if let Some(v) = field.strip_prefix("commits=") {
                commits = v.parse().ok();
            } else if let Some(v) = field.strip_prefix("errors=") {
                errors = v.parse().ok();
            }
        }
        match (commits, errors) {
            (Some(c), Some(e)) => {
                assert_eq!(e, 0, "writer saw errors during the backup:\n{err}");
                (c, e)
            }
            _ => panic!("unexpected writer output: {out}\n{err}"),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = fs::write(&self.stop_file, "");
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn epoch_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn count(conn: &rusqlite::Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

fn schema_only(fingerprint: &[String]) -> Vec<String> {
    fingerprint
        .iter()
        .filter(|l| l.starts_with("schema "))
        .cloned()
        .collect()
}

fn backup_under_concurrent_writer(journal_mode: &str) {
    const MB: usize = 35;
    let sb = Sandbox::new();
    let src = sb.path().join("busy.db");
    create_large_sqlite(&src, MB, journal_mode);
    sb.write_config(&single_db_config("busy", "sqlite:busy.db", ""));
    let source_schema = schema_only(&sqlite_fingerprint(
        &rusqlite::Connection::open(&src).unwrap(),
    ));

    let writer = Writer::start(&src, sb.path());
    let observer = rusqlite::Connection::open(&src).unwrap();
    observer.busy_timeout(Duration::from_secs(10)).unwrap();
    let writes_before = count(&observer, "SELECT count(*) FROM writes");

    let started = epoch_secs();
    let run = sb.run(&["backup"]);
    let finished = epoch_secs();
    // Let the writer keep going a little after the backup, then stop it.
    sleep(Duration::from_millis(50));
    let (commits, _) = writer.stop();
    run.assert_success();

    let writes_after = count(&observer, "SELECT count(*) FROM writes");
    let during: i64 = observer
        .query_row(
            "SELECT count(*) FROM writes WHERE ts BETWEEN ?1 AND ?2",
            [started, finished],
            |r| r.get(0),
        )
        .unwrap();
    assert!(commits > 20, "writer committed only {commits} rows");
    assert!(
        during > 0,
        "the writer committed nothing while the backup ran ({:.3}s); \
         the test did not exercise concurrency",
        finished - started
    );

    eprintln!(
        "{journal_mode}: backup took {:.3}s; writer: {commits} commits in total, \
         {during} while the backup ran",
        finished - started
    );

    let rows = sb.rows_for("busy");
    assert_eq!(rows.len(), 1, "{rows:#?}");
    let path = assert_success_row(&rows[0], "busy", "sqlite");
    let (_tmp, copy) = open_copy(&path);
    assert_eq!(sqlite_integrity(&copy), "ok", "backup copy is corrupt");
    assert_eq!(count(&copy, "SELECT count(*) FROM big"), (MB * 1000) as i64);
    let copied_writes = count(&copy, "SELECT count(*) FROM writes");
    assert!(
        (writes_before..=writes_after).contains(&copied_writes),
        "copy has {copied_writes} writer rows, expected between {writes_before} and {writes_after}"
    );
    // The copied writer rows are a gap-free prefix: a consistent snapshot.
    assert_eq!(
        count(&copy, "SELECT coalesce(max(id), 0) FROM writes"),
        copied_writes
    );
    assert_eq!(schema_only(&sqlite_fingerprint(&copy)), source_schema);
    assert_eq!(
        file_names(&sb.db_dir("busy")),
        vec![rows[0]["file_name"].as_str().unwrap().to_string()]
    );
}

#[test]
fn backup_during_concurrent_writes_wal() {
    backup_under_concurrent_writer("wal");
}

#[test]
fn backup_during_concurrent_writes_rollback_journal() {
    backup_under_concurrent_writer("delete");
}

#[test]
fn non_database_file_fails_cleanly() {
    let sb = Sandbox::new();
    let src = sb.path().join("notes.db");
    let text = "This is a plain text file, not a SQLite database.\n".repeat(200);
    fs::write(&src, &text).unwrap();
    sb.write_config(&single_db_config("notes", "sqlite:notes.db", ""));

    let run = sb.run(&["backup"]);
    run.assert_code(1);
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("failed") && l.contains("notes")),
        "{run:?}"
    );

    let rows = sb.rows_for("notes");
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_failed_row(&rows[0], "notes");
    assert_eq!(rows[0]["kind"], "sqlite");
    assert!(
        files_below(&sb.backup_dir()).is_empty(),
        "{:?}",
        files_below(&sb.backup_dir())
    );
    assert_eq!(
        fs::read_to_string(&src).unwrap(),
        text,
        "source was modified"
    );
}

#[test]
fn missing_file_fails_cleanly_and_is_not_created() {
    let sb = Sandbox::new();
    sb.write_config(&single_db_config("ghost", "sqlite:missing.db", ""));

    let run = sb.run(&["backup"]);
    run.assert_code(1);
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("failed") && l.contains("ghost")),
        "{run:?}"
    );
    let rows = sb.rows_for("ghost");
    assert_eq!(rows.len(), 1, "{rows:#?}");
    let error = assert_failed_row(&rows[0], "ghost");
    assert!(
        error.contains("missing.db"),
        "error does not name the file: {error}"
    );

    let created: Vec<String> = file_names(sb.path())
        .into_iter()
        .filter(|n| n.starts_with("missing"))
        .collect();
    assert!(created.is_empty(), "source file was created: {created:?}");
    assert!(files_below(&sb.backup_dir()).is_empty());
}

#[test]
fn gzip_and_zstd_backups_decompress_to_the_database() {
    let sb = Sandbox::new();
    let src = sb.path().join("app.db");
    create_sample_sqlite(&src);
    sb.write_config(
        r#"
[[databases]]
name = "gz"
url = "sqlite:app.db"
compression = "gzip"

[[databases]]
name = "zst"
url = "sqlite:app.db"
compression = "zstd"

[[databases]]
name = "plain"
url = "sqlite:app.db"
compression = "none"
"#,
    );
    let expected = sqlite_fingerprint(&rusqlite::Connection::open(&src).unwrap());

    sb.run(&["backup"]).assert_success();

    for (name, compression, suffix, tool, magic) in [
        ("gz", "gzip", ".db.gz", Some("gzip"), &[0x1f_u8, 0x8b][..]),
        (
            "zst",
            "zstd",
            ".db.zst",
            Some("zstd"),
            &[0x28, 0xb5, 0x2f, 0xfd][..],
        ),
        (
            "plain",
            "none",
            ".db",
            None,
            b"SQLite format 3\0".as_slice(),
        ),
    ] {
        let rows = sb.rows_for(name);
        assert_eq!(rows.len(), 1, "{rows:#?}");
        let path = assert_success_row(&rows[0], name, "sqlite");
        assert_eq!(rows[0]["compression"], compression, "{:#}", rows[0]);
        let file_name = rows[0]["file_name"].as_str().unwrap();
        assert!(
            file_name.ends_with(suffix),
            "{file_name} should end with {suffix}"
        );
        let bytes = fs::read(&path).unwrap();
        assert!(
            bytes.starts_with(magic),
            "{file_name} has wrong magic bytes"
        );

        let (_tmp, conn) = match tool {
            Some(tool) => open_decompressed(tool, &path),
            None => open_copy(&path),
        };
        assert_eq!(sqlite_integrity(&conn), "ok", "{name}");
        assert_eq!(sqlite_fingerprint(&conn), expected, "{name}");
    }
}

#[test]
fn files_are_private_even_with_permissive_umask() {
    let sb = Sandbox::new();
    create_sample_sqlite(&sb.path().join("app.db"));
    sb.write_config(
        r#"
[[databases]]
name = "app"
url = "sqlite:app.db"

[[databases]]
name = "appgz"
url = "sqlite:app.db"
compression = "gzip"
"#,
    );

    let mut cmd = assert_cmd::Command::new("sh");
    cmd.current_dir(sb.path())
        .arg("-c")
        .arg(r#"umask 000 && exec "$0" "$@""#)
        .arg(bin_path())
        .arg("--config")
        .arg(sb.config_path())
        .arg("backup");
    for var in SCRUBBED_ENV {
        cmd.env_remove(var);
    }
    run_cmd(&mut cmd).assert_success();

    for name in ["app", "appgz"] {
        let dir = sb.db_dir(name);
        assert_eq!(mode_of(&dir), 0o700, "mode of {}", dir.display());
        let files = files_below(&dir);
        assert_eq!(files.len(), 1, "{files:?}");
        for file in files {
            assert_eq!(mode_of(&file), 0o600, "mode of {}", file.display());
        }
    }
}

#[test]
fn catalog_sha256_and_size_match_the_files() {
    let sb = Sandbox::new();
    create_sample_sqlite(&sb.path().join("app.db"));
    sb.write_config(
        r#"
[[databases]]
name = "plain"
url = "sqlite:app.db"

[[databases]]
name = "zst"
url = "sqlite:app.db"
compression = "zstd"
"#,
    );
    sb.run(&["backup"]).assert_success();

    let rows = sb.list_json();
    assert_eq!(rows.len(), 2, "{rows:#?}");
    for row in rows {
        let name = row["database"].as_str().unwrap().to_string();
        let path = assert_success_row(&row, &name, "sqlite");
        let sha = row["sha256"].as_str().expect("sha256 is a string");
        assert_eq!(sha.len(), 64, "{row:#}");
        assert!(
            sha.chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
            "sha256 is not lowercase hex: {sha}"
        );
        assert_eq!(sha, sha256sum(&path), "sha256 mismatch for {name}");
        let len = fs::metadata(&path).unwrap().len();
        assert_eq!(row["size_bytes"].as_u64(), Some(len), "{row:#}");
    }
}

/// Sleeps until just after the start of a new wall-clock second.
fn wait_for_second_boundary() {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    sleep(Duration::from_nanos(u64::from(1_000_000_000 - nanos)) + Duration::from_millis(5));
}

/// `sqlite_backup_YYYYMMDD_HHMMSS` part of a file name.
fn second_of(file_name: &str) -> &str {
    let stem = file_name
        .strip_prefix("sqlite_backup_")
        .unwrap_or(file_name);
    &stem[..stem.len().min(15)]
}

/// Names on a clock other than UTC's (one without daylight saving: the test holds all year).
const TOKYO: &str = "timezone = \"Asia/Tokyo\"";

#[test]
fn a_new_backup_is_named_on_the_configured_zones_clock() {
    let sandbox = Sandbox::new();
    create_sample_sqlite(&sandbox.path().join("app.db"));
    sandbox.write_config(&format!(
        "{TOKYO}\n{}",
        single_db_config("app", "sqlite:app.db", "")
    ));
    sandbox
        .run(&["backup", "-d", "app", "--no-cleanup"])
        .assert_success();
    let row = &sandbox.rows_for("app")[0];
    let started = chrono::DateTime::parse_from_rfc3339(row["started_at"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc);
    let tokyo: chrono_tz::Tz = "Asia/Tokyo".parse().unwrap();
    let name = row["file_name"].as_str().unwrap();
    let stamp = name
        .strip_prefix("sqlite_backup_")
        .and_then(|n| n.strip_suffix(".db"))
        .unwrap();
    // The name says the second on Tokyo's clock that the catalog's UTC instant falls in.
    let wall = chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%d_%H%M%S").unwrap();
    assert_eq!(
        wall,
        started
            .with_timezone(&tokyo)
            .naive_local()
            .with_nanosecond(0)
            .unwrap(),
        "{row:#}"
    );
    assert_ne!(
        stamp,
        started.format("%Y%m%d_%H%M%S").to_string(),
        "the name is not UTC's"
    );
}

#[test]
fn two_backups_in_the_same_second_get_distinct_names() {
    let sb = Sandbox::new();
    create_sample_sqlite(&sb.path().join("app.db"));
    // Names on Tokyo's clock collide as UTC's did.
    sb.write_config(&format!(
        "{TOKYO}\n{}",
        single_db_config("app", "sqlite:app.db", "")
    ));

    let mut collided = None;
    for _ in 0..5 {
        wait_for_second_boundary();
        sb.run(&["backup"]).assert_success();
        sb.run(&["backup"]).assert_success();
        let rows = sb.rows_for("app");
        let newest = rows[0]["file_name"].as_str().unwrap().to_string();
        let previous = rows[1]["file_name"].as_str().unwrap().to_string();
        if second_of(&newest) == second_of(&previous) {
            collided = Some((previous, newest));
            break;
        }
    }
    let (first, second) =
        collided.expect("could not run two backups within the same second in 5 attempts");
    assert_ne!(first, second);
    assert_eq!(first, format!("sqlite_backup_{}.db", second_of(&first)));
    assert_eq!(second, format!("sqlite_backup_{}_2.db", second_of(&first)));

    // Every catalogued backup still exists under its own name.
    let rows = sb.rows_for("app");
    let mut names: Vec<String> = rows
        .iter()
        .map(|r| {
            let path = assert_success_row(r, "app", "sqlite");
            assert!(path.exists(), "{} is missing", path.display());
            r["file_name"].as_str().unwrap().to_string()
        })
        .collect();
    names.sort();
    let count = names.len();
    names.dedup();
    assert_eq!(names.len(), count, "duplicate file names: {names:?}");
    assert_eq!(file_names(&sb.db_dir("app")), names);
}
