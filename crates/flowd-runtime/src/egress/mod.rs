//! The egress policy: where user code may connect. By default the sandbox's uid cannot reach
//! loopback, private (RFC 1918, IPv6 ULA), link-local (cloud metadata included), multicast or
//! the host's own addresses; public addresses work. Exceptions (`--egress-allow`) open
//! destinations server-wide; a proxy (`--egress-proxy`) makes every other destination refused,
//! the proxy itself excepted. Enforced with an nftables table per flowd instance on the
//! sandbox's uid (`ruleset`, loaded by `nft`), removed when the runtimes stop.
//!
//! A workflow's own exceptions (its `egress_allow`, within `--egress-workflow-allow`) are opened
//! for the sockets of its warm instances only (`instances`).

mod instances;
mod nft;
mod proxy;
mod resolvers;
mod ruleset;

use std::net::ToSocketAddrs;
use std::sync::Arc;

use flowd_core::egress::{EgressRule, IpNetwork};

use crate::layers::IsolationLayer;
use crate::sandbox::SandboxUser;

pub use instances::WorkflowExceptions;
pub use nft::NftError;
pub use proxy::{EgressProxy, EgressProxyError};
use ruleset::{ResolvedPolicy, REFUSED_V4, REFUSED_V6};

/// The layer's name in the isolation report.
const LAYER: &str = "egress";

/// What the server lets user code connect to.
#[derive(Debug, Clone)]
pub struct EgressConfig {
    /// Whether the policy is enforced. Turned off only to measure what it costs, or where the
    /// host's firewall is managed otherwise.
    pub enabled: bool,
    /// Destinations opened server-wide.
    pub allow: Vec<EgressRule>,
    /// The proxy all other outbound traffic must go through.
    pub proxy: Option<EgressProxy>,
    /// The ceiling of workflows' own exceptions: what a workflow's `egress_allow` may open, for
    /// that workflow alone. Opens nothing by itself.
    pub workflow_allow: Vec<EgressRule>,
}

