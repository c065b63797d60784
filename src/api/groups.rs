//! `/groups`: GitLab's groups API (`lib/api/groups.rb`) as python-gitlab and Grafana's
//! connector call it. `:id` is a numeric id or a URL-encoded full path. Reads are open to
//! `read_api` tokens and, for public groups, to anonymous requests; writes need `api`.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::auth::Caller;
use super::entities::group as group_entity;
use super::error::ApiError;
use super::input::{ApiInput, NoParams, gitlab_bool, parse_query, search_term};
use super::pagination::Page;
use crate::domain::group::{AccessLevel, Visibility};
use crate::domain::scope::access;
use crate::groups::{self, GroupInput};
use crate::state::AppState;
use crate::store::groups::{GroupFilter, GroupOrder};

/// The list parameters GitLab documents for `GET /groups`, `/subgroups` and
/// `/descendant_groups`. Those about things Doorward has none of (projects, statistics,
/// custom attributes, LDAP, marked-for-deletion) are accepted and mean nothing.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
#[allow(
    dead_code,
    reason = "the IgnoredAny fields are accepted on purpose and never read"
)]
struct ListQuery {
    page: Option<i64>,
    per_page: Option<i64>,
    search: Option<String>,
    #[serde(default, deserialize_with = "gitlab_bool")]
    owned: Option<bool>,
    min_access_level: Option<i64>,
    #[serde(default, deserialize_with = "gitlab_bool")]
    all_available: Option<bool>,
    #[serde(default, deserialize_with = "gitlab_bool")]
    top_level_only: Option<bool>,
    order_by: Option<String>,
    sort: Option<String>,
    statistics: Option<IgnoredAny>,
    with_custom_attributes: Option<IgnoredAny>,
    skip_groups: Option<IgnoredAny>,
    #[serde(rename = "skip_groups[]")]
    skip_groups_list: Option<IgnoredAny>,
    visibility: Option<String>,
    marked_for_deletion_on: Option<IgnoredAny>,
    repository_storage: Option<IgnoredAny>,
    active: Option<IgnoredAny>,
    pagination: Option<IgnoredAny>,
}

fn order(q: &ListQuery) -> Result<GroupOrder, ApiError> {
    let desc = match q.sort.as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => {
            return Err(ApiError::BadRequest(
                "sort does not have a valid value".into(),
            ));
        }
    };
    Ok(match (q.order_by.as_deref().unwrap_or("name"), desc) {
        ("name", false) => GroupOrder::NameAsc,
        ("name", true) => GroupOrder::NameDesc,
        ("path", false) => GroupOrder::PathAsc,
        ("path", true) => GroupOrder::PathDesc,
        ("id", false) => GroupOrder::IdAsc,
        ("id", true) => GroupOrder::IdDesc,
        _ => {
            return Err(ApiError::BadRequest(
                "order_by does not have a valid value".into(),
            ));
        }
    })
}

/// GitLab's `GroupsFinder`: by default a signed-in user lists the groups they belong to
/// (directly or through an ancestor) and an administrator every group; `all_available`
/// adds the internal and public ones; `min_access_level` keeps the groups where the
/// membership is at least that level (and their descendants); `owned` the groups owned
/// directly. Anonymous requests list public groups.
fn filter(caller: Option<&Caller>, q: &ListQuery) -> Result<GroupFilter, ApiError> {
    let min_level = match q.min_access_level {
        Some(l) => Some(
            AccessLevel::new(l)
                .ok_or_else(|| {
                    ApiError::BadRequest("min_access_level does not have a valid value".into())
                })?
                .value(),
        ),
        None => None,
    };
    let mut f = GroupFilter {
        min_level: min_level.unwrap_or(AccessLevel::MINIMAL_ACCESS.value()),
        owned: q.owned.unwrap_or(false),
        top_level_only: q.top_level_only.unwrap_or(false),
        search: search_term(q.search.as_deref())?,
        order: order(q)?,
        ..GroupFilter::default()
    };
    match caller {
        None => f.public = true,
        Some(c) => {
            f.member = Some(c.user.id);
            let membership_only = f.owned || min_level.is_some();
            let all = q.all_available.unwrap_or(c.user.is_admin);
            if !membership_only && all {
                f.everything = c.user.is_admin;
                f.public = true;
                f.internal = true;
            }
        }
    }
    if let Some(v) = &q.visibility {
        // GitLab's `visibility` filter narrows to one level.
        f.visibility = Some(Visibility::parse(v).ok_or_else(|| {
            ApiError::BadRequest("visibility does not have a valid value".into())
        })?);
    }
    Ok(f)
}

