//! The hook endpoint: `POST /teams/{team}/{workflow}/{runtime}/{token}` runs the workflow with the
//! request as `_request` and answers what it returns (CONTRACT.md §2), or, asked with
//! `Prefer: respond-async`, queues it and answers `202` (`async_calls`).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use flowd_core::request::{build_request, IncomingRequest, RequestError, ACCEPTED_CONTENT_TYPES};
use flowd_core::workflow::{Mode, ResponseMode, Trigger};
use flowd_engine::delivery::{CallDetails, ClaimedKey, ReceivedRequest};
use flowd_engine::hot::HotWorkflow;
use flowd_engine::idempotency::Delivery;
use flowd_engine::{Refusal, Reply};
use flowd_store::QueuedRequest;
use http_body_util::BodyExt;
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::async_calls;
use crate::conn::idle_body::BodyReadTimeout;
use crate::delivery;
use crate::error::{refused_status, retry_after, ApiError};
use crate::metrics;
use crate::AppState;

pub const EXECUTION_ID_HEADER: &str = "x-execution-id";

/// A hook call as the handler reads it: the URL's parts, the method, the query string, the
/// headers and the body.
pub struct HookCall {
    pub path: HookPath,
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    /// Taken when read; what a refused call leaves of it is read and thrown away.
    pub body: Option<Body>,
    /// Set once the URL named a workflow and its token: only then are its names metric labels.
    pub matched: bool,
}

/// The parts of a hook URL, `/teams/{team}/{workflow}/{runtime}/{token}`.
#[derive(Debug, Deserialize)]
pub struct HookPath {
    pub team: String,
    pub workflow: String,
    pub runtime: String,
    pub token: String,
}

impl<S: Send + Sync> FromRequest<S> for HookCall {
    type Rejection = PathRejection;

    async fn from_request(request: Request, state: &S) -> Result<HookCall, PathRejection> {
        let (mut parts, body) = request.into_parts();
        let Path(path) = Path::<HookPath>::from_request_parts(&mut parts, state).await?;
        Ok(HookCall {
            path,
            method: parts.method,
            uri: parts.uri,
            headers: parts.headers,
            body: Some(body),
            matched: false,
        })
    }
}

pub async fn hook(State(state): State<Arc<AppState>>, mut call: HookCall) -> Response {
    let response = match handle(&state, &mut call).await {
        Ok(response) => response,
        Err(error) => {
            // Refused before its body was read (or read to the end): let the client finish
            // sending, so that it reads the answer instead of a broken connection.
            if let Some(body) = call.body.take() {
                linger(body);
            }
            error.into_response()
        }
    };
    let matched = call
        .matched
        .then_some((call.path.team.as_str(), call.path.workflow.as_str()));
    metrics::hook_answered(matched, response.status());
    response
}

/// How long, and how many bytes, the rest of a refused request's body is read and thrown away.
const LINGER_TIME: Duration = Duration::from_secs(5);
const LINGER_BYTES: usize = 64 << 20;

/// Reads and discards what is left of `body` in the background, for at most [`LINGER_TIME`]
/// and [`LINGER_BYTES`] — like nginx's lingering close: a client that sends a whole body
/// before reading the response (most HTTP libraries) would otherwise get a reset connection
/// instead of the `413` (or `404`, `415`…).
fn linger(body: Body) {
    tokio::spawn(async move {
        let mut body = body;
        let mut read = 0usize;
        let _ = tokio::time::timeout(LINGER_TIME, async {
            while let Some(Ok(frame)) = body.frame().await {
                read += frame.data_ref().map_or(0, |data| data.len());
                if read > LINGER_BYTES {
                    break;
                }
            }
        })
        .await;
    });
}

