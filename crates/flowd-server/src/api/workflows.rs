//! `/api/v1/workflows`: deploy, read, change and delete workflows, their versions and settings.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use flowd_core::settings::Settings;
use flowd_engine::{NewWorkflow, WorkflowPatch};
use serde::Deserialize;
use serde_json::{json, Value};

use super::ApiJson;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::{views, AppState};

pub async fn create(
    State(state): State<Arc<AppState>>,
    Caller(principal): Caller,
    ApiJson(new): ApiJson<NewWorkflow>,
) -> ApiResult<Response> {
    let record = state.engine.create_workflow(&principal, new).await?;
    tracing::info!(workflow = %record.name, id = %record.id, "workflow created");
    Ok((
        StatusCode::CREATED,
        Json(views::workflow(&principal.team_name, &record)),
    )
        .into_response())
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Caller(principal): Caller,
) -> ApiResult<Json<Value>> {
    let records = state.engine.list_workflows(&principal).await?;
    let workflows: Vec<Value> = records
        .iter()
        .map(|r| views::workflow(&principal.team_name, r))
        .collect();
    Ok(Json(json!({ "workflows": workflows })))
}

pub async fn show(
    State(state): State<Arc<AppState>>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let record = state.engine.workflow(&principal, &id).await?;
    Ok(Json(views::workflow(&principal.team_name, &record)))
}

pub async fn update(
    State(state): State<Arc<AppState>>,
    Caller(principal): Caller,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<WorkflowPatch>,
) -> ApiResult<Json<Value>> {
    let record = state.engine.update_workflow(&principal, &id, patch).await?;
    Ok(Json(views::workflow(&principal.team_name, &record)))
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.engine.delete_workflow(&principal, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn versions(
    State(state): State<Arc<AppState>>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let record = state.engine.workflow(&principal, &id).await?;
    let versions = state.engine.versions(&principal, &id).await?;
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| views::version(v, record.version))
        .collect();
    Ok(Json(json!({ "versions": versions })))
}

pub async fn rotate_token(
    State(state): State<Arc<AppState>>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let record = state.engine.rotate_hook_token(&principal, &id).await?;
    Ok(Json(views::workflow(&principal.team_name, &record)))
}

pub async fn settings(
    State(state): State<Arc<AppState>>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (record, settings) = state.engine.settings(&principal, &id).await?;
    Ok(Json(views::settings(&record, &settings)))
}

/// `PUT` and `PATCH` bodies: `{"settings": {...}}`, or the settings object itself. An object
/// with a `settings` object and nothing else is the envelope; any other object is the settings.
#[derive(Deserialize)]
#[serde(untagged)]
pub enum SettingsBody {
    Wrapped(SettingsEnvelope),
    Bare(Settings),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsEnvelope {
    settings: Settings,
}

impl SettingsBody {
    fn into_settings(self) -> Settings {
        match self {
            SettingsBody::Wrapped(envelope) => envelope.settings,
            SettingsBody::Bare(settings) => settings,
        }
    }
}

pub async fn replace_settings(
    State(state): State<Arc<AppState>>,
    Caller(principal): Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SettingsBody>,
) -> ApiResult<Json<Value>> {
    let (record, settings) = state
        .engine
        .replace_settings(&principal, &id, body.into_settings())
        .await?;
    Ok(Json(views::settings(&record, &settings)))
}

pub async fn patch_settings(
    State(state): State<Arc<AppState>>,
    Caller(principal): Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SettingsBody>,
) -> ApiResult<Json<Value>> {
    let (record, settings) = state
        .engine
        .patch_settings(&principal, &id, body.into_settings())
        .await?;
    Ok(Json(views::settings(&record, &settings)))
}
