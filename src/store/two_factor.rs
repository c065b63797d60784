//! Two-factor authentication: each user's encrypted TOTP secret and the last time step used,
//! their recovery codes (SHA-256 only), and the pending sign-ins whose password passed but
//! whose second factor has not yet. Every "use once" rule is one conditional UPDATE or
//! DELETE, so two nodes racing on the same code or challenge cannot both win.

use super::audit_events::insert_audit_event;
use super::cache::Invalidation;
use super::{Store, StoreResult, impl_from_row, on_pool};
use crate::domain::audit::AuditEvent;

/// A user's authenticator: the secret as stored (encrypted) and its state.
#[derive(Clone, Debug)]
pub struct TwoFactorRecord {
    pub secret_encrypted: Vec<u8>,
    /// `None` while set-up waits for the first code.
    pub confirmed_at: Option<i64>,
    /// The latest time step a code was accepted for; only later steps are accepted.
    pub last_used_step: i64,
}
impl_from_row!(TwoFactorRecord {
    secret_encrypted: Vec<u8>,
    confirmed_at: Option<i64>,
    last_used_step: i64,
});

/// A sign-in waiting for its second factor.
#[derive(Clone, Debug)]
pub struct TwoFactorChallenge {
    pub id: i64,
    pub user_id: i64,
    pub return_to: Option<String>,
    pub attempts: i64,
}
impl_from_row!(TwoFactorChallenge {
    id: i64,
    user_id: i64,
    return_to: Option<String>,
    attempts: i64,
});

impl Store {
    pub async fn two_factor_by_user(&self, user_id: i64) -> StoreResult<Option<TwoFactorRecord>> {
        const SQL: &str = "SELECT secret_encrypted, confirmed_at, last_used_step \
             FROM user_two_factor WHERE user_id = $1";
        Ok(on_pool!(self, read p => sqlx::query_as(SQL).bind(user_id).fetch_optional(p).await)?)
    }

