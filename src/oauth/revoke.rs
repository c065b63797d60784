//! `POST /oauth/revoke` (RFC 7009). The client authenticates; an unknown token is a
//! success (§2.2: nothing to tell an attacker); a token of another client is refused with
//! 403 and left alone (GitLab; doorkeeper GHSA-h5m9-42h9-vcq6). Revoking an access token
//! ends its row (and the refresh token on it); revoking a refresh token ends every token of
//! its grant (§2.1).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::client_auth;
use super::error::ErrorCode;
use super::params::BodyParams;
use super::presented_token;
use super::response::{TokenError, no_store};
use crate::state::AppState;

pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    BodyParams(params): BodyParams,
) -> Result<Response, TokenError> {
    // RFC 6749 §3.2, as at the token endpoint: no parameter twice.
    params.reject_repeated()?;
    // RFC 7009 §2.1: the client authenticates; it may revoke only its own tokens.
    let client = client_auth::require(&state, &headers, &params, client_auth::REVOCATION).await?;
    let token = params.require("token")?;
    // The prefix says what the token is, so `token_type_hint` (a mere hint, §2.1) is not
    // needed for the lookup.
    let (found, is_refresh) = presented_token::either(&state, token).await?;
    // RFC 7009 §2.2: an invalid token is no error.
    let Some(found) = found else {
        return Ok(ok());
    };
    // RFC 7009 §2.1: another client's token is refused; the 403 unauthorized_client is
    // GitLab's (spec §1.5).
    if found.token.application_id != Some(client.application.id) {
        let body = json!({
            "error": ErrorCode::UnauthorizedClient.as_str(),
            "error_description": "You are not authorized to revoke this token",
        });
        return Ok(no_store(
            (StatusCode::FORBIDDEN, Json(body)).into_response(),
        ));
    }
    let now = state.clock.now();
    // RFC 7009 §2.1: a refresh token takes every token of its grant along; an access token
    // takes its own refresh token (MAY).
    let revoked = if is_refresh {
        state.store.revoke_token_chain(found.token.id, now).await?
    } else {
        state.store.revoke_token(found.token.id, now).await?
    };
    tracing::info!(client_id = %client.application.uid, token_id = found.token.id, revoked, "token revoked");
    Ok(ok())
}

fn ok() -> Response {
    no_store(Json(json!({})).into_response())
}
