//! `GET` and `POST /oauth/userinfo` (OpenID Connect Core §5.3, spec §1.9): `sub` and the
//! profile claims for an access token with `openid`.
//!
//! The token is read in GitLab's order: the `access_token` parameter (query, or a form
//! body on POST), then `Authorization: Bearer`. Errors follow RFC 6750 §3 with GitLab's
//! empty bodies: 401 `invalid_token` for a missing, unknown, expired or revoked token (or a
//! blocked owner), 403 `insufficient_scope` without `openid`.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::claims::user_claims;
use crate::app::AppState;
use crate::domain::scope::ScopeSet;
use crate::http::body;
use crate::oauth::bearer::{self, TokenProblem};
use crate::oauth::response::no_store;

fn challenge(status: StatusCode, value: &str) -> Response {
    let mut res = no_store(status.into_response());
    if let Ok(v) = HeaderValue::from_str(value) {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    res
}

fn invalid_token(description: &str) -> Response {
    challenge(
        StatusCode::UNAUTHORIZED,
        &format!(
            "Bearer realm=\"Doorward\", error=\"invalid_token\", error_description=\"{description}\""
        ),
    )
}

/// The `access_token` of a form body, if there is one.
async fn from_body(body: axum::body::Body) -> Option<String> {
    let bytes = axum::body::to_bytes(body, crate::app::MAX_BODY_BYTES)
        .await
        .ok()?;
    body::parse_form_pairs(&bytes)
        .ok()?
        .into_iter()
        .find(|(k, v)| k == "access_token" && !v.is_empty())
        .map(|(_, v)| v)
}

pub async fn userinfo(State(state): State<AppState>, req: Request) -> Response {
    let (parts, body_stream) = req.into_parts();
    // A parameter in the query is found by `bearer::presented`, before the header.
    let in_query = parts.uri.query().is_some_and(|q| {
        url::form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == "access_token" && !v.is_empty())
    });
    let mut presented = None;
    if !in_query && parts.method == axum::http::Method::POST {
        let form = parts.headers.get(header::CONTENT_TYPE).is_some_and(|v| {
            v.as_bytes()
                .starts_with(b"application/x-www-form-urlencoded")
        });
        if form {
            presented = from_body(body_stream).await;
        }
    }
    let Some(token) = presented.or_else(|| bearer::presented(&parts)) else {
        // RFC 6750 §3.1: no credentials, no error code.
        return challenge(StatusCode::UNAUTHORIZED, "Bearer realm=\"Doorward\"");
    };
    let now = state.clock.now();
    let found = match bearer::validate(&state.store, &token, now).await {
        Ok(Ok(found)) => found,
        Ok(Err(TokenProblem::Expired)) => return invalid_token("The access token expired"),
        Ok(Err(TokenProblem::Revoked)) => return invalid_token("The access token was revoked"),
        Ok(Err(TokenProblem::Unknown)) => return invalid_token("The access token is invalid"),
        Err(e) => {
            tracing::warn!(error = %e, "userinfo lookup failed");
            return no_store(StatusCode::SERVICE_UNAVAILABLE.into_response());
        }
    };
    // Only active users resolve (spec §4.3); a token without a user has no claims.
    let Some(user) = found.user.filter(|u| u.is_active()) else {
        return invalid_token("The access token is invalid");
    };
    let scopes = ScopeSet::parse(&found.token.scopes).unwrap_or_default();
    if !scopes.contains("openid") {
        return challenge(
            StatusCode::FORBIDDEN,
            "Bearer realm=\"Doorward\", error=\"insufficient_scope\", error_description=\"The request requires higher privileges than provided by the access token.\", scope=\"openid\"",
        );
    }
    no_store(Json(user_claims(&user, &scopes, &state.config.external_url)).into_response())
}
