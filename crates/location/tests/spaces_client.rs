//! The Cisco Spaces client against the simulator's Spaces double on loopback: the Firehose (records,
//! dedupe, resume, watchdog, refusals, rate limits, maps learned per location, bad lines) and the
//! map endpoints.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use whereis_location::live::spaces::{
    FirehoseOptions, FirehoseStatus, SpacesClient, StreamState, FIREHOSE_PATH,
};
use whereis_location::wire::spaces::{FirehoseEvent, FirehoseRecord, LiveUpdate};
use whereis_location::{Api, LiveSettings, Secret, SourceError, Unit};
use whereis_sim::{Fault, Scenario, ServerHandle, Simulator};

const KEY: &str = "spaces-test-key";
const WAIT: Duration = Duration::from_secs(10);

const SCENARIO: &str = r#"
[[servers]]
name = "spaces"
kind = "spaces"
username = "unused"
password = "spaces-test-key"
interval_ms = 3600000
keepalive_ms = 3600000

[[campuses]]
name = "HQ Campus"
[[campuses.buildings]]
name = "Building 5"
[[campuses.buildings.floors]]
name = "Level 1"
floor_ref_id = "723413320329068648"
width = 300.0
length = 150.0
offset_x = 4.0
offset_y = 2.0
image = "l1.png"
[[campuses.buildings.floors]]
name = "Level 2"
floor_ref_id = "723413320329068649"
width = 200.0
length = 100.0
image = "l2.png"

[[people]]
username = "jdoe"
display_name = "Jane Doe"
[[people.devices]]
mac = "00:11:22:33:44:55"
identity = "CORP\\jdoe"
servers = ["spaces"]
floor = "HQ Campus>Building 5>Level 1"
x = 120.5
y = 40.0
ssid = "CORP"
ip = ["10.0.0.7"]
last_heard_seconds = 5
confidence = 16.0
[[people.devices.moves]]
floor = "HQ Campus>Building 5>Level 2"
x = 30.0
y = 12.5

[[people]]
username = "asmith"
display_name = "Alex Smith"
[[people.devices]]
mac = "66:77:88:99:aa:bb"
servers = ["spaces"]
floor = "HQ Campus>Building 5>Level 2"
x = 10.0
y = 20.0
"#;

const LEVEL_1_MAP: &str = "map-723413320329068648";
const LEVEL_2_MAP: &str = "map-723413320329068649";

async fn simulator() -> (Simulator, ServerHandle) {
    let scenario = Scenario::from_toml_str(SCENARIO).expect("valid scenario");
    let sim = Simulator::start(scenario).await.expect("simulator starts");
    let server = sim.server("spaces").expect("spaces server").clone();
    (sim, server)
}

fn client(server: &ServerHandle, key: &str) -> Arc<SpacesClient> {
    Arc::new(
        SpacesClient::new(LiveSettings {
            name: "spaces-test".to_owned(),
            url: server.base_url(),
            api_key: Secret::new(key),
            ca_file: None,
            insecure_skip_tls_verify: false,
            timeout: Duration::from_secs(5),
            image_timeout: Duration::from_secs(10),
            network: whereis_net::Network::direct(),
        })
        .expect("client"),
    )
}

/// Short waits for tests; silence long enough not to trip unless a test wants it to.
fn options() -> FirehoseOptions {
    FirehoseOptions {
        silence: Duration::from_secs(5),
        replay_margin: Duration::from_secs(60),
        backoff_min: Duration::from_millis(10),
        backoff_max: Duration::from_millis(50),
    }
}

struct Running {
    records: mpsc::Receiver<FirehoseRecord>,
    status: Arc<FirehoseStatus>,
    task: JoinHandle<Result<(), SourceError>>,
}

fn run(client: &Arc<SpacesClient>, start_from: Option<i64>, options: FirehoseOptions) -> Running {
    let (tx, records) = mpsc::channel(1024);
    let status = Arc::new(FirehoseStatus::default());
    let task = tokio::spawn({
        let client = client.clone();
        let status = status.clone();
        async move { client.run_firehose(start_from, &options, tx, &status).await }
    });
    Running {
        records,
        status,
        task,
    }
}

impl Running {
    async fn next(&mut self) -> FirehoseRecord {
        tokio::time::timeout(WAIT, self.records.recv())
            .await
            .expect("a record in time")
            .expect("stream still running")
    }

