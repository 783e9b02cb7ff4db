//! Subcommands (README.md lists them). Exit status is a contract, like grep's: 0 found, 1 not found,
//! 2 error (bad config, bad input, every source failed).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::chat::registration::Registration;
use crate::config::{Config, WebexConfig, WebexMode};
use crate::directory::Directory;
use crate::lookup::{FindError, Finder};
use crate::privacy::{Channel, Refusal, Requester};
use crate::report::{FindReport, MapInfo, Outcome};
use crate::store::{AuditFilter, Store};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use url::Url;
use whereis_floormap::MapError;
use whereis_location::{HttpSource, LocationSource};

/// Find a colleague in a hot-desk office through the wireless location servers.
#[derive(Debug, Parser)]
#[command(name = "whereis-bot", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Look one person up on every location server (exit 0 found, 1 not found, 2 error).
    Find {
        /// A username (e.g. jdoe).
        query: String,
        /// Configuration file.
        #[arg(long)]
        config: PathBuf,
        /// Print the JSON document instead of text.
        #[arg(long)]
        json: bool,
        /// Draw each device on its floor plan and write the PNGs into this directory.
        #[arg(long, value_name = "DIR")]
        map_dir: Option<PathBuf>,
        /// Who asks (for the audit log and the rate limit); default `cli:$USER`.
        #[arg(long, value_name = "EMAIL")]
        requester: Option<String>,
    },
    /// Show the audit log: who looked for whom, when, through which channel, and what came of it.
    Audit {
        /// Configuration file.
        #[arg(long)]
        config: PathBuf,
        /// Only lookups of this username.
        #[arg(long)]
        target: Option<String>,
        /// Only lookups by this requester.
        #[arg(long)]
        requester: Option<String>,
        /// Only since: a duration back (`30m`, `12h`, `7d`) or a date (`2026-11-01`).
        #[arg(long)]
        since: Option<String>,
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Stop a person being located, acting for them: `--requester` is their email, which the
    /// directory (or, without one, `allowed_domains`) maps to their username.
    Optout {
        /// Configuration file.
        #[arg(long)]
        config: PathBuf,
        /// The person's email.
        #[arg(long, value_name = "EMAIL")]
        requester: String,
    },
    /// Let a person be located again, acting for them (see `optout`).
    Optin {
        /// Configuration file.
        #[arg(long)]
        config: PathBuf,
        /// The person's email.
        #[arg(long, value_name = "EMAIL")]
        requester: String,
    },
    /// Who looked a person up in the last 30 days, asked for them (see `optout`).
    WhoLooked {
        /// Configuration file.
        #[arg(long)]
        config: PathBuf,
        /// The person's email.
        #[arg(long, value_name = "EMAIL")]
        requester: String,
    },
    /// Lookup counters: by source, found, not found, refused by reason, opted out.
    Stats {
        /// Configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Validate the configuration and probe every location server (exit 0 all good, 1 a source
    /// failed its probe, 2 invalid configuration).
    CheckConfig {
        /// Configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Run the server (JSON API, health checks).
    Serve {
        /// Configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Print a commented starter configuration: `whereis-bot init > whereis.toml`, fill in what
    /// `check-config --config whereis.toml` asks for.
    Init,
    /// Run everything with built-in simulated location servers: no Cisco gear needed.
    #[cfg(feature = "demo")]
    Demo {
        /// Address of the HTTP server (port 0 picks a free one).
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Use the `[privacy]` settings of this file (e.g. deploy/privacy-strict.toml).
        #[arg(long)]
        privacy: Option<PathBuf>,
    },
    /// Webex set-up.
    Webex {
        #[command(subcommand)]
        command: WebexCommand,
    },
    /// API tokens for scripts (`Authorization: Bearer …` on /api/v1/*), each acting as one
    /// requester under the same privacy rules.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Run the simulated location servers of a scenario file.
    #[cfg(feature = "demo")]
    Sim {
        /// Scenario file (TOML).
        #[arg(long)]
        scenario: PathBuf,
        /// Address of the first server; the others take the following ports (default: free ports
        /// on 127.0.0.1).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token and print it (once: only its hash is stored).
    Create {
        /// Configuration file (for the store).
        #[arg(long)]
        config: PathBuf,
        /// The email the token acts as.
        #[arg(long)]
        requester: String,
        /// A name to list and revoke it by (unique).
        #[arg(long)]
        name: String,
    },
    /// List the tokens: name, requester, created.
    List {
        /// Configuration file (for the store).
        #[arg(long)]
        config: PathBuf,
    },
    /// Revoke a token: requests with it are refused (401) from now on.
    Revoke {
        /// The token's name.
        name: String,
        /// Configuration file (for the store).
        #[arg(long)]
        config: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum WebexCommand {
    /// Create or update (never duplicate) the bot's webhook for `server.public_url`.
    Register {
        /// Configuration file.
        #[arg(long)]
        config: PathBuf,
    },
}

const EXIT_FOUND: u8 = 0;
const EXIT_NOT_FOUND: u8 = 1;
const EXIT_ERROR: u8 = 2;

/// Parses the command line, runs the subcommand and maps its result to an exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let quiet = matches!(
        cli.command,
        Command::Find { .. }
            | Command::CheckConfig { .. }
            | Command::Webex { .. }
            | Command::Token { .. }
            | Command::Audit { .. }
            | Command::Stats { .. }
            | Command::Optout { .. }
            | Command::Optin { .. }
            | Command::WhoLooked { .. }
    );
    init_logging(quiet);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("whereis-bot: cannot start the async runtime: {err}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("whereis-bot: {err:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn init_logging(quiet: bool) {
    // One-shot commands keep stderr for what matters (warnings such as skipped TLS verification);
    // failed sources are already in their answer.
    let default = if quiet {
        "warn,whereis_location::locator=error"
    } else {
        "info"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("WHEREIS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn run(command: Command) -> anyhow::Result<u8> {
    match command {
        Command::Find {
            query,
            config,
            json,
            map_dir,
            requester,
        } => {
            find(
                &query,
                &config,
                json,
                map_dir.as_deref(),
                requester.as_deref(),
            )
            .await
        }
        Command::Audit {
            config,
            target,
            requester,
            since,
            json,
        } => audit(&config, target, requester, since.as_deref(), json).await,
        Command::Stats { config } => stats(&config).await,
        Command::Optout { config, requester } => {
            self_service(&config, &requester, SelfService::OptOut).await
        }
        Command::Optin { config, requester } => {
            self_service(&config, &requester, SelfService::OptIn).await
        }
        Command::WhoLooked { config, requester } => {
            self_service(&config, &requester, SelfService::WhoLooked).await
        }
        Command::CheckConfig { config } => check_config(&config).await,
        Command::Serve { config } => crate::service::serve(&config).await.map(|()| EXIT_FOUND),
        Command::Init => {
            print!("{}", crate::config::STARTER);
            Ok(EXIT_FOUND)
        }
        #[cfg(feature = "demo")]
        Command::Demo { listen, privacy } => crate::demo::run(listen, privacy.as_deref())
            .await
            .map(|()| EXIT_FOUND),
        #[cfg(feature = "demo")]
        Command::Sim { scenario, listen } => sim(&scenario, listen).await.map(|()| EXIT_FOUND),
        Command::Webex {
            command: WebexCommand::Register { config },
        } => register_webhook(&config).await.map(|()| EXIT_FOUND),
        Command::Token { command } => token(command).await,
    }
}

async fn token(command: TokenCommand) -> anyhow::Result<u8> {
    let config = match &command {
        TokenCommand::Create { config, .. }
        | TokenCommand::List { config }
        | TokenCommand::Revoke { config, .. } => config,
    };
    let config = Config::load(config)?;
    let store = Store::open(config.store_url.expose())
        .await
        .context("cannot open the store")?;
    match command {
        TokenCommand::Create {
            requester, name, ..
        } => {
            let requester = requester.trim().to_lowercase();
            if !crate::auth::is_email(&requester) {
                anyhow::bail!(
                    "--requester must be an email address (the token acts as that person)"
                );
            }
            let name = name.trim();
            if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
                anyhow::bail!("--name must be 1 to 100 printable characters");
            }
            let token = crate::auth::new_token().context("cannot draw random bytes")?;
            let now = crate::privacy::now();
            if !store
                .create_token(name, &requester, &crate::auth::token_hash(&token), now)
                .await?
            {
                anyhow::bail!(
                    "a token named {name:?} exists already (token list; token revoke NAME)"
                );
            }
            eprintln!("token {name:?} for {requester} (shown once; keep it secret):");
            println!("{token}");
            Ok(EXIT_FOUND)
        }
        TokenCommand::List { .. } => {
            for token in store.tokens().await? {
                let created = chrono::DateTime::from_timestamp(token.created_at, 0)
                    .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                    .unwrap_or_default();
                println!("{:<24} {:<32} {created}", token.name, token.requester);
            }
            Ok(EXIT_FOUND)
        }
        TokenCommand::Revoke { name, .. } => {
            if store.revoke_token(&name).await? {
                eprintln!("token {name:?} revoked");
                Ok(EXIT_FOUND)
            } else {
                eprintln!("no token named {name:?}");
                Ok(EXIT_NOT_FOUND)
            }
        }
    }
}

async fn load(path: &Path) -> anyhow::Result<(Config, Finder)> {
    let config = Config::load(path)?;
    let finder = Finder::from_config(&config)
        .await
        .with_context(|| format!("{}: cannot start", path.display()))?;
    Ok((config, finder))
}

async fn find(
    query: &str,
    config: &Path,
    json: bool,
    map_dir: Option<&Path>,
    requester: Option<&str>,
) -> anyhow::Result<u8> {
    let (_, finder) = load(config).await?;
    let requester = match requester {
        Some(requester) => Requester::new(requester, Channel::Cli),
        None => Requester::new(
            &format!(
                "cli:{}",
                std::env::var("USER").unwrap_or_else(|_| "unknown".to_owned())
            ),
            Channel::Cli,
        ),
    };
    let code = find_and_print(&finder, query, &requester, json, map_dir).await;
    // A located person's notification must not be lost because this process ends.
    finder.flush(crate::service::NOTIFY_GRACE).await;
    code
}

async fn find_and_print(
    finder: &Finder,
    query: &str,
    requester: &Requester,
    json: bool,
    map_dir: Option<&Path>,
) -> anyhow::Result<u8> {
    let mut report = match finder.find(query, requester).await {
        Ok(report) => report,
        Err(
            err @ (FindError::Refused(
                Refusal::OptedOut(_)
                | Refusal::NotOptedIn(_)
                | Refusal::NotAvailable(_)
                | Refusal::OutsideHours(_),
            )
            | FindError::NoSuchPerson(_)),
        ) => {
            println!("{err}.");
            return Ok(EXIT_NOT_FOUND);
        }
        Err(FindError::Ambiguous { query, candidates }) => {
            eprintln!(
                "whereis-bot: {query:?} matches several people; ask for one of them by username:"
            );
            for entry in candidates {
                eprintln!(
                    "  {:<16} {}{}",
                    entry.username,
                    entry.display_name,
                    entry.email.map(|e| format!(" <{e}>")).unwrap_or_default()
                );
            }
            return Ok(EXIT_ERROR);
        }
        Err(err) => {
            eprintln!("whereis-bot: {err}");
            return Ok(EXIT_ERROR);
        }
    };
    if let Some(dir) = map_dir {
        tokio::fs::create_dir_all(dir)
            .await
            .with_context(|| format!("cannot create the map directory {}", dir.display()))?;
        write_maps(finder, &mut report, dir).await;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}", report.to_text());
    }
    Ok(match finder.outcome(&report) {
        Outcome::Found => EXIT_FOUND,
        Outcome::NotFound => EXIT_NOT_FOUND,
        Outcome::AllSourcesFailed => {
            eprintln!("whereis-bot: every location server failed; the answer is incomplete");
            EXIT_ERROR
        }
    })
}

#[derive(Debug, Clone, Copy)]
enum SelfService {
    OptOut,
    OptIn,
    WhoLooked,
}

/// `optout` / `optin` / `who-looked` for the person with this email: the same rule as in chat —
/// only the username the directory (or `allowed_domains`) vouches for.
async fn self_service(path: &Path, email: &str, action: SelfService) -> anyhow::Result<u8> {
    let (_, finder) = load(path).await?;
    let requester = Requester::new(email, Channel::Cli);
    let result = match action {
        SelfService::OptOut => finder.opt_out(&requester).await.map(|username| {
            println!("{username} is opted out: whereis will not locate them.");
        }),
        SelfService::OptIn => finder.opt_in(&requester).await.map(|username| {
            println!("{username} is opted in: colleagues can locate them again.");
        }),
        SelfService::WhoLooked => finder
            .who_looked(&requester)
            .await
            .map(|(username, entries)| {
                println!(
                    "{} lookup(s) of {username} in the last {} days",
                    entries.len(),
                    crate::privacy::WHO_LOOKED_WINDOW_DAYS
                );
                for entry in entries {
                    let when = chrono::DateTime::from_timestamp(entry.at, 0)
                        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                        .unwrap_or_else(|| entry.at.to_string());
                    println!(
                        "{when}  {:<28} {:<5} {}",
                        entry.requester,
                        entry.channel,
                        entry.outcome.as_str()
                    );
                }
            }),
    };
    match result {
        Ok(()) => Ok(EXIT_FOUND),
        Err(err) => {
            eprintln!("whereis-bot: {err}");
            Ok(EXIT_ERROR)
        }
    }
}

/// Draws every device of `report` and writes one PNG per device into `dir`.
async fn write_maps(finder: &Finder, report: &mut FindReport, dir: &Path) {
    let user = file_name_part(&report.person.username);
    let drawn = futures::future::join_all(report.devices.iter().enumerate().map(|(i, entry)| {
        // Below `exact` precision there is no MAC to name the file by.
        let name = match entry.device.mac.replace(':', "") {
            mac if mac.is_empty() => format!("{user}-{}.png", i + 1),
            mac => format!("{user}-{}-{mac}.png", i + 1),
        };
        let path = dir.join(name);
        async move {
            let map = finder.draw(&entry.device, entry.precision).await?;
            tokio::fs::write(&path, &map.full.png)
                .await
                .map_err(|err| {
                    MapError::Render(format!("cannot write {}: {err}", path.display()))
                })?;
            Ok(MapInfo {
                path: Some(path.display().to_string()),
                url: None,
                width: map.full.width,
                height: map.full.height,
                marker: map.full.marker,
                clamped: map.full.clamped,
            })
        }
    }))
    .await;
    for (entry, map) in report.devices.iter_mut().zip(drawn) {
        entry.set_map(map);
    }
}

/// A username made safe for a file name.
fn file_name_part(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The live sources' checks: the service accepts the key (and, for Spaces, the stream opens), the
/// devices the live table holds, and for Meraki whether the receiver answers the validator at
/// `[server] public_url`.
async fn check_live_sources(
    config: &Config,
    store: Option<&Store>,
) -> Vec<(String, Result<String, String>)> {
    let checks = config.live_sources.iter().map(|live| async move {
        let name = live.name().to_owned();
        let Some(store) = store else {
            return vec![(
                name,
                Err("the store is not available to hold its devices".to_owned()),
            )];
        };
        let source = match crate::live::LiveSource::new(live, store.clone()) {
            Ok(source) => source,
            Err(err) => return vec![(name, Err(err.to_string()))],
        };
        let started = Instant::now();
        let probe = tokio::time::timeout(CHECK_TIMEOUT, source.probe())
            .await
            .map_err(|_| format!("no answer within {} s", CHECK_TIMEOUT.as_secs()))
            .and_then(|probe| probe.map_err(|err| err.to_string()))
            .map(|probe| format!("{} ({} ms)", probe.detail, started.elapsed().as_millis()));
        let mut lines = vec![(name.clone(), probe)];
        if let crate::config::LiveKind::Meraki(receiver) = &live.kind {
            lines.push((
                format!("{name} receiver"),
                check_meraki_receiver(config, &name, receiver).await,
            ));
        }
        lines
    });
    futures::future::join_all(checks)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// Whether `{public_url}/ingest/meraki/{name}` answers the validator, as Meraki will check it.
async fn check_meraki_receiver(
    config: &Config,
    name: &str,
    receiver: &crate::config::MerakiReceiver,
) -> Result<String, String> {
    let Some(public_url) = &config.server.public_url else {
        return Err(
            "server.public_url is not set: Meraki needs the address it posts to".to_owned(),
        );
    };
    let url = format!(
        "{}/ingest/meraki/{}",
        public_url.trim_end_matches('/'),
        utf8_percent_encode(name, NON_ALPHANUMERIC)
    );
    let warning = if url.starts_with("https://") {
        ""
    } else {
        " — warning: not https, Meraki's posts (and their secret) would cross the network in clear"
    };
    let client = config
        .network
        .http_client_builder()
        .use_rustls_tls()
        .timeout(CHECK_TIMEOUT)
        .build()
        .map_err(|err| err.to_string())?;
    let answer = client
        .get(&url)
        .send()
        .await
        .map_err(|err| format!("{url}: not reachable from here ({err}){warning}"))?;
    let status = answer.status();
    let text = answer.text().await.unwrap_or_default();
    if status.is_success() && text.trim() == receiver.validator.expose().trim() {
        Ok(format!("{url} answers the validator{warning}"))
    } else {
        Err(format!(
            "{url} answered HTTP {status} without the validator (is this instance serving there?){warning}"
        ))
    }
}

/// One line of `check-config`: `ok` or `FAIL`, the part checked, what was found.
fn report_check(failed: &mut u32, what: &str, result: Result<String, String>) {
    match result {
        Ok(detail) => println!("  ok    {what:<20} {detail}"),
        Err(err) => {
            *failed += 1;
            println!("  FAIL  {what:<20} {err}");
        }
    }
}

async fn check_config(path: &Path) -> anyhow::Result<u8> {
    let config = Config::load(path)?;
    println!(
        "{}: valid, {} source(s); network: {}; probing…",
        path.display(),
        config.sources.len() + config.live_sources.len(),
        config.network.describe()
    );
    let mut failed = 0;
    let probes = config.sources.iter().map(|settings| async move {
        let started = Instant::now();
        let result = match HttpSource::new(settings.clone()) {
            Ok(source) => {
                let route = source.route();
                source
                    .probe()
                    .await
                    .map(|probe| {
                        format!(
                            "{}, {route} ({} ms)",
                            probe.detail,
                            started.elapsed().as_millis()
                        )
                    })
                    .map_err(|err| format!("{err} ({route})"))
            }
            Err(err) => Err(err.to_string()),
        };
        (settings.name.clone(), result)
    });
    for (name, result) in futures::future::join_all(probes).await {
        report_check(&mut failed, &name, result);
    }

    let (store, opened) =
        match tokio::time::timeout(CHECK_TIMEOUT, Store::open(config.store_url.expose())).await {
            Ok(Ok(store)) => match store.ping().await {
                Ok(()) => (Ok(format!("{} {}", store.kind(), store.url())), Some(store)),
                Err(err) => (Err(err.to_string()), None),
            },
            Ok(Err(err)) => (Err(err.to_string()), None),
            Err(_) => (
                Err(format!("no answer within {} s", CHECK_TIMEOUT.as_secs())),
                None,
            ),
        };
    report_check(&mut failed, "store", store);
    for (name, result) in check_live_sources(&config, opened.as_ref()).await {
        report_check(&mut failed, &name, result);
    }

    let webex = match &config.webex {
        Some(webex) => {
            let retry = whereis_webex::RetryPolicy {
                max_attempts: 1,
                ..whereis_webex::RetryPolicy::default()
            };
            Some(crate::webex_client(webex, &config.network, retry)?)
        }
        None => None,
    };
    if let Some(directory) = &config.directory {
        let checked = async {
            let directory = Directory::open(directory, webex.clone())
                .await
                .map_err(|err| err.to_string())?;
            tokio::time::timeout(CHECK_TIMEOUT, directory.check())
                .await
                .map_err(|_| format!("no answer within {} s", CHECK_TIMEOUT.as_secs()))?
                .map_err(|err| err.to_string())?;
            Ok::<_, String>(format!("{} (bound and searched)", directory.kind()))
        };
        report_check(&mut failed, "directory", checked.await);
    }

    if let (Some(webex), Some(client)) = (&config.webex, &webex) {
        let api = Url::parse(&webex.api_base)
            .map(|url| config.network.route(&url).to_string())
            .unwrap_or_default();
        let me = client
            .me()
            .await
            .map(|me| format!("bot {:?}, {api}", me.display_name.unwrap_or_default()))
            .map_err(|err| format!("{err} ({api})"));
        report_check(&mut failed, "webex", me);
        let mode = match webex.mode {
            WebexMode::Webhook => check_webhook_mode(&config, webex),
            WebexMode::Websocket => {
                crate::chat::websocket::probe(client, webex, &config.network, CHECK_TIMEOUT)
                    .await
                    .map(|ok| {
                        let route = webex
                            .device_url
                            .as_deref()
                            .and_then(|u| Url::parse(u).ok())
                            .map(|u| format!("; device service {}", config.network.route(&u)))
                            .unwrap_or_default();
                        format!("{ok}{route}")
                    })
                    .map_err(|err| format!("websocket: {err}"))
            }
        };
        report_check(&mut failed, "webex mode", mode);
    }
    if failed > 0 {
        println!("{failed} check(s) failed");
        Ok(EXIT_NOT_FOUND)
    } else {
        Ok(EXIT_FOUND)
    }
}

/// How long each `check-config` probe of the store and the directory may take.
const CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// Webhook mode needs a webhook secret (or the explicit waiver).
fn check_webhook_mode(config: &Config, webex: &WebexConfig) -> Result<String, String> {
    let url = config
        .server
        .public_url
        .as_deref()
        .map(|u| {
            format!(
                ", Webex posts to {}/webhooks/webex",
                u.trim_end_matches('/')
            )
        })
        .unwrap_or_default();
    match (&webex.webhook_secret, webex.allow_unsigned_webhooks) {
        (Some(_), _) => Ok(format!("webhook, deliveries verified{url}")),
        (None, true) => Ok(format!("webhook, UNSIGNED deliveries accepted{url}")),
        (None, false) => Err(
            "webhook mode without a webhook secret: set webex.webhook_secret_env/_file \
             (or allow_unsigned_webhooks = true)"
                .to_owned(),
        ),
    }
}

async fn audit(
    path: &Path,
    target: Option<String>,
    requester: Option<String>,
    since: Option<&str>,
    json: bool,
) -> anyhow::Result<u8> {
    let config = Config::load(path)?;
    let store = Store::open(config.store_url.expose())
        .await
        .context("cannot open the store")?;
    let since = since
        .map(|text| parse_since(text, crate::privacy::now()))
        .transpose()?;
    let entries = store
        .audit(&AuditFilter {
            target: target.map(|t| crate::privacy::Privacy::key(&t)),
            requester: requester.map(|r| r.trim().to_lowercase()),
            since,
            limit: 0,
        })
        .await?;
    for entry in &entries {
        if json {
            println!("{}", crate::privacy::audit_json(entry));
        } else {
            println!("{}", crate::privacy::audit_line(entry));
        }
    }
    if !json {
        println!("{} lookup(s)", entries.len());
    }
    Ok(EXIT_FOUND)
}

fn parse_since(text: &str, now: i64) -> anyhow::Result<i64> {
    crate::privacy::parse_since(text, now).with_context(|| {
        format!("--since {text:?}: give a duration like 7d, 12h, 30m or a date like 2026-11-01")
    })
}

async fn stats(path: &Path) -> anyhow::Result<u8> {
    let config = Config::load(path)?;
    let store = Store::open(config.store_url.expose())
        .await
        .context("cannot open the store")?;
    let stats = store.stats(None).await?;
    println!("lookups      {}", stats.lookups);
    println!("found        {}", stats.found);
    println!("not found    {}", stats.not_found);
    println!("failed       {}", stats.failed);
    for (reason, count) in &stats.refused {
        println!("refused      {count:<6} {reason}");
    }
    println!("opted out    {} people", stats.opted_out_people);
    for (source, count) in &stats.by_source {
        println!("found by     {count:<6} {source}");
    }
    Ok(EXIT_FOUND)
}

async fn register_webhook(path: &Path) -> anyhow::Result<()> {
    let config = Config::load(path)?;
    let webex = config
        .webex
        .as_ref()
        .with_context(|| format!("{}: no [webex] section", path.display()))?;
    let public_url = config.server.public_url.as_deref().with_context(|| {
        format!(
            "{}: set server.public_url (where Webex can reach whereis)",
            path.display()
        )
    })?;
    let target_url = format!("{}/webhooks/webex", public_url.trim_end_matches('/'));
    let client = crate::webex_client(
        webex,
        &config.network,
        whereis_webex::RetryPolicy::default(),
    )?;
    let secret = webex
        .webhook_secret
        .as_ref()
        .map(|s| whereis_webex::SecretString::from(s.expose()));
    if secret.is_none() {
        eprintln!("warning: no webhook secret configured: deliveries will not be verified");
    }
    match crate::chat::registration::register_webhook(&client, &target_url, secret).await? {
        Registration::Created { id, target_url } => {
            println!("created webhook {id} → {target_url}");
        }
        Registration::Updated {
            id,
            target_url,
            duplicates,
        } => {
            println!("updated webhook {id} → {target_url}");
            if duplicates > 0 {
                println!(
                    "note: {duplicates} other whereis webhooks exist; delete them in Webex to avoid double deliveries"
                );
            }
        }
    }
    Ok(())
}

#[cfg(feature = "demo")]
async fn sim(scenario: &Path, listen: Option<std::net::SocketAddr>) -> anyhow::Result<()> {
    let scenario = whereis_sim::Scenario::from_file(scenario)?;
    let simulator = match listen {
        Some(addr) => {
            whereis_sim::Simulator::start_on(scenario, addr.ip(), Some(addr.port())).await?
        }
        None => whereis_sim::Simulator::start(scenario).await?,
    };
    println!("Simulated location servers:");
    for server in simulator.servers() {
        println!(
            "  {:<16} {:<8} {}  (user {:?}, password {:?})",
            server.name(),
            server.kind().as_str(),
            server.base_url(),
            server.username(),
            server.password()
        );
    }
    println!("Ctrl-C to stop.");
    crate::shutdown::signal().await;
    simulator.shutdown().await;
    Ok(())
}
