//! OAuth applications.

use super::audit_events::insert_audit_event;
use super::cache::Invalidation;
use super::{Store, StoreError, StoreResult, impl_from_row, on_pool};
use crate::domain::application::{Application, ApplicationOwner, ApplicationSettings};
use crate::domain::audit::AuditEvent;

/// What a dynamic registration (RFC 7591) stores beside the application's settings.
#[derive(Clone, Copy, Debug)]
pub struct DynamicRegistration<'a> {
    /// SHA-256 of the registration access token.
    pub token_hash: &'a [u8; 32],
    pub token_endpoint_auth_method: &'a str,
}
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
    require_par: bool,
    owner_id: Option<i64>,
    group_id: Option<i64>,
    backchannel_logout_uri: Option<String>,
    backchannel_logout_session_required: bool,
    registration_token_hash: Option<Vec<u8>>,
    token_endpoint_auth_method: Option<String>,
    jwks: Option<String>,
    jwks_uri: Option<String>,
    created_at: i64,
    updated_at: i64,
});

/// The columns of an [`Application`], in every SELECT and RETURNING.
macro_rules! application_columns {
    () => {
        "id, uid, secret_hash, name, redirect_uri, scopes, confidential, trusted, require_pkce, \
         require_par, owner_id, group_id, backchannel_logout_uri, backchannel_logout_session_required, \
         registration_token_hash, token_endpoint_auth_method, jwks, jwks_uri, created_at, updated_at"
    };
}

macro_rules! select_applications {
    ($($tail:literal),+) => {
        concat!(
            "SELECT ",
            application_columns!(),
            " FROM oauth_applications ",
            $($tail),+
        )
    };
}

impl Store {
    #[allow(clippy::too_many_arguments)]
    pub async fn create_application(
        &self,
        uid: &str,
        secret_hash: &[u8],
        settings: &ApplicationSettings,
        trusted: bool,
        owner: impl Into<ApplicationOwner>,
        audit: &AuditEvent,
        now: i64,
    ) -> StoreResult<Application> {
        let owner = owner.into();
        self.insert_application(uid, secret_hash, settings, trusted, owner, None, audit, now)
            .await
    }

