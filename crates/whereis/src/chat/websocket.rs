//! Websocket mode: whereis connects *out* to Webex (no public URL, no inbound firewall hole) and
//! hands every message the websocket delivers to the same [`Bot`] a webhook would.
//!
//! - One instance holds the websocket: the store's leadership (a PostgreSQL advisory lock; the one
//!   instance on SQLite). A standby polls and takes over within [`LEADERSHIP_POLL`] (plus the
//!   database noticing the holder is gone); the leader checks every [`LEADERSHIP_CHECK`] that it
//!   still holds the lock and steps down when it does not.
//! - The connection's life (device reuse by name, authorisation, pings, reconnects with backoff,
//!   re-registration, `Retry-After`, deleting the device on shutdown) is
//!   [`whereis_webex::Listener`]'s.
//! - Each delivered message is claimed like a webhook delivery ([`Bot::claim_when_free`]): one
//!   answer per message id, whether it came by webhook, websocket or catch-up, on any instance.
//! - After every (re)connect, [`catch_up`] answers what was said while the bot was away: messages
//!   newer than the last one handled (a stored position), newest rooms first. Questions older than
//!   `[webex] max_backlog_minutes` get "sorry, I was offline" ([`Bot::handle`]).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use whereis_net::Network;
use whereis_webex::{
    DialFuture, Dialer, Listener, ListenerConfig, ListenerEvent, Person, Room, WebexClient,
    WebexError,
};

use super::{Bot, Claim};
use crate::config::WebexConfig;

/// The store's name of the singleton "holds the Webex websocket".
pub const LEADERSHIP: &str = "webex-websocket";
/// The store's position: `created` (Unix ms) of the newest message handled.
pub const LAST_HANDLED: &str = "webex-last-handled-ms";
/// How often a standby instance tries to take the websocket over.
pub const LEADERSHIP_POLL: Duration = Duration::from_secs(5);
/// How often the holder checks that it still holds it.
pub const LEADERSHIP_CHECK: Duration = Duration::from_secs(5);
/// The device name this bot registers (and finds again after a restart).
pub const DEVICE_NAME: &str = "whereis-bot";
/// The device name `check-config` registers for its probe (never the one a running bot uses).
pub const PROBE_DEVICE_NAME: &str = "whereis-bot-check";
/// Catch-up looks at most this many recently active rooms …
const CATCH_UP_ROOMS: usize = 100;
/// … at most this many messages in each …
const CATCH_UP_MESSAGES: u32 = 50;
/// … and never further back than this: older questions are left alone.
const CATCH_UP_HORIZON_MS: i64 = 24 * 3600 * 1000;
/// Websocket events waiting for the bot.
const EVENT_QUEUE: usize = 64;

/// Where the websocket stands, for operators (and, later, readiness).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebsocketState {
    /// Waiting for the store's leadership: another instance holds the websocket.
    Standby,
    /// Connecting (or reconnecting after `reason`).
    Connecting {
        /// Why the last connection ended, if one did.
        reason: Option<String>,
    },
    /// Authorised: messages flow.
    Connected,
    /// Stopped for good: the token was rejected, the device kept going stale, …
    Failed(String),
    /// Shut down cleanly.
    Stopped,
}

impl WebsocketState {
    /// A short name (`standby`, `connecting`, `connected`, `failed`, `stopped`) and why, if known.
    pub fn describe(&self) -> (&'static str, Option<String>) {
        match self {
            WebsocketState::Standby => ("standby", None),
            WebsocketState::Connecting { reason } => ("connecting", reason.clone()),
            WebsocketState::Connected => ("connected", None),
            WebsocketState::Failed(reason) => ("failed", Some(reason.clone())),
            WebsocketState::Stopped => ("stopped", None),
        }
    }
}

/// Mirrors the websocket's state into readiness and `/metrics` until the websocket task ends.
pub fn report_state(
    mut state: watch::Receiver<WebsocketState>,
    health: Arc<crate::health::Health>,
) {
    tokio::spawn(async move {
        let mut connects = 0u64;
        loop {
            let now = state.borrow_and_update().clone();
            let (name, detail) = now.describe();
            health.set_stream(STREAM_NAME, name, detail);
            let connected = now == WebsocketState::Connected;
            metrics::gauge!(crate::metrics::WEBSOCKET_CONNECTED).set(if connected {
                1.0
            } else {
                0.0
            });
            if connected {
                connects += 1;
                if connects > 1 {
                    metrics::counter!(crate::metrics::WEBSOCKET_RECONNECTS).increment(1);
                }
            }
            if state.changed().await.is_err() {
                return;
            }
        }
    });
}

/// The websocket's name in `/readyz`.
pub const STREAM_NAME: &str = "webex-websocket";

