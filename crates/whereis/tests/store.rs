//! The store's test suite, written once and run against every backend: SQLite in a temporary file,
//! SQLite in memory, and a real PostgreSQL server (`WHEREIS_TEST_POSTGRES_URL`, set up by
//! `.ci/postgres.sh`; each PostgreSQL test gets a database of its own, so tests run in parallel).
//!
//! Without `WHEREIS_TEST_POSTGRES_URL` the PostgreSQL variants are skipped with a note — except
//! under CI (`CI` set), where they fail.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use sqlx::Connection;
use whereis::store::{AuditEntry, AuditFilter, Outcome, Store, StoreError};

const POSTGRES_ENV: &str = "WHEREIS_TEST_POSTGRES_URL";

/// A database for one test: the store opened on it, and how to open another instance on it.
struct Db {
    store: Store,
    /// The URL of this database, when a second `Store` can be opened on it.
    url: Option<String>,
    /// Keeps the SQLite file's directory alive.
    _dir: Option<tempfile::TempDir>,
    /// The PostgreSQL database to drop at the end.
    postgres: Option<PgDatabase>,
}

struct PgDatabase {
    admin_url: String,
    name: String,
}

impl PgDatabase {
    async fn drop_now(&self) {
        if let Ok(mut conn) = sqlx::PgConnection::connect(&self.admin_url).await {
            let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
            let _ = sqlx::raw_sql(&sql).execute(&mut conn).await;
            let _ = conn.close().await;
        }
    }
}

impl Drop for PgDatabase {
    /// Best effort, also when the test failed: on a thread of its own, with a runtime of its own.
    fn drop(&mut self) {
        let db = PgDatabase {
            admin_url: std::mem::take(&mut self.admin_url),
            name: std::mem::take(&mut self.name),
        };
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(db.drop_now());
            }
            std::mem::forget(db);
        })
        .join();
    }
}

fn unique_suffix() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// The PostgreSQL server to test against; `None` (after a note) when there is none outside CI.
fn postgres_url() -> Option<String> {
    match std::env::var(POSTGRES_ENV) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if ci() => panic!(
            "{POSTGRES_ENV} is not set, and CI must run the PostgreSQL tests: \
             run `eval \"$(bash .ci/postgres.sh | tail -1)\"` first"
        ),
        _ => {
            // Once, and past the test harness's capture of `eprintln!`, so that it is seen.
            static NOTED: std::sync::Once = std::sync::Once::new();
            NOTED.call_once(|| {
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "note: {POSTGRES_ENV} is not set: skipping the PostgreSQL variant of the \
                     store tests (set it up with `eval \"$(bash .ci/postgres.sh | tail -1)\"`)"
                );
            });
            None
        }
    }
}

impl Db {
    async fn sqlite_file() -> Db {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("whereis.db").display());
        let store = Store::open(&url).await.expect("open SQLite file");
        Db {
            store,
            url: Some(url),
            _dir: Some(dir),
            postgres: None,
        }
    }

    async fn sqlite_memory() -> Db {
        let store = Store::open("sqlite::memory:")
            .await
            .expect("open SQLite memory");
        Db {
            store,
            url: None,
            _dir: None,
            postgres: None,
        }
    }

    /// A fresh database on the test server.
    async fn postgres() -> Option<Db> {
        let admin_url = postgres_url()?;
        let name = format!("whereis_t_{}", unique_suffix());
        let mut conn = sqlx::PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {POSTGRES_ENV}: {e}"));
        sqlx::raw_sql(&format!(
            "CREATE DATABASE {name} ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
        ))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        let _ = conn.close().await;
        let postgres = PgDatabase {
            admin_url: admin_url.clone(),
            name: name.clone(),
        };
        let mut url = url::Url::parse(&admin_url).expect("a URL");
        url.set_path(&format!("/{name}"));
        let url = url.to_string();
        let store = Store::open(&url).await.expect("open PostgreSQL");
        Some(Db {
            store,
            url: Some(url),
            _dir: None,
            postgres: Some(postgres),
        })
    }

    /// Whether [`Db::another`] is a second instance on the same database (not for in-memory SQLite).
    fn shared(&self) -> bool {
        self.url.is_some()
    }

    /// A second instance on the same database, as another server process would open it (for
    /// in-memory SQLite, which one process alone can see, a clone of the store).
    async fn another(&self) -> Store {
        match &self.url {
            Some(url) => Store::open(url).await.expect("open a second instance"),
            None => self.store.clone(),
        }
    }

    /// Makes the database go away under the store.
    async fn lose(&self) {
        match &self.postgres {
            Some(pg) => pg.drop_now().await,
            None => self.store.close().await,
        }
    }
}

