//! The nftables ruleset of an egress policy, as text for `nft -f -`: pure, so every rule can be
//! checked without a kernel.
//!
//! One table per flowd instance. Its output-hook chain sends the packets of the sandbox's uids
//! (`meta skuid`) to the `sandbox` chain, which accepts DNS to the host's resolvers, then the
//! exceptions, then (with a proxy) the proxy alone, and refuses the rest — or, without a proxy,
//! refuses the host's own addresses and the loopback, private, link-local and multicast ranges
//! and accepts what is left. Refusing is a TCP reset or an ICMP "administratively prohibited",
//! never a drop, so the caller gets an error at once.
//!
//! A workflow's own exceptions are opened per warm instance: with `instance_exceptions`, the
//! `sandbox` chain looks the socket's cgroup v2 group up in the `instances` map (after the
//! server's exceptions, before the refusals), whose elements jump to a chain per instance holding
//! that workflow's exceptions ([`instance_chain_added`], [`instance_chain_removed`]). A socket of
//! no such instance, or a destination its chain does not accept, goes on to the refusals.

use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};

use flowd_core::egress::IpNetwork;

use crate::cgroup::INSTANCE_GROUP_LEVEL;

/// The map from an instance's cgroup to the chain of its workflow's exceptions.
const INSTANCES_MAP: &str = "instances";

/// The chains refuse these destinations unless an exception opens them.
pub(crate) const REFUSED_V4: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "224.0.0.0/4",
    "255.255.255.255",
];
pub(crate) const REFUSED_V6: &[&str] = &["::", "::1", "fc00::/7", "fe80::/10", "ff00::/8"];

/// What a policy lets through, every name already resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ResolvedPolicy {
    /// The resolvers of `/etc/resolv.conf`: port 53 to them is open, so names resolve.
    pub resolvers: Vec<IpAddr>,
    /// Exceptions: a network, on every port or on one (TCP and UDP).
    pub allow: Vec<(IpNetwork, Option<u16>)>,
    /// When set, the only destination besides DNS and the exceptions (TCP).
    pub proxy: Option<SocketAddr>,
    /// Whether warm instances may get exceptions of their own (the `instances` map).
    pub instance_exceptions: bool,
}

/// The ruleset creating `table` for the packets of `uids`. Starts by (re)creating the table
/// empty, so loading it again replaces the rules at once.
pub(crate) fn ruleset(table: &str, uids: &[u32], policy: &ResolvedPolicy) -> String {
    let mut text = String::new();
    // `add` then `delete` makes the load idempotent: the table is replaced, not merged.
    let _ = writeln!(text, "add table inet {table}");
    let _ = writeln!(text, "delete table inet {table}");
    let _ = writeln!(text, "table inet {table} {{");
    if policy.instance_exceptions {
        let _ = writeln!(text, "  map {INSTANCES_MAP} {{");
        let _ = writeln!(
            text,
            "    typeof socket cgroupv2 level {INSTANCE_GROUP_LEVEL} : verdict"
        );
        let _ = writeln!(text, "  }}");
    }
    let _ = writeln!(text, "  chain output {{");
    let _ = writeln!(
        text,
        "    type filter hook output priority filter; policy accept;"
    );
    if !uids.is_empty() {
        let _ = writeln!(text, "    meta skuid {} jump sandbox", set(uids));
    }
    let _ = writeln!(text, "  }}");
    let _ = writeln!(text, "  chain sandbox {{");
    for resolver in &policy.resolvers {
        let _ = writeln!(
            text,
            "    {} daddr {resolver} meta l4proto {{ tcp, udp }} th dport 53 accept",
            family(resolver.is_ipv4())
        );
    }
    for (network, port) in &policy.allow {
        let _ = writeln!(text, "    {}", accept(network, *port));
    }
    if policy.instance_exceptions {
        let _ = writeln!(
            text,
            "    socket cgroupv2 level {INSTANCE_GROUP_LEVEL} vmap @{INSTANCES_MAP}"
        );
    }
    match policy.proxy {
        Some(proxy) => {
            let _ = writeln!(
                text,
                "    {} daddr {} tcp dport {} accept",
                family(proxy.is_ipv4()),
                proxy.ip(),
                proxy.port()
            );
            let _ = writeln!(text, "    goto refuse");
        }
        None => {
            let _ = writeln!(
                text,
                "    fib daddr type {{ local, broadcast, multicast }} goto refuse"
            );
            let _ = writeln!(text, "    ip daddr {} goto refuse", set(REFUSED_V4));
            let _ = writeln!(text, "    ip6 daddr {} goto refuse", set(REFUSED_V6));
        }
    }
    let _ = writeln!(text, "  }}");
    let _ = writeln!(text, "  chain refuse {{");
    let _ = writeln!(text, "    meta l4proto tcp reject with tcp reset");
    let _ = writeln!(text, "    reject with icmpx type admin-prohibited");
    let _ = writeln!(text, "  }}");
    let _ = writeln!(text, "}}");
    text
}

