//! A Webex API double: what a bot uses of `https://webexapis.com/v1` and of the websocket ("Mercury")
//! event service, over real HTTP on loopback.
//!
//! [`WebexDouble`] serves `people`, `rooms`, `messages` and `webhooks` with Webex's JSON shapes (camelCase,
//! base64 `ciscospark://us/KIND/uuid` ids, a `trackingid` header on every answer, errors as
//! `{"message", "errors": [{"description"}], "trackingId"}`), records what the bot posts, injects faults
//! into `POST /messages`, and delivers signed webhook events to a target URL. For the websocket mode it
//! also serves the U2C catalog, the device service (WDM), the websocket that pushes `conversation.activity`
//! envelopes, and the conversation service's message lookup, with faults for each. It shares no code with
//! the bot's Webex client, so it checks that client independently.
//!
//! Modules: `rest` (router, gate, `/v1` endpoints), `devices` (U2C and WDM), `mercury` (websocket,
//! activities, conversation lookup), `multipart` (`multipart/form-data` bodies, read with `multer`).

mod devices;
mod mercury;
mod multipart;
mod rest;

pub use devices::MAX_DEVICES;
pub use devices::{DeviceChange, DeviceEvent, RegisteredDevice};
pub use mercury::{MercuryStats, PushedActivity, CLOSE_AUTH_FAILED, CLOSE_EXPIRED};
pub use multipart::{read_parts, FormError, FormPart};

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::http::{header, HeaderMap, StatusCode};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha1::Sha1;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::server::lock;
use crate::SimError;

/// Longest `text` or `markdown` Webex accepts, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 7439;
/// Largest request body the double reads (Webex allows one file of up to 100 MB).
const MAX_BODY_BYTES: usize = 101 * 1024 * 1024;
/// The value sent with [`MessagesFault::MalformedRetryAfter`], as seen from real Webex.
pub const MALFORMED_RETRY_AFTER: &str = "rand(30),add(30)";
/// Default `max` of `GET /people`, `GET /rooms` and `GET /messages`, and the largest of all three.
const DEFAULT_PEOPLE_MAX: usize = 100;
const DEFAULT_ROOMS_MAX: usize = 100;
const DEFAULT_MESSAGES_MAX: usize = 50;
const LARGEST_PAGE_MAX: usize = 1000;
/// How long [`WebexDouble::deliver`] waits for the target, and [`WebexDouble::shutdown`] for connections.
const DELIVER_TIMEOUT: Duration = Duration::from_secs(30);
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A person (or the bot) known to the double.
#[derive(Debug, Clone)]
pub struct WebexPerson {
    /// Webex person id (base64 of `ciscospark://us/PEOPLE/…`).
    pub id: String,
    /// Their one email address.
    pub email: String,
    /// Their display name.
    pub display_name: String,
}

/// A message the bot posted, as the double received it.
#[derive(Debug, Clone, PartialEq)]
pub struct PostedMessage {
    /// The id the double gave the message.
    pub id: String,
    /// The room it went to (the direct room when posted with `toPersonEmail`).
    pub room_id: String,
    /// `parentId`, for a threaded reply.
    pub parent_id: Option<String>,
    /// `text`, as sent.
    pub text: Option<String>,
    /// `markdown`, as sent.
    pub markdown: Option<String>,
    /// The one attached file (multipart posts).
    pub file: Option<PostedFile>,
    /// `toPersonEmail`, as sent.
    pub to_person_email: Option<String>,
}

/// A file the bot attached to a message (`files` part of a multipart post).
#[derive(Debug, Clone, PartialEq)]
pub struct PostedFile {
    /// The part's file name.
    pub file_name: String,
    /// The part's content type (`application/octet-stream` when it had none).
    pub content_type: String,
    /// The file's bytes, exactly.
    pub bytes: Vec<u8>,
}

/// A fault for the next `POST /messages` answers (see [`WebexDouble::fail_next_posts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessagesFault {
    /// `429 Too Many Requests` with `Retry-After: N`.
    TooManyRequests {
        /// The `Retry-After` value in seconds.
        retry_after_seconds: u64,
    },
    /// `429 Too Many Requests` with `Retry-After: rand(30),add(30)` (seen from real Webex).
    MalformedRetryAfter,
    /// That HTTP status (500 if it is not a valid status code) with a Webex error body.
    ServerError(u16),
}

