//! The Webex bot: takes webhook deliveries, answers at once, and does the work in a task —
//! fetch the message → strip the mention → parse the command → privacy checks → "Looking for …" →
//! lookup → one reply per device with its floor map.

pub mod command;
pub mod mention;
pub mod registration;
mod settings;
pub mod websocket;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;
use whereis_webex::{
    verify_signature, Attachment, Message, NewMessage, Person, RetryPolicy, RoomType, WebexClient,
    WebexError, WebhookEvent,
};

use crate::config::{PrivacyConfig, WebexConfig};
use crate::lookup::{FindError, Finder, SelfServiceError};
use crate::privacy::{Channel, Precision, Requester, WHO_LOOKED_WINDOW_DAYS};
use crate::report::describe_device;
use crate::store::{AuditEntry, StoreStats};
pub use command::Command;

/// How long a handled message id is remembered (Webex retries a delivery for a few minutes).
const DEDUPE_WINDOW: Duration = Duration::from_secs(3600);
/// Messages being worked on at once; more wait their turn in the queue.
const CONCURRENT_MESSAGES: usize = 64;
/// Messages accepted but not finished (working and waiting): past this, deliveries are refused
/// with 503 and Retry-After so that Webex delivers them again later, instead of piling up tasks.
pub const QUEUE_CAPACITY: usize = 512;
/// What a refused delivery is told to wait, in seconds.
pub const BUSY_RETRY_AFTER_SECONDS: u64 = 30;

/// The bot could not start.
#[derive(Debug, thiserror::Error)]
pub enum BotError {
    /// The Webex client could not be built or `people/me` failed (bad token, unreachable API).
    #[error("Webex: {0}")]
    Webex(#[from] WebexError),
}

/// Why a delivery of a message already claimed is ignored.
const ALREADY_HANDLED: &str = "already handled";

/// What to do with one webhook delivery.
#[derive(Debug)]
pub enum Intake {
    /// Signature missing or wrong: 401, and nothing else happens.
    Unauthorized,
    /// Not a webhook body: 400.
    Malformed(String),
    /// Accepted but nothing to do (a retry, our own message, another resource): 200.
    Ignored(&'static str),
    /// The work queue is full: 503 with Retry-After (Webex delivers it again; nothing was claimed).
    Busy,
    /// A new message to work on: 200, then [`Bot::spawn`].
    Accepted(Job),
}

/// A message claimed for answering (no other delivery of it, on any instance, will be), holding
/// its place in the bounded work queue until it is done.
#[derive(Debug)]
pub struct Job {
    /// The REST message id.
    pub message_id: String,
    /// The sender's email as the delivery named it (the message itself is authoritative).
    pub sender_email: Option<String>,
    _slot: QueueSlot,
}

/// A place in the work queue, counted in `whereis_bot_queue_depth` while held.
#[derive(Debug)]
struct QueueSlot {
    _permit: OwnedSemaphorePermit,
}

impl QueueSlot {
    fn new(permit: OwnedSemaphorePermit) -> QueueSlot {
        metrics::gauge!(crate::metrics::BOT_QUEUE_DEPTH).increment(1.0);
        QueueSlot { _permit: permit }
    }
}

impl Drop for QueueSlot {
    fn drop(&mut self) {
        metrics::gauge!(crate::metrics::BOT_QUEUE_DEPTH).decrement(1.0);
    }
}

/// How a message was claimed.
#[derive(Debug)]
pub enum Claim {
    /// Ours to answer.
    New(Job),
    /// Already answered (or being answered) by this or another instance.
    Duplicate,
    /// The work queue is full; try again later.
    Busy,
}

/// The Webex bot.
pub struct Bot {
    client: WebexClient,
    me: Person,
    finder: Arc<Finder>,
    webex: WebexConfig,
    privacy: PrivacyConfig,
    handled: moka::sync::Cache<String, ()>,
    /// Slots of the bounded work queue (accepted, not finished).
    queue: Arc<Semaphore>,
    /// Messages being worked on at once.
    working: Arc<Semaphore>,
    /// Replies still being worked on (awaited on shutdown).
    tasks: TaskTracker,
    /// The id of every message whose work is over (its queue slot free again).
    finished: tokio::sync::broadcast::Sender<String>,
}

impl Bot {
    /// Connects to Webex (asks `people/me` for the bot's own id and name).
    pub async fn connect(
        webex: WebexConfig,
        privacy: PrivacyConfig,
        network: &whereis_net::Network,
        finder: Arc<Finder>,
    ) -> Result<Bot, BotError> {
        let client = crate::webex_client(&webex, network, RetryPolicy::default())?;
        let me = client.me().await?;
        tracing::info!(bot = %me.display_name.as_deref().unwrap_or("?"), "Webex bot connected");
        Ok(Bot {
            client,
            me,
            finder,
            webex,
            privacy,
            handled: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(DEDUPE_WINDOW)
                .build(),
            queue: Arc::new(Semaphore::new(QUEUE_CAPACITY)),
            working: Arc::new(Semaphore::new(CONCURRENT_MESSAGES)),
            tasks: TaskTracker::new(),
            finished: tokio::sync::broadcast::channel(1024).0,
        })
    }

