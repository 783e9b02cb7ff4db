//! A Webex REST API double: what a bot uses of `https://webexapis.com/v1`, over real HTTP on loopback.
//!
//! [`WebexDouble`] serves `people`, `messages` and `webhooks` with Webex's JSON shapes (camelCase, base64
//! `ciscospark://us/KIND/uuid` ids, a `trackingid` header on every answer, errors as
//! `{"message", "errors": [{"description"}], "trackingId"}`), records what the bot posts, injects faults
//! into `POST /messages`, and delivers signed webhook events to a target URL. It shares no code with the
//! bot's Webex client, so it checks that client independently.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
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
/// Default and largest `max` of `GET /people`.
const DEFAULT_PEOPLE_MAX: usize = 100;
const LARGEST_PEOPLE_MAX: usize = 1000;
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
            format!("http://{local}/v1"),
        ));
        let app = router(inner.clone());
        let (stop, mut stopped) = watch::channel(false);
        // Small request/response writes must not wait for delayed ACKs.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
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
        state.rooms.push(Room {
            id: id.clone(),
            kind: RoomKind::Group {
                title: title.to_owned(),
            },
        });
        id
    }

    /// A message as a user typed it; returns the message id.
    ///
    /// In a group room the text starts with the bot's display name, `html` carries
    /// `<p><spark-mention data-object-type="person" data-object-id="BOT_ID">whereis</spark-mention> …</p>`
    /// and `mentionedPeople` has the bot id; in a direct room the text is as given (no `html`, no
    /// mentions). The person is added if unknown.
    ///
    /// # Panics
    /// If `room_id` is not a room of this double (a mistake in the test).
    pub fn user_says(&self, room_id: &str, person_email: &str, text: &str) -> String {
        let inner = &self.inner;
        let mut state = lock(&inner.state);
        let Some(room_kind) = state.room(room_id).map(|r| r.kind.clone()) else {
            panic!("user_says: {room_id:?} is not a room of this Webex double");
        };
        let person = inner.person(&mut state, person_email, None);
        let bot = &inner.bot;
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
            id: inner.new_id("MESSAGE"),
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
            created: now_stamp(),
        };
        let id = message.id.clone();
        tracing::debug!(message = %id, room = %room_id, person = %person_email, "user says");
        state.messages.insert(id.clone(), message);
        id
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
    base_url: String,
    started: String,
    seed: u64,
    next_id: AtomicU64,
    state: Mutex<Store>,
    posted_count: watch::Sender<usize>,
    requests: Mutex<HashMap<(String, String), usize>>,
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
}

impl Store {
    fn room(&self, id: &str) -> Option<&Room> {
        self.rooms.iter().find(|r| r.id == id)
    }
}

struct Room {
    id: String,
    kind: RoomKind,
}

#[derive(Clone)]
enum RoomKind {
    Direct { person_email: String },
    Group { title: String },
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
    fn new(token: &str, bot_email: &str, bot_display_name: &str, base_url: String) -> Inner {
        let seed = std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64);
        let (posted_count, _) = watch::channel(0);
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
            base_url,
            started: now_stamp(),
            seed,
            next_id: AtomicU64::new(1),
            state: Mutex::new(Store::default()),
            posted_count,
            requests: Mutex::new(HashMap::new()),
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
        state.rooms.push(Room {
            id: id.clone(),
            kind: RoomKind::Direct {
                person_email: person.email,
            },
        });
        id
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
        };
        let answer = message.to_json();
        state.messages.insert(id.clone(), message);
        state.posted.push(PostedMessage {
            id,
            room_id,
            parent_id: draft.parent_id,
            text: draft.text,
            markdown: draft.markdown,
            file: draft.file,
            to_person_email: draft.to_person_email,
        });
        let count = state.posted.len();
        drop(state);
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
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
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

// ---------------------------------------------------------------------------------------------------
// HTTP

/// The tracking id of the request being answered (also sent as the `trackingid` header).
#[derive(Clone)]
struct Tracking(String);

type Shared = State<Arc<Inner>>;

