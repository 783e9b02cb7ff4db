//! The configuration file (TOML; README.md shows every section): parsing, validation with
//! file/line/key in every error, defaults, and secrets read from the environment or from files —
//! never from the file itself. `raw.rs` is the file as TOML gives it, `sections.rs` one parser per
//! section.

mod live;
mod raw;
mod sections;
mod web;

pub use live::{LiveKind, LiveSourceConfig, MerakiReceiver, Origin};
pub use web::{OidcSettings, WebAuth, WebConfig, DEFAULT_PROXY_HEADER};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use whereis_floormap::MapSettings;

use crate::directory::DirectoryConfig;
use crate::privacy::{Consent, Hours, Precision};
use whereis_location::{LocatorSettings, Secret, SourceSettings};
use whereis_net::Network;

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
    /// Location servers asked at each lookup (CMX, MSE), in file order.
    pub sources: Vec<SourceSettings>,
    /// Location services that push positions into the live table (Cisco Spaces, Meraki), in file order.
    pub live_sources: Vec<LiveSourceConfig>,
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
    /// Who the requester of a web or API request is, and the web app's options.
    pub web: WebConfig,
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
    /// Whether people who made no choice are findable (`default`).
    pub consent: Consent,
    /// When people may be located (`working_hours`, `working_days`); `None`: always.
    pub working_hours: Option<Hours>,
    /// The time zone working hours are read in for people whose own the directory does not know.
    pub timezone: jiff::tz::TimeZone,
    /// Its name, as configured (`UTC` by default).
    pub timezone_name: String,
    /// The finest precision anyone is shown with (`max_precision`).
    pub max_precision: Precision,
}

impl Default for PrivacyConfig {
    fn default() -> PrivacyConfig {
        PrivacyConfig {
            admins: Vec::new(),
            allowed_domains: Vec::new(),
            rate_limit_per_hour: DEFAULT_RATE_LIMIT_PER_HOUR,
            audit_retention_days: DEFAULT_AUDIT_RETENTION_DAYS,
            notify_target: false,
            consent: Consent::OptOut,
            working_hours: None,
            timezone: jiff::tz::TimeZone::UTC,
            timezone_name: "UTC".to_owned(),
            max_precision: Precision::Exact,
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
    /// A separate address for `/metrics` (e.g. reachable by the monitoring network only); `None`:
    /// served on `listen`.
    pub metrics_listen: Option<SocketAddr>,
    /// How long a stopping instance waits for work in flight (lookups, replies) before it exits.
    pub shutdown_grace: Duration,
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
/// The commented starter configuration `whereis-bot init` prints.
pub const STARTER: &str = include_str!("starter.toml");

/// Default of `[server] shutdown_grace_seconds`.
pub const DEFAULT_SHUTDOWN_GRACE_SECONDS: u64 = 20;
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
        let reader = sections::Reader {
            text,
            path,
            base_dir,
            env,
        };
        let raw: raw::RawConfig = toml::from_str(text).map_err(|err| {
            reader.at(
                err.span().unwrap_or(0..0),
                describe_toml_error(err.message()),
            )
        })?;
        let server = sections::server(&reader, raw.server)?;
        let network = sections::network(&reader, raw.network)?;
        let (lookup, timeout) = sections::lookup(&reader, raw.lookup)?;
        let (maps, image_timeout) = sections::maps(&reader, raw.maps)?;
        let (sources, live_sources) = sections::sources(
            &reader,
            raw.sources,
            &sections::SourceDefaults {
                timeout,
                image_timeout,
                network: &network,
            },
        )?;
        let (webex, webex_domains) = sections::webex(&reader, raw.webex, &server)?;
        let privacy = sections::privacy(&reader, raw.privacy, webex_domains)?;
        let store_url = sections::store_url(&reader, raw.store)?;
        let directory = sections::directory(&reader, raw.directory)?;
        let web = web::web(&reader, raw.web, &server)?;
        Ok(Config {
            path: path.to_owned(),
            server,
            lookup,
            sources,
            live_sources,
            maps,
            webex,
            privacy,
            store_url,
            directory,
            network,
            web,
        })
    }
}

pub(super) fn check_url(url: &str) -> Result<(), String> {
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
    use whereis_location::SourceKind;

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
    fn privacy_controls() {
        let config = parse(GOOD).unwrap();
        assert_eq!(config.privacy.consent, Consent::OptOut);
        assert_eq!(config.privacy.working_hours, None);
        assert_eq!(config.privacy.max_precision, Precision::Exact);
        assert_eq!(config.privacy.timezone_name, "UTC");
        let strict = format!(
            "{GOOD}\n[privacy]\ndefault = \"opt-in\"\nworking_hours = \"08:00-18:30\"\nworking_days = [\"mon-thu\", \"fri\"]\ntimezone = \"Europe/Zurich\"\nmax_precision = \"floor\"\n"
        );
        let config = parse(&strict).unwrap();
        assert_eq!(config.privacy.consent, Consent::OptIn);
        assert_eq!(
            config
                .privacy
                .working_hours
                .map(|h| h.to_string())
                .as_deref(),
            Some("08:00-18:30 mon,tue,wed,thu,fri")
        );
        assert_eq!(config.privacy.max_precision, Precision::Floor);
        assert_eq!(config.privacy.timezone_name, "Europe/Zurich");
        // Days without hours: the whole day on those days.
        let days = format!("{GOOD}\n[privacy]\nworking_days = [\"sat\"]\n");
        let config = parse(&days).unwrap();
        assert_eq!(
            config
                .privacy
                .working_hours
                .map(|h| h.to_string())
                .as_deref(),
            Some("00:00-24:00 sat")
        );
        // Hours without days: Monday to Friday.
        let hours = format!("{GOOD}\n[privacy]\nworking_hours = \"09:00-17:00\"\n");
        assert_eq!(
            parse(&hours).unwrap().privacy.working_hours.map(|h| h.days),
            Some(crate::privacy::Weekdays::MONDAY_TO_FRIDAY)
        );
        for (bad, key) in [
            ("default = \"maybe\"", "privacy.default"),
            ("max_precision = \"room\"", "privacy.max_precision"),
            ("timezone = \"Mars/Olympus\"", "privacy.timezone"),
            ("working_hours = \"18:00-08:00\"", "privacy.working_hours"),
            (
                "working_hours = \"08:00-18:00 mon\"",
                "privacy.working_hours",
            ),
            ("working_days = [\"someday\"]", "privacy.working_days"),
        ] {
            let text = format!("{GOOD}\n[privacy]\n{bad}\n");
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.contains(key), "{bad}: {err}");
            assert!(err.starts_with("/etc/whereis.toml:"), "{bad}: {err}");
        }
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

    #[test]
    fn the_starter_configuration_is_valid_once_its_secrets_are_set() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::parse(
            STARTER,
            &dir.path().join("whereis.toml"),
            dir.path(),
            &|name| (name == "CMX_NORTH_PASSWORD").then(|| "secret".to_owned()),
        )
        .unwrap();
        assert_eq!(config.sources.len(), 1);
        assert_eq!(config.lookup.username_variants.len(), 3);
        let without_secret = Config::parse(
            STARTER,
            &dir.path().join("whereis.toml"),
            dir.path(),
            &|_| None,
        )
        .unwrap_err()
        .to_string();
        assert!(
            without_secret.contains("CMX_NORTH_PASSWORD is not set"),
            "{without_secret}"
        );
    }

