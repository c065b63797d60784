//! OpenID Connect signing keys (the private half only encrypted).
//!
//! Each key has a `generation`; the newest signs. A new key is inserted with the next
//! generation and `ON CONFLICT DO NOTHING`, so of two nodes (or two `doorward keys rotate`)
//! racing, exactly one wins on both backends and the other reads the winner's key.

use super::{Store, StoreResult, impl_from_row, on_pool};

/// A signing key as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredKey {
    pub id: i64,
    pub generation: i64,
    pub kid: String,
    pub alg: String,
    pub private_key_encrypted: Vec<u8>,
    pub created_at: i64,
}
impl_from_row!(StoredKey {
    id: i64,
    generation: i64,
    kid: String,
    alg: String,
    private_key_encrypted: Vec<u8>,
    created_at: i64,
});

pub struct NewKey<'a> {
    pub generation: i64,
    pub kid: &'a str,
    pub alg: &'a str,
    pub private_key_encrypted: &'a [u8],
    pub created_at: i64,
}

impl Store {
    /// Every key, newest generation first.
    pub async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>> {
        const SQL: &str = "SELECT id, generation, kid, alg, private_key_encrypted, created_at \
             FROM signing_keys ORDER BY generation DESC";
        Ok(on_pool!(self, read p => sqlx::query_as(SQL).fetch_all(p).await)?)
    }

    /// The newest generation, if any key exists: one cheap query, so nodes can poll it.
    pub async fn newest_signing_key_generation(&self) -> StoreResult<Option<i64>> {
        const SQL: &str = "SELECT MAX(generation) FROM signing_keys";
        Ok(on_pool!(self, read p => sqlx::query_scalar(SQL).fetch_one(p).await)?)
    }

    /// Inserts a key of a new generation. `false` when that generation already exists:
    /// another node or command got there first.
    pub async fn insert_signing_key(&self, key: &NewKey<'_>) -> StoreResult<bool> {
        const SQL: &str = "INSERT INTO signing_keys (generation, kid, alg, private_key_encrypted, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (generation) DO NOTHING RETURNING id";
        let id: Option<i64> = on_pool!(self, p => sqlx::query_scalar(SQL)
            .bind(key.generation)
            .bind(key.kid)
            .bind(key.alg)
            .bind(key.private_key_encrypted)
            .bind(key.created_at)
            .fetch_optional(p)
            .await)?;
        Ok(id.is_some())
    }
}
