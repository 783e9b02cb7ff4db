//! Name normalisation and matching, shared by every directory kind: what a requester typed is
//! compared with each person's username, email, aliases and display name, case- and
//! accent-insensitively, and the best tier of matches wins.

use std::cmp::Ordering;

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

use super::{Entry, Resolution};

/// Most candidates a [`Resolution::Several`] lists.
pub const MAX_CANDIDATES: usize = 10;
/// Most words of a query used for name matching (the rest are ignored).
const MAX_QUERY_WORDS: usize = 8;

/// Folds `text` for comparison: NFKD, combining marks dropped, a few Latin letters without a
/// decomposition replaced (`ø` → `o`, `ß` → `ss`, …), lowercase, whitespace collapsed to one space.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.nfkd() {
        if is_combining_mark(c) {
            continue;
        }
        if c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        match c {
            'ø' | 'Ø' => out.push('o'),
            'ł' | 'Ł' => out.push('l'),
            'đ' | 'Đ' | 'ð' | 'Ð' => out.push('d'),
            'ħ' | 'Ħ' => out.push('h'),
            'ı' => out.push('i'),
            'ß' | 'ẞ' => out.push_str("ss"),
            'æ' | 'Æ' => out.push_str("ae"),
            'œ' | 'Œ' => out.push_str("oe"),
            'þ' | 'Þ' => out.push_str("th"),
            _ => out.extend(c.to_lowercase()),
        }
    }
    out
}

/// The folded words of `text`: split on anything but letters and digits; apostrophes are dropped
/// rather than split on (`O'Brien` → `obrien`).
pub fn words(text: &str) -> Vec<String> {
    fold(text)
        .split(|c: char| !(c.is_alphanumeric() || is_apostrophe(c)))
        .map(|w| w.chars().filter(|c| !is_apostrophe(*c)).collect::<String>())
        .filter(|w| !w.is_empty())
        .collect()
}

/// Each word of `text` as typed (lowercased, accents kept) with its folded form; for servers that
/// match accents themselves (an LDAP filter) both are worth asking for.
pub fn raw_and_folded_words(text: &str) -> Vec<(String, String)> {
    text.split(|c: char| !(c.is_alphanumeric() || is_apostrophe(c) || is_combining_mark(c)))
        .map(|w| {
            w.chars()
                .filter(|c| !is_apostrophe(*c))
                .collect::<String>()
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .map(|raw| {
            let folded = words(&raw).concat();
            (raw, folded)
        })
        .filter(|(_, folded)| !folded.is_empty())
        .take(MAX_QUERY_WORDS)
        .collect()
}

fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '’' | '`' | 'ʼ')
}

/// How well a person matches a query; lower is better. Only the best tier present is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rank {
    /// The query is the person's username, email or one of their aliases.
    Identifier,
    /// The query's words are exactly the words of the display name or an alias, in any order.
    FullName,
    /// Every query word starts a different word of the display name or an alias.
    Words,
}

/// What a requester typed, prepared once for comparison with many people.
#[derive(Debug, Clone)]
pub struct Query {
    /// Trimmed and lowercased (for usernames and emails).
    lower: String,
    /// [`fold`]ed (for aliases).
    folded: String,
    /// [`words`], at most [`MAX_QUERY_WORDS`] of them.
    words: Vec<String>,
}

impl Query {
    /// Prepares `text`.
    pub fn new(text: &str) -> Query {
        let mut words = words(text);
        words.truncate(MAX_QUERY_WORDS);
        Query {
            lower: text.trim().to_lowercase(),
            folded: fold(text),
            words,
        }
    }
}

/// A person with the folded forms matching needs, computed once.
#[derive(Debug, Clone)]
pub struct Person {
    /// What is answered.
    pub entry: Entry,
    username: String,
    email: Option<String>,
    aliases: Vec<String>,
    /// The words of the display name, then of each alias.
    names: Vec<Vec<String>>,
    /// Folded display name, for sorting.
    sort_key: String,
}