async fn list_with(
    state: &AppState,
    caller: Option<&Caller>,
    query: Option<&str>,
    scope: impl FnOnce(&mut GroupFilter),
    path: &str,
) -> Result<Response, ApiError> {
    if let Some(c) = caller {
        c.require_scope(access::READ_API)?;
    }
    let q: ListQuery = parse_query(query)?;
    let page = Page::new(q.page, q.per_page)?;
    let mut f = filter(caller, &q)?;
    scope(&mut f);
    let now = state.clock.now();
    let (groups, total) = state
        .store
        .list_groups(&f, now, page.per_page, page.offset())
        .await?;
    let base = &state.config.external_url;
    let body: Vec<_> = groups.iter().map(|g| group_entity(g, base)).collect();
    let mut kept = Vec::new();
    for (k, v) in [
        ("search", q.search.clone()),
        ("order_by", q.order_by.clone()),
        ("sort", q.sort.clone()),
        ("owned", q.owned.map(|b| b.to_string())),
        (
            "min_access_level",
            q.min_access_level.map(|l| l.to_string()),
        ),
        ("all_available", q.all_available.map(|b| b.to_string())),
        ("top_level_only", q.top_level_only.map(|b| b.to_string())),
        ("visibility", q.visibility.clone()),
    ] {
        if let Some(v) = v {
            kept.push((k.to_string(), v));
        }
    }
    let headers = page.headers(total, &format!("{base}/api/v4{path}"), &kept);
    Ok((headers, Json(body)).into_response())
}

/// `GET /groups`.
pub async fn list(
    State(state): State<AppState>,
    caller: Option<Caller>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    list_with(&state, caller.as_ref(), query.as_deref(), |_| {}, "/groups").await
}

/// The group `id` names, if the caller (or an anonymous request) may see it; a token
/// must allow reading (`read_api` or `api`).
pub(super) async fn visible(
    state: &AppState,
    caller: Option<&Caller>,
    id: &str,
) -> Result<groups::GroupView, ApiError> {
    if let Some(c) = caller {
        c.require_scope(access::READ_API)?;
    }
    Ok(groups::find(
        &state.store,
        id,
        caller.map(|c| &*c.user),
        state.clock.now(),
    )
    .await?)
}

/// Which groups below a group a list shows.
#[derive(Clone, Copy)]
enum Below {
    Children,
    Descendants,
}

async fn list_below(
    state: &AppState,
    caller: Option<&Caller>,
    id: &str,
    query: Option<&str>,
    below: Below,
) -> Result<Response, ApiError> {
    let group_id = visible(state, caller, id).await?.group.id;
    let (path, scope): (_, fn(&mut GroupFilter, i64)) = match below {
        Below::Children => ("subgroups", |f, id| f.parent_id = Some(id)),
        Below::Descendants => ("descendant_groups", |f, id| f.ancestor_id = Some(id)),
    };
    let path = format!("/groups/{group_id}/{path}");
    list_with(state, caller, query, |f| scope(f, group_id), &path).await
}

/// `GET /groups/:id/subgroups`: the children the caller may see.
pub async fn subgroups(
    State(state): State<AppState>,
    caller: Option<Caller>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    list_below(
        &state,
        caller.as_ref(),
        &id,
        query.as_deref(),
        Below::Children,
    )
    .await
}

/// `GET /groups/:id/descendant_groups`: every descendant the caller may see.
pub async fn descendant_groups(
    State(state): State<AppState>,
    caller: Option<Caller>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    list_below(
        &state,
        caller.as_ref(),
        &id,
        query.as_deref(),
        Below::Descendants,
    )
    .await
}

