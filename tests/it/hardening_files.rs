//! Bad days on the command line: shared catalogs, absurd numbers, a zero umask, links and
//! non-databases in the wrong places, a full disk, signals, hostile server text, and a
//! password in a URL parameter.

use std::fs;
use std::os::unix::fs::{PermissionsExt as _, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// An executable `pg_dump` stand-in at `path`.
fn script(path: &Path, body: &str) -> String {
    fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

#[test]
fn prune_with_a_shared_catalog_leaves_other_configurations_alone() {
    let sandbox = Sandbox::new();
    create_sample_sqlite(&sandbox.path().join("app.db"));
    // Two configurations, one catalog; both name a database `app`, each in its own folder.
    for (dir, other) in [("a", "alpha"), ("b", "beta")] {
        fs::create_dir(sandbox.path().join(dir)).unwrap();
        fs::write(
            sandbox.path().join(dir).join("dbkeep.toml"),
            format!(
                "catalog = \"../shared.sqlite3\"\nretention_days = 0\nkeep_last = 1\n\
                 [[databases]]\nname = \"app\"\nurl = \"sqlite:../app.db\"\n\
                 [[databases]]\nname = \"{other}\"\nurl = \"sqlite:../app.db\"\n"
            ),
        )
        .unwrap();
    }
    let dbkeep = |dir: &str, args: &[&str]| {
        let config = sandbox.path().join(dir).join("dbkeep.toml");
        run_cmd(sandbox.bare_cmd().arg("--config").arg(config).args(args))
    };
    for _ in 0..3 {
        dbkeep("b", &["backup", "--no-cleanup"]).assert_success();
    }
    dbkeep("a", &["backup", "--no-cleanup"]).assert_success();
    let b_files = files_below(&sandbox.path().join("b/backups"));
    assert_eq!(b_files.len(), 6);

    let run = dbkeep("a", &["prune"]);
    run.assert_success();
    assert_eq!(files_below(&sandbox.path().join("b/backups")), b_files);
    assert!(run.stdout.contains("left alone  beta  3"), "{run:?}");
    assert!(run.stdout.contains("left alone  app  3"), "{run:?}");
    assert!(run.stdout.contains("another configuration"), "{run:?}");
    // Nothing of B's was marked pruned either.
    let rows = parse_rows(&dbkeep("b", &["list", "--json"]).stdout);
    assert!(rows.iter().all(|r| r["pruned_at"].is_null()), "{rows:#?}");

    // B prunes its own, and only its own (two of three at once: confirmed past the guard rail).
    let run = dbkeep("b", &["prune", "--confirm"]);
    run.assert_success();
    assert_eq!(run.stdout.matches("pruned  ").count(), 4, "{run:?}");
    assert_eq!(files_below(&sandbox.path().join("b/backups")).len(), 2);
    assert_eq!(files_below(&sandbox.path().join("a/backups")).len(), 2);
}

#[test]
fn numbers_out_of_range_are_refused_at_load_and_never_panic() {
    let sandbox = Sandbox::new();
    create_sample_sqlite(&sandbox.path().join("app.db"));
    let db = "[[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n";
    sandbox.write_config(&format!("retention_days = 100000000\n{db}"));
    let run = sandbox.run(&["backup"]);
    run.assert_code(2);
    assert!(
        run.stderr.contains("line 1") && run.stderr.contains("retention_days"),
        "{run:?}"
    );
    sandbox.write_config(&format!("retention_days = 36500\n{db}"));
    for run in [
        sandbox.run(&["backup", "--retention-days", "4294967295"]),
        sandbox.run(&["prune", "--retention-days", "100000000"]),
        run_cmd(
            sandbox
                .cmd()
                .env("DBKEEP_RETENTION_DAYS", "4294967295")
                .arg("backup"),
        ),
    ] {
        run.assert_code(2);
        assert!(run.stderr.contains("36500"), "{run:?}");
        assert!(!run.stderr.contains("panicked"), "{run:?}");
    }
    // The largest accepted retention backs up and prunes nothing.
    let run = sandbox.run(&["backup"]);
    run.assert_success();
    assert!(!run.all_output().contains("panicked"), "{run:?}");
    sandbox.run(&["backup"]).assert_success();
    assert_eq!(files_below(&sandbox.db_dir("app")).len(), 2);
}

#[test]
fn everything_dbkeep_creates_is_private_even_under_umask_000() {
    let sandbox = Sandbox::new();
    create_sample_sqlite(&sandbox.path().join("app.db"));
    sandbox.write_config(
        "catalog = \"state/cat/dbkeep.sqlite3\"\nbackup_dir = \"out/backups\"\n\
         [[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n\
         [[databases]]\nname = \"zipped\"\nurl = \"sqlite:app.db\"\ncompression = \"gzip\"\n",
    );
    let under_umask_000 = |args: &[&str]| {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg("umask 000 && exec \"$@\"")
            .arg("sh")
            .arg(bin_path())
            .args(args)
            .current_dir(sandbox.path())
            .env("NO_COLOR", "1")
            .env_remove("DBKEEP_ADMIN_PASSWORD");
        for var in SCRUBBED_ENV {
            cmd.env_remove(var);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "dbkeep {args:?}: {out:?}");
    };
    let config = sandbox.config_path().display().to_string();
    under_umask_000(&["--config", &config, "backup"]);
    under_umask_000(&["--config", &config, "list"]);
    under_umask_000(&["--config", "made-by-init.toml", "init"]);
    under_umask_000(&["demo", "--no-serve", "demo"]);

    // Everything below the sandbox that the test did not write itself.
    let ours = ["dbkeep.toml", "app.db", "app.db-wal", "app.db-shm"];
    let mut checked = 0;
    let mut stack = vec![sandbox.path().to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            if dir == sandbox.path() && ours.iter().any(|o| path.ends_with(o)) {
                continue;
            }
            let mode = meta.permissions().mode() & 0o777;
            assert_eq!(
                mode & 0o077,
                0,
                "{} is mode {mode:o}: open to group or others",
                path.display()
            );
            checked += 1;
            if meta.is_dir() {
                stack.push(path);
            }
        }
    }
    // state, cat, the catalog and its lock folder and files, out, backups, two database
    // folders and files, the init file, the demo folder and its files...
    assert!(checked >= 15, "only {checked} entries were checked");
}

#[test]
fn symlinked_database_folders_are_refused_and_left_untouched() {
    let sandbox = Sandbox::new();
    create_sample_sqlite(&sandbox.path().join("app.db"));
    sandbox.write_config("[[databases]]\nname = \"s\"\nurl = \"sqlite:app.db\"\n");
    let elsewhere = sandbox.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    fs::set_permissions(&elsewhere, fs::Permissions::from_mode(0o755)).unwrap();
    fs::create_dir(sandbox.backup_dir()).unwrap();
    symlink(&elsewhere, sandbox.db_dir("s")).unwrap();

    let run = sandbox.run(&["backup"]);
    run.assert_code(1);
    let error = assert_failed_row(&sandbox.rows_for("s")[0], "s");
    assert!(error.contains("symbolic link"), "{error}");
    assert!(
        file_names(&elsewhere).is_empty(),
        "{:?}",
        file_names(&elsewhere)
    );
    assert_eq!(mode_of(&elsewhere), 0o755);

    // A link planted in the lock folder (its migration lock) is refused too, and its target
    // keeps its mode.
    let victim = sandbox.path().join("victim.txt");
    fs::write(&victim, "mine").unwrap();
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o644)).unwrap();
    let locks = sandbox.path().join("dbkeep.sqlite3.locks");
    fs::remove_file(locks.join(".catalog.lock")).unwrap();
    symlink(&victim, locks.join(".catalog.lock")).unwrap();
    let run = sandbox.run(&["backup"]);
    assert_ne!(run.code, Some(0), "{run:?}");
    assert!(run.stderr.contains("cannot lock for migration"), "{run:?}");
    assert_eq!(mode_of(&victim), 0o644);
    assert_eq!(fs::read_to_string(&victim).unwrap(), "mine");
}

