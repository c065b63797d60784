//! The id_token (OpenID Connect Core §2, §3.1.3.6; spec §4.1): issued with the access token
//! whenever the granted scopes include `openid`, by the code, refresh, password and device
//! grants, as GitLab does.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::claims::user_claims;
use crate::domain::scope::ScopeSet;
use crate::domain::secret::base64url;
use crate::domain::user::User;
use crate::oauth::error::OAuthError;
use crate::oauth::response::TokenResponse;
use crate::state::AppState;

/// What an id_token is about.
pub struct Subject<'a> {
    pub user: &'a User,
    /// The client's `client_id`, the token's audience.
    pub client_id: &'a str,
    /// When the user authenticated (Unix seconds).
    pub auth_time: i64,
    /// The authorization request's `nonce`, echoed (Core §2); never on refresh (Core
    /// §12.2).
    pub nonce: Option<&'a str>,
    /// The browser session the user authorized in (code and device flows), under which
    /// the login is recorded for Back-Channel Logout; `None` for the password grant and
    /// refreshes (recorded when the chain began).
    pub browser_session: Option<i64>,
}

/// The `sid` of a chain of tokens (Back-Channel Logout 1.0 §2.1, Core §3.1.3.x): derived
/// from the refresh chain's random id, so every id_token of one sign-in at one client
/// carries the same `sid` and nothing about the browser session leaks.
pub fn sid_of_chain(family: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"doorward sid\0");
    hasher.update(family);
    base64url(&hasher.finalize()[..16])
}

/// Core §3.1.3.6: base64url of the left half of the SHA-256 of the access token's ASCII
/// octets (SHA-256 because both RS256 and ES256 use it).
pub fn at_hash(access_token: &str) -> String {
    let digest = Sha256::digest(access_token.as_bytes());
    base64url(&digest[..16])
}

/// The claims of an id_token issued at `now` for `access_token`.
pub fn claims(
    issuer: &str,
    subject: &Subject<'_>,
    scopes: &ScopeSet,
    access_token: &str,
    sid: &str,
    now: i64,
    lifetime: i64,
) -> Map<String, Value> {
    let mut c = Map::new();
    c.insert("iss".into(), Value::String(issuer.to_string()));
    // GitLab sends `aud` as a string, not an array (Core §2 allows both).
    c.insert("aud".into(), Value::String(subject.client_id.to_string()));
    // GitLab: exp = iat + the id_token lifetime, 120 s by default (spec §2.3).
    c.insert("exp".into(), Value::from(now + lifetime));
    c.insert("iat".into(), Value::from(now));
    c.insert("auth_time".into(), Value::from(subject.auth_time));
    if let Some(nonce) = subject.nonce.filter(|n| !n.is_empty()) {
        c.insert("nonce".into(), Value::String(nonce.to_string()));
    }
    c.insert("at_hash".into(), Value::String(at_hash(access_token)));
    // Back-Channel Logout 1.0 §2.1: `sid` in every id_token, matched by logout tokens.
    c.insert("sid".into(), Value::String(sid.to_string()));
    c.extend(user_claims(subject.user, scopes, issuer));
    c
}

/// Signs an id_token for `response` when its scope includes `openid`.
pub async fn attach(
    state: &AppState,
    response: &mut TokenResponse,
    scopes: &ScopeSet,
    subject: &Subject<'_>,
    sid: &str,
) -> Result<(), OAuthError> {
    // Core §3.1.2.1: without `openid` it is plain OAuth, and gets no id_token.
    if !scopes.contains("openid") {
        return Ok(());
    }
    let now = state.clock.now();
    let ring = state
        .signing_keys
        .ring(&state.store, now)
        .await
        .map_err(super::server_error)?;
    let key = ring
        .signing()
        .ok_or_else(|| super::server_error("no signing key"))?;
    let mut claims = claims(
        &state.config.external_url,
        subject,
        scopes,
        &response.access_token,
        sid,
        now,
        state.config.id_token_lifetime,
    );
    // GitLab (spec §4.2): `groups_direct` is in the id_token only, with `openid`.
    let groups = state.store.group_claims(subject.user.id, now).await?;
    claims.insert(
        "groups_direct".into(),
        super::claims::groups_direct(&groups.rows),
    );
    response.id_token = Some(key.sign(&claims).map_err(super::server_error)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_is_the_left_half_of_sha256() {
        // OpenID Connect Core Appendix A.3/A.4 use RS256 with this access token and give
        // at_hash 77QmUPtjPfzWtF2AnpK9RQ.
        assert_eq!(
            at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }
}
