//! The scenario file: servers, campuses (buildings, floors), people and their devices; and its validation.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use crate::SimError;

/// Longest accepted `last_heard_seconds` (ten years), so timestamps stay computable.
const MAX_LAST_HEARD_SECONDS: u64 = 10 * 365 * 24 * 3600;

/// A whole simulated world: which servers run and what they see.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The location servers to start (at least one).
    pub servers: Vec<ServerSpec>,
    /// Campuses with their buildings and floors.
    #[serde(default)]
    pub campuses: Vec<CampusSpec>,
    /// People and their devices.
    #[serde(default)]
    pub people: Vec<PersonSpec>,
}

/// The API family a simulated server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum ServerKind {
    /// CMX 10.x with v3 and v2 client APIs and the map configuration (`"cmx"`).
    #[serde(rename = "cmx")]
    Cmx,
    /// CMX with the v2 client API only; v3 paths answer 404 (`"cmx-v2"`).
    #[serde(rename = "cmx-v2")]
    CmxV2,
    /// MSE 8.x Context Aware API (`"mse"`).
    #[serde(rename = "mse")]
    Mse,
    /// A Meraki network: Dashboard API, floor images, Scanning API v3 pushes (`"meraki"`).
    #[serde(rename = "meraki")]
    Meraki,
    /// Cisco Spaces: the Firehose stream and map metadata/images (`"spaces"`).
    #[serde(rename = "spaces")]
    Spaces,
}

impl ServerKind {
    /// The name used in scenario files: `cmx`, `cmx-v2`, `mse`, `meraki` or `spaces`.
    pub fn as_str(self) -> &'static str {
        match self {
            ServerKind::Cmx => "cmx",
            ServerKind::CmxV2 => "cmx-v2",
            ServerKind::Mse => "mse",
            ServerKind::Meraki => "meraki",
            ServerKind::Spaces => "spaces",
        }
    }
}

impl fmt::Display for ServerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One simulated location server.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSpec {
    /// Unique name (also used in logs and by [`crate::Simulator::server`]).
    pub name: String,
    /// Which API it speaks.
    pub kind: ServerKind,
    /// HTTP Basic username it demands.
    pub username: String,
    /// HTTP Basic password it demands.
    pub password: String,
    /// The fault it starts with.
    #[serde(default)]
    pub fault: Fault,
    /// Meraki: the network id (default: the server name).
    #[serde(default)]
    pub network_id: Option<String>,
    /// Meraki: the text the receiver must answer to the validator GET (default `sim-validator`).
    #[serde(default)]
    pub validator: Option<String>,
    /// Meraki: the secret the Scanning API posts carry (default `sim-secret`).
    #[serde(default)]
    pub secret: Option<String>,
    /// Meraki: the receiver URL the pusher posts to (loopback only).
    #[serde(default)]
    pub push_to: Option<String>,
    /// Meraki: push every this many milliseconds (default: only on demand).
    #[serde(default)]
    pub push_interval_ms: Option<u64>,
    /// Spaces only: milliseconds between two rounds of location updates (default 1000).
    #[serde(default)]
    pub interval_ms: Option<u64>,
    /// Spaces only: milliseconds between two keep-alives (default 15000).
    #[serde(default)]
    pub keepalive_ms: Option<u64>,
}

/// A misbehaviour injected into every request to a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fault {
    /// Answer normally.
    #[default]
    None,
    /// Wait this long, then answer normally (`{ latency_ms = N }`).
    Latency(Duration),
    /// Never answer (until the client gives up or the simulator stops).
    Hang,
    /// 500 with a short text body.
    Http500,
    /// 401 even with good credentials.
    Unauthorized,
    /// 200 `application/json` with a body that is not JSON.
    MalformedJson,
    /// Headers announce more body than is sent, then the socket closes.
    TruncatedBody,
    /// The TCP connection is reset after the request is read.
    ConnectionReset,
    /// 204 with an empty body.
    NoContent,
}

const FAULT_NAMES: &[&str] = &[
    "none",
    "hang",
    "http500",
    "unauthorized",
    "malformed-json",
    "truncated-body",
    "connection-reset",
    "no-content",
];

