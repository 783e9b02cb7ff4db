//! TCP streams for websockets: direct, or a `CONNECT` tunnel through an HTTP proxy.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{NetError, ProxyServer};

/// Largest answer head a proxy may send to `CONNECT`.
const MAX_HEAD: usize = 16 * 1024;

/// A plain TCP connection to `host:port`.
pub(crate) async fn direct(
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<TcpStream, NetError> {
    let target = authority(host, port);
    let stream = tokio::time::timeout(timeout, TcpStream::connect((unbracket(host), port)))
        .await
        .map_err(|_| NetError::Dial(format!("cannot connect to {target}: timed out")))?
        .map_err(|err| NetError::Dial(format!("cannot connect to {target}: {err}")))?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// A tunnel to `host:port` through `proxy`: `CONNECT host:port`, then the raw stream.
pub(crate) async fn connect(
    proxy: &ProxyServer,
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<TcpStream, NetError> {
    let target = authority(host, port);
    let proxy_name = proxy.url().to_owned();
    let work = async {
        let mut stream = TcpStream::connect((unbracket(&proxy.host), proxy.port))
            .await
            .map_err(|err| NetError::Dial(format!("cannot reach the proxy {proxy_name}: {err}")))?;
        let _ = stream.set_nodelay(true);
        let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
        if let Some(auth) = proxy.authorization() {
            if let Ok(value) = auth.to_str() {
                request.push_str(&format!("Proxy-Authorization: {value}\r\n"));
            }
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).await.map_err(|err| {
            NetError::Dial(format!(
                "the proxy {proxy_name} closed the connection: {err}"
            ))
        })?;
        let status = read_answer(&mut stream).await.map_err(|why| {
            NetError::Dial(format!("proxy {proxy_name}, CONNECT {target}: {why}"))
        })?;
        if !(200..300).contains(&status.0) {
            return Err(NetError::Dial(format!(
                "the proxy {proxy_name} refused CONNECT {target}: {} {}",
                status.0, status.1
            )));
        }
        Ok(stream)
    };
    tokio::time::timeout(timeout, work).await.map_err(|_| {
        NetError::Dial(format!(
            "proxy {proxy_name}: no tunnel to {target} within {} ms",
            timeout.as_millis()
        ))
    })?
}

/// Reads the proxy's answer head byte by byte (nothing of the tunnel behind it may be consumed) and
/// returns its status code and reason.
async fn read_answer(stream: &mut TcpStream) -> Result<(u16, String), String> {
    let mut head = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_HEAD {
            return Err(format!("an answer head longer than {MAX_HEAD} bytes"));
        }
        let read = stream
            .read(&mut byte)
            .await
            .map_err(|err| format!("connection broken: {err}"))?;
        if read == 0 {
            return Err("the proxy closed the connection without an answer".to_owned());
        }
        head.push(byte[0]);
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut answer = httparse::Response::new(&mut headers);
    match answer.parse(&head) {
        Ok(httparse::Status::Complete(_)) => Ok((
            answer.code.unwrap_or(0),
            answer.reason.unwrap_or_default().to_owned(),
        )),
        Ok(httparse::Status::Partial) => Err("an incomplete answer".to_owned()),
        Err(err) => Err(format!("not an HTTP answer ({err})")),
    }
}

/// `host:port`, with IPv6 literals in brackets.
fn authority(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn unbracket(host: &str) -> &str {
    host.trim_start_matches('[').trim_end_matches(']')
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A proxy stand that answers CONNECT with `answer`, then echoes.
    async fn stand(answer: &'static str) -> (ProxyServer, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut seen = Vec::new();
            let mut buf = [0u8; 1024];
            while !seen.ends_with(b"\r\n\r\n") {
                let n = socket.read(&mut buf).await.expect("read");
                if n == 0 {
                    break;
                }
                seen.extend_from_slice(&buf[..n]);
            }
            socket.write_all(answer.as_bytes()).await.expect("answer");
            // Echo what comes through the tunnel.
            if let Ok(n) = socket.read(&mut buf).await {
                let _ = socket.write_all(&buf[..n]).await;
            }
            String::from_utf8_lossy(&seen).into_owned()
        });
        let proxy = ProxyServer::parse(
            &format!("http://{addr}"),
            Some("svc".to_owned()),
            Some("pw".to_owned().into()),
            false,
        )
        .expect("proxy");
        (proxy, task)
    }

    #[tokio::test]
    async fn tunnel_carries_bytes_after_200() {
        let (proxy, seen) = stand("HTTP/1.1 200 Connection established\r\n\r\n").await;
        let mut stream = connect(&proxy, "webex.example", 443, Duration::from_secs(5))
            .await
            .expect("tunnel");
        stream.write_all(b"hello").await.expect("write");
        let mut echo = [0u8; 5];
        stream.read_exact(&mut echo).await.expect("echo");
        assert_eq!(&echo, b"hello");
        let seen = seen.await.expect("stand");
        assert!(
            seen.starts_with("CONNECT webex.example:443 HTTP/1.1\r\n"),
            "{seen}"
        );
        assert!(
            seen.contains("Proxy-Authorization: Basic c3ZjOnB3\r\n"),
            "{seen}"
        );
    }

    #[tokio::test]
    async fn refusal_is_explained() {
        let (proxy, _seen) =
            stand("HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n").await;
        let err = connect(&proxy, "[::1]", 8443, Duration::from_secs(5))
            .await
            .expect_err("407");
        let text = err.to_string();
        assert!(text.contains("refused CONNECT [::1]:8443: 407"), "{text}");
        assert!(!text.contains("pw"), "{text}");
    }

    #[tokio::test]
    async fn garbage_and_silence_are_errors() {
        let (proxy, _seen) = stand("SSH-2.0-OpenSSH\r\n\r\n").await;
        let err = connect(&proxy, "x", 1, Duration::from_secs(5))
            .await
            .expect_err("garbage");
        assert!(err.to_string().contains("not an HTTP answer"), "{err}");

        // A proxy that accepts and never answers: the timeout ends the wait.
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let _keep = tokio::spawn(async move {
            let accepted = listener.accept().await;
            std::future::pending::<()>().await;
            drop(accepted);
        });
        let proxy = ProxyServer::parse(&format!("http://{addr}"), None, None, false).expect("p");
        let err = connect(&proxy, "x", 1, Duration::from_millis(200))
            .await
            .expect_err("silence");
        assert!(err.to_string().contains("no tunnel"), "{err}");
    }

    #[tokio::test]
    async fn dead_proxy_is_named() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let proxy = ProxyServer::parse(&format!("http://{addr}"), None, None, false).expect("p");
        let err = connect(&proxy, "x", 1, Duration::from_secs(2))
            .await
            .expect_err("dead");
        assert!(err.to_string().contains("cannot reach the proxy"), "{err}");
    }
}
