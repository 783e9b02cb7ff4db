//! Leadership: one instance at a time runs a singleton task (the Webex websocket, a location stream).
//!
//! On PostgreSQL the leader holds a session-level advisory lock, on a connection of its own outside
//! the pool: the lock lives exactly as long as that session, so a leader that dies, or loses its
//! connection, lets go of it without anyone cleaning up. The session asks the server for TCP
//! keepalives (idle 5 s, then every 5 s, 3 tries), so that the server also ends the session of a
//! leader whose host vanished without closing the connection — in about 20 s. (The lock needs a
//! direct connection, or a pooler in session mode: transaction pooling would hand it to others.)
//!
//! On SQLite there is one instance: it always leads, and the lock only keeps two tasks of that
//! instance (clones of one [`Store`](super::Store)) from leading the same name at once.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection, Row};

/// How long taking the lead may wait for the PostgreSQL server to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a check (or a release) may wait for an answer before the session counts as lost.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// The names led by the tasks of one SQLite store.
pub(super) type LocalLeaders = Arc<Mutex<HashSet<String>>>;

/// The right to run the singleton task `name`, until released, dropped, or lost.
pub struct Leadership {
    name: String,
    hold: Hold,
}

enum Hold {
    /// SQLite: the name is in the store's set.
    Local(LocalLeaders),
    /// PostgreSQL: the advisory lock `key`, held by the session of `conn` (`None` once lost).
    Postgres {
        conn: Option<PgConnection>,
        key: i64,
    },
    /// Released.
    Gone,
}

impl fmt::Debug for Leadership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let held = match &self.hold {
            Hold::Local(_) => "sqlite",
            Hold::Postgres { conn: Some(_), .. } => "postgres",
            Hold::Postgres { conn: None, .. } => "postgres (lost)",
            Hold::Gone => "released",
        };
        f.debug_struct("Leadership")
            .field("name", &self.name)
            .field("held", &held)
            .finish()
    }
}

impl Leadership {
    /// The name of the task led.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this instance still leads: on PostgreSQL, asks the lock's session whether it still
    /// holds the lock (within 5 s). Once false, always false: the caller must stop the task, and may
    /// compete for the lead again ([`Store::lead`](super::Store::lead)). Call it every few seconds
    /// while leading.
    pub async fn still_held(&mut self) -> bool {
        match &mut self.hold {
            Hold::Local(_) => true,
            Hold::Gone => false,
            Hold::Postgres { conn, key } => {
                let Some(session) = conn.as_mut() else {
                    return false;
                };
                let (high, low) = split_key(*key);
                let check = sqlx::query(
                    "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' \
                     AND pid = pg_backend_pid() AND granted \
                     AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 1",
                )
                .bind(high)
                .bind(low)
                .fetch_one(&mut *session);
                let held = match tokio::time::timeout(CHECK_TIMEOUT, check).await {
                    Ok(Ok(row)) => row.try_get::<i64, _>(0).is_ok_and(|n| n == 1),
                    Ok(Err(err)) => {
                        tracing::warn!(name = %self.name, error = %err, "leadership lost: the lock's session failed");
                        false
                    }
                    Err(_) => {
                        tracing::warn!(name = %self.name, "leadership lost: the lock's session did not answer");
                        false
                    }
                };
                if !held {
                    // Dropping the connection ends the session, and with it the lock if the server
                    // still had it: this instance must not lead again without winning it anew.
                    *conn = None;
                }
                held
            }
        }
    }

    /// Lets another instance (or task) lead now.
    pub async fn release(mut self) {
        match std::mem::replace(&mut self.hold, Hold::Gone) {
            Hold::Postgres {
                conn: Some(mut session),
                key,
            } => {
                let unlock = sqlx::query("SELECT pg_advisory_unlock($1)")
                    .bind(key)
                    .execute(&mut session);
                let _ = tokio::time::timeout(CHECK_TIMEOUT, unlock).await;
                let _ = tokio::time::timeout(CHECK_TIMEOUT, session.close()).await;
            }
            local @ Hold::Local(_) => self.hold = local, // given back by `drop`
            Hold::Postgres { conn: None, .. } | Hold::Gone => {}
        }
    }

    /// Leads `name` among the tasks sharing `leaders`, unless one already does.
    pub(super) fn local(name: &str, leaders: &LocalLeaders) -> Option<Leadership> {
        let mut names = leaders.lock().unwrap_or_else(PoisonError::into_inner);
        names.insert(name.to_owned()).then(|| Leadership {
            name: name.to_owned(),
            hold: Hold::Local(Arc::clone(leaders)),
        })
    }

    /// Tries to take the advisory lock of `name` on a new session opened with `options`.
    pub(super) async fn postgres(
        name: &str,
        options: &PgConnectOptions,
    ) -> Result<Option<Leadership>, sqlx::Error> {
        let options = options.clone().application_name("whereis leader").options([
            ("tcp_keepalives_idle", "5"),
            ("tcp_keepalives_interval", "5"),
            ("tcp_keepalives_count", "3"),
        ]);
        let mut session = match tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await {
            Ok(connected) => connected?,
            Err(_) => {
                return Err(sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "the server did not accept a connection within {} s",
                        CONNECT_TIMEOUT.as_secs()
                    ),
                )))
            }
        };
        let key = lock_key(name);
        let try_lock = sqlx::query("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut session);
        let locked: bool = match tokio::time::timeout(CHECK_TIMEOUT, try_lock).await {
            Ok(row) => row?.try_get(0)?,
            Err(_) => {
                return Err(sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "the server did not answer within {} s",
                        CHECK_TIMEOUT.as_secs()
                    ),
                )))
            }
        };
        if !locked {
            let _ = tokio::time::timeout(CHECK_TIMEOUT, session.close()).await;
            return Ok(None);
        }
        Ok(Some(Leadership {
            name: name.to_owned(),
            hold: Hold::Postgres {
                conn: Some(session),
                key,
            },
        }))
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        // PostgreSQL: dropping the connection closes it, and the server ends the session and its lock.
        if let Hold::Local(leaders) = &self.hold {
            leaders
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&self.name);
        }
    }
}

/// The advisory lock key of `name`: the first 8 bytes of a SHA-256 of it, in a namespace of its own
/// (so as not to meet other users of advisory locks on the same database).
pub(super) fn lock_key(name: &str) -> i64 {
    let digest = Sha256::digest(format!("whereis leadership\0{name}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// A bigint advisory key as `pg_locks` shows it: high half in `classid`, low half in `objid`.
fn split_key(key: i64) -> (i64, i64) {
    let key = key as u64;
    ((key >> 32) as i64, (key & 0xffff_ffff) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_and_distinct() {
        assert_eq!(lock_key("webex"), lock_key("webex"));
        assert_ne!(lock_key("webex"), lock_key("spaces:hq"));
        assert_eq!(split_key(-1), (0xffff_ffff, 0xffff_ffff));
        assert_eq!(split_key(0x1_0000_0002), (1, 2));
    }

    #[test]
    fn local_leadership_is_exclusive_until_dropped() {
        let leaders = LocalLeaders::default();
        let first = Leadership::local("webex", &leaders).expect("first leads");
        assert!(Leadership::local("webex", &leaders).is_none());
        let other = Leadership::local("spaces", &leaders).expect("another name");
        drop(first);
        assert!(Leadership::local("webex", &leaders).is_some());
        assert_eq!(other.name(), "spaces");
    }
}
