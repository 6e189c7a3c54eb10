//! A process-count limit per warm instance with cgroup v1's `pids` controller: a fork bomb in one
//! workflow exhausts its own instance's budget, not the machine's, and every process an instance
//! and its executions left behind can be found and killed when the instance goes.
//!
//! flowd (root) creates `/sys/fs/cgroup/pids/flowd-<pid>-<n>/instance-<n>`, sets `pids.max`, and
//! hands the instance's user the `cgroup.procs` file; the instance moves itself in before it runs
//! any user code. Where the controller is missing or flowd is not root, the layer is reported
//! missing and instances run without it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::sys::signal::{kill, Signal};
use nix::unistd::{chown, Gid, Pid, Uid};

use crate::sandbox::SandboxUser;

const PIDS_ROOT: &str = "/sys/fs/cgroup/pids";

/// This flowd process's parent group, under which each instance gets its own.
#[derive(Debug)]
pub struct PidsHierarchy {
    parent: PathBuf,
}

impl PidsHierarchy {
    /// The hierarchy, if this host offers the controller and flowd may use it.
    pub fn open() -> Option<PidsHierarchy> {
        if !nix::unistd::geteuid().is_root() || !Path::new(PIDS_ROOT).join("cgroup.procs").exists()
        {
            return None;
        }
        remove_stale_groups();
        // Several runtimes may live in one process (tests): each has its own parent group.
        static SEQUENCE: AtomicU64 = AtomicU64::new(0);
        let sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let parent = Path::new(PIDS_ROOT).join(format!("flowd-{}-{sequence}", std::process::id()));
        match std::fs::create_dir_all(&parent) {
            Ok(()) => Some(PidsHierarchy { parent }),
            Err(error) => {
                tracing::debug!(%error, "cgroup pids controller unusable");
                None
            }
        }
    }

    /// A new group for one instance, limited to `max_processes`, joinable by `user`.
    pub fn create(
        &self,
        name: &str,
        max_processes: u32,
        user: Option<SandboxUser>,
    ) -> std::io::Result<PidsGroup> {
        let path = self.parent.join(name);
        if path.exists() {
            let _ = PidsGroup::remove(&path);
        }
        std::fs::create_dir(&path)?;
        let group = PidsGroup { path };
        std::fs::write(group.path.join("pids.max"), max_processes.to_string())?;
        if let Some(user) = user {
            for file in ["cgroup.procs", "tasks"] {
                chown(
                    &group.path.join(file),
                    Some(Uid::from_raw(user.uid)),
                    Some(Gid::from_raw(user.gid)),
                )
                .map_err(std::io::Error::from)?;
            }
        }
        Ok(group)
    }
}

impl Drop for PidsHierarchy {
    fn drop(&mut self) {
        remove_tree(&self.parent);
    }
}

/// Removes the groups of flowd processes that no longer run (after a crash or a hard stop).
fn remove_stale_groups() {
    let Ok(entries) = std::fs::read_dir(PIDS_ROOT) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("flowd-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new("/proc").join(pid.to_string()).exists() {
            remove_tree(&entry.path());
        }
    }
}

/// Kills what is left in a parent group's children and removes them, then the parent.
fn remove_tree(parent: &Path) {
    if let Ok(children) = std::fs::read_dir(parent) {
        for child in children.flatten() {
            if child.path().is_dir() {
                for _ in 0..25 {
                    if PidsGroup::remove(&child.path()).is_ok() {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(4));
                }
            }
        }
    }
    let _ = std::fs::remove_dir(parent);
}

/// One instance's group; dropping it kills what is left in it and removes it.
#[derive(Debug)]
pub struct PidsGroup {
    path: PathBuf,
}

impl PidsGroup {
    /// The file the instance writes itself into.
    pub fn procs_file(&self) -> PathBuf {
        self.path.join("cgroup.procs")
    }

    fn remove(path: &Path) -> std::io::Result<()> {
        kill_all_in(path);
        std::fs::remove_dir(path)
    }
}

/// Kills every process in the group until it is empty (a process may fork while we kill).
fn kill_all_in(path: &Path) {
    for _ in 0..50 {
        let Ok(procs) = std::fs::read_to_string(path.join("cgroup.procs")) else {
            return;
        };
        let pids: Vec<i32> = procs
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

impl Drop for PidsGroup {
    fn drop(&mut self) {
        let path = self.path.clone();
        // Killed processes leave the group once reaped; remove it off the caller's path.
        std::thread::spawn(move || {
            for _ in 0..100 {
                if PidsGroup::remove(&path).is_ok() || !path.exists() {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            tracing::warn!(path = %path.display(), "a cgroup could not be removed");
        });
    }
}
