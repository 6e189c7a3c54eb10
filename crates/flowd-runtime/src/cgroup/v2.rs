//! cgroup v2 (the unified hierarchy), used when it offers the `memory` and `pids` controllers.
//!
//! ```text
//! <root>/flowd-<pid>-<n>/            controllers enabled for its children; cgroup.procs delegated
//!                        base/       the runtime's base processes
//!                        instance-<n>/  memory.max, memory.swap.max, pids.max, cpu.weight
//! ```
//!
//! cgroup v2 lets a process move into a group only if it may write to `cgroup.procs` of the
//! destination *and* of the closest group holding both the source and the destination. The base
//! processes are moved into `base/` by flowd, so that the instances they fork (starting in
//! `base/`) can move themselves into their own group under the same delegated parent.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::{
    delegate, remove_stale_groups, remove_tree, InstanceCgroup, InstanceLimits, INSTANCE_CPU_WEIGHT,
};
use crate::sandbox::SandboxUser;

/// Where cgroup v2 is mounted: the whole of `/sys/fs/cgroup` on a unified host, or its
/// `unified` directory on a hybrid one.
const CANDIDATE_ROOTS: [&str; 2] = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"];

/// The controllers flowd needs, and the one it uses when present.
const REQUIRED: [&str; 2] = ["memory", "pids"];
const OPTIONAL: [&str; 1] = ["cpu"];

/// Why cgroup v2 is not used.
#[derive(Debug, thiserror::Error)]
pub(super) enum UnifiedUnusable {
    #[error("cgroup v2 at {root} offers [{offered}], not the memory and pids controllers")]
    MissingControllers { root: PathBuf, offered: String },
    #[error("cgroup v2 at {} could not be set up", path.display())]
    Setup {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug)]
pub(super) struct UnifiedHierarchy {
    parent: PathBuf,
    /// Whether the `cpu` controller is enabled (`cpu.weight` set per instance).
    cpu: bool,
}

impl UnifiedHierarchy {
    /// The root of this host's cgroup v2 hierarchy, if one is mounted.
    pub(super) fn locate() -> Option<PathBuf> {
        CANDIDATE_ROOTS
            .iter()
            .map(PathBuf::from)
            .find(|root| root.join("cgroup.controllers").is_file())
    }

    /// Creates the parent group `name` under `root`, with the controllers enabled for its
    /// children and its `cgroup.procs` delegated to `user`, and its `base/` group.
    pub(super) fn open_at(
        root: &Path,
        name: &str,
        user: Option<SandboxUser>,
    ) -> Result<UnifiedHierarchy, UnifiedUnusable> {
        let setup = |path: &Path| {
            let path = path.to_path_buf();
            move |source| UnifiedUnusable::Setup { path, source }
        };
        let offered = read_controllers(&root.join("cgroup.controllers")).map_err(setup(root))?;
        if !REQUIRED.iter().all(|c| offered.contains(*c)) {
            return Err(UnifiedUnusable::MissingControllers {
                root: root.to_path_buf(),
                offered: offered.into_iter().collect::<Vec<_>>().join(" "),
            });
        }
        remove_stale_groups(root);
        // The cpu controller can be refused (real-time threads outside the root group): then
        // the others are enabled without it.
        let mut cpu = OPTIONAL.iter().all(|c| offered.contains(*c));
        if cpu {
            if let Err(error) = enable_controllers(root, true) {
                tracing::debug!(%error, "cgroup v2 cpu controller refused");
                cpu = false;
            }
        }
        if !cpu {
            enable_controllers(root, false).map_err(setup(root))?;
        }
        let parent = root.join(name);
        std::fs::create_dir_all(&parent).map_err(setup(&parent))?;
        // From here the parent is removed if a step fails.
        let hierarchy = UnifiedHierarchy { parent, cpu };
        let parent = &hierarchy.parent;
        enable_controllers(parent, cpu).map_err(setup(parent))?;
        std::fs::create_dir_all(parent.join("base")).map_err(setup(parent))?;
        delegate(parent, "cgroup.procs", user).map_err(setup(parent))?;
        Ok(hierarchy)
    }

