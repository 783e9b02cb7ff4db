//! whereis-bot: find a colleague in a hot-desk office through the wireless location servers.
//!
//! The binary's library half, so that integration tests can start the real server in-process:
//! - [`config`]: the TOML configuration, validated with file/line/key errors; secrets from env/files.
//! - [`lookup`]: one lookup for every channel ([`lookup::Finder`]) and its JSON/text answer.
//! - [`server`]: the HTTP routes of `serve` and `demo`.
//! - [`chat`]: the Webex bot: webhook intake, commands, replies with maps.
//! - [`privacy`]: opt-outs and counters, enforced the same way on every channel.
//! - [`cli`]: the subcommands (`find`, `check-config`, `serve`, `demo`, `sim`).

pub mod chat;
pub mod cli;
pub mod config;
pub mod demo;
pub mod directory;
pub mod lookup;
pub mod privacy;
pub mod server;
pub mod store;

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