    /// Tells the id of each message whose work is over (answered, or failed), after its queue
    /// slot was freed: for the demo's local chat, which shows the replies, and for tests.
    pub fn subscribe_finished(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.finished.subscribe()
    }

    /// A work queue of `capacity` messages instead of [`QUEUE_CAPACITY`] (for tuning and tests).
    pub fn with_queue_capacity(mut self, capacity: usize) -> Bot {
        self.queue = Arc::new(Semaphore::new(capacity.max(1)));
        self
    }

    /// The bot's own person record (`people/me`).
    pub fn me(&self) -> &Person {
        &self.me
    }

    /// The Webex REST client the bot posts with.
    pub fn client(&self) -> &WebexClient {
        &self.client
    }

    /// The `[webex]` settings.
    pub fn settings(&self) -> &WebexConfig {
        &self.webex
    }

    /// The finder behind the bot.
    pub fn finder(&self) -> &Arc<Finder> {
        &self.finder
    }

    /// Whether a message (by its sender) is the bot's own.
    pub fn is_own(&self, person_id: Option<&str>, email: Option<&str>) -> bool {
        person_id == Some(self.me.id.as_str())
            || email
                .is_some_and(|email| self.me.emails.iter().any(|e| e.eq_ignore_ascii_case(email)))
    }

    /// Takes a slot in the work queue and claims the message id — once per message across
    /// webhook and websocket deliveries and across instances (through the store; this process's
    /// memory covers a store outage). A full queue claims nothing, so a later delivery still can.
    pub async fn claim(&self, message_id: &str, sender_email: Option<String>) -> Claim {
        match Arc::clone(&self.queue).try_acquire_owned() {
            Ok(slot) => {
                self.claim_with(QueueSlot::new(slot), message_id, sender_email)
                    .await
            }
            Err(_) => Claim::Busy,
        }
    }

    /// Like [`Bot::claim`], but waits for a free slot: for deliveries that cannot be refused and
    /// delivered again later (the websocket, catch-up), whose source then simply waits.
    pub async fn claim_when_free(&self, message_id: &str, sender_email: Option<String>) -> Claim {
        match Arc::clone(&self.queue).acquire_owned().await {
            Ok(slot) => {
                self.claim_with(QueueSlot::new(slot), message_id, sender_email)
                    .await
            }
            Err(_) => Claim::Busy,
        }
    }

    async fn claim_with(
        &self,
        slot: QueueSlot,
        message_id: &str,
        sender_email: Option<String>,
    ) -> Claim {
        let locally_first = self
            .handled
            .entry(message_id.to_owned())
            .or_insert(())
            .is_fresh();
        let first = match self
            .finder
            .privacy()
            .store()
            .first_delivery(message_id, crate::privacy::now())
            .await
        {
            Ok(first) => first,
            Err(err) => {
                tracing::warn!(error = %err, "store unavailable for message dedupe; using this instance's memory");
                locally_first
            }
        };
        if !first {
            return Claim::Duplicate;
        }
        Claim::New(Job {
            message_id: message_id.to_owned(),
            sender_email,
            _slot: slot,
        })
    }

    /// Runs `work` as part of the bot's work (awaited by [`Bot::finish`]).
    pub fn track(&self, work: impl std::future::Future<Output = ()> + Send + 'static) {
        self.tasks.spawn(work);
    }

    /// Waits (at most `limit`) for the replies being worked on.
    pub async fn finish(&self, limit: Duration) {
        self.tasks.close();
        if tokio::time::timeout(limit, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("replies still unfinished after {} s", limit.as_secs());
        }
    }

    /// The bot's display name.
    pub fn name(&self) -> &str {
        self.me.display_name.as_deref().unwrap_or("whereis")
    }

