//! The store's test suite, written once and run against every backend: SQLite in a temporary file,
//! SQLite in memory, and a real PostgreSQL server (`WHEREIS_TEST_POSTGRES_URL`, set up by
//! `.ci/postgres.sh`; each PostgreSQL test gets a database of its own, so tests run in parallel).
//!
//! Without `WHEREIS_TEST_POSTGRES_URL` the PostgreSQL variants are skipped with a note — except
//! under CI, where they fail (`common::services`).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::services::{self, PgDatabase};
use sqlx::Connection;
use whereis::store::{
    rate_limit_interval_ms, ApiToken, AuditEntry, AuditFilter, Outcome, PendingLogin,
    PersonSettings, Reservation, Store, StoreError,
};

/// A database for one test: the store opened on it, and how to open another instance on it.
struct Db {
    store: Store,
    /// The URL of this database, when a second `Store` can be opened on it.
    url: Option<String>,
    /// Keeps the SQLite file's directory alive.
    _dir: Option<tempfile::TempDir>,
    /// The PostgreSQL database, dropped at the end.
    postgres: Option<PgDatabase>,
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
        let postgres = services::fresh_postgres().await?;
        let store = Store::open(&postgres.url).await.expect("open PostgreSQL");
        Some(Db {
            store,
            url: Some(postgres.url.clone()),
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
    privacy_settings_round_trip_and_concurrent_changes,
    audit_round_trip_filters_and_order,
    audit_limit,
    audit_across_two_instances,
    one_bad_write_fails_alone,
    reservations_burst_then_refill,
    concurrent_reservations_grant_exactly_the_limit,
    reservations_read_one_row_however_large_the_audit_log,
    positions_only_move_forward,
    one_leader_per_name,
    purges,
    stats,
    stats_survive_the_audit_purge,
    choices,
    choices_taken_once_across_instances,
    store_lost_mid_run,
    api_tokens_created_found_listed_revoked,
    sessions_logins_and_shared_keys,
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
        precision: None,
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
    // Many names at once, over more than one batch.
    let mut names: Vec<String> = (0..whereis::store::SETTINGS_BATCH + 20)
        .map(|n| format!("user{n}"))
        .collect();
    names.push("émilie".to_owned());
    names.push("jdoe".to_owned());
    store.set_opted_out("user3", true, 400).await.unwrap();
    store.set_opted_out("user510", true, 400).await.unwrap();
    let chosen = other.settings_among(&names).await.unwrap();
    let out: Vec<&String> = chosen
        .iter()
        .filter(|(_, s)| s.findable == Some(false))
        .map(|(name, _)| name)
        .collect();
    assert_eq!(out, ["user3", "user510", "émilie"]);
    assert_eq!(chosen.get("jdoe").and_then(|s| s.findable), Some(true));
    assert!(!chosen.contains_key("user4"), "no choice, no row");
    assert!(store.settings_among(&[]).await.unwrap().is_empty());
}

async fn privacy_settings_round_trip_and_concurrent_changes(db: &Db) {
    let store = &db.store;
    assert_eq!(
        store.person_settings("jdoe").await.unwrap(),
        PersonSettings::default()
    );
    let wanted = PersonSettings {
        findable: Some(true),
        precision: Some("floor".into()),
        hours: Some("09:00-17:00 mon,tue".into()),
        restricted: true,
        share_team: true,
        shared_with: vec!["jane@example.com".into(), "o'brien@example.com".into()],
        blocked: vec!["nosy@example.com".into()],
    };
    let copy = wanted.clone();
    let answer = store
        .update_person_settings("jdoe", 100, |s| {
            *s = copy.clone();
            "changed"
        })
        .await
        .unwrap();
    assert_eq!(answer, "changed");
    let other = db.another().await;
    assert_eq!(other.person_settings("jdoe").await.unwrap(), wanted);
    // Unchanged: nothing written, the answer still comes back.
    let unchanged = store
        .update_person_settings("jdoe", 200, |s| s.share_team)
        .await
        .unwrap();
    assert!(unchanged);
    // Two instances adding at once: every addition lands.
    let adds = (0..10).map(|i| {
        let store = if i % 2 == 0 {
            store.clone()
        } else {
            other.clone()
        };
        async move {
            store
                .update_person_settings("jdoe", 300, |s| {
                    s.blocked.push(format!("b{i}@example.com"))
                })
                .await
        }
    });
    for added in futures::future::join_all(adds).await {
        added.unwrap();
    }
    assert_eq!(
        store.person_settings("jdoe").await.unwrap().blocked.len(),
        11
    );
    // Favourites, likewise.
    let stars = (0..10).map(|i| {
        let store = if i % 2 == 0 {
            store.clone()
        } else {
            other.clone()
        };
        async move {
            store
                .update_favourites("jane@example.com", 300, |list| list.push(format!("u{i}")))
                .await
        }
    });
    for starred in futures::future::join_all(stars).await {
        starred.unwrap();
    }
    let mut list = other.favourites("jane@example.com").await.unwrap();
    list.sort();
    assert_eq!(list.len(), 10);
    assert!(store
        .favourites("bob@example.com")
        .await
        .unwrap()
        .is_empty());
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
        precision: None,
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

async fn audit_across_two_instances(db: &Db) {
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
    // Each instance sees the lookups served by both.
    let since = |since: i64| AuditFilter {
        requester: Some(alice.to_owned()),
        since: Some(since),
        ..AuditFilter::default()
    };
    assert_eq!(a.audit(&since(10_000)).await.unwrap().len(), 40);
    assert_eq!(b.audit(&since(10_000)).await.unwrap().len(), 40);
    assert_eq!(b.audit(&since(10_010)).await.unwrap().len(), 20);
    let stats = a.stats(None).await.unwrap();
    assert_eq!((stats.lookups, stats.found), (40, 40));
    assert_eq!(stats.by_source.get("cmx-north"), Some(&40));
}

/// Concurrent writes share transactions (group commit); a write the database rejects (PostgreSQL
/// refuses a NUL byte in text, SQLite takes it) fails alone, and every other write is kept.
async fn one_bad_write_fails_alone(db: &Db) {
    let store = &db.store;
    let alice = "alice@example.com";
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = store.clone();
        let target = if i == 20 {
            "jd\0oe".to_owned()
        } else {
            format!("user{i}")
        };
        tasks.push(tokio::spawn(async move {
            let reserved = store.reserve_lookup(alice, 1000, T0).await;
            let recorded = store
                .record(&entry(20_000 + i, alice, &target, Outcome::NotFound))
                .await;
            (i, reserved, recorded)
        }));
    }
    let mut failed = Vec::new();
    for task in tasks {
        let (i, reserved, recorded) = task.await.unwrap();
        assert!(
            matches!(reserved, Ok(Reservation::Granted { .. })),
            "{reserved:?}"
        );
        if let Err(e) = recorded {
            assert!(matches!(e, StoreError::Query(_)), "{e:?}");
            failed.push(i);
        }
    }
    let expected_failures = if store.kind() == "postgres" {
        vec![20]
    } else {
        vec![]
    };
    assert_eq!(failed, expected_failures);
    let rows = store
        .audit(&AuditFilter {
            requester: Some(alice.to_owned()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 40 - expected_failures.len());
    let stats = store.stats(None).await.unwrap();
    assert_eq!(stats.lookups, 40 - expected_failures.len() as u64);
}

/// A moment (Unix milliseconds) the rate-limit tests start at.
const T0: i64 = 1_700_000_000_000;
const HOUR_MS: i64 = 3_600_000;

fn granted(remaining: u32) -> Reservation {
    Reservation::Granted { remaining }
}

async fn reservations_burst_then_refill(db: &Db) {
    let store = &db.store;
    let (alice, bob) = ("alice@example.com", "bob@example.com");
    // "3 per hour": 3 at once, then one every 20 minutes.
    let interval = rate_limit_interval_ms(3);
    assert_eq!(interval, 1_200_000);
    assert_eq!(rate_limit_interval_ms(7), 514_286, "rounded up");
    for remaining in [2, 1, 0] {
        assert_eq!(
            store.reserve_lookup(alice, 3, T0).await.unwrap(),
            granted(remaining)
        );
    }
    assert_eq!(
        store.reserve_lookup(alice, 3, T0).await.unwrap(),
        Reservation::Refused
    );
    assert_eq!(
        store
            .reserve_lookup(alice, 3, T0 + interval - 1)
            .await
            .unwrap(),
        Reservation::Refused,
        "nothing comes back before the interval"
    );
    // Another requester has an allowance of their own.
    assert_eq!(store.reserve_lookup(bob, 3, T0).await.unwrap(), granted(2));
    // One lookup comes back per interval; refusals used nothing.
    assert_eq!(
        store.reserve_lookup(alice, 3, T0 + interval).await.unwrap(),
        granted(0)
    );
    assert_eq!(
        store.reserve_lookup(alice, 3, T0 + interval).await.unwrap(),
        Reservation::Refused
    );
    assert_eq!(
        store
            .reserve_lookup(alice, 3, T0 + 3 * interval)
            .await
            .unwrap(),
        granted(1),
        "two came back"
    );
    // Idle for long: the full allowance, and no more.
    let later = T0 + 10 * HOUR_MS;
    assert_eq!(
        store.reserve_lookup(alice, 3, later).await.unwrap(),
        granted(2)
    );
    // A lower limit applies at once: with 1 per hour, the lookup just made used it up.
    assert_eq!(
        store.reserve_lookup(alice, 1, later + 1).await.unwrap(),
        Reservation::Refused
    );
    // A limit of 0 refuses everything.
    assert_eq!(
        store
            .reserve_lookup("carol@example.com", 0, T0)
            .await
            .unwrap(),
        Reservation::Refused
    );
    // Purging forgets those whose allowance is full again (bob), and keeps the others (alice).
    assert_eq!(store.purge_rate_limits(later).await.unwrap(), 1);
    assert_eq!(store.purge_rate_limits(later).await.unwrap(), 0);
    assert_eq!(
        store.reserve_lookup(bob, 3, later).await.unwrap(),
        granted(2)
    );
    assert_eq!(
        store.reserve_lookup(alice, 3, later).await.unwrap(),
        granted(1),
        "alice's earlier lookup survived the purge"
    );
}

async fn concurrent_reservations_grant_exactly_the_limit(db: &Db) {
    let a = db.store.clone();
    let b = db.another().await;
    // On one instance, then split across two (in-memory SQLite: two clones of the one store).
    for (requester, stores) in [
        ("alice@example.com", vec![a.clone()]),
        ("bob@example.com", vec![a.clone(), b.clone()]),
    ] {
        let start = Arc::new(tokio::sync::Barrier::new(50));
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let store = stores[i % stores.len()].clone();
                let start = Arc::clone(&start);
                tokio::spawn(async move {
                    start.wait().await;
                    store.reserve_lookup(requester, 10, T0).await
                })
            })
            .collect();
        let mut remaining = Vec::new();
        for task in tasks {
            match task.await.unwrap().expect("reservation") {
                Reservation::Granted { remaining: left } => remaining.push(left),
                Reservation::Refused => {}
            }
        }
        remaining.sort_unstable();
        assert_eq!(
            remaining,
            (0..10).collect::<Vec<u32>>(),
            "{requester} on {} instance(s): exactly 10 granted, one after the other",
            stores.len()
        );
    }
}

/// Runs `sql` on the database at `url` over a connection of its own.
async fn raw_sql(url: &str, sql: &str) {
    if url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.expect("connect");
        sqlx::raw_sql(sql).execute(&mut conn).await.expect(sql);
        conn.close().await.expect("close");
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
        sqlx::raw_sql(sql).execute(&mut conn).await.expect(sql);
        conn.close().await.expect("close");
    }
}

async fn reservations_read_one_row_however_large_the_audit_log(db: &Db) {
    // In-memory SQLite cannot be reached from a second connection; the others cover the SQL.
    let Some(url) = &db.url else { return };
    let store = &db.store;
    let alice = "alice@example.com";
    let now_s = T0 / 1000;
    // 100,000 lookups by alice in the audit log, all within the last hour.
    raw_sql(
        url,
        &format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000) \
             INSERT INTO audit (at, requester, target, channel, outcome) \
             SELECT {now_s} - (i % 3600), '{alice}', 'jdoe', 'chat', 'found' FROM n"
        ),
    )
    .await;
    let listed = store
        .audit(&AuditFilter {
            requester: Some(alice.to_owned()),
            limit: 200_000,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 100_000);
    // They do not count: the allowance alone decides.
    for remaining in (0..10).rev() {
        assert_eq!(
            store.reserve_lookup(alice, 10, T0).await.unwrap(),
            granted(remaining)
        );
    }
    assert_eq!(
        store.reserve_lookup(alice, 10, T0).await.unwrap(),
        Reservation::Refused
    );
    // And they are not read at all: with the audit table gone, reservations still work.
    raw_sql(url, "ALTER TABLE audit RENAME TO audit_aside").await;
    let interval = rate_limit_interval_ms(10);
    assert_eq!(
        store
            .reserve_lookup(alice, 10, T0 + interval)
            .await
            .expect("a reservation does not need the audit log"),
        granted(0)
    );
    assert_eq!(
        store
            .reserve_lookup(alice, 10, T0 + interval)
            .await
            .unwrap(),
        Reservation::Refused
    );
    raw_sql(url, "ALTER TABLE audit_aside RENAME TO audit").await;
    // One row per requester, whatever the history.
    let stats = store
        .stats(Some(now_s - 3600))
        .await
        .expect("the audit log is back");
    assert_eq!(stats.found, 100_000);
    let count_sql = "SELECT COUNT(*) FROM rate_limits";
    let count: i64 = if url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query_scalar(count_sql)
            .fetch_one(&mut conn)
            .await
            .unwrap()
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query_scalar(count_sql)
            .fetch_one(&mut conn)
            .await
            .unwrap()
    };
    assert_eq!(count, 1);
}

