//! The Meraki double: the Dashboard API of one network (`/api/v1/networks/{id}`, its `floorPlans` and
//! its `clients`), floor images on a host of their own behind expiring URLs, and a Scanning API v3
//! pusher that POSTs the server's devices to a receiver after the validator handshake.
//!
//! Positions: the scenario places devices from a floor's top-left corner in the floor's unit;
//! Meraki sends metres from the plan's bottom-left corner, so the double converts
//! (`x_m = x · k`, `y_m = (length − y) · k`, `k` = 0.3048 for `FEET`, 1 for `METER`), and gives the
//! plans' `width`/`height` in metres too.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, TimeDelta, Utc};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::data::{Client, ServerData};
use crate::scenario::{FloorSpec, Scenario, ServerKind, ServerSpec, Unit};
use crate::server::lock;
use crate::SimError;

/// The validator text the receiver must answer when the scenario names none.
pub const DEFAULT_VALIDATOR: &str = "sim-validator";
/// The secret posts carry when the scenario names none.
pub const DEFAULT_SECRET: &str = "sim-secret";
/// How long a floor image URL stays valid unless [`MerakiHandle::set_image_url_ttl`] says otherwise.
const DEFAULT_IMAGE_URL_TTL: Duration = Duration::from_secs(15 * 60);
/// Timeout of each request of the pusher.
const PUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// Shortest `push_interval_ms` accepted.
const MIN_PUSH_INTERVAL_MS: u64 = 10;
/// Image URL tokens kept before expired ones are forgotten.
const MAX_TOKENS: usize = 10_000;
/// Metres per degree of latitude, for the plans' corner coordinates.
const METRES_PER_DEGREE: f64 = 111_320.0;

const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Metres per unit of a scenario floor.
fn metres_per(unit: Unit) -> f64 {
    match unit {
        Unit::Feet => 0.3048,
        Unit::Meter => 1.0,
    }
}

/// A Meraki floor plan id for a scenario floor: stable, from its `floor_ref_id`.
pub(crate) fn floor_plan_id(floor: &FloorSpec) -> String {
    format!("g_{}", floor.floor_ref_id)
}

/// Checks the Meraki keys of one `[[servers]]` entry (called by the scenario validation).
pub(crate) fn check_server(problems: &mut Vec<String>, at: &str, spec: &ServerSpec) {
    let meraki_keys = spec.network_id.is_some()
        || spec.validator.is_some()
        || spec.secret.is_some()
        || spec.push_to.is_some()
        || spec.push_interval_ms.is_some();
    if spec.kind != ServerKind::Meraki {
        if meraki_keys {
            problems.push(format!(
                "{at}: network_id, validator, secret, push_to and push_interval_ms are for kind = \"meraki\" only"
            ));
        }
        return;
    }
    if spec
        .network_id
        .as_deref()
        .is_some_and(|id| id.trim().is_empty())
    {
        problems.push(format!("{at}: network_id must not be empty"));
    }
    if let Some(url) = &spec.push_to {
        if let Err(why) = loopback_url(url) {
            problems.push(format!("{at}: push_to {url:?}: {why}"));
        }
    }
    if spec
        .push_interval_ms
        .is_some_and(|ms| ms < MIN_PUSH_INTERVAL_MS)
    {
        problems.push(format!(
            "{at}: push_interval_ms must be at least {MIN_PUSH_INTERVAL_MS}"
        ));
    }
}

/// `url` if it is an http(s) URL on a loopback address: the pusher posts nowhere else.
fn loopback_url(url: &str) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url).map_err(|err| err.to_string())?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("not an http(s) URL".to_owned());
    }
    let host = parsed.host_str().unwrap_or_default();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = match bare.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    };
    if loopback {
        Ok(parsed)
    } else {
        Err("not a loopback address (the simulator posts only on this machine)".to_owned())
    }
}

/// A floor of the network, as a floor plan.
struct PlanFloor {
    id: String,
    floor: FloorSpec,
    /// Position among the plans, to place it on the globe.
    index: usize,
}

impl PlanFloor {
    fn width_m(&self) -> f64 {
        self.floor.width * metres_per(self.floor.unit)
    }

