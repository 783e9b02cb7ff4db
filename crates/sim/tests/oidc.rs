//! The OpenID Connect provider double over real HTTP on 127.0.0.1, driven by the `openidconnect` crate as a
//! web server would: discovery, the login form, the code exchange with PKCE, ID token verification against
//! the discovered JWKS, userinfo; and every refusal a client must handle.

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreErrorResponseType, CoreProviderMetadata,
    CoreTokenResponse,
};
use openidconnect::url::Url;
use openidconnect::{
    AccessToken, AccessTokenHash, AuthType, AuthorizationCode, ClaimsVerificationError, ClientId,
    ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, LoginHint,
    Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RequestTokenError, Scope, TokenResponse,
};
use reqwest::StatusCode;
use serde_json::Value;
use whereis_sim::{OidcDouble, OidcPerson};

const CLIENT_ID: &str = "whereis";
const CLIENT_SECRET: &str = "s3cret value+with/odd:chars";
/// Never connected to: the tests read the redirect's `Location` instead of following it.
const REDIRECT: &str = "http://127.0.0.1:9/auth/callback";
const JANE: &str = "jane.doe@example.com";
const BOB: &str = "bob.smith@example.com";

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

async fn provider() -> OidcDouble {
    let idp = OidcDouble::start(vec![
        OidcPerson::new(JANE, "Jane Doe", "jdoe"),
        OidcPerson::new(BOB, "Bob <Smith>", "bsmith"),
    ])
    .await
    .expect("provider starts");
    idp.register_client(CLIENT_ID, CLIENT_SECRET, &[REDIRECT]);
    idp
}

/// No proxy, no redirects followed (as `openidconnect` advises, and so the tests see each redirect).
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("reqwest client")
}

async fn client(idp: &OidcDouble, secret: &str) -> Client {
    let issuer = IssuerUrl::new(idp.issuer()).expect("issuer URL");
    let metadata = CoreProviderMetadata::discover_async(issuer, &http())
        .await
        .expect("discovery accepted by openidconnect");
    CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(CLIENT_ID.to_owned()),
        Some(ClientSecret::new(secret.to_owned())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.to_owned()).expect("redirect URL"))
}

/// One sign-in's secrets, as the server keeps them between the redirect and the callback.
struct Attempt {
    url: Url,
    csrf: CsrfToken,
    nonce: Nonce,
    verifier: PkceCodeVerifier,
}

fn begin(client: &Client, login_hint: Option<&str>) -> Attempt {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".to_owned()))
        .add_scope(Scope::new("profile".to_owned()))
        .set_pkce_challenge(challenge);
    if let Some(hint) = login_hint {
        request = request
            .set_login_hint(LoginHint::new(hint.to_owned()))
            .add_extra_param("prompt", "none");
    }
    let (url, csrf, nonce) = request.url();
    Attempt {
        url,
        csrf,
        nonce,
        verifier,
    }
}

/// The query parameters of a redirect's `Location`, checked to lead to the registered callback.
fn callback_params(response: &reqwest::Response) -> Vec<(String, String)> {
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()[reqwest::header::LOCATION]
        .to_str()
        .expect("ASCII location");
    let url = Url::parse(location).expect("absolute location");
    assert_eq!(
        &url[..openidconnect::url::Position::AfterPath],
        REDIRECT,
        "redirected to the registered callback"
    );
    url.query_pairs().into_owned().collect()
}

fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The code the callback got, after checking `state` (as the server must).
fn code_from(response: &reqwest::Response, attempt: &Attempt) -> AuthorizationCode {
    let params = callback_params(response);
    assert_eq!(
        param(&params, "state"),
        Some(attempt.csrf.secret().as_str())
    );
    AuthorizationCode::new(param(&params, "code").expect("a code").to_owned())
}

/// Signs that person in without the form (`prompt=none&login_hint=`); the code.
async fn sign_in_directly(attempt: &Attempt) -> AuthorizationCode {
    let response = http()
        .get(attempt.url.clone())
        .send()
        .await
        .expect("authorize answered");
    code_from(&response, attempt)
}

