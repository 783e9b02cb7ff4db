//! A floor image that is missing, corrupt, a decompression bomb, truncated or slow: the lookup still
//! answers with the device's location in text and says the map is unavailable.

mod common;

use std::io::Cursor;
use std::time::{Duration, Instant};

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use common::{find_json_with, path_str, whereis, Office, SourceEntry};
use serde_json::{json, Value};

/// A CMX v2 client record on a 100 × 50 ft floor whose image is `{user}.png`.
fn client(user: &str) -> Value {
    let mut record = json!({
        "macAddress": "00:aa:bb:cc:dd:ee",
        "userName": user,
        "ssId": "CORP",
        "dot11Status": "ASSOCIATED",
        "mapInfo": {
            "mapHierarchyString": "HQ>Building 1>Floor 1",
            "floorRefId": "42",
            "floorDimension": {"width": 100, "length": 50, "offsetX": 0, "offsetY": 0, "unit": "FEET"},
            "image": {"imageName": format!("{user}.png")}
        },
        "mapCoordinate": {"x": 50, "y": 25, "unit": "FEET"},
        "statistics": {"maxDetectedRssi": {"lastHeardInSeconds": 4}}
    });
    if user == "nofloor" {
        record["mapInfo"]
            .as_object_mut()
            .map(|info| info.remove("floorDimension"));
    }
    record
}

fn good_png() -> Vec<u8> {
    let plan = image::RgbImage::from_fn(400, 200, |x, y| {
        if x % 50 < 2 || y % 50 < 2 {
            image::Rgb([60, 60, 60])
        } else {
            image::Rgb([245, 245, 245])
        }
    });
    let mut out = Cursor::new(Vec::new());
    plan.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A valid PNG header announcing 100000 × 100000 pixels, and nothing behind it.
fn bomb_png() -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    out.extend_from_slice(&13u32.to_be_bytes());
    out.extend_from_slice(&ihdr);
    out.extend_from_slice(&crc32fast::hash(&ihdr).to_be_bytes());
    out
}

async fn clients(Query(query): Query<std::collections::HashMap<String, String>>) -> Response {
    match query.get("username").map(String::as_str) {
        Some(
            user @ ("missing" | "corrupt" | "truncated" | "bomb" | "slow" | "good" | "nofloor"),
        ) => Json(json!([client(user)])).into_response(),
        _ => StatusCode::NO_CONTENT.into_response(),
    }
}

async fn image_source(Path(name): Path<String>) -> Response {
    match name.as_str() {
        "good.png" => good_png().into_response(),
        "corrupt.png" => b"this is not an image".to_vec().into_response(),
        "truncated.png" => {
            let png = good_png();
            png[..png.len() / 2].to_vec().into_response()
        }
        "bomb.png" => bomb_png().into_response(),
        "slow.png" => std::future::pending::<Response>().await,
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A CMX (v2) server whereis has never seen, with misbehaving floor images.
async fn stand_in() -> String {
    serve(
        Router::new()
            .route("/api/location/v2/clients", get(clients))
            .route("/api/config/v1/maps/imagesource/{name}", get(image_source)),
    )
    .await
}

/// Serves `app` on a loopback port; returns its base URL.
async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// The configuration entry for a stand-in at `url`.
fn odd_source(url: String) -> SourceEntry {
    SourceEntry {
        name: "cmx-odd".into(),
        kind: "cmx-v2".into(),
        url,
        username: "api".into(),
        password: "pw".into(),
        extra: String::new(),
    }
}

async fn map_of(user: &str) -> (i32, Value) {
    let office = Office::start().await;
    let source = odd_source(stand_in().await);
    let config = office.config(
        "odd.toml",
        "timeout_ms = 800\n\n[maps]\nfetch_timeout_ms = 500",
        &[source],
    );
    let dir = office.dir.path().join("maps");
    let started = Instant::now();
    let (code, doc) = find_json_with(user, &config, &["--map-dir", path_str(&dir)]).await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{user}: {:?}",
        started.elapsed()
    );
    let device = &doc["devices"][0];
    // The location itself is always there.
    assert_eq!(device["building"], "Building 1", "{doc:#}");
    assert_eq!(device["x"], 50.0);
    (code, device.clone())
}

async fn assert_map_unavailable(user: &str, expected: &[&str]) {
    let (code, device) = map_of(user).await;
    assert_eq!(code, 0, "{user}: {device:#}");
    assert_eq!(device["map"], Value::Null, "{user}: {device:#}");
    let error = device["map_error"].as_str().unwrap_or_default();
    assert!(
        expected.iter().any(|e| error.contains(e)),
        "{user}: {error:?} should say one of {expected:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_good_image_is_drawn() {
    let (code, device) = map_of("good").await;
    assert_eq!(code, 0);
    assert_eq!(device["map"]["width"], 400, "{device:#}");
    assert_eq!(device["map"]["marker"], json!([200, 100]));
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_image() {
    assert_map_unavailable("missing", &["floor image unavailable", "404"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn corrupt_image() {
    assert_map_unavailable("corrupt", &["floor image unreadable"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn truncated_image() {
    assert_map_unavailable("truncated", &["floor image unreadable"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn decompression_bomb_is_refused_before_decoding() {
    assert_map_unavailable("bomb", &["100000"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_image_server_times_out() {
    assert_map_unavailable("slow", &["timed out after 500 ms"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn floor_without_dimensions_has_no_map() {
    assert_map_unavailable("nofloor", &["no floor plan"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn text_answer_says_the_map_is_unavailable() {
    let office = Office::start().await;
    let source = odd_source(stand_in().await);
    let config = office.config("odd.toml", "", &[source]);
    let dir = office.dir.path().join("maps");
    let out = whereis(&[
        "find",
        "missing",
        "--config",
        path_str(&config),
        "--map-dir",
        path_str(&dir),
    ])
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("missing is ASSOCIATED to CORP in Building 1 on Floor 1"),
        "{text}"
    );
    assert!(
        text.contains("map unavailable: floor image unavailable"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_image_is_not_asked_for_again_at_every_lookup() {
    let office = Office::start().await;
    let requests = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&requests);
    let app = Router::new()
        .route("/api/location/v2/clients", get(clients))
        .route(
            "/api/config/v1/maps/imagesource/{name}",
            get(move |Path(_name): Path<String>| {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async { StatusCode::NOT_FOUND }
            }),
        );
    let source = odd_source(serve(app).await);
    let config = whereis::config::Config::load(&office.config("odd.toml", "", &[source])).unwrap();
    let finder = whereis::lookup::Finder::from_config(&config).await.unwrap();
    for _ in 0..3 {
        let report = finder.find("missing", &common::tester()).await.unwrap();
        let error = finder
            .draw(
                &report.devices[0].device,
                whereis::privacy::Precision::Exact,
            )
            .await
            .unwrap_err();
        assert!(error.to_string().contains("404"), "{error}");
    }
    assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 1);
}
