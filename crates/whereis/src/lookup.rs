//! One lookup, the same for the CLI, the HTTP API and (later) chat: check the query, ask the Locator,
//! and shape the answer ([`FindReport`]) as JSON (DESIGN.md §3.2) or as text for people.

use std::sync::Arc;

use serde::Serialize;
use whereis_location::{
    Device, HttpSource, InvalidUsername, LocationSource, Locator, SourceError, SourceFailure,
    Username,
};

use crate::config::Config;

/// The lookup service: the Locator over every configured source.
pub struct Finder {
    locator: Locator,
}

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
}

/// The answer to one query (the `find --json` contract).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FindReport {
    /// What was asked.
    pub query: String,
    /// Who that was taken to mean.
    pub person: Person,
    /// Devices, most recently seen first.
    pub devices: Vec<Device>,
    /// Sources that failed.
    pub errors: Vec<SourceFailure>,
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
    pub fn from_config(config: &Config) -> Result<Finder, SetupError> {
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
        Ok(Finder {
            locator: Locator::new(sources, config.lookup.clone()),
        })
    }

    /// The locator (for probes and tests).
    pub fn locator(&self) -> &Locator {
        &self.locator
    }

    /// Looks a username up on every source.
    pub async fn find(&self, query: &str) -> Result<FindReport, InvalidUsername> {
        let username = Username::parse(query)?;
        let lookup = self.locator.locate(&username).await;
        Ok(FindReport {
            query: query.trim().to_owned(),
            person: Person {
                username: username.as_str().to_owned(),
                display_name: None,
            },
            devices: lookup.devices,
            errors: lookup.errors,
        })
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
        for device in &self.devices {
            let prefix = if self.devices.len() > 1 { "- " } else { "" };
            lines.push(format!("{prefix}{}", describe_device(who, device)));
        }
        for failure in &self.errors {
            lines.push(format!(
                "Note: {} did not answer: {}",
                failure.source, failure.error
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
            },
            devices: vec![device(), device()],
            errors: vec![SourceFailure {
                source: "mse".into(),
                error: "timed out after 2000 ms".into(),
            }],
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