/// Generates, for each suite function, one test per backend.
macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite_file {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = super::Db::sqlite_file().await;
                    super::$name(&db).await;
                }
            )*
        }
        mod sqlite_memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = super::Db::sqlite_memory().await;
                    super::$name(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = super::Db::postgres().await else { return };
                    super::$name(&db).await;
                }
            )*
        }
    };
}

suite!(
    opens_and_reopens,
    dedupe_first_and_second,
    dedupe_race_between_two_instances,
    opt_out_and_back_in,
    audit_round_trip_filters_and_order,
    audit_limit,
    lookups_since_counts_only_lookups_of_the_requester,
    lookups_since_across_two_instances,
    purges,
    stats,
    stats_survive_the_audit_purge,
    choices,
    choices_taken_once_across_instances,
    store_lost_mid_run,
);

fn entry(at: i64, requester: &str, target: &str, outcome: Outcome) -> AuditEntry {
    let found = outcome == Outcome::Found;
    AuditEntry {
        at,
        requester: requester.to_owned(),
        target: target.to_owned(),
        channel: "chat".to_owned(),
        outcome,
        sources: if outcome.is_refusal() {
            vec![]
        } else {
            vec!["cmx-north".to_owned(), "mse-legacy".to_owned()]
        },
        found_by: if found {
            vec!["cmx-north".to_owned()]
        } else {
            vec![]
        },
        devices: u32::from(found),
    }
}

async fn opens_and_reopens(db: &Db) {
    let expected = if db.postgres.is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    assert_eq!(db.store.kind(), expected);
    db.store.ping().await.expect("ping");
    db.store.set_opted_out("jdoe", true, 100).await.unwrap();
    if !db.shared() {
        return;
    }
    // The migrations run again on an up-to-date database (twice), and the data is still there.
    let second = db.another().await;
    let third = db.another().await;
    assert!(second.is_opted_out("jdoe").await.unwrap());
    assert!(third.is_opted_out("jdoe").await.unwrap());
    assert!(!format!("{second:?}").is_empty());
}

async fn dedupe_first_and_second(db: &Db) {
    let store = &db.store;
    assert!(store.first_delivery("msg-1", 10).await.unwrap());
    assert!(!store.first_delivery("msg-1", 11).await.unwrap());
    assert!(!store.first_delivery("msg-1", 12).await.unwrap());
    assert!(store.first_delivery("msg-2", 12).await.unwrap());
    assert!(store.first_delivery("", 12).await.unwrap());
    assert!(!store.first_delivery("", 13).await.unwrap());
}

async fn dedupe_race_between_two_instances(db: &Db) {
    let a = db.store.clone();
    let b = db.another().await;
    for i in 0..50 {
        let id = format!("Y2lzY29zcGFyazovL3VzL01FU1NBR0UvMTIz-{i}");
        let (first, second) = {
            let (a, b) = (a.clone(), b.clone());
            let (ida, idb) = (id.clone(), id.clone());
            let ta = tokio::spawn(async move { a.first_delivery(&ida, 1_000).await });
            let tb = tokio::spawn(async move { b.first_delivery(&idb, 1_000).await });
            (ta.await.unwrap().unwrap(), tb.await.unwrap().unwrap())
        };
        assert!(
            first ^ second,
            "{id}: exactly one instance must handle it (got {first} and {second})"
        );
    }
}

