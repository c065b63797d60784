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
use crate::domain::audit::{Action, AuditEvent};
use crate::domain::scope::access;
use crate::domain::user::{STATE_PENDING_APPROVAL, User};
use crate::http::client_ip::ClientIp;
use crate::mail::Letter;
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

/// Approves `user` if pending, records it, and mails them; false when they were not
/// pending (another administrator got there first). Shared with the admin pages.
pub async fn approve(
    state: &AppState,
    admin: &User,
    user: &User,
    ip: std::net::IpAddr,
) -> Result<bool, crate::store::StoreError> {
    let audit = AuditEvent::about_user(
        Action::UserApproved,
        Some(admin.id),
        user.id,
        &user.username,
    )
    .from_ip(ip.to_string());
    let done = state
        .store
        .approve_pending_user(user.id, &audit, state.clock.now())
        .await?;
    if done {
        crate::accounts::notify(state, user, &Letter::AccountApproved).await;
        tracing::info!(user_id = user.id, by = admin.id, "sign-up approved");
    }
    Ok(done)
}

/// Deletes `user` if pending and records it; false when they were not pending. Shared
/// with the admin pages.
pub async fn reject(
    state: &AppState,
    admin: &User,
    user: &User,
    ip: std::net::IpAddr,
) -> Result<bool, crate::store::StoreError> {
    let audit = AuditEvent::about_user(
        Action::UserRejected,
        Some(admin.id),
        user.id,
        &user.username,
    )
    .from_ip(ip.to_string())
    .with("email", user.email.as_str());
    let done = state
        .store
        .reject_pending_user(user.id, &audit, state.clock.now())
        .await?;
    if done {
        tracing::info!(user_id = user.id, by = admin.id, "sign-up rejected");
    }
    Ok(done)
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
    if !approve(&state, &caller.user, &user, ip).await? {
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
    if user.state != STATE_PENDING_APPROVAL || !reject(&state, &caller.user, &user, ip).await? {
        return Err(ApiError::Conflict(NOT_PENDING_REJECT.into()));
    }
    Ok((StatusCode::OK, Json(json!({"message": "Success"}))).into_response())
}
