//! The HTTP server of `serve` and `demo`: the JSON lookup API, webhooks,
//! health, readiness and metrics.

use std::future::Future;
use std::sync::Arc;

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Extension, Path, Query, Request, State};
use axum::http::HeaderMap;
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tower_http::timeout::TimeoutLayer;
use whereis_location::Device;

use crate::auth::{Auth, AuthError};
use crate::chat::{Bot, Intake};
use crate::health::Health;
use crate::lookup::{FindError, Finder, IdentityError, SelfServiceError};
use crate::privacy::{Precision, Refusal, Requester};
use crate::report::{DeviceReport, MapInfo, Outcome};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub(crate) finder: Arc<Finder>,
    bot: Option<Arc<Bot>>,
    /// Map id → the device to draw: ids are handed out by `locate`, drawn on request.
    /// Maps handed out by `locate`: the device and the precision it may be drawn with.
    map_requests: moka::sync::Cache<String, Arc<(Device, Precision)>>,
    /// Map id → drawn PNG.
    drawn: moka::future::Cache<String, Arc<Vec<u8>>>,
    /// What `/readyz` reports.
    health: Arc<Health>,
    /// Who asks through the API.
    pub(crate) auth: Auth,
}

/// How long a map URL from `locate` stays valid.
const MAP_URL_LIFETIME: Duration = Duration::from_secs(3600);
/// Byte budget of drawn PNGs kept for repeated requests.
const DRAWN_MAPS_BYTES: u64 = 128 * 1024 * 1024;

/// The routes with the default request timeout; `POST /webhooks/webex` answers 404 when no bot is
/// configured.
pub fn router(finder: Arc<Finder>, bot: Option<Arc<Bot>>) -> Router {
    router_with_timeout(finder, bot, REQUEST_TIMEOUT)
}

/// The routes, each request answered 503 when not done within `request_timeout`.
pub fn router_with_timeout(
    finder: Arc<Finder>,
    bot: Option<Arc<Bot>>,
    request_timeout: Duration,
) -> Router {
    let health = Arc::new(Health::new(
        finder.locator().sources().iter().map(|s| s.name()),
    ));
    router_with(
        finder,
        bot,
        RouterOptions {
            request_timeout,
            health,
            metrics: true,
        },
    )
}

/// How `serve` sets up its routes.
pub struct RouterOptions {
    /// Each request is answered 503 when not done within this.
    pub request_timeout: Duration,
    /// What `/readyz` reports.
    pub health: Arc<Health>,
    /// Serve `/metrics` on this router (false when `[server] metrics_listen` gives it its own).
    pub metrics: bool,
}

/// The routes of `serve`.
pub fn router_with(finder: Arc<Finder>, bot: Option<Arc<Bot>>, options: RouterOptions) -> Router {
    let RouterOptions {
        request_timeout,
        health,
        metrics,
    } = options;
    let store_gauges = StoreGauges(finder.privacy().store().clone());
    let auth = Auth::new(finder.web().auth.clone(), finder.privacy().store().clone());
    let signin = crate::signin::router(
        auth.clone(),
        finder.privacy().store().clone(),
        finder.network(),
    );
    let state = AppState {
        finder,
        bot,
        health,
        auth,
        map_requests: moka::sync::Cache::builder()
            .max_capacity(100_000)
            .time_to_live(MAP_URL_LIFETIME)
            .build(),
        drawn: moka::future::Cache::builder()
            .weigher(|_id: &String, png: &Arc<Vec<u8>>| {
                u32::try_from(png.len()).unwrap_or(u32::MAX)
            })
            .max_capacity(DRAWN_MAPS_BYTES)
            .time_to_live(MAP_URL_LIFETIME)
            .build(),
    };
    // Every API route needs a requester (401 otherwise); health, metrics and the webhook (which
    // checks its own signature) do not.
    let api = Router::new()
        .route("/api/v1/locate", get(locate))
        .route("/api/v1/maps/{file}", get(map_png))
        .route("/api/v1/me/optout", post(me_opt_out))
        .route("/api/v1/me/optin", post(me_opt_in))
        .route("/api/v1/me/lookups", get(me_lookups))
        .merge(crate::api_settings::routes())
        .route_layer(middleware::from_fn_with_state(state.clone(), identify));
    let router = Router::new()
        .merge(api)
        .merge(crate::web::routes(&state))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route(
            "/webhooks/webex",
            post(webex_webhook).layer(DefaultBodyLimit::max(WEBHOOK_BODY_LIMIT)),
        )
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            request_timeout,
        ))
        .with_state(state)
        .merge(signin);
    let router = if metrics {
        router.merge(metrics_router(store_gauges))
    } else {
        router
    };
    router.layer(middleware::from_fn(crate::web::security_headers))
}

