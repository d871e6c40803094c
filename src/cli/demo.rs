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

    /// Stop after the first backup instead of going on to run the service and web admin
    #[arg(long)]
    no_serve: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let dir = std::path::absolute(&args.dir)?;
    dbkeep::storage::create_private_parents(&dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let config_path = dir.join("dbkeep.toml");
    if !config_path.exists() {
        dbkeep::storage::create_private_file(&config_path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, CONFIG.as_bytes()))
            .with_context(|| format!("cannot write {}", config_path.display()))?;
    }
    let db_path = dir.join("app.db");
    if !db_path.exists() {
        create_sample(&db_path)?;
        let _ = render::line(format!(
            "created a sample SQLite database {}",
            db_path.display()
        ));
    }
    let _ = render::line(format!("config: {}\n", config_path.display()));

    let runner = Runner::open(Config::load(&config_path)?)?;
    let outcome = runner.backup(
        "app",
        &BackupOptions::default(),
        &dbkeep::stream::NoProgress,
    )?;
    let _ = render::line(format!(
        "$ dbkeep backup\n{}\n",
        render::outcome(&outcome, runner.config().service.timezone)
    ));
    let _ = render::line("$ dbkeep list");
    for r in runner.catalog().list(&ListFilter {
        limit: Some(5),
        ..ListFilter::default()
    })? {
        let _ = render::line(format!(
            "#{:<4} {:<8} {:<8} {}  {}",
            r.id,
            r.status,
            render::size(r.size_bytes),
            render::time(&r.started_at, runner.config().service.timezone),
            r.path
                .as_deref()
                .map(Path::display)
                .map(|p| p.to_string())
                .unwrap_or_else(|| r.error.clone().unwrap_or_default()),
        ));
    }
    if let Some(path) = &outcome.record.path {
        let db = db_path.display();
        let _ = render::line(format!(
            "\nRestore it (with the application stopped) with:\n  rm -f {db}-wal {db}-shm\n  cp {} {db}",
            path.display(),
        ));
    }
    let ok = outcome.record.status == dbkeep::catalog::Status::Success;
    if args.no_serve || !ok {
        let _ = render::line(format!(
            "Next: cd {} && dbkeep list, or write your own config with `dbkeep init`.",
            dir.display()
        ));
        return Ok(if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(super::EXIT_FAILED)
        });
    }

    // Go on to the whole product: the scheduler (every minute here) and the web admin.
    let config = Config::load(&config_path)?;
    let password = admin_password(&runner, &dir)?;
    let password_file = dir.join(PASSWORD_FILE);
    drop(runner);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(super::serve::serve(config, |address| {
        // A closed terminal does not stop the service it announces.
        let _ = render::line(format!("\nNow serving: backups every minute, and the admin at http://{address}/\n  user: admin\n  password: {password}  (also in {})\nPress Ctrl-C to stop.\n",
            password_file.display()));
    }))
}

/// Where the demo keeps its admin password, so a second run can show it again.
const PASSWORD_FILE: &str = "admin-password.txt";

/// The demo admin's password: created with the first user, or read back from the demo folder.
fn admin_password(runner: &Runner, dir: &Path) -> anyhow::Result<String> {
    let file = dir.join(PASSWORD_FILE);
    let accounts = runner.accounts();
    if let Some(password) = dbkeep::web::ensure_admin(accounts, chrono::Utc::now())? {
        let mut f = dbkeep::storage::create_private_file(&file)
            .or_else(|_| {
                std::fs::remove_file(&file)
                    .and_then(|()| dbkeep::storage::create_private_file(&file))
            })
            .with_context(|| format!("cannot write {}", file.display()))?;
        std::io::Write::write_all(&mut f, password.as_bytes())?;
        return Ok(password);
    }
    Ok(std::fs::read_to_string(&file)
        .map(|p| p.trim().to_string())
        .unwrap_or_else(|_| {
            "(set by DBKEEP_ADMIN_PASSWORD, or change it with `dbkeep user passwd admin`)".into()
        }))
}

fn create_sample(path: &Path) -> anyhow::Result<()> {
    // Created private first: SQLite gives its -wal and -shm files the database file's mode.
    dbkeep::storage::create_private_file(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
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