async fn handle(state: &AppState, call: &mut HookCall) -> Result<Response, ApiError> {
    let HookPath {
        team,
        workflow,
        runtime,
        token,
    } = &call.path;
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
    if !token_matches || hot.record.runtime != *runtime || hot.record.mode != Mode::Catch {
        return Err(not_found());
    }
    call.matched = true;
    let method = &call.method;
    if method != Method::POST {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("a hook URL accepts POST only, not {method}"),
        )
        .header(header::ALLOW, "POST"));
    }
    let headers = &call.headers;
    check_content_type(headers)?;
    let limit = state.config.max_body_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large(limit));
    }
    // Room for the body is taken before a byte of it is read, and held until the execution is
    // over (the body's bytes live on in `_request` until then); a body of unknown length takes
    // room for the largest allowed.
    let expected = declared.map_or(limit, |length| length as usize);
    let reservation = state
        .body_budget
        .reserve(expected)
        .await
        .map_err(body_budget_exhausted)?;
    let body = read_body(&mut call.body, limit, expected).await?;
    let asynchronous =
        hot.record.response == ResponseMode::Async || async_calls::prefers_async(headers);
    let stored =
        asynchronous.then(|| async_calls::stored_request(headers, call.uri.query(), &body));
    let header_list: Vec<(&str, &[u8])> = headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_bytes()))
        .collect();
    if hot.record.verify.is_some() {
        if let Err(refused) = state
            .engine
            .check_signature(&hot, &header_list, &body)
            .await
        {
            let record = state.engine.record_refused_signature(&hot, &refused);
            return Ok(delivery::unverified_response(&refused, &record.id));
        }
    }
    let query = call.uri.query();
    let received = ReceivedRequest {
        raw_body: body.clone(),
        method: method.as_str().to_string(),
        query_string: query.unwrap_or_default().to_string(),
        path: call.uri.path().to_string(),
        // Copied only to be stored for replay.
        headers: if hot.record.store_requests {
            headers
                .iter()
                .map(|(name, value)| (name.as_str().to_string(), value.as_bytes().to_vec()))
                .collect()
        } else {
            Vec::new()
        },
    };
    let request = build_request(&IncomingRequest {
        headers: header_list,
        query,
        body,
    })
    .map_err(request_error)?;
    let claimed_key = match delivery::idempotency_key(&hot, headers)? {
        Some(key) => {
            let digest = delivery::request_digest(query, &received.raw_body);
            match state.engine.claim_delivery(&hot, key, &digest).await? {
                Delivery::Run(claimed) => Some(claimed),
                Delivery::Repeat {
                    execution_id,
                    reply,
                } => return Ok(delivery::replayed_response(reply, &execution_id)),
                Delivery::KeyReused { execution_id } => {
                    return Err(delivery::key_reused(&execution_id))
                }
                Delivery::StillRunning { execution_id } => {
                    return Err(delivery::key_in_use(&execution_id))
                }
            }
        }
        None => None,
    };
    // A paused workflow, or one without an active version, refuses at once as for a
    // synchronous call.
    if let Some(stored) = stored.filter(|_| hot.record.enabled && hot.active.is_ok()) {
        drop(reservation);
        return queue_call(state, &hot, stored, claimed_key.as_ref()).await;
    }
    let call_details = CallDetails {
        request: Some(request),
        received: Some(received),
        claimed_key,
        replay: None,
    };
    // On a task of its own: a caller who hangs up drops this handler, not the execution, which
    // keeps the room its body takes until it ends.
    let report = state
        .engine
        .execute_call_detached(hot, Trigger::Catch, call_details, reservation)
        .report()
        .await?;
    Ok(match report.reply {
        Ok(reply) => reply_response(reply, &report.record.id),
        Err(refusal) => refusal_response(&refusal, &report.record.id),
    })
}