    async fn take(&mut self, n: usize) -> Vec<FirehoseRecord> {
        let mut records = Vec::with_capacity(n);
        for _ in 0..n {
            records.push(self.next().await);
        }
        records
    }

    /// Waits until `condition` holds on the status (polled; the status has no notification).
    async fn until(&self, what: &str, condition: impl Fn(&FirehoseStatus) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !condition(&self.status) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

async fn within<F: std::future::Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

fn update(record: &FirehoseRecord) -> &LiveUpdate {
    match &record.event {
        FirehoseEvent::Location(update) => update,
        other => panic!("a location update, got {other:?}"),
    }
}

fn stream_queries(server: &ServerHandle) -> Vec<Option<String>> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.path == FIREHOSE_PATH)
        .map(|r| r.query)
        .collect()
}

#[tokio::test]
async fn location_updates_arrive_field_for_field_and_exits_too() {
    let (_sim, server) = simulator().await;
    let spaces = client(&server, KEY);
    let mut running = run(&spaces, None, options());
    within("the stream", server.wait_for_open_streams(1)).await;
    assert_eq!(server.emit_now(), 2);
    let records = running.take(2).await;
    assert_eq!(running.status.state(), StreamState::Connected);
    assert!(running.status.connected_since().is_some());
    let sent = server.spaces_records();
    assert_eq!(
        records
            .iter()
            .map(|r| (r.uid.clone(), r.timestamp_ms))
            .collect::<Vec<_>>(),
        sent.iter()
            .map(|r| (r.uid.clone(), r.timestamp_ms))
            .collect::<Vec<_>>()
    );
    let jdoe = update(&records[0]);
    let now = chrono::Utc::now().timestamp_millis();
    assert_eq!(jdoe.mac, "00:11:22:33:44:55");
    assert_eq!(jdoe.identity.as_deref(), Some("CORP\\jdoe"));
    assert_eq!(jdoe.username.as_deref(), Some("jdoe"));
    assert_eq!(jdoe.map_id.as_deref(), Some(LEVEL_1_MAP));
    assert_eq!(
        jdoe.location_id.as_deref(),
        Some("location-723413320329068648")
    );
    assert_eq!(jdoe.campus.as_deref(), Some("HQ Campus"));
    assert_eq!(jdoe.building.as_deref(), Some("Building 5"));
    assert_eq!(jdoe.floor.as_deref(), Some("Level 1"));
    assert_eq!((jdoe.x, jdoe.y), (Some(120.5), Some(40.0)));
    assert_eq!(jdoe.confidence, Some(16.0));
    assert_eq!(jdoe.ssid.as_deref(), Some("CORP"));
    assert_eq!(jdoe.ip.as_deref(), Some("10.0.0.7"));
    let last_seen = jdoe.last_seen_ms.expect("lastSeen");
    assert!(
        (now - 10_000..=now - 4_000).contains(&last_seen),
        "{last_seen} vs {now}"
    );
    let asmith = update(&records[1]);
    assert_eq!(asmith.username.as_deref(), Some("asmith"));
    assert_eq!(asmith.ip, None);

    // The next round finds the walker on her next stop.
    server.emit_now();
    let moved = running.take(2).await;
    let jdoe = update(&moved[0]);
    assert_eq!(jdoe.floor.as_deref(), Some("Level 2"));
    assert_eq!(jdoe.map_id.as_deref(), Some(LEVEL_2_MAP));
    assert_eq!((jdoe.x, jdoe.y), (Some(30.0), Some(12.5)));

    // A keep-alive is swallowed; an exit is passed on.
    server.emit_keepalive();
    server.exit_device("00:11:22:33:44:55");
    let exit = running.next().await;
    assert_eq!(
        exit.event,
        FirehoseEvent::Exit {
            mac: "00:11:22:33:44:55".to_owned()
        }
    );
    assert_eq!(running.status.records_seen(), 6);
    assert_eq!(
        running.status.last_record_ms(),
        server.spaces_records().last().map(|r| r.timestamp_ms)
    );
    assert!(running.status.last_activity().is_some());
    assert_eq!(
        stream_queries(&server),
        [None],
        "no fromTimestamp: latest only"
    );
    assert_eq!(running.status.reconnects(), 0);
}

