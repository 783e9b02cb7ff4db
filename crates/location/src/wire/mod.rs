//! Wire formats of the location servers, and their mapping into [`crate::Device`].
//!
//! Every parser takes the raw body bytes and never panics: a body that is not what the protocol sends is a
//! [`ParseError`]; a single unusable record inside an otherwise good answer is reported as a
//! [`RecordError`] while the other records are still used.

mod client;
pub mod cmx_v2;
pub mod cmx_v3;
pub mod maps;
pub mod meraki;
pub mod mse;
pub mod spaces;
mod time;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::model::{normalize_mac, Api, Device, FloorPlan, Unit};

pub use time::parse_timestamp;

/// A body that cannot be read as the protocol's answer at all.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    /// Not JSON (or truncated JSON).
    #[error("malformed JSON: {0}")]
    Json(String),
    /// JSON, but not the shape the protocol answers with.
    #[error("unexpected answer: {0}")]
    Shape(String),
}

/// One record the server sent that could not be turned into a device.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("record {index} ({mac}): {reason}")]
pub struct RecordError {
    /// Position of the record in the answer, from 1.
    pub index: usize,
    /// The record's MAC address, if it had a readable one.
    pub mac: String,
    /// What was wrong, naming the field.
    pub reason: String,
}

/// What a body yielded: the devices, and the records that could not be used.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Parsed {
    /// Devices read from the answer (`source` and `priority` are filled in by the caller).
    pub devices: Vec<Device>,
    /// Records that were present but unusable.
    pub rejected: Vec<RecordError>,
}

/// Reads a JSON body; an empty or all-whitespace body means "no records".
pub(crate) fn json_body(body: &[u8]) -> Result<Option<Value>, ParseError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(body)
        .map(Some)
        .map_err(|err| ParseError::Json(err.to_string()))
}

/// Deserialises one record, naming the offending field on failure.
pub(crate) fn record<T: DeserializeOwned>(value: Value) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner().to_string();
        if path == "." {
            inner
        } else {
            format!("{path}: {inner}")
        }
    })
}

/// The MAC of a raw record for error messages, or `?`.
pub(crate) fn record_mac(value: &Value, keys: &[&str]) -> String {
    keys.iter()
        .find_map(|key| value.get(key).and_then(Value::as_str))
        .and_then(normalize_mac)
        .unwrap_or_else(|| "?".to_owned())
}

/// Maps each JSON record with `convert`, collecting devices and per-record failures.
pub(crate) fn map_records(
    records: Vec<Value>,
    mac_keys: &[&str],
    convert: impl Fn(Value) -> Result<Device, String>,
) -> Parsed {
    let mut parsed = Parsed::default();
    for (i, value) in records.into_iter().enumerate() {
        let mac = record_mac(&value, mac_keys);
        match convert(value) {
            Ok(device) => parsed.devices.push(device),
            Err(reason) => parsed.rejected.push(RecordError {
                index: i + 1,
                mac,
                reason,
            }),
        }
    }
    parsed
}

