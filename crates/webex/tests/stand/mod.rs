//! A small Webex stand on 127.0.0.1 for the websocket tests: U2C catalog, device service, the
//! websocket itself, the conversation service's message look-up and `GET /v1/people/me`, all on one
//! port (as the service's own hosts are all trusted). Faults and recordings are switched and read
//! through [`Stand`].

#![allow(dead_code)]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use tokio::sync::{broadcast, Notify};

pub const TOKEN: &str = "SECRET-BOT-TOKEN-0123456789";
pub const BOT_EMAIL: &str = "whereis@webex.bot";
pub const BOT_UUID: &str = "b0b0b0b0-0000-4000-8000-000000000001";

/// What the stand saw and how it misbehaves.
#[derive(Default)]
pub struct Record {
    /// Registered devices: id → name.
    pub devices: Vec<(String, String)>,
    pub next_id: u32,
    /// `POST /devices` calls (answered or not) and when they came.
    pub registrations: Vec<Instant>,
    pub registered_names: Vec<String>,
    /// `DELETE /devices/{id}` calls.
    pub deletions: Vec<String>,
    /// Answer the next N `POST /devices` with 429 and this `Retry-After`.
    pub throttle_registrations: u32,
    pub retry_after: String,
    /// Device ids whose websocket handshake answers 404.
    pub stale: HashSet<String>,
    /// Every new device is stale too.
    pub always_stale: bool,
    /// Answer the next N handshakes with 429 and `retry_after`.
    pub throttle_handshakes: u32,
    /// Close with 4401 after the authorization frame.
    pub reject_auth: bool,
    /// Close the next authorised connection with 4404.
    pub expire_next: bool,
    /// The next N authorised connections never read again (no pongs): silence.
    pub silent_next: u32,
    /// Handshakes (accepted or refused) and when.
    pub handshakes: Vec<(String, Instant)>,
    /// Headers of accepted websocket handshakes.
    pub ws_headers: Vec<HeaderMap>,
    /// Authorization frames received.
    pub auth_frames: Vec<serde_json::Value>,
    /// Connections that got past authorization.
    pub authorised: u32,
    /// Connections currently open after authorization.
    pub open: u32,
    /// `ack` frames: the envelope ids.
    pub acks: Vec<String>,
    /// Pings received from the client.
    pub pings: u32,
    /// Close frames received from the client (their codes).
    pub client_closes: Vec<u16>,
    /// Conversation look-ups: (message uuid, authorization header).
    pub lookups: Vec<(String, String)>,
    /// `GET /v1/people/me` calls.
    pub me_calls: u32,
}

/// A command to every authorised websocket.
#[derive(Debug, Clone)]
pub enum Command {
    Text(String),
    Binary(Vec<u8>),
    /// Drop the TCP connection without a close frame.
    Drop,
    /// Close with this code.
    Close(u16),
}

#[derive(Clone)]
pub struct Stand {
    /// Where the stand listens (plain HTTP).
    pub addr: SocketAddr,
    /// `host:port` its URLs name (a TLS front's, for [`Stand::start_tls`]).
    public: String,
    tls: bool,
    record: Arc<Mutex<Record>>,
    changed: Arc<Notify>,
    commands: broadcast::Sender<Command>,
}

impl Stand {
    pub async fn start() -> Stand {
        Stand::start_behind(None).await
    }

    /// The stand behind a TLS front on its own port: every URL it hands out is `https`/`wss`. The
    /// certificate is for 127.0.0.1, signed by the returned CA (PEM).
    pub async fn start_tls() -> (Stand, String) {
        let pki = tls::pki();
        let front = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stand = Stand::start_behind(Some(front.local_addr().unwrap())).await;
        tls::front(front, pki.server.clone(), stand.addr);
        (stand, pki.ca_pem)
    }

