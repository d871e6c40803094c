//! A dump file is data from disk: a tampered one must never run a command on this machine,
//! and a restore must commit all of a file or nothing of it, also when dbkeep is killed.
//! Every case runs on plain, gzip, zstd and age-encrypted files, on PostgreSQL and MariaDB.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;
use crate::encryption::keygen;
use crate::mysql::{MyDb, try_mariadb};

/// The four ways a backup file is stored, as `[[databases]]` names.
const VARIANTS: [&str; 4] = ["plain", "gzip", "zstd", "age"];

/// A sandbox backing up `url` four times over (see [`VARIANTS`]), the age one to a new
/// identity `key.txt` beside the configuration (which opens it); with the public key.
fn four_ways(url: &str, extra: &str) -> (Sandbox, String) {
    let sandbox = Sandbox::new();
    let (_, public) = keygen(sandbox.path(), "key.txt");
    let mut config = format!("identity_file = \"key.txt\"\n{extra}");
    for (name, compression) in [
        ("plain", "none"),
        ("gzip", "gzip"),
        ("zstd", "zstd"),
        ("age", "gzip"),
    ] {
        config.push_str(&format!(
            "[[databases]]\nname = \"{name}\"\nurl = \"{url}\"\ncompression = \"{compression}\"\n"
        ));
        if name == "age" {
            config.push_str(&format!("age_recipients = [\"{public}\"]\n"));
        }
    }
    sandbox.write_config(&config);
    (sandbox, public)
}

/// The decoding and encoding shell stages of a stored file, by its name.
fn stages(file: &Path, sandbox: &Sandbox, public: &str) -> (String, String) {
    let name = file.to_string_lossy();
    let stem = name.trim_end_matches(".age");
    let (mut decode, mut encode) = if stem.ends_with(".gz") {
        (" | gzip -dc".to_string(), " | gzip -c".to_string())
    } else if stem.ends_with(".zst") {
        (" | zstd -q -dc".to_string(), " | zstd -q -c".to_string())
    } else {
        (String::new(), String::new())
    };
    if name.ends_with(".age") {
        let key = sandbox.path().join("key.txt");
        decode = format!(" | age -d -i '{}'{decode}", key.display());
        encode.push_str(&format!(" | age -r {public}"));
    }
    (decode, encode)
}

fn stored_file(row: &Value) -> PathBuf {
    assert_success_row(
        row,
        row["database"].as_str().unwrap(),
        row["kind"].as_str().unwrap(),
    )
}

/// Backup `row`'s file as the database tool wrote it (decrypted, decompressed).
fn dump_of(sandbox: &Sandbox, row: &Value, public: &str) -> String {
    let file = stored_file(row);
    let (decode, _) = stages(&file, sandbox, public);
    String::from_utf8(bash(&format!("cat '{}'{decode}", file.display()))).unwrap()
}

/// Replaces backup `row`'s file with `text`, stored as it was (compressed, encrypted), and
/// records it as it now is: what follows tests what lies beyond the checksum.
fn replace_with(sandbox: &Sandbox, row: &Value, public: &str, text: &[u8]) {
    let plain = sandbox.path().join("replacement");
    fs::write(&plain, text).unwrap();
    let file = stored_file(row);
    let (_, encode) = stages(&file, sandbox, public);
    bash(&format!(
        "cat '{}'{encode} > '{}'",
        plain.display(),
        file.display()
    ));
    record_as_is(sandbox, row["id"].as_i64().unwrap(), &file);
}

/// Marker files that a command run from a dump would create.
fn marks(sandbox: &Sandbox, tag: &str) -> Vec<PathBuf> {
    (1..=3)
        .map(|i| sandbox.path().join(format!("ran_{tag}_{i}")))
        .collect()
}

fn assert_none_made(marks: &[PathBuf], runs: &[Run]) {
    for mark in marks {
        assert!(
            !mark.exists(),
            "{} was made by a command in the dump: {runs:#?}",
            mark.display()
        );
    }
}

fn pg_database_exists(name: &str) -> bool {
    psql(
        &pg_url(),
        None,
        &format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'"),
    )
    .trim()
        == "1"
}

/// An edit of a dump's text.
type Attack<'a> = Box<dyn Fn(&str) -> String + 'a>;

