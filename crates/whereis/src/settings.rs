//! What a person can do about themselves, the same from chat and from the web: opt in or out,
//! choose their precision, narrow their working hours, choose who may find them, and star
//! colleagues. Every action acts on the requester's own username ([`Finder::own_username`]), so
//! nobody can change someone else's settings; favourites belong to the requester's email.

use futures::StreamExt;

use crate::lookup::{FindError, Finder, SelfServiceError};
use crate::privacy::{
    precision, window, Change, Channel, Consent, Hours, Precision, Refusal, Requester,
};
use crate::store::PersonSettings;

/// A person's settings as they read them: what they chose and what is in force.
#[derive(Debug, Clone, PartialEq)]
pub struct MySettings {
    /// Their username.
    pub username: String,
    /// What they chose.
    pub chosen: PersonSettings,
    /// Whether they can be located at all (their choice, else the organisation's default).
    pub findable: bool,
    /// The organisation's default.
    pub consent: Consent,
    /// The precision in force.
    pub precision: Precision,
    /// The organisation's maximum.
    pub max_precision: Precision,
    /// The window in force; `None`: always.
    pub hours: Option<Hours>,
    /// The organisation's window; `None`: always.
    pub org_hours: Option<Hours>,
    /// The time zone the window is read in when the directory does not know theirs.
    pub timezone: String,
}

impl MySettings {
    /// "Everyone", "your team and jane@…", "nobody but you" — who may find the person, and whom
    /// they blocked.
    pub fn audience_text(&self) -> String {
        let s = &self.chosen;
        let mut text = if !s.restricted {
            "everyone at work".to_owned()
        } else {
            let mut who = Vec::new();
            if s.share_team {
                who.push("your team".to_owned());
            }
            who.extend(s.shared_with.iter().cloned());
            if who.is_empty() {
                "nobody but you".to_owned()
            } else {
                who.join(", ")
            }
        };
        if !s.blocked.is_empty() {
            text.push_str(&format!(" (never: {})", s.blocked.join(", ")));
        }
        text
    }

    /// Every setting, one line each, for chat and the command line.
    pub fn to_text(&self) -> String {
        let findable = match (self.chosen.findable, self.findable) {
            (Some(true), _) => "yes (you opted in)".to_owned(),
            (Some(false), _) => "no (you opted out)".to_owned(),
            (None, true) => "yes (the default here; send \"optout\" to stop it)".to_owned(),
            (None, false) => {
                "no (the default here is opt-in; send \"optin\" to allow it)".to_owned()
            }
        };
        let hours = match self.hours {
            None => "any time".to_owned(),
            Some(h) if h.is_never() => {
                "never (your hours and the organisation's do not overlap)".to_owned()
            }
            Some(h) => format!("{h} ({})", self.timezone),
        };
        format!(
            "Your whereis settings ({}):\n- findable: {findable}\n- precision: {} (the organisation allows up to {})\n- hours: {hours}\n- who can find you: {}",
            self.username,
            self.precision,
            self.max_precision,
            self.audience_text()
        )
    }
}

/// A change to who may find a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShareChange {
    /// Everyone but the blocked.
    Everyone,
    /// Only the team (and the named).
    Team,
    /// Also this email.
    With(String),
    /// No longer this email.
    Unshare(String),
    /// Never this email.
    Block(String),
    /// No longer blocked.
    Unblock(String),
}

/// Whether `text` looks like an email address (one `@`, something either side, no spaces), as
/// `share with` and `block` need.
pub fn is_email(text: &str) -> bool {
    let text = text.trim();
    match text.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.contains('@')
                && text.len() <= 254
                && !text.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    }
}

/// One starred colleague who is in, as the favourites panel shows them.
#[derive(Debug, Clone, PartialEq)]
pub struct Favourite {
    /// Their username.
    pub username: String,
    /// Their name, when the directory knows it.
    pub display_name: Option<String>,
    /// Where they are, at the precision they allow: "Building 5, Level 3", one per place.
    pub places: Vec<String>,
    /// That precision.
    pub precision: Precision,
}