fn router(inner: Arc<Inner>) -> Router {
    Router::new()
        .route("/v1/people/me", get(people_me))
        .route("/v1/people", get(people_list))
        .route("/v1/messages", post(create_message))
        .route("/v1/messages/{id}", get(get_message))
        .route("/v1/webhooks", get(list_webhooks).post(create_webhook))
        .route(
            "/v1/webhooks/{id}",
            get(get_webhook).put(update_webhook).delete(delete_webhook),
        )
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(inner.clone(), gate))
        .with_state(inner)
}

/// Counts the request, gives it a tracking id, checks the bearer token and adds the `trackingid` header.
async fn gate(State(inner): Shared, mut req: Request, next: Next) -> Response {
    inner.record_request(req.method().as_str(), req.uri().path());
    let tracking = Tracking(inner.tracking_id());
    tracing::debug!(method = %req.method(), path = %req.uri().path(), "webex double request");
    let mut response = if inner.authorized(req.headers()) {
        req.extensions_mut().insert(tracking.clone());
        next.run(req).await
    } else {
        error(
            StatusCode::UNAUTHORIZED,
            &tracking,
            "The request requires a valid access token set in the Authorization request header.",
        )
    };
    if let Ok(value) = HeaderValue::from_str(&tracking.0) {
        response.headers_mut().insert("trackingid", value);
    }
    response
}

/// A Webex error: `{"message", "errors": [{"description"}], "trackingId"}`.
fn error(status: StatusCode, tracking: &Tracking, message: &str) -> Response {
    let body = json!({
        "message": message,
        "errors": [{ "description": message }],
        "trackingId": tracking.0,
    });
    (status, axum::Json(body)).into_response()
}

fn api_error(tracking: &Tracking, (status, message): ApiError) -> Response {
    error(status, tracking, &message)
}

fn ok_json(value: Value) -> Response {
    (StatusCode::OK, axum::Json(value)).into_response()
}

/// The tracking id the gate stored (always there behind the gate; a fresh one otherwise).
fn tracking_of(tracking: Option<Extension<Tracking>>) -> Tracking {
    tracking.map_or_else(|| Tracking("ROUTER_UNTRACKED".to_owned()), |t| t.0)
}

async fn not_found(tracking: Option<Extension<Tracking>>) -> Response {
    error(
        StatusCode::NOT_FOUND,
        &tracking_of(tracking),
        "The requested resource could not be found.",
    )
}

async fn people_me(State(inner): Shared) -> Response {
    ok_json(inner.person_json(&inner.bot))
}

async fn people_list(
    State(inner): Shared,
    tracking: Option<Extension<Tracking>>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let tracking = tracking_of(tracking);
    let Ok(Query(query)) = query else {
        return error(
            StatusCode::BAD_REQUEST,
            &tracking,
            "Malformed query string.",
        );
    };
    let max = match query.get("max") {
        None => DEFAULT_PEOPLE_MAX,
        Some(max) => match max.parse::<usize>() {
            Ok(n) if (1..=LARGEST_PEOPLE_MAX).contains(&n) => n,
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &tracking,
                    &format!("max must be a number from 1 to {LARGEST_PEOPLE_MAX}."),
                )
            }
        },
    };
    let state = lock(&inner.state);
    let found: Vec<Value> = if let Some(email) = query.get("email") {
        state
            .people
            .iter()
            .filter(|p| p.email.eq_ignore_ascii_case(email))
            .take(max)
            .map(|p| inner.person_json(p))
            .collect()
    } else if let Some(name) = query.get("displayName") {
        let prefix = name.to_lowercase();
        state
            .people
            .iter()
            .filter(|p| p.display_name.to_lowercase().starts_with(&prefix))
            .take(max)
            .map(|p| inner.person_json(p))
            .collect()
    } else {
        return error(
            StatusCode::BAD_REQUEST,
            &tracking,
            "Email, displayName, or id list should be specified.",
        );
    };
    ok_json(json!({ "items": found }))
}

async fn get_message(
    State(inner): Shared,
    tracking: Option<Extension<Tracking>>,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    let tracking = tracking_of(tracking);
    let found = id
        .ok()
        .and_then(|Path(id)| lock(&inner.state).messages.get(&id).map(Message::to_json));
    match found {
        Some(message) => ok_json(message),
        None => error(
            StatusCode::NOT_FOUND,
            &tracking,
            "Could not find a message with provided ID.",
        ),
    }
}

