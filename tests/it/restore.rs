//! `dbkeep restore`: round trips into new SQLite files and PostgreSQL databases, refusals that
//! change nothing, damaged files, and failed loads that leave the target as it was.

use std::fs;

use crate::common::*;

fn sqlite_sandbox() -> (Sandbox, i64, Vec<String>) {
    let sandbox = Sandbox::new();
    let db = sandbox.path().join("app.db");
    create_sample_sqlite(&db);
    sandbox.write_config("[[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n");
    sandbox.run(&["backup"]).assert_success();
    let id = sandbox.rows_for("app")[0]["id"].as_i64().unwrap();
    let conn = rusqlite::Connection::open(&db).unwrap();
    let fingerprint = sqlite_fingerprint(&conn);
    // The application goes on changing the source afterwards.
    conn.execute("DELETE FROM \"order items\"", []).unwrap();
    (sandbox, id, fingerprint)
}

#[test]
fn a_sqlite_backup_restores_exactly_and_never_over_a_file_without_force() {
    let (sandbox, id, backed_up) = sqlite_sandbox();
    let to = sandbox.path().join("restored/new.db");
    fs::create_dir(sandbox.path().join("restored")).unwrap();
    let run = sandbox.run(&["restore", &id.to_string(), "--to", to.to_str().unwrap()]);
    run.assert_success();
    assert!(
        run.stdout.starts_with(&format!("restored  #{id}  app  ")),
        "{run:?}"
    );
    let (_d, conn) = open_copy(&to);
    assert_eq!(sqlite_fingerprint(&conn), backed_up);
    assert_eq!(mode_of(&to), 0o600);

    // Over an existing file: refused without --force, and the file is unchanged.
    fs::write(&to, b"precious").unwrap();
    let refused = sandbox.run(&["restore", &id.to_string(), "--to", to.to_str().unwrap()]);
    refused.assert_code(2);
    assert!(refused.stderr.contains("--force"), "{refused:?}");
    assert_eq!(fs::read(&to).unwrap(), b"precious");

    // With --force, and a stale -wal of the old database beside it: exactly the backup.
    let old = sandbox.path().join("app.db");
    fs::copy(&old, &to).unwrap();
    fs::write(sandbox.path().join("restored/new.db-wal"), vec![7u8; 4096]).unwrap();
    let forced = sandbox.run(&[
        "restore",
        "--latest",
        "--database",
        "app",
        "--to",
        to.to_str().unwrap(),
        "--force",
    ]);
    forced.assert_success();
    assert!(!sandbox.path().join("restored/new.db-wal").exists());
    let conn = rusqlite::Connection::open(&to).unwrap();
    assert_eq!(sqlite_fingerprint(&conn), backed_up);
    assert_eq!(sqlite_integrity(&conn), "ok");
    assert_eq!(
        file_names(&sandbox.path().join("restored")),
        ["new.db"],
        "a temporary file was left"
    );
}

#[test]
fn a_damaged_backup_is_refused_before_anything_is_touched() {
    let (sandbox, id, _) = sqlite_sandbox();
    let row = &sandbox.rows_for("app")[0];
    let file = assert_success_row(row, "app", "sqlite");
    let mut bytes = fs::read(&file).unwrap();
    bytes[2000] ^= 0xff;
    fs::write(&file, bytes).unwrap();
    let to = sandbox.path().join("target.db");
    let run = sandbox.run(&["restore", &id.to_string(), "--to", to.to_str().unwrap()]);
    run.assert_code(2);
    assert!(
        run.stderr
            .contains("no longer matches its recorded SHA-256"),
        "{run:?}"
    );
    assert!(!to.exists());
    // Other mistakes are refused with the reason.
    let to_pg = "postgres://postgres@127.0.0.1:5432/whatever";
    let run = sandbox.run(&["restore", &id.to_string(), "--to", to_pg]);
    run.assert_code(2);
    assert!(run.stderr.contains("is a sqlite backup"), "{run:?}");
    let run = sandbox.run(&["restore", "999", "--to", to.to_str().unwrap()]);
    run.assert_code(2);
    assert!(run.stderr.contains("no backup #999"), "{run:?}");
    let run = sandbox.run(&[
        "restore",
        &id.to_string(),
        "--to",
        "postgres://app:secret@127.0.0.1/x",
    ]);
    run.assert_code(2);
    assert!(run.stderr.contains("no password in the URL"), "{run:?}");
    assert_absent(&run.all_output(), "secret", "restore's output");
}

/// A comparable picture of the source schema's contents: rows, their digest, the enum, the
/// view, the self-reference and the identity column's next value.
fn pg_contents(db: &PgDb) -> String {
    db.psql(
        "SELECT count(*), md5(string_agg(u::text, ',' ORDER BY u.id)) FROM app.users u;
         SELECT string_agg(e::text, ',') FROM unnest(enum_range(NULL::app.mood)) e;
         SELECT count(*) FROM app.sad;
         SELECT count(*) FROM app.users WHERE manager = 1;
         SELECT count(*) FROM public.events;
         SELECT count(*), count(DISTINCT tableoid) FROM app.visits;
         SELECT n FROM app.user_count;
         SELECT nextval('app.ticket');
         SELECT mail FROM app.contacts;
         UPDATE app.users SET name = 'x' WHERE id = 2 RETURNING name;
         INSERT INTO public.events DEFAULT VALUES RETURNING id;",
    )
}