#[test]
fn files_that_are_not_sqlite_databases_are_refused() {
    let sandbox = Sandbox::new();
    fs::write(sandbox.path().join("one.db"), b"x").unwrap();
    fs::write(sandbox.path().join("junk.db"), vec![b'j'; 8192]).unwrap();
    sandbox.write_config(
        "[[databases]]\nname = \"one\"\nurl = \"sqlite:one.db\"\n\
         [[databases]]\nname = \"junk\"\nurl = \"sqlite:junk.db\"\n",
    );
    sandbox.run(&["backup"]).assert_code(1);
    let one = assert_failed_row(&sandbox.rows_for("one")[0], "one");
    assert!(one.contains("too short to be a SQLite database"), "{one}");
    let junk = assert_failed_row(&sandbox.rows_for("junk")[0], "junk");
    assert!(junk.contains("not a SQLite database"), "{junk}");
    assert!(files_below(&sandbox.backup_dir()).is_empty());
}

#[test]
fn a_full_backup_disk_is_named_as_such() {
    let sandbox = Sandbox::new();
    create_large_sqlite(&sandbox.path().join("big.db"), 4, "wal");
    sandbox.write_config("[[databases]]\nname = \"big\"\nurl = \"sqlite:big.db\"\n");
    fs::create_dir(sandbox.backup_dir()).unwrap();
    // A 1 MiB file system as the backup folder, in a mount namespace of the run's own.
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c"])
        .arg("mount -t tmpfs -o size=1m tmpfs \"$1\" && shift && exec \"$@\"")
        .arg("sh")
        .arg(sandbox.backup_dir())
        .arg(bin_path())
        .arg("--config")
        .arg(sandbox.config_path())
        .arg("backup")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let error = assert_failed_row(&sandbox.rows_for("big")[0], "big");
    assert!(
        error.contains(&format!(
            "the backup folder {} is full",
            sandbox.db_dir("big").display()
        )),
        "{error}\n{stdout}"
    );
}

