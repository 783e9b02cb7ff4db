//! [`Listener`]: receives the bot's messages over the Webex websocket ("Mercury"), with no public
//! URL. It owns the whole life cycle: find or register the device → open the websocket through the
//! caller's [`Dialer`] → authorise → hand posts to the caller → keep the connection alive (pings,
//! silence detection) → reconnect with jittered backoff, re-register a stale device → on shutdown
//! close the socket and delete the device.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::FuturesOrdered;
use futures::{SinkExt, StreamExt};
use reqwest::Url;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_util::sync::CancellationToken;

use crate::activity::{parse_envelope, resolve_message_id, uuid_of_rest_id, Activity};
use crate::client::{millis, WebexClient};
use crate::device::{Device, DeviceService, NewDevice, DEFAULT_DEVICE_SERVICE, DEFAULT_U2C_BASE};
use crate::error::WebexError;
use crate::origin::check_trusted;
use crate::transport::{open, Dialer, DirectDialer, Handshake, OpenError, Socket, Tls};

/// Close code: the service rejected the token.
const CLOSE_AUTH_REJECTED: u16 = 4401;
/// Close code: the device registration expired.
const CLOSE_REGISTRATION_EXPIRED: u16 = 4404;
/// Longest close reason kept in an error.
const MAX_REASON: usize = 200;
/// Posts whose message id is being looked up at once.
const MAX_LOOKUPS: usize = 8;

/// Timings and limits of a [`Listener`].
#[derive(Debug, Clone)]
pub struct ListenerSettings {
    /// How often a websocket Ping is sent.
    pub ping_interval: Duration,
    /// No frame at all (pongs and pings included) for this long: the connection is dead.
    pub silence_timeout: Duration,
    /// Most time to dial, do TLS and the websocket handshake.
    pub connect_timeout: Duration,
    /// Most time between the authorization frame and the service's first frame.
    pub auth_timeout: Duration,
    /// Most time to close the socket on shutdown.
    pub close_timeout: Duration,
    /// Most time to delete the device on shutdown.
    pub delete_timeout: Duration,
    /// First reconnect backoff step (full jitter: the wait is random between 0 and the step).
    pub backoff_base: Duration,
    /// Largest reconnect backoff step.
    pub backoff_cap: Duration,
    /// A connection authorised for this long resets the backoff.
    pub stable_after: Duration,
    /// New registrations tried in a row when the device keeps going stale, before giving up.
    pub max_reregistrations: u32,
    /// Posts waiting for the caller (being resolved or queued) before the listener stops reading
    /// the socket; while it waits, silence is not held against the connection.
    pub queue: usize,
}

impl Default for ListenerSettings {
    fn default() -> ListenerSettings {
        ListenerSettings {
            ping_interval: Duration::from_secs(15),
            silence_timeout: Duration::from_secs(45),
            connect_timeout: Duration::from_secs(30),
            auth_timeout: Duration::from_secs(20),
            close_timeout: Duration::from_secs(5),
            delete_timeout: Duration::from_secs(10),
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(60),
            stable_after: Duration::from_secs(60),
            max_reregistrations: 3,
            queue: 64,
        }
    }
}

/// Longest timing a setting may have.
const MAX_SETTING: Duration = Duration::from_secs(24 * 3600);

impl ListenerSettings {
    /// The timings the connection relies on are between zero (excluded) and a day.
    fn check(&self) -> Result<(), WebexError> {
        let timings = [
            ("ping_interval", self.ping_interval),
            ("silence_timeout", self.silence_timeout),
            ("connect_timeout", self.connect_timeout),
            ("auth_timeout", self.auth_timeout),
            ("close_timeout", self.close_timeout),
            ("delete_timeout", self.delete_timeout),
            ("backoff_cap", self.backoff_cap),
            ("stable_after", self.stable_after),
        ];
        for (name, value) in timings {
            if value.is_zero() || value > MAX_SETTING {
                return Err(WebexError::Setup(format!(
                    "listener setting {name} must be more than zero and at most a day"
                )));
            }
        }
        if self.backoff_base > self.backoff_cap {
            return Err(WebexError::Setup(
                "listener setting backoff_base must not exceed backoff_cap".into(),
            ));
        }
        Ok(())
    }
}

