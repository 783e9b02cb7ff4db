//! `whereis-bot demo`: the built-in simulator plus the real server, configured through a real
//! configuration file in a temporary directory (so `find --config` works against it too).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use std::path::PathBuf;

use anyhow::Context;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;
use whereis_sim::webex::WebexDouble;
use whereis_sim::{Scenario, Simulator};

use crate::chat::websocket::{self, WebsocketState};
use crate::chat::Bot;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::health::Health;
use crate::lookup::Finder;
use crate::server::{self, RouterOptions};

/// The demo bot's token and webhook secret (the Webex double accepts only these).
const DEMO_BOT_TOKEN: &str = "demo-bot-token";
const DEMO_WEBHOOK_SECRET: &str = "demo-webhook-secret";
/// Who the local chat speaks as by default.
const DEMO_REQUESTER: &str = "jane.doe@example.com";

/// Writes a configuration for `simulator` (and the Webex double, if any) into `dir`, with secrets in
/// files beside it and a directory of the scenario's people, and returns its path.
pub fn write_config(
    simulator: &Simulator,
    webex: Option<&WebexDouble>,
    dir: &Path,
) -> anyhow::Result<std::path::PathBuf> {
    let mut text = String::from(
        "# Written by `whereis-bot demo` for its simulated location servers.\n\
         [lookup]\n\
         username_variants = [\"{user}\", \"CORP\\\\{user}\", \"corp\\\\{user}\"]\n\
         timeout_ms = 2000\n",
    );
    if let Some(webex) = webex {
        write_private(&dir.join("webex.token"), DEMO_BOT_TOKEN)?;
        write_private(&dir.join("webhook.secret"), DEMO_WEBHOOK_SECRET)?;
        // No public URL: the bot connects out over the websocket, as it would behind a firewall.
        write!(
            text,
            "\n[webex]\nmode = \"websocket\"\ntoken_file = \"webex.token\"\nwebhook_secret_file = \"webhook.secret\"\napi_base = {api:?}\ndevice_url = {device:?}\nallowed_domains = [\"example.com\"]\n\n[privacy]\nadmins = [\"it@example.com\"]\n",
            api = webex.base_url(),
            device = webex.device_url(),
        )?;
    }
    // A directory of the scenario's people (Jane Doe is jane.doe@example.com): full names work,
    // and each chat requester's email maps to their username.
    let mut people = String::from("username,display_name,email\n");
    for person in &simulator.scenario().people {
        let email = format!(
            "{}@example.com",
            crate::directory::names::fold(&person.display_name).replace(' ', ".")
        );
        let _ = writeln!(
            people,
            "{},\"{}\",{email}",
            person.username,
            person.display_name.replace('"', "\"\"")
        );
    }
    std::fs::write(dir.join("people.csv"), people)
        .with_context(|| format!("cannot write {}", dir.join("people.csv").display()))?;
    text.push_str("\n[directory]\nkind = \"file\"\npath = \"people.csv\"\n");
    // The demo listens on loopback only: whoever opens it is the demo requester.
    write!(
        text,
        "\n[web]\nauth = \"none\"\nrequester = {DEMO_REQUESTER:?}\nbuilding_roster = true\n"
    )?;
    for (i, server) in simulator.servers().iter().enumerate() {
        let secret = format!("{}.password", server.name());
        write_private(&dir.join(&secret), server.password())?;
        write!(
            text,
            "\n[[sources]]\nname = {name:?}\nkind = {kind:?}\nurl = {url:?}\nusername = {user:?}\npassword_file = {secret:?}\npriority = {i}\n",
            name = server.name(),
            kind = server.kind().as_str(),
            url = server.base_url(),
            user = server.username(),
        )?;
    }
    let path = dir.join("whereis.toml");
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

fn write_private(path: &Path, content: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    std::io::Write::write_all(&mut file, content.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Runs the demo until Ctrl-C.
pub async fn run(listen: SocketAddr) -> anyhow::Result<()> {
    if !listen.ip().is_loopback() {
        anyhow::bail!(
            "the demo signs everyone in as {DEMO_REQUESTER}: it listens on a loopback address only \
             (not {listen})"
        );
    }
    let scenario = Scenario::builtin_demo();
    let simulator = Simulator::start(scenario)
        .await
        .context("cannot start the simulated location servers")?;
    let dir = tempfile::Builder::new()
        .prefix("whereis-demo-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let webex = WebexDouble::start(DEMO_BOT_TOKEN, "whereis@webex.bot", "whereis")
        .await
        .context("cannot start the Webex double")?;
    let config_path = write_config(&simulator, Some(&webex), dir.path())?;
    let config = Config::load(&config_path)?;
    let finder = Arc::new(Finder::from_config(&config).await?);
    let webex_config = config
        .webex
        .clone()
        .context("the demo configuration has a [webex] section")?;
    let bot = Arc::new(
        Bot::connect(
            webex_config,
            config.privacy.clone(),
            &config.network,
            Arc::clone(&finder),
        )
        .await
        .context("cannot connect the bot to the Webex double")?,
    );
    let listener = TcpListener::bind(listen).await.with_context(|| {
        format!("cannot listen on {listen} (is another demo running? try --listen 127.0.0.1:0)")
    })?;
    let address = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let (websocket, mut state) =
        websocket::spawn(Arc::clone(&bot), config.network.clone(), shutdown.clone());
    // The demo is ready when the bot has connected to the Webex double's websocket.
    let connected = tokio::time::timeout(CONNECT_WAIT, async {
        state
            .wait_for(|s| *s == WebsocketState::Connected)
            .await
            .is_ok()
    })
    .await;
    if connected != Ok(true) {
        let now = state.borrow().clone();
        anyhow::bail!("the bot did not connect to the Webex double's websocket: {now:?}");
    }
    // Kept until the end: the bot deletes its device there when it stops.
    let webex = Arc::new(webex);
    let chat = LocalChat {
        webex: Arc::clone(&webex),
        bot: Arc::clone(&bot),
        files: dir.path().join("chat"),
    };
    // The same background tasks and routes as `serve`: /readyz shows the probes and the websocket.
    crate::metrics::start(shutdown.clone());
    let health = Arc::new(Health::new(config.sources.iter().map(|s| s.name.as_str())));
    crate::health::spawn_prober(Arc::clone(&finder), Arc::clone(&health), shutdown.clone());
    Arc::clone(finder.privacy()).spawn_purge(shutdown.clone());
    websocket::report_state(state, Arc::clone(&health));
    let options = RouterOptions {
        request_timeout: config.server.request_timeout,
        health,
        metrics: true,
    };
    let router = server::router_with(Arc::clone(&finder), Some(Arc::clone(&bot)), options)
        .merge(chat.router());
    println!("{}", instructions(&simulator, address, &config_path));
    crate::shutdown::on_signals(shutdown.clone());
    let stopping = shutdown.clone();
    let served = server::serve(listener, router, async move { stopping.cancelled().await }).await;
    shutdown.cancel();
    crate::service::wind_down(
        Some(&bot),
        &finder,
        Some(websocket),
        std::time::Duration::from_secs(crate::config::DEFAULT_SHUTDOWN_GRACE_SECONDS),
    )
    .await;
    drop(webex);
    simulator.shutdown().await;
    served?;
    Ok(())
}

/// How long the demo waits for the bot to connect, and `/demo/chat` for its answer.
const CONNECT_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// `GET /demo/chat?text=…[&from=EMAIL][&space=NAME]`: says something to the bot in the Webex double
/// (a direct room, or a group space when `space` is given) and answers with the bot's replies; maps
/// are saved as files and named in the answer.
#[derive(Clone)]
struct LocalChat {
    webex: Arc<WebexDouble>,
    bot: Arc<Bot>,
    files: PathBuf,
}

#[derive(Debug, Deserialize)]
struct ChatParams {
    text: Option<String>,
    from: Option<String>,
    space: Option<String>,
}

impl LocalChat {
    fn router(self) -> Router {
        Router::new()
            .route("/demo/chat", get(local_chat))
            .with_state(self)
    }
}

async fn local_chat(State(chat): State<LocalChat>, Query(params): Query<ChatParams>) -> Response {
    let Some(text) = params.text.filter(|t| !t.trim().is_empty()) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "say something: /demo/chat?text=whereis%20jdoe"})),
        )
            .into_response();
    };
    let from = params.from.unwrap_or_else(|| DEMO_REQUESTER.to_owned());
    let room = match &params.space {
        Some(space) => chat.webex.group_room(space),
        None => chat.webex.direct_room(&from),
    };
    let before = chat.webex.posted().len();
    let mut finished = chat.bot.subscribe_finished();
    // The double pushes the message over the bot's websocket, as Webex would.
    let id = chat.webex.user_says(&room, &from, &text);
    let answered = tokio::time::timeout(CONNECT_WAIT, async {
        loop {
            match finished.recv().await {
                Ok(done) if done == id => return Ok(()),
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                    return Err("the bot stopped".to_owned())
                }
            }
        }
    })
    .await;
    let outcome = match answered {
        Ok(result) => result,
        Err(_) => Err(format!(
            "no answer within {} s (is the websocket connected?)",
            CONNECT_WAIT.as_secs()
        )),
    };
    let mut replies = Vec::new();
    for (number, post) in chat.webex.posted().into_iter().enumerate().skip(before) {
        let mut reply = json!({"text": post.text.or(post.markdown)});
        if let Some(file) = post.file {
            let path = chat
                .files
                .join(format!("{}-{}", number + 1, file.file_name));
            let saved = match tokio::fs::create_dir_all(&chat.files).await {
                Ok(()) => tokio::fs::write(&path, &file.bytes).await,
                Err(err) => Err(err),
            };
            reply["map"] = match saved {
                Ok(()) => json!(path.display().to_string()),
                Err(err) => json!(format!("cannot save the map: {err}")),
            };
        }
        replies.push(reply);
    }
    let mut answer = json!({"from": from, "said": text, "replies": replies});
    if let Err(err) = outcome {
        answer["error"] = json!(err);
    }
    Json(answer).into_response()
}