/// A config whose `pg_dump` writes a little, then sleeps until killed, noting its pid.
fn hanging_dump(sandbox: &Sandbox) -> PathBuf {
    let pid_file = sandbox.path().join("dump.pid");
    let dump = script(
        &sandbox.path().join("pg_dump"),
        &format!(
            "echo $$ > '{}'\necho '-- partial dump'\nexec sleep 300",
            pid_file.display()
        ),
    );
    sandbox.write_config(&format!(
        "pg_dump_path = \"{dump}\"\n\
         [[databases]]\nname = \"pg\"\nurl = \"postgres://nobody@127.0.0.1:1/none\"\n"
    ));
    pid_file
}

#[test]
fn sigint_and_sigterm_cancel_a_running_backup_cleanly() {
    for (signal, code) in [("INT", 130), ("TERM", 143)] {
        let sandbox = Sandbox::new();
        let pid_file = hanging_dump(&sandbox);
        let mut cmd = Command::new(bin_path());
        cmd.arg("--config")
            .arg(sandbox.config_path())
            .arg("backup")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for var in SCRUBBED_ENV {
            cmd.env_remove(var);
        }
        let child = cmd.spawn().unwrap();
        let start = Instant::now();
        while !pid_file.exists() || fs::read_to_string(&pid_file).unwrap().trim().is_empty() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "pg_dump never ran"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let dump_pid = fs::read_to_string(&pid_file).unwrap().trim().to_string();
        assert!(
            !files_below(&sandbox.backup_dir()).is_empty(),
            "no .part file"
        );
        Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(code), "SIG{signal}: {out:?}");
        let rows = sandbox.rows_for("pg");
        let error = assert_failed_row(&rows[0], "pg");
        assert_eq!(error, format!("cancelled: interrupted by SIG{signal}"));
        assert!(
            files_below(&sandbox.backup_dir()).is_empty(),
            "{:?}",
            files_below(&sandbox.backup_dir())
        );
        let alive = Command::new("kill")
            .args(["-0", &dump_pid])
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(
            !alive,
            "pg_dump (pid {dump_pid}) still runs after SIG{signal}"
        );
    }
}

