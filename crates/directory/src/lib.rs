//! The corporate directory (`[directory]`): turns what a requester typed — a username, an email, an
//! alias or a full name — into people, and a chat requester's email into their username.
//!
//! Three kinds: `file` (a CSV kept in memory, [`file`](mod@file)), `ldap` (searched per query,
//! [`ldap`]) and `webex` (the People API, [`webex`]). Every kind answers through the same matcher
//! ([`names`]): case- and accent-insensitive, query words matching the start of name words in any
//! order; the best tier wins (username/email/alias, then the exact full name, then word prefixes).
//! [`Directory::suggest`] completes what someone is still typing (a search box's autocompletion).

pub mod file;
pub mod ldap;
pub mod names;
pub mod webex;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use whereis_location::Secret;
use whereis_webex::WebexClient;

/// Looked up by [`Directory::check`]: a search that runs for real and finds nobody.
const PROBE_EMAIL: &str = "whereis-probe@example.invalid";
/// Longest query accepted, in bytes.
const MAX_QUERY_BYTES: usize = 256;
/// Most entries [`Directory::suggest`] answers (a larger `limit` is lowered to it).
pub const MAX_SUGGESTIONS: usize = 25;
/// Fewest characters [`Directory::suggest`] completes; shorter text answers nothing, so that nobody
/// lists the directory one letter at a time.
pub const MIN_SUGGEST_CHARS: usize = 2;
/// LDAP operation timeout when `timeout_ms` is not set.
const DEFAULT_LDAP_TIMEOUT_MS: u64 = 5000;
/// Longest `timeout_ms` accepted.
const MAX_LDAP_TIMEOUT_MS: u64 = 60_000;

/// `[directory]` as written in the configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDirectory {
    /// `file`, `ldap` or `webex`.
    pub kind: String,
    /// file: the CSV (`username,display_name,email[,aliases]`).
    pub path: Option<PathBuf>,
    /// ldap: `ldap://host:389` or `ldaps://host:636`.
    pub url: Option<String>,
    /// ldap: upgrade an `ldap://` connection with StartTLS.
    pub starttls: Option<bool>,
    /// ldap: extra PEM trust roots for the server's certificate.
    pub ca_file: Option<PathBuf>,
    /// ldap: DN for a simple bind (anonymous without it).
    pub bind_dn: Option<String>,
    /// ldap: environment variable holding the bind password.
    pub bind_password_env: Option<String>,
    /// ldap: file holding the bind password.
    pub bind_password_file: Option<PathBuf>,
    /// ldap: where people are searched.
    pub base_dn: Option<String>,
    /// ldap: the attribute holding the username (default `uid`; Active Directory: `sAMAccountName`).
    pub username_attribute: Option<String>,
    /// ldap: the attribute naming a person's team (e.g. `departmentNumber`); none by default.
    pub team_attribute: Option<String>,
    /// ldap: the attribute holding a person's IANA time zone; none by default.
    pub timezone_attribute: Option<String>,
    /// ldap: timeout of each operation (connect, bind, search), in milliseconds.
    pub timeout_ms: Option<u64>,
}

/// A validated `[directory]`.
#[derive(Debug, Clone)]
pub enum DirectoryConfig {
    /// A CSV file, read at start.
    File {
        /// Absolute (resolved) path of the CSV.
        path: PathBuf,
    },
    /// An LDAP server, searched per query.
    Ldap(LdapConfig),
    /// The Webex People API (through the bot's client).
    Webex,
}

