//! Group operations shared by the API and the pages: finding a group as a given viewer
//! sees it, creating, changing, moving and deleting groups, and managing members. The
//! rules (paths, levels, who may do what) are in `domain::group`, the SQL in
//! `store::groups`; this module puts them in order and speaks GitLab's refusals.

use crate::domain::group::{
    self, AccessLevel, Group, GroupSettings, Membership, Role, Visibility, check_placement,
};
use crate::domain::user::{FieldErrors, User};
use crate::store::groups::MemberChange;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    /// The group (or the user, or the membership) does not exist or is not visible.
    #[error("{0} Not Found")]
    NotFound(&'static str),
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("{}", .0.sentences().join("; "))]
    Invalid(FieldErrors),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(&'static str),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for GroupError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict("path") => {
                let mut errors = FieldErrors::default();
                errors.add("path", "has already been taken");
                GroupError::Invalid(errors)
            }
            StoreError::Conflict("member") => GroupError::Conflict("Member already exists"),
            other => GroupError::Store(other),
        }
    }
}

pub type GroupResult<T> = Result<T, GroupError>;

/// A group and what its viewer may do there.
#[derive(Clone, Debug)]
pub struct GroupView {
    pub group: Group,
    pub role: Role,
}

/// The viewer's role in `group`: their effective level and whether they administer the
/// instance. Anonymous viewers have neither.
pub async fn role_in(
    store: &Store,
    group: &Group,
    viewer: Option<&User>,
    now: i64,
) -> GroupResult<Role> {
    Ok(match viewer {
        Some(user) => Role {
            level: store.effective_level(group.id, user.id, now).await?,
            admin: user.is_admin,
        },
        None => Role {
            level: None,
            admin: false,
        },
    })
}

/// The group named by `id_or_path` (a numeric id or a full path, as GitLab's `:id`) if
/// `viewer` may see it; invisible groups are "not found" (GitLab: 404 for private groups).
pub async fn find(
    store: &Store,
    id_or_path: &str,
    viewer: Option<&User>,
    now: i64,
) -> GroupResult<GroupView> {
    let found = match id_or_path.parse::<i64>() {
        Ok(id) => store.group_by_id(id).await?,
        Err(_) => store.group_by_full_path(id_or_path).await?,
    };
    let group = found.ok_or(GroupError::NotFound("Group"))?;
    let role = role_in(store, &group, viewer, now).await?;
    if !group::can_see(group.visibility, viewer.is_some(), role) {
        return Err(GroupError::NotFound("Group"));
    }
    Ok(GroupView { group, role })
}

/// What a create or an update asks for; `None` keeps the current value (update) or takes
/// the default (create: the path from the name is not guessed, visibility `private`).
#[derive(Clone, Debug, Default)]
pub struct GroupInput {
    pub name: Option<String>,
    pub path: Option<String>,
    pub description: Option<String>,
    pub visibility: Option<String>,
    /// `Some(None)`: move to the top level.
    pub parent_id: Option<Option<i64>>,
}

fn parse_visibility(text: Option<&str>, current: Visibility) -> GroupResult<Visibility> {
    match text {
        None => Ok(current),
        Some(t) => Visibility::parse(t)
            .ok_or_else(|| GroupError::BadRequest("visibility does not have a valid value".into())),
    }
}

/// The new parent, which the viewer must own (GitLab: creating a subgroup, or moving a
/// group into another, needs Owner there). An invisible parent is "not found".
async fn target_parent(
    store: &Store,
    parent_id: Option<i64>,
    viewer: &User,
    now: i64,
) -> GroupResult<Option<Group>> {
    let Some(id) = parent_id else {
        return Ok(None);
    };
    let parent = find(store, &id.to_string(), Some(viewer), now).await?;
    if !parent.role.can_admin_group() {
        return Err(GroupError::Forbidden(
            "you need the Owner role in the parent group",
        ));
    }
    Ok(Some(parent.group))
}

/// Creates a group (a subgroup with `parent_id`) whose direct Owner is `viewer`.
pub async fn create(
    store: &Store,
    viewer: &User,
    input: &GroupInput,
    now: i64,
) -> GroupResult<Group> {
    let name = input.name.as_deref().unwrap_or_default();
    let path = input.path.as_deref().unwrap_or_default();
    let visibility = parse_visibility(input.visibility.as_deref(), Visibility::Private)?;
    let settings = GroupSettings::validate(
        name,
        path,
        input.description.as_deref().unwrap_or_default(),
        visibility,
    )
    .map_err(GroupError::Invalid)?;
    let parent = target_parent(store, input.parent_id.flatten(), viewer, now).await?;
    check_placement(&settings.path, settings.visibility, parent.as_ref(), 0)
        .map_err(GroupError::Invalid)?;
    let group = store
        .create_group(&settings, parent.as_ref(), viewer.id, now)
        .await?;
    tracing::info!(group_id = group.id, by = viewer.id, full_path = %group.full_path, "group created");
    Ok(group)
}

