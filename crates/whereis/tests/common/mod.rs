//! Shared set-up of the integration tests: the simulated office on loopback, configuration files that
//! point at it, and a way to run the real `whereis-bot` binary.
#![allow(dead_code)]

pub mod chat;
pub mod services;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use tempfile::TempDir;
use tokio::io::AsyncBufReadExt as _;
use whereis_sim::{Scenario, Simulator};

/// The scenario every integration test looks people up in.
pub const OFFICE: &str = include_str!("../scenarios/office.toml");

/// A running simulated office and a directory for configuration files.
pub struct Office {
    pub sim: Simulator,
    pub dir: TempDir,
}

/// One `[[sources]]` entry to write.
pub struct SourceEntry {
    pub name: String,
    pub kind: String,
    pub url: String,
    pub username: String,
    pub password: String,
    pub extra: String,
}

impl Office {
    /// Starts every server of the office scenario on ephemeral loopback ports.
    pub async fn start() -> Office {
        let scenario = Scenario::from_toml_str(OFFICE).expect("office scenario is valid");
        let sim = Simulator::start(scenario).await.expect("simulator starts");
        let dir = tempfile::tempdir().expect("temp dir");
        Office { sim, dir }
    }

    /// A source entry for the simulated server `name`, with its real credentials.
    pub fn source(&self, name: &str) -> SourceEntry {
        let server = self.sim.server(name).expect("server in scenario");
        SourceEntry {
            name: name.to_owned(),
            kind: server.kind().as_str().to_owned(),
            url: server.base_url(),
            username: server.username().to_owned(),
            password: server.password().to_owned(),
            extra: String::new(),
        }
    }

    /// Entries for every simulated server.
    pub fn all_sources(&self) -> Vec<SourceEntry> {
        self.sim
            .servers()
            .iter()
            .map(|s| self.source(s.name()))
            .collect()
    }

    /// Writes a configuration (passwords in files beside it) with the given lookup settings and
    /// returns its path.
    pub fn config(&self, file: &str, lookup: &str, sources: &[SourceEntry]) -> PathBuf {
        let mut text = format!("[lookup]\n{lookup}\n");
        for source in sources {
            let secret = format!("{file}.{}.password", source.name);
            std::fs::write(self.dir.path().join(&secret), &source.password).expect("write secret");
            write!(
                text,
                "\n[[sources]]\nname = {:?}\nkind = {:?}\nurl = {:?}\nusername = {:?}\npassword_file = {:?}\n{}\n",
                source.name, source.kind, source.url, source.username, secret, source.extra
            )
            .expect("format");
        }
        let path = self.dir.path().join(file);
        std::fs::write(&path, text).expect("write config");
        path
    }

    /// The usual configuration: every server, all three username variants, short timeouts.
    pub fn default_config(&self) -> PathBuf {
        self.config(
            "whereis.toml",
            &format!("{VARIANTS_AND_TIMEOUTS}\n{WEB_TEST_LOCAL}"),
            &self.all_sources(),
        )
    }
}

/// The requester of in-process lookups in tests.
pub fn tester() -> whereis::privacy::Requester {
    whereis::privacy::Requester::new("tests@example.com", whereis::privacy::Channel::Api)
}

/// `[web]` for tests that name each API request's requester in a header, as an authenticating proxy
/// on loopback would.
pub const WEB_TEST_PROXY: &str = "[web]\nauth = \"proxy\"\nheader = \"X-Whereis-Requester\"\ntrusted_proxies = [\"127.0.0.1\"]\n";

/// `[web]` for tests whose API requests all come from one requester.
pub const WEB_TEST_LOCAL: &str = "[web]\nauth = \"none\"\nrequester = \"tests@example.com\"\n";

/// Lookup settings used by most tests: the three variants, 800 ms per request, 1500 ms per lookup.
pub const VARIANTS_AND_TIMEOUTS: &str = "username_variants = [\"{user}\", \"CORP\\\\{user}\", \"corp\\\\{user}\"]\ntimeout_ms = 800\ndeadline_ms = 1500";

/// Runs `whereis-bot` with `args` (the simulator keeps serving meanwhile).
pub async fn whereis(args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_whereis-bot"))
        .args(args)
        .env_remove("WHEREIS_LOG")
        .kill_on_drop(true)
        .output()
        .await
        .expect("whereis-bot runs")
}

/// `whereis-bot find USER --config FILE --json`: exit code and parsed JSON.
pub async fn find_json(user: &str, config: &Path) -> (i32, Value) {
    find_json_with(user, config, &[]).await
}

/// `find --json` with extra arguments.
pub async fn find_json_with(user: &str, config: &Path, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["find", user, "--config", path_str(config), "--json"];
    args.extend_from_slice(extra);
    let out = whereis(&args).await;
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|err| {
        panic!(
            "find --json printed no JSON ({err}); stdout: {} stderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), json)
}

pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

/// The device with `mac` in a find document.
pub fn device<'a>(doc: &'a Value, mac: &str) -> &'a Value {
    doc["devices"]
        .as_array()
        .and_then(|devices| devices.iter().find(|d| d["mac"] == mac))
        .unwrap_or_else(|| panic!("no device {mac} in {doc:#}"))
}

/// The MACs of a find document, in order.
pub fn macs(doc: &Value) -> Vec<String> {
    doc["devices"]
        .as_array()
        .map(|devices| {
            devices
                .iter()
                .filter_map(|d| d["mac"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The `errors` of a find document as (source, error) pairs.
pub fn errors(doc: &Value) -> Vec<(String, String)> {
    doc["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    (
                        e["source"].as_str().unwrap_or_default().to_owned(),
                        e["error"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Asks `/readyz` until `done` holds (the prober runs in the background), at most 20 s.
pub async fn readyz_until(
    base: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> (u16, serde_json::Value) {
    let client = reqwest::Client::new();
    let mut every = tokio::time::interval(std::time::Duration::from_millis(50));
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        every.tick().await;
        let response = client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .expect("readyz answers");
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.expect("readyz is JSON");
        if done(&body) || tokio::time::Instant::now() > deadline {
            return (status, body);
        }
    }
}

/// The state `/readyz` reports for the source `name`.
pub fn source_state<'a>(doc: &'a serde_json::Value, name: &str) -> &'a str {
    doc["sources"]
        .as_array()
        .and_then(|sources| sources.iter().find(|s| s["name"] == name))
        .and_then(|s| s["state"].as_str())
        .unwrap_or("missing")
}

/// The real server (API and pages, no bot) for the configuration at `config`, on a loopback port
/// until the test ends; its base URL.
pub async fn serve_api(config: &Path) -> String {
    let config = whereis::config::Config::load(config).expect("config");
    let finder = std::sync::Arc::new(
        whereis::lookup::Finder::from_config(&config)
            .await
            .expect("finder"),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(whereis::server::serve(
        listener,
        whereis::server::router(finder, None),
        std::future::pending(),
    ));
    base
}

/// Starts `whereis-bot ARGS` and reads its standard output until a line contains `marker`; returns
/// the child and every line read so far.
pub async fn start_until(args: &[&str], marker: &str) -> (tokio::process::Child, Vec<String>) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_whereis-bot"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("whereis-bot starts");
    let stdout = child.stdout.take().expect("stdout piped");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
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

/// The rest of the first line that contains `prefix`, trimmed.
pub fn url_after<'a>(lines: &'a [String], prefix: &str) -> &'a str {
    lines
        .iter()
        .find_map(|line| line.split_once(prefix).map(|(_, rest)| rest.trim()))
        .unwrap_or_else(|| panic!("no {prefix:?} in {lines:?}"))
}
