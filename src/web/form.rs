//! `WebForm<T>`: a form-urlencoded body parsed strictly, rejected as a page on bad input;
//! `WebFormPairs`: the same body as its raw pairs, for forms with repeated fields.

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

/// The body as `(key, value)` pairs in order, for forms whose checkbox groups repeat a key
/// (which `WebForm` refuses as a duplicate). The handler checks the keys itself.
pub struct WebFormPairs(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequest<S> for WebFormPairs {
    type Rejection = WebError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (kind, bytes) = body::read(req, state).await.map_err(bad)?;
        if kind != BodyKind::Form {
            return Err(bad(BodyError::UnsupportedMediaType));
        }
        body::parse_form_pairs(&bytes)
            .map(WebFormPairs)
            .map_err(bad)
    }
}

/// The error page for a form that cannot be read.
pub fn bad(e: BodyError) -> WebError {
    let message = match &e {
        BodyError::Malformed(detail) => format!("The form could not be read ({detail})."),
        other => format!("The form could not be read: {other}."),
    };
    WebError::Body {
        status: e.status(),
        message,
    }
}
