//! The websocket ("Mercury") event service: `GET /mercury/registrations/{id}/messages` upgrades to a
//! websocket that expects an authorization frame, answers it with a Ping and then pushes a
//! `conversation.activity` envelope for every message; plus the conversation service's message lookup
//! (`GET /conversation/api/v1/messages/{uuid}` → the REST id), and the faults and counters tests use.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::ws::{CloseFrame, Message as Frame, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::rest::{error, ok_json, tracking_of, Shared, Tracking};
use super::{lock, rest_id, uuid_of, Inner, Message, RoomType, Store, WebexDouble};

/// Close code for a failed authorization (wrong token, or [`WebexDouble::reject_next_authorizations`]).
pub const CLOSE_AUTH_FAILED: u16 = 4401;
/// Close code for an expired or deleted registration (the client registers again).
pub const CLOSE_EXPIRED: u16 = 4404;
/// How long a new websocket may take to send its authorization frame.
const AUTH_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the double waits for the client's answer to its close frame.
const CLOSE_REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// What stands for the encrypted message text in an activity (the real one is a JWE).
const ENCRYPTED: &str =
    "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..c2ltdWxhdGVk.ZW5jcnlwdGVkIGNvbnRlbnQ.dGFn";

/// Counters of the device service and the websockets, for assertions and [`WebexDouble::wait_until`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MercuryStats {
    /// Devices registered now.
    pub devices: usize,
    /// Successful `POST /devices` so far.
    pub registrations: usize,
    /// Successful `DELETE /devices/{id}` so far.
    pub deletions: usize,
    /// Websocket connections accepted (upgraded) so far.
    pub connections_accepted: u64,
    /// Websocket connections open now.
    pub connections_open: usize,
    /// Open websockets that are authorised now (they get activities).
    pub authorised_now: usize,
    /// Successful authorizations so far.
    pub authorizations: u64,
    /// Authorizations refused (close 4401) so far.
    pub authorization_failures: u64,
    /// Acks received so far.
    pub acks: usize,
    /// Envelopes pushed so far (one per message and websocket).
    pub pushed: usize,
}

/// One `conversation.activity` envelope the double pushed to one websocket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedActivity {
    /// Which websocket connection (numbered from 1 in accept order).
    pub connection: u64,
    /// The envelope's `id` (what an ack's `messageId` names).
    pub envelope_id: String,
    /// The envelope's `sequenceNumber` on that connection (from 1).
    pub sequence_number: u64,
    /// `activity.id`: the message uuid.
    pub activity_id: String,
    /// The REST id of the message.
    pub message_id: String,
}

/// The websockets and their counters.
#[derive(Default)]
pub(super) struct Mercury {
    state: Mutex<Sockets>,
    stopped: AtomicBool,
}

#[derive(Default)]
struct Sockets {
    open: HashMap<u64, Socket>,
    accepted: u64,
    authorizations: u64,
    authorization_failures: u64,
    /// Authorizations still to refuse.
    reject_next: usize,
    /// The next `count` handshakes answer 429 with `Retry-After: seconds`: (seconds, count).
    handshake_fault: Option<(u64, usize)>,
    acks: Vec<String>,
    pushed: Vec<PushedActivity>,
}

struct Socket {
    device_id: String,
    authorised: bool,
    sequence: u64,
    commands: mpsc::UnboundedSender<Command>,
}

/// What the double tells a websocket's task to do.
enum Command {
    /// Send this text frame.
    Send(String),
    /// Send a close frame with this code and reason, then end.
    Close(u16, String),
    /// End at once: the TCP connection closes without a close frame.
    Drop,
}

/// How a websocket's session ended.
enum Ending {
    /// The client went away (or the connection broke).
    Gone,
    /// The double drops the connection without a close frame.
    Abrupt,
    /// The double closes with this code and reason.
    Close(u16, String),
}

impl Mercury {
    /// Ends every websocket and refuses new ones (the double is stopping).
    pub(super) fn shut_down(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        let mut sockets = lock(&self.state);
        for (_, socket) in sockets.open.drain() {
            let _ = socket.commands.send(Command::Drop);
        }
    }

