//! Who is asking through the HTTP API: an API bearer token (any mode), else what `[web] auth` says —
//! the header of a trusted authenticating proxy, or the one local requester of a loopback-only
//! instance. Nothing a client merely claims is believed: a header from an untrusted address, an
//! unknown or revoked token, or no identity at all is refused (401).

use std::net::IpAddr;
use std::sync::Arc;

use axum::http::{header, HeaderMap};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use crate::config::WebAuth;
use crate::privacy::{Channel, Requester};
use crate::store::{Store, StoreError};

/// Every API token starts with this (so a leaked one is recognisable in logs and scanners).
pub const TOKEN_PREFIX: &str = "whereis_";
/// Random bytes in a token.
const TOKEN_BYTES: usize = 32;

/// Why a request has no requester.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Nothing identified the requester.
    #[error("{0}")]
    Missing(String),
    /// A bearer token that is malformed, unknown or revoked.
    #[error("the API token is not valid (unknown or revoked)")]
    BadToken,
    /// The identity header came from an address that is not a trusted proxy.
    #[error("the request did not come through the trusted authenticating proxy")]
    Untrusted,
    /// The proxy's header does not hold an email.
    #[error("the authenticating proxy's {0} header does not hold an email address")]
    NotAnEmail(String),
    /// Tokens could not be checked.
    #[error("cannot check the API token right now: {0}")]
    Store(StoreError),
}

/// How the API learns its requester.
#[derive(Clone)]
pub struct Auth {
    mode: WebAuth,
    store: Store,
    /// The key of CSRF tokens, shared by every instance through the store (read once).
    csrf_key: Arc<OnceCell<Vec<u8>>>,
}

/// The name of the CSRF key in the store.
const CSRF_KEY_NAME: &str = "csrf";

impl Auth {
    /// `mode` from `[web]`; tokens are looked up in `store`.
    pub fn new(mode: WebAuth, store: Store) -> Auth {
        Auth {
            mode,
            store,
            csrf_key: Arc::new(OnceCell::new()),
        }
    }

    /// The CSRF token every form that changes something (a POST) carries for `requester`: an
    /// HMAC of the requester under a key only the instances know, so another site cannot make one.
    pub async fn csrf_token(&self, requester: &Requester) -> Result<String, StoreError> {
        let mac = self.csrf_mac(requester).await?;
        Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }

    /// Whether `token` is `requester`'s CSRF token (compared in constant time).
    pub async fn csrf_valid(&self, requester: &Requester, token: &str) -> Result<bool, StoreError> {
        let Ok(given) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.trim())
        else {
            return Ok(false);
        };
        Ok(self.csrf_mac(requester).await?.verify_slice(&given).is_ok())
    }

    async fn csrf_mac(&self, requester: &Requester) -> Result<Hmac<Sha256>, StoreError> {
        let key = self
            .csrf_key
            .get_or_try_init(|| async {
                let candidate = random_hex().map_err(|e| {
                    StoreError::Unavailable(format!("cannot draw random bytes for a key: {e}"))
                })?;
                let stored = self
                    .store
                    .shared_key(CSRF_KEY_NAME, &candidate, crate::privacy::now())
                    .await?;
                hex::decode(stored.trim())
                    .map_err(|_| StoreError::Query("the stored CSRF key is not hex".to_owned()))
            })
            .await?;
        let mut mac = Hmac::<Sha256>::new_from_slice(key)
            .map_err(|_| StoreError::Query("the stored CSRF key is unusable".to_owned()))?;
        mac.update(b"csrf\0");
        mac.update(requester.id.as_bytes());
        Ok(mac)
    }

    /// The mode.
    pub fn mode(&self) -> &WebAuth {
        &self.mode
    }

    /// The requester of an API request with `headers`, from `peer` (`None` when the address is
    /// unknown: never a trusted proxy).
    pub async fn requester(
        &self,
        headers: &HeaderMap,
        peer: Option<IpAddr>,
    ) -> Result<Requester, AuthError> {
        if let Some(token) = bearer(headers) {
            // A token that does not check out is refused: never a fall back to another identity.
            return self.token_requester(token).await;
        }
        match &self.mode {
            WebAuth::TokensOnly => Err(AuthError::Missing(
                "sign in: send an API token (Authorization: Bearer …; `whereis-bot token create`)"
                    .to_owned(),
            )),
            WebAuth::Local { requester } => Ok(Requester::new(requester, Channel::Api)),
            WebAuth::Oidc(_) => {
                let signed_in = match crate::oidc::session_id(headers) {
                    Some(id) if looks_like_token(id) => self
                        .store
                        .session_requester(&token_hash(id), crate::privacy::now())
                        .await
                        .map_err(AuthError::Store)?,
                    _ => None,
                };
                match signed_in {
                    Some(email) => Ok(Requester::new(&email, Channel::Api)),
                    None => Err(AuthError::Missing(
                        "sign in first: open /login (or send an API token)".to_owned(),
                    )),
                }
            }
            WebAuth::Proxy { header, trusted } => {
                let from_proxy = peer.is_some_and(|ip| {
                    let ip = canonical(ip);
                    trusted.iter().any(|net| net.contains(&ip))
                });
                if !from_proxy {
                    return Err(AuthError::Untrusted);
                }
                let Some(value) = headers.get(header.as_str()) else {
                    return Err(AuthError::Missing(format!(
                        "the authenticating proxy sent no {header} header"
                    )));
                };
                let email = value
                    .to_str()
                    .map(|v| v.trim().to_lowercase())
                    .unwrap_or_default();
                if !is_email(&email) {
                    return Err(AuthError::NotAnEmail(header.clone()));
                }
                Ok(Requester::new(&email, Channel::Api))
            }
        }
    }

    async fn token_requester(&self, token: &str) -> Result<Requester, AuthError> {
        if !looks_like_token(token) {
            return Err(AuthError::BadToken);
        }
        match self.store.token_requester(&token_hash(token)).await {
            Ok(Some(email)) => Ok(Requester::new(&email, Channel::Api)),
            Ok(None) => Err(AuthError::BadToken),
            Err(err) => Err(AuthError::Store(err)),
        }
    }
}

