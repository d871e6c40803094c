//! A small web application that backs up its own database with dbkeep running inside it, the
//! way the scheduler once ran inside a Django app.
//!
//! ```sh
//! cargo run --example embedded -- dbkeep.toml
//! curl http://127.0.0.1:3000/          # the app
//! curl http://127.0.0.1:3000/backups   # what dbkeep has recorded
//! ```
//! Ctrl-C stops the web server, then dbkeep (letting a running backup finish).

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use dbkeep::catalog::ListFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config_path = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("dbkeep.toml"), PathBuf::from);
    tracing_subscriber::fmt().with_env_filter("info").init();
    let config = dbkeep::Config::load(&config_path)?;

    // Start dbkeep on the application's own runtime: schedules fire from here on.
    let backups = dbkeep::Service::from_config(config)?.start().await?;
    let runner = Arc::clone(backups.runner());

    let app = Router::new()
        .route(
            "/",
            get(|| async { "Hello from an app that backs itself up.\n" }),
        )
        .route("/backups", get(latest_backups))
        .with_state(runner);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;

    backups.shutdown().await;
    Ok(())
}

/// The ten newest backups, one per line.
async fn latest_backups(State(runner): State<Arc<dbkeep::Runner>>) -> String {
    // The catalog is synchronous (SQLite); keep it off the async threads.
    let listed = tokio::task::spawn_blocking(move || {
        runner.catalog().list(&ListFilter {
            limit: Some(10),
            ..ListFilter::default()
        })
    })
    .await;
    match listed {
        Ok(Ok(records)) => records
            .iter()
            .map(|r| {
                let what = r.file_name.as_deref().or(r.error.as_deref()).unwrap_or("-");
                format!(
                    "#{} {} {} {} {what}\n",
                    r.id, r.database, r.status, r.started_at
                )
            })
            .collect(),
        Ok(Err(e)) => format!("catalog error: {e}\n"),
        Err(e) => format!("internal error: {e}\n"),
    }
}