    /// Stores a new, unconfirmed secret, replacing an earlier unconfirmed one. Returns
    /// `false` (and changes nothing) when two-factor authentication is already on.
    pub async fn begin_two_factor_setup(
        &self,
        user_id: i64,
        secret_encrypted: &[u8],
        now: i64,
    ) -> StoreResult<bool> {
        const SQL: &str = "INSERT INTO user_two_factor (user_id, secret_encrypted, created_at) \
             VALUES ($1, $2, $3) \
             ON CONFLICT (user_id) DO UPDATE SET secret_encrypted = $2, created_at = $3, \
               last_used_step = 0 \
             WHERE user_two_factor.confirmed_at IS NULL";
        let done = on_pool!(self, p => sqlx::query(SQL)
            .bind(user_id)
            .bind(secret_encrypted)
            .bind(now)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Turns two-factor authentication on, in one transaction: the pending secret becomes
    /// confirmed with `step` (the code just checked) as used, the user's flag is set, the
    /// recovery codes are replaced by `recovery_hashes`, and every session but `keep_session`
    /// ends. Returns `false` (nothing written) if set-up was not pending or `step` was used.
    pub async fn confirm_two_factor(
        &self,
        user_id: i64,
        step: i64,
        recovery_hashes: &[[u8; 32]],
        keep_session: &[u8],
        audit: &AuditEvent,
        now: i64,
    ) -> StoreResult<bool> {
        on_pool!(self, p, begin => {
            let mut tx = p.begin_with(begin).await?;
            let done = sqlx::query(
                "UPDATE user_two_factor SET confirmed_at = $2, last_used_step = $3 \
                 WHERE user_id = $1 AND confirmed_at IS NULL AND last_used_step < $3")
                .bind(user_id)
                .bind(now)
                .bind(step)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() != 1 {
                return Ok(false);
            }
            sqlx::query("UPDATE users SET two_factor_enabled = TRUE, updated_at = $2 WHERE id = $1")
                .bind(user_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM two_factor_recovery_codes WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            for hash in recovery_hashes {
                sqlx::query("INSERT INTO two_factor_recovery_codes (user_id, code_hash, created_at) \
                     VALUES ($1, $2, $3)")
                    .bind(user_id)
                    .bind(&hash[..])
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND ($2 IS NULL OR token_hash <> $2)")
                .bind(user_id)
                .bind(keep_session)
                .execute(&mut *tx)
                .await?;
            insert_audit_event!(&mut *tx, audit, now);
            tx.commit().await?;
            self.forget(Invalidation::User(user_id));
            Ok(true)
        })
    }

    /// Records that a code of time step `step` was accepted, if no code of that step or a
    /// later one was before (RFC 6238 §5.2: a code is accepted once). `false` is a replay.
    pub async fn use_two_factor_step(&self, user_id: i64, step: i64) -> StoreResult<bool> {
        const SQL: &str = "UPDATE user_two_factor SET last_used_step = $2 \
             WHERE user_id = $1 AND confirmed_at IS NOT NULL AND last_used_step < $2";
        let done = on_pool!(self, p => sqlx::query(SQL)
            .bind(user_id)
            .bind(step)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Marks the unused recovery code with this hash as used; `false` if there is none.
    pub async fn use_recovery_code(
        &self,
        user_id: i64,
        code_hash: &[u8],
        now: i64,
    ) -> StoreResult<bool> {
        // One row at most even if two codes ever hashed alike: the subquery picks one.
        const SQL: &str = "UPDATE two_factor_recovery_codes SET used_at = $3 \
             WHERE id = (SELECT id FROM two_factor_recovery_codes \
                         WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL LIMIT 1) \
               AND used_at IS NULL";
        let done = on_pool!(self, p => sqlx::query(SQL)
            .bind(user_id)
            .bind(code_hash)
            .bind(now)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    pub async fn count_unused_recovery_codes(&self, user_id: i64) -> StoreResult<i64> {
        const SQL: &str =
            "SELECT COUNT(*) FROM two_factor_recovery_codes WHERE user_id = $1 AND used_at IS NULL";
        Ok(on_pool!(self, p => sqlx::query_scalar(SQL).bind(user_id).fetch_one(p).await)?)
    }

    /// Replaces all recovery codes of the user with `hashes`, in one transaction.
    pub async fn replace_recovery_codes(
        &self,
        user_id: i64,
        hashes: &[[u8; 32]],
        now: i64,
    ) -> StoreResult<()> {
        on_pool!(self, p, begin => {
            let mut tx = p.begin_with(begin).await?;
            sqlx::query("DELETE FROM two_factor_recovery_codes WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            for hash in hashes {
                sqlx::query("INSERT INTO two_factor_recovery_codes (user_id, code_hash, created_at) \
                     VALUES ($1, $2, $3)")
                    .bind(user_id)
                    .bind(&hash[..])
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Turns two-factor authentication off, in one transaction: the secret, the recovery
    /// codes and pending sign-ins go, the flag is cleared, and every session but
    /// `keep_session` ends.
    /// Turns two-factor authentication off and ends the user's sessions but `keep_session`
    /// (the caller's own, when the user does it), recording `audit` in the same transaction.
    pub async fn disable_two_factor(
        &self,
        user_id: i64,
        keep_session: Option<&[u8]>,
        audit: &AuditEvent,
        now: i64,
    ) -> StoreResult<()> {
        on_pool!(self, p, begin => {
            let mut tx = p.begin_with(begin).await?;
            for sql in [
                "DELETE FROM user_two_factor WHERE user_id = $1",
                "DELETE FROM two_factor_recovery_codes WHERE user_id = $1",
                "DELETE FROM two_factor_challenges WHERE user_id = $1",
            ] {
                sqlx::query(sql).bind(user_id).execute(&mut *tx).await?;
            }
            sqlx::query("UPDATE users SET two_factor_enabled = FALSE, updated_at = $2 WHERE id = $1")
                .bind(user_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND ($2 IS NULL OR token_hash <> $2)")
                .bind(user_id)
                .bind(keep_session)
                .execute(&mut *tx)
                .await?;
            insert_audit_event!(&mut *tx, audit, now);
            tx.commit().await?;
            self.forget(Invalidation::User(user_id));
            Ok(())
        })
    }

    pub async fn create_two_factor_challenge(
        &self,
        token_hash: &[u8],
        user_id: i64,
        return_to: Option<&str>,
        now: i64,
        expires_at: i64,
    ) -> StoreResult<()> {
        const SQL: &str = "INSERT INTO two_factor_challenges \
             (token_hash, user_id, return_to, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)";
        on_pool!(self, p => sqlx::query(SQL)
            .bind(token_hash)
            .bind(user_id)
            .bind(return_to)
            .bind(now)
            .bind(expires_at)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The unexpired challenge with this hash.
    pub async fn two_factor_challenge_by_hash(
        &self,
        token_hash: &[u8],
        now: i64,
    ) -> StoreResult<Option<TwoFactorChallenge>> {
        const SQL: &str = "SELECT id, user_id, return_to, attempts FROM two_factor_challenges \
             WHERE token_hash = $1 AND expires_at > $2";
        Ok(
            on_pool!(self, p => sqlx::query_as(SQL).bind(token_hash).bind(now).fetch_optional(p).await)?,
        )
    }

    /// Counts one wrong code against the challenge; returns the attempts so far.
    pub async fn record_two_factor_challenge_failure(&self, id: i64) -> StoreResult<i64> {
        const SQL: &str = "UPDATE two_factor_challenges SET attempts = attempts + 1 \
             WHERE id = $1 RETURNING attempts";
        let attempts: Option<i64> = on_pool!(self, p => sqlx::query_scalar(SQL)
            .bind(id)
            .fetch_optional(p)
            .await)?;
        Ok(attempts.unwrap_or(i64::MAX))
    }

    /// Deletes the challenge; `true` only for the one caller that deleted it, so a challenge
    /// completes at most once.
    pub async fn take_two_factor_challenge(&self, id: i64) -> StoreResult<bool> {
        let done = on_pool!(self, p => sqlx::query("DELETE FROM two_factor_challenges WHERE id = $1")
            .bind(id)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Removes expired challenges; returns how many went.
    pub async fn purge_two_factor_challenges(&self, now: i64) -> StoreResult<u64> {
        let done = on_pool!(self, p => sqlx::query("DELETE FROM two_factor_challenges WHERE expires_at <= $1")
            .bind(now)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done)
    }
}
