//! The second step of signing in with two-factor authentication: after the password, a code
//! from the authenticator app or a recovery code, at `/users/two_factor`.
//!
//! Between the two steps no session exists. The browser holds only a random challenge id in
//! a cookie of its own (HttpOnly, SameSite=Lax, Secure under https); the database keeps its
//! SHA-256 with the user, the page to return to, a five-minute expiry and a count of wrong
//! codes. A few wrong codes end the challenge, so the password must be typed again, and
//! every wrong code also counts against a per-user lock in the shared throttle table, so
//! neither restarting nor spreading guesses across nodes buys more attempts: with one step
//! of skew a guess hits with probability 3 in a million, and the lock keeps that to a few
//! hundred guesses a day.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::Deserialize;

use super::csrf::Csrf;
use super::form::WebForm;
use super::sign_in::{self, safe_return_to};
use super::{WebError, page_with_status};
use crate::domain::audit::Action;
use crate::domain::secret;
use crate::http::client_ip::ClientIp;
use crate::state::AppState;
use crate::store::throttles::ThrottlePolicy;
use crate::store::two_factor::TwoFactorChallenge;
use crate::two_factor::{self, Checked};

pub const PATH: &str = "/users/two_factor";
/// Seconds between the password and the code before the sign-in must start over.
pub const CHALLENGE_LIFETIME: i64 = 300;
/// Wrong codes one challenge allows; then the password must be typed again.
pub const MAX_CHALLENGE_ATTEMPTS: i64 = 3;
/// Per user, across challenges and nodes: 5 wrong codes in 10 minutes lock codes for 10.
pub const CODE_POLICY: ThrottlePolicy = ThrottlePolicy {
    max_failures: 5,
    window: 600,
    lock_for: 600,
};

pub const INVALID_CODE: &str = "Invalid two-factor code.";
const EXPIRED: &str = "Your sign-in has expired. Sign in again.";
const TOO_MANY: &str = "Too many invalid two-factor codes. Sign in again.";

/// The throttle key counting one user's wrong codes (sign-in and settings page alike).
pub fn code_throttle_key(user_id: i64) -> String {
    format!("otp:{user_id}")
}

/// What a user whose codes are locked is told, rounded up to whole minutes.
pub fn code_lockout_message(seconds: i64) -> String {
    let minutes = (seconds + 59) / 60;
    let unit = if minutes == 1 { "minute" } else { "minutes" };
    format!("Too many invalid two-factor codes. Try again in {minutes} {unit}.")
}

pub fn cookie_name(state: &AppState) -> &'static str {
    if state.config.is_https() {
        "__Host-doorward_two_factor"
    } else {
        "doorward_two_factor"
    }
}

fn removal(state: &AppState) -> Cookie<'static> {
    let mut c = Cookie::build((cookie_name(state), "")).path("/").build();
    c.make_removal();
    c
}

/// Called by the password form once the password is right: records a challenge, hands the
/// browser its id and sends it to the code page.
pub(super) async fn challenge(
    state: &AppState,
    user_id: i64,
    return_to: Option<&str>,
) -> Result<Response, WebError> {
    let id = secret::generate("");
    let now = state.clock.now();
    state
        .store
        .create_two_factor_challenge(
            &secret::hash(id.expose()),
            user_id,
            return_to,
            now,
            now + CHALLENGE_LIFETIME,
        )
        .await?;
    let cookie = Cookie::build((cookie_name(state), id.into_inner()))
        .path("/")
        .http_only(true)
        .secure(state.config.is_https())
        .same_site(SameSite::Lax)
        .build();
    tracing::info!(user_id, "password accepted; waiting for the second factor");
    Ok((CookieJar::new().add(cookie), Redirect::to(PATH)).into_response())
}

/// The live challenge this browser holds, if any.
async fn pending(
    state: &AppState,
    jar: &CookieJar,
) -> Result<Option<TwoFactorChallenge>, WebError> {
    let Some(cookie) = jar.get(cookie_name(state)) else {
        return Ok(None);
    };
    let hash = secret::hash(cookie.value());
    Ok(state
        .store
        .two_factor_challenge_by_hash(&hash, state.clock.now())
        .await?)
}

