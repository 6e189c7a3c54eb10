//! A small client of flowd's REST API (`/api/v1`): JSON in, JSON out, and errors that read well.

use std::fmt;
use std::time::Duration;

use anyhow::{anyhow, Result};
use reqwest::Method;
use serde_json::Value;

use crate::Global;

/// An error answer of the API: `{"error": {"code", "message", ...}}`.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
    /// For `invalid_code`: where the code is wrong.
    pub line: Option<u64>,
    pub column: Option<u64>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            401 => write!(
                f,
                "the server refused the API key ({}): run `flowd login` again, or check FLOWD_API_KEY",
                self.message
            ),
            _ => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ApiError {}

pub struct Api {
    pub server: String,
    key: String,
    pub http: reqwest::Client,
}

/// An HTTP client with flowd's defaults: a connect timeout, no redirects followed.
pub fn http_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("flowd-cli/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| anyhow!("cannot build the HTTP client: {e}"))
}

impl Api {
    /// A client for the server and key that the flags, the environment or the profile give.
    pub fn new(global: &Global) -> Result<Api> {
        let (server, key) = crate::profile::resolve(global)?;
        Api::with(server, key)
    }

    pub fn with(server: String, key: String) -> Result<Api> {
        Ok(Api {
            server,
            key,
            http: http_client()?,
        })
    }

    /// An absolute URL for a path the server gave (`/teams/...`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.server, path)
    }

    /// Calls `/api/v1{path}`; answers the JSON body (`null` for an empty one).
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value> {
        self.call_within(method, path, body, None).await
    }

    /// [`Api::call`], given up after `timeout` when one is given.
    async fn call_within(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        timeout: Option<Duration>,
    ) -> Result<Value> {
        let url = self.url(&format!("/api/v1{path}"));
        let mut request = self
            .http
            .request(method, &url)
            .bearer_auth(&self.key)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
        let response = request
            .send()
            .await
            .map_err(|e| unreachable(&self.server, &e))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| {
            if e.is_timeout() {
                TimedOut(self.server.clone()).into()
            } else {
                anyhow!("the server's answer could not be read: {}", cause(&e))
            }
        })?;
        if status.is_success() {
            if bytes.is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_slice(&bytes).map_err(|_| {
                anyhow!(
                    "{} answered something that is not JSON: is it a flowd server?",
                    self.server
                )
            });
        }
        Err(api_error(status.as_u16(), &bytes).into())
    }

    pub async fn get(&self, path: &str) -> Result<Value> {
        self.call(Method::GET, path, None).await
    }

    /// A GET for a long poll: `None` when the server has not answered within `timeout`.
    pub async fn get_within(&self, path: &str, timeout: Duration) -> Result<Option<Value>> {
        match self
            .call_within(Method::GET, path, None, Some(timeout))
            .await
        {
            Ok(value) => Ok(Some(value)),
            Err(error) if error.downcast_ref::<TimedOut>().is_some() => Ok(None),
            Err(error) => Err(error),
        }
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value> {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Result<Value> {
        self.call(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Result<Value> {
        self.call(Method::DELETE, path, None).await
    }

    /// Every workflow of the key's team (of every team, for an admin key).
    pub async fn workflows(&self) -> Result<Vec<Value>> {
        let answer = self.get("/workflows").await?;
        Ok(answer["workflows"].as_array().cloned().unwrap_or_default())
    }

    /// The workflow called `name` (`TEAM/NAME` picks a team's), if there is one. An admin key
    /// sees every team: a name that several teams use is an error asking for `TEAM/NAME`.
    pub async fn find_workflow(&self, name: &str) -> Result<Option<Value>> {
        let (team, name) = match name.split_once('/') {
            Some((team, name)) => (Some(team), name),
            None => (None, name),
        };
        let mut found: Vec<Value> = self
            .workflows()
            .await?
            .into_iter()
            .filter(|w| w["name"].as_str() == Some(name))
            .filter(|w| team.is_none_or(|team| w["team"].as_str() == Some(team)))
            .collect();
        if found.len() > 1 {
            let teams: Vec<&str> = found.iter().filter_map(|w| w["team"].as_str()).collect();
            return Err(anyhow!(
                "workflows named {name:?} exist in the teams {}: name one as TEAM/{name}",
                teams.join(", ")
            ));
        }
        Ok(found.pop())
    }

    /// The workflow called `name`; an error naming it otherwise.
    pub async fn workflow(&self, name: &str) -> Result<Value> {
        self.find_workflow(name).await?.ok_or_else(|| {
            anyhow!(
                "no workflow named {name:?} on {} (`flowd ls` lists them)",
                self.server
            )
        })
    }
}

/// A request given up after its time limit.
#[derive(Debug)]
pub struct TimedOut(String);

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the flowd server at {} did not answer in time", self.0)
    }
}

impl std::error::Error for TimedOut {}

/// The error for a server that could not be reached.
pub fn unreachable(server: &str, error: &reqwest::Error) -> anyhow::Error {
    if error.is_timeout() {
        TimedOut(server.to_string()).into()
    } else if error.is_connect() {
        anyhow!(
            "cannot reach the flowd server at {server}: {}",
            cause(error)
        )
    } else {
        anyhow!("the request to {server} failed: {}", cause(error))
    }
}

/// The innermost cause of an HTTP error ("Connection refused (os error 111)").
pub fn cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}

/// Reads an API error body; falls back to the status when it is not flowd's shape.
pub fn api_error(status: u16, body: &[u8]) -> ApiError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let error = parsed.as_ref().map(|v| &v["error"]);
    match error.and_then(|e| e["message"].as_str()) {
        Some(message) => {
            let error = error.expect("checked above");
            ApiError {
                status,
                code: error["code"].as_str().unwrap_or("error").to_string(),
                message: message.to_string(),
                line: error["line"].as_u64(),
                column: error["column"].as_u64(),
            }
        }
        None => ApiError {
            status,
            code: "http_error".into(),
            message: format!(
                "the server answered {status} {}{}",
                reqwest::StatusCode::from_u16(status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or(""),
                match String::from_utf8_lossy(body).trim() {
                    "" => String::new(),
                    text => format!(": {}", crate::ui::truncate(text, 200)),
                }
            ),
            line: None,
            column: None,
        },
    }
}

/// Percent-encodes a path segment (ids are UUIDs, but be safe).
pub fn segment(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The id of a workflow or execution record.
pub fn id(record: &Value) -> Result<String> {
    record["id"]
        .as_str()
        .map(segment)
        .ok_or_else(|| anyhow!("the server's answer has no id"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_are_read() {
        let error = api_error(
            422,
            br#"{"error": {"code": "invalid_code", "message": "SyntaxError: x", "line": 3, "column": 7}}"#,
        );
        assert_eq!(error.code, "invalid_code");
        assert_eq!((error.line, error.column), (Some(3), Some(7)));
        let error = api_error(502, b"Bad gateway");
        assert_eq!(
            error.message,
            "the server answered 502 Bad Gateway: Bad gateway"
        );
    }

    #[test]
    fn a_long_poll_that_gets_no_answer_in_time_is_none() {
        // A server that accepts the connection and never answers.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let server = format!("http://{}", listener.local_addr().unwrap());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let api = Api::with(server, "key".into()).unwrap();
        let answer = runtime
            .block_on(api.get_within("/anything", Duration::from_millis(200)))
            .unwrap();
        assert!(answer.is_none());
        drop(listener);
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(segment("0192-ab_c.d"), "0192-ab_c.d");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
    }
}
