//! The U2C service catalog and the device service (WDM): `GET|POST /wdm/api/v1/devices`,
//! `GET|DELETE /wdm/api/v1/devices/{id}`, with a 429 fault for registrations and a registration cap.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde_json::{json, Map, Value};

use super::rest::{api_error, error, ok_json, tracking_of, Shared, Tracking};
use super::{bad_request, lock, now_stamp, ApiError, Inner, WebexDouble};

/// How many devices the service keeps per bot before it refuses new registrations (Webex caps them
/// somewhere between 100 and 750).
pub const MAX_DEVICES: usize = 100;
/// Largest `POST /devices` body read.
const MAX_DEVICE_BODY: usize = 64 * 1024;

/// A device registered with the double's device service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredDevice {
    /// The registration id (a uuid): the last segment of `url` and of `web_socket_url`'s path.
    pub id: String,
    /// `name`, as registered (what clients reuse a registration by).
    pub name: String,
    /// `deviceName`, as registered.
    pub device_name: String,
    /// `deviceType`, as registered.
    pub device_type: String,
    /// `url`: `{device_url}/devices/{id}`.
    pub url: String,
    /// `webSocketUrl`: `ws://127.0.0.1:PORT/mercury/registrations/{id}/messages`.
    pub web_socket_url: String,
}

/// What happened to a device registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChange {
    /// Created by `POST /devices`.
    Registered,
    /// Removed by `DELETE /devices/{id}`.
    Deleted,
    /// Made stale by [`WebexDouble::expire_devices`].
    Expired,
}

/// One change of the device registrations, in the order they happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceEvent {
    /// What happened.
    pub change: DeviceChange,
    /// The registration id.
    pub id: String,
    /// The device's `name`.
    pub name: String,
}

/// The device service's state.
#[derive(Default)]
pub(super) struct Registry {
    devices: Vec<Device>,
    history: Vec<DeviceEvent>,
    /// The next `count` registrations answer 429 with `Retry-After: seconds`: (seconds, count).
    fault: Option<(u64, usize)>,
}

impl Registry {
    /// Whether a registration with this id is current (the websocket handshake needs one).
    pub(super) fn knows(&self, id: &str) -> bool {
        self.devices.iter().any(|d| d.id == id)
    }
}

struct Device {
    id: String,
    name: String,
    device_name: String,
    device_type: String,
    /// Everything the client sent, echoed back (e.g. `model`, `systemVersion`).
    fields: Map<String, Value>,
    created: String,
    modified: String,
}

impl Inner {
    fn device_url(&self) -> String {
        format!("{}/wdm/api/v1", self.origin)
    }

    fn web_socket_url(&self, id: &str) -> String {
        let host = self.origin.trim_start_matches("http://");
        format!("ws://{host}/mercury/registrations/{id}/messages")
    }

    fn device_json(&self, device: &Device) -> Value {
        let mut m = device.fields.clone();
        m.insert(
            "url".into(),
            json!(format!("{}/devices/{}", self.device_url(), device.id)),
        );
        m.insert(
            "webSocketUrl".into(),
            json!(self.web_socket_url(&device.id)),
        );
        m.insert("name".into(), json!(device.name));
        m.insert("deviceName".into(), json!(device.device_name));
        m.insert("deviceType".into(), json!(device.device_type));
        m.insert("creationTime".into(), json!(device.created));
        m.insert("modificationTime".into(), json!(device.modified));
        m.insert(
            "services".into(),
            json!({ "conversationServiceUrl": format!("{}/conversation/api/v1", self.origin) }),
        );
        Value::Object(m)
    }

    fn registered(&self, device: &Device) -> RegisteredDevice {
        RegisteredDevice {
            id: device.id.clone(),
            name: device.name.clone(),
            device_name: device.device_name.clone(),
            device_type: device.device_type.clone(),
            url: format!("{}/devices/{}", self.device_url(), device.id),
            web_socket_url: self.web_socket_url(&device.id),
        }
    }
}

