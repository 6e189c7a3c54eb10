//! Content-addressed environments for workflows that declare `requirements`.
//!
//! Each distinct requirement set gets its own virtual environment, built once and shared:
//! `<runtime_dir>/envs/<id>/`, where the id carries the interpreter version, the base
//! environment's name and the set's digest ([`Requirements::digest`]). The environment is layered
//! over the base one (the environment `provision` builds, with `requests` and `hrflow`): a `.pth`
//! file in its site-packages names the base's site-packages, so `sys.path` has the workflow's
//! packages first (a pin shadows the base's version) and the base's after.
//!
//! Like `provision`, an environment is built in a staging directory beside its final place and
//! renamed into place only when complete (with its `.flowd-ready` marker), under a per-environment
//! file lock: two builds of one set, in one flowd process or several, build it once. A failed,
//! timed-out or abandoned build removes its staging directory and kills its installer's process
//! group.
//!
//! The installer is `uv` when it can be had (an explicit path, `uv` on `PATH`, or `uv` installed
//! once from the package index into `<runtime_dir>/tools/uv`), pip otherwise. Its cache lives in
//! `<runtime_dir>/cache/` — on the environments' filesystem, so uv hard-links from it and
//! rebuilding a known set takes well under a second.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use flowd_core::requirements::Requirements;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use tokio::process::Command;

use crate::provision::{last_lines, lock_file, make_world_readable, Environment, PIP_INSTALL};

/// The installer output kept in a [`BuildError`] or [`BuiltEnv`]: its tail, this many bytes.
const LOG_CAP: usize = 256 * 1024;

/// The package index when none is configured.
pub const DEFAULT_INDEX_URL: &str = "https://pypi.org/simple";

/// The environment variables passed through to the installer from flowd's own: proxies, and the
/// TLS trust store (behind an intercepting proxy the index is only reachable with its CA).
const PASSED_THROUGH: [&str; 12] = [
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
];

#[derive(Debug, Clone)]
pub struct BuildConfig {
    /// How long one build (resolution, downloads, installation) may take.
    pub time_limit: Duration,
    /// The package index (PyPI's when `None`), passed to the installer.
    pub index_url: Option<String>,
    pub installer: InstallerChoice,
}

