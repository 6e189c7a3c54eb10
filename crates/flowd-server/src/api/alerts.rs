//! A workflow's recent alert deliveries.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::{views, AppState};

#[derive(Deserialize)]
pub struct ListQuery {
    limit: Option<String>,
}

/// `limit` 1–1000 (default 50); anything else is a `422` naming it.
fn parse_limit(query: Result<Query<ListQuery>, QueryRejection>) -> ApiResult<u32> {
    let Query(query) = query.map_err(|rejection| ApiError::invalid(rejection.body_text()))?;
    match query.limit.as_deref() {
        None => Ok(50),
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "limit must be a number from 1 to 1000, not {text:?}"
                ))
            }),
    }
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Caller(principal): Caller,
    Path(id): Path<String>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let limit = parse_limit(query)?;
    let deliveries = state
        .engine
        .alert_deliveries(&principal, &id, limit)
        .await?;
    let deliveries: Vec<Value> = deliveries.iter().map(views::alert_delivery).collect();
    Ok(Json(json!({ "deliveries": deliveries })))
}
