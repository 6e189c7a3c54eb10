//! flowd as a separate process: the `flowd serve` binary on 127.0.0.1 with a scratch data dir,
//! and a small client for the REST API.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::load::{self, Target};
use crate::procfs;

pub const ADMIN_KEY: &str = "flowd-bench-admin-key-0123456789";
/// The secret key every flowd the bench starts is given (`FLOWD_SECRET_KEY`).
const SECRET_KEY: &str = "b0a1c2d3e4f5061728394a5b6c7d8e9f00112233445566778899aabbccddeeff";

/// The `flowd` binary: `explicit` if given, else the one cargo builds for this workspace, in the
/// bench's own profile (`cargo build [--release] -p flowd`, a no-op when it is up to date).
pub fn binary(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .context("workspace root")?
        .to_path_buf();
    let release = !cfg!(debug_assertions);
    let profile = if release { "release" } else { "debug" };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(&workspace)
        .args(["build", "--quiet", "-p", "flowd", "--bin", "flowd"]);
    if release {
        command.arg("--release");
    }
    crate::progress!("building flowd ({profile}) …");
    let status = command.status().context("run cargo build -p flowd")?;
    if !status.success() {
        bail!("cargo build -p flowd failed ({status})");
    }
    let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => target_dir_of_current_exe().unwrap_or_else(|| workspace.join("target")),
    };
    let path = target_dir.join(profile).join("flowd");
    if !path.exists() {
        bail!("{} does not exist after cargo build", path.display());
    }
    Ok(path)
}

/// `target/` above this executable (`target/release/flowd-bench`, `target/debug/deps/…`).
fn target_dir_of_current_exe() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    exe.ancestors()
        .find(|dir| {
            dir.file_name()
                .is_some_and(|name| name == "release" || name == "debug")
        })
        .and_then(|dir| dir.parent())
        .map(Path::to_path_buf)
}

/// A free port on 127.0.0.1 (bound, then released for the server to take).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// A child process killed when dropped, and sent SIGTERM if the bench dies.
pub struct Guarded {
    pub child: Child,
    pub name: String,
}

