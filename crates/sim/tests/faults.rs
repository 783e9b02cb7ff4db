//! Fault injection, observed by real clients over loopback: each fault, set from the scenario or at run
//! time, and applied to the next request even on a kept-alive connection.

mod common;

use std::time::{Duration, Instant};

use common::{client, get, read_raw, send_raw};
use serde_json::Value;
use tokio::net::TcpStream;
use whereis_sim::{Fault, Scenario, ServerHandle, Simulator};

const V3_JDOE: &str = "/api/location/v3/clients?username=CORP%5Cjdoe";

async fn demo() -> Simulator {
    Simulator::start(Scenario::builtin_demo())
        .await
        .expect("demo starts")
}

fn north(sim: &Simulator) -> &ServerHandle {
    sim.server("cmx-north").expect("server")
}

#[tokio::test]
async fn latency_delays_then_answers() {
    let sim = demo().await;
    let s = north(&sim);
    s.set_fault(Fault::Latency(Duration::from_millis(150)));
    assert_eq!(s.fault(), Fault::Latency(Duration::from_millis(150)));
    let started = Instant::now();
    let resp = get(s, V3_JDOE).await;
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v[0]["deviceId"], "00:11:22:33:44:55");
}

#[tokio::test]
async fn hang_never_answers() {
    let sim = demo().await;
    let s = north(&sim);
    s.set_fault(Fault::Hang);
    let err = client()
        .get(format!("{}{V3_JDOE}", s.base_url()))
        .basic_auth(s.username(), Some(s.password()))
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .expect_err("no answer");
    assert!(err.is_timeout(), "{err}");
    assert_eq!(s.request_count(), 1);
    // other servers are not affected
    assert_eq!(
        get(sim.server("cmx-south").expect("server"), V3_JDOE)
            .await
            .status(),
        204
    );
}

#[tokio::test]
async fn hang_ends_when_the_simulator_shuts_down() {
    let sim = demo().await;
    let s = north(&sim).clone();
    s.set_fault(Fault::Hang);
    let url = format!("{}{V3_JDOE}", s.base_url());
    let (user, pass) = (s.username().to_owned(), s.password().to_owned());
    let pending =
        tokio::spawn(async move { client().get(url).basic_auth(user, Some(pass)).send().await });
    s.wait_for_requests(1).await;
    sim.shutdown().await;
    let outcome = tokio::time::timeout(Duration::from_secs(10), pending)
        .await
        .expect("the hung request ends with the simulator")
        .expect("task");
    assert!(outcome.is_err(), "{outcome:?}");
}

#[tokio::test]
async fn http500_with_text_body() {
    let sim = demo().await;
    let s = north(&sim);
    s.set_fault(Fault::Http500);
    let resp = get(s, V3_JDOE).await;
    assert_eq!(resp.status(), 500);
    assert!(!resp.text().await.expect("body").is_empty());
}

#[tokio::test]
async fn unauthorized_despite_good_credentials() {
    let sim = demo().await;
    let s = north(&sim);
    s.set_fault(Fault::Unauthorized);
    let resp = get(s, V3_JDOE).await;
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().contains_key("www-authenticate"));
}

#[tokio::test]
async fn malformed_json_is_200_json_that_does_not_parse() {
    let sim = demo().await;
    for (server, path) in [
        ("cmx-north", V3_JDOE),
        ("cmx-north", "/api/location/v2/clients?username=CORP%5Cjdoe"),
        ("cmx-north", "/api/config/v1/maps"),
        ("mse-legacy", "/api/contextaware/v1/location/clients/lchen"),
    ] {
        let s = sim.server(server).expect("server");
        s.set_fault(Fault::MalformedJson);
        let resp = get(s, path).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "application/json");
        let text = resp.text().await.expect("body");
        assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
    }
}

#[tokio::test]
async fn no_content_for_a_known_user() {
    let sim = demo().await;
    let s = north(&sim);
    s.set_fault(Fault::NoContent);
    let resp = get(s, V3_JDOE).await;
    assert_eq!(resp.status(), 204);
    assert!(resp.bytes().await.expect("body").is_empty());
}

#[tokio::test]
async fn truncated_body_fails_the_client() {
    let sim = demo().await;
    let s = north(&sim);
    s.set_fault(Fault::TruncatedBody);
    let resp = get(s, V3_JDOE).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.bytes().await.is_err(), "body must end early");
    assert_eq!(s.request_count(), 1);
}

