//! Webex without a public URL: `whereis-bot serve` connects out to the Webex double's websocket
//! (through a corporate proxy when configured), answers what it delivers, survives dropped
//! connections and stale devices, catches up after a restart, never leaks device registrations,
//! answers a message delivered by both webhook and websocket once, and — on PostgreSQL — only one
//! instance holds the websocket, the other taking over when it dies.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use common::chat::{text, JANE, WAIT};
use common::{path_str, whereis, Office, VARIANTS_AND_TIMEOUTS};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use whereis_sim::proxy::ForwardProxy;
use whereis_sim::webex::{PostedMessage, WebexDouble};

const SECRET: &str = "websocket-tests-secret";
const VIA_PROXY: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// The office, the Webex double, and a configuration in websocket mode (no `public_url`).
struct Setup {
    office: Office,
    webex: WebexDouble,
    config: PathBuf,
}

impl Setup {
    /// `extra`: more sections (`[network]`, `[store]`, …).
    async fn start(extra: &str) -> Setup {
        let office = Office::start().await;
        let webex = WebexDouble::start("bot-token", "whereis@webex.bot", "whereis")
            .await
            .expect("double");
        std::fs::write(office.dir.path().join("webex.token"), "bot-token").expect("token");
        std::fs::write(office.dir.path().join("webhook.secret"), SECRET).expect("secret");
        let lookup = format!(
            "{VARIANTS_AND_TIMEOUTS}\n\n[server]\nlisten = \"127.0.0.1:0\"\n\n[webex]\ntoken_file = \"webex.token\"\nwebhook_secret_file = \"webhook.secret\"\napi_base = {:?}\ndevice_url = {:?}\nallowed_domains = [\"example.com\"]\nmax_backlog_minutes = 15\n\n{extra}\n",
            webex.base_url(),
            webex.device_url()
        );
        let config = office.config("ws.toml", &lookup, &office.all_sources());
        Setup {
            office,
            webex,
            config,
        }
    }

    async fn posts(&self, n: usize) -> Vec<PostedMessage> {
        let posts = self.webex.wait_for_posts(n, WAIT).await;
        assert!(posts.len() >= n, "expected {n} posts, got {posts:#?}");
        posts
    }

    /// Says "help" and waits for its answer: what was handled before has been answered by then.
    async fn settle(&self, room: &str, already: usize) -> Vec<PostedMessage> {
        self.webex.user_says(room, JANE, "help");
        self.posts(already + 1).await
    }
}

/// A running `whereis-bot serve` and its HTTP base URL.
struct Served {
    child: Child,
    base: String,
}

async fn serve(config: &Path) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_whereis-bot"))
        .args(["serve", "--config", path_str(config)])
        .env_remove("WHEREIS_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("serve starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    while let Some(line) = lines.next_line().await.expect("stdout") {
        if let Some(base) = line.strip_prefix("whereis listening on ") {
            let base = base.trim().to_owned();
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return Served { child, base };
        }
    }
    panic!("serve exited before listening");
}