/// Creates `chain` in `table` accepting `allow`, and sends the packets of the sockets of the
/// cgroup `group` (its path below `/sys/fs/cgroup`) to it. One transaction: all or nothing.
pub(crate) fn instance_chain_added(
    table: &str,
    chain: &str,
    group: &str,
    allow: &[(IpNetwork, Option<u16>)],
) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "add chain inet {table} {chain}");
    for (network, port) in allow {
        let _ = writeln!(
            text,
            "add rule inet {table} {chain} {}",
            accept(network, *port)
        );
    }
    let _ = writeln!(
        text,
        "add element inet {table} {INSTANCES_MAP} {{ \"{group}\" : jump {chain} }}"
    );
    text
}

/// Undoes [`instance_chain_added`]; `group` must still exist (nftables names it by its path).
pub(crate) fn instance_chain_removed(table: &str, chain: &str, group: &str) -> String {
    format!(
        "delete element inet {table} {INSTANCES_MAP} {{ \"{group}\" }}\ndelete chain inet {table} {chain}\n"
    )
}

/// The rule accepting a network, on every port or on one (TCP and UDP).
fn accept(network: &IpNetwork, port: Option<u16>) -> String {
    match port {
        Some(port) => format!(
            "{} daddr {network} meta l4proto {{ tcp, udp }} th dport {port} accept",
            family(network.is_ipv4())
        ),
        None => format!("{} daddr {network} accept", family(network.is_ipv4())),
    }
}

fn family(ipv4: bool) -> &'static str {
    if ipv4 {
        "ip"
    } else {
        "ip6"
    }
}

