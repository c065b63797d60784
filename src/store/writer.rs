//! Group commit of the hot token writes on SQLite.
//!
//! SQLite has one write lock and, in WAL mode, a commit costs a WAL frame for every page it
//! touched. Issuing one token per transaction therefore serialises the writers anyway and
//! writes the shared pages (table leaf, index roots) once per token. Instead, every token
//! insert and every claim-then-insert (code exchange, refresh rotation, device redemption)
//! is queued to one thread, which runs whatever has queued since its last commit in a single
//! `BEGIN IMMEDIATE … COMMIT` and only then answers each request: durability is exactly that
//! of one transaction per token, and nobody sleeps in SQLite's busy handler.
//!
//! The thread owns its own SQLite connection (rusqlite) and calls SQLite directly: through
//! sqlx every statement is a round trip to the connection's worker thread, and on these
//! machines each such hop cost ~0.4 ms under load, three quarters of a batch's time. To
//! stay the only writer, it holds the sqlx write pool's one connection while it writes, so
//! the other (rare) writes queue behind it instead of contending for the lock.
//!
//! No delay is added to wait for company: a batch is whatever arrived while the previous one
//! was committing, so a lone request commits at once.
//!
//! PostgreSQL has row locks and its own group commit, so it does not use this.

use std::path::PathBuf;

use rusqlite::{Connection, TransactionBehavior};
use sqlx::SqlitePool;
use tokio::sync::{mpsc, oneshot};

use super::rows::NewToken;
use super::{StoreError, StoreResult};

/// Most operations one transaction carries; more wait for the next one.
const MAX_BATCH: usize = 256;
/// Longest the writer keeps the write connection while batches keep coming; other writes
/// wait at most this long (plus one batch).
const MAX_HOLD: std::time::Duration = std::time::Duration::from_millis(20);
/// Requests that may wait for the writer before senders are held back.
const QUEUE_DEPTH: usize = 4096;

/// A token pair to insert, owned, since it outlives the request's borrow while queued.
struct OwnedToken {
    token_hash: Vec<u8>,
    refresh_token_hash: Option<Vec<u8>>,
    application_id: Option<i64>,
    user_id: Option<i64>,
    grant_id: Option<i64>,
    family: Vec<u8>,
    scopes: String,
    created_at: i64,
    expires_at: i64,
    resources: Option<String>,
    audience: Option<String>,
    dpop_jkt: Option<String>,
}

impl From<&NewToken<'_>> for OwnedToken {
    fn from(t: &NewToken<'_>) -> Self {
        OwnedToken {
            token_hash: t.token_hash.to_vec(),
            refresh_token_hash: t.refresh_token_hash.map(<[u8]>::to_vec),
            application_id: t.application_id,
            user_id: t.user_id,
            grant_id: t.grant_id,
            family: t.family.to_vec(),
            scopes: t.scopes.to_owned(),
            created_at: t.created_at,
            expires_at: t.expires_at,
            resources: t.resources.map(str::to_owned),
            audience: t.audience.map(str::to_owned),
            dpop_jkt: t.dpop_jkt.map(str::to_owned),
        }
    }
}

/// A conditional UPDATE of row `id` (`$1`, with `$2` = now): the token is inserted only
/// when it changed a row.
pub(super) struct Claim {
    pub(super) sql: &'static str,
    pub(super) id: i64,
    pub(super) now: i64,
}

/// What one request needs written.
#[allow(
    clippy::large_enum_variant,
    reason = "tokens are nearly every job; boxing them would allocate once more per token"
)]
enum Work {
    /// A token pair, after its claim if there is one.
    Token {
        claim: Option<Claim>,
        token: OwnedToken,
    },
    /// An RFC 9449 proof seen (`store::dpop`): a resource request's one write, batched like
    /// the token writes so DPoP-bound reads do not take the write lock one by one.
    Proof { hash: Vec<u8>, expires_at: i64 },
}

struct Job {
    work: Work,
    /// A token: its id, or `None` when the claim found nothing to claim. A proof: `Some`
    /// when it was new, `None` when it had been seen (a replay).
    reply: oneshot::Sender<StoreResult<Option<i64>>>,
}

/// The handle requests use; the task behind it ends when the last handle is dropped.
#[derive(Debug)]
pub(super) struct TokenWriter {
    queue: mpsc::Sender<Job>,
}

impl TokenWriter {
    /// Starts the writer thread for the database file at `path`; `lock` is the sqlx write
    /// pool, whose connection it holds while writing, and `runtime` the runtime that pool
    /// lives on.
    pub(super) fn spawn(
        path: PathBuf,
        lock: SqlitePool,
        runtime: tokio::runtime::Handle,
    ) -> std::io::Result<TokenWriter> {
        let (queue, jobs) = mpsc::channel(QUEUE_DEPTH);
        std::thread::Builder::new()
            .name("doorward-writer".into())
            .spawn(move || run(&path, &lock, &runtime, jobs))?;
        Ok(TokenWriter { queue })
    }

