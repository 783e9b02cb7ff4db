//! Meraki Dashboard API: floor plans (and their expiring image URLs) and the clients list.
//!
//! Every Dashboard request of one [`MerakiDashboard`] waits its turn in a token bucket (Meraki allows
//! 10 requests/s per organisation) and carries `Authorization: Bearer <key>`; a `429` is retried after
//! its `Retry-After`. Floor images live elsewhere (pre-signed storage URLs that expire) and are
//! fetched without the key: it goes only to the Dashboard's own origin.
//!
//! Floor plan sizes are taken as metres (the Dashboard documentation does not name the unit; the
//! corner coordinates of real plans agree with metres), and Scanning API positions are metres from
//! the plan's bottom-left corner.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex as StdMutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::{header, StatusCode, Url};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::LiveSettings;
use crate::model::{normalize_mac, Api, FloorPlan, Unit};
use crate::source::{
    path_segment, read_body, transport_error, ListPaging, Probe, SourceError, MAX_IMAGE_BODY,
    REQUEST_DURATION_METRIC,
};
use crate::wire::{json_body, parse_timestamp, record, ParseError};

/// Dashboard requests per second one [`MerakiDashboard`] sends at most (Meraki's limit per
/// organisation).
pub const DASHBOARD_REQUESTS_PER_SECOND: u32 = 10;
/// Requests that may go at once after a quiet spell (Meraki tolerates more; other tools of the
/// organisation share its budget).
pub const DASHBOARD_BURST: u32 = 5;
/// Times a `429` answer is retried before the request fails.
pub const MAX_RATE_LIMIT_RETRIES: u32 = 3;
/// Longest `Retry-After` waited for.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// The wait after a `429` without a readable `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);
/// Largest Dashboard answer accepted (a page of 1000 clients is about 1 MB).
const MAX_DASHBOARD_BODY: usize = 16 * 1024 * 1024;
/// The floor plans are refetched for an unknown plan id at most this often.
const PLAN_REFRESH: Duration = Duration::from_secs(60);
/// The longest `timespan` the clients list accepts (31 days).
const MAX_TIMESPAN_SECONDS: u64 = 31 * 24 * 3600;
/// `perPage` bounds of the clients list.
const PER_PAGE: std::ops::RangeInclusive<usize> = 3..=1000;

/// A client of one Meraki network's Dashboard API.
pub struct MerakiDashboard {
    settings: LiveSettings,
    /// `{url}/networks/{networkId}`, the id percent-encoded.
    network_url: String,
    network_id: String,
    /// The Dashboard's origin: the only one that gets the key, and where page links may point.
    origin: String,
    client: reqwest::Client,
    limiter: RateLimiter,
    paging: ListPaging,
    plans: Mutex<PlanCache>,
}

impl fmt::Debug for MerakiDashboard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MerakiDashboard")
            .field("name", &self.settings.name)
            .field("url", &self.settings.url)
            .field("network_id", &self.network_id)
            .finish_non_exhaustive()
    }
}

/// The floor plans last read, by id: a plan the Dashboard described badly keeps its reason.
#[derive(Default)]
struct PlanCache {
    plans: HashMap<String, Result<CachedPlan, String>>,
    fetched: Option<Instant>,
}

impl PlanCache {
    fn may_refresh(&self) -> bool {
        self.fetched.is_none_or(|at| at.elapsed() >= PLAN_REFRESH)
    }
}

#[derive(Debug, Clone)]
struct CachedPlan {
    plan: FloorPlan,
    image_url: Option<String>,
    expires_at: Option<DateTime<Utc>>,
}

