//! Single-use JWTs seen, so that each works once, on whichever node it arrives (migration
//! 0016): DPoP proofs (RFC 9449 §11.1) and client assertions (RFC 7523 §3 item 7), each
//! keyed by a hash that names its kind. One indexed insert per proof, grouped into the
//! token writer's shared commits; rows go once their `iat` window has passed.

use super::{Store, StoreResult, on_pool};

impl Store {
    /// Records a JWT (`proof_hash`: SHA-256 of its kind, issuer or key, and `jti`) until
    /// `expires_at`; false when it was recorded before: a replay.
    pub async fn record_single_use_jwt(
        &self,
        proof_hash: &[u8],
        expires_at: i64,
    ) -> StoreResult<bool> {
        // Through the group-commit writer, with the token writes (see `writer`); an
        // in-memory SQLite database has none.
        if let Some(writer) = &self.token_writer {
            return writer.submit_proof(proof_hash, expires_at).await;
        }
        const SQL: &str = "INSERT INTO dpop_proofs (proof_hash, expires_at) VALUES ($1, $2) \
             ON CONFLICT (proof_hash) DO NOTHING";
        let done = on_pool!(self, p => sqlx::query(SQL)
            .bind(proof_hash)
            .bind(expires_at)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Deletes proofs whose window ended before `now`.
    pub async fn purge_dpop_proofs(&self, now: i64) -> StoreResult<u64> {
        Ok(
            on_pool!(self, p => sqlx::query("DELETE FROM dpop_proofs WHERE expires_at <= $1")
            .bind(now)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?,
        )
    }
}
