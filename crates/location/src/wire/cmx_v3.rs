//! CMX 10.x Location API v3: `GET /api/location/v3/clients?username=U` → array of **flat** records.
//!
//! v3 records carry no floor dimensions and no image: the caller resolves `floorRefId` (or the
//! hierarchy names) through the map configuration ([`super::maps`]).

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::{
    id_string, json_body, kind_of, located_device, map_records, non_empty, parse_timestamp,
    preferred_ip, record, seconds, time::seconds_between, ParseError, Parsed, WireCoordinate,
};
use crate::model::{Api, Device};

/// Path of the client query.
pub const CLIENTS_PATH: &str = "/api/location/v3/clients";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Client {
    device_id: String,
    #[serde(default)]
    location_map_hierarchy: Option<String>,
    location_coordinate: WireCoordinate,
    #[serde(default, deserialize_with = "id_string")]
    floor_ref_id: Option<String>,
    #[serde(default)]
    associated: Option<bool>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    ssid: Option<String>,
    #[serde(default, deserialize_with = "preferred_ip")]
    ip_address: Option<String>,
    #[serde(default)]
    confidence_factor: Option<f64>,
    #[serde(default)]
    last_seen: Option<String>,
    #[serde(default)]
    max_detected_rssi: Option<Rssi>,
    #[serde(default)]
    manufacturer: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rssi {
    #[serde(default)]
    last_heard_in_seconds: Option<f64>,
}

/// Parses a v3 client answer. Devices carry `floor_ref_id` but no floor plan yet. `now` is used only
/// when a record gives `lastSeen` but no `lastHeardInSeconds`.
pub fn parse(body: &[u8], now: DateTime<Utc>) -> Result<Parsed, ParseError> {
    let records = match json_body(body)? {
        None => return Ok(Parsed::default()),
        Some(Value::Array(items)) => items,
        Some(item @ Value::Object(_)) => vec![item],
        Some(other) => {
            return Err(ParseError::Shape(format!(
                "expected an array of clients, got {}",
                kind_of(&other)
            )))
        }
    };
    Ok(map_records(records, &["deviceId"], |value| {
        convert(value, now)
    }))
}

fn convert(value: Value, now: DateTime<Utc>) -> Result<Device, String> {
    let client: Client = record(value)?;
    let mut device = located_device(
        Api::CmxV3,
        &client.device_id,
        client.location_map_hierarchy,
        client.location_coordinate.read("locationCoordinate")?,
    )?;
    device.floor_ref_id = client.floor_ref_id;
    device.identity = non_empty(client.username);
    device.ip = client.ip_address;
    device.ssid = non_empty(client.ssid);
    device.status = match client.associated {
        Some(true) => "ASSOCIATED",
        Some(false) => "PROBING",
        None => "UNKNOWN",
    }
    .to_owned();
    device.confidence = client.confidence_factor.filter(|c| c.is_finite());
    device.manufacturer = non_empty(client.manufacturer);
    device.last_seen_seconds = seconds(
        client
            .max_detected_rssi
            .and_then(|rssi| rssi.last_heard_in_seconds),
    )
    .or_else(|| {
        let last_seen = parse_timestamp(client.last_seen.as_deref()?)?;
        Some(seconds_between(last_seen, now))
    });
    Ok(device)
}