fn set<T: std::fmt::Display>(items: &[T]) -> String {
    let items: Vec<String> = items.iter().map(ToString::to_string).collect();
    format!("{{ {} }}", items.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn network(text: &str) -> IpNetwork {
        let (address, prefix) = text.split_once('/').unwrap();
        IpNetwork::new(address.parse().unwrap(), prefix.parse().unwrap()).unwrap()
    }

    fn sandbox_chain(text: &str) -> Vec<&str> {
        let start = text.find("chain sandbox {").unwrap();
        let end = start + text[start..].find("  }").unwrap();
        text[start..end].lines().skip(1).map(str::trim).collect()
    }

    #[test]
    fn the_table_replaces_itself_when_loaded_again() {
        let text = ruleset("flowd_egress_1_0", &[65534], &ResolvedPolicy::default());

        let lines: Vec<&str> = text.lines().take(3).collect();
        assert_eq!(
            lines,
            [
                "add table inet flowd_egress_1_0",
                "delete table inet flowd_egress_1_0",
                "table inet flowd_egress_1_0 {"
            ]
        );
    }

    #[test]
    fn only_the_sandbox_uids_go_through_the_policy() {
        let text = ruleset("t", &[65534, 64000], &ResolvedPolicy::default());

        assert!(text.contains("meta skuid { 65534, 64000 } jump sandbox\n"));
    }

    #[test]
    fn by_default_dns_is_open_and_local_private_and_link_local_destinations_are_refused() {
        let policy = ResolvedPolicy {
            resolvers: vec!["10.255.255.53".parse().unwrap()],
            ..ResolvedPolicy::default()
        };

        let text = ruleset("t", &[65534], &policy);

        assert_eq!(
            sandbox_chain(&text),
            [
                "ip daddr 10.255.255.53 meta l4proto { tcp, udp } th dport 53 accept",
                "fib daddr type { local, broadcast, multicast } goto refuse",
                "ip daddr { 0.0.0.0/8, 10.0.0.0/8, 100.64.0.0/10, 127.0.0.0/8, 169.254.0.0/16, 172.16.0.0/12, 192.168.0.0/16, 224.0.0.0/4, 255.255.255.255 } goto refuse",
                "ip6 daddr { ::, ::1, fc00::/7, fe80::/10, ff00::/8 } goto refuse",
            ]
        );
    }

    #[test]
    fn exceptions_come_before_the_refusals() {
        let policy = ResolvedPolicy {
            allow: vec![
                (network("10.200.0.0/24"), None),
                (network("fd00::1/128"), Some(5432)),
            ],
            ..ResolvedPolicy::default()
        };

        let chain = ruleset("t", &[65534], &policy);

        assert_eq!(
            sandbox_chain(&chain)[..2],
            [
                "ip daddr 10.200.0.0/24 accept",
                "ip6 daddr fd00::1/128 meta l4proto { tcp, udp } th dport 5432 accept",
            ]
        );
    }

    #[test]
    fn with_a_proxy_everything_but_the_proxy_dns_and_the_exceptions_is_refused() {
        let policy = ResolvedPolicy {
            resolvers: vec!["10.255.255.53".parse().unwrap()],
            allow: vec![(network("10.200.0.0/24"), None)],
            proxy: Some("203.0.113.2:3128".parse().unwrap()),
            instance_exceptions: false,
        };

        let text = ruleset("t", &[65534], &policy);

        assert_eq!(
            sandbox_chain(&text),
            [
                "ip daddr 10.255.255.53 meta l4proto { tcp, udp } th dport 53 accept",
                "ip daddr 10.200.0.0/24 accept",
                "ip daddr 203.0.113.2 tcp dport 3128 accept",
                "goto refuse",
            ]
        );
    }

    #[test]
    fn without_instance_exceptions_the_table_has_no_instances_map() {
        let text = ruleset("t", &[65534], &ResolvedPolicy::default());

        assert!(!text.contains("instances"), "{text}");
    }

    #[test]
    fn instance_exceptions_are_looked_up_after_the_servers_and_before_the_refusals() {
        let policy = ResolvedPolicy {
            allow: vec![(network("10.200.0.0/24"), None)],
            instance_exceptions: true,
            ..ResolvedPolicy::default()
        };

        let text = ruleset("t", &[65534], &policy);

        assert!(text.contains(
            "  map instances {\n    typeof socket cgroupv2 level 2 : verdict\n  }\n  chain output {"
        ));
        assert_eq!(
            sandbox_chain(&text)[..3],
            [
                "ip daddr 10.200.0.0/24 accept",
                "socket cgroupv2 level 2 vmap @instances",
                "fib daddr type { local, broadcast, multicast } goto refuse",
            ]
        );
    }

    #[test]
    fn an_instances_chain_accepts_its_exceptions_and_its_cgroup_jumps_to_it() {
        let text = instance_chain_added(
            "t",
            "instance_7",
            "unified/flowd-1-0/instance-7",
            &[
                (network("10.200.0.2/32"), None),
                (network("fd00::1/128"), Some(443)),
            ],
        );

        assert_eq!(
            text.lines().collect::<Vec<_>>(),
            [
                "add chain inet t instance_7",
                "add rule inet t instance_7 ip daddr 10.200.0.2/32 accept",
                "add rule inet t instance_7 ip6 daddr fd00::1/128 meta l4proto { tcp, udp } th dport 443 accept",
                "add element inet t instances { \"unified/flowd-1-0/instance-7\" : jump instance_7 }",
            ]
        );
    }

    #[test]
    fn removing_an_instances_chain_removes_its_map_element_first() {
        let text = instance_chain_removed("t", "instance_7", "flowd-1-0/instance-7");

        assert_eq!(
            text.lines().collect::<Vec<_>>(),
            [
                "delete element inet t instances { \"flowd-1-0/instance-7\" }",
                "delete chain inet t instance_7",
            ]
        );
    }

    #[test]
    fn refusals_answer_at_once_rather_than_drop() {
        let text = ruleset("t", &[65534], &ResolvedPolicy::default());

        assert!(text.contains(
            "chain refuse {\n    meta l4proto tcp reject with tcp reset\n    reject with icmpx type admin-prohibited\n  }"
        ));
        assert!(!text.contains("drop"));
    }
}
