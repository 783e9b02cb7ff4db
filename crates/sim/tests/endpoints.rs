//! Every endpoint of the demo scenario over real HTTP on 127.0.0.1: shapes like the fixtures, not-found
//! answers, auth, request log.

mod common;

use chrono::{DateTime, FixedOffset, Utc};
use common::{assert_keys, client, get, get_json_accept, keys};
use serde_json::Value;
use whereis_sim::{Scenario, ServerKind, Simulator};

async fn demo() -> Simulator {
    Simulator::start(Scenario::builtin_demo())
        .await
        .expect("demo starts")
}

/// How many device entries of the scenario `server` sees.
fn devices_seen_by(sim: &Simulator, server: &str) -> usize {
    sim.scenario()
        .people
        .iter()
        .flat_map(|p| &p.devices)
        .filter(|d| d.servers.iter().any(|s| s == server))
        .count()
}

fn parse_stamp(s: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.3f%z")
        .unwrap_or_else(|e| panic!("timestamp {s:?} not in wire format: {e}"))
}

fn seconds_ago(s: &str) -> i64 {
    (Utc::now() - parse_stamp(s).with_timezone(&Utc)).num_seconds()
}

#[tokio::test]
async fn servers_listen_on_loopback_in_scenario_order() {
    let sim = demo().await;
    let names: Vec<&str> = sim.servers().iter().map(|s| s.name()).collect();
    assert_eq!(
        names,
        [
            "cmx-north",
            "cmx-south",
            "cmx-legacy",
            "mse-legacy",
            "spaces-hq",
            "meraki-riverside"
        ]
    );
    let kinds: Vec<ServerKind> = sim.servers().iter().map(|s| s.kind()).collect();
    assert_eq!(
        kinds,
        [
            ServerKind::Cmx,
            ServerKind::Cmx,
            ServerKind::CmxV2,
            ServerKind::Mse,
            ServerKind::Spaces,
            ServerKind::Meraki
        ]
    );
    for s in sim.servers() {
        assert!(s.addr().ip().is_loopback());
        assert_eq!(
            s.base_url(),
            format!("http://127.0.0.1:{}", s.addr().port())
        );
    }
    assert!(sim.server("nope").is_none());
    assert_eq!(sim.scenario().servers.len(), 6);
}

#[tokio::test]
async fn cmx_v3_flat_record_like_fixture() {
    let sim = demo().await;
    let north = sim.server("cmx-north").expect("server");
    let resp = get(north, "/api/location/v3/clients?username=CORP%5Cjdoe").await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap_or("")
        .starts_with("application/json"));
    let list: Value = resp.json().await.expect("json");
    let list = list.as_array().expect("array");
    assert_eq!(list.len(), 1);
    let r = &list[0];
    assert_keys(
        r,
        &[
            "deviceId",
            "username",
            "ssid",
            "associated",
            "ipAddress",
            "locationMapHierarchy",
            "locationCoordinate",
            "floorRefId",
            "floorId",
            "confidenceFactor",
            "lastSeen",
            "maxDetectedRssi",
            "timestamp",
            "manufacturer",
            "notificationType",
            "apMacAddress",
            "band",
            "entity",
            "geoCoordinate",
            "rawLocation",
        ],
    );
    for absent in [
        "mapInfo",
        "macAddress",
        "userName",
        "ssId",
        "floorDimension",
        "image",
    ] {
        assert!(
            r.get(absent).is_none(),
            "v3 record must be flat, has {absent}"
        );
    }
    assert_eq!(r["deviceId"], "00:11:22:33:44:55");
    assert_eq!(r["username"], "CORP\\jdoe");
    assert_eq!(r["ssid"], "CORP");
    assert_eq!(r["associated"], true);
    assert_eq!(r["ipAddress"], serde_json::json!(["10.0.0.7"]));
    assert_eq!(r["locationMapHierarchy"], "HQ Campus>Building 5>Level 3");
    assert_keys(&r["locationCoordinate"], &["x", "y", "z", "unit"]);
    assert_eq!(r["locationCoordinate"]["x"], 120.5);
    assert_eq!(r["locationCoordinate"]["y"], 40.0);
    assert_eq!(r["locationCoordinate"]["unit"], "FEET");
    assert_eq!(r["floorRefId"], "723413320329068650");
    assert!(r["floorId"].is_u64());
    assert_eq!(r["confidenceFactor"], 24.0);
    assert_eq!(r["maxDetectedRssi"]["lastHeardInSeconds"], 12);
    assert_eq!(r["manufacturer"], "Intel Corporate");
    let ago = seconds_ago(r["lastSeen"].as_str().expect("lastSeen string"));
    assert!((11..=14).contains(&ago), "lastSeen {ago}s ago");
    assert!(r["lastSeen"].as_str().unwrap_or("").ends_with("+0000"));
    assert!(r["timestamp"].is_u64());
}