impl CachedPlan {
    fn image_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// What an image host answered: the bytes, or a refusal (an expired URL answers 403).
enum ImageFetch {
    Bytes(Vec<u8>),
    Refused(StatusCode),
}

impl MerakiDashboard {
    /// A client for network `network_id` of the Dashboard at `settings.url`
    /// (e.g. `https://api.meraki.com/api/v1`).
    pub fn new(settings: LiveSettings, network_id: &str) -> Result<MerakiDashboard, SourceError> {
        let base = settings.url.trim_end_matches('/').to_owned();
        let parsed = Url::parse(&base)
            .map_err(|err| SourceError::Setup(format!("{}: url {base:?}: {err}", settings.name)))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(SourceError::Setup(format!(
                "{}: url {base:?} is not an http(s) URL",
                settings.name
            )));
        }
        let network_url = format!("{base}/networks/{}", path_segment(network_id)?);
        let client = settings.http_client()?;
        Ok(MerakiDashboard {
            network_url,
            network_id: network_id.to_owned(),
            origin: parsed.origin().ascii_serialization(),
            client,
            limiter: RateLimiter::new(DASHBOARD_REQUESTS_PER_SECOND, DASHBOARD_BURST),
            paging: ListPaging::default(),
            plans: Mutex::new(PlanCache::default()),
            settings,
        })
    }

    /// Reads the clients list with this paging (`page_size` is kept within Meraki's 3 to 1000).
    pub fn with_list_paging(mut self, paging: ListPaging) -> MerakiDashboard {
        self.paging = paging;
        self
    }

    /// Configured name of the source.
    pub fn name(&self) -> &str {
        &self.settings.name
    }

    /// The network this client reads.
    pub fn network_id(&self) -> &str {
        &self.network_id
    }

    /// The floor plan `floor_plan_id` of the network (`GET {url}/networks/{id}/floorPlans`, kept in
    /// memory; refetched for an unknown id at most once a minute). Sizes in metres; the image is
    /// named by the plan id.
    pub async fn floor_plan(&self, floor_plan_id: &str) -> Result<FloorPlan, SourceError> {
        self.counted(async {
            let mut cache = self.plans.lock().await;
            if !cache.plans.contains_key(floor_plan_id) && cache.may_refresh() {
                self.refresh_plans(&mut cache).await?;
            }
            self.cached_plan(&cache, floor_plan_id).map(|p| p.plan)
        })
        .await
    }

    /// The floor plan's image: a GET of its `imageUrl`, without the API key. Once the URL's
    /// `imageUrlExpiresAt` has passed (or its host refuses it) the plans are read again for a fresh URL.
    pub async fn floor_image(&self, floor_plan_id: &str) -> Result<Vec<u8>, SourceError> {
        self.counted(async {
            let (url, refreshed) = {
                let mut cache = self.plans.lock().await;
                let stale = match cache.plans.get(floor_plan_id) {
                    None => cache.may_refresh(),
                    Some(Ok(plan)) => plan.image_expired(Utc::now()),
                    Some(Err(_)) => false,
                };
                if stale {
                    self.refresh_plans(&mut cache).await?;
                }
                (self.image_url(&cache, floor_plan_id)?, stale)
            };
            match self.download_image(&url).await? {
                ImageFetch::Bytes(bytes) => Ok(bytes),
                // The URL expired early (clocks disagree): once more with a fresh one.
                ImageFetch::Refused(_) if !refreshed => {
                    let url = {
                        let mut cache = self.plans.lock().await;
                        self.refresh_plans(&mut cache).await?;
                        self.image_url(&cache, floor_plan_id)?
                    };
                    match self.download_image(&url).await? {
                        ImageFetch::Bytes(bytes) => Ok(bytes),
                        ImageFetch::Refused(status) => Err(image_refused(status, floor_plan_id)),
                    }
                }
                ImageFetch::Refused(status) => Err(image_refused(status, floor_plan_id)),
            }
        })
        .await
    }

    /// Usernames of the network's clients by MAC (normalised), for observations without `userId`:
    /// `GET {url}/networks/{id}/clients?perPage=…&timespan=…`, following `Link: <…>; rel=next` on the
    /// Dashboard's origin only. Machine identities (`host/…`) and clients without a user are left
    /// out. A list longer than the page limit is [`SourceError::TooManyPages`].
    pub async fn client_users(
        &self,
        timespan: Duration,
    ) -> Result<HashMap<String, String>, SourceError> {
        self.counted(self.read_client_users(timespan)).await
    }

