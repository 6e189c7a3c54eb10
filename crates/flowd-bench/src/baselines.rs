//! The baselines flowd is compared with: the HTTP ceiling (axum answering a fixed 200), gunicorn +
//! Flask and uvicorn + Starlette calling the workflow in-process, a fresh interpreter per call, and
//! the raw fork floor of a Python process the size of flowd's warm instance.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::Value;

use crate::flowd::{free_port, Guarded};
use crate::load::{self, Target};

pub const TRIVIAL: &str = include_str!("../python/trivial.py");
pub const HRFLOW: &str = include_str!("../python/hrflow_workflow.py");
pub const UPLOAD: &str = include_str!("../python/upload.py");
pub const HOLD: &str = include_str!("../python/hold.py");
pub const PULL: &str = include_str!("../python/pull.py");
const FLASK_APP: &str = include_str!("../python/flask_app.py");
const STARLETTE_APP: &str = include_str!("../python/starlette_app.py");
const SPAWN_DRIVER: &str = include_str!("../python/spawn_driver.py");
const FORK_FLOOR: &str = include_str!("../python/fork_floor.py");

/// What the baselines' virtual environment holds (unpinned: the versions installed are reported).
pub const PACKAGES: [&str; 4] = ["flask", "gunicorn", "starlette", "uvicorn[standard]"];

