//! Live location sources: Cisco Spaces and Meraki push positions; whereis keeps each device's latest
//! fix in the store's `device_locations` table and answers lookups from it.
//!
//! - [`LiveSource`] is a [`LocationSource`] over that table, so the Locator, maps, chat, web and the
//!   privacy rules treat a live source like a CMX server.
//! - `spaces.rs` holds the Firehose stream open (one instance per source, by the store's leadership)
//!   and writes what it delivers; `meraki.rs` receives the Scanning API's posts (every instance).
//! - Both write through the store's batching [`LiveWriter`]; rows past `max_age` are purged.
//!
//! A device is found when the identity asked for (one of the configured username variants) equals
//! the identity the service reported, ignoring case: the normalised username column only narrows the
//! search. So a guest's `jdoe@gmail.com` is not taken for `CORP\jdoe` unless a variant says so.

pub mod meraki;
pub mod spaces;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;
use whereis_location::live::meraki::MerakiDashboard;
use whereis_location::live::spaces::SpacesClient;
use whereis_location::wire::spaces::username_of_identity;
use whereis_location::{
    Api, Device, FloorPlan, LocationSource, Probe, SourceAnswer, SourceError, Unit,
};
use whereis_store::{LiveBatch, LiveDevice, Store, StoreError};

use crate::config::{LiveKind, LiveSourceConfig, Origin};
use crate::health::Health;

/// Rows a building roster reads at most from one live source.
const ROSTER_LIMIT: u32 = 5_000;
/// How often rows past `max_age` are purged.
const PURGE_INTERVAL: Duration = Duration::from_secs(60);

/// The service client behind a live source: floor plans, images and probes.
#[derive(Clone)]
pub enum LiveClient {
    /// Cisco Spaces partner API.
    Spaces(Arc<SpacesClient>),
    /// Meraki Dashboard API.
    Meraki(Arc<MerakiDashboard>),
}

impl LiveClient {
    /// Builds the client of one configured source.
    pub fn new(config: &LiveSourceConfig) -> Result<LiveClient, SourceError> {
        Ok(match &config.kind {
            LiveKind::Spaces => {
                LiveClient::Spaces(Arc::new(SpacesClient::new(config.settings.clone())?))
            }
            LiveKind::Meraki(receiver) => LiveClient::Meraki(Arc::new(MerakiDashboard::new(
                config.settings.clone(),
                &receiver.network_id,
            )?)),
        })
    }

    fn api(&self) -> Api {
        match self {
            LiveClient::Spaces(_) => Api::Spaces,
            LiveClient::Meraki(_) => Api::Meraki,
        }
    }

    async fn floor_plan(&self, key: &str) -> Result<FloorPlan, SourceError> {
        match self {
            LiveClient::Spaces(client) => client.floor_plan(key).await,
            LiveClient::Meraki(client) => client.floor_plan(key).await,
        }
    }

    async fn floor_image(&self, key: &str) -> Result<Vec<u8>, SourceError> {
        match self {
            LiveClient::Spaces(client) => client.map_image(key).await,
            LiveClient::Meraki(client) => client.floor_image(key).await,
        }
    }

    async fn probe(&self) -> Result<Probe, SourceError> {
        match self {
            LiveClient::Spaces(client) => client.probe().await,
            LiveClient::Meraki(client) => client.probe().await,
        }
    }
}

/// A location source answered from the live table.
pub struct LiveSource {
    config: LiveSourceConfig,
    name: String,
    priority: i32,
    unit: Unit,
    origin: Origin,
    store: Store,
    client: LiveClient,
    /// The Spaces stream's state, once this instance runs it (`serve`): probes then read it
    /// instead of opening another stream.
    stream: std::sync::OnceLock<Arc<spaces::StreamWatch>>,
}

impl LiveSource {
    /// The source `config` over `store`'s live table.
    pub fn new(config: &LiveSourceConfig, store: Store) -> Result<LiveSource, SourceError> {
        Ok(LiveSource {
            config: config.clone(),
            name: config.name().to_owned(),
            priority: config.priority,
            unit: config.unit,
            origin: config.origin,
            store,
            client: LiveClient::new(config)?,
            stream: std::sync::OnceLock::new(),
        })
    }