    pub(super) fn has_cpu(&self) -> bool {
        self.cpu
    }

    /// Moves the base process `pid` into `base/` (a process already there stays).
    pub(super) fn adopt_base(&self, pid: u32) -> std::io::Result<()> {
        std::fs::write(
            self.parent.join("base").join("cgroup.procs"),
            pid.to_string(),
        )
    }

    pub(super) fn create(
        &self,
        name: &str,
        limits: InstanceLimits,
        user: Option<SandboxUser>,
    ) -> std::io::Result<InstanceCgroup> {
        let group = InstanceCgroup::create_fresh(&self.parent, name)?;
        let memory_bytes = u64::from(limits.memory_mb) << 20;
        std::fs::write(group.path.join("memory.max"), memory_bytes.to_string())?;
        // Without swap accounting (a kernel option) no group has the file: nothing to limit.
        if self.parent.join("memory.swap.max").exists() {
            std::fs::write(group.path.join("memory.swap.max"), "0")?;
        }
        std::fs::write(
            group.path.join("pids.max"),
            limits.max_processes.to_string(),
        )?;
        if self.cpu {
            std::fs::write(
                group.path.join("cpu.weight"),
                INSTANCE_CPU_WEIGHT.to_string(),
            )?;
        }
        delegate(&group.path, "cgroup.procs", user)?;
        Ok(group)
    }
}

impl Drop for UnifiedHierarchy {
    fn drop(&mut self) {
        remove_tree(&self.parent);
    }
}

/// Enables the controllers flowd uses (the `cpu` one if `cpu`) for the children of `group`.
fn enable_controllers(group: &Path, cpu: bool) -> std::io::Result<()> {
    let enable = REQUIRED
        .iter()
        .chain(if cpu { &OPTIONAL[..] } else { &[] })
        .map(|c| format!("+{c}"))
        .collect::<Vec<_>>()
        .join(" ");
    std::fs::write(group.join("cgroup.subtree_control"), enable)
}

