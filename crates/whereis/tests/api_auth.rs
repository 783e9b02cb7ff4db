//! Who may use `/api/v1/*`: API tokens (created, used, revoked through the CLI), an authenticating
//! proxy believed only from its own address, and `auth = "none"` only on loopback. Everything a
//! client merely claims is refused with 401.

mod common;

use std::net::IpAddr;
use std::path::Path;

use common::{path_str, whereis, Office, VARIANTS_AND_TIMEOUTS};
use serde_json::Value;

/// `GET {base}/api/v1/locate?q=jdoe` from `from`, with `headers`.
async fn locate(base: &str, from: &str, headers: &[(&str, &str)]) -> (u16, Value, String) {
    let from: IpAddr = from.parse().expect("address");
    let client = reqwest::Client::builder()
        .local_address(from)
        .build()
        .expect("client");
    let mut request = client.get(format!("{base}/api/v1/locate?q=jdoe"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("answer");
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (
        status,
        response.json().await.unwrap_or(Value::Null),
        challenge,
    )
}

/// The requesters of the audit rows of `config`.
async fn audited_requesters(config: &Path) -> Vec<String> {
    let out = whereis(&["audit", "--config", path_str(config), "--json"]).await;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|row| row["requester"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_are_created_once_used_as_their_requester_and_revoked() {
    let office = Office::start().await;
    // No [web]: tokens are the only way in.
    let config = office.config("tokens.toml", VARIANTS_AND_TIMEOUTS, &office.all_sources());
    let path = path_str(&config);
    let base = common::serve_api(&config).await;

    let (status, body, challenge) = locate(&base, "127.0.0.1", &[]).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("token")),
        "{body}"
    );
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    // A header naming someone is not an identity here.
    let (status, _, _) = locate(
        &base,
        "127.0.0.1",
        &[("X-Forwarded-Email", "ops@example.com")],
    )
    .await;
    assert_eq!(status, 401);

    let created = whereis(&[
        "token",
        "create",
        "--config",
        path,
        "--requester",
        "Ops@Example.com",
        "--name",
        "nightly",
    ])
    .await;
    assert_eq!(created.status.code(), Some(0), "{created:?}");
    let token = String::from_utf8_lossy(&created.stdout).trim().to_owned();
    assert!(token.starts_with("whereis_"), "{token}");
    // The same name twice is refused, and the first token keeps working.
    let again = whereis(&[
        "token",
        "create",
        "--config",
        path,
        "--requester",
        "x@example.com",
        "--name",
        "nightly",
    ])
    .await;
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));
    assert!(again.stdout.is_empty());

    let bearer = format!("Bearer {token}");
    let (status, body, _) = locate(&base, "127.0.0.1", &[("Authorization", &bearer)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["devices"].as_array().map(Vec::len), Some(2), "{body}");
    assert_eq!(audited_requesters(&config).await, vec!["ops@example.com"]);

    // The list shows the name and requester, never the token.
    let listed = whereis(&["token", "list", "--config", path]).await;
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(
        listed.contains("nightly") && listed.contains("ops@example.com"),
        "{listed}"
    );
    assert!(!listed.contains(&token));

    // A made-up token of the right shape, and a truncated real one, are refused.
    let forged = format!("Bearer whereis_{}", "A".repeat(43));
    assert_eq!(
        locate(&base, "127.0.0.1", &[("Authorization", &forged)])
            .await
            .0,
        401
    );
    let truncated = format!("Bearer {}", &token[..token.len() - 1]);
    assert_eq!(
        locate(&base, "127.0.0.1", &[("Authorization", &truncated)])
            .await
            .0,
        401
    );

    let revoked = whereis(&["token", "revoke", "nightly", "--config", path]).await;
    assert_eq!(revoked.status.code(), Some(0));
    let (status, body, _) = locate(&base, "127.0.0.1", &[("Authorization", &bearer)]).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        whereis(&["token", "revoke", "nightly", "--config", path])
            .await
            .status
            .code(),
        Some(1)
    );
    // Refused requests name nobody: the audit holds only the one lookup made with the token.
    assert_eq!(audited_requesters(&config).await, vec!["ops@example.com"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_proxy_header_is_believed_only_from_the_trusted_proxy() {
    let office = Office::start().await;
    let config = office.config(
        "proxy.toml",
        &format!(
            "{VARIANTS_AND_TIMEOUTS}\n\n[web]\nauth = \"proxy\"\ntrusted_proxies = [\"127.0.0.2\"]\n"
        ),
        &office.all_sources(),
    );
    let base = common::serve_api(&config).await;
    let jane = [("X-Forwarded-Email", "Jane.Doe@example.com")];

    // From the proxy: the header is the requester.
    let (status, body, _) = locate(&base, "127.0.0.2", &jane).await;
    assert_eq!(status, 200, "{body}");
    // From anywhere else, the same header is a claim: 401.
    let (status, body, challenge) = locate(&base, "127.0.0.1", &jane).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("trusted")),
        "{body}"
    );
    assert!(challenge.starts_with("Bearer"));
    // The proxy without the header, or with something that is not an email: 401.
    assert_eq!(locate(&base, "127.0.0.2", &[]).await.0, 401);
    let (status, body, _) = locate(&base, "127.0.0.2", &[("X-Forwarded-Email", "jane doe")]).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        audited_requesters(&config).await,
        vec!["jane.doe@example.com"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_token_never_falls_back_to_the_local_requester() {
    let office = Office::start().await;
    let config = office.default_config();
    let base = common::serve_api(&config).await;
    assert_eq!(locate(&base, "127.0.0.1", &[]).await.0, 200);
    let bad = [(
        "Authorization",
        "Bearer whereis_not-a-real-token-but-long-enough-to-look-like-one",
    )];
    assert_eq!(locate(&base, "127.0.0.1", &bad).await.0, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_none_is_refused_on_a_non_loopback_listener() {
    let office = Office::start().await;
    let config = office.config(
        "open.toml",
        &format!(
            "{VARIANTS_AND_TIMEOUTS}\n\n[server]\nlisten = \"0.0.0.0:0\"\n\n[web]\nauth = \"none\"\nrequester = \"jane.doe@example.com\"\n"
        ),
        &office.all_sources(),
    );
    for command in ["serve", "check-config"] {
        let out = whereis(&[command, "--config", path_str(&config)]).await;
        assert_eq!(out.status.code(), Some(2), "{command}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("web.auth = \"none\"") && stderr.contains("loopback"),
            "{command}: {stderr}"
        );
    }
    // The demo refuses a non-loopback address the same way (it signs everyone in as one person).
    let out = whereis(&["demo", "--listen", "0.0.0.0:0"]).await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
}
