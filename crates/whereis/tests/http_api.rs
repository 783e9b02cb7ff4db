//! The HTTP API of `serve` (`/api/v1/locate`, `/healthz`), started in-process on a loopback port.

mod common;

use std::sync::Arc;

use common::{device, macs, Office};
use serde_json::Value;
use tokio::net::TcpListener;
use whereis::config::Config;
use whereis::lookup::Finder;
use whereis::server;

/// Starts the real server for `office`; returns its base URL and the shutdown trigger.
async fn start_server(office: &Office) -> (String, tokio::sync::oneshot::Sender<()>) {
    let config = Config::load(&office.default_config()).expect("config loads");
    let finder = Finder::from_config(&config).await.expect("sources set up");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server::serve(
        listener,
        server::router(Arc::new(finder), None),
        async move {
            let _ = stopped.await;
        },
    ));
    (base, stop)
}

async fn get(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.expect("request");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread")]
async fn locate_answers_the_find_document() {
    let office = Office::start().await;
    let (base, _stop) = start_server(&office).await;
    let (status, body) = get(&format!("{base}/api/v1/locate?q=jdoe")).await;
    assert_eq!(status, 200, "{body}");
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(macs(&doc), ["00:11:22:33:44:55", "00:11:22:33:44:66"]);
    assert_eq!(device(&doc, "00:11:22:33:44:55")["building"], "Building 5");
    assert_eq!(doc["errors"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn locate_unknown_user_is_an_empty_answer() {
    let office = Office::start().await;
    let (base, _stop) = start_server(&office).await;
    let (status, body) = get(&format!("{base}/api/v1/locate?q=nobody")).await;
    assert_eq!(status, 200, "{body}");
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["devices"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn locate_rejects_bad_queries_with_a_json_error() {
    let office = Office::start().await;
    let (base, _stop) = start_server(&office).await;
    for (query, expected) in [
        ("", "missing q"),
        ("?q=", "no username"),
        ("?q=Jane%20Doe", "full name"),
        ("?q=a%00b", "not a valid username"),
    ] {
        let (status, body) = get(&format!("{base}/api/v1/locate{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        let doc: Value = serde_json::from_str(&body).unwrap();
        assert!(
            doc["error"].as_str().unwrap_or_default().contains(expected),
            "{query}: {body}"
        );
    }
    assert_eq!(office.sim.server("cmx-a").unwrap().request_count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn locate_with_every_source_down_is_a_bad_gateway_that_names_them() {
    let office = Office::start().await;
    let (base, _stop) = start_server(&office).await;
    for server in office.sim.servers() {
        server.set_fault(whereis_sim::Fault::Http500);
    }
    let (status, body) = get(&format!("{base}/api/v1/locate?q=jdoe")).await;
    assert_eq!(status, 502, "{body}");
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["errors"].as_array().map(Vec::len), Some(4), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn healthz() {
    let office = Office::start().await;
    let (base, _stop) = start_server(&office).await;
    assert_eq!(
        get(&format!("{base}/healthz")).await,
        (200, "ok\n".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_v2_fallback_is_remembered_per_server() {
    let office = Office::start().await;
    let config = Config::load(&office.config(
        "v2.toml",
        common::VARIANTS_AND_TIMEOUTS,
        &[common::SourceEntry {
            kind: "cmx".into(),
            ..office.source("legacy-v2")
        }],
    ))
    .unwrap();
    let finder = Finder::from_config(&config).await.unwrap();
    let v3_requests = || {
        office
            .sim
            .server("legacy-v2")
            .unwrap()
            .requests()
            .iter()
            .filter(|r| r.path.contains("/v3/"))
            .count()
    };
    let first = finder.find("bwong", &common::tester()).await.unwrap();
    assert_eq!(first.devices.len(), 1);
    let after_first = v3_requests();
    assert!(after_first >= 1, "v3 was tried first");
    let second = finder.find("bwong", &common::tester()).await.unwrap();
    assert_eq!(second.devices.len(), 1);
    assert_eq!(v3_requests(), after_first, "v3 is not asked again");
}

#[tokio::test(flavor = "multi_thread")]
async fn lookups_reuse_each_source_connection_pool() {
    let office = Office::start().await;
    let config = Config::load(&office.default_config()).unwrap();
    let finder = Finder::from_config(&config).await.unwrap();
    let connections = || office.sim.server("cmx-a").unwrap().connection_count();
    for _ in 0..6 {
        assert_eq!(
            finder
                .find("jdoe", &common::tester())
                .await
                .unwrap()
                .devices
                .len(),
            2
        );
    }
    // 6 lookups × 3 variants = 18 requests (plus the map configuration); a shared pool needs at most
    // one connection per request in flight at once.
    assert!(connections() <= 4, "{} connections opened", connections());
}
