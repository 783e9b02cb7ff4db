//! Each person's own privacy choices (`privacy_settings`) and each requester's starred colleagues
//! (`favourites`).
//!
//! The store keeps the choices as given and gives them no meaning: what a choice allows is decided
//! by the privacy rules of the application. A person's choices are one row, and every change
//! rewrites it under a compare-and-swap on its `version` (read, change in memory, write only if
//! nobody wrote in between, else again): two changes made at once — on one instance or on several
//! sharing PostgreSQL — both land, and a limit on a list (checked by the caller's change on the
//! state it is applied to) holds under concurrency. The same for a requester's favourites.

use std::collections::BTreeMap;

use sqlx::Row;

use crate::{decode_list, encode_list, Arg, Store, StoreError};

/// How many names a person may list to share with or block (together).
pub const MAX_NAMED_PEOPLE: usize = 100;
/// How many colleagues a requester may star.
pub const MAX_FAVOURITES: usize = 50;
/// How many usernames [`Store::settings_among`] asks about per query.
pub const SETTINGS_BATCH: usize = 500;
/// How often a change is tried again when others keep changing the same row.
const MAX_ATTEMPTS: usize = 32;

/// One person's privacy choices; `Default` is "no choice made": everything as the organisation says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersonSettings {
    /// `Some(true)`: opted in; `Some(false)`: opted out; `None`: the organisation's default.
    pub findable: Option<bool>,
    /// The person's precision (`exact`, `floor`, `building`), as stored.
    pub precision: Option<String>,
    /// The person's own working hours, as stored.
    pub hours: Option<String>,
    /// Only the chosen may find the person (the team when `share_team`, and `shared_with`).
    pub restricted: bool,
    /// With `restricted`: the person's team may find them.
    pub share_team: bool,
    /// Lower-case emails that may find the person when the audience is restricted.
    pub shared_with: Vec<String>,
    /// Lower-case emails that may never find the person.
    pub blocked: Vec<String>,
}

const SETTINGS_COLUMNS: &str =
    "username, findable, precision, hours, restricted, share_team, shared_with, blocked, version";

type SettingsRow = (
    String,
    Option<i64>,
    Option<String>,
    Option<String>,
    i64,
    i64,
    String,
    String,
    i64,
);

impl Store {
    /// The choices of `username` (normalised by the caller); the default when they made none.
    pub async fn person_settings(&self, username: &str) -> Result<PersonSettings, StoreError> {
        Ok(self
            .settings_row(username)
            .await?
            .map(|(settings, _)| settings)
            .unwrap_or_default())
    }

    /// The choices of those of `usernames` who made any, asked [`SETTINGS_BATCH`] names per query
    /// (a building's roster costs a few queries, not one per person).
    pub async fn settings_among(
        &self,
        usernames: &[String],
    ) -> Result<BTreeMap<String, PersonSettings>, StoreError> {
        let mut found = BTreeMap::new();
        for batch in usernames.chunks(SETTINGS_BATCH) {
            let placeholders: Vec<String> = (1..=batch.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT {SETTINGS_COLUMNS} FROM privacy_settings WHERE username IN ({})",
                placeholders.join(", ")
            );
            let args: Vec<Arg> = batch.iter().map(|u| Arg::Text(u.clone())).collect();
            for row in self.settings_rows(&sql, &args).await? {
                let (username, settings, _) = self.settings_of(row)?;
                found.insert(username, settings);
            }
        }
        Ok(found)
    }

    /// Changes the choices of `username`: `change` is applied to the current choices (the default
    /// when none are stored) and the result written, unless another change was written in between —
    /// then `change` runs again on that one. Returns what the last run of `change` returned. Nothing
    /// is written when `change` leaves the choices as they were.
    pub async fn update_person_settings<T>(
        &self,
        username: &str,
        now: i64,
        change: impl FnMut(&mut PersonSettings) -> T,
    ) -> Result<T, StoreError> {
        self.compare_and_swap::<PersonSettingsRow, T>(username, now, change)
            .await
    }

    /// Sets whether `username` may be located (`None`: as the organisation's default says).
    pub async fn set_findable(
        &self,
        username: &str,
        findable: Option<bool>,
        now: i64,
    ) -> Result<(), StoreError> {
        self.update_person_settings(username, now, |s| s.findable = findable)
            .await
    }

