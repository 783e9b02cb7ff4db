//! The wire parsers never panic, whatever a server (or something pretending to be one) sends, and
//! whatever they do return is usable: finite coordinates, normalised MACs, sane floor plans.
//!
//! Three kinds of input: arbitrary bytes; arbitrary JSON built from the real field names of CMX v2, CMX
//! v3, MSE and the map configuration (plus random keys, extreme numbers, timestamps and MACs); and the
//! recorded fixtures, mutated (a field replaced or removed), truncated and bit-flipped.

use std::path::Path;
use std::sync::OnceLock;

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{FileFailurePersistence, TestCaseError};
use serde_json::{Map, Number, Value};
use whereis_location::wire::{cmx_v2, cmx_v3, maps, mse, parse_timestamp, Parsed};
use whereis_location::{Device, Username};

/// Field names of every format whereis reads, so random objects hit the real code paths.
const FIELD_NAMES: &[&str] = &[
    // CMX v2 / v1
    "macAddress",
    "mapInfo",
    "mapHierarchyString",
    "floorRefId",
    "floorDimension",
    "length",
    "width",
    "height",
    "offsetX",
    "offsetY",
    "unit",
    "image",
    "imageName",
    "mapCoordinate",
    "x",
    "y",
    "z",
    "confidenceFactor",
    "statistics",
    "currentServerTime",
    "lastLocatedTime",
    "firstLocatedTime",
    "maxDetectedRssi",
    "lastHeardInSeconds",
    "ipAddress",
    "userName",
    "ssId",
    "dot11Status",
    "manufacturer",
    // CMX v3
    "deviceId",
    "locationMapHierarchy",
    "locationCoordinate",
    "associated",
    "username",
    "ssid",
    "lastSeen",
    "floorId",
    // MSE
    "WirelessClientLocation",
    "Locations",
    "entries",
    "totalPages",
    "MapInfo",
    "Dimension",
    "Image",
    "MapCoordinate",
    "Statistics",
    "GeoCoordinate",
    "lattitude",
    // map configuration
    "campuses",
    "buildingList",
    "floorList",
    "name",
    "aesUidString",
    "aesUid",
    "dimension",
    "hierarchyName",
];

const TIMESTAMPS: &[&str] = &[
    "2017-11-23T15:30:41.662+0700",
    "2017-11-23T15:30:36.280+0700",
    "2013-12-11T10:00:26.650-0800",
    "2020-12-16 22:10:24.468+0000",
    "2018-07-06T08:04:10.486Z",
    "1530864250486",
    "0",
    "9223372036854775807",
    "99999999999999999999999",
    "+262143-12-31T23:59:59.999+0000",
    "-262143-01-01T00:00:00.000-2359",
    "+262143-12-31T23:59:59.999-2359",
    "-262144-01-01T00:00:00Z",
    "2017-02-30T00:00:00.000+0000",
    "2017-11-23T25:61:61.000+9999",
    "1970-01-01T00:00:00.000+0000",
    "2017-11-23T15:30:41.662+07:00",
    "yesterday",
    "",
];

const MACS: &[&str] = &[
    "00:11:22:33:44:55",
    "00:11:22:AA:BB:CC",
    "0011.22aa.bbcc",
    "00-11-22-33-44-55",
    "001122334455",
    "00:11:22:33:44",
    "00:11:22:33:44:55:66",
    "zz:zz:zz:zz:zz:zz",
    "é0:11:22:33:44:55",
    "::::",
    "",
];

const WORDS: &[&str] = &[
    "FEET",
    "METER",
    "meters",
    "furlong",
    "ASSOCIATED",
    "probing",
    "Campus>Building 5>Level 3",
    "A>B>C>D>E",
    ">>>",
    "10.0.0.7",
    "fe80::1",
    "ipv6",
    "4698041219291283488",
    "CORP\\jdoe",
];