    /// Checks a delivery: signature (when a secret is configured), shape, retries, our own messages.
    pub async fn intake(&self, body: &[u8], signature: Option<&str>) -> Intake {
        let intake = self.check_delivery(body, signature).await;
        let result = match &intake {
            Intake::Unauthorized => "unauthorized",
            Intake::Malformed(_) => "malformed",
            Intake::Ignored(ALREADY_HANDLED) => "duplicate",
            Intake::Ignored(_) => "ignored",
            Intake::Busy => "busy",
            Intake::Accepted(_) => "accepted",
        };
        metrics::counter!(crate::metrics::WEBHOOK_DELIVERIES, "result" => result).increment(1);
        intake
    }

    async fn check_delivery(&self, body: &[u8], signature: Option<&str>) -> Intake {
        if let Some(secret) = &self.webex.webhook_secret {
            let signed = signature
                .is_some_and(|header| verify_signature(secret.expose().as_bytes(), body, header));
            if !signed {
                return Intake::Unauthorized;
            }
        }
        let event: WebhookEvent = match serde_json::from_slice(body) {
            Ok(event) => event,
            Err(err) => return Intake::Malformed(format!("not a webhook event: {err}")),
        };
        if event.resource != "messages" || event.event != "created" {
            return Intake::Ignored("not a new message");
        }
        if self.is_own(
            event.data.person_id.as_deref(),
            event.data.person_email.as_deref(),
        ) {
            return Intake::Ignored("the bot's own message");
        }
        match self.claim(&event.data.id, event.data.person_email).await {
            Claim::New(job) => Intake::Accepted(job),
            Claim::Duplicate => Intake::Ignored(ALREADY_HANDLED),
            Claim::Busy => Intake::Busy,
        }
    }

    /// Works on a claimed message in the background; the delivery has already been answered.
    pub fn spawn(self: &Arc<Self>, job: Job) {
        let bot = Arc::clone(self);
        self.tasks.spawn(async move {
            let Ok(_permit) = Arc::clone(&bot.working).acquire_owned().await else {
                return;
            };
            let message_id = job.message_id.clone();
            if let Err(err) = bot.handle(job).await {
                tracing::warn!(message = %message_id, error = %err, "could not answer a message");
            }
            let _ = bot.finished.send(message_id);
        });
    }

    /// Answers one claimed message.
    pub async fn handle(&self, job: Job) -> Result<(), WebexError> {
        let message = self.client.message(&job.message_id).await?;
        if self.is_own(
            message.person_id.as_deref(),
            message.person_email.as_deref(),
        ) {
            return Ok(());
        }
        let requester = message
            .person_email
            .clone()
            .or(job.sender_email)
            .unwrap_or_default()
            .to_lowercase();
        let reply = Reply {
            bot: self,
            message: &message,
        };
        let text = match message.room_type {
            Some(RoomType::Group) => mention::strip_mention(
                message.text.as_deref().unwrap_or_default(),
                message.html.as_deref(),
                &self.me.id,
                self.name(),
            ),
            _ => message.text.clone().unwrap_or_default(),
        };
        let command = Command::parse(&text);
        let requester = Requester::new(&requester, Channel::Chat);
        let not_allowed = || {
            format!(
                "Sorry, whereis is only available to people at {}.",
                self.privacy.allowed_domains.join(", ")
            )
        };
        // A location question gets the refusal from the finder (which audits it).
        if !self.finder.allowed(&requester) && !matches!(command, Command::Find(_)) {
            return reply.text(not_allowed()).await;
        }
        if let Some(text) = settings::answer(&self.finder, &requester, &command).await {
            return reply.text(text).await;
        }
        match command {
            Command::Help | Command::Empty => reply.markdown(help(self.name())).await,
            Command::OptOut => match self.finder.opt_out(&requester).await {
                Ok(username) => {
                    reply
                        .text(format!(
                            "Done: {username} will not be located by whereis any more. Send \"optin\" to undo."
                        ))
                        .await
                }
                Err(err) => reply.text(self_service_failure(&err)).await,
            },
            Command::OptIn => match self.finder.opt_in(&requester).await {
                Ok(username) => {
                    reply
                        .text(format!(
                            "Done: colleagues can find {username} with whereis."
                        ))
                        .await
                }
                Err(err) => reply.text(self_service_failure(&err)).await,
            },
            Command::WhoLookedForMe => match self.finder.who_looked(&requester).await {
                Ok((username, entries)) => reply.text(who_looked_text(&username, &entries)).await,
                Err(err) => reply.text(self_service_failure(&err)).await,
            },
            Command::Stats => {
                if self.privacy.admins.contains(&requester.id) {
                    match self.finder.privacy().stats().await {
                        Ok(stats) => reply.markdown(stats_text(&stats)).await,
                        Err(err) => reply.text(unavailable("stats are unavailable", &err)).await,
                    }
                } else {
                    reply
                        .text("Sorry, stats are for the whereis administrators.".to_owned())
                        .await
                }
            }
            Command::Find(query) => {
                let age = message_age(message.created_at());
                if age.is_some_and(|age| age > self.webex.max_backlog) {
                    // Found while catching up: the person has long moved on; don't locate them now.
                    return reply
                        .text(format!(
                            "Sorry, I was offline when you asked this ({} ago). Ask again if you still need it.",
                            crate::report::format_age(age.map(|a| a.as_secs()).unwrap_or(0))
                        ))
                        .await;
                }
                self.find(&reply, &query, &requester).await
            }
            // Answered above (`settings::answer`).
            Command::MySettings
            | Command::Precision(_)
            | Command::Hours(_)
            | Command::Share(_)
            | Command::Star(_)
            | Command::Unstar(_)
            | Command::Favourites
            | Command::Usage(_) => Ok(()),
        }
    }