impl WebexDouble {
    /// The devices registered now, oldest first.
    pub fn devices(&self) -> Vec<RegisteredDevice> {
        let registry = lock(&self.inner.devices);
        registry
            .devices
            .iter()
            .map(|d| self.inner.registered(d))
            .collect()
    }

    /// How many devices are registered now.
    pub fn device_count(&self) -> usize {
        lock(&self.inner.devices).devices.len()
    }

    /// Every registration, deletion and expiry so far, in order.
    pub fn device_history(&self) -> Vec<DeviceEvent> {
        lock(&self.inner.devices).history.clone()
    }

    /// How many devices were registered (`POST /devices` answered 200) so far.
    pub fn registration_count(&self) -> usize {
        self.count_changes(DeviceChange::Registered)
    }

    /// How many devices were deleted (`DELETE /devices/{id}` answered 204) so far.
    pub fn deletion_count(&self) -> usize {
        self.count_changes(DeviceChange::Deleted)
    }

    fn count_changes(&self, change: DeviceChange) -> usize {
        lock(&self.inner.devices)
            .history
            .iter()
            .filter(|e| e.change == change)
            .count()
    }

    /// The next `count` `POST /devices` answer `429 Too Many Requests` with `Retry-After:
    /// retry_after_seconds` and register nothing (replaces a pending fault; 0 clears it).
    pub fn fail_next_registrations(&self, count: usize, retry_after_seconds: u64) {
        lock(&self.inner.devices).fault = (count > 0).then_some((retry_after_seconds, count));
    }

    /// Makes every current registration stale, as when Webex expires devices: they leave the device
    /// list, a websocket handshake for them answers 404 and their open websockets are closed with code
    /// 4404. Returns how many devices expired.
    pub fn expire_devices(&self) -> usize {
        let expired: Vec<Device> = {
            let mut registry = lock(&self.inner.devices);
            let expired = std::mem::take(&mut registry.devices);
            for device in &expired {
                registry.history.push(DeviceEvent {
                    change: DeviceChange::Expired,
                    id: device.id.clone(),
                    name: device.name.clone(),
                });
            }
            expired
        };
        for device in &expired {
            self.inner.mercury.close_device(
                &device.id,
                super::mercury::CLOSE_EXPIRED,
                "registration expired",
            );
        }
        self.inner.bump();
        expired.len()
    }
}

/// `GET /u2c/api/v1/catalog?format=hostmap` (and `/limited/catalog`): the service links, pointing at
/// this double.
pub(super) async fn catalog(State(inner): Shared) -> Response {
    let origin = &inner.origin;
    let host = origin.trim_start_matches("http://");
    ok_json(json!({
        "serviceLinks": {
            "wdm": format!("{origin}/wdm/api/v1"),
            "hydra": format!("{origin}/v1"),
            "conversation": format!("{origin}/conversation/api/v1"),
            "u2c": format!("{origin}/u2c/api/v1"),
        },
        "hostCatalog": {
            host: [{ "host": host, "ttl": -1, "priority": 1, "id": "sim:wdm" }],
        },
        "format": "hostmap",
    }))
}

/// `GET /wdm/api/v1/devices`.
pub(super) async fn list_devices(State(inner): Shared) -> Response {
    let registry = lock(&inner.devices);
    let devices: Vec<Value> = registry
        .devices
        .iter()
        .map(|d| inner.device_json(d))
        .collect();
    ok_json(json!({ "devices": devices }))
}

