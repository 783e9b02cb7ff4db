//! Parsing tests against every recorded payload in `tests/fixtures/`.
//!
//! Every file in the directory must have an entry in [`EXPECTATIONS`]: a new fixture that nobody wrote
//! an expectation for fails `every_fixture_file_has_an_expectation`. The expected values below were read
//! off the files by hand (timestamps differences computed independently).

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration as TimeDelta, Utc};
use serde_json::Value;
use whereis_location::wire::{cmx_v2, cmx_v3, maps, mse, ParseError, Parsed};
use whereis_location::{Api, Device, Unit};

/// What is expected of one fixture file.
#[derive(Clone, Copy)]
enum Expect {
    /// A location-server payload with a dedicated field-by-field check.
    Parsed(fn(&[u8])),
    /// A payload of a protocol whereis does not speak yet (Spaces, Meraki, Webex): valid JSON, and every
    /// location parser gives a clean error or nothing.
    Foreign,
    /// A floor image.
    Png,
}

const EXPECTATIONS: &[(&str, Expect)] = &[
    (
        "cmx-v2-clients-sandbox.json",
        Expect::Parsed(cmx_v2_sandbox),
    ),
    (
        "cmx-v1-clients-sandbox-80-devices-one-user.json",
        Expect::Parsed(cmx_v1_eighty_devices),
    ),
    (
        "cmx-clients-floor-offset.json",
        Expect::Parsed(cmx_floor_offset),
    ),
    (
        "cmx-v2-client-no-rssi-stats.json",
        Expect::Parsed(cmx_v2_no_rssi_stats),
    ),
    (
        "cmx-v2-clients-placeholder-types.json",
        Expect::Parsed(cmx_v2_placeholder_types),
    ),
    (
        "cmx-v3-clients-sandbox.json",
        Expect::Parsed(cmx_v3_sandbox),
    ),
    (
        "mse-clients-list-paged.json",
        Expect::Parsed(mse_list_paged),
    ),
    (
        "spaces-firehose-device-location-update.json",
        Expect::Foreign,
    ),
    ("spaces-locationupdate-notification.json", Expect::Foreign),
    ("meraki-scanning-v3-wifi.json", Expect::Foreign),
    ("meraki-floorplans-by-id.json", Expect::Foreign),
    ("webex-webhook-message-created.json", Expect::Foreign),
    ("webex-message-group-mention.json", Expect::Foreign),
    ("cmx-floor-image-domain_0_1421088463647.png", Expect::Png),
];

/// Files in the directory that are not payloads.
const NOT_PAYLOADS: &[&str] = &["README.md"];

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn read(name: &str) -> Vec<u8> {
    let path = fixtures_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn fixture_names() -> BTreeSet<String> {
    std::fs::read_dir(fixtures_dir())
        .expect("tests/fixtures is readable")
        .map(|entry| {
            entry
                .expect("directory entry")
                .file_name()
                .into_string()
                .expect("UTF-8 file name")
        })
        .collect()
}

fn expectation(name: &str) -> Expect {
    EXPECTATIONS
        .iter()
        .find(|(file, _)| *file == name)
        .map(|(_, expect)| *expect)
        .unwrap_or_else(|| panic!("no expectation for {name}"))
}

fn check(name: &str) {
    let body = read(name);
    match expectation(name) {
        Expect::Parsed(check) => check(&body),
        Expect::Foreign => foreign(name, &body),
        Expect::Png => png(&body),
    }
}

#[track_caller]
fn close(actual: f64, expected: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= 1e-9 * expected.abs().max(1.0),
        "{what}: got {actual}, expected {expected}"
    );
}

#[track_caller]
fn close_opt(actual: Option<f64>, expected: f64, what: &str) {
    match actual {
        Some(actual) => close(actual, expected, what),
        None => panic!("{what}: missing, expected {expected}"),
    }
}

#[track_caller]
fn only_device(parsed: &Parsed) -> &Device {
    assert!(
        parsed.rejected.is_empty(),
        "unexpected rejects: {:?}",
        parsed.rejected
    );
    assert_eq!(parsed.devices.len(), 1, "{:?}", parsed.devices);
    &parsed.devices[0]
}

fn is_normalised_mac(mac: &str) -> bool {
    let parts: Vec<&str> = mac.split(':').collect();
    parts.len() == 6
        && parts.iter().all(|part| {
            part.len() == 2
                && part
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        })
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("test timestamp")
        .with_timezone(&Utc)
}

