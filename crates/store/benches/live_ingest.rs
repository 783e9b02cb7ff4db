//! Ingest throughput of the live device table, and lookup latency during ingestion.
//!
//! `live_ingest/<backend>`: `apply_live` calls of 5000 upserts (the writer's default batch) that
//! move devices already in a table of 100,000, reported as elements (updates) per second.
//! `live_lookup_during_ingest/<backend>`: one `live_devices` lookup while a background task
//! writes such batches without pause; after it, the lookups' p50/p99 and the ingest rate reached
//! meanwhile are printed. Backends: SQLite in a temporary file, and PostgreSQL when
//! `WHEREIS_TEST_POSTGRES_URL` is set (in a database of its own, dropped at the end).
//!
//!     cargo bench -p whereis-store --bench live_ingest

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sqlx::Connection;
use whereis_store::{LiveChange, LiveDevice, Store};

const DEVICES: u32 = 100_000;
const BATCH: u32 = 5_000;
const SOURCE: &str = "spaces";

fn mac(i: u32) -> String {
    let b = i.to_be_bytes();
    format!("02:00:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3])
}

/// A fix of device `i` at time `t`: ten devices per user, positions that move with `t`.
fn fix(i: u32, t: i64) -> LiveChange {
    let step = (t % 1_000) as f64;
    LiveChange::Upsert(LiveDevice {
        source: SOURCE.to_owned(),
        mac: mac(i),
        username: Some(format!("user{}", i / 10)),
        identity: Some(format!("CORP\\user{}", i / 10)),
        floor_key: Some(format!("map-{}", i % 40)),
        campus: Some("Campus".to_owned()),
        building: Some(format!("Building {}", i % 8)),
        floor: Some(format!("Floor {}", i % 5)),
        x: Some(f64::from(i % 300) + step / 10.0),
        y: Some(f64::from(i % 200) + step / 20.0),
        unit: "FEET".to_owned(),
        accuracy: Some(4.5),
        ssid: Some("corp".to_owned()),
        ip: Some(format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255)),
        status: "ASSOCIATED".to_owned(),
        last_seen_ms: t,
        updated_at_ms: t,
    })
}

/// The next batch of updates: `BATCH` devices in turn, each a step later than before.
struct Feed {
    next_device: u32,
    clock: Arc<AtomicI64>,
}

impl Feed {
    fn batch(&mut self) -> Vec<LiveChange> {
        (0..BATCH)
            .map(|_| {
                let i = self.next_device;
                self.next_device = (self.next_device + 1) % DEVICES;
                fix(i, self.clock.fetch_add(1, Ordering::Relaxed))
            })
            .collect()
    }
}

struct Backend {
    name: &'static str,
    store: Store,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>,
}

async fn backends() -> Vec<Backend> {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("live.db").display());
    let mut all = vec![Backend {
        name: "sqlite",
        store: Store::open(&url).await.expect("open SQLite"),
        _dir: Some(dir),
        postgres: None,
    }];
    match std::env::var("WHEREIS_TEST_POSTGRES_URL") {
        Ok(admin) if !admin.trim().is_empty() => {
            let name = format!("whereis_live_bench_{}", std::process::id());
            let mut conn = sqlx::PgConnection::connect(&admin).await.expect("connect");
            sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .expect("CREATE DATABASE");
            let _ = conn.close().await;
            let (base, _) = admin.split_once('?').unwrap_or((&admin, ""));
            let host_end = base.rfind('/').expect("a database in the URL");
            let url = format!("{}/{name}", &base[..host_end]);
            all.push(Backend {
                name: "postgres",
                store: Store::open(&url).await.expect("open PostgreSQL"),
                _dir: None,
                postgres: Some((admin, name)),
            });
        }
        _ => eprintln!("WHEREIS_TEST_POSTGRES_URL is not set: SQLite only"),
    }
    all
}

async fn drop_postgres(admin: &str, name: &str) {
    if let Ok(mut conn) = sqlx::PgConnection::connect(admin).await {
        let _ = sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn)
            .await;
        let _ = conn.close().await;
    }
}

fn live(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let backends = rt.block_on(backends());
    for backend in &backends {
        let store = backend.store.clone();
        let clock = Arc::new(AtomicI64::new(1));
        let mut feed = Feed {
            next_device: 0,
            clock: clock.clone(),
        };
        rt.block_on(async {
            for _ in 0..DEVICES / BATCH {
                store.apply_live(&feed.batch()).await.expect("fill");
            }
        });

        let mut group = c.benchmark_group("live_ingest");
        group.sample_size(10);
        group.warm_up_time(Duration::from_secs(2));
        group.measurement_time(Duration::from_secs(15));
        group.throughput(Throughput::Elements(u64::from(BATCH)));
        group.bench_function(BenchmarkId::from_parameter(backend.name), |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let store = store.clone();
                let batches: Vec<_> = (0..iters).map(|_| feed.batch()).collect();
                async move {
                    let started = Instant::now();
                    for batch in &batches {
                        store.apply_live(batch).await.expect("apply_live");
                    }
                    started.elapsed()
                }
            })
        });
        group.finish();

        // Lookups while a task ingests without pause.
        let stop = Arc::new(AtomicBool::new(false));
        let ingested = Arc::new(AtomicU64::new(0));
        let ingest = {
            let (store, stop, ingested) = (store.clone(), stop.clone(), ingested.clone());
            let mut feed = Feed {
                next_device: feed.next_device,
                clock: clock.clone(),
            };
            rt.spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    store.apply_live(&feed.batch()).await.expect("ingest");
                    ingested.fetch_add(u64::from(BATCH), Ordering::Relaxed);
                }
            })
        };
        let mut group = c.benchmark_group("live_lookup_during_ingest");
        group.sample_size(50);
        group.measurement_time(Duration::from_secs(10));
        let user = std::sync::atomic::AtomicU32::new(0);
        group.bench_function(BenchmarkId::from_parameter(backend.name), |b| {
            b.to_async(&rt).iter(|| {
                let username = format!("user{}", user.fetch_add(7, Ordering::Relaxed) % 10_000);
                let store = store.clone();
                async move {
                    let found = store.live_devices(SOURCE, &username).await.expect("lookup");
                    assert_eq!(found.len(), 10);
                }
            })
        });
        group.finish();

        // Our own percentiles, and the ingest rate meanwhile.
        let (mut latencies, rate) = rt.block_on(async {
            let mut latencies = Vec::with_capacity(2_000);
            let from = ingested.load(Ordering::Relaxed);
            let started = Instant::now();
            for n in 0..2_000u32 {
                let username = format!("user{}", (n * 37) % 10_000);
                let t = Instant::now();
                store.live_devices(SOURCE, &username).await.expect("lookup");
                latencies.push(t.elapsed());
            }
            let rate =
                (ingested.load(Ordering::Relaxed) - from) as f64 / started.elapsed().as_secs_f64();
            (latencies, rate)
        });
        stop.store(true, Ordering::Relaxed);
        rt.block_on(ingest).expect("ingest task");
        latencies.sort();
        let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
        eprintln!(
            "{}: live_devices during ingestion: p50 {:.2?}, p99 {:.2?}, max {:.2?} \
             (ingesting {rate:.0} updates/s meanwhile)",
            backend.name,
            at(0.5),
            at(0.99),
            at(1.0),
        );
    }
    for backend in backends {
        if let Some((admin, name)) = &backend.postgres {
            rt.block_on(async {
                backend.store.close().await;
                drop_postgres(admin, name).await;
            });
        }
    }
}

criterion_group!(benches, live);
criterion_main!(benches);
