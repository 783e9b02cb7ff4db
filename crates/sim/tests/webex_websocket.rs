//! The Webex double's websocket mode over real HTTP and websockets on 127.0.0.1: the U2C catalog, the
//! device service, the websocket (authorization, activities, acks, faults), the conversation message
//! lookup, and the REST listing a bot uses to catch up (rooms by last activity, messages newest first).

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, SystemTime};

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use whereis_sim::webex::{DeviceChange, CLOSE_AUTH_FAILED, CLOSE_EXPIRED};
use whereis_sim::WebexDouble;

const TOKEN: &str = "bot-token-123";
const BOT_EMAIL: &str = "whereis@webex.bot";
const BOT_NAME: &str = "whereis";
const JANE: &str = "jane.doe@example.com";
const WAIT: Duration = Duration::from_secs(10);

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

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

async fn get_url(url: &str) -> reqwest::Response {
    client()
        .get(url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("request sent")
}

async fn json_of(resp: reqwest::Response) -> Value {
    resp.json().await.expect("JSON body")
}

/// What the client registers with (the protocol's body).
fn device_body(name: &str) -> Value {
    json!({
        "deviceName": "whereis",
        "deviceType": "DESKTOP",
        "localizedModel": "rust",
        "model": "rust",
        "name": name,
        "systemName": "whereis",
        "systemVersion": "0.1.0",
    })
}

async fn post_device(wx: &WebexDouble, name: &str) -> reqwest::Response {
    client()
        .post(format!("{}/devices", wx.device_url()))
        .bearer_auth(TOKEN)
        .json(&device_body(name))
        .send()
        .await
        .expect("request sent")
}

/// Registers a device; its JSON.
async fn register(wx: &WebexDouble, name: &str) -> Value {
    let resp = post_device(wx, name).await;
    assert_eq!(resp.status(), 200);
    json_of(resp).await
}

/// Opens the device's websocket with the headers the client sends.
async fn open(device: &Value) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let url = device["webSocketUrl"].as_str().expect("webSocketUrl");
    let mut request = url.into_client_request().expect("websocket request");
    let headers = request.headers_mut();
    headers.insert(
        "Authorization",
        HeaderValue::from_str(&format!("Bearer {TOKEN}")).expect("header"),
    );
    headers.insert(
        "trackingid",
        HeaderValue::from_static("whereis_00000000-0000-4000-8000-000000000000"),
    );
    headers.insert("User-Agent", HeaderValue::from_static("whereis-test"));
    tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
        .await
        .expect("handshake in time")
        .map(|(ws, _)| ws)
}

async fn send_auth(ws: &mut Ws, token: &str) {
    let frame = json!({
        "id": "8d1b2c3e-0000-4000-8000-000000000001",
        "type": "authorization",
        "data": { "token": format!("Bearer {token}") },
    });
    ws.send(Message::text(frame.to_string()))
        .await
        .expect("authorization sent");
}

/// The next frame (Err when the connection ended without a close frame).
async fn next_frame(ws: &mut Ws) -> Option<Result<Message, tokio_tungstenite::tungstenite::Error>> {
    tokio::time::timeout(WAIT, ws.next())
        .await
        .expect("a frame in time")
}