    /// Closes the open websockets of one device with `code`.
    pub(super) fn close_device(&self, device_id: &str, code: u16, reason: &str) -> usize {
        self.end_where(
            |s| s.device_id == device_id,
            || Command::Close(code, reason.to_owned()),
        )
    }

    /// Takes the websockets that match out of the open set at once (so that they count as gone and get
    /// nothing more), then tells their tasks to end.
    fn end_where(&self, matches: impl Fn(&Socket) -> bool, command: impl Fn() -> Command) -> usize {
        let mut sockets = lock(&self.state);
        let ids: Vec<u64> = sockets
            .open
            .iter()
            .filter(|(_, s)| matches(s))
            .map(|(id, _)| *id)
            .collect();
        for id in &ids {
            if let Some(socket) = sockets.open.remove(id) {
                let _ = socket.commands.send(command());
            }
        }
        ids.len()
    }

    fn take_handshake_fault(&self) -> Option<u64> {
        let mut sockets = lock(&self.state);
        let (seconds, left) = sockets.handshake_fault?;
        sockets.handshake_fault = (left > 1).then_some((seconds, left - 1));
        Some(seconds)
    }
}

impl Inner {
    /// Pushes the `post` activity of message `id` to every authorised websocket; how many got it.
    pub(super) fn push_message(&self, id: &str) -> usize {
        let Some((activity_id, activity)) = ({
            let state = lock(&self.state);
            state
                .messages
                .get(id)
                .and_then(|m| self.activity_json(&state, m))
        }) else {
            return 0;
        };
        let mut count = 0;
        {
            let mut sockets = lock(&self.mercury.state);
            let Sockets { open, pushed, .. } = &mut *sockets;
            let mut connections: Vec<(&u64, &mut Socket)> =
                open.iter_mut().filter(|(_, s)| s.authorised).collect();
            connections.sort_by_key(|(id, _)| **id);
            for (connection, socket) in connections {
                socket.sequence += 1;
                let envelope_id = self.uuid();
                let envelope = json!({
                    "id": envelope_id,
                    "data": {
                        "eventType": "conversation.activity",
                        "activity": activity,
                    },
                    "timestamp": chrono::Utc::now().timestamp_millis(),
                    "trackingId": format!("sim_{}", self.uuid()),
                    "alertType": "full",
                    "headers": {},
                    "sequenceNumber": socket.sequence,
                    "filterMessage": false,
                });
                if socket
                    .commands
                    .send(Command::Send(envelope.to_string()))
                    .is_ok()
                {
                    pushed.push(PushedActivity {
                        connection: *connection,
                        envelope_id,
                        sequence_number: socket.sequence,
                        activity_id: activity_id.clone(),
                        message_id: id.to_owned(),
                    });
                    count += 1;
                }
            }
        }
        tracing::debug!(message = %id, websockets = count, "webex double: activity pushed");
        self.bump();
        count
    }

    /// The `activity` of a message's `post` (and its uuid), shaped like Mercury's.
    fn activity_json(&self, state: &Store, message: &Message) -> Option<(String, Value)> {
        let activity_id = uuid_of(&message.id)?;
        let room_uuid = uuid_of(&message.room_id)?;
        let person_uuid = uuid_of(&message.person_id)?;
        let display_name = state
            .people
            .iter()
            .find(|p| p.id == message.person_id)
            .map_or_else(|| message.person_email.clone(), |p| p.display_name.clone());
        let actor_type = if message.person_id == self.bot.id {
            "BOT"
        } else {
            "PERSON"
        };
        let mut object = json!({
            "objectType": "comment",
            "displayName": ENCRYPTED,
            "content": ENCRYPTED,
        });
        if !message.mentioned_people.is_empty() {
            let items: Vec<Value> = message
                .mentioned_people
                .iter()
                .filter_map(|p| uuid_of(p))
                .map(|uuid| json!({ "id": uuid, "objectType": "person" }))
                .collect();
            object["mentions"] = json!({ "items": items });
        }
        let tags: &[&str] = match message.room_type {
            RoomType::Direct => &["ONE_ON_ONE"],
            RoomType::Group => &[],
        };
        let conversations = format!("{}/conversation/api/v1", self.origin);
        let mut activity = json!({
            "id": activity_id,
            "objectType": "activity",
            "url": format!("{conversations}/activities/{activity_id}"),
            "verb": "post",
            "actor": {
                "id": person_uuid,
                "objectType": "person",
                "displayName": display_name,
                "emailAddress": message.person_email,
                "entryUUID": person_uuid,
                "type": actor_type,
            },
            "object": object,
            "target": {
                "id": room_uuid,
                "objectType": "conversation",
                "url": format!("{conversations}/conversations/{room_uuid}"),
                "tags": tags,
                "globalId": message.room_id,
            },
            "published": message.created,
            "encryptionKeyUrl": format!("kms://kms-sim.wbx2.com/keys/{room_uuid}"),
        });
        if let Some(parent) = message.parent_id.as_deref().and_then(uuid_of) {
            activity["parent"] = json!({ "id": parent, "type": "reply" });
        }
        Some((activity_id, activity))
    }

