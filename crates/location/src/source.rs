//! Location sources: the [`LocationSource`] trait and [`HttpSource`], the real HTTP client for CMX v3
//! (with v2 fallback), CMX v2 and MSE servers.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::{header, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{Mutex, RwLock};

use crate::model::{Api, Device, FloorPlan, Hierarchy};
use crate::wire::maps::{self, CatalogFloor};
use crate::wire::{cmx_v2, cmx_v3, mse, ParseError, Parsed, RecordError};

/// A password or token, held in a [`SecretString`] (zeroed on drop): `Debug` prints only a
/// redaction marker, whatever the length, and there is no `Display`.
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(SecretString::from(value.into()))
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// HTTP basic-auth credentials.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password.
    pub password: Secret,
}

/// Which protocol a source speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// CMX 10.x: Location API v3, falling back to v2 when the server has no v3 API.
    Cmx,
    /// CMX 10.x, Location API v2 only.
    CmxV2,
    /// Legacy MSE 8.x Context Aware API.
    Mse,
}

/// Everything needed to talk to one location server.
#[derive(Debug, Clone)]
pub struct SourceSettings {
    /// Name used in answers, errors and logs.
    pub name: String,
    /// Protocol.
    pub kind: SourceKind,
    /// Base URL, e.g. `https://cmx.example.com`.
    pub url: String,
    /// Basic-auth credentials.
    pub credentials: Credentials,
    /// Separate credentials for the CMX v3 API, when the server has them.
    pub v3_credentials: Option<Credentials>,
    /// Extra PEM trust roots for this server.
    pub ca_file: Option<PathBuf>,
    /// Skip TLS certificate verification (explicit; logged as a warning).
    pub insecure_skip_tls_verify: bool,
    /// Lower wins when two sources see the same device.
    pub priority: i32,
    /// Timeout of each HTTP request.
    pub timeout: Duration,
    /// Timeout of a floor image download (images are large).
    pub image_timeout: Duration,
    /// How connections leave the machine (direct, or through the corporate proxy).
    pub network: whereis_net::Network,
}

/// Why a source could not answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SourceError {
    /// The source could not be set up (bad URL, unreadable CA file, …).
    #[error("{0}")]
    Setup(String),
    /// No complete answer within the request timeout.
    #[error("timed out after {0} ms")]
    Timeout(u128),
    /// The lookup's overall deadline passed first.
    #[error("no answer within the {0} ms lookup deadline")]
    Deadline(u128),
    /// No connection (refused, DNS, TLS handshake).
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The server refused the credentials.
    #[error("credentials rejected (HTTP {0})")]
    Unauthorized(u16),
    /// Any other unexpected HTTP status.
    #[error("HTTP {0}")]
    Status(String),
    /// The connection broke while the answer was being read.
    #[error("answer cut off: {0}")]
    Truncated(String),
    /// The answer was too large to be a client list.
    #[error("answer larger than {0} bytes")]
    TooLarge(usize),
    /// Other transport failure.
    #[error("request failed: {0}")]
    Transport(String),
    /// The body could not be read as the protocol's answer.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// A value cannot be sent: it would name another resource in the URL (e.g. `..`).
    #[error("{0}")]
    Invalid(String),
    /// The server (or this kind of source) has no such API, e.g. no client list (404).
    #[error("not supported: {0}")]
    Unsupported(String),
    /// A client list went on past the page limit: rather no answer than a silently cut one.
    #[error("client list longer than {pages} pages of {page_size}; not read further")]
    TooManyPages {
        /// The page limit.
        pages: usize,
        /// Clients asked for per page.
        page_size: usize,
    },
}

impl SourceError {
    /// A short, stable name of the kind of failure, as the `kind` label of
    /// `whereis_source_errors_total` names it: `setup`, `timeout`, `deadline`, `connect`,
    /// `unauthorized`, `status`, `truncated`, `too_large`, `transport`, `parse`, `invalid`,
    /// `unsupported` or `too_many_pages`.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceError::Setup(_) => "setup",
            SourceError::Timeout(_) => "timeout",
            SourceError::Deadline(_) => "deadline",
            SourceError::Connect(_) => "connect",
            SourceError::Unauthorized(_) => "unauthorized",
            SourceError::Status(_) => "status",
            SourceError::Truncated(_) => "truncated",
            SourceError::TooLarge(_) => "too_large",
            SourceError::Transport(_) => "transport",
            SourceError::Parse(_) => "parse",
            SourceError::Invalid(_) => "invalid",
            SourceError::Unsupported(_) => "unsupported",
            SourceError::TooManyPages { .. } => "too_many_pages",
        }
    }
}

/// Histogram of the time from sending a request to a source to having its whole answer (or its
/// failure), by `source` and `api`.
pub const REQUEST_DURATION_METRIC: &str = "whereis_source_request_duration_seconds";
/// Counter of source failures, by `source` and `kind` ([`SourceError::kind`]); each failed lookup,
/// image download, probe and map configuration fetch counts once.
pub const ERRORS_METRIC: &str = "whereis_source_errors_total";

/// What a request to a source asks for: the `api` label of [`REQUEST_DURATION_METRIC`].
#[derive(Debug, Clone, Copy)]
enum Endpoint {
    CmxV3,
    CmxV2,
    Mse,
    Maps,
    Image,
}

impl Endpoint {
    fn label(self) -> &'static str {
        match self {
            Endpoint::CmxV3 => "cmx-v3",
            Endpoint::CmxV2 => "cmx-v2",
            Endpoint::Mse => "mse",
            Endpoint::Maps => "maps",
            Endpoint::Image => "image",
        }
    }
}

