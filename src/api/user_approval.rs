//! `POST /users/:id/approve` and `POST /users/:id/reject`: GitLab's moderation of sign-ups
//! waiting for an administrator (`Users::ApproveService`, `Users::RejectService`; the
//! statuses as GitLab documents them in its user moderation API).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::auth::Caller;
use super::error::ApiError;
use super::input::NoParams;
use crate::accounts::approval;
use crate::domain::scope::access;
use crate::domain::user::{STATE_PENDING_APPROVAL, User};
use crate::http::client_ip::ClientIp;
use crate::state::AppState;

const NOT_PENDING_APPROVE: &str = "The user you are trying to approve is not pending approval";
const NOT_PENDING_REJECT: &str = "This user does not have a pending request";

fn user_not_found() -> ApiError {
    ApiError::NotFound("404 User Not Found".into())
}

/// The pending user `raw` names, for an administrator; the errors GitLab gives otherwise.
async fn target(state: &AppState, caller: &Caller, raw: &str) -> Result<User, ApiError> {
    caller.require_scope(access::WRITE_API)?;
    caller.require_admin()?;
    let id: i64 = raw.parse().map_err(|_| user_not_found())?;
    state.store.user_by_id(id).await?.ok_or_else(user_not_found)
}

/// `POST /users/:id/approve`: 201 `{"message": "Success"}`; 409 for an active user, 403
/// for one an administrator blocked (GitLab's documented answers).
pub async fn approve_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ClientIp(ip): ClientIp,
    _: NoParams,
) -> Result<Response, ApiError> {
    let user = target(&state, &caller, &id).await?;
    let refused = |user: &User| {
        if user.is_active() {
            ApiError::Conflict(NOT_PENDING_APPROVE.into())
        } else {
            ApiError::Forbidden(NOT_PENDING_APPROVE.into())
        }
    };
    if user.state != STATE_PENDING_APPROVAL {
        return Err(refused(&user));
    }
    if !approval::approve(&state, &caller.user, &user, ip).await? {
        // Changed since it was read: answer for the state it is in now.
        let now = state.store.user_by_id(user.id).await?;
        return Err(now.map_or_else(user_not_found, |u| refused(&u)));
    }
    Ok((StatusCode::CREATED, Json(json!({"message": "Success"}))).into_response())
}

/// `POST /users/:id/reject`: deletes a pending sign-up, 200 `{"message": "Success"}`; 409
/// for anyone not pending.
pub async fn reject_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ClientIp(ip): ClientIp,
    _: NoParams,
) -> Result<Response, ApiError> {
    let user = target(&state, &caller, &id).await?;
    if user.state != STATE_PENDING_APPROVAL
        || !approval::reject(&state, &caller.user, &user, ip).await?
    {
        return Err(ApiError::Conflict(NOT_PENDING_REJECT.into()));
    }
    Ok((StatusCode::OK, Json(json!({"message": "Success"}))).into_response())
}