    async fn start_behind(front: Option<SocketAddr>) -> Stand {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (commands, _) = broadcast::channel(64);
        let stand = Stand {
            addr,
            public: front.unwrap_or(addr).to_string(),
            tls: front.is_some(),
            record: Arc::new(Mutex::new(Record {
                retry_after: "0".into(),
                ..Record::default()
            })),
            changed: Arc::new(Notify::new()),
            commands,
        };
        let app = Router::new()
            .route("/u2c/api/v1/catalog", get(catalog))
            .route("/wdm/api/v1/devices", get(list_devices).post(register))
            .route(
                "/wdm/api/v1/devices/{id}",
                axum::routing::delete(delete_device),
            )
            .route("/mercury/registrations/{id}/messages", get(mercury))
            .route(
                "/conversation/api/v1/messages/{uuid}",
                get(conversation_message),
            )
            .route("/v1/people/me", get(people_me))
            .with_state(stand.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        stand
    }

    fn http(&self) -> String {
        format!(
            "{}://{}",
            if self.tls { "https" } else { "http" },
            self.public
        )
    }

    pub fn api_base(&self) -> String {
        format!("{}/v1", self.http())
    }

    pub fn u2c_base(&self) -> String {
        format!("{}/u2c/api/v1", self.http())
    }

    pub fn device_service(&self) -> String {
        format!("{}/wdm/api/v1", self.http())
    }

    pub fn conversation_url(&self, conversation: &str) -> String {
        format!(
            "{}/conversation/api/v1/conversations/{conversation}",
            self.http()
        )
    }

    /// A device registered before the test starts.
    pub fn seed_device(&self, name: &str) -> String {
        let mut record = self.record.lock().unwrap();
        record.next_id += 1;
        let id = format!("seeded-{}", record.next_id);
        record.devices.push((id.clone(), name.to_owned()));
        id
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut Record) -> R) -> R {
        let result = f(&mut self.record.lock().unwrap());
        self.changed.notify_waiters();
        result
    }

    pub fn send(&self, command: Command) {
        // No receiver yet is fine for the tests that push before anyone listens: they wait first.
        let _ = self.commands.send(command);
    }

    /// Waits until `condition` holds (checked on every change), at most 10 s.
    pub async fn wait_for(&self, what: &str, condition: impl Fn(&Record) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if condition(&self.record.lock().unwrap()) {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("timed out waiting for: {what}");
            }
        }
    }

    fn device_json(&self, id: &str, name: &str) -> serde_json::Value {
        serde_json::json!({
            "url": format!("{}/devices/{id}", self.device_service()),
            "webSocketUrl": format!(
                "{}://{}/mercury/registrations/{id}/messages",
                if self.tls { "wss" } else { "ws" },
                self.public
            ),
            "name": name,
            "deviceName": "whereis",
            "deviceType": "DESKTOP",
            "modificationTime": "2026-12-01T10:00:00.000Z",
            "creationTime": "2026-12-01T10:00:00.000Z",
            "services": {"x": "y"}
        })
    }
}

fn authorised(headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {TOKEN}"))
}

