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
//! rebuilding a known set takes well under a second. A failed run is classified from the
//! installer's output (`uv`, `pip`, with what both share in `failure`).

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

mod failure;
mod pip;
mod uv;

use failure::Classified;

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

impl Installer {
    /// What a failed run of this installer was, from its output.
    fn classify(&self, output: &str, index_url: &str) -> Classified {
        match self {
            Installer::Uv { .. } => uv::classify(output, index_url),
            Installer::Pip => pip::classify(output, index_url),
        }
    }
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
                let Classified { kind, summary } =
                    self.installer.classify(&output, self.index_url());
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
            let summary = pip::classify(&output, self.index_url()).summary;
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

#[cfg(test)]
mod tests {
    use super::*;

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
