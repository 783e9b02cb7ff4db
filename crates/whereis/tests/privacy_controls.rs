//! The privacy controls as people meet them, through chat, the API, the command line and
//! favourites: opt-in by policy, coarse precision (nothing finer in any answer or map), the
//! audience (team, named people, blocked), working hours, and the audit of each — on SQLite and,
//! when available, on PostgreSQL shared by two instances.

mod common;

use common::chat::{text, Chat, JANE};
use common::services::{self, PgDatabase};
use common::{path_str, whereis};
use whereis::privacy::{Channel, Precision, Requester};
use whereis_floormap::MARKER_COLOR;
use whereis_sim::webex::PostedMessage;

/// Jane Doe (jdoe) and Anna Smith are in the network team; Lee Case is in sales.
const PEOPLE: &str = "username,display_name,email,aliases,team,manager\n\
jdoe,Jane Doe,jane.doe@example.com,,network,boss\n\
asmith,Anna Smith,anna.smith@example.com,,network,boss\n\
lcase,Lee Case,lee.case@example.com,,sales,chief\n";

const ALICE: &str = "alice@example.com";
const ANNA: &str = "anna.smith@example.com";
const LEE: &str = "lee.case@example.com";

/// What jdoe's devices carry that only `exact` may show (office.toml).
const EXACT_ONLY: [&str; 6] = [
    "00:11:22:33:44",
    "10.0.0.7",
    "120.5",
    "Intel",
    "CORP\\\\jdoe",
    "\"marker\"",
];

async fn chat(store: &Option<PgDatabase>, privacy: &str) -> Chat {
    Chat::with_directory(store, privacy, PEOPLE).await
}

/// `email` says `text` in their direct room; the bot's reply (the `expect` posts it makes).
async fn ask(chat: &Chat, email: &str, text_: &str, expect: usize) -> Vec<PostedMessage> {
    let before = chat.webex.posted().len();
    let room = chat.webex.direct_room(email);
    chat.say(&room, email, text_).await;
    let posts = chat.posts(before + expect).await;
    posts[before..].to_vec()
}

fn texts(posts: &[PostedMessage]) -> String {
    posts.iter().map(text).collect::<Vec<_>>().join("\n")
}

/// The API base URL of the chat instance.
fn api(chat: &Chat) -> String {
    chat.webhook_url
        .trim_end_matches("/webhooks/webex")
        .to_owned()
}

