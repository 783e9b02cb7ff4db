//! The Meraki double over real HTTP: the Dashboard API's shapes, bearer check, paging and injected
//! 429s; the image host's expiring URLs; the pusher's validator handshake and posts.

mod common;

use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use whereis_sim::{MerakiHandle, Scenario, ServerHandle, Simulator};

const SCENARIO: &str = r#"
[[servers]]
name = "meraki-lab"
kind = "meraki"
username = "unused"
password = "lab-key"

[[campuses]]
name = "Lab"
[[campuses.buildings]]
name = "One"
[[campuses.buildings.floors]]
name = "Ground"
floor_ref_id = "7001"
width = 100.0
length = 50.0
image = "ground.png"
[[campuses.buildings.floors]]
name = "Unused"
floor_ref_id = "7002"
width = 10.0
length = 10.0
image = "unused.png"

[[people]]
username = "pat"
display_name = "Pat"
[[people.devices]]
mac = "00:aa:bb:cc:dd:01"
servers = ["meraki-lab"]
floor = "Lab>One>Ground"
x = 10.0
y = 40.0
ip = ["fe80::1", "10.1.2.3"]

[[people]]
username = "sam"
display_name = "Sam"
[[people.devices]]
mac = "00:aa:bb:cc:dd:02"
identity = "sam@example.com"
servers = ["meraki-lab"]
floor = "Lab>One>Ground"
x = 50.0
y = 25.0
"#;

async fn start(text: &str) -> (Simulator, ServerHandle, MerakiHandle) {
    let sim = Simulator::start(Scenario::from_toml_str(text).expect("scenario"))
        .await
        .expect("simulator");
    let server = sim.servers()[0].clone();
    let meraki = server.meraki().expect("meraki");
    (sim, server, meraki)
}

async fn dashboard(meraki: &MerakiHandle, path: &str, key: Option<&str>) -> reqwest::Response {
    let mut request = common::client().get(format!("{}{path}", meraki.dashboard_url()));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().await.expect("request sent")
}

#[tokio::test]
async fn the_dashboard_wants_the_bearer_key() {
    let (_sim, server, meraki) = start(SCENARIO).await;
    assert_eq!(
        meraki.network_id(),
        "meraki-lab",
        "the server name by default"
    );
    assert_eq!(meraki.api_key(), "lab-key");
    let path = "/networks/meraki-lab";
    assert_eq!(dashboard(&meraki, path, None).await.status(), 401);
    assert_eq!(dashboard(&meraki, path, Some("other")).await.status(), 401);
    let basic = common::client()
        .get(format!("{}{path}", meraki.dashboard_url()))
        .basic_auth("unused", Some("lab-key"))
        .send()
        .await
        .expect("sent");
    assert_eq!(basic.status(), 401);
    let ok = dashboard(&meraki, path, Some("lab-key")).await;
    assert_eq!(ok.status(), 200);
    let network: Value = ok.json().await.expect("json");
    assert_eq!(network["id"], "meraki-lab");
    assert_eq!(network["productTypes"][0], "wireless");
    let missing = dashboard(&meraki, "/networks/N_0", Some("lab-key")).await;
    assert_eq!(missing.status(), 404);
    assert_eq!(server.request_count(), 5);
}

