//! The Webex API double over real HTTP on 127.0.0.1: auth, people, messages (JSON and multipart), limits,
//! injected faults, webhooks, signed deliveries and waiting for posts.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use reqwest::multipart::{Form, Part};
use serde_json::{json, Value};
use sha1::Sha1;
use whereis_sim::{MessagesFault, PostedFile, PostedMessage, SimError, WebexDouble};

const TOKEN: &str = "bot-token-123";
const BOT_EMAIL: &str = "whereis@webex.bot";
const BOT_NAME: &str = "whereis";
const JANE: &str = "jane.doe@example.com";

async fn double() -> WebexDouble {
    WebexDouble::start(TOKEN, BOT_EMAIL, BOT_NAME)
        .await
        .expect("double starts")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("reqwest client")
}

fn url(wx: &WebexDouble, path: &str) -> String {
    format!("{}{}", wx.base_url(), path)
}

async fn get(wx: &WebexDouble, path: &str) -> reqwest::Response {
    client()
        .get(url(wx, path))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("request sent")
}

async fn post_json(wx: &WebexDouble, path: &str, body: &Value) -> reqwest::Response {
    client()
        .post(url(wx, path))
        .bearer_auth(TOKEN)
        .json(body)
        .send()
        .await
        .expect("request sent")
}

async fn post_form(wx: &WebexDouble, form: Form) -> reqwest::Response {
    client()
        .post(url(wx, "/messages"))
        .bearer_auth(TOKEN)
        .multipart(form)
        .send()
        .await
        .expect("request sent")
}

async fn json_of(resp: reqwest::Response) -> Value {
    resp.json().await.expect("JSON body")
}

/// Asserts a Webex error answer: status, `trackingid` header equal to the body's `trackingId`, message and
/// errors[0].description present.
async fn assert_error(resp: reqwest::Response, status: u16) -> Value {
    assert_eq!(resp.status(), status);
    let tracking = resp
        .headers()
        .get("trackingid")
        .expect("trackingid header")
        .to_str()
        .expect("ascii")
        .to_owned();
    let body = json_of(resp).await;
    assert_eq!(body["trackingId"], tracking.as_str());
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert_eq!(body["errors"][0]["description"], body["message"]);
    body
}

fn png_bytes() -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    // binary content with CRLFs and dashes, as a real PNG may have
    bytes.extend((0..=255u8).cycle().take(70_000));
    bytes.extend_from_slice(b"\r\n--\r\n--boundary\r\n");
    bytes
}

fn hmac_sha1_hex(body: &[u8], secret: &str) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn every_endpoint_requires_the_bot_token() {
    let wx = double().await;
    for path in ["/people/me", "/people?email=a@b.c", "/webhooks", "/nope"] {
        let resp = client().get(url(&wx, path)).send().await.expect("sent");
        assert_error(resp, 401).await;
        let resp = client()
            .get(url(&wx, path))
            .bearer_auth("wrong")
            .send()
            .await
            .expect("sent");
        assert_error(resp, 401).await;
        let resp = client()
            .get(url(&wx, path))
            .basic_auth(TOKEN, Some(""))
            .send()
            .await
            .expect("sent");
        assert_error(resp, 401).await;
    }
    let resp = client()
        .post(url(&wx, "/messages"))
        .json(&json!({"toPersonEmail": JANE, "text": "hi"}))
        .send()
        .await
        .expect("sent");
    assert_error(resp, 401).await;
    assert!(wx.posted().is_empty());
    assert_eq!(wx.request_count("GET", "/v1/"), 12);
    assert_eq!(wx.request_count("POST", "/v1/messages"), 1);
    // unknown paths with the token: 404 in Webex's shape
    assert_error(get(&wx, "/teams").await, 404).await;
}

#[tokio::test]
async fn base_url_is_loopback_v1() {
    let wx = double().await;
    assert_eq!(
        wx.base_url(),
        format!("http://127.0.0.1:{}/v1", wx.addr().port())
    );
    let resp = get(&wx, "/people/me").await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("trackingid"));
}

