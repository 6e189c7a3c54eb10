//! flowd's HTTP gateway: the hook endpoints, the REST API under `/api/v1`, authentication, and
//! the web console at `/`.
//! Only this crate knows HTTP.

#![forbid(unsafe_code)]

pub mod access;
mod access_log;
mod alerts;
pub mod api;
pub mod async_calls;
pub mod auth;
pub mod conn;
pub mod delivery;
pub mod error;
mod gateway;
pub mod hook;
pub mod metrics;
mod readiness;
mod startup;
pub mod views;
pub mod web;

pub use conn::ConnectionLimits;
pub use flowd_store::SecretKey;
pub use flowd_store::{DatabaseUrl, DatabaseUrlError};
pub use gateway::Gateway;
pub use startup::{start, start_reporting, Config, StartError, SECRET_KEY_FILE};

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{any, get};
use axum::Router;
use flowd_engine::retention::Pruner;
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
    /// `/metrics` on the main address without an API key.
    pub metrics_public: bool,
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
            metrics_public: false,
        }
    }
}

pub struct AppState {
    pub engine: Arc<Engine>,
    pub config: ServerConfig,
    /// The bound on hook bodies in memory, shared by every call.
    pub body_budget: conn::budget::BodyBudget,
    /// Set when a shutdown begins: `/readyz` answers `503` from then on.
    shutting_down: AtomicBool,
}

impl AppState {
    pub fn new(engine: Arc<Engine>, config: ServerConfig) -> AppState {
        let body_budget =
            conn::budget::BodyBudget::new(config.max_inflight_body_bytes, BODY_BUDGET_WAIT);
        AppState {
            engine,
            config,
            body_budget,
            shutting_down: AtomicBool::new(false),
        }
    }

    /// Says that a shutdown has begun ([`serve`] does when its shutdown signal comes).
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
    }

    /// Whether a shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }
}

/// Every route of the server.
pub fn router(state: Arc<AppState>) -> Router {
    // Layers run outside in: the key first, then its role.
    let api = api::routes()
        .layer(axum::middleware::from_fn(access::require_role))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_api_key,
        ));
    let metrics_route = if state.config.metrics_public {
        Router::new().route("/metrics", get(metrics::scrape))
    } else {
        Router::new().route("/metrics", get(metrics::scrape)).layer(
            axum::middleware::from_fn_with_state(state.clone(), auth::require_api_key),
        )
    };
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readiness::readyz))
        .merge(metrics_route)
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
    let limits = state.config.connections;
    let serving = Serving::open(listener, None, &Gateway::started(state.clone()), limits);
    serving.run_until(state, shutdown).await
}

/// Why [`start_and_serve`] stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("the server stopped with an error: {0}")]
    Io(#[from] std::io::Error),
}

/// Opens `listener` (and `metrics_listener`, serving `/metrics` alone) at once, starts flowd
/// from `config` meanwhile — calls answer `503 starting` until it is started — then serves as
/// [`serve`] does. A shutdown during start-up stops it there.
pub async fn start_and_serve(
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    config: &Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let gateway = Gateway::starting();
    let serving = Serving::open(listener, metrics_listener, &gateway, config.connections);
    tokio::pin!(shutdown);
    let report = |phase| gateway.report_phase(phase);
    let started = tokio::select! {
        started = start_reporting(config, &report) => started,
        () = &mut shutdown => {
            tracing::info!("shutting down during start-up");
            serving.stop().await;
            return Ok(());
        }
    };
    let state = match started {
        Ok(state) => state,
        Err(error) => {
            serving.stop().await;
            return Err(error.into());
        }
    };
    gateway.open(state.clone());
    tracing::info!("flowd is ready");
    Ok(serving.run_until(state, shutdown).await?)
}

