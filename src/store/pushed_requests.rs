//! RFC 9126 pushed authorization requests (migration 0015): stored when pushed, read at
//! `/oauth/authorize` (through sign-in and consent), and spent when their code is issued.

use super::{Store, StoreResult, impl_from_row, on_pool};

/// A pushed request that can still be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushedRequest {
    pub id: i64,
    pub application_id: i64,
    /// The authorization parameters as pushed, form-encoded.
    pub params: String,
}
impl_from_row!(PushedRequest {
    id: i64,
    application_id: i64,
    params: String,
});

impl Store {
    pub async fn create_pushed_request(
        &self,
        handle_hash: &[u8],
        application_id: i64,
        params: &str,
        now: i64,
        expires_at: i64,
    ) -> StoreResult<()> {
        const SQL: &str = "INSERT INTO pushed_authorization_requests \
             (handle_hash, application_id, params, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)";
        on_pool!(self, p => sqlx::query(SQL)
            .bind(handle_hash)
            .bind(application_id)
            .bind(params)
            .bind(now)
            .bind(expires_at)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The unexpired, unused request with this handle: one lookup on the unique index.
    pub async fn pushed_request(
        &self,
        handle_hash: &[u8],
        now: i64,
    ) -> StoreResult<Option<PushedRequest>> {
        const SQL: &str = "SELECT id, application_id, params FROM pushed_authorization_requests \
             WHERE handle_hash = $1 AND expires_at > $2 AND used_at IS NULL";
        Ok(
            on_pool!(self, p => sqlx::query_as(SQL).bind(handle_hash).bind(now).fetch_optional(p).await)?,
        )
    }

    /// Spends the request as its code is issued; false if it was spent (or expired) already,
    /// so two racing consents get one code between them.
    pub async fn spend_pushed_request(&self, id: i64, now: i64) -> StoreResult<bool> {
        const SQL: &str = "UPDATE pushed_authorization_requests SET used_at = $2 \
             WHERE id = $1 AND used_at IS NULL AND expires_at > $2";
        let done = on_pool!(self, p => sqlx::query(SQL).bind(id).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Deletes requests that expired before `cutoff`.
    pub async fn purge_pushed_requests(&self, cutoff: i64) -> StoreResult<u64> {
        Ok(
            on_pool!(self, p => sqlx::query("DELETE FROM pushed_authorization_requests WHERE expires_at <= $1")
            .bind(cutoff)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?,
        )
    }
}