impl Guarded {
    pub fn spawn(name: &str, command: &mut Command) -> anyhow::Result<Guarded> {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = command
            .spawn()
            .with_context(|| format!("start {name} ({command:?})"))?;
        Ok(Guarded {
            child,
            name: name.to_string(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then SIGKILL after `grace`.
    pub fn stop(&mut self, grace: Duration) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        // SAFETY: signalling our own child by its pid.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(10));
    }
}

/// A running flowd.
pub struct Flowd {
    pub process: Guarded,
    pub addr: SocketAddr,
    pub base: String,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    pub api: Api,
}

/// A client of flowd's REST API, with the admin key.
#[derive(Clone)]
pub struct Api {
    base: String,
    client: reqwest::Client,
}

/// A workflow created through the API.
#[derive(Clone, Debug)]
pub struct Created {
    pub id: String,
    pub hook_path: String,
}

impl Flowd {
    /// Starts `flowd serve` with its data in `dir/data` and its log in `dir/flowd.log`, and waits
    /// until it answers (the first start may provision the Python environment: minutes).
    pub async fn start(
        binary: &Path,
        dir: &Path,
        runtime_dir: &Path,
        extra_args: &[&str],
    ) -> anyhow::Result<Flowd> {
        std::fs::create_dir_all(dir)?;
        std::fs::create_dir_all(runtime_dir)?;
        let port = free_port()?;
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let data_dir = dir.join("data");
        let log = dir.join("flowd.log");
        let log_file = std::fs::File::create(&log)?;
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--log")
            .arg("warn")
            .args(extra_args)
            .env("FLOWD_RUNTIME_DIR", runtime_dir)
            .env("FLOWD_ADMIN_API_KEY", ADMIN_KEY)
            // Nodes sharing a PostgreSQL store open its secret values with one key.
            .env("FLOWD_SECRET_KEY", SECRET_KEY)
            .env_remove("FLOWD_SECRET_KEY_FILE")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file);
        let mut process = Guarded::spawn("flowd", &mut command)?;
        // The port opens at once; /readyz says when the server is started.
        let ready = Target::get(addr, "/readyz");
        let deadline = Instant::now() + Duration::from_secs(900);
        loop {
            if let Some(status) = process.exited() {
                bail!(
                    "flowd exited ({status}) before answering; its log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            if load::wait_until_ok(&ready, Duration::from_millis(200))
                .await
                .is_ok()
            {
                break;
            }
            if Instant::now() > deadline {
                bail!("flowd did not answer within 15 minutes");
            }
        }
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(120))
            .build()?;
        let base = format!("http://{addr}");
        Ok(Flowd {
            process,
            addr,
            base: base.clone(),
            data_dir,
            log,
            api: Api { base, client },
        })
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The hook as a load target, with a JSON body.
    pub fn hook_json(&self, created: &Created, body: &Value) -> Target {
        Target::post(
            self.addr,
            &created.hook_path,
            "application/json",
            body.to_string(),
        )
    }

    /// The Python processes under flowd: the base process (zygote) and its warm instances.
    pub fn python_tree(&self) -> PythonTree {
        let zygote = procfs::children(self.pid()).into_iter().find(|&pid| {
            procfs::cmdline(pid).is_some_and(|args| args.iter().any(|a| a.contains("flowd_runner")))
        });
        let instances = zygote.map(procfs::children).unwrap_or_default();
        PythonTree { zygote, instances }
    }

    /// Stops flowd (SIGTERM, graceful).
    pub fn stop(mut self) {
        self.process.stop(Duration::from_secs(30));
    }
}

impl Api {
    async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut request = self
            .client
            .request(method, format!("{}/api/v1{path}", self.base))
            .bearer_auth(ADMIN_KEY);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, value))
    }

    /// Creates a workflow: `Ok(Ok(created))`, or `Ok(Err((status, body)))` when refused.
    pub async fn create(&self, spec: &Value) -> anyhow::Result<Result<Created, (u16, Value)>> {
        let (status, body) = self
            .api(reqwest::Method::POST, "/workflows", Some(spec))
            .await?;
        if status != 201 {
            return Ok(Err((status, body)));
        }
        let id = body["id"].as_str().context("id")?.to_string();
        let hook_path = body["hook_url"].as_str().unwrap_or("").to_string();
        Ok(Ok(Created { id, hook_path }))
    }

    /// Creates a workflow that must be accepted.
    pub async fn create_ok(&self, spec: &Value) -> anyhow::Result<Created> {
        match self.create(spec).await? {
            Ok(created) => Ok(created),
            Err((status, body)) => bail!("creating {} answered {status}: {body}", spec["name"]),
        }
    }

    /// Changes a workflow (`PATCH /workflows/{id}`).
    pub async fn patch(&self, id: &str, patch: &Value) -> anyhow::Result<()> {
        let (status, body) = self
            .api(
                reqwest::Method::PATCH,
                &format!("/workflows/{id}"),
                Some(patch),
            )
            .await?;
        if status != 200 {
            bail!("PATCH {id} answered {status}: {body}");
        }
        Ok(())
    }

    /// The newest executions of a workflow (at most 1000).
    pub async fn executions(&self, id: &str) -> anyhow::Result<Vec<Value>> {
        let (status, body) = self
            .api(
                reqwest::Method::GET,
                &format!("/workflows/{id}/executions?limit=1000"),
                None,
            )
            .await?;
        if status != 200 {
            bail!("listing executions answered {status}: {body}");
        }
        Ok(body["executions"].as_array().cloned().unwrap_or_default())
    }

    /// A workflow's settings (secrets masked).
    pub async fn settings(&self, id: &str) -> anyhow::Result<Value> {
        let (status, body) = self
            .api(
                reqwest::Method::GET,
                &format!("/workflows/{id}/settings"),
                None,
            )
            .await?;
        if status != 200 {
            bail!("reading settings answered {status}: {body}");
        }
        Ok(body["settings"].clone())
    }

    /// The interpreter version and the environment's directory.
    pub async fn runtime(&self) -> anyhow::Result<(String, PathBuf)> {
        let (_, body) = self.api(reqwest::Method::GET, "/runtimes", None).await?;
        let runtime = &body["runtimes"][0];
        let dir = runtime["environment"]
            .as_str()
            .context("GET /runtimes names no environment")?;
        let version = format!(
            "{} {} ({})",
            runtime["name"].as_str().unwrap_or("?"),
            runtime["version"].as_str().unwrap_or("?"),
            runtime["interpreter"].as_str().unwrap_or("?")
        );
        Ok((version, PathBuf::from(dir)))
    }
}

/// flowd's Python processes.
#[derive(Debug, Clone)]
pub struct PythonTree {
    pub zygote: Option<u32>,
    pub instances: Vec<u32>,
}

/// A catch workflow's creation body.
pub fn catch_spec(name: &str, code: &str, isolation: Option<&str>) -> Value {
    let mut spec = json!({"name": name, "mode": "catch", "code": code});
    if let Some(isolation) = isolation {
        spec["isolation"] = json!(isolation);
    }
    spec
}