/// The names in a `cgroup.controllers` file (one line, separated by spaces).
fn read_controllers(path: &Path) -> std::io::Result<BTreeSet<String>> {
    Ok(std::fs::read_to_string(path)?
        .split_whitespace()
        .map(str::to_string)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory laid out like a cgroup v2 root offering `controllers`.
    fn fake_root(controllers: &str) -> tempfile::TempDir {
        let root = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(root.path().join("cgroup.controllers"), controllers).expect("write");
        std::fs::write(root.path().join("cgroup.subtree_control"), "").expect("write");
        std::fs::write(root.path().join("cgroup.procs"), "").expect("write");
        root
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).expect("a file flowd wrote")
    }

    const LIMITS: InstanceLimits = InstanceLimits {
        max_processes: 64,
        memory_mb: 300,
    };

    #[test]
    fn a_root_without_the_memory_controller_is_not_used() {
        let root = fake_root("cpuset cpu io pids hugetlb");
        let error = UnifiedHierarchy::open_at(root.path(), "flowd-1-0", None)
            .expect_err("memory is missing");
        assert!(
            matches!(&error, UnifiedUnusable::MissingControllers { offered, .. } if offered.contains("hugetlb")),
            "{error}"
        );
        assert!(!root.path().join("flowd-1-0").exists(), "nothing created");
        assert_eq!(read(&root.path().join("cgroup.subtree_control")), "");
    }

    #[test]
    fn a_root_with_only_hugetlb_like_a_hybrid_host_is_not_used() {
        let root = fake_root("hugetlb\n");
        assert!(UnifiedHierarchy::open_at(root.path(), "flowd-1-0", None).is_err());
    }

    #[test]
    fn opening_enables_the_controllers_for_the_root_and_the_parent_group() {
        let root = fake_root("cpuset cpu io memory hugetlb pids rdma misc\n");
        let hierarchy = UnifiedHierarchy::open_at(root.path(), "flowd-1-0", None).expect("usable");
        let parent = root.path().join("flowd-1-0");
        assert_eq!(
            read(&root.path().join("cgroup.subtree_control")),
            "+memory +pids +cpu"
        );
        assert_eq!(
            read(&parent.join("cgroup.subtree_control")),
            "+memory +pids +cpu"
        );
        assert!(parent.join("base").is_dir());
        assert!(hierarchy.has_cpu());
    }

    #[test]
    fn without_the_cpu_controller_only_memory_and_pids_are_enabled() {
        let root = fake_root("memory pids");
        let hierarchy = UnifiedHierarchy::open_at(root.path(), "flowd-1-0", None).expect("usable");
        assert_eq!(
            read(&root.path().join("flowd-1-0").join("cgroup.subtree_control")),
            "+memory +pids"
        );
        let group = hierarchy
            .create("instance-1", LIMITS, None)
            .expect("created");
        assert!(!group.path.join("cpu.weight").exists());
    }

    #[test]
    fn an_instance_group_gets_its_memory_pids_and_cpu_limits() {
        let root = fake_root("cpu memory pids");
        let hierarchy = UnifiedHierarchy::open_at(root.path(), "flowd-1-0", None).expect("usable");
        let group = hierarchy
            .create("instance-7", LIMITS, None)
            .expect("created");
        let path = root.path().join("flowd-1-0").join("instance-7");
        assert_eq!(group.procs_files(), [path.join("cgroup.procs")]);
        assert_eq!(read(&path.join("memory.max")), (300u64 << 20).to_string());
        assert_eq!(read(&path.join("pids.max")), "64");
        assert_eq!(read(&path.join("cpu.weight")), "100");
    }

    #[test]
    fn swap_is_limited_to_nothing_where_the_kernel_accounts_it() {
        let root = fake_root("cpu memory pids");
        // With swap accounting, the kernel gives every group below the root this file.
        let parent = root.path().join("flowd-1-0");
        std::fs::create_dir(&parent).expect("mkdir");
        std::fs::write(parent.join("memory.swap.max"), "max").expect("write");
        let hierarchy = UnifiedHierarchy::open_at(root.path(), "flowd-1-0", None).expect("usable");
        let group = hierarchy
            .create("instance-1", LIMITS, None)
            .expect("created");
        assert_eq!(read(&group.path.join("memory.swap.max")), "0");
    }

    #[test]
    fn without_swap_accounting_no_swap_limit_is_written() {
        let root = fake_root("cpu memory pids");
        let hierarchy = UnifiedHierarchy::open_at(root.path(), "flowd-1-0", None).expect("usable");
        let group = hierarchy
            .create("instance-1", LIMITS, None)
            .expect("created");
        assert!(!group.path.join("memory.swap.max").exists());
    }

    #[test]
    fn a_base_process_is_moved_into_the_base_group() {
        let root = fake_root("cpu memory pids");
        let hierarchy = UnifiedHierarchy::open_at(root.path(), "flowd-1-0", None).expect("usable");
        hierarchy.adopt_base(4242).expect("moved");
        assert_eq!(
            read(&root.path().join("flowd-1-0/base/cgroup.procs")),
            "4242"
        );
    }

    #[test]
    fn the_groups_of_a_flowd_that_no_longer_runs_are_removed_at_open() {
        let root = fake_root("cpu memory pids");
        // No process has pid 0x7fffffff (pid_max is at most 2^22).
        let stale = root.path().join("flowd-2147483647-0");
        std::fs::create_dir_all(stale.join("instance-3")).expect("mkdir");
        let other = root.path().join("system.slice");
        std::fs::create_dir(&other).expect("mkdir");
        let _hierarchy = UnifiedHierarchy::open_at(root.path(), "flowd-1-0", None).expect("usable");
        assert!(!stale.exists());
        assert!(other.exists(), "groups not made by flowd are left alone");
    }
}
