//! `whereis-bot find` against the simulated office: what an operator sees on the terminal.

mod common;

use common::{device, errors, find_json, macs, path_str, whereis, Office, VARIANTS_AND_TIMEOUTS};

#[tokio::test(flavor = "multi_thread")]
async fn finds_laptop_on_cmx_v3_and_phone_on_another_server() {
    let office = Office::start().await;
    let (code, doc) = find_json("jdoe", &office.default_config()).await;
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(doc["query"], "jdoe");
    assert_eq!(doc["person"]["username"], "jdoe");
    // Most recently seen first: the laptop (12 s) before the phone (30 s).
    assert_eq!(macs(&doc), ["00:11:22:33:44:55", "00:11:22:33:44:66"]);

    let laptop = device(&doc, "00:11:22:33:44:55");
    assert_eq!(laptop["source"], "cmx-a");
    assert_eq!(laptop["api"], "cmx-v3");
    assert_eq!(laptop["identity"], "CORP\\jdoe");
    assert_eq!(laptop["status"], "ASSOCIATED");
    assert_eq!(laptop["ssid"], "CORP");
    assert_eq!(laptop["ip"], "10.0.0.7");
    assert_eq!(laptop["hierarchy"], "HQ>Building 5>Level 3");
    assert_eq!(laptop["campus"], "HQ");
    assert_eq!(laptop["building"], "Building 5");
    assert_eq!(laptop["floor"], "Level 3");
    assert_eq!(laptop["x"], 120.5);
    assert_eq!(laptop["y"], 40.0);
    assert_eq!(laptop["unit"], "FEET");
    // v3 records carry no floor size: it comes from the map configuration.
    assert_eq!(laptop["floor_width"], 300.0);
    assert_eq!(laptop["floor_length"], 150.0);
    assert_eq!(laptop["last_seen_seconds"], 12);
    assert_eq!(laptop["confidence"], 24.0);
    assert_eq!(laptop["stale"], false);

    let phone = device(&doc, "00:11:22:33:44:66");
    assert_eq!(phone["source"], "cmx-b");
    assert_eq!(phone["status"], "PROBING");
    assert_eq!(phone["building"], "Building 9");
    assert_eq!(phone["unit"], "METER");
    assert_eq!(phone["floor_width"], 80.0);
    assert_eq!(phone["ip"], serde_json::Value::Null);
    assert_eq!(doc["errors"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn text_answer_reads_like_a_sentence() {
    let office = Office::start().await;
    let config = office.default_config();
    let out = whereis(&["find", "jdoe", "--config", path_str(&config)]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.starts_with("jdoe has 2 devices:\n"), "{text}");
    assert!(
        text.contains("jdoe is ASSOCIATED to CORP in Building 5 on Level 3 (HQ), seen 12 s ago — 00:11:22:33:44:55, Intel Corporate, 10.0.0.7, via cmx-a"),
        "{text}"
    );
    assert!(
        text.contains("jdoe is PROBING on CORP in Building 9 on Ground Floor"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn server_without_v3_api_is_asked_through_v2() {
    let office = Office::start().await;
    let config = office.config(
        "v2.toml",
        VARIANTS_AND_TIMEOUTS,
        // Configured as "cmx": whereis must find out by itself that there is no v3 API.
        &[common::SourceEntry {
            kind: "cmx".into(),
            ..office.source("legacy-v2")
        }],
    );
    let (code, doc) = find_json("bwong", &config).await;
    assert_eq!(code, 0, "{doc:#}");
    let d = device(&doc, "bb:00:00:00:00:01");
    assert_eq!(d["api"], "cmx-v2");
    assert_eq!(d["source"], "legacy-v2");
    assert_eq!(d["building"], "Block A");
    assert_eq!(d["floor"], "Floor 2");
    assert_eq!(d["x"], 60.0);
    assert_eq!(d["y"], 45.5);
    assert_eq!(d["floor_width"], 120.0);
    assert_eq!(d["ip"], "10.9.8.7");
    assert_eq!(d["last_seen_seconds"], 3);
    assert_eq!(doc["errors"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn person_only_on_the_mse() {
    let office = Office::start().await;
    let config = office.config("mse.toml", VARIANTS_AND_TIMEOUTS, &[office.source("mse-1")]);
    let (code, doc) = find_json("cmse", &config).await;
    assert_eq!(code, 0, "{doc:#}");
    let d = device(&doc, "cc:00:00:00:00:01");
    assert_eq!(d["api"], "mse");
    assert_eq!(d["identity"], "CORP\\cmse");
    assert_eq!(d["building"], "Building 9");
    assert_eq!(d["floor"], "Ground Floor");
    assert_eq!(d["x"], 70.25);
    assert_eq!(d["y"], 35.5);
    assert_eq!(d["unit"], "METER");
    assert_eq!(d["floor_width"], 80.0);
    assert_eq!(d["ip"], "10.1.1.1");
    assert_eq!(d["last_seen_seconds"], 8);
    // The backslash of the identity travelled URL-encoded in the path.
    let requests = office.sim.server("mse-1").unwrap().requests();
    assert!(
        requests
            .iter()
            .any(|r| r.path.ends_with("/clients/CORP%5Ccmse")),
        "{requests:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn three_devices_over_two_servers_most_recent_first() {
    let office = Office::start().await;
    let (code, doc) = find_json("asmith", &office.default_config()).await;
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(
        macs(&doc),
        [
            "aa:00:00:00:00:02",
            "aa:00:00:00:00:03",
            "aa:00:00:00:00:01"
        ]
    );
    assert_eq!(device(&doc, "aa:00:00:00:00:03")["source"], "mse-1");
    assert_eq!(device(&doc, "aa:00:00:00:00:01")["source"], "cmx-a");
}

#[tokio::test(flavor = "multi_thread")]
async fn device_seen_by_two_servers_is_reported_once_with_the_fresher_fix() {
    let office = Office::start().await;
    let (code, doc) = find_json("dual", &office.default_config()).await;
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(macs(&doc), ["dd:00:00:00:00:01"]);
    let d = device(&doc, "dd:00:00:00:00:01");
    assert_eq!(d["source"], "cmx-b");
    assert_eq!(d["last_seen_seconds"], 5);
    assert_eq!(d["x"], 2.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn lower_case_domain_variant_is_asked_with_an_encoded_backslash() {
    let office = Office::start().await;
    let (code, doc) = find_json("lcase", &office.default_config()).await;
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(device(&doc, "ee:00:00:00:00:01")["identity"], "corp\\lcase");
    let queries: Vec<String> = office
        .sim
        .server("cmx-b")
        .unwrap()
        .requests()
        .into_iter()
        .filter_map(|r| r.query)
        .collect();
    for expected in [
        "username=lcase",
        "username=CORP%5Clcase",
        "username=corp%5Clcase",
    ] {
        assert!(
            queries.iter().any(|q| q == expected),
            "{expected} not in {queries:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_user_exits_1_with_a_clear_message() {
    let office = Office::start().await;
    let config = office.default_config();
    let out = whereis(&["find", "nobody", "--config", path_str(&config)]).await;
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("nobody was not found on any location server"),
        "{text}"
    );

    let (code, doc) = find_json("nobody", &config).await;
    assert_eq!(code, 1);
    assert_eq!(doc["devices"], serde_json::json!([]));
    assert_eq!(doc["errors"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_name_without_directory_is_bad_input() {
    let office = Office::start().await;
    let config = office.default_config();
    let out = whereis(&["find", "Jane Doe", "--config", path_str(&config)]).await;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("full name"), "{err}");
    assert!(err.contains("username"), "{err}");
    // Nothing was asked.
    assert_eq!(office.sim.server("cmx-a").unwrap().request_count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_source_is_listed_and_the_others_still_answer() {
    let office = Office::start().await;
    let dead_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut sources = office.all_sources();
    sources.push(common::SourceEntry {
        name: "cmx-dead".into(),
        kind: "cmx".into(),
        url: format!("http://127.0.0.1:{dead_port}"),
        username: "api".into(),
        password: "x".into(),
        extra: String::new(),
    });
    let config = office.config("dead.toml", VARIANTS_AND_TIMEOUTS, &sources);
    let (code, doc) = find_json("jdoe", &config).await;
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(macs(&doc).len(), 2);
    let errors = errors(&doc);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].0, "cmx-dead");
    assert!(errors[0].1.contains("cannot connect"), "{errors:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_source_failing_exits_2() {
    let office = Office::start().await;
    let mut source = office.source("cmx-a");
    source.password = "wrong".into();
    let config = office.config("bad-pw.toml", VARIANTS_AND_TIMEOUTS, &[source]);
    let out = whereis(&["find", "jdoe", "--config", path_str(&config), "--json"]).await;
    assert_eq!(out.status.code(), Some(2));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        errors(&doc),
        [(
            "cmx-a".to_owned(),
            "credentials rejected (HTTP 401)".to_owned()
        )]
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("every location server failed"), "{err}");
    assert!(!err.contains("wrong") && !String::from_utf8_lossy(&out.stdout).contains("wrong"));
}

#[tokio::test(flavor = "multi_thread")]
async fn typo_in_a_key_exits_2_naming_file_line_and_key() {
    let office = Office::start().await;
    let config = office.config(
        "typo.toml",
        "username_variants = [\"{user}\"]\ntimeout_msec = 800",
        &office.all_sources(),
    );
    let out = whereis(&["find", "jdoe", "--config", path_str(&config)]).await;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("typo.toml:3:"), "{err}");
    assert!(err.contains("timeout_msec"), "{err}");
    assert_eq!(office.sim.server("cmx-a").unwrap().request_count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_config_file_and_missing_secret_exit_2() {
    let office = Office::start().await;
    let out = whereis(&["find", "jdoe", "--config", "/nonexistent/whereis.toml"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/whereis.toml"));

    let mut source = office.source("cmx-a");
    source.extra = "password_env = \"WHEREIS_TEST_UNSET_VARIABLE\"".into();
    let config = office.config("two-secrets.toml", "", &[source]);
    let out = whereis(&["find", "jdoe", "--config", path_str(&config)]).await;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("give only one of them"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn check_config_probes_every_source() {
    let office = Office::start().await;
    let config = office.default_config();
    let out = whereis(&["check-config", "--config", path_str(&config)]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("valid, 4 source(s)"), "{text}");
    assert!(
        text.contains("cmx-a") && text.contains("CMX Location API v3; 3 floors"),
        "{text}"
    );
    assert!(
        text.contains("legacy-v2") && text.contains("CMX Location API v2"),
        "{text}"
    );
    assert!(
        text.contains("mse-1") && text.contains("MSE Context Aware API"),
        "{text}"
    );

    let mut wrong = office.source("mse-1");
    wrong.password = "not-the-password".into();
    let config = office.config("wrong.toml", "", &[office.source("cmx-a"), wrong]);
    let out = whereis(&["check-config", "--config", path_str(&config)]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("FAIL  mse-1") && text.contains("credentials rejected"),
        "{text}"
    );
    assert!(!text.contains("not-the-password"), "{text}");
}
