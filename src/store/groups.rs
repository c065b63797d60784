//! Groups, their nesting (a closure table of every ancestor/descendant pair) and their
//! members. Inherited membership, visibility and the OpenID group claims are each one
//! indexed join through `group_closure`, whatever the depth.

use super::users::escape_like;
use super::{Store, StoreError, StoreResult, impl_from_row, on_pool};
use crate::domain::group::{AccessLevel, Group, GroupSettings, Membership, Visibility};
use crate::domain::user::User;

impl_from_row!(Group {
    id: i64,
    parent_id: Option<i64>,
    name: String,
    path: String,
    full_path: String,
    description: String,
    visibility: Visibility,
    depth: i64,
    created_at: i64,
    updated_at: i64,
});

impl_from_row!(Membership {
    group_id: i64,
    user_id: i64,
    access_level: AccessLevel,
    expires_at: Option<i64>,
    created_at: i64,
});

/// An unexpired membership (`m`) at `$now`.
macro_rules! live {
    ($now:literal) => {
        concat!("(m.expires_at IS NULL OR m.expires_at > ", $now, ")")
    };
}

mod claims;
pub use claims::{GroupClaim, UserGroupClaims};

/// The order of a group list (GitLab's `order_by` and `sort`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GroupOrder {
    #[default]
    NameAsc,
    NameDesc,
    PathAsc,
    PathDesc,
    IdAsc,
    IdDesc,
}

/// Which groups a list holds. Visible groups are the union of: every group
/// (`everything`), public ones (`public`), internal ones (`internal`), and those where
/// `member` has an unexpired membership of at least `min_level`, direct or inherited;
/// then narrowed by the other fields.
#[derive(Clone, Debug, Default)]
pub struct GroupFilter {
    pub everything: bool,
    pub public: bool,
    pub internal: bool,
    pub member: Option<i64>,
    pub min_level: i64,
    /// Only groups `member` owns directly.
    pub owned: bool,
    pub top_level_only: bool,
    /// Case-insensitive substring of the name or the path.
    pub search: Option<String>,
    /// Only the children of this group.
    pub parent_id: Option<i64>,
    /// Only the descendants of this group.
    pub ancestor_id: Option<i64>,
    /// Only groups of this visibility.
    pub visibility: Option<Visibility>,
    pub order: GroupOrder,
}

macro_rules! group_list_sql {
    ($select:literal, $($tail:tt)*) => {
        concat!(
            $select,
            " FROM groups g WHERE ($1 OR ($2 AND g.visibility = 'public') OR ($3 AND g.visibility = 'internal') \
             OR g.id IN (SELECT c.descendant_id FROM group_members m JOIN group_closure c ON c.ancestor_id = m.group_id \
                         WHERE m.user_id = $4 AND m.access_level >= $5 AND ",
            live!("$6"),
            ")) \
             AND (NOT $7 OR g.id IN (SELECT m.group_id FROM group_members m WHERE m.user_id = $4 AND m.access_level = 50 AND ",
            live!("$6"),
            ")) \
             AND (NOT $8 OR g.parent_id IS NULL) \
             AND ($9 IS NULL OR lower(g.name) LIKE $9 ESCAPE '\\' OR lower(g.path) LIKE $9 ESCAPE '\\') \
             AND ($10 IS NULL OR g.parent_id = $10) \
             AND ($11 IS NULL OR g.id IN (SELECT descendant_id FROM group_closure WHERE ancestor_id = $11 AND distance > 0)) \
             AND ($12 IS NULL OR g.visibility = $12)",
            $($tail)*
        )
    };
}

macro_rules! group_list_ordered {
    ($order:literal) => {
        group_list_sql!(
            "SELECT g.id, g.parent_id, g.name, g.path, g.full_path, g.description, g.visibility, g.depth, g.created_at, g.updated_at",
            " ORDER BY ", $order, " LIMIT $13 OFFSET $14"
        )
    };
}

/// A membership row joined with its user, as the members API lists it.
#[derive(Clone, Debug)]
pub struct Member {
    pub user: User,
    pub membership: Membership,
}

/// What a change to a membership did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberChange {
    Done,
    NotMember,
    /// Refused: the group would be left without an Owner.
    LastOwner,
}

const COUNT_LIVE_OWNERS: &str = concat!(
    "SELECT COUNT(*) FROM group_members m JOIN group_closure c ON c.ancestor_id = m.group_id \
     WHERE c.descendant_id = $1 AND m.access_level = 50 AND ",
    live!("$2")
);

