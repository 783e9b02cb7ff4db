//! The Cisco Spaces double (`kind = "spaces"`): the Firehose stream and the map endpoints.
//!
//! - `GET /api/partners/v1/firehose/events[?fromTimestamp=ms]`: chunked NDJSON that never ends by
//!   itself. With `fromTimestamp` (> 0) it first replays the kept records (the last 10,000) whose
//!   `recordTimestamp` is at or after it, then goes live: a round of `DEVICE_LOCATION_UPDATE`s (one
//!   per device of the server, moving through its `moves` as the CMX double does) every update
//!   interval, and a `KEEP_ALIVE` every keep-alive interval. A bad `fromTimestamp` is a 400.
//! - `GET /api/partners/v1/maps/{mapId}`: `{"mapId", "imageWidth", "imageHeight", "dimension":
//!   {"length", "width", "height", "offsetX", "offsetY"}}`, where `length` is the floor's extent
//!   along x (its `width` in the scenario) and `width` the extent along y (its `length`).
//! - `GET /api/partners/v1/maps/{mapId}/image`: the generated floor plan.
//!
//! Each floor's `mapId` is `map-{floor_ref_id}`; the location chain is floor (`location-{floor_ref_id}`,
//! `FLOOR`) > building (`BUILDING`) > campus (`CAMPUS`) > root. The server's `password` is the API
//! key it demands in `X-API-KEY` (else 401); its `username` is not used.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc, Notify};

use crate::data::{Client, Placement, ServerData};
use crate::scenario::{FloorSpec, Scenario};
use crate::server::{lock, ServerHandle};

/// Records kept for replay.
const HISTORY: usize = 10_000;
/// Live records a stream may fall behind by before it is cut.
const LIVE_BACKLOG: usize = 4096;
/// Default time between two rounds of location updates.
pub const DEFAULT_UPDATE_INTERVAL: Duration = Duration::from_secs(1);
/// Default time between two keep-alives (as Spaces does).
pub const DEFAULT_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);

/// A record the double sent (or would send) on its Firehose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpacesRecord {
    /// `recordUid`.
    pub uid: String,
    /// `recordTimestamp`, epoch ms.
    pub timestamp_ms: i64,
    /// `eventType`.
    pub event_type: String,
    /// The NDJSON line, without its newline.
    pub line: String,
}

/// What a live stream is sent.
#[derive(Clone)]
enum Frame {
    Line(Bytes),
    /// Break the connection mid-way.
    Cut,
}

struct History {
    records: VecDeque<SpacesRecord>,
    next_uid: u64,
    last_ms: i64,
}

/// The Firehose state of one Spaces server.
pub(crate) struct Hub {
    update_interval: Mutex<Duration>,
    keepalive_interval: Mutex<Duration>,
    timing_changed: Notify,
    duplicate: AtomicBool,
    silent: AtomicBool,
    blank_map_ids: AtomicBool,
    /// Answers for the next stream requests: 429 with this `Retry-After` (`None`: no header).
    rejections: Mutex<VecDeque<Option<String>>>,
    history: Mutex<History>,
    live: broadcast::Sender<Frame>,
    opened: AtomicU64,
    open: Arc<AtomicU64>,
    streams_changed: Arc<Notify>,
}

impl Hub {
    pub fn new(scenario: &Scenario, server: &str) -> Hub {
        let spec = scenario.servers.iter().find(|s| s.name == server);
        let millis = |ms: Option<u64>, default| ms.map_or(default, Duration::from_millis);
        Hub {
            update_interval: Mutex::new(millis(
                spec.and_then(|s| s.interval_ms),
                DEFAULT_UPDATE_INTERVAL,
            )),
            keepalive_interval: Mutex::new(millis(
                spec.and_then(|s| s.keepalive_ms),
                DEFAULT_KEEPALIVE_INTERVAL,
            )),
            timing_changed: Notify::new(),
            duplicate: AtomicBool::new(false),
            silent: AtomicBool::new(false),
            blank_map_ids: AtomicBool::new(false),
            rejections: Mutex::new(VecDeque::new()),
            history: Mutex::new(History {
                records: VecDeque::new(),
                next_uid: 1,
                last_ms: 0,
            }),
            live: broadcast::channel(LIVE_BACKLOG).0,
            opened: AtomicU64::new(0),
            open: Arc::new(AtomicU64::new(0)),
            streams_changed: Arc::new(Notify::new()),
        }
    }

