//! The web pages in a real browser (headless Chromium through chromedriver), as a person uses them:
//! signing in through the OpenID provider's form, suggestions while typing, device cards with their
//! maps, previous/next, an opted-out colleague, the keyboard alone, and a 360 px phone screen.
//! Every step a person would look at is saved under `target/browser-screenshots/`.
//!
//! Without Chromium and chromedriver these tests say so loudly and skip; with `CI` set they fail.

mod common;
#[path = "common/browser.rs"]
mod web_browser;

use std::sync::Arc;

use common::{Office, VARIANTS_AND_TIMEOUTS};
use fantoccini::key::Key;
use serde_json::{json, Value};
use web_browser::Browser;
use whereis::config::Config;
use whereis::lookup::Finder;
use whereis_floormap::MARKER_COLOR;
use whereis_sim::{OidcDouble, OidcPerson};

const JANE: &str = "jane.doe@example.com";
const CLIENT_ID: &str = "whereis";
const CLIENT_SECRET: &str = "client-secret-for-tests";
/// Somebody in the directory who has opted out.
const OPTED_OUT: &str = "bwong";

/// A desktop window.
const WIDE: (u32, u32) = (1280, 900);

/// The real server signing people in with OpenID Connect against the provider double, with the
/// office's directory (so "jan" finds Jane Doe) and one person opted out.
struct Site {
    base: String,
    idp: OidcDouble,
    _office: Office,
}

async fn site() -> Site {
    let office = Office::start().await;
    let idp = OidcDouble::start(vec![
        OidcPerson::new(JANE, "Jane Doe", "jdoe"),
        OidcPerson::new("bob@example.com", "Bob Smith", "bsmith"),
    ])
    .await
    .expect("provider double");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    idp.register_client(
        CLIENT_ID,
        CLIENT_SECRET,
        &[&format!("{base}/auth/callback")],
    );
    std::fs::write(office.dir.path().join("oidc.secret"), CLIENT_SECRET).expect("secret");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/people.csv"),
        office.dir.path().join("people.csv"),
    )
    .expect("directory");
    let config = office.config(
        "browser.toml",
        &format!(
            "{VARIANTS_AND_TIMEOUTS}\n\n[server]\npublic_url = {base:?}\n\n\
             [directory]\nkind = \"file\"\npath = \"people.csv\"\n\n\
             [web]\nauth = \"oidc\"\nissuer = {:?}\nclient_id = {CLIENT_ID:?}\nclient_secret_file = \"oidc.secret\"\nbuilding_roster = true\n",
            idp.issuer()
        ),
        &office.all_sources(),
    );
    let loaded = Config::load(&config).expect("config");
    let finder = Arc::new(Finder::from_config(&loaded).await.expect("finder"));
    finder.privacy().opt_out(OPTED_OUT).await.expect("opt out");
    tokio::spawn(whereis::server::serve(
        listener,
        whereis::server::router(finder, None),
        std::future::pending(),
    ));
    Site {
        base,
        idp,
        _office: office,
    }
}

/// Signs Jane in through the provider's login form (a click on her button) and waits for the search
/// page.
async fn sign_in(browser: &mut Browser, site: &Site) {
    browser.goto(&format!("{}/login", site.base)).await;
    browser
        .wait_for(
            "the provider's login form",
            "document.querySelector('form#login')",
        )
        .await;
    browser
        .click(&format!("form#login button[name=email][value='{JANE}']"))
        .await;
    browser
        .wait_for(
            "the search page",
            "location.pathname === '/' && document.querySelector('form[role=search] input[name=q]')",
        )
        .await;
}

/// Waits for the result page of `username`: its cards, and every map drawn.
async fn wait_for_cards(browser: &mut Browser, username: &str) -> Vec<String> {
    let macs = browser
        .wait_for(
            &format!("the device cards of {username}"),
            &format!(
                "new URLSearchParams(location.search).get('q') === {:?} && \
                 document.querySelectorAll('article[data-device-mac]').length > 0 && \
                 [...document.querySelectorAll('article[data-device-mac]')].map(c => c.dataset.deviceMac)",
                username
            ),
        )
        .await;
    browser
        .wait_for(
            "every map to load",
            "[...document.images].every(img => img.complete && img.naturalWidth > 0)",
        )
        .await;
    strings(&macs)
}

