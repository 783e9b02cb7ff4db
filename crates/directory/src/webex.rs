//! `kind = "webex"`: the Webex People API, through the bot's client. A person's username is the
//! local part of their first email address, lowercased.
//!
//! Webex searches display names by prefix and may not fold accents, so the candidates of the whole
//! query — and, when they match nobody, of each word on its own — are ranked here with the same
//! matcher as every other kind.

use std::collections::HashSet;

use whereis_webex::{Person as WebexPerson, WebexClient, WebexError};

use super::names::{choose, raw_and_folded_words, suggest_among, Person, Prefix, Query};
use super::{DirectoryError, Entry, Resolution};

/// People asked for per People API call.
const PAGE: u32 = 50;
/// Most extra People API calls when the whole query matched nobody.
const MAX_FALLBACK_SEARCHES: usize = 4;

/// A directory backed by the Webex People API.
pub struct WebexDirectory {
    client: WebexClient,
}

impl WebexDirectory {
    /// Uses `client` (the bot's).
    pub fn new(client: WebexClient) -> WebexDirectory {
        WebexDirectory { client }
    }

    /// See [`Directory::resolve`](super::Directory::resolve).
    pub async fn resolve(&self, query: &str) -> Result<Resolution, DirectoryError> {
        if query.contains('@') {
            return Ok(match self.by_email(query).await? {
                Some(entry) => Resolution::One(entry),
                None => Resolution::NoMatch,
            });
        }
        let prepared = Query::new(query);
        let mut seen = HashSet::new();
        let mut people = Vec::new();
        self.search(query, PAGE, &mut seen, &mut people).await?;
        let answer = choose(&prepared, people.iter());
        if answer != Resolution::NoMatch {
            return Ok(answer);
        }
        for term in fallback_terms(query) {
            self.search(&term, PAGE, &mut seen, &mut people).await?;
        }
        Ok(choose(&prepared, people.iter()))
    }

    /// See [`Directory::suggest`](super::Directory::suggest): one People API call,
    /// `GET /people?displayName=<query>&max=<limit>`, which Webex answers by display-name prefix
    /// (the words in the order of the name), ranked here. The API has no email prefix search: text
    /// with an `@` is looked up as a whole email address (`GET /people?email=`), and finds someone
    /// only once the address is complete. Usernames (the emails' local parts) are not searched.
    pub async fn suggest(&self, query: &str, limit: usize) -> Result<Vec<Entry>, DirectoryError> {
        let prefix = Prefix::new(query);
        if query.contains('@') {
            if !looks_like_complete_email(query) {
                return Ok(Vec::new());
            }
            return Ok(self.by_email(query).await?.into_iter().collect());
        }
        if !prefix.has_name_words() {
            return Ok(Vec::new());
        }
        let max = u32::try_from(limit).unwrap_or(PAGE).min(PAGE);
        let mut people = Vec::new();
        self.search(query, max, &mut HashSet::new(), &mut people)
            .await?;
        Ok(suggest_among(&prefix, &people, limit))
    }

    /// See [`Directory::by_email`](super::Directory::by_email).
    pub async fn by_email(&self, email: &str) -> Result<Option<Entry>, DirectoryError> {
        let person = self
            .client
            .person_by_email(email)
            .await
            .map_err(unavailable)?;
        Ok(person.and_then(|p| entry(&p, Some(email))))
    }

    /// Adds the people whose display name starts with `term` (at most `max`, each once).
    async fn search(
        &self,
        term: &str,
        max: u32,
        seen: &mut HashSet<String>,
        people: &mut Vec<Person>,
    ) -> Result<(), DirectoryError> {
        let found = self
            .client
            .people_by_display_name(term, max)
            .await
            .map_err(unavailable)?;
        for person in found {
            if !seen.insert(person.id.clone()) {
                continue;
            }
            if let Some(entry) = entry(&person, None) {
                let mut aliases = Vec::new();
                if let (Some(first), Some(last)) = (&person.first_name, &person.last_name) {
                    aliases.push(format!("{first} {last}"));
                }
                aliases.extend(person.nick_name.clone());
                people.push(Person::new(entry, &aliases));
            }
        }
        Ok(())
    }
}

