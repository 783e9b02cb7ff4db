//! One lookup, the same for the CLI, the HTTP API and chat: resolve who is meant (directory), apply the
//! privacy rules, ask the Locator, write the audit log, and shape the answer ([`FindReport`]) as JSON
//! (DESIGN.md §3.2) or as text for people.

use std::sync::Arc;

use serde::Serialize;
use whereis_floormap::{DeviceMap, FloorMaps, MapError, MarkerPosition};
use whereis_location::{
    Device, HttpSource, InvalidUsername, LocationSource, Locator, SourceError, SourceFailure,
    Username,
};

use tokio_util::task::TaskTracker;
use whereis_webex::{NewMessage, RetryPolicy, WebexClient};

use crate::config::Config;
use crate::directory::{Directory, Entry, Resolution};
use crate::privacy::{now, Channel, Privacy, Refusal, Requester};
use crate::store::{AuditEntry, Outcome as AuditOutcome, Store};

/// The lookup service: the Locator over every configured source, the floor maps, the directory, and
/// the privacy rules every channel goes through.
pub struct Finder {
    locator: Locator,
    maps: FloorMaps,
    privacy: Arc<Privacy>,
    directory: Option<Arc<Directory>>,
    /// Posts `notify_target` messages, when `[webex]` is configured.
    webex: Option<WebexClient>,
    /// Notifications still being sent (awaited by [`Finder::flush`]).
    pending: TaskTracker,
}

/// Why a lookup was not run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FindError {
    /// The query is not a usable username.
    #[error(transparent)]
    BadQuery(#[from] InvalidUsername),
    /// The privacy rules refused it.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The name matches several people: pick one.
    #[error("{query:?} matches {} people", candidates.len())]
    Ambiguous {
        /// What was asked.
        query: String,
        /// Who it could be (also saved, so that chat can answer with a number).
        candidates: Vec<Entry>,
    },
    /// Nobody in the directory has that name.
    #[error("nobody called {0:?} is in the directory")]
    NoSuchPerson(String),
    /// The directory could not be asked (only a full name needs it: usernames still work).
    #[error("the directory is unavailable: {0}")]
    DirectoryUnavailable(String),
    /// The requester's email domain is not allowed (refused and audited; nothing looked up).
    #[error("whereis is only available to people at {}", .0.join(", "))]
    NotAllowed(Vec<String>),
}

/// Why whereis cannot tell which username belongs to a requester (for `optout`, `optin` and
/// `who looked for me`, which act on the requester's own username only).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The requester is not identified by an email address.
    #[error("{0:?} is not an email address")]
    NotAnEmail(String),
    /// The requester's domain is not allowed.
    #[error("whereis is only available to people at {}", .0.join(", "))]
    NotAllowed(Vec<String>),
    /// The directory has no entry with the requester's email.
    #[error(
        "your email {0} is not in the directory, so whereis cannot tell which username is yours"
    )]
    NotInDirectory(String),
    /// Neither a directory nor `allowed_domains` vouches for email → username.
    #[error(
        "whereis cannot tell which username is yours: it has neither a directory nor allowed_domains \
         (ask its operator)"
    )]
    Unverifiable,
    /// The directory could not be asked.
    #[error("the directory is unavailable ({0}); please try again later")]
    DirectoryUnavailable(String),
}

