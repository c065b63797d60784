//! The SQLite side of the group-commit writer (see the parent module).
//!
//! SQLite has one write lock and, in WAL mode, a commit costs a WAL frame for every page it
//! touched. Issuing one token per transaction therefore serialises the writers anyway and
//! writes the shared pages (table leaf, index roots) once per token. Instead, one thread
//! runs whatever has queued since its last commit in a single `BEGIN IMMEDIATE … COMMIT`
//! and only then answers each request.
//!
//! The thread owns its own SQLite connection (rusqlite) and calls SQLite directly: through
//! sqlx every statement is a round trip to the connection's worker thread, and on these
//! machines each such hop cost ~0.4 ms under load, three quarters of a batch's time. To
//! stay the only writer, it holds the sqlx write pool's one connection while it writes, so
//! the other (rare) writes queue behind it instead of contending for the lock.
//!
//! There is no pipelining here: with WAL and `synchronous=NORMAL` a commit is a `write()`
//! into the log, not a wait for the disk, so there is no commit in flight to overlap.
//!
//! A commit writes a WAL frame of one page (`store::SQLITE_PAGE_SIZE`) for every page it
//! touched, and a token touches the same few pages as its neighbours (the right edges of
//! the table and its indexes): the fewer commits share them, the more bytes each token
//! costs. So when the last batch showed that requests arrive together, the writer waits
//! [`COMMIT_DELAY`] for more before it begins the next one: PostgreSQL's `commit_delay` and
//! `commit_siblings`. A lone request never waits, and reads are served meanwhile.

use std::time::{Duration, Instant};

use rusqlite::{Connection, TransactionBehavior};
use sqlx::SqlitePool;
use tokio::sync::mpsc;

use super::{
    Claim, ClaimSql, Job, JobResult, MAX_BATCH, OwnedToken, Work, answer, fail_all, record_created,
};
use crate::store::reader::store_error;
use crate::store::{StoreError, StoreResult};

/// Longest the writer keeps the write connection while batches keep coming; other writes
/// wait at most this long (plus one batch).
const MAX_HOLD: Duration = Duration::from_millis(20);

/// How long a batch waits for company once the previous one showed concurrent writers.
/// Measured on two cores under 32 client-credentials connections: batches grew from 5.4
/// to 15 tokens and the bytes written per token fell by 45 %, with the same throughput and
/// p99; at 300 µs throughput fell (docs/performance.md, "Fifth slice").
const COMMIT_DELAY: Duration = Duration::from_micros(150);
/// Writes in the previous batch that show requests arriving together.
const COMMIT_SIBLINGS: usize = 4;
/// An idle wait for work at least this long means the load that the last batch showed has
/// passed: the next request is a lone one and commits at once.
const COMPANY_GONE: Duration = Duration::from_millis(1);
/// Sleep between looks at the queue while waiting, so reads are not held up longer.
const DELAY_STEP: Duration = Duration::from_micros(50);

/// The writer thread. It waits for the sqlx write connection through the server's runtime
/// (whose tasks return the connection to the pool afterwards); the SQL itself runs
/// synchronously here.
pub(super) fn run(
    path: &std::path::Path,
    lock: &SqlitePool,
    runtime: &tokio::runtime::Handle,
    mut jobs: mpsc::Receiver<Job>,
) {
    let mut conn = None;
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut next = jobs.blocking_recv();
    let mut company = Company::default();
    while let Some(first) = next.take() {
        batch.push(first);
        let held = match runtime.block_on(lock.acquire()) {
            Ok(held) => held,
            Err(err) => {
                fail_all(&mut batch, &StoreError::from(err));
                next = jobs.blocking_recv();
                continue;
            }
        };
        // Keep the connection while work keeps arriving, up to MAX_HOLD: handing it back and
        // taking it again costs a task on the busy server runtime for every batch.
        let since = Instant::now();
        loop {
            take_queued(&mut jobs, &mut batch);
            let outcome = match &mut conn {
                Some(c) => Ok(c),
                None => open(path).map(|c| conn.insert(c)),
            }
            .and_then(|c| {
                serve_reads(c, &mut batch);
                if company.expected() {
                    wait_for_company(c, &mut jobs, &mut batch, COMMIT_DELAY);
                }
                company.committing(batch.len());
                if batch.is_empty() {
                    Ok(Vec::new())
                } else {
                    commit(c, &batch)
                }
            });
            match outcome {
                Ok(results) => answer(batch.drain(..), results),
                Err(err) => {
                    if matches!(err, StoreError::Unavailable(_)) {
                        // Reopen next time: the file may have been replaced or remounted.
                        conn = None;
                    }
                    fail_all(&mut batch, &err);
                }
            }
            match jobs.try_recv() {
                Ok(job) if since.elapsed() < MAX_HOLD => batch.push(job),
                Ok(job) => {
                    next = Some(job);
                    break;
                }
                Err(_) => break,
            }
        }
        // Returning the connection spawns a task: on the pool's runtime.
        let _inside = runtime.enter();
        drop(held);
        if next.is_none() {
            let idle = Instant::now();
            next = jobs.blocking_recv();
            company.idled(idle.elapsed());
        }
    }
}