#[test]
fn escape_sequences_from_a_server_never_reach_the_terminal_raw() {
    let sandbox = Sandbox::new();
    let dump = script(
        &sandbox.path().join("pg_dump"),
        "printf 'boom \\033[2J\\033]0;pwned\\007 done\\n' >&2\nexit 1",
    );
    sandbox.write_config(&format!(
        "pg_dump_path = \"{dump}\"\n\
         [[databases]]\nname = \"pg\"\nurl = \"postgres://nobody@127.0.0.1:1/none\"\n"
    ));
    let backup = sandbox.run(&["backup"]);
    backup.assert_code(1);
    let list = sandbox.run(&["list"]);
    list.assert_success();
    for (what, run) in [("backup", &backup), ("list", &list)] {
        assert!(
            !run.all_output().contains('\x1b') && !run.all_output().contains('\x07'),
            "{what} printed raw control characters: {run:?}"
        );
    }
    assert!(list.stdout.contains("boom \\x1b[2J"), "{list:?}");
    // The record itself keeps the server's words as they were (JSON escapes them).
    let error = assert_failed_row(&sandbox.rows_for("pg")[0], "pg");
    assert!(error.contains("boom \x1b[2J"), "{error:?}");
}

#[test]
fn a_password_url_parameter_never_reaches_logs_or_the_command_line() {
    let auth_url = pg_auth_url();
    let password = pg_auth_password();
    require_pg(&auth_url, Some(&password));
    let sandbox = Sandbox::new();
    let args_file = sandbox.path().join("pg_dump.args");
    let dump = script(
        &sandbox.path().join("pg_dump"),
        &format!(
            "echo \"$@\" >> '{}'\nexec pg_dump \"$@\"",
            args_file.display()
        ),
    );
    sandbox.write_config(&format!(
        "pg_dump_path = \"{dump}\"\n\
         [[databases]]\nname = \"secured\"\nurl = \"{}?sslmode=disable&password={password}\"\n",
        url_with(&auth_url, "postgres", None)
    ));
    let text = run_cmd(sandbox.cmd().args(["-vv", "backup"]));
    text.assert_success();
    let json = run_cmd(
        sandbox
            .cmd()
            .args(["-vv", "--log-format", "json", "backup"]),
    );
    json.assert_success();
    let args = fs::read_to_string(&args_file).unwrap();
    assert!(args.contains("sslmode=disable"), "{args}");
    assert_absent(&args, &password, "pg_dump's command line");
    assert_absent(&text.all_output(), &password, "text logs");
    assert_absent(&json.all_output(), &password, "JSON logs");
    assert_absent(&sandbox.run(&["list", "--json"]).stdout, &password, "list");
    assert_absent_bytes(&sandbox.catalog_bytes(), &password, "the catalog");
    assert_eq!(sandbox.rows_for("secured").len(), 2);
}