#[tokio::test]
async fn floor_plans_are_in_metres_with_expiring_image_urls_on_another_host() {
    let (_sim, server, meraki) = start(SCENARIO).await;
    let plans: Value = dashboard(&meraki, "/networks/meraki-lab/floorPlans", Some("lab-key"))
        .await
        .json()
        .await
        .expect("json");
    let plans = plans.as_array().expect("a list");
    assert_eq!(
        plans.len(),
        1,
        "only the floor the network's devices are on"
    );
    let plan = &plans[0];
    common::assert_keys(
        plan,
        &[
            "floorPlanId",
            "name",
            "imageUrl",
            "imageUrlExpiresAt",
            "imageExtension",
            "width",
            "height",
            "center",
            "bottomLeftCorner",
            "bottomRightCorner",
            "topLeftCorner",
            "topRightCorner",
            "devices",
        ],
    );
    assert_eq!(plan["floorPlanId"], "g_7001");
    assert_eq!(
        meraki.floor_plan_id("Lab>One>Ground").as_deref(),
        Some("g_7001")
    );
    assert_eq!(meraki.floor_plan_id("Lab>One>Unused"), None);
    assert_eq!(plan["name"], "Ground");
    assert_eq!(plan["imageExtension"], "png");
    let width = plan["width"].as_f64().expect("width");
    assert!((width - 30.48).abs() < 1e-9, "100 ft: {width}");
    let height = plan["height"].as_f64().expect("height");
    assert!((height - 15.24).abs() < 1e-9, "50 ft: {height}");
    let expires = plan["imageUrlExpiresAt"].as_str().expect("text");
    let at = chrono::DateTime::parse_from_str(expires, "%Y-%m-%d %H:%M:%S %:z")
        .expect("Meraki's format");
    assert!(
        at > chrono::Utc::now() + chrono::TimeDelta::minutes(10),
        "{expires}"
    );
    assert!(plan["topLeftCorner"]["lat"].as_f64() > plan["bottomLeftCorner"]["lat"].as_f64());

    let url = plan["imageUrl"].as_str().expect("url");
    assert!(url.starts_with(&meraki.image_host_url()), "{url}");
    assert!(!url.starts_with(&server.base_url()), "{url}");
    let image = common::client().get(url).send().await.expect("sent");
    assert_eq!(image.status(), 200);
    assert_eq!(image.headers()["content-type"], "image/png");
    assert!(image.bytes().await.expect("body").starts_with(b"\x89PNG"));

    // An expired URL answers like S3; an unknown one too.
    meraki.set_image_url_ttl(Duration::ZERO);
    let plans: Value = dashboard(&meraki, "/networks/meraki-lab/floorPlans", Some("lab-key"))
        .await
        .json()
        .await
        .expect("json");
    let expired = plans[0]["imageUrl"].as_str().expect("url").to_owned();
    let refused = common::client().get(&expired).send().await.expect("sent");
    assert_eq!(refused.status(), 403);
    assert!(refused
        .text()
        .await
        .expect("body")
        .contains("<Code>AccessDenied</Code>"));
    let unknown = common::client()
        .get(format!("{}/images/nothing.png", meraki.image_host_url()))
        .send()
        .await
        .expect("sent");
    assert_eq!(unknown.status(), 404);
    let log: Vec<u16> = meraki.image_requests().iter().map(|r| r.status).collect();
    assert_eq!(log, [200, 403, 404]);
    assert!(meraki.image_requests().iter().all(|r| !r.authorization));
}

#[tokio::test]
async fn clients_page_with_links_and_include_a_machine_and_a_guest() {
    let (_sim, _server, meraki) = start(SCENARIO).await;
    let first = dashboard(
        &meraki,
        "/networks/meraki-lab/clients?perPage=3&timespan=900",
        Some("lab-key"),
    )
    .await;
    assert_eq!(first.status(), 200);
    let link = first.headers()["link"].to_str().expect("text").to_owned();
    assert!(link.contains("rel=first"), "{link}");
    let next = link
        .split(", ")
        .find(|part| part.ends_with("rel=next"))
        .and_then(|part| part.strip_prefix('<'))
        .and_then(|part| part.split_once('>'))
        .map(|(url, _)| url.to_owned())
        .expect("a next link");
    assert!(next.starts_with(&meraki.dashboard_url()), "{next}");
    assert!(
        next.contains("timespan=900") && next.contains("startingAfter="),
        "{next}"
    );
    let page: Vec<Value> = first.json().await.expect("json");
    assert_eq!(page.len(), 3);
    common::assert_keys(
        &page[0],
        &[
            "id",
            "mac",
            "description",
            "ip",
            "user",
            "firstSeen",
            "lastSeen",
            "ssid",
            "status",
        ],
    );
    assert_eq!(page[0]["user"], "pat");
    assert_eq!(page[0]["ip"], "10.1.2.3", "the IPv4 address");
    assert_eq!(page[1]["user"], "sam@example.com");
    assert!(page[2]["user"]
        .as_str()
        .is_some_and(|u| u.starts_with("host/")));

    let second = common::client()
        .get(&next)
        .bearer_auth("lab-key")
        .send()
        .await
        .expect("sent");
    assert!(!second.headers()["link"]
        .to_str()
        .expect("text")
        .contains("rel=next"));
    let page: Vec<Value> = second.json().await.expect("json");
    assert_eq!(page.len(), 1);
    assert_eq!(page[0]["user"], Value::Null, "the guest");

    for bad in [
        "perPage=2",
        "perPage=1001",
        "perPage=x",
        "timespan=0",
        "timespan=99999999",
    ] {
        let path = format!("/networks/meraki-lab/clients?{bad}");
        let answer = dashboard(&meraki, &path, Some("lab-key")).await;
        assert_eq!(answer.status(), 400, "{bad}");
    }

    meraki.set_link_base(Some("http://127.0.0.2:9"));
    let moved = dashboard(
        &meraki,
        "/networks/meraki-lab/clients?perPage=3",
        Some("lab-key"),
    )
    .await;
    assert!(moved.headers()["link"].to_str().expect("text").contains(
        "<http://127.0.0.2:9/api/v1/networks/meraki-lab/clients?perPage=3&startingAfter="
    ));
}

