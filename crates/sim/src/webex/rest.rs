//! The HTTP side of the double: the router, the gate every request passes (bearer token, tracking id) and
//! the REST endpoints under `/v1` (people, rooms, messages, webhooks).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde_json::{json, Map, Value};

use super::multipart::{read_parts, FormError};
use super::{
    bad_request, canonical_id, devices, lock, mercury, now_stamp, stamp, ApiError, Draft, Inner,
    Message, MessagesFault, PostedFile, RoomKind, DEFAULT_MESSAGES_MAX, DEFAULT_PEOPLE_MAX,
    DEFAULT_ROOMS_MAX, LARGEST_PAGE_MAX, MALFORMED_RETRY_AFTER, MAX_BODY_BYTES,
};

/// The tracking id of the request being answered (also sent as the `trackingid` header).
#[derive(Clone)]
pub(super) struct Tracking(pub(super) String);

pub(super) type Shared = State<Arc<Inner>>;

pub(super) fn router(inner: Arc<Inner>) -> Router {
    Router::new()
        .route("/v1/people/me", get(people_me))
        .route("/v1/people", get(people_list))
        .route("/v1/rooms", get(list_rooms))
        .route("/v1/messages", post(create_message).get(list_messages))
        .route("/v1/messages/{id}", get(get_message))
        .route("/v1/webhooks", get(list_webhooks).post(create_webhook))
        .route(
            "/v1/webhooks/{id}",
            get(get_webhook).put(update_webhook).delete(delete_webhook),
        )
        .route("/u2c/api/v1/catalog", get(devices::catalog))
        .route("/u2c/api/v1/limited/catalog", get(devices::catalog))
        .route(
            "/wdm/api/v1/devices",
            get(devices::list_devices).post(devices::register_device),
        )
        .route(
            "/wdm/api/v1/devices/{id}",
            get(devices::get_device).delete(devices::delete_device),
        )
        .route(
            "/mercury/registrations/{id}/messages",
            get(mercury::websocket),
        )
        .route(
            "/conversation/api/v1/messages/{uuid}",
            get(mercury::conversation_message),
        )
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(inner.clone(), gate))
        .with_state(inner)
}

/// Counts the request, gives it a tracking id, checks the bearer token and adds the `trackingid` header.
async fn gate(State(inner): Shared, mut req: Request, next: Next) -> Response {
    inner.record_request(req.method().as_str(), req.uri().path());
    let tracking = Tracking(inner.tracking_id());
    tracing::debug!(method = %req.method(), path = %req.uri().path(), "webex double request");
    let mut response = if inner.authorized(req.headers()) {
        req.extensions_mut().insert(tracking.clone());
        next.run(req).await
    } else {
        error(
            StatusCode::UNAUTHORIZED,
            &tracking,
            "The request requires a valid access token set in the Authorization request header.",
        )
    };
    if let Ok(value) = HeaderValue::from_str(&tracking.0) {
        response.headers_mut().insert("trackingid", value);
    }
    response
}

/// A Webex error: `{"message", "errors": [{"description"}], "trackingId"}`.
pub(super) fn error(status: StatusCode, tracking: &Tracking, message: &str) -> Response {
    let body = json!({
        "message": message,
        "errors": [{ "description": message }],
        "trackingId": tracking.0,
    });
    (status, axum::Json(body)).into_response()
}

pub(super) fn api_error(tracking: &Tracking, (status, message): ApiError) -> Response {
    error(status, tracking, &message)
}

pub(super) fn ok_json(value: Value) -> Response {
    (StatusCode::OK, axum::Json(value)).into_response()
}

/// The tracking id the gate stored (always there behind the gate; a fresh one otherwise).
pub(super) fn tracking_of(tracking: Option<Extension<Tracking>>) -> Tracking {
    tracking.map_or_else(|| Tracking("ROUTER_UNTRACKED".to_owned()), |t| t.0)
}