/// What one source said about one identity.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceAnswer {
    /// Devices found (the Locator tags them with the source's name and priority).
    pub devices: Vec<Device>,
    /// Records the server sent that could not be used.
    pub rejected: Vec<RecordError>,
}

/// What a probe of a source found.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// The API that answered.
    pub api: Api,
    /// A short human description ("12 floors in the map configuration").
    pub detail: String,
}

/// How client lists are read: clients per page, and the most pages read before giving up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListPaging {
    /// Clients asked for per page (1 to 1000).
    pub page_size: usize,
    /// Pages read at most; a longer list is a [`SourceError::TooManyPages`].
    pub max_pages: usize,
}

impl Default for ListPaging {
    fn default() -> ListPaging {
        ListPaging {
            page_size: LIST_PAGE_SIZE,
            max_pages: LIST_MAX_PAGES,
        }
    }
}

/// A server that can locate the devices of an 802.1X identity.
pub trait LocationSource: Send + Sync {
    /// Configured name.
    fn name(&self) -> &str;
    /// Lower wins when two sources see the same device.
    fn priority(&self) -> i32;
    /// The devices registered to `identity` (exactly as the server knows it, e.g. `CORP\jdoe`).
    fn locate<'a>(&'a self, identity: &'a str) -> BoxFuture<'a, Result<SourceAnswer, SourceError>>;
    /// Checks that the server is reachable, accepts the credentials, and which API it speaks.
    fn probe(&self) -> BoxFuture<'_, Result<Probe, SourceError>>;
    /// Every device the server currently places in `building` (the building part of the map
    /// hierarchy, compared trimmed and ignoring case), each with the identity the server knows it
    /// by, if any. A source without a client list answers [`SourceError::Unsupported`].
    fn list_building<'a>(
        &'a self,
        building: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Device>, SourceError>> {
        Box::pin(async move {
            Err(SourceError::Unsupported(format!(
                "{} cannot list the clients of a building (asked for {:?})",
                self.name(),
                building.chars().take(64).collect::<String>()
            )))
        })
    }
    /// Downloads a floor image (PNG or JPEG bytes) by the name the server gave for the floor.
    fn floor_image<'a>(
        &'a self,
        image_name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<u8>, SourceError>> {
        Box::pin(async move {
            Err(SourceError::Status(format!(
                "{} serves no floor images (asked for {image_name:?})",
                self.name()
            )))
        })
    }
}

/// Largest answer body accepted: a client list for one user is small; a map image is not fetched here.
const MAX_BODY: usize = 32 * 1024 * 1024;
/// Largest floor image accepted (real plans are a few MB; 10,000 px PNGs can reach tens of MB).
pub(crate) const MAX_IMAGE_BODY: usize = 128 * 1024 * 1024;
/// Path prefix of CMX floor images.
pub const CMX_IMAGE_PATH: &str = "/api/config/v1/maps/imagesource/";
/// Path prefix of MSE floor images.
pub const MSE_IMAGE_PATH: &str = "/api/contextaware/v1/maps/imagesource/";
/// The catalog is refetched for an unknown floor at most this often.
const CATALOG_REFRESH: Duration = Duration::from_secs(60);
/// Clients asked for per page of a client list (the MSE list accepts at most 1000).
pub const LIST_PAGE_SIZE: usize = 1000;
/// Pages (or v3 floor queries) read at most for one building: past this the list is refused,
/// never silently cut.
pub const LIST_MAX_PAGES: usize = 50;
/// v3 floor queries of one building on their way at once.
const FLOOR_QUERIES_AT_ONCE: usize = 4;
/// Identity used by probes: never a real user.
const PROBE_IDENTITY: &str = "whereis-probe";
/// Characters kept as they are in a path segment; everything else is percent-encoded (`\` → `%5C`).
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

const V3_UNKNOWN: u8 = 0;
const V3_PRESENT: u8 = 1;
const V3_ABSENT: u8 = 2;

enum Fetched {
    Body(Vec<u8>),
    Empty,
    NotFound,
}

/// Floors from the map configuration, by id and by hierarchy.
#[derive(Default)]
struct FloorCatalog {
    by_id: HashMap<String, FloorPlan>,
    by_hierarchy: HashMap<String, FloorPlan>,
    fetched_at: Option<Instant>,
    /// Hierarchies the server could not describe, and when it was last asked.
    unknown: HashMap<String, Instant>,
}

impl FloorCatalog {
    fn find(&self, device: &Device) -> Option<FloorPlan> {
        device
            .floor_ref_id
            .as_ref()
            .and_then(|id| self.by_id.get(id))
            .or_else(|| self.by_hierarchy.get(&hierarchy_key(&device.hierarchy)))
            .cloned()
    }

