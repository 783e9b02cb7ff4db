//! `whereis-bot demo`: the whole product on one command. The built-in simulator, a Webex double and
//! an OpenID Connect provider double, with the real server configured through a real configuration
//! file in a temporary directory (so `find --config` works against it too); `/demo/chat` is a page
//! that speaks to the bot as a Webex user would.

mod chat;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use whereis_sim::webex::WebexDouble;
use whereis_sim::{OidcDouble, OidcPerson, Scenario, Simulator};

use crate::chat::websocket::{self, WebsocketState};
use crate::chat::Bot;
use crate::config::Config;
use crate::health::Health;
use crate::lookup::Finder;
use crate::server::{self, RouterOptions};

/// The demo bot's token and webhook secret (the Webex double accepts only these).
const DEMO_BOT_TOKEN: &str = "demo-bot-token";
const DEMO_WEBHOOK_SECRET: &str = "demo-webhook-secret";
/// Who the demo suggests signing in as, who owns its API token, and who the local chat speaks as by
/// default.
const DEMO_REQUESTER: &str = "jane.doe@example.com";
/// The demo's client id at the OpenID provider double.
const DEMO_CLIENT_ID: &str = "whereis-demo";
/// The name of the API token the demo creates for its curl lines.
const DEMO_TOKEN_NAME: &str = "demo";
/// How many people the instructions list before "… and N more".
const PEOPLE_LISTED: usize = 10;
/// How long the demo waits for the bot to connect, and `/demo/chat` for its answer.
const CONNECT_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The email the demo gives a scenario person: their folded display name at example.com
/// (Jane Doe is jane.doe@example.com), the same in the directory file, the Webex double and the
/// OpenID provider double.
pub fn demo_email(display_name: &str) -> String {
    format!(
        "{}@example.com",
        crate::directory::names::fold(display_name).replace(' ', ".")
    )
}

/// How the demo's pages sign people in: `[web] auth = "oidc"` against a provider.
#[derive(Debug, Clone)]
pub struct SignIn {
    /// `[server] public_url`: `http://{the bound address}`.
    pub public_url: String,
    /// The provider's issuer URL.
    pub issuer: String,
    /// This client's id at the provider.
    pub client_id: String,
    /// This client's secret (written to a 0600 file beside the configuration).
    pub client_secret: String,
}

