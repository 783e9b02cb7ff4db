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
/// Path of the paged client list (`?page=N&pageSize=M`, pages from 1, at most 1000 per page).
pub const LIST_PATH: &str = "/api/contextaware/v1/location/clients";
/// The largest `pageSize` the list accepts.
pub const MAX_PAGE_SIZE: usize = 1000;

/// One page of the client list: its devices, and how many pages the list has.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ListPage {
    /// The page's devices and unusable records.
    pub parsed: Parsed,
    /// `Locations.totalPages`, when the server gives a usable one.
    pub total_pages: Option<u64>,
    /// How many entries the page held, usable or not.
    pub entries: usize,
}

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

/// Parses one page of the list form `{"Locations": {"totalPages", "currentPage", "pageSize",
/// "entries": [...]}}`. An empty body is an empty page; any other shape (the single-client form
/// included) is a [`ParseError`].
pub fn parse_list_page(body: &[u8]) -> Result<ListPage, ParseError> {
    let Some(value) = json_body(body)? else {
        return Ok(ListPage::default());
    };
    let mut locations = match value {
        Value::Object(mut top) => match top.remove("Locations") {
            Some(Value::Object(locations)) => locations,
            Some(other) => {
                return Err(ParseError::Shape(format!(
                    "Locations is {}, expected an object",
                    kind_of(&other)
                )))
            }
            None => {
                let keys: Vec<&String> = top.keys().take(5).collect();
                return Err(ParseError::Shape(format!(
                    "no Locations in the client list (keys: {keys:?})"
                )));
            }
        },
        other => {
            return Err(ParseError::Shape(format!(
                "expected an object with Locations, got {}",
                kind_of(&other)
            )))
        }
    };
    let total_pages = locations.get("totalPages").and_then(page_count);
    let records = match locations.remove("entries") {
        Some(Value::Array(items)) => items,
        Some(Value::Null) | None => Vec::new(),
        Some(other) => {
            return Err(ParseError::Shape(format!(
                "Locations.entries is {}, expected an array",
                kind_of(&other)
            )))
        }
    };
    let entries = records.len();
    Ok(ListPage {
        parsed: map_records(records, &["macAddress"], convert),
        total_pages,
        entries,
    })
}

/// A page count sent as a number or a string of digits.
fn page_count(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
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
    fn list_page_gives_its_devices_and_the_page_count() {
        let body = format!(
            r#"{{"Locations":{{"totalPages":"3","currentPage":2,"pageSize":2,"entries":[{ONE},{{"macAddress":"zz"}}]}}}}"#
        );
        let page = parse_list_page(body.as_bytes()).unwrap();
        assert_eq!(page.total_pages, Some(3));
        assert_eq!(page.entries, 2);
        assert_eq!(page.parsed.devices.len(), 1);
        assert_eq!(page.parsed.rejected.len(), 1);
        assert_eq!(
            page.parsed.devices[0].building.as_deref(),
            Some("Building 1")
        );
    }

    #[test]
    fn a_list_page_of_another_shape_is_an_error() {
        for body in [
            format!(r#"{{"WirelessClientLocation":{ONE}}}"#),
            r#"{"Locations":[]}"#.to_owned(),
            r#"{"Locations":{"entries":{}}}"#.to_owned(),
            "[]".to_owned(),
        ] {
            assert!(
                matches!(parse_list_page(body.as_bytes()), Err(ParseError::Shape(_))),
                "{body}"
            );
        }
        assert!(matches!(
            parse_list_page(br#"{"Locations":{"entries":[{"mac"#),
            Err(ParseError::Json(_))
        ));
        assert_eq!(parse_list_page(b"").unwrap(), ListPage::default());
        let no_count =
            parse_list_page(br#"{"Locations":{"totalPages":-1,"entries":null}}"#).unwrap();
        assert_eq!((no_count.total_pages, no_count.entries), (None, 0));
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
