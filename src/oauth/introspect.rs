//! `POST /oauth/introspect` (RFC 7662). The caller authenticates as a client, or with a
//! bearer token of its own; it learns about tokens of its own application only (GitLab),
//! and anything unknown, expired, revoked or foreign is just `{"active": false}`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::bearer::{self, Methods, RequestTarget};
use super::client_auth;
use super::error::{ErrorCode, OAuthError};
use super::params::BodyParams;
use super::presented_token;
use super::response::{TokenError, no_store};
use crate::state::AppState;

pub async fn introspect(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    BodyParams(params): BodyParams,
) -> Result<Response, TokenError> {
    // RFC 6749 §3.2, as at the token endpoint: no parameter twice.
    params.reject_repeated()?;
    let now = state.clock.now();
    let token = params.require("token")?;
    // RFC 7662 §2.1: the caller authenticates, as a client or by a bearer token.
    // Issue 13 (docs/security.md): a confidential application an administrator created,
    // authenticated by its secret, is a resource server: it may introspect any token
    // issued for a resource (RFC 8707), whichever client got it. Everyone else sees only
    // their own application's tokens.
    let (caller_app, resource_server) =
        match client_auth::optional(&state, &headers, &params, client_auth::INTROSPECTION).await? {
            Some(client) => (
                client.application.id,
                client.with_secret
                    && client.application.confidential
                    && client.application.is_instance_wide(),
            ),
            None => {
                // A resource server may authenticate with an access token of its own. Without
                // either, 401 invalid_client (docs/compatibility.md, RFC 7662 §2.3).
                let target = RequestTarget {
                    uri: &uri,
                    headers: &headers,
                };
                let presented =
                    bearer::presented(&target, None, Methods::HEADER).map_err(|_| {
                        OAuthError::new(ErrorCode::InvalidClient)
                            .detail("no client credentials or bearer token")
                    })?;
                // GitLab (spec §1.6): a token cannot introspect itself.
                if presented == token {
                    return Err(OAuthError::new(ErrorCode::InvalidClient)
                        .detail("a token cannot introspect itself")
                        .into());
                }
                let found = bearer::validate(&state, &presented, now)
                    .await?
                    .map_err(|_| {
                        OAuthError::new(ErrorCode::InvalidClient).detail("invalid bearer token")
                    })?;
                // RFC 9449 §7.1: a DPoP-bound caller token only with its proof.
                super::dpop::check_resource_request(
                    &state,
                    &headers,
                    &axum::http::Method::POST,
                    "/oauth/introspect",
                    &presented,
                    found.token.dpop_jkt.as_deref(),
                )
                .await?
                .map_err(|r| OAuthError::new(ErrorCode::InvalidClient).detail(r.description))?;
                let app = found.token.application_id.ok_or_else(|| {
                    OAuthError::new(ErrorCode::InvalidClient)
                        .detail("bearer token without an application")
                })?;
                (app, false)
            }
        };

    let (found, is_refresh) = presented_token::either(&state, token).await?;
    let token_type = if is_refresh {
        "refresh_token"
    } else {
        "Bearer"
    };
    // RFC 7662 §2.2: unknown, expired, revoked or not the caller's is `active: false` and
    // nothing else. Refresh tokens do not expire (GitLab, spec §2.3).
    let inactive = || no_store(Json(json!({"active": false})).into_response());
    let Some(found) = found else {
        return Ok(inactive());
    };
    let t = &found.token;
    let expired = token_type == "Bearer" && t.expires_at <= now;
    let owner_blocked = t.user_id.is_some() && !found.user.as_ref().is_some_and(|u| u.is_active());
    let visible =
        t.application_id == Some(caller_app) || (resource_server && !t.audience.is_empty());
    if t.revoked_at.is_some() || expired || owner_blocked || !visible {
        return Ok(inactive());
    }
    // RFC 7662 §2.2 / RFC 8707: the resources the token is for, and the client's own id;
    // without resources, the client id alone, as GitLab answers.
    let aud = if t.audience.is_empty() {
        found.client_id.as_deref().map(|c| json!(c))
    } else {
        let mut list: Vec<&str> = t.audience.iter().collect();
        list.extend(found.client_id.as_deref());
        Some(json!(list))
    };
    // RFC 9449 §6.2: a bound access token's type and its key (`cnf.jkt`). The row's key
    // binds its refresh token only for a public client (§5): a confidential client's
    // refresh token is bound by the client's own authentication, so it shows no `cnf`.
    let token_type = match (token_type, &t.dpop_jkt) {
        ("Bearer", Some(_)) => "DPoP",
        (other, _) => other,
    };
    let cnf_jkt = match (is_refresh, t.dpop_jkt.as_deref(), t.application_id) {
        (true, Some(jkt), Some(app)) => state
            .store
            .application_by_id(app)
            .await?
            .filter(|a| !a.confidential)
            .map(|_| jkt),
        (true, _, _) => None,
        (false, jkt, _) => jkt,
    };
    let body = Active {
        active: true,
        scope: &t.scopes,
        client_id: found.client_id.as_deref(),
        token_type,
        cnf: cnf_jkt.map(|jkt| json!({ "jkt": jkt })),
        exp: (token_type != "refresh_token").then_some(t.expires_at),
        iat: t.created_at,
        aud,
        iss: &state.config.external_url,
        sub: found.user.as_ref().map(|u| u.id.to_string()),
        username: found.user.as_ref().map(|u| u.username.as_str()),
    };
    Ok(no_store(Json(body).into_response()))
}

/// The answer for an active token (RFC 7662 §2.2), serialised without an intermediate map.
#[derive(serde::Serialize)]
struct Active<'a> {
    active: bool,
    scope: &'a crate::domain::scope::ScopeSet,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<&'a str>,
    token_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cnf: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    iat: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<serde_json::Value>,
    iss: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<&'a str>,
}