#[tokio::test]
async fn cmx_v2_client_object_like_fixture() {
    let sim = demo().await;
    let south = sim.server("cmx-south").expect("server");
    let resp = get(south, "/api/location/v2/clients?username=jdoe").await;
    assert_eq!(resp.status(), 200);
    let list: Value = resp.json().await.expect("json");
    let c = &list.as_array().expect("array")[0];
    assert_keys(
        c,
        &[
            "macAddress",
            "mapInfo",
            "mapCoordinate",
            "currentlyTracked",
            "confidenceFactor",
            "statistics",
            "networkStatus",
            "changedOn",
            "ipAddress",
            "userName",
            "ssId",
            "dot11Status",
            "band",
            "apMacAddress",
            "manufacturer",
            "guestUser",
        ],
    );
    assert_eq!(c["macAddress"], "00:11:22:33:44:66");
    assert_eq!(c["userName"], "jdoe");
    assert_eq!(c["ssId"], "CORP");
    assert_eq!(c["dot11Status"], "ASSOCIATED");
    assert_eq!(c["ipAddress"].as_array().map(Vec::len), Some(2));
    let map = &c["mapInfo"];
    assert_keys(
        map,
        &[
            "mapHierarchyString",
            "floorRefId",
            "floorDimension",
            "image",
        ],
    );
    assert_eq!(map["mapHierarchyString"], "HQ Campus>Building 9>Level 2");
    assert_eq!(map["floorRefId"], "723413320329068702");
    let dim = &map["floorDimension"];
    assert_keys(
        dim,
        &["length", "width", "height", "offsetX", "offsetY", "unit"],
    );
    assert_eq!(dim["width"], 240.0);
    assert_eq!(dim["length"], 120.0);
    assert_eq!(dim["offsetY"], 2.3);
    assert_eq!(dim["unit"], "FEET");
    assert_keys(
        &map["image"],
        &["imageName", "zoomLevel", "width", "height"],
    );
    assert_eq!(map["image"]["imageName"], "domain_0_1500368087063.png");
    assert_eq!(map["image"]["width"], 0);
    assert_keys(&c["mapCoordinate"], &["x", "y", "z", "unit"]);
    assert_eq!(c["mapCoordinate"]["x"], 80.0);
    let stats = &c["statistics"];
    assert_keys(
        stats,
        &[
            "currentServerTime",
            "firstLocatedTime",
            "lastLocatedTime",
            "maxDetectedRssi",
        ],
    );
    assert_keys(
        &stats["maxDetectedRssi"],
        &[
            "apMacAddress",
            "band",
            "slot",
            "rssi",
            "antennaIndex",
            "lastHeardInSeconds",
        ],
    );
    assert_eq!(stats["maxDetectedRssi"]["lastHeardInSeconds"], 95);
    let now = seconds_ago(stats["currentServerTime"].as_str().expect("string"));
    let last = seconds_ago(stats["lastLocatedTime"].as_str().expect("string"));
    assert!((0..=2).contains(&now), "currentServerTime {now}s ago");
    assert!((94..=97).contains(&last), "lastLocatedTime {last}s ago");
}

