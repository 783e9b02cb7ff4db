//! Locator fan-out: 6 simulated sources × 3 username variants, every source answering after 20 ms.
//! The lookup should take the slowest source's time plus a few milliseconds (target: ≤ 5 ms overhead
//! at the median). `cargo bench -p whereis-location --bench locator`.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use whereis_location::{
    Credentials, HttpSource, LocationSource, Locator, LocatorSettings, Secret, SourceKind,
    SourceSettings, Username,
};
use whereis_sim::{Scenario, Simulator};

const SOURCES: usize = 6;
const LATENCY_MS: u64 = 20;

fn scenario() -> String {
    let mut text = String::new();
    for i in 0..SOURCES {
        let kind = if i % 3 == 2 { "mse" } else { "cmx" };
        write!(
            text,
            "[[servers]]\nname = \"s{i}\"\nkind = \"{kind}\"\nusername = \"api\"\npassword = \"pw\"\nfault = {{ latency_ms = {LATENCY_MS} }}\n\n"
        )
        .unwrap();
    }
    text.push_str(
        "[[campuses]]\nname = \"HQ\"\n[[campuses.buildings]]\nname = \"B5\"\n[[campuses.buildings.floors]]\nname = \"L3\"\nfloor_ref_id = \"1\"\nwidth = 300.0\nlength = 150.0\nimage = \"l3.png\"\n\n[[people]]\nusername = \"jdoe\"\ndisplay_name = \"Jane Doe\"\n",
    );
    for i in 0..SOURCES {
        let identity = ["jdoe", "CORP\\\\jdoe", "corp\\\\jdoe"][i % 3];
        write!(
            text,
            "[[people.devices]]\nmac = \"00:11:22:33:44:{i:02x}\"\nidentity = \"{identity}\"\nservers = [\"s{i}\"]\nfloor = \"HQ>B5>L3\"\nx = 10.0\ny = 20.0\nssid = \"CORP\"\nlast_heard_seconds = {i}\n"
        )
        .unwrap();
    }
    text
}

fn locator(simulator: &Simulator, count: usize, variants: &[&str]) -> Locator {
    let sources = simulator
        .servers()
        .iter()
        .take(count)
        .map(|server| {
            let kind = match server.kind() {
                whereis_sim::ServerKind::Mse => SourceKind::Mse,
                whereis_sim::ServerKind::Spaces => {
                    unreachable!("no Spaces server in this scenario")
                }
                whereis_sim::ServerKind::CmxV2 => SourceKind::CmxV2,
                whereis_sim::ServerKind::Cmx => SourceKind::Cmx,
                whereis_sim::ServerKind::Meraki => unreachable!("the demo has no Meraki server"),
            };
            let source = HttpSource::new(SourceSettings {
                name: server.name().to_owned(),
                kind,
                url: server.base_url(),
                credentials: Credentials {
                    username: server.username().to_owned(),
                    password: Secret::new(server.password()),
                },
                v3_credentials: None,
                ca_file: None,
                insecure_skip_tls_verify: false,
                priority: 0,
                timeout: Duration::from_secs(2),
                image_timeout: Duration::from_secs(10),
                network: whereis_net::Network::direct(),
            })
            .expect("source");
            Arc::new(source) as Arc<dyn LocationSource>
        })
        .collect();
    Locator::new(
        sources,
        LocatorSettings {
            username_variants: variants.iter().map(|v| (*v).to_owned()).collect(),
            deadline: Duration::from_secs(3),
            max_age: Duration::from_secs(900),
        },
    )
}

fn fan_out(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let scenario = Scenario::from_toml_str(&scenario()).expect("scenario");
    let simulator = runtime
        .block_on(Simulator::start(scenario))
        .expect("simulator");
    let all = locator(
        &simulator,
        SOURCES,
        &["{user}", "CORP\\{user}", "corp\\{user}"],
    );
    // The baseline: one request to one source, the least any lookup can take.
    let one = locator(&simulator, 1, &["{user}"]);
    let user = Username::parse("jdoe").expect("username");
    // Warm up: connection pools, the v3 check and the map configuration are per source, once.
    let first = runtime.block_on(all.locate(&user));
    assert_eq!(first.devices.len(), SOURCES, "{:?}", first.errors);
    assert_eq!(runtime.block_on(one.locate(&user)).devices.len(), 1);

    let mut group = c.benchmark_group("locator");
    group.sample_size(200);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("1 source x 1 variant, 20 ms", |b| {
        b.to_async(&runtime).iter(|| async {
            assert_eq!(one.locate(&user).await.devices.len(), 1);
        })
    });
    group.bench_function("6 sources x 3 variants, 20 ms each", |b| {
        b.to_async(&runtime).iter(|| async {
            assert_eq!(all.locate(&user).await.devices.len(), SOURCES);
        })
    });
    group.finish();
    drop((all, one));
    runtime.block_on(simulator.shutdown());
}

criterion_group!(benches, fan_out);
criterion_main!(benches);
