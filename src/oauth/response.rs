//! The token endpoint's answers (RFC 6749 §5.1 and §5.2): JSON with `Cache-Control:
//! no-store` and `Pragma: no-cache`, errors as `{"error", "error_description"}` with 400, or
//! 401 and `WWW-Authenticate` for `invalid_client`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::error::{ErrorCode, OAuthError};

/// A successful token response. Optional members are omitted when absent.
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    /// Exactly `Bearer` (RFC 6750; some old GitLab docs print `bearer`).
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub scope: String,
    /// GitLab's addition: Unix seconds of issuance.
    pub created_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

/// Adds the headers RFC 6749 §5.1 requires on any response carrying tokens or secrets.
pub fn no_store(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

impl IntoResponse for TokenResponse {
    fn into_response(self) -> Response {
        no_store(Json(self).into_response())
    }
}

/// An error at the token, revocation, introspection or device endpoints.
#[derive(Debug)]
pub struct TokenError(pub OAuthError);

impl From<OAuthError> for TokenError {
    fn from(e: OAuthError) -> Self {
        TokenError(e)
    }
}

impl From<crate::store::StoreError> for TokenError {
    fn from(e: crate::store::StoreError) -> Self {
        TokenError(e.into())
    }
}

impl IntoResponse for TokenError {
    fn into_response(self) -> Response {
        let e = self.0;
        if let Some(detail) = &e.detail {
            tracing::info!(error = e.code.as_str(), detail = %detail, "OAuth request refused");
        }
        let status = match e.code {
            // GitLab (doorkeeper) answers 401 for both; RFC 6749 §5.2 requires it for the first.
            ErrorCode::InvalidClient | ErrorCode::UnauthorizedClient => StatusCode::UNAUTHORIZED,
            // RFC 6749 §4.1.2.1 coined these two for redirects, which cannot carry a 500 or a
            // 503; here the status itself can say it.
            ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        };
        error_response(status, e.code, &e.description)
    }
}

/// A request the OAuth JSON endpoints cannot read, refused before the handler ran: 413 for
/// a body over the limit (what these endpoints have always answered), 408 for one that did
/// not arrive in time, else 400, all `invalid_request` (RFC 6749 §5.2); 503
/// `temporarily_unavailable` for a request that outlived its deadline. Never cached.
pub fn body_refused(e: &crate::http::body::BodyError) -> Response {
    let code = match e {
        // RFC 6749 §4.1.2.1's code for a server that cannot answer now.
        crate::http::body::BodyError::Overdue => ErrorCode::TemporarilyUnavailable,
        _ => ErrorCode::InvalidRequest,
    };
    error_response(
        e.status(),
        code,
        &format!("The request could not be read: {e}."),
    )
}

/// The one place an RFC 6749 §5.2 error body is written.
fn error_response(status: StatusCode, code: ErrorCode, description: &str) -> Response {
    let body = serde_json::json!({"error": code.as_str(), "error_description": description});
    let mut res = no_store((status, Json(body)).into_response());
    if status == StatusCode::UNAUTHORIZED {
        // RFC 6749 §5.2: a 401 names the authentication scheme the client should use.
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"Doorward\""),
        );
    }
    res
}
