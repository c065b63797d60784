//! CSRF protection for every form, in two layers.
//!
//! - **A token bound to the session.** While the browser holds a session cookie, the form
//!   token is the HMAC (under a key derived from the master key) of the SHA-256 of that
//!   session id; before sign-in, of a random pre-session cookie (`doorward_csrf`), so the
//!   sign-in form is protected too (login CSRF). Whoever can plant the pre-session cookie
//!   (a sibling subdomain, a plain-http network path) learns nothing that works once the
//!   victim is signed in: the session id is HttpOnly and never leaves the browser. The
//!   pre-session cookie is renewed at sign-in and sign-out.
//! - **The Origin check.** A browser names the page a POST came from; an unsafe request
//!   whose `Origin` is another site (or `null`, from a sandboxed frame or a data: page) is
//!   refused before the handler runs (OWASP CSRF cheat sheet, "verifying origin").

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};

use super::WebError;
use crate::domain::secret;
use crate::state::AppState;

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

/// What a form token is bound to.
enum Binding<'a> {
    /// The session cookie's value (only its hash enters the MAC).
    Session(&'a str),
    /// The pre-session cookie's value.
    PreSession(&'a str),
}

fn token_for(state: &AppState, binding: Binding<'_>) -> String {
    // Domain-separated inputs: a pre-session value can never produce a session's token.
    let input = match binding {
        Binding::Session(id) => [&b"session\0"[..], &secret::hash(id)[..]].concat(),
        Binding::PreSession(value) => [&b"pre-session\0"[..], value.as_bytes()].concat(),
    };
    secret::base64url(&secret::hmac_sha256(&state.csrf_key[..], &input))
}

/// A new pre-session CSRF cookie (at first visit, sign-in and sign-out) and the token it
/// gives while no session cookie is present.
pub fn new_cookie(state: &AppState) -> (Cookie<'static>, String) {
    let value = secret::generate("").into_inner();
    let token = token_for(state, Binding::PreSession(&value));
    let cookie = Cookie::build((cookie_name(state), value))
        .path("/")
        .http_only(true)
        .secure(state.config.is_https())
        .same_site(SameSite::Lax)
        .build();
    (cookie, token)
}

/// Middleware on the page routes: refuses cross-origin unsafe requests, makes sure the
/// browser has a pre-session cookie, and hands the handler the token for this session.
pub async fn ensure_cookie(
    State(state): State<AppState>,
    jar: CookieJar,
    mut req: Request,
    next: Next,
) -> Response {
    if !req.method().is_safe() && !same_origin(&state, req.headers()) {
        tracing::info!(path = %req.uri().path(), "cross-origin form post refused");
        return WebError::Csrf.into_response();
    }
    let session = jar
        .get(super::session::cookie_name(&state))
        .map(|c| c.value().to_string())
        .filter(|v| !v.is_empty());
    let pre_session = jar
        .get(cookie_name(&state))
        .map(|c| c.value().to_string())
        .filter(|v| v.len() == 43);
    let bound = |pre: &str| match &session {
        Some(id) => token_for(&state, Binding::Session(id)),
        None => token_for(&state, Binding::PreSession(pre)),
    };
    match pre_session {
        Some(value) => {
            req.extensions_mut().insert(Csrf {
                token: bound(&value),
            });
            next.run(req).await
        }
        None => {
            let (cookie, _) = new_cookie(&state);
            req.extensions_mut().insert(Csrf {
                token: bound(cookie.value()),
            });
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

/// Whether an unsafe request may come from where it says it comes from: no `Origin` (not a
/// browser, or an old one; the token still decides), or exactly the external URL's origin
/// or this request's own `Host` (the browser sets `Host`; a page cannot forge it).
fn same_origin(state: &AppState, headers: &axum::http::HeaderMap) -> bool {
    let Some(origin) = headers.get(axum::http::header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let external = url::Url::parse(&state.config.external_url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    if origin == external {
        return true;
    }
    let scheme = if state.config.is_https() {
        "https"
    } else {
        "http"
    };
    headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|host| origin == format!("{scheme}://{host}"))
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
