//! One parser per section of the configuration file. Each validates its keys, fills defaults and
//! resolves secrets; every error names the file, line and key, and never holds a value.

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use toml::Spanned;
use whereis_floormap::MapSettings;
use whereis_location::{Credentials, LocatorSettings, Secret, SourceKind, SourceSettings};
use whereis_net::{Network, ProxyServer};

use super::live::LiveSourceConfig;
use super::raw::{
    RawKind, RawLookup, RawMaps, RawNetwork, RawPrivacy, RawServer, RawSource, RawStore, RawWebex,
};
use super::*;
use crate::directory::{DirectoryConfig, RawDirectory};
use crate::privacy::{Consent, Hours, Precision, Weekdays};

/// What every section parser needs: where errors point, where relative paths start, and how
/// environment variables are read (tests pass their own).
pub(super) struct Reader<'a> {
    pub(super) text: &'a str,
    pub(super) path: &'a Path,
    pub(super) base_dir: &'a Path,
    pub(super) env: &'a dyn Fn(&str) -> Option<String>,
}

impl Reader<'_> {
    /// An error at a place in the file.
    pub(super) fn at(&self, span: Range<usize>, message: String) -> ConfigError {
        let (line, column) = line_column(self.text, span.start);
        ConfigError::Invalid {
            path: self.path.to_owned(),
            line,
            column,
            message,
        }
    }

    /// An error about the file as a whole.
    fn whole_file(&self, message: String) -> ConfigError {
        ConfigError::File {
            path: self.path.to_owned(),
            message,
        }
    }

    /// Reads a secret named by an `*_env` or `*_file` key (at most one of them).
    pub(super) fn secret(
        &self,
        fallback_span: Range<usize>,
        (env_key, env_name): (&str, Option<&Spanned<String>>),
        (file_key, file): (&str, Option<&Spanned<PathBuf>>),
    ) -> Result<Option<Secret>, ConfigError> {
        match (env_name, file) {
            (Some(_), Some(_)) => Err(self.at(
                fallback_span,
                format!("{env_key} and {file_key}: give only one of them"),
            )),
            (Some(name), None) => match (self.env)(name.get_ref()) {
                Some(value) if !value.is_empty() => Ok(Some(Secret::new(value))),
                _ => Err(self.at(
                    name.span(),
                    format!(
                        "{env_key}: environment variable {} is not set",
                        name.get_ref()
                    ),
                )),
            },
            (None, Some(file)) => {
                let resolved = self.base_dir.join(file.get_ref());
                let value = std::fs::read_to_string(&resolved).map_err(|err| {
                    self.at(
                        file.span(),
                        format!("{file_key}: cannot read {}: {err}", resolved.display()),
                    )
                })?;
                let value = value.trim_end_matches(['\r', '\n']);
                if value.is_empty() {
                    return Err(self.at(
                        file.span(),
                        format!("{file_key}: {} is empty", resolved.display()),
                    ));
                }
                Ok(Some(Secret::new(value)))
            }
            (None, None) => Ok(None),
        }
    }

    /// A number within bounds, or the default.
    fn bounded(
        &self,
        value: Option<&Spanned<u64>>,
        key: &str,
        bounds: std::ops::RangeInclusive<u64>,
        default: u64,
    ) -> Result<u64, ConfigError> {
        Ok(self.within(value, key, bounds)?.unwrap_or(default))
    }

    /// A number within bounds, when given.
    fn within<T: Copy + PartialOrd + fmt::Display>(
        &self,
        value: Option<&Spanned<T>>,
        key: &str,
        bounds: std::ops::RangeInclusive<T>,
    ) -> Result<Option<T>, ConfigError> {
        match value {
            Some(v) if !bounds.contains(v.get_ref()) => Err(self.at(
                v.span(),
                format!(
                    "{key}: must be between {} and {}",
                    bounds.start(),
                    bounds.end()
                ),
            )),
            Some(v) => Ok(Some(*v.get_ref())),
            None => Ok(None),
        }
    }

    fn address(&self, value: &Spanned<String>, key: &str) -> Result<SocketAddr, ConfigError> {
        value.get_ref().parse().map_err(|_| {
            self.at(
                value.span(),
                format!(
                    "{key}: {:?} is not an address like 127.0.0.1:8080",
                    value.get_ref()
                ),
            )
        })
    }
}

