//! `POST /oauth/token` (RFC 6749 §3.2): parse, authenticate the client, dispatch on
//! `grant_type`.

use axum::extract::State;
use axum::http::HeaderMap;

use super::client_auth;
use super::error::{ErrorCode, OAuthError};
use super::grants::{authorization_code, client_credentials, device_code, password, refresh_token};
use super::params::BodyParams;
use super::response::{TokenError, TokenResponse};
use crate::app::AppState;
use crate::http::client_ip::ClientIp;

pub async fn token(
    State(state): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    BodyParams(params): BodyParams,
) -> Result<TokenResponse, TokenError> {
    params.reject_repeated()?;
    let grant_type = params.require("grant_type")?;
    let creds = client_auth::presented(&headers, &params)?;
    let response = match grant_type {
        "authorization_code" => {
            // RFC 6749 §4.1.3: a public client identifies itself with client_id.
            let creds = creds.ok_or_else(|| {
                OAuthError::new(ErrorCode::InvalidClient).detail("no client credentials")
            })?;
            let client = client_auth::authenticate(&state.store, &creds).await?;
            authorization_code::exchange(&state, &client, &params).await?
        }
        "refresh_token" => refresh_token::refresh(&state, creds.as_ref(), &params).await?,
        "password" => password::exchange(&state, creds.as_ref(), &params, ip).await?,
        "client_credentials" => {
            client_credentials::exchange(&state, creds.as_ref(), &params).await?
        }
        device_code::GRANT_TYPE => device_code::exchange(&state, creds.as_ref(), &params).await?,
        other => {
            return Err(OAuthError::new(ErrorCode::UnsupportedGrantType)
                .detail(format!("grant_type {other}"))
                .into());
        }
    };
    Ok(response)
}
