//! Meraki Scanning API v3 posts: what Meraki POSTs to the receiver, one body per network, its
//! observations grouped by client. The body's `secret` is returned for the caller to compare (in
//! constant time) before anything is stored. Per observation the latest of `locations[]` by `time`
//! is used; `x`/`y` may be numbers, numeric strings or `"NaN"`.

use serde::Deserialize;
use serde_json::Value;

use super::spaces::{number, username_of_identity};
use super::{json_body, parse_timestamp, record, record_mac, ParseError, RecordError};
use crate::model::normalize_mac;

/// A Scanning API post.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanningPost {
    /// The shared secret the post carries (compare before storing anything).
    pub secret: Option<String>,
    /// `version` ("3.0").
    pub version: String,
    /// `type` ("WiFi" or "Bluetooth").
    pub kind: String,
    /// The network the observations are from.
    pub network_id: String,
    /// Clients with a usable MAC.
    pub observations: Vec<Observation>,
    /// Observations that could not be used.
    pub rejected: Vec<RecordError>,
}

/// One client in a post.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The client's MAC, normalised.
    pub mac: String,
    /// `userId` as sent (an email, username or phone number), when there is one.
    pub identity: Option<String>,
    /// The username `userId` names.
    pub username: Option<String>,
    /// The network the client is on.
    pub ssid: Option<String>,
    /// Its IPv4 address.
    pub ip: Option<String>,
    /// Its manufacturer.
    pub manufacturer: Option<String>,
    /// The latest location, when there is one.
    pub location: Option<MerakiLocation>,
}

/// A position on a Meraki floor plan.
#[derive(Debug, Clone, PartialEq)]
pub struct MerakiLocation {
    /// The floor plan's id, when given.
    pub floor_plan_id: Option<String>,
    /// Its name, when given.
    pub floor_plan_name: Option<String>,
    /// Metres from the floor plan's origin; `None` for `"NaN"`.
    pub x: Option<f64>,
    /// Metres from the floor plan's origin.
    pub y: Option<f64>,
    /// `variance`, the position's uncertainty.
    pub variance: Option<f64>,
    /// When it was measured, epoch milliseconds.
    pub time_ms: Option<i64>,
}

