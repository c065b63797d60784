//! Sign-in and sign-out.
//!
//! Failed attempts are counted in the database per submitted login and per client address;
//! past the limit the form answers 429 with the same words whether or not the account
//! exists, and an unknown login costs the same Argon2id verification as a wrong password.
//! A user with two-factor authentication gets no session here, only a challenge: see
//! [`super::two_factor_sign_in`], which ends in the same [`finish`].

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;

use super::csrf::{self, Csrf};
use super::form::WebForm;
use super::session::{self, CurrentUser, MaybeUser};
use super::{WebError, page_with_status};
use crate::accounts::{self, PasswordCheck};
use crate::domain::audit::{Action, AuditEvent};
use crate::domain::secret::SecretString;
use crate::domain::sign_in_throttle::lockout_message;
use crate::domain::user::{STATE_PENDING_APPROVAL, User};
use crate::http::client_ip::ClientIp;
use crate::state::AppState;
use crate::store::sessions::SessionOrigin;

pub const INVALID_LOGIN: &str = "Invalid login or password.";
/// GitLab's words for a sign-up still waiting for an administrator.
pub const PENDING_APPROVAL: &str =
    "Your account is pending approval from your administrator and hence blocked.";

/// An audit event about `user` signing in (or failing to) from `ip`. Only a sign-in that
/// worked (or a recovery code that did) has the user as its author; a failure is an
/// anonymous actor's, who may be anyone.
pub(super) fn sign_in_event(action: Action, user: &User, ip: std::net::IpAddr) -> AuditEvent {
    let author = matches!(action, Action::SignIn | Action::RecoveryCodeUsed).then_some(user.id);
    AuditEvent::about_user(action, author, user.id, &user.username).from_ip(ip.to_string())
}

#[derive(Deserialize)]
pub struct ShowQuery {
    return_to: Option<String>,
    /// OpenID Connect `login_hint`: the username to prefill.
    login_hint: Option<String>,
    /// `login` when the authorization request asked for a fresh sign-in
    /// (`oidc::prompt`): the form is shown even with a session.
    prompt: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    csrf: Csrf,
    Query(q): Query<ShowQuery>,
) -> Result<Response, WebError> {
    let return_to = q.return_to.as_deref().and_then(safe_return_to);
    if user.is_some() && q.prompt.as_deref() != Some("login") {
        return Ok(Redirect::to(return_to.as_deref().unwrap_or("/")).into_response());
    }
    let username = q.login_hint.as_deref().unwrap_or_default();
    render_form(&state, &csrf, username, return_to.as_deref(), None)
}

