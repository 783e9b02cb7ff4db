//! The [`Locator`]: asks every source for every username variant at once, under one deadline, and
//! merges what they found.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::{join_all, BoxFuture, FutureExt, Shared};
use serde::Serialize;
use tokio::time::{timeout_at, Instant};
use unicode_normalization::UnicodeNormalization;

use crate::model::Device;
use crate::source::{LocationSource, SourceAnswer, SourceError};

/// A username as a requester typed it, checked to be usable in a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

/// Why a query is not a username.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidUsername {
    /// Nothing was typed.
    #[error("no username given")]
    Empty,
    /// Spaces: a full name, which needs the directory.
    #[error("{0:?} looks like a full name; ask for a username (full names need a directory)")]
    FullName(String),
    /// Control or invisible characters, or an absurd length.
    #[error("{0:?} is not a valid username")]
    Invalid(String),
}

impl Username {
    /// Longest username accepted.
    pub const MAX_LEN: usize = 256;

    /// Checks a typed username: trimmed, non-empty, one word, printable.
    pub fn parse(text: &str) -> Result<Username, InvalidUsername> {
        let text = text.trim();
        if text.is_empty() {
            return Err(InvalidUsername::Empty);
        }
        let shown: String = text.chars().take(64).collect();
        if text.chars().count() > Self::MAX_LEN
            || text.chars().any(|c| c.is_control() || is_invisible(c))
        {
            // Debug formatting of the error escapes what cannot be shown; letters stay as typed.
            return Err(InvalidUsername::Invalid(shown));
        }
        if text.chars().any(char::is_whitespace) {
            return Err(InvalidUsername::FullName(shown));
        }
        if names_a_dot_segment(text) {
            // `..` would be resolved away in a URL path: `…/clients/..` asks for another resource.
            return Err(InvalidUsername::Invalid(shown));
        }
        Ok(Username(text.to_owned()))
    }

    /// The username.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `text`, or the name after its `DOMAIN\\` prefix, is `.` or `..` once normalised —
/// compatibility forms (`．．`, `‥`) and percent-encoding (`%2e%2e`) included.
pub fn names_a_dot_segment(text: &str) -> bool {
    let decoded = percent_encoding::percent_decode_str(text).decode_utf8_lossy();
    [text, decoded.as_ref()].iter().any(|form| {
        let normalised: String = form.nfkc().collect();
        let bare = normalised.rsplit('\\').next().unwrap_or(&normalised);
        [normalised.as_str(), bare]
            .iter()
            .any(|part| !part.is_empty() && part.len() <= 2 && part.chars().all(|c| c == '.'))
    })
}

/// Unicode format characters (zero-width, bidirectional overrides, BOM, soft hyphen): invisible,
/// they could make one name look like another in replies and audit trails.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
    )
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Counter of lookups in which a source had not answered (for some variant) when the deadline
/// passed, by `source`.
pub const DEADLINE_HITS_METRIC: &str = "whereis_locator_deadline_hits_total";

/// How lookups are run.
#[derive(Debug, Clone)]
pub struct LocatorSettings {
    /// Templates with `{user}`, e.g. `["{user}", "CORP\\{user}"]`.
    pub username_variants: Vec<String>,
    /// The whole lookup's deadline: no answer waits longer for any source.
    pub deadline: Duration,
    /// Devices last heard longer ago are marked stale.
    pub max_age: Duration,
}

/// A source that failed during a lookup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceFailure {
    /// The source's name.
    pub source: String,
    /// What went wrong, for people.
    pub error: String,
}

/// The merged answer of one lookup.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Lookup {
    /// Devices, most recently seen first, one per MAC.
    pub devices: Vec<Device>,
    /// Sources that failed (their devices, if any variant answered, are still in `devices`).
    pub errors: Vec<SourceFailure>,
}

impl Lookup {
    /// True when at least one source answered (so "not found" is trustworthy).
    pub fn any_source_answered(&self, source_count: usize) -> bool {
        self.errors.len() < source_count
    }
}

/// Fans a lookup out over every source and username variant.
pub struct Locator {
    sources: Vec<Arc<dyn LocationSource>>,
    settings: LocatorSettings,
    in_flight: Arc<InFlight>,
}

/// One source's answer for one identity, shared by every lookup that asks while it is on its way.
type SharedAnswer = Shared<BoxFuture<'static, Result<SourceAnswer, SourceError>>>;

/// Requests on their way, by (source index, identity): a lookup that needs the same answer joins
/// the request instead of sending another. Nothing is kept once the answer arrives, so no answer
/// is older than the request it came from.
type InFlight = Mutex<HashMap<(usize, String), SharedAnswer>>;

