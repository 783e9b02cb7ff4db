//! `no_proxy` entries: which hosts are reached directly.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use url::Host;

use crate::NetError;

/// One `no_proxy` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoProxyRule {
    /// `*`: every host.
    Everything,
    /// A host name (lower case, without a leading dot), matching itself and its subdomains; with a
    /// port, only that port.
    Domain {
        /// The name.
        name: String,
        /// Only this port, when given (`host:8443`).
        port: Option<u16>,
    },
    /// An address or CIDR block, matching URLs that name an address inside it (names are not
    /// resolved, as in curl); with a port, only that port.
    Network {
        /// The block.
        net: IpNet,
        /// Only this port, when given (`10.0.0.5:8443`, `[::1]:8443`).
        port: Option<u16>,
    },
}

impl NoProxyRule {
    /// Reads one entry: `*`, `host`, `.host`, `*.host`, `host:port`, an IP address (`[::1]` too) or a
    /// CIDR block.
    pub fn parse(entry: &str) -> Result<NoProxyRule, NetError> {
        let text = entry.trim();
        let bad = || NetError::NoProxy(text.to_owned());
        if text == "*" {
            return Ok(NoProxyRule::Everything);
        }
        if text.is_empty() {
            return Err(bad());
        }
        if text.contains('/') {
            return text
                .parse::<IpNet>()
                .map(|net| NoProxyRule::Network { net, port: None })
                .map_err(|_| bad());
        }
        let address = |host: &str| {
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .ok()
        };
        if let Some(ip) = address(text) {
            return Ok(NoProxyRule::Network {
                net: IpNet::from(ip),
                port: None,
            });
        }
        // `10.0.0.5:8443` or `[::1]:8443` (a bare IPv6 address has colons of its own).
        if let Some((host, port)) = text.rsplit_once(':') {
            let bracketed_or_v4 = host.starts_with('[') || !host.contains(':');
            if let Some(ip) = address(host).filter(|_| bracketed_or_v4) {
                let port = port.parse::<u16>().map_err(|_| bad())?;
                return Ok(NoProxyRule::Network {
                    net: IpNet::from(ip),
                    port: Some(port),
                });
            }
        }
        let name = text.trim_start_matches("*.").trim_start_matches('.');
        let (name, port) = match name.rsplit_once(':') {
            Some((host, port)) => (host, Some(port.parse::<u16>().map_err(|_| bad())?)),
            None => (name, None),
        };
        let valid = !name.is_empty()
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            });
        if !valid {
            return Err(bad());
        }
        Ok(NoProxyRule::Domain {
            name: name.to_ascii_lowercase(),
            port,
        })
    }

    /// Whether a URL with this host and port goes direct under this rule.
    pub fn matches(&self, host: &Host<&str>, port: Option<u16>) -> bool {
        match (self, host) {
            (NoProxyRule::Everything, _) => true,
            (
                NoProxyRule::Network {
                    port: Some(want), ..
                },
                _,
            ) if Some(*want) != port => false,
            (NoProxyRule::Network { net, .. }, Host::Ipv4(ip)) => net.contains(&IpAddr::V4(*ip)),
            (NoProxyRule::Network { net, .. }, Host::Ipv6(ip)) => net.contains(&IpAddr::V6(*ip)),
            (NoProxyRule::Network { .. }, Host::Domain(_)) => false,
            (NoProxyRule::Domain { name, port: want }, Host::Domain(domain)) => {
                if want.is_some() && *want != port {
                    return false;
                }
                let domain = domain.trim_end_matches('.').to_ascii_lowercase();
                domain == *name
                    || domain
                        .strip_suffix(name.as_str())
                        .is_some_and(|head| head.ends_with('.'))
            }
            (NoProxyRule::Domain { .. }, _) => false,
        }
    }
}

impl fmt::Display for NoProxyRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoProxyRule::Everything => f.write_str("*"),
            NoProxyRule::Domain { name, port: None } => f.write_str(name),
            NoProxyRule::Domain {
                name,
                port: Some(port),
            } => write!(f, "{name}:{port}"),
            NoProxyRule::Network { net, port } => {
                let single = net.prefix_len() == net.max_prefix_len();
                match (single, net.addr(), port) {
                    (true, IpAddr::V6(ip), Some(port)) => write!(f, "[{ip}]:{port}"),
                    (true, ip, Some(port)) => write!(f, "{ip}:{port}"),
                    (true, ip, None) => write!(f, "{ip}"),
                    (false, _, _) => write!(f, "{net}"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(text: &str) -> Host<String> {
        Host::parse(text).expect("host")
    }

    fn matches(rule: &str, h: &str, port: Option<u16>) -> bool {
        let host = host(h);
        let borrowed = match &host {
            Host::Domain(d) => Host::Domain(d.as_str()),
            Host::Ipv4(ip) => Host::Ipv4(*ip),
            Host::Ipv6(ip) => Host::Ipv6(*ip),
        };
        NoProxyRule::parse(rule)
            .expect(rule)
            .matches(&borrowed, port)
    }

    #[test]
    fn entries() {
        assert!(matches("example.com", "example.com", None));
        assert!(matches("example.com", "cmx.Example.COM", None));
        assert!(matches(".example.com", "cmx.example.com", None));
        assert!(matches("*.example.com", "a.b.example.com", None));
        assert!(!matches("example.com", "badexample.com", None));
        assert!(matches("cmx:8443", "cmx", Some(8443)));
        assert!(!matches("cmx:8443", "cmx", Some(443)));
        assert!(matches("10.0.0.0/8", "10.20.30.40", None));
        assert!(!matches("10.0.0.0/8", "11.0.0.1", None));
        assert!(!matches("10.0.0.0/8", "ten.example", None));
        assert!(matches("127.0.0.1", "127.0.0.1", Some(80)));
        assert!(matches("[::1]", "[::1]", None));
        assert!(matches("fd00::/8", "[fd12::1]", None));
        assert!(matches("127.0.0.1:8443", "127.0.0.1", Some(8443)));
        assert!(!matches("127.0.0.1:8443", "127.0.0.1", Some(8444)));
        assert!(matches("[::1]:8443", "[::1]", Some(8443)));
        assert!(matches("*", "anything", None));
    }

    #[test]
    fn bad_entries() {
        for bad in [
            "",
            "10.0.0.0/40",
            "exa mple.com",
            "host:port",
            "a..b",
            "http://x",
        ] {
            assert!(NoProxyRule::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn shown_as_written() {
        for text in [
            "*",
            "example.com",
            "cmx:8443",
            "10.0.0.0/8",
            "127.0.0.1",
            "127.0.0.1:8443",
            "[::1]:8443",
        ] {
            assert_eq!(NoProxyRule::parse(text).expect(text).to_string(), text);
        }
    }
}
