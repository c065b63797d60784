//! Cross-origin access for the endpoints clients call from the browser (single-page apps,
//! browser-based MCP clients), as GitLab allows for its OAuth endpoints. No cookies are
//! involved, so any origin may call.
//!
//! RFC 9449 §4.1, §7.1: a browser client sends its proof in a `DPoP` header and must be
//! able to read the `WWW-Authenticate` challenge of a refusal, so both cross the origin.

use axum::http::{HeaderName, Method, header};
use tower_http::cors::{Any, CorsLayer};

const DPOP: HeaderName = HeaderName::from_static("dpop");

/// The CORS layer for endpoints answering `methods`.
pub fn for_clients(methods: &[Method]) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods(methods.to_vec())
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, DPOP])
        .expose_headers([header::WWW_AUTHENTICATE])
        .max_age(std::time::Duration::from_secs(3600))
}
