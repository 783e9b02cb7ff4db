//! `/demo/chat`: a page that looks like a chat with the bot, and the same conversation in JSON for
//! scripts. What is typed goes through the Webex double exactly as a Webex user's message would (the
//! double pushes it over the bot's websocket); the bot's posted replies come back in order, their
//! floor maps served from memory under `/demo/chat/files/{n}.png`.
//!
//! - `GET /demo/chat` — the page (pick who you are and, optionally, a group space; type; Enter sends).
//! - `GET /demo/chat?text=…[&from=EMAIL][&space=NAME]` — one exchange in JSON (maps also saved as
//!   files in the demo's temporary directory, named in `map`).
//! - `POST /demo/chat` — JSON `{text, from, space}` (the page's script) → the same JSON; a plain
//!   form post (no script) → the page with the exchange.

use std::path::PathBuf;
use std::sync::{Arc, LazyLock};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Json, Router};
use minijinja::Environment;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use whereis_sim::webex::WebexDouble;

use super::{CONNECT_WAIT, DEMO_REQUESTER};
use crate::chat::Bot;

/// Longest message the chat passes on (Webex allows about 7,000 bytes; a question is short).
const MAX_TEXT_CHARS: usize = 1000;
/// Longest group space name.
const MAX_SPACE_CHARS: usize = 60;
/// Largest request body of the chat routes.
const BODY_LIMIT: usize = 16 * 1024;
/// Bytes of reply images kept in memory for the page (oldest dropped first).
const IMAGE_BYTES: u64 = 64 * 1024 * 1024;

/// The chat's routes and what they share.
#[derive(Clone)]
pub(super) struct LocalChat {
    inner: Arc<Inner>,
}

struct Inner {
    webex: Arc<WebexDouble>,
    bot: Arc<Bot>,
    /// Where the JSON answer saves maps for curl users.
    files: PathBuf,
    /// Posted message number → its file (content type, bytes).
    images: moka::sync::Cache<u64, Arc<(String, Vec<u8>)>>,
    /// Who can be picked on the page: (email, display name), in scenario order.
    people: Vec<(String, String)>,
}

impl LocalChat {
    /// The chat through `webex` to `bot`, saving maps under `files`; `people` are the page's choices
    /// of who you are.
    pub(super) fn new(
        webex: Arc<WebexDouble>,
        bot: Arc<Bot>,
        files: PathBuf,
        people: Vec<(String, String)>,
    ) -> LocalChat {
        let images = moka::sync::Cache::builder()
            .weigher(|_n: &u64, file: &Arc<(String, Vec<u8>)>| {
                u32::try_from(file.1.len()).unwrap_or(u32::MAX)
            })
            .max_capacity(IMAGE_BYTES)
            .build();
        LocalChat {
            inner: Arc::new(Inner {
                webex,
                bot,
                files,
                images,
                people,
            }),
        }
    }

    /// `/demo/chat`, its files and its stylesheet and script, with the security headers of every
    /// other route (the app's layer does not reach routes merged after it).
    pub(super) fn router(self) -> Router {
        Router::new()
            .route("/demo/chat", get(chat_get).post(chat_post))
            .route("/demo/chat/files/{file}", get(chat_file))
            .route("/demo/assets/{name}", get(asset))
            .layer(DefaultBodyLimit::max(BODY_LIMIT))
            .with_state(self)
            .layer(middleware::from_fn(crate::web::security_headers))
    }
}

/// What a script or the page's form sends.
#[derive(Debug, Default, Deserialize)]
struct ChatRequest {
    text: Option<String>,
    from: Option<String>,
    space: Option<String>,
}

/// One message the bot posted in answer.
#[derive(Debug, Serialize)]
struct ChatReply {
    /// The message as the bot wrote it (plain text, or markdown when `markdown` is set).
    text: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    markdown: bool,
    /// The message as the page shows it: escaped HTML, markdown rendered.
    html: String,
    /// The attached image (a floor map), served from memory.
    #[serde(skip_serializing_if = "Option::is_none")]
    image_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image_width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image_height: Option<u32>,
    /// Where the attached file was saved on disk (or why it could not be).
    #[serde(skip_serializing_if = "Option::is_none")]
    map: Option<String>,
}

