//! A warm instance's own egress exceptions: which of its job's `egress_allow` are opened, and
//! opening them for the instance's cgroup before the instance is forked (closed when the group
//! goes).

use std::sync::Arc;

use flowd_core::egress::IpNetwork;

use crate::cgroup::{InstanceCgroup, SocketGroup};
use crate::egress::WorkflowExceptions;
use crate::error::RuntimeError;
use crate::job::Job;

/// The networks `job`'s own exceptions open for its instance; none (with a warning) where they
/// cannot be kept to the instance: no `workflow_egress`, or `instance_egress` says why not.
pub(crate) async fn exceptions_of(
    job: &Job,
    workflow_egress: Option<&Arc<WorkflowExceptions>>,
    instance_egress: Result<(), String>,
) -> Vec<(IpNetwork, Option<u16>)> {
    if job.egress_allow.is_empty() {
        return Vec::new();
    }
    let Some(workflow_egress) = workflow_egress.cloned() else {
        tracing::warn!(version = %job.version_key, "this server keeps no egress exception to one workflow (no --egress-workflow-allow, or no egress layer): the workflow's egress_allow is left closed");
        return Vec::new();
    };
    if let Err(why) = instance_egress {
        tracing::warn!(version = %job.version_key, "{why}: the workflow's egress_allow is left closed");
        return Vec::new();
    }
    let rules = job.egress_allow.clone();
    // Host names are resolved here, off the async threads.
    tokio::task::spawn_blocking(move || workflow_egress.networks(&rules))
        .await
        .unwrap_or_default()
}

/// Opens `allow` for the sockets of the instance `n`'s `group`, until the group goes.
pub(crate) async fn open(
    workflow_egress: &Arc<WorkflowExceptions>,
    n: u64,
    group: &mut InstanceCgroup,
    allow: Vec<(IpNetwork, Option<u16>)>,
) -> Result<(), RuntimeError> {
    let Some(path) = group.socket_group().and_then(SocketGroup::nft_path) else {
        tracing::warn!("a warm instance's cgroup has no name nftables can match: its workflow's egress_allow is left closed");
        return Ok(());
    };
    let workflow_egress = workflow_egress.clone();
    let opened = tokio::task::spawn_blocking(move || {
        workflow_egress.open(&format!("instance_{n}"), &path, &allow)
    })
    .await
    .map_err(|error| RuntimeError::Io(std::io::Error::other(error)))?
    .map_err(RuntimeError::EgressExceptions)?;
    group.before_removal(Box::new(move || opened.close()));
    Ok(())
}