    /// Opts `username` out of being located (`true`), or in (`false`).
    pub async fn set_opted_out(
        &self,
        username: &str,
        opted_out: bool,
        now: i64,
    ) -> Result<(), StoreError> {
        self.set_findable(username, Some(!opted_out), now).await
    }

    /// Whether `username` opted out.
    pub async fn is_opted_out(&self, username: &str) -> Result<bool, StoreError> {
        Ok(self.person_settings(username).await?.findable == Some(false))
    }

    /// How many people opted out.
    pub async fn opted_out_count(&self) -> Result<u64, StoreError> {
        let sql = "SELECT COUNT(*) FROM privacy_settings WHERE findable = 0";
        self.count(sql, &[], "counting opt-outs").await
    }

    /// How many people opted in.
    pub async fn opted_in_count(&self) -> Result<u64, StoreError> {
        let sql = "SELECT COUNT(*) FROM privacy_settings WHERE findable = 1";
        self.count(sql, &[], "counting opt-ins").await
    }

    /// The usernames `requester` starred, in the order they were starred.
    pub async fn favourites(&self, requester: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .favourites_row(requester)
            .await?
            .map(|(list, _)| list)
            .unwrap_or_default())
    }

    /// Changes the favourites of `requester` as [`Store::update_person_settings`] changes choices:
    /// compare-and-swap, `change` run again on a list changed in between, nothing written when it
    /// leaves the list as it was.
    pub async fn update_favourites<T>(
        &self,
        requester: &str,
        now: i64,
        change: impl FnMut(&mut Vec<String>) -> T,
    ) -> Result<T, StoreError> {
        self.compare_and_swap::<FavouritesRow, T>(requester, now, change)
            .await
    }

    /// Applies `change` to the row `key` of `R` under a compare-and-swap on its version: read,
    /// change in memory, insert (when absent) or update (when the version is still the one read);
    /// when another writer came first, again on what they wrote.
    async fn compare_and_swap<R: VersionedRow, T>(
        &self,
        key: &str,
        now: i64,
        mut change: impl FnMut(&mut R::Value) -> T,
    ) -> Result<T, StoreError> {
        for _ in 0..MAX_ATTEMPTS {
            let current = R::read(self, key).await?;
            let before = current.as_ref().map(|(v, _)| v.clone()).unwrap_or_default();
            let mut next = before.clone();
            let answer = change(&mut next);
            if next == before {
                return Ok(answer);
            }
            let mut args = R::args(key, &next, now);
            let sql = match &current {
                None => R::INSERT,
                Some((_, version)) => {
                    args.push(Arg::Int(*version));
                    R::UPDATE
                }
            };
            if self.execute(sql, &args, R::WHAT).await? == 1 {
                return Ok(answer);
            }
        }
        Err(StoreError::Query(format!(
            "{}: changed by others {MAX_ATTEMPTS} times in a row; try again",
            R::WHAT
        )))
    }

    async fn settings_row(
        &self,
        username: &str,
    ) -> Result<Option<(PersonSettings, i64)>, StoreError> {
        let sql = format!("SELECT {SETTINGS_COLUMNS} FROM privacy_settings WHERE username = $1");
        let rows = self
            .settings_rows(&sql, &[Arg::Text(username.to_owned())])
            .await?;
        match rows.into_iter().next() {
            Some(row) => {
                let (_, settings, version) = self.settings_of(row)?;
                Ok(Some((settings, version)))
            }
            None => Ok(None),
        }
    }

    async fn settings_rows(&self, sql: &str, args: &[Arg]) -> Result<Vec<SettingsRow>, StoreError> {
        let rows: Result<Vec<SettingsRow>, sqlx::Error> = with_pool!(&self.db.backend, pool => {
            match bind_all!(sqlx::query(sql), args).fetch_all(pool).await {
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
        rows.map_err(|e| self.error("reading privacy choices", e))
    }

    fn settings_of(&self, row: SettingsRow) -> Result<(String, PersonSettings, i64), StoreError> {
        let (
            username,
            findable,
            precision,
            hours,
            restricted,
            share_team,
            shared,
            blocked,
            version,
        ) = row;
        let list = |text: &str| {
            decode_list(text).ok_or_else(|| {
                StoreError::Query(format!(
                    "reading privacy choices: the row of {username} has a malformed list"
                ))
            })
        };
        let settings = PersonSettings {
            findable: findable.map(|f| f != 0),
            precision,
            hours,
            restricted: restricted != 0,
            share_team: share_team != 0,
            shared_with: list(&shared)?,
            blocked: list(&blocked)?,
        };
        Ok((username, settings, version))
    }

    async fn favourites_row(
        &self,
        requester: &str,
    ) -> Result<Option<(Vec<String>, i64)>, StoreError> {
        let what = "reading favourites";
        let sql = "SELECT usernames, version FROM favourites WHERE requester = $1";
        let row: Result<Option<(String, i64)>, sqlx::Error> = with_pool!(&self.db.backend, pool => {
            match sqlx::query(sql).bind(requester).fetch_optional(pool).await {
                Ok(Some(row)) => row
                    .try_get(0)
                    .and_then(|list| Ok(Some((list, row.try_get(1)?)))),
                Ok(None) => Ok(None),
                Err(e) => Err(e),
            }
        });
        match row.map_err(|e| self.error(what, e))? {
            Some((list, version)) => {
                let list = decode_list(&list).ok_or_else(|| {
                    StoreError::Query(format!("{what}: a malformed list for {requester}"))
                })?;
                Ok(Some((list, version)))
            }
            None => Ok(None),
        }
    }
}

/// A row changed only by [`Store::compare_and_swap`]: its value, how it is read with its version,
/// and the statements that write it (the update's last parameter is the version read).
trait VersionedRow {
    type Value: Clone + Default + PartialEq;
    /// What a failure says it was doing.
    const WHAT: &'static str;
    /// Inserts the row unless another writer inserted it first.
    const INSERT: &'static str;
    /// Updates the row if its version is still the one read, and bumps the version.
    const UPDATE: &'static str;

    async fn read(store: &Store, key: &str) -> Result<Option<(Self::Value, i64)>, StoreError>;

    fn args(key: &str, value: &Self::Value, now: i64) -> Vec<Arg>;
}

/// `privacy_settings`: one person's choices.
struct PersonSettingsRow;

impl VersionedRow for PersonSettingsRow {
    type Value = PersonSettings;
    const WHAT: &'static str = "saving privacy choices";
    const INSERT: &'static str = "INSERT INTO privacy_settings (username, findable, precision, \
        hours, restricted, share_team, shared_with, blocked, updated_at) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (username) DO NOTHING";
    const UPDATE: &'static str = "UPDATE privacy_settings SET findable = $2, precision = $3, \
        hours = $4, restricted = $5, share_team = $6, shared_with = $7, blocked = $8, \
        updated_at = $9, version = version + 1 WHERE username = $1 AND version = $10";

    async fn read(store: &Store, key: &str) -> Result<Option<(PersonSettings, i64)>, StoreError> {
        store.settings_row(key).await
    }

    fn args(key: &str, value: &PersonSettings, now: i64) -> Vec<Arg> {
        vec![
            Arg::Text(key.to_owned()),
            Arg::OptInt(value.findable.map(i64::from)),
            Arg::OptText(value.precision.clone()),
            Arg::OptText(value.hours.clone()),
            Arg::Int(i64::from(value.restricted)),
            Arg::Int(i64::from(value.share_team)),
            Arg::Text(encode_list(&value.shared_with)),
            Arg::Text(encode_list(&value.blocked)),
            Arg::Int(now),
        ]
    }
}

/// `favourites`: the colleagues one requester starred.
struct FavouritesRow;

impl VersionedRow for FavouritesRow {
    type Value = Vec<String>;
    const WHAT: &'static str = "saving favourites";
    const INSERT: &'static str = "INSERT INTO favourites (requester, usernames, updated_at) \
        VALUES ($1, $2, $3) ON CONFLICT (requester) DO NOTHING";
    const UPDATE: &'static str = "UPDATE favourites SET usernames = $2, updated_at = $3, \
        version = version + 1 WHERE requester = $1 AND version = $4";

    async fn read(store: &Store, key: &str) -> Result<Option<(Vec<String>, i64)>, StoreError> {
        store.favourites_row(key).await
    }

    fn args(key: &str, value: &Vec<String>, now: i64) -> Vec<Arg> {
        vec![
            Arg::Text(key.to_owned()),
            Arg::Text(encode_list(value)),
            Arg::Int(now),
        ]
    }
}