fn instructions(simulator: &Simulator, address: SocketAddr, config: &Path) -> String {
    let base = format!("http://{address}");
    let mut text = format!("whereis demo is running at {base}\n\nSimulated location servers:\n");
    for server in simulator.servers() {
        let _ = writeln!(
            text,
            "  {:<14} {:<7} {}",
            server.name(),
            server.kind().as_str(),
            server.base_url()
        );
    }
    text.push_str("\nPeople to look for:\n");
    for person in &simulator.scenario().people {
        let _ = writeln!(
            text,
            "  {:<10} {} ({} device(s))",
            person.username,
            person.display_name,
            person.devices.len()
        );
    }
    let first = simulator
        .scenario()
        .people
        .first()
        .map(|p| p.username.as_str())
        .unwrap_or("jdoe");
    // The running binary's own path: `whereis-bot` need not be on PATH (e.g. under `cargo run`).
    let program = std::env::current_exe()
        .map(|path| path.display().to_string())
        .unwrap_or_else(|_| "whereis-bot".to_owned());
    let _ = write!(
        text,
        "\nYou are {DEMO_REQUESTER}. Try:\n  curl '{base}/api/v1/locate?q={first}'\n  curl '{base}/demo/chat?text=whereis%20{first}'            (chat with the bot as jane.doe@example.com)\n  curl '{base}/demo/chat?text=help&space=Team'\n  curl {base}/healthz\n  {program} find {first} --config {config}\n  {program} find {first} --json --map-dir maps --config {config}\n\nCtrl-C to stop.",
        config = config.display()
    );
    text
}
