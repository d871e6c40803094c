//! Backups that cannot succeed must fail cleanly: exit code 1, a `failed`
//! catalog row with a useful message, nothing left in the backup folder and
//! no password in any output.

use std::fs;
use std::path::Path;

use crate::common::*;

/// Checks everything a clean failure promises and returns the error text.
#[track_caller]
fn assert_failed_cleanly(
    sb: &Sandbox,
    run: &Run,
    database: &str,
    backup_root: &Path,
    secret: Option<&str>,
) -> String {
    run.assert_code(1);
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("failed") && l.contains(database)),
        "no `failed` line for {database}:\n{run:?}"
    );

    let list_json = sb.run(&["list", "--json"]);
    list_json.assert_success();
    let rows: Vec<_> = parse_rows(&list_json.stdout)
        .into_iter()
        .filter(|r| r["database"] == database)
        .collect();
    assert_eq!(rows.len(), 1, "{rows:#?}");
    let error = assert_failed_row(&rows[0], database);
    assert!(
        rows[0]["pruned_at"].is_null(),
        "failed row marked pruned: {:#}",
        rows[0]
    );

    let stray = files_below(backup_root);
    assert!(stray.is_empty(), "stray files left behind: {stray:?}");

    if let Some(secret) = secret {
        let list_table = sb.run(&["list"]);
        assert_absent(&run.stdout, secret, "backup stdout");
        assert_absent(&run.stderr, secret, "backup stderr");
        assert_absent(&list_json.all_output(), secret, "list --json output");
        assert_absent(&list_table.all_output(), secret, "list output");
        assert_absent_bytes(&sb.catalog_bytes(), secret, "the catalog database");
    }
    error
}

fn wrong_password() -> String {
    format!("wr0ng-Pa55word-{}", std::process::id())
}

#[test]
fn wrong_password_in_url_fails_without_leaking_it() {
    let auth_url = pg_auth_url();
    require_pg(&auth_url, Some(&pg_auth_password()));
    let secret = wrong_password();

    let sb = Sandbox::new();
    sb.write_config(&format!(
        "[[databases]]\nname = \"secured\"\nurl = \"{}\"\n",
        url_with(&auth_url, "postgres", Some(&secret))
    ));
    let run = sb.run(&["backup"]);
    let error = assert_failed_cleanly(&sb, &run, "secured", &sb.backup_dir(), Some(&secret));
    assert!(
        error.contains("password authentication failed"),
        "unhelpful error: {error}"
    );
}

#[test]
fn wrong_password_from_password_env_fails_without_leaking_it() {
    let auth_url = pg_auth_url();
    require_pg(&auth_url, Some(&pg_auth_password()));
    let secret = wrong_password();

    let sb = Sandbox::new();
    sb.write_config(&format!(
        "[[databases]]\nname = \"secured\"\nurl = \"{}\"\npassword_env = \"DBKEEP_IT_PGPASS\"\n",
        url_with(&auth_url, "postgres", None)
    ));
    let run = run_cmd(sb.cmd().env("DBKEEP_IT_PGPASS", &secret).arg("backup"));
    let error = assert_failed_cleanly(&sb, &run, "secured", &sb.backup_dir(), Some(&secret));
    assert!(
        error.contains("password authentication failed"),
        "unhelpful error: {error}"
    );
}

/// The counterpart of the two tests above: with the right password the
/// same server is backed up, and the password still appears nowhere.
#[test]
fn correct_password_from_url_and_env_succeeds_without_leaking_it() {
    let auth_url = pg_auth_url();
    let password = pg_auth_password();
    require_pg(&auth_url, Some(&password));

    let sb = Sandbox::new();
    sb.write_config(&format!(
        "[[databases]]\nname = \"via_url\"\nurl = \"{}\"\n\n\
         [[databases]]\nname = \"via_env\"\nurl = \"{}\"\npassword_env = \"DBKEEP_IT_PGPASS\"\n",
        url_with(&auth_url, "postgres", Some(&password)),
        url_with(&auth_url, "postgres", None)
    ));
    let run = run_cmd(sb.cmd().env("DBKEEP_IT_PGPASS", &password).arg("backup"));
    run.assert_success();
    assert_absent(&run.all_output(), &password, "backup output");

    let list_json = sb.run(&["list", "--json"]);
    assert_absent(&list_json.all_output(), &password, "list --json output");
    assert_absent(&sb.run(&["list"]).all_output(), &password, "list output");
    assert_absent_bytes(&sb.catalog_bytes(), &password, "the catalog database");
    for row in parse_rows(&list_json.stdout) {
        let name = row["database"].as_str().unwrap().to_string();
        let path = assert_success_row(&row, &name, "postgres");
        assert!(path.exists());
    }
}

#[test]
fn unknown_database_fails_with_pg_dump_message() {
    require_pg(&pg_url(), None);
    let missing = unique_name("missing");
    let sb = Sandbox::new();
    sb.write_config(&format!(
        "[[databases]]\nname = \"nowhere\"\nurl = \"{}\"\n",
        url_with(&pg_url(), &missing, None)
    ));
    let run = sb.run(&["backup"]);
    let error = assert_failed_cleanly(&sb, &run, "nowhere", &sb.backup_dir(), None);
    assert!(
        error.contains(&missing),
        "error does not name the database: {error}"
    );
    assert!(error.contains("does not exist"), "unhelpful error: {error}");
}

