//! The long-running commands as an operator starts them: `demo` and `sim`.

mod common;

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Starts `whereis-bot ARGS` and reads its standard output until a line contains `marker`; returns
/// the child and every line read so far.
async fn start_until(args: &[&str], marker: &str) -> (Child, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_whereis-bot"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("whereis-bot starts");
    let stdout = child.stdout.take().expect("stdout piped");
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = Vec::new();
    while let Some(line) = lines.next_line().await.expect("read stdout") {
        let done = line.contains(marker);
        seen.push(line);
        if done {
            // Keep draining in the background so the child never blocks on a full pipe.
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return (child, seen);
        }
    }
    panic!("whereis-bot exited before printing {marker:?}: {seen:?}");
}

fn url_after<'a>(lines: &'a [String], prefix: &str) -> &'a str {
    lines
        .iter()
        .find_map(|line| line.split_once(prefix).map(|(_, rest)| rest.trim()))
        .unwrap_or_else(|| panic!("no {prefix:?} in {lines:?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_serves_lookups_against_the_built_in_simulator() {
    let (mut child, lines) =
        start_until(&["demo", "--listen", "127.0.0.1:0"], "Ctrl-C to stop").await;
    let base = url_after(&lines, "whereis demo is running at ").to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("jdoe") && l.contains("Jane Doe")),
        "{lines:?}"
    );

    // The demo listens on loopback and everyone there is its requester, Jane Doe: a header
    // claiming someone else changes nothing (the audit names Jane).
    let http = reqwest::Client::new();
    let locate = format!("{base}/api/v1/locate?q=jdoe");
    let doc: serde_json::Value = http
        .get(&locate)
        .header("X-Whereis-Requester", "mallory@elsewhere.example")
        .header("X-Forwarded-Email", "mallory@elsewhere.example")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["devices"].as_array().map(Vec::len), Some(2), "{doc:#}");
    assert_eq!(doc["errors"], serde_json::json!([]));

    // Readiness as `serve` reports it: every simulated source probed, the websocket connected.
    let names: Vec<String> = lines
        .iter()
        .filter_map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
            [name, _kind, url] if url.starts_with("http://127.0.0.1:") => Some(name.to_owned()),
            _ => None,
        })
        .collect();
    assert_eq!(names.len(), 4, "{lines:?}");
    let (status, ready) = common::readyz_until(&base, |doc| {
        names
            .iter()
            .all(|n| common::source_state(doc, n) != "unknown")
    })
    .await;
    assert_eq!(status, 200, "{ready:#}");
    for name in &names {
        assert_eq!(common::source_state(&ready, name), "ok", "{ready:#}");
    }
    assert_eq!(ready["streams"][0]["name"], "webex-websocket", "{ready:#}");
    assert_eq!(ready["streams"][0]["state"], "connected", "{ready:#}");

    // The local chat answers like the bot in Webex, with the maps saved as files.
    let chat: serde_json::Value = reqwest::get(format!("{base}/demo/chat?text=whereis%20jdoe"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let replies = chat["replies"].as_array().cloned().unwrap_or_default();
    assert_eq!(replies.len(), 4, "{chat:#}");
    assert_eq!(replies[0]["text"], "Looking for jdoe…");
    for reply in &replies[2..] {
        let map = reply["map"].as_str().unwrap_or_default();
        let png = std::fs::read(map).unwrap_or_default();
        assert!(png.starts_with(b"\x89PNG"), "{map}");
    }

    // The `find` command it suggests works while the demo runs.
    let find_line = lines
        .iter()
        .find(|l| l.contains(" find jdoe --config "))
        .expect("a find suggestion");
    let config = find_line.rsplit(' ').next().unwrap();
    let (code, found) = common::find_json("bsmith", std::path::Path::new(config)).await;
    assert_eq!(code, 0, "{found:#}");
    assert_eq!(found["devices"].as_array().map(Vec::len), Some(3));
    let audit = common::whereis(&["audit", "--config", config, "--json"]).await;
    let audit = String::from_utf8_lossy(&audit.stdout);
    assert!(
        audit
            .lines()
            .any(|l| l.contains("\"api\"") && l.contains("jane.doe@example.com")),
        "{audit}"
    );
    assert!(!audit.contains("mallory"), "{audit}");
    child.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn sim_command_runs_the_scenario_servers() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("office.toml");
    std::fs::write(&scenario, common::OFFICE).unwrap();
    let (mut child, lines) = start_until(
        &["sim", "--scenario", scenario.to_str().unwrap()],
        "Ctrl-C to stop",
    )
    .await;
    let line = lines
        .iter()
        .find(|l| l.trim_start().starts_with("mse-1 "))
        .unwrap_or_else(|| panic!("mse-1 not listed: {lines:?}"));
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap();
    let response = reqwest::Client::new()
        .get(format!(
            "{url}/api/contextaware/v1/location/clients/CORP%5Ccmse"
        ))
        .basic_auth("mse", Some("pw-mse"))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body["WirelessClientLocation"]["macAddress"],
        "cc:00:00:00:00:01"
    );
    child.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn sim_command_rejects_a_bad_scenario_with_its_file_name() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("broken.toml");
    std::fs::write(&scenario, "[[servers]]\nname = \"x\"\nkind = \"cmx\"\nusername = \"u\"\npassword = \"p\"\nfaultt = \"hang\"\n").unwrap();
    let out = common::whereis(&["sim", "--scenario", scenario.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("broken.toml") && err.contains("faultt"),
        "{err}"
    );
}
