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
//! keep using it. So a round that found new frames goes on with a RESTART checkpoint, which
//! holds the write lock, waits for the readers still in the log, copies what the PASSIVE
//! one has just left (a quarter of a second's frames at most) and makes the next commit
//! write from the start of the same file. Under [`SIZE_LIMIT`] it gives up after about two
//! milliseconds if a reader is still inside the log (the next round tries again); past it,
//! it waits for them (`store::busy`), and `journal_size_limit` trims the file to the limit.
//!
//! Writers now wait 3.0 ms per round (median; 5.8 ms at most) at 27,000 rotations/s.
//! Restarting only past 64 MB held them 8–12 ms every second or two, as the log's file grew
//! past the limit and was trimmed back each time, and a TRUNCATE checkpoint held them
//! 49–50 ms. The p99 that a steady client sees (`wrk`, or the benchmark's corrected p99) is
//! now 2.5–3.6 ms for client credentials (24–31 ms with TRUNCATE) and 4.1–5.5 ms for
//! rotations (about 10 ms with the 64 MB restart): docs/performance.md, "WAL checkpoints
//! that do not stall the writer" and "The benchmark's p99 and wrk's".

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

/// One round: a PASSIVE checkpoint, then, if the log had frames, a RESTART one that waits
/// for readers only once the file is larger than `limit`. Returns the connection for the
/// next round.
fn checkpoint(path: &Path, conn: Option<Connection>, limit: u64) -> rusqlite::Result<Connection> {
    let conn = match conn {
        Some(conn) => conn,
        None => {
            let conn =
                Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)?;
            conn.execute_batch(&format!(
                "PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = {limit};"
            ))?;
            conn
        }
    };
    if run(&conn, "PASSIVE")? == 0 {
        return Ok(conn); // nothing written since the last restart
    }
    // The RESTART holds the writers back while it waits for the write lock and for the
    // readers in the log, so it waits in small steps, and briefly while the file is small.
    if wal_size(path) > limit {
        super::busy::wait_in_small_steps(&conn)?;
    } else {
        super::busy::wait_briefly(&conn)?;
    }
    run(&conn, "RESTART")?;
    Ok(conn)
}

/// Runs one checkpoint; returns the frames that were in the log.
fn run(conn: &Connection, mode: &str) -> rusqlite::Result<i64> {
    // (busy, frames in the log, frames copied): busy means a lock or a reader kept it from
    // finishing.
    let started = std::time::Instant::now();
    let (busy, frames, copied): (i64, i64, i64) =
        conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    let micros = started.elapsed().as_micros();
    tracing::debug!(mode, busy, frames, copied, micros, "WAL checkpoint");
    Ok(frames)
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
    fn a_round_waits_for_readers_only_past_the_limit_and_keeps_the_file_for_reuse() {
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
        let count = || -> i64 {
            reader
                .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
                .unwrap()
        };

        // Under the limit, a reader inside a read keeps the log from restarting, and the
        // round gives up at once instead of holding the writers back (a patient RESTART
        // would wait five seconds for it): the log goes on growing.
        write_some();
        assert!(wal_size(&path) < limit);
        reader.execute_batch("BEGIN").unwrap();
        count();
        let started = std::time::Instant::now();
        let conn = checkpoint(&path, None, limit).unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "the round waited {:?} for the reader",
            started.elapsed()
        );
        let before = frames_in_log(&writer);
        write_some();
        assert!(frames_in_log(&writer) > before, "the log went on growing");
        reader.execute_batch("COMMIT").unwrap();

        // Past the limit, the round waits for the reader to be done and restarts the log,
        // in the same file, trimmed to the limit.
        while wal_size(&path) <= limit {
            write_some();
        }
        count();
        let conn = checkpoint(&path, Some(conn), limit).unwrap();
        writer.execute("INSERT INTO t VALUES (1)", []).unwrap();
        written.set(written.get() + 1);
        let frames = frames_in_log(&writer);
        assert!(frames <= 4, "the log restarted, {frames} frames in it");
        let size = wal_size(&path);
        assert!(
            size > limit / 2 && size <= limit,
            "the file is kept for reuse, trimmed to the limit: {size} bytes"
        );
        // The copied rows are all in the database file.
        assert_eq!(count(), written.get());
        drop(conn);
    }

    #[test]
    fn rounds_keep_the_log_short_under_a_steady_writer() {
        // A writer committing without pause, as the token writer does under load: a PASSIVE
        // checkpoint never ends level with the log then, so without the RESTART the log
        // (and its file) would hold every frame written.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch(&format!(
                "PRAGMA page_size = 1024; PRAGMA journal_mode = WAL; \
                 PRAGMA wal_autocheckpoint = 0; PRAGMA synchronous = NORMAL; \
                 PRAGMA journal_size_limit = {SIZE_LIMIT}; CREATE TABLE t (v BLOB);"
            ))
            .unwrap();
        crate::store::busy::wait_in_small_steps(&writer).unwrap();
        const COMMITS: usize = 20_000;
        let done = &std::sync::atomic::AtomicBool::new(false);
        let largest = std::thread::scope(|s| {
            let writing = s.spawn(move || {
                for _ in 0..COMMITS {
                    writer
                        .execute("INSERT INTO t VALUES (randomblob(200))", [])
                        .unwrap();
                }
                done.store(true, std::sync::atomic::Ordering::Release);
            });
            let mut conn = None;
            let mut largest = 0;
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                conn = Some(checkpoint(&path, conn, SIZE_LIMIT).unwrap());
                largest = largest.max(wal_size(&path));
                std::thread::sleep(Duration::from_millis(5));
            }
            writing.join().unwrap();
            largest
        });
        // Each commit adds at least one 1 KiB frame: 20 MB in all.
        assert!(
            largest < 4 * 1024 * 1024,
            "the log's file reached {largest} bytes"
        );
    }
}