    fn height_m(&self) -> f64 {
        self.floor.length * metres_per(self.floor.unit)
    }

    /// The bottom-left corner's latitude and longitude.
    fn origin(&self) -> (f64, f64) {
        (37.418 + 0.002 * self.index as f64, -122.0985)
    }

    /// Latitude and longitude of a point `x` m east, `y` m north of the bottom-left corner.
    fn geo(&self, x: f64, y: f64) -> Value {
        let (lat0, lng0) = self.origin();
        let lng_metres = METRES_PER_DEGREE * lat0.to_radians().cos();
        json!({"lat": lat0 + y / METRES_PER_DEGREE, "lng": lng0 + x / lng_metres})
    }
}

/// What the double can be told to do differently.
struct Knobs {
    receiver: Option<String>,
    validator: String,
    secret: String,
    omit_user_id: bool,
    image_url_ttl: Duration,
    /// Dashboard requests still to answer 429, and their `Retry-After`.
    rate_limited: u32,
    retry_after: Option<String>,
    /// Origin written into page links instead of the one the request came to.
    link_base: Option<String>,
    /// The receiver and validator text last handshaken successfully.
    validated: Option<(String, String)>,
}

/// A request to the image host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRequest {
    /// The URL token (the file name without `.png`).
    pub token: String,
    /// The floor plan the token was issued for, if it is known.
    pub floor_plan_id: Option<String>,
    /// Whether the request carried an `Authorization` header (it never should).
    pub authorization: bool,
    /// The status answered: 200, 403 (expired) or 404 (unknown).
    pub status: u16,
}

/// One round of the pusher that reached the POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushReport {
    /// Where it posted.
    pub receiver: String,
    /// The status of the validator GET, when the handshake ran in this round (it runs once per
    /// receiver and validator text).
    pub validation_status: Option<u16>,
    /// The status of the POST.
    pub status: u16,
    /// Observations in the body.
    pub observations: usize,
    /// The JSON body posted.
    pub body: String,
}

/// The state of one Meraki network's double, shared by its Dashboard routes, its image host and its
/// handle.
pub(crate) struct MerakiState {
    network_id: String,
    network_name: String,
    api_key: String,
    plans: Vec<PlanFloor>,
    push_interval: Option<Duration>,
    dashboard_addr: OnceLock<SocketAddr>,
    image_addr: OnceLock<SocketAddr>,
    knobs: Mutex<Knobs>,
    tokens: Mutex<HashMap<String, (String, DateTime<Utc>)>>,
    token_counter: AtomicU64,
    images: Mutex<HashMap<String, Bytes>>,
    image_log: Mutex<Vec<ImageRequest>>,
    push_log: Mutex<Vec<Result<PushReport, String>>>,
    notify: Notify,
    http: OnceLock<reqwest::Client>,
}

impl MerakiState {
    /// The state of server `server` if the scenario makes it a Meraki one.
    pub(crate) fn for_server(scenario: &Scenario, server: &str) -> Option<MerakiState> {
        let spec = scenario
            .servers
            .iter()
            .find(|s| s.name == server && s.kind == ServerKind::Meraki)?;
        let floors: HashMap<String, FloorSpec> = scenario
            .floors()
            .map(|(h, _, _, f)| (h, f.clone()))
            .collect();
        let mut seen: Vec<String> = Vec::new();
        for device in scenario.people.iter().flat_map(|p| &p.devices) {
            if !device.servers.iter().any(|s| s == server) {
                continue;
            }
            for (floor, _, _) in device.stops() {
                if !seen.iter().any(|h| h == floor) && floors.contains_key(floor) {
                    seen.push(floor.to_owned());
                }
            }
        }
        // Scenario order, not first-seen order.
        let plans = scenario
            .floors()
            .filter(|(h, ..)| seen.contains(h))
            .enumerate()
            .map(|(index, (_, _, _, floor))| PlanFloor {
                id: floor_plan_id(floor),
                floor: floor.clone(),
                index,
            })
            .collect();
        Some(MerakiState {
            network_id: spec.network_id.clone().unwrap_or_else(|| spec.name.clone()),
            network_name: spec.name.clone(),
            api_key: spec.password.clone(),
            plans,
            push_interval: spec.push_interval_ms.map(Duration::from_millis),
            dashboard_addr: OnceLock::new(),
            image_addr: OnceLock::new(),
            knobs: Mutex::new(Knobs {
                receiver: spec.push_to.clone(),
                validator: spec
                    .validator
                    .clone()
                    .unwrap_or_else(|| DEFAULT_VALIDATOR.to_owned()),
                secret: spec
                    .secret
                    .clone()
                    .unwrap_or_else(|| DEFAULT_SECRET.to_owned()),
                omit_user_id: false,
                image_url_ttl: DEFAULT_IMAGE_URL_TTL,
                rate_limited: 0,
                retry_after: None,
                link_base: None,
                validated: None,
            }),
            tokens: Mutex::new(HashMap::new()),
            token_counter: AtomicU64::new(0),
            images: Mutex::new(HashMap::new()),
            image_log: Mutex::new(Vec::new()),
            push_log: Mutex::new(Vec::new()),
            notify: Notify::new(),
            http: OnceLock::new(),
        })
    }

