//! RFC 9126 pushed authorization requests (migrations 0015, 0021): stored when pushed,
//! started at `/oauth/authorize` (which gives them the time sign-in and consent take), read
//! again through sign-in and consent, and spent with their code (`Store::create_grant`).

use super::{Store, StoreResult, impl_from_row, on_pool};

/// A pushed request, whether or not it can still be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushedRequest {
    pub id: i64,
    pub application_id: i64,
    /// The authorization parameters as pushed, form-encoded.
    pub params: String,
    pub expires_at: i64,
    /// Set when its code was issued.
    pub used_at: Option<i64>,
    /// Set when `/oauth/authorize` first ran it.
    pub started_at: Option<i64>,
}
impl_from_row!(PushedRequest {
    id: i64,
    application_id: i64,
    params: String,
    expires_at: i64,
    used_at: Option<i64>,
    started_at: Option<i64>,
});

/// Spends request `$1` at `$2`: one row when it was unused and unexpired, so two racing
/// consents get one code between them.
pub(super) const SPEND: &str = "UPDATE pushed_authorization_requests SET used_at = $2 \
     WHERE id = $1 AND used_at IS NULL AND expires_at > $2";

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

    /// The request with this handle, used or expired ones included (until purged): one
    /// lookup on the unique index.
    pub async fn pushed_request(&self, handle_hash: &[u8]) -> StoreResult<Option<PushedRequest>> {
        const SQL: &str = "SELECT id, application_id, params, expires_at, used_at, started_at \
             FROM pushed_authorization_requests WHERE handle_hash = $1";
        Ok(on_pool!(self, read p => sqlx::query_as(SQL).bind(handle_hash).fetch_optional(p).await)?)
    }

    /// Starts the request: the first start lets it live until `until`, a later one (another
    /// tab, the same instant) changes nothing. False when it is no longer usable (used or
    /// expired meanwhile).
    pub async fn start_pushed_request(&self, id: i64, now: i64, until: i64) -> StoreResult<bool> {
        const SQL: &str = "UPDATE pushed_authorization_requests \
             SET expires_at = CASE WHEN started_at IS NULL THEN $3 ELSE expires_at END, \
                 started_at = COALESCE(started_at, $2) \
             WHERE id = $1 AND used_at IS NULL AND expires_at > $2";
        let done = on_pool!(self, p => sqlx::query(SQL).bind(id).bind(now).bind(until).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Spends the request on its own (the implicit grant's token, issued after): false if
    /// it was spent or expired already. Codes are spent with their insert (`create_grant`).
    pub async fn spend_pushed_request(&self, id: i64, now: i64) -> StoreResult<bool> {
        let done = on_pool!(self, p => sqlx::query(SPEND).bind(id).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
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
