//! `/api/v1/teams`: create, list, rename and delete teams (admin keys).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::ApiJson;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::{views, AppState};

/// `POST` and `PATCH` bodies: the team's (new) name.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamBody {
    name: String,
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Caller(principal): Caller,
) -> ApiResult<Json<Value>> {
    let teams = state.engine.list_teams(&principal).await?;
    let teams: Vec<Value> = teams.iter().map(views::team).collect();
    Ok(Json(json!({ "teams": teams })))
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    Caller(principal): Caller,
    ApiJson(body): ApiJson<TeamBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let team = state.engine.create_team(&principal, &body.name).await?;
    tracing::info!(team = %team.name, "team created");
    Ok((StatusCode::CREATED, Json(views::team(&team))))
}

pub async fn rename(
    State(state): State<Arc<AppState>>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<TeamBody>,
) -> ApiResult<Json<Value>> {
    let team = state
        .engine
        .rename_team(&principal, &name, &body.name)
        .await?;
    Ok(Json(views::team(&team)))
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    Caller(principal): Caller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    state.engine.delete_team(&principal, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