    /// The service client (for the stream and the receiver).
    pub fn client(&self) -> &LiveClient {
        &self.client
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &LiveSourceConfig {
        &self.config
    }

    /// Turns rows into devices, each with its floor plan when the service has one for it.
    async fn devices(&self, rows: Vec<LiveDevice>) -> Vec<Device> {
        let now_ms = now_ms();
        let mut devices = Vec::with_capacity(rows.len());
        for row in rows {
            let plan = match &row.floor_key {
                Some(key) if row.x.is_some() && row.y.is_some() => {
                    match self.client.floor_plan(key).await {
                        Ok(plan) => Some(plan),
                        Err(err) => {
                            tracing::warn!(source = %self.name, floor = %key, error = %err, "floor plan unavailable: the device is listed without a map");
                            None
                        }
                    }
                }
                _ => None,
            };
            devices.push(device_of(
                row,
                self.client.api(),
                self.unit,
                self.origin,
                plan,
                now_ms,
            ));
        }
        devices
    }
}

impl LocationSource for LiveSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn priority(&self) -> i32 {
        self.priority
    }

    fn locate<'a>(&'a self, identity: &'a str) -> BoxFuture<'a, Result<SourceAnswer, SourceError>> {
        Box::pin(async move {
            let Some(username) = username_of_identity(identity) else {
                return Ok(SourceAnswer::default());
            };
            let rows = self
                .store
                .live_devices(&self.name, &username)
                .await
                .map_err(|err| SourceError::Status(format!("live table: {err}")))?;
            let rows = rows
                .into_iter()
                .filter(|row| {
                    row.identity
                        .as_deref()
                        .is_some_and(|known| known.trim().eq_ignore_ascii_case(identity.trim()))
                })
                .collect();
            Ok(SourceAnswer {
                devices: self.devices(rows).await,
                rejected: Vec::new(),
            })
        })
    }

    fn probe(&self) -> BoxFuture<'_, Result<Probe, SourceError>> {
        Box::pin(async move {
            let probe = match self.stream.get() {
                Some(watch) => spaces::probe(watch, now_ms())?,
                None => self.client.probe().await?,
            };
            let summary = self
                .store
                .live_summary(&self.name)
                .await
                .map_err(|err| SourceError::Status(format!("live table: {err}")))?;
            let newest = match summary.newest_last_seen_ms {
                Some(ms) => format!(", newest fix {} s old", (now_ms() - ms).max(0) / 1000),
                None => String::new(),
            };
            Ok(Probe {
                api: probe.api,
                detail: format!("{}; {} devices held{newest}", probe.detail, summary.devices),
            })
        })
    }

    fn list_building<'a>(
        &'a self,
        building: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Device>, SourceError>> {
        Box::pin(async move {
            let rows = self
                .store
                .live_building(&self.name, building, ROSTER_LIMIT)
                .await
                .map_err(|err| SourceError::Status(format!("live table: {err}")))?;
            Ok(self.devices(rows).await)
        })
    }

    fn floor_image<'a>(
        &'a self,
        image_name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<u8>, SourceError>> {
        Box::pin(async move { self.client.floor_image(image_name).await })
    }
}

/// One row as a located device: positions turned to the top-left origin the maps use.
fn device_of(
    row: LiveDevice,
    api: Api,
    unit: Unit,
    origin: Origin,
    plan: Option<FloorPlan>,
    now_ms: i64,
) -> Device {
    let hierarchy = [&row.campus, &row.building, &row.floor]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(">");
    let unit = Unit::parse(&row.unit).unwrap_or(unit);
    let (x, y) = match (row.x, row.y, &plan) {
        (Some(x), Some(y), Some(plan)) => match origin {
            Origin::TopLeft => (x, y),
            Origin::BottomLeft => (x, plan.length - y),
        },
        (Some(x), Some(y), None) => (x, y),
        _ => (0.0, 0.0),
    };
    let age_seconds = u64::try_from((now_ms - row.last_seen_ms).max(0) / 1000).unwrap_or(0);
    Device {
        source: row.source,
        api,
        mac: row.mac,
        identity: row.identity,
        ip: row.ip,
        ssid: row.ssid,
        status: row.status,
        hierarchy,
        campus: row.campus,
        building: row.building,
        floor: row.floor,
        x,
        y,
        unit,
        floor_width: plan.as_ref().map(|p| p.width),
        floor_length: plan.as_ref().map(|p| p.length),
        last_seen_seconds: Some(age_seconds),
        confidence: row.accuracy,
        stale: false,
        manufacturer: None,
        floor_ref_id: row.floor_key,
        floor_plan: plan,
        priority: 0,
    }
}

