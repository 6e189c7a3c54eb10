//! A cluster of real `flowd serve` processes (the built binary) on one throwaway PostgreSQL
//! database: each node on its own port and data dir, all sharing the admin key, so that a test
//! drives them as a load balancer's clients would.
//!
//! `TEST_LOG=1` (or a filter such as `flowd_engine=debug`) sets the nodes' log filter and prints
//! their logs when the cluster is dropped; a failing test prints them anyway.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use flowd_test_postgres::TestDatabase;
use serde_json::{json, Value};

/// The admin key every node is given (`FLOWD_ADMIN_API_KEY`).
pub const ADMIN_KEY: &str = "cluster-test-admin-key-0123456789";

/// The secret key every node is given (`FLOWD_SECRET_KEY`): nodes sharing a store seal and open
/// its secret values with one key.
pub const SECRET_KEY: &str = "c1d2e3f405162738495a6b7c8d9eaf00112233445566778899aabbccddeeff00";

/// How long a node may take until `/readyz` answers 200 (the first start of all may build the
/// shared Python environment).
const START_TIMEOUT: Duration = Duration::from_secs(600);

/// N `flowd serve` processes on one database; stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Cluster {
    nodes: Vec<Node>,
    database: TestDatabase,
    http: reqwest::Client,
}

/// One `flowd serve` process.
struct Node {
    /// `None` once it was killed (behind a lock so that a test can kill a node while its calls
    /// to the others are going).
    child: Mutex<Option<Child>>,
    url: String,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts `n` nodes on a fresh database, each with `flags` added to its command line: the
    /// first alone (it migrates the schema and creates the admin key), then the others.
    pub async fn start(n: usize, flags: &[&str]) -> Cluster {
        assert!(n >= 1, "a cluster has at least one node");
        let database = flowd_test_postgres::fresh_database().await;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .expect("an HTTP client");
        let mut cluster = Cluster {
            nodes: Vec::with_capacity(n),
            database,
            http,
        };
        cluster.add_node(flags).await;
        for _ in 1..n {
            cluster
                .nodes
                .push(Node::spawn(cluster.database.url(), flags));
        }
        for i in 1..n {
            cluster.wait_ready(i).await;
        }
        cluster
    }

    /// Starts one more node with `flags` and waits until it is healthy; answers its index.
    pub async fn add_node(&mut self, flags: &[&str]) -> usize {
        self.nodes.push(Node::spawn(self.database.url(), flags));
        let i = self.nodes.len() - 1;
        self.wait_ready(i).await;
        i
    }

    /// How many nodes were started (killed ones included).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// The base URL of node `i` (`http://127.0.0.1:PORT`).
    pub fn node(&self, i: usize) -> &str {
        &self.nodes[i].url
    }

    /// The database the nodes share.
    pub fn database_url(&self) -> &str {
        self.database.url()
    }

    /// The REST API of node `i`, as the admin.
    pub fn admin(&self, i: usize) -> Admin {
        Admin {
            http: self.http.clone(),
            base: self.nodes[i].url.clone(),
        }
    }

    /// An HTTP client for calls of a test's own (hooks).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Kills node `i` with SIGKILL (no graceful shutdown, nothing flushed) and reaps it.
    pub fn kill9(&self, i: usize) {
        if let Some(mut child) = self.nodes[i].take_child() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The log of node `i` so far.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.nodes[i].log_path()).unwrap_or_default()
    }

    async fn wait_ready(&mut self, i: usize) {
        let readyz = format!("{}/readyz", self.nodes[i].url);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.nodes[i].exit_status() {
                panic!("node {i} exited ({status}):\n{}", self.log(i));
            }
            let answer = self
                .http
                .get(&readyz)
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if answer.is_ok_and(|answer| answer.status().is_success()) {
                return;
            }
            if Instant::now() > deadline {
                panic!("node {i} did not become ready:\n{}", self.log(i));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.stop();
        }
        if std::thread::panicking() || std::env::var_os("TEST_LOG").is_some() {
            for i in 0..self.nodes.len() {
                eprintln!("--- the log of node {i} ---\n{}", self.log(i));
            }
        }
    }
}

