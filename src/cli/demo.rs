//! `dbkeep demo`: see dbkeep work before writing any configuration.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use dbkeep::catalog::ListFilter;
use dbkeep::{BackupOptions, Config, Runner};

use super::render;

const CONFIG: &str = r#"# A demo configuration written by `dbkeep demo`.
backup_dir = "backups"
retention_days = 30
keep_last = 3

[[databases]]
name = "app"
url = "sqlite:app.db"
schedules = ["* * * * *"]
"#;

/// Create a sample SQLite database and a config in DIR, back it up, and list the result.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folder for the demo (created if absent; reused if it holds a demo already)
    #[arg(default_value = "dbkeep-demo")]
    dir: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let dir = std::path::absolute(&args.dir)?;
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let config_path = dir.join("dbkeep.toml");
    if !config_path.exists() {
        std::fs::write(&config_path, CONFIG)
            .with_context(|| format!("cannot write {}", config_path.display()))?;
    }
    let db_path = dir.join("app.db");
    if !db_path.exists() {
        create_sample(&db_path)?;
        println!("created a sample SQLite database {}", db_path.display());
    }
    println!("config: {}\n", config_path.display());

    let runner = Runner::open(Config::load(&config_path)?)?;
    let outcome = runner.backup(
        "app",
        &BackupOptions::default(),
        &dbkeep::pipeline::NoProgress,
    )?;
    println!("$ dbkeep backup\n{}\n", render::outcome(&outcome));
    println!("$ dbkeep list");
    for r in runner.catalog().list(&ListFilter {
        limit: Some(5),
        ..ListFilter::default()
    })? {
        println!(
            "#{:<4} {:<8} {:<8} {}  {}",
            r.id,
            r.status,
            render::size(r.size_bytes),
            render::local_time(&r.started_at),
            r.path
                .as_deref()
                .map(Path::display)
                .map(|p| p.to_string())
                .unwrap_or_else(|| r.error.clone().unwrap_or_default()),
        );
    }
    if let Some(path) = &outcome.record.path {
        println!(
            "\nRestore it with: cp {} {}",
            path.display(),
            db_path.display()
        );
    }
    println!(
        "Next: cd {} && dbkeep list, or write your own config with `dbkeep init`.",
        dir.display()
    );
    let ok = outcome.record.status == dbkeep::catalog::Status::Success;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::EXIT_FAILED)
    })
}

fn create_sample(path: &Path) -> anyhow::Result<()> {
    let conn = rusqlite::Connection::open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT UNIQUE);
         CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id),
                              total_cents INTEGER NOT NULL, placed_at TEXT NOT NULL);
         CREATE INDEX orders_by_customer ON orders (customer_id);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)
         INSERT INTO customers (name, email) SELECT 'Customer ' || i, 'customer' || i || '@example.com' FROM n;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
         INSERT INTO orders (customer_id, total_cents, placed_at)
         SELECT 1 + i % 200, (i * 7919) % 100000, datetime('2026-01-01', '+' || (i % 300) || ' days') FROM n;",
    )?;
    Ok(())
}
