//! Access/refresh token pairs: insertion (alone or after a single-use claim), lookup,
//! rotation and revocation.
//!
//! Single use is enforced by one conditional UPDATE (`... WHERE consumed_at IS NULL`), which
//! gives exactly one winner on both backends and across nodes, and the token pair is
//! inserted in the same short transaction.

use std::sync::Arc;

use super::audit_events::insert_audit_event;
use super::cache::Invalidation;
use super::reader::{FromSqliteRow, Route};
pub use super::rows::{AccessToken, NewToken, TokenWithOwner};
use super::writer::{Claim, ClaimSql, LinkSql};
use super::{FromRowAt, Store, StoreError, StoreResult, impl_from_row, on_pool};
use crate::domain::audit::AuditEvent;
use crate::domain::resource::Resources;
use crate::domain::scope::ScopeSet;
use crate::domain::user::User;

const INSERT_TOKEN: &str = "INSERT INTO oauth_access_tokens \
     (token_hash, refresh_token_hash, application_id, user_id, grant_id, family, scopes, created_at, expires_at, \
      resources, audience, dpop_jkt) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id";

macro_rules! bind_new_token {
    ($query:expr, $t:expr) => {
        $query
            .bind($t.token_hash)
            .bind($t.refresh_token_hash)
            .bind($t.application_id)
            .bind($t.user_id)
            .bind($t.grant_id)
            .bind($t.family)
            .bind($t.scopes)
            .bind($t.created_at)
            .bind($t.expires_at)
            .bind($t.resources)
            .bind($t.audience)
            .bind($t.dpop_jkt)
    };
}

/// An UPDATE revoking the rows that the statement `$anchor` selects and every row rotated
/// from them since, `$2` being now. The walk follows each row's `successor_id` by primary
/// key (migration 0023); `UNION` (not `UNION ALL`) ends it even on a malformed cycle.
macro_rules! revoke_chains_from {
    ($anchor:literal) => {
        concat!(
            "WITH RECURSIVE chain(id) AS (",
            $anchor,
            " UNION SELECT t.successor_id FROM oauth_access_tokens t JOIN chain ON t.id = chain.id \
               WHERE t.successor_id IS NOT NULL) \
             UPDATE oauth_access_tokens SET revoked_at = $2 \
             WHERE id IN (SELECT id FROM chain) AND revoked_at IS NULL"
        )
    };
}

/// [`Store::revoke_token_chain`]'s statement: `$1` the row, `$2` now (public for the tests
/// that check its plan).
pub const REVOKE_TOKEN_CHAIN: &str = revoke_chains_from!("SELECT CAST($1 AS BIGINT)");
/// [`Store::revoke_tokens_of_grant`]'s statement: `$1` the grant, `$2` now.
pub const REVOKE_TOKENS_OF_GRANT: &str =
    revoke_chains_from!("SELECT id FROM oauth_access_tokens WHERE grant_id = $1");

/// One of the two fixed token lookups: by access-token hash or by refresh-token hash.
macro_rules! token_with_owner_sql {
    ($col:literal) => {
        concat!(
            "SELECT t.id, t.application_id, t.user_id, t.grant_id, t.family, t.scopes, t.created_at, \
             t.expires_at, t.revoked_at, t.resources, t.audience, t.dpop_jkt, a.uid, ",
            super::users::user_columns!("u."),
            " FROM oauth_access_tokens t \
             LEFT JOIN oauth_applications a ON a.id = t.application_id \
             LEFT JOIN users u ON u.id = t.user_id WHERE ",
            $col,
            " = $1"
        )
    };
}

