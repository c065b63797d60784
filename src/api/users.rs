//! `/user` and `/users`: GitLab's user endpoints (`lib/api/users.rb`).

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::auth::Caller;
use super::entities::{user_admin, user_basic, user_public, user_self};
use super::error::ApiError;
use super::input::{ApiInput, NoParams, gitlab_bool, parse_query, search_term};
use super::pagination::Page;
use crate::accounts::{self, AccountError};
use crate::domain::audit::{Action, AuditEvent};
use crate::domain::scope::access;
use crate::domain::secret::{self, SecretString};
use crate::domain::user::{NewUser, Profile, STATE_ACTIVE, STATE_BLOCKED};
use crate::http::client_ip::ClientIp;
use crate::state::AppState;
use crate::store::users::UserFilter;

/// `GET /user`: the token's owner; administrators get the admin entity.
pub async fn current_user(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.require_scope(access::READ_USER)?;
    let base = &state.config.external_url;
    let body = if caller.user.is_admin {
        user_admin(&caller.user, base)
    } else {
        user_self(&caller.user, base)
    };
    Ok(Json(body).into_response())
}

/// The `GET /users` parameters Doorward understands. Filters GitLab has for kinds of users
/// Doorward has none of (bots, internal or external users) are accepted and mean nothing.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
#[allow(
    dead_code,
    reason = "the IgnoredAny fields are accepted on purpose and never read"
)]
struct ListQuery {
    page: Option<i64>,
    per_page: Option<i64>,
    username: Option<String>,
    search: Option<String>,
    #[serde(default, deserialize_with = "gitlab_bool")]
    active: Option<bool>,
    #[serde(default, deserialize_with = "gitlab_bool")]
    blocked: Option<bool>,
    order_by: Option<String>,
    sort: Option<String>,
    exclude_internal: Option<IgnoredAny>,
    exclude_external: Option<IgnoredAny>,
    without_project_bots: Option<IgnoredAny>,
    humans: Option<IgnoredAny>,
    with_custom_attributes: Option<IgnoredAny>,
}

/// `GET /users`: any authenticated user may list; only administrators see private fields
/// and may search by email.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    caller.require_scope(access::READ_USER)?;
    let q: ListQuery = parse_query(query.as_deref())?;
    if q.order_by.as_deref().is_some_and(|o| o != "id")
        || q.sort.as_deref().is_some_and(|s| s != "asc")
    {
        return Err(ApiError::BadRequest(
            "only order_by=id and sort=asc are supported".into(),
        ));
    }
    let page = Page::new(q.page, q.per_page)?;
    let state_filter = match (q.active, q.blocked) {
        (Some(true), Some(true)) => {
            return Err(ApiError::BadRequest(
                "active and blocked are mutually exclusive".into(),
            ));
        }
        (Some(true), _) => Some(STATE_ACTIVE),
        (_, Some(true)) => Some(STATE_BLOCKED),
        _ => None,
    };
    let filter = UserFilter {
        username: q.username.clone(),
        search: search_term(q.search.as_deref())?,
        search_email: caller.user.is_admin,
        state: state_filter,
        ..UserFilter::default()
    };
    let (users, total) = state
        .store
        .list_users(&filter, page.per_page, page.offset())
        .await?;
    let base = &state.config.external_url;
    let body: Vec<_> = users
        .iter()
        .map(|u| {
            if caller.user.is_admin {
                user_admin(u, base)
            } else {
                user_basic(u, base)
            }
        })
        .collect();
    let mut kept = Vec::new();
    for (k, v) in [("username", &q.username), ("search", &q.search)] {
        if let Some(v) = v {
            kept.push((k.to_string(), v.clone()));
        }
    }
    for (k, v) in [("active", q.active), ("blocked", q.blocked)] {
        if let Some(v) = v {
            kept.push((k.to_string(), v.to_string()));
        }
    }
    let headers = page.headers(total, &format!("{base}/api/v4/users"), &kept);
    Ok((headers, Json(body)).into_response())
}

fn parse_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::NotFound("404 User Not Found".into()))
}

/// `GET /users/:id`.
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require_scope(access::READ_USER)?;
    let user = state
        .store
        .user_by_id(parse_id(&id)?)
        .await?
        .ok_or_else(|| ApiError::NotFound("404 User Not Found".into()))?;
    let base = &state.config.external_url;
    let body = if caller.user.is_admin {
        user_admin(&user, base)
    } else {
        user_public(&user, base)
    };
    Ok(Json(body).into_response())
}

/// `POST /users` fields. GitLab documents more; those that mean nothing here (no email
/// confirmation, no projects) are accepted and ignored, anything else is refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(
    dead_code,
    reason = "the IgnoredAny fields are accepted on purpose and never read"
)]
pub struct CreateUser {
    email: Option<String>,
    username: Option<String>,
    name: Option<String>,
    password: Option<String>,
    reset_password: Option<bool>,
    force_random_password: Option<bool>,
    admin: Option<bool>,
    #[serde(default)]
    bio: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    website_url: String,
    #[serde(default)]
    organization: String,
    #[serde(default)]
    job_title: String,
    #[serde(default)]
    public_email: String,
    /// GitLab's: the address counts as confirmed at once and no confirmation mail goes out.
    #[serde(default, deserialize_with = "gitlab_bool")]
    skip_confirmation: Option<bool>,
    projects_limit: Option<IgnoredAny>,
    can_create_group: Option<IgnoredAny>,
    external: Option<IgnoredAny>,
    private_profile: Option<IgnoredAny>,
    note: Option<IgnoredAny>,
    theme_id: Option<IgnoredAny>,
    color_scheme_id: Option<IgnoredAny>,
    linkedin: Option<IgnoredAny>,
    twitter: Option<IgnoredAny>,
    discord: Option<IgnoredAny>,
    skype: Option<IgnoredAny>,
    pronouns: Option<IgnoredAny>,
    commit_email: Option<IgnoredAny>,
}

