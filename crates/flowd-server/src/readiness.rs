//! `GET /readyz`: whether this server can run workflows now — `200` when every runtime's base
//! processes are up (or not needed yet), `503` with the reason otherwise. Liveness is `/healthz`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use flowd_runtime::BaseState;
use serde_json::{json, Value};

use crate::AppState;

pub async fn readyz(State(state): State<Arc<AppState>>) -> (StatusCode, Json<Value>) {
    match not_ready_reason(&state) {
        None => (StatusCode::OK, Json(json!({"status": "ready"}))),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not_ready", "reason": reason})),
        ),
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
