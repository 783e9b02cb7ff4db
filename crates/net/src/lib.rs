//! whereis-net: how whereis's outbound connections leave the machine.
//!
//! In the offices that run whereis, outbound HTTPS usually has to go through a corporate proxy. Every
//! outbound connection — the Webex REST API and its websocket, CMX and MSE servers, and the cloud
//! location services — is made through one [`Network`]:
//! - [`Network::route`] says, for a URL, whether it goes direct or through which proxy, and why (the
//!   answer `check-config` prints for each source);
//! - [`Network::http_client_builder`] is the one `reqwest::ClientBuilder` every HTTP client starts
//!   from: proxying decided by [`Network::route`] (never by reqwest's own reading of the environment),
//!   plain HTTP forwarded in absolute form, HTTPS tunnelled with `CONNECT`;
//! - [`Network::dial`] opens the TCP stream a websocket runs over: direct, or a `CONNECT` tunnel
//!   through the proxy (websockets always tunnel, `ws://` too).
//!
//! The proxy comes from the configuration (`[network] proxy`, `no_proxy`, credentials from a secret)
//! or, without it, from `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` / `NO_PROXY` (and their lower-case
//! forms) as curl reads them. `no_proxy` entries are host names (matching the host and its subdomains),
//! IP addresses, CIDR blocks (matching URLs that name an address inside; names are not resolved) or `*`.
//!
//! The proxy password is held in a [`SecretString`]: it is sent only in `Proxy-Authorization` and
//! never appears in `Debug` output, messages or logs.

mod no_proxy;
mod tunnel;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

pub use no_proxy::NoProxyRule;

/// A proxy or `no_proxy` setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    /// The proxy URL is not `http://host:port` (or carries a password where none may be written).
    #[error("proxy {0}")]
    Proxy(String),
    /// A `no_proxy` entry is neither a host name, an IP address, a CIDR block nor `*`.
    #[error("no_proxy entry {0:?} is not a host name, an IP address or a CIDR block")]
    NoProxy(String),
    /// The connection (direct, or through the proxy) could not be opened.
    #[error("{0}")]
    Dial(String),
}

/// Where a URL's connection goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Straight to the server.
    Direct {
        /// Why: no proxy is set up, or the `no_proxy` entry that matched.
        reason: DirectReason,
    },
    /// Through a proxy.
    Proxy {
        /// The proxy, `http://host:port` (no credentials).
        proxy: String,
        /// True when the connection is tunnelled with `CONNECT` (HTTPS, websockets); false when a
        /// plain HTTP request is forwarded in absolute form.
        tunnel: bool,
    },
}

/// Why a URL goes direct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectReason {
    /// No proxy applies to the URL's scheme.
    NoProxy,
    /// The host matched this `no_proxy` entry.
    Excluded(String),
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Route::Direct {
                reason: DirectReason::NoProxy,
            } => f.write_str("direct"),
            Route::Direct {
                reason: DirectReason::Excluded(rule),
            } => write!(f, "direct (no_proxy {rule})"),
            Route::Proxy {
                proxy,
                tunnel: true,
            } => write!(f, "via proxy {proxy} (CONNECT)"),
            Route::Proxy {
                proxy,
                tunnel: false,
            } => write!(f, "via proxy {proxy}"),
        }
    }
}

/// Where the proxy settings came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyOrigin {
    /// `[network]` in the configuration.
    Config,
    /// `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` / `NO_PROXY`.
    Environment,
}

/// One proxy server.
#[derive(Clone)]
pub struct ProxyServer {
    /// `http://host:port`, without credentials.
    url: Url,
    host: String,
    port: u16,
    username: Option<String>,
    password: Option<SecretString>,
}