#[tokio::test]
async fn injected_rate_limits_answer_429_with_retry_after() {
    let (_sim, _server, meraki) = start(SCENARIO).await;
    meraki.rate_limit_next(2, Some("7"));
    for _ in 0..2 {
        let limited = dashboard(&meraki, "/networks/meraki-lab", Some("lab-key")).await;
        assert_eq!(limited.status(), 429);
        assert_eq!(limited.headers()["retry-after"], "7");
        let body: Value = limited.json().await.expect("json");
        assert_eq!(
            body["errors"][0],
            "API rate limit exceeded for organization"
        );
    }
    assert_eq!(
        dashboard(&meraki, "/networks/meraki-lab", Some("lab-key"))
            .await
            .status(),
        200
    );
}

/// A receiver on loopback: GET answers `validator`, POST bodies go to the channel.
async fn receiver(validator: &'static str) -> (String, mpsc::UnboundedReceiver<(String, String)>) {
    let (tx, rx) = mpsc::unbounded_channel::<(String, String)>();
    let get_tx = tx.clone();
    let app = Router::new()
        .route(
            "/scanning",
            get(move || {
                let _ = get_tx.send(("GET".to_owned(), String::new()));
                async move { validator }
            })
            .post(|State(tx): State<mpsc::UnboundedSender<(String, String)>>, body: String| async move {
                let _ = tx.send(("POST".to_owned(), body));
                ""
            }),
        )
        .with_state(tx);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/scanning", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, rx)
}

#[tokio::test]
async fn the_pusher_posts_only_after_the_validator_handshake() {
    let (_sim, _server, meraki) = start(SCENARIO).await;
    let (url, mut seen) = receiver("lab-validator").await;

    let err = meraki.push_now().await.expect_err("no receiver yet");
    assert!(err.to_string().contains("no receiver"), "{err}");
    meraki.set_receiver("http://192.0.2.1/scanning");
    let err = meraki.push_now().await.expect_err("not loopback");
    assert!(err.to_string().contains("loopback"), "{err}");

    // The default validator text is not what this receiver answers: nothing is posted.
    meraki.set_receiver(&url);
    let err = meraki.push_now().await.expect_err("wrong validator");
    assert!(err.to_string().contains("lab-validator"), "{err}");
    assert_eq!(seen.recv().await.map(|(m, _)| m).as_deref(), Some("GET"));
    assert!(seen.try_recv().is_err(), "no POST after a failed handshake");
    let pushes = meraki.pushes();
    assert_eq!(pushes.len(), 3);
    assert!(pushes.iter().all(Result::is_err));

    meraki.set_validator("lab-validator");
    let report = meraki.push_now().await.expect("posted");
    assert_eq!((report.validation_status, report.status), (Some(200), 200));
    assert_eq!(seen.recv().await.map(|(m, _)| m).as_deref(), Some("GET"));
    let (method, body) = seen.recv().await.expect("POST");
    assert_eq!(method, "POST");
    assert_eq!(body, report.body);
    let post: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(post["version"], "3.0");
    assert_eq!(post["type"], "WiFi");
    assert_eq!(post["secret"], "sim-secret");
    assert_eq!(post["data"]["networkId"], "meraki-lab");
    let observations = post["data"]["observations"].as_array().expect("list");
    assert_eq!(observations.len(), 2);
    let pat = &observations[0];
    common::assert_keys(
        pat,
        &[
            "clientMac",
            "userId",
            "ssid",
            "ipv4",
            "manufacturer",
            "locations",
            "latestRecord",
        ],
    );
    assert_eq!(pat["clientMac"], "00:aa:bb:cc:dd:01");
    assert_eq!(pat["userId"], "pat");
    assert_eq!(pat["ipv4"], "10.1.2.3");
    let location = &pat["locations"][0];
    common::assert_keys(
        location,
        &[
            "x",
            "y",
            "variance",
            "floorPlanId",
            "floorPlanName",
            "time",
            "lat",
            "lng",
        ],
    );
    assert_eq!(location["floorPlanId"], "g_7001");
    // (10 ft, 40 ft from the top-left) of a 50 ft deep floor → (3.048 m, 3.048 m from the bottom-left)
    assert!((location["x"].as_f64().expect("x") - 3.048).abs() < 1e-9);
    assert!((location["y"].as_f64().expect("y") - 3.048).abs() < 1e-9);
    assert_eq!(observations[1]["userId"], "sam@example.com");

    meraki.set_omit_user_id(true);
    let report = meraki.push_now().await.expect("posted");
    assert_eq!(report.validation_status, None, "validated once");
    let (_, body) = seen.recv().await.expect("POST");
    let post: Value = serde_json::from_str(&body).expect("json");
    assert!(post["data"]["observations"][0].get("userId").is_none());
}

