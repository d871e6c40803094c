//! Space: what each database's backups use at each destination, in `dbkeep status` (text and
//! `--json`), `/metrics` and the overview; the `disk_filling` event in the configuration.

use crate::common::*;

#[test]
fn status_metrics_and_the_overview_show_what_each_destination_holds() {
    let sandbox = Sandbox::new();
    let db = sandbox.path().join("app.db");
    create_sample_sqlite(&db);
    let disk2 = sandbox.path().join("disk2");
    let (web_port, metrics_port) = (crate::http::free_port(), crate::http::free_port());
    sandbox.write_config(&format!(
        "listen = \"127.0.0.1:{web_port}\"\nmetrics_listen = \"127.0.0.1:{metrics_port}\"\n\
         [[offsite]]\nname = \"disk2\"\nurl = \"file://{}\"\n\
         [[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\nschedules = [\"0 0 1 1 *\"]\n\
         [[databases]]\nname = \"empty\"\nurl = \"sqlite:app.db\"\nschedules = [\"0 0 1 1 *\"]\n",
        disk2.display()
    ));
    sandbox.run(&["backup", "-d", "app"]).assert_success();
    // A bigger second backup: the sizes differ.
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(
            "CREATE TABLE filler (x BLOB); INSERT INTO filler VALUES (randomblob(200000));",
        )
        .unwrap();
    sandbox.run(&["backup", "-d", "app"]).assert_success();
    let rows = sandbox.rows_for("app");
    assert_eq!(rows.len(), 2);
    let sizes: Vec<u64> = rows
        .iter()
        .map(|r| r["size_bytes"].as_u64().unwrap())
        .collect();
    assert_ne!(sizes[0], sizes[1]);
    let total: u64 = sizes.iter().sum();

    // status --json: the same array, each database with its space by destination.
    let run = sandbox.run(&["status", "--json"]);
    run.assert_code(1);
    let status: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(status[0]["name"], "app");
    assert_eq!(
        status[0]["space"],
        serde_json::json!([
            {"destination": "local", "backups": 2, "bytes": total, "growth_30d_bytes": total},
            {"destination": "disk2", "backups": 2, "bytes": total, "growth_30d_bytes": total},
        ]),
        "{status:#}"
    );
    assert_eq!(status[1]["name"], "empty");
    assert_eq!(status[1]["space"][0]["backups"], 0, "{status:#}");
    assert_eq!(status[1]["space"][1]["destination"], "disk2", "{status:#}");

    // The text: a SPACE section after the verdicts, and the local disk.
    let text = sandbox.run(&["status"]);
    let space = text
        .stdout
        .split_once("\nSPACE\n")
        .map(|(_, s)| s)
        .unwrap_or_else(|| panic!("no SPACE section: {text:?}"));
    assert!(
        space.starts_with("app    local  2 backups  ")
            && space.contains("\napp    disk2  2 backups  ")
            && space.contains("\nempty  local  0 backups  0 B ")
            && space.contains(" in 30 days\n"),
        "{text:?}"
    );
    let disk = space.lines().last().unwrap();
    assert!(
        disk.starts_with("local disk: ") && disk.contains(" free, "),
        "{text:?}"
    );

    // /metrics: the bytes are the backups' sizes, the free space is there.
    let _server = crate::http::Server::start(
        &sandbox,
        web_port,
        &[("DBKEEP_ADMIN_PASSWORD", "a long password")],
    );
    // The metrics address opens a moment after the admin's.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let metrics = loop {
        match crate::http::http_get(metrics_port, "/metrics", None) {
            Ok(r) => break r.text(),
            Err(e) => assert!(std::time::Instant::now() < deadline, "no /metrics: {e}"),
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    for line in [
        format!("dbkeep_storage_bytes{{database=\"app\",destination=\"local\"}} {total}\n"),
        format!("dbkeep_storage_bytes{{database=\"app\",destination=\"disk2\"}} {total}\n"),
        "dbkeep_storage_backups{database=\"app\",destination=\"local\"} 2\n".to_string(),
        "dbkeep_storage_backups{database=\"empty\",destination=\"disk2\"} 0\n".to_string(),
        "# TYPE dbkeep_storage_bytes gauge\n".to_string(),
        "# TYPE dbkeep_local_free_bytes gauge\n".to_string(),
    ] {
        assert!(metrics.contains(&line), "missing `{line}` in:\n{metrics}");
    }
    let free: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("dbkeep_local_free_bytes "))
        .unwrap_or_else(|| panic!("no dbkeep_local_free_bytes in:\n{metrics}"))
        .parse()
        .unwrap();
    assert!(free > 0, "{metrics}");

    // The overview's Space box.
    let token = sandbox.run(&["token", "create", "space"]).stdout;
    let token = token.lines().last().unwrap().trim().to_string();
    let page = crate::http::http_get(web_port, "/", Some(&token))
        .unwrap()
        .text();
    assert!(page.contains("<h2 id=\"space-title\">Space</h2>"), "{page}");
    assert!(
        page.contains("<td data-label=\"Database\">app</td><td data-label=\"Where\">disk2</td><td class=\"num\" data-label=\"Backups\">2</td>"),
        "{page}"
    );
    assert!(page.contains(" free, "), "{page}");
}

#[test]
fn copies_pruned_off_site_leave_that_destination_only() {
    let sandbox = Sandbox::new();
    create_sample_sqlite(&sandbox.path().join("app.db"));
    let disk2 = sandbox.path().join("disk2");
    // Off-site keeps the newest copy only; the local folder keeps everything.
    sandbox.write_config(&format!(
        "[[offsite]]\nname = \"disk2\"\nurl = \"file://{}\"\nretention_days = 0\nkeep_last = 1\n\
         [[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n",
        disk2.display()
    ));
    for _ in 0..3 {
        sandbox.run(&["backup"]).assert_success();
    }
    let rows = sandbox.rows_for("app");
    let total: u64 = rows.iter().map(|r| r["size_bytes"].as_u64().unwrap()).sum();
    let newest = rows[0]["size_bytes"].as_u64().unwrap();
    let run = sandbox.run(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let space = &status[0]["space"];
    assert_eq!(space[0]["destination"], "local", "{status:#}");
    assert_eq!(space[0]["backups"], 3, "{status:#}");
    assert_eq!(space[0]["bytes"], total, "{status:#}");
    assert_eq!(space[1]["destination"], "disk2", "{status:#}");
    assert_eq!(space[1]["backups"], 1, "{status:#}");
    assert_eq!(space[1]["bytes"], newest, "{status:#}");
    // Copies that came and went within the 30 days add nothing to its growth.
    assert_eq!(space[1]["growth_30d_bytes"], newest, "{status:#}");
}

#[test]
fn disk_filling_is_an_event_a_channel_can_ask_for() {
    let sandbox = Sandbox::new();
    create_sample_sqlite(&sandbox.path().join("app.db"));
    sandbox.write_config(
        "[[notify.webhook]]\nurl = \"http://127.0.0.1:9/hook\"\non = [\"disk_filling\"]\n\
         [[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n",
    );
    sandbox.run(&["list"]).assert_success();
    sandbox.write_config(
        "[[notify.webhook]]\nurl = \"http://127.0.0.1:9/hook\"\non = [\"disk_full\"]\n\
         [[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n",
    );
    let run = sandbox.run(&["list"]);
    run.assert_code(2);
    assert!(
        run.stderr.contains("unknown event `disk_full`") && run.stderr.contains("disk_filling"),
        "{run:?}"
    );
}
