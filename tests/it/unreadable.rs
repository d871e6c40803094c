//! A catalog row this version cannot read (a hand-edited value, a word a newer version wrote)
//! is named by id, column and value, left out, and the commands go on with the other rows:
//! `list`, `status`, `verify` and `prune`, on both catalogs. Prune never deletes because of
//! such a row, and the newest backup it can read stays the newest it keeps.

use std::path::PathBuf;

use serde_json::Value;

use crate::common::*;

const APP: &str = "[[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n";

/// A sandbox with `catalog` (a line of configuration, or nothing) and `n` backups of `app`;
/// their paths, oldest first.
fn with_backups(catalog: &str, n: usize) -> (Sandbox, Vec<PathBuf>) {
    let sb = Sandbox::new();
    create_sample_sqlite(&sb.path().join("app.db"));
    sb.write_config(&format!("{catalog}\nkeep_last = 1\n{APP}"));
    for _ in 0..n {
        sb.run(&["backup"]).assert_success();
    }
    let mut rows = sb.list_json();
    rows.reverse();
    let paths = rows
        .iter()
        .map(|r| assert_success_row(r, "app", "sqlite"))
        .collect();
    (sb, paths)
}

fn ids(rows: &[Value]) -> Vec<i64> {
    rows.iter().map(|r| r["id"].as_i64().unwrap()).collect()
}

/// The warning a command gives for row `id`: naming it, its column and the value there.
#[track_caller]
fn assert_warns(run: &Run, id: i64, column: &str, value: &str) {
    let line = run
        .stderr
        .lines()
        .find(|l| l.starts_with("warning:") && l.contains(&format!("backup #{id} ")))
        .unwrap_or_else(|| panic!("no warning about backup #{id}\n{run:?}"));
    assert!(
        line.contains(&format!("`{column}`")) && line.contains(&format!("'{value}'")),
        "the warning does not name the column `{column}` and its value '{value}': {line}"
    );
}

/// Every command that reads the history goes on without rows #`bad` (each with its column and
/// value), and prune deletes only what the rows it can read let go.
fn commands_go_on_without(sb: &Sandbox, paths: &[PathBuf], bad: &[(i64, &str, &str)]) {
    let warned = |run: &Run| {
        for (id, column, value) in bad {
            assert_warns(run, *id, column, value);
        }
    };
    let bad_ids: Vec<i64> = bad.iter().map(|b| b.0).collect();
    let good: Vec<i64> = (1..=paths.len() as i64)
        .rev()
        .filter(|id| !bad_ids.contains(id))
        .collect();
    let newest_good = good[0];

    let run = sb.run(&["list"]);
    run.assert_success();
    warned(&run);
    for id in &good {
        assert!(
            run.stdout.lines().any(|l| l.starts_with(&format!("{id} "))),
            "#{id} missing from list\n{run:?}"
        );
    }
    let run = sb.run(&["list", "--json"]);
    run.assert_success();
    warned(&run);
    assert_eq!(ids(&parse_rows(&run.stdout)), good, "{run:?}");
    // A page counts the rows it shows: --limit 1 is the newest readable one.
    let run = sb.run(&["list", "--json", "--limit", "1"]);
    assert_eq!(ids(&parse_rows(&run.stdout)), [newest_good], "{run:?}");
    // The row itself, asked for by id, is an error that names it.
    let (id, column, value) = bad[0];
    let run = sb.run(&["list", "--id", &id.to_string()]);
    run.assert_code(1);
    assert!(
        run.stderr.contains(&format!("backup #{id} "))
            && run.stderr.contains(&format!("`{column}`"))
            && run.stderr.contains(&format!("'{value}'")),
        "{run:?}"
    );

    let run = sb.run(&["status", "--json"]);
    run.assert_success();
    warned(&run);
    let status: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(status[0]["status"], "protected", "{status:#}");

    let run = sb.run(&["verify", "--latest", "--level", "checksum"]);
    run.assert_success();
    warned(&run);
    assert!(
        run.stdout.contains(&format!("ok      #{newest_good}  app")),
        "the newest readable backup is the latest: {run:?}"
    );
    let run = sb.run(&["verify", "--all", "--level", "checksum"]);
    run.assert_success();
    warned(&run);
    assert_eq!(
        run.stdout.matches("ok      #").count(),
        good.len(),
        "{run:?}"
    );

    let run = sb.run(&["prune", "--retention-days", "0", "--confirm"]);
    run.assert_success();
    warned(&run);
    for (i, path) in paths.iter().enumerate() {
        let id = i as i64 + 1;
        let kept = bad_ids.contains(&id) || id == newest_good;
        assert_eq!(
            path.exists(),
            kept,
            "#{id} {} after prune\n{run:?}",
            if kept { "deleted" } else { "kept" }
        );
    }
}

#[test]
fn a_row_with_an_unknown_trigger_or_a_garbled_time_is_named_and_left_out_on_sqlite() {
    let (sb, paths) = with_backups("", 4);
    let conn = rusqlite::Connection::open(sb.catalog_path()).unwrap();
    conn.execute_batch(
        "UPDATE backups SET trigger = 'bogus' WHERE id = 4;
         UPDATE backups SET started_at = 'garbage' WHERE id = 2;",
    )
    .unwrap();
    drop(conn);
    commands_go_on_without(
        &sb,
        &paths,
        &[(4, "trigger", "bogus"), (2, "started_at", "garbage")],
    );
}

#[test]
fn a_row_with_an_unknown_trigger_is_named_and_left_out_on_postgres() {
    let catalog = PgDb::create("unreadable");
    let (sb, paths) = with_backups(&format!("catalog = \"{}\"", catalog.url()), 3);
    catalog.psql("UPDATE backups SET trigger = 'bogus' WHERE id = 3;");
    commands_go_on_without(&sb, &paths, &[(3, "trigger", "bogus")]);
}
