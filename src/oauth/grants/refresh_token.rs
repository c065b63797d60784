//! RFC 6749 §6: refreshing an access token, with rotation (RFC 9700 §4.14.2).
//!
//! Each refresh revokes the old pair and issues a new one in one transaction. Presenting a
//! refresh token that was already rotated or revoked is treated as theft: the whole chain
//! of tokens descending from the same authorization is revoked.

use super::super::client_auth::AuthenticatedClient;
use super::super::error::{ErrorCode, OAuthError};
use super::super::issue::{Issuance, Write, issue};
use super::super::params::Params;
use super::super::presented_token;
use super::super::response::TokenResponse;
use crate::domain::scope::ScopeSet;
use crate::oidc::id_token::Subject;
use crate::state::AppState;

fn invalid_grant(detail: &str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidGrant).detail(detail)
}

pub async fn refresh(
    state: &AppState,
    client: Option<&AuthenticatedClient>,
    params: &Params,
    dpop_jkt: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let presented = params.require("refresh_token")?;
    let now = state.clock.now();
    let found = presented_token::refresh_token(state, presented)
        .await?
        // RFC 6749 §5.2: an unknown refresh token is invalid_grant.
        .ok_or_else(|| invalid_grant("unknown refresh token"))?;
    let token = &found.token;

    // RFC 6749 §6: the client that holds the token must authenticate as at the code
    // exchange. GitLab answers invalid_grant (not invalid_client) when an app-bound refresh
    // has no client (spec §1.4).
    match (token.application_id, client) {
        (Some(app_id), Some(client)) => {
            if client.application.id != app_id {
                return Err(invalid_grant("refresh token issued to another client"));
            }
        }
        (Some(_), None) => {
            return Err(invalid_grant(
                "client authentication required for this refresh token",
            ));
        }
        (None, _) => {}
    }

    // RFC 9700 §4.14.2: a rotated (or revoked) refresh token presented again is theft.
    if token.revoked_at.is_some() {
        let revoked = state.store.revoke_token_chain(token.id, now).await?;
        return Err(invalid_grant(&format!(
            "refresh token reused; revoked {revoked} token(s) of its chain"
        )));
    }
    // RFC 9449 §5: a public client's refresh token is bound to its key; another key or
    // none is refused before the rotation, so the token stays unused and valid.
    let public = client.is_none_or(|c| !c.application.confidential);
    if public
        && let Some(bound) = token.dpop_jkt.as_deref()
        && dpop_jkt != Some(bound)
    {
        return Err(invalid_grant(
            "the refresh token is bound to another DPoP key",
        ));
    }
    // GitLab: only active users resolve (spec §4.3).
    if token.user_id.is_some() && !found.user.as_ref().is_some_and(|u| u.is_active()) {
        return Err(invalid_grant("the user is blocked or gone"));
    }

    let original = &token.scopes;
    let scopes = match params.get("scope") {
        Some(requested) => {
            // RFC 6749 §3.3: a malformed or unknown scope is invalid_scope.
            let requested = ScopeSet::parse_non_empty(requested)
                .map_err(|e| OAuthError::new(ErrorCode::InvalidScope).detail(e.to_string()))?;
            // RFC 6749 §6: the scope may narrow, never widen.
            if !requested.is_subset_of(original) {
                return Err(OAuthError::new(ErrorCode::InvalidScope)
                    .detail("refresh asked for scopes beyond the original grant"));
            }
            requested
        }
        None => original.clone(),
    };
    // RFC 8707 §2.2: any subset of the authorization's resources, never another; refused
    // here, before the rotation, the refresh token stays unused and valid.
    let audience = token
        .resources
        .narrow(&params.resources()?)
        .map_err(|why| OAuthError::with_description(ErrorCode::InvalidTarget, why))?;

    // OpenID Connect Core §12.2: a new id_token for the same subject and client, without
    // a nonce. GitLab's `auth_time` is the user's last sign-in, where §12.2 wants the time
    // of the original authentication.
    let subject = match (&found.user, &found.client_id) {
        (Some(user), Some(client_id)) => Some(Subject {
            user,
            client_id,
            auth_time: user.current_sign_in_at.unwrap_or(token.created_at),
            nonce: None,
            browser_session: None,
        }),
        _ => None,
    };
    let issued = issue(
        state,
        Issuance {
            application_id: token.application_id,
            user_id: token.user_id,
            // The chain's first row keeps the code it came from; a replayed code reaches the
            // later rows through their chain (`Store::revoke_tokens_of_grant`), so a rotation
            // writes no entry into the index of grants (issue 15: that entry lands at the
            // chain's own place in the index, a page of its own for nearly every rotation).
            grant_id: None,
            family: Some(&token.family),
            scopes: &scopes,
            resources: &token.resources,
            audience: &audience,
            with_refresh: true,
            write: Write::Rotate { token_id: token.id },
            dpop_jkt,
            subject,
        },
    )
    .await?;
    match issued {
        Some(response) => Ok(response),
        None => {
            // Rotated by a concurrent request between our read and our write: a reuse
            // (RFC 9700 §4.14.2).
            state.store.revoke_token_chain(token.id, now).await?;
            Err(invalid_grant("refresh token used concurrently"))
        }
    }
}
