//! An OpenID Connect provider double: the authorization code flow with PKCE, over real HTTP on loopback.
//!
//! [`OidcDouble`] is an issuer at `http://127.0.0.1:PORT` ([`OidcDouble::issuer`]) that signs people in
//! from a fixed list ([`OidcPerson`]) through a small login page, and hands registered clients RS256 ID
//! tokens signed with a 2048-bit RSA key generated at start. It shares no code with any OpenID client,
//! so it checks the client independently. Endpoints:
//!
//! | endpoint | what it does |
//! |---|---|
//! | `GET /.well-known/openid-configuration` | discovery document (issuer, endpoints, RS256, S256, …) |
//! | `GET /authorize` | checks `client_id` and the exact `redirect_uri` (else an HTML error page, never a redirect), then the rest of the request (errors go back to the redirect URI: `unsupported_response_type`, `invalid_scope`, `invalid_request`); shows the login form `form#login`, one `button[name=email][value=EMAIL]` per person and `button[name=cancel]`; with `prompt=none&login_hint=EMAIL` signs that person in without the form (`error=login_required` when nobody fits) |
//! | `POST /authorize` | the form's answer: 303 to `redirect_uri?code=…&state=…` (or `error=access_denied` for cancel) |
//! | `POST /token` | `grant_type=authorization_code`, `code`, `redirect_uri`, `code_verifier`; client auth by HTTP Basic or `client_id`/`client_secret` in the body → `{access_token, token_type, expires_in, id_token, scope}`; errors as RFC 6749 §5.2 (`invalid_client` 401, `invalid_grant` 400, …) |
//! | `GET /jwks` | the public key as a JWK set (`kid`, `use` `sig`, `alg` `RS256`) |
//! | `GET /userinfo` | with `Authorization: Bearer ACCESS_TOKEN` → `{sub, email, email_verified, name, preferred_username}` |
//!
//! PKCE is required (`code_challenge_method=S256` only); `nonce` is optional and copied into the ID token.
//! A code lives 60 s ([`OidcDouble::set_code_lifetime`]) and works once: a second use is `invalid_grant`
//! and revokes the access tokens the first use gave. A code is spent by the first token request of its
//! client, whether that request succeeds or not.
//!
//! # Configuring a server against it
//! ```no_run
//! # async fn demo() -> Result<(), whereis_sim::SimError> {
//! use whereis_sim::{OidcDouble, OidcPerson};
//! let idp = OidcDouble::start(vec![OidcPerson::new("jane.doe@example.com", "Jane Doe", "jdoe")]).await?;
//! // issuer URL: idp.issuer() (no trailing slash; discovery at {issuer}/.well-known/openid-configuration)
//! idp.register_client("whereis", "client-secret", &["http://127.0.0.1:8080/auth/callback"]);
//! // the server is configured with that issuer, client id, client secret and redirect URI
//! # Ok(()) }
//! ```
//!
//! # Test knobs
//! [`OidcDouble::set_email_verified`] (the person's `email_verified` claim), [`OidcDouble::sign_with_wrong_key`]
//! (ID tokens signed by a key that is not in the JWKS, under the published `kid`),
//! [`OidcDouble::set_issuer_override`] (another `iss` in ID tokens), [`OidcDouble::issue_expired_id_tokens`]
//! (`exp` ten minutes ago) and [`OidcDouble::set_code_lifetime`]. What was asked:
//! [`OidcDouble::requests`], [`OidcDouble::request_count`].

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use rsa::pkcs1v15::SigningKey;
use rsa::rand_core::{OsRng, RngCore};
use rsa::signature::{SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::server::lock;
use crate::SimError;

/// How long an authorization code can be exchanged, unless changed with [`OidcDouble::set_code_lifetime`].
pub const CODE_LIFETIME: Duration = Duration::from_secs(60);
/// `expires_in` of access tokens.
pub const ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// From `iat` to `exp` of ID tokens.
pub const ID_TOKEN_LIFETIME: Duration = Duration::from_secs(600);
/// Size of the RSA keys.
const KEY_BITS: usize = 2048;
/// How long [`OidcDouble::shutdown`] waits for open connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Characters left as they are in a query value: RFC 3986 unreserved.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Someone who can sign in at the double.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcPerson {
    /// The `email` claim, e.g. `jane.doe@example.com`; unique (case-insensitive).
    pub email: String,
    /// The `name` claim, e.g. `Jane Doe`.
    pub name: String,
    /// The `preferred_username` claim, e.g. `jdoe`.
    pub username: String,
}

impl OidcPerson {
    /// A person with that email, display name and username.
    pub fn new(email: &str, name: &str, username: &str) -> OidcPerson {
        OidcPerson {
            email: email.to_owned(),
            name: name.to_owned(),
            username: username.to_owned(),
        }
    }
}