/// A validated LDAP directory.
#[derive(Debug, Clone)]
pub struct LdapConfig {
    /// `ldap://…` or `ldaps://…`.
    pub url: String,
    /// Upgrade with StartTLS (only with `ldap://`).
    pub starttls: bool,
    /// Extra PEM trust roots.
    pub ca_file: Option<PathBuf>,
    /// DN of a simple bind; anonymous when `None`.
    pub bind_dn: Option<String>,
    /// Password of the simple bind.
    pub bind_password: Option<Secret>,
    /// Search base.
    pub base_dn: String,
    /// Attribute holding the username.
    pub username_attribute: String,
    /// Attribute naming a person's team, if any.
    pub team_attribute: Option<String>,
    /// Attribute holding a person's time zone, if any.
    pub timezone_attribute: Option<String>,
    /// Timeout of each operation.
    pub timeout: Duration,
}

impl RawDirectory {
    /// Validates, resolves paths against `base_dir` and the bind password through `env`. Errors name
    /// the key (`directory.url: …`) and never hold a secret value.
    pub fn resolve(
        self,
        base_dir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<DirectoryConfig, String> {
        let kind = self.kind.trim().to_ascii_lowercase();
        let used: [(&str, bool); 12] = [
            ("path", self.path.is_some()),
            ("url", self.url.is_some()),
            ("starttls", self.starttls.is_some()),
            ("ca_file", self.ca_file.is_some()),
            ("bind_dn", self.bind_dn.is_some()),
            ("bind_password_env", self.bind_password_env.is_some()),
            ("bind_password_file", self.bind_password_file.is_some()),
            ("base_dn", self.base_dn.is_some()),
            ("username_attribute", self.username_attribute.is_some()),
            ("team_attribute", self.team_attribute.is_some()),
            ("timezone_attribute", self.timezone_attribute.is_some()),
            ("timeout_ms", self.timeout_ms.is_some()),
        ];
        let allowed: &[&str] = match kind.as_str() {
            "file" => &["path"],
            "webex" => &[],
            "ldap" => &[
                "url",
                "starttls",
                "ca_file",
                "bind_dn",
                "bind_password_env",
                "bind_password_file",
                "base_dn",
                "username_attribute",
                "team_attribute",
                "timezone_attribute",
                "timeout_ms",
            ],
            _ => {
                return Err(format!(
                    "directory.kind: unknown kind {:?} (expected file, ldap or webex)",
                    self.kind
                ))
            }
        };
        if let Some((key, _)) = used
            .iter()
            .find(|(key, set)| *set && !allowed.contains(key))
        {
            return Err(format!("directory.{key}: not used with kind = \"{kind}\""));
        }
        match kind.as_str() {
            "file" => {
                let path = self
                    .path
                    .ok_or("directory.path: kind = \"file\" needs the path of a CSV file")?;
                if path.as_os_str().is_empty() {
                    return Err("directory.path: is empty".into());
                }
                Ok(DirectoryConfig::File {
                    path: base_dir.join(path),
                })
            }
            "webex" => Ok(DirectoryConfig::Webex),
            _ => resolve_ldap(self, base_dir, env).map(DirectoryConfig::Ldap),
        }
    }
}

fn resolve_ldap(
    raw: RawDirectory,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<LdapConfig, String> {
    let url = raw
        .url
        .ok_or("directory.url: kind = \"ldap\" needs url (ldap://host:389 or ldaps://host:636)")?;
    let parsed = url::Url::parse(url.trim())
        .map_err(|err| format!("directory.url: {url:?} is not a URL ({err})"))?;
    if !matches!(parsed.scheme(), "ldap" | "ldaps") || parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!(
            "directory.url: {url:?} must be ldap://host[:port] or ldaps://host[:port]"
        ));
    }
    if !matches!(parsed.path(), "" | "/") || parsed.query().is_some() {
        return Err(format!(
            "directory.url: {url:?} must not have a path or query (set base_dn instead)"
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("directory.url: must not hold credentials (use bind_dn and bind_password_env or bind_password_file)".into());
    }
    let starttls = raw.starttls.unwrap_or(false);
    if starttls && parsed.scheme() == "ldaps" {
        return Err(
            "directory.starttls: StartTLS is for ldap:// URLs; ldaps:// is already TLS".into(),
        );
    }
    let base_dn = raw
        .base_dn
        .map(|b| b.trim().to_string())
        .filter(|b| !b.is_empty())
        .ok_or("directory.base_dn: kind = \"ldap\" needs base_dn (e.g. \"ou=people,dc=example,dc=com\")")?;
    let username_attribute = attribute_name(
        "username_attribute",
        raw.username_attribute.unwrap_or_else(|| "uid".to_string()),
    )?;
    let team_attribute = raw
        .team_attribute
        .map(|a| attribute_name("team_attribute", a))
        .transpose()?;
    let timezone_attribute = raw
        .timezone_attribute
        .map(|a| attribute_name("timezone_attribute", a))
        .transpose()?;
    let timeout_ms = raw.timeout_ms.unwrap_or(DEFAULT_LDAP_TIMEOUT_MS);
    if timeout_ms == 0 || timeout_ms > MAX_LDAP_TIMEOUT_MS {
        return Err(format!(
            "directory.timeout_ms: {timeout_ms} is out of range (1 to {MAX_LDAP_TIMEOUT_MS})"
        ));
    }
    let bind_dn = raw
        .bind_dn
        .map(|d| d.trim().to_string())
        .filter(|d| !d.is_empty());
    let bind_password = match (raw.bind_password_env, raw.bind_password_file) {
        (Some(_), Some(_)) => return Err(
            "directory.bind_password_env and directory.bind_password_file: give only one of them"
                .into(),
        ),
        (Some(name), None) => match env(&name) {
            Some(value) if !value.is_empty() => Some(Secret::new(value)),
            _ => {
                return Err(format!(
                    "directory.bind_password_env: environment variable {name} is not set"
                ))
            }
        },
        (None, Some(file)) => {
            let resolved = base_dir.join(file);
            let value = std::fs::read_to_string(&resolved).map_err(|err| {
                format!(
                    "directory.bind_password_file: cannot read {}: {err}",
                    resolved.display()
                )
            })?;
            let value = value.trim_end_matches(['\r', '\n']);
            if value.is_empty() {
                return Err(format!(
                    "directory.bind_password_file: {} is empty",
                    resolved.display()
                ));
            }
            Some(Secret::new(value))
        }
        (None, None) => None,
    };
    match (&bind_dn, &bind_password) {
        (Some(_), None) => {
            return Err("directory.bind_dn: needs bind_password_env or bind_password_file (passwords are never written in the configuration)".into())
        }
        (None, Some(_)) => {
            return Err("directory.bind_password_env/bind_password_file: set bind_dn too (without it the bind is anonymous)".into())
        }
        _ => {}
    }
    Ok(LdapConfig {
        url: url.trim().to_string(),
        starttls,
        ca_file: raw.ca_file.map(|f| base_dir.join(f)),
        bind_dn,
        bind_password,
        base_dn,
        username_attribute,
        team_attribute,
        timezone_attribute,
        timeout: Duration::from_millis(timeout_ms),
    })
}

/// An LDAP attribute name given as `directory.{key}` (trimmed), or why it is not one.
fn attribute_name(key: &str, name: String) -> Result<String, String> {
    let name = name.trim().to_string();
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    if valid {
        Ok(name)
    } else {
        Err(format!(
            "directory.{key}: {name:?} is not an LDAP attribute name"
        ))
    }
}

/// One person in the directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    /// The username the location servers know.
    pub username: String,
    /// Full name, as shown to requesters.
    pub display_name: String,
    /// Email address, when the directory has one.
    pub email: Option<String>,
    /// The person's team (the file's `team` column, LDAP's `team_attribute`), when known.
    pub team: Option<String>,
    /// Who the person reports to, when known: an email or a username (the file's `manager`
    /// column; LDAP's `manager` DN by the value of its first part, `uid=boss,…` → `boss`).
    pub manager: Option<String>,
    /// The person's IANA time zone (`Europe/Zurich`; the file's `timezone` column, LDAP's
    /// `timezone_attribute`), when known.
    pub timezone: Option<String>,
}

/// What a query resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Exactly one person.
    One(Entry),
    /// Several people (at most [`names::MAX_CANDIDATES`]), sorted by display name.
    Several(Vec<Entry>),
    /// Nobody (the text may still be tried as a username).
    NoMatch,
}

