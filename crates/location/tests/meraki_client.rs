//! The Meraki Dashboard client against the simulator's Meraki double, on loopback; and the double's
//! Scanning API posts read by the receiver's parser.

use std::collections::HashMap;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use whereis_location::live::meraki::MerakiDashboard;
use whereis_location::wire::meraki::parse_scanning;
use whereis_location::{Api, FloorPlan, ListPaging, LiveSettings, Secret, SourceError, Unit};
use whereis_sim::{MerakiHandle, Scenario, ServerHandle, Simulator};

const KEY: &str = "dashboard-key-0123";
const NETWORK: &str = "L_000000000000000001";

/// One Meraki network, two floors (one in feet, one in metres), five people.
const SCENARIO: &str = r#"
[[servers]]
name = "meraki-hq"
kind = "meraki"
username = "unused"
password = "dashboard-key-0123"
network_id = "L_000000000000000001"
secret = "right-secret"
validator = "a1b2c3-validator"

[[campuses]]
name = "HQ"
[[campuses.buildings]]
name = "North"
[[campuses.buildings.floors]]
name = "Level 1"
floor_ref_id = "101"
width = 300.0
length = 150.0
unit = "FEET"
image = "l1.png"
[[campuses.buildings.floors]]
name = "Level 2"
floor_ref_id = "102"
width = 40.0
length = 20.0
unit = "METER"
image = "l2.png"

[[people]]
username = "jdoe"
display_name = "Jane Doe"
[[people.devices]]
mac = "00:11:22:33:44:01"
identity = "CORP\\jdoe"
servers = ["meraki-hq"]
floor = "HQ>North>Level 1"
x = 100.0
y = 50.0
ssid = "CORP"
ip = ["10.0.0.1"]
[[people.devices.moves]]
floor = "HQ>North>Level 2"
x = 10.0
y = 5.0

[[people]]
username = "asmith"
display_name = "Ann Smith"
[[people.devices]]
mac = "00:11:22:33:44:02"
servers = ["meraki-hq"]
floor = "HQ>North>Level 2"
x = 30.0
y = 15.0

[[people]]
username = "bkhan"
display_name = "Bo Khan"
[[people.devices]]
mac = "00:11:22:33:44:03"
servers = ["meraki-hq"]
floor = "HQ>North>Level 1"
x = 1.0
y = 2.0

[[people]]
username = "clee"
display_name = "Cy Lee"
[[people.devices]]
mac = "00:11:22:33:44:04"
servers = ["meraki-hq"]
floor = "HQ>North>Level 1"
x = 3.0
y = 4.0

[[people]]
username = "dng"
display_name = "Di Ng"
[[people.devices]]
mac = "00:11:22:33:44:05"
servers = ["meraki-hq"]
floor = "HQ>North>Level 2"
x = 5.0
y = 6.0
"#;

async fn start() -> (Simulator, ServerHandle, MerakiHandle) {
    let scenario = Scenario::from_toml_str(SCENARIO).expect("scenario");
    let sim = Simulator::start(scenario).await.expect("simulator");
    let server = sim.server("meraki-hq").expect("server").clone();
    let meraki = server.meraki().expect("a meraki server");
    (sim, server, meraki)
}

fn settings(meraki: &MerakiHandle, key: &str) -> LiveSettings {
    LiveSettings {
        name: "meraki-hq".to_owned(),
        url: meraki.dashboard_url(),
        api_key: Secret::new(key),
        ca_file: None,
        insecure_skip_tls_verify: false,
        timeout: Duration::from_secs(5),
        image_timeout: Duration::from_secs(10),
        network: whereis_net::Network::direct(),
    }
}

fn dashboard(meraki: &MerakiHandle) -> MerakiDashboard {
    MerakiDashboard::new(settings(meraki, KEY), meraki.network_id()).expect("client")
}

fn requests_to(server: &ServerHandle, suffix: &str) -> Vec<Option<String>> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with(suffix))
        .map(|r| r.query)
        .collect()
}

/// Waits (polling, bounded) until `condition` holds.
async fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let waited = tokio::time::timeout(Duration::from_secs(10), async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "timed out waiting until {what}");
}