impl Default for BuildConfig {
    fn default() -> BuildConfig {
        BuildConfig {
            time_limit: Duration::from_secs(600),
            index_url: None,
            installer: InstallerChoice::Auto,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstallerChoice {
    /// uv if it can be had (on `PATH`, or installed once into the runtime dir), pip otherwise.
    Auto,
    Pip,
    /// This uv binary (pip, with a warning, if it does not run).
    Uv(PathBuf),
}

#[derive(Debug, Clone)]
enum Installer {
    Uv { path: PathBuf },
    Pip,
}

/// Builds and finds the environments of one base environment.
#[derive(Debug, Clone)]
pub struct EnvBuilder {
    base: Environment,
    runtime_dir: PathBuf,
    config: BuildConfig,
    installer: Installer,
    label: String,
}

/// An environment ready on disk.
#[derive(Debug, Clone)]
pub struct BuiltEnv {
    /// `python3.11-<12 hex>`: the content address.
    pub id: String,
    pub dir: PathBuf,
    /// Its `bin/python`.
    pub python: PathBuf,
    /// The installer's output (empty when the environment already existed).
    pub log: String,
    /// Whether it already existed (built earlier, or by a concurrent build).
    pub reused: bool,
    pub duration: Duration,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{summary}")]
pub struct BuildError {
    pub kind: BuildFailure,
    /// One specific line a user understands.
    pub summary: String,
    /// The installer's full output (its last 256 KiB).
    pub log: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildFailure {
    /// The installer refused a requirement line.
    InvalidRequirements,
    /// The package index could not be reached (refused, DNS, timeout, TLS).
    IndexUnreachable,
    /// A package is not on the index.
    UnknownPackage,
    /// The package exists, no release matches the pin.
    NoMatchingVersion,
    /// The resolver found no set satisfying every requirement.
    Conflict,
    /// A package (an sdist) failed to build.
    BuildFailed,
    /// The build took longer than its time limit.
    TimedOut,
    /// Anything else (the installer failed to start, I/O errors, …).
    Installer,
}

impl BuildFailure {
    /// A stable code for API errors.
    pub fn code(self) -> &'static str {
        match self {
            BuildFailure::InvalidRequirements => "invalid_requirements",
            BuildFailure::IndexUnreachable => "index_unreachable",
            BuildFailure::UnknownPackage => "unknown_package",
            BuildFailure::NoMatchingVersion => "no_matching_version",
            BuildFailure::Conflict => "conflict",
            BuildFailure::BuildFailed => "build_failed",
            BuildFailure::TimedOut => "timed_out",
            BuildFailure::Installer => "installer",
        }
    }
}

impl EnvBuilder {
    /// Resolves the installer once: see [`InstallerChoice`]. Never fails: without uv, pip.
    pub async fn new(base: &Environment, runtime_dir: &Path, config: BuildConfig) -> EnvBuilder {
        let mut builder = EnvBuilder {
            base: base.clone(),
            runtime_dir: runtime_dir.to_path_buf(),
            config,
            installer: Installer::Pip,
            label: "pip".into(),
        };
        let resolved = match &builder.config.installer {
            InstallerChoice::Pip => Err("pip was chosen".to_string()),
            InstallerChoice::Uv(path) => probe_uv(path)
                .await
                .map(|version| (path.clone(), version))
                .map_err(|why| format!("{} does not run: {why}", path.display())),
            InstallerChoice::Auto => builder.find_or_install_uv().await,
        };
        match resolved {
            Ok((path, version)) => {
                tracing::info!(
                    "environments are built with uv {version} at {}",
                    path.display()
                );
                builder.label = format!("uv {version}");
                builder.installer = Installer::Uv { path };
            }
            Err(why) if builder.config.installer == InstallerChoice::Pip => {
                tracing::info!("environments are built with pip ({why})");
            }
            Err(why) => tracing::warn!("environments are built with pip (uv unavailable: {why})"),
        }
        builder
    }

    /// The installer, for the runtime listing: `uv 0.5.11` or `pip`.
    pub fn installer(&self) -> &str {
        &self.label
    }

    /// The content address: interpreter version, base environment, package index (the same
    /// names may resolve to other packages on another index), requirement digest.
    pub fn env_id(&self, requirements: &Requirements) -> String {
        let mut hash = Sha256::new();
        if let Some(index) = &self.config.index_url {
            hash.update(index.as_bytes());
            hash.update(b"\0");
        }
        hash.update(self.base.interpreter.version.as_bytes());
        hash.update(b"\0");
        hash.update(
            self.base
                .dir
                .file_name()
                .unwrap_or_default()
                .as_encoded_bytes(),
        );
        hash.update(b"\0");
        hash.update(requirements.digest().as_bytes());
        let digest = hex::encode(hash.finalize());
        format!("{}-{}", self.base.interpreter.runtime_name, &digest[..12])
    }

    /// The environment of `requirements` if it is ready on disk (no process is started).
    pub fn existing(&self, requirements: &Requirements) -> Option<BuiltEnv> {
        let id = self.env_id(requirements);
        let dir = self.envs_dir().join(&id);
        dir.join(".flowd-ready").exists().then(|| BuiltEnv {
            python: dir.join("bin").join("python"),
            id,
            dir,
            log: String::new(),
            reused: true,
            duration: Duration::ZERO,
        })
    }

    /// The environment of `requirements`, built unless it exists.
    pub async fn build(&self, requirements: &Requirements) -> Result<BuiltEnv, BuildError> {
        let started = Instant::now();
        let reused = |mut env: BuiltEnv| {
            env.duration = started.elapsed();
            Ok(env)
        };
        if let Some(env) = self.existing(requirements) {
            return reused(env);
        }
        let envs = self.envs_dir();
        for dir in [&envs, &self.runtime_dir.join("cache"), &self.home()] {
            std::fs::create_dir_all(dir).map_err(io_failure)?;
        }
        std::fs::set_permissions(&envs, std::fs::Permissions::from_mode(0o755))
            .map_err(io_failure)?;
        let id = self.env_id(requirements);
        let lock_path = envs.join(format!(".{id}.lock"));
        let _lock = tokio::task::spawn_blocking(move || lock_file(&lock_path))
            .await
            .map_err(|e| io_failure(std::io::Error::other(e)))?
            .map_err(io_failure)?;
        if let Some(env) = self.existing(requirements) {
            return reused(env);
        }
        let dir = envs.join(&id);
        let staging = Staging::new(envs.join(format!(".build-{id}")));
        if dir.exists() {
            // Left by a build that died between rename and marker: never ready, so rebuild.
            std::fs::remove_dir_all(&dir).map_err(io_failure)?;
        }
        tracing::info!(%id, installer = %self.label, "building an environment for {} requirements", requirements.lines().len());
        let log = self.populate(staging.path(), &dir, requirements).await?;
        std::fs::write(staging.path().join(".flowd-ready"), b"").map_err(io_failure)?;
        make_world_readable(staging.path()).map_err(io_failure)?;
        std::fs::rename(staging.path(), &dir).map_err(io_failure)?;
        staging.keep();
        tracing::info!(%id, elapsed_ms = started.elapsed().as_millis() as u64, "environment ready");
        Ok(BuiltEnv {
            python: dir.join("bin").join("python"),
            id,
            dir,
            log,
            reused: false,
            duration: started.elapsed(),
        })
    }

    fn envs_dir(&self) -> PathBuf {
        self.runtime_dir.join("envs")
    }

    /// The installers' `HOME` (and working directory): nothing of the operator's.
    fn home(&self) -> PathBuf {
        self.runtime_dir.join("cache").join("home")
    }

    fn index_url(&self) -> &str {
        self.config
            .index_url
            .as_deref()
            .unwrap_or(DEFAULT_INDEX_URL)
    }

    /// Creates the venv in `staging`, installs `requirements` into it and layers it over the
    /// base; answers the installer's output. `dir` is where it will live.
    async fn populate(
        &self,
        staging: &Path,
        dir: &Path,
        requirements: &Requirements,
    ) -> Result<String, BuildError> {
        let deadline = Instant::now() + self.config.time_limit;
        let requirements_file = staging.join("flowd-requirements.txt");
        let mut log = String::new();
        match &self.installer {
            Installer::Uv { path } => {
                let mut venv = self.command(path);
                venv.args(["venv", "--no-config", "--quiet", "--python"])
                    .arg(&self.base.interpreter.executable)
                    .arg(staging);
                log.push_str(&self.run(venv, deadline).await?);
                std::fs::write(&requirements_file, requirements.to_text()).map_err(io_failure)?;
                if !requirements.is_empty() {
                    let mut install = self.command(path);
                    install
                        .args([
                            "pip",
                            "install",
                            "--no-config",
                            "--no-progress",
                            "--compile-bytecode",
                            "--python",
                        ])
                        .arg(staging.join("bin").join("python"))
                        .args(["--index-url", self.index_url()])
                        .arg("-r")
                        .arg(&requirements_file);
                    log.push_str(&self.run(install, deadline).await?);
                }
            }
            Installer::Pip => {
                let mut venv = self.command(&self.base.interpreter.executable);
                venv.args(["-I", "-m", "venv"]).arg(staging);
                log.push_str(&self.run(venv, deadline).await?);
                std::fs::write(&requirements_file, requirements.to_text()).map_err(io_failure)?;
                if !requirements.is_empty() {
                    let mut install = self.command(&staging.join("bin").join("python"));
                    install
                        .args(PIP_INSTALL)
                        .args(["--index-url", self.index_url(), "-r"])
                        .arg(&requirements_file);
                    log.push_str(&self.run(install, deadline).await?);
                }
            }
        }
        let site_packages = |root: &Path| {
            root.join("lib")
                .join(&self.base.interpreter.runtime_name)
                .join("site-packages")
        };
        let base_site = site_packages(&self.base.dir);
        let mut pth = base_site.as_os_str().as_encoded_bytes().to_vec();
        pth.push(b'\n');
        std::fs::write(site_packages(staging).join("_flowd_base.pth"), pth).map_err(io_failure)?;
        rewrite_shebangs(&staging.join("bin"), staging, dir).map_err(io_failure)?;
        Ok(log)
    }

    /// A process with a scrubbed environment: `PATH`, `HOME`, `LANG`, the caches, proxies and the
    /// TLS trust store; no configuration files read.
    fn command(&self, program: &Path) -> Command {
        let cache = self.runtime_dir.join("cache");
        let mut command = Command::new(program);
        command
            .env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into()),
            )
            .env("HOME", self.home())
            .env("LANG", "C.UTF-8")
            .env("UV_CACHE_DIR", cache.join("uv"))
            .env("UV_PYTHON_DOWNLOADS", "never")
            .env("UV_HTTP_RETRIES", "1")
            .env("NO_COLOR", "1")
            .env("PIP_CACHE_DIR", cache.join("pip"))
            .env("PIP_CONFIG_FILE", "/dev/null")
            .env("PIP_RETRIES", "1")
            .current_dir(self.home())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .process_group(0);
        for name in PASSED_THROUGH {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        command
    }

    /// Runs an installer step until `deadline`, stdout and stderr merged; a failure is classified.
    async fn run(&self, command: Command, deadline: Instant) -> Result<String, BuildError> {
        let limit = self.config.time_limit;
        match run_captured(command, deadline).await {
            Ok((status, output)) if status.success() => Ok(output),
            Ok((status, output)) => {
                let (kind, summary) = classify(&output, self.index_url());
                let summary = if kind == BuildFailure::Installer {
                    let how = match status.code() {
                        Some(code) => format!("exit status {code}"),
                        None => format!("signal {}", status.signal().unwrap_or(0)),
                    };
                    format!("{summary} ({how})")
                } else {
                    summary
                };
                Err(BuildError {
                    kind,
                    summary,
                    log: output,
                })
            }
            Err(RunError::TimedOut(output)) => Err(BuildError {
                kind: BuildFailure::TimedOut,
                summary: format!(
                    "the build took longer than the {} s limit",
                    limit.as_secs_f64().ceil() as u64
                ),
                log: output,
            }),
            Err(RunError::Io(error)) => Err(io_failure(error)),
        }
    }

    /// `uv` on `PATH`, else the one installed in `<runtime_dir>/tools/uv`, installed now (once,
    /// under a lock) if need be.
    async fn find_or_install_uv(&self) -> Result<(PathBuf, String), String> {
        if let Some(path) = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("uv"))
                .find(|candidate| candidate.is_file())
        }) {
            match probe_uv(&path).await {
                Ok(version) => return Ok((path, version)),
                Err(why) => tracing::debug!("uv at {} passed over: {why}", path.display()),
            }
        }
        let tools = self.runtime_dir.join("tools");
        let uv = tools.join("uv").join("bin").join("uv");
        if let Ok(version) = probe_uv(&uv).await {
            return Ok((uv, version));
        }
        std::fs::create_dir_all(&tools).map_err(|e| e.to_string())?;
        std::fs::create_dir_all(self.home()).map_err(|e| e.to_string())?;
        let lock_path = tools.join(".uv.lock");
        let _lock = tokio::task::spawn_blocking(move || lock_file(&lock_path))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        if let Ok(version) = probe_uv(&uv).await {
            return Ok((uv, version));
        }
        tracing::info!("installing uv into {} (once)", tools.display());
        let staging = Staging::new(tools.join(format!(".build-uv-{}", std::process::id())));
        let deadline = Instant::now() + self.config.time_limit;
        let failed = |error: RunError| match error {
            RunError::TimedOut(_) => "installing it timed out".to_string(),
            RunError::Io(error) => error.to_string(),
        };
        let mut venv = self.command(&self.base.interpreter.executable);
        venv.args(["-I", "-m", "venv"]).arg(staging.path());
        let (status, output) = run_captured(venv, deadline).await.map_err(failed)?;
        if !status.success() {
            return Err(format!(
                "creating its venv failed: {}",
                last_lines(&output, 3)
            ));
        }
        let mut install = self.command(&staging.path().join("bin").join("python"));
        install
            .args(PIP_INSTALL)
            .args(["--index-url", self.index_url(), "uv"]);
        let (status, output) = run_captured(install, deadline).await.map_err(failed)?;
        if !status.success() {
            let (_, summary) = classify(&output, self.index_url());
            return Err(format!("installing it failed: {summary}"));
        }
        make_world_readable(staging.path()).map_err(|e| e.to_string())?;
        let dest = tools.join("uv");
        if dest.exists() {
            std::fs::remove_dir_all(&dest).map_err(|e| e.to_string())?;
        }
        rewrite_shebangs(&staging.path().join("bin"), staging.path(), &dest)
            .map_err(|e| e.to_string())?;
        std::fs::rename(staging.path(), &dest).map_err(|e| e.to_string())?;
        staging.keep();
        probe_uv(&uv).await.map(|version| (uv, version))
    }
}