impl Node {
    fn spawn(database_url: &str, flags: &[&str]) -> Node {
        let dir = tempfile::Builder::new()
            .prefix("flowd-cluster-node-")
            .tempdir()
            .expect("a temp dir");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let log = std::fs::File::create(dir.path().join("node.log")).expect("a log file");
        let child = Command::new(env!("CARGO_BIN_EXE_flowd"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--database", database_url])
            .args(["--log", &log_filter(), "--shutdown-grace-s", "2"])
            .args(flags)
            .env("FLOWD_ADMIN_API_KEY", ADMIN_KEY)
            .env("FLOWD_SECRET_KEY", SECRET_KEY)
            .env_remove("FLOWD_SECRET_KEY_FILE")
            .env("FLOWD_RUNTIME_DIR", shared_runtime_dir())
            .env_remove("FLOWD_DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("a log file"))
            .stderr(log)
            .spawn()
            .expect("flowd serve starts");
        Node {
            child: Mutex::new(Some(child)),
            url: format!("http://127.0.0.1:{port}"),
            dir,
        }
    }

    fn take_child(&self) -> Option<Child> {
        self.child
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }

    /// How the process ended, if it has.
    fn exit_status(&self) -> Option<std::process::ExitStatus> {
        let mut child = self
            .child
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        child.as_mut()?.try_wait().ok().flatten()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("node.log")
    }

    /// SIGTERM (the node stops its Python processes on a graceful shutdown), then SIGKILL.
    fn stop(&mut self) {
        let Some(mut child) = self.take_child() else {
            return;
        };
        if let Ok(pid) = i32::try_from(child.id()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// The REST API of one node, called with the admin key.
#[derive(Clone)]
pub struct Admin {
    http: reqwest::Client,
    base: String,
}

impl Admin {
    /// `METHOD /api/v1{path}` with `body`: the status and the JSON answer (`Null` when empty).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base))
            .bearer_auth(ADMIN_KEY);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request.send().await.expect("the node answers");
        let status = answer.status().as_u16();
        let text = answer.text().await.expect("an answer body");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        (status, json)
    }

    /// Creates a workflow (waiting for its deploy) and answers it; fails the test unless `201`
    /// with an active version.
    pub async fn create_workflow(&self, workflow: Value) -> Value {
        let (status, created) = self
            .call(reqwest::Method::POST, "/workflows", Some(workflow))
            .await;
        assert_eq!(status, 201, "create workflow: {created}");
        assert_eq!(created["deployment"]["state"], "active", "{created}");
        created
    }

    /// `PATCH /workflows/{id}` with `patch`; fails the test unless `200`.
    pub async fn patch_workflow(&self, id: &str, patch: Value) -> Value {
        let path = format!("/workflows/{id}");
        let (status, patched) = self.call(reqwest::Method::PATCH, &path, Some(patch)).await;
        assert_eq!(status, 200, "patch workflow: {patched}");
        patched
    }

    /// Every execution of a workflow, newest first (all pages).
    pub async fn executions(&self, workflow_id: &str) -> Vec<Value> {
        let mut all = Vec::new();
        let mut before = String::new();
        loop {
            let path = format!("/workflows/{workflow_id}/executions?limit=1000&before={before}");
            let (status, page) = self.call(reqwest::Method::GET, &path, None).await;
            assert_eq!(status, 200, "list executions: {page}");
            let page = page["executions"].as_array().cloned().unwrap_or_default();
            let Some(last) = page.last() else {
                return all;
            };
            before = last["id"].as_str().expect("an execution id").to_string();
            all.extend(page);
        }
    }

    /// One execution, in full.
    pub async fn execution(&self, id: &str) -> Value {
        let (status, execution) = self
            .call(reqwest::Method::GET, &format!("/executions/{id}"), None)
            .await;
        assert_eq!(status, 200, "show execution: {execution}");
        execution
    }

    /// The workflow's settings, as the API shows them.
    pub async fn settings(&self, workflow_id: &str) -> Value {
        let path = format!("/workflows/{workflow_id}/settings");
        let (status, settings) = self.call(reqwest::Method::GET, &path, None).await;
        assert_eq!(status, 200, "get settings: {settings}");
        settings
    }
}

/// A catch workflow `name` running `code`, with `extra` fields merged into its create body.
pub fn catch_workflow(name: &str, code: &str, extra: Value) -> Value {
    let mut body = json!({"name": name, "mode": "catch", "code": code});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    body
}

/// Polls `check` every 50 ms until it answers `Some`, and returns that; fails the test, naming
/// `what`, once `within` has passed.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if Instant::now() >= deadline {
            panic!("not within {within:?}: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Python environments are shared by every test of the workspace (built once, under a lock), in a
/// directory the sandbox user can reach.
pub fn shared_runtime_dir() -> PathBuf {
    let uid = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap_or(0);
    std::env::temp_dir().join(format!("flowd-test-runtimes-{uid}"))
}

/// The nodes' log filter: `warn`, or what `TEST_LOG` asks for (`1` for `info`).
fn log_filter() -> String {
    match std::env::var("TEST_LOG") {
        Ok(filter) if filter == "1" => "info".into(),
        Ok(filter) => filter,
        Err(_) => "warn".into(),
    }
}
