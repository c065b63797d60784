//! Errors of the web pages, each rendered as an HTML error page with the right status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("{0}")]
    BadRequest(String),
    /// The body was too large or of the wrong type; the status says which.
    #[error("{message}")]
    Body { status: StatusCode, message: String },
    /// The CSRF token was missing or wrong: the form is stale or came from another site.
    #[error("invalid CSRF token")]
    Csrf,
    #[error("not found")]
    NotFound,
    /// Signed in, but not allowed to do this; the message says why.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Not signed in; the page wants a session. Carries the path to come back to.
    #[error("sign-in required")]
    SignInRequired(String),
    #[error("service unavailable")]
    Unavailable,
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for WebError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => WebError::NotFound,
            StoreError::Unavailable(_) => WebError::Unavailable,
            other => WebError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, title, message) = match &self {
            WebError::BadRequest(m) => (StatusCode::BAD_REQUEST, "Bad request", m.as_str()),
            WebError::Body { status, message } => (*status, "Bad request", message.as_str()),
            WebError::Csrf => (
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form has expired or did not come from this site. Go back, reload the page and try again.",
            ),
            WebError::NotFound => (
                StatusCode::NOT_FOUND,
                "Page not found",
                "The page you were looking for does not exist.",
            ),
            WebError::Forbidden(m) => (StatusCode::FORBIDDEN, "Not allowed", m.as_str()),
            WebError::SignInRequired(return_to) => {
                let target = format!("/users/sign_in?return_to={}", urlencode(return_to));
                return Redirect::to(&target).into_response();
            }
            WebError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporarily unavailable",
                "Doorward cannot reach its database right now. Try again in a moment.",
            ),
            WebError::Internal(detail) => {
                tracing::error!(detail = %detail, "web request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "An unexpected error occurred.",
                )
            }
        };
        // Rendered by `render_error_page`, which has the templates at hand.
        let mut res = status.into_response();
        res.extensions_mut().insert(ErrorPage {
            title,
            message: message.to_string(),
        });
        res
    }
}

/// Marks a response whose body is the error page with this title and message.
#[derive(Clone, Debug)]
pub struct ErrorPage {
    pub title: &'static str,
    pub message: String,
}

/// Turns a response marked with [`ErrorPage`] into the rendered page (on every response's
/// way out, `app::around_routes`).
pub fn render_error_page(state: &crate::state::AppState, res: Response) -> Response {
    match res.extensions().get::<ErrorPage>().cloned() {
        Some(page) => {
            let status = res.status();
            let mut rendered = state.templates.render_error(page.title, &page.message);
            *rendered.status_mut() = status;
            rendered
        }
        None => res,
    }
}

/// Percent-encodes a query-parameter value, leaving the characters of a path readable.
pub fn urlencode(s: &str) -> String {
    const VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'/')
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, VALUE).to_string()
}
