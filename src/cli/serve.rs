//! `dbkeep serve`: the scheduler, the web admin and the API, until SIGINT or SIGTERM.

use dbkeep::audit::{Action, Entry, Outcome, cli_actor};
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use tokio::sync::watch;
use tracing::{info, warn};

/// Run scheduled backups and the web admin until stopped (SIGINT or SIGTERM shut down gracefully).
#[derive(Debug, clap::Args)]
pub struct Args {}

/// When set to the process id of serve's parent, serve is stopped (SIGTERM, a graceful
/// shutdown) when that parent ends, however it ends: what a supervisor inside a web server
/// (the Django app) sets, so that no serve outlives the server.
pub const STOP_WITH_PARENT: &str = "DBKEEP_STOP_WITH_PARENT";

/// Asks the kernel for SIGTERM when the parent ends ([`STOP_WITH_PARENT`]); `Err` when the
/// parent named has already gone.
fn stop_with_parent() -> anyhow::Result<()> {
    let Some(wanted) = std::env::var_os(STOP_WITH_PARENT) else {
        return Ok(());
    };
    let wanted: i32 = wanted
        .to_str()
        .and_then(|w| w.parse().ok())
        .with_context(|| format!("{STOP_WITH_PARENT} must be a process id"))?;
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::TERM))
        .context("cannot ask to be stopped with the parent process")?;
    // A parent that ended before the request leaves serve to another parent: stop at once.
    let parent = rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get());
    anyhow::ensure!(
        parent == wanted,
        "the process that started dbkeep serve ({wanted}) has already ended"
    );
    Ok(())
}

pub fn run(config_path: &Path, _args: Args) -> anyhow::Result<ExitCode> {
    stop_with_parent()?;
    let config = dbkeep::Config::load(config_path)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config, |_| {}))
}

/// Runs the service and its web server until a stop signal; `listening` is told the web
/// admin's address once it is bound.
pub async fn serve(
    config: dbkeep::Config,
    listening: impl FnOnce(SocketAddr),
) -> anyhow::Result<ExitCode> {
    let web = config.web.clone();
    let listener = tokio::net::TcpListener::bind(web.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (set `listen` or DBKEEP_LISTEN to a free address)",
                web.listen
            )
        })?;
    // Both addresses are taken before anything else: whoever finds the admin's port open
    // finds the metrics' too.
    let metrics_listener = match web.metrics_listen {
        Some(metrics) => Some((
            metrics,
            tokio::net::TcpListener::bind(metrics)
                .await
                .with_context(|| format!("cannot listen on metrics_listen = {metrics}"))?,
        )),
        None => None,
    };
    // Opening the catalog (a server's, perhaps) blocks: off the runtime's threads.
    let service = tokio::task::spawn_blocking(move || dbkeep::Service::from_config(config))
        .await
        .context("opening the catalog stopped unexpectedly")??;
    let handle = service.start().await?;
    let runner = std::sync::Arc::clone(handle.runner());
    let created = tokio::task::spawn_blocking(move || {
        let entry = Entry::new(
            cli_actor(),
            Action::ServeStart,
            runner.instance().name.clone(),
            Outcome::Ok,
        );
        dbkeep::audit::record(runner.catalog(), entry);
        dbkeep::web::ensure_admin(runner.accounts(), chrono::Utc::now())
    })
    .await
    .context("creating the first user stopped unexpectedly")??;
    if let Some(password) = created {
        // Shown once, as a message of its own (not a log field): only its hash is kept.
        eprintln!(
            "\n  dbkeep created the first user of the web admin.\n\n    user:     admin\n    password: {password}\n\n  It is shown only now: keep it safe, or change it with `dbkeep user passwd admin`.\n"
        );
        warn!(
            user = "admin",
            "created the first user; its password was printed once on standard error"
        );
    }
    let address = listener.local_addr()?;
    let url = web
        .public_url
        .as_ref()
        .map_or_else(|| format!("http://{address}/"), ToString::to_string);
    info!(listen = %address, url = %url, "web admin listening");
    listening(address);

    let (stop_tx, stop_rx) = watch::channel(false);
    let limits = dbkeep::web::ServerLimits::default();
    let app = dbkeep::web::router(&handle, "");
    let mut servers = tokio::task::JoinSet::new();
    servers.spawn(dbkeep::web::serve(
        listener,
        app,
        limits,
        stopped(stop_rx.clone()),
    ));
    if let Some((metrics, listener)) = metrics_listener {
        info!(listen = %metrics, "metrics listening without login");
        let app = dbkeep::web::metrics_router(&handle);
        servers.spawn(dbkeep::web::serve(listener, app, limits, stopped(stop_rx)));
    }

    super::systemd::ready(&format!("backing up; the admin at {url}"));
    super::systemd::watch();
    let signal = stop_signal().await?;
    info!(signal, "shutting down");
    super::systemd::stopping();
    let _ = stop_tx.send(true);
    while let Some(result) = servers.join_next().await {
        if let Ok(Err(e)) = result {
            warn!(error = %e, "web server stopped with an error");
        }
    }
    let runner = std::sync::Arc::clone(handle.runner());
    handle.shutdown().await;
    let _ = tokio::task::spawn_blocking(move || {
        let entry = Entry::new(
            cli_actor(),
            Action::ServeStop,
            runner.instance().name.clone(),
            Outcome::Ok,
        )
        .detail(format!("on {signal}"));
        dbkeep::audit::record(runner.catalog(), entry);
    })
    .await;
    Ok(ExitCode::SUCCESS)
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
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
