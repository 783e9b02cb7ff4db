//! whereis-webex: the Webex side of whereis — a REST client for the few calls the bot makes, the
//! webhook signature check, and the JSON shapes of messages, people, webhooks and webhook events.
//!
//! - [`client`]: [`WebexClient`] (`GET /people/me`, `GET /people`, `GET /messages/{id}`,
//!   `POST /messages` as JSON or multipart with one file, `GET`/`POST`/`PUT /webhooks`). Every request
//!   carries the bearer [`Token`], has a timeout and a cap on the answer's size, and is retried under
//!   a [`RetryPolicy`]: 429 and 423 wait `Retry-After` (parsed defensively: Webex has sent
//!   `rand(30),add(30)`), 5xx, timeouts and connection errors back off exponentially with full
//!   jitter, other 4xx fail at once. The total wait of one call is capped.
//! - [`signature`]: [`sign`] and [`verify_signature`] for the `X-Spark-Signature` header
//!   (HMAC-SHA1 of the raw body, compared in constant time).
//! - [`types`]: wire types; unknown fields are ignored and unknown enum values do not fail a record.
//! - [`text`]: the message size limit and [`truncate_message`].
//! - [`WebexError`]: typed failures that keep Webex's `trackingid`.
//!
//! Invariants: nothing received from Webex is unwrapped (no input can make this crate panic); the
//! token never reaches a log, an error or a `Debug` print; the `trackingid` of every failed request
//! is logged.
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
pub use client::{Token, WebexClient};
pub use device::{Device, DeviceService, NewDevice, DEFAULT_DEVICE_SERVICE, DEFAULT_U2C_BASE};
pub use error::WebexError;
pub use listener::{BotIdentity, Listener, ListenerConfig, ListenerEvent, ListenerSettings, Post};
pub use retry::RetryPolicy;
pub use reqwest::Url;
pub use secrecy::{ExposeSecret, SecretString};
pub use signature::{sign, verify_signature, SIGNATURE_HEADER};
pub use text::{truncate_message, MAX_MESSAGE_BYTES};
pub use tokio_util::sync::CancellationToken;
pub use transport::{DialFuture, Dialer, DirectDialer};
pub use types::{
    parse_time, Attachment, EventData, Message, NewMessage, NewWebhook, Person, Room, RoomType,
    UpdateWebhook, Webhook, WebhookEvent,
};
