//! `/api/v1/workflows`: deploy, read, change and delete workflows, their versions and settings.

use std::sync::Arc;

use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use flowd_core::settings::Settings;
use flowd_core::workflow::VersionState;
use flowd_engine::{Deployment, EngineError, NewWorkflow, WorkflowPatch, DEFAULT_DEPLOY_WAIT};
use flowd_store::WorkflowRecord;
use serde::Deserialize;
use serde_json::{json, Value};

use super::ApiJson;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::{views, AppState};

/// `?wait=false`: answer as soon as the new version is stored, without waiting for its build
/// (its state is then `building`: follow it with `GET …/versions/{version}?wait=true`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployQuery {
    wait: Option<bool>,
}

impl DeployQuery {
    /// The query, or a `422` naming what is wrong with it.
    fn parse(query: Result<Query<DeployQuery>, QueryRejection>) -> ApiResult<DeployQuery> {
        let Query(query) = query.map_err(|rejection| ApiError::invalid(rejection.body_text()))?;
        Ok(query)
    }

    fn wait(&self) -> Duration {
        if self.wait.unwrap_or(true) {
            DEFAULT_DEPLOY_WAIT
        } else {
            Duration::ZERO
        }
    }
}

/// The workflow with how the deploy of its new version went.
fn deployed(team: &str, record: &WorkflowRecord, deployment: Option<&Deployment>) -> Value {
    let mut view = views::workflow(team, record);
    if let Some(deployment) = deployment {
        view["deployment"] = views::deployment(deployment);
    }
    view
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    Caller(principal): Caller,
    query: Result<Query<DeployQuery>, QueryRejection>,
    ApiJson(new): ApiJson<NewWorkflow>,
) -> ApiResult<Response> {
    let query = DeployQuery::parse(query)?;
    let (record, deployment) = state
        .engine
        .create_workflow(&principal, new, query.wait())
        .await?;
    tracing::info!(workflow = %record.name, id = %record.id, state = %deployment.state, "workflow created");
    let status = if deployment.state == VersionState::Building {
        StatusCode::ACCEPTED
    } else {
        StatusCode::CREATED
    };
    let team = state.engine.team_name_of(&principal, &record).await?;
    Ok((status, Json(deployed(&team, &record, Some(&deployment)))).into_response())
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Caller(principal): Caller,
) -> ApiResult<Json<Value>> {
    let records = state.engine.list_workflows(&principal).await?;
    // An admin's listing holds every team's workflows; another key's, its team's only.
    let teams = if principal.is_admin() {
        state.engine.team_names().await?
    } else {
        std::collections::HashMap::new()
    };
    let workflows: Vec<Value> = records
        .iter()
        .map(|r| {
            let team = teams.get(&r.team_id).unwrap_or(&principal.team_name);
            views::workflow(team, r)
        })
        .collect();
    Ok(Json(json!({ "workflows": workflows })))
}

pub async fn show(
    State(state): State<Arc<AppState>>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let record = state.engine.workflow(&principal, &id).await?;
    let team = state.engine.team_name_of(&principal, &record).await?;
    Ok(Json(views::workflow(&team, &record)))
}

/// `GET /workflows/{id}/queue`: its asynchronous calls queued or running, and the bound.
pub async fn queue(
    State(state): State<Arc<AppState>>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let record = state.engine.workflow(&principal, &id).await?;
    let depth = state.engine.async_queue_depth(Some(&record.id)).await?;
    Ok(Json(json!({
        "workflow_id": record.id,
        "depth": depth,
        "max": state.engine.config().async_queue_max,
    })))
}

pub async fn update(
    State(state): State<Arc<AppState>>,
    Caller(principal): Caller,
    Path(id): Path<String>,
    query: Result<Query<DeployQuery>, QueryRejection>,
    ApiJson(patch): ApiJson<WorkflowPatch>,
) -> ApiResult<Response> {
    let query = DeployQuery::parse(query)?;
    let (record, deployment) = state
        .engine
        .update_workflow(&principal, &id, patch, query.wait())
        .await?;
    let status = match &deployment {
        Some(deployment) if deployment.state == VersionState::Building => StatusCode::ACCEPTED,
        _ => StatusCode::OK,
    };
    let team = state.engine.team_name_of(&principal, &record).await?;
    Ok((status, Json(deployed(&team, &record, deployment.as_ref()))).into_response())
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

/// One version; with `?wait=true`, answered once its build and import check ended.
pub async fn version(
    State(state): State<Arc<AppState>>,
    Caller(principal): Caller,
    Path((id, number)): Path<(String, String)>,
    query: Result<Query<DeployQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let query = DeployQuery::parse(query)?;
    let number: u32 = number.parse().map_err(|_| {
        EngineError::Invalid(format!("version: {number:?} is not a version number"))
    })?;
    if query.wait == Some(true) {
        state
            .engine
            .deployment(&principal, &id, number, DEFAULT_DEPLOY_WAIT)
            .await?;
    }
    let record = state.engine.workflow(&principal, &id).await?;
    let version = state
        .engine
        .versions(&principal, &id)
        .await?
        .into_iter()
        .find(|v| v.version == number)
        .ok_or_else(|| EngineError::NotFound(format!("version {number} of workflow {id}")))?;
    Ok(Json(views::version(&version, record.version)))
}

pub async fn rotate_token(
    State(state): State<Arc<AppState>>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let record = state.engine.rotate_hook_token(&principal, &id).await?;
    let team = state.engine.team_name_of(&principal, &record).await?;
    Ok(Json(views::workflow(&team, &record)))
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