impl Fault {
    /// The fault for a name as written in scenario files (`"hang"`, `"malformed-json"`, ...).
    pub fn from_name(name: &str) -> Option<Fault> {
        Some(match name {
            "none" => Fault::None,
            "hang" => Fault::Hang,
            "http500" => Fault::Http500,
            "unauthorized" => Fault::Unauthorized,
            "malformed-json" => Fault::MalformedJson,
            "truncated-body" => Fault::TruncatedBody,
            "connection-reset" => Fault::ConnectionReset,
            "no-content" => Fault::NoContent,
            _ => return None,
        })
    }
}

impl<'de> Deserialize<'de> for Fault {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FaultVisitor;
        impl<'de> Visitor<'de> for FaultVisitor {
            type Value = Fault;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "one of {FAULT_NAMES:?} or {{ latency_ms = N }}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Fault, E> {
                Fault::from_name(v).ok_or_else(|| E::unknown_variant(v, FAULT_NAMES))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fault, A::Error> {
                let mut latency = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key != "latency_ms" {
                        return Err(de::Error::unknown_field(&key, &["latency_ms"]));
                    }
                    latency = Some(map.next_value::<u64>()?);
                }
                let ms = latency.ok_or_else(|| de::Error::missing_field("latency_ms"))?;
                Ok(Fault::Latency(Duration::from_millis(ms)))
            }
        }
        deserializer.deserialize_any(FaultVisitor)
    }
}

/// A campus: the first level of a map hierarchy.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampusSpec {
    /// Campus name (no `>`).
    pub name: String,
    /// Its buildings.
    #[serde(default)]
    pub buildings: Vec<BuildingSpec>,
}

/// A building of a campus.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildingSpec {
    /// Building name (no `>`).
    pub name: String,
    /// Its floors.
    #[serde(default)]
    pub floors: Vec<FloorSpec>,
}

/// The unit of a floor's dimensions and coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum Unit {
    /// Feet (`"FEET"`), as in every Cisco sample.
    #[default]
    #[serde(rename = "FEET")]
    Feet,
    /// Metres (`"METER"`).
    #[serde(rename = "METER")]
    Meter,
}

impl Unit {
    /// The wire spelling: `FEET` or `METER`.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Feet => "FEET",
            Unit::Meter => "METER",
        }
    }
}

fn default_height() -> f64 {
    10.0
}

/// A floor with its dimensions and image.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FloorSpec {
    /// Floor name (no `>`).
    pub name: String,
    /// The floor's aesUid as a string of digits (fits u64); unique.
    pub floor_ref_id: String,
    /// Extent along x.
    pub width: f64,
    /// Extent along y.
    pub length: f64,
    /// Height (default 10).
    #[serde(default = "default_height")]
    pub height: f64,
    /// Unit of the dimensions and of device coordinates on this floor.
    #[serde(default)]
    pub unit: Unit,
    /// Placement of the floor in its building along x.
    #[serde(default)]
    pub offset_x: f64,
    /// Placement of the floor in its building along y.
    #[serde(default)]
    pub offset_y: f64,
    /// Image name, served by the `imagesource` endpoints.
    pub image: String,
}

impl FloorSpec {
    /// The floor id as a number (0 if the scenario was not validated).
    pub fn ref_id(&self) -> u64 {
        self.floor_ref_id.parse().unwrap_or(0)
    }
}

/// A person who owns devices.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonSpec {
    /// Username (unique), the default device identity.
    pub username: String,
    /// Full name, for directories built from the scenario.
    pub display_name: String,
    /// Whether the person has opted out of being found (default false). The simulator still
    /// serves their devices: opting out is for whereis to enforce, and the demo does at start.
    #[serde(default)]
    pub opted_out: bool,
    /// The person's team, for directories built from the scenario (whereis's `share with team`).
    #[serde(default)]
    pub team: Option<String>,
    /// The person's devices.
    #[serde(default)]
    pub devices: Vec<DeviceSpec>,
}

impl PersonSpec {
    /// The identity servers know `device` by: its `identity`, else this person's username.
    pub fn device_identity<'a>(&'a self, device: &'a DeviceSpec) -> &'a str {
        device.identity.as_deref().unwrap_or(&self.username)
    }
}

fn default_status() -> String {
    "ASSOCIATED".to_owned()
}

fn default_confidence() -> f64 {
    24.0
}

