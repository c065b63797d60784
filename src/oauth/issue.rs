//! Minting token pairs: fresh random tokens, their hashes for storage, and the response.

use super::response::TokenResponse;
use crate::domain::scope::ScopeSet;
use crate::domain::secret::{self, ACCESS_TOKEN_PREFIX, REFRESH_TOKEN_PREFIX, SecretString};
use crate::store::oauth::NewToken;

/// A new access token (and refresh token), in clear for the response and hashed for the
/// database.
pub struct MintedTokens {
    access: SecretString,
    refresh: Option<SecretString>,
    access_hash: [u8; 32],
    refresh_hash: Option<[u8; 32]>,
}

impl MintedTokens {
    pub fn new(with_refresh: bool) -> MintedTokens {
        let access = secret::generate(ACCESS_TOKEN_PREFIX);
        let refresh = with_refresh.then(|| secret::generate(REFRESH_TOKEN_PREFIX));
        MintedTokens {
            access_hash: secret::hash(access.expose()),
            refresh_hash: refresh.as_ref().map(|r| secret::hash(r.expose())),
            access,
            refresh,
        }
    }

    /// The row to store for these tokens.
    pub fn row<'a>(&'a self, owner: &TokenOwner<'a>, now: i64, lifetime: i64) -> NewToken<'a> {
        NewToken {
            token_hash: &self.access_hash,
            refresh_token_hash: self.refresh_hash.as_ref().map(|h| &h[..]),
            application_id: owner.application_id,
            user_id: owner.user_id,
            grant_id: owner.grant_id,
            family: owner.family,
            scopes: owner.scopes,
            created_at: now,
            expires_at: now + lifetime,
        }
    }

    /// The RFC 6749 §5.1 response for these tokens.
    pub fn response(self, scopes: &ScopeSet, now: i64, lifetime: i64) -> TokenResponse {
        TokenResponse {
            access_token: self.access.into_inner(),
            token_type: "Bearer",
            expires_in: lifetime,
            refresh_token: self.refresh.map(SecretString::into_inner),
            scope: scopes.to_string(),
            created_at: now,
            id_token: None,
        }
    }
}

/// Whom a token pair belongs to and where it came from.
pub struct TokenOwner<'a> {
    pub application_id: Option<i64>,
    pub user_id: Option<i64>,
    /// The authorization code it was exchanged for, if any.
    pub grant_id: Option<i64>,
    /// The refresh chain it belongs to.
    pub family: &'a [u8],
    /// Canonical space-separated scopes.
    pub scopes: &'a str,
}

/// A new refresh chain identifier.
pub fn new_family() -> [u8; 16] {
    secret::random_bytes::<16>()
}