    fn plan(&self, id: &str) -> Option<&PlanFloor> {
        self.plans.iter().find(|p| p.id == id)
    }

    /// A fresh image URL for `plan`, and when it expires.
    fn issue_image_url(&self, plan: &PlanFloor, now: DateTime<Utc>) -> (String, DateTime<Utc>) {
        let ttl = lock(&self.knobs).image_url_ttl;
        let expires = TimeDelta::from_std(ttl)
            .ok()
            .and_then(|ttl| now.checked_add_signed(ttl))
            .unwrap_or(now);
        let serial = self.token_counter.fetch_add(1, Ordering::SeqCst);
        let token = format!("{}-{serial:x}", plan.id);
        {
            let mut tokens = lock(&self.tokens);
            if tokens.len() >= MAX_TOKENS {
                tokens.retain(|_, (_, at)| *at > now);
            }
            tokens.insert(token.clone(), (plan.id.clone(), expires));
        }
        let host = self
            .image_addr
            .get()
            .map_or_else(|| "127.0.0.1:0".to_owned(), SocketAddr::to_string);
        (format!("http://{host}/images/{token}.png"), expires)
    }

    fn record_image(&self, request: ImageRequest) {
        lock(&self.image_log).push(request);
        self.notify.notify_waiters();
    }

    /// Counts down an injected 429; `Some(response)` while one is due.
    fn rate_limit(&self) -> Option<Response> {
        let mut knobs = lock(&self.knobs);
        if knobs.rate_limited == 0 {
            return None;
        }
        knobs.rate_limited -= 1;
        let mut response = (
            StatusCode::TOO_MANY_REQUESTS,
            Json(json!({"errors": ["API rate limit exceeded for organization"]})),
        )
            .into_response();
        if let Some(value) = knobs
            .retry_after
            .as_deref()
            .and_then(|v| header::HeaderValue::from_str(v).ok())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        Some(response)
    }
}

/// Whether `headers` carry `Authorization: Bearer <api_key>`.
pub(crate) fn bearer_ok(headers: &HeaderMap, api_key: &str) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .is_some_and(|(scheme, key)| scheme.eq_ignore_ascii_case("bearer") && key.trim() == api_key)
}

/// Binds the image host next to the Dashboard (same IP, its own port) and starts it, and the
/// periodic pusher when the scenario asks for one.
pub(crate) async fn start(
    data: &Arc<ServerData>,
    ip: IpAddr,
    dashboard: SocketAddr,
) -> Result<Vec<JoinHandle<()>>, SimError> {
    let Some(state) = data.meraki.clone() else {
        return Ok(Vec::new());
    };
    let _ = state.dashboard_addr.set(dashboard);
    let addr = SocketAddr::new(ip, 0);
    let bind_err = |source| SimError::Bind {
        server: format!("{} (floor images)", state.network_name),
        addr,
        source,
    };
    let listener = TcpListener::bind(addr).await.map_err(bind_err)?;
    let image_addr = listener.local_addr().map_err(bind_err)?;
    let _ = state.image_addr.set(image_addr);
    tracing::info!(server = %state.network_name, %image_addr, "simulated Meraki image host listening");
    let images = Router::new()
        .route("/images/{file}", get(image))
        .fallback(|| async { StatusCode::NOT_FOUND })
        .with_state(state.clone());
    let mut tasks = vec![tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, images).await {
            tracing::warn!("simulated Meraki image host stopped: {err}");
        }
    })];
    if let Some(interval) = state.push_interval {
        let handle = MerakiHandle {
            data: data.clone(),
            state,
        };
        tasks.push(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                if handle.receiver().is_none() {
                    continue;
                }
                if let Err(err) = handle.push_now().await {
                    tracing::debug!(server = %handle.state.network_name, "no Scanning API post: {err}");
                }
            }
        }));
    }
    Ok(tasks)
}

