//! API errors in GitLab's shapes: `{"message": ...}` for most, RFC 6750 bearer errors
//! (with `WWW-Authenticate`) for token problems.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::domain::user::FieldErrors;
use crate::http::body::BodyError;
use crate::oauth::bearer::{self, Challenge};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No token at all.
    #[error("401 Unauthorized")]
    Unauthorized,
    /// A token sent by more than one method (RFC 6750 §2: 400 `invalid_request`).
    #[error("token sent by more than one method")]
    SeveralTokens,
    /// A token was sent but is unknown, expired or revoked (RFC 6750 `invalid_token`).
    #[error("invalid token: {0}")]
    InvalidToken(&'static str),
    /// A DPoP-bound token without its proof, a bad proof, or a bearer token sent with the
    /// DPoP scheme (RFC 9449 §7.1): 401 with a `DPoP` challenge.
    #[error("DPoP: {}", .0.description)]
    Dpop(crate::oauth::dpop::DpopRefusal),
    /// The token lacks every scope that would allow this (RFC 6750 `insufficient_scope`).
    #[error("insufficient scope")]
    InsufficientScope(&'static [&'static str]),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    /// Field validation, GitLab-style: `{"message": {"field": ["msg"]}}`.
    #[error("validation failed")]
    Validation(FieldErrors),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Body(BodyError),
    #[error("service unavailable")]
    Unavailable,
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::NotFound("404 Not Found".into()),
            StoreError::Conflict(field) => {
                let mut f = field.to_string();
                if let Some(first) = f.get_mut(0..1) {
                    first.make_ascii_uppercase();
                }
                ApiError::Conflict(format!("{f} has already been taken"))
            }
            StoreError::Unavailable(_) => ApiError::Unavailable,
            StoreError::Other(e) => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<crate::groups::GroupError> for ApiError {
    fn from(e: crate::groups::GroupError) -> Self {
        use crate::groups::GroupError;
        match e {
            GroupError::NotFound(what) => ApiError::NotFound(format!("404 {what} Not Found")),
            GroupError::Forbidden(why) => ApiError::Forbidden(format!("403 Forbidden - {why}")),
            GroupError::Invalid(errors) => ApiError::Validation(errors),
            GroupError::BadRequest(m) => ApiError::BadRequest(m),
            GroupError::Conflict(m) => ApiError::Conflict(m.into()),
            GroupError::Store(e) => e.into(),
        }
    }
}

impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> Self {
        ApiError::Body(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message =
            |status: StatusCode, m: String| (status, Json(json!({ "message": m }))).into_response();
        match self {
            // RFC 6750 §3.1: no error code when the request carried no credentials.
            ApiError::Unauthorized => with_challenge(
                message(StatusCode::UNAUTHORIZED, "401 Unauthorized".into()),
                &Challenge::Missing,
            ),
            ApiError::SeveralTokens => {
                let challenge = Challenge::InvalidRequest(bearer::SEVERAL_METHODS);
                let body = json!({"error": "invalid_request", "error_description": bearer::SEVERAL_METHODS});
                with_challenge((challenge.status(), Json(body)).into_response(), &challenge)
            }
            ApiError::InvalidToken(description) => {
                let challenge = Challenge::InvalidToken(description);
                let body = json!({"error": "invalid_token", "error_description": description});
                with_challenge((challenge.status(), Json(body)).into_response(), &challenge)
            }
            ApiError::Dpop(refusal) => {
                let body =
                    json!({"error": refusal.error, "error_description": refusal.description});
                let mut res = (StatusCode::UNAUTHORIZED, Json(body)).into_response();
                res.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, refusal.www_authenticate());
                res
            }
            ApiError::InsufficientScope(scopes) => {
                let scope = scopes.join(" ");
                let description =
                    "The request requires higher privileges than provided by the access token.";
                let body = json!({
                    "error": "insufficient_scope",
                    "error_description": description,
                    "scope": scope,
                });
                // GitLab omits this header (a known FIXME there); RFC 6750 §3.1 asks for it,
                // without the description GitLab's clients have never seen in it.
                let challenge = Challenge::InsufficientScope {
                    description: None,
                    scope: &scope,
                };
                with_challenge((challenge.status(), Json(body)).into_response(), &challenge)
            }
            ApiError::Forbidden(m) => message(StatusCode::FORBIDDEN, m),
            ApiError::NotFound(m) => message(StatusCode::NOT_FOUND, m),
            ApiError::BadRequest(m) => {
                message(StatusCode::BAD_REQUEST, format!("400 Bad request - {m}"))
            }
            ApiError::Validation(errors) => {
                let mut fields = Map::new();
                for (field, msg) in errors.0 {
                    let entry = fields
                        .entry(field)
                        .or_insert_with(|| Value::Array(Vec::new()));
                    if let Value::Array(list) = entry {
                        list.push(Value::String(msg));
                    }
                }
                (StatusCode::BAD_REQUEST, Json(json!({ "message": fields }))).into_response()
            }
            ApiError::Conflict(m) => message(StatusCode::CONFLICT, m),
            ApiError::Body(e) => message(e.status(), format!("{} - {e}", e.status())),
            ApiError::Unavailable => message(
                StatusCode::SERVICE_UNAVAILABLE,
                "503 Service Unavailable".into(),
            ),
            ApiError::Internal(detail) => {
                tracing::error!(detail = %detail, "API request failed");
                message(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "500 Internal Server Error".into(),
                )
            }
        }
    }
}

fn with_challenge(mut res: Response, challenge: &Challenge<'_>) -> Response {
    res.headers_mut()
        .insert(header::WWW_AUTHENTICATE, challenge.www_authenticate());
    res
}
