//! `kind = "ldap"`: an LDAP server (OpenLDAP, Active Directory, …) searched per query.
//!
//! Each query opens a connection (LDAPS, or StartTLS over `ldap://`, with rustls), binds (simple bind
//! with `bind_dn`, or anonymously), searches `base_dn` and closes. Every operation has the configured
//! timeout, the search a size limit. User input only reaches the server RFC 4515-escaped.
//!
//! LDAP matching rules fold case but usually not accents, so the filter asks loosely — each word as
//! typed and folded, as a substring and (where the server has it) an approximate match — and the
//! candidates are ranked here with the same matcher as every other kind. When that finds nobody, a
//! second, looser search asks for fragments of each word, so that `jose garcia` still finds
//! `José García` on a server that neither folds accents nor has approximate matching.
//!
//! Suggestions (autocompletion) are one search with prefix filters and a size limit of the number
//! wanted; the server's own matching rules decide about accents there (most fold case, not
//! accents), though words typed with accents are also asked without them.

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ldap3::{ldap_escape, Ldap, LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use tokio::task::JoinHandle;

use super::names::{choose, raw_and_folded_words, suggest_among, Person, Prefix, Query};
use super::{DirectoryError, Entry, LdapConfig, Resolution};

/// Most entries one search asks the server for.
const SIZE_LIMIT: i32 = 200;
/// Attributes compared by substring (and fragments).
const NAME_ATTRIBUTES: [&str; 4] = ["cn", "displayName", "givenName", "sn"];
/// Result codes that still carry usable entries: success, time and size limit exceeded, referral.
const USABLE_CODES: [u32; 4] = [0, 3, 4, 10];

/// An LDAP directory: its settings and TLS configuration (built once).
pub struct LdapDirectory {
    config: LdapConfig,
    tls: Arc<rustls::ClientConfig>,
}

impl LdapDirectory {
    /// Prepares the TLS configuration (system roots plus `ca_file`); nothing is contacted yet.
    pub async fn new(config: LdapConfig) -> Result<LdapDirectory, DirectoryError> {
        let ca_file = config.ca_file.clone();
        let tls = tokio::task::spawn_blocking(move || tls_config(ca_file.as_deref()))
            .await
            .map_err(|err| DirectoryError::Invalid(format!("loading trust roots: {err}")))??;
        Ok(LdapDirectory { config, tls })
    }

    /// The server's URL.
    pub fn url(&self) -> &str {
        &self.config.url
    }

    /// Connects and binds.
    pub async fn check(&self) -> Result<(), DirectoryError> {
        self.bounded(async {
            let mut session = self.connect().await?;
            session.close().await;
            Ok(())
        })
        .await
    }

    /// See [`Directory::resolve`](super::Directory::resolve).
    pub async fn resolve(&self, query: &str) -> Result<Resolution, DirectoryError> {
        let Some(filter) = self.first_filter(query) else {
            return Ok(Resolution::NoMatch);
        };
        let prepared = Query::new(query);
        self.bounded(async {
            let mut session = self.connect().await?;
            let entries = session.search(&filter, SIZE_LIMIT).await?;
            let mut people = self.people(entries, None);
            let mut answer = choose(&prepared, people.iter());
            if answer == Resolution::NoMatch {
                if let Some(filter) = fragments_filter(query) {
                    let more = session.search(&filter, SIZE_LIMIT).await?;
                    people.extend(self.people(more, None));
                    answer = choose(&prepared, people.iter());
                }
            }
            session.close().await;
            Ok(answer)
        })
        .await
    }

    /// See [`Directory::suggest`](super::Directory::suggest): one search ([`Self::suggest_filter`])
    /// with a size limit of `limit` (a server that stops there answers what it has), ranked here.
    pub async fn suggest(&self, query: &str, limit: usize) -> Result<Vec<Entry>, DirectoryError> {
        let prefix = Prefix::new(query);
        let Some(filter) = self.suggest_filter(query, &prefix) else {
            return Ok(Vec::new());
        };
        let size_limit = i32::try_from(limit)
            .unwrap_or(SIZE_LIMIT)
            .clamp(1, SIZE_LIMIT);
        self.bounded(async {
            let mut session = self.connect().await?;
            let entries = session.search(&filter, size_limit).await?;
            session.close().await;
            let people = self.people(entries, None);
            Ok(suggest_among(&prefix, &people, limit))
        })
        .await
    }

    /// See [`Directory::by_email`](super::Directory::by_email).
    pub async fn by_email(&self, email: &str) -> Result<Option<Entry>, DirectoryError> {
        let filter = format!("(&(objectClass=person)(mail={}))", ldap_escape(email));
        self.bounded(async {
            let mut session = self.connect().await?;
            let entries = session.search(&filter, SIZE_LIMIT).await?;
            session.close().await;
            // The server matched `mail` (case-insensitively); the entry answers with that address.
            Ok(self
                .people(entries, Some(email))
                .into_iter()
                .find(|p| p.email_key() == Some(email.to_lowercase().as_str()))
                .map(|p| p.entry))
        })
        .await
    }

    /// Runs `work` under an overall bound (each operation also has its own timeout).
    async fn bounded<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, DirectoryError>>,
    ) -> Result<T, DirectoryError> {
        let limit = self.config.timeout * 4;
        tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
            Err(DirectoryError::Unavailable(format!(
                "{} did not answer within {} ms",
                self.config.url,
                limit.as_millis()
            )))
        })
    }

    async fn connect(&self) -> Result<Session, DirectoryError> {
        let settings = LdapConnSettings::new()
            .set_conn_timeout(self.config.timeout)
            .set_starttls(self.config.starttls)
            .set_config(self.tls.clone());
        let (conn, ldap) = LdapConnAsync::with_settings(settings, &self.config.url)
            .await
            .map_err(|err| self.unavailable("cannot connect to", &err))?;
        let driver = tokio::spawn(async move {
            if let Err(err) = conn.drive().await {
                tracing::debug!("LDAP connection ended: {err}");
            }
        });
        let mut session = Session {
            ldap,
            driver,
            config: self.config.clone(),
        };
        if let (Some(dn), Some(password)) = (&self.config.bind_dn, &self.config.bind_password) {
            let result = session
                .ldap
                .with_timeout(self.config.timeout)
                .simple_bind(dn, password.expose())
                .await
                .map_err(|err| self.unavailable("cannot bind to", &err))?;
            if result.rc != 0 {
                let why = match result.rc {
                    49 => "invalid credentials".to_string(),
                    rc => format!("{} (rc={rc})", result.text.trim()),
                };
                return Err(DirectoryError::Unavailable(format!(
                    "{} refused the bind as {dn:?}: {why}",
                    self.config.url
                )));
            }
        }
        Ok(session)
    }

    fn unavailable(&self, what: &str, err: &LdapError) -> DirectoryError {
        DirectoryError::Unavailable(describe(&self.config, what, err))
    }

    /// The filter of the first search: username and email exactly, and every word of the query
    /// somewhere in a name; `None` when the query has neither a single token nor a word.
    fn first_filter(&self, query: &str) -> Option<String> {
        let escaped = ldap_escape(query);
        let mut any = String::new();
        if !query.contains(char::is_whitespace) {
            any.push_str(&format!(
                "({}={escaped})(mail={escaped})",
                self.config.username_attribute
            ));
        }
        if !query.contains('@') {
            let words = raw_and_folded_words(query);
            if !words.is_empty() {
                any.push_str("(&");
                for (raw, folded) in &words {
                    any.push_str("(|");
                    let mut variants = vec![raw.as_str()];
                    if folded != raw {
                        variants.push(folded.as_str());
                    }
                    for variant in variants {
                        let v = ldap_escape(variant);
                        for attribute in NAME_ATTRIBUTES {
                            any.push_str(&format!("({attribute}=*{v}*)({attribute}~={v})"));
                        }
                    }
                    any.push_str(&format!("(mail=*{}*)", ldap_escape(folded.as_str())));
                    any.push(')');
                }
                any.push(')');
            }
        }
        (!any.is_empty()).then(|| format!("(&(objectClass=person)(|{any}))"))
    }

    /// The filter of a suggestion search: the text as the start of the username or the email (when
    /// it is one token), or each of its words as the start of a name attribute, as typed and folded
    /// (several words: all of them). `None` when there is nothing worth asking.
    fn suggest_filter(&self, query: &str, prefix: &Prefix) -> Option<String> {
        let query = query.trim();
        let mut any = String::new();
        if !query.is_empty() && !query.contains(char::is_whitespace) {
            let q = ldap_escape(query);
            any.push_str(&format!(
                "({}={q}*)(mail={q}*)",
                self.config.username_attribute
            ));
        }
        let words = if prefix.has_name_words() {
            raw_and_folded_words(query)
        } else {
            Vec::new()
        };
        let mut each = String::new();
        for (raw, folded) in &words {
            each.push_str("(|");
            let mut variants = vec![raw.as_str()];
            if folded != raw {
                variants.push(folded.as_str());
            }
            for variant in variants {
                let v = ldap_escape(variant);
                for attribute in NAME_ATTRIBUTES {
                    each.push_str(&format!("({attribute}={v}*)"));
                }
            }
            each.push(')');
        }
        match words.len() {
            0 => {}
            1 => any.push_str(&each),
            _ => any.push_str(&format!("(&{each})")),
        }
        (!any.is_empty()).then(|| format!("(&(objectClass=person)(|{any}))"))
    }

    /// Turns search results into people; entries without a username are skipped, duplicates
    /// (by username) dropped. A person's email is their first `mail`, or `email` when they have it.
    fn people(&self, entries: Vec<SearchEntry>, email: Option<&str>) -> Vec<Person> {
        let mut seen = HashSet::new();
        let mut people = Vec::new();
        for entry in entries {
            let values = |name: &str| -> Vec<String> {
                entry
                    .attrs
                    .iter()
                    .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                    .flat_map(|(_, v)| v.iter())
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty())
                    .collect()
            };
            let Some(username) = values(&self.config.username_attribute).into_iter().next() else {
                continue;
            };
            if !seen.insert(username.to_lowercase()) {
                continue;
            }
            let display_names = values("displayName");
            let cns = values("cn");
            let display_name = display_names
                .first()
                .or(cns.first())
                .cloned()
                .unwrap_or_else(|| username.clone());
            let mut aliases: Vec<String> = display_names.into_iter().chain(cns).collect();
            for given in values("givenName") {
                for sn in values("sn") {
                    aliases.push(format!("{given} {sn}"));
                }
            }
            aliases.retain(|a| *a != display_name);
            aliases.dedup();
            let mails = values("mail");
            let email = email
                .and_then(|want| mails.iter().find(|m| m.eq_ignore_ascii_case(want.trim())))
                .or(mails.first())
                .cloned();
            let first = |attribute: Option<&String>| {
                attribute.and_then(|name| values(name).into_iter().next())
            };
            let manager = values("manager")
                .into_iter()
                .next()
                .map(|dn| first_rdn_value(&dn));
            people.push(Person::new(
                Entry {
                    username,
                    display_name,
                    email,
                    team: first(self.config.team_attribute.as_ref()),
                    manager,
                    timezone: first(self.config.timezone_attribute.as_ref()),
                },
                &aliases,
            ));
        }
        people
    }
}

