//! Security headers on every response: no framing, no MIME sniffing, no cross-origin
//! referrers, a strict Content-Security-Policy for our own pages, and HSTS behind https.

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::app::AppState;

/// Pages use only our stylesheet and inline `data:` images (QR codes); forms post to us.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub async fn security_headers(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    let mut set_default = |name: HeaderName, value: &'static str| {
        // A handler may have set a stricter or more specific value; keep it.
        h.entry(name).or_insert(HeaderValue::from_static(value));
    };
    set_default(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY);
    set_default(header::X_FRAME_OPTIONS, "DENY");
    set_default(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set_default(header::REFERRER_POLICY, "same-origin");
    if state.config.is_https() {
        set_default(header::STRICT_TRANSPORT_SECURITY, "max-age=31536000");
    }
    res
}