/// A device as seen by one or more servers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceSpec {
    /// MAC address `xx:xx:xx:xx:xx:xx` (sent lower-case).
    pub mac: String,
    /// 802.1X identity the servers know it by (`None`: the person's username).
    #[serde(default)]
    pub identity: Option<String>,
    /// Names of the servers that see it.
    pub servers: Vec<String>,
    /// `Campus>Building>Floor` of a floor defined in the scenario.
    pub floor: String,
    /// Position from the floor's left edge, in the floor's unit.
    pub x: f64,
    /// Position from the floor's top edge, in the floor's unit.
    pub y: f64,
    /// SSID (default empty).
    #[serde(default)]
    pub ssid: String,
    /// dot11Status: ASSOCIATED (default), PROBING, ...
    #[serde(default = "default_status")]
    pub status: String,
    /// IP addresses (default none).
    #[serde(default)]
    pub ip: Vec<String>,
    /// Seconds since the device was last heard (default 0).
    #[serde(default)]
    pub last_heard_seconds: u64,
    /// confidenceFactor: radius of the 95 % area in the floor's unit (default 24).
    #[serde(default = "default_confidence")]
    pub confidence: f64,
    /// Manufacturer, if known.
    #[serde(default)]
    pub manufacturer: Option<String>,
    /// Where the device goes next: each answer that includes it gives its current position, then it
    /// moves on to the next stop, and after the last back to `floor`/`x`/`y` (deterministic, per
    /// server). Empty (default): it stays put.
    #[serde(default)]
    pub moves: Vec<MoveSpec>,
}

/// One later position of a moving device.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoveSpec {
    /// `Campus>Building>Floor` (default: the device's own `floor`).
    #[serde(default)]
    pub floor: Option<String>,
    /// Position from the floor's left edge, in the floor's unit.
    pub x: f64,
    /// Position from the floor's top edge, in the floor's unit.
    pub y: f64,
}

impl DeviceSpec {
    /// Every position the device takes in turn, `(floor, x, y)`: its own first, then its moves.
    pub fn stops(&self) -> impl Iterator<Item = (&str, f64, f64)> {
        std::iter::once((self.floor.as_str(), self.x, self.y)).chain(
            self.moves
                .iter()
                .map(|m| (m.floor.as_deref().unwrap_or(&self.floor), m.x, m.y)),
        )
    }
}

impl Scenario {
    /// Parses and validates a scenario from TOML text.
    pub fn from_toml_str(text: &str) -> Result<Scenario, SimError> {
        Self::parse(text, "<string>")
    }