impl Person {
    /// Indexes `entry`, also known by `aliases` (nicknames, other spellings of the name).
    pub fn new(entry: Entry, aliases: &[String]) -> Person {
        let mut names = vec![words(&entry.display_name)];
        names.extend(aliases.iter().map(|a| words(a)));
        names.retain(|n| !n.is_empty());
        names.dedup();
        Person {
            username: entry.username.trim().to_lowercase(),
            email: entry.email.as_deref().map(|e| e.trim().to_lowercase()),
            aliases: aliases
                .iter()
                .map(|a| fold(a))
                .filter(|a| !a.is_empty())
                .collect(),
            sort_key: fold(&entry.display_name),
            names,
            entry,
        }
    }

    /// The lowercased username.
    pub fn username_key(&self) -> &str {
        &self.username
    }

    /// The lowercased email, if any.
    pub fn email_key(&self) -> Option<&str> {
        self.email.as_deref()
    }

    /// How this person matches `query`, if at all.
    pub fn rank(&self, query: &Query) -> Option<Rank> {
        if query.lower.is_empty() {
            return None;
        }
        if self.username == query.lower
            || self.email.as_deref() == Some(query.lower.as_str())
            || self.aliases.contains(&query.folded)
        {
            return Some(Rank::Identifier);
        }
        if query.words.is_empty() {
            return None;
        }
        let mut best: Option<Rank> = None;
        for name in &self.names {
            if same_words(&query.words, name) {
                return Some(Rank::FullName);
            }
            if best.is_none() && prefixes_distinct_words(&query.words, name) {
                best = Some(Rank::Words);
            }
        }
        best
    }
}

/// True when `a` and `b` hold the same words, in any order.
fn same_words(a: &[String], b: &[String]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut a: Vec<&String> = a.iter().collect();
    let mut b: Vec<&String> = b.iter().collect();
    a.sort();
    b.sort();
    a == b
}

/// True when each query word starts a different word of `name` (a small bipartite matching).
fn prefixes_distinct_words(query: &[String], name: &[String]) -> bool {
    fn assign(query: &[String], name: &[String], used: &mut Vec<bool>) -> bool {
        let Some((first, rest)) = query.split_first() else {
            return true;
        };
        for (i, word) in name.iter().enumerate() {
            if !used[i] && word.starts_with(first.as_str()) {
                used[i] = true;
                if assign(rest, name, used) {
                    return true;
                }
                used[i] = false;
            }
        }
        false
    }
    if query.len() > name.len() {
        return false;
    }
    // Longer words first: they have fewer places to go, which keeps the search short.
    let mut sorted: Vec<String> = query.to_vec();
    sorted.sort_by_key(|w| std::cmp::Reverse(w.len()));
    assign(&sorted, name, &mut vec![false; name.len()])
}

