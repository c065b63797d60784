//! `/admin/users/<username>`: a user as an administrator sees them: their state and role,
//! the buttons that state allows (`user_actions`), their live sessions, personal access
//! tokens and authorized applications.

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;

use super::users::{find, user_view};
use super::{Admin, nav, param, query_pairs};
use crate::domain::clock::{date, human};
use crate::state::AppState;
use crate::web::WebError;
use crate::web::csrf::Csrf;

/// The notices a redirect back to a user's page may ask for, from a fixed list, so the URL
/// cannot put arbitrary text on the page.
fn notice(query: Option<&str>) -> Option<&'static str> {
    let pairs = query_pairs(query);
    Some(match param(&pairs, "notice")? {
        "created" => "The user was created. They were sent a link to choose a password.",
        "created_without_mail" => {
            "The user was created, but the link to choose a password could not be sent: use Send password reset."
        }
        "updated" => "The user was updated.",
        "blocked" => "The user was blocked and signed out everywhere.",
        "unblocked" => "The user was unblocked.",
        "approved" => "The user was approved and told by mail.",
        "reset_sent" => "A password reset link was sent to the user.",
        "two_factor_disabled" => "Two-factor authentication was disabled for the user.",
        "session_ended" => "The session was ended.",
        "sessions_ended" => "Every session of the user was ended.",
        _ => return None,
    })
}

/// `GET /admin/users/<username>`: the user, the buttons their state allows, their sessions,
/// personal access tokens and authorized applications.
pub async fn show(
    State(state): State<AppState>,
    admin: Admin,
    csrf: Csrf,
    Path(username): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let user = find(&state, &username).await?;
    let now = state.clock.now();
    let sessions = state.store.user_sessions(user.id, now).await?;
    let sessions: Vec<_> = sessions
        .iter()
        .map(|s| {
            minijinja::context! {
                id => s.id,
                created_at => human(s.created_at),
                last_seen_at => human(s.last_seen_at),
                ip => &s.ip,
                user_agent => &s.user_agent,
            }
        })
        .collect();
    let mut tokens = state.store.personal_access_tokens_of_user(user.id).await?;
    tokens.reverse();
    let tokens: Vec<_> = tokens
        .iter()
        .map(|t| {
            minijinja::context! {
                name => &t.name,
                scopes => t.scopes.names().join(", "),
                created_at => human(t.created_at),
                last_used_at => t.last_used_at.map(human),
                expires_at => t.expires_at.map(date),
                active => t.is_active(now),
                revoked => t.revoked,
            }
        })
        .collect();
    let mut authorized = Vec::new();
    for (app_id, scopes, last_at) in state.store.authorized_applications(user.id).await? {
        let name = state
            .store
            .application_by_id(app_id)
            .await?
            .map(|a| a.name)
            .unwrap_or_default();
        authorized.push(minijinja::context! {
            id => app_id,
            name,
            scopes => scopes.to_string(),
            last_at => human(last_at),
        });
    }
    state.templates.render(
        "admin_user.html",
        minijinja::context! {
            title => format!("User: {}", user.username),
            section => "users",
            current_user => nav(admin.user()),
            csrf_token => csrf.token(),
            user => user_view(&user),
            is_me => user.id == admin.user().id,
            sessions,
            tokens,
            authorized,
            notice => notice(query.as_deref()),
        },
    )
}
