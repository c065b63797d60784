//! Authorization codes (RFC 6749 §4.1.2): stored only as their hash, consumed once.
//!
//! Single use is enforced by one conditional UPDATE (`... WHERE consumed_at IS NULL`), which
//! gives exactly one winner on both backends and across nodes, and the token pair is
//! inserted in the same short transaction.

pub use super::rows::{Grant, NewGrant};
use super::rows::{GrantRow, NewToken};
use super::writer::ClaimSql;
use super::{Store, StoreResult, on_pool};

impl Store {
    /// Stores the code; with `g.pushed_request`, spends that request in the same
    /// transaction. `false` (nothing stored) when the request was spent or expired already,
    /// so two racing consents get one code between them.
    pub async fn create_grant(&self, g: &NewGrant<'_>, now: i64) -> StoreResult<bool> {
        const INSERT: &str = "INSERT INTO oauth_grants (code_hash, application_id, user_id, redirect_uri, scopes, \
             code_challenge, code_challenge_method, nonce, auth_time, created_at, expires_at, session_id, resources, dpop_jkt) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";
        // A dynamically registered client's first code marks it as used (never purged as
        // a stale registration); later codes change no row.
        const FIRST_USE: &str = "UPDATE oauth_applications SET first_used_at = $2 \
             WHERE id = $1 AND first_used_at IS NULL";
        on_pool!(self, p, begin => {
            let mut tx = p.begin_with(begin).await?;
            if let Some(pushed) = g.pushed_request {
                let spent = sqlx::query(super::pushed_requests::SPEND).bind(pushed).bind(now).execute(&mut *tx).await?;
                if spent.rows_affected() != 1 {
                    return Ok(false);
                }
            }
            sqlx::query(INSERT)
                .bind(g.code_hash)
                .bind(g.application_id)
                .bind(g.user_id)
                .bind(g.redirect_uri)
                .bind(g.scopes)
                .bind(g.code_challenge.map(|c| c.value.as_str()))
                .bind(g.code_challenge.map(|c| c.method.as_str()))
                .bind(g.nonce)
                .bind(g.auth_time)
                .bind(now)
                .bind(g.expires_at)
                .bind(g.session_id)
                .bind(g.resources)
                .bind(g.dpop_jkt)
                .execute(&mut *tx)
                .await?;
            if g.dynamic_client {
                sqlx::query(FIRST_USE).bind(g.application_id).bind(now).execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(true)
    }

    pub async fn grant_by_code_hash(&self, code_hash: &[u8]) -> StoreResult<Option<Grant>> {
        const SQL: &str = "SELECT id, application_id, user_id, redirect_uri, scopes, code_challenge, \
             code_challenge_method, nonce, auth_time, created_at, expires_at, consumed_at, session_id, resources, dpop_jkt \
             FROM oauth_grants WHERE code_hash = $1";
        let row: Option<GrantRow> =
            on_pool!(self, read p => sqlx::query_as(SQL).bind(code_hash).fetch_optional(p).await)?;
        Ok(row.map(Grant::try_from).transpose()?)
    }

    /// Consumes the code and inserts the token pair, atomically. `None` when the code had
    /// already been consumed (a replay, or a concurrent exchange that won).
    pub async fn exchange_grant(
        &self,
        grant_id: i64,
        token: &NewToken<'_>,
        now: i64,
    ) -> StoreResult<Option<i64>> {
        const CONSUME: ClaimSql = ClaimSql {
            one: "UPDATE oauth_grants SET consumed_at = $2 WHERE id = $1 AND consumed_at IS NULL",
            many: "UPDATE oauth_grants SET consumed_at = $2 WHERE id = ANY($1) AND consumed_at IS NULL \
                   RETURNING id",
        };
        self.claim_then_insert_token(CONSUME, grant_id, now, token)
            .await
    }
}
