//! The demo as a new user meets it, in a real browser: `whereis-bot demo` started as the README says,
//! Jane signs in through the OpenID provider double, types "jan" and picks Jane Doe, sees her maps and
//! her next device, lists Building 5 (without the colleague who opted out), asks the bot in the chat
//! panel, and finds every lookup on her privacy page. Screenshots under `target/browser-screenshots/`.

mod common;
#[path = "common/browser.rs"]
mod web_browser;

use common::{start_until, url_after};
use serde_json::Value;
use web_browser::Browser;

const JANE: &str = "jane.doe@example.com";
/// The built-in scenario's colleague who opted out.
const OPTED_OUT: &str = "hlarsen";

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

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_walked_through_as_the_readme_says() {
    let Some(mut browser) = Browser::start("demo", 1280, 900).await else {
        return;
    };
    let (_demo, lines) = start_until(&["demo", "--listen", "127.0.0.1:0"], "Ctrl-C to stop").await;
    let base = url_after(&lines, "whereis demo is running at ").to_owned();

    // Sign in as the printed demo user, on the provider double's form.
    browser.goto(&format!("{base}/")).await;
    browser
        .wait_for(
            "the sign-in prompt",
            "document.querySelector('main a.button')",
        )
        .await;
    browser.click("main a.button").await;
    browser
        .wait_for(
            "the provider's login form",
            "document.querySelector('form#login')",
        )
        .await;
    browser.screenshot("provider-login").await;
    browser
        .click(&format!("form#login button[name=email][value='{JANE}']"))
        .await;
    browser
        .wait_for("the search page", "location.pathname === '/' && document.querySelector('form[role=search] input[name=q]')")
        .await;
    assert!(browser.text("header.top .who").await.contains(JANE));

    // "jan" → Jane Doe from the suggestions → her devices, maps loaded, next device.
    browser
        .find("form[role=search] input[name=q]")
        .await
        .send_keys("jan")
        .await
        .expect("type");
    let options = browser
        .wait_for(
            "suggestions",
            "(() => { const o = [...document.querySelectorAll('#q-suggestions [role=option]')];\
               return o.length > 0 && o.map(x => x.innerText); })()",
        )
        .await;
    let options = strings(&options);
    let jane = options
        .iter()
        .position(|o| o.starts_with("Jane Doe"))
        .unwrap_or_else(|| panic!("{options:?}"));
    browser.screenshot("suggestions").await;
    browser.click(&format!("#q-option-{jane}")).await;
    let macs = browser
        .wait_for(
            "Jane's device cards",
            "new URLSearchParams(location.search).get('q') === 'jdoe' && \
             [...document.querySelectorAll('article[data-device-mac]')].map(c => c.dataset.deviceMac)",
        )
        .await;
    assert!(strings(&macs).len() >= 2, "{macs:?}");
    browser
        .wait_for("her maps", "[...document.images].length > 0 && [...document.images].every(i => i.complete && i.naturalWidth > 0)")
        .await;
    browser.screenshot("jane-device-1").await;
    browser.click("[data-pager=next]").await;
    browser
        .wait_for(
            "device 2",
            "document.querySelector('[data-pager-status]').textContent.startsWith('Device 2 of')",
        )
        .await;
    browser.screenshot("jane-device-2").await;

    // Building 5's roster lists people, not the one who opted out.
    browser
        .goto(&format!("{base}/buildings/Building%205"))
        .await;
    let people = browser
        .wait_for("the roster", "document.querySelectorAll('tr[data-person]').length > 0 && [...document.querySelectorAll('tr[data-person]')].map(r => r.dataset.person)")
        .await;
    let people = strings(&people);
    assert!(
        people.len() >= 5 && people.contains(&"jdoe".to_owned()),
        "{people:?}"
    );
    assert!(!people.contains(&OPTED_OUT.to_owned()), "{people:?}");
    browser.screenshot("building-5").await;

    // The chat panel: the bot answers `whereis jdoe` with maps.
    browser.goto(&format!("{base}/demo/chat")).await;
    browser
        .wait_for("the chat page", "document.querySelector('form#chat-form')")
        .await;
    browser
        .find("form#chat-form [name=text]")
        .await
        .send_keys("whereis jdoe\n")
        .await
        .expect("type");
    browser
        .wait_for(
            "the bot's reply with a map",
            "[...document.querySelectorAll('[data-reply] img')].some(i => i.complete && i.naturalWidth > 0)",
        )
        .await;
    browser.screenshot("chat").await;

    // Her privacy page shows who looked (her own lookups, and the roster view).
    browser.goto(&format!("{base}/me")).await;
    let rows = browser.wait_for("who looked", "document.querySelector('table.lookups tbody') && document.querySelector('table.lookups tbody').innerText").await;
    let rows = rows.as_str().unwrap_or_default().to_owned();
    assert!(rows.contains("web-roster") && rows.contains(JANE), "{rows}");
    browser.screenshot("me").await;
}
