//! People and privacy through the webhook, the CLI and the API: full names through the directory,
//! opt-out, the audit trail, rate limits — on SQLite and, when available, on PostgreSQL.

mod common;

use common::chat::{text, Chat, ChatOptions, JANE};
use common::{path_str, whereis};
use sqlx::Connection;

/// The office's directory: the requester Jane Doe is jdoe; two people are called "Lee".
const PEOPLE: &str = "username,display_name,email,aliases\n\
jdoe,Jane Doe,jane.doe@example.com,JD\n\
asmith,Anna Smith,anna.smith@example.com,\n\
cmse,Carla Mse,carla.mse@example.com,\n\
lcase,Lee Case,lee.case@example.com,\n\
lroe,Lee Roe,lee.roe@example.com,\n";

const ALICE: &str = "alice@example.com";

/// The stores to run each scenario on: SQLite in the test's directory, and a fresh PostgreSQL
/// database when `WHEREIS_TEST_POSTGRES_URL` is set (in CI it must be: `.ci/postgres.sh`).
async fn stores() -> Vec<Option<String>> {
    let mut stores = vec![None];
    match std::env::var("WHEREIS_TEST_POSTGRES_URL") {
        Ok(base) => stores.push(Some(fresh_postgres(&base).await)),
        Err(_) if std::env::var_os("CI").is_some() => {
            panic!("WHEREIS_TEST_POSTGRES_URL is not set: run `eval \"$(bash .ci/postgres.sh | tail -1)\"`")
        }
        Err(_) => eprintln!("note: WHEREIS_TEST_POSTGRES_URL not set; PostgreSQL variant skipped"),
    }
    stores
}

async fn fresh_postgres(base: &str) -> String {
    let mut connection = sqlx::PgConnection::connect(base)
        .await
        .expect("PostgreSQL reachable");
    let name = format!("whereis_p_{:016x}", fastrand::u64(..));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut connection)
        .await
        .expect("create database");
    let mut url = url::Url::parse(base).expect("URL");
    url.set_path(&name);
    url.to_string()
}

async fn chat(store: &Option<String>, privacy: &str) -> Chat {
    let mut sections = "[directory]\nkind = \"file\"\npath = \"people.csv\"\n".to_owned();
    if let Some(url) = store {
        sections.push_str(&format!("\n[store]\nurl = {url:?}\n"));
    }
    // The directory file must exist before the configuration is loaded.
    let options = ChatOptions {
        privacy: privacy.to_owned(),
        sections,
        ..ChatOptions::default()
    };
    Chat::start_with_files(options, &[("people.csv", PEOPLE)]).await
}

