//! The process's open-file limit: raised to its hard limit at start, and the default
//! connection cap derived from it.

use nix::sys::resource::{getrlimit, setrlimit, Resource, RLIM_INFINITY};

/// File descriptors kept for everything but client connections: the database, the Python
/// processes' sockets and pipes, environment builds.
pub const RESERVED_DESCRIPTORS: u64 = 1024;

/// The cap used when the limit is unbounded.
const UNBOUNDED_CAP: u64 = 1 << 20;

/// The open-file limit before and after [`raise_to_hard_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdLimit {
    pub before: u64,
    pub now: u64,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard one.
pub fn raise_to_hard_limit() -> nix::Result<FdLimit> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    Ok(FdLimit {
        before: soft,
        now: hard.max(soft),
    })
}

/// The connection cap for a soft open-file limit of `soft`: what the limit leaves after
/// [`RESERVED_DESCRIPTORS`], at least 64.
pub fn default_max_connections(soft: u64) -> usize {
    let soft = if soft == RLIM_INFINITY {
        UNBOUNDED_CAP
    } else {
        soft.min(UNBOUNDED_CAP)
    };
    usize::try_from(soft.saturating_sub(RESERVED_DESCRIPTORS).max(64)).unwrap_or(usize::MAX)
}

/// The connection cap for this process's current soft open-file limit.
pub fn current_default_max_connections() -> usize {
    let soft = getrlimit(Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| soft);
    default_max_connections(soft)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_leaves_the_reserved_descriptors() {
        assert_eq!(default_max_connections(65_536), 64_512);
    }

    #[test]
    fn cap_is_at_least_64_under_a_tiny_limit() {
        assert_eq!(default_max_connections(256), 64);
    }

    #[test]
    fn unbounded_limit_gives_a_bounded_cap() {
        assert_eq!(
            default_max_connections(RLIM_INFINITY),
            (UNBOUNDED_CAP - RESERVED_DESCRIPTORS) as usize
        );
    }
}