/// A point of a restore to stop it at.
type Ready<'a> = Box<dyn Fn() -> bool + 'a>;

/// psql meta-commands at the very top, and after the dump's own `\restrict` line lifted with
/// the key the file shows.
fn pg_attacks(marks: &[PathBuf]) -> [Attack<'_>; 2] {
    [
        Box::new(move |dump: &str| format!("\\! touch '{}'\n{dump}", marks[0].display())),
        Box::new(move |dump: &str| {
            let line = dump
                .lines()
                .find(|l| l.starts_with("\\restrict "))
                .expect("pg_dump writes its own \\restrict line");
            let key = line.trim_start_matches("\\restrict ");
            let lifted = format!(
                "{line}\n\\unrestrict {key}\n\\o '{}'\n\\copy (select 1) to program 'touch {}'\n\\o\n",
                marks[1].display(),
                marks[2].display()
            );
            dump.replacen(&format!("{line}\n"), &lifted, 1)
        }),
    ]
}

#[test]
fn psql_meta_commands_in_a_dump_never_run_on_verify_or_restore() {
    let source = PgDb::create("meta_src");
    source.psql(
        "CREATE TABLE notes (id int PRIMARY KEY, body text);
         INSERT INTO notes SELECT g, 'note ' || g FROM generate_series(1, 50) g;",
    );
    let (sandbox, public) = four_ways(&source.url(), "");
    sandbox.run(&["backup"]).assert_success();
    let target = PgDb::create("meta_dst");
    target.psql("CREATE TABLE precious (x int); INSERT INTO precious VALUES (7);");
    for db in VARIANTS {
        let row = sandbox.rows_for(db)[0].clone();
        let id = row["id"].to_string();
        let marks = marks(&sandbox, db);
        let original = dump_of(&sandbox, &row, &public);
        for attack in pg_attacks(&marks) {
            replace_with(&sandbox, &row, &public, attack(&original).as_bytes());
            let created = format!("{}_{db}", target.name);
            let _created = PgDb::existing(created.clone());
            let runs = [
                sandbox.run(&["verify", &id]),
                sandbox.run(&[
                    "restore",
                    &id,
                    "--to",
                    &url_with(&pg_url(), &created, None),
                    "--create",
                ]),
                sandbox.run(&["restore", &id, "--to", &target.url(), "--force"]),
            ];
            assert_none_made(&marks, &runs);
            for run in &runs {
                run.assert_code(1);
                assert!(
                    run.all_output()
                        .contains("backslash commands are restricted"),
                    "{db}: {run:?}"
                );
            }
            assert!(!pg_database_exists(&created), "{db}: {runs:#?}");
            assert_eq!(target.scalar("SELECT x FROM precious"), "7", "{db}");
        }
    }
    // The untouched dump, with pg_dump's own \restrict lines, still restores.
    let fresh = sandbox.run(&["backup", "-d", "gzip"]);
    fresh.assert_success();
    let id = sandbox.rows_for("gzip")[0]["id"].to_string();
    sandbox
        .run(&["restore", &id, "--to", &target.url(), "--force"])
        .assert_success();
    assert_eq!(target.scalar("SELECT count(*) FROM notes"), "50");
}

#[test]
fn a_psql_without_restrict_is_refused_rather_than_trusted() {
    let source = PgDb::create("oldpsql_src");
    source.psql("CREATE TABLE t (x int); INSERT INTO t VALUES (1);");
    let sandbox = Sandbox::new();
    // A client without \restrict: the real psql, with the command missing from its help.
    let bin = sandbox.path().join("bin");
    fs::create_dir(&bin).unwrap();
    let write = |name: &str, body: &str| {
        let path = bin.join(name);
        fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    };
    let real = |tool: &str| {
        String::from_utf8(bash(&format!("command -v {tool}")))
            .unwrap()
            .trim()
            .to_string()
    };
    write("pg_dump", &format!("exec {} \"$@\"", real("pg_dump")));
    write(
        "psql",
        &format!(
            "if [ \"$1\" = --help=commands ]; then {0} --help=commands | grep -v restrict; exit 0; fi\nexec {0} \"$@\"",
            real("psql")
        ),
    );
    sandbox.write_config(&format!(
        "pg_dump_path = \"bin/pg_dump\"\n[[databases]]\nname = \"pg\"\nurl = \"{}\"\ncompression = \"none\"\n",
        source.url()
    ));
    sandbox.run(&["backup"]).assert_success();
    let row = sandbox.rows_for("pg")[0].clone();
    let marks = marks(&sandbox, "old");
    let file = assert_success_row(&row, "pg", "postgres");
    let text = fs::read_to_string(&file).unwrap();
    fs::write(&file, format!("\\! touch '{}'\n{text}", marks[0].display())).unwrap();
    record_as_is(&sandbox, row["id"].as_i64().unwrap(), &file);
    let target = PgDb::create("oldpsql_dst");
    let runs = [
        sandbox.run(&["restore", &row["id"].to_string(), "--to", &target.url()]),
        sandbox.run(&["verify", &row["id"].to_string()]),
    ];
    assert_none_made(&marks, &runs);
    for run in &runs {
        assert_ne!(run.code, Some(0), "{run:?}");
        assert!(run.all_output().contains("\\restrict"), "{run:?}");
        assert!(run.all_output().contains("15.14"), "{run:?}");
    }
    assert_eq!(
        target.scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"),
        "0"
    );
}

