//! The Meraki Scanning API v3 receiver, `/ingest/meraki/{source}`: `GET` answers the configured
//! validator (Meraki checks it before it posts); `POST` bodies must carry the configured secret —
//! compared in constant time — or are refused with 403 and nothing is stored. Every instance may
//! receive posts: the rows go to the shared live table.
//!
//! Observations without a `userId` get their username from the network's client list, read from the
//! Dashboard API at most every two minutes, and only while such observations arrive.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;
use whereis_location::live::meraki::MerakiDashboard;
use whereis_location::wire::meraki::{parse_scanning, Observation};
use whereis_location::wire::spaces::username_of_identity;
use whereis_location::{Secret, Unit};
use whereis_store::{LiveChange, LiveDevice};

use super::GatedWriter;

use crate::config::MerakiReceiver;
use crate::health::Health;

/// Largest post accepted: Meraki groups a whole network's clients in one post.
pub const POST_LIMIT: usize = 16 * 1024 * 1024;
/// How long answering one post may take.
const POST_TIMEOUT: Duration = Duration::from_secs(30);
/// The client list is read at most this often (when posts without `userId` arrive).
const CLIENTS_POLL: Duration = Duration::from_secs(120);
/// The window of the client list asked for (`timespan`).
const CLIENTS_TIMESPAN: Duration = Duration::from_secs(900);
/// A receiver that heard nothing for this long is reported as silent (Meraki posts every minute).
const SILENT_AFTER_MS: i64 = 5 * 60_000;

/// One configured Meraki source, as the receiver sees it.
pub struct Receiver {
    name: String,
    network_id: String,
    validator: Secret,
    secret_digest: [u8; 32],
    unit: Unit,
    writer: GatedWriter,
    /// MAC → username, from the Dashboard's client list.
    users: RwLock<HashMap<String, String>>,
    /// A post had observations without `userId` since the last client list was read.
    wants_users: AtomicBool,
    /// Wakes the client-list poll.
    users_wanted: tokio::sync::Notify,
    /// Posts stored.
    pub accepted: AtomicU64,
    /// Posts refused (wrong secret, other network, malformed).
    pub refused: AtomicU64,
    /// Observations written.
    pub observations: AtomicU64,
    /// When the last post was stored (Unix ms; 0: never).
    pub last_post_ms: AtomicI64,
}

impl Receiver {
    /// The receiver of `name`, writing through `writer`.
    pub fn new(name: &str, config: &MerakiReceiver, unit: Unit, writer: GatedWriter) -> Receiver {
        Receiver {
            name: name.to_owned(),
            network_id: config.network_id.clone(),
            validator: config.validator.clone(),
            secret_digest: Sha256::digest(config.secret.expose().as_bytes()).into(),
            unit,
            writer,
            users: RwLock::new(HashMap::new()),
            wants_users: AtomicBool::new(false),
            users_wanted: tokio::sync::Notify::new(),
            accepted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            observations: AtomicU64::new(0),
            last_post_ms: AtomicI64::new(0),
        }
    }

    /// Counts a refused post.
    fn refuse(&self, result: &'static str) {
        self.refused.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(crate::metrics::MERAKI_POSTS, "source" => self.name.clone(), "result" => result)
            .increment(1);
    }

    /// Whether `given` is the configured secret. Both sides are hashed first, so the comparison
    /// takes the same time whatever the lengths.
    fn secret_matches(&self, given: Option<&str>) -> bool {
        let Some(given) = given else { return false };
        let digest: [u8; 32] = Sha256::digest(given.as_bytes()).into();
        bool::from(digest.ct_eq(&self.secret_digest))
    }

    /// The table change for one observation, if it has a place on a floor plan.
    fn change_of(&self, observation: Observation, now_ms: i64) -> Option<LiveChange> {
        let location = observation.location?;
        let (identity, username) = match (observation.identity, observation.username) {
            (Some(identity), Some(username)) => (Some(identity), Some(username)),
            _ => {
                if !self.wants_users.swap(true, Ordering::Relaxed) {
                    self.users_wanted.notify_one();
                }
                let known = self
                    .users
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&observation.mac)
                    .cloned();
                match known {
                    Some(user) => (Some(user.clone()), username_of_identity(&user)),
                    None => (None, None),
                }
            }
        };
        Some(LiveChange::Upsert(LiveDevice {
            source: self.name.clone(),
            mac: observation.mac,
            username,
            identity,
            floor_key: location.floor_plan_id,
            campus: None,
            building: None,
            floor: location.floor_plan_name,
            x: location.x,
            y: location.y,
            unit: super::spaces::unit_name(self.unit).to_owned(),
            accuracy: location.variance,
            ssid: observation.ssid,
            ip: observation.ip,
            status: "ASSOCIATED".to_owned(),
            last_seen_ms: location.time_ms.unwrap_or(now_ms),
            updated_at_ms: now_ms,
        }))
    }
}

/// The receivers of this instance, by source name.
#[derive(Default)]
pub struct Receivers {
    by_name: HashMap<String, Arc<Receiver>>,
}

impl Receivers {
    /// Adds one source's receiver.
    pub fn insert(&mut self, receiver: Arc<Receiver>) {
        self.by_name.insert(receiver.name.clone(), receiver);
    }

    /// The receiver of `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Receiver>> {
        self.by_name.get(name)
    }

    /// Whether there is no Meraki source.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