impl Store {
    pub async fn group_by_id(&self, id: i64) -> StoreResult<Option<Group>> {
        const SQL: &str = "SELECT id, parent_id, name, path, full_path, description, visibility, depth, created_at, updated_at \
             FROM groups WHERE id = $1";
        Ok(on_pool!(self, read p => sqlx::query_as(SQL).bind(id).fetch_optional(p).await)?)
    }

    /// Case-insensitive, as GitLab's routes are.
    pub async fn group_by_full_path(&self, full_path: &str) -> StoreResult<Option<Group>> {
        const SQL: &str = "SELECT id, parent_id, name, path, full_path, description, visibility, depth, created_at, updated_at \
             FROM groups WHERE lower(full_path) = lower($1)";
        Ok(on_pool!(self, read p => sqlx::query_as(SQL).bind(full_path).fetch_optional(p).await)?)
    }

    /// Creates a group under `parent` (or at the top) with `owner_id` as its direct Owner,
    /// in one transaction. `Conflict("path")` when the path is taken under that parent.
    pub async fn create_group(
        &self,
        settings: &GroupSettings,
        parent: Option<&Group>,
        owner_id: i64,
        now: i64,
    ) -> StoreResult<Group> {
        const INSERT: &str = "INSERT INTO groups (parent_id, name, path, full_path, description, visibility, depth, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
             RETURNING id, parent_id, name, path, full_path, description, visibility, depth, created_at, updated_at";
        const CLOSURE: &str = "INSERT INTO group_closure (ancestor_id, descendant_id, distance) \
             SELECT ancestor_id, $1, distance + 1 FROM group_closure WHERE descendant_id = $2 \
             UNION ALL SELECT $1, $1, 0";
        const OWNER: &str = "INSERT INTO group_members (group_id, user_id, access_level, expires_at, created_at) \
             VALUES ($1, $2, 50, NULL, $3)";
        let full_path = match parent {
            Some(p) => format!("{}/{}", p.full_path, settings.path),
            None => settings.path.clone(),
        };
        let depth = parent.map_or(1, |p| p.depth + 1);
        on_pool!(self, p, begin => {
            let mut tx = p.begin_with(begin).await?;
            let group: Group = sqlx::query_as(INSERT)
                .bind(parent.map(|p| p.id))
                .bind(&settings.name)
                .bind(&settings.path)
                .bind(&full_path)
                .bind(&settings.description)
                .bind(settings.visibility.as_str())
                .bind(depth)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
            sqlx::query(CLOSURE).bind(group.id).bind(parent.map_or(0, |p| p.id)).execute(&mut *tx).await?;
            sqlx::query(OWNER).bind(group.id).bind(owner_id).bind(now).execute(&mut *tx).await?;
            tx.commit().await?;
            self.forget_all_group_claims();
            Ok(group)
        })
    }

    /// How many levels lie below `group_id` (0 for a leaf), and the widest visibility among
    /// its descendants (for the nesting limit and GitLab's "no subgroup more visible than
    /// its parent").
    pub async fn group_subtree(&self, group_id: i64) -> StoreResult<(i64, Option<Visibility>)> {
        const HEIGHT: &str =
            "SELECT COALESCE(MAX(distance), 0) FROM group_closure WHERE ancestor_id = $1";
        const VISIBILITIES: &str = "SELECT DISTINCT g.visibility FROM group_closure c JOIN groups g ON g.id = c.descendant_id \
             WHERE c.ancestor_id = $1 AND c.distance > 0";
        let (height, visibilities): (i64, Vec<Visibility>) = on_pool!(self, read p => {
            let height: i64 = sqlx::query_scalar(HEIGHT).bind(group_id).fetch_one(p).await?;
            let v: Vec<Visibility> = sqlx::query_scalar(VISIBILITIES).bind(group_id).fetch_all(p).await?;
            (height, v)
        });
        Ok((height, visibilities.into_iter().max()))
    }

    /// True when `candidate` is `group_id` or one of its descendants (so making it the
    /// parent would be a cycle).
    pub async fn is_in_subtree(&self, group_id: i64, candidate: i64) -> StoreResult<bool> {
        const SQL: &str =
            "SELECT COUNT(*) FROM group_closure WHERE ancestor_id = $1 AND descendant_id = $2";
        let n: i64 = on_pool!(self, read p => sqlx::query_scalar(SQL).bind(group_id).bind(candidate).fetch_one(p).await)?;
        Ok(n > 0)
    }