/// The next text frame as JSON, skipping pings and pongs.
async fn next_envelope(ws: &mut Ws) -> Value {
    loop {
        match next_frame(ws).await {
            Some(Ok(Message::Text(text))) => {
                return serde_json::from_str(&text).expect("JSON envelope")
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected an envelope, got {other:?}"),
        }
    }
}

/// Registers, connects, authorises and checks the first frame is a Ping.
async fn connected(wx: &WebexDouble, name: &str) -> (Value, Ws) {
    let device = register(wx, name).await;
    let mut ws = open(&device).await.expect("websocket opens");
    send_auth(&mut ws, TOKEN).await;
    match next_frame(&mut ws).await {
        Some(Ok(Message::Ping(_))) => {}
        other => panic!("expected a Ping after authorization, got {other:?}"),
    }
    assert!(wx.wait_for_authorised(WAIT).await);
    (device, ws)
}

/// The close code the double sent, after skipping other frames.
async fn close_code(ws: &mut Ws) -> u16 {
    loop {
        match next_frame(ws).await {
            Some(Ok(Message::Close(Some(frame)))) => return u16::from(frame.code),
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Text(_))) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

fn status_of(err: &tokio_tungstenite::tungstenite::Error) -> Option<u16> {
    match err {
        tokio_tungstenite::tungstenite::Error::Http(response) => Some(response.status().as_u16()),
        _ => None,
    }
}

#[tokio::test]
async fn catalog_points_at_the_device_service_and_needs_the_token() {
    let wx = double().await;
    let url = format!("{}/catalog?format=hostmap", wx.u2c_url());
    let catalog = json_of(get_url(&url).await).await;
    assert_eq!(catalog["serviceLinks"]["wdm"], wx.device_url().as_str());
    assert!(wx.device_url().ends_with("/wdm/api/v1"));
    let resp = client().get(&url).send().await.expect("sent");
    assert_eq!(resp.status(), 401);
    let resp = client()
        .get(format!("{}/devices", wx.device_url()))
        .bearer_auth("wrong")
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().contains_key("trackingid"));
}

#[tokio::test]
async fn devices_register_list_reuse_by_name_and_delete() {
    let wx = double().await;
    let device = register(&wx, "whereis-bot").await;
    let url = device["url"].as_str().expect("url");
    let id = url.rsplit('/').next().expect("id");
    assert_eq!(url, format!("{}/devices/{id}", wx.device_url()));
    assert_eq!(
        device["webSocketUrl"],
        format!("ws://{}/mercury/registrations/{id}/messages", wx.addr())
    );
    assert_eq!(device["name"], "whereis-bot");
    assert_eq!(device["deviceName"], "whereis");
    assert_eq!(device["deviceType"], "DESKTOP");
    assert!(device["creationTime"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));
    assert!(device["modificationTime"].is_string());

    register(&wx, "another-client").await;
    let listed = json_of(get_url(&format!("{}/devices", wx.device_url())).await).await;
    let devices = listed["devices"].as_array().expect("devices");
    assert_eq!(devices.len(), 2);
    // a client reuses its registration by name instead of registering again
    let mine = devices
        .iter()
        .find(|d| d["name"] == "whereis-bot")
        .expect("found by name");
    assert_eq!(mine["url"], url);
    assert_eq!(mine["webSocketUrl"], device["webSocketUrl"]);
    let got = json_of(get_url(url).await).await;
    assert_eq!(got["webSocketUrl"], device["webSocketUrl"]);

    assert_eq!(wx.device_count(), 2);
    assert_eq!(wx.registration_count(), 2);
    let names: Vec<String> = wx.devices().into_iter().map(|d| d.name).collect();
    assert_eq!(names, ["whereis-bot", "another-client"]);
    assert_eq!(wx.devices()[0].id, id);
    assert_eq!(wx.devices()[0].web_socket_url, device["webSocketUrl"]);

    let delete = |url: String| async move {
        client()
            .delete(url)
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("sent")
            .status()
    };
    assert_eq!(delete(url.to_owned()).await, 204);
    assert_eq!(delete(url.to_owned()).await, 404);
    assert_eq!(get_url(url).await.status(), 404);
    assert_eq!(wx.device_count(), 1);
    assert_eq!(wx.deletion_count(), 1);
    let history = wx.device_history();
    assert_eq!(history.len(), 3);
    assert_eq!(history[2].change, DeviceChange::Deleted);
    assert_eq!(history[2].name, "whereis-bot");

    let resp = client()
        .post(format!("{}/devices", wx.device_url()))
        .bearer_auth(TOKEN)
        .json(&json!({ "name": "no type" }))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 400);
    assert_eq!(wx.registration_count(), 2);
}

#[tokio::test]
async fn registration_answers_429_with_retry_after_when_told() {
    let wx = double().await;
    wx.fail_next_registrations(2, 7);
    for _ in 0..2 {
        let resp = post_device(&wx, "whereis-bot").await;
        assert_eq!(resp.status(), 429);
        assert_eq!(resp.headers().get("retry-after").expect("Retry-After"), "7");
    }
    assert_eq!(wx.registration_count(), 0);
    register(&wx, "whereis-bot").await;
    assert_eq!(wx.device_count(), 1);
    // nothing connected: a wait for authorisation gives up after its timeout
    assert!(!wx.wait_for_authorised(Duration::from_millis(50)).await);
}

#[tokio::test]
async fn registrations_are_capped() {
    let wx = double().await;
    for n in 1..=whereis_sim::webex::MAX_DEVICES {
        register(&wx, &format!("client-{n}")).await;
    }
    let resp = post_device(&wx, "one-too-many").await;
    assert_eq!(resp.status(), 400);
    let body = json_of(resp).await;
    assert!(body["message"]
        .as_str()
        .is_some_and(|m| m.contains("excessive device registrations")));
    assert_eq!(wx.device_count(), whereis_sim::webex::MAX_DEVICES);
}