/// A running Webex API double on `127.0.0.1`; dropping it stops it.
pub struct WebexDouble {
    inner: Arc<Inner>,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
    client: reqwest::Client,
}

impl std::fmt::Debug for WebexDouble {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebexDouble")
            .field("addr", &self.addr)
            .field("bot", &self.inner.bot)
            .finish_non_exhaustive()
    }
}

impl WebexDouble {
    /// Starts the double; `bot_token` is the only accepted bearer token; the bot is a person with
    /// `bot_email`/`bot_display_name` (e.g. "whereis@webex.bot", "whereis").
    pub async fn start(
        bot_token: &str,
        bot_email: &str,
        bot_display_name: &str,
    ) -> Result<WebexDouble, SimError> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let bind_err = |source| SimError::Bind {
            server: "webex".to_owned(),
            addr,
            source,
        };
        let listener = TcpListener::bind(addr).await.map_err(bind_err)?;
        let local = listener.local_addr().map_err(bind_err)?;
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(DELIVER_TIMEOUT)
            .build()
            .map_err(|err| SimError::Deliver {
                url: String::new(),
                message: format!("cannot build the HTTP client: {err}"),
            })?;

        let inner = Arc::new(Inner::new(
            bot_token,
            bot_email,
            bot_display_name,
            format!("http://{local}"),
        ));
        let app = rest::router(inner.clone());
        let (stop, mut stopped) = watch::channel(false);
        let tapped = inner.clone();
        let listener = axum::serve::ListenerExt::tap_io(listener, move |tcp| {
            // Small request/response writes must not wait for delayed ACKs.
            let _ = tcp.set_nodelay(true);
            if let Ok(peer) = tcp.peer_addr() {
                lock(&tapped.peers).push(peer.ip());
            }
        });
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = stopped.wait_for(|&stop| stop).await;
        });
        let task = tokio::spawn(async move {
            if let Err(err) = serve.await {
                tracing::warn!("webex double stopped: {err}");
            }
        });
        tracing::info!(addr = %local, "webex double listening");
        Ok(WebexDouble {
            inner,
            addr: local,
            stop,
            task: Some(task),
            client,
        })
    }

    /// `http://127.0.0.1:PORT/v1` (no trailing slash): use it in place of `https://webexapis.com/v1`.
    pub fn base_url(&self) -> String {
        self.inner.base_url.clone()
    }

    /// `http://127.0.0.1:PORT/wdm/api/v1`: the device service (`DEVICE_URL`), in place of
    /// `https://wdm-a.wbx2.com/wdm/api/v1`.
    pub fn device_url(&self) -> String {
        format!("{}/wdm/api/v1", self.inner.origin)
    }

    /// `http://127.0.0.1:PORT/u2c/api/v1`: the service catalog, in place of `https://u2c.wbx2.com/u2c/api/v1`
    /// (`GET {u2c_url}/catalog?format=hostmap`).
    pub fn u2c_url(&self) -> String {
        format!("{}/u2c/api/v1", self.inner.origin)
    }

    /// The peer IP of every TCP connection the double accepted, in order (to prove traffic came
    /// through a proxy).
    pub fn peers(&self) -> Vec<IpAddr> {
        lock(&self.inner.peers).clone()
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bot (what `GET /people/me` answers).
    pub fn bot(&self) -> WebexPerson {
        self.inner.bot.clone()
    }

    /// Adds a person to the bot's org; idempotent by email (case-insensitive): an existing person is
    /// returned unchanged.
    pub fn add_person(&self, email: &str, display_name: &str) -> WebexPerson {
        let mut state = lock(&self.inner.state);
        self.inner.person(&mut state, email, Some(display_name))
    }

    /// The 1:1 room between that person and the bot (created once; the person is added if unknown, named
    /// after the email's local part).
    pub fn direct_room(&self, person_email: &str) -> String {
        let mut state = lock(&self.inner.state);
        self.inner.direct_room(&mut state, person_email)
    }

    /// A group space with the bot in it (created once per title).
    pub fn group_room(&self, title: &str) -> String {
        let mut state = lock(&self.inner.state);
        if let Some(room) = state
            .rooms
            .iter()
            .find(|r| matches!(&r.kind, RoomKind::Group { title: t } if t == title))
        {
            return room.id.clone();
        }
        let id = self.inner.new_id("ROOM");
        let room = Room::new(
            id.clone(),
            RoomKind::Group {
                title: title.to_owned(),
            },
        );
        state.rooms.push(room);
        id
    }

    /// A message as a user typed it, now; returns the message id. Pushes its activity to every
    /// authorised websocket (see [`WebexDouble::push_activity`]).
    ///
    /// In a group room the text starts with the bot's display name, `html` carries
    /// `<p><spark-mention data-object-type="person" data-object-id="BOT_ID">whereis</spark-mention> …</p>`
    /// and `mentionedPeople` has the bot id; in a direct room the text is as given (no `html`, no
    /// mentions). The person is added if unknown. The room's `lastActivity` becomes now.
    ///
    /// # Panics
    /// If `room_id` is not a room of this double (a mistake in the test).
    pub fn user_says(&self, room_id: &str, person_email: &str, text: &str) -> String {
        let id = self
            .inner
            .user_message(room_id, person_email, text, now_stamp());
        self.inner.push_message(&id);
        id
    }

    /// A message a user wrote at `created` (e.g. while the bot was away): stored like
    /// [`WebexDouble::user_says`] but **not** pushed to any websocket; the room's `lastActivity` moves to
    /// `created` if that is later. For catch-up and backlog tests.
    ///
    /// # Panics
    /// If `room_id` is not a room of this double (a mistake in the test).
    pub fn user_says_at(
        &self,
        room_id: &str,
        person_email: &str,
        text: &str,
        created: SystemTime,
    ) -> String {
        let created = stamp(chrono::DateTime::<chrono::Utc>::from(created));
        self.inner
            .user_message(room_id, person_email, text, created)
    }

    /// The webhook body Webex would POST for that message (`messages`/`created`).
    ///
    /// The webhook part (`id`, `name`, `targetUrl`, `filter`, `created`, …) comes from the first stored
    /// webhook for `messages` `created` (or `all`), else from a made-up one named "whereis". For an
    /// unknown message id, `data` has only `id` and `created` (the bot's fetch then gets a 404).
    pub fn event_body(&self, message_id: &str) -> Vec<u8> {
        let inner = &self.inner;
        let state = lock(&inner.state);
        let hook = state.webhooks.iter().find(|h| {
            h["resource"] == "messages" && (h["event"] == "created" || h["event"] == "all")
        });
        let field = |key: &str, default: &str| -> Value {
            hook.and_then(|h| h.get(key))
                .cloned()
                .unwrap_or_else(|| Value::String(default.to_owned()))
        };
        let mut body = Map::new();
        body.insert("id".into(), field("id", &inner.default_webhook_id));
        body.insert("name".into(), field("name", "whereis"));
        body.insert(
            "targetUrl".into(),
            field("targetUrl", "https://whereis.example.com/webhooks/webex"),
        );
        body.insert("resource".into(), json!("messages"));
        body.insert("event".into(), json!("created"));
        if let Some(filter) = hook.and_then(|h| h.get("filter")) {
            body.insert("filter".into(), filter.clone());
        }
        body.insert("orgId".into(), json!(inner.org_id));
        body.insert("createdBy".into(), json!(inner.bot.id));
        body.insert("appId".into(), json!(inner.app_id));
        body.insert("ownedBy".into(), json!("creator"));
        body.insert("status".into(), json!("active"));
        body.insert("created".into(), field("created", &inner.started));
        let data = match state.messages.get(message_id) {
            Some(m) => {
                body.insert("actorId".into(), json!(m.person_id));
                let mut data = Map::new();
                data.insert("id".into(), json!(m.id));
                data.insert("roomId".into(), json!(m.room_id));
                data.insert("roomType".into(), json!(m.room_type.as_str()));
                data.insert("personId".into(), json!(m.person_id));
                data.insert("personEmail".into(), json!(m.person_email));
                if !m.mentioned_people.is_empty() {
                    data.insert("mentionedPeople".into(), json!(m.mentioned_people));
                }
                if !m.files.is_empty() {
                    data.insert("files".into(), json!(m.files));
                }
                data.insert("created".into(), json!(m.created));
                data
            }
            None => {
                let mut data = Map::new();
                data.insert("id".into(), json!(message_id));
                data.insert("created".into(), json!(now_stamp()));
                data
            }
        };
        body.insert("data".into(), Value::Object(data));
        serde_json::to_vec(&Value::Object(body)).unwrap_or_default()
    }

    /// POSTs `body` to `target_url` (`Content-Type: application/json`) with `X-Spark-Signature` =
    /// lowercase hex HMAC-SHA1(body, secret) when a secret is given; returns the HTTP status the target
    /// answered.
    pub async fn deliver(
        &self,
        target_url: &str,
        body: &[u8],
        secret: Option<&str>,
    ) -> Result<u16, SimError> {
        let mut request = self
            .client
            .post(target_url)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::USER_AGENT, "whereis-sim webex double")
            .body(body.to_vec());
        if let Some(secret) = secret {
            request = request.header("X-Spark-Signature", spark_signature(body, secret));
        }
        let response = request.send().await.map_err(|err| SimError::Deliver {
            url: target_url.to_owned(),
            message: err.to_string(),
        })?;
        let status = response.status().as_u16();
        // read the answer so the connection can be reused; its content does not matter
        let _ = response.bytes().await;
        tracing::debug!(target = %target_url, status, signed = secret.is_some(), "webhook delivered");
        Ok(status)
    }

    /// Everything the bot posted, in order.
    pub fn posted(&self) -> Vec<PostedMessage> {
        lock(&self.inner.state).posted.clone()
    }

    /// Waits until at least `n` messages were posted, or `timeout` passes; returns what was posted.
    pub async fn wait_for_posts(&self, n: usize, timeout: Duration) -> Vec<PostedMessage> {
        let mut count = self.inner.posted_count.subscribe();
        let _ = tokio::time::timeout(timeout, count.wait_for(|&c| c >= n)).await;
        self.posted()
    }

    /// The next `count` `POST /messages` answer with `fault` and record nothing (replaces any fault
    /// still pending; a count of 0 clears it). Requests refused for their token do not use one up.
    pub fn fail_next_posts(&self, fault: MessagesFault, count: usize) {
        lock(&self.inner.state).fault = (count > 0).then_some((fault, count));
    }

    /// The registered webhooks, as stored (with `secret` when one was given).
    pub fn webhooks(&self) -> Vec<Value> {
        lock(&self.inner.state).webhooks.clone()
    }

    /// How many requests with this method had a path starting with `path_prefix` (e.g.
    /// `("POST", "/v1/messages")`), answered or refused.
    pub fn request_count(&self, method: &str, path_prefix: &str) -> usize {
        lock(&self.inner.requests)
            .iter()
            .filter(|((m, p), _)| m.eq_ignore_ascii_case(method) && p.starts_with(path_prefix))
            .map(|(_, n)| n)
            .sum()
    }

    /// Stops the server: no new connections, open ones closed once their request is answered.
    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        self.inner.mercury.shut_down();
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}

