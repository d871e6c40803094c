//! Serving a router over HTTP/1.1 with the limits a listener reachable by strangers needs: a
//! deadline for each request's headers (which also ends idle keep-alive connections), a cap on
//! open connections, and a graceful stop.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;
use tracing::{debug, warn};

/// The most a connection's read buffer holds, and so the largest request head: with at most
/// `max_connections` connections, heads cannot hold more than a few MiB in all.
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Limits on the connections one listener serves.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// A connection that has not sent a whole request head this long after it opened (or after
    /// its previous response) is closed.
    pub header_timeout: Duration,
    /// At most this many connections are open at once; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// On stop, open connections get this long to finish their requests.
    pub shutdown_grace: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            header_timeout: Duration::from_secs(15),
            max_connections: 256,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Serves `router` on `listener` until `stop` completes, then lets open requests finish for
/// `limits.shutdown_grace`. Handlers can read the client's address as
/// `ConnectInfo<SocketAddr>`, as with axum's own server.
///
/// # Errors
/// Only when the connection limit cannot be enforced (never, in practice); failed accepts and
/// connections are logged and the server goes on.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    stop: impl Future<Output = ()>,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => permit.map_err(io::Error::other)?,
            () = &mut stop => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: wait a moment rather than spin.
                    warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(request)
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            // A request head may have this much (cookies included); more is refused.
            .max_buf_size(MAX_HEAD_BYTES)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                debug!(peer = %peer, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        warn!("open connections did not finish in time; closing them");
    }
    Ok(())
}