impl fmt::Debug for ProxyServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyServer")
            .field("url", &self.url.as_str())
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl ProxyServer {
    /// A proxy at `url` (`http://host:port`). A user name may come in the URL or in `username`; the
    /// password only from `password` (a secret), unless `allow_password_in_url` (for environment
    /// variables, which are secret already).
    pub fn parse(
        url: &str,
        username: Option<String>,
        password: Option<SecretString>,
        allow_password_in_url: bool,
    ) -> Result<ProxyServer, NetError> {
        let text = url.trim();
        // Without a scheme, curl assumes http://.
        let with_scheme = if text.contains("://") {
            text.to_owned()
        } else {
            format!("http://{text}")
        };
        let mut parsed = Url::parse(&with_scheme).map_err(|err| {
            NetError::Proxy(format!("is not a URL like http://proxy:3128 ({err})"))
        })?;
        if parsed.scheme() != "http" {
            return Err(NetError::Proxy(format!(
                "scheme {}:// is not supported: give http://host:port (TLS is tunnelled through it)",
                parsed.scheme()
            )));
        }
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| NetError::Proxy("has no host".to_owned()))?
            .to_owned();
        let port = parsed.port_or_known_default().unwrap_or(80);
        if !matches!(parsed.path(), "" | "/") || parsed.query().is_some() {
            return Err(NetError::Proxy(
                "must be http://host:port, without a path or query".to_owned(),
            ));
        }
        let url_user = percent_decode(parsed.username());
        let url_password = parsed.password().map(percent_decode);
        if url_password.is_some() && !allow_password_in_url {
            return Err(NetError::Proxy(
                "URL contains a password: give it with proxy_password_env or proxy_password_file"
                    .to_owned(),
            ));
        }
        let username = username
            .filter(|u| !u.is_empty())
            .or_else(|| (!url_user.is_empty()).then_some(url_user));
        let password = password.or_else(|| url_password.map(SecretString::from));
        if password.is_some() && username.is_none() {
            return Err(NetError::Proxy(
                "has a password but no user name (give proxy_username)".to_owned(),
            ));
        }
        // The URL shown and used by the HTTP stack carries no credentials: they go in a header.
        let _ = parsed.set_username("");
        let _ = parsed.set_password(None);
        parsed.set_path("");
        Ok(ProxyServer {
            url: parsed,
            host,
            port,
            username,
            password,
        })
    }

    /// `http://host:port`.
    pub fn url(&self) -> &str {
        self.url.as_str().trim_end_matches('/')
    }

    /// The `Proxy-Authorization` value, when the proxy has credentials (marked sensitive).
    fn authorization(&self) -> Option<reqwest::header::HeaderValue> {
        use base64::Engine;
        let username = self.username.as_deref()?;
        let password = self
            .password
            .as_ref()
            .map(|p| p.expose_secret().to_owned())
            .unwrap_or_default();
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Basic {token}")).ok()?;
        value.set_sensitive(true);
        Some(value)
    }
}

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// How outbound connections leave the machine. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Network {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Proxy for `http://` and `ws://` URLs.
    http: Option<ProxyServer>,
    /// Proxy for `https://` and `wss://` URLs.
    https: Option<ProxyServer>,
    no_proxy: Vec<NoProxyRule>,
    origin: Option<ProxyOrigin>,
}

/// How long [`Network::dial`] waits for a connection (and the proxy's answer to `CONNECT`) by default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl Default for Network {
    fn default() -> Network {
        Network::direct()
    }
}

impl Network {
    /// Every connection direct.
    pub fn direct() -> Network {
        Network {
            inner: Arc::new(Inner {
                http: None,
                https: None,
                no_proxy: Vec::new(),
                origin: None,
            }),
        }
    }

    /// One proxy for every scheme (`[network] proxy`), except hosts matching `no_proxy`.
    pub fn with_proxy(proxy: ProxyServer, no_proxy: &[String]) -> Result<Network, NetError> {
        Ok(Network {
            inner: Arc::new(Inner {
                http: Some(proxy.clone()),
                https: Some(proxy),
                no_proxy: parse_rules(no_proxy.iter().map(String::as_str))?,
                origin: Some(ProxyOrigin::Config),
            }),
        })
    }

    /// What the environment says, as curl reads it: `https_proxy`/`HTTPS_PROXY` for HTTPS and
    /// websockets over TLS, `http_proxy`/`HTTP_PROXY` for plain HTTP, `all_proxy`/`ALL_PROXY` for
    /// either when unset, and `no_proxy`/`NO_PROXY` (comma-separated). Lower case wins.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Network, NetError> {
        let var = |name: &str| {
            env(&name.to_lowercase())
                .or_else(|| env(&name.to_uppercase()))
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let proxy = |name: &str| -> Result<Option<ProxyServer>, NetError> {
            match var(name).or_else(|| var("all_proxy")) {
                Some(url) => ProxyServer::parse(&url, None, None, true)
                    .map(Some)
                    .map_err(|err| NetError::Proxy(format!("from {}: {err}", name.to_uppercase()))),
                None => Ok(None),
            }
        };
        let http = proxy("http_proxy")?;
        let https = proxy("https_proxy")?;
        let no_proxy = match var("no_proxy") {
            Some(list) => parse_rules(list.split(',').map(str::trim).filter(|e| !e.is_empty()))?,
            None => Vec::new(),
        };
        let origin = (http.is_some() || https.is_some()).then_some(ProxyOrigin::Environment);
        Ok(Network {
            inner: Arc::new(Inner {
                http,
                https,
                no_proxy,
                origin,
            }),
        })
    }

    /// Where the proxy settings came from; `None` when every connection is direct.
    pub fn origin(&self) -> Option<ProxyOrigin> {
        self.inner.origin
    }

