//! The records the store keeps and the answers it gives, independent of the backend.

use std::collections::BTreeMap;
use std::fmt;

/// One audit row: a lookup (allowed or refused), who asked, for whom, and what came of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// When, in Unix seconds.
    pub at: i64,
    /// Who asked (an email for chat, what the operator named for the CLI).
    pub requester: String,
    /// The username looked for.
    pub target: String,
    /// Through which channel: `"chat"`, `"cli"` or `"api"`.
    pub channel: String,
    /// What came of it.
    pub outcome: Outcome,
    /// The sources asked.
    pub sources: Vec<String>,
    /// The sources that found at least one device.
    pub found_by: Vec<String>,
    /// How many devices were reported.
    pub devices: u32,
    /// How precisely an allowed lookup was answered (`exact`, `floor`, `building`); `None` for a
    /// refusal.
    pub precision: Option<String>,
}

/// What came of a lookup request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// The sources were asked and at least one device was found.
    Found,
    /// The sources were asked and nothing was found.
    NotFound,
    /// Refused: the target opted out.
    OptedOut,
    /// Refused: the organisation asks people to opt in, and the target has not.
    NotOptedIn,
    /// Refused: the target does not share their location with the requester (the requester is
    /// only told "not available").
    NotShared,
    /// Refused: outside the target's working hours.
    OutsideHours,
    /// Refused: the requester used up the rate limit.
    RateLimited,
    /// Refused: the requester may not use whereis.
    NotAllowed,
    /// The sources were asked and every one failed.
    Failed,
}

impl Outcome {
    /// Every outcome, in declaration order.
    pub const ALL: [Outcome; 9] = [
        Outcome::Found,
        Outcome::NotFound,
        Outcome::OptedOut,
        Outcome::NotOptedIn,
        Outcome::NotShared,
        Outcome::OutsideHours,
        Outcome::RateLimited,
        Outcome::NotAllowed,
        Outcome::Failed,
    ];

    /// The name stored in the database and shown to people.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Found => "found",
            Outcome::NotFound => "not found",
            Outcome::OptedOut => "opted out",
            Outcome::NotOptedIn => "not opted in",
            Outcome::NotShared => "not shared",
            Outcome::OutsideHours => "outside hours",
            Outcome::RateLimited => "rate limited",
            Outcome::NotAllowed => "not allowed",
            Outcome::Failed => "failed",
        }
    }

    /// The outcome named `name` (as written by [`Outcome::as_str`]).
    pub fn parse(name: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == name)
    }

    /// Whether this is a refusal by the privacy rules (nothing was looked up).
    pub fn is_refusal(self) -> bool {
        matches!(
            self,
            Outcome::OptedOut
                | Outcome::NotOptedIn
                | Outcome::NotShared
                | Outcome::OutsideHours
                | Outcome::RateLimited
                | Outcome::NotAllowed
        )
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Outcome {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Outcome::parse(s).ok_or_else(|| format!("unknown outcome {s:?}"))
    }
}

/// What [`Store::reserve_lookup`](super::Store::reserve_lookup) decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// The lookup may run; it has been counted.
    Granted {
        /// Lookups the requester could still run at once after this one.
        remaining: u32,
    },
    /// The allowance is used up; nothing was counted.
    Refused,
}

impl Reservation {
    /// Whether the lookup may run.
    pub fn is_granted(self) -> bool {
        matches!(self, Reservation::Granted { .. })
    }
}

/// Which audit rows to list; every condition that is set must hold.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only lookups for this username.
    pub target: Option<String>,
    /// Only lookups by this requester.
    pub requester: Option<String>,
    /// Only rows at or after this time (Unix seconds).
    pub since: Option<i64>,
    /// At most this many rows (newest first); 0 means 1000.
    pub limit: u32,
}

/// The numbers behind `stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Lookups that asked the sources: `found + not_found + failed`.
    pub lookups: u64,
    /// Lookups that found at least one device.
    pub found: u64,
    /// Lookups that found nothing.
    pub not_found: u64,
    /// Refused requests by outcome name (`"opted out"`, `"rate limited"`, `"not allowed"`); only
    /// outcomes that occurred are present.
    pub refused: BTreeMap<String, u64>,
    /// Lookups in which every source failed.
    pub failed: u64,
    /// For each source, the lookups in which it found at least one device.
    pub by_source: BTreeMap<String, u64>,
    /// People opted out now.
    pub opted_out_people: u64,
    /// People opted in now.
    pub opted_in_people: u64,
}

impl StoreStats {
    /// Adds `count` requests with `outcome`.
    pub(crate) fn add_outcome(&mut self, outcome: Outcome, count: u64) {
        match outcome {
            Outcome::Found => self.found += count,
            Outcome::NotFound => self.not_found += count,
            Outcome::Failed => self.failed += count,
            refusal => *self.refused.entry(refusal.as_str().to_owned()).or_default() += count,
        }
        if !outcome.is_refusal() {
            self.lookups += count;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_names_round_trip() {
        for outcome in Outcome::ALL {
            assert_eq!(Outcome::parse(outcome.as_str()), Some(outcome));
            assert_eq!(outcome.to_string().parse::<Outcome>(), Ok(outcome));
        }
        assert_eq!(Outcome::parse("Found"), None);
        assert!("lost".parse::<Outcome>().is_err());
    }

    #[test]
    fn stats_add_up() {
        let mut stats = StoreStats::default();
        stats.add_outcome(Outcome::Found, 3);
        stats.add_outcome(Outcome::NotFound, 2);
        stats.add_outcome(Outcome::Failed, 1);
        stats.add_outcome(Outcome::OptedOut, 4);
        assert_eq!(
            (stats.lookups, stats.found, stats.not_found, stats.failed),
            (6, 3, 2, 1)
        );
        assert_eq!(stats.refused.get("opted out"), Some(&4));
        assert_eq!(stats.refused.len(), 1);
    }
}

/// An API token as listed: never the token itself (only its hash is kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// The name it was created under (unique).
    pub name: String,
    /// The requester (an email) the token acts as.
    pub requester: String,
    /// When it was created, in Unix seconds.
    pub created_at: i64,
}
