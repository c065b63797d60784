//! The PostgreSQL side of the group-commit writer (see the parent module).
//!
//! One token per transaction made PostgreSQL parse, plan, execute and commit a statement
//! per token: with `synchronous_commit=on` each commit is a WAL flush, and PostgreSQL's own
//! CPU was the limit (one core busy at 4,000 to 5,800 client-credentials grants/s). Here a
//! batch is one transaction: one `UPDATE … WHERE id = ANY(…) RETURNING id` per kind of
//! claim (the ids returned are the winners), one `INSERT … SELECT FROM UNNEST(…)` of all its
//! token rows, one of all its single-use JWTs, and one commit. A rotation's claim also takes
//! its successor's id from the table's sequence and records it in the row it revokes
//! (`LinkSql::claim_many`); the insert then gives the new row that id, so the revoked row is
//! written once.
//!
//! Up to [`PIPELINE`] batches are in flight at once, each on its own pool connection: while
//! one waits for its flush, the next forms from whatever queued meanwhile and starts.
//!
//! A batch that fails as a whole (a constraint such as an application deleted meanwhile, a
//! deadlock with another node's batch) was rolled back entirely, so each of its jobs is then
//! retried in a transaction of its own, and only the faulty one fails.

use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::{Semaphore, mpsc};

use super::{
    ClaimSql, Job, JobResult, MAX_BATCH, OwnedToken, Work, answer, copy_of, fail_all,
    record_created,
};
use crate::store::{StoreError, StoreResult};

/// Transactions in flight at once. Each holds a pool connection for about one WAL flush.
/// Fewer in flight make each batch larger, and PostgreSQL's CPU per token smaller. On a
/// durable local PostgreSQL, at 32 connections, W1 gave about 9,600–10,200 req/s with 4 in
/// flight, 11,400–11,700 with 2 and 11,700–12,000 with 1; 8 and 16 were slower still
/// (docs/performance.md, "PostgreSQL: fewer transactions in flight"). Two keep nearly all
/// of that gain, and one batch can still commit while the other waits on a row lock held
/// by another node.
pub(super) const PIPELINE: usize = 2;

/// The writer task: takes a batch whenever a pipeline slot is free, so batches grow while
/// every slot waits on the disk.
pub(super) async fn run(pool: PgPool, mut jobs: mpsc::Receiver<Job>) {
    let slots = Arc::new(Semaphore::new(PIPELINE));
    while let Some(first) = jobs.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut batch = Vec::with_capacity(MAX_BATCH);
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let pool = pool.clone();
        tokio::spawn(async move {
            write_batch(&pool, batch).await;
            drop(slot);
        });
    }
}

/// Commits `batch` and answers each job; on a failure of the whole, retries job by job.
async fn write_batch(pool: &PgPool, mut batch: Vec<Job>) {
    match commit(pool, &batch).await {
        Ok(results) => answer(batch, results),
        // Nothing to learn from retrying one job, or a database that cannot serve now.
        Err(err) if batch.len() == 1 || matches!(err, StoreError::Unavailable(_)) => {
            fail_all(&mut batch, &err);
        }
        Err(_) => {
            for job in batch {
                let alone = std::slice::from_ref(&job);
                match commit(pool, alone).await {
                    Ok(results) => answer(vec![job], results),
                    Err(err) => {
                        job.reply(Err(copy_of(&err)));
                    }
                }
            }
        }
    }
}

/// Runs `batch` in one transaction. `Ok` holds each job's own result (the commit
/// succeeded); `Err` is the failure of the transaction as a whole, which rolled it back.
async fn commit(pool: &PgPool, batch: &[Job]) -> StoreResult<Vec<JobResult>> {
    let mut results: Vec<JobResult> = batch.iter().map(|_| None).collect();
    let mut tx = pool.begin().await?;
    let mut tokens: Vec<(usize, &OwnedToken)> = Vec::with_capacity(batch.len());
    // The id each row takes, when its claim chose it (`LinkSql::claim_many`).
    let mut ids: Vec<Option<i64>> = Vec::with_capacity(batch.len());
    let mut proofs: Vec<(usize, &[u8], i64)> = Vec::new();
    let mut claims: Vec<ClaimGroup<'_>> = Vec::new();
    for (index, job) in batch.iter().enumerate() {
        match &job.work {
            Work::Proof { hash, expires_at } => proofs.push((index, hash, *expires_at)),
            // The store sends reads to the SQLite writer only; dropped unrun, the read is
            // answered "unavailable".
            Work::Read(_) => results[index] = Some(Ok(None)),
            Work::Token { claim: None, token } => {
                tokens.push((index, token));
                ids.push(None);
            }
            Work::Token {
                claim: Some(claim),
                token,
            } => {
                let at = match claims.iter().position(|g| g.sql.many == claim.sql.many) {
                    Some(at) => at,
                    None => {
                        claims.push(ClaimGroup {
                            sql: claim.sql,
                            now: claim.now,
                            jobs: Vec::new(),
                        });
                        claims.len() - 1
                    }
                };
                claims[at].now = claims[at].now.max(claim.now);
                claims[at].jobs.push((index, claim.id, token));
            }
        }
    }
    // One statement per kind of claim (code, refresh token, device grant) for the whole
    // batch. Each row is claimed once: of several jobs naming the same row, the first wins.
    for group in &claims {
        let claimed: Vec<i64> = group.jobs.iter().map(|(_, id, _)| *id).collect();
        // (claimed row, the new row's id when the claim chose it)
        let mut won: Vec<(i64, Option<i64>)> = match group.sql.link {
            Some(link) => sqlx::query_as::<_, (i64, i64)>(link.claim_many)
                .bind(&claimed)
                .bind(group.now)
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .map(|(id, new_id)| (id, Some(new_id)))
                .collect(),
            None => sqlx::query_scalar::<_, i64>(group.sql.many)
                .bind(&claimed)
                .bind(group.now)
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .map(|id| (id, None))
                .collect(),
        };
        for (index, id, token) in &group.jobs {
            if let Some(at) = won.iter().position(|(w, _)| w == id) {
                let (_, new_id) = won.swap_remove(at);
                tokens.push((*index, token));
                ids.push(new_id);
            } else {
                results[*index] = Some(Ok(None));
            }
        }
    }
    if !tokens.is_empty() {
        insert_tokens(&mut tx, &tokens, &ids, &mut results).await?;
    }
    if !proofs.is_empty() {
        insert_proofs(&mut tx, &proofs, &mut results).await?;
    }
    tx.commit().await?;
    Ok(results)
}