/// The answer for `query` among `people`: the best tier of matches; several are sorted by display
/// name (then username) and cut to [`MAX_CANDIDATES`]. The same person met twice counts once.
pub fn choose<'a>(query: &Query, people: impl IntoIterator<Item = &'a Person>) -> Resolution {
    let mut best: Option<Rank> = None;
    let mut found: Vec<&Person> = Vec::new();
    for person in people {
        let Some(rank) = person.rank(query) else {
            continue;
        };
        match best.map(|b| rank.cmp(&b)) {
            Some(Ordering::Greater) => continue,
            Some(Ordering::Equal) => {}
            None | Some(Ordering::Less) => {
                best = Some(rank);
                found.clear();
            }
        }
        found.push(person);
    }
    found.sort_by(|a, b| {
        a.sort_key
            .cmp(&b.sort_key)
            .then_with(|| a.entry.display_name.cmp(&b.entry.display_name))
            .then_with(|| a.username.cmp(&b.username))
    });
    found.dedup_by(|a, b| a.username == b.username);
    match found.len() {
        0 => Resolution::NoMatch,
        1 => Resolution::One(found[0].entry.clone()),
        _ => Resolution::Several(
            found
                .into_iter()
                .take(MAX_CANDIDATES)
                .map(|p| p.entry.clone())
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(username: &str, name: &str, aliases: &[&str]) -> Person {
        Person::new(
            Entry {
                username: username.into(),
                display_name: name.into(),
                email: Some(format!("{username}@example.com")),
            },
            &aliases.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        )
    }

    fn usernames(r: &Resolution) -> Vec<&str> {
        match r {
            Resolution::One(e) => vec![e.username.as_str()],
            Resolution::Several(es) => es.iter().map(|e| e.username.as_str()).collect(),
            Resolution::NoMatch => vec![],
        }
    }

    #[test]
    fn fold_drops_accents_case_and_extra_space() {
        assert_eq!(fold("  José   GARCÍA "), "jose garcia");
        assert_eq!(fold("Søren Łukasz Straße"), "soren lukasz strasse");
        assert_eq!(fold("ﬁnn Ǆ"), "finn dz");
        assert_eq!(
            words("Jean-Pierre O'Brien, Jr."),
            ["jean", "pierre", "obrien", "jr"]
        );
        assert_eq!(words("*)(uid=*"), ["uid"]);
        assert!(words("*)(=*").is_empty());
    }

    #[test]
    fn raw_words_keep_accents() {
        assert_eq!(
            raw_and_folded_words("José  García-López"),
            [
                ("josé".to_string(), "jose".to_string()),
                ("garcía".to_string(), "garcia".to_string()),
                ("lópez".to_string(), "lopez".to_string())
            ]
        );
    }

    #[test]
    fn tiers() {
        let people = [
            person("jdoe", "Jane Doe", &["JD"]),
            person("jroe", "Jane Roe", &[]),
            person("jdoerr", "Jane Doerr", &[]),
            person("jgarcia", "José García", &[]),
        ];
        let r = |q: &str| choose(&Query::new(q), people.iter());
        assert_eq!(usernames(&r("JDOE")), ["jdoe"]);
        assert_eq!(usernames(&r("jdoe@Example.com")), ["jdoe"]);
        assert_eq!(usernames(&r("jd")), ["jdoe"]);
        assert_eq!(
            usernames(&r("jane doe")),
            ["jdoe"],
            "exact name beats a prefix"
        );
        assert_eq!(usernames(&r("doe, jane")), ["jdoe"]);
        assert_eq!(usernames(&r("jane doer")), ["jdoerr"]);
        assert_eq!(usernames(&r("jane")), ["jdoe", "jdoerr", "jroe"]);
        assert_eq!(usernames(&r("ja do")), ["jdoe", "jdoerr"]);
        assert_eq!(usernames(&r("jose garcia")), ["jgarcia"]);
        assert_eq!(usernames(&r("GARCIA")), ["jgarcia"]);
        assert_eq!(usernames(&r("jane jane")), Vec::<&str>::new());
        assert_eq!(usernames(&r("nobody")), Vec::<&str>::new());
        assert_eq!(usernames(&r("*)(uid=*")), Vec::<&str>::new());
    }

    #[test]
    fn several_are_capped_and_sorted() {
        let people: Vec<Person> = (0..15)
            .rev()
            .map(|i| person(&format!("u{i:02}"), &format!("Sam Person{i:02}"), &[]))
            .collect();
        match choose(&Query::new("sam"), people.iter()) {
            Resolution::Several(es) => {
                assert_eq!(es.len(), MAX_CANDIDATES);
                assert_eq!(es[0].username, "u00");
                assert_eq!(es[9].username, "u09");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn distinct_words_needed() {
        let name = words("Anna Annabel Smith");
        assert!(prefixes_distinct_words(&words("ann anna"), &name));
        assert!(!prefixes_distinct_words(&words("ann anna annab"), &name));
        assert!(prefixes_distinct_words(&words("a annab"), &name));
    }
}
