//! Command-line surface: help texts, human-readable output, `init`, `demo`,
//! `list` filters and configuration discovery.

use std::fs;
use std::path::PathBuf;

use crate::common::*;

const APP_DB: &str = "[[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n";

fn app_sandbox() -> Sandbox {
    let sb = Sandbox::new();
    create_sample_sqlite(&sb.path().join("app.db"));
    sb.write_config(APP_DB);
    sb
}

#[test]
fn help_snapshot() {
    let sb = Sandbox::new();
    let run = run_cmd(sb.bare_cmd().arg("--help"));
    run.assert_success();
    snapshot_settings(&sb).bind(|| insta::assert_snapshot!("help", run.stdout));
}

#[test]
fn backup_help_snapshot() {
    let sb = Sandbox::new();
    let run = run_cmd(sb.bare_cmd().args(["backup", "--help"]));
    run.assert_success();
    snapshot_settings(&sb).bind(|| insta::assert_snapshot!("backup_help", run.stdout));
}

#[test]
fn backup_and_list_output_snapshots() {
    let sb = app_sandbox();
    let backup = sb.run(&["backup"]);
    backup.assert_success();
    let list = sb.run(&["list"]);
    list.assert_success();
    let settings = snapshot_settings(&sb);
    settings.bind(|| {
        insta::assert_snapshot!("backup_output", backup.stdout);
        insta::assert_snapshot!("list_output", list.stdout);
    });
}

#[test]
fn output_into_a_pipe_nobody_reads_ends_quietly() {
    let sb = app_sandbox();
    sb.run(&["backup"]).assert_success();
    for args in [
        &["list"][..],
        &["list", "--json"],
        &["status"],
        &["status", "--json"],
        &["schedule"],
        &["check"],
        &["verify", "--all"],
        &["user", "list"],
        // Work goes on whoever reads: this backup is recorded (checked below).
        &["backup"],
    ] {
        // `dbkeep list | head -0`: the reading end is closed before dbkeep writes.
        let mut child = std::process::Command::new(bin_path())
            .arg("--config")
            .arg(sb.config_path())
            .args(args)
            .current_dir(sb.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.is_empty(),
            "{args:?}: {:?}, stderr: {stderr}",
            out.status
        );
    }
    let rows = sb.list_json();
    assert_eq!(
        rows.iter().filter(|r| r["status"] == "success").count(),
        2,
        "the backup into a closed pipe ran: {rows:#?}"
    );
}

#[test]
fn list_json_has_exactly_the_documented_fields() {
    let sb = app_sandbox();
    sb.run(&["backup"]).assert_success();
    let rows = sb.list_json();
    assert_eq!(rows.len(), 1);
    let row = rows[0].as_object().expect("row is an object");
    let mut keys: Vec<&str> = row.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut expected = JSON_FIELDS.to_vec();
    expected.sort_unstable();
    assert_eq!(keys, expected);

    assert!(row["id"].is_number());
    assert_eq!(row["trigger"], "manual");
    assert!(row["duration_ms"].is_number(), "{row:?}");
    for field in ["started_at", "finished_at"] {
        let value = row[field].as_str().expect("timestamp string");
        let parsed = chrono::DateTime::parse_from_rfc3339(value)
            .unwrap_or_else(|e| panic!("{field} = {value:?} is not RFC 3339: {e}"));
        assert_eq!(parsed.offset().local_minus_utc(), 0, "{field} is not UTC");
    }
    assert!(row["pruned_at"].is_null());

    // With no backups at all, the output is an empty array.
    let empty = Sandbox::new();
    empty.write_config(APP_DB);
    assert!(empty.list_json().is_empty());
}

#[test]
fn list_filters_by_database_status_and_limit() {
    let sb = Sandbox::new();
    create_sample_sqlite(&sb.path().join("app.db"));
    sb.write_config(
        "[[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n\n\
         [[databases]]\nname = \"gone\"\nurl = \"sqlite:gone.db\"\n",
    );
    sb.run(&["backup"]).assert_code(1);
    sb.run(&["backup", "--database", "app"]).assert_success();

    let all = sb.list_json();
    assert_eq!(all.len(), 3, "{all:#?}");
    let ids: Vec<i64> = all.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    let started: Vec<&str> = all
        .iter()
        .map(|r| r["started_at"].as_str().unwrap())
        .collect();
    let mut sorted = started.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(started, sorted, "not newest first: {ids:?}");

    let json = |args: &[&str]| {
        let mut full = vec!["list", "--json"];
        full.extend_from_slice(args);
        let run = sb.run(&full);
        run.assert_success();
        parse_rows(&run.stdout)
    };
    let failed = json(&["--status", "failed"]);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["database"], "gone");
    let ok = json(&["--status", "success"]);
    assert_eq!(ok.len(), 2);
    assert!(ok.iter().all(|r| r["database"] == "app"));
    assert_eq!(json(&["--database", "gone"]).len(), 1);
    let limited = json(&["--limit", "1"]);
    assert_eq!(limited.len(), 1);
    assert_eq!(limited[0]["id"], all[0]["id"]);
    assert!(json(&["--status", "in_progress"]).is_empty());
}

