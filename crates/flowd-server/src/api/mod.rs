//! The REST API under `/api/v1`.

mod alerts;
mod audit;
mod console;
mod executions;
mod json;
mod keys;
mod replay;
mod system;
mod teams;
mod workflows;

use std::sync::Arc;

use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::Router;

use crate::error::ApiError;
use crate::AppState;

pub use json::ApiJson;

/// Every `/api/v1` route (authentication is added by the caller).
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/workflows", post(workflows::create).get(workflows::list))
        .route(
            "/workflows/{id}",
            get(workflows::show)
                .patch(workflows::update)
                .delete(workflows::delete),
        )
        .route("/workflows/{id}/versions", get(workflows::versions))
        .route(
            "/workflows/{id}/versions/{version}",
            get(workflows::version),
        )
        .route(
            "/workflows/{id}/rotate-token",
            post(workflows::rotate_token),
        )
        .route(
            "/workflows/{id}/settings",
            get(workflows::settings)
                .put(workflows::replace_settings)
                .patch(workflows::patch_settings),
        )
        .route("/workflows/{id}/executions", get(executions::list))
        .route("/workflows/{id}/runs", post(executions::run_now))
        .route("/workflows/{id}/alerts", get(alerts::list))
        .route("/workflows/{id}/queue", get(workflows::queue))
        .route("/executions/{id}", get(executions::show))
        .route("/executions/{id}/request", get(replay::stored_request))
        .route("/executions/{id}/replay", post(replay::replay_one))
        .route("/workflows/{id}/replay", post(replay::replay_many))
        .route("/replays/{id}", get(replay::job))
        .route("/runtimes", get(system::runtimes))
        .route("/system", get(system::system))
        .route("/openapi.json", get(system::openapi))
        .route("/teams", post(teams::create).get(teams::list))
        .route(
            "/teams/{name}",
            axum::routing::patch(teams::rename).delete(teams::delete),
        )
        .route("/api-keys", post(keys::create).get(keys::list))
        .route("/api-keys/{id}", delete(keys::revoke))
        .route("/whoami", get(keys::whoami))
        .route("/audit", get(audit::list))
        .merge(console::routes())
        .method_not_allowed_fallback(method_not_allowed)
}

/// A known route called with a method it does not have: the API's JSON error (axum adds `Allow`).
async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not accept this method; the Allow header lists those it does",
    )
}