/// Valid JSON number literals a `serde_json::Value` cannot hold exactly (beyond u64/i64, underflowing),
/// spliced into the text after serialising. Out-of-range ones (`1e400`) make the whole body invalid, so
/// they have their own test below rather than spoiling most generated bodies.
const RAW_NUMBERS: &[&str] = &[
    "1e-400",
    "123456789012345678901234567890",
    "-9223372036854775809",
    "18446744073709551616",
    "-0",
    "0.0000000000000000000000000000001",
];
const RAW_MARK: &str = "\u{1}raw:";

fn number(n: f64) -> Value {
    Number::from_f64(n).map_or(Value::Null, Value::Number)
}

fn pick(list: &'static [&'static str]) -> impl Strategy<Value = String> {
    proptest::sample::select(list).prop_map(str::to_owned)
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(number),
        proptest::sample::select(vec![
            0.0,
            -0.0,
            0.5,
            -1.0,
            -999.0,
            1e308,
            -1e308,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            5e-324,
            9007199254740993.0,
            1.8446744073709552e19,
        ])
        .prop_map(number),
        (-1e6..1e6f64).prop_map(number),
        pick(TIMESTAMPS).prop_map(Value::String),
        pick(MACS).prop_map(Value::String),
        pick(WORDS).prop_map(Value::String),
        pick(RAW_NUMBERS).prop_map(|n| Value::String(format!("{RAW_MARK}{n}"))),
        ".{0,24}".prop_map(Value::String),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => pick(FIELD_NAMES),
        1 => "[a-zA-Z]{1,10}",
        1 => ".{0,6}",
    ]
}

fn json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 96, 10, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((key(), inner), 0..10)
                .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A unit: usually one servers send, sometimes anything.
fn unit() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => pick(&["FEET", "METER", "feet", "meters"]).prop_map(Value::String),
        1 => leaf(),
    ]
}

/// A coordinate object: usually numbers, sometimes anything.
fn coordinate() -> impl Strategy<Value = Value> {
    let axis = prop_oneof![9 => (-1e4..1e4f64).prop_map(number), 1 => leaf()];
    (axis.clone(), axis, proptest::option::of(unit())).prop_map(|(x, y, unit)| {
        let mut fields = Map::new();
        fields.insert("x".into(), x);
        fields.insert("y".into(), y);
        if let Some(unit) = unit {
            fields.insert("unit".into(), unit);
        }
        Value::Object(fields)
    })
}

/// A floor dimension object with real keys and mostly plausible values.
fn dimension() -> impl Strategy<Value = Value> {
    let size = prop_oneof![9 => (-10.0..1e4f64).prop_map(number), 1 => leaf()];
    (
        size.clone(),
        size.clone(),
        size.clone(),
        size,
        proptest::option::of(unit()),
    )
        .prop_map(|(width, length, offset_x, offset_y, unit)| {
            let mut fields = Map::new();
            fields.insert("width".into(), width);
            fields.insert("length".into(), length);
            fields.insert("offsetX".into(), offset_x);
            fields.insert("offsetY".into(), offset_y);
            if let Some(unit) = unit {
                fields.insert("unit".into(), unit);
            }
            Value::Object(fields)
        })
}

