//! One lookup, the same for the CLI, the HTTP API and chat: resolve who is meant (directory), apply the
//! privacy rules, ask the Locator, write the audit log; the answer is a [`FindReport`]
//! ([`crate::report`]).

use std::sync::Arc;

use whereis_floormap::{DeviceMap, FloorMaps, MapError, MarkerPosition};
use whereis_location::{
    Device, HttpSource, InvalidUsername, LocationSource, Locator, SourceError, Username,
};

use tokio_util::task::TaskTracker;
use whereis_webex::{NewMessage, RetryPolicy, WebexClient};

use crate::config::Config;
use crate::directory::{Directory, Entry, Resolution};
use crate::privacy::{
    now, Answered, Channel, Clock, Precision, Privacy, Refusal, Requester, Target,
};
use crate::report::{coarsen, DeviceReport, FindReport, Outcome, Person};
use crate::store::{AuditEntry, Outcome as AuditOutcome, Store};

/// The lookup service: the Locator over every configured source, the floor maps, the directory, and
/// the privacy rules every channel goes through.
pub struct Finder {
    locator: Locator,
    /// The sources answered from the live table (also in the locator), for their streams.
    live: Vec<Arc<crate::live::LiveSource>>,
    maps: FloorMaps,
    privacy: Arc<Privacy>,
    directory: Option<Arc<Directory>>,
    /// Posts `notify_target` messages, when `[webex]` is configured.
    webex: Option<WebexClient>,
    /// Notifications still being sent (awaited by [`Finder::flush`]).
    pending: TaskTracker,
    /// How web and API requests are identified (`[web]`).
    web: crate::config::WebConfig,
    /// How outbound connections leave the machine (for clients made later, e.g. sign-in).
    network: whereis_net::Network,
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

impl Finder {
    /// Builds one HTTP source (and connection pool) per configured server.
    pub async fn from_config(config: &Config) -> Result<Finder, StartError> {
        Finder::from_config_with_clock(config, Arc::new(crate::privacy::SystemClock)).await
    }

