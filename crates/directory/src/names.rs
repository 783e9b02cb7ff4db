//! Name normalisation and matching, shared by every directory kind: what a requester typed is
//! compared with each person's username, email, aliases and display name, case- and
//! accent-insensitively, and the best tier of matches wins ([`choose`]). What someone is still
//! typing is matched by prefix and ranked for autocompletion ([`suggestions`]).

use std::cmp::Ordering;

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

use super::{Entry, Resolution};

/// Most candidates a [`Resolution::Several`] lists.
pub const MAX_CANDIDATES: usize = 10;
/// Most words of a query used for name matching (the rest are ignored).
const MAX_QUERY_WORDS: usize = 8;
/// Fewest letters and digits a prefix needs before it is compared with names: one letter would
/// list a good part of the directory.
const MIN_NAME_PREFIX_CHARS: usize = 2;
/// Words of a name considered when matching (the assignment keeps a 64-bit set of used words).
const MAX_NAME_WORDS: usize = 64;

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
    /// [`words`], at most [`MAX_QUERY_WORDS`] of them, longest first.
    words: Vec<String>,
}

impl Query {
    /// Prepares `text`.
    pub fn new(text: &str) -> Query {
        let mut words = words(text);
        words.truncate(MAX_QUERY_WORDS);
        // Longer words first: they have fewer places to go, which keeps the matching search short.
        words.sort_by_key(|w| std::cmp::Reverse(w.len()));
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
    /// The words of the display name (when it has any), then of each alias.
    names: Vec<Vec<String>>,
    /// Whether `names[0]` holds the display name's words.
    display_words: bool,
    /// Folded display name, for sorting.
    sort_key: String,
}

impl Person {
    /// Indexes `entry`, also known by `aliases` (nicknames, other spellings of the name).
    pub fn new(entry: Entry, aliases: &[String]) -> Person {
        let mut names = vec![words(&entry.display_name)];
        let display_words = !names[0].is_empty();
        names.extend(aliases.iter().map(|a| words(a)));
        names.retain(|n| !n.is_empty());
        names.dedup();
        Person {
            display_words,
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

/// True when each query word starts a different word of `name` (a small bipartite matching, with
/// backtracking). Query words sorted longest first keep the search short; no allocation.
fn prefixes_distinct_words(query: &[String], name: &[String]) -> bool {
    fn assign(query: &[String], name: &[String], used: u64) -> bool {
        let Some((first, rest)) = query.split_first() else {
            return true;
        };
        name.iter().enumerate().any(|(i, word)| {
            let bit = 1u64 << i;
            used & bit == 0 && word.starts_with(first.as_str()) && assign(rest, name, used | bit)
        })
    }
    let name = &name[..name.len().min(MAX_NAME_WORDS)];
    query.len() <= name.len() && assign(query, name, 0)
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

/// How well a person matches a prefix being typed; lower is better. Unlike [`Rank`], every tier is
/// answered, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SuggestRank {
    /// The text is the person's username or email.
    Exact,
    /// The display name's first word starts with the text's first word, and every word of the text
    /// starts a different word of the display name.
    Leading,
    /// Every word starts a different word of the display name or of an alias elsewhere, or the text
    /// starts the username or the email.
    Other,
}

/// What someone has typed so far, prepared once for comparison with many people.
#[derive(Debug, Clone)]
pub struct Prefix {
    /// Trimmed and lowercased: compared with the start of usernames and emails, literally.
    lower: String,
    /// Whether `lower` is a single token (no whitespace), i.e. may start a username or an email.
    token: bool,
    /// The first [`words`] as typed.
    first_word: String,
    /// [`words`], at most [`MAX_QUERY_WORDS`] of them, longest first; empty when they hold fewer
    /// than [`MIN_NAME_PREFIX_CHARS`] letters and digits in all.
    words: Vec<String>,
}

impl Prefix {
    /// Prepares `text`.
    pub fn new(text: &str) -> Prefix {
        let lower = text.trim().to_lowercase();
        let mut words = words(text);
        words.truncate(MAX_QUERY_WORDS);
        let first_word = words.first().cloned().unwrap_or_default();
        if words.iter().map(|w| w.chars().count()).sum::<usize>() < MIN_NAME_PREFIX_CHARS {
            words.clear();
        }
        words.sort_by_key(|w| std::cmp::Reverse(w.len()));
        Prefix {
            token: !lower.is_empty() && !lower.contains(char::is_whitespace),
            lower,
            first_word,
            words,
        }
    }

    /// Whether the text can be compared with names at all (it has enough letters and digits).
    pub fn has_name_words(&self) -> bool {
        !self.words.is_empty()
    }
}

impl Person {
    /// How this person matches the `prefix` being typed, if at all.
    pub fn suggest_rank(&self, prefix: &Prefix) -> Option<SuggestRank> {
        if prefix.lower.is_empty() {
            return None;
        }
        if self.username == prefix.lower || self.email.as_deref() == Some(prefix.lower.as_str()) {
            return Some(SuggestRank::Exact);
        }
        if prefix.has_name_words() {
            let display = self.names.first().filter(|_| self.display_words);
            if let Some(display) = display {
                if display
                    .first()
                    .is_some_and(|w| w.starts_with(prefix.first_word.as_str()))
                    && prefixes_distinct_words(&prefix.words, display)
                {
                    return Some(SuggestRank::Leading);
                }
            }
            if self
                .names
                .iter()
                .any(|name| prefixes_distinct_words(&prefix.words, name))
            {
                return Some(SuggestRank::Other);
            }
        }
        let starts_identifier = prefix.token
            && (self.username.starts_with(prefix.lower.as_str())
                || self
                    .email
                    .as_deref()
                    .is_some_and(|e| e.starts_with(prefix.lower.as_str())));
        starts_identifier.then_some(SuggestRank::Other)
    }
}

/// Suggestion order: tier, then display name (folded, then as written), then username.
fn suggestion_order(a: &(SuggestRank, &Person), b: &(SuggestRank, &Person)) -> Ordering {
    a.0.cmp(&b.0)
        .then_with(|| a.1.sort_key.cmp(&b.1.sort_key))
        .then_with(|| a.1.entry.display_name.cmp(&b.1.entry.display_name))
        .then_with(|| a.1.username.cmp(&b.1.username))
}

/// The best `limit` people of `people` for `prefix`, best first ([`SuggestRank`], ties by display
/// name). The same username met twice counts once. Keeps only `limit` candidates while it scans,
/// so a large directory costs no allocation beyond the answer.
pub fn suggestions<'a>(
    prefix: &Prefix,
    people: impl IntoIterator<Item = &'a Person>,
    limit: usize,
) -> Vec<Entry> {
    if limit == 0 {
        return Vec::new();
    }
    let mut best: Vec<(SuggestRank, &Person)> = Vec::with_capacity(limit.min(MAX_CANDIDATES) + 1);
    for person in people {
        let Some(rank) = person.suggest_rank(prefix) else {
            continue;
        };
        let candidate = (rank, person);
        if best.len() == limit
            && best
                .last()
                .is_some_and(|worst| suggestion_order(&candidate, worst) != Ordering::Less)
        {
            continue;
        }
        if let Some(i) = best
            .iter()
            .position(|(_, kept)| kept.username == person.username)
        {
            if suggestion_order(&candidate, &best[i]) != Ordering::Less {
                continue;
            }
            best.remove(i);
        }
        let at =
            best.partition_point(|kept| suggestion_order(kept, &candidate) != Ordering::Greater);
        best.insert(at, candidate);
        best.truncate(limit);
    }
    best.into_iter().map(|(_, p)| p.entry.clone()).collect()
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

    fn suggested(people: &[Person], text: &str, limit: usize) -> Vec<String> {
        suggestions(&Prefix::new(text), people.iter(), limit)
            .into_iter()
            .map(|e| e.username)
            .collect()
    }

    #[test]
    fn suggest_tiers() {
        let jane = person("jdoe", "Jane Doe", &["Janie"]);
        let rank = |text: &str| jane.suggest_rank(&Prefix::new(text));
        assert_eq!(rank("JDOE"), Some(SuggestRank::Exact));
        assert_eq!(rank("jdoe@example.com"), Some(SuggestRank::Exact));
        assert_eq!(rank("ja"), Some(SuggestRank::Leading));
        assert_eq!(rank("jane d"), Some(SuggestRank::Leading));
        assert_eq!(rank("j do"), Some(SuggestRank::Leading));
        assert_eq!(rank("doe"), Some(SuggestRank::Other));
        assert_eq!(rank("doe j"), Some(SuggestRank::Other));
        assert_eq!(rank("janie"), Some(SuggestRank::Other), "an alias");
        assert_eq!(rank("jdo"), Some(SuggestRank::Other), "a username prefix");
        assert_eq!(rank("jdoe@ex"), Some(SuggestRank::Other), "an email prefix");
        assert_eq!(rank("jane x"), None);
        assert_eq!(rank("doe doe"), None, "each word needs a word of its own");
        assert_eq!(rank("j*"), None, "one letter is not compared with names");
        assert_eq!(rank("jd*"), None, "punctuation is no wildcard");
        assert_eq!(rank(""), None);
    }

    #[test]
    fn suggestions_are_ranked_capped_and_unique() {
        let people = [
            person("zed", "Zed Jan", &[]),
            person("jroe", "Jane Roe", &[]),
            person("jan", "Yves Jan", &[]),
            person("jdoe", "Jane Doe", &[]),
            person("ajans", "Anna Jansen", &[]),
            person("janek", "Janek Nowak", &[]),
            person("jdoe", "Jane Doe (again)", &[]),
        ];
        assert_eq!(
            suggested(&people, "jan", 10),
            ["jan", "jdoe", "jroe", "janek", "ajans", "zed"]
        );
        assert_eq!(suggested(&people, "jan", 3), ["jan", "jdoe", "jroe"]);
        assert_eq!(suggested(&people, "jan", 0), Vec::<String>::new());
        assert_eq!(suggested(&people, "jan", usize::MAX).len(), 6);
        let many: Vec<Person> = (0..40)
            .rev()
            .map(|i| person(&format!("u{i:02}"), &format!("Sam Person{i:02}"), &[]))
            .collect();
        assert_eq!(
            suggested(&many, "sam", 4),
            ["u00", "u01", "u02", "u03"],
            "ties by display name"
        );
        assert_eq!(suggested(&many, "person3", 25).len(), 10);
    }

    #[test]
    fn distinct_words_needed() {
        let name = words("Anna Annabel Smith");
        assert!(prefixes_distinct_words(&words("ann anna"), &name));
        assert!(!prefixes_distinct_words(&words("ann anna annab"), &name));
        assert!(prefixes_distinct_words(&words("a annab"), &name));
    }
}
