//! The bearer sink (RFC 6750): reading a presented access token, validating it with one
//! indexed lookup, and the `WWW-Authenticate` challenges. The API, token info, UserInfo and
//! introspection all read tokens and answer challenges here; only their response bodies
//! differ (GitLab's shapes).

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, Uri, header};

use super::presented_token;
use crate::state::AppState;
use crate::store::StoreResult;
use crate::store::access_tokens::TokenWithOwner;

/// The realm of every bearer challenge.
pub const REALM: &str = "Doorward";

/// Why a presented access token is not usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenProblem {
    Unknown,
    Revoked,
    Expired,
}

/// The live token behind `presented`, or why there is none: unknown, revoked and expired
/// are all `invalid_token` (RFC 6750 §3.1), worded apart as GitLab does (spec §5.4).
/// Blocked owners are the caller's business (the API words that differently).
pub async fn validate(
    state: &AppState,
    presented: &str,
    now: i64,
) -> StoreResult<Result<Arc<TokenWithOwner>, TokenProblem>> {
    // One indexed lookup for Doorward's tokens; imported ones may take a second (issue 16).
    let Some(found) = presented_token::access_token(state, presented).await? else {
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

/// Where a request may carry its token. RFC 6750 §2 defines the first three; GitLab's API
/// adds its own `PRIVATE-TOKEN` header and `private_token` parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Methods {
    /// `Authorization: Bearer` (§2.1).
    pub header: bool,
    /// `access_token` in a form body (§2.2).
    pub body: bool,
    /// `access_token` in the query (§2.3).
    pub query: bool,
    /// GitLab's `PRIVATE-TOKEN` header and `private_token` query parameter.
    pub gitlab_private_token: bool,
}

impl Methods {
    /// Token info: header or query (doorkeeper).
    pub const HEADER_OR_QUERY: Methods = Methods {
        header: true,
        body: false,
        query: true,
        gitlab_private_token: false,
    };
    /// UserInfo: all three of RFC 6750 (OpenID Connect Core §5.3.1).
    pub const RFC6750: Methods = Methods {
        header: true,
        body: true,
        query: true,
        gitlab_private_token: false,
    };
    /// Introspection's own caller credential: the header only (the body holds the token
    /// being introspected, RFC 7662 §2.1).
    pub const HEADER: Methods = Methods {
        header: true,
        body: false,
        query: false,
        gitlab_private_token: false,
    };
    /// The GitLab API: header, query and GitLab's private-token forms.
    pub const GITLAB_API: Methods = Methods {
        header: true,
        body: false,
        query: true,
        gitlab_private_token: true,
    };
}

/// The parts of a request a token can be read from besides its body.
pub struct RequestTarget<'a> {
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
}

impl<'a> From<&'a axum::http::request::Parts> for RequestTarget<'a> {
    fn from(parts: &'a axum::http::request::Parts) -> Self {
        RequestTarget {
            uri: &parts.uri,
            headers: &parts.headers,
        }
    }
}

/// Why no single token could be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PresentError {
    /// No credentials at all (RFC 6750 §3.1: answer without an error code).
    Missing,
    /// More than one method carried a token (RFC 6750 §2: "MUST NOT use more than one").
    SeveralMethods,
}

