//! The domain model every protocol maps into: a located [`Device`] on a [`FloorPlan`].
//!
//! Wire types never leave their protocol module; this is the one shape the rest of whereis sees.

use std::fmt;

use serde::Serialize;

/// Which API a device was located through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Api {
    /// CMX 10.x Location API v3 (flat records).
    #[serde(rename = "cmx-v3")]
    CmxV3,
    /// CMX 10.x Location API v2.
    #[serde(rename = "cmx-v2")]
    CmxV2,
    /// Legacy MSE 8.x Context Aware API.
    #[serde(rename = "mse")]
    Mse,
    /// Cisco Spaces, from the positions its Firehose stream delivered.
    #[serde(rename = "spaces")]
    Spaces,
    /// Meraki, from the positions its Scanning API posted.
    #[serde(rename = "meraki")]
    Meraki,
}

impl Api {
    /// The name used in JSON output and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Api::CmxV3 => "cmx-v3",
            Api::CmxV2 => "cmx-v2",
            Api::Mse => "mse",
            Api::Spaces => "spaces",
            Api::Meraki => "meraki",
        }
    }
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Length unit of a floor's coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Unit {
    /// International feet (every Cisco sample on record).
    Feet,
    /// Metres.
    Meter,
}

impl Unit {
    /// Reads the unit names location servers send (`FEET`, `METER`, `meters`, …).
    pub fn parse(text: &str) -> Option<Unit> {
        match text.trim().to_ascii_uppercase().as_str() {
            "FEET" | "FOOT" | "FT" => Some(Unit::Feet),
            "METER" | "METERS" | "METRE" | "METRES" | "M" => Some(Unit::Meter),
            _ => None,
        }
    }

    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Feet => "FEET",
            Unit::Meter => "METER",
        }
    }
}

/// A floor as the location server describes it: enough to fetch its image and place a position on it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FloorPlan {
    /// The server's floor id (`floorRefId` / aesUid), kept as text: it exceeds f64 precision.
    pub floor_ref_id: Option<String>,
    /// Extent along x, in `unit`.
    pub width: f64,
    /// Extent along y, in `unit`.
    pub length: f64,
    /// The floor's placement in its building (not a shift of device coordinates).
    pub offset_x: f64,
    /// See `offset_x`.
    pub offset_y: f64,
    /// Unit of `width`, `length` and offsets.
    pub unit: Unit,
    /// Image name to fetch from the server's image source, when the server names one.
    pub image_name: Option<String>,
}

/// A map hierarchy such as `Campus>Building 5>Level 3`, split into its parts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hierarchy {
    /// Campus, when the hierarchy has three or more levels.
    pub campus: Option<String>,
    /// Building.
    pub building: Option<String>,
    /// Floor.
    pub floor: Option<String>,
    /// Zone or further levels below the floor, when present.
    pub zone: Option<String>,
}

impl Hierarchy {
    /// Splits a hierarchy string. Real servers send 2–4 levels: `Building>Floor`,
    /// `Campus>Building>Floor`, `Campus>Building>Floor>Zone`; names may contain spaces.
    pub fn parse(text: &str) -> Hierarchy {
        let parts: Vec<String> = text
            .split('>')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(str::to_owned)
            .collect();
        let mut parts = parts.into_iter();
        match parts.len() {
            0 => Hierarchy::default(),
            1 => Hierarchy {
                building: parts.next(),
                ..Hierarchy::default()
            },
            2 => Hierarchy {
                building: parts.next(),
                floor: parts.next(),
                ..Hierarchy::default()
            },
            _ => {
                let campus = parts.next();
                let building = parts.next();
                let floor = parts.next();
                let rest: Vec<String> = parts.collect();
                Hierarchy {
                    campus,
                    building,
                    floor,
                    zone: (!rest.is_empty()).then(|| rest.join(">")),
                }
            }
        }
    }
}