#[tokio::test(flavor = "multi_thread")]
async fn full_name_then_opt_out_then_audit() {
    for store in stores().await {
        let chat = chat(&store, "").await;
        let alice = chat.webex.direct_room(ALICE);
        chat.say(&alice, ALICE, "whereis Jane Doe").await;
        let posts = chat.posts(4).await;
        assert_eq!(text(&posts[0]), "Looking for jdoe…", "{store:?}");
        assert!(posts[2].file.is_some() && posts[3].file.is_some());

        // Jane Doe (jdoe, by her email in the directory) opts out.
        let jane = chat.webex.direct_room(JANE);
        chat.say(&jane, JANE, "optout").await;
        let posts = chat.posts(5).await;
        assert!(
            text(&posts[4]).starts_with("Done: jdoe will not be located"),
            "{}",
            text(&posts[4])
        );

        chat.say(&alice, ALICE, "whereis Jane Doe").await;
        let posts = chat.posts(6).await;
        assert_eq!(text(&posts[5]), "jdoe has opted out of whereis.");
        assert!(posts[5].file.is_none());

        // The same rule on the CLI and the API.
        let config = path_str(&chat.config_path);
        let out = whereis(&["find", "jdoe", "--config", config, "--requester", ALICE]).await;
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stdout).contains("opted out"));

        // And the API.
        let config_loaded = whereis::config::Config::load(&chat.config_path).unwrap();
        let finder = whereis::lookup::Finder::from_config(&config_loaded)
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(whereis::server::serve(
            listener,
            whereis::server::router(std::sync::Arc::new(finder), None),
            std::future::pending(),
        ));
        let response = reqwest::Client::new()
            .get(format!("{base}/api/v1/locate?q=jdoe"))
            .header("X-Whereis-Requester", ALICE)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403);
        assert!(response.text().await.unwrap().contains("opted out"));

        // The audit CLI lists the chat lookups (and the CLI and API ones).
        let out = whereis(&["audit", "--config", config, "--target", "jdoe"]).await;
        let audit = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{audit}");
        let rows: Vec<&str> = audit.lines().filter(|l| l.contains(ALICE)).collect();
        assert_eq!(rows.len(), 4, "{audit}");
        assert!(
            rows.iter()
                .any(|r| r.contains("found") && r.contains("chat")),
            "{audit}"
        );
        assert_eq!(
            rows.iter().filter(|r| r.contains("opted out")).count(),
            3,
            "{audit}"
        );
        assert!(
            rows.iter()
                .any(|r| r.contains("api") && r.contains("opted out")),
            "{audit}"
        );

        // The operator's stats.
        let out = whereis(&["stats", "--config", config]).await;
        let stats = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{stats}");
        assert!(stats.contains("lookups      1"), "{stats}");
        assert!(stats.contains("opted out    1 people"), "{stats}");
        assert!(stats.contains("3      opted out"), "{stats}");

        // Jane sees who looked for her; then opts back in.
        chat.say(&jane, JANE, "who looked for me").await;
        let posts = chat.posts(7).await;
        assert!(text(&posts[6]).contains(ALICE), "{}", text(&posts[6]));
        chat.say(&jane, JANE, "optin").await;
        chat.posts(8).await;
        chat.say(&alice, ALICE, "whereis jdoe").await;
        let posts = chat.posts(10).await;
        assert_eq!(text(&posts[8]), "Looking for jdoe…");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_matches_are_offered_and_a_number_picks_one() {
    for store in stores().await {
        let chat = chat(&store, "").await;
        let alice = chat.webex.direct_room(ALICE);
        chat.say(&alice, ALICE, "whereis Lee").await;
        let posts = chat.posts(1).await;
        let list = text(&posts[0]);
        assert!(
            list.contains("1. Lee Case (lcase, lee.case@example.com)"),
            "{list}"
        );
        assert!(
            list.contains("2. Lee Roe (lroe, lee.roe@example.com)"),
            "{list}"
        );
        chat.say(&alice, ALICE, "1").await;
        let posts = chat.posts(3).await;
        assert_eq!(text(&posts[1]), "Looking for lcase…");
        assert!(posts[2].file.is_some());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rate_limit_refuses_politely_and_is_audited() {
    for store in stores().await {
        let chat = chat(&store, "rate_limit_per_hour = 2").await;
        let alice = chat.webex.direct_room(ALICE);
        for (i, _) in (0..2).enumerate() {
            chat.say(&alice, ALICE, "whereis cmse").await;
            chat.posts(2 * (i + 1)).await;
        }
        chat.say(&alice, ALICE, "whereis cmse").await;
        let posts = chat.posts(5).await;
        assert!(
            text(&posts[4]).contains("limit of 2 lookups per hour"),
            "{}",
            text(&posts[4])
        );
        let out = whereis(&[
            "audit",
            "--config",
            path_str(&chat.config_path),
            "--requester",
            ALICE,
        ])
        .await;
        let audit = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            audit.lines().filter(|l| l.contains("rate limited")).count(),
            1,
            "{audit}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_store_refuses_lookups_instead_of_skipping_the_rules() {
    let chat = chat(&None, "").await;
    chat.finder.privacy().store().close().await;
    let error = chat
        .finder
        .find("cmse", &common::tester())
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("cannot check its privacy rules"), "{error}");
    assert_eq!(chat.office.sim.server("mse-1").unwrap().request_count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_store_at_start_is_a_clear_error() {
    let office = common::Office::start().await;
    let dead_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let config = office.config(
        "dead-store.toml",
        &format!("timeout_ms = 500\n\n[store]\nurl = \"postgres://whereis:s3cret@127.0.0.1:{dead_port}/whereis\""),
        &office.all_sources(),
    );
    let out = whereis(&["find", "cmse", "--config", path_str(&config)]).await;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("store"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_instances_on_one_postgresql_answer_once_and_share_the_rate_limit() {
    let Some(Some(url)) = stores().await.into_iter().nth(1) else {
        return; // only meaningful with PostgreSQL (skipped above with a note outside CI)
    };
    let chat = chat(&Some(url), "rate_limit_per_hour = 2").await;
    let second = chat.another_instance().await;
    let alice = chat.webex.direct_room(ALICE);
    let id = chat.webex.user_says(&alice, ALICE, "whereis cmse");
    let (a, b) = tokio::join!(chat.deliver(&id), chat.deliver_to(&second, &id));
    assert_eq!((a, b), (200, 200));
    let posts = chat.settle(&alice, 2).await;
    assert_eq!(
        posts
            .iter()
            .filter(|p| text(p) == "Looking for cmse…")
            .count(),
        1,
        "{posts:#?}"
    );

    // One lookup done (through whichever instance); the second on the other instance, the third refused.
    let id = chat.webex.user_says(&alice, ALICE, "whereis cmse");
    chat.deliver_to(&second, &id).await;
    chat.posts(5).await;
    chat.say(&alice, ALICE, "whereis cmse").await;
    let posts = chat.posts(6).await;
    assert!(
        text(&posts[5]).contains("limit of 2 lookups per hour"),
        "{}",
        text(&posts[5])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_rows_past_the_retention_are_purged() {
    let chat = chat(&None, "audit_retention_days = 1").await;
    let privacy = chat.finder.privacy();
    let old = whereis::store::AuditEntry {
        at: whereis::privacy::now() - 2 * 86_400,
        requester: ALICE.to_owned(),
        target: "cmse".to_owned(),
        channel: "chat".to_owned(),
        outcome: whereis::store::Outcome::Found,
        sources: vec!["mse-1".to_owned()],
        found_by: vec!["mse-1".to_owned()],
        devices: 1,
    };
    privacy.store().record(&old).await.unwrap();
    privacy
        .store()
        .record(&whereis::store::AuditEntry {
            at: whereis::privacy::now(),
            ..old.clone()
        })
        .await
        .unwrap();
    assert_eq!(privacy.purge().await.unwrap(), 1);
    let left = privacy.who_looked_for("cmse").await.unwrap();
    assert_eq!(left.len(), 1);
    assert!(left[0].at > old.at);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_located_person_can_be_told_who_looked() {
    let chat = chat(&None, "notify_target = true").await;
    let alice = chat.webex.direct_room(ALICE);
    chat.say(&alice, ALICE, "whereis Jane Doe").await;
    let posts = chat.posts(5).await;
    let notice = posts
        .iter()
        .find(|p| {
            p.to_person_email.as_deref() == Some(JANE) || p.room_id == chat.webex.direct_room(JANE)
        })
        .unwrap_or_else(|| panic!("no notice to Jane: {posts:#?}"));
    assert!(
        text(notice).contains("alice@example.com located you"),
        "{}",
        text(notice)
    );
}