/// A record with the keys a v2, v3 or MSE client (or a map floor) must have, so that parsers get past
/// the required fields and the checks on returned devices are exercised; other known keys are random.
fn record_like() -> impl Strategy<Value = Value> {
    let mac = prop_oneof![
        4 => pick(&["00:11:22:33:44:55", "00:11:22:AA:BB:CC", "0011.22aa.bbcc"]).prop_map(Value::String),
        2 => pick(MACS).prop_map(Value::String),
        1 => leaf(),
    ];
    let extras = proptest::collection::vec((pick(FIELD_NAMES), json()), 0..2);
    let heard = prop_oneof![9 => (-10.0..1e7f64).prop_map(number), 1 => leaf()];
    (
        0..4usize,
        mac,
        coordinate(),
        dimension(),
        proptest::option::of(pick(TIMESTAMPS)),
        proptest::option::of(pick(TIMESTAMPS)),
        proptest::option::of(heard),
        extras,
    )
        .prop_map(|(kind, mac, coordinate, dimension, located, server, heard, extras)| {
            let mut record = Map::new();
            for (key, value) in extras {
                record.insert(key, value);
            }
            let statistics = serde_json::json!({
                "lastLocatedTime": located, "currentServerTime": server,
                "maxDetectedRssi": {"lastHeardInSeconds": heard},
            });
            match kind {
                0 => {
                    record.insert("macAddress".into(), mac);
                    record.insert("mapCoordinate".into(), coordinate);
                    record.insert(
                        "mapInfo".into(),
                        serde_json::json!({"mapHierarchyString": "C>B>F", "floorRefId": "1",
                            "floorDimension": dimension, "image": {"imageName": "f.png"}}),
                    );
                    record.insert("statistics".into(), statistics);
                }
                1 => {
                    record.insert("deviceId".into(), mac);
                    record.insert("locationCoordinate".into(), coordinate);
                    record.insert("lastSeen".into(), located.map_or(Value::Null, Value::String));
                    record.insert("maxDetectedRssi".into(), serde_json::json!({"lastHeardInSeconds": heard}));
                }
                2 => {
                    record.insert("macAddress".into(), mac);
                    record.insert("MapCoordinate".into(), coordinate);
                    record.insert(
                        "MapInfo".into(),
                        serde_json::json!({"mapHierarchyString": "C>B>F", "floorRefId": 4698041219291283488u64,
                            "Dimension": dimension, "Image": {"imageName": "f.jpg"}}),
                    );
                    record.insert("Statistics".into(), statistics);
                }
                _ => {
                    record.insert("name".into(), Value::String("F".into()));
                    record.insert("dimension".into(), dimension);
                }
            }
            Value::Object(record)
        })
}

/// Serialises, then turns the marked strings into number literals serde_json cannot represent.
fn to_body(value: &Value) -> Vec<u8> {
    let mut text = serde_json::to_string(value).expect("a Value serialises");
    let escaped = serde_json::to_string(RAW_MARK).expect("string");
    let escaped = escaped.trim_end_matches('"');
    for raw in RAW_NUMBERS {
        text = text.replace(&format!("{escaped}{raw}\""), raw);
    }
    text.into_bytes()
}

fn fixtures_dir() -> &'static Path {
    static DIR: OnceLock<std::path::PathBuf> = OnceLock::new();
    DIR.get_or_init(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures"))
}

/// Every fixture file (name, bytes), README excluded.
fn fixture_files() -> &'static [(String, Vec<u8>)] {
    static FILES: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    FILES.get_or_init(|| {
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(fixtures_dir())
            .expect("tests/fixtures")
            .map(|entry| entry.expect("entry").path())
            .filter(|path| path.file_name().is_some_and(|name| name != "README.md"))
            .map(|path| {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                let bytes = std::fs::read(&path).expect("fixture readable");
                (name, bytes)
            })
            .collect();
        files.sort();
        assert!(files.len() >= 14, "fixtures missing: {}", files.len());
        files
    })
}

/// JSON documents to mutate: every JSON fixture, plus map-configuration bodies (none is on record).
fn templates() -> &'static [Value] {
    static TEMPLATES: OnceLock<Vec<Value>> = OnceLock::new();
    TEMPLATES.get_or_init(|| {
        let mut values: Vec<Value> = fixture_files()
            .iter()
            .filter(|(name, _)| name.ends_with(".json"))
            .map(|(_, bytes)| serde_json::from_slice(bytes).expect("fixture is JSON"))
            .collect();
        values.push(serde_json::json!({"campuses": [{"name": "HQ", "buildingList": [{"name": "Building 5",
            "floorList": [
                {"name": "Level 3", "aesUidString": "723413320329068650",
                 "dimension": {"width": 300, "length": 150, "offsetX": 0, "offsetY": 2.3, "unit": "FEET"},
                 "image": {"imageName": "l3.png"}},
                {"name": "Level 4", "aesUid": 4698041219291283488u64, "hierarchyName": "HQ>Building 5>Level 4",
                 "floorDimension": {"width": 30.5, "length": 15, "unit": "METER"}}
            ]}]}]}));
        values.push(serde_json::json!({"name": "Level 3", "aesUid": "1",
            "dimension": {"width": 30, "length": 15, "unit": "METER"}, "image": {"imageName": "x.PNG"}}));
        values.push(serde_json::json!({"WirelessClientLocation": {
            "macAddress": "00:11:22:33:44:55", "ipAddress": "10.1.2.3", "userName": "CORP\\jdoe",
            "MapInfo": {"mapHierarchyString": "HQ>B1>F2", "floorRefId": 4698041219291283488u64,
                        "Dimension": {"length": 100, "width": 200.5, "offsetX": 21360.9, "unit": "FEET"},
                        "Image": {"imageName": "domain_5_1.jpg"}},
            "MapCoordinate": {"x": 10, "y": 20.5, "unit": "FEET"},
            "Statistics": {"currentServerTime": "2013-12-11T10:00:26.650-0800",
                           "lastLocatedTime": "2013-12-11T10:00:06.650-0800"}}}));
        values
    })
}

