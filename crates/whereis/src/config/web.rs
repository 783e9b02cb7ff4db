//! `[web]`: how whereis learns who is asking through the browser and the HTTP API.

use std::net::IpAddr;

use ipnet::IpNet;
use toml::Spanned;
use whereis_location::Secret;

use super::raw::RawWeb;
use super::sections::Reader;
use super::{ConfigError, ServerConfig};

/// The header an authenticating proxy sets by default.
pub const DEFAULT_PROXY_HEADER: &str = "X-Forwarded-Email";

/// The web app's settings.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// How a request's requester is known (API bearer tokens work in every mode).
    pub auth: WebAuth,
    /// Whether `/buildings/{name}` lists the people located in a building.
    pub building_roster: bool,
}

impl Default for WebConfig {
    fn default() -> WebConfig {
        WebConfig {
            auth: WebAuth::TokensOnly,
            building_roster: false,
        }
    }
}

/// Who the requester of a web or API request is, besides API bearer tokens.
#[derive(Debug, Clone)]
pub enum WebAuth {
    /// No `[web]` section: only API bearer tokens identify a requester.
    TokensOnly,
    /// `auth = "proxy"`: an authenticating proxy names the requester in `header`; believed only from
    /// the `trusted` networks.
    Proxy {
        /// The header holding the requester's email (lower-case).
        header: String,
        /// The proxies' addresses.
        trusted: Vec<IpNet>,
    },
    /// `auth = "oidc"`: people sign in with OpenID Connect; the requester is the verified `email`
    /// claim.
    Oidc(OidcSettings),
    /// `auth = "none"`: whoever reaches the (loopback-only) listener is `requester`.
    Local {
        /// The one requester, an email.
        requester: String,
    },
}

impl WebAuth {
    /// The value of `auth` in the file.
    pub fn as_str(&self) -> &'static str {
        match self {
            WebAuth::TokensOnly => "tokens only",
            WebAuth::Oidc(_) => "oidc",
            WebAuth::Proxy { .. } => "proxy",
            WebAuth::Local { .. } => "none",
        }
    }
}

/// The OpenID Connect client's settings.
#[derive(Debug, Clone)]
pub struct OidcSettings {
    /// The provider's issuer URL (discovery at `{issuer}/.well-known/openid-configuration`).
    pub issuer: String,
    /// This client's id at the provider.
    pub client_id: String,
    /// This client's secret.
    pub client_secret: Secret,
    /// Where the provider sends the browser back: `{server.public_url}/auth/callback`.
    pub redirect_url: String,
}

/// Reads `[web]`; `auth = "none"` only with a loopback `server.listen`.
pub(super) fn web(
    r: &Reader,
    raw: Option<Spanned<RawWeb>>,
    server: &ServerConfig,
) -> Result<WebConfig, ConfigError> {
    let Some(raw) = raw else {
        return Ok(WebConfig::default());
    };
    let section_span = raw.span();
    let raw = raw.into_inner();
    let Some(auth) = &raw.auth else {
        return Err(r.at(
            section_span,
            "[web]: set auth = \"oidc\" (OpenID Connect sign-in), \"proxy\" (an authenticating \
             proxy names the requester) or \"none\" (loopback only: one local requester)"
                .to_owned(),
        ));
    };
    let unused = |key: &str, present: bool| -> Result<(), ConfigError> {
        if present {
            Err(r.at(
                auth.span(),
                format!("web.{key} does not apply to auth = {:?}", auth.get_ref()),
            ))
        } else {
            Ok(())
        }
    };
    let oidc_keys = raw.issuer.is_some()
        || raw.client_id.is_some()
        || raw.client_secret_env.is_some()
        || raw.client_secret_file.is_some();
    let auth = match auth.get_ref().as_str() {
        "oidc" => {
            unused("requester", raw.requester.is_some())?;
            unused("header", raw.header.is_some())?;
            unused("trusted_proxies", raw.trusted_proxies.is_some())?;
            oidc(r, &raw, auth, server)?
        }
        "proxy" => {
            unused("requester", raw.requester.is_some())?;
            unused("issuer/client_id/client_secret_*", oidc_keys)?;
            proxy(r, &raw, auth)?
        }
        "none" => {
            unused("header", raw.header.is_some())?;
            unused("trusted_proxies", raw.trusted_proxies.is_some())?;
            unused("issuer/client_id/client_secret_*", oidc_keys)?;
            local(r, &raw, auth, server)?
        }
        other => {
            return Err(r.at(
                auth.span(),
                format!("web.auth: {other:?} is not one of \"oidc\", \"proxy\", \"none\""),
            ))
        }
    };
    Ok(WebConfig {
        auth,
        building_roster: raw.building_roster.unwrap_or(false),
    })
}

