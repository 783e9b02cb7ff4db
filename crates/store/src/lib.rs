//! The persistent store: SQLite (one instance, the default) or PostgreSQL (several instances behind a
//! load balancer sharing one database).
//!
//! What it keeps, and why:
//! - `deliveries`: the Webex message ids already handled, so that a webhook Webex retries — or
//!   delivers to two instances — is answered once ([`Store::first_delivery`]).
//! - `privacy_settings`: each person's own choices — opted in or out, precision, working hours,
//!   who may find them (team, named people, blocked people); they hold across restarts and on every
//!   instance (`settings.rs`). `favourites`: the colleagues each requester starred.
//! - `audit`: every lookup, allowed or refused (when, requester, target, channel, outcome, sources
//!   asked, sources that found something, the precision it was answered with — never a position):
//!   `who looked for me`, the `audit` command, and `stats` over a window. Rows older than the
//!   retention are purged.
//! - `counters`: running totals per outcome and per source for `stats`; they survive the audit purge.
//! - `choices`: the numbered candidates offered to a requester after an ambiguous full name, so that
//!   the answer "2" works whichever instance receives it.
//! - `rate_limits`: the hourly lookup limit, one row per requester (a GCRA "theoretical arrival
//!   time" in milliseconds), checked and used in one conditional upsert
//!   ([`Store::reserve_lookup`]): it holds across instances and under concurrency, and costs one row
//!   however long the audit log. Rows of requesters whose allowance is full again are purged.
//! - `api_tokens`: bearer tokens for scripts, each acting as one requester; only a token's SHA-256 is
//!   kept ([`Store::create_token`], [`Store::token_requester`]).
//! - `web_keys`, `sessions`, `logins`: the web app's sign-in — keys shared by every instance (the
//!   CSRF key), browser sessions (by the hash of their id) and OpenID Connect sign-ins under way.
//! - `device_locations`: the latest fix of each device that a location stream pushes (Spaces
//!   Firehose, Meraki Scanning API), one row per `(source, mac)`, no history
//!   ([`Store::apply_live`], [`Store::live_devices`], [`LiveWriter`]; `live.rs`).
//! - `positions`: named positions in event streams that only move forward ([`Store::position`],
//!   [`Store::advance_position`]), e.g. the creation time of the last Webex message handled, for
//!   catching up after a restart.
//!
//! Not a table: leadership ([`Store::try_lead`], [`Store::lead`], [`Leadership`]) — which instance
//! runs a singleton task such as the Webex websocket — is a PostgreSQL session-level advisory lock on
//! a connection of its own; with SQLite the one instance leads.
//!
//! The writes every lookup makes (its rate-limit reservation, its audit row) go through one writer
//! task per store that commits all those waiting in one transaction (`writer.rs`); each call still
//! returns only after its own write has committed.
//!
//! The SQL is written once, with `$1…` placeholders, and runs on both backends (hence `CASE` where
//! one would write `GREATEST`); each backend has its own migrations (`migrations/sqlite`,
//! `migrations/postgres`, kept in step), run by [`Store::open`]. Every call is async (sqlx); nothing
//! blocks the async threads. Error messages never contain the password of the store URL.

mod address;
mod leader;
mod types;

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, Row};

use address::Scheme;
pub use leader::Leadership;
pub use types::{ApiToken, AuditEntry, AuditFilter, Outcome, Reservation, StoreStats};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// How long `open` waits for the PostgreSQL server to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a call waits for a PostgreSQL connection from the pool (or to open one).
const PG_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a call waits for a SQLite connection from the pool.
const SQLITE_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long SQLite waits for another writer before failing with "database is locked".
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The audit rows listed when the filter sets no limit.
const DEFAULT_AUDIT_LIMIT: u32 = 1000;

/// How often (in milliseconds) one lookup comes back to a requester under a limit of
/// `limit_per_hour`: 3,600,000 / limit, rounded up (so a steady pace never exceeds the limit);
/// at least 1.
pub fn rate_limit_interval_ms(limit_per_hour: u32) -> i64 {
    let limit = i64::from(limit_per_hour.max(1));
    (3_600_000 + limit - 1) / limit
}

