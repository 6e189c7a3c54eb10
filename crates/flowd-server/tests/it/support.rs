//! The test harness: a real flowd (store, Python runtime, engine, HTTP) started in-process on port
//! 0 with a fresh data dir, and typed helpers to call it; waiting for a condition; the server's
//! log under `TEST_LOG`.

use std::future::Future;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use flowd_server::{AppState, Config};
use serde_json::{json, Value};

pub const ADMIN_KEY: &str = "test-admin-key-0123456789";

/// Python environments are shared by every test (built once, under a file lock), in a directory
/// the sandbox user can reach.
pub fn shared_runtime_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("flowd-test-runtimes-{}", nix_uid()))
}

fn nix_uid() -> u32 {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap_or(0)
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub state: Arc<AppState>,
    pub data_dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// Starts flowd with the default configuration.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts flowd after `configure` adjusted its configuration.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    init_test_log();
    let data_dir = tempfile::Builder::new()
        .prefix("flowd-test-")
        .tempdir_in(std::env::temp_dir())
        .expect("temp dir");
    let mut config = Config::new(data_dir.path().join("data"));
    config.runtime_dir = Some(shared_runtime_dir());
    config.admin_api_key = Some(ADMIN_KEY.to_string());
    config.shutdown_grace = Duration::from_secs(5);
    configure(&mut config);
    let state = flowd_server::start(&config).await.expect("flowd starts");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = format!("http://{}", listener.local_addr().expect("address"));
    let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(flowd_server::serve(listener, state.clone(), async move {
        let _ = stop.await;
    }));
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    TestApp {
        address,
        client,
        state,
        data_dir,
        shutdown: Some(shutdown),
        server: Some(server),
    }
}

/// A trivial catch workflow's code, with `body` as the function body.
pub fn catch_code(body: &str) -> String {
    format!("def workflow(_request, settings):\n{}\n", indent(body))
}

/// A pull workflow's code, with `body` as the function body.
pub fn pull_code(body: &str) -> String {
    format!("def workflow(settings):\n{}\n", indent(body))
}