#[tokio::test]
async fn people_me_is_the_bot() {
    let wx = double().await;
    let me = json_of(get(&wx, "/people/me").await).await;
    let bot = wx.bot();
    assert_eq!(me["id"], bot.id.as_str());
    assert_eq!(me["emails"], json!([BOT_EMAIL]));
    assert_eq!(me["displayName"], BOT_NAME);
    assert_eq!(me["nickName"], BOT_NAME);
    assert_eq!(me["type"], "bot");
    assert!(me["orgId"].as_str().is_some_and(|o| !o.is_empty()));
    assert_eq!(bot.email, BOT_EMAIL);
    assert_eq!(bot.display_name, BOT_NAME);
    // ids look like Webex ids: base64 of ciscospark://us/PEOPLE/...
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&bot.id)
        .expect("base64 id");
    assert!(String::from_utf8(raw)
        .expect("utf-8")
        .starts_with("ciscospark://us/PEOPLE/"));
}

#[tokio::test]
async fn people_by_email_and_by_display_name_prefix() {
    let wx = double().await;
    let jane = wx.add_person(JANE, "Jane Doe");
    let again = wx.add_person("Jane.Doe@Example.com", "Someone Else");
    assert_eq!(again.id, jane.id, "idempotent by email");
    assert_eq!(again.display_name, "Jane Doe");
    let john = wx.add_person("john.smith@example.com", "John Smith");
    wx.add_person("janet.roe@example.com", "Janet Roe");

    let found = json_of(get(&wx, "/people?email=jane.doe%40example.com").await).await;
    let items = found["items"].as_array().expect("items");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], jane.id.as_str());
    assert_eq!(items[0]["emails"], json!([JANE]));
    assert_eq!(items[0]["displayName"], "Jane Doe");
    assert_eq!(items[0]["firstName"], "Jane");
    assert_eq!(items[0]["lastName"], "Doe");
    assert_eq!(items[0]["type"], "person");

    let upper = json_of(get(&wx, "/people?email=JANE.DOE%40EXAMPLE.COM").await).await;
    assert_eq!(upper["items"][0]["id"], jane.id.as_str());
    let none = json_of(get(&wx, "/people?email=nobody%40example.com").await).await;
    assert_eq!(none, json!({"items": []}));

    let names = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|p| p["displayName"].as_str().expect("name").to_owned())
            .collect()
    };
    let jan = json_of(get(&wx, "/people?displayName=jan&max=10").await).await;
    assert_eq!(names(&jan), ["Jane Doe", "Janet Roe"]);
    let one = json_of(get(&wx, "/people?displayName=JAN&max=1").await).await;
    assert_eq!(names(&one), ["Jane Doe"]);
    let full = json_of(get(&wx, "/people?displayName=John%20Smith").await).await;
    assert_eq!(full["items"][0]["id"], john.id.as_str());
    let not_infix = json_of(get(&wx, "/people?displayName=Doe").await).await;
    assert_eq!(not_infix, json!({"items": []}));

    assert_error(get(&wx, "/people").await, 400).await;
    assert_error(get(&wx, "/people?max=5").await, 400).await;
    assert_error(get(&wx, "/people?displayName=j&max=0").await, 400).await;
    assert_error(get(&wx, "/people?displayName=j&max=lots").await, 400).await;
}

