//! RFC 6749 §4.1.3 (with RFC 7636 §4.5–4.6): exchanging an authorization code.
//!
//! Checks run in doorkeeper's order (parameters, client, code, redirect URI, PKCE) and only
//! then one transaction consumes the code and stores the token pair. A code presented a
//! second time is refused and every token issued from it is revoked (§4.1.2).

use super::super::client_auth::AuthenticatedClient;
use super::super::error::{ErrorCode, OAuthError};
use super::super::issue::{Issuance, Write, issue};
use super::super::params::Params;
use super::super::response::TokenResponse;
use crate::domain::pkce;
use crate::domain::secret;
use crate::oidc::id_token::Subject;
use crate::state::AppState;

fn invalid_grant(detail: &str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidGrant).detail(detail)
}

pub async fn exchange(
    state: &AppState,
    client: &AuthenticatedClient,
    params: &Params,
    dpop_jkt: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let code = params.require("code")?;
    // GitLab requires redirect_uri at the exchange even when it could be implied; RFC 6749
    // §4.1.3 does too, as every authorization request here carries one.
    let redirect_uri = params.require("redirect_uri")?;
    let verifier = params.get("code_verifier");
    let now = state.clock.now();

    let (grant, user) = state
        .store
        .grant_by_code_hash(&secret::token_key(code))
        .await?
        .ok_or_else(|| invalid_grant("unknown code"))?;
    // RFC 6749 §4.1.3: the code must have been issued to this client.
    if grant.application_id != client.application.id {
        return Err(invalid_grant("code issued to another client"));
    }
    // RFC 6749 §4.1.2: a code used twice is refused, and its tokens SHOULD be revoked.
    if grant.consumed_at.is_some() {
        let revoked = state.store.revoke_tokens_of_grant(grant.id, now).await?;
        return Err(invalid_grant(&format!(
            "code replayed; revoked {revoked} token(s) issued from it"
        )));
    }
    // RFC 6749 §4.1.2: codes are short-lived (`CODE_LIFETIME`).
    if grant.expires_at <= now {
        return Err(invalid_grant("code expired"));
    }
    // RFC 6749 §4.1.3: identical to the authorization request's redirect_uri.
    if grant.redirect_uri != redirect_uri {
        return Err(invalid_grant(
            "redirect_uri differs from the authorization request",
        ));
    }
    match (&grant.code_challenge, verifier) {
        // RFC 7636 §4.6: the verifier, transformed by the method the challenge was sent
        // with, must equal the challenge.
        (Some(challenge), Some(verifier)) => {
            if !pkce::verify(challenge.method, &challenge.value, verifier) {
                return Err(invalid_grant(
                    "code_verifier does not match the code_challenge",
                ));
            }
        }
        // RFC 7636 §4.5: a code issued with a challenge needs its verifier.
        (Some(_), None) => return Err(OAuthError::missing("code_verifier")),
        // RFC 9700 §2.1.1, §4.8.2 / GitLab: a verifier for a code issued without a challenge
        // is refused, so a PKCE downgrade cannot go unnoticed.
        (None, Some(_)) => {
            return Err(invalid_grant(
                "code_verifier sent for a code issued without code_challenge",
            ));
        }
        (None, None) => {}
    }
    // RFC 9449 §10: a code bound to a key (`dpop_jkt` at the authorization) is redeemed
    // only with a proof by that key; refused before it is consumed.
    if let Some(bound) = grant.dpop_jkt.as_deref()
        && dpop_jkt != Some(bound)
    {
        return Err(invalid_grant("the code is bound to another DPoP key"));
    }
    // GitLab: only active users resolve (spec §4.3); RFC 6749 §5.2 invalid_grant.
    if !user.is_active() {
        return Err(invalid_grant("the user is blocked or gone"));
    }

    // RFC 8707 §2.2: the token is for the resources named here, among those authorized,
    // or for all of them when none is named.
    let audience = grant
        .resources
        .narrow(&params.resources()?)
        .map_err(|why| OAuthError::with_description(ErrorCode::InvalidTarget, why))?;
    let issued = issue(
        state,
        Issuance {
            application_id: Some(client.application.id),
            user_id: Some(grant.user_id),
            grant_id: Some(grant.id),
            family: None,
            scopes: &grant.scopes,
            resources: &grant.resources,
            audience: &audience,
            with_refresh: true,
            write: Write::ExchangeCode { grant_id: grant.id },
            dpop_jkt,
            // OpenID Connect Core §3.1.3.3: with `openid`, an id_token with the nonce of
            // the authorization request and the time of the sign-in it was made in.
            subject: Some(Subject {
                user: &user,
                client_id: &client.application.uid,
                auth_time: grant.auth_time,
                nonce: grant.nonce.as_deref(),
                browser_session: grant.session_id,
            }),
        },
    )
    .await?;
    match issued {
        Some(response) => Ok(response),
        None => {
            // Another exchange of the same code won the race: a replay (RFC 6749 §4.1.2).
            state.store.revoke_tokens_of_grant(grant.id, now).await?;
            Err(invalid_grant("code consumed concurrently"))
        }
    }
}
