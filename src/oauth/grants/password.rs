//! RFC 6749 §4.3: the resource owner password credentials grant.
//!
//! A confidential client must authenticate; a public one only when the instance allows it
//! (`DOORWARD_PASSWORD_GRANT_PUBLIC_CLIENTS`). Users with two-factor authentication are
//! refused (GitLab), as are blocked users and wrong credentials, with one message for an
//! unknown user and a wrong password. Failures count in the same throttle as the sign-in
//! page, and the password hash runs on the bounded blocking pool.

use super::super::authorization_request::requested_scopes;
use super::super::client_auth::{self, PresentedCredentials};
use super::super::error::{ErrorCode, OAuthError};
use super::super::issue::{MintedTokens, TokenOwner, new_family};
use super::super::params::Params;
use super::super::response::TokenResponse;
use crate::accounts::{self, PasswordCheck};
use crate::app::AppState;
use crate::domain::secret::SecretString;
use crate::domain::sign_in_throttle as throttle;
use crate::http::client_ip::ClientIp;
use crate::oidc::id_token::{self, Subject};

pub const INVALID_CREDENTIALS: &str = "Invalid login or password.";
pub const TWO_FACTOR: &str = "This account has two-factor authentication enabled; the password grant is not available for it. Use the authorization code flow or a personal access token.";

pub async fn exchange(
    state: &AppState,
    creds: Option<&PresentedCredentials>,
    params: &Params,
    ip: ClientIp,
) -> Result<TokenResponse, OAuthError> {
    let creds = creds.ok_or_else(|| {
        OAuthError::new(ErrorCode::InvalidClient).detail("password grant without a client")
    })?;
    let client = client_auth::authenticate(&state.store, creds).await?;
    let app = &client.application;
    if !app.confidential && !state.config.password_grant_public_clients {
        return Err(OAuthError::new(ErrorCode::UnauthorizedClient)
            .detail("password grant for a public client"));
    }
    let login = params.require("username")?.trim().to_string();
    let password = SecretString::new(params.require("password")?);
    let scopes = requested_scopes(app, params.get("scope"))?;

    let user = match accounts::check_password(
        &state.store,
        &state.hasher,
        &state.clock,
        &login,
        &password,
        ip.0,
    )
    .await?
    {
        PasswordCheck::Valid(user) => *user,
        PasswordCheck::Locked(seconds) => {
            return Err(OAuthError::with_description(
                ErrorCode::InvalidGrant,
                throttle::lockout_message(seconds),
            ));
        }
        PasswordCheck::Invalid => {
            return Err(
                OAuthError::with_description(ErrorCode::InvalidGrant, INVALID_CREDENTIALS)
                    .detail("wrong credentials"),
            );
        }
    };
    if !user.is_active() {
        return Err(OAuthError::with_description(
            ErrorCode::InvalidGrant,
            "Your account has been blocked.",
        ));
    }
    if user.two_factor_enabled {
        return Err(OAuthError::with_description(
            ErrorCode::InvalidGrant,
            TWO_FACTOR,
        ));
    }
    let now = state.clock.now();
    let lifetime = state.config.access_token_lifetime;
    let tokens = MintedTokens::new(true);
    let family = new_family();
    let scope_text = scopes.to_string();
    let owner = TokenOwner {
        application_id: Some(app.id),
        user_id: Some(user.id),
        grant_id: None,
        family: &family,
        scopes: &scope_text,
    };
    state
        .store
        .insert_token(&tokens.row(&owner, now, lifetime))
        .await?;
    let mut response = tokens.response(&scopes, now, lifetime);
    // GitLab issues an id_token here too (spec §4.1); the password was just checked, so
    // that is the authentication time, and a `nonce` parameter is echoed.
    let subject = Subject {
        user: &user,
        client_id: &app.uid,
        auth_time: now,
        nonce: params.get("nonce"),
    };
    id_token::attach(state, &mut response, &scopes, &subject).await?;
    Ok(response)
}