    /// The floor ids of `building` (a [`building_key`]); `None` when the catalog knows no floor of
    /// it, or one of its floors has no id (its clients can then only be found in the whole list).
    fn building_floor_ids(&self, building: &str) -> Option<Vec<String>> {
        let mut ids: Vec<String> = Vec::new();
        for (hierarchy, plan) in &self.by_hierarchy {
            if Hierarchy::parse(hierarchy).building.as_deref() != Some(building) {
                continue;
            }
            let id = plan.floor_ref_id.clone()?;
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        (!ids.is_empty()).then_some(ids)
    }

    fn insert(&mut self, floor: CatalogFloor) {
        if let Some(id) = &floor.plan.floor_ref_id {
            self.by_id.insert(id.clone(), floor.plan.clone());
        }
        self.by_hierarchy
            .insert(hierarchy_key(&floor.hierarchy), floor.plan);
    }
}

/// A building name as client lists compare it: trimmed, lower case.
fn building_key(name: &str) -> String {
    name.trim().to_lowercase()
}

/// Whether `device`'s map hierarchy places it in the building `key` (a [`building_key`]).
fn in_building(device: &Device, key: &str) -> bool {
    device
        .building
        .as_deref()
        .is_some_and(|name| building_key(name) == key)
}

/// What one page of a client list held.
struct ListedPage {
    /// Records on the page, usable or not.
    records: usize,
    /// Whether the page brought a MAC not seen on an earlier page.
    anything_new: bool,
}

/// The devices of one building gathered from a client list, one per MAC.
#[derive(Default)]
struct BuildingList {
    building: String,
    seen: HashSet<String>,
    devices: Vec<Device>,
    rejected: usize,
}

impl BuildingList {
    fn new(building: String) -> BuildingList {
        BuildingList {
            building,
            ..BuildingList::default()
        }
    }

    /// Keeps the page's devices that are in the building.
    fn add(&mut self, parsed: Parsed) -> ListedPage {
        let records = parsed.devices.len() + parsed.rejected.len();
        self.rejected += parsed.rejected.len();
        // A page of unusable records only is no sign of the end.
        let mut anything_new = parsed.devices.is_empty() && !parsed.rejected.is_empty();
        for device in parsed.devices {
            if self.seen.insert(device.mac.clone()) {
                anything_new = true;
                if in_building(&device, &self.building) {
                    self.devices.push(device);
                }
            }
        }
        ListedPage {
            records,
            anything_new,
        }
    }

    fn finish(self, source: &str) -> Vec<Device> {
        if self.rejected > 0 {
            tracing::debug!(
                source,
                rejected = self.rejected,
                "unusable records in a client list"
            );
        }
        self.devices
    }
}

fn hierarchy_key(hierarchy: &str) -> String {
    hierarchy
        .split('>')
        .map(|part| part.trim().to_lowercase())
        .collect::<Vec<_>>()
        .join(">")
}

/// A location server reached over HTTP(S), with its own connection pool.
pub struct HttpSource {
    settings: SourceSettings,
    base: String,
    client: reqwest::Client,
    v3_state: AtomicU8,
    catalog: RwLock<FloorCatalog>,
    catalog_refresh: Mutex<()>,
    list_paging: ListPaging,
}

impl fmt::Debug for HttpSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSource")
            .field("name", &self.settings.name)
            .field("url", &self.base)
            .finish_non_exhaustive()
    }
}

