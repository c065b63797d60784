//! OpenID Connect Back-Channel Logout 1.0: when a browser session ends before it expires
//! (sign-out, an administrator's block, a password change), every application that got an
//! id_token in it and registered a `backchannel_logout_uri` is sent a signed logout token.
//!
//! The `sessions_ended` trigger queues one row per application in the same transaction as
//! the session's end (migration 0010); this worker, on every node, claims due rows one at a
//! time and POSTs them, off the request path, retrying with exponential backoff at most
//! [`MAX_ATTEMPTS`] times within [`GIVE_UP_AFTER`]. Outgoing requests go through
//! `http::outgoing` (global addresses only, bounded in time).

use std::time::Duration;

use serde_json::{Value, json};

use crate::domain::secret;
use crate::state::AppState;
use crate::store::backchannel::PendingLogout;

/// How often each node looks for due deliveries.
const POLL: Duration = Duration::from_millis(500);
/// A claimed delivery is not taken by another node for this long (seconds).
const LEASE: i64 = 30;
pub const MAX_ATTEMPTS: i64 = 5;
/// Seconds after the session's end past which a delivery is dropped.
pub const GIVE_UP_AFTER: i64 = 3600;
/// How long a logout token is valid (§2.4 recommends a short lifetime).
const TOKEN_LIFETIME: i64 = 120;
/// §2.4: the only member of `events`.
pub const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// Delivers queued logout tokens for as long as the server runs.
pub async fn deliver_forever(state: AppState) {
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        loop {
            let now = state.clock.now();
            match state.store.claim_backchannel_logout(now, LEASE).await {
                Ok(Some(pending)) => deliver(&state, pending).await,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the back-channel logout queue");
                    break;
                }
            }
        }
    }
}

/// §2.4: the logout token's claims. `sub` and `sid` both, so relying parties that key
/// sessions either way find theirs; never a `nonce` (§2.4 forbids it).
pub fn logout_claims(issuer: &str, pending: &PendingLogout, now: i64) -> Value {
    json!({
        "iss": issuer,
        "aud": pending.client_id,
        "iat": now,
        "exp": now + TOKEN_LIFETIME,
        "jti": secret::base64url(&secret::random_bytes::<16>()),
        "sub": pending.user_id.to_string(),
        "sid": pending.sid,
        "events": { EVENT: {} },
    })
}

async fn deliver(state: &AppState, pending: PendingLogout) {
    let now = state.clock.now();
    let outcome = match sign(state, &pending, now).await {
        Ok(token) => state
            .outgoing
            .post_form(&pending.uri, &[("logout_token", token.as_str())])
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    let store = &state.store;
    let result = match outcome {
        // §2.8: 200 (or 204) means the relying party logged the session out.
        Ok(status) if status.is_success() => {
            tracing::info!(client_id = %pending.client_id, "back-channel logout delivered");
            store.finish_backchannel_logout(pending.id).await
        }
        failed => {
            let why = match failed {
                Ok(status) => format!("answered {status}"),
                Err(e) => e,
            };
            if pending.attempts >= MAX_ATTEMPTS || now - pending.created_at > GIVE_UP_AFTER {
                tracing::warn!(client_id = %pending.client_id, attempts = pending.attempts, error = %why, "back-channel logout given up");
                store.finish_backchannel_logout(pending.id).await
            } else {
                // 2, 4, 8, 16 s…: bounded by MAX_ATTEMPTS.
                let backoff = 1_i64 << pending.attempts.clamp(1, 10);
                tracing::info!(client_id = %pending.client_id, attempts = pending.attempts, error = %why, "back-channel logout failed; will retry");
                store
                    .retry_backchannel_logout(pending.id, now + backoff)
                    .await
            }
        }
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, "cannot update the back-channel logout queue");
    }
}

/// Signed like id_tokens (the same keys, `kid` in the header), explicitly typed
/// `logout+jwt` (§2.4, RFC 8725 §3.11).
async fn sign(state: &AppState, pending: &PendingLogout, now: i64) -> Result<String, String> {
    let ring = state
        .signing_keys
        .ring(&state.store, now)
        .await
        .map_err(|e| e.to_string())?;
    let key = ring.signing().ok_or("no signing key")?;
    key.sign_typed(
        &logout_claims(&state.config.external_url, pending, now),
        "logout+jwt",
    )
    .map_err(|e| e.to_string())
}