#[tokio::test]
async fn floor_plans_arrive_in_metres_named_by_their_id_and_are_kept() {
    let (_sim, server, meraki) = start().await;
    let client = dashboard(&meraki);
    let l1 = meraki.floor_plan_id("HQ>North>Level 1").expect("level 1");
    let l2 = meraki.floor_plan_id("HQ>North>Level 2").expect("level 2");
    assert_ne!(l1, l2);

    let plan = client.floor_plan(&l1).await.expect("level 1 plan");
    assert_eq!(plan.floor_ref_id.as_deref(), Some(l1.as_str()));
    assert_eq!(plan.image_name.as_deref(), Some(l1.as_str()));
    assert_eq!(plan.unit, Unit::Meter);
    assert_eq!((plan.offset_x, plan.offset_y), (0.0, 0.0));
    // 300 × 150 ft
    assert!((plan.width - 91.44).abs() < 1e-9, "{plan:?}");
    assert!((plan.length - 45.72).abs() < 1e-9, "{plan:?}");
    assert_eq!(
        client.floor_plan(&l2).await.expect("level 2 plan"),
        FloorPlan {
            floor_ref_id: Some(l2.clone()),
            width: 40.0,
            length: 20.0,
            offset_x: 0.0,
            offset_y: 0.0,
            unit: Unit::Meter,
            image_name: Some(l2.clone()),
        }
    );
    assert_eq!(
        requests_to(&server, "/floorPlans").len(),
        1,
        "kept in memory"
    );

    // An unknown plan: one refetch at most per minute.
    let err = client.floor_plan("g_999").await.expect_err("unknown");
    assert_eq!(err.kind(), "status", "{err}");
    assert!(err.to_string().contains("g_999"), "{err}");
    let err = client.floor_plan("g_999").await.expect_err("still unknown");
    assert_eq!(err.kind(), "status");
    assert_eq!(
        requests_to(&server, "/floorPlans").len(),
        1,
        "no refetch within a minute"
    );

    let probe = client.probe().await.expect("probe");
    assert_eq!(probe.api, Api::Meraki);
    assert!(
        probe.detail.contains("meraki-hq") && probe.detail.contains(NETWORK),
        "{probe:?}"
    );
    for request in server.requests() {
        assert!(
            request
                .path
                .starts_with("/api/v1/networks/L_000000000000000001"),
            "{request:?}"
        );
    }
}

#[tokio::test]
async fn an_expired_image_url_is_replaced_and_the_key_never_goes_to_the_image_host() {
    let (_sim, server, meraki) = start().await;
    assert_ne!(
        meraki.image_host_url(),
        server.base_url(),
        "images come from another origin"
    );
    let client = dashboard(&meraki);
    let l1 = meraki.floor_plan_id("HQ>North>Level 1").expect("level 1");

    // Another client first, so the double has drawn the plan and answers at once.
    dashboard(&meraki)
        .floor_image(&l1)
        .await
        .expect("warm-up image");
    let warm_up = meraki.image_requests().len();
    assert_eq!(requests_to(&server, "/floorPlans").len(), 1);

    meraki.set_image_url_ttl(Duration::from_secs(3));
    let png = client.floor_image(&l1).await.expect("image");
    let issued = chrono::Utc::now();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    let again = client.floor_image(&l1).await.expect("image again");
    assert_eq!(again, png);
    assert_eq!(
        requests_to(&server, "/floorPlans").len(),
        2,
        "the URL was still good"
    );
    let first = meraki.image_requests().split_off(warm_up);
    assert_eq!(first.len(), 2);
    assert_eq!(first[0].token, first[1].token, "the same URL twice");

    // Past imageUrlExpiresAt, the plans are read again and the new URL used.
    meraki.set_image_url_ttl(Duration::from_secs(3600));
    wait_until("the first URL has expired", || {
        chrono::Utc::now() > issued + chrono::TimeDelta::seconds(3)
    })
    .await;
    let fresh = client
        .floor_image(&l1)
        .await
        .expect("image with a fresh URL");
    assert_eq!(fresh, png);
    assert_eq!(requests_to(&server, "/floorPlans").len(), 3);
    let all = meraki.image_requests().split_off(warm_up);
    assert_eq!(all.len(), 3, "{all:?}");
    assert_ne!(all[2].token, all[0].token, "a new URL");
    assert_eq!(all[2].status, 200);
    assert!(all
        .iter()
        .all(|r| r.floor_plan_id.as_deref() == Some(l1.as_str())));
    let every = meraki.image_requests();
    assert!(
        every.iter().all(|r| !r.authorization),
        "no credentials to the image host: {every:?}"
    );
}

