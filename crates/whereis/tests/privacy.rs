//! People and privacy through the webhook, the CLI and the API: full names through the directory,
//! opt-out, the audit trail, rate limits — on SQLite and, when available, on PostgreSQL.

mod common;

use std::sync::Arc;

use common::chat::{text, Chat, JANE};
use common::services::{self, PgDatabase};
use common::{path_str, whereis, Office};
use whereis::lookup::{FindError, Finder};
use whereis::privacy::{Channel, Refusal, Requester};
use whereis::store::{AuditFilter, Outcome};
use whereis_sim::Fault;

/// The office's directory: the requester Jane Doe is jdoe; two people are called "Lee".
const PEOPLE: &str = "username,display_name,email,aliases\n\
jdoe,Jane Doe,jane.doe@example.com,JD\n\
asmith,Anna Smith,anna.smith@example.com,\n\
cmse,Carla Mse,carla.mse@example.com,\n\
lcase,Lee Case,lee.case@example.com,\n\
lroe,Lee Roe,lee.roe@example.com,\n";

const ALICE: &str = "alice@example.com";

async fn chat(store: &Option<PgDatabase>, privacy: &str) -> Chat {
    Chat::with_directory(store, privacy, PEOPLE).await
}

#[tokio::test(flavor = "multi_thread")]
async fn full_name_then_opt_out_then_audit() {
    for store in services::stores().await {
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
    for store in services::stores().await {
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
    for store in services::stores().await {
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
    let Some(db) = services::fresh_postgres().await else {
        return; // only meaningful with PostgreSQL (skipped with a note outside CI)
    };
    let store = Some(db); // dropped (with the database) at the end of the test
    let chat = chat(&store, "rate_limit_per_hour = 2").await;
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
        precision: None,
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

/// `instances` finders on one store (SQLite beside the configuration, or `store`), asking only
/// mse-1 for `CORP\user` — one request per lookup — under a limit of `limit` per hour.
async fn limited_finders(
    office: &Office,
    store: &Option<PgDatabase>,
    limit: u32,
    instances: usize,
) -> Vec<Arc<Finder>> {
    let mut settings = format!(
        "username_variants = [\"CORP\\\\{{user}}\"]\ntimeout_ms = 800\ndeadline_ms = 1500\n\n\
         [privacy]\nrate_limit_per_hour = {limit}\n"
    );
    if let Some(db) = store {
        settings.push_str(&format!("\n[store]\nurl = {:?}\n", db.url));
    }
    let path = office.config("limited.toml", &settings, &[office.source("mse-1")]);
    let config = whereis::config::Config::load(&path).expect("configuration");
    let mut finders = Vec::new();
    for _ in 0..instances {
        finders.push(Arc::new(
            Finder::from_config(&config).await.expect("finder starts"),
        ));
    }
    finders
}

/// The outcomes in the audit log of `requester`, oldest first.
async fn outcomes(finder: &Finder, requester: &str) -> Vec<Outcome> {
    let mut rows = finder
        .privacy()
        .store()
        .audit(&AuditFilter {
            requester: Some(requester.to_owned()),
            ..AuditFilter::default()
        })
        .await
        .expect("audit");
    rows.reverse();
    rows.into_iter().map(|row| row.outcome).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_lookups_run_exactly_the_limit() {
    for store in services::stores().await {
        // One instance, then two sharing the store (and so the limit).
        for instances in [1, 2] {
            let office = Office::start().await;
            let finders = limited_finders(&office, &store, 10, instances).await;
            let requester = Requester::new(&format!("r{instances}@example.com"), Channel::Api);
            let start = Arc::new(tokio::sync::Barrier::new(50));
            let tasks: Vec<_> = (0..50)
                .map(|i| {
                    let finder = Arc::clone(&finders[i % instances]);
                    let (start, requester) = (Arc::clone(&start), requester.clone());
                    tokio::spawn(async move {
                        start.wait().await;
                        finder.find("cmse", &requester).await
                    })
                })
                .collect();
            let (mut found, mut limited) = (0, 0);
            for task in tasks {
                match task.await.expect("task") {
                    Ok(report) => {
                        assert_eq!(report.devices.len(), 1, "{report:?}");
                        found += 1;
                    }
                    Err(FindError::Refused(Refusal::RateLimited(10))) => limited += 1,
                    Err(other) => panic!("unexpected: {other}"),
                }
            }
            let what = format!("{instances} instance(s), {store:?}");
            assert_eq!((found, limited), (10, 40), "{what}");
            // The office saw at most the 10 lookups that ran (lookups asking the same at the
            // same moment share one request), and a refused lookup asks nothing.
            let mse = office.sim.server("mse-1").expect("mse-1");
            let asked = mse.request_count();
            assert!((1..=10).contains(&asked), "{what}: {:?}", mse.requests());
            let refused = finders[0].find("cmse", &requester).await;
            assert_eq!(
                refused.map(|r| r.devices.len()),
                Err(FindError::Refused(Refusal::RateLimited(10))),
                "{what}"
            );
            assert_eq!(mse.request_count(), asked, "{what}");
            let audited = outcomes(&finders[0], &requester.id).await;
            let count = |outcome| audited.iter().filter(|o| **o == outcome).count();
            assert_eq!(count(Outcome::Found), 10, "{what}");
            assert_eq!(count(Outcome::RateLimited), 41, "{what}");
            assert_eq!(audited.len(), 51, "{what}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_lookups_and_opted_out_targets_use_the_allowance() {
    for store in services::stores().await {
        let office = Office::start().await;
        let finder = &limited_finders(&office, &store, 2, 1).await[0];
        let mse = office.sim.server("mse-1").expect("mse-1");

        // Every source fails: the lookups ran, and they count.
        mse.set_fault(Fault::Http500);
        let requester = Requester::new("prober@example.com", Channel::Chat);
        for _ in 0..2 {
            let report = finder
                .find("cmse", &requester)
                .await
                .expect("the lookup runs");
            assert!(
                report.devices.is_empty() && !report.errors.is_empty(),
                "{report:?}"
            );
        }
        let asked = mse.request_count();
        assert!(asked >= 2);
        mse.set_fault(Fault::None);
        assert_eq!(
            finder.find("cmse", &requester).await.unwrap_err(),
            FindError::Refused(Refusal::RateLimited(2))
        );
        assert_eq!(mse.request_count(), asked, "a refused lookup asks nobody");
        assert_eq!(
            outcomes(finder, &requester.id).await,
            vec![Outcome::Failed, Outcome::Failed, Outcome::RateLimited],
            "{store:?}"
        );

        // Asking about someone who opted out counts too: probing who opted out is limited.
        finder.privacy().opt_out("asmith").await.expect("opt out");
        let requester = Requester::new("curious@example.com", Channel::Api);
        for _ in 0..2 {
            assert!(matches!(
                finder.find("asmith", &requester).await,
                Err(FindError::Refused(Refusal::OptedOut(_)))
            ));
        }
        assert_eq!(
            finder.find("asmith", &requester).await.unwrap_err(),
            FindError::Refused(Refusal::RateLimited(2))
        );
        assert_eq!(
            outcomes(finder, &requester.id).await,
            vec![Outcome::OptedOut, Outcome::OptedOut, Outcome::RateLimited]
        );
        assert_eq!(mse.request_count(), asked);
    }
}
