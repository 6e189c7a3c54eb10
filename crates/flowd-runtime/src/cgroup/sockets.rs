//! The cgroup v2 group a warm instance's sockets carry, by which the egress policy tells the
//! sockets of one instance from another's (nftables' `socket cgroupv2`): a workflow's own
//! exceptions are opened for its instances' groups only.
//!
//! Where the instances' limits are cgroup v2, that is the instance's own group. On a hybrid host
//! (limits in cgroup v1, a cgroup v2 hierarchy mounted beside them, often without controllers),
//! an instance that needs one gets a group of its own in the v2 hierarchy, laid out like the
//! limits' groups (`flowd-<pid>-<n>/base`, `flowd-<pid>-<n>/instance-<n>`, the parent's
//! `cgroup.procs` delegated): it limits nothing, it only names the sockets. Without a cgroup v2
//! hierarchy, or inside a cgroup namespace (where the levels nftables compares are not those
//! flowd sees), there is none, and no exception can be kept to one workflow.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{delegate, remove_stale_groups, remove_tree};
use crate::sandbox::SandboxUser;

/// How deep instance groups lie below the cgroup v2 root: `<root>/flowd-<pid>-<n>/instance-<n>`.
pub const INSTANCE_GROUP_LEVEL: u8 = 2;

/// Where nftables resolves the cgroup v2 paths of its rules from.
const NFT_CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The inode of the initial cgroup namespace (the kernel's `PROC_CGROUP_INIT_INO`).
const INITIAL_CGROUP_NAMESPACE: u64 = 0xEFFF_FFFB;

/// Where instances' socket groups come from.
#[derive(Debug)]
pub(super) enum SocketGroups {
    /// The instances' own groups are cgroup v2.
    InstanceGroups,
    /// Groups of their own, under this parent in the v2 hierarchy.
    Separate(SocketHierarchy),
}

/// The group an instance's sockets carry.
#[derive(Debug)]
pub struct SocketGroup {
    path: PathBuf,
    /// A group of its own (removed with the instance), not the instance's limits group.
    separate: bool,
}

impl SocketGroup {
    pub(super) fn new(path: PathBuf, separate: bool) -> SocketGroup {
        SocketGroup { path, separate }
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    pub(super) fn is_separate(&self) -> bool {
        self.separate
    }

    /// The group as nftables names it: its path below `/sys/fs/cgroup`.
    pub fn nft_path(&self) -> Option<String> {
        let relative = self.path.strip_prefix(NFT_CGROUP_ROOT).ok()?;
        let text = relative.to_str()?;
        // The path is quoted in the ruleset: nothing in it may end the string.
        (!text.is_empty() && !text.contains(['"', '\n'])).then(|| text.to_string())
    }
}

/// Why instances get no socket group: `Ok` when the cgroup v2 root at `root` can name them.
pub(super) fn usable_root(root: &Path) -> Result<(), String> {
    if !in_initial_cgroup_namespace() {
        return Err("flowd runs in a cgroup namespace, where nftables cannot match a warm instance's cgroup".into());
    }
    if !root.starts_with(NFT_CGROUP_ROOT) {
        return Err(format!(
            "the cgroup v2 hierarchy at {} is outside {NFT_CGROUP_ROOT}, where nftables looks for it",
            root.display()
        ));
    }
    Ok(())
}

fn in_initial_cgroup_namespace() -> bool {
    std::fs::metadata("/proc/self/ns/cgroup")
        .is_ok_and(|namespace| namespace.ino() == INITIAL_CGROUP_NAMESPACE)
}

/// The parent of the separate socket groups of one runtime's instances.
#[derive(Debug)]
pub(super) struct SocketHierarchy {
    parent: PathBuf,
}

impl SocketHierarchy {
    /// Creates the parent group `name` under the cgroup v2 `root`, with its `base/` group and its
    /// `cgroup.procs` delegated to `user` (an instance moves itself from `base/` into its group).
    pub(super) fn open_at(
        root: &Path,
        name: &str,
        user: Option<SandboxUser>,
    ) -> std::io::Result<SocketHierarchy> {
        remove_stale_groups(root);
        let parent = root.join(name);
        std::fs::create_dir_all(&parent)?;
        // From here the parent is removed if a step fails.
        let hierarchy = SocketHierarchy { parent };
        std::fs::create_dir_all(hierarchy.parent.join("base"))?;
        delegate(&hierarchy.parent, "cgroup.procs", user)?;
        Ok(hierarchy)
    }

    /// Moves the base process `pid` into `base/`.
    pub(super) fn adopt_base(&self, pid: u32) -> std::io::Result<()> {
        std::fs::write(
            self.parent.join("base").join("cgroup.procs"),
            pid.to_string(),
        )
    }

    /// A new socket group `name`, joinable by `user`.
    pub(super) fn create(
        &self,
        name: &str,
        user: Option<SandboxUser>,
    ) -> std::io::Result<SocketGroup> {
        let path = self.parent.join(name);
        if path.exists() {
            let _ = std::fs::remove_dir(&path);
        }
        std::fs::create_dir(&path)?;
        let group = SocketGroup::new(path, true);
        if let Err(error) = delegate(&group.path, "cgroup.procs", user) {
            let _ = std::fs::remove_dir(&group.path);
            return Err(error);
        }
        Ok(group)
    }
}

impl Drop for SocketHierarchy {
    fn drop(&mut self) {
        remove_tree(&self.parent);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nftables_names_a_group_by_its_path_below_sys_fs_cgroup() {
        let hybrid = SocketGroup::new(
            PathBuf::from("/sys/fs/cgroup/unified/flowd-1-0/instance-3"),
            true,
        );
        let unified = SocketGroup::new(PathBuf::from("/sys/fs/cgroup/flowd-1-0/instance-3"), false);

        assert_eq!(
            hybrid.nft_path().as_deref(),
            Some("unified/flowd-1-0/instance-3")
        );
        assert_eq!(unified.nft_path().as_deref(), Some("flowd-1-0/instance-3"));
    }

    #[test]
    fn a_group_outside_sys_fs_cgroup_has_no_name_for_nftables() {
        let elsewhere = SocketGroup::new(PathBuf::from("/mnt/cgroup2/flowd-1-0/instance-3"), true);

        assert_eq!(elsewhere.nft_path(), None);
        assert!(usable_root(Path::new("/mnt/cgroup2")).is_err());
    }

    #[test]
    fn a_separate_group_is_made_joinable_under_a_parent_with_a_base_group() {
        let root = tempfile::tempdir().expect("a temporary directory");

        let hierarchy = SocketHierarchy::open_at(root.path(), "flowd-1-0", None).expect("made");
        let group = hierarchy.create("instance-4", None).expect("made");

        assert!(root.path().join("flowd-1-0/base").is_dir());
        assert_eq!(group.path(), root.path().join("flowd-1-0/instance-4"));
        assert!(group.is_separate());
        // No process has pid 0x7fffffff (pid_max is at most 2^22): removing the group kills none.
        hierarchy.adopt_base(0x7fff_ffff).expect("moved");
        assert_eq!(
            std::fs::read_to_string(root.path().join("flowd-1-0/base/cgroup.procs")).unwrap(),
            "2147483647"
        );
    }

    #[test]
    fn the_parent_goes_with_the_hierarchy() {
        let root = tempfile::tempdir().expect("a temporary directory");

        drop(SocketHierarchy::open_at(root.path(), "flowd-1-0", None).expect("made"));

        assert!(!root.path().join("flowd-1-0").exists());
    }
}