#[tokio::test]
async fn an_image_url_refused_even_fresh_is_an_error_then_recovers() {
    let (_sim, server, meraki) = start().await;
    let client = dashboard(&meraki);
    let l2 = meraki.floor_plan_id("HQ>North>Level 2").expect("level 2");

    // Every URL handed out is already expired.
    meraki.set_image_url_ttl(Duration::ZERO);
    let err = client.floor_image(&l2).await.expect_err("refused");
    assert_eq!(err.kind(), "status", "{err}");
    assert!(err.to_string().contains("403"), "{err}");
    assert_eq!(meraki.image_requests().last().map(|r| r.status), Some(403));

    meraki.set_image_url_ttl(Duration::from_secs(3600));
    let png = client.floor_image(&l2).await.expect("a good URL now");
    assert!(png.starts_with(b"\x89PNG"));
    assert_eq!(requests_to(&server, "/floorPlans").len(), 2);
}

#[tokio::test]
async fn client_users_follow_links_across_pages_and_skip_machines() {
    let (_sim, server, meraki) = start().await;
    let client = dashboard(&meraki).with_list_paging(ListPaging {
        page_size: 3,
        max_pages: 10,
    });
    let users = client
        .client_users(Duration::from_secs(900))
        .await
        .expect("users");
    let want: HashMap<String, String> = [
        ("00:11:22:33:44:01", "CORP\\jdoe"),
        ("00:11:22:33:44:02", "asmith"),
        ("00:11:22:33:44:03", "bkhan"),
        ("00:11:22:33:44:04", "clee"),
        ("00:11:22:33:44:05", "dng"),
    ]
    .into_iter()
    .map(|(m, u)| (m.to_owned(), u.to_owned()))
    .collect();
    assert_eq!(users, want, "host/… and user-less clients left out");
    let pages = requests_to(&server, "/clients");
    assert_eq!(pages.len(), 3, "5 people + 2 others at 3 a page: {pages:?}");
    assert_eq!(pages[0].as_deref(), Some("perPage=3&timespan=900"));
    assert!(pages[1..]
        .iter()
        .all(|q| q.as_deref().is_some_and(|q| q.contains("startingAfter="))));

    // More pages than allowed: refused rather than cut.
    let short = dashboard(&meraki).with_list_paging(ListPaging {
        page_size: 3,
        max_pages: 2,
    });
    let err = short
        .client_users(Duration::from_secs(900))
        .await
        .expect_err("too long");
    assert_eq!(
        err,
        SourceError::TooManyPages {
            pages: 2,
            page_size: 3
        }
    );
}

#[tokio::test]
async fn a_next_page_on_another_origin_is_not_followed() {
    let (_sim, server, meraki) = start().await;
    meraki.set_link_base(Some("http://127.0.0.2:9"));
    let client = dashboard(&meraki).with_list_paging(ListPaging {
        page_size: 3,
        max_pages: 10,
    });
    let err = client
        .client_users(Duration::from_secs(60))
        .await
        .expect_err("link elsewhere");
    assert_eq!(err.kind(), "invalid", "{err}");
    assert!(err.to_string().contains("127.0.0.2:9"), "{err}");
    assert_eq!(requests_to(&server, "/clients").len(), 1);
}

#[tokio::test]
async fn rate_limited_requests_wait_for_retry_after_then_succeed_or_give_up() {
    let (_sim, server, meraki) = start().await;
    let client = dashboard(&meraki);
    meraki.rate_limit_next(1, Some("1"));
    let started = std::time::Instant::now();
    client.probe().await.expect("answered after the wait");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After honoured"
    );
    assert_eq!(server.request_count(), 2);

    meraki.rate_limit_next(10, Some("0"));
    let err = client.probe().await.expect_err("still limited");
    assert_eq!(err.kind(), "status");
    assert!(err.to_string().contains("429"), "{err}");
    assert_eq!(
        server.request_count(),
        2 + 4,
        "the first try and three retries"
    );
}

#[tokio::test]
async fn a_wrong_key_is_unauthorized_and_never_printed() {
    let (_sim, _server, meraki) = start().await;
    let client =
        MerakiDashboard::new(settings(&meraki, "wrong-key-4567"), NETWORK).expect("client");
    assert!(!format!("{client:?}").contains("wrong-key-4567"));
    let err = client.probe().await.expect_err("refused");
    assert_eq!(err, SourceError::Unauthorized(401));
    let err = client.floor_plan("g_101").await.expect_err("refused");
    assert_eq!(err, SourceError::Unauthorized(401));
    assert!(!err.to_string().contains("wrong-key"));

    let elsewhere = MerakiDashboard::new(settings(&meraki, KEY), "N_other").expect("client");
    let err = elsewhere.probe().await.expect_err("no such network");
    assert!(err.to_string().contains("404"), "{err}");
    assert_eq!(
        MerakiDashboard::new(settings(&meraki, KEY), "..")
            .expect_err("dot segment")
            .kind(),
        "invalid"
    );
}