/// `GET /groups/:id`.
pub async fn show(
    State(state): State<AppState>,
    caller: Option<Caller>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let view = visible(&state, caller.as_ref(), &id).await?;
    Ok(Json(group_entity(&view.group, &state.config.external_url)).into_response())
}

/// `POST /groups` and `PUT /groups/:id` fields. GitLab has many more settings about
/// projects, runners and the like; those are accepted and mean nothing here.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(
    dead_code,
    reason = "the IgnoredAny fields are accepted on purpose and never read"
)]
pub struct GroupFields {
    name: Option<String>,
    path: Option<String>,
    description: Option<String>,
    visibility: Option<String>,
    parent_id: Option<i64>,
    avatar: Option<IgnoredAny>,
    default_branch_protection: Option<IgnoredAny>,
    lfs_enabled: Option<IgnoredAny>,
    request_access_enabled: Option<IgnoredAny>,
    project_creation_level: Option<IgnoredAny>,
    subgroup_creation_level: Option<IgnoredAny>,
    share_with_group_lock: Option<IgnoredAny>,
    require_two_factor_authentication: Option<IgnoredAny>,
    two_factor_grace_period: Option<IgnoredAny>,
    auto_devops_enabled: Option<IgnoredAny>,
    emails_disabled: Option<IgnoredAny>,
    emails_enabled: Option<IgnoredAny>,
    mentions_disabled: Option<IgnoredAny>,
}

impl GroupFields {
    fn input(self, parent_id: Option<Option<i64>>) -> GroupInput {
        GroupInput {
            name: self.name,
            path: self.path,
            description: self.description,
            visibility: self.visibility,
            parent_id,
        }
    }
}

/// `POST /groups`: 201 with the group; its creator is its direct Owner.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiInput(fields): ApiInput<GroupFields>,
) -> Result<Response, ApiError> {
    caller.require_scope(access::WRITE_API)?;
    let mut missing = Vec::new();
    if fields.name.is_none() {
        missing.push("name is missing");
    }
    if fields.path.is_none() {
        missing.push("path is missing");
    }
    if !missing.is_empty() {
        return Err(ApiError::BadRequest(missing.join(", ")));
    }
    let parent = fields.parent_id;
    let group = groups::create(
        &state.store,
        &caller.user,
        &fields.input(Some(parent)),
        state.clock.now(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(group_entity(&group, &state.config.external_url)),
    )
        .into_response())
}

/// `PUT /groups/:id`: name, path (moving every descendant's full path), description,
/// visibility, parent.
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiInput(fields): ApiInput<GroupFields>,
) -> Result<Response, ApiError> {
    caller.require_scope(access::WRITE_API)?;
    let view = visible(&state, Some(&caller), &id).await?;
    let parent = fields.parent_id.map(Some);
    let group = groups::update(
        &state.store,
        &caller.user,
        &view,
        &fields.input(parent),
        state.clock.now(),
    )
    .await?;
    Ok(Json(group_entity(&group, &state.config.external_url)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferFields {
    group_id: Option<i64>,
}

/// `POST /groups/:id/transfer`: under `group_id`, or to the top level without it; 201.
pub async fn transfer(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiInput(fields): ApiInput<TransferFields>,
) -> Result<Response, ApiError> {
    caller.require_scope(access::WRITE_API)?;
    let view = visible(&state, Some(&caller), &id).await?;
    let input = GroupInput {
        parent_id: Some(fields.group_id),
        ..GroupInput::default()
    };
    let group =
        groups::update(&state.store, &caller.user, &view, &input, state.clock.now()).await?;
    Ok((
        StatusCode::CREATED,
        Json(group_entity(&group, &state.config.external_url)),
    )
        .into_response())
}

/// `DELETE /groups/:id`: 202, as GitLab (which deletes later; Doorward at once), with
/// every subgroup and membership.
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    _: NoParams,
) -> Result<Response, ApiError> {
    caller.require_scope(access::WRITE_API)?;
    let view = visible(&state, Some(&caller), &id).await?;
    groups::delete(&state.store, &caller.user, &view).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"message": "202 Accepted"})),
    )
        .into_response())
}
