//! The privacy rules, the same on every channel (chat, web, API, CLI, roster, favourites). A lookup
//! is allowed only when every rule allows it, checked in this order:
//! 1. the hourly rate limit (below), which every request that gets this far uses;
//! 2. findability: under `default = "opt-out"` everyone is findable unless they opted out; under
//!    `"opt-in"` nobody is until they opt in. A choice once made is kept, so changing the policy
//!    never exposes anyone who chose otherwise;
//! 3. the audience: a person may block named requesters, or share only with their team and named
//!    people. A requester left out is told only that the person is "not available", never why;
//! 4. working hours: outside the organisation's window (read in the person's own time zone when the
//!    directory has one), or the narrower window the person chose, nobody is located;
//! 5. precision: an allowed lookup is answered exactly, to the floor or to the building — the
//!    organisation's maximum or the person's own choice within it, whichever is coarser.
//!
//! Every lookup, allowed or refused, is written to the audit log with its outcome and, when allowed,
//! the precision it was answered with — never a position. Everything lives in the store, so the
//! rules hold across restarts and across instances sharing PostgreSQL; when the store cannot be
//! reached, lookups are refused: the rules are never skipped. Time comes from a [`Clock`], so tests
//! move it instead of waiting.
//!
//! The hourly limit (`rate_limit_per_hour`, say 30): a requester has an allowance of 30 lookups; every
//! lookup request that gets past the limit uses one — whether the person turns out to be opted out,
//! is found, is not found, or every source fails — and one comes back every 3600 / 30 = 120 s, up to
//! 30. So 30 lookups can be made at once after an idle hour, and then one every two minutes; over
//! any hour, at most 30 plus those that came back during it (fewer than 60). A refused request uses
//! nothing. The allowance is checked and used in one atomic step in the store
//! ([`Store::reserve_lookup`]) before anything else, so concurrent requests, on any number of
//! instances, never get more, and a check costs the same however large the audit log grows.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::config::PrivacyConfig;
use crate::directory::Entry;
use crate::store::{
    AuditEntry, AuditFilter, Outcome, PersonSettings, Reservation, Store, StoreError, StoreStats,
    MAX_FAVOURITES, MAX_NAMED_PEOPLE,
};

/// Where a request came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// Webex.
    Chat,
    /// `whereis-bot find`.
    Cli,
    /// The HTTP API.
    Api,
    /// The web pages.
    Web,
    /// The web pages' building roster.
    WebRoster,
    /// The favourites panel (web) or `favourites` (chat).
    Favourites,
}

impl Channel {
    /// The name in the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Chat => "chat",
            Channel::Cli => "cli",
            Channel::Api => "api",
            Channel::Web => "web",
            Channel::WebRoster => "web-roster",
            Channel::Favourites => "favourites",
        }
    }
}

/// Who asks, and through which channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requester {
    /// Email for chat, or what the operator named (`--requester`), lower case.
    pub id: String,
    /// The channel.
    pub channel: Channel,
}

impl Requester {
    /// A requester identified by `id` (an email for chat).
    pub fn new(id: &str, channel: Channel) -> Requester {
        Requester {
            id: id.trim().to_lowercase(),
            channel,
        }
    }

    /// The same requester through another channel.
    pub fn through(&self, channel: Channel) -> Requester {
        Requester {
            id: self.id.clone(),
            channel,
        }
    }
}

impl fmt::Display for Requester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.id, self.channel.as_str())
    }
}

/// Why a lookup was refused by the rules. The text is what the requester reads: a person's audience
/// refuses as "not available", like nothing else, so that nobody learns they were left out.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    /// The person opted out (nothing else is revealed).
    #[error("{0} has opted out of whereis")]
    OptedOut(String),
    /// People must opt in, and this one has not.
    #[error("{0} has not opted in to whereis")]
    NotOptedIn(String),
    /// The person does not share their location with the requester.
    #[error("{0} is not available")]
    NotAvailable(String),
    /// Outside the person's working hours.
    #[error("{0} is not shown outside working hours")]
    OutsideHours(String),
    /// The requester used up the hourly limit.
    #[error("you have reached the limit of {0} lookups per hour; please try again later")]
    RateLimited(u32),
    /// The rules could not be checked.
    #[error("whereis cannot check its privacy rules right now ({0}); no lookup was made")]
    StoreUnavailable(String),
}

