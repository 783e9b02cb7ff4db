//! The answer to one lookup, as every channel gets it: the report types (the `find --json`
//! contract, README.md) and their text for people.

use serde::{Serialize, Serializer};
use whereis_floormap::MapError;
use whereis_location::{Api, Device, SourceFailure};

use crate::privacy::Precision;

/// Who was looked for.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Person {
    /// The username the servers were asked about.
    pub username: String,
    /// Full name, when a directory knows it.
    pub display_name: Option<String>,
    /// Email, when a directory knows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// The answer to one query (the `find --json` contract).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FindReport {
    /// What was asked.
    pub query: String,
    /// Who that was taken to mean.
    pub person: Person,
    /// How precisely the person is shown: `exact` (positions, MACs), `floor` (building and floor,
    /// the plan without a marker) or `building`. Nothing finer is in the document.
    pub precision: Precision,
    /// Devices, most recently seen first (at `floor` or `building`, one per place).
    pub devices: Vec<DeviceReport>,
    /// Sources that failed.
    pub errors: Vec<SourceFailure>,
    /// Why the directory could not be asked, when the query was looked up as a username without it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub directory_error: Option<String>,
}

/// One device of a report, with its map when maps were asked for. Below `exact` precision the
/// device has been coarsened ([`coarsen`]) and only the fields of that precision are serialised.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceReport {
    /// The device.
    pub device: Device,
    /// The drawn map: absent when not asked for, `null` when it could not be drawn.
    pub map: Option<Option<MapInfo>>,
    /// Why the map could not be drawn.
    pub map_error: Option<String>,
    /// The precision it is shown with.
    pub precision: Precision,
}

impl DeviceReport {
    /// A device shown with `precision`, without a map yet.
    pub fn new(device: Device, precision: Precision) -> DeviceReport {
        DeviceReport {
            device,
            map: None,
            map_error: None,
            precision,
        }
    }
}

/// A device as `exact` precision shows it: every field.
#[derive(Serialize)]
struct ExactView<'a> {
    #[serde(flatten)]
    device: &'a Device,
    #[serde(skip_serializing_if = "Option::is_none")]
    map: &'a Option<Option<MapInfo>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    map_error: &'a Option<String>,
}

/// A device as `floor` or `building` precision shows it: where (no finer than allowed), how it is
/// connected, and when it was seen — never a position, a MAC, an address or a marker.
#[derive(Serialize)]
struct CoarseView<'a> {
    source: &'a str,
    api: Api,
    ssid: &'a Option<String>,
    status: &'a str,
    hierarchy: &'a str,
    campus: &'a Option<String>,
    building: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    floor: &'a Option<String>,
    last_seen_seconds: Option<u64>,
    stale: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    map: Option<Option<PlanView<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    map_error: &'a Option<String>,
}

/// A floor plan without a marker.
#[derive(Serialize)]
struct PlanView<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    path: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: &'a Option<String>,
    width: u32,
    height: u32,
}

impl Serialize for DeviceReport {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.precision == Precision::Exact {
            return ExactView {
                device: &self.device,
                map: &self.map,
                map_error: &self.map_error,
            }
            .serialize(serializer);
        }
        let d = &self.device;
        let floor_shown = self.precision >= Precision::Floor;
        CoarseView {
            source: &d.source,
            api: d.api,
            ssid: &d.ssid,
            status: &d.status,
            hierarchy: &d.hierarchy,
            campus: &d.campus,
            building: &d.building,
            floor: if floor_shown { &d.floor } else { &None },
            last_seen_seconds: d.last_seen_seconds,
            stale: d.stale,
            map: self.map.as_ref().filter(|_| floor_shown).map(|map| {
                map.as_ref().map(|info| PlanView {
                    path: &info.path,
                    url: &info.url,
                    width: info.width,
                    height: info.height,
                })
            }),
            map_error: if floor_shown { &self.map_error } else { &None },
        }
        .serialize(serializer)
    }
}

