//! `/groups/:id/members` and `/users/:id/memberships`: GitLab's members API
//! (`lib/api/members.rb`, `lib/api/users.rb`) for groups.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::auth::Caller;
use super::entities::{member, membership};
use super::error::ApiError;
use super::groups::visible;
use super::input::{ApiInput, NoParams, parse_query};
use super::pagination::Page;
use crate::domain::scope::access;
use crate::groups;
use crate::state::AppState;
use crate::store::groups::Member;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
#[allow(
    dead_code,
    reason = "the IgnoredAny fields are accepted on purpose and never read"
)]
struct ListQuery {
    page: Option<i64>,
    per_page: Option<i64>,
    query: Option<String>,
    user_ids: Option<IgnoredAny>,
    #[serde(rename = "user_ids[]")]
    user_ids_list: Option<IgnoredAny>,
    skip_users: Option<IgnoredAny>,
    show_seat_info: Option<IgnoredAny>,
    state: Option<IgnoredAny>,
    pagination: Option<IgnoredAny>,
}

fn parse_user_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::NotFound("404 Member Not Found".into()))
}

/// One page of `members`, filtered by GitLab's `query` (username or name).
fn page_of(
    state: &AppState,
    members: Vec<Member>,
    query: Option<&str>,
    page: Page,
    path: &str,
) -> Response {
    let needle = query.map(str::to_lowercase).filter(|q| !q.is_empty());
    let matching: Vec<Member> = members
        .into_iter()
        .filter(|m| {
            needle.as_ref().is_none_or(|q| {
                m.user.username.to_lowercase().contains(q) || m.user.name.to_lowercase().contains(q)
            })
        })
        .collect();
    let total = i64::try_from(matching.len()).unwrap_or(i64::MAX);
    let base = &state.config.external_url;
    let body: Vec<_> = matching
        .iter()
        .skip(usize::try_from(page.offset()).unwrap_or(usize::MAX))
        .take(usize::try_from(page.per_page).unwrap_or(0))
        .map(|m| member(&m.user, &m.membership, base))
        .collect();
    let kept: Vec<(String, String)> = needle
        .map(|q| vec![("query".to_string(), q)])
        .unwrap_or_default();
    let headers = page.headers(total, &format!("{base}/api/v4{path}"), &kept);
    (headers, Json(body)).into_response()
}

/// `GET /groups/:id/members`: the direct members.
pub async fn list(
    State(state): State<AppState>,
    caller: Option<Caller>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let view = visible(&state, caller.as_ref(), &id).await?;
    let q: ListQuery = parse_query(query.as_deref())?;
    let page = Page::new(q.page, q.per_page)?;
    let members = state.store.group_members(view.group.id).await?;
    let path = format!("/groups/{}/members", view.group.id);
    Ok(page_of(&state, members, q.query.as_deref(), page, &path))
}

/// `GET /groups/:id/members/all`: direct and inherited members, each at their highest
/// unexpired level.
pub async fn list_all(
    State(state): State<AppState>,
    caller: Option<Caller>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let view = visible(&state, caller.as_ref(), &id).await?;
    let q: ListQuery = parse_query(query.as_deref())?;
    let page = Page::new(q.page, q.per_page)?;
    let members = state
        .store
        .group_members_all(view.group.id, state.clock.now())
        .await?;
    let path = format!("/groups/{}/members/all", view.group.id);
    Ok(page_of(&state, members, q.query.as_deref(), page, &path))
}

async fn one(members: Vec<Member>, user_id: &str, state: &AppState) -> Result<Response, ApiError> {
    let user_id = parse_user_id(user_id)?;
    let found = members
        .into_iter()
        .find(|m| m.user.id == user_id)
        .ok_or_else(|| ApiError::NotFound("404 Member Not Found".into()))?;
    Ok(Json(member(
        &found.user,
        &found.membership,
        &state.config.external_url,
    ))
    .into_response())
}

