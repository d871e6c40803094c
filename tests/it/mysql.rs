//! MySQL/MariaDB against the real server (`DBKEEP_TEST_MYSQL_URL`, root without a password,
//! started by scripts/test.sh): a round trip of a rich schema restored by dbkeep and by hand,
//! a backup under a concurrent writer, failures that name the tool's message and keep the
//! password out of sight, verification catching damaged files, and strings quoted right in
//! every `sql_mode`.

use std::fs;
use std::io::Write;
use std::process::{Command, Stdio};

use crate::common::*;

/// The server's URL without a database (root, no password).
pub(crate) fn server_url() -> String {
    std::env::var("DBKEEP_TEST_MYSQL_URL")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "mysql://root@127.0.0.1:3306".to_string())
}

/// Runs `sql` with the `mariadb` client (as root), in `database` when given.
pub(crate) fn try_mariadb(database: Option<&str>, sql: &str) -> Result<String, String> {
    let url = url::Url::parse(&server_url()).unwrap();
    let mut cmd = Command::new("mariadb");
    cmd.arg("--protocol=tcp")
        .arg(format!("--host={}", url.host_str().unwrap()))
        .arg(format!("--port={}", url.port().unwrap_or(3306)))
        .arg(format!("--user={}", url.username()))
        .args([
            "--batch",
            "--skip-column-names",
            "--default-character-set=utf8mb4",
        ])
        .env_remove("MYSQL_PWD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(db) = database {
        cmd.arg(format!("--database={db}"));
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run mariadb: {e}"))?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(sql.as_bytes())
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A uniquely named database on the test server, dropped with the guard.
pub(crate) struct MyDb {
    pub name: String,
}

impl MyDb {
    #[track_caller]
    pub(crate) fn create(tag: &str) -> MyDb {
        if let Err(e) = try_mariadb(None, "SELECT 1") {
            panic!(
                "MariaDB test server at {} is not reachable: {e}\nStart the test services with scripts/test.sh.",
                server_url()
            );
        }
        let db = MyDb::existing(&unique_name(tag));
        db.sql_on_server(&format!(
            "DROP DATABASE IF EXISTS `{0}`; CREATE DATABASE `{0}` CHARACTER SET utf8mb4;",
            db.name
        ));
        db
    }

    /// A guard for a database the code under test makes.
    pub(crate) fn existing(name: &str) -> MyDb {
        MyDb {
            name: name.to_string(),
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("{}/{}", server_url(), self.name)
    }

    #[track_caller]
    pub(crate) fn sql(&self, sql: &str) -> String {
        try_mariadb(Some(&self.name), sql).unwrap_or_else(|e| panic!("{e}\nSQL: {sql}"))
    }

    #[track_caller]
    pub(crate) fn sql_on_server(&self, sql: &str) -> String {
        try_mariadb(None, sql).unwrap_or_else(|e| panic!("{e}\nSQL: {sql}"))
    }

    pub(crate) fn exists(&self) -> bool {
        !self
            .sql_on_server(&format!(
                "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{}'",
                self.name
            ))
            .is_empty()
    }

    /// Each base table with its row count and `CHECKSUM TABLE`, in name order.
    fn fingerprint(&self) -> Vec<(String, u64, String)> {
        let tables = self.sql(&format!(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{}' \
             AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
            self.name
        ));
        tables
            .lines()
            .map(|t| {
                let rows = self
                    .sql(&format!("SELECT COUNT(*) FROM `{t}`"))
                    .parse()
                    .unwrap();
                let checksum = self.sql(&format!("CHECKSUM TABLE `{t}`"));
                let checksum = checksum.split('\t').nth(1).unwrap_or_default().to_string();
                (t.to_string(), rows, checksum)
            })
            .collect()
    }

    /// The names of the routines, triggers and views.
    fn objects(&self) -> String {
        self.sql(&format!(
            "SELECT GROUP_CONCAT(n ORDER BY n) FROM ( \
             SELECT ROUTINE_NAME n FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = '{0}' \
             UNION ALL SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = '{0}' \
             UNION ALL SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = '{0}') o",
            self.name
        ))
    }
}

impl Drop for MyDb {
    fn drop(&mut self) {
        let _ = try_mariadb(None, &format!("DROP DATABASE IF EXISTS `{}`", self.name));
    }
}

/// A schema with what a web application's database holds: a foreign key, a trigger, a
/// procedure, a view, emoji, BLOBs, fractional seconds, NULLs and a table of 120,000 rows.
fn rich_source() -> MyDb {
    let db = MyDb::create("my_src");
    db.sql(
        "CREATE TABLE users (id INT PRIMARY KEY, name VARCHAR(100) NOT NULL, bio TEXT, \
           avatar BLOB, joined DATETIME(6)) ENGINE=InnoDB;
         CREATE TABLE posts (id INT AUTO_INCREMENT PRIMARY KEY, user_id INT NOT NULL, \
           body MEDIUMTEXT, FOREIGN KEY (user_id) REFERENCES users(id)) ENGINE=InnoDB;
         CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(50)) ENGINE=InnoDB;
         CREATE TABLE empty_one (id INT PRIMARY KEY) ENGINE=InnoDB;
         CREATE TABLE events (id INT AUTO_INCREMENT PRIMARY KEY, payload VARCHAR(200)) ENGINE=InnoDB;
         CREATE TRIGGER posts_audit AFTER INSERT ON posts FOR EACH ROW \
           INSERT INTO audit (what) VALUES (CONCAT('post ', NEW.id));
         CREATE PROCEDURE add_event(IN p VARCHAR(200)) INSERT INTO events (payload) VALUES (p);
         CREATE VIEW user_posts AS SELECT u.name, COUNT(p.id) AS n FROM users u \
           LEFT JOIN posts p ON p.user_id = u.id GROUP BY u.name;
         INSERT INTO users VALUES \
           (1, 'Zoë 🚀', 'it''s a \\\\ test, with (parens), commas; and\\nnewlines', \
            UNHEX('00FF27225C0A'), '2026-01-02 03:04:05.123456'), \
           (2, 'NULL man', NULL, NULL, NULL), \
           (3, '中文 ✓', REPEAT('long text ', 5000), REPEAT(UNHEX('DEADBEEF'), 1000), '1999-12-31 23:59:59.999999');
         INSERT INTO posts (user_id, body) VALUES (1, 'hello), (world'), (3, '''quoted'''), (1, NULL);
         CALL add_event('from the procedure');
         SET SESSION max_recursive_iterations = 1000000;
         INSERT INTO events (payload) \
           WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 120000) \
           SELECT CONCAT('event ', i, ' ', MD5(i)) FROM n;",
    );
    db
}

fn sandbox_for(source: &MyDb, extra: &str) -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.write_config(&format!(
        "[[databases]]\nname = \"my\"\nurl = \"{}\"\n{extra}",
        source.url()
    ));
    sandbox
}

