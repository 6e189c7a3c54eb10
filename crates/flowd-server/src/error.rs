//! The one shape of every API error, `{"error": {"code", "message", ...}}`, and the table from
//! engine errors and refusals to HTTP statuses.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use flowd_core::response::REFUSED_STATUS;
use flowd_engine::{EngineError, Refusal};
use serde_json::{json, Value};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Extra fields of the error object (`line`, `column`, `accepted`, …).
    pub details: Vec<(&'static str, Value)>,
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            details: Vec::new(),
            headers: Vec::new(),
        }
    }

    pub fn with(mut self, key: &'static str, value: Value) -> ApiError {
        self.details.push((key, value));
        self
    }

    pub fn header(self, name: header::HeaderName, value: &'static str) -> ApiError {
        self.header_value(name, HeaderValue::from_static(value))
    }

    pub fn header_value(mut self, name: header::HeaderName, value: HeaderValue) -> ApiError {
        self.headers.push((name, value));
        self
    }

    pub fn not_found(what: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{} not found", what.into()),
        )
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid API key is required: send the header Authorization: Bearer <key>",
        )
        .header(header::WWW_AUTHENTICATE, "Bearer")
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", message)
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> ApiError {
        let code = error.code();
        match error {
            EngineError::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, code, error.to_string())
            }
            EngineError::Conflict(_) => {
                ApiError::new(StatusCode::CONFLICT, code, error.to_string())
            }
            EngineError::Forbidden(message) => ApiError::new(StatusCode::FORBIDDEN, code, message),
            EngineError::InvalidCode {
                message,
                line,
                column,
            } => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
                .with("line", json!(line))
                .with("column", json!(column)),
            EngineError::Invalid(message) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
            }
            EngineError::Busy(message) => ApiError::new(StatusCode::CONFLICT, code, message),
            EngineError::NoStoredRequest(why) => {
                ApiError::new(StatusCode::CONFLICT, code, why.to_string())
                    .with("reason", json!(why.reason()))
            }
            EngineError::Runtime(_) => {
                tracing::error!(%error, "runtime error");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, error.to_string())
            }
            EngineError::Store(ref store) if store.is_unavailable() => {
                tracing::error!(error = %store, "the store is unavailable");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, error.to_string())
                    .header(header::RETRY_AFTER, "1")
            }
            EngineError::Store(_)
            | EngineError::CorruptData { .. }
            | EngineError::AdminKeyFile { .. } => {
                tracing::error!(%error, "internal error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    code,
                    "internal error; see the server log",
                )
            }
        }
    }
}

/// A refused execution: the status of every refusal, with `Retry-After`.
impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> ApiError {
        ApiError::new(refused_status(), refusal.code(), refusal.to_string())
            .header_value(header::RETRY_AFTER, retry_after(&refusal))
    }
}

/// The status that answers a call refused before running.
pub fn refused_status() -> StatusCode {
    StatusCode::from_u16(REFUSED_STATUS).unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
}

/// `Retry-After` for a refusal: whole seconds, rounded up, at least 1.
pub fn retry_after(refusal: &Refusal) -> HeaderValue {
    let wait = refusal.retry_after();
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    HeaderValue::from(seconds.max(1))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = serde_json::Map::new();
        error.insert("code".into(), json!(self.code));
        error.insert("message".into(), json!(self.message));
        for (key, value) in self.details {
            error.insert(key.into(), value);
        }
        let mut response = (self.status, axum::Json(json!({ "error": error }))).into_response();
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use flowd_store::StoreError;

    use super::*;
    use flowd_engine::Saturation;

    fn io_error() -> flowd_store::BoxError {
        Box::new(std::io::Error::other("No space left on device"))
    }

    #[test]
    fn an_unavailable_store_is_503_store_unavailable_with_retry_after() {
        let error = ApiError::from(EngineError::from(StoreError::Unavailable(io_error())));
        assert_eq!(error.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(error.code, "store_unavailable");
        let retry_after = error
            .headers
            .iter()
            .find(|(name, _)| name == header::RETRY_AFTER)
            .map(|(_, value)| value.clone());
        assert_eq!(retry_after, Some(HeaderValue::from_static("1")));
    }

    #[test]
    fn corrupt_stored_data_is_500_internal_without_its_cause() {
        let corrupt = StoreError::Corrupt("workflows.secret_keys is not valid JSON".into());
        let error = ApiError::from(EngineError::from(corrupt));
        assert_eq!(error.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(error.code, "internal");
        assert!(!error.message.contains("secret_keys"), "{}", error.message);
    }

    #[test]
    fn stored_data_the_engine_cannot_use_is_500_internal() {
        let error = ApiError::from(EngineError::CorruptData {
            what: "the stored requirements of version 1 of workflow w are invalid".into(),
            source: io_error(),
        });
        assert_eq!(error.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(error.code, "internal");
    }

    #[test]
    fn a_failing_backend_is_500_internal() {
        let error = ApiError::from(EngineError::from(StoreError::Backend(io_error())));
        assert_eq!(error.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(error.code, "internal");
    }

    #[test]
    fn a_runtime_failure_stays_503_runtime_unavailable() {
        let error = ApiError::from(EngineError::Runtime("no python".into()));
        assert_eq!(error.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(error.code, "runtime_unavailable");
    }

    #[test]
    fn a_refusal_is_503_with_retry_after_and_its_code() {
        let error = ApiError::from(Refusal::Saturated(Saturation::Server));
        assert_eq!(error.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(error.code, "saturated");
        assert_eq!(
            error.message,
            "the server's execution slots and queue were full"
        );
        assert_eq!(
            error.headers,
            [(header::RETRY_AFTER, HeaderValue::from_static("1"))]
        );
    }
}