    /// Builds a record with the next uid and a timestamp that never goes back, keeps it and sends it
    /// to every open stream (twice when duplicating). Nothing at all while silent.
    fn publish(&self, event_type: &str, payload: Option<(&str, Value)>) {
        if self.silent.load(Ordering::SeqCst) {
            return;
        }
        let mut history = lock(&self.history);
        let uid = format!("event-{:08x}", history.next_uid);
        history.next_uid += 1;
        let now = chrono::Utc::now().timestamp_millis();
        let timestamp_ms = now.max(history.last_ms);
        history.last_ms = timestamp_ms;
        let mut record = json!({
            "recordUid": uid,
            "recordTimestamp": timestamp_ms,
            "spacesTenantId": "spaces-tenant-whereis-sim",
            "spacesTenantName": "Simulation",
            "partnerTenantId": "whereis-sim",
            "eventType": event_type,
        });
        if let (Some((key, value)), Some(object)) = (payload, record.as_object_mut()) {
            object.insert(key.to_owned(), value);
        }
        let line = record.to_string();
        let mut bytes = line.clone().into_bytes();
        bytes.push(b'\n');
        let bytes = Bytes::from(bytes);
        if history.records.len() >= HISTORY {
            history.records.pop_front();
        }
        history.records.push_back(SpacesRecord {
            uid,
            timestamp_ms,
            event_type: event_type.to_owned(),
            line,
        });
        // Sent under the history lock: a stream that opens takes its replay and subscribes under
        // it too, so it neither misses nor repeats a record.
        let _ = self.live.send(Frame::Line(bytes.clone()));
        if self.duplicate.load(Ordering::SeqCst) {
            let _ = self.live.send(Frame::Line(bytes));
        }
    }

    /// One location update per device; returns how many were sent.
    fn round(&self, data: &ServerData) -> usize {
        if self.silent.load(Ordering::SeqCst) {
            return 0;
        }
        let blank = self.blank_map_ids.load(Ordering::SeqCst);
        for client in &data.clients {
            let at = client.answer();
            self.publish(
                "DEVICE_LOCATION_UPDATE",
                Some(("deviceLocationUpdate", location_update(client, at, blank))),
            );
        }
        data.clients.len()
    }

    fn keepalive(&self) {
        self.publish("KEEP_ALIVE", None);
    }

    fn timing(&self) -> (Duration, Duration) {
        (
            (*lock(&self.update_interval)).max(Duration::from_millis(1)),
            (*lock(&self.keepalive_interval)).max(Duration::from_millis(1)),
        )
    }
}

/// Sends rounds of updates and keep-alives on time, for as long as the simulator runs.
pub(crate) async fn generate(data: Arc<ServerData>) {
    let Some(hub) = data.spaces.as_ref() else {
        return;
    };
    let (interval, keepalive) = hub.timing();
    let start = tokio::time::Instant::now();
    let (mut next_round, mut next_keepalive) = (start + interval, start + keepalive);
    loop {
        let changed = hub.timing_changed.notified();
        tokio::select! {
            () = tokio::time::sleep_until(next_round) => {
                hub.round(&data);
                next_round = tokio::time::Instant::now() + hub.timing().0;
            }
            () = tokio::time::sleep_until(next_keepalive) => {
                hub.keepalive();
                next_keepalive = tokio::time::Instant::now() + hub.timing().1;
            }
            () = changed => {
                let (interval, keepalive) = hub.timing();
                let now = tokio::time::Instant::now();
                (next_round, next_keepalive) = (now + interval, now + keepalive);
            }
        }
    }
}

/// `X-API-KEY` equals the key.
pub(crate) fn authorized(headers: &HeaderMap, key: &str) -> bool {
    headers
        .get("x-api-key")
        .is_some_and(|value| value.as_bytes() == key.as_bytes())
}

/// The Spaces endpoints.
pub(crate) fn router() -> Router<Arc<ServerData>> {
    Router::new()
        .route("/api/partners/v1/firehose/events", get(firehose))
        .route("/api/partners/v1/maps/{map}", get(map_info))
        .route("/api/partners/v1/maps/{map}/image", get(map_image))
}