#[tokio::test]
async fn a_record_sent_twice_arrives_once() {
    let (_sim, server) = simulator().await;
    let spaces = client(&server, KEY);
    let mut running = run(&spaces, None, options());
    within("the stream", server.wait_for_open_streams(1)).await;

    server.set_duplicate_records(true);
    server.emit_now();
    let first = running.take(2).await;
    running
        .until("two duplicates", |s| s.duplicates_dropped() == 2)
        .await;
    server.set_duplicate_records(false);
    server.exit_device("66:77:88:99:aa:bb");
    let next = running.next().await;
    assert!(matches!(next.event, FirehoseEvent::Exit { .. }), "{next:?}");
    assert_ne!(first[0].uid, first[1].uid);
    assert_eq!(running.status.records_seen(), 3);
}

#[tokio::test]
async fn a_cut_stream_resumes_from_the_last_record_minus_the_margin_and_loses_nothing() {
    let (_sim, server) = simulator().await;
    let spaces = client(&server, KEY);
    let mut running = run(&spaces, None, options());
    within("the stream", server.wait_for_open_streams(1)).await;
    server.emit_now();
    let mut received = running.take(2).await;
    let last = running.status.last_record_ms().expect("a record");

    // Cut the stream and keep the service failing while more records are written.
    server.set_fault(Fault::Http500);
    let before = server.request_count();
    server.disconnect_streams();
    within("a failed reconnect", server.wait_for_requests(before + 1)).await;
    server.emit_now();
    server.exit_device("00:11:22:33:44:55");
    server.set_fault(Fault::None);
    within("the second stream", server.wait_for_streams_opened(2)).await;

    received.extend(running.take(3).await);
    running
        .until("the replayed records dropped", |s| {
            s.duplicates_dropped() == 2
        })
        .await;
    let sent: Vec<String> = server.spaces_records().into_iter().map(|r| r.uid).collect();
    let got: Vec<String> = received.iter().map(|r| r.uid.clone()).collect();
    assert_eq!(got, sent, "every record once, in order");
    let queries = stream_queries(&server);
    assert_eq!(queries[0], None);
    let resume = format!("fromTimestamp={}", last - 60_000);
    assert!(queries.len() >= 3, "{queries:?}");
    assert!(
        queries[1..].iter().all(|q| q.as_deref() == Some(&resume)),
        "{queries:?} vs {resume}"
    );
    assert!(running.status.reconnects() >= 2);
    assert_eq!(running.status.state(), StreamState::Connected);
}

#[tokio::test]
async fn the_first_connection_replays_from_the_stored_position() {
    let (_sim, server) = simulator().await;
    server.emit_now();
    server.emit_now();
    let sent = server.spaces_records();
    let from = sent[2].timestamp_ms;
    let spaces = client(&server, KEY);
    let mut running = run(&spaces, Some(from), options());
    let replayed: Vec<String> = running
        .take(sent.iter().filter(|r| r.timestamp_ms >= from).count())
        .await
        .into_iter()
        .map(|r| r.uid)
        .collect();
    let expected: Vec<String> = sent
        .iter()
        .filter(|r| r.timestamp_ms >= from)
        .map(|r| r.uid.clone())
        .collect();
    assert_eq!(replayed, expected);
    assert_eq!(
        stream_queries(&server),
        [Some(format!("fromTimestamp={from}"))]
    );
}

#[tokio::test]
async fn silence_trips_the_watchdog_but_keep_alives_keep_the_stream() {
    let (_sim, server) = simulator().await;
    let spaces = client(&server, KEY);
    let options = FirehoseOptions {
        silence: Duration::from_millis(300),
        ..options()
    };
    server.set_keepalive_interval(Duration::from_millis(40));
    let running = run(&spaces, None, options);
    // Well over the silence limit of keep-alives only, on one connection.
    running
        .until("keep-alives", |s| s.records_seen() >= 20)
        .await;
    assert_eq!(server.streams_opened(), 1);
    assert_eq!(running.status.reconnects(), 0);

    server.set_silent(true);
    within("a reconnect", server.wait_for_streams_opened(2)).await;
    assert!(running.status.reconnects() >= 1);
    server.set_silent(false);
    running
        .until("connected again", |s| s.state() == StreamState::Connected)
        .await;
}