    /// [`Finder::from_config`] with the privacy rules reading `clock` (tests move it).
    pub async fn from_config_with_clock(
        config: &Config,
        clock: Arc<dyn Clock>,
    ) -> Result<Finder, StartError> {
        let mut sources = config
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
        let live = config
            .live_sources
            .iter()
            .map(|live| {
                crate::live::LiveSource::new(live, store.clone())
                    .map(Arc::new)
                    .map_err(|error| SetupError {
                        name: live.name().to_owned(),
                        error,
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Sources are asked, and listed, in file order.
        let order = |name: &str| {
            config
                .sources
                .iter()
                .map(|s| s.name.as_str())
                .chain(config.live_sources.iter().map(|l| l.name()))
                .position(|n| n == name)
        };
        sources.extend(
            live.iter()
                .map(|l| Arc::clone(l) as Arc<dyn LocationSource>),
        );
        sources.sort_by_key(|source| order(source.name()));
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
            live,
            maps: FloorMaps::new(config.maps.clone()),
            privacy: Arc::new(Privacy::with_clock(store, config.privacy.clone(), clock)),
            directory,
            webex,
            pending: TaskTracker::new(),
            web: config.web.clone(),
            network: config.network.clone(),
        })
    }

    /// The sources answered from the live table (Cisco Spaces, Meraki).
    pub fn live_sources(&self) -> &[Arc<crate::live::LiveSource>] {
        &self.live
    }

    /// How outbound connections leave the machine.
    pub fn network(&self) -> &whereis_net::Network {
        &self.network
    }

    /// The `[web]` settings.
    pub fn web(&self) -> &crate::config::WebConfig {
        &self.web
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

    /// Draws a device on its floor plan as `precision` allows: with its marker at `exact`, the
    /// plan alone at `floor`, nothing at `building`.
    pub async fn draw(&self, device: &Device, precision: Precision) -> Result<DeviceMap, MapError> {
        let source = self.source_of(device).ok_or(MapError::NoFloorPlan)?;
        match precision {
            Precision::Exact => self.maps.draw(source.as_ref(), device).await,
            Precision::Floor => self.maps.draw_plan(source.as_ref(), device).await,
            Precision::Building => Err(MapError::NoFloorPlan),
        }
    }

    /// Where a device's marker would be drawn, and the map's size, without drawing it (at `floor`
    /// precision the marker is not drawn, and its position is not given out).
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
        let result = self.find_under_rules(query, requester).await;
        let outcome = match &result {
            Ok(report) => match self.outcome(report) {
                Outcome::Found => "found",
                Outcome::NotFound => "not_found",
                Outcome::AllSourcesFailed => "failed",
            },
            Err(FindError::Refused(Refusal::OptedOut(_))) => "opted_out",
            Err(FindError::Refused(Refusal::NotOptedIn(_))) => "not_opted_in",
            Err(FindError::Refused(Refusal::NotAvailable(_))) => "not_shared",
            Err(FindError::Refused(Refusal::OutsideHours(_))) => "outside_hours",
            Err(FindError::Refused(Refusal::RateLimited(_))) => "rate_limited",
            Err(FindError::Refused(Refusal::StoreUnavailable(_))) => "store_unavailable",
            Err(FindError::NotAllowed(_)) => "not_allowed",
            Err(FindError::Ambiguous { .. }) => "ambiguous",
            Err(FindError::NoSuchPerson(_)) => "no_such_person",
            Err(FindError::BadQuery(_)) => "bad_query",
            Err(FindError::DirectoryUnavailable(_)) => "directory_unavailable",
        };
        metrics::counter!(
            crate::metrics::LOOKUPS,
            "channel" => requester.channel.as_str(),
            "outcome" => outcome
        )
        .increment(1);
        result
    }

    async fn find_under_rules(
        &self,
        query: &str,
        requester: &Requester,
    ) -> Result<FindReport, FindError> {
        if !self.allowed(requester) {
            self.privacy
                .refuse(requester, query.trim(), AuditOutcome::NotAllowed)
                .await;
            return Err(FindError::NotAllowed(
                self.privacy.config().allowed_domains.clone(),
            ));
        }
        let (person, entry, directory_error) = self.resolve(query, requester).await?;
        let username = Username::parse(&person.username)?;
        let target = match &entry {
            Some(entry) => Target::from_entry(entry),
            None => Target::username(username.as_str()),
        };
        let precision = self
            .privacy
            .check(requester, &target, || self.viewer(requester))
            .await?;
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
                Answered {
                    sources: answered,
                    found_by,
                    devices: u32::try_from(lookup.devices.len()).unwrap_or(u32::MAX),
                },
                precision,
            )
            .await;
        if !lookup.devices.is_empty() {
            self.notify_target(&person, requester);
        }
        Ok(FindReport {
            query: query.trim().to_owned(),
            person,
            precision,
            devices: coarsen(lookup.devices, precision)
                .into_iter()
                .map(|device| DeviceReport::new(device, precision))
                .collect(),
            errors: lookup.errors,
            directory_error,
        })
    }

    /// The requester's directory entry (for the team rule), when the directory knows their email;
    /// an unreachable directory counts as not knowing (so the team rule refuses).
    async fn viewer(&self, requester: &Requester) -> Option<Entry> {
        let directory = self.directory.as_ref()?;
        match directory.by_email(&requester.id).await {
            Ok(entry) => entry,
            Err(err) => {
                tracing::warn!(error = %err, "directory unavailable: the team rule refuses");
                None
            }
        }
    }

    /// With `notify_target`, tells the located person (a direct Webex message, sent in the
    /// background) who looked for them; needs `[webex]` and the person's email from the directory.
    pub(crate) fn notify_target(&self, person: &Person, requester: &Requester) {
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

    /// The username `query` means (as [`Finder::find`] resolves it), keyed as the rules key it.
    pub(crate) async fn resolve_username(
        &self,
        query: &str,
        requester: &Requester,
    ) -> Result<String, FindError> {
        let (person, _, _) = self.resolve(query, requester).await?;
        let username = Username::parse(&person.username)?;
        Ok(Privacy::key(username.as_str()))
    }

    /// Who a query means: a number picks from the last list offered to this requester; with a
    /// directory, names, emails and aliases resolve to usernames; a username always works directly.
    async fn resolve(
        &self,
        query: &str,
        requester: &Requester,
    ) -> Result<(Person, Option<Entry>, Option<String>), FindError> {
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
            return Ok((bare(&as_username?), None, None));
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
                    return Ok((bare(username), None, Some(err.to_string())));
                }
                Err(_) => return Err(FindError::DirectoryUnavailable(err.to_string())),
            },
        };
        let entry_person = |entry: Entry| {
            let person = Person {
                username: entry.username.clone(),
                display_name: Some(entry.display_name.clone()),
                email: entry.email.clone(),
            };
            (person, Some(entry), None)
        };
        match resolution {
            Resolution::One(entry) => Ok(entry_person(entry)),
            Resolution::Several(candidates) => {
                // A username typed exactly wins over name matches.
                if let Some(exact) = candidates
                    .iter()
                    .find(|c| c.username.eq_ignore_ascii_case(query))
                {
                    return Ok(entry_person(exact.clone()));
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
                Ok(username) => Ok((bare(&username), None, None)),
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