/// The token of an `Authorization: Bearer …` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// An IPv4 address written as IPv6 (`::ffff:10.0.0.5`, from a dual-stack listener) as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// A plausible email: one `@`, something on both sides, no spaces or control characters.
pub fn is_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && text.len() <= 254
        && !text.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// 256 random bits, hex (a key).
fn random_hex() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(hex::encode(bytes))
}

/// A new API token: the prefix and 256 random bits, base64url.
pub fn new_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes)?;
    Ok(format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// What the store keeps of a token: its SHA-256, hex.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn looks_like_token(token: &str) -> bool {
    token.len() <= 128
        && token.strip_prefix(TOKEN_PREFIX).is_some_and(|rest| {
            rest.len() >= 40
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_prefixed_and_hashed() {
        let a = new_token().expect("random");
        let b = new_token().expect("random");
        assert_ne!(a, b);
        assert!(looks_like_token(&a), "{a}");
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), token_hash(&b));
        assert!(!looks_like_token("whereis_short"));
        assert!(!looks_like_token(
            "Bearer-anything-else-of-length-fifty-characters-x"
        ));
    }

    #[test]
    fn emails() {
        assert!(is_email("jane.doe@example.com"));
        for bad in [
            "",
            "jane",
            "@example.com",
            "jane@",
            "jane@localhost",
            "jane doe@example.com",
            "jane@exa@mple.com",
            "jane\u{0}@example.com",
        ] {
            assert!(!is_email(bad), "{bad:?}");
        }
    }

    #[test]
    fn bearer_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer(&headers), None);
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().expect("value"));
        assert_eq!(bearer(&headers), None);
        headers.insert(
            header::AUTHORIZATION,
            "bearer  tok ".parse().expect("value"),
        );
        assert_eq!(bearer(&headers), Some("tok"));
    }

    #[tokio::test]
    async fn csrf_tokens_belong_to_one_requester_and_every_instance() {
        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite://{}", dir.path().join("w.db").display());
        let one = Auth::new(WebAuth::TokensOnly, Store::open(&url).await.expect("store"));
        let other = Auth::new(WebAuth::TokensOnly, Store::open(&url).await.expect("store"));
        let jane = Requester::new("jane@example.com", Channel::Api);
        let mallory = Requester::new("mallory@example.com", Channel::Api);
        let token = one.csrf_token(&jane).await.expect("token");
        assert!(other.csrf_valid(&jane, &token).await.expect("checked"));
        assert!(!other.csrf_valid(&mallory, &token).await.expect("checked"));
        assert!(!one.csrf_valid(&jane, "").await.expect("checked"));
        assert!(!one.csrf_valid(&jane, &token[1..]).await.expect("checked"));
        assert!(!one
            .csrf_valid(&jane, "not base64 !")
            .await
            .expect("checked"));
    }

    #[test]
    fn mapped_ipv4_is_ipv4() {
        let mapped: IpAddr = "::ffff:10.0.0.5".parse().expect("address");
        assert_eq!(
            canonical(mapped),
            "10.0.0.5".parse::<IpAddr>().expect("address")
        );
    }
}