/// Whether requests are arriving together, so that a batch should wait for company.
#[derive(Default)]
struct Company {
    /// Writes the previous batch carried (its reads were served before it, not counted).
    writes_before: usize,
}

impl Company {
    fn expected(&self) -> bool {
        self.writes_before >= COMMIT_SIBLINGS
    }

    fn committing(&mut self, writes: usize) {
        self.writes_before = writes;
    }

    /// The writer waited `idle` for work with nothing queued.
    fn idled(&mut self, idle: Duration) {
        if idle >= COMPANY_GONE {
            self.writes_before = 0;
        }
    }
}

/// Moves what has queued into `batch`, up to [`MAX_BATCH`].
fn take_queued(jobs: &mut mpsc::Receiver<Job>, batch: &mut Vec<Job>) {
    while batch.len() < MAX_BATCH {
        match jobs.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
}

/// Lets `batch` gather the writes that arrive within `delay` ([`COMMIT_DELAY`]), serving
/// reads as they come. Returns at once when there is nothing to wait for, and early once
/// the batch is full.
fn wait_for_company(
    conn: &Connection,
    jobs: &mut mpsc::Receiver<Job>,
    batch: &mut Vec<Job>,
    delay: Duration,
) {
    if batch.is_empty() {
        return;
    }
    let deadline = Instant::now() + delay;
    while batch.len() < MAX_BATCH && Instant::now() < deadline {
        std::thread::sleep(DELAY_STEP);
        take_queued(jobs, batch);
        serve_reads(conn, batch);
    }
}

/// Runs the reads of `batch` (see `Work::Read`) and leaves the writes: outside any
/// transaction, so they see only what is committed.
fn serve_reads(conn: &Connection, batch: &mut Vec<Job>) {
    if !batch.iter().any(|job| matches!(job.work, Work::Read(_))) {
        return;
    }
    let (reads, writes): (Vec<Job>, Vec<Job>) = batch
        .drain(..)
        .partition(|job| matches!(job.work, Work::Read(_)));
    batch.extend(writes);
    for job in reads {
        if let Work::Read(read) = job.work {
            // A failure is the read's own answer; the connection stays for the writes.
            read(Ok(conn));
        }
    }
}

fn open(path: &std::path::Path) -> StoreResult<Connection> {
    // NO_MUTEX: this thread alone uses the connection, so SQLite need not lock it per call.
    let flags =
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(store_error)?;
    // The write lock is waited for in small steps: the checkpoint's RESTART holds it for a
    // few milliseconds, which SQLite's own handler would round up (`store::busy`).
    crate::store::busy::wait_in_small_steps(&conn).map_err(store_error)?;
    // The settings of the sqlx write connection (see `Store::connect`); and the statement
    // journal of the multi-row INSERT in memory instead of a temporary file created and
    // unlinked per batch, and a 16 MB page cache for the token indexes.
    conn.execute_batch(&format!(
        "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; PRAGMA journal_size_limit = {}; \
         PRAGMA wal_autocheckpoint = 0; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -16000;",
        crate::store::wal::SIZE_LIMIT
    ))
    .map_err(store_error)?;
    // One cached statement per multi-row INSERT size, besides the claims and the proof
    // insert: rusqlite keeps 16 by default, and batches of varying size then evicted each
    // other and were parsed again (SQLite's parser showed in the writer's profile).
    conn.set_prepared_statement_cache_capacity(ROWS_PER_INSERT + 16);
    Ok(conn)
}

/// Runs `batch` in one transaction. `Ok` holds each job's own result (the commit
/// succeeded); `Err` is the failure of the transaction as a whole.
///
/// The claims run one by one (each must know whether it won), then every token pair to
/// create goes in one multi-row INSERT per [`ROWS_PER_INSERT`] rows.
fn commit(conn: &mut Connection, batch: &[Job]) -> StoreResult<Vec<JobResult>> {
    let mut results: Vec<JobResult> = Vec::with_capacity(batch.len());
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(store_error)?;
    let mut to_insert = Vec::with_capacity(batch.len());
    for (index, job) in batch.iter().enumerate() {
        let (claim, token) = match &job.work {
            Work::Token { claim, token } => (claim, token),
            // Served before the transaction (`serve_reads`).
            Work::Read(_) => {
                results.push(Some(Ok(None)));
                continue;
            }
            Work::Proof { hash, expires_at } => {
                let fresh = tx
                    .prepare_cached(
                        "INSERT INTO dpop_proofs (proof_hash, expires_at) VALUES (?1, ?2) \
                         ON CONFLICT (proof_hash) DO NOTHING",
                    )
                    .and_then(|mut st| st.execute(rusqlite::params![hash, expires_at]));
                results.push(Some(match fresh {
                    Ok(changed) => Ok((changed > 0).then_some(1)),
                    Err(e) => Err(store_error(e)),
                }));
                continue;
            }
        };
        let won = match claim {
            None => Ok(true),
            // The shared statements use `$1`/`$2`, which SQLite treats as names.
            Some(Claim { sql, id, now }) => tx
                .prepare_cached(sql.one)
                .and_then(|mut st| st.execute(rusqlite::named_params! {"$1": id, "$2": now}))
                .map(|changed| changed > 0),
        };
        match won {
            Ok(true) => {
                results.push(None);
                to_insert.push((index, token));
            }
            Ok(false) => results.push(Some(Ok(None))),
            Err(e) => results.push(Some(Err(store_error(e)))),
        }
    }
    for chunk in to_insert.chunks(ROWS_PER_INSERT) {
        insert_rows(&tx, chunk, &mut results);
    }
    link_successors(&tx, batch, &mut results);
    tx.commit().map_err(store_error)?;
    Ok(results)
}

/// Records each winning claim's new row in the claimed row when its statement says so
/// (`ClaimSql::link`: a rotation). Should that fail, the job fails: its claim stays and its
/// token is never handed out, which fails closed.
fn link_successors(tx: &rusqlite::Transaction<'_>, batch: &[Job], results: &mut [JobResult]) {
    for (job, result) in batch.iter().zip(results.iter_mut()) {
        let Work::Token {
            claim:
                Some(Claim {
                    sql:
                        ClaimSql {
                            link: Some(link), ..
                        },
                    id: claimed,
                    ..
                }),
            ..
        } = &job.work
        else {
            continue;
        };
        let Some(Ok(Some(new_id))) = result else {
            continue;
        };
        let linked = tx
            .prepare_cached(link.after_insert)
            .and_then(|mut st| st.execute(rusqlite::named_params! {"$1": claimed, "$2": *new_id}));
        if let Err(e) = linked {
            *result = Some(Err(store_error(e)));
        }
    }
}

/// Rows one INSERT carries at most (11 parameters each; SQLite allows 32,766).
const ROWS_PER_INSERT: usize = 64;

/// `INSERT … VALUES (…), (…) RETURNING id, token_hash` for 1 to [`ROWS_PER_INSERT`] rows,
/// built once: the statement text must be stable for the prepared-statement cache.
fn multi_row_insert(rows: usize) -> &'static str {
    static TEXTS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let texts = TEXTS.get_or_init(|| {
        (1..=ROWS_PER_INSERT)
            .map(|n| {
                let values: Vec<String> = (0..n)
                    .map(|r| {
                        let _ = r;
                        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)".to_string()
                    })
                    .collect();
                format!(
                    "INSERT INTO oauth_access_tokens (token_hash, refresh_token_hash, application_id, \
                     user_id, grant_id, family, scopes, created_at, expires_at, resources, audience, dpop_jkt) VALUES {} \
                     RETURNING id, token_hash",
                    values.join(", ")
                )
            })
            .collect()
    });
    &texts[rows - 1]
}