/// The suggestions under the search box once it shows some: each option's text.
async fn wait_for_suggestions(browser: &mut Browser) -> Vec<String> {
    let options = browser
        .wait_for(
            "suggestions under the search box",
            "(() => { const list = document.getElementById('q-suggestions');\
               const options = [...list.querySelectorAll('[role=option]')];\
               return !list.hidden && list.offsetHeight > 0 && options.length > 0 && \
                 options.map(o => o.innerText.replace(/\\s+/g, ' ').trim()); })()",
        )
        .await;
    strings(&options)
}

/// The MACs of the cards on screen (not hidden by the pager).
async fn cards_on_screen(browser: &Browser) -> Vec<String> {
    let shown = browser
        .js(
            "return [...document.querySelectorAll('article[data-device-mac]')]\
               .filter(c => c.offsetParent !== null).map(c => c.dataset.deviceMac);",
            vec![],
        )
        .await;
    strings(&shown)
}

/// Whether the page scrolls sideways: (document width, viewport width, what sticks out).
async fn overflow(browser: &Browser) -> (u64, u64, Vec<String>) {
    let found = browser
        .js(
            "const width = window.innerWidth;\
             const out = [...document.querySelectorAll('body *')]\
               .filter(e => e.getBoundingClientRect().right > width + 0.5)\
               .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + \
                 (e.className && typeof e.className === 'string' ? '.' + e.className.split(' ').join('.') : ''));\
             return [document.documentElement.scrollWidth, width, out];",
            vec![],
        )
        .await;
    (
        found[0].as_u64().unwrap_or(u64::MAX),
        found[1].as_u64().unwrap_or(0),
        strings(&found[2]),
    )
}

async fn assert_no_sideways_scrolling(browser: &Browser, page: &str) {
    let (document, viewport, sticking_out) = overflow(browser).await;
    assert_eq!(viewport, 360, "{page}: the viewport is a phone's");
    assert!(
        document <= viewport,
        "{page} scrolls sideways at {viewport} px: the document is {document} px wide; \
         sticking out: {sticking_out:?}"
    );
}