impl Refusal {
    /// The audit outcome of this refusal.
    pub fn outcome(&self) -> Option<Outcome> {
        match self {
            Refusal::OptedOut(_) => Some(Outcome::OptedOut),
            Refusal::NotOptedIn(_) => Some(Outcome::NotOptedIn),
            Refusal::NotAvailable(_) => Some(Outcome::NotShared),
            Refusal::OutsideHours(_) => Some(Outcome::OutsideHours),
            Refusal::RateLimited(_) => Some(Outcome::RateLimited),
            Refusal::StoreUnavailable(_) => None,
        }
    }
}

/// Where the rules get the time from: the system clock, or a clock a test moves.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;

    /// Seconds since the Unix epoch.
    fn now(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        now_ms()
    }
}

/// A clock that stands still until it is set or moved (for tests and rehearsals).
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock showing `ms` (Unix milliseconds).
    pub fn at_ms(ms: i64) -> ManualClock {
        ManualClock(AtomicI64::new(ms))
    }

    /// Shows `ms` from now on.
    pub fn set_ms(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }

    /// Moves the clock by `ms` (back when negative).
    pub fn advance_ms(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    now_ms().div_euclid(1000)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// How long `who looked for me` looks back.
pub const WHO_LOOKED_WINDOW_DAYS: i64 = 30;

/// How precisely a located person is shown, coarsest first (so the stricter of two is the smaller).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// The building only: no floor, no map.
    Building,
    /// Building and floor, and the floor plan without a marker.
    Floor,
    /// Everything: the position on the floor, the device's MAC and address.
    Exact,
}

impl Precision {
    /// Every precision, coarsest first.
    pub const ALL: [Precision; 3] = [Precision::Building, Precision::Floor, Precision::Exact];

    /// `building`, `floor` or `exact`.
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::Building => "building",
            Precision::Floor => "floor",
            Precision::Exact => "exact",
        }
    }

    /// The precision named `text` (any case, surrounding spaces ignored).
    pub fn parse(text: &str) -> Option<Precision> {
        let text = text.trim();
        Precision::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(text))
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether people who made no choice are findable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Consent {
    /// Findable unless they opted out (`default = "opt-out"`).
    #[default]
    OptOut,
    /// Not findable until they opt in (`default = "opt-in"`).
    OptIn,
}

impl Consent {
    /// `opt-out` or `opt-in`.
    pub fn as_str(self) -> &'static str {
        match self {
            Consent::OptOut => "opt-out",
            Consent::OptIn => "opt-in",
        }
    }
}

/// Days of the week, as a set.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Weekdays(u8);

/// The days' names, Monday first.
const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl Weekdays {
    /// Every day.
    pub const ALL: Weekdays = Weekdays(0b111_1111);
    /// Monday to Friday.
    pub const MONDAY_TO_FRIDAY: Weekdays = Weekdays(0b001_1111);

    /// Whether the set holds `day` (0 = Monday … 6 = Sunday).
    pub fn contains(self, day: u8) -> bool {
        1u8.checked_shl(u32::from(day))
            .is_some_and(|bit| self.0 & bit != 0)
    }

    /// The days in both sets.
    pub fn and(self, other: Weekdays) -> Weekdays {
        Weekdays(self.0 & other.0)
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Reads `mon`, `tue`, … and ranges such as `mon-fri` (any case); every word must be a day.
    pub fn parse<'a>(words: impl IntoIterator<Item = &'a str>) -> Result<Weekdays, String> {
        let day = |name: &str| {
            let name = name.trim().to_ascii_lowercase();
            DAY_NAMES
                .iter()
                .position(|d| *d == name)
                .ok_or_else(|| format!("{name:?} is not a day (mon, tue, wed, thu, fri, sat, sun)"))
        };
        let mut days = 0u8;
        for word in words {
            match word.split_once('-') {
                Some((first, last)) => {
                    let (first, last) = (day(first)?, day(last)?);
                    if first > last {
                        return Err(format!("{word:?}: the range runs backwards"));
                    }
                    for d in first..=last {
                        days |= 1 << d;
                    }
                }
                None => days |= 1 << day(word)?,
            }
        }
        if days == 0 {
            return Err("no days given".to_owned());
        }
        Ok(Weekdays(days))
    }
}