/// Inserts `rows` (job index, token) and records each job's new id in `results`. Should the
/// multi-row statement fail (a constraint: say, the application was deleted meanwhile), the
/// rows are inserted one by one, so that only the faulty one fails. A failing statement is
/// rolled back on its own (SQLite aborts the statement, not the transaction). If an insert
/// fails after its claim succeeded, the claim stays: the code or refresh token is spent and
/// no token is issued, which fails closed.
fn insert_rows(
    tx: &rusqlite::Transaction<'_>,
    rows: &[(usize, &OwnedToken)],
    results: &mut [JobResult],
) {
    use rusqlite::ToSql;
    let inserted = tx
        .prepare_cached(multi_row_insert(rows.len()))
        .and_then(|mut st| {
            let params: Vec<&dyn ToSql> = rows
                .iter()
                .flat_map(|(_, t)| -> [&dyn ToSql; 12] {
                    [
                        &t.token_hash,
                        &t.refresh_token_hash,
                        &t.application_id,
                        &t.user_id,
                        &t.grant_id,
                        &t.family,
                        &t.scopes,
                        &t.created_at,
                        &t.expires_at,
                        &t.resources,
                        &t.audience,
                        &t.dpop_jkt,
                    ]
                })
                .collect();
            st.query_map(params.as_slice(), |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()
        });
    match inserted {
        Ok(created) => record_created(rows, created, results),
        Err(_) if rows.len() > 1 => {
            for row in rows {
                insert_rows(tx, std::slice::from_ref(row), results);
            }
        }
        Err(e) => results[rows[0].0] = Some(Err(store_error(e))),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    fn write_job(n: usize) -> Job {
        Job {
            work: Work::Proof {
                hash: n.to_be_bytes().to_vec(),
                expires_at: 0,
            },
            reply: None,
        }
    }

    /// A long delay, so the test does not depend on how fast this machine schedules.
    const LONG: Duration = Duration::from_secs(5);

    #[test]
    fn a_busy_batch_takes_the_writes_that_arrive_while_it_waits_and_serves_reads_at_once() {
        let conn = Connection::open_in_memory().unwrap();
        let (queue, mut jobs) = mpsc::channel(MAX_BATCH);
        let served = Arc::new(AtomicBool::new(false));
        let read_served = served.clone();
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(5));
            let read: crate::store::reader::Job = Box::new(move |conn| {
                read_served.store(conn.is_ok(), Ordering::SeqCst);
                true
            });
            let read = Job {
                work: Work::Read(read),
                reply: None,
            };
            queue.blocking_send(read).unwrap();
            // The writes come only once the read has been answered, during the wait (or,
            // should reads not be served while waiting, after it, failing the test).
            let give_up = Instant::now() + LONG * 2;
            while !served.load(Ordering::SeqCst) && Instant::now() < give_up {
                std::thread::sleep(Duration::from_millis(1));
            }
            for n in 1..MAX_BATCH {
                queue.blocking_send(write_job(n)).unwrap();
            }
        });
        let mut batch = vec![write_job(0)];
        let started = Instant::now();
        wait_for_company(&conn, &mut jobs, &mut batch, LONG);
        sender.join().unwrap();
        assert_eq!(
            batch.len(),
            MAX_BATCH,
            "the writes that came during the wait joined"
        );
        assert!(
            batch
                .iter()
                .all(|job| matches!(job.work, Work::Proof { .. }))
        );
        assert!(started.elapsed() < LONG, "a full batch stops waiting");
    }

    #[test]
    fn only_a_busy_batch_followed_without_a_pause_expects_company() {
        let mut company = Company::default();
        assert!(!company.expected(), "the first request commits at once");
        company.committing(COMMIT_SIBLINGS - 1);
        assert!(!company.expected());
        company.committing(COMMIT_SIBLINGS);
        assert!(company.expected());
        company.idled(Duration::from_micros(20));
        assert!(company.expected(), "a gap between two batches under load");
        company.idled(COMPANY_GONE);
        assert!(
            !company.expected(),
            "after a pause, a lone request commits at once"
        );
    }

    #[test]
    fn nothing_waits_when_there_is_no_write_to_keep_company() {
        let conn = Connection::open_in_memory().unwrap();
        let (_queue, mut jobs) = mpsc::channel::<Job>(1);
        let mut batch = Vec::new();
        let started = Instant::now();
        wait_for_company(&conn, &mut jobs, &mut batch, LONG);
        assert!(started.elapsed() < LONG / 2);
    }
}
