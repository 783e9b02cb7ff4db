//! Legacy MSE 8.x Context Aware API: `GET /api/contextaware/v1/location/clients/U` with
//! `Accept: application/json` → `{"WirelessClientLocation": {…}}` (or an array of them), capitalised
//! nested keys, and no `lastHeardInSeconds`.

use serde::Deserialize;
use serde_json::Value;

use super::client::{ClientRecord, FloorFields};
use super::{
    id_string, json_body, kind_of, map_records, preferred_ip, record, ParseError, Parsed,
    WireCoordinate, WireDimension, WireImage,
};
use crate::model::{Api, Device};

/// Path prefix of the single-client query; the username follows as one path segment.
pub const CLIENT_PATH: &str = "/api/contextaware/v1/location/clients/";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Client {
    mac_address: String,
    #[serde(default, rename = "MapInfo", alias = "mapInfo")]
    map_info: Option<MapInfo>,
    #[serde(rename = "MapCoordinate", alias = "mapCoordinate")]
    map_coordinate: WireCoordinate,
    #[serde(default)]
    confidence_factor: Option<f64>,
    #[serde(default, rename = "Statistics", alias = "statistics")]
    statistics: Option<Statistics>,
    #[serde(default, deserialize_with = "preferred_ip")]
    ip_address: Option<String>,
    #[serde(default)]
    user_name: Option<String>,
    #[serde(default, rename = "ssId", alias = "ssid")]
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
    #[serde(
        default,
        rename = "Dimension",
        alias = "dimension",
        alias = "floorDimension"
    )]
    dimension: Option<WireDimension>,
    #[serde(default, rename = "Image", alias = "image")]
    image: Option<WireImage>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Statistics {
    #[serde(default)]
    current_server_time: Option<String>,
    #[serde(default)]
    last_located_time: Option<String>,
}

/// Parses an MSE answer: the single-client form (one object or an array) or the paged list form.
pub fn parse(body: &[u8]) -> Result<Parsed, ParseError> {
    let Some(value) = json_body(body)? else {
        return Ok(Parsed::default());
    };
    let records = match value {
        Value::Object(mut top) => {
            if let Some(found) = top.remove("WirelessClientLocation") {
                match found {
                    Value::Array(items) => items,
                    Value::Null => Vec::new(),
                    item => vec![item],
                }
            } else if let Some(mut locations) = top.remove("Locations") {
                match locations.get_mut("entries").map(Value::take) {
                    Some(Value::Array(items)) => items,
                    Some(Value::Null) | None => Vec::new(),
                    Some(other) => {
                        return Err(ParseError::Shape(format!(
                            "Locations.entries is {}, expected an array",
                            kind_of(&other)
                        )))
                    }
                }
            } else {
                let keys: Vec<&String> = top.keys().take(5).collect();
                return Err(ParseError::Shape(format!(
                    "no WirelessClientLocation in the answer (keys: {keys:?})"
                )));
            }
        }
        other => {
            return Err(ParseError::Shape(format!(
                "expected an object with WirelessClientLocation, got {}",
                kind_of(&other)
            )))
        }
    };
    Ok(map_records(records, &["macAddress"], convert))
}

fn convert(value: Value) -> Result<Device, String> {
    let client: Client = record(value)?;
    let (last_located_time, current_server_time) = client
        .statistics
        .map(|stats| (stats.last_located_time, stats.current_server_time))
        .unwrap_or_default();
    ClientRecord {
        mac_address: client.mac_address,
        floor: client
            .map_info
            .map(|info| FloorFields {
                hierarchy: info.map_hierarchy_string,
                floor_ref_id: info.floor_ref_id,
                dimension: info.dimension,
                image_name: info.image.and_then(|image| image.image_name),
            })
            .unwrap_or_default(),
        coordinate: (client.map_coordinate, "MapCoordinate"),
        confidence_factor: client.confidence_factor,
        ip_address: client.ip_address,
        user_name: client.user_name,
        ssid: client.ssid,
        dot11_status: client.dot11_status,
        manufacturer: client.manufacturer,
        // MSE has no `lastHeardInSeconds`: freshness comes from its timestamps alone.
        last_heard_in_seconds: None,
        last_located_time,
        current_server_time,
    }
    .into_device(Api::Mse)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str = r#"{"macAddress":"00:11:22:33:44:55","dot11Status":"ASSOCIATED","ssId":"CORP",
        "ipAddress":"10.1.2.3","userName":"CORP\\jdoe",
        "MapInfo":{"mapHierarchyString":"HQ>Building 1>Floor 2","floorRefId":4698041219291283488,
                   "Dimension":{"length":100,"width":200.5,"offsetX":21360.9,"offsetY":0,"unit":"FEET"},
                   "Image":{"imageName":"domain_5_1.jpg"}},
        "MapCoordinate":{"x":10,"y":20.5,"unit":"FEET"},
        "Statistics":{"currentServerTime":"2013-12-11T10:00:26.650-0800","lastLocatedTime":"2013-12-11T10:00:06.650-0800"}}"#;

    #[test]
    fn single_object_form() {
        let parsed = parse(format!(r#"{{"WirelessClientLocation":{ONE}}}"#).as_bytes()).unwrap();
        assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
        let device = &parsed.devices[0];
        assert_eq!(device.ip.as_deref(), Some("10.1.2.3"));
        assert_eq!(device.identity.as_deref(), Some("CORP\\jdoe"));
        assert_eq!(device.last_seen_seconds, Some(20));
        let plan = device.floor_plan.as_ref().unwrap();
        assert_eq!(plan.floor_ref_id.as_deref(), Some("4698041219291283488"));
        assert_eq!(plan.offset_x, 21360.9);
        assert_eq!(plan.image_name.as_deref(), Some("domain_5_1.jpg"));
    }

    #[test]
    fn array_form() {
        let parsed =
            parse(format!(r#"{{"WirelessClientLocation":[{ONE},{ONE}]}}"#).as_bytes()).unwrap();
        assert_eq!(parsed.devices.len(), 2);
    }

    #[test]
    fn wrong_shapes_are_errors() {
        assert!(matches!(parse(b"[]"), Err(ParseError::Shape(_))));
        assert!(matches!(parse(b"{\"Other\":1}"), Err(ParseError::Shape(_))));
        assert_eq!(parse(b"").unwrap(), Parsed::default());
        assert_eq!(
            parse(br#"{"WirelessClientLocation":null}"#).unwrap(),
            Parsed::default()
        );
    }
}