/// One message and the bot's replies.
#[derive(Debug, Serialize)]
struct Exchange {
    from: String,
    said: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    space: Option<String>,
    replies: Vec<ChatReply>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// A request the chat cannot pass on.
#[derive(Debug, thiserror::Error)]
enum BadRequest {
    #[error("say something: /demo/chat?text=whereis%20jdoe")]
    Empty,
    #[error("a message is at most {} characters", MAX_TEXT_CHARS)]
    TooLong,
    #[error("from: {0:?} is not an email address")]
    NotAnEmail(String),
    #[error("space: a group space name is at most {} characters", MAX_SPACE_CHARS)]
    SpaceTooLong,
}

/// A checked request: text, sender, group space.
struct Message {
    text: String,
    from: String,
    space: Option<String>,
}

impl ChatRequest {
    fn check(self) -> Result<Message, BadRequest> {
        let text = self.text.unwrap_or_default().trim().to_owned();
        if text.is_empty() {
            return Err(BadRequest::Empty);
        }
        if text.chars().count() > MAX_TEXT_CHARS {
            return Err(BadRequest::TooLong);
        }
        let from = self
            .from
            .map(|f| f.trim().to_owned())
            .filter(|f| !f.is_empty())
            .unwrap_or_else(|| DEMO_REQUESTER.to_owned());
        if !crate::auth::is_email(&from) {
            return Err(BadRequest::NotAnEmail(from));
        }
        let space = self
            .space
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty());
        if space
            .as_ref()
            .is_some_and(|s| s.chars().count() > MAX_SPACE_CHARS)
        {
            return Err(BadRequest::SpaceTooLong);
        }
        Ok(Message { text, from, space })
    }
}

fn json_error(status: StatusCode, message: String) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

/// `GET /demo/chat`: the page; with `text`, one exchange in JSON.
async fn chat_get(State(chat): State<LocalChat>, Query(params): Query<ChatRequest>) -> Response {
    if params.text.is_none() {
        return page(&chat, None, &ChatRequest::default(), StatusCode::OK);
    }
    match params.check() {
        Ok(message) => Json(chat.exchange(message, true).await).into_response(),
        Err(err) => json_error(StatusCode::BAD_REQUEST, err.to_string()),
    }
}

/// `POST /demo/chat`: JSON in, JSON out (the page's script); a form post gets the page.
async fn chat_post(
    State(chat): State<LocalChat>,
    headers: HeaderMap,
    request: Request,
) -> Response {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if is_form {
        let Form(params) = match Form::<ChatRequest>::from_request(request, &()).await {
            Ok(form) => form,
            Err(rejection) => return rejection.into_response(),
        };
        let shown = ChatRequest {
            text: None,
            from: params.from.clone(),
            space: params.space.clone(),
        };
        return match params.check() {
            Ok(message) => {
                let exchange = chat.exchange(message, false).await;
                page(&chat, Some(&exchange), &shown, StatusCode::OK)
            }
            Err(err) => {
                let exchange = Exchange {
                    from: String::new(),
                    said: String::new(),
                    space: None,
                    replies: Vec::new(),
                    error: Some(err.to_string()),
                };
                page(&chat, Some(&exchange), &shown, StatusCode::BAD_REQUEST)
            }
        };
    }
    let Json(params) = match Json::<ChatRequest>::from_request(request, &()).await {
        Ok(json) => json,
        Err(rejection) => return json_error(rejection.status(), rejection.body_text()),
    };
    match params.check() {
        Ok(message) => Json(chat.exchange(message, false).await).into_response(),
        Err(err) => json_error(StatusCode::BAD_REQUEST, err.to_string()),
    }
}