/// A stable id for a name ("location-…").
fn fnv(kind: &str, name: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in kind.bytes().chain([b':']).chain(name.bytes()) {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    h
}

/// The `mapId` of a floor.
fn map_id(floor: &FloorSpec) -> String {
    format!("map-{}", floor.floor_ref_id)
}

fn location_json(at: &Placement) -> Value {
    let building_key = format!("{}>{}", at.campus, at.building);
    json!({
        "locationId": format!("location-{}", at.floor.floor_ref_id),
        "name": at.floor.name,
        "inferredLocationTypes": ["FLOOR"],
        "parent": {
            "locationId": format!("location-{:08x}", fnv("building", &building_key)),
            "name": at.building,
            "inferredLocationTypes": ["NETWORK", "BUILDING"],
            "parent": {
                "locationId": format!("location-{:08x}", fnv("campus", &at.campus)),
                "name": at.campus,
                "inferredLocationTypes": ["CAMPUS"],
                "parent": {
                    "locationId": "location-root",
                    "name": "Simulation",
                    "inferredLocationTypes": ["ROOT"],
                    "sourceLocationId": "",
                    "apCount": 0,
                },
                "sourceLocationId": "",
                "apCount": 0,
            },
            "sourceLocationId": "",
            "apCount": 0,
        },
        "sourceLocationId": at.floor.floor_ref_id,
        "apCount": 0,
    })
}

fn device_json(client: &Client) -> Value {
    json!({
        "deviceId": format!("device-{}", client.mac.replace(':', "")),
        "userId": "",
        "tags": [],
        "mobile": "",
        "email": "",
        "gender": "GENDER_NOT_AVAILABLE",
        "firstName": "",
        "lastName": "",
        "postalCode": "",
        "optIns": [],
        "attributes": [],
        "macAddress": client.mac,
        "manufacturer": client.manufacturer.clone().unwrap_or_default(),
        "os": "",
        "osVersion": "",
        "type": "NOT_AVAILABLE",
        "socialNetworkInfo": [],
        "deviceModel": "",
    })
}

/// A `deviceLocationUpdate` shaped like the published sample.
fn location_update(client: &Client, at: &Placement, blank_map_id: bool) -> Value {
    let last_seen = chrono::Utc::now().timestamp_millis()
        - i64::try_from(client.last_heard_seconds.saturating_mul(1000)).unwrap_or(0);
    json!({
        "device": device_json(client),
        "location": location_json(at),
        "ssid": client.ssid,
        "rawUserId": client.identity,
        "visitId": format!("visit-{}", client.mac.replace(':', "")),
        "lastSeen": last_seen.max(0),
        "deviceClassification": "",
        "mapId": if blank_map_id { String::new() } else { map_id(&at.floor) },
        "xPos": at.x,
        "yPos": at.y,
        "confidenceFactor": client.confidence,
        "latitude": -999.0,
        "longitude": -999.0,
        "unc": 0.0,
        "maxDetectedRssi": -60,
        "ipv4": client.ip.first().cloned().unwrap_or_default(),
        "ipv6": [],
    })
}

/// A 429, with `Retry-After` when given.
fn too_many_requests(retry_after: Option<String>) -> Response {
    let mut response = StatusCode::TOO_MANY_REQUESTS.into_response();
    if let Some(value) = retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// `GET /api/partners/v1/firehose/events`.
async fn firehose(
    State(data): State<Arc<ServerData>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let Some(hub) = data.spaces.as_ref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if let Some(retry_after) = lock(&hub.rejections).pop_front() {
        return too_many_requests(retry_after);
    }
    let from = match params.get("fromTimestamp").map(|v| v.trim().parse::<i64>()) {
        None => None,
        Some(Ok(ms)) => Some(ms),
        Some(Err(_)) => return (StatusCode::BAD_REQUEST, "bad fromTimestamp").into_response(),
    };
    let (replay, mut live) = {
        let history = lock(&hub.history);
        let replay: Vec<Bytes> = match from {
            Some(from) if from > 0 => history
                .records
                .iter()
                .filter(|r| r.timestamp_ms >= from)
                .map(|r| Bytes::from(format!("{}\n", r.line)))
                .collect(),
            _ => Vec::new(),
        };
        (replay, hub.live.subscribe())
    };
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    let open = StreamGuard::new(hub.open.clone(), hub.streams_changed.clone());
    hub.opened.fetch_add(1, Ordering::SeqCst);
    hub.streams_changed.notify_waiters();
    tokio::spawn(async move {
        let _open = open;
        for line in replay {
            if tx.send(Ok(line)).await.is_err() {
                return;
            }
        }
        loop {
            let frame = tokio::select! {
                frame = live.recv() => frame,
                () = tx.closed() => return,
            };
            let item = match frame {
                Ok(Frame::Line(bytes)) => Ok(bytes),
                // Fallen too far behind (or told to): the connection breaks, as a real one would.
                Ok(Frame::Cut) | Err(broadcast::error::RecvError::Lagged(_)) => Err(
                    std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "stream cut"),
                ),
                Err(broadcast::error::RecvError::Closed) => return,
            };
            let cut = item.is_err();
            if tx.send(item).await.is_err() || cut {
                return;
            }
        }
    });
    let mut response = Response::new(Body::new(ChannelBody { rx }));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    response
}

/// Counts a stream as open while it lives.
struct StreamGuard {
    open: Arc<AtomicU64>,
    changed: Arc<Notify>,
}

impl StreamGuard {
    fn new(open: Arc<AtomicU64>, changed: Arc<Notify>) -> StreamGuard {
        open.fetch_add(1, Ordering::SeqCst);
        StreamGuard { open, changed }
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::SeqCst);
        self.changed.notify_waiters();
    }
}

