//! The running servers: accept loop, hyper HTTP/1.1 connections over an axum router, Basic auth, the
//! request log and fault injection.
//!
//! Faults are applied per request. The socket-level ones (truncated body, connection reset) work through
//! [`ConnIo`], the connection's stream wrapper: the request handler arms it, and instead of the response
//! hyper then writes, it writes raw bytes and closes, or resets the connection. This way a fault set with
//! [`ServerHandle::set_fault`] hits the next request even on a kept-alive connection.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode};
use axum::routing::get;
use axum::Router;
use base64::Engine;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};
use tower::ServiceExt;

use crate::data::{ServerData, World};
use crate::scenario::{Fault, Scenario, ServerKind, ServerSpec};
use crate::{cmx, maps, mse, SimError};

/// How many requests each server keeps in its log (the count goes on).
const MAX_LOGGED_REQUESTS: usize = 10_000;
/// Largest body the truncated-body fault buffers from the real answer.
const MAX_TRUNCATED_SOURCE: usize = 16 * 1024 * 1024;

/// Locks a mutex, recovering from poisoning (the data stays usable).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A request as a simulated server received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// HTTP method, e.g. `GET`.
    pub method: String,
    /// The path as received (still percent-encoded).
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
}

/// A running set of simulated servers; dropping it stops them.
pub struct Simulator {
    scenario: Scenario,
    servers: Vec<ServerHandle>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("servers", &self.servers)
            .finish_non_exhaustive()
    }
}

impl Simulator {
    /// Starts every server of `scenario` on `127.0.0.1` with ephemeral ports.
    pub async fn start(scenario: Scenario) -> Result<Simulator, SimError> {
        Self::start_on(scenario, IpAddr::V4(Ipv4Addr::LOCALHOST), None).await
    }

    /// Starts every server on `ip`: on ports `first_port`, `first_port + 1`, ... or, with `None` or
    /// `Some(0)`, on ephemeral ones.
    pub async fn start_on(
        scenario: Scenario,
        ip: IpAddr,
        first_port: Option<u16>,
    ) -> Result<Simulator, SimError> {
        scenario.validate()?;
        let count = scenario.servers.len();
        let mut listeners = Vec::with_capacity(count);
        for (i, spec) in scenario.servers.iter().enumerate() {
            let port = match first_port {
                None | Some(0) => 0,
                Some(first) => u16::try_from(i)
                    .ok()
                    .and_then(|i| first.checked_add(i))
                    .ok_or(SimError::PortRange {
                        first_port: first,
                        count,
                    })?,
            };
            let addr = SocketAddr::new(ip, port);
            let bind_err = |source| SimError::Bind {
                server: spec.name.clone(),
                addr,
                source,
            };
            let listener = TcpListener::bind(addr).await.map_err(bind_err)?;
            let local = listener.local_addr().map_err(bind_err)?;
            listeners.push((listener, local));
        }

        let world = Arc::new(World::new(&scenario));
        let mut servers = Vec::with_capacity(count);
        let mut tasks = Vec::with_capacity(count);
        for (spec, (listener, addr)) in scenario.servers.iter().zip(listeners) {
            let data = Arc::new(ServerData::new(
                &scenario,
                &spec.name,
                spec.kind,
                world.clone(),
            ));
            tasks.extend(crate::meraki::start(&data, ip, addr).await?);
            if data.spaces.is_some() {
                tasks.push(tokio::spawn(crate::spaces::generate(data.clone())));
            }
            let shared = Arc::new(Shared::new(spec, data));
            tracing::info!(server = %spec.name, kind = %spec.kind, %addr, "simulated server listening");
            tasks.push(tokio::spawn(accept_loop(listener, shared.clone())));
            servers.push(ServerHandle { shared, addr });
        }
        Ok(Simulator {
            scenario,
            servers,
            tasks,
        })
    }

    /// The running servers, in scenario order.
    pub fn servers(&self) -> &[ServerHandle] {
        &self.servers
    }

    /// The server named `name`.
    pub fn server(&self, name: &str) -> Option<&ServerHandle> {
        self.servers.iter().find(|s| s.name() == name)
    }

