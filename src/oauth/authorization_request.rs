//! Validating an authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3).
//!
//! The checks run in a fixed order. Until the client and its redirect URI are verified, an
//! error can only be shown on our own page (§4.1.2.1: never redirect to an unverified URI);
//! after that, errors go back to the client's redirect URI.

use super::error::{ErrorCode, OAuthError};
use super::params::Params;
use crate::domain::application::Application;
use crate::domain::pkce;
use crate::domain::redirect_uri;
use crate::domain::resource::Resources;
use crate::domain::scope::ScopeSet;
use crate::state::AppState;

/// Where the authorization response parameters go (OAuth 2.0 Multiple Response Types §2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseMode {
    Query,
    Fragment,
}

impl ResponseMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseMode::Query => "query",
            ResponseMode::Fragment => "fragment",
        }
    }
}

/// What the client asked for (RFC 6749 §3.1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseType {
    /// The authorization code grant (§4.1).
    Code,
    /// The implicit grant (§4.2), only when the instance enables it.
    Token,
}

impl ResponseType {
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseType::Code => "code",
            ResponseType::Token => "token",
        }
    }
}

/// A verified authorization request.
#[derive(Clone, Debug)]
pub struct AuthorizationRequest {
    pub application: Application,
    pub response_type: ResponseType,
    /// The redirect URI exactly as requested (it matched a registered one).
    pub redirect_uri: String,
    pub response_mode: ResponseMode,
    pub state: Option<String>,
    pub scopes: ScopeSet,
    pub code_challenge: Option<pkce::Challenge>,
    pub nonce: Option<String>,
    /// RFC 8707: the resources the tokens are to be for (empty: none named).
    pub resources: Resources,
    /// RFC 9449 §10: the thumbprint of the key the code is bound to.
    pub dpop_jkt: Option<String>,
}

/// Why a request was refused, and where the answer may go.
#[derive(Debug)]
pub enum AuthorizeError {
    /// The client or its redirect URI is not verified: show our error page.
    Page(OAuthError),
    /// Send the error back to the verified redirect URI.
    Redirect {
        redirect_uri: String,
        response_mode: ResponseMode,
        state: Option<String>,
        error: OAuthError,
    },
}

impl From<crate::store::StoreError> for AuthorizeError {
    fn from(e: crate::store::StoreError) -> Self {
        AuthorizeError::Page(e.into())
    }
}

/// GitLab's wording for an unverifiable redirect URI.
pub const INVALID_REDIRECT_URI: &str = "The redirect URI included is not valid.";

/// Longest `state` / `nonce` accepted; they travel in URLs.
const MAX_OPAQUE_LEN: usize = 2048;

