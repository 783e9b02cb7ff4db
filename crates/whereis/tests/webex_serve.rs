//! `whereis-bot serve` and `whereis-bot webex register` as an operator runs them, against the Webex
//! double and the simulated office.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{path_str, whereis, Office, VARIANTS_AND_TIMEOUTS};
use tokio::io::{AsyncBufReadExt, BufReader};
use whereis_sim::webex::WebexDouble;

const SECRET: &str = "serve-test-secret";

async fn setup() -> (Office, WebexDouble, std::path::PathBuf) {
    let office = Office::start().await;
    let webex = WebexDouble::start("bot-token", "whereis@webex.bot", "whereis")
        .await
        .unwrap();
    std::fs::write(office.dir.path().join("token"), "bot-token").unwrap();
    std::fs::write(office.dir.path().join("secret"), SECRET).unwrap();
    let section = format!(
        "{VARIANTS_AND_TIMEOUTS}\n\n[server]\nlisten = \"127.0.0.1:0\"\npublic_url = \"https://whereis.example.com/\"\n\n[webex]\ntoken_file = \"token\"\nwebhook_secret_file = \"secret\"\napi_base = {:?}\n",
        webex.base_url()
    );
    let config = office.config("serve.toml", &section, &office.all_sources());
    (office, webex, config)
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_answers_a_signed_webhook_with_a_map_and_refuses_a_wrong_signature() {
    let (_office, webex, config) = setup().await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_whereis-bot"))
        .args(["serve", "--config", path_str(&config)])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = loop {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("serve printed its address");
        if let Some(url) = line.strip_prefix("whereis listening on ") {
            break url.to_owned();
        }
    };
    let webhook = format!("{base}/webhooks/webex");

    let room = webex.direct_room("jane.doe@example.com");
    let wrong = webex.user_says(&room, "jane.doe@example.com", "whereis jdoe");
    let status = webex
        .deliver(&webhook, &webex.event_body(&wrong), Some("wrong-secret"))
        .await
        .unwrap();
    assert_eq!(status, 401);

    let id = webex.user_says(&room, "jane.doe@example.com", "whereis cmse");
    let status = webex
        .deliver(&webhook, &webex.event_body(&id), Some(SECRET))
        .await
        .unwrap();
    assert_eq!(status, 200);
    let posts = webex.wait_for_posts(2, Duration::from_secs(30)).await;
    assert_eq!(posts.len(), 2, "{posts:#?}");
    assert_eq!(posts[0].text.as_deref(), Some("Looking for cmse…"));
    let map = posts[1].text.clone().unwrap_or_default();
    assert!(map.contains("in Building 9 on Ground Floor"), "{map}");
    let file = posts[1].file.as_ref().expect("a PNG");
    assert!(file.bytes.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert_eq!(
        webex.request_count("GET", &format!("/v1/messages/{wrong}")),
        0,
        "the refused delivery was never looked at"
    );
    child.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn register_creates_the_webhook_once_then_updates_it() {
    let (_office, webex, config) = setup().await;
    for expected in ["created webhook", "updated webhook"] {
        let out = whereis(&["webex", "register", "--config", path_str(&config)]).await;
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.starts_with(expected), "{text}");
        assert!(
            text.contains("https://whereis.example.com/webhooks/webex"),
            "{text}"
        );
        assert!(
            !text.contains(SECRET) && !text.contains("bot-token"),
            "{text}"
        );
    }
    let hooks = webex.webhooks();
    assert_eq!(hooks.len(), 1, "{hooks:#?}");
    assert_eq!(
        hooks[0]["targetUrl"],
        "https://whereis.example.com/webhooks/webex"
    );
    assert_eq!(hooks[0]["resource"], "messages");
    assert_eq!(hooks[0]["event"], "created");
    assert_eq!(hooks[0]["secret"], SECRET);
}

#[tokio::test(flavor = "multi_thread")]
async fn check_config_checks_the_bot_token() {
    let (_office, _webex, config) = setup().await;
    let out = whereis(&["check-config", "--config", path_str(&config)]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("webex") && text.contains("bot \"whereis\""),
        "{text}"
    );

    std::fs::write(config.parent().unwrap().join("token"), "not-the-token").unwrap();
    let out = whereis(&["check-config", "--config", path_str(&config)]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("FAIL  webex"), "{text}");
    assert!(!text.contains("not-the-token"), "{text}");
}