/// Whether `text` has the shape of a whole address (`local@host.domain`): anything less is still
/// being typed, and would only earn a refusal from the API.
fn looks_like_complete_email(text: &str) -> bool {
    let text = text.trim();
    if text.contains(char::is_whitespace) {
        return false;
    }
    text.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && !domain.contains('@')
            && domain
                .split_once('.')
                .is_some_and(|(host, rest)| !host.is_empty() && !rest.is_empty())
            && !domain.ends_with('.')
    })
}

/// What to ask Webex when the whole query matched nobody: each word as typed and folded (longest
/// first), then the first half of each word (so that an accent later in a name does not hide it).
fn fallback_terms(query: &str) -> Vec<String> {
    let mut words = raw_and_folded_words(query);
    words.sort_by_key(|(raw, _)| std::cmp::Reverse(raw.chars().count()));
    let mut terms: Vec<String> = Vec::new();
    let mut push = |term: String| {
        if term.chars().count() >= 2 && term != query.trim() && !terms.contains(&term) {
            terms.push(term);
        }
    };
    for (raw, folded) in &words {
        push(raw.clone());
        push(folded.clone());
    }
    for (_, folded) in &words {
        let chars: Vec<char> = folded.chars().collect();
        if chars.len() >= 4 {
            push(chars[..chars.len().div_ceil(2)].iter().collect());
        }
    }
    terms.truncate(MAX_FALLBACK_SEARCHES);
    terms
}

/// A Webex person as an entry: the email (`preferred` when the person has it, else the first), its
/// local part (lowercased) as username, the display name (else first and last name, else the email).
fn entry(person: &WebexPerson, preferred: Option<&str>) -> Option<Entry> {
    let email = preferred
        .and_then(|want| {
            person
                .emails
                .iter()
                .find(|e| e.trim().eq_ignore_ascii_case(want.trim()))
        })
        .or(person.emails.first())?
        .trim()
        .to_string();
    let (local, _) = email.split_once('@')?;
    if local.is_empty() {
        return None;
    }
    let display_name = person
        .display_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .or_else(|| {
            let parts: Vec<&str> = [&person.first_name, &person.last_name]
                .into_iter()
                .flatten()
                .map(|s| s.trim())
                .filter(|s| !s.is_empty())
                .collect();
            (!parts.is_empty()).then(|| parts.join(" "))
        })
        .unwrap_or_else(|| email.clone());
    Some(Entry {
        username: local.to_lowercase(),
        display_name,
        email: Some(email),
        ..Default::default()
    })
}

fn unavailable(err: WebexError) -> DirectoryError {
    DirectoryError::Unavailable(format!("webex People API: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(emails: &[&str], name: Option<&str>) -> WebexPerson {
        WebexPerson {
            id: "p".into(),
            emails: emails.iter().map(|e| e.to_string()).collect(),
            display_name: name.map(str::to_string),
            nick_name: None,
            first_name: Some("Jane".into()),
            last_name: Some("Doe".into()),
            org_id: None,
        }
    }

    #[test]
    fn fallbacks() {
        assert_eq!(
            fallback_terms("jose garcia"),
            ["garcia", "jose", "gar", "jo"]
        );
        assert_eq!(fallback_terms("José"), ["josé", "jose", "jo"]);
        assert_eq!(fallback_terms("garcia"), ["gar"]);
        assert_eq!(fallback_terms("a b c d e f"), Vec::<String>::new());
    }

    #[test]
    fn complete_emails() {
        assert!(looks_like_complete_email("jane.doe@example.com"));
        assert!(looks_like_complete_email(" j@x.io "));
        for partial in [
            "jane@",
            "jane@example",
            "jane@example.",
            "@x.com",
            "a@b@c.d",
            "a b@c.d",
        ] {
            assert!(!looks_like_complete_email(partial), "{partial}");
        }
    }

    #[test]
    fn entries_from_people() {
        let e = entry(&person(&["jdoe@example.com"], Some("Jane Doe")), None).unwrap();
        assert_eq!(e.username, "jdoe");
        assert_eq!(e.display_name, "Jane Doe");
        let e = entry(
            &person(&["a@x.org", "JDoe@Example.com"], None),
            Some("jdoe@example.com"),
        )
        .unwrap();
        assert_eq!(e.username, "jdoe");
        assert_eq!(e.email.as_deref(), Some("JDoe@Example.com"));
        assert_eq!(e.display_name, "Jane Doe");
        assert_eq!(entry(&person(&[], Some("X")), None), None);
        assert_eq!(entry(&person(&["@x"], Some("X")), None), None);
    }
}
