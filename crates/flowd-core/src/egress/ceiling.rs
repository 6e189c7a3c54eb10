//! A workflow's own egress exceptions (its `egress_allow` field) and the server's ceiling on them
//! (`--egress-workflow-allow`): a workflow opens, for its own processes only, destinations the
//! ceiling covers; the ceiling itself opens nothing.
//!
//! An entry is covered by a ceiling entry when:
//! - both are networks, the ceiling's network holds the entry's, and the ceiling names no port
//!   or the entry's port (`10.0.0.0/8` covers `10.1.0.0/16` and `10.1.2.3:5432`;
//!   `10.1.2.3:5432` covers only itself);
//! - both are the same host name with the same port (`db.internal:5432`): names are resolved
//!   when an instance starts, so a name is never judged by the addresses it resolves to.

use super::{EgressRule, EgressRuleError};

/// The most entries one workflow's `egress_allow` may hold.
pub const MAX_WORKFLOW_EXCEPTIONS: usize = 64;

/// Why a workflow's `egress_allow` is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkflowEgressError {
    #[error("at most {max} entries are allowed ({count} given)", max = MAX_WORKFLOW_EXCEPTIONS)]
    TooMany { count: usize },
    #[error(transparent)]
    Invalid(#[from] EgressRuleError),
    #[error("`{entry}` is not within what this server lets a workflow open ({ceiling})")]
    NotCovered { entry: String, ceiling: String },
}

impl EgressRule {
    /// Whether this rule (a ceiling entry) opens everything `entry` opens.
    pub fn covers(&self, entry: &EgressRule) -> bool {
        match (self, entry) {
            (
                EgressRule::Network {
                    network: ceiling,
                    port: ceiling_port,
                },
                EgressRule::Network { network, port },
            ) => ceiling.contains(network) && (ceiling_port.is_none() || ceiling_port == port),
            (
                EgressRule::Host {
                    host: ceiling,
                    port: ceiling_port,
                },
                EgressRule::Host { host, port },
            ) => ceiling == host && ceiling_port == port,
            _ => false,
        }
    }
}

/// Whether some entry of `ceiling` covers `entry`.
pub fn within(ceiling: &[EgressRule], entry: &EgressRule) -> bool {
    ceiling.iter().any(|allowed| allowed.covers(entry))
}

/// Parses a workflow's `egress_allow` entries and checks each against `ceiling`: the rules, in
/// the order given, duplicates removed.
pub fn check_workflow_exceptions(
    entries: &[String],
    ceiling: &[EgressRule],
) -> Result<Vec<EgressRule>, WorkflowEgressError> {
    if entries.len() > MAX_WORKFLOW_EXCEPTIONS {
        return Err(WorkflowEgressError::TooMany {
            count: entries.len(),
        });
    }
    let mut rules: Vec<EgressRule> = Vec::with_capacity(entries.len());
    for entry in entries {
        let rule: EgressRule = entry.parse()?;
        if !within(ceiling, &rule) {
            return Err(WorkflowEgressError::NotCovered {
                entry: rule.to_string(),
                ceiling: describe_ceiling(ceiling),
            });
        }
        if !rules.contains(&rule) {
            rules.push(rule);
        }
    }
    Ok(rules)
}

