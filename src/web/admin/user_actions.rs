//! The buttons of a user's admin page, each a POST with the CSRF token that records an
//! audit event with its change: block, unblock, approve or reject a pending sign-up, send a
//! password-reset link, disable two-factor authentication (the way back for someone who
//! lost both their device and their recovery codes), and end one or every session.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};

use super::users::find;
use super::{Admin, TokenForm};
use crate::accounts::approval;
use crate::domain::audit::{Action, AuditEvent};
use crate::domain::user::{STATE_ACTIVE, STATE_BLOCKED, STATE_PENDING_APPROVAL, User};
use crate::http::client_ip::ClientIp;
use crate::state::AppState;
use crate::web::WebError;
use crate::web::csrf::Csrf;
use crate::web::form::WebForm;

/// What `POST /admin/users/<username>/<action>` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum UserAction {
    Block,
    Unblock,
    Approve,
    Reject,
    SendPasswordReset,
    DisableTwoFactor,
    EndSessions,
}

impl UserAction {
    fn parse(s: &str) -> Option<UserAction> {
        Some(match s {
            "block" => UserAction::Block,
            "unblock" => UserAction::Unblock,
            "approve" => UserAction::Approve,
            "reject" => UserAction::Reject,
            "send_password_reset" => UserAction::SendPasswordReset,
            "disable_two_factor" => UserAction::DisableTwoFactor,
            "end_sessions" => UserAction::EndSessions,
            _ => return None,
        })
    }
}

fn back(user: &User, notice: &str) -> Response {
    Redirect::to(&format!("/admin/users/{}?notice={notice}", user.username)).into_response()
}

fn refused(message: String) -> WebError {
    WebError::BadRequest(message)
}

/// `POST /admin/users/<username>/<action>`.
pub async fn act(
    State(state): State<AppState>,
    admin: Admin,
    csrf: Csrf,
    ClientIp(ip): ClientIp,
    Path((username, action)): Path<(String, String)>,
    WebForm(form): WebForm<TokenForm>,
) -> Result<Response, WebError> {
    let action = UserAction::parse(&action).ok_or(WebError::NotFound)?;
    csrf.verify(&form.authenticity_token)?;
    let user = find(&state, &username).await?;
    let me = admin.user();
    let now = state.clock.now();
    let about = |action| {
        AuditEvent::about_user(action, Some(me.id), user.id, &user.username).from_ip(ip.to_string())
    };
    let name = &user.username;
    match action {
        UserAction::Block => {
            if user.id == me.id {
                return Err(refused("You cannot block yourself.".into()));
            }
            if user.state == STATE_BLOCKED {
                return Err(refused(format!("{name} is already blocked.")));
            }
            let audit = about(Action::UserBlocked);
            state
                .store
                .set_user_state(user.id, STATE_BLOCKED, &audit, now)
                .await?;
            Ok(back(&user, "blocked"))
        }
        UserAction::Unblock => {
            if user.state != STATE_BLOCKED {
                return Err(refused(format!(
                    "{name} is not blocked (pending sign-ups are approved, not unblocked)."
                )));
            }
            let audit = about(Action::UserUnblocked);
            state
                .store
                .set_user_state(user.id, STATE_ACTIVE, &audit, now)
                .await?;
            Ok(back(&user, "unblocked"))
        }
        UserAction::Approve => {
            if user.state != STATE_PENDING_APPROVAL
                || !approval::approve(&state, me, &user, ip).await?
            {
                return Err(refused(format!("{name} is not pending approval.")));
            }
            Ok(back(&user, "approved"))
        }
        UserAction::Reject => {
            if user.state != STATE_PENDING_APPROVAL
                || !approval::reject(&state, me, &user, ip).await?
            {
                return Err(refused(format!("{name} is not pending approval.")));
            }
            Ok(Redirect::to("/admin/users?filter=blocked_pending_approval").into_response())
        }
        UserAction::SendPasswordReset => {
            if !user.is_active() {
                return Err(refused(format!(
                    "{name} is not active: unblock or approve them first."
                )));
            }
            crate::accounts::links::send_password_reset(
                &state,
                &user,
                &ip.to_string(),
                Some(me.id),
            )
            .await
            .map_err(|e| WebError::Internal(e.to_string()))?;
            tracing::info!(
                user_id = user.id,
                by = me.id,
                "password reset sent by an administrator"
            );
            Ok(back(&user, "reset_sent"))
        }
        UserAction::DisableTwoFactor => {
            if !user.two_factor_enabled {
                return Err(refused(format!(
                    "{name} does not use two-factor authentication."
                )));
            }
            let audit = about(Action::TwoFactorDisabled);
            crate::two_factor::disable(&state, &user, None, &audit)
                .await
                .map_err(|e| match e {
                    crate::two_factor::TwoFactorError::Store(e) => WebError::from(e),
                    other => WebError::Internal(other.to_string()),
                })?;
            Ok(back(&user, "two_factor_disabled"))
        }
        UserAction::EndSessions => {
            let audit = about(Action::SessionRevoked).with("sessions", "all");
            state
                .store
                .end_user_sessions(user.id, None, &audit, now)
                .await?;
            Ok(back(&user, "sessions_ended"))
        }
    }
}

/// `POST /admin/users/<username>/sessions/<id>/revoke`: ends one session of that user (an
/// id of another user's session is the same 404 as one that does not exist).
pub async fn end_session(
    State(state): State<AppState>,
    admin: Admin,
    csrf: Csrf,
    ClientIp(ip): ClientIp,
    Path((username, id)): Path<(String, String)>,
    WebForm(form): WebForm<TokenForm>,
) -> Result<Response, WebError> {
    csrf.verify(&form.authenticity_token)?;
    let session_id: i64 = id.parse().map_err(|_| WebError::NotFound)?;
    let user = find(&state, &username).await?;
    let audit = AuditEvent::about_user(
        Action::SessionRevoked,
        Some(admin.user().id),
        user.id,
        &user.username,
    )
    .from_ip(ip.to_string())
    .with("session_id", session_id);
    let ended = state
        .store
        .end_user_session(user.id, session_id, &audit, state.clock.now())
        .await?;
    if !ended {
        return Err(WebError::NotFound);
    }
    Ok(back(&user, "session_ended"))
}