pub async fn validate(
    state: &AppState,
    params: &Params,
) -> Result<AuthorizationRequest, AuthorizeError> {
    let page = |e: OAuthError| AuthorizeError::Page(e);
    // RFC 6749 §4.1.2.1: a missing or unknown client is never redirected to.
    let client_id = params
        .get("client_id")
        .ok_or_else(|| page(OAuthError::missing("client_id")))?;
    let application =
        super::metadata_document_clients::application_for_authorization(state, client_id)
            .await
            .map_err(page)?
            .ok_or_else(|| {
                page(OAuthError::new(ErrorCode::InvalidClient).detail("unknown client_id"))
            })?;
    // GitLab (spec §1.2) and OpenID Connect Core §3.1.2.1: redirect_uri is required, even
    // with one registered URI (RFC 6749 §3.1.2.3 would let it be implied).
    let requested_uri = params.get("redirect_uri").ok_or_else(|| {
        page(OAuthError::with_description(
            ErrorCode::InvalidRequest,
            INVALID_REDIRECT_URI,
        ))
    })?;
    let registered = application.redirect_uris();
    // RFC 9700 §4.1.3: exact match (loopback ports aside, RFC 8252 §7.3); RFC 6749 §3.1.2.4:
    // an unmatched URI gets our page, never a redirect.
    if redirect_uri::find_match(&registered, requested_uri).is_none() {
        return Err(page(
            OAuthError::with_description(ErrorCode::InvalidRequest, INVALID_REDIRECT_URI)
                .detail("redirect_uri not registered"),
        ));
    }
    // RFC 6749 §3.1: a repeated client_id or redirect_uri makes the target itself ambiguous.
    if params.is_repeated("client_id") || params.is_repeated("redirect_uri") {
        return Err(page(OAuthError::with_description(
            ErrorCode::InvalidRequest,
            INVALID_REDIRECT_URI,
        )));
    }

    // From here on the redirect URI is verified, so errors go back to the client.
    let state_param = params.get("state").map(str::to_string);
    // Tokens never travel in a query string (Multiple Response Types §2.1, §7), so the
    // implicit grant answers in the fragment, errors included.
    let implicit = params.get("response_type") == Some("token") && state.config.implicit_grant;
    let response_mode = match params.get("response_mode") {
        Some("fragment") => ResponseMode::Fragment,
        _ if implicit => ResponseMode::Fragment,
        _ => ResponseMode::Query,
    };
    let back = |error: OAuthError| AuthorizeError::Redirect {
        redirect_uri: requested_uri.to_string(),
        response_mode,
        state: state_param.clone(),
        error,
    };
    // RFC 6749 §3.1: no parameter twice.
    params.reject_repeated().map_err(back)?;
    // Multiple Response Types §2.1's modes only; form_post needs a script to submit itself
    // (docs/compatibility.md).
    if params
        .get("response_mode")
        .is_some_and(|mode| !matches!(mode, "query" | "fragment"))
    {
        return Err(back(OAuthError::with_description(
            ErrorCode::InvalidRequest,
            "The authorization server does not support this response mode.",
        )));
    }
    // RFC 6749 §3.1.1: missing is invalid_request, not understood is
    // unsupported_response_type; `token` only when enabled (RFC 9700 §2.1.2).
    let response_type = match params.get("response_type") {
        None => return Err(back(OAuthError::missing("response_type"))),
        Some("code") => ResponseType::Code,
        Some("token") if implicit => ResponseType::Token,
        Some(_) => return Err(back(OAuthError::new(ErrorCode::UnsupportedResponseType))),
    };
    if response_type == ResponseType::Token {
        // Multiple Response Types §7: fragment-default responses never go in the query.
        if params.get("response_mode") == Some("query") {
            return Err(back(OAuthError::with_description(
                ErrorCode::InvalidRequest,
                "The implicit grant answers in the fragment; response_mode=query is not allowed.",
            )));
        }
        // GitLab refused the implicit grant to confidential applications: they can use
        // the code flow, and a token in a URL would bypass their secret.
        if application.confidential {
            return Err(back(
                OAuthError::new(ErrorCode::UnauthorizedClient)
                    .detail("implicit grant for a confidential client"),
            ));
        }
        // RFC 9700 §2.1.1: PKCE is required, and the implicit grant cannot carry it.
        if application.require_pkce || state.config.require_pkce {
            return Err(back(OAuthError::with_description(
                ErrorCode::UnauthorizedClient,
                "This application must use the authorization code flow with PKCE.",
            )));
        }
    }
    // Our own bound on state and nonce (no RFC sets one); over it is RFC 6749 §4.1.2.1
    // invalid_request.
    if state_param
        .as_ref()
        .is_some_and(|s| s.len() > MAX_OPAQUE_LEN)
    {
        return Err(back(OAuthError::with_description(
            ErrorCode::InvalidRequest,
            "The state parameter is too long.",
        )));
    }
    let nonce = params.get("nonce").map(str::to_string);
    if nonce.as_ref().is_some_and(|n| n.len() > MAX_OPAQUE_LEN) {
        return Err(back(OAuthError::with_description(
            ErrorCode::InvalidRequest,
            "The nonce parameter is too long.",
        )));
    }

    let scopes = requested_scopes(&application, params.get("scope")).map_err(back)?;
    // RFC 8707 §2: malformed is invalid_target, sent back with state and iss.
    let resources = params.resources().map_err(back)?;
    let code_challenge = match response_type {
        ResponseType::Code => code_challenge(state, &application, params).map_err(back)?,
        ResponseType::Token => None,
    };
    // RFC 9449 §10: an RFC 7638 SHA-256 thumbprint, 43 base64url characters.
    let dpop_jkt = params.get("dpop_jkt").map(str::to_string);
    if dpop_jkt.as_ref().is_some_and(|j| {
        j.len() != 43
            || !j
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }) {
        return Err(back(OAuthError::with_description(
            ErrorCode::InvalidRequest,
            "The dpop_jkt parameter is not a JWK SHA-256 thumbprint.",
        )));
    }
    // RFC 9449 §10 binds an authorization code; a token in a fragment cannot be bound, and
    // silently issuing a bearer token instead would defeat what the client asked for.
    if dpop_jkt.is_some() && response_type == ResponseType::Token {
        return Err(back(OAuthError::with_description(
            ErrorCode::InvalidRequest,
            "dpop_jkt binds an authorization code: use response_type=code.",
        )));
    }

    Ok(AuthorizationRequest {
        response_type,
        redirect_uri: requested_uri.to_string(),
        response_mode,
        state: state_param,
        scopes,
        code_challenge,
        nonce,
        resources,
        dpop_jkt,
        application,
    })
}

