//! The HTTP side of signed and idempotent deliveries (CONTRACT.md §2): the idempotency key a
//! call carries, the digest its repeats are compared by, and the answers to a refused signature
//! and to a repeated key.

use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use flowd_engine::hot::HotWorkflow;
use flowd_engine::idempotency::{DEFAULT_IDEMPOTENCY_HEADER, MAX_KEY_LENGTH};
use flowd_engine::signed::{SignatureRefused, UNVERIFIED_STATUS};
use flowd_engine::Reply;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::hook::{reply_response, set_execution_id};

/// Marks the answer to a repeated delivery: the stored response of its first execution.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// How long a repeat that found its first delivery still running is told to wait.
const IN_USE_RETRY_AFTER: &str = "1";

/// The idempotency key of a call of `hot`: the value of its `idempotency_header`, else of
/// `Idempotency-Key`; `None` without one. A key that is not 1 to 255 visible ASCII characters is
/// refused (`400`).
pub fn idempotency_key<'a>(
    hot: &HotWorkflow,
    headers: &'a HeaderMap,
) -> Result<Option<&'a str>, ApiError> {
    let name = hot
        .record
        .idempotency_header
        .as_deref()
        .unwrap_or(DEFAULT_IDEMPOTENCY_HEADER);
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|key| !key.is_empty() && key.len() <= MAX_KEY_LENGTH)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_idempotency_key",
                format!("the {name} header must be 1 to {MAX_KEY_LENGTH} visible ASCII characters"),
            )
        })?;
    Ok(Some(key))
}

/// What a repeat of a call must match: the SHA-256 of its query string and body.
pub fn request_digest(query: Option<&str>, body: &[u8]) -> String {
    let mut digest = Sha256::new();
    digest.update(query.unwrap_or_default().as_bytes());
    digest.update([0u8]);
    digest.update(body);
    hex::encode(digest.finalize())
}

/// The answer to a repeat of a key whose first execution ended: its stored response, with its
/// execution id and [`REPLAYED_HEADER`].
pub fn replayed_response(reply: Reply, execution_id: &str) -> Response {
    let mut response = reply_response(reply, execution_id);
    response.headers_mut().insert(
        HeaderName::from_static(REPLAYED_HEADER),
        HeaderValue::from_static("true"),
    );
    response
}

/// The answer to a key that came before with another request (`422`).
pub fn key_reused(first_execution_id: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
        "this idempotency key came before with another request (query string or body): \
         a new request needs a new key",
    )
    .with("execution_id", json!(first_execution_id))
}

/// The answer to a repeat whose first execution still ran when the wait ended (`409`).
pub fn key_in_use(first_execution_id: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "idempotency_key_in_use",
        "the first request with this idempotency key is still running: retry shortly for its response",
    )
    .with("execution_id", json!(first_execution_id))
    .header(header::RETRY_AFTER, IN_USE_RETRY_AFTER)
}

/// The answer to a call whose signature was refused: `401`, with the execution that records it.
pub fn unverified_response(refused: &SignatureRefused, execution_id: &str) -> Response {
    let body = json!({
        "status": "unauthorized",
        "execution_id": execution_id,
        "error": {"code": "signature_invalid", "message": refused.to_string()},
    });
    let status = StatusCode::from_u16(UNVERIFIED_STATUS).unwrap_or(StatusCode::UNAUTHORIZED);
    let mut response = (status, axum::Json(body)).into_response();
    set_execution_id(response.headers_mut(), execution_id);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_tells_bodies_apart() {
        assert_ne!(request_digest(None, b"a"), request_digest(None, b"b"));
    }

    #[test]
    fn digest_tells_query_from_body_apart() {
        assert_ne!(request_digest(Some("a"), b""), request_digest(None, b"a"));
    }

    #[test]
    fn digest_of_the_same_request_is_the_same() {
        assert_eq!(
            request_digest(Some("x=1"), b"{}"),
            request_digest(Some("x=1"), b"{}")
        );
    }
}
