//! The hot point reads of a SQLite file, through SQLite itself (rusqlite) on threads of
//! their own: a token by its key (every refresh, every code exchange, every bearer or
//! introspection that misses the token cache), a code by its key, a user by id.
//!
//! Through sqlx, each such read went to the pool (a task), to the connection's worker thread
//! (a channel), back with every row (a channel each), and returned the connection (another
//! task); it also copied every column into a value of its own before decoding it. That was
//! a quarter of a refresh's instructions and most of its thread hand-offs (issue 15's W2
//! profile: sqlx's threads 28 % of the samples, `finish_task_switch` 17 % of the workers').
//! Here a read is one job on a queue, one statement on a cached prepared statement decoded
//! in place, and one reply: a hop there and a hop back, and the runtime never blocks on the
//! file.
//!
//! The connections are read-only, so they never take the write lock; in WAL mode a read
//! sees every transaction committed before it starts, so a token the writer has answered
//! for is found. Each statement is reset when its read ends, so no reader holds the log
//! open between reads (the RESTART checkpoint of `wal` waits for readers).

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use super::{Store, StoreError, StoreResult};

/// Readers at most; reads are short, so a few threads keep up with many cores.
const MAX_READERS: usize = 4;

/// A read to run: given the thread's connection (or why there is none), it runs and answers
/// its caller itself, and says whether the connection failed as a whole.
pub(super) type Job = Box<dyn FnOnce(Result<&Connection, &StoreError>) -> bool + Send + Sync>;

/// The handle the store uses; the threads end when the last handle is dropped.
#[derive(Debug)]
pub(super) struct Reader {
    queue: std::sync::mpsc::Sender<Job>,
}

impl Reader {
    /// Starts the reader threads for the database file at `path`.
    pub(super) fn spawn(path: PathBuf) -> std::io::Result<Reader> {
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_READERS);
        let queue = crate::job_threads::spawn("doorward-reader", threads, || {
            let path = path.clone();
            let mut conn: Option<Connection> = None;
            move |job: Job| read_on(&path, &mut conn, job)
        })?;
        Ok(Reader { queue })
    }

    /// Queues a read. The queue is unbounded: each read is awaited by the request that
    /// made it, so the requests in flight bound it, and sending needs no await (which kept
    /// the futures of every token lookup small; `future_sizes`).
    fn submit(&self, job: Job) -> StoreResult<()> {
        self.queue
            .send(job)
            .map_err(|_| StoreError::Unavailable(sqlx::Error::PoolClosed))
    }
}

/// Where a native read runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Route {
    /// The reader threads: any read.
    Readers,
    /// The token writer's thread, between its batches: a row that the next write will
    /// claim (a refresh token, a code). Every commit by another connection empties a
    /// connection's page cache, and the readers see one per batch, so each of their reads
    /// fetched its pages again (44,000 instructions for a refresh token's row); the
    /// writer's cache holds what it has just written.
    Writer,
}

impl Store {
    /// Runs `read` natively on `route` when this store is a SQLite file; `None` otherwise
    /// (PostgreSQL, an in-memory database), for the caller's sqlx query.
    pub(super) async fn read_natively<T, F>(&self, route: Route, read: F) -> Option<StoreResult<T>>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + Sync + 'static,
    {
        let readers = self.reader.as_ref()?;
        let (job, answer) = job(read);
        let queued = match (route, &self.token_writer) {
            (Route::Writer, Some(writer)) => writer.submit_read(job).await,
            _ => readers.submit(job),
        };
        Some(match queued {
            Ok(()) => answered(answer).await,
            Err(err) => Err(err),
        })
    }
}

/// `read` as a job, and where its answer arrives.
fn job<T, F>(read: F) -> (Job, oneshot::Receiver<StoreResult<T>>)
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + Sync + 'static,
{
    let (reply, answer) = oneshot::channel();
    let job: Job = Box::new(move |conn| {
        let outcome = match conn {
            Ok(conn) => read(conn).map_err(store_error),
            // Opening failed: the file cannot be read now.
            Err(err) => Err(StoreError::Unavailable(sqlx::Error::Protocol(format!(
                "sqlite reader: {err}"
            )))),
        };
        let failed = matches!(outcome, Err(StoreError::Unavailable(_)));
        let _ = reply.send(outcome);
        failed
    });
    (job, answer)
}

/// The answer of a job; a job dropped unrun (its thread gone) is "unavailable".
async fn answered<T>(answer: oneshot::Receiver<StoreResult<T>>) -> StoreResult<T> {
    answer
        .await
        .map_err(|_| StoreError::Unavailable(sqlx::Error::WorkerCrashed))?
}

/// Runs one read on a reader thread's connection, opened on first use and again after a
/// failure (the file may have been replaced).
fn read_on(path: &Path, conn: &mut Option<Connection>, job: Job) {
    if conn.is_none() {
        match open(path) {
            Ok(opened) => *conn = Some(opened),
            Err(err) => {
                job(Err(&err));
                return;
            }
        }
    }
    if let Some(opened) = conn.as_ref()
        && job(Ok(opened))
    {
        *conn = None;
    }
}

fn open(path: &Path) -> StoreResult<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(store_error)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(store_error)?;
    // As the sqlx readers (see `Store::connect`): 8 MB of page cache, so the upper levels
    // of large token indexes stay in memory.
    conn.execute_batch("PRAGMA cache_size = -8000;")
        .map_err(store_error)?;
    Ok(conn)
}

/// SQLite's "cannot serve now" codes become `Unavailable` (503), the rest `Other`; the
/// writer maps its errors the same way.
pub(super) fn store_error(err: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode::*;
    let unavailable = matches!(
        err.sqlite_error_code(),
        Some(DatabaseBusy | DatabaseLocked | CannotOpen | SystemIoFailure | DiskFull)
    );
    let wrapped = sqlx::Error::Protocol(format!("sqlite: {err}"));
    if unavailable {
        StoreError::Unavailable(wrapped)
    } else {
        StoreError::Other(wrapped)
    }
}

/// A struct read from consecutive columns of a rusqlite row from `first` on, in the order
/// of its fields (`impl_from_row!(… and rusqlite)` implements it beside sqlx's `FromRow`).
pub(crate) trait FromSqliteRow: Sized {
    fn from_sqlite_row(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Self>;
}
