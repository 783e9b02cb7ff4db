//! The configuration file (TOML, DESIGN.md §3.3): parsing, validation with file/line/key in every
//! error, defaults, and secrets read from the environment or from files — never from the file itself.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use whereis_floormap::MapSettings;

use crate::directory::{DirectoryConfig, RawDirectory};
use secrecy::SecretString;
use whereis_location::{Credentials, LocatorSettings, Secret, SourceKind, SourceSettings};
use whereis_net::{Network, ProxyServer};

/// A configuration that could not be loaded; the message names the file, line and key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read the configuration: {source}")]
    Read {
        /// The configuration file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Bad TOML, an unknown key, a wrong type, or an invalid value.
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        /// The configuration file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong, naming the key.
        message: String,
    },
    /// A problem that belongs to no single line (e.g. no sources at all).
    #[error("{path}: {message}")]
    File {
        /// The configuration file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// The validated configuration, with secrets resolved and paths made absolute.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the file was read from (for messages).
    pub path: PathBuf,
    /// HTTP server settings.
    pub server: ServerConfig,
    /// Lookup settings.
    pub lookup: LocatorSettings,
    /// Location servers, in file order.
    pub sources: Vec<SourceSettings>,
    /// Floor maps: drawing and caching.
    pub maps: MapSettings,
    /// The Webex bot, when `[webex]` is configured.
    pub webex: Option<WebexConfig>,
    /// Who may do what.
    pub privacy: PrivacyConfig,
    /// Where opt-outs, the audit log and handled webhooks are kept (`sqlite://…` or `postgres://…`);
    /// a secret, since a PostgreSQL URL carries a password.
    pub store_url: Secret,
    /// The corporate directory, when configured.
    pub directory: Option<DirectoryConfig>,
    /// How outbound connections leave the machine: `[network]`, else the proxy environment variables.
    pub network: Network,
}

/// How the bot receives messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebexMode {
    /// Webex POSTs each message to `{server.public_url}/webhooks/webex`.
    Webhook,
    /// whereis connects out to Webex over a websocket (no public URL, no inbound firewall hole).
    Websocket,
}

impl WebexMode {
    /// `"webhook"` or `"websocket"`.
    pub fn as_str(self) -> &'static str {
        match self {
            WebexMode::Webhook => "webhook",
            WebexMode::Websocket => "websocket",
        }
    }
}

/// `[webex]`: the bot's account and who may use it.
#[derive(Debug, Clone)]
pub struct WebexConfig {
    /// The bot's access token.
    pub token: Secret,
    /// The webhook secret; when set, unsigned or wrongly signed webhooks are refused.
    pub webhook_secret: Option<Secret>,
    /// REST API base, e.g. `https://webexapis.com/v1`.
    pub api_base: String,
    /// Webhook or websocket.
    pub mode: WebexMode,
    /// The device service for websocket mode; `None`: found through the U2C catalog.
    pub device_url: Option<String>,
    /// Questions older than this when the bot catches up after being away get "sorry, I was
    /// offline" instead of a location.
    pub max_backlog: Duration,
    /// Serve webhook mode without a webhook secret (explicit; unsigned deliveries are accepted).
    pub allow_unsigned_webhooks: bool,
}

/// `[privacy]`.
#[derive(Debug, Clone)]
pub struct PrivacyConfig {
    /// Emails (lower case) allowed to use `stats` in chat.
    pub admins: Vec<String>,
    /// Requesters' email domains (lower case) allowed to look anyone up, on every channel; empty =
    /// everyone. Also how a requester's email becomes their username when there is no directory.
    pub allowed_domains: Vec<String>,
    /// Lookups one requester may run per hour (across every instance sharing the store).
    pub rate_limit_per_hour: u32,
    /// Audit rows older than this are purged.
    pub audit_retention_days: u32,
    /// Tell people (in a direct Webex message) when they were located, and by whom.
    pub notify_target: bool,
}

impl Default for PrivacyConfig {
    fn default() -> PrivacyConfig {
        PrivacyConfig {
            admins: Vec::new(),
            allowed_domains: Vec::new(),
            rate_limit_per_hour: DEFAULT_RATE_LIMIT_PER_HOUR,
            audit_retention_days: DEFAULT_AUDIT_RETENTION_DAYS,
            notify_target: false,
        }
    }
}

/// Default lookups per requester per hour.
pub const DEFAULT_RATE_LIMIT_PER_HOUR: u32 = 30;
/// Default audit retention.
pub const DEFAULT_AUDIT_RETENTION_DAYS: u32 = 90;
/// Default store: SQLite beside the configuration file.
pub const DEFAULT_STORE_FILE: &str = "whereis.db";