/// The scopes to grant: the requested ones if all are the application's, or, when none are
/// requested, `api` if the application has it (GitLab's default scope).
pub fn requested_scopes(
    application: &Application,
    requested: Option<&str>,
) -> Result<ScopeSet, OAuthError> {
    let allowed = &application.scopes;
    let scopes = match requested {
        Some(text) => {
            // RFC 6749 §3.3: space-delimited; tabs and newlines are malformed (GitLab too).
            if text.contains(['\t', '\n', '\r', ',']) {
                return Err(OAuthError::new(ErrorCode::InvalidScope).detail("malformed scope"));
            }
            ScopeSet::from_names(text.split(' ').filter(|s| !s.is_empty()))
                .map_err(|e| OAuthError::new(ErrorCode::InvalidScope).detail(e.to_string()))?
        }
        None if allowed.contains("api") => ScopeSet::parse("api").unwrap_or_default(),
        None => ScopeSet::default(),
    };
    // RFC 6749 §3.3: without a default scope the request fails as invalid_scope (GitLab,
    // spec §3.3).
    if scopes.is_empty() {
        return Err(OAuthError::new(ErrorCode::InvalidScope)
            .detail("no scope requested and the application lacks api"));
    }
    // GitLab (spec §3.3): only the application's scopes.
    if !scopes.is_subset_of(allowed) {
        return Err(
            OAuthError::new(ErrorCode::InvalidScope).detail("scope beyond the application's")
        );
    }
    Ok(scopes)
}

/// RFC 7636 §4.3–4.4. PKCE is optional unless the application or the instance requires it,
/// and then only S256 is accepted (RFC 9700 §2.1.1: `plain` protects nothing if the
/// authorization request leaks).
fn code_challenge(
    state: &AppState,
    application: &Application,
    params: &Params,
) -> Result<Option<pkce::Challenge>, OAuthError> {
    // FAPI 2.0 §5.3.2.2 item 4: PKCE with S256 for every request under the profile.
    let required = application.require_pkce || state.config.require_pkce || state.config.fapi2();
    let Some(challenge) = params.get("code_challenge") else {
        // RFC 7636 §4.3: code_challenge is REQUIRED once a method is sent.
        if params.get("code_challenge_method").is_some() {
            return Err(OAuthError::missing("code_challenge"));
        }
        // RFC 7636 §4.4.1: invalid_request when PKCE is required and missing.
        if required {
            return Err(OAuthError::with_description(
                ErrorCode::InvalidRequest,
                "PKCE is required: send code_challenge and code_challenge_method=S256.",
            ));
        }
        return Ok(None);
    };
    // RFC 7636 §4.3: the method defaults to plain when absent; §4.4.1: an unsupported one
    // is invalid_request, not GitLab's invalid_code_challenge_method (docs/compatibility.md).
    let method = match params.get("code_challenge_method") {
        None => pkce::Method::Plain,
        Some(m) => pkce::Method::parse(m).ok_or_else(|| {
            OAuthError::with_description(
                ErrorCode::InvalidRequest,
                "The code_challenge_method must be one of plain, S256.",
            )
        })?,
    };
    // RFC 9700 §2.1.1: S256 is the only method that keeps the verifier secret.
    if required && method != pkce::Method::S256 {
        return Err(OAuthError::with_description(
            ErrorCode::InvalidRequest,
            "This application requires PKCE with code_challenge_method=S256.",
        ));
    }
    // RFC 7636 §4.2: code-challenge = 43*128unreserved.
    if !pkce::is_well_formed(challenge) {
        return Err(OAuthError::with_description(
            ErrorCode::InvalidRequest,
            "The code_challenge must be 43 to 128 characters of A-Z, a-z, 0-9, '-', '.', '_' and '~'.",
        ));
    }
    Ok(Some(pkce::Challenge {
        value: challenge.to_string(),
        method,
    }))
}
