//! Egress exceptions: the destinations user code may reach although the egress policy refuses
//! them by default (loopback, private, link-local and the host's own addresses).
//!
//! An exception is written as one of:
//! - a network in CIDR form or a single address: `10.0.0.0/8`, `10.1.2.3`, `fd00::/8`;
//! - an address and a port: `10.1.2.3:5432`, `[fd00::1]:443`;
//! - a host name and a port: `db.internal:5432` (resolved by the runtime when it installs the
//!   policy).
//!
//! A workflow's own exceptions (its `egress_allow` field) must lie within the server's ceiling
//! ([`ceiling`]).

pub mod ceiling;

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// One destination opened through the egress policy.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EgressRule {
    /// A network (a single address is a /32 or /128), every port unless one is given.
    Network {
        network: IpNetwork,
        port: Option<u16>,
    },
    /// A host name and a port.
    Host { host: String, port: u16 },
}

/// An IP network: an address and a prefix length, with no bits set beyond the prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNetwork {
    address: IpAddr,
    prefix: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressRuleError {
    #[error("`{0}` is not a network (CIDR), an address, or host:port")]
    Malformed(String),
    #[error("`{0}`: the prefix length is beyond the address's bits")]
    PrefixTooLong(String),
    #[error("`{0}`: bits are set beyond the prefix (write the network address)")]
    HostBitsSet(String),
    #[error("`{0}`: the port must be 1 to 65535")]
    BadPort(String),
    #[error("`{0}`: a host name needs a port (host:port)")]
    HostWithoutPort(String),
}

impl IpNetwork {
    pub fn new(address: IpAddr, prefix: u8) -> Option<IpNetwork> {
        let bits = max_prefix(address);
        if prefix > bits {
            return None;
        }
        let network = IpNetwork { address, prefix };
        (network.masked() == address).then_some(network)
    }

    /// The network of one address (a /32 or a /128).
    pub fn host(address: IpAddr) -> IpNetwork {
        IpNetwork {
            address,
            prefix: max_prefix(address),
        }
    }

    pub fn address(&self) -> IpAddr {
        self.address
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn is_ipv4(&self) -> bool {
        self.address.is_ipv4()
    }

    /// Whether every address of `other` is in this network.
    pub fn contains(&self, other: &IpNetwork) -> bool {
        let within = IpNetwork {
            address: other.address,
            prefix: self.prefix,
        };
        self.address.is_ipv4() == other.address.is_ipv4()
            && self.prefix <= other.prefix
            && within.masked() == self.address
    }

    fn masked(&self) -> IpAddr {
        match self.address {
            IpAddr::V4(v4) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V4((u32::from(v4) & mask).into())
            }
            IpAddr::V6(v6) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(v6) & mask).into())
            }
        }
    }
}

fn max_prefix(address: IpAddr) -> u8 {
    if address.is_ipv4() {
        32
    } else {
        128
    }
}

impl fmt::Display for IpNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

