//! A small web application that backs up its own database with dbkeep running inside it, the
//! way the scheduler once ran inside a Django app, with dbkeep's admin nested in the app.
//!
//! ```sh
//! DBKEEP_ADMIN_PASSWORD='choose-one' cargo run --example embedded -- dbkeep.toml
//! curl http://127.0.0.1:3000/                  # the app
//! open http://127.0.0.1:3000/admin/backups     # dbkeep's admin (log in as admin)
//! ```
//! Ctrl-C stops the web server, then dbkeep (letting a running backup finish).

use std::path::PathBuf;

use axum::Router;
use axum::routing::get;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let config_path = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("dbkeep.toml"), PathBuf::from);
    let config = dbkeep::Config::load(&config_path)?;

    // Start dbkeep on the application's own runtime: schedules fire from here on.
    let backups = dbkeep::Service::from_config(config)?.start().await?;
    if let Some(password) =
        dbkeep::web::ensure_admin(backups.runner().accounts(), chrono::Utc::now())?
    {
        println!("created user admin with password {password}");
    }

    let app = Router::new()
        .route(
            "/",
            get(|| async { "Hello from an app that backs itself up. See /admin/backups\n" }),
        )
        .nest(
            "/admin/backups",
            dbkeep::web::router(&backups, "/admin/backups"),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}", listener.local_addr()?);
    // dbkeep's own server times out slow or idle connections and caps their number; any
    // server works, as long as it passes the client address (ConnectInfo) for login throttling.
    dbkeep::web::serve(listener, app, dbkeep::web::ServerLimits::default(), async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;

    backups.shutdown().await;
    Ok(())
}