/// A directory failure. Messages are meant for operators and never hold a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    /// The directory could not be asked (server down, timeout, credentials refused).
    #[error("directory unavailable: {0}")]
    Unavailable(String),
    /// The directory's content or set-up, or the query, is unusable.
    #[error("directory: {0}")]
    Invalid(String),
}

/// The configured directory. Cheap to clone: clones share the same data and settings.
#[derive(Clone)]
pub struct Directory {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    File(Arc<file::FileDirectory>),
    Ldap(Arc<ldap::LdapDirectory>),
    Webex(Arc<webex::WebexDirectory>),
}

impl fmt::Debug for Directory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.backend {
            Backend::File(d) => f
                .debug_struct("Directory")
                .field("kind", &"file")
                .field("path", &d.path())
                .finish(),
            Backend::Ldap(d) => f
                .debug_struct("Directory")
                .field("kind", &"ldap")
                .field("url", &d.url())
                .finish(),
            Backend::Webex(_) => f.debug_struct("Directory").field("kind", &"webex").finish(),
        }
    }
}

impl Directory {
    /// Opens the directory: a file is read and checked now (a bad row refuses the whole file), an
    /// LDAP server is only contacted per query, `webex` needs the bot's client.
    pub async fn open(
        config: &DirectoryConfig,
        webex: Option<WebexClient>,
    ) -> Result<Directory, DirectoryError> {
        let backend = match config {
            DirectoryConfig::File { path } => {
                Backend::File(Arc::new(file::FileDirectory::open(path.clone()).await?))
            }
            DirectoryConfig::Ldap(settings) => {
                Backend::Ldap(Arc::new(ldap::LdapDirectory::new(settings.clone()).await?))
            }
            DirectoryConfig::Webex => {
                let client = webex.ok_or_else(|| {
                    DirectoryError::Invalid(
                        "kind = \"webex\" needs the [webex] section (the bot's token)".into(),
                    )
                })?;
                Backend::Webex(Arc::new(webex::WebexDirectory::new(client)))
            }
        };
        Ok(Directory { backend })
    }

