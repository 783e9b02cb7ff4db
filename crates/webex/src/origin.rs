//! Where the bearer token may go. URLs that arrive in answers and frames (a device's URL, its
//! websocket, a conversation) are followed only to origins the configuration already trusts, or to
//! Webex's own domains over TLS.

use reqwest::Url;

use crate::error::WebexError;

/// Webex's domains: an `https`/`wss` URL on one of their subdomains may get the token.
const WEBEX_DOMAINS: [&str; 2] = ["wbx2.com", "webex.com"];

/// Whether the token may be sent to `url`: same origin as one of `trusted` (`ws`/`http` and
/// `wss`/`https` count as the same scheme), or an `https`/`wss` URL on a Webex domain.
pub(crate) fn is_trusted(url: &Url, trusted: &[&Url]) -> bool {
    is_webex_domain(url) || trusted.iter().any(|origin| same_origin(url, origin))
}

/// [`is_trusted`], as an error naming the refused origin.
pub(crate) fn check_trusted(url: &Url, trusted: &[&Url]) -> Result<(), WebexError> {
    if is_trusted(url, trusted) {
        Ok(())
    } else {
        Err(WebexError::Untrusted {
            origin: url.origin().ascii_serialization(),
        })
    }
}

/// `https`/`wss` and a host that is a Webex domain or one of its subdomains.
fn is_webex_domain(url: &Url) -> bool {
    if !matches!(url.scheme(), "https" | "wss") {
        return false;
    }
    match url.host() {
        Some(url::Host::Domain(host)) => {
            let host = host.trim_end_matches('.');
            WEBEX_DOMAINS.iter().any(|domain| {
                host.eq_ignore_ascii_case(domain)
                    || host.len().checked_sub(domain.len() + 1).is_some_and(|cut| {
                        host.as_bytes()[cut] == b'.' && host[cut + 1..].eq_ignore_ascii_case(domain)
                    })
            })
        }
        _ => false,
    }
}

/// Same scheme family (TLS or not), host and port.
fn same_origin(a: &Url, b: &Url) -> bool {
    let tls = |url: &Url| match url.scheme() {
        "https" | "wss" => Some(true),
        "http" | "ws" => Some(false),
        _ => None,
    };
    tls(a).is_some()
        && tls(a) == tls(b)
        && a.host() == b.host()
        && a.port_or_known_default() == b.port_or_known_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn webex_domains_over_tls() {
        for ok in [
            "https://conv-a.wbx2.com/conversation/api/v1/messages/x",
            "wss://mercury-connection-partition1-a.wbx2.com/v1/apps/wx2/registrations/x/messages",
            "https://webexapis.webex.com/x",
            "https://WBX2.COM/x",
            "https://a.b.webex.com:8443/x",
        ] {
            assert!(is_trusted(&url(ok), &[]), "{ok}");
        }
        for bad in [
            "http://conv-a.wbx2.com/x",
            "ws://mercury.wbx2.com/x",
            "https://evilwbx2.com/x",
            "https://wbx2.com.evil.example/x",
            "https://webex.com@evil.example/x",
            "https://127.0.0.1/x",
            "ftp://a.wbx2.com/x",
        ] {
            assert!(!is_trusted(&url(bad), &[]), "{bad}");
        }
    }

    #[test]
    fn configured_origins() {
        let api = url("http://127.0.0.1:8080/v1");
        let trusted = [&api];
        assert!(is_trusted(
            &url("http://127.0.0.1:8080/conversation/x"),
            &trusted
        ));
        assert!(is_trusted(&url("ws://127.0.0.1:8080/mercury/x"), &trusted));
        assert!(!is_trusted(&url("http://127.0.0.1:8081/x"), &trusted));
        assert!(!is_trusted(&url("https://127.0.0.1:8080/x"), &trusted));
        assert!(!is_trusted(&url("http://127.0.0.2:8080/x"), &trusted));
        let tls = url("https://webexapis.com/v1");
        assert!(is_trusted(&url("wss://webexapis.com/ws"), &[&tls]));
        assert!(!is_trusted(&url("wss://webexapis.com:444/ws"), &[&tls]));
        let err = check_trusted(&url("http://evil.example:9/x?token=1"), &trusted).unwrap_err();
        assert_eq!(
            err.to_string(),
            "refusing to send the access token to http://evil.example:9: not a webex origin"
        );
    }
}
