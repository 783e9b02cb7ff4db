//! How the websocket leaves the machine: a [`Dialer`] gives the TCP stream (straight to the host,
//! or a tunnel through a proxy the caller set up); TLS (rustls) and the websocket handshake run on
//! top of it here.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderValue, AUTHORIZATION, RETRY_AFTER, USER_AGENT};
use reqwest::Url;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::WebSocketStream;

use crate::client::Token;
use crate::error::WebexError;
use crate::retry::RetryPolicy;

/// What [`Dialer::dial`] returns.
pub type DialFuture<'a> = Pin<Box<dyn Future<Output = io::Result<TcpStream>> + Send + 'a>>;

/// Opens the TCP stream a websocket runs over. [`DirectDialer`] connects to the host itself; the
/// caller's dialer for a corporate proxy returns the stream after a successful `CONNECT host:port`.
/// TLS for `wss://` is done on top of the returned stream.
pub trait Dialer: Send + Sync {
    /// A stream to `host:port` (`host` is a name or an IP address, without brackets).
    fn dial<'a>(&'a self, host: &'a str, port: u16) -> DialFuture<'a>;
}

/// Connects straight to the host (name resolution by the system), with `TCP_NODELAY`.
#[derive(Debug, Clone, Copy, Default)]
pub struct DirectDialer;

impl Dialer for DirectDialer {
    fn dial<'a>(&'a self, host: &'a str, port: u16) -> DialFuture<'a> {
        Box::pin(async move {
            let stream = TcpStream::connect((host, port)).await?;
            stream.set_nodelay(true)?;
            Ok(stream)
        })
    }
}

/// The stream under the websocket: plain TCP or TLS over it.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub(crate) type Socket = WebSocketStream<Box<dyn Io>>;

/// TLS settings for `wss://`: the system's trust roots unless the caller gives its own.
#[derive(Clone)]
pub(crate) struct Tls(Arc<rustls::ClientConfig>);

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tls")
    }
}

impl Tls {
    pub(crate) fn new(config: Arc<rustls::ClientConfig>) -> Tls {
        Tls(config)
    }

    /// rustls with the system's trust roots (ring provider, TLS 1.2 and 1.3).
    pub(crate) fn native_roots() -> Result<Tls, WebexError> {
        let mut roots = rustls::RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        for cert in found.certs {
            let _ = roots.add(cert);
        }
        if roots.is_empty() {
            tracing::warn!("no system trust roots found: wss connections will fail to verify");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|err| WebexError::Setup(format!("TLS set-up: {err}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Tls(Arc::new(config)))
    }
}

/// Why a websocket could not be opened.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// The service answered the handshake with this status (`Retry-After` kept for 429).
    Status {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// Anything else: dial, TLS, protocol, timeout.
    Failed(WebexError),
}

/// Headers of the handshake besides the websocket ones.
pub(crate) struct Handshake<'a> {
    pub(crate) token: &'a Token,
    pub(crate) tracking_id: &'a str,
    pub(crate) retry: &'a RetryPolicy,
}

/// Largest frame or message accepted from the service.
const MAX_MESSAGE: usize = 4 * 1024 * 1024;

/// Dials, does TLS for `wss://`, and the websocket handshake, all within `timeout`.
pub(crate) async fn open(
    url: &Url,
    dialer: &dyn Dialer,
    tls: Option<&Tls>,
    handshake: Handshake<'_>,
    timeout: Duration,
) -> Result<Socket, OpenError> {
    tokio::time::timeout(timeout, open_inner(url, dialer, tls, handshake))
        .await
        .unwrap_or_else(|_| {
            Err(OpenError::Failed(WebexError::Websocket(
                "opening the websocket timed out".into(),
            )))
        })
}

async fn open_inner(
    url: &Url,
    dialer: &dyn Dialer,
    tls: Option<&Tls>,
    handshake: Handshake<'_>,
) -> Result<Socket, OpenError> {
    let failed = |what: String| OpenError::Failed(WebexError::Websocket(what));
    let secure = match url.scheme() {
        "wss" => true,
        "ws" => false,
        other => return Err(failed(format!("{other}:// is not a websocket URL"))),
    };
    let host = url
        .host_str()
        .ok_or_else(|| failed("websocket URL without a host".into()))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = url
        .port_or_known_default()
        .ok_or_else(|| failed("websocket URL without a port".into()))?;
    let tcp = dialer
        .dial(host, port)
        .await
        .map_err(|err| failed(format!("cannot reach {host}:{port}: {err}")))?;
    let stream: Box<dyn Io> = if secure {
        let tls = tls.ok_or_else(|| failed("no TLS settings for wss://".into()))?;
        let name = rustls::pki_types::ServerName::try_from(host.to_owned())
            .map_err(|err| failed(format!("TLS server name {host:?}: {err}")))?;
        let connector = tokio_rustls::TlsConnector::from(tls.0.clone());
        let stream = connector
            .connect(name, tcp)
            .await
            .map_err(|err| failed(format!("TLS with {host}:{port}: {err}")))?;
        Box::new(stream)
    } else {
        Box::new(tcp)
    };
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|err| failed(format!("websocket request: {err}")))?;
    let mut auth = HeaderValue::from_str(&format!("Bearer {}", handshake.token.expose()))
        .map_err(|_| failed("the access token cannot be sent in a header".into()))?;
    auth.set_sensitive(true);
    let headers = request.headers_mut();
    headers.insert(AUTHORIZATION, auth);
    headers.insert(
        USER_AGENT,
        HeaderValue::from_static(crate::client::USER_AGENT),
    );
    if let Ok(tracking) = HeaderValue::from_str(handshake.tracking_id) {
        headers.insert("trackingid", tracking);
    }
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    match tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await {
        Ok((socket, _)) => Ok(socket),
        Err(WsError::Http(response)) => {
            let status = response.status().as_u16();
            let retry_after = (status == 429 || status == 423).then(|| {
                handshake.retry.retry_after(
                    response
                        .headers()
                        .get(RETRY_AFTER)
                        .map(HeaderValue::as_bytes),
                )
            });
            Err(OpenError::Status {
                status,
                retry_after,
            })
        }
        Err(err) => Err(failed(format!("websocket handshake: {err}"))),
    }
}
