//! An asynchronous call survives its server: `flowd serve` killed with SIGKILL right after it
//! answered `202` runs the call once started again on the same data dir; so does a retry killed
//! while it waits its backoff.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const ADMIN_KEY: &str = "async-restart-admin-key-0123456789";

/// Python environments are shared by every test of the workspace (built once, under a lock), in a
/// directory the sandbox user can reach.
fn shared_runtime_dir() -> PathBuf {
    let uid = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap_or(0);
    std::env::temp_dir().join(format!("flowd-test-runtimes-{uid}"))
}

/// A `flowd serve` process on `data_dir`, killed (SIGKILL) when dropped.
struct Server {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Server {
    fn start(data_dir: &Path, log: PathBuf) -> Server {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_flowd"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--log", "warn"])
            .env("FLOWD_ADMIN_API_KEY", ADMIN_KEY)
            .env("FLOWD_RUNTIME_DIR", shared_runtime_dir())
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log file"))
            .stderr(log_file)
            .spawn()
            .expect("flowd serve starts");
        let mut server = Server {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        };
        let client = client();
        // The port opens at once; /readyz answers 200 once the server is started. The first start
        // of all may build the shared Python environment.
        poll_until(Duration::from_secs(600), "flowd serve is started", || {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("flowd serve exited ({status}):\n{}", server.log());
            }
            let response = client.get(format!("{}/readyz", server.url)).send().ok()?;
            response.status().is_success().then_some(())
        });
        server
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

fn poll_until<T>(within: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn an_async_call_acknowledged_before_a_kill_9_runs_after_the_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data");
    let log = dir.path().join("server.log");
    let client = client();
    let server = Server::start(&data_dir, log.clone());
    // The call runs for 2 s, so that the kill comes while it runs (or before).
    let code = "import time\n\n\
                def workflow(_request, settings):\n    \
                time.sleep(2)\n    \
                settings['runs'] = settings.get('runs', 0) + 1\n    \
                return {'status_code': 200, 'body': 'ran ' + _request['what']}\n";
    let created: Value = client
        .post(format!("{}/api/v1/workflows", server.url))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"name": "survivor", "mode": "catch", "code": code}))
        .send()
        .expect("create")
        .json()
        .expect("json");
    let id = created["id"].as_str().expect("id").to_string();
    let hook = created["hook_url"].as_str().expect("hook_url").to_string();
    let accepted = client
        .post(format!("{}{hook}", server.url))
        .header("Prefer", "respond-async")
        .json(&json!({"what": "once"}))
        .send()
        .expect("hook call");
    assert_eq!(accepted.status(), 202);
    server.kill();

    let body: Value = accepted.json().expect("json");
    let status_url = body["status_url"].as_str().expect("status_url").to_string();
    let server = Server::start(&data_dir, log);
    let response = poll_until(
        Duration::from_secs(60),
        "the call ran after the restart",
        || {
            let response = client
                .get(format!("{}{status_url}", server.url))
                .send()
                .ok()?;
            (response.status() != 202).then_some(response)
        },
    );
    assert_eq!(response.status(), 200, "{}", server.log());
    assert_eq!(response.headers()["x-execution-status"], "success");
    assert_eq!(response.text().expect("body"), "ran once");
    let settings: Value = client
        .get(format!("{}/api/v1/workflows/{id}/settings", server.url))
        .bearer_auth(ADMIN_KEY)
        .send()
        .expect("settings")
        .json()
        .expect("json");
    assert_eq!(settings["settings"]["runs"], 1);
}

#[test]
fn a_retry_waiting_its_backoff_when_flowd_serve_is_killed_runs_after_the_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data");
    let log = dir.path().join("server.log");
    let client = client();
    let server = Server::start(&data_dir, log.clone());
    let code = "def workflow(_request, settings, context):\n    \
                if context.attempt == 1:\n        \
                raise ValueError('the first attempt fails')\n    \
                return {'status_code': 200, 'body': 'attempt %d' % context.attempt}\n";
    // The retry waits 2.4 to 3.6 s: the kill comes while it waits.
    let retry = json!({"max_attempts": 2, "backoff_s": 3});
    let created: Value = client
        .post(format!("{}/api/v1/workflows", server.url))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"name": "retried", "mode": "catch", "code": code, "retry": retry}))
        .send()
        .expect("create")
        .json()
        .expect("json");
    let id = created["id"].as_str().expect("id").to_string();
    let hook = created["hook_url"].as_str().expect("hook_url").to_string();
    let accepted: Value = client
        .post(format!("{}{hook}", server.url))
        .header("Prefer", "respond-async")
        .json(&json!({}))
        .send()
        .expect("hook call")
        .json()
        .expect("json");
    let status_url = accepted["status_url"]
        .as_str()
        .expect("status_url")
        .to_string();
    poll_until(
        Duration::from_secs(60),
        "the second attempt waits its backoff",
        || {
            let pending: Value = client
                .get(format!("{}{status_url}", server.url))
                .send()
                .ok()?
                .json()
                .ok()?;
            (pending["status"] == "queued" && pending["attempt"] == 2).then_some(())
        },
    );
    server.kill();

    let server = Server::start(&data_dir, log);
    let response = poll_until(
        Duration::from_secs(60),
        "the retry ran after the restart",
        || {
            let response = client
                .get(format!("{}{status_url}", server.url))
                .send()
                .ok()?;
            (response.status() != 202).then_some(response)
        },
    );
    assert_eq!(response.status(), 200, "{}", server.log());
    assert_eq!(response.text().expect("body"), "attempt 2");
    let listed: Value = client
        .get(format!("{}/api/v1/workflows/{id}/executions", server.url))
        .bearer_auth(ADMIN_KEY)
        .send()
        .expect("executions")
        .json()
        .expect("json");
    let attempts: Vec<(u64, &str)> = listed["executions"]
        .as_array()
        .expect("executions")
        .iter()
        .map(|e| {
            (
                e["attempt"].as_u64().unwrap_or(0),
                e["status"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(attempts, [(2, "success"), (1, "error")]);
}
