//! Group commit of the writes every lookup makes: the rate-limit reservation before it and the
//! audit row after it.
//!
//! One task per store takes the writes queued by concurrent lookups and runs all those waiting in
//! one transaction; each caller is answered once its transaction has committed, so a lookup still
//! sees its own reservation and audit row in the database (as does any other instance or process)
//! the moment its call returns. Under load this turns a few round trips and one commit per write
//! into one commit per batch, and on SQLite it leaves a single writer, so connections no longer
//! wait on each other's write lock.
//!
//! A batch whose transaction fails is run again one write per transaction, so that one write's
//! error is reported to that caller alone.

use std::collections::BTreeMap;

use tokio::sync::{mpsc, oneshot};

use crate::{encode_list, AuditEntry, Db, Reservation, StoreError};

/// The most writes in one transaction.
const MAX_BATCH: usize = 256;
/// The writes that may wait for the writer before callers wait to queue theirs.
const QUEUE: usize = 4096;

/// The rate-limit upsert (see [`Store::reserve_lookup`](crate::Store::reserve_lookup)): `tat` is
/// when the allowance is full again. Granted when, after adding one interval to the later of `tat`
/// and now, it is at most a full window ahead of now. No row (or one in the past) is a full
/// allowance. The `WHERE` refuses by not updating, so no row comes back.
const RESERVE_SQL: &str = "INSERT INTO rate_limits (requester, tat) VALUES ($1, $2 + $3) \
    ON CONFLICT (requester) DO UPDATE \
    SET tat = CASE WHEN rate_limits.tat > $2 THEN rate_limits.tat ELSE $2 END + $3 \
    WHERE CASE WHEN rate_limits.tat > $2 THEN rate_limits.tat ELSE $2 END + $3 <= $2 + $4 \
    RETURNING tat";
const AUDIT_SQL: &str = "INSERT INTO audit \
    (at, requester, target, channel, outcome, sources, found_by, devices, precision) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
const COUNT_SQL: &str = "INSERT INTO counters (kind, name, n) VALUES ($1, $2, $3) \
    ON CONFLICT (kind, name) DO UPDATE SET n = counters.n + $3";

/// A rate-limit reservation to make.
#[derive(Debug, Clone)]
pub(crate) struct Reserve {
    pub requester: String,
    pub now_ms: i64,
    /// Milliseconds per lookup that comes back.
    pub interval: i64,
    /// Milliseconds of a full allowance.
    pub window: i64,
}

impl Reserve {
    /// What the `tat` returned by [`RESERVE_SQL`] (none: refused) means.
    fn decide(&self, tat: Option<i64>) -> Reservation {
        match tat {
            Some(tat) => {
                let left = self.now_ms.saturating_add(self.window).saturating_sub(tat)
                    / self.interval.max(1);
                Reservation::Granted {
                    remaining: u32::try_from(left.max(0)).unwrap_or(u32::MAX),
                }
            }
            None => Reservation::Refused,
        }
    }
}

enum Write {
    Reserve(Reserve, oneshot::Sender<Result<Reservation, StoreError>>),
    Record(Box<AuditEntry>, oneshot::Sender<Result<(), StoreError>>),
}

impl Write {
    fn what(&self) -> &'static str {
        match self {
            Write::Reserve(..) => "reserving a lookup",
            Write::Record(..) => "writing the audit log",
        }
    }
}

/// What a write's statement returned, before its transaction committed.
enum Done {
    Reserved(Reservation),
    Recorded,
}

/// The queue to the store's writer task. Clones share the task, which ends when the last clone is
/// dropped.
#[derive(Clone)]
pub(crate) struct Writes {
    queue: mpsc::Sender<Write>,
}

impl Writes {
    /// Starts the writer task of `db` on the current tokio runtime.
    pub(crate) fn start(db: Db) -> Writes {
        let (queue, waiting) = mpsc::channel(QUEUE);
        tokio::spawn(run(db, waiting));
        Writes { queue }
    }

