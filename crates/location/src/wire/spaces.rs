//! Cisco Spaces Firehose event records: one JSON object per line of the NDJSON stream
//! (`GET /api/partners/v1/firehose/events`). The envelope carries `recordUid` (for dedupe),
//! `recordTimestamp` (epoch ms, for replay with `fromTimestamp`) and `eventType`; the payload sits
//! under the camelCase name of the event type (`deviceLocationUpdate`, `deviceExit`, …).
//!
//! Only what a live device table needs is read: location updates, exits, keep-alives. Coordinates
//! may be the string `"NaN"` (read as unknown) and `mapId` may be empty (the caller reuses the map
//! learned for the same `locationId`).

use serde::Deserialize;
use serde_json::Value;

use super::{record, ParseError};
use crate::model::normalize_mac;

/// One record of the stream.
#[derive(Debug, Clone, PartialEq)]
pub struct FirehoseRecord {
    /// `recordUid`: the same record can arrive twice after a replay.
    pub uid: String,
    /// `recordTimestamp`, epoch milliseconds.
    pub timestamp_ms: i64,
    /// What it says.
    pub event: FirehoseEvent,
}

/// What a record says.
#[derive(Debug, Clone, PartialEq)]
pub enum FirehoseEvent {
    /// The stream is alive (sent about every 15 s).
    KeepAlive,
    /// A device was located.
    Location(Box<LiveUpdate>),
    /// A device left (`DEVICE_EXIT`, or `DEVICE_PRESENCE` with `DEVICE_EXIT_EVENT`): forget its MAC.
    Exit {
        /// The device's MAC, normalised.
        mac: String,
    },
    /// Any other event type (not used).
    Other(String),
}

/// A device position as a push source reports it, before it is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveUpdate {
    /// The MAC, normalised (`aa:bb:cc:dd:ee:ff`).
    pub mac: String,
    /// The identity as sent (`CORP\jdoe`, `jdoe@corp.example`), when there is one.
    pub identity: Option<String>,
    /// The username the identity names ([`username_of_identity`]).
    pub username: Option<String>,
    /// The floor map's id, when given.
    pub map_id: Option<String>,
    /// The innermost location's id (to find its map when `map_id` is missing).
    pub location_id: Option<String>,
    /// Names along the location hierarchy, outermost first (campus, building, floor when typed so).
    pub campus: Option<String>,
    /// The building's name.
    pub building: Option<String>,
    /// The floor's name.
    pub floor: Option<String>,
    /// Position on the map, `None` when the source sent none or `"NaN"`.
    pub x: Option<f64>,
    /// Position on the map.
    pub y: Option<f64>,
    /// Accuracy as the source states it.
    pub confidence: Option<f64>,
    /// The network the device is on.
    pub ssid: Option<String>,
    /// The device's IPv4 address.
    pub ip: Option<String>,
    /// When the device was last heard, epoch milliseconds.
    pub last_seen_ms: Option<i64>,
}

