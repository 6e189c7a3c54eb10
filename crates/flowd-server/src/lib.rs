//! flowd's HTTP gateway: the hook endpoints, the REST API under `/api/v1`, authentication, and
//! the web console at `/`.
//! Only this crate knows HTTP.

#![forbid(unsafe_code)]

pub mod api;
pub mod async_calls;
pub mod auth;
pub mod conn;
pub mod error;
pub mod hook;
mod readiness;
mod startup;
pub mod views;
pub mod web;

pub use conn::ConnectionLimits;
pub use flowd_store::{DatabaseUrl, DatabaseUrlError};
pub use startup::{start, Config, StartError};

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{any, get};
use axum::Router;
use flowd_engine::scheduler::{Scheduler, SystemClock};
use flowd_engine::Engine;
use tokio::net::TcpListener;

/// Settings of the HTTP side.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest hook request body (`413` beyond).
    pub max_body_bytes: usize,
    /// Hook request bodies held in memory at once, in bytes; a call that finds no room within
    /// [`BODY_BUDGET_WAIT`] gets `503` with `Retry-After`.
    pub max_inflight_body_bytes: usize,
    /// How long a graceful shutdown waits for requests in flight.
    pub shutdown_grace: Duration,
    pub connections: ConnectionLimits,
}

/// How long a hook call waits for room in the bodies' memory budget before it is refused.
pub const BODY_BUDGET_WAIT: Duration = Duration::from_secs(2);

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_body_bytes: 25 << 20,
            max_inflight_body_bytes: 256 << 20,
            shutdown_grace: Duration::from_secs(30),
            connections: ConnectionLimits::default(),
        }
    }
}

pub struct AppState {
    pub engine: Arc<Engine>,
    pub config: ServerConfig,
    /// The bound on hook bodies in memory, shared by every call.
    pub body_budget: conn::budget::BodyBudget,
}

impl AppState {
    pub fn new(engine: Arc<Engine>, config: ServerConfig) -> AppState {
        let body_budget =
            conn::budget::BodyBudget::new(config.max_inflight_body_bytes, BODY_BUDGET_WAIT);
        AppState {
            engine,
            config,
            body_budget,
        }
    }
}

/// Every route of the server.
pub fn router(state: Arc<AppState>) -> Router {
    let api = api::routes().layer(axum::middleware::from_fn_with_state(
        state.clone(),
        auth::require_api_key,
    ));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readiness::readyz))
        .route(
            "/teams/{team}/{workflow}/{runtime}/{token}",
            any(hook::hook),
        )
        .route("/async/{token}", get(async_calls::status))
        .nest("/api/v1", api)
        // The web console, and JSON 404s for unknown API paths.
        .fallback(web::fallback)
        .with_state(state)
}

async fn healthz() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({"status": "ok"}))
}

/// Serves on `listener` until `shutdown` completes, then stops accepting, lets requests in
/// flight finish (up to the configured grace period) and commits what is queued for the store.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let grace = state.config.shutdown_grace;
    let limits = state.config.connections;
    let engine = state.engine.clone();
    let (stop_scheduler, scheduler_stopped) = tokio::sync::oneshot::channel::<()>();
    let scheduler = Scheduler::new(engine.clone(), Arc::new(SystemClock));
    let scheduler = tokio::spawn(scheduler.run(async move {
        let _ = scheduler_stopped.await;
    }));
    let (stop_dispatcher, dispatcher_stopped) = tokio::sync::oneshot::channel::<()>();
    let dispatcher = tokio::spawn(engine.clone().dispatch_async_calls(async move {
        let _ = dispatcher_stopped.await;
    }));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = conn::serve_connections(listener, router(state), limits, async move {
        let _ = stop_rx.await;
    });
    let mut server = tokio::spawn(server);
    tokio::select! {
        result = &mut server => {
            let _ = stop_scheduler.send(());
            let _ = stop_dispatcher.send(());
            engine.flush().await;
            return result.map_err(std::io::Error::other);
        }
        _ = shutdown => {}
    }
    tracing::info!(
        "shutting down: no new requests or scheduled runs; waiting for executions in flight"
    );
    let _ = stop_scheduler.send(());
    let _ = scheduler.await;
    // Calls still queued stay in the store for the next start (or another node).
    let _ = stop_dispatcher.send(());
    let _ = dispatcher.await;
    let _ = stop_tx.send(());
    let deadline = tokio::time::Instant::now() + grace;
    match tokio::time::timeout(grace, &mut server).await {
        Ok(result) => result.map_err(std::io::Error::other)?,
        Err(_) => {
            tracing::warn!(
                in_flight = engine.executions_in_flight(),
                "executions still running after the grace period; stopping anyway"
            );
            server.abort();
        }
    }
    // Scheduled runs are not HTTP requests: wait for them too, within the same grace period.
    if !engine
        .wait_idle(deadline.saturating_duration_since(tokio::time::Instant::now()))
        .await
    {
        tracing::warn!("scheduled runs still going after the grace period; stopping anyway");
    }
    engine.flush().await;
    Ok(())
}
