//! `GET /readyz`: whether this server can run workflows now — `200` when the store answers and
//! every runtime's base processes are up (or not needed yet), `503` with the reason otherwise:
//! also while the server shuts down (and, answered by the gateway, while it starts). Liveness is
//! `/healthz`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use flowd_runtime::BaseState;
use serde_json::{json, Value};

use crate::AppState;

/// The longest `/readyz` waits for the store to answer.
const STORE_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn readyz(State(state): State<Arc<AppState>>) -> (StatusCode, Json<Value>) {
    let reason = if state.is_shutting_down() {
        Some("shutting down".to_string())
    } else {
        match store_not_answering(&state).await {
            Some(reason) => Some(reason),
            None => not_ready_reason(&state),
        }
    };
    match reason {
        None => (StatusCode::OK, Json(json!({"status": "ready"}))),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not_ready", "reason": reason})),
        ),
    }
}

/// Why the store is not usable now, if it is not: it must answer a query within
/// [`STORE_CHECK_TIMEOUT`].
async fn store_not_answering(state: &AppState) -> Option<String> {
    let store = state.engine.store();
    match tokio::time::timeout(STORE_CHECK_TIMEOUT, store.count_teams()).await {
        Ok(Ok(_)) => None,
        Ok(Err(error)) => Some(format!("the store does not answer: {error}")),
        Err(_) => Some(format!(
            "the store did not answer within {} s",
            STORE_CHECK_TIMEOUT.as_secs()
        )),
    }
}

/// Why the server cannot run workflows now, naming the first base process found down.
fn not_ready_reason(state: &AppState) -> Option<String> {
    state.engine.runtimes().all().find_map(|runtime| {
        runtime.base_processes().into_iter().find_map(|base| {
            let which = match &base.environment {
                None => format!("the Python base process of {}", runtime.name()),
                Some(environment) => format!(
                    "the Python base process of {} for the environment {environment}",
                    runtime.name()
                ),
            };
            let why = base
                .last_error
                .map(|error| format!(" ({error})"))
                .unwrap_or_default();
            match base.state {
                BaseState::Up | BaseState::NotStarted => None,
                BaseState::Restarting => Some(format!("{which} is restarting{why}")),
                BaseState::Failed => Some(format!("{which} failed to start{why}")),
            }
        })
    })
}
