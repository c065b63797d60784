//! RFC 6749 §4.3: the resource owner password credentials grant.
//!
//! A confidential client must authenticate; a public one only when the instance allows it
//! (`DOORWARD_PASSWORD_GRANT_PUBLIC_CLIENTS`). Users with two-factor authentication are
//! refused (GitLab), as are blocked users and wrong credentials, with one message for an
//! unknown user and a wrong password. Failures count in the same throttle as the sign-in
//! page, and the password hash runs on the bounded blocking pool.

use super::super::authorization_request::requested_scopes;
use super::super::client_auth::AuthenticatedClient;
use super::super::error::{ErrorCode, OAuthError};
use super::super::issue::{Issuance, Write, issue};
use super::super::params::Params;
use super::super::response::TokenResponse;
use crate::accounts::{self, PasswordCheck};
use crate::domain::secret::SecretString;
use crate::domain::sign_in_throttle as throttle;
use crate::http::client_ip::ClientIp;
use crate::oidc::id_token::Subject;
use crate::state::AppState;

pub const INVALID_CREDENTIALS: &str = "Invalid login or password.";
pub const TWO_FACTOR: &str = "This account has two-factor authentication enabled; the password grant is not available for it. Use the authorization code flow or a personal access token.";

pub async fn exchange(
    state: &AppState,
    client: &AuthenticatedClient,
    params: &Params,
    ip: ClientIp,
    dpop_jkt: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let app = &client.application;
    // docs/compatibility.md: public clients only when the instance allows it (RFC 9700 §2.4
    // says the grant MUST NOT be used at all; GitLab self-managed allows it).
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
        // GitLab: failures count towards the sign-in lockout (spec §6).
        PasswordCheck::Locked(seconds) => {
            return Err(OAuthError::with_description(
                ErrorCode::InvalidGrant,
                throttle::lockout_message(seconds),
            ));
        }
        // RFC 6749 §5.2: bad resource owner credentials are invalid_grant; one message for
        // an unknown user and a wrong password.
        PasswordCheck::Invalid { .. } => {
            return Err(
                OAuthError::with_description(ErrorCode::InvalidGrant, INVALID_CREDENTIALS)
                    .detail("wrong credentials"),
            );
        }
    };
    // GitLab (spec §4.3, §6): blocked users and users with two-factor authentication get
    // invalid_grant; RFC 9700 §2.4: the grant cannot do a second factor.
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
    let requested_resources = params.resources()?;
    issue(
        state,
        Issuance {
            application_id: Some(app.id),
            user_id: Some(user.id),
            grant_id: None,
            family: None,
            scopes: &scopes,
            // RFC 8707 §2: no earlier authorization to stay within; the token is for
            // what this request names.
            resources: &requested_resources,
            audience: &requested_resources,
            with_refresh: true,
            write: Write::Insert,
            dpop_jkt,
            // GitLab issues an id_token here too (spec §4.1); the password was just
            // checked, so that is the authentication time, and a `nonce` is echoed.
            subject: Some(Subject {
                user: &user,
                client_id: &app.uid,
                auth_time: now,
                nonce: params.get("nonce"),
                browser_session: None,
            }),
        },
    )
    .await?
    .ok_or_else(|| OAuthError::new(ErrorCode::ServerError).detail("an insert cannot lose a claim"))
}
