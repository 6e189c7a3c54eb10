//! A data dir as an operator meets it, with the real binary: `flowd backup` while the server
//! serves hook calls, `flowd restore` into a new data dir served again, secret values never in
//! clear in the database or a backup, and a server given the wrong secret key refusing to start.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const ADMIN_KEY: &str = "data-dir-test-admin-key-0123456789";
const ENV_SECRET: &str = "env-secret-4be1f09a7d";
const SETTING_SECRET: &str = "setting-secret-93c0aa5e12";
const OTHER_KEY: &str = "0000000000000000000000000000000000000000000000000000000000000001";

/// Python environments are shared by every test of the workspace (built once, under a lock).
fn shared_runtime_dir() -> PathBuf {
    let uid = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap_or(0);
    std::env::temp_dir().join(format!("flowd-test-runtimes-{uid}"))
}

fn flowd() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_flowd"));
    command
        .env_remove("FLOWD_SECRET_KEY")
        .env_remove("FLOWD_SECRET_KEY_FILE")
        .env_remove("FLOWD_DATABASE_URL")
        .env_remove("FLOWD_DATA_DIR");
    command
}

fn poll_until<T>(within: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `flowd serve` on a data dir, stopped when dropped.
struct Server {
    child: Child,
    url: String,
    log: PathBuf,
    client: reqwest::blocking::Client,
}

impl Server {
    /// Starts a server on `data_dir` (with `env` added) and waits until it is started (`/readyz`:
    /// the port opens, answering `503 starting`, before start-up ends).
    fn start(data_dir: &Path, log_dir: &Path, env: &[(&str, &str)]) -> Server {
        let mut server = Server::spawn(data_dir, log_dir, env);
        let healthy = poll_until(Duration::from_secs(600), || {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("flowd serve exited ({status}):\n{}", server.log());
            }
            let response = server.client.get(format!("{}/readyz", server.url)).send();
            response.ok()?.status().is_success().then_some(())
        });
        assert!(
            healthy.is_some(),
            "flowd serve did not start:\n{}",
            server.log()
        );
        server
    }

    fn spawn(data_dir: &Path, log_dir: &Path, env: &[(&str, &str)]) -> Server {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log = log_dir.join(format!("server-{port}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let mut command = flowd();
        command
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--log", "warn", "--shutdown-grace-s", "2"])
            .env("FLOWD_ADMIN_API_KEY", ADMIN_KEY)
            .env("FLOWD_RUNTIME_DIR", shared_runtime_dir());
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .expect("flowd serve starts");
        Server {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
            client: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .no_proxy()
                .build()
                .expect("client"),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn api(&self, method: reqwest::Method, path: &str) -> reqwest::blocking::RequestBuilder {
        self.client
            .request(method, format!("{}/api/v1{path}", self.url))
            .bearer_auth(ADMIN_KEY)
    }

    /// Creates a catch workflow holding a secret environment variable and a secret setting.
    fn create_workflow(&self) -> Value {
        let response = self
            .api(reqwest::Method::POST, "/workflows")
            .json(&json!({
                "name": "hello", "mode": "catch",
                "code": "import os\n\ndef workflow(_request, settings):\n    return {'status_code': 200, 'body': 'ok' if os.environ['TOKEN'] and settings['api_key'] else 'no'}\n",
                "env": {"TOKEN": ENV_SECRET},
                "settings": {"api_key": SETTING_SECRET},
                "secrets": ["TOKEN", "api_key"],
            }))
            .send()
            .expect("create");
        assert_eq!(response.status(), 201);
        response.json().expect("json")
    }

    /// Calls the hook; the execution id when it answered 200 with the workflow's body.
    fn call(&self, workflow: &Value) -> Option<String> {
        let url = format!("{}{}", self.url, workflow["hook_url"].as_str()?);
        let response = self.client.post(url).json(&json!({})).send().ok()?;
        let id = response
            .headers()
            .get("x-execution-id")?
            .to_str()
            .ok()?
            .to_string();
        (response.status() == 200 && response.text().ok()? == "ok").then_some(id)
    }

    fn execution_status(&self, id: &str) -> reqwest::StatusCode {
        self.api(reqwest::Method::GET, &format!("/executions/{id}"))
            .send()
            .expect("get execution")
            .status()
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let exited = poll_until(Duration::from_secs(10), || {
            self.child.try_wait().ok().flatten().map(|_| ())
        });
        if exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

fn assert_no_secret_in(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_default();
    for secret in [ENV_SECRET, SETTING_SECRET] {
        assert!(
            !contains(&bytes, secret),
            "{} holds {secret} in clear",
            path.display()
        );
    }
}

fn run(command: &mut Command) -> std::process::Output {
    command.output().expect("flowd runs")
}

/// `flowd backup --data-dir DATA --to TO`.
fn flowd_backup(data: &Path, to: &Path) -> std::process::Output {
    run(flowd()
        .arg("backup")
        .arg("--data-dir")
        .arg(data)
        .arg("--to")
        .arg(to))
}

/// `flowd restore --from FROM --data-dir DATA`.
fn flowd_restore(from: &Path, data: &Path) -> std::process::Output {
    run(flowd()
        .arg("restore")
        .arg("--from")
        .arg(from)
        .arg("--data-dir")
        .arg(data))
}

#[test]
fn e2e_a_backup_taken_under_load_restores_every_acknowledged_execution_and_its_secrets() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let server = Arc::new(Server::start(&data, work.path(), &[]));
    let workflow = server.create_workflow();

    // Hook calls go on all through the backup.
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let (server, workflow) = (server.clone(), workflow.clone());
            let (acknowledged, stop) = (acknowledged.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(id) = server.call(&workflow) {
                        acknowledged.lock().unwrap().push(id);
                    }
                }
            })
        })
        .collect();
    poll_until(Duration::from_secs(60), || {
        (acknowledged.lock().unwrap().len() >= 50).then_some(())
    })
    .expect("50 hook calls answered");

    let before_backup: Vec<String> = acknowledged.lock().unwrap().clone();
    let backup = work.path().join("flowd-backup.db");
    let backed_up = flowd_backup(&data, &backup);
    let during_backup = acknowledged.lock().unwrap().len() - before_backup.len();
    stop.store(true, Ordering::Relaxed);
    for thread in load {
        thread.join().unwrap();
    }
    assert!(
        backed_up.status.success(),
        "{}",
        String::from_utf8_lossy(&backed_up.stderr)
    );
    eprintln!(
        "{} calls acknowledged before the backup, {during_backup} while it ran",
        before_backup.len()
    );
    let server = Arc::into_inner(server).expect("the load is over");
    server.stop();
    for file in ["flowd.db", "flowd.db-wal"] {
        assert_no_secret_in(&data.join(file));
    }
    assert_no_secret_in(&backup);

    let restored = work.path().join("restored");
    let restore = flowd_restore(&backup, &restored);
    assert!(
        restore.status.success(),
        "{}",
        String::from_utf8_lossy(&restore.stderr)
    );
    std::fs::copy(data.join("secret-key"), restored.join("secret-key")).unwrap();
    let server = Server::start(&restored, work.path(), &[]);
    for id in &before_backup {
        assert_eq!(
            server.execution_status(id),
            200,
            "execution {id} is missing"
        );
    }
    assert!(
        server.call(&workflow).is_some(),
        "the restored workflow answers"
    );
    server.stop();
}

#[test]
fn restore_refuses_a_data_dir_that_is_not_empty() {
    let work = tempfile::tempdir().unwrap();
    let backup = work.path().join("backup.db");
    std::fs::write(&backup, b"").unwrap();
    let taken = work.path().join("taken");
    std::fs::create_dir(&taken).unwrap();
    std::fs::write(taken.join("flowd.db"), b"precious").unwrap();

    let output = flowd_restore(&backup, &taken);

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is not empty"), "{stderr}");
    assert_eq!(std::fs::read(taken.join("flowd.db")).unwrap(), b"precious");
}

#[test]
fn restore_refuses_a_file_that_is_not_a_flowd_backup() {
    let work = tempfile::tempdir().unwrap();
    let bogus = work.path().join("bogus.db");
    std::fs::write(&bogus, b"not a database at all, just text").unwrap();

    let output = flowd_restore(&bogus, &work.path().join("new"));

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not a flowd database"), "{stderr}");
    assert!(!work.path().join("new").join("flowd.db").exists());
}

#[test]
fn backup_of_a_postgresql_store_refuses_and_points_to_pg_dump() {
    let work = tempfile::tempdir().unwrap();
    let output = run(flowd()
        .args(["backup", "--database", "postgres://flowd@db/flowd", "--to"])
        .arg(work.path().join("backup.db")));

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("pg_dump"), "{stderr}");
}