async fn create_message(
    State(inner): Shared,
    tracking: Option<Extension<Tracking>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let tracking = tracking_of(tracking);
    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(err) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &tracking,
                &format!("Cannot read the request body (at most {MAX_BODY_BYTES} bytes): {err}"),
            )
        }
    };
    if let Some(fault) = inner.take_fault() {
        tracing::debug!(?fault, "webex double: faulted POST /messages");
        return fault_response(fault, &tracking);
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let draft = match mime.as_str() {
        "application/json" => json_draft(&bytes),
        "multipart/form-data" => multipart_draft(content_type, &bytes),
        _ => Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Content-Type {content_type:?} is not supported: use application/json or multipart/form-data."
            ),
        )),
    };
    match draft.and_then(|draft| inner.post(draft)) {
        Ok(message) => ok_json(message),
        Err(err) => api_error(&tracking, err),
    }
}

fn fault_response(fault: MessagesFault, tracking: &Tracking) -> Response {
    match fault {
        MessagesFault::TooManyRequests {
            retry_after_seconds,
        } => {
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                tracking,
                "Too many requests have been made. Retry after the time in the Retry-After header.",
            );
            if let Ok(value) = HeaderValue::from_str(&retry_after_seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        MessagesFault::MalformedRetryAfter => {
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                tracking,
                "Too many requests have been made.",
            );
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(MALFORMED_RETRY_AFTER),
            );
            response
        }
        MessagesFault::ServerError(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            error(
                status,
                tracking,
                &format!(
                    "{} (simulated)",
                    status.canonical_reason().unwrap_or("Server error")
                ),
            )
        }
    }
}

/// The keys `POST /messages` takes (JSON and multipart text fields).
const MESSAGE_FIELDS: [&str; 5] = ["roomId", "toPersonEmail", "text", "markdown", "parentId"];

fn set_field(draft: &mut Draft, name: &str, value: String) -> Result<(), ApiError> {
    let slot = match name {
        "roomId" => &mut draft.room_id,
        "toPersonEmail" => &mut draft.to_person_email,
        "text" => &mut draft.text,
        "markdown" => &mut draft.markdown,
        "parentId" => &mut draft.parent_id,
        _ => {
            let known = MESSAGE_FIELDS.join(", ");
            return Err(bad_request(format!(
                "Unsupported field {name:?}: the double takes {known} (and one files part)."
            )));
        }
    };
    if slot.is_some() {
        return Err(bad_request(format!("Field {name:?} given twice.")));
    }
    *slot = Some(value);
    Ok(())
}

fn json_draft(bytes: &[u8]) -> Result<Draft, ApiError> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|err| bad_request(format!("The request body is not valid JSON: {err}")))?;
    let Value::Object(object) = value else {
        return Err(bad_request("The request body must be a JSON object."));
    };
    let mut draft = Draft::default();
    for (key, value) in object {
        match value {
            Value::Null => {}
            Value::String(s) => set_field(&mut draft, &key, s)?,
            _ if key == "files" => {
                return Err(bad_request(
                    "files by URL are not supported by the double: upload the file with multipart/form-data.",
                ))
            }
            other => {
                return Err(bad_request(format!(
                    "Field {key:?} must be a string, not {other}."
                )))
            }
        }
    }
    Ok(draft)
}

fn multipart_draft(content_type: &str, bytes: &[u8]) -> Result<Draft, ApiError> {
    let boundary = multipart_boundary(content_type)
        .ok_or_else(|| bad_request("multipart/form-data without a boundary."))?;
    let parts = parse_multipart(bytes, &boundary)
        .map_err(|problem| bad_request(format!("Malformed multipart body: {problem}")))?;
    let mut draft = Draft::default();
    for part in parts {
        if part.name == "files" {
            if draft.file.is_some() {
                return Err(bad_request(
                    "Only one file may be included with the message (files).",
                ));
            }
            let Some(file_name) = part.file_name.filter(|n| !n.is_empty()) else {
                return Err(bad_request("The files part needs a filename."));
            };
            draft.file = Some(PostedFile {
                file_name,
                content_type: part
                    .content_type
                    .unwrap_or_else(|| "application/octet-stream".to_owned()),
                bytes: part.data,
            });
        } else {
            let value = String::from_utf8(part.data)
                .map_err(|_| bad_request(format!("Field {:?} is not UTF-8.", part.name)))?;
            set_field(&mut draft, &part.name, value)?;
        }
    }
    Ok(draft)
}

