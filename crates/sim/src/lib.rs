//! Simulated Cisco wireless location servers (CMX 10.x v2/v3, MSE 8.x, Cisco Spaces) and a Webex API double,
//! for tests and demos.
//!
//! The simulator speaks the **real wire formats** (as recorded in `crates/location/tests/fixtures`) over
//! real HTTP/1.1 on loopback ports, driven by a [`Scenario`], with per-server [`Fault`] injection. It depends on
//! no other workspace crate: it writes its JSON by itself, shaped like the fixtures, so it checks the
//! clients independently.
//!
//! ```no_run
//! # async fn demo() -> Result<(), whereis_sim::SimError> {
//! use whereis_sim::{Fault, Scenario, Simulator};
//! let sim = Simulator::start(Scenario::builtin_demo()).await?;
//! let north = sim.server("cmx-north").expect("in the demo scenario");
//! println!("{} (user {})", north.base_url(), north.username());
//! north.set_fault(Fault::Hang); // the next request never gets an answer
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Modules
//! - `scenario` — the scenario file ([`Scenario`] and its parts) and its validation.
//! - `server` — [`Simulator`], [`ServerHandle`]: accept loop, hyper connections, Basic auth, request log
//!   and fault injection (raw faults are done on the socket, per request, also on keep-alive connections).
//! - `cmx` — CMX `GET /api/location/v2/clients` and `GET /api/location/v3/clients`.
//! - `mse` — MSE `GET /api/contextaware/v1/location/clients[/{user}]` (JSON, or XML without
//!   `Accept: application/json`).
//! - `maps` — CMX map configuration `GET /api/config/v1/maps`, `.../maps/info/{campus}/{building}/{floor}`
//!   and floor images `.../maps/imagesource/{image}` (CMX and MSE).
//! - `floorplan` — a generated floor-plan PNG (no dependencies) for the image endpoints.
//! - `meraki` — a Meraki network ([`MerakiHandle`], from [`ServerHandle::meraki`]): the Dashboard API,
//!   floor images on a host of their own behind expiring URLs, the Scanning API v3 pusher.
//! - `data` — the per-server view of the scenario and the wire timestamp format.
//! - `spaces` — Cisco Spaces: the Firehose stream `GET /api/partners/v1/firehose/events`, map metadata
//!   `GET /api/partners/v1/maps/{mapId}` and images `.../maps/{mapId}/image`, and its test controls.
//! - `webex` — [`WebexDouble`], the Webex API double (see below): `webex/mod.rs` (the double, its state and
//!   public methods), `webex/rest.rs` (router, bearer gate, `/v1` endpoints), `webex/devices.rs` (U2C
//!   catalog, device service), `webex/mercury.rs` (websocket, activities, conversation lookup),
//!   `webex/multipart.rs` (multipart bodies, read with `multer`).
//! - `oidc` — [`OidcDouble`], an OpenID Connect provider (authorization code + PKCE, RS256 ID tokens).
//! - `proxy` — [`ForwardProxy`], a forwarding HTTP proxy (CONNECT and absolute-form)
//!   for corporate-proxy tests.
//!
//! # Endpoints per server kind
//! | kind | endpoints |
//! |---|---|
//! | `cmx` | v2 clients, v3 clients, map configuration, floor images |
//! | `cmx-v2` | v2 clients, map configuration, floor images; any `/api/location/v3/` path answers 404 |
//! | `mse` | single client by user (object, or array when the user has several devices), client list (paged), floor images |
//! | `spaces` | Firehose stream (NDJSON), map metadata, map images; see below |
//! | `meraki` | Dashboard API under `/api/v1`: `GET /networks/{id}`, `/networks/{id}/floorPlans`, `/networks/{id}/clients`; floor images on a second port; Scanning API v3 posts to a receiver |
//!
//! A `meraki` server demands `Authorization: Bearer <password>` (else 401) instead of Basic auth.
//! `floorPlans` lists one plan per floor its devices are on: `floorPlanId` `g_<floor_ref_id>`, `name`,
//! `width`/`height` in metres (a `FEET` floor converted), corners and centre as `{lat, lng}`,
//! `imageExtension` `png`, and an `imageUrl` on the image host (`GET /images/{token}.png`, no auth)
//! valid until `imageUrlExpiresAt` (`2019-06-11 16:04:54 +00:00`, 15 minutes ahead unless
//! [`MerakiHandle::set_image_url_ttl`] says otherwise); an expired token answers 403 and an unknown one
//! 404, with S3's XML bodies. `clients?perPage=3..1000&timespan=&startingAfter=` pages the devices (each
//! `user` its identity) followed by a machine-authenticated `host/…` client and a guest without a user,
//! with `Link: <…>; rel=first, <…>; rel=next`. [`MerakiHandle::rate_limit_next`] answers the next
//! Dashboard requests 429 with a `Retry-After`; [`MerakiHandle::set_link_base`] points page links
//! elsewhere. The pusher ([`MerakiHandle::push_now`], or every `push_interval_ms`) first GETs the
//! receiver, which must answer 200 with exactly the validator text (else nothing is posted; the round
//! is recorded in [`MerakiHandle::pushes`] with the reason), then POSTs one `{"version": "3.0",
//! "secret", "type": "WiFi", "data": {"networkId", "observations"}}` with every device — `clientMac`,
//! `userId` (left out after [`MerakiHandle::set_omit_user_id`]), `ssid`, `ipv4`, `manufacturer`,
//! `locations[{x, y, lat, lng, variance, floorPlanId, floorPlanName, time, …}]`, `latestRecord` —
//! at its next stop, in metres from the plan's **bottom-left** corner (the scenario's top-left
//! coordinates converted).//!
//! Client lists: v2 `GET /api/location/v2/clients?page=N&pageSize=M` pages (from 1; 204 past the
//! end; without either parameter, every client); v3 `GET /api/location/v3/clients` never pages but
//! filters (`floorRefId`, `mapHierarchy` substring, `username`, `macAddress`, `ipAddress`, `ssid`,
//! `manufacturer`, `associatedOnly`, `probingOnly`; any other parameter is a 400, as on the real
//! v3 API server); MSE `GET /api/contextaware/v1/location/clients?page=N&pageSize=M` →
//! `{"Locations": {totalPages, currentPage, pageSize, entries}}`. Faults apply to them as to every
//! request; [`ServerHandle::set_page_fault`] gives one page of a list a fault of its own.
//!
//! Every endpoint of the CMX and MSE kinds needs HTTP Basic auth with the server's username and password (else 401 with
//! `WWW-Authenticate`). [`ServerHandle::peers`] lists the peer IP of every accepted connection. A query matches a device's `identity` exactly (case-sensitive). CMX answers 204 with
//! an empty body when nobody matches; MSE answers 404. Unknown paths answer 404.
//!
//! # Scenario format (TOML)
//! Unknown keys are errors everywhere.
//! ```toml
//! [[servers]]
//! name = "cmx-north"            # unique
//! kind = "cmx"                  # cmx (v3 + v2 + maps) | cmx-v2 (v2 + maps) | mse | spaces | meraki
//! username = "api"              # HTTP Basic credentials the server demands (spaces, meraki: not used)
//! password = "sim-password"      # spaces: the API key demanded in X-API-KEY; meraki: the Bearer key
//! interval_ms = 1000            # spaces only, optional: time between two rounds of location updates
//! keepalive_ms = 15000          # spaces only, optional: time between two KEEP_ALIVE records
//! fault = "none"                # optional: none | hang | http500 | unauthorized | malformed-json |
//!                               # truncated-body | connection-reset | no-content | { latency_ms = 20 }
//!
//! [[servers]]
//! name = "meraki-hq"
//! kind = "meraki"               # a Meraki network; `username` is required but unused
//! username = "unused"
//! password = "dashboard-key"    # the Dashboard API key it demands as Bearer
//! network_id = "L_1234"         # optional, default: the server name
//! validator = "v4l1d"           # optional, default "sim-validator": what the receiver's GET must answer
//! secret = "s3cret"             # optional, default "sim-secret": carried by every post
//! push_to = "http://127.0.0.1:8080/webhooks/meraki"  # optional receiver (loopback only)
//! push_interval_ms = 5000       # optional: push by itself this often (else only on demand)
//!
//! [[campuses]]
//! name = "HQ Campus"
//! [[campuses.buildings]]
//! name = "Building 5"
//! [[campuses.buildings.floors]]
//! name = "Level 3"
//! floor_ref_id = "723413320329068650"   # string of digits, fits u64 (the aesUid); unique
//! width = 300.0                         # x extent
//! length = 150.0                        # y extent
//! height = 10.0                         # optional, default 10
//! unit = "FEET"                         # FEET (default) | METER
//! offset_x = 0.0                        # optional, default 0
//! offset_y = 0.0
//! image = "domain_0_1462212406005.png"  # served as a generated PNG whatever the extension
//!
//! [[people]]
//! username = "jdoe"
//! display_name = "Jane Doe"
//! [[people.devices]]
//! mac = "00:11:22:33:44:55"
//! identity = "CORP\\jdoe"               # the 802.1X identity the servers know (default: username)
//! servers = ["cmx-north"]               # which servers see this device
//! floor = "HQ Campus>Building 5>Level 3"
//! x = 120.5                             # from the floor's top-left, in the floor's unit
//! y = 40.0
//! ssid = "CORP"                         # default ""
//! status = "ASSOCIATED"                 # default ASSOCIATED; PROBING, ...
//! ip = ["10.0.0.7"]                     # default []: CMX sends null, MSE leaves ipAddress out
//! last_heard_seconds = 12               # default 0; lastLocatedTime = now - this
//! confidence = 24.0                     # default 24
//! manufacturer = "Intel Corporate"      # optional
//! [[people.devices.moves]]              # optional: later positions; each answer that includes the
//! floor = "HQ Campus>Building 5>Level 1" # device moves it on to the next, then round again
//! x = 30.0                              # (floor defaults to the device's own)
//! y = 12.5
//! ```
//! A person may carry `opted_out = true` (default false): whereis is to honour it; the simulator
//! still serves their devices.
//! Names must not contain `>`; a floor is referred to by `Campus>Building>Floor`. The same MAC may appear
//! in several device entries (e.g. one seen by two servers with different `last_heard_seconds`) as long as
//! no server sees it twice.
//!
//! # Cisco Spaces double
//! A `spaces` server demands `X-API-KEY` = its `password` (else 401) and serves:
//! - `GET /api/partners/v1/firehose/events[?fromTimestamp=ms]`: chunked NDJSON that never ends by itself.
//!   With `fromTimestamp` > 0 it first replays the kept records (the last 10,000) stamped at or after it;
//!   then every `interval_ms` one `DEVICE_LOCATION_UPDATE` per device that lists the server (shaped like
//!   the published sample; `rawUserId` = the device's identity; a moving device takes its next stop each
//!   round) and every `keepalive_ms` a `KEEP_ALIVE`.
//! - `GET /api/partners/v1/maps/{mapId}` → `{"mapId", "imageWidth", "imageHeight", "dimension": {"length",
//!   "width", "height", "offsetX", "offsetY"}}`: `length` is the floor's x extent (`width` in the
//!   scenario), `width` its y extent (`length`); `GET /api/partners/v1/maps/{mapId}/image` → the plan.
//!
//! A floor's `mapId` is `map-{floor_ref_id}`, its `locationId` `location-{floor_ref_id}`. Test controls on
//! [`ServerHandle`]: [`emit_now`](ServerHandle::emit_now), [`emit_keepalive`](ServerHandle::emit_keepalive),
//! [`exit_device`](ServerHandle::exit_device), [`send_raw_line`](ServerHandle::send_raw_line),
//! [`disconnect_streams`](ServerHandle::disconnect_streams),
//! [`set_duplicate_records`](ServerHandle::set_duplicate_records), [`set_silent`](ServerHandle::set_silent),
//! [`set_blank_map_ids`](ServerHandle::set_blank_map_ids),
//! [`reject_next_streams`](ServerHandle::reject_next_streams) (429 with `Retry-After`),
//! [`set_update_interval`](ServerHandle::set_update_interval),
//! [`set_keepalive_interval`](ServerHandle::set_keepalive_interval); introspection:
//! [`spaces_records`](ServerHandle::spaces_records), [`open_streams`](ServerHandle::open_streams),
//! [`streams_opened`](ServerHandle::streams_opened), [`wait_for_open_streams`](ServerHandle::wait_for_open_streams),
//! [`wait_for_streams_opened`](ServerHandle::wait_for_streams_opened). [`Fault`]s apply as to every server
//! (`Fault::Unauthorized` → 401).
//!
//! # Webex API double
//! [`WebexDouble`] stands in for `https://webexapis.com/v1` (use [`WebexDouble::base_url`]) on a loopback
//! port: only its bearer token is accepted (else 401); every answer has a `trackingid` header and errors
//! have Webex's body `{"message", "errors": [{"description"}], "trackingId"}`. It serves
//! `GET /people/me`, `GET /people?email=` / `?displayName=&max=` (case-insensitive prefix),
//! `GET /rooms?sortBy=lastactivity|created|id&type=&max=` (most recently active first; every message moves
//! its room's `lastActivity`), `GET /messages?roomId=&mentionedPeople=me&before=&beforeMessage=&max=`
//! (newest first; in a group space without `mentionedPeople=me` → 403, as for real bots; with it, only the
//! messages that mention the bot), `GET /messages/{id}` (the id in URL-safe unpadded or standard padded
//! base64), `POST /messages` (JSON, or multipart with one `files` part; `text`/`markdown` at most 7,439
//! bytes) and `GET|POST /webhooks`, `GET|PUT|DELETE /webhooks/{id}`. Listings page with
//! `Link: <…>; rel="next"`. Tests script the users ([`WebexDouble::user_says`] in a
//! [`direct_room`](WebexDouble::direct_room) or a [`group_room`](WebexDouble::group_room) that mentions the
//! bot; [`WebexDouble::user_says_at`] for a message written while the bot was away), deliver signed webhook
//! events ([`WebexDouble::event_body`], [`WebexDouble::deliver`]: `X-Spark-Signature` = hex HMAC-SHA1), read
//! what the bot posted ([`WebexDouble::posted`], [`WebexDouble::wait_for_posts`]) and inject 429/5xx answers
//! ([`WebexDouble::fail_next_posts`]).
//!
//! The websocket ("Mercury") mode, as the protocol note fixes it, on the same port and bearer token:
//! - `GET /u2c/api/v1/catalog?format=hostmap` → `{"serviceLinks": {"wdm": DEVICE_URL, …}}`
//!   ([`WebexDouble::u2c_url`]);
//! - the device service at [`WebexDouble::device_url`] (`/wdm/api/v1`): `GET|POST /devices`,
//!   `GET|DELETE /devices/{id}`; a device has `url`, `webSocketUrl`, `name`, `deviceName`, `deviceType`,
//!   `creationTime`, `modificationTime`;
//! - the websocket `ws://127.0.0.1:PORT/mercury/registrations/{id}/messages`: 404 for an unknown (expired,
//!   deleted) registration; the first frame must be `{"type":"authorization","data":{"token":"Bearer …"}}`,
//!   answered by a Ping (wrong token: close 4401); then every message a user says, and every message the
//!   bot posts (actor `type` `BOT`), arrives as a `conversation.activity` / `post` envelope; acks
//!   `{"type":"ack","messageId":…}` are recorded;
//! - `GET /conversation/api/v1/messages/{uuid}` → `{"id": REST id, …}` (the activity's `target.url` with
//!   `conversations/{target.id}` replaced by `messages/{activity.id}`).
//!
//! Its faults: [`WebexDouble::drop_websockets`] (no close frame), [`WebexDouble::close_websockets`],
//! [`WebexDouble::expire_devices`] (handshake 404, open sockets closed with 4404),
//! [`WebexDouble::fail_next_registrations`] and [`WebexDouble::fail_next_handshakes`] (429 with
//! `Retry-After`), [`WebexDouble::reject_next_authorizations`] (4401); [`WebexDouble::push_activity`]
//! pushes one message's activity on demand. Introspection: [`WebexDouble::devices`],
//! [`WebexDouble::device_history`], [`WebexDouble::websocket_stats`], [`WebexDouble::acks`],
//! [`WebexDouble::pushed`], [`WebexDouble::peers`]; waiting without sleeps:
//! [`WebexDouble::wait_for_authorised`], [`WebexDouble::wait_for_authorizations`],
//! [`WebexDouble::wait_for_acks`], [`WebexDouble::wait_until`].
//!
//! # Forwarding proxy
//! [`ForwardProxy`] listens on `127.0.0.1:0`, tunnels `CONNECT host:port` and forwards
//! absolute-form `http://` requests (each on its own, several hosts per client connection), optionally
//! demands `Proxy-Authorization: Basic` (else 407 with `Proxy-Authenticate: Basic realm="whereis-sim"`),
//! refuses targets outside 127.0.0.0/8 (403), connects out from 127.0.0.2 (configurable) and records every
//! request, so a test can show an origin was reached only through it (`peers()` of the origin).
//!
//! ```no_run
//! # async fn demo() -> Result<(), whereis_sim::SimError> {
//! use std::time::Duration;
//! use whereis_sim::WebexDouble;
//! let webex = WebexDouble::start("bot-token", "whereis@webex.bot", "whereis").await?;
//! let room = webex.group_room("Office");
//! let message = webex.user_says(&room, "jane.doe@example.com", "jdoe");
//! let body = webex.event_body(&message);
//! let status = webex.deliver("http://127.0.0.1:8080/webhooks/webex", &body, Some("secret")).await?;
//! let replies = webex.wait_for_posts(1, Duration::from_secs(5)).await;
//! # let _ = (status, replies);
//! # Ok(()) }
//! ```