/// `0.5.11` from `uv --version`.
async fn probe_uv(path: &Path) -> Result<String, String> {
    let output = Command::new(path)
        .arg("--version")
        .env_clear()
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(10), output)
        .await
        .map_err(|_| "`uv --version` did not answer".to_string())?
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&output.stdout);
    match text.split_whitespace().collect::<Vec<_>>()[..] {
        ["uv", version, ..] if output.status.success() => Ok(version.to_string()),
        _ => Err(format!(
            "`uv --version` answered {:?}",
            last_lines(
                &format!("{text}{}", String::from_utf8_lossy(&output.stderr)),
                2
            )
        )),
    }
}

/// A staging directory, removed when dropped unless kept (renamed into place).
struct Staging(Option<PathBuf>);

impl Staging {
    fn new(path: PathBuf) -> Staging {
        if path.exists() {
            let _ = std::fs::remove_dir_all(&path);
        }
        Staging(Some(path))
    }

    fn path(&self) -> &Path {
        self.0.as_deref().expect("staging path present until kept")
    }

    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_dir_all(path);
        }
    }
}

/// Kills a process group when dropped (a timed-out or abandoned build leaves nothing running).
struct GroupKiller(Option<nix::unistd::Pid>);

impl Drop for GroupKiller {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.take() {
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
        }
    }
}

