//! Cisco Spaces: the Firehose stream, map metadata and floor images.
//!
//! [`SpacesClient::run_firehose`] keeps one `GET /api/partners/v1/firehose/events` open: NDJSON
//! records, deduplicated by `recordUid`, resumed after a break with `fromTimestamp`, watched for
//! silence (Spaces sends a `KEEP_ALIVE` about every 15 s). Everything the stream sends is untrusted:
//! lines, ids and maps are bounded in size and number.
//!
//! Coordinates: whether Spaces positions are in feet or in image pixels is not confirmed, so the
//! unit is a per-source setting ([`SpacesClient::with_unit`], feet by default); map metadata's
//! `dimension` is read in that same unit. As PlaceOS reads it, `dimension.length` is the extent
//! along x and `dimension.width` the extent along y.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use reqwest::{header, StatusCode};
use serde::Deserialize;
use tokio::sync::mpsc;

use super::LiveSettings;
use crate::model::{Api, FloorPlan, Unit};
use crate::source::{path_segment, transport_error, Probe, SourceError, MAX_IMAGE_BODY};
use crate::wire::spaces::{parse_record, FirehoseEvent, FirehoseRecord};
use crate::wire::ParseError;

/// The stream's path.
pub const FIREHOSE_PATH: &str = "/api/partners/v1/firehose/events";
/// Map metadata is `{MAPS_PATH}/{mapId}`, its image `{MAPS_PATH}/{mapId}/image`.
pub const MAPS_PATH: &str = "/api/partners/v1/maps";
/// Longest line read from the stream; a longer one is skipped (and counted).
pub const MAX_LINE: usize = 1024 * 1024;
/// Record uids remembered for deduplication.
pub const REMEMBERED_UIDS: usize = 100_000;
/// `locationId → mapId` pairs remembered to fill an empty `mapId`.
pub const REMEMBERED_LOCATIONS: usize = 10_000;
/// Largest map metadata answer accepted.
const MAX_MAP_INFO: usize = 1024 * 1024;
/// Floor plans cached per client.
const CACHED_PLANS: usize = 10_000;
/// Longest id kept in memory (location and map ids are short; anything longer is not kept).
const MAX_ID: usize = 256;
/// Longest wait a `Retry-After` can ask for.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// How the Firehose is read: the watchdog, the replay margin and the reconnect backoff.
#[derive(Debug, Clone, PartialEq)]
pub struct FirehoseOptions {
    /// No bytes for this long (Spaces sends a keep-alive about every 15 s): reconnect.
    pub silence: Duration,
    /// A reconnect asks for the records since the last one received minus this much.
    pub replay_margin: Duration,
    /// First reconnect delay bound (full jitter: a random wait up to the bound).
    pub backoff_min: Duration,
    /// The bound doubles per failed attempt up to this.
    pub backoff_max: Duration,
}

impl Default for FirehoseOptions {
    fn default() -> FirehoseOptions {
        FirehoseOptions {
            silence: Duration::from_secs(30),
            replay_margin: Duration::from_secs(60),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
        }
    }
}

/// Where a stream is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamState {
    /// Opening the connection.
    Connecting,
    /// Records flow.
    Connected,
    /// Between connections, after a failure.
    Waiting {
        /// Why the last connection ended.
        reason: String,
    },
    /// The key was refused: the stream stopped for good.
    Refused {
        /// What the service answered.
        reason: String,
    },
}

/// Live counters and state of one stream, shared with health checks and metrics while
/// [`SpacesClient::run_firehose`] runs. Counters are atomics; the state sits behind a lock held
/// only to copy it.
#[derive(Debug)]
pub struct FirehoseStatus {
    state: Mutex<(StreamState, Option<SystemTime>)>,
    records_seen: AtomicU64,
    duplicates_dropped: AtomicU64,
    no_map_dropped: AtomicU64,
    lines_skipped: AtomicU64,
    reconnects: AtomicU64,
    /// `i64::MIN`: none yet.
    last_record_ms: AtomicI64,
    /// Nanoseconds after `epoch` + 1; 0: never.
    last_activity: AtomicU64,
    epoch: Instant,
}