/// Who the bot is, to drop its own posts. Either is enough; with neither, the listener asks
/// `GET /people/me`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BotIdentity {
    /// The bot's REST person id (base64 of `ciscospark://us/PEOPLE/{uuid}`) or its UUID.
    pub person_id: Option<String>,
    /// The bot's email addresses.
    pub emails: Vec<String>,
}

/// Where and how a [`Listener`] connects.
#[derive(Clone)]
pub struct ListenerConfig {
    /// The device's name: found again by it on the next start.
    pub device_name: String,
    /// The U2C catalog that names the device service (default [`DEFAULT_U2C_BASE`]).
    pub u2c_base: String,
    /// The device service's URL; when set, U2C is not asked.
    pub device_service: Option<String>,
    /// The device service used when U2C cannot say (default [`DEFAULT_DEVICE_SERVICE`]).
    pub fallback_device_service: String,
    /// The bot's identity; `None` asks `GET /people/me`.
    pub bot: Option<BotIdentity>,
    /// Timings and limits.
    pub settings: ListenerSettings,
    /// How the websocket's TCP stream is opened (default [`DirectDialer`]).
    pub dialer: Arc<dyn Dialer>,
    /// TLS for `wss://` (default: the system's trust roots).
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl ListenerConfig {
    /// Defaults: U2C discovery, `GET /people/me`, direct connections, system trust roots.
    pub fn new(device_name: impl Into<String>) -> ListenerConfig {
        ListenerConfig {
            device_name: device_name.into(),
            u2c_base: DEFAULT_U2C_BASE.into(),
            device_service: None,
            fallback_device_service: DEFAULT_DEVICE_SERVICE.into(),
            bot: None,
            settings: ListenerSettings::default(),
            dialer: Arc::new(DirectDialer),
            tls: None,
        }
    }
}

impl fmt::Debug for ListenerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListenerConfig")
            .field("device_name", &self.device_name)
            .field("u2c_base", &self.u2c_base)
            .field("device_service", &self.device_service)
            .field("fallback_device_service", &self.fallback_device_service)
            .field("bot", &self.bot)
            .field("settings", &self.settings)
            .field("custom_tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

/// What the listener tells its caller.
#[derive(Debug, Clone)]
pub enum ListenerEvent {
    /// The websocket is open and authorised: messages flow from now on. A good moment to catch up
    /// on what was said while disconnected.
    Connected {
        /// The device's URL.
        device_url: String,
    },
    /// The connection was lost, or an attempt failed; the next attempt starts after `retry_in`.
    Disconnected {
        /// What happened (no secrets).
        reason: String,
        /// The wait before the next attempt.
        retry_in: Duration,
    },
    /// Someone else posted a message the bot can see (boxed: an activity is large).
    Post(Box<Post>),
    /// The listener stopped for good; [`Listener::run`] returns the same error.
    GaveUp(WebexError),
}

/// A message posted by someone other than the bot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Post {
    /// Its REST id, for `GET /messages/{id}` (see [`resolve_message_id`]).
    pub message_id: String,
    /// The activity as the websocket delivered it.
    pub activity: Activity,
}

/// The websocket listener of one bot. See the module documentation.
#[derive(Debug)]
pub struct Listener {
    client: WebexClient,
    config: ListenerConfig,
}

/// How one attempt (identity → device → socket → session) ended.
enum Cycle {
    /// The caller asked to stop, or stopped listening.
    Shutdown,
    /// Try again after the backoff (and at least `at_least`).
    Retry {
        reason: String,
        at_least: Duration,
        /// Authorised for [`ListenerSettings::stable_after`] or longer: the backoff starts over.
        stable: bool,
    },
    /// The device registration is stale: delete it and register anew.
    Stale { reason: String },
    /// Stop with this error.
    Fatal(WebexError),
}

impl Cycle {
    fn retry(reason: impl Into<String>) -> Cycle {
        Cycle::Retry {
            reason: reason.into(),
            at_least: Duration::ZERO,
            stable: false,
        }
    }