impl HttpSource {
    /// Builds the client: TLS verified against the system roots plus `ca_file`, unless verification is
    /// explicitly skipped (logged as a warning).
    pub fn new(settings: SourceSettings) -> Result<HttpSource, SourceError> {
        let base = settings.url.trim_end_matches('/').to_owned();
        let parsed = reqwest::Url::parse(&base)
            .map_err(|err| SourceError::Setup(format!("url {base:?}: {err}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(SourceError::Setup(format!(
                "url {base:?}: scheme must be http or https"
            )));
        }
        let client = http_client(
            &settings.name,
            &settings.network,
            settings.timeout,
            settings.ca_file.as_deref(),
            settings.insecure_skip_tls_verify,
        )?;
        let v3_state = match settings.kind {
            SourceKind::Cmx => V3_UNKNOWN,
            SourceKind::CmxV2 | SourceKind::Mse => V3_ABSENT,
        };
        Ok(HttpSource {
            settings,
            base,
            client,
            v3_state: AtomicU8::new(v3_state),
            catalog: RwLock::new(FloorCatalog::default()),
            catalog_refresh: Mutex::new(()),
            list_paging: ListPaging::default(),
        })
    }

    /// Reads client lists with `paging` instead of [`ListPaging::default`] (page size kept within
    /// 1–1000, at least one page).
    pub fn with_list_paging(mut self, paging: ListPaging) -> HttpSource {
        self.list_paging = ListPaging {
            page_size: paging.page_size.clamp(1, mse::MAX_PAGE_SIZE),
            max_pages: paging.max_pages.max(1),
        };
        self
    }

    /// The settings this source was built from.
    pub fn settings(&self) -> &SourceSettings {
        &self.settings
    }

    /// Whether this server is reached directly or through the proxy, and why.
    pub fn route(&self) -> whereis_net::Route {
        match reqwest::Url::parse(&self.base) {
            Ok(url) => self.settings.network.route(&url),
            Err(_) => whereis_net::Route::Direct {
                reason: whereis_net::DirectReason::NoProxy,
            },
        }
    }

    async fn get(
        &self,
        endpoint: Endpoint,
        path_and_query: &str,
        credentials: &Credentials,
    ) -> Result<Fetched, SourceError> {
        self.get_limited(
            endpoint,
            path_and_query,
            credentials,
            self.settings.timeout,
            MAX_BODY,
        )
        .await
    }

    /// One request, timed into [`REQUEST_DURATION_METRIC`] whatever its outcome.
    async fn get_limited(
        &self,
        endpoint: Endpoint,
        path_and_query: &str,
        credentials: &Credentials,
        timeout: Duration,
        max_body: usize,
    ) -> Result<Fetched, SourceError> {
        let started = Instant::now();
        let result = self
            .fetch(path_and_query, credentials, timeout, max_body)
            .await;
        metrics::histogram!(
            REQUEST_DURATION_METRIC,
            "source" => self.settings.name.clone(),
            "api" => endpoint.label(),
        )
        .record(started.elapsed());
        result
    }

    /// Counts `result`'s failure, if any, and passes it on.
    fn counted<T>(&self, result: Result<T, SourceError>) -> Result<T, SourceError> {
        counted(&self.settings.name, result)
    }

    async fn fetch(
        &self,
        path_and_query: &str,
        credentials: &Credentials,
        timeout: Duration,
        max_body: usize,
    ) -> Result<Fetched, SourceError> {
        let url = format!("{}{}", self.base, path_and_query);
        let response = self
            .client
            .get(&url)
            .timeout(timeout)
            .basic_auth(&credentials.username, Some(credentials.password.expose()))
            .header(header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|err| transport_error(&err, timeout))?;
        match response.status() {
            StatusCode::NO_CONTENT => return Ok(Fetched::Empty),
            StatusCode::NOT_FOUND => return Ok(Fetched::NotFound),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Err(SourceError::Unauthorized(response.status().as_u16()))
            }
            status if !status.is_success() => return Err(SourceError::Status(status.to_string())),
            _ => {}
        }
        read_body(response, max_body, timeout)
            .await
            .map(Fetched::Body)
    }

    fn client_query(path: &str, identity: &str) -> String {
        Self::query(path, &[("username", identity)])
    }

    /// `path?name=value&…`, each value form-encoded.
    fn query(path: &str, params: &[(&str, &str)]) -> String {
        let query: String = reqwest::Url::parse_with_params("http://x/", params)
            .ok()
            .and_then(|url| url.query().map(str::to_owned))
            .unwrap_or_default();
        format!("{path}?{query}")
    }

    fn v3_credentials(&self) -> &Credentials {
        self.settings
            .v3_credentials
            .as_ref()
            .unwrap_or(&self.settings.credentials)
    }

    async fn locate_cmx(&self, identity: &str) -> Result<Parsed, SourceError> {
        if self.v3_state.load(Ordering::Relaxed) != V3_ABSENT {
            let path = Self::client_query(cmx_v3::CLIENTS_PATH, identity);
            match self
                .get(Endpoint::CmxV3, &path, self.v3_credentials())
                .await?
            {
                Fetched::NotFound => {
                    if self.v3_state.swap(V3_ABSENT, Ordering::Relaxed) != V3_ABSENT {
                        tracing::info!(source = %self.settings.name, "no CMX v3 API (404): using v2 from now on");
                    }
                }
                fetched => {
                    self.v3_state.store(V3_PRESENT, Ordering::Relaxed);
                    let mut parsed = match fetched {
                        Fetched::Body(body) => cmx_v3::parse(&body, chrono::Utc::now())?,
                        _ => Parsed::default(),
                    };
                    self.resolve_floors(&mut parsed.devices).await;
                    return Ok(parsed);
                }
            }
        }
        self.locate_cmx_v2(identity).await
    }

    async fn locate_cmx_v2(&self, identity: &str) -> Result<Parsed, SourceError> {
        let path = Self::client_query(cmx_v2::CLIENTS_PATH, identity);
        match self
            .get(Endpoint::CmxV2, &path, &self.settings.credentials)
            .await?
        {
            Fetched::Body(body) => Ok(cmx_v2::parse(&body)?),
            Fetched::Empty => Ok(Parsed::default()),
            Fetched::NotFound => Err(SourceError::Status(
                "404 Not Found on the CMX v2 client API (is this a CMX server?)".to_owned(),
            )),
        }
    }

    async fn locate_mse(&self, identity: &str) -> Result<Parsed, SourceError> {
        let path = format!("{}{}", mse::CLIENT_PATH, path_segment(identity)?);
        match self
            .get(Endpoint::Mse, &path, &self.settings.credentials)
            .await?
        {
            Fetched::Body(body) => Ok(mse::parse(&body)?),
            // MSE answers 404 (some versions 204) for an unknown user.
            Fetched::Empty | Fetched::NotFound => Ok(Parsed::default()),
        }
    }

    /// Gives v3 devices their floor dimensions and image from the map configuration, refreshing it
    /// when an unknown floor appears. A device whose floor stays unknown is still reported.
    async fn resolve_floors(&self, devices: &mut [Device]) {
        if devices.iter().all(|d| d.floor_plan.is_some()) {
            return;
        }
        if self.fill_from_catalog(devices).await {
            return;
        }
        self.refresh_catalog().await;
        if self.fill_from_catalog(devices).await {
            return;
        }
        for device in devices.iter_mut().filter(|d| d.floor_plan.is_none()) {
            let key = hierarchy_key(&device.hierarchy);
            let recently_missing = self
                .catalog
                .read()
                .await
                .unknown
                .get(&key)
                .is_some_and(|at| at.elapsed() < CATALOG_REFRESH);
            if recently_missing {
                continue;
            }
            let floor = self.fetch_floor_info(&device.hierarchy).await;
            let mut catalog = self.catalog.write().await;
            match floor {
                Some(floor) => {
                    device.set_floor_plan(floor.plan.clone());
                    catalog.insert(floor);
                }
                // Not asked again for a while: the device is still reported, without floor size.
                None => {
                    catalog.unknown.insert(key, Instant::now());
                }
            }
        }
    }

    /// Fills what the catalog knows; true when every device has a floor plan.
    async fn fill_from_catalog(&self, devices: &mut [Device]) -> bool {
        let catalog = self.catalog.read().await;
        let mut complete = true;
        for device in devices.iter_mut().filter(|d| d.floor_plan.is_none()) {
            match catalog.find(device) {
                Some(plan) => device.set_floor_plan(plan),
                None => complete = false,
            }
        }
        complete
    }

    async fn refresh_catalog(&self) {
        // One refresh at a time; whoever waited here finds the catalog fresh and skips its own.
        let _single_flight = self.catalog_refresh.lock().await;
        let fresh = self
            .catalog
            .read()
            .await
            .fetched_at
            .is_some_and(|at| at.elapsed() < CATALOG_REFRESH);
        if fresh {
            return;
        }
        let fetched = self
            .get(Endpoint::Maps, maps::MAPS_PATH, &self.settings.credentials)
            .await;
        let result = self.counted(match fetched {
            Ok(Fetched::Body(body)) => maps::parse_catalog(&body).map_err(SourceError::from),
            Ok(_) => Ok(Vec::new()),
            Err(err) => Err(err),
        });
        let mut catalog = self.catalog.write().await;
        catalog.fetched_at = Some(Instant::now());
        match result {
            Ok(floors) => {
                tracing::debug!(source = %self.settings.name, floors = floors.len(), "map configuration loaded");
                for floor in floors {
                    catalog.insert(floor);
                }
            }
            Err(err) => {
                tracing::warn!(source = %self.settings.name, error = %err, "map configuration unavailable");
            }
        }
    }

    async fn fetch_floor_info(&self, hierarchy: &str) -> Option<CatalogFloor> {
        let names: Vec<&str> = hierarchy.split('>').map(str::trim).collect();
        if names.len() != 3 {
            return None;
        }
        let segments: Vec<String> = names
            .iter()
            .map(|name| path_segment(name))
            .collect::<Result<_, _>>()
            .ok()?;
        let path = format!("{}{}", maps::MAP_INFO_PATH, segments.join("/"));
        let fetched = self
            .get(Endpoint::Maps, &path, &self.settings.credentials)
            .await;
        // A floor the server cannot describe is no failure; a broken answer is.
        let floor = self.counted(match fetched {
            Ok(Fetched::Body(body)) => {
                maps::parse_floor_info(&body, hierarchy).map_err(SourceError::from)
            }
            Ok(_) => Ok(None),
            Err(err) => Err(err),
        });
        floor.ok().flatten()
    }

    async fn probe_cmx(&self) -> Result<Probe, SourceError> {
        if self.settings.kind == SourceKind::Cmx {
            let path = Self::client_query(cmx_v3::CLIENTS_PATH, PROBE_IDENTITY);
            if !matches!(
                self.get(Endpoint::CmxV3, &path, self.v3_credentials())
                    .await?,
                Fetched::NotFound
            ) {
                self.v3_state.store(V3_PRESENT, Ordering::Relaxed);
                let floors = match self
                    .get(Endpoint::Maps, maps::MAPS_PATH, &self.settings.credentials)
                    .await?
                {
                    Fetched::Body(body) => maps::parse_catalog(&body)?.len(),
                    _ => 0,
                };
                return Ok(Probe {
                    api: Api::CmxV3,
                    detail: format!(
                        "CMX Location API v3; {floors} floors in the map configuration"
                    ),
                });
            }
            self.v3_state.store(V3_ABSENT, Ordering::Relaxed);
        }
        let path = Self::client_query(cmx_v2::CLIENTS_PATH, PROBE_IDENTITY);
        match self
            .get(Endpoint::CmxV2, &path, &self.settings.credentials)
            .await?
        {
            Fetched::NotFound => Err(SourceError::Status(
                "404 Not Found on the CMX v2 client API (is this a CMX server?)".to_owned(),
            )),
            _ => Ok(Probe {
                api: Api::CmxV2,
                detail: "CMX Location API v2".to_owned(),
            }),
        }
    }

    /// The work of [`LocationSource::list_building`], which counts its failure.
    async fn list(&self, building: &str) -> Result<Vec<Device>, SourceError> {
        let key = building_key(building);
        if key.is_empty() {
            return Err(SourceError::Invalid("no building name given".to_owned()));
        }
        match self.settings.kind {
            SourceKind::Cmx => {
                if self.v3_state.load(Ordering::Relaxed) != V3_ABSENT {
                    if let Some(devices) = self.list_cmx_v3(&key).await? {
                        return Ok(devices);
                    }
                }
                self.list_cmx_v2(&key).await
            }
            SourceKind::CmxV2 => self.list_cmx_v2(&key).await,
            SourceKind::Mse => self.list_mse(&key).await,
        }
    }

    /// The building's clients through v3, which has no paging: one query per floor of the building
    /// (`floorRefId`, the ids from the map configuration), or the whole list when the map
    /// configuration does not know the building or the server refuses the filter (400). `None`
    /// when the server has no v3 API.
    async fn list_cmx_v3(&self, key: &str) -> Result<Option<Vec<Device>>, SourceError> {
        let mut floor_ids = self.catalog.read().await.building_floor_ids(key);
        if floor_ids.is_none() {
            self.refresh_catalog().await;
            floor_ids = self.catalog.read().await.building_floor_ids(key);
        }
        let whole_list = || vec![cmx_v3::CLIENTS_PATH.to_owned()];
        let answers = match floor_ids {
            Some(ids) if ids.len() > self.list_paging.max_pages => {
                return Err(SourceError::TooManyPages {
                    pages: self.list_paging.max_pages,
                    page_size: self.list_paging.page_size,
                })
            }
            Some(ids) => {
                let by_floor = ids
                    .iter()
                    .map(|id| Self::query(cmx_v3::CLIENTS_PATH, &[("floorRefId", id)]))
                    .collect();
                match self.v3_answers(by_floor).await {
                    Err(SourceError::Status(status)) if status.starts_with("400") => {
                        tracing::info!(source = %self.settings.name, "the CMX v3 API refused the floorRefId filter: reading the whole list");
                        self.v3_answers(whole_list()).await?
                    }
                    answers => answers?,
                }
            }
            None => self.v3_answers(whole_list()).await?,
        };
        let mut list = BuildingList::new(key.to_owned());
        let now = chrono::Utc::now();
        for answer in answers {
            match answer {
                Fetched::NotFound => {
                    if self.v3_state.swap(V3_ABSENT, Ordering::Relaxed) != V3_ABSENT {
                        tracing::info!(source = %self.settings.name, "no CMX v3 API (404): using v2 from now on");
                    }
                    return Ok(None);
                }
                Fetched::Empty => {}
                // A server that ignores the filter sends every client: only the building's are kept.
                Fetched::Body(body) => {
                    list.add(cmx_v3::parse(&body, now)?);
                }
            }
        }
        self.v3_state.store(V3_PRESENT, Ordering::Relaxed);
        let mut devices = list.finish(&self.settings.name);
        self.resolve_floors(&mut devices).await;
        Ok(Some(devices))
    }

    /// The answers to v3 client queries, a few on their way at once, in the order asked.
    async fn v3_answers(&self, queries: Vec<String>) -> Result<Vec<Fetched>, SourceError> {
        let credentials = self.v3_credentials();
        futures::stream::iter(queries)
            .map(|path| async move { self.get(Endpoint::CmxV3, &path, credentials).await })
            .buffered(FLOOR_QUERIES_AT_ONCE)
            .try_collect()
            .await
    }

    /// The building's clients through v2: every client, page by page (`page`, `pageSize`), kept
    /// when their map hierarchy names the building.
    async fn list_cmx_v2(&self, key: &str) -> Result<Vec<Device>, SourceError> {
        let ListPaging {
            page_size,
            max_pages,
        } = self.list_paging;
        let mut list = BuildingList::new(key.to_owned());
        // One page past the limit is asked for: it must be empty, or the list is too long.
        for page in 1..=max_pages + 1 {
            let path = Self::query(
                cmx_v2::CLIENTS_PATH,
                &[
                    ("page", &page.to_string()),
                    ("pageSize", &page_size.to_string()),
                ],
            );
            let parsed = match self
                .get(Endpoint::CmxV2, &path, &self.settings.credentials)
                .await?
            {
                Fetched::NotFound if page == 1 => {
                    return Err(SourceError::Unsupported(
                        "no CMX v2 client list (404 Not Found)".to_owned(),
                    ))
                }
                // Past the last page: 204 (some versions `[]`, or 404).
                Fetched::NotFound | Fetched::Empty => break,
                Fetched::Body(body) => cmx_v2::parse(&body)?,
            };
            let listed = list.add(parsed);
            // A short page need not be the last (the server may cap `pageSize`): the list ends
            // with an empty page, or with one that brings nothing new (a server that ignores
            // paging sends the same clients again).
            if listed.records == 0 || !listed.anything_new {
                break;
            }
            if page > max_pages {
                return Err(SourceError::TooManyPages {
                    pages: max_pages,
                    page_size,
                });
            }
        }
        Ok(list.finish(&self.settings.name))
    }

    /// The building's clients through the MSE list: page by page up to `Locations.totalPages`,
    /// kept when their map hierarchy names the building.
    async fn list_mse(&self, key: &str) -> Result<Vec<Device>, SourceError> {
        let ListPaging {
            page_size,
            max_pages,
        } = self.list_paging;
        let too_many = SourceError::TooManyPages {
            pages: max_pages,
            page_size,
        };
        let mut list = BuildingList::new(key.to_owned());
        for page in 1..=max_pages + 1 {
            let path = Self::query(
                mse::LIST_PATH,
                &[
                    ("page", &page.to_string()),
                    ("pageSize", &page_size.to_string()),
                ],
            );
            let answer = match self
                .get(Endpoint::Mse, &path, &self.settings.credentials)
                .await?
            {
                Fetched::NotFound if page == 1 => {
                    return Err(SourceError::Unsupported(
                        "no MSE client list (404 Not Found)".to_owned(),
                    ))
                }
                Fetched::NotFound | Fetched::Empty => break,
                Fetched::Body(body) => mse::parse_list_page(&body)?,
            };
            let total_pages = answer.total_pages;
            if total_pages.is_some_and(|total| total > max_pages as u64) {
                return Err(too_many);
            }
            let entries = answer.entries;
            let listed = list.add(answer.parsed);
            if entries == 0 || !listed.anything_new {
                break;
            }
            if page > max_pages {
                return Err(too_many);
            }
            // `totalPages` says where the list ends; without it, an empty page does.
            if total_pages.is_some_and(|total| page as u64 >= total) {
                break;
            }
        }
        Ok(list.finish(&self.settings.name))
    }

    /// The work of [`LocationSource::floor_image`], which counts its failure.
    async fn download_image(&self, image_name: &str) -> Result<Vec<u8>, SourceError> {
        let prefix = match self.settings.kind {
            SourceKind::Cmx | SourceKind::CmxV2 => CMX_IMAGE_PATH,
            SourceKind::Mse => MSE_IMAGE_PATH,
        };
        let path = format!("{prefix}{}", path_segment(image_name)?);
        let fetched = self
            .get_limited(
                Endpoint::Image,
                &path,
                &self.settings.credentials,
                self.settings.image_timeout,
                MAX_IMAGE_BODY,
            )
            .await?;
        match fetched {
            Fetched::Body(body) if !body.is_empty() => Ok(body),
            Fetched::NotFound => Err(SourceError::Status(format!(
                "404 Not Found: no floor image {image_name:?}"
            ))),
            _ => Err(SourceError::Status(format!(
                "empty answer for floor image {image_name:?}"
            ))),
        }
    }

    async fn probe_mse(&self) -> Result<Probe, SourceError> {
        let path = format!("{}{}", mse::CLIENT_PATH, PROBE_IDENTITY);
        self.get(Endpoint::Mse, &path, &self.settings.credentials)
            .await?;
        Ok(Probe {
            api: Api::Mse,
            detail: "MSE Context Aware API".to_owned(),
        })
    }
}

