//! CMX map configuration (`/api/config/v1/maps`, `.../maps/info/{campus}/{building}/{floor}`) and the
//! floor images (`.../maps/imagesource/{image}` on CMX and MSE).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::cmx::{dimension_json, image_json};
use crate::data::ServerData;
use crate::scenario::{BuildingSpec, CampusSpec, FloorSpec};

/// A stable 18-digit id for a campus or building (real ones are aesUids like the floors').
fn synthetic_uid(kind: &str, name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in kind.bytes().chain([b':']).chain(name.bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    100_000_000_000_000_000 + h % 900_000_000_000_000_000
}

/// One floor of the map configuration.
fn floor_json(c: &CampusSpec, b: &BuildingSpec, f: &FloorSpec, number: usize) -> Value {
    json!({
        "name": f.name,
        "aesUidString": f.floor_ref_id,
        "aesUid": f.ref_id(),
        "hierarchyName": format!("{}>{}>{}", c.name, b.name, f.name),
        "floorNumber": number,
        "isOutdoor": false,
        "dimension": dimension_json(f),
        "image": image_json(&f.image),
        "gpsMarkers": [],
        "zones": [],
    })
}

fn building_json(c: &CampusSpec, b: &BuildingSpec) -> Value {
    let uid = synthetic_uid("building", &format!("{}>{}", c.name, b.name));
    let floors: Vec<Value> = b
        .floors
        .iter()
        .enumerate()
        .map(|(i, f)| floor_json(c, b, f, i + 1))
        .collect();
    json!({
        "name": b.name,
        "aesUidString": uid.to_string(),
        "aesUid": uid,
        "hierarchyName": format!("{}>{}", c.name, b.name),
        "floorList": floors,
    })
}

fn campus_json(c: &CampusSpec) -> Value {
    let uid = synthetic_uid("campus", &c.name);
    let buildings: Vec<Value> = c.buildings.iter().map(|b| building_json(c, b)).collect();
    json!({
        "name": c.name,
        "aesUidString": uid.to_string(),
        "aesUid": uid,
        "hierarchyName": c.name,
        "buildingList": buildings,
    })
}

/// `GET /api/config/v1/maps`.
pub(crate) async fn all_maps(State(data): State<Arc<ServerData>>) -> Response {
    let campuses: Vec<Value> = data.world.campuses.iter().map(campus_json).collect();
    Json(json!({ "campuses": campuses })).into_response()
}

/// `GET /api/config/v1/maps/info/{campus}/{building}/{floor}` (names percent-decoded); 404 if unknown.
pub(crate) async fn floor_info(
    State(data): State<Arc<ServerData>>,
    Path((campus, building, floor)): Path<(String, String, String)>,
) -> Response {
    let found = data
        .world
        .campuses
        .iter()
        .filter(|c| c.name == campus)
        .flat_map(|c| c.buildings.iter().map(move |b| (c, b)))
        .filter(|(_, b)| b.name == building)
        .find_map(|(c, b)| {
            let i = b.floors.iter().position(|f| f.name == floor)?;
            Some(floor_json(c, b, &b.floors[i], i + 1))
        });
    match found {
        Some(floor) => Json(floor).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `GET .../maps/imagesource/{image}`: a generated plan spanning the floor's width × length (JPEG for
/// `.jpg` names, PNG otherwise); 404 if unknown.
pub(crate) async fn image_source(
    State(data): State<Arc<ServerData>>,
    Path(image): Path<String>,
) -> Response {
    let lower = image.to_ascii_lowercase();
    let content_type = if lower.ends_with(".jpg") || lower.ends_with(".jpeg") {
        "image/jpeg"
    } else {
        "image/png"
    };
    // Generating and encoding a plan takes a while the first time: not on the async threads.
    let generated = tokio::task::spawn_blocking(move || data.world.image(&image)).await;
    match generated {
        Ok(Some(bytes)) => ([(header::CONTENT_TYPE, content_type)], bytes).into_response(),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_18_digits_and_stable() {
        let a = synthetic_uid("campus", "HQ Campus");
        assert_eq!(a, synthetic_uid("campus", "HQ Campus"));
        assert_ne!(a, synthetic_uid("building", "HQ Campus"));
        assert_eq!(a.to_string().len(), 18);
    }
}