    /// A REST failure: some are final, the others are worth another attempt.
    fn from_error(context: &str, err: WebexError) -> Cycle {
        let fatal = matches!(
            err,
            WebexError::Unauthorized { .. }
                | WebexError::Setup(_)
                | WebexError::Invalid(_)
                | WebexError::Untrusted { .. }
                | WebexError::WebsocketAuthRejected { .. }
                | WebexError::DeviceStale { .. }
        ) || err.status() == Some(403);
        if fatal {
            Cycle::Fatal(err)
        } else {
            Cycle::retry(format!("{context}: {err}"))
        }
    }
}

/// What the listener keeps across attempts.
struct State {
    devices: Option<DeviceService>,
    device: Option<Device>,
    /// Register a new device instead of reusing one by name (the old one went stale).
    fresh_registration: bool,
    own: Option<OwnPosts>,
    tls: Option<Tls>,
    /// Failed attempts in a row.
    failures: u32,
    /// New registrations in a row because the device went stale.
    reregistrations: u32,
}

/// Tells the bot's own posts.
struct OwnPosts {
    uuids: Vec<String>,
    emails: Vec<String>,
}

impl OwnPosts {
    fn new(identity: &BotIdentity) -> OwnPosts {
        let mut uuids = Vec::new();
        if let Some(id) = identity.person_id.as_deref().map(str::trim) {
            if !id.is_empty() {
                uuids.push(id.to_owned());
                uuids.extend(uuid_of_rest_id(id));
            }
        }
        OwnPosts {
            uuids,
            emails: identity
                .emails
                .iter()
                .map(|e| e.trim().to_owned())
                .filter(|e| !e.is_empty())
                .collect(),
        }
    }

    fn is_own(&self, activity: &Activity) -> bool {
        let by_id = activity
            .actor
            .id
            .as_deref()
            .is_some_and(|id| self.uuids.iter().any(|own| own.eq_ignore_ascii_case(id)));
        let by_email = activity.actor.email.as_deref().is_some_and(|email| {
            self.emails
                .iter()
                .any(|own| own.eq_ignore_ascii_case(email))
        });
        by_id || by_email
    }
}

type Lookup<'a> = Pin<Box<dyn Future<Output = (Post, Option<String>)> + Send + 'a>>;

impl Listener {
    /// A listener for the bot `client` acts as.
    pub fn new(client: WebexClient, config: ListenerConfig) -> Listener {
        Listener { client, config }
    }

