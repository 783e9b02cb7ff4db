//! CMX 10.x Location API v2: `GET /api/location/v2/clients?username=U` → array of client objects
//! (204 with an empty body, or `[]`, when nobody matches).

use serde::Deserialize;
use serde_json::Value;

use super::client::{ClientRecord, FloorFields};
use super::{
    id_string, json_body, kind_of, map_records, preferred_ip, record, ParseError, Parsed,
    WireCoordinate, WireDimension, WireImage,
};
use crate::model::{Api, Device};

/// Path of the client query.
pub const CLIENTS_PATH: &str = "/api/location/v2/clients";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Client {
    mac_address: String,
    #[serde(default)]
    map_info: Option<MapInfo>,
    map_coordinate: WireCoordinate,
    #[serde(default)]
    confidence_factor: Option<f64>,
    #[serde(default)]
    statistics: Option<Statistics>,
    #[serde(default, deserialize_with = "preferred_ip")]
    ip_address: Option<String>,
    #[serde(default)]
    user_name: Option<String>,
    #[serde(default, rename = "ssId")]
    ssid: Option<String>,
    #[serde(default)]
    dot11_status: Option<String>,
    #[serde(default)]
    manufacturer: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MapInfo {
    #[serde(default)]
    map_hierarchy_string: Option<String>,
    #[serde(default, deserialize_with = "id_string")]
    floor_ref_id: Option<String>,
    #[serde(default)]
    floor_dimension: Option<WireDimension>,
    #[serde(default)]
    image: Option<WireImage>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Statistics {
    #[serde(default)]
    current_server_time: Option<String>,
    #[serde(default)]
    last_located_time: Option<String>,
    #[serde(default)]
    max_detected_rssi: Option<Rssi>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rssi {
    #[serde(default)]
    last_heard_in_seconds: Option<f64>,
}

/// Parses a v2 client answer.
pub fn parse(body: &[u8]) -> Result<Parsed, ParseError> {
    let records = match json_body(body)? {
        None => return Ok(Parsed::default()),
        Some(Value::Array(items)) => items,
        // A single client object (some proxies unwrap one-element arrays).
        Some(item @ Value::Object(_)) => vec![item],
        Some(other) => {
            return Err(ParseError::Shape(format!(
                "expected an array of clients, got {}",
                kind_of(&other)
            )))
        }
    };
    Ok(map_records(records, &["macAddress"], convert))
}

fn convert(value: Value) -> Result<Device, String> {
    let client: Client = record(value)?;
    let stats = client.statistics;
    let last_heard = stats
        .as_ref()
        .and_then(|stats| stats.max_detected_rssi.as_ref())
        .and_then(|rssi| rssi.last_heard_in_seconds);
    let (last_located_time, current_server_time) = stats
        .map(|stats| (stats.last_located_time, stats.current_server_time))
        .unwrap_or_default();
    ClientRecord {
        mac_address: client.mac_address,
        floor: client
            .map_info
            .map(|info| FloorFields {
                hierarchy: info.map_hierarchy_string,
                floor_ref_id: info.floor_ref_id,
                dimension: info.floor_dimension,
                image_name: info.image.and_then(|image| image.image_name),
            })
            .unwrap_or_default(),
        coordinate: (client.map_coordinate, "mapCoordinate"),
        confidence_factor: client.confidence_factor,
        ip_address: client.ip_address,
        user_name: client.user_name,
        ssid: client.ssid,
        dot11_status: client.dot11_status,
        manufacturer: client.manufacturer,
        last_heard_in_seconds: last_heard,
        last_located_time,
        current_server_time,
    }
    .into_device(Api::CmxV2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Unit;

    #[test]
    fn minimal_record_with_float_and_int_numbers() {
        let body = br#"[{"macAddress":"00:11:22:33:44:55","mapCoordinate":{"x":12,"y":4.5,"unit":"METER"},
            "mapInfo":{"mapHierarchyString":"Building 5>Level 3","floorDimension":{"width":30,"length":20.5,"unit":"METER"}},
            "ipAddress":null,"dot11Status":"probing","someNewField":{"a":1}}]"#;
        let parsed = parse(body).unwrap();
        assert!(parsed.rejected.is_empty());
        let device = &parsed.devices[0];
        assert_eq!(device.x, 12.0);
        assert_eq!(device.unit, Unit::Meter);
        assert_eq!(device.building.as_deref(), Some("Building 5"));
        assert_eq!(device.floor.as_deref(), Some("Level 3"));
        assert_eq!(device.floor_length, Some(20.5));
        assert_eq!(device.status, "PROBING");
        assert_eq!(device.ip, None);
        assert_eq!(device.last_seen_seconds, None);
    }

    #[test]
    fn empty_answers() {
        assert_eq!(parse(b"").unwrap(), Parsed::default());
        assert_eq!(parse(b"[]").unwrap(), Parsed::default());
        assert!(matches!(parse(b"{}").unwrap().rejected.len(), 1));
        assert!(matches!(parse(b"42"), Err(ParseError::Shape(_))));
    }

    #[test]
    fn one_bad_record_does_not_hide_the_others() {
        let body = br#"[{"macAddress":"00:11:22:33:44:55","mapCoordinate":{"x":1,"y":2}},
                        {"macAddress":"00:11:22:33:44:66","mapCoordinate":{"x":"one","y":2}}]"#;
        let parsed = parse(body).unwrap();
        assert_eq!(parsed.devices.len(), 1);
        assert_eq!(parsed.rejected.len(), 1);
        let error = parsed.rejected[0].to_string();
        assert!(error.contains("00:11:22:33:44:66"), "{error}");
        assert!(error.contains("mapCoordinate.x"), "{error}");
    }
}
