//! A workflow's own exceptions, opened for the sockets of one warm instance: a chain holding
//! them in the flowd instance's table, and an element of its `instances` map sending there the
//! packets of sockets that carry the instance's cgroup v2 group. Opened before the instance runs
//! any code (its group exists, empty, before the instance is forked), closed before its group is
//! removed (nftables names a group by its path).
//!
//! Exceptions are opened only within the ceiling the server was started with: an entry stored
//! under a wider ceiling (a restart with a narrower one) is left closed, and said so.

use flowd_core::egress::ceiling::within;
use flowd_core::egress::{EgressRule, IpNetwork};

use super::nft::{self, NftError};
use super::{resolve_rules, ruleset};

/// Where workflows' own exceptions are opened: the table, and the ceiling on them.
#[derive(Debug)]
pub struct WorkflowExceptions {
    table: String,
    ceiling: Vec<EgressRule>,
}

/// One instance's exceptions, open until [`OpenExceptions::close`].
#[derive(Debug)]
pub(crate) struct OpenExceptions {
    table: String,
    chain: String,
    group: String,
}

impl WorkflowExceptions {
    pub(super) fn new(table: &str, ceiling: Vec<EgressRule>) -> WorkflowExceptions {
        WorkflowExceptions {
            table: table.to_string(),
            ceiling,
        }
    }

    /// What a workflow's `egress_allow` may open (`--egress-workflow-allow`).
    pub fn ceiling(&self) -> &[EgressRule] {
        &self.ceiling
    }

    /// The networks a workflow's `rules` open: those within the ceiling, names resolved now.
    /// The others are left closed, with a warning.
    pub(crate) fn networks(&self, rules: &[EgressRule]) -> Vec<(IpNetwork, Option<u16>)> {
        let (covered, beyond): (Vec<EgressRule>, Vec<EgressRule>) = rules
            .iter()
            .cloned()
            .partition(|rule| within(&self.ceiling, rule));
        for rule in &beyond {
            tracing::warn!(%rule, "a workflow's egress exception is beyond this server's --egress-workflow-allow: left closed");
        }
        resolve_rules(&covered).0
    }

    /// Opens `allow` for the sockets of the cgroup `group` (its path below `/sys/fs/cgroup`), in
    /// a chain named `chain`.
    pub(crate) fn open(
        &self,
        chain: &str,
        group: &str,
        allow: &[(IpNetwork, Option<u16>)],
    ) -> Result<OpenExceptions, NftError> {
        nft::apply(&ruleset::instance_chain_added(
            &self.table,
            chain,
            group,
            allow,
        ))?;
        Ok(OpenExceptions {
            table: self.table.clone(),
            chain: chain.to_string(),
            group: group.to_string(),
        })
    }
}

impl OpenExceptions {
    /// Closes them; the instance's group must still exist. A table already gone (the server
    /// stopping) has nothing left to close.
    pub(crate) fn close(self) {
        let commands = ruleset::instance_chain_removed(&self.table, &self.chain, &self.group);
        if let Err(error) = nft::apply(&commands) {
            tracing::debug!(chain = %self.chain, %error, "an instance's egress exceptions were not removed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(texts: &[&str]) -> Vec<EgressRule> {
        texts.iter().map(|text| text.parse().unwrap()).collect()
    }

    #[test]
    fn only_the_rules_within_the_ceiling_are_opened() {
        let exceptions = WorkflowExceptions::new("t", rules(&["10.200.0.0/24"]));

        let networks = exceptions.networks(&rules(&["10.200.0.2:80", "10.201.0.2"]));

        assert_eq!(
            networks,
            [(IpNetwork::host("10.200.0.2".parse().unwrap()), Some(80))]
        );
    }

    #[test]
    fn a_host_name_within_the_ceiling_opens_what_it_resolves_to_on_its_port() {
        // `localhost` resolves from /etc/hosts: no DNS query leaves the machine.
        let exceptions = WorkflowExceptions::new("t", rules(&["localhost:8080"]));

        let networks = exceptions.networks(&rules(&["localhost:8080"]));

        assert!(networks.contains(&(IpNetwork::host("127.0.0.1".parse().unwrap()), Some(8080))));
    }
}
