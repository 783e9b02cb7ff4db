//! The forwarding proxy over real sockets on loopback: CONNECT tunnels (also a websocket through one),
//! absolute-form requests for two hosts on one connection, credentials (407), refusal of targets off
//! the machine (403), outbound connections from 127.0.0.2 (the origins' peers prove it) and shutdown.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use base64::Engine;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use whereis_sim::proxy::{ForwardProxy, ProxyOptions, PROXY_REALM};
use whereis_sim::{Scenario, Simulator, WebexDouble};

const TOKEN: &str = "bot-token-123";
const WAIT: Duration = Duration::from_secs(10);
const OUTBOUND: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

async fn double() -> WebexDouble {
    WebexDouble::start(TOKEN, "whereis@webex.bot", "whereis")
        .await
        .expect("double starts")
}

/// One HTTP/1.1 answer read off a raw connection: status line, headers (lowercase names) and body
/// (by `Content-Length`).
struct RawAnswer {
    status_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawAnswer {
    fn status(&self) -> u16 {
        self.status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status code")
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one answer; `buffer` keeps what was read past it.
async fn read_answer(stream: &mut TcpStream, buffer: &mut Vec<u8>, has_body: bool) -> RawAnswer {
    let read = async {
        let head_end = loop {
            if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break at;
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.expect("read");
            assert!(n > 0, "connection closed before the head ended");
            buffer.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8(buffer[..head_end].to_vec()).expect("ASCII head");
        buffer.drain(..head_end + 4);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().expect("status line").to_owned();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let length = if has_body {
            headers
                .iter()
                .find(|(n, _)| n == "content-length")
                .map_or(0, |(_, v)| v.parse::<usize>().expect("length"))
        } else {
            0
        };
        while buffer.len() < length {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.expect("read");
            assert!(n > 0, "connection closed inside the body");
            buffer.extend_from_slice(&chunk[..n]);
        }
        let body = buffer.drain(..length).collect();
        RawAnswer {
            status_line,
            headers,
            body,
        }
    };
    tokio::time::timeout(WAIT, read)
        .await
        .expect("answer in time")
}

async fn connect_to(proxy: &ForwardProxy) -> TcpStream {
    TcpStream::connect(proxy.addr())
        .await
        .expect("proxy reachable")
}

/// Sends `CONNECT target` (with extra header lines) and reads the answer head.
async fn send_connect(stream: &mut TcpStream, target: &str, extra: &str) -> RawAnswer {
    let request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{extra}\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut buffer = Vec::new();
    let answer = read_answer(stream, &mut buffer, true).await;
    assert!(buffer.is_empty(), "nothing follows the CONNECT answer");
    answer
}

fn basic(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Proxy-Authorization: Basic {encoded}\r\n")
}

#[tokio::test]
async fn connect_tunnels_bytes_both_ways_from_the_outbound_address() {
    let wx = double().await;
    let proxy = ForwardProxy::start().await.expect("proxy starts");
    let target = wx.addr().to_string();
    let mut stream = connect_to(&proxy).await;
    let answer = send_connect(&mut stream, &target, "").await;
    assert_eq!(answer.status_line, "HTTP/1.1 200 Connection established");

    // plain HTTP inside the tunnel, to the origin itself
    let request = format!(
        "GET /v1/people/me HTTP/1.1\r\nHost: {target}\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut buffer = Vec::new();
    let answer = read_answer(&mut stream, &mut buffer, true).await;
    assert_eq!(answer.status(), 200);
    let me: Value = serde_json::from_slice(&answer.body).expect("JSON");
    assert_eq!(me["displayName"], "whereis");

    let recorded = proxy.requests();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].method, "CONNECT");
    assert_eq!(recorded[0].target, target);
    assert!(recorded[0].authorised);
    assert_eq!(recorded[0].status, 200);
    assert_eq!(wx.peers(), [OUTBOUND], "the origin saw only the proxy");
    assert_eq!(proxy.peers(), [IpAddr::V4(Ipv4Addr::LOCALHOST)]);
}

#[tokio::test]
async fn a_websocket_works_through_a_connect_tunnel() {
    let wx = double().await;
    let proxy = ForwardProxy::start().await.expect("proxy starts");
    let register = reqwest::Client::builder()
        .proxy(reqwest::Proxy::all(proxy.url()).expect("proxy URL"))
        .build()
        .expect("client");
    let device: Value = register
        .post(format!("{}/devices", wx.device_url()))
        .bearer_auth(TOKEN)
        .json(&json!({ "deviceType": "DESKTOP", "name": "whereis-bot" }))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    let ws_url = device["webSocketUrl"].as_str().expect("webSocketUrl");

    let mut stream = connect_to(&proxy).await;
    let answer = send_connect(&mut stream, &wx.addr().to_string(), "").await;
    assert_eq!(answer.status(), 200);
    let mut request = ws_url.into_client_request().expect("request");
    request.headers_mut().insert(
        "Authorization",
        HeaderValue::from_str(&format!("Bearer {TOKEN}")).expect("header"),
    );
    let (mut ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::client_async(request, stream))
        .await
        .expect("handshake in time")
        .expect("websocket through the tunnel");
    let auth = json!({ "id": "1", "type": "authorization", "data": { "token": format!("Bearer {TOKEN}") } });
    ws.send(Message::text(auth.to_string()))
        .await
        .expect("sent");
    let first = tokio::time::timeout(WAIT, ws.next())
        .await
        .expect("in time");
    assert!(matches!(first, Some(Ok(Message::Ping(_)))), "{first:?}");
    assert!(wx.wait_for_authorised(WAIT).await);
    assert!(
        wx.peers().iter().all(|ip| *ip == OUTBOUND),
        "{:?}",
        wx.peers()
    );
    let methods: Vec<String> = proxy.requests().into_iter().map(|r| r.method).collect();
    assert_eq!(methods, ["POST", "CONNECT"]);
}

#[tokio::test]
async fn absolute_form_requests_for_two_hosts_share_one_client_connection() {
    let first = double().await;
    let second = double().await;
    let proxy = ForwardProxy::start().await.expect("proxy starts");
    let mut stream = connect_to(&proxy).await;
    let mut buffer = Vec::new();
    for (wx, path) in [
        (&first, "/v1/people/me"),
        (&second, "/v1/webhooks"),
        (&first, "/v1/nope"),
    ] {
        let url = format!("http://{}{path}", wx.addr());
        let request = format!(
            "GET {url} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {TOKEN}\r\nProxy-Connection: keep-alive\r\n\r\n",
            wx.addr()
        );
        stream.write_all(request.as_bytes()).await.expect("write");
        let answer = read_answer(&mut stream, &mut buffer, true).await;
        let expected = if path == "/v1/nope" { 404 } else { 200 };
        assert_eq!(answer.status(), expected, "{url}");
        assert!(
            answer.header("trackingid").is_some(),
            "origin headers relayed"
        );
        let body: Value = serde_json::from_slice(&answer.body).expect("JSON");
        if path == "/v1/webhooks" {
            assert_eq!(body["items"], json!([]));
        }
    }
    assert_eq!(proxy.peers().len(), 1, "one client connection");
    let recorded = proxy.requests();
    assert_eq!(recorded.len(), 3);
    assert_eq!(recorded[0].method, "GET");
    assert_eq!(
        recorded[1].target,
        format!("http://{}/v1/webhooks", second.addr())
    );
    assert_eq!(recorded[2].status, 404);
    // the origins got origin-form requests, from the outbound address only
    assert_eq!(first.request_count("GET", "/v1/people/me"), 1);
    assert_eq!(second.request_count("GET", "/v1/webhooks"), 1);
    for wx in [&first, &second] {
        assert!(!wx.peers().is_empty());
        assert!(
            wx.peers().iter().all(|ip| *ip == OUTBOUND),
            "{:?}",
            wx.peers()
        );
    }
}

#[tokio::test]
async fn location_servers_see_only_the_outbound_address_through_the_proxy() {
    let sim = Simulator::start(Scenario::builtin_demo())
        .await
        .expect("simulator starts");
    let server = &sim.servers()[0];
    let proxy = ForwardProxy::start().await.expect("proxy starts");
    let client = reqwest::Client::builder()
        .proxy(reqwest::Proxy::http(proxy.url()).expect("proxy URL"))
        .build()
        .expect("client");
    let resp = client
        .get(format!("{}/api/config/v1/maps", server.base_url()))
        .basic_auth(server.username(), Some(server.password()))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 200);
    assert_eq!(server.peers(), [OUTBOUND]);

    // and without the proxy, the client's own address
    let direct = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let resp = direct
        .get(format!("{}/api/config/v1/maps", server.base_url()))
        .basic_auth(server.username(), Some(server.password()))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 200);
    assert_eq!(server.peers(), [OUTBOUND, IpAddr::V4(Ipv4Addr::LOCALHOST)]);
}

#[tokio::test]
async fn credentials_are_demanded_when_configured() {
    let wx = double().await;
    let proxy = ForwardProxy::with_credentials("alice", "pa55:word")
        .await
        .expect("proxy starts");
    let target = wx.addr().to_string();

    for extra in [
        String::new(),
        basic("alice", "wrong"),
        basic("bob", "pa55:word"),
    ] {
        let mut stream = connect_to(&proxy).await;
        let answer = send_connect(&mut stream, &target, &extra).await;
        assert_eq!(answer.status(), 407, "{extra}");
        assert_eq!(
            answer.header("proxy-authenticate"),
            Some(format!("Basic realm=\"{PROXY_REALM}\"").as_str())
        );
    }
    let mut stream = connect_to(&proxy).await;
    let answer = send_connect(&mut stream, &target, &basic("alice", "pa55:word")).await;
    assert_eq!(answer.status(), 200);

    // plain HTTP the same way, with reqwest's proxy credentials
    let url = format!("{}/people/me", wx.base_url());
    let anonymous = reqwest::Client::builder()
        .proxy(reqwest::Proxy::http(proxy.url()).expect("proxy URL"))
        .build()
        .expect("client");
    let resp = anonymous
        .get(&url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 407);
    let with_credentials = reqwest::Client::builder()
        .proxy(
            reqwest::Proxy::http(proxy.url())
                .expect("proxy URL")
                .basic_auth("alice", "pa55:word"),
        )
        .build()
        .expect("client");
    let resp = with_credentials
        .get(&url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 200);

    let authorised: Vec<bool> = proxy.requests().iter().map(|r| r.authorised).collect();
    assert_eq!(authorised, [false, false, false, true, false, true]);
    // refused requests never reached the origin
    assert_eq!(wx.request_count("GET", "/v1/people/me"), 1);
    assert!(format!("{proxy:?}").contains("alice"));
    assert!(!format!("{proxy:?}").contains("pa55:word"));
}

#[tokio::test]
async fn targets_off_loopback_are_refused() {
    let proxy = ForwardProxy::start().await.expect("proxy starts");
    for target in ["10.1.2.3:443", "example.com:443", "[::1]:443"] {
        let mut stream = connect_to(&proxy).await;
        let answer = send_connect(&mut stream, target, "").await;
        assert_eq!(answer.status(), 403, "{target}: {}", answer.status_line);
    }
    let client = reqwest::Client::builder()
        .proxy(reqwest::Proxy::http(proxy.url()).expect("proxy URL"))
        .build()
        .expect("client");
    for url in ["http://example.com/", "http://192.168.1.1:8080/x"] {
        let resp = client.get(url).send().await.expect("sent");
        assert_eq!(resp.status(), 403, "{url}");
    }
    let statuses: Vec<(String, u16)> = proxy
        .requests()
        .into_iter()
        .map(|r| (r.target, r.status))
        .collect();
    assert_eq!(statuses.len(), 5);
    assert!(statuses.iter().all(|(_, s)| *s == 403), "{statuses:?}");
    assert_eq!(statuses[1].0, "example.com:443");
    assert_eq!(statuses[3].0, "http://example.com/");

    // a loopback port nobody listens on: 502
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr")
    };
    let mut stream = connect_to(&proxy).await;
    let answer = send_connect(&mut stream, &closed.to_string(), "").await;
    assert_eq!(answer.status(), 502);