impl Default for FirehoseStatus {
    fn default() -> FirehoseStatus {
        FirehoseStatus {
            state: Mutex::new((StreamState::Connecting, None)),
            records_seen: AtomicU64::new(0),
            duplicates_dropped: AtomicU64::new(0),
            no_map_dropped: AtomicU64::new(0),
            lines_skipped: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            last_record_ms: AtomicI64::new(i64::MIN),
            last_activity: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }
}

impl FirehoseStatus {
    /// Where the stream is now.
    pub fn state(&self) -> StreamState {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .0
            .clone()
    }

    /// When the current connection was established (`None` when not connected).
    pub fn connected_since(&self) -> Option<SystemTime> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).1
    }

    /// Records received (keep-alives included, duplicates not).
    pub fn records_seen(&self) -> u64 {
        self.records_seen.load(Ordering::Relaxed)
    }

    /// Records dropped because their `recordUid` had been seen.
    pub fn duplicates_dropped(&self) -> u64 {
        self.duplicates_dropped.load(Ordering::Relaxed)
    }

    /// Location updates dropped: no `mapId`, and none learned for their location.
    pub fn no_map_dropped(&self) -> u64 {
        self.no_map_dropped.load(Ordering::Relaxed)
    }

    /// Lines that were not records (not JSON, wrong shape, longer than [`MAX_LINE`]).
    pub fn lines_skipped(&self) -> u64 {
        self.lines_skipped.load(Ordering::Relaxed)
    }

    /// Connections opened after the first.
    pub fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::Relaxed)
    }

    /// The newest `recordTimestamp` received (epoch ms).
    pub fn last_record_ms(&self) -> Option<i64> {
        let ms = self.last_record_ms.load(Ordering::Relaxed);
        (ms != i64::MIN).then_some(ms)
    }

    /// When the stream last delivered bytes.
    pub fn last_activity(&self) -> Option<Instant> {
        match self.last_activity.load(Ordering::Relaxed) {
            0 => None,
            nanos => self.epoch.checked_add(Duration::from_nanos(nanos - 1)),
        }
    }

    fn set_state(&self, state: StreamState) {
        let mut guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let since = match state {
            StreamState::Connected => Some(SystemTime::now()),
            _ => None,
        };
        *guard = (state, since);
    }

    fn touch(&self) {
        let nanos = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX - 1);
        self.last_activity.store(nanos + 1, Ordering::Relaxed);
    }

    fn saw_record(&self, timestamp_ms: i64) {
        self.records_seen.fetch_add(1, Ordering::Relaxed);
        self.last_record_ms
            .fetch_max(timestamp_ms, Ordering::Relaxed);
    }
}

/// The client of one Cisco Spaces tenant (`Debug` leaves the key out).
pub struct SpacesClient {
    settings: LiveSettings,
    base: String,
    client: reqwest::Client,
    unit: Unit,
    plans: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<FloorPlan>>>>>,
}

impl fmt::Debug for SpacesClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpacesClient")
            .field("name", &self.settings.name)
            .field("url", &self.base)
            .field("unit", &self.unit)
            .finish_non_exhaustive()
    }
}

/// How one connection of the stream ended.
enum Session {
    /// The receiver is gone: stop.
    Closed,
    /// 401/403: stop.
    Refused(u16),
    /// 429: wait this long (or the backoff) before the next attempt.
    RateLimited(Option<Duration>),
    /// Anything else: reconnect after the backoff.
    Ended { reason: String, delivered: bool },
}

