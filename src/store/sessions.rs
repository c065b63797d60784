//! Browser sessions. Only SHA-256 of the session id is stored, so a database leak does not
//! hand out live sessions; any node can serve any session.

use super::audit_events::insert_audit_event;
use super::{Store, StoreResult, impl_from_row, on_pool};
use crate::domain::audit::AuditEvent;
use crate::domain::user::User;

/// A live session and its user, as one lookup returns them.
#[derive(Clone, Debug)]
pub struct SessionWithUser {
    pub session_id: i64,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub user: User,
}

struct SessionRow {
    session_id: i64,
    session_created_at: i64,
    last_seen_at: i64,
    expires_at: i64,
}
impl_from_row!(SessionRow {
    session_id: i64,
    session_created_at: i64,
    last_seen_at: i64,
    expires_at: i64
});

/// Where a session came from, shown to the user and kept for audit.
#[derive(Clone, Debug, Default)]
pub struct SessionOrigin {
    pub ip: String,
    pub user_agent: String,
}

impl Store {
    pub async fn create_session(
        &self,
        token_hash: &[u8],
        user_id: i64,
        origin: &SessionOrigin,
        now: i64,
        expires_at: i64,
    ) -> StoreResult<()> {
        const SQL: &str = "INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, expires_at, ip, user_agent) \
             VALUES ($1, $2, $3, $3, $4, $5, $6)";
        on_pool!(self, p => sqlx::query(SQL)
            .bind(token_hash)
            .bind(user_id)
            .bind(now)
            .bind(expires_at)
            .bind(&origin.ip)
            .bind(&origin.user_agent)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The unexpired session with this hash and its (active) user: one indexed lookup.
    /// `idle_cutoff` is the oldest `last_seen_at` still accepted.
    pub async fn session_by_hash(
        &self,
        token_hash: &[u8],
        now: i64,
        idle_cutoff: i64,
    ) -> StoreResult<Option<SessionWithUser>> {
        const SQL: &str = concat!(
            "SELECT s.id AS session_id, s.created_at AS session_created_at, s.last_seen_at, s.expires_at, u.",
            "id, u.username, u.email, u.name, u.password_hash, u.is_admin, u.state, u.public_email, \
             u.website_url, u.bio, u.location, u.organization, u.job_title, u.created_at, u.updated_at, \
             u.last_sign_in_at, u.current_sign_in_at, u.two_factor_enabled, u.confirmed_at, u.unconfirmed_email \
             FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND s.last_seen_at > $3 AND u.state = 'active'"
        );
        let row = on_pool!(self, read p => {
            match sqlx::query(SQL).bind(token_hash).bind(now).bind(idle_cutoff).fetch_optional(p).await? {
                Some(row) => {
                    let s: SessionRow = sqlx::FromRow::from_row(&row)?;
                    let u: User = sqlx::FromRow::from_row(&row)?;
                    Some((s, u))
                }
                None => None,
            }
        });
        Ok(row.map(|(s, user)| SessionWithUser {
            session_id: s.session_id,
            created_at: s.session_created_at,
            last_seen_at: s.last_seen_at,
            expires_at: s.expires_at,
            user,
        }))
    }

    /// Records activity; callers throttle this so a busy session is not a write per request.
    pub async fn touch_session(&self, session_id: i64, now: i64) -> StoreResult<()> {
        on_pool!(self, p => sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE id = $1")
            .bind(session_id)
            .bind(now)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Ends the session with this hash (sign-out), recording `audit` when there was one.
    pub async fn delete_session(
        &self,
        token_hash: &[u8],
        audit: &AuditEvent,
        now: i64,
    ) -> StoreResult<()> {
        on_pool!(self, p, begin => {
            let mut tx = p.begin_with(begin).await?;
            let done = sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                .bind(token_hash)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if done > 0 {
                insert_audit_event!(&mut *tx, audit, now);
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Removes expired and idle sessions; returns how many went.
    pub async fn purge_sessions(&self, now: i64, idle_cutoff: i64) -> StoreResult<u64> {
        let done = on_pool!(self, p => sqlx::query("DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at <= $2")
            .bind(now)
            .bind(idle_cutoff)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done)
    }
}

/// A session as listed to its user and to administrators.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionSummary {
    pub id: i64,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub ip: String,
    pub user_agent: String,
}
impl_from_row!(SessionSummary {
    id: i64,
    created_at: i64,
    last_seen_at: i64,
    ip: String,
    user_agent: String,
});

impl Store {
    /// The user's live sessions, most recently used first.
    pub async fn user_sessions(&self, user_id: i64, now: i64) -> StoreResult<Vec<SessionSummary>> {
        const SQL: &str = "SELECT id, created_at, last_seen_at, ip, user_agent FROM sessions \
             WHERE user_id = $1 AND expires_at > $2 ORDER BY last_seen_at DESC, id DESC";
        Ok(
            on_pool!(self, read p => sqlx::query_as(SQL).bind(user_id).bind(now).fetch_all(p).await)?,
        )
    }

    /// Ends session `session_id` of user `user_id` (never another user's), recording
    /// `audit` in the same transaction; false when there was no such session.
    pub async fn end_user_session(
        &self,
        user_id: i64,
        session_id: i64,
        audit: &AuditEvent,
        now: i64,
    ) -> StoreResult<bool> {
        on_pool!(self, p, begin => {
            let mut tx = p.begin_with(begin).await?;
            let done = sqlx::query("DELETE FROM sessions WHERE id = $1 AND user_id = $2")
                .bind(session_id)
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if done == 0 {
                return Ok(false);
            }
            insert_audit_event!(&mut *tx, audit, now);
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Ends every session of the user but `keep` (none kept when `None`), recording `audit`
    /// in the same transaction when any ended; returns how many ended.
    pub async fn end_user_sessions(
        &self,
        user_id: i64,
        keep: Option<i64>,
        audit: &AuditEvent,
        now: i64,
    ) -> StoreResult<u64> {
        on_pool!(self, p, begin => {
            let mut tx = p.begin_with(begin).await?;
            let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND ($2 IS NULL OR id <> $2)")
                .bind(user_id)
                .bind(keep)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if done > 0 {
                insert_audit_event!(&mut *tx, audit, now);
            }
            tx.commit().await?;
            Ok(done)
        })
    }
}