/// The value of a DN's first part (`uid=boss,ou=people,…` → `boss`), which is how a manager is
/// compared with a username; a value that is not a DN is returned as it is.
fn first_rdn_value(dn: &str) -> String {
    let first = dn.split(',').next().unwrap_or(dn);
    match first.split_once('=') {
        Some((_, value)) => value.trim().to_string(),
        None => dn.trim().to_string(),
    }
}

/// The looser second filter: fragments of each (folded) word, so that an accent in the directory
/// only spoils the fragment it falls in. `None` when the query has no name words.
fn fragments_filter(query: &str) -> Option<String> {
    if query.contains('@') {
        return None;
    }
    let words = raw_and_folded_words(query);
    if words.is_empty() {
        return None;
    }
    let mut filter = String::from("(&(objectClass=person)");
    for (_, word) in &words {
        let chars: Vec<char> = word.chars().collect();
        let fragments: Vec<String> = match chars.len() {
            0..=2 => vec![word.clone()],
            3 => vec![chars[..2].iter().collect(), chars[1..].iter().collect()],
            n => vec![
                chars[..n / 2].iter().collect(),
                chars[n / 2..].iter().collect(),
            ],
        };
        filter.push_str("(|");
        for fragment in &fragments {
            let f = ldap_escape(fragment.as_str());
            for attribute in NAME_ATTRIBUTES {
                filter.push_str(&format!("({attribute}=*{f}*)"));
            }
        }
        filter.push(')');
    }
    filter.push(')');
    Some(filter)
}