/// `GET` and `POST /ingest/meraki/{source}`.
pub fn router(receivers: Arc<Receivers>) -> Router {
    Router::new()
        .route(
            "/ingest/meraki/{source}",
            get(validator)
                .post(post)
                .layer(DefaultBodyLimit::max(POST_LIMIT)),
        )
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            POST_TIMEOUT,
        ))
        .with_state(receivers)
}

async fn validator(
    State(receivers): State<Arc<Receivers>>,
    Path(source): Path<String>,
) -> Response {
    match receivers.get(&source) {
        Some(receiver) => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            receiver.validator.expose().to_owned(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such Meraki source\n").into_response(),
    }
}

async fn post(
    State(receivers): State<Arc<Receivers>>,
    Path(source): Path<String>,
    body: Bytes,
) -> Response {
    let Some(receiver) = receivers.get(&source) else {
        return (StatusCode::NOT_FOUND, "no such Meraki source\n").into_response();
    };
    let parsed = match parse_scanning(&body) {
        Ok(parsed) => parsed,
        Err(err) => {
            receiver.refuse("malformed");
            tracing::warn!(source = %receiver.name, error = %err, "Meraki post refused: not a Scanning API v3 body");
            return (StatusCode::BAD_REQUEST, "not a Scanning API v3 post\n").into_response();
        }
    };
    if !receiver.secret_matches(parsed.secret.as_deref()) {
        receiver.refuse("wrong_secret");
        tracing::warn!(source = %receiver.name, "Meraki post refused: wrong or missing secret");
        return (StatusCode::FORBIDDEN, "wrong secret\n").into_response();
    }
    if parsed.network_id != receiver.network_id {
        receiver.refuse("other_network");
        tracing::warn!(source = %receiver.name, network = %parsed.network_id.chars().take(64).collect::<String>(), "Meraki post refused: from another network");
        return (StatusCode::FORBIDDEN, "not this source's network\n").into_response();
    }
    if !parsed.rejected.is_empty() {
        tracing::debug!(source = %receiver.name, rejected = parsed.rejected.len(), "Meraki observations skipped");
    }
    let now_ms = super::now_ms();
    let mut written = 0u64;
    for observation in parsed.observations {
        let Some(change) = receiver.change_of(observation, now_ms) else {
            continue;
        };
        if receiver.writer.send(change).await.is_err() {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "the live table is not available\n",
            )
                .into_response();
        }
        written += 1;
    }
    receiver.accepted.fetch_add(1, Ordering::Relaxed);
    metrics::counter!(crate::metrics::MERAKI_POSTS, "source" => receiver.name.clone(), "result" => "stored")
        .increment(1);
    receiver.observations.fetch_add(written, Ordering::Relaxed);
    receiver.last_post_ms.store(now_ms, Ordering::Relaxed);
    StatusCode::NO_CONTENT.into_response()
}

/// Reads the client list when posts without `userId` arrive — at once the first time, then at most
/// every [`CLIENTS_POLL`] — until `stop`.
pub fn spawn_user_poll(
    receiver: Arc<Receiver>,
    dashboard: Arc<MerakiDashboard>,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        let mut last_read: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                () = receiver.users_wanted.notified() => {}
                () = stop.cancelled() => return,
            }
            if let Some(at) = last_read {
                tokio::select! {
                    () = tokio::time::sleep_until(at + CLIENTS_POLL) => {}
                    () = stop.cancelled() => return,
                }
            }
            last_read = Some(tokio::time::Instant::now());
            receiver.wants_users.store(false, Ordering::Relaxed);
            match dashboard.client_users(CLIENTS_TIMESPAN).await {
                Ok(users) => {
                    tracing::debug!(source = %receiver.name, clients = users.len(), "Meraki client list read");
                    *receiver.users.write().unwrap_or_else(|e| e.into_inner()) = users;
                }
                Err(err) => {
                    tracing::warn!(source = %receiver.name, error = %err, "cannot read the Meraki client list: observations without userId stay unnamed");
                }
            }
        }
    });
}

/// Reports each receiver's state to `/readyz` every few seconds, until `stop`.
pub fn report(receiver: Arc<Receiver>, health: Arc<Health>, stop: CancellationToken) {
    tokio::spawn(async move {
        let stream = format!("meraki:{}", receiver.name);
        let mut every = tokio::time::interval(Duration::from_secs(2));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                () = stop.cancelled() => return,
            }
            let (state, detail) = describe(&receiver, super::now_ms());
            health.set_stream(&stream, state, Some(detail));
        }
    });
}

/// The receiver's state for people.
pub(crate) fn describe(receiver: &Receiver, now_ms: i64) -> (&'static str, String) {
    let accepted = receiver.accepted.load(Ordering::Relaxed);
    let refused = receiver.refused.load(Ordering::Relaxed);
    let last = receiver.last_post_ms.load(Ordering::Relaxed);
    let counts = format!("{accepted} posts stored, {refused} refused");
    if last == 0 {
        return ("waiting", format!("no post received yet; {counts}"));
    }
    let age = (now_ms - last).max(0);
    let detail = format!("last post {} s ago; {counts}", age / 1000);
    if age > SILENT_AFTER_MS {
        ("silent", detail)
    } else {
        ("receiving", detail)
    }
}