    /// A directory of these people held in memory (kind `file`; for demos and tests), each with
    /// their aliases.
    pub fn from_entries(
        people: impl IntoIterator<Item = (Entry, Vec<String>)>,
    ) -> Result<Directory, DirectoryError> {
        Ok(Directory {
            backend: Backend::File(Arc::new(file::FileDirectory::from_entries(people)?)),
        })
    }

    /// What a requester typed → people: a username (exact, case-insensitive), an email, an alias,
    /// or a full name (`Jane Doe`, `doe jane`, `Jane` when unique), case- and accent-insensitive.
    pub async fn resolve(&self, query: &str) -> Result<Resolution, DirectoryError> {
        let query = check_query(query)?;
        match &self.backend {
            Backend::File(d) => Ok(d.resolve(query)),
            Backend::Ldap(d) => d.resolve(query).await,
            Backend::Webex(d) => d.resolve(query).await,
        }
    }

    /// At most `limit` (1 to [`MAX_SUGGESTIONS`]) people for what someone is still typing, best
    /// first: each word of `query` starts a different word of the name, in any order (`jan`,
    /// `doe j`), or `query` starts the username or the email (`jdo`, `jane.d`); case- and
    /// accent-insensitive ([`names::fold`]). Order: the username or email exactly, then display names
    /// whose first word starts with the query's first word, then the others; ties by display name.
    /// Fewer than [`MIN_SUGGEST_CHARS`] characters (trimmed) answer nothing; an overlong query is
    /// [`DirectoryError::Invalid`], as for [`resolve`](Directory::resolve). LDAP asks the server
    /// once with prefix filters (accents as the server's matching rules treat them), Webex asks the
    /// People API by display-name prefix (see [`webex::WebexDirectory::suggest`]).
    pub async fn suggest(&self, query: &str, limit: usize) -> Result<Vec<Entry>, DirectoryError> {
        if query.trim().chars().count() < MIN_SUGGEST_CHARS {
            return Ok(Vec::new());
        }
        let query = check_query(query)?;
        let limit = limit.clamp(1, MAX_SUGGESTIONS);
        match &self.backend {
            Backend::File(d) => Ok(d.suggest(query, limit)),
            Backend::Ldap(d) => d.suggest(query, limit).await,
            Backend::Webex(d) => d.suggest(query, limit).await,
        }
    }

