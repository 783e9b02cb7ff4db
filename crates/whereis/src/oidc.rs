//! Web sign-in with OpenID Connect: the authorization code flow with PKCE. A sign-in under way
//! (state, nonce, PKCE verifier, where to return) is kept in the store, so the callback may reach
//! any instance; the requester is the ID token's `email` claim, and only when the provider says
//! it is verified. A signed-in browser holds a random session id in an HttpOnly cookie; the store
//! keeps only its hash.

use std::time::{Duration, Instant};

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use tokio::sync::Mutex;

use crate::config::OidcSettings;
use crate::store::{PendingLogin, Store, StoreError};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "whereis_session";
/// How long a session lasts.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// How long a sign-in may take between `/login` and the callback.
pub const LOGIN_LIFETIME: Duration = Duration::from_secs(600);
/// How long the provider's metadata (and signing keys) are used before they are fetched again.
const METADATA_LIFETIME: Duration = Duration::from_secs(3600);
/// Longest wait for the provider on each request.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a sign-in failed. Messages are for the person signing in and the log; no secret in them.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The provider could not be reached or answered nonsense.
    #[error("the sign-in provider cannot be reached: {0}")]
    Provider(String),
    /// The callback does not belong to a sign-in under way (expired, used, or forged).
    #[error("this sign-in expired or was already used; please sign in again")]
    UnknownLogin,
    /// The provider refused, or its answer did not verify.
    #[error("the sign-in was refused: {0}")]
    Refused(String),
    /// The ID token carries no email the provider vouches for.
    #[error("the sign-in provider did not vouch for an email address")]
    NoVerifiedEmail,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The OpenID Connect client of one instance.
pub struct Oidc {
    settings: OidcSettings,
    http: reqwest::Client,
    /// The provider's discovery document and keys, and when they were fetched.
    metadata: Mutex<Option<(Instant, CoreProviderMetadata)>>,
}

impl Oidc {
    /// A client for `settings`; connections go out through `network`.
    pub fn new(settings: OidcSettings, network: &whereis_net::Network) -> Result<Oidc, OidcError> {
        let http = network
            .http_client_builder()
            // Following redirects would let the provider's answers steer requests elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(PROVIDER_TIMEOUT)
            .build()
            .map_err(|e| OidcError::Provider(format!("cannot build the HTTP client: {e}")))?;
        Ok(Oidc {
            settings,
            http,
            metadata: Mutex::new(None),
        })
    }

    /// Whether the session cookie must be `Secure` (the public URL is https).
    pub fn secure_cookie(&self) -> bool {
        self.settings.redirect_url.starts_with("https://")
    }

