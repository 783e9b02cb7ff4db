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

/// Ends each field of a person's key in a [`SuggestIndex`]; the words of a name are separated by a
/// space. Neither appears inside a folded word, and both are left out of usernames and emails.
const FIELD_END: char = '\n';

impl Person {
    /// Appends this person's suggestion key to `out`: username, email, the display name's words,
    /// then each alias's words, each field ended by [`FIELD_END`].
    fn push_suggest_key(&self, out: &mut String) {
        let identifier = |out: &mut String, text: &str| {
            out.extend(text.chars().filter(|c| !c.is_whitespace()));
            out.push(FIELD_END);
        };
        identifier(out, &self.username);
        identifier(out, self.email.as_deref().unwrap_or_default());
        if !self.display_words {
            out.push(FIELD_END);
        }
        for name in &self.names {
            for (i, word) in name.iter().take(MAX_NAME_WORDS).enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(word);
            }
            out.push(FIELD_END);
        }
    }
}

/// The suggestion keys of many people in one contiguous text, in suggestion order (built once,
/// e.g. when a directory file is read). A prefix is compared with a whole directory in one pass
/// over memory rather than by following each person's many small allocations; beside each key, a
/// small set of the two-byte beginnings of its words and identifiers lets most people be passed
/// over without reading their key; and the order lets the scan skip or stop early once it holds
/// enough good answers.
#[derive(Debug, Default)]
pub struct SuggestIndex {
    /// Every person's key, one after the other.
    text: String,
    /// Where each key ends in `text`.
    ends: Vec<usize>,
    /// For each key, the [`beginning_bit`]s of its words and identifiers.
    beginnings: Vec<u128>,
    /// For each key, its person's position among the people indexed.
    people: Vec<usize>,
}

impl SuggestIndex {
    /// Indexes `people`.
    pub fn new(people: &[Person]) -> SuggestIndex {
        let mut order: Vec<usize> = (0..people.len()).collect();
        order.sort_by(|&a, &b| tie_order(&people[a], &people[b]));
        let mut index = SuggestIndex {
            ends: Vec::with_capacity(order.len()),
            beginnings: Vec::with_capacity(order.len()),
            ..SuggestIndex::default()
        };
        for &position in &order {
            let start = index.text.len();
            people[position].push_suggest_key(&mut index.text);
            let key = index.text.get(start..).unwrap_or_default();
            let beginnings = key
                .split([FIELD_END, ' '])
                .fold(0, |set, token| set | beginning_bit(token));
            index.beginnings.push(beginnings);
            index.ends.push(index.text.len());
        }
        index.text.shrink_to_fit();
        index.people = order;
        index
    }

    /// Each key's person (position) with the key, in suggestion order; the key is `None` when the
    /// beginnings show that `prefix` cannot match.
    fn entries<'a>(&'a self, prefix: &Prefix) -> impl Iterator<Item = (usize, Option<&'a str>)> {
        // A match needs the whole text to start an identifier, or the longest word (the first,
        // as they are sorted) to start a word of a name; either has its beginning in the set.
        let identifier = if prefix.token {
            beginning_bit(&prefix.lower)
        } else {
            0
        };
        let word = prefix.words.first().map_or(0, |w| beginning_bit(w));
        // Text too short to have a beginning (one byte) cannot be screened this way.
        let unscreened =
            (prefix.token && identifier == 0) || (prefix.has_name_words() && word == 0);
        let wanted = identifier | word;
        let mut start = 0;
        self.ends
            .iter()
            .zip(&self.beginnings)
            .zip(&self.people)
            .map(move |((&end, &beginnings), &person)| {
                // The key's text is only touched for people the beginnings let through.
                let key = (unscreened || beginnings & wanted != 0)
                    .then(|| self.text.get(start..end).unwrap_or_default());
                start = end;
                (person, key)
            })
    }
}

#[cfg(test)]
impl SuggestIndex {
    /// The key of the person at `position` among the people indexed.
    fn key_of(&self, position: usize) -> &str {
        let i = self.people.iter().position(|&p| p == position).unwrap();
        let start = i.checked_sub(1).map_or(0, |j| self.ends[j]);
        &self.text[start..self.ends[i]]
    }
}