#[test]
fn pg_dump_missing_from_path_fails_cleanly() {
    let db = PgDb::create("nodump");
    db.psql("CREATE TABLE t (id int); INSERT INTO t VALUES (1);");
    let sb = Sandbox::new();
    let empty_bin = sb.path().join("empty-bin");
    fs::create_dir(&empty_bin).unwrap();
    sb.write_config(&format!(
        "[[databases]]\nname = \"shop\"\nurl = \"{}\"\n",
        db.url()
    ));
    let run = run_cmd(sb.cmd().env("PATH", &empty_bin).arg("backup"));
    let error = assert_failed_cleanly(&sb, &run, "shop", &sb.backup_dir(), None);
    assert!(
        error.contains("pg_dump not found"),
        "unhelpful error: {error}"
    );
}

#[test]
fn postgres_backup_dir_under_a_regular_file_fails_cleanly() {
    let db = PgDb::create("blocked");
    db.psql("CREATE TABLE t (id int); INSERT INTO t VALUES (1);");
    let sb = Sandbox::new();
    let blocker = sb.path().join("blocker");
    fs::write(&blocker, "not a folder\n").unwrap();
    sb.write_config(&format!(
        "backup_dir = \"blocker/backups\"\n\n[[databases]]\nname = \"shop\"\nurl = \"{}\"\n",
        db.url()
    ));
    let run = sb.run(&["backup"]);
    assert_failed_cleanly(&sb, &run, "shop", &sb.backup_dir(), None);
    assert_eq!(fs::read_to_string(&blocker).unwrap(), "not a folder\n");
}

#[test]
fn postgres_database_folder_is_a_regular_file_fails_cleanly() {
    let db = PgDb::create("blocked");
    db.psql("CREATE TABLE t (id int); INSERT INTO t VALUES (1);");
    let sb = Sandbox::new();
    fs::create_dir(sb.backup_dir()).unwrap();
    fs::write(sb.db_dir("shop"), "in the way\n").unwrap();
    sb.write_config(&format!(
        "[[databases]]\nname = \"shop\"\nurl = \"{}\"\n",
        db.url()
    ));
    let run = sb.run(&["backup"]);
    let error = assert_failed_cleanly(&sb, &run, "shop", &sb.db_dir("shop"), None);
    assert!(!error.is_empty());
    assert_eq!(
        fs::read_to_string(sb.db_dir("shop")).unwrap(),
        "in the way\n"
    );
    assert_eq!(file_names(&sb.backup_dir()), vec!["shop".to_string()]);
}

#[test]
fn sqlite_database_folder_is_a_regular_file_fails_cleanly() {
    let sb = Sandbox::new();
    create_sample_sqlite(&sb.path().join("app.db"));
    fs::create_dir(sb.backup_dir()).unwrap();
    fs::write(sb.db_dir("app"), "in the way\n").unwrap();
    sb.write_config("[[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n");
    let run = sb.run(&["backup"]);
    assert_failed_cleanly(&sb, &run, "app", &sb.db_dir("app"), None);
    assert_eq!(
        fs::read_to_string(sb.db_dir("app")).unwrap(),
        "in the way\n"
    );
    assert_eq!(file_names(&sb.backup_dir()), vec!["app".to_string()]);
}

#[test]
fn sqlite_backup_dir_under_a_regular_file_fails_cleanly() {
    let sb = Sandbox::new();
    create_sample_sqlite(&sb.path().join("app.db"));
    let blocker = sb.path().join("blocker");
    fs::write(&blocker, "not a folder\n").unwrap();
    sb.write_config(
        "backup_dir = \"blocker/backups\"\n\n[[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n",
    );
    let run = sb.run(&["backup"]);
    assert_failed_cleanly(&sb, &run, "app", &sb.backup_dir(), None);
    assert_eq!(fs::read_to_string(&blocker).unwrap(), "not a folder\n");
}

#[test]
fn a_hung_dump_from_the_command_line_is_stopped_by_stall_timeout() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new();
    // A pg_dump stand-in that says one line and hangs, its child holding the pipe open.
    let fake = sb.path().join("hung_pg_dump");
    fs::write(&fake, "#!/bin/sh\necho '-- dump begins'\nsleep 600\n").unwrap();
    fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
    sb.write_config(&format!(
        "stall_timeout = \"1s\"\npg_dump_path = \"{}\"\n[[databases]]\nname = \"pg\"\nurl = \"postgres://app@127.0.0.1:5432/app\"\n",
        fake.display()
    ));
    let started = std::time::Instant::now();
    let run = sb.run(&["backup"]);
    run.assert_code(1);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        run.stdout
            .contains("stalled: no data for stall_timeout = 1s"),
        "{run:?}"
    );
    let rows = sb.rows_for("pg");
    assert_eq!(
        assert_failed_row(&rows[0], "pg"),
        "stalled: no data for stall_timeout = 1s"
    );
    assert_eq!(
        file_names(&sb.db_dir("pg")),
        Vec::<String>::new(),
        "stray files"
    );
}