/// The texts of the elements `css` matches that take more than one line on screen.
async fn on_several_lines(browser: &Browser, css: &str) -> Vec<String> {
    let found = browser
        .js(
            "return [...document.querySelectorAll(arguments[0])].filter(e => {\
               const range = document.createRange(); range.selectNodeContents(e);\
               const tops = new Set([...range.getClientRects()].filter(r => r.width > 0)\
                 .map(r => Math.round(r.top)));\
               return tops.size > 1; }).map(e => e.innerText);",
            vec![json!(css)],
        )
        .await;
    strings(&found)
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn key(key: Key) -> String {
    char::from(key).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn signing_in_through_the_providers_form_lands_on_the_search_page_with_her_email() {
    let Some(mut browser) = Browser::start("sign-in", WIDE.0, WIDE.1).await else {
        return;
    };
    let site = site().await;
    browser.goto(&format!("{}/", site.base)).await;
    browser
        .wait_for(
            "the sign-in prompt",
            "document.querySelector('main a.button')",
        )
        .await;
    assert_eq!(browser.text("main h1").await, "Please sign in");
    assert_eq!(browser.text("main a.button").await, "Sign in");
    browser.screenshot("please-sign-in").await;

    browser.click("main a.button").await;
    browser
        .wait_for(
            "the provider's login form",
            "document.querySelector('form#login')",
        )
        .await;
    assert!(
        browser.url().await.starts_with(&site.idp.issuer()),
        "the provider's page: {}",
        browser.url().await
    );
    browser.screenshot("provider-login-form").await;

    browser
        .click(&format!("form#login button[name=email][value='{JANE}']"))
        .await;
    browser
        .wait_for(
            "the search page",
            "location.pathname === '/' && document.querySelector('form[role=search] input[name=q]')",
        )
        .await;
    assert_eq!(browser.url().await, format!("{}/", site.base));
    let who = browser.text("header.top .who").await;
    assert!(who.contains(JANE), "the header shows her email: {who:?}");
    assert!(
        browser.find_all("[data-device-mac]").await.is_empty(),
        "nothing looked up yet"
    );
    browser.screenshot("search-page").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn typing_part_of_a_name_suggests_her_and_picking_her_shows_her_devices() {
    let Some(mut browser) = Browser::start("suggestions", WIDE.0, WIDE.1).await else {
        return;
    };
    let site = site().await;
    sign_in(&mut browser, &site).await;
    browser
        .find("form[role=search] input[name=q]")
        .await
        .send_keys("jan")
        .await
        .expect("type");
    let options = wait_for_suggestions(&mut browser).await;
    assert!(
        options.iter().any(|o| o.starts_with("Jane Doe")),
        "{options:?}"
    );
    assert!(
        options.iter().all(|o| !o.contains("Bo Wong")),
        "only people matching “jan”: {options:?}"
    );
    let expanded = browser.find("#q").await.attr("aria-expanded").await;
    assert_eq!(expanded.expect("attribute").as_deref(), Some("true"));
    browser.screenshot("suggestions-for-jan").await;

    let jane = options
        .iter()
        .position(|o| o.starts_with("Jane Doe"))
        .expect("Jane Doe is suggested");
    browser.click(&format!("#q-option-{jane}")).await;
    let macs = wait_for_cards(&mut browser, "jdoe").await;
    assert_eq!(macs, ["00:11:22:33:44:55", "00:11:22:33:44:66"]);
    assert_eq!(browser.text("#results-heading").await, "Jane Doe (jdoe)");
    assert_eq!(browser.text(".results .count").await, "2 devices found.");
    let sentence = browser.text("article[data-device-mac] .sentence").await;
    assert!(
        sentence.starts_with("Jane Doe is ASSOCIATED to CORP in Building 5 on Level 3"),
        "the first card says where her laptop is: {sentence:?}"
    );
    assert_eq!(cards_on_screen(&browser).await, ["00:11:22:33:44:55"]);
    browser.screenshot("jane-doe-devices").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_first_cards_map_has_loaded_with_the_marker_where_her_laptop_is() {
    let Some(mut browser) = Browser::start("map", WIDE.0, WIDE.1).await else {
        return;
    };
    let site = site().await;
    sign_in(&mut browser, &site).await;
    browser.goto(&format!("{}/?q=jdoe", site.base)).await;
    let macs = wait_for_cards(&mut browser, "jdoe").await;
    let laptop = &macs[0];
    let img = browser
        .wait_for(
            "the first card's map",
            "(() => { const img = document.querySelector('article[data-device-mac] img.map');\
               const card = img && img.closest('article');\
               return img && img.complete && img.naturalWidth > 0 && {\
                 src: img.getAttribute('src'), alt: img.alt,\
                 natural: [img.naturalWidth, img.naturalHeight],\
                 shown: img.getBoundingClientRect().width,\
                 card: card.getBoundingClientRect().width }; })()",
        )
        .await;
    browser.screenshot("map-on-first-card").await;
    let src = img["src"].as_str().expect("src");
    assert!(
        src.starts_with("/api/v1/maps/") && src.ends_with(".png"),
        "{src}"
    );
    assert!(
        img["alt"]
            .as_str()
            .is_some_and(|alt| alt.contains("Building 5")),
        "{img}"
    );
    let shown = img["shown"].as_f64().unwrap_or(f64::MAX);
    assert!(
        shown > 200.0 && shown <= img["card"].as_f64().unwrap_or(0.0),
        "the map fills its card and no more: {img}"
    );

    // The picture the browser shows, fetched again with its session: the marker where the API says.
    let cookie = browser.cookie("whereis_session").await;
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let response = http
        .get(format!("{}{src}", site.base))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("map");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/png");
    let png = image::load_from_memory(&response.bytes().await.expect("body"))
        .expect("a PNG")
        .to_rgb8();
    assert_eq!(
        json!([png.width(), png.height()]),
        img["natural"],
        "the browser decoded the same picture"
    );
    let doc: Value = http
        .get(format!("{}/api/v1/locate?q=jdoe", site.base))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("locate")
        .json()
        .await
        .expect("JSON");
    let map = &common::device(&doc, laptop)["map"];
    let marker = [
        map["marker"][0].as_u64().expect("marker x") as u32,
        map["marker"][1].as_u64().expect("marker y") as u32,
    ];
    assert_eq!(png.get_pixel(marker[0], marker[1]).0, MARKER_COLOR);

    // And in the browser itself: the decoded image has the marker colour there too.
    let pixel = browser
        .js(
            "const img = document.querySelector('article[data-device-mac] img.map');\
             const canvas = document.createElement('canvas');\
             canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;\
             const context = canvas.getContext('2d');\
             context.drawImage(img, 0, 0);\
             return [...context.getImageData(arguments[0], arguments[1], 1, 1).data].slice(0, 3);",
            vec![json!(marker[0]), json!(marker[1])],
        )
        .await;
    let pixel: Vec<u8> = pixel
        .as_array()
        .map(|p| {
            p.iter()
                .filter_map(|v| v.as_u64())
                .map(|v| v as u8)
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(pixel.len(), 3, "{pixel:?}");
    assert!(
        pixel
            .iter()
            .zip(MARKER_COLOR)
            .all(|(shown, marker)| shown.abs_diff(marker) <= 3),
        "the browser shows {pixel:?} at the marker, not {MARKER_COLOR:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn several_devices_are_shown_one_at_a_time_with_next_and_the_arrow_keys() {
    let Some(mut browser) = Browser::start("pager", WIDE.0, WIDE.1).await else {
        return;
    };
    let site = site().await;
    sign_in(&mut browser, &site).await;
    browser.goto(&format!("{}/?q=asmith", site.base)).await;
    let macs = wait_for_cards(&mut browser, "asmith").await;
    assert_eq!(macs.len(), 3, "{macs:?}");
    browser
        .wait_for(
            "the pager",
            "document.querySelector('.pager').offsetParent !== null",
        )
        .await;
    assert_eq!(browser.text("[data-pager-status]").await, "Device 1 of 3");
    assert_eq!(cards_on_screen(&browser).await, [macs[0].clone()]);
    assert_eq!(
        browser
            .text("article[data-device-mac]:not([hidden]) .of")
            .await,
        "Device 1 of 3"
    );
    browser.screenshot("device-1-of-3").await;

    browser.click("[data-pager=next]").await;
    assert_eq!(browser.text("[data-pager-status]").await, "Device 2 of 3");
    assert_eq!(cards_on_screen(&browser).await, [macs[1].clone()]);
    browser.screenshot("next-shows-device-2").await;

    browser.press(&key(Key::Right)).await;
    assert_eq!(browser.text("[data-pager-status]").await, "Device 3 of 3");
    assert_eq!(cards_on_screen(&browser).await, [macs[2].clone()]);
    assert_eq!(
        browser
            .text("article[data-device-mac]:not([hidden]) .of")
            .await,
        "Device 3 of 3"
    );
    browser.screenshot("right-arrow-shows-device-3").await;

    browser.press(&key(Key::Left)).await;
    assert_eq!(browser.text("[data-pager-status]").await, "Device 2 of 3");
    assert_eq!(cards_on_screen(&browser).await, [macs[1].clone()]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_opted_out_colleague_gets_the_refusal_and_no_picture() {
    let Some(mut browser) = Browser::start("opted-out", WIDE.0, WIDE.1).await else {
        return;
    };
    let site = site().await;
    sign_in(&mut browser, &site).await;
    browser
        .find("form[role=search] input[name=q]")
        .await
        .send_keys(&format!("Bo Wong{}", key(Key::Enter)))
        .await
        .expect("type");
    browser
        .wait_for(
            "the answer about Bo Wong",
            "new URLSearchParams(location.search).get('q') === 'Bo Wong' && \
             document.querySelector('.results [role=alert]')",
        )
        .await;
    assert_eq!(
        browser.text(".results [role=alert] h2").await,
        "Not available"
    );
    let refusal = browser.text(".results [role=alert] p").await;
    assert!(
        refusal.starts_with(&format!("{OPTED_OUT} has opted out")),
        "{refusal:?}"
    );
    let images = browser.js("return document.images.length;", vec![]).await;
    assert_eq!(images, json!(0), "no map, no picture at all");
    assert!(browser.find_all("[data-device-mac]").await.is_empty());
    browser.screenshot("opted-out-refusal").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cards_building_link_lists_who_is_there_without_the_opted_out_colleague() {
    let Some(mut browser) = Browser::start("roster", WIDE.0, WIDE.1).await else {
        return;
    };
    let site = site().await;
    sign_in(&mut browser, &site).await;
    // Anna's phone is in Block A, where Bo Wong (opted out) is too.
    browser.goto(&format!("{}/?q=asmith", site.base)).await;
    wait_for_cards(&mut browser, "asmith").await;
    let link = browser
        .wait_for(
            "the link to Block A's roster",
            "[...document.querySelectorAll('.roster-link a')].find(a => a.textContent === 'Everyone in Block A')",
        )
        .await;
    assert!(link.is_object(), "{link:?}");
    browser
        .goto(&format!("{}/buildings/Block%20A", site.base))
        .await;
    let people = browser
        .wait_for(
            "the roster of Block A",
            "document.querySelectorAll('tr[data-person]').length > 0 && \
             [...document.querySelectorAll('tr[data-person]')].map(r => r.dataset.person)",
        )
        .await;
    assert_eq!(strings(&people), ["asmith"], "Bo Wong opted out");
    assert_eq!(browser.text("h1").await, "Everyone in Block A");
    assert!(!browser.text("main").await.contains("Bo Wong"));
    browser.screenshot("block-a-roster").await;
    // Each name leads to that person's lookup.
    browser.click("tr[data-person=asmith] a").await;
    wait_for_cards(&mut browser, "asmith").await;
    browser.screenshot("anna-from-the-roster").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_keyboard_alone_finds_a_colleague() {
    let Some(mut browser) = Browser::start("keyboard", WIDE.0, WIDE.1).await else {
        return;
    };
    let site = site().await;
    sign_in(&mut browser, &site).await;
    // The page of an earlier search: nothing has the focus yet (the empty search page would put it
    // in the box by itself).
    browser.goto(&format!("{}/?q=asmith", site.base)).await;
    wait_for_cards(&mut browser, "asmith").await;
    let focused = browser
        .js("return document.activeElement === document.body;", vec![])
        .await;
    assert_eq!(focused, json!(true), "the page starts with nothing focused");

    let focused_element = "(() => { const e = document.activeElement;\
        return e.id || e.textContent.replace(/\\s+/g, ' ').trim(); })()";
    let mut stops = Vec::new();
    for _ in 0..10 {
        browser.press(&key(Key::Tab)).await;
        let stop = browser
            .js(&format!("return {focused_element};"), vec![])
            .await;
        let stop = stop.as_str().unwrap_or_default().to_owned();
        if stops.is_empty() {
            assert_eq!(stop, "Skip to content", "the first Tab stop");
            let on_screen = browser
                .js(
                    "return document.activeElement.getBoundingClientRect().left >= 0;",
                    vec![],
                )
                .await;
            assert_eq!(on_screen, json!(true), "the focused skip link is visible");
            browser.screenshot("tab-to-skip-link").await;
        }
        let in_the_box = stop == "q";
        stops.push(stop);
        if in_the_box {
            break;
        }
    }
    assert_eq!(
        stops.last().map(String::as_str),
        Some("q"),
        "Tab reaches the search box: {stops:?}"
    );
    assert!(stops.len() <= 8, "a few Tabs from the start: {stops:?}");

    // Replace the earlier query, type, and pick the first suggestion with ArrowDown and Enter.
    browser
        .client()
        .perform_actions(select_all())
        .await
        .expect("select all");
    browser.press("jan").await;
    let options = wait_for_suggestions(&mut browser).await;
    let value = browser
        .js("return document.activeElement.value;", vec![])
        .await;
    assert_eq!(value, json!("jan"));
    assert!(options[0].starts_with("Jane Doe"), "{options:?}");
    browser.press(&key(Key::Down)).await;
    let chosen = browser
        .js(
            "const box = document.getElementById('q');\
             const active = document.getElementById(box.getAttribute('aria-activedescendant'));\
             return active && active.getAttribute('aria-selected') === 'true' && active.innerText;",
            vec![],
        )
        .await;
    assert!(
        chosen.as_str().is_some_and(|c| c.starts_with("Jane Doe")),
        "ArrowDown highlights Jane Doe: {chosen}"
    );
    browser.screenshot("arrow-down-highlights-jane").await;
    browser.press(&key(Key::Enter)).await;
    let macs = wait_for_cards(&mut browser, "jdoe").await;
    assert_eq!(macs.len(), 2, "{macs:?}");
    assert_eq!(browser.text("#results-heading").await, "Jane Doe (jdoe)");
    browser.screenshot("enter-shows-her-devices").await;
}

/// Ctrl+A on the keyboard.
fn select_all() -> fantoccini::actions::KeyActions {
    use fantoccini::actions::{InputSource, KeyAction, KeyActions};
    let control = char::from(Key::Control);
    KeyActions::new("keyboard".to_owned())
        .then(KeyAction::Down { value: control })
        .then(KeyAction::Down { value: 'a' })
        .then(KeyAction::Up { value: 'a' })
        .then(KeyAction::Up { value: control })
}

#[tokio::test(flavor = "multi_thread")]
async fn on_a_360_px_phone_no_page_scrolls_sideways() {
    let Some(mut browser) = Browser::start("phone-360", 360, 800).await else {
        return;
    };
    let site = site().await;
    sign_in(&mut browser, &site).await;
    assert_no_sideways_scrolling(&browser, "the search page").await;
    browser.screenshot("search-page").await;

    browser
        .find("form[role=search] input[name=q]")
        .await
        .send_keys("jan")
        .await
        .expect("type");
    wait_for_suggestions(&mut browser).await;
    assert_no_sideways_scrolling(&browser, "the suggestions").await;
    browser.screenshot("suggestions").await;

    for (query, name) in [("jdoe", "two-devices"), ("asmith", "three-devices")] {
        browser.goto(&format!("{}/?q={query}", site.base)).await;
        wait_for_cards(&mut browser, query).await;
        assert_no_sideways_scrolling(&browser, &format!("the result page of {query}")).await;
        let split = on_several_lines(&browser, ".pager:not([hidden]) button").await;
        assert!(
            split.is_empty(),
            "pager buttons split over lines: {split:?}"
        );
        browser.screenshot(name).await;
    }

    browser.goto(&format!("{}/?q={OPTED_OUT}", site.base)).await;
    browser
        .wait_for(
            "the refusal",
            "document.querySelector('.results [role=alert]')",
        )
        .await;
    assert_no_sideways_scrolling(&browser, "the refusal").await;
    browser.screenshot("refusal").await;

    browser.goto(&format!("{}/me", site.base)).await;
    browser
        .wait_for(
            "the privacy page",
            "document.querySelector('[data-opted-out]')",
        )
        .await;
    browser.screenshot("privacy-page").await;
    assert_no_sideways_scrolling(&browser, "/me").await;
    // Emails may break anywhere (that keeps every column on a phone); other words stay whole.
    let split = on_several_lines(&browser, ".lookups th, .lookups td:not(:nth-child(2))").await;
    let split: Vec<_> = split.iter().filter(|t| !t.contains(' ')).collect();
    assert!(split.is_empty(), "words split over lines: {split:?}");
    assert!(
        !browser.find_all(".lookups td").await.is_empty(),
        "her own lookups are listed"
    );
}
