//! A backup process killed with SIGKILL must not leave a file under a final
//! backup name; the next command marks the run as interrupted and removes
//! its temporary files.

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command as StdCommand};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::common::*;

/// Rows of ~100 bytes of md5 text each (~75 MB of dump); large enough that
/// pg_dump plus compression takes a few seconds.
const PG_ROWS: u64 = 1_000_000;

/// Starts `dbkeep backup` in the background with output sent to files.
fn spawn_backup(sb: &Sandbox) -> Child {
    let stdout = File::create(sb.path().join("backup.stdout")).unwrap();
    let stderr = File::create(sb.path().join("backup.stderr")).unwrap();
    let mut cmd = StdCommand::new(bin_path());
    cmd.current_dir(sb.path())
        .arg("--config")
        .arg(sb.config_path())
        .arg("backup")
        .stdout(stdout)
        .stderr(stderr);
    for var in SCRUBBED_ENV {
        cmd.env_remove(var);
    }
    cmd.spawn().expect("start dbkeep backup")
}

/// Waits for a temporary file (`.NAME.part` or `.NAME.snapshot`) to appear
/// in `dir` and returns its name.
fn wait_for_temp_file(child: &mut Child, sb: &Sandbox, dir: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if let Some(name) = file_names(dir)
            .into_iter()
            .find(|n| n.ends_with(".part") || n.ends_with(".snapshot"))
        {
            return name;
        }
        if let Some(status) = child.try_wait().unwrap() {
            let out = std::fs::read_to_string(sb.path().join("backup.stdout")).unwrap_or_default();
            let err = std::fs::read_to_string(sb.path().join("backup.stderr")).unwrap_or_default();
            panic!(
                "backup exited ({status}) before a temporary file was seen; \
                 the test database is too small for this machine\n{out}\n{err}"
            );
        }
        assert!(
            Instant::now() < deadline,
            "no temporary file appeared in {}",
            dir.display()
        );
        sleep(Duration::from_millis(2));
    }
}

/// Kills the backup once it is writing, then checks the aftermath.
fn kill_mid_backup_and_check(sb: &Sandbox, database: &str) {
    let dir = sb.db_dir(database);
    let mut child = spawn_backup(sb);
    let temp = wait_for_temp_file(&mut child, sb, &dir);
    assert!(temp.starts_with('.'), "temporary file {temp} is not hidden");
    // Let it write for a moment so the kill lands mid-stream.
    sleep(Duration::from_millis(100));
    child.kill().expect("SIGKILL the backup");
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "backup completed before it could be killed; the test database is too small"
    );

    // Nothing may exist under a final backup name.
    let left = file_names(&dir);
    let finals: Vec<&String> = left.iter().filter(|n| !n.starts_with('.')).collect();
    assert!(
        finals.is_empty(),
        "a killed backup left final files: {left:?}"
    );

    // The next command (any command) notices the interrupted run.
    let rows = sb.rows_for(database);
    assert_eq!(rows.len(), 1, "{rows:#?}");
    let error = assert_failed_row(&rows[0], database);
    assert!(
        error.to_lowercase().contains("interrupted"),
        "error does not say interrupted: {error}"
    );
    assert!(
        !rows[0]["finished_at"].is_null(),
        "interrupted row has no finished_at: {:#}",
        rows[0]
    );

    // ... and removes the temporary files.
    let left = file_names(&dir);
    assert!(left.is_empty(), "temporary files left behind: {left:?}");

    // A later command does not report it again or change it.
    let again = sb.rows_for(database);
    assert_eq!(again, rows);
}

#[test]
fn killed_postgres_backup_is_marked_interrupted_and_cleaned_up() {
    let db = PgDb::create("crash");
    db.psql(&format!(
        "CREATE TABLE filler AS \
         SELECT i, md5(i::text) AS a, md5((i + 1)::text) AS b, md5((i + 2)::text) AS c \
         FROM generate_series(1, {PG_ROWS}) AS i;"
    ));
    let sb = Sandbox::new();
    sb.write_config(&format!(
        "[[databases]]\nname = \"big\"\nurl = \"{}\"\n",
        db.url()
    ));
    kill_mid_backup_and_check(&sb, "big");
}

#[test]
fn killed_sqlite_backup_is_marked_interrupted_and_cleaned_up() {
    let sb = Sandbox::new();
    create_large_sqlite(&sb.path().join("big.db"), 80, "wal");
    sb.write_config(
        "[[databases]]\nname = \"big\"\nurl = \"sqlite:big.db\"\ncompression = \"gzip\"\n",
    );
    kill_mid_backup_and_check(&sb, "big");
}
