//! All SQL lives here, for both backends.
//!
//! One [`Store`] wraps the native sqlx pool of the configured backend. Each query is written
//! once in the dialect both SQLite and PostgreSQL accept (`$N` placeholders, `RETURNING`,
//! `ON CONFLICT`, Unix-second `BIGINT` times) and compiled once per backend by [`on_pool!`],
//! so each arm keeps its driver's native types. Where the dialects truly differ, a method
//! matches on [`Pool`] explicitly and says why.

pub mod access_tokens;
pub mod account_tokens;
pub mod admin;
pub mod applications;
pub mod audit_events;
pub mod backchannel;
mod busy;
mod cache;
pub mod device;
pub mod doorkeeper_import;
pub mod doorkeeper_source;
pub mod dpop;
pub mod grants;
pub mod groups;
pub mod imported_credentials;
mod invalidations;
pub mod mail_queue;
mod migrations;
pub mod personal_access_tokens;
pub mod pushed_requests;
pub(crate) mod reader;
pub mod row_counts;
pub mod rows;
pub mod sessions;
pub mod signing_keys;
mod stored;
pub mod throttles;
pub mod two_factor;
pub mod users;
mod wal;
mod writer;

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

pub use cache::TokenCache;

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
                } else if what.contains("group_members") {
                    "member"
                } else if what.contains("full_path") {
                    "path"
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

/// True for a `sqlite:` URL naming an in-memory database.
fn is_in_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

/// The native pool of the configured backend.
///
/// SQLite allows one writer at a time, so all writes go through `write`, a pool of one
/// connection: writers queue in the pool (first come, first served) instead of sleeping in
/// SQLite's busy handler, and the hot token writes are grouped into shared transactions by
/// [`writer::TokenWriter`]. Reads use `read`, whose connections are opened read-only, so a
/// write sent there by mistake fails loudly in the tests instead of contending for the lock.
#[derive(Clone, Debug)]
pub enum Pool {
    Sqlite {
        read: sqlx::SqlitePool,
        write: sqlx::SqlitePool,
    },
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

/// Runs `$body` with `$p` bound to whichever native pool the store holds.
///
/// - `on_pool!(store, p => body)`: any statement. On SQLite this is the single write
///   connection, which is always correct; use it for writes and for rare reads.
/// - `on_pool!(store, read p => body)`: a read on a frequent path, served on SQLite by the
///   read-only pool so that it never waits behind writes.
/// - `on_pool!(store, p, begin => body)`: a write transaction, with `$begin` bound to the
///   statement that opens it. SQLite needs `BEGIN IMMEDIATE`: a deferred transaction that
///   later writes fails with SQLITE_BUSY instead of waiting.
macro_rules! on_pool {
    ($store:expr, read $p:ident => $body:expr) => {
        match &$store.pool {
            $crate::store::Pool::Sqlite { read: $p, .. } => $body,
            $crate::store::Pool::Postgres($p) => $body,
        }
    };
    ($store:expr, $p:ident => $body:expr) => {
        match &$store.pool {
            $crate::store::Pool::Sqlite { write: $p, .. } => $body,
            $crate::store::Pool::Postgres($p) => $body,
        }
    };
    ($store:expr, $p:ident, $begin:ident => $body:expr) => {
        match &$store.pool {
            $crate::store::Pool::Sqlite { write: $p, .. } => {
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
    // Also read from consecutive columns of a rusqlite row, in the order of the fields:
    // for the types the SQLite readers return (see `reader`).
    ($ty:ident { $($field:ident: $fty:ty),* $(,)? } and rusqlite) => {
        $crate::store::impl_from_row!($ty { $($field: $fty),* });

        impl<'r, R: sqlx::Row> $crate::store::FromRowAt<'r, R> for $ty
        where
            usize: sqlx::ColumnIndex<R>,
            $($fty: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,)*
        {
            fn from_row_at(row: &'r R, first: usize) -> sqlx::Result<Self> {
                let mut column = first;
                let mut next = || {
                    column += 1;
                    column - 1
                };
                Ok($ty { $($field: row.try_get(next())?,)* })
            }
        }

        impl $crate::store::reader::FromSqliteRow for $ty {
            fn from_sqlite_row(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Self> {
                let mut column = first;
                let mut next = || {
                    column += 1;
                    column - 1
                };
                Ok($ty { $($field: row.get::<_, $fty>(next())?,)* })
            }
        }
    };
}
pub(crate) use impl_from_row;

/// A struct read from consecutive columns of a sqlx row from `first` on, in the order of its
/// fields, for joins whose tables share column names (`id`, `created_at`);
/// `impl_from_row!(… and rusqlite)` implements it.
pub(crate) trait FromRowAt<'r, R: sqlx::Row>: Sized {
    fn from_row_at(row: &'r R, first: usize) -> sqlx::Result<Self>;
}

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

/// Rows one purge statement deletes at most (see [`Store::delete_in_batches`]).
pub const PURGE_BATCH: i64 = 1_000;
/// Purge statements per kind of row and maintenance round at most.
const PURGE_MAX_BATCHES: u32 = 100;

/// The handle every layer uses to reach the database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) pool: Pool,
    /// The group-commit writer of token inserts and single-use JWTs (see [`writer`]); none
    /// for an in-memory SQLite database, which writes one transaction per token.
    token_writer: Option<std::sync::Arc<writer::TokenWriter>>,
    /// The SQLite file's threads for the hot point reads (see [`reader`]); none on
    /// PostgreSQL and for an in-memory database, whose reads go through sqlx.
    reader: Option<std::sync::Arc<reader::Reader>>,
    /// Validated tokens and applications, when the server enabled it (see [`cache`]).
    token_cache: Option<std::sync::Arc<cache::TokenCache>>,
}

/// The page size of a new SQLite database (an existing file keeps its own). The log holds
/// a whole page for every page a commit touches, and a batch of tokens touches the
/// right-edge leaves of the table and of each index: a quarter of SQLite's default 4 KiB
/// halves the log bytes per token (1.9 KB to 0.8 KB for client credentials, 6.3 to 2.8 KB
/// for a rotation) with the same throughput and CPU (docs/performance.md, "Sixth slice").
pub const SQLITE_PAGE_SIZE: u32 = 1024;

impl Store {
    /// Connects to `url` (`sqlite:` or `postgres://`), creating the SQLite file if missing.
    /// The pool connects lazily, so a server can start (and report not-ready) while the
    /// database is down, and recovers by itself when it returns.
    pub fn connect(url: &str, options: &StoreOptions) -> StoreResult<Store> {
        let pool = match Backend::of_url(url) {
            Some(Backend::Sqlite) => {
                let base = SqliteConnectOptions::from_str(url)?
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(5));
                let write = base
                    .clone()
                    .create_if_missing(true)
                    // Before the journal mode: SQLite fixes the page size when the first
                    // table is created, and cannot change it in WAL mode afterwards.
                    .page_size(SQLITE_PAGE_SIZE)
                    .journal_mode(SqliteJournalMode::Wal)
                    // With WAL, NORMAL is durable against process crashes (kill -9); only
                    // an OS crash or power loss can lose the last transactions.
                    .synchronous(SqliteSynchronous::Normal)
                    // Once a checkpoint has reset the log, truncate the file back to this
                    // size, so a burst of writes does not leave a huge WAL behind.
                    .pragma("journal_size_limit", wal::SIZE_LIMIT.to_string())
                    // Checkpoints run on their own connection (see `wal`), not inside the
                    // commits of whoever happens to write.
                    .pragma("wal_autocheckpoint", "0");
                let write_pool = SqlitePoolOptions::new()
                    .max_connections(1)
                    // A local file cannot go stale, and the token writer acquires this
                    // connection for every batch: no ping on acquire.
                    .test_before_acquire(false)
                    .acquire_timeout(options.acquire_timeout)
                    .connect_lazy_with(write);
                // An in-memory database exists once per connection: everything must share
                // the one connection there.
                let read_pool = if is_in_memory(url) {
                    write_pool.clone()
                } else {
                    let read = base
                        .read_only(true)
                        // 8 MB of page cache per reader (SQLite's default is 2 MB), so the
                        // upper levels of large token indexes stay in memory.
                        .pragma("cache_size", "-8000");
                    SqlitePoolOptions::new()
                        .max_connections(options.max_connections)
                        .acquire_timeout(options.acquire_timeout)
                        .connect_lazy_with(read)
                };
                Pool::Sqlite {
                    read: read_pool,
                    write: write_pool,
                }
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
        // PostgreSQL and a SQLite file get the group-commit writer; an in-memory SQLite
        // database (a connection of its own would see another database) writes one
        // transaction per token.
        let token_writer = match &pool {
            Pool::Sqlite { write, .. } if !is_in_memory(url) => {
                let path = write.connect_options().get_filename().to_path_buf();
                let runtime = tokio::runtime::Handle::try_current()
                    .map_err(|e| StoreError::Other(sqlx::Error::Configuration(e.into())))?;
                let writer = writer::TokenWriter::spawn_sqlite(path, write.clone(), runtime)
                    .map_err(|e| StoreError::Other(sqlx::Error::Io(e)))?;
                Some(std::sync::Arc::new(writer))
            }
            Pool::Postgres(pool) => {
                let runtime = tokio::runtime::Handle::try_current()
                    .map_err(|e| StoreError::Other(sqlx::Error::Configuration(e.into())))?;
                let writer = writer::TokenWriter::spawn_postgres(pool.clone(), &runtime);
                Some(std::sync::Arc::new(writer))
            }
            Pool::Sqlite { .. } => None,
        };
        let reader = match &pool {
            Pool::Sqlite { read, .. } if !is_in_memory(url) => {
                let path = read.connect_options().get_filename().to_path_buf();
                let reader = reader::Reader::spawn(path)
                    .map_err(|e| StoreError::Other(sqlx::Error::Io(e)))?;
                Some(std::sync::Arc::new(reader))
            }
            _ => None,
        };
        Ok(Store {
            pool,
            token_writer,
            reader,
            token_cache: None,
        })
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite { .. } => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies the embedded migrations of this backend (idempotent, safe on several nodes).
    pub async fn migrate(&self) -> StoreResult<()> {
        migrations::run(&self.pool).await
    }

    /// The purges' one way of deleting many rows: runs `sql`, a `DELETE` of at most `$2`
    /// rows past `$1` found through an index, until it deletes fewer than [`PURGE_BATCH`]
    /// rows, at most [`PURGE_MAX_BATCHES`] times. Each statement is short, so a backlog of
    /// millions never holds SQLite's write lock (and the token writer waiting for it) for
    /// long, and drains over several maintenance rounds.
    pub(crate) async fn delete_in_batches(
        &self,
        sql: &'static str,
        cutoff: i64,
    ) -> StoreResult<u64> {
        let mut deleted = 0;
        for _ in 0..PURGE_MAX_BATCHES {
            let n = on_pool!(self, p => sqlx::query(sql)
                .bind(cutoff)
                .bind(PURGE_BATCH)
                .execute(p)
                .await
                .map(|r| r.rows_affected()))?;
            deleted += n;
            if n < PURGE_BATCH as u64 {
                break;
            }
        }
        Ok(deleted)
    }

    /// One round trip, for readiness.
    pub async fn ping(&self) -> StoreResult<()> {
        on_pool!(self, read p => sqlx::query("SELECT 1").execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// (open connections, idle connections), for metrics; both SQLite pools together.
    pub fn pool_figures(&self) -> (u32, usize) {
        match &self.pool {
            Pool::Sqlite { read, write } => (
                read.size() + write.size(),
                read.num_idle() + write.num_idle(),
            ),
            Pool::Postgres(p) => (p.size(), p.num_idle()),
        }
    }

    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite { read, write } => {
                read.close().await;
                write.close().await;
            }
            Pool::Postgres(p) => p.close().await,
        }
    }
}
