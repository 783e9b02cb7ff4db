//! The building roster: everyone the location sources place in one building now, under the same
//! privacy rules as a lookup — people who do not allow the viewer now (opted out, not opted in,
//! outside their hours, not in their audience) are left out, a floor is shown only to those who
//! allow it, every listed person gets an audit row (so "who looked for me" shows the view), and one
//! view uses one lookup of the viewer's hourly allowance.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use whereis_location::{Device, SourceFailure};

use crate::directory::{Entry, Resolution};
use crate::lookup::Finder;
use crate::privacy::{Answered, Privacy, Refusal, Requester, Target};
use crate::report::{coarsen, Person};
use crate::store::Outcome as AuditOutcome;

/// Longest building name accepted.
pub const MAX_BUILDING_CHARS: usize = 120;

/// How many directory questions for display names are in flight at once.
const NAME_LOOKUPS_IN_FLIGHT: usize = 8;

/// Who is in a building now.
#[derive(Debug, Clone, PartialEq)]
pub struct Roster {
    /// The building as asked for (trimmed).
    pub building: String,
    /// One entry per person, by display name (then username).
    pub people: Vec<RosterEntry>,
    /// Sources that could not list the building (the others' people are still listed).
    pub errors: Vec<SourceFailure>,
    /// How many sources were asked.
    pub sources: usize,
}

/// One person in a [`Roster`].
#[derive(Debug, Clone, PartialEq)]
pub struct RosterEntry {
    /// The username (lower case, no domain prefix).
    pub username: String,
    /// From the directory, when it knows the username.
    pub display_name: Option<String>,
    /// The floor of their most recently seen device.
    pub floor: Option<String>,
    /// Seconds since that device was seen.
    pub last_seen_seconds: Option<u64>,
    /// Whether that sighting is older than the sources' freshness limit.
    pub stale: bool,
    /// How many of their devices are in the building.
    pub devices: usize,
}

impl Roster {
    /// True when no source could list the building.
    pub fn all_sources_failed(&self) -> bool {
        self.sources > 0 && self.errors.len() >= self.sources
    }
}

/// Why a roster was not listed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RosterError {
    /// The name cannot be a building.
    #[error("{0:?} is not a building name")]
    BadBuilding(String),
    /// The viewer's domain is not allowed (refused and audited).
    #[error("whereis is only available to people at {}", .0.join(", "))]
    NotAllowed(Vec<String>),
    /// The rate limit, or a store that cannot check it or the opt-outs (nobody is listed then).
    #[error(transparent)]
    Refused(#[from] Refusal),
}

/// A building name as the roster takes it: trimmed, not empty, at most [`MAX_BUILDING_CHARS`]
/// characters, no control characters.
pub fn building_name(name: &str) -> Result<&str, RosterError> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_BUILDING_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(RosterError::BadBuilding(
            name.chars().take(MAX_BUILDING_CHARS).collect(),
        ));
    }
    Ok(name)
}