/// `GET /groups/:id/members/:user_id`: a direct member.
pub async fn show(
    State(state): State<AppState>,
    caller: Option<Caller>,
    Path((id, user_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let view = visible(&state, caller.as_ref(), &id).await?;
    let members = state.store.group_members(view.group.id).await?;
    one(members, &user_id, &state).await
}

/// `GET /groups/:id/members/all/:user_id`: a member, direct or inherited.
pub async fn show_all(
    State(state): State<AppState>,
    caller: Option<Caller>,
    Path((id, user_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let view = visible(&state, caller.as_ref(), &id).await?;
    let members = state
        .store
        .group_members_all(view.group.id, state.clock.now())
        .await?;
    one(members, &user_id, &state).await
}

/// `POST /groups/:id/members` and `PUT /groups/:id/members/:user_id` fields.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(
    dead_code,
    reason = "the IgnoredAny fields are accepted on purpose and never read"
)]
pub struct MemberFields {
    user_id: Option<i64>,
    username: Option<String>,
    access_level: Option<i64>,
    expires_at: Option<String>,
    invite_source: Option<IgnoredAny>,
    member_role_id: Option<IgnoredAny>,
}

/// `POST /groups/:id/members`: 201 with the member; 409 when already one.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiInput(fields): ApiInput<MemberFields>,
) -> Result<Response, ApiError> {
    caller.require_scope(access::WRITE_API)?;
    let view = visible(&state, Some(&caller), &id).await?;
    let now = state.clock.now();
    let user_id = match (fields.user_id, fields.username.as_deref()) {
        (Some(id), _) => id,
        (None, Some(username)) => {
            state
                .store
                .user_by_username(username)
                .await?
                .ok_or_else(|| ApiError::NotFound("404 User Not Found".into()))?
                .id
        }
        (None, None) => return Err(ApiError::BadRequest("user_id is missing".into())),
    };
    let level = groups::parse_level(
        fields
            .access_level
            .ok_or_else(|| ApiError::BadRequest("access_level is missing".into()))?,
    )?;
    let expires_at = groups::parse_expiry(fields.expires_at.as_deref(), now)?;
    let added = groups::add_member(
        &state.store,
        &caller.user,
        &view,
        user_id,
        level,
        expires_at,
        now,
    )
    .await?;
    let user = state
        .store
        .user_by_id(user_id)
        .await?
        .ok_or_else(|| ApiError::NotFound("404 User Not Found".into()))?;
    Ok((
        StatusCode::CREATED,
        Json(member(&user, &added, &state.config.external_url)),
    )
        .into_response())
}

/// `PUT /groups/:id/members/:user_id`: a new level and/or expiry.
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, user_id)): Path<(String, String)>,
    ApiInput(fields): ApiInput<MemberFields>,
) -> Result<Response, ApiError> {
    caller.require_scope(access::WRITE_API)?;
    let view = visible(&state, Some(&caller), &id).await?;
    let user_id = parse_user_id(&user_id)?;
    let now = state.clock.now();
    let current = state
        .store
        .group_member(view.group.id, user_id)
        .await?
        .ok_or_else(|| ApiError::NotFound("404 Member Not Found".into()))?;
    let level = match fields.access_level {
        Some(l) => groups::parse_level(l)?,
        None => current.membership.access_level,
    };
    let expires_at = match fields.expires_at.as_deref() {
        Some(text) => groups::parse_expiry(Some(text), now)?,
        None => current.membership.expires_at,
    };
    groups::change_member(
        &state.store,
        &caller.user,
        &view,
        user_id,
        Some((level, expires_at)),
        now,
    )
    .await?;
    let mut changed = current.membership;
    changed.access_level = level;
    changed.expires_at = expires_at;
    Ok(Json(member(&current.user, &changed, &state.config.external_url)).into_response())
}

/// `DELETE /groups/:id/members/:user_id`: 204; a member may remove themselves (leave).
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, user_id)): Path<(String, String)>,
    _: NoParams,
) -> Result<Response, ApiError> {
    caller.require_scope(access::WRITE_API)?;
    let view = visible(&state, Some(&caller), &id).await?;
    let user_id = parse_user_id(&user_id)?;
    groups::change_member(
        &state.store,
        &caller.user,
        &view,
        user_id,
        None,
        state.clock.now(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /users/:id/memberships` (administrators): the user's direct group memberships.
pub async fn of_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    caller.require_scope(access::READ_USER)?;
    caller.require_admin()?;
    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    struct Query {
        page: Option<i64>,
        per_page: Option<i64>,
        #[serde(rename = "type")]
        source_type: Option<String>,
    }
    let q: Query = parse_query(query.as_deref())?;
    let page = Page::new(q.page, q.per_page)?;
    let user_id: i64 = id
        .parse()
        .map_err(|_| ApiError::NotFound("404 User Not Found".into()))?;
    if state.store.user_by_id(user_id).await?.is_none() {
        return Err(ApiError::NotFound("404 User Not Found".into()));
    }
    // Doorward has no projects: `type=Project` lists nothing.
    let rows = match q.source_type.as_deref() {
        None | Some("Namespace") => state.store.memberships_of_user(user_id).await?,
        Some("Project") => Vec::new(),
        Some(_) => {
            return Err(ApiError::BadRequest(
                "type does not have a valid value".into(),
            ));
        }
    };
    let total = i64::try_from(rows.len()).unwrap_or(i64::MAX);
    let body: Vec<_> = rows
        .iter()
        .skip(usize::try_from(page.offset()).unwrap_or(usize::MAX))
        .take(usize::try_from(page.per_page).unwrap_or(0))
        .map(|(g, m)| membership(g, m))
        .collect();
    let base = &state.config.external_url;
    let headers = page.headers(
        total,
        &format!("{base}/api/v4/users/{user_id}/memberships"),
        &[],
    );
    Ok((headers, Json(body)).into_response())
}
