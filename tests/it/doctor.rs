//! `dbkeep doctor`: each check made to fail for real (an old pg_dump by a wrapper that says
//! an old version, a read-only folder, an unreachable S3 endpoint, a wrong age identity, a
//! user without privileges, …), and a healthy setup passing.

use serde_json::Value;

use crate::common::*;
use crate::encryption::keygen;
use crate::mysql::{MyDb, try_mariadb};
use crate::notify::{Answer, Receiver};
use crate::offsite::S3;

/// `dbkeep doctor --json` in `sandbox` (with `args` before it); its run and findings.
fn doctor(sandbox: &Sandbox, args: &[&str]) -> (Run, Vec<Value>) {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["doctor", "--json"]);
    let run = sandbox.run(&all);
    let found: Vec<Value> = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("doctor --json printed no JSON ({e}): {run:?}"));
    (run, found)
}

/// The finding named `check`.
#[track_caller]
fn finding<'a>(found: &'a [Value], check: &str) -> &'a Value {
    found
        .iter()
        .find(|f| f["check"] == check)
        .unwrap_or_else(|| panic!("no check {check:?} in {found:#?}"))
}

/// The finding whose check begins with `prefix` (a channel's name ends with its address).
#[track_caller]
fn finding_starting<'a>(found: &'a [Value], prefix: &str) -> &'a Value {
    found
        .iter()
        .find(|f| f["check"].as_str().is_some_and(|c| c.starts_with(prefix)))
        .unwrap_or_else(|| panic!("no check beginning {prefix:?} in {found:#?}"))
}

/// Asserts `check` is at `level` and its detail says `says`.
#[track_caller]
fn assert_check(found: &[Value], check: &str, level: &str, says: &str) {
    let f = finding(found, check);
    assert_eq!(f["level"], level, "{check}: {f:#}");
    assert!(
        f["detail"].as_str().unwrap_or_default().contains(says),
        "{check} does not say {says:?}: {f:#}"
    );
    if level != "ok" {
        assert!(
            f["fix"].as_str().is_some_and(|x| !x.is_empty()),
            "{check} has no fix: {f:#}"
        );
    }
}

#[test]
fn a_healthy_setup_passes_every_check_and_the_text_names_each() {
    let source = PgDb::create("doctor_ok");
    source.psql("CREATE TABLE t (n int); INSERT INTO t VALUES (1);");
    let my = MyDb::create("doctor_ok");
    let sandbox = Sandbox::new();
    create_sample_sqlite(&sandbox.path().join("app.db"));
    let (key, public) = keygen(sandbox.path(), "key.txt");
    sandbox.write_config(&format!(
        "identity_file = \"{}\"\n\
         [[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\nage_recipients = [\"{public}\"]\n\
         [[databases]]\nname = \"pg\"\nurl = \"{}\"\n\
         [[databases]]\nname = \"my\"\nurl = \"{}\"\n",
        key.display(),
        source.url(),
        my.url()
    ));
    sandbox.run(&["backup"]).assert_success();
    let (run, found) = doctor(&sandbox, &[]);
    run.assert_success();
    for f in &found {
        assert_eq!(f["level"], "ok", "{f:#}");
    }
    for check in [
        "configuration",
        "catalog",
        "time zone",
        "database app: readable",
        "database pg: reachable",
        "database pg: pg_dump against the server",
        "database pg: privileges",
        "database my: reachable",
        "database my: the dump tool against the server",
        "database my: privileges",
        "backup folder",
        "backup folder: room",
        "database app: encryption",
    ] {
        finding(&found, check);
    }
    // The text says the same, one line each, and a count.
    let text = sandbox.run(&["doctor"]);
    text.assert_success();
    assert!(
        text.stdout
            .contains("ok    database pg: pg_dump against the server"),
        "{text:?}"
    );
    assert!(
        text.stdout
            .trim_end()
            .ends_with(&format!("{} ok, 0 warn, 0 fail", found.len())),
        "{text:?}"
    );
}