pub(super) fn render_form(
    state: &AppState,
    csrf: &Csrf,
    username: &str,
    return_to: Option<&str>,
    error: Option<&str>,
) -> Result<Response, WebError> {
    state.templates.render(
        "sign_in.html",
        minijinja::context! {
            title => "Sign in",
            current_user => (),
            csrf_token => csrf.token(),
            username,
            return_to,
            error,
            notice => (),
            sign_up => state.config.accounts.sign_up != crate::config::SignUp::Closed,
        },
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignInForm {
    authenticity_token: String,
    username: String,
    password: String,
    #[serde(default)]
    return_to: Option<String>,
}

pub async fn submit(
    State(state): State<AppState>,
    csrf: Csrf,
    ip: ClientIp,
    headers: HeaderMap,
    WebForm(form): WebForm<SignInForm>,
) -> Result<Response, WebError> {
    csrf.verify(&form.authenticity_token)?;
    let return_to = form.return_to.as_deref().and_then(safe_return_to);
    let login = form.username.trim();
    let again = |status: StatusCode, message: &str| {
        page_with_status(
            status,
            render_form(&state, &csrf, login, return_to.as_deref(), Some(message)),
        )
    };
    if login.is_empty() || form.password.is_empty() {
        return Ok(again(StatusCode::UNAUTHORIZED, INVALID_LOGIN));
    }

    let password = SecretString::new(form.password);
    let checked = accounts::check_password(
        &state.store,
        &state.hasher,
        &state.clock,
        login,
        &password,
        ip.0,
    )
    .await?;
    let user = match checked {
        PasswordCheck::Valid(user) => *user,
        PasswordCheck::Locked(seconds) => {
            return Ok(again(
                StatusCode::TOO_MANY_REQUESTS,
                &lockout_message(seconds),
            ));
        }
        PasswordCheck::Invalid { user, locked_now } => {
            tracing::info!(ip = %ip.0, "failed sign-in");
            // Only failures of a real account are recorded: a login naming nobody may be a
            // password typed into the wrong field, and must not end up in the log.
            if let Some(user) = user {
                let failed =
                    sign_in_event(Action::SignInFailed, &user, ip.0).with("reason", "password");
                state
                    .store
                    .record_audit_event(&failed, state.clock.now())
                    .await?;
                if locked_now {
                    let locked = sign_in_event(Action::Lockout, &user, ip.0);
                    state
                        .store
                        .record_audit_event(&locked, state.clock.now())
                        .await?;
                }
            }
            return Ok(again(StatusCode::UNAUTHORIZED, INVALID_LOGIN));
        }
    };
    // Only someone who knows the password learns that the account is blocked.
    if !user.is_active() {
        let (reason, message) = match user.state.as_str() {
            STATE_PENDING_APPROVAL => ("pending approval", PENDING_APPROVAL),
            _ => (
                "blocked",
                "Your account has been blocked. Contact your administrator.",
            ),
        };
        let failed = sign_in_event(Action::SignInFailed, &user, ip.0).with("reason", reason);
        state
            .store
            .record_audit_event(&failed, state.clock.now())
            .await?;
        return Ok(again(StatusCode::FORBIDDEN, message));
    }

    // With a second factor, no session yet: a challenge waits for the code.
    if user.two_factor_enabled {
        // An account imported from GitLab with two-factor authentication required has no
        // authenticator here (GitLab encrypts the TOTP secret with a key Doorward does not
        // have, issue 16): no code could pass, so say what to do instead of asking for one.
        let record = state.store.two_factor_by_user(user.id).await?;
        if record.is_none_or(|r| r.confirmed_at.is_none()) {
            let failed = sign_in_event(Action::SignInFailed, &user, ip.0)
                .with("reason", "two-factor authentication not set up");
            state
                .store
                .record_audit_event(&failed, state.clock.now())
                .await?;
            return Ok(again(StatusCode::FORBIDDEN, TWO_FACTOR_NOT_MOVED));
        }
        return super::two_factor_sign_in::challenge(&state, user.id, return_to.as_deref()).await;
    }
    let jar = CookieJar::new();
    finish(&state, &user, ip, &headers, return_to.as_deref(), jar).await
}

/// The sign-in form's message for an imported account whose second factor stayed behind.
pub const TWO_FACTOR_NOT_MOVED: &str = "This account requires two-factor authentication, which was not carried over from the previous server. Ask an administrator to reset it.";

/// Completes a sign-in whose every factor has passed: records it, starts a fresh session
/// with a fresh CSRF cookie (added to `jar`), and sends the browser on. The password form
/// and the two-factor challenge both end here, so sessions start one way only.
pub(super) async fn finish(
    state: &AppState,
    user: &User,
    ip: ClientIp,
    headers: &HeaderMap,
    return_to: Option<&str>,
    jar: CookieJar,
) -> Result<Response, WebError> {
    let user_id = user.id;
    let audit = sign_in_event(Action::SignIn, user, ip.0);
    state
        .store
        .record_sign_in(user_id, &audit, state.clock.now())
        .await?;
    let origin = SessionOrigin {
        ip: ip.0.to_string(),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .chars()
            .take(255)
            .collect(),
    };
    let session_cookie = session::start(state, user_id, &origin).await?;
    let (csrf_cookie, _) = csrf::new_cookie(state);
    tracing::info!(user_id, "signed in");
    let jar = jar.add(session_cookie).add(csrf_cookie);
    Ok((jar, Redirect::to(return_to.unwrap_or("/"))).into_response())
}

pub async fn confirm_sign_out(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    csrf: Csrf,
) -> Result<Response, WebError> {
    let Some(user) = user else {
        return Ok(Redirect::to("/users/sign_in").into_response());
    };
    state.templates.render(
        "sign_out.html",
        minijinja::context! {
            title => "Sign out",
            current_user => crate::web::session::nav(&user.user),
            csrf_token => csrf.token(),
        },
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignOutForm {
    authenticity_token: String,
}

pub async fn sign_out(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    csrf: Csrf,
    WebForm(form): WebForm<SignOutForm>,
) -> Result<Response, WebError> {
    csrf.verify(&form.authenticity_token)?;
    let jar = end_session(&state, user.as_ref()).await?;
    Ok((jar, Redirect::to("/users/sign_in")).into_response())
}

/// Ends `user`'s session everywhere and returns the cookies that clear it from this
/// browser (and replace its CSRF cookie). Shared by the sign-out form and OpenID Connect
/// logout (`oidc::logout`).
pub async fn end_session(
    state: &AppState,
    user: Option<&CurrentUser>,
) -> Result<CookieJar, WebError> {
    if let Some(user) = user {
        let audit = AuditEvent::about_user(
            Action::SignOut,
            Some(user.user.id),
            user.user.id,
            &user.user.username,
        );
        state
            .store
            .delete_session(&user.session_hash, &audit, state.clock.now())
            .await?;
        tracing::info!(user_id = user.user.id, "signed out");
    }
    let (csrf_cookie, _) = csrf::new_cookie(state);
    Ok(CookieJar::new()
        .add(session::removal(state))
        .add(csrf_cookie))
}

/// Accepts only a local path (`/...`) as the place to return to after sign-in, so the
/// sign-in page cannot be used as an open redirect: no scheme, no host, no `//` or `/\`
/// (which browsers read as a host), no control characters.
pub fn safe_return_to(raw: &str) -> Option<String> {
    let ok = raw.starts_with('/')
        && !raw.starts_with("//")
        && !raw.contains('\\')
        && !raw.chars().any(|c| c.is_control() || c.is_whitespace())
        && raw.len() <= 2048;
    ok.then(|| raw.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_to_accepts_only_local_paths() {
        assert_eq!(
            safe_return_to("/oauth/authorize?a=1&b=2").as_deref(),
            Some("/oauth/authorize?a=1&b=2")
        );
        for bad in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "\\\\evil",
            "javascript:alert(1)",
            "/a\nb",
            "/ a",
            "",
        ] {
            assert_eq!(safe_return_to(bad), None, "{bad:?}");
        }
    }
}