/// JSON pointers of every node of a document (the root excluded).
fn pointers(value: &Value, prefix: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(fields) => {
            for (key, child) in fields {
                let pointer = format!("{prefix}/{}", key.replace('~', "~0").replace('/', "~1"));
                out.push(pointer.clone());
                pointers(child, &pointer, out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                let pointer = format!("{prefix}/{i}");
                out.push(pointer.clone());
                pointers(child, &pointer, out);
            }
        }
        _ => {}
    }
}

/// One change to a document: the node at a chosen pointer is replaced, or removed from its object.
#[derive(Debug, Clone)]
enum Mutation {
    Replace(Index, Value),
    Remove(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), json()).prop_map(|(at, value)| Mutation::Replace(at, value)),
        1 => any::<Index>().prop_map(Mutation::Remove),
    ]
}

fn mutate(document: &mut Value, change: &Mutation) {
    let mut all = Vec::new();
    pointers(document, "", &mut all);
    if all.is_empty() {
        return;
    }
    match change {
        Mutation::Replace(at, value) => {
            if let Some(node) = document.pointer_mut(at.get::<String>(&all)) {
                *node = value.clone();
            }
        }
        Mutation::Remove(at) => {
            let pointer = at.get::<String>(&all);
            let (parent, last) = pointer.rsplit_once('/').expect("pointer has a slash");
            let key = last.replace("~1", "/").replace("~0", "~");
            if let Some(Value::Object(fields)) = document.pointer_mut(parent) {
                fields.remove(&key);
            }
        }
    }
}

/// How one byte of a fixture is damaged: any bit pattern, or a byte that keeps JSON plausible (so the
/// body often still parses and the damage reaches the field mapping).
#[derive(Debug, Clone)]
enum Flip {
    Xor(u8),
    Set(u8),
}

fn flip() -> impl Strategy<Value = Flip> {
    prop_oneof![
        (1u8..=255).prop_map(Flip::Xor),
        proptest::sample::select(b"0123456789-+.eE\"{}[],: nulltrue\\afAF".to_vec())
            .prop_map(Flip::Set),
    ]
}

