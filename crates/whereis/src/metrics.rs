//! `/metrics`: the Prometheus exporter and the names of the series the binary records itself.
//! Library crates record through the `metrics` facade; this module installs the one recorder that
//! collects them all, describes every series, and renders the text format on each scrape.

use std::sync::OnceLock;

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Lookups answered, by `channel` and `outcome`.
pub const LOOKUPS: &str = "whereis_lookups_total";
/// Lookups refused by the rate limit, by `channel`.
pub const RATE_LIMIT_REFUSALS: &str = "whereis_rate_limit_refusals_total";
/// Webhook deliveries, by `result`.
pub const WEBHOOK_DELIVERIES: &str = "whereis_webhook_deliveries_total";
/// Chat messages being worked on or waiting.
pub const BOT_QUEUE_DEPTH: &str = "whereis_bot_queue_depth";
/// 1 while the Webex websocket is authorised.
pub const WEBSOCKET_CONNECTED: &str = "whereis_websocket_connected";
/// Websocket connections opened after the first.
pub const WEBSOCKET_RECONNECTS: &str = "whereis_websocket_reconnects_total";
/// Store connections, by `state` (idle, in_use).
pub const STORE_CONNECTIONS: &str = "whereis_store_connections";
/// Store failures, by `kind` (unavailable, query).
pub const STORE_ERRORS: &str = "whereis_store_errors_total";
/// Meraki Scanning API posts, by `source` and `result` (stored, wrong_secret, other_network, malformed).
pub const MERAKI_POSTS: &str = "whereis_meraki_posts_total";
/// Firehose records received, by `source`.
pub const SPACES_RECORDS: &str = "whereis_spaces_records_total";
/// 1 while this instance holds a Spaces source's stream and it is connected, by `source`.
pub const SPACES_CONNECTED: &str = "whereis_spaces_stream_connected";
/// Live table changes committed by this instance.
pub const LIVE_CHANGES: &str = "whereis_live_changes_total";
/// Live table batches that failed (their changes are repaired by the next update).
pub const LIVE_BATCH_FAILURES: &str = "whereis_live_batch_failures_total";
/// Positions streams delivered outside working hours, dropped instead of kept.
pub const LIVE_OUTSIDE_HOURS: &str = "whereis_live_outside_hours_total";

/// Upper bounds of the latency histograms, in seconds: from a cached map (a millisecond) to a
/// source at its deadline (seconds).
const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's exporter, installed as the global recorder on first use. `None` when another
/// recorder was installed first (the series are then not ours to render).
pub fn exporter() -> Option<&'static PrometheusHandle> {
    HANDLE.get_or_init(install).as_ref()
}

fn install() -> Option<PrometheusHandle> {
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &LATENCY_BUCKETS)
        .ok()?
        .build_recorder();
    let handle = recorder.handle();
    if metrics::set_global_recorder(recorder).is_err() {
        tracing::warn!("a metrics recorder was already installed: /metrics stays empty");
        return None;
    }
    describe();
    Some(handle)
}

/// How often recorded histogram samples are folded into their buckets when nobody scrapes.
const UPKEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// Installs the exporter (see [`exporter`]) and folds histogram samples into their buckets every
/// few seconds until `stop`: the recorder keeps every raw sample until then, so without a scraper
/// memory would grow with each lookup (a dozen samples each).
pub fn start(stop: tokio_util::sync::CancellationToken) {
    let Some(handle) = exporter() else { return };
    tokio::spawn(async move {
        let mut every = tokio::time::interval(UPKEEP_INTERVAL);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => handle.run_upkeep(),
                () = stop.cancelled() => return,
            }
        }
    });
}

/// The text exposition format of every series recorded so far.
pub fn render() -> String {
    match exporter() {
        Some(handle) => {
            // Histograms are aggregated lazily; without upkeep their buckets would grow unbounded.
            handle.run_upkeep();
            handle.render()
        }
        None => String::new(),
    }
}

fn describe() {
    describe_counter!(
        MERAKI_POSTS,
        "Meraki Scanning API posts, by source and result (stored, wrong_secret, other_network, malformed)."
    );
    describe_counter!(
        SPACES_RECORDS,
        "Cisco Spaces Firehose records received, by source."
    );
    describe_gauge!(
        SPACES_CONNECTED,
        "1 while this instance holds the source's Firehose stream and it is connected."
    );
    describe_counter!(
        LIVE_CHANGES,
        "Live device table changes committed by this instance."
    );
    describe_counter!(
        LIVE_BATCH_FAILURES,
        "Live device table batches that failed to commit."
    );
    describe_counter!(
        LIVE_OUTSIDE_HOURS,
        "Positions delivered outside working hours, dropped instead of kept."
    );
    describe_counter!(LOOKUPS, "Lookups answered, by channel and outcome.");
    describe_counter!(
        RATE_LIMIT_REFUSALS,
        "Lookups refused because the requester used up their hourly allowance."
    );
    describe_counter!(
        WEBHOOK_DELIVERIES,
        "Webex webhook deliveries, by what was done with them."
    );
    describe_gauge!(
        BOT_QUEUE_DEPTH,
        "Chat messages being answered or waiting for a slot."
    );
    describe_gauge!(
        WEBSOCKET_CONNECTED,
        "1 while the Webex websocket is connected and authorised."
    );
    describe_counter!(
        WEBSOCKET_RECONNECTS,
        "Webex websocket connections opened again after a drop."
    );
    describe_gauge!(
        STORE_CONNECTIONS,
        "Connections of the store's pool, by state."
    );
    describe_counter!(STORE_ERRORS, "Store operations that failed, by kind.");
    describe_histogram!(
        whereis_location::REQUEST_DURATION_METRIC,
        Unit::Seconds,
        "Time from sending a request to a location server to having its whole answer, by source and API."
    );
    describe_counter!(
        whereis_location::ERRORS_METRIC,
        "Failed requests to location servers, by source and kind."
    );
    describe_counter!(
        whereis_location::DEADLINE_HITS_METRIC,
        "Lookups in which a source had not answered by the lookup deadline."
    );
    describe_counter!(
        whereis_floormap::MAP_CACHE_HITS_TOTAL,
        "Floor images found in a cache, by level (memory, disk)."
    );
    describe_counter!(
        whereis_floormap::MAP_CACHE_MISSES_TOTAL,
        "Floor images that had to be downloaded."
    );
    describe_gauge!(
        whereis_floormap::MAP_CACHE_BYTES,
        Unit::Bytes,
        "Bytes of decoded floor images held in memory."
    );
    describe_histogram!(
        whereis_floormap::MAP_DECODE_DURATION_SECONDS,
        Unit::Seconds,
        "Time to decode a floor image from its original bytes."
    );
    describe_histogram!(
        whereis_floormap::MAP_RENDER_DURATION_SECONDS,
        Unit::Seconds,
        "Time to draw a position on a floor image and encode the PNG."
    );
    describe_counter!(
        whereis_webex::REQUESTS_METRIC,
        "Requests to the Webex REST API, by operation and result."
    );
    describe_counter!(
        whereis_webex::RATE_LIMIT_WAITS_METRIC,
        "Times Webex answered 429 and a request waited."
    );
    describe_counter!(
        whereis_webex::RATE_LIMIT_WAIT_SECONDS_METRIC,
        Unit::Seconds,
        "Seconds spent waiting for Webex's rate limit."
    );
}
