//! The live device table: positions that location streams push (Cisco Spaces Firehose, Meraki
//! Scanning API posts), kept in `device_locations` so that a lookup on any instance reads them.
//!
//! What it keeps: one row per device and source (key `(source, mac)`) with that device's LATEST fix
//! only — who (the normalised username, the raw 802.1X identity), where (the stream's floor id,
//! campus/building/floor names, x/y in `FEET` or `METER`, accuracy), on what network (SSID, IP),
//! its status and when it was last seen. There is no history, on purpose: a trail of where each
//! person's device has been is a record of their movements, which whereis has no use for (it
//! answers "where is X now") and must not collect. Rows of devices not seen for a while are purged
//! ([`Store::purge_live_before`]).
//!
//! Invariants:
//! - A device never moves back in time: an upsert replaces the stored row only when its
//!   `last_seen_ms` is at least the stored one, so replayed or out-of-order records lose — also
//!   between instances writing concurrently (the check is in the statement).
//! - [`Store::apply_live`] is atomic (one transaction) and gives the same result as applying its
//!   changes one by one in order: within one call the last change per `(source, mac)` wins, unless
//!   it is an upsert older than an earlier one of the same call (see the first rule).
//! - Text is stored as given, except NUL characters (which PostgreSQL cannot store) become U+FFFD on
//!   both backends; a non-finite x, y or accuracy is stored as unknown (NULL) on both.
//! - The building roster compares names ignoring case (Unicode lower case, folded by the writer into
//!   the hidden column `building_fold`, so both backends agree).
//!
//! Writing: each call is one transaction. Upserts are conditional (`INSERT … ON CONFLICT (source,
//! mac) DO UPDATE … WHERE device_locations.last_seen_ms <= excluded.last_seen_ms`): on SQLite as
//! multi-row `VALUES` of [`ROWS_PER_STATEMENT`] rows with anonymous `?` parameters (see `Marks`),
//! on PostgreSQL as one `INSERT … SELECT * FROM UNNEST(arrays)` per 5000 rows (measured faster
//! there than multi-row `VALUES`), in `(source, mac)` order so that concurrent writers take row
//! locks in the same order. The streams' many small updates reach [`Store::apply_live`] through a
//! [`LiveWriter`], which batches them (by count and by delay) in a
//! background task with a bounded queue: backpressure, not unbounded memory, when the store is slow.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::Duration;

use sqlx::Row;
use tokio::sync::{mpsc, oneshot, watch};

use crate::{Arg, Backend, Store, StoreError};

/// The most rows in one statement: 18 parameters a row stays well under SQLite's (32,766) and
/// PostgreSQL's (65,535) bind-parameter limits.
pub const ROWS_PER_STATEMENT: usize = 500;

/// PostgreSQL: the most rows in one array upsert (arrays have no parameter limit; this bounds a
/// statement's size at about a megabyte).
const UNNEST_ROWS: usize = 5_000;

/// The columns an upsert writes, in bind order.
const WRITE_COLUMNS: [&str; 18] = [
    "source",
    "mac",
    "username",
    "identity",
    "floor_key",
    "campus",
    "building",
    "building_fold",
    "floor",
    "x",
    "y",
    "unit",
    "accuracy",
    "ssid",
    "ip",
    "status",
    "last_seen_ms",
    "updated_at_ms",
];

/// The columns read into a [`LiveDevice`], in its field order.
const READ_COLUMNS: &str = "source, mac, username, identity, floor_key, campus, building, floor, \
    x, y, unit, accuracy, ssid, ip, status, last_seen_ms, updated_at_ms";

/// One device's latest fix, as kept in `device_locations`.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveDevice {
    /// The stream that reported it (the configured source's name).
    pub source: String,
    /// The device's MAC address, lower-case colon form.
    pub mac: String,
    /// The normalised username of the device's user, when known.
    pub username: Option<String>,
    /// The raw 802.1X identity, when known.
    pub identity: Option<String>,
    /// The stream's floor id (Spaces mapId, Meraki floorPlanId).
    pub floor_key: Option<String>,
    /// The campus name, when the stream says.
    pub campus: Option<String>,
    /// The building name, when the stream says.
    pub building: Option<String>,
    /// The floor name, when the stream says.
    pub floor: Option<String>,
    /// Position on the floor, in `unit`.
    pub x: Option<f64>,
    /// Position on the floor, in `unit`.
    pub y: Option<f64>,
    /// `FEET` or `METER`.
    pub unit: String,
    /// The stream's accuracy estimate, in `unit`.
    pub accuracy: Option<f64>,
    /// The SSID the device is associated with.
    pub ssid: Option<String>,
    /// The device's IP address.
    pub ip: Option<String>,
    /// The stream's status of the device (e.g. associated, probing).
    pub status: String,
    /// When the stream last saw the device, Unix milliseconds.
    pub last_seen_ms: i64,
    /// When this row was written, Unix milliseconds.
    pub updated_at_ms: i64,
}

/// A change from a stream.
// Nearly every change is an upsert: boxing it would cost an allocation each for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum LiveChange {
    /// The device's latest fix (ignored when older than the stored one).
    Upsert(LiveDevice),
    /// The device left: forget it.
    Remove {
        /// The stream.
        source: String,
        /// The device's MAC address, lower-case colon form.
        mac: String,
    },
}

impl LiveChange {
    fn key(&self) -> (&str, &str) {
        match self {
            LiveChange::Upsert(device) => (&device.source, &device.mac),
            LiveChange::Remove { source, mac } => (source, mac),
        }
    }
}

/// Counts for health checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LiveSummary {
    /// Devices held for the source.
    pub devices: u64,
    /// The newest `last_seen_ms` among them (`None` when there are none).
    pub newest_last_seen_ms: Option<i64>,
}

/// What [`apply_live`](Store::apply_live) does for one `(source, mac)`: the changes of one call
/// folded into at most a delete followed by an upsert.
#[derive(Debug, Default, PartialEq)]
struct Folded<'a> {
    remove_first: bool,
    upsert: Option<&'a LiveDevice>,
}

/// Folds `changes` per `(source, mac)`, in key order, so that running each key's delete and then
/// its upsert gives what running the changes one by one would.
fn fold(changes: &[LiveChange]) -> BTreeMap<(&str, &str), Folded<'_>> {
    let mut folded: BTreeMap<(&str, &str), Folded<'_>> = BTreeMap::new();
    for change in changes {
        let entry = folded.entry(change.key()).or_default();
        match change {
            LiveChange::Upsert(device) => {
                // After an earlier upsert of this call, the same rule as against the stored row.
                if entry
                    .upsert
                    .is_none_or(|earlier| earlier.last_seen_ms <= device.last_seen_ms)
                {
                    entry.upsert = Some(device);
                }
            }
            LiveChange::Remove { .. } => {
                *entry = Folded {
                    remove_first: true,
                    upsert: None,
                };
            }
        }
    }
    folded
}

