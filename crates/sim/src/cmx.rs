//! CMX 10.x client APIs: v2 (nested client objects, paged on request) and v3 (flat records, filtered,
//! never paged), shaped like the fixtures.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::data::{stamp, Client, Now, Placement, ServerData};

/// Where the simulated controller says it is (a documentation address).
const CONTROLLER: &str = "192.0.2.10";

/// Clients per page of the v2 list when only `page` is given.
const DEFAULT_PAGE_SIZE: usize = 1000;
/// The largest v2 `pageSize` served.
const MAX_PAGE_SIZE: usize = 1000;
/// The filters the v3 API knows; any other query parameter is answered 400, as the v3 API server does.
const V3_FILTERS: &[&str] = &[
    "username",
    "macAddress",
    "ipAddress",
    "ssid",
    "manufacturer",
    "floorRefId",
    "mapHierarchy",
    "associatedOnly",
    "probingOnly",
];

/// `GET /api/location/v2/clients[?username=U][&macAddress=M][&page=N&pageSize=M]`: every matching
/// client, or with `page`/`pageSize` one page of them (pages from 1; 204 past the last).
pub(crate) async fn v2_clients(
    State(data): State<Arc<ServerData>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let now = Now::new();
    let matching = filtered(&data, &q);
    let list = match page_of(&q) {
        Some((page, size)) => matching
            .skip((page - 1).saturating_mul(size))
            .take(size)
            .map(|c| v2_client(c, &now))
            .collect(),
        None => matching.map(|c| v2_client(c, &now)).collect(),
    };
    array_or_no_content(list)
}

/// `(page, pageSize)` when the query asks for a page; unreadable numbers fall back to the defaults.
fn page_of(q: &HashMap<String, String>) -> Option<(usize, usize)> {
    if !q.contains_key("page") && !q.contains_key("pageSize") {
        return None;
    }
    let number = |key: &str| q.get(key).and_then(|v| v.trim().parse::<usize>().ok());
    let size = number("pageSize")
        .unwrap_or(DEFAULT_PAGE_SIZE)
        .clamp(1, MAX_PAGE_SIZE);
    Some((number("page").unwrap_or(1).max(1), size))
}

/// `GET /api/location/v3/clients[?FILTER=VALUE…]` (kind `cmx` only): every client matching all the
/// filters, in one array (v3 does not page). `floorRefId` matches exactly, `mapHierarchy` is a
/// substring of the hierarchy, `associatedOnly=true` / `probingOnly=true` pick by status.
pub(crate) async fn v3_clients(
    State(data): State<Arc<ServerData>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if q.keys().any(|key| !V3_FILTERS.contains(&key.as_str())) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"success": false, "error": {"message": "Unknown filter parameter being used"}})),
        )
            .into_response();
    }
    let now = Now::new();
    let flag = |key: &str| q.get(key).is_some_and(|v| v == "true");
    let list = filtered(&data, &q)
        .filter(|c| {
            let here = c.here();
            q.get("floorRefId")
                .is_none_or(|id| *id == here.floor.floor_ref_id)
                && q.get("mapHierarchy")
                    .is_none_or(|part| here.hierarchy().contains(part.as_str()))
                && q.get("ipAddress").is_none_or(|ip| c.ip.contains(ip))
                && q.get("ssid").is_none_or(|ssid| *ssid == c.ssid)
                && q.get("manufacturer")
                    .is_none_or(|m| c.manufacturer.as_ref() == Some(m))
                && (!flag("associatedOnly") || c.associated())
                && (!flag("probingOnly") || !c.associated())
        })
        .map(|c| v3_client(c, &now))
        .collect();
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

fn rssi_json(c: &Client, at: &Placement) -> Value {
    json!({
        "apMacAddress": c.ap_mac(at),
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
/// Writing it moves a moving device on (see [`Client::answer`]).
pub(crate) fn v2_client(c: &Client, now: &Now) -> Value {
    let at = c.answer();
    let last = now.ago(c.last_heard_seconds);
    let first = now.ago(c.last_heard_seconds.saturating_add(3 * 3600));
    let unit = at.floor.unit.as_str();
    json!({
        "macAddress": c.mac,
        "mapInfo": {
            "mapHierarchyString": at.hierarchy(),
            "floorRefId": at.floor.floor_ref_id,
            "floorDimension": dimension_json(&at.floor),
            "image": image_json(&at.floor.image),
            "tagList": [],
        },
        "mapCoordinate": {"x": at.x, "y": at.y, "z": 0, "unit": unit},
        "currentlyTracked": true,
        "confidenceFactor": c.confidence,
        "statistics": {
            "currentServerTime": stamp(now.now()),
            "firstLocatedTime": stamp(first),
            "lastLocatedTime": stamp(last),
            "maxDetectedRssi": rssi_json(c, at),
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
        "apMacAddress": c.ap_mac(at),
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
/// Writing it moves a moving device on (see [`Client::answer`]).
pub(crate) fn v3_client(c: &Client, now: &Now) -> Value {
    let at = c.answer();
    let last = now.ago(c.last_heard_seconds);
    let unit = at.floor.unit.as_str();
    json!({
        "notificationType": "locationupdate",
        "subscriptionName": "CMX_Api_Server_Notification_1",
        "eventId": 570_000 + c.index as u64,
        "locationMapHierarchy": at.hierarchy(),
        "locationCoordinate": {"x": at.x, "y": at.y, "z": 0, "unit": unit},
        "geoCoordinate": {"latitude": -999, "longitude": -999, "unit": "DEGREES"},
        "confidenceFactor": c.confidence,
        "apMacAddress": c.ap_mac(at),
        "associated": c.associated(),
        "username": c.identity,
        "ipAddress": ip_json(c),
        "ssid": c.ssid,
        "band": "IEEE_802_11_A",
        "floorId": lossy_floor_id(at.floor.ref_id()),
        "floorRefId": at.floor.floor_ref_id,
        "entity": "WIRELESS_CLIENTS",
        "deviceId": c.mac,
        "lastSeen": stamp(last),
        "rawLocation": {"rawX": -999, "rawY": -999, "unit": unit},
        "tagVendorData": null,
        "locComputeType": "RSSI",
        "manufacturer": c.manufacturer,
        "maxDetectedRssi": rssi_json(c, at),
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
