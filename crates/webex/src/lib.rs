//! whereis-webex: the Webex side of whereis — a REST client for the few calls the bot makes, the
//! websocket ("Mercury") listener that receives messages without a public URL, the webhook
//! signature check, and the JSON shapes of messages, rooms, people, webhooks, devices and
//! websocket activities.
//!
//! - [`client`]: [`WebexClient`] (`GET /people/me`, `GET /people`, `GET /messages/{id}`,
//!   `POST /messages` as JSON or multipart with one file, `GET`/`POST`/`PUT /webhooks`, and for
//!   catching up: `GET /rooms?sortBy=lastactivity` and `GET /messages?roomId=`). Every request
//!   carries the bearer [`Token`], has a timeout and a cap on the answer's size, and is retried under
//!   a [`RetryPolicy`]: 429 and 423 wait `Retry-After` (parsed defensively: Webex has sent
//!   `rand(30),add(30)`), 5xx, timeouts and connection errors back off exponentially with full
//!   jitter, other 4xx fail at once. The total wait of one call is capped.
//!   [`WebexClient::with_http`] takes a `reqwest::ClientBuilder` the caller prepared (a corporate
//!   proxy, extra trust roots); the device service and the conversation look-ups share that client.
//! - [`device`]: [`DeviceService`] — the device service (WDM) found through the U2C catalog: list,
//!   register, delete, and [`DeviceService::find_or_register`] by name, so that registrations do not
//!   pile up across restarts.
//! - [`listener`]: [`Listener`] — the websocket life cycle: find or register the device, open the
//!   websocket, send the authorization frame, hand posts by others to the caller through a bounded
//!   channel ([`ListenerEvent`]: connected, disconnected, post, gave up), `ack` them, ping and detect
//!   silence, reconnect with capped full-jitter backoff (obeying `Retry-After`), register anew when
//!   the registration goes stale (handshake 404, close 4404; at most 3 times in a row), stop on a
//!   rejected token (close 4401), and on shutdown close the socket and delete the device. Timings
//!   are in [`ListenerSettings`].
//! - [`transport`]: [`Dialer`] — how the websocket's TCP stream is opened ([`DirectDialer`], or
//!   the caller's own, e.g. an HTTP proxy's `CONNECT` tunnel); TLS (rustls, system roots unless
//!   configured) and the handshake run on top.
//! - [`activity`]: [`parse_envelope`] for websocket frames (unknown fields and events tolerated,
//!   malformed frames an error for that frame only) and [`resolve_message_id`]: from an activity to
//!   the REST message id through the conversation service, else [`fallback_message_id`].
//! - [`signature`]: [`sign`] and [`verify_signature`] for the `X-Spark-Signature` header
//!   (HMAC-SHA1 of the raw body, compared in constant time).
//! - [`types`]: wire types; unknown fields are ignored and unknown enum values do not fail a record;
//!   timestamps that do not parse read as unknown.
//! - [`text`]: the message size limit and [`truncate_message`].
//! - [`WebexError`]: typed failures that keep Webex's `trackingid`.
//!
//! Metrics (recorded through the `metrics` facade; the binary installs the exporter): calls by
//! operation and result ([`client::REQUESTS_METRIC`]) and the waits rate limits imposed
//! ([`client::RATE_LIMIT_WAITS_METRIC`], [`client::RATE_LIMIT_WAIT_SECONDS_METRIC`]).
//!
//! Invariants: nothing received from Webex is unwrapped (no input can make this crate panic); the
//! token and webhook secrets live in [`SecretString`]s and never reach a log, an error or a `Debug`
//! print; the token is sent only to the configured API, the device service, the websocket, or a
//! Webex domain over TLS — never to another host named in an answer or a frame; the `trackingid`
//! of every failed request is logged.
//!
//! ```no_run
//! use std::time::Duration;
//! use whereis_webex::{NewMessage, RetryPolicy, Token, WebexClient};
//!
//! # async fn reply(message_id: &str) -> Result<(), whereis_webex::WebexError> {
//! let client = WebexClient::new(
//!     "https://webexapis.com/v1",
//!     Token::new("bot token"),
//!     RetryPolicy::default(),
//!     Duration::from_secs(20),
//! )?;
//! let message = client.message(message_id).await?;
//! client
//!     .post_message(&NewMessage {
//!         room_id: message.room_id,
//!         parent_id: Some(message.id),
//!         markdown: Some("Looking for **jdoe** …".into()),
//!         ..NewMessage::default()
//!     })
//!     .await?;
//! # Ok(())
//! # }
//! ```
//!
//! Listening over the websocket:
//!
//! ```no_run
//! use whereis_webex::{CancellationToken, Listener, ListenerConfig, ListenerEvent, WebexClient};
//!
//! # async fn listen(client: WebexClient) -> Result<(), whereis_webex::WebexError> {
//! let (events, mut received) = tokio::sync::mpsc::channel(32);
//! let shutdown = CancellationToken::new();
//! let listener = Listener::new(client.clone(), ListenerConfig::new("whereis-bot"));
//! let running = tokio::spawn(listener.run(events, shutdown.clone()));
//! while let Some(event) = received.recv().await {
//!     match event {
//!         ListenerEvent::Connected { .. } => { /* ready; catch up with client.rooms(…) */ }
//!         ListenerEvent::Post(post) => {
//!             let message = client.message(&post.message_id).await?;
//!             # let _ = message;
//!         }
//!         ListenerEvent::Disconnected { .. } => { /* not ready until Connected again */ }
//!         ListenerEvent::GaveUp(_) => break,
//!     }
//! }
//! shutdown.cancel();
//! # let _ = running.await;
//! # Ok(())
//! # }
//! ```

