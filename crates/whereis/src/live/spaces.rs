//! The Cisco Spaces Firehose consumer: one instance per source holds the stream (the store's
//! leadership `spaces:{name}`), writes each location update to the live table, and keeps the
//! timestamp of the last record written as the stream position `spaces:{name}` — advanced only after
//! the rows are committed, so an instance that takes over replays from there and loses nothing
//! inside the replay window.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use whereis_location::live::spaces::{FirehoseOptions, FirehoseStatus, SpacesClient, StreamState};
use whereis_location::wire::spaces::{FirehoseEvent, FirehoseRecord};
use whereis_location::{Api, Probe, SourceError, Unit};
use whereis_store::{LiveChange, LiveDevice, Store};

use super::GatedWriter;

use crate::health::Health;

/// How often a leader checks that it still holds the lock, and a follower tries to take it.
const LEAD_POLL: Duration = Duration::from_secs(5);
/// How often the position is saved (after the writer has committed what came before).
const CHECKPOINT: Duration = Duration::from_secs(1);
/// Records waiting between the stream and the writer.
const QUEUE: usize = 10_000;
/// A connected stream whose newest record is older than this is lagging.
const LAGGING_AFTER_MS: i64 = 120_000;

/// What `/readyz` and `check-config` read of one source's stream.
#[derive(Default)]
pub struct StreamWatch {
    /// The client's counters and state.
    pub status: FirehoseStatus,
    /// Whether this instance holds the stream (else another instance does).
    pub leading: AtomicBool,
}

/// The name of a source's leadership and stream position.
pub fn position_name(source: &str) -> String {
    format!("spaces:{source}")
}

/// Runs the consumer of one Spaces source until `stop`: waits for the lead, streams, and on losing
/// the lead (or a refused key) stops streaming. A refused key is not retried: it stays refused
/// until the configuration changes, and `/readyz` says so.
pub fn spawn(
    name: String,
    client: Arc<SpacesClient>,
    store: Store,
    writer: GatedWriter,
    watch: Arc<StreamWatch>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let options = FirehoseOptions::default();
        loop {
            let lead_name = position_name(&name);
            let mut leadership = tokio::select! {
                lead = store.lead(&lead_name, LEAD_POLL) => lead,
                () = stop.cancelled() => return,
            };
            tracing::info!(source = %name, "leading the Spaces Firehose stream");
            watch.leading.store(true, Ordering::Relaxed);
            let outcome = lead_stream(
                &name,
                &client,
                &options,
                &store,
                &writer,
                &watch.status,
                &mut leadership,
                &stop,
            )
            .await;
            if !matches!(outcome, Outcome::Refused(_)) {
                watch.leading.store(false, Ordering::Relaxed);
            }
            leadership.release().await;
            match outcome {
                Outcome::Stopped => return,
                Outcome::LostLead => {
                    tracing::warn!(source = %name, "lost the lead of the Spaces stream; another instance takes it");
                }
                Outcome::Refused(err) => {
                    tracing::error!(source = %name, error = %err, "Cisco Spaces refused the API key: the stream stays stopped until the key is fixed");
                    stop.cancelled().await;
                    return;
                }
            }
        }
    })
}

enum Outcome {
    Stopped,
    LostLead,
    Refused(SourceError),
}

#[allow(clippy::too_many_arguments)]
async fn lead_stream(
    name: &str,
    client: &SpacesClient,
    options: &FirehoseOptions,
    store: &Store,
    writer: &GatedWriter,
    status: &FirehoseStatus,
    leadership: &mut whereis_store::Leadership,
    stop: &CancellationToken,
) -> Outcome {
    let position = position_name(name);
    // Records reach the stream out of order across its partitions: a takeover replays a margin
    // before the last record written (upserts are idempotent and never move a device back).
    let start_from = match store.position(&position).await {
        Ok(from) => from.map(|ms| {
            ms.saturating_sub(
                options
                    .replay_margin
                    .as_millis()
                    .try_into()
                    .unwrap_or(i64::MAX),
            )
        }),
        Err(err) => {
            tracing::warn!(source = %name, error = %err, "cannot read the stream position: starting from live records");
            None
        }
    };
    let (records_in, mut records) = mpsc::channel::<FirehoseRecord>(QUEUE);
    // Boxed, so that it can be dropped (closing the connection) before the lead is handed on.
    let mut stream = Box::pin(client.run_firehose(start_from, options, records_in, status));
    let mut lead_check = tokio::time::interval(LEAD_POLL);
    lead_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut checkpoint = tokio::time::interval(CHECKPOINT);
    checkpoint.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut written_up_to: Option<i64> = None;
    let mut saved: Option<i64> = start_from;
    let outcome = loop {
        tokio::select! {
            ended = stream.as_mut() => match ended {
                Ok(()) => break Outcome::Stopped,
                Err(err @ SourceError::Unauthorized(_)) => break Outcome::Refused(err),
                Err(err) => {
                    tracing::warn!(source = %name, error = %err, "the Firehose stream ended");
                    break Outcome::LostLead;
                }
            },
            record = records.recv() => {
                let Some(record) = record else { break Outcome::Stopped };
                if let Some(change) = change_of(name, client.unit(), record.event) {
                    if writer.send(change).await.is_err() {
                        break Outcome::Stopped;
                    }
                }
                written_up_to = Some(written_up_to.map_or(record.timestamp_ms, |t| t.max(record.timestamp_ms)));
            }
            _ = checkpoint.tick() => {
                save_position(name, &position, store, writer, written_up_to, &mut saved).await;
            }
            _ = lead_check.tick() => {
                if !leadership.still_held().await {
                    break Outcome::LostLead;
                }
            }
            () = stop.cancelled() => break Outcome::Stopped,
        }
    };
    // What was received is written before the lead (and the position) is handed on.
    drop(stream);
    while let Ok(record) = records.try_recv() {
        if let Some(change) = change_of(name, client.unit(), record.event) {
            if writer.send(change).await.is_err() {
                break;
            }
        }
        written_up_to =
            Some(written_up_to.map_or(record.timestamp_ms, |t| t.max(record.timestamp_ms)));
    }
    save_position(name, &position, store, writer, written_up_to, &mut saved).await;
    outcome
}

