//! `webex register`: the one webhook whereis needs, created once and updated after that (found by
//! its target URL or its name), so re-running the command never doubles deliveries.

use whereis_webex::{NewWebhook, SecretString, UpdateWebhook, WebexClient, WebexError};

/// Name of the webhook whereis registers.
pub const WEBHOOK_NAME: &str = "whereis";

/// What registering did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registration {
    /// A new webhook.
    Created {
        /// Its id.
        id: String,
        /// Where Webex delivers.
        target_url: String,
    },
    /// An existing webhook, pointed at `target_url` and activated.
    Updated {
        /// Its id.
        id: String,
        /// Where Webex delivers.
        target_url: String,
        /// Other webhooks that look like whereis's own (each would deliver every message again).
        duplicates: usize,
    },
}

/// Creates or updates the bot's `messages` webhook to deliver to `target_url`, signed with `secret`.
pub async fn register_webhook(
    client: &WebexClient,
    target_url: &str,
    secret: Option<SecretString>,
) -> Result<Registration, WebexError> {
    let hooks = client.webhooks().await?;
    let mine: Vec<_> = hooks
        .iter()
        .filter(|hook| {
            hook.resource == "messages"
                && (hook.target_url == target_url || hook.name == WEBHOOK_NAME)
        })
        .collect();
    match mine.first() {
        Some(existing) => {
            let updated = client
                .update_webhook(
                    &existing.id,
                    &UpdateWebhook {
                        name: WEBHOOK_NAME.to_owned(),
                        target_url: target_url.to_owned(),
                        secret,
                        status: Some("active".to_owned()),
                    },
                )
                .await?;
            Ok(Registration::Updated {
                id: updated.id,
                target_url: updated.target_url,
                duplicates: mine.len() - 1,
            })
        }
        None => {
            let created = client
                .create_webhook(&NewWebhook {
                    name: WEBHOOK_NAME.to_owned(),
                    target_url: target_url.to_owned(),
                    resource: "messages".to_owned(),
                    event: "created".to_owned(),
                    filter: None,
                    secret,
                })
                .await?;
            Ok(Registration::Created {
                id: created.id,
                target_url: created.target_url,
            })
        }
    }
}
