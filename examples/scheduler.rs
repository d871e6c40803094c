//! An application that wants dbkeep's backups and nothing of its web: the schedules fire,
//! drills verify, copies go off-site and alerts go out, inside the application's own process,
//! with the library built without its web admin (no axum, no askama):
//!
//! ```sh
//! cargo run --example scheduler --no-default-features -- dbkeep.toml
//! ```
//! Ctrl-C stops it (letting a running backup finish). In `Cargo.toml` the dependency reads
//! `dbkeep = { version = "0.1", default-features = false }`.

use std::path::PathBuf;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let config_path = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("dbkeep.toml"), PathBuf::from);
    let config = dbkeep::Config::load(&config_path)?;
    let backups = dbkeep::Service::from_config(config)?.start().await?;
    for db in &backups.runner().config().databases {
        println!("backing up {} on its schedule", db.name);
    }
    tokio::signal::ctrl_c().await?;
    backups.shutdown().await;
    Ok(())
}
