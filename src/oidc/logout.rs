//! `GET` and `POST /oauth/logout`: RP-initiated logout (OpenID Connect RP-Initiated Logout
//! 1.0 §2–3; GitLab has none).
//!
//! `id_token_hint` must carry our signature (an expired token is fine, §2) and names the
//! client and the user. `post_logout_redirect_uri` must be exactly one of that client's
//! registered redirect URIs (there is no separate registration field); without a hint the
//! client is named by `client_id`. `state` is echoed on the redirect (§3).
//!
//! With a valid hint for the signed-in user, the session ends at once. Otherwise (no hint,
//! or a hint for someone else) a confirmation page asks first (§2: the OP "SHOULD ask the
//! End-User whether to log out"), its button protected by the CSRF token.

use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::Value;
use url::Url;

use crate::domain::application::Application;
use crate::domain::redirect_uri::csp_source;
use crate::oauth::params::Params;
use crate::state::AppState;
use crate::web::WebError;
use crate::web::csrf::{self, Csrf};
use crate::web::session::MaybeUser;
use crate::web::sign_in::end_session;

/// Why a logout request is refused (shown on our error page, never redirected).
#[derive(Debug, thiserror::Error)]
pub enum LogoutError {
    #[error("The id_token_hint is not an ID token issued by this server.")]
    BadHint,
    #[error("The client_id does not match the id_token_hint.")]
    ClientMismatch,
    #[error(
        "The post_logout_redirect_uri needs an id_token_hint or a client_id naming its application."
    )]
    NoClient,
    #[error("The post_logout_redirect_uri is not registered for this application.")]
    UnregisteredUri,
    #[error("The request could not be read: {0}")]
    BadRequest(String),
    #[error(transparent)]
    Web(#[from] WebError),
}

impl From<crate::store::StoreError> for LogoutError {
    fn from(e: crate::store::StoreError) -> Self {
        LogoutError::Web(e.into())
    }
}

impl IntoResponse for LogoutError {
    fn into_response(self) -> Response {
        match self {
            LogoutError::Web(e) => e.into_response(),
            other => {
                tracing::info!(reason = %other, "logout request refused");
                WebError::BadRequest(other.to_string()).into_response()
            }
        }
    }
}

/// The `sub` and `aud` of a hint we signed: §2 says the OP MUST check it issued the token,
/// and SHOULD accept it after `exp`, so the expiry is not checked.
async fn verify_hint(state: &AppState, hint: &str) -> Result<(String, String), LogoutError> {
    let header = jsonwebtoken::decode_header(hint).map_err(|_| LogoutError::BadHint)?;
    // OpenID Connect Core §10.1: our id_tokens carry a `kid`; one without is not ours.
    let kid = header.kid.ok_or(LogoutError::BadHint)?;
    let now = state.clock.now();
    let ring = state
        .signing_keys
        .ring(&state.store, now)
        .await
        .map_err(|e| LogoutError::Web(WebError::Internal(e.to_string())))?;
    let key = ring
        .find(&kid, now, state.config.id_token_lifetime)
        .ok_or(LogoutError::BadHint)?;
    let mut validation = key.validation();
    validation.validate_exp = false;
    validation.required_spec_claims.clear();
    validation.set_issuer(&[&state.config.external_url]);
    // The audience is checked below against the client it names.
    validation.validate_aud = false;
    let claims = key
        .verify(hint, &validation)
        .map_err(|_| LogoutError::BadHint)?;
    let sub = claims.get("sub").and_then(Value::as_str);
    let aud = match claims.get("aud") {
        Some(Value::String(a)) => Some(a.as_str()),
        Some(Value::Array(list)) => list.first().and_then(Value::as_str),
        _ => None,
    };
    match (sub, aud) {
        (Some(sub), Some(aud)) => Ok((sub.to_string(), aud.to_string())),
        _ => Err(LogoutError::BadHint),
    }
}

/// `post_logout_redirect_uri` with `state` added, or our sign-in page.
fn destination(uri: Option<&str>, client_state: Option<&str>) -> String {
    match uri.and_then(|u| Url::parse(u).ok()) {
        Some(mut url) => {
            if let Some(s) = client_state {
                url.query_pairs_mut().append_pair("state", s);
            }
            url.to_string()
        }
        None => "/users/sign_in".to_string(),
    }
}

