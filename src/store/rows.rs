//! The rows the OAuth tables hold, as the store returns and accepts them.

use super::impl_from_row;
use crate::domain::pkce;
use crate::domain::resource::Resources;
use crate::domain::scope::ScopeSet;
use crate::domain::user::User;

/// An authorization code as stored (the code itself only as its hash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub id: i64,
    pub application_id: i64,
    pub user_id: i64,
    pub redirect_uri: String,
    pub scopes: ScopeSet,
    /// The PKCE challenge and its method (RFC 7636 §4.3), stored together or not at all.
    pub code_challenge: Option<pkce::Challenge>,
    pub nonce: Option<String>,
    pub auth_time: i64,
    pub created_at: i64,
    pub expires_at: i64,
    pub consumed_at: Option<i64>,
    /// The browser session the code was issued in.
    pub session_id: Option<i64>,
    /// RFC 8707: the resources the user authorized.
    pub resources: Resources,
    /// RFC 9449 §10: the key the code is bound to (`dpop_jkt` at the authorization).
    pub dpop_jkt: Option<String>,
}

/// `oauth_grants` as its columns read; [`Grant`] pairs the two PKCE columns.
pub(super) struct GrantRow {
    id: i64,
    application_id: i64,
    user_id: i64,
    redirect_uri: String,
    scopes: ScopeSet,
    code_challenge: Option<String>,
    code_challenge_method: Option<pkce::Method>,
    nonce: Option<String>,
    auth_time: i64,
    created_at: i64,
    expires_at: i64,
    consumed_at: Option<i64>,
    session_id: Option<i64>,
    resources: Resources,
    dpop_jkt: Option<String>,
}
impl_from_row!(GrantRow {
    id: i64,
    application_id: i64,
    user_id: i64,
    redirect_uri: String,
    scopes: ScopeSet,
    code_challenge: Option<String>,
    code_challenge_method: Option<pkce::Method>,
    nonce: Option<String>,
    auth_time: i64,
    created_at: i64,
    expires_at: i64,
    consumed_at: Option<i64>,
    session_id: Option<i64>,
    resources: Resources,
    dpop_jkt: Option<String>,
} and rusqlite);

impl TryFrom<GrantRow> for Grant {
    type Error = sqlx::Error;

    /// A challenge without its method (or the reverse) is refused rather than read as
    /// `plain`: Doorward and doorkeeper always store both.
    fn try_from(r: GrantRow) -> Result<Grant, sqlx::Error> {
        let code_challenge = match (r.code_challenge, r.code_challenge_method) {
            (Some(value), Some(method)) => Some(pkce::Challenge { value, method }),
            (None, None) => None,
            _ => {
                return Err(sqlx::Error::Decode(
                    format!("grant {}: a PKCE challenge without its method", r.id).into(),
                ));
            }
        };
        Ok(Grant {
            id: r.id,
            application_id: r.application_id,
            user_id: r.user_id,
            redirect_uri: r.redirect_uri,
            scopes: r.scopes,
            code_challenge,
            nonce: r.nonce,
            auth_time: r.auth_time,
            created_at: r.created_at,
            expires_at: r.expires_at,
            consumed_at: r.consumed_at,
            session_id: r.session_id,
            resources: r.resources,
            dpop_jkt: r.dpop_jkt,
        })
    }
}

pub struct NewGrant<'a> {
    pub code_hash: &'a [u8],
    pub application_id: i64,
    pub user_id: i64,
    pub redirect_uri: &'a str,
    pub scopes: &'a str,
    pub code_challenge: Option<&'a pkce::Challenge>,
    pub nonce: Option<&'a str>,
    pub auth_time: i64,
    pub expires_at: i64,
    pub session_id: Option<i64>,
    /// Space-separated (`Resources::stored`).
    pub resources: Option<&'a str>,
    /// The application is a dynamically registered one: its first code marks it as used.
    pub dynamic_client: bool,
    /// RFC 9449 §10: the proof key the code is bound to.
    pub dpop_jkt: Option<&'a str>,
    /// RFC 9126 §4: the pushed request this code answers, spent in the same transaction.
    pub pushed_request: Option<i64>,
}

/// An access token row; the refresh token, when there is one, lives on the same row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessToken {
    pub id: i64,
    pub application_id: Option<i64>,
    pub user_id: Option<i64>,
    pub grant_id: Option<i64>,
    /// Shared by every token of one chain of refreshes; revoking a chain uses it.
    pub family: Vec<u8>,
    pub scopes: ScopeSet,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    /// RFC 8707: the resources of the authorization behind it (a refresh may name any
    /// subset), and those this token is for (its audience).
    pub resources: Resources,
    pub audience: Resources,
    /// RFC 9449: the thumbprint of the key this token is bound to (`cnf.jkt`); `None` for
    /// a bearer token.
    pub dpop_jkt: Option<String>,
}
impl_from_row!(AccessToken {
    id: i64,
    application_id: Option<i64>,
    user_id: Option<i64>,
    grant_id: Option<i64>,
    family: Vec<u8>,
    scopes: ScopeSet,
    created_at: i64,
    expires_at: i64,
    revoked_at: Option<i64>,
    resources: Resources,
    audience: Resources,
    dpop_jkt: Option<String>,
});

/// What to insert for a new token pair.
pub struct NewToken<'a> {
    pub token_hash: &'a [u8],
    pub refresh_token_hash: Option<&'a [u8]>,
    pub application_id: Option<i64>,
    pub user_id: Option<i64>,
    pub grant_id: Option<i64>,
    pub family: &'a [u8],
    pub scopes: &'a str,
    pub created_at: i64,
    pub expires_at: i64,
    /// Space-separated (`Resources::stored`).
    pub resources: Option<&'a str>,
    pub audience: Option<&'a str>,
    /// RFC 9449: the proof key's thumbprint, for a DPoP-bound pair.
    pub dpop_jkt: Option<&'a str>,
}

/// An access token with its owner and client, as bearer validation needs them.
#[derive(Clone, Debug)]
pub struct TokenWithOwner {
    pub token: AccessToken,
    /// Shared with the API's caller, so a cached token's owner is never copied per request.
    pub user: Option<std::sync::Arc<User>>,
    /// The `client_id` of the application, if any.
    pub client_id: Option<String>,
}