async fn exchange(
    client: &Client,
    code: AuthorizationCode,
    verifier: &str,
) -> Result<CoreTokenResponse, String> {
    client
        .exchange_code(code)
        .expect("token endpoint discovered")
        .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_owned()))
        .request_async(&http())
        .await
        .map_err(|err| match err {
            RequestTokenError::ServerResponse(response) => match response.error() {
                CoreErrorResponseType::InvalidGrant => "invalid_grant".to_owned(),
                CoreErrorResponseType::InvalidClient => "invalid_client".to_owned(),
                other => format!("{other:?}"),
            },
            other => format!("not an OAuth error answer: {other:?}"),
        })
}

/// The `value` of each hidden input of the login form, HTML-unescaped.
fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    let unescape = |s: &str| {
        s.replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    };
    html.split("<input type=\"hidden\" ")
        .skip(1)
        .map(|rest| {
            let name = rest
                .split_once("name=\"")
                .and_then(|(_, r)| r.split_once('"'))
                .expect("name")
                .0;
            let value = rest
                .split_once("value=\"")
                .and_then(|(_, r)| r.split_once('"'))
                .expect("value")
                .0;
            (name.to_owned(), unescape(value))
        })
        .collect()
}

#[tokio::test]
async fn a_person_signs_in_through_the_form_and_the_client_verifies_the_id_token() {
    let idp = provider().await;
    let client = client(&idp, CLIENT_SECRET).await;
    let attempt = begin(&client, None);
    assert!(attempt
        .url
        .as_str()
        .starts_with(&format!("{}/authorize?", idp.issuer())));

    let page = http()
        .get(attempt.url.clone())
        .send()
        .await
        .expect("login page");
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("text/html"));
    let html = page.text().await.expect("html");
    assert!(html.contains("<form id=\"login\" method=\"post\" action=\"/authorize\">"));
    assert!(html.contains(&format!("name=\"email\" value=\"{JANE}\">Jane Doe")));
    assert!(
        html.contains("Bob &lt;Smith&gt;"),
        "names are escaped: {html}"
    );

    // what a browser sends when Jane's button is pressed
    let mut form = hidden_inputs(&html);
    assert_eq!(param(&form, "state"), Some(attempt.csrf.secret().as_str()));
    form.push(("email".to_owned(), JANE.to_owned()));
    let answer = http()
        .post(format!("{}/authorize", idp.base_url()))
        .form(&form)
        .send()
        .await
        .expect("form posted");
    let code = code_from(&answer, &attempt);

    let tokens = exchange(&client, code, attempt.verifier.secret())
        .await
        .expect("tokens");
    let id_token = tokens.id_token().expect("an ID token");
    let verifier = client.id_token_verifier();
    let claims = id_token
        .claims(&verifier, &attempt.nonce)
        .expect("ID token verified with the discovered JWKS");
    assert_eq!(claims.email().map(|e| e.as_str()), Some(JANE));
    assert_eq!(claims.email_verified(), Some(true));
    assert_eq!(
        claims.name().and_then(|n| n.get(None)).map(|n| n.as_str()),
        Some("Jane Doe")
    );
    assert_eq!(
        claims.preferred_username().map(|u| u.as_str()),
        Some("jdoe")
    );
    assert_eq!(claims.subject().as_str(), idp.subject(JANE).expect("sub"));
    assert_eq!(claims.issuer().as_str(), idp.issuer());
    // the header names the published key, and at_hash binds the access token
    let alg = id_token.signing_alg().expect("signed");
    let key = id_token.signing_key(&verifier).expect("a key of the JWKS");
    let at_hash = AccessTokenHash::from_token(tokens.access_token(), alg, key).expect("hash");
    assert_eq!(claims.access_token_hash(), Some(&at_hash));
    assert_eq!(
        tokens.expires_in().map(|d| d.as_secs()),
        Some(3600),
        "access token lifetime"
    );

    let info: openidconnect::core::CoreUserInfoClaims = client
        .user_info(
            tokens.access_token().clone(),
            Some(claims.subject().clone()),
        )
        .expect("userinfo endpoint discovered")
        .request_async(&http())
        .await
        .expect("userinfo");
    assert_eq!(info.email().map(|e| e.as_str()), Some(JANE));
    assert_eq!(info.email_verified(), Some(true));

    assert_eq!(
        idp.request_count("GET", "/.well-known/openid-configuration"),
        1
    );
    assert_eq!(idp.request_count("GET", "/jwks"), 1);
    assert_eq!(idp.request_count("POST", "/token"), 1);
    assert_eq!(idp.request_count("GET", "/userinfo"), 1);
    idp.shutdown().await;
}

