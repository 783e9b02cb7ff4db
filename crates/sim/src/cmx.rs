//! CMX 10.x client APIs: v2 (nested client objects) and v3 (flat records), shaped like the fixtures.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::data::{stamp, Client, Now, ServerData};

/// Where the simulated controller says it is (a documentation address).
const CONTROLLER: &str = "192.0.2.10";

/// `GET /api/location/v2/clients[?username=U][&macAddress=M]`.
pub(crate) async fn v2_clients(
    State(data): State<Arc<ServerData>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let now = Now::new();
    let list = filtered(&data, &q).map(|c| v2_client(c, &now)).collect();
    array_or_no_content(list)
}

/// `GET /api/location/v3/clients[?username=U][&macAddress=M]` (kind `cmx` only).
pub(crate) async fn v3_clients(
    State(data): State<Arc<ServerData>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let now = Now::new();
    let list = filtered(&data, &q).map(|c| v3_client(c, &now)).collect();
    array_or_no_content(list)
}

fn filtered<'a>(
    data: &'a ServerData,
    q: &'a HashMap<String, String>,
) -> impl Iterator<Item = &'a Client> {
    let mac = q.get("macAddress").map(|m| m.to_ascii_lowercase());
    data.matching(q.get("username").map(String::as_str))
        .filter(move |c| mac.as_ref().is_none_or(|m| &c.mac == m))
}

/// CMX answers 204 with an empty body when nothing matches.
fn array_or_no_content(list: Vec<Value>) -> Response {
    if list.is_empty() {
        StatusCode::NO_CONTENT.into_response()
    } else {
        Json(Value::Array(list)).into_response()
    }
}

fn ip_json(c: &Client) -> Value {
    if c.ip.is_empty() {
        Value::Null
    } else {
        json!(c.ip)
    }
}

fn rssi_json(c: &Client) -> Value {
    json!({
        "apMacAddress": c.ap_mac(),
        "band": "IEEE_802_11_A",
        "slot": 1,
        "rssi": -48 - (c.confidence / 4.0).min(40.0) as i64,
        "antennaIndex": 0,
        "lastHeardInSeconds": c.last_heard_seconds,
    })
}

/// The `mapInfo.image` / map-configuration `image` object (size 0×0, as real servers often send).
pub(crate) fn image_json(image_name: &str) -> Value {
    json!({
        "imageName": image_name,
        "zoomLevel": 4,
        "width": 0,
        "height": 0,
        "size": 0,
        "maxResolution": 0,
        "colorDepth": 0,
    })
}

/// `floorDimension` / `dimension`.
pub(crate) fn dimension_json(f: &crate::FloorSpec) -> Value {
    json!({
        "length": f.length,
        "width": f.width,
        "height": f.height,
        "offsetX": f.offset_x,
        "offsetY": f.offset_y,
        "unit": f.unit.as_str(),
    })
}

/// One v2 client object, like `crates/location/tests/fixtures/cmx-v2-clients-sandbox.json`.
pub(crate) fn v2_client(c: &Client, now: &Now) -> Value {
    let last = now.ago(c.last_heard_seconds);
    let first = now.ago(c.last_heard_seconds.saturating_add(3 * 3600));
    let unit = c.floor.unit.as_str();
    json!({
        "macAddress": c.mac,
        "mapInfo": {
            "mapHierarchyString": c.hierarchy(),
            "floorRefId": c.floor.floor_ref_id,
            "floorDimension": dimension_json(&c.floor),
            "image": image_json(&c.floor.image),
            "tagList": [],
        },
        "mapCoordinate": {"x": c.x, "y": c.y, "z": 0, "unit": unit},
        "currentlyTracked": true,
        "confidenceFactor": c.confidence,
        "statistics": {
            "currentServerTime": stamp(now.now()),
            "firstLocatedTime": stamp(first),
            "lastLocatedTime": stamp(last),
            "maxDetectedRssi": rssi_json(c),
        },
        "historyLogReason": null,
        "geoCoordinate": null,
        "rawLocation": {"rawX": -999, "rawY": -999, "unit": unit},
        "networkStatus": "ACTIVE",
        "changedOn": last.timestamp_millis(),
        "ipAddress": ip_json(c),
        "userName": c.identity,
        "ssId": c.ssid,
        "sourceTimestamp": null,
        "band": "IEEE_802_11_A",
        "apMacAddress": c.ap_mac(),
        "dot11Status": c.status,
        "manufacturer": c.manufacturer,
        "areaGlobalIdList": [1, 2, 3],
        "detectingControllers": CONTROLLER,
        "bytesSent": 1024 * (c.index as u64 + 1),
        "bytesReceived": 4096 * (c.index as u64 + 1),
        "guestUser": false,
    })
}

/// The imprecise `floorId` real v3 servers send: the id through an f64, printed without exponent.
fn lossy_floor_id(id: u64) -> u64 {
    format!("{}", id as f64).parse().unwrap_or(id)
}

/// One flat v3 record, like `crates/location/tests/fixtures/cmx-v3-clients-sandbox.json`.
pub(crate) fn v3_client(c: &Client, now: &Now) -> Value {
    let last = now.ago(c.last_heard_seconds);
    let unit = c.floor.unit.as_str();
    json!({
        "notificationType": "locationupdate",
        "subscriptionName": "CMX_Api_Server_Notification_1",
        "eventId": 570_000 + c.index as u64,
        "locationMapHierarchy": c.hierarchy(),
        "locationCoordinate": {"x": c.x, "y": c.y, "z": 0, "unit": unit},
        "geoCoordinate": {"latitude": -999, "longitude": -999, "unit": "DEGREES"},
        "confidenceFactor": c.confidence,
        "apMacAddress": c.ap_mac(),
        "associated": c.associated(),
        "username": c.identity,
        "ipAddress": ip_json(c),
        "ssid": c.ssid,
        "band": "IEEE_802_11_A",
        "floorId": lossy_floor_id(c.floor.ref_id()),
        "floorRefId": c.floor.floor_ref_id,
        "entity": "WIRELESS_CLIENTS",
        "deviceId": c.mac,
        "lastSeen": stamp(last),
        "rawLocation": {"rawX": -999, "rawY": -999, "unit": unit},
        "tagVendorData": null,
        "locComputeType": "RSSI",
        "manufacturer": c.manufacturer,
        "maxDetectedRssi": rssi_json(c),
        "timestamp": last.timestamp_millis(),
        "sourceNotification": CONTROLLER,
        "sourceNotificationKey": format!("{CONTROLLER},2"),
        "notificationTime": now.now().timestamp_millis().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_id_loses_precision_like_real_servers() {
        assert_eq!(lossy_floor_id(788149884915780818), 788149884915780900);
        assert_eq!(lossy_floor_id(12345), 12345);
        assert_eq!(lossy_floor_id(u64::MAX), u64::MAX);
    }
}