async fn opt_out_and_back_in(db: &Db) {
    let store = &db.store;
    assert!(!store.is_opted_out("jdoe").await.unwrap());
    assert_eq!(store.opted_out_count().await.unwrap(), 0);
    store.set_opted_out("jdoe", true, 100).await.unwrap();
    store.set_opted_out("jdoe", true, 200).await.unwrap(); // twice is fine
    store.set_opted_out("émilie", true, 150).await.unwrap();
    assert!(store.is_opted_out("jdoe").await.unwrap());
    assert!(store.is_opted_out("émilie").await.unwrap());
    assert!(
        !store.is_opted_out("JDOE").await.unwrap(),
        "the caller normalises"
    );
    assert!(!store.is_opted_out("asmith").await.unwrap());
    assert_eq!(store.opted_out_count().await.unwrap(), 2);
    store.set_opted_out("jdoe", false, 300).await.unwrap();
    store.set_opted_out("jdoe", false, 301).await.unwrap(); // twice is fine
    store.set_opted_out("never-out", false, 301).await.unwrap();
    assert!(!store.is_opted_out("jdoe").await.unwrap());
    assert_eq!(store.opted_out_count().await.unwrap(), 1);
    // Every instance sees it.
    let other = db.another().await;
    assert!(other.is_opted_out("émilie").await.unwrap());
    assert!(!other.is_opted_out("jdoe").await.unwrap());
}