impl fmt::Display for EgressRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EgressRule::Network {
                network,
                port: None,
            } => write!(f, "{network}"),
            EgressRule::Network {
                network,
                port: Some(port),
            } => match network.address {
                IpAddr::V4(address) => write!(f, "{address}:{port}"),
                IpAddr::V6(address) => write!(f, "[{address}]:{port}"),
            },
            EgressRule::Host { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

impl FromStr for EgressRule {
    type Err = EgressRuleError;

    fn from_str(text: &str) -> Result<EgressRule, EgressRuleError> {
        let text = text.trim();
        let malformed = || EgressRuleError::Malformed(text.to_string());
        if let Ok(address) = text.parse::<IpAddr>() {
            return Ok(EgressRule::Network {
                network: IpNetwork::host(address),
                port: None,
            });
        }
        if let Some((address, prefix)) = text.split_once('/') {
            let address: IpAddr = address.parse().map_err(|_| malformed())?;
            let prefix: u8 = prefix.parse().map_err(|_| malformed())?;
            if prefix > max_prefix(address) {
                return Err(EgressRuleError::PrefixTooLong(text.to_string()));
            }
            let network = IpNetwork::new(address, prefix)
                .ok_or_else(|| EgressRuleError::HostBitsSet(text.to_string()))?;
            return Ok(EgressRule::Network {
                network,
                port: None,
            });
        }
        if let Ok(socket) = text.parse::<std::net::SocketAddr>() {
            let port = nonzero_port(socket.port(), text)?;
            return Ok(EgressRule::Network {
                network: IpNetwork::host(socket.ip()),
                port: Some(port),
            });
        }
        let Some((host, port)) = text.rsplit_once(':') else {
            return Err(if is_host_name(text) {
                EgressRuleError::HostWithoutPort(text.to_string())
            } else {
                malformed()
            });
        };
        if !is_host_name(host) {
            return Err(malformed());
        }
        let port: u16 = port
            .parse()
            .map_err(|_| EgressRuleError::BadPort(text.to_string()))?;
        Ok(EgressRule::Host {
            host: host.to_ascii_lowercase(),
            port: nonzero_port(port, text)?,
        })
    }
}

/// Written as text, the way it is parsed: the form a workflow's `egress_allow` is stored in.
impl serde::Serialize for EgressRule {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for EgressRule {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<EgressRule, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

fn nonzero_port(port: u16, text: &str) -> Result<u16, EgressRuleError> {
    if port == 0 {
        Err(EgressRuleError::BadPort(text.to_string()))
    } else {
        Ok(port)
    }
}

/// A DNS name: dot-separated labels of letters, digits and inner hyphens.
fn is_host_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 253
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && !text.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<EgressRule, EgressRuleError> {
        text.parse()
    }

    fn network(address: &str, prefix: u8, port: Option<u16>) -> EgressRule {
        EgressRule::Network {
            network: IpNetwork::new(address.parse().unwrap(), prefix).unwrap(),
            port,
        }
    }

    #[test]
    fn a_cidr_is_a_network_on_every_port() {
        assert_eq!(parse("10.0.0.0/8"), Ok(network("10.0.0.0", 8, None)));
        assert_eq!(parse("fd00::/8"), Ok(network("fd00::", 8, None)));
    }

    #[test]
    fn a_bare_address_is_a_single_host_network() {
        assert_eq!(parse("10.1.2.3"), Ok(network("10.1.2.3", 32, None)));
        assert_eq!(parse("::1"), Ok(network("::1", 128, None)));
    }

    #[test]
    fn an_address_with_a_port_opens_that_port_only() {
        assert_eq!(
            parse("10.1.2.3:5432"),
            Ok(network("10.1.2.3", 32, Some(5432)))
        );
        assert_eq!(
            parse("[fd00::1]:443"),
            Ok(network("fd00::1", 128, Some(443)))
        );
    }

    #[test]
    fn a_host_name_with_a_port_is_kept_lowercase_for_resolving() {
        assert_eq!(
            parse("DB.internal:5432"),
            Ok(EgressRule::Host {
                host: "db.internal".into(),
                port: 5432
            })
        );
    }

    #[test]
    fn malformed_rules_say_what_is_wrong() {
        assert!(matches!(
            parse("10.0.0.1/8"),
            Err(EgressRuleError::HostBitsSet(_))
        ));
        assert!(matches!(
            parse("10.0.0.0/33"),
            Err(EgressRuleError::PrefixTooLong(_))
        ));
        assert!(matches!(
            parse("db.internal"),
            Err(EgressRuleError::HostWithoutPort(_))
        ));
        assert!(matches!(
            parse("db.internal:0"),
            Err(EgressRuleError::BadPort(_))
        ));
        assert!(matches!(
            parse("db.internal:http"),
            Err(EgressRuleError::BadPort(_))
        ));
        for text in [
            "",
            "10.0.0/8",
            "300.1.2.3",
            "a b:80",
            "-x:80",
            "http://x:80",
        ] {
            assert!(
                matches!(parse(text), Err(EgressRuleError::Malformed(_))),
                "{text}"
            );
        }
    }

    #[test]
    fn a_rule_is_stored_as_the_text_it_is_parsed_from() {
        let rules = vec![
            parse("10.0.0.0/8").unwrap(),
            parse("db.internal:5432").unwrap(),
        ];

        let json = serde_json::to_string(&rules).unwrap();

        assert_eq!(json, r#"["10.0.0.0/8","db.internal:5432"]"#);
        assert_eq!(
            serde_json::from_str::<Vec<EgressRule>>(&json).unwrap(),
            rules
        );
        assert!(serde_json::from_str::<Vec<EgressRule>>(r#"["10.0.0.1/8"]"#).is_err());
    }

    #[test]
    fn a_rule_displays_as_it_is_written() {
        for text in [
            "10.0.0.0/8",
            "10.1.2.3/32",
            "10.1.2.3:5432",
            "[fd00::1]:443",
            "db.internal:5432",
        ] {
            assert_eq!(parse(text).unwrap().to_string(), text);
        }
    }
}
