//! Clients of the location services that push positions instead of answering "where is user X?":
//! Cisco Spaces (the Firehose stream, map metadata and images) and Meraki (the Dashboard API's floor
//! plans and clients). Their positions go into the store's live table; these modules only speak
//! HTTP to the services.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::source::Secret;

pub mod meraki;
pub mod spaces;

/// Everything needed to talk to one push-based location service.
#[derive(Clone)]
pub struct LiveSettings {
    /// Configured name of the source (in logs, errors, answers).
    pub name: String,
    /// Base URL: the Spaces regional host (`https://partners.ciscospaces.io`) or the Meraki
    /// Dashboard API base (`https://api.meraki.com/api/v1`).
    pub url: String,
    /// The API key (`X-API-KEY` for Spaces, the Bearer key for Meraki).
    pub api_key: Secret,
    /// Extra PEM trust roots for this service.
    pub ca_file: Option<PathBuf>,
    /// Skip TLS certificate verification (explicit; logged as a warning).
    pub insecure_skip_tls_verify: bool,
    /// Timeout of each ordinary HTTP request (connect, metadata, one page).
    pub timeout: Duration,
    /// Timeout of a floor image download.
    pub image_timeout: Duration,
    /// How connections leave the machine (direct, or through the corporate proxy).
    pub network: whereis_net::Network,
}

impl fmt::Debug for LiveSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveSettings")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("api_key", &self.api_key)
            .field("ca_file", &self.ca_file)
            .field("insecure_skip_tls_verify", &self.insecure_skip_tls_verify)
            .finish_non_exhaustive()
    }
}

impl LiveSettings {
    /// The HTTP client for this service (route, TLS settings, timeouts).
    pub(crate) fn http_client(&self) -> Result<reqwest::Client, crate::SourceError> {
        crate::source::http_client(
            &self.name,
            &self.network,
            self.timeout,
            self.ca_file.as_deref(),
            self.insecure_skip_tls_verify,
        )
    }
}
