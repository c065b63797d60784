//! The group pages, at GitLab's paths: `/dashboard/groups` (my groups), `/groups/new`
//! (a group or, with `parent_id`, a subgroup), `/groups/<full_path>` (description,
//! subgroups, members), `/groups/<full_path>/-/edit`, and the member forms. The rules are
//! `crate::groups`'; every form carries the CSRF token.

use axum::extract::{Path, Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::applications::{self, AppScope};
use super::csrf::Csrf;
use super::form::{WebForm, WebFormPairs};
use super::session::nav;
use super::session::{CurrentUser, MaybeUser};
use super::{WebError, page_with_status};
use crate::domain::clock::{date, human};
use crate::domain::group::{AccessLevel, Group};
use crate::domain::user::User;
use crate::groups::{self, GroupError, GroupInput, GroupView};
use crate::state::AppState;
use crate::store::groups::GroupFilter;

impl From<GroupError> for WebError {
    fn from(e: GroupError) -> Self {
        match e {
            GroupError::NotFound(_) => WebError::NotFound,
            GroupError::Forbidden(why) => {
                WebError::Forbidden(format!("You cannot do this: {why}."))
            }
            GroupError::Invalid(errors) => WebError::BadRequest(errors.sentences().join(" ")),
            GroupError::BadRequest(m) => WebError::BadRequest(m),
            GroupError::Conflict(m) => WebError::BadRequest(m.into()),
            GroupError::Store(e) => e.into(),
        }
    }
}

fn group_link(g: &Group) -> String {
    format!("/groups/{}", g.full_path)
}

fn group_view(g: &Group) -> minijinja::Value {
    minijinja::context! {
        id => g.id,
        name => &g.name,
        path => &g.path,
        full_path => &g.full_path,
        description => &g.description,
        visibility => g.visibility.as_str(),
        link => group_link(g),
        parent_id => g.parent_id,
    }
}

fn levels() -> Vec<minijinja::Value> {
    AccessLevel::ALL
        .iter()
        .map(|l| minijinja::context! { value => l.value(), name => l.name() })
        .collect()
}

/// `GET /dashboard/groups`: the groups the user belongs to, directly or through an
/// ancestor, by full path.
pub async fn dashboard(
    State(state): State<AppState>,
    current_user: CurrentUser,
    csrf: Csrf,
) -> Result<Response, WebError> {
    let user = &current_user.user;
    let filter = GroupFilter {
        member: Some(user.id),
        order: crate::store::groups::GroupOrder::PathAsc,
        ..GroupFilter::default()
    };
    let (mut mine, _) = state
        .store
        .list_groups(&filter, state.clock.now(), 1000, 0)
        .await?;
    mine.sort_by(|a, b| a.full_path.cmp(&b.full_path));
    state.templates.render(
        "groups.html",
        minijinja::context! {
            title => "Groups",
            current_user => nav(user),
            csrf_token => csrf.token(),
            groups => mine.iter().map(group_view).collect::<Vec<_>>(),
        },
    )
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct NewQuery {
    parent_id: Option<i64>,
}

/// The fields of the group form.
#[derive(Deserialize, Default, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct GroupForm {
    #[serde(default, skip_serializing)]
    authenticity_token: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    path: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    visibility: String,
    parent_id: Option<i64>,
}

fn render_form(
    state: &AppState,
    user: &User,
    csrf: &Csrf,
    form: &GroupForm,
    parent: Option<&Group>,
    errors: Vec<String>,
) -> Result<Response, WebError> {
    state.templates.render(
        "group_new.html",
        minijinja::context! {
            title => if parent.is_some() { "New subgroup" } else { "New group" },
            current_user => nav(user),
            csrf_token => csrf.token(),
            form => minijinja::Value::from(minijinja::value::Serde(form)),
            parent => parent.map(group_view),
            errors,
        },
    )
}

/// `GET /groups/new[?parent_id=N]`.
pub async fn new_form(
    State(state): State<AppState>,
    current_user: CurrentUser,
    csrf: Csrf,
    Query(q): Query<NewQuery>,
) -> Result<Response, WebError> {
    let user = &current_user.user;
    let parent = match q.parent_id {
        Some(id) => Some(
            groups::find(&state.store, &id.to_string(), Some(user), state.clock.now())
                .await?
                .group,
        ),
        None => None,
    };
    let form = GroupForm {
        visibility: "private".into(),
        parent_id: q.parent_id,
        ..GroupForm::default()
    };
    render_form(&state, user, &csrf, &form, parent.as_ref(), Vec::new())
}

/// `POST /groups`: creates the group and goes to its page.
pub async fn create(
    State(state): State<AppState>,
    current_user: CurrentUser,
    csrf: Csrf,
    WebForm(form): WebForm<GroupForm>,
) -> Result<Response, WebError> {
    csrf.verify(&form.authenticity_token)?;
    let user = &current_user.user;
    let input = GroupInput {
        name: Some(form.name.clone()),
        path: Some(form.path.clone()),
        description: Some(form.description.clone()),
        visibility: Some(form.visibility.clone()),
        parent_id: Some(form.parent_id),
    };
    match groups::create(&state.store, user, &input, state.clock.now()).await {
        Ok(group) => Ok(Redirect::to(&group_link(&group)).into_response()),
        Err(GroupError::Invalid(errors)) => {
            let parent = match form.parent_id {
                Some(id) => state.store.group_by_id(id).await?,
                None => None,
            };
            let page = render_form(
                &state,
                user,
                &csrf,
                &form,
                parent.as_ref(),
                errors.sentences(),
            );
            Ok(page_with_status(StatusCode::UNPROCESSABLE_ENTITY, page))
        }
        Err(e) => Err(e.into()),
    }
}

/// What follows a group's full path in a page URL (GitLab puts `/-/` between them).
enum GroupPage {
    Show,
    Edit,
    Delete,
    Leave,
    AddMember,
    ChangeMember(i64),
    RemoveMember(i64),
    /// GitLab's group Settings → Applications, and one application's page and actions.
    Applications,
    Application(String),
    RenewSecret(String),
    DeleteApplication(String),
}

fn split(rest: &str) -> Result<(&str, GroupPage), WebError> {
    let Some((path, action)) = rest.split_once("/-/") else {
        return Ok((rest, GroupPage::Show));
    };
    let member = |id: &str| id.parse::<i64>().map_err(|_| WebError::NotFound);
    let page = match action.split('/').collect::<Vec<_>>().as_slice() {
        ["edit"] => GroupPage::Edit,
        ["delete"] => GroupPage::Delete,
        ["leave"] => GroupPage::Leave,
        ["group_members"] => GroupPage::AddMember,
        ["group_members", id] => GroupPage::ChangeMember(member(id)?),
        ["group_members", id, "delete"] => GroupPage::RemoveMember(member(id)?),
        ["settings", "applications"] => GroupPage::Applications,
        ["settings", "applications", id] => GroupPage::Application((*id).to_string()),
        ["settings", "applications", id, "renew_secret"] => {
            GroupPage::RenewSecret((*id).to_string())
        }
        ["settings", "applications", id, "delete"] => {
            GroupPage::DeleteApplication((*id).to_string())
        }
        _ => return Err(WebError::NotFound),
    };
    Ok((path, page))
}

async fn render_group(
    state: &AppState,
    user: Option<&User>,
    csrf: &Csrf,
    view: &GroupView,
    notice: Option<&str>,
) -> Result<Response, WebError> {
    let now = state.clock.now();
    let g = &view.group;
    let filter = GroupFilter {
        everything: view.role.admin,
        public: true,
        internal: user.is_some(),
        member: user.map(|u| u.id),
        parent_id: Some(g.id),
        ..GroupFilter::default()
    };
    let (subgroups, _) = state.store.list_groups(&filter, now, 1000, 0).await?;
    let members = state.store.group_members(g.id).await?;
    let manage = view.role.can_manage_members();
    let member_rows: Vec<_> = members
        .iter()
        .map(|m| {
            let level = m.membership.access_level;
            minijinja::context! {
                id => m.user.id,
                username => &m.user.username,
                name => &m.user.name,
                level => level.value(),
                level_name => level.name(),
                expires_at => m.membership.expires_at.map(date),
                expired => m.membership.expires_at.is_some_and(|at| at <= now),
                since => human(m.membership.created_at),
                editable => manage && view.role.can_set_level(Some(level), Some(level)),
                is_me => user.is_some_and(|u| u.id == m.user.id),
            }
        })
        .collect();
    state.templates.render(
        "group.html",
        minijinja::context! {
            title => &g.name,
            current_user => user.map(nav),
            csrf_token => csrf.token(),
            group => group_view(g),
            subgroups => subgroups.iter().map(group_view).collect::<Vec<_>>(),
            members => member_rows,
            my_level => view.role.level.map(AccessLevel::name),
            is_direct_member => user.is_some_and(|u| members.iter().any(|m| m.user.id == u.id)),
            can_admin => view.role.can_admin_group(),
            can_manage => manage,
            levels => levels(),
            notice,
        },
    )
}

/// The group's application settings are for its Owners only (GitLab), signed in.
fn owner_scope<'a>(
    user: Option<&'a User>,
    view: &'a GroupView,
    rest: &str,
) -> Result<AppScope<'a>, WebError> {
    let Some(user) = user else {
        return Err(WebError::SignInRequired(format!("/groups/{rest}")));
    };
    groups::require_owner(view)?;
    Ok(AppScope::Group {
        user,
        group: &view.group,
    })
}