impl Store {
    /// The single-use pattern shared by code exchange, refresh rotation and device
    /// redemption: one conditional UPDATE claims row `id` (`$1`, with `$2` = now), and only
    /// the winner inserts its token pair, in the same transaction. `None` for the losers.
    pub(super) async fn claim_then_insert_token(
        &self,
        claim: ClaimSql,
        id: i64,
        now: i64,
        token: &NewToken<'_>,
    ) -> StoreResult<Option<i64>> {
        if let Some(writer) = &self.token_writer {
            let claim = Claim {
                sql: claim,
                id,
                now,
            };
            return writer.submit(Some(claim), token).await;
        }
        // Without a writer (the import, some tools): on the heap, so the transaction's
        // futures do not enlarge every issuance's future on the writer's path.
        Box::pin(async {
            on_pool!(self, p, begin => {
                let mut tx = p.begin_with(begin).await?;
                let claimed = sqlx::query(claim.one).bind(id).bind(now).execute(&mut *tx).await?.rows_affected();
                if claimed == 0 {
                    return Ok(None);
                }
                let new_id: i64 = bind_new_token!(sqlx::query_scalar(INSERT_TOKEN), token).fetch_one(&mut *tx).await?;
                if let Some(link) = claim.link {
                    sqlx::query(link.after_insert).bind(id).bind(new_id).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(Some(new_id))
            })
        })
        .await
    }

    /// Inserts a token pair on its own (grants with no code to consume).
    pub async fn insert_token(&self, token: &NewToken<'_>) -> StoreResult<i64> {
        if let Some(writer) = &self.token_writer {
            return writer
                .submit(None, token)
                .await?
                .ok_or(StoreError::NotFound);
        }
        let insert = async {
            on_pool!(self, p => bind_new_token!(sqlx::query_scalar(INSERT_TOKEN), token).fetch_one(p).await)
        };
        Ok(Box::pin(insert).await?)
    }

    /// Revokes every token issued from an authorization code, and their refreshed
    /// descendants (RFC 6749 §4.1.2: a code used twice). Only a chain's first row names
    /// its code (rotations do not copy it, so they add no entry to the index of grants);
    /// the descendants are reached from it by their successor links, each by primary key.
    pub async fn revoke_tokens_of_grant(&self, grant_id: i64, now: i64) -> StoreResult<u64> {
        let n = on_pool!(self, p => sqlx::query(REVOKE_TOKENS_OF_GRANT).bind(grant_id).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
        self.forget_all();
        Ok(n)
    }

    /// Revokes one token row (its access token and the refresh token on it).
    pub async fn revoke_token(&self, id: i64, now: i64) -> StoreResult<u64> {
        const SQL: &str =
            "UPDATE oauth_access_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL";
        let n = on_pool!(self, p => sqlx::query(SQL).bind(id).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
        self.forget(Invalidation::Token(id));
        Ok(n)
    }

    /// Revokes row `token_id` and every row rotated from it since (RFC 9700 §4.14.2: a
    /// spent refresh token presented again; RFC 7009 §2.1: a refresh token revoked). Every
    /// row before it in its chain was revoked by its own rotation, so this revokes the whole
    /// chain. The walk follows `successor_id` (migration 0023), one primary-key lookup per
    /// generation.
    pub async fn revoke_token_chain(&self, token_id: i64, now: i64) -> StoreResult<u64> {
        let n = on_pool!(self, p => sqlx::query(REVOKE_TOKEN_CHAIN).bind(token_id).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
        self.forget_all();
        Ok(n)
    }

    /// The access token with this hash, its owner and its client's id: one indexed lookup.
    pub async fn access_token_by_hash(
        &self,
        token_hash: &[u8],
    ) -> StoreResult<Option<Arc<TokenWithOwner>>> {
        const SQL: &str = token_with_owner_sql!("t.token_hash");
        self.cached_token(
            token_hash,
            self.token_with_owner(SQL, token_hash, Route::Readers),
        )
        .await
    }

    /// The token row holding this refresh token, with its owner and client.
    pub async fn refresh_token_by_hash(
        &self,
        refresh_hash: &[u8],
    ) -> StoreResult<Option<Arc<TokenWithOwner>>> {
        const SQL: &str = token_with_owner_sql!("t.refresh_token_hash");
        // On the writer's thread, whose cache holds the row: the rotation claims it next.
        self.token_with_owner(SQL, refresh_hash, Route::Writer)
            .await
    }

    async fn token_with_owner(
        &self,
        sql: &'static str,
        hash: &[u8],
        route: Route,
    ) -> StoreResult<Option<Arc<TokenWithOwner>>> {
        struct Row {
            id: i64,
            application_id: Option<i64>,
            user_id: Option<i64>,
            grant_id: Option<i64>,
            family: Vec<u8>,
            scopes: ScopeSet,
            token_created_at: i64,
            expires_at: i64,
            revoked_at: Option<i64>,
            resources: Resources,
            audience: Resources,
            dpop_jkt: Option<String>,
            client_id: Option<String>,
        }
        impl_from_row!(Row {
            id: i64,
            application_id: Option<i64>,
            user_id: Option<i64>,
            grant_id: Option<i64>,
            family: Vec<u8>,
            scopes: ScopeSet,
            token_created_at: i64,
            expires_at: i64,
            revoked_at: Option<i64>,
            resources: Resources,
            audience: Resources,
            dpop_jkt: Option<String>,
            client_id: Option<String>,
        } and rusqlite);
        /// The user's columns follow the token's thirteen.
        const FIRST_USER_COLUMN: usize = 13;
        let key = hash.to_vec();
        let native = self.read_natively(route, move |conn| {
            use rusqlite::OptionalExtension;
            let mut statement = conn.prepare_cached(sql)?;
            statement
                .query_row([&key], |row| {
                    let t = Row::from_sqlite_row(row, 0)?;
                    let user = match t.user_id {
                        Some(_) => Some(Arc::new(User::from_sqlite_row(row, FIRST_USER_COLUMN)?)),
                        None => None,
                    };
                    Ok((t, user))
                })
                .optional()
        });
        let found = if let Some(native) = native.await {
            native?
        } else {
            on_pool!(self, read p => match sqlx::query(sql).bind(hash).fetch_optional(p).await? {
                Some(row) => {
                    let t = Row::from_row_at(&row, 0)?;
                    let user = match t.user_id {
                        Some(_) => Some(Arc::new(User::from_row_at(&row, FIRST_USER_COLUMN)?)),
                        None => None,
                    };
                    Some((t, user))
                }
                None => None,
            })
        };
        Ok(found.map(|(t, user)| {
            Arc::new(TokenWithOwner {
                token: AccessToken {
                    id: t.id,
                    application_id: t.application_id,
                    user_id: t.user_id,
                    grant_id: t.grant_id,
                    family: t.family,
                    scopes: t.scopes,
                    created_at: t.token_created_at,
                    expires_at: t.expires_at,
                    revoked_at: t.revoked_at,
                    resources: t.resources,
                    audience: t.audience,
                    dpop_jkt: t.dpop_jkt,
                },
                user,
                client_id: t.client_id,
            })
        }))
    }

    /// Refresh-token rotation: revokes the old pair and inserts the new one atomically.
    /// `None` when the old pair was already revoked (a replay, or a concurrent refresh won).
    pub async fn rotate_token(
        &self,
        old_id: i64,
        new: &NewToken<'_>,
        now: i64,
    ) -> StoreResult<Option<i64>> {
        const REVOKE: ClaimSql = ClaimSql {
            one: "UPDATE oauth_access_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
            many: "UPDATE oauth_access_tokens SET revoked_at = $2 WHERE id = ANY($1) AND revoked_at IS NULL \
                   RETURNING id",
            // The old row's page is already written by its revocation, so the link costs
            // no page of its own (an index of chains did: issue 15).
            link: Some(LinkSql {
                after_insert: "UPDATE oauth_access_tokens SET successor_id = $2 WHERE id = $1",
                claim_many: "UPDATE oauth_access_tokens SET revoked_at = $2, \
                             successor_id = nextval('oauth_access_tokens_id_seq') \
                             WHERE id = ANY($1) AND revoked_at IS NULL RETURNING id, successor_id",
            }),
        };
        let rotated = self
            .claim_then_insert_token(REVOKE, old_id, now, new)
            .await?;
        self.forget(Invalidation::Token(old_id));
        Ok(rotated)
    }

    /// True when `user_id` holds an unrevoked token of `application_id` with exactly these
    /// scopes (GitLab's test for skipping consent; expired tokens count, as in GitLab).
    pub async fn has_prior_authorization(
        &self,
        user_id: i64,
        application_id: i64,
        scopes: &str,
    ) -> StoreResult<bool> {
        const SQL: &str = "SELECT id FROM oauth_access_tokens \
             WHERE user_id = $1 AND application_id = $2 AND scopes = $3 AND revoked_at IS NULL LIMIT 1";
        let found: Option<i64> = on_pool!(self, read p => sqlx::query_scalar(SQL)
            .bind(user_id)
            .bind(application_id)
            .bind(scopes)
            .fetch_optional(p)
            .await)?;
        Ok(found.is_some())
    }

    /// The applications `user_id` has authorized and not revoked: (application id, the
    /// union of granted scopes as stored per token, the latest authorization time).
    pub async fn authorized_applications(
        &self,
        user_id: i64,
    ) -> StoreResult<Vec<(i64, ScopeSet, i64)>> {
        const SQL: &str = "SELECT application_id, scopes, MAX(created_at) AS last_at FROM oauth_access_tokens \
             WHERE user_id = $1 AND application_id IS NOT NULL AND revoked_at IS NULL \
             GROUP BY application_id, scopes ORDER BY application_id";
        Ok(on_pool!(self, read p => sqlx::query_as(SQL).bind(user_id).fetch_all(p).await)?)
    }

    /// Revokes everything `user_id` granted `application_id`: its tokens, at once, and its
    /// unused codes.
    pub async fn revoke_authorization(
        &self,
        user_id: i64,
        application_id: i64,
        audit: &AuditEvent,
        now: i64,
    ) -> StoreResult<u64> {
        on_pool!(self, p, begin => {
            let mut tx = p.begin_with(begin).await?;
            let n = sqlx::query("UPDATE oauth_access_tokens SET revoked_at = $3 \
                 WHERE user_id = $1 AND application_id = $2 AND revoked_at IS NULL")
                .bind(user_id)
                .bind(application_id)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query("UPDATE oauth_grants SET consumed_at = $3 \
                 WHERE user_id = $1 AND application_id = $2 AND consumed_at IS NULL")
                .bind(user_id)
                .bind(application_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            insert_audit_event!(&mut *tx, audit, now);
            tx.commit().await?;
            self.forget_all();
            Ok(n)
        })
    }

    /// Deletes codes past their expiry and token rows that can no longer be used: revoked
    /// ones, and expired ones without a refresh token, after `retention` seconds. Tokens go
    /// in batches ([`Store::delete_in_batches`]), each found through a partial index
    /// (migration 0019): one statement over the whole table held the write lock for
    /// seconds on 10^7 rows.
    pub async fn purge_oauth(&self, now: i64, retention: i64) -> StoreResult<u64> {
        const REVOKED: &str = "DELETE FROM oauth_access_tokens WHERE id IN (SELECT id FROM \
             oauth_access_tokens WHERE revoked_at IS NOT NULL AND revoked_at <= $1 LIMIT $2)";
        const EXPIRED: &str = "DELETE FROM oauth_access_tokens WHERE id IN (SELECT id FROM \
             oauth_access_tokens WHERE refresh_token_hash IS NULL AND expires_at <= $1 LIMIT $2)";
        let cutoff = now - retention;
        let grants = on_pool!(self, p => sqlx::query("DELETE FROM oauth_grants WHERE expires_at <= $1")
            .bind(cutoff)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        let tokens = self.delete_in_batches(REVOKED, cutoff).await?
            + self.delete_in_batches(EXPIRED, cutoff).await?;
        let log = self.purge_cache_invalidations(now).await?;
        Ok(grants + tokens + log)
    }
}