#[derive(Deserialize)]
struct WirePost {
    #[serde(default)]
    secret: Option<String>,
    version: String,
    #[serde(rename = "type")]
    kind: String,
    data: WireData,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireData {
    network_id: String,
    #[serde(default)]
    observations: Vec<Value>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct WireObservation {
    client_mac: Option<String>,
    user_id: Option<String>,
    ssid: Option<String>,
    ipv4: Option<String>,
    manufacturer: Option<String>,
    locations: Vec<WireLocation>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct WireLocation {
    x: Option<Value>,
    y: Option<Value>,
    variance: Option<Value>,
    floor_plan_id: Option<String>,
    floor_plan_name: Option<String>,
    time: Option<String>,
}

/// Reads a Scanning API post. A body that is not one is a [`ParseError`]; an observation without
/// a usable MAC is rejected alone.
pub fn parse_scanning(body: &[u8]) -> Result<ScanningPost, ParseError> {
    let value = json_body(body)?.ok_or_else(|| ParseError::Shape("empty body".to_owned()))?;
    let post: WirePost = record(value).map_err(ParseError::Shape)?;
    let mut observations = Vec::new();
    let mut rejected = Vec::new();
    for (index, raw) in post.data.observations.into_iter().enumerate() {
        let mac_text = record_mac(&raw, &["clientMac"]);
        let reject = |reason: String| RecordError {
            index: index + 1,
            mac: mac_text.clone(),
            reason,
        };
        let wire: WireObservation = match record(raw) {
            Ok(wire) => wire,
            Err(reason) => {
                rejected.push(reject(reason));
                continue;
            }
        };
        let Some(mac) = wire.client_mac.as_deref().and_then(normalize_mac) else {
            rejected.push(reject("clientMac: missing or not a MAC".to_owned()));
            continue;
        };
        let identity = wire.user_id.filter(|id| !id.trim().is_empty());
        observations.push(Observation {
            mac,
            username: identity.as_deref().and_then(username_of_identity),
            identity,
            ssid: wire.ssid.filter(|s| !s.is_empty()),
            ip: wire.ipv4.filter(|s| !s.is_empty()),
            manufacturer: wire.manufacturer.filter(|s| !s.is_empty()),
            location: latest(wire.locations),
        });
    }
    Ok(ScanningPost {
        secret: post.secret,
        version: post.version,
        kind: post.kind,
        network_id: post.data.network_id,
        observations,
        rejected,
    })
}

/// The most recent location (by `time`; one without a time only when none has one).
fn latest(locations: Vec<WireLocation>) -> Option<MerakiLocation> {
    locations
        .into_iter()
        .map(|l| MerakiLocation {
            floor_plan_id: l.floor_plan_id.filter(|id| !id.is_empty()),
            floor_plan_name: l.floor_plan_name.filter(|n| !n.is_empty()),
            x: number(l.x.as_ref()),
            y: number(l.y.as_ref()),
            variance: number(l.variance.as_ref()),
            time_ms: l
                .time
                .as_deref()
                .and_then(parse_timestamp)
                .map(|t| t.timestamp_millis()),
        })
        .max_by_key(|l| l.time_ms.unwrap_or(i64::MIN))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../../tests/fixtures/meraki-scanning-v3-wifi.json");

    #[test]
    fn the_published_v3_post_field_for_field() {
        let post = parse_scanning(SAMPLE.as_bytes()).expect("parses");
        assert_eq!(post.secret.as_deref(), Some("supersecret"));
        assert_eq!(post.version, "3.0");
        assert_eq!(post.kind, "WiFi");
        assert_eq!(post.network_id, "L_000000000000000001");
        assert!(post.rejected.is_empty(), "{:?}", post.rejected);
        assert_eq!(post.observations.len(), 1);
        let client = &post.observations[0];
        assert_eq!(client.mac, "11:22:33:44:55:66");
        assert_eq!(client.identity, None, "the sample has no userId");
        assert_eq!(client.ssid.as_deref(), Some(".interwebs"));
        assert_eq!(client.ip.as_deref(), Some("192.168.0.251"));
        assert_eq!(client.manufacturer.as_deref(), Some("Apple"));
        let at = client.location.as_ref().expect("a location");
        // The latest of the three, 14:27:46.
        assert_eq!(at.x, Some(8.591860719528196));
        assert_eq!(at.y, Some(11.404523745521399));
        assert_eq!(at.floor_plan_id.as_deref(), Some("g_643451796760560979"));
        assert_eq!(at.floor_plan_name.as_deref(), Some("3rd Floor"));
        assert_eq!(at.time_ms, Some(1_574_951_266_000));
    }

    #[test]
    fn user_ids_bad_clients_and_nan() {
        let body = br#"{"version":"3.0","secret":"s","type":"WiFi","data":{"networkId":"N_1","observations":[
            {"clientMac":"AA:BB:CC:DD:EE:01","userId":"CORP\\JDoe","locations":[{"x":"NaN","y":2,"time":"2024-01-01T00:00:00Z"}]},
            {"clientMac":"nope","userId":"x"},
            {"clientMac":"aa:bb:cc:dd:ee:02","locations":"not a list"},
            {"clientMac":"aa:bb:cc:dd:ee:03","userId":"jroe@corp.example"}
        ]}}"#;
        let post = parse_scanning(body).expect("parses");
        let macs: Vec<&str> = post.observations.iter().map(|o| o.mac.as_str()).collect();
        assert_eq!(macs, ["aa:bb:cc:dd:ee:01", "aa:bb:cc:dd:ee:03"]);
        assert_eq!(post.observations[0].username.as_deref(), Some("jdoe"));
        let at = post.observations[0].location.as_ref().expect("location");
        assert_eq!((at.x, at.y), (None, Some(2.0)));
        assert_eq!(post.observations[1].username.as_deref(), Some("jroe"));
        assert_eq!(post.observations[1].location, None);
        let reasons: Vec<(usize, &str)> = post
            .rejected
            .iter()
            .map(|r| (r.index, r.reason.as_str()))
            .collect();
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert_eq!(reasons[0].0, 2);
        assert!(reasons[1].1.starts_with("locations"), "{reasons:?}");
    }

    #[test]
    fn bodies_that_are_not_posts_are_errors() {
        for body in [
            &b""[..],
            b"{",
            b"[]",
            br#"{"version":"3.0","type":"WiFi"}"#,
            br#"{"version":3,"type":"WiFi","data":{"networkId":"N"}}"#,
            br#"{"version":"3.0","type":"WiFi","data":{"observations":[]}}"#,
        ] {
            assert!(
                parse_scanning(body).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
