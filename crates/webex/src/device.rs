//! The device service (WDM): a bot connects its websocket as a registered "device". The service's
//! URL comes from the U2C catalog; devices are listed, registered and deleted there. Registrations
//! per bot are capped, so a device is reused by name instead of registered on every start.

use std::fmt;

use reqwest::Url;
use serde::{Deserialize, Serialize};

use crate::client::{decode, keep_valid, WebexClient};
use crate::error::WebexError;
use crate::origin::check_trusted;

/// The U2C service catalog's base on Webex.
pub const DEFAULT_U2C_BASE: &str = "https://u2c.wbx2.com/u2c/api/v1";
/// The device service Webex names when U2C cannot be asked.
pub const DEFAULT_DEVICE_SERVICE: &str = "https://wdm-a.wbx2.com/wdm/api/v1";

/// A registered device (`GET {device service}/devices`). Unknown fields are ignored.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    /// The device's own URL (`{device service}/devices/{id}`): `DELETE` it to unregister.
    pub url: String,
    /// Where to open the websocket (`wss://mercury-connection-…/registrations/{id}/messages`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_socket_url: Option<String>,
    /// The name it is found again by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its device name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_name: Option<String>,
    /// Its device type (`DESKTOP`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_type: Option<String>,
    /// Last change, as Webex wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modification_time: Option<String>,
    /// Registration time, as Webex wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_time: Option<String>,
}

/// A device to register (`POST {device service}/devices`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NewDevice {
    /// Device name.
    pub device_name: String,
    /// Device type; Webex expects `DESKTOP` for this kind of client.
    pub device_type: String,
    /// Localized model.
    pub localized_model: String,
    /// Model.
    pub model: String,
    /// The name the device is found again by on the next start.
    pub name: String,
    /// System name.
    pub system_name: String,
    /// System version.
    pub system_version: String,
}

impl NewDevice {
    /// whereis's device, found again by `name`.
    pub fn named(name: &str) -> NewDevice {
        NewDevice {
            device_name: "whereis".into(),
            device_type: "DESKTOP".into(),
            localized_model: "rust".into(),
            model: "rust".into(),
            name: name.into(),
            system_name: "whereis".into(),
            system_version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// The device service of one bot, reached through its [`WebexClient`] (same connection pool, proxy,
/// retries and `Retry-After` handling).
#[derive(Clone)]
pub struct DeviceService {
    client: WebexClient,
    /// Without a trailing slash.
    base: Url,
}

impl fmt::Debug for DeviceService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceService")
            .field("url", &self.base.as_str())
            .field("client", &self.client)
            .finish()
    }
}

/// `GET {u2c}/catalog?format=hostmap`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Catalog {
    #[serde(default)]
    service_links: Option<ServiceLinks>,
}

#[derive(Deserialize)]
struct ServiceLinks {
    #[serde(default)]
    wdm: Option<String>,
}

/// `GET {device service}/devices`.
#[derive(Deserialize)]
struct DeviceList {
    #[serde(default)]
    devices: Option<Vec<serde_json::Value>>,
}

impl DeviceService {
    /// The device service at a configured URL (e.g. [`DEFAULT_DEVICE_SERVICE`]).
    pub fn new(client: WebexClient, device_service_url: &str) -> Result<DeviceService, WebexError> {
        let base = parse_service_url(device_service_url)
            .map_err(|why| WebexError::Setup(format!("device service URL: {why}")))?;
        Ok(DeviceService { client, base })
    }

    /// Asks the U2C catalog at `u2c_base` (e.g. [`DEFAULT_U2C_BASE`]) where the device service is
    /// (`serviceLinks.wdm`). The answer is followed only to the catalog's own origin, the API's, or
    /// a Webex domain over TLS.
    pub async fn discover(
        client: WebexClient,
        u2c_base: &str,
    ) -> Result<DeviceService, WebexError> {
        const OP: &str = "GET /catalog";
        let u2c = parse_service_url(u2c_base)
            .map_err(|why| WebexError::Setup(format!("U2C URL: {why}")))?;
        let mut url = u2c.clone();
        url.path_segments_mut()
            .map_err(|()| WebexError::Setup("U2C URL cannot have a path".into()))?
            .pop_if_empty()
            .push("catalog");
        url.query_pairs_mut().append_pair("format", "hostmap");
        let policy = client.retry_policy().clone();
        let answer = client.get_at(OP, &url, &policy).await?;
        let catalog: Catalog = decode(OP, &answer.body)?;
        let wdm = catalog
            .service_links
            .and_then(|links| links.wdm)
            .filter(|wdm| !wdm.trim().is_empty())
            .ok_or_else(|| WebexError::Decode(format!("{OP}: no serviceLinks.wdm")))?;
        let base = parse_service_url(&wdm)
            .map_err(|why| WebexError::Decode(format!("{OP}: serviceLinks.wdm: {why}")))?;
        check_trusted(&base, &[&u2c, client.base_url()])?;
        tracing::debug!(device_service = base.as_str(), "found the device service");
        Ok(DeviceService { client, base })
    }

