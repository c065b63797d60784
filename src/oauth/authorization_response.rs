//! The answers of `/oauth/authorize`: a redirect back to the verified client (with a code,
//! a token, or an error, always with `iss`, RFC 9207 §2), or Doorward's own error page when
//! nothing about the request can be trusted enough to redirect (RFC 6749 §4.1.2.1).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use url::Url;

use super::authorization_request::{AuthorizationRequest, AuthorizeError, ResponseMode};
use super::error::{ErrorCode, OAuthError};
use crate::state::AppState;

/// An error for a verified request, back to its client.
pub(super) fn redirect_error_for(
    state: &AppState,
    request: &AuthorizationRequest,
    error: &OAuthError,
) -> Response {
    redirect_error(
        state,
        &request.redirect_uri,
        request.response_mode,
        request.state.as_deref(),
        error,
    )
}

pub(super) fn refuse(state: &AppState, error: AuthorizeError) -> Response {
    match error {
        AuthorizeError::Page(e) => error_page(state, e),
        AuthorizeError::Redirect {
            redirect_uri,
            response_mode,
            state: st,
            error,
        } => redirect_error(state, &redirect_uri, response_mode, st.as_deref(), &error),
    }
}

/// RFC 6749 §4.1.2.1: the error goes to the verified redirect URI.
pub(super) fn redirect_error(
    state: &AppState,
    redirect_uri: &str,
    mode: ResponseMode,
    client_state: Option<&str>,
    error: &OAuthError,
) -> Response {
    if let Some(detail) = &error.detail {
        tracing::info!(error = error.code.as_str(), detail = %detail, "authorization request refused");
    }
    let mut pairs = vec![
        ("error", error.code.as_str()),
        ("error_description", error.description.as_ref()),
    ];
    if let Some(s) = client_state {
        pairs.push(("state", s));
    }
    pairs.push(("iss", &state.config.external_url));
    redirect_to_client(redirect_uri, mode, &pairs)
}

/// A 302 to `redirect_uri` with `pairs` added to its query (keeping the registered URI's own
/// query, RFC 6749 §3.1.2) or put in its fragment.
pub(super) fn redirect_to_client(
    redirect_uri: &str,
    mode: ResponseMode,
    pairs: &[(&str, &str)],
) -> Response {
    let Ok(mut url) = Url::parse(redirect_uri) else {
        return (StatusCode::BAD_REQUEST, "invalid redirect URI").into_response();
    };
    match mode {
        ResponseMode::Query => {
            let mut q = url.query_pairs_mut();
            for (k, v) in pairs {
                q.append_pair(k, v);
            }
        }
        ResponseMode::Fragment => {
            let mut f = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in pairs {
                f.append_pair(k, v);
            }
            url.set_fragment(Some(&f.finish()));
        }
    }
    let mut res = Redirect::to(url.as_str()).into_response();
    // GitLab's 302 (spec §1.3); never a 307, which would re-post the form (RFC 9700 §4.12).
    *res.status_mut() = StatusCode::FOUND;
    // The Location carries a code: keep it out of caches.
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Our own error page, for requests that cannot be sent back to a verified client.
pub(super) fn error_page(state: &AppState, error: OAuthError) -> Response {
    if let Some(detail) = &error.detail {
        tracing::info!(error = error.code.as_str(), detail = %detail, "authorization request refused");
    }
    // The error code too (RFC 6749 §4.1.2.1's names), so whoever reports it names it exactly.
    let message = format!(
        "The authorization request failed ({}): {}",
        error.code.as_str(),
        error.description
    );
    let mut res = state
        .templates
        .render_error("An error has occurred", &message);
    // docs/compatibility.md: 400 where GitLab's page answers 200.
    *res.status_mut() = match error.code {
        ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    res
}