/// The current time in Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The live sources' tasks of one instance: Spaces streams, Meraki receivers, the purge.
pub struct Running {
    /// The Meraki receivers, for `/ingest/meraki/{source}`.
    pub receivers: Arc<meraki::Receivers>,
    /// The Spaces streams' state, by source name.
    pub streams: Vec<(String, Arc<spaces::StreamWatch>)>,
    /// The Spaces consumers: each writes what it received and saves its position when stopped.
    consumers: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Waits (at most `limit`) for the consumers to write what they received and save their
    /// positions, after `stop` was cancelled.
    pub async fn wind_down(self, limit: Duration) {
        let all = futures::future::join_all(self.consumers);
        if tokio::time::timeout(limit, all).await.is_err() {
            tracing::warn!(
                "live streams still winding down after {} ms",
                limit.as_millis()
            );
        }
    }
}

/// The organisation's working hours as the live table applies them: outside them nothing that
/// arrives is kept, and what is held is purged (read in the organisation's time zone: a stream does
/// not say whose time zone a device is in).
#[derive(Debug, Clone)]
pub struct OfficeHours {
    hours: Option<crate::privacy::Hours>,
    timezone: jiff::tz::TimeZone,
    clock: Arc<dyn crate::privacy::Clock>,
}

impl OfficeHours {
    /// The working hours of `privacy` (none: always open), on `clock`.
    pub fn new(
        privacy: &crate::config::PrivacyConfig,
        clock: Arc<dyn crate::privacy::Clock>,
    ) -> OfficeHours {
        OfficeHours {
            hours: privacy.working_hours,
            timezone: privacy.timezone.clone(),
            clock,
        }
    }

    /// Whether positions may be kept now.
    pub fn open_now(&self) -> bool {
        let Some(hours) = self.hours else {
            return true;
        };
        crate::privacy::local_day_minute(self.clock.now_ms(), &self.timezone)
            .is_some_and(|(day, minute)| hours.is_open(day, minute))
    }
}

/// The live table's writer behind the working hours: outside them an upsert is dropped (counted)
/// instead of written; removals always go through.
#[derive(Clone)]
pub struct GatedWriter {
    writer: whereis_store::LiveWriter,
    hours: Arc<OfficeHours>,
}

impl GatedWriter {
    /// `writer` behind `hours`.
    pub fn new(writer: whereis_store::LiveWriter, hours: Arc<OfficeHours>) -> GatedWriter {
        GatedWriter { writer, hours }
    }

    /// Queues `change`, unless it is a position arriving outside working hours.
    pub async fn send(&self, change: whereis_store::LiveChange) -> Result<(), StoreError> {
        if matches!(change, whereis_store::LiveChange::Upsert(_)) && !self.hours.open_now() {
            metrics::counter!(crate::metrics::LIVE_OUTSIDE_HOURS).increment(1);
            return Ok(());
        }
        self.writer.send(change).await
    }

    /// Waits until everything queued so far is committed.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.writer.flush().await
    }
}

/// Starts every live source's task: one shared writer (a batch per second or 5,000 changes) behind
/// the working hours, the Spaces consumers (each under the store's leadership), the Meraki
/// receivers and their client polls, the health reports, and the purge of rows past `max_age` (of
/// every row, outside working hours).
pub fn start(
    sources: &[Arc<LiveSource>],
    store: &Store,
    health: &Arc<Health>,
    max_age: Duration,
    hours: OfficeHours,
    stop: &CancellationToken,
) -> Running {
    let hours = Arc::new(hours);
    let store_writer = store.live_writer(LiveBatch::default());
    let writer = GatedWriter::new(store_writer.clone(), Arc::clone(&hours));
    let mut receivers = meraki::Receivers::default();
    let mut streams = Vec::new();
    let mut consumers = Vec::new();
    for source in sources {
        let name = source.name.clone();
        match (&source.config.kind, &source.client) {
            (LiveKind::Meraki(config), LiveClient::Meraki(dashboard)) => {
                let receiver = Arc::new(meraki::Receiver::new(
                    &name,
                    config,
                    source.unit,
                    writer.clone(),
                ));
                meraki::spawn_user_poll(Arc::clone(&receiver), Arc::clone(dashboard), stop.clone());
                meraki::report(Arc::clone(&receiver), Arc::clone(health), stop.clone());
                receivers.insert(receiver);
            }
            (_, LiveClient::Spaces(client)) => {
                let watch = Arc::clone(source.stream.get_or_init(Default::default));
                consumers.push(spaces::spawn(
                    name.clone(),
                    Arc::clone(client),
                    store.clone(),
                    writer.clone(),
                    Arc::clone(&watch),
                    stop.clone(),
                ));
                spaces::report(
                    name.clone(),
                    Arc::clone(&watch),
                    Arc::clone(health),
                    stop.clone(),
                );
                streams.push((name, watch));
            }
            (_, LiveClient::Meraki(_)) => {}
        }
    }
    if !sources.is_empty() {
        spawn_purge(store.clone(), max_age, hours, stop.clone());
        spawn_writer_metrics(store_writer, stop.clone());
    }
    Running {
        receivers: Arc::new(receivers),
        streams,
        consumers,
    }
}

