//! CSRF protection for every form: a random cookie per browser, and in each form a token
//! that is the HMAC of that cookie under a key derived from the master key. A cross-site
//! page can neither read the cookie nor compute the token, and because the token does not
//! need a session it protects the sign-in form too (login CSRF). The cookie is replaced at
//! sign-in and sign-out, so tokens do not outlive the session they were shown in.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};

use super::WebError;
use crate::app::AppState;
use crate::domain::secret;

/// The form field, named as in GitLab.
pub const FIELD: &str = "authenticity_token";

/// The token to embed in forms for this request.
#[derive(Clone, Debug)]
pub struct Csrf {
    token: String,
}

impl Csrf {
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Checks a submitted token in constant time.
    pub fn verify(&self, submitted: &str) -> Result<(), WebError> {
        if !submitted.is_empty()
            && secret::constant_time_eq(submitted.as_bytes(), self.token.as_bytes())
        {
            Ok(())
        } else {
            Err(WebError::Csrf)
        }
    }
}

pub fn cookie_name(state: &AppState) -> &'static str {
    // `__Host-` pins the cookie to this exact origin (no subdomain can set it), but
    // browsers accept that prefix only on Secure cookies.
    if state.config.is_https() {
        "__Host-doorward_csrf"
    } else {
        "doorward_csrf"
    }
}

fn token_for(state: &AppState, cookie_value: &str) -> String {
    secret::base64url(&secret::hmac_sha256(
        &state.csrf_key[..],
        cookie_value.as_bytes(),
    ))
}

/// A new CSRF cookie (at first visit, sign-in and sign-out).
pub fn new_cookie(state: &AppState) -> (Cookie<'static>, String) {
    let value = secret::generate("").into_inner();
    let token = token_for(state, &value);
    let cookie = Cookie::build((cookie_name(state), value))
        .path("/")
        .http_only(true)
        .secure(state.config.is_https())
        .same_site(SameSite::Lax)
        .build();
    (cookie, token)
}

/// Middleware on the page routes: makes sure the browser has a CSRF cookie and hands the
/// matching token to the handler.
pub async fn ensure_cookie(
    State(state): State<AppState>,
    jar: CookieJar,
    mut req: Request,
    next: Next,
) -> Response {
    let existing = jar
        .get(cookie_name(&state))
        .map(|c| c.value().to_string())
        .filter(|v| v.len() == 43);
    match existing {
        Some(value) => {
            req.extensions_mut().insert(Csrf {
                token: token_for(&state, &value),
            });
            next.run(req).await
        }
        None => {
            let (cookie, token) = new_cookie(&state);
            req.extensions_mut().insert(Csrf { token });
            let res = next.run(req).await;
            // A handler that set its own CSRF cookie (sign-in) wins.
            if res
                .headers()
                .get_all(axum::http::header::SET_COOKIE)
                .iter()
                .any(|v| v.to_str().is_ok_and(|s| s.starts_with(cookie_name(&state))))
            {
                return res;
            }
            (jar.add(cookie), res).into_response()
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Csrf {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Csrf>()
            .cloned()
            .ok_or(WebError::Internal("CSRF middleware missing".into()))
    }
}
