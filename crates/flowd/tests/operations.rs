//! `flowd serve` as an operator meets it: the real binary on a free port with a fresh data dir —
//! its port opening at once while the runtime is provisioned, its log (text and JSON) holding
//! no secret, `/metrics` on its own address.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};

const ADMIN_KEY: &str = "ops-test-admin-key-5f3a9c1e7b2d4086";

/// The Python environments every test of the workspace shares (built once, under a lock).
fn shared_runtime_dir() -> PathBuf {
    let uid = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap_or(0);
    std::env::temp_dir().join(format!("flowd-test-runtimes-{uid}"))
}

/// A `flowd serve` process with its own data dir, its log in a file; stopped when dropped.
struct Served {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    client: reqwest::blocking::Client,
}

impl Served {
    /// Starts `flowd serve` with `args` and Python environments from `runtime_dir`.
    fn spawn(args: &[&str], runtime_dir: &Path) -> Served {
        let dir = tempfile::Builder::new()
            .prefix("flowd-ops-")
            .tempdir()
            .expect("temp dir");
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("server.log")).expect("log file");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_flowd"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--shutdown-grace-s", "2"])
            .args(args)
            .env("FLOWD_ADMIN_API_KEY", ADMIN_KEY)
            .env("FLOWD_RUNTIME_DIR", runtime_dir)
            .env_remove("FLOWD_LOG")
            .env_remove("FLOWD_LOG_FORMAT")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("flowd serve starts");
        let client = reqwest::blocking::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        Served {
            child,
            port,
            dir,
            client,
        }
    }

    /// [`Served::spawn`], once `/readyz` answers 200.
    fn ready(args: &[&str]) -> Served {
        let mut served = Served::spawn(args, &shared_runtime_dir());
        served.wait_ready();
        served
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn get(&self, path: &str) -> Option<reqwest::blocking::Response> {
        self.client.get(self.url(path)).send().ok()
    }

    fn wait_ready(&mut self) {
        // The first start of all may build the shared Python environment.
        self.eventually(Duration::from_secs(600), "/readyz answers 200", |served| {
            served
                .get("/readyz")
                .filter(|response| response.status() == 200)
                .map(|_| ())
        });
    }

    fn api(&self, method: reqwest::Method, path: &str) -> reqwest::blocking::RequestBuilder {
        self.client
            .request(method, self.url(&format!("/api/v1{path}")))
            .bearer_auth(ADMIN_KEY)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Polls `check` until it answers `Some`; fails the test (with the server's log) if the server
    /// exits or `within` passes first.
    fn eventually<T>(
        &mut self,
        within: Duration,
        what: &str,
        mut check: impl FnMut(&Served) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("flowd serve exited ({status}):\n{}", self.log());
            }
            if let Some(value) = check(self) {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "not within {within:?}: {what}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server (SIGTERM, a graceful shutdown) and waits for it to exit.
    fn stop(&mut self) {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop();
        if std::env::var_os("TEST_LOG").is_some() {
            eprintln!("--- the log of flowd serve ---\n{}", self.log());
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

fn json_of(response: reqwest::blocking::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

/// A catch workflow printing and returning what it is given, with a secret setting and a secret
/// environment variable; answers the workflow object.
fn create_echo(served: &Served, name: &str, secret_env: &str) -> Value {
    let code = "import os\ndef workflow(_request, settings):\n    print('token', settings.get('TOKEN'), os.environ.get('VAULT'))\n    return {'status_code': 200, 'body': 'ok'}\n";
    let response = served
        .api(reqwest::Method::POST, "/workflows")
        .json(&json!({
            "name": name,
            "mode": "catch",
            "code": code,
            "secrets": ["TOKEN", "VAULT"],
            "env": {"VAULT": secret_env},
        }))
        .send()
        .expect("create");
    let (status, workflow) = json_of(response);
    assert_eq!(status, 201, "{workflow}");
    workflow
}

#[test]
fn the_port_opens_at_once_and_calls_get_503_while_the_runtime_is_provisioned() {
    // The shared environments exist (built by this server if no test built them yet).
    drop(Served::ready(&[]));
    let runtime_dir = tempfile::Builder::new()
        .prefix("flowd-ops-runtimes-")
        .tempdir()
        .expect("temp dir");
    // Provisioning waits for this lock: the window in which the server is starting stays open
    // until the test lets it go.
    let lock =
        std::fs::File::create(runtime_dir.path().join(".provision.lock")).expect("lock file");
    let lock = Flock::lock(lock, FlockArg::LockExclusive).expect("the provisioning lock");
    let mut served = Served::spawn(&[], runtime_dir.path());

    let body = served.eventually(
        Duration::from_secs(30),
        "/readyz says the runtime is being provisioned",
        |served| {
            let (status, body) = json_of(served.get("/readyz")?);
            assert_eq!(status, 503, "{body}");
            (body["reason"] == "provisioning the Python runtime").then_some(body)
        },
    );
    assert_eq!(body["status"], "not_ready");
    assert_eq!(served.get("/healthz").expect("/healthz").status(), 200);
    let api = served
        .api(reqwest::Method::GET, "/workflows")
        .send()
        .expect("API call");
    assert_eq!(api.headers()["retry-after"], "5");
    let (status, body) = json_of(api);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("starting"))
    );
    let hook = served
        .client
        .post(served.url("/teams/default/hello/python3/0123456789abcdef"))
        .json(&json!({}))
        .send()
        .expect("hook call");
    let (status, body) = json_of(hook);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("starting"))
    );

    // The environments appear (as a provisioning would leave them), and the lock is let go.
    for entry in std::fs::read_dir(shared_runtime_dir()).expect("shared runtimes") {
        let entry = entry.expect("entry");
        if !entry.file_name().to_string_lossy().starts_with('.') {
            std::os::unix::fs::symlink(entry.path(), runtime_dir.path().join(entry.file_name()))
                .expect("symlink");
        }
    }
    drop(lock);
    served.wait_ready();
    let (status, _) = json_of(
        served
            .api(reqwest::Method::GET, "/workflows")
            .send()
            .expect("API"),
    );
    assert_eq!(status, 200);
}

#[test]
fn a_whole_run_s_json_log_holds_no_hook_token_api_key_or_secret_value() {
    const SECRET_SETTING: &str = "setting-secret-9b1f47d2c6e8";
    const SECRET_ENV: &str = "env-secret-3e7a58c0f2b4";
    let mut served = Served::ready(&["--log-format", "json", "--log", "debug"]);
    let workflow = create_echo(&served, "ops-secrets", SECRET_ENV);
    let id = workflow["id"].as_str().expect("id").to_string();
    let response = served
        .api(reqwest::Method::PATCH, &format!("/workflows/{id}/settings"))
        .json(&json!({"TOKEN": SECRET_SETTING}))
        .send()
        .expect("settings");
    assert_eq!(response.status(), 200);
    let first_hook = workflow["hook_url"].as_str().expect("hook_url").to_string();
    for _ in 0..3 {
        let response = served
            .client
            .post(served.url(&first_hook))
            .json(&json!({"from": "test"}))
            .send()
            .expect("hook call");
        assert_eq!(response.status(), 200);
    }
    let rotated = served
        .api(
            reqwest::Method::POST,
            &format!("/workflows/{id}/rotate-token"),
        )
        .send()
        .expect("rotate");
    let (_, rotated) = json_of(rotated);
    let second_hook = rotated["hook_url"].as_str().expect("hook_url").to_string();
    // The old token, now refused, and the new one.
    let refused = served
        .client
        .post(served.url(&first_hook))
        .json(&json!({}))
        .send()
        .expect("call");
    assert_eq!(refused.status(), 404);
    let response = served
        .client
        .post(served.url(&second_hook))
        .json(&json!({}))
        .send()
        .expect("call");
    assert_eq!(response.status(), 200);
    let execution_id = response.headers()["x-execution-id"]
        .to_str()
        .expect("id")
        .to_string();
    let response = served
        .api(reqwest::Method::DELETE, &format!("/workflows/{id}"))
        .send()
        .expect("delete");
    assert!(response.status().is_success());
    served.stop();

    let log = served.log();
    let token = |hook: &str| hook.rsplit('/').next().expect("token").to_string();
    for secret in [
        ADMIN_KEY.to_string(),
        token(&first_hook),
        token(&second_hook),
        SECRET_SETTING.to_string(),
        SECRET_ENV.to_string(),
    ] {
        assert!(!log.contains(&secret), "the log holds {secret:?}:\n{log}");
    }
    let lines: Vec<Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    for line in &lines {
        for key in ["timestamp", "level", "target", "message", "fields"] {
            assert!(line.get(key).is_some(), "no {key}: {line}");
        }
    }
    // The last hook call's access-log line, and the execution's span down to the runtime.
    let access = lines
        .iter()
        .find(|line| {
            line["target"] == "flowd::access" && line["fields"]["execution_id"] == execution_id
        })
        .unwrap_or_else(|| panic!("no access-log line for {execution_id}:\n{log}"));
    assert_eq!(access["fields"]["status"], 200);
    assert!(access["fields"]["duration_ms"].is_number(), "{access}");
    let http = &access["spans"][0];
    assert_eq!(http["method"], "POST");
    assert_eq!(
        http["path"],
        "/teams/default/ops-secrets/python3.11/…"
            .replace("python3.11", rotated["runtime"].as_str().expect("runtime"),)
    );
    let in_execution: Vec<&Value> = lines
        .iter()
        .filter(|line| {
            line["spans"].as_array().is_some_and(|spans| {
                spans
                    .iter()
                    .any(|span| span["name"] == "execution" && span["execution_id"] == execution_id)
            })
        })
        .collect();
    assert!(
        !in_execution.is_empty(),
        "no line in the execution's span:\n{log}"
    );
    let span_names = |line: &Value| -> Vec<String> {
        line["spans"]
            .as_array()
            .map(|spans| {
                spans
                    .iter()
                    .map(|span| span["name"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert!(
        in_execution
            .iter()
            .any(|line| span_names(line) == ["http", "execution", "runtime"]),
        "no line from the runtime inside the request's and the execution's spans:\n{log}"
    );
    for line in &in_execution {
        let execution = line["spans"]
            .as_array()
            .and_then(|spans| spans.iter().find(|span| span["name"] == "execution"))
            .expect("the execution span");
        assert_eq!(execution["workflow"], "ops-secrets");
        assert_eq!(execution["version"], 1);
    }
}

#[test]
fn the_text_log_has_no_colour_codes_when_it_is_not_a_terminal() {
    let mut served = Served::ready(&["--log", "info"]);
    assert!(served.get("/healthz").is_some());
    served.stop();
    let log = served.log();
    assert!(log.contains("flowd::access"), "{log}");
    assert!(!log.contains('\u{1b}'), "an escape code in:\n{log}");
}

#[test]
fn metrics_listen_serves_metrics_without_a_key_on_its_own_address() {
    let metrics_port = free_port();
    let address = format!("127.0.0.1:{metrics_port}");
    let served = Served::ready(&["--metrics-listen", &address]);
    let response = served
        .client
        .get(format!("http://{address}/metrics"))
        .send()
        .expect("scrape");
    assert_eq!(response.status(), 200);
    let text = response.text().expect("text");
    assert!(text.contains("flowd_database_size_bytes"), "{text}");
    let main = served
        .get("/metrics")
        .expect("/metrics on the main address");
    assert_eq!(main.status(), 401);
}