pub async fn logout(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    csrf: Csrf,
    RawQuery(query): RawQuery,
    req: Request,
) -> Result<Response, LogoutError> {
    let post = req.method() == Method::POST;
    let params = if post {
        let (kind, bytes) = crate::http::body::read(req, &state)
            .await
            .map_err(|e| LogoutError::BadRequest(e.to_string()))?;
        // A form, as every page's form: the same fields under a JSON content type are refused.
        if kind != crate::http::body::BodyKind::Form {
            return Err(LogoutError::BadRequest(
                crate::http::body::BodyError::UnsupportedMediaType.to_string(),
            ));
        }
        Params::from_form(&bytes)
    } else {
        Params::from_form(query.unwrap_or_default().as_bytes())
    }
    .map_err(|e| LogoutError::BadRequest(e.description.to_string()))?;
    // As at the authorization endpoint (RFC 6749 §3.1): no parameter twice.
    params
        .reject_repeated()
        .map_err(|e| LogoutError::BadRequest(e.description.to_string()))?;

    let hint = match params.get("id_token_hint") {
        Some(h) => Some(verify_hint(&state, h).await?),
        None => None,
    };
    // §2: with both, client_id MUST match the hint's audience.
    let client_id = match (&hint, params.get("client_id")) {
        (Some((_, aud)), Some(id)) if aud != id => return Err(LogoutError::ClientMismatch),
        (Some((_, aud)), _) => Some(aud.clone()),
        (None, id) => id.map(str::to_string),
    };
    let application: Option<Application> = match &client_id {
        Some(id) => state.store.application_by_uid(id).await?,
        None => None,
    };
    let redirect_uri = params.get("post_logout_redirect_uri");
    // §3: redirect only to an exact match of a URI registered for the named client; else
    // our error page, never a redirect.
    if let Some(uri) = redirect_uri {
        let app = application.as_ref().ok_or(LogoutError::NoClient)?;
        if !app.redirect_uris().iter().any(|r| r == uri) {
            return Err(LogoutError::UnregisteredUri);
        }
    }
    let client_state = params.get("state");
    let target = destination(redirect_uri, client_state);

    let hinted_user_is_signed_in = match (&hint, &user) {
        (Some((sub, _)), Some(u)) => *sub == u.user.id.to_string(),
        _ => false,
    };
    // §2: the OP SHOULD ask; §6: without a valid hint, only an explicit (CSRF-checked)
    // confirmation ends a session. No session: nothing to end, so straight on.
    let confirmed = post && params.get("confirm") == Some("yes");
    if confirmed {
        csrf.verify(params.get(csrf::FIELD).unwrap_or_default())?;
    }
    if user.is_none() || hinted_user_is_signed_in || confirmed {
        let jar = end_session(&state, user.as_ref()).await?;
        let mut res = (jar, Redirect::to(&target)).into_response();
        *res.status_mut() = StatusCode::FOUND;
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return Ok(res);
    }

    let page = state.templates.render(
        "logout.html",
        minijinja::context! {
            title => "Sign out",
            current_user => user.as_ref().map(|u| crate::web::session::nav(&u.user)),
            csrf_token => csrf.token(),
            app_name => application.as_ref().map(|a| a.name.as_str()),
            fields => minijinja::context! {
                client_id => client_id,
                post_logout_redirect_uri => redirect_uri,
                state => client_state,
            },
        },
    )?;
    Ok(allow_form_target(page, redirect_uri))
}

/// Chromium applies `form-action` to the redirect after the POST, so the confirmation
/// form may lead to the registered URI's origin (as the consent page does).
fn allow_form_target(mut page: Response, redirect_uri: Option<&str>) -> Response {
    let target = redirect_uri.and_then(csp_source).unwrap_or_default();
    let csp = crate::http::headers::CONTENT_SECURITY_POLICY.replace(
        "form-action 'self'",
        &format!("form-action 'self' {target}"),
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        page.headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, v);
    }
    page.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_is_added_to_the_registered_uri() {
        assert_eq!(
            destination(Some("https://rp.example/bye?x=1"), Some("s 1")),
            "https://rp.example/bye?x=1&state=s+1"
        );
        assert_eq!(destination(None, Some("s")), "/users/sign_in");
    }
}