/// A Scanning API receiver on loopback: answers GET with `validator`, records POST bodies.
async fn receiver(validator: &'static str) -> (String, mpsc::UnboundedReceiver<(String, Vec<u8>)>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/meraki", listener.local_addr().expect("addr"));
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let (head_end, length) = loop {
                    let Ok(n) = stream.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break (i + 4, length);
                    }
                };
                while buf.len() < head_end + length {
                    let Ok(n) = stream.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let method = String::from_utf8_lossy(&buf[..head_end])
                    .split(' ')
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let body = buf[head_end..head_end + length].to_vec();
                let answer = if method == "GET" { validator } else { "" };
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
                let _ = tx.send((method, body));
            });
        }
    });
    (url, rx)
}

#[tokio::test]
async fn scanning_posts_parse_with_the_secret_users_plans_and_bottom_left_metres() {
    let (_sim, _server, meraki) = start().await;
    let (url, mut seen) = receiver("a1b2c3-validator").await;
    meraki.set_receiver(&url);

    let report = meraki.push_now().await.expect("posted");
    assert_eq!(report.validation_status, Some(200));
    assert_eq!(report.status, 200);
    assert_eq!(report.observations, 5);
    let (method, _) = seen.recv().await.expect("validator GET");
    assert_eq!(method, "GET");
    let (method, body) = seen.recv().await.expect("POST");
    assert_eq!(method, "POST");
    let post = parse_scanning(&body).expect("a Scanning API post");
    assert_eq!(post.secret.as_deref(), Some("right-secret"));
    assert_eq!((post.version.as_str(), post.kind.as_str()), ("3.0", "WiFi"));
    assert_eq!(post.network_id, NETWORK);
    assert_eq!(post.rejected, []);
    let jdoe = post
        .observations
        .iter()
        .find(|o| o.mac == "00:11:22:33:44:01")
        .expect("jdoe's device");
    assert_eq!(jdoe.identity.as_deref(), Some("CORP\\jdoe"));
    assert_eq!(jdoe.username.as_deref(), Some("jdoe"));
    assert_eq!(jdoe.ssid.as_deref(), Some("CORP"));
    assert_eq!(jdoe.ip.as_deref(), Some("10.0.0.1"));
    let at = jdoe.location.as_ref().expect("a location");
    let l1 = meraki.floor_plan_id("HQ>North>Level 1").expect("level 1");
    assert_eq!(at.floor_plan_id.as_deref(), Some(l1.as_str()));
    assert_eq!(at.floor_plan_name.as_deref(), Some("Level 1"));
    // (100 ft, 50 ft from the top-left) of a 150 ft deep floor → (30.48 m, 30.48 m from the bottom-left)
    assert!((at.x.expect("x") - 30.48).abs() < 1e-9, "{at:?}");
    assert!((at.y.expect("y") - 30.48).abs() < 1e-9, "{at:?}");
    assert!(at.time_ms.is_some());

    // The next round: no second handshake; jdoe has walked to Level 2 (10 m, 5 m on a 20 m floor);
    // without userId the receiver has only the MAC.
    meraki.set_omit_user_id(true);
    let report = meraki.push_now().await.expect("posted again");
    assert_eq!(report.validation_status, None, "handshake done once");
    let (method, body) = seen.recv().await.expect("POST");
    assert_eq!(method, "POST");
    let post = parse_scanning(&body).expect("a post");
    let jdoe = post
        .observations
        .iter()
        .find(|o| o.mac == "00:11:22:33:44:01")
        .expect("jdoe's device");
    assert_eq!(jdoe.identity, None);
    let at = jdoe.location.as_ref().expect("a location");
    let l2 = meraki.floor_plan_id("HQ>North>Level 2").expect("level 2");
    assert_eq!(at.floor_plan_id.as_deref(), Some(l2.as_str()));
    assert_eq!((at.x, at.y), (Some(10.0), Some(15.0)));

    // …and the clients list fills the gap.
    let users = dashboard(&meraki)
        .client_users(Duration::from_secs(900))
        .await
        .expect("users");
    assert_eq!(users.get(&jdoe.mac).map(String::as_str), Some("CORP\\jdoe"));

    // A wrong secret is sent as it is: the receiver's check is what refuses it.
    meraki.set_secret("wrong-secret");
    meraki.push_now().await.expect("posted");
    let (_, body) = seen.recv().await.expect("POST");
    assert_eq!(
        parse_scanning(&body).expect("a post").secret.as_deref(),
        Some("wrong-secret")
    );
}
