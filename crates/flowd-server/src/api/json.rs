//! A JSON body extractor whose failures are API errors: `400` for a body that is not JSON,
//! `422` for JSON of the wrong shape (naming the field).

use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Largest API request body (code, settings).
pub const MAX_API_BODY: usize = 8 << 20;

pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let body = axum::body::to_bytes(request.into_body(), MAX_API_BODY)
            .await
            .map_err(|_| {
                ApiError::new(
                    axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("the request body is larger than {MAX_API_BODY} bytes"),
                )
            })?;
        parse(&body).map(ApiJson)
    }
}

/// Parses an API body, empty meaning `{}`.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        match inner.classify() {
            // Name the field at fault: `env.A: invalid type: integer `1`, expected a string`.
            serde_json::error::Category::Data if path != "." => {
                ApiError::invalid(format!("invalid request: {path}: {inner}"))
            }
            serde_json::error::Category::Data => {
                ApiError::invalid(format!("invalid request: {inner}"))
            }
            _ => ApiError::bad_request(format!("the body is not valid JSON: {inner}")),
        }
    })?;
    deserializer
        .end()
        .map_err(|error| ApiError::bad_request(format!("the body is not valid JSON: {error}")))?;
    Ok(value)
}