#[tokio::test]
async fn websocket_pushes_user_and_bot_messages_and_records_acks() {
    let wx = double().await;
    let (device, mut ws) = connected(&wx, "whereis-bot").await;
    // the client's keep-alive pings are answered
    ws.send(Message::Ping("keep-alive".into()))
        .await
        .expect("ping sent");
    match next_frame(&mut ws).await {
        Some(Ok(Message::Pong(payload))) => assert_eq!(&payload[..], b"keep-alive"),
        other => panic!("expected a Pong, got {other:?}"),
    }
    let stats = wx.websocket_stats();
    assert_eq!(stats.connections_accepted, 1);
    assert_eq!(stats.authorised_now, 1);
    assert_eq!(stats.authorizations, 1);
    assert_eq!(stats.devices, 1);

    // a socket that never authorises gets nothing
    let mut silent = open(&device).await.expect("second websocket");

    let room = wx.direct_room(JANE);
    let said = wx.user_says(&room, JANE, "jdoe");
    let envelope = next_envelope(&mut ws).await;
    assert_eq!(envelope["data"]["eventType"], "conversation.activity");
    assert_eq!(envelope["sequenceNumber"], 1);
    assert!(envelope["id"].as_str().is_some_and(|id| !id.is_empty()));
    let activity = &envelope["data"]["activity"];
    assert_eq!(activity["verb"], "post");
    assert_eq!(activity["objectType"], "activity");
    assert_eq!(activity["actor"]["emailAddress"], JANE);
    assert_eq!(activity["actor"]["type"], "PERSON");
    assert_eq!(activity["actor"]["displayName"], "jane.doe");
    assert_eq!(activity["target"]["objectType"], "conversation");
    assert_eq!(activity["target"]["tags"], json!(["ONE_ON_ONE"]));
    // the text is end-to-end encrypted: it is not in the activity
    assert!(!envelope.to_string().contains("jdoe\""));

    let pushed = wx.pushed();
    assert_eq!(pushed.len(), 1, "only the authorised websocket got it");
    assert_eq!(pushed[0].message_id, said);
    assert_eq!(pushed[0].activity_id, activity["id"].as_str().expect("id"));
    assert_eq!(pushed[0].envelope_id, envelope["id"].as_str().expect("id"));

    let ack = json!({ "type": "ack", "messageId": envelope["id"] });
    ws.send(Message::text(ack.to_string()))
        .await
        .expect("ack sent");
    assert!(wx.wait_for_acks(1, WAIT).await);
    assert_eq!(wx.acks(), [envelope["id"].as_str().expect("id")]);

    // the bot's own post comes back too, as the bot
    let resp = client()
        .post(format!("{}/messages", wx.base_url()))
        .bearer_auth(TOKEN)
        .json(&json!({ "roomId": room, "text": "Jane is on Level 3" }))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 200);
    let posted_id = json_of(resp).await["id"].as_str().expect("id").to_owned();
    let envelope = next_envelope(&mut ws).await;
    assert_eq!(envelope["sequenceNumber"], 2);
    assert_eq!(envelope["data"]["activity"]["actor"]["type"], "BOT");
    assert_eq!(
        envelope["data"]["activity"]["actor"]["emailAddress"],
        BOT_EMAIL
    );
    assert_eq!(wx.pushed()[1].message_id, posted_id);

    // group spaces: the bot is mentioned, no ONE_ON_ONE tag
    let space = wx.group_room("Office");
    wx.user_says(&space, JANE, "where is jdoe");
    let envelope = next_envelope(&mut ws).await;
    let activity = &envelope["data"]["activity"];
    assert_eq!(activity["target"]["tags"], json!([]));
    let bot_uuid = activity["object"]["mentions"]["items"][0]["id"]
        .as_str()
        .expect("mention");
    let people_me = json_of(get_url(&format!("{}/people/me", wx.base_url())).await).await;
    assert!(bot_uuid.len() == 36 && people_me["id"].is_string());

    // the unauthorised socket saw nothing but may still authorise
    send_auth(&mut silent, TOKEN).await;
    assert!(matches!(
        next_frame(&mut silent).await,
        Some(Ok(Message::Ping(_)))
    ));
    assert!(wx.wait_until(WAIT, |s| s.authorised_now == 2).await);
    assert_eq!(wx.websockets_accepted(), 2);
    assert_eq!(wx.websockets_authorised(), 2);
    assert!(wx
        .peers()
        .iter()
        .all(|ip| *ip == IpAddr::V4(Ipv4Addr::LOCALHOST)));
    assert!(wx.peers().len() >= 3);
}