/// Queues an asynchronous call and answers `202`; a call with an idempotency key keeps that
/// answer as the key's response, so a repeat is answered the same `202` and queues nothing.
async fn queue_call(
    state: &AppState,
    hot: &HotWorkflow,
    request: QueuedRequest,
    claimed_key: Option<&ClaimedKey>,
) -> Result<Response, ApiError> {
    let Some(accepted) = state
        .engine
        .enqueue_async(hot, request, claimed_key)
        .await?
    else {
        return Err(async_calls::queue_full());
    };
    let acknowledgement = async_calls::acknowledgement(&accepted);
    if let Some(claimed) = claimed_key {
        // The call is queued whatever happens here: answer 202 still. A repeat then waits as
        // for a running call, and is answered 409 until the key expires.
        if let Err(error) = state
            .engine
            .acknowledge_delivery(hot, claimed, &acknowledgement)
            .await
        {
            tracing::warn!(%error, key = %claimed.key, "the 202 of a queued call could not be kept for its idempotency key");
        }
    }
    Ok(reply_response(acknowledgement, &accepted.execution_id))
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

/// How long a call refused for lack of room in the bodies' budget is told to wait.
const BODY_BUDGET_RETRY_AFTER: &str = "1";

fn body_budget_exhausted(error: crate::conn::budget::BudgetExhausted) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "body_budget_exhausted",
        format!("{error}; retry shortly"),
    )
    .header(header::RETRY_AFTER, BODY_BUDGET_RETRY_AFTER)
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the request body is larger than the {limit}-byte limit"),
    )
}

/// The whole body, at most `limit` bytes, in one buffer allocated for the `expected` size
/// (the declared length). Beyond `limit`, `413`, and `slot` keeps the unread rest of the body (to
/// be drained); a client that stops sending gets `408`. A body read to its end or that failed
/// leaves `slot` empty.
async fn read_body(
    slot: &mut Option<Body>,
    limit: usize,
    expected: usize,
) -> Result<Bytes, ApiError> {
    let Some(mut body) = slot.take() else {
        return Ok(Bytes::new());
    };
    let mut buffer = BytesMut::with_capacity(expected.min(limit));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(body_read_error)?;
        if let Ok(data) = frame.into_data() {
            if buffer.len() + data.len() > limit {
                *slot = Some(body);
                return Err(too_large(limit));
            }
            buffer.extend_from_slice(&data);
        }
    }
    Ok(buffer.freeze())
}

fn body_read_error(error: axum::Error) -> ApiError {
    if BodyReadTimeout::is_cause_of(&error) {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_read_timeout",
            format!("{error}: the request body must keep coming"),
        )
        .header(header::CONNECTION, "close")
    } else {
        ApiError::bad_request(format!("the request body could not be read: {error}"))
    }
}

/// The HTTP response for an execution's reply, with `X-Execution-Id`. A `503` the function
/// returned is its own and sent as it is (no `Retry-After` added).
///
/// Header values are sent as Latin-1 bytes, not UTF-8: the core allows characters up to U+00FF
/// in them, and `José` is sent as `Jos\xE9`, as Python's HTTP servers do.
pub fn reply_response(reply: Reply, execution_id: &str) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
    let mut response = (status, reply.body).into_response();
    let headers = response.headers_mut();
    headers.remove(header::CONTENT_TYPE);
    for (name, value) in reply.headers {
        // The core already checked names and values; a pair HTTP still refuses is dropped.
        let Some(latin1) = latin1_bytes(&value) else {
            continue;
        };
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(&latin1),
        ) {
            headers.append(name, value);
        }
    }
    set_execution_id(headers, execution_id);
    response
}

/// The answer to a call refused before running (CONTRACT.md §7): the refusal's status with
/// `Retry-After` and `X-Execution-Id`, and `{"status", "execution_id", "error": {"code",
/// "message"}}`.
pub fn refusal_response(refusal: &Refusal, execution_id: &str) -> Response {
    let body = json!({
        "status": refusal.status_word(),
        "execution_id": execution_id,
        "error": {"code": refusal.code(), "message": refusal.to_string()},
    });
    let mut response = (refused_status(), axum::Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::RETRY_AFTER, retry_after(refusal));
    set_execution_id(headers, execution_id);
    response
}

