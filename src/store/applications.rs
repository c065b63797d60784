//! OAuth applications.

use super::cache::Invalidation;
use super::{Store, StoreError, StoreResult, impl_from_row, on_pool};
use crate::domain::application::{Application, ApplicationOwner, ApplicationSettings};
use crate::domain::scope::ScopeSet;

impl_from_row!(Application {
    id: i64,
    uid: String,
    secret_hash: Vec<u8>,
    name: String,
    redirect_uri: String,
    scopes: ScopeSet,
    confidential: bool,
    trusted: bool,
    require_pkce: bool,
    owner_id: Option<i64>,
    group_id: Option<i64>,
    backchannel_logout_uri: Option<String>,
    backchannel_logout_session_required: bool,
    created_at: i64,
    updated_at: i64,
});

macro_rules! select_applications {
    ($tail:literal) => {
        concat!(
            "SELECT id, uid, secret_hash, name, redirect_uri, scopes, confidential, trusted, require_pkce, \
             owner_id, group_id, backchannel_logout_uri, backchannel_logout_session_required, created_at, updated_at \
             FROM oauth_applications ",
            $tail
        )
    };
}

impl Store {
    pub async fn create_application(
        &self,
        uid: &str,
        secret_hash: &[u8],
        settings: &ApplicationSettings,
        trusted: bool,
        owner: impl Into<ApplicationOwner>,
        now: i64,
    ) -> StoreResult<Application> {
        const SQL: &str = "INSERT INTO oauth_applications \
             (uid, secret_hash, name, redirect_uri, scopes, confidential, trusted, require_pkce, owner_id, group_id, \
              backchannel_logout_uri, backchannel_logout_session_required, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $12, $13, $11, $11) \
             RETURNING id, uid, secret_hash, name, redirect_uri, scopes, confidential, trusted, require_pkce, owner_id, group_id, \
             backchannel_logout_uri, backchannel_logout_session_required, created_at, updated_at";
        let (owner_id, group_id) = owner.into().columns();
        Ok(on_pool!(self, p => sqlx::query_as(SQL)
            .bind(uid)
            .bind(secret_hash)
            .bind(&settings.name)
            .bind(&settings.redirect_uri)
            .bind(settings.scopes.to_string())
            .bind(settings.confidential)
            .bind(trusted)
            .bind(settings.require_pkce)
            .bind(owner_id)
            .bind(group_id)
            .bind(now)
            .bind(&settings.backchannel_logout_uri)
            .bind(settings.backchannel_logout_session_required)
            .fetch_one(p)
            .await)?)
    }

    /// The application with this `client_id`: one lookup on the unique index.
    pub async fn application_by_uid(&self, uid: &str) -> StoreResult<Option<Application>> {
        const SQL: &str = select_applications!("WHERE uid = $1");
        self.cached_application(uid, async {
            Ok(on_pool!(self, read p => sqlx::query_as(SQL).bind(uid).fetch_optional(p).await)?)
        })
        .await
    }

    pub async fn application_by_id(&self, id: i64) -> StoreResult<Option<Application>> {
        const SQL: &str = select_applications!("WHERE id = $1");
        Ok(on_pool!(self, read p => sqlx::query_as(SQL).bind(id).fetch_optional(p).await)?)
    }

    /// The applications of `owner` (a user's, a group's, or for `None` / `Instance` the
    /// instance-wide ones).
    pub async fn applications_of_owner(
        &self,
        owner: impl Into<ApplicationOwner>,
    ) -> StoreResult<Vec<Application>> {
        const OWNED: &str = select_applications!("WHERE owner_id = $1 ORDER BY id");
        const GROUP: &str = select_applications!("WHERE group_id = $1 ORDER BY id");
        const INSTANCE: &str =
            select_applications!("WHERE owner_id IS NULL AND group_id IS NULL ORDER BY id");
        let (sql, id) = match owner.into() {
            ApplicationOwner::User(id) => (OWNED, Some(id)),
            ApplicationOwner::Group(id) => (GROUP, Some(id)),
            ApplicationOwner::Instance => (INSTANCE, None),
        };
        Ok(on_pool!(self, read p => {
            let q = sqlx::query_as(sql);
            match id {
                Some(id) => q.bind(id).fetch_all(p).await,
                None => q.fetch_all(p).await,
            }
        })?)
    }

    /// One page of the instance-wide applications (the admin API's list), with their total.
    pub async fn instance_applications(
        &self,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<Application>, i64)> {
        const LIST: &str = select_applications!(
            "WHERE owner_id IS NULL AND group_id IS NULL ORDER BY id LIMIT $1 OFFSET $2"
        );
        const COUNT: &str =
            "SELECT COUNT(*) FROM oauth_applications WHERE owner_id IS NULL AND group_id IS NULL";
        on_pool!(self, read p => {
            let apps: Vec<Application> = sqlx::query_as(LIST)
                .bind(limit)
                .bind(offset)
                .fetch_all(p)
                .await?;
            let total: i64 = sqlx::query_scalar(COUNT).fetch_one(p).await?;
            Ok((apps, total))
        })
    }

    pub async fn update_application(
        &self,
        id: i64,
        settings: &ApplicationSettings,
        trusted: bool,
        now: i64,
    ) -> StoreResult<()> {
        const SQL: &str = "UPDATE oauth_applications SET name = $2, redirect_uri = $3, scopes = $4, \
             confidential = $5, trusted = $6, require_pkce = $7, updated_at = $8, backchannel_logout_uri = $9, \
             backchannel_logout_session_required = $10 WHERE id = $1";
        let done = on_pool!(self, p => sqlx::query(SQL)
            .bind(id)
            .bind(&settings.name)
            .bind(&settings.redirect_uri)
            .bind(settings.scopes.to_string())
            .bind(settings.confidential)
            .bind(trusted)
            .bind(settings.require_pkce)
            .bind(now)
            .bind(&settings.backchannel_logout_uri)
            .bind(settings.backchannel_logout_session_required)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        self.forget(Invalidation::Application(id));
        if done == 0 {
            Err(StoreError::NotFound)
        } else {
            Ok(())
        }
    }

    /// Replaces the secret; the old one stops working at once. Issued tokens stay valid.
    pub async fn set_application_secret(
        &self,
        id: i64,
        secret_hash: &[u8],
        now: i64,
    ) -> StoreResult<()> {
        const SQL: &str =
            "UPDATE oauth_applications SET secret_hash = $2, updated_at = $3 WHERE id = $1";
        let done = on_pool!(self, p => sqlx::query(SQL)
            .bind(id)
            .bind(secret_hash)
            .bind(now)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        self.forget(Invalidation::Application(id));
        if done == 0 {
            Err(StoreError::NotFound)
        } else {
            Ok(())
        }
    }

    /// Deletes the application; its codes and tokens go with it (ON DELETE CASCADE).
    pub async fn delete_application(&self, id: i64) -> StoreResult<()> {
        let done = on_pool!(self, p => sqlx::query("DELETE FROM oauth_applications WHERE id = $1")
            .bind(id)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        self.forget(Invalidation::Application(id));
        if done == 0 {
            Err(StoreError::NotFound)
        } else {
            Ok(())
        }
    }
}
