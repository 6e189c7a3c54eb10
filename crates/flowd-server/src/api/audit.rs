//! `GET /api/v1/audit?team=&workflow=&actor=&since=&before=&limit=`: the audit log, newest
//! first (admin keys: every team; developer keys: their team).

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use flowd_engine::clock::parse_rfc3339;
use flowd_engine::AuditFilter;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::{views, AppState};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    team: Option<String>,
    workflow: Option<String>,
    actor: Option<String>,
    since: Option<String>,
    before: Option<String>,
    limit: Option<String>,
}

impl AuditParams {
    /// The filter, or a `422` naming the parameter that is wrong.
    fn filter(self) -> ApiResult<AuditFilter> {
        let non_empty = |value: Option<String>| value.filter(|value| !value.is_empty());
        let since = match self.since {
            None => None,
            Some(text) => Some(parse_rfc3339(&text).ok_or_else(|| {
                ApiError::invalid(format!(
                    "since: {text:?} is not an RFC 3339 time (2026-12-01T00:00:00Z)"
                ))
            })?),
        };
        let limit = match self.limit.as_deref() {
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
        Ok(AuditFilter {
            team: non_empty(self.team),
            workflow: non_empty(self.workflow),
            actor: non_empty(self.actor),
            since,
            before_id: non_empty(self.before),
            limit,
        })
    }
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Caller(principal): Caller,
    query: Result<Query<AuditParams>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(params) = query.map_err(|rejection| ApiError::invalid(rejection.body_text()))?;
    let entries = state.engine.audit_log(&principal, params.filter()?).await?;
    let entries: Vec<Value> = entries.iter().map(views::audit_entry).collect();
    Ok(Json(json!({ "entries": entries })))
}