/// Why the store could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or opened (also: a URL that names no usable database).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The schema could not be brought up to date.
    #[error("store migration failed: {0}")]
    Migration(String),
    /// A statement failed.
    #[error("store query failed: {0}")]
    Query(String),
}

/// The store: a pool of connections to SQLite or PostgreSQL. Cheap to clone (clones share the pool).
#[derive(Clone)]
pub struct Store {
    db: Db,
    /// The queue of the writes made in group commits (rate-limit reservations, audit rows).
    writes: writer::Writes,
    /// SQLite: the singleton tasks led by this store's clones.
    leaders: leader::LocalLeaders,
}

/// The pool, and what its error messages need.
#[derive(Clone)]
struct Db {
    backend: Backend,
    /// The URL with its password masked, for messages.
    label: Arc<str>,
    /// Secrets of the URL, scrubbed from every message.
    secrets: Arc<[String]>,
}

#[derive(Clone)]
enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the concrete pool: the same code, compiled once per backend.
macro_rules! with_pool {
    ($backend:expr, $pool:ident => $body:expr) => {
        match $backend {
            $crate::Backend::Sqlite($pool) => $body,
            $crate::Backend::Postgres($pool) => $body,
        }
    };
}

/// Binds every [`Arg`] of `$args` to `$query`, in order.
macro_rules! bind_all {
    ($query:expr, $args:expr) => {{
        let mut query = $query;
        for arg in $args {
            query = match arg {
                Arg::Text(text) => query.bind(text.as_str()),
                Arg::Int(int) => query.bind(*int),
                Arg::OptText(text) => query.bind(text.as_deref()),
                Arg::OptInt(int) => query.bind(*int),
            };
        }
        query
    }};
}

// After the macros, which they use.
mod live;
mod settings;
mod web;
mod writer;

pub use live::{
    LiveBatch, LiveChange, LiveDevice, LiveSummary, LiveWriter, LiveWriterStats, ROWS_PER_STATEMENT,
};
pub use settings::{PersonSettings, MAX_FAVOURITES, MAX_NAMED_PEOPLE, SETTINGS_BATCH};
pub use web::PendingLogin;

/// A bind parameter.
enum Arg {
    Text(String),
    Int(i64),
    /// A text that may be NULL (typed, as PostgreSQL needs).
    OptText(Option<String>),
    /// An integer that may be NULL.
    OptInt(Option<i64>),
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("kind", &self.kind())
            .field("url", &&*self.db.label)
            .finish()
    }
}