/// The Dashboard API routes of a Meraki server (auth is checked before, by the server).
pub(crate) fn routes() -> Router<Arc<ServerData>> {
    Router::new()
        .route("/api/v1/networks/{network}", get(network))
        .route("/api/v1/networks/{network}/floorPlans", get(floor_plans))
        .route("/api/v1/networks/{network}/clients", get(clients))
}

fn errors(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "errors": [message] }))).into_response()
}

/// The network's state, or the answer for a request that cannot be served.
fn gate<'a>(data: &'a ServerData, network: &str) -> Result<&'a MerakiState, Box<Response>> {
    let Some(state) = data.meraki.as_deref() else {
        return Err(Box::new(StatusCode::NOT_FOUND.into_response()));
    };
    if let Some(limited) = state.rate_limit() {
        return Err(Box::new(limited));
    }
    if network != state.network_id {
        return Err(Box::new(errors(StatusCode::NOT_FOUND, "Network not found")));
    }
    Ok(state)
}

/// `GET /api/v1/networks/{id}`.
async fn network(State(data): State<Arc<ServerData>>, Path(network): Path<String>) -> Response {
    let state = match gate(&data, &network) {
        Ok(state) => state,
        Err(response) => return *response,
    };
    Json(json!({
        "id": state.network_id,
        "organizationId": "549236",
        "name": state.network_name,
        "productTypes": ["wireless"],
        "timeZone": "Europe/Zurich",
        "tags": [],
        "enrollmentString": null,
        "url": format!("https://n1.meraki.com/{}/n/manage/usage/list", state.network_name),
        "notes": "",
        "isBoundToConfigTemplate": false,
    }))
    .into_response()
}

/// `GET /api/v1/networks/{id}/floorPlans`: every floor the network's devices are on, each with a
/// fresh image URL.
async fn floor_plans(State(data): State<Arc<ServerData>>, Path(network): Path<String>) -> Response {
    let state = match gate(&data, &network) {
        Ok(state) => state,
        Err(response) => return *response,
    };
    let now = Utc::now();
    let plans: Vec<Value> = state
        .plans
        .iter()
        .map(|plan| {
            let (url, expires) = state.issue_image_url(plan, now);
            let (w, h) = (plan.width_m(), plan.height_m());
            json!({
                "floorPlanId": plan.id,
                "name": plan.floor.name,
                "imageUrl": url,
                "imageUrlExpiresAt": expires.format("%Y-%m-%d %H:%M:%S %:z").to_string(),
                "imageExtension": "png",
                "width": w,
                "height": h,
                "center": plan.geo(w / 2.0, h / 2.0),
                "bottomLeftCorner": plan.geo(0.0, 0.0),
                "bottomRightCorner": plan.geo(w, 0.0),
                "topLeftCorner": plan.geo(0.0, h),
                "topRightCorner": plan.geo(w, h),
                "devices": [],
            })
        })
        .collect();
    Json(plans).into_response()
}