    /// Runs until `shutdown` is cancelled (then closes the socket, deletes the device and returns
    /// `Ok`), the receiver of `events` is dropped (the same), or a failure retrying cannot fix
    /// (sends [`ListenerEvent::GaveUp`] and returns the error): the token was rejected, the device
    /// kept going stale, a URL pointed off Webex. Everything else is retried with backoff.
    ///
    /// `events` should be bounded: while it is full, the listener keeps the connection alive and
    /// stops reading once [`ListenerSettings::queue`] posts wait.
    pub async fn run(
        self,
        events: mpsc::Sender<ListenerEvent>,
        shutdown: CancellationToken,
    ) -> Result<(), WebexError> {
        let checked = self.config.settings.check().and_then(|()| {
            if self.config.device_name.trim().is_empty() {
                Err(WebexError::Setup("the device name is empty".into()))
            } else {
                Ok(())
            }
        });
        if let Err(err) = checked {
            return self.give_up(&events, err).await;
        }
        let tracking_id = format!("whereis_{}", uuid::Uuid::new_v4());
        tracing::info!(
            tracking_id = tracking_id.as_str(),
            device = self.config.device_name.as_str(),
            "starting the webex websocket listener"
        );
        let mut state = State {
            devices: None,
            device: None,
            fresh_registration: false,
            own: None,
            tls: self.config.tls.clone().map(Tls::new),
            failures: 0,
            reregistrations: 0,
        };
        let settings = &self.config.settings;
        loop {
            let cycle = if shutdown.is_cancelled() {
                Cycle::Shutdown
            } else {
                self.attempt(&mut state, &tracking_id, &events, &shutdown)
                    .await
            };
            let (reason, at_least) = match cycle {
                Cycle::Shutdown => break,
                Cycle::Fatal(err) => return self.give_up(&events, err).await,
                Cycle::Retry {
                    reason,
                    at_least,
                    stable,
                } => {
                    if stable {
                        state.failures = 0;
                    }
                    (reason, at_least)
                }
                Cycle::Stale { reason } => {
                    tracing::warn!(
                        reason = reason.as_str(),
                        "the webex device registration is stale"
                    );
                    // A stale device is of no use: delete it (if it is still listed) either way.
                    if let (Some(devices), Some(stale)) = (&state.devices, state.device.take()) {
                        let deleting = devices.delete(&stale);
                        match tokio::time::timeout(settings.delete_timeout, deleting).await {
                            Ok(Ok(())) => {}
                            Ok(Err(err)) => {
                                tracing::warn!(error = %err, "cannot delete the stale webex device")
                            }
                            Err(_) => tracing::warn!("deleting the stale webex device timed out"),
                        }
                    }
                    state.reregistrations += 1;
                    if state.reregistrations > settings.max_reregistrations {
                        let err = WebexError::DeviceStale {
                            attempts: settings.max_reregistrations,
                        };
                        return self.give_up(&events, err).await;
                    }
                    state.fresh_registration = true;
                    (reason, Duration::ZERO)
                }
            };
            state.failures = state.failures.saturating_add(1);
            let retry_in = backoff(settings, state.failures).max(at_least);
            tracing::warn!(
                reason = reason.as_str(),
                retry_in_ms = millis(retry_in),
                "webex websocket down; retrying"
            );
            let told = tokio::select! {
                biased;
                () = shutdown.cancelled() => false,
                sent = events.send(ListenerEvent::Disconnected { reason, retry_in }) => sent.is_ok(),
            };
            if !told {
                break;
            }
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(retry_in) => {}
            }
        }
        self.clean_up(&mut state).await;
        Ok(())
    }

    async fn give_up(
        &self,
        events: &mpsc::Sender<ListenerEvent>,
        err: WebexError,
    ) -> Result<(), WebexError> {
        tracing::error!(error = %err, "the webex websocket listener gives up");
        // The caller may be gone or not reading; the error is returned all the same.
        let _ = events.try_send(ListenerEvent::GaveUp(err.clone()));
        Err(err)
    }

    /// On shutdown: delete the device this listener used, so registrations do not pile up.
    async fn clean_up(&self, state: &mut State) {
        let (Some(devices), Some(device)) = (&state.devices, state.device.take()) else {
            return;
        };
        let timeout = self.config.settings.delete_timeout;
        match tokio::time::timeout(timeout, devices.delete(&device)).await {
            Ok(Ok(())) => tracing::info!("deleted the webex device"),
            Ok(Err(err)) => tracing::warn!(error = %err, "cannot delete the webex device"),
            Err(_) => tracing::warn!("deleting the webex device timed out"),
        }
    }

    /// One attempt: what is missing of identity, device service and device, then one connection.
    async fn attempt(
        &self,
        state: &mut State,
        tracking_id: &str,
        events: &mpsc::Sender<ListenerEvent>,
        shutdown: &CancellationToken,
    ) -> Cycle {
        // REST calls may wait out long rate limits: the caller's shutdown cuts them short. The
        // session watches the shutdown itself, to close the socket properly.
        let prepared = tokio::select! {
            biased;
            () = shutdown.cancelled() => return Cycle::Shutdown,
            prepared = self.prepare(state, tracking_id) => prepared,
        };
        let (socket, ws_url, devices, device_url) = match prepared {
            Ok(prepared) => prepared,
            Err(cycle) => return cycle,
        };
        let Some(own) = state.own.as_ref() else {
            return Cycle::retry("the bot's identity is not known");
        };
        let trusted = [devices, ws_url];
        let session = Session {
            client: &self.client,
            settings: &self.config.settings,
            own,
            trusted: &trusted,
            events,
            shutdown,
            device_url: &device_url,
        };
        session.run(socket, &mut state.reregistrations).await
    }

