//! The DNS resolvers user code must reach for names to resolve.

use std::net::IpAddr;

/// The `nameserver` addresses of `/etc/resolv.conf` (none when it cannot be read).
pub(crate) fn from_resolv_conf() -> Vec<IpAddr> {
    std::fs::read_to_string("/etc/resolv.conf")
        .map(|text| nameservers(&text))
        .unwrap_or_default()
}

fn nameservers(text: &str) -> Vec<IpAddr> {
    let mut found = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("nameserver") {
            continue;
        }
        // A link-local IPv6 resolver may carry a zone (`fe80::1%eth0`); the rule needs none.
        let address = words.next().and_then(|a| a.split('%').next());
        if let Some(Ok(address)) = address.map(str::parse::<IpAddr>) {
            if !found.contains(&address) {
                found.push(address);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nameserver_lines_give_the_resolvers_once_each() {
        let text = "# generated\nsearch example.org\nnameserver 10.255.255.53\nnameserver fe80::1%eth0\nnameserver 10.255.255.53\nnameserver bogus\n";

        let expected: Vec<IpAddr> =
            vec!["10.255.255.53".parse().unwrap(), "fe80::1".parse().unwrap()];
        assert_eq!(nameservers(text), expected);
    }
}