/// `[server]`.
pub(super) fn server(r: &Reader, raw: RawServer) -> Result<ServerConfig, ConfigError> {
    let listen = match &raw.listen {
        Some(listen) => r.address(listen, "server.listen")?,
        None => DEFAULT_LISTEN
            .parse()
            .map_err(|_| r.at(0..0, "server.listen: bad default".to_owned()))?,
    };
    let metrics_listen = match &raw.metrics_listen {
        Some(address) => {
            let address = r.address(address, "server.metrics_listen")?;
            if address == listen && address.port() != 0 {
                return Err(r.at(
                    raw.metrics_listen.as_ref().map_or(0..0, Spanned::span),
                    "server.metrics_listen: leave it out to serve /metrics on server.listen"
                        .to_owned(),
                ));
            }
            Some(address)
        }
        None => None,
    };
    if let Some(url) = &raw.public_url {
        check_url(url.get_ref())
            .map_err(|msg| r.at(url.span(), format!("server.public_url: {msg}")))?;
    }
    let default_timeout =
        u64::try_from(crate::server::REQUEST_TIMEOUT.as_millis()).unwrap_or(u64::MAX);
    let request_timeout = r.bounded(
        raw.request_timeout_ms.as_ref(),
        "server.request_timeout_ms",
        100..=3_600_000,
        default_timeout,
    )?;
    let shutdown_grace = r.bounded(
        raw.shutdown_grace_seconds.as_ref(),
        "server.shutdown_grace_seconds",
        0..=600,
        DEFAULT_SHUTDOWN_GRACE_SECONDS,
    )?;
    Ok(ServerConfig {
        listen,
        public_url: raw.public_url.map(Spanned::into_inner),
        request_timeout: Duration::from_millis(request_timeout),
        metrics_listen,
        shutdown_grace: Duration::from_secs(shutdown_grace),
    })
}

/// `[network]`, or the proxy environment variables when the section is absent.
pub(super) fn network(
    r: &Reader,
    raw: Option<Spanned<RawNetwork>>,
) -> Result<Network, ConfigError> {
    let Some(section) = raw else {
        return Network::from_env(r.env)
            .map_err(|err| r.whole_file(format!("proxy environment variables: {err}")));
    };
    let span = section.span();
    let section = section.into_inner();
    let password = r.secret(
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
    let (no_proxy_span, no_proxy) = section
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
            .map_err(|err| r.at(proxy.span(), format!("network.{err}")))?;
            Network::with_proxy(server, &no_proxy)
                .map_err(|err| r.at(no_proxy_span, format!("network.{err}")))
        }
        None if password.is_some() || section.proxy_username.is_some() => Err(r.at(
            span,
            "[network]: proxy credentials without network.proxy".to_owned(),
        )),
        // `[network]` without a proxy: every connection direct, whatever the environment says.
        None => Ok(Network::direct()),
    }
}

/// `[lookup]`: the Locator's settings and the per-request timeout every source uses.
pub(super) fn lookup(
    r: &Reader,
    raw: RawLookup,
) -> Result<(LocatorSettings, Duration), ConfigError> {
    let timeout_ms = r.bounded(
        raw.timeout_ms.as_ref(),
        "lookup.timeout_ms",
        1..=600_000,
        DEFAULT_TIMEOUT_MS,
    )?;
    let deadline_ms = match &raw.deadline_ms {
        Some(d) if *d.get_ref() < timeout_ms => {
            return Err(r.at(
                d.span(),
                format!("lookup.deadline_ms: must be at least lookup.timeout_ms ({timeout_ms})"),
            ))
        }
        Some(d) => *d.get_ref(),
        None => timeout_ms + DEFAULT_DEADLINE_MARGIN_MS,
    };
    let username_variants = match raw.username_variants {
        Some(variants) => {
            let span = variants.span();
            let variants = variants.into_inner();
            if variants.is_empty() {
                return Err(r.at(
                    span,
                    "lookup.username_variants: must not be empty".to_owned(),
                ));
            }
            if let Some(bad) = variants.iter().find(|v| v.matches("{user}").count() != 1) {
                return Err(r.at(
                    span,
                    format!("lookup.username_variants: {bad:?} must contain {{user}} exactly once"),
                ));
            }
            variants
        }
        None => vec!["{user}".to_owned()],
    };
    let settings = LocatorSettings {
        username_variants,
        deadline: Duration::from_millis(deadline_ms),
        max_age: Duration::from_secs(raw.max_age_seconds.unwrap_or(900)),
    };
    Ok((settings, Duration::from_millis(timeout_ms)))
}

