//! OAuth 2.0 errors: every registered code, and one type carrying a code, the description
//! the client sees and a detail only the log sees. Each sink (token endpoint JSON,
//! authorization redirect, error page) maps it in one place.

use std::borrow::Cow;

use crate::store::StoreError;

/// Error codes of RFC 6749 §4.1.2.1 and §5.2, RFC 7009 §2.2.1, RFC 8628 §3.5 and OpenID
/// Connect Core §3.1.2.6, RFC 8707 §2's `invalid_target`, and RFC 9126 §4's
/// `invalid_request_uri` (registered by OpenID Connect Core §3.1.2.6), and RFC 9449 §5's
/// `invalid_dpop_proof`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    UnsupportedTokenType,
    InvalidScope,
    InvalidTarget,
    InvalidRequestUri,
    /// RFC 9101 §6.3: the request object is invalid.
    InvalidRequestObject,
    InvalidDpopProof,
    AccessDenied,
    ServerError,
    TemporarilyUnavailable,
    AuthorizationPending,
    SlowDown,
    ExpiredToken,
    LoginRequired,
    ConsentRequired,
    InteractionRequired,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::UnsupportedTokenType => "unsupported_token_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::InvalidTarget => "invalid_target",
            ErrorCode::InvalidRequestUri => "invalid_request_uri",
            ErrorCode::InvalidRequestObject => "invalid_request_object",
            ErrorCode::InvalidDpopProof => "invalid_dpop_proof",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::AuthorizationPending => "authorization_pending",
            ErrorCode::SlowDown => "slow_down",
            ErrorCode::ExpiredToken => "expired_token",
            ErrorCode::LoginRequired => "login_required",
            ErrorCode::ConsentRequired => "consent_required",
            ErrorCode::InteractionRequired => "interaction_required",
        }
    }

    /// The standard description (doorkeeper's wording, which GitLab clients have seen).
    pub fn default_description(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => {
                "The request is missing a required parameter, includes an unsupported parameter value, or is otherwise malformed."
            }
            ErrorCode::InvalidClient => {
                "Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method."
            }
            ErrorCode::InvalidGrant => {
                "The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client."
            }
            ErrorCode::UnauthorizedClient => {
                "The client is not authorized to perform this request using this method."
            }
            ErrorCode::UnsupportedGrantType => {
                "The authorization grant type is not supported by the authorization server."
            }
            ErrorCode::UnsupportedResponseType => {
                "The authorization server does not support this response type."
            }
            ErrorCode::UnsupportedTokenType => {
                "The authorization server does not support the revocation of this token type."
            }
            ErrorCode::InvalidScope => "The requested scope is invalid, unknown, or malformed.",
            ErrorCode::InvalidTarget => "The requested resource is invalid, unknown, or malformed.",
            ErrorCode::InvalidDpopProof => "The DPoP proof is invalid.",
            ErrorCode::InvalidRequestObject => {
                "The request object is invalid: not signed by a key the client registered, expired, or for another client or server."
            }
            ErrorCode::InvalidRequestUri => {
                "The request_uri is invalid, expired, already used, or was pushed by another client."
            }
            ErrorCode::AccessDenied => {
                "The resource owner or authorization server denied the request."
            }
            ErrorCode::ServerError => {
                "The authorization server encountered an unexpected condition which prevented it from fulfilling the request."
            }
            ErrorCode::TemporarilyUnavailable => {
                "The authorization server is currently unable to handle the request due to a temporary overloading or maintenance of the server."
            }
            ErrorCode::AuthorizationPending => {
                "The authorization request is still pending as the end user hasn't yet completed the user interaction steps."
            }
            ErrorCode::SlowDown => {
                "The client is polling too quickly; wait for the interval before polling again."
            }
            ErrorCode::ExpiredToken => {
                "The device code has expired; start a new device authorization request."
            }
            ErrorCode::LoginRequired => {
                "The authorization server requires end-user authentication."
            }
            ErrorCode::ConsentRequired => "The authorization server requires end-user consent.",
            ErrorCode::InteractionRequired => {
                "The authorization server requires end-user interaction."
            }
        }
    }
}

/// An OAuth error: `description` goes to the client, `detail` only to the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: Cow<'static, str>,
    pub detail: Option<String>,
}

impl OAuthError {
    pub fn new(code: ErrorCode) -> OAuthError {
        OAuthError {
            code,
            description: Cow::Borrowed(code.default_description()),
            detail: None,
        }
    }

    pub fn with_description(
        code: ErrorCode,
        description: impl Into<Cow<'static, str>>,
    ) -> OAuthError {
        OAuthError {
            code,
            description: description.into(),
            detail: None,
        }
    }

    /// `invalid_request` for a missing parameter, in doorkeeper's words.
    pub fn missing(parameter: &str) -> OAuthError {
        Self::with_description(
            ErrorCode::InvalidRequest,
            format!("Missing required parameter: {parameter}."),
        )
    }

    pub fn detail(mut self, detail: impl Into<String>) -> OAuthError {
        self.detail = Some(detail.into());
        self
    }
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.description)
    }
}

impl std::error::Error for OAuthError {}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        match e {
            // RFC 6749 §4.1.2.1's code for an overloaded server (GitLab sends it from the
            // token endpoint too, spec §1.4).
            StoreError::Unavailable(_) => {
                OAuthError::new(ErrorCode::TemporarilyUnavailable).detail(e.to_string())
            }
            other => OAuthError::new(ErrorCode::ServerError).detail(other.to_string()),
        }
    }
}
