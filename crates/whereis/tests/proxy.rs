//! A corporate proxy: every outbound connection to a location server goes through `[network] proxy`
//! (or, without `[network]`, the proxy environment variables), except the hosts in `no_proxy`.
//! The forwarding proxy connects out from 127.0.0.2, so a server's peer addresses prove which way
//! each request came.

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::{path_str, Office, SourceEntry, VARIANTS_AND_TIMEOUTS};
use whereis_sim::proxy::ForwardProxy;

const VIA_PROXY: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const DIRECT: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));

/// The office's sources; `direct` is reached by the name `localhost` (so that a `no_proxy` entry
/// can name it), the others by 127.0.0.1.
fn sources(office: &Office, direct: &str) -> Vec<SourceEntry> {
    office
        .all_sources()
        .into_iter()
        .map(|mut source| {
            if source.name == direct {
                source.url = source.url.replace("127.0.0.1", "localhost");
            }
            source
        })
        .collect()
}

/// Runs `whereis-bot` with `args` and this environment (the proxy variables cleared otherwise).
async fn run(args: &[&str], env: &[(&str, String)]) -> std::process::Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_whereis-bot"));
    command.args(args).env_remove("WHEREIS_LOG");
    for name in [
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
        "no_proxy",
        "NO_PROXY",
    ] {
        command.env_remove(name);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    command.kill_on_drop(true).output().await.expect("runs")
}

fn assert_routes(office: &Office, proxy: &ForwardProxy, direct: &str) {
    for server in office.sim.servers() {
        let peers = server.peers();
        assert!(!peers.is_empty(), "{} was asked", server.name());
        let expected = if server.name() == direct {
            DIRECT
        } else {
            VIA_PROXY
        };
        assert!(
            peers.iter().all(|p| *p == expected),
            "{}: {peers:?}, expected only {expected}",
            server.name()
        );
    }
    let direct_port = office
        .sim
        .server(direct)
        .expect("server")
        .base_url()
        .rsplit(':')
        .next()
        .map(str::to_owned)
        .unwrap_or_default();
    let requests = proxy.requests();
    assert!(
        requests.iter().all(|r| !r.target.contains(&direct_port)),
        "the no_proxy source went through the proxy: {requests:#?}"
    );
    assert!(requests.iter().all(|r| r.authorised), "{requests:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sources_are_reached_through_the_configured_proxy_except_no_proxy() {
    let office = Office::start().await;
    let proxy = ForwardProxy::with_credentials("svc-whereis", "proxy-pw-Jq")
        .await
        .expect("proxy");
    std::fs::write(office.dir.path().join("proxy.secret"), "proxy-pw-Jq").expect("secret");
    let network = format!(
        "{VARIANTS_AND_TIMEOUTS}\n\n[network]\nproxy = {:?}\nproxy_username = \"svc-whereis\"\nproxy_password_file = \"proxy.secret\"\nno_proxy = [\"localhost\"]\n",
        proxy.url()
    );
    let config = office.config("proxied.toml", &network, &sources(&office, "mse-1"));

    let out = run(
        &["find", "jdoe", "--config", path_str(&config), "--json"],
        &[],
    )
    .await;
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(out.status.code(), Some(0), "{doc:#}");
    assert_eq!(doc["errors"], serde_json::json!([]), "{doc:#}");
    assert!(!doc["devices"].as_array().expect("devices").is_empty());
    assert_routes(&office, &proxy, "mse-1");

    let out = run(&["check-config", "--config", path_str(&config)], &[]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let url = proxy.url();
    assert!(
        text.contains(&format!(
            "network: proxy {url} (from [network]); no_proxy: localhost"
        )),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("cmx-a") && l.contains(&format!("via proxy {url}"))),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("mse-1") && l.contains("direct (no_proxy localhost)")),
        "{text}"
    );
    assert!(!text.contains("proxy-pw-Jq"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_proxy_is_named_without_its_password() {
    let office = Office::start().await;
    let proxy = ForwardProxy::with_credentials("svc-whereis", "right-pw")
        .await
        .expect("proxy");
    std::fs::write(office.dir.path().join("proxy.secret"), "wrong-pw-Zk").expect("secret");
    let network = format!(
        "{VARIANTS_AND_TIMEOUTS}\n\n[network]\nproxy = {:?}\nproxy_username = \"svc-whereis\"\nproxy_password_file = \"proxy.secret\"\n",
        proxy.url()
    );
    let config = office.config("refused.toml", &network, &office.all_sources());
    let out = run(&["check-config", "--config", path_str(&config)], &[]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.lines()
            .filter(|l| l.contains("FAIL") && l.contains("407"))
            .count()
            >= 4,
        "{text}"
    );
    assert!(
        !text.contains("wrong-pw-Zk") && !text.contains("right-pw"),
        "{text}"
    );
    for server in office.sim.servers() {
        assert!(server.peers().is_empty(), "{} was reached", server.name());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn without_network_the_proxy_environment_is_honoured() {
    let office = Office::start().await;
    let proxy = ForwardProxy::start().await.expect("proxy");
    let config = office.config(
        "env.toml",
        VARIANTS_AND_TIMEOUTS,
        &sources(&office, "cmx-b"),
    );
    let env = [
        ("HTTP_PROXY", proxy.url()),
        ("NO_PROXY", "localhost".to_owned()),
    ];
    let out = run(
        &["find", "asmith", "--config", path_str(&config), "--json"],
        &env,
    )
    .await;
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(out.status.code(), Some(0), "{doc:#}");
    assert_eq!(doc["errors"], serde_json::json!([]), "{doc:#}");
    assert_routes(&office, &proxy, "cmx-b");

    let out = run(&["check-config", "--config", path_str(&config)], &env).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("(from environment)"), "{text}");
}