impl Default for EgressConfig {
    fn default() -> Self {
        EgressConfig {
            enabled: true,
            allow: Vec::new(),
            proxy: None,
            workflow_allow: Vec::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    #[error("the egress proxy {url} does not resolve to an address: {source}")]
    ProxyUnresolved {
        url: String,
        #[source]
        source: std::io::Error,
    },
}

/// The policy in force (its table, removed when dropped) and how the isolation report shows it.
#[derive(Debug)]
pub(crate) struct EgressLayer {
    /// Held for its `Drop`, which removes the table.
    _table: Option<nft::EgressTable>,
    pub(crate) layer: IsolationLayer,
    /// Where workflows' own exceptions are opened, when the table has room for them.
    pub(crate) workflows: Option<Arc<WorkflowExceptions>>,
}

impl EgressLayer {
    /// No policy was installed by whoever built these runtimes.
    pub(crate) fn not_installed() -> EgressLayer {
        EgressLayer::missing("not installed for these runtimes".into())
    }

    fn missing(detail: String) -> EgressLayer {
        EgressLayer {
            _table: None,
            layer: IsolationLayer {
                name: LAYER,
                detail,
                active: false,
            },
            workflows: None,
        }
    }

    /// Installs `config`'s policy for the packets of `user`. A host where it cannot be (flowd not
    /// root, no `nft`) gets the layer reported missing; only a proxy that does not resolve stops
    /// the start, since its traffic would otherwise leave unproxied.
    pub(crate) fn install(
        config: &EgressConfig,
        user: Option<SandboxUser>,
    ) -> Result<EgressLayer, EgressError> {
        if !config.enabled {
            return Ok(EgressLayer::missing("turned off by configuration".into()));
        }
        let Some(user) = user else {
            return Ok(EgressLayer::missing(
                "flowd is not root: user code runs under flowd's own uid and may connect anywhere"
                    .into(),
            ));
        };
        let (policy, unresolved) = resolve(config)?;
        if let Err(error) = nft::remove_stale_tables() {
            return Ok(EgressLayer::missing(format!(
                "nftables is not usable ({error}): user code may connect anywhere, loopback and private addresses included"
            )));
        }
        let name = nft::EgressTable::fresh_name();
        let text = ruleset::ruleset(&name, &[user.uid], &policy);
        match nft::EgressTable::load(name, &text) {
            Ok(table) => {
                let detail = describe(&policy, user, table.name(), &unresolved);
                let workflows = policy.instance_exceptions.then(|| {
                    Arc::new(WorkflowExceptions::new(
                        table.name(),
                        config.workflow_allow.clone(),
                    ))
                });
                Ok(EgressLayer {
                    _table: Some(table),
                    layer: IsolationLayer {
                        name: LAYER,
                        detail,
                        active: true,
                    },
                    workflows,
                })
            }
            Err(error) => Ok(EgressLayer::missing(format!(
                "nftables is not usable ({error}): user code may connect anywhere, loopback and private addresses included"
            ))),
        }
    }
}

/// The policy with its names resolved, and the exceptions whose name did not resolve (left
/// closed).
fn resolve(config: &EgressConfig) -> Result<(ResolvedPolicy, Vec<String>), EgressError> {
    let (allow, unresolved) = resolve_rules(&config.allow);
    let proxy = match &config.proxy {
        Some(proxy) => Some(
            proxy
                .resolve()
                .map_err(|source| EgressError::ProxyUnresolved {
                    url: proxy.url().to_string(),
                    source,
                })?,
        ),
        None => None,
    };
    let policy = ResolvedPolicy {
        resolvers: resolvers::from_resolv_conf(),
        allow,
        proxy,
        instance_exceptions: !config.workflow_allow.is_empty(),
    };
    Ok((policy, unresolved))
}

/// The networks `rules` open, their names resolved (on the rule's port), and the rules whose
/// name did not resolve (left closed).
fn resolve_rules(rules: &[EgressRule]) -> (Vec<(IpNetwork, Option<u16>)>, Vec<String>) {
    let mut allow = Vec::new();
    let mut unresolved = Vec::new();
    for rule in rules {
        match rule {
            EgressRule::Network { network, port } => allow.push((*network, *port)),
            EgressRule::Host { host, port } => match (host.as_str(), *port).to_socket_addrs() {
                Ok(addresses) => {
                    allow.extend(addresses.map(|a| (IpNetwork::host(a.ip()), Some(*port))))
                }
                Err(error) => {
                    tracing::warn!(%rule, "egress exception left closed: {error}");
                    unresolved.push(rule.to_string());
                }
            },
        }
    }
    (allow, unresolved)
}

fn describe(
    policy: &ResolvedPolicy,
    user: SandboxUser,
    table: &str,
    unresolved: &[String],
) -> String {
    let mut detail = match policy.proxy {
        Some(proxy) => format!(
            "uid {} may connect only through the proxy {proxy}",
            user.uid
        ),
        None => format!(
            "uid {} cannot connect to the host's own addresses, {} or {} (TCP reset / ICMP refusal); public addresses are open",
            user.uid,
            REFUSED_V4.join(", "),
            REFUSED_V6.join(", ")
        ),
    };
    let resolvers: Vec<String> = policy.resolvers.iter().map(ToString::to_string).collect();
    if !resolvers.is_empty() {
        detail.push_str(&format!("; DNS to {} open", resolvers.join(", ")));
    }
    if !policy.allow.is_empty() {
        let allowed: Vec<String> = policy
            .allow
            .iter()
            .map(|(network, port)| match port {
                Some(port) => format!("{network} port {port}"),
                None => network.to_string(),
            })
            .collect();
        detail.push_str(&format!("; exceptions: {}", allowed.join(", ")));
    }
    if !unresolved.is_empty() {
        detail.push_str(&format!(
            "; left closed (did not resolve): {}",
            unresolved.join(", ")
        ));
    }
    detail.push_str(&format!(" (nftables table inet {table})"));
    detail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_turned_off_is_reported_missing_and_installs_nothing() {
        let config = EgressConfig {
            enabled: false,
            ..EgressConfig::default()
        };

        let installed =
            EgressLayer::install(&config, Some(crate::sandbox::DEFAULT_SANDBOX_USER)).unwrap();

        assert!(!installed.layer.active);
        assert_eq!(installed.layer.detail, "turned off by configuration");
        assert!(installed._table.is_none());
    }

    #[test]
    fn without_a_sandbox_user_the_policy_is_reported_missing() {
        let installed = EgressLayer::install(&EgressConfig::default(), None).unwrap();

        assert!(!installed.layer.active);
        assert!(
            installed.layer.detail.contains("not root"),
            "{}",
            installed.layer.detail
        );
    }

    #[test]
    fn a_host_name_exception_opens_the_addresses_it_resolves_to_on_its_port() {
        // `localhost` resolves from /etc/hosts: no DNS query leaves the machine.
        let config = EgressConfig {
            allow: vec![
                "10.1.2.3:5432".parse().unwrap(),
                "localhost:8080".parse().unwrap(),
            ],
            ..EgressConfig::default()
        };

        let (policy, unresolved) = resolve(&config).unwrap();

        assert_eq!(
            policy.allow[0],
            (IpNetwork::host("10.1.2.3".parse().unwrap()), Some(5432))
        );
        let localhost = &policy.allow[1..];
        assert!(localhost.contains(&(IpNetwork::host("127.0.0.1".parse().unwrap()), Some(8080))));
        assert!(localhost.iter().all(|(_, port)| *port == Some(8080)));
        assert!(unresolved.is_empty());
    }
}