/// A sandbox whose database `pg` is `source` (with `extra` keys), backed up once.
fn backed_up(source: &PgDb, extra: &str) -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.write_config(&format!(
        "[[databases]]\nname = \"pg\"\nurl = \"{}\"\n{extra}",
        source.url()
    ));
    sandbox.run(&["backup"]).assert_success();
    sandbox
}

fn pg_source() -> PgDb {
    let db = PgDb::create("restore_src");
    db.psql(
        "CREATE SCHEMA app;
         CREATE TYPE app.mood AS ENUM ('ok', 'sad');
         CREATE TABLE app.users (id serial PRIMARY KEY, name text NOT NULL, mood app.mood, manager int REFERENCES app.users(id), photo bytea);
         INSERT INTO app.users (name, mood, photo) SELECT 'user ' || g || ' ☃', 'ok', decode(md5(g::text), 'hex') FROM generate_series(1, 2000) g;
         UPDATE app.users SET manager = 1 WHERE id > 1;
         CREATE VIEW app.sad AS SELECT * FROM app.users WHERE mood = 'sad';
         CREATE TABLE public.events (id bigint GENERATED ALWAYS AS IDENTITY, at timestamptz DEFAULT now());
         INSERT INTO public.events DEFAULT VALUES;
         CREATE DOMAIN app.email AS text CHECK (VALUE LIKE '%@%');
         CREATE TABLE app.contacts (id int PRIMARY KEY, mail app.email);
         INSERT INTO app.contacts VALUES (1, 'a@example.org');
         CREATE TABLE app.visits (id int, at date NOT NULL) PARTITION BY RANGE (at);
         CREATE TABLE app.visits_2025 PARTITION OF app.visits FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
         CREATE TABLE app.visits_2026 PARTITION OF app.visits FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
         INSERT INTO app.visits SELECT g, date '2025-01-01' + (g % 700) FROM generate_series(1, 100000) g;
         CREATE FUNCTION app.shout() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.name := upper(NEW.name); RETURN NEW; END $$;
         CREATE TRIGGER shout BEFORE UPDATE ON app.users FOR EACH ROW EXECUTE FUNCTION app.shout();
         CREATE MATERIALIZED VIEW app.user_count AS SELECT count(*) AS n FROM app.users;
         CREATE SEQUENCE app.ticket START 100;
         SELECT nextval('app.ticket');",
    );
    db
}

#[test]
fn a_postgres_backup_restores_into_a_new_database_and_replaces_only_with_force() {
    let source = pg_source();
    let sandbox = backed_up(&source, "");
    let id = sandbox.rows_for("pg")[0]["id"]
        .as_i64()
        .unwrap()
        .to_string();
    let expected = pg_contents(&source);

    // A database that does not exist yet, created by --create.
    let target = PgDb::create("restore_dst");
    target.psql(&format!("DROP DATABASE IF EXISTS \"{}_new\";", target.name));
    let new_url = url_with(&pg_url(), &format!("{}_new", target.name), None);
    let run = sandbox.run(&["restore", &id, "--to", &new_url, "--create"]);
    run.assert_success();
    let created = PgDb::existing(format!("{}_new", target.name));
    assert_eq!(pg_contents(&created), expected);

    // Into a database with tables: refused, then replaced with --force.
    target.psql("CREATE TABLE keep (x int); INSERT INTO keep VALUES (42);");
    let refused = sandbox.run(&["restore", &id, "--to", &target.url()]);
    refused.assert_code(2);
    assert!(refused.stderr.contains("--force"), "{refused:?}");
    assert_eq!(target.scalar("SELECT x FROM keep"), "42");
    sandbox
        .run(&["restore", &id, "--to", &target.url(), "--force"])
        .assert_success();
    assert_eq!(pg_contents(&target), expected);
    assert_eq!(
        target.scalar("SELECT count(*) FROM pg_tables WHERE tablename = 'keep'"),
        "0"
    );
}

