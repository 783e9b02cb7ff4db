//! Web sign-in with OpenID Connect against the provider double: the code flow with PKCE gives a
//! session cookie whose requester is the verified email; everything else — an unverified email, a
//! token signed by an unknown key, a replayed callback, a forged logout — leaves nobody signed in.

mod common;

use std::sync::Arc;

use common::{path_str, whereis, Office, VARIANTS_AND_TIMEOUTS};
use reqwest::redirect::Policy;
use reqwest::StatusCode;
use serde_json::Value;
use whereis::config::Config;
use whereis::lookup::Finder;
use whereis_sim::{OidcDouble, OidcPerson};

const JANE: &str = "jane.doe@example.com";
const CLIENT_ID: &str = "whereis";
const CLIENT_SECRET: &str = "client-secret-for-tests";

struct Site {
    base: String,
    idp: OidcDouble,
    config: std::path::PathBuf,
    finder: Arc<Finder>,
    _office: Office,
}

/// The real server with `auth = "oidc"` against a provider double that knows Jane and Bob.
async fn site() -> Site {
    let office = Office::start().await;
    let idp = OidcDouble::start(vec![
        OidcPerson::new(JANE, "Jane Doe", "jdoe"),
        OidcPerson::new("bob@example.com", "Bob Smith", "bsmith"),
    ])
    .await
    .expect("provider double");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    idp.register_client(
        CLIENT_ID,
        CLIENT_SECRET,
        &[&format!("{base}/auth/callback")],
    );
    std::fs::write(office.dir.path().join("oidc.secret"), CLIENT_SECRET).expect("secret");
    let config = office.config(
        "oidc.toml",
        &format!(
            "{VARIANTS_AND_TIMEOUTS}\n\n[server]\npublic_url = {base:?}\n\n[web]\nauth = \"oidc\"\nissuer = {:?}\nclient_id = {CLIENT_ID:?}\nclient_secret_file = \"oidc.secret\"\n",
            idp.issuer()
        ),
        &office.all_sources(),
    );
    let loaded = Config::load(&config).expect("config");
    let finder = Arc::new(Finder::from_config(&loaded).await.expect("finder"));
    tokio::spawn(whereis::server::serve(
        listener,
        whereis::server::router(Arc::clone(&finder), None),
        std::future::pending(),
    ));
    Site {
        base,
        idp,
        config,
        finder,
        _office: office,
    }
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .no_proxy()
        .build()
        .expect("client")
}

fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Signs `email` in through `/login` (the provider's `prompt=none` shortcut stands in for the login
/// form): the callback's answer.
async fn sign_in(site: &Site, email: &str, return_to: &str) -> reqwest::Response {
    let http = browser();
    let login = http
        .get(format!("{}/login?return_to={return_to}", site.base))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    let authorize = location(&login);
    assert!(authorize.starts_with(&site.idp.issuer()), "{authorize}");
    assert!(
        authorize.contains("code_challenge_method=S256"),
        "{authorize}"
    );
    let at_provider = http
        .get(format!("{authorize}&prompt=none&login_hint={email}"))
        .send()
        .await
        .expect("provider");
    assert_eq!(at_provider.status(), StatusCode::SEE_OTHER);
    let callback = location(&at_provider);
    assert!(
        callback.starts_with(&format!("{}/auth/callback?", site.base)),
        "{callback}"
    );
    http.get(callback).send().await.expect("callback")
}

fn session_cookie(response: &reqwest::Response) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("whereis_session="))
        .unwrap_or_default()
        .to_owned()
}

async fn locate_with(site: &Site, cookie: &str) -> (StatusCode, Value) {
    let response = browser()
        .get(format!("{}/api/v1/locate?q=jdoe", site.base))
        .header("cookie", cookie)
        .send()
        .await
        .expect("locate");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn signing_in_gives_a_session_as_the_verified_email() {
    let site = site().await;
    // Not signed in: the API says where to go.
    let (status, body) = locate_with(&site, "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("/login")));

    let done = sign_in(&site, JANE, "/%3Fq%3Djdoe").await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&done), "/?q=jdoe");
    let set_cookie = session_cookie(&done);
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set_cookie.contains(flag), "{set_cookie}");
    }
    // http:// public URL: not Secure (the browser would drop it); https would add it.
    assert!(!set_cookie.contains("Secure"), "{set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap_or_default().to_owned();

    let (status, body) = locate_with(&site, &cookie).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["devices"].as_array().map(Vec::len), Some(2));
    let audit = whereis(&["audit", "--config", path_str(&site.config), "--json"]).await;
    let audit = String::from_utf8_lossy(&audit.stdout);
    assert!(audit.contains(JANE), "{audit}");

    // A made-up session id is nobody.
    let (status, _) = locate_with(
        &site,
        &format!("whereis_session=whereis_{}", "x".repeat(43)),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Signing out needs the CSRF token of the signed-in person.
    let auth = whereis::auth::Auth::new(
        site.finder.web().auth.clone(),
        site.finder.privacy().store().clone(),
    );
    let jane = whereis::privacy::Requester::new(JANE, whereis::privacy::Channel::Api);
    let bob = whereis::privacy::Requester::new("bob@example.com", whereis::privacy::Channel::Api);
    for forged in [String::new(), auth.csrf_token(&bob).await.expect("token")] {
        let refused = browser()
            .post(format!("{}/logout", site.base))
            .header("cookie", &cookie)
            .form(&[("csrf", forged.as_str())])
            .send()
            .await
            .expect("logout");
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        assert_eq!(locate_with(&site, &cookie).await.0, StatusCode::OK);
    }
    let token = auth.csrf_token(&jane).await.expect("token");
    let out = browser()
        .post(format!("{}/logout", site.base))
        .header("cookie", &cookie)
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .expect("logout");
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert!(session_cookie(&out).contains("Max-Age=0"));
    assert_eq!(
        locate_with(&site, &cookie).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn nobody_is_signed_in_without_a_verified_email_or_a_valid_signature() {
    let site = site().await;
    site.idp.set_email_verified(JANE, false);
    let refused = sign_in(&site, JANE, "/").await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(session_cookie(&refused).is_empty());
    assert!(refused.text().await.unwrap_or_default().contains("email"));

    site.idp.set_email_verified(JANE, true);
    site.idp.sign_with_wrong_key(true);
    let refused = sign_in(&site, JANE, "/").await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(session_cookie(&refused).is_empty());

    site.idp.sign_with_wrong_key(false);
    assert_eq!(
        sign_in(&site, JANE, "/").await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_callback_works_once_and_return_paths_stay_on_the_site() {
    let site = site().await;
    let http = browser();
    let login = http
        .get(format!(
            "{}/login?return_to=https://evil.example/",
            site.base
        ))
        .send()
        .await
        .expect("login");
    let at_provider = http
        .get(format!(
            "{}&prompt=none&login_hint={JANE}",
            location(&login)
        ))
        .send()
        .await
        .expect("provider");
    let callback = location(&at_provider);
    let first = http.get(&callback).send().await.expect("callback");
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&first),
        "/",
        "an outside return path falls back to /"
    );
    // The same callback again (a replay): the sign-in was used up.
    let again = http.get(&callback).send().await.expect("callback");
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    assert!(session_cookie(&again).is_empty());
    // A made-up state.
    let forged = http
        .get(format!(
            "{}/auth/callback?code=abc&state=made-up",
            site.base
        ))
        .send()
        .await
        .expect("callback");
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
}