impl fmt::Display for Weekdays {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = (0..7u8)
            .filter(|d| self.contains(*d))
            .filter_map(|d| DAY_NAMES.get(usize::from(d)).copied())
            .collect();
        f.write_str(&names.join(","))
    }
}

impl fmt::Debug for Weekdays {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Weekdays({self})")
    }
}

/// A daily window, read in local time: open from `start` up to (not including) `end`, in minutes
/// after midnight, on `days`. `08:00-18:30` is open at 08:00 and at 18:29, closed at 18:30.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hours {
    /// First minute open (0 = midnight).
    pub start: u16,
    /// First minute closed again (1440 = the end of the day).
    pub end: u16,
    /// The days it is open on.
    pub days: Weekdays,
}

impl Hours {
    /// Reads `08:00-18:30`, optionally followed by days (`09:00-17:00 mon,tue` or `mon-thu`);
    /// without days, `default_days`. `24:00` is the end of the day; a window must not run past
    /// midnight.
    pub fn parse(text: &str, default_days: Weekdays) -> Result<Hours, String> {
        let text = text.trim();
        let (times, days) = match text.split_once(char::is_whitespace) {
            Some((times, days)) => (times, Some(days)),
            None => (text, None),
        };
        let (start, end) = times
            .split_once('-')
            .ok_or_else(|| format!("{text:?} is not a window such as 08:00-18:30"))?;
        let (start, end) = (clock_minutes(start)?, clock_minutes(end)?);
        if start >= end {
            return Err(format!(
                "{times:?}: the window must end after it starts, on the same day"
            ));
        }
        let days = match days {
            Some(days) => Weekdays::parse(
                days.split([',', ' '])
                    .map(str::trim)
                    .filter(|word| !word.is_empty()),
            )?,
            None => default_days,
        };
        Ok(Hours { start, end, days })
    }

    /// Whether the window is open on `day` (0 = Monday) at `minute` after midnight.
    pub fn is_open(&self, day: u8, minute: u16) -> bool {
        self.days.contains(day) && self.start <= minute && minute < self.end
    }

    /// The part of this window that lies inside `outer` (a person's hours within the
    /// organisation's): never wider than either.
    pub fn within(&self, outer: &Hours) -> Hours {
        Hours {
            start: self.start.max(outer.start),
            end: self.end.min(outer.end),
            days: self.days.and(outer.days),
        }
    }

    /// Whether the window is never open.
    pub fn is_never(&self) -> bool {
        self.start >= self.end || self.days.is_empty()
    }
}

impl fmt::Display for Hours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hhmm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
        write!(f, "{}-{} {}", hhmm(self.start), hhmm(self.end), self.days)
    }
}

/// `08:30` → 510; `24:00` → 1440.
fn clock_minutes(text: &str) -> Result<u16, String> {
    let text = text.trim();
    let bad = || format!("{text:?} is not a time of day such as 08:30");
    let (hours, minutes) = text.split_once(':').ok_or_else(bad)?;
    // Digits only (`parse` would also take a sign), one or two for the hour, two for the minutes.
    let number = |digits: &str, widths: std::ops::RangeInclusive<usize>| {
        if widths.contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
            digits.parse::<u16>().map_err(|_| bad())
        } else {
            Err(bad())
        }
    };
    let (hours, minutes) = (number(hours, 1..=2)?, number(minutes, 2..=2)?);
    if minutes > 59 || hours > 24 || (hours == 24 && minutes > 0) {
        return Err(bad());
    }
    Ok(hours * 60 + minutes)
}

/// The local day (0 = Monday) and minute after midnight of `now_ms` in `timezone`.
pub fn local_day_minute(now_ms: i64, timezone: &jiff::tz::TimeZone) -> Option<(u8, u16)> {
    let zoned = jiff::Timestamp::from_millisecond(now_ms)
        .ok()?
        .to_zoned_datetime(timezone.clone());
    let day = u8::try_from(zoned.weekday().to_monday_zero_offset()).ok()?;
    let minute = u16::try_from(i32::from(zoned.hour()) * 60 + i32::from(zoned.minute())).ok()?;
    Some((day, minute))
}

