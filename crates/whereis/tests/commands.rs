//! The long-running commands as an operator starts them: `demo` and `sim`.

mod common;

use common::{start_until, url_after};

use tokio::process::Child;

/// A client that follows no redirects and ignores proxy settings (everything here is loopback).
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .expect("client")
}

/// A running demo: the child, its printed lines and its base URL.
struct Demo {
    child: Child,
    lines: Vec<String>,
    base: String,
}

impl Demo {
    async fn start() -> Demo {
        let (child, lines) =
            start_until(&["demo", "--listen", "127.0.0.1:0"], "Ctrl-C to stop").await;
        let base = url_after(&lines, "whereis demo is running at ").to_owned();
        assert!(base.starts_with("http://127.0.0.1:"), "{base}");
        Demo { child, lines, base }
    }

    /// The API token printed in the curl lines.
    fn token(&self) -> String {
        let after = url_after(&self.lines, "Authorization: Bearer ");
        after.split('\'').next().unwrap_or_default().to_owned()
    }

    /// The username the instructions name as opted out.
    fn opted_out(&self) -> String {
        self.lines
            .iter()
            .find(|l| l.contains("has opted out"))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_else(|| panic!("no opted-out person in {:?}", self.lines))
            .to_owned()
    }

    async fn locate(&self, query: &str, token: &str) -> (reqwest::StatusCode, serde_json::Value) {
        let response = http()
            .get(format!("{}/api/v1/locate?q={query}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("locate");
        let status = response.status();
        (status, response.json().await.unwrap_or_default())
    }

    /// `POST /demo/chat` as the page's script sends it.
    async fn say(&self, text: &str) -> serde_json::Value {
        let response = http()
            .post(format!("{}/demo/chat", self.base))
            .json(&serde_json::json!({"text": text, "from": "jane.doe@example.com", "space": null}))
            .send()
            .await
            .expect("chat");
        assert_eq!(response.status(), 200);
        assert!(header(&response, "content-type").starts_with("application/json"));
        response.json().await.expect("chat JSON")
    }
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Every response of the app carries these.
fn assert_security_headers(response: &reqwest::Response) {
    let csp = header(response, "content-security-policy");
    assert!(
        csp.contains("script-src 'self'") && csp.contains("style-src 'self'"),
        "{csp:?}"
    );
    assert_eq!(header(response, "x-content-type-options"), "nosniff");
    assert_eq!(header(response, "x-frame-options"), "DENY");
    assert_eq!(header(response, "referrer-policy"), "no-referrer");
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_serves_lookups_against_the_built_in_simulator() {
    let mut demo = Demo::start().await;
    let (base, lines) = (demo.base.clone(), demo.lines.clone());
    assert!(
        lines
            .iter()
            .any(|l| l.contains("jdoe") && l.contains("Jane Doe")),
        "{lines:?}"
    );
    // Where to go and who to be, and a short list of people.
    assert!(
        lines
            .iter()
            .any(|l| l.contains("sign in as Jane Doe (jane.doe@example.com)")),
        "{lines:?}"
    );
    assert_eq!(
        url_after(&lines, "as a Webex user would: "),
        format!("{base}/demo/chat")
    );
    assert!(
        lines.iter().any(|l| l.contains("… and 30 more")),
        "{lines:?}"
    );
    assert!(lines.len() < 45, "the instructions fit a screen: {lines:?}");

    // Without a sign-in nobody is anybody; the printed token is Jane, and a header claiming
    // someone else changes nothing (the audit names Jane).
    let locate = format!("{base}/api/v1/locate?q=jdoe");
    let anonymous = http()
        .get(&locate)
        .header("X-Forwarded-Email", "mallory@elsewhere.example")
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let doc: serde_json::Value = http()
        .get(&locate)
        .bearer_auth(demo.token())
        .header("X-Whereis-Requester", "mallory@elsewhere.example")
        .header("X-Forwarded-Email", "mallory@elsewhere.example")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["devices"].as_array().map(Vec::len), Some(2), "{doc:#}");
    assert_eq!(doc["errors"], serde_json::json!([]));

    // Readiness as `serve` reports it: every simulated source probed, the websocket connected.
    let names: Vec<String> = lines
        .iter()
        .filter_map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
            [name, _kind, url] if url.starts_with("http://127.0.0.1:") => Some(name.to_owned()),
            _ => None,
        })
        .collect();
    // Four CMX/MSE servers, a Cisco Spaces tenant and a Meraki network.
    assert_eq!(names.len(), 6, "{lines:?}");
    let (status, ready) = common::readyz_until(&base, |doc| {
        names
            .iter()
            .all(|n| common::source_state(doc, n) != "unknown")
    })
    .await;
    assert_eq!(status, 200, "{ready:#}");
    for name in &names {
        assert_eq!(common::source_state(&ready, name), "ok", "{ready:#}");
    }
    let stream = |name: &str| {
        ready["streams"]
            .as_array()
            .and_then(|streams| streams.iter().find(|s| s["name"] == name))
            .map(|s| s["state"].as_str().unwrap_or_default().to_owned())
            .unwrap_or_else(|| panic!("no stream {name}: {ready:#}"))
    };
    assert_eq!(stream("webex-websocket"), "connected", "{ready:#}");
    assert!(
        ["connecting", "connected"].contains(&stream("spaces:spaces-hq").as_str()),
        "{ready:#}"
    );
    assert!(
        ["waiting", "receiving"].contains(&stream("meraki:meraki-riverside").as_str()),
        "{ready:#}"
    );

    // The local chat in JSON for curl: the bot's replies, with the maps saved as files.
    let chat: serde_json::Value = http()
        .get(format!("{base}/demo/chat?text=whereis%20jdoe"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let replies = chat["replies"].as_array().cloned().unwrap_or_default();
    assert_eq!(replies.len(), 4, "{chat:#}");
    assert_eq!(replies[0]["text"], "Looking for jdoe…");
    for reply in &replies[2..] {
        let map = reply["map"].as_str().unwrap_or_default();
        let png = std::fs::read(map).unwrap_or_default();
        assert!(png.starts_with(b"\x89PNG"), "{map}");
    }

    // The `find` command it suggests works while the demo runs.
    let find_line = lines
        .iter()
        .find(|l| l.contains(" find jdoe --config "))
        .expect("a find suggestion");
    let config = find_line.rsplit(' ').next().unwrap();
    let (code, found) = common::find_json("bsmith", std::path::Path::new(config)).await;
    assert_eq!(code, 0, "{found:#}");
    assert_eq!(found["devices"].as_array().map(Vec::len), Some(3));
    let audit = common::whereis(&["audit", "--config", config, "--json"]).await;
    let audit = String::from_utf8_lossy(&audit.stdout);
    assert!(
        audit
            .lines()
            .any(|l| l.contains("\"api\"") && l.contains("jane.doe@example.com")),
        "{audit}"
    );
    assert!(!audit.contains("mallory"), "{audit}");
    demo.child.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_signs_in_through_the_openid_double_and_keeps_the_opted_out_hidden() {
    let mut demo = Demo::start().await;
    let base = demo.base.clone();
    let browser = http();

    // /login → the provider (its prompt=none shortcut stands in for clicking Jane) → callback.
    let login = browser.get(format!("{base}/login")).send().await.unwrap();
    assert_eq!(login.status(), 303);
    let authorize = header(&login, "location");
    assert!(authorize.contains("/authorize?"), "{authorize}");
    let at_provider = browser
        .get(format!(
            "{authorize}&prompt=none&login_hint=jane.doe@example.com"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(at_provider.status(), 303);
    let callback = header(&at_provider, "location");
    assert!(
        callback.starts_with(&format!("{base}/auth/callback?")),
        "{callback}"
    );
    let signed_in = browser.get(&callback).send().await.unwrap();
    assert_eq!(signed_in.status(), 303);
    let cookie = signed_in
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("whereis_session="))
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_owned();

    // Not signed in, the search page asks for it; signed in, it shows Jane.
    let anonymous = browser.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let page = browser
        .get(format!("{base}/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_security_headers(&page);
    let html = page.text().await.unwrap();
    assert!(html.contains("jane.doe@example.com"), "{html}");
    let found = browser
        .get(format!("{base}/?q=bsmith"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(found.contains("Bob Smith"), "{found}");
    assert_eq!(found.matches("<img class=\"map\"").count(), 3, "{found}");

    // The opted-out person: refused everywhere, and no map of them anywhere.
    let hidden = demo.opted_out();
    assert_eq!(hidden, "hlarsen");
    let (status, refused) = demo.locate(&hidden, &demo.token()).await;
    assert_eq!(status, 403, "{refused:#}");
    assert!(
        refused["error"]
            .as_str()
            .is_some_and(|e| e.contains("opted out")),
        "{refused:#}"
    );
    assert!(!refused.to_string().contains("map"), "{refused:#}");
    let refused_page = browser
        .get(format!("{base}/?q={hidden}"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(refused_page.status(), 403);
    let refused_page = refused_page.text().await.unwrap();
    assert!(!refused_page.contains("<img"), "{refused_page}");
    let chat = demo.say(&format!("whereis {hidden}")).await;
    let replies = chat["replies"].as_array().cloned().unwrap_or_default();
    assert!(!replies.is_empty(), "{chat:#}");
    assert!(
        replies.iter().all(|r| r.get("image_url").is_none()),
        "{chat:#}"
    );
    assert!(chat.to_string().contains("opted out"), "{chat:#}");
    demo.child.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_chat_is_a_page_that_shows_the_bots_replies_and_maps() {
    let mut demo = Demo::start().await;
    let base = demo.base.clone();
    let page = http()
        .get(format!("{base}/demo/chat"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(header(&page, "content-type").starts_with("text/html"));
    assert_security_headers(&page);
    let html = scraper::Html::parse_document(&page.text().await.unwrap());
    let one = |selector: &str| {
        let parsed = scraper::Selector::parse(selector).expect("selector");
        html.select(&parsed).count()
    };
    assert_eq!(one("form#chat-form textarea[name=text]"), 1);
    assert_eq!(one("label[for=text]"), 1);
    assert_eq!(one("select[name=from] option"), 40);
    assert_eq!(
        one("select[name=from] option[selected][value=\"jane.doe@example.com\"]"),
        1
    );
    assert_eq!(one("ol#messages[aria-live]"), 1);
    assert_eq!(one("script:not([src]), style, [style]"), 0);

    // Its stylesheet and script: the right types, cacheable, under the same headers.
    for (selector, attribute, kind) in [
        ("link[rel=stylesheet]", "href", "text/css"),
        ("script[src]", "src", "text/javascript"),
    ] {
        let parsed = scraper::Selector::parse(selector).expect("selector");
        let path = html
            .select(&parsed)
            .next()
            .and_then(|e| e.value().attr(attribute))
            .expect("linked");
        let asset = http().get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(asset.status(), 200, "{path}");
        assert!(header(&asset, "content-type").starts_with(kind), "{path}");
        assert!(
            header(&asset, "cache-control").contains("max-age"),
            "{path}"
        );
        assert_security_headers(&asset);
        assert!(!asset.text().await.unwrap().is_empty());
    }

    // What the page's script does: the bot's replies in order, each map a real PNG.
    let chat = demo.say("whereis jdoe").await;
    let replies = chat["replies"].as_array().cloned().unwrap_or_default();
    assert_eq!(replies.len(), 4, "{chat:#}");
    assert_eq!(replies[0]["text"], "Looking for jdoe…");
    let images: Vec<&str> = replies
        .iter()
        .filter_map(|r| r["image_url"].as_str())
        .collect();
    assert_eq!(images.len(), 2, "{chat:#}");
    for url in images {
        let file = http().get(format!("{base}{url}")).send().await.unwrap();
        assert_eq!(file.status(), 200, "{url}");
        assert_eq!(header(&file, "content-type"), "image/png");
        assert_security_headers(&file);
        let png = file.bytes().await.unwrap();
        let decoded =
            image::load_from_memory_with_format(&png, image::ImageFormat::Png).expect("a PNG");
        assert!(decoded.width() >= 200 && decoded.height() >= 100, "{url}");
        let reply = replies
            .iter()
            .find(|r| r["image_url"] == url)
            .expect("reply");
        assert_eq!(reply["image_width"], decoded.width());
    }
    // Markdown is shown readably: `help` comes back as a list, escaped.
    let help = demo.say("help").await;
    let html = help["replies"][0]["html"].as_str().unwrap_or_default();
    assert!(
        html.contains("<li><code>") && html.contains("<strong>"),
        "{help:#}"
    );

    // Without the script, the form posts and the page comes back with the exchange.
    let posted = http()
        .post(format!("{base}/demo/chat"))
        .form(&[
            ("text", "whereis bsmith"),
            ("from", "jane.doe@example.com"),
            ("space", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);
    let posted = scraper::Html::parse_document(&posted.text().await.unwrap());
    let replies = scraper::Selector::parse("[data-reply]").expect("selector");
    let maps = scraper::Selector::parse("[data-reply] img").expect("selector");
    assert!(posted.select(&replies).count() >= 4);
    assert_eq!(posted.select(&maps).count(), 3);

    // Bad input is refused with a reason and reaches nobody.
    let bad = http()
        .post(format!("{base}/demo/chat"))
        .json(&serde_json::json!({"text": "hi", "from": "not an email"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let missing = http()
        .get(format!("{base}/demo/chat/files/9999.png"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    demo.child.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn sim_command_runs_the_scenario_servers() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("office.toml");
    std::fs::write(&scenario, common::OFFICE).unwrap();
    let (mut child, lines) = start_until(
        &["sim", "--scenario", scenario.to_str().unwrap()],
        "Ctrl-C to stop",
    )
    .await;
    let line = lines
        .iter()
        .find(|l| l.trim_start().starts_with("mse-1 "))
        .unwrap_or_else(|| panic!("mse-1 not listed: {lines:?}"));
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap();
    let response = reqwest::Client::new()
        .get(format!(
            "{url}/api/contextaware/v1/location/clients/CORP%5Ccmse"
        ))
        .basic_auth("mse", Some("pw-mse"))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body["WirelessClientLocation"]["macAddress"],
        "cc:00:00:00:00:01"
    );
    child.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn sim_command_rejects_a_bad_scenario_with_its_file_name() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("broken.toml");
    std::fs::write(&scenario, "[[servers]]\nname = \"x\"\nkind = \"cmx\"\nusername = \"u\"\npassword = \"p\"\nfaultt = \"hang\"\n").unwrap();
    let out = common::whereis(&["sim", "--scenario", scenario.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("broken.toml") && err.contains("faultt"),
        "{err}"
    );
}
