//! A cgroup per warm instance: a fork bomb in one workflow exhausts its own instance's process
//! budget, not the machine's; on cgroup v2, the instance and its executions together stay within
//! the workflow's `memory_mb` and get an equal share of the CPU; and every process an instance and
//! its executions left behind can be found and killed when the instance goes.
//!
//! flowd (root) makes a parent group per runtime, `flowd-<pid>-<n>`, and one group per instance
//! under it, whose `cgroup.procs` it hands to the sandbox user: the instance moves itself in
//! before it runs any user code (and Landlock then keeps it from moving anywhere else).
//!
//! - cgroup v2 ([`v2`]), used when its hierarchy offers the `memory` and `pids` controllers:
//!   `memory.max`, `memory.swap.max`, `pids.max` and `cpu.weight` per instance.
//! - cgroup v1 ([`v1`]) otherwise: the `pids` controller only (`pids.max`).
//!
//! Where neither is usable, or flowd is not root, the layers are reported missing (with why) and
//! instances run without them.
//!
//! An instance whose workflow has egress exceptions of its own also gets a cgroup v2 group its
//! sockets carry ([`sockets`]).

mod sockets;
mod v1;
mod v2;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::sys::signal::{kill, Signal};
use nix::unistd::{chown, Gid, Pid, Uid};

use crate::sandbox::SandboxUser;
use crate::IsolationLayer;

pub use sockets::{SocketGroup, INSTANCE_GROUP_LEVEL};

/// The CPU weight of every warm instance (cgroup v2's default): under contention, CPU time is
/// shared between instances, whatever the number of processes or threads each runs.
pub const INSTANCE_CPU_WEIGHT: u32 = 100;

/// What one instance's group limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceLimits {
    /// Processes and threads of the instance and all its executions (`pids.max`).
    pub max_processes: u32,
    /// Memory of the instance and all its executions (`memory.max`, cgroup v2 only).
    pub memory_mb: u32,
}