impl Finder {
    /// Lists the people located in `building` now. `requester` carries the channel the audit rows
    /// are written under ([`crate::privacy::Channel::WebRoster`] for the page).
    pub async fn roster(
        &self,
        building: &str,
        requester: &Requester,
    ) -> Result<Roster, RosterError> {
        let building = building_name(building)?;
        let audit_target = format!("building:{building}");
        if !self.allowed(requester) {
            self.privacy()
                .refuse(requester, &audit_target, AuditOutcome::NotAllowed)
                .await;
            return Err(RosterError::NotAllowed(
                self.privacy().config().allowed_domains.clone(),
            ));
        }
        self.privacy().reserve(requester, &audit_target).await?;
        let lookup = self.locator().list_building(building).await;
        let mut by_person: BTreeMap<String, Vec<Device>> = BTreeMap::new();
        for device in lookup.devices {
            let username = device
                .identity
                .as_deref()
                .and_then(|identity| self.locator().username_of(identity));
            if let Some(username) = username {
                by_person
                    .entry(Privacy::key(username.as_str()))
                    .or_default()
                    .push(device);
            }
        }
        // Fail closed: a store that cannot say what people chose lists nobody.
        let usernames: Vec<String> = by_person.keys().cloned().collect();
        let settings = self
            .privacy()
            .store()
            .settings_among(&usernames)
            .await
            .map_err(|e| {
                crate::privacy::store_error(&e);
                Refusal::StoreUnavailable(e.to_string())
            })?;
        let candidates: Vec<(String, Vec<Device>)> = by_person.into_iter().collect();
        let all_entries = self.directory_entries(&candidates).await;
        // The viewer's own entry, asked once, and only when someone shares with their team only.
        let team_rule = settings.values().any(|s| s.restricted && s.share_team);
        let viewer = if team_rule {
            self.viewer_entry(requester).await
        } else {
            None
        };
        let mut listed = Vec::new();
        let mut entries = Vec::new();
        for ((username, devices), entry) in candidates.into_iter().zip(all_entries) {
            let target = match &entry {
                Some(entry) => Target::from_entry(entry),
                None => Target::username(&username),
            };
            let chosen = settings.get(&username).cloned().unwrap_or_default();
            let viewer = viewer.clone();
            // People who do not allow the viewer now are simply left out.
            if let Ok(precision) = self
                .privacy()
                .judge(requester, &target, &chosen, || async { viewer })
                .await
            {
                listed.push((username, coarsen(devices, precision), precision));
                entries.push(entry);
            }
        }
        let failed: Vec<&str> = lookup.errors.iter().map(|e| e.source.as_str()).collect();
        let answered: Vec<String> = self
            .locator()
            .sources()
            .iter()
            .map(|s| s.name().to_owned())
            .filter(|name| !failed.contains(&name.as_str()))
            .collect();
        // Written together, so the store commits them as one group.
        futures::future::join_all(listed.iter().map(|(username, devices, precision)| {
            let mut found_by: Vec<String> = devices.iter().map(|d| d.source.clone()).collect();
            found_by.sort();
            found_by.dedup();
            self.privacy().record_lookup(
                requester,
                username,
                Answered {
                    sources: answered.clone(),
                    found_by,
                    devices: u32::try_from(devices.len()).unwrap_or(u32::MAX),
                },
                *precision,
            )
        }))
        .await;
        let mut people = Vec::with_capacity(listed.len());
        for ((username, devices, _), entry) in listed.into_iter().zip(entries) {
            let person = Person {
                username: username.clone(),
                display_name: entry.as_ref().map(|e| e.display_name.clone()),
                email: entry.and_then(|e| e.email),
            };
            self.notify_target(&person, requester);
            // Devices come most recently seen first.
            let latest = devices.first();
            people.push(RosterEntry {
                username,
                display_name: person.display_name,
                floor: latest.and_then(|d| d.floor.clone()),
                last_seen_seconds: latest.and_then(|d| d.last_seen_seconds),
                stale: latest.is_some_and(|d| d.stale),
                devices: devices.len(),
            });
        }
        people.sort_by_cached_key(|p| {
            (
                p.display_name
                    .as_deref()
                    .unwrap_or(&p.username)
                    .to_lowercase(),
                p.username.clone(),
            )
        });
        Ok(Roster {
            building: building.to_owned(),
            people,
            errors: lookup.errors,
            sources: self.locator().sources().len(),
        })
    }

    /// The directory entry of `requester` (for the team rule); `None` when unknown or unreachable.
    async fn viewer_entry(&self, requester: &Requester) -> Option<Entry> {
        self.directory()?
            .by_email(&requester.id)
            .await
            .ok()
            .flatten()
    }

    /// The directory entry of each listed username, in order (`None` without a directory, for an
    /// unknown username, or when the directory cannot be asked: the roster shows the username).
    async fn directory_entries(&self, listed: &[(String, Vec<Device>)]) -> Vec<Option<Entry>> {
        let Some(directory) = self.directory() else {
            return vec![None; listed.len()];
        };
        let usernames: Vec<String> = listed
            .iter()
            .map(|(username, _)| username.clone())
            .collect();
        // Owned inputs: a stream of futures that borrow cannot be held across the handler's await.
        futures::stream::iter(usernames.into_iter().map(|username| {
            let directory = Arc::clone(directory);
            async move {
                match directory.resolve(&username).await {
                    Ok(Resolution::One(entry))
                        if entry.username.eq_ignore_ascii_case(&username) =>
                    {
                        Some(entry)
                    }
                    Ok(Resolution::Several(entries)) => entries
                        .into_iter()
                        .find(|e| e.username.eq_ignore_ascii_case(&username)),
                    Ok(_) => None,
                    Err(err) => {
                        tracing::debug!(error = %err, "no display name for a roster entry");
                        None
                    }
                }
            }
        }))
        .buffered(NAME_LOOKUPS_IN_FLIGHT)
        .collect()
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn building_names_are_trimmed_and_bounded() {
        assert_eq!(building_name("  Building 5 "), Ok("Building 5"));
        assert!(matches!(
            building_name("   "),
            Err(RosterError::BadBuilding(_))
        ));
        assert!(matches!(
            building_name("B\u{0}5"),
            Err(RosterError::BadBuilding(_))
        ));
        let long = "x".repeat(MAX_BUILDING_CHARS + 1);
        match building_name(&long) {
            Err(RosterError::BadBuilding(shown)) => {
                assert_eq!(shown.chars().count(), MAX_BUILDING_CHARS);
            }
            other => panic!("expected BadBuilding, got {other:?}"),
        }
        assert!(building_name(&"é".repeat(MAX_BUILDING_CHARS)).is_ok());
    }
}
