//! Group commit of the hot token writes on SQLite.
//!
//! SQLite has one write lock and, in WAL mode, a commit costs a WAL frame for every page it
//! touched. Issuing one token per transaction therefore serialises the writers anyway and
//! writes the shared pages (table leaf, index roots) once per token. Instead, every token
//! insert and every claim-then-insert (code exchange, refresh rotation, device redemption)
//! is queued to one task, which runs whatever has queued since its last commit in a single
//! `BEGIN IMMEDIATE … COMMIT` and only then answers each request: durability is exactly that
//! of one transaction per token, and nobody sleeps in SQLite's busy handler.
//!
//! No delay is added to wait for company: a batch is whatever arrived while the previous one
//! was committing, so a lone request commits at once.
//!
//! PostgreSQL has row locks and its own group commit, so it does not use this.

use sqlx::SqlitePool;
use tokio::sync::{mpsc, oneshot};

use super::oauth::{NewToken, bind_new_token};
use super::{StoreError, StoreResult};

/// Most operations one transaction carries; more wait for the next one.
const MAX_BATCH: usize = 256;
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
        }
    }
}

impl OwnedToken {
    fn borrowed(&self) -> NewToken<'_> {
        NewToken {
            token_hash: &self.token_hash,
            refresh_token_hash: self.refresh_token_hash.as_deref(),
            application_id: self.application_id,
            user_id: self.user_id,
            grant_id: self.grant_id,
            family: &self.family,
            scopes: &self.scopes,
            created_at: self.created_at,
            expires_at: self.expires_at,
        }
    }
}

/// What a queued operation does.
enum Operation {
    Insert(OwnedToken),
    /// `claim` is a conditional UPDATE of row `id` (`$1`, with `$2` = now); the token is
    /// inserted only when it changed a row.
    ClaimThenInsert {
        claim: &'static str,
        id: i64,
        now: i64,
        token: OwnedToken,
    },
}

struct Job {
    operation: Operation,
    /// The new token's id, or `None` when the claim found nothing to claim.
    reply: oneshot::Sender<StoreResult<Option<i64>>>,
}

/// The handle requests use; the task behind it ends when the last handle is dropped.
#[derive(Debug)]
pub(super) struct TokenWriter {
    queue: mpsc::Sender<Job>,
}

impl TokenWriter {
    /// Starts the writer task on the current Tokio runtime.
    pub(super) fn spawn(pool: SqlitePool) -> TokenWriter {
        let (queue, jobs) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(run(pool, jobs));
        TokenWriter { queue }
    }

    pub(super) async fn insert(&self, token: &NewToken<'_>) -> StoreResult<i64> {
        let id = self.submit(Operation::Insert(token.into())).await?;
        id.ok_or(StoreError::NotFound)
    }

    pub(super) async fn claim_then_insert(
        &self,
        claim: &'static str,
        id: i64,
        now: i64,
        token: &NewToken<'_>,
    ) -> StoreResult<Option<i64>> {
        self.submit(Operation::ClaimThenInsert {
            claim,
            id,
            now,
            token: token.into(),
        })
        .await
    }

    async fn submit(&self, operation: Operation) -> StoreResult<Option<i64>> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Job { operation, reply })
            .await
            .map_err(|_| StoreError::Unavailable(sqlx::Error::PoolClosed))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable(sqlx::Error::WorkerCrashed))?
    }
}

async fn run(pool: SqlitePool, mut jobs: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while jobs.recv_many(&mut batch, MAX_BATCH).await > 0 {
        commit(&pool, &mut batch).await;
    }
}

/// Runs `batch` in one transaction and answers every job: with its own result when the
/// commit succeeded, with the commit's error otherwise.
///
/// Each statement is a round trip to the connection's thread, the main cost here, so the
/// transaction runs the claims one by one (each must know whether it won), then inserts every
/// token pair to create with one multi-row INSERT per [`ROWS_PER_INSERT`] rows.
async fn commit(pool: &SqlitePool, batch: &mut Vec<Job>) {
    let mut results: Vec<Option<StoreResult<Option<i64>>>> = Vec::with_capacity(batch.len());
    let outcome: StoreResult<()> = async {
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut to_insert = Vec::with_capacity(batch.len());
        for (index, job) in batch.iter().enumerate() {
            match &job.operation {
                Operation::Insert(token) => {
                    results.push(None);
                    to_insert.push((index, token));
                }
                Operation::ClaimThenInsert {
                    claim,
                    id,
                    now,
                    token,
                } => {
                    let claimed = sqlx::query(*claim)
                        .bind(id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .map(|r| r.rows_affected());
                    match claimed {
                        Ok(0) => results.push(Some(Ok(None))),
                        Ok(_) => {
                            results.push(None);
                            to_insert.push((index, token));
                        }
                        Err(e) => results.push(Some(Err(e.into()))),
                    }
                }
            }
        }
        for chunk in to_insert.chunks(ROWS_PER_INSERT) {
            insert_rows(&mut tx, chunk, &mut results).await;
        }
        tx.commit().await?;
        Ok(())
    }
    .await;
    match outcome {
        Ok(()) => {
            for (job, result) in batch.drain(..).zip(results) {
                let result = result.unwrap_or(Err(StoreError::NotFound));
                let _ = job.reply.send(result);
            }
        }
        Err(err) => {
            for job in batch.drain(..) {
                let _ = job.reply.send(Err(copy_of(&err)));
            }
        }
    }
}

/// Rows one INSERT carries at most (9 parameters each; SQLite allows 32,766).
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
                        let p: Vec<String> = (1..=9).map(|c| format!("${}", r * 9 + c)).collect();
                        format!("({})", p.join(", "))
                    })
                    .collect();
                format!(
                    "INSERT INTO oauth_access_tokens (token_hash, refresh_token_hash, application_id, \
                     user_id, grant_id, family, scopes, created_at, expires_at) VALUES {} \
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
async fn insert_rows(
    conn: &mut sqlx::SqliteConnection,
    rows: &[(usize, &OwnedToken)],
    results: &mut [Option<StoreResult<Option<i64>>>],
) {
    let mut query = sqlx::query_as::<_, (i64, Vec<u8>)>(multi_row_insert(rows.len()));
    for (_, token) in rows {
        let t = token.borrowed();
        query = bind_new_token!(query, t);
    }
    match query.fetch_all(&mut *conn).await {
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
                Box::pin(insert_rows(conn, std::slice::from_ref(row), results)).await;
            }
        }
        Err(e) => results[rows[0].0] = Some(Err(e.into())),
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