    /// One line for operators: "direct", or the proxy (and where it came from) and the exclusions.
    pub fn describe(&self) -> String {
        let origin = match self.inner.origin {
            None => return "direct (no proxy configured)".to_owned(),
            Some(ProxyOrigin::Config) => "[network]",
            Some(ProxyOrigin::Environment) => "environment",
        };
        let mut text = match (&self.inner.http, &self.inner.https) {
            (Some(a), Some(b)) if a.url == b.url => format!("proxy {} (from {origin})", a.url()),
            (http, https) => {
                let show = |p: &Option<ProxyServer>| {
                    p.as_ref()
                        .map(|p| p.url().to_owned())
                        .unwrap_or_else(|| "direct".to_owned())
                };
                format!(
                    "proxy for https {} and for http {} (from {origin})",
                    show(https),
                    show(http)
                )
            }
        };
        if !self.inner.no_proxy.is_empty() {
            let rules: Vec<String> = self.inner.no_proxy.iter().map(|r| r.to_string()).collect();
            text.push_str(&format!("; no_proxy: {}", rules.join(", ")));
        }
        text
    }

    /// The proxy that applies to a URL of this scheme, before exclusions.
    fn proxy_for_scheme(&self, scheme: &str) -> Option<&ProxyServer> {
        match scheme {
            "https" | "wss" => self.inner.https.as_ref(),
            _ => self.inner.http.as_ref(),
        }
    }

    /// Where a connection to `url` goes, and why.
    pub fn route(&self, url: &Url) -> Route {
        let Some(proxy) = self.proxy_for_scheme(url.scheme()) else {
            return Route::Direct {
                reason: DirectReason::NoProxy,
            };
        };
        let host = url.host();
        let port = url.port_or_known_default();
        if let Some(rule) = host.and_then(|host| {
            self.inner
                .no_proxy
                .iter()
                .find(|rule| rule.matches(&host, port))
        }) {
            return Route::Direct {
                reason: DirectReason::Excluded(rule.to_string()),
            };
        }
        Route::Proxy {
            proxy: proxy.url().to_owned(),
            tunnel: !matches!(url.scheme(), "http"),
        }
    }

    /// The proxy a URL is routed through, if any.
    fn proxy_of(&self, url: &Url) -> Option<&ProxyServer> {
        match self.route(url) {
            Route::Direct { .. } => None,
            Route::Proxy { .. } => self.proxy_for_scheme(url.scheme()),
        }
    }

    /// A `reqwest` client builder whose proxying follows [`Network::route`] exactly (reqwest's own
    /// reading of the environment is switched off). Every HTTP client of whereis starts here.
    pub fn http_client_builder(&self) -> reqwest::ClientBuilder {
        let mut builder = reqwest::Client::builder().no_proxy();
        let mut servers: Vec<&ProxyServer> = Vec::new();
        for server in [&self.inner.https, &self.inner.http].into_iter().flatten() {
            if !servers.iter().any(|s| s.url == server.url) {
                servers.push(server);
            }
        }
        for server in servers {
            let network = self.clone();
            let target = server.url.clone();
            // One interceptor per proxy server, so that each sends its own credentials.
            let mut proxy = reqwest::Proxy::custom(move |url| {
                network
                    .proxy_of(url)
                    .filter(|chosen| chosen.url == target)
                    .map(|chosen| chosen.url.clone())
            });
            if let Some(auth) = server.authorization() {
                proxy = proxy.custom_http_auth(auth);
            }
            builder = builder.proxy(proxy);
        }
        builder
    }

    /// Opens a TCP stream to the host and port of `url` (`ws://`, `wss://`, `http://`, `https://`):
    /// direct, or tunnelled through the proxy with `CONNECT`. TLS, if any, is the caller's.
    pub async fn dial(
        &self,
        url: &Url,
        timeout: Duration,
    ) -> Result<tokio::net::TcpStream, NetError> {
        let host = url
            .host_str()
            .ok_or_else(|| NetError::Dial("the URL has no host".to_owned()))?;
        let port = url
            .port_or_known_default()
            .ok_or_else(|| NetError::Dial(format!("no port for {}://", url.scheme())))?;
        match self.proxy_of(url) {
            None => tunnel::direct(host, port, timeout).await,
            Some(proxy) => tunnel::connect(proxy, host, port, timeout).await,
        }
    }
}

