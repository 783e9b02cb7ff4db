//! A small forwarding HTTP proxy on loopback, standing in for a corporate proxy in tests.
//!
//! [`ForwardProxy`] answers `CONNECT host:port` with `200 Connection established` and tunnels bytes both
//! ways, and forwards absolute-form plain-HTTP requests (`GET http://host:port/path`) to the origin in
//! origin form, one request at a time (several hosts may be asked for on one kept-alive connection).
//! It can demand `Proxy-Authorization: Basic` credentials (else `407`), refuses every target outside
//! 127.0.0.0/8 (`403`: it is never a relay off the machine), connects out **from** a configurable
//! loopback address (127.0.0.2 by default, so an origin's peer addresses show what came through the
//! proxy) and records every request.

use std::convert::Infallible;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{
    header, HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode,
};
use base64::Engine;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::server::lock;
use crate::SimError;

/// How long connecting to an origin may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a forwarded plain-HTTP exchange may take.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest request body forwarded for a plain-HTTP request.
const MAX_FORWARD_BODY: usize = 16 * 1024 * 1024;
/// The realm in `Proxy-Authenticate`.
pub const PROXY_REALM: &str = "whereis-sim";

/// Credentials the proxy demands in `Proxy-Authorization: Basic …`.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyCredentials {
    /// The user name.
    pub username: String,
    /// The password (never shown by `Debug`).
    pub password: String,
}

impl std::fmt::Debug for ProxyCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyCredentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// How a [`ForwardProxy`] behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyOptions {
    /// Credentials every request must carry; `None` lets everything through.
    pub credentials: Option<ProxyCredentials>,
    /// The local address outbound connections are made from (must be a loopback address).
    pub outbound_ip: Ipv4Addr,
}

impl Default for ProxyOptions {
    fn default() -> ProxyOptions {
        ProxyOptions {
            credentials: None,
            outbound_ip: Ipv4Addr::new(127, 0, 0, 2),
        }
    }
}

/// A request as the proxy received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxiedRequest {
    /// HTTP method, e.g. `CONNECT` or `GET`.
    pub method: String,
    /// `host:port` for `CONNECT`, the absolute URL for plain HTTP (the path for a request that was not
    /// a proxy request).
    pub target: String,
    /// Whether it passed the credentials check (always true when none are demanded).
    pub authorised: bool,
    /// The status the proxy answered: 200 for an established tunnel, 407, 403, 400, 502, 504, or the
    /// origin's status for a forwarded request.
    pub status: u16,
}

/// A running forwarding proxy on `127.0.0.1`; dropping it stops it (listener, connections and tunnels).
pub struct ForwardProxy {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for ForwardProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForwardProxy")
            .field("addr", &self.addr)
            .field("options", &self.shared.options)
            .finish_non_exhaustive()
    }
}

impl ForwardProxy {
    /// Starts a proxy that demands no credentials and connects out from 127.0.0.2.
    pub async fn start() -> Result<ForwardProxy, SimError> {
        Self::start_with(ProxyOptions::default()).await
    }

    /// Starts a proxy that demands these credentials (and connects out from 127.0.0.2).
    pub async fn with_credentials(
        username: &str,
        password: &str,
    ) -> Result<ForwardProxy, SimError> {
        Self::start_with(ProxyOptions {
            credentials: Some(ProxyCredentials {
                username: username.to_owned(),
                password: password.to_owned(),
            }),
            ..ProxyOptions::default()
        })
        .await
    }

