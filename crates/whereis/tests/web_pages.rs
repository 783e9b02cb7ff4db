//! The web pages of `serve` (`/`, `/?q=`, `/me`, `/api/v1/people`), over HTTP against the real
//! server on a loopback port and the simulated office, read with an HTML parser as a browser would.

mod common;

use std::sync::Arc;

use common::Office;
use scraper::{Html, Selector};
use tokio::net::TcpListener;
use whereis::config::Config;
use whereis::lookup::Finder;
use whereis::privacy::{Clock, ManualClock, SystemClock};
use whereis::server;
use whereis::store::AuditFilter;

/// The header an authenticating proxy on loopback names the requester in (`common::WEB_TEST_PROXY`).
const REQUESTER: &str = "X-Whereis-Requester";
const JANE: &str = "jane.doe@example.com";
const BO: &str = "bo.wong@example.com";

/// A running server, its finder (to read the audit log) and a client.
struct Web {
    base: String,
    finder: Arc<Finder>,
    client: reqwest::Client,
    office: Office,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Web {
    /// The office with its directory, requesters named by the proxy header, and `extra` TOML.
    async fn start(extra: &str) -> Web {
        Web::start_with("", extra).await
    }

    /// As [`Web::start`], with `web` lines added to the `[web]` section.
    async fn start_with(web: &str, extra: &str) -> Web {
        Web::start_at(web, extra, Arc::new(SystemClock)).await
    }

    /// As [`Web::start_with`], with the privacy rules reading `clock`.
    async fn start_at(web: &str, extra: &str, clock: Arc<dyn Clock>) -> Web {
        let office = Office::start().await;
        let mut people = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/people.csv"
        ))
        .expect("people fixture");
        // More namesakes than a suggestion list may hold.
        for n in 1..=14 {
            people.push_str(&format!("sam{n},Sam Namesake{n},sam{n}@example.com,\n"));
        }
        std::fs::write(office.dir.path().join("people.csv"), people).expect("write directory");
        let path = office.config(
            "web.toml",
            &format!(
                "{}\n{}{web}\n[directory]\nkind = \"file\"\npath = \"people.csv\"\n{extra}",
                common::VARIANTS_AND_TIMEOUTS,
                common::WEB_TEST_PROXY
            ),
            &office.all_sources(),
        );
        let config = Config::load(&path).expect("config loads");
        let finder = Arc::new(
            Finder::from_config_with_clock(&config, clock)
                .await
                .expect("finder starts"),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(server::serve(
            listener,
            server::router(Arc::clone(&finder), None),
            async move {
                let _ = stopped.await;
            },
        ));
        Web {
            base,
            finder,
            client: reqwest::Client::new(),
            office,
            _stop: stop,
        }
    }

    /// `GET path` as `requester`: status, headers, body.
    async fn get(&self, path: &str, requester: &str) -> (u16, reqwest::header::HeaderMap, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .header(REQUESTER, requester)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, headers, response.text().await.expect("body"))
    }

    /// `GET path` as `requester`, parsed.
    async fn page(&self, path: &str, requester: &str) -> (u16, Html) {
        let (status, headers, body) = self.get(path, requester).await;
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(
            content_type.starts_with("text/html"),
            "{path}: {content_type}"
        );
        (status, Html::parse_document(&body))
    }

    /// `POST path` with a form body as `requester`: status and the page it ends on.
    async fn post(&self, path: &str, requester: &str, form: &[(&str, &str)]) -> (u16, Html) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .header(REQUESTER, requester)
            .form(form)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (
            status,
            Html::parse_document(&response.text().await.expect("body")),
        )
    }

    /// Whether `/me` says `requester` has opted out.
    async fn opted_out(&self, requester: &str) -> bool {
        let (status, me) = self.page("/me", requester).await;
        assert_eq!(status, 200);
        let state = one(&me, "[data-opted-out]");
        match state.value().attr("data-opted-out") {
            Some("true") => true,
            Some("false") => false,
            other => panic!("data-opted-out = {other:?}"),
        }
    }

    /// The CSRF token of the opt-out (or opt-in) form on `/me`.
    async fn csrf(&self, requester: &str) -> String {
        let (_, me) = self.page("/me", requester).await;
        one(
            &me,
            "form[action^=\"/me/opt\"] input[type=hidden][name=csrf]",
        )
        .value()
        .attr("value")
        .expect("csrf value")
        .to_owned()
    }
}