async fn not_found(tracking: Option<Extension<Tracking>>) -> Response {
    error(
        StatusCode::NOT_FOUND,
        &tracking_of(tracking),
        "The requested resource could not be found.",
    )
}

async fn people_me(State(inner): Shared) -> Response {
    ok_json(inner.person_json(&inner.bot))
}

async fn people_list(
    State(inner): Shared,
    tracking: Option<Extension<Tracking>>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let tracking = tracking_of(tracking);
    let Ok(Query(query)) = query else {
        return malformed_query(&tracking);
    };
    let max = match max_param(&query, DEFAULT_PEOPLE_MAX, LARGEST_PAGE_MAX) {
        Ok(max) => max,
        Err(err) => return api_error(&tracking, err),
    };
    let state = lock(&inner.state);
    let found: Vec<Value> = if let Some(email) = query.get("email") {
        state
            .people
            .iter()
            .filter(|p| p.email.eq_ignore_ascii_case(email))
            .take(max)
            .map(|p| inner.person_json(p))
            .collect()
    } else if let Some(name) = query.get("displayName") {
        let prefix = name.to_lowercase();
        state
            .people
            .iter()
            .filter(|p| p.display_name.to_lowercase().starts_with(&prefix))
            .take(max)
            .map(|p| inner.person_json(p))
            .collect()
    } else {
        return error(
            StatusCode::BAD_REQUEST,
            &tracking,
            "Email, displayName, or id list should be specified.",
        );
    };
    ok_json(json!({ "items": found }))
}

async fn get_message(
    State(inner): Shared,
    tracking: Option<Extension<Tracking>>,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    let tracking = tracking_of(tracking);
    let found = id.ok().and_then(|Path(id)| {
        lock(&inner.state)
            .messages
            .get(&canonical_id(&id))
            .map(Message::to_json)
    });
    match found {
        Some(message) => ok_json(message),
        None => error(
            StatusCode::NOT_FOUND,
            &tracking,
            "Could not find a message with provided ID.",
        ),
    }
}

/// A `max` query parameter: `default` when absent, else a number from 1 to `largest`.
fn max_param(
    query: &HashMap<String, String>,
    default: usize,
    largest: usize,
) -> Result<usize, ApiError> {
    match query.get("max") {
        None => Ok(default),
        Some(max) => match max.parse::<usize>() {
            Ok(n) if (1..=largest).contains(&n) => Ok(n),
            _ => Err(bad_request(format!(
                "max must be a number from 1 to {largest}."
            ))),
        },
    }
}

/// `Link: <URL>; rel="next"` for the next page: `path` with these query parameters.
fn next_link(inner: &Inner, path: &str, params: &[(&str, String)]) -> Option<HeaderValue> {
    let mut url = reqwest::Url::parse(&format!("{}{path}", inner.origin)).ok()?;
    url.query_pairs_mut()
        .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())));
    HeaderValue::from_str(&format!("<{url}>; rel=\"next\"")).ok()
}

/// A page of `items`, with the `Link` header when there is a next page.
fn page(items: Vec<Value>, next: Option<HeaderValue>) -> Response {
    let mut response = ok_json(json!({ "items": items }));
    if let Some(link) = next {
        response.headers_mut().insert(header::LINK, link);
    }
    response
}

fn malformed_query(tracking: &Tracking) -> Response {
    error(StatusCode::BAD_REQUEST, tracking, "Malformed query string.")
}

