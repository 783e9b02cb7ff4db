//! whereis-bot: find a colleague in a hot-desk office through the wireless location servers.
//!
//! The binary's library half, so that integration tests can start the real server in-process:
//! - [`config`]: the TOML configuration, validated with file/line/key errors; secrets from env/files.
//! - [`lookup`]: one lookup for every channel ([`lookup::Finder`]); [`report`]: its JSON/text answer.
//! - [`privacy`]: the rules (opt-in/out, audience, working hours, precision, rate limit) and the
//!   audit log, enforced the same way on every channel; [`settings`]: what a person does about
//!   their own settings and favourites.
//! - [`server`]: the HTTP routes of `serve` and `demo` (API, webhooks, health, metrics);
//!   [`web`]: the web pages on top of them.
//! - [`chat`]: the Webex bot: webhook and websocket intake, commands, replies with maps.
//! - [`service`]: `serve` as a long-running service: wiring, background tasks, graceful stop;
//!   [`health`]: readiness; [`metrics`]: the Prometheus exporter; [`shutdown`]: signals.
//! - [`cli`]: the subcommands (`find`, `check-config`, `serve`, `demo`, `sim`, …).

pub mod api_settings;
pub mod auth;
pub mod chat;
pub mod cli;
pub mod config;
#[cfg(feature = "demo")]
pub mod demo;
pub mod health;
pub mod live;
pub mod lookup;
pub mod metrics;
pub mod oidc;
pub mod privacy;
pub mod report;
pub mod roster;
pub mod server;
pub mod service;
pub mod settings;
pub mod shutdown;
pub mod signin;
pub mod web;

pub use whereis_directory as directory;
pub use whereis_store as store;

/// The Webex REST client for `[webex]`: the bot's token, its connections routed by `network`.
pub fn webex_client(
    webex: &config::WebexConfig,
    network: &whereis_net::Network,
    retry: whereis_webex::RetryPolicy,
) -> Result<whereis_webex::WebexClient, whereis_webex::WebexError> {
    whereis_webex::WebexClient::with_http(
        &webex.api_base,
        whereis_webex::Token::new(webex.token.expose()),
        retry,
        WEBEX_REQUEST_TIMEOUT,
        network.http_client_builder(),
    )
}

/// Timeout of each Webex REST request.
pub const WEBEX_REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);