fn select<'a>(page: &'a Html, selector: &str) -> Vec<scraper::ElementRef<'a>> {
    let parsed = Selector::parse(selector).expect("selector");
    page.select(&parsed).collect()
}

fn one<'a>(page: &'a Html, selector: &str) -> scraper::ElementRef<'a> {
    let found = select(page, selector);
    assert_eq!(found.len(), 1, "{selector} in {}", page.html());
    found[0]
}

fn text(element: scraper::ElementRef<'_>) -> String {
    element
        .text()
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn assert_security_headers(what: &str, headers: &reqwest::header::HeaderMap) {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{what}: no {name}"))
            .to_owned()
    };
    assert_eq!(
        header("content-security-policy"),
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        "{what}"
    );
    assert_eq!(header("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(header("referrer-policy"), "no-referrer", "{what}");
    assert_eq!(header("x-frame-options"), "DENY", "{what}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_search_page_has_its_form_its_assets_and_nothing_inline() {
    let web = Web::start("").await;
    let (status, headers, body) = web.get("/", JANE).await;
    assert_eq!(status, 200, "{body}");
    assert_security_headers("/", &headers);
    let page = Html::parse_document(&body);
    let form = one(&page, "form[role=search][action='/'][method=get]");
    let input = one(&page, "form[role=search] input[name=q]");
    let id = input.value().id().expect("the box has an id");
    let label = one(&page, &format!("label[for={id}]"));
    assert_eq!(text(label), "Who are you looking for?");
    assert_eq!(input.value().attr("role"), Some("combobox"));
    assert_eq!(input.value().attr("aria-expanded"), Some("false"));
    assert!(form.html().contains("type=\"submit\""), "a submit button");
    assert!(
        text(one(&page, "header")).contains(JANE),
        "the signed-in email"
    );
    assert_eq!(select(&page, "main").len(), 1);
    // No inline script or style anywhere: the policy would block it.
    assert!(select(&page, "script:not([src])").is_empty());
    assert!(select(&page, "style, [style]").is_empty());
    for (selector, attribute, content_type) in [
        ("link[rel=stylesheet]", "href", "text/css"),
        ("script[src]", "src", "text/javascript"),
    ] {
        let url = one(&page, selector)
            .value()
            .attr(attribute)
            .expect("asset URL")
            .to_owned();
        assert!(url.starts_with("/assets/"), "{url}");
        let response = reqwest::get(format!("{}{url}", web.base))
            .await
            .expect("asset");
        assert_eq!(response.status().as_u16(), 200, "{url}");
        let headers = response.headers();
        assert!(
            headers["content-type"]
                .to_str()
                .expect("ascii")
                .starts_with(content_type),
            "{url}"
        );
        assert!(
            headers["cache-control"]
                .to_str()
                .expect("ascii")
                .contains("immutable"),
            "{url}"
        );
        assert_security_headers(&url, headers);
    }
    let (status, _, _) = web.get("/assets/app.0000000000000000.css", JANE).await;
    assert_eq!(status, 404, "an unknown asset");
    let (_, headers, _) = web.get("/me", JANE).await;
    assert_security_headers("/me", &headers);
    let (_, headers, _) = web.get("/api/v1/locate?q=jdoe", JANE).await;
    assert_security_headers("/api/v1/locate", &headers);
    let (_, headers, _) = web.get("/healthz", JANE).await;
    assert_security_headers("/healthz", &headers);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_username_renders_a_card_per_device_with_its_map_and_is_audited_as_web() {
    let web = Web::start("").await;
    let (status, page) = web.page("/?q=jdoe", JANE).await;
    assert_eq!(status, 200, "{}", page.html());
    let cards = select(&page, "article[data-device-mac]");
    let macs: Vec<&str> = cards
        .iter()
        .filter_map(|card| card.value().attr("data-device-mac"))
        .collect();
    assert_eq!(macs, ["00:11:22:33:44:55", "00:11:22:33:44:66"]);
    for (i, card) in cards.iter().enumerate() {
        let card_text = text(*card);
        assert!(
            card_text.contains(&format!("Device {} of 2", i + 1)),
            "{card_text}"
        );
        assert!(card_text.contains("seen "), "{card_text}");
        assert!(card_text.contains(" ago"), "{card_text}");
        assert!(card_text.contains("via "), "{card_text}");
        let img = Selector::parse("img").expect("selector");
        let img = card.select(&img).next().expect("a map in the card");
        for attribute in ["width", "height"] {
            let value: u32 = img
                .value()
                .attr(attribute)
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("img {attribute}"));
            assert!(value > 0);
        }
        assert!(!img.value().attr("alt").unwrap_or_default().is_empty());
        let src = img.value().attr("src").expect("src");
        assert!(src.starts_with("/api/v1/maps/"), "{src}");
        let response = web
            .client
            .get(format!("{}{src}", web.base))
            .header(REQUESTER, JANE)
            .send()
            .await
            .expect("map");
        assert_eq!(response.status().as_u16(), 200, "{src}");
        assert_eq!(response.headers()["content-type"], "image/png");
        let png = response.bytes().await.expect("png");
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{src} is a PNG");
    }
    let building = text(cards[0]);
    assert!(building.contains("Building 5"), "{building}");
    let pager = one(&page, "nav.pager");
    assert!(
        pager.value().attr("hidden").is_some(),
        "without JS every card is listed"
    );
    assert!(select(&page, "[role=alert]").is_empty(), "no error");

    let audit = web
        .finder
        .privacy()
        .store()
        .audit(&AuditFilter {
            target: Some("jdoe".to_owned()),
            requester: Some(JANE.to_owned()),
            since: None,
            limit: 10,
        })
        .await
        .expect("audit log");
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].channel, "web");
    assert_eq!(audit[0].outcome.as_str(), "found");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ambiguous_name_offers_a_pick_list() {
    let web = Web::start("").await;
    let (status, page) = web.page("/?q=Jane", JANE).await;
    assert_eq!(status, 200);
    let links: Vec<String> = select(&page, "ul.picks a")
        .iter()
        .filter_map(|a| a.value().attr("href").map(str::to_owned))
        .collect();
    assert_eq!(links, ["/?q=jdoe", "/?q=jroe"]);
    assert!(text(one(&page, "ul.picks")).contains("Jane Roe"));
    assert!(select(&page, "[data-device-mac]").is_empty());
    let (status, picked) = web.page(&links[0], JANE).await;
    assert_eq!(status, 200);
    assert_eq!(select(&picked, "article[data-device-mac]").len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn opting_out_takes_the_pages_csrf_token_and_then_hides_the_person() {
    let web = Web::start("").await;
    assert!(!web.opted_out(JANE).await);
    let token = web.csrf(JANE).await;
    let (status, page) = web.post("/me/optout", JANE, &[]).await;
    assert_eq!(status, 403, "no token: {}", page.html());
    let (status, _) = web.post("/me/optout", JANE, &[("csrf", "forged")]).await;
    assert_eq!(status, 403, "a forged token");
    let bos_token = web.csrf(BO).await;
    let (status, _) = web.post("/me/optout", JANE, &[("csrf", &bos_token)]).await;
    assert_eq!(status, 403, "someone else's token");
    assert!(!web.opted_out(JANE).await, "nothing changed");

    let (status, page) = web.post("/me/optout", JANE, &[("csrf", &token)]).await;
    assert_eq!(status, 200, "redirected to /me: {}", page.html());
    assert!(web.opted_out(JANE).await);

    let (status, page) = web.page("/?q=jdoe", BO).await;
    assert_eq!(status, 403);
    assert!(text(one(&page, "[role=alert]")).contains("opted out"));
    assert!(select(&page, "img, [data-device-mac]").is_empty());

    // Jane sees Bo's lookup, then opts back in.
    let (_, me) = web.page("/me", JANE).await;
    let rows = text(one(&me, "table.lookups tbody"));
    assert!(rows.contains(BO), "{rows}");
    assert!(rows.contains("opted out"), "{rows}");
    let (status, _) = web.post("/me/optin", JANE, &[("csrf", &token)]).await;
    assert_eq!(status, 200);
    assert!(!web.opted_out(JANE).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn past_the_rate_limit_a_message_and_nothing_looked_up() {
    let web = Web::start("[privacy]\nrate_limit_per_hour = 1\n").await;
    let (status, _) = web.page("/?q=jdoe", JANE).await;
    assert_eq!(status, 200);
    let (status, page) = web.page("/?q=bwong", JANE).await;
    assert_eq!(status, 429);
    assert!(text(one(&page, "[role=alert]")).contains("limit of 1 lookups per hour"));
    assert!(select(&page, "[data-device-mac]").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_sources_are_named_beside_the_devices_found() {
    let web = Web::start("").await;
    let broken = web.office.sim.servers()[0].name().to_owned();
    web.office
        .sim
        .server(&broken)
        .expect("server")
        .set_fault(whereis_sim::Fault::Http500);
    let (status, page) = web.page("/?q=jdoe", JANE).await;
    assert_eq!(status, 200);
    let notes = select(&page, ".note")
        .into_iter()
        .map(text)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(notes.contains(&broken), "{notes}");
    for server in web.office.sim.servers() {
        server.set_fault(whereis_sim::Fault::Http500);
    }
    let (status, page) = web.page("/?q=jdoe", JANE).await;
    assert_eq!(status, 502);
    assert!(text(one(&page, "[role=alert]")).contains("could not ask any location server"));
    assert!(select(&page, "[data-device-mac]").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn people_suggestions_are_at_most_ten_and_never_a_location() {
    let web = Web::start("").await;
    let (status, _, body) = web.get("/api/v1/people?q=Sam", JANE).await;
    assert_eq!(status, 200, "{body}");
    let doc: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let people = doc["people"].as_array().expect("people");
    assert!(!people.is_empty() && people.len() <= 10, "{body}");
    for person in people {
        let mut keys: Vec<&str> = person
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(keys, ["display_name", "email", "username"], "{person}");
    }
    let (_, _, body) = web.get("/api/v1/people?q=Jane", JANE).await;
    let doc: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let usernames: Vec<&str> = doc["people"]
        .as_array()
        .expect("people")
        .iter()
        .filter_map(|p| p["username"].as_str())
        .collect();
    assert_eq!(usernames, ["jdoe", "jroe"]);
    let (_, _, body) = web.get("/api/v1/people?q=", JANE).await;
    assert_eq!(body, r#"{"people":[]}"#);
    // Suggestions look nothing up.
    assert_eq!(
        web.office
            .sim
            .server("cmx-a")
            .expect("server")
            .request_count(),
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_requester_pages_say_how_to_sign_in() {
    let web = Web::start("").await;
    for path in ["/", "/?q=jdoe", "/me"] {
        let response = reqwest::get(format!("{}{path}", web.base))
            .await
            .expect("request");
        assert_eq!(response.status().as_u16(), 401, "{path}");
        assert!(response.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/html"));
        assert_security_headers(path, response.headers());
        let page = Html::parse_document(&response.text().await.expect("body"));
        assert_eq!(
            one(&page, "main a[href='/login']").value().attr("href"),
            Some("/login")
        );
        assert!(select(&page, "[data-device-mac]").is_empty());
    }
    let response = reqwest::get(format!("{}/api/v1/people?q=Jane", web.base))
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 401, "the API stays JSON");
    let doc: serde_json::Value = response.json().await.expect("JSON");
    assert!(doc["error"].is_string());
    assert_eq!(
        web.office
            .sim
            .server("cmx-a")
            .expect("server")
            .request_count(),
        0
    );
}

const ROSTER_ON: &str = "building_roster = true\n";
const ANNA: &str = "anna.smith@example.com";

/// The usernames a roster page lists, in order.
fn roster_people(page: &Html) -> Vec<String> {
    select(page, "tr[data-person]")
        .into_iter()
        .map(|row| {
            row.value()
                .attr("data-person")
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_building_roster_is_off_unless_configured() {
    let web = Web::start("").await;
    let (status, page) = web.page("/buildings/Building%205", BO).await;
    assert_eq!(status, 404, "{}", page.html());
    assert!(roster_people(&page).is_empty());
    let (_, search) = web.page("/", BO).await;
    assert!(select(&search, "#roster-form").is_empty());
    let audit = web
        .finder
        .privacy()
        .store()
        .audit(&AuditFilter::default())
        .await
        .expect("audit");
    assert!(
        audit.is_empty(),
        "nothing listed, nothing audited: {audit:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_roster_lists_a_buildings_people_leaves_out_the_opted_out_and_audits_each() {
    let web = Web::start_with(ROSTER_ON, "").await;
    // The search page offers the roster, and the form leads to the building's page.
    let (_, search) = web.page("/", BO).await;
    one(
        &search,
        "form#roster-form[action=\"/buildings\"] input[name=name]",
    );
    let (status, page) = web.page("/buildings?name=Building+5", BO).await;
    assert_eq!(status, 200);
    assert_eq!(text(one(&page, "h1")), "Everyone in Building 5");
    // By display name: Anna Smith, Dee Dual, Jane Doe, Lee Case.
    assert_eq!(roster_people(&page), ["asmith", "dual", "jdoe", "lcase"]);
    let anna = one(&page, "tr[data-person=asmith]");
    assert!(text(anna).contains("Anna Smith"), "{}", text(anna));
    assert!(text(anna).contains("Level 3"), "{}", text(anna));
    assert!(text(anna).contains("2 devices"), "{}", text(anna));
    assert!(text(anna).contains("ago"), "{}", text(anna));
    one(&page, "tr[data-person=asmith] a[href=\"/?q=asmith\"]");
    // Nobody from another building.
    let (_, other) = web.page("/buildings/Block%20A", BO).await;
    assert_eq!(roster_people(&other), ["asmith", "bwong"]);

    // Each listed person sees the view in "who looked for me".
    let (_, me) = web.page("/me", ANNA).await;
    let rows = text(one(&me, "table.lookups tbody"));
    assert!(rows.contains(BO) && rows.contains("web-roster"), "{rows}");

    // Jane opts out: the roster leaves her out, and her audit log gets nothing new.
    web.finder.privacy().opt_out("jdoe").await.expect("opt out");
    let jdoe_rows = |entries: &[whereis::store::AuditEntry]| {
        entries.iter().filter(|e| e.target == "jdoe").count()
    };
    let store = web.finder.privacy().store();
    let before = jdoe_rows(&store.audit(&AuditFilter::default()).await.expect("audit"));
    let (status, page) = web.page("/buildings/Building%205", BO).await;
    assert_eq!(status, 200);
    assert_eq!(roster_people(&page), ["asmith", "dual", "lcase"]);
    assert!(!page.html().contains("Jane Doe"));
    let audit = store.audit(&AuditFilter::default()).await.expect("audit");
    assert_eq!(
        jdoe_rows(&audit),
        before,
        "an opted-out person leaves no trace"
    );
    let roster_rows: Vec<_> = audit
        .iter()
        .filter(|e| e.channel == "web-roster" && e.requester == BO)
        .map(|e| e.target.as_str())
        .collect();
    // Building 5 twice (4 then 3 people) and Block A once (2 people).
    assert_eq!(roster_rows.len(), 9, "{roster_rows:?}");
}

/// Unix milliseconds of an RFC 3339 instant.
fn at(instant: &str) -> i64 {
    instant
        .parse::<jiff::Timestamp>()
        .expect("an instant")
        .as_millisecond()
}

#[tokio::test(flavor = "multi_thread")]
async fn under_opt_in_and_working_hours_the_roster_lists_only_who_allows_it_now() {
    // Wednesday 2 December 2026, 10:00 in Zurich.
    let clock = Arc::new(ManualClock::at_ms(at("2026-12-02T10:00:00+01:00")));
    let web = Web::start_at(
        ROSTER_ON,
        "[privacy]\ndefault = \"opt-in\"\nworking_hours = \"08:00-18:30\"\n\
         working_days = [\"mon-fri\"]\ntimezone = \"Europe/Zurich\"\n",
        Arc::clone(&clock) as Arc<dyn Clock>,
    )
    .await;
    let store = web.finder.privacy().store();
    let (status, page) = web.page("/buildings/Building%205", BO).await;
    assert_eq!(status, 200, "{}", page.html());
    assert!(
        roster_people(&page).is_empty(),
        "nobody has opted in: {:?}",
        roster_people(&page)
    );
    assert!(!page.html().contains("Jane Doe"), "{}", page.html());
    let listed = |entries: &[whereis::store::AuditEntry]| {
        entries
            .iter()
            .filter(|e| !e.target.starts_with("building:"))
            .count()
    };
    let audit = store.audit(&AuditFilter::default()).await.expect("audit");
    assert_eq!(
        listed(&audit),
        0,
        "nobody listed, nobody audited: {audit:?}"
    );

    web.finder.privacy().opt_in("jdoe").await.expect("opt in");
    web.finder.privacy().opt_in("asmith").await.expect("opt in");
    let (_, page) = web.page("/buildings/Building%205", BO).await;
    assert_eq!(roster_people(&page), ["asmith", "jdoe"]);

    // 18:29 is still inside the window, 18:30 is not.
    clock.set_ms(at("2026-12-02T18:29:00+01:00"));
    let (_, page) = web.page("/buildings/Building%205", BO).await;
    assert_eq!(roster_people(&page), ["asmith", "jdoe"]);
    clock.set_ms(at("2026-12-02T18:30:00+01:00"));
    let (status, page) = web.page("/buildings/Building%205", BO).await;
    assert_eq!(status, 200);
    assert!(
        roster_people(&page).is_empty(),
        "{:?}",
        roster_people(&page)
    );
    // Saturday at 10:00 is outside the working days.
    clock.set_ms(at("2026-12-05T10:00:00+01:00"));
    let (_, page) = web.page("/buildings/Building%205", BO).await;
    assert!(
        roster_people(&page).is_empty(),
        "{:?}",
        roster_people(&page)
    );
    // Two views listed two people each; the rest listed nobody.
    let audit = store.audit(&AuditFilter::default()).await.expect("audit");
    assert_eq!(listed(&audit), 4, "{audit:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_roster_view_counts_once_against_the_rate_limit() {
    let web = Web::start_with(ROSTER_ON, "[privacy]\nrate_limit_per_hour = 1\n").await;
    let (status, page) = web.page("/buildings/Building%205", BO).await;
    assert_eq!(status, 200, "{}", page.html());
    assert_eq!(roster_people(&page).len(), 4, "four people, one lookup");
    let (status, page) = web.page("/?q=jdoe", BO).await;
    assert_eq!(status, 429, "the view used the hour's only lookup");
    assert!(select(&page, "[data-device-mac]").is_empty());
    let (status, page) = web.page("/buildings/Building%205", BO).await;
    assert_eq!(status, 429);
    assert!(roster_people(&page).is_empty());
    assert!(text(one(&page, "main")).contains("limit of 1 lookups per hour"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_roster_names_the_sources_that_failed_and_rejects_odd_names() {
    let web = Web::start_with(ROSTER_ON, "").await;
    web.office
        .sim
        .server("cmx-b")
        .expect("cmx-b")
        .set_fault(whereis_sim::Fault::Http500);
    let (status, page) = web.page("/buildings/Building%205", BO).await;
    assert_eq!(status, 200);
    // Lee Case is only on cmx-b; the others are still listed.
    assert_eq!(roster_people(&page), ["asmith", "dual", "jdoe"]);
    assert!(text(one(&page, "[role=note]")).contains("cmx-b"));

    let (status, _) = web.page("/buildings/%20%20", BO).await;
    assert_eq!(status, 400);
    let (status, _) = web
        .page(&format!("/buildings/{}", "x".repeat(300)), BO)
        .await;
    assert_eq!(status, 400);
    let (status, _) = web.page("/buildings/B%005", BO).await;
    assert_eq!(status, 400);
}

/// The CSRF token of any form on `page`.
fn form_token(page: &Html) -> String {
    select(page, "form input[name=csrf]")
        .first()
        .and_then(|input| input.value().attr("value"))
        .expect("a form with a token")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_privacy_page_changes_precision_hours_and_audience_and_the_roster_follows() {
    let web = Web::start_with(ROSTER_ON, "").await;
    let (_, me) = web.page("/me", JANE).await;
    let token = form_token(&me);
    // A forged form changes nothing.
    let (status, _) = web
        .post(
            "/me/precision",
            JANE,
            &[("csrf", "forged"), ("precision", "floor")],
        )
        .await;
    assert_eq!(status, 403);
    // Floor: the search page shows the plan without a marker, and no MAC.
    let (status, _) = web
        .post(
            "/me/precision",
            JANE,
            &[("csrf", &token), ("precision", "floor")],
        )
        .await;
    assert_eq!(status, 200, "redirected back to /me");
    let (_, me) = web.page("/me", JANE).await;
    assert_eq!(
        one(&me, "[data-precision]").value().attr("data-precision"),
        Some("floor")
    );
    let (_, search) = web.page("/?q=jdoe", BO).await;
    let html = search.html();
    assert!(!html.contains("00:11:22:33:44"), "{html}");
    assert!(
        select(&search, "[data-marker-x]").is_empty(),
        "no marker position"
    );
    assert!(
        select(&search, "[data-zoom]").is_empty(),
        "nothing to zoom on"
    );
    assert!(html.contains("shown to the floor only"), "{html}");
    // The roster shows her floor to Bo, and her building only once she says so.
    let (_, roster) = web.page("/buildings/Building%205", BO).await;
    assert!(text(one(&roster, "tr[data-person=jdoe]")).contains("Level 3"));
    web.post(
        "/me/precision",
        JANE,
        &[("csrf", &token), ("precision", "building")],
    )
    .await;
    let (_, roster) = web.page("/buildings/Building%205", BO).await;
    assert!(!text(one(&roster, "tr[data-person=jdoe]")).contains("Level 3"));
    // Bad hours change nothing; good ones are shown.
    let (status, page) = web
        .post(
            "/me/hours",
            JANE,
            &[("csrf", &token), ("hours", "18:00-08:00")],
        )
        .await;
    assert_eq!(status, 400, "{}", page.html());
    web.post(
        "/me/hours",
        JANE,
        &[("csrf", &token), ("hours", "00:00-24:00 mon-sun")],
    )
    .await;
    let (_, me) = web.page("/me", JANE).await;
    assert!(text(one(&me, "[data-hours]")).contains("00:00-24:00"));
    // Blocking Bo: he no longer finds her, on the search page or in the roster.
    web.post(
        "/me/share",
        JANE,
        &[("csrf", &token), ("action", "block"), ("email", BO)],
    )
    .await;
    let (status, page) = web.page("/?q=jdoe", BO).await;
    assert_eq!(status, 403);
    assert!(
        page.html().contains("jdoe is not available"),
        "{}",
        page.html()
    );
    let (_, roster) = web.page("/buildings/Building%205", BO).await;
    assert!(!roster_people(&roster).contains(&"jdoe".to_owned()));
    let (_, me) = web.page("/me", JANE).await;
    assert!(
        me.html().contains("never: bo.wong@example.com"),
        "{}",
        me.html()
    );
    // Favourites on the web: Bo stars her; she is simply absent while he is blocked.
    let (_, favourites) = web.page("/favourites", BO).await;
    let bo_token = form_token(&favourites);
    web.post(
        "/favourites/star",
        BO,
        &[("csrf", &bo_token), ("who", "jdoe")],
    )
    .await;
    let (_, favourites) = web.page("/favourites", BO).await;
    assert!(select(&favourites, "ul.favourites li").is_empty());
    assert!(
        favourites.html().contains("None of your 1 starred"),
        "{}",
        favourites.html()
    );
    web.post(
        "/me/share",
        JANE,
        &[("csrf", &token), ("action", "unblock"), ("email", BO)],
    )
    .await;
    let (_, favourites) = web.page("/favourites", BO).await;
    let listed = text(one(&favourites, "ul.favourites li[data-username=jdoe]"));
    assert!(
        listed.contains("Building 5") && !listed.contains("Level 3"),
        "{listed}"
    );
}
