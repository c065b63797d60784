//! The harness's own access to the database under test, beside the server: counting token
//! rows, the sizes of SQLite's files, and the throwaway PostgreSQL database.

use std::path::Path;
use std::str::FromStr;

use anyhow::Context;
use doorward::domain::secret;
use doorward::store::Backend;

/// Rows in `oauth_access_tokens`, read directly.
pub async fn count_tokens(backend: Backend, url: &str) -> anyhow::Result<i64> {
    const SQL: &str = "SELECT COUNT(*) FROM oauth_access_tokens";
    Ok(match backend {
        Backend::Sqlite => {
            let opts = sqlx::sqlite::SqliteConnectOptions::from_str(url)?.read_only(true);
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(opts)
                .await?;
            let n: i64 = sqlx::query_scalar(SQL).fetch_one(&pool).await?;
            pool.close().await;
            n
        }
        Backend::Postgres => {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect(url)
                .await?;
            let n: i64 = sqlx::query_scalar(SQL).fetch_one(&pool).await?;
            pool.close().await;
            n
        }
    })
}

/// The sizes in bytes of a SQLite database file and of its write-ahead log (`<db>-wal`),
/// 0 for a file that does not exist.
/// PostgreSQL's WAL activity so far, cluster-wide (`pg_stat_wal`, PostgreSQL 14+): the
/// disk writes and flushes (fsyncs) of the log and its bytes. The difference across a run
/// is the write I/O that run's commits cost (data pages are written later, by checkpoints).
#[derive(Clone, Copy, Debug, Default)]
pub struct PgWal {
    pub writes: i64,
    pub flushes: i64,
    pub bytes: i64,
}

impl PgWal {
    pub async fn read(url: &str) -> anyhow::Result<PgWal> {
        const SQL: &str = "SELECT wal_write, wal_sync, wal_bytes::bigint FROM pg_stat_wal";
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(url)
            .await?;
        let (writes, flushes, bytes): (i64, i64, i64) =
            sqlx::query_as(SQL).fetch_one(&pool).await?;
        pool.close().await;
        Ok(PgWal {
            writes,
            flushes,
            bytes,
        })
    }

    pub fn since(self, before: PgWal) -> PgWal {
        PgWal {
            writes: self.writes - before.writes,
            flushes: self.flushes - before.flushes,
            bytes: self.bytes - before.bytes,
        }
    }
}

pub fn sqlite_sizes(db: &Path) -> (u64, u64) {
    let size = |suffix: &str| {
        let mut path = db.as_os_str().to_owned();
        path.push(suffix);
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
    };
    (size(""), size("-wal"))
}

/// A new database on the server of `admin` (a superuser URL): its URL and its name.
pub async fn create_pg_database(admin: &str) -> anyhow::Result<(String, String)> {
    let name = format!(
        "doorward_bench_{}_{}",
        std::process::id(),
        hex::encode(secret::random_bytes::<3>())
    );
    let pool = sqlx::PgPool::connect(admin)
        .await
        .context("cannot reach PostgreSQL")?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&pool)
        .await?;
    pool.close().await;
    let mut url = url::Url::parse(admin)?;
    url.set_path(&name);
    Ok((url.to_string(), name))
}

pub async fn drop_pg_database(admin: &str, name: &str) {
    if let Ok(pool) = sqlx::PgPool::connect(admin).await {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&pool)
        .await;
        pool.close().await;
    }
}
