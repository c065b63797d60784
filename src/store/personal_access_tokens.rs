//! Personal access tokens. Stored as SHA-256 of the token; validating one is a single
//! lookup on the unique hash index, joined with its user.

use super::audit_events::insert_audit_event;
use super::{Store, StoreError, StoreResult, impl_from_row, on_pool};
use crate::domain::audit::AuditEvent;
use crate::domain::scope::ScopeSet;
use crate::domain::user::User;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonalAccessToken {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub scopes: ScopeSet,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub revoked: bool,
}
impl PersonalAccessToken {
    /// Neither revoked nor expired at `now`: what GitLab calls `active`.
    pub fn is_active(&self, now: i64) -> bool {
        !self.revoked && self.expires_at.is_none_or(|e| e > now)
    }
}

impl_from_row!(PersonalAccessToken {
    id: i64,
    user_id: i64,
    name: String,
    scopes: ScopeSet,
    created_at: i64,
    expires_at: Option<i64>,
    last_used_at: Option<i64>,
    revoked: bool,
});

/// Filters of the token list (GitLab's `GET /personal_access_tokens` parameters). `None`
/// leaves a condition off.
#[derive(Clone, Debug, Default)]
pub struct TokenFilter {
    pub user_id: Option<i64>,
    /// Active means neither revoked nor expired; inactive, either.
    pub active: Option<bool>,
    pub revoked: Option<bool>,
    /// Substring of the name, case-insensitive.
    pub search: Option<String>,
}

pub struct NewPersonalAccessToken<'a> {
    pub user_id: i64,
    pub name: &'a str,
    pub token_hash: &'a [u8],
    pub scopes: &'a str,
    pub expires_at: Option<i64>,
}

impl Store {
    /// Stores a new token and `audit` (given the token's id and name here) together.
    pub async fn create_personal_access_token(
        &self,
        token: &NewPersonalAccessToken<'_>,
        audit: &AuditEvent,
        now: i64,
    ) -> StoreResult<PersonalAccessToken> {
        const SQL: &str = "INSERT INTO personal_access_tokens (user_id, name, token_hash, scopes, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             RETURNING id, user_id, name, scopes, created_at, expires_at, last_used_at, revoked";
        on_pool!(self, p, begin => {
            let mut tx = p.begin_with(begin).await?;
            let created: PersonalAccessToken = sqlx::query_as(SQL)
                .bind(token.user_id)
                .bind(token.name)
                .bind(token.token_hash)
                .bind(token.scopes)
                .bind(now)
                .bind(token.expires_at)
                .fetch_one(&mut *tx)
                .await?;
            let event = audit
                .clone()
                .with("token_id", created.id)
                .with("token_name", created.name.as_str())
                .with("token_scopes", created.scopes.to_string());
            insert_audit_event!(&mut *tx, &event, now);
            tx.commit().await?;
            Ok(created)
        })
    }

    /// The token with this hash and its owner, whatever their state: the caller decides
    /// between "unknown", "revoked", "expired" and "blocked", which GitLab words differently.
    pub async fn personal_access_token_by_hash(
        &self,
        token_hash: &[u8],
    ) -> StoreResult<Option<(PersonalAccessToken, User)>> {
        const SQL: &str = "SELECT t.id AS token_id, t.name AS token_name, t.scopes, t.created_at AS token_created_at, \
             t.expires_at, t.last_used_at, t.revoked, u.id, u.username, u.email, u.name, u.password_hash, \
             u.is_admin, u.state, u.public_email, u.website_url, u.bio, u.location, u.organization, \
             u.job_title, u.created_at, u.updated_at, u.last_sign_in_at, u.current_sign_in_at, u.two_factor_enabled, u.confirmed_at, u.unconfirmed_email \
             FROM personal_access_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1";
        struct Row {
            token_id: i64,
            token_name: String,
            scopes: ScopeSet,
            token_created_at: i64,
            expires_at: Option<i64>,
            last_used_at: Option<i64>,
            revoked: bool,
        }
        impl_from_row!(Row {
            token_id: i64,
            token_name: String,
            scopes: ScopeSet,
            token_created_at: i64,
            expires_at: Option<i64>,
            last_used_at: Option<i64>,
            revoked: bool,
        });
        let found = on_pool!(self, read p => {
            match sqlx::query(SQL).bind(token_hash).fetch_optional(p).await? {
                Some(row) => {
                    let t: Row = sqlx::FromRow::from_row(&row)?;
                    let u: User = sqlx::FromRow::from_row(&row)?;
                    Some((t, u))
                }
                None => None,
            }
        });
        Ok(found.map(|(t, user)| {
            let token = PersonalAccessToken {
                id: t.token_id,
                user_id: user.id,
                name: t.token_name,
                scopes: t.scopes,
                created_at: t.token_created_at,
                expires_at: t.expires_at,
                last_used_at: t.last_used_at,
                revoked: t.revoked,
            };
            (token, user)
        }))
    }

