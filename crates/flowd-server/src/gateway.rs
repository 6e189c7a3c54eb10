//! What answers on the listening port, from the moment it opens: while flowd starts (the store
//! opens, the Python runtime is provisioned — minutes on a first start), `/healthz` answers `200`,
//! `/readyz` `503` with what is being done, and every other call `503 starting` with
//! `Retry-After`; once started, the server's routes. So probes and callers get an answer at
//! once instead of a connection that hangs or is refused.

use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::json;
use tower::ServiceExt;

use crate::error::ApiError;
use crate::{metrics, AppState};

/// How long a caller refused while flowd starts is told to wait.
const STARTING_RETRY_AFTER: &str = "5";

/// The routes of a server that may still be starting.
pub struct Gateway {
    started: OnceLock<Started>,
    /// What start-up is doing now, for `/readyz`.
    phase: Mutex<&'static str>,
}

struct Started {
    state: Arc<AppState>,
    routes: Router,
}

impl Gateway {
    /// A gateway whose server is starting.
    pub fn starting() -> Arc<Gateway> {
        Arc::new(Gateway {
            started: OnceLock::new(),
            phase: Mutex::new("starting"),
        })
    }

    /// A gateway whose server is started.
    pub fn started(state: Arc<AppState>) -> Arc<Gateway> {
        let gateway = Gateway::starting();
        gateway.open(state);
        gateway
    }

    /// Says what start-up is doing now (shown by `/readyz` until the server is started).
    pub fn report_phase(&self, phase: &'static str) {
        if let Ok(mut current) = self.phase.lock() {
            *current = phase;
        }
    }

    /// From now on, the server's routes answer.
    pub fn open(&self, state: Arc<AppState>) {
        let routes = crate::router(state.clone());
        let _ = self.started.set(Started { state, routes });
    }

    fn phase(&self) -> &'static str {
        self.phase.lock().map_or("starting", |phase| *phase)
    }

    /// Every route, with the access log.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .fallback(dispatch)
            .with_state(self.clone())
            .layer(crate::access_log::layer())
    }

    /// `/metrics` alone (for `--metrics-listen`), without authentication, with the access log.
    pub fn metrics_router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/metrics", axum::routing::get(scrape_metrics))
            .with_state(self.clone())
            .layer(crate::access_log::layer())
    }
}

async fn dispatch(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    if let Some(started) = gateway.started.get() {
        return match started.routes.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
    }
    match request.uri().path() {
        "/healthz" => crate::healthz().await.into_response(),
        "/readyz" => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "not_ready", "reason": gateway.phase()})),
        )
            .into_response(),
        _ => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "starting",
            format!("flowd is starting ({}); retry shortly", gateway.phase()),
        )
        .header(header::RETRY_AFTER, STARTING_RETRY_AFTER)
        .into_response(),
    }
}

async fn scrape_metrics(State(gateway): State<Arc<Gateway>>) -> Response {
    match gateway.started.get() {
        Some(started) => metrics::scrape(State(started.state.clone())).await,
        None => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "starting",
            format!("flowd is starting ({}); retry shortly", gateway.phase()),
        )
        .header(header::RETRY_AFTER, STARTING_RETRY_AFTER)
        .into_response(),
    }
}
