//! Readiness: what `/readyz` reports. The store decides (no store, no privacy rules, no lookups);
//! each location source's last probe and each stream's state are reported but never make the
//! instance unready, since a lookup still answers from the other sources.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::lookup::Finder;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::store::Store;

/// How often every source is probed in the background.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(30);
/// Longest wait for the store on a readiness check.
pub const STORE_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The instance's view of its dependencies, shared by the prober, the streams and `/readyz`.
pub struct Health {
    sources: Mutex<Vec<SourceHealth>>,
    streams: Mutex<Vec<StreamHealth>>,
}

/// One source's last probe.
#[derive(Debug, Clone, Serialize)]
pub struct SourceHealth {
    /// Configured name.
    pub name: String,
    /// `unknown` (not probed yet), `ok` or `failing`.
    pub state: &'static str,
    /// What the probe found, or why it failed.
    pub detail: Option<String>,
    /// Seconds since the last probe ended.
    pub checked_seconds_ago: Option<u64>,
    #[serde(skip)]
    checked_at: Option<Instant>,
}

/// A stream whereis keeps open (the Webex websocket; live location feeds).
#[derive(Debug, Clone, Serialize)]
pub struct StreamHealth {
    /// What it is, e.g. `webex-websocket`.
    pub name: String,
    /// e.g. `standby`, `connecting`, `connected`, `failed`, `stopped`.
    pub state: String,
    /// Why, when it is not connected.
    pub detail: Option<String>,
    /// Seconds since the state last changed.
    pub since_seconds: u64,
    #[serde(skip)]
    changed_at: Option<Instant>,
}

/// The `/readyz` document.
#[derive(Debug, Serialize)]
pub struct Readiness {
    /// True when the store answered: the instance can serve lookups.
    pub ready: bool,
    /// The store's check.
    pub store: StoreHealth,
    /// Each source's last probe.
    pub sources: Vec<SourceHealth>,
    /// Each stream's state.
    pub streams: Vec<StreamHealth>,
}

/// The store's part of readiness.
#[derive(Debug, Serialize)]
pub struct StoreHealth {
    /// `sqlite` or `postgres`.
    pub kind: &'static str,
    /// `ok` or `unavailable`.
    pub state: &'static str,
    /// Why it is unavailable.
    pub error: Option<String>,
}

impl Health {
    /// Every named source starts `unknown`.
    pub fn new<'a>(sources: impl IntoIterator<Item = &'a str>) -> Health {
        Health {
            sources: Mutex::new(
                sources
                    .into_iter()
                    .map(|name| SourceHealth {
                        name: name.to_owned(),
                        state: "unknown",
                        detail: None,
                        checked_seconds_ago: None,
                        checked_at: None,
                    })
                    .collect(),
            ),
            streams: Mutex::new(Vec::new()),
        }
    }

    /// Records a probe's result.
    pub fn record_probe(&self, name: &str, result: Result<String, String>) {
        let mut sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(source) = sources.iter_mut().find(|s| s.name == name) {
            let (state, detail) = match result {
                Ok(detail) => ("ok", detail),
                Err(error) => ("failing", error),
            };
            source.state = state;
            source.detail = Some(detail);
            source.checked_at = Some(Instant::now());
        }
    }

    /// Sets a stream's state (added on first use).
    pub fn set_stream(&self, name: &str, state: &str, detail: Option<String>) {
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        let now = Some(Instant::now());
        match streams.iter_mut().find(|s| s.name == name) {
            Some(stream) => {
                if stream.state != state {
                    stream.state = state.to_owned();
                    stream.changed_at = now;
                }
                stream.detail = detail;
            }
            None => streams.push(StreamHealth {
                name: name.to_owned(),
                state: state.to_owned(),
                detail,
                since_seconds: 0,
                changed_at: now,
            }),
        }
    }

    /// The stream's current state, if it was ever set.
    pub fn stream(&self, name: &str) -> Option<String> {
        let streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        streams
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.state.clone())
    }

    /// Checks the store now and reports everything.
    pub async fn readiness(&self, store: &Store) -> Readiness {
        let store_result = match tokio::time::timeout(STORE_CHECK_TIMEOUT, store.ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(err.to_string()),
            Err(_) => Err(format!(
                "no answer within {} s",
                STORE_CHECK_TIMEOUT.as_secs()
            )),
        };
        let sources = {
            let sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
            sources
                .iter()
                .map(|s| SourceHealth {
                    checked_seconds_ago: s.checked_at.map(|at| at.elapsed().as_secs()),
                    ..s.clone()
                })
                .collect()
        };
        let streams = {
            let streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
            streams
                .iter()
                .map(|s| StreamHealth {
                    since_seconds: s.changed_at.map_or(0, |at| at.elapsed().as_secs()),
                    ..s.clone()
                })
                .collect()
        };
        Readiness {
            ready: store_result.is_ok(),
            store: StoreHealth {
                kind: store.kind(),
                state: if store_result.is_ok() {
                    "ok"
                } else {
                    "unavailable"
                },
                error: store_result.err(),
            },
            sources,
            streams,
        }
    }
}

/// Probes every source now and then every [`PROBE_INTERVAL`] until `stop`.
pub fn spawn_prober(finder: Arc<Finder>, health: Arc<Health>, stop: CancellationToken) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(PROBE_INTERVAL);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                () = stop.cancelled() => return,
            }
            let probes = finder.locator().sources().iter().map(|source| {
                let health = Arc::clone(&health);
                async move {
                    let started = Instant::now();
                    let result = source
                        .probe()
                        .await
                        .map(|probe| {
                            format!("{} ({} ms)", probe.detail, started.elapsed().as_millis())
                        })
                        .map_err(|err| err.to_string());
                    health.record_probe(source.name(), result);
                }
            });
            tokio::select! {
                _ = futures::future::join_all(probes) => {}
                () = stop.cancelled() => return,
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_result_is_kept_per_source() {
        let health = Health::new(["north", "south"]);
        health.record_probe("north", Ok("12 floors".to_owned()));
        health.record_probe("south", Err("connection refused".to_owned()));
        health.record_probe("unknown", Ok("ignored".to_owned()));
        let sources = health.sources.lock().unwrap().clone();
        assert_eq!(sources[0].state, "ok");
        assert_eq!(sources[0].detail.as_deref(), Some("12 floors"));
        assert_eq!(sources[1].state, "failing");
        assert_eq!(sources.len(), 2);
    }

    #[test]
    fn a_stream_state_change_restarts_its_clock_only_when_it_changes() {
        let health = Health::new([]);
        health.set_stream("webex-websocket", "connecting", None);
        health.set_stream("webex-websocket", "connected", None);
        assert_eq!(
            health.stream("webex-websocket").as_deref(),
            Some("connected")
        );
        assert_eq!(health.streams.lock().unwrap().len(), 1);
    }
}