impl LocationSource for HttpSource {
    fn name(&self) -> &str {
        &self.settings.name
    }

    fn priority(&self) -> i32 {
        self.settings.priority
    }

    fn locate<'a>(&'a self, identity: &'a str) -> BoxFuture<'a, Result<SourceAnswer, SourceError>> {
        Box::pin(async move {
            let parsed = self.counted(match self.settings.kind {
                SourceKind::Cmx | SourceKind::CmxV2 => self.locate_cmx(identity).await,
                SourceKind::Mse => self.locate_mse(identity).await,
            })?;
            Ok(SourceAnswer {
                devices: parsed.devices,
                rejected: parsed.rejected,
            })
        })
    }

    fn list_building<'a>(
        &'a self,
        building: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Device>, SourceError>> {
        Box::pin(async move { self.counted(self.list(building).await) })
    }

    fn floor_image<'a>(
        &'a self,
        image_name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<u8>, SourceError>> {
        Box::pin(async move { self.counted(self.download_image(image_name).await) })
    }

    fn probe(&self) -> BoxFuture<'_, Result<Probe, SourceError>> {
        Box::pin(async move {
            self.counted(match self.settings.kind {
                SourceKind::Cmx | SourceKind::CmxV2 => self.probe_cmx().await,
                SourceKind::Mse => self.probe_mse().await,
            })
        })
    }
}