#[tokio::test]
async fn a_client_may_send_its_secret_in_the_body_and_login_hint_skips_the_form() {
    let idp = provider().await;
    let client = client(&idp, CLIENT_SECRET)
        .await
        .set_auth_type(AuthType::RequestBody);
    let attempt = begin(&client, Some(BOB));
    let code = sign_in_directly(&attempt).await;
    let tokens = exchange(&client, code, attempt.verifier.secret())
        .await
        .expect("tokens with client_secret_post");
    let claims = tokens
        .id_token()
        .expect("an ID token")
        .claims(&client.id_token_verifier(), &attempt.nonce)
        .expect("verified");
    assert_eq!(claims.email().map(|e| e.as_str()), Some(BOB));
    assert_eq!(idp.request_count("GET", "/authorize"), 1);
}

#[tokio::test]
async fn a_wrong_pkce_verifier_is_refused_and_spends_the_code() {
    let idp = provider().await;
    let client = client(&idp, CLIENT_SECRET).await;
    let attempt = begin(&client, Some(JANE));
    let code = sign_in_directly(&attempt).await;
    let other = PkceCodeVerifier::new("x".repeat(64));
    assert_eq!(
        exchange(&client, code.clone(), other.secret()).await.err(),
        Some("invalid_grant".to_owned())
    );
    assert_eq!(
        exchange(&client, code, attempt.verifier.secret())
            .await
            .err(),
        Some("invalid_grant".to_owned()),
        "a code is good for one try"
    );
}

