//! Cisco Spaces and Meraki as location sources, as an operator runs them: `whereis-bot serve` holds
//! the simulated Firehose stream and receives the simulated Meraki posts; lookups through the API
//! and through `whereis-bot find` (reading the same store) list the devices with their floors and
//! maps; a person seen by CMX and Spaces is merged by MAC; a cut stream reconnects and catches up;
//! a refused key and a wrong Meraki secret are named; on PostgreSQL a second instance takes the
//! stream over when the first dies.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{path_str, start_until, url_after, VARIANTS_AND_TIMEOUTS, WEB_TEST_LOCAL};
use serde_json::Value;
use whereis_sim::{Scenario, Simulator};

/// The scenario of these tests: a CMX server, a Spaces tenant and a Meraki network.
const LIVE: &str = include_str!("scenarios/live.toml");
/// Jane's laptop: seen by CMX and by Spaces.
const LAPTOP: &str = "00:11:22:33:44:55";
/// Jane's phone: seen by Spaces only, and walking about.
const PHONE: &str = "00:11:22:33:44:77";
/// How long a condition may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(30);

struct World {
    sim: Simulator,
    dir: tempfile::TempDir,
}

impl World {
    async fn start() -> World {
        let scenario = Scenario::from_toml_str(LIVE).expect("live scenario is valid");
        let sim = Simulator::start(scenario).await.expect("simulator starts");
        World {
            sim,
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// A configuration for `sources` (by scenario name), the store at `store_url` (default: a
    /// SQLite file in the temp dir), listening on an ephemeral loopback port.
    fn config(
        &self,
        file: &str,
        sources: &[&str],
        store_url: Option<&str>,
        extra: &str,
    ) -> PathBuf {
        let dir = self.dir.path();
        let store = store_url
            .map(str::to_owned)
            .unwrap_or_else(|| format!("sqlite://{}", dir.join("whereis.db").display()));
        let mut text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n\n[lookup]\n{VARIANTS_AND_TIMEOUTS}\n\n{WEB_TEST_LOCAL}\n[store]\nurl = {store:?}\n\n[maps]\ncache_dir = {:?}\n\n{POLLING_ALLOWANCE}\n{extra}\n",
            dir.join(format!("{file}.maps")).display().to_string()
        );
        for name in sources {
            let server = self.sim.server(name).expect("server in scenario");
            let secret = format!("{file}.{name}.key");
            std::fs::write(dir.join(&secret), server.password()).expect("write key");
            let entry = match server.kind().as_str() {
                "spaces" => format!(
                    "[[sources]]\nname = {name:?}\nkind = \"spaces\"\nurl = {:?}\napi_key_file = {secret:?}\n",
                    server.base_url()
                ),
                "meraki" => meraki_entry(self, file, name),
                kind => format!(
                    "[[sources]]\nname = {name:?}\nkind = {kind:?}\nurl = {:?}\nusername = {:?}\npassword_file = {secret:?}\n",
                    server.base_url(),
                    server.username()
                ),
            };
            text.push('\n');
            text.push_str(&entry);
        }
        let path = dir.join(file);
        std::fs::write(&path, text).expect("write config");
        path
    }
}

/// These tests ask `/api/v1/locate` every 100 ms until a stream has delivered; each ask is a
/// lookup under the hourly limit, and a slow machine may need more than the default 30 of them.
const POLLING_ALLOWANCE: &str = "[privacy]\nrate_limit_per_hour = 100000\n";

/// The validator and secret of the simulated Meraki network (as in `scenarios/live.toml`).
const MERAKI_VALIDATOR: &str = "live-test-validator";
const MERAKI_SECRET: &str = "live-test-secret";

/// A `[[sources]]` entry for the simulated Meraki network `name`.
fn meraki_entry(world: &World, file: &str, name: &str) -> String {
    let meraki = world
        .sim
        .server(name)
        .and_then(|s| s.meraki())
        .expect("meraki network");
    let dir = world.dir.path();
    let validator = format!("{file}.{name}.validator");
    let secret = format!("{file}.{name}.secret");
    std::fs::write(dir.join(&validator), MERAKI_VALIDATOR).expect("write validator");
    std::fs::write(dir.join(&secret), MERAKI_SECRET).expect("write secret");
    format!(
        "[[sources]]\nname = {name:?}\nkind = \"meraki\"\nurl = {:?}\nnetwork_id = {:?}\napi_key_file = \"{file}.{name}.key\"\nvalidator_file = {validator:?}\nsecret_file = {secret:?}\n",
        meraki.dashboard_url(),
        meraki.network_id(),
    )
}

/// `whereis-bot serve --config …`: the child and its base URL.
async fn serve(config: &Path) -> (tokio::process::Child, String) {
    let (child, lines) = start_until(
        &["serve", "--config", path_str(config)],
        "whereis listening on",
    )
    .await;
    let base = url_after(&lines, "whereis listening on").to_owned();
    (child, base)
}

async fn get_json(url: &str) -> (u16, Value) {
    let response = reqwest::get(url).await.expect("request answered");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// The device `mac` in a locate answer, if listed.
fn device<'a>(doc: &'a Value, mac: &str) -> Option<&'a Value> {
    doc["devices"]
        .as_array()?
        .iter()
        .find(|device| device["mac"] == mac)
}