/// The username an 802.1X identity names: `DOMAIN\` and `@realm` removed, lower case; `None` for
/// an empty identity.
pub fn username_of_identity(identity: &str) -> Option<String> {
    let bare = identity.trim();
    let bare = bare.rsplit('\\').next().unwrap_or(bare);
    let bare = bare.split('@').next().unwrap_or(bare).trim();
    (!bare.is_empty()).then(|| bare.to_lowercase())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    record_uid: String,
    record_timestamp: i64,
    event_type: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct WireUpdate {
    device: WireDevice,
    location: Option<WireLocation>,
    ssid: Option<String>,
    raw_user_id: Option<String>,
    last_seen: Option<i64>,
    map_id: Option<String>,
    x_pos: Option<Value>,
    y_pos: Option<Value>,
    confidence_factor: Option<Value>,
    ipv4: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct WireDevice {
    mac_address: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct WireLocation {
    location_id: Option<String>,
    name: Option<String>,
    inferred_location_types: Vec<String>,
    parent: Option<Box<WireLocation>>,
}

/// Reads one line of the stream. A blank line is a [`ParseError::Shape`] the caller skips.
pub fn parse_record(line: &[u8]) -> Result<FirehoseRecord, ParseError> {
    let value: Value =
        serde_json::from_slice(line).map_err(|err| ParseError::Json(err.to_string()))?;
    let envelope: Envelope = record(value.clone()).map_err(ParseError::Shape)?;
    let event = match envelope.event_type.as_str() {
        "KEEP_ALIVE" => FirehoseEvent::KeepAlive,
        "DEVICE_LOCATION_UPDATE" => {
            let payload = value.get("deviceLocationUpdate").cloned().ok_or_else(|| {
                ParseError::Shape("DEVICE_LOCATION_UPDATE without deviceLocationUpdate".to_owned())
            })?;
            let wire: WireUpdate = record(payload)
                .map_err(|err| ParseError::Shape(format!("deviceLocationUpdate.{err}")))?;
            FirehoseEvent::Location(Box::new(update(wire)?))
        }
        "DEVICE_EXIT" => exit(&value, "deviceExit")?,
        "DEVICE_PRESENCE" => {
            let presence = value.get("devicePresence");
            let kind = presence
                .and_then(|p| p.get("presenceEventType"))
                .and_then(Value::as_str);
            if kind == Some("DEVICE_EXIT_EVENT") {
                exit(&value, "devicePresence")?
            } else {
                FirehoseEvent::Other(envelope.event_type.clone())
            }
        }
        other => FirehoseEvent::Other(other.to_owned()),
    };
    Ok(FirehoseRecord {
        uid: envelope.record_uid,
        timestamp_ms: envelope.record_timestamp,
        event,
    })
}

fn exit(value: &Value, key: &str) -> Result<FirehoseEvent, ParseError> {
    let mac = value
        .get(key)
        .and_then(|p| p.get("device"))
        .and_then(|d| d.get("macAddress"))
        .and_then(Value::as_str)
        .and_then(normalize_mac)
        .ok_or_else(|| {
            ParseError::Shape(format!("{key}.device.macAddress: missing or not a MAC"))
        })?;
    Ok(FirehoseEvent::Exit { mac })
}

fn update(wire: WireUpdate) -> Result<LiveUpdate, ParseError> {
    let mac = wire
        .device
        .mac_address
        .as_deref()
        .and_then(normalize_mac)
        .ok_or_else(|| {
            ParseError::Shape("deviceLocationUpdate.device.macAddress: missing or not a MAC".into())
        })?;
    let identity = wire.raw_user_id.filter(|id| !id.trim().is_empty());
    let username = identity.as_deref().and_then(username_of_identity);
    let (mut campus, mut building, mut floor) = (None, None, None);
    let mut location_id = None;
    let mut level = wire.location.as_ref();
    // The innermost location comes first; a parent chain of a few levels, bounded anyway.
    for depth in 0..16 {
        let Some(location) = level else { break };
        if depth == 0 {
            location_id = location.location_id.clone().filter(|id| !id.is_empty());
        }
        let name = location.name.clone().filter(|n| !n.trim().is_empty());
        let types = &location.inferred_location_types;
        if floor.is_none() && types.iter().any(|t| t == "FLOOR") {
            floor = name.clone();
        } else if building.is_none() && types.iter().any(|t| t == "BUILDING") {
            building = name.clone();
        } else if campus.is_none() && types.iter().any(|t| t == "CAMPUS") {
            campus = name;
        }
        level = location.parent.as_deref();
    }
    Ok(LiveUpdate {
        mac,
        identity,
        username,
        map_id: wire.map_id.filter(|id| !id.trim().is_empty()),
        location_id,
        campus,
        building,
        floor,
        x: number(wire.x_pos.as_ref()),
        y: number(wire.y_pos.as_ref()),
        confidence: number(wire.confidence_factor.as_ref()),
        ssid: wire.ssid.filter(|s| !s.is_empty()),
        ip: wire.ipv4.filter(|s| !s.is_empty()),
        last_seen_ms: wire.last_seen.filter(|t| *t > 0),
    })
}

/// A finite number, from a JSON number or a numeric string; `"NaN"`, infinities and anything else
/// are unknown (Spaces and Meraki both send positions either way).
pub(super) fn number(value: Option<&Value>) -> Option<f64> {
    let n = match value? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }?;
    n.is_finite().then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str =
        include_str!("../../tests/fixtures/spaces-firehose-device-location-update.json");

    #[test]
    fn the_published_location_update_field_for_field() {
        let record = parse_record(SAMPLE.trim().as_bytes()).expect("parses");
        assert_eq!(record.uid, "event-f3e19217");
        assert_eq!(record.timestamp_ms, 1_641_977_166_586);
        let FirehoseEvent::Location(update) = record.event else {
            panic!("a location update: {:?}", record.event);
        };
        assert_eq!(update.mac, "00:39:a7:8f:4a:00");
        assert_eq!(update.identity, None, "rawUserId is empty in the sample");
        assert_eq!(update.username, None);
        assert_eq!(update.map_id, None, "mapId is empty in the sample");
        assert_eq!(update.location_id.as_deref(), Some("location-ad0a997"));
        assert_eq!(update.floor.as_deref(), Some("Location - 4081f653"));
        assert_eq!(update.building.as_deref(), Some("Location - 6861a1f0"));
        assert_eq!(update.campus.as_deref(), Some("Location - f9756373"));
        assert_eq!(update.x, Some(372.79483));
        assert_eq!(update.y, Some(210.72083));
        assert_eq!(update.confidence, Some(328.0));
        assert_eq!(update.ssid.as_deref(), Some("#XXXeMXXlWXXi"));
        assert_eq!(update.ip.as_deref(), Some("192.168.36.244"));
        assert_eq!(update.last_seen_ms, Some(1_641_975_908_000));
    }

    #[test]
    fn identities_become_usernames() {
        assert_eq!(username_of_identity("CORP\\JDoe").as_deref(), Some("jdoe"));
        assert_eq!(
            username_of_identity("jdoe@corp.example").as_deref(),
            Some("jdoe")
        );
        assert_eq!(username_of_identity(" jdoe ").as_deref(), Some("jdoe"));
        assert_eq!(username_of_identity(""), None);
        assert_eq!(username_of_identity("CORP\\"), None);
    }

    #[test]
    fn keep_alives_exits_and_other_events() {
        let keep = br#"{"recordUid":"event-85b84f15","recordTimestamp":1605502585236,"spacesTenantId":"","spacesTenantName":"","partnerTenantId":"","eventType":"KEEP_ALIVE"}"#;
        assert_eq!(
            parse_record(keep).expect("keep-alive").event,
            FirehoseEvent::KeepAlive
        );
        let exit = br#"{"recordUid":"u2","recordTimestamp":2,"eventType":"DEVICE_EXIT","deviceExit":{"device":{"macAddress":"AA:BB:CC:DD:EE:01"}}}"#;
        assert_eq!(
            parse_record(exit).expect("exit").event,
            FirehoseEvent::Exit {
                mac: "aa:bb:cc:dd:ee:01".into()
            }
        );
        let presence = br#"{"recordUid":"u3","recordTimestamp":3,"eventType":"DEVICE_PRESENCE","devicePresence":{"presenceEventType":"DEVICE_EXIT_EVENT","device":{"macAddress":"aa:bb:cc:dd:ee:02"}}}"#;
        assert_eq!(
            parse_record(presence).expect("presence exit").event,
            FirehoseEvent::Exit {
                mac: "aa:bb:cc:dd:ee:02".into()
            }
        );
        let entry = br#"{"recordUid":"u4","recordTimestamp":4,"eventType":"DEVICE_PRESENCE","devicePresence":{"presenceEventType":"DEVICE_ENTRY_EVENT"}}"#;
        assert_eq!(
            parse_record(entry).expect("presence entry").event,
            FirehoseEvent::Other("DEVICE_PRESENCE".into())
        );
        let other = br#"{"recordUid":"u5","recordTimestamp":5,"eventType":"IOT_TELEMETRY"}"#;
        assert_eq!(
            parse_record(other).expect("other").event,
            FirehoseEvent::Other("IOT_TELEMETRY".into())
        );
    }

    #[test]
    fn nan_positions_and_domain_identities() {
        let line = br#"{"recordUid":"u6","recordTimestamp":6,"eventType":"DEVICE_LOCATION_UPDATE","deviceLocationUpdate":{"device":{"macAddress":"AA-BB-CC-DD-EE-03"},"rawUserId":"CORP\\jdoe","mapId":"map-1","xPos":"NaN","yPos":12.5,"confidenceFactor":"NaN","lastSeen":0}}"#;
        let FirehoseEvent::Location(update) = parse_record(line).expect("parses").event else {
            panic!("a location update");
        };
        assert_eq!(update.mac, "aa:bb:cc:dd:ee:03");
        assert_eq!(update.identity.as_deref(), Some("CORP\\jdoe"));
        assert_eq!(update.username.as_deref(), Some("jdoe"));
        assert_eq!(update.map_id.as_deref(), Some("map-1"));
        assert_eq!(
            (update.x, update.y, update.confidence),
            (None, Some(12.5), None)
        );
        assert_eq!(update.last_seen_ms, None);
    }

    #[test]
    fn bad_lines_are_errors_never_panics() {
        for line in [
            &b""[..],
            b"   ",
            b"{",
            b"[]",
            b"null",
            br#"{"recordUid":"u","eventType":"KEEP_ALIVE"}"#,
            br#"{"recordUid":"u","recordTimestamp":"x","eventType":"KEEP_ALIVE"}"#,
            br#"{"recordUid":"u","recordTimestamp":1,"eventType":"DEVICE_LOCATION_UPDATE"}"#,
            br#"{"recordUid":"u","recordTimestamp":1,"eventType":"DEVICE_LOCATION_UPDATE","deviceLocationUpdate":{"device":{}}}"#,
            br#"{"recordUid":"u","recordTimestamp":1,"eventType":"DEVICE_LOCATION_UPDATE","deviceLocationUpdate":{"device":{"macAddress":"zz"}}}"#,
            br#"{"recordUid":"u","recordTimestamp":1,"eventType":"DEVICE_EXIT","deviceExit":{}}"#,
        ] {
            assert!(parse_record(line).is_err(), "{}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn a_deep_location_chain_is_read_to_a_bound() {
        let mut location = serde_json::json!({"locationId": "l0", "name": "Floor", "inferredLocationTypes": ["FLOOR"]});
        for depth in 1..200 {
            location = serde_json::json!({"locationId": format!("l{depth}"), "name": "x", "inferredLocationTypes": ["ZONE"], "parent": location});
        }
        let line = serde_json::json!({"recordUid": "u", "recordTimestamp": 1, "eventType": "DEVICE_LOCATION_UPDATE",
            "deviceLocationUpdate": {"device": {"macAddress": "aa:bb:cc:dd:ee:04"}, "location": location}});
        // serde_json's recursion limit or the walk's bound stops it; either way no panic.
        let _ = parse_record(line.to_string().as_bytes());
    }
}
