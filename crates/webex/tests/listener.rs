//! The websocket listener against a stand on 127.0.0.1: device reuse and registration, rate
//! limits, stale registrations, token rejection, reconnects, silence, filtering, acks, message ids,
//! clean shutdown and the dialer, as the bot would notice them.

mod stand;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use stand::{stand_message_id, Command, Frame, Stand, BOT_EMAIL, BOT_UUID, TOKEN};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use whereis_webex::{
    fallback_message_id, BotIdentity, CancellationToken, DeviceService, DialFuture, Dialer,
    DirectDialer, Listener, ListenerConfig, ListenerEvent, ListenerSettings, NewDevice, Post,
    RetryPolicy, Token, WebexClient, WebexError,
};

const DEVICE: &str = "whereis-test";
const WAIT: Duration = Duration::from_secs(10);

fn settings() -> ListenerSettings {
    ListenerSettings {
        ping_interval: Duration::from_millis(50),
        silence_timeout: Duration::from_secs(1),
        connect_timeout: Duration::from_secs(3),
        auth_timeout: Duration::from_secs(3),
        close_timeout: Duration::from_secs(2),
        delete_timeout: Duration::from_secs(3),
        backoff_base: Duration::from_millis(10),
        backoff_cap: Duration::from_millis(50),
        stable_after: Duration::from_secs(30),
        max_reregistrations: 3,
        queue: 16,
    }
}

fn retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        max_total_wait: Duration::from_secs(5),
        fallback_retry_after: Duration::from_millis(50),
    }
}

fn client(stand: &Stand) -> WebexClient {
    WebexClient::new(
        &stand.api_base(),
        Token::new(TOKEN),
        retry(),
        Duration::from_secs(5),
    )
    .expect("client")
}

fn config(stand: &Stand) -> ListenerConfig {
    ListenerConfig {
        u2c_base: stand.u2c_base(),
        settings: settings(),
        ..ListenerConfig::new(DEVICE)
    }
}

struct Running {
    events: mpsc::Receiver<ListenerEvent>,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), WebexError>>,
}

fn start(stand: &Stand, config: ListenerConfig) -> Running {
    start_with_capacity(stand, config, 32)
}

fn start_with_capacity(stand: &Stand, config: ListenerConfig, capacity: usize) -> Running {
    start_with(client(stand), config, capacity)
}

fn start_with(client: WebexClient, config: ListenerConfig, capacity: usize) -> Running {
    let (events, receiver) = mpsc::channel(capacity);
    let shutdown = CancellationToken::new();
    let listener = Listener::new(client, config);
    let task = tokio::spawn(listener.run(events, shutdown.clone()));
    Running {
        events: receiver,
        shutdown,
        task,
    }
}

impl Running {
    async fn next_event(&mut self) -> ListenerEvent {
        tokio::time::timeout(WAIT, self.events.recv())
            .await
            .expect("an event in time")
            .expect("the listener is running")
    }

    async fn connected(&mut self) {
        loop {
            match self.next_event().await {
                ListenerEvent::Connected { .. } => return,
                ListenerEvent::GaveUp(err) => panic!("gave up: {err}"),
                _ => {}
            }
        }
    }

    /// The next post, with the connection events before it.
    async fn next_post(&mut self) -> (Post, Vec<ListenerEvent>) {
        let mut before = Vec::new();
        loop {
            match self.next_event().await {
                ListenerEvent::Post(post) => return (*post, before),
                ListenerEvent::GaveUp(err) => panic!("gave up: {err}"),
                other => before.push(other),
            }
        }
    }

    async fn finished(self) -> (Result<(), WebexError>, Vec<ListenerEvent>) {
        let Running {
            mut events, task, ..
        } = self;
        let result = tokio::time::timeout(WAIT, task)
            .await
            .expect("the listener stops in time")
            .expect("the listener does not panic");
        let mut seen = Vec::new();
        while let Ok(event) = events.try_recv() {
            seen.push(event);
        }
        (result, seen)
    }

