//! Helpers shared by the integration tests: an HTTP client for loopback and a raw HTTP/1.1 socket client.
#![allow(dead_code)]

use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use whereis_sim::ServerHandle;

/// A reqwest client that never uses a proxy (loopback only).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("reqwest client")
}

/// `GET base_url + path` with the server's credentials.
pub async fn get(server: &ServerHandle, path: &str) -> reqwest::Response {
    client()
        .get(format!("{}{}", server.base_url(), path))
        .basic_auth(server.username(), Some(server.password()))
        .send()
        .await
        .expect("request sent")
}

/// GET with `Accept: application/json` (what MSE needs).
pub async fn get_json_accept(server: &ServerHandle, path: &str) -> reqwest::Response {
    client()
        .get(format!("{}{}", server.base_url(), path))
        .basic_auth(server.username(), Some(server.password()))
        .header("Accept", "application/json")
        .send()
        .await
        .expect("request sent")
}

/// The object's keys, for shape assertions.
pub fn keys(v: &serde_json::Value) -> Vec<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

/// Asserts `v` is an object with every key of `want`.
pub fn assert_keys(v: &serde_json::Value, want: &[&str]) {
    let have = keys(v);
    for k in want {
        assert!(have.iter().any(|h| h == k), "missing key {k:?} in {have:?}");
    }
}

/// A raw HTTP/1.1 response: status, lower-cased headers, body bytes.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Writes a keep-alive GET with the server's credentials on `stream`.
pub async fn send_raw(stream: &mut TcpStream, server: &ServerHandle, path: &str) {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        server.username(),
        server.password()
    ));
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Basic {auth}\r\nAccept: application/json\r\n\r\n",
        server.addr()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("request written");
}

/// Reads one response head, then `Content-Length` body bytes, or up to EOF if the connection closes
/// early (the body is then shorter). Errors are returned as they come (e.g. a reset).
pub async fn read_raw(stream: &mut TcpStream) -> std::io::Result<RawResponse> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok(RawResponse {
        status,
        headers,
        body,
    })
}