    /// Checks the key is accepted and the network readable (`GET {url}/networks/{id}`).
    pub async fn probe(&self) -> Result<Probe, SourceError> {
        self.counted(async {
            let (_, body) = self.dashboard_get(&self.network_url).await?;
            let value = json_body(&body)?
                .filter(Value::is_object)
                .ok_or_else(|| ParseError::Shape("network: expected a JSON object".to_owned()))?;
            let name = value
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            Ok(Probe {
                api: Api::Meraki,
                detail: format!(
                    "Meraki network {:?} ({})",
                    name.chars().take(80).collect::<String>(),
                    self.network_id
                ),
            })
        })
        .await
    }

    async fn read_client_users(
        &self,
        timespan: Duration,
    ) -> Result<HashMap<String, String>, SourceError> {
        let per_page = self
            .paging
            .page_size
            .clamp(*PER_PAGE.start(), *PER_PAGE.end());
        let max_pages = self.paging.max_pages.max(1);
        let seconds = timespan.as_secs().clamp(1, MAX_TIMESPAN_SECONDS);
        let mut url = format!(
            "{}/clients?perPage={per_page}&timespan={seconds}",
            self.network_url
        );
        let mut users = HashMap::new();
        for page in 1..=max_pages {
            let (headers, body) = self.dashboard_get(&url).await?;
            read_clients(&body, &mut users)?;
            let Some(next) = next_link(&headers) else {
                return Ok(users);
            };
            if page == max_pages {
                return Err(SourceError::TooManyPages {
                    pages: max_pages,
                    page_size: per_page,
                });
            }
            url = self.page_url(&url, &next)?;
        }
        Ok(users)
    }

    /// The next page's URL, resolved against the current one; only on the Dashboard's origin,
    /// since the key goes with it.
    fn page_url(&self, current: &str, link: &str) -> Result<String, SourceError> {
        let next = Url::parse(current)
            .and_then(|current| current.join(link))
            .map_err(|err| {
                SourceError::Invalid(format!("clients list: unreadable next-page link: {err}"))
            })?;
        if next.origin().ascii_serialization() != self.origin {
            return Err(SourceError::Invalid(format!(
                "clients list: the next-page link leads to {}, not to the Dashboard; not followed",
                next.origin().ascii_serialization()
            )));
        }
        Ok(next.into())
    }

    /// Reads the network's floor plans into `cache`.
    async fn refresh_plans(&self, cache: &mut PlanCache) -> Result<(), SourceError> {
        let url = format!("{}/floorPlans", self.network_url);
        let (_, body) = self.dashboard_get(&url).await?;
        cache.plans = parse_floor_plans(&body)?;
        cache.fetched = Some(Instant::now());
        Ok(())
    }

    fn cached_plan(&self, cache: &PlanCache, id: &str) -> Result<CachedPlan, SourceError> {
        match cache.plans.get(id) {
            Some(Ok(plan)) => Ok(plan.clone()),
            Some(Err(reason)) => Err(ParseError::Shape(format!(
                "floor plan {:?}: {reason}",
                id.chars().take(64).collect::<String>()
            ))
            .into()),
            None => Err(SourceError::Status(format!(
                "404 Not Found: no floor plan {:?} in network {}",
                id.chars().take(64).collect::<String>(),
                self.network_id
            ))),
        }
    }

    fn image_url(&self, cache: &PlanCache, id: &str) -> Result<String, SourceError> {
        self.cached_plan(cache, id)?.image_url.ok_or_else(|| {
            SourceError::Status(format!(
                "floor plan {:?} has no image URL",
                id.chars().take(64).collect::<String>()
            ))
        })
    }

    /// GET of an image URL: no API key, the image timeout and size cap.
    async fn download_image(&self, url: &str) -> Result<ImageFetch, SourceError> {
        let timeout = self.settings.image_timeout;
        let started = Instant::now();
        let result = async {
            let response = self
                .client
                .get(url)
                .timeout(timeout)
                .send()
                .await
                .map_err(|err| transport_error(&err, timeout))?;
            let status = response.status();
            if matches!(status, StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED) {
                return Ok(ImageFetch::Refused(status));
            }
            if !status.is_success() {
                return Err(SourceError::Status(format!("{status} for a floor image")));
            }
            let body = read_body(response, MAX_IMAGE_BODY, timeout).await?;
            if body.is_empty() {
                return Err(SourceError::Status("empty floor image".to_owned()));
            }
            Ok(ImageFetch::Bytes(body))
        }
        .await;
        self.record_duration("image", started);
        result
    }

