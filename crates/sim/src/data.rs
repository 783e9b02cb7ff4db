//! What one simulated server knows (its clients, the campuses) and the wire timestamp format.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use chrono::{DateTime, TimeDelta, Utc};

use crate::scenario::{CampusSpec, FloorSpec, Scenario, ServerKind};
use crate::server::lock;

/// The campuses and the floor images, shared by every server of a simulator.
pub(crate) struct World {
    pub campuses: Vec<CampusSpec>,
    images: Mutex<HashMap<String, Bytes>>,
}

impl World {
    pub fn new(scenario: &Scenario) -> World {
        World {
            campuses: scenario.campuses.clone(),
            images: Mutex::new(HashMap::new()),
        }
    }

    /// The floor that uses image `name`.
    pub fn floor_by_image(&self, name: &str) -> Option<&FloorSpec> {
        self.campuses
            .iter()
            .flat_map(|c| &c.buildings)
            .flat_map(|b| &b.floors)
            .find(|f| f.image == name)
    }

    /// The PNG for image `name`, generated once.
    pub fn image(&self, name: &str) -> Option<Bytes> {
        if let Some(png) = lock(&self.images).get(name) {
            return Some(png.clone());
        }
        let floor = self.floor_by_image(name)?;
        let png = match crate::floorplan::image_for_floor(floor.width, floor.length, name) {
            Ok(bytes) => Bytes::from(bytes),
            Err(err) => {
                tracing::error!(image = name, error = %err, "floor image generation failed");
                return None;
            }
        };
        lock(&self.images).insert(name.to_owned(), png.clone());
        Some(png)
    }
}

/// A position of a device: a floor and a point on it.
pub(crate) struct Placement {
    pub campus: String,
    pub building: String,
    pub floor: FloorSpec,
    pub x: f64,
    pub y: f64,
}

impl Placement {
    pub fn hierarchy(&self) -> String {
        format!("{}>{}>{}", self.campus, self.building, self.floor.name)
    }
}

/// One device as one server sees it, with its floors resolved.
pub(crate) struct Client {
    pub mac: String,
    pub identity: String,
    /// Its positions in turn (never empty; one for a device that stays put).
    placements: Vec<Placement>,
    /// Answers that included the device so far: the index of its next position.
    answers: AtomicUsize,
    pub ssid: String,
    pub status: String,
    pub ip: Vec<String>,
    pub last_heard_seconds: u64,
    pub confidence: f64,
    pub manufacturer: Option<String>,
    /// Position in the server's list, for stable synthetic numbers.
    pub index: usize,
}

impl Client {
    /// Where the device is now.
    pub fn here(&self) -> &Placement {
        let next = self.answers.load(Ordering::SeqCst);
        &self.placements[next % self.placements.len()]
    }

    /// Where the device is for an answer being written: a moving device then goes on to its next
    /// position, so the next answer that includes it finds it there.
    pub fn answer(&self) -> &Placement {
        let next = self.answers.fetch_add(1, Ordering::SeqCst);
        &self.placements[next % self.placements.len()]
    }

    pub fn associated(&self) -> bool {
        self.status == "ASSOCIATED"
    }

    /// A plausible access-point MAC near the device on `at`'s floor.
    pub fn ap_mac(&self, at: &Placement) -> String {
        format!(
            "00:2b:01:00:{:02x}:{:02x}",
            at.floor.ref_id() % 256,
            self.index % 16 * 16
        )
    }
}

/// The data behind one server's endpoints.
pub(crate) struct ServerData {
    pub kind: ServerKind,
    pub world: Arc<World>,
    pub clients: Vec<Client>,
    /// A Meraki server's network state.
    pub meraki: Option<Arc<crate::meraki::MerakiState>>,
    /// The Firehose of a Spaces server.
    pub spaces: Option<crate::spaces::Hub>,
}