impl Served {
    /// SIGTERM, as an operator or a service manager stops it; waits for the exit.
    async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("running").to_string();
        let signalled = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .expect("kill");
        assert!(signalled.success());
        tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .expect("exits after SIGTERM")
            .expect("status")
    }

    /// SIGKILL: the process dies without cleaning up.
    async fn crash(mut self) {
        self.child.start_kill().expect("kill");
        let _ = self.child.wait().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn behind_a_proxy_without_a_public_url_the_bot_answers_over_the_websocket() {
    let proxy = ForwardProxy::with_credentials("svc", "proxy-pw")
        .await
        .expect("proxy");
    let network = format!(
        "[network]\nproxy = {:?}\nproxy_username = \"svc\"\nproxy_password_file = \"proxy.secret\"\n",
        proxy.url()
    );
    let setup = Setup::start(&network).await;
    std::fs::write(setup.office.dir.path().join("proxy.secret"), "proxy-pw").expect("secret");

    // check-config reports the mode and that the connection authorises.
    let out = whereis(&["check-config", "--config", path_str(&setup.config)]).await;
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert!(
        report.lines().any(|l| l.contains("ok")
            && l.contains("webex mode")
            && l.contains("websocket, connected and authorised")),
        "{report}"
    );
    assert_eq!(
        setup.webex.device_count(),
        0,
        "the probe's device is deleted"
    );

    let served = serve(&setup.config).await;
    assert!(setup.webex.wait_for_authorizations(2, WAIT).await);
    let room = setup.webex.direct_room(JANE);
    setup.webex.user_says(&room, JANE, "whereis jdoe");
    let posts = setup.posts(4).await;
    assert_eq!(text(&posts[0]), "Looking for jdoe…");
    assert_eq!(text(&posts[1]), "jdoe has 2 devices:");
    assert!(
        posts[2].file.is_some() && posts[3].file.is_some(),
        "maps attached"
    );

    // The double drops the socket: the bot reconnects and answers the next message, once.
    assert_eq!(setup.webex.drop_websockets(), 1);
    assert!(setup.webex.wait_for_authorizations(3, WAIT).await);
    setup.webex.user_says(&room, JANE, "whereis asmith");
    let posts = setup.posts(5).await;
    assert_eq!(text(&posts[4]), "Looking for asmith…");
    let posts = setup.settle(&room, setup.webex.posted().len()).await;
    let asmith = posts
        .iter()
        .filter(|p| text(p).starts_with("Looking for asmith"))
        .count();
    assert_eq!(asmith, 1, "{posts:#?}");

    // Every connection to the double and to the location servers came through the proxy.
    let peers = setup.webex.peers();
    assert!(peers.iter().all(|p| *p == VIA_PROXY), "{peers:?}");
    for server in setup.office.sim.servers() {
        assert!(
            server.peers().iter().all(|p| *p == VIA_PROXY),
            "{}: {:?}",
            server.name(),
            server.peers()
        );
    }
    let tunnels = proxy
        .requests()
        .into_iter()
        .filter(|r| r.method == "CONNECT")
        .count();
    assert!(tunnels >= 3, "the websocket tunnels through CONNECT");

    // A clean stop deletes the device it used: nothing leaks.
    let status = served.terminate().await;
    assert!(status.success(), "{status:?}");
    assert_eq!(setup.webex.device_count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_delivered_by_webhook_and_websocket_is_answered_once() {
    let setup = Setup::start("").await;
    let served = serve(&setup.config).await;
    assert!(setup.webex.wait_for_authorizations(1, WAIT).await);
    let room = setup.webex.direct_room(JANE);
    let id = setup
        .webex
        .user_says_at(&room, JANE, "whereis jdoe", SystemTime::now());
    let body = setup.webex.event_body(&id);
    let webhook = format!("{}/webhooks/webex", served.base);
    let (status, pushed) =
        tokio::join!(setup.webex.deliver(&webhook, &body, Some(SECRET)), async {
            setup.webex.push_activity(&id)
        });
    assert_eq!(status.expect("delivered"), 200);
    assert_eq!(pushed, 1);
    let posts = setup.posts(4).await;
    let posts = setup.settle(&room, posts.len()).await;
    assert_eq!(
        posts
            .iter()
            .filter(|p| text(p) == "Looking for jdoe…")
            .count(),
        1,
        "{posts:#?}"
    );
    served.terminate().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_restart_the_bot_catches_up_once_and_apologises_for_old_questions() {
    let setup = Setup::start("").await;
    // The bot last handled a message half an hour ago, then went down.
    let now = SystemTime::now();
    let since = now - Duration::from_secs(30 * 60);
    let since_ms = since
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis();
    let store_url = format!(
        "sqlite://{}",
        setup.office.dir.path().join("whereis.db").display()
    );
    let store = whereis::store::Store::open(&store_url)
        .await
        .expect("store");
    store
        .advance_position(
            whereis::chat::websocket::LAST_HANDLED,
            i64::try_from(since_ms).expect("ms"),
        )
        .await
        .expect("position");
    store.close().await;

    // While it was away: a question from 20 minutes ago in a group space, and a fresh one.
    let room = setup.webex.direct_room(JANE);
    let space = setup.webex.group_room("Team");
    setup.webex.user_says_at(
        &space,
        JANE,
        "whereis asmith",
        now - Duration::from_secs(20 * 60),
    );
    setup.webex.user_says_at(&room, JANE, "whereis jdoe", now);

    let served = serve(&setup.config).await;
    let posts = setup.posts(5).await;
    let texts: Vec<String> = posts.iter().map(text).collect();
    let sorry: Vec<&PostedMessage> = posts
        .iter()
        .filter(|p| text(p).starts_with("Sorry, I was offline when you asked this (20 min ago)"))
        .collect();
    assert_eq!(sorry.len(), 1, "{texts:#?}");
    assert_eq!(sorry[0].room_id, space, "answered where it was asked");
    assert!(texts.iter().any(|t| t == "Looking for jdoe…"), "{texts:#?}");
    assert!(
        !texts.iter().any(|t| t.contains("asmith is")),
        "no location for the old question: {texts:#?}"
    );
    assert!(served.terminate().await.success());

    // A restart catches up again: nothing is answered twice.
    let served = serve(&setup.config).await;
    assert!(setup.webex.wait_for_authorizations(2, WAIT).await);
    let posts = setup.settle(&room, 5).await;
    assert_eq!(posts.len(), 6, "{posts:#?}");
    served.terminate().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn devices_are_reused_after_a_crash_renewed_when_stale_and_registration_429_is_obeyed() {
    let setup = Setup::start("").await;
    setup.webex.fail_next_registrations(1, 1);
    let served = serve(&setup.config).await;
    assert!(setup.webex.wait_for_authorizations(1, WAIT).await);
    assert_eq!(
        setup.webex.registration_count(),
        1,
        "registered after the 429"
    );
    served.crash().await;

    // A crash leaves the device; the next start finds it by name instead of registering anew.
    assert_eq!(setup.webex.device_count(), 1);
    let served = serve(&setup.config).await;
    assert!(setup.webex.wait_for_authorizations(2, WAIT).await);
    assert_eq!(setup.webex.registration_count(), 1, "reused by name");

    // The registration goes stale: the bot registers a new device and goes on answering.
    setup.webex.expire_devices();
    assert!(setup.webex.wait_for_authorizations(3, WAIT).await);
    assert_eq!(setup.webex.registration_count(), 2);
    let room = setup.webex.direct_room(JANE);
    setup.webex.user_says(&room, JANE, "whereis jdoe");
    let posts = setup.posts(4).await;
    assert_eq!(text(&posts[0]), "Looking for jdoe…");
    assert!(served.terminate().await.success());
    assert_eq!(setup.webex.device_count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn check_config_reports_a_refused_websocket() {
    let setup = Setup::start("").await;
    setup.webex.reject_next_authorizations(usize::MAX);
    let out = whereis(&["check-config", "--config", path_str(&setup.config)]).await;
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report
            .lines()
            .any(|l| l.contains("FAIL") && l.contains("webex mode") && l.contains("websocket")),
        "{report}"
    );
    assert!(!report.contains("bot-token"), "{report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn on_postgresql_one_instance_holds_the_websocket_and_another_takes_over() {
    let Some(database) = common::services::fresh_postgres().await else {
        return;
    };
    let setup = Setup::start(&format!("[store]\nurl = {:?}\n", database.url)).await;
    let first = serve(&setup.config).await;
    assert!(setup.webex.wait_for_authorizations(1, WAIT).await);
    let second = serve(&setup.config).await;
    let room = setup.webex.direct_room(JANE);
    // With both running, exactly one socket: one answer.
    setup.webex.user_says(&room, JANE, "whereis jdoe");
    let posts = setup.posts(4).await;
    let posts = setup.settle(&room, posts.len()).await;
    assert_eq!(setup.webex.websocket_stats().authorised_now, 1);
    assert_eq!(
        posts
            .iter()
            .filter(|p| text(p) == "Looking for jdoe…")
            .count(),
        1
    );

    // The holder dies: the standby takes over well within 30 s and answers.
    first.crash().await;
    assert!(
        setup
            .webex
            .wait_for_authorizations(2, Duration::from_secs(30))
            .await,
        "taken over"
    );
    let before = setup.webex.posted().len();
    setup.webex.user_says(&room, JANE, "whereis asmith");
    let posts = setup.posts(before + 4).await;
    assert_eq!(text(&posts[before]), "Looking for asmith…");
    second.terminate().await;
}