/// `GET /groups/<full_path>`, `…/-/edit`, `…/-/settings/applications[/<id>]`.
pub async fn show(
    State(state): State<AppState>,
    maybe: MaybeUser,
    csrf: Csrf,
    Path(rest): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let (path, page) = split(&rest)?;
    let user = maybe.0.as_ref().map(|c| &c.user);
    let view = groups::find(&state.store, path, user, state.clock.now()).await?;
    match page {
        GroupPage::Show => render_group(&state, user, &csrf, &view, None).await,
        GroupPage::Applications => {
            let scope = owner_scope(user, &view, &rest)?;
            applications::list_in(&state, &scope, &csrf, query.as_deref()).await
        }
        GroupPage::Application(id) => {
            let scope = owner_scope(user, &view, &rest)?;
            applications::show_in(&state, &scope, &csrf, &id).await
        }
        GroupPage::Edit => {
            let Some(user) = user else {
                return Err(WebError::SignInRequired(format!("/groups/{rest}")));
            };
            groups::require_owner(&view)?;
            let g = &view.group;
            let form = GroupForm {
                name: g.name.clone(),
                path: g.path.clone(),
                description: g.description.clone(),
                visibility: g.visibility.as_str().into(),
                parent_id: g.parent_id,
                ..GroupForm::default()
            };
            render_edit(&state, user, &csrf, &view, &form, Vec::new())
        }
        _ => Err(WebError::NotFound),
    }
}