#[tokio::test]
async fn cmx_probing_device_without_ip() {
    let sim = demo().await;
    let north = sim.server("cmx-north").expect("server");
    let v2: Value = get(north, "/api/location/v2/clients?username=mgarcia")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(v2[0]["dot11Status"], "PROBING");
    assert!(v2[0]["ipAddress"].is_null());
    assert_eq!(v2[0]["ssId"], "");
    let v3: Value = get(north, "/api/location/v3/clients?username=mgarcia")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(v3[0]["associated"], false);
    assert!(v3[0]["ipAddress"].is_null());
}

#[tokio::test]
async fn cmx_lists_all_clients_without_username_and_sees_shared_mac() {
    let sim = demo().await;
    let north = sim.server("cmx-north").expect("server");
    let all: Value = get(north, "/api/location/v2/clients")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        all.as_array().map(Vec::len),
        Some(devices_seen_by(&sim, "cmx-north"))
    );
    // the same laptop on two servers, heard at different times
    let path = "/api/location/v3/clients?username=CORP%5Cakumar";
    let a: Value = get(north, path).await.json().await.expect("json");
    let south = sim.server("cmx-south").expect("server");
    let b: Value = get(south, path).await.json().await.expect("json");
    assert_eq!(a[0]["deviceId"], b[0]["deviceId"]);
    assert_eq!(a[0]["maxDetectedRssi"]["lastHeardInSeconds"], 300);
    assert_eq!(b[0]["maxDetectedRssi"]["lastHeardInSeconds"], 8);
}

#[tokio::test]
async fn cmx_unknown_user_is_204_with_empty_body_and_matching_is_exact() {
    let sim = demo().await;
    let north = sim.server("cmx-north").expect("server");
    for path in [
        "/api/location/v2/clients?username=nobody",
        "/api/location/v3/clients?username=nobody",
        "/api/location/v3/clients?username=corp%5Cjdoe",
        "/api/location/v3/clients?username=jdoe",
    ] {
        let resp = get(north, path).await;
        assert_eq!(resp.status(), 204, "{path}");
        assert!(resp.bytes().await.expect("body").is_empty(), "{path}");
    }
}

#[tokio::test]
async fn cmx_v2_only_server_answers_404_on_v3() {
    let sim = demo().await;
    let legacy = sim.server("cmx-legacy").expect("server");
    let resp = get(legacy, "/api/location/v3/clients?username=tnguyen").await;
    assert_eq!(resp.status(), 404);
    let resp = get(legacy, "/api/location/v2/clients?username=tnguyen").await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v[0]["mapInfo"]["floorDimension"]["unit"], "METER");
    assert_eq!(v[0]["mapCoordinate"]["unit"], "METER");
    assert_eq!(
        v[0]["mapInfo"]["mapHierarchyString"],
        "Riverside Campus>Tower A>Floor 14"
    );
}

