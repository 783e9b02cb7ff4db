//! Every fault a location server can have: the answer still arrives, names the failed source, and
//! keeps what the healthy source found.

mod common;

use std::time::{Duration, Instant};

use common::{errors, find_json, macs, Office};
use whereis_sim::Fault;

const LAPTOP: &str = "00:11:22:33:44:55"; // on cmx-a
const PHONE: &str = "00:11:22:33:44:66"; // on cmx-b

/// Runs `find jdoe` with `fault` injected into cmx-b; returns the exit code, MACs and errors.
async fn with_fault_on_cmx_b(fault: Fault) -> (i32, Vec<String>, Vec<(String, String)>) {
    let office = Office::start().await;
    office.sim.server("cmx-b").unwrap().set_fault(fault);
    let config = office.default_config();
    let started = Instant::now();
    let (code, doc) = find_json("jdoe", &config).await;
    // Not a performance check: a hung source must not hold the answer (deadline 1.5 s) for long.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{fault:?}: answer took {:?}",
        started.elapsed()
    );
    (code, macs(&doc), errors(&doc))
}

async fn assert_failed(fault: Fault, expected: &[&str]) {
    let (code, macs, errors) = with_fault_on_cmx_b(fault).await;
    assert_eq!(code, 0, "{fault:?}: the laptop on cmx-a is still found");
    assert_eq!(macs, [LAPTOP], "{fault:?}");
    assert_eq!(errors.len(), 1, "{fault:?}: {errors:?}");
    assert_eq!(errors[0].0, "cmx-b", "{fault:?}");
    assert!(
        expected.iter().any(|e| errors[0].1.contains(e)),
        "{fault:?}: {:?} should say one of {expected:?}",
        errors[0].1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hanging_server_times_out() {
    assert_failed(Fault::Hang, &["timed out after 800 ms"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_server_beyond_the_timeout_times_out() {
    assert_failed(
        Fault::Latency(Duration::from_secs(30)),
        &["timed out after 800 ms"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_server_within_the_timeout_still_answers() {
    let (code, macs, errors) =
        with_fault_on_cmx_b(Fault::Latency(Duration::from_millis(100))).await;
    assert_eq!(code, 0);
    assert_eq!(macs, [LAPTOP, PHONE]);
    assert_eq!(errors, []);
}

#[tokio::test(flavor = "multi_thread")]
async fn http_500() {
    assert_failed(Fault::Http500, &["HTTP 500 Internal Server Error"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unauthorized() {
    assert_failed(Fault::Unauthorized, &["credentials rejected (HTTP 401)"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_json() {
    assert_failed(Fault::MalformedJson, &["malformed JSON"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn truncated_body() {
    assert_failed(Fault::TruncatedBody, &["answer cut off", "malformed JSON"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_reset() {
    assert_failed(Fault::ConnectionReset, &["request failed", "connection"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_content_means_nobody_there_not_an_error() {
    let (code, macs, errors) = with_fault_on_cmx_b(Fault::NoContent).await;
    assert_eq!(code, 0);
    assert_eq!(macs, [LAPTOP]);
    assert_eq!(errors, []);
}
