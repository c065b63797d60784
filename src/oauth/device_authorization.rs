//! `POST /oauth/authorize_device` (RFC 8628 §3.1–3.2): a device asks for a device code and
//! a user code, and is told where the user should enter it.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::authorization_request::requested_scopes;
use super::client_auth;
use super::error::{ErrorCode, OAuthError};
use super::params::BodyParams;
use super::response::{TokenError, no_store};
use crate::domain::secret::{self, SecretString};
use crate::domain::user_code;
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::device::NewDeviceGrant;

/// Device codes live five minutes and devices poll every five seconds (GitLab's values; five
/// seconds is also RFC 8628 §3.2's default interval).
pub const DEVICE_CODE_LIFETIME: i64 = 300;
pub const POLL_INTERVAL: i64 = 5;
pub const DEVICE_CODE_PREFIX: &str = "dwdc-";

pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    BodyParams(params): BodyParams,
) -> Result<Response, TokenError> {
    // RFC 6749 §3.2, as at the token endpoint: no parameter twice.
    params.reject_repeated()?;
    // RFC 8628 §3.1: the client authenticates as at the token endpoint.
    let client =
        client_auth::require(&state, &headers, &params, client_auth::DEVICE_AUTHORIZATION).await?;
    // RFC 8628 §3.2 / RFC 6749 §5.2: a dynamically registered client has no device grant.
    if !client
        .application
        .may_use_grant(crate::oauth::grants::device_code::GRANT_TYPE)
    {
        return Err(OAuthError::new(ErrorCode::UnauthorizedClient)
            .detail("device grant for a dynamically registered client")
            .into());
    }
    // RFC 8628 §3.1: `scope` as in RFC 6749 §3.3, checked against the application's scopes
    // (which GitLab's device gem does not do, spec §1.12).
    let scopes = requested_scopes(&client.application, params.get("scope"))?;
    let now = state.clock.now();
    let device_code = secret::generate(DEVICE_CODE_PREFIX);
    let scope_text = scopes.to_string();
    // A fresh user code collides with a live one about once in 2^34 draws; draw again.
    let mut user_code = SecretString::new(String::new());
    for attempt in 0..5 {
        user_code = SecretString::new(user_code::generate());
        let normalized = user_code::normalize(user_code.expose()).unwrap_or_default();
        let grant = NewDeviceGrant {
            device_code_hash: &secret::hash(device_code.expose()),
            user_code_hash: &secret::hash(&normalized),
            application_id: client.application.id,
            scopes: &scope_text,
            expires_at: now + DEVICE_CODE_LIFETIME,
            poll_interval: POLL_INTERVAL,
        };
        match state.store.create_device_grant(&grant, now).await {
            Ok(()) => break,
            Err(StoreError::Conflict(_)) if attempt < 4 => continue,
            Err(e) => return Err(e.into()),
        }
    }
    // docs/compatibility.md: the external URL, not GitLab's request host.
    let verification_uri = format!("{}/oauth/device", state.config.external_url);
    let complete = format!("{verification_uri}?user_code={}", user_code.expose());
    Ok(no_store(
        Json(json!({
            "device_code": device_code.expose(),
            "user_code": user_code.expose(),
            "verification_uri": verification_uri,
            "verification_uri_complete": complete,
            "expires_in": DEVICE_CODE_LIFETIME,
            "interval": POLL_INTERVAL,
        }))
        .into_response(),
    ))
}