// ---------------------------------------------------------------------------------------------------
// Coverage of the directory.

#[test]
fn every_fixture_file_has_an_expectation() {
    let present = fixture_names();
    let uncovered: Vec<&String> = present
        .iter()
        .filter(|name| !NOT_PAYLOADS.contains(&name.as_str()))
        .filter(|name| !EXPECTATIONS.iter().any(|(file, _)| file == name))
        .collect();
    assert!(
        uncovered.is_empty(),
        "fixture files without an expectation in tests/fixtures.rs: {uncovered:?}"
    );
    let missing: Vec<&str> = EXPECTATIONS
        .iter()
        .map(|(file, _)| *file)
        .filter(|file| !present.contains(*file))
        .collect();
    assert!(
        missing.is_empty(),
        "expectations for files that are not in tests/fixtures: {missing:?}"
    );
    let json = present
        .iter()
        .filter(|name| name.ends_with(".json"))
        .count();
    assert!(json >= 13, "only {json} JSON fixtures found");
}

#[test]
fn every_fixture_meets_its_expectation() {
    let mut failed = Vec::new();
    for name in fixture_names() {
        if NOT_PAYLOADS.contains(&name.as_str()) {
            continue;
        }
        let outcome = std::panic::catch_unwind(|| check(&name));
        if outcome.is_err() {
            failed.push(name);
        }
    }
    assert!(
        failed.is_empty(),
        "fixtures failing their expectation: {failed:?}"
    );
}

#[test]
fn every_json_fixture_is_valid_json() {
    for name in fixture_names().iter().filter(|n| n.ends_with(".json")) {
        let parsed: Result<Value, _> = serde_json::from_slice(&read(name));
        assert!(parsed.is_ok(), "{name}: {:?}", parsed.err());
    }
}

// ---------------------------------------------------------------------------------------------------
// CMX v2 (and v1, same shape).

fn cmx_v2_sandbox(body: &[u8]) {
    let parsed = cmx_v2::parse(body).expect("v2 sandbox parses");
    let d = only_device(&parsed);
    assert_eq!(d.api, Api::CmxV2);
    assert_eq!(d.mac, "00:00:2a:01:00:46");
    assert_eq!(d.identity, None, "userName \"\" means no 802.1X identity");
    assert_eq!(d.hierarchy, "CiscoCampus>Building 9>IDEAS!");
    assert_eq!(d.campus.as_deref(), Some("CiscoCampus"));
    assert_eq!(d.building.as_deref(), Some("Building 9"));
    assert_eq!(d.floor.as_deref(), Some("IDEAS!"));
    close(d.x, 19.5, "x");
    close(d.y, 74.1, "y");
    assert_eq!(d.unit, Unit::Feet);
    close_opt(d.floor_width, 39.0, "floor_width");
    close_opt(d.floor_length, 74.1, "floor_length");
    assert_eq!(d.floor_ref_id.as_deref(), Some("723413320329068650"));
    assert_eq!(d.ip.as_deref(), Some("10.10.20.229"));
    assert_eq!(d.ssid.as_deref(), Some("test"));
    assert_eq!(d.status, "ASSOCIATED");
    assert_eq!(d.last_seen_seconds, Some(3), "from lastHeardInSeconds");
    close_opt(d.confidence, 160.0, "confidence");
    assert_eq!(d.manufacturer.as_deref(), Some("Trw"));
    assert!(!d.stale);

    let plan = d.floor_plan.as_ref().expect("floor plan");
    assert_eq!(plan.floor_ref_id.as_deref(), Some("723413320329068650"));
    close(plan.width, 39.0, "plan.width");
    close(plan.length, 74.1, "plan.length");
    close(plan.offset_x, 0.0, "plan.offset_x");
    close(plan.offset_y, 0.0, "plan.offset_y");
    assert_eq!(plan.unit, Unit::Feet);
    assert_eq!(
        plan.image_name.as_deref(),
        Some("domain_0_1462212406005.PNG"),
        "the image name keeps its extension case"
    );
}

#[test]
fn cmx_v2_sandbox_client() {
    check("cmx-v2-clients-sandbox.json");
}