impl Drop for WebexDouble {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        self.inner.mercury.shut_down();
    }
}

/// Lowercase hex HMAC-SHA1 of `body` keyed with `secret` (Webex's `X-Spark-Signature`).
fn spark_signature(body: &[u8], secret: &str) -> String {
    // HMAC takes keys of any length: this cannot fail
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

// ---------------------------------------------------------------------------------------------------
// State

struct Inner {
    token: String,
    bot: WebexPerson,
    org_id: String,
    app_id: String,
    default_webhook_id: String,
    /// `http://127.0.0.1:PORT`.
    origin: String,
    /// `{origin}/v1`.
    base_url: String,
    started: String,
    seed: u64,
    next_id: AtomicU64,
    state: Mutex<Store>,
    posted_count: watch::Sender<usize>,
    requests: Mutex<HashMap<(String, String), usize>>,
    peers: Mutex<Vec<IpAddr>>,
    devices: Mutex<devices::Registry>,
    mercury: mercury::Mercury,
    /// Bumped on every change of the device service or the websockets (for the `wait_*` helpers).
    changes: watch::Sender<u64>,
}

#[derive(Default)]
struct Store {
    /// The bot first.
    people: Vec<WebexPerson>,
    rooms: Vec<Room>,
    messages: HashMap<String, Message>,
    posted: Vec<PostedMessage>,
    fault: Option<(MessagesFault, usize)>,
    webhooks: Vec<Value>,
    /// Orders messages and room activity that share a timestamp.
    next_seq: u64,
}

impl Store {
    fn room(&self, id: &str) -> Option<&Room> {
        self.rooms.iter().find(|r| r.id == id)
    }

    fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// Stores a message and moves its room's `lastActivity` to the message's time if that is later.
    fn insert_message(&mut self, mut message: Message) {
        let seq = self.seq();
        message.seq = seq;
        if let Some(room) = self.rooms.iter_mut().find(|r| r.id == message.room_id) {
            if message.created >= room.last_activity {
                room.last_activity = message.created.clone();
                room.activity_seq = seq;
            }
        }
        self.messages.insert(message.id.clone(), message);
    }
}

struct Room {
    id: String,
    kind: RoomKind,
    created: String,
    last_activity: String,
    activity_seq: u64,
}

impl Room {
    fn new(id: String, kind: RoomKind) -> Room {
        let now = now_stamp();
        Room {
            id,
            kind,
            created: now.clone(),
            last_activity: now,
            activity_seq: 0,
        }
    }
}

#[derive(Clone)]
enum RoomKind {
    Direct { person_email: String },
    Group { title: String },
}

impl RoomKind {
    fn type_str(&self) -> &'static str {
        match self {
            RoomKind::Direct { .. } => "direct",
            RoomKind::Group { .. } => "group",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RoomType {
    Direct,
    Group,
}

impl RoomType {
    fn as_str(self) -> &'static str {
        match self {
            RoomType::Direct => "direct",
            RoomType::Group => "group",
        }
    }
}

struct Message {
    id: String,
    room_id: String,
    room_type: RoomType,
    person_id: String,
    person_email: String,
    text: Option<String>,
    markdown: Option<String>,
    html: Option<String>,
    files: Vec<String>,
    mentioned_people: Vec<String>,
    parent_id: Option<String>,
    to_person_email: Option<String>,
    created: String,
    /// Insertion order (set by [`Store::insert_message`]).
    seq: u64,
}

impl Message {
    /// The `GET /messages/{id}` shape.
    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        m.insert("roomId".into(), json!(self.room_id));
        m.insert("roomType".into(), json!(self.room_type.as_str()));
        if let Some(parent) = &self.parent_id {
            m.insert("parentId".into(), json!(parent));
        }
        if let Some(to) = &self.to_person_email {
            m.insert("toPersonEmail".into(), json!(to));
        }
        if let Some(text) = &self.text {
            m.insert("text".into(), json!(text));
        }
        if let Some(markdown) = &self.markdown {
            m.insert("markdown".into(), json!(markdown));
        }
        if let Some(html) = &self.html {
            m.insert("html".into(), json!(html));
        }
        if !self.files.is_empty() {
            m.insert("files".into(), json!(self.files));
        }
        m.insert("personId".into(), json!(self.person_id));
        m.insert("personEmail".into(), json!(self.person_email));
        if !self.mentioned_people.is_empty() {
            m.insert("mentionedPeople".into(), json!(self.mentioned_people));
        }
        m.insert("created".into(), json!(self.created));
        Value::Object(m)
    }
}

/// What a `POST /messages` asked for, before validation against the state.
#[derive(Default)]
struct Draft {
    room_id: Option<String>,
    to_person_email: Option<String>,
    text: Option<String>,
    markdown: Option<String>,
    parent_id: Option<String>,
    file: Option<PostedFile>,
}

/// An API error: status and message.
type ApiError = (StatusCode, String);

fn bad_request(message: impl Into<String>) -> ApiError {
    (StatusCode::BAD_REQUEST, message.into())
}

impl Inner {
    fn new(token: &str, bot_email: &str, bot_display_name: &str, origin: String) -> Inner {
        let seed = std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64);
        let (posted_count, _) = watch::channel(0);
        let (changes, _) = watch::channel(0);
        let mut inner = Inner {
            token: token.to_owned(),
            bot: WebexPerson {
                id: String::new(),
                email: bot_email.to_owned(),
                display_name: bot_display_name.to_owned(),
            },
            org_id: String::new(),
            app_id: String::new(),
            default_webhook_id: String::new(),
            base_url: format!("{origin}/v1"),
            origin,
            started: now_stamp(),
            seed,
            next_id: AtomicU64::new(1),
            state: Mutex::new(Store::default()),
            posted_count,
            requests: Mutex::new(HashMap::new()),
            peers: Mutex::new(Vec::new()),
            devices: Mutex::new(devices::Registry::default()),
            mercury: mercury::Mercury::default(),
            changes,
        };
        inner.bot.id = inner.new_id("PEOPLE");
        inner.org_id = inner.new_id("ORGANIZATION");
        inner.app_id = inner.new_id("APPLICATION");
        inner.default_webhook_id = inner.new_id("WEBHOOK");
        lock(&inner.state).people.push(inner.bot.clone());
        inner
    }

    /// A fresh uuid-like string (unique within this double: the counter is in the last group).
    fn uuid(&self) -> String {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let h = splitmix(self.seed ^ n);
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            h >> 32,
            (h >> 16) & 0xffff,
            h & 0xfff,
            0x8000 | (splitmix(h) & 0x3fff),
            n & 0xffff_ffff_ffff
        )
    }

    /// A Webex-style id: base64 (URL-safe, unpadded) of `ciscospark://us/KIND/uuid`.
    fn new_id(&self, kind: &str) -> String {
        let raw = format!("ciscospark://us/{kind}/{}", self.uuid());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    }

    fn tracking_id(&self) -> String {
        format!("ROUTER_{}", self.uuid().to_uppercase())
    }

    fn record_request(&self, method: &str, path: &str) {
        *lock(&self.requests)
            .entry((method.to_owned(), path.to_owned()))
            .or_insert(0) += 1;
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(value) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        let Some((scheme, token)) = value.trim().split_once(' ') else {
            return false;
        };
        scheme.eq_ignore_ascii_case("bearer") && token.trim() == self.token
    }

    /// The person with that email, added (with `display_name` or the email's local part) if unknown.
    fn person(&self, state: &mut Store, email: &str, display_name: Option<&str>) -> WebexPerson {
        if let Some(p) = state
            .people
            .iter()
            .find(|p| p.email.eq_ignore_ascii_case(email))
        {
            return p.clone();
        }
        let display_name = display_name
            .map(str::to_owned)
            .unwrap_or_else(|| email.split('@').next().unwrap_or(email).to_owned());
        let person = WebexPerson {
            id: self.new_id("PEOPLE"),
            email: email.to_owned(),
            display_name,
        };
        state.people.push(person.clone());
        person
    }

    fn direct_room(&self, state: &mut Store, person_email: &str) -> String {
        let person = self.person(state, person_email, None);
        if let Some(room) = state.rooms.iter().find(|r| {
            matches!(&r.kind, RoomKind::Direct { person_email: e } if e.eq_ignore_ascii_case(&person.email))
        }) {
            return room.id.clone();
        }
        let id = self.new_id("ROOM");
        state.rooms.push(Room::new(
            id.clone(),
            RoomKind::Direct {
                person_email: person.email,
            },
        ));
        id
    }

    /// Stores a message `person_email` wrote in `room_id` at `created`; its id. See
    /// [`WebexDouble::user_says`].
    fn user_message(
        &self,
        room_id: &str,
        person_email: &str,
        text: &str,
        created: String,
    ) -> String {
        let mut state = lock(&self.state);
        let Some(room_kind) = state.room(room_id).map(|r| r.kind.clone()) else {
            panic!("user_says: {room_id:?} is not a room of this Webex double");
        };
        let person = self.person(&mut state, person_email, None);
        let bot = &self.bot;
        let (room_type, text, html, mentioned) = match room_kind {
            RoomKind::Direct { .. } => (RoomType::Direct, text.to_owned(), None, Vec::new()),
            RoomKind::Group { .. } => (
                RoomType::Group,
                format!("{} {text}", bot.display_name),
                Some(format!(
                    "<p><spark-mention data-object-type=\"person\" data-object-id=\"{}\">{}</spark-mention> {}</p>",
                    escape_html(&bot.id),
                    escape_html(&bot.display_name),
                    escape_html(text)
                )),
                vec![bot.id.clone()],
            ),
        };
        let message = Message {
            id: self.new_id("MESSAGE"),
            room_id: room_id.to_owned(),
            room_type,
            person_id: person.id,
            person_email: person.email,
            text: Some(text),
            markdown: None,
            html,
            files: Vec::new(),
            mentioned_people: mentioned,
            parent_id: None,
            to_person_email: None,
            created,
            seq: 0,
        };
        let id = message.id.clone();
        tracing::debug!(message = %id, room = %room_id, person = %person_email, "user says");
        state.insert_message(message);
        id
    }

    /// The `GET /rooms` shape of a room.
    fn room_json(&self, state: &Store, room: &Room) -> Value {
        let title = match &room.kind {
            RoomKind::Group { title } => title.clone(),
            RoomKind::Direct { person_email } => state
                .people
                .iter()
                .find(|p| p.email.eq_ignore_ascii_case(person_email))
                .map_or_else(|| person_email.clone(), |p| p.display_name.clone()),
        };
        json!({
            "id": room.id,
            "title": title,
            "type": room.kind.type_str(),
            "isLocked": false,
            "lastActivity": room.last_activity,
            "creatorId": self.bot.id,
            "created": room.created,
            "ownerId": self.org_id,
            "isPublic": false,
            "isReadOnly": false,
        })
    }

    /// Something changed that a `wait_*` helper may be waiting for.
    fn bump(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn person_json(&self, p: &WebexPerson) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(p.id));
        m.insert("emails".into(), json!([p.email]));
        m.insert("phoneNumbers".into(), json!([]));
        m.insert("displayName".into(), json!(p.display_name));
        if p.id == self.bot.id {
            m.insert("nickName".into(), json!(p.display_name));
        } else {
            let mut names = p.display_name.splitn(2, ' ');
            let first = names.next().unwrap_or_default();
            m.insert("nickName".into(), json!(first));
            m.insert("firstName".into(), json!(first));
            if let Some(last) = names.next() {
                m.insert("lastName".into(), json!(last));
            }
        }
        m.insert("orgId".into(), json!(self.org_id));
        m.insert("created".into(), json!(self.started));
        m.insert(
            "type".into(),
            json!(if p.id == self.bot.id { "bot" } else { "person" }),
        );
        Value::Object(m)
    }

    /// Takes one use of the pending fault, if any.
    fn take_fault(&self) -> Option<MessagesFault> {
        let mut state = lock(&self.state);
        let (fault, left) = state.fault?;
        state.fault = (left > 1).then_some((fault, left - 1));
        Some(fault)
    }

    /// Validates a post against the rooms and messages, stores and records it; the created message.
    fn post(&self, draft: Draft) -> Result<Value, ApiError> {
        let has_content = [&draft.text, &draft.markdown]
            .iter()
            .any(|t| t.as_deref().is_some_and(|t| !t.is_empty()))
            || draft.file.is_some();
        if !has_content {
            return Err(bad_request(
                "Message must contain text, markdown or a file (files).",
            ));
        }
        for (name, value) in [("text", &draft.text), ("markdown", &draft.markdown)] {
            if let Some(value) = value {
                if value.len() > MAX_MESSAGE_BYTES {
                    return Err(bad_request(format!(
                        "The {name} is {} bytes long; the maximum message length is {MAX_MESSAGE_BYTES} bytes.",
                        value.len()
                    )));
                }
            }
        }
        let mut state = lock(&self.state);
        let room_id = match (&draft.room_id, &draft.to_person_email) {
            (Some(_), Some(_)) => {
                return Err(bad_request(
                    "Only one of roomId and toPersonEmail may be given.",
                ))
            }
            (None, None) => {
                return Err(bad_request("roomId or toPersonEmail is required."));
            }
            (None, Some(email)) => {
                if !email.contains('@') {
                    return Err(bad_request(format!(
                        "toPersonEmail {email:?} is not an email address."
                    )));
                }
                self.direct_room(&mut state, email)
            }
            (Some(room_id), None) => room_id.clone(),
        };
        let Some(room) = state.room(&room_id) else {
            return Err((
                StatusCode::NOT_FOUND,
                "Could not find a room with provided ID.".to_owned(),
            ));
        };
        let room_type = match room.kind {
            RoomKind::Direct { .. } => RoomType::Direct,
            RoomKind::Group { .. } => RoomType::Group,
        };
        if let Some(parent) = &draft.parent_id {
            match state.messages.get(parent) {
                Some(p) if p.room_id == room_id => {}
                Some(_) => {
                    return Err(bad_request(
                        "The parent message (parentId) is in another room.",
                    ))
                }
                None => return Err(bad_request("Could not find the parent message (parentId).")),
            }
        }
        let id = self.new_id("MESSAGE");
        let files = match &draft.file {
            Some(_) => vec![format!(
                "{}/contents/{}",
                self.base_url,
                self.new_id("CONTENT")
            )],
            None => Vec::new(),
        };
        let message = Message {
            id: id.clone(),
            room_id: room_id.clone(),
            room_type,
            person_id: self.bot.id.clone(),
            person_email: self.bot.email.clone(),
            text: draft.text.clone().or_else(|| draft.markdown.clone()),
            markdown: draft.markdown.clone(),
            html: None,
            files,
            mentioned_people: Vec::new(),
            parent_id: draft.parent_id.clone(),
            to_person_email: draft.to_person_email.clone(),
            created: now_stamp(),
            seq: 0,
        };
        let answer = message.to_json();
        state.insert_message(message);
        state.posted.push(PostedMessage {
            id: id.clone(),
            room_id,
            parent_id: draft.parent_id,
            text: draft.text,
            markdown: draft.markdown,
            file: draft.file,
            to_person_email: draft.to_person_email,
        });
        let count = state.posted.len();
        drop(state);
        // The bot's own posts come back on its websockets too, as they do from Webex.
        self.push_message(&id);
        self.posted_count.send_replace(count);
        Ok(answer)
    }
}