impl Locator {
    /// A locator over `sources`, in configuration order (the order breaks final ties).
    pub fn new(sources: Vec<Arc<dyn LocationSource>>, settings: LocatorSettings) -> Locator {
        Locator {
            sources,
            settings,
            in_flight: Arc::default(),
        }
    }

    /// Asks source `index` about `identity`, or joins the same question already on its way.
    fn ask(&self, index: usize, identity: &str) -> SharedAnswer {
        let key = (index, identity.to_owned());
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(answer) = in_flight.get(&key) {
            return answer.clone();
        }
        let source = Arc::clone(&self.sources[index]);
        let registry = Arc::downgrade(&self.in_flight);
        let owned_key = key.clone();
        let answer = async move {
            let answer = source.locate(&owned_key.1).await;
            if let Some(registry) = registry.upgrade() {
                registry
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&owned_key);
            }
            answer
        }
        .boxed()
        .shared();
        in_flight.insert(key, answer.clone());
        // Driven to the end even if every lookup waiting for it gives up at its deadline, so the
        // entry is always removed and a later lookup never joins a request left half done.
        tokio::spawn(answer.clone());
        answer
    }

    /// The configured sources.
    pub fn sources(&self) -> &[Arc<dyn LocationSource>] {
        &self.sources
    }

    /// The identities to ask for: each variant with the username filled in, without repeats. A username
    /// typed with a domain (`CORP\jdoe`) is asked as typed only.
    pub fn identities(&self, username: &Username) -> Vec<String> {
        let user = username.as_str();
        if user.contains('\\') || self.settings.username_variants.is_empty() {
            return vec![user.to_owned()];
        }
        let mut identities: Vec<String> = Vec::new();
        for template in &self.settings.username_variants {
            let identity = template.replace("{user}", user);
            if !identities.contains(&identity) {
                identities.push(identity);
            }
        }
        identities
    }

    /// Asks all sources × variants concurrently and merges the answers. Never fails: sources that did
    /// not answer in time or answered badly are listed in `errors`.
    pub async fn locate(&self, username: &Username) -> Lookup {
        let identities = self.identities(username);
        let deadline = Instant::now() + self.settings.deadline;
        let deadline_ms = self.settings.deadline.as_millis();
        let per_source = self.sources.iter().enumerate().map(|(index, source)| {
            let identities = &identities;
            async move {
                let asks = identities.iter().map(|identity| async move {
                    timeout_at(deadline, self.ask(index, identity))
                        .await
                        .unwrap_or(Err(SourceError::Deadline(deadline_ms)))
                });
                (source, join_all(asks).await)
            }
        });
        let answers = join_all(per_source).await;

        let mut devices = Vec::new();
        let mut errors = Vec::new();
        for (source, results) in answers {
            if results
                .iter()
                .any(|result| matches!(result, Err(SourceError::Deadline(_))))
            {
                metrics::counter!(DEADLINE_HITS_METRIC, "source" => source.name().to_owned())
                    .increment(1);
            }
            let mut problems: Vec<String> = Vec::new();
            for result in results {
                match result {
                    Ok(SourceAnswer {
                        devices: found,
                        rejected,
                    }) => {
                        devices.extend(found.into_iter().map(|mut device| {
                            device.source = source.name().to_owned();
                            device.priority = source.priority();
                            device
                        }));
                        problems.extend(rejected.iter().map(ToString::to_string));
                    }
                    Err(err) => problems.push(err.to_string()),
                }
            }
            let mut distinct: Vec<String> = Vec::new();
            for problem in problems {
                if !distinct.contains(&problem) {
                    distinct.push(problem);
                }
            }
            let problems = distinct;
            if !problems.is_empty() {
                tracing::warn!(source = source.name(), errors = ?problems, "source failed during lookup");
                errors.push(SourceFailure {
                    source: source.name().to_owned(),
                    error: problems.join("; "),
                });
            }
        }
        Lookup {
            devices: merge(devices, self.settings.max_age),
            errors,
        }
    }
}