#[test]
fn database_tools_get_their_password_and_their_settings_never_dbkeeps_other_secrets() {
    let sandbox = Sandbox::new();
    let source = PgDb::create("env_src");
    source.psql("CREATE TABLE t (x int); INSERT INTO t VALUES (1);");
    let bin = sandbox.path().join("bin");
    fs::create_dir(&bin).unwrap();
    let seen = sandbox.path().join("seen");
    fs::create_dir(&seen).unwrap();
    // Each tool writes down its environment, then is the real one.
    for tool in ["pg_dump", "psql"] {
        let real = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}"))
            .output()
            .unwrap();
        let real = String::from_utf8(real.stdout).unwrap();
        script(
            &bin.join(tool),
            &format!(
                "env > \"{}/{tool}.$$\"\nexec {} \"$@\"",
                seen.display(),
                real.trim()
            ),
        );
    }
    sandbox.write_config(&format!(
        "pg_dump_path = \"bin/pg_dump\"\n[[databases]]\nname = \"pg\"\nurl = \"{}\"\npassword_env = \"APP_DB_PASSWORD\"\n",
        source.url()
    ));
    let target = PgDb::create("env_dst");
    let with_secrets = |args: &[&str]| {
        run_cmd(
            sandbox
                .cmd()
                .args(args)
                .env("APP_DB_PASSWORD", "the-database-secret")
                .env("DBKEEP_ADMIN_PASSWORD", "the-admin-secret")
                .env("DBKEEP_CATALOG_PASSWORD", "the-catalog-secret")
                .env("AWS_SECRET_ACCESS_KEY", "the-cloud-secret")
                .env("PGCONNECT_TIMEOUT", "17")
                .env("LC_ALL", "C.UTF-8"),
        )
    };
    with_secrets(&["backup"]).assert_success();
    let id = sandbox.rows_for("pg")[0]["id"].to_string();
    with_secrets(&["restore", &id, "--to", &target.url()]).assert_success();
    with_secrets(&["verify", &id]).assert_success();
    let seen_files = files_below(&seen);
    assert!(
        seen_files.len() >= 3,
        "pg_dump and psql ran: {seen_files:?}"
    );
    for file in &seen_files {
        let env = fs::read_to_string(file).unwrap();
        for secret in [
            "the-admin-secret",
            "the-catalog-secret",
            "the-cloud-secret",
            "APP_DB_PASSWORD",
            "DBKEEP_",
        ] {
            assert_absent(&env, secret, &file.display().to_string());
        }
        assert!(env.contains("PGCONNECT_TIMEOUT=17"), "{file:?}: {env}");
        assert!(env.contains("LC_ALL=C.UTF-8"), "{file:?}: {env}");
        assert!(env.lines().any(|l| l.starts_with("PATH=")), "{file:?}");
    }
    // The password reaches the tools that connect, as their own variable.
    let with_password = seen_files
        .iter()
        .filter(|f| {
            fs::read_to_string(f)
                .unwrap()
                .contains("PGPASSWORD=the-database-secret")
        })
        .count();
    assert!(with_password >= 2, "{seen_files:?}");
}

/// Free bytes on the disk holding `dir`.
fn free_bytes(dir: &Path) -> u64 {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(dir)
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn an_import_that_would_expand_past_the_free_space_stops_and_leaves_nothing() {
    let sandbox = Sandbox::new();
    create_sample_sqlite(&sandbox.path().join("app.db"));
    // A quarter of a GiB of zeros behind a SQLite header: a few hundred KiB compressed.
    let bomb = sandbox.path().join("sqlite_backup_20250101_000000.db.gz");
    let made = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{{ head -c 100 \"$1\"; head -c 268435456 /dev/zero; }} | gzip -1 > '{}'",
            bomb.display()
        ))
        .arg("sh")
        .arg(sandbox.path().join("app.db"))
        .status()
        .unwrap();
    assert!(made.success());
    assert!(fs::metadata(&bomb).unwrap().len() < 4 * 1024 * 1024);
    // Room for 16 MiB more on this disk, as far as dbkeep is concerned.
    let margin = free_bytes(sandbox.path()).saturating_sub(16 * 1024 * 1024);
    sandbox.write_config(&format!(
        "min_free_space = \"{margin}\"\n[[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n"
    ));
    let run = sandbox.run(&["import", bomb.to_str().unwrap(), "-d", "app"]);
    run.assert_code(1);
    assert!(
        run.stdout
            .contains("expands to more than its disk can hold")
            && run.stdout.contains("min_free_space"),
        "{run:?}"
    );
    assert_eq!(files_below(&sandbox.backup_dir()), Vec::<PathBuf>::new());
    assert!(sandbox.list_json().is_empty());
    // A bad size is named.
    sandbox.write_config(
        "min_free_space = \"lots\"\n[[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n",
    );
    let run = sandbox.run(&["check"]);
    run.assert_code(2);
    assert!(
        run.stderr.contains("line 1") && run.stderr.contains("min_free_space"),
        "{run:?}"
    );
}
