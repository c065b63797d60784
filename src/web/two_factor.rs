//! The two-factor settings page, `/-/profile/two_factor_auth` (GitLab's path): set up an
//! authenticator app (QR code, base32 secret, first code and password to confirm), see the
//! recovery codes once, make new ones, turn it off (password and code).
//!
//! Set-up is a POST that stores a new unconfirmed secret and redirects to the page, which
//! shows it until the first code confirms it, so reloading never changes the secret under
//! the person scanning it. Turning two-factor authentication on or off ends the user's other
//! sessions, as a password change does. Wrong codes here count against the same per-user
//! lock as on the sign-in page, so a stolen session cannot guess codes faster.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use super::csrf::Csrf;
use super::form::WebForm;
use super::session::CurrentUser;
use super::two_factor_sign_in::{CODE_POLICY, code_lockout_message, code_throttle_key};
use super::{WebError, page_with_status};
use crate::domain::audit::{Action, AuditEvent};
use crate::domain::secret::SecretString;
use crate::domain::two_factor::{self as rules, TotpSecret};
use crate::domain::user::User;
use crate::http::client_ip::ClientIp;
use crate::state::AppState;
use crate::two_factor::{self, TwoFactorError};

pub const PATH: &str = "/-/profile/two_factor_auth";
/// The issuer an authenticator app shows next to the account.
const ISSUER: &str = "Doorward";

/// Maps an operation's error: store errors as usual, an undecryptable secret as a 500
/// (logged with the hint that the master key changed).
pub(super) fn internal(e: TwoFactorError) -> WebError {
    match e {
        TwoFactorError::Store(e) => e.into(),
        other => WebError::Internal(other.to_string()),
    }
}

/// What the page shows besides the status.
#[derive(Default)]
struct View {
    /// The secret of a set-up in progress.
    setup: Option<TotpSecret>,
    /// Recovery codes just made: shown this once.
    recovery_codes: Option<Vec<SecretString>>,
    notice: Option<&'static str>,
    errors: Vec<String>,
}