#[tokio::test]
async fn a_push_interval_posts_by_itself() {
    let (url, mut seen) = receiver("tick").await;
    let text = SCENARIO.replace(
        "password = \"lab-key\"",
        &format!(
            "password = \"lab-key\"\nnetwork_id = \"N_42\"\nvalidator = \"tick\"\nsecret = \"s3\"\npush_to = {url:?}\npush_interval_ms = 20"
        ),
    );
    let (_sim, _server, meraki) = start(&text).await;
    assert_eq!(meraki.network_id(), "N_42");
    assert!(meraki.wait_for_pushes(2, Duration::from_secs(10)).await);
    let pushes = meraki.pushes();
    assert!(pushes.iter().all(Result::is_ok), "{pushes:?}");
    assert_eq!(seen.recv().await.map(|(m, _)| m).as_deref(), Some("GET"));
    let (_, body) = seen.recv().await.expect("POST");
    let post: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(post["secret"], "s3");
    assert_eq!(post["data"]["networkId"], "N_42");
}

#[test]
fn meraki_keys_are_checked() {
    let problems = |text: &str| match Scenario::from_toml_str(text) {
        Ok(_) => String::new(),
        Err(err) => err.to_string(),
    };
    let on_cmx = SCENARIO
        .replace("kind = \"meraki\"", "kind = \"cmx\"")
        .replace(
            "password = \"lab-key\"",
            "password = \"lab-key\"\nsecret = \"x\"",
        );
    let msg = problems(&on_cmx);
    assert!(msg.contains("for kind = \"meraki\" only"), "{msg}");
    let far = SCENARIO.replace(
        "password = \"lab-key\"",
        "password = \"lab-key\"\npush_to = \"http://203.0.113.5/x\"",
    );
    assert!(problems(&far).contains("loopback"), "{}", problems(&far));
    let busy = SCENARIO.replace(
        "password = \"lab-key\"",
        "password = \"lab-key\"\npush_interval_ms = 1",
    );
    assert!(
        problems(&busy).contains("push_interval_ms"),
        "{}",
        problems(&busy)
    );
    let empty = SCENARIO.replace(
        "password = \"lab-key\"",
        "password = \"lab-key\"\nnetwork_id = \" \"",
    );
    assert!(
        problems(&empty).contains("network_id"),
        "{}",
        problems(&empty)
    );
    assert_eq!(problems(SCENARIO), "");
}

#[tokio::test]
async fn the_example_meraki_scenario_starts_and_serves_its_floors() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/meraki.toml");
    let scenario = Scenario::from_file(&path).expect("scenarios/meraki.toml is valid");
    let sim = Simulator::start(scenario).await.expect("simulator");
    let meraki = sim
        .server("meraki-hq")
        .and_then(ServerHandle::meraki)
        .expect("meraki-hq");
    let plans: Value = dashboard(
        &meraki,
        &format!("/networks/{}/floorPlans", meraki.network_id()),
        Some(meraki.api_key()),
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(plans.as_array().map(Vec::len), Some(2));
}
