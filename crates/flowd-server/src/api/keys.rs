//! `/api/v1/api-keys`: create (the key shown once), list and revoke API keys (admin keys); and
//! `/api/v1/whoami`, the calling key itself (any key: the console shows what its role allows).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use flowd_core::access::Role;
use flowd_engine::clock::parse_rfc3339;
use flowd_engine::NewApiKey;
use serde::Deserialize;
use serde_json::{json, Value};

use super::ApiJson;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::{views, AppState};

/// The `POST` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyBody {
    name: String,
    role: Role,
    /// The team's name (default `default`).
    team: Option<String>,
    /// RFC 3339; `null` or left out: never expires.
    expires_at: Option<String>,
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    Caller(principal): Caller,
    ApiJson(body): ApiJson<KeyBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let expires_at = body
        .expires_at
        .as_deref()
        .map(|text| {
            parse_rfc3339(text).ok_or_else(|| {
                ApiError::invalid(format!(
                    "expires_at: {text:?} is not an RFC 3339 time (2027-01-31T00:00:00Z)"
                ))
            })
        })
        .transpose()?;
    let created = state
        .engine
        .create_api_key(
            &principal,
            NewApiKey {
                name: body.name,
                role: body.role,
                team: body.team,
                expires_at,
            },
        )
        .await?;
    tracing::info!(key = %created.record.name, id = %created.record.id, role = %created.record.role, "API key created");
    let mut view = views::api_key(&created.record, &created.team_name);
    view["key"] = json!(created.key);
    Ok((StatusCode::CREATED, Json(view)))
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Caller(principal): Caller,
) -> ApiResult<Json<Value>> {
    let keys = state.engine.list_api_keys(&principal).await?;
    let teams = state.engine.team_names().await?;
    let keys: Vec<Value> = keys
        .iter()
        .map(|key| {
            let team = teams.get(&key.team_id).map_or("", String::as_str);
            views::api_key(key, team)
        })
        .collect();
    Ok(Json(json!({ "api_keys": keys })))
}

pub async fn revoke(
    State(state): State<Arc<AppState>>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.engine.revoke_api_key(&principal, &id).await?;
    tracing::info!(id = %id, "API key revoked");
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /whoami`: the calling key's id, name, role and team.
pub async fn whoami(Caller(principal): Caller) -> Json<Value> {
    Json(json!({
        "id": principal.key_id,
        "name": principal.key_name,
        "role": principal.role,
        "team": principal.team_name,
    }))
}