/// Writes a configuration for `simulator` (and the Webex double, if any) into `dir`, with secrets in
/// files beside it, a directory of the scenario's people and OpenID Connect sign-in as `sign_in`
/// says, and returns its path.
pub fn write_config(
    simulator: &Simulator,
    webex: Option<&WebexDouble>,
    sign_in: &SignIn,
    privacy: &str,
    dir: &Path,
) -> anyhow::Result<PathBuf> {
    let mut text = String::from(
        "# Written by `whereis-bot demo` for its simulated location servers.\n\
         [lookup]\n\
         username_variants = [\"{user}\", \"CORP\\\\{user}\", \"corp\\\\{user}\"]\n\
         timeout_ms = 2000\n",
    );
    write!(
        text,
        "\n[server]\npublic_url = {url:?}\n",
        url = sign_in.public_url
    )?;
    if let Some(webex) = webex {
        write_private(&dir.join("webex.token"), DEMO_BOT_TOKEN)?;
        write_private(&dir.join("webhook.secret"), DEMO_WEBHOOK_SECRET)?;
        // Websocket mode although there is a public URL: the bot connects out, as it would behind
        // a firewall.
        write!(
            text,
            "\n[webex]\nmode = \"websocket\"\ntoken_file = \"webex.token\"\nwebhook_secret_file = \"webhook.secret\"\napi_base = {api:?}\ndevice_url = {device:?}\nallowed_domains = [\"example.com\"]\n\n[privacy]\nadmins = [\"it@example.com\"]\n{privacy}",
            api = webex.base_url(),
            device = webex.device_url(),
        )?;
    }
    // A directory of the scenario's people: full names work, and each requester's email maps to
    // their username.
    let mut people = String::from("username,display_name,email,aliases,team\n");
    for person in &simulator.scenario().people {
        let _ = writeln!(
            people,
            "{},\"{}\",{},,\"{}\"",
            person.username,
            person.display_name.replace('"', "\"\""),
            demo_email(&person.display_name),
            person
                .team
                .as_deref()
                .unwrap_or_default()
                .replace('"', "\"\"")
        );
    }
    std::fs::write(dir.join("people.csv"), people)
        .with_context(|| format!("cannot write {}", dir.join("people.csv").display()))?;
    text.push_str("\n[directory]\nkind = \"file\"\npath = \"people.csv\"\n");
    write_private(&dir.join("oidc.secret"), &sign_in.client_secret)?;
    write!(
        text,
        "\n[web]\nauth = \"oidc\"\nissuer = {issuer:?}\nclient_id = {client:?}\nclient_secret_file = \"oidc.secret\"\nbuilding_roster = true\n",
        issuer = sign_in.issuer,
        client = sign_in.client_id,
    )?;
    for (i, server) in simulator.servers().iter().enumerate() {
        let name = server.name();
        let secret = format!("{name}.password");
        write_private(&dir.join(&secret), server.password())?;
        if let Some(meraki) = server.meraki() {
            write_private(&dir.join(format!("{name}.validator")), &meraki.validator())?;
            write_private(&dir.join(format!("{name}.secret")), &meraki.secret())?;
            write!(
                text,
                "\n[[sources]]\nname = {name:?}\nkind = \"meraki\"\nurl = {url:?}\nnetwork_id = {network:?}\napi_key_file = {secret:?}\nvalidator_file = \"{name}.validator\"\nsecret_file = \"{name}.secret\"\npriority = {i}\n",
                url = meraki.dashboard_url(),
                network = meraki.network_id(),
            )?;
            continue;
        }
        if server.kind().as_str() == "spaces" {
            write!(
                text,
                "\n[[sources]]\nname = {name:?}\nkind = \"spaces\"\nurl = {url:?}\napi_key_file = {secret:?}\npriority = {i}\n",
                url = server.base_url(),
            )?;
            continue;
        }
        write!(
            text,
            "\n[[sources]]\nname = {name:?}\nkind = {kind:?}\nurl = {url:?}\nusername = {user:?}\npassword_file = {secret:?}\npriority = {i}\n",
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

/// 256 random bits, hex: the client secret shared with the provider double.
fn random_secret() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).context("cannot draw random bytes")?;
    Ok(hex::encode(bytes))
}

/// Runs the demo until Ctrl-C.
pub async fn run(listen: SocketAddr, privacy: Option<&Path>) -> anyhow::Result<()> {
    let privacy = match privacy {
        Some(path) => privacy_lines(path)?,
        None => String::new(),
    };
    if !listen.ip().is_loopback() {
        anyhow::bail!(
            "the demo's chat page lets anyone speak to the bot as anyone: it listens on a loopback \
             address only (not {listen})"
        );
    }
    // Bound first: the public URL (and so the provider's redirect URI) names the real port.
    let listener = TcpListener::bind(listen).await.with_context(|| {
        format!("cannot listen on {listen} (is another demo running? try --listen 127.0.0.1:0)")
    })?;
    let address = listener.local_addr()?;
    let public_url = format!("http://{address}");
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
    let people: Vec<OidcPerson> = simulator
        .scenario()
        .people
        .iter()
        .map(|p| OidcPerson::new(&demo_email(&p.display_name), &p.display_name, &p.username))
        .collect();
    for person in &people {
        webex.add_person(&person.email, &person.name);
    }
    let idp = OidcDouble::start(people.clone())
        .await
        .context("cannot start the OpenID Connect provider double")?;
    let sign_in = SignIn {
        public_url: public_url.clone(),
        issuer: idp.issuer(),
        client_id: DEMO_CLIENT_ID.to_owned(),
        client_secret: random_secret()?,
    };
    idp.register_client(
        &sign_in.client_id,
        &sign_in.client_secret,
        &[&format!("{public_url}/auth/callback")],
    );
    let config_path = write_config(&simulator, Some(&webex), &sign_in, &privacy, dir.path())?;
    let config = Config::load(&config_path)?;
    let finder = Arc::new(Finder::from_config(&config).await?);
    let token = prepare_store(&finder, &simulator).await?;
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
    let chat = chat::LocalChat::new(
        Arc::clone(&webex),
        Arc::clone(&bot),
        dir.path().join("chat"),
        people
            .iter()
            .map(|p| (p.email.clone(), p.name.clone()))
            .collect(),
    );
    // The same background tasks and routes as `serve`: /readyz shows the probes and the websocket.
    crate::metrics::start(shutdown.clone());
    let health = Arc::new(Health::new(
        config
            .sources
            .iter()
            .map(|s| s.name.as_str())
            .chain(config.live_sources.iter().map(|l| l.name())),
    ));
    crate::health::spawn_prober(Arc::clone(&finder), Arc::clone(&health), shutdown.clone());
    Arc::clone(finder.privacy()).spawn_purge(shutdown.clone());
    let live = crate::live::start(
        finder.live_sources(),
        finder.privacy().store(),
        &health,
        config.lookup.max_age,
        crate::live::OfficeHours::new(&config.privacy, Arc::clone(finder.privacy().clock())),
        &shutdown,
    );
    // The simulated Meraki networks post to this instance's receiver.
    for server in simulator.servers() {
        if let Some(meraki) = server.meraki() {
            meraki.set_receiver(&format!("{public_url}/ingest/meraki/{}", server.name()));
        }
    }
    websocket::report_state(state, Arc::clone(&health));
    let options = RouterOptions {
        request_timeout: config.server.request_timeout,
        health,
        metrics: true,
    };
    let router = server::router_with(Arc::clone(&finder), Some(Arc::clone(&bot)), options)
        .merge(chat.router())
        .merge(crate::live::meraki::router(Arc::clone(&live.receivers)));
    println!(
        "{}",
        instructions(&Shown {
            simulator: &simulator,
            base: &public_url,
            issuer: &idp.issuer(),
            config: &config_path,
            token: &token,
        })
    );
    crate::shutdown::on_signals(shutdown.clone());
    let stopping = shutdown.clone();
    let served = server::serve(listener, router, async move { stopping.cancelled().await }).await;
    shutdown.cancel();
    live.wind_down(std::time::Duration::from_secs(5)).await;
    crate::service::wind_down(
        Some(&bot),
        &finder,
        Some(websocket),
        std::time::Duration::from_secs(crate::config::DEFAULT_SHUTDOWN_GRACE_SECONDS),
    )
    .await;
    drop(webex);
    idp.shutdown().await;
    simulator.shutdown().await;
    served?;
    Ok(())
}

/// The `[privacy]` settings of the file at `path` (e.g. `deploy/privacy-strict.toml`) as lines of
/// the demo's `[privacy]` section; `admins` and `allowed_domains` stay the demo's own.
fn privacy_lines(path: &Path) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let value: toml::Table =
        toml::from_str(&text).with_context(|| format!("{} is not TOML", path.display()))?;
    let Some(toml::Value::Table(privacy)) = value.get("privacy") else {
        anyhow::bail!("{} has no [privacy] section", path.display());
    };
    let mut lines = String::new();
    for (key, value) in privacy {
        if key != "admins" && key != "allowed_domains" {
            let _ = writeln!(lines, "{key} = {value}");
        }
    }
    Ok(lines)
}