/// SplitMix64: mixes the seed and a counter into uuid-like digits.
fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Webex's timestamp format, e.g. `2026-11-25T00:15:30.123Z`.
fn now_stamp() -> String {
    stamp(chrono::Utc::now())
}

/// `time` in Webex's timestamp format (sorts as text in time order).
fn stamp(time: chrono::DateTime<chrono::Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The `ciscospark://us/KIND/uuid` URI a REST id stands for, whichever base64 spelling it uses
/// (URL-safe or standard, padded or not).
fn decode_id(id: &str) -> Option<String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    [URL_SAFE_NO_PAD, URL_SAFE, STANDARD, STANDARD_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(id).ok())
        .and_then(|raw| String::from_utf8(raw).ok())
        .filter(|uri| uri.starts_with("ciscospark://"))
}

/// The REST id of `ciscospark://us/KIND/uuid` as this double spells it (URL-safe base64, no padding).
fn rest_id(kind: &str, uuid: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("ciscospark://us/{kind}/{uuid}"))
}

/// `id` as this double spells its ids, so that a standard-alphabet or padded spelling finds the same
/// thing; anything that is not a base64 `ciscospark://` id is returned as it is.
fn canonical_id(id: &str) -> String {
    match decode_id(id) {
        Some(uri) => base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(uri),
        None => id.to_owned(),
    }
}