/// Why a requester's action on their own record failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SelfServiceError {
    /// Whose username it is could not be established.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The store could not record or read it.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Why the finder could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A source could not be set up.
    #[error(transparent)]
    Source(#[from] SetupError),
    /// The store could not be opened (a clear error: lookups never run without the privacy rules).
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    /// The directory could not be opened.
    #[error("directory: {0}")]
    Directory(#[from] crate::directory::DirectoryError),
    /// The Webex client could not be set up.
    #[error("webex: {0}")]
    Webex(whereis_webex::WebexError),
}

/// How long a numbered list of candidates can be answered with a number.
const CHOICES_TTL_SECONDS: i64 = 600;

/// A source that could not be set up from the configuration.
#[derive(Debug, thiserror::Error)]
#[error("source {name}: {error}")]
pub struct SetupError {
    /// The source's name.
    pub name: String,
    /// Why.
    pub error: SourceError,
}

/// Who was looked for.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Person {
    /// The username the servers were asked about.
    pub username: String,
    /// Full name, when a directory knows it.
    pub display_name: Option<String>,
    /// Email, when a directory knows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// The answer to one query (the `find --json` contract).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FindReport {
    /// What was asked.
    pub query: String,
    /// Who that was taken to mean.
    pub person: Person,
    /// Devices, most recently seen first.
    pub devices: Vec<DeviceReport>,
    /// Sources that failed.
    pub errors: Vec<SourceFailure>,
    /// Why the directory could not be asked, when the query was looked up as a username without it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub directory_error: Option<String>,
}

/// One device of a report, with its map when maps were asked for.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DeviceReport {
    /// The device.
    #[serde(flatten)]
    pub device: Device,
    /// The drawn map: absent when not asked for, `null` when it could not be drawn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub map: Option<Option<MapInfo>>,
    /// Why the map could not be drawn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub map_error: Option<String>,
}

/// Where a drawn map is and where its marker sits (in the PNG's pixels).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MapInfo {
    /// File written by `find --map-dir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// URL served by the HTTP API.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// PNG width.
    pub width: u32,
    /// PNG height.
    pub height: u32,
    /// The marker's centre, `[x, y]` in pixels from the top-left.
    pub marker: [u32; 2],
    /// True when the position lay outside the floor and the marker was put on its edge.
    pub clamped: bool,
}

impl DeviceReport {
    /// Records a map (or why there is none).
    pub fn set_map(&mut self, map: Result<MapInfo, MapError>) {
        match map {
            Ok(info) => {
                self.map = Some(Some(info));
                self.map_error = None;
            }
            Err(err) => {
                self.map = Some(None);
                self.map_error = Some(err.to_string());
            }
        }
    }
}

/// How a lookup ended, for exit codes and HTTP statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// At least one device.
    Found,
    /// No device, and at least one source answered.
    NotFound,
    /// No device, and every source failed: the answer is not trustworthy.
    AllSourcesFailed,
}

