//! A requester is their whole email: `optout`, `optin` and `who looked for me` act only on the
//! username the directory maps that email to (or, without a directory, its local part when the
//! domain is allowed) — on chat, the API and the CLI alike. And the domain rule and `notify_target`
//! hold on every channel, not only in chat.

mod common;

use common::chat::{text, Chat, ChatOptions, JANE, WAIT};
use common::{path_str, whereis, Office, VARIANTS_AND_TIMEOUTS, WEB_TEST_PROXY};
use reqwest::StatusCode;
use serde_json::Value;
use whereis_sim::webex::WebexDouble;

/// jdoe's namesake at another company.
const IMPOSTOR: &str = "jdoe@other.example";

const PEOPLE: &str = "username,display_name,email\n\
jdoe,Jane Doe,jane.doe@example.com\n\
asmith,Anna Smith,anna.smith@example.com\n";

async fn call(method: &str, url: &str, requester: &str) -> (StatusCode, Value) {
    let client = reqwest::Client::new();
    let request = match method {
        "POST" => client.post(url),
        _ => client.get(url),
    };
    let response = request
        .header("X-Whereis-Requester", requester)
        .send()
        .await
        .expect("answer");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// jdoe (whose email is `owner`) opts out in chat; then a namesake at another domain tries to undo
/// it everywhere.
async fn impostor_cannot_act_for_jdoe(chat: Chat, owner: &str, expected_refusal: &str) {
    let jane = chat.webex.direct_room(owner);
    chat.say(&jane, owner, "optout").await;
    let posts = chat.posts(1).await;
    assert!(
        text(&posts[0]).starts_with("Done: jdoe will not be located"),
        "{}",
        text(&posts[0])
    );

    // Chat: optin and who looked for me are refused, and say why.
    let room = chat.webex.direct_room(IMPOSTOR);
    chat.say(&room, IMPOSTOR, "optin").await;
    chat.say(&room, IMPOSTOR, "who looked for me").await;
    let posts = chat.posts(3).await;
    for post in &posts[1..3] {
        let said = text(post);
        assert!(said.contains(expected_refusal), "{said}");
        assert!(!said.contains("Done"), "{said}");
    }

    // API.
    let base = common::serve_api(&chat.config_path).await;
    let (status, body) = call("POST", &format!("{base}/api/v1/me/optin"), IMPOSTOR).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains(expected_refusal),
        "{body}"
    );
    let (status, body) = call("GET", &format!("{base}/api/v1/me/lookups"), IMPOSTOR).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.get("lookups").is_none(), "no history leaks: {body}");

    // CLI.
    let config = path_str(&chat.config_path);
    for command in ["optin", "who-looked"] {
        let out = whereis(&[command, "--config", config, "--requester", IMPOSTOR]).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
        assert!(stderr.contains(expected_refusal), "{command}: {stderr}");
        assert!(out.stdout.is_empty(), "{command}: nothing shown");
    }

    // jdoe is still opted out: a colleague's lookup is refused.
    let out = whereis(&[
        "find",
        "jdoe",
        "--config",
        config,
        "--requester",
        "anna.smith@example.com",
    ])
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("opted out"));

    // jdoe can do it, on each channel.
    let (status, body) = call("GET", &format!("{base}/api/v1/me/lookups"), owner).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["username"], "jdoe");
    let out = whereis(&["optin", "--config", config, "--requester", owner]).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("jdoe is opted in"));
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_directory_only_the_directory_email_acts_for_jdoe() {
    // Everyone may look people up (no domain rule); identity comes from the directory.
    let chat = Chat::start_with_files(
        ChatOptions {
            allowed_domains: None,
            sections: "[directory]\nkind = \"file\"\npath = \"people.csv\"\n".to_owned(),
            ..ChatOptions::default()
        },
        &[("people.csv", PEOPLE)],
    )
    .await;
    impostor_cannot_act_for_jdoe(chat, JANE, "is not in the directory").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_directory_the_allowed_domain_vouches() {
    let chat = Chat::start().await; // allowed_domains = ["example.com"], no directory
    impostor_cannot_act_for_jdoe(
        chat,
        "jdoe@example.com",
        "only available to people at example.com",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_directory_or_domains_nobody_can_claim_a_username() {
    let chat = Chat::start_with(ChatOptions {
        allowed_domains: None,
        ..ChatOptions::default()
    })
    .await;
    let room = chat.webex.direct_room(JANE);
    chat.say(&room, JANE, "optout").await;
    let posts = chat.posts(1).await;
    assert!(
        text(&posts[0]).contains("cannot tell which username is yours"),
        "{}",
        text(&posts[0])
    );
    // Nothing was recorded: jdoe can still be found.
    let out = whereis(&["find", "jdoe", "--config", path_str(&chat.config_path)]).await;
    assert_eq!(out.status.code(), Some(0));
}

/// An office with `[privacy]` lines, a directory, and `[webex]` pointing at a double.
async fn office_with(privacy: &str) -> (Office, WebexDouble, std::path::PathBuf) {
    let office = Office::start().await;
    let webex = WebexDouble::start("bot-token", "whereis@webex.bot", "whereis")
        .await
        .expect("double");
    std::fs::write(office.dir.path().join("webex.token"), "bot-token").expect("token");
    std::fs::write(office.dir.path().join("people.csv"), PEOPLE).expect("people");
    let lookup = format!(
        "{VARIANTS_AND_TIMEOUTS}\n\n[webex]\ntoken_file = \"webex.token\"\napi_base = {:?}\nmode = \"websocket\"\n\n[directory]\nkind = \"file\"\npath = \"people.csv\"\n\n[privacy]\n{privacy}\n\n{WEB_TEST_PROXY}",
        webex.base_url()
    );
    let config = office.config("rules.toml", &lookup, &office.all_sources());
    (office, webex, config)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_domain_rule_holds_on_the_cli_and_the_api() {
    let (_office, _webex, config) = office_with("allowed_domains = [\"example.com\"]").await;
    let path = path_str(&config);

    let out = whereis(&["find", "jdoe", "--config", path, "--requester", IMPOSTOR]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("only available to people at example.com")
    );
    assert!(out.stdout.is_empty());
    // The operator at the command line (no --requester) is trusted.
    let out = whereis(&["find", "jdoe", "--config", path]).await;
    assert_eq!(out.status.code(), Some(0));

    let base = common::serve_api(&config).await;
    let (status, body) = call("GET", &format!("{base}/api/v1/locate?q=jdoe"), IMPOSTOR).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.get("devices").is_none());
    // An API caller that names nobody is not let in at all (and leaves no audit row: nobody to
    // name in it).
    let anonymous = reqwest::get(format!("{base}/api/v1/locate?q=jdoe"))
        .await
        .expect("answer");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let (status, body) = call("GET", &format!("{base}/api/v1/locate?q=jdoe"), JANE).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Every refusal is in the audit log, with its channel.
    let out = whereis(&["audit", "--config", path, "--json"]).await;
    let rows: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let refused: Vec<&Value> = rows
        .iter()
        .filter(|r| r["outcome"] == "not allowed")
        .collect();
    assert_eq!(refused.len(), 2, "{rows:#?}");
    assert!(refused
        .iter()
        .any(|r| r["channel"] == "cli" && r["requester"] == IMPOSTOR));
    assert!(refused
        .iter()
        .any(|r| r["channel"] == "api" && r["requester"] == IMPOSTOR));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_located_person_is_told_on_the_cli_and_the_api_too() {
    let (_office, webex, config) = office_with("notify_target = true").await;
    let out = whereis(&[
        "find",
        "jdoe",
        "--config",
        path_str(&config),
        "--requester",
        "anna.smith@example.com",
    ])
    .await;
    assert_eq!(out.status.code(), Some(0));
    // The CLI waited for the notification before exiting.
    let posts = webex.posted();
    assert_eq!(posts.len(), 1, "{posts:#?}");
    assert_eq!(
        posts[0].to_person_email.as_deref(),
        Some("jane.doe@example.com")
    );
    assert!(
        posts[0]
            .text
            .as_deref()
            .is_some_and(|t| t.starts_with("anna.smith@example.com located you")),
        "{posts:#?}"
    );

    let base = common::serve_api(&config).await;
    let (status, _) = call("GET", &format!("{base}/api/v1/locate?q=asmith"), JANE).await;
    assert_eq!(status, StatusCode::OK);
    let posts = webex.wait_for_posts(2, WAIT).await;
    assert_eq!(posts.len(), 2, "{posts:#?}");
    assert_eq!(
        posts[1].to_person_email.as_deref(),
        Some("anna.smith@example.com")
    );
}
