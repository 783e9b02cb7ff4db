//! Store URLs: which backend a URL names, and the URL with its secrets masked for messages.

/// The backend a store URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// `sqlite://PATH`, `sqlite:PATH`.
    SqliteFile,
    /// `sqlite::memory:` (or `sqlite://:memory:`, `?mode=memory`).
    SqliteMemory,
    /// `postgres://…`, `postgresql://…`.
    Postgres,
}

/// The scheme of `url`, or an error message naming what is supported.
pub(crate) fn scheme(url: &str) -> Result<Scheme, String> {
    let trimmed = url.trim();
    let lower = trimmed.to_ascii_lowercase();
    if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
        return Ok(Scheme::Postgres);
    }
    if let Some(rest) = lower.strip_prefix("sqlite:") {
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        if path.is_empty() && query.is_empty() {
            return Err(
                "the SQLite URL names no file (expected sqlite://PATH or sqlite::memory:)".into(),
            );
        }
        let memory = path == ":memory:" || query.split('&').any(|kv| kv == "mode=memory");
        return Ok(if memory {
            Scheme::SqliteMemory
        } else {
            Scheme::SqliteFile
        });
    }
    let name = match trimmed.split_once(':') {
        Some((name, _)) if !name.is_empty() && !name.contains(['/', '\\', ' ']) => {
            format!("unsupported scheme \"{name}:\"")
        }
        _ => "no scheme".to_owned(),
    };
    Err(format!(
        "{name} in the store URL (expected sqlite://PATH, sqlite::memory: or postgres://USER@HOST/DATABASE)"
    ))
}

/// `url` with the password of its user info and any `*password*` query parameter replaced by `***`,
/// and the secrets it held (raw and percent-decoded) so that they can be scrubbed from messages.
pub(crate) fn redact(url: &str) -> (String, Vec<String>) {
    let mut secrets = Vec::new();
    let (head, query) = match url.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (url, None),
    };
    let mut out = String::with_capacity(url.len());
    match head.split_once("://") {
        Some((scheme, rest)) => {
            out.push_str(scheme);
            out.push_str("://");
            // The user info ends at the last '@' (an unencoded '@' in a password is common enough).
            match rest.rfind('@') {
                Some(at) => {
                    let (userinfo, host) = rest.split_at(at);
                    match userinfo.split_once(':') {
                        Some((user, password)) => {
                            secrets.push(password.to_owned());
                            out.push_str(user);
                            out.push_str(":***");
                        }
                        None => out.push_str(userinfo),
                    }
                    out.push_str(host);
                }
                None => out.push_str(rest),
            }
        }
        None => out.push_str(head),
    }
    if let Some(query) = query {
        out.push('?');
        let mut first = true;
        for pair in query.split('&') {
            if !first {
                out.push('&');
            }
            first = false;
            match pair.split_once('=') {
                Some((key, value)) if key.to_ascii_lowercase().contains("password") => {
                    secrets.push(value.to_owned());
                    out.push_str(key);
                    out.push_str("=***");
                }
                _ => out.push_str(pair),
            }
        }
    }
    let decoded: Vec<String> = secrets.iter().map(|s| percent_decode(s)).collect();
    secrets.extend(decoded);
    // Very short "secrets" would mangle every message without protecting anything, and one that the
    // masked URL shows anyway (a password equal to the user name) is no secret in a message.
    secrets.retain(|s| s.chars().count() >= 3 && !out.contains(s.as_str()));
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets.dedup();
    (out, secrets)
}

/// Replaces every occurrence of each secret in `message` by `***`.
pub(crate) fn scrub(message: String, secrets: &[String]) -> String {
    secrets.iter().fold(message, |message, secret| {
        if message.contains(secret.as_str()) {
            message.replace(secret.as_str(), "***")
        } else {
            message
        }
    })
}

/// `%XX` decoding (and `+` left alone); invalid escapes are kept as they are.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(byte) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes() {
        assert_eq!(scheme("sqlite://whereis.db"), Ok(Scheme::SqliteFile));
        assert_eq!(
            scheme("sqlite:///var/lib/whereis/w.db"),
            Ok(Scheme::SqliteFile)
        );
        assert_eq!(scheme("sqlite:whereis.db"), Ok(Scheme::SqliteFile));
        assert_eq!(scheme("sqlite::memory:"), Ok(Scheme::SqliteMemory));
        assert_eq!(scheme("sqlite://:memory:"), Ok(Scheme::SqliteMemory));
        assert_eq!(scheme("sqlite://x?mode=memory"), Ok(Scheme::SqliteMemory));
        assert_eq!(scheme("postgres://u@h/db"), Ok(Scheme::Postgres));
        assert_eq!(scheme("PostgreSQL://u@h/db"), Ok(Scheme::Postgres));
        let err = scheme("mysql://u:pw@h/db").unwrap_err();
        assert!(err.contains("\"mysql:\""), "{err}");
        assert!(!err.contains("pw"), "{err}");
        assert!(scheme("whereis.db").unwrap_err().contains("no scheme"));
        assert!(scheme("sqlite://").is_err());
    }

    #[test]
    fn passwords_are_masked() {
        let (text, secrets) = redact("postgres://whereis:s3cr%40t@db.example.com:5432/whereis");
        assert_eq!(text, "postgres://whereis:***@db.example.com:5432/whereis");
        assert!(secrets.contains(&"s3cr%40t".to_owned()));
        assert!(secrets.contains(&"s3cr@t".to_owned()));

        let (text, _) = redact("postgres://u:p@ss@h/db?sslmode=require&password=hunter22");
        assert_eq!(text, "postgres://u:***@h/db?sslmode=require&password=***");

        let (text, secrets) = redact("postgres://u@h/db");
        assert_eq!(text, "postgres://u@h/db");
        assert!(secrets.is_empty());

        assert_eq!(redact("sqlite::memory:").0, "sqlite::memory:");
        assert_eq!(redact("sqlite:///a/b.db").0, "sqlite:///a/b.db");
    }

    #[test]
    fn scrubbing() {
        let (_, secrets) = redact("postgres://u:hunter22@h/db");
        assert_eq!(
            scrub("bad password hunter22 for u".into(), &secrets),
            "bad password *** for u"
        );
        assert_eq!(percent_decode("a%2Fb%zz%"), "a/b%zz%");
        // A password that the masked URL shows anyway (as the user name) is not scrubbed.
        let (text, secrets) = redact("postgres://whereis:whereis@h/whereis_test");
        assert_eq!(text, "postgres://whereis:***@h/whereis_test");
        assert!(secrets.is_empty());
    }
}