/// The uuid at the end of a REST id (`ciscospark://us/KIND/uuid`).
fn uuid_of(id: &str) -> Option<String> {
    decode_id(id).and_then(|uri| uri.rsplit('/').next().map(str::to_owned))
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_known_hmac_sha1() {
        // RFC 2202 test case 2
        assert_eq!(
            spark_signature(b"what do ya want for nothing?", "Jefe"),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
    }

    #[test]
    fn ids_are_base64_of_spark_uris_and_unique() {
        let inner = Inner::new("t", "bot@webex.bot", "bot", String::new());
        let a = inner.new_id("MESSAGE");
        let b = inner.new_id("MESSAGE");
        assert_ne!(a, b);
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&a)
            .expect("base64");
        let raw = String::from_utf8(raw).expect("utf-8");
        assert!(raw.starts_with("ciscospark://us/MESSAGE/"), "{raw}");
        assert_eq!(raw.len(), "ciscospark://us/MESSAGE/".len() + 36);
    }

    #[test]
    fn ids_are_found_in_any_base64_spelling() {
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        // 59 bytes: the standard spelling has one `=` of padding
        let uri = "ciscospark://us/PEOPLE/0a1b2c3d-0000-4000-8000-00000000ffff";
        let ours = URL_SAFE_NO_PAD.encode(uri);
        let padded = STANDARD.encode(uri);
        assert!(padded.ends_with('='));
        assert_eq!(canonical_id(&padded), ours);
        assert_eq!(canonical_id(&ours), ours);
        assert_eq!(
            uuid_of(&padded).as_deref(),
            Some("0a1b2c3d-0000-4000-8000-00000000ffff")
        );
        assert_eq!(
            rest_id("PEOPLE", "0a1b2c3d-0000-4000-8000-00000000ffff"),
            ours
        );
        // not an id of ours: left alone
        assert_eq!(canonical_id("nope"), "nope");
        assert_eq!(
            canonical_id(&URL_SAFE_NO_PAD.encode("hello")),
            URL_SAFE_NO_PAD.encode("hello")
        );
    }
}