    /// Creates a dynamically registered application (RFC 7591): owned by nobody, never
    /// trusted, with its registration token's hash and requested authentication method.
    pub async fn register_application(
        &self,
        uid: &str,
        secret_hash: &[u8],
        settings: &ApplicationSettings,
        registration: &DynamicRegistration<'_>,
        audit: &AuditEvent,
        now: i64,
    ) -> StoreResult<Application> {
        let owner = ApplicationOwner::Instance;
        self.insert_application(
            uid,
            secret_hash,
            settings,
            false,
            owner,
            Some(registration),
            audit,
            now,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn insert_application(
        &self,
        uid: &str,
        secret_hash: &[u8],
        settings: &ApplicationSettings,
        trusted: bool,
        owner: ApplicationOwner,
        registration: Option<&DynamicRegistration<'_>>,
        audit: &AuditEvent,
        now: i64,
    ) -> StoreResult<Application> {
        const SQL: &str = concat!(
            "INSERT INTO oauth_applications \
             (uid, secret_hash, name, redirect_uri, scopes, confidential, trusted, require_pkce, owner_id, group_id, \
              backchannel_logout_uri, backchannel_logout_session_required, created_at, updated_at, \
              registration_token_hash, token_endpoint_auth_method, require_par, jwks, jwks_uri) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $12, $13, $11, $11, $14, $15, $16, $17, $18) RETURNING ",
            application_columns!()
        );
        let (owner_id, group_id) = owner.columns();
        on_pool!(self, p, begin => {
            let mut tx = p.begin_with(begin).await?;
            let app: Application = sqlx::query_as(SQL)
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
            .bind(registration.map(|r| &r.token_hash[..]))
            .bind(settings.auth_method_column().or(registration.map(|r| r.token_endpoint_auth_method)))
            .bind(settings.require_par)
            .bind(settings.keys.jwks())
            .bind(settings.keys.jwks_uri())
            .fetch_one(&mut *tx)
            .await?;
            let event = audit.clone().about_new_application(app.id, &app.name, &app.uid);
            insert_audit_event!(&mut *tx, &event, now);
            tx.commit().await?;
            Ok(app)
        })
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
        const INSTANCE: &str = select_applications!(
            "WHERE owner_id IS NULL AND group_id IS NULL AND registration_token_hash IS NULL ORDER BY id"
        );
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

    /// One page of the instance-wide applications (the admin API's list), or with
    /// `dynamic` of the dynamically registered ones, with their total.
    pub async fn instance_applications(
        &self,
        dynamic: bool,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<Application>, i64)> {
        macro_rules! page {
            ($filter:literal) => {
                (
                    select_applications!("WHERE ", $filter, " ORDER BY id LIMIT $1 OFFSET $2"),
                    concat!("SELECT COUNT(*) FROM oauth_applications WHERE ", $filter),
                )
            };
        }
        let (list, count) = if dynamic {
            page!("registration_token_hash IS NOT NULL")
        } else {
            page!("owner_id IS NULL AND group_id IS NULL AND registration_token_hash IS NULL")
        };
        on_pool!(self, read p => {
            let apps: Vec<Application> = sqlx::query_as(list)
                .bind(limit)
                .bind(offset)
                .fetch_all(p)
                .await?;
            let total: i64 = sqlx::query_scalar(count).fetch_one(p).await?;
            Ok((apps, total))
        })
    }

    /// Saves an edit of an application (a user's or group's settings page, or the admin
    /// area), recorded with `audit`.
    pub async fn update_application(
        &self,
        id: i64,
        settings: &ApplicationSettings,
        trusted: bool,
        audit: &AuditEvent,
        now: i64,
    ) -> StoreResult<()> {
        const SQL: &str = "UPDATE oauth_applications SET name = $2, redirect_uri = $3, scopes = $4, \
             confidential = $5, trusted = $6, require_pkce = $7, updated_at = $8, backchannel_logout_uri = $9, \
             backchannel_logout_session_required = $10, require_par = $11, jwks = $12, jwks_uri = $13, \
             token_endpoint_auth_method = CASE WHEN registration_token_hash IS NULL THEN $14 \
             ELSE token_endpoint_auth_method END, \
             secret_hash = CASE WHEN registration_token_hash IS NULL \
             AND (COALESCE(token_endpoint_auth_method, '') = 'private_key_jwt') <> ($14 IS NOT NULL) \
             THEN $15 ELSE secret_hash END WHERE id = $1";
        // Switching to or from private_key_jwt replaces the stored secret hash with one of a
        // value nobody knows: a secret from before the keys must not work again after them
        // (the owner renews the secret to get a new one).
        let unusable_secret = crate::domain::secret::random_bytes::<32>();
        on_pool!(self, p, begin => {
            let mut tx = p.begin_with(begin).await?;
            let done = sqlx::query(SQL)
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
                .bind(settings.require_par)
                .bind(settings.keys.jwks())
                .bind(settings.keys.jwks_uri())
                .bind(settings.auth_method_column())
                .bind(&unusable_secret[..])
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            insert_audit_event!(&mut *tx, audit, now);
            tx.commit().await?;
            self.forget(Invalidation::Application(id));
            Ok(())
        })
    }

    /// RFC 7592 §2.2: a dynamic client's new metadata, effective at once.
    pub async fn update_registration(
        &self,
        id: i64,
        settings: &ApplicationSettings,
        token_endpoint_auth_method: &str,
        now: i64,
    ) -> StoreResult<()> {
        const SQL: &str = "UPDATE oauth_applications SET name = $2, redirect_uri = $3, scopes = $4, \
             confidential = $5, token_endpoint_auth_method = $6, updated_at = $7, require_par = $8, \
             jwks = $9, jwks_uri = $10 WHERE id = $1 AND registration_token_hash IS NOT NULL";
        let done = on_pool!(self, p => sqlx::query(SQL)
            .bind(id)
            .bind(&settings.name)
            .bind(&settings.redirect_uri)
            .bind(settings.scopes.to_string())
            .bind(settings.confidential)
            .bind(token_endpoint_auth_method)
            .bind(now)
            .bind(settings.require_par)
            .bind(settings.keys.jwks())
            .bind(settings.keys.jwks_uri())
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

    /// The application row behind a client ID metadata document (`uid` is the document's
    /// URL), created on first use and brought up to date with the document each time it
    /// is used, so codes and tokens have an application to belong to. It is "dynamic"
    /// with a registration token hash nobody holds: unvetted, and not manageable by RFC
    /// 7592. A row of another kind with that `uid` is left alone (`NotFound`).
    pub async fn upsert_metadata_document_client(
        &self,
        uid: &str,
        settings: &ApplicationSettings,
        now: i64,
    ) -> StoreResult<Application> {
        const SQL: &str = concat!(
            "INSERT INTO oauth_applications \
             (uid, secret_hash, name, redirect_uri, scopes, confidential, trusted, require_pkce, \
              backchannel_logout_session_required, created_at, updated_at, registration_token_hash, \
              token_endpoint_auth_method) \
             VALUES ($1, $2, $3, $4, $5, FALSE, FALSE, TRUE, FALSE, $6, $6, $7, 'none') \
             ON CONFLICT (uid) DO UPDATE SET name = excluded.name, redirect_uri = excluded.redirect_uri, \
             scopes = excluded.scopes, updated_at = excluded.updated_at \
             WHERE oauth_applications.registration_token_hash IS NOT NULL \
             AND oauth_applications.token_endpoint_auth_method = 'none' AND oauth_applications.confidential = FALSE \
             RETURNING ",
            application_columns!()
        );
        // Random values nobody learns: no secret to present, no registration to manage.
        let unusable_secret = crate::domain::secret::random_bytes::<32>();
        let unusable_token = crate::domain::secret::random_bytes::<32>();
        let app: Option<Application> = on_pool!(self, p => sqlx::query_as(SQL)
            .bind(uid)
            .bind(&unusable_secret[..])
            .bind(&settings.name)
            .bind(&settings.redirect_uri)
            .bind(settings.scopes.to_string())
            .bind(now)
            .bind(&unusable_token[..])
            .fetch_optional(p)
            .await)?;
        let app = app.ok_or(StoreError::NotFound)?;
        self.forget(Invalidation::Application(app.id));
        Ok(app)
    }

    /// Deletes dynamically registered applications created before `cutoff` that never
    /// got a code (clients that registered and went away); their number. Only those
    /// registered by RFC 7591 (`token_endpoint_auth_method` set and a registration token
    /// someone holds) or named by a metadata document, never another application.
    pub async fn purge_unused_registrations(&self, cutoff: i64) -> StoreResult<u64> {
        const SQL: &str = "DELETE FROM oauth_applications WHERE registration_token_hash IS NOT NULL \
             AND first_used_at IS NULL AND created_at < $1";
        let n = on_pool!(self, p => sqlx::query(SQL)
            .bind(cutoff)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        if n > 0 {
            // The other nodes read the trigger's log; this one forgets before returning.
            self.forget_all();
        }
        Ok(n)
    }

    /// Replaces the secret; the old one stops working at once. Issued tokens stay valid.
    pub async fn set_application_secret(
        &self,
        id: i64,
        secret_hash: &[u8],
        audit: &AuditEvent,
        now: i64,
    ) -> StoreResult<()> {
        const SQL: &str =
            "UPDATE oauth_applications SET secret_hash = $2, updated_at = $3 WHERE id = $1";
        let done = on_pool!(self, p, begin => {
            let mut tx = p.begin_with(begin).await?;
            let done = sqlx::query(SQL).bind(id).bind(secret_hash).bind(now).execute(&mut *tx).await?.rows_affected();
            if done > 0 {
                insert_audit_event!(&mut *tx, audit, now);
            }
            tx.commit().await?;
            done
        });
        self.forget(Invalidation::Application(id));
        if done == 0 {
            Err(StoreError::NotFound)
        } else {
            Ok(())
        }
    }

    /// Deletes the application, recording `audit`; its codes and tokens go with it (ON
    /// DELETE CASCADE).
    pub async fn delete_application(
        &self,
        id: i64,
        audit: &AuditEvent,
        now: i64,
    ) -> StoreResult<()> {
        let done = on_pool!(self, p, begin => {
            let mut tx = p.begin_with(begin).await?;
            let done = sqlx::query("DELETE FROM oauth_applications WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if done > 0 {
                insert_audit_event!(&mut *tx, audit, now);
            }
            tx.commit().await?;
            done
        });
        self.forget(Invalidation::Application(id));
        if done == 0 {
            Err(StoreError::NotFound)
        } else {
            Ok(())
        }
    }
}