#[tokio::test]
async fn a_reused_code_is_refused_and_revokes_its_tokens() {
    let idp = provider().await;
    let client = client(&idp, CLIENT_SECRET).await;
    let attempt = begin(&client, Some(JANE));
    let code = sign_in_directly(&attempt).await;
    let tokens = exchange(&client, code.clone(), attempt.verifier.secret())
        .await
        .expect("first use");
    assert_eq!(
        exchange(&client, code, attempt.verifier.secret())
            .await
            .err(),
        Some("invalid_grant".to_owned())
    );
    let userinfo = userinfo(&idp, tokens.access_token()).await;
    assert_eq!(userinfo.status(), StatusCode::UNAUTHORIZED, "revoked");
    assert_eq!(
        userinfo.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
}

async fn userinfo(idp: &OidcDouble, token: &AccessToken) -> reqwest::Response {
    http()
        .get(format!("{}/userinfo", idp.base_url()))
        .bearer_auth(token.secret())
        .send()
        .await
        .expect("userinfo answered")
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let idp = provider().await;
    idp.set_code_lifetime(std::time::Duration::ZERO);
    let client = client(&idp, CLIENT_SECRET).await;
    let attempt = begin(&client, Some(JANE));
    let code = sign_in_directly(&attempt).await;
    assert_eq!(
        exchange(&client, code, attempt.verifier.secret())
            .await
            .err(),
        Some("invalid_grant".to_owned())
    );
}

#[tokio::test]
async fn an_unregistered_redirect_uri_or_client_gets_an_error_page_and_no_redirect() {
    let idp = provider().await;
    let client = client(&idp, CLIENT_SECRET).await;
    let attempt = begin(&client, None);
    let swap = |key: &str, value: &str| {
        let mut url = attempt.url.clone();
        let pairs: Vec<(String, String)> = attempt
            .url
            .query_pairs()
            .into_owned()
            .map(|(k, v)| {
                if k == key {
                    (k, value.to_owned())
                } else {
                    (k, v)
                }
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
        url
    };
    // a prompt=none sign-in gets no redirect either
    let mut direct = swap("redirect_uri", "http://127.0.0.1:10/auth/callback");
    direct
        .query_pairs_mut()
        .append_pair("prompt", "none")
        .append_pair("login_hint", JANE);
    for url in [
        swap("redirect_uri", "http://127.0.0.1:9/auth/callback/evil"),
        swap("redirect_uri", "http://127.0.0.1:9/auth/callback?x=1"),
        swap("client_id", "someone-else"),
        direct,
    ] {
        let response = http().get(url.clone()).send().await.expect("answered");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{url}");
        assert!(response.headers().get("location").is_none(), "{url}");
        let html = response.text().await.expect("html");
        assert!(html.contains("<p role=\"alert\" id=\"error\">"), "{html}");
        assert!(!html.contains("form id=\"login\""), "{html}");
    }
    // a forged form post is checked the same way
    let response = http()
        .post(format!("{}/authorize", idp.base_url()))
        .form(&[
            ("response_type", "code"),
            ("client_id", CLIENT_ID),
            ("redirect_uri", "http://127.0.0.1:9/elsewhere"),
            ("scope", "openid"),
            (
                "code_challenge",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            ),
            ("code_challenge_method", "S256"),
            ("email", JANE),
        ])
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get("location").is_none());
}

#[tokio::test]
async fn bad_requests_from_a_registered_client_go_back_to_its_redirect_uri() {
    let idp = provider().await;
    let base = format!(
        "{}/authorize?client_id={CLIENT_ID}&redirect_uri={}&state=st",
        idp.base_url(),
        "http%3A%2F%2F127.0.0.1%3A9%2Fauth%2Fcallback"
    );
    let challenge = "code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    for (query, error) in [
        (format!("&response_type=token&scope=openid&{challenge}&code_challenge_method=S256"), "unsupported_response_type"),
        (format!("&response_type=code&scope=email&{challenge}&code_challenge_method=S256"), "invalid_scope"),
        ("&response_type=code&scope=openid".to_owned(), "invalid_request"),
        (format!("&response_type=code&scope=openid&{challenge}&code_challenge_method=plain"), "invalid_request"),
        (format!("&response_type=code&scope=openid&{challenge}&code_challenge_method=S256&prompt=none"), "login_required"),
        (format!("&response_type=code&scope=openid&{challenge}&code_challenge_method=S256&prompt=none&login_hint=nobody%40example.com"), "login_required"),
    ] {
        let response = http()
            .get(format!("{base}{query}"))
            .send()
            .await
            .expect("answered");
        let params = callback_params(&response);
        assert_eq!(param(&params, "error"), Some(error), "{query}");
        assert_eq!(param(&params, "state"), Some("st"), "{query}");
        assert!(param(&params, "code").is_none());
    }
}

#[tokio::test]
async fn cancel_on_the_form_answers_access_denied_and_an_unknown_person_is_refused() {
    let idp = provider().await;
    let client = client(&idp, CLIENT_SECRET).await;
    let attempt = begin(&client, None);
    let html = http()
        .get(attempt.url.clone())
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    let form = hidden_inputs(&html);
    let post = |extra: (&str, &str)| {
        let mut form = form.clone();
        form.push((extra.0.to_owned(), extra.1.to_owned()));
        http()
            .post(format!("{}/authorize", idp.base_url()))
            .form(&form)
            .send()
    };
    let cancelled = post(("cancel", "1")).await.expect("answered");
    let params = callback_params(&cancelled);
    assert_eq!(param(&params, "error"), Some("access_denied"));
    assert_eq!(
        param(&params, "state"),
        Some(attempt.csrf.secret().as_str())
    );

    let stranger = post(("email", "mallory@example.com"))
        .await
        .expect("answered");
    assert_eq!(stranger.status(), StatusCode::BAD_REQUEST);
    assert!(stranger.headers().get("location").is_none());
}

#[tokio::test]
async fn a_wrong_client_secret_is_invalid_client() {
    let idp = provider().await;
    let client = client(&idp, "not the secret").await;
    let attempt = begin(&client, Some(JANE));
    let code = sign_in_directly(&attempt).await;
    assert_eq!(
        exchange(&client, code.clone(), attempt.verifier.secret())
            .await
            .err(),
        Some("invalid_client".to_owned())
    );
    // as RFC 6749 §5.2 has it: 401 with WWW-Authenticate after a Basic attempt
    let raw = http()
        .post(format!("{}/token", idp.base_url()))
        .basic_auth(CLIENT_ID, Some("nope"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.secret()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", attempt.verifier.secret()),
        ])
        .send()
        .await
        .expect("answered");
    assert_eq!(raw.status(), StatusCode::UNAUTHORIZED);
    assert!(raw.headers().contains_key("www-authenticate"));
    let body: Value = raw.json().await.expect("json");
    assert_eq!(body["error"], "invalid_client");

    // the code was not spent by a client that could not authenticate
    let right = self::client(&idp, CLIENT_SECRET).await;
    exchange(&right, code, attempt.verifier.secret())
        .await
        .expect("the right client still can");
}

#[tokio::test]
async fn a_token_request_with_a_wrong_redirect_uri_or_no_client_auth_is_refused() {
    let idp = provider().await;
    let client = client(&idp, CLIENT_SECRET).await;
    let attempt = begin(&client, Some(JANE));
    let code = sign_in_directly(&attempt).await;
    let token = |form: Vec<(&'static str, String)>, basic: bool| {
        let mut request = http().post(format!("{}/token", idp.base_url()));
        if basic {
            // RFC 6749 §2.3.1: each part form-urlencoded first
            let encode = |s: &str| {
                openidconnect::url::form_urlencoded::byte_serialize(s.as_bytes())
                    .collect::<String>()
            };
            request = request.basic_auth(encode(CLIENT_ID), Some(encode(CLIENT_SECRET)));
        }
        request.form(&form).send()
    };
    let none = token(
        vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.secret().clone()),
        ],
        false,
    )
    .await
    .expect("answered");
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);

    let grant_type = token(vec![("grant_type", "password".to_owned())], true)
        .await
        .expect("answered");
    assert_eq!(grant_type.status(), StatusCode::BAD_REQUEST);
    let body: Value = grant_type.json().await.expect("json");
    assert_eq!(body["error"], "unsupported_grant_type");

    let wrong_uri = token(
        vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.secret().clone()),
            ("redirect_uri", "http://127.0.0.1:9/other".to_owned()),
            ("code_verifier", attempt.verifier.secret().clone()),
        ],
        true,
    )
    .await
    .expect("answered");
    assert_eq!(wrong_uri.status(), StatusCode::BAD_REQUEST);
    let body: Value = wrong_uri.json().await.expect("json");
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn an_id_token_signed_by_another_key_fails_verification() {
    let idp = provider().await;
    idp.sign_with_wrong_key(true);
    let client = client(&idp, CLIENT_SECRET).await;
    let attempt = begin(&client, Some(JANE));
    let code = sign_in_directly(&attempt).await;
    let tokens = exchange(&client, code, attempt.verifier.secret())
        .await
        .expect("tokens are issued all the same");
    let refused = tokens
        .id_token()
        .expect("an ID token")
        .claims(&client.id_token_verifier(), &attempt.nonce)
        .expect_err("a signature no published key made");
    assert!(
        matches!(refused, ClaimsVerificationError::SignatureVerification(_)),
        "{refused:?}"
    );

    idp.sign_with_wrong_key(false);
    let attempt = begin(&client, Some(JANE));
    let code = sign_in_directly(&attempt).await;
    let tokens = exchange(&client, code, attempt.verifier.secret())
        .await
        .expect("tokens");
    tokens
        .id_token()
        .expect("an ID token")
        .claims(&client.id_token_verifier(), &attempt.nonce)
        .expect("the right key again");
}