/// MySQL client commands at the very top (before mariadb-dump's own sandbox line) and after
/// the first table.
fn mysql_attacks(marks: &[PathBuf]) -> [Attack<'_>; 2] {
    [
        Box::new(move |dump: &str| format!("system touch '{}'\n{dump}", marks[0].display())),
        Box::new(move |dump: &str| {
            let without_sandbox: String = dump
                .lines()
                .filter(|l| !l.contains("enable the sandbox mode"))
                .map(|l| format!("{l}\n"))
                .collect();
            without_sandbox.replacen(
                "UNLOCK TABLES;\n",
                &format!("UNLOCK TABLES;\n\\! touch '{}'\n", marks[1].display()),
                1,
            )
        }),
    ]
}

#[test]
fn mysql_client_commands_in_a_dump_never_run_on_verify_or_restore() {
    let source = MyDb::create("my_meta_src");
    source.sql(
        "CREATE TABLE notes (id INT PRIMARY KEY, body TEXT);
         INSERT INTO notes VALUES (1, 'one'), (2, 'two');",
    );
    let (sandbox, public) = four_ways(&source.url(), "");
    sandbox.run(&["backup"]).assert_success();
    let target = MyDb::create("my_meta_dst");
    target.sql("CREATE TABLE precious (x INT); INSERT INTO precious VALUES (7);");
    for db in VARIANTS {
        let row = sandbox.rows_for(db)[0].clone();
        let id = row["id"].to_string();
        let marks = marks(&sandbox, db);
        let original = dump_of(&sandbox, &row, &public);
        for attack in mysql_attacks(&marks) {
            replace_with(&sandbox, &row, &public, attack(&original).as_bytes());
            let created = MyDb::existing(&unique_name("my_meta_new"));
            let runs = [
                sandbox.run(&["verify", &id]),
                sandbox.run(&["restore", &id, "--to", &created.url(), "--create"]),
                sandbox.run(&["restore", &id, "--to", &target.url(), "--force"]),
            ];
            assert_none_made(&marks, &runs);
            for run in &runs {
                run.assert_code(1);
                assert!(
                    run.all_output().contains("Not allowed in the sandbox mode"),
                    "{db}: {run:?}"
                );
            }
            assert!(!created.exists(), "{db}: {runs:#?}");
            // MySQL commits each statement: what --force replaced is gone, and the target
            // says its restore did not end.
            assert!(marked_incomplete(&target), "{db}");
        }
    }
}

/// What a killed restore left in the target: `Some(false)` nothing of it (`precious` as it
/// was, no `big`), `Some(true)` all of it (every row of `big`, no `precious`), `None` a part.
fn pg_all_or_nothing(target: &PgDb) -> Option<bool> {
    let tables = target.scalar(
        "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'",
    );
    match tables.as_str() {
        "precious" => (target.scalar("SELECT x FROM precious") == "7").then_some(false),
        "big" => {
            (target.scalar("SELECT count(*) FROM big") == BIG_ROWS.to_string()).then_some(true)
        }
        _ => None,
    }
}

