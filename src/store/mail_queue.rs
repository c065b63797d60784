//! The mail queue (migration 0014): messages made while serving a request, sent later by the
//! worker of `mail::delivery` on whichever node claims them first.

use super::{Store, StoreResult, impl_from_row, on_pool};

/// A message to send, as claimed by one worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueuedMail {
    pub id: i64,
    pub recipient: String,
    /// The whole RFC 5322 message (headers and body), CRLF line ends.
    pub message: String,
    pub attempts: i64,
    pub created_at: i64,
}
impl_from_row!(QueuedMail {
    id: i64,
    recipient: String,
    message: String,
    attempts: i64,
    created_at: i64,
});

/// A queued message as operators (and tests) see it: where it stands, not what it says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailQueueEntry {
    pub id: i64,
    pub recipient: String,
    pub created_at: i64,
    pub next_attempt_at: i64,
    pub attempts: i64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}
impl_from_row!(MailQueueEntry {
    id: i64,
    recipient: String,
    created_at: i64,
    next_attempt_at: i64,
    attempts: i64,
    last_error: Option<String>,
});

impl Store {
    /// Queues a message, due at once.
    pub async fn enqueue_mail(&self, recipient: &str, message: &str, now: i64) -> StoreResult<()> {
        const SQL: &str = "INSERT INTO mail_queue (recipient, message, created_at, next_attempt_at) \
             VALUES ($1, $2, $3, $3)";
        on_pool!(self, p => sqlx::query(SQL)
            .bind(recipient)
            .bind(message)
            .bind(now)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Claims the oldest due message: pushes its next attempt `lease` seconds ahead, so no
    /// other node takes it while this one sends, and returns it.
    pub async fn claim_mail(&self, now: i64, lease: i64) -> StoreResult<Option<QueuedMail>> {
        const DUE: &str = "SELECT id FROM mail_queue WHERE next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT 1";
        const CLAIM: &str = "UPDATE mail_queue SET next_attempt_at = $3, attempts = attempts + 1 \
             WHERE id = $1 AND next_attempt_at <= $2 \
             RETURNING id, recipient, message, attempts, created_at";
        on_pool!(self, p => {
            let Some(id): Option<i64> = sqlx::query_scalar(DUE).bind(now).fetch_optional(p).await? else {
                return Ok(None);
            };
            Ok(sqlx::query_as(CLAIM).bind(id).bind(now).bind(now + lease).fetch_optional(p).await?)
        })
    }

    /// A message went out: it leaves the queue.
    pub async fn mail_sent(&self, id: i64) -> StoreResult<()> {
        on_pool!(self, p => sqlx::query("DELETE FROM mail_queue WHERE id = $1")
            .bind(id)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// A delivery failed: try again at `next_attempt_at`, keeping the reason for operators.
    pub async fn mail_failed(&self, id: i64, next_attempt_at: i64, error: &str) -> StoreResult<()> {
        on_pool!(self, p => sqlx::query("UPDATE mail_queue SET next_attempt_at = $2, last_error = $3 WHERE id = $1")
            .bind(id)
            .bind(next_attempt_at)
            .bind(error)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Every message still waiting, oldest first, without its text.
    pub async fn mail_queue_entries(&self) -> StoreResult<Vec<MailQueueEntry>> {
        const SQL: &str = "SELECT id, recipient, created_at, next_attempt_at, attempts, last_error \
             FROM mail_queue ORDER BY id";
        Ok(on_pool!(self, read p => sqlx::query_as(SQL).fetch_all(p).await)?)
    }

    /// Messages still waiting (metrics and tests).
    pub async fn mail_queue_len(&self) -> StoreResult<i64> {
        Ok(
            on_pool!(self, read p => sqlx::query_scalar("SELECT COUNT(*) FROM mail_queue").fetch_one(p).await)?,
        )
    }
}