fn cmx_v1_eighty_devices(body: &[u8]) {
    let parsed = cmx_v2::parse(body).expect("v1 capture parses with the v2 parser");
    assert_eq!(parsed.devices.len(), 80);
    assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);

    let macs: HashSet<&str> = parsed.devices.iter().map(|d| d.mac.as_str()).collect();
    assert_eq!(macs.len(), 80, "80 distinct MACs");

    // Cross-check every device against its raw record, read independently of the parser.
    let raw: Vec<Value> = serde_json::from_slice(body).expect("JSON array");
    assert_eq!(raw.len(), 80);
    for (d, r) in parsed.devices.iter().zip(&raw) {
        let mac = r["macAddress"].as_str().expect("macAddress");
        assert_eq!(d.mac, mac, "devices keep the answer's order");
        assert!(is_normalised_mac(&d.mac), "{}", d.mac);
        assert_eq!(d.api, Api::CmxV2);
        assert_eq!(d.identity.as_deref(), Some("cisco123"), "{mac}");
        assert_eq!(d.hierarchy, "DevNetCampus>DevNetBuilding>DevNetZone");
        assert_eq!(d.campus.as_deref(), Some("DevNetCampus"));
        assert_eq!(d.building.as_deref(), Some("DevNetBuilding"));
        assert_eq!(d.floor.as_deref(), Some("DevNetZone"));
        assert_eq!(d.floor_ref_id.as_deref(), Some("723413320329068590"));
        assert_eq!(d.ssid.as_deref(), Some("DevNet"));
        assert_eq!(d.status, "ASSOCIATED");
        assert_eq!(d.unit, Unit::Feet);
        close(d.x, r["mapCoordinate"]["x"].as_f64().unwrap(), "x");
        close(d.y, r["mapCoordinate"]["y"].as_f64().unwrap(), "y");
        close_opt(
            d.confidence,
            r["confidenceFactor"].as_f64().unwrap(),
            "confidence",
        );
        assert_eq!(
            d.last_seen_seconds,
            r["statistics"]["maxDetectedRssi"]["lastHeardInSeconds"].as_u64(),
            "{mac}"
        );
        assert_eq!(d.ip.as_deref(), r["ipAddress"][0].as_str(), "{mac}");
        close_opt(d.floor_width, 307.0, "floor_width");
        close_opt(d.floor_length, 81.9, "floor_length");
        // The README: coordinates already lie within width × length.
        assert!((0.0..=307.0).contains(&d.x) && (0.0..=81.9).contains(&d.y));
        let plan = d.floor_plan.as_ref().expect("floor plan");
        assert_eq!(
            plan.image_name.as_deref(),
            Some("domain_0_1421088463647.png"),
            "the image in tests/fixtures"
        );
        assert_eq!(plan.floor_ref_id.as_deref(), Some("723413320329068590"));
    }
    let floors: HashSet<_> = parsed
        .devices
        .iter()
        .map(|d| (d.hierarchy.clone(), d.floor_ref_id.clone()))
        .collect();
    assert_eq!(floors.len(), 1, "all on one floor");
}

#[test]
fn cmx_v1_sandbox_eighty_devices_of_one_user() {
    check("cmx-v1-clients-sandbox-80-devices-one-user.json");
}

fn cmx_floor_offset(body: &[u8]) {
    let parsed = cmx_v2::parse(body).expect("parses");
    let d = only_device(&parsed);
    assert_eq!(d.mac, "18:cf:5e:bb:22:48");
    assert_eq!(d.campus.as_deref(), Some("Ratchasuda College"));
    assert_eq!(d.building.as_deref(), Some("Director Building"));
    assert_eq!(d.floor.as_deref(), Some("Director_FL.1"));
    close(d.x, 145.39458, "x is not shifted by offsetX");
    close(d.y, 191.58163, "y is not shifted by offsetY");
    close_opt(d.floor_width, 344.4882, "floor_width");
    close_opt(d.floor_length, 243.43831, "floor_length");
    assert_eq!(
        d.ip.as_deref(),
        Some("10.34.249.243"),
        "IPv4 preferred over the IPv6 link-local"
    );
    assert_eq!(d.ssid.as_deref(), Some("INRC2017"));
    assert_eq!(d.status, "ASSOCIATED");
    assert_eq!(d.last_seen_seconds, Some(0));
    close_opt(d.confidence, 72.0, "confidence");
    assert_eq!(d.floor_ref_id.as_deref(), Some("730421014739025963"));
    let plan = d.floor_plan.as_ref().expect("floor plan");
    close(plan.offset_x, 0.0, "offset_x");
    close(plan.offset_y, 2.296588, "offset_y kept on the floor plan");
    assert_eq!(plan.unit, Unit::Feet);
    assert_eq!(
        plan.image_name.as_deref(),
        Some("domain_0_1500368087062.jpg")
    );
}