/// One bound connection; its driver task ends with it.
struct Session {
    ldap: Ldap,
    driver: JoinHandle<()>,
    config: LdapConfig,
}

impl Session {
    /// Searches `base_dn` (subtree) with `filter`; entries past `size_limit` are left out.
    async fn search(
        &mut self,
        filter: &str,
        size_limit: i32,
    ) -> Result<Vec<SearchEntry>, DirectoryError> {
        let mut attributes = vec![
            self.config.username_attribute.as_str(),
            "displayName",
            "cn",
            "mail",
            "givenName",
            "sn",
            "manager",
        ];
        attributes.extend(self.config.team_attribute.as_deref());
        attributes.extend(self.config.timezone_attribute.as_deref());
        let seconds = i32::try_from(self.config.timeout.as_secs().max(1)).unwrap_or(60);
        let result = self
            .ldap
            .with_timeout(self.config.timeout)
            .with_search_options(
                ldap3::SearchOptions::new()
                    .sizelimit(size_limit)
                    .timelimit(seconds),
            )
            .search(&self.config.base_dn, Scope::Subtree, filter, attributes)
            .await
            .map_err(|err| {
                DirectoryError::Unavailable(describe(&self.config, "cannot search", &err))
            })?;
        let ldap3::SearchResult(entries, status) = result;
        if !USABLE_CODES.contains(&status.rc) {
            let why = match status.rc {
                32 => format!("base_dn {:?} does not exist", self.config.base_dn),
                50 => "insufficient access rights".to_string(),
                rc => format!("{} (rc={rc})", status.text.trim()),
            };
            return Err(DirectoryError::Unavailable(format!(
                "{} refused the search: {why}",
                self.config.url
            )));
        }
        if status.rc == 4 {
            tracing::debug!(
                "LDAP search hit the size limit ({size_limit}); ranking the first entries"
            );
        }
        Ok(entries
            .into_iter()
            .filter(|e| !e.is_ref() && !e.is_intermediate())
            // `construct` panics on an entry it cannot parse; a bad entry must not take a lookup down.
            .filter_map(|e| {
                std::panic::catch_unwind(AssertUnwindSafe(|| SearchEntry::construct(e))).ok()
            })
            .collect())
    }