enum RunError {
    TimedOut(String),
    Io(std::io::Error),
}

/// Runs `command` in its own process group, stdout and stderr merged into one pipe, until it exits
/// or `deadline` passes (then its whole group is killed).
async fn run_captured(
    mut command: Command,
    deadline: Instant,
) -> Result<(std::process::ExitStatus, String), RunError> {
    let (sender, mut receiver) = tokio::net::unix::pipe::pipe().map_err(RunError::Io)?;
    let write_end = sender.into_blocking_fd().map_err(RunError::Io)?;
    let stderr = write_end.try_clone().map_err(RunError::Io)?;
    command
        .stdout(Stdio::from(write_end))
        .stderr(Stdio::from(stderr));
    let mut child = command.spawn().map_err(RunError::Io)?;
    drop(command);
    let killer = GroupKiller(child.id().map(|pid| nix::unistd::Pid::from_raw(pid as i32)));
    let mut output = Vec::new();
    let run = async {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            match receiver.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    output.extend_from_slice(&chunk[..n]);
                    if output.len() > 2 * LOG_CAP {
                        output.drain(..output.len() - LOG_CAP);
                    }
                }
            }
        }
        child.wait().await
    };
    let result = tokio::time::timeout_at(deadline.into(), run).await;
    let text = |output: &[u8]| {
        let tail = &output[output.len().saturating_sub(LOG_CAP)..];
        let text = String::from_utf8_lossy(tail).into_owned();
        if output.len() > LOG_CAP {
            format!("[… earlier output cut …]\n{text}")
        } else {
            text
        }
    };
    match result {
        Ok(Ok(status)) => {
            // The installer is done; anything it left in its group goes with it.
            drop(killer);
            Ok((status, text(&output)))
        }
        Ok(Err(error)) => Err(RunError::Io(error)),
        Err(_) => {
            drop(killer);
            let _ = child.wait().await;
            Err(RunError::TimedOut(text(&output)))
        }
    }
}