/// The devices as `precision` lets them be shown. At `exact`, as they are. At `floor`, each loses
/// its position, accuracy, MAC, identity, address and manufacturer (the floor plan stays, for a map
/// without a marker), and devices on the same floor become one. At `building`, the floor and the
/// plan go too (the hierarchy keeps campus and building), one per building. The order (most
/// recently seen first) is kept.
pub fn coarsen(devices: Vec<Device>, precision: Precision) -> Vec<Device> {
    if precision == Precision::Exact {
        return devices;
    }
    let mut places = std::collections::HashSet::new();
    let mut shown = Vec::new();
    for mut device in devices {
        device.mac = String::new();
        device.identity = None;
        device.ip = None;
        device.x = 0.0;
        device.y = 0.0;
        device.confidence = None;
        device.manufacturer = None;
        if precision == Precision::Building {
            device.floor = None;
            device.floor_plan = None;
            device.floor_ref_id = None;
            device.floor_width = None;
            device.floor_length = None;
            let parts: Vec<&str> = device.hierarchy.split('>').collect();
            device.hierarchy = match parts.len() {
                0..=2 if device.building.is_none() => String::new(),
                0..=2 => device.hierarchy.clone(),
                _ => parts.iter().take(2).copied().collect::<Vec<_>>().join(">"),
            };
        }
        let place = (
            device.campus.clone(),
            device.building.clone(),
            device.floor.clone(),
            device.hierarchy.clone(),
        );
        if places.insert(place) {
            shown.push(device);
        }
    }
    shown
}

/// Where a drawn map is and where its marker sits (in the PNG's pixels).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MapInfo {
    /// File written by `find --map-dir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// URL served by the HTTP API.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// PNG width.
    pub width: u32,
    /// PNG height.
    pub height: u32,
    /// The marker's centre, `[x, y]` in pixels from the top-left.
    pub marker: [u32; 2],
    /// True when the position lay outside the floor and the marker was put on its edge.
    pub clamped: bool,
}

impl DeviceReport {
    /// Records a map (or why there is none).
    pub fn set_map(&mut self, map: Result<MapInfo, MapError>) {
        match map {
            Ok(info) => {
                self.map = Some(Some(info));
                self.map_error = None;
            }
            Err(err) => {
                self.map = Some(None);
                self.map_error = Some(err.to_string());
            }
        }
    }
}

/// How a lookup ended, for exit codes and HTTP statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// At least one device.
    Found,
    /// No device, and at least one source answered.
    NotFound,
    /// No device, and every source failed: the answer is not trustworthy.
    AllSourcesFailed,
}

impl FindReport {
    /// The answer as people read it: one line per device, then the failed sources.
    pub fn to_text(&self) -> String {
        let who = &self.person.username;
        let mut lines = Vec::new();
        match self.devices.len() {
            0 => lines.push(format!("{who} was not found on any location server.")),
            1 => {}
            n => lines.push(format!("{who} has {n} devices:")),
        }
        for report in &self.devices {
            let prefix = if self.devices.len() > 1 { "- " } else { "" };
            lines.push(format!("{prefix}{}", describe_device(who, &report.device)));
            match (&report.map, &report.map_error) {
                (
                    Some(Some(MapInfo {
                        path: Some(path),
                        clamped,
                        ..
                    })),
                    _,
                ) => {
                    let note = if *clamped {
                        " (the reported position lies outside the floor; marked at its edge)"
                    } else {
                        ""
                    };
                    lines.push(format!("  map: {path}{note}"));
                }
                (_, Some(error)) => lines.push(format!("  map unavailable: {error}")),
                _ => {}
            }
        }
        for failure in &self.errors {
            lines.push(format!(
                "Note: {} did not answer: {}",
                failure.source, failure.error
            ));
        }
        if let Some(error) = &self.directory_error {
            lines.push(format!(
                "Note: the directory is unavailable ({error}); {who} was looked up as a username."
            ));
        }
        lines.join("\n")
    }
}