/// A response body fed by a channel; an `Err` breaks the connection.
struct ChannelBody {
    rx: mpsc::Receiver<Result<Bytes, std::io::Error>>,
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
        self.rx
            .poll_recv(cx)
            .map(|item| item.map(|result| result.map(hyper::body::Frame::data)))
    }
}

fn floor_by_map_id<'a>(data: &'a ServerData, map: &str) -> Option<&'a FloorSpec> {
    data.world
        .campuses
        .iter()
        .flat_map(|c| &c.buildings)
        .flat_map(|b| &b.floors)
        .find(|f| map_id(f) == map)
}

/// `GET /api/partners/v1/maps/{mapId}`.
async fn map_info(State(data): State<Arc<ServerData>>, Path(map): Path<String>) -> Response {
    let Some(floor) = floor_by_map_id(&data, &map) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let (image_width, image_height) = crate::floorplan::image_size(floor.width, floor.length);
    Json(json!({
        "mapId": map,
        "imageWidth": image_width,
        "imageHeight": image_height,
        "dimension": {
            "length": floor.width,
            "width": floor.length,
            "height": floor.height,
            "offsetX": floor.offset_x,
            "offsetY": floor.offset_y,
        },
    }))
    .into_response()
}

/// `GET /api/partners/v1/maps/{mapId}/image`.
async fn map_image(State(data): State<Arc<ServerData>>, Path(map): Path<String>) -> Response {
    let Some(image) = floor_by_map_id(&data, &map).map(|f| f.image.clone()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let lower = image.to_ascii_lowercase();
    let content_type = if lower.ends_with(".jpg") || lower.ends_with(".jpeg") {
        "image/jpeg"
    } else {
        "image/png"
    };
    let generated = tokio::task::spawn_blocking(move || data.world.image(&image)).await;
    match generated {
        Ok(Some(bytes)) => ([(header::CONTENT_TYPE, content_type)], bytes).into_response(),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// Test controls of a Spaces server (`kind = "spaces"`); on other kinds they do nothing.
impl ServerHandle {
    fn hub(&self) -> Option<&Hub> {
        self.data().spaces.as_ref()
    }

    /// Sends one round of location updates (one per device) now; returns how many.
    pub fn emit_now(&self) -> usize {
        self.hub().map_or(0, |hub| hub.round(self.data()))
    }

    /// Sends a `KEEP_ALIVE` now.
    pub fn emit_keepalive(&self) {
        if let Some(hub) = self.hub() {
            hub.keepalive();
        }
    }

    /// Sends a `DEVICE_EXIT` for `mac`.
    pub fn exit_device(&self, mac: &str) {
        let Some(hub) = self.hub() else { return };
        let mac = mac.to_ascii_lowercase();
        let device = match self.data().clients.iter().find(|c| c.mac == mac) {
            Some(client) => json!({
                "device": device_json(client),
                "location": location_json(client.here()),
                "visitId": format!("visit-{}", mac.replace(':', "")),
                "exitTimestamp": chrono::Utc::now().timestamp_millis(),
            }),
            None => json!({ "device": { "macAddress": mac } }),
        };
        hub.publish("DEVICE_EXIT", Some(("deviceExit", device)));
    }

    /// Sends `line` (a newline is added) to the open streams as it is: not kept for replay.
    pub fn send_raw_line(&self, line: &[u8]) {
        let Some(hub) = self.hub() else { return };
        let mut bytes = line.to_vec();
        bytes.push(b'\n');
        let _ = hub.live.send(Frame::Line(Bytes::from(bytes)));
    }

    /// Breaks every open stream mid-way (no end of the chunked body).
    pub fn disconnect_streams(&self) {
        if let Some(hub) = self.hub() {
            let _ = hub.live.send(Frame::Cut);
        }
    }

    /// Sends every record twice (as a replay overlapping live records does).
    pub fn set_duplicate_records(&self, on: bool) {
        if let Some(hub) = self.hub() {
            hub.duplicate.store(on, Ordering::SeqCst);
        }
    }

    /// Sends nothing at all (no updates, no keep-alives) while on; streams stay open.
    pub fn set_silent(&self, on: bool) {
        if let Some(hub) = self.hub() {
            hub.silent.store(on, Ordering::SeqCst);
        }
    }

    /// Sends location updates with an empty `mapId` while on.
    pub fn set_blank_map_ids(&self, on: bool) {
        if let Some(hub) = self.hub() {
            hub.blank_map_ids.store(on, Ordering::SeqCst);
        }
    }

    /// Answers the next `count` stream requests with 429 and this `Retry-After` (`None`: none).
    pub fn reject_next_streams(&self, count: usize, retry_after: Option<&str>) {
        if let Some(hub) = self.hub() {
            let mut rejections = lock(&hub.rejections);
            rejections.extend(std::iter::repeat_n(retry_after.map(str::to_owned), count));
        }
    }

    /// Time between two rounds of location updates (from now on).
    pub fn set_update_interval(&self, interval: Duration) {
        if let Some(hub) = self.hub() {
            *lock(&hub.update_interval) = interval;
            hub.timing_changed.notify_one();
        }
    }

    /// Time between two keep-alives (from now on).
    pub fn set_keepalive_interval(&self, interval: Duration) {
        if let Some(hub) = self.hub() {
            *lock(&hub.keepalive_interval) = interval;
            hub.timing_changed.notify_one();
        }
    }

    /// Streams open now.
    pub fn open_streams(&self) -> u64 {
        self.hub().map_or(0, |hub| hub.open.load(Ordering::SeqCst))
    }

    /// Streams opened so far (429s not included).
    pub fn streams_opened(&self) -> u64 {
        self.hub()
            .map_or(0, |hub| hub.opened.load(Ordering::SeqCst))
    }

    /// Waits until `n` streams are open at once (for tests: no sleeping; wrap it in a timeout).
    pub async fn wait_for_open_streams(&self, n: u64) {
        let Some(hub) = self.hub() else { return };
        loop {
            let changed = hub.streams_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if hub.open.load(Ordering::SeqCst) >= n {
                return;
            }
            changed.await;
        }
    }

    /// Waits until `n` streams have been opened in all (wrap it in a timeout).
    pub async fn wait_for_streams_opened(&self, n: u64) {
        let Some(hub) = self.hub() else { return };
        loop {
            let changed = hub.streams_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if hub.opened.load(Ordering::SeqCst) >= n {
                return;
            }
            changed.await;
        }
    }

    /// The records kept for replay (the last 10,000), oldest first.
    pub fn spaces_records(&self) -> Vec<SpacesRecord> {
        self.hub()
            .map(|hub| lock(&hub.history).records.iter().cloned().collect())
            .unwrap_or_default()
    }
}