impl SpacesClient {
    /// Builds the client (the URL must be http or https). Coordinates are read in feet unless
    /// [`SpacesClient::with_unit`] says otherwise.
    pub fn new(settings: LiveSettings) -> Result<SpacesClient, SourceError> {
        let base = settings.url.trim_end_matches('/').to_owned();
        let parsed = reqwest::Url::parse(&base)
            .map_err(|err| SourceError::Setup(format!("url {base:?}: {err}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(SourceError::Setup(format!(
                "url {base:?}: scheme must be http or https"
            )));
        }
        let client = settings.http_client()?;
        Ok(SpacesClient {
            settings,
            base,
            client,
            unit: Unit::Feet,
            plans: Mutex::new(HashMap::new()),
        })
    }

    /// Reads positions and map dimensions in `unit` (the tenant's unit is not on the wire).
    pub fn with_unit(mut self, unit: Unit) -> SpacesClient {
        self.unit = unit;
        self
    }

    /// The configured name of the source.
    pub fn name(&self) -> &str {
        &self.settings.name
    }

    /// The unit positions and map dimensions are read in.
    pub fn unit(&self) -> Unit {
        self.unit
    }

    fn counted<T>(&self, result: Result<T, SourceError>) -> Result<T, SourceError> {
        crate::source::counted(&self.settings.name, result)
    }

    /// Runs the Firehose until `out` is closed (→ `Ok`) or the key is refused
    /// (→ [`SourceError::Unauthorized`], at once: a wrong key stays wrong).
    ///
    /// Lines may be split across chunks; a line longer than [`MAX_LINE`] or that is no record is
    /// skipped and counted. Records seen before (the last [`REMEMBERED_UIDS`] uids) are dropped;
    /// keep-alives are swallowed (they only show the stream is alive) and so are event types other
    /// than location updates and exits. An update without `mapId` takes the map last seen for its
    /// `locationId`, or is dropped and counted. No bytes for `options.silence`: the connection is
    /// dropped and opened again. Reconnects wait a full-jitter exponential backoff (reset after a
    /// connection that delivered records), or what a 429's `Retry-After` asks (at most 10 min),
    /// and ask for the records since the newest received minus `options.replay_margin`; the first
    /// connection asks from `start_from` (`None`: only new records).
    pub async fn run_firehose(
        &self,
        start_from: Option<i64>,
        options: &FirehoseOptions,
        out: mpsc::Sender<FirehoseRecord>,
        status: &FirehoseStatus,
    ) -> Result<(), SourceError> {
        let mut memory = StreamMemory::default();
        let mut failures: u32 = 0;
        let mut first = true;
        loop {
            if out.is_closed() {
                return Ok(());
            }
            if !first {
                status.reconnects.fetch_add(1, Ordering::Relaxed);
            }
            first = false;
            status.set_state(StreamState::Connecting);
            let margin = i64::try_from(options.replay_margin.as_millis()).unwrap_or(i64::MAX);
            let from = match memory.last_record_ms {
                Some(last) => Some(last.saturating_sub(margin)),
                None => start_from,
            }
            // 0 would mean "latest only".
            .map(|ms| ms.max(1));
            let session = tokio::select! {
                session = self.session(from, options, &out, status, &mut memory) => session,
                () = out.closed() => Session::Closed,
            };
            let wait = match session {
                Session::Closed => {
                    status.set_state(StreamState::Waiting {
                        reason: "stopped".to_owned(),
                    });
                    return Ok(());
                }
                Session::Refused(code) => {
                    let err = SourceError::Unauthorized(code);
                    crate::source::count_error(&self.settings.name, &err);
                    tracing::error!(source = %self.settings.name, "Spaces Firehose: {err}; the stream stops");
                    status.set_state(StreamState::Refused {
                        reason: err.to_string(),
                    });
                    return Err(err);
                }
                Session::RateLimited(retry_after) => {
                    let wait = retry_after.unwrap_or_else(|| backoff(options, failures));
                    failures = failures.saturating_add(1);
                    tracing::warn!(source = %self.settings.name, wait_ms = wait.as_millis() as u64, "Spaces Firehose: HTTP 429");
                    status.set_state(StreamState::Waiting {
                        reason: "HTTP 429 Too Many Requests".to_owned(),
                    });
                    wait
                }
                Session::Ended { reason, delivered } => {
                    if delivered {
                        failures = 0;
                    }
                    let wait = backoff(options, failures);
                    failures = failures.saturating_add(1);
                    tracing::warn!(source = %self.settings.name, wait_ms = wait.as_millis() as u64, "Spaces Firehose: {reason}; reconnecting");
                    status.set_state(StreamState::Waiting { reason });
                    wait
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = out.closed() => return Ok(()),
            }
        }
    }

    /// Opens the stream (headers within the request timeout).
    async fn open_stream(&self, from: Option<i64>) -> Result<reqwest::Response, SourceError> {
        let url = match from {
            Some(ms) => format!("{}{FIREHOSE_PATH}?fromTimestamp={ms}", self.base),
            None => format!("{}{FIREHOSE_PATH}", self.base),
        };
        let timeout = self.settings.timeout;
        let request = self
            .client
            .get(&url)
            .header("X-API-KEY", self.settings.api_key.expose())
            .header(header::ACCEPT, "application/x-ndjson, application/json")
            .send();
        match tokio::time::timeout(timeout, request).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(err)) => Err(transport_error(&err, timeout)),
            Err(_) => Err(SourceError::Timeout(timeout.as_millis())),
        }
    }

    /// One connection: open, then read records until it breaks, falls silent or `out` closes.
    async fn session(
        &self,
        from: Option<i64>,
        options: &FirehoseOptions,
        out: &mpsc::Sender<FirehoseRecord>,
        status: &FirehoseStatus,
        memory: &mut StreamMemory,
    ) -> Session {
        let mut response = match self.open_stream(from).await {
            Ok(response) => response,
            Err(err) => {
                return Session::Ended {
                    reason: err.to_string(),
                    delivered: false,
                }
            }
        };
        match response.status() {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Session::Refused(response.status().as_u16())
            }
            StatusCode::TOO_MANY_REQUESTS => {
                return Session::RateLimited(retry_after(response.headers()))
            }
            code if !code.is_success() => {
                return Session::Ended {
                    reason: format!("HTTP {code}"),
                    delivered: false,
                }
            }
            _ => {}
        }
        status.set_state(StreamState::Connected);
        status.touch();
        let mut lines = LineSplitter::new(MAX_LINE);
        let mut delivered = false;
        loop {
            let chunk = match tokio::time::timeout(options.silence, response.chunk()).await {
                Err(_) => {
                    return Session::Ended {
                        reason: format!("no data for {} ms", options.silence.as_millis()),
                        delivered,
                    }
                }
                Ok(Ok(Some(chunk))) => chunk,
                Ok(Ok(None)) => {
                    return Session::Ended {
                        reason: "the stream ended".to_owned(),
                        delivered,
                    }
                }
                Ok(Err(err)) => {
                    return Session::Ended {
                        reason: SourceError::Truncated(crate::source::error_chain(&err))
                            .to_string(),
                        delivered,
                    }
                }
            };
            status.touch();
            let mut ready = Vec::new();
            lines.push(&chunk, |line| match line {
                Line::Complete(bytes) => match memory.accept(bytes, status) {
                    Ok(Some(record)) => ready.push(record),
                    Ok(None) => {}
                    Err(err) => {
                        status.lines_skipped.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(source = %self.settings.name, "Spaces Firehose: line skipped: {err}");
                    }
                },
                Line::TooLong => {
                    status.lines_skipped.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(source = %self.settings.name, "Spaces Firehose: line longer than {MAX_LINE} bytes skipped");
                }
            });
            for record in ready {
                delivered = true;
                if out.send(record).await.is_err() {
                    return Session::Closed;
                }
            }
        }
    }

    /// The floor plan of map `map_id` (`GET /api/partners/v1/maps/{mapId}`), cached per map; callers
    /// asking at once share one request; a failure is not cached.
    pub async fn floor_plan(&self, map_id: &str) -> Result<FloorPlan, SourceError> {
        let path = format!("{MAPS_PATH}/{}", path_segment(map_id)?);
        let slot = {
            let mut plans = self.plans.lock().unwrap_or_else(PoisonError::into_inner);
            if !plans.contains_key(map_id) && plans.len() >= CACHED_PLANS {
                // Map ids come from the stream: keep the cache bounded whatever it sends.
                plans.clear();
            }
            plans.entry(map_id.to_owned()).or_default().clone()
        };
        let mut plan = slot.lock().await;
        if let Some(plan) = plan.as_ref() {
            return Ok(plan.clone());
        }
        let fetched = self.counted(
            self.get_body(&path, self.settings.timeout, MAX_MAP_INFO)
                .await
                .and_then(|body| map_info(&body, map_id, self.unit)),
        )?;
        *plan = Some(fetched.clone());
        Ok(fetched)
    }

    /// The floor image of map `map_id` (`GET /api/partners/v1/maps/{mapId}/image`).
    pub async fn map_image(&self, map_id: &str) -> Result<Vec<u8>, SourceError> {
        let result = async {
            let path = format!("{MAPS_PATH}/{}/image", path_segment(map_id)?);
            let body = self
                .get_body(&path, self.settings.image_timeout, MAX_IMAGE_BODY)
                .await?;
            if body.is_empty() {
                return Err(SourceError::Status(format!(
                    "empty answer for the image of map {map_id:?}"
                )));
            }
            Ok(body)
        }
        .await;
        self.counted(result)
    }

    /// Whether the key is accepted: opens the stream, reads the status only, and drops it.
    pub async fn probe(&self) -> Result<Probe, SourceError> {
        let result = async {
            let response = self.open_stream(None).await?;
            match response.status() {
                code @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => {
                    Err(SourceError::Unauthorized(code.as_u16()))
                }
                code if !code.is_success() => Err(SourceError::Status(code.to_string())),
                _ => Ok(Probe {
                    api: Api::Spaces,
                    detail: "Firehose stream open with this API key".to_owned(),
                }),
            }
        }
        .await;
        self.counted(result)
    }

    /// One GET with the key, its body read to `max_body` bytes within `timeout`.
    async fn get_body(
        &self,
        path: &str,
        timeout: Duration,
        max_body: usize,
    ) -> Result<Vec<u8>, SourceError> {
        let url = format!("{}{path}", self.base);
        let mut response = self
            .client
            .get(&url)
            .timeout(timeout)
            .header("X-API-KEY", self.settings.api_key.expose())
            .send()
            .await
            .map_err(|err| transport_error(&err, timeout))?;
        match response.status() {
            code @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => {
                return Err(SourceError::Unauthorized(code.as_u16()))
            }
            code if !code.is_success() => return Err(SourceError::Status(code.to_string())),
            _ => {}
        }
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
                Err(err) if err.is_timeout() => {
                    return Err(SourceError::Timeout(timeout.as_millis()))
                }
                Err(err) => return Err(SourceError::Truncated(crate::source::error_chain(&err))),
            }
        }
    }
}