/// `[server]`.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Public base URL (webhook registration, links).
    pub public_url: Option<String>,
    /// Longest time any HTTP request is worked on (503 after it).
    pub request_timeout: Duration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    store: RawStore,
    #[serde(default)]
    lookup: RawLookup,
    sources: Option<Vec<RawSource>>,
    webex: Option<Spanned<RawWebex>>,
    directory: Option<Spanned<RawDirectory>>,
    #[serde(default)]
    privacy: RawPrivacy,
    #[serde(default)]
    maps: RawMaps,
    network: Option<Spanned<RawNetwork>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    proxy: Option<Spanned<String>>,
    proxy_username: Option<String>,
    proxy_password_env: Option<Spanned<String>>,
    proxy_password_file: Option<Spanned<PathBuf>>,
    no_proxy: Option<Spanned<Vec<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMaps {
    display_width: Option<Spanned<u32>>,
    crop_size: Option<Spanned<u32>>,
    cache_dir: Option<PathBuf>,
    memory_mb: Option<Spanned<u64>>,
    fetch_timeout_ms: Option<Spanned<u64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<Spanned<String>>,
    public_url: Option<Spanned<String>>,
    request_timeout_ms: Option<Spanned<u64>>,
}

// The sections below are read (and so checked for unknown keys) now; the features that use them
// read them from here as they arrive.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    url: Option<Spanned<String>>,
    url_env: Option<Spanned<String>>,
    url_file: Option<Spanned<PathBuf>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebex {
    token_env: Option<Spanned<String>>,
    token_file: Option<Spanned<PathBuf>>,
    webhook_secret_env: Option<Spanned<String>>,
    webhook_secret_file: Option<Spanned<PathBuf>>,
    api_base: Option<Spanned<String>>,
    allowed_domains: Option<Spanned<Vec<String>>>,
    mode: Option<Spanned<String>>,
    device_url: Option<Spanned<String>>,
    max_backlog_minutes: Option<Spanned<u32>>,
    #[serde(default)]
    allow_unsigned_webhooks: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrivacy {
    rate_limit_per_hour: Option<Spanned<u32>>,
    audit_retention_days: Option<Spanned<u32>>,
    notify_target: Option<bool>,
    admins: Option<Vec<String>>,
    allowed_domains: Option<Spanned<Vec<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLookup {
    username_variants: Option<Spanned<Vec<String>>>,
    timeout_ms: Option<Spanned<u64>>,
    deadline_ms: Option<Spanned<u64>>,
    max_age_seconds: Option<u64>,
}

#[derive(Debug, Deserialize, Clone, Copy)]
enum RawKind {
    #[serde(rename = "cmx")]
    Cmx,
    #[serde(rename = "cmx-v2")]
    CmxV2,
    #[serde(rename = "mse")]
    Mse,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    name: Spanned<String>,
    kind: RawKind,
    url: Spanned<String>,
    username: Spanned<String>,
    password_env: Option<Spanned<String>>,
    password_file: Option<Spanned<PathBuf>>,
    v3_username: Option<Spanned<String>>,
    v3_password_env: Option<Spanned<String>>,
    v3_password_file: Option<Spanned<PathBuf>>,
    ca_file: Option<Spanned<PathBuf>>,
    #[serde(default)]
    insecure_skip_tls_verify: bool,
    #[serde(default)]
    priority: i32,
}

/// Default per-request timeout.
pub const DEFAULT_TIMEOUT_MS: u64 = 2000;
/// How much longer than one request a whole lookup may take by default (a v3 → v2 fallback or a map
/// configuration fetch needs a second request).
pub const DEFAULT_DEADLINE_MARGIN_MS: u64 = 1000;
/// Default timeout of a floor image download.
pub const DEFAULT_IMAGE_TIMEOUT_MS: u64 = 10_000;
/// Default directory of the floor image disk cache, beside the configuration file.
pub const DEFAULT_MAP_CACHE_DIR: &str = "map-cache";
/// Default Webex REST API base.
pub const DEFAULT_WEBEX_API: &str = "https://webexapis.com/v1";
/// Default address of `serve`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default age past which a question found when catching up gets "sorry, I was offline".
pub const DEFAULT_MAX_BACKLOG_MINUTES: u32 = 15;

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base = path
            .parent()
            .map(Path::to_owned)
            .unwrap_or_else(|| PathBuf::from("."));
        Config::parse(&text, path, &base, &|name| std::env::var(name).ok())
    }

    /// Validates configuration text; `env` looks up environment variables (tests pass their own).
    pub fn parse(
        text: &str,
        path: &Path,
        base_dir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let at = |span: Range<usize>, message: String| {
            let (line, column) = line_column(text, span.start);
            ConfigError::Invalid {
                path: path.to_owned(),
                line,
                column,
                message,
            }
        };
        let raw: RawConfig = toml::from_str(text).map_err(|err| {
            let span = err.span().unwrap_or(0..0);
            at(span, describe_toml_error(err.message()))
        })?;

        let listen = match raw.server.listen {
            Some(listen) => listen.get_ref().parse().map_err(|_| {
                at(
                    listen.span(),
                    format!(
                        "server.listen: {:?} is not an address like 127.0.0.1:8080",
                        listen.get_ref()
                    ),
                )
            })?,
            None => DEFAULT_LISTEN
                .parse()
                .map_err(|_| at(0..0, "server.listen: bad default".to_owned()))?,
        };
        if let Some(url) = &raw.server.public_url {
            check_url(url.get_ref())
                .map_err(|msg| at(url.span(), format!("server.public_url: {msg}")))?;
        }
        let request_timeout = match &raw.server.request_timeout_ms {
            Some(t) if !(100..=3_600_000).contains(t.get_ref()) => {
                return Err(at(
                    t.span(),
                    "server.request_timeout_ms: must be between 100 and 3600000".to_owned(),
                ))
            }
            Some(t) => Duration::from_millis(*t.get_ref()),
            None => crate::server::REQUEST_TIMEOUT,
        };
        let server = ServerConfig {
            listen,
            public_url: raw.server.public_url.map(Spanned::into_inner),
            request_timeout,
        };

        let network = match raw.network {
            None => Network::from_env(env).map_err(|err| ConfigError::File {
                path: path.to_owned(),
                message: format!("proxy environment variables: {err}"),
            })?,
            Some(section) => {
                let span = section.span();
                let section = section.into_inner();
                let password = secret(
                    &at,
                    base_dir,
                    env,
                    span.clone(),
                    (
                        "network.proxy_password_env",
                        section.proxy_password_env.as_ref(),
                    ),
                    (
                        "network.proxy_password_file",
                        section.proxy_password_file.as_ref(),
                    ),
                )?;
                let no_proxy = section
                    .no_proxy
                    .map(|list| (list.span(), list.into_inner()))
                    .unwrap_or((span.clone(), Vec::new()));
                match section.proxy {
                    Some(proxy) => {
                        let server = ProxyServer::parse(
                            proxy.get_ref(),
                            section.proxy_username,
                            password.map(|p| SecretString::from(p.expose().to_owned())),
                            false,
                        )
                        .map_err(|err| at(proxy.span(), format!("network.{err}")))?;
                        Network::with_proxy(server, &no_proxy.1)
                            .map_err(|err| at(no_proxy.0, format!("network.{err}")))?
                    }
                    None if password.is_some() || section.proxy_username.is_some() => {
                        return Err(at(
                            span,
                            "[network]: proxy credentials without network.proxy".to_owned(),
                        ))
                    }
                    // `[network]` without a proxy: every connection direct, whatever the environment says.
                    None => Network::direct(),
                }
            }
        };

        let timeout_ms = match &raw.lookup.timeout_ms {
            Some(t) if !(1..=600_000).contains(t.get_ref()) => {
                return Err(at(
                    t.span(),
                    "lookup.timeout_ms: must be between 1 and 600000".to_owned(),
                ))
            }
            Some(t) => *t.get_ref(),
            None => DEFAULT_TIMEOUT_MS,
        };
        let deadline_ms = match &raw.lookup.deadline_ms {
            Some(d) if *d.get_ref() < timeout_ms => {
                return Err(at(
                    d.span(),
                    format!(
                        "lookup.deadline_ms: must be at least lookup.timeout_ms ({timeout_ms})"
                    ),
                ))
            }
            Some(d) => *d.get_ref(),
            None => timeout_ms + DEFAULT_DEADLINE_MARGIN_MS,
        };
        let username_variants = match raw.lookup.username_variants {
            Some(variants) => {
                let span = variants.span();
                let variants = variants.into_inner();
                if variants.is_empty() {
                    return Err(at(
                        span,
                        "lookup.username_variants: must not be empty".to_owned(),
                    ));
                }
                if let Some(bad) = variants.iter().find(|v| v.matches("{user}").count() != 1) {
                    return Err(at(
                        span,
                        format!(
                            "lookup.username_variants: {bad:?} must contain {{user}} exactly once"
                        ),
                    ));
                }
                variants
            }
            None => vec!["{user}".to_owned()],
        };
        let lookup = LocatorSettings {
            username_variants,
            deadline: Duration::from_millis(deadline_ms),
            max_age: Duration::from_secs(raw.lookup.max_age_seconds.unwrap_or(900)),
        };

        let image_timeout = match &raw.maps.fetch_timeout_ms {
            Some(t) if !(1..=600_000).contains(t.get_ref()) => {
                return Err(at(
                    t.span(),
                    "maps.fetch_timeout_ms: must be between 1 and 600000".to_owned(),
                ))
            }
            Some(t) => Duration::from_millis(*t.get_ref()),
            None => Duration::from_millis(DEFAULT_IMAGE_TIMEOUT_MS),
        };

        let maps = {
            let raw = raw.maps;
            let mut settings = MapSettings::default();
            if let Some(width) = raw.display_width {
                if !(64..=8192).contains(width.get_ref()) {
                    return Err(at(
                        width.span(),
                        "maps.display_width: must be between 64 and 8192".to_owned(),
                    ));
                }
                settings.display_width = *width.get_ref();
            }
            if let Some(size) = raw.crop_size {
                if !(64..=4096).contains(size.get_ref()) {
                    return Err(at(
                        size.span(),
                        "maps.crop_size: must be between 64 and 4096".to_owned(),
                    ));
                }
                settings.crop_size = Some(*size.get_ref());
            }
            if let Some(mb) = raw.memory_mb {
                if !(16..=65_536).contains(mb.get_ref()) {
                    return Err(at(
                        mb.span(),
                        "maps.memory_mb: must be between 16 and 65536".to_owned(),
                    ));
                }
                settings.memory_bytes = mb.get_ref() * 1024 * 1024;
            }
            settings.cache_dir = Some(
                base_dir.join(
                    raw.cache_dir
                        .unwrap_or_else(|| PathBuf::from(DEFAULT_MAP_CACHE_DIR)),
                ),
            );
            settings
        };
        let Some(raw_sources) = raw.sources.filter(|s| !s.is_empty()) else {
            return Err(ConfigError::File {
                path: path.to_owned(),
                message: "no [[sources]]: name at least one location server".to_owned(),
            });
        };
        let mut names = HashSet::new();
        let mut sources = Vec::new();
        for (i, source) in raw_sources.into_iter().enumerate() {
            let key = |field: &str| format!("sources[{i}].{field}");
            let name = source.name.get_ref().trim().to_owned();
            if name.is_empty() {
                return Err(at(
                    source.name.span(),
                    format!("{}: must not be empty", key("name")),
                ));
            }
            if !names.insert(name.clone()) {
                return Err(at(
                    source.name.span(),
                    format!("{}: {name:?} is used by another source", key("name")),
                ));
            }
            check_url(source.url.get_ref())
                .map_err(|msg| at(source.url.span(), format!("{}: {msg}", key("url"))))?;
            if source.username.get_ref().is_empty() {
                return Err(at(
                    source.username.span(),
                    format!("{}: must not be empty", key("username")),
                ));
            }
            let password = secret(
                &at,
                base_dir,
                env,
                source.username.span(),
                (&key("password_env"), source.password_env.as_ref()),
                (&key("password_file"), source.password_file.as_ref()),
            )?
            .ok_or_else(|| {
                at(
                    source.name.span(),
                    format!(
                        "sources[{i}] ({name}): set password_env or password_file (passwords are never written in the configuration)"
                    ),
                )
            })?;
            let v3_password = secret(
                &at,
                base_dir,
                env,
                source.name.span(),
                (&key("v3_password_env"), source.v3_password_env.as_ref()),
                (&key("v3_password_file"), source.v3_password_file.as_ref()),
            )?;
            let v3_credentials = match (source.v3_username, v3_password) {
                (Some(user), Some(password)) => Some(Credentials {
                    username: user.into_inner(),
                    password,
                }),
                (None, None) => None,
                (Some(user), None) => {
                    return Err(at(
                        user.span(),
                        format!(
                            "{}: needs v3_password_env or v3_password_file",
                            key("v3_username")
                        ),
                    ))
                }
                (None, Some(_)) => {
                    return Err(at(
                        source.name.span(),
                        format!("sources[{i}] ({name}): a v3 password needs v3_username"),
                    ))
                }
            };
            let ca_file = match source.ca_file {
                Some(ca) => {
                    let resolved = base_dir.join(ca.get_ref());
                    if !resolved.is_file() {
                        return Err(at(
                            ca.span(),
                            format!(
                                "{}: {} is not a readable file",
                                key("ca_file"),
                                resolved.display()
                            ),
                        ));
                    }
                    Some(resolved)
                }
                None => None,
            };
            sources.push(SourceSettings {
                name,
                kind: match source.kind {
                    RawKind::Cmx => SourceKind::Cmx,
                    RawKind::CmxV2 => SourceKind::CmxV2,
                    RawKind::Mse => SourceKind::Mse,
                },
                url: source.url.into_inner(),
                credentials: Credentials {
                    username: source.username.into_inner(),
                    password,
                },
                v3_credentials,
                ca_file,
                insecure_skip_tls_verify: source.insecure_skip_tls_verify,
                priority: source.priority,
                timeout: Duration::from_millis(timeout_ms),
                image_timeout,
                network: network.clone(),
            });
        }
        let mut webex_domains = None;
        let webex = match raw.webex {
            None => None,
            Some(section) => {
                let span = section.span();
                let section = section.into_inner();
                let token = secret(
                    &at,
                    base_dir,
                    env,
                    span.clone(),
                    ("webex.token_env", section.token_env.as_ref()),
                    ("webex.token_file", section.token_file.as_ref()),
                )?
                .ok_or_else(|| {
                    at(
                        span.clone(),
                        "[webex]: set token_env or token_file (the bot's access token)".to_owned(),
                    )
                })?;
                let webhook_secret = secret(
                    &at,
                    base_dir,
                    env,
                    span.clone(),
                    (
                        "webex.webhook_secret_env",
                        section.webhook_secret_env.as_ref(),
                    ),
                    (
                        "webex.webhook_secret_file",
                        section.webhook_secret_file.as_ref(),
                    ),
                )?;
                let api_base = match section.api_base {
                    Some(base) => {
                        check_url(base.get_ref())
                            .map_err(|msg| at(base.span(), format!("webex.api_base: {msg}")))?;
                        base.into_inner().trim_end_matches('/').to_owned()
                    }
                    None => DEFAULT_WEBEX_API.to_owned(),
                };
                let mode = match &section.mode {
                    None if server.public_url.is_some() => WebexMode::Webhook,
                    None => WebexMode::Websocket,
                    Some(mode) => match mode.get_ref().trim() {
                        "webhook" => WebexMode::Webhook,
                        "websocket" => WebexMode::Websocket,
                        _ => {
                            return Err(at(
                                mode.span(),
                                "webex.mode: must be \"webhook\" or \"websocket\"".to_owned(),
                            ))
                        }
                    },
                };
                let device_url = match section.device_url {
                    Some(url) => {
                        check_url(url.get_ref())
                            .map_err(|msg| at(url.span(), format!("webex.device_url: {msg}")))?;
                        Some(url.into_inner().trim_end_matches('/').to_owned())
                    }
                    None => None,
                };
                let max_backlog_minutes = match section.max_backlog_minutes {
                    Some(minutes) if !(1..=10_080).contains(minutes.get_ref()) => {
                        return Err(at(
                            minutes.span(),
                            "webex.max_backlog_minutes: must be between 1 and 10080".to_owned(),
                        ))
                    }
                    Some(minutes) => minutes.into_inner(),
                    None => DEFAULT_MAX_BACKLOG_MINUTES,
                };
                webex_domains = section.allowed_domains;
                Some(WebexConfig {
                    token,
                    webhook_secret,
                    api_base,
                    mode,
                    device_url,
                    max_backlog: Duration::from_secs(u64::from(max_backlog_minutes) * 60),
                    allow_unsigned_webhooks: section.allow_unsigned_webhooks,
                })
            }
        };
        let privacy = {
            let raw = raw.privacy;
            let rate_limit_per_hour = match raw.rate_limit_per_hour {
                Some(limit) if *limit.get_ref() == 0 => {
                    return Err(at(
                        limit.span(),
                        "privacy.rate_limit_per_hour: must be at least 1".to_owned(),
                    ))
                }
                Some(limit) => limit.into_inner(),
                None => DEFAULT_RATE_LIMIT_PER_HOUR,
            };
            let audit_retention_days = match raw.audit_retention_days {
                Some(days) if *days.get_ref() == 0 => {
                    return Err(at(
                        days.span(),
                        "privacy.audit_retention_days: must be at least 1".to_owned(),
                    ))
                }
                Some(days) => days.into_inner(),
                None => DEFAULT_AUDIT_RETENTION_DAYS,
            };
            // Once `[webex]`'s only, the domain rule holds on every channel; either place is read.
            let allowed_domains =
                match (raw.allowed_domains, webex_domains) {
                    (Some(privacy), Some(_)) => return Err(at(
                        privacy.span(),
                        "privacy.allowed_domains and webex.allowed_domains: give only one of them"
                            .to_owned(),
                    )),
                    (Some(list), None) | (None, Some(list)) => list
                        .into_inner()
                        .iter()
                        .map(|d| d.trim().trim_start_matches('@').to_lowercase())
                        .filter(|d| !d.is_empty())
                        .collect(),
                    (None, None) => Vec::new(),
                };
            PrivacyConfig {
                allowed_domains,
                admins: raw
                    .admins
                    .unwrap_or_default()
                    .iter()
                    .map(|a| a.trim().to_lowercase())
                    .collect(),
                rate_limit_per_hour,
                audit_retention_days,
                notify_target: raw.notify_target.unwrap_or(false),
            }
        };
        // A PostgreSQL URL carries a password: it may come from the environment or a file instead.
        let secret_url = secret(
            &at,
            base_dir,
            env,
            0..0,
            ("store.url_env", raw.store.url_env.as_ref()),
            ("store.url_file", raw.store.url_file.as_ref()),
        )?;
        let url_span = raw
            .store
            .url_env
            .as_ref()
            .map(Spanned::span)
            .or_else(|| raw.store.url_file.as_ref().map(Spanned::span));
        let store_url = match (raw.store.url, secret_url) {
            (Some(url), Some(_)) => {
                return Err(at(
                    url.span(),
                    "store.url and store.url_env/url_file: give only one of them".to_owned(),
                ))
            }
            (None, Some(secret)) => {
                let text = secret.expose().trim();
                if !(text.starts_with("postgres://") || text.starts_with("postgresql://")) {
                    return Err(at(
                        url_span.unwrap_or(0..0),
                        "store.url_env/url_file: must hold a postgres:// URL".to_owned(),
                    ));
                }
                Secret::new(text)
            }
            (Some(url), None) => {
                let text = url.get_ref().trim();
                if let Some(path) = text.strip_prefix("sqlite://") {
                    // A relative SQLite path is relative to the configuration file.
                    let path = Path::new(path);
                    if path.is_absolute() {
                        Secret::new(text)
                    } else {
                        Secret::new(format!("sqlite://{}", base_dir.join(path).display()))
                    }
                } else if text == "sqlite::memory:"
                    || text.starts_with("postgres://")
                    || text.starts_with("postgresql://")
                {
                    Secret::new(text)
                } else {
                    return Err(at(
                        url.span(),
                        "store.url: must be sqlite://PATH, sqlite::memory: or postgres://…"
                            .to_owned(),
                    ));
                }
            }
            (None, None) => Secret::new(format!(
                "sqlite://{}",
                base_dir.join(DEFAULT_STORE_FILE).display()
            )),
        };
        let directory = match raw.directory {
            Some(section) => {
                let span = section.span();
                Some(
                    section
                        .into_inner()
                        .resolve(base_dir, env)
                        .map_err(|message| at(span, format!("[directory]: {message}")))?,
                )
            }
            None => None,
        };
        Ok(Config {
            path: path.to_owned(),
            server,
            lookup,
            sources,
            maps,
            webex,
            privacy,
            store_url,
            directory,
            network,
        })
    }
}