async fn list_webhooks(State(inner): Shared) -> Response {
    let items = lock(&inner.state).webhooks.clone();
    ok_json(json!({ "items": items }))
}

/// A required non-empty string field of a JSON object.
fn required_str<'a>(object: &'a Map<String, Value>, key: &str) -> Result<&'a str, ApiError> {
    match object.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        _ => Err(bad_request(format!(
            "{key} is required (a non-empty string)."
        ))),
    }
}

/// An optional string field of a JSON object (absent or null is `None`).
fn optional_str<'a>(
    object: &'a Map<String, Value>,
    key: &str,
) -> Result<Option<&'a str>, ApiError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(bad_request(format!("{key} must be a string."))),
    }
}

fn json_object(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(bad_request("The request body must be a JSON object.")),
        Err(err) => Err(bad_request(format!(
            "The request body is not valid JSON: {err}"
        ))),
    }
}

fn check_target_url(url: &str) -> Result<(), ApiError> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(bad_request(format!(
            "targetUrl {url:?} must be an http(s) URL."
        )))
    }
}

async fn create_webhook(
    State(inner): Shared,
    tracking: Option<Extension<Tracking>>,
    body: Body,
) -> Response {
    let tracking = tracking_of(tracking);
    let result = async {
        let bytes = axum::body::to_bytes(body, 1024 * 1024)
            .await
            .map_err(|err| bad_request(format!("Cannot read the request body: {err}")))?;
        let object = json_object(&bytes)?;
        let name = required_str(&object, "name")?;
        let target_url = required_str(&object, "targetUrl")?;
        check_target_url(target_url)?;
        let resource = required_str(&object, "resource")?;
        let event = required_str(&object, "event")?;
        let filter = optional_str(&object, "filter")?;
        let secret = optional_str(&object, "secret")?;
        let mut hook = Map::new();
        hook.insert("id".into(), json!(inner.new_id("WEBHOOK")));
        hook.insert("name".into(), json!(name));
        hook.insert("targetUrl".into(), json!(target_url));
        hook.insert("resource".into(), json!(resource));
        hook.insert("event".into(), json!(event));
        if let Some(filter) = filter {
            hook.insert("filter".into(), json!(filter));
        }
        if let Some(secret) = secret {
            hook.insert("secret".into(), json!(secret));
        }
        hook.insert("orgId".into(), json!(inner.org_id));
        hook.insert("createdBy".into(), json!(inner.bot.id));
        hook.insert("appId".into(), json!(inner.app_id));
        hook.insert("ownedBy".into(), json!("creator"));
        hook.insert("status".into(), json!("active"));
        hook.insert("created".into(), json!(now_stamp()));
        let hook = Value::Object(hook);
        lock(&inner.state).webhooks.push(hook.clone());
        Ok::<_, ApiError>(hook)
    }
    .await;
    match result {
        Ok(hook) => ok_json(hook),
        Err(err) => api_error(&tracking, err),
    }
}

fn webhook_not_found(tracking: &Tracking) -> Response {
    error(
        StatusCode::NOT_FOUND,
        tracking,
        "Could not find a webhook with provided ID.",
    )
}

async fn get_webhook(
    State(inner): Shared,
    tracking: Option<Extension<Tracking>>,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    let tracking = tracking_of(tracking);
    let Ok(Path(id)) = id else {
        return webhook_not_found(&tracking);
    };
    let state = lock(&inner.state);
    match state.webhooks.iter().find(|h| h["id"] == id.as_str()) {
        Some(hook) => ok_json(hook.clone()),
        None => webhook_not_found(&tracking),
    }
}