/// The clients list of the network: its devices, then a machine-authenticated laptop and a guest
/// without a user.
fn client_records(data: &ServerData) -> Vec<Value> {
    let now = Utc::now();
    let iso = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mut records: Vec<Value> = data
        .clients
        .iter()
        .map(|c| {
            let last = crate::data::Now::new().ago(c.last_heard_seconds);
            let here = c.here();
            json!({
                "id": format!("k{:06x}", c.index),
                "mac": c.mac,
                "description": format!("{}'s device", c.identity),
                "ip": first_ipv4(c),
                "ip6": null,
                "ip6Local": null,
                "user": c.identity,
                "firstSeen": iso(last - TimeDelta::days(3)),
                "lastSeen": iso(last),
                "manufacturer": c.manufacturer,
                "os": null,
                "deviceTypePrediction": null,
                "recentDeviceSerial": format!("Q2XX-SIM0-{:04}", here.floor.ref_id() % 10_000),
                "recentDeviceName": format!("AP {}", here.floor.name),
                "recentDeviceMac": c.ap_mac(here),
                "recentDeviceConnection": "Wireless",
                "ssid": (!c.ssid.is_empty()).then_some(c.ssid.as_str()),
                "vlan": "1",
                "switchport": null,
                "usage": {"sent": 1024 + c.index * 7, "recv": 4096 + c.index * 13},
                "status": if c.associated() { "Online" } else { "Offline" },
                "notes": null,
                "groupPolicy8021x": null,
                "adaptivePolicyGroup": null,
                "smInstalled": false,
                "namedVlan": null,
                "pskGroup": null,
                "wirelessCapabilities": "802.11ac - 2.4 and 5 GHz",
            })
        })
        .collect();
    let n = data.clients.len();
    for (i, (mac, user, description)) in [
        (
            "02:00:5e:10:00:01",
            Value::from("host/ws-0042.corp.example.com"),
            "machine account",
        ),
        ("02:00:5e:10:00:02", Value::Null, "guest"),
    ]
    .into_iter()
    .enumerate()
    {
        records.push(json!({
            "id": format!("k{:06x}", n + i),
            "mac": mac,
            "description": description,
            "ip": format!("10.99.0.{}", i + 2),
            "user": user,
            "firstSeen": iso(now - TimeDelta::days(1)),
            "lastSeen": iso(now),
            "manufacturer": null,
            "os": null,
            "recentDeviceConnection": "Wireless",
            "ssid": "CORP",
            "status": "Online",
        }));
    }
    records
}

fn first_ipv4(client: &Client) -> Option<&str> {
    client
        .ip
        .iter()
        .find(|ip| ip.parse::<std::net::Ipv4Addr>().is_ok())
        .map(String::as_str)
}

/// `GET /api/v1/networks/{id}/clients?perPage=&timespan=&startingAfter=`: pages of `perPage`
/// (3 to 1000, default 10) after the client id `startingAfter`, with `Link` to the first and next pages.
async fn clients(
    State(data): State<Arc<ServerData>>,
    Path(network): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let state = match gate(&data, &network) {
        Ok(state) => state,
        Err(response) => return *response,
    };
    let per_page = match query.get("perPage").map(|v| v.parse::<usize>()) {
        None => 10,
        Some(Ok(n)) if (3..=1000).contains(&n) => n,
        Some(_) => {
            return errors(
                StatusCode::BAD_REQUEST,
                "'perPage' must be an integer between 3 and 1000",
            )
        }
    };
    if let Some(timespan) = query.get("timespan") {
        let ok = timespan
            .parse::<f64>()
            .is_ok_and(|t| t > 0.0 && t <= 2_678_400.0);
        if !ok {
            return errors(
                StatusCode::BAD_REQUEST,
                "'timespan' must be a number of seconds, at most 31 days",
            );
        }
    }
    let records = client_records(&data);
    let after = query.get("startingAfter").map(String::as_str);
    let rest: Vec<&Value> = records
        .iter()
        .filter(|r| after.is_none_or(|after| r["id"].as_str().is_some_and(|id| id > after)))
        .collect();
    let page: Vec<&Value> = rest.iter().take(per_page).copied().collect();
    let base = lock(&state.knobs).link_base.clone().unwrap_or_else(|| {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned)
            .or_else(|| state.dashboard_addr.get().map(SocketAddr::to_string))
            .unwrap_or_default();
        format!("http://{host}")
    });
    let mut list_url = format!(
        "{}/api/v1/networks/{}/clients?perPage={per_page}",
        base.trim_end_matches('/'),
        utf8_percent_encode(&state.network_id, PATH_SEGMENT)
    );
    if let Some(timespan) = query.get("timespan") {
        list_url.push_str(&format!("&timespan={timespan}"));
    }
    let mut link = format!("<{list_url}>; rel=first");
    if rest.len() > page.len() {
        if let Some(last) = page.last().and_then(|r| r["id"].as_str()) {
            link.push_str(&format!(", <{list_url}&startingAfter={last}>; rel=next"));
        }
    }
    let mut response = Json(page).into_response();
    if let Ok(value) = header::HeaderValue::from_str(&link) {
        response.headers_mut().insert(header::LINK, value);
    }
    response
}

