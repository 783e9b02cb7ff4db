//! Legacy MSE 8.x Context Aware API: `GET /api/contextaware/v1/location/clients/U` with
//! `Accept: application/json` → `{"WirelessClientLocation": {…}}` (or an array of them), capitalised
//! nested keys, and no `lastHeardInSeconds`.

use serde::Deserialize;
use serde_json::Value;

use super::cmx_v2::{kind_of, Image};
use super::{
    age, id_string, json_body, located_device, map_records, non_empty, preferred_ip, record,
    ParseError, Parsed, WireCoordinate, WireDimension,
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
    image: Option<Image>,
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
    let map_info = client.map_info;
    let hierarchy = map_info
        .as_ref()
        .and_then(|info| info.map_hierarchy_string.clone());
    let mut device = located_device(
        Api::Mse,
        &client.mac_address,
        hierarchy,
        client.map_coordinate.read("MapCoordinate")?,
    )?;
    if let Some(info) = map_info {
        device.floor_ref_id = info.floor_ref_id.clone();
        let image = info.image.and_then(|image| image.image_name);
        if let Some(plan) = info
            .dimension
            .and_then(|dim| dim.floor_plan(info.floor_ref_id, image))
        {
            device.set_floor_plan(plan);
        }
    }
    device.identity = non_empty(client.user_name);
    device.ip = client.ip_address;
    device.ssid = non_empty(client.ssid);
    device.status = non_empty(client.dot11_status)
        .map(|s| s.to_ascii_uppercase())
        .unwrap_or_else(|| "UNKNOWN".to_owned());
    device.confidence = client.confidence_factor.filter(|c| c.is_finite());
    device.manufacturer = non_empty(client.manufacturer);
    device.last_seen_seconds = client.statistics.and_then(|stats| {
        age(
            stats.last_located_time.as_deref(),
            stats.current_server_time.as_deref(),
        )
    });
    Ok(device)
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
