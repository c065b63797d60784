//! Who is calling the API: the token is looked up by its SHA-256 in one indexed query
//! joined with its owner, then checked for revocation, expiry and the owner's state.
//!
//! Token sources (read by the bearer sink, `oauth::bearer`): the `private_token` parameter,
//! the `PRIVATE-TOKEN` header, the `access_token` parameter and `Authorization: Bearer`;
//! exactly one of them (RFC 6750 §2), where GitLab would take the first in that order.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::error::ApiError;
use crate::domain::scope::ScopeSet;
use crate::domain::secret::{self, PERSONAL_ACCESS_TOKEN_PREFIX};
use crate::domain::user::User;
use crate::oauth::bearer::{self, Methods, PresentError, TokenProblem};
use crate::state::AppState;

/// `last_used_at` is refreshed at most this often (seconds), so that reads stay reads.
const LAST_USED_GRANULARITY: i64 = 600;

pub const EXPIRED: &str = "Token is expired. You can either do re-authorization or token refresh.";
/// A token whose RFC 8707 audience does not include this API.
const OTHER_AUDIENCE: &str = "Token is not intended for this resource.";
pub const REVOKED: &str = "Token was revoked. You have to re-authorize from the user.";
pub const UNKNOWN: &str = "Token is unknown.";

/// The authenticated caller of an API request.
#[derive(Clone, Debug)]
pub struct Caller {
    /// Shared with the token cache's entry (an OAuth token) or the caller's own row.
    pub user: std::sync::Arc<User>,
    pub scopes: ScopeSet,
    pub token: TokenRef,
}

/// Which credential authenticated the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenRef {
    Personal {
        id: i64,
    },
    /// An OAuth access token, and the application it was issued to.
    OAuth {
        id: i64,
        application_id: Option<i64>,
    },
}

impl Caller {
    /// Passes when the token holds at least one of `any_of`.
    pub fn require_scope(&self, any_of: &'static [&'static str]) -> Result<(), ApiError> {
        if self.scopes.contains_any(any_of) {
            Ok(())
        } else {
            Err(ApiError::InsufficientScope(any_of))
        }
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.user.is_admin {
            Ok(())
        } else {
            Err(ApiError::Forbidden("403 Forbidden".into()))
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = match bearer::presented(&(&*parts).into(), None, Methods::GITLAB_API) {
            Ok(token) => token,
            Err(PresentError::Missing) => return Err(ApiError::Unauthorized),
            Err(PresentError::SeveralMethods) => return Err(ApiError::SeveralTokens),
        };
        // OAuth access tokens: Doorward's, and unprefixed ones imported from GitLab (issue
        // 16), which `bearer::validate` finds as well.
        if !token.starts_with(PERSONAL_ACCESS_TOKEN_PREFIX) {
            return oauth_caller(state, parts, &token).await;
        }
        // RFC 9449 §7.1: only access tokens are DPoP-bound; a personal access token under
        // the DPoP scheme is not one.
        if let Some(refusal) = crate::oauth::dpop::invalid_token_under_scheme(
            state,
            &parts.headers,
            "A personal access token is not DPoP-bound: present it as PRIVATE-TOKEN or Bearer.",
        ) {
            return Err(ApiError::Dpop(refusal));
        }
        let (pat, user) = state
            .store
            .personal_access_token_by_hash(&secret::hash(&token))
            .await?
            .ok_or(ApiError::InvalidToken(UNKNOWN))?;
        let now = state.clock.now();
        if pat.revoked {
            return Err(ApiError::InvalidToken(REVOKED));
        }
        if pat.expires_at.is_some_and(|e| e <= now) {
            return Err(ApiError::InvalidToken(EXPIRED));
        }
        if !user.is_active() {
            return Err(ApiError::Forbidden(
                "403 Forbidden - Your account has been blocked.".into(),
            ));
        }
        if pat
            .last_used_at
            .is_none_or(|t| t < now - LAST_USED_GRANULARITY)
        {
            state
                .store
                .touch_personal_access_token(pat.id, now, LAST_USED_GRANULARITY)
                .await?;
        }
        let scopes = pat.scopes.clone();
        Ok(Caller {
            user: user.into(),
            scopes,
            token: TokenRef::Personal { id: pat.id },
        })
    }
}

/// `Option<Caller>`: `None` only when the request carries no token at all (GitLab's
/// anonymous access to public groups); a token that is presented must be valid.
impl axum::extract::OptionalFromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, Self::Rejection> {
        match <Caller as FromRequestParts<AppState>>::from_request_parts(parts, state).await {
            Ok(caller) => Ok(Some(caller)),
            Err(ApiError::Unauthorized) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// An OAuth access token: live, with an active owner. Tokens without a user (client
/// credentials) cannot act on the user API.
async fn oauth_caller(state: &AppState, parts: &Parts, token: &str) -> Result<Caller, ApiError> {
    let description = match bearer::validate(state, token, state.clock.now()).await? {
        Ok(found) => return oauth_token_caller(state, parts, token, found).await,
        Err(TokenProblem::Unknown) => UNKNOWN,
        Err(TokenProblem::Revoked) => REVOKED,
        Err(TokenProblem::Expired) => EXPIRED,
    };
    Err(invalid_token(state, parts, description))
}

/// `invalid_token`: RFC 6750's `Bearer` challenge, or under the DPoP scheme RFC 9449
/// §7.1's `DPoP` one.
fn invalid_token(state: &AppState, parts: &Parts, description: &'static str) -> ApiError {
    match crate::oauth::dpop::invalid_token_under_scheme(state, &parts.headers, description) {
        Some(refusal) => ApiError::Dpop(refusal),
        None => ApiError::InvalidToken(description),
    }
}

/// A live OAuth access token's caller: its sender constraint, audience and owner checked.
async fn oauth_token_caller(
    state: &AppState,
    parts: &Parts,
    token: &str,
    found: std::sync::Arc<crate::store::rows::TokenWithOwner>,
) -> Result<Caller, ApiError> {
    // RFC 9449 §7.1: a DPoP-bound token only with its proof, under the DPoP scheme.
    crate::oauth::dpop::check_resource_request(
        state,
        &parts.headers,
        &parts.method,
        crate::oauth::dpop::request_path(parts),
        token,
        found.token.dpop_jkt.as_deref(),
    )
    .await?
    .map_err(ApiError::Dpop)?;
    // RFC 8707 (issue 13): a token bound to other resources is not for this API, so a
    // resource server (an MCP server) cannot replay a user's token against Doorward.
    if !found.token.audience.is_empty()
        && !found
            .token
            .audience
            .contains(&crate::oauth::protected_resource::api_resource_of(
                &state.config,
            ))
    {
        return Err(invalid_token(state, parts, OTHER_AUDIENCE));
    }
    let Some(user) = found.user.clone() else {
        return Err(ApiError::Forbidden(
            "403 Forbidden - This endpoint needs a token issued for a user.".into(),
        ));
    };
    if !user.is_active() {
        return Err(ApiError::Forbidden(
            "403 Forbidden - Your account has been blocked.".into(),
        ));
    }
    Ok(Caller {
        user,
        scopes: found.token.scopes.clone(),
        token: TokenRef::OAuth {
            id: found.token.id,
            application_id: found.token.application_id,
        },
    })
}