/// The log the catalog keeps of the backup `row` (of `list --json`).
fn backup_log(sandbox: &Sandbox, row: &serde_json::Value) -> String {
    let conn = rusqlite::Connection::open(sandbox.catalog_path()).unwrap();
    conn.query_row(
        "SELECT log FROM backups WHERE id = ?1",
        [row["id"].as_i64().unwrap()],
        |r| r.get(0),
    )
    .unwrap()
}

/// `decompress` (e.g. `gunzip -c`) of `file` piped into `mariadb DATABASE`, as the README says.
fn restore_by_hand(file: &std::path::Path, decompress: &str, into: &MyDb) {
    let url = url::Url::parse(&server_url()).unwrap();
    let script = format!(
        "{decompress} '{}' | mariadb --protocol=tcp -h {} -P {} -u {} '{}'",
        file.display(),
        url.host_str().unwrap(),
        url.port().unwrap_or(3306),
        url.username(),
        into.name
    );
    bash(&script);
}

#[test]
fn a_rich_schema_round_trips_through_dbkeep_restore_and_by_hand() {
    let source = rich_source();
    let sandbox = sandbox_for(&source, "");
    sandbox.run(&["backup"]).assert_success();
    let row = sandbox.rows_for("my")[0].clone();
    let file = assert_success_row(&row, "my", "mysql");
    let name = row["file_name"].as_str().unwrap();
    assert!(
        name.starts_with("mysql_backup_") && name.ends_with(".sql.gz"),
        "{name}"
    );
    assert_eq!(mode_of(&file), 0o600);
    // A whole gzip stream, and the dump holds no database name to load into.
    assert!(
        Command::new("gzip")
            .arg("-t")
            .arg(&file)
            .status()
            .unwrap()
            .success()
    );
    let id = row["id"].to_string();
    let want = source.fingerprint();
    assert_eq!(want.iter().find(|t| t.0 == "events").unwrap().1, 120_001);

    // Row counts recorded while streaming, empty tables included.
    let conn = rusqlite::Connection::open(sandbox.catalog_path()).unwrap();
    let recorded: Vec<(String, u64)> = conn
        .prepare("SELECT name, rows FROM backup_tables WHERE backup_id = ?1 ORDER BY name")
        .unwrap()
        .query_map([row["id"].as_i64().unwrap()], |r| {
            Ok((r.get(0)?, r.get::<_, i64>(1)? as u64))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let expected: Vec<(String, u64)> = want.iter().map(|(t, n, _)| (t.clone(), *n)).collect();
    assert_eq!(recorded, expected);

    // dbkeep restore into a database it creates.
    let restored = MyDb::existing(&unique_name("my_restored"));
    sandbox
        .run(&["restore", &id, "--to", &restored.url(), "--create"])
        .assert_success();
    assert_eq!(restored.fingerprint(), want);
    assert_eq!(restored.objects(), source.objects());
    assert_eq!(
        restored.objects(),
        "add_event,posts_audit,user_posts",
        "the procedure, the trigger and the view"
    );
    // The trigger works in the copy.
    restored.sql("INSERT INTO posts (user_id, body) VALUES (2, 'new')");
    assert_eq!(restored.sql("SELECT COUNT(*) FROM audit"), "4");

    // By hand, with the standard tools.
    let by_hand = MyDb::create("my_by_hand");
    restore_by_hand(&file, "gunzip -c", &by_hand);
    assert_eq!(by_hand.fingerprint(), want);

    // A database with tables is refused without --force, and replaced with it.
    let run = sandbox.run(&["restore", &id, "--to", &by_hand.url()]);
    run.assert_code(2);
    assert!(run.stderr.contains("pass --force"), "{run:?}");
    by_hand.sql(
        "CREATE TABLE stray (x INT); INSERT INTO users VALUES (99, 'extra', NULL, NULL, NULL)",
    );
    sandbox
        .run(&["restore", &id, "--to", &by_hand.url(), "--force"])
        .assert_success();
    assert_eq!(by_hand.fingerprint(), want);

    // Verify at restore level: a throwaway database, gone afterwards.
    let run = sandbox.run(&["verify", &id]);
    run.assert_success();
    assert!(run.stdout.contains("restore"), "{run:?}");
    let left = source.sql_on_server(&format!(
        "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'dbkeep\\_verify\\_{}\\_%'",
        row["id"]
    ));
    assert_eq!(left, "0");
}

#[test]
fn a_backup_while_a_writer_inserts_matches_the_rows_it_recorded() {
    let source = MyDb::create("my_busy");
    source.sql(
        "CREATE TABLE ticks (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(64)) ENGINE=InnoDB;
         SET SESSION max_recursive_iterations = 1000000;
         INSERT INTO ticks (note) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50000) \
           SELECT MD5(i) FROM n;",
    );
    let sandbox = sandbox_for(&source, "compression = \"zstd\"\n");
    // One client, fed one autocommitted INSERT after another, until the backup is done.
    let url = url::Url::parse(&server_url()).unwrap();
    let mut writer = Command::new("mariadb")
        .arg("--protocol=tcp")
        .arg(format!("--host={}", url.host_str().unwrap()))
        .arg(format!("--port={}", url.port().unwrap_or(3306)))
        .arg(format!("--user={}", url.username()))
        .arg(format!("--database={}", source.name))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = writer.stdin.take().unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let feeding = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if stdin
                    .write_all(format!("INSERT INTO ticks (note) VALUES ('w{n}');\n").as_bytes())
                    .is_err()
                {
                    break;
                }
                n += 1;
                if n.is_multiple_of(100) {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
        })
    };
    // The writer is writing before the backup starts.
    let before: u64 = loop {
        let n: u64 = source.sql("SELECT COUNT(*) FROM ticks").parse().unwrap();
        if n > 50_100 {
            break n;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    sandbox.run(&["backup"]).assert_success();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    feeding.join().unwrap();
    let _ = writer.wait();
    let after: u64 = source.sql("SELECT COUNT(*) FROM ticks").parse().unwrap();
    let row = sandbox.rows_for("my")[0].clone();
    let conn = rusqlite::Connection::open(sandbox.catalog_path()).unwrap();
    let recorded: u64 = conn
        .query_row(
            "SELECT rows FROM backup_tables WHERE backup_id = ?1 AND name = 'ticks'",
            [row["id"].as_i64().unwrap()],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n as u64)
        .unwrap();
    assert!(
        before <= recorded && recorded <= after,
        "{before} {recorded} {after}"
    );
    let restored = MyDb::existing(&unique_name("my_busy_restored"));
    sandbox
        .run(&[
            "restore",
            &row["id"].to_string(),
            "--to",
            &restored.url(),
            "--create",
        ])
        .assert_success();
    assert_eq!(
        restored.sql("SELECT COUNT(*) FROM ticks"),
        recorded.to_string()
    );
}

#[test]
fn failures_record_the_tools_message_leave_no_file_and_never_show_the_password() {
    let source = MyDb::create("my_fail");
    source.sql("CREATE TABLE t (x INT); INSERT INTO t VALUES (1);");
    let user = unique_name("u");
    let secret = "Sekr1t-pass-4-mysql-test";
    source.sql_on_server(&format!(
        "DROP USER IF EXISTS '{user}'@'%'; CREATE USER '{user}'@'%' IDENTIFIED BY '{secret}'; \
         GRANT ALL ON `{}`.* TO '{user}'@'%';",
        source.name
    ));
    let host = url::Url::parse(&server_url()).unwrap();
    let url_for = |db: &str| {
        format!(
            "mysql://{user}@{}:{}/{db}",
            host.host_str().unwrap(),
            host.port().unwrap_or(3306)
        )
    };
    // A dump tool that notes its command line, then runs the real one.
    let argv_log = std::env::temp_dir().join(format!("{}.argv", unique_name("my")));
    let wrapper = std::env::temp_dir().join(format!("{}.sh", unique_name("my")));
    fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho \"$@\" >> '{}'\nexec mariadb-dump \"$@\"\n",
            argv_log.display()
        ),
    )
    .unwrap();
    fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();

    let sandbox = Sandbox::new();
    sandbox.write_config(&format!(
        "mysqldump_path = \"{}\"\n\
         [[databases]]\nname = \"good\"\nurl = \"{}\"\npassword_env = \"MY_PW\"\n\
         [[databases]]\nname = \"unknown\"\nurl = \"{}\"\npassword_env = \"MY_PW\"\n",
        wrapper.display(),
        url_for(&source.name),
        url_for("no_such_database_here"),
    ));
    let with = |pw: &str, args: &[&str]| run_cmd(sandbox.cmd().args(args).env("MY_PW", pw));

    // The right password: a backup, and no command line that held it.
    with(secret, &["backup", "--database", "good"]).assert_success();
    // A wrong one: the server's refusal, recorded.
    let wrong = "Wrong-pass-for-mysql-test";
    let run = with(wrong, &["backup", "--database", "good"]);
    assert_ne!(run.code, Some(0));
    let failed = sandbox.rows_for("good")[0].clone();
    let error = assert_failed_row(&failed, "good");
    assert!(error.contains("Access denied"), "{error}");
    // An unknown database.
    let run = with(secret, &["backup", "--database", "unknown"]);
    assert_ne!(run.code, Some(0));
    let error = assert_failed_row(&sandbox.rows_for("unknown")[0], "unknown");
    assert!(error.contains("no_such_database_here"), "{error}");
    // No stray file: one good backup, nothing else.
    assert_eq!(file_names(&sandbox.db_dir("good")).len(), 1);
    assert!(file_names(&sandbox.db_dir("unknown")).is_empty());

    let argv = fs::read_to_string(&argv_log).unwrap();
    assert!(argv.contains("--single-transaction"), "{argv}");
    for (what, text) in [
        ("command lines", argv),
        ("output", format!("{run:?}")),
        (
            "catalog",
            String::from_utf8_lossy(&sandbox.catalog_bytes()).into_owned(),
        ),
        ("list", with(secret, &["list", "--json"]).stdout),
    ] {
        assert!(
            !text.contains(secret) && !text.contains(wrong),
            "{what}: {text}"
        );
    }
    // A dump tool that is not there.
    sandbox.write_config(&format!(
        "mysqldump_path = \"/nonexistent/mariadb-dump\"\n\
         [[databases]]\nname = \"good\"\nurl = \"{}\"\npassword_env = \"MY_PW\"\n",
        url_for(&source.name)
    ));
    let run = with(secret, &["backup"]);
    assert_ne!(run.code, Some(0));
    let error = assert_failed_row(&sandbox.rows_for("good")[0], "good");
    assert!(
        error.contains("/nonexistent/mariadb-dump not found"),
        "{error}"
    );
    let _ = source.sql_on_server(&format!("DROP USER IF EXISTS '{user}'@'%'"));
    let _ = fs::remove_file(&wrapper);
    let _ = fs::remove_file(&argv_log);
}