async fn audit_round_trip_filters_and_order(db: &Db) {
    let store = &db.store;
    let odd = AuditEntry {
        at: 1_000,
        requester: "alice@example.com".into(),
        target: "jdoe".into(),
        channel: "api".into(),
        outcome: Outcome::Found,
        sources: vec![
            "cmx, \"north\"".into(),
            "mse;legacy|x".into(),
            "Zürich ☃".into(),
        ],
        found_by: vec!["cmx, \"north\"".into(), "Zürich ☃".into()],
        devices: 3,
    };
    store.record(&odd).await.unwrap();
    store
        .record(&entry(1_100, "bob@example.com", "jdoe", Outcome::NotFound))
        .await
        .unwrap();
    store
        .record(&entry(
            1_200,
            "alice@example.com",
            "asmith",
            Outcome::OptedOut,
        ))
        .await
        .unwrap();
    store
        .record(&entry(
            1_300,
            "carol@other.org",
            "jdoe",
            Outcome::NotAllowed,
        ))
        .await
        .unwrap();
    // Same second: the one written later comes first.
    store
        .record(&entry(1_300, "bob@example.com", "asmith", Outcome::Failed))
        .await
        .unwrap();

    let all = store.audit(&AuditFilter::default()).await.unwrap();
    let order: Vec<(i64, &str, Outcome)> = all
        .iter()
        .map(|e| (e.at, e.target.as_str(), e.outcome))
        .collect();
    assert_eq!(
        order,
        vec![
            (1_300, "asmith", Outcome::Failed),
            (1_300, "jdoe", Outcome::NotAllowed),
            (1_200, "asmith", Outcome::OptedOut),
            (1_100, "jdoe", Outcome::NotFound),
            (1_000, "jdoe", Outcome::Found),
        ]
    );
    assert_eq!(all[4], odd, "every field round-trips");
    assert_eq!(all[3].sources, vec!["cmx-north", "mse-legacy"]);
    assert!(all[2].sources.is_empty());

    let by_target = store
        .audit(&AuditFilter {
            target: Some("jdoe".into()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        by_target.iter().map(|e| e.at).collect::<Vec<_>>(),
        vec![1_300, 1_100, 1_000]
    );
    let by_requester = store
        .audit(&AuditFilter {
            requester: Some("alice@example.com".into()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        by_requester.iter().map(|e| e.at).collect::<Vec<_>>(),
        vec![1_200, 1_000]
    );
    let since = store
        .audit(&AuditFilter {
            since: Some(1_200),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(since.len(), 3, "since is inclusive");
    let all_three = store
        .audit(&AuditFilter {
            target: Some("jdoe".into()),
            requester: Some("bob@example.com".into()),
            since: Some(1_050),
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(all_three.len(), 1);
    assert_eq!(all_three[0].outcome, Outcome::NotFound);
    let nobody = store
        .audit(&AuditFilter {
            target: Some("nobody".into()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert!(nobody.is_empty());
}

async fn audit_limit(db: &Db) {
    let store = &db.store;
    for i in 0..1_005 {
        store
            .record(&entry(i, "alice@example.com", "jdoe", Outcome::NotFound))
            .await
            .unwrap();
    }
    let newest = store
        .audit(&AuditFilter {
            limit: 3,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        newest.iter().map(|e| e.at).collect::<Vec<_>>(),
        vec![1_004, 1_003, 1_002]
    );
    let default = store.audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(default.len(), 1_000, "limit 0 means 1000");
    assert_eq!(default.last().map(|e| e.at), Some(5));
}

async fn lookups_since_counts_only_lookups_of_the_requester(db: &Db) {
    let store = &db.store;
    let alice = "alice@example.com";
    for (at, requester, outcome) in [
        (100, alice, Outcome::Found),
        (200, alice, Outcome::NotFound),
        (300, alice, Outcome::Found),
        (300, alice, Outcome::OptedOut),
        (310, alice, Outcome::RateLimited),
        (320, alice, Outcome::NotAllowed),
        (330, alice, Outcome::Failed),
        (300, "bob@example.com", Outcome::Found),
        (400, alice, Outcome::NotFound),
    ] {
        store
            .record(&entry(at, requester, "jdoe", outcome))
            .await
            .unwrap();
    }
    assert_eq!(store.lookups_since(alice, 0).await.unwrap(), 4);
    assert_eq!(store.lookups_since(alice, 200).await.unwrap(), 3);
    assert_eq!(store.lookups_since(alice, 301).await.unwrap(), 1);
    assert_eq!(store.lookups_since(alice, 401).await.unwrap(), 0);
    assert_eq!(store.lookups_since("bob@example.com", 0).await.unwrap(), 1);
    assert_eq!(store.lookups_since("nobody", 0).await.unwrap(), 0);
}

async fn lookups_since_across_two_instances(db: &Db) {
    let a = db.store.clone();
    let b = db.another().await;
    let alice = "alice@example.com";
    let mut tasks = Vec::new();
    for i in 0..20 {
        for store in [a.clone(), b.clone()] {
            tasks.push(tokio::spawn(async move {
                store
                    .record(&entry(10_000 + i, alice, "jdoe", Outcome::Found))
                    .await
            }));
        }
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    // The rate limit each instance sees counts the lookups served by both.
    assert_eq!(a.lookups_since(alice, 10_000).await.unwrap(), 40);
    assert_eq!(b.lookups_since(alice, 10_000).await.unwrap(), 40);
    assert_eq!(b.lookups_since(alice, 10_010).await.unwrap(), 20);
    let stats = a.stats(None).await.unwrap();
    assert_eq!((stats.lookups, stats.found), (40, 40));
    assert_eq!(stats.by_source.get("cmx-north"), Some(&40));
}

async fn purges(db: &Db) {
    let store = &db.store;
    for (id, at) in [("m1", 100), ("m2", 200), ("m3", 300)] {
        assert!(store.first_delivery(id, at).await.unwrap());
    }
    assert_eq!(store.purge_deliveries_before(250).await.unwrap(), 2);
    assert_eq!(store.purge_deliveries_before(250).await.unwrap(), 0);
    assert!(
        store.first_delivery("m1", 400).await.unwrap(),
        "a purged id is new again"
    );
    assert!(!store.first_delivery("m3", 400).await.unwrap());

    for at in [100, 200, 300, 400] {
        store
            .record(&entry(at, "alice@example.com", "jdoe", Outcome::Found))
            .await
            .unwrap();
    }
    assert_eq!(store.purge_audit_before(300).await.unwrap(), 2);
    assert_eq!(store.purge_audit_before(300).await.unwrap(), 0);
    let left = store.audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(
        left.iter().map(|e| e.at).collect::<Vec<_>>(),
        vec![400, 300]
    );
    assert_eq!(
        store.lookups_since("alice@example.com", 0).await.unwrap(),
        2
    );
}

async fn stats(db: &Db) {
    let store = &db.store;
    let empty = store.stats(None).await.unwrap();
    assert_eq!(empty, Default::default());
    let mut both = entry(100, "alice@example.com", "jdoe", Outcome::Found);
    both.found_by = vec!["mse-legacy".into(), "cmx-north".into(), "cmx-north".into()];
    store.record(&both).await.unwrap();
    for (at, outcome) in [
        (110, Outcome::Found),
        (120, Outcome::NotFound),
        (130, Outcome::OptedOut),
        (140, Outcome::OptedOut),
        (150, Outcome::RateLimited),
        (160, Outcome::NotAllowed),
        (170, Outcome::Failed),
    ] {
        store
            .record(&entry(at, "alice@example.com", "asmith", outcome))
            .await
            .unwrap();
    }
    store.set_opted_out("jdoe", true, 100).await.unwrap();
    store.set_opted_out("asmith", true, 100).await.unwrap();

    let stats = store.stats(None).await.unwrap();
    assert_eq!(stats.lookups, 4, "found + not found + failed");
    assert_eq!(stats.found, 2);
    assert_eq!(stats.not_found, 1);
    assert_eq!(stats.failed, 1);
    assert_eq!(
        stats.refused.into_iter().collect::<Vec<_>>(),
        vec![
            ("not allowed".to_owned(), 1),
            ("opted out".to_owned(), 2),
            ("rate limited".to_owned(), 1),
        ]
    );
    assert_eq!(
        stats.by_source.into_iter().collect::<Vec<_>>(),
        vec![("cmx-north".to_owned(), 2), ("mse-legacy".to_owned(), 1)],
        "a source counts once per lookup it found something in"
    );
    assert_eq!(stats.opted_out_people, 2);

    // The audit rows give the same numbers, and a window.
    assert_eq!(
        store.stats(Some(0)).await.unwrap(),
        store.stats(None).await.unwrap()
    );
    let recent = store.stats(Some(115)).await.unwrap();
    assert_eq!((recent.lookups, recent.found, recent.not_found), (2, 0, 1));
    assert_eq!(recent.refused.get("opted out"), Some(&2));
    assert!(recent.by_source.is_empty());
    assert_eq!(recent.opted_out_people, 2);
}

async fn stats_survive_the_audit_purge(db: &Db) {
    let store = &db.store;
    for at in [100, 200, 300] {
        store
            .record(&entry(at, "alice@example.com", "jdoe", Outcome::Found))
            .await
            .unwrap();
    }
    store.purge_audit_before(250).await.unwrap();
    let total = store.stats(None).await.unwrap();
    assert_eq!((total.lookups, total.found), (3, 3));
    assert_eq!(total.by_source.get("cmx-north"), Some(&3));
    let window = store.stats(Some(0)).await.unwrap();
    assert_eq!((window.lookups, window.found), (1, 1));
}

async fn choices(db: &Db) {
    let store = &db.store;
    let alice = "alice@example.com";
    let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    // Nothing saved.
    assert_eq!(store.take_choice(alice, 1, 100, 300).await.unwrap(), None);

    store
        .save_choices(alice, &names(&["jdoe", "jdoe2", "jane.d"]), 100)
        .await
        .unwrap();
    store
        .save_choices("bob@example.com", &names(&["bsmith"]), 100)
        .await
        .unwrap();
    // Out of range: nothing, and the list is kept.
    assert_eq!(store.take_choice(alice, 0, 110, 300).await.unwrap(), None);
    assert_eq!(store.take_choice(alice, 4, 110, 300).await.unwrap(), None);
    assert_eq!(
        store
            .take_choice(alice, 2, 120, 300)
            .await
            .unwrap()
            .as_deref(),
        Some("jdoe2")
    );
    // Taken: forgotten.
    assert_eq!(store.take_choice(alice, 1, 121, 300).await.unwrap(), None);
    // Another requester's list is their own.
    assert_eq!(
        store
            .take_choice("bob@example.com", 1, 130, 300)
            .await
            .unwrap()
            .as_deref(),
        Some("bsmith")
    );

    // A new list replaces the old one.
    store
        .save_choices(alice, &names(&["a1", "a2"]), 200)
        .await
        .unwrap();
    store
        .save_choices(alice, &names(&["b1", "b2", "b3"]), 210)
        .await
        .unwrap();
    assert_eq!(
        store
            .take_choice(alice, 3, 220, 300)
            .await
            .unwrap()
            .as_deref(),
        Some("b3")
    );

    // Expiry: valid for `ttl` seconds.
    store
        .save_choices(alice, &names(&["c1", "c2"]), 1_000)
        .await
        .unwrap();
    assert_eq!(
        store
            .take_choice(alice, 1, 1_300, 300)
            .await
            .unwrap()
            .as_deref(),
        Some("c1"),
        "still valid at exactly ttl"
    );
    store
        .save_choices(alice, &names(&["d1", "d2"]), 2_000)
        .await
        .unwrap();
    assert_eq!(store.take_choice(alice, 1, 2_301, 300).await.unwrap(), None);
    assert_eq!(
        store.take_choice(alice, 1, 2_001, 300).await.unwrap(),
        None,
        "an expired list is forgotten"
    );

    // An empty list forgets.
    store
        .save_choices(alice, &names(&["e1"]), 3_000)
        .await
        .unwrap();
    store.save_choices(alice, &[], 3_001).await.unwrap();
    assert_eq!(store.take_choice(alice, 1, 3_002, 300).await.unwrap(), None);
}

async fn choices_taken_once_across_instances(db: &Db) {
    let a = db.store.clone();
    let b = db.another().await;
    let alice = "alice@example.com";
    for round in 0..10 {
        let list = vec![format!("x{round}"), format!("y{round}")];
        a.save_choices(alice, &list, 100 + round).await.unwrap();
        let (sa, sb) = (a.clone(), b.clone());
        let ta = tokio::spawn(async move { sa.take_choice(alice, 2, 100 + round, 60).await });
        let tb = tokio::spawn(async move { sb.take_choice(alice, 2, 100 + round, 60).await });
        let (ra, rb) = (ta.await.unwrap().unwrap(), tb.await.unwrap().unwrap());
        let taken: Vec<String> = ra.into_iter().chain(rb).collect();
        assert_eq!(taken, vec![format!("y{round}")], "round {round}");
    }
}

async fn store_lost_mid_run(db: &Db) {
    let store = &db.store;
    store.ping().await.unwrap();
    store
        .record(&entry(1, "alice@example.com", "jdoe", Outcome::Found))
        .await
        .unwrap();
    db.lose().await;
    let started = Instant::now();
    let e = entry(2, "alice@example.com", "jdoe", Outcome::Found);
    let errors: Vec<(&str, Option<StoreError>)> = vec![
        ("ping", store.ping().await.err()),
        ("first_delivery", store.first_delivery("m", 2).await.err()),
        (
            "purge_deliveries_before",
            store.purge_deliveries_before(2).await.err(),
        ),
        (
            "set_opted_out",
            store.set_opted_out("jdoe", true, 2).await.err(),
        ),
        ("is_opted_out", store.is_opted_out("jdoe").await.err()),
        ("opted_out_count", store.opted_out_count().await.err()),
        ("record", store.record(&e).await.err()),
        ("audit", store.audit(&AuditFilter::default()).await.err()),
        (
            "lookups_since",
            store.lookups_since("alice@example.com", 0).await.err(),
        ),
        (
            "purge_audit_before",
            store.purge_audit_before(2).await.err(),
        ),
        ("stats", store.stats(None).await.err()),
        ("stats since", store.stats(Some(0)).await.err()),
        (
            "save_choices",
            store.save_choices("a", &["x".into()], 2).await.err(),
        ),
        ("take_choice", store.take_choice("a", 1, 2, 60).await.err()),
    ];
    for (call, error) in errors {
        let error = error.unwrap_or_else(|| panic!("{call} succeeded on a lost store"));
        assert!(
            matches!(error, StoreError::Unavailable(_)),
            "{call}: {error:?}"
        );
        assert!(
            error.to_string().starts_with("store unavailable: "),
            "{error}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "failing took {:?}",
        started.elapsed()
    );
}

// ---- opening: errors that do not depend on a working backend ----

#[tokio::test]
async fn open_unreachable_postgres_is_unavailable_without_the_password() {
    // A port nothing listens on: bind one, then close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let started = Instant::now();
    let url = format!("postgres://whereis:Sup3r-s3cret@127.0.0.1:{port}/whereis");
    let error = Store::open(&url).await.expect_err("nothing listens there");
    assert!(started.elapsed() < Duration::from_secs(15));
    let message = error.to_string();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    assert!(
        message.contains(&format!("127.0.0.1:{port}")),
        "names the server: {message}"
    );
    assert!(message.contains("cannot connect"), "{message}");
    assert!(message.contains("refused"), "says why: {message}");
    assert!(!message.contains("Sup3r-s3cret"), "{message}");
    assert!(!format!("{error:?}").contains("Sup3r-s3cret"));

    // postgresql:// too, and a password in the query string.
    let url = format!(
        "postgresql://whereis@127.0.0.1:{port}/whereis?password=Sup3r-s3cret&sslmode=disable"
    );
    let message = Store::open(&url).await.expect_err("refused").to_string();
    assert!(!message.contains("Sup3r-s3cret"), "{message}");
}

#[tokio::test]
async fn open_sqlite_in_a_missing_directory_says_so() {
    let error = Store::open("sqlite:///nonexistent-dir/x.db")
        .await
        .expect_err("no such directory");
    let message = error.to_string();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    assert!(message.contains("/nonexistent-dir"), "{message}");
    assert!(message.contains("does not exist"), "{message}");
}

#[tokio::test]
async fn open_rejects_bad_urls_clearly() {
    for (url, expected) in [
        ("mysql://root:Pa55word@127.0.0.1/whereis", "\"mysql:\""),
        ("whereis.db", "no scheme"),
        ("", "no scheme"),
        ("sqlite://", "names no file"),
        (
            "postgres://whereis:Pa55word@127.0.0.1:notaport/db",
            "invalid",
        ),
    ] {
        let error = Store::open(url).await.expect_err(url);
        let message = error.to_string();
        assert!(
            matches!(error, StoreError::Unavailable(_)),
            "{url}: {error:?}"
        );
        assert!(message.contains(expected), "{url}: {message}");
        assert!(
            message.contains("sqlite://") || message.contains("invalid"),
            "{message}"
        );
        assert!(!message.contains("Pa55word"), "{message}");
    }
}

#[tokio::test]
async fn sqlite_file_is_created_in_wal_mode_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    let url = format!("sqlite://{}", path.display());
    let store = Store::open(&url).await.unwrap();
    assert!(path.exists(), "created when missing");
    assert_eq!(store.kind(), "sqlite");
    assert!(!store.url().is_empty());
    store.set_opted_out("jdoe", true, 1).await.unwrap();
    assert!(
        dir.path().join("new.db-wal").exists(),
        "write-ahead log in use"
    );
    store.close().await;
    // A restart keeps what was stored.
    let store = Store::open(&url).await.unwrap();
    assert!(store.is_opted_out("jdoe").await.unwrap());
}

#[tokio::test]
async fn sqlite_memory_stores_are_separate() {
    let a = Store::open("sqlite::memory:").await.unwrap();
    let b = Store::open("sqlite::memory:").await.unwrap();
    a.set_opted_out("jdoe", true, 1).await.unwrap();
    assert!(a.is_opted_out("jdoe").await.unwrap());
    assert!(!b.is_opted_out("jdoe").await.unwrap());
}

#[tokio::test]
async fn postgres_wrong_password_is_unavailable_without_the_password() {
    let Some(admin_url) = postgres_url() else {
        return;
    };
    let mut url = url::Url::parse(&admin_url).unwrap();
    url.set_password(Some("Wr0ng-passw0rd")).unwrap();
    let error = Store::open(url.as_str()).await.expect_err("wrong password");
    let message = error.to_string();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    assert!(
        message.contains("password authentication failed"),
        "{message}"
    );
    assert!(!message.contains("Wr0ng-passw0rd"), "{message}");
}