pub(crate) fn set_execution_id(headers: &mut HeaderMap, execution_id: &str) {
    if let Ok(value) = HeaderValue::from_str(execution_id) {
        headers.insert(HeaderName::from_static(EXECUTION_ID_HEADER), value);
    }
}

/// `text` as Latin-1 bytes; `None` when a character is beyond U+00FF.
fn latin1_bytes(text: &str) -> Option<Vec<u8>> {
    text.chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, headers: &[(&str, &str)]) -> Reply {
        Reply {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: b"body".to_vec(),
        }
    }

    fn values<'a>(response: &'a Response, name: &str) -> Vec<&'a [u8]> {
        response
            .headers()
            .get_all(name)
            .iter()
            .map(HeaderValue::as_bytes)
            .collect()
    }

    fn chunked(chunks: &[&'static [u8]]) -> Body {
        let chunks: Vec<Result<Bytes, std::convert::Infallible>> =
            chunks.iter().map(|c| Ok(Bytes::from_static(c))).collect();
        Body::from_stream(futures::stream::iter(chunks))
    }

    #[tokio::test]
    async fn body_within_the_limit_is_read_whole() {
        let mut slot = Some(chunked(&[b"ab", b"cd"]));
        assert_eq!(read_body(&mut slot, 4, 4).await.unwrap(), &b"abcd"[..]);
        assert!(slot.is_none());
    }

    #[tokio::test]
    async fn body_over_the_limit_is_413_and_its_rest_kept_for_draining() {
        let mut slot = Some(chunked(&[b"ab", b"cd", b"ef"]));
        let error = read_body(&mut slot, 3, 3).await.unwrap_err();
        assert_eq!(error.status, StatusCode::PAYLOAD_TOO_LARGE);
        let rest = slot.expect("the unread rest").collect().await.unwrap();
        assert_eq!(rest.to_bytes(), &b"ef"[..]);
    }

    #[test]
    fn latin1_header_value_is_sent_as_latin1_bytes() {
        let response = reply_response(reply(200, &[("X-Name", "José ÿ")]), "e1");
        assert_eq!(values(&response, "x-name"), [b"Jos\xe9 \xff"]);
    }

    #[test]
    fn header_value_beyond_latin1_is_dropped() {
        let response = reply_response(reply(200, &[("X-A", "✓"), ("X-B", "ok")]), "e1");
        assert!(values(&response, "x-a").is_empty());
        assert_eq!(values(&response, "x-b"), [b"ok"]);
    }

    #[test]
    fn returned_503_keeps_the_function_s_retry_after() {
        let response = reply_response(reply(503, &[("Retry-After", "120")]), "e1");
        assert_eq!(values(&response, "retry-after"), [b"120"]);
    }

    #[test]
    fn returned_503_gets_no_retry_after_added() {
        let response = reply_response(reply(503, &[]), "e1");
        assert!(values(&response, "retry-after").is_empty());
    }

    #[test]
    fn refused_call_gets_503_with_retry_after_and_its_execution_id() {
        let response = refusal_response(&Refusal::Paused, "e1");
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(values(&response, "retry-after"), [b"1"]);
        assert_eq!(values(&response, EXECUTION_ID_HEADER), [b"e1"]);
    }

    #[test]
    fn execution_id_replaces_one_the_function_gave() {
        let response = reply_response(reply(200, &[("X-Execution-Id", "forged")]), "e1");
        assert_eq!(values(&response, EXECUTION_ID_HEADER), [b"e1"]);
    }

    #[test]
    fn only_the_reply_s_content_type_is_sent() {
        let response = reply_response(reply(200, &[("content-type", "text/csv")]), "e1");
        assert_eq!(values(&response, "content-type"), [b"text/csv"]);
    }
}