fn describe_ceiling(ceiling: &[EgressRule]) -> String {
    if ceiling.is_empty() {
        return "none: the server's --egress-workflow-allow is empty".to_string();
    }
    let entries: Vec<String> = ceiling.iter().map(ToString::to_string).collect();
    format!("--egress-workflow-allow {}", entries.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str) -> EgressRule {
        text.parse().unwrap()
    }

    fn ceiling(texts: &[&str]) -> Vec<EgressRule> {
        texts.iter().map(|text| rule(text)).collect()
    }

    fn entries(texts: &[&str]) -> Vec<String> {
        texts.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_network_covers_its_subnets_addresses_and_their_ports() {
        let network = rule("10.0.0.0/8");

        assert!(network.covers(&rule("10.0.0.0/8")));
        assert!(network.covers(&rule("10.1.0.0/16")));
        assert!(network.covers(&rule("10.1.2.3")));
        assert!(network.covers(&rule("10.1.2.3:5432")));
    }

    #[test]
    fn a_network_does_not_cover_a_wider_or_disjoint_network_or_the_other_family() {
        let network = rule("10.1.0.0/16");

        assert!(!network.covers(&rule("10.0.0.0/8")));
        assert!(!network.covers(&rule("10.2.0.1")));
        assert!(!network.covers(&rule("::ffff:10.1.0.1")));
        assert!(!rule("fd00::/8").covers(&rule("10.1.0.1")));
        assert!(rule("fd00::/8").covers(&rule("[fd00::1]:443")));
    }

    #[test]
    fn a_ceiling_entry_with_a_port_covers_that_port_only() {
        let one_port = rule("10.1.2.3:5432");

        assert!(one_port.covers(&rule("10.1.2.3:5432")));
        assert!(!one_port.covers(&rule("10.1.2.3:5433")));
        assert!(!one_port.covers(&rule("10.1.2.3")), "every port is wider");
    }

    #[test]
    fn a_host_name_is_covered_only_by_the_same_name_and_port() {
        let host = rule("db.internal:5432");

        assert!(host.covers(&rule("DB.internal:5432")));
        assert!(!host.covers(&rule("db.internal:5433")));
        assert!(!host.covers(&rule("other.internal:5432")));
        assert!(
            !rule("0.0.0.0/0").covers(&host),
            "a name may resolve anywhere"
        );
        assert!(!host.covers(&rule("10.1.2.3:5432")));
    }

    #[test]
    fn entries_within_the_ceiling_are_accepted_in_order_without_duplicates() {
        let rules = check_workflow_exceptions(
            &entries(&["10.200.0.2", "db.internal:5432", "10.200.0.2"]),
            &ceiling(&["10.200.0.0/24", "db.internal:5432"]),
        );

        assert_eq!(
            rules,
            Ok(vec![rule("10.200.0.2"), rule("db.internal:5432")])
        );
    }

    #[test]
    fn no_entries_need_no_ceiling() {
        assert_eq!(check_workflow_exceptions(&[], &[]), Ok(Vec::new()));
    }

    #[test]
    fn an_entry_beyond_the_ceiling_is_refused_by_name() {
        let refused = check_workflow_exceptions(
            &entries(&["10.200.0.2", "10.201.0.2:80"]),
            &ceiling(&["10.200.0.0/24"]),
        );

        let error = refused.unwrap_err();
        assert!(
            matches!(&error, WorkflowEgressError::NotCovered { entry, .. } if entry == "10.201.0.2:80"),
            "{error}"
        );
        assert!(error.to_string().contains("10.200.0.0/24"), "{error}");
    }

    #[test]
    fn with_an_empty_ceiling_every_entry_is_refused_saying_so() {
        let error = check_workflow_exceptions(&entries(&["10.200.0.2"]), &[]).unwrap_err();

        assert!(error.to_string().contains("empty"), "{error}");
    }

    #[test]
    fn a_malformed_entry_is_refused_with_the_parsers_reason() {
        let everything = ceiling(&["0.0.0.0/0", "::/0"]);

        for (text, expected) in [
            ("10.0.0.1/8", "bits are set beyond the prefix"),
            ("10.0.0.0/33", "prefix length"),
            ("10.0.0.1:0", "port must be 1 to 65535"),
            ("db.internal", "needs a port"),
            ("not an address", "is not a network"),
        ] {
            let error = check_workflow_exceptions(&entries(&[text]), &everything).unwrap_err();
            assert!(
                matches!(error, WorkflowEgressError::Invalid(_))
                    && error.to_string().contains(expected),
                "{text}: {error}"
            );
        }
    }

    #[test]
    fn more_entries_than_the_maximum_are_refused_before_any_is_parsed() {
        let many: Vec<String> = (0..10_000)
            .map(|n| format!("10.0.{}.{}", n / 256, n % 256))
            .collect();

        let error = check_workflow_exceptions(&many, &ceiling(&["10.0.0.0/8"])).unwrap_err();

        assert_eq!(error, WorkflowEgressError::TooMany { count: 10_000 });
    }
}