/// Why instances run without a cgroup.
#[derive(Debug, thiserror::Error)]
pub enum CgroupsUnavailable {
    #[error("turned off by configuration")]
    TurnedOff,
    #[error("flowd is not root")]
    NotRoot,
    #[error("no usable cgroup hierarchy: {v2}; and no cgroup v1 pids controller at {v1_root}")]
    NoController { v2: String, v1_root: String },
    #[error("the cgroup {path} could not be set up")]
    Setup {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// This runtime's parent group, under which each instance gets its own.
#[derive(Debug)]
pub struct InstanceCgroups {
    hierarchy: Hierarchy,
    /// Where instances' socket groups come from, or why they get none.
    sockets: Result<sockets::SocketGroups, String>,
}

#[derive(Debug)]
enum Hierarchy {
    Unified(v2::UnifiedHierarchy),
    V1Pids(v1::PidsHierarchy),
}

impl InstanceCgroups {
    /// The groups of this runtime, in cgroup v2 if it offers the controllers, else in cgroup v1's
    /// `pids`. `user` is who the instances run as. With `socket_groups`, instances may also get
    /// a socket group (on a cgroup v1 host, in a v2 hierarchy of its own made here).
    pub fn open(
        kernel_layers: bool,
        user: Option<SandboxUser>,
        socket_groups: bool,
    ) -> Result<InstanceCgroups, CgroupsUnavailable> {
        if !kernel_layers {
            return Err(CgroupsUnavailable::TurnedOff);
        }
        if !nix::unistd::geteuid().is_root() {
            return Err(CgroupsUnavailable::NotRoot);
        }
        let name = parent_group_name();
        let v2_root = v2::UnifiedHierarchy::locate();
        let v2 = match &v2_root {
            Some(root) => match v2::UnifiedHierarchy::open_at(root, &name, user) {
                Ok(hierarchy) => {
                    return Ok(InstanceCgroups {
                        hierarchy: Hierarchy::Unified(hierarchy),
                        sockets: sockets::usable_root(root)
                            .map(|()| sockets::SocketGroups::InstanceGroups),
                    })
                }
                Err(error) => error.to_string(),
            },
            None => "no cgroup v2 hierarchy is mounted".to_string(),
        };
        let v1_root = Path::new(v1::PIDS_ROOT);
        if !v1_root.join("cgroup.procs").exists() {
            return Err(CgroupsUnavailable::NoController {
                v2,
                v1_root: v1_root.display().to_string(),
            });
        }
        tracing::debug!(reason = %v2, "cgroup v2 not used, falling back to cgroup v1 pids");
        v1::PidsHierarchy::open_at(v1_root, &name)
            .map(|hierarchy| InstanceCgroups {
                hierarchy: Hierarchy::V1Pids(hierarchy),
                sockets: if socket_groups {
                    separate_socket_groups(v2_root.as_deref(), &name, user)
                } else {
                    Err("no workflow may have egress exceptions of its own here".into())
                },
            })
            .map_err(|source| CgroupsUnavailable::Setup {
                path: v1_root.join(&name),
                source,
            })
    }

    /// A new group for one instance, with `limits`, joinable by `user`; with a socket group
    /// when `with_socket_group` (an error when instances can get none).
    pub fn create(
        &self,
        name: &str,
        limits: InstanceLimits,
        user: Option<SandboxUser>,
        with_socket_group: bool,
    ) -> std::io::Result<InstanceCgroup> {
        let mut group = match &self.hierarchy {
            Hierarchy::Unified(hierarchy) => hierarchy.create(name, limits, user),
            Hierarchy::V1Pids(hierarchy) => hierarchy.create(name, limits, user),
        }?;
        if with_socket_group {
            group.socket_group = Some(match &self.sockets {
                Ok(sockets::SocketGroups::InstanceGroups) => {
                    SocketGroup::new(group.path.clone(), false)
                }
                Ok(sockets::SocketGroups::Separate(hierarchy)) => hierarchy.create(name, user)?,
                Err(why) => return Err(std::io::Error::other(why.clone())),
            });
        }
        Ok(group)
    }

    /// Whether instances can get a socket group, or why not.
    pub fn socket_groups(&self) -> Result<(), &str> {
        self.sockets.as_ref().map(|_| ()).map_err(String::as_str)
    }

    /// Puts a base process where the instances it forks may move themselves into their groups
    /// from (cgroup v2 lets an unprivileged process move only within a group it may write to).
    pub fn adopt_base(&self, pid: u32) -> std::io::Result<()> {
        if let Ok(sockets::SocketGroups::Separate(hierarchy)) = &self.sockets {
            hierarchy.adopt_base(pid)?;
        }
        match &self.hierarchy {
            Hierarchy::Unified(hierarchy) => hierarchy.adopt_base(pid),
            Hierarchy::V1Pids(_) => Ok(()),
        }
    }
}

/// The socket groups of a host whose limits are cgroup v1: in its cgroup v2 hierarchy, if one
/// is mounted.
fn separate_socket_groups(
    v2_root: Option<&Path>,
    name: &str,
    user: Option<SandboxUser>,
) -> Result<sockets::SocketGroups, String> {
    let root = v2_root.ok_or("no cgroup v2 hierarchy is mounted")?;
    sockets::usable_root(root)?;
    sockets::SocketHierarchy::open_at(root, name, user)
        .map(sockets::SocketGroups::Separate)
        .map_err(|error| {
            format!(
                "the cgroup v2 hierarchy at {} could not be set up: {error}",
                root.display()
            )
        })
}

/// The cgroup layers as `GET /api/v1/system` and the start-up log show them.
pub fn layers(
    cgroups: Result<&InstanceCgroups, &CgroupsUnavailable>,
    max_processes: u32,
) -> Vec<IsolationLayer> {
    let layer = |name, detail: String, active| IsolationLayer {
        name,
        detail,
        active,
    };
    match cgroups.map(|cgroups| &cgroups.hierarchy) {
        Ok(Hierarchy::Unified(hierarchy)) => vec![
            layer(
                "pids_cgroup",
                format!("at most {max_processes} processes and threads per warm instance (cgroup v2 pids.max); what executions leave behind dies with their instance"),
                true,
            ),
            layer(
                "memory_cgroup",
                "a warm instance and its executions together hold at most the workflow's memory_mb (cgroup v2 memory.max, no swap): an execution over it is killed".into(),
                true,
            ),
            if hierarchy.has_cpu() {
                layer(
                    "cpu_cgroup",
                    format!("every warm instance has the same CPU weight ({INSTANCE_CPU_WEIGHT}, cgroup v2 cpu.weight): CPU is shared per instance under contention"),
                    true,
                )
            } else {
                layer(
                    "cpu_cgroup",
                    "cgroup v2 offers no cpu controller here: executions compete for CPU like any process".into(),
                    false,
                )
            },
        ],
        Ok(Hierarchy::V1Pids(_)) => vec![
            layer(
                "pids_cgroup",
                format!("at most {max_processes} processes and threads per warm instance (cgroup v1 pids); what executions leave behind dies with their instance"),
                true,
            ),
            layer(
                "memory_cgroup",
                "no cgroup v2 memory controller on this host (flowd does not use cgroup v1's): memory is bounded per process (RLIMIT_DATA), not per warm instance".into(),
                false,
            ),
            layer(
                "cpu_cgroup",
                "no cgroup v2 cpu controller on this host (flowd does not use cgroup v1's): executions compete for CPU like any process".into(),
                false,
            ),
        ],
        Err(why) => vec![
            layer(
                "pids_cgroup",
                format!("no cgroup ({why}): fork bombs are not contained"),
                false,
            ),
            layer(
                "memory_cgroup",
                format!("no cgroup ({why}): memory is bounded per process (RLIMIT_DATA), not per warm instance"),
                false,
            ),
            layer(
                "cpu_cgroup",
                format!("no cgroup ({why}): executions compete for CPU like any process"),
                false,
            ),
        ],
    }
}

/// `flowd-<pid>-<n>`: several runtimes may live in one process (tests), each with its own.
fn parent_group_name() -> String {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    format!("flowd-{}-{sequence}", std::process::id())
}

/// Hands the file through which a process joins the group at `path` to `user`.
fn delegate(path: &Path, file: &str, user: Option<SandboxUser>) -> std::io::Result<()> {
    let Some(user) = user else {
        return Ok(());
    };
    chown(
        &path.join(file),
        Some(Uid::from_raw(user.uid)),
        Some(Gid::from_raw(user.gid)),
    )
    .map_err(std::io::Error::from)
}

/// Removes the groups under `root` of flowd processes that no longer run (after a crash or a
/// hard stop).
fn remove_stale_groups(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
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
                    if InstanceCgroup::remove(&child.path()).is_ok() {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(4));
                }
            }
        }
    }
    let _ = std::fs::remove_dir(parent);
}

