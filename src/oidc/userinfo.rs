//! `GET` and `POST /oauth/userinfo` (OpenID Connect Core §5.3, spec §1.9): `sub` and the
//! profile claims for an access token with `openid`.
//!
//! The token is read by the bearer sink: the `access_token` parameter (query, or a form
//! body on POST) or `Authorization: Bearer`, exactly one of them (RFC 6750 §2). Errors
//! follow RFC 6750 §3 (Core §5.3.3) with GitLab's empty bodies: 401 without an error code
//! for a missing token (docs/compatibility.md), 401 `invalid_token` for an unknown, expired
//! or revoked token (or a blocked owner), 403 `insufficient_scope` without `openid`.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::claims::{UserInfo, UserInfoGroupClaims, user_claims};
use crate::http::body;
use crate::oauth::bearer::{self, Challenge, Methods, TokenProblem};
use crate::oauth::response::no_store;
use crate::state::AppState;

/// An RFC 6750 §3 answer with GitLab's empty body.
fn challenge(challenge: Challenge<'_>) -> Response {
    let mut res = no_store(challenge.status().into_response());
    res.headers_mut()
        .insert(header::WWW_AUTHENTICATE, challenge.www_authenticate());
    res
}

fn invalid_token(description: &str) -> Response {
    challenge(Challenge::InvalidToken(description))
}

pub async fn userinfo(State(state): State<AppState>, req: Request) -> Response {
    let (parts, body_stream) = req.into_parts();
    // Core §5.3.1 / RFC 6750 §2.2: a form body may carry the token on POST.
    let form = parts.method == axum::http::Method::POST
        && parts.headers.get(header::CONTENT_TYPE).is_some_and(|v| {
            v.as_bytes()
                .starts_with(b"application/x-www-form-urlencoded")
        });
    let pairs = if form {
        let bytes = axum::body::to_bytes(body_stream, body::MAX_BODY_BYTES)
            .await
            .unwrap_or_default();
        body::parse_form_pairs(&bytes).unwrap_or_default()
    } else {
        Vec::new()
    };
    let token = match bearer::presented(&(&parts).into(), Some(&pairs), Methods::RFC6750) {
        Ok(token) => token,
        // RFC 6750 §3.1: no token gets no error code; several are invalid_request.
        Err(problem) => return challenge(bearer::challenge_for(problem)),
    };
    let now = state.clock.now();
    let dpop_refusal = |refusal: crate::oauth::dpop::DpopRefusal| {
        let mut res = no_store(StatusCode::UNAUTHORIZED.into_response());
        res.headers_mut()
            .insert(header::WWW_AUTHENTICATE, refusal.www_authenticate());
        res
    };
    // RFC 6750 §3.1 invalid_token, with GitLab's three descriptions (spec §1.9); under the
    // DPoP scheme, RFC 9449 §7.1's DPoP challenge.
    let refused = |description: &'static str| match crate::oauth::dpop::invalid_token_under_scheme(
        &state,
        &parts.headers,
        description,
    ) {
        Some(refusal) => dpop_refusal(refusal),
        None => invalid_token(description),
    };
    let unavailable = |e: crate::store::StoreError| {
        tracing::warn!(error = %e, "userinfo lookup failed");
        no_store(StatusCode::SERVICE_UNAVAILABLE.into_response())
    };
    let found = match bearer::validate(&state, &token, now).await {
        Ok(Ok(found)) => found,
        Ok(Err(TokenProblem::Expired)) => return refused("The access token expired"),
        Ok(Err(TokenProblem::Revoked)) => return refused("The access token was revoked"),
        Ok(Err(TokenProblem::Unknown)) => return refused("The access token is invalid"),
        Err(e) => return unavailable(e),
    };
    // RFC 9449 §7.1: a DPoP-bound token only with its proof, under the DPoP scheme.
    match crate::oauth::dpop::check_resource_request(
        &state,
        &parts.headers,
        &parts.method,
        crate::oauth::dpop::request_path(&parts),
        &token,
        found.token.dpop_jkt.as_deref(),
    )
    .await
    {
        Ok(Ok(())) => {}
        Ok(Err(refusal)) => return dpop_refusal(refusal),
        Err(e) => return unavailable(e),
    }
    // Only active users resolve (spec §4.3); a token without a user has no claims.
    let Some(user) = found.user.as_deref().filter(|u| u.is_active()) else {
        return refused("The access token is invalid");
    };
    let scopes = &found.token.scopes;
    // GitLab (spec §1.9): `openid` is required, else 403; RFC 6750 §3.1 insufficient_scope.
    if !scopes.contains("openid") {
        return challenge(Challenge::InsufficientScope {
            description: Some(
                "The request requires higher privileges than provided by the access token.",
            ),
            scope: "openid",
        });
    }
    // GitLab (spec §4.2): `groups` and the three level claims in UserInfo only. They may
    // come from the node's cache, which every membership or group change evicts (migration
    // 0011), so a change shows on the next answer.
    let groups = match state.store.group_claims(user.id, now).await {
        Ok(groups) => groups,
        Err(e) => {
            tracing::warn!(error = %e, "userinfo group lookup failed");
            return no_store(StatusCode::SERVICE_UNAVAILABLE.into_response());
        }
    };
    let info = UserInfo {
        profile: user_claims(user, scopes, &state.config.external_url),
        groups: UserInfoGroupClaims(&groups.rows),
    };
    no_store(Json(info).into_response())
}