fn now_strategy() -> impl Strategy<Value = DateTime<Utc>> {
    prop_oneof![
        Just(Utc.timestamp_millis_opt(1_530_864_250_486).unwrap()),
        // Anywhere in chrono's range, including its edges.
        (-8_334_601_228_800_000i64..8_210_266_876_799_999i64)
            .prop_map(|ms| Utc.timestamp_millis_opt(ms).single().unwrap_or_default()),
        Just(DateTime::<Utc>::MIN_UTC),
        Just(DateTime::<Utc>::MAX_UTC),
    ]
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

fn check_device(parser: &str, device: &Device) -> Result<(), TestCaseError> {
    prop_assert!(
        device.x.is_finite() && device.y.is_finite(),
        "{parser}: non-finite position {device:?}"
    );
    prop_assert!(
        is_normalised_mac(&device.mac),
        "{parser}: MAC not normalised: {:?}",
        device.mac
    );
    prop_assert!(!device.status.is_empty(), "{parser}: empty status");
    if let Some(confidence) = device.confidence {
        prop_assert!(confidence.is_finite(), "{parser}: confidence {confidence}");
    }
    if let Some(plan) = &device.floor_plan {
        prop_assert!(
            plan.width.is_finite()
                && plan.width > 0.0
                && plan.length.is_finite()
                && plan.length > 0.0,
            "{parser}: unusable floor plan kept: {plan:?}"
        );
        prop_assert!(plan.offset_x.is_finite() && plan.offset_y.is_finite());
        prop_assert_eq!(device.floor_width, Some(plan.width));
        prop_assert_eq!(device.floor_length, Some(plan.length));
    } else {
        prop_assert_eq!(device.floor_width, None);
        prop_assert_eq!(device.floor_length, None);
    }
    Ok(())
}

fn check_parsed(parser: &str, parsed: &Parsed) -> Result<(), TestCaseError> {
    for device in &parsed.devices {
        check_device(parser, device)?;
    }
    for reject in &parsed.rejected {
        prop_assert!(
            reject.mac == "?" || is_normalised_mac(&reject.mac),
            "{parser}: reject names a raw MAC {:?}",
            reject.mac
        );
        prop_assert!(reject.index >= 1);
        prop_assert!(!reject.to_string().is_empty());
    }
    Ok(())
}

/// Feeds one body to every parser. A panic fails the case (proptest catches and shrinks it).
fn every_parser(body: &[u8], now: DateTime<Utc>) -> Result<(), TestCaseError> {
    if let Ok(parsed) = cmx_v2::parse(body) {
        check_parsed("cmx_v2", &parsed)?;
    }
    if let Ok(parsed) = cmx_v3::parse(body, now) {
        check_parsed("cmx_v3", &parsed)?;
        for device in &parsed.devices {
            prop_assert!(device.floor_plan.is_none(), "v3 never carries a floor plan");
        }
    }
    if let Ok(parsed) = mse::parse(body) {
        check_parsed("mse", &parsed)?;
    }
    if let Ok(page) = mse::parse_list_page(body) {
        check_parsed("mse list page", &page.parsed)?;
        prop_assert_eq!(
            page.entries,
            page.parsed.devices.len() + page.parsed.rejected.len()
        );
    }
    if let Ok(record) = whereis_location::wire::spaces::parse_record(body) {
        if let whereis_location::wire::spaces::FirehoseEvent::Location(update) = record.event {
            prop_assert!(
                is_normalised_mac(&update.mac),
                "spaces mac {:?}",
                update.mac
            );
            for value in [update.x, update.y, update.confidence]
                .into_iter()
                .flatten()
            {
                prop_assert!(value.is_finite(), "spaces: a position is finite or absent");
            }
        }
    }
    if let Ok(post) = whereis_location::wire::meraki::parse_scanning(body) {
        for observation in &post.observations {
            prop_assert!(
                is_normalised_mac(&observation.mac),
                "meraki mac {:?}",
                observation.mac
            );
            if let Some(location) = &observation.location {
                for value in [location.x, location.y, location.variance]
                    .into_iter()
                    .flatten()
                {
                    prop_assert!(value.is_finite(), "meraki: a position is finite or absent");
                }
            }
        }
    }
    if let Ok(floors) = maps::parse_catalog(body) {
        for floor in &floors {
            prop_assert!(floor.plan.width.is_finite() && floor.plan.width > 0.0);
            prop_assert!(floor.plan.length.is_finite() && floor.plan.length > 0.0);
        }
    }
    for hierarchy in ["Campus>Building>Floor", "", ">", "A"] {
        if let Ok(Some(floor)) = maps::parse_floor_info(body, hierarchy) {
            prop_assert!(floor.plan.width.is_finite() && floor.plan.width > 0.0);
            prop_assert!(floor.plan.length.is_finite() && floor.plan.length > 0.0);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        // 512 by default, quick enough for every run; PROPTEST_CASES=100000 for a deep search.
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(512),
        // Integration tests have no lib.rs beside them: keep failures next to this file.
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..512), now in now_strategy()) {
        every_parser(&body, now)?;
    }

    #[test]
    fn arbitrary_json(value in json(), now in now_strategy()) {
        every_parser(&to_body(&value), now)?;
    }

    #[test]
    fn arbitrary_records_in_every_envelope(
        records in proptest::collection::vec(prop_oneof![json(), record_like()], 0..4),
        now in now_strategy(),
    ) {
        // The outer shapes each protocol answers with, around random records.
        let list = Value::Array(records.clone());
        let first = records.first().cloned().unwrap_or(Value::Null);
        let bodies = [
            list.clone(),
            first.clone(),
            serde_json::json!({"WirelessClientLocation": list}),
            serde_json::json!({"WirelessClientLocation": first}),
            serde_json::json!({"Locations": {"totalPages": 1, "entries": list}}),
            serde_json::json!({"campuses": [{"name": "C", "buildingList": [{"name": "B", "floorList": list}]}]}),
        ];
        for body in &bodies {
            every_parser(&to_body(body), now)?;
        }
    }

    #[test]
    fn mutated_fixtures(
        template in any::<Index>(),
        changes in proptest::collection::vec(mutation(), 1..5),
        now in now_strategy(),
    ) {
        let mut document = template.get(templates()).clone();
        for change in &changes {
            mutate(&mut document, change);
        }
        every_parser(&to_body(&document), now)?;
    }

    #[test]
    fn truncated_and_flipped_fixtures(
        file in any::<Index>(),
        cut in proptest::option::of(any::<Index>()),
        flips in proptest::collection::vec((any::<Index>(), flip()), 0..6),
        now in now_strategy(),
    ) {
        let (_, bytes) = file.get(fixture_files());
        let mut body = bytes.clone();
        for (at, flip) in &flips {
            let i = at.index(body.len());
            body[i] = match flip {
                Flip::Xor(mask) => body[i] ^ mask,
                Flip::Set(byte) => *byte,
            };
        }
        if let Some(cut) = cut {
            body.truncate(cut.index(body.len() + 1));
        }
        every_parser(&body, now)?;
    }

    #[test]
    fn timestamps_never_panic(text in prop_oneof![pick(TIMESTAMPS), ".{0,40}", "[0-9]{1,25}"]) {
        let _ = parse_timestamp(&text);
    }

    #[test]
    fn usernames_are_checked_without_panicking(text in prop_oneof![".{0,300}", "[ -~]{250,260}"]) {
        if let Ok(user) = Username::parse(&text) {
            let name = user.as_str();
            prop_assert!(!name.is_empty());
            prop_assert!(!name.chars().any(char::is_whitespace), "{name:?}");
            prop_assert!(!name.chars().any(char::is_control), "{name:?}");
            prop_assert!(name.chars().count() <= Username::MAX_LEN);
        }
    }
}

/// Every fixture, cut at every byte (not random: a deterministic sweep), through every parser.
#[test]
fn every_prefix_of_every_json_fixture() {
    let now = Utc.timestamp_millis_opt(1_530_864_250_486).unwrap();
    for (name, bytes) in fixture_files() {
        if !name.ends_with(".json") || bytes.len() > 8192 {
            continue;
        }
        for cut in 0..=bytes.len() {
            if let Err(err) = every_parser(&bytes[..cut], now) {
                panic!("{name} cut at {cut}: {err}");
            }
        }
    }
}

/// Numbers beyond f64 in a field the parsers read: the body is rejected as JSON, never a panic or an
/// infinite coordinate.
#[test]
fn out_of_range_numbers_are_json_errors() {
    let now = Utc.timestamp_millis_opt(1_530_864_250_486).unwrap();
    for (name, bytes) in fixture_files() {
        let text = String::from_utf8_lossy(bytes);
        for field in ["\"x\"", "\"lastHeardInSeconds\"", "\"width\""] {
            let Some(at) = text.find(field) else { continue };
            let mut broken = text.to_string();
            broken.insert_str(at + field.len(), ": 1e400, \"was\"");
            if let Err(err) = every_parser(broken.as_bytes(), now) {
                panic!("{name} with {field} = 1e400: {err}");
            }
            let body = broken.as_bytes();
            assert!(cmx_v2::parse(body).is_err(), "{name}");
            assert!(cmx_v3::parse(body, now).is_err(), "{name}");
            assert!(mse::parse(body).is_err(), "{name}");
        }
    }
}