async fn update_webhook(
    State(inner): Shared,
    tracking: Option<Extension<Tracking>>,
    id: Result<Path<String>, PathRejection>,
    body: Body,
) -> Response {
    let tracking = tracking_of(tracking);
    let Ok(Path(id)) = id else {
        return webhook_not_found(&tracking);
    };
    let result = async {
        let bytes = axum::body::to_bytes(body, 1024 * 1024)
            .await
            .map_err(|err| bad_request(format!("Cannot read the request body: {err}")))?;
        let object = json_object(&bytes)?;
        let name = required_str(&object, "name")?;
        let target_url = required_str(&object, "targetUrl")?;
        check_target_url(target_url)?;
        let secret = optional_str(&object, "secret")?;
        let status = optional_str(&object, "status")?;
        if let Some(status) = status {
            if status != "active" && status != "inactive" {
                return Err(bad_request(format!(
                    "status {status:?} must be active or inactive."
                )));
            }
        }
        let mut state = lock(&inner.state);
        let Some(Value::Object(hook)) = state.webhooks.iter_mut().find(|h| h["id"] == id.as_str())
        else {
            return Err((
                StatusCode::NOT_FOUND,
                "Could not find a webhook with provided ID.".to_owned(),
            ));
        };
        hook.insert("name".into(), json!(name));
        hook.insert("targetUrl".into(), json!(target_url));
        if let Some(secret) = secret {
            hook.insert("secret".into(), json!(secret));
        }
        if let Some(status) = status {
            hook.insert("status".into(), json!(status));
        }
        Ok(Value::Object(hook.clone()))
    }
    .await;
    match result {
        Ok(hook) => ok_json(hook),
        Err(err) => api_error(&tracking, err),
    }
}

async fn delete_webhook(
    State(inner): Shared,
    tracking: Option<Extension<Tracking>>,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    let tracking = tracking_of(tracking);
    let Ok(Path(id)) = id else {
        return webhook_not_found(&tracking);
    };
    let mut state = lock(&inner.state);
    let before = state.webhooks.len();
    state.webhooks.retain(|h| h["id"] != id.as_str());
    if state.webhooks.len() == before {
        return webhook_not_found(&tracking);
    }
    StatusCode::NO_CONTENT.into_response()
}

// ---------------------------------------------------------------------------------------------------
// multipart/form-data

/// One part of a multipart body.
struct Part {
    name: String,
    file_name: Option<String>,
    content_type: Option<String>,
    data: Vec<u8>,
}

/// The `boundary` parameter of a `multipart/form-data` content type.
fn multipart_boundary(content_type: &str) -> Option<String> {
    let mut pieces = content_type.split(';');
    let mime = pieces.next()?.trim();
    if !mime.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    pieces.find_map(|p| {
        let (key, value) = p.split_once('=')?;
        if !key.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        (!value.is_empty() && value.len() <= 200).then(|| value.to_owned())
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Splits a `multipart/form-data` body (RFC 7578) into its parts.
fn parse_multipart(body: &[u8], boundary: &str) -> Result<Vec<Part>, String> {
    let delimiter = format!("--{boundary}").into_bytes();
    let mut next_delimiter = b"\r\n".to_vec();
    next_delimiter.extend_from_slice(&delimiter);

    let mut pos = if body.starts_with(&delimiter) {
        0
    } else {
        find(body, &next_delimiter).ok_or("no boundary found")? + 2
    };
    let mut parts = Vec::new();
    loop {
        pos += delimiter.len();
        let rest = body.get(pos..).unwrap_or_default();
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        // transport padding, then the line break that ends the delimiter line
        let padding = rest
            .iter()
            .take_while(|b| **b == b' ' || **b == b'\t')
            .count();
        pos += padding;
        if !body.get(pos..).unwrap_or_default().starts_with(b"\r\n") {
            return Err("a boundary line does not end with CRLF".to_owned());
        }
        pos += 2;
        let rest = body.get(pos..).unwrap_or_default();
        let (head, content_start) = if rest.starts_with(b"\r\n") {
            (&rest[..0], pos + 2)
        } else {
            let end = find(rest, b"\r\n\r\n").ok_or("a part's headers do not end")?;
            (&rest[..end], pos + end + 4)
        };
        let head = std::str::from_utf8(head).map_err(|_| "a part's headers are not UTF-8")?;
        let content = body.get(content_start..).unwrap_or_default();
        let end = find(content, &next_delimiter).ok_or("the closing boundary is missing")?;
        parts.push(part_from(head, content[..end].to_vec())?);
        pos = content_start + end + 2;
        if parts.len() > 100 {
            return Err("more than 100 parts".to_owned());
        }
    }
}

fn part_from(head: &str, data: Vec<u8>) -> Result<Part, String> {
    let mut disposition = None;
    let mut content_type = None;
    for line in head.split("\r\n") {
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("bad part header line {line:?}"));
        };
        if name.trim().eq_ignore_ascii_case("content-disposition") {
            disposition = Some(value.trim().to_owned());
        } else if name.trim().eq_ignore_ascii_case("content-type") {
            content_type = Some(value.trim().to_owned());
        }
    }
    let disposition = disposition.ok_or("a part has no Content-Disposition")?;
    let params = disposition_params(&disposition)?;
    let mut name = None;
    let mut file_name = None;
    let mut file_name_ext = None;
    for (key, value) in params {
        match key.to_ascii_lowercase().as_str() {
            "name" => name = Some(value),
            "filename" => file_name = Some(value),
            "filename*" => file_name_ext = decode_ext_value(&value),
            _ => {}
        }
    }
    Ok(Part {
        name: name.ok_or("a part has no name")?,
        file_name: file_name_ext.or(file_name),
        content_type,
        data,
    })
}

/// The parameters of `form-data; name="x"; filename="y"` (values unquoted and unescaped).
fn disposition_params(value: &str) -> Result<Vec<(String, String)>, String> {
    let mut chars = value.chars().peekable();
    let kind: String = chars.by_ref().take_while(|c| *c != ';').collect();
    if !kind.trim().eq_ignore_ascii_case("form-data") {
        return Err(format!("Content-Disposition {value:?} is not form-data"));
    }
    let mut params = Vec::new();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ';') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(params);
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        let key = key.trim().to_owned();
        let mut val = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => val.extend(chars.next()),
                    '"' => {
                        closed = true;
                        break;
                    }
                    _ => val.push(c),
                }
            }
            if !closed {
                return Err(format!("unterminated quoted value in {value:?}"));
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == ';' {
                    break;
                }
                val.push(c);
                chars.next();
            }
            val = val.trim().to_owned();
        }
        if key.is_empty() {
            return Err(format!("a parameter without a name in {value:?}"));
        }
        params.push((key, val));
    }
}

