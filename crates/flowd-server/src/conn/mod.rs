//! The connections: the accept loop with its cap, the read timeouts, graceful shutdown, and the
//! bound on request bodies held in memory.

pub mod budget;
pub mod fd_limit;
pub mod idle_body;
mod rate_limited;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use rate_limited::RateLimited;

/// How a connection is held.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Connections open at once; beyond, new ones wait in the listen backlog.
    pub max_connections: usize,
    /// Longest a client may take to send a request's headers, counted from when the server
    /// waits for them: from the connection's start, or from the previous response on a
    /// keep-alive connection (so it is also the keep-alive idle timeout). Then the connection
    /// is closed.
    pub header_read_timeout: Duration,
    /// Longest a client may send nothing while the server reads a request's body (`408`).
    pub body_read_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: fd_limit::current_default_max_connections(),
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
        }
    }
}

/// How often a repeated connection problem is logged at most.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// The pause after a failed `accept` (no descriptor left, for one), before trying again.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// Serves `router` on `listener` until `stop` completes, then closes idle connections, lets the
/// others finish their request in flight, and returns once all are closed.
pub async fn serve_connections(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    stop: impl Future<Output = ()>,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let open = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut cap_reached = RateLimited::new(LOG_EVERY);
    let mut accept_failed = RateLimited::new(LOG_EVERY);
    tokio::pin!(stop);
    loop {
        let permit = match open.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if cap_reached.allow() {
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "connection cap reached: new connections wait until one closes \
                         (raise --max-connections if the open-file limit allows)"
                    );
                }
                tokio::select! {
                    permit = open.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                    () = &mut stop => break,
                }
            }
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    if accept_failed.allow() {
                        tracing::warn!(%error, "cannot accept a connection");
                    }
                    tokio::time::sleep(ACCEPT_RETRY).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let router = router.clone();
        let body_timeout = limits.body_read_timeout;
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let request = request.map(|body| idle_body::with_idle_timeout(body, body_timeout));
            let router = router.clone();
            async move { router.oneshot(request).await }
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            // A connection's errors (a client gone, a header timeout) are the client's.
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