impl Store {
    /// Opens (creating a SQLite file if missing) the store at `url` and runs its migrations.
    ///
    /// `sqlite://PATH` (WAL, busy timeout 5 s, foreign keys), `sqlite::memory:` (one connection,
    /// gone when the store is dropped), `postgres://…` / `postgresql://…`.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let (label, secrets) = address::redact(url.trim());
        let secrets: Arc<[String]> = secrets.into();
        let label: Arc<str> = label.into();
        let scheme = address::scheme(url).map_err(|e| {
            StoreError::Unavailable(format!("{label}: {}", address::scrub(e, &secrets)))
        })?;
        let fail = |what: &str, e: &dyn fmt::Display| {
            StoreError::Unavailable(format!(
                "{what} {label}: {}",
                address::scrub(e.to_string(), &secrets)
            ))
        };
        let backend = match scheme {
            Scheme::SqliteFile | Scheme::SqliteMemory => {
                let options = SqliteConnectOptions::from_str(url.trim())
                    .map_err(|e| fail("invalid SQLite URL", &e))?
                    .create_if_missing(true)
                    .foreign_keys(true)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT);
                let pool = if scheme == Scheme::SqliteMemory {
                    // Each connection would be a database of its own: keep exactly one, forever.
                    SqlitePoolOptions::new()
                        .max_connections(1)
                        .min_connections(1)
                        .idle_timeout(None)
                        .max_lifetime(None)
                        .acquire_timeout(SQLITE_ACQUIRE_TIMEOUT)
                        .connect_with(options)
                        .await
                        .map_err(|e| fail("cannot open SQLite database", &e))?
                } else {
                    let path = options.get_filename().to_path_buf();
                    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                        if !tokio::fs::metadata(dir).await.is_ok_and(|m| m.is_dir()) {
                            return Err(fail(
                                "cannot open SQLite database",
                                &format_args!("directory {} does not exist", dir.display()),
                            ));
                        }
                    }
                    let options = options
                        .journal_mode(SqliteJournalMode::Wal)
                        .synchronous(SqliteSynchronous::Normal);
                    SqlitePoolOptions::new()
                        .max_connections(4)
                        .acquire_timeout(SQLITE_ACQUIRE_TIMEOUT)
                        .connect_with(options)
                        .await
                        .map_err(|e| {
                            fail(
                                "cannot open SQLite database",
                                &format_args!("{e} (file {})", path.display()),
                            )
                        })?
                };
                Backend::Sqlite(pool)
            }
            Scheme::Postgres => {
                let options = PgConnectOptions::from_str(url.trim())
                    .map_err(|e| fail("invalid PostgreSQL URL", &e))?
                    .application_name("whereis");
                // One connection first, for a clear error (the pool would retry a refused
                // connection until its timeout and report only that it timed out).
                match tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await {
                    Ok(Ok(conn)) => {
                        let _ = conn.close().await;
                    }
                    Ok(Err(e)) => return Err(fail("cannot connect to PostgreSQL at", &e)),
                    Err(_) => {
                        return Err(fail(
                            "cannot connect to PostgreSQL at",
                            &format_args!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
                        ))
                    }
                }
                Backend::Postgres(
                    PgPoolOptions::new()
                        .max_connections(10)
                        .acquire_timeout(PG_ACQUIRE_TIMEOUT)
                        .connect_lazy_with(options),
                )
            }
        };
        let db = Db {
            backend,
            label,
            secrets,
        };
        let store = Store {
            writes: writer::Writes::start(db.clone()),
            db,
            leaders: leader::LocalLeaders::default(),
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let result = match &self.db.backend {
            Backend::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await,
            Backend::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await,
        };
        result.map_err(|e| {
            let message = format!("{}: {}", self.db.label, self.scrub(e.to_string()));
            match e {
                MigrateError::Execute(sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut) => {
                    StoreError::Unavailable(message)
                }
                _ => StoreError::Migration(message),
            }
        })
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn kind(&self) -> &'static str {
        match self.db.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// The store URL with its password masked.
    pub fn url(&self) -> &str {
        &self.db.label
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.execute("SELECT 1", &[], "ping").await.map(drop)
    }

    /// The pool's connections: `(in use, idle)`.
    pub fn connections(&self) -> (u32, u32) {
        let (size, idle) = match &self.db.backend {
            Backend::Sqlite(pool) => (pool.size(), pool.num_idle()),
            Backend::Postgres(pool) => (pool.size(), pool.num_idle()),
        };
        let idle = u32::try_from(idle).unwrap_or(u32::MAX);
        (size.saturating_sub(idle), idle)
    }

    /// Closes every connection; later calls fail with [`StoreError::Unavailable`].
    pub async fn close(&self) {
        with_pool!(&self.db.backend, pool => pool.close().await)
    }

    /// Dedupe of webhook deliveries across instances: true only for the first caller with this id.
    pub async fn first_delivery(&self, message_id: &str, now: i64) -> Result<bool, StoreError> {
        let sql = "INSERT INTO deliveries (message_id, received_at) VALUES ($1, $2) \
                   ON CONFLICT (message_id) DO NOTHING";
        let args = [Arg::Text(message_id.to_owned()), Arg::Int(now)];
        let inserted = self
            .execute(sql, &args, "recording a webhook delivery")
            .await?;
        Ok(inserted == 1)
    }

    /// Forgets deliveries received before `before`; returns how many.
    pub async fn purge_deliveries_before(&self, before: i64) -> Result<u64, StoreError> {
        let sql = "DELETE FROM deliveries WHERE received_at < $1";
        self.execute(sql, &[Arg::Int(before)], "purging webhook deliveries")
            .await
    }

    /// Writes one audit row, and counts it for `stats`; returns once it is committed (in a group
    /// commit with the writes of concurrent lookups).
    pub async fn record(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.writes.record(entry.clone()).await
    }

    /// The audit rows matching `filter`, newest first.
    pub async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        let mut sql = String::from(
            "SELECT at, requester, target, channel, outcome, sources, found_by, devices, precision \
             FROM audit WHERE 1 = 1",
        );
        let mut args = Vec::new();
        let mut condition = |column: &str, op: &str, arg: Arg| {
            args.push(arg);
            sql.push_str(&format!(" AND {column} {op} ${}", args.len()));
        };
        if let Some(target) = &filter.target {
            condition("target", "=", Arg::Text(target.clone()));
        }
        if let Some(requester) = &filter.requester {
            condition("requester", "=", Arg::Text(requester.clone()));
        }
        if let Some(since) = filter.since {
            condition("at", ">=", Arg::Int(since));
        }
        let limit = match filter.limit {
            0 => DEFAULT_AUDIT_LIMIT,
            n => n,
        };
        args.push(Arg::Int(i64::from(limit)));
        sql.push_str(&format!(" ORDER BY at DESC, id DESC LIMIT ${}", args.len()));

        type Raw = (
            i64,
            String,
            String,
            String,
            String,
            String,
            String,
            i64,
            Option<String>,
        );
        let rows: Result<Vec<Raw>, sqlx::Error> = with_pool!(&self.db.backend, pool => {
            match bind_all!(sqlx::query(&sql), &args).fetch_all(pool).await {
                Ok(rows) => rows
                    .iter()
                    .map(|row| {
                        Ok((
                            row.try_get(0)?,
                            row.try_get(1)?,
                            row.try_get(2)?,
                            row.try_get(3)?,
                            row.try_get(4)?,
                            row.try_get(5)?,
                            row.try_get(6)?,
                            row.try_get(7)?,
                            row.try_get(8)?,
                        ))
                    })
                    .collect(),
                Err(e) => Err(e),
            }
        });
        let rows = rows.map_err(|e| self.error("reading the audit log", e))?;
        rows.into_iter()
            .map(
                |(
                    at,
                    requester,
                    target,
                    channel,
                    outcome,
                    sources,
                    found_by,
                    devices,
                    precision,
                )| {
                    let bad = |what: &str| {
                        StoreError::Query(format!(
                            "reading the audit log: the row at {at} for {target} has {what}"
                        ))
                    };
                    Ok(AuditEntry {
                        at,
                        outcome: Outcome::parse(&outcome)
                            .ok_or_else(|| bad(&format!("an unknown outcome {outcome:?}")))?,
                        sources: decode_list(&sources)
                            .ok_or_else(|| bad("a malformed list of sources"))?,
                        found_by: decode_list(&found_by)
                            .ok_or_else(|| bad("a malformed list of sources"))?,
                        devices: u32::try_from(devices)
                            .map_err(|_| bad("an impossible device count"))?,
                        requester,
                        target,
                        channel,
                        precision,
                    })
                },
            )
            .collect()
    }

    /// Deletes audit rows older than `before`; returns how many. The `stats` totals are kept.
    pub async fn purge_audit_before(&self, before: i64) -> Result<u64, StoreError> {
        let sql = "DELETE FROM audit WHERE at < $1";
        self.execute(sql, &[Arg::Int(before)], "purging the audit log")
            .await
    }

    /// The `stats` numbers: all-time totals (`since = None`, kept across audit purges), or those of
    /// the audit rows at or after `since`. `opted_out_people` is always the current count.
    pub async fn stats(&self, since: Option<i64>) -> Result<StoreStats, StoreError> {
        let mut stats = StoreStats::default();
        let what = "reading the stats";
        let (outcomes, sources) = match since {
            None => {
                let rows = self
                    .grouped("SELECT kind, name, n FROM counters", &[], what)
                    .await?;
                let (mut outcomes, mut sources) = (Vec::new(), Vec::new());
                for (kind, name, n) in rows {
                    match kind.as_str() {
                        "outcome" => outcomes.push((name, n)),
                        "source" => sources.push((name, n)),
                        _ => {}
                    }
                }
                (outcomes, sources)
            }
            Some(since) => {
                let outcomes = self
                    .grouped(
                        "SELECT '', outcome, COUNT(*) FROM audit WHERE at >= $1 GROUP BY outcome",
                        &[Arg::Int(since)],
                        what,
                    )
                    .await?;
                let lists = self
                    .grouped(
                        "SELECT '', found_by, COUNT(*) FROM audit \
                         WHERE at >= $1 AND found_by <> '[]' GROUP BY found_by",
                        &[Arg::Int(since)],
                        what,
                    )
                    .await?;
                let mut sources = Vec::new();
                for (_, list, n) in lists {
                    let names: BTreeSet<String> = decode_list(&list)
                        .ok_or_else(|| {
                            StoreError::Query(format!("{what}: a malformed list of sources"))
                        })?
                        .into_iter()
                        .collect();
                    sources.extend(names.into_iter().map(|name| (name, n)));
                }
                (
                    outcomes.into_iter().map(|(_, name, n)| (name, n)).collect(),
                    sources,
                )
            }
        };
        for (name, n) in outcomes {
            // An outcome this version does not know (written by a newer one) is left out.
            if let Some(outcome) = Outcome::parse(&name) {
                stats.add_outcome(outcome, n);
            }
        }
        for (name, n) in sources {
            *stats.by_source.entry(name).or_default() += n;
        }
        stats.opted_out_people = self.opted_out_count().await?;
        stats.opted_in_people = self.opted_in_count().await?;
        Ok(stats)
    }

    /// Reserves one lookup for `requester` under a limit of `limit_per_hour`, at `now_ms` (Unix
    /// milliseconds): granted and counted, or refused and nothing changed — in one statement, so
    /// concurrent callers (on every instance sharing the database) can never overspend.
    ///
    /// The limit is a GCRA over one row per requester: a full allowance holds `limit_per_hour`
    /// lookups, each granted lookup uses one, and one comes back every
    /// [`rate_limit_interval_ms`]`(limit_per_hour)` (3,600,000 / limit, rounded up) up to the full
    /// allowance. An idle requester can thus run `limit_per_hour` lookups at once, and then one per
    /// interval; at a steady pace that is `limit_per_hour` an hour. A refused request does not use
    /// any. A limit of 0 refuses everything without touching the database.
    pub async fn reserve_lookup(
        &self,
        requester: &str,
        limit_per_hour: u32,
        now_ms: i64,
    ) -> Result<Reservation, StoreError> {
        if limit_per_hour == 0 {
            return Ok(Reservation::Refused);
        }
        let interval = rate_limit_interval_ms(limit_per_hour);
        self.writes
            .reserve(writer::Reserve {
                requester: requester.to_owned(),
                now_ms,
                interval,
                window: interval.saturating_mul(i64::from(limit_per_hour)),
            })
            .await
    }

    /// Forgets the rate-limit rows of requesters whose allowance is full again at `now_ms`
    /// (such a row means the same as no row); returns how many.
    pub async fn purge_rate_limits(&self, now_ms: i64) -> Result<u64, StoreError> {
        let sql = "DELETE FROM rate_limits WHERE tat <= $1";
        self.execute(sql, &[Arg::Int(now_ms)], "purging rate limits")
            .await
    }

    /// Stores an API token under `name` for `requester`, by the hash of the token; false when a
    /// token of that name exists already (nothing is changed then).
    pub async fn create_token(
        &self,
        name: &str,
        requester: &str,
        token_hash: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let sql = "INSERT INTO api_tokens (name, requester, token_hash, created_at) \
                   VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING";
        let args = [
            Arg::Text(name.to_owned()),
            Arg::Text(requester.to_owned()),
            Arg::Text(token_hash.to_owned()),
            Arg::Int(now),
        ];
        let created = self.execute(sql, &args, "creating an API token").await?;
        Ok(created == 1)
    }

    /// The requester of the token whose hash is `token_hash`, if it exists (and was not revoked).
    pub async fn token_requester(&self, token_hash: &str) -> Result<Option<String>, StoreError> {
        let sql = "SELECT requester FROM api_tokens WHERE token_hash = $1";
        self.text(
            sql,
            &[Arg::Text(token_hash.to_owned())],
            "checking an API token",
        )
        .await
    }

    /// Every API token, by name.
    pub async fn tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        let sql = "SELECT name, requester, created_at FROM api_tokens ORDER BY name";
        let rows: Result<Vec<ApiToken>, sqlx::Error> = with_pool!(&self.db.backend, pool => {
            match sqlx::query(sql).fetch_all(pool).await {
                Ok(rows) => rows
                    .iter()
                    .map(|row| {
                        Ok(ApiToken {
                            name: row.try_get(0)?,
                            requester: row.try_get(1)?,
                            created_at: row.try_get(2)?,
                        })
                    })
                    .collect(),
                Err(e) => Err(e),
            }
        });
        rows.map_err(|e| self.error("listing API tokens", e))
    }

    /// Deletes the API token `name`; false when there is none.
    pub async fn revoke_token(&self, name: &str) -> Result<bool, StoreError> {
        let sql = "DELETE FROM api_tokens WHERE name = $1";
        let deleted = self
            .execute(sql, &[Arg::Text(name.to_owned())], "revoking an API token")
            .await?;
        Ok(deleted > 0)
    }

    /// The stored position of the stream `name`, if any.
    pub async fn position(&self, name: &str) -> Result<Option<i64>, StoreError> {
        let sql = "SELECT value FROM positions WHERE name = $1";
        let value: Result<Option<i64>, sqlx::Error> = with_pool!(&self.db.backend, pool => {
            match sqlx::query(sql).bind(name).fetch_optional(pool).await {
                Ok(Some(row)) => row.try_get(0).map(Some),
                Ok(None) => Ok(None),
                Err(e) => Err(e),
            }
        });
        value.map_err(|e| self.error("reading a stream position", e))
    }

    /// Moves the position of the stream `name` to `value`, unless it is already there or further:
    /// positions only move forward, also when instances advance them concurrently.
    pub async fn advance_position(&self, name: &str, value: i64) -> Result<(), StoreError> {
        let sql = "INSERT INTO positions (name, value) VALUES ($1, $2) \
                   ON CONFLICT (name) DO UPDATE SET value = excluded.value \
                   WHERE positions.value < excluded.value";
        let args = [Arg::Text(name.to_owned()), Arg::Int(value)];
        self.execute(sql, &args, "advancing a stream position")
            .await
            .map(drop)
    }

    /// Remembers the candidates offered to `requester` after an ambiguous full name (replacing any
    /// earlier list; an empty list forgets it).
    pub async fn save_choices(
        &self,
        requester: &str,
        usernames: &[String],
        now: i64,
    ) -> Result<(), StoreError> {
        let what = "saving the candidates";
        let requester = Arg::Text(requester.to_owned());
        if usernames.is_empty() {
            let sql = "DELETE FROM choices WHERE requester = $1";
            self.execute(sql, &[requester], what).await?;
        } else {
            let sql = "INSERT INTO choices (requester, usernames, saved_at) VALUES ($1, $2, $3) \
                       ON CONFLICT (requester) DO UPDATE \
                       SET usernames = excluded.usernames, saved_at = excluded.saved_at";
            let args = [requester, Arg::Text(encode_list(usernames)), Arg::Int(now)];
            self.execute(sql, &args, what).await?;
        }
        Ok(())
    }

    /// Candidate `n` (1-based) of the list offered to `requester`, forgetting the list; `None` when
    /// there is no list, it is older than `ttl` seconds, or `n` is not on it (the list is then kept).
    pub async fn take_choice(
        &self,
        requester: &str,
        n: usize,
        now: i64,
        ttl: i64,
    ) -> Result<Option<String>, StoreError> {
        let what = "reading the candidates";
        let select = "SELECT usernames, saved_at FROM choices WHERE requester = $1";
        let row: Result<Option<(String, i64)>, sqlx::Error> = with_pool!(&self.db.backend, pool => {
            match sqlx::query(select).bind(requester).fetch_optional(pool).await {
                Ok(Some(row)) => row
                    .try_get(0)
                    .and_then(|list| Ok(Some((list, row.try_get(1)?)))),
                Ok(None) => Ok(None),
                Err(e) => Err(e),
            }
        });
        let Some((list, saved_at)) = row.map_err(|e| self.error(what, e))? else {
            return Ok(None);
        };
        // Compare-and-delete: only the caller that deletes this very list gets the choice.
        let delete =
            "DELETE FROM choices WHERE requester = $1 AND usernames = $2 AND saved_at = $3";
        let args = [
            Arg::Text(requester.to_owned()),
            Arg::Text(list.clone()),
            Arg::Int(saved_at),
        ];
        let forget =
            || async { Ok::<_, StoreError>(self.execute(delete, &args, what).await? == 1) };
        if now.saturating_sub(saved_at) > ttl {
            forget().await?;
            return Ok(None);
        }
        let usernames = decode_list(&list)
            .ok_or_else(|| StoreError::Query(format!("{what}: a malformed list")))?;
        let Some(choice) = n.checked_sub(1).and_then(|i| usernames.get(i)) else {
            return Ok(None);
        };
        Ok(forget().await?.then(|| choice.clone()))
    }

    /// Leads the singleton task `name` if no other instance (or task of this one) does: on
    /// PostgreSQL, takes a session-level advisory lock on a connection of its own (see
    /// [`Leadership`]); on SQLite, the only instance leads unless one of its tasks already does.
    /// `None` when someone else leads.
    pub async fn try_lead(&self, name: &str) -> Result<Option<Leadership>, StoreError> {
        match &self.db.backend {
            Backend::Sqlite(pool) => {
                if pool.is_closed() {
                    return Err(self.error("taking the lead", sqlx::Error::PoolClosed));
                }
                Ok(Leadership::local(name, &self.leaders))
            }
            Backend::Postgres(pool) => Leadership::postgres(name, &pool.connect_options())
                .await
                .map_err(|e| self.error("taking the lead", e)),
        }
    }

    /// Waits until this instance leads `name`, trying every `poll` (a standby takes over within
    /// `poll` of the leader's session ending). Store errors are logged and retried; to give up,
    /// drop the future.
    pub async fn lead(&self, name: &str, poll: Duration) -> Leadership {
        let mut failing = false;
        loop {
            match self.try_lead(name).await {
                Ok(Some(leadership)) => {
                    tracing::info!(name, "leading");
                    return leadership;
                }
                Ok(None) => failing = false,
                Err(err) if !failing => {
                    tracing::warn!(name, error = %err, "cannot compete for the lead; retrying");
                    failing = true;
                }
                Err(err) => tracing::debug!(name, error = %err, "cannot compete for the lead"),
            }
            tokio::time::sleep(poll).await;
        }
    }

    /// Runs a statement; returns the number of rows it changed.
    async fn execute(&self, sql: &str, args: &[Arg], what: &str) -> Result<u64, StoreError> {
        let done: Result<u64, sqlx::Error> = with_pool!(&self.db.backend, pool => {
            bind_all!(sqlx::query(sql), args)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        });
        done.map_err(|e| self.error(what, e))
    }

    /// Runs a `SELECT COUNT(*) …`.
    async fn count(&self, sql: &str, args: &[Arg], what: &str) -> Result<u64, StoreError> {
        let count: Result<i64, sqlx::Error> = with_pool!(&self.db.backend, pool => {
            match bind_all!(sqlx::query(sql), args).fetch_one(pool).await {
                Ok(row) => row.try_get(0),
                Err(e) => Err(e),
            }
        });
        count
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(|e| self.error(what, e))
    }

    /// Runs a query whose one row (if any) is one text column.
    async fn text(
        &self,
        sql: &str,
        args: &[Arg],
        what: &str,
    ) -> Result<Option<String>, StoreError> {
        let found: Result<Option<String>, sqlx::Error> = with_pool!(&self.db.backend, pool => {
            match bind_all!(sqlx::query(sql), args).fetch_optional(pool).await {
                Ok(Some(row)) => row.try_get(0).map(Some),
                Ok(None) => Ok(None),
                Err(e) => Err(e),
            }
        });
        found.map_err(|e| self.error(what, e))
    }

    /// Runs a query whose rows are `(text, text, count)`.
    async fn grouped(
        &self,
        sql: &str,
        args: &[Arg],
        what: &str,
    ) -> Result<Vec<(String, String, u64)>, StoreError> {
        let rows: Result<Vec<(String, String, i64)>, sqlx::Error> = with_pool!(&self.db.backend, pool => {
            match bind_all!(sqlx::query(sql), args).fetch_all(pool).await {
                Ok(rows) => rows
                    .iter()
                    .map(|row| Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)))
                    .collect(),
                Err(e) => Err(e),
            }
        });
        rows.map(|rows| {
            rows.into_iter()
                .map(|(a, b, n)| (a, b, u64::try_from(n).unwrap_or(0)))
                .collect()
        })
        .map_err(|e| self.error(what, e))
    }

    fn scrub(&self, message: String) -> String {
        self.db.scrub(message)
    }

    /// A store error for `e`, which happened while doing `what`.
    fn error(&self, what: &str, e: sqlx::Error) -> StoreError {
        self.db.error(what, e)
    }
}

