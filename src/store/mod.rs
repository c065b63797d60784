//! All SQL lives here, for both backends.
//!
//! One [`Store`] wraps the native sqlx pool of the configured backend. Each query is written
//! once in the dialect both SQLite and PostgreSQL accept (`$N` placeholders, `RETURNING`,
//! `ON CONFLICT`, Unix-second `BIGINT` times) and compiled once per backend by [`on_pool!`],
//! so each arm keeps its driver's native types. Where the dialects truly differ, a method
//! matches on [`Pool`] explicitly and says why.

pub mod applications;
pub mod device;
mod migrations;
pub mod oauth;
pub mod sessions;
pub mod signing_keys;
pub mod throttles;
pub mod tokens;
pub mod two_factor;
pub mod users;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

/// Errors of the storage layer. The web, API and OAuth layers each map these once.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A unique constraint refused the write; the payload names the column ("username", "email").
    #[error("{0} has already been taken")]
    Conflict(&'static str),
    /// The database cannot be reached (or timed out): callers answer 503 and retry later.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error("database error: {0}")]
    Other(#[source] sqlx::Error),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(err),
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                // PostgreSQL names the index in `constraint()`, SQLite only in the message.
                let what = format!("{} {}", db.constraint().unwrap_or_default(), db.message());
                StoreError::Conflict(if what.contains("email") {
                    "email"
                } else {
                    "username"
                })
            }
            sqlx::Error::Database(db) if is_unavailable(db.code().as_deref()) => {
                StoreError::Unavailable(err)
            }
            _ => StoreError::Other(err),
        }
    }
}

/// Database error codes that mean "the database cannot serve now, try again later" rather
/// than "this request is wrong". PostgreSQL SQLSTATEs: class 08 (connection exception),
/// 53 (insufficient resources, e.g. too many connections), 57P (shutting down), 28
/// (credentials refused) and 3D000 (the database does not exist). SQLite result codes:
/// 5 BUSY, 6 LOCKED, 14 CANTOPEN.
fn is_unavailable(code: Option<&str>) -> bool {
    code.is_some_and(|c| {
        ["08", "53", "57P", "28", "3D000"]
            .iter()
            .any(|p| c.starts_with(p))
            || matches!(c, "5" | "6" | "14")
    })
}

/// The native pool of the configured backend.
#[derive(Clone, Debug)]
pub enum Pool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

/// Which database a URL selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of_url(url: &str) -> Option<Backend> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else {
            None
        }
    }
}

/// Runs `$body` with `$p` bound to whichever native pool the store holds, and `$begin` to the
/// statement that opens a write transaction on that backend. SQLite needs `BEGIN IMMEDIATE`:
/// a deferred transaction that later writes fails with SQLITE_BUSY instead of waiting.
macro_rules! on_pool {
    ($store:expr, $p:ident => $body:expr) => {
        match &$store.pool {
            $crate::store::Pool::Sqlite($p) => $body,
            $crate::store::Pool::Postgres($p) => $body,
        }
    };
    ($store:expr, $p:ident, $begin:ident => $body:expr) => {
        match &$store.pool {
            $crate::store::Pool::Sqlite($p) => {
                let $begin = "BEGIN IMMEDIATE";
                $body
            }
            $crate::store::Pool::Postgres($p) => {
                let $begin = "BEGIN";
                $body
            }
        }
    };
}
pub(crate) use on_pool;

/// Implements `sqlx::FromRow` for a plain struct on every backend's row type, without the sqlx
/// derive macro (which would compile the database drivers a second time for the proc-macro).
macro_rules! impl_from_row {
    ($ty:ident { $($field:ident: $fty:ty),* $(,)? }) => {
        impl<'r, R: sqlx::Row> sqlx::FromRow<'r, R> for $ty
        where
            &'r str: sqlx::ColumnIndex<R>,
            $($fty: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,)*
        {
            fn from_row(row: &'r R) -> sqlx::Result<Self> {
                Ok($ty { $($field: row.try_get(stringify!($field))?,)* })
            }
        }
    };
}
pub(crate) use impl_from_row;

/// Pool and timeout settings.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    pub max_connections: u32,
    /// How long a request waits for a connection before answering 503.
    pub acquire_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(3),
        }
    }
}

/// The handle every layer uses to reach the database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) pool: Pool,
}

impl Store {
    /// Connects to `url` (`sqlite:` or `postgres://`), creating the SQLite file if missing.
    /// The pool connects lazily, so a server can start (and report not-ready) while the
    /// database is down, and recovers by itself when it returns.
    pub fn connect(url: &str, options: &StoreOptions) -> StoreResult<Store> {
        let pool = match Backend::of_url(url) {
            Some(Backend::Sqlite) => {
                let connect = SqliteConnectOptions::from_str(url)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    // With WAL, NORMAL is durable against process crashes (kill -9); only
                    // an OS crash or power loss can lose the last transactions.
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(5));
                Pool::Sqlite(
                    SqlitePoolOptions::new()
                        .max_connections(options.max_connections)
                        .acquire_timeout(options.acquire_timeout)
                        .connect_lazy_with(connect),
                )
            }
            Some(Backend::Postgres) => {
                let connect = PgConnectOptions::from_str(url)?.application_name("doorward");
                Pool::Postgres(
                    PgPoolOptions::new()
                        .max_connections(options.max_connections)
                        .acquire_timeout(options.acquire_timeout)
                        .connect_lazy_with(connect),
                )
            }
            None => {
                return Err(StoreError::Other(sqlx::Error::Configuration(
                    "the database URL must start with sqlite: or postgres://".into(),
                )));
            }
        };
        Ok(Store { pool })
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies the embedded migrations of this backend (idempotent, safe on several nodes).
    pub async fn migrate(&self) -> StoreResult<()> {
        migrations::run(&self.pool).await
    }

    /// One round trip, for readiness.
    pub async fn ping(&self) -> StoreResult<()> {
        on_pool!(self, p => sqlx::query("SELECT 1").execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// (open connections, idle connections), for metrics.
    pub fn pool_figures(&self) -> (u32, usize) {
        on_pool!(self, p => (p.size(), p.num_idle()))
    }

    pub async fn close(&self) {
        on_pool!(self, p => p.close().await)
    }
}
