//! The client against a scripted Webex double on 127.0.0.1: request shapes, answers, retries and
//! failures, as the bot would meet them.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Router;
use whereis_webex::{
    Attachment, ExposeSecret, Message, NewMessage, NewWebhook, RetryPolicy, RoomType, Token,
    UpdateWebhook, WebexClient, WebexError,
};

const TOKEN: &str = "SECRET-BOT-TOKEN-0123456789";
const MESSAGE_FIXTURE: &str = include_str!("fixtures/webex-message-group-mention.json");

/// One request as the double saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    /// Raw (still percent-encoded) path.
    path: String,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Seen {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// One scripted answer.
#[derive(Debug, Clone)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    delay: Duration,
}

impl Reply {
    fn json(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
            delay: Duration::ZERO,
        }
    }

    fn ok(body: &str) -> Reply {
        Reply::json(200, body)
    }

    fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }

    fn delayed(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

#[derive(Clone, Default)]
struct Double {
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Answers in order; when they run out, the last one given repeats.
    script: Arc<Mutex<VecDeque<Reply>>>,
    last: Arc<Mutex<Option<Reply>>>,
}

struct Server {
    addr: SocketAddr,
    double: Double,
}

impl Server {
    async fn start(replies: Vec<Reply>) -> Server {
        let double = Double::default();
        double.script.lock().unwrap().extend(replies);
        let app = Router::new().fallback(answer).with_state(double.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Server { addr, double }
    }

    fn base(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    fn client(&self, retry: RetryPolicy) -> WebexClient {
        WebexClient::new(
            &self.base(),
            Token::new(TOKEN),
            retry,
            Duration::from_secs(5),
        )
        .unwrap()
    }

    fn push(&self, reply: Reply) {
        self.double.script.lock().unwrap().push_back(reply);
    }

    fn seen(&self) -> Vec<Seen> {
        self.double.seen.lock().unwrap().clone()
    }

    fn only_request(&self) -> Seen {
        let seen = self.seen();
        assert_eq!(seen.len(), 1, "{seen:#?}");
        seen.into_iter().next().unwrap()
    }
}

async fn answer(State(double): State<Double>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 64 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let query = parts
        .uri
        .query()
        .map(|q| {
            reqwest::Url::parse(&format!("http://x/?{q}"))
                .unwrap()
                .query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default();
    double.seen.lock().unwrap().push(Seen {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query,
        headers: parts.headers,
        body: body.to_vec(),
    });
    let reply = {
        let mut script = double.script.lock().unwrap();
        let mut last = double.last.lock().unwrap();
        if let Some(next) = script.pop_front() {
            *last = Some(next);
        }
        last.clone().unwrap_or_else(|| Reply::json(404, "{}"))
    };
    tokio::time::sleep(reply.delay).await;
    let mut response = Response::builder().status(reply.status);
    for (name, value) in &reply.headers {
        response = response.header(name, value);
    }
    response.body(Body::from(reply.body)).unwrap()
}

/// A policy that retries quickly, so the tests take little time.
fn fast() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        max_total_wait: Duration::from_secs(5),
        fallback_retry_after: Duration::from_millis(100),
    }
}

/// The token must never show in an error, however it is printed.
fn assert_no_token(err: &WebexError) {
    let printed = format!("{err} {err:?}");
    assert!(!printed.contains(TOKEN), "{printed}");
    assert!(!printed.contains("Bearer"), "{printed}");
}

fn assert_bearer(seen: &Seen) {
    assert_eq!(seen.header("authorization"), format!("Bearer {TOKEN}"));
}

const PERSON: &str = r#"{"id":"P1","emails":["jane.doe@example.com"],"displayName":"Jane Doe",
    "nickName":"Jane","firstName":"Jane","lastName":"Doe","orgId":"O1","type":"person"}"#;

const WEBHOOK: &str = r#"{"id":"W1","name":"whereis","targetUrl":"https://bot.example/webhooks/webex",
    "resource":"messages","event":"created","secret":"s3","status":"active","created":"2026-01-01T00:00:00.000Z"}"#;

// ---------------------------------------------------------------------------------------------
// Request shapes and answers

#[tokio::test]
async fn me_gets_people_me() {
    let server = Server::start(vec![Reply::ok(PERSON)]).await;
    let me = server.client(fast()).me().await.unwrap();
    assert_eq!(me.id, "P1");
    assert_eq!(me.display_name.as_deref(), Some("Jane Doe"));
    assert_eq!(me.emails, vec!["jane.doe@example.com"]);
    assert_eq!(me.org_id.as_deref(), Some("O1"));
    let seen = server.only_request();
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("GET", "/v1/people/me")
    );
    assert!(seen.query.is_empty());
    assert_bearer(&seen);
    assert_eq!(seen.header("accept"), "application/json");
}