impl Locator {
    /// Asks every source at once for the devices it places in `building` (trimmed, compared
    /// ignoring case), under the lookup deadline, and merges them as [`Locator::locate`] does: one
    /// device per MAC (the fresher fix, then the lower priority, then source order), most recently
    /// seen first, stale ones marked. Devices no server knows an identity for are left out: they
    /// name nobody. Never fails: sources that failed or missed the deadline are in `errors`.
    pub async fn list_building(&self, building: &str) -> Lookup {
        let building = building.trim();
        if building.is_empty() {
            return Lookup::default();
        }
        let deadline = Instant::now() + self.settings.deadline;
        let deadline_ms = self.settings.deadline.as_millis();
        let asks = self.sources.iter().map(|source| async move {
            let result = timeout_at(deadline, source.list_building(building))
                .await
                .unwrap_or(Err(SourceError::Deadline(deadline_ms)));
            (source, result)
        });
        let mut devices = Vec::new();
        let mut errors = Vec::new();
        for (source, result) in join_all(asks).await {
            match result {
                Ok(found) => devices.extend(
                    found
                        .into_iter()
                        .filter(|device| device.identity.is_some())
                        .map(|mut device| {
                            device.source = source.name().to_owned();
                            device.priority = source.priority();
                            device
                        }),
                ),
                Err(err) => {
                    if matches!(err, SourceError::Deadline(_)) {
                        metrics::counter!(DEADLINE_HITS_METRIC, "source" => source.name().to_owned())
                            .increment(1);
                    }
                    tracing::warn!(source = source.name(), error = %err, "source failed to list a building");
                    errors.push(SourceFailure {
                        source: source.name().to_owned(),
                        error: err.to_string(),
                    });
                }
            }
        }
        Lookup {
            devices: merge(devices, self.settings.max_age),
            errors,
        }
    }

    /// The username behind a device's `identity`, undoing the configured username variants: the
    /// variant with the longest fixed part that fits wins (`CORP\jdoe` → `jdoe` with
    /// `CORP\{user}`). `None` when no variant fits or what remains is no username.
    pub fn username_of(&self, identity: &str) -> Option<Username> {
        let identity = identity.trim();
        let mut best: Option<(usize, &str)> = None;
        for template in &self.settings.username_variants {
            let Some((prefix, suffix)) = template.split_once("{user}") else {
                continue;
            };
            let fixed = prefix.len() + suffix.len();
            if identity.len() <= fixed || best.is_some_and(|(longest, _)| longest >= fixed) {
                continue;
            }
            if let Some(user) = identity
                .strip_prefix(prefix)
                .and_then(|rest| rest.strip_suffix(suffix))
            {
                best = Some((fixed, user));
            }
        }
        let user = match best {
            Some((_, user)) => user,
            None if self.settings.username_variants.is_empty() => identity,
            None => return None,
        };
        Username::parse(user).ok()
    }
}

/// One device per MAC (the fresher fix wins, then the lower priority, then the earlier source), ordered
/// most recently seen first; devices heard longer ago than `max_age` are marked stale.
pub fn merge(devices: Vec<Device>, max_age: Duration) -> Vec<Device> {
    let mut best: HashMap<String, Device> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    for device in devices {
        match best.get(&device.mac) {
            Some(current) if !better(&device, current) => {}
            Some(_) => {
                best.insert(device.mac.clone(), device);
            }
            None => {
                order.push(device.mac.clone());
                best.insert(device.mac.clone(), device);
            }
        }
    }
    let mut merged: Vec<Device> = order
        .into_iter()
        .filter_map(|mac| best.remove(&mac))
        .collect();
    let max_age = max_age.as_secs();
    for device in &mut merged {
        device.stale = device.last_seen_seconds.is_none_or(|age| age > max_age);
    }
    // Stable sort: equal ages keep source order.
    merged.sort_by_key(|device| device.last_seen_seconds.unwrap_or(u64::MAX));
    merged
}

/// Whether `candidate` should replace `current` for the same MAC.
fn better(candidate: &Device, current: &Device) -> bool {
    let age = |d: &Device| d.last_seen_seconds.unwrap_or(u64::MAX);
    (age(candidate), candidate.priority) < (age(current), current.priority)
}

#[cfg(test)]
mod tests {
    use futures::future::BoxFuture;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    use super::*;
    use crate::source::Probe;

    /// A source that answers nothing, ever.
    struct Silent;

