//! [`WebexClient`]: the REST calls whereis makes, each with a timeout, a size cap on the answer, and
//! retries for throttling (429, 423) and transient failures (5xx, timeouts, connection errors).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::multipart::{Form, Part};
use reqwest::{Method, RequestBuilder, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::WebexError;
use crate::link::next_link;
use crate::retry::RetryPolicy;
use crate::types::{
    Attachment, Items, Message, NewMessage, NewWebhook, Person, Room, RoomType, UpdateWebhook,
    Webhook,
};

/// Largest successful answer read, in bytes.
const MAX_BODY: usize = 4 * 1024 * 1024;
/// Largest error answer read; longer ones are cut (only their `message` matters).
const MAX_ERROR_BODY: usize = 64 * 1024;
/// Items asked for per page of `GET /webhooks`.
const WEBHOOK_PAGE_SIZE: &str = "100";
/// Most pages of `GET /webhooks` followed before giving up.
const MAX_PAGES: usize = 50;
/// Largest `max` Webex accepts on `GET /people`.
const MAX_PEOPLE: u32 = 1000;
/// Largest `max` asked for per page of `GET /rooms`.
const ROOM_PAGE_SIZE: usize = 100;
/// Largest `max` Webex accepts on `GET /messages`.
const MAX_MESSAGES: u32 = 1000;
/// Counter of REST calls by `op` (e.g. `POST /messages`) and `result` (`ok`, `error`): one per call,
/// whatever its retries.
pub const REQUESTS_METRIC: &str = "whereis_webex_requests_total";
/// Counter of waits a 429 or 423 answer imposed (`Retry-After`).
pub const RATE_LIMIT_WAITS_METRIC: &str = "whereis_webex_rate_limit_waits_total";
/// Counter of the seconds spent in those waits (rounded to whole seconds).
pub const RATE_LIMIT_WAIT_SECONDS_METRIC: &str = "whereis_webex_rate_limit_wait_seconds_total";

/// The `User-Agent` of every request and of the websocket handshake.
pub(crate) const USER_AGENT: &str = concat!("whereis-webex/", env!("CARGO_PKG_VERSION"));

/// A Webex access token (the bot's), kept in a [`SecretString`]: `Debug` prints `<redacted>`,
/// there is no `Display`, and the memory is wiped when the last copy is dropped.
#[derive(Clone)]
pub struct Token(SecretString);

impl Token {
    /// Wraps a token.
    pub fn new(value: impl Into<String>) -> Token {
        Token(SecretString::from(value.into()))
    }

    /// The token itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl From<SecretString> for Token {
    fn from(secret: SecretString) -> Token {
        Token(secret)
    }
}

impl PartialEq for Token {
    fn eq(&self, other: &Token) -> bool {
        use subtle::ConstantTimeEq;
        self.expose()
            .as_bytes()
            .ct_eq(other.expose().as_bytes())
            .into()
    }
}

impl Eq for Token {}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A Webex REST client. Cheap to clone: clones share one connection pool.
#[derive(Clone)]
pub struct WebexClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// Kept for the websocket's authorization frame.
    token: Token,
    /// API base, e.g. `https://webexapis.com/v1`, without a trailing slash.
    base: Url,
    /// `Bearer …`, marked sensitive so that the HTTP stack never prints it.
    auth: HeaderValue,
    retry: RetryPolicy,
    timeout: Duration,
}

impl fmt::Debug for WebexClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebexClient")
            .field("api_base", &self.inner.base.as_str())
            .field("retry", &self.inner.retry)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

/// A successful answer: its headers and (size-capped) body.
pub(crate) struct Answer {
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

/// A failed attempt and whether (and how) it may be retried.
struct Failure {
    error: WebexError,
    retry: Retry,
    tracking_id: Option<String>,
}

enum Retry {
    /// Fail at once (4xx other than 429/423, a bad request, an oversized answer).
    No,
    /// Throttled: wait this long (from `Retry-After`) and try again.
    After(Duration),
    /// Transient: wait a jittered exponential backoff and try again.
    Backoff,
}

/// The JSON error body Webex sends: `{"message", "errors": [{"description"}], "trackingId"}`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    errors: Option<Vec<ErrorDetail>>,
    #[serde(default)]
    tracking_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    description: Option<String>,
}