mod cmx;
mod data;
mod floorplan;
mod maps;
pub mod meraki;
mod mse;
pub mod oidc;
pub mod proxy;
mod scenario;
mod server;
mod spaces;
pub mod webex;

pub use meraki::{ImageRequest, MerakiHandle, PushReport};
pub use oidc::{OidcDouble, OidcPerson, OidcRequest};
pub use proxy::{ForwardProxy, ProxiedRequest, ProxyCredentials, ProxyOptions};
pub use scenario::{
    BuildingSpec, CampusSpec, DeviceSpec, Fault, FloorSpec, MoveSpec, PersonSpec, Scenario,
    ServerKind, ServerSpec, Unit,
};
pub use server::{RecordedRequest, ServerHandle, Simulator};
pub use spaces::{SpacesRecord, DEFAULT_KEEPALIVE_INTERVAL, DEFAULT_UPDATE_INTERVAL};
pub use webex::{
    DeviceChange, DeviceEvent, MercuryStats, MessagesFault, PostedFile, PostedMessage,
    PushedActivity, RegisteredDevice, WebexDouble, WebexPerson,
};

/// Errors of the simulator: scenario problems and failures to start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The scenario file could not be read.
    #[error("cannot read scenario file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The scenario is not valid TOML of the expected shape (message names the line and the key).
    #[error("cannot parse scenario {origin}: {message}")]
    Parse {
        /// The file name, or `<string>`.
        origin: String,
        /// What is wrong, from the TOML parser.
        message: String,
    },
    /// The scenario parsed but is inconsistent (unknown server or floor, duplicates, bad values).
    #[error("invalid scenario {origin}: {}", problems.join("; "))]
    Invalid {
        /// The file name, or `<string>`.
        origin: String,
        /// Every problem found.
        problems: Vec<String>,
    },
    /// A server could not listen on its address.
    #[error("cannot listen on {addr} for simulated server {server:?}: {source}")]
    Bind {
        /// The server's name.
        server: String,
        /// The address tried.
        addr: std::net::SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The Webex double could not deliver a webhook (no connection, timeout, ...).
    #[error("cannot deliver a webhook to {url}: {message}")]
    Deliver {
        /// The target URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The forwarding proxy cannot run with these options (e.g. an outbound address off loopback).
    #[error("cannot start the forwarding proxy: {0}")]
    Proxy(String),
    /// The OpenID Connect provider double could not make its signing keys.
    #[error("cannot start the OpenID Connect provider double: {0}")]
    Key(String),
    /// The Meraki double's pusher posted nothing (no receiver, failed validator handshake, no
    /// connection).
    #[error("Meraki push to {url:?} not done: {message}")]
    Push {
        /// The receiver URL.
        url: String,
        /// Why.
        message: String,
    },
    /// `first_port` + the number of servers does not fit in a port number.
    #[error("port {first_port} + {count} servers is beyond 65535")]
    PortRange {
        /// The first port asked for.
        first_port: u16,
        /// The number of servers.
        count: usize,
    },
}