#[tokio::test]
async fn conversation_lookup_gives_the_rest_id_get_message_accepts() {
    let wx = double().await;
    let (_, mut ws) = connected(&wx, "whereis-bot").await;
    let space = wx.group_room("Office");
    let said = wx.user_says(&space, JANE, "jdoe");
    let envelope = next_envelope(&mut ws).await;
    let activity = &envelope["data"]["activity"];
    let target_url = activity["target"]["url"].as_str().expect("target url");
    let target_id = activity["target"]["id"].as_str().expect("target id");
    let activity_id = activity["id"].as_str().expect("activity id");
    assert!(target_url.starts_with(&format!("http://{}/", wx.addr())));
    let lookup = target_url.replace(
        &format!("conversations/{target_id}"),
        &format!("messages/{activity_id}"),
    );
    let found = json_of(get_url(&lookup).await).await;
    assert_eq!(found["id"], said.as_str());

    // the fallback spelling: standard base64 with padding of ciscospark://us/MESSAGE/{uuid}
    use base64::Engine;
    let padded = base64::engine::general_purpose::STANDARD
        .encode(format!("ciscospark://us/MESSAGE/{activity_id}"));
    for id in [said.as_str(), padded.as_str()] {
        let message = json_of(get_url(&format!("{}/messages/{id}", wx.base_url())).await).await;
        assert_eq!(message["id"], said.as_str());
        assert_eq!(message["text"], "whereis jdoe");
        assert_eq!(message["roomType"], "group");
    }
    let unknown = target_url.replace(
        &format!("conversations/{target_id}"),
        "messages/00000000-0000-4000-8000-000000000000",
    );
    assert_eq!(get_url(&unknown).await.status(), 404);
    assert_eq!(
        client().get(&lookup).send().await.expect("sent").status(),
        401
    );
}

#[tokio::test]
async fn wrong_token_or_rejected_authorization_closes_with_4401() {
    let wx = double().await;
    let device = register(&wx, "whereis-bot").await;
    let mut ws = open(&device).await.expect("opens");
    send_auth(&mut ws, "not-the-token").await;
    assert_eq!(close_code(&mut ws).await, CLOSE_AUTH_FAILED);

    wx.reject_next_authorizations(1);
    let mut ws = open(&device).await.expect("opens");
    send_auth(&mut ws, TOKEN).await;
    assert_eq!(close_code(&mut ws).await, 4401);
    let stats = wx.websocket_stats();
    assert_eq!(stats.authorization_failures, 2);
    assert_eq!(stats.authorizations, 0);

    // the fault is used up: the next one is authorised
    let mut ws = open(&device).await.expect("opens");
    send_auth(&mut ws, TOKEN).await;
    assert!(matches!(
        next_frame(&mut ws).await,
        Some(Ok(Message::Ping(_)))
    ));
    assert!(wx.wait_for_authorizations(1, WAIT).await);

    // a handshake without the bearer header is refused like any other request
    let url = device["webSocketUrl"].as_str().expect("url");
    let err = tokio_tungstenite::connect_async(url)
        .await
        .expect_err("refused");
    assert_eq!(status_of(&err), Some(401));
}

#[tokio::test]
async fn expired_registration_closes_with_4404_and_its_handshake_answers_404() {
    let wx = double().await;
    let (device, mut ws) = connected(&wx, "whereis-bot").await;
    assert_eq!(wx.expire_devices(), 1);
    assert_eq!(close_code(&mut ws).await, CLOSE_EXPIRED);
    let err = open(&device).await.expect_err("stale registration");
    assert_eq!(status_of(&err), Some(404));
    assert_eq!(wx.device_count(), 0);
    let listed = json_of(get_url(&format!("{}/devices", wx.device_url())).await).await;
    assert_eq!(listed["devices"], json!([]));
    assert_eq!(wx.device_history()[1].change, DeviceChange::Expired);
    assert_eq!(wx.websockets_authorised(), 0);

    // registering again gives a working websocket
    let (fresh, _ws) = connected(&wx, "whereis-bot").await;
    assert_ne!(fresh["webSocketUrl"], device["webSocketUrl"]);
    assert_eq!(wx.registration_count(), 2);
}