impl LocalChat {
    /// Says `message` in the Webex double (a direct room, or a group space) and waits for the bot to
    /// finish with it; the replies are the bot's posts in that room (in a space, in that thread).
    /// With `save`, attached files are also written to disk.
    async fn exchange(&self, message: Message, save: bool) -> Exchange {
        let inner = &self.inner;
        let Message { text, from, space } = message;
        let room = match &space {
            Some(space) => inner.webex.group_room(space),
            None => inner.webex.direct_room(&from),
        };
        let before = inner.webex.posted().len();
        let mut finished = inner.bot.subscribe_finished();
        // The double pushes the message over the bot's websocket, as Webex would.
        let id = inner.webex.user_says(&room, &from, &text);
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
        let error = match answered {
            Ok(result) => result.err(),
            Err(_) => Some(format!(
                "no answer within {} s (is the websocket connected?)",
                CONNECT_WAIT.as_secs()
            )),
        };
        let mut replies = Vec::new();
        for (index, post) in inner.webex.posted().into_iter().enumerate().skip(before) {
            let ours = post.room_id == room
                && (space.is_none() || post.parent_id.as_deref() == Some(id.as_str()));
            if !ours {
                continue;
            }
            let number = u64::try_from(index).unwrap_or(u64::MAX).saturating_add(1);
            let markdown = post.text.is_none() && post.markdown.is_some();
            let text = post.text.or(post.markdown);
            let mut reply = ChatReply {
                html: message_html(text.as_deref().unwrap_or_default(), markdown),
                text,
                markdown,
                image_url: None,
                image_width: None,
                image_height: None,
                map: None,
            };
            if let Some(file) = post.file {
                if save {
                    let path = inner.files.join(format!("{number}-{}", file.file_name));
                    let saved = match tokio::fs::create_dir_all(&inner.files).await {
                        Ok(()) => tokio::fs::write(&path, &file.bytes).await,
                        Err(err) => Err(err),
                    };
                    reply.map = Some(match saved {
                        Ok(()) => path.display().to_string(),
                        Err(err) => format!("cannot save the map: {err}"),
                    });
                }
                if let Some((width, height)) = png_size(&file.bytes) {
                    reply.image_width = Some(width);
                    reply.image_height = Some(height);
                }
                reply.image_url = Some(format!("/demo/chat/files/{number}.png"));
                inner
                    .images
                    .insert(number, Arc::new((file.content_type, file.bytes)));
            }
            replies.push(reply);
        }
        Exchange {
            from,
            said: text,
            space,
            replies,
            error,
        }
    }
}

/// `GET /demo/chat/files/{n}.png`: a reply's attached image, while it is kept in memory.
async fn chat_file(State(chat): State<LocalChat>, Path(file): Path<String>) -> Response {
    let number = file
        .strip_suffix(".png")
        .and_then(|n| n.parse::<u64>().ok());
    let Some(stored) = number.and_then(|n| chat.inner.images.get(&n)) else {
        return json_error(
            StatusCode::NOT_FOUND,
            "no such file (the demo keeps the latest replies' images only)".to_owned(),
        );
    };
    // Only an image type is passed on; anything else is served as opaque bytes.
    let content_type = if stored.0.starts_with("image/") {
        stored.0.clone()
    } else {
        "application/octet-stream".to_owned()
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            // Numbers start again with the next demo: never reuse a stored copy unchecked.
            (header::CACHE_CONTROL, "private, no-cache".to_owned()),
        ],
        Bytes::copy_from_slice(&stored.1),
    )
        .into_response()
}

/// Width and height from a PNG's header, if `bytes` start like a PNG.
fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    if !bytes.starts_with(b"\x89PNG\r\n\x1a\n") || bytes.get(12..16) != Some(b"IHDR") {
        return None;
    }
    let width = u32::from_be_bytes(bytes.get(16..20)?.try_into().ok()?);
    let height = u32::from_be_bytes(bytes.get(20..24)?.try_into().ok()?);
    Some((width, height))
}

