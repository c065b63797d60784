//! The user's side of the device flow (RFC 8628 §3.3): `/oauth/device` asks for the code
//! shown on the device, `/oauth/device/confirm` shows what the device asks for, and the
//! Authorize or Deny button decides. Wrong codes count against a throttle per user and per
//! address, since user codes are short (§5.1).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::domain::secret;
use crate::domain::user_code;
use crate::http::client_ip::ClientIp;
use crate::state::AppState;
use crate::store::device::{self, DeviceGrant};
use crate::store::throttles::ThrottlePolicy;
use crate::web::csrf::Csrf;
use crate::web::form::WebForm;
use crate::web::session::CurrentUser;
use crate::web::{WebError, page_with_status};

/// Per user: 10 wrong codes in 10 minutes lock code entry for 10 minutes (RFC 8628 §5.1:
/// user codes are short enough to guess, so attempts are rate-limited).
const USER_POLICY: ThrottlePolicy = ThrottlePolicy {
    max_failures: 10,
    window: 600,
    lock_for: 600,
};
/// Per address: more room for shared addresses.
const ADDRESS_POLICY: ThrottlePolicy = ThrottlePolicy {
    max_failures: 30,
    window: 600,
    lock_for: 600,
};

pub const INVALID: &str = "The user code is invalid.";
pub const EXPIRED: &str = "The user code is expired. Start again on your device.";

#[derive(Deserialize)]
pub struct EnterQuery {
    user_code: Option<String>,
}

/// `GET /oauth/device[?user_code=…]`.
pub async fn enter(
    State(state): State<AppState>,
    user: CurrentUser,
    csrf: Csrf,
    Query(q): Query<EnterQuery>,
) -> Result<Response, WebError> {
    render(
        &state,
        &user,
        &csrf,
        Page::Enter {
            code: q.user_code.as_deref().unwrap_or_default(),
            error: None,
        },
    )
}

enum Page<'a> {
    Enter {
        code: &'a str,
        error: Option<&'a str>,
    },
    Confirm {
        code: &'a str,
        app_name: &'a str,
        scopes: Vec<minijinja::Value>,
    },
    Done {
        approved: bool,
    },
}

fn render(
    state: &AppState,
    user: &CurrentUser,
    csrf: &Csrf,
    page: Page<'_>,
) -> Result<Response, WebError> {
    let base = minijinja::context! {
        title => "Connect a device",
        current_user => crate::web::session::nav(&user.user),
        csrf_token => csrf.token(),
    };
    let ctx = match page {
        Page::Enter { code, error } => {
            minijinja::context! { step => "enter", user_code => code, error, ..base }
        }
        Page::Confirm {
            code,
            app_name,
            scopes,
        } => {
            minijinja::context! { step => "confirm", user_code => code, app_name, scopes, error => (), ..base }
        }
        Page::Done { approved } => {
            minijinja::context! { step => "done", approved, user_code => "", error => (), ..base }
        }
    };
    state.templates.render("device.html", ctx)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeForm {
    authenticity_token: String,
    user_code: String,
    #[serde(default)]
    decision: Option<String>,
}

/// Finds the pending grant for a typed code, counting failures.
async fn find_pending(
    state: &AppState,
    user: &CurrentUser,
    ip: ClientIp,
    typed: &str,
) -> Result<Result<DeviceGrant, &'static str>, WebError> {
    let now = state.clock.now();
    let (user_key, ip_key) = (
        format!("device:user:{}", user.user.id),
        format!("device:ip:{}", ip.0),
    );
    for key in [&user_key, &ip_key] {
        if state.store.throttle_locked_for(key, now).await?.is_some() {
            return Ok(Err(
                "Too many wrong codes. Wait a few minutes, then try again.",
            ));
        }
    }
    let found = match user_code::normalize(typed) {
        Some(code) => {
            state
                .store
                .device_grant_by_user_code(&secret::hash(&code))
                .await?
        }
        None => None,
    };
    // GitLab's two answers, invalid or expired (spec §1.12); only a wrong code counts
    // towards the RFC 8628 §5.1 lockout.
    let outcome = match found {
        Some(g) if g.status == device::PENDING && g.expires_at > now => Ok(g),
        Some(g) if g.status == device::PENDING => Err(EXPIRED),
        _ => Err(INVALID),
    };
    if outcome == Err(INVALID) {
        state
            .store
            .throttle_record_failure(&user_key, USER_POLICY, now)
            .await?;
        state
            .store
            .throttle_record_failure(&ip_key, ADDRESS_POLICY, now)
            .await?;
    }
    Ok(outcome)
}

/// The code-entry form again, with why the code was refused: 422, as GitLab (spec §1.12).
fn enter_again(
    state: &AppState,
    user: &CurrentUser,
    csrf: &Csrf,
    code: &str,
    message: &str,
) -> Response {
    let page = render(
        state,
        user,
        csrf,
        Page::Enter {
            code,
            error: Some(message),
        },
    );
    page_with_status(StatusCode::UNPROCESSABLE_ENTITY, page)
}

/// `POST /oauth/device/confirm`: the code is checked and the request shown for consent.
pub async fn confirm(
    State(state): State<AppState>,
    user: CurrentUser,
    csrf: Csrf,
    ip: ClientIp,
    WebForm(form): WebForm<CodeForm>,
) -> Result<Response, WebError> {
    csrf.verify(&form.authenticity_token)?;
    let grant = match find_pending(&state, &user, ip, &form.user_code).await? {
        Ok(g) => g,
        Err(message) => return Ok(enter_again(&state, &user, &csrf, &form.user_code, message)),
    };
    let app = state
        .store
        .application_by_id(grant.application_id)
        .await?
        .ok_or(WebError::NotFound)?;
    let scopes = grant
        .scopes
        .iter()
        .map(|s| minijinja::context! { name => s.name, description => s.description })
        .collect();
    render(
        &state,
        &user,
        &csrf,
        Page::Confirm {
            code: &form.user_code,
            app_name: &app.name,
            scopes,
        },
    )
}

/// `POST /oauth/device`: Authorize or Deny.
pub async fn decide(
    State(state): State<AppState>,
    user: CurrentUser,
    csrf: Csrf,
    ip: ClientIp,
    WebForm(form): WebForm<CodeForm>,
) -> Result<Response, WebError> {
    csrf.verify(&form.authenticity_token)?;
    let grant = match find_pending(&state, &user, ip, &form.user_code).await? {
        Ok(g) => g,
        Err(message) => return Ok(enter_again(&state, &user, &csrf, &form.user_code, message)),
    };
    // Anything but an explicit Authorize denies: the device gets access_denied (RFC 8628
    // §3.5).
    let approve = form.decision.as_deref() == Some("authorize");
    let decided = state
        .store
        .decide_device_grant(
            grant.id,
            user.user.id,
            approve,
            user.signed_in_at,
            user.session_id,
            state.clock.now(),
        )
        .await?;
    if !decided {
        return Ok(enter_again(&state, &user, &csrf, &form.user_code, EXPIRED));
    }
    tracing::info!(
        user_id = user.user.id,
        application_id = grant.application_id,
        approve,
        "device authorization decided"
    );
    Ok(render(&state, &user, &csrf, Page::Done { approved: approve })?.into_response())
}