impl WebexClient {
    /// A client for the API at `api_base` (e.g. `https://webexapis.com/v1`) acting with `token`; every
    /// request is limited to `request_timeout` (connect, send and read together).
    pub fn new(
        api_base: &str,
        token: Token,
        retry: RetryPolicy,
        request_timeout: Duration,
    ) -> Result<WebexClient, WebexError> {
        WebexClient::with_http(
            api_base,
            token,
            retry,
            request_timeout,
            reqwest::Client::builder(),
        )
    }

    /// Like [`WebexClient::new`], on a `reqwest::ClientBuilder` the caller prepared (proxy routing,
    /// extra trust roots, local address, …). The timeout and `User-Agent` are set here. Every REST
    /// call of this client, the device service's and the conversation look-ups included, goes
    /// through the one client built from it.
    pub fn with_http(
        api_base: &str,
        token: Token,
        retry: RetryPolicy,
        request_timeout: Duration,
        builder: reqwest::ClientBuilder,
    ) -> Result<WebexClient, WebexError> {
        let base = parse_base(api_base)?;
        if token.expose().trim().is_empty() {
            return Err(WebexError::Setup("the access token is empty".into()));
        }
        let token = Token::new(token.expose().trim());
        let mut auth =
            HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
                WebexError::Setup(
                    "the access token contains characters not allowed in an HTTP header".into(),
                )
            })?;
        auth.set_sensitive(true);
        if request_timeout.is_zero() {
            return Err(WebexError::Setup(
                "the request timeout must not be zero".into(),
            ));
        }
        let http = builder
            .timeout(request_timeout)
            .user_agent(USER_AGENT)
            .build()
            .map_err(|err| WebexError::Setup(describe(err)))?;
        Ok(WebexClient {
            inner: Arc::new(Inner {
                http,
                token,
                base,
                auth,
                retry,
                timeout: request_timeout,
            }),
        })
    }

    /// The API base URL this client talks to.
    pub fn api_base(&self) -> &str {
        self.inner.base.as_str()
    }

    /// The bot itself (`GET /people/me`): its id lets the bot ignore its own messages.
    pub async fn me(&self) -> Result<Person, WebexError> {
        let url = self.url(&["people", "me"], &[])?;
        let answer = self.get("GET /people/me", url).await?;
        decode("GET /people/me", &answer.body)
    }

    /// The person with this email in the bot's organization (`GET /people?email=`), if any.
    pub async fn person_by_email(&self, email: &str) -> Result<Option<Person>, WebexError> {
        let email = email.trim();
        if email.is_empty() {
            return Err(WebexError::Invalid("empty email address".into()));
        }
        let url = self.url(&["people"], &[("email", email)])?;
        let answer = self.get("GET /people?email", url).await?;
        let people: Vec<Person> = decode_items("GET /people?email", &answer.body)?;
        // Webex matches exactly; prefer the record that lists the address, in case it ever does not.
        let exact = people
            .iter()
            .position(|p| p.emails.iter().any(|e| e.eq_ignore_ascii_case(email)));
        Ok(match exact {
            Some(index) => people.into_iter().nth(index),
            None => people.into_iter().next(),
        })
    }

    /// Up to `max` people whose display name starts with `name` (`GET /people?displayName=&max=`).
    pub async fn people_by_display_name(
        &self,
        name: &str,
        max: u32,
    ) -> Result<Vec<Person>, WebexError> {
        let name = name.trim();
        if name.is_empty() {
            return Err(WebexError::Invalid("empty display name".into()));
        }
        if max == 0 {
            return Ok(Vec::new());
        }
        let max = max.min(MAX_PEOPLE);
        let max_text = max.to_string();
        let url = self.url(&["people"], &[("displayName", name), ("max", &max_text)])?;
        let answer = self.get("GET /people?displayName", url).await?;
        let mut people: Vec<Person> = decode_items("GET /people?displayName", &answer.body)?;
        people.truncate(usize::try_from(max).unwrap_or(usize::MAX));
        Ok(people)
    }

    /// One message with its text (`GET /messages/{id}`); webhook events carry only the id.
    pub async fn message(&self, id: &str) -> Result<Message, WebexError> {
        let url = self.url(&["messages", checked_id(id)?], &[])?;
        let answer = self.get("GET /messages/{id}", url).await?;
        decode("GET /messages/{id}", &answer.body)
    }

    /// Posts a message (`POST /messages`, JSON).
    pub async fn post_message(&self, message: &NewMessage) -> Result<Message, WebexError> {
        // Retried like every call: a 5xx or a timeout usually means the message was not posted, and a
        // rare duplicate reply is better than a lost one.
        let answer = self
            .send_json("POST /messages", Method::POST, &["messages"], message)
            .await?;
        decode("POST /messages", &answer.body)
    }

    /// Posts a message with one file (`POST /messages`, `multipart/form-data`: `roomId` or
    /// `toPersonEmail`, `parentId`, `text`, `markdown`, and the file as `files`).
    pub async fn post_message_with_file(
        &self,
        message: &NewMessage,
        file: &Attachment,
    ) -> Result<Message, WebexError> {
        const OP: &str = "POST /messages (file)";
        if file.file_name.trim().is_empty() {
            return Err(WebexError::Invalid("attachment without a file name".into()));
        }
        // Check the content type once, so that building each attempt's form cannot fail.
        Part::bytes(Vec::new())
            .mime_str(&file.content_type)
            .map_err(|_| {
                WebexError::Invalid(format!(
                    "attachment content type {:?} is not a MIME type",
                    file.content_type
                ))
            })?;
        let url = self.url(&["messages"], &[])?;
        let http = &self.inner.http;
        // A multipart body is consumed by sending, so each attempt builds its own form from the bytes
        // kept here. Retried for the same reason as `post_message`.
        let build = || {
            let part = Part::bytes(file.bytes.clone())
                .file_name(file.file_name.clone())
                .mime_str(&file.content_type)
                .map_err(|_| WebexError::Invalid("attachment content type".into()))?;
            let mut form = Form::new();
            let fields = [
                ("roomId", &message.room_id),
                ("toPersonEmail", &message.to_person_email),
                ("parentId", &message.parent_id),
                ("text", &message.text),
                ("markdown", &message.markdown),
            ];
            for (name, value) in fields {
                if let Some(value) = value {
                    form = form.text(name, value.clone());
                }
            }
            Ok(http.post(url.clone()).multipart(form.part("files", part)))
        };
        let answer = self.execute(OP, build).await?;
        decode(OP, &answer.body)
    }

    /// Every webhook the bot registered (`GET /webhooks`, following `Link: rel="next"` pages).
    pub async fn webhooks(&self) -> Result<Vec<Webhook>, WebexError> {
        const OP: &str = "GET /webhooks";
        let mut url = self.url(&["webhooks"], &[("max", WEBHOOK_PAGE_SIZE)])?;
        let mut hooks = Vec::new();
        for _ in 0..MAX_PAGES {
            let answer = self.get(OP, url.clone()).await?;
            hooks.extend(decode_items::<Webhook>(OP, &answer.body)?);
            match next_link(&answer.headers) {
                None => return Ok(hooks),
                Some(next) => url = self.next_page(&url, &next)?,
            }
        }
        Err(WebexError::Decode(format!(
            "{OP}: more than {MAX_PAGES} pages of webhooks"
        )))
    }

    /// Registers a webhook (`POST /webhooks`).
    pub async fn create_webhook(&self, hook: &NewWebhook) -> Result<Webhook, WebexError> {
        // Retried on 5xx like every call; a duplicate webhook is found and updated on the next start.
        let answer = self
            .send_json("POST /webhooks", Method::POST, &["webhooks"], hook)
            .await?;
        decode("POST /webhooks", &answer.body)
    }

    /// Changes a webhook's name, target, secret or status (`PUT /webhooks/{id}`).
    pub async fn update_webhook(
        &self,
        id: &str,
        hook: &UpdateWebhook,
    ) -> Result<Webhook, WebexError> {
        let answer = self
            .send_json(
                "PUT /webhooks/{id}",
                Method::PUT,
                &["webhooks", checked_id(id)?],
                hook,
            )
            .await?;
        decode("PUT /webhooks/{id}", &answer.body)
    }

    /// Up to `limit` spaces the bot is in, most recently active first (`GET /rooms?sortBy=lastactivity`,
    /// following `Link: rel="next"` pages on the API's origin until `limit` is reached).
    pub async fn rooms(&self, limit: usize) -> Result<Vec<Room>, WebexError> {
        const OP: &str = "GET /rooms";
        if limit == 0 {
            return Ok(Vec::new());
        }
        let page_size = limit.min(ROOM_PAGE_SIZE).to_string();
        let mut url = self.url(
            &["rooms"],
            &[("sortBy", "lastactivity"), ("max", &page_size)],
        )?;
        let mut rooms = Vec::new();
        for _ in 0..MAX_PAGES {
            let answer = self.get(OP, url.clone()).await?;
            rooms.extend(decode_items::<Room>(OP, &answer.body)?);
            if rooms.len() >= limit {
                rooms.truncate(limit);
                return Ok(rooms);
            }
            match next_link(&answer.headers) {
                None => return Ok(rooms),
                Some(next) => url = self.next_page(&url, &next)?,
            }
        }
        tracing::warn!(op = OP, pages = MAX_PAGES, "stopped following room pages");
        Ok(rooms)
    }

    /// The newest `max` messages of a space, newest first (`GET /messages?roomId=&max=`). With
    /// `mentioned_only`, only those that @mention the bot (`mentionedPeople=me`): a bot must ask so
    /// in a group space, where Webex answers 403 otherwise.
    pub async fn room_messages(
        &self,
        room_id: &str,
        mentioned_only: bool,
        max: u32,
    ) -> Result<Vec<Message>, WebexError> {
        const OP: &str = "GET /messages?roomId";
        let room_id = checked_id(room_id)?;
        if max == 0 {
            return Ok(Vec::new());
        }
        let max = max.min(MAX_MESSAGES);
        let max_text = max.to_string();
        let mut query = vec![("roomId", room_id)];
        if mentioned_only {
            query.push(("mentionedPeople", "me"));
        }
        query.push(("max", &max_text));
        let url = self.url(&["messages"], &query)?;
        let answer = self.get(OP, url).await?;
        let mut messages: Vec<Message> = decode_items(OP, &answer.body)?;
        messages.truncate(usize::try_from(max).unwrap_or(usize::MAX));
        Ok(messages)
    }

    /// The newest `max` messages of `room` the bot may read: every message of a direct space, the
    /// ones that @mention the bot elsewhere (see [`WebexClient::room_messages`]).
    pub async fn recent_messages(&self, room: &Room, max: u32) -> Result<Vec<Message>, WebexError> {
        let mentioned_only = room.room_type != RoomType::Direct;
        self.room_messages(&room.id, mentioned_only, max).await
    }

    /// The bot's token, for the websocket's authorization frame.
    pub(crate) fn token(&self) -> &Token {
        &self.inner.token
    }

    /// The parsed API base.
    pub(crate) fn base_url(&self) -> &Url {
        &self.inner.base
    }

    /// The retry policy of this client's calls.
    pub(crate) fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.retry
    }

    /// `GET url` with the token, under `policy`. The caller has checked that `url` may get the token.
    pub(crate) async fn get_at(
        &self,
        op: &str,
        url: &Url,
        policy: &RetryPolicy,
    ) -> Result<Answer, WebexError> {
        let http = &self.inner.http;
        self.execute_with(op, policy, || Ok(http.get(url.clone())))
            .await
    }

    /// `POST url` with a JSON body and the token. The caller has checked that `url` may get the token.
    pub(crate) async fn post_json_at<B: Serialize + ?Sized>(
        &self,
        op: &str,
        url: &Url,
        body: &B,
    ) -> Result<Answer, WebexError> {
        let json = serde_json::to_vec(body)
            .map_err(|err| WebexError::Invalid(format!("{op}: cannot encode the body: {err}")))?;
        let http = &self.inner.http;
        self.execute(op, || {
            Ok(http
                .post(url.clone())
                .header(CONTENT_TYPE, "application/json")
                .body(json.clone()))
        })
        .await
    }

    /// `DELETE url` with the token. The caller has checked that `url` may get the token.
    pub(crate) async fn delete_at(&self, op: &str, url: &Url) -> Result<Answer, WebexError> {
        let http = &self.inner.http;
        self.execute(op, || Ok(http.delete(url.clone()))).await
    }

    /// `base/segments…?query`, each segment percent-encoded (a `/` in an id stays inside its segment).
    fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Result<Url, WebexError> {
        let mut url = self.inner.base.clone();
        url.path_segments_mut()
            .map_err(|()| WebexError::Setup("the API base URL cannot have a path".into()))?
            .pop_if_empty()
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    /// The next page's URL, resolved against the current one. It must stay on the API's origin:
    /// the bearer token goes with it.
    fn next_page(&self, current: &Url, next: &str) -> Result<Url, WebexError> {
        let url = current
            .join(next)
            .map_err(|err| WebexError::Decode(format!("pagination link is not a URL: {err}")))?;
        let base = &self.inner.base;
        let same_origin = url.scheme() == base.scheme()
            && url.host_str() == base.host_str()
            && url.port_or_known_default() == base.port_or_known_default();
        if !same_origin {
            return Err(WebexError::Decode(format!(
                "pagination link leaves the API origin ({})",
                url.origin().ascii_serialization()
            )));
        }
        Ok(url)
    }

    async fn get(&self, op: &str, url: Url) -> Result<Answer, WebexError> {
        let http = &self.inner.http;
        self.execute(op, || Ok(http.get(url.clone()))).await
    }

    async fn send_json<B: Serialize + ?Sized>(
        &self,
        op: &str,
        method: Method,
        segments: &[&str],
        body: &B,
    ) -> Result<Answer, WebexError> {
        let url = self.url(segments, &[])?;
        let json = serde_json::to_vec(body)
            .map_err(|err| WebexError::Invalid(format!("{op}: cannot encode the body: {err}")))?;
        let http = &self.inner.http;
        self.execute(op, || {
            Ok(http
                .request(method.clone(), url.clone())
                .header(CONTENT_TYPE, "application/json")
                .body(json.clone()))
        })
        .await
    }

    /// Runs one call: attempts, waits and retries under the client's [`RetryPolicy`].
    async fn execute<F>(&self, op: &str, build: F) -> Result<Answer, WebexError>
    where
        F: Fn() -> Result<RequestBuilder, WebexError>,
    {
        self.execute_with(op, &self.inner.retry, build).await
    }

    /// Runs one call: attempts, waits and retries under `policy`; counted in [`REQUESTS_METRIC`].
    async fn execute_with<F>(
        &self,
        op: &str,
        policy: &RetryPolicy,
        build: F,
    ) -> Result<Answer, WebexError>
    where
        F: Fn() -> Result<RequestBuilder, WebexError>,
    {
        let result = self.attempts(op, policy, build).await;
        let outcome = if result.is_ok() { "ok" } else { "error" };
        metrics::counter!(REQUESTS_METRIC, "op" => op.to_owned(), "result" => outcome).increment(1);
        result
    }

    async fn attempts<F>(
        &self,
        op: &str,
        policy: &RetryPolicy,
        build: F,
    ) -> Result<Answer, WebexError>
    where
        F: Fn() -> Result<RequestBuilder, WebexError>,
    {
        let mut waited = Duration::ZERO;
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let request = build()?
                .header(AUTHORIZATION, self.inner.auth.clone())
                .header(ACCEPT, "application/json")
                .timeout(self.inner.timeout);
            let failure = match self.attempt(request, policy).await {
                Ok(answer) => return Ok(answer),
                Err(failure) => failure,
            };
            let tracking_id = failure.tracking_id.as_deref().unwrap_or("-");
            let (wanted, throttled) = match failure.retry {
                Retry::No => {
                    tracing::warn!(op, attempt, tracking_id, error = %failure.error, "webex request failed");
                    return Err(failure.error);
                }
                Retry::After(wait) => (wait, true),
                Retry::Backoff => (policy.backoff(attempt), false),
            };
            let remaining = policy.max_total_wait.saturating_sub(waited);
            if attempt >= policy.attempts() || (remaining.is_zero() && !wanted.is_zero()) {
                tracing::warn!(
                    op,
                    attempt,
                    tracking_id,
                    waited_ms = millis(waited),
                    error = %failure.error,
                    "webex request failed; no retries left"
                );
                return Err(if throttled {
                    WebexError::RateLimited { waited }
                } else {
                    failure.error
                });
            }
            let delay = wanted.min(remaining);
            tracing::debug!(
                op,
                attempt,
                tracking_id,
                delay_ms = millis(delay),
                error = %failure.error,
                "webex request failed; retrying"
            );
            if throttled {
                metrics::counter!(RATE_LIMIT_WAITS_METRIC).increment(1);
                // The facade's counters are whole numbers; Webex's Retry-After is whole seconds.
                let seconds = delay.as_secs_f64().round() as u64;
                metrics::counter!(RATE_LIMIT_WAIT_SECONDS_METRIC).increment(seconds);
            }
            tokio::time::sleep(delay).await;
            waited += delay;
        }
    }

    /// One HTTP exchange, classified.
    async fn attempt(
        &self,
        request: RequestBuilder,
        policy: &RetryPolicy,
    ) -> Result<Answer, Failure> {
        let mut response = request.send().await.map_err(transport_failure)?;
        let status = response.status();
        let headers = std::mem::take(response.headers_mut());
        let header_tracking = tracking_id(&headers);
        if status.is_success() {
            return match read_capped(&mut response, MAX_BODY).await {
                Ok(Some(body)) => Ok(Answer { headers, body }),
                Ok(None) => Err(Failure {
                    error: WebexError::Decode(format!(
                        "answer larger than {} MiB",
                        MAX_BODY / (1024 * 1024)
                    )),
                    retry: Retry::No,
                    tracking_id: header_tracking,
                }),
                Err(failure) => Err(Failure {
                    tracking_id: header_tracking,
                    ..failure
                }),
            };
        }
        // The error body only explains; a broken or oversized one must not hide the status.
        let body = read_capped_lossy(&mut response, MAX_ERROR_BODY).await;
        let parsed = serde_json::from_slice::<ErrorBody>(&body).unwrap_or_default();
        let tracking_id = header_tracking.or(parsed.tracking_id.clone());
        let code = status.as_u16();
        let retry = match code {
            429 | 423 => Retry::After(
                policy.retry_after(headers.get(RETRY_AFTER).map(HeaderValue::as_bytes)),
            ),
            500..=599 => Retry::Backoff,
            _ => Retry::No,
        };
        let error = if code == 401 {
            WebexError::Unauthorized {
                tracking_id: tracking_id.clone(),
            }
        } else {
            WebexError::Status {
                status: code,
                message: error_message(&parsed, status),
                tracking_id: tracking_id.clone(),
            }
        };
        Err(Failure {
            error,
            retry,
            tracking_id,
        })
    }
}

