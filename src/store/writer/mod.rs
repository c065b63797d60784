//! Group commit of the hot token writes, on both backends.
//!
//! Every token insert, every claim-then-insert (code exchange, refresh rotation, device
//! redemption) and every single-use JWT record (DPoP proofs, client assertions) is queued
//! here; whatever has queued since the last transaction began goes into the next one, and
//! each request is answered only after its transaction commits: durability is exactly that
//! of one transaction per token, with one commit (and on PostgreSQL one WAL flush) shared
//! by many tokens. A lone request commits at once; on SQLite a batch that follows a busy one
//! waits briefly for company (`sqlite::COMMIT_DELAY`), since its commit's cost is in pages,
//! not in tokens.
//!
//! - SQLite ([`sqlite`]): one thread with its own connection, one transaction at a time
//!   (SQLite has one write lock).
//! - PostgreSQL ([`postgres`]): a task that starts up to [`postgres::PIPELINE`] (two)
//!   transactions at once, each with one `UNNEST` insert of all its rows, so the next
//!   batch forms and starts while the previous one waits for its WAL flush. Several nodes
//!   each run their own; row locks keep the claims single-use across them.

mod postgres;
mod sqlite;

use std::path::PathBuf;

use sqlx::{PgPool, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use super::rows::NewToken;
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

/// A single-use claim's statement in two forms, `$2` being now in both: `one` updates row
/// `$1` if it can still be claimed; `many` updates every such row of the array `$1` and
/// returns their ids (one statement for all the claims of a PostgreSQL batch).
#[derive(Clone, Copy, Debug)]
pub(super) struct ClaimSql {
    pub(super) one: &'static str,
    pub(super) many: &'static str,
    /// Records the winner's new row id in the claimed row, in the same transaction (a
    /// rotation's successor link); how depends on the backend, see [`LinkSql`].
    pub(super) link: Option<LinkSql>,
}

/// How a claim records its winner's new row in the claimed row.
#[derive(Clone, Copy, Debug)]
pub(super) struct LinkSql {
    /// After the insert, `$1` the claimed row and `$2` the new one: on SQLite the claimed
    /// row's page is already written in this transaction, so this costs no page.
    pub(super) after_insert: &'static str,
    /// PostgreSQL: the claim itself, as `ClaimSql::many`, also taking the new row's id from
    /// the table's sequence and returning `(id, new id)`. An UPDATE of the claimed row
    /// after the insert would write a second version of it, with new entries in every
    /// index when its page is full.
    pub(super) claim_many: &'static str,
}

/// A conditional UPDATE of row `id`: the token is inserted only when it changed a row.
pub(super) struct Claim {
    pub(super) sql: ClaimSql,
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
    /// SQLite only: a point read on the writer's connection, whose page cache holds what it
    /// has just written (see `reader::Route::Writer`). Run before the batch's transaction,
    /// so it sees only what is committed, and answered through its own channel.
    Read(super::reader::Job),
}

struct Job {
    work: Work,
    /// A token: its id, or `None` when the claim found nothing to claim. A proof: `Some`
    /// when it was new, `None` when it had been seen (a replay). No sender for a read,
    /// which answers through its own channel.
    reply: Option<oneshot::Sender<StoreResult<Option<i64>>>>,
}

impl Job {
    fn reply(self, result: StoreResult<Option<i64>>) {
        if let Some(reply) = self.reply {
            let _ = reply.send(result);
        }
    }
}

/// A job's outcome as the batch records it: `None` until decided.
type JobResult = Option<StoreResult<Option<i64>>>;

/// Answers each job of a committed batch with its result.
fn answer(batch: impl IntoIterator<Item = Job>, results: Vec<JobResult>) {
    for (job, result) in batch.into_iter().zip(results) {
        job.reply(result.unwrap_or(Err(StoreError::NotFound)));
    }
}

/// Gives each inserted row's id to its job. `created` is what `RETURNING id, token_hash`
/// gave, which has no order guarantee: rows are matched by their unique token hash.
fn record_created(
    rows: &[(usize, &OwnedToken)],
    created: Vec<(i64, Vec<u8>)>,
    results: &mut [JobResult],
) {
    for (id, hash) in created {
        if let Some((index, _)) = rows.iter().find(|(_, t)| t.token_hash == hash) {
            results[*index] = Some(Ok(Some(id)));
        }
    }
}

/// The handle requests use; the thread or task behind it ends when the last handle is
/// dropped.
#[derive(Debug)]
pub(super) struct TokenWriter {
    queue: mpsc::Sender<Job>,
}

impl TokenWriter {
    /// Starts the SQLite writer thread for the database file at `path`; `lock` is the sqlx
    /// write pool, whose connection it holds while writing, and `runtime` the runtime that
    /// pool lives on.
    pub(super) fn spawn_sqlite(
        path: PathBuf,
        lock: SqlitePool,
        runtime: tokio::runtime::Handle,
    ) -> std::io::Result<TokenWriter> {
        let (queue, jobs) = mpsc::channel(QUEUE_DEPTH);
        std::thread::Builder::new()
            .name("doorward-writer".into())
            .spawn(move || sqlite::run(&path, &lock, &runtime, jobs))?;
        Ok(TokenWriter { queue })
    }

    /// Starts the PostgreSQL writer task on `runtime`, writing through `pool`.
    pub(super) fn spawn_postgres(pool: PgPool, runtime: &tokio::runtime::Handle) -> TokenWriter {
        let (queue, jobs) = mpsc::channel(QUEUE_DEPTH);
        runtime.spawn(postgres::run(pool, jobs));
        TokenWriter { queue }
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

    /// Records a single-use JWT's hash until `expires_at`; false when it was there already.
    pub(super) async fn submit_proof(&self, hash: &[u8], expires_at: i64) -> StoreResult<bool> {
        let work = Work::Proof {
            hash: hash.to_vec(),
            expires_at,
        };
        Ok(self.send(work).await?.is_some())
    }

    /// Queues a read for the SQLite writer's thread (`Work::Read`); the job answers itself.
    pub(super) async fn submit_read(&self, read: super::reader::Job) -> StoreResult<()> {
        let job = Job {
            work: Work::Read(read),
            reply: None,
        };
        let closed = || StoreError::Unavailable(sqlx::Error::PoolClosed);
        match self.queue.try_send(job) {
            Ok(()) => Ok(()),
            // A full queue waits for room, on the heap: that future would otherwise make
            // every token lookup's future larger (`future_sizes`).
            Err(mpsc::error::TrySendError::Full(job)) => {
                Box::pin(self.queue.send(job)).await.map_err(|_| closed())
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(closed()),
        }
    }

    async fn send(&self, work: Work) -> StoreResult<Option<i64>> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Job {
                work,
                reply: Some(reply),
            })
            .await
            .map_err(|_| StoreError::Unavailable(sqlx::Error::PoolClosed))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable(sqlx::Error::WorkerCrashed))?
    }
}

/// Answers every job of `batch` with (a copy of) `err`.
fn fail_all(batch: &mut Vec<Job>, err: &StoreError) {
    for job in batch.drain(..) {
        job.reply(Err(copy_of(err)));
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
