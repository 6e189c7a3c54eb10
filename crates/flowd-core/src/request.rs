//! How an HTTP request to a hook URL becomes the workflow's `_request` dict (CONTRACT.md §2).
//!
//! `_request` merges, at top level, the query string (lowest precedence), the headers, and the
//! parsed body (highest precedence). Header names are canonicalised (`content-type` →
//! `Content-Type`), a header sent several times is joined with `", "`.

use crate::PyValue;

/// The media types a hook URL accepts.
pub const ACCEPTED_CONTENT_TYPES: [&str; 3] = [
    "application/json",
    "multipart/form-data",
    "application/x-www-form-urlencoded",
];

/// The parts of an HTTP request that `_request` is built from. The caller has already checked the
/// method and the body size.
#[derive(Debug, Clone, Default)]
pub struct IncomingRequest<'a> {
    /// Header names as received (any case) with their raw values, in the order received; a header
    /// sent several times appears several times.
    pub headers: Vec<(&'a str, &'a [u8])>,
    /// The raw query string, without the leading `?`.
    pub query: Option<&'a str>,
    pub body: &'a [u8],
}

/// Why a request cannot be turned into `_request`. The workflow is not run.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RequestError {
    /// Missing content type, or one not in [`ACCEPTED_CONTENT_TYPES`] → `415`.
    #[error("unsupported content type {0:?}: send one of application/json, multipart/form-data, application/x-www-form-urlencoded")]
    UnsupportedMediaType(Option<String>),
    /// The body (or query string) cannot be parsed → `400`. The message says what is wrong,
    /// e.g. "invalid JSON body: expected value at line 1 column 2".
    #[error("{0}")]
    Malformed(String),
}

/// Builds `_request` (a `PyValue::Dict`) from a request.
///
/// Rules (see CONTRACT.md §2 "`_request`"):
/// - content type: the media type (before `;`) matched case-insensitively against
///   [`ACCEPTED_CONTENT_TYPES`], parameters allowed; otherwise [`RequestError::UnsupportedMediaType`].
/// - headers: canonical names ([`canonical_header_name`]); repeated headers joined with `", "`;
///   values decoded as UTF-8, or Latin-1 when not valid UTF-8.
/// - query string: fields as for urlencoded forms (a `str`, or a `list` of `str` when repeated);
///   invalid percent-encoding or invalid UTF-8 after decoding → `Malformed`.
/// - `application/json`: an empty body is `{}`; an object's keys merge into `_request`; any other
///   top-level value goes under `"body"`; invalid JSON → `Malformed`. Numbers: integers that fit
///   i64 are `Int`, larger integers `BigInt`, others `Float`.
/// - `application/x-www-form-urlencoded`: `+` is a space; each field a `str`, a repeated field a
///   `list` of `str` in order; bad percent-encoding (`%` not followed by two hex digits) or invalid
///   UTF-8 → `Malformed`.
/// - `multipart/form-data`: the `boundary` parameter is required (`Malformed` without it); a part
///   without a filename is a `str` field (invalid UTF-8 → `Malformed`), a part with a filename is a
///   dict `{"filename": str, "content_type": str, "content": bytes}` (`content_type` defaults to
///   `application/octet-stream`); repeated names become lists; a broken body → `Malformed`.
/// - precedence on a name clash: body > headers > query. A key keeps the position where it was
///   first inserted.
pub fn build_request(request: &IncomingRequest<'_>) -> Result<PyValue, RequestError> {
    let _ = request;
    todo!()
}

/// `content-type` → `Content-Type`, `x-hub-signature-256` → `X-Hub-Signature-256`: the first
/// letter of each `-`-separated part upper case, the rest lower case.
pub fn canonical_header_name(name: &str) -> String {
    let _ = name;
    todo!()
}
