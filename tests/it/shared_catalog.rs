//! A catalog on PostgreSQL (the test server), shared: the commands and `dbkeep serve` work on
//! it as on a SQLite file, and two instances firing the same schedule run each fire once.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::*;

fn config(catalog: &PgDb, extra: &str) -> String {
    format!(
        "catalog = \"{}\"\n{extra}[[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n",
        catalog.url()
    )
}

#[test]
fn the_commands_record_into_a_postgres_catalog() {
    let catalog = PgDb::create("catalog_cli");
    let sandbox = Sandbox::new();
    create_sample_sqlite(&sandbox.path().join("app.db"));
    sandbox.write_config(&config(&catalog, ""));
    sandbox.run(&["backup"]).assert_success();
    sandbox.run(&["backup"]).assert_success();
    let rows = sandbox.rows_for("app");
    assert_eq!(rows.len(), 2, "{rows:#?}");
    assert!(rows.iter().all(|r| r["status"] == "success"));
    // No SQLite catalog was made: the rows are on the server.
    assert!(!sandbox.catalog_path().exists());
    assert_eq!(catalog.scalar("SELECT count(*) FROM backups"), "2");
    assert_eq!(
        catalog.scalar("SELECT count(*) FROM backup_tables WHERE rows > 0"),
        "4"
    );
    let verified = sandbox.run(&["verify", "--latest"]);
    verified.assert_success();
    assert_eq!(catalog.scalar("SELECT count(*) FROM verifications"), "1");
    // The leases were given back.
    assert_eq!(catalog.scalar("SELECT count(*) FROM leases"), "0");
    let restored = sandbox.path().join("restored.db");
    sandbox
        .run(&[
            "restore",
            "--latest",
            "-d",
            "app",
            "--to",
            restored.to_str().unwrap(),
        ])
        .assert_success();
    // A bad catalog URL names it, without a password.
    sandbox.write_config(
        "catalog = \"postgres://nobody:Secret-pw-1@127.0.0.1:1/none\"\n\
         [[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n",
    );
    let run = sandbox.run(&["list"]);
    assert_ne!(run.code, Some(0));
    assert!(run.stderr.contains("127.0.0.1:1"), "{run:?}");
    assert!(!run.all_output().contains("Secret-pw-1"), "{run:?}");
}

#[test]
fn two_instances_on_one_postgres_catalog_run_each_fire_once() {
    let catalog = PgDb::create("catalog_fires");
    let sandbox = Sandbox::new();
    create_sample_sqlite(&sandbox.path().join("app.db"));
    // Every two seconds; both instances plan every fire.
    let extra = "timezone = \"UTC\"\nlisten = \"127.0.0.1:0\"\n";
    sandbox.write_config(&format!(
        "{}schedules = [\"*/2 * * * * *\"]\n",
        config(&catalog, extra)
    ));
    let start = || {
        Command::new(bin_path())
            .arg("--config")
            .arg(sandbox.config_path())
            .args(["serve"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut a = start();
    let mut b = start();
    std::thread::sleep(Duration::from_secs(7));
    for child in [&mut a, &mut b] {
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        assert!(child.wait().unwrap().success());
    }
    let ran: i64 = catalog
        .scalar("SELECT count(*) FROM fires WHERE outcome = 'ran'")
        .parse()
        .unwrap();
    assert!(ran >= 2, "{ran} fires ran");
    let backups: i64 = catalog
        .scalar("SELECT count(*) FROM backups")
        .parse()
        .unwrap();
    assert_eq!(backups, ran, "one backup per fire");
    assert_eq!(
        catalog.scalar("SELECT count(*) FROM (SELECT planned_at FROM fires GROUP BY planned_at HAVING count(*) > 1) twice"),
        "0"
    );
    // Both heartbeat while serving, and left when stopped.
    assert_eq!(catalog.scalar("SELECT count(*) FROM instances"), "0");
    assert_eq!(catalog.scalar("SELECT count(*) FROM leases"), "0");
}