/// `/metrics` alone, for `[server] metrics_listen` (or merged into the main routes).
pub fn metrics_router(store: StoreGauges) -> Router {
    // Installing the exporter here means every series recorded from now on is collected.
    crate::metrics::exporter();
    Router::new()
        .route("/metrics", get(metrics_text))
        .with_state(store)
}

/// The store whose pool `/metrics` reports.
#[derive(Clone)]
pub struct StoreGauges(pub crate::store::Store);

/// `GET /metrics`: every series in the Prometheus text format.
async fn metrics_text(State(StoreGauges(store)): State<StoreGauges>) -> Response {
    let (in_use, idle) = store.connections();
    metrics::gauge!(crate::metrics::STORE_CONNECTIONS, "state" => "in_use").set(in_use);
    metrics::gauge!(crate::metrics::STORE_CONNECTIONS, "state" => "idle").set(idle);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(),
    )
        .into_response()
}

/// `GET /readyz`: 200 when the store answers (the instance can serve lookups), else 503; either way
/// a JSON document with the store, each source's last probe and each stream's state.
async fn readyz(State(state): State<AppState>) -> Response {
    let readiness = state.health.readiness(state.finder.privacy().store()).await;
    let status = if readiness.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(readiness)).into_response()
}

/// Largest webhook body read (Webex's are a few hundred bytes).
pub const WEBHOOK_BODY_LIMIT: usize = 1024 * 1024;
/// Largest body read on every other route.
pub const BODY_LIMIT: usize = 64 * 1024;
/// By default no request is worked on longer than this (a lookup has its own, shorter deadline).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `router` on `listener` until `shutdown` completes, then lets requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Replies are small writes: they must not wait for delayed ACKs (Nagle).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    // The peer's address is how a trusted proxy is recognised.
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

#[derive(Debug, Deserialize)]
struct LocateParams {
    q: Option<String>,
}

/// An error answer: `{"error": "..."}` with a status.
pub(crate) fn error(status: StatusCode, message: String) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

/// `GET /api/v1/locate?q=QUERY`: the `find --json` document. 400 for a bad query, 502 when every
/// source failed (the body still lists the failures).
async fn locate(
    State(state): State<AppState>,
    Extension(requester): Extension<Requester>,
    Query(params): Query<LocateParams>,
) -> Response {
    let Some(query) = params.q else {
        return error(
            StatusCode::BAD_REQUEST,
            "missing q: ask /api/v1/locate?q=USERNAME".to_owned(),
        );
    };
    match state.finder.find(&query, &requester).await {
        Err(err @ FindError::NotAllowed(_)) => error(StatusCode::FORBIDDEN, err.to_string()),
        Err(
            err @ FindError::Refused(
                Refusal::OptedOut(_)
                | Refusal::NotOptedIn(_)
                | Refusal::NotAvailable(_)
                | Refusal::OutsideHours(_),
            ),
        ) => error(StatusCode::FORBIDDEN, err.to_string()),
        Err(err @ FindError::Refused(Refusal::RateLimited(_))) => {
            error(StatusCode::TOO_MANY_REQUESTS, err.to_string())
        }
        Err(
            err @ (FindError::Refused(Refusal::StoreUnavailable(_))
            | FindError::DirectoryUnavailable(_)),
        ) => error(StatusCode::SERVICE_UNAVAILABLE, err.to_string()),
        Err(FindError::Ambiguous { query, candidates }) => (
            StatusCode::CONFLICT,
            Json(serde_json::json!({
                "error": format!("{query:?} matches several people"),
                "candidates": candidates.iter().map(|c| serde_json::json!({
                    "username": c.username, "display_name": c.display_name, "email": c.email
                })).collect::<Vec<_>>(),
            })),
        )
            .into_response(),
        Err(err @ FindError::NoSuchPerson(_)) => error(StatusCode::NOT_FOUND, err.to_string()),
        Err(err) => error(StatusCode::BAD_REQUEST, err.to_string()),
        Ok(mut report) => {
            let maps = futures::future::join_all(
                report.devices.iter().map(|entry| map_link(&state, entry)),
            )
            .await;
            for (entry, map) in report.devices.iter_mut().zip(maps) {
                entry.set_map(map);
            }
            let status = match state.finder.outcome(&report) {
                Outcome::Found | Outcome::NotFound => StatusCode::OK,
                Outcome::AllSourcesFailed => StatusCode::BAD_GATEWAY,
            };
            (status, Json(report)).into_response()
        }
    }
}