    /// One Dashboard GET: rate-limited, with the key, `429` retried after `Retry-After`.
    async fn dashboard_get(&self, url: &str) -> Result<(header::HeaderMap, Vec<u8>), SourceError> {
        let timeout = self.settings.timeout;
        let mut retries = 0;
        loop {
            self.limiter.acquire().await;
            let started = Instant::now();
            let result = async {
                let response = self
                    .client
                    .get(url)
                    .timeout(timeout)
                    .bearer_auth(self.settings.api_key.expose())
                    .header(header::ACCEPT, "application/json")
                    .send()
                    .await
                    .map_err(|err| transport_error(&err, timeout))?;
                let status = response.status();
                if status == StatusCode::TOO_MANY_REQUESTS {
                    return Ok(Err(retry_after(response.headers())));
                }
                if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
                    return Err(SourceError::Unauthorized(status.as_u16()));
                }
                if !status.is_success() {
                    return Err(SourceError::Status(status.to_string()));
                }
                let headers = response.headers().clone();
                let body = read_body(response, MAX_DASHBOARD_BODY, timeout).await?;
                Ok(Ok((headers, body)))
            }
            .await;
            self.record_duration("meraki", started);
            match result? {
                Ok(answer) => return Ok(answer),
                Err(_) if retries >= MAX_RATE_LIMIT_RETRIES => {
                    return Err(SourceError::Status(format!(
                        "429 Too Many Requests: still rate limited after {MAX_RATE_LIMIT_RETRIES} retries"
                    )))
                }
                Err(wait) => {
                    retries += 1;
                    tracing::debug!(
                        source = %self.settings.name,
                        wait_ms = wait.as_millis() as u64,
                        retries,
                        "Meraki Dashboard rate limit: waiting as Retry-After says"
                    );
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    fn record_duration(&self, api: &'static str, started: Instant) {
        metrics::histogram!(
            REQUEST_DURATION_METRIC,
            "source" => self.settings.name.clone(),
            "api" => api,
        )
        .record(started.elapsed());
    }

    /// Runs `work`, counting its failure into [`crate::ERRORS_METRIC`].
    async fn counted<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, SourceError>>,
    ) -> Result<T, SourceError> {
        crate::source::counted(&self.settings.name, work.await)
    }
}

fn image_refused(status: StatusCode, id: &str) -> SourceError {
    SourceError::Status(format!(
        "{status}: the image host refused floor plan {:?}'s image URL, even a fresh one",
        id.chars().take(64).collect::<String>()
    ))
}

/// The wait a `429` asks for: `Retry-After` in seconds, capped; a default when absent or unreadable.
fn retry_after(headers: &header::HeaderMap) -> Duration {
    headers
        .get(header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.trim().parse::<f64>().ok())
        .filter(|seconds| seconds.is_finite() && *seconds >= 0.0)
        .map(|seconds| Duration::from_secs_f64(seconds.min(MAX_RETRY_AFTER.as_secs_f64())))
        .unwrap_or(DEFAULT_RETRY_AFTER)
}

/// The `rel=next` target of the `Link` headers, if any (`<url>; rel=next, <url>; rel="first"`).
fn next_link(headers: &header::HeaderMap) -> Option<String> {
    headers
        .get_all(header::LINK)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|value| {
            let mut rest = value;
            while let Some(open) = rest.find('<') {
                let after = &rest[open + 1..];
                let close = after.find('>')?;
                let target = &after[..close];
                let params_end = after[close..].find('<').map_or(after.len(), |i| close + i);
                let params = &after[close + 1..params_end];
                let is_next = params.split(';').any(|param| {
                    param
                        .trim()
                        .trim_end_matches(',')
                        .trim()
                        .strip_prefix("rel=")
                        .is_some_and(|rel| {
                            rel.trim_matches('"')
                                .split_ascii_whitespace()
                                .any(|r| r.eq_ignore_ascii_case("next"))
                        })
                });
                if is_next {
                    return Some(target.to_owned());
                }
                rest = &after[params_end..];
            }
            None
        })
}

/// Adds the users of one clients page to `users` (MAC → user).
fn read_clients(body: &[u8], users: &mut HashMap<String, String>) -> Result<(), ParseError> {
    let Some(Value::Array(clients)) = json_body(body)? else {
        return Err(ParseError::Shape(
            "clients: expected a JSON array".to_owned(),
        ));
    };
    for (index, client) in clients.iter().enumerate() {
        let Some(mac) = client
            .get("mac")
            .and_then(Value::as_str)
            .and_then(normalize_mac)
        else {
            tracing::debug!(index, "Meraki client without a readable mac: skipped");
            continue;
        };
        let Some(user) = client.get("user").and_then(Value::as_str).map(str::trim) else {
            continue;
        };
        let machine = user
            .get(..5)
            .is_some_and(|head| head.eq_ignore_ascii_case("host/"));
        if user.is_empty() || machine {
            continue;
        }
        users.insert(mac, user.to_owned());
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WirePlan {
    #[serde(default)]
    name: Option<String>,
    width: f64,
    height: f64,
    #[serde(default)]
    image_url: Option<String>,
    #[serde(default)]
    image_url_expires_at: Option<String>,
}

/// The floor plans of a `floorPlans` answer by id; a plan with unusable fields keeps the reason.
fn parse_floor_plans(
    body: &[u8],
) -> Result<HashMap<String, Result<CachedPlan, String>>, ParseError> {
    let Some(Value::Array(items)) = json_body(body)? else {
        return Err(ParseError::Shape(
            "floorPlans: expected a JSON array".to_owned(),
        ));
    };
    let mut plans = HashMap::new();
    for (index, item) in items.into_iter().enumerate() {
        let Some(id) = item
            .get("floorPlanId")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
        else {
            tracing::warn!(index, "Meraki floor plan without a floorPlanId: left out");
            continue;
        };
        plans.insert(id.clone(), cached_plan(&id, item));
    }
    Ok(plans)
}

fn cached_plan(id: &str, item: Value) -> Result<CachedPlan, String> {
    let wire: WirePlan = record(item)?;
    for (field, value) in [("width", wire.width), ("height", wire.height)] {
        if !(value.is_finite() && value > 0.0) {
            return Err(format!("{field}: {value} is not a positive size"));
        }
    }
    let image_url = match wire.image_url.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => match Url::parse(text) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => Some(url.into()),
            _ => return Err("imageUrl: not an absolute http(s) URL".to_owned()),
        },
    };
    let expires_at = wire.image_url_expires_at.as_deref().and_then(parse_expiry);
    tracing::trace!(plan = id, name = ?wire.name, "Meraki floor plan read");
    Ok(CachedPlan {
        plan: FloorPlan {
            floor_ref_id: Some(id.to_owned()),
            width: wire.width,
            length: wire.height,
            offset_x: 0.0,
            offset_y: 0.0,
            unit: Unit::Meter,
            image_name: Some(id.to_owned()),
        },
        image_url,
        expires_at,
    })
}

/// `imageUrlExpiresAt`: `2019-06-11 16:04:54 +00:00` in Meraki's examples, or RFC 3339.
fn parse_expiry(text: &str) -> Option<DateTime<Utc>> {
    parse_timestamp(text).or_else(|| {
        DateTime::parse_from_str(text.trim(), "%Y-%m-%d %H:%M:%S%.f %:z")
            .ok()
            .map(|t| t.with_timezone(&Utc))
    })
}

/// A token bucket in its GCRA form: `per_second` requests a second, `burst` of them at once after
/// a quiet spell. Waiters are released in the order they asked.
pub(crate) struct RateLimiter {
    interval: Duration,
    tolerance: Duration,
    /// When the next request would be on schedule (the bucket's "theoretical arrival time").
    next: StdMutex<Option<Instant>>,
}

impl RateLimiter {
    pub(crate) fn new(per_second: u32, burst: u32) -> RateLimiter {
        let interval = Duration::from_secs(1) / per_second.max(1);
        RateLimiter {
            interval,
            tolerance: interval * burst.max(1).saturating_sub(1),
            next: StdMutex::new(None),
        }
    }

