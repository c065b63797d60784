//! Mailed single-use links (migration 0014): address confirmation and password reset. Only
//! SHA-256 of a token is stored; using one deletes it in the same transaction as what it
//! does, so it works once, and [`Store::create_account_token`] deletes the user's older
//! tokens of the same purpose, so only the newest link works.

use super::audit_events::insert_audit_event;
use super::cache::Invalidation;
use super::users::user_columns;
use super::{Store, StoreError, StoreResult, on_pool};
use crate::domain::audit::AuditEvent;
use crate::domain::user::User;

pub const PURPOSE_CONFIRMATION: &str = "confirmation";
pub const PURPOSE_RESET_PASSWORD: &str = "reset_password";

impl Store {
    /// Stores a new token for `user_id` and `purpose`, replacing the older ones.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_account_token(
        &self,
        user_id: i64,
        purpose: &'static str,
        email: &str,
        token_hash: &[u8],
        now: i64,
        expires_at: i64,
        audit: Option<&AuditEvent>,
    ) -> StoreResult<()> {
        on_pool!(self, p, begin => {
            let mut tx = p.begin_with(begin).await?;
            sqlx::query("DELETE FROM account_tokens WHERE user_id = $1 AND purpose = $2")
                .bind(user_id)
                .bind(purpose)
                .execute(&mut *tx)
                .await?;
            sqlx::query("INSERT INTO account_tokens (token_hash, user_id, purpose, email, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(token_hash)
                .bind(user_id)
                .bind(purpose)
                .bind(email)
                .bind(now)
                .bind(expires_at)
                .execute(&mut *tx)
                .await?;
            if let Some(audit) = audit {
                insert_audit_event!(&mut *tx, audit, now);
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// The user a live token of `purpose` belongs to, without using it (the reset form is
    /// shown only for a link that still works).
    pub async fn account_token_user(
        &self,
        token_hash: &[u8],
        purpose: &str,
        now: i64,
    ) -> StoreResult<Option<i64>> {
        const SQL: &str = "SELECT user_id FROM account_tokens WHERE token_hash = $1 AND purpose = $2 AND expires_at > $3";
        Ok(
            on_pool!(self, read p => sqlx::query_scalar(SQL).bind(token_hash).bind(purpose).bind(now).fetch_optional(p).await)?,
        )
    }

    /// Uses a confirmation token: the address it was made for becomes the user's confirmed
    /// address (a pending new address replaces the old one here). Returns the user id, or
    /// `None` for an unknown, used, superseded or expired token, or one whose address is no
    /// longer the user's current or pending one. The audit event is built by `audit` from
    /// the user's id and username once known.
    pub async fn confirm_email(
        &self,
        token_hash: &[u8],
        now: i64,
        audit: impl FnOnce(i64, &str) -> AuditEvent,
    ) -> StoreResult<Option<i64>> {
        const CLAIM: &str = "DELETE FROM account_tokens WHERE token_hash = $1 AND purpose = 'confirmation' \
             AND expires_at > $2 RETURNING user_id, email";
        const CONFIRM: &str = "UPDATE users SET email = $2, confirmed_at = $3, unconfirmed_email = NULL, updated_at = $3 \
             WHERE id = $1 AND (email = $2 OR unconfirmed_email = $2) RETURNING username";
        let user_id = on_pool!(self, p, begin => {
            let mut tx = p.begin_with(begin).await?;
            let Some((user_id, email)): Option<(i64, String)> = sqlx::query_as(CLAIM)
                .bind(token_hash)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?
            else {
                return Ok(None);
            };
            let confirmed: Option<String> = sqlx::query_scalar(CONFIRM)
                .bind(user_id)
                .bind(&email)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(username) = confirmed else {
                // The address changed again since: the token is spent, nothing else moves.
                tx.commit().await?;
                return Ok(None);
            };
            let event = audit(user_id, &username).with("email", email.as_str());
            insert_audit_event!(&mut *tx, &event, now);
            tx.commit().await?;
            user_id
        });
        self.forget(Invalidation::User(user_id));
        Ok(Some(user_id))
    }

    /// Uses a password-reset token: sets the new password, ends every session of the user,
    /// and spends every reset token of theirs. Only an active account is reset. Returns the
    /// user id, or `None` when the token does not work.
    pub async fn reset_password_with_token(
        &self,
        token_hash: &[u8],
        password_hash: &str,
        now: i64,
        audit: impl FnOnce(i64, &str) -> AuditEvent,
    ) -> StoreResult<Option<i64>> {
        const CLAIM: &str = "DELETE FROM account_tokens WHERE token_hash = $1 AND purpose = 'reset_password' \
             AND expires_at > $2 RETURNING user_id";
        let user_id = on_pool!(self, p, begin => {
            let mut tx = p.begin_with(begin).await?;
            let Some(user_id): Option<i64> = sqlx::query_scalar(CLAIM)
                .bind(token_hash)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?
            else {
                return Ok(None);
            };
            let reset: Option<String> = sqlx::query_scalar(
                "UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1 AND state = 'active' RETURNING username")
                .bind(user_id)
                .bind(password_hash)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(username) = reset else {
                tx.commit().await?;
                return Ok(None);
            };
            for sql in [
                "DELETE FROM sessions WHERE user_id = $1",
                "DELETE FROM account_tokens WHERE user_id = $1 AND purpose = 'reset_password'",
            ] {
                sqlx::query(sql).bind(user_id).execute(&mut *tx).await?;
            }
            insert_audit_event!(&mut *tx, &audit(user_id, &username), now);
            tx.commit().await?;
            user_id
        });
        self.forget(Invalidation::User(user_id));
        Ok(Some(user_id))
    }

    /// The user waiting for `email` to be confirmed (their unconfirmed address, or a pending
    /// new one), and that address as stored.
    pub async fn user_awaiting_confirmation(
        &self,
        email: &str,
    ) -> StoreResult<Option<(User, String)>> {
        const SQL: &str = concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE (lower(email) = lower($1) AND confirmed_at IS NULL) \
             OR lower(unconfirmed_email) = lower($1) LIMIT 1"
        );
        let user: Option<User> =
            on_pool!(self, read p => sqlx::query_as(SQL).bind(email).fetch_optional(p).await)?;
        Ok(user.map(|u| {
            let address = match &u.unconfirmed_email {
                Some(pending) if pending.eq_ignore_ascii_case(email) => pending.clone(),
                _ => u.email.clone(),
            };
            (u, address)
        }))
    }

    /// Records `new_email` as the user's pending address. `Conflict("email")` when another
    /// account uses it.
    pub async fn set_unconfirmed_email(
        &self,
        user_id: i64,
        new_email: &str,
        now: i64,
        audit: &AuditEvent,
    ) -> StoreResult<()> {
        const TAKEN: &str =
            "SELECT COUNT(*) FROM users WHERE lower(email) = lower($2) AND id <> $1";
        on_pool!(self, p, begin => {
            let mut tx = p.begin_with(begin).await?;
            let taken: i64 = sqlx::query_scalar(TAKEN).bind(user_id).bind(new_email).fetch_one(&mut *tx).await?;
            if taken > 0 {
                return Err(StoreError::Conflict("email"));
            }
            sqlx::query("UPDATE users SET unconfirmed_email = $2, updated_at = $3 WHERE id = $1")
                .bind(user_id)
                .bind(new_email)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            insert_audit_event!(&mut *tx, audit, now);
            tx.commit().await?;
            Ok::<(), StoreError>(())
        })?;
        self.forget(Invalidation::User(user_id));
        Ok(())
    }

    /// Sets the address and marks it confirmed at once (an administrator vouches for it),
    /// dropping any pending one; `Conflict("email")` when another account uses it.
    pub async fn set_confirmed_email(
        &self,
        user_id: i64,
        email: &str,
        now: i64,
        audit: &AuditEvent,
    ) -> StoreResult<()> {
        on_pool!(self, p, begin => {
            let mut tx = p.begin_with(begin).await?;
            sqlx::query("UPDATE users SET email = $2, confirmed_at = $3, unconfirmed_email = NULL, updated_at = $3 WHERE id = $1")
                .bind(user_id)
                .bind(email)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM account_tokens WHERE user_id = $1 AND purpose = 'confirmation'")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            insert_audit_event!(&mut *tx, audit, now);
            tx.commit().await?;
            Ok::<(), StoreError>(())
        })?;
        self.forget(Invalidation::User(user_id));
        Ok(())
    }
}
