//! `ApiInput<T>`: a JSON (python-gitlab) or form (curl) body, parsed strictly into `T`.
//! Bad bodies answer `{"message": ...}` with a 4xx.

use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::http::body;

pub struct ApiInput<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiInput<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // GitLab (Grape) also reads parameters from the query string; python-gitlab sends
        // some that way. A body, when present, wins; otherwise the query is the input.
        let query = req.uri().query().unwrap_or_default().to_owned();
        let (kind, bytes) = body::read(req, state).await?;
        if bytes.is_empty() {
            return Ok(ApiInput(body::parse_form(query.as_bytes())?));
        }
        Ok(ApiInput(body::parse(kind, &bytes)?))
    }
}

/// Parses a query string strictly (unknown or duplicate parameters are errors).
pub fn parse_query<T: DeserializeOwned>(query: Option<&str>) -> Result<T, ApiError> {
    Ok(body::parse_form(query.unwrap_or_default().as_bytes())?)
}