/// What the rules need to know about the person looked for (from the directory, when it knows).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    /// The username (as the rules key it: [`Privacy::key`]).
    pub username: String,
    /// Their email.
    pub email: Option<String>,
    /// Their team.
    pub team: Option<String>,
    /// Who they report to.
    pub manager: Option<String>,
    /// Their time zone.
    pub timezone: Option<String>,
}

impl Target {
    /// A target known by username only.
    pub fn username(username: &str) -> Target {
        Target {
            username: Privacy::key(username),
            ..Target::default()
        }
    }

    /// A target as the directory knows them.
    pub fn from_entry(entry: &Entry) -> Target {
        Target {
            username: Privacy::key(&entry.username),
            email: entry.email.as_deref().map(|e| e.trim().to_lowercase()),
            team: entry.team.clone(),
            manager: entry.manager.clone(),
            timezone: entry.timezone.clone(),
        }
    }

    /// Whether `requester` is this person (by whole email).
    pub fn is(&self, requester: &Requester) -> bool {
        self.email.as_deref() == Some(requester.id.as_str())
    }
}

/// Whether `viewer` is on `target`'s team: the same team, the same manager, or `target`'s manager.
pub fn teammates(viewer: &Entry, target: &Target) -> bool {
    let same = |a: Option<&str>, b: Option<&str>| match (a, b) {
        (Some(a), Some(b)) => !a.trim().is_empty() && a.trim().eq_ignore_ascii_case(b.trim()),
        _ => false,
    };
    let viewer_ids = [Some(viewer.username.as_str()), viewer.email.as_deref()];
    same(viewer.team.as_deref(), target.team.as_deref())
        || same(viewer.manager.as_deref(), target.manager.as_deref())
        || viewer_ids
            .into_iter()
            .any(|id| same(id, target.manager.as_deref()))
}

/// What the audience rules say about one requester.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// They may find the person.
    Allowed,
    /// They may not.
    Denied,
    /// Only if they are on the person's team.
    IfTeammate,
}

/// Whom `settings` let find their person: everyone but the blocked, or only the chosen (named
/// people, and the team when shared with it); the person themself always.
pub fn audience(settings: &PersonSettings, requester: &Requester, is_self: bool) -> Audience {
    let named = |list: &[String]| list.contains(&requester.id);
    if is_self {
        Audience::Allowed
    } else if named(&settings.blocked) {
        Audience::Denied
    } else if !settings.restricted || named(&settings.shared_with) {
        Audience::Allowed
    } else if settings.share_team {
        Audience::IfTeammate
    } else {
        Audience::Denied
    }
}

/// Whether `settings`' person may be located at all under `config`: their own choice, else the
/// organisation's default.
pub fn findable(config: &PrivacyConfig, settings: &PersonSettings) -> Result<(), Outcome> {
    match (settings.findable, config.consent) {
        (Some(true), _) | (None, Consent::OptOut) => Ok(()),
        (Some(false), _) => Err(Outcome::OptedOut),
        (None, Consent::OptIn) => Err(Outcome::NotOptedIn),
    }
}

/// The window in which `settings`' person may be located: the organisation's, narrowed by their
/// own; `None` when there is none (always). A stored window that no longer reads is never open
/// (the person asked for less, so less is shown).
pub fn window(config: &PrivacyConfig, settings: &PersonSettings) -> Option<Hours> {
    let org_days = config.working_hours.map_or(Weekdays::ALL, |h| h.days);
    let own = settings.hours.as_deref().map(|text| {
        Hours::parse(text, org_days).unwrap_or(Hours {
            start: 0,
            end: 0,
            days: Weekdays::default(),
        })
    });
    match (config.working_hours, own) {
        (None, None) => None,
        (Some(org), None) => Some(org),
        (None, Some(own)) => Some(own),
        (Some(org), Some(own)) => Some(own.within(&org)),
    }
}

/// Whether `settings`' person may be located at `now_ms`, read in their time zone (else the
/// organisation's).
pub fn open_at(
    config: &PrivacyConfig,
    settings: &PersonSettings,
    timezone: Option<&str>,
    now_ms: i64,
) -> bool {
    let Some(window) = window(config, settings) else {
        return true;
    };
    let zone = timezone
        .and_then(|name| jiff::tz::TimeZone::get(name.trim()).ok())
        .unwrap_or_else(|| config.timezone.clone());
    local_day_minute(now_ms, &zone).is_some_and(|(day, minute)| window.is_open(day, minute))
}