    async fn stop(self) -> Result<(), WebexError> {
        self.shutdown.cancel();
        self.finished().await.0
    }
}

// ---------------------------------------------------------------------------------------------
// Devices

#[tokio::test]
async fn reuses_the_device_registered_under_its_name() {
    let stand = Stand::start().await;
    stand.seed_device("someone-else");
    let mine = stand.seed_device(DEVICE);
    let mut running = start(&stand, config(&stand));
    running.connected().await;
    stand.with(|r| {
        assert!(r.registrations.is_empty(), "no second registration");
        assert_eq!(r.handshakes.len(), 1);
        assert_eq!(r.handshakes[0].0, mine);
        let headers = &r.ws_headers[0];
        assert_eq!(headers["authorization"], format!("Bearer {TOKEN}"));
        let tracking = headers["trackingid"].to_str().unwrap();
        assert!(tracking.starts_with("whereis_"), "{tracking}");
        assert!(headers["user-agent"]
            .to_str()
            .unwrap()
            .starts_with("whereis-webex/"));
        let auth = &r.auth_frames[0];
        assert_eq!(auth["type"], "authorization");
        assert_eq!(auth["data"]["token"], format!("Bearer {TOKEN}"));
        assert_eq!(auth["id"].as_str().unwrap().len(), 36);
        // Without a configured identity the listener asked who the bot is.
        assert_eq!(r.me_calls, 1);
    });
    running.stop().await.expect("clean stop");
}

#[tokio::test]
async fn registers_a_device_when_none_has_its_name() {
    let stand = Stand::start().await;
    stand.seed_device("someone-else");
    let mut running = start(&stand, config(&stand));
    running.connected().await;
    stand.with(|r| {
        assert_eq!(r.registered_names, vec![DEVICE]);
        assert_eq!(r.devices.len(), 2);
        assert_eq!(r.handshakes[0].0, "dev-2");
    });
    running.stop().await.expect("clean stop");
}

#[tokio::test]
async fn without_a_catalog_the_default_device_service_is_used() {
    let stand = Stand::start().await;
    // A U2C base where nothing answers the catalog (404): the fallback device service is used.
    let config = ListenerConfig {
        u2c_base: format!("{}/nowhere/u2c", stand.api_base()),
        fallback_device_service: stand.device_service(),
        ..config(&stand)
    };
    let mut running = start(&stand, config);
    running.connected().await;
    stand.with(|r| assert_eq!(r.registered_names, vec![DEVICE]));
    running.stop().await.expect("clean stop");
}

#[tokio::test]
async fn registration_waits_out_429() {
    let stand = Stand::start().await;
    stand.with(|r| {
        r.throttle_registrations = 1;
        r.retry_after = "1".into();
    });
    let mut running = start(&stand, config(&stand));
    running.connected().await;
    stand.with(|r| {
        assert_eq!(r.registrations.len(), 2, "one 429, then registered");
        let waited = r.registrations[1] - r.registrations[0];
        assert!(
            waited >= Duration::from_millis(950),
            "waited only {waited:?}"
        );
    });
    running.stop().await.expect("clean stop");
}

#[tokio::test]
async fn device_service_counts_429_attempts_and_gives_up_when_the_budget_is_spent() {
    let stand = Stand::start().await;
    stand.with(|r| r.throttle_registrations = 3);
    let devices = DeviceService::discover(client(&stand), &stand.u2c_base())
        .await
        .expect("discovered");
    assert_eq!(devices.url(), stand.device_service());
    let device = devices
        .register(&NewDevice::named("a"))
        .await
        .expect("registered after three 429s");
    assert_eq!(device.name.as_deref(), Some("a"));
    assert_eq!(stand.with(|r| r.registrations.len()), 4);

    stand.with(|r| r.throttle_registrations = 10);
    let stingy = WebexClient::new(
        &stand.api_base(),
        Token::new(TOKEN),
        RetryPolicy {
            max_attempts: 2,
            ..retry()
        },
        Duration::from_secs(5),
    )
    .unwrap();
    let devices = DeviceService::new(stingy, &stand.device_service()).unwrap();
    let err = devices.register(&NewDevice::named("b")).await.unwrap_err();
    assert!(matches!(err, WebexError::RateLimited { .. }), "{err:?}");
    assert_eq!(stand.with(|r| r.registrations.len()), 6);
    // Deleting twice: the second finds nothing, which is fine.
    devices.delete(&device).await.expect("deleted");
    devices.delete(&device).await.expect("already gone is fine");
    assert!(devices.devices().await.unwrap().is_empty());
}