#[test]
fn cmx_floor_offset_is_kept_on_the_plan_not_applied() {
    check("cmx-clients-floor-offset.json");
}

fn cmx_v2_no_rssi_stats(body: &[u8]) {
    let parsed = cmx_v2::parse(body).expect("a single object parses");
    let d = only_device(&parsed);
    assert_eq!(d.mac, "78:4f:43:8a:db:ab");
    // lastLocatedTime 2017-09-19T16:00:58.529+0700 → currentServerTime 2017-10-13T02:07:54.056+0700:
    // 23 days 10:06:55.527 = 2,023,615.527 s, whole seconds 2,023,615.
    assert_eq!(d.last_seen_seconds, Some(2_023_615));
    assert_eq!(d.floor_ref_id.as_deref(), Some("730421014739025963"));
    assert_eq!(d.ip.as_deref(), Some("10.34.250.109"));
    assert_eq!(d.ssid.as_deref(), Some("CMX-TEST"));
    assert_eq!(d.manufacturer, None);
    close(d.x, 205.15771, "x");
    close(d.y, 107.87266, "y");
    close_opt(d.confidence, 288.0, "confidence");
    close_opt(d.floor_width, 344.4882, "floor_width");
    close_opt(d.floor_length, 243.43831, "floor_length");
    let plan = d.floor_plan.as_ref().expect("floor plan");
    assert_eq!(plan.floor_ref_id.as_deref(), Some("730421014739025963"));
    close(plan.offset_y, 2.296588, "offset_y");
}

#[test]
fn cmx_v2_without_rssi_statistics_ages_from_timestamps() {
    check("cmx-v2-client-no-rssi-stats.json");
}

fn cmx_v2_placeholder_types(body: &[u8]) {
    let parsed = cmx_v2::parse(body).expect("the body is JSON of the right outer shape");
    assert!(parsed.devices.is_empty(), "{:?}", parsed.devices);
    assert_eq!(parsed.rejected.len(), 1);
    let reject = &parsed.rejected[0];
    assert_eq!(reject.index, 1);
    assert_eq!(reject.mac, "d1:55:42:c8:e4:61");
    let message = reject.to_string();
    assert!(message.contains("d1:55:42:c8:e4:61"), "{message}");
    assert!(message.contains("mapInfo.floorDimension"), "{message}");
}

#[test]
fn cmx_v2_placeholder_strings_are_a_named_record_error() {
    check("cmx-v2-clients-placeholder-types.json");
}

#[test]
fn cmx_v2_placeholder_record_is_usable_once_the_placeholders_are_gone() {
    // Only the named fields are wrong: without them the same record is a device, `\u003e` included.
    let mut records: Vec<Value> =
        serde_json::from_slice(&read("cmx-v2-clients-placeholder-types.json")).unwrap();
    let record = records[0].as_object_mut().unwrap();
    let map_info = record["mapInfo"].as_object_mut().unwrap();
    map_info.remove("floorDimension");
    map_info.remove("image");
    record["statistics"]
        .as_object_mut()
        .unwrap()
        .remove("maxDetectedRssi");
    let parsed = cmx_v2::parse(&serde_json::to_vec(&records).unwrap()).unwrap();
    let d = only_device(&parsed);
    assert_eq!(d.mac, "d1:55:42:c8:e4:61");
    assert_eq!(d.hierarchy, "MAP>INFO>MAP");
    assert_eq!(
        (
            d.campus.as_deref(),
            d.building.as_deref(),
            d.floor.as_deref()
        ),
        (Some("MAP"), Some("INFO"), Some("MAP"))
    );
    assert_eq!(
        d.ip.as_deref(),
        Some("192.168.241.195"),
        "\"ipv6\" is not an address"
    );
    // 11:40:23.346 → 11:40:32.008 (+0800) = 8.662 s.
    assert_eq!(d.last_seen_seconds, Some(8));
    assert_eq!(d.floor_plan, None);
    close(d.x, 35.71979, "x");
    close(d.y, 161.8946, "y");
}