fn oidc(
    r: &Reader,
    raw: &RawWeb,
    auth: &Spanned<String>,
    server: &ServerConfig,
) -> Result<WebAuth, ConfigError> {
    let required = |value: &Option<Spanned<String>>, key: &str, what: &str| match value
        .as_ref()
        .map(|v| (v.get_ref().trim(), v.span()))
    {
        Some((text, _)) if !text.is_empty() => Ok(text.to_owned()),
        Some((_, span)) => Err(r.at(span, format!("web.{key}: empty"))),
        None => Err(r.at(
            auth.span(),
            format!("web.{key}: auth = \"oidc\" needs {what}"),
        )),
    };
    let issuer = required(&raw.issuer, "issuer", "the provider's issuer URL")?;
    if let Some(span) = raw.issuer.as_ref().map(Spanned::span) {
        super::check_url(&issuer).map_err(|msg| r.at(span, format!("web.issuer: {msg}")))?;
    }
    let client_id = required(
        &raw.client_id,
        "client_id",
        "this client's id at the provider",
    )?;
    let client_secret = r
        .secret(
            auth.span(),
            ("web.client_secret_env", raw.client_secret_env.as_ref()),
            ("web.client_secret_file", raw.client_secret_file.as_ref()),
        )?
        .ok_or_else(|| {
            r.at(
                auth.span(),
                "web.client_secret_env or web.client_secret_file: auth = \"oidc\" needs the \
                 client's secret"
                    .to_owned(),
            )
        })?;
    let Some(public_url) = &server.public_url else {
        return Err(r.at(
            auth.span(),
            "server.public_url: auth = \"oidc\" needs the address people open whereis at (the \
             provider sends them back to {public_url}/auth/callback)"
                .to_owned(),
        ));
    };
    Ok(WebAuth::Oidc(OidcSettings {
        issuer,
        client_id,
        client_secret,
        redirect_url: format!("{}/auth/callback", public_url.trim_end_matches('/')),
    }))
}

fn proxy(r: &Reader, raw: &RawWeb, auth: &Spanned<String>) -> Result<WebAuth, ConfigError> {
    let header = match &raw.header {
        Some(header) => {
            let name = header.get_ref().trim();
            if axum::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(r.at(
                    header.span(),
                    format!("web.header: {name:?} is not an HTTP header name"),
                ));
            }
            name.to_ascii_lowercase()
        }
        None => DEFAULT_PROXY_HEADER.to_ascii_lowercase(),
    };
    let Some(list) = &raw.trusted_proxies else {
        return Err(r.at(
            auth.span(),
            "web.trusted_proxies: auth = \"proxy\" needs the proxies' addresses (e.g. \
             [\"10.0.0.5\", \"10.1.0.0/24\"]): the header is believed from them only"
                .to_owned(),
        ));
    };
    let mut trusted = Vec::new();
    for entry in list.get_ref() {
        let entry = entry.trim();
        let net = entry
            .parse::<IpNet>()
            .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
            .map_err(|_| {
                r.at(
                    list.span(),
                    format!("web.trusted_proxies: {entry:?} is not an address or a CIDR network"),
                )
            })?;
        trusted.push(net);
    }
    if trusted.is_empty() {
        return Err(r.at(
            list.span(),
            "web.trusted_proxies: list at least one proxy address".to_owned(),
        ));
    }
    Ok(WebAuth::Proxy { header, trusted })
}

fn local(
    r: &Reader,
    raw: &RawWeb,
    auth: &Spanned<String>,
    server: &ServerConfig,
) -> Result<WebAuth, ConfigError> {
    if !server.listen.ip().is_loopback() {
        return Err(r.at(
            auth.span(),
            format!(
                "web.auth = \"none\" lets anyone who reaches server.listen act as one requester: \
                 it is allowed only on a loopback address, and server.listen is {}; use \
                 auth = \"proxy\" behind an authenticating proxy",
                server.listen
            ),
        ));
    }
    let Some(requester) = &raw.requester else {
        return Err(r.at(
            auth.span(),
            "web.requester: auth = \"none\" needs the email everyone on this listener acts as"
                .to_owned(),
        ));
    };
    let email = requester.get_ref().trim().to_lowercase();
    if !crate::auth::is_email(&email) {
        return Err(r.at(
            requester.span(),
            "web.requester: must be an email address".to_owned(),
        ));
    }
    Ok(WebAuth::Local { requester: email })
}
