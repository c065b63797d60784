//! The GitLab API as an OAuth protected resource (RFC 9728): its metadata at
//! `/.well-known/oauth-protected-resource/api/v4`, and the `resource_metadata` parameter
//! in every bearer challenge of `/api/v4`, by which an MCP client (or any RFC 9728 client)
//! finds the authorization server from a 401 alone.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::state::AppState;

/// Where the API's metadata is, under the issuer (RFC 9728 §3.1: the well-known suffix is
/// inserted between the host and the resource's path).
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource/api/v4";

/// The scopes a client asks for to use the API. Only those a dynamically registered client
/// may hold: the MCP SDKs register with exactly these.
pub const API_SCOPES: [&str; 3] = ["api", "read_api", "read_user"];

/// The API's resource identifier (RFC 8707, RFC 9728 §2).
pub fn api_resource(state: &AppState) -> String {
    api_resource_of(&state.config)
}

pub fn api_resource_of(config: &crate::config::Config) -> String {
    format!("{}/api/v4", config.external_url)
}

/// `GET /.well-known/oauth-protected-resource/api/v4` (RFC 9728 §3.2).
pub async fn metadata(State(state): State<AppState>) -> Response {
    let issuer = &state.config.external_url;
    let mut res = Json(json!({
        "resource": api_resource(&state),
        "authorization_servers": [issuer],
        // The API reads `Authorization: Bearer` and `access_token` in the query (RFC 6750
        // §2.1, §2.3), besides GitLab's own PRIVATE-TOKEN.
        "bearer_methods_supported": ["header", "query"],
        "scopes_supported": API_SCOPES,
        "resource_name": "GitLab-compatible API",
    }))
    .into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=3600, public"),
    );
    res
}

/// Adds `resource_metadata` (RFC 9728 §5.1) to the bearer challenge of every API answer
/// that carries one, whatever produced it.
pub async fn advertise(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mut res = next.run(request).await;
    let Some(challenge) = res
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.starts_with("Bearer"))
    else {
        return res;
    };
    let url = format!("{}{METADATA_PATH}", state.config.external_url);
    let value = format!("{challenge}, resource_metadata=\"{url}\"");
    if let Ok(v) = HeaderValue::from_str(&value) {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    res
}