/// An id that servers send as a string or as a (possibly > 2^53) JSON integer.
pub(crate) fn id_string<'de, D: Deserializer<'de>>(de: D) -> Result<Option<String>, D::Error> {
    let value = Option::<Value>::deserialize(de)?;
    Ok(match value {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

/// IP addresses as a list, a single string, or null; the preferred one is the first IPv4 address.
pub(crate) fn preferred_ip<'de, D: Deserializer<'de>>(de: D) -> Result<Option<String>, D::Error> {
    let value = Option::<Value>::deserialize(de)?;
    let addresses: Vec<String> = match value {
        Some(Value::String(s)) => vec![s],
        Some(Value::Array(items)) => items
            .into_iter()
            .filter_map(|item| item.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    let usable = |addr: &&String| addr.parse::<std::net::IpAddr>().is_ok();
    let v4 = addresses
        .iter()
        .filter(usable)
        .find(|addr| addr.parse::<std::net::Ipv4Addr>().is_ok());
    Ok(v4.or_else(|| addresses.iter().find(usable)).cloned())
}

/// Seconds given as an integer or a float; negative or non-finite values are unusable.
pub(crate) fn seconds(value: Option<f64>) -> Option<u64> {
    value
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(|v| v.min(u64::MAX as f64).round() as u64)
}

/// A string field that may be missing, null or empty: empty counts as missing.
pub(crate) fn non_empty(value: Option<String>) -> Option<String> {
    value.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// A coordinate must be a finite number.
pub(crate) fn finite(value: f64, field: &str) -> Result<f64, String> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(format!("{field}: not a finite number"))
    }
}

/// Floor dimensions as CMX (`floorDimension`, `dimension`) and MSE (`Dimension`) send them.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireDimension {
    #[serde(default)]
    pub length: Option<f64>,
    #[serde(default)]
    pub width: Option<f64>,
    #[serde(default)]
    pub offset_x: Option<f64>,
    #[serde(default)]
    pub offset_y: Option<f64>,
    #[serde(default)]
    pub unit: Option<String>,
}

impl WireDimension {
    /// A usable floor plan, when the dimensions are positive and finite and the unit is known.
    pub(crate) fn floor_plan(
        &self,
        floor_ref_id: Option<String>,
        image_name: Option<String>,
    ) -> Option<FloorPlan> {
        let positive = |v: Option<f64>| v.filter(|v| v.is_finite() && *v > 0.0);
        let offset = |v: Option<f64>| v.filter(|v| v.is_finite()).unwrap_or(0.0);
        let unit = match &self.unit {
            Some(text) => Unit::parse(text)?,
            None => Unit::Feet,
        };
        Some(FloorPlan {
            floor_ref_id,
            width: positive(self.width)?,
            length: positive(self.length)?,
            offset_x: offset(self.offset_x),
            offset_y: offset(self.offset_y),
            unit,
            image_name: non_empty(image_name),
        })
    }
}

/// A floor's image as CMX (`image`) and MSE (`Image`) name it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireImage {
    #[serde(default)]
    pub image_name: Option<String>,
}

/// A short name of a JSON value's kind, for error messages.
pub(crate) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A position on a floor, as every protocol sends it.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct WireCoordinate {
    pub x: f64,
    pub y: f64,
    #[serde(default)]
    pub unit: Option<String>,
}

impl WireCoordinate {
    /// Checks the numbers and the unit (FEET when the server does not say, as in every Cisco sample).
    pub(crate) fn read(&self, field: &str) -> Result<(f64, f64, Unit), String> {
        let unit = match &self.unit {
            Some(text) => {
                Unit::parse(text).ok_or_else(|| format!("{field}.unit: unknown unit {text:?}"))?
            }
            None => Unit::Feet,
        };
        Ok((
            finite(self.x, &format!("{field}.x"))?,
            finite(self.y, &format!("{field}.y"))?,
            unit,
        ))
    }
}

/// A device with the fields every protocol has; the rest is filled in by the protocol's mapping.
pub(crate) fn located_device(
    api: Api,
    mac: &str,
    hierarchy: Option<String>,
    (x, y, unit): (f64, f64, Unit),
) -> Result<Device, String> {
    let mac = normalize_mac(mac).ok_or_else(|| format!("not a MAC address: {mac:?}"))?;
    let mut device = Device {
        source: String::new(),
        api,
        mac,
        identity: None,
        ip: None,
        ssid: None,
        status: "UNKNOWN".to_owned(),
        hierarchy: non_empty(hierarchy).unwrap_or_default(),
        campus: None,
        building: None,
        floor: None,
        x,
        y,
        unit,
        floor_width: None,
        floor_length: None,
        last_seen_seconds: None,
        confidence: None,
        stale: false,
        manufacturer: None,
        floor_ref_id: None,
        floor_plan: None,
        priority: 0,
    };
    device.split_hierarchy();
    Ok(device)
}

/// Seconds between two server timestamps (`earlier` .. `later`), when both parse.
pub(crate) fn age(earlier: Option<&str>, later: Option<&str>) -> Option<u64> {
    let earlier = parse_timestamp(earlier?)?;
    let later = parse_timestamp(later?)?;
    Some(time::seconds_between(earlier, later))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Ip {
        #[serde(default, deserialize_with = "preferred_ip")]
        ip: Option<String>,
    }

    fn ip(json: &str) -> Option<String> {
        serde_json::from_str::<Ip>(json).ok().and_then(|r| r.ip)
    }

    #[test]
    fn ip_forms() {
        assert_eq!(
            ip(r#"{"ip": ["fe80:0000:0000:0000:9d2d:a7a4:24e8:8358", "10.0.0.7"]}"#).as_deref(),
            Some("10.0.0.7")
        );
        assert_eq!(ip(r#"{"ip": "10.0.0.8"}"#).as_deref(), Some("10.0.0.8"));
        assert_eq!(ip(r#"{"ip": null}"#), None);
        assert_eq!(ip(r#"{"ip": []}"#), None);
        assert_eq!(ip(r#"{"ip": ["ipv6"]}"#), None);
        assert_eq!(ip(r#"{}"#), None);
        assert_eq!(
            ip(r#"{"ip": ["fe80::1"]}"#).as_deref(),
            Some("fe80::1"),
            "an IPv6 address is used when there is no IPv4 one"
        );
    }

    #[test]
    fn seconds_tolerate_floats_and_reject_nonsense() {
        assert_eq!(seconds(Some(3.0)), Some(3));
        assert_eq!(seconds(Some(2.6)), Some(3));
        assert_eq!(seconds(Some(-1.0)), None);
        assert_eq!(seconds(Some(f64::NAN)), None);
        assert_eq!(seconds(None), None);
    }

    #[test]
    fn empty_bodies_mean_no_records() {
        assert_eq!(json_body(b""), Ok(None));
        assert_eq!(json_body(b" \r\n"), Ok(None));
        assert!(matches!(json_body(b"[{"), Err(ParseError::Json(_))));
    }
}