#[tokio::test]
async fn a_refused_key_stops_the_stream_without_retrying() {
    let (_sim, server) = simulator().await;
    let wrong = client(&server, "not-the-key");
    let running = run(&wrong, None, options());
    let result = within("the refusal", running.task).await.expect("no panic");
    assert!(
        matches!(result, Err(SourceError::Unauthorized(401))),
        "{result:?}"
    );
    assert_eq!(server.request_count(), 1, "no retry with a wrong key");
    assert!(matches!(
        running.status.state(),
        StreamState::Refused { .. }
    ));
    assert!(matches!(
        wrong.probe().await,
        Err(SourceError::Unauthorized(401))
    ));

    // The right key, refused by the service all the same.
    let right = client(&server, KEY);
    let probe = right.probe().await.expect("the key is accepted");
    assert_eq!(probe.api, Api::Spaces);
    server.set_fault(Fault::Unauthorized);
    let before = server.request_count();
    let running = run(&right, None, options());
    let result = within("the refusal", running.task).await.expect("no panic");
    assert!(matches!(result, Err(SourceError::Unauthorized(401))));
    assert_eq!(server.request_count(), before + 1);
    assert!(!format!("{right:?}").contains(KEY), "Debug shows no key");
}

#[tokio::test]
async fn too_many_requests_waits_as_retry_after_says() {
    let (_sim, server) = simulator().await;
    let spaces = client(&server, KEY);
    server.reject_next_streams(1, Some("1"));
    let _running = run(&spaces, None, options());
    within("the rejected request", server.wait_for_requests(1)).await;
    let rejected_at = Instant::now();
    within("the stream", server.wait_for_streams_opened(1)).await;
    let waited = rejected_at.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "waited only {waited:?} after Retry-After: 1"
    );

    // A Retry-After that is no number of seconds: the ordinary backoff (at most 50 ms here).
    let (_sim2, server) = simulator().await;
    server.reject_next_streams(2, Some("soon"));
    let spaces = client(&server, KEY);
    let started = Instant::now();
    let _running = run(&spaces, None, options());
    within("the stream", server.wait_for_streams_opened(1)).await;
    assert_eq!(server.request_count(), 3);
    assert!(started.elapsed() < Duration::from_millis(900));
}

#[tokio::test]
async fn an_empty_map_id_takes_the_map_of_its_location_or_is_dropped() {
    let (_sim, server) = simulator().await;
    let spaces = client(&server, KEY);
    let mut running = run(&spaces, None, options());
    within("the stream", server.wait_for_open_streams(1)).await;

    // Nothing learned yet: both dropped (and jdoe moves on to Level 2).
    server.set_blank_map_ids(true);
    server.emit_now();
    running
        .until("two drops", |s| s.no_map_dropped() == 2)
        .await;
    // Both on Level 2 with its map: learned.
    server.set_blank_map_ids(false);
    server.emit_now();
    let learned = running.take(2).await;
    assert!(learned
        .iter()
        .all(|r| update(r).map_id.as_deref() == Some(LEVEL_2_MAP)));
    // Blank again: asmith's Level 2 is known, jdoe's Level 1 is not.
    server.set_blank_map_ids(true);
    server.emit_now();
    let filled = running.next().await;
    assert_eq!(update(&filled).mac, "66:77:88:99:aa:bb");
    assert_eq!(update(&filled).map_id.as_deref(), Some(LEVEL_2_MAP));
    running
        .until("a third drop", |s| s.no_map_dropped() == 3)
        .await;
    assert_eq!(running.status.records_seen(), 6);
}