fn indent(body: &str) -> String {
    body.lines()
        .map(|line| format!("    {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// An authenticated API request.
    pub fn api(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(&format!("/api/v1{path}")))
            .bearer_auth(ADMIN_KEY)
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let response = self
            .api(reqwest::Method::GET, path)
            .send()
            .await
            .expect("request");
        assert!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
        response.json().await.expect("json")
    }

    /// Creates a workflow; panics unless the API answers 201.
    pub async fn create_workflow(&self, body: Value) -> Value {
        let response = self
            .api(reqwest::Method::POST, "/workflows")
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = response.status();
        let value: Value = response.json().await.expect("json");
        assert_eq!(status, 201, "create workflow: {value}");
        value
    }

    /// Creates a catch workflow named `name` with `code`.
    pub async fn create_catch(&self, name: &str, code: &str) -> Value {
        self.create_workflow(json!({"name": name, "mode": "catch", "code": code}))
            .await
    }

    /// POSTs JSON to a workflow's hook URL.
    pub async fn call_hook_json(&self, workflow: &Value, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(hook_path(workflow)))
            .json(body)
            .send()
            .await
            .expect("hook request")
    }

    pub async fn execution(&self, id: &str) -> Value {
        self.get_json(&format!("/executions/{id}")).await
    }

    pub async fn executions(&self, workflow: &Value) -> Vec<Value> {
        let id = workflow["id"].as_str().expect("id");
        self.get_json(&format!("/workflows/{id}/executions")).await["executions"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub async fn settings(&self, workflow: &Value) -> Value {
        let id = workflow["id"].as_str().expect("id");
        self.get_json(&format!("/workflows/{id}/settings")).await["settings"].clone()
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

pub fn hook_path(workflow: &Value) -> &str {
    workflow["hook_url"].as_str().expect("hook_url")
}

/// The execution id a hook response carries.
pub fn execution_id(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("x-execution-id")
        .expect("X-Execution-Id")
        .to_str()
        .expect("ascii")
        .to_string()
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

// --- Hook helpers: requests built by hand, raw HTTP, workflow changes. -------------------------

impl TestApp {
    /// A POST to a workflow's hook URL, to finish with a body and headers.
    pub fn hook(&self, workflow: &Value) -> reqwest::RequestBuilder {
        self.client.post(self.url(hook_path(workflow)))
    }

    /// `PATCH /workflows/{id}` with `body`; panics unless the API answers 200.
    pub async fn patch_workflow(&self, workflow: &Value, body: Value) -> Value {
        let id = workflow["id"].as_str().expect("id");
        let response = self
            .api(reqwest::Method::PATCH, &format!("/workflows/{id}"))
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = response.status();
        let value: Value = response.json().await.expect("json");
        assert_eq!(status, 200, "patch workflow: {value}");
        value
    }

    /// Sends `request` as is over a new TCP connection and reads one response. For what an
    /// HTTP client will not send: chunked bodies, raw bytes, exact header sets.
    pub async fn raw_request(&self, request: &[u8]) -> RawResponse {
        use tokio::io::AsyncWriteExt;
        let address = self.address.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(address)
            .await
            .expect("connect");
        // The server may answer (and stop reading) before the whole request is sent.
        let _ = stream.write_all(request).await;
        let _ = stream.flush().await;
        tokio::time::timeout(Duration::from_secs(60), read_raw_response(&mut stream))
            .await
            .expect("a response within 60 s")
    }
}

/// An HTTP/1.1 response as read off the wire.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    /// Names lower-cased, values as sent, in order.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// Every value of header `name` (any case).
    pub fn header_all(&self, name: &str) -> Vec<&[u8]> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
            .collect()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

pub async fn read_raw_response(stream: &mut tokio::net::TcpStream) -> RawResponse {
    use tokio::io::AsyncReadExt;
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let mut eof = false;
    // Reads more into `buffer`; false at the end of the stream.
    macro_rules! fill {
        () => {{
            if eof {
                false
            } else {
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => {
                        eof = true;
                        false
                    }
                    Ok(n) => {
                        buffer.extend_from_slice(&chunk[..n]);
                        true
                    }
                }
            }
        }};
    }
    let head_end = loop {
        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        assert!(
            fill!(),
            "connection closed before a response head: {:?}",
            String::from_utf8_lossy(&buffer)
        );
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    // Header values may hold Latin-1 bytes: take them from the buffer, not the lossy string.
    let mut headers = Vec::new();
    let mut offset = buffer[..head_end]
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|i| i + 2)
        .unwrap_or(head_end);
    while offset < head_end {
        let end = buffer[offset..head_end]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map(|i| offset + i)
            .unwrap_or(head_end);
        let line = &buffer[offset..end];
        let colon = line.iter().position(|&b| b == b':').expect("header colon");
        let name = String::from_utf8_lossy(&line[..colon]).to_ascii_lowercase();
        let value = line[colon + 1..].trim_ascii().to_vec();
        headers.push((name, value));
        offset = end + 2;
    }
    let mut rest = buffer.split_off(head_end + 4);
    buffer = Vec::new();
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| String::from_utf8_lossy(v).to_ascii_lowercase())
    };
    let body = if status == 204 || status == 304 || (100..200).contains(&status) {
        Vec::new()
    } else if find("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(i) = rest.windows(2).position(|w| w == b"\r\n") {
                    break i;
                }
                assert!(fill!(), "connection closed inside a chunked body");
                rest.append(&mut buffer);
            };
            let size_text = String::from_utf8_lossy(&rest[..line_end]).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
                .expect("chunk size");
            while rest.len() < line_end + 2 + size + 2 {
                assert!(fill!(), "connection closed inside a chunk");
                rest.append(&mut buffer);
            }
            body.extend_from_slice(&rest[line_end + 2..line_end + 2 + size]);
            rest.drain(..line_end + 2 + size + 2);
            if size == 0 {
                break;
            }
        }
        body
    } else if let Some(length) = find("content-length") {
        let length: usize = length.trim().parse().expect("content-length");
        while rest.len() < length {
            assert!(fill!(), "connection closed inside the body");
            rest.append(&mut buffer);
        }
        rest.truncate(length);
        rest
    } else {
        while fill!() {
            rest.append(&mut buffer);
        }
        rest
    };
    RawResponse {
        status,
        headers,
        body,
    }
}

impl TestApp {
    /// An execution's record once it is in the store: records of refused executions (paused,
    /// saturated) are written after the response, not before.
    pub async fn wait_for_execution(&self, id: &str) -> Value {
        let what = format!("execution {id} is recorded");
        eventually(Duration::from_secs(10), &what, || async {
            let response = self
                .api(reqwest::Method::GET, &format!("/executions/{id}"))
                .send()
                .await
                .expect("request");
            if response.status().is_success() {
                return Some(response.json().await.expect("json"));
            }
            assert_eq!(response.status(), 404, "GET /executions/{id}");
            None
        })
        .await
    }

    /// Waits until `count` executions hold a slot of the server.
    pub async fn wait_in_flight(&self, count: usize) {
        let what = format!("{count} executions in flight");
        eventually(Duration::from_secs(10), &what, || async {
            (self.state.engine.executions_in_flight() >= count).then_some(())
        })
        .await
    }
}

/// Polls `check` until it answers `Some` and returns that; fails the test, naming `what`, when
/// `within` has passed first.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// With `TEST_LOG` set (`1` for `info`, or a filter such as `flowd_engine=debug`), the server's
/// log goes to the test's output: shown for a failing test, or for all with `--nocapture`.
pub fn init_test_log() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let Ok(filter) = std::env::var("TEST_LOG") else {
            return;
        };
        let filter = if filter == "1" { "info".into() } else { filter };
        // Another subscriber already set (none is, in these tests) keeps its place.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    });
}