#[tokio::test]
async fn the_claim_knobs_reach_the_client() {
    let idp = provider().await;
    assert!(idp.set_email_verified(JANE, false));
    assert!(!idp.set_email_verified("nobody@example.com", false));
    let client = client(&idp, CLIENT_SECRET).await;
    let sign_in = || async {
        let attempt = begin(&client, Some(JANE));
        let code = sign_in_directly(&attempt).await;
        let tokens = exchange(&client, code, attempt.verifier.secret())
            .await
            .expect("tokens");
        (tokens, attempt.nonce)
    };

    let (tokens, nonce) = sign_in().await;
    let claims = tokens
        .id_token()
        .expect("an ID token")
        .claims(&client.id_token_verifier(), &nonce)
        .expect("verified");
    assert_eq!(claims.email_verified(), Some(false));
    let info: Value = userinfo(&idp, tokens.access_token())
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(info["email_verified"], false);
    assert_eq!(info["email"], JANE);

    idp.set_issuer_override(Some("https://evil.example.com"));
    let (tokens, nonce) = sign_in().await;
    let refused = tokens
        .id_token()
        .expect("an ID token")
        .claims(&client.id_token_verifier(), &nonce)
        .expect_err("another issuer");
    assert!(
        matches!(refused, ClaimsVerificationError::InvalidIssuer(_)),
        "{refused:?}"
    );
    idp.set_issuer_override(None);

    idp.issue_expired_id_tokens(true);
    let (tokens, nonce) = sign_in().await;
    let refused = tokens
        .id_token()
        .expect("an ID token")
        .claims(&client.id_token_verifier(), &nonce)
        .expect_err("expired");
    assert!(
        matches!(refused, ClaimsVerificationError::Expired(_)),
        "{refused:?}"
    );

    // and a nonce other than the one the client sent is caught
    idp.issue_expired_id_tokens(false);
    let (tokens, _) = sign_in().await;
    let refused = tokens
        .id_token()
        .expect("an ID token")
        .claims(
            &client.id_token_verifier(),
            &Nonce::new("another".to_owned()),
        )
        .expect_err("nonce");
    assert!(
        matches!(refused, ClaimsVerificationError::InvalidNonce(_)),
        "{refused:?}"
    );
}