/// A random wait up to `backoff_min · 2^failures`, at most `backoff_max` ("full jitter").
fn backoff(options: &FirehoseOptions, failures: u32) -> Duration {
    let bound = options
        .backoff_min
        .saturating_mul(2u32.saturating_pow(failures.min(20)))
        .min(options.backoff_max);
    let nanos = u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(random_u64() % nanos.saturating_add(1))
}

/// A random number from the standard library's per-process random hash keys.
fn random_u64() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    RandomState::new().hash_one(nanos)
}

/// `Retry-After` in seconds, at most [`MAX_RETRY_AFTER`]; `None` when absent or not a number.
fn retry_after(headers: &header::HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER))
}

/// What a stream remembers across its connections.
struct StreamMemory {
    seen: UidWindow,
    maps: MapMemory,
    last_record_ms: Option<i64>,
}

impl Default for StreamMemory {
    fn default() -> StreamMemory {
        StreamMemory {
            seen: UidWindow::new(REMEMBERED_UIDS),
            maps: MapMemory::new(REMEMBERED_LOCATIONS),
            last_record_ms: None,
        }
    }
}

impl StreamMemory {
    /// A line of the stream: the record to pass on, `None` for one that is not passed on.
    fn accept(
        &mut self,
        line: &[u8],
        status: &FirehoseStatus,
    ) -> Result<Option<FirehoseRecord>, ParseError> {
        let mut record = parse_record(line)?;
        if !self.seen.insert(&record.uid) {
            status.duplicates_dropped.fetch_add(1, Ordering::Relaxed);
            return Ok(None);
        }
        status.saw_record(record.timestamp_ms);
        self.last_record_ms = Some(
            self.last_record_ms
                .map_or(record.timestamp_ms, |last| last.max(record.timestamp_ms)),
        );
        match &mut record.event {
            FirehoseEvent::KeepAlive | FirehoseEvent::Other(_) => return Ok(None),
            FirehoseEvent::Exit { .. } => {}
            FirehoseEvent::Location(update) => match (&update.map_id, &update.location_id) {
                (Some(map), Some(location)) => self.maps.learn(location, map),
                (Some(_), None) => {}
                (None, location) => match location.as_deref().and_then(|l| self.maps.map_of(l)) {
                    Some(map) => update.map_id = Some(map.to_owned()),
                    None => {
                        status.no_map_dropped.fetch_add(1, Ordering::Relaxed);
                        return Ok(None);
                    }
                },
            },
        }
        Ok(Some(record))
    }
}

