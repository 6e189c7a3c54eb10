//! Provisioning the Python environment flowd runs workflows in: find a real, world-readable
//! interpreter once, then build (first start only) a virtual environment with the base packages.
//!
//! The environment's directory name carries a hash of the interpreter, its version and the base
//! packages, so a change of any of them builds a new one beside the old. It is built under a
//! temporary name and renamed into place when complete, under a file lock, so that several flowd
//! processes (or parallel tests) sharing a runtime directory build it once and never see half of it.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::process::Command;

/// The packages every runtime environment has: what HrFlow's Workflows offered.
pub const BASE_PACKAGES: [&str; 2] = ["requests", "hrflow"];

/// `python` arguments of a quiet, non-interactive `pip install` (packages follow).
pub(crate) const PIP_INSTALL: [&str; 8] = [
    "-I",
    "-m",
    "pip",
    "install",
    "--disable-pip-version-check",
    "--no-input",
    "--progress-bar",
    "off",
];

/// How long installing the base packages may take.
const INSTALL_TIME_LIMIT: Duration = Duration::from_secs(900);

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("no usable Python 3 interpreter found (tried {tried}); install one (e.g. `apt-get install python3 python3-venv`) or point FLOWD_PYTHON at it")]
    NoInterpreter { tried: String },
    #[error("the Python interpreter {path} cannot be used: {reason}")]
    BadInterpreter { path: PathBuf, reason: String },
    #[error("creating the virtual environment in {dir} failed: {output}")]
    Venv { dir: PathBuf, output: String },
    #[error("installing {packages} into {dir} failed (is PyPI reachable?): {output}")]
    Install {
        dir: PathBuf,
        packages: String,
        output: String,
    },
    #[error("I/O error while provisioning the Python runtime in {dir}: {source}")]
    Io {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A real interpreter, found and checked.
#[derive(Debug, Clone)]
pub struct Interpreter {
    /// The interpreter's own path (`sys.executable`, past any shim or symlink).
    pub executable: PathBuf,
    /// `3.11.2`
    pub version: String,
    /// `python3.11`: the runtime's name in hook URLs and the API.
    pub runtime_name: String,
}

/// A provisioned environment.
#[derive(Debug, Clone)]
pub struct Environment {
    pub interpreter: Interpreter,
    /// The virtual environment's root.
    pub dir: PathBuf,
    /// Its `bin/python`.
    pub python: PathBuf,
    /// The base packages with the versions installed.
    pub packages: Vec<(String, String)>,
}

/// Finds the interpreter: `preferred` if given, otherwise the first usable of Debian's and the
/// system's `python3`, then `python3` on `PATH`. With `must_be_world_readable` (user code will run
/// under another uid), interpreters that uid could not execute are passed over.
pub async fn find_interpreter(
    preferred: Option<&Path>,
    must_be_world_readable: bool,
) -> Result<Interpreter, ProvisionError> {
    if let Some(path) = preferred.filter(|path| !path.exists()) {
        return Err(ProvisionError::BadInterpreter {
            path: path.to_path_buf(),
            reason: "it does not exist (check FLOWD_PYTHON / --python)".into(),
        });
    }
    let candidates: Vec<PathBuf> = match preferred {
        Some(path) => vec![path.to_path_buf()],
        None => {
            let mut list = vec![
                PathBuf::from("/usr/bin/python3"),
                PathBuf::from("/usr/local/bin/python3"),
            ];
            if let Some(path) = std::env::var_os("PATH") {
                list.extend(std::env::split_paths(&path).map(|dir| dir.join("python3")));
            }
            list
        }
    };
    let mut tried = Vec::new();
    let mut last_error = None;
    for candidate in candidates {
        if !candidate.exists() || tried.contains(&candidate) {
            continue;
        }
        tried.push(candidate.clone());
        match probe(&candidate, must_be_world_readable).await {
            Ok(interpreter) => return Ok(interpreter),
            Err(error) => {
                tracing::debug!(%error, "python interpreter passed over");
                last_error = Some(error);
            }
        }
    }
    if preferred.is_some() {
        if let Some(error) = last_error {
            return Err(error);
        }
    }
    Err(ProvisionError::NoInterpreter {
        tried: if tried.is_empty() {
            "/usr/bin/python3, /usr/local/bin/python3, python3 on PATH".to_string()
        } else {
            tried
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        },
    })
}

/// Every interpreter to provision a runtime for: the `preferred` ones (each must be usable), or
/// else every usable `python3` and `python3.N` found in `/usr/bin`, `/usr/local/bin` and on `PATH`
/// — one per version (`python3.11`, `python3.12`, …), the system's `python3` first. Two paths to
/// one interpreter are one runtime; two interpreters of one version given explicitly are refused.
pub async fn find_interpreters(
    preferred: &[PathBuf],
    must_be_world_readable: bool,
) -> Result<Vec<Interpreter>, ProvisionError> {
    let mut found: Vec<Interpreter> = Vec::new();
    if !preferred.is_empty() {
        for path in preferred {
            let interpreter = find_interpreter(Some(path), must_be_world_readable).await?;
            match found
                .iter()
                .find(|i| i.runtime_name == interpreter.runtime_name)
            {
                Some(same) if same.executable == interpreter.executable => {}
                Some(same) => {
                    return Err(ProvisionError::BadInterpreter {
                        path: path.clone(),
                        reason: format!(
                            "it is {} like {}: give one interpreter per Python version",
                            interpreter.runtime_name,
                            same.executable.display()
                        ),
                    })
                }
                None => found.push(interpreter),
            }
        }
        return Ok(found);
    }
    let first = find_interpreter(None, must_be_world_readable).await?;
    found.push(first);
    for candidate in versioned_candidates() {
        // Cheap checks first: starting an interpreter (or a shim such as pyenv's) costs 15–150 ms.
        let real = std::fs::canonicalize(&candidate).unwrap_or_else(|_| candidate.clone());
        if found.iter().any(|i| i.executable == real)
            || (must_be_world_readable && !others_can_execute(&candidate))
        {
            continue;
        }
        let Ok(interpreter) = probe(&candidate, must_be_world_readable).await else {
            continue;
        };
        if !found
            .iter()
            .any(|i| i.runtime_name == interpreter.runtime_name)
        {
            found.push(interpreter);
        }
    }
    Ok(found)
}

/// `python3.N` executables in the usual places and on `PATH`.
fn versioned_candidates() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin")];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    let mut out: Vec<PathBuf> = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut names: Vec<String> = entries
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .filter(|name| is_versioned_python(name))
            .collect();
        names.sort();
        for name in names {
            let path = dir.join(name);
            if !out.contains(&path) {
                out.push(path);
            }
        }
    }
    out
}