pub mod activity;
pub mod client;
pub mod device;
mod error;
mod link;
pub mod listener;
mod origin;
pub mod retry;
mod secret;
pub mod signature;
pub mod text;
pub mod transport;
pub mod types;

pub use activity::{
    fallback_message_id, parse_envelope, resolve_message_id, Activity, Actor, Envelope, Target,
};
pub use client::{
    Token, WebexClient, RATE_LIMIT_WAITS_METRIC, RATE_LIMIT_WAIT_SECONDS_METRIC, REQUESTS_METRIC,
};
pub use device::{Device, DeviceService, NewDevice, DEFAULT_DEVICE_SERVICE, DEFAULT_U2C_BASE};
pub use error::WebexError;
pub use listener::{BotIdentity, Listener, ListenerConfig, ListenerEvent, ListenerSettings, Post};
pub use reqwest::Url;
pub use retry::RetryPolicy;
pub use secrecy::{ExposeSecret, SecretString};
pub use signature::{sign, verify_signature, SIGNATURE_HEADER};
pub use text::{truncate_message, MAX_MESSAGE_BYTES};
pub use tokio_util::sync::CancellationToken;
pub use transport::{DialFuture, Dialer, DirectDialer};
pub use types::{
    parse_time, Attachment, EventData, Message, NewMessage, NewWebhook, Person, Room, RoomType,
    UpdateWebhook, Webhook, WebhookEvent,
};

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Short secrets are as secret as long ones: no `Debug` output may contain either.
    #[test]
    fn debug_never_shows_a_secret() {
        for secret in ["Q7", "a-long-secret-0123456789abcdefghij"] {
            let client = WebexClient::new(
                "https://webexapis.com/v1",
                Token::new(secret),
                RetryPolicy::default(),
                Duration::from_secs(5),
            )
            .unwrap();
            let hook = Webhook {
                id: "W".into(),
                name: "whereis".into(),
                target_url: "https://bot.example/webhooks/webex".into(),
                resource: "messages".into(),
                event: "created".into(),
                filter: None,
                secret: Some(SecretString::from(secret)),
                status: None,
            };
            let new_hook = NewWebhook {
                name: "whereis".into(),
                target_url: "https://bot.example/webhooks/webex".into(),
                resource: "messages".into(),
                event: "created".into(),
                filter: None,
                secret: Some(SecretString::from(secret)),
            };
            let update = UpdateWebhook {
                name: "whereis".into(),
                target_url: "https://bot.example/webhooks/webex".into(),
                secret: Some(SecretString::from(secret)),
                status: None,
            };
            let devices = DeviceService::new(client.clone(), DEFAULT_DEVICE_SERVICE).unwrap();
            let config = ListenerConfig::new("whereis-bot");
            let listener = Listener::new(client.clone(), config.clone());
            let printed = [
                format!("{client:?}"),
                format!("{client:#?}"),
                format!("{:?}", Token::new(secret)),
                format!("{hook:?}"),
                format!("{new_hook:#?}"),
                format!("{update:?}"),
                format!("{devices:?}"),
                format!("{config:?}"),
                format!("{:?}", config.settings),
                format!("{listener:?}"),
                format!("{:?}", SecretString::from(secret)),
            ];
            for text in printed {
                assert!(!text.contains(secret), "{text}");
                assert!(!text.contains("Bearer"), "{text}");
            }
            // The JSON Webex needs still carries the secret.
            assert!(serde_json::to_string(&new_hook).unwrap().contains(secret));
            assert!(serde_json::to_string(&update).unwrap().contains(secret));
        }
    }
}