#[test]
fn a_pg_dump_older_than_the_server_fails_now_not_tonight() {
    let source = PgDb::create("doctor_old");
    let sandbox = Sandbox::new();
    // A pg_dump that says it is 9.6 (and would dump nothing).
    let old = sandbox.path().join("old/pg_dump");
    std::fs::create_dir_all(old.parent().unwrap()).unwrap();
    std::fs::write(&old, "#!/bin/sh\necho 'pg_dump (PostgreSQL) 9.6.24'\n").unwrap();
    bash(&format!("chmod 755 '{}'", old.display()));
    sandbox.write_config(&format!(
        "pg_dump_path = \"{}\"\n[[databases]]\nname = \"pg\"\nurl = \"{}\"\n",
        old.display(),
        source.url()
    ));
    let (run, found) = doctor(&sandbox, &[]);
    run.assert_code(1);
    assert_check(
        &found,
        "database pg: pg_dump against the server",
        "fail",
        "pg_dump 9.6 is older than the server (15)",
    );
    let fix = finding(&found, "database pg: pg_dump against the server")["fix"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(fix.contains("postgresql-client-15"), "{fix}");
    // A MySQL 8 mysqldump against MariaDB fails the same way.
    let my = MyDb::create("doctor_tool");
    let mysqldump = sandbox.path().join("old/mysqldump");
    std::fs::write(&mysqldump, "#!/bin/sh\necho 'mysqldump  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)'\n").unwrap();
    bash(&format!("chmod 755 '{}'", mysqldump.display()));
    sandbox.write_config(&format!(
        "mysqldump_path = \"{}\"\n[[databases]]\nname = \"my\"\nurl = \"{}\"\n",
        mysqldump.display(),
        my.url()
    ));
    let (run, found) = doctor(&sandbox, &[]);
    run.assert_code(1);
    assert_check(
        &found,
        "database my: the dump tool against the server",
        "fail",
        "COLUMN_STATISTICS",
    );
}

#[test]
fn unreachable_databases_and_missing_privileges_are_named_with_the_fix() {
    // A password server asked without its password; a MySQL user and a PostgreSQL role
    // without SELECT on a table.
    let source = PgDb::create("doctor_priv");
    let role = format!("doctor_{}", std::process::id());
    source.psql(&format!(
        "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN; CREATE TABLE secret (n int); CREATE TABLE open (n int); GRANT SELECT ON open TO {role}; CREATE SCHEMA hidden; CREATE TABLE hidden.t (n int); GRANT SELECT ON hidden.t TO {role};"
    ));
    let my = MyDb::create("doctor_priv");
    let user = format!("doctor_{}", std::process::id());
    try_mariadb(None, &format!(
        "DROP USER IF EXISTS '{user}'@'%'; CREATE USER '{user}'@'%'; GRANT SELECT ON `{}`.* TO '{user}'@'%';",
        my.name
    )).unwrap();
    let sandbox = Sandbox::new();
    sandbox.write_config(&format!(
        "[[databases]]\nname = \"locked\"\nurl = \"{}\"\n\
         [[databases]]\nname = \"pg\"\nurl = \"{}\"\n\
         [[databases]]\nname = \"my\"\nurl = \"mysql://{user}@127.0.0.1:3306/{}\"\n\
         [[databases]]\nname = \"gone\"\nurl = \"sqlite:nowhere.db\"\n",
        url_with(&pg_auth_url(), "postgres", None),
        url_with(&pg_url(), &source.name, None).replace("postgres@", &format!("{role}@")),
        my.name
    ));
    let mut cmd = sandbox.cmd();
    cmd.env_remove("PGPASSWORD").args(["doctor", "--json"]);
    let run = run_cmd(&mut cmd);
    let _ = try_mariadb(None, &format!("DROP USER IF EXISTS '{user}'@'%';"));
    source.psql(&format!(
        "DROP TABLE secret, open; DROP SCHEMA hidden CASCADE; DROP ROLE {role};"
    ));
    run.assert_code(1);
    let found: Vec<Value> = serde_json::from_str(&run.stdout).unwrap();
    assert_check(
        &found,
        "database locked: reachable",
        "fail",
        "no password supplied",
    );
    assert_check(
        &found,
        "database pg: privileges",
        "fail",
        "may not read 2 table(s) or sequence(s) (hidden.t (no USAGE on its schema), public.secret)",
    );
    assert_check(
        &found,
        "database my: privileges",
        "fail",
        "lacks SHOW VIEW, TRIGGER, EVENT, LOCK TABLES",
    );
    assert_check(&found, "database gone: readable", "fail", "nowhere.db");
}

#[test]
fn a_read_only_backup_folder_and_one_others_can_read_are_named() {
    let sandbox = Sandbox::new();
    create_sample_sqlite(&sandbox.path().join("app.db"));
    sandbox.write_config("[[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n");
    let backups = sandbox.backup_dir();
    std::fs::create_dir_all(&backups).unwrap();
    bash(&format!("chmod 755 '{}'", backups.display()));
    let (run, found) = doctor(&sandbox, &[]);
    run.assert_success();
    assert_check(
        &found,
        "backup folder",
        "warn",
        "others may look inside (mode 755)",
    );
    // Read-only for real: a read-only bind mount in a mount namespace of its own.
    let out = bash(&format!(
        "if unshare -m sh -c \"mount --bind -o ro '{dir}' '{dir}' && exec '{bin}' --config '{config}' doctor --json\"; then echo rc=0; else echo \"rc=$?\"; fi",
        dir = backups.display(),
        bin = bin_path(),
        config = sandbox.config_path().display()
    ));
    let out = String::from_utf8(out).unwrap();
    let (json, rc) = out.rsplit_once("rc=").unwrap();
    assert_eq!(rc.trim(), "1", "{out}");
    let found: Vec<Value> = serde_json::from_str(json).unwrap();
    assert_check(
        &found,
        "backup folder",
        "fail",
        "cannot be written: Read-only file system",
    );
    // Too little room: min_free_space above what the disk has.
    sandbox.write_config(
        "min_free_space = \"1000TiB\"\n[[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n",
    );
    let (run, found) = doctor(&sandbox, &[]);
    run.assert_code(1);
    assert_check(
        &found,
        "backup folder: room",
        "fail",
        "less than two more backups",
    );
}

#[test]
fn an_unreachable_s3_endpoint_a_dead_webhook_and_a_wrong_age_identity_fail() {
    let s3 = S3::start("doctor-ok");
    let hooks = Receiver::start(Answer::Ok);
    let sandbox = Sandbox::new();
    create_sample_sqlite(&sandbox.path().join("app.db"));
    let (_key, public) = keygen(sandbox.path(), "key.txt");
    let (other, _) = keygen(sandbox.path(), "other.txt");
    let dead = crate::http::free_port();
    sandbox.write_config(&format!(
        "identity_file = \"{}\"\nage_passphrase_env = \"NO_SUCH_PASSPHRASE\"\n\
         [[offsite]]\nname = \"good\"\nurl = \"s3://doctor-ok/b\"\nendpoint = \"http://127.0.0.1:{}\"\nregion = \"us-east-1\"\n\
         [[offsite]]\nname = \"dead\"\nurl = \"s3://doctor-ok/b\"\nendpoint = \"http://127.0.0.1:{dead}\"\nregion = \"us-east-1\"\n\
         [[notify.webhook]]\nurl = \"{}\"\n\
         [[notify.webhook]]\nname = \"dead\"\nurl = \"http://127.0.0.1:{dead}/hook\"\n\
         [[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\nage_recipients = [\"{public}\"]\n\
         [[databases]]\nname = \"other\"\nurl = \"sqlite:app.db\"\n",
        other.display(),
        s3.port,
        hooks.url("/hook")
    ));
    let mut cmd = sandbox.cmd();
    cmd.env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env_remove("NO_SUCH_PASSPHRASE")
        .args(["doctor", "--json"]);
    let run = run_cmd(&mut cmd);
    run.assert_code(1);
    let found: Vec<Value> = serde_json::from_str(&run.stdout).unwrap();
    assert_check(&found, "off-site good", "ok", "put, read back and deleted");
    assert_check(&found, "off-site dead", "fail", "put:");
    assert_check(
        &found,
        "database app: encryption",
        "fail",
        "opens none of its 1 recipient(s)",
    );
    assert_check(
        &found,
        "database other: encryption",
        "fail",
        "NO_SUCH_PASSPHRASE",
    );
    let dead_hook = finding_starting(&found, "notify webhook dead");
    assert_eq!(dead_hook["level"], "fail", "{dead_hook:#}");
    let live_hook = finding_starting(&found, "notify webhook http://127.0.0.1");
    assert_eq!(live_hook["level"], "ok", "{live_hook:#}");
    // Nothing was sent to the webhook without --send, and the probe left nothing in S3.
    assert!(
        hooks.seen.lock().unwrap().is_empty(),
        "doctor sent something"
    );
    let listing = ureq::get(&format!(
        "http://127.0.0.1:{}/doctor-ok?list-type=2",
        s3.port
    ))
    .call()
    .unwrap()
    .into_body()
    .read_to_string()
    .unwrap();
    assert!(!listing.contains("dbkeep-doctor"), "{listing}");
    // With --send, the webhook gets a test event.
    let mut cmd = sandbox.cmd();
    cmd.env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .args(["doctor", "--json", "--send"]);
    let run = run_cmd(&mut cmd);
    let found: Vec<Value> = serde_json::from_str(&run.stdout).unwrap();
    let sent = finding_starting(&found, "notify webhook http://127.0.0.1");
    assert_eq!(sent["level"], "ok", "{sent:#}");
    assert!(
        sent["detail"]
            .as_str()
            .unwrap()
            .contains("a test event was delivered"),
        "{sent:#}"
    );
    assert_eq!(hooks.seen.lock().unwrap().len(), 1, "one test event");
}

#[test]
fn an_unreachable_catalog_fails_and_the_checks_without_it_still_run() {
    let sandbox = Sandbox::new();
    create_sample_sqlite(&sandbox.path().join("app.db"));
    let dead = crate::http::free_port();
    sandbox.write_config(&format!(
        "catalog = \"postgres://postgres@127.0.0.1:{dead}/dbkeep\"\n[[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n"
    ));
    let (run, found) = doctor(&sandbox, &[]);
    run.assert_code(1);
    assert_check(&found, "catalog", "fail", &format!("127.0.0.1:{dead}"));
    assert_check(&found, "database app: readable", "ok", "app.db");
    // A configuration that does not load is one failed check, in JSON too.
    std::fs::write(sandbox.config_path(), "[[databases]]\nname = 1\n").unwrap();
    let (run, found) = doctor(&sandbox, &[]);
    run.assert_code(1);
    assert_check(&found, "configuration", "fail", "dbkeep.toml");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_setup_page_shows_the_same_checks_to_admins_only() {
    use crate::web::{App, Auth};
    use dbkeep::accounts::{Grant, Role};
    let app = App::start_with_databases(
        "",
        "[[databases]]\nname = \"gone\"\nurl = \"sqlite:nowhere.db\"\n",
    )
    .await;
    let admin = app.login().await;
    let page = app.get("/setup", &admin).await;
    assert_eq!(page.status, axum::http::StatusCode::OK, "{}", page.text());
    let text = page.text();
    for want in [
        "database app: readable",
        "database gone: readable",
        "backup folder: room",
        "data-level=\"fail\"",
        "check its url: the SQLite file must exist",
        "ok, 0 warn, 1 fail",
        "href=\"/setup\"",
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }
    app.add_token(
        "op",
        "dbk_setup_operator_0123456789",
        Grant::everywhere(Role::Operator),
    );
    let refused = app
        .get(
            "/setup",
            &Auth::Bearer("dbk_setup_operator_0123456789".into()),
        )
        .await;
    assert_eq!(refused.status, axum::http::StatusCode::FORBIDDEN);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_of_some_databases_sees_only_their_checks() {
    use crate::web::App;
    use dbkeep::accounts::{Databases, Grant, Role};
    let app = App::start_with_databases("", "").await;
    app.add_user(
        "scoped",
        Grant {
            role: Role::Admin,
            databases: Databases::parse("app").unwrap(),
        },
    );
    let scoped = app.login_as("scoped").await;
    let text = app.get("/setup", &scoped).await.text();
    assert!(text.contains("database app: readable"), "{text}");
    assert!(!text.contains("database other:"), "{text}");
    assert!(text.contains("backup folder"), "{text}");
    app.stop().await;
}