async fn locate(chat: &Chat, requester: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .get(format!("{}/api/v1/locate?q=jdoe", api(chat)))
        .header("X-Whereis-Requester", requester)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

fn assert_nothing_exact(what: &str, body: &str) {
    for detail in EXACT_ONLY {
        assert!(!body.contains(detail), "{what} shows {detail:?}: {body}");
    }
}

/// Whether a PNG has any pixel of the marker's colour.
fn has_marker(png: &[u8]) -> bool {
    let image = image::load_from_memory(png).unwrap().to_rgb8();
    image.pixels().any(|p| p.0 == MARKER_COLOR)
}

#[tokio::test(flavor = "multi_thread")]
async fn opt_in_floor_precision_and_the_team_rule_on_every_channel() {
    for store in services::stores().await {
        let chat = chat(&store, "default = \"opt-in\"\nmax_precision = \"floor\"").await;

        // Nobody is findable until they opt in.
        let reply = ask(&chat, ALICE, "whereis jdoe", 1).await;
        assert_eq!(
            texts(&reply),
            "jdoe has not opted in to whereis.",
            "{store:?}"
        );
        let (status, body) = locate(&chat, ALICE).await;
        assert_eq!(status, 403, "{body}");
        assert!(body.contains("not opted in"), "{body}");

        let reply = ask(&chat, JANE, "optin", 1).await;
        assert!(texts(&reply).contains("jdoe"), "{}", texts(&reply));

        // Found, to the floor: building and floor named, plans without a marker, no MAC.
        let reply = ask(&chat, ALICE, "whereis jdoe", 4).await;
        assert_eq!(text(&reply[0]), "Looking for jdoe…");
        let sentences = texts(&reply[1..]);
        assert!(
            sentences.contains("in Building 5 on Level 3"),
            "{sentences}"
        );
        assert_nothing_exact("chat", &sentences);
        let plans: Vec<&[u8]> = reply
            .iter()
            .filter_map(|p| p.file.as_ref().map(|f| f.bytes.as_slice()))
            .collect();
        assert!(!plans.is_empty(), "a floor plan is sent");
        for plan in plans {
            assert!(!has_marker(plan), "the plan has no marker");
        }
        let (status, body) = locate(&chat, ALICE).await;
        assert_eq!(status, 200, "{body}");
        let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(doc["precision"], "floor");
        assert_nothing_exact("the API", &body);
        for device in doc["devices"].as_array().unwrap() {
            for key in [
                "mac",
                "x",
                "y",
                "ip",
                "identity",
                "confidence",
                "manufacturer",
            ] {
                assert!(device.get(key).is_none(), "{key} in {device}");
            }
        }
        // The plan the API hands out has no marker either.
        let url = doc["devices"][0]["map"]["url"].as_str().unwrap();
        let png = reqwest::Client::new()
            .get(format!("{}{url}", api(&chat)))
            .header("X-Whereis-Requester", ALICE)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert!(!has_marker(&png));
        let config = path_str(&chat.config_path);
        let maps = tempfile::tempdir().unwrap();
        let out = whereis(&[
            "find",
            "jdoe",
            "--json",
            "--config",
            config,
            "--requester",
            ALICE,
            "--map-dir",
            path_str(maps.path()),
        ])
        .await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{stdout}");
        assert_nothing_exact("the command line", &stdout);
        for file in std::fs::read_dir(maps.path()).unwrap() {
            let png = std::fs::read(file.unwrap().path()).unwrap();
            assert!(!has_marker(&png));
        }

        // She narrows it to the building: text only.
        ask(&chat, JANE, "precision building", 1).await;
        let reply = ask(&chat, ALICE, "whereis jdoe", 4).await;
        assert!(
            reply.iter().all(|p| p.file.is_none()),
            "no map at building precision"
        );
        let sentences = texts(&reply[1..]);
        assert!(sentences.contains("in Building 5"), "{sentences}");
        assert!(!sentences.contains("Level 3"), "{sentences}");

        // Only her team: Anna (network) may, Lee (sales) and Alice (not in the directory) may not.
        let reply = ask(&chat, JANE, "share with team", 1).await;
        assert!(texts(&reply).contains("your team"), "{}", texts(&reply));
        let reply = ask(&chat, ANNA, "whereis jdoe", 4).await;
        assert_eq!(text(&reply[0]), "Looking for jdoe…");
        for refused in [LEE, ALICE] {
            let reply = ask(&chat, refused, "whereis jdoe", 1).await;
            assert_eq!(texts(&reply), "jdoe is not available.", "{refused}");
        }
        // Named people may too; blocked people never.
        ask(&chat, JANE, "share with alice@example.com", 1).await;
        let reply = ask(&chat, ALICE, "whereis jdoe", 4).await;
        assert_eq!(text(&reply[0]), "Looking for jdoe…");
        ask(&chat, JANE, "block anna.smith@example.com", 1).await;
        let reply = ask(&chat, ANNA, "whereis jdoe", 1).await;
        assert_eq!(texts(&reply), "jdoe is not available.");
        let (status, body) = locate(&chat, ANNA).await;
        assert_eq!(
            (status, body.contains("not available")),
            (403, true),
            "{body}"
        );
        let out = whereis(&["find", "jdoe", "--config", config, "--requester", ANNA]).await;
        assert!(String::from_utf8_lossy(&out.stdout).contains("not available"));

        // Favourites: Lee starred her, but she does not share with him, so she is simply absent.
        let reply = ask(&chat, LEE, "star Jane Doe", 1).await;
        assert!(
            texts(&reply).starts_with("Starred jdoe"),
            "{}",
            texts(&reply)
        );
        let reply = ask(&chat, LEE, "favourites", 1).await;
        assert!(
            texts(&reply).starts_with("None of your 1 starred"),
            "{}",
            texts(&reply)
        );
        ask(&chat, ALICE, "star jdoe", 1).await;
        let reply = ask(&chat, ALICE, "favourites", 1).await;
        let panel = texts(&reply);
        assert!(panel.contains("Jane Doe (jdoe): Building 5"), "{panel}");
        assert_nothing_exact("favourites", &panel);

        // Her settings, as she reads them.
        let reply = ask(&chat, JANE, "settings", 1).await;
        let settings = texts(&reply);
        assert!(settings.contains("precision: building"), "{settings}");
        assert!(
            settings.contains("your team, alice@example.com (never: anna.smith@example.com)"),
            "{settings}"
        );

        // Every one of these is audited, with the precision, never a position.
        let out = whereis(&["audit", "--config", config, "--target", "jdoe"]).await;
        let audit = String::from_utf8_lossy(&out.stdout);
        for expected in [
            "not opted in",
            "not shared",
            "floor",
            "building",
            "favourites",
        ] {
            assert!(audit.contains(expected), "{expected}: {audit}");
        }
        assert_nothing_exact("the audit log", &audit);
        let reply = ask(&chat, JANE, "who looked for me", 1).await;
        let who = texts(&reply);
        assert!(who.contains(LEE) && who.contains("not shared"), "{who}");
        assert!(who.contains("to the floor"), "{who}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn outside_working_hours_nobody_is_located_on_any_channel() {
    // A window that is closed now, whatever the time the test runs at.
    let hour = (whereis::privacy::now() / 3600) % 24;
    let closed = if hour < 12 {
        "20:00-21:00"
    } else {
        "03:00-04:00"
    };
    let privacy =
        format!("working_hours = \"{closed}\"\nworking_days = [\"mon-sun\"]\ntimezone = \"UTC\"");
    let chat = chat(&None, &privacy).await;
    let reply = ask(&chat, ALICE, "whereis jdoe", 1).await;
    assert_eq!(texts(&reply), "jdoe is not shown outside working hours.");
    let (status, body) = locate(&chat, ALICE).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("outside working hours"), "{body}");
    let config = path_str(&chat.config_path);
    let out = whereis(&["find", "jdoe", "--config", config, "--requester", ALICE]).await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("outside working hours"));
    let out = whereis(&["audit", "--config", config, "--target", "jdoe"]).await;
    let audit = String::from_utf8_lossy(&out.stdout);
    assert_eq!(audit.matches("outside hours").count(), 3, "{audit}");
}

#[tokio::test(flavor = "multi_thread")]
async fn settings_hold_across_restarts_and_instances() {
    for store in services::stores().await {
        let chat = chat(&store, "").await;
        ask(&chat, JANE, "precision floor", 1).await;
        ask(&chat, JANE, "block lee.case@example.com", 1).await;
        // Another finder on the same store (another instance, or the same one restarted).
        let config = whereis::config::Config::load(&chat.config_path).unwrap();
        let other = whereis::lookup::Finder::from_config(&config).await.unwrap();
        let report = other
            .find("jdoe", &Requester::new(ALICE, Channel::Api))
            .await
            .unwrap();
        assert_eq!(report.precision, Precision::Floor, "{store:?}");
        assert!(report.devices.iter().all(|d| d.device.mac.is_empty()));
        let refused = other
            .find("jdoe", &Requester::new(LEE, Channel::Api))
            .await
            .unwrap_err();
        assert_eq!(refused.to_string(), "jdoe is not available");
        // And another process on the same store: the command line.
        let config = path_str(&chat.config_path);
        let out = whereis(&[
            "find",
            "jdoe",
            "--json",
            "--config",
            config,
            "--requester",
            ALICE,
        ])
        .await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{stdout}");
        let doc: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON document");
        assert_eq!(doc["precision"], "floor", "{store:?}: {doc:#}");
        assert_nothing_exact("another process", &stdout);
        let out = whereis(&["find", "jdoe", "--config", config, "--requester", LEE]).await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("jdoe is not available"),
            "{store:?}: {stdout}"
        );
    }
}

