//! `dbkeep pin` and `dbkeep unpin`: a backup pinned with a note, shown so by `list` (and its
//! JSON), then unpinned; an unknown id or a failed backup is refused with a usage error.

use serde_json::Value;

use crate::common::*;

const APP: &str = "[[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n\n\
                   [[databases]]\nname = \"gone\"\nurl = \"sqlite:missing.db\"\n";

fn sandbox() -> Sandbox {
    let sb = Sandbox::new();
    create_sample_sqlite(&sb.path().join("app.db"));
    sb.write_config(APP);
    sb
}

/// `(pinned, pin_note)` of row `id` in `list --json`.
fn pin_of(sb: &Sandbox, id: i64) -> (Value, Value) {
    let rows = sb.list_json();
    let row = rows
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no row #{id}: {rows:#?}"));
    (row["pinned"].clone(), row["pin_note"].clone())
}

/// The line of `dbkeep list` for row `id`.
fn list_line(sb: &Sandbox, id: i64) -> String {
    let run = sb.run(&["list"]);
    run.assert_success();
    run.stdout
        .lines()
        .find(|l| l.starts_with(&format!("{id} ")))
        .unwrap_or_else(|| panic!("no line for #{id}\n{run:?}"))
        .to_string()
}

#[test]
fn a_backup_is_pinned_with_a_note_listed_as_pinned_and_unpinned() {
    let sb = sandbox();
    sb.run(&["backup", "-d", "app"]).assert_success();
    sb.run(&["backup", "-d", "app"]).assert_success();
    let rows = sb.rows_for("app");
    assert_eq!(rows.len(), 2, "{rows:#?}");
    assert!(
        rows.iter()
            .all(|r| r["pinned"] == false && r["pin_note"].is_null()),
        "{rows:#?}"
    );
    let (newer, older) = (
        rows[0]["id"].as_i64().unwrap(),
        rows[1]["id"].as_i64().unwrap(),
    );
    let file = rows[1]["file_name"].as_str().unwrap().to_string();
    let id = older.to_string();

    let pinned = sb.run(&["pin", &id, "--note", "before the migration"]);
    pinned.assert_success();
    assert_eq!(
        pinned.stdout.trim_end(),
        format!("pinned  #{older}  app  {file}  (note: before the migration)")
    );
    assert_eq!(
        pin_of(&sb, older),
        (Value::Bool(true), Value::from("before the migration"))
    );
    assert_eq!(pin_of(&sb, newer), (Value::Bool(false), Value::Null));
    let line = list_line(&sb, older);
    assert!(line.contains("[pinned: before the migration]"), "{line}");
    assert!(!list_line(&sb, newer).contains("pinned"));

    // Pinned again without a note: still pinned, the old note gone.
    let again = sb.run(&["pin", &id]);
    again.assert_success();
    assert_eq!(
        again.stdout.trim_end(),
        format!("pinned  #{older}  app  {file}")
    );
    assert_eq!(pin_of(&sb, older), (Value::Bool(true), Value::Null));
    assert!(list_line(&sb, older).ends_with("[pinned]"));

    let unpinned = sb.run(&["unpin", &id]);
    unpinned.assert_success();
    assert_eq!(
        unpinned.stdout.trim_end(),
        format!("unpinned  #{older}  app  {file}")
    );
    assert_eq!(pin_of(&sb, older), (Value::Bool(false), Value::Null));
    assert!(!list_line(&sb, older).contains("pinned"));
}

#[test]
fn an_unknown_id_or_a_failed_backup_is_not_pinned() {
    let sb = sandbox();
    sb.run(&["backup", "-d", "gone"]).assert_code(1);
    let failed = sb.rows_for("gone")[0]["id"].as_i64().unwrap();

    for args in [vec!["pin", "999", "--note", "x"], vec!["unpin", "999"]] {
        let run = sb.run(&args);
        run.assert_code(2);
        assert!(run.stdout.is_empty(), "{run:?}");
        assert!(run.stderr.contains("no backup #999"), "{run:?}");
    }
    let run = sb.run(&["pin", &failed.to_string()]);
    run.assert_code(2);
    assert!(
        run.stderr.contains(&format!(
            "backup #{failed} is failed: only a successful backup can be pinned"
        )),
        "{run:?}"
    );
    assert_eq!(pin_of(&sb, failed), (Value::Bool(false), Value::Null));
}
