//! `serve` as a long-running service: the wiring of a configuration into a Finder, a bot, the HTTP
//! listeners and the background tasks (probes, purges, the websocket), and the order of a graceful
//! stop: stop accepting → answer what is in flight → let the bot finish its replies (bounded by
//! `[server] shutdown_grace_seconds`) → send pending notifications → close the store.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::chat::Bot;
use crate::config::{Config, WebexMode};
use crate::health::Health;
use crate::lookup::Finder;
use crate::server::{self, RouterOptions, StoreGauges};

/// Runs until a signal (or `stop`) asks it to end, then winds down in order.
pub async fn run(config: Config, stop: CancellationToken) -> anyhow::Result<()> {
    let path = config.path.clone();
    refuse_unsigned_webhooks(&config, &path)?;
    crate::metrics::start(stop.clone());
    let finder = Finder::from_config(&config)
        .await
        .with_context(|| format!("{}: cannot start", path.display()))?;
    let listener = TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    let metrics_listener = match config.server.metrics_listen {
        Some(address) => Some(
            TcpListener::bind(address)
                .await
                .with_context(|| format!("cannot listen on {address} for /metrics"))?,
        ),
        None => None,
    };
    let address = listener.local_addr()?;
    tracing::info!(%address, sources = config.sources.len(), "whereis serving");
    let finder = Arc::new(finder);
    let health = Arc::new(Health::new(
        config
            .sources
            .iter()
            .map(|s| s.name.as_str())
            .chain(config.live_sources.iter().map(|l| l.name())),
    ));
    let bot = match config.webex.clone() {
        Some(webex) => Some(Arc::new(
            Bot::connect(
                webex,
                config.privacy.clone(),
                &config.network,
                Arc::clone(&finder),
            )
            .await
            .context("cannot start the Webex bot")?,
        )),
        None => None,
    };
    Arc::clone(finder.privacy()).spawn_purge(stop.clone());
    crate::health::spawn_prober(Arc::clone(&finder), Arc::clone(&health), stop.clone());
    let live = crate::live::start(
        finder.live_sources(),
        finder.privacy().store(),
        &health,
        config.lookup.max_age,
        crate::live::OfficeHours::new(&config.privacy, Arc::clone(finder.privacy().clock())),
        &stop,
    );
    let websocket = match (&bot, config.webex.as_ref().map(|w| w.mode)) {
        (Some(bot), Some(WebexMode::Websocket)) => {
            let (task, state) = crate::chat::websocket::spawn(
                Arc::clone(bot),
                config.network.clone(),
                stop.clone(),
            );
            crate::chat::websocket::report_state(state, Arc::clone(&health));
            Some(task)
        }
        _ => None,
    };
    // Operators and scripts read these lines (with `listen = "…:0"` they are the only way to learn
    // the port); the main address comes last.
    let metrics_server = match metrics_listener {
        Some(listener) => {
            let address = listener.local_addr()?;
            println!("whereis metrics on http://{address}/metrics");
            let stopping = stop.clone();
            let routes = server::metrics_router(StoreGauges(finder.privacy().store().clone()));
            Some(tokio::spawn(server::serve(listener, routes, async move {
                stopping.cancelled().await
            })))
        }
        None => None,
    };
    println!("whereis listening on http://{address}");
    let stopping = stop.clone();
    let routes = server::router_with(
        Arc::clone(&finder),
        bot.clone(),
        RouterOptions {
            request_timeout: config.server.request_timeout,
            health,
            metrics: config.server.metrics_listen.is_none(),
        },
    )
    .merge(crate::live::meraki::router(Arc::clone(&live.receivers)));
    let served = server::serve(listener, routes, async move { stopping.cancelled().await }).await;
    stop.cancel();
    live.wind_down(config.server.shutdown_grace).await;
    wind_down(
        bot.as_deref(),
        &finder,
        websocket,
        config.server.shutdown_grace,
    )
    .await;
    if let Some(task) = metrics_server {
        task.abort();
    }
    finder.privacy().store().close().await;
    tracing::info!("stopped");
    served?;
    Ok(())
}

/// `serve` from a configuration file, stopping on SIGTERM or Ctrl-C (a second one exits at once).
pub async fn serve(path: &Path) -> anyhow::Result<()> {
    let config = Config::load(path)?;
    let stop = CancellationToken::new();
    crate::shutdown::on_signals(stop.clone());
    run(config, stop).await
}

fn refuse_unsigned_webhooks(config: &Config, path: &Path) -> anyhow::Result<()> {
    if let Some(webex) = &config.webex {
        if webex.mode == WebexMode::Webhook
            && webex.webhook_secret.is_none()
            && !webex.allow_unsigned_webhooks
        {
            anyhow::bail!(
                "{}: [webex] receives webhooks but has no webhook secret, so anyone could post \
                 messages as anyone: set webhook_secret_env or webhook_secret_file (or, knowingly, \
                 allow_unsigned_webhooks = true)",
                path.display()
            );
        }
    }
    Ok(())
}

/// After the listener closed: the websocket is closed (and its device deleted), the replies being
/// worked on are finished, the notifications sent — each within `grace`.
pub async fn wind_down(
    bot: Option<&Bot>,
    finder: &Finder,
    websocket: Option<tokio::task::JoinHandle<Result<(), whereis_webex::WebexError>>>,
    grace: Duration,
) {
    if let Some(task) = websocket {
        if tokio::time::timeout(crate::chat::websocket::SHUTDOWN_GRACE, task)
            .await
            .is_err()
        {
            tracing::warn!("the Webex websocket did not close in time");
        }
    }
    if let Some(bot) = bot {
        bot.finish(grace).await;
    }
    finder.flush(NOTIFY_GRACE).await;
}

/// How long a stopping process (a server, or a one-shot command) waits for notifications to the
/// located people still being sent.
pub const NOTIFY_GRACE: Duration = Duration::from_secs(10);