/// Puts the demo's starting state in its (new) store: the scenario's opted-out people are opted
/// out, as `optout` in chat would do, and the demo requester gets an API token for scripts, which
/// is returned.
async fn prepare_store(finder: &Finder, simulator: &Simulator) -> anyhow::Result<String> {
    for person in simulator.scenario().people.iter().filter(|p| p.opted_out) {
        finder
            .privacy()
            .opt_out(&person.username)
            .await
            .with_context(|| format!("cannot opt {} out in the demo's store", person.username))?;
    }
    let token = crate::auth::new_token().context("cannot draw random bytes")?;
    let created = finder
        .privacy()
        .store()
        .create_token(
            DEMO_TOKEN_NAME,
            DEMO_REQUESTER,
            &crate::auth::token_hash(&token),
            crate::privacy::now(),
        )
        .await
        .context("cannot create the demo's API token")?;
    if !created {
        anyhow::bail!("the demo's new store already has a token named {DEMO_TOKEN_NAME:?}");
    }
    Ok(token)
}

/// What the instructions name.
struct Shown<'a> {
    simulator: &'a Simulator,
    /// `http://127.0.0.1:PORT`.
    base: &'a str,
    issuer: &'a str,
    config: &'a Path,
    /// The demo requester's API token.
    token: &'a str,
}

