//! The privacy rules, the same on every channel: opted-out people are never located, each requester
//! has an hourly limit, and every lookup — allowed or refused — is written to the audit log. Everything
//! lives in the store, so the rules hold across restarts and across instances sharing PostgreSQL.
//! When the store cannot be reached, lookups are refused: the rules are never skipped.
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
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::config::PrivacyConfig;
use crate::store::{AuditEntry, AuditFilter, Outcome, Reservation, Store, StoreError, StoreStats};

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
}

impl fmt::Display for Requester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.id, self.channel.as_str())
    }
}

/// Why a lookup was refused by the rules.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    /// The person opted out (nothing else is revealed).
    #[error("{0} has opted out of whereis")]
    OptedOut(String),
    /// The requester used up the hourly limit.
    #[error("you have reached the limit of {0} lookups per hour; please try again later")]
    RateLimited(u32),
    /// The rules could not be checked.
    #[error("whereis cannot check its privacy rules right now ({0}); no lookup was made")]
    StoreUnavailable(String),
}

/// The rules, over the store.
pub struct Privacy {
    store: Store,
    config: PrivacyConfig,
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
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

impl Privacy {
    /// The rules of `config`, kept in `store`.
    pub fn new(store: Store, config: PrivacyConfig) -> Privacy {
        Privacy { store, config }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The configuration.
    pub fn config(&self) -> &PrivacyConfig {
        &self.config
    }

    /// Usernames are compared without case and without a domain prefix (`CORP\jdoe` is `jdoe`).
    pub fn key(username: &str) -> String {
        let bare = username.rsplit('\\').next().unwrap_or(username);
        bare.trim().to_lowercase()
    }

    /// Marks `username` as not locatable.
    pub async fn opt_out(&self, username: &str) -> Result<(), StoreError> {
        self.store
            .set_opted_out(&Self::key(username), true, now())
            .await
    }

    /// Makes `username` locatable again.
    pub async fn opt_in(&self, username: &str) -> Result<(), StoreError> {
        self.store
            .set_opted_out(&Self::key(username), false, now())
            .await
    }

    /// Whether `requester` may look `target` up now. Uses one lookup of the requester's hourly
    /// allowance first (so lookups that then fail still count, and so does asking about someone
    /// who opted out), then checks the opt-out. A refusal is written to the audit log.
    pub async fn check(&self, requester: &Requester, target: &str) -> Result<(), Refusal> {
        let target = Self::key(target);
        self.reserve(requester, &target).await?;
        let opted_out = self
            .store
            .is_opted_out(&target)
            .await
            .map_err(|e| unavailable(&e))?;
        if opted_out {
            self.refuse(requester, &target, Outcome::OptedOut).await;
            return Err(Refusal::OptedOut(target));
        }
        Ok(())
    }

    /// Uses one lookup of the requester's hourly allowance, atomically in the store (so it holds
    /// across instances); a refusal is audited under `target`.
    pub async fn reserve(&self, requester: &Requester, target: &str) -> Result<(), Refusal> {
        let limit = self.config.rate_limit_per_hour;
        let reservation = self
            .store
            .reserve_lookup(&requester.id, limit, now_ms())
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
            at: now(),
            requester: requester.id.clone(),
            target: Self::key(target),
            channel: requester.channel.as_str().to_owned(),
            outcome,
            sources: Vec::new(),
            found_by: Vec::new(),
            devices: 0,
        })
        .await;
    }

    /// Writes a lookup that was run to the audit log.
    pub async fn record_lookup(
        &self,
        requester: &Requester,
        target: &str,
        sources: Vec<String>,
        found_by: Vec<String>,
        devices: u32,
    ) {
        let outcome = if devices > 0 {
            Outcome::Found
        } else if found_by.is_empty() && sources.is_empty() {
            Outcome::Failed
        } else {
            Outcome::NotFound
        };
        self.write(AuditEntry {
            at: now(),
            requester: requester.id.clone(),
            target: Self::key(target),
            channel: requester.channel.as_str().to_owned(),
            outcome,
            sources,
            found_by,
            devices,
        })
        .await;
    }

    async fn write(&self, entry: AuditEntry) {
        if let Err(err) = self.store.record(&entry).await {
            tracing::error!(error = %err, requester = %entry.requester, target = %entry.target, "cannot write the audit log");
        }
    }

    /// Who looked `username` up in the last 30 days, newest first.
    pub async fn who_looked_for(&self, username: &str) -> Result<Vec<AuditEntry>, StoreError> {
        self.store
            .audit(&AuditFilter {
                target: Some(Self::key(username)),
                requester: None,
                since: Some(now() - WHO_LOOKED_WINDOW_DAYS * 86_400),
                limit: 50,
            })
            .await
    }

    /// Counters for `stats`.
    pub async fn stats(&self) -> Result<StoreStats, StoreError> {
        self.store.stats(None).await
    }

    /// Deletes audit rows past the retention, old webhook ids, and the rate-limit rows of
    /// requesters whose allowance is full again; returns the audit rows removed.
    pub async fn purge(&self) -> Result<u64, StoreError> {
        let now = now();
        let retention = i64::from(self.config.audit_retention_days) * 86_400;
        let purged = self.store.purge_audit_before(now - retention).await?;
        self.store.purge_deliveries_before(now - 86_400).await?;
        self.store.purge_rate_limits(now_ms()).await?;
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
/// sources.
pub fn audit_line(entry: &AuditEntry) -> String {
    format!(
        "{}  {:<28} {:<16} {:<5} {:<13} {}",
        audit_time(entry.at),
        entry.requester,
        entry.target,
        entry.channel,
        entry.outcome.as_str(),
        entry.sources.join(",")
    )
}

/// One audit row as `audit --json` prints it (one JSON document per line).
pub fn audit_json(entry: &AuditEntry) -> serde_json::Value {
    serde_json::json!({
        "at": audit_time(entry.at), "requester": entry.requester, "target": entry.target,
        "channel": entry.channel, "outcome": entry.outcome.as_str(),
        "sources": entry.sources, "found_by": entry.found_by, "devices": entry.devices,
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
mod tests {
    use super::*;

    #[test]
    fn keys_ignore_case_and_domain() {
        assert_eq!(Privacy::key("CORP\\JDoe"), "jdoe");
        assert_eq!(Privacy::key(" jdoe "), "jdoe");
    }

    #[test]
    fn requesters_are_lower_case() {
        let r = Requester::new(" Jane.Doe@Example.com ", Channel::Chat);
        assert_eq!(r.id, "jane.doe@example.com");
        assert_eq!(r.to_string(), "jane.doe@example.com (chat)");
    }
}
