//! `dbkeep serve`: run the scheduler until SIGINT or SIGTERM.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use tracing::info;

/// Run scheduled backups until stopped (SIGINT or SIGTERM shut down gracefully).
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(config_path: &Path, _args: Args) -> anyhow::Result<ExitCode> {
    let config = dbkeep::Config::load(config_path)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let handle = dbkeep::Service::from_config(config)?.start().await?;
        let signal = stop_signal().await?;
        info!(signal, "shutting down");
        handle.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}

/// Waits for SIGINT (Ctrl-C) or SIGTERM and names it.
async fn stop_signal() -> anyhow::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}