/// `[maps]`: drawing and caching, and the floor image download timeout.
pub(super) fn maps(r: &Reader, raw: RawMaps) -> Result<(MapSettings, Duration), ConfigError> {
    let image_timeout = r.bounded(
        raw.fetch_timeout_ms.as_ref(),
        "maps.fetch_timeout_ms",
        1..=600_000,
        DEFAULT_IMAGE_TIMEOUT_MS,
    )?;
    let mut settings = MapSettings::default();
    if let Some(width) = r.within(raw.display_width.as_ref(), "maps.display_width", 64..=8192)? {
        settings.display_width = width;
    }
    if let Some(size) = r.within(raw.crop_size.as_ref(), "maps.crop_size", 64..=4096)? {
        settings.crop_size = Some(size);
    }
    if let Some(mb) = r.within(raw.memory_mb.as_ref(), "maps.memory_mb", 16..=65_536)? {
        settings.memory_bytes = mb * 1024 * 1024;
    }
    settings.cache_dir = Some(
        r.base_dir.join(
            raw.cache_dir
                .unwrap_or_else(|| PathBuf::from(DEFAULT_MAP_CACHE_DIR)),
        ),
    );
    Ok((settings, Duration::from_millis(image_timeout)))
}

/// What every source shares from other sections.
pub(super) struct SourceDefaults<'a> {
    pub(super) timeout: Duration,
    pub(super) image_timeout: Duration,
    pub(super) network: &'a Network,
}

/// `[[sources]]`: at least one, names unique.
pub(super) fn sources(
    r: &Reader,
    raw: Option<Vec<RawSource>>,
    defaults: &SourceDefaults,
) -> Result<(Vec<SourceSettings>, Vec<LiveSourceConfig>), ConfigError> {
    let Some(raw) = raw.filter(|s| !s.is_empty()) else {
        return Err(r.whole_file("no [[sources]]: name at least one location server".to_owned()));
    };
    let mut names = HashSet::new();
    let mut sources = Vec::with_capacity(raw.len());
    let mut live = Vec::new();
    for (i, source) in raw.into_iter().enumerate() {
        let name_span = source.name.span();
        let name = source.name.get_ref().trim().to_owned();
        if name.is_empty() {
            return Err(r.at(name_span, format!("sources[{i}].name: must not be empty")));
        }
        if !names.insert(name.clone()) {
            return Err(r.at(
                name_span,
                format!("sources[{i}].name: {name:?} is used by another source"),
            ));
        }
        if matches!(source.kind, RawKind::Spaces | RawKind::Meraki) {
            live.push(super::live::live_source(r, i, name, source, defaults)?);
            continue;
        }
        let settings = one_source(r, i, source, defaults)?;
        sources.push(settings);
    }
    Ok((sources, live))
}