/// The last `capacity` record uids, as keyed 64-bit hashes (a uid may be long; memory stays
/// `8 · capacity` bytes whatever the stream sends).
struct UidWindow {
    hasher: RandomState,
    set: HashSet<u64>,
    order: VecDeque<u64>,
    capacity: usize,
}

impl UidWindow {
    fn new(capacity: usize) -> UidWindow {
        UidWindow {
            hasher: RandomState::new(),
            set: HashSet::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// `false` when `uid` is among the remembered ones.
    fn insert(&mut self, uid: &str) -> bool {
        let key = self.hasher.hash_one(uid);
        if !self.set.insert(key) {
            return false;
        }
        self.order.push_back(key);
        if self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }
}

/// The map last seen for each location, for at most `capacity` locations (oldest forgotten).
struct MapMemory {
    maps: HashMap<String, String>,
    order: VecDeque<String>,
    capacity: usize,
}

impl MapMemory {
    fn new(capacity: usize) -> MapMemory {
        MapMemory {
            maps: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    fn learn(&mut self, location: &str, map: &str) {
        if location.len() > MAX_ID || map.len() > MAX_ID {
            return;
        }
        if let Some(known) = self.maps.get_mut(location) {
            if known != map {
                map.clone_into(known);
            }
            return;
        }
        self.maps.insert(location.to_owned(), map.to_owned());
        self.order.push_back(location.to_owned());
        if self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.maps.remove(&old);
            }
        }
    }

    fn map_of(&self, location: &str) -> Option<&str> {
        self.maps.get(location).map(String::as_str)
    }
}

/// One line out of the stream.
enum Line<'a> {
    /// A whole line, without its `\n` (and `\r`), not empty.
    Complete(&'a [u8]),
    /// A line longer than the limit (reported once, then skipped to its end).
    TooLong,
}

/// Splits a byte stream into lines whatever the chunking, holding at most `max` bytes.
struct LineSplitter {
    buffer: Vec<u8>,
    max: usize,
    skipping: bool,
}

impl LineSplitter {
    fn new(max: usize) -> LineSplitter {
        LineSplitter {
            buffer: Vec::new(),
            max,
            skipping: false,
        }
    }

    fn push(&mut self, mut chunk: &[u8], mut emit: impl FnMut(Line<'_>)) {
        while !chunk.is_empty() {
            let newline = chunk.iter().position(|&b| b == b'\n');
            let (part, rest, ends) = match newline {
                Some(i) => (&chunk[..i], &chunk[i + 1..], true),
                None => (chunk, &[][..], false),
            };
            chunk = rest;
            if self.skipping {
                if ends {
                    self.skipping = false;
                }
                continue;
            }
            if self.buffer.len() + part.len() > self.max {
                self.buffer.clear();
                emit(Line::TooLong);
                self.skipping = !ends;
                continue;
            }
            if !ends {
                self.buffer.extend_from_slice(part);
                continue;
            }
            let line: &[u8] = if self.buffer.is_empty() {
                part
            } else {
                self.buffer.extend_from_slice(part);
                &self.buffer
            };
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if !line.iter().all(u8::is_ascii_whitespace) {
                emit(Line::Complete(line));
            }
            self.buffer.clear();
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireMapInfo {
    dimension: WireDimension,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireDimension {
    length: f64,
    width: f64,
    #[serde(default)]
    offset_x: Option<f64>,
    #[serde(default)]
    offset_y: Option<f64>,
}

/// Map metadata as a [`FloorPlan`]: `dimension.length` along x, `dimension.width` along y.
fn map_info(body: &[u8], map_id: &str, unit: Unit) -> Result<FloorPlan, SourceError> {
    let info: WireMapInfo = serde_json::from_slice(body).map_err(|err| {
        if err.is_syntax() || err.is_eof() {
            ParseError::Json(err.to_string())
        } else {
            ParseError::Shape(format!("map metadata: {err}"))
        }
    })?;
    let d = info.dimension;
    if !(d.length.is_finite() && d.length > 0.0 && d.width.is_finite() && d.width > 0.0) {
        return Err(ParseError::Shape(format!(
            "map metadata: dimension {} × {} is not a floor",
            d.length, d.width
        ))
        .into());
    }
    let finite = |v: Option<f64>| v.filter(|v| v.is_finite()).unwrap_or(0.0);
    Ok(FloorPlan {
        floor_ref_id: Some(map_id.to_owned()),
        width: d.length,
        length: d.width,
        offset_x: finite(d.offset_x),
        offset_y: finite(d.offset_y),
        unit,
        image_name: Some(map_id.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn split_all(chunks: &[&[u8]], max: usize) -> Vec<Option<Vec<u8>>> {
        let mut splitter = LineSplitter::new(max);
        let mut lines = Vec::new();
        for chunk in chunks {
            splitter.push(chunk, |line| {
                lines.push(match line {
                    Line::Complete(bytes) => Some(bytes.to_vec()),
                    Line::TooLong => None,
                })
            });
        }
        lines
    }

    #[test]
    fn lines_split_across_chunks_and_long_lines_skipped() {
        let lines = split_all(&[b"ab", b"c\r\n\nde", b"f\n", b"0123456789", b"x\nok\n"], 8);
        assert_eq!(
            lines,
            [
                Some(b"abc".to_vec()),
                Some(b"def".to_vec()),
                None,
                Some(b"ok".to_vec())
            ]
        );
        // An unfinished line is held until its end arrives.
        assert_eq!(split_all(&[b"tail"], 8), Vec::<Option<Vec<u8>>>::new());
    }

    proptest! {
        #[test]
        fn any_bytes_any_chunking_same_lines(data in proptest::collection::vec(any::<u8>(), 0..600),
                                             cuts in proptest::collection::vec(0usize..600, 0..8),
                                             max in 1usize..64) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.sort_unstable();
            let mut chunks = Vec::new();
            let mut start = 0;
            for cut in cuts {
                chunks.push(&data[start..cut]);
                start = cut;
            }
            chunks.push(&data[start..]);
            let whole = split_all(&[&data], max);
            prop_assert_eq!(split_all(&chunks, max), whole.clone());
            for line in whole.into_iter().flatten() {
                prop_assert!(line.len() <= max);
                prop_assert!(!line.contains(&b'\n'));
            }
        }

        #[test]
        fn any_line_is_a_record_or_an_error(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let status = FirehoseStatus::default();
            let mut memory = StreamMemory::default();
            let _ = memory.accept(&data, &status);
        }
    }

    #[test]
    fn uids_are_remembered_to_a_bound() {
        let mut window = UidWindow::new(3);
        assert!(window.insert("a"));
        assert!(!window.insert("a"));
        for uid in ["b", "c", "d"] {
            assert!(window.insert(uid));
        }
        assert!(window.insert("a"), "a was the oldest, forgotten");
        assert_eq!(window.set.len(), 3);
    }

    #[test]
    fn maps_are_remembered_to_a_bound() {
        let mut maps = MapMemory::new(2);
        maps.learn("l1", "m1");
        maps.learn("l2", "m2");
        maps.learn("l1", "m1b");
        assert_eq!(maps.map_of("l1"), Some("m1b"));
        maps.learn("l3", "m3");
        assert_eq!(maps.map_of("l1"), None, "oldest forgotten");
        assert_eq!(maps.map_of("l3"), Some("m3"));
        maps.learn(&"x".repeat(MAX_ID + 1), "m");
        assert_eq!(maps.maps.len(), 2);
    }

    #[test]
    fn backoff_stays_within_its_bounds() {
        let options = FirehoseOptions::default();
        for failures in [0, 1, 5, 30, u32::MAX] {
            let bound = options
                .backoff_min
                .saturating_mul(2u32.saturating_pow(failures.min(20)))
                .min(options.backoff_max);
            for _ in 0..50 {
                assert!(backoff(&options, failures) <= bound);
            }
        }
        let waits: HashSet<Duration> = (0..20).map(|_| backoff(&options, 6)).collect();
        assert!(waits.len() > 1, "jittered");
    }

    #[test]
    fn retry_after_is_seconds_capped_at_ten_minutes() {
        let mut headers = header::HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(header::RETRY_AFTER, header::HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(
            header::RETRY_AFTER,
            header::HeaderValue::from_static("99999999"),
        );
        assert_eq!(retry_after(&headers), Some(MAX_RETRY_AFTER));
        headers.insert(
            header::RETRY_AFTER,
            header::HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn map_metadata_length_is_x_width_is_y() {
        let body = br#"{"mapId":"m1","imageWidth":2400,"imageHeight":1200,"dimension":{"length":300.0,"width":150.0,"height":10.0,"offsetX":2.5,"offsetY":null}}"#;
        let plan = map_info(body, "m1", Unit::Feet).expect("parses");
        assert_eq!((plan.width, plan.length), (300.0, 150.0));
        assert_eq!((plan.offset_x, plan.offset_y), (2.5, 0.0));
        assert_eq!(plan.floor_ref_id.as_deref(), Some("m1"));
        assert_eq!(plan.image_name.as_deref(), Some("m1"));
        for bad in [
            &br#"{"dimension":{"length":0,"width":1}}"#[..],
            br#"{"dimension":{"length":1}}"#,
            br#"{"mapId":"m"}"#,
            b"{",
        ] {
            assert!(map_info(bad, "m", Unit::Feet).is_err());
        }
    }
}