#[tokio::test]
async fn user_says_in_direct_and_group_rooms() {
    let wx = double().await;
    let jane = wx.add_person(JANE, "Jane Doe");
    let bot = wx.bot();
    let direct = wx.direct_room(JANE);
    assert_eq!(wx.direct_room("JANE.doe@example.com"), direct, "once");
    let group = wx.group_room("Office");
    assert_eq!(wx.group_room("Office"), group, "once per title");
    assert_ne!(wx.group_room("Other"), group);

    let id = wx.user_says(&direct, JANE, "jdoe");
    let m = json_of(get(&wx, &format!("/messages/{id}")).await).await;
    assert_eq!(m["id"], id.as_str());
    assert_eq!(m["roomId"], direct.as_str());
    assert_eq!(m["roomType"], "direct");
    assert_eq!(m["text"], "jdoe");
    assert_eq!(m["personId"], jane.id.as_str());
    assert_eq!(m["personEmail"], JANE);
    assert!(m.get("html").is_none());
    assert!(m.get("mentionedPeople").is_none());
    assert!(m["created"].as_str().is_some_and(|c| c.ends_with('Z')));

    let id = wx.user_says(&group, JANE, "where is <Bob> & co");
    let m = json_of(get(&wx, &format!("/messages/{id}")).await).await;
    assert_eq!(m["roomId"], group.as_str());
    assert_eq!(m["roomType"], "group");
    assert_eq!(m["text"], "whereis where is <Bob> & co");
    assert_eq!(
        m["html"],
        format!(
            "<p><spark-mention data-object-type=\"person\" data-object-id=\"{}\">whereis</spark-mention> where is &lt;Bob&gt; &amp; co</p>",
            bot.id
        )
        .as_str()
    );
    assert_eq!(m["mentionedPeople"], json!([bot.id]));
    assert_eq!(m["personEmail"], JANE);

    // someone not added yet is added on the fly
    let id = wx.user_says(&group, "new.person@example.com", "help");
    let m = json_of(get(&wx, &format!("/messages/{id}")).await).await;
    assert_eq!(m["personEmail"], "new.person@example.com");
    let found = json_of(get(&wx, "/people?email=new.person%40example.com").await).await;
    assert_eq!(found["items"][0]["id"], m["personId"]);
}

#[tokio::test]
async fn get_message_unknown_is_404_and_bot_posts_are_retrievable() {
    let wx = double().await;
    assert_error(
        get(&wx, "/messages/Y2lzY29zcGFyazovL3VzL01FU1NBR0UveA").await,
        404,
    )
    .await;
    let room = wx.direct_room(JANE);
    let created = json_of(
        post_json(
            &wx,
            "/messages",
            &json!({"roomId": room, "markdown": "**found**"}),
        )
        .await,
    )
    .await;
    let id = created["id"].as_str().expect("id");
    let m = json_of(get(&wx, &format!("/messages/{id}")).await).await;
    assert_eq!(m, created);
    assert_eq!(m["personEmail"], BOT_EMAIL);
    assert_eq!(m["personId"], wx.bot().id.as_str());
    assert_eq!(m["markdown"], "**found**");
    assert_eq!(m["roomType"], "direct");
}

