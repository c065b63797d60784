//! `POST /oauth/token` (RFC 6749 §3.2): parse, authenticate the client, dispatch on
//! `grant_type`.

use axum::extract::State;
use axum::http::HeaderMap;

use super::client_auth;
use super::error::{ErrorCode, OAuthError};
use super::grants::{authorization_code, client_credentials, device_code, password, refresh_token};
use super::params::BodyParams;
use super::response::{TokenError, TokenResponse};
use crate::http::client_ip::ClientIp;
use crate::state::AppState;

pub async fn token(
    State(state): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    BodyParams(params): BodyParams,
) -> Result<TokenResponse, TokenError> {
    // RFC 6749 §3.2: no parameter twice.
    params.reject_repeated()?;
    let grant_type = params.require("grant_type")?;
    // RFC 6749 §5.2: an unknown grant type (or `implicit`) is unsupported_grant_type.
    let grant = Grant::parse(grant_type)
        // FAPI 2.0 §5.3.2.1 item 2: no resource owner password credentials grant.
        .filter(|g| !(state.config.fapi2() && *g == Grant::Password))
        .ok_or_else(|| {
            OAuthError::new(ErrorCode::UnsupportedGrantType)
                .detail(format!("grant_type {grant_type}"))
        })?;
    // Authenticated once, here, for every grant (RFC 6749 §3.2.1); each grant then says
    // whether it needs a client.
    let client = client_auth::optional(&state, &headers, &params, client_auth::TOKEN).await?;
    let client = client.as_ref();
    // FAPI 2.0 §5.3.2.1 item 4: every request authenticates its client (no GitLab-style
    // refresh without one).
    if state.config.fapi2() && client.is_none() {
        return Err(OAuthError::new(ErrorCode::InvalidClient)
            .detail("no client credentials under the FAPI 2.0 profile")
            .into());
    }
    // RFC 6749 §5.2 unauthorized_client: a dynamically registered client has the code and
    // refresh grants only (`Application::may_use_grant`).
    if let Some(c) = client
        && !c.application.may_use_grant(grant_type)
    {
        return Err(OAuthError::new(ErrorCode::UnauthorizedClient)
            .detail(format!(
                "grant_type {grant_type} for a dynamically registered client"
            ))
            .into());
    }
    let require = || {
        client.ok_or_else(|| {
            OAuthError::new(ErrorCode::InvalidClient).detail("no client credentials")
        })
    };
    // RFC 9449 §5: a DPoP proof binds what is issued to its key (checked after the client,
    // so a bad client is invalid_client whatever its proof).
    let proof = super::dpop::endpoint_proof(&state, &headers, "/oauth/token").await?;
    let dpop_jkt = proof.as_ref().map(|p| p.jkt.as_str());
    // FAPI 2.0 §5.3.2.1 item 5: every token is sender-constrained, so no grant without a
    // proof under the profile.
    if state.config.fapi2() && proof.is_none() {
        return Err(OAuthError::with_description(
            ErrorCode::InvalidRequest,
            "A DPoP proof is required: this server follows the FAPI 2.0 profile.",
        )
        .into());
    }
    let response = match grant {
        // RFC 6749 §4.1.3: a public client identifies itself with client_id.
        Grant::AuthorizationCode => {
            authorization_code::exchange(&state, require()?, &params, dpop_jkt).await?
        }
        // GitLab: a token issued without a client refreshes without one (spec §1.4).
        Grant::RefreshToken => refresh_token::refresh(&state, client, &params, dpop_jkt).await?,
        // docs/compatibility.md: no client-less ROPC (RFC 6749 §4.3.2, GitLab.com since 2025).
        Grant::Password => password::exchange(&state, require()?, &params, ip, dpop_jkt).await?,
        // RFC 6749 §4.4.2: the client MUST authenticate.
        Grant::ClientCredentials => {
            client_credentials::exchange(&state, require()?, &params, dpop_jkt).await?
        }
        // RFC 8628 §3.4: client_id, authenticated as RFC 6749 §3.2.1 requires.
        Grant::DeviceCode => device_code::exchange(&state, require()?, &params, dpop_jkt).await?,
    };
    Ok(response)
}

/// The grant types of this endpoint (RFC 6749 §4, RFC 8628 §3.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Grant {
    AuthorizationCode,
    RefreshToken,
    Password,
    ClientCredentials,
    DeviceCode,
}

impl Grant {
    fn parse(grant_type: &str) -> Option<Grant> {
        Some(match grant_type {
            "authorization_code" => Grant::AuthorizationCode,
            "refresh_token" => Grant::RefreshToken,
            "password" => Grant::Password,
            "client_credentials" => Grant::ClientCredentials,
            device_code::GRANT_TYPE => Grant::DeviceCode,
            _ => return None,
        })
    }
}
