//! The example cluster configuration (`contrib/cluster/nginx.conf`): nginx accepts it, and two
//! real `flowd serve` nodes on one PostgreSQL database answer hooks through it, one of them
//! stopped included. The end-to-end case is named `e2e_…` (`cargo test -- --skip e2e` skips it).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const ADMIN_KEY: &str = "cluster-proxy-test-admin-key-0123456789";
/// The secret key both nodes are given (`FLOWD_SECRET_KEY`).
const SECRET_KEY: &str = "c1d2e3f405162738495a6b7c8d9eaf00112233445566778899aabbccddeeff00";

fn example_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contrib/cluster/nginx.conf")
}

/// nginx from `PATH` or Debian's `/usr/sbin`; a test that needs it fails saying so otherwise.
fn nginx() -> PathBuf {
    [
        "/usr/sbin/nginx",
        "/usr/local/sbin/nginx",
        "/usr/local/nginx/sbin/nginx",
    ]
    .iter()
    .map(PathBuf::from)
    .chain(std::env::var_os("PATH").into_iter().flat_map(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("nginx"))
            .collect::<Vec<_>>()
    }))
    .find(|path| path.exists())
    .expect("these tests need nginx (apt-get install nginx; .ci/run installs it)")
}

fn nginx_test(prefix: &Path, config: &Path) -> Output {
    Command::new(nginx())
        .arg("-t")
        .arg("-p")
        .arg(prefix)
        .arg("-c")
        .arg(config)
        .output()
        .expect("nginx runs")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// Polls `probe` until it answers `Some`, for at most `limit`.
fn poll_until<T>(limit: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = probe() {
            return Some(value);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A child process stopped (SIGTERM, then SIGKILL) when dropped.
struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let exited = poll_until(Duration::from_secs(10), || {
            self.child.try_wait().ok().flatten()
        });
        if exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `flowd serve` on `port`, on the database `database`, once `/readyz` answers 200 (started).
fn flowd_node(dir: &Path, name: &str, port: u16, database: &str) -> Process {
    let log = dir.join(format!("{name}.log"));
    let uid = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap_or(0);
    let child = Command::new(env!("CARGO_BIN_EXE_flowd"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(dir.join(name))
        .args([
            "--database",
            database,
            "--log",
            "warn",
            "--shutdown-grace-s",
            "2",
        ])
        .env("FLOWD_ADMIN_API_KEY", ADMIN_KEY)
        // Both nodes open the shared store's secret values with one key.
        .env("FLOWD_SECRET_KEY", SECRET_KEY)
        .env_remove("FLOWD_SECRET_KEY_FILE")
        // The Python environment the workspace's tests share (built once).
        .env(
            "FLOWD_RUNTIME_DIR",
            std::env::temp_dir().join(format!("flowd-test-runtimes-{uid}")),
        )
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).expect("log file"))
        .stderr(
            std::fs::File::options()
                .append(true)
                .open(&log)
                .expect("log file"),
        )
        .spawn()
        .expect("flowd serve starts");
    let mut node = Process { child, log };
    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .expect("a client");
    let healthy = poll_until(Duration::from_secs(600), || {
        if let Ok(Some(status)) = node.child.try_wait() {
            panic!("{name} exited ({status}):\n{}", node.log());
        }
        let response = client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .timeout(Duration::from_secs(2))
            .send()
            .ok()?;
        response.status().is_success().then_some(())
    });
    assert!(healthy.is_some(), "{name} did not answer:\n{}", node.log());
    node
}

/// nginx in the foreground with the example configuration, its ports replaced by the test's.
fn nginx_proxy(dir: &Path, listen: u16, nodes: [u16; 2]) -> Process {
    let config = std::fs::read_to_string(example_config())
        .expect("the example configuration")
        .replace("listen 8080;", &format!("listen 127.0.0.1:{listen};"))
        .replace("127.0.0.1:8081", &format!("127.0.0.1:{}", nodes[0]))
        .replace("127.0.0.1:8082", &format!("127.0.0.1:{}", nodes[1]));
    let prefix = dir.join("nginx");
    std::fs::create_dir_all(&prefix).expect("nginx's prefix");
    let path = prefix.join("nginx.conf");
    std::fs::write(&path, config).expect("the test's configuration");
    let log = dir.join("nginx.log");
    let child = Command::new(nginx())
        .arg("-p")
        .arg(&prefix)
        .arg("-c")
        .arg(&path)
        .args(["-g", "daemon off;"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("nginx starts");
    let mut proxy = Process { child, log };
    let answers = poll_until(Duration::from_secs(30), || {
        if let Ok(Some(status)) = proxy.child.try_wait() {
            panic!("nginx exited ({status}):\n{}", proxy.log());
        }
        std::net::TcpStream::connect(("127.0.0.1", listen)).ok()
    });
    assert!(answers.is_some(), "nginx did not listen:\n{}", proxy.log());
    proxy
}

#[test]
fn nginx_accepts_the_example_configuration() {
    let prefix = tempfile::tempdir().unwrap();

    let output = nginx_test(prefix.path(), &example_config());

    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_two_nodes_behind_the_example_proxy_answer_hooks_and_survive_one_stopping() {
    let database = flowd_test_postgres::fresh_database().await;
    let url = database.url().to_string();
    tokio::task::spawn_blocking(move || two_nodes_behind_the_proxy(&url))
        .await
        .expect("the scenario");
}

fn two_nodes_behind_the_proxy(database: &str) {
    let dir = tempfile::Builder::new()
        .prefix("flowd-cluster-proxy-")
        .tempdir()
        .unwrap();
    let ports = [free_port(), free_port()];
    let mut node_a = flowd_node(dir.path(), "node-a", ports[0], database);
    let node_b = flowd_node(dir.path(), "node-b", ports[1], database);
    let listen = free_port();
    let proxy = nginx_proxy(dir.path(), listen, ports);
    let base = format!("http://127.0.0.1:{listen}");
    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();

    let created: Value = client
        .post(format!("{base}/api/v1/workflows"))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({
            "name": "hello",
            "mode": "catch",
            "code": "import json\n\n\ndef workflow(request, settings):\n    return {\"status_code\": 200, \"body\": json.dumps({\"hello\": request.get(\"name\")})}\n",
        }))
        .send()
        .and_then(|response| response.error_for_status())
        .and_then(|response| response.json())
        .unwrap_or_else(|err| {
            panic!(
                "create through the proxy: {err:?}\nnode A:\n{}\nnginx:\n{}",
                node_a.log(),
                proxy.log()
            )
        });
    let hook = format!(
        "{base}{}",
        created["hook_url"].as_str().expect("a hook URL")
    );
    let logs = [&node_a.log, &node_b.log, &proxy.log].map(|path| path.clone());
    let call = |n: usize| {
        let response = client
            .post(&hook)
            .json(&json!({"name": format!("call {n}")}))
            .send()
            .expect("the proxy answers");
        let status = response.status();
        let body: Value = response.json().unwrap_or(Value::Null);
        assert!(
            status.is_success(),
            "call {n} answered {status} {body}\nthe logs of node A, node B and nginx:\n{}",
            logs.iter()
                .map(|path| std::fs::read_to_string(path).unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n---\n")
        );
        assert_eq!(body, json!({"hello": format!("call {n}")}));
    };

    // least_conn with one call at a time takes the nodes in turn: both answer.
    for n in 0..6 {
        call(n);
    }
    node_a.stop();
    for n in 6..10 {
        call(n);
    }

    let executions: Value = client
        .get(format!(
            "{base}/api/v1/workflows/{}/executions?limit=100",
            created["id"].as_str().unwrap()
        ))
        .bearer_auth(ADMIN_KEY)
        .send()
        .and_then(|response| response.json())
        .expect("the executions through the proxy");
    let executions = executions["executions"].as_array().expect("a list");
    assert_eq!(executions.len(), 10, "{executions:?}");
    assert!(
        executions.iter().all(|e| e["status"] == "success"),
        "{executions:?}"
    );
}