/// A message as HTML: everything escaped; paragraphs at blank lines, line breaks kept; with
/// `markdown`, `- ` lines as lists, `**bold**` and `` `code` `` rendered (what the bot's markdown
/// uses).
fn message_html(text: &str, markdown: bool) -> String {
    let mut html = String::new();
    for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let mut lines = block.lines().peekable();
        while lines.peek().is_some() {
            let is_item = |line: &str| markdown && line.trim_start().starts_with("- ");
            if lines.peek().is_some_and(|l| is_item(l)) {
                html.push_str("<ul>");
                while let Some(line) = lines.next_if(|l| is_item(l)) {
                    html.push_str("<li>");
                    inline(&mut html, &line.trim_start()[2..], markdown);
                    html.push_str("</li>");
                }
                html.push_str("</ul>");
            } else {
                html.push_str("<p>");
                let mut first = true;
                while let Some(line) = lines.next_if(|l| !is_item(l)) {
                    if !first {
                        html.push_str("<br>");
                    }
                    first = false;
                    inline(&mut html, line, markdown);
                }
                html.push_str("</p>");
            }
        }
    }
    html
}

/// One line's text: escaped, with markdown's `` `code` `` and `**bold**` when `markdown`.
fn inline(html: &mut String, text: &str, markdown: bool) {
    if !markdown {
        escape(html, text);
        return;
    }
    let mut rest = text;
    loop {
        let code = rest.find('`');
        let bold = rest.find("**");
        let (start, open, close, tag) = match (code, bold) {
            (Some(c), Some(b)) if b < c => (b, 2, "**", "strong"),
            (Some(c), _) => (c, 1, "`", "code"),
            (None, Some(b)) => (b, 2, "**", "strong"),
            (None, None) => break,
        };
        let Some(length) = rest[start + open..].find(close) else {
            break;
        };
        escape(html, &rest[..start]);
        html.push_str(&format!("<{tag}>"));
        escape(html, &rest[start + open..start + open + length]);
        html.push_str(&format!("</{tag}>"));
        rest = &rest[start + open + length + close.len()..];
    }
    escape(html, rest);
}

fn escape(html: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => html.push_str("&amp;"),
            '<' => html.push_str("&lt;"),
            '>' => html.push_str("&gt;"),
            '"' => html.push_str("&quot;"),
            '\'' => html.push_str("&#39;"),
            c => html.push(c),
        }
    }
}

/// An embedded file served under a name carrying its content hash, so it may be cached for a year.
struct Asset {
    name: String,
    body: &'static str,
    content_type: &'static str,
}

impl Asset {
    fn new(stem: &str, extension: &str, body: &'static str, content_type: &'static str) -> Asset {
        let digest = Sha256::digest(body.as_bytes());
        Asset {
            name: format!("{stem}.{}.{extension}", hex::encode(&digest[..8])),
            body,
            content_type,
        }
    }

    fn url(&self) -> String {
        format!("/demo/assets/{}", self.name)
    }
}

static CSS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "chat",
        "css",
        include_str!("chat.css"),
        "text/css; charset=utf-8",
    )
});

static JS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "chat",
        "js",
        include_str!("chat.js"),
        "text/javascript; charset=utf-8",
    )
});

/// `GET /demo/assets/{name}`: the chat page's stylesheet or script.
async fn asset(Path(name): Path<String>) -> Response {
    let Some(asset) = [&*CSS, &*JS].into_iter().find(|a| a.name == name) else {
        return (StatusCode::NOT_FOUND, "no such file\n").into_response();
    };
    (
        [
            (header::CONTENT_TYPE, asset.content_type),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        asset.body,
    )
        .into_response()
}

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    if let Err(err) = env.add_template("chat.html", include_str!("chat.html")) {
        tracing::error!(error = %err, "the demo chat template does not compile");
    }
    env
});

/// Someone the page offers as "you are".
#[derive(Serialize)]
struct Choice<'a> {
    email: &'a str,
    name: &'a str,
}