async fn positions_only_move_forward(db: &Db) {
    let store = &db.store;
    assert_eq!(store.position("webex").await.unwrap(), None);
    store.advance_position("webex", 1_000).await.unwrap();
    assert_eq!(store.position("webex").await.unwrap(), Some(1_000));
    store.advance_position("webex", 999).await.unwrap();
    store.advance_position("webex", 1_000).await.unwrap();
    assert_eq!(
        store.position("webex").await.unwrap(),
        Some(1_000),
        "never backwards"
    );
    store.advance_position("webex", 1_001).await.unwrap();
    assert_eq!(store.position("webex").await.unwrap(), Some(1_001));
    // Positions are independent, and any i64 will do.
    assert_eq!(store.position("spaces:hq").await.unwrap(), None);
    store.advance_position("spaces:hq", -5).await.unwrap();
    assert_eq!(store.position("spaces:hq").await.unwrap(), Some(-5));
    assert_eq!(store.position("webex").await.unwrap(), Some(1_001));

    // Two instances advancing at once, in any order: the furthest wins.
    let a = db.store.clone();
    let b = db.another().await;
    let mut values: Vec<i64> = (2_000..2_100).collect();
    fastrand::shuffle(&mut values);
    let start = Arc::new(tokio::sync::Barrier::new(values.len()));
    let tasks: Vec<_> = values
        .iter()
        .enumerate()
        .map(|(i, &value)| {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            let start = Arc::clone(&start);
            tokio::spawn(async move {
                start.wait().await;
                store.advance_position("webex", value).await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().expect("advance");
    }
    assert_eq!(a.position("webex").await.unwrap(), Some(2_099));
    assert_eq!(b.position("webex").await.unwrap(), Some(2_099));
}

async fn one_leader_per_name(db: &Db) {
    let store = &db.store;
    let mut first = store
        .try_lead("webex")
        .await
        .unwrap()
        .expect("nobody leads yet");
    assert_eq!(first.name(), "webex");
    assert!(first.still_held().await);
    assert!(
        store.try_lead("webex").await.unwrap().is_none(),
        "a second task cannot lead the same name"
    );
    let mut other = store
        .try_lead("spaces:hq")
        .await
        .unwrap()
        .expect("another name is free");
    assert!(other.still_held().await);
    first.release().await;
    // Free again at once; `lead` returns without waiting.
    let mut again = tokio::time::timeout(
        Duration::from_secs(10),
        store.lead("webex", Duration::from_secs(3600)),
    )
    .await
    .expect("free after the release");
    assert!(again.still_held().await);
    assert!(store.try_lead("webex").await.unwrap().is_none());
    assert!(format!("{again:?}").contains("webex"));
    drop(other);
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
            "reserve_lookup",
            store.reserve_lookup("alice@example.com", 10, 2).await.err(),
        ),
        ("purge_rate_limits", store.purge_rate_limits(2).await.err()),
        ("position", store.position("webex").await.err()),
        (
            "advance_position",
            store.advance_position("webex", 2).await.err(),
        ),
        ("try_lead", store.try_lead("webex").await.err()),
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
    let Some(admin_url) = services::postgres_url() else {
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

// ---- leadership across instances: PostgreSQL only (SQLite serves one instance) ----

/// Ends the session holding the advisory lock on `db`'s database, as if its instance died.
async fn kill_the_leader_session(db: &Db) {
    let url = db.url.as_deref().expect("a PostgreSQL URL");
    let mut admin = sqlx::PgConnection::connect(url).await.expect("connect");
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(l.pid) FROM pg_locks l \
         JOIN pg_database d ON d.oid = l.database \
         WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()",
    )
    .fetch_all(&mut admin)
    .await
    .expect("terminate the leader's session");
    assert_eq!(killed, vec![true], "exactly one session held the lock");
    admin.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_standby_takes_over_when_the_leader_session_dies() {
    let Some(db) = Db::postgres().await else {
        return;
    };
    let (a, b) = (db.store.clone(), db.another().await);
    let mut leader = a.try_lead("webex").await.unwrap().expect("a leads");
    assert!(
        b.try_lead("webex").await.unwrap().is_none(),
        "the other instance cannot lead while a does"
    );
    b.try_lead("spaces:hq")
        .await
        .unwrap()
        .expect("another name is free on the other instance")
        .release()
        .await;

    // A standby polls; it does not get the lead while the leader lives.
    let poll = Duration::from_millis(100);
    let standby = b.clone();
    let mut waiting = tokio::spawn(async move { standby.lead("webex", poll).await });
    assert!(
        tokio::time::timeout(Duration::from_millis(700), &mut waiting)
            .await
            .is_err(),
        "the standby must not lead while the leader's session lives"
    );
    assert!(leader.still_held().await);

    // The leader's session dies: the standby leads on its next poll, the old leader knows it lost.
    let died = Instant::now();
    kill_the_leader_session(&db).await;
    let mut new_leader = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the standby takes over")
        .expect("task");
    assert!(died.elapsed() < Duration::from_secs(10));
    assert!(new_leader.still_held().await);
    assert!(!leader.still_held().await, "the old leader lost the lock");
    assert!(!leader.still_held().await, "and stays lost");
    assert!(a.try_lead("webex").await.unwrap().is_none());

    // Released: the other instance can lead at once.
    new_leader.release().await;
    let dropped = a
        .try_lead("webex")
        .await
        .unwrap()
        .expect("free after release");
    // Dropped (the connection closes): the other instance leads on a following poll.
    drop(dropped);
    let mut last = tokio::time::timeout(Duration::from_secs(10), b.lead("webex", poll))
        .await
        .expect("free after the leader's connection closed");
    assert!(last.still_held().await);
    drop(leader);
}

async fn api_tokens_created_found_listed_revoked(db: &Db) {
    let store = &db.store;
    assert!(store
        .create_token("nightly", "ops@example.com", "hash-1", 100)
        .await
        .unwrap());
    // A second token of the same name is refused and changes nothing.
    assert!(!store
        .create_token("nightly", "mallory@example.com", "hash-2", 101)
        .await
        .unwrap());
    assert!(store
        .create_token("backup", "it@example.com", "hash-3", 102)
        .await
        .unwrap());
    let other = db.another().await;
    assert_eq!(
        other.token_requester("hash-1").await.unwrap().as_deref(),
        Some("ops@example.com")
    );
    assert_eq!(other.token_requester("hash-2").await.unwrap(), None);
    assert_eq!(
        store.tokens().await.unwrap(),
        vec![
            ApiToken {
                name: "backup".to_owned(),
                requester: "it@example.com".to_owned(),
                created_at: 102
            },
            ApiToken {
                name: "nightly".to_owned(),
                requester: "ops@example.com".to_owned(),
                created_at: 100
            },
        ]
    );
    assert!(store.revoke_token("nightly").await.unwrap());
    assert!(!store.revoke_token("nightly").await.unwrap());
    assert_eq!(other.token_requester("hash-1").await.unwrap(), None);
}

async fn sessions_logins_and_shared_keys(db: &Db) {
    let store = &db.store;
    let other = db.another().await;
    // The first instance's key wins; the second gets the same one.
    assert_eq!(store.shared_key("csrf", "aa", 1).await.unwrap(), "aa");
    assert_eq!(other.shared_key("csrf", "bb", 2).await.unwrap(), "aa");

    store
        .create_session("s1", "jane@example.com", 100, 200)
        .await
        .unwrap();
    assert_eq!(
        other.session_requester("s1", 150).await.unwrap().as_deref(),
        Some("jane@example.com")
    );
    assert_eq!(
        other.session_requester("s1", 200).await.unwrap(),
        None,
        "expired"
    );
    assert_eq!(other.session_requester("s2", 150).await.unwrap(), None);
    assert!(other.end_session("s1").await.unwrap());
    assert_eq!(store.session_requester("s1", 150).await.unwrap(), None);

    let login = PendingLogin {
        state: "st".to_owned(),
        nonce: "n".to_owned(),
        verifier: "v".to_owned(),
        return_to: "/?q=jdoe".to_owned(),
    };
    store.save_login(&login, 1_000).await.unwrap();
    // Too old, then taken once.
    assert_eq!(other.take_login("st", 1_001).await.unwrap(), None);
    assert_eq!(other.take_login("st", 1_000).await.unwrap(), Some(login));
    assert_eq!(store.take_login("st", 1_000).await.unwrap(), None);

    store
        .create_session("old", "a@example.com", 1, 10)
        .await
        .unwrap();
    store
        .create_session("new", "b@example.com", 1, 1_000)
        .await
        .unwrap();
    assert_eq!(store.purge_sessions(500, 0).await.unwrap(), 1);
    assert!(store.session_requester("new", 500).await.unwrap().is_some());
}
