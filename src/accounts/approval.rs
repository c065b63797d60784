//! Approving and rejecting sign-ups that wait in GitLab's `blocked_pending_approval` state
//! (`DOORWARD_SIGNUP=approval`): shared by `POST /api/v4/users/:id/approve|reject` and the
//! admin area's buttons.

use crate::domain::audit::{Action, AuditEvent};
use crate::domain::user::User;
use crate::mail::Letter;
use crate::state::AppState;

/// Approves `user` if pending, records it, and mails them; false when they were not
/// pending (another administrator got there first).
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

/// Deletes `user` if pending and records it; false when they were not pending.
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