/// One device of a person, where a location server last placed it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Device {
    /// Name of the configured source that answered.
    pub source: String,
    /// API the answer came through.
    pub api: Api,
    /// MAC address, lower case with colons.
    pub mac: String,
    /// The 802.1X identity the server knows the device by (`CORP\jdoe`).
    pub identity: Option<String>,
    /// Preferred IP address (IPv4 first).
    pub ip: Option<String>,
    /// SSID the device is on or probing for.
    pub ssid: Option<String>,
    /// 802.11 status as the server reports it (`ASSOCIATED`, `PROBING`, …).
    pub status: String,
    /// The map hierarchy string as sent.
    pub hierarchy: String,
    /// Campus part of the hierarchy.
    pub campus: Option<String>,
    /// Building part of the hierarchy.
    pub building: Option<String>,
    /// Floor part of the hierarchy.
    pub floor: Option<String>,
    /// x from the floor's top-left corner, in `unit`.
    pub x: f64,
    /// y from the floor's top-left corner, in `unit`.
    pub y: f64,
    /// Unit of `x` and `y`.
    pub unit: Unit,
    /// Floor extent along x, when known.
    pub floor_width: Option<f64>,
    /// Floor extent along y, when known.
    pub floor_length: Option<f64>,
    /// Seconds since the server last heard the device.
    pub last_seen_seconds: Option<u64>,
    /// Radius of the 95 % confidence area, in `unit`.
    pub confidence: Option<f64>,
    /// True when the device was last heard longer ago than the configured maximum age.
    pub stale: bool,
    /// Device manufacturer (from the MAC's OUI), when the server says.
    pub manufacturer: Option<String>,
    /// The server's id of the floor (`floorRefId`), as text.
    #[serde(skip)]
    pub floor_ref_id: Option<String>,
    /// The floor the device is on, for drawing maps.
    #[serde(skip)]
    pub floor_plan: Option<FloorPlan>,
    /// Priority of the source (lower wins on conflicts).
    #[serde(skip)]
    pub priority: i32,
}

impl Device {
    /// Fills `campus`/`building`/`floor` from `hierarchy`.
    pub(crate) fn split_hierarchy(&mut self) {
        let parts = Hierarchy::parse(&self.hierarchy);
        self.campus = parts.campus;
        self.building = parts.building;
        self.floor = parts.floor;
    }

    /// Attaches a floor plan, copying its extent into the flat fields.
    pub(crate) fn set_floor_plan(&mut self, plan: FloorPlan) {
        if self.floor_ref_id.is_none() {
            self.floor_ref_id = plan.floor_ref_id.clone();
        }
        self.floor_width = Some(plan.width);
        self.floor_length = Some(plan.length);
        self.floor_plan = Some(plan);
    }
}

/// Normalises a MAC address to lower case with colons; `None` when it is not 12 hex digits.
pub fn normalize_mac(text: &str) -> Option<String> {
    let hex: String = text
        .chars()
        .filter(|c| !matches!(c, ':' | '-' | '.'))
        .collect();
    if hex.len() != 12 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let lower = hex.to_ascii_lowercase();
    let pairs: Vec<&str> = (0..6).map(|i| &lower[i * 2..i * 2 + 2]).collect();
    Some(pairs.join(":"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hierarchy_levels() {
        let h = Hierarchy::parse("Campus>Building 5>Level 3");
        assert_eq!(h.campus.as_deref(), Some("Campus"));
        assert_eq!(h.building.as_deref(), Some("Building 5"));
        assert_eq!(h.floor.as_deref(), Some("Level 3"));
        assert_eq!(h.zone, None);

        let h = Hierarchy::parse("Building 5>Level 3");
        assert_eq!(h.campus, None);
        assert_eq!(h.building.as_deref(), Some("Building 5"));
        assert_eq!(h.floor.as_deref(), Some("Level 3"));

        let h = Hierarchy::parse("HQ Campus > B 1 > Floor 2 > Zone A");
        assert_eq!(h.campus.as_deref(), Some("HQ Campus"));
        assert_eq!(h.floor.as_deref(), Some("Floor 2"));
        assert_eq!(h.zone.as_deref(), Some("Zone A"));

        assert_eq!(Hierarchy::parse(""), Hierarchy::default());
    }

    #[test]
    fn mac_normalisation() {
        assert_eq!(
            normalize_mac("00:11:22:AA:bb:CC").as_deref(),
            Some("00:11:22:aa:bb:cc")
        );
        assert_eq!(
            normalize_mac("0011.22aa.bbcc").as_deref(),
            Some("00:11:22:aa:bb:cc")
        );
        assert_eq!(normalize_mac("not a mac"), None);
        assert_eq!(normalize_mac("00:11:22:33:44"), None);
        assert_eq!(normalize_mac("é0:11:22:33:44:55"), None);
    }

    #[test]
    fn units() {
        assert_eq!(Unit::parse("FEET"), Some(Unit::Feet));
        assert_eq!(Unit::parse("meter"), Some(Unit::Meter));
        assert_eq!(Unit::parse("furlong"), None);
    }
}