/// `GET /images/{token}.png` on the image host: the plan's PNG while the token is valid; 403 once it
/// has expired and 404 for an unknown one, with S3's XML bodies. No credentials asked (or wanted).
async fn image(
    State(state): State<Arc<MerakiState>>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    let token = file.strip_suffix(".png").unwrap_or(&file).to_owned();
    let issued = lock(&state.tokens).get(&token).cloned();
    let authorization = headers.contains_key(header::AUTHORIZATION);
    let xml = |status: StatusCode, code: &str, message: &str| {
        (
            status,
            [(header::CONTENT_TYPE, "application/xml")],
            format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"),
        )
            .into_response()
    };
    let Some((plan_id, expires)) = issued else {
        state.record_image(ImageRequest {
            token,
            floor_plan_id: None,
            authorization,
            status: 404,
        });
        return xml(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
        );
    };
    let expired = expires <= Utc::now();
    state.record_image(ImageRequest {
        token,
        floor_plan_id: Some(plan_id.clone()),
        authorization,
        status: if expired { 403 } else { 200 },
    });
    if expired {
        return xml(StatusCode::FORBIDDEN, "AccessDenied", "Request has expired");
    }
    let cached = lock(&state.images).get(&plan_id).cloned();
    let png = match cached {
        Some(png) => png,
        None => {
            let Some((w, h)) = state
                .plan(&plan_id)
                .map(|p| (p.floor.width, p.floor.length))
            else {
                return StatusCode::NOT_FOUND.into_response();
            };
            // Encoding a plan takes a while: not on the async threads.
            let made = tokio::task::spawn_blocking(move || {
                crate::floorplan::image_for_floor(w, h, "plan.png")
            })
            .await;
            match made {
                Ok(Ok(bytes)) => {
                    let png = Bytes::from(bytes);
                    lock(&state.images).insert(plan_id, png.clone());
                    png
                }
                _ => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
            }
        }
    };
    ([(header::CONTENT_TYPE, "image/png")], png).into_response()
}

/// Control of a simulated Meraki network (from [`crate::ServerHandle::meraki`]).
#[derive(Clone)]
pub struct MerakiHandle {
    pub(crate) data: Arc<ServerData>,
    pub(crate) state: Arc<MerakiState>,
}

impl std::fmt::Debug for MerakiHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MerakiHandle")
            .field("network_id", &self.state.network_id)
            .finish_non_exhaustive()
    }
}

impl MerakiHandle {
    /// The network id (`network_id` in the scenario, else the server name).
    pub fn network_id(&self) -> &str {
        &self.state.network_id
    }

    /// The Dashboard API key it demands as `Authorization: Bearer` (the server's `password`).
    pub fn api_key(&self) -> &str {
        &self.state.api_key
    }

    /// The Dashboard API base, `http://IP:PORT/api/v1`.
    pub fn dashboard_url(&self) -> String {
        let addr = self
            .state
            .dashboard_addr
            .get()
            .map_or_else(String::new, SocketAddr::to_string);
        format!("http://{addr}/api/v1")
    }

    /// `http://IP:PORT` of the image host (another port than the Dashboard's).
    pub fn image_host_url(&self) -> String {
        let addr = self
            .state
            .image_addr
            .get()
            .map_or_else(String::new, SocketAddr::to_string);
        format!("http://{addr}")
    }

    /// The floor plan id of a scenario floor (`Campus>Building>Floor`), if the network has it.
    pub fn floor_plan_id(&self, hierarchy: &str) -> Option<String> {
        let (campus, rest) = hierarchy.split_once('>')?;
        let (building, floor) = rest.split_once('>')?;
        self.data
            .world
            .campuses
            .iter()
            .filter(|c| c.name == campus)
            .flat_map(|c| &c.buildings)
            .filter(|b| b.name == building)
            .flat_map(|b| &b.floors)
            .find(|f| f.name == floor)
            .map(floor_plan_id)
            .filter(|id| self.state.plan(id).is_some())
    }

