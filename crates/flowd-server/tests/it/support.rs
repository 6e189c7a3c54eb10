//! The test harness: a real flowd (store, Python runtime, engine, HTTP) started in-process on port
//! 0 with a fresh data dir, and typed helpers to call it.

use std::sync::Arc;
use std::time::Duration;

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