    impl LocationSource for Silent {
        fn name(&self) -> &str {
            "silent"
        }
        fn priority(&self) -> i32 {
            0
        }
        fn locate<'a>(
            &'a self,
            _identity: &'a str,
        ) -> BoxFuture<'a, Result<SourceAnswer, SourceError>> {
            Box::pin(futures::future::pending())
        }
        fn probe(&self) -> BoxFuture<'_, Result<Probe, SourceError>> {
            Box::pin(futures::future::pending())
        }
    }

    #[test]
    fn a_source_silent_past_the_deadline_counts_one_hit_per_lookup() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let lookup = metrics::with_local_recorder(&recorder, || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .start_paused(true)
                .build()
                .expect("runtime");
            let locator = Locator::new(
                vec![Arc::new(Silent)],
                LocatorSettings {
                    // Two variants that both miss the deadline still count once.
                    username_variants: vec!["{user}".into(), "CORP\\{user}".into()],
                    deadline: Duration::from_secs(3),
                    max_age: Duration::from_secs(600),
                },
            );
            let username = Username::parse("jdoe").expect("username");
            runtime.block_on(locator.locate(&username))
        });
        assert_eq!(lookup.errors.len(), 1, "{lookup:?}");
        let series: Vec<_> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                let key = key.key();
                let labels: Vec<(String, String)> = key
                    .labels()
                    .map(|l| (l.key().to_owned(), l.value().to_owned()))
                    .collect();
                (key.name().to_owned(), labels, value)
            })
            .collect();
        assert_eq!(
            series,
            [(
                DEADLINE_HITS_METRIC.to_owned(),
                vec![("source".to_owned(), "silent".to_owned())],
                DebugValue::Counter(1)
            )]
        );
    }

    fn with_variants(variants: &[&str]) -> Locator {
        Locator::new(
            Vec::new(),
            LocatorSettings {
                username_variants: variants.iter().map(|v| (*v).to_owned()).collect(),
                deadline: Duration::from_secs(1),
                max_age: Duration::from_secs(600),
            },
        )
    }

    #[test]
    fn an_identity_gives_back_the_username_its_variant_was_made_from() {
        let locator = with_variants(&[
            "{user}",
            "CORP\\{user}",
            "corp\\{user}",
            "{user}@corp.example",
        ]);
        let user = |identity: &str| locator.username_of(identity).map(|u| u.as_str().to_owned());
        assert_eq!(user("jdoe").as_deref(), Some("jdoe"));
        assert_eq!(user("CORP\\jdoe").as_deref(), Some("jdoe"));
        assert_eq!(user("corp\\jdoe").as_deref(), Some("jdoe"));
        assert_eq!(user("jdoe@corp.example").as_deref(), Some("jdoe"));
        assert_eq!(user(" CORP\\jdoe ").as_deref(), Some("jdoe"));
        // Another domain fits only `{user}`: kept whole, as the server knows it.
        assert_eq!(user("OTHER\\jdoe").as_deref(), Some("OTHER\\jdoe"));
        assert_eq!(user(""), None);
        assert_eq!(user("two words"), None, "no username");

        let strict = with_variants(&["CORP\\{user}"]);
        assert_eq!(strict.username_of("jdoe"), None, "fits no variant");
        assert_eq!(
            strict
                .username_of("CORP\\..")
                .map(|u| u.as_str().to_owned()),
            None,
            "a dot segment is no username"
        );
        let none = with_variants(&[]);
        assert_eq!(
            none.username_of("CORP\\jdoe")
                .map(|u| u.as_str().to_owned())
                .as_deref(),
            Some("CORP\\jdoe")
        );
    }

    /// A source that counts the questions it gets and answers each once `gate` opens.
    struct Gated {
        asked: std::sync::atomic::AtomicUsize,
        gate: tokio::sync::Semaphore,
    }

    impl LocationSource for Gated {
        fn name(&self) -> &str {
            "gated"
        }
        fn priority(&self) -> i32 {
            0
        }
        fn locate<'a>(
            &'a self,
            _identity: &'a str,
        ) -> BoxFuture<'a, Result<SourceAnswer, SourceError>> {
            self.asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Box::pin(async move {
                let _open = self.gate.acquire().await;
                Ok(SourceAnswer::default())
            })
        }
        fn probe(&self) -> BoxFuture<'_, Result<Probe, SourceError>> {
            Box::pin(futures::future::pending())
        }
    }

    #[tokio::test]
    async fn lookups_asking_the_same_while_it_is_on_its_way_share_one_request_and_later_ones_ask_again(
    ) {
        let source = Arc::new(Gated {
            asked: 0.into(),
            gate: tokio::sync::Semaphore::new(0),
        });
        let locator = Locator::new(
            vec![source.clone() as Arc<dyn LocationSource>],
            LocatorSettings {
                username_variants: vec!["{user}".into(), "CORP\\{user}".into()],
                deadline: Duration::from_secs(30),
                max_age: Duration::from_secs(600),
            },
        );
        let username = Username::parse("jdoe").expect("username");
        let first = locator.locate(&username);
        let second = locator.locate(&username);
        let both = async {
            tokio::task::yield_now().await;
            source.gate.add_permits(100);
        };
        let (first, second, ()) = tokio::join!(first, second, both);
        assert!(first.errors.is_empty() && second.errors.is_empty());
        assert_eq!(
            source.asked.load(std::sync::atomic::Ordering::SeqCst),
            2,
            "one request per identity, shared by both lookups"
        );
        locator.locate(&username).await;
        assert_eq!(
            source.asked.load(std::sync::atomic::Ordering::SeqCst),
            4,
            "an answer is not kept after it arrived"
        );
    }
}