    // a request that is not a proxy request
    let mut stream = connect_to(&proxy).await;
    stream
        .write_all(b"GET /v1/people/me HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .expect("write");
    let answer = read_answer(&mut stream, &mut Vec::new(), true).await;
    assert_eq!(answer.status(), 400);
}

#[tokio::test]
async fn the_outbound_address_is_configurable() {
    let wx = double().await;
    let proxy = ForwardProxy::start_with(ProxyOptions {
        outbound_ip: Ipv4Addr::new(127, 0, 0, 3),
        ..ProxyOptions::default()
    })
    .await
    .expect("proxy starts");
    let client = reqwest::Client::builder()
        .proxy(reqwest::Proxy::http(proxy.url()).expect("proxy URL"))
        .build()
        .expect("client");
    let resp = client
        .get(format!("{}/people/me", wx.base_url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 200);
    assert_eq!(wx.peers(), [IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3))]);
    let refused = ForwardProxy::start_with(ProxyOptions {
        outbound_ip: Ipv4Addr::new(10, 0, 0, 1),
        ..ProxyOptions::default()
    })
    .await
    .expect_err("an outbound address off loopback is refused");
    assert!(refused.to_string().contains("10.0.0.1"), "{refused}");
}

#[tokio::test]
async fn shutdown_ends_tunnels_and_the_listener() {
    let wx = double().await;
    let proxy = ForwardProxy::start().await.expect("proxy starts");
    let addr = proxy.addr();
    let mut stream = connect_to(&proxy).await;
    let answer = send_connect(&mut stream, &wx.addr().to_string(), "").await;
    assert_eq!(answer.status(), 200);
    assert!(proxy.wait_for_requests(1, WAIT).await);
    proxy.shutdown().await;
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(WAIT, stream.read(&mut byte))
        .await
        .expect("the tunnel ends in time");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}