    /// How long image URLs handed out from now on stay valid (default 15 minutes).
    pub fn set_image_url_ttl(&self, ttl: Duration) {
        lock(&self.state.knobs).image_url_ttl = ttl;
    }

    /// Answers the next `count` Dashboard requests with 429, with this `Retry-After` (none: no header).
    pub fn rate_limit_next(&self, count: u32, retry_after: Option<&str>) {
        let mut knobs = lock(&self.state.knobs);
        knobs.rate_limited = count;
        knobs.retry_after = retry_after.map(str::to_owned);
    }

    /// Writes page links on this origin (e.g. another host) instead of the request's; `None` resets.
    pub fn set_link_base(&self, base: Option<&str>) {
        lock(&self.state.knobs).link_base = base.map(str::to_owned);
    }

    /// Where the pusher posts (a loopback URL).
    pub fn set_receiver(&self, url: &str) {
        lock(&self.state.knobs).receiver = Some(url.to_owned());
    }

    /// The receiver, if one is set.
    pub fn receiver(&self) -> Option<String> {
        lock(&self.state.knobs).receiver.clone()
    }

    /// The text the receiver must answer to the validator GET.
    pub fn set_validator(&self, validator: &str) {
        lock(&self.state.knobs).validator = validator.to_owned();
    }

    /// The validator text the receiver must answer.
    pub fn validator(&self) -> String {
        lock(&self.state.knobs).validator.clone()
    }

    /// The secret the posts carry.
    pub fn secret(&self) -> String {
        lock(&self.state.knobs).secret.clone()
    }

    /// The secret the posts carry (e.g. a wrong one).
    pub fn set_secret(&self, secret: &str) {
        lock(&self.state.knobs).secret = secret.to_owned();
    }

    /// Leaves `userId` out of the observations, so the receiver has to learn the users from the
    /// clients list.
    pub fn set_omit_user_id(&self, omit: bool) {
        lock(&self.state.knobs).omit_user_id = omit;
    }

    /// Requests the image host received, oldest first.
    pub fn image_requests(&self) -> Vec<ImageRequest> {
        lock(&self.state.image_log).clone()
    }

    /// Every push round so far: a report, or why nothing was posted.
    pub fn pushes(&self) -> Vec<Result<PushReport, String>> {
        lock(&self.state.push_log).clone()
    }