/// `python3.11`, not `python3.11-config` or `python3.11m`.
fn is_versioned_python(name: &str) -> bool {
    name.strip_prefix("python3.")
        .is_some_and(|minor| !minor.is_empty() && minor.chars().all(|c| c.is_ascii_digit()))
}

async fn probe(
    candidate: &Path,
    must_be_world_readable: bool,
) -> Result<Interpreter, ProvisionError> {
    let bad = |reason: String| ProvisionError::BadInterpreter {
        path: candidate.to_path_buf(),
        reason,
    };
    let output = Command::new(candidate)
        .args([
            "-I",
            "-c",
            "import sys, venv, ensurepip; print(sys.executable); print('%d.%d.%d' % sys.version_info[:3])",
        ])
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| bad(format!("it does not run: {e}")))?;
    if !output.status.success() {
        return Err(bad(format!(
            "it lacks the venv or ensurepip module (Debian: apt-get install python3-venv): {}",
            last_lines(&String::from_utf8_lossy(&output.stderr), 3)
        )));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut lines = text.lines();
    let executable = PathBuf::from(lines.next().unwrap_or_default());
    let version = lines.next().unwrap_or_default().to_string();
    let mut parts = version.split('.');
    let (major, minor) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if major != "3" || minor.parse::<u32>().map(|m| m < 8).unwrap_or(true) {
        return Err(bad(format!(
            "Python {version} is too old: flowd needs 3.8 or newer"
        )));
    }
    let executable = std::fs::canonicalize(&executable).unwrap_or(executable);
    if must_be_world_readable && !others_can_execute(&executable) {
        return Err(bad(format!(
            "{} is not executable by other users, and user code runs under an unprivileged uid",
            executable.display()
        )));
    }
    Ok(Interpreter {
        runtime_name: format!("python{major}.{minor}"),
        executable,
        version,
    })
}

/// Whether a user other than the owner can reach the directory `dir`.
pub fn reachable_by_others(dir: &Path) -> bool {
    others_can_execute(dir)
}

/// Whether a user other than the owner can reach and execute `path`.
fn others_can_execute(path: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    if meta.mode() & 0o001 == 0 {
        return false;
    }
    path.ancestors().skip(1).all(|dir| {
        dir.as_os_str().is_empty()
            || std::fs::metadata(dir).is_ok_and(|meta| meta.mode() & 0o001 != 0)
    })
}