/// A server running on its own tokio runtime, in its own thread, until dropped.
pub struct InProcessServer {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl InProcessServer {
    pub fn start(router: Router, worker_threads: usize) -> anyhow::Result<InProcessServer> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("bench-server".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(worker_threads.max(1))
                    .enable_all()
                    .build()
                    .expect("server runtime");
                runtime.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("server listener");
                    let _ = axum::serve(listener, router)
                        .with_graceful_shutdown(async move {
                            let _ = stopped.await;
                        })
                        .await;
                });
            })?;
        Ok(InProcessServer {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for InProcessServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The HTTP ceiling: a Rust server answering a fixed 200, nothing else.
pub fn ceiling() -> anyhow::Result<InProcessServer> {
    async fn fixed() -> &'static str {
        "ok"
    }
    let router = Router::new().route("/hook", post(fixed).get(fixed));
    InProcessServer::start(router, crate::machine::cpus())
}

struct Spawner {
    python: PathBuf,
    code: String,
}

/// A naive runner: every call spawns `python -c <workflow + driver>` with the request on stdin.
pub fn spawn_per_call(python: &Path, workflow_code: &str) -> anyhow::Result<InProcessServer> {
    async fn call(State(spawner): State<Arc<Spawner>>, body: Bytes) -> Response {
        let child = tokio::process::Command::new(&spawner.python)
            .arg("-c")
            .arg(&spawner.code)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn();
        let mut child = match child {
            Ok(child) => child,
            Err(error) => {
                return (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response()
            }
        };
        if let Some(mut stdin) = child.stdin.take() {
            use tokio::io::AsyncWriteExt;
            let _ = stdin.write_all(&body).await;
        }
        let output = match child.wait_with_output().await {
            Ok(output) if output.status.success() => output,
            Ok(output) => {
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    String::from_utf8_lossy(&output.stderr).into_owned(),
                )
                    .into_response()
            }
            Err(error) => {
                return (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response()
            }
        };
        let returned: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
        let status = returned["status_code"]
            .as_u64()
            .and_then(|s| StatusCode::from_u16(s as u16).ok())
            .unwrap_or(StatusCode::OK);
        let body = returned["body"].as_str().unwrap_or("").to_string();
        (status, [("content-type", "application/json")], body).into_response()
    }
    let spawner = Arc::new(Spawner {
        python: python.to_path_buf(),
        code: format!("{workflow_code}\n{SPAWN_DRIVER}"),
    });
    let router = Router::new()
        .route("/hook", post(call).get(|| async { "spawn-per-call" }))
        .with_state(spawner);
    InProcessServer::start(router, crate::machine::cpus())
}

/// The baselines' virtual environment, built from `/usr/bin/python3` with pip (once; reused
/// while its package list is the same). Answers its `bin/python`.
pub fn ensure_venv(dir: &Path) -> anyhow::Result<PathBuf> {
    let python = dir.join("bin/python");
    let marker = dir.join(".flowd-bench-packages");
    let wanted = PACKAGES.join(" ");
    if python.exists() && std::fs::read_to_string(&marker).ok().as_deref() == Some(&wanted) {
        return Ok(python);
    }
    crate::progress!(
        "installing the baselines ({wanted}) into {} …",
        dir.display()
    );
    let _ = std::fs::remove_dir_all(dir);
    run(Command::new("/usr/bin/python3")
        .arg("-m")
        .arg("venv")
        .arg(dir))?;
    run(Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(PACKAGES))?;
    std::fs::write(&marker, &wanted)?;
    Ok(python)
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("run {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// The versions installed in the baselines' environment, as `name==version` lines.
pub fn installed_versions(python: &Path) -> String {
    let output = Command::new(python)
        .args([
            "-m",
            "pip",
            "list",
            "--format=freeze",
            "--disable-pip-version-check",
        ])
        .stdin(Stdio::null())
        .output();
    let Ok(output) = output else {
        return String::new();
    };
    let wanted = [
        "flask",
        "gunicorn",
        "starlette",
        "uvicorn",
        "uvloop",
        "httptools",
    ];
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| {
            let name = line.split("==").next().unwrap_or("").to_ascii_lowercase();
            wanted.contains(&name.as_str())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A Python web server of the baselines, stopped when dropped.
pub struct PythonServer {
    pub process: Guarded,
    pub addr: SocketAddr,
}

/// Writes the apps (and the workflow they import) into `dir`.
fn write_apps(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("trivial.py"), TRIVIAL)?;
    std::fs::write(dir.join("flask_app.py"), FLASK_APP)?;
    std::fs::write(dir.join("starlette_app.py"), STARLETTE_APP)?;
    Ok(())
}

/// gunicorn, 2 sync workers, Flask.
pub async fn gunicorn(python: &Path, dir: &Path, workers: usize) -> anyhow::Result<PythonServer> {
    write_apps(dir)?;
    let port = free_port()?;
    let mut command = Command::new(python);
    command
        .args([
            "-m",
            "gunicorn",
            "--worker-class",
            "sync",
            "--log-level",
            "warning",
        ])
        .arg("--workers")
        .arg(workers.to_string())
        .arg("--bind")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--chdir")
        .arg(dir)
        .arg("flask_app:app");
    start_python_server("gunicorn", command, dir, port).await
}

/// uvicorn, 2 workers, Starlette.
pub async fn uvicorn(python: &Path, dir: &Path, workers: usize) -> anyhow::Result<PythonServer> {
    write_apps(dir)?;
    let port = free_port()?;
    let mut command = Command::new(python);
    command
        .args([
            "-m",
            "uvicorn",
            "--log-level",
            "warning",
            "--no-access-log",
            "--host",
            "127.0.0.1",
        ])
        .arg("--port")
        .arg(port.to_string())
        .arg("--workers")
        .arg(workers.to_string())
        .arg("--app-dir")
        .arg(dir)
        .arg("starlette_app:app");
    start_python_server("uvicorn", command, dir, port).await
}

async fn start_python_server(
    name: &str,
    mut command: Command,
    dir: &Path,
    port: u16,
) -> anyhow::Result<PythonServer> {
    let log = std::fs::File::create(dir.join(format!("{name}.log")))?;
    command
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    let process = Guarded::spawn(name, &mut command)?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    load::wait_until_answers(&Target::get(addr, "/hook"), Duration::from_secs(60))
        .await
        .with_context(|| {
            format!(
                "{name} did not start; its log:\n{}",
                std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default()
            )
        })?;
    Ok(PythonServer { process, addr })
}

/// What the fork floor measured.
pub struct ForkFloor {
    /// Resident size of the process that forks, KiB.
    pub rss_kb: u64,
    /// fork + exit + waitpid, one after another, ns each.
    pub serial_ns: Vec<u64>,
    /// Forks per second with one forking loop per core.
    pub parallel_per_second: f64,
    pub procs: usize,
}

/// Where the fork floor's process comes from: flowd's own interpreter, runner and preloads.
#[derive(Clone, Debug)]
pub struct FloorSpec {
    pub python: PathBuf,
    pub runner: PathBuf,
    pub preload: Vec<String>,
}

/// Runs the fork floor microbenchmark.
pub fn fork_floor(
    spec: &FloorSpec,
    code: &str,
    count: u64,
    seconds: f64,
    procs: usize,
    scratch: &Path,
) -> anyhow::Result<ForkFloor> {
    let script = scratch.join("fork_floor.py");
    std::fs::write(&script, FORK_FLOOR)?;
    let config = serde_json::json!({
        "runner": spec.runner,
        "preload": spec.preload,
        "code": code,
        "count": count,
        "seconds": seconds,
        "procs": procs,
    });
    let output = Command::new(&spec.python)
        .arg(&script)
        .arg(config.to_string())
        .current_dir(scratch)
        .stdin(Stdio::null())
        .output()
        .context("run the fork floor")?;
    if !output.status.success() {
        bail!(
            "the fork floor failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let value: Value = serde_json::from_slice(&output.stdout).context("fork floor output")?;
    let serial_ns = value["serial_ns"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    let forks = value["parallel"]["forks"].as_f64().unwrap_or(0.0);
    let elapsed = value["parallel"]["seconds"].as_f64().unwrap_or(1.0);
    Ok(ForkFloor {
        rss_kb: value["rss_kb"].as_u64().unwrap_or(0),
        serial_ns,
        parallel_per_second: forks / elapsed.max(1e-9),
        procs,
    })
}