    #[test]
    fn server_metrics_listen_and_shutdown_grace() {
        let config = parse(&format!(
            "{GOOD}\n[server]\nmetrics_listen = \"127.0.0.1:9090\"\nshutdown_grace_seconds = 5\n"
        ))
        .map(|c| (c.server.metrics_listen, c.server.shutdown_grace));
        // GOOD already has a [server] table.
        assert!(config.is_err());
        let text = GOOD.replace(
            "listen = \"127.0.0.1:9999\"",
            "listen = \"127.0.0.1:9999\"\nmetrics_listen = \"127.0.0.1:9090\"\nshutdown_grace_seconds = 5",
        );
        let config = parse(&text).unwrap();
        assert_eq!(
            config.server.metrics_listen,
            Some("127.0.0.1:9090".parse().unwrap())
        );
        assert_eq!(config.server.shutdown_grace, Duration::from_secs(5));
        assert_eq!(
            parse(GOOD).unwrap().server.shutdown_grace,
            Duration::from_secs(DEFAULT_SHUTDOWN_GRACE_SECONDS)
        );
        let same = GOOD.replace(
            "listen = \"127.0.0.1:9999\"",
            "listen = \"127.0.0.1:9999\"\nmetrics_listen = \"127.0.0.1:9999\"",
        );
        assert!(parse(&same)
            .unwrap_err()
            .to_string()
            .contains("server.metrics_listen"));
        let long = GOOD.replace(
            "listen = \"127.0.0.1:9999\"",
            "listen = \"127.0.0.1:9999\"\nshutdown_grace_seconds = 100000",
        );
        assert!(parse(&long)
            .unwrap_err()
            .to_string()
            .contains("server.shutdown_grace_seconds: must be between 0 and 600"));
    }
}
