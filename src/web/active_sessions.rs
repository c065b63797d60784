//! `/-/user_settings/active_sessions`: where the user is signed in (browser, address, last
//! activity), with a Revoke button for each other session and one for all others.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::WebError;
use super::csrf::Csrf;
use super::form::WebForm;
use super::session::CurrentUser;
use crate::domain::audit::{Action, AuditEvent};
use crate::domain::clock::human;
use crate::http::client_ip::ClientIp;
use crate::state::AppState;

pub const PATH: &str = "/-/user_settings/active_sessions";

/// A short, readable name of the browser from its `User-Agent`.
pub fn browser_name(user_agent: &str) -> String {
    let family = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ]
    .iter()
    .find(|(marker, _)| user_agent.contains(marker))
    .map(|(_, name)| *name);
    let os = [
        ("Windows", "Windows"),
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("Mac OS X", "macOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(marker, _)| user_agent.contains(marker))
    .map(|(_, name)| *name);
    match (family, os) {
        (Some(f), Some(o)) => format!("{f} on {o}"),
        (Some(f), None) => f.to_string(),
        (None, _) if user_agent.is_empty() => "Unknown browser".to_string(),
        (None, _) => user_agent.chars().take(60).collect(),
    }
}

async fn render(
    state: &AppState,
    csrf: &Csrf,
    current: &CurrentUser,
    notice: Option<&str>,
) -> Result<Response, WebError> {
    let sessions = state
        .store
        .user_sessions(current.user.id, state.clock.now())
        .await?;
    let others = sessions.iter().any(|s| s.id != current.session_id);
    let rows: Vec<minijinja::Value> = sessions
        .iter()
        .map(|s| {
            minijinja::context! {
                id => s.id,
                browser => browser_name(&s.user_agent),
                ip => &s.ip,
                created_at => human(s.created_at),
                last_seen_at => human(s.last_seen_at),
                current => s.id == current.session_id,
            }
        })
        .collect();
    state.templates.render(
        "active_sessions.html",
        minijinja::context! {
            title => "Active sessions",
            current_user => crate::web::session::nav(&current.user),
            csrf_token => csrf.token(),
            sessions => rows,
            others,
            notice,
        },
    )
}

#[derive(Deserialize)]
pub struct IndexQuery {
    notice: Option<String>,
}

/// The list; after a revocation (post, redirect, get) with the notice of what happened.
pub async fn index(
    State(state): State<AppState>,
    current: CurrentUser,
    csrf: Csrf,
    Query(q): Query<IndexQuery>,
) -> Result<Response, WebError> {
    let notice = match q.notice.as_deref() {
        Some("revoked") => Some("The session has been revoked."),
        Some("revoked_others") => Some("All other sessions have been revoked."),
        Some("no_others") => Some("There were no other sessions."),
        _ => None,
    };
    render(&state, &csrf, &current, notice).await
}

fn back(notice: &str) -> Response {
    Redirect::to(&format!("{PATH}?notice={notice}")).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeForm {
    authenticity_token: String,
}

fn revoke_event(current: &CurrentUser, ip: ClientIp) -> AuditEvent {
    let user = &current.user;
    AuditEvent::about_user(
        Action::SessionRevoked,
        Some(user.id),
        user.id,
        &user.username,
    )
    .from_ip(ip.0.to_string())
}

/// Revokes one of the user's other sessions; another user's session id is simply unknown.
pub async fn revoke(
    State(state): State<AppState>,
    current: CurrentUser,
    csrf: Csrf,
    ip: ClientIp,
    Path(id): Path<String>,
    WebForm(form): WebForm<RevokeForm>,
) -> Result<Response, WebError> {
    csrf.verify(&form.authenticity_token)?;
    let id: i64 = id.parse().map_err(|_| WebError::NotFound)?;
    if id == current.session_id {
        // This browser signs out with the sign-out button, which also clears its cookies.
        return Ok(Redirect::to("/users/sign_out").into_response());
    }
    let audit = revoke_event(&current, ip).with("session_id", id);
    let ended = state
        .store
        .end_user_session(current.user.id, id, &audit, state.clock.now())
        .await?;
    if !ended {
        return Err(WebError::NotFound);
    }
    Ok(back("revoked"))
}

pub async fn revoke_all_others(
    State(state): State<AppState>,
    current: CurrentUser,
    csrf: Csrf,
    ip: ClientIp,
    WebForm(form): WebForm<RevokeForm>,
) -> Result<Response, WebError> {
    csrf.verify(&form.authenticity_token)?;
    let audit = revoke_event(&current, ip).with("sessions", "all others");
    let ended = state
        .store
        .end_user_sessions(
            current.user.id,
            Some(current.session_id),
            &audit,
            state.clock.now(),
        )
        .await?;
    Ok(back(match ended {
        0 => "no_others",
        _ => "revoked_others",
    }))
}

#[cfg(test)]
mod tests {
    use super::browser_name;

    #[test]
    fn browsers_are_named_briefly() {
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36";
        assert_eq!(browser_name(chrome), "Chrome on Linux");
        assert_eq!(browser_name(""), "Unknown browser");
        assert_eq!(browser_name("reqwest"), "reqwest");
    }
}
