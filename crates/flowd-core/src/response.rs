//! How a workflow's return value becomes the HTTP response (CONTRACT.md §2 "The HTTP response").

use crate::PyValue;

/// A response decided by the workflow's return value.
#[derive(Debug, Clone, PartialEq)]
pub struct HookResponse {
    pub status: u16,
    /// Header names and values, as the function gave them, minus the server-owned ones;
    /// `Content-Type: text/plain; charset=utf-8` added when the function gave none.
    pub headers: Vec<(String, String)>,
    /// Empty for 204 and 304.
    pub body: String,
}

/// The outcome of mapping a return value.
#[derive(Debug, Clone, PartialEq)]
pub enum ReturnMapping {
    /// The return value is a valid response.
    Custom(HookResponse),
    /// The return value is not a response: the caller gets the default response and the
    /// execution records `warning` — unless the function returned `None`, the common case of a
    /// workflow that does not shape its response, which gives `warning: None`.
    Default { warning: Option<String> },
}

/// Headers the server owns: never taken from the function (compared case-insensitively).
pub const SERVER_OWNED_HEADERS: [&str; 3] = ["content-length", "transfer-encoding", "connection"];

/// Maps a return value (as reduced by the Python runner: only the keys `status_code`, `body` and
/// `headers` of a dict are kept; values that are not plain types arrive as
/// `PyValue::Tuple([Str("<opaque>"), Str(type name)])`, and a return value that is not a dict or
/// `None` arrives as such an opaque tuple too) to the response.
///
/// Valid: a dict with `status_code` an `Int` in 200..=599 (a `Bool` or a `Str` does not count),
/// `body` a `Str`, `headers` absent or a dict of `Str` to `Str` where every name is a valid HTTP
/// token and every value a valid header value (visible ASCII or Latin-1 text, spaces and tabs, no
/// CR/LF/NUL). Anything else → `Default` with a warning that says why, e.g.
/// "the return value was not used: status_code is a bool, not an int in 200-599".
pub fn map_return(ret: &PyValue) -> ReturnMapping {
    let _ = ret;
    todo!()
}

/// The body of the default response: `{"status": "success", "execution_id": "<id>"}`.
pub fn default_success_body(execution_id: &str) -> String {
    serde_json::json!({"status": "success", "execution_id": execution_id}).to_string()
}

/// The body of a failed execution's response: `{"status": <status>, "execution_id", "error"}`
/// where `status` is `error`, `timeout` or `killed`, and `error` only the exception type (never
/// its message).
pub fn failure_body(status: &str, execution_id: &str, error_type: Option<&str>) -> String {
    let mut body = serde_json::json!({"status": status, "execution_id": execution_id});
    if let Some(error_type) = error_type {
        body["error"] = serde_json::Value::String(error_type.to_string());
    }
    body.to_string()
}