fn render(state: &AppState, csrf: &Csrf, error: Option<&str>) -> Result<Response, WebError> {
    state.templates.render(
        "two_factor_sign_in.html",
        minijinja::context! {
            title => "Two-factor authentication",
            current_user => (),
            csrf_token => csrf.token(),
            error,
        },
    )
}

/// Back to the password form with `message`, the challenge cookie gone.
fn start_over(state: &AppState, csrf: &Csrf, message: &str) -> Response {
    let page = sign_in::render_form(state, csrf, "", None, Some(message));
    let jar = CookieJar::new().add(removal(state));
    (jar, page_with_status(StatusCode::UNAUTHORIZED, page)).into_response()
}

pub async fn show(
    State(state): State<AppState>,
    csrf: Csrf,
    jar: CookieJar,
) -> Result<Response, WebError> {
    match pending(&state, &jar).await? {
        Some(_) => render(&state, &csrf, None),
        None => Ok(Redirect::to("/users/sign_in").into_response()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeForm {
    authenticity_token: String,
    /// GitLab's field name.
    otp_attempt: String,
}

pub async fn submit(
    State(state): State<AppState>,
    csrf: Csrf,
    ip: ClientIp,
    headers: HeaderMap,
    jar: CookieJar,
    WebForm(form): WebForm<CodeForm>,
) -> Result<Response, WebError> {
    csrf.verify(&form.authenticity_token)?;
    let Some(challenge) = pending(&state, &jar).await? else {
        return Ok(start_over(&state, &csrf, EXPIRED));
    };
    let now = state.clock.now();
    let key = code_throttle_key(challenge.user_id);
    if let Some(seconds) = state.store.throttle_locked_for(&key, now).await? {
        let page = render(&state, &csrf, Some(&code_lockout_message(seconds)));
        return Ok(page_with_status(StatusCode::TOO_MANY_REQUESTS, page));
    }
    // Blocked between the two steps: the challenge dies with the account's sessions.
    let user = state.store.user_by_id(challenge.user_id).await?;
    let Some(user) = user.filter(|u| u.is_active() && u.two_factor_enabled) else {
        state.store.take_two_factor_challenge(challenge.id).await?;
        return Ok(start_over(&state, &csrf, EXPIRED));
    };

    let checked = two_factor::check(&state, user.id, &form.otp_attempt)
        .await
        .map_err(super::two_factor::internal)?;
    if !checked.is_valid() {
        state
            .store
            .throttle_record_failure(&key, CODE_POLICY, now)
            .await?;
        let attempts = state
            .store
            .record_two_factor_challenge_failure(challenge.id)
            .await?;
        tracing::info!(user_id = user.id, ip = %ip.0, "invalid two-factor code");
        let failed = sign_in::sign_in_event(Action::SignInFailed, &user, ip.0)
            .with("reason", "two-factor code");
        state.store.record_audit_event(&failed, now).await?;
        if attempts >= MAX_CHALLENGE_ATTEMPTS {
            state.store.take_two_factor_challenge(challenge.id).await?;
            return Ok(start_over(&state, &csrf, TOO_MANY));
        }
        let page = render(&state, &csrf, Some(INVALID_CODE));
        return Ok(page_with_status(StatusCode::UNAUTHORIZED, page));
    }
    // The challenge completes once, even if two requests with valid codes race.
    if !state.store.take_two_factor_challenge(challenge.id).await? {
        return Ok(start_over(&state, &csrf, EXPIRED));
    }
    state.store.throttle_clear(&key).await?;
    if checked == Checked::RecoveryCode {
        tracing::info!(user_id = user.id, "recovery code used to sign in");
        let used = sign_in::sign_in_event(Action::RecoveryCodeUsed, &user, ip.0);
        state.store.record_audit_event(&used, now).await?;
    }
    let return_to = challenge.return_to.as_deref().and_then(safe_return_to);
    let jar = CookieJar::new().add(removal(&state));
    sign_in::finish(&state, &user, ip, &headers, return_to.as_deref(), jar).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockout_messages_round_up_to_minutes() {
        assert_eq!(
            code_lockout_message(540),
            "Too many invalid two-factor codes. Try again in 9 minutes."
        );
        assert_eq!(
            code_lockout_message(1),
            "Too many invalid two-factor codes. Try again in 1 minute."
        );
    }
}
