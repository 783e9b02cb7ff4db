//! The sign-in routes of `[web] auth = "oidc"`: `GET /login` sends the browser to the provider,
//! `GET /auth/callback` comes back with a code and starts a session, `POST /logout` (with the CSRF
//! token) ends it. In the other modes there is nothing to sign in to: `/login` says how the
//! requester is known instead.

use std::sync::Arc;

use axum::extract::{ConnectInfo, Extension, Form, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use crate::auth::Auth;
use crate::config::WebAuth;
use crate::oidc::Oidc;
use crate::store::Store;

/// What the sign-in routes share.
#[derive(Clone)]
struct SignIn {
    oidc: Option<Arc<Oidc>>,
    auth: Auth,
    store: Store,
}

/// The sign-in routes for `auth` (the OpenID client built when the mode is `oidc`).
pub fn router(auth: Auth, store: Store, network: &whereis_net::Network) -> Router {
    let oidc = match auth.mode() {
        WebAuth::Oidc(settings) => match Oidc::new(settings.clone(), network) {
            Ok(oidc) => Some(Arc::new(oidc)),
            Err(err) => {
                tracing::error!(error = %err, "OpenID Connect sign-in cannot start");
                None
            }
        },
        _ => None,
    };
    Router::new()
        .route("/login", get(login))
        .route("/auth/callback", get(callback))
        .route("/logout", post(logout))
        .with_state(SignIn { oidc, auth, store })
}

#[derive(Debug, Deserialize)]
struct LoginParams {
    return_to: Option<String>,
}

/// `GET /login[?return_to=/path]`: to the provider (303).
async fn login(State(state): State<SignIn>, Query(params): Query<LoginParams>) -> Response {
    let Some(oidc) = &state.oidc else {
        return page(
            StatusCode::NOT_FOUND,
            "Nothing to sign in to",
            &match state.auth.mode() {
                WebAuth::Proxy { .. } => "The proxy in front of whereis signs you in.".to_owned(),
                WebAuth::Local { requester } => {
                    format!("This local instance treats everyone as {requester}.")
                }
                _ => "whereis answers API tokens only here.".to_owned(),
            },
        );
    };
    let return_to = params
        .return_to
        .filter(|path| crate::oidc::local_path(path))
        .unwrap_or_else(|| "/".to_owned());
    match oidc.begin(&state.store, &return_to).await {
        Ok(url) => redirect(&url, None),
        Err(err) => {
            tracing::warn!(error = %err, "sign-in could not start");
            page(
                StatusCode::BAD_GATEWAY,
                "Sign-in is unavailable",
                &err.to_string(),
            )
        }
    }
}

#[derive(Debug, Deserialize)]
struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /auth/callback?code=…&state=…`: the provider's answer; a session and back (303).
async fn callback(State(state): State<SignIn>, Query(params): Query<CallbackParams>) -> Response {
    let Some(oidc) = &state.oidc else {
        return page(StatusCode::NOT_FOUND, "Nothing to sign in to", "");
    };
    let (Some(code), Some(login)) = (params.code, params.state) else {
        let reason = params
            .error
            .map(|e| format!("The sign-in provider answered: {}", truncate(&e)))
            .unwrap_or_else(|| "The sign-in provider's answer was incomplete.".to_owned());
        return page(StatusCode::BAD_REQUEST, "Not signed in", &reason);
    };
    let (email, return_to) = match oidc.finish(&state.store, &code, &login).await {
        Ok(done) => done,
        Err(err) => {
            tracing::warn!(error = %err, "sign-in refused");
            return page(StatusCode::UNAUTHORIZED, "Not signed in", &err.to_string());
        }
    };
    match crate::oidc::start_session(&state.store, &email).await {
        Ok(id) => {
            tracing::info!(requester = %email, "signed in");
            redirect(
                &return_to,
                Some(crate::oidc::session_cookie(&id, oidc.secure_cookie())),
            )
        }
        Err(err) => {
            crate::privacy::store_error(&err);
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Not signed in",
                &err.to_string(),
            )
        }
    }
}

#[derive(Debug, Deserialize)]
struct LogoutForm {
    csrf: Option<String>,
}

/// `POST /logout` (form field `csrf`): ends the session.
async fn logout(
    State(state): State<SignIn>,
    connect: Option<Extension<ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Response {
    let Some(oidc) = &state.oidc else {
        return page(StatusCode::NOT_FOUND, "Nothing to sign out of", "");
    };
    let peer = connect.map(|Extension(ConnectInfo(address))| address.ip());
    let Ok(requester) = state.auth.requester(&headers, peer).await else {
        return redirect(
            "/",
            Some(crate::oidc::session_cookie("", oidc.secure_cookie())),
        );
    };
    let token = form.csrf.unwrap_or_default();
    if !matches!(state.auth.csrf_valid(&requester, &token).await, Ok(true)) {
        return page(
            StatusCode::FORBIDDEN,
            "Not signed out",
            "The form was not one whereis sent (its CSRF token is missing or wrong).",
        );
    }
    if let Some(id) = crate::oidc::session_id(&headers) {
        if let Err(err) = state.store.end_session(&crate::auth::token_hash(id)).await {
            crate::privacy::store_error(&err);
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Not signed out",
                &err.to_string(),
            );
        }
    }
    redirect(
        "/",
        Some(crate::oidc::session_cookie("", oidc.secure_cookie())),
    )
}

fn redirect(location: &str, cookie: Option<String>) -> Response {
    let mut response = (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, location.to_owned())],
    )
        .into_response();
    if let Some(cookie) = cookie.and_then(|c| header::HeaderValue::from_str(&c).ok()) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

/// A small page for sign-in outcomes (no script, nothing from elsewhere).
fn page(status: StatusCode, title: &str, text: &str) -> Response {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · whereis</title></head><body><main><h1>{title}</h1><p>{text}</p>\
         <p><a href=\"/login\">Sign in</a> · <a href=\"/\">whereis</a></p></main></body></html>",
        title = escape(title),
        text = escape(text),
    );
    (status, Html(body)).into_response()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn truncate(text: &str) -> String {
    text.chars().take(100).collect()
}