    /// Identity, device service and device (each only when not known yet), then the websocket.
    /// Returns the socket, its URL, the device service's URL and the device's URL.
    async fn prepare(
        &self,
        state: &mut State,
        tracking_id: &str,
    ) -> Result<(Socket, Url, Url, String), Cycle> {
        if state.own.is_none() {
            let identity = match &self.config.bot {
                Some(identity) => identity.clone(),
                None => {
                    let me = self
                        .client
                        .me()
                        .await
                        .map_err(|err| Cycle::from_error("GET /people/me", err))?;
                    BotIdentity {
                        person_id: Some(me.id),
                        emails: me.emails,
                    }
                }
            };
            state.own = Some(OwnPosts::new(&identity));
        }
        let devices = match &state.devices {
            Some(devices) => devices.clone(),
            None => {
                let found = match &self.config.device_service {
                    Some(url) => DeviceService::new(self.client.clone(), url),
                    None => {
                        match DeviceService::discover(self.client.clone(), &self.config.u2c_base)
                            .await
                        {
                            // A rejected token is not the catalog's fault.
                            Err(err @ WebexError::Unauthorized { .. }) => Err(err),
                            Err(err) => {
                                tracing::warn!(
                                    error = %err,
                                    fallback = self.config.fallback_device_service.as_str(),
                                    "the U2C catalog did not name the device service; using the default"
                                );
                                DeviceService::new(
                                    self.client.clone(),
                                    &self.config.fallback_device_service,
                                )
                            }
                            found => found,
                        }
                    }
                };
                let devices =
                    found.map_err(|err| Cycle::from_error("finding the device service", err))?;
                state.devices = Some(devices.clone());
                devices
            }
        };
        let device = match &state.device {
            Some(device) => device.clone(),
            None => {
                let new = NewDevice::named(&self.config.device_name);
                let registered = if state.fresh_registration {
                    devices.register(&new).await
                } else {
                    devices.find_or_register(&new).await
                };
                let device =
                    registered.map_err(|err| Cycle::from_error("registering the device", err))?;
                state.device = Some(device.clone());
                state.fresh_registration = false;
                device
            }
        };
        let ws_url = websocket_url(&device, &devices, &self.client).map_err(Cycle::Fatal)?;
        if ws_url.scheme() == "wss" && state.tls.is_none() {
            let tls = tokio::task::spawn_blocking(Tls::native_roots)
                .await
                .map_err(|err| Cycle::retry(format!("loading trust roots: {err}")))?
                .map_err(Cycle::Fatal)?;
            state.tls = Some(tls);
        }
        let handshake = Handshake {
            token: self.client.token(),
            tracking_id,
            retry: self.client.retry_policy(),
        };
        let opened = open(
            &ws_url,
            self.config.dialer.as_ref(),
            state.tls.as_ref(),
            handshake,
            self.config.settings.connect_timeout,
        )
        .await;
        let socket = match opened {
            Ok(socket) => socket,
            Err(OpenError::Status { status: 404, .. }) => {
                return Err(Cycle::Stale {
                    reason: "websocket handshake answered 404".into(),
                })
            }
            Err(OpenError::Status { status: 401, .. }) => {
                return Err(Cycle::Fatal(WebexError::WebsocketAuthRejected {
                    reason: "handshake answered 401".into(),
                }))
            }
            Err(OpenError::Status {
                status,
                retry_after,
            }) => {
                return Err(Cycle::Retry {
                    reason: format!("websocket handshake answered {status}"),
                    at_least: retry_after.unwrap_or_default(),
                    stable: false,
                })
            }
            Err(OpenError::Failed(err)) => return Err(Cycle::retry(err.to_string())),
        };
        Ok((socket, ws_url, devices.base_url().clone(), device.url))
    }
}