/// Opens the websocket's TCP stream through whereis's [`Network`]: direct, or a `CONNECT` tunnel
/// through the proxy. Websockets follow the HTTPS proxy (`wss://`).
pub struct NetworkDialer {
    network: Network,
    timeout: Duration,
}

impl NetworkDialer {
    /// Dials through `network`, each connection (and tunnel) within `timeout`.
    pub fn new(network: Network, timeout: Duration) -> NetworkDialer {
        NetworkDialer { network, timeout }
    }
}

impl Dialer for NetworkDialer {
    fn dial<'a>(&'a self, host: &'a str, port: u16) -> DialFuture<'a> {
        Box::pin(async move {
            let authority = if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            };
            let url = url::Url::parse(&format!("wss://{authority}/"))
                .map_err(|err| std::io::Error::other(format!("{authority}: {err}")))?;
            self.network
                .dial(&url, self.timeout)
                .await
                .map_err(std::io::Error::other)
        })
    }
}

/// The listener's configuration: the device name, the device service (`[webex] device_url`, else
/// the U2C catalog), the bot's identity (`None`: asked with `people/me`), and the dialer.
pub fn listener_config(
    webex: &WebexConfig,
    me: Option<&Person>,
    network: &Network,
    device_name: &str,
) -> ListenerConfig {
    let mut config = ListenerConfig::new(device_name);
    config.device_service = webex.device_url.clone();
    config.bot = me.map(|me| whereis_webex::BotIdentity {
        person_id: Some(me.id.clone()),
        emails: me.emails.clone(),
    });
    config.dialer = Arc::new(NetworkDialer::new(
        network.clone(),
        config.settings.connect_timeout,
    ));
    config
}

/// Starts websocket mode in the background (see [`run`]); its state can be watched.
pub fn spawn(
    bot: Arc<Bot>,
    network: Network,
    shutdown: CancellationToken,
) -> (
    tokio::task::JoinHandle<Result<(), WebexError>>,
    watch::Receiver<WebsocketState>,
) {
    let (state, watching) = watch::channel(WebsocketState::Standby);
    (tokio::spawn(run(bot, network, shutdown, state)), watching)
}

/// How long a shutdown waits for the websocket to close and its device to be deleted.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

/// Runs websocket mode until `shutdown`: waits for the leadership, listens, catches up after every
/// connect, steps down when the leadership is lost. Returns the listener's error when it gives up.
pub async fn run(
    bot: Arc<Bot>,
    network: Network,
    shutdown: CancellationToken,
    state: watch::Sender<WebsocketState>,
) -> Result<(), WebexError> {
    let store = bot.finder().privacy().store().clone();
    loop {
        state.send_replace(WebsocketState::Standby);
        let mut leadership = tokio::select! {
            () = shutdown.cancelled() => break,
            lead = store.lead(LEADERSHIP, LEADERSHIP_POLL) => lead,
        };
        tracing::info!("this instance holds the Webex websocket");
        state.send_replace(WebsocketState::Connecting { reason: None });
        let stop = shutdown.child_token();
        let (events, mut received) = mpsc::channel(EVENT_QUEUE);
        let listener = Listener::new(
            bot.client().clone(),
            listener_config(bot.settings(), Some(bot.me()), &network, DEVICE_NAME),
        );
        let mut listening = tokio::spawn(listener.run(events, stop.clone()));
        let mut check = tokio::time::interval(LEADERSHIP_CHECK);
        check.tick().await;
        let mut lost = false;
        let outcome = loop {
            tokio::select! {
                event = received.recv() => match event {
                    Some(event) => on_event(&bot, event, &state).await,
                    // The listener ended (shut down, stepped down, or gave up).
                    None => break (&mut listening).await,
                },
                _ = check.tick(), if !lost => {
                    if !leadership.still_held().await {
                        tracing::warn!("lost the Webex websocket leadership; stepping down");
                        lost = true;
                        stop.cancel();
                    }
                }
            }
        };
        leadership.release().await;
        match outcome {
            Ok(Ok(())) if shutdown.is_cancelled() => break,
            Ok(Ok(())) => continue,
            Ok(Err(err)) => {
                state.send_replace(WebsocketState::Failed(err.to_string()));
                return Err(err);
            }
            Err(join) => {
                let err = WebexError::Websocket(format!("the listener stopped: {join}"));
                state.send_replace(WebsocketState::Failed(err.to_string()));
                return Err(err);
            }
        }
    }
    state.send_replace(WebsocketState::Stopped);
    Ok(())
}

