//! [`WebexError`]: every way a Webex call can fail, with the `trackingid` Webex support asks for.

use std::time::Duration;

/// A failed Webex call. `Display` never includes the bearer token, and never the request URL (whose
/// query may hold an email address).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebexError {
    /// The client could not be built (bad API base URL, token not usable in a header, TLS setup).
    #[error("webex client setup: {0}")]
    Setup(String),
    /// An argument cannot be sent (empty id, unusable content type, …); nothing was requested.
    #[error("invalid webex request: {0}")]
    Invalid(String),
    /// The request (connect, send and reading the answer) did not finish within the request timeout.
    #[error("webex request timed out")]
    Timeout,
    /// The connection could not be made or broke before the whole answer arrived.
    #[error("cannot reach webex: {0}")]
    Connect(String),
    /// Webex answered with an error status (`message` from the JSON error body when it has one).
    #[error("webex answered {status}: {message}{}", tracking_suffix(tracking_id))]
    Status {
        /// HTTP status code.
        status: u16,
        /// Webex's own explanation, or the status's reason phrase.
        message: String,
        /// The `trackingid` response header (or the body's `trackingId`).
        tracking_id: Option<String>,
    },
    /// Webex kept answering 429/423 and the retry budget (`max_total_wait` or `max_attempts`) ran out.
    #[error("webex rate limit: gave up after waiting {waited:?}")]
    RateLimited {
        /// How long this call waited in total before giving up.
        waited: Duration,
    },
    /// The answer was not the expected JSON (or was too large).
    #[error("unexpected answer from webex: {0}")]
    Decode(String),
    /// Webex rejected the bearer token (401): it is wrong, expired or revoked.
    #[error(
        "webex rejected the access token (401){}",
        tracking_suffix(tracking_id)
    )]
    Unauthorized {
        /// The `trackingid` response header (or the body's `trackingId`).
        tracking_id: Option<String>,
    },
    /// A URL received from Webex (a device, a websocket, a conversation, a page link) points to a
    /// host the bearer token must not be sent to.
    #[error("refusing to send the access token to {origin}: not a webex origin")]
    Untrusted {
        /// The refused origin (`scheme://host:port`).
        origin: String,
    },
    /// The websocket could not be opened or broke (dial, TLS, handshake, protocol).
    #[error("webex websocket: {0}")]
    Websocket(String),
    /// The websocket closed with code 4401: the service rejected the access token.
    #[error(
        "the webex websocket rejected the access token (close code 4401){}",
        reason_suffix(reason)
    )]
    WebsocketAuthRejected {
        /// The close frame's reason, as the service sent it (shortened).
        reason: String,
    },
    /// The device registration kept going stale (handshake 404 or close code 4404) right after
    /// registering anew.
    #[error("the webex device registration keeps going stale: gave up after {attempts} new registrations in a row")]
    DeviceStale {
        /// New registrations tried in a row.
        attempts: u32,
    },
}

impl WebexError {
    /// The HTTP status Webex answered with, when the failure was an answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            WebexError::Status { status, .. } => Some(*status),
            WebexError::Unauthorized { .. } => Some(401),
            _ => None,
        }
    }

    /// The `trackingid` of the failed request, when Webex sent one.
    pub fn tracking_id(&self) -> Option<&str> {
        match self {
            WebexError::Status { tracking_id, .. } | WebexError::Unauthorized { tracking_id } => {
                tracking_id.as_deref()
            }
            _ => None,
        }
    }
}

fn reason_suffix(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(": {reason}")
    }
}

fn tracking_suffix(tracking_id: &Option<String>) -> String {
    match tracking_id {
        Some(id) => format!(" (trackingid {id})"),
        None => String::new(),
    }
}
