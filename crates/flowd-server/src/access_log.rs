//! One access-log line per request (target `flowd::access`): method, path with a hook URL's
//! token replaced by `…`, status, duration and execution id; and the request's span (`http`),
//! which the execution's span (`execution`: `execution_id`, `workflow`, `version`) and the
//! runtime's nest in, so every line an execution logs says which request it served.
//!
//! The query string is left out: it is the caller's, and may carry anything.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response};
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{DefaultOnBodyChunk, DefaultOnEos, MakeSpan, OnResponse, TraceLayer};
use tracing::Span;

use crate::hook::EXECUTION_ID_HEADER;

/// The layer that gives every request its span and its access-log line.
pub fn layer() -> TraceLayer<
    SharedClassifier<ServerErrorsAsFailures>,
    RequestSpan,
    (),
    LogLine,
    DefaultOnBodyChunk,
    DefaultOnEos,
    (),
> {
    TraceLayer::new_for_http()
        .make_span_with(RequestSpan)
        .on_request(())
        .on_response(LogLine)
        // A 5xx is logged once, by the access-log line; the connection's own errors are the
        // client's (see `conn`).
        .on_failure(())
}

/// The span of a request: `http{method, path, execution_id}`.
#[derive(Debug, Clone, Copy)]
pub struct RequestSpan;

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, request: &Request<B>) -> Span {
        tracing::info_span!(
            "http",
            method = %request.method(),
            path = %redacted_path(request.uri().path()),
            execution_id = tracing::field::Empty,
        )
    }
}

/// The access-log line, written when the response's head is ready.
#[derive(Debug, Clone, Copy)]
pub struct LogLine;

impl OnResponse<Body> for LogLine {
    fn on_response(self, response: &Response<Body>, latency: Duration, span: &Span) {
        let execution_id = response
            .headers()
            .get(EXECUTION_ID_HEADER)
            .and_then(|value| value.to_str().ok());
        if let Some(id) = execution_id {
            span.record("execution_id", id);
        }
        tracing::info!(
            target: "flowd::access",
            status = response.status().as_u16(),
            duration_ms = latency.as_secs_f64() * 1000.0,
            execution_id = execution_id.unwrap_or(""),
            "request"
        );
    }
}

/// `path` as the log shows it: a hook URL's token (`/teams/{team}/{workflow}/{runtime}/{token}`,
/// and anything after it) becomes `…` — also when the path begins with extra slashes.
pub fn redacted_path(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').collect();
    let Some(teams) = segments.iter().position(|segment| !segment.is_empty()) else {
        return path.to_string();
    };
    if segments[teams] != "teams" || segments.len() <= teams + 4 {
        return path.to_string();
    }
    format!("{}/…", segments[..teams + 4].join("/"))
}

#[cfg(test)]
mod tests {
    use super::redacted_path;

    #[test]
    fn a_hook_url_s_token_is_replaced() {
        assert_eq!(
            redacted_path("/teams/default/hello/python3.11/s3cr3t-token"),
            "/teams/default/hello/python3.11/…"
        );
    }

    #[test]
    fn what_follows_a_hook_token_goes_with_it() {
        assert_eq!(
            redacted_path("/teams/default/hello/python3.11/s3cr3t/more"),
            "/teams/default/hello/python3.11/…"
        );
    }

    #[test]
    fn a_token_after_extra_slashes_is_replaced_too() {
        assert_eq!(
            redacted_path("//teams/default/hello/python3.11/s3cr3t"),
            "//teams/default/hello/python3.11/…"
        );
    }

    #[test]
    fn other_paths_are_kept_as_they_are() {
        for path in ["/api/v1/workflows", "/teams/default", "/healthz", "/"] {
            assert_eq!(redacted_path(path), path);
        }
    }
}