/// What the demo prints once it is ready: where to go, who to be, whom to look for, and commands
/// that work against it.
fn instructions(shown: &Shown<'_>) -> String {
    let Shown {
        simulator,
        base,
        issuer,
        config,
        token,
    } = shown;
    let people = &simulator.scenario().people;
    let jane = people
        .iter()
        .find(|p| demo_email(&p.display_name) == DEMO_REQUESTER)
        .map(|p| p.display_name.as_str())
        .unwrap_or("Jane Doe");
    let mut text = format!(
        "whereis demo is running at {base}\n\n\
         Open {base}/ in a browser and sign in as {jane} ({DEMO_REQUESTER}): the simulated sign-in \
         page lists everyone, so you can be anyone.\n\
         Chat with the bot as a Webex user would: {base}/demo/chat\n\n\
         Simulated location servers:\n"
    );
    for server in simulator.servers() {
        let _ = writeln!(
            text,
            "  {:<16} {:<7} {}",
            server.name(),
            server.kind().as_str(),
            server.base_url()
        );
    }
    // The services that push positions, and whom to look for to see them.
    for server in simulator.servers() {
        let what = match server.kind().as_str() {
            "spaces" => "Cisco Spaces streams positions",
            "meraki" => "Meraki posts positions",
            _ => continue,
        };
        let seen: Vec<&str> = people
            .iter()
            .filter(|p| {
                p.devices
                    .iter()
                    .any(|d| d.servers.iter().any(|s| s == server.name()))
            })
            .map(|p| p.username.as_str())
            .collect();
        let _ = writeln!(text, "  {what} ({}) of: {}", server.name(), seen.join(", "));
    }
    let _ = writeln!(text, "Simulated OpenID Connect provider: {issuer}");
    let _ = writeln!(text, "\nPeople to look for ({}):", people.len());
    for person in people.iter().take(PEOPLE_LISTED) {
        let devices = person.devices.len();
        let _ = writeln!(
            text,
            "  {:<10} {} ({devices} device{})",
            person.username,
            person.display_name,
            if devices == 1 { "" } else { "s" }
        );
    }
    if people.len() > PEOPLE_LISTED {
        let _ = writeln!(
            text,
            "  … and {} more (the search box suggests names as you type)",
            people.len() - PEOPLE_LISTED
        );
    }
    let opted_out: Vec<_> = people.iter().filter(|p| p.opted_out).collect();
    for person in &opted_out {
        let _ = writeln!(
            text,
            "  {} ({}) has opted out: every lookup of them is refused",
            person.username, person.display_name
        );
    }
    let first = people
        .first()
        .map(|p| p.username.as_str())
        .unwrap_or("jdoe");
    // The running binary's own path: `whereis-bot` need not be on PATH (e.g. under `cargo run`).
    let program = std::env::current_exe()
        .map(|path| path.display().to_string())
        .unwrap_or_else(|_| "whereis-bot".to_owned());
    let bearer = format!("-H 'Authorization: Bearer {token}'");
    let _ = write!(
        text,
        "\nScripts, with an API token for {DEMO_REQUESTER}:\n  curl {bearer} '{base}/api/v1/locate?q={first}'\n"
    );
    if let Some(person) = opted_out.first() {
        let _ = writeln!(
            text,
            "  curl {bearer} '{base}/api/v1/locate?q={}'    (refused: opted out)",
            person.username
        );
    }
    let _ = write!(
        text,
        "  curl '{base}/demo/chat?text=whereis%20{first}'    (the chat as {DEMO_REQUESTER}, in JSON)\n  curl '{base}/demo/chat?text=help&space=Team'\n  curl {base}/healthz\n\nThe command line, with the demo's configuration:\n  {program} find {first} --config {config}\n  {program} find {first} --json --map-dir maps --config {config}\n\nCtrl-C to stop.",
        config = config.display()
    );
    text
}