/// The chat page, with `exchange` shown when a form post brought one; `shown` keeps the form's
/// choices.
fn page(
    chat: &LocalChat,
    exchange: Option<&Exchange>,
    shown: &ChatRequest,
    status: StatusCode,
) -> Response {
    let from = shown
        .from
        .clone()
        .unwrap_or_else(|| DEMO_REQUESTER.to_owned());
    let people: Vec<Choice<'_>> = chat
        .inner
        .people
        .iter()
        .map(|(email, name)| Choice { email, name })
        .collect();
    let sender = people
        .iter()
        .find(|p| p.email == from)
        .map_or(from.as_str(), |p| p.name);
    let rendered = TEMPLATES.get_template("chat.html").and_then(|t| {
        t.render(minijinja::context! {
            app_css => crate::web::app_css_url(),
            css => CSS.url(),
            js => JS.url(),
            people => people,
            from => from.as_str(),
            sender => sender,
            space => shown.space.clone().unwrap_or_default(),
            exchange => exchange,
            max_text => MAX_TEXT_CHARS,
            max_space => MAX_SPACE_CHARS,
        })
    });
    match rendered {
        Ok(html) => (status, [(header::CACHE_CONTROL, "no-store")], Html(html)).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "cannot render the demo chat page");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the demo could not draw this page; the error is in its log\n",
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_escaped_and_markdown_is_readable() {
        assert_eq!(
            message_html("Looking for <b>jdoe</b>…", false),
            "<p>Looking for &lt;b&gt;jdoe&lt;/b&gt;…</p>"
        );
        assert_eq!(
            message_html("one\ntwo\n\n**three** `x`", false),
            "<p>one<br>two</p><p>**three** `x`</p>"
        );
        assert_eq!(
            message_html(
                "**whereis** finds <people>.\n\n- `whereis jdoe` — where?\n- `help` — this\n\nEnd",
                true
            ),
            "<p><strong>whereis</strong> finds &lt;people&gt;.</p><ul><li><code>whereis jdoe</code> \
             — where?</li><li><code>help</code> — this</li></ul><p>End</p>"
        );
        // An unclosed marker is text.
        assert_eq!(message_html("a ** b ` c", true), "<p>a ** b ` c</p>");
    }

    #[test]
    fn png_sizes_come_from_the_header_only() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend_from_slice(&640u32.to_be_bytes());
        png.extend_from_slice(&480u32.to_be_bytes());
        assert_eq!(png_size(&png), Some((640, 480)));
        assert_eq!(png_size(&png[..20]), None);
        assert_eq!(png_size(b"GIF89a"), None);
    }

    #[test]
    fn requests_are_checked_before_anything_is_said() {
        let request = |text: &str, from: Option<&str>, space: Option<&str>| ChatRequest {
            text: Some(text.to_owned()),
            from: from.map(str::to_owned),
            space: space.map(str::to_owned),
        };
        let ok = request(" whereis jdoe ", None, Some("  "))
            .check()
            .expect("valid");
        assert_eq!(
            (ok.text.as_str(), ok.from.as_str(), ok.space),
            ("whereis jdoe", DEMO_REQUESTER, None)
        );
        assert!(matches!(
            request("  ", None, None).check(),
            Err(BadRequest::Empty)
        ));
        assert!(matches!(
            request("hi", Some("jdoe"), None).check(),
            Err(BadRequest::NotAnEmail(_))
        ));
        assert!(matches!(
            request(&"x".repeat(MAX_TEXT_CHARS + 1), None, None).check(),
            Err(BadRequest::TooLong)
        ));
        assert!(matches!(
            request("hi", None, Some(&"s".repeat(MAX_SPACE_CHARS + 1))).check(),
            Err(BadRequest::SpaceTooLong)
        ));
    }

    #[test]
    fn the_page_renders_with_hashed_assets() {
        let template = TEMPLATES.get_template("chat.html").expect("compiles");
        let html = template
            .render(minijinja::context! {
                app_css => crate::web::app_css_url(),
            css => CSS.url(),
                js => JS.url(),
                people => vec![Choice { email: "a@example.com", name: "A <b>" }],
                from => "a@example.com",
                sender => "A <b>",
                space => "",
                exchange => Option::<Exchange>::None,
                max_text => MAX_TEXT_CHARS,
                max_space => MAX_SPACE_CHARS,
            })
            .expect("renders");
        // minijinja escapes the '/' of the URL in attributes; the hashed names are there as they are.
        assert!(
            html.contains(CSS.name.as_str()) && html.contains(JS.name.as_str()),
            "{html}"
        );
        assert!(html.contains("A &lt;b&gt;"), "{html}");
        assert!(!html.contains("<script>") && !html.contains("style="));
        assert!(CSS.name.starts_with("chat.") && CSS.name.len() == "chat..css".len() + 16);
    }
}