    /// Records use, at most once per `granularity` seconds per token, so that validation is
    /// not a write on every request.
    pub async fn touch_personal_access_token(
        &self,
        id: i64,
        now: i64,
        granularity: i64,
    ) -> StoreResult<()> {
        const SQL: &str = "UPDATE personal_access_tokens SET last_used_at = $2 \
             WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $3)";
        on_pool!(self, p => sqlx::query(SQL).bind(id).bind(now).bind(now - granularity).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn personal_access_tokens_of_user(
        &self,
        user_id: i64,
    ) -> StoreResult<Vec<PersonalAccessToken>> {
        const SQL: &str = "SELECT id, user_id, name, scopes, created_at, expires_at, last_used_at, revoked \
             FROM personal_access_tokens WHERE user_id = $1 ORDER BY id";
        Ok(on_pool!(self, read p => sqlx::query_as(SQL).bind(user_id).fetch_all(p).await)?)
    }

    pub async fn personal_access_token_by_id(
        &self,
        id: i64,
    ) -> StoreResult<Option<PersonalAccessToken>> {
        const SQL: &str = "SELECT id, user_id, name, scopes, created_at, expires_at, last_used_at, revoked \
             FROM personal_access_tokens WHERE id = $1";
        Ok(on_pool!(self, read p => sqlx::query_as(SQL).bind(id).fetch_optional(p).await)?)
    }

    /// One page of tokens ordered by id, and the total matching the filter. `now` decides
    /// which tokens have expired.
    pub async fn list_personal_access_tokens(
        &self,
        filter: &TokenFilter,
        now: i64,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<PersonalAccessToken>, i64)> {
        // As in `list_users`: every filter is always bound and a NULL switches it off, so the
        // statement text is constant. "Live" is written out twice because $3 negates it.
        macro_rules! filtered {
            ($select:literal, $tail:literal) => {
                concat!(
                    $select,
                    " FROM personal_access_tokens WHERE ($1 IS NULL OR user_id = $1) \
                     AND ($2 IS NULL OR revoked = $2) \
                     AND ($3 IS NULL \
                          OR ($3 AND NOT revoked AND (expires_at IS NULL OR expires_at > $4)) \
                          OR (NOT $3 AND (revoked OR expires_at <= $4))) \
                     AND ($5 IS NULL OR lower(name) LIKE $5 ESCAPE '\\')",
                    $tail
                )
            };
        }
        const LIST: &str = filtered!(
            "SELECT id, user_id, name, scopes, created_at, expires_at, last_used_at, revoked",
            " ORDER BY id LIMIT $6 OFFSET $7"
        );
        const COUNT: &str = filtered!("SELECT COUNT(*)", "");
        let search = filter
            .search
            .as_ref()
            .map(|s| format!("%{}%", super::users::escape_like(&s.to_lowercase())));
        on_pool!(self, read p => {
            let tokens: Vec<PersonalAccessToken> = sqlx::query_as(LIST)
                .bind(filter.user_id)
                .bind(filter.revoked)
                .bind(filter.active)
                .bind(now)
                .bind(search.as_deref())
                .bind(limit)
                .bind(offset)
                .fetch_all(p)
                .await?;
            let total: i64 = sqlx::query_scalar(COUNT)
                .bind(filter.user_id)
                .bind(filter.revoked)
                .bind(filter.active)
                .bind(now)
                .bind(search.as_deref())
                .fetch_one(p)
                .await?;
            Ok((tokens, total))
        })
    }

    /// Revokes one token of `user_id`, recording `audit` with it; `NotFound` if it is not
    /// theirs.
    pub async fn revoke_personal_access_token(
        &self,
        id: i64,
        user_id: i64,
        audit: &AuditEvent,
        now: i64,
    ) -> StoreResult<()> {
        const SQL: &str =
            "UPDATE personal_access_tokens SET revoked = TRUE WHERE id = $1 AND user_id = $2";
        on_pool!(self, p, begin => {
            let mut tx = p.begin_with(begin).await?;
            let done = sqlx::query(SQL).bind(id).bind(user_id).execute(&mut *tx).await?.rows_affected();
            if done == 0 {
                return Err(StoreError::NotFound);
            }
            insert_audit_event!(&mut *tx, &audit.clone().with("token_id", id), now);
            tx.commit().await?;
            Ok(())
        })
    }
}
