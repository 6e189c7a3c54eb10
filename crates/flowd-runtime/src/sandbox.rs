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
    let root = nix::unistd::geteuid().is_root();
    match configured {
        Some(user) if root => Some(user),
        Some(_) => None,
        None if root => Some(DEFAULT_SANDBOX_USER),
        None => None,
    }
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