    /// Reads, parses and validates a scenario file; errors name the file.
    pub fn from_file(path: &Path) -> Result<Scenario, SimError> {
        let text = std::fs::read_to_string(path).map_err(|source| SimError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// The built-in demo scenario (`scenarios/demo.toml`): four servers, two campuses, five
    /// buildings, forty people (a few walking about, one opted out).
    pub fn builtin_demo() -> Scenario {
        match Self::parse(include_str!("../scenarios/demo.toml"), "demo.toml") {
            Ok(scenario) => scenario,
            // The file is checked by a unit test; an empty world is a safe fallback.
            Err(err) => {
                tracing::error!("built-in demo scenario is broken: {err}");
                Scenario {
                    servers: Vec::new(),
                    campuses: Vec::new(),
                    people: Vec::new(),
                }
            }
        }
    }

    fn parse(text: &str, origin: &str) -> Result<Scenario, SimError> {
        let scenario: Scenario = toml::from_str(text).map_err(|e| SimError::Parse {
            origin: origin.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        scenario.check(origin)?;
        Ok(scenario)
    }

    /// Checks the scenario's consistency (done by the constructors and by [`crate::Simulator::start`]).
    pub fn validate(&self) -> Result<(), SimError> {
        self.check("<value>")
    }

    /// Every floor with its hierarchy `Campus>Building>Floor`, in scenario order.
    pub fn floors(&self) -> impl Iterator<Item = (String, &CampusSpec, &BuildingSpec, &FloorSpec)> {
        self.campuses.iter().flat_map(|c| {
            c.buildings.iter().flat_map(move |b| {
                b.floors
                    .iter()
                    .map(move |f| (format!("{}>{}>{}", c.name, b.name, f.name), c, b, f))
            })
        })
    }

    fn check(&self, origin: &str) -> Result<(), SimError> {
        let mut p = Vec::new();
        let servers: HashSet<&str> = self.servers.iter().map(|s| s.name.as_str()).collect();
        if self.servers.is_empty() {
            p.push("no [[servers]]: at least one is needed".to_owned());
        }
        let mut seen = HashSet::new();
        for (i, s) in self.servers.iter().enumerate() {
            let at = format!("servers[{i}] {:?}", s.name);
            if s.name.trim().is_empty() {
                p.push(format!("servers[{i}]: empty name"));
            } else if !seen.insert(s.name.as_str()) {
                p.push(format!("{at}: duplicate server name"));
            }
            if s.username.is_empty() || s.username.contains(':') {
                p.push(format!("{at}: username must be non-empty and without ':'"));
            }
            crate::meraki::check_server(&mut p, &at, s);
            for (key, value) in [
                ("interval_ms", s.interval_ms),
                ("keepalive_ms", s.keepalive_ms),
            ] {
                match value {
                    Some(_) if s.kind != ServerKind::Spaces => {
                        p.push(format!("{at}: {key} is for spaces servers only"));
                    }
                    Some(0) => p.push(format!("{at}: {key} must be at least 1")),
                    _ => {}
                }
            }
        }

        let mut campus_names = HashSet::new();
        let mut ref_ids = HashMap::new();
        for (ci, c) in self.campuses.iter().enumerate() {
            check_name(&mut p, &format!("campuses[{ci}]"), &c.name);
            if !campus_names.insert(c.name.as_str()) {
                p.push(format!("campuses[{ci}]: duplicate campus {:?}", c.name));
            }
            let mut building_names = HashSet::new();
            for (bi, b) in c.buildings.iter().enumerate() {
                let at = format!("campus {:?} buildings[{bi}]", c.name);
                check_name(&mut p, &at, &b.name);
                if !building_names.insert(b.name.as_str()) {
                    p.push(format!("{at}: duplicate building {:?}", b.name));
                }
                let mut floor_names = HashSet::new();
                for (fi, f) in b.floors.iter().enumerate() {
                    let at = format!("{}>{} floors[{fi}] {:?}", c.name, b.name, f.name);
                    check_name(&mut p, &at, &f.name);
                    if !floor_names.insert(f.name.as_str()) {
                        p.push(format!("{at}: duplicate floor name"));
                    }
                    let digits = !f.floor_ref_id.is_empty()
                        && f.floor_ref_id.bytes().all(|b| b.is_ascii_digit());
                    if !digits || f.floor_ref_id.parse::<u64>().is_err() {
                        p.push(format!(
                            "{at}: floor_ref_id {:?} must be a string of digits that fits in 64 bits",
                            f.floor_ref_id
                        ));
                    } else if let Some(other) = ref_ids.insert(f.floor_ref_id.as_str(), at.clone())
                    {
                        p.push(format!(
                            "{at}: floor_ref_id {} is also used by {other}",
                            f.floor_ref_id
                        ));
                    }
                    if !(f.width.is_finite()
                        && f.width > 0.0
                        && f.length.is_finite()
                        && f.length > 0.0)
                    {
                        p.push(format!("{at}: width and length must be positive numbers"));
                    }
                    if !(f.height.is_finite() && f.height >= 0.0) {
                        p.push(format!("{at}: height must be a number >= 0"));
                    }
                    if !(f.offset_x.is_finite() && f.offset_y.is_finite()) {
                        p.push(format!("{at}: offsets must be finite numbers"));
                    }
                    if f.image.is_empty() || f.image.contains('/') {
                        p.push(format!(
                            "{at}: image must be a file name (non-empty, no '/')"
                        ));
                    }
                }
            }
        }

        let floors: HashSet<String> = self.floors().map(|(h, ..)| h).collect();
        let mut usernames = HashSet::new();
        let mut server_macs = HashSet::new();
        for (pi, person) in self.people.iter().enumerate() {
            let who = format!("people[{pi}] {:?}", person.username);
            if person.username.is_empty() {
                p.push(format!("people[{pi}]: empty username"));
            } else if !usernames.insert(person.username.as_str()) {
                p.push(format!("{who}: duplicate username"));
            }
            for (di, d) in person.devices.iter().enumerate() {
                let at = format!("{who} devices[{di}]");
                if !is_mac(&d.mac) {
                    p.push(format!(
                        "{at}: mac {:?} is not like 00:11:22:33:44:55",
                        d.mac
                    ));
                }
                if d.servers.is_empty() {
                    p.push(format!("{at}: servers is empty: name at least one server"));
                }
                for s in &d.servers {
                    if !servers.contains(s.as_str()) {
                        let mut known: Vec<&str> = servers.iter().copied().collect();
                        known.sort_unstable();
                        p.push(format!(
                            "{at}: unknown server {s:?} (known: {})",
                            known.join(", ")
                        ));
                    } else if !server_macs.insert((s.as_str(), d.mac.to_ascii_lowercase())) {
                        p.push(format!(
                            "{at}: server {s:?} already sees a device with mac {}",
                            d.mac
                        ));
                    }
                }
                for (si, (floor, x, y)) in d.stops().enumerate() {
                    let at = match si {
                        0 => at.clone(),
                        _ => format!("{at} moves[{}]", si - 1),
                    };
                    if !floors.contains(floor) {
                        p.push(format!(
                            "{at}: unknown floor {floor:?} (write Campus>Building>Floor of a floor in [[campuses]])"
                        ));
                    }
                    if !(x.is_finite() && y.is_finite()) {
                        p.push(format!("{at}: x and y must be finite numbers"));
                    }
                }
                if !(d.confidence.is_finite() && d.confidence >= 0.0) {
                    p.push(format!("{at}: confidence must be a number >= 0"));
                }
                if d.status.trim().is_empty() {
                    p.push(format!("{at}: status must not be empty"));
                }
                if d.last_heard_seconds > MAX_LAST_HEARD_SECONDS {
                    p.push(format!(
                        "{at}: last_heard_seconds {} is more than ten years",
                        d.last_heard_seconds
                    ));
                }
                for ip in &d.ip {
                    if ip.parse::<IpAddr>().is_err() {
                        p.push(format!("{at}: ip {ip:?} is not an IP address"));
                    }
                }
            }
        }

        if p.is_empty() {
            Ok(())
        } else {
            Err(SimError::Invalid {
                origin: origin.to_owned(),
                problems: p,
            })
        }
    }
}

fn check_name(problems: &mut Vec<String>, at: &str, name: &str) {
    if name.trim().is_empty() || name.contains('>') {
        problems.push(format!(
            "{at}: name {name:?} must be non-empty and without '>'"
        ));
    }
}

fn is_mac(mac: &str) -> bool {
    let parts: Vec<&str> = mac.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = r#"
[[servers]]
name = "a"
kind = "cmx"
username = "u"
password = "p"

[[campuses]]
name = "C"
[[campuses.buildings]]
name = "B"
[[campuses.buildings.floors]]
name = "F"
floor_ref_id = "1"
width = 10.0
length = 5.0
image = "f.png"

[[people]]
username = "jdoe"
display_name = "Jane"
[[people.devices]]
mac = "00:11:22:33:44:55"
servers = ["a"]
floor = "C>B>F"
x = 1.0
y = 2.0
"#;

    fn problems(text: &str) -> String {
        match Scenario::from_toml_str(text) {
            Ok(_) => panic!("scenario should be rejected"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn small_scenario_has_defaults() {
        let s = Scenario::from_toml_str(SMALL).expect("valid");
        let f = &s.campuses[0].buildings[0].floors[0];
        assert_eq!(f.height, 10.0);
        assert_eq!(f.unit, Unit::Feet);
        let person = &s.people[0];
        let d = &person.devices[0];
        assert_eq!(person.device_identity(d), "jdoe");
        assert_eq!(d.status, "ASSOCIATED");
        assert_eq!(d.confidence, 24.0);
        assert_eq!(s.servers[0].fault, Fault::None);
    }

    #[test]
    fn builtin_demo_is_valid() {
        let s = Scenario::parse(include_str!("../scenarios/demo.toml"), "demo.toml")
            .expect("demo.toml valid");
        // Four CMX/MSE servers, a Cisco Spaces tenant and a Meraki network.
        assert_eq!(s.servers.len(), 6);
        assert!(s.people.iter().any(|p| p.username == "jdoe"));
        assert_eq!(Scenario::builtin_demo(), s);
    }

    #[test]
    fn moves_and_opt_out_are_read_and_checked() {
        let moving = SMALL.replace(
            "y = 2.0\n",
            "y = 2.0\n[[people.devices.moves]]\nx = 3.0\ny = 4.0\n[[people.devices.moves]]\nfloor = \"C>B>F\"\nx = 5.0\ny = 6.0\n",
        );
        let s = Scenario::from_toml_str(&moving).expect("valid");
        let stops: Vec<_> = s.people[0].devices[0].stops().collect();
        assert_eq!(
            stops,
            [
                ("C>B>F", 1.0, 2.0),
                ("C>B>F", 3.0, 4.0),
                ("C>B>F", 5.0, 6.0)
            ]
        );
        assert!(!s.people[0].opted_out);
        let msg =
            problems(&moving.replace("floor = \"C>B>F\"\nx = 5.0", "floor = \"C>B>G\"\nx = 5.0"));
        assert!(msg.contains("moves[1]: unknown floor \"C>B>G\""), "{msg}");
        let opted = SMALL.replace(
            "display_name = \"Jane\"",
            "display_name = \"Jane\"\nopted_out = true",
        );
        assert!(Scenario::from_toml_str(&opted).expect("valid").people[0].opted_out);
    }

    #[test]
    fn faults_parse() {
        for (text, want) in [
            ("\"hang\"", Fault::Hang),
            ("\"malformed-json\"", Fault::MalformedJson),
            ("\"connection-reset\"", Fault::ConnectionReset),
            (
                "{ latency_ms = 20 }",
                Fault::Latency(Duration::from_millis(20)),
            ),
        ] {
            let doc = SMALL.replace(
                "password = \"p\"",
                &format!("password = \"p\"\nfault = {text}"),
            );
            let s = Scenario::from_toml_str(&doc).expect("valid");
            assert_eq!(s.servers[0].fault, want);
        }
        let bad = SMALL.replace("password = \"p\"", "password = \"p\"\nfault = \"explode\"");
        let msg = problems(&bad);
        assert!(msg.contains("explode") && msg.contains("hang"), "{msg}");
        let bad = SMALL.replace(
            "password = \"p\"",
            "password = \"p\"\nfault = { latency = 3 }",
        );
        assert!(problems(&bad).contains("latency_ms"));
    }

    #[test]
    fn unknown_key_is_named() {
        let msg = problems(&SMALL.replace("x = 1.0", "x = 1.0\ncolour = \"red\""));
        assert!(msg.contains("colour"), "{msg}");
        assert!(msg.contains("<string>"), "{msg}");
    }

    #[test]
    fn unknown_server_and_floor_are_named() {
        let msg = problems(&SMALL.replace("servers = [\"a\"]", "servers = [\"zz\"]"));
        assert!(msg.contains("unknown server \"zz\""), "{msg}");
        let msg = problems(&SMALL.replace("floor = \"C>B>F\"", "floor = \"C>B>G\""));
        assert!(msg.contains("unknown floor \"C>B>G\""), "{msg}");
    }

    #[test]
    fn bad_values_are_reported() {
        let doubled = format!(
            "{SMALL}\n[[servers]]\nname = \"a\"\nkind = \"mse\"\nusername = \"u\"\npassword = \"p\"\n"
        );
        assert!(problems(&doubled).contains("duplicate server name"));
        assert!(problems(&SMALL.replace("\"1\"", "\"12x\"")).contains("floor_ref_id"));
        assert!(problems(&SMALL.replace("00:11:22:33:44:55", "0011.2233.4455")).contains("mac"));
        assert!(
            problems(&SMALL.replace("y = 2.0", "y = 2.0\nip = [\"10.0.0.300\"]")).contains("ip")
        );
        assert!(problems(&SMALL.replace("kind = \"cmx\"", "kind = \"cmx3\"")).contains("cmx3"));
        let twice = SMALL.replace("servers = [\"a\"]", "servers = [\"a\", \"a\"]");
        assert!(problems(&twice).contains("already sees"));
    }

    #[test]
    fn file_errors_name_the_file() {
        let missing = Path::new("/nonexistent/dir/scenario.toml");
        let msg = Scenario::from_file(missing)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(msg.contains("/nonexistent/dir/scenario.toml"), "{msg}");
    }
}