fn one_source(
    r: &Reader,
    i: usize,
    source: RawSource,
    defaults: &SourceDefaults,
) -> Result<SourceSettings, ConfigError> {
    let key = |field: &str| format!("sources[{i}].{field}");
    let name = source.name.get_ref().trim().to_owned();
    if name.is_empty() {
        return Err(r.at(
            source.name.span(),
            format!("{}: must not be empty", key("name")),
        ));
    }
    check_url(source.url.get_ref())
        .map_err(|msg| r.at(source.url.span(), format!("{}: {msg}", key("url"))))?;
    for (field, span) in [
        ("api_key_env", source.api_key_env.as_ref().map(|v| v.span())),
        (
            "api_key_file",
            source.api_key_file.as_ref().map(|v| v.span()),
        ),
        ("network_id", source.network_id.as_ref().map(|v| v.span())),
        (
            "validator_env",
            source.validator_env.as_ref().map(|v| v.span()),
        ),
        (
            "validator_file",
            source.validator_file.as_ref().map(|v| v.span()),
        ),
        ("secret_env", source.secret_env.as_ref().map(|v| v.span())),
        ("secret_file", source.secret_file.as_ref().map(|v| v.span())),
        ("unit", source.unit.as_ref().map(|v| v.span())),
        ("origin", source.origin.as_ref().map(|v| v.span())),
    ] {
        if let Some(span) = span {
            return Err(r.at(
                span,
                format!(
                    "{}: only kind = \"spaces\" or \"meraki\" has this key",
                    key(field)
                ),
            ));
        }
    }
    let username = match source.username {
        Some(user) if !user.get_ref().is_empty() => user,
        Some(user) => {
            return Err(r.at(
                user.span(),
                format!("{}: must not be empty", key("username")),
            ))
        }
        None => {
            return Err(r.at(
                source.name.span(),
                format!("sources[{i}] ({name}): set username (the API user of the server)"),
            ))
        }
    };
    let password = r
        .secret(
            username.span(),
            (&key("password_env"), source.password_env.as_ref()),
            (&key("password_file"), source.password_file.as_ref()),
        )?
        .ok_or_else(|| {
            r.at(
                source.name.span(),
                format!(
                    "sources[{i}] ({name}): set password_env or password_file (passwords are never written in the configuration)"
                ),
            )
        })?;
    let v3_password = r.secret(
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
            return Err(r.at(
                user.span(),
                format!(
                    "{}: needs v3_password_env or v3_password_file",
                    key("v3_username")
                ),
            ))
        }
        (None, Some(_)) => {
            return Err(r.at(
                source.name.span(),
                format!("sources[{i}] ({name}): a v3 password needs v3_username"),
            ))
        }
    };
    let ca_file = ca_file(r, &key("ca_file"), source.ca_file.as_ref())?;
    Ok(SourceSettings {
        name,
        kind: match source.kind {
            RawKind::Cmx => SourceKind::Cmx,
            RawKind::CmxV2 => SourceKind::CmxV2,
            RawKind::Mse | RawKind::Spaces | RawKind::Meraki => SourceKind::Mse,
        },
        url: source.url.into_inner(),
        credentials: Credentials {
            username: username.into_inner(),
            password,
        },
        v3_credentials,
        ca_file,
        insecure_skip_tls_verify: source.insecure_skip_tls_verify,
        priority: source.priority,
        timeout: defaults.timeout,
        image_timeout: defaults.image_timeout,
        network: defaults.network.clone(),
    })
}

/// A `ca_file` key: resolved against the configuration's folder, and a readable file.
pub(super) fn ca_file(
    r: &Reader,
    key: &str,
    ca: Option<&Spanned<PathBuf>>,
) -> Result<Option<PathBuf>, ConfigError> {
    let Some(ca) = ca else {
        return Ok(None);
    };
    let resolved = r.base_dir.join(ca.get_ref());
    if !resolved.is_file() {
        return Err(r.at(
            ca.span(),
            format!("{key}: {} is not a readable file", resolved.display()),
        ));
    }
    Ok(Some(resolved))
}

/// `allowed_domains` as written, with its place in the file.
pub(super) type DomainList = Spanned<Vec<String>>;

