//! Bounded intake: a body limit per route, a timeout on every request, a bounded queue of bot work
//! (full → 503 with Retry-After, so Webex delivers again later, and nothing is lost), and no webhook
//! mode without a webhook secret unless that is asked for explicitly.

mod common;

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use common::{path_str, whereis, Office, VARIANTS_AND_TIMEOUTS};
use serde_json::json;
use tokio::sync::{watch, Notify};

const SECRET: &str = "intake-secret";

/// A Webex API stand-in whose `GET /messages/held` waits until the test lets it go, and which
/// counts the bot's posts.
#[derive(Clone)]
struct Stand {
    release: Arc<Notify>,
    posts: watch::Sender<usize>,
}

async fn me() -> Json<serde_json::Value> {
    Json(json!({"id": "BOT", "emails": ["whereis@webex.bot"], "displayName": "whereis"}))
}

async fn message(State(stand): State<Stand>, Path(id): Path<String>) -> Json<serde_json::Value> {
    if id == "held" {
        stand.release.notified().await;
    }
    Json(json!({
        "id": id, "roomId": "ROOM", "roomType": "direct", "text": "help",
        "personId": "JANE", "personEmail": "jane.doe@example.com",
        "created": chrono::Utc::now().to_rfc3339(),
    }))
}

async fn posted(State(stand): State<Stand>) -> Json<serde_json::Value> {
    stand.posts.send_modify(|n| *n += 1);
    Json(json!({"id": "REPLY", "roomId": "ROOM"}))
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn event(message_id: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": "HOOK", "name": "whereis", "resource": "messages", "event": "created",
        "data": {"id": message_id, "roomId": "ROOM", "personId": "JANE",
                 "personEmail": "jane.doe@example.com"}
    }))
    .expect("json")
}

async fn deliver(url: &str, body: Vec<u8>) -> reqwest::Response {
    let signature = whereis_webex::sign(SECRET.as_bytes(), &body);
    reqwest::Client::new()
        .post(url)
        .header("X-Spark-Signature", signature)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .expect("delivery answered")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_queue_refuses_with_retry_after_and_loses_nothing() {
    let (posts, mut posted_count) = watch::channel(0usize);
    let stand = Stand {
        release: Arc::new(Notify::new()),
        posts,
    };
    let api = serve(
        Router::new()
            .route("/v1/people/me", get(me))
            .route("/v1/messages/{id}", get(message))
            .route("/v1/messages", post(posted))
            .with_state(stand.clone()),
    )
    .await;
    let office = Office::start().await;
    std::fs::write(office.dir.path().join("token"), "bot-token").expect("token");
    std::fs::write(office.dir.path().join("secret"), SECRET).expect("secret");
    let lookup = format!(
        "{VARIANTS_AND_TIMEOUTS}\n\n[webex]\ntoken_file = \"token\"\nwebhook_secret_file = \"secret\"\napi_base = \"{api}/v1\"\nmode = \"webhook\"\n"
    );
    let config =
        whereis::config::Config::load(&office.config("q.toml", &lookup, &office.all_sources()))
            .expect("config");
    let finder = Arc::new(
        whereis::lookup::Finder::from_config(&config)
            .await
            .expect("finder"),
    );
    let bot = whereis::chat::Bot::connect(
        config.webex.clone().expect("webex"),
        config.privacy.clone(),
        &config.network,
        Arc::clone(&finder),
    )
    .await
    .expect("bot")
    .with_queue_capacity(1);
    let bot = Arc::new(bot);
    let mut finished = bot.subscribe_finished();
    let base = serve(whereis::server::router(finder, Some(bot))).await;
    let webhook = format!("{base}/webhooks/webex");

    // The first message takes the only slot and stays in it until released.
    assert_eq!(deliver(&webhook, event("held")).await.status(), 200);
    let refused = deliver(&webhook, event("second")).await;
    assert_eq!(refused.status(), 503);
    assert_eq!(
        refused
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("30")
    );

    stand.release.notify_one();
    assert_eq!(finished.recv().await.expect("finished"), "held");
    assert_eq!(*posted_count.borrow(), 1, "the held message was answered");
    // Webex delivers the refused one again: it was not marked handled, so it is answered now.
    assert_eq!(deliver(&webhook, event("second")).await.status(), 200);
    posted_count
        .wait_for(|n| *n >= 2)
        .await
        .expect("the second message is answered");
    // And only once.
    assert_eq!(deliver(&webhook, event("second")).await.status(), 200);
    assert_eq!(deliver(&webhook, event("held")).await.status(), 200);

    // A body over the webhook limit is refused before anything is read into memory or claimed.
    let mut huge = event("huge");
    huge.resize(1024 * 1024 + 1, b' ');
    assert_eq!(deliver(&webhook, huge).await.status(), 413);
    assert_eq!(*posted_count.borrow(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_that_takes_too_long_is_cut_off() {
    let office = Office::start().await;
    office
        .sim
        .server("cmx-a")
        .expect("server")
        .set_fault(whereis_sim::Fault::Hang);
    let sources: Vec<_> = office
        .all_sources()
        .into_iter()
        .filter(|s| s.name == "cmx-a")
        .collect();
    let config = office.config(
        "slow.toml",
        &format!(
            "timeout_ms = 20000\n\n[server]\nrequest_timeout_ms = 300\n\n{}",
            common::WEB_TEST_LOCAL
        ),
        &sources,
    );
    let config = whereis::config::Config::load(&config).expect("config");
    assert_eq!(
        config.server.request_timeout,
        std::time::Duration::from_millis(300)
    );
    let finder = Arc::new(
        whereis::lookup::Finder::from_config(&config)
            .await
            .expect("finder"),
    );
    let base = serve(whereis::server::router_with_timeout(
        finder,
        None,
        config.server.request_timeout,
    ))
    .await;
    let answer = reqwest::get(format!("{base}/api/v1/locate?q=jdoe"))
        .await
        .expect("answered");
    assert_eq!(answer.status(), 503);
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_mode_needs_a_secret_or_an_explicit_waiver() {
    let office = Office::start().await;
    std::fs::write(office.dir.path().join("token"), "bot-token").expect("token");
    let webex = "[webex]\ntoken_file = \"token\"\napi_base = \"http://127.0.0.1:9/v1\"\n";
    let server =
        "[server]\nlisten = \"127.0.0.1:0\"\npublic_url = \"https://whereis.example.com\"\n";
    let config = office.config(
        "unsigned.toml",
        &format!("{VARIANTS_AND_TIMEOUTS}\n\n{server}\n{webex}"),
        &office.all_sources(),
    );
    let out = whereis(&["serve", "--config", path_str(&config)]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no webhook secret"), "{stderr}");
    assert!(stderr.contains("allow_unsigned_webhooks"), "{stderr}");

    // check-config says the same, as a failed check.
    let out = whereis(&["check-config", "--config", path_str(&config)]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().any(|l| l.contains("FAIL")
            && l.contains("webex mode")
            && l.contains("webhook_secret")),
        "{text}"
    );
}