impl ServerData {
    pub fn new(
        scenario: &Scenario,
        server: &str,
        kind: ServerKind,
        world: Arc<World>,
    ) -> ServerData {
        let floors: HashMap<String, (&CampusSpec, &crate::BuildingSpec, &FloorSpec)> = scenario
            .floors()
            .map(|(h, c, b, f)| (h, (c, b, f)))
            .collect();
        let mut clients = Vec::new();
        for person in &scenario.people {
            for d in &person.devices {
                if !d.servers.iter().any(|s| s == server) {
                    continue;
                }
                let placements: Vec<Placement> = d
                    .stops()
                    .filter_map(|(floor, x, y)| {
                        let (campus, building, floor) = floors.get(floor)?;
                        Some(Placement {
                            campus: campus.name.clone(),
                            building: building.name.clone(),
                            floor: (*floor).clone(),
                            x,
                            y,
                        })
                    })
                    .collect();
                if placements.is_empty() {
                    continue; // rejected by validation
                }
                clients.push(Client {
                    mac: d.mac.to_ascii_lowercase(),
                    identity: person.device_identity(d).to_owned(),
                    placements,
                    answers: AtomicUsize::new(0),
                    ssid: d.ssid.clone(),
                    status: d.status.clone(),
                    ip: d.ip.clone(),
                    last_heard_seconds: d.last_heard_seconds,
                    confidence: d.confidence,
                    manufacturer: d.manufacturer.clone(),
                    index: clients.len(),
                });
            }
        }
        ServerData {
            kind,
            world,
            clients,
            meraki: crate::meraki::MerakiState::for_server(scenario, server).map(Arc::new),
            spaces: (kind == ServerKind::Spaces).then(|| crate::spaces::Hub::new(scenario, server)),
        }
    }

    /// Clients whose identity is exactly `username` (all when `None`).
    pub fn matching<'a>(&'a self, username: Option<&'a str>) -> impl Iterator<Item = &'a Client> {
        self.clients
            .iter()
            .filter(move |c| username.is_none_or(|u| c.identity == u))
    }
}

/// The moment of one answer, and timestamps relative to it.
pub(crate) struct Now(DateTime<Utc>);

impl Now {
    pub fn new() -> Now {
        Now(Utc::now())
    }

    /// `seconds` before now (now if out of range).
    pub fn ago(&self, seconds: u64) -> DateTime<Utc> {
        i64::try_from(seconds)
            .ok()
            .and_then(TimeDelta::try_seconds)
            .and_then(|d| self.0.checked_sub_signed(d))
            .unwrap_or(self.0)
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// Wire format `2017-11-23T15:30:41.662+0000` (milliseconds, offset without a colon).
pub(crate) fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f%z").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_format_has_millis_and_colonless_offset() {
        let t = DateTime::from_timestamp_millis(1_511_425_836_280).expect("in range");
        assert_eq!(stamp(t), "2017-11-23T08:30:36.280+0000");
    }

    #[test]
    fn a_moving_device_goes_round_its_stops_one_answer_at_a_time() {
        let scenario = Scenario::from_toml_str(
            r#"
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
[[campuses.buildings]]
name = "D"
[[campuses.buildings.floors]]
name = "G"
floor_ref_id = "2"
width = 10.0
length = 5.0
image = "g.png"
[[people]]
username = "walker"
display_name = "Walker"
[[people.devices]]
mac = "00:11:22:33:44:55"
servers = ["a"]
floor = "C>B>F"
x = 1.0
y = 2.0
[[people.devices.moves]]
floor = "C>D>G"
x = 3.0
y = 4.0
"#,
        )
        .expect("valid");
        let world = Arc::new(World::new(&scenario));
        let data = ServerData::new(&scenario, "a", ServerKind::Cmx, world);
        let client = &data.clients[0];
        let seen: Vec<(String, f64)> = (0..3)
            .map(|_| {
                let before = client.here().hierarchy();
                let at = client.answer();
                assert_eq!(
                    at.hierarchy(),
                    before,
                    "here() is where the next answer places it"
                );
                (at.hierarchy(), at.x)
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("C>B>F".to_owned(), 1.0),
                ("C>D>G".to_owned(), 3.0),
                ("C>B>F".to_owned(), 1.0)
            ]
        );
    }

    #[test]
    fn ago_never_panics() {
        let now = Now::new();
        assert_eq!(now.ago(u64::MAX), now.now());
        assert_eq!((now.now() - now.ago(12)).num_seconds(), 12);
    }
}
