//! `whereis-bot serve` as an operations team runs it: `/readyz`, `/metrics` (parsed as Prometheus
//! would), a separate metrics listener, and a graceful stop on SIGTERM — the reply to a chat
//! question in flight still posted — with a second signal ending the process at once.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use common::{path_str, Office, VARIANTS_AND_TIMEOUTS, WEB_TEST_PROXY};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, ChildStdout};
use tower::ServiceExt;
use whereis_sim::webex::WebexDouble;
use whereis_sim::Fault;

const SECRET: &str = "service-test-secret";

/// A running `serve` and the URLs it printed.
struct Served {
    child: Child,
    base: String,
    metrics: Option<String>,
    stderr: Lines<BufReader<ChildStderr>>,
    _stdout: Lines<BufReader<ChildStdout>>,
}

async fn serve(config: &Path) -> Served {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_whereis-bot"))
        .args(["serve", "--config", path_str(config)])
        .env("WHEREIS_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("serve starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut metrics = None;
    let base = loop {
        let line = stdout
            .next_line()
            .await
            .expect("read stdout")
            .expect("serve printed its address");
        if let Some(url) = line.strip_prefix("whereis metrics on ") {
            metrics = Some(url.to_owned());
        }
        if let Some(url) = line.strip_prefix("whereis listening on ") {
            break url.to_owned();
        }
    };
    Served {
        child,
        base,
        metrics,
        stderr,
        _stdout: stdout,
    }
}

fn signal(child: &Child, name: &str) {
    let pid = child.id().expect("still running").to_string();
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

/// Reads the server's log until a line contains `text`.
async fn wait_for_log(stderr: &mut Lines<BufReader<ChildStderr>>, text: &str) {
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = stderr.next_line().await {
            if line.contains(text) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "the log never said {text:?}");
}

/// Every sample of a scrape: metric name → (labels, value).
type Series = HashMap<String, Vec<(HashMap<String, String>, f64)>>;

/// Every sample of the scrape, by metric name and its labels.
fn scrape(text: &str) -> Series {
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text");
    let mut series: HashMap<String, Vec<_>> = HashMap::new();
    for sample in scrape.samples {
        let value = match sample.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            prometheus_parse::Value::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
            prometheus_parse::Value::Summary(_) => 0.0,
        };
        let labels = sample
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        series
            .entry(sample.metric)
            .or_default()
            .push((labels, value));
    }
    series
}

fn value(series: &Series, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    series.get(name)?.iter().find_map(|(have, value)| {
        labels
            .iter()
            .all(|(k, v)| have.get(*k).map(String::as_str) == Some(*v))
            .then_some(*value)
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_reports_the_store_and_every_source_and_a_failing_source_does_not_make_it_unready() {
    let office = Office::start().await;
    let failing = office.sim.servers()[0].name().to_owned();
    office.sim.servers()[0].set_fault(Fault::Unauthorized);
    let config = office.config(
        "ready.toml",
        &format!("{VARIANTS_AND_TIMEOUTS}\n[server]\nlisten = \"127.0.0.1:0\""),
        &office.all_sources(),
    );
    let mut served = serve(&config).await;
    let health = reqwest::get(format!("{}/healthz", served.base))
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
    let names: Vec<String> = office
        .sim
        .servers()
        .iter()
        .map(|s| s.name().to_owned())
        .collect();
    let (status, doc) = common::readyz_until(&served.base, |doc| {
        names
            .iter()
            .all(|name| common::source_state(doc, name) != "unknown")
    })
    .await;
    assert_eq!(status, 200, "{doc:#}");
    assert_eq!(doc["ready"], true);
    assert_eq!(doc["store"]["kind"], "sqlite");
    assert_eq!(doc["store"]["state"], "ok");
    assert_eq!(common::source_state(&doc, &failing), "failing", "{doc:#}");
    for name in names.iter().filter(|n| **n != failing) {
        assert_eq!(common::source_state(&doc, name), "ok", "{doc:#}");
    }
    served.child.kill().await.expect("stopped");
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_is_503_when_the_store_cannot_be_reached() {
    let office = Office::start().await;
    let config = whereis::config::Config::load(&office.default_config()).expect("config");
    let finder = Arc::new(
        whereis::lookup::Finder::from_config(&config)
            .await
            .expect("finder"),
    );
    let app = whereis::server::router(Arc::clone(&finder), None);
    finder.privacy().store().close().await;
    let response = app
        .oneshot(
            axum::http::Request::get("/readyz")
                .body(axum::body::Body::empty())
                .expect("request"),
        )
        .await
        .expect("answer");
    assert_eq!(response.status(), 503);
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    let doc: Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(doc["ready"], false);
    assert_eq!(doc["store"]["state"], "unavailable");
    assert!(doc["store"]["error"].as_str().is_some(), "{doc:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_move_with_lookups_and_parse_as_prometheus_text() {
    let office = Office::start().await;
    let config = office.config(
        "metrics.toml",
        &format!("{VARIANTS_AND_TIMEOUTS}\n{WEB_TEST_PROXY}\n[server]\nlisten = \"127.0.0.1:0\""),
        &office.all_sources(),
    );
    let mut served = serve(&config).await;
    let client = reqwest::Client::new();
    let locate = |user: &str| {
        client
            .get(format!("{}/api/v1/locate?q={user}", served.base))
            .header("x-whereis-requester", "ops@example.com")
            .send()
    };
    assert_eq!(locate("cmse").await.expect("locate").status(), 200);
    // Nobody matching is still a 200 with no devices; the metric tells the outcomes apart.
    assert_eq!(locate("nobody-here").await.expect("locate").status(), 200);
    let response = client
        .get(format!("{}/metrics", served.base))
        .send()
        .await
        .expect("metrics");
    assert_eq!(response.status(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = response.text().await.expect("text");
    let series = scrape(&text);
    let found = [("channel", "api"), ("outcome", "found")];
    let not_found = [("channel", "api"), ("outcome", "not_found")];
    assert_eq!(
        value(&series, "whereis_lookups_total", &found),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&series, "whereis_lookups_total", &not_found),
        Some(1.0)
    );
    assert!(
        value(&series, "whereis_store_connections", &[("state", "idle")]).is_some(),
        "{text}"
    );
    for name in office.sim.servers().iter().map(|s| s.name()) {
        assert!(
            value(
                &series,
                "whereis_source_request_duration_seconds_count",
                &[("source", name)]
            )
            .is_some_and(|count| count >= 1.0),
            "no request duration for {name}: {text}"
        );
    }
    // Conventions: counters end in _total, and every series has its HELP and TYPE.
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let mut words = line.split_whitespace().skip(2);
        let (name, kind) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        assert!(name.starts_with("whereis_"), "{line}");
        if kind == "counter" {
            assert!(name.ends_with("_total"), "{line}");
        }
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "no HELP for {name}"
        );
    }

    // A second scrape shows the series moving.
    assert_eq!(locate("cmse").await.expect("locate").status(), 200);
    let again = client
        .get(format!("{}/metrics", served.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert_eq!(
        value(&scrape(&again), "whereis_lookups_total", &found),
        Some(2.0)
    );
    served.child.kill().await.expect("stopped");
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_listen_serves_metrics_apart_from_the_api() {
    let office = Office::start().await;
    let config = office.config(
        "apart.toml",
        &format!(
            "{VARIANTS_AND_TIMEOUTS}\n[server]\nlisten = \"127.0.0.1:0\"\nmetrics_listen = \"127.0.0.1:0\""
        ),
        &office.all_sources(),
    );
    let mut served = serve(&config).await;
    let metrics = served
        .metrics
        .clone()
        .expect("serve printed the metrics address");
    let on_main = reqwest::get(format!("{}/metrics", served.base))
        .await
        .expect("main listener answers");
    assert_eq!(on_main.status(), 404);
    let apart = reqwest::get(&metrics).await.expect("metrics listener");
    assert_eq!(apart.status(), 200);
    let text = apart.text().await.expect("text");
    assert!(
        text.contains("# TYPE whereis_store_connections gauge"),
        "{text}"
    );
    served.child.kill().await.expect("stopped");
}

/// A served bot in webhook mode whose every source answers after `latency`.
async fn chat_setup(latency: Duration) -> (Office, WebexDouble, Served) {
    let office = Office::start().await;
    for server in office.sim.servers() {
        server.set_fault(Fault::Latency(latency));
    }
    let webex = WebexDouble::start("bot-token", "whereis@webex.bot", "whereis")
        .await
        .expect("Webex double");
    std::fs::write(office.dir.path().join("token"), "bot-token").expect("token");
    std::fs::write(office.dir.path().join("secret"), SECRET).expect("secret");
    let section = format!(
        "username_variants = [\"{{user}}\", \"CORP\\\\{{user}}\", \"corp\\\\{{user}}\"]\ntimeout_ms = 20000\ndeadline_ms = 25000\n\n[server]\nlisten = \"127.0.0.1:0\"\npublic_url = \"https://whereis.example.com/\"\n\n[webex]\ntoken_file = \"token\"\nwebhook_secret_file = \"secret\"\napi_base = {:?}\n",
        webex.base_url()
    );
    let config = office.config("chat.toml", &section, &office.all_sources());
    let served = serve(&config).await;
    (office, webex, served)
}

/// Asks the bot about `cmse` and waits until the lookup is under way: "Looking for…" posted and
/// every source asked.
async fn ask_and_wait_for_the_lookup(office: &Office, webex: &WebexDouble, served: &Served) {
    let room = webex.direct_room("jane.doe@example.com");
    let id = webex.user_says(&room, "jane.doe@example.com", "whereis cmse");
    let status = webex
        .deliver(
            &format!("{}/webhooks/webex", served.base),
            &webex.event_body(&id),
            Some(SECRET),
        )
        .await
        .expect("delivered");
    assert_eq!(status, 200);
    let posts = webex.wait_for_posts(1, Duration::from_secs(30)).await;
    assert_eq!(posts[0].text.as_deref(), Some("Looking for cmse…"));
    for server in office.sim.servers() {
        tokio::time::timeout(Duration::from_secs(30), server.wait_for_requests(1))
            .await
            .expect("every source was asked");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_a_chat_lookup_still_posts_the_reply_then_exits_cleanly() {
    let (office, webex, mut served) = chat_setup(Duration::from_millis(1500)).await;
    ask_and_wait_for_the_lookup(&office, &webex, &served).await;
    assert_eq!(webex.posted().len(), 1, "the reply is not there yet");
    signal(&served.child, "TERM");
    let status = tokio::time::timeout(Duration::from_secs(60), served.child.wait())
        .await
        .expect("serve stopped within its grace")
        .expect("exit status");
    assert!(status.success(), "{status:?}");
    let posts = webex.posted();
    assert_eq!(posts.len(), 2, "{posts:#?}");
    let reply = posts[1].text.clone().unwrap_or_default();
    assert!(reply.contains("in Building 9 on Ground Floor"), "{reply}");
    assert!(posts[1].file.is_some(), "the map was posted too");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_signal_exits_at_once_without_waiting_for_the_reply() {
    let (office, webex, mut served) = chat_setup(Duration::from_secs(15)).await;
    ask_and_wait_for_the_lookup(&office, &webex, &served).await;
    signal(&served.child, "TERM");
    wait_for_log(&mut served.stderr, "stopping").await;
    signal(&served.child, "INT");
    let status = tokio::time::timeout(Duration::from_secs(10), served.child.wait())
        .await
        .expect("exited before the 15 s lookup could end")
        .expect("exit status");
    assert_eq!(status.code(), Some(130));
    assert_eq!(webex.posted().len(), 1, "no reply was waited for");
}
