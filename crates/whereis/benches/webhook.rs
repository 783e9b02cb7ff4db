//! Webhook in → last reply posted: a signed delivery for "whereis jdoe" (two devices, so four replies,
//! two with maps) through the real server, against the simulated office, with floor images cached.
//! `cargo bench -p whereis --bench webhook`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use whereis::chat::Bot;
use whereis::config::Config;
use whereis::lookup::Finder;
use whereis_sim::webex::WebexDouble;

const SECRET: &str = "bench-secret";
const JANE: &str = "jane.doe@example.com";
/// Questions delivered at once in the throughput benchmark.
const BURST: usize = 64;

fn webhook_round_trip(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (office, webex, url) = runtime.block_on(async {
        let office = common::Office::start().await;
        let webex = WebexDouble::start("bot-token", "whereis@webex.bot", "whereis")
            .await
            .expect("webex double");
        std::fs::write(office.dir.path().join("token"), "bot-token").expect("token");
        std::fs::write(office.dir.path().join("secret"), SECRET).expect("secret");
        let section = format!(
            "{}\n[webex]\ntoken_file = \"token\"\nwebhook_secret_file = \"secret\"\napi_base = {:?}\n\n[privacy]\nrate_limit_per_hour = 1000000\n",
            common::VARIANTS_AND_TIMEOUTS,
            webex.base_url()
        );
        let config = Config::load(&office.config("bench.toml", &section, &office.all_sources()))
            .expect("config");
        let finder = Arc::new(Finder::from_config(&config).await.expect("finder"));
        let bot = Bot::connect(config.webex.clone().expect("webex"), config.privacy.clone(), &config.network, Arc::clone(&finder))
            .await
            .expect("bot");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("listener");
        let url = format!("http://{}/webhooks/webex", listener.local_addr().expect("addr"));
        tokio::spawn(whereis::server::serve(
            listener,
            whereis::server::router(finder, Some(Arc::new(bot))),
            std::future::pending(),
        ));
        (office, webex, url)
    });
    let room = webex.direct_room(JANE);
    let say = |text: &'static str, replies: usize| {
        let (webex, room, url) = (&webex, &room, &url);
        async move {
            let before = webex.posted().len();
            let id = webex.user_says(room, JANE, text);
            let body = webex.event_body(&id);
            let status = webex
                .deliver(url, &body, Some(SECRET))
                .await
                .expect("delivered");
            assert_eq!(status, 200);
            let posts = webex
                .wait_for_posts(before + replies, Duration::from_secs(30))
                .await;
            assert!(posts.len() >= before + replies, "replies missing");
        }
    };
    // Warm up: connection pools, the v3 check, map configuration and floor images.
    runtime.block_on(say("whereis jdoe", 4));

    let mut group = c.benchmark_group("webhook");
    group.sample_size(50);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("help: 1 reply, no lookup", |b| {
        b.to_async(&runtime).iter(|| say("help", 1))
    });
    group.bench_function("whereis jdoe: 2 devices, 4 replies, maps cached", |b| {
        b.to_async(&runtime).iter(|| say("whereis jdoe", 4))
    });
    group.finish();

    // Throughput: a burst of questions delivered at once (as a busy morning might bring), timed
    // until every reply of every question is posted.
    let mut burst = c.benchmark_group("webhook burst");
    burst.sample_size(10);
    burst.measurement_time(Duration::from_secs(20));
    burst.throughput(criterion::Throughput::Elements(BURST as u64));
    burst.bench_function("64 × whereis jdoe at once, 256 replies", |b| {
        b.to_async(&runtime).iter(|| async {
            let before = webex.posted().len();
            let deliveries = (0..BURST).map(|_| {
                let id = webex.user_says(&room, JANE, "whereis jdoe");
                let body = webex.event_body(&id);
                let (webex, url) = (&webex, &url);
                async move {
                    let status = webex
                        .deliver(url, &body, Some(SECRET))
                        .await
                        .expect("delivered");
                    assert_eq!(status, 200);
                }
            });
            futures::future::join_all(deliveries).await;
            let posts = webex
                .wait_for_posts(before + BURST * 4, Duration::from_secs(60))
                .await;
            assert!(posts.len() >= before + BURST * 4, "replies missing");
        })
    });
    burst.finish();
    drop(office);
}

criterion_group!(benches, webhook_round_trip);
criterion_main!(benches);