#[test]
fn backup_of_unknown_database_is_a_usage_error() {
    let sb = app_sandbox();
    let run = sb.run(&["backup", "--database", "nosuch"]);
    run.assert_code(2);
    assert!(run.stderr.contains("nosuch"), "{run:?}");
    assert!(files_below(&sb.backup_dir()).is_empty());
    assert!(sb.list_json().is_empty());
}

#[test]
fn backup_selects_databases_by_name() {
    let sb = Sandbox::new();
    create_sample_sqlite(&sb.path().join("app.db"));
    sb.write_config(
        "[[databases]]\nname = \"one\"\nurl = \"sqlite:app.db\"\n\n\
         [[databases]]\nname = \"two\"\nurl = \"sqlite:app.db\"\n\n\
         [[databases]]\nname = \"three\"\nurl = \"sqlite:app.db\"\n",
    );
    let run = sb.run(&["backup", "--database", "one", "--database", "three"]);
    run.assert_success();
    let oks: Vec<&str> = run.stdout.lines().filter(|l| l.starts_with("ok")).collect();
    assert_eq!(oks.len(), 2, "{run:?}");
    let mut names: Vec<String> = sb
        .list_json()
        .iter()
        .map(|r| r["database"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["one", "three"]);
}

#[test]
fn init_writes_a_valid_config_and_refuses_to_overwrite() {
    let sb = Sandbox::new();
    let run = run_cmd(sb.bare_cmd().arg("init"));
    run.assert_success();
    let config_path = sb.path().join("dbkeep.toml");
    let original = fs::read_to_string(&config_path).expect("init wrote ./dbkeep.toml");

    // The generated config validates.
    run_cmd(sb.bare_cmd().arg("list")).assert_success();

    // It works for a backup once a database is added (or right away when
    // it lists no databases yet).
    let mut table: toml::Table = toml::from_str(&original).expect("init wrote valid TOML");
    let has_databases = table
        .get("databases")
        .and_then(|d| d.as_array())
        .is_some_and(|a| !a.is_empty());
    if !has_databases {
        // With nothing configured there is nothing to back up: either a
        // no-op success or a clear usage error, never a config parse error.
        let empty = run_cmd(sb.bare_cmd().arg("backup"));
        assert!(
            empty.code == Some(0)
                || (empty.code == Some(2) && empty.stderr.contains("no databases")),
            "{empty:?}"
        );
        assert!(files_below(&sb.path().join("backups")).is_empty());
    }
    create_sample_sqlite(&sb.path().join("mine.db"));
    let backup = if has_databases {
        // Keep the template's own entries and add ours next to them.
        let mut db = toml::Table::new();
        db.insert("name".into(), "mine".into());
        db.insert("url".into(), "sqlite:mine.db".into());
        table
            .get_mut("databases")
            .and_then(|d| d.as_array_mut())
            .expect("databases is an array")
            .push(toml::Value::Table(db));
        fs::write(&config_path, toml::to_string(&table).unwrap()).unwrap();
        run_cmd(sb.bare_cmd().args(["backup", "--database", "mine"]))
    } else {
        // Append an entry to the commented template, as a user would.
        let edited =
            format!("{original}\n[[databases]]\nname = \"mine\"\nurl = \"sqlite:mine.db\"\n");
        fs::write(&config_path, edited).unwrap();
        run_cmd(sb.bare_cmd().arg("backup"))
    };
    backup.assert_success();
    let list = run_cmd(sb.bare_cmd().args(["list", "--json"]));
    list.assert_success();
    let rows = parse_rows(&list.stdout);
    assert_eq!(rows.len(), 1);
    let path = assert_success_row(&rows[0], "mine", "sqlite");
    assert!(path.exists());

    // A second init refuses to overwrite and leaves the file alone.
    let current = fs::read_to_string(&config_path).unwrap();
    let again = run_cmd(sb.bare_cmd().arg("init"));
    again.assert_code(2);
    assert_eq!(fs::read_to_string(&config_path).unwrap(), current);

    // --config chooses where init writes.
    let custom = sb.path().join("custom.toml");
    run_cmd(sb.bare_cmd().arg("--config").arg(&custom).arg("init")).assert_success();
    assert!(custom.exists());
    run_cmd(sb.bare_cmd().arg("--config").arg(&custom).arg("init")).assert_code(2);
}

#[test]
fn demo_leaves_one_successful_backup() {
    let sb = Sandbox::new();
    let dir = sb.path().join("demo");
    let run = run_cmd(sb.bare_cmd().arg("demo").arg("--no-serve").arg(&dir));
    run.assert_success();
    assert!(dir.join("app.db").exists());
    let config = dir.join("dbkeep.toml");
    assert!(config.exists());

    let list = run_cmd(
        sb.bare_cmd()
            .arg("--config")
            .arg(&config)
            .args(["list", "--json"]),
    );
    list.assert_success();
    let rows = parse_rows(&list.stdout);
    assert_eq!(rows.len(), 1, "{rows:#?}");
    let database = rows[0]["database"].as_str().unwrap().to_string();
    let path = assert_success_row(&rows[0], &database, "sqlite");
    assert!(path.exists());
    assert!(
        path.starts_with(&dir),
        "{} is outside the demo dir",
        path.display()
    );
    assert_eq!(rows[0]["sha256"].as_str(), Some(sha256sum(&path).as_str()));
}

#[test]
fn config_is_found_via_env_and_current_directory() {
    // ./dbkeep.toml in the working directory.
    let sb = app_sandbox();
    run_cmd(sb.bare_cmd().arg("backup")).assert_success();
    assert_eq!(files_below(&sb.db_dir("app")).len(), 1);

    // DBKEEP_CONFIG points elsewhere.
    let other = Sandbox::new();
    create_sample_sqlite(&other.path().join("app.db"));
    let cfg = other.path().join("elsewhere.toml");
    fs::write(&cfg, APP_DB).unwrap();
    run_cmd(sb.bare_cmd().env("DBKEEP_CONFIG", &cfg).arg("backup")).assert_success();
    assert_eq!(files_below(&other.db_dir("app")).len(), 1);
    assert_eq!(files_below(&sb.db_dir("app")).len(), 1);
}

#[test]
fn backup_dir_env_overrides_config() {
    let sb = app_sandbox();
    let elsewhere = sb.path().join("elsewhere");
    run_cmd(sb.cmd().env("DBKEEP_BACKUP_DIR", &elsewhere).arg("backup")).assert_success();
    let rows = sb.rows_for("app");
    let path = assert_success_row(&rows[0], "app", "sqlite");
    assert_eq!(path.parent(), Some(elsewhere.join("app").as_path()));
    assert!(files_below(&sb.backup_dir()).is_empty());
}

#[test]
fn relative_paths_resolve_against_the_config_folder() {
    let sb = Sandbox::new();
    let sub = sb.path().join("conf");
    fs::create_dir(&sub).unwrap();
    create_sample_sqlite(&sub.join("app.db"));
    let cfg = sub.join("dbkeep.toml");
    fs::write(&cfg, format!("backup_dir = \"out\"\n\n{APP_DB}")).unwrap();

    // Run from the sandbox root, not from the config folder.
    run_cmd(sb.bare_cmd().arg("--config").arg(&cfg).arg("backup")).assert_success();
    let files = files_below(&sub.join("out").join("app"));
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        sub.join("dbkeep.sqlite3").exists(),
        "catalog not beside the config"
    );
    let stray: Vec<PathBuf> = files_below(sb.path())
        .into_iter()
        .filter(|p| !p.starts_with(&sub))
        .collect();
    assert!(
        stray.is_empty(),
        "files created outside the config folder: {stray:?}"
    );
}