/// `GET /v1/rooms`: `sortBy` = `id` (default: creation order), `lastactivity` or `created` (newest
/// first), `type` = `direct`|`group`, `max` (default 100), `cursor` from the `Link` header.
async fn list_rooms(
    State(inner): Shared,
    tracking: Option<Extension<Tracking>>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let tracking = tracking_of(tracking);
    let Ok(Query(query)) = query else {
        return malformed_query(&tracking);
    };
    let result = (|| {
        let max = max_param(&query, DEFAULT_ROOMS_MAX, LARGEST_PAGE_MAX)?;
        let sort_by = query.get("sortBy").map(|s| s.to_ascii_lowercase());
        let kind = query.get("type").map(String::as_str);
        if !matches!(kind, None | Some("direct") | Some("group")) {
            return Err(bad_request("type must be direct or group."));
        }
        let start = match query.get("cursor") {
            None => 0,
            Some(cursor) => cursor
                .parse::<usize>()
                .map_err(|_| bad_request("cursor is not one the double gave out."))?,
        };
        let state = lock(&inner.state);
        let mut rooms: Vec<_> = state
            .rooms
            .iter()
            .filter(|r| kind.is_none_or(|k| r.kind.type_str() == k))
            .collect();
        match sort_by.as_deref() {
            None | Some("id") => {}
            Some("lastactivity") => rooms.sort_by(|a, b| {
                (&b.last_activity, b.activity_seq).cmp(&(&a.last_activity, a.activity_seq))
            }),
            Some("created") => rooms.sort_by(|a, b| b.created.cmp(&a.created)),
            Some(other) => {
                return Err(bad_request(format!(
                    "sortBy {other:?} must be id, lastactivity or created."
                )))
            }
        }
        let items: Vec<Value> = rooms
            .iter()
            .skip(start)
            .take(max)
            .map(|r| inner.room_json(&state, r))
            .collect();
        let next = (start.saturating_add(max) < rooms.len()).then(|| {
            let mut params = vec![("max", max.to_string())];
            if let Some(sort_by) = query.get("sortBy") {
                params.push(("sortBy", sort_by.clone()));
            }
            if let Some(kind) = kind {
                params.push(("type", kind.to_owned()));
            }
            params.push(("cursor", (start + max).to_string()));
            params
        });
        Ok((items, next))
    })();
    match result {
        Ok((items, next)) => page(
            items,
            next.and_then(|params| next_link(&inner, "/v1/rooms", &params)),
        ),
        Err(err) => api_error(&tracking, err),
    }
}

/// `GET /v1/messages?roomId=`: newest first; `mentionedPeople=me` (required in group rooms, as for real
/// bots), `before` (ISO time), `beforeMessage` (id), `max` (default 50).
async fn list_messages(
    State(inner): Shared,
    tracking: Option<Extension<Tracking>>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let tracking = tracking_of(tracking);
    let Ok(Query(query)) = query else {
        return malformed_query(&tracking);
    };
    let result = (|| {
        let Some(room_id) = query.get("roomId").filter(|r| !r.is_empty()) else {
            return Err(bad_request("roomId is required."));
        };
        let max = max_param(&query, DEFAULT_MESSAGES_MAX, LARGEST_PAGE_MAX)?;
        let mentions_me = match query.get("mentionedPeople") {
            None => false,
            Some(list) => {
                for who in list.split(',').map(str::trim) {
                    if who != "me" && who != inner.bot.id {
                        return Err(bad_request(
                            "mentionedPeople supports only me (the caller).",
                        ));
                    }
                }
                true
            }
        };
        let before = match query.get("before") {
            None => None,
            Some(before) => Some(
                chrono::DateTime::parse_from_rfc3339(before)
                    .map(|t| stamp(t.with_timezone(&chrono::Utc)))
                    .map_err(|_| {
                        bad_request(format!("before {before:?} is not an ISO 8601 time."))
                    })?,
            ),
        };
        let state = lock(&inner.state);
        let room_id = canonical_id(room_id);
        let Some(room) = state.room(&room_id) else {
            return Err((
                StatusCode::NOT_FOUND,
                "Could not find a room with provided ID.".to_owned(),
            ));
        };
        if matches!(room.kind, RoomKind::Group { .. }) && !mentions_me {
            return Err((
                StatusCode::FORBIDDEN,
                "Bots can only list messages of a group space that mention them: use mentionedPeople=me."
                    .to_owned(),
            ));
        }
        let before_message = match query.get("beforeMessage") {
            None => None,
            Some(id) => match state.messages.get(&canonical_id(id)) {
                Some(m) if m.room_id == room_id => Some((m.created.clone(), m.seq)),
                _ => return Err(bad_request("beforeMessage is not a message of this room.")),
            },
        };
        let mut found: Vec<&Message> = state
            .messages
            .values()
            .filter(|m| m.room_id == room_id)
            .filter(|m| !mentions_me || m.mentioned_people.contains(&inner.bot.id))
            .filter(|m| before.as_ref().is_none_or(|b| m.created < *b))
            .filter(|m| {
                before_message
                    .as_ref()
                    .is_none_or(|(created, seq)| (&m.created, m.seq) < (created, *seq))
            })
            .collect();
        found.sort_by(|a, b| (&b.created, b.seq).cmp(&(&a.created, a.seq)));
        let more = found.len() > max;
        found.truncate(max);
        let next = match found.last() {
            Some(last) if more => {
                let mut params = vec![("roomId", room_id.clone())];
                if let Some(mentioned) = query.get("mentionedPeople") {
                    params.push(("mentionedPeople", mentioned.clone()));
                }
                if let Some(before) = query.get("before") {
                    params.push(("before", before.clone()));
                }
                params.push(("beforeMessage", last.id.clone()));
                params.push(("max", max.to_string()));
                Some(params)
            }
            _ => None,
        };
        let items: Vec<Value> = found.iter().map(|m| m.to_json()).collect();
        Ok((items, next))
    })();
    match result {
        Ok((items, next)) => page(
            items,
            next.and_then(|params| next_link(&inner, "/v1/messages", &params)),
        ),
        Err(err) => api_error(&tracking, err),
    }
}