/// A bit standing for the first two bytes of `token` (no bit for a shorter token).
fn beginning_bit(token: &str) -> u128 {
    match token.as_bytes() {
        [a, b, ..] => 1u128 << ((usize::from(*a) * 31 + usize::from(*b)) % 128),
        _ => 0,
    }
}

/// How the person of `key` matches the `prefix` being typed, if at all, and only if better than
/// `worse_than` (when set): the scan asks for no more than could still make the answer.
fn suggest_rank(
    key: &str,
    prefix: &Prefix,
    worse_than: Option<SuggestRank>,
) -> Option<SuggestRank> {
    if prefix.lower.is_empty() || worse_than == Some(SuggestRank::Exact) {
        return None;
    }
    let mut fields = key.split_terminator(FIELD_END);
    let username = fields.next().unwrap_or_default();
    let email = fields.next().unwrap_or_default();
    if username == prefix.lower || (!email.is_empty() && email == prefix.lower) {
        return Some(SuggestRank::Exact);
    }
    if worse_than == Some(SuggestRank::Leading) {
        return None;
    }
    let display = fields.next().unwrap_or_default();
    if prefix.has_name_words() {
        let leading = display
            .split(' ')
            .next()
            .is_some_and(|w| !w.is_empty() && w.starts_with(prefix.first_word.as_str()));
        if leading && prefixes_distinct_words_of(&prefix.words, display) {
            return Some(SuggestRank::Leading);
        }
    }
    if worse_than == Some(SuggestRank::Other) {
        return None;
    }
    if prefix.has_name_words()
        && (prefixes_distinct_words_of(&prefix.words, display)
            || fields.any(|alias| prefixes_distinct_words_of(&prefix.words, alias)))
    {
        return Some(SuggestRank::Other);
    }
    let starts_identifier = prefix.token
        && (username.starts_with(prefix.lower.as_str())
            || (!email.is_empty() && email.starts_with(prefix.lower.as_str())));
    starts_identifier.then_some(SuggestRank::Other)
}

/// [`prefixes_distinct_words`] for a name held as words separated by spaces.
fn prefixes_distinct_words_of(query: &[String], name: &str) -> bool {
    fn assign(query: &[String], name: &str, used: u64) -> bool {
        let Some((first, rest)) = query.split_first() else {
            return true;
        };
        name.split(' ')
            .take(MAX_NAME_WORDS)
            .enumerate()
            .any(|(i, word)| {
                let bit = 1u64 << i;
                used & bit == 0
                    && word.starts_with(first.as_str())
                    && assign(rest, name, used | bit)
            })
    }
    !name.is_empty() && assign(query, name, 0)
}

/// Order within a tier: display name (folded, then as written), then username.
fn tie_order(a: &Person, b: &Person) -> Ordering {
    a.sort_key
        .cmp(&b.sort_key)
        .then_with(|| a.entry.display_name.cmp(&b.entry.display_name))
        .then_with(|| a.username.cmp(&b.username))
}

/// Suggestion order: tier, then [`tie_order`].
fn suggestion_order(a: &(SuggestRank, &Person), b: &(SuggestRank, &Person)) -> Ordering {
    a.0.cmp(&b.0).then_with(|| tie_order(a.1, b.1))
}