    async fn find(
        &self,
        reply: &Reply<'_>,
        query: &str,
        requester: &Requester,
    ) -> Result<(), WebexError> {
        let report = match self.finder.find(query, requester).await {
            Ok(report) => report,
            Err(FindError::BadQuery(whereis_location::InvalidUsername::FullName(name))) => {
                return reply
                    .text(format!(
                        "I can only look people up by username here (e.g. \"whereis jdoe\"): \"{name}\" looks like a full name, and no directory is configured."
                    ))
                    .await
            }
            Err(FindError::Ambiguous { query, candidates }) => {
                let mut text = format!(
                    "\"{query}\" could be {} people. Answer with the number (or ask with the username):",
                    candidates.len()
                );
                for (i, entry) in candidates.iter().enumerate() {
                    let email = entry.email.as_deref().map(|e| format!(", {e}")).unwrap_or_default();
                    text.push_str(&format!("\n{}. {} ({}{email})", i + 1, entry.display_name, entry.username));
                }
                return reply.text(text).await;
            }
            Err(FindError::NotAllowed(domains)) => {
                return reply
                    .text(format!(
                        "Sorry, whereis is only available to people at {}.",
                        domains.join(", ")
                    ))
                    .await
            }
            Err(err) => return reply.text(format!("{err}.")).await,
        };
        // The acknowledgement goes out before the maps are drawn.
        reply
            .text(format!("Looking for {}…", report.person.username))
            .await?;
        let who = &report.person.username;
        if let Some(error) = &report.directory_error {
            reply
                .text(format!(
                    "(The directory is unavailable right now, so I looked {who} up as a username: {error}.)"
                ))
                .await?;
        }
        if report.devices.is_empty() {
            let mut text = format!(
                "I could not find {who} on the wireless network: not connected right now, out of the office, or a different username."
            );
            if !report.errors.is_empty() {
                text.push_str(&format!(" ({})", failed_sources(&report.errors)));
            }
            return reply.text(text).await;
        }
        if report.devices.len() > 1 {
            reply
                .text(format!("{who} has {} devices:", report.devices.len()))
                .await?;
        }
        for (i, entry) in report.devices.iter().enumerate() {
            let sentence = describe_device(who, &entry.device);
            if report.precision == Precision::Building {
                reply.text(sentence).await?;
                continue;
            }
            match self.finder.draw(&entry.device, report.precision).await {
                Ok(map) => {
                    let drawn = map.crop.unwrap_or(map.full);
                    let note = if drawn.clamped {
                        " (reported outside the floor plan; marked at its edge)"
                    } else {
                        ""
                    };
                    let attachment = Attachment {
                        file_name: format!("{who}-{}.png", i + 1),
                        content_type: "image/png".to_owned(),
                        bytes: drawn.png,
                    };
                    reply
                        .with_file(format!("{sentence}{note}"), attachment)
                        .await?;
                }
                Err(err) => {
                    reply
                        .text(format!("{sentence} (map unavailable: {err})"))
                        .await?;
                }
            }
        }
        if !report.errors.is_empty() {
            reply
                .text(format!("Note: {}", failed_sources(&report.errors)))
                .await?;
        }
        Ok(())
    }
}

/// Replies to one message: threaded in group spaces.
struct Reply<'a> {
    bot: &'a Bot,
    message: &'a Message,
}

impl Reply<'_> {
    fn base(&self) -> NewMessage {
        let parent_id = match self.message.room_type {
            // A reply goes under the thread's root, whether the request started the thread or not.
            Some(RoomType::Group) => Some(
                self.message
                    .parent_id
                    .clone()
                    .unwrap_or_else(|| self.message.id.clone()),
            ),
            _ => None,
        };
        NewMessage {
            room_id: self.message.room_id.clone(),
            parent_id,
            ..NewMessage::default()
        }
    }