    async fn metadata(&self) -> Result<CoreProviderMetadata, OidcError> {
        let mut cached = self.metadata.lock().await;
        if let Some((fetched, metadata)) = cached.as_ref() {
            if fetched.elapsed() < METADATA_LIFETIME {
                return Ok(metadata.clone());
            }
        }
        let issuer = IssuerUrl::new(self.settings.issuer.clone())
            .map_err(|e| OidcError::Provider(format!("issuer URL: {e}")))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| OidcError::Provider(error_chain(&e)))?;
        *cached = Some((Instant::now(), metadata.clone()));
        Ok(metadata)
    }

    /// Starts a sign-in that returns to `return_to` (a local path): the provider's URL to send the
    /// browser to.
    pub async fn begin(&self, store: &Store, return_to: &str) -> Result<String, OidcError> {
        let metadata = self.metadata().await?;
        let client = self.client(metadata)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("email".to_owned()))
            .add_scope(Scope::new("profile".to_owned()))
            .set_pkce_challenge(challenge)
            .url();
        let login = PendingLogin {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            verifier: verifier.secret().clone(),
            return_to: return_to.to_owned(),
        };
        store.save_login(&login, crate::privacy::now()).await?;
        Ok(url.to_string())
    }

    /// Finishes the sign-in of `state` with the provider's `code`: the verified email, and the
    /// local path to return to.
    pub async fn finish(
        &self,
        store: &Store,
        code: &str,
        state: &str,
    ) -> Result<(String, String), OidcError> {
        let not_before = crate::privacy::now() - secs(LOGIN_LIFETIME);
        let login = store
            .take_login(state, not_before)
            .await?
            .ok_or(OidcError::UnknownLogin)?;
        let metadata = self.metadata().await?;
        let client = self.client(metadata)?;
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| OidcError::Provider(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(login.verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| OidcError::Refused(error_chain(&e)))?;
        let id_token = response
            .id_token()
            .ok_or_else(|| OidcError::Refused("no ID token in the answer".to_owned()))?;
        let claims = id_token
            .claims(&client.id_token_verifier(), &Nonce::new(login.nonce))
            .map_err(|e| OidcError::Refused(error_chain(&e)))?;
        let email = match (claims.email(), claims.email_verified()) {
            (Some(email), Some(true)) => email.as_str().trim().to_lowercase(),
            _ => return Err(OidcError::NoVerifiedEmail),
        };
        if !crate::auth::is_email(&email) {
            return Err(OidcError::NoVerifiedEmail);
        }
        Ok((email, login.return_to))
    }

    fn client(
        &self,
        metadata: CoreProviderMetadata,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        OidcError,
    > {
        let redirect = RedirectUrl::new(self.settings.redirect_url.clone())
            .map_err(|e| OidcError::Provider(format!("redirect URL: {e}")))?;
        Ok(CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.client_id.clone()),
            Some(ClientSecret::new(
                self.settings.client_secret.expose().to_owned(),
            )),
        )
        .set_redirect_uri(redirect))
    }
}

/// Starts a session for `email`: the cookie's value (random; only its hash is stored).
pub async fn start_session(store: &Store, email: &str) -> Result<String, StoreError> {
    let id = crate::auth::new_token()
        .map_err(|e| StoreError::Unavailable(format!("cannot draw random bytes: {e}")))?;
    let now = crate::privacy::now();
    store
        .create_session(
            &crate::auth::token_hash(&id),
            email,
            now,
            now + secs(SESSION_LIFETIME),
        )
        .await?;
    Ok(id)
}

/// The `Set-Cookie` value for a session id (an empty id with `Max-Age=0` removes the cookie).
pub fn session_cookie(id: &str, secure: bool) -> String {
    let max_age = if id.is_empty() {
        0
    } else {
        secs(SESSION_LIFETIME)
    };
    format!(
        "{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The session id in a request's cookies.
pub fn session_id(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

/// Whether `path` is a local path to return to after sign-in (never another site: `//evil`,
/// `/\evil` and absolute URLs are refused).
pub fn local_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("//")
        && !path.starts_with("/\\")
        && !path.chars().any(|c| c.is_control() || c == '\\')
        && path.len() <= 2048
}

fn secs(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

/// An error and its sources, for messages (openidconnect's errors keep the detail in sources).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_paths_stay_local() {
        for good in ["/", "/?q=jdoe", "/me", "/buildings/Building%205"] {
            assert!(local_path(good), "{good}");
        }
        for bad in [
            "",
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "/a\\b",
            "/\r\nSet-Cookie: x=y",
            "me",
        ] {
            assert!(!local_path(bad), "{bad:?}");
        }
    }

    #[test]
    fn session_cookies() {
        let cookie = session_cookie("abc", true);
        assert!(cookie.starts_with("whereis_session=abc; "));
        for flag in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
            assert!(cookie.contains(flag), "{cookie}");
        }
        assert!(!session_cookie("abc", false).contains("Secure"));
        assert!(session_cookie("", false).contains("Max-Age=0"));
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            axum::http::header::COOKIE,
            "theme=dark; whereis_session=xyz".parse().expect("value"),
        );
        assert_eq!(session_id(&headers), Some("xyz"));
    }
}