/// Asks `/api/v1/locate?q=user` until `done` holds (the stream delivers in the background).
async fn locate_until(base: &str, user: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut every = tokio::time::interval(Duration::from_millis(100));
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        every.tick().await;
        let (_, doc) = get_json(&format!("{base}/api/v1/locate?q={user}")).await;
        if done(&doc) {
            return doc;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no such answer within {PATIENCE:?}; last: {doc:#}"
        );
    }
}

/// Asks `/readyz` until the stream `name` is in `state`.
async fn stream_until(base: &str, name: &str, state: &str) -> Value {
    let (_, doc) = common::readyz_until(base, |doc| stream_state(doc, name) == state).await;
    assert_eq!(stream_state(&doc, name), state, "{doc:#}");
    doc
}

fn stream_state<'a>(doc: &'a Value, name: &str) -> &'a str {
    doc["streams"]
        .as_array()
        .and_then(|streams| streams.iter().find(|s| s["name"] == name))
        .and_then(|s| s["state"].as_str())
        .unwrap_or("missing")
}

#[tokio::test]
async fn spaces_devices_are_found_merged_with_cmx_and_drawn() {
    let world = World::start().await;
    let config = world.config("w.toml", &["cmx-a", "spaces-1"], None, "");
    let (_serve, base) = serve(&config).await;
    let spaces = world.sim.server("spaces-1").expect("spaces server");
    tokio::time::timeout(PATIENCE, spaces.wait_for_open_streams(1))
        .await
        .expect("serve opens the Firehose stream");
    spaces.emit_now();

    let doc = locate_until(&base, "jdoe", |doc| device(doc, PHONE).is_some()).await;
    let phone = device(&doc, PHONE).expect("phone listed");
    assert_eq!(phone["source"], "spaces-1", "{doc:#}");
    assert_eq!(phone["api"], "spaces");
    assert_eq!(phone["building"], "Building 5");
    assert_eq!(phone["floor"], "Level 3");
    assert_eq!(phone["identity"], "CORP\\jdoe");
    // The laptop is seen by both: listed once.
    let laptops = doc["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .filter(|d| d["mac"] == LAPTOP)
        .count();
    assert_eq!(laptops, 1, "{doc:#}");
    // The phone's map is drawn from the Spaces floor image.
    let map = phone["map"]["url"].as_str().expect("a map for the phone");
    let png = reqwest::get(format!("{base}{map}"))
        .await
        .expect("map answered")
        .bytes()
        .await
        .expect("map body");
    assert!(png.starts_with(b"\x89PNG"), "a PNG map");

    // `find` in another process reads the same table.
    let (code, found) = common::find_json("jdoe", &config).await;
    assert_eq!(code, 0, "{found:#}");
    assert!(device(&found, PHONE).is_some(), "{found:#}");

    let ready = stream_until(&base, "spaces:spaces-1", "connected").await;
    assert_eq!(common::source_state(&ready, "spaces-1"), "ok", "{ready:#}");
}

#[tokio::test]
async fn a_cut_stream_reconnects_from_its_last_record_and_catches_up() {
    let world = World::start().await;
    let config = world.config("w.toml", &["spaces-1"], None, "");
    let (_serve, base) = serve(&config).await;
    let spaces = world.sim.server("spaces-1").expect("spaces server");
    tokio::time::timeout(PATIENCE, spaces.wait_for_open_streams(1))
        .await
        .expect("stream opened");
    spaces.emit_now();
    let before = locate_until(&base, "jdoe", |doc| device(doc, PHONE).is_some()).await;
    let first = device(&before, PHONE).expect("phone").clone();

    spaces.disconnect_streams();
    // The phone moves while the stream is down.
    spaces.emit_now();
    tokio::time::timeout(PATIENCE, spaces.wait_for_streams_opened(2))
        .await
        .expect("the stream is opened again");
    let reconnect = spaces
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/firehose/events"))
        .nth(1)
        .expect("second stream request");
    assert!(
        reconnect
            .query
            .as_deref()
            .unwrap_or("")
            .contains("fromTimestamp="),
        "the reconnect asks for a replay: {reconnect:?}"
    );
    let after = locate_until(&base, "jdoe", |doc| {
        device(doc, PHONE).is_some_and(|d| d["x"] != first["x"] || d["y"] != first["y"])
    })
    .await;
    assert!(device(&after, PHONE).is_some());
}

#[tokio::test]
async fn a_refused_spaces_key_is_named_in_readyz_and_check_config() {
    let world = World::start().await;
    let config = world.config("w.toml", &["spaces-1"], None, "");
    let key = world.dir.path().join("w.toml.spaces-1.key");
    std::fs::write(&key, "not-the-key").expect("write wrong key");
    let (_serve, base) = serve(&config).await;
    let ready = stream_until(&base, "spaces:spaces-1", "refused").await;
    assert!(ready.to_string().contains("401"), "{ready:#}");
    assert!(!ready.to_string().contains("not-the-key"));

    let out = common::whereis(&["check-config", "--config", path_str(&config)]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    let line = text
        .lines()
        .find(|l| l.contains("spaces-1"))
        .unwrap_or_else(|| panic!("a line for spaces-1: {text}"));
    assert!(line.contains("FAIL"), "{text}");
    assert!(!text.contains("not-the-key"), "{text}");
}

/// Alex's laptop on the Meraki network, reported with a `userId`.
const ALEX: &str = "00:11:22:33:44:88";

#[tokio::test]
async fn meraki_posts_are_received_and_found_with_their_floor_and_map() {
    let world = World::start().await;
    let config = world.config("w.toml", &["meraki-1"], None, "");
    let (_serve, base) = serve(&config).await;
    let meraki = world
        .sim
        .server("meraki-1")
        .and_then(|s| s.meraki())
        .expect("meraki");
    meraki.set_receiver(&format!("{base}/ingest/meraki/meraki-1"));
    let report = meraki
        .push_now()
        .await
        .expect("the validator handshake and the post pass");
    assert_eq!(report.validation_status, Some(200));
    assert_eq!(report.status, 204, "{report:?}");

    let doc = locate_until(&base, "asmith", |doc| device(doc, ALEX).is_some()).await;
    let laptop = device(&doc, ALEX).expect("laptop");
    assert_eq!(laptop["source"], "meraki-1", "{doc:#}");
    assert_eq!(laptop["api"], "meraki");
    assert_eq!(laptop["floor"], "Level 3", "{doc:#}");
    assert_eq!(laptop["unit"], "METER", "{doc:#}");
    // 60 ft from the left and 50 ft from the top of a 300 x 150 ft floor, which Meraki reports in
    // metres from the bottom-left corner: drawn from the top-left, as CMX positions are.
    let x = laptop["x"].as_f64().expect("x");
    let y = laptop["y"].as_f64().expect("y");
    assert!((x - 60.0 * 0.3048).abs() < 0.01, "x = {x}");
    assert!((y - 50.0 * 0.3048).abs() < 0.01, "y = {y}");
    let map = laptop["map"]["url"].as_str().expect("a map for the laptop");
    let png = reqwest::get(format!("{base}{map}"))
        .await
        .expect("map answered")
        .bytes()
        .await
        .expect("map body");
    assert!(png.starts_with(b"\x89PNG"), "a PNG map");
    // The floor image came from the image host, without the API key.
    let images = meraki.image_requests();
    assert!(!images.is_empty());
    assert!(images.iter().all(|r| !r.authorization), "{images:?}");

    let ready = stream_until(&base, "meraki:meraki-1", "receiving").await;
    assert_eq!(common::source_state(&ready, "meraki-1"), "ok", "{ready:#}");
}

#[tokio::test]
async fn a_wrong_meraki_secret_is_refused_and_nothing_is_stored() {
    let world = World::start().await;
    let config = world.config("w.toml", &["meraki-1"], None, "");
    let (_serve, base) = serve(&config).await;
    let meraki = world
        .sim
        .server("meraki-1")
        .and_then(|s| s.meraki())
        .expect("meraki");
    meraki.set_receiver(&format!("{base}/ingest/meraki/meraki-1"));
    meraki.set_secret("not-the-secret");
    let report = meraki.push_now().await.expect("posted");
    assert_eq!(report.status, 403, "{report:?}");

    let (_, doc) = get_json(&format!("{base}/api/v1/locate?q=asmith")).await;
    assert!(device(&doc, ALEX).is_none(), "{doc:#}");
    let summary = common::whereis(&["check-config", "--config", path_str(&config)]).await;
    let text = String::from_utf8_lossy(&summary.stdout);
    assert!(text.contains("0 devices held"), "{text}");

    // A body that is not a Scanning API post, and a GET for a source that does not exist.
    let client = reqwest::Client::new();
    let status = client
        .post(format!("{base}/ingest/meraki/meraki-1"))
        .body("{not json")
        .send()
        .await
        .expect("answered")
        .status();
    assert_eq!(status, 400);
    let status = client
        .get(format!("{base}/ingest/meraki/nope"))
        .send()
        .await
        .expect("answered")
        .status();
    assert_eq!(status, 404);
    let validator = client
        .get(format!("{base}/ingest/meraki/meraki-1"))
        .send()
        .await
        .expect("answered")
        .text()
        .await
        .expect("text");
    assert_eq!(validator, MERAKI_VALIDATOR);
}

#[tokio::test]
async fn observations_without_a_user_id_are_named_from_the_client_list() {
    let world = World::start().await;
    let config = world.config("w.toml", &["meraki-1"], None, "");
    let (_serve, base) = serve(&config).await;
    let meraki = world
        .sim
        .server("meraki-1")
        .and_then(|s| s.meraki())
        .expect("meraki");
    meraki.set_receiver(&format!("{base}/ingest/meraki/meraki-1"));
    meraki.set_omit_user_id(true);
    meraki.push_now().await.expect("posted");
    // Unnamed, the laptop cannot be found yet; the receiver asks the Dashboard for the client list
    // and the next post names it.
    let (_, doc) = get_json(&format!("{base}/api/v1/locate?q=asmith")).await;
    assert!(device(&doc, ALEX).is_none(), "{doc:#}");
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut every = tokio::time::interval(Duration::from_millis(100));
    loop {
        every.tick().await;
        meraki.push_now().await.expect("posted");
        let (_, doc) = get_json(&format!("{base}/api/v1/locate?q=asmith")).await;
        if device(&doc, ALEX).is_some() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never named: {doc:#}"
        );
    }
}

#[tokio::test]
async fn check_config_reports_each_live_source() {
    let world = World::start().await;
    let config = world.config("w.toml", &["spaces-1", "meraki-1"], None, "");
    let out = common::whereis(&["check-config", "--config", path_str(&config)]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = |name: &str| {
        text.lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .unwrap_or_else(|| panic!("a line for {name}: {text}"))
            .to_owned()
    };
    assert!(line("spaces-1").contains("ok"), "{text}");
    assert!(line("spaces-1").contains("devices held"), "{text}");
    assert!(line("meraki-1").contains("ok"), "{text}");
    // No public_url: Meraki cannot be told where to post.
    assert!(text.contains("public_url"), "{text}");
    assert!(
        !text.contains(MERAKI_SECRET) && !text.contains(MERAKI_VALIDATOR),
        "{text}"
    );
}

#[tokio::test]
async fn on_postgresql_a_second_instance_takes_the_stream_over_and_catches_up() {
    let Some(database) = common::services::fresh_postgres().await else {
        return;
    };
    let world = World::start().await;
    let config = world.config("w.toml", &["spaces-1"], Some(&database.url), "");
    let spaces = world.sim.server("spaces-1").expect("spaces server");

    let (mut first, first_base) = serve(&config).await;
    tokio::time::timeout(PATIENCE, spaces.wait_for_open_streams(1))
        .await
        .expect("the first instance opens the stream");
    stream_until(&first_base, "spaces:spaces-1", "connected").await;
    let (_second, second_base) = serve(&config).await;
    stream_until(&second_base, "spaces:spaces-1", "standby").await;
    assert_eq!(
        spaces.open_streams(),
        1,
        "only one instance holds the stream"
    );

    spaces.emit_now();
    // Both instances answer from the same table.
    let before = locate_until(&second_base, "jdoe", |doc| device(doc, PHONE).is_some()).await;
    let first_fix = device(&before, PHONE).expect("phone").clone();

    // The holder dies; the phone moves while nobody streams.
    first.kill().await.expect("kill the first instance");
    spaces.emit_now();
    let took_over = tokio::time::Instant::now();
    tokio::time::timeout(PATIENCE, spaces.wait_for_streams_opened(2))
        .await
        .expect("the second instance opens the stream");
    assert!(took_over.elapsed() < Duration::from_secs(30));
    let after = locate_until(&second_base, "jdoe", |doc| {
        device(doc, PHONE).is_some_and(|d| d["x"] != first_fix["x"] || d["y"] != first_fix["y"])
    })
    .await;
    assert!(device(&after, PHONE).is_some());
    stream_until(&second_base, "spaces:spaces-1", "connected").await;
    let replay = spaces
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/firehose/events"))
        .nth(1)
        .expect("second stream request");
    assert!(
        replay
            .query
            .as_deref()
            .unwrap_or("")
            .contains("fromTimestamp="),
        "the new holder replays from the saved position: {replay:?}"
    );
}
