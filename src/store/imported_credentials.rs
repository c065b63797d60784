//! What `doorward import doorkeeper` recorded (issue 16; migration 0020): the credentials
//! it imported in a stored form Doorward cannot look up by its own hash, and the source keys
//! a second import recognises. Only a presented value that no native lookup found reaches
//! the lookups here.

use super::cache::Invalidation;
use super::{Store, StoreResult, on_pool};
use crate::domain::imported_secret::{IMPORTED_SECRET_MARKER, StoredForm};

/// What a record stands for; the `kind` column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialKind {
    AccessToken = 1,
    RefreshToken = 2,
    ApplicationSecret = 3,
    /// A source user, by source id.
    User = 4,
    /// A source application, by uid.
    Application = 5,
    /// A source access-token row, by `<application uid>:<row id>`.
    TokenRow = 6,
}

impl CredentialKind {
    pub fn code(self) -> i16 {
        self as i16
    }

    /// Whether a presented value of this kind opens an access or a refresh token.
    pub fn is_refresh(self) -> bool {
        self == CredentialKind::RefreshToken
    }
}

/// An imported token credential that matched a presented value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportedToken {
    pub kind: CredentialKind,
    pub form: StoredForm,
    pub stored: String,
    pub token_id: i64,
}

impl Store {
    /// The token an imported credential of one of `kinds`, stored as `stored` in `form`,
    /// still opens (not yet re-stored, and its row not deleted).
    pub async fn imported_token(
        &self,
        kinds: &[CredentialKind],
        form: StoredForm,
        stored: &str,
    ) -> StoreResult<Option<ImportedToken>> {
        const SQL: &str = "SELECT token_id FROM imported_credentials \
                           WHERE kind = $1 AND form = $2 AND stored = $3 AND token_id IS NOT NULL";
        for &kind in kinds {
            let found: Option<i64> = on_pool!(self, read p => sqlx::query_scalar(SQL)
                .bind(kind.code())
                .bind(form.code())
                .bind(stored)
                .fetch_optional(p)
                .await)?;
            if let Some(token_id) = found {
                return Ok(Some(ImportedToken {
                    kind,
                    form,
                    stored: stored.to_string(),
                    token_id,
                }));
            }
        }
        Ok(None)
    }

    /// Whether any token credential of one of `kinds` still waits in `form`: the costly
    /// PBKDF2 of a presented value is spent only when one could match.
    pub async fn imported_tokens_waiting(
        &self,
        kinds: &[CredentialKind],
        form: StoredForm,
    ) -> StoreResult<bool> {
        const SQL: &str = "SELECT 1 FROM imported_credentials \
                           WHERE kind = $1 AND form = $2 AND token_id IS NOT NULL LIMIT 1";
        for &kind in kinds {
            let found: Option<i32> = on_pool!(self, read p => sqlx::query_scalar(SQL)
                .bind(kind.code())
                .bind(form.code())
                .fetch_optional(p)
                .await)?;
            if found.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Re-stores the token `found` opens under Doorward's `key` for the presented value, so
    /// the native lookup finds it from now on, and lets the record go of the row (it stays
    /// as the source key of a second import).
    pub async fn restore_imported_token(
        &self,
        found: &ImportedToken,
        key: &[u8],
    ) -> StoreResult<()> {
        let update = if found.kind.is_refresh() {
            "UPDATE oauth_access_tokens SET refresh_token_hash = $2 WHERE id = $1 AND refresh_token_hash IS NOT NULL"
        } else {
            "UPDATE oauth_access_tokens SET token_hash = $2 WHERE id = $1"
        };
        // The record lets go first, and only if it still links this row: the row read a
        // moment ago may have been deleted since (its link then set NULL) and its id, on
        // SQLite, handed to a new token that no old value may open.
        const LET_GO: &str = "UPDATE imported_credentials SET token_id = NULL \
                              WHERE kind = $1 AND form = $2 AND stored = $3 AND token_id = $4";
        on_pool!(self, p, begin => {
            let mut tx = p.begin_with(begin).await?;
            let linked = sqlx::query(LET_GO)
                .bind(found.kind.code())
                .bind(found.form.code())
                .bind(&found.stored)
                .bind(found.token_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if linked == 1 {
                sqlx::query(update).bind(found.token_id).bind(key).execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// The stored forms of application `id`'s imported secret.
    pub async fn imported_application_secrets(
        &self,
        application_id: i64,
    ) -> StoreResult<Vec<String>> {
        const SQL: &str =
            "SELECT stored FROM imported_credentials WHERE kind = $1 AND application_id = $2";
        Ok(on_pool!(self, read p => sqlx::query_scalar(SQL)
            .bind(CredentialKind::ApplicationSecret.code())
            .bind(application_id)
            .fetch_all(p)
            .await)?)
    }

    /// Re-stores an imported application secret as Doorward's hash of it and forgets the
    /// imported forms; false when the secret changed meanwhile ([`IMPORTED_SECRET_MARKER`]
    /// replaced, though a cached copy of the application still showed it): then the
    /// imported secret no longer authenticates.
    pub async fn restore_imported_application_secret(
        &self,
        application_id: i64,
        secret_hash: &[u8],
    ) -> StoreResult<bool> {
        let restored = on_pool!(self, p, begin => {
            let mut tx = p.begin_with(begin).await?;
            let restored = sqlx::query("UPDATE oauth_applications SET secret_hash = $2 WHERE id = $1 AND secret_hash = $3")
                .bind(application_id)
                .bind(secret_hash)
                .bind(&IMPORTED_SECRET_MARKER[..])
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
            sqlx::query("DELETE FROM imported_credentials WHERE kind = $1 AND application_id = $2")
                .bind(CredentialKind::ApplicationSecret.code())
                .bind(application_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            restored
        });
        self.forget(Invalidation::Application(application_id));
        Ok(restored)
    }
}