    /// The scenario the servers were started from.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// Stops every server and closes their connections (also what dropping does).
    pub async fn shutdown(mut self) {
        let tasks = std::mem::take(&mut self.tasks);
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            let _ = task.await;
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// A handle on one running simulated server (cheap to clone; stays usable after shutdown).
#[derive(Clone)]
pub struct ServerHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("name", &self.shared.name)
            .field("kind", &self.shared.kind)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl ServerHandle {
    /// The server's name from the scenario.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The API it speaks.
    pub fn kind(&self) -> ServerKind {
        self.shared.kind
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://IP:PORT` (no trailing slash).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The Basic-auth username it demands.
    pub fn username(&self) -> &str {
        &self.shared.username
    }

    /// The Basic-auth password it demands.
    pub fn password(&self) -> &str {
        &self.shared.password
    }

    /// Changes the fault; it applies from the next request on (also on open connections).
    pub fn set_fault(&self, fault: Fault) {
        tracing::debug!(server = %self.shared.name, ?fault, "fault set");
        *lock(&self.shared.fault) = fault;
    }

    /// The current fault.
    pub fn fault(&self) -> Fault {
        *lock(&self.shared.fault)
    }

    /// Gives requests for page `page` of a client list (`page=N` in the query, any path) `fault`
    /// instead of the server's own, from the next request on: e.g. a list whose second page breaks.
    pub fn set_page_fault(&self, page: u64, fault: Fault) {
        tracing::debug!(server = %self.shared.name, page, ?fault, "page fault set");
        lock(&self.shared.page_faults).insert(page, fault);
    }

    /// Removes every fault set with [`ServerHandle::set_page_fault`].
    pub fn clear_page_faults(&self) {
        lock(&self.shared.page_faults).clear();
    }

    /// Every HTTP request received so far, faulted ones included.
    pub fn request_count(&self) -> u64 {
        self.shared.count.load(Ordering::SeqCst)
    }

    /// TCP connections accepted so far.
    pub fn connection_count(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// The peer IP of every TCP connection accepted so far, in order (to prove traffic came through a
    /// proxy).
    pub fn peers(&self) -> Vec<IpAddr> {
        lock(&self.shared.peers).clone()
    }

    /// The requests received, oldest first (the last 10,000).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.log).iter().cloned().collect()
    }

    /// The Meraki network's controls, for a `meraki` server.
    pub fn meraki(&self) -> Option<crate::meraki::MerakiHandle> {
        self.shared.meraki.clone()
    }

    /// Waits until at least `n` requests have been received (for tests: no sleeping).
    pub async fn wait_for_requests(&self, n: u64) {
        loop {
            let notified = self.shared.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.request_count() >= n {
                return;
            }
            notified.await;
        }
    }

    /// The data behind the server's endpoints.
    pub(crate) fn data(&self) -> &ServerData {
        &self.shared.data
    }
}

/// State of one server, shared by its handle and its connections.
struct Shared {
    name: String,
    kind: ServerKind,
    username: String,
    password: String,
    fault: Mutex<Fault>,
    /// Faults of requests for one page of a list, by page number.
    page_faults: Mutex<HashMap<u64, Fault>>,
    count: AtomicU64,
    connections: AtomicU64,
    peers: Mutex<Vec<IpAddr>>,
    log: Mutex<VecDeque<RecordedRequest>>,
    notify: Notify,
    data: Arc<ServerData>,
    router: Router,
    meraki: Option<crate::meraki::MerakiHandle>,
}

impl Shared {
    fn new(spec: &ServerSpec, data: Arc<ServerData>) -> Shared {
        Shared {
            name: spec.name.clone(),
            kind: spec.kind,
            username: spec.username.clone(),
            password: spec.password.clone(),
            fault: Mutex::new(spec.fault),
            page_faults: Mutex::new(HashMap::new()),
            count: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            peers: Mutex::new(Vec::new()),
            log: Mutex::new(VecDeque::new()),
            notify: Notify::new(),
            meraki: data
                .meraki
                .clone()
                .map(|state| crate::meraki::MerakiHandle {
                    data: data.clone(),
                    state,
                }),
            data: data.clone(),
            router: router(data),
        }
    }

    fn record<B>(&self, req: &Request<B>) {
        let entry = RecordedRequest {
            method: req.method().to_string(),
            path: req.uri().path().to_owned(),
            query: req.uri().query().map(str::to_owned),
        };
        tracing::debug!(server = %self.name, method = %entry.method, path = %entry.path, "request");
        {
            let mut log = lock(&self.log);
            if log.len() >= MAX_LOGGED_REQUESTS {
                log.pop_front();
            }
            log.push_back(entry);
        }
        self.count.fetch_add(1, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// The fault for `req`: its page's, if one is set, else the server's.
    fn fault_for<B>(&self, req: &Request<B>) -> Fault {
        let page_faults = lock(&self.page_faults);
        let page = (!page_faults.is_empty())
            .then(|| req.uri().query())
            .flatten()
            .and_then(|query| {
                query.split('&').find_map(|pair| {
                    pair.strip_prefix("page=")
                        .and_then(|n| n.trim().parse::<u64>().ok())
                })
            });
        match page.and_then(|page| page_faults.get(&page)) {
            Some(fault) => *fault,
            None => *lock(&self.fault),
        }
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        if self.kind == ServerKind::Meraki {
            return crate::meraki::bearer_ok(headers, &self.password);
        }
        if self.kind == ServerKind::Spaces {
            return crate::spaces::authorized(headers, &self.password);
        }
        let Some(value) = headers
            .get(header::AUTHORIZATION)
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
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
            return false;
        };
        let Ok(text) = String::from_utf8(decoded) else {
            return false;
        };
        text.split_once(':')
            .is_some_and(|(u, p)| u == self.username && p == self.password)
    }

    fn realm(&self) -> &'static str {
        match self.kind {
            ServerKind::Mse => "Basic realm=\"Cisco MSE\"",
            ServerKind::Cmx | ServerKind::CmxV2 => "Basic realm=\"Cisco CMX\"",
            ServerKind::Meraki => "Bearer realm=\"Meraki Dashboard API\"",
            ServerKind::Spaces => "X-API-KEY realm=\"Cisco Spaces\"",
        }
    }
}

/// The endpoints of a server kind; anything else is 404.
fn router(data: Arc<ServerData>) -> Router {
    let router = match data.kind {
        ServerKind::Cmx | ServerKind::CmxV2 => {
            let r = Router::new()
                .route("/api/location/v2/clients", get(cmx::v2_clients))
                .route("/api/config/v1/maps", get(maps::all_maps))
                .route(
                    "/api/config/v1/maps/info/{campus}/{building}/{floor}",
                    get(maps::floor_info),
                )
                .route(
                    "/api/config/v1/maps/imagesource/{image}",
                    get(maps::image_source),
                );
            if data.kind == ServerKind::Cmx {
                r.route("/api/location/v3/clients", get(cmx::v3_clients))
            } else {
                r
            }
        }
        ServerKind::Mse => Router::new()
            .route(
                "/api/contextaware/v1/location/clients",
                get(mse::client_list),
            )
            .route(
                "/api/contextaware/v1/location/clients.json",
                get(mse::client_list_json),
            )
            .route(
                "/api/contextaware/v1/location/clients/{user}",
                get(mse::client_by_user),
            )
            .route(
                "/api/contextaware/v1/maps/imagesource/{image}",
                get(maps::image_source),
            ),
        ServerKind::Meraki => crate::meraki::routes(),
        ServerKind::Spaces => crate::spaces::router(),
    };
    router
        .fallback(|| async { StatusCode::NOT_FOUND })
        .with_state(data)
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    // Dropping this task (shutdown) drops the set, which aborts every connection.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    lock(&shared.peers).push(peer.ip());
                    shared.connections.fetch_add(1, Ordering::SeqCst);
                    let _ = stream.set_nodelay(true);
                    connections.spawn(serve_connection(stream, peer, shared.clone()));
                }
                Err(err) => {
                    tracing::warn!(server = %shared.name, "accept failed: {err}");
                    // e.g. out of file descriptors: back off instead of spinning
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection(stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let raw = Arc::new(Mutex::new(RawAction::None));
    let io = TokioIo::new(ConnIo {
        inner: stream,
        raw: raw.clone(),
    });
    let name = shared.name.clone();
    let service = service_fn(move |req| {
        let shared = shared.clone();
        let raw = raw.clone();
        async move { Ok::<_, Infallible>(handle(&shared, &raw, req).await) }
    });
    let result = http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(io, service)
        .await;
    if let Err(err) = result {
        tracing::debug!(server = %name, %peer, "connection ended: {err}");
    }
}

/// Records the request, applies the current fault, checks credentials and routes.
async fn handle(shared: &Shared, raw: &Mutex<RawAction>, req: Request<Incoming>) -> Response<Body> {
    shared.record(&req);
    let fault = shared.fault_for(&req);
    match fault {
        Fault::None => {}
        Fault::Latency(delay) => tokio::time::sleep(delay).await,
        Fault::Hang => std::future::pending::<()>().await,
        Fault::Http500 => {
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal Server Error (simulated)",
            )
        }
        Fault::Unauthorized => return unauthorized(shared),
        Fault::MalformedJson => return malformed_json(req.uri().path()),
        Fault::NoContent => return status_only(StatusCode::NO_CONTENT),
        Fault::ConnectionReset => {
            *lock(raw) = RawAction::Reset;
            return status_only(StatusCode::OK);
        }
        Fault::TruncatedBody => {
            let answer = route(shared, req).await;
            *lock(raw) = RawAction::Write {
                bytes: truncated(answer).await,
                written: 0,
            };
            return status_only(StatusCode::OK);
        }
    }
    route(shared, req).await
}

async fn route(shared: &Shared, req: Request<Incoming>) -> Response<Body> {
    if !shared.authorized(req.headers()) {
        return unauthorized(shared);
    }
    match shared.router.clone().oneshot(req.map(Body::new)).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

fn status_only(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn unauthorized(shared: &Shared) -> Response<Body> {
    let mut response = status_only(StatusCode::UNAUTHORIZED);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(shared.realm()),
    );
    response
}

fn malformed_json(path: &str) -> Response<Body> {
    let body: &'static str = if path.contains("/v3/") {
        "[{\"deviceId\": \"00:11"
    } else if path.contains("/contextaware/") {
        "{\"WirelessClientLocation\": {\"macAddress\": \"00:11"
    } else if path.contains("/location/") {
        "[{\"macAddress\": \"00:11"
    } else {
        "{not json"
    };
    let mut response = plain(StatusCode::OK, body);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Raw bytes for the truncated-body fault: the real answer's head with its full `Content-Length`, and
/// half of its body (a canned JSON body stands in when the answer has none).
async fn truncated(answer: Response<Body>) -> Vec<u8> {
    let (parts, body) = answer.into_parts();
    let body = axum::body::to_bytes(body, MAX_TRUNCATED_SOURCE)
        .await
        .unwrap_or_default();
    let (status, content_type, body) = if body.is_empty() {
        let canned = Bytes::from_static(
            b"[{\"macAddress\":\"00:11:22:33:44:55\",\"userName\":\"jdoe\",\"ssId\":\"CORP\"}]",
        );
        (StatusCode::OK, "application/json".to_owned(), canned)
    } else {
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json")
            .to_owned();
        (parts.status, content_type, body)
    };
    let mut raw = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Unknown"),
        body.len(),
    )
    .into_bytes();
    raw.extend_from_slice(&body[..body.len() / 2]);
    raw
}

/// What the connection does instead of writing hyper's next response.
enum RawAction {
    /// Pass hyper's bytes through.
    None,
    /// Reset the connection (RST): zero linger, then fail so hyper drops the socket.
    Reset,
    /// Write these bytes, then fail so hyper drops (closes) the socket.
    Write { bytes: Vec<u8>, written: usize },
}

/// The connection's stream as hyper sees it, able to replace a response with a raw fault.
struct ConnIo {
    inner: TcpStream,
    raw: Arc<Mutex<RawAction>>,
}

impl AsyncRead for ConnIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ConnIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let mut raw = lock(&this.raw);
        match &mut *raw {
            RawAction::None => Pin::new(&mut this.inner).poll_write(cx, buf),
            RawAction::Reset => {
                if let Err(err) = this.inner.set_zero_linger() {
                    tracing::warn!("cannot set SO_LINGER for a simulated reset: {err}");
                }
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "simulated connection reset",
                )))
            }
            RawAction::Write { bytes, written } => {
                while *written < bytes.len() {
                    match Pin::new(&mut this.inner).poll_write(cx, &bytes[*written..]) {
                        Poll::Ready(Ok(0)) => {
                            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()))
                        }
                        Poll::Ready(Ok(n)) => *written += n,
                        Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                        Poll::Pending => return Poll::Pending,
                    }
                }
                Poll::Ready(Err(io::Error::other("simulated truncated body")))
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if matches!(*lock(&this.raw), RawAction::None) {
            Pin::new(&mut this.inner).poll_flush(cx)
        } else {
            Poll::Ready(Ok(()))
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if matches!(*lock(&this.raw), RawAction::Reset) {
            // no FIN before the RST
            Poll::Ready(Ok(()))
        } else {
            Pin::new(&mut this.inner).poll_shutdown(cx)
        }
    }
}