#[tokio::test]
async fn person_by_email_queries_email() {
    let server = Server::start(vec![Reply::ok(&format!(r#"{{"items":[{PERSON}]}}"#))]).await;
    let client = server.client(fast());
    let person = client
        .person_by_email("jane.doe+x@example.com")
        .await
        .unwrap();
    assert_eq!(person.map(|p| p.id).as_deref(), Some("P1"));
    let seen = server.only_request();
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("GET", "/v1/people")
    );
    assert_eq!(
        seen.query,
        vec![("email".into(), "jane.doe+x@example.com".into())]
    );
    assert_bearer(&seen);

    server.push(Reply::ok(r#"{"items":[]}"#));
    assert_eq!(
        client.person_by_email("nobody@example.com").await.unwrap(),
        None
    );
}

#[tokio::test]
async fn people_by_display_name_queries_name_and_max() {
    let two = format!(
        r#"{{"items":[{PERSON},{{"id":"P2","displayName":"Jane Doeling"}},{{"no":"id"}}]}}"#
    );
    let server = Server::start(vec![Reply::ok(&two)]).await;
    let client = server.client(fast());
    let people = client.people_by_display_name("Jane Doe", 5).await.unwrap();
    // The record without an id is skipped, not fatal.
    let ids: Vec<_> = people.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["P1", "P2"]);
    assert!(people[1].emails.is_empty());
    let seen = server.only_request();
    assert_eq!(seen.path, "/v1/people");
    assert_eq!(
        seen.query,
        vec![
            ("displayName".into(), "Jane Doe".into()),
            ("max".into(), "5".into())
        ]
    );
    // Never more than asked for.
    assert_eq!(
        client
            .people_by_display_name("Jane", 1)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(client
        .people_by_display_name("Jane", 0)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(server.seen().len(), 2, "max 0 asks nothing");
}

#[tokio::test]
async fn message_parses_the_fixture() {
    let server = Server::start(vec![Reply::ok(MESSAGE_FIXTURE)]).await;
    let message = server
        .client(fast())
        .message("Y2lzY29zcGFyazovL3VzL01FU1NBR0UvOTJkYjNiZTAtNDNiZC0xMWU2LThhZTktZGQ1YjNkZmM1NjVk")
        .await
        .unwrap();
    assert_eq!(message.room_type, Some(RoomType::Group));
    assert_eq!(message.text.as_deref(), Some("whereis jdoe"));
    assert_eq!(
        message.person_email.as_deref(),
        Some("jane.doe@example.com")
    );
    assert_eq!(
        message.mentioned_people,
        vec!["Y2lzY29zcGFyazovL3VzL1BFT1BMRS9ib3QtaWQ"]
    );
    assert!(message
        .html
        .as_deref()
        .unwrap()
        .contains(r#"data-object-id="Y2lzY29zcGFyazovL3VzL1BFT1BMRS9ib3QtaWQ""#));
    assert_eq!(message.created.as_deref(), Some("2026-11-25T00:15:30.123Z"));
    let seen = server.only_request();
    assert_eq!(
        seen.path,
        "/v1/messages/Y2lzY29zcGFyazovL3VzL01FU1NBR0UvOTJkYjNiZTAtNDNiZC0xMWU2LThhZTktZGQ1YjNkZmM1NjVk"
    );
    assert_bearer(&seen);
}

#[tokio::test]
async fn message_id_with_path_characters_is_encoded() {
    let server = Server::start(vec![Reply::ok(r#"{"id":"a/b+c=="}"#)]).await;
    let client = server.client(fast());
    let message = client.message("a/b+c==").await.unwrap();
    assert_eq!(message.id, "a/b+c==");
    assert_eq!(server.only_request().path, "/v1/messages/a%2Fb+c==");
    for id in ["", ".", ".."] {
        let err = client.message(id).await.unwrap_err();
        assert!(matches!(err, WebexError::Invalid(_)), "{err:?}");
    }
    assert_eq!(server.seen().len(), 1, "invalid ids are not sent");
}

#[tokio::test]
async fn post_message_sends_json_without_empty_fields() {
    let server = Server::start(vec![Reply::ok(
        r#"{"id":"M9","roomId":"R1","roomType":"group"}"#,
    )])
    .await;
    let posted = server
        .client(fast())
        .post_message(&NewMessage {
            room_id: Some("R1".into()),
            parent_id: Some("M1".into()),
            markdown: Some("**Jane Doe** is on floor 3".into()),
            ..NewMessage::default()
        })
        .await
        .unwrap();
    assert_eq!(posted.id, "M9");
    let seen = server.only_request();
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("POST", "/v1/messages")
    );
    assert_eq!(seen.header("content-type"), "application/json");
    assert_bearer(&seen);
    assert_eq!(
        seen.json(),
        serde_json::json!({"roomId": "R1", "parentId": "M1", "markdown": "**Jane Doe** is on floor 3"})
    );
}

/// One part of a multipart/form-data body.
#[derive(Debug)]
struct FormPart {
    name: String,
    file_name: Option<String>,
    content_type: Option<String>,
    body: Vec<u8>,
}

/// A small multipart/form-data reader, enough to check what the client sent.
fn parse_multipart(seen: &Seen) -> Vec<FormPart> {
    let content_type = seen.header("content-type");
    let boundary = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .expect("multipart boundary")
        .trim_matches('"');
    assert!(
        content_type.starts_with("multipart/form-data"),
        "{content_type}"
    );
    let delimiter = format!("--{boundary}").into_bytes();
    let body = &seen.body;
    let mut starts = Vec::new();
    let mut i = 0;
    while i + delimiter.len() <= body.len() {
        if body[i..].starts_with(&delimiter) {
            starts.push(i);
            i += delimiter.len();
        } else {
            i += 1;
        }
    }
    let mut parts = Vec::new();
    for pair in starts.windows(2) {
        // "--boundary\r\n" headers "\r\n\r\n" content "\r\n" next "--boundary"
        let chunk = &body[pair[0] + delimiter.len() + 2..pair[1] - 2];
        let split = chunk
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("part headers end");
        let head = std::str::from_utf8(&chunk[..split]).unwrap();
        let content = chunk[split + 4..].to_vec();
        let mut part = FormPart {
            name: String::new(),
            file_name: None,
            content_type: None,
            body: content,
        };
        for line in head.split("\r\n") {
            let lower = line.to_ascii_lowercase();
            if lower.starts_with("content-disposition:") {
                for param in line.split(';').skip(1) {
                    let (key, value) = param.trim().split_once('=').unwrap();
                    let value = value.trim_matches('"').to_owned();
                    match key {
                        "name" => part.name = value,
                        "filename" => part.file_name = Some(value),
                        _ => {}
                    }
                }
            } else if lower.starts_with("content-type:") {
                part.content_type = Some(line["content-type:".len()..].trim().to_owned());
            }
        }
        parts.push(part);
    }
    parts
}

fn png() -> Attachment {
    Attachment {
        file_name: "jane-doe floor 3.png".into(),
        content_type: "image/png".into(),
        bytes: b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR--boundary-like--\r\n\r\nbytes".to_vec(),
    }
}

#[tokio::test]
async fn post_message_with_file_sends_multipart() {
    let server = Server::start(vec![Reply::ok(
        r#"{"id":"M9","files":["https://x/contents/1"]}"#,
    )])
    .await;
    let message = NewMessage {
        room_id: Some("R1".into()),
        parent_id: Some("M1".into()),
        text: Some("Jane Doe: floor 3".into()),
        markdown: Some("**Jane Doe**: floor 3".into()),
        ..NewMessage::default()
    };
    let posted = server
        .client(fast())
        .post_message_with_file(&message, &png())
        .await
        .unwrap();
    assert_eq!(posted.files, vec!["https://x/contents/1"]);
    let seen = server.only_request();
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("POST", "/v1/messages")
    );
    assert_bearer(&seen);
    let parts = parse_multipart(&seen);
    let names: Vec<_> = parts.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["roomId", "parentId", "text", "markdown", "files"]);
    let text = |name: &str| {
        let part = parts.iter().find(|p| p.name == name).unwrap();
        assert_eq!(part.file_name, None);
        String::from_utf8(part.body.clone()).unwrap()
    };
    assert_eq!(text("roomId"), "R1");
    assert_eq!(text("parentId"), "M1");
    assert_eq!(text("text"), "Jane Doe: floor 3");
    assert_eq!(text("markdown"), "**Jane Doe**: floor 3");
    let file = parts.iter().find(|p| p.name == "files").unwrap();
    assert_eq!(file.file_name.as_deref(), Some("jane-doe floor 3.png"));
    assert_eq!(file.content_type.as_deref(), Some("image/png"));
    assert_eq!(file.body, png().bytes);
}

#[tokio::test]
async fn post_message_with_file_is_rebuilt_for_each_attempt() {
    let server = Server::start(vec![
        Reply::json(503, r#"{"message":"busy"}"#),
        Reply::ok(r#"{"id":"M9"}"#),
    ])
    .await;
    let message = NewMessage {
        to_person_email: Some("jane.doe@example.com".into()),
        text: Some("here".into()),
        ..NewMessage::default()
    };
    server
        .client(fast())
        .post_message_with_file(&message, &png())
        .await
        .unwrap();
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    for request in &seen {
        let parts = parse_multipart(request);
        let names: Vec<_> = parts.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["toPersonEmail", "text", "files"]);
        assert_eq!(parts[2].body, png().bytes);
    }
}

#[tokio::test]
async fn post_message_with_file_rejects_bad_attachments_without_sending() {
    let server = Server::start(vec![Reply::ok(r#"{"id":"M9"}"#)]).await;
    let client = server.client(fast());
    let message = NewMessage {
        room_id: Some("R1".into()),
        ..NewMessage::default()
    };
    for attachment in [
        Attachment {
            content_type: "not a mime type".into(),
            ..png()
        },
        Attachment {
            file_name: " ".into(),
            ..png()
        },
    ] {
        let err = client
            .post_message_with_file(&message, &attachment)
            .await
            .unwrap_err();
        assert!(matches!(err, WebexError::Invalid(_)), "{err:?}");
    }
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn webhooks_follow_next_links() {
    let server = Server::start(vec![]).await;
    let page1 = format!(r#"{{"items":[{WEBHOOK}]}}"#);
    let page2 = r#"{"items":[{"id":"W2","name":"other","targetUrl":"https://o/x","resource":"all","event":"all"}]}"#;
    server.push(Reply::ok(&page1).header(
        "link",
        &format!(
            r#"<{}/webhooks?max=100&cursor=abc>; rel="next""#,
            server.base()
        ),
    ));
    server.push(Reply::ok(page2).header("link", "</v1/webhooks?max=100&cursor=def>; rel=\"next\""));
    server.push(Reply::ok(r#"{"items":[]}"#));
    let hooks = server.client(fast()).webhooks().await.unwrap();
    let ids: Vec<_> = hooks.iter().map(|h| h.id.as_str()).collect();
    assert_eq!(ids, ["W1", "W2"]);
    assert_eq!(hooks[0].target_url, "https://bot.example/webhooks/webex");
    assert_eq!(
        hooks[0].secret.as_ref().map(|s| s.expose_secret()),
        Some("s3")
    );
    assert_eq!(hooks[0].status.as_deref(), Some("active"));
    assert_eq!(hooks[1].filter, None);
    let seen = server.seen();
    assert_eq!(seen.len(), 3);
    assert!(seen
        .iter()
        .all(|s| s.method == "GET" && s.path == "/v1/webhooks"));
    assert_eq!(seen[0].query, vec![("max".into(), "100".into())]);
    assert_eq!(
        seen[1].query,
        vec![
            ("max".into(), "100".into()),
            ("cursor".into(), "abc".into())
        ]
    );
    assert_eq!(seen[2].query[1], ("cursor".into(), "def".into()));
    seen.iter().for_each(assert_bearer);
}

#[tokio::test]
async fn webhooks_refuse_a_next_link_to_another_origin() {
    let server = Server::start(vec![]).await;
    // Same port, other host name: the token must not follow it.
    let elsewhere = format!(
        "http://localhost:{}/v1/webhooks?cursor=x",
        server.addr.port()
    );
    server.push(
        Reply::ok(&format!(r#"{{"items":[{WEBHOOK}]}}"#))
            .header("link", &format!("<{elsewhere}>; rel=\"next\"")),
    );
    let err = server.client(fast()).webhooks().await.unwrap_err();
    assert!(matches!(err, WebexError::Decode(_)), "{err:?}");
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn webhooks_pagination_is_bounded() {
    let server = Server::start(vec![]).await;
    let base = server.base();
    server.push(Reply::ok(r#"{"items":[]}"#).header(
        "link",
        &format!("<{base}/webhooks?cursor=again>; rel=\"next\""),
    ));
    let err = server.client(fast()).webhooks().await.unwrap_err();
    assert!(matches!(err, WebexError::Decode(_)), "{err:?}");
    assert!(server.seen().len() <= 100);
}

#[tokio::test]
async fn create_and_update_webhook() {
    let server = Server::start(vec![Reply::ok(WEBHOOK)]).await;
    let client = server.client(fast());
    let created = client
        .create_webhook(&NewWebhook {
            name: "whereis".into(),
            target_url: "https://bot.example/webhooks/webex".into(),
            resource: "messages".into(),
            event: "created".into(),
            filter: None,
            secret: Some("s3".into()),
        })
        .await
        .unwrap();
    assert_eq!(created.id, "W1");
    let updated = client
        .update_webhook(
            "W1",
            &UpdateWebhook {
                name: "whereis".into(),
                target_url: "https://bot.example/webhooks/webex".into(),
                secret: None,
                status: Some("active".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.name, "whereis");
    let seen = server.seen();
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("POST", "/v1/webhooks")
    );
    assert_eq!(
        seen[0].json(),
        serde_json::json!({"name":"whereis","targetUrl":"https://bot.example/webhooks/webex",
            "resource":"messages","event":"created","secret":"s3"})
    );
    assert_eq!(
        (seen[1].method.as_str(), seen[1].path.as_str()),
        ("PUT", "/v1/webhooks/W1")
    );
    assert_eq!(
        seen[1].json(),
        serde_json::json!({"name":"whereis","targetUrl":"https://bot.example/webhooks/webex","status":"active"})
    );
    assert_eq!(seen[1].header("content-type"), "application/json");
    seen.iter().for_each(assert_bearer);
}

#[tokio::test]
async fn trailing_slash_in_api_base_is_fine() {
    let server = Server::start(vec![Reply::ok(PERSON)]).await;
    let client = WebexClient::new(
        &format!("{}/", server.base()),
        Token::new(TOKEN),
        fast(),
        Duration::from_secs(5),
    )
    .unwrap();
    client.me().await.unwrap();
    assert_eq!(server.only_request().path, "/v1/people/me");
}

// ---------------------------------------------------------------------------------------------
// Throttling and retries

#[tokio::test]
async fn retry_after_is_honoured() {
    // Real time: reqwest's own timeout timer makes tokio's paused clock jump while waiting on
    // loopback I/O, so this one test waits its second for real.
    let server = Server::start(vec![
        Reply::json(429, r#"{"message":"Too many requests"}"#).header("retry-after", "1"),
        Reply::ok(r#"{"id":"M1"}"#),
    ])
    .await;
    let started = Instant::now();
    let message = server
        .client(RetryPolicy::default())
        .message("M1")
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(message.id, "M1");
    assert!(elapsed >= Duration::from_secs(1), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    assert_eq!(server.seen().len(), 2);
}

#[tokio::test]
async fn malformed_retry_after_uses_the_fallback() {
    let server = Server::start(vec![
        Reply::json(429, "{}").header("retry-after", "rand(30),add(30)"),
        Reply::json(429, "{}").header("retry-after", "-3"),
        Reply::json(429, "{}"),
        Reply::ok(r#"{"id":"M1"}"#),
    ])
    .await;
    let policy = RetryPolicy {
        fallback_retry_after: Duration::from_millis(150),
        ..RetryPolicy::default()
    };
    let started = Instant::now();
    server.client(policy).message("M1").await.unwrap();
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(450), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    assert_eq!(server.seen().len(), 4);
}

#[tokio::test]
async fn locked_423_is_throttling_too() {
    let server = Server::start(vec![
        Reply::json(423, "{}").header("retry-after", "0"),
        Reply::ok(PERSON),
    ])
    .await;
    server.client(fast()).me().await.unwrap();
    assert_eq!(server.seen().len(), 2);
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff() {
    let server = Server::start(vec![
        Reply::json(503, r#"{"message":"Service Unavailable"}"#),
        Reply::json(502, "<html>bad gateway</html>"),
        Reply::ok(r#"{"id":"M7"}"#),
    ])
    .await;
    let posted = server
        .client(fast())
        .post_message(&NewMessage {
            room_id: Some("R1".into()),
            text: Some("hi".into()),
            ..NewMessage::default()
        })
        .await
        .unwrap();
    assert_eq!(posted.id, "M7");
    let seen = server.seen();
    assert_eq!(seen.len(), 3);
    // Every attempt carries the whole body.
    assert!(seen
        .iter()
        .all(|s| s.json() == serde_json::json!({"roomId":"R1","text":"hi"})));
}

#[tokio::test]
async fn server_errors_stop_after_max_attempts() {
    let server = Server::start(vec![
        Reply::json(500, r#"{"message":"boom"}"#).header("trackingid", "ROUTER_5")
    ])
    .await;
    let policy = RetryPolicy {
        max_attempts: 3,
        ..fast()
    };
    let err = server.client(policy).me().await.unwrap_err();
    assert_eq!(
        err,
        WebexError::Status {
            status: 500,
            message: "boom".into(),
            tracking_id: Some("ROUTER_5".into())
        }
    );
    assert_eq!(server.seen().len(), 3);
    assert_no_token(&err);
}

#[tokio::test]
async fn throttling_stops_after_max_attempts() {
    let server = Server::start(vec![Reply::json(429, "{}").header("retry-after", "0")]).await;
    let policy = RetryPolicy {
        max_attempts: 3,
        ..fast()
    };
    let err = server.client(policy).me().await.unwrap_err();
    assert_eq!(
        err,
        WebexError::RateLimited {
            waited: Duration::ZERO
        }
    );
    assert_eq!(server.seen().len(), 3);
}

#[tokio::test]
async fn max_total_wait_is_respected() {
    let server = Server::start(vec![Reply::json(429, "{}").header("retry-after", "1")]).await;
    let policy = RetryPolicy {
        max_attempts: 10,
        max_total_wait: Duration::from_millis(300),
        ..fast()
    };
    let started = Instant::now();
    let err = server.client(policy).message("M1").await.unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(
        err,
        WebexError::RateLimited {
            waited: Duration::from_millis(300)
        }
    );
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    // The first try, then one more at the end of the budget.
    assert_eq!(server.seen().len(), 2);
    assert_no_token(&err);
}

#[tokio::test]
async fn zero_total_wait_fails_at_the_first_throttle() {
    let server = Server::start(vec![Reply::json(429, "{}").header("retry-after", "5")]).await;
    let policy = RetryPolicy {
        max_total_wait: Duration::ZERO,
        ..fast()
    };
    let started = Instant::now();
    let err = server.client(policy).me().await.unwrap_err();
    assert_eq!(
        err,
        WebexError::RateLimited {
            waited: Duration::ZERO
        }
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(server.seen().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Failures that are not retried

#[tokio::test]
async fn bad_request_fails_at_once_with_message_and_tracking_id() {
    let server = Server::start(vec![Reply::json(
        400,
        r#"{"message":"Unable to post message: text too long","errors":[{"description":"text too long"}],"trackingId":"ROUTER_BODY"}"#,
    )
    .header("trackingid", "ROUTER_ABC-123")])
    .await;
    let err = server
        .client(fast())
        .post_message(&NewMessage {
            room_id: Some("R1".into()),
            text: Some("x".into()),
            ..NewMessage::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        err,
        WebexError::Status {
            status: 400,
            message: "Unable to post message: text too long".into(),
            tracking_id: Some("ROUTER_ABC-123".into()),
        }
    );
    assert_eq!(err.status(), Some(400));
    assert_eq!(err.tracking_id(), Some("ROUTER_ABC-123"));
    let shown = err.to_string();
    assert!(
        shown.contains("400")
            && shown.contains("text too long")
            && shown.contains("ROUTER_ABC-123"),
        "{shown}"
    );
    assert_eq!(server.seen().len(), 1);
    assert_no_token(&err);
}

#[tokio::test]
async fn tracking_id_falls_back_to_the_body() {
    let server = Server::start(vec![Reply::json(
        404,
        r#"{"message":"Not found","trackingId":"ROUTER_BODY"}"#,
    )])
    .await;
    let err = server.client(fast()).message("gone").await.unwrap_err();
    assert_eq!(err.tracking_id(), Some("ROUTER_BODY"));
    assert_eq!(err.status(), Some(404));
}

#[tokio::test]
async fn error_without_json_keeps_the_status() {
    let server = Server::start(vec![Reply::json(403, "<html>forbidden</html>")]).await;
    let err = server.client(fast()).me().await.unwrap_err();
    assert_eq!(
        err,
        WebexError::Status {
            status: 403,
            message: "Forbidden".into(),
            tracking_id: None
        }
    );
}

#[tokio::test]
async fn unauthorized_is_its_own_error() {
    let server = Server::start(vec![Reply::json(
        401,
        r#"{"message":"The request requires a valid access token set in the Authorization request header."}"#,
    )
    .header("trackingid", "ROUTER_401")])
    .await;
    let err = server.client(fast()).me().await.unwrap_err();
    assert_eq!(
        err,
        WebexError::Unauthorized {
            tracking_id: Some("ROUTER_401".into())
        }
    );
    assert_eq!(server.seen().len(), 1);
    assert_no_token(&err);
}

#[tokio::test]
async fn answers_that_are_not_the_expected_json_are_decode_errors() {
    for body in ["not json", "{}", r#"{"id": 5}"#, "[]", ""] {
        let server = Server::start(vec![Reply::ok(body)]).await;
        let err = server.client(fast()).message("M1").await.unwrap_err();
        assert!(matches!(err, WebexError::Decode(_)), "{body:?}: {err:?}");
        assert_eq!(server.seen().len(), 1, "decode errors are not retried");
    }
    let server = Server::start(vec![Reply::ok(r#"{"items":"nope"}"#)]).await;
    let err = server.client(fast()).webhooks().await.unwrap_err();
    assert!(matches!(err, WebexError::Decode(_)), "{err:?}");
}

#[tokio::test]
async fn oversized_answers_are_refused() {
    let huge = format!(r#"{{"id":"M1","text":"{}"}}"#, "a".repeat(5 * 1024 * 1024));
    let server = Server::start(vec![Reply::ok(&huge)]).await;
    let err = server.client(fast()).message("M1").await.unwrap_err();
    assert!(matches!(err, WebexError::Decode(_)), "{err:?}");
    assert_eq!(server.seen().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Transport failures

#[tokio::test]
async fn connection_refused_is_connect_after_retries() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let client = WebexClient::new(
        &format!("http://127.0.0.1:{port}/v1"),
        Token::new(TOKEN),
        RetryPolicy {
            max_attempts: 3,
            ..fast()
        },
        Duration::from_secs(2),
    )
    .unwrap();
    let started = Instant::now();
    let err = client
        .person_by_email("jane.doe@example.com")
        .await
        .unwrap_err();
    assert!(matches!(err, WebexError::Connect(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_no_token(&err);
    // The URL (and the email in its query) stays out of the error.
    assert!(!err.to_string().contains("jane.doe"), "{err}");
}

#[tokio::test]
async fn slow_answers_time_out_and_are_retried() {
    let server = Server::start(vec![Reply::ok(PERSON).delayed(Duration::from_secs(30))]).await;
    let client = WebexClient::new(
        &server.base(),
        Token::new(TOKEN),
        RetryPolicy {
            max_attempts: 2,
            ..fast()
        },
        Duration::from_millis(200),
    )
    .unwrap();
    let started = Instant::now();
    let err = client.me().await.unwrap_err();
    assert_eq!(err, WebexError::Timeout);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(server.seen().len(), 2);
}

#[tokio::test]
async fn a_timeout_then_success_succeeds() {
    let server = Server::start(vec![
        Reply::ok(PERSON).delayed(Duration::from_secs(30)),
        Reply::ok(PERSON),
    ])
    .await;
    let client = WebexClient::new(
        &server.base(),
        Token::new(TOKEN),
        fast(),
        Duration::from_millis(200),
    )
    .unwrap();
    assert_eq!(client.me().await.unwrap().id, "P1");
}

// ---------------------------------------------------------------------------------------------
// The token stays secret

#[tokio::test]
async fn token_never_printed() {
    assert_eq!(format!("{:?}", Token::new(TOKEN)), "<redacted>");
    let server = Server::start(vec![Reply::ok(PERSON)]).await;
    let client = server.client(fast());
    assert!(!format!("{client:?}").contains(TOKEN));
    let err = WebexClient::new(
        "not a url",
        Token::new(TOKEN),
        fast(),
        Duration::from_secs(1),
    )
    .unwrap_err();
    assert_no_token(&err);
    let err = WebexClient::new(
        &server.base(),
        Token::new(format!("{TOKEN}\n")),
        fast(),
        Duration::ZERO,
    )
    .unwrap_err();
    assert_no_token(&err);
}

#[tokio::test]
async fn message_round_trips_through_serde() {
    // The simulator serializes these types; what it writes must read back the same.
    let message: Message = serde_json::from_str(MESSAGE_FIXTURE).unwrap();
    let again: Message = serde_json::from_str(&serde_json::to_string(&message).unwrap()).unwrap();
    assert_eq!(message, again);
}

// ---------------------------------------------------------------------------------------------
// Catch-up listing: rooms and their messages

const ROOM_DIRECT: &str = r#"{"id":"R1","title":"Jane Doe","type":"direct","isLocked":false,
    "lastActivity":"2026-12-01T10:05:00.000Z","created":"2026-01-01T00:00:00.000Z"}"#;
const ROOM_GROUP: &str = r#"{"id":"R2","title":"Facilities","type":"group",
    "lastActivity":"2026-12-01T09:00:00.000Z","created":"not a date"}"#;

#[tokio::test]
async fn rooms_most_recent_first_across_pages_up_to_the_cap() {
    let server = Server::start(vec![]).await;
    let next = |cursor: &str| format!(r#"<{}/rooms?cursor={cursor}>; rel="next""#, server.base());
    server.push(
        Reply::ok(&format!(r#"{{"items":[{ROOM_DIRECT},{{"no":"id"}}]}}"#))
            .header("link", &next("p2")),
    );
    server.push(
        Reply::ok(&format!(
            r#"{{"items":[{ROOM_GROUP},{{"id":"R3","type":"team"}}]}}"#
        ))
        .header("link", &next("p3")),
    );
    server.push(Reply::ok(r#"{"items":[{"id":"R4"}]}"#));
    let rooms = server.client(fast()).rooms(3).await.unwrap();
    let ids: Vec<_> = rooms.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        ["R1", "R2", "R3"],
        "the malformed item is skipped, the cap holds"
    );
    assert_eq!(rooms[0].room_type, RoomType::Direct);
    assert_eq!(rooms[0].title.as_deref(), Some("Jane Doe"));
    assert_eq!(
        rooms[0].last_activity.map(|t| t.to_rfc3339()),
        Some("2026-12-01T10:05:00+00:00".to_owned())
    );
    assert!(rooms[0].created.is_some());
    assert_eq!(rooms[1].room_type, RoomType::Group);
    assert_eq!(
        rooms[1].created, None,
        "a malformed timestamp reads as unknown"
    );
    assert_eq!(rooms[2].room_type, RoomType::Unknown);
    let seen = server.seen();
    assert_eq!(seen.len(), 2, "the third page is not needed");
    assert_eq!(seen[0].path, "/v1/rooms");
    assert_eq!(
        seen[0].query,
        vec![
            ("sortBy".into(), "lastactivity".into()),
            ("max".into(), "3".into())
        ]
    );
    assert_eq!(seen[1].query, vec![("cursor".into(), "p2".into())]);
    seen.iter().for_each(assert_bearer);
    assert!(server.client(fast()).rooms(0).await.unwrap().is_empty());
    assert_eq!(server.seen().len(), 2, "a cap of 0 asks nothing");
}

#[tokio::test]
async fn rooms_refuse_a_next_link_to_another_origin() {
    let server = Server::start(vec![Reply::ok(&format!(r#"{{"items":[{ROOM_DIRECT}]}}"#))
        .header(
            "link",
            "<https://evil.example/v1/rooms?cursor=x>; rel=\"next\"",
        )])
    .await;
    let err = server.client(fast()).rooms(500).await.unwrap_err();
    assert!(matches!(err, WebexError::Decode(_)), "{err:?}");
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn room_messages_ask_for_mentions_in_group_rooms() {
    let messages = format!(
        r#"{{"items":[{MESSAGE_FIXTURE},{{"id":"M2","roomId":"R2","created":"2026-12-01T08:00:00.000Z"}}]}}"#
    );
    let server = Server::start(vec![Reply::ok(&messages)]).await;
    let client = server.client(fast());
    let group: whereis_webex::Room = serde_json::from_str(ROOM_GROUP).unwrap();
    let got = client.recent_messages(&group, 50).await.unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].id, "M2");
    assert!(got[1].created_at().is_some());
    let direct: whereis_webex::Room = serde_json::from_str(ROOM_DIRECT).unwrap();
    client.recent_messages(&direct, 5000).await.unwrap();
    let seen = server.seen();
    assert_eq!(seen[0].path, "/v1/messages");
    assert_eq!(
        seen[0].query,
        vec![
            ("roomId".into(), "R2".into()),
            ("mentionedPeople".into(), "me".into()),
            ("max".into(), "50".into())
        ]
    );
    assert_eq!(
        seen[1].query,
        vec![
            ("roomId".into(), "R1".into()),
            ("max".into(), "1000".into())
        ],
        "direct rooms: every message, max capped"
    );
    seen.iter().for_each(assert_bearer);
}

#[tokio::test]
async fn group_room_without_mentioned_people_is_a_403_error() {
    let server = Server::start(vec![Reply::json(
        403,
        r#"{"message":"Failed to get activities.","errors":[{"description":"Failed to get activities."}],"trackingId":"ROUTER_1"}"#,
    )])
    .await;
    let err = server
        .client(fast())
        .room_messages("R2", false, 50)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(403));
    assert_eq!(err.tracking_id(), Some("ROUTER_1"));
    assert!(
        err.to_string().contains("Failed to get activities"),
        "{err}"
    );
    assert_eq!(server.seen().len(), 1, "a 403 is not retried");
    for id in ["", "..", "."] {
        assert!(matches!(
            server.client(fast()).room_messages(id, true, 5).await,
            Err(WebexError::Invalid(_))
        ));
    }
    assert!(server
        .client(fast())
        .room_messages("R1", true, 0)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(server.seen().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// The caller's HTTP client

#[tokio::test]
async fn with_http_routes_through_the_callers_proxy() {
    // The stand plays an HTTP proxy: a host that does not resolve is only reachable through it.
    let proxy = Server::start(vec![Reply::ok(PERSON)]).await;
    let builder = reqwest::Client::builder()
        .proxy(reqwest::Proxy::http(format!("http://{}", proxy.addr)).unwrap());
    let client = WebexClient::with_http(
        "http://webex.invalid/v1",
        Token::new(TOKEN),
        fast(),
        Duration::from_secs(5),
        builder,
    )
    .unwrap();
    assert_eq!(client.me().await.unwrap().id, "P1");
    let seen = proxy.only_request();
    assert_eq!(seen.path, "/v1/people/me");
    assert_eq!(seen.header("host"), "webex.invalid");
    assert_bearer(&seen);
    assert!(seen.header("user-agent").starts_with("whereis-webex/"));
}