    /// Unbinds (best effort, briefly).
    async fn close(&mut self) {
        let _ = tokio::time::timeout(Duration::from_millis(500), self.ldap.unbind()).await;
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// An operator's explanation of an ldap3 error (it never holds the password).
fn describe(config: &LdapConfig, what: &str, err: &LdapError) -> String {
    let url = &config.url;
    match err {
        LdapError::Timeout { .. } => format!(
            "{what} {url}: no answer within {} ms",
            config.timeout.as_millis()
        ),
        LdapError::Io { source }
            if source
                .get_ref()
                .is_some_and(|inner| inner.is::<rustls::Error>()) =>
        {
            format!("{what} {url}: TLS failed: {source}")
        }
        LdapError::Io { source } => format!("{what} {url}: {source}"),
        LdapError::Rustls { source } => format!("{what} {url}: TLS failed: {source}"),
        LdapError::LdapResult { result } => match result.rc {
            49 => format!(
                "{url} refused the bind as {:?}: invalid credentials",
                config.bind_dn.as_deref().unwrap_or("")
            ),
            rc => format!("{what} {url}: {} (rc={rc})", result.text.trim()),
        },
        other => format!("{what} {url}: {other}"),
    }
}

/// rustls client settings: the system's trust roots plus the PEM certificates of `ca_file`.
fn tls_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, DirectoryError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        let shown = path.display();
        let pem = std::fs::read(path)
            .map_err(|err| DirectoryError::Invalid(format!("ca_file {shown}: {err}")))?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| DirectoryError::Invalid(format!("ca_file {shown}: {err}")))?;
        if certs.is_empty() {
            return Err(DirectoryError::Invalid(format!(
                "ca_file {shown}: no PEM certificate in it"
            )));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|err| DirectoryError::Invalid(format!("ca_file {shown}: {err}")))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| DirectoryError::Invalid(format!("TLS set-up: {err}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn directory() -> LdapDirectory {
        LdapDirectory {
            config: LdapConfig {
                url: "ldap://127.0.0.1:1".into(),
                starttls: false,
                ca_file: None,
                bind_dn: None,
                bind_password: None,
                base_dn: "dc=example,dc=com".into(),
                username_attribute: "uid".into(),
                team_attribute: None,
                timezone_attribute: None,
                timeout: Duration::from_secs(1),
            },
            tls: tls_config(None).unwrap(),
        }
    }

    #[test]
    fn first_filter_escapes_and_asks_both_spellings() {
        let d = directory();
        let f = d.first_filter("José García").unwrap();
        assert!(f.starts_with("(&(objectClass=person)(|(&(|"), "{f}");
        assert!(
            f.contains("(cn=*josé*)") && f.contains("(cn=*jose*)"),
            "{f}"
        );
        assert!(
            f.contains("(sn~=garcia)") && f.contains("(mail=*garcia*)"),
            "{f}"
        );
        assert!(!f.contains("(uid="), "{f}");
        let f = d.first_filter("*)(uid=*").unwrap();
        assert!(f.contains(r"(uid=\2a\29\28uid=\2a)"), "{f}");
        assert!(f.contains("(cn=*uid*)"), "{f}");
        assert_eq!(f.matches('(').count(), f.matches(')').count(), "{f}");
        let f = d.first_filter("jane.doe@example.com").unwrap();
        assert_eq!(
            f,
            "(&(objectClass=person)(|(uid=jane.doe@example.com)(mail=jane.doe@example.com)))"
        );
        let f = d.first_filter(r"a\b").unwrap();
        assert_eq!(d.first_filter("* )("), None);
        assert!(f.contains(r"(uid=a\5cb)"), "{f}");
    }

    #[test]
    fn suggest_filter_asks_escaped_prefixes() {
        let d = directory();
        let f = |q: &str| d.suggest_filter(q, &Prefix::new(q));
        let names = |w: &str| format!("(|(cn={w}*)(displayName={w}*)(givenName={w}*)(sn={w}*))");
        assert_eq!(
            f("jan").unwrap(),
            format!(
                "(&(objectClass=person)(|(uid=jan*)(mail=jan*){}))",
                names("jan")
            )
        );
        assert_eq!(
            f(" doe  j ").unwrap(),
            format!(
                "(&(objectClass=person)(|(&{}{})))",
                names("doe"),
                names("j")
            )
        );
        assert_eq!(
            f("jane.d").unwrap(),
            format!(
                "(&(objectClass=person)(|(uid=jane.d*)(mail=jane.d*)(&{}{})))",
                names("jane"),
                names("d")
            )
        );
        let accented = f("José").unwrap();
        assert!(
            accented.contains("(sn=josé*)") && accented.contains("(sn=jose*)"),
            "{accented}"
        );
        assert_eq!(
            f("*)(uid=*").unwrap(),
            format!(
                r"(&(objectClass=person)(|(uid=\2a\29\28uid=\2a*)(mail=\2a\29\28uid=\2a*){}))",
                names("uid")
            )
        );
        assert_eq!(
            f(r"a\b").unwrap(),
            format!(
                r"(&(objectClass=person)(|(uid=a\5cb*)(mail=a\5cb*)(&{}{})))",
                names("a"),
                names("b")
            )
        );
        assert_eq!(
            f("j*").unwrap(),
            r"(&(objectClass=person)(|(uid=j\2a*)(mail=j\2a*)))",
            "one letter is not asked of names"
        );
        assert_eq!(f("* )("), None);
        assert_eq!(f("j )"), None);
    }

    #[test]
    fn fragments() {
        assert_eq!(
            fragments_filter("jo garcia ana").unwrap(),
            "(&(objectClass=person)\
             (|(cn=*jo*)(displayName=*jo*)(givenName=*jo*)(sn=*jo*))\
             (|(cn=*gar*)(displayName=*gar*)(givenName=*gar*)(sn=*gar*)(cn=*cia*)(displayName=*cia*)(givenName=*cia*)(sn=*cia*))\
             (|(cn=*an*)(displayName=*an*)(givenName=*an*)(sn=*an*)(cn=*na*)(displayName=*na*)(givenName=*na*)(sn=*na*)))"
        );
        assert_eq!(fragments_filter("*)(=*"), None);
        assert_eq!(fragments_filter("a@b"), None);
    }

    #[test]
    fn bad_ca_file_is_invalid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate").unwrap();
        assert!(
            matches!(tls_config(Some(&path)), Err(DirectoryError::Invalid(m)) if m.contains("no PEM"))
        );
        assert!(matches!(
            tls_config(Some(&dir.path().join("missing.pem"))),
            Err(DirectoryError::Invalid(_))
        ));
    }
}