fn parse_rules<'a>(entries: impl Iterator<Item = &'a str>) -> Result<Vec<NoProxyRule>, NetError> {
    entries.map(NoProxyRule::parse).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).expect("test URL")
    }

    fn proxied(no_proxy: &[&str]) -> Network {
        let proxy =
            ProxyServer::parse("http://proxy.example.com:3128", None, None, false).expect("proxy");
        let rules: Vec<String> = no_proxy.iter().map(|s| s.to_string()).collect();
        Network::with_proxy(proxy, &rules).expect("network")
    }

    #[test]
    fn routes_follow_no_proxy() {
        let net = proxied(&["cmx-north.example.com", "10.0.0.0/8", ".corp.example"]);
        assert_eq!(
            net.route(&url("https://webexapis.com/v1")).to_string(),
            "via proxy http://proxy.example.com:3128 (CONNECT)"
        );
        assert_eq!(
            net.route(&url("http://cmx.example.org/")).to_string(),
            "via proxy http://proxy.example.com:3128"
        );
        assert_eq!(
            net.route(&url("https://cmx-north.example.com")).to_string(),
            "direct (no_proxy cmx-north.example.com)"
        );
        assert_eq!(
            net.route(&url("https://10.1.2.3:8443")).to_string(),
            "direct (no_proxy 10.0.0.0/8)"
        );
        assert!(matches!(
            net.route(&url("https://11.1.2.3")),
            Route::Proxy { .. }
        ));
        assert!(matches!(
            net.route(&url("https://mse.corp.example")),
            Route::Direct { .. }
        ));
        // A suffix must match at a label boundary.
        assert!(matches!(
            net.route(&url("https://evilcorp.example")),
            Route::Proxy { .. }
        ));
        assert!(matches!(
            net.route(&url("wss://mercury.wbx2.com/x")),
            Route::Proxy { tunnel: true, .. }
        ));
        assert!(matches!(
            net.route(&url("ws://127.0.0.1:9/x")),
            Route::Proxy { tunnel: true, .. }
        ));
    }

    #[test]
    fn environment_is_read_like_curl() {
        let env = |name: &str| match name {
            "HTTPS_PROXY" => Some("http://user:pa%40ss@secure-proxy:8080".to_owned()),
            "http_proxy" => Some("plain-proxy:3128".to_owned()),
            "NO_PROXY" => Some("localhost, 127.0.0.1,::1, .internal".to_owned()),
            _ => None,
        };
        let net = Network::from_env(&env).expect("env");
        assert_eq!(net.origin(), Some(ProxyOrigin::Environment));
        assert_eq!(
            net.route(&url("https://webexapis.com")).to_string(),
            "via proxy http://secure-proxy:8080 (CONNECT)"
        );
        assert_eq!(
            net.route(&url("http://cmx.example.com")).to_string(),
            "via proxy http://plain-proxy:3128"
        );
        assert!(matches!(
            net.route(&url("http://127.0.0.1:8080")),
            Route::Direct { .. }
        ));
        assert!(matches!(
            net.route(&url("https://[::1]:8443")),
            Route::Direct { .. }
        ));
        assert!(matches!(
            net.route(&url("https://db.internal")),
            Route::Direct { .. }
        ));
        let shown = format!("{net:?} {}", net.describe());
        assert!(
            !shown.contains("pa@ss") && !shown.contains("pa%40ss"),
            "{shown}"
        );
        assert_eq!(
            Network::from_env(&|_| None).expect("empty").describe(),
            "direct (no proxy configured)"
        );
        let star = |name: &str| match name {
            "ALL_PROXY" => Some("http://p:1".to_owned()),
            "no_proxy" => Some("*".to_owned()),
            _ => None,
        };
        let net = Network::from_env(&star).expect("star");
        assert!(matches!(
            net.route(&url("https://anything.example")),
            Route::Direct { .. }
        ));
    }

    #[test]
    fn bad_proxy_settings_are_explained() {
        for (text, expected) in [
            ("https://proxy:3128", "not supported"),
            ("http://proxy:3128/path", "without a path"),
            ("http://user:secret-pw@proxy:3128", "proxy_password_env"),
            ("http://", "URL"),
        ] {
            let err = ProxyServer::parse(text, None, None, false)
                .expect_err(text)
                .to_string();
            assert!(err.contains(expected), "{text}: {err}");
            assert!(!err.contains("secret-pw"), "{err}");
        }
        let err = Network::with_proxy(
            ProxyServer::parse("http://p:1", None, None, false).expect("proxy"),
            &["10.0.0.0/33".to_owned()],
        )
        .expect_err("bad cidr");
        assert!(matches!(err, NetError::NoProxy(_)), "{err}");
    }

    #[test]
    fn credentials_stay_out_of_debug() {
        let proxy = ProxyServer::parse(
            "http://proxy:3128",
            Some("svc-whereis".to_owned()),
            Some(SecretString::from("Q7")),
            false,
        )
        .expect("proxy");
        let net = Network::with_proxy(proxy.clone(), &[]).expect("net");
        let shown = format!("{proxy:?} {net:?} {}", net.describe());
        assert!(!shown.contains("Q7"), "{shown}");
        let auth = proxy.authorization().expect("credentials");
        assert!(auth.is_sensitive());
        assert_eq!(auth.to_str().expect("ascii"), "Basic c3ZjLXdoZXJlaXM6UTc=");
    }
}