/// Reads a secret named by an `*_env` or `*_file` key (at most one of them).
fn secret(
    at: &dyn Fn(Range<usize>, String) -> ConfigError,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    fallback_span: Range<usize>,
    (env_key, env_name): (&str, Option<&Spanned<String>>),
    (file_key, file): (&str, Option<&Spanned<PathBuf>>),
) -> Result<Option<Secret>, ConfigError> {
    match (env_name, file) {
        (Some(_), Some(_)) => Err(at(
            fallback_span,
            format!("{env_key} and {file_key}: give only one of them"),
        )),
        (Some(name), None) => match env(name.get_ref()) {
            Some(value) if !value.is_empty() => Ok(Some(Secret::new(value))),
            _ => Err(at(
                name.span(),
                format!(
                    "{env_key}: environment variable {} is not set",
                    name.get_ref()
                ),
            )),
        },
        (None, Some(file)) => {
            let resolved = base_dir.join(file.get_ref());
            let value = std::fs::read_to_string(&resolved).map_err(|err| {
                at(
                    file.span(),
                    format!("{file_key}: cannot read {}: {err}", resolved.display()),
                )
            })?;
            let value = value.trim_end_matches(['\r', '\n']);
            if value.is_empty() {
                return Err(at(
                    file.span(),
                    format!("{file_key}: {} is empty", resolved.display()),
                ));
            }
            Ok(Some(Secret::new(value)))
        }
        (None, None) => Ok(None),
    }
}