/// Saves `written_up_to` as the position once the writer has committed everything before it.
async fn save_position(
    name: &str,
    position: &str,
    store: &Store,
    writer: &GatedWriter,
    written_up_to: Option<i64>,
    saved: &mut Option<i64>,
) {
    let Some(up_to) = written_up_to else { return };
    if saved.is_some_and(|s| s >= up_to) {
        return;
    }
    if let Err(err) = writer.flush().await {
        tracing::warn!(source = %name, error = %err, "live rows not committed: the position stays where it was");
        return;
    }
    match store.advance_position(position, up_to).await {
        Ok(()) => *saved = Some(up_to),
        Err(err) => tracing::warn!(source = %name, error = %err, "cannot save the stream position"),
    }
}

/// The table change a Firehose event asks for, if any.
pub(crate) fn change_of(source: &str, unit: Unit, event: FirehoseEvent) -> Option<LiveChange> {
    match event {
        FirehoseEvent::Location(update) => {
            let update = *update;
            let last_seen_ms = update.last_seen_ms.unwrap_or_else(super::now_ms);
            Some(LiveChange::Upsert(LiveDevice {
                source: source.to_owned(),
                mac: update.mac,
                username: update.username,
                identity: update.identity,
                floor_key: update.map_id,
                campus: update.campus,
                building: update.building,
                floor: update.floor,
                x: update.x,
                y: update.y,
                unit: unit_name(unit).to_owned(),
                accuracy: update.confidence,
                ssid: update.ssid,
                ip: update.ip,
                status: "ASSOCIATED".to_owned(),
                last_seen_ms,
                updated_at_ms: super::now_ms(),
            }))
        }
        FirehoseEvent::Exit { mac } => Some(LiveChange::Remove {
            source: source.to_owned(),
            mac,
        }),
        FirehoseEvent::KeepAlive | FirehoseEvent::Other(_) => None,
    }
}

/// The unit as the live table stores it.
pub(crate) fn unit_name(unit: Unit) -> &'static str {
    match unit {
        Unit::Feet => "FEET",
        Unit::Meter => "METER",
    }
}

/// The probe of a source whose stream this instance runs: fine while it streams (or another
/// instance does), failing while it reconnects or the key is refused.
pub(crate) fn probe(watch: &StreamWatch, now_ms: i64) -> Result<Probe, SourceError> {
    let (state, detail) = describe(watch, now_ms);
    let detail = detail.unwrap_or_default();
    match state {
        "connected" | "connecting" | "standby" => Ok(Probe {
            api: Api::Spaces,
            detail: format!("stream {state}: {detail}"),
        }),
        _ => Err(SourceError::Status(format!("stream {state}: {detail}"))),
    }
}

/// Reports the stream's state to `/readyz` every few seconds, until `stop`.
pub fn report(name: String, watch: Arc<StreamWatch>, health: Arc<Health>, stop: CancellationToken) {
    tokio::spawn(async move {
        let stream = format!("spaces:{name}");
        let mut every = tokio::time::interval(Duration::from_secs(2));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                () = stop.cancelled() => return,
            }
            let (state, detail) = describe(&watch, super::now_ms());
            health.set_stream(&stream, state, detail);
            let connected = state == "connected" || state == "lagging";
            metrics::gauge!(crate::metrics::SPACES_CONNECTED, "source" => name.clone())
                .set(if connected { 1.0 } else { 0.0 });
            metrics::counter!(crate::metrics::SPACES_RECORDS, "source" => name.clone())
                .absolute(watch.status.records_seen());
        }
    });
}

/// The stream's state for people: a name and what it means now.
pub(crate) fn describe(watch: &StreamWatch, now_ms: i64) -> (&'static str, Option<String>) {
    if !watch.leading.load(Ordering::Relaxed) {
        return (
            "standby",
            Some("another instance holds the stream; this one takes over if it stops".to_owned()),
        );
    }
    let status = &watch.status;
    let seen = status.records_seen();
    let last = status
        .last_record_ms()
        .map(|ms| format!(", last record {} s ago", (now_ms - ms).max(0) / 1000))
        .unwrap_or_default();
    match status.state() {
        StreamState::Connected
            if status
                .last_record_ms()
                .is_some_and(|ms| now_ms - ms > LAGGING_AFTER_MS) =>
        {
            ("lagging", Some(format!("{seen} records{last}")))
        }
        StreamState::Connected => ("connected", Some(format!("{seen} records{last}"))),
        StreamState::Connecting => ("connecting", Some(format!("{seen} records so far{last}"))),
        StreamState::Waiting { reason } => ("reconnecting", Some(format!("{reason}{last}"))),
        StreamState::Refused { reason } => ("refused", Some(reason)),
    }
}