#[test]
fn json_logs_are_one_object_per_line() {
    let sandbox = app_sandbox();
    let run = sandbox.run(&["--log-format", "json", "-v", "backup"]);
    run.assert_success();
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert!(lines.len() >= 2, "expected start and end lines: {run:?}");
    let events: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let messages: Vec<&str> = events
        .iter()
        .filter_map(|e| e["fields"]["message"].as_str())
        .collect();
    assert!(
        messages.contains(&"backup started") && messages.contains(&"backup succeeded"),
        "{messages:?}"
    );
    let done = events
        .iter()
        .find(|e| e["fields"]["message"] == "backup succeeded")
        .unwrap();
    assert_eq!(done["fields"]["database"], "app");
    assert!(done["fields"]["size"].as_u64().unwrap() > 0);
}

#[test]
fn users_and_tokens_are_managed_from_the_command_line() {
    let sandbox = app_sandbox();
    let add = run_cmd(
        sandbox
            .cmd()
            .args(["user", "add", "alice"])
            .write_stdin("a long passphrase\n"),
    );
    add.assert_success();
    assert!(add.stdout.contains("added user alice"), "{add:?}");
    run_cmd(
        sandbox
            .cmd()
            .args(["user", "add", "alice"])
            .write_stdin("another passphrase\n"),
    )
    .assert_code(2);
    run_cmd(
        sandbox
            .cmd()
            .args(["user", "add", "bob"])
            .write_stdin("short\n"),
    )
    .assert_code(2);
    run_cmd(
        sandbox
            .cmd()
            .args(["user", "add", "bad name"])
            .write_stdin("a long passphrase\n"),
    )
    .assert_code(2);
    run_cmd(
        sandbox
            .cmd()
            .args(["user", "passwd", "alice"])
            .write_stdin("a new passphrase\n"),
    )
    .assert_success();
    run_cmd(
        sandbox
            .cmd()
            .args(["user", "passwd", "nobody"])
            .write_stdin("a new passphrase\n"),
    )
    .assert_code(2);

    let created = sandbox.run(&["token", "create", "ci"]);
    created.assert_success();
    let token = created.stdout.lines().last().unwrap().trim().to_string();
    assert!(token.starts_with("dbk_") && token.len() > 60, "{created:?}");
    sandbox.run(&["token", "create", "ci"]).assert_code(2);
    let listed = sandbox.run(&["token", "list"]);
    assert!(
        listed.stdout.starts_with("ci ") && listed.stdout.contains("never used"),
        "{listed:?}"
    );
    // Only digests are stored: neither the token nor the password is in the catalog's bytes.
    let bytes = sandbox.catalog_bytes();
    assert_absent_bytes(&bytes, &token, "catalog");
    assert_absent_bytes(&bytes, "a new passphrase", "catalog");
    sandbox.run(&["token", "revoke", "ci"]).assert_success();
    sandbox.run(&["token", "revoke", "ci"]).assert_code(2);
    sandbox.run(&["user", "delete", "alice"]).assert_success();
    sandbox.run(&["user", "delete", "alice"]).assert_code(2);
}