/// The device's websocket URL, when the token may go there.
fn websocket_url(
    device: &Device,
    devices: &DeviceService,
    client: &WebexClient,
) -> Result<Url, WebexError> {
    let text = device
        .web_socket_url
        .as_deref()
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .ok_or_else(|| WebexError::Decode("the device has no webSocketUrl".into()))?;
    let url = Url::parse(text)
        .map_err(|err| WebexError::Decode(format!("the device's webSocketUrl: {err}")))?;
    if !matches!(url.scheme(), "ws" | "wss") {
        return Err(WebexError::Decode(format!(
            "the device's webSocketUrl is a {}:// URL",
            url.scheme()
        )));
    }
    check_trusted(&url, &[devices.base_url(), client.base_url()])?;
    Ok(url)
}

/// The wait before attempt number `failures + 1`: random between zero and
/// `min(cap, base × 2^(failures-1))`.
fn backoff(settings: &ListenerSettings, failures: u32) -> Duration {
    let exponent = failures.saturating_sub(1).min(31);
    let ceiling = settings
        .backoff_base
        .saturating_mul(1u32 << exponent)
        .min(settings.backoff_cap);
    let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(fastrand::u64(0..=nanos))
}

/// One authorised connection.
struct Session<'a> {
    client: &'a WebexClient,
    settings: &'a ListenerSettings,
    own: &'a OwnPosts,
    trusted: &'a [Url],
    events: &'a mpsc::Sender<ListenerEvent>,
    shutdown: &'a CancellationToken,
    device_url: &'a str,
}

/// What one frame means for the session.
enum Seen {
    /// Nothing to do (a ping, a pong, an ignored event).
    Nothing,
    /// A post to hand over, with the envelope id to ack.
    Post(Box<Activity>, Option<String>),
    /// The connection ends.
    End(Cycle),
}

