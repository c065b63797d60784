//! RFC 8628 §3.4–3.5: the device polling the token endpoint with its device code.

use super::super::client_auth::{self, PresentedCredentials};
use super::super::error::{ErrorCode, OAuthError};
use super::super::issue::{MintedTokens, TokenOwner, new_family};
use super::super::params::Params;
use super::super::response::TokenResponse;
use crate::app::AppState;
use crate::domain::scope::ScopeSet;
use crate::domain::secret;
use crate::oidc::id_token::{self, Subject};
use crate::store::device;

/// The grant type URN of RFC 8628 §3.4.
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// RFC 8628 §3.5: a device polling too fast is told to add five seconds to its interval.
const SLOW_DOWN_STEP: i64 = 5;

pub async fn exchange(
    state: &AppState,
    creds: Option<&PresentedCredentials>,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    let creds = creds
        .ok_or_else(|| OAuthError::new(ErrorCode::InvalidClient).detail("no client credentials"))?;
    let client = client_auth::authenticate(&state.store, creds).await?;
    let device_code = params.require("device_code")?;
    let now = state.clock.now();
    let grant = state
        .store
        .device_grant_by_device_code(&secret::hash(device_code))
        .await?
        .filter(|g| g.application_id == client.application.id)
        .ok_or_else(|| {
            OAuthError::new(ErrorCode::InvalidGrant)
                .detail("unknown device code or another client's")
        })?;
    if grant.status == device::CONSUMED {
        return Err(OAuthError::new(ErrorCode::InvalidGrant).detail("device code already redeemed"));
    }
    if grant.expires_at <= now {
        return Err(OAuthError::new(ErrorCode::ExpiredToken));
    }
    if grant
        .last_polled_at
        .is_some_and(|last| now - last < grant.poll_interval)
    {
        state
            .store
            .record_device_poll(grant.id, now, grant.poll_interval + SLOW_DOWN_STEP)
            .await?;
        return Err(OAuthError::new(ErrorCode::SlowDown));
    }
    state
        .store
        .record_device_poll(grant.id, now, grant.poll_interval)
        .await?;
    match grant.status.as_str() {
        device::PENDING => return Err(OAuthError::new(ErrorCode::AuthorizationPending)),
        device::DENIED => return Err(OAuthError::new(ErrorCode::AccessDenied)),
        _ => {}
    }
    let user_id = grant.user_id.ok_or_else(|| {
        OAuthError::new(ErrorCode::InvalidGrant).detail("approved without a user")
    })?;
    let Some(user) = state
        .store
        .user_by_id(user_id)
        .await?
        .filter(|u| u.is_active())
    else {
        return Err(OAuthError::new(ErrorCode::InvalidGrant).detail("the user is blocked or gone"));
    };

    let scopes = ScopeSet::parse(&grant.scopes).unwrap_or_default();
    let lifetime = state.config.access_token_lifetime;
    let tokens = MintedTokens::new(true);
    let family = new_family();
    let scope_text = scopes.to_string();
    let owner = TokenOwner {
        application_id: Some(client.application.id),
        user_id: Some(user_id),
        grant_id: None,
        family: &family,
        scopes: &scope_text,
    };
    match state
        .store
        .consume_device_grant(grant.id, &tokens.row(&owner, now, lifetime), now)
        .await?
    {
        Some(_) => {
            let mut response = tokens.response(&scopes, now, lifetime);
            let subject = Subject {
                user: &user,
                client_id: &client.application.uid,
                auth_time: grant.auth_time.unwrap_or(now),
                nonce: None,
            };
            id_token::attach(state, &mut response, &scopes, &subject).await?;
            Ok(response)
        }
        None => {
            Err(OAuthError::new(ErrorCode::InvalidGrant)
                .detail("device code redeemed concurrently"))
        }
    }
}