/// `POST /wdm/api/v1/devices`: registers a device (`deviceType` required).
pub(super) async fn register_device(
    State(inner): Shared,
    tracking: Option<Extension<Tracking>>,
    body: Body,
) -> Response {
    let tracking = tracking_of(tracking);
    let bytes = match axum::body::to_bytes(body, MAX_DEVICE_BODY).await {
        Ok(bytes) => bytes,
        Err(err) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &tracking,
                &format!("Cannot read the request body: {err}"),
            )
        }
    };
    if let Some(retry_after) = take_fault(&inner) {
        tracing::debug!(retry_after, "webex double: 429 for POST /devices");
        let mut response = error(
            StatusCode::TOO_MANY_REQUESTS,
            &tracking,
            "Too many device registrations. Retry after the time in the Retry-After header.",
        );
        if let Ok(value) = HeaderValue::from_str(&retry_after.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    match register(&inner, &bytes) {
        Ok(device) => ok_json(device),
        Err(err) => api_error(&tracking, err),
    }
}

fn take_fault(inner: &Inner) -> Option<u64> {
    let mut registry = lock(&inner.devices);
    let (seconds, left) = registry.fault?;
    registry.fault = (left > 1).then_some((seconds, left - 1));
    Some(seconds)
}

fn register(inner: &Arc<Inner>, bytes: &[u8]) -> Result<Value, ApiError> {
    let fields = match serde_json::from_slice(bytes) {
        Ok(Value::Object(object)) => object,
        Ok(_) => return Err(bad_request("The request body must be a JSON object.")),
        Err(err) => {
            return Err(bad_request(format!(
                "The request body is not valid JSON: {err}"
            )))
        }
    };
    let text = |key: &str| -> Result<Option<String>, ApiError> {
        match fields.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(bad_request(format!("{key} must be a string."))),
        }
    };
    let Some(device_type) = text("deviceType")?.filter(|t| !t.is_empty()) else {
        return Err(bad_request("deviceType is required."));
    };
    let device_name = text("deviceName")?.unwrap_or_default();
    let name = text("name")?.unwrap_or_else(|| device_name.clone());
    let now = now_stamp();
    let device = Device {
        id: inner.uuid(),
        name,
        device_name,
        device_type,
        fields,
        created: now.clone(),
        modified: now,
    };
    let answer = {
        let mut registry = lock(&inner.devices);
        if registry.devices.len() >= MAX_DEVICES {
            return Err(bad_request(format!(
                "User has excessive device registrations (at most {MAX_DEVICES})."
            )));
        }
        let answer = inner.device_json(&device);
        registry.history.push(DeviceEvent {
            change: DeviceChange::Registered,
            id: device.id.clone(),
            name: device.name.clone(),
        });
        tracing::debug!(device = %device.id, name = %device.name, "webex double: device registered");
        registry.devices.push(device);
        answer
    };
    inner.bump();
    Ok(answer)
}

fn device_not_found(tracking: &Tracking) -> Response {
    error(
        StatusCode::NOT_FOUND,
        tracking,
        "Could not find a device with provided ID.",
    )
}

/// `GET /wdm/api/v1/devices/{id}`.
pub(super) async fn get_device(
    State(inner): Shared,
    tracking: Option<Extension<Tracking>>,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    let tracking = tracking_of(tracking);
    let Ok(Path(id)) = id else {
        return device_not_found(&tracking);
    };
    let registry = lock(&inner.devices);
    match registry.devices.iter().find(|d| d.id == id) {
        Some(device) => ok_json(inner.device_json(device)),
        None => device_not_found(&tracking),
    }
}

/// `DELETE /wdm/api/v1/devices/{id}`: 204; the device's open websockets are closed with 4404.
pub(super) async fn delete_device(
    State(inner): Shared,
    tracking: Option<Extension<Tracking>>,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    let tracking = tracking_of(tracking);
    let Ok(Path(id)) = id else {
        return device_not_found(&tracking);
    };
    {
        let mut registry = lock(&inner.devices);
        let Some(at) = registry.devices.iter().position(|d| d.id == id) else {
            return device_not_found(&tracking);
        };
        let device = registry.devices.remove(at);
        registry.history.push(DeviceEvent {
            change: DeviceChange::Deleted,
            id: device.id,
            name: device.name,
        });
    }
    inner
        .mercury
        .close_device(&id, super::mercury::CLOSE_EXPIRED, "device deleted");
    inner.bump();
    StatusCode::NO_CONTENT.into_response()
}