#[test]
fn verify_catches_a_flipped_byte_a_truncated_file_and_rows_removed_from_an_import() {
    let source = MyDb::create("my_verify");
    source.sql(
        "CREATE TABLE a (id INT PRIMARY KEY, v VARCHAR(20));
         CREATE TABLE b (id INT PRIMARY KEY);
         INSERT INTO a VALUES (1, 'one'), (2, 'two'), (3, 'three');
         INSERT INTO b VALUES (1), (2);",
    );
    let sandbox = sandbox_for(&source, "compression = \"none\"\n");
    for _ in 0..2 {
        sandbox.run(&["backup"]).assert_success();
    }
    let rows = sandbox.rows_for("my");
    let (flip, cut) = (&rows[0], &rows[1]);
    let flipped = assert_success_row(flip, "my", "mysql");
    let mut bytes = fs::read(&flipped).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    fs::write(&flipped, bytes).unwrap();
    let truncated = assert_success_row(cut, "my", "mysql");
    let len = fs::metadata(&truncated).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&truncated)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    for row in [flip, cut] {
        let run = sandbox.run(&["verify", &row["id"].to_string()]);
        run.assert_code(1);
        assert!(run.stdout.contains("SHA-256"), "{run:?}");
    }

    // An outside dump, imported (its rows counted), then edited by hand: a row of `a` taken
    // out, and the file recorded as it now is. The restore works; the counts name `a`.
    let dump = sandbox.path().join("mysql_backup_20250101_000000.sql");
    let out = Command::new("mariadb-dump")
        .args([
            "--protocol=tcp",
            "-h",
            "127.0.0.1",
            "-u",
            "root",
            &source.name,
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    fs::write(&dump, &out.stdout).unwrap();
    sandbox
        .run(&["import", dump.to_str().unwrap(), "-d", "my"])
        .assert_success();
    let imported = sandbox.rows_for("my")[0].clone();
    assert_eq!(imported["trigger"], "import");
    let file = assert_success_row(&imported, "my", "mysql");
    let text = fs::read_to_string(&file).unwrap();
    let edited = text.replace("(1,'one'),", "");
    assert_ne!(edited, text);
    fs::write(&file, edited).unwrap();
    record_as_is(&sandbox, imported["id"].as_i64().unwrap(), &file);
    // Throwaways a killed verification left on the server go with the next verification;
    // a live one's stay.
    let (dead, live) = (owner_part(dead_pid()), owner_part(std::process::id()));
    let orphan = MyDb::existing(&format!("dbkeep_verify_1_{dead}_aaaaaa"));
    let alive = MyDb::existing(&format!("dbkeep_verify_1_{live}_bbbbbb"));
    for db in [&orphan, &alive] {
        db.sql_on_server(&format!("CREATE DATABASE `{}`", db.name));
    }
    let run = sandbox.run(&["verify", &imported["id"].to_string()]);
    run.assert_code(1);
    assert!(
        run.stdout
            .contains("row counts differ: a has 2 rows, the backup recorded 3"),
        "{run:?}"
    );
    assert!(
        !orphan.exists(),
        "the killed verification's database is still there"
    );
    assert!(alive.exists(), "a live verification's database was dropped");

    // A load that fails, into a database the restore created, leaves no database behind.
    fs::write(
        &file,
        text.replace("INSERT INTO `b`", "INSERT INTO `no_such_table`"),
    )
    .unwrap();
    record_as_is(&sandbox, imported["id"].as_i64().unwrap(), &file);
    let target = MyDb::existing(&unique_name("my_failed"));
    let run = sandbox.run(&[
        "restore",
        &imported["id"].to_string(),
        "--to",
        &target.url(),
        "--create",
    ]);
    assert_ne!(run.code, Some(0), "{run:?}");
    assert!(run.stderr.contains("no_such_table"), "{run:?}");
    assert!(!target.exists());
}

#[test]
fn an_encrypted_backup_copied_off_site_restores_from_the_copy_and_myisam_is_named() {
    let source = MyDb::create("my_offsite");
    source.sql(
        "CREATE TABLE t (id INT PRIMARY KEY, v TEXT) ENGINE=InnoDB;
         CREATE TABLE legacy (id INT) ENGINE=MyISAM;
         INSERT INTO t VALUES (1, 'a'), (2, 'b'); INSERT INTO legacy VALUES (1);",
    );
    let sandbox = Sandbox::new();
    let (key, public) = crate::encryption::keygen(sandbox.path(), "key.txt");
    sandbox.write_config(&format!(
        "age_recipients = [\"{public}\"]\n\
         [[offsite]]\nname = \"disk2\"\nurl = \"{}\"\n\
         [[databases]]\nname = \"my\"\nurl = \"{}\"\ncompression = \"zstd\"\n",
        sandbox.path().join("disk2").display(),
        source.url()
    ));
    sandbox.run(&["backup"]).assert_success();
    let row = sandbox.rows_for("my")[0].clone();
    assert_eq!(row["encrypted"], true, "{row:#}");
    assert_eq!(row["copies"][0]["state"], "uploaded", "{row:#}");
    let name = row["file_name"].as_str().unwrap();
    assert!(name.ends_with(".sql.zst.age"), "{name}");
    // The MyISAM table cannot be copied consistently under writes: said with the backup.
    let log = backup_log(&sandbox, &row);
    assert!(
        log.contains("warning: not transactional") && log.contains("legacy (MyISAM)"),
        "{log}"
    );
    assert!(!log.contains("t (InnoDB)"), "{log}");
    // The local file gone, the copy restores with the identity.
    fs::remove_file(assert_success_row(&row, "my", "mysql")).unwrap();
    let restored = MyDb::existing(&unique_name("my_from_copy"));
    sandbox
        .run(&[
            "restore",
            &row["id"].to_string(),
            "--from",
            "disk2",
            "--identity",
            key.to_str().unwrap(),
            "--to",
            &restored.url(),
            "--create",
        ])
        .assert_success();
    assert_eq!(restored.fingerprint(), source.fingerprint());
}

#[test]
fn the_api_health_and_metrics_show_a_mysql_database_like_any_other() {
    let source = MyDb::create("my_api");
    source.sql("CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1), (2);");
    let port = crate::http::free_port();
    let sandbox = sandbox_for(&source, "schedules = [\"0 0 1 1 *\"]\n");
    sandbox.write_config(&format!(
        "listen = \"127.0.0.1:{port}\"\n{}",
        fs::read_to_string(sandbox.config_path()).unwrap()
    ));
    sandbox.run(&["backup"]).assert_success();
    let id = sandbox.rows_for("my")[0]["id"].as_i64().unwrap();
    let token = sandbox.run(&["token", "create", "t"]).stdout;
    let token = token.lines().last().unwrap().trim().to_string();
    let _server = crate::http::Server::start(
        &sandbox,
        port,
        &[("DBKEEP_ADMIN_PASSWORD", "a long password")],
    );
    let got = crate::http::http_get(port, "/api/v1/backups", Some(&token)).unwrap();
    assert_eq!(got.status, 200, "{}", got.text());
    let listed = got.json("backups");
    let backup = &listed[0];
    assert_eq!(backup["id"], id, "{listed:#}");
    assert_eq!(backup["kind"], "mysql", "{listed:#}");
    assert_eq!(backup["status"], "success", "{listed:#}");
    let download = crate::http::http_get(
        port,
        &format!("/api/v1/backups/{id}/download"),
        Some(&token),
    )
    .unwrap();
    assert_eq!(download.status, 200);
    assert!(download.body.starts_with(&[0x1f, 0x8b]), "a gzip stream");
    let health = crate::http::http_get(port, "/healthz", None).unwrap();
    assert_eq!(health.status, 200, "{}", health.text());
    let metrics = crate::http::http_get(port, "/metrics", Some(&token))
        .unwrap()
        .text();
    assert!(
        metrics.contains("dbkeep_database_status{database=\"my\""),
        "{metrics}"
    );
}

/// A client in `NO_BACKSLASH_ESCAPES` mode (set here by the option file an operator's
/// `~/.my.cnf` could hold) reads the strings dbkeep writes as dbkeep means them: for a
/// database whose name has a quote, the backup still names its MyISAM table (the query that
/// finds it quotes the name), restores, and the restore's table check finds every row.
#[test]
fn a_database_named_with_a_quote_is_queried_right_under_no_backslash_escapes() {
    let source = MyDb::existing(&format!("{}_it's", unique_name("my_quote")));
    source.sql_on_server(&format!(
        "CREATE DATABASE `{}` CHARACTER SET utf8mb4",
        source.name
    ));
    source.sql(
        "CREATE TABLE t (id INT PRIMARY KEY) ENGINE=InnoDB;
         CREATE TABLE legacy (id INT) ENGINE=MyISAM;
         INSERT INTO t VALUES (1), (2); INSERT INTO legacy VALUES (1);",
    );
    let sandbox = Sandbox::new();
    let home = sandbox.path().join("home");
    fs::create_dir_all(&home).unwrap();
    fs::write(
        home.join(".my.cnf"),
        "[mysql]\ninit-command=SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')\n",
    )
    .unwrap();
    let url = format!("{}/{}", server_url(), source.name.replace('\'', "%27"));
    sandbox.write_config(&format!("[[databases]]\nname = \"my\"\nurl = \"{url}\"\n"));
    let run = run_cmd(sandbox.cmd().env("HOME", &home).arg("backup"));
    run.assert_success();
    let row = sandbox.rows_for("my")[0].clone();
    let log = backup_log(&sandbox, &row);
    assert!(log.contains("legacy (MyISAM)"), "{log}");

    let restored = MyDb::existing(&format!("{}_it's", unique_name("my_quote_back")));
    let to = format!("{}/{}", server_url(), restored.name.replace('\'', "%27"));
    let run = run_cmd(sandbox.cmd().env("HOME", &home).args([
        "restore",
        &row["id"].to_string(),
        "--to",
        &to,
        "--create",
    ]));
    run.assert_success();
    assert_eq!(restored.sql("SELECT COUNT(*) FROM t"), "2");
    assert_eq!(restored.sql("SELECT COUNT(*) FROM legacy"), "1");
}