async fn catalog(State(stand): State<Stand>, headers: HeaderMap) -> Response {
    if !authorised(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    Json(serde_json::json!({"serviceLinks": {"wdm": stand.device_service(), "conv": "x"}}))
        .into_response()
}

async fn list_devices(State(stand): State<Stand>, headers: HeaderMap) -> Response {
    if !authorised(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let devices: Vec<_> = stand.with(|r| r.devices.clone());
    let list: Vec<_> = devices
        .iter()
        .map(|(id, name)| stand.device_json(id, name))
        .collect();
    Json(serde_json::json!({"devices": list})).into_response()
}

async fn register(
    State(stand): State<Stand>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> Response {
    if !authorised(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let name = body["name"].as_str().unwrap_or("").to_owned();
    let answer = stand.with(|r| {
        r.registrations.push(Instant::now());
        r.registered_names.push(name.clone());
        if r.throttle_registrations > 0 {
            r.throttle_registrations -= 1;
            return Err(r.retry_after.clone());
        }
        r.next_id += 1;
        let id = format!("dev-{}", r.next_id);
        r.devices.push((id.clone(), name.clone()));
        if r.always_stale {
            r.stale.insert(id.clone());
        }
        Ok(id)
    });
    match answer {
        Ok(id) => Json(stand.device_json(&id, &name)).into_response(),
        Err(retry_after) => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", retry_after)],
            Json(serde_json::json!({"message": "slow down"})),
        )
            .into_response(),
    }
}

async fn delete_device(
    State(stand): State<Stand>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> StatusCode {
    if !authorised(&headers) {
        return StatusCode::UNAUTHORIZED;
    }
    stand.with(|r| {
        r.deletions.push(id.clone());
        let before = r.devices.len();
        r.devices.retain(|(known, _)| *known != id);
        if r.devices.len() < before {
            StatusCode::NO_CONTENT
        } else {
            StatusCode::NOT_FOUND
        }
    })
}

async fn people_me(State(stand): State<Stand>, headers: HeaderMap) -> Response {
    if !authorised(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    stand.with(|r| r.me_calls += 1);
    let id = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("ciscospark://us/PEOPLE/{BOT_UUID}"));
    Json(serde_json::json!({"id": id, "emails": [BOT_EMAIL], "displayName": "whereis"}))
        .into_response()
}

/// The REST id the stand gives a message: URL-safe base64 without padding, unlike the fallback.
pub fn stand_message_id(uuid: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("ciscospark://us/MESSAGE/{uuid}"))
}

async fn conversation_message(
    State(stand): State<Stand>,
    Path(uuid): Path<String>,
    headers: HeaderMap,
) -> Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    stand.with(|r| r.lookups.push((uuid.clone(), auth)));
    if !authorised(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    Json(serde_json::json!({"id": stand_message_id(&uuid), "objectType": "activity"}))
        .into_response()
}

async fn mercury(
    State(stand): State<Stand>,
    Path(id): Path<String>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let refusal = stand.with(|r| {
        r.handshakes.push((id.clone(), Instant::now()));
        let known = r.devices.iter().any(|(known, _)| *known == id);
        if !known || r.stale.contains(&id) {
            return Some((StatusCode::NOT_FOUND, String::new()));
        }
        if r.throttle_handshakes > 0 {
            r.throttle_handshakes -= 1;
            return Some((StatusCode::TOO_MANY_REQUESTS, r.retry_after.clone()));
        }
        r.ws_headers.push(headers.clone());
        None
    });
    if let Some((status, retry_after)) = refusal {
        return if retry_after.is_empty() {
            status.into_response()
        } else {
            (status, [("retry-after", retry_after)]).into_response()
        };
    }
    upgrade.on_upgrade(move |socket| session(stand, socket))
}

async fn session(stand: Stand, mut socket: WebSocket) {
    let Some(Ok(Message::Text(first))) = socket.recv().await else {
        return;
    };
    let auth: serde_json::Value = serde_json::from_str(&first).unwrap_or_default();
    let token_ok =
        auth["type"] == "authorization" && auth["data"]["token"] == format!("Bearer {TOKEN}");
    let (reject, expire, silent) = stand.with(|r| {
        r.auth_frames.push(auth.clone());
        let silent = r.silent_next > 0 && !r.reject_auth && !r.expire_next;
        if silent {
            r.silent_next -= 1;
        }
        let expire = std::mem::take(&mut r.expire_next);
        (r.reject_auth || !token_ok, expire, silent)
    });
    if reject || expire {
        let code = if reject { 4401 } else { 4404 };
        let _ = socket
            .send(Message::Close(Some(CloseFrame {
                code,
                reason: "refused".into(),
            })))
            .await;
        while let Some(Ok(_)) = socket.recv().await {}
        return;
    }
    let mut commands = stand.commands.subscribe();
    if socket
        .send(Message::Ping(Default::default()))
        .await
        .is_err()
    {
        return;
    }
    stand.with(|r| {
        r.authorised += 1;
        r.open += 1;
    });
    loop {
        tokio::select! {
            command = commands.recv() => {
                let frame = match command {
                    Ok(Command::Text(text)) => Message::Text(text.into()),
                    Ok(Command::Binary(bytes)) => Message::Binary(bytes.into()),
                    Ok(Command::Close(code)) => {
                        let _ = socket.send(Message::Close(Some(CloseFrame { code, reason: "bye".into() }))).await;
                        break;
                    }
                    Ok(Command::Drop) | Err(_) => break,
                };
                if socket.send(frame).await.is_err() {
                    break;
                }
            }
            frame = socket.recv(), if !silent => {
                match frame {
                    Some(Ok(Message::Text(text))) => {
                        let value: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                        if value["type"] == "ack" {
                            let id = value["messageId"].as_str().unwrap_or("").to_owned();
                            stand.with(|r| r.acks.push(id));
                        }
                    }
                    Some(Ok(Message::Ping(_))) => stand.with(|r| r.pings += 1),
                    Some(Ok(Message::Close(frame))) => {
                        let code = frame.map_or(1005, |f| f.code);
                        stand.with(|r| r.client_closes.push(code));
                        break;
                    }
                    Some(Ok(_)) => {}
                    None | Some(Err(_)) => break,
                }
            }
        }
    }
    stand.with(|r| r.open -= 1);
}

/// A `conversation.activity` frame.
pub struct Frame<'a> {
    pub envelope: &'a str,
    pub message: &'a str,
    pub verb: &'a str,
    pub email: &'a str,
    pub actor_uuid: &'a str,
    pub actor_type: &'a str,
    pub target_url: String,
    pub event_type: &'a str,
}

impl Frame<'_> {
    pub fn json(&self) -> String {
        serde_json::json!({
            "id": self.envelope,
            "data": {
                "eventType": self.event_type,
                "activity": {
                    "id": self.message,
                    "objectType": "activity",
                    "verb": self.verb,
                    "actor": {"id": self.actor_uuid, "objectType": "person", "displayName": "Someone",
                              "emailAddress": self.email, "type": self.actor_type},
                    "object": {"objectType": "comment", "displayName": "encrypted"},
                    "target": {"id": "conv-1", "objectType": "conversation", "url": self.target_url,
                               "tags": ["ONE_ON_ONE"]},
                    "published": "2026-12-01T10:00:00.000Z"
                }
            },
            "timestamp": 1_764_583_200_000_u64,
            "trackingId": "t",
            "alertType": "full",
            "sequenceNumber": 7,
            "filterMessage": false
        })
        .to_string()
    }
}

impl Stand {
    /// A post by Jane in conversation `conv-1` on this stand.
    pub fn post(&self, envelope: &'static str, message: &'static str) -> Frame<'static> {
        Frame {
            envelope,
            message,
            verb: "post",
            email: "jane.doe@example.com",
            actor_uuid: "jane-uuid",
            actor_type: "PERSON",
            target_url: self.conversation_url("conv-1"),
            event_type: "conversation.activity",
        }
    }
}

mod tls {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    use tokio::net::{TcpListener, TcpStream};
    use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use tokio_rustls::rustls::{self, ServerConfig};
    use tokio_rustls::TlsAcceptor;

    pub struct Pki {
        pub ca_pem: String,
        pub server: Arc<ServerConfig>,
    }

    /// A test CA and a certificate for 127.0.0.1 signed by it.
    pub fn pki() -> Pki {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "webex stand CA");
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key).unwrap();
        let server =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(
                    vec![leaf_cert.der().clone()],
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
                )
                .unwrap();
        Pki {
            ca_pem: ca_cert.pem(),
            server: Arc::new(server),
        }
    }

    /// Terminates TLS and forwards each connection to `backend`.
    pub fn front(listener: TcpListener, server: Arc<ServerConfig>, backend: SocketAddr) {
        let acceptor = TlsAcceptor::from(server);
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(socket).await else {
                        return;
                    };
                    let Ok(mut plain) = TcpStream::connect(backend).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
    }
}
