//! The egress proxy: an `http://host:port` URL, set for user code as `HTTP_PROXY`/`HTTPS_PROXY`
//! (and their lowercase forms) and the one destination the policy leaves open.

use std::net::{SocketAddr, ToSocketAddrs};
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressProxy {
    url: String,
    host: String,
    port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a proxy URL of the form http://host:port")]
pub struct EgressProxyError(String);

impl EgressProxy {
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The environment user code gets, so HTTP clients (`requests`, `urllib`) use the proxy.
    pub fn environment(&self) -> [(&'static str, &str); 4] {
        [
            ("HTTP_PROXY", &self.url),
            ("HTTPS_PROXY", &self.url),
            ("http_proxy", &self.url),
            ("https_proxy", &self.url),
        ]
    }

    /// The proxy's address (the first its name resolves to).
    pub(crate) fn resolve(&self) -> std::io::Result<SocketAddr> {
        (self.host.as_str(), self.port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| std::io::Error::other("no address"))
    }
}

impl FromStr for EgressProxy {
    type Err = EgressProxyError;

    fn from_str(text: &str) -> Result<EgressProxy, EgressProxyError> {
        let error = || EgressProxyError(text.to_string());
        let authority = text
            .strip_prefix("http://")
            .ok_or_else(error)?
            .trim_end_matches('/');
        if authority.contains(['/', '@', '?', '#']) {
            return Err(error());
        }
        let (host, port) = authority.rsplit_once(':').ok_or_else(error)?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port: u16 = port.parse().map_err(|_| error())?;
        if host.is_empty() || port == 0 {
            return Err(error());
        }
        Ok(EgressProxy {
            url: format!("http://{authority}"),
            host: host.to_string(),
            port,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proxy_is_an_http_url_with_a_host_and_a_port() {
        let proxy: EgressProxy = "http://203.0.113.2:3128/".parse().unwrap();

        assert_eq!(proxy.url(), "http://203.0.113.2:3128");
        assert_eq!(
            proxy.resolve().unwrap(),
            "203.0.113.2:3128".parse().unwrap()
        );
    }

    #[test]
    fn an_ipv6_proxy_is_written_in_brackets() {
        let proxy: EgressProxy = "http://[2001:db8::2]:3128".parse().unwrap();

        assert_eq!(
            proxy.resolve().unwrap(),
            "[2001:db8::2]:3128".parse().unwrap()
        );
    }

    #[test]
    fn other_forms_are_refused() {
        for text in [
            "203.0.113.2:3128",
            "https://proxy:3128",
            "http://proxy",
            "http://user:pw@proxy:3128",
            "http://proxy:3128/path",
            "http://:3128",
            "http://proxy:0",
        ] {
            assert!(text.parse::<EgressProxy>().is_err(), "{text}");
        }
    }

    #[test]
    fn the_code_gets_the_proxy_in_upper_and_lower_case_variables() {
        let proxy: EgressProxy = "http://203.0.113.2:3128".parse().unwrap();

        let names: Vec<&str> = proxy.environment().iter().map(|(name, _)| *name).collect();
        assert_eq!(
            names,
            ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"]
        );
    }
}