impl Finder {
    /// Builds one HTTP source (and connection pool) per configured server.
    pub async fn from_config(config: &Config) -> Result<Finder, StartError> {
        let sources = config
            .sources
            .iter()
            .map(|settings| {
                HttpSource::new(settings.clone())
                    .map(|source| Arc::new(source) as Arc<dyn LocationSource>)
                    .map_err(|error| SetupError {
                        name: settings.name.clone(),
                        error,
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let store = Store::open(config.store_url.expose()).await?;
        let webex = match &config.webex {
            Some(webex) => Some(
                crate::webex_client(webex, &config.network, RetryPolicy::default())
                    .map_err(StartError::Webex)?,
            ),
            None => None,
        };
        let directory = match &config.directory {
            Some(directory) => Some(Arc::new(Directory::open(directory, webex.clone()).await?)),
            None => None,
        };
        Ok(Finder {
            locator: Locator::new(sources, config.lookup.clone()),
            maps: FloorMaps::new(config.maps.clone()),
            privacy: Arc::new(Privacy::new(store, config.privacy.clone())),
            directory,
            webex,
            pending: TaskTracker::new(),
        })
    }

    /// Waits (at most `limit`) for notifications still being sent: a one-shot command calls it
    /// before exiting.
    pub async fn flush(&self, limit: std::time::Duration) {
        self.pending.close();
        if tokio::time::timeout(limit, self.pending.wait())
            .await
            .is_err()
        {
            tracing::warn!("notifications still unsent after {} ms", limit.as_millis());
        }
    }

    /// The directory, when configured.
    pub fn directory(&self) -> Option<&Arc<Directory>> {
        self.directory.as_ref()
    }

    /// The privacy rules (opt-outs, audit, limits) this finder enforces.
    pub fn privacy(&self) -> &Arc<Privacy> {
        &self.privacy
    }

    /// The zoomed crop size for chat, when configured.
    pub fn crop_size(&self) -> Option<u32> {
        self.maps.settings().crop_size
    }

    /// The source a device came from.
    fn source_of(&self, device: &Device) -> Option<&Arc<dyn LocationSource>> {
        self.locator
            .sources()
            .iter()
            .find(|source| source.name() == device.source)
    }

    /// Draws a device on its floor plan.
    pub async fn draw(&self, device: &Device) -> Result<DeviceMap, MapError> {
        let source = self.source_of(device).ok_or(MapError::NoFloorPlan)?;
        self.maps.draw(source.as_ref(), device).await
    }

    /// Where a device's marker would be drawn, and the map's size, without drawing it.
    pub async fn marker(&self, device: &Device) -> Result<(u32, u32, MarkerPosition), MapError> {
        let source = self.source_of(device).ok_or(MapError::NoFloorPlan)?;
        let (image, _, marker) = self.maps.locate_marker(source.as_ref(), device).await?;
        Ok((image.width(), image.height(), marker))
    }

    /// The locator (for probes and tests).
    pub fn locator(&self) -> &Locator {
        &self.locator
    }

    /// Whether `requester` may use whereis at all: `allowed_domains` (empty: everyone). An operator
    /// at the command line without `--requester` is not an email and is trusted (they hold the
    /// configuration and its secrets); every other requester must be an email in an allowed domain.
    pub fn allowed(&self, requester: &Requester) -> bool {
        let domains = &self.privacy.config().allowed_domains;
        if domains.is_empty() {
            return true;
        }
        match requester.id.rsplit_once('@') {
            Some((local, domain)) => !local.is_empty() && domains.iter().any(|d| d == domain),
            None => requester.channel == Channel::Cli && requester.id.starts_with("cli:"),
        }
    }

    /// Looks a person up on every source, under the privacy rules: allowed domain, opt-out, rate
    /// limit, audit, and `notify_target` — the same for every channel.
    pub async fn find(&self, query: &str, requester: &Requester) -> Result<FindReport, FindError> {
        if !self.allowed(requester) {
            self.privacy
                .refuse(requester, query.trim(), AuditOutcome::NotAllowed)
                .await;
            return Err(FindError::NotAllowed(
                self.privacy.config().allowed_domains.clone(),
            ));
        }
        let (person, directory_error) = self.resolve(query, requester).await?;
        let username = Username::parse(&person.username)?;
        self.privacy.check(requester, username.as_str()).await?;
        let lookup = self.locator.locate(&username).await;
        let failed: Vec<&str> = lookup.errors.iter().map(|e| e.source.as_str()).collect();
        let answered: Vec<String> = self
            .locator
            .sources()
            .iter()
            .map(|s| s.name().to_owned())
            .filter(|name| !failed.contains(&name.as_str()))
            .collect();
        let mut found_by: Vec<String> = lookup.devices.iter().map(|d| d.source.clone()).collect();
        found_by.sort();
        found_by.dedup();
        self.privacy
            .record_lookup(
                requester,
                username.as_str(),
                answered,
                found_by,
                u32::try_from(lookup.devices.len()).unwrap_or(u32::MAX),
            )
            .await;
        if !lookup.devices.is_empty() {
            self.notify_target(&person, requester);
        }
        Ok(FindReport {
            query: query.trim().to_owned(),
            person,
            devices: lookup
                .devices
                .into_iter()
                .map(|device| DeviceReport {
                    device,
                    map: None,
                    map_error: None,
                })
                .collect(),
            errors: lookup.errors,
            directory_error,
        })
    }

    /// With `notify_target`, tells the located person (a direct Webex message, sent in the
    /// background) who looked for them; needs `[webex]` and the person's email from the directory.
    fn notify_target(&self, person: &Person, requester: &Requester) {
        if !self.privacy.config().notify_target {
            return;
        }
        let (Some(client), Some(email)) = (&self.webex, &person.email) else {
            return;
        };
        let message = NewMessage {
            to_person_email: Some(email.clone()),
            text: Some(format!(
                "{} located you with whereis just now. Send \"who looked for me\" to see your lookups, or \"optout\" to stop them.",
                requester.id
            )),
            ..NewMessage::default()
        };
        let client = client.clone();
        self.pending.spawn(async move {
            if let Err(err) = client.post_message(&message).await {
                tracing::warn!(error = %err, "could not notify the located person");
            }
        });
    }

    /// The username a requester may act on (`optout`, `optin`, `who looked for me`): the one the
    /// directory maps their whole email to; without a directory, the email's local part only when
    /// its domain is in `allowed_domains`. Never the local part of an arbitrary domain.
    pub async fn own_username(&self, requester: &Requester) -> Result<String, IdentityError> {
        let email = requester.id.as_str();
        let Some((local, _)) = email
            .rsplit_once('@')
            .filter(|(l, d)| !l.is_empty() && !d.is_empty())
        else {
            return Err(IdentityError::NotAnEmail(email.to_owned()));
        };
        if !self.allowed(requester) {
            return Err(IdentityError::NotAllowed(
                self.privacy.config().allowed_domains.clone(),
            ));
        }
        if let Some(directory) = &self.directory {
            return match directory.by_email(email).await {
                Ok(Some(entry)) => Ok(Privacy::key(&entry.username)),
                Ok(None) => Err(IdentityError::NotInDirectory(email.to_owned())),
                Err(err) => Err(IdentityError::DirectoryUnavailable(err.to_string())),
            };
        }
        if self.privacy.config().allowed_domains.is_empty() {
            return Err(IdentityError::Unverifiable);
        }
        Ok(Privacy::key(local))
    }

    /// `optout`: the requester's own username stops being locatable; returns it.
    pub async fn opt_out(&self, requester: &Requester) -> Result<String, SelfServiceError> {
        let username = self.own_username(requester).await?;
        self.privacy.opt_out(&username).await?;
        Ok(username)
    }

    /// `optin`: the requester's own username is locatable again; returns it.
    pub async fn opt_in(&self, requester: &Requester) -> Result<String, SelfServiceError> {
        let username = self.own_username(requester).await?;
        self.privacy.opt_in(&username).await?;
        Ok(username)
    }

    /// `who looked for me`: the requester's own username and its lookups of the last 30 days.
    pub async fn who_looked(
        &self,
        requester: &Requester,
    ) -> Result<(String, Vec<AuditEntry>), SelfServiceError> {
        let username = self.own_username(requester).await?;
        let entries = self.privacy.who_looked_for(&username).await?;
        Ok((username, entries))
    }

    /// Who a query means: a number picks from the last list offered to this requester; with a
    /// directory, names, emails and aliases resolve to usernames; a username always works directly.
    async fn resolve(
        &self,
        query: &str,
        requester: &Requester,
    ) -> Result<(Person, Option<String>), FindError> {
        let mut query = query.trim().to_owned();
        if let Ok(n) = query.parse::<usize>() {
            if (1..=10).contains(&n) {
                let picked = self
                    .privacy
                    .store()
                    .take_choice(&requester.id, n, now(), CHOICES_TTL_SECONDS)
                    .await
                    .map_err(|e| Refusal::StoreUnavailable(e.to_string()))?;
                if let Some(username) = picked {
                    query = username;
                }
            }
        }
        let query = query.as_str();
        let as_username = Username::parse(query);
        let bare = |username: &Username| Person {
            username: username.as_str().to_owned(),
            display_name: None,
            email: None,
        };
        let Some(directory) = &self.directory else {
            return Ok((bare(&as_username?), None));
        };
        if let Err(err @ (InvalidUsername::Empty | InvalidUsername::Invalid(_))) = &as_username {
            return Err(FindError::BadQuery(err.clone()));
        }
        let resolution = match directory.resolve(query).await {
            Ok(resolution) => resolution,
            // A username needs no directory: look it up anyway, and say the name is unknown.
            Err(err) => match &as_username {
                Ok(username) => {
                    tracing::warn!(error = %err, "directory unavailable; looking the query up as a username");
                    return Ok((bare(username), Some(err.to_string())));
                }
                Err(_) => return Err(FindError::DirectoryUnavailable(err.to_string())),
            },
        };
        let entry_person = |entry: Entry| Person {
            username: entry.username,
            display_name: Some(entry.display_name),
            email: entry.email,
        };
        match resolution {
            Resolution::One(entry) => Ok((entry_person(entry), None)),
            Resolution::Several(candidates) => {
                // A username typed exactly wins over name matches.
                if let Some(exact) = candidates
                    .iter()
                    .find(|c| c.username.eq_ignore_ascii_case(query))
                {
                    return Ok((entry_person(exact.clone()), None));
                }
                let usernames: Vec<String> =
                    candidates.iter().map(|c| c.username.clone()).collect();
                self.privacy
                    .store()
                    .save_choices(&requester.id, &usernames, now())
                    .await
                    .map_err(|e| Refusal::StoreUnavailable(e.to_string()))?;
                Err(FindError::Ambiguous {
                    query: query.to_owned(),
                    candidates,
                })
            }
            Resolution::NoMatch => match as_username {
                // Not every username is in the directory: ask the network anyway.
                Ok(username) => Ok((bare(&username), None)),
                Err(_) => Err(FindError::NoSuchPerson(query.to_owned())),
            },
        }
    }

    /// How a report ends, given how many sources there are.
    pub fn outcome(&self, report: &FindReport) -> Outcome {
        if !report.devices.is_empty() {
            Outcome::Found
        } else if report.errors.len() >= self.locator.sources().len() {
            Outcome::AllSourcesFailed
        } else {
            Outcome::NotFound
        }
    }
}

impl FindReport {
    /// The answer as people read it: one line per device, then the failed sources.
    pub fn to_text(&self) -> String {
        let who = &self.person.username;
        let mut lines = Vec::new();
        match self.devices.len() {
            0 => lines.push(format!("{who} was not found on any location server.")),
            1 => {}
            n => lines.push(format!("{who} has {n} devices:")),
        }
        for report in &self.devices {
            let prefix = if self.devices.len() > 1 { "- " } else { "" };
            lines.push(format!("{prefix}{}", describe_device(who, &report.device)));
            match (&report.map, &report.map_error) {
                (
                    Some(Some(MapInfo {
                        path: Some(path),
                        clamped,
                        ..
                    })),
                    _,
                ) => {
                    let note = if *clamped {
                        " (the reported position lies outside the floor; marked at its edge)"
                    } else {
                        ""
                    };
                    lines.push(format!("  map: {path}{note}"));
                }
                (_, Some(error)) => lines.push(format!("  map unavailable: {error}")),
                _ => {}
            }
        }
        for failure in &self.errors {
            lines.push(format!(
                "Note: {} did not answer: {}",
                failure.source, failure.error
            ));
        }
        if let Some(error) = &self.directory_error {
            lines.push(format!(
                "Note: the directory is unavailable ({error}); {who} was looked up as a username."
            ));
        }
        lines.join("\n")
    }
}

/// "jdoe is ASSOCIATED to CORP in Building 5 on Level 3 (HQ), seen 12 s ago — 00:11:…, 10.0.0.7, via cmx-north"
pub fn describe_device(who: &str, device: &Device) -> String {
    let mut text = format!("{who} is {}", device.status);
    if let Some(ssid) = &device.ssid {
        let link = if device.status == "ASSOCIATED" {
            "to"
        } else {
            "on"
        };
        text.push_str(&format!(" {link} {ssid}"));
    }
    match (&device.building, &device.floor) {
        (Some(building), Some(floor)) => text.push_str(&format!(" in {building} on {floor}")),
        (Some(building), None) => text.push_str(&format!(" in {building}")),
        _ if !device.hierarchy.is_empty() => text.push_str(&format!(" at {}", device.hierarchy)),
        _ => text.push_str(" at an unnamed location"),
    }
    if let Some(campus) = &device.campus {
        text.push_str(&format!(" ({campus})"));
    }
    match device.last_seen_seconds {
        Some(age) if device.stale => {
            text.push_str(&format!(", last seen {} ago (stale)", format_age(age)))
        }
        Some(age) => text.push_str(&format!(", seen {} ago", format_age(age))),
        None => text.push_str(", last seen: unknown"),
    }
    let mut details = vec![device.mac.clone()];
    details.extend(device.manufacturer.clone());
    details.extend(device.ip.clone());
    text.push_str(&format!(" — {}, via {}", details.join(", "), device.source));
    text
}

/// "12 s", "5 min", "3 h", "2 days".
pub fn format_age(seconds: u64) -> String {
    match seconds {
        0..=59 => format!("{seconds} s"),
        60..=3599 => format!("{} min", seconds / 60),
        3600..=172_799 => format!("{} h", seconds / 3600),
        _ => format!("{} days", seconds / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use whereis_location::{Api, Unit};

    fn device() -> Device {
        Device {
            source: "cmx-north".into(),
            api: Api::CmxV3,
            mac: "00:11:22:33:44:55".into(),
            identity: Some("CORP\\jdoe".into()),
            ip: Some("10.0.0.7".into()),
            ssid: Some("CORP".into()),
            status: "ASSOCIATED".into(),
            hierarchy: "HQ>Building 5>Level 3".into(),
            campus: Some("HQ".into()),
            building: Some("Building 5".into()),
            floor: Some("Level 3".into()),
            x: 1.0,
            y: 2.0,
            unit: Unit::Feet,
            floor_width: None,
            floor_length: None,
            last_seen_seconds: Some(12),
            confidence: None,
            stale: false,
            manufacturer: None,
            floor_ref_id: None,
            floor_plan: None,
            priority: 0,
        }
    }

    fn report() -> DeviceReport {
        DeviceReport {
            device: device(),
            map: None,
            map_error: None,
        }
    }

    #[test]
    fn one_device_sentence() {
        assert_eq!(
            describe_device("jdoe", &device()),
            "jdoe is ASSOCIATED to CORP in Building 5 on Level 3 (HQ), seen 12 s ago — 00:11:22:33:44:55, 10.0.0.7, via cmx-north"
        );
    }

    #[test]
    fn stale_and_probing() {
        let mut d = device();
        d.status = "PROBING".into();
        d.stale = true;
        d.last_seen_seconds = Some(7200);
        let text = describe_device("jdoe", &d);
        assert!(
            text.starts_with("jdoe is PROBING on CORP in Building 5"),
            "{text}"
        );
        assert!(text.contains("last seen 2 h ago (stale)"), "{text}");
    }

    #[test]
    fn report_text() {
        let report = FindReport {
            query: "jdoe".into(),
            person: Person {
                username: "jdoe".into(),
                display_name: None,
                email: None,
            },
            devices: vec![report(), report()],
            errors: vec![SourceFailure {
                source: "mse".into(),
                error: "timed out after 2000 ms".into(),
            }],
            directory_error: None,
        };
        let text = report.to_text();
        assert!(text.starts_with("jdoe has 2 devices:\n- jdoe is"), "{text}");
        assert!(
            text.ends_with("Note: mse did not answer: timed out after 2000 ms"),
            "{text}"
        );
    }

    #[test]
    fn ages() {
        assert_eq!(format_age(0), "0 s");
        assert_eq!(format_age(59), "59 s");
        assert_eq!(format_age(61), "1 min");
        assert_eq!(format_age(3600), "1 h");
        assert_eq!(format_age(200_000), "2 days");
    }
}