/// A request the double received (method, path and raw query; bodies are not kept, they hold secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcRequest {
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// The path, e.g. `/token`.
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
}

/// A running OpenID Connect provider double on `127.0.0.1`; dropping it stops it.
pub struct OidcDouble {
    inner: Arc<Inner>,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for OidcDouble {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcDouble")
            .field("issuer", &self.inner.issuer)
            .field("kid", &self.inner.keys.kid)
            .finish_non_exhaustive()
    }
}

impl OidcDouble {
    /// Generates the signing keys (off the async threads) and starts listening on `127.0.0.1:0`; these
    /// people can sign in. No client is registered yet: see [`OidcDouble::register_client`].
    pub async fn start(people: Vec<OidcPerson>) -> Result<OidcDouble, SimError> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let bind_err = |source| SimError::Bind {
            server: "oidc".to_owned(),
            addr,
            source,
        };
        let (signing, wrong) = tokio::join!(generate_key(), wrong_key());
        let keys = Keys::new(signing?, wrong?.clone());
        let listener = TcpListener::bind(addr).await.map_err(bind_err)?;
        let local = listener.local_addr().map_err(bind_err)?;

        let inner = Arc::new(Inner {
            issuer: format!("http://{local}"),
            keys,
            state: Mutex::new(Store {
                people: people.into_iter().map(Person::new).collect(),
                code_lifetime: CODE_LIFETIME,
                ..Store::default()
            }),
            requests: Mutex::new(Vec::new()),
        });
        let app = router(inner.clone());
        let (stop, mut stopped) = watch::channel(false);
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            // Small request/response writes must not wait for delayed ACKs.
            let _ = tcp.set_nodelay(true);
        });
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = stopped.wait_for(|&stop| stop).await;
        });
        let task = tokio::spawn(async move {
            if let Err(err) = serve.await {
                tracing::warn!("oidc double stopped: {err}");
            }
        });
        tracing::info!(addr = %local, "oidc double listening");
        Ok(OidcDouble {
            inner,
            addr: local,
            stop,
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT` (no trailing slash): the issuer URL, exactly as in `iss` and discovery.
    pub fn issuer(&self) -> String {
        self.inner.issuer.clone()
    }

    /// The same as [`OidcDouble::issuer`]: endpoints are `{base_url}/authorize`, `/token`, ….
    pub fn base_url(&self) -> String {
        self.inner.issuer.clone()
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The `kid` of the published signing key.
    pub fn key_id(&self) -> String {
        self.inner.keys.kid.clone()
    }

    /// Registers a confidential client (or replaces the one with that id): it authenticates at the token
    /// endpoint with `client_secret` (Basic or in the body), and may only use exactly these redirect URIs.
    pub fn register_client(&self, client_id: &str, client_secret: &str, redirect_uris: &[&str]) {
        let client = Client {
            id: client_id.to_owned(),
            secret: client_secret.to_owned(),
            redirect_uris: redirect_uris.iter().map(|&u| u.to_owned()).collect(),
        };
        let mut state = lock(&self.inner.state);
        state.clients.retain(|c| c.id != client_id);
        state.clients.push(client);
    }

    /// Adds someone who can sign in (replaces the person with that email, case-insensitive).
    pub fn add_person(&self, person: OidcPerson) {
        let mut state = lock(&self.inner.state);
        state
            .people
            .retain(|p| !p.person.email.eq_ignore_ascii_case(&person.email));
        state.people.push(Person::new(person));
    }

    /// The people who can sign in, in order.
    pub fn people(&self) -> Vec<OidcPerson> {
        lock(&self.inner.state)
            .people
            .iter()
            .map(|p| p.person.clone())
            .collect()
    }

    /// The `sub` claim of the person with that email (stable: derived from the email alone).
    pub fn subject(&self, email: &str) -> Option<String> {
        lock(&self.inner.state)
            .person(email)
            .map(|p| p.subject.clone())
    }

    /// What the `email_verified` claim (ID token and userinfo) says for that person from now on (true
    /// at start); false if nobody has that email.
    pub fn set_email_verified(&self, email: &str, verified: bool) -> bool {
        let mut state = lock(&self.inner.state);
        match state
            .people
            .iter_mut()
            .find(|p| p.person.email.eq_ignore_ascii_case(email))
        {
            Some(person) => {
                person.email_verified = verified;
                true
            }
            None => false,
        }
    }

    /// From now on, ID tokens are signed by another RSA key that is not in the JWKS, with the published
    /// key's `kid` in the header: a client that checks signatures must refuse them.
    pub fn sign_with_wrong_key(&self, wrong: bool) {
        lock(&self.inner.state).wrong_key = wrong;
    }

    /// From now on, ID tokens carry this `iss` (`None`: the real issuer again). Discovery is unchanged.
    pub fn set_issuer_override(&self, issuer: Option<&str>) {
        lock(&self.inner.state).issuer_override = issuer.map(str::to_owned);
    }

    /// From now on, ID tokens were issued 20 minutes ago and expired 10 minutes ago (beyond any usual
    /// clock skew allowance).
    pub fn issue_expired_id_tokens(&self, expired: bool) {
        lock(&self.inner.state).expired_id_tokens = expired;
    }

    /// How long codes issued from now on can be exchanged (`Duration::ZERO`: expired at once).
    pub fn set_code_lifetime(&self, lifetime: Duration) {
        lock(&self.inner.state).code_lifetime = lifetime;
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<OidcRequest> {
        lock(&self.inner.requests).clone()
    }

    /// How many requests with this method had a path starting with `path_prefix` (e.g. `("POST", "/token")`).
    pub fn request_count(&self, method: &str, path_prefix: &str) -> usize {
        lock(&self.inner.requests)
            .iter()
            .filter(|r| r.method.eq_ignore_ascii_case(method) && r.path.starts_with(path_prefix))
            .count()
    }

    /// Stops the server: no new connections, open ones closed once their request is answered.
    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}

impl Drop for OidcDouble {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

/// A fresh 2048-bit RSA key, made on a blocking thread.
async fn generate_key() -> Result<SigningKey<Sha256>, SimError> {
    let made = tokio::task::spawn_blocking(|| RsaPrivateKey::new(&mut OsRng, KEY_BITS)).await;
    match made {
        Ok(Ok(key)) => Ok(SigningKey::new(key)),
        Ok(Err(err)) => Err(SimError::Key(err.to_string())),
        Err(err) => Err(SimError::Key(format!("key generation stopped: {err}"))),
    }
}

/// The key behind [`OidcDouble::sign_with_wrong_key`]. No double publishes it, so one per process does:
/// key generation is the slow part of a start.
async fn wrong_key() -> Result<&'static SigningKey<Sha256>, SimError> {
    static WRONG_KEY: tokio::sync::OnceCell<SigningKey<Sha256>> =
        tokio::sync::OnceCell::const_new();
    WRONG_KEY.get_or_try_init(generate_key).await
}

// ---------------------------------------------------------------------------------------------------
// State

struct Inner {
    issuer: String,
    keys: Keys,
    state: Mutex<Store>,
    requests: Mutex<Vec<OidcRequest>>,
}

struct Keys {
    signing: SigningKey<Sha256>,
    /// Not published: for [`OidcDouble::sign_with_wrong_key`].
    wrong: SigningKey<Sha256>,
    kid: String,
    /// The JWK set `GET /jwks` answers.
    jwks: Value,
}

impl Keys {
    fn new(signing: SigningKey<Sha256>, wrong: SigningKey<Sha256>) -> Keys {
        let public = signing.as_ref().to_public_key();
        let n = public.n().to_bytes_be();
        let e = public.e().to_bytes_be();
        // Derived from the modulus, so it names this key and no other.
        let kid = format!("sim-{}", &hex::encode(Sha256::digest(&n))[..16]);
        let jwks = json!({
            "keys": [{
                "kty": "RSA",
                "use": "sig",
                "alg": "RS256",
                "kid": kid,
                "n": URL_SAFE_NO_PAD.encode(&n),
                "e": URL_SAFE_NO_PAD.encode(&e),
            }]
        });
        Keys {
            signing,
            wrong,
            kid,
            jwks,
        }
    }
}

#[derive(Default)]
struct Store {
    people: Vec<Person>,
    clients: Vec<Client>,
    codes: HashMap<String, Grant>,
    tokens: HashMap<String, AccessGrant>,
    code_lifetime: Duration,
    wrong_key: bool,
    issuer_override: Option<String>,
    expired_id_tokens: bool,
}

impl Store {
    fn person(&self, email: &str) -> Option<&Person> {
        self.people
            .iter()
            .find(|p| p.person.email.eq_ignore_ascii_case(email))
    }

    fn client(&self, id: &str) -> Option<&Client> {
        self.clients.iter().find(|c| c.id == id)
    }
}

struct Person {
    person: OidcPerson,
    subject: String,
    email_verified: bool,
}

impl Person {
    fn new(person: OidcPerson) -> Person {
        Person {
            subject: subject_of(&person.email),
            person,
            email_verified: true,
        }
    }
}

/// A stable `sub` for an email: the same in every run, opaque like real providers'.
fn subject_of(email: &str) -> String {
    let digest = Sha256::digest(format!("whereis-sim-oidc:{}", email.to_lowercase()));
    hex::encode(&digest[..16])
}

struct Client {
    id: String,
    secret: String,
    redirect_uris: Vec<String>,
}

/// What an authorization code stands for.
struct Grant {
    client_id: String,
    redirect_uri: String,
    scope: String,
    nonce: Option<String>,
    code_challenge: String,
    email: String,
    auth_time: u64,
    expires: Instant,
    /// Set by the first token request; the access tokens it gave, to revoke on a second use.
    spent: Option<Vec<String>>,
}

struct AccessGrant {
    email: String,
    expires: Instant,
}

// ---------------------------------------------------------------------------------------------------
// HTTP

type Shared = State<Arc<Inner>>;

fn router(inner: Arc<Inner>) -> Router {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/authorize", get(authorize_get).post(authorize_post))
        .route("/token", axum::routing::post(token))
        .route("/jwks", get(jwks))
        .route("/userinfo", get(userinfo))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(inner.clone(), record))
        .with_state(inner)
}

async fn record(State(inner): Shared, req: Request, next: Next) -> Response {
    tracing::debug!(method = %req.method(), path = %req.uri().path(), "oidc double request");
    lock(&inner.requests).push(OidcRequest {
        method: req.method().as_str().to_owned(),
        path: req.uri().path().to_owned(),
        query: req.uri().query().map(str::to_owned),
    });
    next.run(req).await
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        json_body(json!({"error": "not_found"})),
    )
        .into_response()
}

fn json_body(value: Value) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        value.to_string(),
    )
}

async fn discovery(State(inner): Shared) -> Response {
    let issuer = &inner.issuer;
    let document = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "email", "profile"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "claims_supported": [
            "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash",
            "email", "email_verified", "name", "preferred_username",
        ],
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["none", "login"],
    });
    (StatusCode::OK, json_body(document)).into_response()
}

async fn jwks(State(inner): Shared) -> Response {
    (StatusCode::OK, json_body(inner.keys.jwks.clone())).into_response()
}

// ---------------------------------------------------------------------------------------------------
// /authorize

/// Request parameters, each at most once (RFC 6749 §3.1).
struct Params(HashMap<String, String>);

impl Params {
    fn parse(pairs: Vec<(String, String)>) -> Result<Params, String> {
        let mut map = HashMap::new();
        for (key, value) in pairs {
            if map.contains_key(&key) {
                return Err(format!("the parameter {key} is given more than once"));
            }
            map.insert(key, value);
        }
        Ok(Params(map))
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// A checked authorization request.
struct AuthRequest {
    client_id: String,
    redirect_uri: String,
    scope: String,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: String,
}

/// Why an authorization request is refused.
enum Refusal {
    /// The client or redirect URI cannot be trusted: an error page, never a redirect.
    Page(StatusCode, String),
    /// The error goes back to the client's registered redirect URI.
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        error: &'static str,
        description: String,
    },
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Page(status, message) => error_page(status, &message),
            Refusal::Redirect {
                redirect_uri,
                state,
                error,
                description,
            } => {
                let mut params = vec![("error", error), ("error_description", &description)];
                if let Some(state) = &state {
                    params.push(("state", state));
                }
                redirect(&redirect_uri, &params)
            }
        }
    }
}

/// Checks the client and redirect URI first (so that no error is ever sent to an unregistered URI), then
/// the rest of the request.
fn check_request(store: &Store, params: &Params) -> Result<AuthRequest, Refusal> {
    let page = |message: &str| Refusal::Page(StatusCode::BAD_REQUEST, message.to_owned());
    let Some(client_id) = params.get("client_id") else {
        return Err(page("The request has no client_id."));
    };
    let Some(client) = store.client(client_id) else {
        return Err(page("The client_id is not registered at this provider."));
    };
    let Some(redirect_uri) = params.get("redirect_uri") else {
        return Err(page("The request has no redirect_uri."));
    };
    if !client.redirect_uris.iter().any(|u| u == redirect_uri) {
        return Err(page(
            "The redirect_uri is not one registered for this client.",
        ));
    }
    let state = params.get("state").map(str::to_owned);
    let refuse = |error: &'static str, description: &str| Refusal::Redirect {
        redirect_uri: redirect_uri.to_owned(),
        state: state.clone(),
        error,
        description: description.to_owned(),
    };
    match params.get("response_type") {
        Some("code") => {}
        Some(_) => {
            return Err(refuse(
                "unsupported_response_type",
                "Only response_type=code is supported.",
            ))
        }
        None => return Err(refuse("invalid_request", "response_type is required.")),
    }
    let scope = params.get("scope").unwrap_or_default();
    if !scope.split(' ').any(|s| s == "openid") {
        return Err(refuse("invalid_scope", "The scope must include openid."));
    }
    let Some(code_challenge) = params.get("code_challenge") else {
        return Err(refuse(
            "invalid_request",
            "PKCE is required: code_challenge is missing.",
        ));
    };
    if params.get("code_challenge_method") != Some("S256") {
        return Err(refuse(
            "invalid_request",
            "Only code_challenge_method=S256 is supported.",
        ));
    }
    // base64url of a SHA-256 digest, unpadded
    if code_challenge.len() != 43 || !code_challenge.bytes().all(is_base64url) {
        return Err(refuse(
            "invalid_request",
            "code_challenge is not a base64url SHA-256 digest.",
        ));
    }
    Ok(AuthRequest {
        client_id: client_id.to_owned(),
        redirect_uri: redirect_uri.to_owned(),
        scope: scope.to_owned(),
        state,
        nonce: params.get("nonce").map(str::to_owned),
        code_challenge: code_challenge.to_owned(),
    })
}

fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

async fn authorize_get(
    State(inner): Shared,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    let params = match query
        .map_err(|e| e.body_text())
        .and_then(|q| Params::parse(q.0))
    {
        Ok(params) => params,
        Err(err) => return error_page(StatusCode::BAD_REQUEST, &err),
    };
    let mut store = lock(&inner.state);
    let request = match check_request(&store, &params) {
        Ok(request) => request,
        Err(refusal) => return refusal.into_response(),
    };
    if params.get("prompt") == Some("none") {
        let known = params
            .get("login_hint")
            .and_then(|hint| store.person(hint))
            .map(|p| p.person.email.clone());
        return match known {
            Some(email) => issue_code(&mut store, request, email),
            None => Refusal::Redirect {
                redirect_uri: request.redirect_uri,
                state: request.state,
                error: "login_required",
                description: "Nobody is signed in and prompt=none was asked.".to_owned(),
            }
            .into_response(),
        };
    }
    login_page(&store, &request, params.get("login_hint"))
}

async fn authorize_post(
    State(inner): Shared,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let params = match form
        .map_err(|e| e.body_text())
        .and_then(|f| Params::parse(f.0))
    {
        Ok(params) => params,
        Err(err) => return error_page(StatusCode::BAD_REQUEST, &err),
    };
    let mut store = lock(&inner.state);
    let request = match check_request(&store, &params) {
        Ok(request) => request,
        Err(refusal) => return refusal.into_response(),
    };
    if params.get("cancel").is_some() {
        return Refusal::Redirect {
            redirect_uri: request.redirect_uri,
            state: request.state,
            error: "access_denied",
            description: "The person cancelled the sign-in.".to_owned(),
        }
        .into_response();
    }
    let known = params
        .get("email")
        .and_then(|email| store.person(email))
        .map(|p| p.person.email.clone());
    match known {
        Some(email) => issue_code(&mut store, request, email),
        None => error_page(
            StatusCode::BAD_REQUEST,
            "Nobody with that email can sign in here.",
        ),
    }
}

/// A fresh one-time code for that person; 303 to the redirect URI with `code` and `state`.
fn issue_code(store: &mut Store, request: AuthRequest, email: String) -> Response {
    let now = Instant::now();
    store.codes.retain(|_, g| g.expires > now);
    let code = random_token();
    tracing::debug!(client = %request.client_id, person = %email, "oidc double: code issued");
    store.codes.insert(
        code.clone(),
        Grant {
            client_id: request.client_id,
            redirect_uri: request.redirect_uri.clone(),
            scope: request.scope,
            nonce: request.nonce,
            code_challenge: request.code_challenge,
            email,
            auth_time: unix_now(),
            expires: now + store.code_lifetime,
            spent: None,
        },
    );
    let mut params = vec![("code", code.as_str())];
    if let Some(state) = &request.state {
        params.push(("state", state));
    }
    redirect(&request.redirect_uri, &params)
}

/// 303 to `uri` with these query parameters added.
fn redirect(uri: &str, params: &[(&str, &str)]) -> Response {
    let mut location = uri.to_owned();
    for (i, (key, value)) in params.iter().enumerate() {
        let separator = if i == 0 && !uri.contains('?') {
            '?'
        } else {
            '&'
        };
        location.push(separator);
        location.push_str(key);
        location.push('=');
        location.extend(utf8_percent_encode(value, QUERY_VALUE));
    }
    match HeaderValue::from_str(&location) {
        Ok(location) => (
            StatusCode::SEE_OTHER,
            [
                (header::LOCATION, location),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
        )
            .into_response(),
        // only if a registered redirect URI holds characters a header cannot carry
        Err(_) => error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The registered redirect_uri cannot be sent in a Location header.",
        ),
    }
}

fn html_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_FRAME_OPTIONS, "DENY"),
        ],
        body,
    )
        .into_response()
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n\
         <style>body{{font-family:sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem}}\
         ul{{list-style:none;padding:0}}li{{margin:.5rem 0}}\
         button{{font-size:1rem;padding:.6rem 1rem;width:100%;text-align:left;cursor:pointer}}\
         .email{{display:block;font-size:.85rem;color:#444}}</style>\n\
         </head>\n<body>\n<main>\n{body}</main>\n</body>\n</html>\n",
        title = escape_html(title),
    )
}

fn error_page(status: StatusCode, message: &str) -> Response {
    let body = format!(
        "<h1>Sign-in error</h1>\n<p role=\"alert\" id=\"error\">{}</p>\n",
        escape_html(message)
    );
    html_response(status, page("Sign-in error", &body))
}

/// The login form: the checked request in hidden fields, one submit button per person.
fn login_page(store: &Store, request: &AuthRequest, hint: Option<&str>) -> Response {
    let mut hidden = vec![
        ("response_type", "code"),
        ("client_id", request.client_id.as_str()),
        ("redirect_uri", request.redirect_uri.as_str()),
        ("scope", request.scope.as_str()),
        ("code_challenge", request.code_challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    if let Some(state) = &request.state {
        hidden.push(("state", state));
    }
    if let Some(nonce) = &request.nonce {
        hidden.push(("nonce", nonce));
    }
    let mut body = String::from(
        "<h1>Sign in</h1>\n<form id=\"login\" method=\"post\" action=\"/authorize\">\n",
    );
    for (name, value) in hidden {
        body.push_str(&format!(
            "<input type=\"hidden\" name=\"{name}\" value=\"{}\">\n",
            escape_html(value)
        ));
    }
    body.push_str("<fieldset>\n<legend>Choose who you are</legend>\n<ul>\n");
    for p in &store.people {
        let email = escape_html(&p.person.email);
        let focus = if hint.is_some_and(|h| h.eq_ignore_ascii_case(&p.person.email)) {
            " autofocus"
        } else {
            ""
        };
        body.push_str(&format!(
            "<li><button type=\"submit\" name=\"email\" value=\"{email}\"{focus}>{} \
             <span class=\"email\">{email}</span></button></li>\n",
            escape_html(&p.person.name),
        ));
    }
    if store.people.is_empty() {
        body.push_str("<li>Nobody can sign in here.</li>\n");
    }
    body.push_str(
        "</ul>\n</fieldset>\n<p><button type=\"submit\" name=\"cancel\" value=\"1\">Cancel</button></p>\n</form>\n",
    );
    html_response(StatusCode::OK, page("Sign in", &body))
}

// ---------------------------------------------------------------------------------------------------
// /token

/// An OAuth error answer (RFC 6749 §5.2).
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut response = (
        status,
        json_body(json!({"error": error, "error_description": description})),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"whereis-sim-oidc\""),
        );
    }
    response
        .headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

fn invalid_grant(description: &str) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description)
}

fn invalid_request(description: &str) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_request", description)
}

fn invalid_client() -> Response {
    oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "Client authentication failed.",
    )
}

/// `client_id:client_secret` from `Authorization: Basic`, each form-urlencoded (RFC 6749 §2.3.1).
/// `Err` when the header is there but is not valid Basic credentials.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, ()> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| ())?;
    let (scheme, encoded) = value.trim().split_once(' ').ok_or(())?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(());
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| ())?;
    let decoded = String::from_utf8(decoded).map_err(|_| ())?;
    let (id, secret) = decoded.split_once(':').ok_or(())?;
    Ok(Some((form_decode(id)?, form_decode(secret)?)))
}

/// `application/x-www-form-urlencoded` decoding of one value.
fn form_decode(s: &str) -> Result<String, ()> {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| ())
}

async fn token(
    State(inner): Shared,
    headers: HeaderMap,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let params = match form
        .map_err(|e| e.body_text())
        .and_then(|f| Params::parse(f.0))
    {
        Ok(params) => params,
        Err(err) => return invalid_request(&err),
    };
    let Ok(basic) = basic_credentials(&headers) else {
        return invalid_client();
    };
    let in_body = params.get("client_secret");
    let (client_id, secret) = match (basic, in_body) {
        (Some(_), Some(_)) => {
            return invalid_request("Use one client authentication method, not two.")
        }
        (Some((id, secret)), None) => {
            if params.get("client_id").is_some_and(|body_id| body_id != id) {
                return invalid_request("client_id differs from the authenticated client.");
            }
            (id, secret)
        }
        (None, Some(secret)) => match params.get("client_id") {
            Some(id) => (id.to_owned(), secret.to_owned()),
            None => return invalid_client(),
        },
        (None, None) => return invalid_client(),
    };

    let mut store = lock(&inner.state);
    let authenticated = store.client(&client_id).is_some_and(|c| c.secret == secret);
    if !authenticated {
        tracing::debug!(client = %client_id, "oidc double: client authentication failed");
        return invalid_client();
    }
    match params.get("grant_type") {
        Some("authorization_code") => {}
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "Only authorization_code is supported.",
            )
        }
        None => return invalid_request("grant_type is required."),
    }
    let Some(code) = params.get("code") else {
        return invalid_request("code is required.");
    };
    let Some(grant) = store.codes.get_mut(code) else {
        return invalid_grant("The code is unknown or expired.");
    };
    if grant.client_id != client_id {
        // another client's code: not this client's to spend
        return invalid_grant("The code was issued to another client.");
    }
    if let Some(given) = grant.spent.take() {
        grant.spent = Some(Vec::new());
        for token in given {
            store.tokens.remove(&token);
        }
        return invalid_grant("The code was already used; its tokens are revoked.");
    }
    grant.spent = Some(Vec::new());
    if grant.expires <= Instant::now() {
        return invalid_grant("The code has expired.");
    }
    if params.get("redirect_uri") != Some(grant.redirect_uri.as_str()) {
        return invalid_grant("redirect_uri differs from the authorization request's.");
    }
    let Some(verifier) = params.get("code_verifier") else {
        return invalid_grant("code_verifier is required (PKCE).");
    };
    if !pkce_verifier_well_formed(verifier) || pkce_s256(verifier) != grant.code_challenge {
        return invalid_grant("The code_verifier does not match the code_challenge.");
    }

    let access_token = random_token();
    grant.spent = Some(vec![access_token.clone()]);
    let scope = grant.scope.clone();
    let nonce = grant.nonce.clone();
    let email = grant.email.clone();
    let auth_time = grant.auth_time;
    let Some(person) = store.person(&email) else {
        return invalid_grant("The person signed in is no longer known.");
    };
    let id_token = inner.id_token(
        &store,
        person,
        &client_id,
        nonce.as_deref(),
        auth_time,
        &access_token,
    );
    store.tokens.insert(
        access_token.clone(),
        AccessGrant {
            email,
            expires: Instant::now() + ACCESS_TOKEN_LIFETIME,
        },
    );
    tracing::debug!(client = %client_id, "oidc double: tokens issued");
    let mut response = (
        StatusCode::OK,
        json_body(json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_LIFETIME.as_secs(),
            "id_token": id_token,
            "scope": scope,
        })),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// RFC 7636 §4.1: 43 to 128 characters of `[A-Za-z0-9-._~]`.
fn pkce_verifier_well_formed(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// `BASE64URL(SHA256(verifier))`, the S256 code challenge.
fn pkce_s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

impl Inner {
    /// A signed ID token for that person, with the knobs applied.
    fn id_token(
        &self,
        store: &Store,
        person: &Person,
        client_id: &str,
        nonce: Option<&str>,
        auth_time: u64,
        access_token: &str,
    ) -> String {
        let now = unix_now();
        let (iat, exp) = if store.expired_id_tokens {
            (now.saturating_sub(1200), now.saturating_sub(600))
        } else {
            (now, now + ID_TOKEN_LIFETIME.as_secs())
        };
        let mut claims = json!({
            "iss": store.issuer_override.as_deref().unwrap_or(&self.issuer),
            "sub": person.subject,
            "aud": client_id,
            "exp": exp,
            "iat": iat,
            "auth_time": auth_time.min(iat),
            "at_hash": at_hash(access_token),
            "email": person.person.email,
            "email_verified": person.email_verified,
            "name": person.person.name,
            "preferred_username": person.person.username,
        });
        if let (Some(nonce), Some(map)) = (nonce, claims.as_object_mut()) {
            map.insert("nonce".into(), json!(nonce));
        }
        let key = if store.wrong_key {
            &self.keys.wrong
        } else {
            &self.keys.signing
        };
        sign_jwt(key, &self.keys.kid, &claims)
    }
}

/// `header.payload.signature`, RS256.
fn sign_jwt(key: &SigningKey<Sha256>, kid: &str, claims: &Value) -> String {
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": kid});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = key.sign(input.as_bytes()).to_bytes();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// OpenID Connect Core §3.1.3.6: base64url of the left half of SHA-256 of the access token.
fn at_hash(access_token: &str) -> String {
    let digest = Sha256::digest(access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

// ---------------------------------------------------------------------------------------------------
// /userinfo

async fn userinfo(State(inner): Shared, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned());
    let store = lock(&inner.state);
    let person = token
        .and_then(|t| store.tokens.get(&t))
        .filter(|grant| grant.expires > Instant::now())
        .and_then(|grant| store.person(&grant.email));
    match person {
        Some(p) => (
            StatusCode::OK,
            json_body(json!({
                "sub": p.subject,
                "email": p.person.email,
                "email_verified": p.email_verified,
                "name": p.person.name,
                "preferred_username": p.person.username,
            })),
        )
            .into_response(),
        None => {
            let mut response = (
                StatusCode::UNAUTHORIZED,
                json_body(json!({
                    "error": "invalid_token",
                    "error_description": "The access token is missing, unknown, expired or revoked.",
                })),
            )
                .into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
            response
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Helpers

/// 256 random bits, base64url: codes and access tokens.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs1v15::{Signature, VerifyingKey};
    use rsa::signature::Verifier;

    #[test]
    fn s256_matches_the_rfc_7636_example() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert!(pkce_verifier_well_formed(verifier));
        assert_eq!(
            pkce_s256(verifier),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn verifiers_outside_rfc_7636_are_refused() {
        assert!(!pkce_verifier_well_formed("short"));
        assert!(!pkce_verifier_well_formed(&"a".repeat(129)));
        assert!(!pkce_verifier_well_formed(&format!("{}+", "a".repeat(42))));
        assert!(pkce_verifier_well_formed(&"a~._-".repeat(10)));
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let mut headers = HeaderMap::new();
        let encoded = STANDARD.encode("my%3Aclient:s%2Bcret+x");
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {encoded}")).expect("header"),
        );
        assert_eq!(
            basic_credentials(&headers),
            Ok(Some(("my:client".to_owned(), "s+cret x".to_owned())))
        );
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic !!"));
        assert_eq!(basic_credentials(&headers), Err(()));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        assert_eq!(basic_credentials(&headers), Err(()));
        assert_eq!(basic_credentials(&HeaderMap::new()), Ok(None));
    }

    #[test]
    fn redirects_encode_values_and_keep_an_existing_query() {
        let response = redirect("http://127.0.0.1:1/cb?x=1", &[("state", "a b&c")]);
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            response.headers()[header::LOCATION],
            "http://127.0.0.1:1/cb?x=1&state=a%20b%26c"
        );
        let response = redirect("http://127.0.0.1:1/cb", &[("code", "k-_"), ("state", "s")]);
        assert_eq!(
            response.headers()[header::LOCATION],
            "http://127.0.0.1:1/cb?code=k-_&state=s"
        );
    }

    #[test]
    fn subjects_are_stable_and_ignore_case() {
        assert_eq!(
            subject_of("Jane.Doe@example.com"),
            subject_of("jane.doe@example.com")
        );
        assert_ne!(
            subject_of("jane.doe@example.com"),
            subject_of("bob.smith@example.com")
        );
        assert_eq!(subject_of("jane.doe@example.com").len(), 32);
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape_html("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn a_jwt_verifies_with_its_key_and_not_with_another() {
        let mut rng = OsRng;
        // small keys keep this unit test quick; the double itself uses 2048 bits
        let key = RsaPrivateKey::new(&mut rng, 1024).expect("key");
        let other = RsaPrivateKey::new(&mut rng, 1024).expect("key");
        let token = sign_jwt(&SigningKey::new(key.clone()), "kid-1", &json!({"sub": "x"}));
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).expect("b64")).expect("json");
        assert_eq!(
            header,
            json!({"alg": "RS256", "typ": "JWT", "kid": "kid-1"})
        );
        let signature =
            Signature::try_from(URL_SAFE_NO_PAD.decode(parts[2]).expect("b64").as_slice())
                .expect("signature");
        let input = format!("{}.{}", parts[0], parts[1]);
        VerifyingKey::<Sha256>::new(key.to_public_key())
            .verify(input.as_bytes(), &signature)
            .expect("verifies with its own key");
        assert!(VerifyingKey::<Sha256>::new(other.to_public_key())
            .verify(input.as_bytes(), &signature)
            .is_err());
    }

    #[test]
    fn at_hash_is_the_left_half_of_sha256() {
        // 16 bytes → 22 base64url characters
        assert_eq!(at_hash("token").len(), 22);
        assert_eq!(
            URL_SAFE_NO_PAD.decode(at_hash("token")).expect("b64"),
            Sha256::digest(b"token")[..16].to_vec()
        );
    }
}
