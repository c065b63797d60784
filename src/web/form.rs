//! `WebForm<T>`: a form-urlencoded body parsed strictly, rejected as a page on bad input.

use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use super::WebError;
use crate::http::body::{self, BodyError, BodyKind};

pub struct WebForm<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for WebForm<T> {
    type Rejection = WebError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (kind, bytes) = body::read(req, state).await.map_err(bad)?;
        if kind != BodyKind::Form {
            return Err(bad(BodyError::UnsupportedMediaType));
        }
        body::parse_form(&bytes).map(WebForm).map_err(bad)
    }
}

fn bad(e: BodyError) -> WebError {
    let message = match &e {
        BodyError::Malformed(detail) => format!("The form could not be read ({detail})."),
        other => format!("The form could not be read: {other}."),
    };
    WebError::Body {
        status: e.status(),
        message,
    }
}