#[test]
fn demo_goes_on_to_serve_the_admin_until_interrupted() {
    let sandbox = Sandbox::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = sandbox.path().join("demo");
    let mut child = std::process::Command::new(bin_path())
        .arg("demo")
        .arg(&dir)
        .env("DBKEEP_LISTEN", format!("127.0.0.1:{port}"))
        .env_remove("DBKEEP_ADMIN_PASSWORD")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut healthy = false;
    for _ in 0..100 {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            let _ = s.write_all(b"GET /healthz HTTP/1.0\r\nHost: x\r\n\r\n");
            let mut reply = String::new();
            let _ = s.read_to_string(&mut reply);
            healthy = reply.starts_with("HTTP/1.0 200") || reply.starts_with("HTTP/1.1 200");
            if healthy {
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    assert!(healthy, "the demo's admin did not answer /healthz:\n{out}");
    assert_eq!(status.code(), Some(0), "{out}");
    assert!(
        out.contains(&format!("http://127.0.0.1:{port}/")) && out.contains("user: admin"),
        "{out}"
    );
    let password = std::fs::read_to_string(dir.join("admin-password.txt")).unwrap();
    assert!(out.contains(password.trim()), "{out}");
    assert_eq!(mode_of(&dir.join("admin-password.txt")), 0o600);
}

#[test]
fn a_progress_line_shows_on_a_terminal_and_never_in_pipes() {
    let sandbox = app_sandbox();
    // Output to a pipe: results on stdout, nothing on stderr.
    let piped = sandbox.run(&["backup"]);
    piped.assert_success();
    assert_eq!(piped.stderr, "", "{piped:?}");
    // On a terminal (util-linux `script` gives the command one): the progress line is drawn.
    let command = format!(
        "{} --config {} backup",
        bin_path(),
        sandbox.config_path().display()
    );
    let tty = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("TERM", "xterm")
        .output()
        .expect("run script(1) from util-linux");
    let screen = String::from_utf8_lossy(&tty.stdout);
    assert!(tty.status.success(), "{screen}");
    assert!(
        screen.contains("app: ") && screen.contains(" read ("),
        "no progress line on a terminal:\n{screen}"
    );
    assert!(screen.contains("ok      app"), "{screen}");
}

#[test]
fn status_check_download_and_list_by_id() {
    let sb = app_sandbox();
    sb.write_config(&format!(
        "{APP_DB}[[databases]]\nname = \"ghost\"\nurl = \"sqlite:missing.db\"\n"
    ));
    // check reads the configuration and nothing else.
    let run = sb.run(&["check"]);
    run.assert_success();
    assert!(
        run.stdout.contains("configuration OK (2 databases)"),
        "{run:?}"
    );
    assert!(!sb.catalog_path().exists(), "check opened the catalog");
    sb.write_config(
        "[[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\nschedules = [\"61 * * * *\"]\n",
    );
    let run = sb.run(&["check"]);
    run.assert_code(2);
    assert!(
        run.stderr.contains("line 4") && run.stderr.contains("not a valid cron"),
        "{run:?}"
    );
    sb.write_config(&format!(
        "{APP_DB}[[databases]]\nname = \"ghost\"\nurl = \"sqlite:missing.db\"\n"
    ));

    sb.run(&["backup", "-d", "app"]).assert_success();
    sb.run(&["backup", "-d", "ghost"]).assert_code(1);
    // status: a verdict per database, 1 while one is not protected.
    let run = sb.run(&["status", "--json"]);
    run.assert_code(1);
    let status: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(status[0]["name"], "app");
    assert_eq!(status[0]["status"], "protected", "{status:#}");
    assert!(status[0]["last_good"].is_string(), "{status:#}");
    assert_eq!(status[1]["name"], "ghost");
    assert_eq!(status[1]["status"], "failing", "{status:#}");
    assert!(
        status[1]["reason"]
            .as_str()
            .unwrap()
            .contains("no such file"),
        "{status:#}"
    );
    let run = sb.run(&["status"]);
    run.assert_code(1);
    assert!(
        run.stdout.contains("protected") && run.stdout.contains("failing"),
        "{run:?}"
    );

    // list --id: one row.
    let rows = sb.rows_for("app");
    let id = rows[0]["id"].as_i64().unwrap();
    let run = sb.run(&["list", "--json", "--id", &id.to_string()]);
    run.assert_success();
    assert_eq!(parse_rows(&run.stdout), rows);

    // download: the bytes as stored, to stdout or a new private file.
    let path = assert_success_row(&rows[0], "app", "sqlite");
    let run = sb
        .cmd()
        .args(["download", &id.to_string()])
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    assert_eq!(run.stdout, fs::read(&path).unwrap());
    let out = sb.path().join("copy.db");
    sb.run(&["download", &id.to_string(), "-o", out.to_str().unwrap()])
        .assert_success();
    assert_eq!(sha256sum(&out), rows[0]["sha256"].as_str().unwrap());
    assert_eq!(mode_of(&out) & 0o777, 0o600);
    let run = sb.run(&["download", &id.to_string(), "-o", out.to_str().unwrap()]);
    assert_ne!(
        run.code,
        Some(0),
        "an existing file is never overwritten: {run:?}"
    );
    // A failed or unknown backup has nothing to download.
    let failed = sb.rows_for("ghost")[0]["id"].as_i64().unwrap();
    let run = sb.run(&["download", &failed.to_string()]);
    run.assert_code(2);
    assert!(
        run.stderr.contains("failed: it has no file to download"),
        "{run:?}"
    );
    sb.run(&["download", "999"]).assert_code(2);
    // A damaged file is not passed off as the backup.
    fs::write(&path, b"not the backup").unwrap();
    let run = sb
        .cmd()
        .args(["download", &id.to_string()])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("do not match"),
        "{run:?}"
    );
}

#[test]
fn list_says_when_no_backup_has_the_id_and_refuses_limit_zero() {
    let sb = app_sandbox();
    sb.run(&["backup"]).assert_success();
    let run = sb.run(&["list", "--id", "9223372036854775807"]);
    run.assert_success();
    assert!(
        run.stdout
            .contains("no backup #9223372036854775807 in the catalog"),
        "{run:?}"
    );
    assert_absent(&run.all_output(), "no backups recorded", "list --id");
    // As JSON it is simply no row.
    let run = sb.run(&["list", "--json", "--id", "9223372036854775807"]);
    run.assert_success();
    assert!(parse_rows(&run.stdout).is_empty(), "{run:?}");
    // --limit 0 would list nothing: it is refused as a usage error, as the API refuses it.
    let run = sb.run(&["list", "--limit", "0"]);
    run.assert_code(2);
    assert!(run.stderr.contains("--limit"), "{run:?}");
    assert_absent(&run.all_output(), "no backups recorded", "list --limit 0");
    assert_eq!(sb.run(&["list", "--limit", "1"]).stdout.lines().count(), 2);
}