/// Copies the writer's counters to `/metrics` every few seconds, until `stop`.
fn spawn_writer_metrics(writer: whereis_store::LiveWriter, stop: CancellationToken) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = every.tick() => {}
                () = stop.cancelled() => return,
            }
            let stats = writer.stats();
            metrics::counter!(crate::metrics::LIVE_CHANGES).absolute(stats.changes_committed);
            metrics::counter!(crate::metrics::LIVE_BATCH_FAILURES).absolute(stats.batches_failed);
        }
    });
}

/// Deletes rows older than `max_age` (every row, outside working hours) now and then every
/// minute, until `stop`.
pub fn spawn_purge(
    store: Store,
    max_age: Duration,
    hours: Arc<OfficeHours>,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(PURGE_INTERVAL);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let max_age_ms = i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                () = stop.cancelled() => return,
            }
            let before = if hours.open_now() {
                now_ms().saturating_sub(max_age_ms)
            } else {
                i64::MAX
            };
            match store.purge_live_before(before).await {
                Ok(0) => {}
                Ok(purged) => tracing::debug!(purged, "live devices past max_age purged"),
                Err(err) => tracing::warn!(error = %err, "purging the live table failed"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> LiveDevice {
        LiveDevice {
            source: "meraki-west".to_owned(),
            mac: "aa:bb:cc:00:11:22".to_owned(),
            username: Some("jdoe".to_owned()),
            identity: Some("CORP\\jdoe".to_owned()),
            floor_key: Some("g_1".to_owned()),
            campus: None,
            building: Some("Building 7".to_owned()),
            floor: Some("Level 2".to_owned()),
            x: Some(10.0),
            y: Some(4.0),
            unit: "METER".to_owned(),
            accuracy: Some(3.0),
            ssid: Some("CORP-WIFI".to_owned()),
            ip: None,
            status: "ASSOCIATED".to_owned(),
            last_seen_ms: 1_000_000,
            updated_at_ms: 1_000_000,
        }
    }

    fn plan() -> FloorPlan {
        FloorPlan {
            floor_ref_id: Some("g_1".to_owned()),
            width: 50.0,
            length: 30.0,
            offset_x: 0.0,
            offset_y: 0.0,
            unit: Unit::Meter,
            image_name: Some("g_1".to_owned()),
        }
    }

    #[test]
    fn a_bottom_left_position_is_turned_to_top_left_on_its_floor() {
        let device = device_of(
            row(),
            Api::Meraki,
            Unit::Meter,
            Origin::BottomLeft,
            Some(plan()),
            1_012_500,
        );
        assert_eq!((device.x, device.y), (10.0, 26.0));
        assert_eq!(device.floor_length, Some(30.0));
        assert_eq!(device.hierarchy, "Building 7>Level 2");
        assert_eq!(device.last_seen_seconds, Some(12));
        assert_eq!(device.unit, Unit::Meter);
    }

    #[test]
    fn a_top_left_position_is_kept() {
        let device = device_of(
            row(),
            Api::Spaces,
            Unit::Feet,
            Origin::TopLeft,
            Some(plan()),
            1_000_000,
        );
        assert_eq!((device.x, device.y), (10.0, 4.0));
    }

    #[test]
    fn a_device_without_a_position_has_no_floor_plan_to_draw_on() {
        let mut unplaced = row();
        unplaced.x = None;
        let device = device_of(unplaced, Api::Spaces, Unit::Feet, Origin::TopLeft, None, 0);
        assert!(device.floor_plan.is_none());
        assert_eq!(device.floor.as_deref(), Some("Level 2"));
    }

    #[test]
    fn a_fix_from_the_future_is_zero_seconds_old() {
        let device = device_of(row(), Api::Spaces, Unit::Feet, Origin::TopLeft, None, 0);
        assert_eq!(device.last_seen_seconds, Some(0));
    }
}
