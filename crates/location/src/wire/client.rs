//! The client record of the CMX v2 family, read into one shape and mapped into a [`Device`] in one
//! place. MSE is the ancestor of the CMX v2 format: the same fields, with the nested objects spelled
//! with a capital (`MapInfo`, `MapCoordinate`, `Statistics`, `Dimension`, `Image`) and no
//! `lastHeardInSeconds`. The spellings stay in each protocol's wire types (a v2 answer with MSE keys
//! is not a v2 answer); what the fields mean is decided here.

use super::{age, located_device, non_empty, seconds, WireCoordinate, WireDimension};
use crate::model::{Api, Device};

/// A CMX v2 or MSE client record, whatever its spelling.
pub(crate) struct ClientRecord {
    /// `macAddress`.
    pub mac_address: String,
    /// `mapInfo` (all `None` when the record has none).
    pub floor: FloorFields,
    /// `mapCoordinate`, and the name it has in the protocol (for errors).
    pub coordinate: (WireCoordinate, &'static str),
    /// `confidenceFactor`.
    pub confidence_factor: Option<f64>,
    /// The preferred address of `ipAddress`.
    pub ip_address: Option<String>,
    /// `userName`.
    pub user_name: Option<String>,
    /// `ssId`.
    pub ssid: Option<String>,
    /// `dot11Status`.
    pub dot11_status: Option<String>,
    /// `manufacturer`.
    pub manufacturer: Option<String>,
    /// `statistics.maxDetectedRssi.lastHeardInSeconds` (CMX v2 only).
    pub last_heard_in_seconds: Option<f64>,
    /// `statistics.lastLocatedTime`.
    pub last_located_time: Option<String>,
    /// `statistics.currentServerTime`.
    pub current_server_time: Option<String>,
}

/// What `mapInfo` says about the floor.
#[derive(Default)]
pub(crate) struct FloorFields {
    /// `mapHierarchyString`.
    pub hierarchy: Option<String>,
    /// `floorRefId`.
    pub floor_ref_id: Option<String>,
    /// `floorDimension` (v2) or `Dimension` (MSE).
    pub dimension: Option<WireDimension>,
    /// `image.imageName`.
    pub image_name: Option<String>,
}

impl ClientRecord {
    /// The device this record describes, or what is wrong with it (naming the field).
    pub(crate) fn into_device(self, api: Api) -> Result<Device, String> {
        let (coordinate, field) = self.coordinate;
        let floor = self.floor;
        let mut device = located_device(
            api,
            &self.mac_address,
            floor.hierarchy,
            coordinate.read(field)?,
        )?;
        device.floor_ref_id = floor.floor_ref_id.clone();
        if let Some(plan) = floor
            .dimension
            .and_then(|dim| dim.floor_plan(floor.floor_ref_id, floor.image_name))
        {
            device.set_floor_plan(plan);
        }
        device.identity = non_empty(self.user_name);
        device.ip = self.ip_address;
        device.ssid = non_empty(self.ssid);
        device.status = non_empty(self.dot11_status)
            .map(|s| s.to_ascii_uppercase())
            .unwrap_or_else(|| "UNKNOWN".to_owned());
        device.confidence = self.confidence_factor.filter(|c| c.is_finite());
        device.manufacturer = non_empty(self.manufacturer);
        // The server's own "last heard" wins; else the age of the last fix by the server's clock.
        device.last_seen_seconds = seconds(self.last_heard_in_seconds).or_else(|| {
            age(
                self.last_located_time.as_deref(),
                self.current_server_time.as_deref(),
            )
        });
        Ok(device)
    }
}