    /// The entry with this email (case-insensitive): how a chat requester becomes a username.
    pub async fn by_email(&self, email: &str) -> Result<Option<Entry>, DirectoryError> {
        let email = email.trim();
        if email.is_empty() || email.len() > MAX_QUERY_BYTES || !email.contains('@') {
            return Err(DirectoryError::Invalid(format!(
                "{:?} is not an email address",
                truncate(email)
            )));
        }
        match &self.backend {
            Backend::File(d) => Ok(d.by_email(email)),
            Backend::Ldap(d) => d.by_email(email).await,
            Backend::Webex(d) => d.by_email(email).await,
        }
    }

    /// Re-reads a file directory (all or nothing: on error the old content stays) and returns how
    /// many people it now holds; other kinds have nothing to reload and answer `None`.
    pub async fn reload(&self) -> Result<Option<usize>, DirectoryError> {
        match &self.backend {
            Backend::File(d) => d.reload().await.map(Some),
            _ => Ok(None),
        }
    }

    /// Checks the directory can answer: LDAP connects, binds and runs one search; the Webex People
    /// API answers one search; a file is ready once read.
    pub async fn check(&self) -> Result<(), DirectoryError> {
        if let Backend::Ldap(d) = &self.backend {
            d.check().await?;
        }
        self.by_email(PROBE_EMAIL).await.map(drop)
    }

    /// `file`, `ldap` or `webex`.
    pub fn kind(&self) -> &'static str {
        match &self.backend {
            Backend::File(_) => "file",
            Backend::Ldap(_) => "ldap",
            Backend::Webex(_) => "webex",
        }
    }
}

/// The trimmed query, or why it cannot be looked up.
fn check_query(query: &str) -> Result<&str, DirectoryError> {
    let query = query.trim();
    if query.is_empty() {
        return Err(DirectoryError::Invalid("empty query".into()));
    }
    if query.len() > MAX_QUERY_BYTES {
        return Err(DirectoryError::Invalid(format!(
            "query longer than {MAX_QUERY_BYTES} bytes"
        )));
    }
    if query.chars().any(char::is_control) {
        return Err(DirectoryError::Invalid(
            "query contains control characters".into(),
        ));
    }
    Ok(query)
}