async fn on_event(bot: &Arc<Bot>, event: ListenerEvent, state: &watch::Sender<WebsocketState>) {
    match event {
        ListenerEvent::Connected { .. } => {
            tracing::info!("Webex websocket connected");
            state.send_replace(WebsocketState::Connected);
            let bot = Arc::clone(bot);
            bot.clone().track(async move {
                if let Err(err) = catch_up(&bot).await {
                    tracing::warn!(error = %err, "catching up on messages failed");
                }
            });
        }
        ListenerEvent::Disconnected { reason, retry_in } => {
            tracing::warn!(%reason, retry_in_ms = retry_in.as_millis(), "Webex websocket down");
            state.send_replace(WebsocketState::Connecting {
                reason: Some(reason),
            });
        }
        ListenerEvent::Post(post) => {
            let email = post.activity.actor.email.clone();
            match bot.claim_when_free(&post.message_id, email).await {
                Claim::New(job) => bot.spawn(job),
                Claim::Duplicate => {
                    tracing::debug!(message = %post.message_id, "already handled")
                }
                Claim::Busy => {}
            }
        }
        ListenerEvent::GaveUp(err) => {
            tracing::error!(error = %err, "the Webex websocket gave up");
        }
    }
}

/// Answers what was said to the bot while it was away: messages created at or after the last one
/// handled (at most a day back), in rooms active since, oldest first. Nothing is
/// answered twice: every message is claimed like a delivery.
pub async fn catch_up(bot: &Arc<Bot>) -> Result<usize, WebexError> {
    let store = bot.finder().privacy().store();
    let now = crate::privacy::now_ms();
    let since = match store.position(LAST_HANDLED).await {
        Ok(Some(since)) => since.max(now - CATCH_UP_HORIZON_MS),
        Ok(None) => {
            // The first start ever: nothing was missed.
            if let Err(err) = store.advance_position(LAST_HANDLED, now).await {
                tracing::warn!(error = %err, "cannot record the catch-up position");
            }
            return Ok(0);
        }
        Err(err) => {
            return Err(WebexError::Invalid(format!(
                "the catch-up position is unavailable: {err}"
            )))
        }
    };
    let active = |room: &Room| {
        room.last_activity
            .is_none_or(|at| at.timestamp_millis() >= since)
    };
    let rooms: Vec<Room> = bot
        .client()
        .rooms(CATCH_UP_ROOMS)
        .await?
        .into_iter()
        .take_while(|room| active(room))
        .collect();
    let mut missed = Vec::new();
    for room in &rooms {
        let messages = match bot.client().recent_messages(room, CATCH_UP_MESSAGES).await {
            Ok(messages) => messages,
            Err(err) => {
                tracing::warn!(room = %room.id, error = %err, "cannot list a room's messages");
                continue;
            }
        };
        missed.extend(messages.into_iter().filter(|message| {
            message
                .created_at()
                .is_some_and(|at| at.timestamp_millis() >= since)
                && !bot.is_own(
                    message.person_id.as_deref(),
                    message.person_email.as_deref(),
                )
        }));
    }
    missed.sort_by_key(|message| message.created_at());
    let mut answered = 0;
    for message in missed {
        if let Claim::New(job) = bot
            .claim_when_free(&message.id, message.person_email.clone())
            .await
        {
            answered += 1;
            bot.spawn(job);
        }
    }
    if answered > 0 {
        tracing::info!(answered, "caught up on messages sent while away");
    }
    Ok(answered)
}

/// `check-config`'s probe of websocket mode: registers (or reuses) the probe device, connects and
/// authorises, then closes and deletes it. The running bot's own device is never touched.
pub async fn probe(
    client: &WebexClient,
    webex: &WebexConfig,
    network: &Network,
    limit: Duration,
) -> Result<String, String> {
    let mut config = listener_config(webex, None, network, PROBE_DEVICE_NAME);
    // One try: a probe reports, it does not wait out backoffs.
    config.settings.max_reregistrations = 0;
    let stop = CancellationToken::new();
    let (events, mut received) = mpsc::channel(EVENT_QUEUE);
    let listening = tokio::spawn(Listener::new(client.clone(), config).run(events, stop.clone()));
    let verdict = tokio::time::timeout(limit, async {
        while let Some(event) = received.recv().await {
            match event {
                ListenerEvent::Connected { .. } => {
                    return Ok("websocket, connected and authorised".to_owned())
                }
                ListenerEvent::Disconnected { reason, .. } => return Err(reason),
                ListenerEvent::GaveUp(err) => return Err(err.to_string()),
                ListenerEvent::Post(_) => {}
            }
        }
        Err("the websocket listener stopped".to_owned())
    })
    .await
    .unwrap_or_else(|_| Err(format!("not authorised within {} s", limit.as_secs())));
    stop.cancel();
    drop(received);
    let _ = listening.await;
    verdict
}