/// Hands out the URL of a device's map: the floor image is fetched (once, cached) to know the map's
/// size and marker; drawing waits until the URL is asked for.
pub(crate) async fn map_link(
    state: &AppState,
    entry: &DeviceReport,
) -> Result<MapInfo, whereis_floormap::MapError> {
    if entry.precision == Precision::Building {
        return Err(whereis_floormap::MapError::NoFloorPlan);
    }
    let (width, height, marker) = state.finder.marker(&entry.device).await?;
    let id = map_id(&entry.device, entry.precision);
    state.map_requests.insert(
        id.clone(),
        Arc::new((entry.device.clone(), entry.precision)),
    );
    // Below `exact` no marker is drawn, and none is described.
    let exact = entry.precision == Precision::Exact;
    Ok(MapInfo {
        path: None,
        url: Some(format!("/api/v1/maps/{id}.png")),
        width,
        height,
        marker: if exact { marker.pixel } else { [0, 0] },
        clamped: exact && marker.clamped,
    })
}

/// Same device at the same place on the same floor, at the same precision → same id, so repeated
/// lookups share one drawing (and a plan without a marker never shares one with a marked map).
fn map_id(device: &Device, precision: Precision) -> String {
    let mut hasher = Sha256::new();
    let plan = device.floor_plan.as_ref();
    let fields = format!(
        "{}\0{}\0{:?}\0{}\0{}\0{:?}\0{:?}\0{:?}",
        precision.as_str(),
        device.source,
        plan.map(|p| &p.image_name),
        device.x,
        device.y,
        device.confidence,
        plan.map(|p| p.width),
        plan.map(|p| p.length),
    );
    hasher.update(fields.as_bytes());
    hex::encode(&hasher.finalize()[..12])
}

/// `GET /api/v1/maps/{id}.png`: a map handed out by `locate`.
async fn map_png(State(state): State<AppState>, Path(file): Path<String>) -> Response {
    let Some(id) = file.strip_suffix(".png") else {
        return error(StatusCode::NOT_FOUND, "no such map".to_owned());
    };
    let Some(request) = state.map_requests.get(id) else {
        return error(
            StatusCode::NOT_FOUND,
            "no such map (map URLs expire an hour after the lookup)".to_owned(),
        );
    };
    let finder = Arc::clone(&state.finder);
    let drawn = state
        .drawn
        .try_get_with(id.to_owned(), async move {
            let (device, precision) = request.as_ref();
            finder
                .draw(device, *precision)
                .await
                .map(|map| Arc::new(map.full.png))
        })
        .await;
    match drawn {
        Ok(png) => (
            [
                (header::CONTENT_TYPE, "image/png"),
                (header::CACHE_CONTROL, "private, max-age=3600"),
            ],
            png.as_ref().clone(),
        )
            .into_response(),
        Err(err) => error(StatusCode::BAD_GATEWAY, err.to_string()),
    }
}