    /// Checks an authorization frame; marks the connection authorised, or says why not.
    fn authorize(&self, connection: u64, frame: &[u8]) -> Result<(), &'static str> {
        let token_ok = serde_json::from_slice::<Value>(frame)
            .ok()
            .is_some_and(|v| {
                v["type"] == "authorization"
                    && v["data"]["token"]
                        .as_str()
                        .and_then(|t| t.trim().split_once(' '))
                        .is_some_and(|(scheme, token)| {
                            scheme.eq_ignore_ascii_case("bearer") && token.trim() == self.token
                        })
            });
        let result = {
            let mut sockets = lock(&self.mercury.state);
            if sockets.reject_next > 0 {
                sockets.reject_next -= 1;
                sockets.authorization_failures += 1;
                Err("authorization failed")
            } else if !token_ok {
                sockets.authorization_failures += 1;
                Err("authorization failed")
            } else {
                sockets.authorizations += 1;
                if let Some(socket) = sockets.open.get_mut(&connection) {
                    socket.authorised = true;
                }
                Ok(())
            }
        };
        self.bump();
        result
    }

    /// A frame after authorization: acks are recorded, anything else is ignored.
    fn after_authorization(&self, frame: &[u8]) {
        let Ok(value) = serde_json::from_slice::<Value>(frame) else {
            tracing::debug!("webex double: a websocket frame that is not JSON, ignored");
            return;
        };
        match (value["type"].as_str(), value["messageId"].as_str()) {
            (Some("ack"), Some(envelope_id)) => {
                lock(&self.mercury.state).acks.push(envelope_id.to_owned());
                self.bump();
            }
            (kind, _) => tracing::debug!(?kind, "webex double: websocket frame ignored"),
        }
    }
}