/// Reads a response body of at most `max_body` bytes: a longer one is [`SourceError::TooLarge`], a
/// broken one [`SourceError::Truncated`].
pub(crate) async fn read_body(
    mut response: reqwest::Response,
    max_body: usize,
    timeout: Duration,
) -> Result<Vec<u8>, SourceError> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > max_body {
                    return Err(SourceError::TooLarge(max_body));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(err) if err.is_timeout() => return Err(SourceError::Timeout(timeout.as_millis())),
            Err(err) => return Err(SourceError::Truncated(error_chain(&err))),
        }
    }
}

/// `value` as one URL path segment, percent-encoded. Dot segments are refused: URL parsers resolve
/// them away (`…/imagesource/..` would ask for another resource), encoded or not.
pub(crate) fn path_segment(value: &str) -> Result<String, SourceError> {
    if value.is_empty() || crate::locator::names_a_dot_segment(value) {
        return Err(SourceError::Invalid(format!(
            "{:?} cannot be sent in a URL path",
            value.chars().take(64).collect::<String>()
        )));
    }
    Ok(utf8_percent_encode(value, PATH_SEGMENT).to_string())
}

pub(crate) fn transport_error(err: &reqwest::Error, timeout: Duration) -> SourceError {
    if err.is_timeout() {
        SourceError::Timeout(timeout.as_millis())
    } else if err.is_connect() {
        // The root cause says it best ("Connection refused", "invalid peer certificate: UnknownIssuer").
        SourceError::Connect(root_cause(err))
    } else {
        SourceError::Transport(error_chain(err))
    }
}