#[tokio::test]
async fn garbage_and_a_2_mib_line_do_not_stop_the_stream() {
    let (_sim, server) = simulator().await;
    let spaces = client(&server, KEY);
    let mut running = run(&spaces, None, options());
    within("the stream", server.wait_for_open_streams(1)).await;

    server.send_raw_line(b"not json at all");
    server.send_raw_line(&vec![b'x'; 2 * 1024 * 1024]);
    server.send_raw_line(br#"{"recordUid":1}"#);
    server.send_raw_line(b"\xff\xfe\x00");
    server.emit_now();
    let records = running.take(2).await;
    assert_eq!(update(&records[0]).mac, "00:11:22:33:44:55");
    assert_eq!(running.status.lines_skipped(), 4);
    assert_eq!(running.status.reconnects(), 0);
    assert_eq!(server.streams_opened(), 1);
}

#[tokio::test]
async fn closing_the_receiver_ends_the_stream() {
    let (_sim, server) = simulator().await;
    let spaces = client(&server, KEY);
    let running = run(&spaces, None, options());
    within("the stream", server.wait_for_open_streams(1)).await;
    drop(running.records);
    let result = within("the end", running.task).await.expect("no panic");
    assert!(result.is_ok(), "{result:?}");
}

#[tokio::test]
async fn floor_plans_are_fetched_once_and_images_are_pngs() {
    let (_sim, server) = simulator().await;
    let spaces = client(&server, KEY);
    let metadata_path = format!("/api/partners/v1/maps/{LEVEL_1_MAP}");
    let plans = futures::future::join_all((0..4).map(|_| spaces.floor_plan(LEVEL_1_MAP))).await;
    for plan in &plans {
        let plan = plan.as_ref().expect("floor plan");
        assert_eq!(plan.floor_ref_id.as_deref(), Some(LEVEL_1_MAP));
        assert_eq!((plan.width, plan.length), (300.0, 150.0), "x and y extents");
        assert_eq!((plan.offset_x, plan.offset_y), (4.0, 2.0));
        assert_eq!(plan.unit, Unit::Feet);
        assert_eq!(plan.image_name.as_deref(), Some(LEVEL_1_MAP));
    }
    spaces.floor_plan(LEVEL_1_MAP).await.expect("cached");
    let metadata_requests = server
        .requests()
        .iter()
        .filter(|r| r.path == metadata_path)
        .count();
    assert_eq!(metadata_requests, 1, "one request for five callers");

    let png = spaces.map_image(LEVEL_2_MAP).await.expect("image");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));

    // A failure is not cached.
    server.set_fault(Fault::Http500);
    assert!(matches!(
        spaces.floor_plan(LEVEL_2_MAP).await,
        Err(SourceError::Status(_))
    ));
    server.set_fault(Fault::None);
    let plan = spaces.floor_plan(LEVEL_2_MAP).await.expect("fetched now");
    assert_eq!((plan.width, plan.length), (200.0, 100.0));

    let metres = client(&server, KEY);
    let metres = Arc::try_unwrap(metres)
        .expect("sole owner")
        .with_unit(Unit::Meter);
    assert_eq!(
        metres.floor_plan(LEVEL_1_MAP).await.expect("plan").unit,
        Unit::Meter
    );
}

#[tokio::test]
async fn hostile_map_ids_are_encoded_or_refused() {
    let (_sim, server) = simulator().await;
    let spaces = client(&server, KEY);
    let result = spaces.floor_plan("a/b c?#%").await;
    assert!(matches!(result, Err(SourceError::Status(_))), "{result:?}");
    let result = spaces.map_image("a/b c?#%").await;
    assert!(matches!(result, Err(SourceError::Status(_))), "{result:?}");
    let paths: HashSet<String> = server.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        HashSet::from([
            "/api/partners/v1/maps/a%2Fb%20c%3F%23%25".to_owned(),
            "/api/partners/v1/maps/a%2Fb%20c%3F%23%25/image".to_owned(),
        ])
    );
    let before = server.request_count();
    for id in ["..", ".", ""] {
        assert!(matches!(
            spaces.floor_plan(id).await,
            Err(SourceError::Invalid(_))
        ));
        assert!(matches!(
            spaces.map_image(id).await,
            Err(SourceError::Invalid(_))
        ));
    }
    assert_eq!(server.request_count(), before, "never sent");
}

#[test]
fn only_http_urls_are_accepted() {
    for url in ["ftp://example.com", "not a url", "file:///etc/passwd"] {
        let result = SpacesClient::new(LiveSettings {
            name: "bad".to_owned(),
            url: url.to_owned(),
            api_key: Secret::new(KEY),
            ca_file: None,
            insecure_skip_tls_verify: false,
            timeout: Duration::from_secs(1),
            image_timeout: Duration::from_secs(1),
            network: whereis_net::Network::direct(),
        });
        assert!(matches!(result, Err(SourceError::Setup(_))), "{url}");
    }
}