#[tokio::test]
async fn discovery_refuses_a_device_service_off_webex() {
    // The catalog names a device service on another host: the token must not go there.
    let other = Stand::start().await;
    let catalog = axum::Router::new().route(
        "/u2c/api/v1/catalog",
        axum::routing::get({
            let wdm = other.device_service();
            move || async move { axum::Json(serde_json::json!({"serviceLinks": {"wdm": wdm}})) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, catalog).await });
    let client = WebexClient::new(
        &format!("http://{addr}/v1"),
        Token::new(TOKEN),
        retry(),
        Duration::from_secs(5),
    )
    .unwrap();
    let err = DeviceService::discover(client, &format!("http://{addr}/u2c/api/v1"))
        .await
        .unwrap_err();
    assert!(matches!(err, WebexError::Untrusted { .. }), "{err:?}");
    assert!(!err.to_string().contains(TOKEN));
}

// ---------------------------------------------------------------------------------------------
// Stale registrations and rejected tokens

#[tokio::test]
async fn handshake_404_registers_anew_and_deletes_the_stale_device() {
    let stand = Stand::start().await;
    let stale = stand.seed_device(DEVICE);
    stand.with(|r| {
        r.stale.insert(stale.clone());
    });
    let mut running = start(&stand, config(&stand));
    running.connected().await;
    stand.with(|r| {
        assert_eq!(r.deletions, vec![stale.clone()]);
        assert_eq!(r.registered_names, vec![DEVICE]);
        let ids: Vec<_> = r.handshakes.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, [stale.as_str(), "dev-2"]);
    });
    running.stop().await.expect("clean stop");
}

#[tokio::test]
async fn keeps_going_stale_gives_up_after_three_registrations() {
    let stand = Stand::start().await;
    let stale = stand.seed_device(DEVICE);
    stand.with(|r| {
        r.stale.insert(stale);
        r.always_stale = true;
    });
    let running = start(&stand, config(&stand));
    let (result, events) = running.finished().await;
    let err = result.unwrap_err();
    assert_eq!(err, WebexError::DeviceStale { attempts: 3 });
    assert!(err.to_string().contains("keeps going stale"), "{err}");
    assert!(matches!(
        events.last(),
        Some(ListenerEvent::GaveUp(WebexError::DeviceStale { .. }))
    ));
    stand.with(|r| {
        assert_eq!(r.registrations.len(), 3, "three new registrations, no more");
        assert_eq!(r.handshakes.len(), 4);
        // Every stale device was deleted: nothing leaks.
        assert_eq!(r.deletions.len(), 4);
        assert!(r.devices.is_empty(), "{:?}", r.devices);
    });
}

#[tokio::test]
async fn close_4404_registers_anew() {
    let stand = Stand::start().await;
    let first = stand.seed_device(DEVICE);
    stand.with(|r| r.expire_next = true);
    let mut running = start(&stand, config(&stand));
    running.connected().await;
    stand.with(|r| {
        assert_eq!(r.deletions, vec![first.clone()]);
        assert_eq!(r.registrations.len(), 1);
        assert_eq!(r.authorised, 1);
    });
    running.stop().await.expect("clean stop");
}