/// Decodes an RFC 8187 `utf-8''percent%20encoded` value.
fn decode_ext_value(value: &str) -> Option<String> {
    let (charset, rest) = value.split_once('\'')?;
    let (_, encoded) = rest.split_once('\'')?;
    if !charset.eq_ignore_ascii_case("utf-8") {
        return None;
    }
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = encoded.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
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
    fn multipart_parses_fields_and_file() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"roomId\"\r\n\r\nR1\r\n--XyZ\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a \\\"b\\\".png\"\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n--X\r\n--XyZ--\r\n";
        let parts = parse_multipart(body, "XyZ").expect("parses");
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "roomId");
        assert_eq!(parts[0].data, b"R1");
        assert_eq!(parts[1].file_name.as_deref(), Some("a \"b\".png"));
        assert_eq!(parts[1].content_type.as_deref(), Some("image/png"));
        assert_eq!(parts[1].data, b"\x89PNG\r\n--X");
    }

    #[test]
    fn multipart_garbage_is_an_error_not_a_panic() {
        for body in [
            &b""[..],
            b"--B",
            b"--B\r\n",
            b"--B\r\nContent-Disposition: form-data\r\n\r\nx",
            b"--B\r\nno colon\r\n\r\nx\r\n--B--",
            b"--B\r\nContent-Disposition: form-data; name=\"x\r\n\r\nx\r\n--B--",
            b"--Bjunk",
            b"\r\n--B\r\n\r\n\r\n--B--",
        ] {
            assert!(parse_multipart(body, "B").is_err(), "{body:?}");
        }
        assert_eq!(
            parse_multipart(b"preamble\r\n--B--", "B")
                .expect("empty")
                .len(),
            0
        );
    }

    #[test]
    fn boundary_and_ext_values() {
        assert_eq!(
            multipart_boundary("multipart/form-data; boundary=\"a b\"").as_deref(),
            Some("a b")
        );
        assert_eq!(
            multipart_boundary("Multipart/Form-Data;boundary=abc").as_deref(),
            Some("abc")
        );
        assert_eq!(multipart_boundary("multipart/form-data"), None);
        assert_eq!(multipart_boundary("text/plain; boundary=x"), None);
        assert_eq!(
            decode_ext_value("UTF-8''caf%C3%A9.png").as_deref(),
            Some("café.png")
        );
        assert_eq!(decode_ext_value("utf-8''bad%"), None);
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
}
