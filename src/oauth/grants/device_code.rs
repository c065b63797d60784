//! RFC 8628 §3.4–3.5: the device polling the token endpoint with its device code.

use super::super::client_auth::AuthenticatedClient;
use super::super::error::{ErrorCode, OAuthError};
use super::super::issue::{Issuance, Write, issue};
use super::super::params::Params;
use super::super::response::TokenResponse;
use crate::domain::secret;
use crate::oidc::id_token::Subject;
use crate::state::AppState;
use crate::store::device;

/// The grant type URN of RFC 8628 §3.4.
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// RFC 8628 §3.5: a device polling too fast is told to add five seconds to its interval.
const SLOW_DOWN_STEP: i64 = 5;

pub async fn exchange(
    state: &AppState,
    client: &AuthenticatedClient,
    params: &Params,
    dpop_jkt: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let device_code = params.require("device_code")?;
    let now = state.clock.now();
    let grant = state
        .store
        .device_grant_by_device_code(&secret::hash(device_code))
        .await?
        // RFC 6749 §5.2: another client's code is invalid_grant, as an unknown one.
        .filter(|g| g.application_id == client.application.id)
        .ok_or_else(|| {
            OAuthError::new(ErrorCode::InvalidGrant)
                .detail("unknown device code or another client's")
        })?;
    // GitLab: a redeemed device grant is gone, so the code is unknown (spec §1.12).
    if grant.status == device::CONSUMED {
        return Err(OAuthError::new(ErrorCode::InvalidGrant).detail("device code already redeemed"));
    }
    // RFC 8628 §3.5: expired_token once `expires_in` has passed.
    if grant.expires_at <= now {
        return Err(OAuthError::new(ErrorCode::ExpiredToken));
    }
    // RFC 8628 §3.5: slow_down is a variant of authorization_pending, so the polling rate
    // is enforced only while the user has not decided; once they have, the device gets its
    // answer at once.
    match grant.status.as_str() {
        device::PENDING => {
            let too_fast = grant
                .last_polled_at
                .is_some_and(|last| now - last < grant.poll_interval);
            // Polling faster than the interval is slow_down, and the interval grows.
            let interval = grant.poll_interval + if too_fast { SLOW_DOWN_STEP } else { 0 };
            state
                .store
                .record_device_poll(grant.id, now, interval)
                .await?;
            return Err(OAuthError::new(if too_fast {
                ErrorCode::SlowDown
            } else {
                ErrorCode::AuthorizationPending
            }));
        }
        // RFC 8628 §3.5: access_denied after Deny.
        device::DENIED => return Err(OAuthError::new(ErrorCode::AccessDenied)),
        _ => {}
    }
    let user_id = grant.user_id.ok_or_else(|| {
        OAuthError::new(ErrorCode::InvalidGrant).detail("approved without a user")
    })?;
    // GitLab: only active users resolve (spec §4.3).
    let Some(user) = state
        .store
        .user_by_id(user_id)
        .await?
        .filter(|u| u.is_active())
    else {
        return Err(OAuthError::new(ErrorCode::InvalidGrant).detail("the user is blocked or gone"));
    };

    let requested_resources = params.resources()?;
    let issued = issue(
        state,
        Issuance {
            application_id: Some(client.application.id),
            user_id: Some(user_id),
            grant_id: None,
            family: None,
            scopes: &grant.scopes,
            // RFC 8707 §2: no earlier authorization to stay within; the token is for
            // what this request names.
            resources: &requested_resources,
            audience: &requested_resources,
            with_refresh: true,
            write: Write::RedeemDevice { id: grant.id },
            dpop_jkt,
            subject: Some(Subject {
                user: &user,
                client_id: &client.application.uid,
                auth_time: grant.auth_time.unwrap_or(now),
                nonce: None,
                browser_session: grant.session_id,
            }),
        },
    )
    .await?;
    match issued {
        Some(response) => Ok(response),
        None => {
            Err(OAuthError::new(ErrorCode::InvalidGrant)
                .detail("device code redeemed concurrently"))
        }
    }
}
