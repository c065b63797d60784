//! Validating an OAuth access token presented by a client (RFC 6750): one indexed lookup
//! on the token's hash, joined with its owner and client.

use crate::domain::secret::{self, ACCESS_TOKEN_PREFIX};
use crate::store::oauth::TokenWithOwner;
use crate::store::{Store, StoreResult};

/// Why a presented access token is not usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenProblem {
    Unknown,
    Revoked,
    Expired,
}

/// The live token behind `presented`, or why there is none. Blocked owners are the
/// caller's business (the API words that differently).
pub async fn validate(
    store: &Store,
    presented: &str,
    now: i64,
) -> StoreResult<Result<TokenWithOwner, TokenProblem>> {
    if !presented.starts_with(ACCESS_TOKEN_PREFIX) {
        return Ok(Err(TokenProblem::Unknown));
    }
    let Some(found) = store.access_token_by_hash(&secret::hash(presented)).await? else {
        return Ok(Err(TokenProblem::Unknown));
    };
    if found.token.revoked_at.is_some() {
        return Ok(Err(TokenProblem::Revoked));
    }
    if found.token.expires_at <= now {
        return Ok(Err(TokenProblem::Expired));
    }
    Ok(Ok(found))
}

/// The token a request carries for OAuth endpoints: the `access_token` query parameter
/// first (GitLab's order), then `Authorization: Bearer`.
pub fn presented(parts: &axum::http::request::Parts) -> Option<String> {
    let from_query = parts.uri.query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "access_token")
            .map(|(_, v)| v.into_owned())
    });
    from_query
        .or_else(|| {
            let value = parts
                .headers
                .get(axum::http::header::AUTHORIZATION)?
                .to_str()
                .ok()?;
            let (scheme, token) = value.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_owned())
        })
        .filter(|t| !t.is_empty())
}