/// The accept loops of a server, running.
struct Serving {
    server: tokio::task::JoinHandle<()>,
    stop_server: tokio::sync::oneshot::Sender<()>,
    /// `--metrics-listen`'s loop, stopped with the server.
    metrics: Option<(
        tokio::task::JoinHandle<()>,
        tokio::sync::oneshot::Sender<()>,
    )>,
}

impl Serving {
    fn open(
        listener: TcpListener,
        metrics_listener: Option<TcpListener>,
        gateway: &Arc<Gateway>,
        limits: ConnectionLimits,
    ) -> Serving {
        let (stop_server, server) = spawn_connections(listener, gateway.router(), limits);
        let metrics = metrics_listener.map(|listener| {
            let (stop, loop_) = spawn_connections(listener, gateway.metrics_router(), limits);
            (loop_, stop)
        });
        Serving {
            server,
            stop_server,
            metrics,
        }
    }

    /// Stops accepting and waits for the connections to close.
    async fn stop(self) {
        let _ = self.stop_server.send(());
        let _ = self.server.await;
        if let Some((server, stop)) = self.metrics {
            let _ = stop.send(());
            let _ = server.await;
        }
    }

    /// Runs the scheduler and serves until `shutdown` completes, then shuts down gracefully.
    async fn run_until(
        self,
        state: Arc<AppState>,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let Serving {
            mut server,
            stop_server,
            metrics,
        } = self;
        let grace = state.config.shutdown_grace;
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
        // Expired idempotency keys are deleted in the background while the server runs.
        let sweep = engine.sweep_idempotency_keys();
        let audit_retention = tokio::spawn(engine.clone().keep_audit_retention());
        let (stop_retention, retention_stopped) = tokio::sync::oneshot::channel::<()>();
        let pruner = Pruner::new(engine.store().clone(), engine.config().retention);
        let retention = tokio::spawn(pruner.run(async move {
            let _ = retention_stopped.await;
        }));
        // Alerts are delivered in the background, off the executions' path.
        let alerts = spawn_alert_delivery(&engine);
        let stop_metrics = || {
            if let Some((_, stop)) = metrics {
                let _ = stop.send(());
            }
        };
        tokio::select! {
            result = &mut server => {
                sweep.abort();
                let _ = stop_scheduler.send(());
                let _ = stop_dispatcher.send(());
                audit_retention.abort();
                let _ = stop_retention.send(());
                stop_metrics();
                engine.flush().await;
                alerts.abort();
                return result.map_err(std::io::Error::other);
            }
            _ = shutdown => {}
        }
        state.begin_shutdown();
        tracing::info!(
            "shutting down: no new requests or scheduled runs; waiting for executions in flight"
        );
        sweep.abort();
        let _ = stop_scheduler.send(());
        let _ = scheduler.await;
        // Calls still queued stay in the store for the next start (or another node).
        let _ = stop_dispatcher.send(());
        let _ = dispatcher.await;
        audit_retention.abort();
        let _ = stop_retention.send(());
        let _ = retention.await;
        let _ = stop_server.send(());
        stop_metrics();
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
        // Alerts still queued or being retried at this point are not delivered.
        alerts.abort();
        engine.leave_cluster().await;
        Ok(())
    }
}

/// Starts the task delivering the engine's alerts. Without an HTTP client (the TLS backend
/// could not start), alerts are dropped and counted as the full queue's are.
fn spawn_alert_delivery(engine: &Arc<Engine>) -> tokio::task::JoinHandle<()> {
    match alerts::HttpAlertTransport::new() {
        Ok(transport) => tokio::spawn(engine.clone().deliver_alerts(Arc::new(transport))),
        Err(error) => {
            tracing::error!(%error, "cannot build the HTTP client for alerts: none will be sent");
            tokio::spawn(async {})
        }
    }
}

/// Serves `router` on `listener` on a task of its own, until the sender answered is used.
fn spawn_connections(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(conn::serve_connections(
        listener,
        router,
        limits,
        async move {
            let _ = stopped.await;
        },
    ));
    (stop, server)
}
