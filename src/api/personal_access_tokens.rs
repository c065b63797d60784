//! `/personal_access_tokens`: GitLab's personal access token API
//! (`lib/api/personal_access_tokens.rb`, `personal_access_tokens/self_information.rb`):
//! list, show and revoke tokens. Tokens are created on the settings page or with the CLI.
//!
//! Users reach their own tokens; administrators reach everyone's. Someone else's token is
//! the same 404 as a token that does not exist, so ids reveal nothing (GitLab answers 401
//! or 400 there, which clients would read as a bad credential or a bad request).

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::auth::{Caller, TokenRef};
use super::entities::personal_access_token;
use super::error::ApiError;
use super::input::{NoParams, gitlab_bool, parse_query, search_term};
use super::pagination::Page;
use crate::domain::audit::{Action, AuditEvent};
use crate::domain::scope::access;
use crate::state::AppState;
use crate::store::personal_access_tokens::{PersonalAccessToken, TokenFilter};

const NOT_FOUND: &str = "404 Not Found";

fn not_found() -> ApiError {
    ApiError::NotFound(NOT_FOUND.into())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    page: Option<i64>,
    per_page: Option<i64>,
    user_id: Option<i64>,
    /// `active` or `inactive`.
    state: Option<String>,
    #[serde(default, deserialize_with = "gitlab_bool")]
    revoked: Option<bool>,
    search: Option<String>,
}

/// `GET /personal_access_tokens`: the caller's tokens; for administrators, as in GitLab,
/// every token of the instance unless `user_id` narrows it down. Non-administrators may
/// pass only their own `user_id`.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    caller.require_scope(access::READ_API)?;
    let q: ListQuery = parse_query(query.as_deref())?;
    let page = Page::new(q.page, q.per_page)?;
    let user_id = if caller.user.is_admin {
        q.user_id
    } else if q.user_id.is_none_or(|id| id == caller.user.id) {
        Some(caller.user.id)
    } else {
        // GitLab answers 401 here; the caller is authenticated, only not allowed.
        return Err(ApiError::Forbidden("403 Forbidden".into()));
    };
    let active = match q.state.as_deref() {
        None => None,
        Some("active") => Some(true),
        Some("inactive") => Some(false),
        Some(_) => {
            return Err(ApiError::BadRequest(
                "state does not have a valid value".into(),
            ));
        }
    };
    let filter = TokenFilter {
        user_id,
        active,
        revoked: q.revoked,
        search: search_term(q.search.as_deref())?,
    };
    let now = state.clock.now();
    let (tokens, total) = state
        .store
        .list_personal_access_tokens(&filter, now, page.per_page, page.offset())
        .await?;
    let body: Vec<_> = tokens
        .iter()
        .map(|t| personal_access_token(t, now))
        .collect();
    let mut kept = Vec::new();
    if let Some(id) = q.user_id {
        kept.push(("user_id".to_string(), id.to_string()));
    }
    for (k, v) in [("state", &q.state), ("search", &q.search)] {
        if let Some(v) = v {
            kept.push((k.to_string(), v.clone()));
        }
    }
    if let Some(revoked) = q.revoked {
        kept.push(("revoked".to_string(), revoked.to_string()));
    }
    let url = format!(
        "{}/api/v4/personal_access_tokens",
        state.config.external_url
    );
    Ok((page.headers(total, &url, &kept), Json(body)).into_response())
}

/// The token `raw` names, if the caller may see it: their own, or any for an administrator.
async fn reachable_token(
    state: &AppState,
    caller: &Caller,
    raw: &str,
) -> Result<PersonalAccessToken, ApiError> {
    let id: i64 = raw.parse().map_err(|_| not_found())?;
    state
        .store
        .personal_access_token_by_id(id)
        .await?
        .filter(|t| caller.user.is_admin || t.user_id == caller.user.id)
        .ok_or_else(not_found)
}

/// The id of the personal access token that authenticated this request. GitLab's `self`
/// endpoints accept any scope, since a token may always look at or revoke itself, but only
/// a personal access token has a `self` here.
fn own_token_id(caller: &Caller) -> Result<i64, ApiError> {
    match caller.token {
        TokenRef::Personal { id } => Ok(id),
        TokenRef::OAuth { .. } => Err(ApiError::BadRequest(
            "This endpoint requires token type to be a personal access token".into(),
        )),
    }
}

/// `GET /personal_access_tokens/:id`.
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require_scope(access::READ_API)?;
    let token = reachable_token(&state, &caller, &id).await?;
    Ok(Json(personal_access_token(&token, state.clock.now())).into_response())
}

/// `GET /personal_access_tokens/self`: the token used for this request.
pub async fn show_self(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let id = own_token_id(&caller)?;
    let token = state
        .store
        .personal_access_token_by_id(id)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(personal_access_token(&token, state.clock.now())).into_response())
}

async fn revoke(
    state: &AppState,
    caller: &Caller,
    token: &PersonalAccessToken,
) -> Result<Response, ApiError> {
    let owner = match token.user_id == caller.user.id {
        true => caller.user.username.clone(),
        false => state
            .store
            .user_by_id(token.user_id)
            .await?
            .map(|u| u.username)
            .unwrap_or_default(),
    };
    let audit = AuditEvent::about_user(
        Action::PersonalAccessTokenRevoked,
        Some(caller.user.id),
        token.user_id,
        &owner,
    );
    state
        .store
        .revoke_personal_access_token(token.id, token.user_id, &audit, state.clock.now())
        .await?;
    tracing::info!(
        token_id = token.id,
        user_id = token.user_id,
        by = caller.user.id,
        "personal access token revoked through the API"
    );
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /personal_access_tokens/:id`: 204; the token stops working at once. Revoking a
/// revoked token again is also 204, as in GitLab.
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    _: NoParams,
) -> Result<Response, ApiError> {
    caller.require_scope(access::WRITE_API)?;
    let token = reachable_token(&state, &caller, &id).await?;
    revoke(&state, &caller, &token).await
}

/// `DELETE /personal_access_tokens/self`: the token used for this request revokes itself,
/// whatever its scopes (a leaked read-only token can still be killed by whoever holds it).
pub async fn delete_self(
    State(state): State<AppState>,
    caller: Caller,
    _: NoParams,
) -> Result<Response, ApiError> {
    let id = own_token_id(&caller)?;
    let token = state
        .store
        .personal_access_token_by_id(id)
        .await?
        .ok_or_else(not_found)?;
    revoke(&state, &caller, &token).await
}