#[tokio::test]
async fn discovery_and_jwks_have_the_documented_shape() {
    let idp = provider().await;
    let issuer = idp.issuer();
    assert!(issuer.starts_with("http://127.0.0.1:"));
    assert!(!issuer.ends_with('/'));
    let get = |path: &str| http().get(format!("{issuer}{path}")).send();
    let document: Value = get("/.well-known/openid-configuration")
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    assert_eq!(document["issuer"], issuer.as_str());
    assert_eq!(
        document["authorization_endpoint"],
        format!("{issuer}/authorize")
    );
    assert_eq!(document["token_endpoint"], format!("{issuer}/token"));
    assert_eq!(document["userinfo_endpoint"], format!("{issuer}/userinfo"));
    assert_eq!(document["jwks_uri"], format!("{issuer}/jwks"));
    assert_eq!(
        document["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        document["token_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post"])
    );
    assert_eq!(
        document["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256"])
    );

    let jwks: Value = get("/jwks")
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    let keys = jwks["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1);
    let key = &keys[0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["kid"], idp.key_id().as_str());
    assert_eq!(key["e"], "AQAB");
    // a 2048-bit modulus: 256 bytes, 342 base64url characters
    assert_eq!(key["n"].as_str().map(str::len), Some(342));

    let unknown = get("/nothing").await.expect("answered");
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let anonymous = http()
        .get(format!("{issuer}/userinfo"))
        .send()
        .await
        .expect("answered");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    let other = OidcDouble::start(Vec::new())
        .await
        .expect("second provider");
    assert_ne!(other.issuer(), issuer);
    assert_ne!(
        other.key_id(),
        idp.key_id(),
        "each provider has its own key"
    );
}