    /// The device service's URL.
    pub fn url(&self) -> &str {
        self.base.as_str()
    }

    pub(crate) fn base_url(&self) -> &Url {
        &self.base
    }

    /// Every device registered for the bot (`GET /devices`); entries of an unexpected shape are
    /// skipped.
    pub async fn devices(&self) -> Result<Vec<Device>, WebexError> {
        const OP: &str = "GET /devices";
        let url = self.devices_url()?;
        let policy = self.client.retry_policy().clone();
        let answer = self.client.get_at(OP, &url, &policy).await?;
        let list: DeviceList = decode(OP, &answer.body)?;
        Ok(keep_valid(OP, list.devices.unwrap_or_default()))
    }

    /// Registers a device (`POST /devices`). A 429 waits its `Retry-After`, as every call does.
    pub async fn register(&self, device: &NewDevice) -> Result<Device, WebexError> {
        const OP: &str = "POST /devices";
        let url = self.devices_url()?;
        let answer = self.client.post_json_at(OP, &url, device).await?;
        let device: Device = decode(OP, &answer.body)?;
        tracing::info!(
            name = device.name.as_deref().unwrap_or("-"),
            "registered a webex device"
        );
        Ok(device)
    }

    /// Unregisters a device (`DELETE {device.url}`). A device already gone (404) is fine.
    pub async fn delete(&self, device: &Device) -> Result<(), WebexError> {
        const OP: &str = "DELETE /devices/{id}";
        let url = Url::parse(device.url.trim())
            .map_err(|err| WebexError::Decode(format!("device URL: {err}")))?;
        check_trusted(&url, &[&self.base, self.client.base_url()])?;
        match self.client.delete_at(OP, &url).await {
            Ok(_) => Ok(()),
            Err(err) if err.status() == Some(404) => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// The device named `device.name` when one is registered, otherwise a new registration.
    pub async fn find_or_register(&self, device: &NewDevice) -> Result<Device, WebexError> {
        let existing = self
            .devices()
            .await?
            .into_iter()
            .find(|known| known.name.as_deref() == Some(device.name.as_str()));
        match existing {
            Some(found) => {
                tracing::debug!(
                    name = device.name.as_str(),
                    "reusing the registered webex device"
                );
                Ok(found)
            }
            None => self.register(device).await,
        }
    }

    fn devices_url(&self) -> Result<Url, WebexError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| WebexError::Setup("device service URL cannot have a path".into()))?
            .pop_if_empty()
            .push("devices");
        Ok(url)
    }
}

/// An absolute http(s) URL with a host and no query or fragment, without a trailing slash.
fn parse_service_url(text: &str) -> Result<Url, String> {
    let trimmed = text.trim().trim_end_matches('/');
    let url = Url::parse(trimmed).map_err(|err| format!("{trimmed:?}: {err}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("{trimmed:?} is not an http(s) URL with a host"));
    }
    if url.cannot_be_a_base() || url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{trimmed:?} must not have a query or fragment"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_device_body() {
        assert_eq!(
            serde_json::to_value(NewDevice::named("whereis-bot")).unwrap(),
            serde_json::json!({"deviceName":"whereis","deviceType":"DESKTOP","localizedModel":"rust",
                "model":"rust","name":"whereis-bot","systemName":"whereis",
                "systemVersion": env!("CARGO_PKG_VERSION")})
        );
    }

    #[test]
    fn device_tolerates_unknown_and_missing_fields() {
        let device: Device = serde_json::from_str(
            r#"{"url":"https://wdm-a.wbx2.com/wdm/api/v1/devices/1","services":{},"name":null}"#,
        )
        .unwrap();
        assert_eq!(device.web_socket_url, None);
        assert_eq!(device.name, None);
    }

    #[test]
    fn service_urls_checked() {
        assert!(parse_service_url("https://wdm-a.wbx2.com/wdm/api/v1/").is_ok());
        for bad in ["", "wdm", "ftp://x/y", "https://x/y?z=1", "mailto:a@b"] {
            assert!(parse_service_url(bad).is_err(), "{bad}");
        }
    }
}
