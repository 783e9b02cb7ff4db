//! The Cisco Spaces double: the Firehose stream (shape, replay, faults, timers), the map endpoints,
//! its API key and its scenario keys.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;
use whereis_sim::{Fault, Scenario, ServerHandle, Simulator};

const KEY: &str = "sim-spaces-key";
const WAIT: Duration = Duration::from_secs(10);
const FIREHOSE: &str = "/api/partners/v1/firehose/events";
const SAMPLE: &str =
    include_str!("../../location/tests/fixtures/spaces-firehose-device-location-update.json");

fn scenario_text(server_extra: &str) -> String {
    format!(
        r#"
[[servers]]
name = "spaces"
kind = "spaces"
username = "unused"
password = "{KEY}"
{server_extra}

[[campuses]]
name = "HQ"
[[campuses.buildings]]
name = "B5"
[[campuses.buildings.floors]]
name = "L3"
floor_ref_id = "42"
width = 300.0
length = 150.0
height = 12.0
offset_x = 3.0
image = "l3.png"

[[people]]
username = "jdoe"
display_name = "Jane Doe"
[[people.devices]]
mac = "00:11:22:33:44:55"
identity = "CORP\\jdoe"
servers = ["spaces"]
floor = "HQ>B5>L3"
x = 12.5
y = 40.0
ssid = "CORP"
ip = ["10.0.0.7"]
[[people.devices.moves]]
x = 20.0
y = 30.0
"#
    )
}

async fn start(server_extra: &str) -> (Simulator, ServerHandle) {
    let scenario = Scenario::from_toml_str(&scenario_text(server_extra)).expect("valid");
    let sim = Simulator::start(scenario).await.expect("starts");
    let server = sim.server("spaces").expect("spaces").clone();
    (sim, server)
}

/// Quiet timers: records only when a test asks.
async fn quiet() -> (Simulator, ServerHandle) {
    start("interval_ms = 3600000\nkeepalive_ms = 3600000").await
}

async fn get(server: &ServerHandle, path_and_query: &str, key: Option<&str>) -> reqwest::Response {
    let mut request = common::client().get(format!("{}{path_and_query}", server.base_url()));
    if let Some(key) = key {
        request = request.header("X-API-KEY", key);
    }
    request.send().await.expect("sent")
}

/// Reads lines off a stream.
struct Lines {
    response: reqwest::Response,
    buffer: Vec<u8>,
}

impl Lines {
    fn new(response: reqwest::Response) -> Lines {
        Lines {
            response,
            buffer: Vec::new(),
        }
    }

    async fn next(&mut self) -> Result<Value, String> {
        loop {
            if let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                return serde_json::from_slice(&line).map_err(|e| e.to_string());
            }
            match tokio::time::timeout(WAIT, self.response.chunk()).await {
                Err(_) => panic!("no line in time"),
                Ok(Ok(Some(chunk))) => self.buffer.extend_from_slice(&chunk),
                Ok(Ok(None)) => return Err("ended".to_owned()),
                Ok(Err(err)) => return Err(format!("broken: {err}")),
            }
        }
    }

    async fn line(&mut self) -> Value {
        self.next().await.expect("a line")
    }
}

async fn open(server: &ServerHandle, query: &str) -> Lines {
    let before = server.open_streams();
    let response = get(server, &format!("{FIREHOSE}{query}"), Some(KEY)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().ok(),
        Some("application/x-ndjson")
    );
    tokio::time::timeout(WAIT, server.wait_for_open_streams(before + 1))
        .await
        .expect("open");
    Lines::new(response)
}

fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn only_the_api_key_opens_the_stream() {
    let (_sim, server) = quiet().await;
    for key in [None, Some("wrong")] {
        assert_eq!(get(&server, FIREHOSE, key).await.status(), 401);
    }
    let basic = common::client()
        .get(format!("{}{FIREHOSE}", server.base_url()))
        .basic_auth("unused", Some(KEY))
        .send()
        .await
        .expect("sent");
    assert_eq!(basic.status(), 401, "Basic auth is not the Spaces key");
    server.set_fault(Fault::Unauthorized);
    assert_eq!(get(&server, FIREHOSE, Some(KEY)).await.status(), 401);
    server.set_fault(Fault::None);
    assert_eq!(server.streams_opened(), 0);
    assert_eq!(
        get(&server, "/api/location/v2/clients", Some(KEY))
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn updates_are_shaped_like_the_published_sample() {
    let (_sim, server) = quiet().await;
    let mut lines = open(&server, "").await;
    assert_eq!(server.emit_now(), 1);
    let record = lines.line().await;
    let sample: Value = serde_json::from_str(SAMPLE).expect("fixture");
    assert_eq!(keys(&record), keys(&sample));
    let update = &record["deviceLocationUpdate"];
    let sample_update = &sample["deviceLocationUpdate"];
    assert_eq!(keys(update), keys(sample_update));
    assert_eq!(keys(&update["device"]), keys(&sample_update["device"]));
    assert_eq!(record["eventType"], "DEVICE_LOCATION_UPDATE");
    assert_eq!(update["rawUserId"], "CORP\\jdoe");
    assert_eq!(update["device"]["macAddress"], "00:11:22:33:44:55");
    assert_eq!(update["mapId"], "map-42");
    assert_eq!(update["ssid"], "CORP");
    assert_eq!(update["ipv4"], "10.0.0.7");
    assert_eq!(
        (update["xPos"].as_f64(), update["yPos"].as_f64()),
        (Some(12.5), Some(40.0))
    );
    let floor = &update["location"];
    assert_eq!(floor["locationId"], "location-42");
    assert_eq!(floor["inferredLocationTypes"][0], "FLOOR");
    assert_eq!(floor["parent"]["name"], "B5");
    assert_eq!(floor["parent"]["inferredLocationTypes"][1], "BUILDING");
    assert_eq!(floor["parent"]["parent"]["name"], "HQ");
    assert_eq!(
        floor["parent"]["parent"]["inferredLocationTypes"][0],
        "CAMPUS"
    );

    // The device walks to its next stop; a keep-alive and an exit follow.
    server.emit_now();
    let moved = lines.line().await;
    assert_eq!(moved["deviceLocationUpdate"]["xPos"].as_f64(), Some(20.0));
    server.emit_keepalive();
    let keepalive = lines.line().await;
    assert_eq!(keepalive["eventType"], "KEEP_ALIVE");
    server.exit_device("00:11:22:33:44:55");
    let exit = lines.line().await;
    assert_eq!(exit["eventType"], "DEVICE_EXIT");
    assert_eq!(
        exit["deviceExit"]["device"]["macAddress"],
        "00:11:22:33:44:55"
    );

    let kept = server.spaces_records();
    assert_eq!(kept.len(), 4);
    let uids: BTreeSet<&str> = kept.iter().map(|r| r.uid.as_str()).collect();
    assert_eq!(uids.len(), 4, "unique uids");
    assert!(kept
        .windows(2)
        .all(|w| w[0].timestamp_ms <= w[1].timestamp_ms));
    assert_eq!(kept[3].event_type, "DEVICE_EXIT");
}

#[tokio::test]
async fn from_timestamp_replays_the_kept_records_then_goes_live() {
    let (_sim, server) = quiet().await;
    for _ in 0..3 {
        server.emit_now();
    }
    let kept = server.spaces_records();
    let from = kept[1].timestamp_ms;
    let mut lines = open(&server, &format!("?fromTimestamp={from}")).await;
    let expected: Vec<&str> = kept
        .iter()
        .filter(|r| r.timestamp_ms >= from)
        .map(|r| r.uid.as_str())
        .collect();
    for uid in &expected {
        assert_eq!(lines.line().await["recordUid"], *uid);
    }
    server.emit_now();
    let live = lines.line().await;
    assert_eq!(live["recordUid"], server.spaces_records()[3].uid.as_str());
    let last = server.requests().pop().expect("recorded");
    assert_eq!(last.query, Some(format!("fromTimestamp={from}")));

    // 0 means latest only; garbage is refused.
    let mut latest = open(&server, "?fromTimestamp=0").await;
    server.emit_keepalive();
    assert_eq!(latest.line().await["eventType"], "KEEP_ALIVE");
    assert_eq!(
        get(
            &server,
            &format!("{FIREHOSE}?fromTimestamp=soon"),
            Some(KEY)
        )
        .await
        .status(),
        400
    );
}

#[tokio::test]
async fn stream_faults_cut_duplicate_silence_reject_and_inject() {
    let (_sim, server) = quiet().await;
    let mut lines = open(&server, "").await;
    server.set_duplicate_records(true);
    server.emit_now();
    let (a, b) = (lines.line().await, lines.line().await);
    assert_eq!(a, b, "sent twice");
    server.set_duplicate_records(false);

    server.send_raw_line(b"garbage");
    assert!(lines.next().await.is_err(), "the raw line as it is");
    server.set_silent(true);
    assert_eq!(server.emit_now(), 0);
    server.emit_keepalive();
    server.set_silent(false);
    server.emit_keepalive();
    assert_eq!(lines.line().await["eventType"], "KEEP_ALIVE");
    assert_eq!(
        server.spaces_records().len(),
        2,
        "nothing kept while silent"
    );

    server.disconnect_streams();
    let cut = lines.next().await.expect_err("cut");
    assert!(cut.starts_with("broken"), "{cut}");
    tokio::time::timeout(WAIT, async {
        while server.open_streams() > 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("closed");

    server.reject_next_streams(1, Some("7"));
    let rejected = get(&server, FIREHOSE, Some(KEY)).await;
    assert_eq!(rejected.status(), 429);
    assert_eq!(rejected.headers()["retry-after"], "7");
    assert_eq!(server.streams_opened(), 1);
    let _again = open(&server, "").await;
    assert_eq!(server.streams_opened(), 2);
}

#[tokio::test]
async fn timers_send_rounds_and_keep_alives_on_their_own() {
    let (_sim, server) = start("interval_ms = 20\nkeepalive_ms = 30").await;
    let mut lines = open(&server, "").await;
    let mut seen = BTreeSet::new();
    while seen.len() < 2 {
        seen.insert(lines.line().await["eventType"].as_str().map(str::to_owned));
    }
    assert!(seen.contains(&Some("KEEP_ALIVE".to_owned())));
    assert!(seen.contains(&Some("DEVICE_LOCATION_UPDATE".to_owned())));
}

#[tokio::test]
async fn map_metadata_and_images() {
    let (_sim, server) = quiet().await;
    let response = get(&server, "/api/partners/v1/maps/map-42", Some(KEY)).await;
    assert_eq!(response.status(), 200);
    let info: Value = response.json().await.expect("json");
    assert_eq!(info["mapId"], "map-42");
    assert_eq!(info["dimension"]["length"], 300.0, "x extent");
    assert_eq!(info["dimension"]["width"], 150.0, "y extent");
    assert_eq!(info["dimension"]["height"], 12.0);
    assert_eq!(info["dimension"]["offsetX"], 3.0);
    assert!(info["imageWidth"].as_u64() > info["imageHeight"].as_u64());
    let image = get(&server, "/api/partners/v1/maps/map-42/image", Some(KEY)).await;
    assert_eq!(image.status(), 200);
    assert_eq!(image.headers()["content-type"], "image/png");
    let png = image.bytes().await.expect("body");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    for path in [
        "/api/partners/v1/maps/map-43",
        "/api/partners/v1/maps/x/image",
    ] {
        assert_eq!(get(&server, path, Some(KEY)).await.status(), 404);
    }
    assert_eq!(
        get(&server, "/api/partners/v1/maps/map-42", None)
            .await
            .status(),
        401
    );
}

#[test]
fn stream_timers_are_spaces_keys_and_positive() {
    let err = Scenario::from_toml_str(&scenario_text("interval_ms = 0")).expect_err("zero");
    assert!(
        err.to_string().contains("interval_ms must be at least 1"),
        "{err}"
    );
    let cmx = scenario_text("").replace("kind = \"spaces\"", "kind = \"cmx\"") + "\n";
    let cmx = cmx.replacen(
        "password = \"sim-spaces-key\"\n",
        "password = \"sim-spaces-key\"\nkeepalive_ms = 5\n",
        1,
    );
    let err = Scenario::from_toml_str(&cmx).expect_err("not for cmx");
    assert!(
        err.to_string()
            .contains("keepalive_ms is for spaces servers only"),
        "{err}"
    );
    let ok = Scenario::from_toml_str(&scenario_text("keepalive_ms = 5")).expect("valid");
    assert_eq!(ok.servers[0].keepalive_ms, Some(5));
    assert_eq!(ok.servers[0].kind.as_str(), "spaces");
}