    /// Waits until one more request may go.
    pub(crate) async fn acquire(&self) {
        let release = {
            let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            let due = next.map_or(now, |at| at.max(now));
            *next = Some(due + self.interval);
            due.checked_sub(self.tolerance)
        };
        if let Some(at) = release {
            tokio::time::sleep_until(at).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_limiter_lets_a_burst_through_then_ten_a_second() {
        let limiter = std::sync::Arc::new(RateLimiter::new(10, 5));
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..35 {
            let limiter = limiter.clone();
            tasks.spawn(async move {
                limiter.acquire().await;
                Instant::now() - start
            });
        }
        let mut released: Vec<Duration> = tasks.join_all().await;
        released.sort();
        let within = |window: Duration| released.iter().filter(|t| **t <= window).count();
        assert_eq!(within(Duration::ZERO), 5, "{released:?}");
        assert_eq!(within(Duration::from_secs(1)), 5 + 10, "{released:?}");
        assert_eq!(within(Duration::from_secs(2)), 5 + 20, "{released:?}");
        // Past the burst, any one second holds at most ten.
        for window in released.windows(11).skip(5) {
            assert!(
                window[10] - window[0] >= Duration::from_secs(1),
                "{window:?}"
            );
        }
        // After a quiet spell the burst is there again.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let again = Instant::now();
        for _ in 0..5 {
            limiter.acquire().await;
        }
        assert_eq!(Instant::now(), again);
        limiter.acquire().await;
        assert_eq!(Instant::now() - again, Duration::from_millis(100));
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> header::HeaderMap {
        let mut map = header::HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, header::HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn retry_after_is_read_capped_and_defaulted() {
        assert_eq!(
            retry_after(&headers(&[("retry-after", "2")])),
            Duration::from_secs(2)
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "86400")])),
            MAX_RETRY_AFTER
        );
        assert_eq!(retry_after(&headers(&[])), DEFAULT_RETRY_AFTER);
        assert_eq!(
            retry_after(&headers(&[(
                "retry-after",
                "Wed, 21 Oct 2015 07:28:00 GMT"
            )])),
            DEFAULT_RETRY_AFTER
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "-3")])),
            DEFAULT_RETRY_AFTER
        );
    }

    #[test]
    fn the_next_link_is_found_among_others() {
        let meraki = headers(&[(
            "link",
            "<https://api.meraki.com/api/v1/networks/N_1/clients?perPage=3>; rel=first, <https://api.meraki.com/api/v1/networks/N_1/clients?perPage=3&startingAfter=k2>; rel=next",
        )]);
        assert_eq!(
            next_link(&meraki).as_deref(),
            Some("https://api.meraki.com/api/v1/networks/N_1/clients?perPage=3&startingAfter=k2")
        );
        let quoted = headers(&[
            ("link", "</a?x=1>; rel=\"prev\""),
            ("link", "</b?y=2>; title=\"x\"; rel=\"next last\""),
        ]);
        assert_eq!(next_link(&quoted).as_deref(), Some("/b?y=2"));
        assert_eq!(next_link(&headers(&[("link", "</a>; rel=first")])), None);
        assert_eq!(
            next_link(&headers(&[("link", "<unclosed; rel=next")])),
            None
        );
        assert_eq!(next_link(&headers(&[])), None);
    }

    #[test]
    fn clients_pages_keep_people_and_skip_machines_and_nobodies() {
        let mut users = HashMap::new();
        let body = br#"[
            {"id":"k1","mac":"22:33:44:55:66:77","user":"milesmeraki"},
            {"id":"k2","mac":"AA-BB-CC-DD-EE-FF","user":"host/LAPTOP-7.corp.example.com"},
            {"id":"k3","mac":"00:11:22:33:44:55","user":null},
            {"id":"k4","mac":"00:11:22:33:44:56","user":"  "},
            {"id":"k5","mac":"not a mac","user":"ghost"},
            {"id":"k6","user":"nomac"},
            "not an object",
            {"id":"k7","mac":"00:11:22:33:44:57","user":"CORP\\jdoe"}
        ]"#;
        read_clients(body, &mut users).expect("a clients page");
        let mut got: Vec<_> = users.into_iter().collect();
        got.sort();
        assert_eq!(
            got,
            [
                ("00:11:22:33:44:57".to_owned(), "CORP\\jdoe".to_owned()),
                ("22:33:44:55:66:77".to_owned(), "milesmeraki".to_owned()),
            ]
        );
        let err =
            read_clients(br#"{"errors":["nope"]}"#, &mut HashMap::new()).expect_err("not a list");
        assert!(err.to_string().contains("clients"), "{err}");
        assert!(matches!(
            read_clients(b"[{", &mut HashMap::new()),
            Err(ParseError::Json(_))
        ));
    }

    #[test]
    fn floor_plans_are_read_in_metres_and_bad_ones_keep_their_reason() {
        // The recorded plans (keyed by id in the fixture; the API answers a list).
        let fixture: serde_json::Map<String, Value> = serde_json::from_str(include_str!(
            "../../tests/fixtures/meraki-floorplans-by-id.json"
        ))
        .expect("fixture");
        let mut list: Vec<Value> = fixture.into_iter().map(|(_, plan)| plan).collect();
        list.push(serde_json::json!({"floorPlanId": "g_bad", "width": "wide", "height": 3}));
        list.push(serde_json::json!({"floorPlanId": "g_flat", "width": 10, "height": 0}));
        list.push(serde_json::json!({"name": "no id", "width": 10, "height": 5}));
        list.push(serde_json::json!({
            "floorPlanId": "g_img", "width": 10, "height": 5,
            "imageUrl": "https://meraki-na.s3.amazonaws.com/assets/x.png",
            "imageUrlExpiresAt": "2019-06-11 16:04:54 +00:00"
        }));
        list.push(serde_json::json!({
            "floorPlanId": "g_ftp", "width": 10, "height": 5, "imageUrl": "ftp://x/y.png"
        }));
        let body = serde_json::to_vec(&list).expect("json");
        let plans = parse_floor_plans(&body).expect("plans");
        assert_eq!(plans.len(), 6);
        let l3 = plans["g_727894289773756676"].as_ref().expect("usable");
        assert_eq!(
            l3.plan,
            FloorPlan {
                floor_ref_id: Some("g_727894289773756676".to_owned()),
                width: 84.73653902424,
                length: 55.321510873304,
                offset_x: 0.0,
                offset_y: 0.0,
                unit: Unit::Meter,
                image_name: Some("g_727894289773756676".to_owned()),
            }
        );
        assert_eq!(l3.image_url, None);
        let bad = plans["g_bad"].as_ref().expect_err("width is text");
        assert!(bad.starts_with("width"), "{bad}");
        let flat = plans["g_flat"].as_ref().expect_err("no height");
        assert!(flat.starts_with("height"), "{flat}");
        assert!(plans["g_ftp"]
            .as_ref()
            .expect_err("not http")
            .starts_with("imageUrl"));
        let img = plans["g_img"].as_ref().expect("usable");
        assert_eq!(
            img.expires_at,
            DateTime::parse_from_rfc3339("2019-06-11T16:04:54Z")
                .ok()
                .map(|t| t.with_timezone(&Utc))
        );
        assert!(img.image_expired(Utc::now()));
        assert!(matches!(
            parse_floor_plans(br#"{"errors":["Not found"]}"#),
            Err(ParseError::Shape(_))
        ));
    }

    #[test]
    fn expiry_formats() {
        let want = DateTime::parse_from_rfc3339("2024-05-01T10:00:00Z")
            .ok()
            .map(|t| t.with_timezone(&Utc));
        assert_eq!(parse_expiry("2024-05-01 10:00:00 +00:00"), want);
        assert_eq!(parse_expiry("2024-05-01T10:00:00Z"), want);
        assert_eq!(parse_expiry("2024-05-01T12:00:00+02:00"), want);
        assert_eq!(parse_expiry("soon"), None);
    }
}