/// A device's values as bound: NULs replaced, non-finite numbers unknown, the building folded.
struct Bound<'a> {
    device: &'a LiveDevice,
    texts: [Option<Cow<'a, str>>; 12],
    building_fold: Option<String>,
}

impl<'a> Bound<'a> {
    fn new(device: &'a LiveDevice) -> Bound<'a> {
        let text = |s: &'a str| -> Cow<'a, str> {
            if s.contains('\0') {
                Cow::Owned(s.replace('\0', "\u{FFFD}"))
            } else {
                Cow::Borrowed(s)
            }
        };
        let opt = |s: &'a Option<String>| s.as_deref().map(text);
        let building = opt(&device.building);
        Bound {
            building_fold: building.as_deref().map(str::to_lowercase),
            texts: [
                Some(text(&device.source)),
                Some(text(&device.mac)),
                opt(&device.username),
                opt(&device.identity),
                opt(&device.floor_key),
                opt(&device.campus),
                building,
                opt(&device.floor),
                Some(text(&device.unit)),
                opt(&device.ssid),
                opt(&device.ip),
                Some(text(&device.status)),
            ],
            device,
        }
    }

    fn text(&self, i: usize) -> Option<&str> {
        self.texts[i].as_deref()
    }
}

fn finite(value: Option<f64>) -> Option<f64> {
    value.filter(|v| v.is_finite())
}

/// Binds the values of `$rows` (of [`Bound`]) to `$query`, in [`WRITE_COLUMNS`] order.
macro_rules! bind_devices {
    ($query:expr, $rows:expr) => {{
        let mut query = $query;
        for row in $rows {
            query = query
                .bind(row.text(0).unwrap_or_default())
                .bind(row.text(1).unwrap_or_default())
                .bind(row.text(2))
                .bind(row.text(3))
                .bind(row.text(4))
                .bind(row.text(5))
                .bind(row.text(6))
                .bind(row.building_fold.as_deref())
                .bind(row.text(7))
                .bind(finite(row.device.x))
                .bind(finite(row.device.y))
                .bind(row.text(8).unwrap_or_default())
                .bind(finite(row.device.accuracy))
                .bind(row.text(9))
                .bind(row.text(10))
                .bind(row.text(11).unwrap_or_default())
                .bind(row.device.last_seen_ms)
                .bind(row.device.updated_at_ms);
        }
        query
    }};
}

/// How a statement's bind parameters are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marks {
    /// `$1, $2, …` (PostgreSQL).
    Numbered,
    /// `?, ?, …` (SQLite): SQLite finds a numbered parameter's name by a linear search, which
    /// sqlx does for each parameter when binding — quadratic in a statement of thousands of
    /// parameters, the bulk of the cost of a batch. Anonymous ones are bound in order directly.
    Anonymous,
}

impl Marks {
    /// Writes the mark of parameter `n` (1-based).
    fn write(self, sql: &mut String, n: usize) {
        match self {
            Marks::Numbered => {
                let _ = write!(sql, "${n}");
            }
            Marks::Anonymous => sql.push('?'),
        }
    }
}

/// The upsert of `rows` rows.
fn upsert_sql(rows: usize, marks: Marks) -> String {
    let mut sql = format!(
        "INSERT INTO device_locations ({}) VALUES ",
        WRITE_COLUMNS.join(", ")
    );
    let width = WRITE_COLUMNS.len();
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..width {
            if column > 0 {
                sql.push_str(", ");
            }
            marks.write(&mut sql, row * width + column + 1);
        }
        sql.push(')');
    }
    sql.push_str(" ON CONFLICT (source, mac) DO UPDATE SET ");
    let updates: Vec<String> = WRITE_COLUMNS[2..]
        .iter()
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    sql.push_str(&updates.join(", "));
    sql.push_str(" WHERE device_locations.last_seen_ms <= excluded.last_seen_ms");
    sql
}

/// The delete of `rows` `(source, mac)` pairs.
fn delete_sql(rows: usize, marks: Marks) -> String {
    let mut sql = String::from("DELETE FROM device_locations WHERE (source, mac) IN (VALUES ");
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        marks.write(&mut sql, 2 * row + 1);
        sql.push_str(", ");
        marks.write(&mut sql, 2 * row + 2);
        sql.push(')');
    }
    sql.push(')');
    sql
}

/// A statement of `apply_live`.
#[derive(Debug, Clone, Copy)]
enum Statement {
    Upsert,
    Delete,
}

/// Deletes the `(source, mac)` pairs of `$pairs` on the connection `$conn`.
macro_rules! delete_pairs {
    ($conn:expr, $pairs:expr, $marks:expr) => {
        for chunk in $pairs.chunks(ROWS_PER_STATEMENT) {
            let sql = sql_for(Statement::Delete, chunk.len(), $marks);
            let mut query = sqlx::query(&sql);
            for (source, mac) in chunk {
                query = query.bind(*source).bind(*mac);
            }
            query.execute($conn).await?;
        }
    };
}

/// The SQL of `statement` over `rows` rows: built once for full statements (the common case),
/// which also keeps the text identical for the connections' prepared-statement caches.
fn sql_for(statement: Statement, rows: usize, marks: Marks) -> Cow<'static, str> {
    static FULL: [OnceLock<String>; 4] = [const { OnceLock::new() }; 4];
    let build = || match statement {
        Statement::Upsert => upsert_sql(rows, marks),
        Statement::Delete => delete_sql(rows, marks),
    };
    if rows == ROWS_PER_STATEMENT {
        let slot = match (statement, marks) {
            (Statement::Upsert, Marks::Numbered) => 0,
            (Statement::Upsert, Marks::Anonymous) => 1,
            (Statement::Delete, Marks::Numbered) => 2,
            (Statement::Delete, Marks::Anonymous) => 3,
        };
        Cow::Borrowed(FULL[slot].get_or_init(build))
    } else {
        Cow::Owned(build())
    }
}