// ---------------------------------------------------------------------------------------------------
// CMX v3.

fn cmx_v3_sandbox(body: &[u8]) {
    // An hour after lastSeen: lastHeardInSeconds (0) must win over the clock.
    let now = at("2018-07-06T09:04:10.486Z");
    let parsed = cmx_v3::parse(body, now).expect("v3 sandbox parses");
    let d = only_device(&parsed);
    assert_eq!(d.api, Api::CmxV3);
    assert_eq!(d.mac, "f4:8c:50:53:bc:09", "deviceId is the MAC");
    assert_eq!(d.identity.as_deref(), Some("W52910"));
    assert_eq!(d.ssid.as_deref(), Some("wsa"));
    assert_eq!(d.status, "ASSOCIATED", "associated: true");
    assert_eq!(d.ip.as_deref(), Some("172.20.0.59"));
    assert_eq!(
        d.floor_ref_id.as_deref(),
        Some("788149884915780818"),
        "floorRefId as sent, never the lossy floorId number (788149884915780900)"
    );
    assert_eq!(d.hierarchy, "CiscoCampus>Building 9>Level 4");
    assert_eq!(d.campus.as_deref(), Some("CiscoCampus"));
    assert_eq!(d.building.as_deref(), Some("Building 9"));
    assert_eq!(d.floor.as_deref(), Some("Level 4"));
    close(d.x, 84.5761, "x");
    close(d.y, 84.75132, "y");
    assert_eq!(d.unit, Unit::Feet);
    close_opt(d.confidence, 24.0, "confidence");
    assert_eq!(d.manufacturer.as_deref(), Some("Intel Corporate"));
    assert_eq!(d.floor_plan, None, "v3 has no floor plan until resolved");
    assert_eq!(d.floor_width, None);
    assert_eq!(d.floor_length, None);
    assert_eq!(d.last_seen_seconds, Some(0));
}

#[test]
fn cmx_v3_sandbox_flat_record() {
    check("cmx-v3-clients-sandbox.json");
}

#[test]
fn cmx_v3_without_last_heard_ages_from_last_seen() {
    let mut records: Vec<Value> =
        serde_json::from_slice(&read("cmx-v3-clients-sandbox.json")).unwrap();
    records[0]
        .as_object_mut()
        .unwrap()
        .remove("maxDetectedRssi");
    let body = serde_json::to_vec(&records).unwrap();
    // lastSeen is 2018-07-06T16:04:10.486+0800 = 08:04:10.486Z.
    let last_seen = at("2018-07-06T08:04:10.486Z");
    let parsed = cmx_v3::parse(&body, last_seen + TimeDelta::seconds(90)).unwrap();
    assert_eq!(only_device(&parsed).last_seen_seconds, Some(90));
    // A server clock ahead of ours never gives a negative (or huge) age.
    let parsed = cmx_v3::parse(&body, last_seen - TimeDelta::seconds(90)).unwrap();
    assert_eq!(only_device(&parsed).last_seen_seconds, Some(0));
}

// ---------------------------------------------------------------------------------------------------
// MSE.

fn mse_list_paged(body: &[u8]) {
    let parsed = mse::parse(body).expect("MSE list form parses");
    let d = only_device(&parsed);
    assert_eq!(d.api, Api::Mse);
    assert_eq!(d.mac, "ab:ca:dd:fe:10:10");
    assert_eq!(
        d.floor_ref_id.as_deref(),
        Some("4698041219291283488"),
        "an id above 2^53 kept exact"
    );
    assert_eq!(d.status, "PROBING");
    assert_eq!(d.hierarchy, "Area>Build>Floor");
    assert_eq!(d.campus.as_deref(), Some("Area"));
    assert_eq!(d.building.as_deref(), Some("Build"));
    assert_eq!(d.floor.as_deref(), Some("Floor"));
    close(d.x, 5275.3, "x");
    close(d.y, 2420.19, "y");
    assert_eq!(d.unit, Unit::Feet);
    close_opt(d.confidence, 824.0, "confidence");
    close_opt(d.floor_width, 6900.0, "floor_width");
    close_opt(d.floor_length, 5000.0, "floor_length");
    assert_eq!(d.ip, None);
    assert_eq!(d.identity, None);
    // lastLocatedTime 08:54:04.312-0800 → currentServerTime 10:00:26.650-0800 = 3982.338 s.
    assert_eq!(d.last_seen_seconds, Some(3982));
    let plan = d.floor_plan.as_ref().expect("floor plan");
    assert_eq!(plan.floor_ref_id.as_deref(), Some("4698041219291283488"));
    close(plan.offset_x, 21360.9, "offset_x");
    close(plan.offset_y, 19891.6, "offset_y");
    assert_eq!(
        plan.image_name.as_deref(),
        Some("domain_5_1350620105694.jpg")
    );
}