/// The service's own log (at its default level, `info`) never holds a position, a MAC or an
/// address — also when the lookups it serves are answered exactly.
#[tokio::test(flavor = "multi_thread")]
async fn the_service_log_holds_no_position_mac_or_address() {
    use tokio::io::AsyncBufReadExt;
    let office = common::Office::start().await;
    let config = office.config(
        "logs.toml",
        &format!(
            "{}\n\n[server]\nlisten = \"127.0.0.1:0\"\n\n{}",
            common::VARIANTS_AND_TIMEOUTS,
            common::WEB_TEST_LOCAL
        ),
        &office.all_sources(),
    );
    let log_path = office.dir.path().join("serve.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_whereis-bot"))
        .args(["serve", "--config", path_str(&config)])
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let base = loop {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("serve says where it listens");
        if let Some((_, url)) = line.split_once("whereis listening on") {
            break url.trim().to_owned();
        }
    };
    for query in ["jdoe", "Jane Doe", "nobody-here"] {
        let response = reqwest::get(format!("{base}/api/v1/locate?q={query}"))
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        if query == "jdoe" {
            assert_eq!(status, 200, "{body}");
            assert!(
                body.contains("00:11:22:33:44:55"),
                "an exact answer: {body}"
            );
        }
    }
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let logged = std::fs::read_to_string(&log_path).unwrap();
    assert!(!logged.trim().is_empty(), "the service logged something");
    for detail in ["00:11:22:33:44", "10.0.0.7", "120.5", "\"x\"", "Intel"] {
        assert!(
            !logged.contains(detail),
            "the log shows {detail:?}:\n{logged}"
        );
    }
}