/// `dbkeep ARGS` as a child of this test, to kill.
fn spawn_dbkeep(sandbox: &Sandbox, args: &[&str]) -> Child {
    let mut cmd = Command::new(bin_path());
    cmd.arg("--config")
        .arg(sandbox.config_path())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for var in SCRUBBED_ENV {
        cmd.env_remove(var);
    }
    cmd.spawn().unwrap()
}

/// Polls `ready` until it holds (or `child` ended, which fails the test), then kills `child`
/// with SIGKILL.
fn kill_when(child: &mut Child, what: &str, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ready() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("dbkeep ended ({status}) before {what}");
        }
        assert!(Instant::now() < deadline, "never saw {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Waits until no psql session is left on database `name` (the killed dbkeep's client sees
/// its input end and goes).
fn pg_sessions_gone(name: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = psql(
            &pg_url(),
            None,
            &format!("SELECT count(*) FROM pg_stat_activity WHERE datname = '{name}'"),
        );
        if left.trim() == "0" {
            return;
        }
        assert!(Instant::now() < deadline, "sessions on {name} stay");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn copied_rows(database_like: &str) -> u64 {
    psql(
        &pg_url(),
        None,
        &format!(
            "SELECT coalesce(max(tuples_processed), 0) FROM pg_stat_progress_copy WHERE datname LIKE '{database_like}'"
        ),
    )
    .trim()
    .parse()
    .unwrap()
}

fn pg_active(database: &str, query_like: &str) -> bool {
    psql(
        &pg_url(),
        None,
        &format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{database}' AND state = 'active' AND query LIKE '{query_like}'"
        ),
    )
    .trim()
        != "0"
}

const BIG_ROWS: u64 = 1_000_000;

#[test]
fn a_killed_postgres_restore_commits_nothing_and_leaves_no_new_database() {
    let source = PgDb::create("kill_src");
    source.psql(&format!(
        "CREATE TABLE big (id int PRIMARY KEY, body text);
         INSERT INTO big SELECT g, md5(g::text) || md5((-g)::text) FROM generate_series(1, {BIG_ROWS}) g;"
    ));
    let (sandbox, _) = four_ways(&source.url(), "");
    sandbox.run(&["backup"]).assert_success();
    let id = |variant: &str| sandbox.rows_for(variant)[0]["id"].to_string();
    let target = PgDb::create("kill_dst");
    target.psql("CREATE TABLE precious (x int); INSERT INTO precious VALUES (7);");
    let name = target.name.clone();
    let restore = |variant: &str| {
        spawn_dbkeep(
            &sandbox,
            &["restore", &id(variant), "--to", &target.url(), "--force"],
        )
    };

    // Until dbkeep has sent the whole file and seen its checksum match, nothing commits.
    let mut points: Vec<(&str, &str, Ready<'_>)> = vec![
        (
            "plain",
            "the load's first statements",
            Box::new(|| pg_active(&name, "%") || copied_rows(&name) > 0),
        ),
        (
            "plain",
            "the first rows copied",
            Box::new(|| copied_rows(&name) > 0),
        ),
    ];
    for variant in VARIANTS {
        points.push((
            variant,
            "half the rows copied",
            Box::new(|| copied_rows(&name) > BIG_ROWS / 2),
        ));
    }
    for (variant, what, ready) in points {
        let mut child = restore(variant);
        kill_when(&mut child, what, ready);
        pg_sessions_gone(&name);
        assert_eq!(
            pg_all_or_nothing(&target),
            Some(false),
            "{variant}: killed at {what}"
        );
    }
    // Once it has (psql still building the primary key), the load commits whole or not at all.
    let mut child = restore("zstd");
    kill_when(&mut child, "the primary key being built", || {
        pg_active(&name, "ALTER TABLE ONLY public.big%")
    });
    pg_sessions_gone(&name);
    assert!(
        pg_all_or_nothing(&target).is_some(),
        "killed while the primary key was built"
    );

    // Into a new database, over two connections: a killed load leaves nothing under the
    // target's name, only its temporary database, which the next restore drops.
    let fresh = unique_name("kill_new");
    let restored = PgDb::existing(fresh.clone());
    let url = url_with(&pg_url(), &fresh, None);
    let left = |like: &str| {
        psql(
            &pg_url(),
            None,
            &format!("SELECT count(*) FROM pg_database WHERE datname LIKE '{like}'"),
        )
        .trim()
        .to_string()
    };
    let new_database = |variant: &str| {
        let args = [
            "restore",
            &id(variant),
            "--to",
            &url,
            "--create",
            "--jobs",
            "2",
        ];
        spawn_dbkeep(&sandbox, &args)
    };
    let mut before: Option<String> = None;
    for variant in VARIANTS {
        let mut child = new_database(variant);
        let staging = format!(
            "dbkeep\\_restore\\_{}\\_%",
            owner_part(child.id()).replace('_', "\\_")
        );
        // Each 8 MiB unit of a shared table is a COPY of its own.
        kill_when(
            &mut child,
            "rows copied into the temporary database",
            || copied_rows(&staging) > 50_000,
        );
        assert!(
            !pg_database_exists(&fresh),
            "{variant}: a killed restore left a database under the target's name"
        );
        assert_eq!(left(&staging), "1", "{variant}: its temporary database");
        if let Some(before) = before.replace(staging) {
            assert_eq!(left(&before), "0", "{variant}: what the run before it left");
        }
    }
    let mut last = new_database("age");
    assert!(last.wait().unwrap().success());
    assert_eq!(
        left(before.as_deref().unwrap_or_default()),
        "0",
        "the next run drops what the killed one left"
    );
    assert_eq!(
        restored.scalar("SELECT count(*) FROM big"),
        BIG_ROWS.to_string()
    );

    // Left alone, the restore over the target replaces its contents whole.
    sandbox
        .run(&["restore", &id("gzip"), "--to", &target.url(), "--force"])
        .assert_success();
    assert_eq!(pg_all_or_nothing(&target), Some(true));
}

/// Whether `db` holds the table that marks an incomplete restore.
fn marked_incomplete(db: &MyDb) -> bool {
    db.sql(
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'dbkeep_restore_incomplete'",
    ) == "1"
}

#[test]
fn a_killed_mysql_restore_is_marked_incomplete_and_only_force_replaces_it() {
    let source = MyDb::create("my_kill_src");
    source.sql(
        "CREATE TABLE big (id INT PRIMARY KEY, body VARCHAR(80));
         SET SESSION max_recursive_iterations = 1000000;
         INSERT INTO big WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300000) \
           SELECT i, CONCAT(MD5(i), MD5(-i)) FROM n;",
    );
    let (sandbox, _) = four_ways(&source.url(), "");
    sandbox.run(&["backup"]).assert_success();
    let target = MyDb::create("my_kill_dst");
    let in_target = |sql: &str| {
        try_mariadb(None, &sql.replace("TARGET", &target.name))
            .unwrap()
            .trim()
            .to_string()
    };
    for variant in VARIANTS {
        target.sql(
            "CREATE TABLE IF NOT EXISTS precious (x INT); DELETE FROM precious; INSERT INTO precious VALUES (7);",
        );
        let id = sandbox.rows_for(variant)[0]["id"].to_string();
        let mut child = spawn_dbkeep(
            &sandbox,
            &["restore", &id, "--to", &target.url(), "--force"],
        );
        kill_when(&mut child, "rows loading into big", || {
            in_target(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = 'TARGET' AND INFO LIKE 'INSERT INTO `big`%'",
            ) != "0"
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        while in_target("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = 'TARGET'")
            != "0"
        {
            assert!(Instant::now() < deadline, "the client stays");
            std::thread::sleep(Duration::from_millis(50));
        }
        // MySQL commits each statement: what it could not undo is marked, for all to see.
        assert!(marked_incomplete(&target), "{variant}");
        let refused = sandbox.run(&["restore", &id, "--to", &target.url()]);
        refused.assert_code(2);
        assert!(
            refused.stderr.contains("incomplete restore"),
            "{variant}: {refused:?}"
        );
    }
    let id = sandbox.rows_for("age")[0]["id"].to_string();
    sandbox
        .run(&["restore", &id, "--to", &target.url(), "--force"])
        .assert_success();
    assert_eq!(target.sql("SELECT COUNT(*) FROM big"), "300000");
    assert!(!marked_incomplete(&target));
    assert_eq!(
        target.sql(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'precious'"
        ),
        "0"
    );
}

/// An imported file: `bytes` as `name`, imported into `database`; returns its id.
fn imported(sandbox: &Sandbox, name: &str, bytes: &[u8], database: &str) -> String {
    let file = sandbox.path().join(name);
    fs::write(&file, bytes).unwrap();
    let run = sandbox.run(&["import", file.to_str().unwrap(), "-d", database]);
    run.assert_success();
    sandbox.rows_for(database)[0]["id"].to_string()
}

#[test]
fn restore_level_verify_fails_files_that_restore_nothing() {
    let pg = PgDb::create("nothing_pg");
    let my = MyDb::create("nothing_my");
    let sandbox = Sandbox::new();
    sandbox.write_config(&format!(
        "[[databases]]\nname = \"pg\"\nurl = \"{}\"\n[[databases]]\nname = \"my\"\nurl = \"{}\"\n",
        pg.url(),
        my.url()
    ));
    let nul = vec![0u8; 8 * 1024 * 1024];
    let mut unterminated = b"SELECT 'AAA".to_vec();
    unterminated.extend(std::iter::repeat_n(b'A', 1024 * 1024));
    let empty_statements = b"-- nothing here\nSELECT 1;\n".to_vec();
    let open_comment = b"CREATE TABLE t (x int);\n/* never closed\n".to_vec();
    // What each file is refused with: the client's own error where it has one (both run what
    // is left at the end of their input; the MySQL client refuses NUL bytes), else dbkeep's: an
    // end of the load taken into a comment that never closes (the MySQL client then says
    // nothing) is unconfirmed, and a load that makes no table restored nothing.
    let cases: [(&str, &[u8], &str, &str); 4] = [
        ("nul", &nul, "restored nothing", "ASCII '\\0' appeared"),
        (
            "unterminated",
            &unterminated,
            "unterminated quoted string",
            "mariadb exited with code 1",
        ),
        (
            "comment",
            &open_comment,
            "unterminated /* comment",
            "without running the end of the load",
        ),
        (
            "empty",
            &empty_statements,
            "restored nothing",
            "restored nothing",
        ),
    ];
    for db in ["pg", "my"] {
        let kind = if db == "pg" { "postgres" } else { "mysql" };
        for (what, bytes, on_pg, on_my) in cases {
            let id = imported(
                &sandbox,
                &format!("{kind}_backup_20250101_00000{}_{what}.sql", what.len() % 10),
                bytes,
                db,
            );
            let run = sandbox.run(&["verify", &id]);
            run.assert_code(1);
            let expected = if db == "pg" { on_pg } else { on_my };
            assert!(run.stdout.contains(expected), "{db} {what}: {run:?}");
            assert!(!run.stdout.contains("ok  "), "{db} {what}: {run:?}");
        }
    }
    // What a real dump restores verifies, also when imported.
    pg.psql("CREATE TABLE t (x int); INSERT INTO t VALUES (1);");
    let dump = bash(&format!("pg_dump --no-password '{}'", pg.url()));
    let id = imported(&sandbox, "postgres_backup_20250102_000000.sql", &dump, "pg");
    sandbox.run(&["verify", &id]).assert_success();
}

#[test]
fn a_line_longer_than_the_limit_stops_the_load_and_names_the_limit() {
    let pg = PgDb::create("longline_pg");
    let my = MyDb::create("longline_my");
    for (db, url) in [("pg", pg.url()), ("my", my.url())] {
        let (sandbox, public) = four_ways(&url, "restore_line_limit = \"1MiB\"\n");
        if db == "pg" {
            pg.psql("CREATE TABLE IF NOT EXISTS t (x int);");
        } else {
            my.sql("CREATE TABLE IF NOT EXISTS t (x INT);");
        }
        sandbox.run(&["backup"]).assert_success();
        for variant in VARIANTS {
            let row = sandbox.rows_for(variant)[0].clone();
            let mut text = b"SELECT '".to_vec();
            text.extend(std::iter::repeat_n(b'A', 3 * 1024 * 1024));
            text.extend_from_slice(b"';\n");
            replace_with(&sandbox, &row, &public, &text);
            let run = sandbox.run(&["verify", &row["id"].to_string()]);
            run.assert_code(1);
            assert!(
                run.stdout.contains("restore_line_limit") && run.stdout.contains("1 MiB"),
                "{db} {variant}: {run:?}"
            );
            assert!(run.stdout.contains("line 1"), "{db} {variant}: {run:?}");
        }
    }
}
