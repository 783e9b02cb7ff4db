//! When the directory or the store is down, whereis says so and does what it still can: a lookup by
//! username runs without the directory (the answer says the directory is unreachable); only full
//! names fail. `check-config` probes the store and the directory as well as the sources.

mod common;

use common::{find_json, path_str, whereis, Office, VARIANTS_AND_TIMEOUTS};

/// A loopback port nothing listens on.
async fn dead_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    port
}

/// The office with an LDAP directory that cannot be reached.
async fn office_with_dead_ldap() -> (Office, std::path::PathBuf) {
    let office = Office::start().await;
    let port = dead_port().await;
    let lookup = format!(
        "{VARIANTS_AND_TIMEOUTS}\n\n[directory]\nkind = \"ldap\"\nurl = \"ldap://127.0.0.1:{port}\"\nbase_dn = \"dc=example,dc=com\"\ntimeout_ms = 1000\n"
    );
    let config = office.config("ldap-down.toml", &lookup, &office.all_sources());
    (office, config)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_username_is_found_while_the_directory_is_down() {
    let (_office, config) = office_with_dead_ldap().await;
    let (code, doc) = find_json("asmith", &config).await;
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(doc["person"]["username"], "asmith");
    assert_eq!(doc["person"]["display_name"], serde_json::Value::Null);
    assert!(!doc["devices"].as_array().expect("devices").is_empty());
    let reason = doc["directory_error"].as_str().unwrap_or_default();
    assert!(reason.contains("unavailable"), "{doc:#}");

    let out = whereis(&["find", "asmith", "--config", path_str(&config)]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("asmith is ASSOCIATED"), "{text}");
    assert!(
        text.contains("Note: the directory is unavailable")
            && text.contains("looked up as a username"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_name_needs_the_directory_and_says_why() {
    let (_office, config) = office_with_dead_ldap().await;
    let out = whereis(&["find", "Anna Smith", "--config", path_str(&config)]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("the directory is unavailable"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn check_config_probes_the_directory_and_the_store() {
    let (office, config) = office_with_dead_ldap().await;
    let out = whereis(&["check-config", "--config", path_str(&config)]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("network: direct"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.contains("ok") && l.contains("store") && l.contains("sqlite")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("FAIL") && l.contains("directory") && l.contains("unavailable")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("ok") && l.contains("cmx-a") && l.contains("direct")),
        "{text}"
    );

    // A PostgreSQL store that does not answer: named, without its password.
    let port = dead_port().await;
    std::fs::write(
        office.dir.path().join("store.url"),
        format!("postgres://whereis:store-pw-Qx@127.0.0.1:{port}/whereis"),
    )
    .expect("write");
    let text = std::fs::read_to_string(&config).expect("config");
    let no_directory = text
        .split("[directory]")
        .next()
        .map(str::to_owned)
        .unwrap_or_default();
    let sources = text
        .split_once("[[sources]]")
        .map(|(_, s)| s)
        .unwrap_or_default();
    let pg = office.dir.path().join("pg-down.toml");
    std::fs::write(
        &pg,
        format!("{no_directory}\n[store]\nurl_file = \"store.url\"\n\n[[sources]]{sources}"),
    )
    .expect("write");
    let out = whereis(&["check-config", "--config", path_str(&pg)]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.lines()
            .any(|l| l.contains("FAIL") && l.contains("store")),
        "{text}"
    );
    assert!(!text.contains("store-pw-Qx"), "{text}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("store-pw-Qx"));
}
