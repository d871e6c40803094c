//! `dbkeep import FILE... -d NAME`: a folder of old backups in one command, each at the time
//! its name gives on the configured zone's wall clock, oldest first, the ones already in the
//! catalog skipped and a bad one failing alone.

use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeZone as _, Utc};
use chrono_tz::Tz;

use crate::common::*;

const BERLIN: &str = "timezone = \"Europe/Berlin\"\n";

/// A sandbox whose `app` is a SQLite database, with times read in `zone_line`'s zone.
fn sandbox_in(zone_line: &str) -> Sandbox {
    let sandbox = Sandbox::new();
    create_sample_sqlite(&sandbox.path().join("app.db"));
    sandbox.write_config(&format!(
        "{zone_line}[[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n"
    ));
    sandbox
}

/// A copy of `base` at `to` with one more row, `tag`: a file with a SHA-256 of its own.
fn variant(base: &Path, to: &Path, tag: &str) {
    fs::copy(base, to).unwrap();
    let conn = rusqlite::Connection::open(to).unwrap();
    conn.execute("INSERT INTO users (name) VALUES (?1)", [tag])
        .unwrap();
}

fn instant(row: &serde_json::Value, field: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(row[field].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

fn args<'a>(files: &'a [PathBuf], database: &'a str) -> Vec<&'a str> {
    let mut args = vec!["import"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    args.extend(["-d", database]);
    args
}

#[test]
fn a_folder_of_old_backups_comes_in_with_its_times_once() {
    let sandbox = sandbox_in(BERLIN);
    let berlin: Tz = "Europe/Berlin".parse().unwrap();
    let old = sandbox.path().join("old");
    fs::create_dir(&old).unwrap();
    let base = sandbox.path().join("base.db");
    create_sample_sqlite(&base);
    // 30 days from 16 March 2025, across the night the clocks went forward (30 March, when
    // 02:00 became 03:00): each file's stamp, its instant and the name dbkeep gives it.
    let mut expected: Vec<(PathBuf, DateTime<Utc>, String)> = Vec::new();
    for day in 0..30 {
        let date =
            chrono::NaiveDate::from_ymd_opt(2025, 3, 16).unwrap() + chrono::TimeDelta::days(day);
        let hour = (day % 24) as u32;
        let (wall, at) = if date.format("%m%d").to_string() == "0330" {
            // 02:30 that night never happened: the first instant after the gap, 03:00 CEST.
            let wall = date.and_hms_opt(2, 30, 0).unwrap();
            (wall, "2025-03-30T01:00:00Z".parse().unwrap())
        } else {
            let wall = date.and_hms_opt(hour, 15, 7).unwrap();
            let at = berlin.from_local_datetime(&wall).single().unwrap();
            (wall, at.with_timezone(&Utc))
        };
        // Named again on Berlin's clock: the same stamp, but 03:00 for the time that was not.
        let stamp = at
            .with_timezone(&berlin)
            .format("%Y%m%d_%H%M%S")
            .to_string();
        let name = format!("sqlite_backup_{}.db", wall.format("%Y%m%d_%H%M%S"));
        let file = old.join(&name);
        variant(&base, &file, &format!("day {day}"));
        if day == 14 {
            assert_eq!(stamp, "20250330_030000");
        } else {
            assert_eq!(stamp, wall.format("%Y%m%d_%H%M%S").to_string());
        }
        expected.push((file, at, format!("sqlite_backup_{stamp}.db")));
    }
    // A file that is no backup, and one the same as the sixth day's under another name.
    let bad = old.join("sqlite_backup_20250101_000000.db");
    fs::write(&bad, vec![b'x'; 4096]).unwrap();
    let duplicate = old.join("sqlite_backup_20250501_000000.db");
    fs::copy(&expected[5].0, &duplicate).unwrap();
    // Given newest first, and the others among them: imported oldest first all the same.
    let mut files: Vec<PathBuf> = expected.iter().rev().map(|(f, ..)| f.clone()).collect();
    files.insert(7, bad.clone());
    files.insert(3, duplicate.clone());

    let run = sandbox.run(&args(&files, "app"));
    run.assert_code(1);
    assert!(!run.all_output().contains('\x1b'), "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 33, "{run:?}");
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("imported  #"))
            .count(),
        30,
        "{run:?}"
    );
    assert_eq!(
        lines.last(),
        Some(&"imported 30, skipped 1, failed 1"),
        "{run:?}"
    );
    let failed: Vec<&&str> = lines.iter().filter(|l| l.starts_with("failed")).collect();
    assert_eq!(failed.len(), 1, "{run:?}");
    assert!(
        failed[0].starts_with(&format!("failed  {}: ", bad.display()))
            && failed[0].contains("not a SQLite database"),
        "{run:?}"
    );

    let mut rows = sandbox.rows_for("app");
    rows.sort_by_key(|r| r["id"].as_i64().unwrap());
    assert_eq!(rows.len(), 30, "{rows:#?}");
    // Oldest first: the ids increase with the times, each the name's on Berlin's clock.
    for (row, (file, at, name)) in rows.iter().zip(&expected) {
        let path = assert_success_row(row, "app", "sqlite");
        assert_eq!(row["trigger"], "import", "{row:#}");
        assert_eq!(
            instant(row, "started_at"),
            *at,
            "{}: {row:#}",
            file.display()
        );
        assert_eq!(row["file_name"], name.as_str(), "{row:#}");
        assert_eq!(row["sha256"].as_str().unwrap(), sha256sum(file));
        assert_eq!(sha256sum(&path), sha256sum(file));
    }
    let sixth = &rows[5]["id"];
    assert!(
        lines.contains(&&*format!(
            "skipped  {}  (already imported as #{sixth})",
            duplicate.display()
        )),
        "{run:?}"
    );

    // Again: nothing new comes in, and only the bad file fails.
    let again = sandbox.run(&args(&files, "app"));
    again.assert_code(1);
    assert!(
        again.stdout.ends_with("imported 0, skipped 31, failed 1\n"),
        "{again:?}"
    );
    for (row, (file, ..)) in rows.iter().zip(&expected) {
        let line = format!(
            "skipped  {}  (already imported as #{})",
            file.display(),
            row["id"]
        );
        assert!(again.stdout.contains(&line), "{line}: {again:?}");
    }
    // Without the bad file, all skipped: nothing failed.
    let good: Vec<PathBuf> = expected.iter().map(|(f, ..)| f.clone()).collect();
    let good_again = sandbox.run(&args(&good, "app"));
    good_again.assert_success();
    assert!(
        good_again
            .stdout
            .ends_with("imported 0, skipped 30, failed 0\n"),
        "{good_again:?}"
    );
    assert_eq!(sandbox.rows_for("app").len(), 30);
    assert_eq!(files_below(&sandbox.db_dir("app")).len(), 30);
}

#[test]
fn two_files_of_the_repeated_hour_get_the_earlier_instant_and_one_name_each() {
    let sandbox = sandbox_in(BERLIN);
    let base = sandbox.path().join("base.db");
    create_sample_sqlite(&base);
    // 02:30 on 26 October 2025 happened twice in Berlin (03:00 CEST became 02:00 CET).
    let mut files = Vec::new();
    for dir in ["a", "b"] {
        fs::create_dir(sandbox.path().join(dir)).unwrap();
        let file = sandbox
            .path()
            .join(dir)
            .join("sqlite_backup_20251026_023000.db");
        variant(&base, &file, dir);
        files.push(file);
    }
    sandbox.run(&args(&files, "app")).assert_success();
    let mut rows = sandbox.rows_for("app");
    rows.sort_by_key(|r| r["id"].as_i64().unwrap());
    let earlier: DateTime<Utc> = "2025-10-26T00:30:00Z".parse().unwrap();
    assert_eq!(instant(&rows[0], "started_at"), earlier);
    assert_eq!(instant(&rows[1], "started_at"), earlier);
    assert_eq!(rows[0]["file_name"], "sqlite_backup_20251026_023000.db");
    assert_eq!(rows[1]["file_name"], "sqlite_backup_20251026_023000_2.db");
}

#[test]
fn postgres_dumps_come_in_oldest_first_and_a_copy_is_skipped() {
    let source = PgDb::create("import_many");
    let sandbox = Sandbox::new();
    sandbox.write_config(&format!(
        "{BERLIN}[[databases]]\nname = \"pg\"\nurl = \"{}\"\n",
        source.url()
    ));
    let old = sandbox.path().join("old");
    fs::create_dir(&old).unwrap();
    let dump = |name: &str| {
        let file = old.join(name);
        bash(&format!(
            "pg_dump --no-password '{}' | gzip > '{}'",
            source.url(),
            file.display()
        ));
        file
    };
    source.psql("CREATE TABLE t (x int); INSERT INTO t VALUES (1);");
    let first = dump("postgres_backup_20250101_010000.sql.gz");
    source.psql("INSERT INTO t VALUES (2);");
    let second = dump("postgres_backup_20250701_010000.sql.gz");
    let copy = old.join("postgres_backup_20250801_010000.sql.gz");
    fs::copy(&second, &copy).unwrap();

    let files = [copy.clone(), second.clone(), first.clone()];
    let run = sandbox.run(&args(&files, "pg"));
    run.assert_success();
    let mut rows = sandbox.rows_for("pg");
    rows.sort_by_key(|r| r["id"].as_i64().unwrap());
    assert_eq!(rows.len(), 2, "{run:?}");
    // 01:00 in Berlin: 00:00 UTC in winter, 23:00 the day before in summer.
    assert_eq!(
        instant(&rows[0], "started_at"),
        "2025-01-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
    );
    assert_eq!(
        instant(&rows[1], "started_at"),
        "2025-06-30T23:00:00Z".parse::<DateTime<Utc>>().unwrap()
    );
    assert_eq!(
        rows[1]["file_name"],
        "postgres_backup_20250701_010000.sql.gz"
    );
    assert_eq!(rows[1]["compression"], "gzip");
    assert!(
        run.stdout.contains(&format!(
            "skipped  {}  (already imported as #{})",
            copy.display(),
            rows[1]["id"]
        )),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("(1 table(s), taken 2025-07-01 01:00:00 CEST)"),
        "{run:?}"
    );
    assert!(
        run.stdout.ends_with("imported 2, skipped 1, failed 0\n"),
        "{run:?}"
    );
}