/// The best `limit` of `people` (as indexed in `index`) for `prefix`, best first
/// ([`SuggestRank`], ties by display name). The same username met twice counts once. Keeps only
/// `limit` candidates while it scans, so a large directory costs no allocation beyond the answer;
/// as the index is in display-name order, a full answer only admits better tiers, and one full of
/// exact matches ends the scan.
pub fn suggestions(
    prefix: &Prefix,
    people: &[Person],
    index: &SuggestIndex,
    limit: usize,
) -> Vec<Entry> {
    if limit == 0 {
        return Vec::new();
    }
    let mut best: Vec<(SuggestRank, &Person)> = Vec::with_capacity(limit.min(MAX_CANDIDATES) + 1);
    for (position, key) in index.entries(prefix) {
        let worse_than = if best.len() < limit {
            None
        } else {
            best.last().map(|(rank, _)| *rank)
        };
        if worse_than == Some(SuggestRank::Exact) {
            break;
        }
        let Some(rank) = key.and_then(|key| suggest_rank(key, prefix, worse_than)) else {
            continue;
        };
        let Some(person) = people.get(position) else {
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

/// [`suggestions`] among a few people found for this one query (an LDAP or Webex answer).
pub fn suggest_among(prefix: &Prefix, people: &[Person], limit: usize) -> Vec<Entry> {
    suggestions(prefix, people, &SuggestIndex::new(people), limit)
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
                ..Default::default()
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
        suggest_among(&Prefix::new(text), people, limit)
            .into_iter()
            .map(|e| e.username)
            .collect()
    }

    #[test]
    fn suggest_tiers() {
        let jane = SuggestIndex::new(&[person("jdoe", "Jane Doe", &["Janie"])]);
        let key = jane.key_of(0);
        assert_eq!(key, "jdoe\njdoe@example.com\njane doe\njanie\n");
        let rank = |text: &str| suggest_rank(key, &Prefix::new(text), None);
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
        let nameless = SuggestIndex::new(&[person("x1", "***", &["Bob Builder"])]);
        let key = nameless.key_of(0);
        assert_eq!(key, "x1\nx1@example.com\n\nbob builder\n");
        assert_eq!(
            suggest_rank(key, &Prefix::new("bob"), None),
            Some(SuggestRank::Other)
        );
        assert_eq!(
            suggest_rank(key, &Prefix::new("x1"), None),
            Some(SuggestRank::Exact)
        );
    }

    /// Every person ranked without the screen of beginnings, sorted and cut: what
    /// [`suggestions`] must answer (for people with distinct usernames).
    fn unscreened(people: &[Person], text: &str, limit: usize) -> Vec<String> {
        let prefix = Prefix::new(text);
        let index = SuggestIndex::new(people);
        let mut ranked: Vec<(SuggestRank, &Person)> = people
            .iter()
            .enumerate()
            .filter_map(|(i, p)| suggest_rank(index.key_of(i), &prefix, None).map(|r| (r, p)))
            .collect();
        ranked.sort_by(suggestion_order);
        ranked
            .into_iter()
            .take(limit)
            .map(|(_, p)| p.entry.username.clone())
            .collect()
    }

    #[test]
    fn screening_loses_no_match() {
        let firsts = [
            "Jane",
            "Janek",
            "José",
            "Hélène",
            "Anna",
            "Bo",
            "Zoë",
            "Mary Ann",
            "Jean-Pierre",
            "Ø",
            "Łukasz",
            "李",
            "J",
        ];
        let lasts = [
            "Doe",
            "García",
            "O'Brien",
            "Ångström",
            "Smith",
            "X",
            "Nowak",
        ];
        let mut people = Vec::new();
        for (i, first) in firsts.iter().enumerate() {
            for (j, last) in lasts.iter().enumerate() {
                let username = format!("u{i}.{j}");
                let alias = format!("{first}{j} Alias");
                people.push(person(&username, &format!("{first} {last}"), &[&alias]));
            }
        }
        let queries = [
            "ja",
            "jan",
            "jane d",
            "d",
            "doe",
            "do j",
            "j d",
            "u1",
            "u1.2",
            "u1.2@example.com",
            "u1.2@",
            "jose",
            "łu",
            "lu",
            "li",
            "李",
            "o",
            "ob",
            "obr",
            "o'b",
            "x",
            "x j",
            "mary a",
            "ann",
            "jean p",
            "p",
            "zo",
            "ø",
            "*)(",
            "e",
            "ex",
            "example",
            "a a",
            "an an",
            "alias",
            "jane0",
            "bo x",
        ];
        let mut matched = 0;
        for text in queries {
            for limit in [1, 3, 200] {
                let want = unscreened(&people, text, limit);
                let got: Vec<String> = suggest_among(&Prefix::new(text), &people, limit)
                    .into_iter()
                    .map(|e| e.username)
                    .collect();
                assert_eq!(got, want, "{text:?} (limit {limit})");
                matched += got.len();
            }
        }
        assert!(
            matched > 300,
            "the queries should match many people: {matched}"
        );
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