    /// Starts a proxy with `options` on `127.0.0.1` and an ephemeral port.
    pub async fn start_with(options: ProxyOptions) -> Result<ForwardProxy, SimError> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let bind_err = |source| SimError::Bind {
            server: "proxy".to_owned(),
            addr,
            source,
        };
        if !options.outbound_ip.is_loopback() {
            return Err(SimError::Proxy(format!(
                "the outbound address {} is not a loopback address",
                options.outbound_ip
            )));
        }
        let listener = TcpListener::bind(addr).await.map_err(bind_err)?;
        let local = listener.local_addr().map_err(bind_err)?;
        let client = reqwest::Client::builder()
            .no_proxy()
            .local_address(IpAddr::V4(options.outbound_ip))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(FORWARD_TIMEOUT)
            .build()
            .map_err(|err| SimError::Proxy(format!("cannot build the forwarding client: {err}")))?;
        let (stop, stopped) = watch::channel(false);
        let (count, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            options,
            client,
            log: Mutex::new(Vec::new()),
            count,
            peers: Mutex::new(Vec::new()),
            stopped,
        });
        tracing::info!(addr = %local, "forward proxy listening");
        let task = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(ForwardProxy {
            shared,
            addr: local,
            stop,
            task: Some(task),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (no trailing slash): the proxy URL to configure.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The options it runs with.
    pub fn options(&self) -> &ProxyOptions {
        &self.shared.options
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<ProxiedRequest> {
        lock(&self.shared.log).clone()
    }

    /// How many requests were received so far.
    pub fn request_count(&self) -> usize {
        lock(&self.shared.log).len()
    }

    /// The peer IP of every client connection accepted, in order.
    pub fn peers(&self) -> Vec<IpAddr> {
        lock(&self.shared.peers).clone()
    }

    /// Waits until at least `n` requests were received, or `timeout` passes; whether they were.
    pub async fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        let mut count = self.shared.count.subscribe();
        tokio::time::timeout(timeout, count.wait_for(|&c| c >= n))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Stops listening and ends every connection and tunnel (also what dropping does).
    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for ForwardProxy {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

struct Shared {
    options: ProxyOptions,
    client: reqwest::Client,
    log: Mutex<Vec<ProxiedRequest>>,
    count: watch::Sender<usize>,
    peers: Mutex<Vec<IpAddr>>,
    /// Becomes true (or its sender goes away) when the proxy stops: tunnels end then.
    stopped: watch::Receiver<bool>,
}

impl Shared {
    fn record(&self, method: &Method, target: &str, authorised: bool, status: StatusCode) {
        tracing::debug!(%method, %target, authorised, status = status.as_u16(), "proxy request");
        let count = {
            let mut log = lock(&self.log);
            log.push(ProxiedRequest {
                method: method.to_string(),
                target: target.to_owned(),
                authorised,
                status: status.as_u16(),
            });
            log.len()
        };
        self.count.send_replace(count);
    }

    fn authorised(&self, headers: &HeaderMap) -> bool {
        let Some(wanted) = &self.options.credentials else {
            return true;
        };
        let Some(value) = headers
            .get(header::PROXY_AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        let Some((scheme, encoded)) = value.trim().split_once(' ') else {
            return false;
        };
        if !scheme.eq_ignore_ascii_case("basic") {
            return false;
        }
        base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|raw| String::from_utf8(raw).ok())
            .and_then(|text| {
                text.split_once(':')
                    .map(|(u, p)| u == wanted.username && p == wanted.password)
            })
            .unwrap_or(false)
    }

    /// Connects to `target` from the outbound address.
    async fn connect_out(&self, target: SocketAddr) -> io::Result<TcpStream> {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(IpAddr::V4(self.options.outbound_ip), 0))?;
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, socket.connect(target))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    // Dropping this task (shutdown) drops the set, which aborts every connection.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    lock(&shared.peers).push(peer.ip());
                    let _ = stream.set_nodelay(true);
                    connections.spawn(serve_connection(stream, peer, shared.clone()));
                }
                Err(err) => {
                    tracing::warn!("proxy accept failed: {err}");
                    // e.g. out of file descriptors: back off instead of spinning
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection(stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let service = service_fn(move |req| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(handle(shared, req).await) }
    });
    let result = http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades()
        .await;
    if let Err(err) = result {
        tracing::debug!(%peer, "proxy connection ended: {err}");
    }
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    if req.method() == Method::CONNECT {
        tunnel(shared, req).await
    } else {
        forward(shared, req).await
    }
}

/// The target of a proxy request if it is on loopback: `localhost` or an IPv4 address in 127.0.0.0/8.
/// Names are not resolved, so nothing else can be reached.
fn loopback_target(host: &str, port: u16) -> Option<SocketAddr> {
    if host.eq_ignore_ascii_case("localhost") {
        return Some(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    match host.parse::<Ipv4Addr>() {
        Ok(ip) if ip.is_loopback() => Some(SocketAddr::from((ip, port))),
        _ => None,
    }
}

fn answer(status: StatusCode, text: &str) -> Response<Body> {
    let mut response = Response::new(Body::from(format!("{text}\n")));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn proxy_auth_required() -> Response<Body> {
    let mut response = answer(
        StatusCode::PROXY_AUTHENTICATION_REQUIRED,
        "Proxy Authentication Required",
    );
    if let Ok(value) = HeaderValue::from_str(&format!("Basic realm=\"{PROXY_REALM}\"")) {
        response
            .headers_mut()
            .insert(header::PROXY_AUTHENTICATE, value);
    }
    response
}

/// `CONNECT host:port`: checks, connects out, answers 200 and tunnels once hyper hands the connection
/// over.
async fn tunnel(shared: Arc<Shared>, mut req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let Some(authority) = req.uri().authority().cloned() else {
        let target = req.uri().to_string();
        shared.record(&method, &target, false, StatusCode::BAD_REQUEST);
        return answer(StatusCode::BAD_REQUEST, "CONNECT needs host:port");
    };
    let target = authority.to_string();
    if !shared.authorised(req.headers()) {
        shared.record(
            &method,
            &target,
            false,
            StatusCode::PROXY_AUTHENTICATION_REQUIRED,
        );
        return proxy_auth_required();
    }
    let Some(addr) = authority
        .port_u16()
        .and_then(|port| loopback_target(authority.host(), port))
    else {
        shared.record(&method, &target, true, StatusCode::FORBIDDEN);
        return answer(
            StatusCode::FORBIDDEN,
            "This proxy only reaches 127.0.0.0/8 (host:port with a port)",
        );
    };
    let origin = match shared.connect_out(addr).await {
        Ok(stream) => stream,
        Err(err) => {
            tracing::debug!(%target, "proxy cannot connect: {err}");
            shared.record(&method, &target, true, StatusCode::BAD_GATEWAY);
            return answer(
                StatusCode::BAD_GATEWAY,
                &format!("cannot connect to {target}: {err}"),
            );
        }
    };
    shared.record(&method, &target, true, StatusCode::OK);
    let upgrade = hyper::upgrade::on(&mut req);
    let mut stopped = shared.stopped.clone();
    tokio::spawn(async move {
        let copy = async {
            let client = match upgrade.await {
                Ok(upgraded) => upgraded,
                Err(err) => {
                    tracing::debug!(%target, "proxy tunnel not upgraded: {err}");
                    return;
                }
            };
            let mut client = TokioIo::new(client);
            let mut origin = origin;
            if let Err(err) = tokio::io::copy_bidirectional(&mut client, &mut origin).await {
                tracing::debug!(%target, "proxy tunnel ended: {err}");
            }
        };
        tokio::select! {
            () = copy => {}
            _ = stopped.wait_for(|&stop| stop) => {}
        }
    });
    let mut response = Response::new(Body::empty());
    response
        .extensions_mut()
        .insert(hyper::ext::ReasonPhrase::from_static(
            b"Connection established",
        ));
    response
}

/// Headers that belong to one hop and are not forwarded (RFC 9110 §7.6.1), and the proxy's own.
fn hop_by_hop(name: &HeaderName, connection: &HeaderMap) -> bool {
    const HOP: [&str; 9] = [
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authorization",
        "proxy-authenticate",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ];
    HOP.contains(&name.as_str())
        || connection
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|listed| listed.trim().eq_ignore_ascii_case(name.as_str()))
}

/// An absolute-form request: checks, then forwards it in origin form and relays the answer.
async fn forward(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let uri = req.uri().clone();
    let target = uri.to_string();
    let Some(authority) = uri.authority() else {
        shared.record(&method, &target, false, StatusCode::BAD_REQUEST);
        return answer(
            StatusCode::BAD_REQUEST,
            "This is a proxy: send absolute-form requests (GET http://host:port/path) or CONNECT",
        );
    };
    if uri.scheme_str() != Some("http") {
        shared.record(&method, &target, false, StatusCode::BAD_REQUEST);
        return answer(
            StatusCode::BAD_REQUEST,
            "Only http:// is forwarded; use CONNECT for anything else",
        );
    }
    if !shared.authorised(req.headers()) {
        shared.record(
            &method,
            &target,
            false,
            StatusCode::PROXY_AUTHENTICATION_REQUIRED,
        );
        return proxy_auth_required();
    }
    if loopback_target(authority.host(), authority.port_u16().unwrap_or(80)).is_none() {
        shared.record(&method, &target, true, StatusCode::FORBIDDEN);
        return answer(StatusCode::FORBIDDEN, "This proxy only reaches 127.0.0.0/8");
    }
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(Body::new(body), MAX_FORWARD_BODY).await {
        Ok(body) => body,
        Err(err) => {
            shared.record(&method, &target, true, StatusCode::PAYLOAD_TOO_LARGE);
            return answer(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("cannot read the request body (at most {MAX_FORWARD_BODY} bytes): {err}"),
            );
        }
    };
    let mut headers = HeaderMap::new();
    for (name, value) in &parts.headers {
        if name != header::HOST && !hop_by_hop(name, &parts.headers) {
            headers.append(name.clone(), value.clone());
        }
    }
    let sent = shared
        .client
        .request(method.clone(), &target)
        .headers(headers)
        .body(body)
        .send()
        .await;
    let origin = match sent {
        Ok(origin) => origin,
        Err(err) => {
            let status = if err.is_timeout() {
                StatusCode::GATEWAY_TIMEOUT
            } else {
                StatusCode::BAD_GATEWAY
            };
            tracing::debug!(%target, "proxy cannot forward: {err}");
            shared.record(&method, &target, true, status);
            return answer(status, &format!("cannot forward to {target}: {err}"));
        }
    };
    let status = origin.status();
    let origin_headers = origin.headers().clone();
    let body = match origin.bytes().await {
        Ok(body) => body,
        Err(err) => {
            shared.record(&method, &target, true, StatusCode::BAD_GATEWAY);
            return answer(
                StatusCode::BAD_GATEWAY,
                &format!("the answer of {target} broke off: {err}"),
            );
        }
    };
    shared.record(&method, &target, true, status);
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    for (name, value) in &origin_headers {
        if !hop_by_hop(name, &origin_headers) {
            response.headers_mut().append(name.clone(), value.clone());
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_targets_are_reachable() {
        assert_eq!(
            loopback_target("127.0.0.1", 80),
            Some(SocketAddr::from(([127, 0, 0, 1], 80)))
        );
        assert_eq!(
            loopback_target("127.1.2.3", 8443),
            Some(SocketAddr::from(([127, 1, 2, 3], 8443)))
        );
        assert_eq!(
            loopback_target("LOCALHOST", 1),
            Some(SocketAddr::from(([127, 0, 0, 1], 1)))
        );
        for host in [
            "10.0.0.1",
            "example.com",
            "128.0.0.1",
            "[::1]",
            "::1",
            "",
            "127.0.0.1.nip.io",
        ] {
            assert_eq!(loopback_target(host, 443), None, "{host}");
        }
    }

    #[test]
    fn credentials_debug_hides_the_password() {
        let credentials = ProxyCredentials {
            username: "alice".to_owned(),
            password: "s3cret-pw".to_owned(),
        };
        let shown = format!(
            "{credentials:?} {:?}",
            ProxyOptions {
                credentials: Some(credentials.clone()),
                ..ProxyOptions::default()
            }
        );
        assert!(shown.contains("alice"), "{shown}");
        assert!(!shown.contains("s3cret-pw"), "{shown}");
    }

    #[test]
    fn hop_by_hop_headers_include_those_named_by_connection() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("close, X-Private"),
        );
        assert!(hop_by_hop(&header::PROXY_AUTHORIZATION, &headers));
        assert!(hop_by_hop(&HeaderName::from_static("x-private"), &headers));
        assert!(!hop_by_hop(&header::CONTENT_TYPE, &headers));
    }
}