    /// Waits until `n` push rounds are done (posted or not), at most `timeout`; whether they are.
    pub async fn wait_for_pushes(&self, n: usize, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, async {
            loop {
                let notified = self.state.notify.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if lock(&self.state.push_log).len() >= n {
                    return;
                }
                notified.await;
            }
        })
        .await
        .is_ok()
    }

    /// One round of the pusher: the validator handshake if this receiver and text have not passed it
    /// yet (the receiver's GET must answer 200 with exactly the validator text, else nothing is
    /// posted), then one Scanning API v3 POST with every device of the network, each moved on to its
    /// next stop. The round is recorded in [`MerakiHandle::pushes`] either way.
    pub async fn push_now(&self) -> Result<PushReport, SimError> {
        let result = self.push_round().await;
        lock(&self.state.push_log).push(match &result {
            Ok(report) => Ok(report.clone()),
            Err(err) => Err(err.to_string()),
        });
        self.state.notify.notify_waiters();
        result
    }

    async fn push_round(&self) -> Result<PushReport, SimError> {
        let (receiver, validator, secret, omit_user_id, validated) = {
            let knobs = lock(&self.state.knobs);
            (
                knobs.receiver.clone(),
                knobs.validator.clone(),
                knobs.secret.clone(),
                knobs.omit_user_id,
                knobs.validated.clone(),
            )
        };
        let failed = |url: &str, message: String| SimError::Push {
            url: url.to_owned(),
            message,
        };
        let receiver = receiver.ok_or_else(|| failed("", "no receiver set".to_owned()))?;
        let url = loopback_url(&receiver).map_err(|why| failed(&receiver, why))?;
        let http = self.http().map_err(|why| failed(&receiver, why))?;
        let mut validation_status = None;
        if validated.as_ref() != Some(&(receiver.clone(), validator.clone())) {
            let response = http
                .get(url.clone())
                .send()
                .await
                .map_err(|err| failed(&receiver, format!("validator GET failed: {err}")))?;
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            validation_status = Some(status.as_u16());
            if !status.is_success() || text != validator {
                return Err(failed(
                    &receiver,
                    format!(
                        "validator GET answered {status} with {:?}, not the validator text",
                        text.chars().take(80).collect::<String>()
                    ),
                ));
            }
            lock(&self.state.knobs).validated = Some((receiver.clone(), validator));
        }
        let observations: Vec<Value> = self
            .data
            .clients
            .iter()
            .filter_map(|client| self.observation(client, omit_user_id))
            .collect();
        let count = observations.len();
        let body = json!({
            "version": "3.0",
            "secret": secret,
            "type": "WiFi",
            "data": {
                "networkId": self.state.network_id,
                "observations": observations,
            },
        })
        .to_string();
        let response = http
            .post(url)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.clone())
            .send()
            .await
            .map_err(|err| failed(&receiver, format!("POST failed: {err}")))?;
        Ok(PushReport {
            receiver,
            validation_status,
            status: response.status().as_u16(),
            observations: count,
            body,
        })
    }

    fn http(&self) -> Result<reqwest::Client, String> {
        if let Some(client) = self.state.http.get() {
            return Ok(client.clone());
        }
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(PUSH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| format!("cannot build the HTTP client: {err}"))?;
        Ok(self.state.http.get_or_init(|| client).clone())
    }

    /// One client's observation at its next stop, in metres from the plan's bottom-left corner.
    fn observation(&self, client: &Client, omit_user_id: bool) -> Option<Value> {
        let at = client.answer();
        let plan = self.state.plan(&floor_plan_id(&at.floor))?;
        let k = metres_per(at.floor.unit);
        let (x, y) = (at.x * k, (at.floor.length - at.y) * k);
        let time = crate::data::Now::new()
            .ago(client.last_heard_seconds)
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        let ap = client.ap_mac(at);
        let mut observation = json!({
            "clientMac": client.mac,
            "ssid": client.ssid,
            "ipv4": first_ipv4(client),
            "ipv6": null,
            "os": null,
            "manufacturer": client.manufacturer,
            "locations": [{
                "x": x,
                "y": y,
                "lat": plan.geo(x, y)["lat"],
                "lng": plan.geo(x, y)["lng"],
                "variance": client.confidence * k,
                "floorPlanId": plan.id,
                "floorPlanName": at.floor.name,
                "time": time,
                "nearestApTags": [],
                "rssiRecords": [{"apMac": ap, "rssi": -55}],
            }],
            "latestRecord": {"time": time, "nearestApMac": ap, "nearestApRssi": -55},
        });
        if !omit_user_id {
            observation["userId"] = Value::from(client.identity.as_str());
        }
        Some(observation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_receivers() {
        assert!(loopback_url("http://127.0.0.1:8080/meraki").is_ok());
        assert!(loopback_url("http://127.0.0.2/x").is_ok());
        assert!(loopback_url("http://[::1]:9/x").is_ok());
        assert!(loopback_url("http://localhost:9/x").is_ok());
        assert!(loopback_url("http://10.0.0.1/x").is_err());
        assert!(loopback_url("http://example.com/x").is_err());
        assert!(loopback_url("ftp://127.0.0.1/x").is_err());
        assert!(loopback_url("not a url").is_err());
    }

    #[test]
    fn bearer_must_be_exact() {
        let mut headers = HeaderMap::new();
        assert!(!bearer_ok(&headers, "k"));
        headers.insert(header::AUTHORIZATION, "Bearer k".parse().expect("header"));
        assert!(bearer_ok(&headers, "k"));
        assert!(!bearer_ok(&headers, "k2"));
        headers.insert(header::AUTHORIZATION, "Basic k".parse().expect("header"));
        assert!(!bearer_ok(&headers, "k"));
    }
}
