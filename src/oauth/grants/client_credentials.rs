//! RFC 6749 §4.4: the client credentials grant. Only confidential clients, which can
//! authenticate, may use it; the token belongs to no user, so it carries no refresh token
//! (§4.4.3) and no OpenID Connect scopes.

use super::super::authorization_request::requested_scopes;
use super::super::client_auth::AuthenticatedClient;
use super::super::error::{ErrorCode, OAuthError};
use super::super::issue::{Issuance, Write, issue};
use super::super::params::Params;
use super::super::response::TokenResponse;
use crate::state::AppState;

pub async fn exchange(
    state: &AppState,
    client: &AuthenticatedClient,
    params: &Params,
    dpop_jkt: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    // RFC 6749 §4.4: confidential clients only; §5.2 unauthorized_client.
    if !client.application.confidential || !client.with_secret {
        return Err(OAuthError::new(ErrorCode::UnauthorizedClient)
            .detail("client credentials grant for a public client"));
    }
    let scopes = requested_scopes(&client.application, params.get("scope"))?;
    // docs/compatibility.md: OIDC scopes need a user (GitLab answers 500); RFC 6749 §5.2.
    if let Some(s) = scopes.iter().find(|s| s.oidc) {
        return Err(OAuthError::with_description(
            ErrorCode::InvalidScope,
            format!(
                "The {} scope needs a user; the client credentials grant has none.",
                s.name
            ),
        ));
    }
    let requested_resources = params.resources()?;
    issue(
        state,
        Issuance {
            application_id: Some(client.application.id),
            user_id: None,
            grant_id: None,
            family: None,
            scopes: &scopes,
            // RFC 8707 §2: no earlier authorization to stay within; the token is for
            // what this request names.
            resources: &requested_resources,
            audience: &requested_resources,
            with_refresh: false,
            write: Write::Insert,
            dpop_jkt,
            subject: None,
        },
    )
    .await?
    .ok_or_else(|| OAuthError::new(ErrorCode::ServerError).detail("an insert cannot lose a claim"))
}
