//! What the web console needs beside the resource routes: executions across all the team's
//! workflows, per-workflow statistics (last execution, error rate over the last 24 h), a
//! workflow's next fire times, and a preview of the fire times of a schedule being edited.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use flowd_core::schedule::Schedule;
use flowd_core::workflow::ExecutionStatus;
use flowd_engine::clock::{now_ms, rfc3339};
use flowd_engine::EngineError;
use flowd_store::{ExecutionQuery, WorkflowRecord};
use serde::Deserialize;
use serde_json::{json, Value};

use super::executions::{ListQuery, Listing};
use super::ApiJson;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::{views, AppState};

/// The window of the statistics.
const STATS_WINDOW_MS: i64 = 24 * 3600 * 1000;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/executions", get(list_executions))
        .route("/workflow-stats", get(all_stats))
        .route("/workflows/{id}/stats", get(workflow_stats))
        .route("/workflows/{id}/schedule", get(workflow_schedule))
        .route("/schedules/preview", post(preview_schedule))
}

/// `GET /executions?limit=&status=&before=`: the executions of every workflow of the caller's
/// team, newest first, each with its `workflow_name`.
async fn list_executions(
    State(state): State<Arc<AppState>>,
    Caller(principal): Caller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Listing {
        limit,
        status,
        before,
    } = Listing::parse(query)?;
    let workflows: HashMap<String, WorkflowRecord> = state
        .engine
        .list_workflows(&principal)
        .await?
        .into_iter()
        .map(|w| (w.id.clone(), w))
        .collect();
    // The store lists every team's executions: page through them keeping the caller's team's.
    let mut executions = Vec::new();
    let mut before = before;
    if !workflows.is_empty() {
        loop {
            let page = state
                .engine
                .store()
                .list_executions(&ExecutionQuery {
                    workflow_id: None,
                    status,
                    before_id: before.clone(),
                    limit,
                    ..ExecutionQuery::default()
                })
                .await
                .map_err(EngineError::from)?;
            let full = page.len() >= limit as usize;
            for record in page {
                before = Some(record.id.clone());
                if let Some(workflow) = workflows.get(&record.workflow_id) {
                    let mut view = views::execution_summary(&record);
                    view["workflow_name"] = json!(workflow.name);
                    view["workflow_mode"] = json!(workflow.mode);
                    executions.push(view);
                    if executions.len() >= limit as usize {
                        break;
                    }
                }
            }
            if !full || executions.len() >= limit as usize {
                break;
            }
        }
    }
    Ok(Json(json!({ "executions": executions })))
}

/// `GET /workflow-stats`: [`stats`] of every workflow of the caller's team.
async fn all_stats(
    State(state): State<Arc<AppState>>,
    Caller(principal): Caller,
) -> ApiResult<Json<Value>> {
    let now = now_ms();
    let mut all = Vec::new();
    for record in state.engine.list_workflows(&principal).await? {
        all.push(stats(&state, &record, now).await?);
    }
    Ok(Json(json!({ "stats": all })))
}

/// `GET /workflows/{id}/stats`.
async fn workflow_stats(
    State(state): State<Arc<AppState>>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let record = state.engine.workflow(&principal, &id).await?;
    Ok(Json(stats(&state, &record, now_ms()).await?))
}

/// A workflow's last execution and its executions over the last 24 h. Failed are `error`,
/// `timeout`, `killed` and `interrupted`; the error rate is failed / finished, where finished
/// leaves out `running` and `skipped` (a skipped tick ran nothing); `null` when none finished.
async fn stats(state: &AppState, record: &WorkflowRecord, now: i64) -> ApiResult<Value> {
    let since = now - STATS_WINDOW_MS;
    let counts = state
        .engine
        .store()
        .count_executions(&record.id, since)
        .await
        .map_err(EngineError::from)?;
    let last = state
        .engine
        .store()
        .list_executions(&ExecutionQuery {
            workflow_id: Some(record.id.clone()),
            limit: 1,
            ..ExecutionQuery::default()
        })
        .await
        .map_err(EngineError::from)?
        .into_iter()
        .next();
    let mut by_status = serde_json::Map::new();
    let (mut total, mut finished, mut failed) = (0u64, 0u64, 0u64);
    for (status, count) in counts {
        by_status.insert(status.as_str().to_string(), json!(count));
        total += count;
        match status {
            ExecutionStatus::Running | ExecutionStatus::Skipped => {}
            ExecutionStatus::Success => finished += count,
            ExecutionStatus::Error
            | ExecutionStatus::Timeout
            | ExecutionStatus::Killed
            | ExecutionStatus::Interrupted => {
                finished += count;
                failed += count;
            }
        }
    }
    let error_rate = (finished > 0).then(|| failed as f64 / finished as f64);
    Ok(json!({
        "workflow_id": record.id,
        "last_execution": last.as_ref().map(views::execution_summary),
        "last_24h": {
            "since": rfc3339(since),
            "total": total,
            "finished": finished,
            "failed": failed,
            "error_rate": error_rate,
            "by_status": by_status,
        },
    }))
}

/// `GET /workflows/{id}/schedule`: a pull workflow's schedule and its next five fire times
/// (none while it is paused).
async fn workflow_schedule(
    State(state): State<Arc<AppState>>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let record = state.engine.workflow(&principal, &id).await?;
    let schedule = record
        .schedule
        .as_deref()
        .and_then(|text| serde_json::from_str::<Value>(text).ok())
        .and_then(|value| Schedule::parse(&value).ok());
    let Some(schedule) = schedule else {
        return Err(ApiError::invalid(format!(
            "workflow {} is a {} workflow and has no schedule",
            record.name, record.mode
        )));
    };
    // The stored next fire time is one of the schedule's (for an interval, its anchor).
    let next: Vec<String> = match record.next_fire_at {
        Some(first) => std::iter::once(first)
            .chain(schedule.upcoming(first, first, 4))
            .map(rfc3339)
            .collect(),
        None => Vec::new(),
    };
    Ok(Json(json!({
        "schedule": schedule.to_json(),
        "enabled": record.enabled,
        "next": next,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviewBody {
    schedule: Value,
    /// How many fire times (1 to 50, default 5).
    count: Option<usize>,
}

/// `POST /schedules/preview` with `{"schedule": {...}}`: the schedule's canonical form and its
/// next fire times if it were set now; `422` with the reason when it does not parse.
async fn preview_schedule(
    _caller: Caller,
    ApiJson(body): ApiJson<PreviewBody>,
) -> ApiResult<Json<Value>> {
    let count = body.count.unwrap_or(5);
    if !(1..=50).contains(&count) {
        return Err(ApiError::invalid("count must be from 1 to 50"));
    }
    let schedule = Schedule::parse(&body.schedule)
        .map_err(|error| ApiError::invalid(format!("schedule: {error}")))?;
    let now = now_ms();
    let next: Vec<String> = schedule
        .upcoming(now, now, count)
        .into_iter()
        .map(rfc3339)
        .collect();
    Ok(Json(
        json!({ "schedule": schedule.to_json(), "next": next }),
    ))
}
