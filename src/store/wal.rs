//! Keeping SQLite's write-ahead log small, off the write path.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses the threshold, so one
//! request in every few hundred waited for the checkpoint's page copies and its two
//! `fsync`s (the largest part of the write workloads' p99). Every connection that writes
//! turns it off (`wal_autocheckpoint = 0`), and the server runs checkpoints here instead, on
//! a connection of their own, every quarter of a second: a PASSIVE checkpoint copies what it
//! can without taking the write lock, so writers carry on meanwhile.
//!
//! Under steady writes a PASSIVE checkpoint never lets the log start over: the writer
//! appends new frames while it copies, so it never ends level with the log, and readers
//! keep using it. So once the file passes [`SIZE_LIMIT`], the round goes on with a RESTART
//! checkpoint, which holds the write lock, waits (busy handler) for readers, copies what the
//! PASSIVE one has just left (a few milliseconds of frames) and makes the next commit write
//! from the start of the same file; `journal_size_limit` trims the file to [`SIZE_LIMIT`]
//! then. Writers wait 12–16 ms every few seconds at 33,000 tokens/s. A TRUNCATE checkpoint
//! straight away, as before, held them 49–50 ms and cut the file to nothing, so the next
//! commits grew it again: client-credentials p99 by wrk at 32 connections was 24–31 ms,
//! 3.3–4.2 ms now (docs/performance.md, "WAL checkpoints that do not stall the writer").

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

use super::{Pool, Store};

/// Size (bytes) past which the log is restarted, and to which the file is trimmed then.
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
            match tokio::task::spawn_blocking(move || checkpoint(&path, taken, SIZE_LIMIT)).await {
                Ok(Ok(kept)) => conn = Some(kept),
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot checkpoint the WAL"),
                Err(e) => tracing::warn!(error = %e, "the WAL checkpoint panicked"),
            }
        }
    }
}

/// One round: a PASSIVE checkpoint, then a RESTART one if the file is larger than `limit`.
/// Returns the connection for the next round.
fn checkpoint(path: &Path, conn: Option<Connection>, limit: u64) -> rusqlite::Result<Connection> {
    let conn = match conn {
        Some(conn) => conn,
        None => {
            let conn =
                Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)?;
            conn.busy_timeout(Duration::from_secs(5))?;
            conn.execute_batch(&format!(
                "PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = {limit};"
            ))?;
            conn
        }
    };
    run(&conn, "PASSIVE")?;
    if wal_size(path) > limit {
        run(&conn, "RESTART")?;
    }
    Ok(conn)
}

fn run(conn: &Connection, mode: &str) -> rusqlite::Result<()> {
    // (busy, frames in the log, frames copied): busy means readers kept it from finishing.
    let (busy, frames, copied): (i64, i64, i64) =
        conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    tracing::debug!(mode, busy, frames, copied, "WAL checkpoint");
    Ok(())
}

fn wal_size(db: &Path) -> u64 {
    let mut wal = PathBuf::from(db).into_os_string();
    wal.push("-wal");
    std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames in the log: the second column of a PASSIVE checkpoint, which also copies
    /// what no reader still needs (it never restarts the log; only a writer or a RESTART
    /// checkpoint does).
    fn frames_in_log(conn: &Connection) -> i64 {
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))
            .unwrap()
    }

    #[test]
    fn a_round_past_the_limit_restarts_the_log_and_keeps_the_file_for_reuse() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let limit: u64 = 1024 * 1024;
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch(&format!(
                "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; \
                 PRAGMA journal_size_limit = {limit}; CREATE TABLE t (v BLOB);"
            ))
            .unwrap();
        // A reader that stays open (as the server's pools do) between its reads.
        let reader = Connection::open(&path).unwrap();
        let written = std::cell::Cell::new(0_i64);
        let write_some = || {
            written.set(written.get() + 20);
            for _ in 0..20 {
                writer
                    .execute("INSERT INTO t VALUES (randomblob(4000))", [])
                    .unwrap();
            }
        };

        // Under the limit a round only copies, without waiting for the reader that is
        // inside a read: the log goes on growing.
        write_some();
        assert!(wal_size(&path) < limit);
        reader.execute_batch("BEGIN").unwrap();
        let _: i64 = reader
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        let conn = checkpoint(&path, None, limit).unwrap();
        let before = frames_in_log(&writer);
        write_some();
        assert!(
            frames_in_log(&writer) > before,
            "a PASSIVE round left the log growing"
        );
        reader.execute_batch("COMMIT").unwrap();

        // Past the limit, one round copies everything and restarts the log: the next
        // commit writes at its start, into the same file.
        while wal_size(&path) <= limit {
            write_some();
        }
        let _: i64 = reader
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        let conn = checkpoint(&path, Some(conn), limit).unwrap();
        writer.execute("INSERT INTO t VALUES (1)", []).unwrap();
        let frames = frames_in_log(&writer);
        assert!(frames <= 4, "the log restarted, {frames} frames in it");
        let size = wal_size(&path);
        assert!(
            size > limit / 2 && size <= limit,
            "the file is kept for reuse, trimmed to the limit: {size} bytes"
        );
        // The copied rows are all in the database file.
        let rows: i64 = reader
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, written.get() + 1);
        drop(conn);
    }
}