    async fn text(&self, text: String) -> Result<(), WebexError> {
        let message = NewMessage {
            text: Some(whereis_webex::truncate_message(&text)),
            ..self.base()
        };
        self.bot.client.post_message(&message).await.map(|_| ())
    }

    async fn markdown(&self, markdown: String) -> Result<(), WebexError> {
        let message = NewMessage {
            markdown: Some(whereis_webex::truncate_message(&markdown)),
            ..self.base()
        };
        self.bot.client.post_message(&message).await.map(|_| ())
    }

    async fn with_file(&self, text: String, file: Attachment) -> Result<(), WebexError> {
        let message = NewMessage {
            text: Some(whereis_webex::truncate_message(&text)),
            ..self.base()
        };
        self.bot
            .client
            .post_message_with_file(&message, &file)
            .await
            .map(|_| ())
    }
}

/// How old a message is, from its `created` time; `None` when unknown or in the future.
fn message_age(created: Option<chrono::DateTime<chrono::Utc>>) -> Option<Duration> {
    chrono::Utc::now()
        .signed_duration_since(created?)
        .to_std()
        .ok()
}

pub(crate) fn self_service_failure(err: &SelfServiceError) -> String {
    match err {
        SelfServiceError::Identity(err) => format!("Sorry, {err}."),
        SelfServiceError::Store(err) => unavailable("that could not be done", err),
    }
}

fn unavailable(what: &str, err: &crate::store::StoreError) -> String {
    format!("Sorry, {what} right now ({err}). Please try again later.")
}

/// "Nobody looked for you…" or one line per lookup, newest first.
fn who_looked_text(username: &str, entries: &[AuditEntry]) -> String {
    if entries.is_empty() {
        return format!(
            "Nobody looked for {username} with whereis in the last {WHO_LOOKED_WINDOW_DAYS} days."
        );
    }
    let mut text = format!(
        "Lookups of {username} in the last {WHO_LOOKED_WINDOW_DAYS} days ({}):",
        entries.len()
    );
    for entry in entries {
        let when = chrono::DateTime::from_timestamp(entry.at, 0)
            .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_else(|| entry.at.to_string());
        let precision = entry
            .precision
            .as_deref()
            .map(|p| format!(", to the {p}").replace("to the exact", "exactly"))
            .unwrap_or_default();
        text.push_str(&format!(
            "\n- {when}: {} via {} ({}{precision})",
            entry.requester,
            entry.channel,
            entry.outcome.as_str()
        ));
    }
    text
}

fn failed_sources(errors: &[whereis_location::SourceFailure]) -> String {
    let names: Vec<String> = errors
        .iter()
        .map(|e| format!("{} did not answer: {}", e.source, e.error))
        .collect();
    names.join("; ")
}

/// The `help` text.
pub fn help(bot_name: &str) -> String {
    format!(
        "**{bot_name}** finds colleagues in the office through the wireless network.\n\n\
         - `{bot_name} jdoe` — where is jdoe? (in a space, mention me: @{bot_name} jdoe)\n\
         - `optout` — stop being located; `optin` — allow it\n\
         - `settings` — what you allow; `who looked for me` — who located you (30 days)\n\
         - `precision floor` / `building` / `exact` — how precisely colleagues see you\n\
         - `hours 09:00-17:00` — when you may be located (within the organisation's hours)\n\
         - `share with team` / `share with jane.doe@…` / `share with everyone`; `block nosy@…`, `unblock …`\n\
         - `star jdoe`, `unstar jdoe`, `favourites` — who of your starred colleagues is in\n\
         - `stats` — lookup counters (administrators)\n\
         - `help` — this text\n\n\
         I answer with the building and floor, how long ago the device was seen, and the floor plan with a marker for each of the person's devices."
    )
}

fn stats_text(stats: &StoreStats) -> String {
    let mut text = format!(
        "**whereis stats**\n\n- lookups: {}\n- found: {}\n- not found: {}\n- failed (every source down): {}\n- people opted out: {}\n- people opted in: {}\n",
        stats.lookups, stats.found, stats.not_found, stats.failed, stats.opted_out_people, stats.opted_in_people
    );
    for (reason, count) in &stats.refused {
        text.push_str(&format!("- refused ({reason}): {count}\n"));
    }
    for (source, count) in &stats.by_source {
        text.push_str(&format!("- found by {source}: {count}\n"));
    }
    text
}