impl Session<'_> {
    async fn run(self, mut socket: Socket, reregistrations: &mut u32) -> Cycle {
        let settings = self.settings;
        let auth = serde_json::json!({
            "id": uuid::Uuid::new_v4().to_string(),
            "type": "authorization",
            "data": {"token": format!("Bearer {}", self.client.token().expose())},
        });
        if let Err(cycle) = self.send(&mut socket, Frame::text(auth.to_string())).await {
            return cycle;
        }
        // The first frame after the authorization frame means "authorised".
        let first = match tokio::time::timeout(settings.auth_timeout, socket.next()).await {
            Err(_) => return Cycle::retry("no answer to the websocket authorization"),
            Ok(frame) => frame,
        };
        let first = match self.classify(first) {
            Seen::End(cycle) => return cycle,
            seen => seen,
        };
        tracing::info!("webex websocket authorised");
        *reregistrations = 0;
        let connected_at = Instant::now();
        let mut ready: VecDeque<(ListenerEvent, Option<String>)> = VecDeque::new();
        ready.push_back((
            ListenerEvent::Connected {
                device_url: self.device_url.to_owned(),
            },
            None,
        ));
        let mut lookups: FuturesOrdered<Lookup<'_>> = FuturesOrdered::new();
        if let Seen::Post(activity, ack) = first {
            lookups.push_back(self.lookup(activity, ack));
        }
        let mut pings = tokio::time::interval_at(
            Instant::now() + settings.ping_interval,
            settings.ping_interval,
        );
        pings.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last_seen = Instant::now();
        let mut paused = false;
        let end = |cycle: Cycle| match cycle {
            Cycle::Retry {
                reason, at_least, ..
            } => Cycle::Retry {
                reason,
                at_least,
                stable: connected_at.elapsed() >= settings.stable_after,
            },
            other => other,
        };
        loop {
            let waiting = ready.len() + lookups.len();
            let reading = waiting < settings.queue.max(1) && lookups.len() < MAX_LOOKUPS;
            if reading && paused {
                // Frames were not read while the caller was slow: that silence was ours.
                last_seen = Instant::now();
            }
            paused = !reading;
            tokio::select! {
                biased;
                () = self.shutdown.cancelled() => {
                    self.close(&mut socket).await;
                    return Cycle::Shutdown;
                }
                permit = self.events.reserve(), if !ready.is_empty() => {
                    let Ok(permit) = permit else {
                        self.close(&mut socket).await;
                        return Cycle::Shutdown;
                    };
                    let Some((event, ack)) = ready.pop_front() else { continue };
                    permit.send(event);
                    if let Some(id) = ack {
                        let ack = serde_json::json!({"type": "ack", "messageId": id});
                        if let Err(cycle) = self.send(&mut socket, Frame::text(ack.to_string())).await {
                            return end(cycle);
                        }
                    }
                }
                Some((post, ack)) = lookups.next(), if !lookups.is_empty() => {
                    ready.push_back((ListenerEvent::Post(Box::new(post)), ack));
                }
                frame = socket.next(), if reading => {
                    last_seen = Instant::now();
                    match self.classify(frame) {
                        Seen::Nothing => {}
                        Seen::Post(activity, ack) => lookups.push_back(self.lookup(activity, ack)),
                        Seen::End(cycle) => return end(cycle),
                    }
                }
                _ = pings.tick() => {
                    if let Err(cycle) = self.send(&mut socket, Frame::Ping(Default::default())).await {
                        return end(cycle);
                    }
                }
                () = tokio::time::sleep_until(last_seen + settings.silence_timeout), if reading => {
                    return end(Cycle::retry(format!(
                        "no frame from webex for {} ms",
                        millis(settings.silence_timeout)
                    )));
                }
            }
        }
    }

    /// Resolves a post's REST message id.
    fn lookup<'s>(&'s self, activity: Box<Activity>, ack: Option<String>) -> Lookup<'s> {
        Box::pin(async move {
            let activity = *activity;
            let message_id = resolve_message_id(self.client, &activity, self.trusted).await;
            (
                Post {
                    message_id,
                    activity,
                },
                ack,
            )
        })
    }

    /// Sends one frame within the silence timeout.
    async fn send(&self, socket: &mut Socket, frame: Frame) -> Result<(), Cycle> {
        match tokio::time::timeout(self.settings.silence_timeout, socket.send(frame)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(Cycle::retry(format!("websocket send: {err}"))),
            Err(_) => Err(Cycle::retry("websocket send timed out")),
        }
    }

    /// Closes with a close frame and waits (bounded) for the service's.
    async fn close(&self, socket: &mut Socket) {
        let frame = CloseFrame {
            code: CloseCode::Normal,
            reason: "shutting down".into(),
        };
        let closing = async {
            let _ = socket.close(Some(frame)).await;
            while let Some(Ok(_)) = socket.next().await {}
        };
        if tokio::time::timeout(self.settings.close_timeout, closing)
            .await
            .is_err()
        {
            tracing::debug!("the webex websocket did not close in time");
        }
    }

    fn classify(
        &self,
        frame: Option<Result<Frame, tokio_tungstenite::tungstenite::Error>>,
    ) -> Seen {
        let frame = match frame {
            None => return Seen::End(Cycle::retry("webex closed the websocket")),
            Some(Err(err)) => return Seen::End(Cycle::retry(format!("websocket: {err}"))),
            Some(Ok(frame)) => frame,
        };
        let payload: &[u8] = match &frame {
            Frame::Text(text) => text.as_bytes(),
            Frame::Binary(bytes) => bytes,
            Frame::Close(close) => return Seen::End(self.closed(close.as_ref())),
            Frame::Ping(_) | Frame::Pong(_) | Frame::Frame(_) => return Seen::Nothing,
        };
        let envelope = match parse_envelope(payload) {
            Ok(envelope) => envelope,
            Err(err) => {
                tracing::warn!(bytes = payload.len(), error = %err, "skipping a malformed websocket frame");
                return Seen::Nothing;
            }
        };
        let Some(post) = envelope.post() else {
            tracing::trace!(
                event = envelope.event_type.as_deref().unwrap_or("-"),
                "ignoring a websocket event"
            );
            return Seen::Nothing;
        };
        if self.own.is_own(post) {
            tracing::trace!("ignoring the bot's own post");
            return Seen::Nothing;
        }
        Seen::Post(Box::new(post.clone()), envelope.id)
    }

    fn closed(&self, frame: Option<&CloseFrame>) -> Cycle {
        let Some(frame) = frame else {
            return Cycle::retry("webex closed the websocket");
        };
        let code = u16::from(frame.code);
        let reason = shorten(frame.reason.as_str(), self.client.token().expose());
        match code {
            CLOSE_AUTH_REJECTED => Cycle::Fatal(WebexError::WebsocketAuthRejected { reason }),
            CLOSE_REGISTRATION_EXPIRED => Cycle::Stale {
                reason: format!("websocket closed with 4404 {reason}"),
            },
            _ => Cycle::retry(format!("webex closed the websocket ({code} {reason})")),
        }
    }
}

