//! Retention: old backups are pruned after a backup or by `prune`, the
//! newest `keep_last` always survive, and files the catalog does not know
//! are never touched.

use std::fs;
use std::path::PathBuf;

use serde_json::Value;

use crate::common::*;

fn sandbox_with_app(extra_top_level: &str) -> Sandbox {
    let sb = Sandbox::new();
    create_sample_sqlite(&sb.path().join("app.db"));
    sb.write_config(&format!(
        "{extra_top_level}\n[[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n"
    ));
    sb
}

fn file_name(row: &Value) -> String {
    row["file_name"].as_str().expect("file_name").to_string()
}

fn path(row: &Value) -> PathBuf {
    PathBuf::from(row["path"].as_str().expect("path"))
}

/// Asserts that the `kept` newest rows are on disk and unpruned, and every
/// older row is pruned and gone.
#[track_caller]
fn assert_kept_newest(rows: &[Value], kept: usize) {
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row["status"], "success", "{row:#}");
        if i < kept {
            assert!(row["pruned_at"].is_null(), "newest backup pruned: {row:#}");
            assert!(path(row).exists(), "{} was deleted", path(row).display());
        } else {
            assert!(
                row["pruned_at"].is_string(),
                "old backup not pruned: {row:#}"
            );
            assert!(!path(row).exists(), "{} still exists", path(row).display());
        }
    }
}

#[test]
fn retention_zero_keeps_only_the_newest_backup() {
    let sb = sandbox_with_app("");
    let mut outputs = Vec::new();
    for _ in 0..3 {
        let run = sb.run(&["backup", "--retention-days", "0"]);
        run.assert_success();
        outputs.push(run);
    }
    let rows = sb.rows_for("app");
    assert_eq!(rows.len(), 3, "{rows:#?}");
    assert_kept_newest(&rows, 1);
    assert_eq!(file_names(&sb.db_dir("app")), vec![file_name(&rows[0])]);

    // Each later backup reported what it pruned.
    assert!(
        outputs[1]
            .stdout
            .lines()
            .any(|l| l.starts_with("pruned") && l.contains(&file_name(&rows[2]))),
        "{:?}",
        outputs[1]
    );
    assert!(
        outputs[2]
            .stdout
            .lines()
            .any(|l| l.starts_with("pruned") && l.contains(&file_name(&rows[1]))),
        "{:?}",
        outputs[2]
    );
}

#[test]
fn retention_from_config_and_environment() {
    // retention_days = 0 in the config file.
    let sb = sandbox_with_app("retention_days = 0");
    for _ in 0..2 {
        sb.run(&["backup"]).assert_success();
    }
    let rows = sb.rows_for("app");
    assert_eq!(rows.len(), 2);
    assert_kept_newest(&rows, 1);

    // DBKEEP_RETENTION_DAYS overrides the config file.
    let sb = sandbox_with_app("retention_days = 30");
    for _ in 0..2 {
        run_cmd(sb.cmd().env("DBKEEP_RETENTION_DAYS", "0").arg("backup")).assert_success();
    }
    let rows = sb.rows_for("app");
    assert_eq!(rows.len(), 2);
    assert_kept_newest(&rows, 1);
}

#[test]
fn keep_last_two_survive_retention_zero() {
    let sb = sandbox_with_app("keep_last = 2");
    for _ in 0..3 {
        sb.run(&["backup", "--retention-days", "0"])
            .assert_success();
    }
    let rows = sb.rows_for("app");
    assert_eq!(rows.len(), 3, "{rows:#?}");
    assert_kept_newest(&rows, 2);
    let mut expected = vec![file_name(&rows[0]), file_name(&rows[1])];
    expected.sort();
    assert_eq!(file_names(&sb.db_dir("app")), expected);
}

#[test]
fn files_unknown_to_the_catalog_survive_pruning() {
    let sb = sandbox_with_app("");
    let dir = sb.db_dir("app");
    fs::create_dir_all(&dir).unwrap();
    let foreign = [
        ("README.txt", "my notes about these backups\n"),
        ("sqlite_backup_20200101_000000.db", "copied here by hand\n"),
    ];
    for (name, content) in foreign {
        fs::write(dir.join(name), content).unwrap();
    }

    for _ in 0..2 {
        sb.run(&["backup", "--retention-days", "0"])
            .assert_success();
    }
    sb.run(&["prune", "--retention-days", "0"]).assert_success();

    for (name, content) in foreign {
        assert_eq!(
            fs::read_to_string(dir.join(name)).ok().as_deref(),
            Some(content),
            "{name} was removed or changed"
        );
    }
    let rows = sb.rows_for("app");
    assert_eq!(rows.len(), 2);
    assert_kept_newest(&rows, 1);
}

#[test]
fn no_cleanup_prunes_nothing() {
    let sb = sandbox_with_app("");
    for _ in 0..3 {
        let run = sb.run(&["backup", "--retention-days", "0", "--no-cleanup"]);
        run.assert_success();
        assert!(
            !run.stdout.lines().any(|l| l.starts_with("pruned")),
            "{run:?}"
        );
    }
    let rows = sb.rows_for("app");
    assert_eq!(rows.len(), 3);
    for row in &rows {
        assert!(row["pruned_at"].is_null(), "{row:#}");
        assert!(path(row).exists());
    }
    assert_eq!(file_names(&sb.db_dir("app")).len(), 3);
}

#[test]
fn prune_dry_run_then_prune() {
    let sb = sandbox_with_app("");
    for _ in 0..3 {
        sb.run(&["backup", "--no-cleanup"]).assert_success();
    }
    let rows = sb.rows_for("app");
    assert_eq!(rows.len(), 3);
    let old: Vec<String> = rows[1..].iter().map(file_name).collect();

    // Nothing is old enough under the default 30 days.
    let run = sb.run(&["prune"]);
    run.assert_success();
    assert_eq!(file_names(&sb.db_dir("app")).len(), 3, "{run:?}");

    let dry = sb.run(&["prune", "--retention-days", "0", "--dry-run"]);
    dry.assert_success();
    for name in &old {
        assert!(
            dry.stdout.contains(name.as_str()),
            "dry run does not mention {name}:\n{dry:?}"
        );
    }
    assert_eq!(
        file_names(&sb.db_dir("app")).len(),
        3,
        "dry run deleted files"
    );
    for row in sb.rows_for("app") {
        assert!(
            row["pruned_at"].is_null(),
            "dry run marked a row pruned: {row:#}"
        );
    }

    // Two of three at once under a policy that never pruned here: held until confirmed.
    let held = sb.run(&["prune", "--retention-days", "0"]);
    held.assert_success();
    assert!(
        held.stdout
            .contains("held: the policy (retention_days 0, keep_last 1) would delete 2 of 3 backups of `app` at local"),
        "{held:?}"
    );
    assert_eq!(file_names(&sb.db_dir("app")).len(), 3, "{held:?}");
    let real = sb.run(&["prune", "--retention-days", "0", "--confirm"]);
    real.assert_success();
    for name in &old {
        assert!(
            real.stdout
                .lines()
                .any(|l| l.starts_with("pruned") && l.contains(name.as_str())),
            "prune does not report {name}:\n{real:?}"
        );
    }
    let rows = sb.rows_for("app");
    assert_kept_newest(&rows, 1);
    assert_eq!(file_names(&sb.db_dir("app")), vec![file_name(&rows[0])]);

    // Pruning again finds nothing more to do.
    let again = sb.run(&["prune", "--retention-days", "0"]);
    again.assert_success();
    assert!(
        !again.stdout.lines().any(|l| l.starts_with("pruned")),
        "{again:?}"
    );
}