/// `[webex]`, and its `allowed_domains` (which `[privacy]` reads) when given there.
pub(super) fn webex(
    r: &Reader,
    raw: Option<Spanned<RawWebex>>,
    server: &ServerConfig,
) -> Result<(Option<WebexConfig>, Option<DomainList>), ConfigError> {
    let Some(section) = raw else {
        return Ok((None, None));
    };
    let span = section.span();
    let section = section.into_inner();
    let token = r
        .secret(
            span.clone(),
            ("webex.token_env", section.token_env.as_ref()),
            ("webex.token_file", section.token_file.as_ref()),
        )?
        .ok_or_else(|| {
            r.at(
                span.clone(),
                "[webex]: set token_env or token_file (the bot's access token)".to_owned(),
            )
        })?;
    let webhook_secret = r.secret(
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
                .map_err(|msg| r.at(base.span(), format!("webex.api_base: {msg}")))?;
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
                return Err(r.at(
                    mode.span(),
                    "webex.mode: must be \"webhook\" or \"websocket\"".to_owned(),
                ))
            }
        },
    };
    let device_url = match section.device_url {
        Some(url) => {
            check_url(url.get_ref())
                .map_err(|msg| r.at(url.span(), format!("webex.device_url: {msg}")))?;
            Some(url.into_inner().trim_end_matches('/').to_owned())
        }
        None => None,
    };
    let max_backlog_minutes = match section.max_backlog_minutes {
        Some(minutes) if !(1..=10_080).contains(minutes.get_ref()) => {
            return Err(r.at(
                minutes.span(),
                "webex.max_backlog_minutes: must be between 1 and 10080".to_owned(),
            ))
        }
        Some(minutes) => minutes.into_inner(),
        None => DEFAULT_MAX_BACKLOG_MINUTES,
    };
    let config = WebexConfig {
        token,
        webhook_secret,
        api_base,
        mode,
        device_url,
        max_backlog: Duration::from_secs(u64::from(max_backlog_minutes) * 60),
        allow_unsigned_webhooks: section.allow_unsigned_webhooks,
    };
    Ok((Some(config), section.allowed_domains))
}

/// `[privacy]`; `webex_domains` is `[webex] allowed_domains`, the older place of the domain rule.
pub(super) fn privacy(
    r: &Reader,
    raw: RawPrivacy,
    webex_domains: Option<DomainList>,
) -> Result<PrivacyConfig, ConfigError> {
    let rate_limit_per_hour = match raw.rate_limit_per_hour {
        Some(limit) if *limit.get_ref() == 0 => {
            return Err(r.at(
                limit.span(),
                "privacy.rate_limit_per_hour: must be at least 1".to_owned(),
            ))
        }
        Some(limit) => limit.into_inner(),
        None => DEFAULT_RATE_LIMIT_PER_HOUR,
    };
    let audit_retention_days = match raw.audit_retention_days {
        Some(days) if *days.get_ref() == 0 => {
            return Err(r.at(
                days.span(),
                "privacy.audit_retention_days: must be at least 1".to_owned(),
            ))
        }
        Some(days) => days.into_inner(),
        None => DEFAULT_AUDIT_RETENTION_DAYS,
    };
    let consent = match raw.default {
        None => Consent::OptOut,
        Some(value) => match value.get_ref().trim().to_ascii_lowercase().as_str() {
            "opt-out" => Consent::OptOut,
            "opt-in" => Consent::OptIn,
            other => {
                return Err(r.at(
                    value.span(),
                    format!("privacy.default: {other:?} is neither \"opt-out\" nor \"opt-in\""),
                ))
            }
        },
    };
    let max_precision = match raw.max_precision {
        None => Precision::Exact,
        Some(value) => Precision::parse(value.get_ref()).ok_or_else(|| {
            r.at(
                value.span(),
                format!(
                    "privacy.max_precision: {:?} is not \"exact\", \"floor\" or \"building\"",
                    value.get_ref()
                ),
            )
        })?,
    };
    let (timezone, timezone_name) = match raw.timezone {
        None => (jiff::tz::TimeZone::UTC, "UTC".to_owned()),
        Some(name) => {
            let zone = jiff::tz::TimeZone::get(name.get_ref().trim()).map_err(|_| {
                r.at(
                    name.span(),
                    format!(
                        "privacy.timezone: {:?} is not a time zone (an IANA name such as \"Europe/Zurich\")",
                        name.get_ref()
                    ),
                )
            })?;
            (zone, name.get_ref().trim().to_owned())
        }
    };
    let days = match raw.working_days {
        None => None,
        Some(days) => Some(
            Weekdays::parse(days.get_ref().iter().map(String::as_str))
                .map_err(|msg| r.at(days.span(), format!("privacy.working_days: {msg}")))?,
        ),
    };
    let working_hours = match (raw.working_hours, days) {
        (None, None) => None,
        (None, Some(days)) => Some(Hours {
            start: 0,
            end: 24 * 60,
            days,
        }),
        (Some(window), days) => {
            if window.get_ref().trim().contains(char::is_whitespace) {
                return Err(r.at(
                    window.span(),
                    "privacy.working_hours: give the days in working_days, not here".to_owned(),
                ));
            }
            Some(
                Hours::parse(window.get_ref(), days.unwrap_or(Weekdays::MONDAY_TO_FRIDAY))
                    .map_err(|msg| r.at(window.span(), format!("privacy.working_hours: {msg}")))?,
            )
        }
    };
    // Once `[webex]`'s only, the domain rule holds on every channel; either place is read.
    let allowed_domains = match (raw.allowed_domains, webex_domains) {
        (Some(privacy), Some(_)) => {
            return Err(r.at(
                privacy.span(),
                "privacy.allowed_domains and webex.allowed_domains: give only one of them"
                    .to_owned(),
            ))
        }
        (Some(list), None) | (None, Some(list)) => list
            .into_inner()
            .iter()
            .map(|d| d.trim().trim_start_matches('@').to_lowercase())
            .filter(|d| !d.is_empty())
            .collect(),
        (None, None) => Vec::new(),
    };
    Ok(PrivacyConfig {
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
        consent,
        working_hours,
        timezone,
        timezone_name,
        max_precision,
    })
}