/// How many starred colleagues the favourites panel looks up at once.
const FAVOURITES_AT_ONCE: usize = 6;

/// The favourites panel: who of the starred colleagues is in.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Favourites {
    /// How many colleagues are starred.
    pub starred: Vec<String>,
    /// Those who are in and allow the requester to see it, in the order starred.
    pub present: Vec<Favourite>,
    /// The hourly limit ran out before every starred colleague was looked up.
    pub rate_limited: bool,
}

impl Finder {
    /// The requester's own settings.
    pub async fn my_settings(&self, requester: &Requester) -> Result<MySettings, SelfServiceError> {
        let username = self.own_username(requester).await?;
        let chosen = self.privacy().settings(&username).await?;
        Ok(self.settings_view(username, chosen))
    }

    fn settings_view(&self, username: String, chosen: PersonSettings) -> MySettings {
        let config = self.privacy().config();
        MySettings {
            findable: crate::privacy::findable(config, &chosen).is_ok(),
            consent: config.consent,
            precision: precision(config, &chosen),
            max_precision: config.max_precision,
            hours: window(config, &chosen),
            org_hours: config.working_hours,
            timezone: config.timezone_name.clone(),
            username,
            chosen,
        }
    }

    /// Sets the requester's own precision (`None`: the organisation's maximum).
    pub async fn set_my_precision(
        &self,
        requester: &Requester,
        choice: Option<Precision>,
    ) -> Result<MySettings, SelfServiceError> {
        let username = self.own_username(requester).await?;
        self.privacy().set_precision(&username, choice).await?;
        self.my_settings(requester).await
    }

    /// Sets the requester's own working hours (`None`: the organisation's).
    pub async fn set_my_hours(
        &self,
        requester: &Requester,
        hours: Option<Hours>,
    ) -> Result<MySettings, SelfServiceError> {
        let username = self.own_username(requester).await?;
        self.privacy().set_hours(&username, hours).await?;
        self.my_settings(requester).await
    }

    /// Changes who may find the requester.
    pub async fn share(
        &self,
        requester: &Requester,
        change: &ShareChange,
    ) -> Result<(Change, MySettings), SelfServiceError> {
        let username = self.own_username(requester).await?;
        let privacy = self.privacy();
        let done = match change {
            ShareChange::Everyone => privacy.share_with_everyone(&username).await?,
            ShareChange::Team => privacy.share_with_team(&username).await?,
            ShareChange::With(email) => privacy.share_with(&username, email).await?,
            ShareChange::Unshare(email) => privacy.unshare(&username, email).await?,
            ShareChange::Block(email) => privacy.block(&username, email).await?,
            ShareChange::Unblock(email) => privacy.unblock(&username, email).await?,
        };
        Ok((done, self.my_settings(requester).await?))
    }

    /// Stars the colleague `query` means (a username, or a name the directory resolves) for the
    /// requester; returns their username. Only people the directory or the network know by
    /// username can be starred: an ambiguous name offers the candidates, as a lookup does.
    pub async fn star(
        &self,
        requester: &Requester,
        query: &str,
    ) -> Result<(String, Change), FindError> {
        if !self.allowed(requester) {
            return Err(FindError::NotAllowed(
                self.privacy().config().allowed_domains.clone(),
            ));
        }
        let username = self.resolve_username(query, requester).await?;
        let change = self
            .privacy()
            .star(requester, &username)
            .await
            .map_err(|e| Refusal::StoreUnavailable(e.to_string()))?;
        Ok((username, change))
    }

    /// Unstars `query` (a username, or a name the directory resolves).
    pub async fn unstar(
        &self,
        requester: &Requester,
        query: &str,
    ) -> Result<(String, Change), FindError> {
        let favourites = self
            .privacy()
            .favourites(requester)
            .await
            .map_err(|e| Refusal::StoreUnavailable(e.to_string()))?;
        let typed = crate::privacy::Privacy::key(query);
        // A starred username is taken as typed: no directory needed to remove it.
        let username = if favourites.contains(&typed) {
            typed
        } else {
            self.resolve_username(query, requester).await?
        };
        let change = self
            .privacy()
            .unstar(requester, &username)
            .await
            .map_err(|e| Refusal::StoreUnavailable(e.to_string()))?;
        Ok((username, change))
    }

