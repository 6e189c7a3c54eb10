//! The isolation layers of a runtime: which are in force on this host, which are missing and
//! why, and which the warm instances apply to themselves.

use crate::cgroup::{self, CgroupsUnavailable, InstanceCgroups};
use crate::config::RuntimeConfig;
use crate::sandbox::SandboxUser;
use crate::zygote::Zygote;

/// One isolation layer and whether it is in force.
#[derive(Debug, Clone, PartialEq)]
pub struct IsolationLayer {
    pub name: &'static str,
    /// What it does here, or why it is missing.
    pub detail: String,
    pub active: bool,
}

/// Decides the layers from what the base process probed and what flowd itself can do; returns
/// the full report and the names the instances must apply.
pub(crate) fn isolation_layers(
    zygote: &Zygote,
    user: Option<SandboxUser>,
    cgroups: Result<&InstanceCgroups, &CgroupsUnavailable>,
    seccomp: &Result<crate::seccomp::InstanceFilter, crate::seccomp::SeccompError>,
    config: &RuntimeConfig,
) -> (Vec<IsolationLayer>, Vec<String>) {
    let probed = |name: &str| {
        zygote
            .layers
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, detail)| detail.clone())
    };
    let layer = |name, detail: String, active| IsolationLayer {
        name,
        detail,
        active,
    };
    let mut layers = vec![
        layer(
            "fork_per_execution",
            "each execution runs in its own fork of the warm instance: no shared globals".into(),
            true,
        ),
        layer(
            "deadline",
            "flowd kills the execution's process group at its time limit, and after every execution"
                .into(),
            true,
        ),
        match user {
            Some(user) => layer(
                "unprivileged_user",
                format!("user code runs as uid {} gid {}", user.uid, user.gid),
                true,
            ),
            None => layer(
                "unprivileged_user",
                "flowd is not root: user code runs under flowd's own uid".into(),
                false,
            ),
        },
        layer(
            "scrubbed_environment",
            "the Python processes start with an empty environment (no FLOWD_* or server secrets)"
                .into(),
            true,
        ),
        layer(
            "private_tmp",
            "each warm instance has its own temporary directory (TMPDIR, HOME, working directory)"
                .into(),
            true,
        ),
    ];
    layers.push(match probed("rlimits") {
        Some(detail) => layer("rlimits", detail, true),
        None => layer("rlimits", "not reported by the base process".into(), false),
    });
    layers.extend(cgroup::layers(cgroups, config.sandbox.max_processes));
    // Landlock: the runner's own; seccomp: the kernel's support probed by the runner, the
    // filter compiled here.
    let seccomp = match seccomp {
        Ok(filter) => probed("seccomp")
            .map(|_| filter.describe())
            .ok_or_else(|| "the kernel offers no seccomp filters".to_string()),
        Err(error) => Err(error.detail()),
    };
    let landlock = probed("landlock").ok_or_else(|| {
        "the kernel offers no Landlock: the filesystem is protected by the unprivileged uid only"
            .to_string()
    });
    let landlock_scope = probed("landlock_scope").ok_or_else(|| {
        "the kernel's Landlock is older than ABI 6: workflows can signal each other's processes and reach their abstract Unix sockets"
            .to_string()
    });
    let mut instance_layers = Vec::new();
    for (name, offered) in [
        ("landlock", landlock),
        ("landlock_scope", landlock_scope),
        ("seccomp", seccomp),
    ] {
        match offered {
            Ok(_) if !config.sandbox.kernel_layers => {
                layers.push(layer(name, "turned off by configuration".into(), false))
            }
            Ok(detail) => {
                instance_layers.push(name.to_string());
                layers.push(layer(name, detail, true));
            }
            Err(missing) => layers.push(layer(name, missing, false)),
        }
    }
    (layers, instance_layers)
}