/// The one token the request carries, by the methods `allowed`. `form_body` is the
/// request's form-urlencoded body, when the endpoint accepts the body method and the
/// request has one. Empty values count as absent.
pub fn presented(
    parts: &RequestTarget<'_>,
    form_body: Option<&[(String, String)]>,
    allowed: Methods,
) -> Result<String, PresentError> {
    let mut found: Vec<String> = Vec::with_capacity(1);
    let query_param = |name: &str| -> Vec<String> {
        parts
            .uri
            .query()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .filter(|(k, v)| k == name && !v.is_empty())
                    .map(|(_, v)| v.into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    // Another scheme (Basic at introspection) is not a bearer token; the scheme is
    // case-insensitive (RFC 9110 §11.1; GitLab too, spec §1.1). `DPoP` (RFC 9449 §7.1)
    // carries the token the same way; whether the token may come so is checked once it is
    // known (`oauth::dpop::check_resource_request`).
    if allowed.header
        && let Some((scheme, token)) = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
        && (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("dpop"))
        && !token.trim().is_empty()
    {
        found.push(token.trim().to_owned());
    }
    if allowed.query {
        found.extend(query_param("access_token"));
    }
    if allowed.body
        && let Some(pairs) = form_body
    {
        found.extend(
            pairs
                .iter()
                .filter(|(k, v)| k == "access_token" && !v.is_empty())
                .map(|(_, v)| v.clone()),
        );
    }
    if allowed.gitlab_private_token {
        found.extend(query_param("private_token"));
        if let Some(v) = parts
            .headers
            .get("private-token")
            .and_then(|v| v.to_str().ok())
            && !v.is_empty()
        {
            found.push(v.to_owned());
        }
    }
    // RFC 6750 §2: exactly one method; none gets §3.1's challenge without an error code.
    match found.len() {
        0 => Err(PresentError::Missing),
        1 => Ok(found.swap_remove(0)),
        _ => Err(PresentError::SeveralMethods),
    }
}

/// An RFC 6750 §3 challenge: what goes into `WWW-Authenticate`. The status of each is
/// fixed by §3.1: 400 `invalid_request`, 401 `invalid_token` (and no code at all), 403
/// `insufficient_scope`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge<'a> {
    /// No credentials: just the scheme and realm.
    Missing,
    InvalidRequest(&'a str),
    InvalidToken(&'a str),
    /// The scope(s) that would allow the request, space-separated.
    InsufficientScope {
        description: Option<&'a str>,
        scope: &'a str,
    },
}

impl Challenge<'_> {
    pub fn status(&self) -> axum::http::StatusCode {
        use axum::http::StatusCode;
        match self {
            Challenge::Missing | Challenge::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            Challenge::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Challenge::InsufficientScope { .. } => StatusCode::FORBIDDEN,
        }
    }

    /// The `error` code, if any.
    pub fn error(&self) -> Option<&'static str> {
        match self {
            Challenge::Missing => None,
            Challenge::InvalidRequest(_) => Some("invalid_request"),
            Challenge::InvalidToken(_) => Some("invalid_token"),
            Challenge::InsufficientScope { .. } => Some("insufficient_scope"),
        }
    }

    pub fn description(&self) -> Option<&str> {
        match self {
            Challenge::Missing => None,
            Challenge::InvalidRequest(d) | Challenge::InvalidToken(d) => Some(d),
            Challenge::InsufficientScope { description, .. } => *description,
        }
    }

    /// The header value. Quotes and backslashes cannot occur in our own descriptions;
    /// they are dropped anyway so the quoted-string stays well formed (RFC 6750 §3).
    pub fn www_authenticate(&self) -> HeaderValue {
        let quoted = |s: &str| s.replace(['"', '\\'], "");
        let mut value = format!("Bearer realm=\"{REALM}\"");
        if let Some(error) = self.error() {
            value.push_str(&format!(", error=\"{error}\""));
        }
        if let Some(description) = self.description() {
            value.push_str(&format!(", error_description=\"{}\"", quoted(description)));
        }
        if let Challenge::InsufficientScope { scope, .. } = self {
            value.push_str(&format!(", scope=\"{}\"", quoted(scope)));
        }
        HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("Bearer"))
    }
}

pub const SEVERAL_METHODS: &str =
    "The access token was sent by more than one method; use exactly one.";

/// The challenge for a token that could not be read.
pub fn challenge_for(problem: PresentError) -> Challenge<'static> {
    match problem {
        PresentError::Missing => Challenge::Missing,
        PresentError::SeveralMethods => Challenge::InvalidRequest(SEVERAL_METHODS),
    }
}