    /// Who of the requester's starred colleagues is in: each one an audited lookup under the
    /// same rules and rate limit as any other (channel `favourites`). Colleagues who are not in,
    /// or who do not let the requester find them, are simply absent; when the hourly limit runs
    /// out, the rest are not looked up.
    pub async fn favourites(&self, requester: &Requester) -> Result<Favourites, FindError> {
        let requester = requester.through(Channel::Favourites);
        if !self.allowed(&requester) {
            return Err(FindError::NotAllowed(
                self.privacy().config().allowed_domains.clone(),
            ));
        }
        let starred = self
            .privacy()
            .favourites(&requester)
            .await
            .map_err(|e| Refusal::StoreUnavailable(e.to_string()))?;
        let mut panel = Favourites {
            starred: starred.clone(),
            ..Favourites::default()
        };
        // A few at a time, so a panel of many is not as slow as their sum; in the order starred.
        // Once the hourly limit runs out, no further lookup is started.
        let mut names = starred.iter();
        let mut running = futures::stream::FuturesOrdered::new();
        loop {
            while !panel.rate_limited && running.len() < FAVOURITES_AT_ONCE {
                let Some(username) = names.next() else { break };
                running.push_back(self.find(username, &requester));
            }
            let Some(result) = running.next().await else {
                break;
            };
            match result {
                Ok(report) if !report.devices.is_empty() => {
                    let mut places: Vec<String> = report
                        .devices
                        .iter()
                        .map(|d| place_text(&d.device, report.precision))
                        .collect();
                    places.dedup();
                    panel.present.push(Favourite {
                        username: report.person.username.clone(),
                        display_name: report.person.display_name.clone(),
                        places,
                        precision: report.precision,
                    });
                }
                Err(FindError::Refused(Refusal::RateLimited(_))) => panel.rate_limited = true,
                Err(FindError::Refused(err @ Refusal::StoreUnavailable(_))) => {
                    return Err(FindError::Refused(err));
                }
                _ => {}
            }
        }
        Ok(panel)
    }
}

/// "Building 5, Level 3" (at `building`: "Building 5"); the hierarchy when the names are unknown.
pub fn place_text(device: &whereis_location::Device, precision: Precision) -> String {
    let floor = device
        .floor
        .as_ref()
        .filter(|_| precision >= Precision::Floor);
    match (&device.building, floor) {
        (Some(building), Some(floor)) => format!("{building}, {floor}"),
        (Some(building), None) => building.clone(),
        (None, Some(floor)) => floor.clone(),
        (None, None) if !device.hierarchy.is_empty() => device.hierarchy.replace('>', ", "),
        (None, None) => "somewhere unnamed".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert!(is_email("jane.doe@example.com"));
        assert!(is_email(" Jane.Doe@Example.com "));
        assert!(!is_email("jdoe"));
        assert!(!is_email("@example.com"));
        assert!(!is_email("jane@localhost"));
        assert!(!is_email("jane doe@example.com"));
        assert!(!is_email("a@b@example.com"));
    }

    #[test]
    fn audiences_read_as_people_say_them() {
        let view = |chosen: PersonSettings| MySettings {
            username: "jdoe".into(),
            chosen,
            findable: true,
            consent: Consent::OptOut,
            precision: Precision::Exact,
            max_precision: Precision::Exact,
            hours: None,
            org_hours: None,
            timezone: "UTC".into(),
        };
        assert_eq!(
            view(PersonSettings::default()).audience_text(),
            "everyone at work"
        );
        let team = PersonSettings {
            restricted: true,
            share_team: true,
            shared_with: vec!["jane@example.com".into()],
            blocked: vec!["nosy@example.com".into()],
            ..PersonSettings::default()
        };
        assert_eq!(
            view(team).audience_text(),
            "your team, jane@example.com (never: nosy@example.com)"
        );
        let nobody = PersonSettings {
            restricted: true,
            ..PersonSettings::default()
        };
        assert_eq!(view(nobody).audience_text(), "nobody but you");
    }
}
