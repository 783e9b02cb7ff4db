//! Outside services some tests need — a PostgreSQL server (`WHEREIS_TEST_POSTGRES_URL`, set up by
//! `eval "$(bash .ci/postgres.sh | tail -1)"`) and OpenLDAP's `slapd` (`bash .ci/slapd.sh`) — and
//! the one rule for when they are missing: the test skips, after a note printed once per test binary
//! where a plain `cargo test` shows it; under CI (`CI` set, and not `false` or `0`) it fails instead.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Once;

use sqlx::Connection;

/// The variable naming the PostgreSQL server to test against (a user allowed to create databases).
pub const POSTGRES_ENV: &str = "WHEREIS_TEST_POSTGRES_URL";

/// Whether this is a CI run, where every test must run.
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// A service is missing: panics under CI; otherwise prints `note` once (per `once`) and returns.
fn missing(once: &'static Once, what: &str, setup: &str) {
    if ci() {
        panic!("{what}, and CI must run these tests: {setup}");
    }
    once.call_once(|| {
        // Straight to the process's stderr: the test harness captures `eprintln!`, not this.
        let _ = writeln!(
            std::io::stderr(),
            "note: {what}: skipping the tests that need it ({setup})"
        );
    });
}

/// The PostgreSQL server's URL, or `None` (after the note) when there is none outside CI.
pub fn postgres_url() -> Option<String> {
    static NOTED: Once = Once::new();
    match std::env::var(POSTGRES_ENV) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            missing(
                &NOTED,
                &format!("{POSTGRES_ENV} is not set"),
                "run `eval \"$(bash .ci/postgres.sh | tail -1)\"` first",
            );
            None
        }
    }
}

/// A database of its own for one test, dropped when this is dropped — also when the test fails.
pub struct PgDatabase {
    /// The URL of the database.
    pub url: String,
    admin_url: String,
    name: String,
}

impl std::fmt::Debug for PgDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgDatabase")
            .field("name", &self.name)
            .finish()
    }
}

/// The stores to run a scenario on: SQLite in the test's directory (`None`), and a fresh
/// PostgreSQL database, dropped at the end, when there is a server.
pub async fn stores() -> Vec<Option<PgDatabase>> {
    let mut stores = vec![None];
    if let Some(db) = fresh_postgres().await {
        stores.push(Some(db));
    }
    stores
}

/// A fresh, empty database on the test server, or `None` when there is no server outside CI.
pub async fn fresh_postgres() -> Option<PgDatabase> {
    let admin_url = postgres_url()?;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "whereis_t_{}_{}_{:08x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        fastrand::u32(..)
    );
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
    let mut url = url::Url::parse(&admin_url).expect("a URL");
    url.set_path(&format!("/{name}"));
    Some(PgDatabase {
        url: url.to_string(),
        admin_url,
        name,
    })
}

impl PgDatabase {
    /// Drops the database now (its sessions are ended first); later uses fail.
    pub async fn drop_now(&self) {
        drop_database(&self.admin_url, &self.name).await;
    }
}

async fn drop_database(admin_url: &str, name: &str) {
    if let Ok(mut conn) = sqlx::PgConnection::connect(admin_url).await {
        let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        let _ = sqlx::raw_sql(&sql).execute(&mut conn).await;
        let _ = conn.close().await;
    }
}

impl Drop for PgDatabase {
    /// Best effort: on a thread of its own with a runtime of its own, since this may run inside
    /// (or after) the test's runtime.
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(drop_database(&admin_url, &name));
            }
        })
        .join();
    }
}

/// OpenLDAP's programs.
pub struct SlapdPrograms {
    /// The server.
    pub slapd: PathBuf,
    /// The offline loader.
    pub slapadd: PathBuf,
}

/// `slapd` and `slapadd` (on `PATH` or in the usual sbin directories), or `None` (after the note) when they are
/// not installed outside CI.
pub fn slapd() -> Option<SlapdPrograms> {
    static NOTED: Once = Once::new();
    match (find_program("slapd"), find_program("slapadd")) {
        (Some(slapd), Some(slapadd)) => Some(SlapdPrograms { slapd, slapadd }),
        _ => {
            missing(
                &NOTED,
                "OpenLDAP's slapd is not installed",
                "run `bash .ci/slapd.sh`, i.e. apt-get install -y slapd ldap-utils",
            );
            None
        }
    }
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(
            [
                "/usr/sbin",
                "/sbin",
                "/usr/local/sbin",
                "/usr/local/libexec",
            ]
            .map(PathBuf::from),
        )
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}