async fn create_message(
    State(inner): Shared,
    tracking: Option<Extension<Tracking>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let tracking = tracking_of(tracking);
    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(err) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &tracking,
                &format!("Cannot read the request body (at most {MAX_BODY_BYTES} bytes): {err}"),
            )
        }
    };
    if let Some(fault) = inner.take_fault() {
        tracing::debug!(?fault, "webex double: faulted POST /messages");
        return fault_response(fault, &tracking);
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let draft = match mime.as_str() {
        "application/json" => json_draft(&bytes),
        "multipart/form-data" => multipart_draft(content_type, bytes).await,
        _ => Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Content-Type {content_type:?} is not supported: use application/json or multipart/form-data."
            ),
        )),
    };
    match draft.and_then(|draft| inner.post(draft)) {
        Ok(message) => ok_json(message),
        Err(err) => api_error(&tracking, err),
    }
}

fn fault_response(fault: MessagesFault, tracking: &Tracking) -> Response {
    match fault {
        MessagesFault::TooManyRequests {
            retry_after_seconds,
        } => {
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                tracking,
                "Too many requests have been made. Retry after the time in the Retry-After header.",
            );
            if let Ok(value) = HeaderValue::from_str(&retry_after_seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        MessagesFault::MalformedRetryAfter => {
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                tracking,
                "Too many requests have been made.",
            );
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(MALFORMED_RETRY_AFTER),
            );
            response
        }
        MessagesFault::ServerError(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            error(
                status,
                tracking,
                &format!(
                    "{} (simulated)",
                    status.canonical_reason().unwrap_or("Server error")
                ),
            )
        }
    }
}

/// The keys `POST /messages` takes (JSON and multipart text fields).
const MESSAGE_FIELDS: [&str; 5] = ["roomId", "toPersonEmail", "text", "markdown", "parentId"];

fn set_field(draft: &mut Draft, name: &str, value: String) -> Result<(), ApiError> {
    let slot = match name {
        "roomId" => &mut draft.room_id,
        "toPersonEmail" => &mut draft.to_person_email,
        "text" => &mut draft.text,
        "markdown" => &mut draft.markdown,
        "parentId" => &mut draft.parent_id,
        _ => {
            let known = MESSAGE_FIELDS.join(", ");
            return Err(bad_request(format!(
                "Unsupported field {name:?}: the double takes {known} (and one files part)."
            )));
        }
    };
    if slot.is_some() {
        return Err(bad_request(format!("Field {name:?} given twice.")));
    }
    *slot = Some(value);
    Ok(())
}

