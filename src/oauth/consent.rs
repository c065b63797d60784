//! Binding a consent decision to the request the user was shown.
//!
//! The consent form repeats the authorization request in hidden fields (GitLab's form does
//! the same), and the POST is validated again. Re-validation alone would accept a form
//! whose `scope` was edited to anything the application may ask for, so the page also
//! carries a binding: `<issued_at>.<HMAC>` over the session the page was shown in and
//! every field that decides what is issued and where it goes (`client_id`,
//! `redirect_uri`, `response_type`, `response_mode`, `scope`, `state`, `code_challenge`,
//! `code_challenge_method`, `nonce`, the RFC 8707 `resource`s, RFC 9449's `dpop_jkt`). An edited field, another session's form or one older
//! than [`BINDING_LIFETIME`] gives no code (RFC 6749 §10.12: no authorization without the
//! resource owner's explicit consent; CVE-2020-13300 was GitLab's own scope change after
//! consent).

use super::authorization_request::AuthorizationRequest;
use crate::domain::secret;

/// The hidden field carrying the binding.
pub const FIELD: &str = "consent_binding";

/// How long a consent page may stay open before its decision is refused (our choice; no
/// standard sets one).
pub const BINDING_LIFETIME: i64 = 3600;

/// The binding for `request` shown in the session with hash `session_hash` at `now`.
pub fn bind(
    key: &[u8],
    session_hash: &[u8; 32],
    request: &AuthorizationRequest,
    now: i64,
) -> String {
    format!(
        "{now}.{}",
        secret::base64url(&mac(key, session_hash, request, now))
    )
}

/// Whether `presented` is a live binding of exactly `request` to this session.
pub fn verify(
    key: &[u8],
    session_hash: &[u8; 32],
    request: &AuthorizationRequest,
    presented: &str,
    now: i64,
) -> bool {
    let Some((issued, tag)) = presented.split_once('.') else {
        return false;
    };
    let Ok(issued_at) = issued.parse::<i64>() else {
        return false;
    };
    if issued_at > now || now - issued_at > BINDING_LIFETIME {
        return false;
    }
    let expected = secret::base64url(&mac(key, session_hash, request, issued_at));
    secret::constant_time_eq(expected.as_bytes(), tag.as_bytes())
}

fn mac(
    key: &[u8],
    session_hash: &[u8; 32],
    request: &AuthorizationRequest,
    issued_at: i64,
) -> [u8; 32] {
    let scope = request.scopes.to_string();
    let challenge = request.code_challenge.as_ref().map(|c| c.value.as_str());
    let method = request.code_challenge.as_ref().map(|c| c.method.as_str());
    let resources = request.resources.stored();
    let fields: [Option<&str>; 11] = [
        Some(&request.application.uid),
        Some(&request.redirect_uri),
        Some(request.response_type.as_str()),
        Some(request.response_mode.as_str()),
        Some(&scope),
        request.state.as_deref(),
        challenge,
        method,
        request.nonce.as_deref(),
        resources.as_deref(),
        request.dpop_jkt.as_deref(),
    ];
    // Length-prefixed with a presence byte: no two different requests encode alike.
    let mut message = Vec::with_capacity(256);
    message.extend_from_slice(b"consent\0");
    message.extend_from_slice(session_hash);
    message.extend_from_slice(&issued_at.to_be_bytes());
    for field in fields {
        match field {
            Some(v) => {
                message.push(1);
                message.extend_from_slice(&(v.len() as u64).to_be_bytes());
                message.extend_from_slice(v.as_bytes());
            }
            None => message.push(0),
        }
    }
    secret::hmac_sha256(key, &message)
}