fn check_url(url: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|err| format!("{url:?} is not a URL ({err})"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(format!(
            "{url:?} must be an http:// or https:// URL with a host"
        ));
    }
    Ok(())
}

/// Serde's messages can quote the offending value; never let a value (which could be a misplaced
/// secret) into an error, and add a hint for keys that look like secrets.
fn describe_toml_error(message: &str) -> String {
    let mut text = redact_quoted_values(message);
    if text.starts_with("unknown field") {
        let lowered = text.to_lowercase();
        if ["password", "token", "secret"].iter().any(|word| {
            lowered
                .split('`')
                .nth(1)
                .is_some_and(|key| key.contains(word))
        }) {
            text.push_str(
                " (secrets are read from *_env or *_file keys, never written in the file)",
            );
        }
    }
    text
}

fn redact_quoted_values(message: &str) -> String {
    // `invalid type: string "hunter2", expected …` → `invalid type: string, expected …`
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find("string \"") {
        out.push_str(&rest[..start + "string".len()]);
        let after = &rest[start + "string \"".len()..];
        match after.find('"') {
            Some(end) => rest = &after[end + 1..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out.trim_end().to_owned()
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count() + 1)
        .unwrap_or(1);
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[server]
listen = "127.0.0.1:9999"

[lookup]
username_variants = ["{user}", "CORP\\{user}"]
timeout_ms = 1500

[[sources]]
name = "cmx-north"
kind = "cmx"
url = "https://cmx-north.example.com"
username = "api"
password_env = "CMX_NORTH_PASSWORD"
priority = 1

[[sources]]
name = "mse-legacy"
kind = "mse"
url = "http://mse.example.com:8080/"
username = "api"
password_env = "MSE_PASSWORD"
"#;

    fn env(name: &str) -> Option<String> {
        match name {
            "CMX_NORTH_PASSWORD" => Some("s3cret-north".into()),
            "MSE_PASSWORD" => Some("s3cret-mse".into()),
            _ => None,
        }
    }

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(
            text,
            Path::new("/etc/whereis.toml"),
            Path::new("/etc"),
            &env,
        )
    }

    #[test]
    fn good_config_with_defaults() {
        let config = parse(GOOD).unwrap();
        assert_eq!(config.sources.len(), 2);
        assert_eq!(
            config.sources[0].credentials.password.expose(),
            "s3cret-north"
        );
        assert_eq!(config.sources[0].timeout, Duration::from_millis(1500));
        assert_eq!(config.sources[1].kind, SourceKind::Mse);
        assert_eq!(config.lookup.deadline, Duration::from_millis(2500));
        assert_eq!(config.lookup.max_age, Duration::from_secs(900));
        assert_eq!(config.server.listen.port(), 9999);
    }

    #[test]
    fn design_example_sections_are_accepted() {
        let text = format!(
            "{GOOD}\n[store]\nurl = \"sqlite://whereis.db\"\n[webex]\ntoken_env = \"MSE_PASSWORD\"\nallowed_domains = [\"example.com\"]\n[directory]\nkind = \"file\"\npath = \"people.csv\"\n[privacy]\nrate_limit_per_hour = 30\naudit_retention_days = 90\nadmins = [\"it@example.com\"]\n"
        );
        parse(&text).unwrap();
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let text = GOOD.replace("timeout_ms = 1500", "timeout_m = 1500");
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.starts_with("/etc/whereis.toml:7:"), "{err}");
        assert!(err.contains("timeout_m"), "{err}");
    }

    #[test]
    fn inline_password_is_refused_without_echoing_it() {
        let text = GOOD.replace(
            "password_env = \"MSE_PASSWORD\"",
            "password = \"hunter2-inline\"",
        );
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("password"), "{err}");
        assert!(err.contains("_env"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn wrong_type_does_not_echo_the_value() {
        let text = GOOD.replace("priority = 1", "priority = \"hunter2\"");
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains(":15:"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn missing_environment_variable_is_named_but_no_value_shown() {
        let text = GOOD.replace("MSE_PASSWORD", "NOT_SET_ANYWHERE");
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("NOT_SET_ANYWHERE is not set"), "{err}");
        assert!(err.contains(":22:"), "{err}");
    }

    #[test]
    fn password_file_is_read_relative_to_the_config() {
        let dir = std::env::temp_dir().join(format!("whereis-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("mse.secret"), "from-file\n").unwrap();
        let text = GOOD.replace(
            "password_env = \"MSE_PASSWORD\"",
            "password_file = \"mse.secret\"",
        );
        let config = Config::parse(&text, &dir.join("c.toml"), &dir, &env).unwrap();
        assert_eq!(config.sources[1].credentials.password.expose(), "from-file");
        let err = Config::parse(
            &text.replace("mse.secret", "missing.secret"),
            &dir.join("c.toml"),
            &dir,
            &env,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("missing.secret"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn store_url_from_the_environment() {
        let env = |name: &str| match name {
            "STORE" => Some("postgres://whereis:pw@db.example.com/whereis".to_owned()),
            "NOT_PG" => Some("mysql://x".to_owned()),
            other => super::tests::env(other),
        };
        let parse = |extra: &str| {
            Config::parse(
                &format!("{GOOD}\n[store]\n{extra}\n"),
                Path::new("/etc/whereis.toml"),
                Path::new("/etc"),
                &env,
            )
        };
        let config = parse("url_env = \"STORE\"").unwrap();
        assert_eq!(
            config.store_url.expose(),
            "postgres://whereis:pw@db.example.com/whereis"
        );
        let config = parse("url = \"sqlite://data/w.db\"").unwrap();
        assert_eq!(config.store_url.expose(), "sqlite:///etc/data/w.db");
        let err = parse("url_env = \"NOT_PG\"").unwrap_err().to_string();
        assert!(
            err.contains("postgres://") && !err.contains("mysql"),
            "{err}"
        );
        let err = parse("url = \"sqlite://x.db\"\nurl_env = \"STORE\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("only one"), "{err}");
        assert!(!err.contains("pw@"), "{err}");
    }

    /// Every secret of a fully loaded configuration, long and short, stays out of `{:?}`.
    #[test]
    fn debug_output_holds_no_secret() {
        let secrets = [
            ("CMX", "Zq"),
            ("MSE", "long-mse-password-4711"),
            ("V3", "Jx"),
            ("TOKEN", "Kv"),
            ("HOOK", "hook-secret-value"),
            ("STORE", "postgres://whereis:Qm@db.example.com/whereis"),
            ("BIND", "Wz"),
            ("PROXY", "Yq"),
        ];
        let env = |name: &str| {
            secrets
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_string())
        };
        let text = r#"
[server]
public_url = "https://whereis.example.com"
[store]
url_env = "STORE"
[network]
proxy = "http://proxy.example.com:3128"
proxy_username = "svc"
proxy_password_env = "PROXY"
no_proxy = ["10.0.0.0/8"]
[webex]
token_env = "TOKEN"
webhook_secret_env = "HOOK"
[directory]
kind = "ldap"
url = "ldap://ldap.example.com"
base_dn = "dc=example,dc=com"
bind_dn = "cn=whereis,dc=example,dc=com"
bind_password_env = "BIND"
[[sources]]
name = "cmx"
kind = "cmx"
url = "https://cmx.example.com"
username = "api"
password_env = "CMX"
v3_username = "api3"
v3_password_env = "V3"
[[sources]]
name = "mse"
kind = "mse"
url = "https://mse.example.com"
username = "api"
password_env = "MSE"
"#;
        let config =
            Config::parse(text, Path::new("/etc/w.toml"), Path::new("/etc"), &env).unwrap();
        let shown = format!("{config:?} {config:#?}");
        for (_, secret) in secrets {
            // The store URL is secret as a whole, and so is its password.
            for part in [secret, secret.split([':', '@']).nth(2).unwrap_or(secret)] {
                assert!(!shown.contains(part), "{part:?} in {shown}");
            }
        }
        assert_eq!(config.sources[0].credentials.password.expose(), "Zq");
        assert!(shown.contains("proxy.example.com"), "settings stay visible");
    }

    #[test]
    fn network_section() {
        let with = |section: &str| parse(&format!("{GOOD}\n[network]\n{section}\n"));
        let config =
            with("proxy = \"http://proxy.example.com:3128\"\nno_proxy = [\"mse.example.com\"]")
                .unwrap();
        assert!(matches!(
            config.sources[0]
                .network
                .route(&url::Url::parse("https://cmx-north.example.com").unwrap()),
            whereis_net::Route::Proxy { .. }
        ));
        assert!(matches!(
            config.sources[1]
                .network
                .route(&url::Url::parse("http://mse.example.com:8080/").unwrap()),
            whereis_net::Route::Direct { .. }
        ));
        for (section, expected) in [
            ("proxy = \"http://u:pw@proxy:1\"", "proxy_password_env"),
            ("proxy = \"ftp://proxy:1\"", "network.proxy"),
            (
                "proxy = \"http://p:1\"\nno_proxy = [\"10.0.0.0/99\"]",
                "no_proxy",
            ),
            ("proxy_username = \"svc\"", "without network.proxy"),
            (
                "proxy = \"http://p:1\"\nproxy_password_env = \"UNSET\"",
                "UNSET is not set",
            ),
        ] {
            let err = with(section).unwrap_err().to_string();
            assert!(err.contains(expected), "{section}: {err}");
            assert!(err.starts_with("/etc/whereis.toml:"), "{err}");
            assert!(!err.contains(":pw@"), "{err}");
        }
        // `[network]` without a proxy: direct, whatever the environment says.
        let config = with("").unwrap();
        assert_eq!(config.network.origin(), None);
    }

    #[test]
    fn webex_modes_and_domains() {
        let with = |server: &str, webex: &str, privacy: &str| {
            parse(&format!(
                "{server}\n{GOOD}\n[webex]\ntoken_env = \"MSE_PASSWORD\"\n{webex}\n[privacy]\n{privacy}\n"
            ))
        };
        let webex = |c: Config| c.webex.unwrap();
        assert_eq!(webex(with("", "", "").unwrap()).mode, WebexMode::Websocket);
        let config = with("", "mode = \"webhook\"\nmax_backlog_minutes = 5", "").unwrap();
        assert_eq!(config.webex.as_ref().unwrap().mode, WebexMode::Webhook);
        assert_eq!(
            config.webex.as_ref().unwrap().max_backlog,
            Duration::from_secs(300)
        );
        let text = "[server]\npublic_url = \"https://w.example.com\"\n";
        let config = parse(&format!(
            "{}{}\n[webex]\ntoken_env = \"MSE_PASSWORD\"\n",
            text,
            GOOD.replace("[server]\n", "")
        ))
        .unwrap();
        assert_eq!(config.webex.unwrap().mode, WebexMode::Webhook);
        let err = with("", "mode = \"carrier-pigeon\"", "")
            .unwrap_err()
            .to_string();
        assert!(err.contains("webex.mode"), "{err}");
        let config = with("", "allowed_domains = [\"@Example.com\"]", "").unwrap();
        assert_eq!(config.privacy.allowed_domains, vec!["example.com"]);
        let config = with("", "", "allowed_domains = [\"example.com\"]").unwrap();
        assert_eq!(config.privacy.allowed_domains, vec!["example.com"]);
        let err = with(
            "",
            "allowed_domains = [\"a.com\"]",
            "allowed_domains = [\"b.com\"]",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("only one of them"), "{err}");
    }

    #[test]
    fn invalid_values() {
        let cases = [
            (
                GOOD.replace("kind = \"mse\"", "kind = \"cmx-v9\""),
                "cmx-v9",
            ),
            (
                GOOD.replace("\"mse-legacy\"", "\"cmx-north\""),
                "used by another source",
            ),
            (
                GOOD.replace("http://mse.example.com:8080/", "mse.example.com"),
                "sources[1].url",
            ),
            (GOOD.replace("\"CORP\\\\{user}\"", "\"CORP\""), "{user}"),
            (
                GOOD.replace("timeout_ms = 1500", "timeout_ms = 0"),
                "lookup.timeout_ms",
            ),
            (GOOD.replace("127.0.0.1:9999", "localhost"), "server.listen"),
            (
                GOOD.replace("password_env = \"MSE_PASSWORD\"\n", ""),
                "password_env or password_file",
            ),
            ("[lookup]\ntimeout_ms = 5\n".to_owned(), "no [[sources]]"),
            ("[[sources]\n".to_owned(), "whereis.toml:1:"),
        ];
        for (text, expected) in cases {
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.contains(expected), "expected {expected:?} in {err}");
            assert!(!err.contains("s3cret"), "{err}");
        }
    }
}
