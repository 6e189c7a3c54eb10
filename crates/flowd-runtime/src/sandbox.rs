//! What the Python processes run as, and where they may write.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The unprivileged user that user code runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SandboxUser {
    pub uid: u32,
    pub gid: u32,
}

/// `nobody:nogroup` on Debian and most Linux distributions.
pub const DEFAULT_SANDBOX_USER: SandboxUser = SandboxUser {
    uid: 65534,
    gid: 65534,
};

/// The user to run code as: `configured` if given, `nobody` when flowd runs as root, and `None`
/// (run as flowd's own uid, with a warning from the caller) when flowd cannot switch users.
pub fn choose_user(configured: Option<SandboxUser>) -> Option<SandboxUser> {
    let root = switches_user();
    match configured {
        Some(user) if root => Some(user),
        Some(_) => None,
        None if root => Some(DEFAULT_SANDBOX_USER),
        None => None,
    }
}

/// Whether user code runs as another user than flowd's: when flowd runs as root.
fn switches_user() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Where sandbox dirs go when a data dir is out of the sandbox user's reach.
const SHARED_SANDBOX_ROOT: &str = "/var/lib/flowd";

/// Where a server keeps what user code must reach: the runtime environments and the warm
/// instances' temporary directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxDirs {
    /// Where Python environments are built.
    pub runtime_dir: PathBuf,
    /// Where warm instances get their private temporary directories.
    pub tmp_dir: PathBuf,
}

impl SandboxDirs {
    /// The sandbox dirs of a server whose (canonical) data dir is `data_dir`, under its
    /// [`sandbox_root`]; `runtime_dir` is the one configured, if any.
    pub fn for_data_dir(
        data_dir: &Path,
        runtime_dir: Option<PathBuf>,
    ) -> std::io::Result<SandboxDirs> {
        let root = sandbox_root(data_dir)?;
        Ok(SandboxDirs::under(&root, runtime_dir))
    }

    fn under(root: &Path, runtime_dir: Option<PathBuf>) -> SandboxDirs {
        SandboxDirs {
            runtime_dir: runtime_dir.unwrap_or_else(|| root.join("runtimes")),
            tmp_dir: root.join("sandbox-tmp"),
        }
    }
}

/// Where the runtime environments and the instances' temporary directories go: inside the data
/// dir when the user code's uid can reach it, otherwise (a data dir under `/root`, say, when flowd
/// runs as root) under `/var/lib/flowd/<digest of the data dir>`, so that `flowd serve` works from
/// any checkout.
pub fn sandbox_root(data_dir: &Path) -> std::io::Result<PathBuf> {
    sandbox_root_in(data_dir, switches_user(), Path::new(SHARED_SANDBOX_ROOT))
}

/// [`sandbox_root`], with the shared root (`/var/lib/flowd`) given.
fn sandbox_root_in(
    data_dir: &Path,
    switches_user: bool,
    shared_root: &Path,
) -> std::io::Result<PathBuf> {
    if !switches_user || crate::provision::reachable_by_others(data_dir) {
        return Ok(data_dir.to_path_buf());
    }
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(
        data_dir.as_os_str().as_encoded_bytes(),
    ));
    let dir = shared_root.join(&digest[..16]);
    std::fs::create_dir_all(&dir)?;
    for path in [shared_root, dir.as_path()] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o711))?;
    }
    tracing::info!(
        data_dir = %data_dir.display(),
        sandbox_dir = %dir.display(),
        "the data dir is not reachable by the sandbox user: runtime environments and temporary directories go to the sandbox dir"
    );
    Ok(dir)
}

/// A private, writable temporary directory for one warm instance, removed when dropped.
#[derive(Debug)]
pub struct PrivateTmp {
    path: PathBuf,
}

impl PrivateTmp {
    pub fn create(
        parent: &Path,
        name: &str,
        owner: Option<SandboxUser>,
    ) -> std::io::Result<PrivateTmp> {
        let path = parent.join(name);
        if path.exists() {
            std::fs::remove_dir_all(&path)?;
        }
        std::fs::create_dir_all(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))?;
        if let Some(user) = owner {
            nix::unistd::chown(
                &path,
                Some(nix::unistd::Uid::from_raw(user.uid)),
                Some(nix::unistd::Gid::from_raw(user.gid)),
            )
            .map_err(std::io::Error::from)?;
        }
        Ok(PrivateTmp { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PrivateTmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with_mode(parent: &Path, name: &str, mode: u32) -> PathBuf {
        let dir = parent.join(name);
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
        dir
    }

    #[test]
    fn without_a_user_switch_the_sandbox_root_is_the_data_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let data_dir = dir_with_mode(tmp.path(), "data", 0o700);
        let shared = tmp.path().join("shared");

        let root = sandbox_root_in(&data_dir, false, &shared).unwrap();

        assert_eq!(root, data_dir);
        assert!(!shared.exists());
    }

    #[test]
    fn a_data_dir_the_sandbox_user_reaches_is_the_sandbox_root() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        let data_dir = dir_with_mode(tmp.path(), "data", 0o711);
        let shared = tmp.path().join("shared");

        let root = sandbox_root_in(&data_dir, true, &shared).unwrap();

        assert_eq!(root, data_dir);
        assert!(!shared.exists());
    }

    #[test]
    fn a_data_dir_out_of_the_sandbox_users_reach_gets_a_traversable_dir_under_the_shared_root() {
        let tmp = tempfile::tempdir().unwrap();
        let data_dir = dir_with_mode(tmp.path(), "data", 0o700);
        let shared = tmp.path().join("shared");

        let root = sandbox_root_in(&data_dir, true, &shared).unwrap();

        assert_eq!(root.parent(), Some(shared.as_path()));
        assert_eq!(root.file_name().map(|name| name.len()), Some(16));
        for dir in [&shared, &root] {
            let mode = std::fs::metadata(dir).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o711, "{}", dir.display());
        }
        assert_eq!(sandbox_root_in(&data_dir, true, &shared).unwrap(), root);
    }

    #[test]
    fn sandbox_dirs_are_under_the_root_unless_the_runtime_dir_is_configured() {
        let root = Path::new("/srv/flowd");

        assert_eq!(
            SandboxDirs::under(root, None),
            SandboxDirs {
                runtime_dir: root.join("runtimes"),
                tmp_dir: root.join("sandbox-tmp"),
            }
        );
        assert_eq!(
            SandboxDirs::under(root, Some(PathBuf::from("/opt/envs"))).runtime_dir,
            PathBuf::from("/opt/envs")
        );
    }
}