#[test]
fn e2e_a_server_given_another_secret_key_refuses_to_start_and_says_so() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let server = Server::start(&data, work.path(), &[]);
    server.create_workflow();
    server.stop();

    let mut refused = Server::spawn(&data, work.path(), &[("FLOWD_SECRET_KEY", OTHER_KEY)]);
    let status = poll_until(Duration::from_secs(60), || {
        refused.child.try_wait().ok().flatten()
    })
    .expect("flowd serve exits");

    assert!(!status.success());
    let log = refused.log();
    assert!(
        log.contains("not the one this store's secrets are encrypted with"),
        "{log}"
    );
}

#[test]
fn e2e_rotating_the_secret_key_keeps_the_workflows_answering() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let server = Server::start(&data, work.path(), &[]);
    let workflow = server.create_workflow();
    server.stop();
    let old_key = std::fs::read_to_string(data.join("secret-key")).unwrap();

    let rotated = run(flowd()
        .arg("rotate-secret-key")
        .arg("--data-dir")
        .arg(&data));

    assert!(
        rotated.status.success(),
        "{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    assert_ne!(
        std::fs::read_to_string(data.join("secret-key")).unwrap(),
        old_key
    );
    let server = Server::start(&data, work.path(), &[]);
    assert!(server.call(&workflow).is_some(), "the workflow answers");
    server.stop();
}

#[test]
fn e2e_a_restored_store_without_its_secret_key_refuses_to_start_and_says_where_to_put_it() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let server = Server::start(&data, work.path(), &[]);
    server.create_workflow();
    let backup = work.path().join("backup.db");
    let backed_up = flowd_backup(&data, &backup);
    assert!(backed_up.status.success());
    server.stop();
    let restored = work.path().join("restored");
    let restore = flowd_restore(&backup, &restored);
    assert!(restore.status.success());

    let mut keyless = Server::spawn(&restored, work.path(), &[]);
    let status = poll_until(Duration::from_secs(60), || {
        keyless.child.try_wait().ok().flatten()
    })
    .expect("flowd serve exits");

    assert!(!status.success());
    let log = keyless.log();
    assert!(log.contains("there is no secret key: put the key"), "{log}");
    assert!(
        !restored.join("secret-key").exists(),
        "no useless key is left behind"
    );
}
