//! CMX map configuration: `GET /api/config/v1/maps` (campuses › `buildingList` › `floorList`) and
//! `GET /api/config/v1/maps/info/{campus}/{building}/{floor}` (one floor). Used to give v3 devices
//! their floor dimensions and image.

use serde::Deserialize;
use serde_json::Value;

use super::{
    id_string, json_body, kind_of, non_empty, record, ParseError, WireDimension, WireImage,
};
use crate::model::FloorPlan;

/// Path of the whole map configuration.
pub const MAPS_PATH: &str = "/api/config/v1/maps";
/// Path prefix of one floor's information; `campus/building/floor` follow, each URL-encoded.
pub const MAP_INFO_PATH: &str = "/api/config/v1/maps/info/";

/// A floor from the map configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogFloor {
    /// `Campus>Building>Floor`, as the client records name it.
    pub hierarchy: String,
    /// Dimensions, image and id.
    pub plan: FloorPlan,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Named<T> {
    #[serde(default)]
    name: Option<String>,
    #[serde(flatten)]
    rest: T,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Campus {
    #[serde(default)]
    building_list: Option<Vec<Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Building {
    #[serde(default)]
    floor_list: Option<Vec<Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Floor {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, deserialize_with = "id_string")]
    aes_uid_string: Option<String>,
    #[serde(default, deserialize_with = "id_string")]
    aes_uid: Option<String>,
    #[serde(default, alias = "floorDimension")]
    dimension: Option<WireDimension>,
    #[serde(default)]
    image: Option<WireImage>,
    #[serde(default)]
    hierarchy_name: Option<String>,
}

impl Floor {
    fn into_catalog(self, campus: &str, building: &str) -> Option<CatalogFloor> {
        let name = non_empty(self.name)?;
        let hierarchy =
            non_empty(self.hierarchy_name).unwrap_or_else(|| format!("{campus}>{building}>{name}"));
        let image = self.image.and_then(|image| image.image_name);
        let plan = self
            .dimension?
            .floor_plan(self.aes_uid_string.or(self.aes_uid), image)?;
        Some(CatalogFloor { hierarchy, plan })
    }
}

/// Parses the whole map configuration. Floors without usable dimensions are left out: they cannot be
/// drawn, and the client answer still names the floor.
pub fn parse_catalog(body: &[u8]) -> Result<Vec<CatalogFloor>, ParseError> {
    let value = json_body(body)?.unwrap_or(Value::Null);
    let campuses = match value {
        Value::Object(mut top) => match top.remove("campuses") {
            Some(Value::Array(items)) => items,
            Some(Value::Null) | None => Vec::new(),
            Some(other) => {
                return Err(ParseError::Shape(format!(
                    "campuses is {}, expected an array",
                    kind_of(&other)
                )))
            }
        },
        Value::Null => Vec::new(),
        other => {
            return Err(ParseError::Shape(format!(
                "expected the map configuration object, got {}",
                kind_of(&other)
            )))
        }
    };
    let mut floors = Vec::new();
    for campus in campuses {
        let Ok(campus) = record::<Named<Campus>>(campus) else {
            continue;
        };
        let campus_name = campus.name.unwrap_or_default();
        for building in campus.rest.building_list.unwrap_or_default() {
            let Ok(building) = record::<Named<Building>>(building) else {
                continue;
            };
            let building_name = building.name.unwrap_or_default();
            floors.extend(
                building
                    .rest
                    .floor_list
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|floor| record::<Floor>(floor).ok())
                    .filter_map(|floor| floor.into_catalog(&campus_name, &building_name)),
            );
        }
    }
    Ok(floors)
}

/// Parses one floor's information (`maps/info/…`), named by the hierarchy it was asked for.
pub fn parse_floor_info(body: &[u8], hierarchy: &str) -> Result<Option<CatalogFloor>, ParseError> {
    let Some(value) = json_body(body)? else {
        return Ok(None);
    };
    let floor: Floor = record(value).map_err(ParseError::Shape)?;
    let name = floor.name.clone();
    Ok(Floor {
        name: name.or_else(|| hierarchy.rsplit('>').next().map(str::to_owned)),
        hierarchy_name: Some(hierarchy.to_owned()),
        ..floor
    }
    .into_catalog("", ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_with_string_and_numeric_ids() {
        let body = br#"{"campuses":[{"name":"HQ","buildingList":[{"name":"Building 5","floorList":[
            {"name":"Level 3","aesUidString":"723413320329068650","dimension":{"width":300,"length":150,"unit":"FEET"},"image":{"imageName":"l3.png"}},
            {"name":"Level 4","aesUid":4698041219291283488,"dimension":{"width":300,"length":150.5,"unit":"METER"}},
            {"name":"Broken","dimension":"oops"},
            {"name":"No size","dimension":{"width":0,"length":0}}
        ]}]}]}"#;
        let floors = parse_catalog(body).unwrap();
        assert_eq!(floors.len(), 2);
        assert_eq!(floors[0].hierarchy, "HQ>Building 5>Level 3");
        assert_eq!(
            floors[0].plan.floor_ref_id.as_deref(),
            Some("723413320329068650")
        );
        assert_eq!(floors[0].plan.image_name.as_deref(), Some("l3.png"));
        assert_eq!(
            floors[1].plan.floor_ref_id.as_deref(),
            Some("4698041219291283488")
        );
    }

    #[test]
    fn catalog_shapes() {
        assert_eq!(parse_catalog(b"").unwrap(), Vec::new());
        assert_eq!(parse_catalog(b"{}").unwrap(), Vec::new());
        assert!(parse_catalog(b"[]").is_err());
        assert!(parse_catalog(b"{\"campuses\": 1}").is_err());
    }

    #[test]
    fn floor_info() {
        let body = br#"{"name":"Level 3","aesUidString":"1","dimension":{"width":30,"length":15,"unit":"METER"}}"#;
        let floor = parse_floor_info(body, "HQ>B>Level 3").unwrap().unwrap();
        assert_eq!(floor.hierarchy, "HQ>B>Level 3");
        assert_eq!(floor.plan.width, 30.0);
    }
}