/// The same settings and favourites through the API.
#[tokio::test(flavor = "multi_thread")]
async fn settings_and_favourites_through_the_api() {
    let chat = chat(&None, "").await;
    let client = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, who: &str, body: Option<serde_json::Value>| {
        let mut request = client
            .request(method, format!("{}{path}", api(&chat)))
            .header("X-Whereis-Requester", who);
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            (
                status,
                serde_json::from_str::<serde_json::Value>(&text).unwrap_or_default(),
                text,
            )
        }
    };
    let (status, mine, _) = call(reqwest::Method::GET, "/api/v1/me/settings", JANE, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        (&mine["username"], &mine["precision"], &mine["audience"]),
        (&"jdoe".into(), &"exact".into(), &"everyone".into())
    );
    let change = serde_json::json!({"precision": "floor", "share": "block", "email": "Lee.Case@example.com"});
    let (status, mine, text) = call(
        reqwest::Method::POST,
        "/api/v1/me/settings",
        JANE,
        Some(change),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(mine["precision"], "floor");
    assert_eq!(mine["blocked"], serde_json::json!([LEE]));
    let bad = serde_json::json!({"precision": "metre"});
    let (status, _, _) = call(
        reqwest::Method::POST,
        "/api/v1/me/settings",
        JANE,
        Some(bad),
    )
    .await;
    assert_eq!(status, 400);
    let (_, mine, _) = call(reqwest::Method::GET, "/api/v1/me/settings", JANE, None).await;
    assert_eq!(
        mine["precision"], "floor",
        "a refused change changes nothing"
    );

    for who in [ALICE, LEE] {
        let star = serde_json::json!({"who": "Jane Doe"});
        let (status, starred, text) =
            call(reqwest::Method::POST, "/api/v1/favourites", who, Some(star)).await;
        assert_eq!(
            (status, &starred["username"]),
            (200, &"jdoe".into()),
            "{text}"
        );
    }
    let (status, panel, text) = call(reqwest::Method::GET, "/api/v1/favourites", ALICE, None).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(panel["present"][0]["username"], "jdoe", "{text}");
    assert_eq!(panel["present"][0]["precision"], "floor", "{text}");
    assert!(text.contains("Building 5, Level 3"), "{text}");
    assert_nothing_exact("the favourites API", &text);
    let (_, panel, text) = call(reqwest::Method::GET, "/api/v1/favourites", LEE, None).await;
    assert_eq!(panel["starred"], serde_json::json!(["jdoe"]), "{text}");
    assert_eq!(
        panel["present"],
        serde_json::json!([]),
        "blocked: simply absent"
    );
    let (status, removed, _) = call(
        reqwest::Method::DELETE,
        "/api/v1/favourites/jdoe",
        ALICE,
        None,
    )
    .await;
    assert_eq!((status, &removed["changed"]), (200, &true.into()));
    let (_, panel, _) = call(reqwest::Method::GET, "/api/v1/favourites", ALICE, None).await;
    assert_eq!(panel["starred"], serde_json::json!([]));
}

/// Favourites are looked up together, each under the hourly limit: once it runs out the panel
/// says so, lists whom it could look up, and the audit shows the refused lookup.
#[tokio::test(flavor = "multi_thread")]
async fn favourites_stop_at_the_hourly_limit_and_say_so() {
    let chat = chat(&None, "rate_limit_per_hour = 2").await;
    let config = whereis::config::Config::load(&chat.config_path).unwrap();
    let finder = whereis::lookup::Finder::from_config(&config).await.unwrap();
    let alice = Requester::new(ALICE, Channel::Web);
    for who in ["jdoe", "asmith", "lcase"] {
        finder.privacy().star(&alice, who).await.unwrap();
    }
    let panel = finder.favourites(&alice).await.unwrap();
    assert_eq!(panel.starred, ["jdoe", "asmith", "lcase"]);
    assert!(panel.rate_limited, "{panel:?}");
    assert_eq!(panel.present.len(), 2, "{panel:?}");
    let audit = finder
        .privacy()
        .store()
        .audit(&whereis::store::AuditFilter::default())
        .await
        .unwrap();
    let outcomes: Vec<&str> = audit
        .iter()
        .filter(|e| e.channel == "favourites")
        .map(|e| e.outcome.as_str())
        .collect();
    assert_eq!(outcomes.len(), 3, "{outcomes:?}");
    assert_eq!(
        outcomes.iter().filter(|o| **o == "rate limited").count(),
        1,
        "{outcomes:?}"
    );
}
