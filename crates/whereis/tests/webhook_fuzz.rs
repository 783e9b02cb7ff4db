//! No webhook body or header value makes the server panic or hang: every delivery gets 200, 400 or
//! 401 promptly.

mod common;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, Request};
use axum::Router;
use proptest::prelude::*;
use tower::ServiceExt;
use whereis::chat::Bot;
use whereis::config::Config;
use whereis::lookup::Finder;
use whereis_sim::webex::WebexDouble;

struct World {
    runtime: tokio::runtime::Runtime,
    signed: Router,
    unsigned: Router,
    // Kept alive for the routers.
    _office: common::Office,
    _webex: WebexDouble,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        let (office, webex, signed, unsigned) = runtime.block_on(async {
            let office = common::Office::start().await;
            let webex = WebexDouble::start("bot-token", "whereis@webex.bot", "whereis")
                .await
                .unwrap();
            std::fs::write(office.dir.path().join("token"), "bot-token").unwrap();
            std::fs::write(office.dir.path().join("secret"), "s3").unwrap();
            let mut routers = Vec::new();
            for (file, secret) in [
                ("signed.toml", "webhook_secret_file = \"secret\"\n"),
                ("unsigned.toml", ""),
            ] {
                let section = format!(
                    "timeout_ms = 300\n[webex]\ntoken_file = \"token\"\napi_base = {:?}\n{secret}",
                    webex.base_url()
                );
                let config =
                    Config::load(&office.config(file, &section, &office.all_sources())).unwrap();
                let finder = Arc::new(Finder::from_config(&config).await.unwrap());
                let bot = Bot::connect(
                    config.webex.clone().unwrap(),
                    config.privacy.clone(),
                    &config.network,
                    Arc::clone(&finder),
                )
                .await
                .unwrap();
                routers.push(whereis::server::router(finder, Some(Arc::new(bot))));
            }
            let unsigned = routers.pop().unwrap();
            let signed = routers.pop().unwrap();
            (office, webex, signed, unsigned)
        });
        World {
            runtime,
            signed,
            unsigned,
            _office: office,
            _webex: webex,
        }
    })
}

fn deliver(router: &Router, body: Vec<u8>, signature: Option<Vec<u8>>) -> u16 {
    let mut request = Request::post("/webhooks/webex").header("content-type", "application/json");
    if let Some(signature) = signature.and_then(|s| HeaderValue::from_bytes(&s).ok()) {
        request = request.header("X-Spark-Signature", signature);
    }
    let request = request.body(Body::from(body)).unwrap();
    let world = world();
    let response = world
        .runtime
        .block_on(async {
            tokio::time::timeout(Duration::from_secs(10), router.clone().oneshot(request)).await
        })
        .expect("the webhook answered without hanging")
        .expect("infallible");
    response.status().as_u16()
}

fn event_json() -> impl Strategy<Value = Vec<u8>> {
    let text = prop_oneof![Just(String::new()), "[a-zA-Z0-9@._\\\\ -]{0,40}", ".{0,40}",];
    (
        prop_oneof![Just("messages".to_owned()), text.clone()],
        prop_oneof![Just("created".to_owned()), text.clone()],
        text.clone(),
        proptest::option::of(text.clone()),
        proptest::option::of(prop_oneof![
            Just("direct".to_owned()),
            Just("group".to_owned()),
            text.clone()
        ]),
        any::<bool>(),
    )
        .prop_map(|(resource, event, id, email, room_type, drop_data)| {
            let mut value = serde_json::json!({
                "id": "hook", "name": "whereis", "resource": resource, "event": event,
                "data": {"id": id, "roomId": "room", "personEmail": email, "roomType": room_type}
            });
            if drop_data {
                value.as_object_mut().map(|o| o.remove("data"));
            }
            serde_json::to_vec(&value).unwrap_or_default()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn any_bytes_with_any_signature(body in proptest::collection::vec(any::<u8>(), 0..1024),
                                    signature in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..80))) {
        let status = deliver(&world().signed, body, signature);
        prop_assert_eq!(status, 401);
    }

    #[test]
    fn any_bytes_without_a_secret(body in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let status = deliver(&world().unsigned, body, None);
        prop_assert!(status == 200 || status == 400, "status {}", status);
    }

    #[test]
    fn event_shaped_json(body in event_json(), signature in proptest::option::of("[0-9a-f]{40}")) {
        let status = deliver(&world().unsigned, body.clone(), signature.map(String::into_bytes));
        prop_assert!(status == 200 || status == 400, "status {}", status);
        // A correctly signed body is never refused for its signature (it may still be malformed).
        let signed = whereis_webex::sign(b"s3", &body);
        let status = deliver(&world().signed, body, Some(signed.into_bytes()));
        prop_assert!(status == 200 || status == 400, "status {}", status);
    }
}