    pub(crate) async fn reserve(&self, reserve: Reserve) -> Result<Reservation, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Write::Reserve(reserve, reply), answer).await
    }

    pub(crate) async fn record(&self, entry: AuditEntry) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Write::Record(Box::new(entry), reply), answer)
            .await
    }

    async fn submit<T>(
        &self,
        write: Write,
        answer: oneshot::Receiver<Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let what = write.what();
        let stopped = || StoreError::Unavailable(format!("{what}: the store's writer has stopped"));
        self.queue.send(write).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn run(db: Db, mut waiting: mpsc::Receiver<Write>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while waiting.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let writes = std::mem::take(&mut batch);
        if writes.len() == 1 {
            commit(&db, writes).await;
            continue;
        }
        match transaction(&db, &writes).await {
            Ok(done) => answer(writes, done.into_iter().map(Ok)),
            // Each again on its own: only the write at fault fails.
            Err(_) => {
                for write in writes {
                    commit(&db, vec![write]).await;
                }
            }
        }
    }
}

/// Runs `writes` in one transaction and answers each.
async fn commit(db: &Db, writes: Vec<Write>) {
    match transaction(db, &writes).await {
        Ok(done) => answer(writes, done.into_iter().map(Ok)),
        Err(e) => {
            let errors: Vec<_> = writes
                .iter()
                .map(|w| Err(db.error_of(w.what(), &e)))
                .collect();
            answer(writes, errors);
        }
    }
}

fn answer(writes: Vec<Write>, results: impl IntoIterator<Item = Result<Done, StoreError>>) {
    // A caller that gave up (its request was cancelled) no longer listens: nothing to do.
    for (write, result) in writes.into_iter().zip(results) {
        match write {
            Write::Reserve(_, reply) => {
                let _ = reply.send(result.and_then(|done| match done {
                    Done::Reserved(reservation) => Ok(reservation),
                    // `transaction` answers each write in its own kind; were that ever broken, the
                    // lookup fails (and is refused) rather than guessing an answer.
                    Done::Recorded => Err(StoreError::Query(
                        "a rate-limit reservation was answered as an audit write".to_owned(),
                    )),
                }));
            }
            Write::Record(_, reply) => {
                let _ = reply.send(result.map(drop));
            }
        }
    }
}

/// Runs `writes` in order in one transaction: what each returned, once it committed.
async fn transaction(db: &Db, writes: &[Write]) -> Result<Vec<Done>, sqlx::Error> {
    // Counter rows are updated once per batch, in sorted order: concurrent transactions (other
    // instances on PostgreSQL) take their row locks in the same order.
    let mut counts: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for write in writes {
        if let Write::Record(entry, _) = write {
            *counts
                .entry(("outcome", entry.outcome.as_str()))
                .or_default() += 1;
            let finders: std::collections::BTreeSet<&str> =
                entry.found_by.iter().map(String::as_str).collect();
            for source in finders {
                *counts.entry(("source", source)).or_default() += 1;
            }
        }
    }
    with_pool!(&db.backend, pool => async {
        let mut tx = pool.begin().await?;
        let mut done = Vec::with_capacity(writes.len());
        for write in writes {
            match write {
                Write::Reserve(reserve, _) => {
                    let row = sqlx::query(RESERVE_SQL)
                        .bind(&reserve.requester)
                        .bind(reserve.now_ms)
                        .bind(reserve.interval)
                        .bind(reserve.window)
                        .fetch_optional(&mut *tx)
                        .await?;
                    let tat = match row {
                        Some(row) => Some(sqlx::Row::try_get::<i64, _>(&row, 0)?),
                        None => None,
                    };
                    done.push(Done::Reserved(reserve.decide(tat)));
                }
                Write::Record(entry, _) => {
                    sqlx::query(AUDIT_SQL)
                        .bind(entry.at)
                        .bind(&entry.requester)
                        .bind(&entry.target)
                        .bind(&entry.channel)
                        .bind(entry.outcome.as_str())
                        .bind(encode_list(&entry.sources))
                        .bind(encode_list(&entry.found_by))
                        .bind(i64::from(entry.devices))
                        .bind(entry.precision.as_deref())
                        .execute(&mut *tx)
                        .await?;
                    done.push(Done::Recorded);
                }
            }
        }
        for ((kind, name), n) in &counts {
            sqlx::query(COUNT_SQL).bind(*kind).bind(*name).bind(*n).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(done)
    }.await)
}
