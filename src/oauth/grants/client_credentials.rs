//! RFC 6749 §4.4: the client credentials grant. Only confidential clients, which can
//! authenticate, may use it; the token belongs to no user, so it carries no refresh token
//! (§4.4.3) and no OpenID Connect scopes.

use super::super::authorization_request::requested_scopes;
use super::super::client_auth::{self, PresentedCredentials};
use super::super::error::{ErrorCode, OAuthError};
use super::super::issue::{MintedTokens, TokenOwner, new_family};
use super::super::params::Params;
use super::super::response::TokenResponse;
use crate::app::AppState;

pub async fn exchange(
    state: &AppState,
    creds: Option<&PresentedCredentials>,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    let creds = creds
        .ok_or_else(|| OAuthError::new(ErrorCode::InvalidClient).detail("no client credentials"))?;
    let client = client_auth::authenticate(&state.store, creds).await?;
    if !client.application.confidential || !client.with_secret {
        return Err(OAuthError::new(ErrorCode::UnauthorizedClient)
            .detail("client credentials grant for a public client"));
    }
    let scopes = requested_scopes(&client.application, params.get("scope"))?;
    if let Some(s) = scopes.iter().find(|s| s.oidc) {
        return Err(OAuthError::with_description(
            ErrorCode::InvalidScope,
            format!(
                "The {} scope needs a user; the client credentials grant has none.",
                s.name
            ),
        ));
    }
    let now = state.clock.now();
    let lifetime = state.config.access_token_lifetime;
    let tokens = MintedTokens::new(false);
    let family = new_family();
    let scope_text = scopes.to_string();
    let owner = TokenOwner {
        application_id: Some(client.application.id),
        user_id: None,
        grant_id: None,
        family: &family,
        scopes: &scope_text,
    };
    state
        .store
        .insert_token(&tokens.row(&owner, now, lifetime))
        .await?;
    Ok(tokens.response(&scopes, now, lifetime))
}