fn json_draft(bytes: &[u8]) -> Result<Draft, ApiError> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|err| bad_request(format!("The request body is not valid JSON: {err}")))?;
    let Value::Object(object) = value else {
        return Err(bad_request("The request body must be a JSON object."));
    };
    let mut draft = Draft::default();
    for (key, value) in object {
        match value {
            Value::Null => {}
            Value::String(s) => set_field(&mut draft, &key, s)?,
            _ if key == "files" => {
                return Err(bad_request(
                    "files by URL are not supported by the double: upload the file with multipart/form-data.",
                ))
            }
            other => {
                return Err(bad_request(format!(
                    "Field {key:?} must be a string, not {other}."
                )))
            }
        }
    }
    Ok(draft)
}

async fn multipart_draft(content_type: &str, bytes: axum::body::Bytes) -> Result<Draft, ApiError> {
    let parts = read_parts(content_type, bytes)
        .await
        .map_err(|err| match err {
            FormError::NoBoundary => bad_request("multipart/form-data without a boundary."),
            FormError::Malformed(problem) => {
                bad_request(format!("Malformed multipart body: {problem}"))
            }
        })?;
    let mut draft = Draft::default();
    for part in parts {
        if part.name == "files" {
            if draft.file.is_some() {
                return Err(bad_request(
                    "Only one file may be included with the message (files).",
                ));
            }
            let Some(file_name) = part.file_name.filter(|n| !n.is_empty()) else {
                return Err(bad_request("The files part needs a filename."));
            };
            draft.file = Some(PostedFile {
                file_name,
                content_type: part
                    .content_type
                    .unwrap_or_else(|| "application/octet-stream".to_owned()),
                bytes: part.data,
            });
        } else {
            let value = String::from_utf8(part.data)
                .map_err(|_| bad_request(format!("Field {:?} is not UTF-8.", part.name)))?;
            set_field(&mut draft, &part.name, value)?;
        }
    }
    Ok(draft)
}

async fn list_webhooks(State(inner): Shared) -> Response {
    let items = lock(&inner.state).webhooks.clone();
    ok_json(json!({ "items": items }))
}

/// A required non-empty string field of a JSON object.
fn required_str<'a>(object: &'a Map<String, Value>, key: &str) -> Result<&'a str, ApiError> {
    match object.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        _ => Err(bad_request(format!(
            "{key} is required (a non-empty string)."
        ))),
    }
}

/// An optional string field of a JSON object (absent or null is `None`).
fn optional_str<'a>(
    object: &'a Map<String, Value>,
    key: &str,
) -> Result<Option<&'a str>, ApiError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(bad_request(format!("{key} must be a string."))),
    }
}

fn json_object(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(bad_request("The request body must be a JSON object.")),
        Err(err) => Err(bad_request(format!(
            "The request body is not valid JSON: {err}"
        ))),
    }
}

fn check_target_url(url: &str) -> Result<(), ApiError> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(bad_request(format!(
            "targetUrl {url:?} must be an http(s) URL."
        )))
    }
}

