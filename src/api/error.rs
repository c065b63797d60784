//! API errors in GitLab's shapes: `{"message": ...}` for most, RFC 6750 bearer errors
//! (with `WWW-Authenticate`) for token problems.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::domain::user::FieldErrors;
use crate::http::body::BodyError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No token at all.
    #[error("401 Unauthorized")]
    Unauthorized,
    /// A token was sent but is unknown, expired or revoked (RFC 6750 `invalid_token`).
    #[error("invalid token: {0}")]
    InvalidToken(&'static str),
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

impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> Self {
        ApiError::Body(e)
    }
}

const REALM: &str = "Bearer realm=\"Doorward\"";

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message =
            |status: StatusCode, m: String| (status, Json(json!({ "message": m }))).into_response();
        match self {
            ApiError::Unauthorized => {
                // RFC 6750 §3.1: no error code when the request carried no credentials.
                let mut res = message(StatusCode::UNAUTHORIZED, "401 Unauthorized".into());
                res.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(REALM));
                res
            }
            ApiError::InvalidToken(description) => {
                let mut res = (
                    StatusCode::UNAUTHORIZED,
                    Json(json!({"error": "invalid_token", "error_description": description})),
                )
                    .into_response();
                let challenge = format!(
                    "{REALM}, error=\"invalid_token\", error_description=\"{description}\""
                );
                if let Ok(v) = HeaderValue::from_str(&challenge) {
                    res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
                res
            }
            ApiError::InsufficientScope(scopes) => {
                let scope = scopes.join(" ");
                let mut res = (
                    StatusCode::FORBIDDEN,
                    Json(json!({
                        "error": "insufficient_scope",
                        "error_description": "The request requires higher privileges than provided by the access token.",
                        "scope": scope,
                    })),
                )
                    .into_response();
                // GitLab omits this header (a known FIXME there); RFC 6750 §3.1 asks for it.
                let challenge = format!("{REALM}, error=\"insufficient_scope\", scope=\"{scope}\"");
                if let Ok(v) = HeaderValue::from_str(&challenge) {
                    res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
                res
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
