//! MSE 8.x Context Aware API: one client by user, and the paged list; JSON only with
//! `Accept: application/json` (or a `.json` suffix), XML otherwise.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use crate::cmx::dimension_json;
use crate::data::{stamp, Client, Now, ServerData};

const DEFAULT_PAGE_SIZE: usize = 100;
const MAX_PAGE_SIZE: usize = 1000;

/// One `WirelessClientLocation`, like the entries of `crates/location/tests/fixtures/mse-clients-list-paged.json`.
/// Writing it moves a moving device on (see [`Client::answer`]).
pub(crate) fn entry(c: &Client, now: &Now) -> Value {
    let at = c.answer();
    let mut v = json!({
        "macAddress": c.mac,
        "currentlyTracked": true,
        "confidenceFactor": c.confidence,
        "band": "IEEE_802_11_A",
        "isGuestUser": false,
        "dot11Status": c.status,
        "ssId": c.ssid,
        "userName": c.identity,
        "MapInfo": {
            "mapHierarchyString": at.hierarchy(),
            "floorRefId": at.floor.ref_id(),
            "Dimension": dimension_json(&at.floor),
            "Image": {"imageName": at.floor.image},
        },
        "MapCoordinate": {"x": at.x, "y": at.y, "unit": at.floor.unit.as_str()},
        "Statistics": {
            "currentServerTime": stamp(now.now()),
            "firstLocatedTime": stamp(now.ago(c.last_heard_seconds.saturating_add(3 * 3600))),
            "lastLocatedTime": stamp(now.ago(c.last_heard_seconds)),
        },
        "GeoCoordinate": {"lattitude": -999.0, "longitude": -999.0, "unit": "DEGREES"},
    });
    if let (Some(ip), Some(obj)) = (c.ip.first(), v.as_object_mut()) {
        obj.insert("ipAddress".to_owned(), json!(ip));
    }
    v
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("application/json"))
}

fn answer(body: Value, json: bool) -> Response {
    if json {
        Json(body).into_response()
    } else {
        let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>");
        if let Value::Object(map) = &body {
            for (name, value) in map {
                to_xml(&mut xml, name, value);
            }
        }
        ([(header::CONTENT_TYPE, "application/xml")], xml).into_response()
    }
}

/// `GET /api/contextaware/v1/location/clients/{user}[.json]`: an object for one device, an array for
/// several, 404 when the user is unknown.
pub(crate) async fn client_by_user(
    State(data): State<Arc<ServerData>>,
    Path(user): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (user, suffix) = match user.strip_suffix(".json") {
        Some(u) => (u, true),
        None => (user.as_str(), false),
    };
    let now = Now::new();
    let mut found: Vec<Value> = data.matching(Some(user)).map(|c| entry(c, &now)).collect();
    let location = match found.len() {
        0 => return StatusCode::NOT_FOUND.into_response(),
        1 => found.remove(0),
        _ => Value::Array(found),
    };
    answer(
        json!({ "WirelessClientLocation": location }),
        suffix || wants_json(&headers),
    )
}

/// `GET /api/contextaware/v1/location/clients[.json][?page=N&pageSize=M]`: the paged list form.
pub(crate) async fn client_list(
    State(data): State<Arc<ServerData>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    list(&data, &q, wants_json(&headers))
}

/// The same list, `.json` suffix form.
pub(crate) async fn client_list_json(
    State(data): State<Arc<ServerData>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    list(&data, &q, true)
}

fn list(data: &ServerData, q: &HashMap<String, String>, json: bool) -> Response {
    let number = |key: &str| q.get(key).and_then(|v| v.trim().parse::<usize>().ok());
    let size = number("pageSize")
        .unwrap_or(DEFAULT_PAGE_SIZE)
        .clamp(1, MAX_PAGE_SIZE);
    let page = number("page").unwrap_or(1).max(1);
    let total = data.clients.len();
    let now = Now::new();
    let entries: Vec<Value> = data
        .clients
        .iter()
        .skip((page - 1).saturating_mul(size))
        .take(size)
        .map(|c| entry(c, &now))
        .collect();
    let locations = json!({
        "totalPages": total.div_ceil(size).max(1),
        "currentPage": page,
        "pageSize": size,
        "entries": entries,
    });
    answer(json!({ "Locations": locations }), json)
}

/// Writes `value` as element `name`: scalars become attributes, objects and arrays child elements.
fn to_xml(out: &mut String, name: &str, value: &Value) {
    match value {
        Value::Array(items) => {
            let name = if name == "entries" {
                "WirelessClientLocation"
            } else {
                name
            };
            for item in items {
                to_xml(out, name, item);
            }
        }
        Value::Object(map) => {
            out.push('<');
            out.push_str(name);
            attributes(out, map);
            out.push('>');
            for (k, v) in map.iter().filter(|(_, v)| v.is_object() || v.is_array()) {
                to_xml(out, k, v);
            }
            out.push_str("</");
            out.push_str(name);
            out.push('>');
        }
        scalar => {
            out.push('<');
            out.push_str(name);
            out.push('>');
            escape_into(out, &scalar_text(scalar));
            out.push_str("</");
            out.push_str(name);
            out.push('>');
        }
    }
}

fn attributes(out: &mut String, map: &Map<String, Value>) {
    for (k, v) in map.iter().filter(|(_, v)| !(v.is_object() || v.is_array())) {
        out.push(' ');
        out.push_str(k);
        out.push_str("=\"");
        escape_into(out, &scalar_text(v));
        out.push('"');
    }
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn escape_into(out: &mut String, text: &str) {
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escapes_and_nests() {
        let mut out = String::new();
        let v = json!({"userName": "CORP\\a<b>", "MapInfo": {"mapHierarchyString": "A>B>C"}});
        to_xml(&mut out, "WirelessClientLocation", &v);
        assert!(out.starts_with("<WirelessClientLocation userName=\"CORP\\a&lt;b&gt;\">"));
        assert!(out.contains("<MapInfo mapHierarchyString=\"A&gt;B&gt;C\"></MapInfo>"));
        assert!(out.ends_with("</WirelessClientLocation>"));
    }
}