/// What must be undone while an instance's group still exists (the egress rules naming it).
pub type BeforeRemoval = Box<dyn FnOnce() + Send + Sync>;

/// One instance's group; dropping it kills what is left in it and removes it.
pub struct InstanceCgroup {
    path: PathBuf,
    /// The cgroup v2 group its sockets carry, when it was asked for one.
    socket_group: Option<SocketGroup>,
    before_removal: Option<BeforeRemoval>,
}

impl std::fmt::Debug for InstanceCgroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceCgroup")
            .field("path", &self.path)
            .field("socket_group", &self.socket_group)
            .finish_non_exhaustive()
    }
}

impl InstanceCgroup {
    fn at(path: PathBuf) -> InstanceCgroup {
        InstanceCgroup {
            path,
            socket_group: None,
            before_removal: None,
        }
    }

    /// The files the instance writes itself into: its group's, and its socket group's when that
    /// is a group of its own.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        let separate = self
            .socket_group
            .as_ref()
            .filter(|group| group.is_separate())
            .map(|group| group.path().join("cgroup.procs"));
        std::iter::once(self.path.join("cgroup.procs"))
            .chain(separate)
            .collect()
    }

    /// The cgroup v2 group the instance's sockets carry, if it was asked for one.
    pub fn socket_group(&self) -> Option<&SocketGroup> {
        self.socket_group.as_ref()
    }

    /// Runs `undo` when the group goes, before it is removed (and after what it holds is killed).
    pub fn before_removal(&mut self, undo: BeforeRemoval) {
        self.before_removal = Some(undo);
    }

    /// How many times the kernel's OOM killer killed a process in this group (cgroup v2's
    /// `memory.events`); `None` without the memory controller.
    pub fn oom_kills(&self) -> Option<u64> {
        let events = std::fs::read_to_string(self.path.join("memory.events")).ok()?;
        oom_kills_in(&events)
    }

    /// Makes the group `name` under `parent`, in place of one left there; from then on the group
    /// is removed (and what it holds killed) when dropped, so a limit that fails to be written
    /// leaves nothing behind.
    fn create_fresh(parent: &Path, name: &str) -> std::io::Result<InstanceCgroup> {
        let path = parent.join(name);
        if path.exists() {
            let _ = InstanceCgroup::remove(&path);
        }
        std::fs::create_dir(&path)?;
        Ok(InstanceCgroup::at(path))
    }

    fn remove(path: &Path) -> std::io::Result<()> {
        kill_all_in(path);
        std::fs::remove_dir(path)
    }
}