/// `POST /users` (administrators): 201 with the new account.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    ApiInput(input): ApiInput<CreateUser>,
) -> Result<Response, ApiError> {
    caller.require_scope(access::WRITE_API)?;
    caller.require_admin()?;
    let missing: Vec<&str> = [
        ("email", &input.email),
        ("name", &input.name),
        ("username", &input.username),
    ]
    .iter()
    .filter(|(_, v)| v.is_none())
    .map(|(k, _)| *k)
    .collect();
    if !missing.is_empty() {
        let list: Vec<String> = missing.iter().map(|k| format!("{k} is missing")).collect();
        return Err(ApiError::BadRequest(list.join(", ")));
    }
    let random =
        input.reset_password.unwrap_or(false) || input.force_random_password.unwrap_or(false);
    let password = match (input.password, random) {
        (Some(p), false) => SecretString::new(p),
        // A password nobody knows; with `reset_password` the user gets a link to choose one
        // (GitLab's semantics), with `force_random_password` an administrator sets it later.
        (None, true) => SecretString::new(secret::base64url(&secret::random_bytes::<24>())),
        _ => {
            return Err(ApiError::BadRequest(
                "password, reset_password, force_random_password are missing, exactly one parameter must be provided"
                    .into(),
            ));
        }
    };
    let new_user = NewUser {
        username: input.username.unwrap_or_default().trim().to_string(),
        email: input.email.unwrap_or_default().trim().to_string(),
        name: input.name.unwrap_or_default().trim().to_string(),
        is_admin: input.admin.unwrap_or(false),
        profile: Profile {
            public_email: input.public_email.trim().to_string(),
            website_url: input.website_url.trim().to_string(),
            bio: input.bio.trim().to_string(),
            location: input.location.trim().to_string(),
            organization: input.organization.trim().to_string(),
            job_title: input.job_title.trim().to_string(),
        },
        confirmed: input.skip_confirmation.unwrap_or(false),
        state: crate::domain::user::STATE_ACTIVE,
    };
    let audit = AuditEvent::about_user(
        Action::UserCreated,
        Some(caller.user.id),
        0,
        &new_user.username,
    )
    .from_ip(ip.to_string());
    let created = accounts::create_account(&state, &new_user, &password, audit)
        .await
        .map_err(account_error)?;
    if input.reset_password.unwrap_or(false) {
        accounts::links::send_password_reset(
            &state,
            &created,
            &ip.to_string(),
            Some(caller.user.id),
        )
        .await
        .map_err(account_error)?;
    }
    tracing::info!(
        user_id = created.id,
        by = caller.user.id,
        "user created through the API"
    );
    Ok((
        StatusCode::CREATED,
        Json(user_admin(&created, &state.config.external_url)),
    )
        .into_response())
}

async fn set_state(
    state: &AppState,
    caller: &Caller,
    id: &str,
    new_state: &str,
    ip: std::net::IpAddr,
) -> Result<Response, ApiError> {
    caller.require_scope(access::WRITE_API)?;
    caller.require_admin()?;
    let id = parse_id(id)?;
    if id == caller.user.id && new_state == STATE_BLOCKED {
        return Err(ApiError::Forbidden(
            "403 Forbidden - You cannot block yourself".into(),
        ));
    }
    let Some(target) = state.store.user_by_id(id).await? else {
        return Err(ApiError::NotFound("404 User Not Found".into()));
    };
    let action = match new_state {
        STATE_BLOCKED => Action::UserBlocked,
        _ => Action::UserUnblocked,
    };
    let audit = AuditEvent::about_user(action, Some(caller.user.id), id, &target.username)
        .from_ip(ip.to_string());
    state
        .store
        .set_user_state(id, new_state, &audit, state.clock.now())
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotFound => ApiError::NotFound("404 User Not Found".into()),
            other => other.into(),
        })?;
    tracing::info!(
        user_id = id,
        by = caller.user.id,
        state = new_state,
        "user state changed"
    );
    // GitLab answers 201 with the bare JSON `true`; python-gitlab checks for exactly that.
    Ok((StatusCode::CREATED, Json(true)).into_response())
}

/// `POST /users/:id/block`: the account can no longer sign in or use its tokens, and its
/// sessions end at once.
pub async fn block(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ClientIp(ip): ClientIp,
    _: NoParams,
) -> Result<Response, ApiError> {
    set_state(&state, &caller, &id, STATE_BLOCKED, ip).await
}

/// `POST /users/:id/unblock`.
pub async fn unblock(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ClientIp(ip): ClientIp,
    _: NoParams,
) -> Result<Response, ApiError> {
    set_state(&state, &caller, &id, STATE_ACTIVE, ip).await
}

fn account_error(e: AccountError) -> ApiError {
    match e {
        AccountError::Invalid(errors) => ApiError::Validation(errors),
        AccountError::Store(e) => e.into(),
        AccountError::Hashing => ApiError::Internal("password hashing failed".into()),
        AccountError::Mail(crate::mail::MailError::Store(e)) => e.into(),
        AccountError::Mail(e) => ApiError::Internal(e.to_string()),
    }
}