/// The schema as `pg_dump --schema-only` prints it, without its per-dump `\restrict` lines.
fn pg_schema(db: &PgDb) -> String {
    let out = std::process::Command::new("pg_dump")
        .args(["--schema-only", "--no-password"])
        .arg(format!("--dbname={}", db.url()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn database_exists(on: &PgDb, name: &str) -> bool {
    on.scalar(&format!(
        "SELECT count(*) FROM pg_database WHERE datname = '{name}'"
    )) == "1"
}

#[test]
fn a_parallel_restore_rebuilds_the_schema_and_contents_and_a_failed_one_drops_its_database() {
    let source = pg_source();
    // A table larger than one unit of the parallel load (8 MiB), so that its COPY is shared.
    source.psql(
        "CREATE TABLE public.bulk AS SELECT g AS id, md5(g::text) || md5((-g)::text) AS h FROM generate_series(1, 200000) g;",
    );
    let bulk = "SELECT count(*), md5(string_agg(id || h, ',' ORDER BY id)) FROM public.bulk";
    let sandbox = backed_up(&source, "compression = \"none\"\n");
    let row = sandbox.rows_for("pg")[0].clone();
    let id = row["id"].as_i64().unwrap();
    let schema = pg_schema(&source);
    let expected = pg_contents(&source);

    let name = format!("{}_par", source.name);
    let url = url_with(&pg_url(), &name, None);
    let run = sandbox.run(&[
        "restore",
        &id.to_string(),
        "--to",
        &url,
        "--create",
        "--jobs",
        "3",
    ]);
    run.assert_success();
    assert!(run.stdout.contains("over 3 connections"), "{run:?}");
    // users, events, contacts, two partitions, bulk: as recorded with the backup.
    assert!(
        run.stdout.contains("6 table(s), 302002 row(s), "),
        "{run:?}"
    );
    let restored = PgDb::existing(name);
    // Every table, index, constraint, trigger and view, and every row.
    assert_eq!(pg_schema(&restored), schema);
    assert_eq!(pg_contents(&restored), expected);
    assert_eq!(restored.scalar(bulk), source.scalar(bulk));

    // A row that breaks a constraint in one block: the load stops with the server's own message
    // and the database it created is gone again.
    let file = assert_success_row(&row, "pg", "postgres");
    let text = fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("\n1\ta@example.org\n"),
        "the sample row moved"
    );
    fs::write(
        &file,
        text.replace("\n1\ta@example.org\n", "\n1\tnot an address\n"),
    )
    .unwrap();
    record_as_is(&sandbox, id, &file);
    let name = format!("{}_broken", source.name);
    let url = url_with(&pg_url(), &name, None);
    let run = sandbox.run(&[
        "restore",
        &id.to_string(),
        "--to",
        &url,
        "--create",
        "--jobs",
        "2",
    ]);
    run.assert_code(1);
    assert!(run.stderr.contains("app.email"), "{run:?}");
    assert!(!database_exists(&source, &name), "{run:?}");
    // One connection into a database --create makes: one transaction, and the same failure.
    let run = sandbox.run(&[
        "restore",
        &id.to_string(),
        "--to",
        &url,
        "--create",
        "--jobs",
        "1",
    ]);
    run.assert_code(1);
    assert!(run.stderr.contains("app.email"), "{run:?}");
}

#[test]
fn a_postgres_load_that_fails_leaves_the_target_as_it_was() {
    let source = PgDb::create("restore_bad_src");
    source.psql("CREATE TABLE t (x int); INSERT INTO t VALUES (1);");
    let sandbox = backed_up(&source, "compression = \"none\"\n");
    let row = sandbox.rows_for("pg")[0].clone();
    let id = row["id"].as_i64().unwrap();
    // The dump gains a broken statement at its end (a hand-edited file), with a matching record.
    let file = assert_success_row(&row, "pg", "postgres");
    let mut text = fs::read_to_string(&file).unwrap();
    text.push_str("\nINSERT INTO public.t VALUES (2);\nTHIS IS NOT SQL;\n");
    fs::write(&file, &text).unwrap();
    record_as_is(&sandbox, id, &file);
    let target = PgDb::create("restore_bad_dst");
    target.psql("CREATE TABLE before (y int); INSERT INTO before VALUES (7);");
    let run = sandbox.run(&["restore", &id.to_string(), "--to", &target.url(), "--force"]);
    run.assert_code(1);
    assert!(run.stderr.contains("psql exited with code"), "{run:?}");
    assert!(run.stderr.contains("THIS"), "{run:?}");
    // Nothing of the load, and all of what was there.
    assert_eq!(target.scalar("SELECT y FROM before"), "7");
    assert_eq!(
        target.scalar("SELECT count(*) FROM pg_tables WHERE tablename = 't'"),
        "0"
    );
}

#[test]
fn verify_proves_a_sqlite_backup_at_each_level_and_names_what_is_wrong() {
    let sandbox = Sandbox::new();
    create_sample_sqlite(&sandbox.path().join("app.db"));
    sandbox.write_config(
        "[[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n\
         [[databases]]\nname = \"zipped\"\nurl = \"sqlite:app.db\"\ncompression = \"gzip\"\n",
    );
    sandbox.run(&["backup"]).assert_success();
    for level in ["checksum", "readable", "restore"] {
        let run = sandbox.run(&["verify", "--latest", "--level", level]);
        run.assert_success();
        assert_eq!(run.stdout.matches("ok      ").count(), 2, "{run:?}");
    }
    let run = sandbox.run(&["verify", "--all"]);
    run.assert_success();
    assert!(run.stdout.contains("restore  (restored in "), "{run:?}");
    let row = &sandbox.rows_for("app")[0];
    assert_eq!(row["verify_status"], "ok", "{row:#}");
    assert_eq!(row["verify_level"], "restore", "{row:#}");
    assert!(
        row["verified_at"].is_string() && row["verify_error"].is_null(),
        "{row:#}"
    );
    // Nothing of the throwaway restores is left in the backup folders.
    for db in ["app", "zipped"] {
        assert_eq!(
            file_names(&sandbox.db_dir(db)).len(),
            1,
            "{:?}",
            file_names(&sandbox.db_dir(db))
        );
    }

    // A truncated gzip file, recorded as it is now: intact, but not readable.
    let zipped = sandbox.rows_for("zipped")[0].clone();
    let file = assert_success_row(&zipped, "zipped", "sqlite");
    let bytes = fs::read(&file).unwrap();
    fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    record_as_is(&sandbox, zipped["id"].as_i64().unwrap(), &file);
    let id = zipped["id"].to_string();
    sandbox
        .run(&["verify", &id, "--level", "checksum"])
        .assert_success();
    let run = sandbox.run(&["verify", &id, "--level", "readable"]);
    run.assert_code(1);
    assert!(
        run.stdout
            .contains("readable: the file does not decompress"),
        "{run:?}"
    );

    // A flipped byte: the checksum fails, at every level.
    let app = assert_success_row(row, "app", "sqlite");
    let mut bytes = fs::read(&app).unwrap();
    bytes[100] ^= 1;
    fs::write(&app, bytes).unwrap();
    let run = sandbox.run(&["verify", "--latest", "-d", "app"]);
    run.assert_code(1);
    assert!(
        run.stdout.contains("checksum: the file's SHA-256 is"),
        "{run:?}"
    );
    let row = &sandbox.rows_for("app")[0];
    assert_eq!(row["verify_status"], "failed", "{row:#}");
    assert!(
        row["verify_error"]
            .as_str()
            .unwrap()
            .starts_with("checksum:"),
        "{row:#}"
    );
}

#[test]
fn verify_restores_a_postgres_backup_into_a_throwaway_database_and_removes_it() {
    let source = pg_source();
    let sandbox = backed_up(&source, "compression = \"zstd\"\n");
    // Other tests verify at the same time: only this run's throwaways (named with its pid) count.
    let (run, pid) = verify_as_child(&sandbox);
    run.assert_success();
    assert!(
        run.stdout
            .contains("ok      #1  pg  restore  (restored in "),
        "{run:?}"
    );
    assert_eq!(throwaways_of(pid), 0, "a throwaway database was left");

    // A dump whose restore fails: recorded failed, with psql's words, and nothing left.
    let row = sandbox.rows_for("pg")[0].clone();
    let file = assert_success_row(&row, "pg", "postgres");
    let broken = sandbox.path().join("broken.sql");
    fs::write(&broken, "CREATE TABLE t (x int);\nTHIS IS NOT SQL;\n").unwrap();
    let status = std::process::Command::new("zstd")
        .args(["-q", "-f", "-o"])
        .arg(&file)
        .arg(&broken)
        .status()
        .unwrap();
    assert!(status.success());
    record_as_is(&sandbox, row["id"].as_i64().unwrap(), &file);
    let (run, pid) = verify_as_child(&sandbox);
    run.assert_code(1);
    assert!(
        run.stdout.contains("restore: psql exited with code"),
        "{run:?}"
    );
    assert!(run.stdout.contains("THIS"), "{run:?}");
    assert_eq!(throwaways_of(pid), 0, "a throwaway database was left");
}

/// Runs `dbkeep verify --latest` and returns its output and its process id.
fn verify_as_child(sandbox: &Sandbox) -> (Run, u32) {
    let mut cmd = std::process::Command::new(bin_path());
    cmd.arg("--config")
        .arg(sandbox.config_path())
        .args(["verify", "--latest"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for var in SCRUBBED_ENV {
        cmd.env_remove(var);
    }
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    (
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        },
        pid,
    )
}

/// Throwaway databases on the test server that the process `pid` made.
fn throwaways_of(pid: u32) -> usize {
    psql(
        &pg_url(),
        None,
        &format!(
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'dbkeep\\_verify\\_%\\_{}\\_%';",
            owner_part(pid)
        ),
    )
    .trim()
    .parse()
    .unwrap()
}

#[test]
fn serve_runs_restore_drills_and_a_failed_one_makes_the_database_failing() {
    let sandbox = Sandbox::new();
    create_sample_sqlite(&sandbox.path().join("app.db"));
    let (port, metrics_port) = (crate::http::free_port(), crate::http::free_port());
    sandbox.write_config(&format!(
        "timezone = \"UTC\"\nlisten = \"127.0.0.1:{port}\"\nmetrics_listen = \"127.0.0.1:{metrics_port}\"\n\
         verify_schedule = \"*/2 * * * * *\"\nhealthz_details = true\n\
         [[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\nschedules = [\"0 0 1 1 *\"]\n"
    ));
    sandbox.run(&["backup"]).assert_success();
    let _server = crate::http::Server::start(
        &sandbox,
        port,
        &[("DBKEEP_ADMIN_PASSWORD", "a long password")],
    );
    // The metrics listener may come up a moment after the main one: until then, no text.
    let metrics = || {
        crate::http::http_get(metrics_port, "/metrics", None)
            .map(|r| r.text())
            .unwrap_or_default()
    };
    let wait = |what: &str, check: &dyn Fn() -> bool| {
        let start = std::time::Instant::now();
        while !check() {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(30),
                "timed out waiting for {what}:\n{}",
                metrics()
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    };
    wait("a passed drill", &|| {
        metrics().contains("dbkeep_verify_last_status{database=\"app\"} 1\n")
    });
    let m = metrics();
    assert!(
        m.contains("dbkeep_restore_duration_seconds{database=\"app\"} "),
        "{m}"
    );
    assert!(
        !m.contains("dbkeep_verify_last_success_timestamp_seconds{database=\"app\"} 0\n"),
        "{m}"
    );
    let row = sandbox.rows_for("app")[0].clone();
    assert_eq!(row["verify_level"], "restore", "{row:#}");

    // The backup file is damaged: the next drill fails, and the database is failing.
    let file = assert_success_row(&row, "app", "sqlite");
    let mut bytes = fs::read(&file).unwrap();
    bytes[3000] ^= 0xff;
    fs::write(&file, bytes).unwrap();
    wait("a failed drill", &|| {
        metrics().contains("dbkeep_database_status{database=\"app\",status=\"failing\"} 1\n")
    });
    assert!(metrics().contains("dbkeep_verify_last_status{database=\"app\"} 0\n"));
    let health = crate::http::http_get(port, "/healthz", None).unwrap();
    assert_eq!(health.status, 503);
    assert_eq!(health.json("healthz")["unverified"][0], "app");
    let schedule = sandbox.run(&["schedule"]);
    assert!(
        schedule.stdout.contains("verify */2 * * * * *"),
        "{schedule:?}"
    );
    assert!(
        schedule.stdout.contains("last: failed (backup #"),
        "{schedule:?}"
    );
}

/// The row counts the catalog recorded for backup `id`.
fn recorded_rows(sandbox: &Sandbox, id: i64) -> Vec<(String, i64)> {
    let conn = rusqlite::Connection::open(sandbox.catalog_path()).unwrap();
    let mut stmt = conn
        .prepare("SELECT name, rows FROM backup_tables WHERE backup_id = ?1 ORDER BY name")
        .unwrap();
    stmt.query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn row_counts_are_recorded_while_streaming_and_a_restore_must_match_them() {
    let sqlite = Sandbox::new();
    create_sample_sqlite(&sqlite.path().join("app.db"));
    sqlite.write_config("[[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n");
    sqlite.run(&["backup"]).assert_success();
    let id = sqlite.rows_for("app")[0]["id"].as_i64().unwrap();
    assert_eq!(
        recorded_rows(&sqlite, id),
        [("order items".to_string(), 2000), ("users".to_string(), 4)]
    );

    let source = pg_source();
    let sandbox = backed_up(&source, "compression = \"none\"\n");
    let row = sandbox.rows_for("pg")[0].clone();
    let id = row["id"].as_i64().unwrap();
    let count = |table: &str| -> i64 {
        source
            .scalar(&format!("SELECT count(*) FROM {table}"))
            .parse()
            .unwrap()
    };
    assert_eq!(
        recorded_rows(&sandbox, id),
        [
            ("app.contacts".to_string(), 1),
            ("app.users".to_string(), 2000),
            ("app.visits_2025".to_string(), count("app.visits_2025")),
            ("app.visits_2026".to_string(), count("app.visits_2026")),
            ("public.events".to_string(), 1),
        ]
    );
    sandbox.run(&["verify", "--latest"]).assert_success();

    // Rows removed from one COPY block (a hand-edited file, recorded as it is now): the restore
    // works, the counts do not match, and the table is named.
    let file = assert_success_row(&row, "pg", "postgres");
    let text = fs::read_to_string(&file).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let header = lines
        .iter()
        .position(|l| l.starts_with("COPY app.users "))
        .expect("the COPY block of app.users");
    // Its last row (no other row refers to it).
    let end = header
        + lines[header..]
            .iter()
            .position(|l| *l == "\\.")
            .expect("the end of the COPY block");
    lines.remove(end - 1);
    fs::write(&file, lines.join("\n") + "\n").unwrap();
    record_as_is(&sandbox, id, &file);
    let run = sandbox.run(&["verify", &id.to_string()]);
    run.assert_code(1);
    assert!(
        run.stdout
            .contains("row counts differ: app.users has 1999 rows, the backup recorded 2000"),
        "{run:?}"
    );
}

#[test]
fn import_adds_outside_backups_that_then_verify_and_restore_like_any_other() {
    let sandbox = Sandbox::new();
    let app = sandbox.path().join("app.db");
    create_sample_sqlite(&app);
    let source = pg_source();
    sandbox.write_config(&format!(
        "[[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n\
         [[databases]]\nname = \"pg\"\nurl = \"{}\"\n",
        source.url()
    ));
    // Files as the original Django setup named and made them.
    let outside = sandbox.path().join("old");
    fs::create_dir(&outside).unwrap();
    let sqlite_file = outside.join("sqlite_backup_20250101_120000.db");
    fs::copy(&app, &sqlite_file).unwrap();
    let dump = outside.join("postgres_backup_20250102_030000.sql.gz");
    let made = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "pg_dump --no-password '{}' | gzip > '{}'",
            source.url(),
            dump.display()
        ))
        .status()
        .unwrap();
    assert!(made.success());

    let run = sandbox.run(&["import", sqlite_file.to_str().unwrap(), "-d", "app"]);
    run.assert_success();
    assert!(
        run.stdout
            .contains("(2 table(s), taken 2025-01-01 12:00:00"),
        "{run:?}"
    );
    let run = sandbox.run(&["import", dump.to_str().unwrap(), "--database", "pg"]);
    run.assert_success();
    for (db, name) in [
        ("app", "sqlite_backup_20250101_120000.db"),
        ("pg", "postgres_backup_20250102_030000.sql.gz"),
    ] {
        let row = &sandbox.rows_for(db)[0];
        assert_eq!(row["trigger"], "import", "{row:#}");
        assert_eq!(row["file_name"], name, "{row:#}");
        let path = assert_success_row(row, db, if db == "app" { "sqlite" } else { "postgres" });
        assert_eq!(row["sha256"].as_str().unwrap(), sha256sum(&path));
        assert_eq!(mode_of(&path), 0o600);
    }
    assert_eq!(sandbox.rows_for("pg")[0]["compression"], "gzip");
    assert_eq!(
        recorded_rows(&sandbox, sandbox.rows_for("pg")[0]["id"].as_i64().unwrap()).len(),
        5
    );
    // Then like any other backup: verified by a real restore, and restored.
    let verified = sandbox.run(&["verify", "--all"]);
    verified.assert_success();
    assert_eq!(
        verified.stdout.matches("ok      ").count(),
        2,
        "{verified:?}"
    );
    let to = sandbox.path().join("restored.db");
    let id = sandbox.rows_for("app")[0]["id"].to_string();
    sandbox
        .run(&["restore", &id, "--to", to.to_str().unwrap()])
        .assert_success();

    // What does not fit is refused, and nothing is left behind.
    let before = files_below(&sandbox.backup_dir());
    for (file, db, why) in [
        (dump.clone(), "app", "does not look like a sqlite backup"),
        (
            sqlite_file.clone(),
            "pg",
            "does not look like a postgres backup",
        ),
        (outside.join("missing.db"), "app", "cannot read"),
    ] {
        let run = sandbox.run(&["import", file.to_str().unwrap(), "-d", db]);
        run.assert_code(1);
        let line = format!("failed  {}: ", file.display());
        assert!(
            run.stdout.starts_with(&line) && run.stdout.contains(why),
            "{why}: {run:?}"
        );
        assert!(
            run.stdout.ends_with("imported 0, skipped 0, failed 1\n"),
            "{run:?}"
        );
    }
    let junk = outside.join("junk.db");
    fs::write(&junk, vec![b'x'; 4096]).unwrap();
    let run = sandbox.run(&["import", junk.to_str().unwrap(), "-d", "app"]);
    run.assert_code(1);
    assert!(run.stdout.contains("not a SQLite database"), "{run:?}");
    let broken = outside.join("broken.sql.gz");
    fs::write(&broken, b"\x1f\x8b\x08\x00garbage").unwrap();
    let run = sandbox.run(&["import", broken.to_str().unwrap(), "-d", "pg"]);
    run.assert_code(1);
    assert!(run.stdout.contains("does not decompress"), "{run:?}");
    assert_eq!(files_below(&sandbox.backup_dir()), before);
}

#[test]
fn a_dump_owned_by_a_missing_role_needs_no_owner_and_then_restores() {
    let _roles = server_roles();
    let role = unique_name("owner");
    let source = PgDb::create("roles_src");
    psql(&pg_url(), None, &format!("CREATE ROLE \"{role}\";"));
    source.psql(&format!(
        "CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2);
         ALTER TABLE t OWNER TO \"{role}\";
         GRANT SELECT ON t TO \"{role}\";"
    ));
    let sandbox = backed_up(&source, "");
    let id = sandbox.rows_for("pg")[0]["id"].to_string();
    // The role goes, as on another server that never had it.
    drop(source);
    psql(&pg_url(), None, &format!("DROP ROLE \"{role}\";"));

    let target = PgDb::create("roles_dst");
    let run = sandbox.run(&["restore", &id, "--to", &target.url()]);
    run.assert_code(1);
    assert!(
        run.stderr
            .contains(&format!("role \"{role}\" does not exist")),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("--no-owner and --no-privileges"),
        "{run:?}"
    );
    assert_eq!(
        target.scalar("SELECT count(*) FROM pg_tables WHERE tablename = 't'"),
        "0"
    );
    sandbox
        .run(&[
            "restore",
            &id,
            "--to",
            &target.url(),
            "--no-owner",
            "--no-privileges",
        ])
        .assert_success();
    assert_eq!(target.scalar("SELECT sum(x) FROM t"), "3");
}

#[test]
fn throwaways_left_by_a_killed_verification_are_removed_by_the_next_one() {
    let source = pg_source();
    let sandbox = Sandbox::new();
    create_sample_sqlite(&sandbox.path().join("app.db"));
    sandbox.write_config(&format!(
        "[[databases]]\nname = \"pg\"\nurl = \"{}\"\n\
         [[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n",
        source.url()
    ));
    sandbox.run(&["backup"]).assert_success();
    let (dead, live) = (owner_part(dead_pid()), owner_part(std::process::id()));
    let orphan = format!("dbkeep_verify_1_{dead}_aaaaaa");
    let alive = format!("dbkeep_verify_1_{live}_bbbbbb");
    for name in [&orphan, &alive] {
        psql(&pg_url(), None, &format!("CREATE DATABASE \"{name}\";"));
    }
    let _alive_guard = PgDb::existing(alive.clone());
    let dir = sandbox.db_dir("app");
    let orphan_file = dir.join(format!(".verify_2_{dead}_cccccc.db"));
    let alive_file = dir.join(format!(".verify_2_{live}_dddddd.db"));
    fs::write(&orphan_file, b"left behind").unwrap();
    fs::write(&alive_file, b"in use").unwrap();

    sandbox.run(&["verify", "--latest"]).assert_success();
    let exists = |name: &str| {
        psql(
            &pg_url(),
            None,
            &format!("SELECT count(*) FROM pg_database WHERE datname = '{name}';"),
        )
        .trim()
            == "1"
    };
    assert!(
        !exists(&orphan),
        "the killed verification's database is still there"
    );
    assert!(exists(&alive), "a live verification's database was dropped");
    assert!(!orphan_file.exists());
    assert!(alive_file.exists());
}

#[test]
fn verify_url_puts_the_throwaway_databases_on_another_server() {
    let auth_url = pg_auth_url();
    let password = pg_auth_password();
    require_pg(&auth_url, Some(&password));
    let source = pg_source();
    let sandbox = Sandbox::new();
    let elsewhere = url_with(&auth_url, "postgres", Some(&password));
    sandbox.write_config(&format!(
        "verify_url = \"postgres://nobody@127.0.0.1:1/x\"\n\
         [[databases]]\nname = \"pg\"\nurl = \"{}\"\nverify_url = \"{elsewhere}\"\n\
         [[databases]]\nname = \"nowhere\"\nurl = \"{}\"\n",
        source.url(),
        source.url()
    ));
    sandbox.run(&["backup"]).assert_success();
    // The entry's own verify_url: the second server, with its password.
    let run = sandbox.run(&["verify", "--latest", "-d", "pg"]);
    run.assert_success();
    assert_absent(&run.all_output(), &password, "verify's output");
    // The top-level one, for the other entry: a server that is not there.
    let run = sandbox.run(&["verify", "--latest", "-d", "nowhere"]);
    run.assert_code(1);
    assert!(
        run.stdout.contains("127.0.0.1") && run.stdout.contains("port 1"),
        "{run:?}"
    );
    let left = psql(
        &auth_url,
        Some(&password),
        "SELECT count(*) FROM pg_database WHERE datname LIKE 'dbkeep\\_verify\\_%';",
    );
    assert_eq!(left.trim(), "0");
    // Only PostgreSQL databases take one.
    sandbox.write_config(&format!(
        "[[databases]]\nname = \"lite\"\nurl = \"sqlite:x.db\"\nverify_url = \"{elsewhere}\"\n"
    ));
    let run = sandbox.run(&["list"]);
    run.assert_code(2);
    assert!(
        run.stderr
            .contains("`verify_url` of `lite` applies only to PostgreSQL"),
        "{run:?}"
    );
    assert_absent(&run.all_output(), &password, "the config error");
}

#[test]
fn globals_store_the_servers_roles_beside_each_backup_and_restore_creates_them() {
    let _roles = server_roles();
    let role = unique_name("globals");
    let source = pg_owned_by_a_new_role("globals_src", &role, 5);
    let sandbox = Sandbox::new();
    sandbox.write_config(&format!(
        "retention_days = 0\n[[databases]]\nname = \"pg\"\nurl = \"{}\"\nglobals = true\n",
        source.url()
    ));
    sandbox.run(&["backup"]).assert_success();
    let row = sandbox.rows_for("pg")[0].clone();
    let file = assert_success_row(&row, "pg", "postgres");
    let globals = file.with_file_name(format!(
        "{}.globals.sql",
        row["file_name"].as_str().unwrap()
    ));
    let text = fs::read_to_string(&globals).unwrap();
    assert!(text.contains(&format!("CREATE ROLE {role};")), "{text}");
    assert_eq!(mode_of(&globals), 0o600);
    // Pruning takes the stored roles with their backup.
    sandbox.run(&["backup"]).assert_success();
    assert!(
        !globals.exists(),
        "the pruned backup's roles are still there"
    );
    let id = sandbox.rows_for("pg")[0]["id"].to_string();
    // A server without the role: the role is created first, then the load works.
    drop(source);
    psql(&pg_url(), None, &format!("DROP ROLE {role};"));
    let target = PgDb::create("globals_dst");
    sandbox
        .run(&["restore", &id, "--to", &target.url()])
        .assert_code(1);
    let run = sandbox.run(&["restore", &id, "--to", &target.url(), "--with-globals"]);
    run.assert_success();
    assert_owned_by(&target, &role, 5);
    drop(target);
    psql(&pg_url(), None, &format!("DROP ROLE IF EXISTS {role};"));
    // Only PostgreSQL databases have roles to store.
    sandbox.write_config("[[databases]]\nname = \"lite\"\nurl = \"sqlite:x.db\"\nglobals = true\n");
    let run = sandbox.run(&["list"]);
    run.assert_code(2);
    assert!(
        run.stderr
            .contains("`globals` of `lite` applies only to PostgreSQL"),
        "{run:?}"
    );
}

/// A clock that starts at a chosen instant and runs at the real pace.
struct StartedAt(chrono::DateTime<chrono::Utc>, std::time::Instant);

impl dbkeep::clock::Clock for StartedAt {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.0 + chrono::Duration::from_std(self.1.elapsed()).unwrap()
    }
}

/// Runs the service from `start` until a verification of `app` is recorded after it.
pub(crate) async fn drill_at(sandbox: &Sandbox, start: &str) -> serde_json::Value {
    let config = dbkeep::Config::load(&sandbox.config_path()).unwrap();
    let catalog = std::sync::Arc::new(
        dbkeep::catalog::SqliteCatalog::open(config.catalog.sqlite_file().unwrap()).unwrap(),
    );
    let clock = std::sync::Arc::new(StartedAt(
        chrono::DateTime::parse_from_rfc3339(start).unwrap().into(),
        std::time::Instant::now(),
    ));
    let runner =
        std::sync::Arc::new(dbkeep::Runner::with_parts(config, catalog, clock.clone()).unwrap());
    let before = sandbox.rows_for("app")[0]["verified_at"].clone();
    let handle = dbkeep::Service::new(runner, clock).start().await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let row = loop {
        let row = sandbox.rows_for("app")[0].clone();
        if row["verified_at"] != before && !row["verified_at"].is_null() {
            break row;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no drill ran: {row:#}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    handle.shutdown().await;
    row
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_weekly_drill_runs_on_an_injected_clock_and_a_failed_one_turns_the_database_failing() {
    let sandbox = Sandbox::new();
    create_sample_sqlite(&sandbox.path().join("app.db"));
    sandbox.write_config(
        "timezone = \"UTC\"\n[[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\nschedules = [\"0 0 1 1 *\"]\n",
    );
    sandbox.run(&["backup"]).assert_success();
    // Two seconds before Sunday 2026-12-06 03:00 UTC, the default verify_schedule.
    let row = drill_at(&sandbox, "2026-12-06T02:59:58Z").await;
    assert_eq!(row["verify_status"], "ok", "{row:#}");
    assert_eq!(row["verify_level"], "restore", "{row:#}");
    assert!(
        row["verified_at"]
            .as_str()
            .unwrap()
            .starts_with("2026-12-06T03:00:0"),
        "{row:#}"
    );
    let conn = rusqlite::Connection::open(sandbox.catalog_path()).unwrap();
    let (restore_ms, fire): (Option<i64>, String) = conn
        .query_row(
            "SELECT v.restore_ms, f.outcome FROM verifications v, fires f
             WHERE f.schedule = 'verify 0 3 * * sun' ORDER BY v.id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(restore_ms.is_some(), "no restore time recorded");
    assert_eq!(fire, "ran");
    drop(conn);

    // A week later the file is damaged: the drill fails, and so does the database's verdict.
    let file = assert_success_row(&row, "app", "sqlite");
    let mut bytes = fs::read(&file).unwrap();
    bytes[1000] ^= 0xff;
    fs::write(&file, bytes).unwrap();
    let row = drill_at(&sandbox, "2026-12-13T02:59:58Z").await;
    assert_eq!(row["verify_status"], "failed", "{row:#}");
    let config = dbkeep::Config::load(&sandbox.config_path()).unwrap();
    let runner = dbkeep::Runner::open(config).unwrap();
    let at = chrono::DateTime::parse_from_rfc3339("2026-12-13T03:01:00Z")
        .unwrap()
        .into();
    let judged =
        dbkeep::verdict::all(&runner, &dbkeep::verdict::FactsCache::default(), at).unwrap();
    assert_eq!(judged[0].verdict.state, dbkeep::verdict::State::Failing);
    assert!(
        judged[0].verdict.reason.contains("failed its verification"),
        "{}",
        judged[0].verdict.reason
    );
}

#[test]
fn a_restore_without_the_servers_password_says_where_the_password_goes() {
    use crate::mysql::{MyDb, try_mariadb};
    // PostgreSQL: the password server, asked without its password, then with a wrong one.
    let source = PgDb::create("pw_src");
    source.psql("CREATE TABLE t (n int); INSERT INTO t VALUES (1);");
    let sandbox = backed_up(&source, "");
    let id = sandbox.rows_for("pg")[0]["id"]
        .as_i64()
        .unwrap()
        .to_string();
    let target = url_with(&pg_auth_url(), "dbkeep_pw_never", None);
    let mut cmd = sandbox.cmd();
    cmd.env_remove("PGPASSWORD")
        .args(["restore", &id, "--to", &target, "--create"]);
    let run = run_cmd(&mut cmd);
    run.assert_code(1);
    assert!(run.stderr.contains("no password supplied"), "{run:?}");
    assert!(
        run.stderr.contains("hint: the server wants a password for this user: put it in an environment variable and name it with --password-env NAME, or set PGPASSWORD"),
        "{run:?}"
    );
    let mut cmd = sandbox.cmd();
    cmd.env("WRONG_PW", "not the password").args([
        "restore",
        &id,
        "--to",
        &target,
        "--create",
        "--password-env",
        "WRONG_PW",
    ]);
    let run = run_cmd(&mut cmd);
    run.assert_code(1);
    assert!(
        run.stderr
            .contains("hint: the server refused the password given (--password-env WRONG_PW)"),
        "{run:?}"
    );
    assert_absent(&run.all_output(), "not the password", "the wrong password");

    // MySQL: a user with a password, asked without it.
    let my = MyDb::create("pw_src");
    my.sql("CREATE TABLE t (n int); INSERT INTO t VALUES (1);");
    let user = format!("pw_{}", std::process::id());
    try_mariadb(
        None,
        &format!("DROP USER IF EXISTS '{user}'@'%'; CREATE USER '{user}'@'%' IDENTIFIED BY 'a secret'; DROP USER IF EXISTS '{user}'@'localhost'; CREATE USER '{user}'@'localhost' IDENTIFIED BY 'a secret';"),
    )
    .unwrap();
    let sandbox = Sandbox::new();
    sandbox.write_config(&format!(
        "[[databases]]\nname = \"my\"\nurl = \"{}\"\n",
        my.url()
    ));
    sandbox.run(&["backup"]).assert_success();
    let id = sandbox.rows_for("my")[0]["id"]
        .as_i64()
        .unwrap()
        .to_string();
    let mut cmd = sandbox.cmd();
    cmd.env_remove("MYSQL_PWD").args([
        "restore",
        &id,
        "--to",
        &format!("mysql://{user}@127.0.0.1:3306/pw_never"),
        "--create",
    ]);
    let run = run_cmd(&mut cmd);
    let _ = try_mariadb(
        None,
        &format!("DROP USER IF EXISTS '{user}'@'%'; DROP USER IF EXISTS '{user}'@'localhost';"),
    );
    run.assert_code(1);
    assert!(run.stderr.contains("(using password: NO)"), "{run:?}");
    assert!(
        run.stderr.contains("--password-env NAME, or set MYSQL_PWD"),
        "{run:?}"
    );
}

/// With `standard_conforming_strings` off in dbkeep's sessions (by `PGOPTIONS`, as a server's
/// own setting would do), a database whose name holds a backslash and a quote is still named
/// right: `--create` finds it missing, makes it, and the restore fills it.
#[test]
fn a_database_named_with_a_backslash_and_a_quote_restores_whatever_standard_conforming_strings() {
    let source = pg_source();
    let sandbox = backed_up(&source, "");
    let id = sandbox.rows_for("pg")[0]["id"].to_string();
    let name = format!("{}_x\\'y", unique_name("restore_quote"));
    let created = PgDb::existing(name.clone());
    let url = format!(
        "{}/{}",
        pg_url().trim_end_matches('/').rsplit_once('/').unwrap().0,
        name.replace('\\', "%5C").replace('\'', "%27")
    );
    let run = run_cmd(
        sandbox
            .cmd()
            .env("PGOPTIONS", "-c standard_conforming_strings=off")
            .args(["restore", &id, "--to", &url, "--create"]),
    );
    run.assert_success();
    assert_eq!(pg_contents(&created), pg_contents(&source));
}
