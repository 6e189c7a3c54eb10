//! Executions: listings, one record in full, and runs started by hand.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::Json;
use flowd_core::workflow::ExecutionStatus;
use flowd_core::PyValue;
use serde::Deserialize;
use serde_json::{json, Value};

use super::ApiJson;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::{views, AppState};

/// The query string of execution listings, as received.
#[derive(Deserialize)]
pub struct ListQuery {
    limit: Option<String>,
    status: Option<String>,
    before: Option<String>,
}

/// A listing query checked at the edge.
pub struct Listing {
    pub limit: u32,
    pub status: Option<ExecutionStatus>,
    /// The id of the last execution of the previous page.
    pub before: Option<String>,
}

impl Listing {
    /// `limit` 1–1000 (default 50), `status` one of the statuses, `before` an execution id (empty:
    /// the first page); anything else, an empty `limit` or `status` included, is a `422` naming
    /// the parameter, as openapi.json describes them.
    pub fn parse(query: Result<Query<ListQuery>, QueryRejection>) -> ApiResult<Listing> {
        let Query(query) = query.map_err(|rejection| ApiError::invalid(rejection.body_text()))?;
        let limit = match query.limit.as_deref() {
            None => 50,
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| {
                    ApiError::invalid(format!(
                        "limit must be a number from 1 to 1000, not {text:?}"
                    ))
                })?,
        };
        let status = match query.status.as_deref() {
            None => None,
            Some(text) => Some(text.parse::<ExecutionStatus>().map_err(ApiError::invalid)?),
        };
        Ok(Listing {
            limit,
            status,
            before: query.before.filter(|before| !before.is_empty()),
        })
    }
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Caller(principal): Caller,
    Path(id): Path<String>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let listing = Listing::parse(query)?;
    let records = state
        .engine
        .executions(
            &principal,
            &id,
            listing.status,
            listing.limit,
            listing.before,
        )
        .await?;
    let executions: Vec<Value> = records.iter().map(views::execution_summary).collect();
    Ok(Json(json!({ "executions": executions })))
}

pub async fn show(
    State(state): State<Arc<AppState>>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (record, _) = state.engine.execution(&principal, &id).await?;
    Ok(Json(views::execution(&record)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RunBody {
    /// For a catch workflow: becomes `_request`.
    request: Option<serde_json::Map<String, Value>>,
}

pub async fn run_now(
    State(state): State<Arc<AppState>>,
    Caller(principal): Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RunBody>,
) -> ApiResult<Json<Value>> {
    let request = body
        .request
        .map(|map| PyValue::from_json(&Value::Object(map)));
    let (report, _) = state.engine.run_now(&principal, &id, request).await?;
    if let Err(refusal) = report.reply {
        // Refused before running (the slots and queue were full, no active version): the same
        // answer as any refused call, naming the `skipped` record kept of it.
        return Err(ApiError::from(refusal).with("execution_id", json!(report.record.id)));
    }
    Ok(Json(views::execution(&report.record)))
}
