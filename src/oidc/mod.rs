//! The OpenID Connect provider on top of the OAuth server (OpenID Connect Core 1.0,
//! Discovery 1.0, RP-Initiated Logout 1.0; RFC 7517, 7638, 8414): signing keys and the
//! JWKS, id_tokens, UserInfo, the discovery documents and WebFinger, the OIDC
//! authorization request parameters, and logout.

pub mod backchannel;
pub mod claims;
pub mod discovery;
pub mod id_token;
pub mod keys;
pub mod logout;
pub mod prompt;
pub mod signing_keys;
pub mod userinfo;

use axum::Router;
use axum::http::Method;
use axum::routing::get;

use crate::oauth::error::{ErrorCode, OAuthError};
use crate::state::AppState;

/// A failure of ours while issuing a token: `server_error` to the client, the reason to
/// the log.
pub(crate) fn server_error(detail: impl std::fmt::Display) -> OAuthError {
    OAuthError::new(ErrorCode::ServerError).detail(detail.to_string())
}

pub fn routes(state: AppState) -> Router<AppState> {
    // Relying parties in the browser read these cross-origin, as GitLab allows (spec §1.1).
    // No cookies are involved: any origin may call.
    let cors = crate::http::cors::for_clients(&[Method::GET, Method::POST]);
    let public = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(discovery::openid_configuration),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(discovery::authorization_server),
        )
        .route("/.well-known/webfinger", get(discovery::webfinger))
        .route(
            crate::oauth::protected_resource::METADATA_PATH,
            get(crate::oauth::protected_resource::metadata),
        )
        .route("/oauth/discovery/keys", get(discovery::jwks))
        .route("/-/jwks", get(discovery::jwks))
        .route(
            "/oauth/userinfo",
            get(userinfo::userinfo).post(userinfo::userinfo),
        )
        .layer(cors);
    // The logout confirmation is a page with a form: it needs the CSRF cookie.
    let pages = Router::new()
        .route("/oauth/logout", get(logout::logout).post(logout::logout))
        .layer(axum::middleware::from_fn_with_state(
            state,
            crate::web::csrf::ensure_cookie,
        ));
    Router::new().merge(public).merge(pages)
}