impl Db {
    fn scrub(&self, message: String) -> String {
        address::scrub(message, &self.secrets)
    }

    /// A store error for `e`, which happened while doing `what`.
    fn error(&self, what: &str, e: sqlx::Error) -> StoreError {
        self.error_of(what, &e)
    }

    /// [`Db::error`] of a borrowed error (one failed transaction answers several callers).
    fn error_of(&self, what: &str, e: &sqlx::Error) -> StoreError {
        let unavailable = match e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(db) => db.code().is_some_and(|code| {
                // PostgreSQL: connection exceptions (08…), shutdown / cannot connect now (57P0…),
                // database gone (3D000), too many connections (53300). SQLite: cannot open (14),
                // not a database (26).
                code.starts_with("08")
                    || code.starts_with("57P0")
                    || matches!(&*code, "3D000" | "53300" | "14" | "26")
            }),
            _ => false,
        };
        let detail = match e {
            sqlx::Error::PoolTimedOut => format!(
                "no connection to the database within {} s",
                match self.backend {
                    Backend::Sqlite(_) => SQLITE_ACQUIRE_TIMEOUT,
                    Backend::Postgres(_) => PG_ACQUIRE_TIMEOUT,
                }
                .as_secs()
            ),
            sqlx::Error::PoolClosed => "the store was closed".to_owned(),
            e => e.to_string(),
        };
        let message = format!("{what} ({}): {}", self.label, self.scrub(detail));
        if unavailable {
            StoreError::Unavailable(message)
        } else {
            StoreError::Query(message)
        }
    }
}

/// A list of names as stored in a TEXT column: a JSON array of strings.
fn encode_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_owned())
}

/// The list stored by [`encode_list`].
fn decode_list(text: &str) -> Option<Vec<String>> {
    serde_json::from_str(text).ok()
}
