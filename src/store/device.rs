//! Device authorization grants (RFC 8628). The device code and the user code are stored
//! only as hashes; each state change is one conditional UPDATE, so a code is decided and
//! redeemed exactly once even with several nodes polling and confirming.

use super::rows::NewToken;
use super::writer::ClaimSql;
use super::{Store, StoreResult, impl_from_row, on_pool};
use crate::domain::scope::ScopeSet;

pub const PENDING: &str = "pending";
pub const APPROVED: &str = "approved";
pub const DENIED: &str = "denied";
pub const CONSUMED: &str = "consumed";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceGrant {
    pub id: i64,
    pub application_id: i64,
    pub scopes: ScopeSet,
    pub created_at: i64,
    pub expires_at: i64,
    pub poll_interval: i64,
    pub last_polled_at: Option<i64>,
    pub status: String,
    pub user_id: Option<i64>,
    pub auth_time: Option<i64>,
    /// The browser session the user approved in.
    pub session_id: Option<i64>,
}
impl_from_row!(DeviceGrant {
    id: i64,
    application_id: i64,
    scopes: ScopeSet,
    created_at: i64,
    expires_at: i64,
    poll_interval: i64,
    last_polled_at: Option<i64>,
    status: String,
    user_id: Option<i64>,
    auth_time: Option<i64>,
    session_id: Option<i64>,
});

pub struct NewDeviceGrant<'a> {
    pub device_code_hash: &'a [u8],
    pub user_code_hash: &'a [u8],
    pub application_id: i64,
    pub scopes: &'a str,
    pub expires_at: i64,
    pub poll_interval: i64,
}

macro_rules! select_device_grants {
    ($where:literal) => {
        concat!(
            "SELECT id, application_id, scopes, created_at, expires_at, poll_interval, last_polled_at, status, \
             user_id, auth_time, session_id FROM oauth_device_grants WHERE ",
            $where
        )
    };
}

impl Store {
    /// Stores a new device grant. A user-code collision is `Conflict`; callers draw again.
    pub async fn create_device_grant(&self, g: &NewDeviceGrant<'_>, now: i64) -> StoreResult<()> {
        const SQL: &str = "INSERT INTO oauth_device_grants \
             (device_code_hash, user_code_hash, application_id, scopes, created_at, expires_at, poll_interval) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)";
        on_pool!(self, p => sqlx::query(SQL)
            .bind(g.device_code_hash)
            .bind(g.user_code_hash)
            .bind(g.application_id)
            .bind(g.scopes)
            .bind(now)
            .bind(g.expires_at)
            .bind(g.poll_interval)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn device_grant_by_user_code(
        &self,
        user_code_hash: &[u8],
    ) -> StoreResult<Option<DeviceGrant>> {
        const SQL: &str = select_device_grants!("user_code_hash = $1");
        Ok(
            on_pool!(self, read p => sqlx::query_as(SQL).bind(user_code_hash).fetch_optional(p).await)?,
        )
    }

    pub async fn device_grant_by_device_code(
        &self,
        device_code_hash: &[u8],
    ) -> StoreResult<Option<DeviceGrant>> {
        const SQL: &str = select_device_grants!("device_code_hash = $1");
        Ok(
            on_pool!(self, read p => sqlx::query_as(SQL).bind(device_code_hash).fetch_optional(p).await)?,
        )
    }

    /// Approves or denies a pending, unexpired grant for `user_id`. False when it was no
    /// longer pending (decided elsewhere) or expired.
    pub async fn decide_device_grant(
        &self,
        id: i64,
        user_id: i64,
        approve: bool,
        auth_time: i64,
        session_id: i64,
        now: i64,
    ) -> StoreResult<bool> {
        const SQL: &str = "UPDATE oauth_device_grants SET status = $2, user_id = $3, auth_time = $4, session_id = $6 \
             WHERE id = $1 AND status = 'pending' AND expires_at > $5";
        let status = if approve { APPROVED } else { DENIED };
        let done = on_pool!(self, p => sqlx::query(SQL)
            .bind(id)
            .bind(status)
            .bind(user_id)
            .bind(auth_time)
            .bind(now)
            .bind(session_id)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Notes a poll, and the polling interval the device must keep from now on.
    pub async fn record_device_poll(
        &self,
        id: i64,
        now: i64,
        poll_interval: i64,
    ) -> StoreResult<()> {
        const SQL: &str =
            "UPDATE oauth_device_grants SET last_polled_at = $2, poll_interval = $3 WHERE id = $1";
        on_pool!(self, p => sqlx::query(SQL)
            .bind(id)
            .bind(now)
            .bind(poll_interval)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Redeems an approved grant and stores its token pair, atomically. `None` when the
    /// grant was not (or no longer) approved.
    pub async fn consume_device_grant(
        &self,
        id: i64,
        token: &NewToken<'_>,
        now: i64,
    ) -> StoreResult<Option<i64>> {
        const REDEEM: ClaimSql = ClaimSql {
            one: "UPDATE oauth_device_grants SET status = 'consumed', last_polled_at = $2 \
                  WHERE id = $1 AND status = 'approved'",
            many: "UPDATE oauth_device_grants SET status = 'consumed', last_polled_at = $2 \
                   WHERE id = ANY($1) AND status = 'approved' RETURNING id",
            link: None,
        };
        self.claim_then_insert_token(REDEEM, id, now, token).await
    }

    /// Deletes grants that expired more than `retention` seconds ago.
    pub async fn purge_device_grants(&self, now: i64, retention: i64) -> StoreResult<u64> {
        Ok(
            on_pool!(self, p => sqlx::query("DELETE FROM oauth_device_grants WHERE expires_at <= $1")
            .bind(now - retention)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?,
        )
    }
}
