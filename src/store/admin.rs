//! What only the admin area and the admin API read and write: approving and rejecting pending sign-ups, an administrator's edit of an
//! account, every application with its owner, an administrator's edit of an application,
//! and the authors' usernames of a page of audit events. Every write records its audit
//! event in its own transaction.

use std::collections::HashMap;

use super::audit_events::insert_audit_event;
use super::cache::Invalidation;
use super::{Store, StoreError, StoreResult, impl_from_row, on_pool};
use crate::domain::application::Application;
use crate::domain::audit::AuditEvent;
use crate::domain::user::{STATE_ACTIVE, STATE_PENDING_APPROVAL};

/// An application with who owns it: a user's username, a group's full path, or neither
/// (instance-wide, or registered dynamically).
#[derive(Clone, Debug)]
pub struct ApplicationWithOwner {
    pub application: Application,
    pub owner_username: Option<String>,
    pub group_full_path: Option<String>,
}

struct OwnerNames {
    owner_username: Option<String>,
    group_full_path: Option<String>,
}
impl_from_row!(OwnerNames {
    owner_username: Option<String>,
    group_full_path: Option<String>,
});

struct IdName {
    id: i64,
    username: String,
}
impl_from_row!(IdName {
    id: i64,
    username: String
});

impl Store {
    /// An administrator's edit of the name and the admin flag, recorded with `audit`.
    pub async fn admin_update_user(
        &self,
        id: i64,
        name: &str,
        is_admin: bool,
        audit: &AuditEvent,
        now: i64,
    ) -> StoreResult<()> {
        on_pool!(self, p, begin => {
            let mut tx = p.begin_with(begin).await?;
            let done = sqlx::query("UPDATE users SET name = $2, is_admin = $3, updated_at = $4 WHERE id = $1")
                .bind(id)
                .bind(name)
                .bind(is_admin)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            insert_audit_event!(&mut *tx, audit, now);
            tx.commit().await?;
            self.forget(Invalidation::User(id));
            Ok(())
        })
    }

    /// Activates a sign-up waiting for approval; false (nothing written) when the user is
    /// not pending, so two administrators approving at once record one approval.
    pub async fn approve_pending_user(
        &self,
        id: i64,
        audit: &AuditEvent,
        now: i64,
    ) -> StoreResult<bool> {
        on_pool!(self, p, begin => {
            let mut tx = p.begin_with(begin).await?;
            let done = sqlx::query("UPDATE users SET state = $2, updated_at = $3 WHERE id = $1 AND state = $4")
                .bind(id)
                .bind(STATE_ACTIVE)
                .bind(now)
                .bind(STATE_PENDING_APPROVAL)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Ok(false);
            }
            insert_audit_event!(&mut *tx, audit, now);
            tx.commit().await?;
            self.forget(Invalidation::User(id));
            Ok(true)
        })
    }

    /// Deletes a sign-up waiting for approval (its rows go with it by ON DELETE CASCADE);
    /// false (nothing written) when the user is not pending.
    pub async fn reject_pending_user(
        &self,
        id: i64,
        audit: &AuditEvent,
        now: i64,
    ) -> StoreResult<bool> {
        on_pool!(self, p, begin => {
            let mut tx = p.begin_with(begin).await?;
            let done = sqlx::query("DELETE FROM users WHERE id = $1 AND state = $2")
                .bind(id)
                .bind(STATE_PENDING_APPROVAL)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Ok(false);
            }
            insert_audit_event!(&mut *tx, audit, now);
            tx.commit().await?;
            self.forget(Invalidation::User(id));
            Ok(true)
        })
    }

    /// One page of every application (users', groups', instance-wide, dynamic) with its
    /// owner, newest first, and the total.
    pub async fn admin_list_applications(
        &self,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<ApplicationWithOwner>, i64)> {
        const LIST: &str = "SELECT a.id, a.uid, a.secret_hash, a.name, a.redirect_uri, a.scopes, \
             a.confidential, a.trusted, a.require_pkce, a.require_par, a.owner_id, a.group_id, a.backchannel_logout_uri, \
             a.backchannel_logout_session_required, a.registration_token_hash, a.token_endpoint_auth_method, a.jwks, a.jwks_uri, \
             a.created_at, a.updated_at, u.username AS owner_username, g.full_path AS group_full_path \
             FROM oauth_applications a LEFT JOIN users u ON u.id = a.owner_id \
             LEFT JOIN groups g ON g.id = a.group_id ORDER BY a.id DESC LIMIT $1 OFFSET $2";
        const COUNT: &str = "SELECT COUNT(*) FROM oauth_applications";
        on_pool!(self, read p => {
            let rows = sqlx::query(LIST).bind(limit).bind(offset).fetch_all(p).await?;
            let mut apps = Vec::with_capacity(rows.len());
            for row in &rows {
                let application: Application = sqlx::FromRow::from_row(row)?;
                let names: OwnerNames = sqlx::FromRow::from_row(row)?;
                apps.push(ApplicationWithOwner {
                    application,
                    owner_username: names.owner_username,
                    group_full_path: names.group_full_path,
                });
            }
            let total: i64 = sqlx::query_scalar(COUNT).fetch_one(p).await?;
            Ok((apps, total))
        })
    }

    /// The usernames of `ids` (at most a page's worth), for naming audit event authors with
    /// one query per page. Deleted users are simply absent.
    pub async fn usernames_by_ids(&self, ids: &[i64]) -> StoreResult<HashMap<i64, String>> {
        let mut ids: Vec<i64> = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let mut names = HashMap::new();
        // Fixed-size chunks keep the statement text to a few shapes; unused slots repeat
        // the first id.
        for chunk in ids.chunks(CHUNK) {
            let mut padded = [chunk[0]; CHUNK];
            padded[..chunk.len()].copy_from_slice(chunk);
            let rows: Vec<IdName> = on_pool!(self, read p => {
                let mut q = sqlx::query_as(USERNAMES_SQL);
                for id in padded {
                    q = q.bind(id);
                }
                q.fetch_all(p).await
            })?;
            names.extend(rows.into_iter().map(|r| (r.id, r.username)));
        }
        Ok(names)
    }
}

const CHUNK: usize = 20;
const USERNAMES_SQL: &str = "SELECT id, username FROM users WHERE id IN \
     ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)";
