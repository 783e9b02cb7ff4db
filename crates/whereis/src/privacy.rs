//! Privacy state shared by every channel: who opted out, and the counters behind `stats`.
//!
//! Kept in this process's memory; the store (SQLite/PostgreSQL) replaces it so that opt-outs survive
//! restarts and hold across instances.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock};

/// Opt-outs and lookup counters.
#[derive(Debug, Default)]
pub struct Privacy {
    opted_out: RwLock<HashSet<String>>,
    stats: Mutex<Stats>,
}

/// Lookup counters.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Lookups that were run.
    pub lookups: u64,
    /// Lookups that found at least one device.
    pub found: u64,
    /// Lookups that found nothing.
    pub not_found: u64,
    /// Requests refused, by reason.
    pub refused: BTreeMap<String, u64>,
    /// Devices reported, by source.
    pub by_source: BTreeMap<String, u64>,
}

impl Privacy {
    /// Normalises a username for opt-out bookkeeping (case-insensitive, domain prefix dropped).
    fn key(username: &str) -> String {
        let bare = username.rsplit('\\').next().unwrap_or(username);
        bare.trim().to_lowercase()
    }

    /// Marks `username` as not locatable.
    pub fn opt_out(&self, username: &str) {
        self.opted_out
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(Self::key(username));
    }

    /// Makes `username` locatable again.
    pub fn opt_in(&self, username: &str) {
        self.opted_out
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&Self::key(username));
    }

    /// Whether `username` opted out.
    pub fn is_opted_out(&self, username: &str) -> bool {
        self.opted_out
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&Self::key(username))
    }

    fn stats(&self) -> MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a lookup and the sources of the devices it found.
    pub fn count_lookup<'a>(&self, sources: impl Iterator<Item = &'a str>) {
        let mut stats = self.stats();
        stats.lookups += 1;
        let mut any = false;
        for source in sources {
            any = true;
            *stats.by_source.entry(source.to_owned()).or_default() += 1;
        }
        if any {
            stats.found += 1;
        } else {
            stats.not_found += 1;
        }
    }

    /// Counts a refused request.
    pub fn count_refusal(&self, reason: &str) {
        *self.stats().refused.entry(reason.to_owned()).or_default() += 1;
    }

    /// The counters so far.
    pub fn snapshot(&self) -> Stats {
        self.stats().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opt_out_ignores_case_and_domain() {
        let privacy = Privacy::default();
        privacy.opt_out("JDoe");
        assert!(privacy.is_opted_out("jdoe"));
        assert!(privacy.is_opted_out("CORP\\jdoe"));
        privacy.opt_in("jdoe");
        assert!(!privacy.is_opted_out("jdoe"));
    }

    #[test]
    fn counters() {
        let privacy = Privacy::default();
        privacy.count_lookup(["cmx", "cmx", "mse"].into_iter());
        privacy.count_lookup(std::iter::empty());
        privacy.count_refusal("opted out");
        let stats = privacy.snapshot();
        assert_eq!((stats.lookups, stats.found, stats.not_found), (2, 1, 1));
        assert_eq!(stats.by_source["cmx"], 2);
        assert_eq!(stats.refused["opted out"], 1);
    }
}