async fn create_webhook(
    State(inner): Shared,
    tracking: Option<Extension<Tracking>>,
    body: Body,
) -> Response {
    let tracking = tracking_of(tracking);
    let result = async {
        let bytes = axum::body::to_bytes(body, 1024 * 1024)
            .await
            .map_err(|err| bad_request(format!("Cannot read the request body: {err}")))?;
        let object = json_object(&bytes)?;
        let name = required_str(&object, "name")?;
        let target_url = required_str(&object, "targetUrl")?;
        check_target_url(target_url)?;
        let resource = required_str(&object, "resource")?;
        let event = required_str(&object, "event")?;
        let filter = optional_str(&object, "filter")?;
        let secret = optional_str(&object, "secret")?;
        let mut hook = Map::new();
        hook.insert("id".into(), json!(inner.new_id("WEBHOOK")));
        hook.insert("name".into(), json!(name));
        hook.insert("targetUrl".into(), json!(target_url));
        hook.insert("resource".into(), json!(resource));
        hook.insert("event".into(), json!(event));
        if let Some(filter) = filter {
            hook.insert("filter".into(), json!(filter));
        }
        if let Some(secret) = secret {
            hook.insert("secret".into(), json!(secret));
        }
        hook.insert("orgId".into(), json!(inner.org_id));
        hook.insert("createdBy".into(), json!(inner.bot.id));
        hook.insert("appId".into(), json!(inner.app_id));
        hook.insert("ownedBy".into(), json!("creator"));
        hook.insert("status".into(), json!("active"));
        hook.insert("created".into(), json!(now_stamp()));
        let hook = Value::Object(hook);
        lock(&inner.state).webhooks.push(hook.clone());
        Ok::<_, ApiError>(hook)
    }
    .await;
    match result {
        Ok(hook) => ok_json(hook),
        Err(err) => api_error(&tracking, err),
    }
}

fn webhook_not_found(tracking: &Tracking) -> Response {
    error(
        StatusCode::NOT_FOUND,
        tracking,
        "Could not find a webhook with provided ID.",
    )
}

async fn get_webhook(
    State(inner): Shared,
    tracking: Option<Extension<Tracking>>,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    let tracking = tracking_of(tracking);
    let Ok(Path(id)) = id else {
        return webhook_not_found(&tracking);
    };
    let state = lock(&inner.state);
    match state.webhooks.iter().find(|h| h["id"] == id.as_str()) {
        Some(hook) => ok_json(hook.clone()),
        None => webhook_not_found(&tracking),
    }
}

async fn update_webhook(
    State(inner): Shared,
    tracking: Option<Extension<Tracking>>,
    id: Result<Path<String>, PathRejection>,
    body: Body,
) -> Response {
    let tracking = tracking_of(tracking);
    let Ok(Path(id)) = id else {
        return webhook_not_found(&tracking);
    };
    let result = async {
        let bytes = axum::body::to_bytes(body, 1024 * 1024)
            .await
            .map_err(|err| bad_request(format!("Cannot read the request body: {err}")))?;
        let object = json_object(&bytes)?;
        let name = required_str(&object, "name")?;
        let target_url = required_str(&object, "targetUrl")?;
        check_target_url(target_url)?;
        let secret = optional_str(&object, "secret")?;
        let status = optional_str(&object, "status")?;
        if let Some(status) = status {
            if status != "active" && status != "inactive" {
                return Err(bad_request(format!(
                    "status {status:?} must be active or inactive."
                )));
            }
        }
        let mut state = lock(&inner.state);
        let Some(Value::Object(hook)) = state.webhooks.iter_mut().find(|h| h["id"] == id.as_str())
        else {
            return Err((
                StatusCode::NOT_FOUND,
                "Could not find a webhook with provided ID.".to_owned(),
            ));
        };
        hook.insert("name".into(), json!(name));
        hook.insert("targetUrl".into(), json!(target_url));
        if let Some(secret) = secret {
            hook.insert("secret".into(), json!(secret));
        }
        if let Some(status) = status {
            hook.insert("status".into(), json!(status));
        }
        Ok(Value::Object(hook.clone()))
    }
    .await;
    match result {
        Ok(hook) => ok_json(hook),
        Err(err) => api_error(&tracking, err),
    }
}

async fn delete_webhook(
    State(inner): Shared,
    tracking: Option<Extension<Tracking>>,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    let tracking = tracking_of(tracking);
    let Ok(Path(id)) = id else {
        return webhook_not_found(&tracking);
    };
    let mut state = lock(&inner.state);
    let before = state.webhooks.len();
    state.webhooks.retain(|h| h["id"] != id.as_str());
    if state.webhooks.len() == before {
        return webhook_not_found(&tracking);
    }
    StatusCode::NO_CONTENT.into_response()
}