/// The innermost error of a chain.
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}

/// The error and its causes in one line, without the URL (which would repeat the username).
/// The HTTP client of one server: the network's route (proxy or direct), rustls, the extra trust
/// roots of `ca_file`, and certificate checks off only when `insecure_skip_tls_verify` says so
/// (logged as a warning).
pub(crate) fn http_client(
    name: &str,
    network: &whereis_net::Network,
    timeout: Duration,
    ca_file: Option<&std::path::Path>,
    insecure_skip_tls_verify: bool,
) -> Result<reqwest::Client, SourceError> {
    let mut builder = network
        .http_client_builder()
        .use_rustls_tls()
        .user_agent(concat!("whereis/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(60));
    if let Some(path) = ca_file {
        let pem = std::fs::read(path)
            .map_err(|err| SourceError::Setup(format!("ca_file {}: {err}", path.display())))?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|err| SourceError::Setup(format!("ca_file {}: {err}", path.display())))?;
        if certificates.is_empty() {
            return Err(SourceError::Setup(format!(
                "ca_file {}: no PEM certificate in the file",
                path.display()
            )));
        }
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    if insecure_skip_tls_verify {
        tracing::warn!(
            source = %name,
            "TLS certificate verification is OFF for this source (insecure_skip_tls_verify = true)"
        );
        builder = builder.danger_accept_invalid_certs(true);
    }
    builder
        .build()
        .map_err(|err| SourceError::Setup(error_chain(&err)))
}

/// Counts a failure of `source` into [`ERRORS_METRIC`], by kind.
pub(crate) fn count_error(source: &str, err: &SourceError) {
    metrics::counter!(
        ERRORS_METRIC,
        "source" => source.to_owned(),
        "kind" => err.kind(),
    )
    .increment(1);
}

/// Counts `result`'s failure, if any, for `source`, and passes it on.
pub(crate) fn counted<T>(source: &str, result: Result<T, SourceError>) -> Result<T, SourceError> {
    if let Err(err) = &result {
        count_error(source, err);
    }
    result
}

pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        let text = e.to_string();
        let text = match text.find(" for url (") {
            Some(i) => text[..i].to_owned(),
            None => text,
        };
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let credentials = Credentials {
            username: "api".into(),
            password: Secret::new("hunter2"),
        };
        assert!(!format!("{credentials:?}").contains("hunter2"));
    }

    #[test]
    fn backslash_is_encoded_in_query_and_path() {
        assert_eq!(
            HttpSource::client_query("/q", "CORP\\jdoe"),
            "/q?username=CORP%5Cjdoe"
        );
        assert_eq!(
            utf8_percent_encode("CORP\\j doe", PATH_SEGMENT).to_string(),
            "CORP%5Cj%20doe"
        );
    }

    #[test]
    fn dot_segments_never_reach_a_path() {
        for bad in [".", "..", "%2e%2E", "．．", "CORP\\..", ""] {
            assert!(
                matches!(path_segment(bad), Err(SourceError::Invalid(_))),
                "{bad:?}"
            );
        }
        assert_eq!(path_segment("...").unwrap(), "...");
        assert_eq!(path_segment("a/../b").unwrap(), "a%2F..%2Fb");
        assert_eq!(path_segment("floor.png").unwrap(), "floor.png");
    }

    #[test]
    fn hierarchy_keys_ignore_case_and_spacing() {
        assert_eq!(
            hierarchy_key("HQ > Building 5>Level 3"),
            "hq>building 5>level 3"
        );
    }

    #[test]
    fn bad_settings_are_setup_errors() {
        let settings = |url: &str, ca: Option<&str>| SourceSettings {
            name: "s".into(),
            kind: SourceKind::Cmx,
            url: url.into(),
            credentials: Credentials {
                username: "u".into(),
                password: Secret::new("p"),
            },
            v3_credentials: None,
            ca_file: ca.map(PathBuf::from),
            insecure_skip_tls_verify: false,
            priority: 0,
            timeout: Duration::from_secs(1),
            image_timeout: Duration::from_secs(1),
            network: whereis_net::Network::direct(),
        };
        assert!(matches!(
            HttpSource::new(settings("ftp://x", None)),
            Err(SourceError::Setup(_))
        ));
        assert!(matches!(
            HttpSource::new(settings("not a url", None)),
            Err(SourceError::Setup(_))
        ));
        let err = HttpSource::new(settings("https://x", Some("/nonexistent/ca.pem"))).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }

    #[test]
    fn a_request_records_its_duration_and_its_failure() {
        use metrics_util::debugging::{DebugValue, DebuggingRecorder};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let result = metrics::with_local_recorder(&recorder, || {
            // A current-thread runtime keeps every await on this thread, where the recorder is.
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                let url = format!("http://{}", listener.local_addr().expect("address"));
                tokio::spawn(async move {
                    // Every request is refused: wrong credentials.
                    while let Ok((mut stream, _)) = listener.accept().await {
                        let mut request = [0u8; 4096];
                        let _ = stream.read(&mut request).await;
                        let _ = stream
                            .write_all(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                            .await;
                    }
                });
                let source = HttpSource::new(SourceSettings {
                    name: "mse-hq".into(),
                    kind: SourceKind::Mse,
                    url,
                    credentials: Credentials {
                        username: "u".into(),
                        password: Secret::new("p"),
                    },
                    v3_credentials: None,
                    ca_file: None,
                    insecure_skip_tls_verify: false,
                    priority: 0,
                    timeout: Duration::from_secs(5),
                    image_timeout: Duration::from_secs(5),
                    network: whereis_net::Network::direct(),
                })
                .expect("source");
                source.locate("jdoe").await
            })
        });
        assert_eq!(result, Err(SourceError::Unauthorized(401)));
        let mut durations = 0;
        let mut errors = 0;
        for (key, _, _, value) in snapshotter.snapshot().into_vec() {
            let key = key.key();
            let labels: Vec<(&str, &str)> = key.labels().map(|l| (l.key(), l.value())).collect();
            match (key.name(), value) {
                (REQUEST_DURATION_METRIC, DebugValue::Histogram(samples)) => {
                    assert_eq!(labels, [("source", "mse-hq"), ("api", "mse")]);
                    durations += samples.len();
                }
                (ERRORS_METRIC, DebugValue::Counter(n)) => {
                    assert_eq!(labels, [("source", "mse-hq"), ("kind", "unauthorized")]);
                    errors += n;
                }
                (name, _) => panic!("unexpected series {name}"),
            }
        }
        assert_eq!((durations, errors), (1, 1));
    }

    #[test]
    fn every_error_has_a_kind_label() {
        let kinds = [
            SourceError::Setup("x".into()),
            SourceError::Timeout(1),
            SourceError::Deadline(1),
            SourceError::Connect("x".into()),
            SourceError::Unauthorized(401),
            SourceError::Status("x".into()),
            SourceError::Truncated("x".into()),
            SourceError::TooLarge(1),
            SourceError::Transport("x".into()),
            SourceError::Parse(ParseError::Json("x".into())),
            SourceError::Invalid("x".into()),
            SourceError::Unsupported("x".into()),
            SourceError::TooManyPages {
                pages: 1,
                page_size: 1,
            },
        ]
        .map(|err| err.kind());
        let mut unique = kinds.to_vec();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), kinds.len());
        assert!(kinds
            .iter()
            .all(|k| k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
    }
}