/// The precision `settings`' person is shown with: their choice, never finer than the
/// organisation's maximum (an unreadable stored choice counts as the coarsest).
pub fn precision(config: &PrivacyConfig, settings: &PersonSettings) -> Precision {
    match settings.precision.as_deref() {
        None => config.max_precision,
        Some(text) => Precision::parse(text)
            .unwrap_or(Precision::Building)
            .min(config.max_precision),
    }
}

/// What a person did with one of their settings, for the reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Done.
    Done,
    /// It was so already.
    Unchanged,
    /// The list is full.
    TooMany(usize),
}

/// The rules, over the store.
pub struct Privacy {
    store: Store,
    config: PrivacyConfig,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for Privacy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Privacy")
            .field("store", &self.store)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl Privacy {
    /// The rules of `config`, kept in `store`, on the system clock.
    pub fn new(store: Store, config: PrivacyConfig) -> Privacy {
        Privacy::with_clock(store, config, Arc::new(SystemClock))
    }

    /// The rules of `config`, kept in `store`, on `clock`.
    pub fn with_clock(store: Store, config: PrivacyConfig, clock: Arc<dyn Clock>) -> Privacy {
        Privacy {
            store,
            config,
            clock,
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The configuration.
    pub fn config(&self) -> &PrivacyConfig {
        &self.config
    }

    /// The clock the rules read.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Usernames are compared without case and without a domain prefix (`CORP\jdoe` is `jdoe`).
    pub fn key(username: &str) -> String {
        let bare = username.rsplit('\\').next().unwrap_or(username);
        bare.trim().to_lowercase()
    }

    /// Marks `username` as not locatable (kept whatever the organisation's default).
    pub async fn opt_out(&self, username: &str) -> Result<(), StoreError> {
        let now = self.clock.now();
        self.store
            .set_findable(&Self::key(username), Some(false), now)
            .await
    }

    /// Makes `username` locatable (kept whatever the organisation's default).
    pub async fn opt_in(&self, username: &str) -> Result<(), StoreError> {
        let now = self.clock.now();
        self.store
            .set_findable(&Self::key(username), Some(true), now)
            .await
    }

    /// The choices `username` made.
    pub async fn settings(&self, username: &str) -> Result<PersonSettings, StoreError> {
        self.store.person_settings(&Self::key(username)).await
    }

    /// Changes `username`'s choices with `change` (atomically, see
    /// [`Store::update_person_settings`]).
    pub async fn change_settings<T>(
        &self,
        username: &str,
        change: impl FnMut(&mut PersonSettings) -> T,
    ) -> Result<T, StoreError> {
        let now = self.clock.now();
        self.store
            .update_person_settings(&Self::key(username), now, change)
            .await
    }

    /// Sets `username`'s own precision (`None`: the organisation's maximum); returns the
    /// precision now in force.
    pub async fn set_precision(
        &self,
        username: &str,
        choice: Option<Precision>,
    ) -> Result<Precision, StoreError> {
        let settings = self
            .change_settings(username, |s| {
                s.precision = choice.map(|p| p.as_str().to_owned());
                s.clone()
            })
            .await?;
        Ok(precision(&self.config, &settings))
    }

    /// Sets `username`'s own working hours (`None`: the organisation's); returns the window now in
    /// force (never wider than the organisation's), `None` when there is none.
    pub async fn set_hours(
        &self,
        username: &str,
        hours: Option<Hours>,
    ) -> Result<Option<Hours>, StoreError> {
        let settings = self
            .change_settings(username, |s| {
                s.hours = hours.map(|h| h.to_string());
                s.clone()
            })
            .await?;
        Ok(window(&self.config, &settings))
    }

    /// Everyone (but the blocked) may find `username`: the named people to share with are
    /// forgotten.
    pub async fn share_with_everyone(&self, username: &str) -> Result<Change, StoreError> {
        self.change_settings(username, |s| {
            let before = s.clone();
            s.restricted = false;
            s.share_team = false;
            s.shared_with.clear();
            changed(&before, s)
        })
        .await
    }

    /// Only `username`'s team (and the people they named) may find them.
    pub async fn share_with_team(&self, username: &str) -> Result<Change, StoreError> {
        self.change_settings(username, |s| {
            let before = s.clone();
            s.restricted = true;
            s.share_team = true;
            changed(&before, s)
        })
        .await
    }

    /// `email` may find `username`, also when the audience is restricted (and is no longer
    /// blocked); the audience becomes restricted when it was everyone.
    pub async fn share_with(&self, username: &str, email: &str) -> Result<Change, StoreError> {
        let email = email.trim().to_lowercase();
        self.change_settings(username, |s| {
            let before = s.clone();
            s.blocked.retain(|e| *e != email);
            if !s.shared_with.contains(&email) {
                if s.shared_with.len() + s.blocked.len() >= MAX_NAMED_PEOPLE {
                    *s = before.clone();
                    return Change::TooMany(MAX_NAMED_PEOPLE);
                }
                s.shared_with.push(email.clone());
            }
            s.restricted = true;
            changed(&before, s)
        })
        .await
    }

    /// `email` is no longer among those `username` shares with.
    pub async fn unshare(&self, username: &str, email: &str) -> Result<Change, StoreError> {
        let email = email.trim().to_lowercase();
        self.change_settings(username, |s| {
            let before = s.clone();
            s.shared_with.retain(|e| *e != email);
            changed(&before, s)
        })
        .await
    }

    /// `email` may never find `username`.
    pub async fn block(&self, username: &str, email: &str) -> Result<Change, StoreError> {
        let email = email.trim().to_lowercase();
        self.change_settings(username, |s| {
            let before = s.clone();
            s.shared_with.retain(|e| *e != email);
            if !s.blocked.contains(&email) {
                if s.shared_with.len() + s.blocked.len() >= MAX_NAMED_PEOPLE {
                    *s = before.clone();
                    return Change::TooMany(MAX_NAMED_PEOPLE);
                }
                s.blocked.push(email.clone());
            }
            changed(&before, s)
        })
        .await
    }

    /// `email` is no longer blocked by `username`.
    pub async fn unblock(&self, username: &str, email: &str) -> Result<Change, StoreError> {
        let email = email.trim().to_lowercase();
        self.change_settings(username, |s| {
            let before = s.clone();
            s.blocked.retain(|e| *e != email);
            changed(&before, s)
        })
        .await
    }

    /// The colleagues `requester` starred.
    pub async fn favourites(&self, requester: &Requester) -> Result<Vec<String>, StoreError> {
        self.store.favourites(&requester.id).await
    }

    /// Stars `username` for `requester`.
    pub async fn star(&self, requester: &Requester, username: &str) -> Result<Change, StoreError> {
        let username = Self::key(username);
        let now = self.clock.now();
        self.store
            .update_favourites(&requester.id, now, |list| {
                if list.contains(&username) {
                    Change::Unchanged
                } else if list.len() >= MAX_FAVOURITES {
                    Change::TooMany(MAX_FAVOURITES)
                } else {
                    list.push(username.clone());
                    Change::Done
                }
            })
            .await
    }

    /// Unstars `username` for `requester`.
    pub async fn unstar(
        &self,
        requester: &Requester,
        username: &str,
    ) -> Result<Change, StoreError> {
        let username = Self::key(username);
        let now = self.clock.now();
        self.store
            .update_favourites(&requester.id, now, |list| {
                let before = list.len();
                list.retain(|u| *u != username);
                if list.len() == before {
                    Change::Unchanged
                } else {
                    Change::Done
                }
            })
            .await
    }

    /// Whether `requester` may look `target` up now, and how precisely. Uses one lookup of the
    /// requester's hourly allowance first (so lookups that then fail still count, and so does
    /// asking about someone who is not available), then applies findability, the audience and the
    /// working hours. `viewer` is asked for the requester's directory entry only when the answer
    /// depends on whether they are on the target's team. A refusal is written to the audit log.
    pub async fn check<F, Fut>(
        &self,
        requester: &Requester,
        target: &Target,
        viewer: F,
    ) -> Result<Precision, Refusal>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Option<Entry>>,
    {
        self.reserve(requester, &target.username).await?;
        let settings = self
            .store
            .person_settings(&target.username)
            .await
            .map_err(|e| unavailable(&e))?;
        match self.judge(requester, target, &settings, viewer).await {
            Ok(precision) => Ok(precision),
            Err(outcome) => {
                self.refuse(requester, &target.username, outcome).await;
                let who = target.username.clone();
                Err(match outcome {
                    Outcome::OptedOut => Refusal::OptedOut(who),
                    Outcome::NotOptedIn => Refusal::NotOptedIn(who),
                    Outcome::OutsideHours => Refusal::OutsideHours(who),
                    _ => Refusal::NotAvailable(who),
                })
            }
        }
    }

    /// The rules after the rate limit, over `settings` already read; the refusal's audit outcome.
    pub async fn judge<F, Fut>(
        &self,
        requester: &Requester,
        target: &Target,
        settings: &PersonSettings,
        viewer: F,
    ) -> Result<Precision, Outcome>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Option<Entry>>,
    {
        findable(&self.config, settings)?;
        let allowed = match audience(settings, requester, target.is(requester)) {
            Audience::Allowed => true,
            Audience::Denied => false,
            Audience::IfTeammate => viewer()
                .await
                .is_some_and(|entry| teammates(&entry, target)),
        };
        if !allowed {
            return Err(Outcome::NotShared);
        }
        if !open_at(
            &self.config,
            settings,
            target.timezone.as_deref(),
            self.clock.now_ms(),
        ) {
            return Err(Outcome::OutsideHours);
        }
        Ok(precision(&self.config, settings))
    }

    /// Uses one lookup of the requester's hourly allowance, atomically in the store (so it holds
    /// across instances); a refusal is audited under `target`.
    pub async fn reserve(&self, requester: &Requester, target: &str) -> Result<(), Refusal> {
        let limit = self.config.rate_limit_per_hour;
        let reservation = self
            .store
            .reserve_lookup(&requester.id, limit, self.clock.now_ms())
            .await
            .map_err(|e| unavailable(&e))?;
        if reservation == Reservation::Refused {
            metrics::counter!(
                crate::metrics::RATE_LIMIT_REFUSALS,
                "channel" => requester.channel.as_str()
            )
            .increment(1);
            self.refuse(requester, target, Outcome::RateLimited).await;
            return Err(Refusal::RateLimited(limit));
        }
        Ok(())
    }

    /// Writes a refused request to the audit log (a failure to write is logged: the request is
    /// refused anyway).
    pub async fn refuse(&self, requester: &Requester, target: &str, outcome: Outcome) {
        self.write(AuditEntry {
            at: self.clock.now(),
            requester: requester.id.clone(),
            target: Self::key(target),
            channel: requester.channel.as_str().to_owned(),
            outcome,
            sources: Vec::new(),
            found_by: Vec::new(),
            devices: 0,
            precision: None,
        })
        .await;
    }

    /// Writes a lookup that was run to the audit log, with the precision it was answered with.
    pub async fn record_lookup(
        &self,
        requester: &Requester,
        target: &str,
        answered: Answered,
        precision: Precision,
    ) {
        let outcome = if answered.devices > 0 {
            Outcome::Found
        } else if answered.found_by.is_empty() && answered.sources.is_empty() {
            Outcome::Failed
        } else {
            Outcome::NotFound
        };
        self.write(AuditEntry {
            at: self.clock.now(),
            requester: requester.id.clone(),
            target: Self::key(target),
            channel: requester.channel.as_str().to_owned(),
            outcome,
            sources: answered.sources,
            found_by: answered.found_by,
            devices: answered.devices,
            precision: Some(precision.as_str().to_owned()),
        })
        .await;
    }

    async fn write(&self, entry: AuditEntry) {
        if let Err(err) = self.store.record(&entry).await {
            tracing::error!(error = %err, requester = %entry.requester, target = %entry.target, "cannot write the audit log");
        }
    }

    /// Who looked `username` up in the last 30 days (exactly: a lookup 30 days ago to the second
    /// is still listed), newest first.
    pub async fn who_looked_for(&self, username: &str) -> Result<Vec<AuditEntry>, StoreError> {
        self.store
            .audit(&AuditFilter {
                target: Some(Self::key(username)),
                requester: None,
                since: Some(self.clock.now() - WHO_LOOKED_WINDOW_DAYS * 86_400),
                limit: 50,
            })
            .await
    }

    /// Counters for `stats`.
    pub async fn stats(&self) -> Result<StoreStats, StoreError> {
        self.store.stats(None).await
    }

    /// Deletes audit rows older than the retention (a row exactly `audit_retention_days` old is
    /// kept), old webhook ids, and the rate-limit rows of requesters whose allowance is full again;
    /// returns the audit rows removed.
    pub async fn purge(&self) -> Result<u64, StoreError> {
        let now = self.clock.now();
        let retention = i64::from(self.config.audit_retention_days) * 86_400;
        let purged = self.store.purge_audit_before(now - retention).await?;
        self.store.purge_deliveries_before(now - 86_400).await?;
        self.store.purge_rate_limits(self.clock.now_ms()).await?;
        let login_lifetime = i64::try_from(crate::oidc::LOGIN_LIFETIME.as_secs()).unwrap_or(0);
        self.store.purge_sessions(now, now - login_lifetime).await?;
        Ok(purged)
    }

    /// Applies [`Privacy::purge`] now and every [`PURGE_INTERVAL`] until `stop`.
    pub fn spawn_purge(self: Arc<Self>, stop: CancellationToken) {
        tokio::spawn(async move {
            let mut every = tokio::time::interval(PURGE_INTERVAL);
            loop {
                tokio::select! {
                    _ = every.tick() => {}
                    () = stop.cancelled() => return,
                }
                match self.purge().await {
                    Ok(purged) => tracing::info!(purged, "audit retention applied"),
                    Err(err) => {
                        store_error(&err);
                        tracing::warn!(error = %err, "audit purge failed");
                    }
                }
            }
        });
    }
}

/// What a lookup that ran came to, for its audit row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answered {
    /// The sources that answered.
    pub sources: Vec<String>,
    /// The sources that found a device.
    pub found_by: Vec<String>,
    /// How many devices were found.
    pub devices: u32,
}

/// [`Change::Done`] when `after` differs from `before`, else [`Change::Unchanged`].
fn changed(before: &PersonSettings, after: &PersonSettings) -> Change {
    if before == after {
        Change::Unchanged
    } else {
        Change::Done
    }
}

/// How often audit retention and the other purges run.
pub const PURGE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);

/// The refusal for a store that could not be asked, counted for `/metrics`.
fn unavailable(err: &StoreError) -> Refusal {
    store_error(err);
    Refusal::StoreUnavailable(err.to_string())
}

/// Counts a store failure for `/metrics`.
pub fn store_error(err: &StoreError) {
    let kind = match err {
        StoreError::Unavailable(_) => "unavailable",
        StoreError::Migration(_) => "migration",
        StoreError::Query(_) => "query",
    };
    metrics::counter!(crate::metrics::STORE_ERRORS, "kind" => kind).increment(1);
}

/// One audit row as the `audit` command prints it: time, requester, target, channel, outcome,
/// precision (`-` for a refusal), sources.
pub fn audit_line(entry: &AuditEntry) -> String {
    format!(
        "{}  {:<28} {:<16} {:<5} {:<13} {:<8} {}",
        audit_time(entry.at),
        entry.requester,
        entry.target,
        entry.channel,
        entry.outcome.as_str(),
        entry.precision.as_deref().unwrap_or("-"),
        entry.sources.join(",")
    )
}

/// One audit row as `audit --json` prints it (one JSON document per line).
pub fn audit_json(entry: &AuditEntry) -> serde_json::Value {
    serde_json::json!({
        "at": audit_time(entry.at), "requester": entry.requester, "target": entry.target,
        "channel": entry.channel, "outcome": entry.outcome.as_str(),
        "sources": entry.sources, "found_by": entry.found_by, "devices": entry.devices,
        "precision": entry.precision,
    })
}

fn audit_time(at: i64) -> String {
    chrono::DateTime::from_timestamp(at, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| at.to_string())
}

/// `30m`, `12h`, `7d` back from `now`, or a date `2026-11-01` (UTC midnight); `None` when it is
/// neither.
pub fn parse_since(text: &str, now: i64) -> Option<i64> {
    let text = text.trim();
    let unit = |suffix: char, seconds: i64| -> Option<i64> {
        text.strip_suffix(suffix)?
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(|n| now - n.saturating_mul(seconds))
    };
    unit('m', 60)
        .or_else(|| unit('h', 3600))
        .or_else(|| unit('d', 86_400))
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .and_then(|date| date.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc().timestamp())
        })
}

#[cfg(test)]
mod tests;