/// Parses and checks the API base: absolute http(s) URL with a host, no query or fragment.
fn parse_base(api_base: &str) -> Result<Url, WebexError> {
    let trimmed = api_base.trim().trim_end_matches('/');
    let url = Url::parse(trimmed)
        .map_err(|err| WebexError::Setup(format!("API base URL {trimmed:?}: {err}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(WebexError::Setup(format!(
            "API base URL {trimmed:?} must be an http(s) URL with a host"
        )));
    }
    if url.cannot_be_a_base() || url.query().is_some() || url.fragment().is_some() {
        return Err(WebexError::Setup(format!(
            "API base URL {trimmed:?} must not have a query or fragment"
        )));
    }
    Ok(url)
}

/// An id usable as one path segment: not empty and not a dot segment (which URLs resolve away).
fn checked_id(id: &str) -> Result<&str, WebexError> {
    if id.is_empty() || id == "." || id == ".." {
        return Err(WebexError::Invalid(format!("{id:?} is not a Webex id")));
    }
    Ok(id)
}

/// The `trackingid` response header Webex support asks for.
fn tracking_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("trackingid")
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .map(str::to_owned)
}

/// Webex's `message`, else the first error `description`, else the status's reason phrase.
fn error_message(body: &ErrorBody, status: reqwest::StatusCode) -> String {
    let from_details = || {
        body.errors
            .iter()
            .flatten()
            .find_map(|detail| detail.description.clone())
    };
    body.message
        .clone()
        .filter(|m| !m.trim().is_empty())
        .or_else(from_details)
        .unwrap_or_else(|| {
            status
                .canonical_reason()
                .unwrap_or("unknown status")
                .to_owned()
        })
}