/// Changes a group's settings and, with `parent_id`, moves it (GitLab's `PUT /groups/:id`
/// and `POST /groups/:id/transfer`): cycles, the nesting limit and a visibility wider than
/// the parent's or narrower than a subgroup's are refused.
pub async fn update(
    store: &Store,
    viewer: &User,
    view: &GroupView,
    input: &GroupInput,
    now: i64,
) -> GroupResult<Group> {
    require_owner(view)?;
    let g = &view.group;
    let visibility = parse_visibility(input.visibility.as_deref(), g.visibility)?;
    let settings = GroupSettings::validate(
        input.name.as_deref().unwrap_or(&g.name),
        input.path.as_deref().unwrap_or(&g.path),
        input.description.as_deref().unwrap_or(&g.description),
        visibility,
    )
    .map_err(GroupError::Invalid)?;
    let parent = match input.parent_id {
        None => match g.parent_id {
            Some(id) => store.group_by_id(id).await?,
            None => None,
        },
        Some(new_parent) if new_parent == g.parent_id => match new_parent {
            Some(id) => store.group_by_id(id).await?,
            None => None,
        },
        Some(new_parent) => {
            if let Some(id) = new_parent
                && store.is_in_subtree(g.id, id).await?
            {
                let mut errors = FieldErrors::default();
                errors.add(
                    "parent_id",
                    "cannot be the group itself or one of its subgroups",
                );
                return Err(GroupError::Invalid(errors));
            }
            target_parent(store, new_parent, viewer, now).await?
        }
    };
    let (height, widest_below) = store.group_subtree(g.id).await?;
    check_placement(&settings.path, settings.visibility, parent.as_ref(), height)
        .map_err(GroupError::Invalid)?;
    if let Some(widest) = widest_below
        && widest > settings.visibility
    {
        let mut errors = FieldErrors::default();
        errors.add(
            "visibility_level",
            format!(
                "{} is not allowed since there are sub-groups with higher visibility.",
                settings.visibility.as_str()
            ),
        );
        return Err(GroupError::Invalid(errors));
    }
    let saved = store.save_group(g, &settings, parent.as_ref(), now).await?;
    tracing::info!(group_id = g.id, by = viewer.id, full_path = %saved.full_path, "group changed");
    Ok(saved)
}

/// GitLab: only Owners (and administrators) edit, move or delete a group; other members
/// get 403, and non-members cannot tell it from a group they may not see.
pub fn require_owner(view: &GroupView) -> GroupResult<()> {
    if view.role.can_admin_group() {
        Ok(())
    } else if view.role.is_member() {
        Err(GroupError::Forbidden("you need the Owner role"))
    } else {
        Err(GroupError::NotFound("Group"))
    }
}

/// Deletes a group with its subgroups and memberships.
pub async fn delete(store: &Store, viewer: &User, view: &GroupView) -> GroupResult<()> {
    require_owner(view)?;
    store.delete_group(view.group.id).await?;
    tracing::info!(group_id = view.group.id, by = viewer.id, full_path = %view.group.full_path, "group deleted");
    Ok(())
}

/// Parses GitLab's `access_level` (5, 10, 20, 30, 40 or 50).
pub fn parse_level(level: i64) -> GroupResult<AccessLevel> {
    AccessLevel::new(level)
        .ok_or_else(|| GroupError::BadRequest("access_level does not have a valid value".into()))
}

/// Parses GitLab's `expires_at` (`YYYY-MM-DD`, today or later); blank means none.
pub fn parse_expiry(text: Option<&str>, now: i64) -> GroupResult<Option<i64>> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => group::parse_expiry(t, now)
            .map(Some)
            .map_err(GroupError::BadRequest),
    }
}

/// Who may touch memberships at all: maintainers and owners; developers and below get
/// 403, non-members 404 (GitLab).
fn require_member_manager(view: &GroupView) -> GroupResult<()> {
    if view.role.can_manage_members() {
        Ok(())
    } else if view.role.is_member() {
        Err(GroupError::Forbidden("you need the Maintainer role"))
    } else {
        Err(GroupError::NotFound("Group"))
    }
}

/// Adds `user_id` as a direct member at `level`.
pub async fn add_member(
    store: &Store,
    viewer: &User,
    view: &GroupView,
    user_id: i64,
    level: AccessLevel,
    expires_at: Option<i64>,
    now: i64,
) -> GroupResult<Membership> {
    require_member_manager(view)?;
    if !view.role.can_set_level(None, Some(level)) {
        return Err(GroupError::Forbidden(
            "a Maintainer cannot give the Owner role",
        ));
    }
    if store.user_by_id(user_id).await?.is_none() {
        return Err(GroupError::NotFound("User"));
    }
    let membership = Membership {
        group_id: view.group.id,
        user_id,
        access_level: level,
        expires_at,
        created_at: now,
    };
    store.add_group_member(&membership).await?;
    tracing::info!(
        group_id = view.group.id,
        user_id,
        level = level.value(),
        by = viewer.id,
        "group member added"
    );
    Ok(membership)
}

/// Changes (`Some`) or removes (`None`) `user_id`'s direct membership. Anyone may remove
/// themselves (leave); other changes need the member-manager role, and a Maintainer never
/// touches an Owner's membership nor gives the Owner role. The last Owner stays.
pub async fn change_member(
    store: &Store,
    viewer: &User,
    view: &GroupView,
    user_id: i64,
    new: Option<(AccessLevel, Option<i64>)>,
    now: i64,
) -> GroupResult<()> {
    let leaving = new.is_none() && user_id == viewer.id;
    if !leaving {
        require_member_manager(view)?;
    }
    let current = store
        .group_member(view.group.id, user_id)
        .await?
        .map(|m| m.membership.access_level);
    let Some(current) = current else {
        return Err(GroupError::NotFound("Member"));
    };
    if !leaving && !view.role.can_set_level(Some(current), new.map(|(l, _)| l)) {
        return Err(GroupError::Forbidden(
            "a Maintainer cannot change an Owner's membership or give the Owner role",
        ));
    }
    match store
        .change_group_member(view.group.id, user_id, new, now)
        .await?
    {
        MemberChange::Done => {
            tracing::info!(
                group_id = view.group.id,
                user_id,
                by = viewer.id,
                removed = new.is_none(),
                "group membership changed"
            );
            Ok(())
        }
        MemberChange::NotMember => Err(GroupError::NotFound("Member")),
        MemberChange::LastOwner => Err(GroupError::Forbidden(
            "a group must always have at least one Owner",
        )),
    }
}
