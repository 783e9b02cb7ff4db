//! The configuration file as TOML gives it: every section and key, with the spans errors point at.
//! Unknown keys are refused here (`deny_unknown_fields`), so a typo never passes silently.

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use crate::directory::RawDirectory;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub(super) server: RawServer,
    #[serde(default)]
    pub(super) store: RawStore,
    #[serde(default)]
    pub(super) lookup: RawLookup,
    pub(super) sources: Option<Vec<RawSource>>,
    pub(super) webex: Option<Spanned<RawWebex>>,
    pub(super) directory: Option<Spanned<RawDirectory>>,
    #[serde(default)]
    pub(super) privacy: RawPrivacy,
    #[serde(default)]
    pub(super) maps: RawMaps,
    pub(super) network: Option<Spanned<RawNetwork>>,
    pub(super) web: Option<Spanned<RawWeb>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWeb {
    pub(super) auth: Option<Spanned<String>>,
    pub(super) header: Option<Spanned<String>>,
    pub(super) trusted_proxies: Option<Spanned<Vec<String>>>,
    pub(super) requester: Option<Spanned<String>>,
    pub(super) building_roster: Option<bool>,
    pub(super) issuer: Option<Spanned<String>>,
    pub(super) client_id: Option<Spanned<String>>,
    pub(super) client_secret_env: Option<Spanned<String>>,
    pub(super) client_secret_file: Option<Spanned<PathBuf>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNetwork {
    pub(super) proxy: Option<Spanned<String>>,
    pub(super) proxy_username: Option<String>,
    pub(super) proxy_password_env: Option<Spanned<String>>,
    pub(super) proxy_password_file: Option<Spanned<PathBuf>>,
    pub(super) no_proxy: Option<Spanned<Vec<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMaps {
    pub(super) display_width: Option<Spanned<u32>>,
    pub(super) crop_size: Option<Spanned<u32>>,
    pub(super) cache_dir: Option<PathBuf>,
    pub(super) memory_mb: Option<Spanned<u64>>,
    pub(super) fetch_timeout_ms: Option<Spanned<u64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub(super) listen: Option<Spanned<String>>,
    pub(super) public_url: Option<Spanned<String>>,
    pub(super) request_timeout_ms: Option<Spanned<u64>>,
    pub(super) metrics_listen: Option<Spanned<String>>,
    pub(super) shutdown_grace_seconds: Option<Spanned<u64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStore {
    pub(super) url: Option<Spanned<String>>,
    pub(super) url_env: Option<Spanned<String>>,
    pub(super) url_file: Option<Spanned<PathBuf>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebex {
    pub(super) token_env: Option<Spanned<String>>,
    pub(super) token_file: Option<Spanned<PathBuf>>,
    pub(super) webhook_secret_env: Option<Spanned<String>>,
    pub(super) webhook_secret_file: Option<Spanned<PathBuf>>,
    pub(super) api_base: Option<Spanned<String>>,
    pub(super) allowed_domains: Option<Spanned<Vec<String>>>,
    pub(super) mode: Option<Spanned<String>>,
    pub(super) device_url: Option<Spanned<String>>,
    pub(super) max_backlog_minutes: Option<Spanned<u32>>,
    #[serde(default)]
    pub(super) allow_unsigned_webhooks: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPrivacy {
    pub(super) rate_limit_per_hour: Option<Spanned<u32>>,
    pub(super) audit_retention_days: Option<Spanned<u32>>,
    pub(super) notify_target: Option<bool>,
    pub(super) admins: Option<Vec<String>>,
    pub(super) allowed_domains: Option<Spanned<Vec<String>>>,
    pub(super) default: Option<Spanned<String>>,
    pub(super) working_hours: Option<Spanned<String>>,
    pub(super) working_days: Option<Spanned<Vec<String>>>,
    pub(super) timezone: Option<Spanned<String>>,
    pub(super) max_precision: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLookup {
    pub(super) username_variants: Option<Spanned<Vec<String>>>,
    pub(super) timeout_ms: Option<Spanned<u64>>,
    pub(super) deadline_ms: Option<Spanned<u64>>,
    pub(super) max_age_seconds: Option<u64>,
}

#[derive(Debug, Deserialize, Clone, Copy)]
pub(super) enum RawKind {
    #[serde(rename = "cmx")]
    Cmx,
    #[serde(rename = "cmx-v2")]
    CmxV2,
    #[serde(rename = "mse")]
    Mse,
    #[serde(rename = "spaces")]
    Spaces,
    #[serde(rename = "meraki")]
    Meraki,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSource {
    pub(super) name: Spanned<String>,
    pub(super) kind: RawKind,
    pub(super) url: Spanned<String>,
    pub(super) username: Option<Spanned<String>>,
    pub(super) password_env: Option<Spanned<String>>,
    pub(super) password_file: Option<Spanned<PathBuf>>,
    pub(super) v3_username: Option<Spanned<String>>,
    pub(super) v3_password_env: Option<Spanned<String>>,
    pub(super) v3_password_file: Option<Spanned<PathBuf>>,
    pub(super) ca_file: Option<Spanned<PathBuf>>,
    #[serde(default)]
    pub(super) insecure_skip_tls_verify: bool,
    #[serde(default)]
    pub(super) priority: i32,
    // Cisco Spaces and Meraki (`config/live.rs`).
    pub(super) api_key_env: Option<Spanned<String>>,
    pub(super) api_key_file: Option<Spanned<PathBuf>>,
    pub(super) network_id: Option<Spanned<String>>,
    pub(super) validator_env: Option<Spanned<String>>,
    pub(super) validator_file: Option<Spanned<PathBuf>>,
    pub(super) secret_env: Option<Spanned<String>>,
    pub(super) secret_file: Option<Spanned<PathBuf>>,
    pub(super) unit: Option<Spanned<String>>,
    pub(super) origin: Option<Spanned<String>>,
}