    /// Inserts `token`, after `claim` if there is one; `None` when the claim found nothing.
    pub(super) async fn submit(
        &self,
        claim: Option<Claim>,
        token: &NewToken<'_>,
    ) -> StoreResult<Option<i64>> {
        let work = Work::Token {
            claim,
            token: token.into(),
        };
        self.send(work).await
    }

    /// Records a DPoP proof's hash until `expires_at`; false when it was there already.
    pub(super) async fn submit_proof(&self, hash: &[u8], expires_at: i64) -> StoreResult<bool> {
        let work = Work::Proof {
            hash: hash.to_vec(),
            expires_at,
        };
        Ok(self.send(work).await?.is_some())
    }

    async fn send(&self, work: Work) -> StoreResult<Option<i64>> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Job { work, reply })
            .await
            .map_err(|_| StoreError::Unavailable(sqlx::Error::PoolClosed))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable(sqlx::Error::WorkerCrashed))?
    }
}

/// The writer thread. It waits for the sqlx write connection through the server's runtime
/// (whose tasks return the connection to the pool afterwards); the SQL itself runs
/// synchronously here.
fn run(
    path: &std::path::Path,
    lock: &SqlitePool,
    runtime: &tokio::runtime::Handle,
    mut jobs: mpsc::Receiver<Job>,
) {
    let mut conn = None;
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut next = jobs.blocking_recv();
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
        let since = std::time::Instant::now();
        loop {
            while batch.len() < MAX_BATCH {
                match jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            let outcome = match &mut conn {
                Some(c) => commit(c, &batch),
                None => open(path).and_then(|c| commit(conn.insert(c), &batch)),
            };
            match outcome {
                Ok(results) => {
                    for (job, result) in batch.drain(..).zip(results) {
                        let _ = job.reply.send(result.unwrap_or(Err(StoreError::NotFound)));
                    }
                }
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
            next = jobs.blocking_recv();
        }
    }
}

/// Answers every job of `batch` with (a copy of) `err`.
fn fail_all(batch: &mut Vec<Job>, err: &StoreError) {
    for job in batch.drain(..) {
        let _ = job.reply.send(Err(copy_of(err)));
    }
}

fn open(path: &std::path::Path) -> StoreResult<Connection> {
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)
        .map_err(store_error)?;
    // The settings of the sqlx write connection (see `Store::connect`); and the statement
    // journal of the multi-row INSERT in memory instead of a temporary file created and
    // unlinked per batch, and a 16 MB page cache for the token indexes.
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(store_error)?;
    conn.execute_batch(&format!(
        "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; PRAGMA journal_size_limit = {}; \
         PRAGMA wal_autocheckpoint = 0; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -16000;",
        super::wal::SIZE_LIMIT
    ))
    .map_err(store_error)?;
    // One cached statement per multi-row INSERT size, besides the claims and the proof
    // insert: rusqlite keeps 16 by default, and batches of varying size then evicted each
    // other and were parsed again (SQLite's parser showed in the writer's profile).
    conn.set_prepared_statement_cache_capacity(ROWS_PER_INSERT + 16);
    Ok(conn)
}

type JobResult = Option<StoreResult<Option<i64>>>;

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
                .prepare_cached(sql)
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
    tx.commit().map_err(store_error)?;
    Ok(results)
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
        Ok(created) => {
            // RETURNING gives no order guarantee: match the rows by their unique hash.
            for (id, hash) in created {
                if let Some((index, _)) = rows.iter().find(|(_, t)| t.token_hash == hash) {
                    results[*index] = Some(Ok(Some(id)));
                }
            }
        }
        Err(_) if rows.len() > 1 => {
            for row in rows {
                insert_rows(tx, std::slice::from_ref(row), results);
            }
        }
        Err(e) => results[rows[0].0] = Some(Err(store_error(e))),
    }
}

/// SQLite's "cannot serve now" codes become `Unavailable` (503), the rest `Other`.
fn store_error(err: rusqlite::Error) -> StoreError {
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

/// The same failure for every job of a failed batch (sqlx errors cannot be cloned); the
/// class that decides the HTTP answer (503 or 500) is kept.
fn copy_of(err: &StoreError) -> StoreError {
    let text = || sqlx::Error::Protocol(format!("group commit failed: {err}"));
    match err {
        StoreError::Unavailable(_) => StoreError::Unavailable(text()),
        StoreError::NotFound => StoreError::NotFound,
        StoreError::Conflict(what) => StoreError::Conflict(what),
        StoreError::Other(_) => StoreError::Other(text()),
    }
}