#[tokio::test]
async fn handshake_answers_429_when_told() {
    let wx = double().await;
    let device = register(&wx, "whereis-bot").await;
    wx.fail_next_handshakes(1, 3);
    match open(&device).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429);
            assert_eq!(
                response.headers().get("retry-after").expect("Retry-After"),
                "3"
            );
        }
        other => panic!("expected a 429 handshake, got {:?}", other.map(|_| ())),
    }
    open(&device).await.expect("the next handshake works");
}

#[tokio::test]
async fn dropped_and_closed_websockets_are_seen_by_the_client() {
    let wx = double().await;
    let (device, mut ws) = connected(&wx, "whereis-bot").await;
    assert_eq!(wx.drop_websockets(), 1);
    assert_eq!(wx.websockets_authorised(), 0, "gone at once");
    // no close frame: the stream fails or ends
    loop {
        match next_frame(&mut ws).await {
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Close(frame))) => panic!("abrupt drop sent a close frame {frame:?}"),
            Some(Ok(other)) => panic!("unexpected frame {other:?}"),
            Some(Err(_)) | None => break,
        }
    }
    // nothing is pushed to a dropped socket
    wx.user_says(&wx.direct_room(JANE), JANE, "jdoe");
    assert_eq!(wx.pushed().len(), 0);

    // reconnecting to the same registration works
    let mut ws = open(&device).await.expect("reconnects");
    send_auth(&mut ws, TOKEN).await;
    assert!(wx.wait_for_authorizations(2, WAIT).await);
    assert!(matches!(
        next_frame(&mut ws).await,
        Some(Ok(Message::Ping(_)))
    ));
    assert_eq!(wx.close_websockets(1001, "going away"), 1);
    assert_eq!(close_code(&mut ws).await, 1001);
    assert_eq!(wx.websocket_stats().connections_accepted, 2);
}

#[tokio::test]
async fn messages_said_while_away_are_not_pushed_until_asked() {
    let wx = double().await;
    let (_, mut ws) = connected(&wx, "whereis-bot").await;
    let room = wx.direct_room(JANE);
    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    let old = wx.user_says_at(&room, JANE, "jdoe", an_hour_ago);
    let message = json_of(get_url(&format!("{}/messages/{old}", wx.base_url())).await).await;
    let created = message["created"].as_str().expect("created");
    let expected = chrono::DateTime::<chrono::Utc>::from(an_hour_ago)
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    assert_eq!(created, expected);
    assert!(wx.pushed().is_empty());

    // one message delivered both by webhook body and by websocket
    let body: Value = serde_json::from_slice(&wx.event_body(&old)).expect("webhook body");
    assert_eq!(body["data"]["id"], old.as_str());
    assert_eq!(wx.push_activity(&old), 1);
    let envelope = next_envelope(&mut ws).await;
    assert_eq!(envelope["data"]["activity"]["published"], created);
    assert_eq!(wx.pushed()[0].message_id, old);
}

/// The ids of a listing's items.
fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|m| m["id"].as_str().expect("id").to_owned())
        .collect()
}

/// The URL of a `Link: <…>; rel="next"` header.
fn next_link(resp: &reqwest::Response) -> Option<String> {
    let link = resp.headers().get("link")?.to_str().ok()?;
    assert!(link.ends_with("rel=\"next\""), "{link}");
    Some(link.split_once('<')?.1.split_once('>')?.0.to_owned())
}