/// Reads the body, or `Ok(None)` when it is longer than `cap`.
async fn read_capped(
    response: &mut reqwest::Response,
    cap: usize,
) -> Result<Option<Vec<u8>>, Failure> {
    if response
        .content_length()
        .is_some_and(|len| len > cap as u64)
    {
        return Ok(None);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport_failure)? {
        if body.len() + chunk.len() > cap {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// Reads at most `cap` bytes of the body, ignoring errors.
async fn read_capped_lossy(response: &mut reqwest::Response, cap: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = cap - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= cap {
            break;
        }
    }
    body
}

/// Classifies a transport error: timeouts and connection trouble are worth a retry.
fn transport_failure(err: reqwest::Error) -> Failure {
    let (error, retry) = if err.is_timeout() {
        (WebexError::Timeout, Retry::Backoff)
    } else if err.is_builder() {
        (WebexError::Invalid(describe(err)), Retry::No)
    } else if err.is_redirect() {
        (WebexError::Connect(describe(err)), Retry::No)
    } else {
        (WebexError::Connect(describe(err)), Retry::Backoff)
    };
    Failure {
        error,
        retry,
        tracking_id: None,
    }
}

/// An error and its causes on one line, without the URL (its query may hold an email address).
pub(crate) fn describe(err: reqwest::Error) -> String {
    let err = err.without_url();
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Decodes an expected JSON answer.
pub(crate) fn decode<T: DeserializeOwned>(op: &str, body: &[u8]) -> Result<T, WebexError> {
    serde_json::from_slice(body).map_err(|err| WebexError::Decode(format!("{op}: {err}")))
}

/// Decodes `{"items": [...]}`, skipping (and logging) items of the wrong shape rather than failing
/// the whole list for one odd record.
fn decode_items<T: DeserializeOwned>(op: &str, body: &[u8]) -> Result<Vec<T>, WebexError> {
    let items: Items = decode(op, body)?;
    Ok(keep_valid(op, items.items))
}

/// The values that have `T`'s shape; the others are logged and skipped.
pub(crate) fn keep_valid<T: DeserializeOwned>(op: &str, values: Vec<serde_json::Value>) -> Vec<T> {
    values
        .into_iter()
        .filter_map(|item| match serde_json::from_value(item) {
            Ok(value) => Some(value),
            Err(err) => {
                tracing::warn!(op, error = %err, "skipping a list item of unexpected shape");
                None
            }
        })
        .collect()
}

pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str) -> WebexClient {
        WebexClient::new(
            base,
            Token::new("t"),
            RetryPolicy::default(),
            Duration::from_secs(5),
        )
        .unwrap()
    }

    #[test]
    fn urls_encode_ids_inside_their_segment() {
        let c = client("http://127.0.0.1:1/v1/");
        let url = c.url(&["messages", "a/b?c#d%e f"], &[]).unwrap();
        assert_eq!(url.path(), "/v1/messages/a%2Fb%3Fc%23d%25e%20f");
        assert_eq!(url.query(), None);
        let url = c
            .url(&["people"], &[("email", "a+b@example.com"), ("max", "5")])
            .unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:1/v1/people?email=a%2Bb%40example.com&max=5"
        );
        assert_eq!(
            client("https://webexapis.com/v1")
                .url(&["people", "me"], &[])
                .unwrap()
                .as_str(),
            "https://webexapis.com/v1/people/me"
        );
    }

    #[test]
    fn dot_ids_rejected() {
        for id in ["", ".", ".."] {
            assert!(
                matches!(checked_id(id), Err(WebexError::Invalid(_))),
                "{id:?}"
            );
        }
        assert_eq!(checked_id("..a").unwrap(), "..a");
    }

    #[test]
    fn bad_setup_rejected() {
        let t = || Token::new("t");
        let p = RetryPolicy::default;
        let s = Duration::from_secs(1);
        for base in [
            "",
            "webexapis.com/v1",
            "ftp://x/v1",
            "https://x/v1?a=b",
            "mailto:x@y",
        ] {
            assert!(
                matches!(
                    WebexClient::new(base, t(), p(), s),
                    Err(WebexError::Setup(_))
                ),
                "{base}"
            );
        }
        let base = "https://webexapis.com/v1";
        for bad in ["", "  ", "a\nb", "tok\u{7f}"] {
            let err = WebexClient::new(base, Token::new(bad), p(), s).unwrap_err();
            assert!(matches!(err, WebexError::Setup(_)));
            if bad.len() > 2 {
                assert!(!err.to_string().contains(bad));
            }
        }
        assert!(WebexClient::new(base, t(), p(), Duration::ZERO).is_err());
    }

    #[test]
    fn error_messages_from_body() {
        let status = reqwest::StatusCode::BAD_REQUEST;
        let body: ErrorBody = serde_json::from_str(
            r#"{"message":"Unable to post message","errors":[{"description":"x"}],"trackingId":"T"}"#,
        )
        .unwrap();
        assert_eq!(error_message(&body, status), "Unable to post message");
        let body: ErrorBody =
            serde_json::from_str(r#"{"errors":[{"foo":1},{"description":"Room not found"}]}"#)
                .unwrap();
        assert_eq!(error_message(&body, status), "Room not found");
        assert_eq!(error_message(&ErrorBody::default(), status), "Bad Request");
        assert_eq!(
            error_message(
                &ErrorBody::default(),
                reqwest::StatusCode::from_u16(599).unwrap()
            ),
            "unknown status"
        );
    }

    #[test]
    fn token_debug_redacted() {
        assert_eq!(format!("{:?}", Token::new("secret-token")), "<redacted>");
        let c = client("https://webexapis.com/v1");
        assert!(!format!("{c:?}").contains("Bearer"));
    }

    #[test]
    fn next_page_must_stay_on_origin() {
        let c = client("https://webexapis.com/v1");
        let current = c.url(&["webhooks"], &[]).unwrap();
        assert_eq!(
            c.next_page(&current, "https://webexapis.com/v1/webhooks?cursor=x")
                .unwrap()
                .as_str(),
            "https://webexapis.com/v1/webhooks?cursor=x"
        );
        assert_eq!(
            c.next_page(&current, "/v1/webhooks?cursor=y")
                .unwrap()
                .as_str(),
            "https://webexapis.com/v1/webhooks?cursor=y"
        );
        for bad in [
            "https://evil.example/v1/webhooks",
            "http://webexapis.com/v1/webhooks",
            "https://webexapis.com:444/x",
        ] {
            assert!(
                matches!(c.next_page(&current, bad), Err(WebexError::Decode(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn calls_and_rate_limit_waits_are_recorded() {
        use axum::http::StatusCode;
        use axum::response::IntoResponse;
        use metrics_util::debugging::{DebugValue, DebuggingRecorder};
        use std::sync::atomic::{AtomicUsize, Ordering};

        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            // A current-thread runtime keeps every await on this thread, where the recorder is.
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let calls = Arc::new(AtomicUsize::new(0));
                let app = axum::Router::new().route(
                    "/v1/people/me",
                    axum::routing::get(move || {
                        let calls = calls.clone();
                        async move {
                            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                                (StatusCode::TOO_MANY_REQUESTS, [(RETRY_AFTER, "1")], "")
                                    .into_response()
                            } else {
                                (
                                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                                    r#"{"id":"B1","emails":["bot@example.com"]}"#,
                                )
                                    .into_response()
                            }
                        }
                    }),
                );
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                let base = format!("http://{}/v1", listener.local_addr().expect("address"));
                tokio::spawn(async move { axum::serve(listener, app).await });
                let c = client(&base);
                assert_eq!(c.me().await.expect("second attempt answers").id, "B1");
                assert!(c.message("M1").await.is_err(), "no such route: 404");
            });
        });
        /// A counter's name, labels and value.
        type Series = (String, Vec<(String, String)>, u64);
        let counters: Vec<Series> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .filter_map(|(key, _, _, value)| match value {
                DebugValue::Counter(n) => {
                    let key = key.key();
                    let labels = key
                        .labels()
                        .map(|l| (l.key().to_owned(), l.value().to_owned()))
                        .collect();
                    Some((key.name().to_owned(), labels, n))
                }
                _ => None,
            })
            .collect();
        let count = |name: &str, labels: &[(&str, &str)]| {
            counters
                .iter()
                .find(|(n, l, _)| {
                    n == name
                        && l.len() == labels.len()
                        && labels
                            .iter()
                            .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
                })
                .map(|(_, _, value)| *value)
        };
        let ok = [("op", "GET /people/me"), ("result", "ok")];
        let error = [("op", "GET /messages/{id}"), ("result", "error")];
        assert_eq!(count(REQUESTS_METRIC, &ok), Some(1), "{counters:?}");
        assert_eq!(count(REQUESTS_METRIC, &error), Some(1), "{counters:?}");
        assert_eq!(count(RATE_LIMIT_WAITS_METRIC, &[]), Some(1), "{counters:?}");
        assert_eq!(
            count(RATE_LIMIT_WAIT_SECONDS_METRIC, &[]),
            Some(1),
            "{counters:?}"
        );
    }
}