/// At most 64 characters of `text`, for error messages.
fn truncate(text: &str) -> String {
    text.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(kind: &str) -> RawDirectory {
        RawDirectory {
            kind: kind.into(),
            ..RawDirectory::default()
        }
    }

    fn ldap_raw() -> RawDirectory {
        RawDirectory {
            url: Some("ldaps://ldap.example.com".into()),
            base_dn: Some("dc=example,dc=com".into()),
            bind_dn: Some("cn=whereis,dc=example,dc=com".into()),
            bind_password_env: Some("LDAP_PW".into()),
            ..raw("ldap")
        }
    }

    fn env(name: &str) -> Option<String> {
        (name == "LDAP_PW").then(|| "hunter2".to_string())
    }

    #[test]
    fn file_resolves_relative_path() {
        let file = RawDirectory {
            path: Some("people.csv".into()),
            ..raw("file")
        };
        match file.resolve(Path::new("/etc/whereis"), &env).unwrap() {
            DirectoryConfig::File { path } => {
                assert_eq!(path, Path::new("/etc/whereis/people.csv"))
            }
            other => panic!("{other:?}"),
        }
        let err = RawDirectory {
            url: Some("ldap://x".into()),
            ..raw("file")
        }
        .resolve(Path::new("/"), &env)
        .unwrap_err();
        assert!(err.contains("directory.url"), "{err}");
        let err = raw("file").resolve(Path::new("/"), &env).unwrap_err();
        assert!(err.contains("directory.path"), "{err}");
    }

    #[test]
    fn ldap_defaults_and_secret() {
        let config = match ldap_raw().resolve(Path::new("/etc"), &env).unwrap() {
            DirectoryConfig::Ldap(c) => c,
            other => panic!("{other:?}"),
        };
        assert_eq!(config.username_attribute, "uid");
        assert_eq!(
            config.timeout,
            Duration::from_millis(DEFAULT_LDAP_TIMEOUT_MS)
        );
        assert_eq!(config.bind_password.as_ref().unwrap().expose(), "hunter2");
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn ldap_errors_name_the_key() {
        let cases: Vec<(RawDirectory, &str)> = vec![
            (
                RawDirectory {
                    url: None,
                    ..ldap_raw()
                },
                "directory.url",
            ),
            (
                RawDirectory {
                    url: Some("https://x".into()),
                    ..ldap_raw()
                },
                "directory.url",
            ),
            (
                RawDirectory {
                    starttls: Some(true),
                    ..ldap_raw()
                },
                "directory.starttls",
            ),
            (
                RawDirectory {
                    base_dn: None,
                    ..ldap_raw()
                },
                "directory.base_dn",
            ),
            (
                RawDirectory {
                    bind_password_env: Some("NOPE".into()),
                    ..ldap_raw()
                },
                "NOPE is not set",
            ),
            (
                RawDirectory {
                    bind_password_env: None,
                    ..ldap_raw()
                },
                "directory.bind_dn",
            ),
            (
                RawDirectory {
                    bind_password_file: Some("x".into()),
                    ..ldap_raw()
                },
                "give only one",
            ),
            (
                RawDirectory {
                    username_attribute: Some("uid)(x".into()),
                    ..ldap_raw()
                },
                "directory.username_attribute",
            ),
            (
                RawDirectory {
                    timeout_ms: Some(0),
                    ..ldap_raw()
                },
                "directory.timeout_ms",
            ),
            (
                RawDirectory {
                    path: Some("p".into()),
                    ..ldap_raw()
                },
                "directory.path",
            ),
            (raw("nis"), "directory.kind"),
            (
                RawDirectory {
                    timeout_ms: Some(5),
                    ..raw("webex")
                },
                "directory.timeout_ms",
            ),
        ];
        for (raw, want) in cases {
            let err = raw.resolve(Path::new("/"), &env).unwrap_err();
            assert!(err.contains(want), "{err:?} should mention {want}");
            assert!(!err.contains("hunter2"));
        }
    }

    #[test]
    fn password_file_is_relative_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pw"), "s3cret\n").unwrap();
        let raw = RawDirectory {
            bind_password_env: None,
            bind_password_file: Some("pw".into()),
            ..ldap_raw()
        };
        match raw.resolve(dir.path(), &env).unwrap() {
            DirectoryConfig::Ldap(c) => assert_eq!(c.bind_password.unwrap().expose(), "s3cret"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn queries_are_checked() {
        assert!(check_query("  ").is_err());
        assert!(check_query(&"x".repeat(300)).is_err());
        assert!(check_query("a\u{0}b").is_err());
        assert_eq!(check_query(" Jane Doe ").unwrap(), "Jane Doe");
    }
}