#[test]
fn mse_paged_list_form() {
    check("mse-clients-list-paged.json");
}

#[test]
fn mse_list_page_reads_the_paging_and_the_same_device() {
    let body = read("mse-clients-list-paged.json");
    let page = mse::parse_list_page(&body).expect("a list page");
    assert_eq!(page.total_pages, Some(1));
    assert_eq!(page.entries, 1);
    assert_eq!(page.parsed, mse::parse(&body).unwrap());
    assert_eq!(page.parsed.devices[0].building.as_deref(), Some("Build"));
    // The single-client form is no list page.
    let list: Value = serde_json::from_slice(&body).unwrap();
    let single = serde_json::json!({ "WirelessClientLocation": list["Locations"]["entries"][0] });
    assert!(matches!(
        mse::parse_list_page(&serde_json::to_vec(&single).unwrap()),
        Err(ParseError::Shape(_))
    ));
}

#[test]
fn mse_single_lookup_form_gives_the_same_device_as_the_list() {
    let list: Value = serde_json::from_slice(&read("mse-clients-list-paged.json")).unwrap();
    let entry = list["Locations"]["entries"][0].clone();
    let from_list = mse::parse(&read("mse-clients-list-paged.json")).unwrap();
    for single in [
        serde_json::json!({ "WirelessClientLocation": entry }),
        serde_json::json!({ "WirelessClientLocation": [entry] }),
    ] {
        let from_single = mse::parse(&serde_json::to_vec(&single).unwrap()).unwrap();
        assert_eq!(from_single, from_list);
    }
}

// ---------------------------------------------------------------------------------------------------
// Payloads of other protocols, and the image.

/// What every location parser made of a body: `Err`, or the number of devices / floors it found.
fn every_parser(body: &[u8]) -> Vec<(&'static str, Result<usize, ParseError>)> {
    let now = at("2024-01-01T00:00:00Z");
    vec![
        ("cmx_v2", cmx_v2::parse(body).map(|p| p.devices.len())),
        ("cmx_v3", cmx_v3::parse(body, now).map(|p| p.devices.len())),
        ("mse", mse::parse(body).map(|p| p.devices.len())),
        ("maps catalog", maps::parse_catalog(body).map(|f| f.len())),
        (
            "maps floor info",
            maps::parse_floor_info(body, "Campus>Building>Floor").map(|f| usize::from(f.is_some())),
        ),
    ]
}

fn foreign(name: &str, body: &[u8]) {
    let value: Result<Value, _> = serde_json::from_slice(body);
    assert!(value.is_ok(), "{name} is not valid JSON: {:?}", value.err());
    for (parser, outcome) in every_parser(body) {
        match outcome {
            Ok(0) => {}
            Err(err) => assert!(!err.to_string().is_empty(), "{name}/{parser}: empty error"),
            Ok(n) => panic!("{name}: {parser} found {n} devices/floors in a foreign payload"),
        }
    }
}

#[test]
fn foreign_payloads_are_not_taken_for_locations() {
    let foreign: Vec<&str> = EXPECTATIONS
        .iter()
        .filter(|(_, expect)| matches!(expect, Expect::Foreign))
        .map(|(name, _)| *name)
        .collect();
    assert_eq!(foreign.len(), 6);
    for name in foreign {
        check(name);
    }
}

fn png(body: &[u8]) {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    assert!(body.starts_with(SIGNATURE), "not a PNG");
    // IHDR is the first chunk: width and height, big-endian, at bytes 16..24.
    assert_eq!(&body[12..16], b"IHDR");
    let width = u32::from_be_bytes(body[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(body[20..24].try_into().unwrap());
    assert_eq!((width, height), (2038, 544));
}

#[test]
fn floor_image_is_a_png_of_the_recorded_size() {
    check("cmx-floor-image-domain_0_1421088463647.png");
}