/// "jdoe is ASSOCIATED to CORP in Building 5 on Level 3 (HQ), seen 12 s ago — 00:11:…, 10.0.0.7, via cmx-north"
pub fn describe_device(who: &str, device: &Device) -> String {
    let mut text = format!("{who} is {}", device.status);
    if let Some(ssid) = &device.ssid {
        let link = if device.status == "ASSOCIATED" {
            "to"
        } else {
            "on"
        };
        text.push_str(&format!(" {link} {ssid}"));
    }
    match (&device.building, &device.floor) {
        (Some(building), Some(floor)) => text.push_str(&format!(" in {building} on {floor}")),
        (Some(building), None) => text.push_str(&format!(" in {building}")),
        _ if !device.hierarchy.is_empty() => text.push_str(&format!(" at {}", device.hierarchy)),
        _ => text.push_str(" at an unnamed location"),
    }
    if let Some(campus) = &device.campus {
        text.push_str(&format!(" ({campus})"));
    }
    match device.last_seen_seconds {
        Some(age) if device.stale => {
            text.push_str(&format!(", last seen {} ago (stale)", format_age(age)))
        }
        Some(age) => text.push_str(&format!(", seen {} ago", format_age(age))),
        None => text.push_str(", last seen: unknown"),
    }
    // A coarsened device (see `coarsen`) has no MAC, manufacturer or address to show.
    let details: Vec<String> = [
        Some(device.mac.clone()),
        device.manufacturer.clone(),
        device.ip.clone(),
    ]
    .into_iter()
    .flatten()
    .filter(|detail| !detail.is_empty())
    .collect();
    if details.is_empty() {
        text.push_str(&format!(", via {}", device.source));
    } else {
        text.push_str(&format!(" — {}, via {}", details.join(", "), device.source));
    }
    text
}

/// "12 s", "5 min", "3 h", "2 days".
pub fn format_age(seconds: u64) -> String {
    match seconds {
        0..=59 => format!("{seconds} s"),
        60..=3599 => format!("{} min", seconds / 60),
        3600..=172_799 => format!("{} h", seconds / 3600),
        _ => format!("{} days", seconds / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use whereis_location::{Api, Unit};

    fn device() -> Device {
        Device {
            source: "cmx-north".into(),
            api: Api::CmxV3,
            mac: "00:11:22:33:44:55".into(),
            identity: Some("CORP\\jdoe".into()),
            ip: Some("10.0.0.7".into()),
            ssid: Some("CORP".into()),
            status: "ASSOCIATED".into(),
            hierarchy: "HQ>Building 5>Level 3".into(),
            campus: Some("HQ".into()),
            building: Some("Building 5".into()),
            floor: Some("Level 3".into()),
            x: 1.0,
            y: 2.0,
            unit: Unit::Feet,
            floor_width: None,
            floor_length: None,
            last_seen_seconds: Some(12),
            confidence: None,
            stale: false,
            manufacturer: None,
            floor_ref_id: None,
            floor_plan: None,
            priority: 0,
        }
    }

    fn report() -> DeviceReport {
        DeviceReport::new(device(), Precision::Exact)
    }

    #[test]
    fn one_device_sentence() {
        assert_eq!(
            describe_device("jdoe", &device()),
            "jdoe is ASSOCIATED to CORP in Building 5 on Level 3 (HQ), seen 12 s ago — 00:11:22:33:44:55, 10.0.0.7, via cmx-north"
        );
    }

    #[test]
    fn stale_and_probing() {
        let mut d = device();
        d.status = "PROBING".into();
        d.stale = true;
        d.last_seen_seconds = Some(7200);
        let text = describe_device("jdoe", &d);
        assert!(
            text.starts_with("jdoe is PROBING on CORP in Building 5"),
            "{text}"
        );
        assert!(text.contains("last seen 2 h ago (stale)"), "{text}");
    }

    #[test]
    fn report_text() {
        let report = FindReport {
            query: "jdoe".into(),
            person: Person {
                username: "jdoe".into(),
                display_name: None,
                email: None,
            },
            precision: Precision::Exact,
            devices: vec![report(), report()],
            errors: vec![SourceFailure {
                source: "mse".into(),
                error: "timed out after 2000 ms".into(),
            }],
            directory_error: None,
        };
        let text = report.to_text();
        assert!(text.starts_with("jdoe has 2 devices:\n- jdoe is"), "{text}");
        assert!(
            text.ends_with("Note: mse did not answer: timed out after 2000 ms"),
            "{text}"
        );
    }

    #[test]
    fn ages() {
        assert_eq!(format_age(0), "0 s");
        assert_eq!(format_age(59), "59 s");
        assert_eq!(format_age(61), "1 min");
        assert_eq!(format_age(3600), "1 h");
        assert_eq!(format_age(200_000), "2 days");
    }
}
