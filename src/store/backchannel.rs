//! OpenID Connect Back-Channel Logout: which applications got an id_token in which browser
//! session, and the queue of logout tokens still to deliver. The queue is filled by the
//! `sessions_ended` trigger (migration 0010) in the same transaction as the end of a
//! session, so no code path that ends a session can forget to; deliveries are claimed one
//! row at a time by a conditional UPDATE, so several nodes never send the same one at once.

use super::{Store, StoreResult, impl_from_row, on_pool};

/// A logout token to deliver: to whom, about whom, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingLogout {
    pub id: i64,
    pub attempts: i64,
    pub created_at: i64,
    pub sid: String,
    pub user_id: i64,
    pub client_id: String,
    pub uri: String,
}
impl_from_row!(PendingLogout {
    id: i64,
    attempts: i64,
    created_at: i64,
    sid: String,
    user_id: i64,
    client_id: String,
    uri: String,
});

impl Store {
    /// Records that `application_id` got an id_token for `user_id` in browser session
    /// `session_id` under `sid`; nothing if the session has ended meanwhile.
    pub async fn record_session_login(
        &self,
        session_id: i64,
        application_id: i64,
        user_id: i64,
        sid: &str,
        now: i64,
    ) -> StoreResult<()> {
        const SQL: &str = "INSERT INTO session_logins (session_id, application_id, user_id, sid, created_at) \
             SELECT id, $2, $3, $4, $5 FROM sessions WHERE id = $1 \
             ON CONFLICT (session_id, application_id, sid) DO NOTHING";
        on_pool!(self, p => sqlx::query(SQL)
            .bind(session_id)
            .bind(application_id)
            .bind(user_id)
            .bind(sid)
            .bind(now)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Claims the oldest due delivery: pushes its next attempt `lease` seconds ahead (so no
    /// other node takes it meanwhile) and returns it with its application's URI.
    pub async fn claim_backchannel_logout(
        &self,
        now: i64,
        lease: i64,
    ) -> StoreResult<Option<PendingLogout>> {
        const DUE: &str = "SELECT id FROM backchannel_logouts WHERE next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT 1";
        const CLAIM: &str = "UPDATE backchannel_logouts SET next_attempt_at = $3, attempts = attempts + 1 \
             WHERE id = $1 AND next_attempt_at <= $2";
        const READ: &str = "SELECT b.id, CAST(b.attempts AS BIGINT) AS attempts, b.created_at, b.sid, b.user_id, \
             a.uid AS client_id, a.backchannel_logout_uri AS uri \
             FROM backchannel_logouts b JOIN oauth_applications a ON a.id = b.application_id \
             WHERE b.id = $1 AND a.backchannel_logout_uri IS NOT NULL";
        on_pool!(self, p => {
            let Some(id): Option<i64> = sqlx::query_scalar(DUE).bind(now).fetch_optional(p).await? else {
                return Ok(None);
            };
            let claimed = sqlx::query(CLAIM).bind(id).bind(now).bind(now + lease).execute(p).await?.rows_affected();
            if claimed == 0 {
                return Ok(None);
            }
            match sqlx::query_as::<_, PendingLogout>(READ).bind(id).fetch_optional(p).await? {
                Some(pending) => Ok(Some(pending)),
                None => {
                    // The application stopped listening: nothing to deliver.
                    sqlx::query("DELETE FROM backchannel_logouts WHERE id = $1").bind(id).execute(p).await?;
                    Ok(None)
                }
            }
        })
    }

    /// A delivery succeeded, or is given up: forget it.
    pub async fn finish_backchannel_logout(&self, id: i64) -> StoreResult<()> {
        on_pool!(self, p => sqlx::query("DELETE FROM backchannel_logouts WHERE id = $1")
            .bind(id)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// A delivery failed: try again at `at`.
    pub async fn retry_backchannel_logout(&self, id: i64, at: i64) -> StoreResult<()> {
        on_pool!(self, p => sqlx::query("UPDATE backchannel_logouts SET next_attempt_at = $2 WHERE id = $1")
            .bind(id)
            .bind(at)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }
}