#[tokio::test]
async fn cmx_map_configuration() {
    let sim = demo().await;
    let north = sim.server("cmx-north").expect("server");
    let resp = get(north, "/api/config/v1/maps").await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.expect("body");
    // a floor id above 2^53 arrives as an exact JSON integer
    assert!(text.contains("\"aesUid\":4698041219291283488"), "{text}");
    let maps: Value = serde_json::from_str(&text).expect("json");
    let campuses = maps["campuses"].as_array().expect("campuses");
    assert_eq!(campuses.len(), 2);
    assert_keys(&campuses[0], &["name", "aesUidString", "buildingList"]);
    let building = &campuses[0]["buildingList"][0];
    assert_keys(building, &["name", "aesUidString", "floorList"]);
    assert_eq!(building["name"], "Building 5");
    let floor = &building["floorList"][2];
    assert_keys(
        floor,
        &[
            "name",
            "aesUidString",
            "aesUid",
            "hierarchyName",
            "dimension",
            "image",
        ],
    );
    assert_eq!(floor["name"], "Level 3");
    assert_eq!(floor["aesUidString"], "723413320329068650");
    assert_eq!(floor["aesUid"].as_u64(), Some(723413320329068650));
    assert_eq!(floor["hierarchyName"], "HQ Campus>Building 5>Level 3");
    assert_keys(
        &floor["dimension"],
        &["length", "width", "height", "offsetX", "offsetY", "unit"],
    );
    assert_eq!(floor["dimension"]["width"], 300.0);
    assert_eq!(floor["image"]["imageName"], "domain_0_1462212406005.png");

    let one: Value = get(
        north,
        "/api/config/v1/maps/info/HQ%20Campus/Building%205/Level%203",
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(&one, floor);
    let resp = get(
        north,
        "/api/config/v1/maps/info/HQ%20Campus/Building%205/Level%204",
    )
    .await;
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn floor_images_are_png_on_cmx_and_mse() {
    let sim = demo().await;
    let north = sim.server("cmx-north").expect("server");
    let resp = get(
        north,
        "/api/config/v1/maps/imagesource/domain_0_1462212406005.png",
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/png");
    let png = resp.bytes().await.expect("body");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    let mse = sim.server("mse-legacy").expect("server");
    let resp = get(
        mse,
        "/api/contextaware/v1/maps/imagesource/domain_5_1350620105694.png",
    )
    .await;
    assert_eq!(resp.status(), 200);
    let resp = get(north, "/api/config/v1/maps/imagesource/nope.png").await;
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn mse_single_device_is_an_object_with_capitalised_keys() {
    let sim = demo().await;
    let mse = sim.server("mse-legacy").expect("server");
    let resp = get_json_accept(mse, "/api/contextaware/v1/location/clients/CORP%5Coolsen").await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.expect("body");
    assert!(
        text.contains("\"floorRefId\":4698041219291283500"),
        "{text}"
    );
    assert!(!text.contains("lastHeardInSeconds"));
    let v: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(keys(&v), ["WirelessClientLocation"]);
    let w = &v["WirelessClientLocation"];
    assert!(w.is_object());
    assert_keys(
        w,
        &[
            "macAddress",
            "currentlyTracked",
            "confidenceFactor",
            "band",
            "isGuestUser",
            "dot11Status",
            "ssId",
            "userName",
            "ipAddress",
            "MapInfo",
            "MapCoordinate",
            "Statistics",
        ],
    );
    assert_eq!(w["userName"], "CORP\\oolsen");
    assert_eq!(w["ipAddress"], "10.20.1.3");
    assert_eq!(w["isGuestUser"], false);
    assert_keys(
        &w["MapInfo"],
        &["mapHierarchyString", "floorRefId", "Dimension", "Image"],
    );
    assert_eq!(
        w["MapInfo"]["mapHierarchyString"],
        "Riverside Campus>Annex>Ground"
    );
    assert_eq!(
        w["MapInfo"]["floorRefId"].as_u64(),
        Some(4698041219291283500)
    );
    assert_keys(
        &w["MapInfo"]["Dimension"],
        &["length", "width", "height", "offsetX", "offsetY", "unit"],
    );
    assert_eq!(w["MapInfo"]["Dimension"]["offsetX"], 21.5);
    assert_eq!(
        w["MapInfo"]["Image"]["imageName"],
        "domain_5_1350620105700.png"
    );
    assert_keys(&w["MapCoordinate"], &["x", "y", "unit"]);
    assert_eq!(w["MapCoordinate"]["unit"], "METER");
    let stats = &w["Statistics"];
    assert_keys(
        stats,
        &["currentServerTime", "firstLocatedTime", "lastLocatedTime"],
    );
    let last = seconds_ago(stats["lastLocatedTime"].as_str().expect("string"));
    assert!((44..=47).contains(&last), "lastLocatedTime {last}s ago");
}

#[tokio::test]
async fn mse_several_devices_are_an_array_and_json_suffix_works() {
    let sim = demo().await;
    let mse = sim.server("mse-legacy").expect("server");
    let resp = get_json_accept(mse, "/api/contextaware/v1/location/clients/lchen").await;
    let v: Value = resp.json().await.expect("json");
    let list = v["WirelessClientLocation"].as_array().expect("array form");
    assert_eq!(list.len(), 2);
    assert!(list[1].get("ipAddress").is_none(), "no IP: no ipAddress");
    // `.json` suffix instead of the Accept header
    let resp = get(mse, "/api/contextaware/v1/location/clients/lchen.json").await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.expect("json");
    assert!(v["WirelessClientLocation"].is_array());
}

#[tokio::test]
async fn mse_without_accept_json_answers_xml() {
    let sim = demo().await;
    let mse = sim.server("mse-legacy").expect("server");
    let resp = get(mse, "/api/contextaware/v1/location/clients/lchen").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/xml");
    let text = resp.text().await.expect("body");
    assert!(text.starts_with("<?xml"), "{text}");
    assert!(text.contains("<WirelessClientLocation "), "{text}");
    assert!(serde_json::from_str::<Value>(&text).is_err());
}

#[tokio::test]
async fn mse_unknown_user_is_404() {
    let sim = demo().await;
    let mse = sim.server("mse-legacy").expect("server");
    for path in [
        "/api/contextaware/v1/location/clients/nobody",
        "/api/contextaware/v1/location/clients/corp%5Coolsen",
        "/api/contextaware/v1/location/clients/oolsen",
    ] {
        let resp = get_json_accept(mse, path).await;
        assert_eq!(resp.status(), 404, "{path}");
    }
}

#[tokio::test]
async fn mse_list_form_pages() {
    let sim = demo().await;
    let mse = sim.server("mse-legacy").expect("server");
    let v: Value = get_json_accept(mse, "/api/contextaware/v1/location/clients")
        .await
        .json()
        .await
        .expect("json");
    let loc = &v["Locations"];
    assert_keys(loc, &["totalPages", "currentPage", "pageSize", "entries"]);
    let seen = devices_seen_by(&sim, "mse-legacy");
    assert!(
        seen > 2 && seen <= 100,
        "the demo's MSE fits one default page of 100"
    );
    assert_eq!(loc["totalPages"], 1);
    assert_eq!(loc["entries"].as_array().map(Vec::len), Some(seen));
    assert_keys(
        &loc["entries"][0],
        &["macAddress", "MapInfo", "MapCoordinate", "Statistics"],
    );
    let v: Value = get_json_accept(
        mse,
        "/api/contextaware/v1/location/clients?page=2&pageSize=2",
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(v["Locations"]["totalPages"], seen.div_ceil(2));
    assert_eq!(v["Locations"]["currentPage"], 2);
    assert_eq!(v["Locations"]["entries"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn every_endpoint_needs_basic_auth() {
    let sim = demo().await;
    let c = client();
    for (server, path) in [
        ("cmx-north", "/api/location/v3/clients?username=jdoe"),
        ("cmx-north", "/api/location/v2/clients"),
        ("cmx-legacy", "/api/config/v1/maps"),
        ("mse-legacy", "/api/contextaware/v1/location/clients/lchen"),
    ] {
        let s = sim.server(server).expect("server");
        let url = format!("{}{path}", s.base_url());
        let none = c.get(&url).send().await.expect("sent");
        assert_eq!(none.status(), 401, "{server} {path}");
        let challenge = none.headers()["www-authenticate"]
            .to_str()
            .unwrap_or("")
            .to_owned();
        assert!(challenge.starts_with("Basic realm=\""), "{challenge}");
        assert!(none.bytes().await.expect("body").is_empty());
        let wrong = c
            .get(&url)
            .basic_auth(s.username(), Some("not-the-password"))
            .send()
            .await
            .expect("sent");
        assert_eq!(wrong.status(), 401);
        let other_user = c
            .get(&url)
            .basic_auth("someone", Some(s.password()))
            .send()
            .await
            .expect("sent");
        assert_eq!(other_user.status(), 401);
    }
}

#[tokio::test]
async fn unknown_paths_are_404() {
    let sim = demo().await;
    let north = sim.server("cmx-north").expect("server");
    assert_eq!(get(north, "/api/location/v9/clients").await.status(), 404);
    assert_eq!(
        get(north, "/api/contextaware/v1/location/clients/jdoe")
            .await
            .status(),
        404
    );
    let mse = sim.server("mse-legacy").expect("server");
    assert_eq!(get(mse, "/api/location/v2/clients").await.status(), 404);
    assert_eq!(get(mse, "/").await.status(), 404);
}

#[tokio::test]
async fn requests_are_recorded_raw() {
    let sim = demo().await;
    let north = sim.server("cmx-north").expect("server");
    assert_eq!(north.request_count(), 0);
    get(north, "/api/location/v3/clients?username=CORP%5Cjdoe").await;
    client()
        .get(format!("{}/api/config/v1/maps", north.base_url()))
        .send()
        .await
        .expect("sent"); // unauthenticated: still counted
    north.wait_for_requests(2).await;
    assert_eq!(north.request_count(), 2);
    let log = north.requests();
    assert_eq!(log[0].method, "GET");
    assert_eq!(log[0].path, "/api/location/v3/clients");
    assert_eq!(log[0].query.as_deref(), Some("username=CORP%5Cjdoe"));
    assert_eq!(log[1].path, "/api/config/v1/maps");
    assert_eq!(log[1].query, None);
    let mse = sim.server("mse-legacy").expect("server");
    get_json_accept(mse, "/api/contextaware/v1/location/clients/CORP%5Coolsen").await;
    assert_eq!(
        mse.requests()[0].path,
        "/api/contextaware/v1/location/clients/CORP%5Coolsen"
    );
    assert_eq!(sim.server("cmx-south").expect("server").request_count(), 0);
}

#[tokio::test]
async fn start_on_given_ports_and_port_range_error() {
    let text = r#"
[[servers]]
name = "only"
kind = "cmx"
username = "u"
password = "p"
"#;
    let scenario = Scenario::from_toml_str(text).expect("valid");
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind probe");
    let port = probe.local_addr().expect("addr").port();
    drop(probe);
    let ip = std::net::IpAddr::from([127, 0, 0, 1]);
    let sim = Simulator::start_on(scenario.clone(), ip, Some(port))
        .await
        .expect("starts on the given port");
    assert_eq!(sim.servers()[0].addr().port(), port);
    sim.shutdown().await;
    // port 0: every server on its own ephemeral port
    let sim = Simulator::start_on(Scenario::builtin_demo(), ip, Some(0))
        .await
        .expect("starts on ephemeral ports");
    let ports: std::collections::HashSet<u16> =
        sim.servers().iter().map(|s| s.addr().port()).collect();
    // Six servers; the Meraki network's image host takes a port of its own.
    assert!(ports.len() >= 6, "{ports:?}");
    assert!(!ports.contains(&0));
    sim.shutdown().await;
    let err = Simulator::start_on(Scenario::builtin_demo(), ip, Some(65534))
        .await
        .expect_err("6 servers from 65534 do not fit");
    assert!(err.to_string().contains("65534"), "{err}");
}

#[tokio::test]
async fn shutdown_closes_the_ports() {
    let sim = demo().await;
    let addr = sim.servers()[0].addr();
    tokio::net::TcpStream::connect(addr)
        .await
        .expect("listening");
    sim.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
