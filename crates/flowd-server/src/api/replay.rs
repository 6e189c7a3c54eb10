//! Replays of stored requests: an execution's stored request (`GET /executions/{id}/request`),
//! a replay of one (`POST /executions/{id}/replay`), a bulk replay of a workflow's executions
//! (`POST /workflows/{id}/replay`, `202` with a job) and its progress (`GET /replays/{id}`).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use flowd_core::workflow::ExecutionStatus;
use flowd_engine::clock::parse_rfc3339;
use flowd_engine::replay::BulkReplay;
use serde::Deserialize;
use serde_json::{json, Value};

use super::ApiJson;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::{views, AppState};

pub async fn stored_request(
    State(state): State<Arc<AppState>>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (record, request) = state.engine.stored_request(&principal, &id).await?;
    Ok(Json(views::stored_request(&record.id, &request)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ReplayBody {
    /// The version to run (default: the active one).
    version: Option<u32>,
}

pub async fn replay_one(
    State(state): State<Arc<AppState>>,
    Caller(principal): Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReplayBody>,
) -> ApiResult<Json<Value>> {
    let report = state.engine.replay(&principal, &id, body.version).await?;
    if let Err(refusal) = report.reply {
        // Refused before running: as a run started by hand, naming the `skipped` record.
        return Err(ApiError::from(refusal).with("execution_id", json!(report.record.id)));
    }
    Ok(Json(views::execution(&report.record)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct BulkReplayBody {
    #[serde(default)]
    status: Vec<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<u32>,
    version: Option<u32>,
}

impl BulkReplayBody {
    /// What to replay, or a `422` naming the field that is wrong.
    fn parse(self) -> ApiResult<BulkReplay> {
        let statuses = self
            .status
            .iter()
            .map(|text| {
                text.parse::<ExecutionStatus>()
                    .map_err(|error| ApiError::invalid(format!("status: {error}")))
            })
            .collect::<ApiResult<Vec<_>>>()?;
        let time = |field: &str, text: Option<String>| {
            text.map(|text| {
                parse_rfc3339(&text).ok_or_else(|| {
                    ApiError::invalid(format!(
                        "{field}: {text:?} is not an RFC 3339 time (2026-12-01T00:00:00Z)"
                    ))
                })
            })
            .transpose()
        };
        Ok(BulkReplay {
            statuses,
            since: time("since", self.since)?,
            until: time("until", self.until)?,
            limit: self.limit,
            version: self.version,
        })
    }
}

pub async fn replay_many(
    State(state): State<Arc<AppState>>,
    Caller(principal): Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<BulkReplayBody>,
) -> ApiResult<Response> {
    let bulk = body.parse()?;
    let job = state
        .engine
        .start_bulk_replay(&principal, &id, bulk)
        .await?;
    let location = format!("/api/v1/replays/{}", job.id);
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(views::replay_job(&job)),
    )
        .into_response())
}

pub async fn job(
    State(state): State<Arc<AppState>>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let job = state.engine.replay_job(&principal, &id)?;
    Ok(Json(views::replay_job(&job)))
}