/// The `oom_kill` count of a `memory.events` file.
fn oom_kills_in(events: &str) -> Option<u64> {
    events.lines().find_map(|line| {
        let (key, value) = line.split_once(' ')?;
        (key == "oom_kill").then(|| value.trim().parse().ok())?
    })
}

/// Kills every process in the group: at once with cgroup v2's `cgroup.kill`, else one by one
/// until it is empty (a process may fork while we kill).
fn kill_all_in(path: &Path) {
    let kill_file = std::fs::OpenOptions::new()
        .write(true)
        .open(path.join("cgroup.kill"));
    if kill_file.and_then(|mut file| file.write_all(b"1")).is_ok() {
        return;
    }
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

impl Drop for InstanceCgroup {
    fn drop(&mut self) {
        let path = self.path.clone();
        let separate = self
            .socket_group
            .take()
            .filter(|group| group.is_separate())
            .map(|group| group.path().to_path_buf());
        let before_removal = self.before_removal.take();
        // Killed processes leave the group once reaped; remove it off the caller's path.
        std::thread::spawn(move || {
            kill_all_in(&path);
            if let Some(undo) = before_removal {
                undo();
            }
            for group in std::iter::once(path).chain(separate) {
                remove_with_retries(&group);
            }
        });
    }
}

fn remove_with_retries(path: &Path) {
    for _ in 0..100 {
        if InstanceCgroup::remove(path).is_ok() || !path.exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    tracing::warn!(path = %path.display(), "a cgroup could not be removed");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(cgroups: Result<&InstanceCgroups, &CgroupsUnavailable>) -> Vec<(&'static str, bool)> {
        layers(cgroups, 64)
            .into_iter()
            .map(|layer| (layer.name, layer.active))
            .collect()
    }

    fn fake_v2_root() -> tempfile::TempDir {
        let root = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(root.path().join("cgroup.controllers"), "cpu memory pids").expect("write");
        std::fs::write(root.path().join("cgroup.subtree_control"), "").expect("write");
        root
    }

    /// Groups as on a hybrid host: limits in a cgroup v1 `pids` directory, socket groups in a
    /// cgroup v2 one.
    fn hybrid(v1_root: &Path, v2_root: &Path) -> InstanceCgroups {
        InstanceCgroups {
            hierarchy: Hierarchy::V1Pids(
                v1::PidsHierarchy::open_at(v1_root, "flowd-1-0").expect("usable"),
            ),
            sockets: Ok(sockets::SocketGroups::Separate(
                sockets::SocketHierarchy::open_at(v2_root, "flowd-1-0", None).expect("usable"),
            )),
        }
    }

    const LIMITS: InstanceLimits = InstanceLimits {
        max_processes: 64,
        memory_mb: 256,
    };

    #[test]
    fn on_a_hybrid_host_an_instance_with_a_socket_group_joins_both_hierarchies() {
        let (v1_root, v2_root) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let cgroups = hybrid(v1_root.path(), v2_root.path());

        let group = cgroups
            .create("instance-1", LIMITS, None, true)
            .expect("created");

        assert_eq!(
            group.procs_files(),
            [
                v1_root.path().join("flowd-1-0/instance-1/cgroup.procs"),
                v2_root.path().join("flowd-1-0/instance-1/cgroup.procs"),
            ]
        );
    }

    #[test]
    fn an_instance_without_egress_exceptions_gets_no_socket_group() {
        let (v1_root, v2_root) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let cgroups = hybrid(v1_root.path(), v2_root.path());

        let group = cgroups
            .create("instance-1", LIMITS, None, false)
            .expect("created");

        assert!(group.socket_group().is_none());
        assert_eq!(group.procs_files().len(), 1);
        assert!(!v2_root.path().join("flowd-1-0/instance-1").exists());
    }

    #[test]
    fn a_socket_group_asked_where_there_can_be_none_fails_the_instance() {
        let v1_root = tempfile::tempdir().unwrap();
        let cgroups = InstanceCgroups {
            hierarchy: Hierarchy::V1Pids(
                v1::PidsHierarchy::open_at(v1_root.path(), "flowd-1-0").expect("usable"),
            ),
            sockets: Err("no cgroup v2 hierarchy is mounted".into()),
        };

        let error = cgroups
            .create("instance-1", LIMITS, None, true)
            .expect_err("no socket group");

        assert!(error.to_string().contains("no cgroup v2"), "{error}");
    }

    #[test]
    fn what_must_go_before_the_group_is_undone_when_the_group_goes() {
        let (v1_root, v2_root) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let cgroups = hybrid(v1_root.path(), v2_root.path());
        let mut group = cgroups
            .create("instance-1", LIMITS, None, true)
            .expect("created");
        let (undone, until_undone) = std::sync::mpsc::channel();
        group.before_removal(Box::new(move || {
            let _ = undone.send(());
        }));

        drop(group);

        until_undone
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("undone");
    }

    #[test]
    fn the_oom_kill_count_is_read_from_memory_events() {
        let events = "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n";
        assert_eq!(oom_kills_in(events), Some(2));
        assert_eq!(oom_kills_in("low 0\nmax 1\n"), None);
    }

    #[test]
    fn an_instance_group_without_the_memory_controller_counts_no_oom_kills() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let group = InstanceCgroup::at(dir.path().join("instance-1"));
        std::fs::create_dir(&group.path).expect("mkdir");
        assert_eq!(group.oom_kills(), None);
        std::fs::write(group.path.join("memory.events"), "oom 1\noom_kill 1\n").expect("write");
        assert_eq!(group.oom_kills(), Some(1));
    }

    #[test]
    fn on_cgroup_v2_pids_memory_and_cpu_are_reported_active() {
        let root = fake_v2_root();
        let cgroups = InstanceCgroups {
            hierarchy: Hierarchy::Unified(
                v2::UnifiedHierarchy::open_at(root.path(), "flowd-1-0", None).expect("usable"),
            ),
            sockets: Ok(sockets::SocketGroups::InstanceGroups),
        };
        assert_eq!(
            report(Ok(&cgroups)),
            [
                ("pids_cgroup", true),
                ("memory_cgroup", true),
                ("cpu_cgroup", true)
            ]
        );
    }

    #[test]
    fn on_cgroup_v1_memory_and_cpu_are_reported_missing() {
        let root = tempfile::tempdir().expect("a temporary directory");
        let cgroups = InstanceCgroups {
            hierarchy: Hierarchy::V1Pids(
                v1::PidsHierarchy::open_at(root.path(), "flowd-1-0").expect("usable"),
            ),
            sockets: Err("no cgroup v2 hierarchy is mounted".into()),
        };
        assert_eq!(
            report(Ok(&cgroups)),
            [
                ("pids_cgroup", true),
                ("memory_cgroup", false),
                ("cpu_cgroup", false)
            ]
        );
    }

    #[test]
    fn without_a_cgroup_every_cgroup_layer_is_missing_and_says_why() {
        let layers = layers(Err(&CgroupsUnavailable::NotRoot), 64);
        assert_eq!(layers.len(), 3);
        for layer in layers {
            assert!(!layer.active);
            assert!(
                layer.detail.contains("flowd is not root"),
                "{}",
                layer.detail
            );
        }
    }

    #[test]
    fn the_sandbox_user_may_move_processes_within_the_parent_group_but_not_into_base() {
        use std::os::unix::fs::MetadataExt;
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: handing files to another user needs root");
            return;
        }
        let root = fake_v2_root();
        // The kernel makes these files with each group.
        let parent = root.path().join("flowd-1-0");
        std::fs::create_dir_all(parent.join("base")).expect("mkdir");
        std::fs::write(parent.join("cgroup.procs"), "").expect("write");
        std::fs::write(parent.join("base/cgroup.procs"), "").expect("write");
        let user = SandboxUser {
            uid: 65534,
            gid: 65534,
        };
        let _hierarchy =
            v2::UnifiedHierarchy::open_at(root.path(), "flowd-1-0", Some(user)).expect("usable");
        let owner = |path: &Path| std::fs::metadata(path).expect("exists").uid();
        assert_eq!(owner(&parent.join("cgroup.procs")), 65534);
        assert_eq!(owner(&parent.join("base/cgroup.procs")), 0);
    }
}