fn render_edit(
    state: &AppState,
    user: &User,
    csrf: &Csrf,
    view: &GroupView,
    form: &GroupForm,
    errors: Vec<String>,
) -> Result<Response, WebError> {
    state.templates.render(
        "group_edit.html",
        minijinja::context! {
            title => format!("Edit {}", view.group.name),
            current_user => nav(user),
            csrf_token => csrf.token(),
            group => group_view(&view.group),
            form => minijinja::Value::from(minijinja::value::Serde(form)),
            errors,
        },
    )
}

/// Every POST to a group page: the form's fields by page.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct GroupAction {
    #[serde(default)]
    authenticity_token: String,
    name: Option<String>,
    path: Option<String>,
    description: Option<String>,
    visibility: Option<String>,
    username: Option<String>,
    access_level: Option<i64>,
    expires_at: Option<String>,
}

/// `POST /groups/<full_path>/-/…`: edit, delete, leave, add, change or remove a member;
/// register, edit, renew the secret of or delete a group application.
pub async fn act(
    State(state): State<AppState>,
    current_user: CurrentUser,
    csrf: Csrf,
    Path(rest): Path<String>,
    WebFormPairs(pairs): WebFormPairs,
) -> Result<Response, WebError> {
    let (path, page) = split(&rest)?;
    let user = &current_user.user;
    let now = state.clock.now();
    let view = groups::find(&state.store, path, Some(user), now).await?;
    // The application forms (with their repeated `scopes[]`) are read by their own page.
    match &page {
        GroupPage::Applications => {
            let scope = owner_scope(Some(user), &view, &rest)?;
            return applications::create_in(&state, &scope, &csrf, pairs).await;
        }
        GroupPage::Application(id) => {
            let scope = owner_scope(Some(user), &view, &rest)?;
            return applications::update_in(&state, &scope, &csrf, id, pairs).await;
        }
        GroupPage::RenewSecret(id) | GroupPage::DeleteApplication(id) => {
            let scope = owner_scope(Some(user), &view, &rest)?;
            let form: applications::TokenForm = strict(&pairs)?;
            return if matches!(page, GroupPage::RenewSecret(_)) {
                applications::renew_secret_in(&state, &scope, &csrf, id, &form.authenticity_token)
                    .await
            } else {
                applications::delete_in(&state, &scope, &csrf, id, &form.authenticity_token).await
            };
        }
        _ => {}
    }
    let form: GroupAction = strict(&pairs)?;
    csrf.verify(&form.authenticity_token)?;
    let back = group_link(&view.group);
    match page {
        GroupPage::Show
        | GroupPage::Applications
        | GroupPage::Application(_)
        | GroupPage::RenewSecret(_)
        | GroupPage::DeleteApplication(_) => Err(WebError::NotFound),
        GroupPage::Edit => {
            let input = GroupInput {
                name: form.name.clone(),
                path: form.path.clone(),
                description: form.description.clone(),
                visibility: form.visibility.clone(),
                parent_id: None,
            };
            match groups::update(&state.store, user, &view, &input, now).await {
                Ok(saved) => Ok(Redirect::to(&group_link(&saved)).into_response()),
                Err(GroupError::Invalid(errors)) => {
                    let shown = GroupForm {
                        name: form.name.unwrap_or_default(),
                        path: form.path.unwrap_or_default(),
                        description: form.description.unwrap_or_default(),
                        visibility: form.visibility.unwrap_or_default(),
                        parent_id: view.group.parent_id,
                        ..GroupForm::default()
                    };
                    let page = render_edit(&state, user, &csrf, &view, &shown, errors.sentences());
                    Ok(page_with_status(StatusCode::UNPROCESSABLE_ENTITY, page))
                }
                Err(e) => Err(e.into()),
            }
        }
        GroupPage::Delete => {
            groups::delete(&state.store, user, &view).await?;
            Ok(Redirect::to("/dashboard/groups").into_response())
        }
        GroupPage::Leave => {
            groups::change_member(&state.store, user, &view, user.id, None, now).await?;
            Ok(Redirect::to("/dashboard/groups").into_response())
        }
        GroupPage::AddMember => {
            let username = form.username.as_deref().unwrap_or_default().trim();
            let member = state
                .store
                .user_by_username(username)
                .await?
                .ok_or_else(|| WebError::BadRequest(format!("There is no user {username:?}.")))?;
            let level = groups::parse_level(form.access_level.unwrap_or_default())?;
            let expires_at = groups::parse_expiry(form.expires_at.as_deref(), now)?;
            groups::add_member(&state.store, user, &view, member.id, level, expires_at, now)
                .await?;
            Ok(Redirect::to(&back).into_response())
        }
        GroupPage::ChangeMember(member_id) => {
            let level = groups::parse_level(form.access_level.unwrap_or_default())?;
            let expires_at = groups::parse_expiry(form.expires_at.as_deref(), now)?;
            groups::change_member(
                &state.store,
                user,
                &view,
                member_id,
                Some((level, expires_at)),
                now,
            )
            .await?;
            Ok(Redirect::to(&back).into_response())
        }
        GroupPage::RemoveMember(member_id) => {
            groups::change_member(&state.store, user, &view, member_id, None, now).await?;
            if member_id == user.id {
                return Ok(Redirect::to("/dashboard/groups").into_response());
            }
            Ok(Redirect::to(&back).into_response())
        }
    }
}

/// The pairs of a form read as strictly as `WebForm` reads a body (unknown or repeated
/// fields refused).
fn strict<T: serde::de::DeserializeOwned>(pairs: &[(String, String)]) -> Result<T, WebError> {
    let mut body = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        body.append_pair(k, v);
    }
    crate::http::body::parse_form(body.finish().as_bytes()).map_err(super::form::bad)
}
