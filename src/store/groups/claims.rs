//! The groups behind a user's OpenID claims (GitLab's `groups`, `groups_direct` and the
//! three level claims), read in one query and kept in each node's cache until something
//! that changes them is logged (migration 0011) or the first membership behind them
//! expires.

use std::sync::Arc;

use super::super::cache::Invalidation;
use super::super::{Pool, Store, StoreResult};
use crate::domain::group::AccessLevel;

/// One row of the OpenID claims: a group the user belongs to (directly or through an
/// ancestor) and, if the membership is direct, its level.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupClaim {
    pub full_path: String,
    pub direct_level: Option<AccessLevel>,
}

/// A user's group claims as read at one moment, sorted by full path.
#[derive(Debug, PartialEq, Eq)]
pub struct UserGroupClaims {
    pub rows: Vec<GroupClaim>,
    /// When the first of the memberships behind `rows` expires (Unix seconds): from then
    /// on the rows are wrong without any write having happened, so no cache may keep them.
    pub valid_until: Option<i64>,
}

impl Store {
    /// A user's group claims at `now`: from this node's cache when it has them, else read
    /// (and cached) by [`Store::read_group_claims`].
    pub async fn group_claims(&self, user_id: i64, now: i64) -> StoreResult<Arc<UserGroupClaims>> {
        let Some(cache) = &self.token_cache else {
            return Ok(Arc::new(self.read_group_claims(user_id, now).await?));
        };
        if let Some(hit) = cache.group_claims(user_id, now) {
            return Ok(hit);
        }
        let epoch = cache.epoch();
        let read = Arc::new(self.read_group_claims(user_id, now).await?);
        cache.put_group_claims(user_id, epoch, read.clone());
        Ok(read)
    }

    /// The groups behind a user's OpenID claims, in one query: every group they belong to
    /// at Guest or above, directly or through an ancestor, with the direct level where the
    /// membership is direct. Expired memberships count for nothing; so does Minimal
    /// Access (GitLab: `min_access_level=10` lists exactly the `groups` claim).
    ///
    /// The rows are aggregated into one text value (`level:path` items, 0 for an inherited
    /// membership) so that a user in a thousand groups costs one row to transfer, not
    /// thousands (each row is a hand-off between threads on SQLite); they are sorted here.
    async fn read_group_claims(&self, user_id: i64, now: i64) -> StoreResult<UserGroupClaims> {
        macro_rules! claims_sql {
            ($aggregate:literal) => {
                concat!(
                    "SELECT COALESCE(",
                    $aggregate,
                    "(CAST(t.lvl AS TEXT) || ':' || g.full_path, ' '), ''), \
                     (SELECT MIN(m.expires_at) FROM group_members m \
                      WHERE m.user_id = $1 AND m.access_level >= 10 AND m.expires_at > $2) \
                     FROM (\
                     SELECT c.descendant_id AS id, COALESCE(MAX(CASE WHEN c.distance = 0 THEN m.access_level END), 0) AS lvl \
                     FROM group_members m JOIN group_closure c ON c.ancestor_id = m.group_id \
                     WHERE m.user_id = $1 AND m.access_level >= 10 AND ",
                    live!("$2"),
                    " GROUP BY c.descendant_id) t JOIN groups g ON g.id = t.id"
                )
            };
        }
        // The one place the dialects differ: SQLite's group_concat, PostgreSQL's string_agg.
        const SQLITE: &str = claims_sql!("group_concat");
        const POSTGRES: &str = claims_sql!("string_agg");
        let (text, valid_until): (String, Option<i64>) = match &self.pool {
            Pool::Sqlite { read, .. } => {
                sqlx::query_as(SQLITE)
                    .bind(user_id)
                    .bind(now)
                    .fetch_one(read)
                    .await?
            }
            Pool::Postgres(p) => {
                sqlx::query_as(POSTGRES)
                    .bind(user_id)
                    .bind(now)
                    .fetch_one(p)
                    .await?
            }
        };
        let mut rows: Vec<GroupClaim> = text
            .split(' ')
            .filter_map(|item| item.split_once(':'))
            .map(|(level, path)| GroupClaim {
                full_path: path.to_string(),
                direct_level: level.parse().ok().and_then(AccessLevel::new),
            })
            .collect();
        rows.sort_by(|a, b| a.full_path.cmp(&b.full_path));
        Ok(UserGroupClaims { rows, valid_until })
    }

    /// This node changed a membership of `user_id`: its cached claims go before the answer
    /// (other nodes read the trigger's log row, migration 0011).
    pub(super) fn forget_group_claims_of(&self, user_id: i64) {
        self.forget(Invalidation::GroupClaimsOf(user_id));
    }

    /// This node created, deleted, renamed or moved a group: every cached claim may be wrong.
    pub(super) fn forget_all_group_claims(&self) {
        self.forget(Invalidation::AllGroupClaims);
    }
}