    /// Saves `settings` for `group` and places it under `parent` (the same or another),
    /// rewriting the full paths and depths of its whole subtree and its ancestry links, in
    /// one transaction. The caller has checked cycles, depth and visibility.
    pub async fn save_group(
        &self,
        group: &Group,
        settings: &GroupSettings,
        parent: Option<&Group>,
        now: i64,
    ) -> StoreResult<Group> {
        const UNLINK: &str = "DELETE FROM group_closure \
             WHERE descendant_id IN (SELECT descendant_id FROM group_closure WHERE ancestor_id = $1) \
             AND ancestor_id NOT IN (SELECT descendant_id FROM group_closure WHERE ancestor_id = $1)";
        const LINK: &str = "INSERT INTO group_closure (ancestor_id, descendant_id, distance) \
             SELECT a.ancestor_id, d.descendant_id, a.distance + d.distance + 1 \
             FROM group_closure a, group_closure d WHERE a.descendant_id = $2 AND d.ancestor_id = $1";
        const UPDATE: &str = "UPDATE groups SET parent_id = $2, name = $3, path = $4, description = $5, \
             visibility = $6, updated_at = $7 WHERE id = $1";
        const SUBTREE: &str = "UPDATE groups SET full_path = $2 || substr(full_path, $3), depth = depth + $4 \
             WHERE id IN (SELECT descendant_id FROM group_closure WHERE ancestor_id = $1)";
        let full_path = match parent {
            Some(p) => format!("{}/{}", p.full_path, settings.path),
            None => settings.path.clone(),
        };
        let depth = parent.map_or(1, |p| p.depth + 1);
        let moved = parent.map(|p| p.id) != group.parent_id;
        // substr is 1-based: the old full path's characters are replaced, the rest kept.
        let tail_from =
            i32::try_from(group.full_path.chars().count() + 1).map_err(|_| StoreError::NotFound)?;
        on_pool!(self, p, begin => {
            let mut tx = p.begin_with(begin).await?;
            if moved {
                sqlx::query(UNLINK).bind(group.id).execute(&mut *tx).await?;
                if let Some(parent) = parent {
                    sqlx::query(LINK).bind(group.id).bind(parent.id).execute(&mut *tx).await?;
                }
            }
            let done = sqlx::query(UPDATE)
                .bind(group.id)
                .bind(parent.map(|p| p.id))
                .bind(&settings.name)
                .bind(&settings.path)
                .bind(&settings.description)
                .bind(settings.visibility.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            if full_path != group.full_path || depth != group.depth {
                sqlx::query(SUBTREE)
                    .bind(group.id)
                    .bind(&full_path)
                    .bind(tail_from)
                    .bind(depth - group.depth)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok::<(), StoreError>(())
        })?;
        self.forget_all_group_claims();
        self.group_by_id(group.id)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// Deletes a group with all its subgroups and memberships (foreign-key cascades).
    pub async fn delete_group(&self, id: i64) -> StoreResult<()> {
        let deleted = on_pool!(self, p => sqlx::query("DELETE FROM groups WHERE id = $1")
            .bind(id)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        self.forget_all_group_claims();
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// A page of the groups `filter` selects, and how many there are in all.
    pub async fn list_groups(
        &self,
        filter: &GroupFilter,
        now: i64,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<Group>, i64)> {
        const COUNT: &str = group_list_sql!("SELECT COUNT(*)", "");
        let sql: &'static str = match filter.order {
            GroupOrder::NameAsc => group_list_ordered!("lower(g.name), g.id"),
            GroupOrder::NameDesc => group_list_ordered!("lower(g.name) DESC, g.id DESC"),
            GroupOrder::PathAsc => group_list_ordered!("lower(g.path), g.id"),
            GroupOrder::PathDesc => group_list_ordered!("lower(g.path) DESC, g.id DESC"),
            GroupOrder::IdAsc => group_list_ordered!("g.id"),
            GroupOrder::IdDesc => group_list_ordered!("g.id DESC"),
        };
        let search = filter
            .search
            .as_ref()
            .map(|s| format!("%{}%", escape_like(&s.to_lowercase())));
        macro_rules! bind_filter {
            ($q:expr) => {
                $q.bind(filter.everything)
                    .bind(filter.public)
                    .bind(filter.internal)
                    .bind(filter.member)
                    .bind(filter.min_level)
                    .bind(now)
                    .bind(filter.owned)
                    .bind(filter.top_level_only)
                    .bind(search.as_deref())
                    .bind(filter.parent_id)
                    .bind(filter.ancestor_id)
                    .bind(filter.visibility.map(Visibility::as_str))
            };
        }
        Ok(on_pool!(self, read p => {
            let groups: Vec<Group> = bind_filter!(sqlx::query_as(sql)).bind(limit).bind(offset).fetch_all(p).await?;
            let total: i64 = bind_filter!(sqlx::query_scalar(COUNT)).fetch_one(p).await?;
            (groups, total)
        }))
    }

    /// The user's effective level in a group: the highest of their unexpired memberships
    /// of it and of its ancestors.
    pub async fn effective_level(
        &self,
        group_id: i64,
        user_id: i64,
        now: i64,
    ) -> StoreResult<Option<AccessLevel>> {
        const SQL: &str = concat!(
            "SELECT MAX(m.access_level) FROM group_members m JOIN group_closure c ON c.ancestor_id = m.group_id \
             WHERE c.descendant_id = $1 AND m.user_id = $2 AND ",
            live!("$3")
        );
        let level: Option<i16> = on_pool!(self, read p => sqlx::query_scalar(SQL).bind(group_id).bind(user_id).bind(now).fetch_one(p).await)?;
        Ok(level.and_then(|l| AccessLevel::new(i64::from(l))))
    }

    /// The direct members of a group (expired ones included: GitLab lists them until they
    /// are removed), by user id.
    pub async fn group_members(&self, group_id: i64) -> StoreResult<Vec<Member>> {
        self.members_with_distance(group_id, Some(0), None)
            .await
            .map(|rows| rows.into_iter().map(|(m, _)| m).collect())
    }

    /// One direct member of a group, by an indexed lookup (not the whole member list).
    pub async fn group_member(&self, group_id: i64, user_id: i64) -> StoreResult<Option<Member>> {
        self.members_with_distance(group_id, Some(0), Some(user_id))
            .await
            .map(|rows| rows.into_iter().next().map(|(m, _)| m))
    }

    /// Every unexpired member of a group, direct or through an ancestor, each once at their
    /// highest level (a direct membership wins a tie), by user id.
    pub async fn group_members_all(&self, group_id: i64, now: i64) -> StoreResult<Vec<Member>> {
        let mut best: Vec<(Member, i64)> = Vec::new();
        for (member, distance) in self.members_with_distance(group_id, None, None).await? {
            if member.membership.expires_at.is_some_and(|at| at <= now) {
                continue;
            }
            match best.iter_mut().find(|(m, _)| m.user.id == member.user.id) {
                Some((kept, kept_distance)) => {
                    let level = member.membership.access_level;
                    let kept_level = kept.membership.access_level;
                    if level > kept_level || (level == kept_level && distance < *kept_distance) {
                        *kept = member;
                        *kept_distance = distance;
                    }
                }
                None => best.push((member, distance)),
            }
        }
        best.sort_by_key(|(m, _)| m.user.id);
        Ok(best.into_iter().map(|(m, _)| m).collect())
    }

    async fn members_with_distance(
        &self,
        group_id: i64,
        distance: Option<i64>,
        user_id: Option<i64>,
    ) -> StoreResult<Vec<(Member, i64)>> {
        const SQL: &str = "SELECT m.group_id, m.user_id, m.access_level, m.expires_at, m.created_at AS member_created_at, c.distance, \
             u.id, u.username, u.email, u.name, u.password_hash, u.is_admin, u.state, u.public_email, \
             u.website_url, u.bio, u.location, u.organization, u.job_title, u.created_at, u.updated_at, \
             u.last_sign_in_at, u.current_sign_in_at, u.two_factor_enabled, u.confirmed_at, u.unconfirmed_email \
             FROM group_closure c JOIN group_members m ON m.group_id = c.ancestor_id JOIN users u ON u.id = m.user_id \
             WHERE c.descendant_id = $1 AND ($2 IS NULL OR c.distance = $2) AND ($3 IS NULL OR m.user_id = $3) \
             ORDER BY u.id, c.distance";
        struct Row {
            group_id: i64,
            user_id: i64,
            access_level: AccessLevel,
            expires_at: Option<i64>,
            member_created_at: i64,
            distance: i64,
        }
        impl_from_row!(Row {
            group_id: i64,
            user_id: i64,
            access_level: AccessLevel,
            expires_at: Option<i64>,
            member_created_at: i64,
            distance: i64,
        });
        Ok(on_pool!(self, read p => {
            let rows = sqlx::query(SQL).bind(group_id).bind(distance).bind(user_id).fetch_all(p).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                let r: Row = sqlx::FromRow::from_row(row)?;
                let user: User = sqlx::FromRow::from_row(row)?;
                let membership = Membership {
                    group_id: r.group_id,
                    user_id: r.user_id,
                    access_level: r.access_level,
                    expires_at: r.expires_at,
                    created_at: r.member_created_at,
                };
                out.push((Member { user, membership }, r.distance));
            }
            out
        }))
    }

    /// Adds a direct member. `Conflict("member")` when they already are one.
    pub async fn add_group_member(&self, m: &Membership) -> StoreResult<()> {
        const SQL: &str = "INSERT INTO group_members (group_id, user_id, access_level, expires_at, created_at) \
             VALUES ($1, $2, $3, $4, $5)";
        on_pool!(self, p => sqlx::query(SQL)
            .bind(m.group_id)
            .bind(m.user_id)
            .bind(level_column(m.access_level))
            .bind(m.expires_at)
            .bind(m.created_at)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        self.forget_group_claims_of(m.user_id);
        Ok(())
    }

    /// Changes (`Some`) or removes (`None`) a direct membership, refusing a change that
    /// would leave the group without an unexpired Owner (direct or inherited). The check
    /// and the change are one transaction, with the group row locked so that two owners
    /// removing each other cannot both succeed.
    pub async fn change_group_member(
        &self,
        group_id: i64,
        user_id: i64,
        new: Option<(AccessLevel, Option<i64>)>,
        now: i64,
    ) -> StoreResult<MemberChange> {
        const LOCK: &str = "UPDATE groups SET updated_at = updated_at WHERE id = $1";
        const UPDATE: &str = "UPDATE group_members SET access_level = $3, expires_at = $4 WHERE group_id = $1 AND user_id = $2";
        const DELETE: &str = "DELETE FROM group_members WHERE group_id = $1 AND user_id = $2";
        on_pool!(self, p, begin => {
            let mut tx = p.begin_with(begin).await?;
            sqlx::query(LOCK).bind(group_id).execute(&mut *tx).await?;
            let done = match new {
                Some((level, expires_at)) => sqlx::query(UPDATE)
                    .bind(group_id)
                    .bind(user_id)
                    .bind(level_column(level))
                    .bind(expires_at)
                    .execute(&mut *tx)
                    .await?,
                None => sqlx::query(DELETE).bind(group_id).bind(user_id).execute(&mut *tx).await?,
            };
            if done.rows_affected() == 0 {
                return Ok(MemberChange::NotMember);
            }
            let owners: i64 = sqlx::query_scalar(COUNT_LIVE_OWNERS).bind(group_id).bind(now).fetch_one(&mut *tx).await?;
            if owners == 0 {
                tx.rollback().await?;
                return Ok(MemberChange::LastOwner);
            }
            tx.commit().await?;
            self.forget_group_claims_of(user_id);
            Ok(MemberChange::Done)
        })
    }

    /// A user's direct memberships with their groups (GitLab's `GET /users/:id/memberships`).
    pub async fn memberships_of_user(&self, user_id: i64) -> StoreResult<Vec<(Group, Membership)>> {
        const SQL: &str = "SELECT g.id, g.parent_id, g.name, g.path, g.full_path, g.description, g.visibility, g.depth, \
             g.created_at, g.updated_at, m.group_id, m.user_id, m.access_level, m.expires_at, m.created_at AS member_created_at \
             FROM group_members m JOIN groups g ON g.id = m.group_id WHERE m.user_id = $1 ORDER BY g.id";
        Ok(on_pool!(self, read p => {
            let rows = sqlx::query(SQL).bind(user_id).fetch_all(p).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                use sqlx::Row as _;
                let group: Group = sqlx::FromRow::from_row(row)?;
                let membership = Membership {
                    group_id: row.try_get("group_id")?,
                    user_id: row.try_get("user_id")?,
                    access_level: row.try_get("access_level")?,
                    expires_at: row.try_get("expires_at")?,
                    created_at: row.try_get("member_created_at")?,
                };
                out.push((group, membership));
            }
            out
        }))
    }
}

/// `access_level` is a SMALLINT column.
fn level_column(level: AccessLevel) -> i16 {
    i16::try_from(level.value()).unwrap_or(i16::MAX)
}
