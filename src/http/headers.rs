//! Security headers on every response: no framing, no MIME sniffing, no cross-origin
//! referrers, a strict Content-Security-Policy for our own pages, HSTS behind https, and
//! `Cache-Control: no-store` on every response whose handler did not choose a policy.
//!
//! The cache default is what makes "every response carrying a token, code or secret is
//! never stored" hold by construction (RFC 6749 §5.1, RFC 6750 §5.3, RFC 9700 §4.16): a new
//! endpoint cannot forget it. Only the responses that are public and safe to cache
//! (discovery, JWKS, the stylesheet) set their own `Cache-Control`. The OAuth endpoints
//! also get `Pragma: no-cache` for HTTP/1.0 caches (RFC 6749 §5.1).

use axum::http::{HeaderName, HeaderValue, header};
use axum::response::Response;

use crate::state::AppState;

/// Pages use only our stylesheet and inline `data:` images (QR codes); forms post to us.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Sets the security headers a handler did not set itself, on every response's way out
/// (`app::around_routes`); `oauth`: the request was for an `/oauth/` path.
pub fn apply_security_headers(state: &AppState, oauth: bool, mut res: Response) -> Response {
    let h = res.headers_mut();
    let mut set_default = |name: HeaderName, value: &'static str| {
        // A handler may have set a stricter or more specific value; keep it.
        h.entry(name).or_insert(HeaderValue::from_static(value));
    };
    set_default(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY);
    set_default(header::X_FRAME_OPTIONS, "DENY");
    set_default(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set_default(header::REFERRER_POLICY, "same-origin");
    set_default(header::CACHE_CONTROL, "no-store");
    if oauth {
        set_default(header::PRAGMA, "no-cache");
    }
    if state.config.is_https() {
        set_default(header::STRICT_TRANSPORT_SECURITY, "max-age=31536000");
    }
    res
}