/// The account label in the app: `username@host`, so several instances stay apart.
fn account_label(state: &AppState, user: &User) -> String {
    let host = url::Url::parse(&state.config.external_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .filter(|h| !h.contains(':'));
    match host {
        Some(host) => format!("{}@{host}", user.username),
        None => user.username.clone(),
    }
}

/// The QR code of `text` as an SVG `data:` URI, which the CSP's `img-src data:` allows and
/// which needs no script.
fn qr_data_uri(text: &str) -> Option<String> {
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(220, 220)
        .quiet_zone(true)
        .build();
    Some(format!(
        "data:image/svg+xml;base64,{}",
        STANDARD.encode(svg)
    ))
}

async fn render(
    state: &AppState,
    csrf: &Csrf,
    user: &User,
    enabled: bool,
    view: View,
) -> Result<Response, WebError> {
    let unused = if enabled {
        state.store.count_unused_recovery_codes(user.id).await?
    } else {
        0
    };
    let setup = match &view.setup {
        Some(secret) => {
            let uri = rules::otpauth_uri(secret, ISSUER, &account_label(state, user))
                .ok_or_else(|| WebError::Internal("cannot build the otpauth URI".into()))?;
            let qr = qr_data_uri(&uri)
                .ok_or_else(|| WebError::Internal("cannot draw the QR code".into()))?;
            minijinja::context! { secret => secret.base32(), uri, qr }
        }
        None => minijinja::Value::from(()),
    };
    let codes: Option<Vec<String>> = view
        .recovery_codes
        .map(|codes| codes.into_iter().map(SecretString::into_inner).collect());
    state.templates.render(
        "two_factor.html",
        minijinja::context! {
            title => "Two-factor authentication",
            current_user => crate::web::session::nav(user),
            csrf_token => csrf.token(),
            enabled,
            unused_recovery_codes => unused,
            setup,
            recovery_codes => codes,
            notice => view.notice,
            errors => view.errors,
        },
    )
}

pub async fn show(
    State(state): State<AppState>,
    current: CurrentUser,
    csrf: Csrf,
) -> Result<Response, WebError> {
    let user = &current.user;
    let mut view = View::default();
    if !user.two_factor_enabled {
        view.setup = two_factor::pending_secret(&state, user.id)
            .await
            .map_err(internal)?;
    }
    render(&state, &csrf, user, user.two_factor_enabled, view).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenOnlyForm {
    authenticity_token: String,
}

/// Starts (or restarts) set-up with a new secret, then shows it.
pub async fn setup(
    State(state): State<AppState>,
    current: CurrentUser,
    csrf: Csrf,
    WebForm(form): WebForm<TokenOnlyForm>,
) -> Result<Response, WebError> {
    csrf.verify(&form.authenticity_token)?;
    if !current.user.two_factor_enabled {
        two_factor::begin_setup(&state, current.user.id)
            .await
            .map_err(internal)?;
    }
    Ok(Redirect::to(PATH).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmForm {
    authenticity_token: String,
    /// GitLab's field name for the first code.
    pin_code: String,
    current_password: String,
}

/// Confirms set-up with the password and the first code, then shows the recovery codes.
pub async fn confirm(
    State(state): State<AppState>,
    current: CurrentUser,
    csrf: Csrf,
    ClientIp(ip): ClientIp,
    WebForm(form): WebForm<ConfirmForm>,
) -> Result<Response, WebError> {
    csrf.verify(&form.authenticity_token)?;
    let user = &current.user;
    if user.two_factor_enabled {
        return Ok(Redirect::to(PATH).into_response());
    }
    let Some(secret) = two_factor::pending_secret(&state, user.id)
        .await
        .map_err(internal)?
    else {
        return Ok(Redirect::to(PATH).into_response());
    };
    // Refused: the same set-up again (same secret), with the error.
    let again = |error: String| View {
        setup: Some(secret.clone()),
        errors: vec![error],
        ..View::default()
    };
    if let Some((status, error)) = refusal(&state, user, &form.current_password).await? {
        let page = render(&state, &csrf, user, false, again(error)).await;
        return Ok(page_with_status(status, page));
    }
    let audit = AuditEvent::about_user(
        Action::TwoFactorEnabled,
        Some(user.id),
        user.id,
        &user.username,
    )
    .from_ip(ip.to_string());
    let confirmed = two_factor::confirm(
        &state,
        user.id,
        &form.pin_code,
        &current.session_hash,
        &audit,
    )
    .await
    .map_err(internal)?;
    let Some(codes) = confirmed else {
        count_wrong_code(&state, user.id).await?;
        let page = render(
            &state,
            &csrf,
            user,
            false,
            again("Invalid pin code.".into()),
        )
        .await;
        return Ok(page_with_status(StatusCode::UNPROCESSABLE_ENTITY, page));
    };
    state
        .store
        .throttle_clear(&code_throttle_key(user.id))
        .await?;
    tracing::info!(user_id = user.id, "two-factor authentication enabled");
    let view = View {
        recovery_codes: Some(codes),
        notice: Some(
            "Two-factor authentication is enabled. Your other sessions have been signed out.",
        ),
        ..View::default()
    };
    render(&state, &csrf, user, true, view).await
}

/// Why a form that needs the password cannot go on: codes locked, or a wrong password.
async fn refusal(
    state: &AppState,
    user: &User,
    password: &str,
) -> Result<Option<(StatusCode, String)>, WebError> {
    let key = code_throttle_key(user.id);
    if let Some(seconds) = state
        .store
        .throttle_locked_for(&key, state.clock.now())
        .await?
    {
        return Ok(Some((
            StatusCode::TOO_MANY_REQUESTS,
            code_lockout_message(seconds),
        )));
    }
    let password = SecretString::new(password);
    if !state
        .hasher
        .verify(&password, Some(&user.password_hash))
        .await
    {
        return Ok(Some((
            StatusCode::UNPROCESSABLE_ENTITY,
            "Current password is invalid.".into(),
        )));
    }
    Ok(None)
}

async fn count_wrong_code(state: &AppState, user_id: i64) -> Result<(), WebError> {
    state
        .store
        .throttle_record_failure(&code_throttle_key(user_id), CODE_POLICY, state.clock.now())
        .await?;
    tracing::info!(user_id, "invalid two-factor code on the settings page");
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordAndCodeForm {
    authenticity_token: String,
    current_password: String,
    /// A code from the app or a recovery code.
    otp_attempt: String,
}

/// Checks the password and then a code (which is used up); on failure, the page to answer.
async fn password_and_code(
    state: &AppState,
    csrf: &Csrf,
    user: &User,
    form: &PasswordAndCodeForm,
) -> Result<Option<Response>, WebError> {
    let problem = match refusal(state, user, &form.current_password).await? {
        Some(problem) => Some(problem),
        None => {
            let checked = two_factor::check(state, user.id, &form.otp_attempt)
                .await
                .map_err(internal)?;
            if checked.is_valid() {
                state
                    .store
                    .throttle_clear(&code_throttle_key(user.id))
                    .await?;
                None
            } else {
                count_wrong_code(state, user.id).await?;
                Some((
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Invalid two-factor code.".to_string(),
                ))
            }
        }
    };
    match problem {
        None => Ok(None),
        Some((status, error)) => {
            let view = View {
                errors: vec![error],
                ..View::default()
            };
            let page = render(state, csrf, user, true, view).await;
            Ok(Some(page_with_status(status, page)))
        }
    }
}

/// Replaces the recovery codes (password and a code first) and shows the new ones.
pub async fn regenerate_codes(
    State(state): State<AppState>,
    current: CurrentUser,
    csrf: Csrf,
    WebForm(form): WebForm<PasswordAndCodeForm>,
) -> Result<Response, WebError> {
    csrf.verify(&form.authenticity_token)?;
    let user = &current.user;
    if !user.two_factor_enabled {
        return Ok(Redirect::to(PATH).into_response());
    }
    if let Some(page) = password_and_code(&state, &csrf, user, &form).await? {
        return Ok(page);
    }
    let codes = two_factor::regenerate_recovery_codes(&state, user.id)
        .await
        .map_err(internal)?;
    tracing::info!(user_id = user.id, "recovery codes regenerated");
    let view = View {
        recovery_codes: Some(codes),
        notice: Some("New recovery codes have been generated; the old ones no longer work."),
        ..View::default()
    };
    render(&state, &csrf, user, true, view).await
}

/// Turns two-factor authentication off (password and a code first).
pub async fn disable(
    State(state): State<AppState>,
    current: CurrentUser,
    csrf: Csrf,
    ClientIp(ip): ClientIp,
    WebForm(form): WebForm<PasswordAndCodeForm>,
) -> Result<Response, WebError> {
    csrf.verify(&form.authenticity_token)?;
    let user = &current.user;
    if !user.two_factor_enabled {
        return Ok(Redirect::to(PATH).into_response());
    }
    if let Some(page) = password_and_code(&state, &csrf, user, &form).await? {
        return Ok(page);
    }
    let audit = AuditEvent::about_user(
        Action::TwoFactorDisabled,
        Some(user.id),
        user.id,
        &user.username,
    )
    .from_ip(ip.to_string());
    two_factor::disable(&state, user, Some(&current.session_hash), &audit)
        .await
        .map_err(internal)?;
    tracing::info!(user_id = user.id, "two-factor authentication disabled");
    let view = View {
        notice: Some(
            "Two-factor authentication has been disabled. Your other sessions have been signed out.",
        ),
        ..View::default()
    };
    render(&state, &csrf, user, false, view).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qr_codes_are_svg_data_uris() {
        let uri = qr_data_uri("otpauth://totp/Doorward:alice?secret=GEZDGNBV&issuer=Doorward")
            .unwrap_or_default();
        let b64 = uri
            .strip_prefix("data:image/svg+xml;base64,")
            .unwrap_or_default();
        let svg = String::from_utf8(STANDARD.decode(b64).unwrap_or_default()).unwrap_or_default();
        assert!(svg.contains("<svg"), "{svg}");
    }
}
