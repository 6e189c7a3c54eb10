//! The hook endpoint: `POST /teams/{team}/{workflow}/{runtime}/{token}` runs the workflow with the
//! request as `_request` and answers what it returns (CONTRACT.md §2).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use flowd_core::request::{build_request, IncomingRequest, RequestError, ACCEPTED_CONTENT_TYPES};
use flowd_core::workflow::{Mode, Trigger};
use flowd_engine::Reply;
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::AppState;

pub const EXECUTION_ID_HEADER: &str = "x-execution-id";

pub async fn hook(
    State(state): State<Arc<AppState>>,
    Path((team, workflow, runtime, token)): Path<(String, String, String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match handle(
        &state, &team, &workflow, &runtime, &token, method, uri, headers, body,
    )
    .await
    {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

#[allow(clippy::too_many_arguments)]
async fn handle(
    state: &AppState,
    team: &str,
    workflow: &str,
    runtime: &str,
    token: &str,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found("hook");
    let hot = state
        .engine
        .hook_target(team, workflow)
        .await?
        .ok_or_else(not_found)?;
    let token_matches: bool = hot
        .record
        .hook_token
        .as_bytes()
        .ct_eq(token.as_bytes())
        .into();
    if !token_matches || hot.record.runtime != runtime || hot.record.mode != Mode::Catch {
        return Err(not_found());
    }
    if method != Method::POST {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("a hook URL accepts POST only, not {method}"),
        )
        .header(header::ALLOW, "POST"));
    }
    check_content_type(&headers)?;
    let limit = state.config.max_body_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large(limit));
    }
    let body = axum::body::to_bytes(body, limit).await.map_err(|error| {
        if is_length_limit(&error) {
            too_large(limit)
        } else {
            ApiError::bad_request(format!("the request body could not be read: {error}"))
        }
    })?;
    let header_list: Vec<(&str, &[u8])> = headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_bytes()))
        .collect();
    let request = build_request(&IncomingRequest {
        headers: header_list,
        query: uri.query(),
        body: &body,
    })
    .map_err(request_error)?;
    let report = state
        .engine
        .execute(hot, Trigger::Catch, Some(request))
        .await;
    Ok(reply_response(report.reply, &report.record.id))
}

fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err(request_error(RequestError::UnsupportedMediaType(None)));
    };
    let text = String::from_utf8_lossy(value.as_bytes());
    let media_type = text
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if ACCEPTED_CONTENT_TYPES.contains(&media_type.as_str()) {
        Ok(())
    } else {
        Err(request_error(RequestError::UnsupportedMediaType(Some(
            text.into_owned(),
        ))))
    }
}

fn request_error(error: RequestError) -> ApiError {
    match error {
        RequestError::UnsupportedMediaType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            error.to_string(),
        )
        .with("accepted", json!(ACCEPTED_CONTENT_TYPES)),
        RequestError::Malformed(message) => {
            ApiError::new(StatusCode::BAD_REQUEST, "malformed_body", message)
        }
    }
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the request body is larger than the {limit}-byte limit"),
    )
}

fn is_length_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if current.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = current.source();
    }
    false
}

/// The HTTP response for an execution's reply, with `X-Execution-Id`.
pub fn reply_response(reply: Reply, execution_id: &str) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
    let mut response = (status, reply.body).into_response();
    let headers = response.headers_mut();
    headers.remove(header::CONTENT_TYPE);
    for (name, value) in reply.headers {
        // The core already checked names and values; a pair HTTP still refuses is dropped.
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            headers.append(name, value);
        }
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    if let Ok(value) = HeaderValue::from_str(execution_id) {
        headers.insert(HeaderName::from_static(EXECUTION_ID_HEADER), value);
    }
    response
}