#[tokio::test]
async fn post_json_is_recorded_exactly() {
    let wx = double().await;
    let group = wx.group_room("Office");
    let asked = wx.user_says(&group, JANE, "jdoe");

    let resp = post_json(
        &wx,
        "/messages",
        &json!({"roomId": group, "markdown": "Looking for **jdoe**…", "text": "Looking for jdoe…", "parentId": asked}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("trackingid"));
    let first = json_of(resp).await;
    assert_eq!(first["roomId"], group.as_str());
    assert_eq!(first["roomType"], "group");
    assert_eq!(first["parentId"], asked.as_str());
    assert_eq!(first["personEmail"], BOT_EMAIL);

    let resp = post_json(
        &wx,
        "/messages",
        &json!({"toPersonEmail": "john@example.com", "text": "hello", "parentId": null}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let second = json_of(resp).await;
    let direct = wx.direct_room("john@example.com");
    assert_eq!(second["roomId"], direct.as_str());
    assert_eq!(second["roomType"], "direct");

    assert_eq!(
        wx.posted(),
        [
            PostedMessage {
                id: first["id"].as_str().expect("id").to_owned(),
                room_id: group.clone(),
                parent_id: Some(asked.clone()),
                text: Some("Looking for jdoe…".into()),
                markdown: Some("Looking for **jdoe**…".into()),
                file: None,
                to_person_email: None,
            },
            PostedMessage {
                id: second["id"].as_str().expect("id").to_owned(),
                room_id: direct,
                parent_id: None,
                text: Some("hello".into()),
                markdown: None,
                file: None,
                to_person_email: Some("john@example.com".into()),
            },
        ]
    );
    assert_eq!(wx.request_count("POST", "/v1/messages"), 2);
    assert_eq!(wx.request_count("GET", "/v1/messages"), 0);
}

#[tokio::test]
async fn post_multipart_records_the_file_bytes() {
    let wx = double().await;
    let room = wx.direct_room(JANE);
    let png = png_bytes();
    let form = Form::new()
        .text("roomId", room.clone())
        .text("text", "Jane Doe — HQ Campus > Building 5 > Level 3")
        .part(
            "files",
            Part::bytes(png.clone())
                .file_name("jdoe-1.png")
                .mime_str("image/png")
                .expect("mime"),
        );
    let resp = post_form(&wx, form).await;
    assert_eq!(resp.status(), 200);
    let created = json_of(resp).await;
    assert_eq!(created["files"].as_array().map(Vec::len), Some(1));

    let posted = wx.posted();
    assert_eq!(posted.len(), 1);
    assert_eq!(
        posted[0],
        PostedMessage {
            id: created["id"].as_str().expect("id").to_owned(),
            room_id: room.clone(),
            parent_id: None,
            text: Some("Jane Doe — HQ Campus > Building 5 > Level 3".into()),
            markdown: None,
            file: Some(PostedFile {
                file_name: "jdoe-1.png".into(),
                content_type: "image/png".into(),
                bytes: png.clone(),
            }),
            to_person_email: None,
        }
    );

    // markdown + parentId + toPersonEmail in multipart, file without a content type
    let asked = wx.user_says(&room, JANE, "jdoe");
    let form = Form::new()
        .text("toPersonEmail", JANE)
        .text("markdown", "**map**")
        .text("parentId", asked.clone())
        .part("files", Part::bytes(vec![1, 2, 3]).file_name("x.bin"));
    let resp = post_form(&wx, form).await;
    assert_eq!(resp.status(), 200);
    let posted = wx.posted();
    assert_eq!(posted[1].room_id, room);
    assert_eq!(posted[1].parent_id.as_deref(), Some(asked.as_str()));
    assert_eq!(posted[1].markdown.as_deref(), Some("**map**"));
    assert_eq!(posted[1].to_person_email.as_deref(), Some(JANE));
    let file = posted[1].file.as_ref().expect("file");
    assert_eq!(file.bytes, [1, 2, 3]);
    assert_eq!(file.file_name, "x.bin");
    assert_eq!(file.content_type, "application/octet-stream");

    // a file alone is a message too
    let form = Form::new()
        .text("roomId", room.clone())
        .part("files", Part::bytes(png.clone()).file_name("only.png"));
    assert_eq!(post_form(&wx, form).await.status(), 200);
    assert_eq!(wx.posted().len(), 3);
}

#[tokio::test]
async fn text_longer_than_7439_bytes_is_400() {
    let wx = double().await;
    let room = wx.direct_room(JANE);
    let at_limit = "x".repeat(7439);
    let resp = post_json(&wx, "/messages", &json!({"roomId": room, "text": at_limit})).await;
    assert_eq!(resp.status(), 200);
    let too_long = "x".repeat(7440);
    let resp = post_json(&wx, "/messages", &json!({"roomId": room, "text": too_long})).await;
    assert_error(resp, 400).await;
    let resp = post_json(
        &wx,
        "/messages",
        &json!({"roomId": room, "markdown": too_long}),
    )
    .await;
    assert_error(resp, 400).await;
    // bytes, not characters: 2480 × "é€" is 2480 × 5 = 12,400 bytes (4,960 chars)
    let wide = "é€".repeat(2480);
    let resp = post_json(&wx, "/messages", &json!({"roomId": room, "text": wide})).await;
    assert_error(resp, 400).await;
    let form = Form::new()
        .text("roomId", room.clone())
        .text("text", too_long);
    assert_error(post_form(&wx, form).await, 400).await;
    assert_eq!(wx.posted().len(), 1);
}

#[tokio::test]
async fn two_files_are_400() {
    let wx = double().await;
    let room = wx.direct_room(JANE);
    let form = Form::new()
        .text("roomId", room)
        .text("text", "two maps")
        .part("files", Part::bytes(vec![1]).file_name("a.png"))
        .part("files", Part::bytes(vec![2]).file_name("b.png"));
    let body = assert_error(post_form(&wx, form).await, 400).await;
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("one file")),
        "{body}"
    );
    assert!(wx.posted().is_empty());
}

#[tokio::test]
async fn invalid_posts_are_refused_and_not_recorded() {
    let wx = double().await;
    let room = wx.direct_room(JANE);
    let other = wx.group_room("Other");
    let elsewhere = wx.user_says(&other, JANE, "hi");
    for (body, status) in [
        (json!({"text": "no room"}), 400),
        (json!({"roomId": room}), 400),
        (json!({"roomId": room, "text": ""}), 400),
        (
            json!({"roomId": "Y2lzY29zcGFyazovL3VzL1JPT00vbm9uZQ", "text": "x"}),
            404,
        ),
        (
            json!({"roomId": room, "toPersonEmail": JANE, "text": "x"}),
            400,
        ),
        (json!({"toPersonEmail": "not-an-email", "text": "x"}), 400),
        (
            json!({"roomId": room, "text": "x", "parentId": elsewhere}),
            400,
        ),
        (
            json!({"roomId": room, "text": "x", "parentId": "nope"}),
            400,
        ),
        (json!({"roomId": room, "text": 5}), 400),
        (
            json!({"roomId": room, "text": "x", "files": ["https://example.com/a.png"]}),
            400,
        ),
        (
            json!({"roomId": room, "text": "x", "toPersonId": "abc"}),
            400,
        ),
        (json!(["roomId", room]), 400),
    ] {
        let resp = post_json(&wx, "/messages", &body).await;
        assert_error(resp, status).await;
    }
    // not JSON, not a known content type, broken multipart
    let resp = client()
        .post(url(&wx, "/messages"))
        .bearer_auth(TOKEN)
        .header("Content-Type", "application/json")
        .body("{\"roomId\": ")
        .send()
        .await
        .expect("sent");
    assert_error(resp, 400).await;
    let resp = client()
        .post(url(&wx, "/messages"))
        .bearer_auth(TOKEN)
        .header("Content-Type", "text/plain")
        .body("hello")
        .send()
        .await
        .expect("sent");
    assert_error(resp, 415).await;
    for (content_type, body) in [
        ("multipart/form-data", "--x\r\n"),
        ("multipart/form-data; boundary=x", "garbage"),
        (
            "multipart/form-data; boundary=x",
            "--x\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\nunterminated",
        ),
        (
            "multipart/form-data; boundary=x",
            "--x\r\nContent-Disposition: form-data; name=\"files\"\r\n\r\nno filename\r\n--x--\r\n",
        ),
    ] {
        let resp = client()
            .post(url(&wx, "/messages"))
            .bearer_auth(TOKEN)
            .header("Content-Type", content_type)
            .body(body)
            .send()
            .await
            .expect("sent");
        assert_error(resp, 400).await;
    }
    assert!(wx.posted().is_empty());
    // the double is still fine
    let resp = post_json(&wx, "/messages", &json!({"roomId": room, "text": "ok"})).await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn fail_next_posts_429_with_retry_after_then_success() {
    let wx = double().await;
    let room = wx.direct_room(JANE);
    wx.fail_next_posts(
        MessagesFault::TooManyRequests {
            retry_after_seconds: 7,
        },
        2,
    );
    // an unauthorized request does not use up the fault
    let resp = client()
        .post(url(&wx, "/messages"))
        .json(&json!({"roomId": room, "text": "x"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 401);
    for _ in 0..2 {
        let resp = post_json(&wx, "/messages", &json!({"roomId": room, "text": "hi"})).await;
        assert_eq!(
            resp.headers()
                .get("retry-after")
                .map(|v| v.to_str().expect("ascii")),
            Some("7")
        );
        assert_error(resp, 429).await;
    }
    // multipart posts are faulted the same way
    wx.fail_next_posts(
        MessagesFault::TooManyRequests {
            retry_after_seconds: 0,
        },
        1,
    );
    let form = Form::new()
        .text("roomId", room.clone())
        .part("files", Part::bytes(png_bytes()).file_name("m.png"));
    let resp = post_form(&wx, form).await;
    assert_eq!(resp.headers()["retry-after"], "0");
    assert_error(resp, 429).await;
    assert!(wx.posted().is_empty(), "faulted posts record nothing");

    let resp = post_json(&wx, "/messages", &json!({"roomId": room, "text": "hi"})).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("retry-after").is_none());
    assert_eq!(wx.posted().len(), 1);
    assert_eq!(wx.request_count("POST", "/v1/messages"), 5);
}

#[tokio::test]
async fn malformed_retry_after_value_is_exact() {
    let wx = double().await;
    let room = wx.direct_room(JANE);
    wx.fail_next_posts(MessagesFault::MalformedRetryAfter, 1);
    let resp = post_json(&wx, "/messages", &json!({"roomId": room, "text": "hi"})).await;
    assert_eq!(resp.headers()["retry-after"], "rand(30),add(30)");
    assert_error(resp, 429).await;
    let resp = post_json(&wx, "/messages", &json!({"roomId": room, "text": "hi"})).await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn server_errors_then_success_and_zero_count_clears() {
    let wx = double().await;
    let room = wx.direct_room(JANE);
    wx.fail_next_posts(MessagesFault::ServerError(503), 1);
    let resp = post_json(&wx, "/messages", &json!({"roomId": room, "text": "hi"})).await;
    assert!(resp.headers().get("retry-after").is_none());
    assert_error(resp, 503).await;
    wx.fail_next_posts(MessagesFault::ServerError(99), 1);
    let resp = post_json(&wx, "/messages", &json!({"roomId": room, "text": "hi"})).await;
    assert_error(resp, 500).await;
    wx.fail_next_posts(MessagesFault::ServerError(502), 3);
    wx.fail_next_posts(MessagesFault::ServerError(502), 0);
    let resp = post_json(&wx, "/messages", &json!({"roomId": room, "text": "hi"})).await;
    assert_eq!(resp.status(), 200);
    // only POST /messages is faulted
    wx.fail_next_posts(MessagesFault::ServerError(500), 1);
    assert_eq!(get(&wx, "/people/me").await.status(), 200);
    assert_eq!(wx.posted().len(), 1);
}

#[tokio::test]
async fn webhooks_create_list_update_delete() {
    let wx = double().await;
    assert_eq!(
        json_of(get(&wx, "/webhooks").await).await,
        json!({"items": []})
    );
    let resp = post_json(
        &wx,
        "/webhooks",
        &json!({"name": "whereis", "targetUrl": "https://bot.example.com/webhooks/webex",
                "resource": "messages", "event": "created", "secret": "s3cret"}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let hook = json_of(resp).await;
    let id = hook["id"].as_str().expect("id").to_owned();
    assert_eq!(hook["name"], "whereis");
    assert_eq!(hook["targetUrl"], "https://bot.example.com/webhooks/webex");
    assert_eq!(hook["resource"], "messages");
    assert_eq!(hook["event"], "created");
    assert_eq!(hook["secret"], "s3cret");
    assert_eq!(hook["status"], "active");
    assert!(hook["created"].as_str().is_some_and(|c| c.ends_with('Z')));
    assert!(hook.get("filter").is_none());

    let second = json_of(
        post_json(
            &wx,
            "/webhooks",
            &json!({"name": "mentions", "targetUrl": "http://127.0.0.1:1/x",
                    "resource": "messages", "event": "created", "filter": "mentionedPeople=me"}),
        )
        .await,
    )
    .await;
    assert_eq!(second["filter"], "mentionedPeople=me");
    assert!(second.get("secret").is_none());

    let list = json_of(get(&wx, "/webhooks").await).await;
    assert_eq!(list["items"], json!([hook, second]));
    assert_eq!(wx.webhooks(), [hook.clone(), second.clone()]);
    assert_eq!(
        json_of(get(&wx, &format!("/webhooks/{id}")).await).await,
        hook
    );

    let resp = client()
        .put(url(&wx, &format!("/webhooks/{id}")))
        .bearer_auth(TOKEN)
        .json(
            &json!({"name": "whereis-2", "targetUrl": "https://new.example.com/hook",
                      "secret": "new", "status": "inactive"}),
        )
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 200);
    let updated = json_of(resp).await;
    assert_eq!(updated["id"], id.as_str());
    assert_eq!(updated["name"], "whereis-2");
    assert_eq!(updated["targetUrl"], "https://new.example.com/hook");
    assert_eq!(updated["secret"], "new");
    assert_eq!(updated["status"], "inactive");
    assert_eq!(updated["resource"], "messages");
    assert_eq!(updated["created"], hook["created"]);
    assert_eq!(wx.webhooks()[0], updated);

    // bad bodies and unknown ids
    for body in [
        json!({"name": "x", "targetUrl": "https://a/b", "resource": "messages"}),
        json!({"name": "x", "targetUrl": "not a url", "resource": "messages", "event": "created"}),
        json!({"name": 5, "targetUrl": "https://a/b", "resource": "messages", "event": "created"}),
    ] {
        assert_error(post_json(&wx, "/webhooks", &body).await, 400).await;
    }
    let put = |path: String, body: Value| {
        client()
            .put(url(&wx, &path))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
    };
    let resp = put(
        format!("/webhooks/{id}"),
        json!({"name": "x", "targetUrl": "https://a/b", "status": "paused"}),
    )
    .await
    .expect("sent");
    assert_error(resp, 400).await;
    let resp = put(format!("/webhooks/{id}"), json!({"name": "x"}))
        .await
        .expect("sent");
    assert_error(resp, 400).await;
    let resp = put(
        "/webhooks/unknown".into(),
        json!({"name": "x", "targetUrl": "https://a/b"}),
    )
    .await
    .expect("sent");
    assert_error(resp, 404).await;
    assert_error(get(&wx, "/webhooks/unknown").await, 404).await;

    let delete = |path: String| client().delete(url(&wx, &path)).bearer_auth(TOKEN).send();
    let resp = delete(format!("/webhooks/{id}")).await.expect("sent");
    assert_eq!(resp.status(), 204);
    assert!(resp.headers().contains_key("trackingid"));
    assert!(resp.bytes().await.expect("body").is_empty());
    assert_error(delete(format!("/webhooks/{id}")).await.expect("sent"), 404).await;
    assert_eq!(wx.webhooks(), [second]);
    assert_eq!(wx.request_count("DELETE", "/v1/webhooks/"), 2);
}

/// What the test's webhook target received.
#[derive(Default)]
struct Received {
    bodies: Vec<(Vec<u8>, Option<String>, Option<String>)>,
}

async fn start_target(status: StatusCode) -> (String, Arc<Mutex<Received>>) {
    let received = Arc::new(Mutex::new(Received::default()));
    let store = received.clone();
    let app = axum::Router::new().route(
        "/webhooks/webex",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let store = store.clone();
            async move {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                };
                store.lock().expect("lock").bodies.push((
                    body.to_vec(),
                    header("x-spark-signature"),
                    header("content-type"),
                ));
                status
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/webhooks/webex"), received)
}

#[tokio::test]
async fn deliver_posts_the_event_with_an_hmac_sha1_signature() {
    let wx = double().await;
    let (target, received) = start_target(StatusCode::OK).await;
    let hook = json_of(
        post_json(
            &wx,
            "/webhooks",
            &json!({"name": "whereis", "targetUrl": target, "resource": "messages",
                    "event": "created", "secret": "s3cret"}),
        )
        .await,
    )
    .await;
    let group = wx.group_room("Office");
    let jane = wx.add_person(JANE, "Jane Doe");
    let message = wx.user_says(&group, JANE, "jdoe");
    let body = wx.event_body(&message);

    let event: Value = serde_json::from_slice(&body).expect("event is JSON");
    assert_eq!(event["id"], hook["id"]);
    assert_eq!(event["name"], "whereis");
    assert_eq!(event["targetUrl"], target.as_str());
    assert_eq!(event["resource"], "messages");
    assert_eq!(event["event"], "created");
    assert_eq!(event["actorId"], jane.id.as_str());
    assert_eq!(event["status"], "active");
    for key in ["orgId", "createdBy", "appId", "ownedBy", "created"] {
        assert!(event[key].is_string(), "{key} in {event}");
    }
    assert_eq!(
        event["data"],
        json!({
            "id": message,
            "roomId": group,
            "roomType": "group",
            "personId": jane.id,
            "personEmail": JANE,
            "mentionedPeople": [wx.bot().id],
            "created": event["data"]["created"],
        })
    );

    let status = wx
        .deliver(&target, &body, Some("s3cret"))
        .await
        .expect("delivered");
    assert_eq!(status, 200);
    let status = wx.deliver(&target, &body, None).await.expect("delivered");
    assert_eq!(status, 200);
    {
        let got = received.lock().expect("lock");
        assert_eq!(got.bodies.len(), 2);
        let (bytes, signature, content_type) = &got.bodies[0];
        assert_eq!(bytes, &body);
        assert_eq!(
            signature.as_deref(),
            Some(hmac_sha1_hex(&body, "s3cret").as_str())
        );
        assert!(signature.as_deref().is_some_and(
            |s| s.len() == 40 && s.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f'))
        ));
        assert_eq!(content_type.as_deref(), Some("application/json"));
        assert_eq!(got.bodies[1].0, body);
        assert_eq!(got.bodies[1].1, None, "no secret, no signature");
    }

    // a direct message: no mentions; an unknown message: just its id
    let direct = wx.direct_room(JANE);
    let message = wx.user_says(&direct, JANE, "jdoe");
    let event: Value = serde_json::from_slice(&wx.event_body(&message)).expect("JSON");
    assert_eq!(event["data"]["roomType"], "direct");
    assert!(event["data"].get("mentionedPeople").is_none());
    let event: Value = serde_json::from_slice(&wx.event_body("gone")).expect("JSON");
    assert_eq!(event["data"]["id"], "gone");

    // the target's status comes back as is; no listener is an error
    let (refusing, _) = start_target(StatusCode::UNAUTHORIZED).await;
    assert_eq!(
        wx.deliver(&refusing, &body, Some("wrong"))
            .await
            .expect("sent"),
        401
    );
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let err = wx
        .deliver(&format!("http://{closed}/webhooks/webex"), &body, None)
        .await
        .expect_err("nobody listens");
    assert!(matches!(err, SimError::Deliver { .. }), "{err}");
}

#[tokio::test]
async fn event_body_without_webhooks_is_still_complete() {
    let wx = double().await;
    let room = wx.direct_room(JANE);
    let message = wx.user_says(&room, JANE, "optout");
    let event: Value = serde_json::from_slice(&wx.event_body(&message)).expect("JSON");
    for key in [
        "id",
        "name",
        "targetUrl",
        "orgId",
        "createdBy",
        "actorId",
        "created",
    ] {
        assert!(event[key].is_string(), "{key} in {event}");
    }
    assert_eq!(event["data"]["id"], message.as_str());
    assert_eq!(event["data"]["personEmail"], JANE);
}

#[tokio::test]
async fn wait_for_posts_returns_as_soon_as_posts_arrive() {
    let wx = Arc::new(double().await);
    let room = wx.direct_room(JANE);
    assert!(wx
        .wait_for_posts(0, Duration::from_secs(30))
        .await
        .is_empty());

    let poster = {
        let base = wx.base_url();
        let room = room.clone();
        tokio::spawn(async move {
            for text in ["one", "two"] {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let resp = client()
                    .post(format!("{base}/messages"))
                    .bearer_auth(TOKEN)
                    .json(&json!({"roomId": room, "text": text}))
                    .send()
                    .await
                    .expect("sent");
                assert_eq!(resp.status(), 200);
            }
        })
    };
    let started = Instant::now();
    let posted = wx.wait_for_posts(2, Duration::from_secs(30)).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "did not wait for the timeout"
    );
    assert_eq!(posted.len(), 2);
    assert_eq!(posted[0].text.as_deref(), Some("one"));
    assert_eq!(posted[1].text.as_deref(), Some("two"));
    poster.await.expect("poster");

    // at the timeout: what is there
    let started = Instant::now();
    let posted = wx.wait_for_posts(3, Duration::from_millis(200)).await;
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(posted.len(), 2);
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let wx = double().await;
    let base = wx.base_url();
    let http = client();
    let resp = http
        .get(format!("{base}/people/me"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 200);
    wx.shutdown().await;
    let result = client()
        .get(format!("{base}/people/me"))
        .bearer_auth(TOKEN)
        .send()
        .await;
    assert!(result.is_err(), "still answering after shutdown");

    // dropping stops it too
    let wx = double().await;
    let base = wx.base_url();
    drop(wx);
    let mut stopped = false;
    for _ in 0..100 {
        if client()
            .get(format!("{base}/people/me"))
            .send()
            .await
            .is_err()
        {
            stopped = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(stopped, "still answering after drop");
}