#[tokio::test]
async fn close_4401_stops_with_an_auth_error() {
    let stand = Stand::start().await;
    stand.with(|r| r.reject_auth = true);
    let running = start(&stand, config(&stand));
    let (result, events) = running.finished().await;
    let err = result.unwrap_err();
    assert!(
        matches!(err, WebexError::WebsocketAuthRejected { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("rejected the access token"),
        "{err}"
    );
    assert!(!format!("{err} {err:?}").contains(TOKEN));
    assert!(events.iter().any(|e| matches!(e, ListenerEvent::GaveUp(_))));
    assert!(!events
        .iter()
        .any(|e| matches!(e, ListenerEvent::Connected { .. })));
    // No retry loop.
    assert_eq!(stand.with(|r| r.auth_frames.len()), 1);
}

#[tokio::test]
async fn handshake_429_waits_its_retry_after() {
    let stand = Stand::start().await;
    stand.seed_device(DEVICE);
    stand.with(|r| {
        r.throttle_handshakes = 1;
        r.retry_after = "1".into();
    });
    let mut running = start(&stand, config(&stand));
    let mut disconnected = None;
    loop {
        match running.next_event().await {
            ListenerEvent::Disconnected { reason, retry_in } => {
                disconnected = Some((reason, retry_in))
            }
            ListenerEvent::Connected { .. } => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    let (reason, retry_in) = disconnected.expect("told about the 429");
    assert!(reason.contains("429"), "{reason}");
    assert!(retry_in >= Duration::from_secs(1));
    stand.with(|r| {
        let waited = r.handshakes[1].1 - r.handshakes[0].1;
        assert!(
            waited >= Duration::from_millis(950),
            "waited only {waited:?}"
        );
    });
    running.stop().await.expect("clean stop");
}

// ---------------------------------------------------------------------------------------------
// Delivery

#[tokio::test]
async fn delivers_posts_with_their_rest_id_and_acks_them() {
    let stand = Stand::start().await;
    let mut running = start(&stand, config(&stand));
    running.connected().await;
    stand.send(Command::Text(stand.post("env-1", "msg-1").json()));
    let (post, _) = running.next_post().await;
    assert_eq!(post.message_id, stand_message_id("msg-1"));
    assert_eq!(post.activity.id, "msg-1");
    assert_eq!(
        post.activity.actor.email.as_deref(),
        Some("jane.doe@example.com")
    );
    assert!(post.activity.is_one_on_one());
    stand.wait_for("the ack", |r| r.acks == ["env-1"]).await;
    stand.with(|r| {
        assert_eq!(
            r.lookups,
            vec![("msg-1".to_owned(), format!("Bearer {TOKEN}"))]
        );
    });
    running.stop().await.expect("clean stop");
}

#[tokio::test]
async fn own_posts_other_verbs_and_malformed_frames_are_skipped() {
    let stand = Stand::start().await;
    let config = ListenerConfig {
        bot: Some(BotIdentity {
            person_id: None,
            emails: vec![BOT_EMAIL.into()],
        }),
        ..config(&stand)
    };
    let mut running = start(&stand, config);
    running.connected().await;
    let own_by_email = Frame {
        email: "WHEREIS@webex.bot",
        actor_type: "BOT",
        ..stand.post("env-own", "msg-own")
    };
    let acknowledge = Frame {
        verb: "acknowledge",
        ..stand.post("env-ack", "msg-ack")
    };
    let typing = Frame {
        event_type: "status.start_typing",
        ..stand.post("env-typing", "msg-typing")
    };
    for command in [
        Command::Text(own_by_email.json()),
        Command::Text(acknowledge.json()),
        Command::Text(typing.json()),
        Command::Text("{not json".into()),
        Command::Text("[1,2,3]".into()),
        Command::Text(
            r#"{"data":{"eventType":"conversation.activity","activity":{"verb":"post"}}}"#.into(),
        ),
        Command::Binary(vec![0xff, 0x00, 0xfe]),
        Command::Binary(stand.post("env-real", "msg-real").json().into_bytes()),
    ] {
        stand.send(command);
    }
    let (post, _) = running.next_post().await;
    assert_eq!(post.activity.id, "msg-real", "the only post delivered");
    stand.wait_for("the ack", |r| !r.acks.is_empty()).await;
    // Still connected, nothing else came, and only the delivered post was acknowledged.
    stand.send(Command::Text(stand.post("env-2", "msg-2").json()));
    let (post, before) = running.next_post().await;
    assert_eq!(post.activity.id, "msg-2");
    assert!(before.is_empty(), "{before:?}");
    stand.wait_for("both acks", |r| r.acks.len() == 2).await;
    stand.with(|r| {
        assert_eq!(r.acks, ["env-real", "env-2"]);
        assert_eq!(r.authorised, 1, "no reconnect");
        assert_eq!(r.me_calls, 0, "identity given");
    });
    running.stop().await.expect("clean stop");
}

#[tokio::test]
async fn own_posts_are_known_by_people_me_id() {
    let stand = Stand::start().await;
    let mut running = start(&stand, config(&stand));
    running.connected().await;
    let own_by_id = Frame {
        email: "",
        actor_uuid: BOT_UUID,
        ..stand.post("env-own", "msg-own")
    };
    stand.send(Command::Text(own_by_id.json()));
    stand.send(Command::Text(stand.post("env-1", "msg-1").json()));
    let (post, _) = running.next_post().await;
    assert_eq!(post.activity.id, "msg-1");
    running.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_conversation_off_webex_gets_no_token_and_the_fallback_id() {
    let stand = Stand::start().await;
    let elsewhere = Stand::start().await;
    let mut running = start(&stand, config(&stand));
    running.connected().await;
    let frame = Frame {
        target_url: elsewhere.conversation_url("conv-1"),
        ..stand.post("env-1", "msg-1")
    };
    stand.send(Command::Text(frame.json()));
    let (post, _) = running.next_post().await;
    assert_eq!(post.message_id, fallback_message_id("msg-1"));
    assert_ne!(post.message_id, stand_message_id("msg-1"));
    assert!(
        elsewhere.with(|r| r.lookups.is_empty()),
        "nothing sent to the other host"
    );
    assert!(stand.with(|r| r.lookups.is_empty()));

    // A trusted host that does not know the message (404): the fallback as well.
    let unknown = Frame {
        target_url: format!(
            "http://{}/elsewhere/api/v1/conversations/conv-1",
            stand.addr
        ),
        ..stand.post("env-2", "msg-2")
    };
    stand.send(Command::Text(unknown.json()));
    let (post, _) = running.next_post().await;
    assert_eq!(post.message_id, fallback_message_id("msg-2"));
    running.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_slow_caller_does_not_stop_the_keep_alive() {
    let stand = Stand::start().await;
    // Room for one event: the caller reads nothing for a while.
    let mut running = start_with_capacity(&stand, config(&stand), 1);
    running.connected().await;
    for (envelope, message) in [("e1", "m1"), ("e2", "m2"), ("e3", "m3"), ("e4", "m4")] {
        stand.send(Command::Text(stand.post(envelope, message).json()));
    }
    // Pings keep flowing for more than twice the silence timeout while posts wait.
    stand
        .wait_for("pings while the caller is busy", |r| r.pings >= 40)
        .await;
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(running.next_post().await.0.activity.id);
    }
    assert_eq!(ids, ["m1", "m2", "m3", "m4"], "in order");
    stand.wait_for("all acks", |r| r.acks.len() == 4).await;
    assert_eq!(stand.with(|r| r.authorised), 1, "never reconnected");
    running.stop().await.expect("clean stop");
}

// ---------------------------------------------------------------------------------------------
// Reconnecting

#[tokio::test]
async fn reconnects_after_drops_and_keeps_delivering() {
    let stand = Stand::start().await;
    let mut running = start(&stand, config(&stand));
    running.connected().await;
    stand.send(Command::Text(stand.post("env-1", "msg-1").json()));
    assert_eq!(running.next_post().await.0.activity.id, "msg-1");
    stand.wait_for("ack 1", |r| r.acks == ["env-1"]).await;

    stand.send(Command::Drop);
    let mut disconnected = false;
    loop {
        match running.next_event().await {
            ListenerEvent::Disconnected { .. } => disconnected = true,
            ListenerEvent::Connected { .. } => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(disconnected, "the caller is told about the drop");
    stand.wait_for("connected again", |r| r.open == 1).await;
    stand.send(Command::Text(stand.post("env-2", "msg-2").json()));
    assert_eq!(running.next_post().await.0.activity.id, "msg-2");
    stand.wait_for("ack 2", |r| r.acks.len() == 2).await;

    stand.send(Command::Close(1001));
    running.connected().await;
    stand
        .wait_for("connected a third time", |r| {
            r.open == 1 && r.authorised == 3
        })
        .await;
    stand.send(Command::Text(stand.post("env-3", "msg-3").json()));
    assert_eq!(running.next_post().await.0.activity.id, "msg-3");
    stand.wait_for("ack 3", |r| r.acks.len() == 3).await;
    stand.with(|r| {
        assert!(
            r.registrations.len() <= 1,
            "the device is reused: {}",
            r.registrations.len()
        );
        assert_eq!(r.acks, ["env-1", "env-2", "env-3"]);
    });
    running.stop().await.expect("clean stop");
}

#[tokio::test]
async fn silence_means_a_dead_connection() {
    let stand = Stand::start().await;
    stand.with(|r| r.silent_next = 1);
    let mut running = start(&stand, config(&stand));
    running.connected().await;
    let reason = match running.next_event().await {
        ListenerEvent::Disconnected { reason, .. } => reason,
        other => panic!("unexpected {other:?}"),
    };
    assert!(reason.contains("no frame"), "{reason}");
    running.connected().await;
    stand
        .wait_for("a second connection", |r| r.authorised == 2)
        .await;
    running.stop().await.expect("clean stop");
}

// ---------------------------------------------------------------------------------------------
// Shutdown and transport

#[tokio::test]
async fn clean_shutdown_closes_the_socket_and_deletes_the_device() {
    let stand = Stand::start().await;
    let mut running = start(&stand, config(&stand));
    running.connected().await;
    let device = stand.with(|r| r.devices[0].0.clone());
    running.stop().await.expect("clean stop");
    stand.with(|r| {
        assert_eq!(r.client_closes, [1000], "a close frame");
        assert_eq!(r.deletions, [device.as_str()]);
        assert!(r.devices.is_empty(), "no device leaks");
    });
}

#[tokio::test]
async fn dropping_the_receiver_also_stops_cleanly() {
    let stand = Stand::start().await;
    let mut running = start(&stand, config(&stand));
    running.connected().await;
    let Running { events, task, .. } = running;
    drop(events);
    stand.send(Command::Text(stand.post("env-1", "msg-1").json()));
    let result = tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
    result.expect("clean stop");
    stand.with(|r| assert!(r.devices.is_empty()));
}

/// Counts the connections it opens.
struct CountingDialer {
    dials: AtomicUsize,
}

impl Dialer for CountingDialer {
    fn dial<'a>(&'a self, host: &'a str, port: u16) -> DialFuture<'a> {
        self.dials.fetch_add(1, Ordering::SeqCst);
        DirectDialer.dial(host, port)
    }
}

#[tokio::test]
async fn every_connection_goes_through_the_dialer() {
    let stand = Stand::start().await;
    let dialer = Arc::new(CountingDialer {
        dials: AtomicUsize::new(0),
    });
    let config = ListenerConfig {
        dialer: dialer.clone(),
        ..config(&stand)
    };
    let mut running = start(&stand, config);
    running.connected().await;
    stand.send(Command::Drop);
    running.connected().await;
    stand.send(Command::Close(1011));
    running.connected().await;
    stand
        .wait_for("three connections", |r| r.authorised == 3)
        .await;
    assert_eq!(dialer.dials.load(Ordering::SeqCst), 3);
    assert_eq!(stand.with(|r| r.handshakes.len()), 3);
    running.stop().await.expect("clean stop");
}

/// A dialer that cannot reach anything: the listener retries and stops cleanly on shutdown.
struct DeadDialer {
    dials: AtomicUsize,
}

impl Dialer for DeadDialer {
    fn dial<'a>(&'a self, _host: &'a str, _port: u16) -> DialFuture<'a> {
        self.dials.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { Err(std::io::Error::other("proxy refused")) })
    }
}

#[tokio::test]
async fn a_failing_dialer_is_retried_with_backoff() {
    let stand = Stand::start().await;
    let dialer = Arc::new(DeadDialer {
        dials: AtomicUsize::new(0),
    });
    let config = ListenerConfig {
        dialer: dialer.clone(),
        device_service: Some(stand.device_service()),
        ..config(&stand)
    };
    let mut running = start(&stand, config);
    for _ in 0..3 {
        match running.next_event().await {
            ListenerEvent::Disconnected { reason, retry_in } => {
                assert!(reason.contains("proxy refused"), "{reason}");
                assert!(retry_in <= Duration::from_millis(50));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(dialer.dials.load(Ordering::SeqCst) >= 3);
    running.stop().await.expect("clean stop");
    // The device registered for the attempts is deleted on shutdown as well.
    stand.with(|r| {
        assert_eq!(r.registrations.len(), 1);
        assert!(r.devices.is_empty());
    });
}

// ---------------------------------------------------------------------------------------------
// TLS

fn tls_client_config(ca_pem: &str) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

fn tls_client(stand: &Stand, ca_pem: &str) -> WebexClient {
    WebexClient::with_http(
        &stand.api_base(),
        Token::new(TOKEN),
        retry(),
        Duration::from_secs(5),
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap()),
    )
    .unwrap()
}

#[tokio::test]
async fn wss_runs_tls_over_the_dialers_stream() {
    let (stand, ca_pem) = Stand::start_tls().await;
    assert!(stand.device_service().starts_with("https://"));
    let dialer = Arc::new(CountingDialer {
        dials: AtomicUsize::new(0),
    });
    let config = ListenerConfig {
        dialer: dialer.clone(),
        tls: Some(tls_client_config(&ca_pem)),
        ..config(&stand)
    };
    let mut running = start_with(tls_client(&stand, &ca_pem), config, 8);
    running.connected().await;
    stand.send(Command::Text(stand.post("env-1", "msg-1").json()));
    let (post, _) = running.next_post().await;
    // The conversation service on the same https origin answered.
    assert_eq!(post.message_id, stand_message_id("msg-1"));
    assert_eq!(dialer.dials.load(Ordering::SeqCst), 1);
    running.stop().await.expect("clean stop");
    stand.with(|r| assert!(r.devices.is_empty()));
}

#[tokio::test]
async fn wss_to_an_unknown_certificate_is_refused() {
    let (stand, ca_pem) = Stand::start_tls().await;
    // REST trusts the stand's CA, the websocket only the system roots.
    let mut running = start_with(tls_client(&stand, &ca_pem), config(&stand), 8);
    match running.next_event().await {
        ListenerEvent::Disconnected { reason, .. } => {
            assert!(reason.contains("TLS"), "{reason}")
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(stand.with(|r| r.auth_frames.is_empty()), "no token sent");
    running.stop().await.expect("clean stop");
}

#[tokio::test]
async fn unusable_settings_stop_at_once() {
    let stand = Stand::start().await;
    let no_pings = ListenerConfig {
        settings: ListenerSettings {
            ping_interval: Duration::ZERO,
            ..settings()
        },
        ..config(&stand)
    };
    let (result, events) = start(&stand, no_pings).finished().await;
    assert!(matches!(result, Err(WebexError::Setup(_))), "{result:?}");
    assert!(matches!(
        events.as_slice(),
        [ListenerEvent::GaveUp(WebexError::Setup(_))]
    ));
    let (result, _) = start(
        &stand,
        ListenerConfig {
            device_name: " ".into(),
            ..config(&stand)
        },
    )
    .finished()
    .await;
    assert!(matches!(result, Err(WebexError::Setup(_))), "{result:?}");
    assert!(
        stand.with(|r| r.me_calls == 0 && r.registrations.is_empty()),
        "nothing asked"
    );
}