/// `POST /webhooks/webex`: checks the delivery and answers at once; the work happens in a task.
async fn webex_webhook(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(bot) = &state.bot else {
        return error(
            StatusCode::NOT_FOUND,
            "the Webex bot is not configured".to_owned(),
        );
    };
    let signature = headers
        .get(whereis_webex::SIGNATURE_HEADER)
        .and_then(|value| value.to_str().ok());
    match bot.intake(&body, signature).await {
        Intake::Unauthorized => {
            tracing::warn!("webhook with a missing or wrong signature refused");
            StatusCode::UNAUTHORIZED.into_response()
        }
        Intake::Malformed(reason) => error(StatusCode::BAD_REQUEST, reason),
        Intake::Ignored(reason) => {
            tracing::debug!(reason, "webhook ignored");
            StatusCode::OK.into_response()
        }
        Intake::Busy => {
            tracing::warn!("bot work queue full: webhook refused with 503 (Webex will retry)");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(
                    header::RETRY_AFTER,
                    crate::chat::BUSY_RETRY_AFTER_SECONDS.to_string(),
                )],
            )
                .into_response()
        }
        Intake::Accepted(job) => {
            bot.spawn(job);
            StatusCode::OK.into_response()
        }
    }
}

/// Finds the request's requester (see [`Auth`]) for the handlers, or answers 401 (503 when tokens
/// cannot be checked).
pub(crate) async fn identify(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip());
    match state.auth.requester(request.headers(), peer).await {
        Ok(requester) => {
            request.extensions_mut().insert(requester);
            next.run(request).await
        }
        Err(AuthError::Store(err)) => {
            crate::privacy::store_error(&err);
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                AuthError::Store(err).to_string(),
            )
        }
        Err(err) => {
            let mut response = error(StatusCode::UNAUTHORIZED, err.to_string());
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"whereis\""),
            );
            response
        }
    }
}

/// The status and body of a failed action on the requester's own record.
pub(crate) fn self_service_error(err: SelfServiceError) -> Response {
    let status = match &err {
        SelfServiceError::Identity(IdentityError::DirectoryUnavailable(_))
        | SelfServiceError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        SelfServiceError::Identity(_) => StatusCode::FORBIDDEN,
    };
    error(status, err.to_string())
}

/// `POST /api/v1/me/optout`: the requester (by whole email) stops being locatable.
async fn me_opt_out(
    State(state): State<AppState>,
    Extension(requester): Extension<Requester>,
) -> Response {
    match state.finder.opt_out(&requester).await {
        Ok(username) => {
            Json(serde_json::json!({"username": username, "opted_out": true})).into_response()
        }
        Err(err) => self_service_error(err),
    }
}

/// `POST /api/v1/me/optin`: the requester is locatable again.
async fn me_opt_in(
    State(state): State<AppState>,
    Extension(requester): Extension<Requester>,
) -> Response {
    match state.finder.opt_in(&requester).await {
        Ok(username) => {
            Json(serde_json::json!({"username": username, "opted_out": false})).into_response()
        }
        Err(err) => self_service_error(err),
    }
}

/// `GET /api/v1/me/lookups`: who looked for the requester in the last 30 days.
async fn me_lookups(
    State(state): State<AppState>,
    Extension(requester): Extension<Requester>,
) -> Response {
    match state.finder.who_looked(&requester).await {
        Ok((username, entries)) => Json(serde_json::json!({
            "username": username,
            "lookups": entries.iter().map(|entry| serde_json::json!({
                "at": entry.at,
                "requester": entry.requester,
                "channel": entry.channel,
                "outcome": entry.outcome.as_str(),
                "precision": entry.precision,
            })).collect::<Vec<_>>(),
        }))
        .into_response(),
        Err(err) => self_service_error(err),
    }
}

/// `GET /healthz`: the process is up.
async fn healthz() -> &'static str {
    "ok\n"
}