/// The environment for `interpreter` in `runtime_dir`, built if it does not exist yet.
/// `progress` receives a line before anything slow happens.
pub async fn provision(
    interpreter: &Interpreter,
    runtime_dir: &Path,
    progress: &(dyn Fn(&str) + Send + Sync),
) -> Result<Environment, ProvisionError> {
    let io_error = |source| ProvisionError::Io {
        dir: runtime_dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(runtime_dir).map_err(io_error)?;
    std::fs::set_permissions(runtime_dir, std::fs::Permissions::from_mode(0o755))
        .map_err(io_error)?;
    let dir = runtime_dir.join(environment_name(interpreter));
    if !is_ready(&dir) {
        let lock_path = runtime_dir.join(".provision.lock");
        let lock = tokio::task::spawn_blocking(move || lock_file(&lock_path))
            .await
            .map_err(|e| io_error(std::io::Error::other(e)))?
            .map_err(io_error)?;
        let result = if is_ready(&dir) {
            Ok(())
        } else {
            build(interpreter, runtime_dir, &dir, progress).await
        };
        drop(lock);
        result?;
    }
    let python = dir.join("bin").join("python");
    let packages = installed_versions(&python).await;
    Ok(Environment {
        interpreter: interpreter.clone(),
        dir,
        python,
        packages,
    })
}

fn environment_name(interpreter: &Interpreter) -> String {
    let mut hash = Sha256::new();
    hash.update(interpreter.executable.as_os_str().as_encoded_bytes());
    hash.update(interpreter.version.as_bytes());
    for package in BASE_PACKAGES {
        hash.update(package.as_bytes());
    }
    let digest = hex::encode(hash.finalize());
    format!("{}-{}", interpreter.runtime_name, &digest[..12])
}

fn is_ready(dir: &Path) -> bool {
    dir.join(".flowd-ready").exists()
}

async fn build(
    interpreter: &Interpreter,
    runtime_dir: &Path,
    dir: &Path,
    progress: &(dyn Fn(&str) + Send + Sync),
) -> Result<(), ProvisionError> {
    let io_error = |source| ProvisionError::Io {
        dir: dir.to_path_buf(),
        source,
    };
    let staging = runtime_dir.join(format!(".build-{}", std::process::id()));
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(io_error)?;
    }
    progress(&format!(
        "creating the {} environment in {} (first start only)",
        interpreter.runtime_name,
        dir.display()
    ));
    let output = Command::new(&interpreter.executable)
        .args(["-I", "-m", "venv"])
        .arg(&staging)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(io_error)?;
    if !output.status.success() {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(ProvisionError::Venv {
            dir: dir.to_path_buf(),
            output: last_lines(&String::from_utf8_lossy(&output.stderr), 10),
        });
    }
    let packages = BASE_PACKAGES.join(", ");
    progress(&format!("installing {packages} from PyPI …"));
    let install = Command::new(staging.join("bin").join("python"))
        .args(PIP_INSTALL)
        .args(BASE_PACKAGES)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let failed = |output: String| {
        let _ = std::fs::remove_dir_all(&staging);
        ProvisionError::Install {
            dir: dir.to_path_buf(),
            packages: packages.clone(),
            output,
        }
    };
    let output = match tokio::time::timeout(INSTALL_TIME_LIMIT, install).await {
        Err(_) => {
            return Err(failed(format!(
                "pip did not finish within {} s",
                INSTALL_TIME_LIMIT.as_secs()
            )))
        }
        Ok(Err(error)) => return Err(failed(error.to_string())),
        Ok(Ok(output)) => output,
    };
    if !output.status.success() {
        let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&output.stderr));
        return Err(failed(last_lines(&text, 12)));
    }
    std::fs::write(staging.join(".flowd-ready"), b"").map_err(io_error)?;
    make_world_readable(&staging).map_err(io_error)?;
    std::fs::rename(&staging, dir).map_err(io_error)?;
    progress(&format!("{} environment ready", interpreter.runtime_name));
    Ok(())
}

/// User code runs under another uid: the environment must be readable (not writable) by it.
pub(crate) fn make_world_readable(dir: &Path) -> std::io::Result<()> {
    for entry in walk(dir)? {
        let meta = std::fs::symlink_metadata(&entry)?;
        if meta.file_type().is_symlink() {
            continue;
        }
        let mode = meta.mode() & 0o7777;
        let wanted = if meta.is_dir() || mode & 0o100 != 0 {
            (mode | 0o555) & !0o022
        } else {
            (mode | 0o444) & !0o022
        };
        if wanted != mode {
            std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(wanted))?;
        }
    }
    Ok(())
}

fn walk(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = vec![dir.to_path_buf()];
    let mut index = 0;
    while index < out.len() {
        let path = out[index].clone();
        index += 1;
        if std::fs::symlink_metadata(&path)?.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                out.push(entry?.path());
            }
        }
    }
    Ok(out)
}

async fn installed_versions(python: &Path) -> Vec<(String, String)> {
    let script = format!(
        "import importlib.metadata as m\nfor name in {:?}:\n    try: print(name, m.version(name))\n    except Exception: print(name, '?')",
        BASE_PACKAGES
    );
    let Ok(output) = Command::new(python)
        .args(["-I", "-c", &script])
        .stdin(Stdio::null())
        .output()
        .await
    else {
        return Vec::new();
    };
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(name, version)| (name.to_string(), version.to_string()))
        .collect()
}

/// An exclusive lock on a file, released when dropped.
pub(crate) fn lock_file(path: &Path) -> std::io::Result<nix::fcntl::Flock<std::fs::File>> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, errno)| std::io::Error::from(errno))
}

pub(crate) fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versioned_python_names_are_recognised() {
        assert!(is_versioned_python("python3.11"));
        assert!(is_versioned_python("python3.13"));
        for name in [
            "python3",
            "python3.11-config",
            "python3.11m",
            "python3.",
            "python2.7",
        ] {
            assert!(!is_versioned_python(name), "{name}");
        }
    }
}