#[tokio::test]
async fn truncated_body_on_the_wire() {
    let sim = demo().await;
    let s = north(&sim);
    s.set_fault(Fault::TruncatedBody);
    let mut stream = TcpStream::connect(s.addr()).await.expect("connect");
    send_raw(&mut stream, s, V3_JDOE).await;
    let resp = read_raw(&mut stream).await.expect("head and partial body");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), Some("application/json"));
    let announced: usize = resp
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .expect("content-length");
    assert!(
        resp.body.len() < announced,
        "{} < {announced}",
        resp.body.len()
    );
    assert!(resp.body.starts_with(b"[{"), "part of the real answer");
}

#[tokio::test]
async fn connection_reset_fails_the_client() {
    let sim = demo().await;
    let s = north(&sim);
    s.set_fault(Fault::ConnectionReset);
    let err = client()
        .get(format!("{}{V3_JDOE}", s.base_url()))
        .basic_auth(s.username(), Some(s.password()))
        .send()
        .await
        .expect_err("reset");
    assert!(!err.is_timeout(), "{err}");
    assert_eq!(s.request_count(), 1);
    s.set_fault(Fault::None);
    assert_eq!(get(s, V3_JDOE).await.status(), 200);
}

#[tokio::test]
async fn connection_reset_on_the_wire() {
    let sim = demo().await;
    let s = north(&sim);
    s.set_fault(Fault::ConnectionReset);
    let mut stream = TcpStream::connect(s.addr()).await.expect("connect");
    send_raw(&mut stream, s, V3_JDOE).await;
    let err = read_raw(&mut stream).await.expect_err("reset");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
}

/// A fault set after a request on a kept-alive connection hits the next request on that connection.
#[tokio::test]
async fn faults_apply_per_request_on_a_kept_alive_connection() {
    let sim = demo().await;
    let s = north(&sim);
    let mut stream = TcpStream::connect(s.addr()).await.expect("connect");

    send_raw(&mut stream, s, V3_JDOE).await;
    let ok = read_raw(&mut stream).await.expect("first answer");
    assert_eq!(ok.status, 200);
    assert!(serde_json::from_slice::<Value>(&ok.body).is_ok());

    s.set_fault(Fault::Http500);
    send_raw(&mut stream, s, V3_JDOE).await;
    assert_eq!(
        read_raw(&mut stream).await.expect("second answer").status,
        500
    );

    s.set_fault(Fault::TruncatedBody);
    send_raw(&mut stream, s, V3_JDOE).await;
    let cut = read_raw(&mut stream).await.expect("third answer");
    let announced: usize = cut
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .expect("content-length");
    assert!(cut.body.len() < announced);
    assert_eq!(s.connection_count(), 1, "all on the same connection");

    // a new connection for the reset, after one good request on it
    s.set_fault(Fault::None);
    let mut stream = TcpStream::connect(s.addr()).await.expect("connect");
    send_raw(&mut stream, s, V3_JDOE).await;
    assert_eq!(read_raw(&mut stream).await.expect("answer").status, 200);
    s.set_fault(Fault::ConnectionReset);
    send_raw(&mut stream, s, V3_JDOE).await;
    let err = read_raw(&mut stream).await.expect_err("reset");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    assert_eq!(s.connection_count(), 2);
    assert_eq!(s.request_count(), 5);
}

/// The same with a pooling HTTP client: the second request reuses the connection and sees the fault.
#[tokio::test]
async fn pooled_client_sees_a_fault_set_between_requests() {
    let sim = demo().await;
    let s = north(&sim);
    let c = client();
    let url = format!("{}{V3_JDOE}", s.base_url());
    let first = c
        .get(&url)
        .basic_auth(s.username(), Some(s.password()))
        .send()
        .await
        .expect("sent");
    assert_eq!(first.status(), 200);
    first.bytes().await.expect("body");
    s.set_fault(Fault::TruncatedBody);
    let second = c
        .get(&url)
        .basic_auth(s.username(), Some(s.password()))
        .send()
        .await
        .expect("head arrives");
    assert!(second.bytes().await.is_err());
    assert_eq!(s.request_count(), 2);
}

#[tokio::test]
async fn fault_from_the_scenario_file() {
    let text = r#"
[[servers]]
name = "broken"
kind = "mse"
username = "u"
password = "p"
fault = "http500"

[[servers]]
name = "slow"
kind = "cmx-v2"
username = "u"
password = "p"
fault = { latency_ms = 50 }
"#;
    let sim = Simulator::start(Scenario::from_toml_str(text).expect("valid"))
        .await
        .expect("starts");
    let broken = sim.server("broken").expect("server");
    assert_eq!(broken.fault(), Fault::Http500);
    let resp = get(broken, "/api/contextaware/v1/location/clients/x").await;
    assert_eq!(resp.status(), 500);
    let slow = sim.server("slow").expect("server");
    let started = Instant::now();
    assert_eq!(get(slow, "/api/location/v2/clients").await.status(), 204);
    assert!(started.elapsed() >= Duration::from_millis(50));
}
