//! Helpers of the REST API tests: plain calls that answer status, headers and JSON body, so that
//! a test can look at refusals as closely as at successes.

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::*;

/// An API answer, read in full.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The body as JSON (`Value::Null` when empty, a string holding the text when not JSON).
    pub body: Value,
}

impl Answer {
    async fn read(response: reqwest::Response) -> Answer {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    /// Asserts the API's error shape `{"error": {"code", "message"}}` with this status and code.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "answer: {}", self.body);
        assert_eq!(self.body["error"]["code"], code, "answer: {}", self.body);
        assert!(
            self.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "the error has a message: {}",
            self.body
        );
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// An authenticated API call with an optional JSON body.
pub async fn call(app: &TestApp, method: Method, path: &str, body: Option<&Value>) -> Answer {
    let mut request = app.api(method, path);
    if let Some(body) = body {
        request = request.json(body);
    }
    Answer::read(request.send().await.expect("request")).await
}

/// An authenticated API call with `body` sent as it is, as `application/json`.
pub async fn call_raw(app: &TestApp, method: Method, path: &str, body: &str) -> Answer {
    let response = app
        .api(method, path)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("request");
    Answer::read(response).await
}

/// A POST of a JSON body to a workflow's hook URL, read in full.
pub async fn hook_answer(app: &TestApp, workflow: &Value, body: &Value) -> Answer {
    Answer::read(app.call_hook_json(workflow, body).await).await
}

pub fn id(value: &Value) -> &str {
    value["id"].as_str().expect("id")
}

/// Creates a pull workflow named `name` with `code`, on a schedule that will not fire during a
/// test (runs are started by hand).
pub async fn create_pull(app: &TestApp, name: &str, code: &str) -> Value {
    app.create_workflow(json!({
        "name": name, "mode": "pull", "code": code, "schedule": {"every": "24h"},
    }))
    .await
}

/// `POST /workflows/{id}/runs` with `body`; panics unless the API answers 200.
pub async fn run_now(app: &TestApp, workflow: &Value, body: &Value) -> Value {
    let answer = call(
        app,
        Method::POST,
        &format!("/workflows/{}/runs", id(workflow)),
        Some(body),
    )
    .await;
    assert_eq!(answer.status, 200, "run now: {}", answer.body);
    answer.body
}

/// `PATCH /workflows/{id}`; panics unless the API answers 200.
pub async fn patch_ok(app: &TestApp, workflow: &Value, body: &Value) -> Value {
    let answer = call(
        app,
        Method::PATCH,
        &format!("/workflows/{}", id(workflow)),
        Some(body),
    )
    .await;
    assert_eq!(answer.status, 200, "patch: {}", answer.body);
    answer.body
}

/// Whether `text` is an RFC 3339 time in UTC.
pub fn is_rfc3339_utc(text: &Value) -> bool {
    text.as_str().is_some_and(|text| {
        chrono::DateTime::parse_from_rfc3339(text).is_ok_and(|t| t.offset().local_minus_utc() == 0)
            && (text.ends_with('Z') || text.ends_with("+00:00"))
    })
}