/// The claims of one kind in a batch: their statements, the latest of their times, and
/// (job index, row id, token to insert when the claim wins).
struct ClaimGroup<'a> {
    sql: ClaimSql,
    now: i64,
    jobs: Vec<(usize, i64, &'a OwnedToken)>,
}

/// A row whose claim chose its id (a rotation's successor) takes it; the others take the
/// identity column's next value, as its default would.
const INSERT_TOKENS: &str = "INSERT INTO oauth_access_tokens (id, token_hash, refresh_token_hash, \
     application_id, user_id, grant_id, family, scopes, created_at, expires_at, resources, \
     audience, dpop_jkt) \
     SELECT COALESCE(r.id, nextval('oauth_access_tokens_id_seq')), r.token_hash, \
     r.refresh_token_hash, r.application_id, r.user_id, r.grant_id, r.family, r.scopes, \
     r.created_at, r.expires_at, r.resources, r.audience, r.dpop_jkt \
     FROM UNNEST($1::bytea[], $2::bytea[], $3::int8[], $4::int8[], $5::int8[], \
     $6::bytea[], $7::text[], $8::int8[], $9::int8[], $10::text[], $11::text[], $12::text[], \
     $13::int8[]) AS r(token_hash, refresh_token_hash, application_id, user_id, grant_id, \
     family, scopes, created_at, expires_at, resources, audience, dpop_jkt, id) \
     RETURNING id, token_hash";

/// All token rows of the batch in one statement (one array per column), row `i` with id
/// `ids[i]` when set; each job gets its new row's id, matched by the unique token hash
/// (RETURNING has no order guarantee).
async fn insert_tokens(
    tx: &mut sqlx::PgConnection,
    rows: &[(usize, &OwnedToken)],
    ids: &[Option<i64>],
    results: &mut [JobResult],
) -> StoreResult<()> {
    fn column<'r, T>(rows: &[(usize, &'r OwnedToken)], f: impl Fn(&'r OwnedToken) -> T) -> Vec<T> {
        rows.iter().map(|(_, t)| f(t)).collect()
    }
    let created: Vec<(i64, Vec<u8>)> = sqlx::query_as(INSERT_TOKENS)
        .bind(column(rows, |t| t.token_hash.as_slice()))
        .bind(column(rows, |t| t.refresh_token_hash.as_deref()))
        .bind(column(rows, |t| t.application_id))
        .bind(column(rows, |t| t.user_id))
        .bind(column(rows, |t| t.grant_id))
        .bind(column(rows, |t| t.family.as_slice()))
        .bind(column(rows, |t| t.scopes.as_str()))
        .bind(column(rows, |t| t.created_at))
        .bind(column(rows, |t| t.expires_at))
        .bind(column(rows, |t| t.resources.as_deref()))
        .bind(column(rows, |t| t.audience.as_deref()))
        .bind(column(rows, |t| t.dpop_jkt.as_deref()))
        .bind(ids)
        .fetch_all(tx)
        .await?;
    record_created(rows, created, results);
    Ok(())
}

/// All single-use JWTs of the batch in one statement. A hash already stored, or twice in
/// this batch, is a replay: only the first job naming a new hash gets `Some`.
async fn insert_proofs(
    tx: &mut sqlx::PgConnection,
    proofs: &[(usize, &[u8], i64)],
    results: &mut [JobResult],
) -> StoreResult<()> {
    const SQL: &str = "INSERT INTO dpop_proofs (proof_hash, expires_at) \
         SELECT * FROM UNNEST($1::bytea[], $2::int8[]) \
         ON CONFLICT (proof_hash) DO NOTHING RETURNING proof_hash";
    let hashes: Vec<&[u8]> = proofs.iter().map(|(_, h, _)| *h).collect();
    let expiries: Vec<i64> = proofs.iter().map(|(_, _, e)| *e).collect();
    let fresh: Vec<Vec<u8>> = sqlx::query_scalar(SQL)
        .bind(hashes)
        .bind(expiries)
        .fetch_all(tx)
        .await?;
    for (index, hash, _) in proofs {
        let first = proofs.iter().find(|(_, h, _)| h == hash).map(|(i, _, _)| i);
        let new = first == Some(index) && fresh.iter().any(|f| f == hash);
        results[*index] = Some(Ok(new.then_some(1)));
    }
    Ok(())
}
