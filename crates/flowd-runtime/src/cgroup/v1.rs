//! cgroup v1: the `pids` controller only, where cgroup v2 does not offer the controllers.
//!
//! `/sys/fs/cgroup/pids/flowd-<pid>-<n>/instance-<n>` with `pids.max`; an instance may move
//! itself in because v1 checks only the destination's `cgroup.procs` (and `tasks`), handed to
//! the sandbox user.

use std::path::{Path, PathBuf};

use super::{delegate, remove_stale_groups, remove_tree, InstanceCgroup, InstanceLimits};
use crate::sandbox::SandboxUser;

pub(super) const PIDS_ROOT: &str = "/sys/fs/cgroup/pids";

#[derive(Debug)]
pub(super) struct PidsHierarchy {
    parent: PathBuf,
}

impl PidsHierarchy {
    /// Creates the parent group `name` under the controller's `root`, after removing the groups
    /// of flowd processes that no longer run.
    pub(super) fn open_at(root: &Path, name: &str) -> std::io::Result<PidsHierarchy> {
        remove_stale_groups(root);
        let parent = root.join(name);
        std::fs::create_dir_all(&parent)?;
        Ok(PidsHierarchy { parent })
    }

    pub(super) fn create(
        &self,
        name: &str,
        limits: InstanceLimits,
        user: Option<SandboxUser>,
    ) -> std::io::Result<InstanceCgroup> {
        let group = InstanceCgroup::create_fresh(&self.parent, name)?;
        std::fs::write(
            group.path.join("pids.max"),
            limits.max_processes.to_string(),
        )?;
        for file in ["cgroup.procs", "tasks"] {
            delegate(&group.path, file, user)?;
        }
        Ok(group)
    }
}

impl Drop for PidsHierarchy {
    fn drop(&mut self) {
        remove_tree(&self.parent);
    }
}