/// `[store]`: the URL, from the file or (since a PostgreSQL URL carries a password) from the
/// environment or a file; a relative SQLite path is relative to the configuration file.
pub(super) fn store_url(r: &Reader, raw: RawStore) -> Result<Secret, ConfigError> {
    let secret_url = r.secret(
        0..0,
        ("store.url_env", raw.url_env.as_ref()),
        ("store.url_file", raw.url_file.as_ref()),
    )?;
    let url_span = raw
        .url_env
        .as_ref()
        .map(Spanned::span)
        .or_else(|| raw.url_file.as_ref().map(Spanned::span));
    match (raw.url, secret_url) {
        (Some(url), Some(_)) => Err(r.at(
            url.span(),
            "store.url and store.url_env/url_file: give only one of them".to_owned(),
        )),
        (None, Some(secret)) => {
            let text = secret.expose().trim();
            if text.starts_with("postgres://") || text.starts_with("postgresql://") {
                Ok(Secret::new(text))
            } else {
                Err(r.at(
                    url_span.unwrap_or(0..0),
                    "store.url_env/url_file: must hold a postgres:// URL".to_owned(),
                ))
            }
        }
        (Some(url), None) => {
            let text = url.get_ref().trim();
            if let Some(path) = text.strip_prefix("sqlite://") {
                let path = Path::new(path);
                if path.is_absolute() {
                    Ok(Secret::new(text))
                } else {
                    Ok(Secret::new(format!(
                        "sqlite://{}",
                        r.base_dir.join(path).display()
                    )))
                }
            } else if text == "sqlite::memory:"
                || text.starts_with("postgres://")
                || text.starts_with("postgresql://")
            {
                Ok(Secret::new(text))
            } else {
                Err(r.at(
                    url.span(),
                    "store.url: must be sqlite://PATH, sqlite::memory: or postgres://…".to_owned(),
                ))
            }
        }
        (None, None) => Ok(Secret::new(format!(
            "sqlite://{}",
            r.base_dir.join(DEFAULT_STORE_FILE).display()
        ))),
    }
}

/// `[directory]`, checked by the directory crate itself.
pub(super) fn directory(
    r: &Reader,
    raw: Option<Spanned<RawDirectory>>,
) -> Result<Option<DirectoryConfig>, ConfigError> {
    let Some(section) = raw else {
        return Ok(None);
    };
    let span = section.span();
    section
        .into_inner()
        .resolve(r.base_dir, r.env)
        .map(Some)
        .map_err(|message| r.at(span, format!("[directory]: {message}")))
}
