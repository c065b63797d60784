//! Credentials imported from a doorkeeper database in a stored form Doorward cannot look up
//! by its own hash (issue 16): the table `imported_credentials` (migration 0020). Only a
//! presented value that no native lookup found reaches these queries.

use crate::domain::imported_secret::StoredForm;

use super::cache::Invalidation;
use super::{Store, StoreResult, on_pool};

/// What an imported credential opens; the `kind` column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialKind {
    AccessToken = 1,
    RefreshToken = 2,
    ApplicationSecret = 3,
}

impl CredentialKind {
    pub fn code(self) -> i16 {
        self as i16
    }
}

impl Store {
    /// The row an imported credential of `kind` stored as `stored` (in `form`) opens.
    pub async fn imported_credential(
        &self,
        kind: CredentialKind,
        form: StoredForm,
        stored: &str,
    ) -> StoreResult<Option<i64>> {
        const SQL: &str = "SELECT target_id FROM imported_credentials WHERE kind = $1 AND form = $2 AND stored = $3";
        Ok(on_pool!(self, read p => sqlx::query_scalar(SQL)
            .bind(kind.code())
            .bind(form.code())
            .bind(stored)
            .fetch_optional(p)
            .await)?)
    }

    /// Whether any credential of `kind` was imported in `form`: the costly PBKDF2 of a
    /// presented value is spent only when one could match.
    pub async fn has_imported_form(
        &self,
        kind: CredentialKind,
        form: StoredForm,
    ) -> StoreResult<bool> {
        const SQL: &str =
            "SELECT 1 FROM imported_credentials WHERE kind = $1 AND form = $2 LIMIT 1";
        let found: Option<i32> = on_pool!(self, read p => sqlx::query_scalar(SQL)
            .bind(kind.code())
            .bind(form.code())
            .fetch_optional(p)
            .await)?;
        Ok(found.is_some())
    }

    /// The stored forms of an imported application's secret not yet re-stored.
    pub async fn imported_application_secrets(
        &self,
        application_id: i64,
    ) -> StoreResult<Vec<String>> {
        const SQL: &str = "SELECT stored FROM imported_credentials WHERE kind = $1 AND target_id = $2 AND form <> $3";
        Ok(on_pool!(self, read p => sqlx::query_scalar(SQL)
            .bind(CredentialKind::ApplicationSecret.code())
            .bind(application_id)
            .bind(StoredForm::Plain.code())
            .fetch_all(p)
            .await)?)
    }

    /// Re-stores an imported access (`refresh` false) or refresh token under Doorward's key
    /// for it, once a presented value matched its imported form: from then on it is found by
    /// the native lookup. The import record stays (it is the source key of a re-run).
    pub async fn restore_imported_token(
        &self,
        id: i64,
        refresh: bool,
        key: &[u8],
    ) -> StoreResult<()> {
        let sql = if refresh {
            "UPDATE oauth_access_tokens SET refresh_token_hash = $2 WHERE id = $1 AND refresh_token_hash IS NOT NULL"
        } else {
            "UPDATE oauth_access_tokens SET token_hash = $2 WHERE id = $1"
        };
        on_pool!(self, p => sqlx::query(sql).bind(id).bind(key).execute(p).await.map(|_| ()))?;
        Ok(())
    }

    /// Re-stores an imported application secret as Doorward's hash of it and forgets the
    /// imported forms: a secret renewed later must not keep the old one working.
    pub async fn restore_imported_application_secret(
        &self,
        application_id: i64,
        secret_hash: &[u8],
    ) -> StoreResult<()> {
        on_pool!(self, p, begin => {
            let mut tx = p.begin_with(begin).await?;
            sqlx::query("UPDATE oauth_applications SET secret_hash = $2 WHERE id = $1")
                .bind(application_id)
                .bind(secret_hash)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM imported_credentials WHERE kind = $1 AND target_id = $2")
                .bind(CredentialKind::ApplicationSecret.code())
                .bind(application_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        self.forget(Invalidation::Application(application_id));
        Ok(())
    }
}
