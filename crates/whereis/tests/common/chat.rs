//! A whereis server with its Webex bot, the Webex double and the simulated office, for chat tests.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use whereis::chat::Bot;
use whereis::config::Config;
use whereis::lookup::Finder;
use whereis::server;
use whereis_sim::webex::{PostedMessage, WebexDouble};

use super::{Office, VARIANTS_AND_TIMEOUTS};

/// The webhook secret of chat tests.
pub const SECRET: &str = "webhook-secret-for-tests";
/// The usual requester.
pub const JANE: &str = "jane.doe@example.com";
/// Long enough for a slow CI machine; the waits end as soon as the replies are there.
pub const WAIT: Duration = Duration::from_secs(30);

/// How to configure the chat server.
#[derive(Debug, Clone)]
pub struct ChatOptions {
    /// Webhook secret (`None`: deliveries are not verified).
    pub secret: Option<&'static str>,
    /// Extra lines for `[privacy]`.
    pub privacy: String,
    /// Extra whole sections (`[directory]`, `[store]`, …).
    pub sections: String,
    /// The one allowed requester domain (`None`: everyone may use whereis).
    pub allowed_domains: Option<&'static str>,
}

impl Default for ChatOptions {
    fn default() -> ChatOptions {
        ChatOptions {
            secret: Some(SECRET),
            privacy: String::new(),
            sections: String::new(),
            allowed_domains: Some("example.com"),
        }
    }
}

/// The running chat set-up.
pub struct Chat {
    pub office: Office,
    pub webex: WebexDouble,
    pub webhook_url: String,
    pub config_path: PathBuf,
    pub finder: Arc<Finder>,
}

impl Chat {
    /// Default options.
    pub async fn start() -> Chat {
        Chat::start_with(ChatOptions::default()).await
    }

    /// With `options`.
    pub async fn start_with(options: ChatOptions) -> Chat {
        Chat::start_with_files(options, &[]).await
    }

    /// The chat set-up with `people` as its directory (`people.csv`), `privacy` lines, and its
    /// store on `postgres` when given (else SQLite in its directory).
    pub async fn with_directory(
        postgres: &Option<super::services::PgDatabase>,
        privacy: &str,
        people: &str,
    ) -> Chat {
        let mut sections = "[directory]\nkind = \"file\"\npath = \"people.csv\"\n".to_owned();
        if let Some(db) = postgres {
            sections.push_str(&format!("\n[store]\nurl = {:?}\n", db.url));
        }
        let options = ChatOptions {
            privacy: privacy.to_owned(),
            sections,
            ..ChatOptions::default()
        };
        Chat::start_with_files(options, &[("people.csv", people)]).await
    }

    /// With `options`, and `files` (name, content) written beside the configuration first.
    pub async fn start_with_files(options: ChatOptions, files: &[(&str, &str)]) -> Chat {
        let office = Office::start().await;
        for (name, content) in files {
            std::fs::write(office.dir.path().join(name), content).unwrap();
        }
        let webex = WebexDouble::start("bot-token", "whereis@webex.bot", "whereis")
            .await
            .unwrap();
        std::fs::write(office.dir.path().join("webex.token"), "bot-token").unwrap();
        let mut section = format!(
            "{VARIANTS_AND_TIMEOUTS}\n\n[webex]\ntoken_file = \"webex.token\"\napi_base = {:?}\n",
            webex.base_url()
        );
        if let Some(domain) = options.allowed_domains {
            section.push_str(&format!("allowed_domains = [{domain:?}]\n"));
        }
        if let Some(secret) = options.secret {
            std::fs::write(office.dir.path().join("webhook.secret"), secret).unwrap();
            section.push_str("webhook_secret_file = \"webhook.secret\"\n");
        }
        section.push_str(&format!(
            "\n[privacy]\nadmins = [\"it@example.com\"]\n{}\n{}\n\n{}",
            options.privacy,
            options.sections,
            super::WEB_TEST_PROXY
        ));
        let config_path = office.config("bot.toml", &section, &office.all_sources());
        let (webhook_url, finder) = start_instance(&config_path).await;
        Chat {
            office,
            webex,
            webhook_url,
            config_path,
            finder,
        }
    }

    /// Another whereis instance on the same configuration (and so the same store); its webhook URL.
    pub async fn another_instance(&self) -> String {
        start_instance(&self.config_path).await.0
    }

    /// `email` types `text` in `room`; the double delivers the signed webhook. Returns (message id, status).
    pub async fn say(&self, room: &str, email: &str, text: &str) -> (String, u16) {
        let id = self.webex.user_says(room, email, text);
        let status = self.deliver(&id).await;
        (id, status)
    }

    /// Delivers the webhook of an existing message to this instance.
    pub async fn deliver(&self, message_id: &str) -> u16 {
        self.deliver_to(&self.webhook_url, message_id).await
    }

    /// Delivers the webhook of an existing message to `url`.
    pub async fn deliver_to(&self, url: &str, message_id: &str) -> u16 {
        let body = self.webex.event_body(message_id);
        self.webex.deliver(url, &body, Some(SECRET)).await.unwrap()
    }

    /// Waits for at least `n` posts in all.
    pub async fn posts(&self, n: usize) -> Vec<PostedMessage> {
        let posts = self.webex.wait_for_posts(n, WAIT).await;
        assert!(posts.len() >= n, "expected {n} posts, got {posts:#?}");
        posts
    }

    /// Sends "help" as a marker and waits for its answer: everything delivered before has been
    /// handled (or refused) by then.
    pub async fn settle(&self, room: &str, already: usize) -> Vec<PostedMessage> {
        self.say(room, JANE, "help").await;
        self.posts(already + 1).await
    }
}

async fn start_instance(config_path: &std::path::Path) -> (String, Arc<Finder>) {
    let config = Config::load(config_path).unwrap();
    let finder = Arc::new(Finder::from_config(&config).await.unwrap());
    let bot = Bot::connect(
        config.webex.clone().unwrap(),
        config.privacy.clone(),
        &config.network,
        Arc::clone(&finder),
    )
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let webhook_url = format!("http://{}/webhooks/webex", listener.local_addr().unwrap());
    tokio::spawn(server::serve(
        listener,
        server::router(Arc::clone(&finder), Some(Arc::new(bot))),
        std::future::pending(),
    ));
    (webhook_url, finder)
}

/// The text of a post (text or markdown).
pub fn text(post: &PostedMessage) -> String {
    post.text
        .clone()
        .or(post.markdown.clone())
        .unwrap_or_default()
}
