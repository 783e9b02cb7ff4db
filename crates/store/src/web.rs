//! What the web app's sign-in keeps: keys shared by every instance, browser sessions and sign-ins
//! under way (see `migrations/*/0004_web.sql`).

use sqlx::Row;

use crate::{Arg, Store, StoreError};

/// A sign-in under way: what the OpenID Connect callback checks, and where it returns to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingLogin {
    /// The `state` parameter (random; the row's key).
    pub state: String,
    /// The `nonce` the ID token must carry.
    pub nonce: String,
    /// The PKCE code verifier.
    pub verifier: String,
    /// The local path to return to once signed in.
    pub return_to: String,
}

impl Store {
    /// The shared key `name`: the stored one, or `candidate` when there was none (every instance
    /// ends up with the same key, whichever stored it first).
    pub async fn shared_key(
        &self,
        name: &str,
        candidate: &str,
        now: i64,
    ) -> Result<String, StoreError> {
        let insert = "INSERT INTO web_keys (name, value, created_at) VALUES ($1, $2, $3) \
                      ON CONFLICT (name) DO NOTHING";
        let args = [
            Arg::Text(name.to_owned()),
            Arg::Text(candidate.to_owned()),
            Arg::Int(now),
        ];
        self.execute(insert, &args, "storing a shared key").await?;
        let select = "SELECT value FROM web_keys WHERE name = $1";
        self.text(
            select,
            &[Arg::Text(name.to_owned())],
            "reading a shared key",
        )
        .await?
        .ok_or_else(|| StoreError::Query(format!("the shared key {name:?} vanished")))
    }

    /// Starts a session: the hash of its id, who signed in, until when (Unix seconds).
    pub async fn create_session(
        &self,
        id_hash: &str,
        requester: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let sql = "INSERT INTO sessions (id_hash, requester, created_at, expires_at) \
                   VALUES ($1, $2, $3, $4)";
        let args = [
            Arg::Text(id_hash.to_owned()),
            Arg::Text(requester.to_owned()),
            Arg::Int(now),
            Arg::Int(expires_at),
        ];
        self.execute(sql, &args, "starting a session")
            .await
            .map(drop)
    }

    /// Who the session with this id hash belongs to, while it has not expired at `now`.
    pub async fn session_requester(
        &self,
        id_hash: &str,
        now: i64,
    ) -> Result<Option<String>, StoreError> {
        let sql = "SELECT requester FROM sessions WHERE id_hash = $1 AND expires_at > $2";
        let args = [Arg::Text(id_hash.to_owned()), Arg::Int(now)];
        self.text(sql, &args, "reading a session").await
    }

    /// Ends a session (sign-out); false when there was none.
    pub async fn end_session(&self, id_hash: &str) -> Result<bool, StoreError> {
        let sql = "DELETE FROM sessions WHERE id_hash = $1";
        let ended = self
            .execute(sql, &[Arg::Text(id_hash.to_owned())], "ending a session")
            .await?;
        Ok(ended > 0)
    }

    /// Forgets sessions expired at `now`, and sign-ins started before `logins_before`; returns how
    /// many rows went.
    pub async fn purge_sessions(&self, now: i64, logins_before: i64) -> Result<u64, StoreError> {
        let sessions = self
            .execute(
                "DELETE FROM sessions WHERE expires_at <= $1",
                &[Arg::Int(now)],
                "purging sessions",
            )
            .await?;
        let logins = self
            .execute(
                "DELETE FROM logins WHERE created_at < $1",
                &[Arg::Int(logins_before)],
                "purging sign-ins",
            )
            .await?;
        Ok(sessions + logins)
    }

    /// Keeps a sign-in under way until its callback.
    pub async fn save_login(&self, login: &PendingLogin, now: i64) -> Result<(), StoreError> {
        let sql = "INSERT INTO logins (state, nonce, verifier, return_to, created_at) \
                   VALUES ($1, $2, $3, $4, $5)";
        let args = [
            Arg::Text(login.state.clone()),
            Arg::Text(login.nonce.clone()),
            Arg::Text(login.verifier.clone()),
            Arg::Text(login.return_to.clone()),
            Arg::Int(now),
        ];
        self.execute(sql, &args, "saving a sign-in").await.map(drop)
    }

    /// Takes (once: it is deleted) the sign-in of `state`, if it started at or after `not_before`.
    pub async fn take_login(
        &self,
        state: &str,
        not_before: i64,
    ) -> Result<Option<PendingLogin>, StoreError> {
        let sql = "DELETE FROM logins WHERE state = $1 AND created_at >= $2 \
                   RETURNING state, nonce, verifier, return_to";
        let found: Result<Option<PendingLogin>, sqlx::Error> = with_pool!(&self.db.backend, pool => {
            match sqlx::query(sql).bind(state).bind(not_before).fetch_optional(pool).await {
                Ok(Some(row)) => (|| {
                    Ok(Some(PendingLogin {
                        state: row.try_get(0)?,
                        nonce: row.try_get(1)?,
                        verifier: row.try_get(2)?,
                        return_to: row.try_get(3)?,
                    }))
                })(),
                Ok(None) => Ok(None),
                Err(e) => Err(e),
            }
        });
        found.map_err(|e| self.error("taking a sign-in", e))
    }
}
