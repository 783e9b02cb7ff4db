//! Values placed in a URL path — usernames, floor image names from servers — never become dot
//! segments: `find ..` used to make the MSE client ask `…/location/clients/` (every client!)
//! instead of one user. The stand-ins below would answer a *different resource* for a dot segment,
//! and record every request, so the tests see exactly what reached the server.

mod common;

use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Json, Router};
use common::{find_json_with, path_str, whereis, Office, SourceEntry};
use serde_json::{json, Value};

/// Every request path a stand-in received.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<String>>>);

impl Seen {
    fn paths(&self) -> Vec<String> {
        self.0.lock().map(|p| p.clone()).unwrap_or_default()
    }
}

/// An MSE that answers the whole client list at `…/location/clients/` (what `clients/..` and
/// `clients/.` resolve to) and one client at `…/location/clients/{user}`.
async fn mse(State(seen): State<Seen>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    seen.0.lock().expect("lock").push(path.clone());
    match path.strip_prefix("/api/contextaware/v1/location/clients") {
        Some("" | "/") => Json(json!({"Locations": {"entries": [
            {"macAddress": "00:00:00:00:00:01", "userName": "ceo"},
            {"macAddress": "00:00:00:00:00:02", "userName": "cfo"}
        ]}}))
        .into_response(),
        Some(_) => StatusCode::NOT_FOUND.into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A CMX v2 server whose only client sits on a floor whose image name is `image`; its map
/// directory (`/api/config/v1/maps/`, what `imagesource/..` resolves to) answers something else.
fn cmx(
    image: &'static str,
) -> impl Fn(State<Seen>, Request) -> std::future::Ready<Response> + Clone {
    move |State(seen): State<Seen>, request: Request| {
        let path = request.uri().path().to_owned();
        seen.0.lock().expect("lock").push(path.clone());
        let response = match path.as_str() {
            "/api/location/v2/clients" => Json(json!([{
                "macAddress": "00:aa:bb:cc:dd:ee",
                "userName": "jdoe",
                "ssId": "CORP",
                "dot11Status": "ASSOCIATED",
                "mapInfo": {
                    "mapHierarchyString": "HQ>Building 1>Floor 1",
                    "floorRefId": "42",
                    "floorDimension": {"width": 100, "length": 50, "offsetX": 0, "offsetY": 0, "unit": "FEET"},
                    "image": {"imageName": image}
                },
                "mapCoordinate": {"x": 50, "y": 25, "unit": "FEET"},
                "statistics": {"maxDetectedRssi": {"lastHeardInSeconds": 4}}
            }]))
            .into_response(),
            "/api/config/v1/maps" | "/api/config/v1/maps/" => {
                Json(json!({"campuses": []})).into_response()
            }
            _ => StatusCode::NOT_FOUND.into_response(),
        };
        std::future::ready(response)
    }
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn source(name: &str, kind: &str, url: String) -> SourceEntry {
    SourceEntry {
        name: name.into(),
        kind: kind.into(),
        url,
        username: "api".into(),
        password: "pw".into(),
        extra: String::new(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dot_usernames_are_bad_input_and_never_reach_a_server() {
    let office = Office::start().await;
    let seen = Seen::default();
    let url = serve(Router::new().fallback(any(mse)).with_state(seen.clone())).await;
    let config = office.config(
        "mse.toml",
        "username_variants = [\"{user}\", \"CORP\\\\{user}\"]",
        &[source("mse-stand", "mse", url)],
    );
    for query in ["..", ".", "%2e%2e", "．．", "CORP\\..", " .. "] {
        let out = whereis(&["find", query, "--config", path_str(&config), "--json"]).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{query:?}: {stderr}");
        assert!(
            stderr.contains("not a valid username"),
            "{query:?}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{query:?}: nothing is reported");
    }
    assert_eq!(seen.paths(), Vec::<String>::new(), "no request may be sent");

    // A real username still asks for exactly that client, encoded as one segment.
    let (code, _) = find_json_with("j.doe", &config, &[]).await;
    assert_eq!(code, 1);
    let paths = seen.paths();
    assert!(
        paths.contains(&"/api/contextaware/v1/location/clients/j.doe".to_owned()),
        "{paths:?}"
    );
    assert!(
        paths.contains(&"/api/contextaware/v1/location/clients/CORP%5Cj.doe".to_owned()),
        "{paths:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dot_usernames_are_refused_by_the_api() {
    let office = Office::start().await;
    let seen = Seen::default();
    let url = serve(Router::new().fallback(any(mse)).with_state(seen.clone())).await;
    let config = whereis::config::Config::load(&office.config(
        "mse.toml",
        common::WEB_TEST_LOCAL,
        &[source("mse-stand", "mse", url)],
    ))
    .expect("config");
    let finder = std::sync::Arc::new(
        whereis::lookup::Finder::from_config(&config)
            .await
            .expect("finder"),
    );
    let app = whereis::server::router(finder, None);
    let api = serve(app).await;
    for query in ["..", "%252e%252e", "%2E."] {
        let answer = reqwest::get(format!("{api}/api/v1/locate?q={query}"))
            .await
            .expect("answer");
        assert_eq!(answer.status(), 400, "{query}");
        let body: Value = answer.json().await.expect("json");
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|e| e.contains("not a valid username")),
            "{body}"
        );
    }
    assert_eq!(seen.paths(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dot_image_name_from_a_server_is_not_followed() {
    for image in ["..", "%2e%2e", "."] {
        let office = Office::start().await;
        let seen = Seen::default();
        let url = serve(
            Router::new()
                .fallback(any(cmx(image)))
                .with_state(seen.clone()),
        )
        .await;
        let config = office.config("cmx.toml", "", &[source("cmx-stand", "cmx-v2", url)]);
        let dir = office.dir.path().join("maps");
        let (code, doc) = find_json_with("jdoe", &config, &["--map-dir", path_str(&dir)]).await;
        assert_eq!(code, 0, "{image}: the location is still reported: {doc:#}");
        let device = &doc["devices"][0];
        assert_eq!(device["building"], "Building 1");
        assert_eq!(device["map"], Value::Null, "{image}: {device:#}");
        let error = device["map_error"].as_str().unwrap_or_default();
        assert!(
            error.contains("cannot be sent in a URL path"),
            "{image}: {error}"
        );
        let paths = seen.paths();
        assert!(
            paths.iter().all(|p| !p.starts_with("/api/config/")),
            "{image}: the map directory must not be asked: {paths:?}"
        );
    }
}
