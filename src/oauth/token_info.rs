//! `GET /oauth/token/info`: doorkeeper's token-info endpoint, with GitLab's fields.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::bearer::{self, Challenge, Methods, PresentError};
use super::response::no_store;
use crate::state::AppState;

pub async fn show(State(state): State<AppState>, parts: Parts) -> Response {
    let now = state.clock.now();
    let token = match bearer::presented(&(&parts).into(), None, Methods::HEADER_OR_QUERY) {
        Ok(token) => Some(token),
        // RFC 6750 §2: one method only; §3.1: otherwise invalid_request.
        Err(PresentError::SeveralMethods) => {
            let challenge = bearer::challenge_for(PresentError::SeveralMethods);
            let body =
                json!({"error": challenge.error(), "error_description": challenge.description()});
            let mut res = no_store((challenge.status(), Json(body)).into_response());
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge.www_authenticate());
            return res;
        }
        // GitLab (doorkeeper): no token gets the same invalid_token answer, where RFC 6750
        // §3.1 would send no error code.
        Err(PresentError::Missing) => None,
    };
    let found = match &token {
        Some(token) => bearer::validate(&state, token, now).await,
        None => Ok(Err(bearer::TokenProblem::Unknown)),
    };
    // RFC 9449 §7.1: a DPoP-bound token only with its proof, under the DPoP scheme.
    let refusal = match (&found, &token) {
        (Ok(Ok(t)), Some(token)) => match super::dpop::check_resource_request(
            &state,
            &parts.headers,
            &parts.method,
            crate::oauth::dpop::request_path(&parts),
            token,
            t.token.dpop_jkt.as_deref(),
        )
        .await
        {
            Ok(checked) => checked.err(),
            Err(e) => return super::response::TokenError::from(e).into_response(),
        },
        // §7.1: a token refused under the DPoP scheme gets the DPoP challenge.
        (Ok(Err(_)), _) => super::dpop::invalid_token_under_scheme(
            &state,
            &parts.headers,
            "The access token is invalid",
        ),
        _ => None,
    };
    if let Some(refusal) = refusal {
        let body = json!({"error": refusal.error, "error_description": refusal.description});
        let mut res = no_store((axum::http::StatusCode::UNAUTHORIZED, Json(body)).into_response());
        res.headers_mut()
            .insert(header::WWW_AUTHENTICATE, refusal.www_authenticate());
        return res;
    }
    match found {
        Ok(Ok(t)) => {
            let scopes = t.token.scopes.names();
            let expires_in = t.token.expires_at - now;
            no_store(
                Json(json!({
                    "resource_owner_id": t.token.user_id,
                    "scope": scopes,
                    "expires_in": expires_in,
                    "application": {"uid": t.client_id},
                    "created_at": t.token.created_at,
                    // Deprecated aliases GitLab still sends.
                    "scopes": scopes,
                    "expires_in_seconds": expires_in,
                }))
                .into_response(),
            )
        }
        Ok(Err(_)) => {
            // GitLab's body, with its quirky "state" member; the reason is always "invalid".
            let body = json!({
                "error": "invalid_token",
                "error_description": "The access token is invalid",
                "state": "unauthorized",
            });
            let challenge = Challenge::InvalidToken("The access token is invalid");
            let mut res = no_store((challenge.status(), Json(body)).into_response());
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge.www_authenticate());
            res
        }
        Err(e) => super::response::TokenError::from(e).into_response(),
    }
}