/// `GET /mercury/registrations/{id}/messages`: 429 while a handshake fault is pending, 404 for a
/// registration the device service does not know, else the websocket.
pub(super) async fn websocket(
    State(inner): Shared,
    tracking: Option<Extension<Tracking>>,
    id: Result<Path<String>, PathRejection>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let tracking = tracking_of(tracking);
    if let Some(retry_after) = inner.mercury.take_handshake_fault() {
        let mut response = error(
            StatusCode::TOO_MANY_REQUESTS,
            &tracking,
            "Too many connection attempts. Retry after the time in the Retry-After header.",
        );
        if let Ok(value) = HeaderValue::from_str(&retry_after.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    let device_id = match id {
        Ok(Path(id)) if lock(&inner.devices).knows(&id) => id,
        _ => {
            return error(
                StatusCode::NOT_FOUND,
                &tracking,
                "Registration not found: register the device again.",
            )
        }
    };
    match upgrade {
        Ok(upgrade) => upgrade.on_upgrade(move |socket| serve_socket(inner, device_id, socket)),
        Err(rejection) => rejection.into_response(),
    }
}

async fn serve_socket(inner: Arc<Inner>, device_id: String, mut socket: WebSocket) {
    let (commands, mut received) = mpsc::unbounded_channel();
    let connection = {
        let mut sockets = lock(&inner.mercury.state);
        if inner.mercury.stopped.load(Ordering::SeqCst) {
            return;
        }
        sockets.accepted += 1;
        let connection = sockets.accepted;
        sockets.open.insert(
            connection,
            Socket {
                device_id,
                authorised: false,
                sequence: 0,
                commands,
            },
        );
        connection
    };
    inner.bump();
    tracing::debug!(connection, "webex double: websocket open");
    let ending = session(&inner, connection, &mut socket, &mut received).await;
    lock(&inner.mercury.state).open.remove(&connection);
    inner.bump();
    match ending {
        // Dropping the socket closes the TCP connection, without a close frame.
        Ending::Gone | Ending::Abrupt => {}
        Ending::Close(code, reason) => {
            tracing::debug!(connection, code, "webex double: closing a websocket");
            let frame = CloseFrame {
                code,
                reason: reason.into(),
            };
            if socket.send(Frame::Close(Some(frame))).await.is_ok() {
                // Let the client answer the close frame, so the close handshake completes.
                let _ = tokio::time::timeout(CLOSE_REPLY_TIMEOUT, async {
                    while let Some(Ok(_)) = socket.recv().await {}
                })
                .await;
            }
        }
    }
}

async fn session(
    inner: &Inner,
    connection: u64,
    socket: &mut WebSocket,
    commands: &mut mpsc::UnboundedReceiver<Command>,
) -> Ending {
    let auth_deadline = tokio::time::sleep(AUTH_TIMEOUT);
    tokio::pin!(auth_deadline);
    let mut authorised = false;
    loop {
        tokio::select! {
            frame = socket.recv() => {
                let bytes: Bytes = match frame {
                    None | Some(Err(_)) => return Ending::Gone,
                    Some(Ok(Frame::Text(text))) => text.into(),
                    Some(Ok(Frame::Binary(bytes))) => bytes,
                    // Pings are answered by the websocket layer; after a close frame the next read ends.
                    Some(Ok(_)) => continue,
                };
                if authorised {
                    inner.after_authorization(&bytes);
                    continue;
                }
                match inner.authorize(connection, &bytes) {
                    Ok(()) => {
                        authorised = true;
                        // Clients take the first frame after authorization as "authorised".
                        if socket.send(Frame::Ping(Bytes::new())).await.is_err() {
                            return Ending::Gone;
                        }
                    }
                    Err(reason) => return Ending::Close(CLOSE_AUTH_FAILED, reason.to_owned()),
                }
            }
            command = commands.recv() => match command {
                Some(Command::Send(text)) => {
                    if socket.send(Frame::Text(text.into())).await.is_err() {
                        return Ending::Gone;
                    }
                }
                Some(Command::Close(code, reason)) => return Ending::Close(code, reason),
                Some(Command::Drop) | None => return Ending::Abrupt,
            },
            () = &mut auth_deadline, if !authorised => {
                return Ending::Close(CLOSE_AUTH_FAILED, "authorization timed out".to_owned());
            }
        }
    }
}

/// `GET /conversation/api/v1/messages/{uuid}`: the message behind an activity, with its REST `id`.
pub(super) async fn conversation_message(
    State(inner): Shared,
    tracking: Option<Extension<Tracking>>,
    uuid: Result<Path<String>, PathRejection>,
) -> Response {
    let tracking = tracking_of(tracking);
    let found = uuid.ok().and_then(|Path(uuid)| {
        let id = rest_id("MESSAGE", &uuid);
        let state = lock(&inner.state);
        state.messages.get(&id).map(|m| {
            json!({
                "id": m.id,
                "objectType": "activity",
                "verb": "post",
                "activityId": uuid,
                "roomId": m.room_id,
                "published": m.created,
            })
        })
    });
    match found {
        Some(message) => ok_json(message),
        None => error(
            StatusCode::NOT_FOUND,
            &tracking,
            "Could not find an activity with provided ID.",
        ),
    }
}

impl WebexDouble {
    /// Pushes the `post` activity of message `message_id` (e.g. one recorded with
    /// [`WebexDouble::user_says_at`], or one already delivered by webhook) to every authorised websocket;
    /// returns how many websockets got it.
    ///
    /// # Panics
    /// If `message_id` is not a message of this double (a mistake in the test).
    pub fn push_activity(&self, message_id: &str) -> usize {
        let id = super::canonical_id(message_id);
        if !lock(&self.inner.state).messages.contains_key(&id) {
            panic!("push_activity: {message_id:?} is not a message of this Webex double");
        }
        self.inner.push_message(&id)
    }

    /// Drops every open websocket now: the TCP connection closes without a close frame. Returns how
    /// many were open.
    pub fn drop_websockets(&self) -> usize {
        self.inner.mercury.end_where(|_| true, || Command::Drop)
    }

    /// Closes every open websocket with a close frame of `code` and `reason` (e.g. 4404, 1001). Returns
    /// how many were open.
    pub fn close_websockets(&self, code: u16, reason: &str) -> usize {
        self.inner
            .mercury
            .end_where(|_| true, || Command::Close(code, reason.to_owned()))
    }

    /// The next `count` authorization frames are refused with close code 4401, whatever the token
    /// (replaces a pending count; 0 clears it; `usize::MAX` for ever).
    pub fn reject_next_authorizations(&self, count: usize) {
        lock(&self.inner.mercury.state).reject_next = count;
    }

    /// The next `count` websocket handshakes answer `429 Too Many Requests` with `Retry-After:
    /// retry_after_seconds` (replaces a pending fault; 0 clears it).
    pub fn fail_next_handshakes(&self, count: usize, retry_after_seconds: u64) {
        lock(&self.inner.mercury.state).handshake_fault =
            (count > 0).then_some((retry_after_seconds, count));
    }

    /// The counters of the device service and the websockets now.
    pub fn websocket_stats(&self) -> MercuryStats {
        let (devices, registrations, deletions) = (
            self.device_count(),
            self.registration_count(),
            self.deletion_count(),
        );
        let sockets = lock(&self.inner.mercury.state);
        MercuryStats {
            devices,
            registrations,
            deletions,
            connections_accepted: sockets.accepted,
            connections_open: sockets.open.len(),
            authorised_now: sockets.open.values().filter(|s| s.authorised).count(),
            authorizations: sockets.authorizations,
            authorization_failures: sockets.authorization_failures,
            acks: sockets.acks.len(),
            pushed: sockets.pushed.len(),
        }
    }

    /// Websocket connections accepted so far.
    pub fn websockets_accepted(&self) -> u64 {
        lock(&self.inner.mercury.state).accepted
    }

    /// Open websockets that are authorised now.
    pub fn websockets_authorised(&self) -> usize {
        lock(&self.inner.mercury.state)
            .open
            .values()
            .filter(|s| s.authorised)
            .count()
    }

    /// The `messageId` of every ack received, in order.
    pub fn acks(&self) -> Vec<String> {
        lock(&self.inner.mercury.state).acks.clone()
    }

    /// Every envelope pushed, in order.
    pub fn pushed(&self) -> Vec<PushedActivity> {
        lock(&self.inner.mercury.state).pushed.clone()
    }

    /// Waits until `condition` holds for the counters (checked now and after every change), or
    /// `timeout` passes; whether it held.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        mut condition: impl FnMut(&MercuryStats) -> bool,
    ) -> bool {
        let mut changes = self.inner.changes.subscribe();
        let wait = async {
            loop {
                if condition(&self.websocket_stats()) {
                    return;
                }
                // The sender lives as long as `self`: this only fails if the double is gone.
                if changes.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.is_ok()
    }

    /// Waits until at least one websocket is authorised now, or `timeout` passes; whether one is.
    pub async fn wait_for_authorised(&self, timeout: Duration) -> bool {
        self.wait_until(timeout, |s| s.authorised_now > 0).await
    }

    /// Waits until at least `n` authorizations succeeded in all, or `timeout` passes; whether they did.
    pub async fn wait_for_authorizations(&self, n: u64, timeout: Duration) -> bool {
        self.wait_until(timeout, |s| s.authorizations >= n).await
    }

    /// Waits until at least `n` acks were received, or `timeout` passes; whether they were.
    pub async fn wait_for_acks(&self, n: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |s| s.acks >= n).await
    }
}