/// Console scripts written in the staging directory name its python in their `#!` line: point
/// them at the final directory.
fn rewrite_shebangs(bin: &Path, staging: &Path, dir: &Path) -> std::io::Result<()> {
    let from = format!("#!{}/", staging.display());
    let to = format!("#!{}/", dir.display());
    for entry in std::fs::read_dir(bin)? {
        let path = entry?.path();
        let meta = std::fs::symlink_metadata(&path)?;
        if !meta.is_file() || meta.len() > 1024 * 1024 {
            continue;
        }
        let content = std::fs::read(&path)?;
        if content.starts_with(from.as_bytes()) {
            let mut rewritten = to.as_bytes().to_vec();
            rewritten.extend_from_slice(&content[from.len()..]);
            std::fs::write(&path, rewritten)?;
        }
    }
    Ok(())
}

fn io_failure(error: std::io::Error) -> BuildError {
    BuildError {
        kind: BuildFailure::Installer,
        summary: format!("building the environment failed: {error}"),
        log: String::new(),
    }
}

/// Classifies a failed installer run from its output (uv's or pip's messages) into a kind and one
/// line a user understands.
pub fn classify(output: &str, index_url: &str) -> (BuildFailure, String) {
    // Unreachable first: pip goes on to "no matching distribution" after a connection failure.
    const NETWORK: [(&str, &str); 14] = [
        ("Connection refused", "connection refused"),
        ("dns error", "its host name could not be resolved"),
        (
            "Name or service not known",
            "its host name could not be resolved",
        ),
        (
            "Temporary failure in name resolution",
            "its host name could not be resolved",
        ),
        (
            "nodename nor servname",
            "its host name could not be resolved",
        ),
        (
            "invalid peer certificate",
            "its TLS certificate is not trusted",
        ),
        (
            "CERTIFICATE_VERIFY_FAILED",
            "its TLS certificate is not trusted",
        ),
        ("operation timed out", "the connection timed out"),
        ("Read timed out", "the connection timed out"),
        ("ConnectTimeoutError", "the connection timed out"),
        ("Network is unreachable", "the network is unreachable"),
        ("No route to host", "there is no route to its host"),
        (
            "Failed to establish a new connection",
            "the connection failed",
        ),
        ("tcp connect error", "the connection failed"),
    ];
    let unreachable_context = output.contains("Failed to fetch")
        || output.contains("Request failed after")
        || output.contains("Retrying (Retry(")
        || output.contains("Could not fetch URL")
        || output.contains("error sending request");
    if unreachable_context {
        if let Some((_, reason)) = NETWORK.iter().find(|(needle, _)| output.contains(needle)) {
            return (
                BuildFailure::IndexUnreachable,
                format!("the package index {index_url} could not be reached: {reason}"),
            );
        }
    }

    // Requirement lines the installer refused.
    for needle in [
        "Invalid requirement:",
        "Couldn't parse requirement",
        "Failed to parse",
    ] {
        if let Some(line) = output.lines().find(|l| l.contains(needle)) {
            return (
                BuildFailure::InvalidRequirements,
                format!("the installer refused a requirement: {}", clean(line)),
            );
        }
    }

    // A package that fails to build.
    for marker in ["Failed to build `", "Failed to download and build `"] {
        if let Some(name) = between(output, marker, "`") {
            return build_failed(name);
        }
    }
    if let Some(name) = between(output, "Failed building wheel for ", "\n") {
        return build_failed(name.trim());
    }
    if output.contains("subprocess-exited-with-error")
        || output.contains("did not run successfully")
    {
        let name = output
            .lines()
            .filter_map(|l| l.trim().strip_prefix("Collecting "))
            .next_back()
            .map(|spec| spec.split_whitespace().next().unwrap_or(spec))
            .unwrap_or("a package");
        return build_failed(name);
    }

    // uv's resolver.
    if let Some(name) = between(output, "Because ", " was not found in the package registry")
        .or_else(|| {
            between(
                output,
                "Because ",
                " was not found in the provided package locations",
            )
        })
    {
        return unknown(name, index_url);
    }
    if let Some(spec) = between(output, "there is no version of ", " and you require")
        .or_else(|| between(output, "there is no version of ", ","))
    {
        return no_matching(spec, index_url);
    }
    if output.contains(" is available and you require ") {
        if let Some(spec) = between(
            output,
            " is available and you require ",
            ", we can conclude",
        ) {
            return no_matching(spec, index_url);
        }
    }
    if output.contains("No solution found when resolving dependencies") {
        if let Some(both) = between(output, "Because you require ", ", we can conclude") {
            return (
                BuildFailure::Conflict,
                format!("conflicting requirements: {both}"),
            );
        }
        let reasons: Vec<String> = output
            .split("ecause ")
            .skip(1)
            .filter_map(|part| part.split(", we can conclude").next())
            .map(clean)
            .collect();
        return (
            BuildFailure::Conflict,
            format!(
                "conflicting requirements: {}",
                truncate(&reasons.join("; "), 300)
            ),
        );
    }

    // pip's resolver.
    if let Some(rest) = between(
        output,
        "Could not find a version that satisfies the requirement ",
        "\n",
    ) {
        let (spec, versions) = rest.split_once(" (from versions:").unwrap_or((rest, ""));
        if versions.trim().trim_end_matches(')').trim() == "none" {
            return unknown(package_name(spec), index_url);
        }
        return no_matching(spec, index_url);
    }
    if output.contains("ResolutionImpossible") || output.contains("conflicting dependencies") {
        let causes: Vec<&str> = output
            .lines()
            .skip_while(|l| !l.contains("The conflict is caused by:"))
            .skip(1)
            .map(str::trim)
            .take_while(|l| !l.is_empty())
            .collect();
        let requested: Vec<&str> = causes
            .iter()
            .filter_map(|l| l.strip_prefix("The user requested "))
            .collect();
        let summary = if !requested.is_empty() && requested.len() == causes.len() {
            requested.join(" and ")
        } else if !causes.is_empty() {
            causes
                .iter()
                .map(|l| {
                    l.strip_prefix("The user requested ")
                        .map_or(l.to_string(), |r| format!("{r} is required"))
                })
                .collect::<Vec<_>>()
                .join("; ")
        } else {
            "the resolver found no solution".to_string()
        };
        return (
            BuildFailure::Conflict,
            format!("conflicting requirements: {}", truncate(&summary, 300)),
        );
    }

    let last = output
        .lines()
        .map(str::trim)
        .rfind(|l| l.starts_with("error:") || l.starts_with("ERROR:"))
        .or_else(|| output.lines().map(str::trim).rfind(|l| !l.is_empty()))
        .unwrap_or("no output");
    (
        BuildFailure::Installer,
        format!("the installer failed: {}", truncate(&clean(last), 300)),
    )
}

