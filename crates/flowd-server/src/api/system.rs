//! What this server is: runtimes, isolation in force, and the API description.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::AppState;

/// The OpenAPI description of the whole API, kept beside the code that implements it.
pub const OPENAPI: &str = include_str!("../../openapi.json");

pub async fn runtimes(State(state): State<Arc<AppState>>, _caller: Caller) -> Json<Value> {
    Json(json!({ "runtimes": runtime_views(&state) }))
}

/// Every runtime, the default first.
fn runtime_views(state: &AppState) -> Vec<Value> {
    let default = state.engine.runtimes().default_runtime().name();
    state
        .engine
        .runtimes()
        .all()
        .map(|runtime| runtime_view(runtime, runtime.name() == default))
        .collect()
}

fn runtime_view(runtime: &flowd_runtime::Runtime, default: bool) -> Value {
    let environment = runtime.environment();
    let packages: serde_json::Map<String, Value> = environment
        .packages
        .iter()
        .map(|(name, version)| (name.clone(), json!(version)))
        .collect();
    json!({
        "name": runtime.name(),
        "version": environment.interpreter.version,
        "interpreter": environment.interpreter.executable,
        "environment": environment.dir,
        "packages": packages,
        "installer": runtime.installer(),
        "default": default,
        "base_processes": runtime.base_processes().iter().map(|base| json!({
            "environment": base.environment,
            "state": base.state.as_str(),
            "pid": base.pid,
            "restarts": base.restarts,
            "last_error": base.last_error,
        })).collect::<Vec<_>>(),
    })
}

pub async fn system(
    State(state): State<Arc<AppState>>,
    _caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let async_depth = state.engine.async_queue_depth(None).await?;
    let user = state.engine.runtime().sandbox_user();
    Ok(Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "runtimes": runtime_views(&state),
        "isolation": {
            "unprivileged_user": user.map(|u| json!({"uid": u.uid, "gid": u.gid})),
            "layers": state.engine.runtime().isolation_layers().iter()
                .chain(state.engine.runtimes().egress_layers())
                .map(|layer| json!({
                "name": layer.name,
                "active": layer.active,
                "detail": layer.detail,
            })).collect::<Vec<_>>(),
        },
        "executions_in_flight": state.engine.executions_in_flight(),
        "warm_instances": state.engine.runtime().warm_instances(),
        "limits": {
            "max_body_bytes": state.config.max_body_bytes,
            "max_concurrent_executions": state.engine.config().max_concurrent_executions,
            "queue_depth": state.engine.config().queue_depth,
            "max_timeout_s": state.engine.config().max_timeout_s,
            "max_memory_mb": state.engine.config().max_memory_mb,
            "async_queue_max": state.engine.config().async_queue_max,
        },
        "async_queue": {"depth": async_depth},
    })))
}

pub async fn openapi(_caller: Caller) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}