#[tokio::test]
async fn rooms_are_listed_by_last_activity_with_paging() {
    let wx = double().await;
    let jane = wx.direct_room(JANE);
    let office = wx.group_room("Office");
    let bob = wx.direct_room("bob@example.com");
    wx.user_says(&jane, JANE, "one");
    wx.user_says(&office, JANE, "two");
    wx.user_says(&bob, "bob@example.com", "three");
    wx.user_says(&jane, JANE, "four");
    // an old message does not move its room ahead
    wx.user_says_at(
        &office,
        JANE,
        "old",
        SystemTime::now() - Duration::from_secs(600),
    );

    let url = format!("{}/rooms?sortBy=lastactivity&max=100", wx.base_url());
    let page = json_of(get_url(&url).await).await;
    assert_eq!(ids(&page), [jane.clone(), bob.clone(), office.clone()]);
    let first = &page["items"][0];
    assert_eq!(first["type"], "direct");
    assert_eq!(first["title"], "jane.doe");
    assert!(first["lastActivity"].is_string() && first["created"].is_string());
    assert_eq!(page["items"][2]["type"], "group");
    assert_eq!(page["items"][2]["title"], "Office");

    // paging: max=2, then follow Link rel="next"
    let resp = get_url(&format!(
        "{}/rooms?sortBy=lastactivity&max=2",
        wx.base_url()
    ))
    .await;
    let next = next_link(&resp).expect("a next page");
    assert_eq!(ids(&json_of(resp).await), [jane.clone(), bob.clone()]);
    let resp = get_url(&next).await;
    assert!(next_link(&resp).is_none());
    assert_eq!(ids(&json_of(resp).await), [office.as_str()]);

    // the bot's post counts as activity too
    let resp = client()
        .post(format!("{}/messages", wx.base_url()))
        .bearer_auth(TOKEN)
        .json(&json!({ "roomId": office, "text": "hello" }))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 200);
    let page = json_of(get_url(&url).await).await;
    assert_eq!(ids(&page)[0], office);
    assert_eq!(
        get_url(&format!("{}/rooms?max=0", wx.base_url()))
            .await
            .status(),
        400
    );
}

#[tokio::test]
async fn messages_are_listed_newest_first_with_paging_and_the_group_rule() {
    let wx = double().await;
    let jane = wx.direct_room(JANE);
    let now = SystemTime::now();
    let minutes_ago = |m: u64| now - Duration::from_secs(60 * m);
    let m30 = wx.user_says_at(&jane, JANE, "thirty", minutes_ago(30));
    let m10 = wx.user_says_at(&jane, JANE, "ten", minutes_ago(10));
    let m20 = wx.user_says_at(&jane, JANE, "twenty", minutes_ago(20));
    let latest = wx.user_says(&jane, JANE, "now");

    let url = format!("{}/messages?roomId={jane}&max=50", wx.base_url());
    let resp = get_url(&url).await;
    assert!(next_link(&resp).is_none());
    let page = json_of(resp).await;
    assert_eq!(
        ids(&page),
        [latest.clone(), m10.clone(), m20.clone(), m30.clone()]
    );
    assert_eq!(page["items"][1]["text"], "ten");
    assert_eq!(page["items"][1]["personEmail"], JANE);
    assert_eq!(page["items"][1]["roomType"], "direct");

    // pages of 3 then 1
    let resp = get_url(&format!("{}/messages?roomId={jane}&max=3", wx.base_url())).await;
    let next = next_link(&resp).expect("next page");
    assert_eq!(
        ids(&json_of(resp).await),
        [latest.clone(), m10.clone(), m20.clone()]
    );
    let resp = get_url(&next).await;
    assert!(next_link(&resp).is_none());
    assert_eq!(ids(&json_of(resp).await), [m30.as_str()]);

    // before=
    let before = chrono::DateTime::<chrono::Utc>::from(minutes_ago(15)).to_rfc3339();
    let resp = client()
        .get(format!("{}/messages", wx.base_url()))
        .query(&[("roomId", jane.as_str()), ("before", before.as_str())])
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("sent");
    assert_eq!(ids(&json_of(resp).await), [m20.clone(), m30.clone()]);

    // group spaces: a bot must ask for the messages that mention it
    let office = wx.group_room("Office");
    let asked = wx.user_says(&office, JANE, "jdoe");
    let resp = client()
        .post(format!("{}/messages", wx.base_url()))
        .bearer_auth(TOKEN)
        .json(&json!({ "roomId": office, "text": "Jane is on Level 3" }))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 200);
    let resp = get_url(&format!("{}/messages?roomId={office}", wx.base_url())).await;
    assert_eq!(resp.status(), 403);
    let body = json_of(resp).await;
    assert!(body["message"]
        .as_str()
        .is_some_and(|m| m.contains("mentionedPeople")));
    let page = json_of(
        get_url(&format!(
            "{}/messages?roomId={office}&mentionedPeople=me&max=50",
            wx.base_url()
        ))
        .await,
    )
    .await;
    assert_eq!(ids(&page), [asked]);

    // errors
    assert_eq!(
        get_url(&format!("{}/messages", wx.base_url()))
            .await
            .status(),
        400
    );
    assert_eq!(
        get_url(&format!("{}/messages?roomId=nope", wx.base_url()))
            .await
            .status(),
        404
    );
    assert_eq!(
        get_url(&format!(
            "{}/messages?roomId={jane}&before=yesterday",
            wx.base_url()
        ))
        .await
        .status(),
        400
    );
}