/// PostgreSQL: the upsert of many rows as one statement over 18 arrays, one per column (faster
/// than multi-row `VALUES` there: one small statement to parse and plan, no parameter limit).
async fn upsert_unnest(
    conn: &mut sqlx::PgConnection,
    rows: &[Bound<'_>],
) -> Result<(), sqlx::Error> {
    static SQL: OnceLock<String> = OnceLock::new();
    let sql = SQL.get_or_init(|| {
        format!(
            "INSERT INTO device_locations ({}) SELECT * FROM UNNEST($1::text[], $2::text[], \
             $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], \
             $10::float8[], $11::float8[], $12::text[], $13::float8[], $14::text[], $15::text[], \
             $16::text[], $17::int8[], $18::int8[]) \
             ON CONFLICT (source, mac) DO UPDATE SET {} \
             WHERE device_locations.last_seen_ms <= excluded.last_seen_ms",
            WRITE_COLUMNS.join(", "),
            WRITE_COLUMNS[2..]
                .iter()
                .map(|c| format!("{c} = excluded.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    });
    let text = |i: usize| rows.iter().map(|r| r.text(i)).collect::<Vec<_>>();
    let required = |i: usize| {
        rows.iter()
            .map(|r| r.text(i).unwrap_or_default())
            .collect::<Vec<_>>()
    };
    sqlx::query(sql)
        .bind(required(0))
        .bind(required(1))
        .bind(text(2))
        .bind(text(3))
        .bind(text(4))
        .bind(text(5))
        .bind(text(6))
        .bind(
            rows.iter()
                .map(|r| r.building_fold.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(text(7))
        .bind(rows.iter().map(|r| finite(r.device.x)).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| finite(r.device.y)).collect::<Vec<_>>())
        .bind(required(8))
        .bind(
            rows.iter()
                .map(|r| finite(r.device.accuracy))
                .collect::<Vec<_>>(),
        )
        .bind(text(9))
        .bind(text(10))
        .bind(required(11))
        .bind(
            rows.iter()
                .map(|r| r.device.last_seen_ms)
                .collect::<Vec<_>>(),
        )
        .bind(
            rows.iter()
                .map(|r| r.device.updated_at_ms)
                .collect::<Vec<_>>(),
        )
        .execute(conn)
        .await
        .map(drop)
}

/// Reads a [`LiveDevice`] from a row of [`READ_COLUMNS`].
macro_rules! device_of_row {
    ($row:expr) => {{
        let row = $row;
        Ok::<LiveDevice, sqlx::Error>(LiveDevice {
            source: row.try_get(0)?,
            mac: row.try_get(1)?,
            username: row.try_get(2)?,
            identity: row.try_get(3)?,
            floor_key: row.try_get(4)?,
            campus: row.try_get(5)?,
            building: row.try_get(6)?,
            floor: row.try_get(7)?,
            x: row.try_get(8)?,
            y: row.try_get(9)?,
            unit: row.try_get(10)?,
            accuracy: row.try_get(11)?,
            ssid: row.try_get(12)?,
            ip: row.try_get(13)?,
            status: row.try_get(14)?,
            last_seen_ms: row.try_get(15)?,
            updated_at_ms: row.try_get(16)?,
        })
    }};
}

impl Store {
    /// Applies changes in one transaction (multi-row statements of at most
    /// [`ROWS_PER_STATEMENT`] rows). An upsert never moves a device back in time: a row is
    /// replaced only when the new `last_seen_ms` is at least the stored one (replayed or
    /// out-of-order records lose). The result is that of applying the changes one by one in order:
    /// within one call the last change per `(source, mac)` wins (an upsert older than an earlier
    /// one of the same call loses, as against the stored row). A Remove deletes the row.
    pub async fn apply_live(&self, changes: &[LiveChange]) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let folded = fold(changes);
        let removes: Vec<(&str, &str)> = folded
            .iter()
            .filter(|(_, f)| f.remove_first)
            .map(|(key, _)| *key)
            .collect();
        let upserts: Vec<Bound<'_>> = folded
            .values()
            .filter_map(|f| f.upsert.map(Bound::new))
            .collect();
        let done: Result<(), sqlx::Error> = match &self.db.backend {
            Backend::Sqlite(pool) => {
                async {
                    let mut tx = pool.begin().await?;
                    delete_pairs!(&mut *tx, &removes, Marks::Anonymous);
                    for chunk in upserts.chunks(ROWS_PER_STATEMENT) {
                        let sql = sql_for(Statement::Upsert, chunk.len(), Marks::Anonymous);
                        bind_devices!(sqlx::query(&sql), chunk)
                            .execute(&mut *tx)
                            .await?;
                    }
                    tx.commit().await
                }
                .await
            }
            Backend::Postgres(pool) => {
                async {
                    let mut tx = pool.begin().await?;
                    delete_pairs!(&mut *tx, &removes, Marks::Numbered);
                    for chunk in upserts.chunks(UNNEST_ROWS) {
                        upsert_unnest(&mut tx, chunk).await?;
                    }
                    tx.commit().await
                }
                .await
            }
        };
        done.map_err(|e| self.error("writing live device positions", e))
    }

    /// The devices of `username` (exact match on the normalised column) from `source`, newest
    /// first.
    pub async fn live_devices(
        &self,
        source: &str,
        username: &str,
    ) -> Result<Vec<LiveDevice>, StoreError> {
        let sql = format!(
            "SELECT {READ_COLUMNS} FROM device_locations WHERE username = $1 AND source = $2 \
             ORDER BY last_seen_ms DESC, mac"
        );
        let args = [Arg::Text(username.to_owned()), Arg::Text(source.to_owned())];
        self.live_rows(&sql, &args, "reading live device positions")
            .await
    }

    /// Every device `source` places in `building` (compared ignoring case), newest first, for the
    /// building roster; at most `limit` rows.
    pub async fn live_building(
        &self,
        source: &str,
        building: &str,
        limit: u32,
    ) -> Result<Vec<LiveDevice>, StoreError> {
        let sql = format!(
            "SELECT {READ_COLUMNS} FROM device_locations WHERE source = $1 AND building_fold = $2 \
             ORDER BY last_seen_ms DESC, mac LIMIT $3"
        );
        let args = [
            Arg::Text(source.to_owned()),
            Arg::Text(building.replace('\0', "\u{FFFD}").to_lowercase()),
            Arg::Int(i64::from(limit)),
        ];
        self.live_rows(&sql, &args, "reading a building's live devices")
            .await
    }

    /// Deletes rows whose `last_seen_ms` is before `before_ms` (all sources); returns how many.
    pub async fn purge_live_before(&self, before_ms: i64) -> Result<u64, StoreError> {
        let sql = "DELETE FROM device_locations WHERE last_seen_ms < $1";
        self.execute(sql, &[Arg::Int(before_ms)], "purging live device positions")
            .await
    }

    /// Devices held for `source` and the newest `last_seen_ms` among them.
    pub async fn live_summary(&self, source: &str) -> Result<LiveSummary, StoreError> {
        let sql = "SELECT COUNT(*), MAX(last_seen_ms) FROM device_locations WHERE source = $1";
        let found: Result<(i64, Option<i64>), sqlx::Error> = with_pool!(&self.db.backend, pool => {
            match sqlx::query(sql).bind(source).fetch_one(pool).await {
                Ok(row) => row.try_get(0).and_then(|n| Ok((n, row.try_get(1)?))),
                Err(e) => Err(e),
            }
        });
        let (devices, newest_last_seen_ms) =
            found.map_err(|e| self.error("counting live devices", e))?;
        Ok(LiveSummary {
            devices: u64::try_from(devices).unwrap_or(0),
            newest_last_seen_ms,
        })
    }

    /// A batching writer for this store: see [`LiveWriter`]. Its task runs on the current tokio
    /// runtime (this must be called inside one).
    pub fn live_writer(&self, batch: LiveBatch) -> LiveWriter {
        let (queue, waiting) = mpsc::channel(batch.queue.max(1));
        let (stats, watched) = watch::channel(LiveWriterStats::default());
        tokio::spawn(run(self.clone(), batch, waiting, stats));
        LiveWriter {
            queue,
            stats: watched,
        }
    }

    async fn live_rows(
        &self,
        sql: &str,
        args: &[Arg],
        what: &str,
    ) -> Result<Vec<LiveDevice>, StoreError> {
        let rows: Result<Vec<LiveDevice>, sqlx::Error> = with_pool!(&self.db.backend, pool => {
            match bind_all!(sqlx::query(sql), args).fetch_all(pool).await {
                Ok(rows) => rows.iter().map(|row| device_of_row!(row)).collect(),
                Err(e) => Err(e),
            }
        });
        rows.map_err(|e| self.error(what, e))
    }
}

/// How a [`LiveWriter`] batches.
#[derive(Debug, Clone, Copy)]
pub struct LiveBatch {
    /// A batch is written once it holds this many changes (default 5000; at least 1).
    pub max_changes: usize,
    /// … or this long after its first change, whichever comes first (default 1 s).
    pub max_delay: Duration,
    /// Changes that may wait for the writer before senders wait (default 50,000; at least 1).
    pub queue: usize,
}

impl Default for LiveBatch {
    fn default() -> LiveBatch {
        LiveBatch {
            max_changes: 5000,
            max_delay: Duration::from_secs(1),
            queue: 50_000,
        }
    }
}

/// What a [`LiveWriter`] has done, for `/metrics` and health checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveWriterStats {
    /// Changes in committed batches.
    pub changes_committed: u64,
    /// Batches committed.
    pub batches_committed: u64,
    /// Changes in failed (dropped) batches.
    pub changes_failed: u64,
    /// Batches that failed and were dropped.
    pub batches_failed: u64,
    /// Why the last failed batch failed.
    pub last_error: Option<String>,
    /// Changes queued for the writer now (not yet in a batch).
    pub queued: usize,
}

/// A batching writer of [`LiveChange`]s into the store: a cloneable handle; a background tokio task
/// owns the batching. Dropping every handle writes what is waiting and ends the task.
///
/// A batch is written with [`Store::apply_live`] once it holds [`LiveBatch::max_changes`] changes or
/// [`LiveBatch::max_delay`] after its first change, whichever comes first; while it is written,
/// changes wait in the bounded queue (then senders wait), so at most one batch is held beyond the
/// queue. A batch that fails is logged (counts only), counted and dropped — the stream's next
/// update of each device repairs it — and the writer goes on.
#[derive(Clone, Debug)]
pub struct LiveWriter {
    queue: mpsc::Sender<Message>,
    stats: watch::Receiver<LiveWriterStats>,
}

// Same reason as `LiveChange`: the queue carries changes; a flush is rare.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Message {
    Change(LiveChange),
    Flush(oneshot::Sender<Result<(), StoreError>>),
}

fn writer_stopped() -> StoreError {
    StoreError::Unavailable("the live device writer has stopped".to_owned())
}

impl LiveWriter {
    /// Queues a change; waits (backpressure) when the queue is full. Err only when the writer task
    /// is gone.
    pub async fn send(&self, change: LiveChange) -> Result<(), StoreError> {
        self.queue
            .send(Message::Change(change))
            .await
            .map_err(|_| writer_stopped())
    }

    /// Resolves once every change sent before this call is committed; Err with the reason when a
    /// batch failed since the previous flush (one failure is reported to one flush).
    pub async fn flush(&self) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Message::Flush(reply))
            .await
            .map_err(|_| writer_stopped())?;
        answer.await.map_err(|_| writer_stopped())?
    }

    /// What the writer has done so far.
    pub fn stats(&self) -> LiveWriterStats {
        let mut stats = self.stats.borrow().clone();
        stats.queued = self
            .queue
            .max_capacity()
            .saturating_sub(self.queue.capacity());
        stats
    }
}

/// The writer task: batches what arrives on `waiting` until every handle is gone.
async fn run(
    store: Store,
    batch: LiveBatch,
    mut waiting: mpsc::Receiver<Message>,
    stats: watch::Sender<LiveWriterStats>,
) {
    let max_changes = batch.max_changes.max(1);
    let mut pending: Vec<LiveChange> = Vec::new();
    // Reported to the next flush.
    let mut unreported: Option<StoreError> = None;
    let deadline = tokio::time::sleep(batch.max_delay);
    tokio::pin!(deadline);
    loop {
        let message = tokio::select! {
            biased;
            () = &mut deadline, if !pending.is_empty() => {
                write(&store, &mut pending, &stats, &mut unreported).await;
                continue;
            }
            message = waiting.recv() => message,
        };
        match message {
            Some(Message::Change(change)) => {
                if pending.is_empty() {
                    deadline
                        .as_mut()
                        .reset(tokio::time::Instant::now() + batch.max_delay);
                }
                pending.push(change);
                if pending.len() >= max_changes {
                    write(&store, &mut pending, &stats, &mut unreported).await;
                }
            }
            Some(Message::Flush(reply)) => {
                write(&store, &mut pending, &stats, &mut unreported).await;
                let _ = reply.send(unreported.take().map_or(Ok(()), Err));
            }
            None => {
                write(&store, &mut pending, &stats, &mut unreported).await;
                return;
            }
        }
    }
}

/// Writes `pending` (emptying it) and counts the outcome.
async fn write(
    store: &Store,
    pending: &mut Vec<LiveChange>,
    stats: &watch::Sender<LiveWriterStats>,
    unreported: &mut Option<StoreError>,
) {
    if pending.is_empty() {
        return;
    }
    let changes = std::mem::take(pending);
    let n = u64::try_from(changes.len()).unwrap_or(u64::MAX);
    match store.apply_live(&changes).await {
        Ok(()) => stats.send_modify(|s| {
            s.changes_committed += n;
            s.batches_committed += 1;
        }),
        Err(e) => {
            tracing::warn!(changes = n, error = %e, "dropped a batch of live device positions");
            stats.send_modify(|s| {
                s.changes_failed += n;
                s.batches_failed += 1;
                s.last_error = Some(e.to_string());
            });
            *unreported = Some(e);
        }
    }
    // The next batch reuses the allocation.
    *pending = changes;
    pending.clear();
}

#[cfg(test)]
mod tests {
    //! Written once and run on every backend: SQLite in a temporary file, SQLite in memory, and
    //! PostgreSQL (`WHEREIS_TEST_POSTGRES_URL`, a database of its own per test; skipped with a note
    //! when unset, except under CI where it fails).

    use std::time::{Duration, Instant};

    use sqlx::Connection;

    use super::*;

    /// Long enough for any write here on a loaded machine; a wait that reaches it is a failure.
    const PATIENCE: Duration = Duration::from_secs(60);

    struct TestDb {
        store: Store,
        _dir: Option<tempfile::TempDir>,
        _postgres: Option<PgDatabase>,
    }

    async fn sqlite_file() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("live.db").display());
        TestDb {
            store: Store::open(&url).await.expect("open SQLite file"),
            _dir: Some(dir),
            _postgres: None,
        }
    }

    async fn sqlite_memory() -> TestDb {
        TestDb {
            store: Store::open("sqlite::memory:").await.expect("open SQLite"),
            _dir: None,
            _postgres: None,
        }
    }

    async fn postgres() -> Option<TestDb> {
        let database = PgDatabase::fresh().await?;
        Some(TestDb {
            store: Store::open(&database.url).await.expect("open PostgreSQL"),
            _dir: None,
            _postgres: Some(database),
        })
    }

    /// A database of its own on the test server, dropped with this.
    struct PgDatabase {
        url: String,
        admin_url: String,
        name: String,
    }

    impl PgDatabase {
        async fn fresh() -> Option<PgDatabase> {
            const ENV: &str = "WHEREIS_TEST_POSTGRES_URL";
            let admin_url = match std::env::var(ENV) {
                Ok(url) if !url.trim().is_empty() => url,
                _ => {
                    let ci = std::env::var("CI")
                        .is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
                    assert!(
                        !ci,
                        "{ENV} is not set, and CI must run the PostgreSQL tests"
                    );
                    eprintln!("note: {ENV} is not set: skipping a PostgreSQL test");
                    return None;
                }
            };
            static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let name = format!(
                "whereis_live_{}_{}_{nanos:08x}",
                std::process::id(),
                NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            );
            let mut conn = sqlx::PgConnection::connect(&admin_url)
                .await
                .expect("connect to the test PostgreSQL");
            sqlx::raw_sql(&format!(
                "CREATE DATABASE {name} ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' \
                 TEMPLATE template0"
            ))
            .execute(&mut conn)
            .await
            .expect("CREATE DATABASE");
            let _ = conn.close().await;
            // The admin URL with the database's name as its path.
            let (base, query) = admin_url
                .split_once('?')
                .map_or((admin_url.as_str(), None), |(b, q)| (b, Some(q)));
            let authority_end = base.find("://").map_or(0, |i| i + 3);
            let host_part = match base[authority_end..].find('/') {
                Some(i) => &base[..authority_end + i],
                None => base,
            };
            let url = match query {
                Some(q) => format!("{host_part}/{name}?{q}"),
                None => format!("{host_part}/{name}"),
            };
            Some(PgDatabase {
                url,
                admin_url,
                name,
            })
        }
    }

    impl Drop for PgDatabase {
        fn drop(&mut self) {
            let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
            // A runtime of its own: this may run inside (or after) the test's runtime.
            let _ = std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    rt.block_on(async {
                        if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url).await {
                            let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                            let _ = sqlx::raw_sql(&sql).execute(&mut conn).await;
                            let _ = conn.close().await;
                        }
                    });
                }
            })
            .join();
        }
    }

    /// One test per backend for each function named.
    macro_rules! on_every_backend {
        ($($name:ident),* $(,)?) => {
            mod sqlite_file {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        let db = super::sqlite_file().await;
                        super::$name(&db.store).await;
                    }
                )*
            }
            mod sqlite_memory {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        let db = super::sqlite_memory().await;
                        super::$name(&db.store).await;
                    }
                )*
            }
            mod postgres {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        let Some(db) = super::postgres().await else { return };
                        super::$name(&db.store).await;
                    }
                )*
            }
        };
    }

    on_every_backend!(
        upsert_then_read_by_username,
        an_older_record_does_not_move_a_device_back,
        remove_deletes_the_row,
        the_last_change_of_a_call_wins,
        two_sources_keep_separate_rows,
        purge_deletes_exactly_the_rows_before_the_cutoff,
        summary_counts_a_source,
        building_roster_ignores_case,
        usernames_with_sql_metacharacters_are_verbatim,
        nul_characters_and_non_finite_numbers_are_stored_alike,
        a_hundred_thousand_devices_are_written_and_found,
        writer_writes_at_max_changes_without_waiting,
        writer_writes_at_max_delay,
        writer_counts_a_failed_batch_and_goes_on,
        dropping_the_writer_writes_what_waits,
    );

    fn device(source: &str, mac: &str, username: &str, last_seen_ms: i64) -> LiveDevice {
        LiveDevice {
            source: source.to_owned(),
            mac: mac.to_owned(),
            username: Some(username.to_owned()),
            identity: Some(format!("CORP\\{username}")),
            floor_key: Some("map-1".to_owned()),
            campus: Some("Campus".to_owned()),
            building: Some("Building 1".to_owned()),
            floor: Some("Floor 2".to_owned()),
            x: Some(10.5),
            y: Some(20.25),
            unit: "FEET".to_owned(),
            accuracy: Some(3.0),
            ssid: Some("corp".to_owned()),
            ip: Some("10.0.0.7".to_owned()),
            status: "ASSOCIATED".to_owned(),
            last_seen_ms,
            updated_at_ms: last_seen_ms + 5,
        }
    }

    fn mac(i: u32) -> String {
        let b = i.to_be_bytes();
        format!("02:00:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3])
    }

    fn up(device: LiveDevice) -> LiveChange {
        LiveChange::Upsert(device)
    }

    fn remove(source: &str, mac: &str) -> LiveChange {
        LiveChange::Remove {
            source: source.to_owned(),
            mac: mac.to_owned(),
        }
    }

    async fn apply(store: &Store, changes: &[LiveChange]) {
        store.apply_live(changes).await.expect("apply_live");
    }

    async fn devices(store: &Store, source: &str, username: &str) -> Vec<LiveDevice> {
        store
            .live_devices(source, username)
            .await
            .expect("live_devices")
    }

    async fn upsert_then_read_by_username(store: &Store) {
        let phone = device("spaces", "aa:bb:cc:00:00:01", "alice", 1_000);
        let mut laptop = device("spaces", "aa:bb:cc:00:00:02", "alice", 2_000);
        laptop.campus = None;
        laptop.x = None;
        laptop.unit = "METER".to_owned();
        let other = device("spaces", "aa:bb:cc:00:00:03", "bob", 3_000);
        apply(store, &[up(phone.clone()), up(laptop.clone()), up(other)]).await;
        assert_eq!(devices(store, "spaces", "alice").await, [laptop, phone]);
        assert!(devices(store, "spaces", "carol").await.is_empty());
        assert!(devices(store, "meraki", "alice").await.is_empty());
        // Exact match: no folding of case in the store.
        assert!(devices(store, "spaces", "Alice").await.is_empty());
    }

    async fn an_older_record_does_not_move_a_device_back(store: &Store) {
        let newer = device("spaces", "aa:bb:cc:00:00:01", "alice", 2_000);
        apply(store, &[up(newer.clone())]).await;
        let mut older = device("spaces", "aa:bb:cc:00:00:01", "alice", 1_999);
        older.x = Some(99.0);
        apply(store, &[up(older)]).await;
        assert_eq!(
            devices(store, "spaces", "alice").await,
            std::slice::from_ref(&newer)
        );
        // Not even to another user.
        let mut stolen = device("spaces", "aa:bb:cc:00:00:01", "mallory", 1_000);
        stolen.x = Some(1.0);
        apply(store, &[up(stolen)]).await;
        assert!(devices(store, "spaces", "mallory").await.is_empty());
        // The same time replaces (a stream repeats a fix with new details).
        let mut same = newer.clone();
        same.ssid = Some("guest".to_owned());
        apply(store, &[up(same.clone())]).await;
        assert_eq!(devices(store, "spaces", "alice").await, [same]);
        let mut moved = device("spaces", "aa:bb:cc:00:00:01", "bob", 2_001);
        moved.y = Some(-4.5);
        apply(store, &[up(moved.clone())]).await;
        assert!(devices(store, "spaces", "alice").await.is_empty());
        assert_eq!(devices(store, "spaces", "bob").await, [moved]);
    }

    async fn remove_deletes_the_row(store: &Store) {
        let kept = device("spaces", "aa:bb:cc:00:00:01", "alice", 1_000);
        let gone = device("spaces", "aa:bb:cc:00:00:02", "alice", 1_000);
        apply(store, &[up(kept.clone()), up(gone)]).await;
        apply(store, &[remove("spaces", "aa:bb:cc:00:00:02")]).await;
        assert_eq!(devices(store, "spaces", "alice").await, [kept]);
        // Removing what is not there is no error.
        apply(store, &[remove("spaces", "aa:bb:cc:00:00:09")]).await;
        assert_eq!(
            store.live_summary("spaces").await.expect("summary").devices,
            1
        );
    }

    async fn the_last_change_of_a_call_wins(store: &Store) {
        let (a, b, c, d) = (
            "aa:bb:cc:00:00:0a",
            "aa:bb:cc:00:00:0b",
            "aa:bb:cc:00:00:0c",
            "aa:bb:cc:00:00:0d",
        );
        apply(store, &[up(device("spaces", d, "alice", 5_000))]).await;
        let mut a_first = device("spaces", a, "alice", 1_000);
        a_first.x = Some(1.0);
        let mut a_last = device("spaces", a, "alice", 1_001);
        a_last.x = Some(2.0);
        let mut a_replayed = device("spaces", a, "alice", 900);
        a_replayed.x = Some(3.0);
        let b_back = device("spaces", b, "alice", 1_000);
        let d_again = device("spaces", d, "alice", 100);
        apply(
            store,
            &[
                up(a_first),
                up(a_last.clone()),
                // Older than the call's earlier upsert: loses, as it would against the stored row.
                up(a_replayed),
                remove("spaces", b),
                up(b_back.clone()),
                up(device("spaces", c, "alice", 1_000)),
                remove("spaces", c),
                // The device left and came back: the new fix counts whatever its time.
                remove("spaces", d),
                up(d_again.clone()),
            ],
        )
        .await;
        assert_eq!(
            devices(store, "spaces", "alice").await,
            [a_last, b_back, d_again]
        );
    }

    async fn two_sources_keep_separate_rows(store: &Store) {
        let mac = "aa:bb:cc:00:00:01";
        let spaces = device("spaces", mac, "alice", 1_000);
        let mut meraki = device("meraki", mac, "alice", 500);
        meraki.floor_key = Some("g_1234".to_owned());
        apply(store, &[up(spaces.clone()), up(meraki.clone())]).await;
        assert_eq!(
            devices(store, "spaces", "alice").await,
            std::slice::from_ref(&spaces)
        );
        assert_eq!(devices(store, "meraki", "alice").await, [meraki]);
        apply(store, &[remove("meraki", mac)]).await;
        assert!(devices(store, "meraki", "alice").await.is_empty());
        assert_eq!(devices(store, "spaces", "alice").await, [spaces]);
    }

    async fn purge_deletes_exactly_the_rows_before_the_cutoff(store: &Store) {
        apply(
            store,
            &[
                up(device("spaces", "aa:bb:cc:00:00:01", "alice", 999)),
                up(device("spaces", "aa:bb:cc:00:00:02", "alice", 1_000)),
                up(device("meraki", "aa:bb:cc:00:00:03", "alice", 1_001)),
                up(device("meraki", "aa:bb:cc:00:00:04", "alice", 10)),
            ],
        )
        .await;
        assert_eq!(store.purge_live_before(1_000).await.expect("purge"), 2);
        let left: Vec<_> = devices(store, "spaces", "alice")
            .await
            .into_iter()
            .chain(devices(store, "meraki", "alice").await)
            .map(|d| (d.mac, d.last_seen_ms))
            .collect();
        assert_eq!(
            left,
            [
                ("aa:bb:cc:00:00:02".to_owned(), 1_000),
                ("aa:bb:cc:00:00:03".to_owned(), 1_001)
            ]
        );
        assert_eq!(store.purge_live_before(1_000).await.expect("purge"), 0);
    }

    async fn summary_counts_a_source(store: &Store) {
        let empty = store.live_summary("spaces").await.expect("summary");
        assert_eq!(empty, LiveSummary::default());
        apply(
            store,
            &[
                up(device("spaces", "aa:bb:cc:00:00:01", "alice", 3_000)),
                up(device("spaces", "aa:bb:cc:00:00:02", "bob", 7_000)),
                up(device("meraki", "aa:bb:cc:00:00:03", "carol", 9_000)),
            ],
        )
        .await;
        assert_eq!(
            store.live_summary("spaces").await.expect("summary"),
            LiveSummary {
                devices: 2,
                newest_last_seen_ms: Some(7_000)
            }
        );
    }

    async fn building_roster_ignores_case(store: &Store) {
        let mut changes = Vec::new();
        for (i, building) in ["Building 1", "BUILDING 1", "building 1", "Building 10"]
            .into_iter()
            .enumerate()
        {
            let mut d = device(
                "spaces",
                &mac(i as u32),
                &format!("user{i}"),
                1_000 + i as i64,
            );
            d.building = Some(building.to_owned());
            changes.push(up(d));
        }
        let mut accented = device("spaces", &mac(10), "zoe", 500);
        accented.building = Some("ÉCOLE".to_owned());
        let mut elsewhere = device("meraki", &mac(11), "yves", 500);
        elsewhere.building = Some("building 1".to_owned());
        let mut nowhere = device("spaces", &mac(12), "xavier", 500);
        nowhere.building = None;
        changes.extend([up(accented), up(elsewhere), up(nowhere)]);
        apply(store, &changes).await;

        let roster = |building: &'static str, limit: u32| async move {
            store
                .live_building("spaces", building, limit)
                .await
                .expect("live_building")
                .into_iter()
                .map(|d| d.username.unwrap_or_default())
                .collect::<Vec<_>>()
        };
        assert_eq!(roster("bUiLdInG 1", 100).await, ["user2", "user1", "user0"]);
        assert_eq!(roster("BUILDING 1", 2).await, ["user2", "user1"]);
        assert_eq!(roster("école", 100).await, ["zoe"]);
        assert!(roster("Building", 100).await.is_empty());
        // Stored as the stream said.
        let user1 = devices(store, "spaces", "user1").await;
        assert_eq!(user1[0].building.as_deref(), Some("BUILDING 1"));
    }

    async fn usernames_with_sql_metacharacters_are_verbatim(store: &Store) {
        let names = [
            "o'brien",
            "x'); DROP TABLE device_locations; --",
            "%",
            "a_b",
            "back\\slash",
            "$1",
            "\"quoted\"",
            "émile@exemple.fr",
        ];
        let changes: Vec<_> = names
            .iter()
            .enumerate()
            .map(|(i, name)| up(device("spaces", &mac(i as u32), name, 1_000)))
            .collect();
        apply(store, &changes).await;
        for (i, name) in names.iter().enumerate() {
            let found = devices(store, "spaces", name).await;
            assert_eq!(found.len(), 1, "{name}");
            assert_eq!(found[0].username.as_deref(), Some(*name));
            assert_eq!(found[0].mac, mac(i as u32));
        }
        assert!(devices(store, "spaces", "a%").await.is_empty());
        assert!(devices(store, "spaces", "axb").await.is_empty());
        assert_eq!(
            store.live_summary("spaces").await.expect("summary").devices,
            names.len() as u64
        );
    }

    async fn nul_characters_and_non_finite_numbers_are_stored_alike(store: &Store) {
        let mut odd = device("spaces", "aa:bb:cc:00:00:01", "alice", 1_000);
        odd.identity = Some("CORP\0alice".to_owned());
        odd.x = Some(f64::NAN);
        odd.y = Some(f64::INFINITY);
        odd.accuracy = Some(f64::NEG_INFINITY);
        apply(store, &[up(odd)]).await;
        let found = devices(store, "spaces", "alice").await;
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].identity.as_deref(), Some("CORP\u{FFFD}alice"));
        assert_eq!(
            (found[0].x, found[0].y, found[0].accuracy),
            (None, None, None)
        );
    }

    async fn a_hundred_thousand_devices_are_written_and_found(store: &Store) {
        const N: u32 = 100_000;
        // Ten devices per user, in calls of 5000 changes as the writer makes them.
        let changes: Vec<_> = (0..N)
            .map(|i| {
                up(device(
                    "spaces",
                    &mac(i),
                    &format!("user{}", i / 10),
                    i64::from(i),
                ))
            })
            .collect();
        for batch in changes.chunks(5000) {
            apply(store, batch).await;
        }
        let summary = store.live_summary("spaces").await.expect("summary");
        assert_eq!(
            summary,
            LiveSummary {
                devices: u64::from(N),
                newest_last_seen_ms: Some(i64::from(N - 1))
            }
        );
        for user in [0, 4_321, 9_999] {
            let found = devices(store, "spaces", &format!("user{user}")).await;
            let macs: Vec<_> = found.iter().map(|d| d.mac.clone()).collect();
            let expected: Vec<_> = (0..10).rev().map(|k| mac(user * 10 + k)).collect();
            assert_eq!(macs, expected);
        }
        // Everybody moves in one call larger than a statement.
        let moved: Vec<_> = (0..N)
            .map(|i| {
                let mut d = device("spaces", &mac(i), &format!("user{}", i / 10), 200_000);
                d.x = Some(f64::from(i));
                up(d)
            })
            .collect();
        apply(store, &moved).await;
        let found = devices(store, "spaces", "user4321").await;
        assert_eq!(found.len(), 10);
        assert!(found.iter().all(|d| d.last_seen_ms == 200_000));
        assert_eq!(found[0].x, Some(43_210.0));
    }

    /// Waits until the writer's stats satisfy `ready` (failing after [`PATIENCE`]).
    async fn stats_until(writer: &LiveWriter, ready: impl FnMut(&LiveWriterStats) -> bool) {
        let mut stats = writer.stats.clone();
        tokio::time::timeout(PATIENCE, stats.wait_for(ready))
            .await
            .expect("the writer did not get there in time")
            .expect("the writer stopped");
    }

    async fn writer_writes_at_max_changes_without_waiting(store: &Store) {
        let writer = store.live_writer(LiveBatch {
            max_changes: 3,
            // Were the batch to wait for this, the test would time out.
            max_delay: Duration::from_secs(3_600),
            queue: 10,
        });
        for i in 0..7 {
            let d = device("spaces", &mac(i), "alice", 1_000);
            writer.send(up(d)).await.expect("send");
        }
        stats_until(&writer, |s| s.batches_committed == 2).await;
        let stats = writer.stats();
        assert_eq!(
            (stats.changes_committed, stats.batches_committed),
            (6, 2),
            "the seventh waits for its batch"
        );
        assert_eq!(devices(store, "spaces", "alice").await.len(), 6);
        writer.flush().await.expect("flush");
        assert_eq!(devices(store, "spaces", "alice").await.len(), 7);
        assert_eq!(writer.stats().batches_committed, 3);
    }

    async fn writer_writes_at_max_delay(store: &Store) {
        let max_delay = Duration::from_millis(200);
        let writer = store.live_writer(LiveBatch {
            max_changes: 1_000,
            max_delay,
            queue: 100,
        });
        let started = Instant::now();
        for i in 0..3 {
            let d = device("spaces", &mac(i), "alice", 1_000);
            writer.send(up(d)).await.expect("send");
        }
        stats_until(&writer, |s| s.batches_committed == 1).await;
        assert!(started.elapsed() >= max_delay, "written before max_delay");
        assert_eq!(writer.stats().changes_committed, 3);
        assert_eq!(devices(store, "spaces", "alice").await.len(), 3);
    }

    async fn writer_counts_a_failed_batch_and_goes_on(store: &Store) {
        // A row the database refuses: a batch with it fails as a whole.
        let poison = "00:00:00:00:00:00";
        let refuse = match store.kind() {
            "sqlite" => format!(
                "CREATE TRIGGER live_poison BEFORE INSERT ON device_locations \
                 WHEN NEW.mac = '{poison}' BEGIN SELECT RAISE(ABORT, 'refused'); END"
            ),
            _ => format!(
                "ALTER TABLE device_locations ADD CONSTRAINT live_poison CHECK (mac <> '{poison}')"
            ),
        };
        store
            .execute(&refuse, &[], "test setup")
            .await
            .expect("refuse a MAC");
        let writer = store.live_writer(LiveBatch {
            max_changes: 100,
            max_delay: Duration::from_secs(3_600),
            queue: 100,
        });
        writer
            .send(up(device("spaces", &mac(1), "alice", 1)))
            .await
            .expect("send");
        writer
            .send(up(device("spaces", poison, "alice", 1)))
            .await
            .expect("send");
        let failed = writer.flush().await;
        assert!(
            matches!(&failed, Err(StoreError::Query(m)) if m.contains("writing live device positions")),
            "{failed:?}"
        );
        let stats = writer.stats();
        assert_eq!(
            (
                stats.batches_failed,
                stats.changes_failed,
                stats.batches_committed
            ),
            (1, 2, 0)
        );
        assert!(stats.last_error.is_some());
        // Nothing of the failed batch, and the next one goes through.
        assert!(devices(store, "spaces", "alice").await.is_empty());
        writer
            .send(up(device("spaces", &mac(2), "alice", 2)))
            .await
            .expect("send");
        writer.flush().await.expect("the next batch is written");
        assert_eq!(devices(store, "spaces", "alice").await.len(), 1);
        let stats = writer.stats();
        assert_eq!((stats.batches_failed, stats.batches_committed), (1, 1));
        // A failure is reported once.
        writer.flush().await.expect("nothing new failed");
    }

    async fn dropping_the_writer_writes_what_waits(store: &Store) {
        let writer = store.live_writer(LiveBatch {
            max_changes: 1_000,
            max_delay: Duration::from_secs(3_600),
            queue: 100,
        });
        let clone = writer.clone();
        let mut stats = writer.stats.clone();
        clone
            .send(up(device("spaces", &mac(1), "alice", 1)))
            .await
            .expect("send");
        writer
            .send(up(device("spaces", &mac(2), "alice", 1)))
            .await
            .expect("send");
        drop(writer);
        drop(clone);
        tokio::time::timeout(PATIENCE, stats.wait_for(|s| s.changes_committed == 2))
            .await
            .expect("the writer did not write in time")
            .expect("the writer stopped without writing");
        assert_eq!(devices(store, "spaces", "alice").await.len(), 2);
    }

    #[test]
    fn a_call_folds_to_what_one_change_at_a_time_gives() {
        let d = |mac: &str, t: i64| device("s", mac, "u", t);
        let changes = [
            up(d("b", 5)),
            up(d("a", 2)),
            up(d("a", 1)),
            remove("s", "c"),
            up(d("c", 1)),
            up(d("c", 0)),
            up(d("b", 6)),
            remove("s", "b"),
        ];
        let folded = fold(&changes);
        let summary: Vec<_> = folded
            .iter()
            .map(|((_, mac), f)| (*mac, f.remove_first, f.upsert.map(|u| u.last_seen_ms)))
            .collect();
        assert_eq!(
            summary,
            [
                ("a", false, Some(2)),
                ("b", true, None),
                ("c", true, Some(1))
            ]
        );
    }

    #[test]
    fn statements_have_the_placeholders_they_bind() {
        let sql = upsert_sql(2, Marks::Numbered);
        assert!(sql.contains("($1, $2, $3"));
        assert!(sql.contains("$36)"));
        assert!(!sql.contains("$37"));
        let anonymous = upsert_sql(2, Marks::Anonymous);
        assert_eq!(anonymous.matches('?').count(), 36);
        assert!(!anonymous.contains('$'));
        assert_eq!(
            delete_sql(2, Marks::Numbered),
            "DELETE FROM device_locations WHERE (source, mac) IN (VALUES ($1, $2), ($3, $4))"
        );
        assert_eq!(
            delete_sql(2, Marks::Anonymous),
            "DELETE FROM device_locations WHERE (source, mac) IN (VALUES (?, ?), (?, ?))"
        );
        // Within both backends' limits.
        assert!(ROWS_PER_STATEMENT * WRITE_COLUMNS.len() <= 32_766);
    }
}