/// A close reason fit for a log line: at most [`MAX_REASON`] bytes, never the token.
fn shorten(reason: &str, token: &str) -> String {
    let mut text = if token.is_empty() {
        reason.to_owned()
    } else {
        reason.replace(token, "<redacted>")
    };
    text.retain(|c| !c.is_control());
    if text.len() > MAX_REASON {
        let mut cut = MAX_REASON;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activity::{Actor, Target};

    fn activity(id: Option<&str>, email: Option<&str>) -> Activity {
        Activity {
            id: "m".into(),
            verb: "post".into(),
            actor: Actor {
                id: id.map(Into::into),
                email: email.map(Into::into),
                ..Actor::default()
            },
            target: Target::default(),
            mentions: Vec::new(),
            published: None,
        }
    }

    #[test]
    fn own_posts_by_uuid_or_email() {
        use base64::Engine;
        let person = base64::engine::general_purpose::STANDARD.encode("ciscospark://us/PEOPLE/b0t");
        let own = OwnPosts::new(&BotIdentity {
            person_id: Some(person),
            emails: vec!["Bot@Webex.bot".into()],
        });
        assert!(own.is_own(&activity(Some("b0t"), None)));
        assert!(own.is_own(&activity(Some("B0T"), None)));
        assert!(own.is_own(&activity(None, Some("bot@webex.bot"))));
        assert!(!own.is_own(&activity(Some("jane"), Some("jane@example.com"))));
        assert!(!own.is_own(&activity(None, None)));
        let nobody = OwnPosts::new(&BotIdentity::default());
        assert!(!nobody.is_own(&activity(Some(""), Some(""))));
    }

    #[test]
    fn backoff_is_capped_full_jitter() {
        let settings = ListenerSettings {
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(60),
            ..ListenerSettings::default()
        };
        for _ in 0..100 {
            assert!(backoff(&settings, 1) <= Duration::from_secs(1));
            assert!(backoff(&settings, 3) <= Duration::from_secs(4));
            assert!(backoff(&settings, 40) <= Duration::from_secs(60));
        }
        let spread: std::collections::HashSet<_> =
            (0..100).map(|_| backoff(&settings, 6)).collect();
        assert!(spread.len() > 10);
    }

    #[test]
    fn settings_are_checked() {
        assert!(ListenerSettings::default().check().is_ok());
        for broken in [
            ListenerSettings {
                ping_interval: Duration::ZERO,
                ..ListenerSettings::default()
            },
            ListenerSettings {
                silence_timeout: Duration::MAX,
                ..ListenerSettings::default()
            },
            ListenerSettings {
                backoff_base: Duration::from_secs(120),
                ..ListenerSettings::default()
            },
        ] {
            assert!(
                matches!(broken.check(), Err(WebexError::Setup(_))),
                "{broken:?}"
            );
        }
    }

    #[test]
    fn close_reasons_are_short_and_clean() {
        assert_eq!(shorten("bad token TOK", "TOK"), "bad token <redacted>");
        assert_eq!(shorten("a\nb", "x"), "ab");
        assert_eq!(shorten(&"é".repeat(300), "x").len(), 200);
    }
}