fn unknown(name: &str, index_url: &str) -> (BuildFailure, String) {
    (
        BuildFailure::UnknownPackage,
        format!("package \"{name}\" was not found on the package index {index_url}"),
    )
}

fn no_matching(spec: &str, index_url: &str) -> (BuildFailure, String) {
    (
        BuildFailure::NoMatchingVersion,
        format!(
            "no version of \"{}\" matching {} is on the package index {index_url}",
            package_name(spec),
            spec.trim()
        ),
    )
}

fn build_failed(name: &str) -> (BuildFailure, String) {
    (
        BuildFailure::BuildFailed,
        format!("building {} failed (see the build log)", package_name(name)),
    )
}

/// `six` from `six==1.0`, `six>=1,<2` or `six[extra]`.
fn package_name(spec: &str) -> &str {
    let spec = spec.trim();
    let end = spec
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(spec.len());
    &spec[..end]
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(&text[from..from + len])
}

/// One line: whitespace collapsed, `error:`/`cause:`/`ERROR:` prefixes dropped.
fn clean(text: &str) -> String {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    ["error: ", "ERROR: ", "cause: "]
        .iter()
        .fold(collapsed, |s, prefix| {
            s.strip_prefix(prefix).map(str::to_string).unwrap_or(s)
        })
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    //! The classifier on output captured from uv 0.13 and pip 24 (`Looking in links` lines and
    //! the like trimmed).

    use super::*;

    const PYPI: &str = DEFAULT_INDEX_URL;

    #[test]
    fn uv_unknown_package_names_it() {
        let output = "Using Python 3.11.7 environment at: e1\nerror: No solution found when resolving dependencies\n  cause: Because flowd-no-such-package-x was not found in the package registry and you require flowd-no-such-package-x, we can conclude that your requirements are unsatisfiable.\n";
        assert_eq!(
            classify(output, PYPI),
            (
                BuildFailure::UnknownPackage,
                "package \"flowd-no-such-package-x\" was not found on the package index https://pypi.org/simple".into()
            )
        );
    }

    #[test]
    fn uv_missing_version_is_no_matching_version() {
        let output = "error: No solution found when resolving dependencies\n  cause: Because there is no version of six==99.0 and you require six==99.0, we can conclude that your requirements are unsatisfiable.\n";
        let (kind, summary) = classify(output, PYPI);
        assert_eq!(kind, BuildFailure::NoMatchingVersion);
        assert_eq!(
            summary,
            "no version of \"six\" matching six==99.0 is on the package index https://pypi.org/simple"
        );
    }

    #[test]
    fn uv_range_beyond_the_releases_is_no_matching_version() {
        let output = "error: No solution found when resolving dependencies\n  cause: Because only six<=1.17.0 is available and you require six>=99,<100, we can conclude that your requirements are unsatisfiable.\n";
        let (kind, summary) = classify(output, PYPI);
        assert_eq!(kind, BuildFailure::NoMatchingVersion);
        assert!(summary.contains("six>=99,<100"), "{summary}");
    }

    #[test]
    fn uv_conflicting_pins_are_a_conflict_naming_both() {
        let output = "error: No solution found when resolving dependencies\n  cause: Because you require python-dateutil==2.8.2 and python-dateutil==2.9.0.post0, we can conclude that your requirements are unsatisfiable.\n";
        assert_eq!(
            classify(output, PYPI),
            (
                BuildFailure::Conflict,
                "conflicting requirements: python-dateutil==2.8.2 and python-dateutil==2.9.0.post0"
                    .into()
            )
        );
    }

    #[test]
    fn uv_conflict_through_a_dependency_is_a_conflict() {
        let output = "error: No solution found when resolving dependencies\n  cause: Because arrow==1.3.0 depends on python-dateutil>=2.7.0 and you require arrow==1.3.0, we can conclude that you require python-dateutil>=2.7.0.\n         And because you require python-dateutil<2.7, we can conclude that your requirements are unsatisfiable.\n";
        let (kind, summary) = classify(output, PYPI);
        assert_eq!(kind, BuildFailure::Conflict);
        assert!(
            summary.contains("arrow==1.3.0 depends on python-dateutil>=2.7.0"),
            "{summary}"
        );
        assert!(summary.contains("python-dateutil<2.7"), "{summary}");
    }

    #[test]
    fn uv_sdist_build_failure_is_build_failed() {
        let output = "error: Failed to build `sklearn==0.0.post12`\n  cause: The build backend returned an error\n  cause: Call to `setuptools.build_meta:__legacy__.get_requires_for_build_wheel` failed (exit status: 1)\n\n         [stderr]\n         The 'sklearn' PyPI package is deprecated, use 'scikit-learn'\n";
        assert_eq!(
            classify(output, PYPI),
            (
                BuildFailure::BuildFailed,
                "building sklearn failed (see the build log)".into()
            )
        );
    }

    #[test]
    fn uv_connection_refused_is_index_unreachable() {
        let output = "error: Request failed after 3 retries in 5.9s\n  cause: Failed to fetch: http://127.0.0.1:9/simple/idna/\n  cause: error sending request for url (http://127.0.0.1:9/simple/idna/)\n  cause: client error (Connect)\n  cause: tcp connect error\n  cause: Connection refused (os error 111)\n";
        assert_eq!(
            classify(output, "http://127.0.0.1:9/simple"),
            (
                BuildFailure::IndexUnreachable,
                "the package index http://127.0.0.1:9/simple could not be reached: connection refused".into()
            )
        );
    }

    #[test]
    fn uv_dns_failure_is_index_unreachable() {
        let output = "error: Request failed after 3 retries in 10.0s\n  cause: Failed to fetch: http://no-such-host.invalid/simple/idna/\n  cause: error sending request for url (http://no-such-host.invalid/simple/idna/)\n  cause: client error (Connect)\n  cause: dns error\n  cause: failed to lookup address information: Name or service not known\n";
        let (kind, summary) = classify(output, "http://no-such-host.invalid/simple");
        assert_eq!(kind, BuildFailure::IndexUnreachable);
        assert!(
            summary.ends_with("its host name could not be resolved"),
            "{summary}"
        );
    }

    #[test]
    fn pip_unknown_package_names_it() {
        let output = "ERROR: Could not find a version that satisfies the requirement flowd-no-such-package-x (from versions: none)\nERROR: No matching distribution found for flowd-no-such-package-x\n";
        let (kind, summary) = classify(output, PYPI);
        assert_eq!(kind, BuildFailure::UnknownPackage);
        assert!(summary.contains("\"flowd-no-such-package-x\""), "{summary}");
    }

    #[test]
    fn pip_missing_version_is_no_matching_version() {
        let output = "ERROR: Could not find a version that satisfies the requirement six==99.0 (from versions: 0.9.0, 1.16.0, 1.17.0)\nERROR: No matching distribution found for six==99.0\n";
        let (kind, summary) = classify(output, PYPI);
        assert_eq!(kind, BuildFailure::NoMatchingVersion);
        assert!(summary.contains("six==99.0"), "{summary}");
    }

    #[test]
    fn pip_conflicting_pins_are_a_conflict_naming_both() {
        let output = "ERROR: Cannot install python-dateutil==2.8.2 and python-dateutil==2.9.0.post0 because these package versions have conflicting dependencies.\n\nThe conflict is caused by:\n    The user requested python-dateutil==2.8.2\n    The user requested python-dateutil==2.9.0.post0\n\nTo fix this you could try to:\n1. loosen the range of package versions you've specified\n\nERROR: ResolutionImpossible: for help visit https://pip.pypa.io/en/latest/topics/dependency-resolution/#dealing-with-dependency-conflicts\n";
        assert_eq!(
            classify(output, PYPI),
            (
                BuildFailure::Conflict,
                "conflicting requirements: python-dateutil==2.8.2 and python-dateutil==2.9.0.post0"
                    .into()
            )
        );
    }

    #[test]
    fn pip_sdist_build_failure_is_build_failed() {
        let output = "Collecting sklearn (from -r r.txt (line 1))\n  Downloading sklearn-0.0.post12.tar.gz (2.6 kB)\n  Getting requirements to build wheel: finished with status 'error'\n  error: subprocess-exited-with-error\n\n  × Getting requirements to build wheel did not run successfully.\n";
        assert_eq!(
            classify(output, PYPI),
            (
                BuildFailure::BuildFailed,
                "building sklearn failed (see the build log)".into()
            )
        );
    }

    #[test]
    fn pip_connection_refused_is_index_unreachable() {
        let output = "WARNING: Retrying (Retry(total=0, connect=None, read=None, redirect=None, status=None)) after connection broken by 'NewConnectionError('<pip._vendor.urllib3.connection.HTTPConnection object at 0x7f80db0cc6d0>: Failed to establish a new connection: [Errno 111] Connection refused')': /simple/idna/\nERROR: Could not find a version that satisfies the requirement idna (from versions: none)\nERROR: No matching distribution found for idna\n";
        let (kind, summary) = classify(output, "http://127.0.0.1:9/simple");
        assert_eq!(kind, BuildFailure::IndexUnreachable);
        assert!(summary.ends_with("connection refused"), "{summary}");
    }

    #[test]
    fn an_untrusted_tls_certificate_is_index_unreachable() {
        let output = "error: Request failed after 3 retries\n  cause: Failed to fetch: https://pypi.org/simple/idna/\n  cause: error sending request for url (https://pypi.org/simple/idna/)\n  cause: invalid peer certificate: UnknownIssuer\n";
        let (kind, summary) = classify(output, PYPI);
        assert_eq!(kind, BuildFailure::IndexUnreachable);
        assert!(
            summary.ends_with("its TLS certificate is not trusted"),
            "{summary}"
        );
    }

    #[test]
    fn a_refused_requirement_is_invalid_requirements() {
        let output = "ERROR: Invalid requirement: 'six=1.0': Expected end or semicolon (after name and no valid version specifier)\n";
        assert_eq!(classify(output, PYPI).0, BuildFailure::InvalidRequirements);
    }

    #[test]
    fn anything_else_is_an_installer_failure_with_its_last_error_line() {
        let output = "Using Python 3.11.7\nerror: failed to create directory `/x`: Permission denied (os error 13)\n";
        assert_eq!(
            classify(output, PYPI),
            (
                BuildFailure::Installer,
                "the installer failed: failed to create directory `/x`: Permission denied (os error 13)".into()
            )
        );
    }

    #[test]
    fn the_log_keeps_the_tail_of_long_output() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut command = Command::new("/bin/sh");
        command.args([
            "-c",
            "head -c 600000 /dev/zero | tr '\\0' x; echo; echo the end",
        ]);
        let (status, log) = runtime
            .block_on(run_captured(
                command,
                Instant::now() + Duration::from_secs(30),
            ))
            .ok()
            .unwrap();
        assert!(status.success());
        assert!(log.len() <= LOG_CAP + 64, "{}", log.len());
        assert!(log.starts_with("[… earlier output cut …]"));
        assert!(log.ends_with("the end\n"));
    }

    #[test]
    fn a_timeout_kills_the_whole_process_group() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let marker = std::env::temp_dir().join(format!("flowd-envs-pg-{}", std::process::id()));
        let _ = std::fs::remove_file(&marker);
        let mut command = Command::new("/bin/sh");
        command
            .args(["-c", "(sleep 2; touch \"$0\") & sleep 30"])
            .arg(&marker)
            .process_group(0);
        let started = Instant::now();
        let result = runtime.block_on(run_captured(
            command,
            Instant::now() + Duration::from_millis(300),
        ));
        assert!(matches!(result, Err(RunError::TimedOut(_))));
        assert!(started.elapsed() < Duration::from_secs(2));
        // An interval in which nothing may happen: the grandchild, had it survived, would write
        // its marker 2 s after it started.
        std::thread::sleep(Duration::from_millis(2500));
        assert!(!marker.exists(), "the grandchild outlived the timeout");
    }
}
