//! Asynchronous hook calls over HTTP: `Prefer: respond-async` on a hook call, the `202` that
//! answers it once the call is queued in the store, and the status URL `GET /async/{token}`,
//! which needs no API key (its token is as unguessable as a hook URL's).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use flowd_core::request::decode_header_value;
use flowd_engine::{Accepted, Reply};
use flowd_store::{AsyncCallState, QueuedRequest, StoredResponse};
use serde_json::json;

use crate::error::ApiError;
use crate::hook::reply_response;
use crate::AppState;

/// The header saying where an asynchronous call is: `queued`, `running`, or once it has run the
/// status of its execution (`success`, `error`, …).
pub const EXECUTION_STATUS_HEADER: &str = "x-execution-status";

/// How long a poller of a call not yet run is told to wait, and a caller refused for a full
/// queue.
const RETRY_AFTER: &str = "1";

/// Whether the caller asked to be answered before the workflow runs: RFC 7240's
/// `Prefer: respond-async`, in any of its `Prefer` headers, case-insensitively.
pub fn prefers_async(headers: &HeaderMap) -> bool {
    headers.get_all("prefer").iter().any(|value| {
        value.to_str().is_ok_and(|value| {
            value.split(',').any(|preference| {
                let token = preference.split(';').next().unwrap_or("");
                let name = token.split('=').next().unwrap_or("").trim();
                name.eq_ignore_ascii_case("respond-async")
            })
        })
    })
}

/// The request as the queue keeps it: headers as `_request` reads them, the query, the body.
pub fn stored_request(headers: &HeaderMap, query: Option<&str>, body: &[u8]) -> QueuedRequest {
    QueuedRequest {
        headers: headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_string(),
                    decode_header_value(value.as_bytes()),
                )
            })
            .collect(),
        query: query.map(str::to_string),
        body: body.to_vec(),
    }
}

/// The path of a call's status URL.
pub fn status_path(token: &str) -> String {
    format!("/async/{token}")
}

/// The `202` a queued call is answered: `{"execution_id", "status_url"}` with `Location` and
/// `Preference-Applied` (the hook adds `X-Execution-Id`). Kept as the response of the call's
/// idempotency key, if it has one, for its repeats.
pub fn acknowledgement(accepted: &Accepted) -> Reply {
    let status_url = status_path(&accepted.token);
    let body = json!({
        "execution_id": accepted.execution_id,
        "status_url": status_url,
    });
    Reply {
        status: StatusCode::ACCEPTED.as_u16(),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("location".into(), status_url),
            ("preference-applied".into(), "respond-async".into()),
        ],
        body: body.to_string().into_bytes(),
    }
}

/// The queue holds as many calls as it may: `503` with `Retry-After`; nothing was stored.
pub fn queue_full() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "queue_full",
        "the queue of asynchronous calls is full; retry later",
    )
    .header(header::RETRY_AFTER, RETRY_AFTER)
}

/// `GET /async/{token}`: `202` with `{"status": "queued" | "running", "execution_id",
/// "attempt"}` until the call has run (a retry waiting is `queued`, with its attempt's execution
/// id), then the response its last attempt produced; `X-Execution-Status` either way.
pub async fn status(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    let call = state
        .engine
        .async_call(&token)
        .await?
        .ok_or_else(|| ApiError::not_found("asynchronous call"))?;
    let (pending, response) = match call.state {
        AsyncCallState::Queued => ("queued", None),
        AsyncCallState::Claimed { .. } => ("running", None),
        AsyncCallState::Done { response, .. } => ("", Some(response)),
    };
    let Some(StoredResponse {
        status,
        headers,
        body,
    }) = response
    else {
        let mut response = (
            StatusCode::ACCEPTED,
            axum::Json(json!({
                "status": pending,
                "execution_id": call.execution_id,
                "attempt": call.attempt,
            })),
        )
            .into_response();
        let headers = response.headers_mut();
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER));
        headers.insert(
            HeaderName::from_static(EXECUTION_STATUS_HEADER),
            HeaderValue::from_static(pending),
        );
        return Ok(response);
    };
    let execution_status = state
        .engine
        .store()
        .execution(&call.execution_id)
        .await
        .map_err(flowd_engine::EngineError::from)?
        .map(|record| record.status.as_str().to_string());
    let mut response = reply_response(
        flowd_engine::Reply {
            status,
            headers,
            body,
        },
        &call.execution_id,
    );
    if let Some(Ok(value)) = execution_status.map(|status| HeaderValue::from_str(&status)) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(EXECUTION_STATUS_HEADER), value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefer(values: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("prefer", HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn respond_async_is_found_among_other_preferences_in_any_case() {
        assert!(prefers_async(&prefer(&["return=minimal, Respond-Async"])));
        assert!(prefers_async(&prefer(&["wait=10", "respond-async; x=1"])));
    }

    #[test]
    fn no_respond_async_preference_means_a_synchronous_call() {
        assert!(!prefers_async(&prefer(&[])));
        assert!(!prefers_async(&prefer(&[
            "wait=10",
            "respond-asynchronously"
        ])));
    }
}
