//! Keeping SQLite's write-ahead log small, off the write path.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses the threshold, so one
//! request in every few hundred waited for the checkpoint's page copies and its two
//! `fsync`s (the largest part of the write workloads' p99). Every connection that writes
//! turns it off (`wal_autocheckpoint = 0`), and the server runs checkpoints here instead, on
//! a connection of their own, every quarter of a second: a PASSIVE checkpoint copies what it can
//! without taking the write lock, so writers carry on meanwhile. A PASSIVE checkpoint cannot
//! restart the log while readers use it, which under steady load is always; so once the
//! file passes [`SIZE_LIMIT`], a TRUNCATE checkpoint waits (busy handler) for those readers
//! and resets it. `journal_size_limit` then keeps the file at that size at most.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

use super::{Pool, Store};

/// Size (bytes) past which the log is truncated, and to which it is trimmed after a reset.
pub const SIZE_LIMIT: u64 = 64 * 1024 * 1024;

const INTERVAL: Duration = Duration::from_millis(250);

impl Store {
    /// SQLite: checkpoints the WAL every quarter of a second for as long as the server runs.
    pub async fn keep_wal_small(self) {
        let Pool::Sqlite { write, .. } = &self.pool else {
            return;
        };
        let path = write.connect_options().get_filename().to_path_buf();
        if !path.is_file() {
            return; // an in-memory database has no log
        }
        let mut tick = tokio::time::interval(INTERVAL);
        let mut conn = None;
        loop {
            tick.tick().await;
            let path = path.clone();
            let taken = conn.take();
            match tokio::task::spawn_blocking(move || checkpoint(&path, taken)).await {
                Ok(Ok(kept)) => conn = Some(kept),
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot checkpoint the WAL"),
                Err(e) => tracing::warn!(error = %e, "the WAL checkpoint panicked"),
            }
        }
    }
}

/// One round: a PASSIVE checkpoint, and a TRUNCATE one if the file is too large. Returns
/// the connection for the next round.
fn checkpoint(path: &Path, conn: Option<Connection>) -> rusqlite::Result<Connection> {
    let conn = match conn {
        Some(conn) => conn,
        None => {
            let conn =
                Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)?;
            conn.busy_timeout(Duration::from_secs(5))?;
            conn.execute_batch(&format!(
                "PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = {SIZE_LIMIT};"
            ))?;
            conn
        }
    };
    let mode = if wal_size(path) > SIZE_LIMIT {
        "TRUNCATE"
    } else {
        "PASSIVE"
    };
    // (busy, frames in the log, frames copied): busy means readers kept it from finishing.
    let (busy, frames, copied): (i64, i64, i64) =
        conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    tracing::debug!(mode, busy, frames, copied, "WAL checkpoint");
    Ok(conn)
}

fn wal_size(db: &Path) -> u64 {
    let mut wal = PathBuf::from(db).into_os_string();
    wal.push("-wal");
    std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0)
}
