//! The OAuth 2.0 authorization server (RFC 6749, 6750, 7009, 7636, 7662, 8628, 9207, 9700):
//! the authorization, token, revocation, introspection and device endpoints, token info, and
//! the user's authorized applications.

pub mod authorization_request;
pub mod authorization_response;
pub mod authorize;
pub mod authorized_applications;
pub mod bearer;
pub mod client_auth;
pub mod client_id_metadata;
pub mod client_keys;
pub mod consent;
pub mod device_authorization;
pub mod device_verification;
pub mod dpop;
pub mod error;
pub mod grants;
pub mod introspect;
pub mod issue;
pub mod metadata_document_clients;
pub mod par;
pub mod params;
pub mod presented_token;
pub mod protected_resource;
pub mod registration;
pub mod request_object;
pub mod response;
pub mod revoke;
pub mod token;
pub mod token_info;

use axum::Router;
use axum::http::Method;
use axum::routing::{delete, get, post};

use crate::state::AppState;

pub fn routes(state: AppState) -> Router<AppState> {
    // Pages (consent, authorized applications) need the CSRF cookie; the token endpoints
    // are called by clients, not browsers, and authenticate on their own.
    let pages = Router::new()
        .route(
            "/oauth/authorize",
            get(authorize::show)
                .post(authorize::decide)
                .delete(authorize::deny),
        )
        .route(
            "/oauth/authorized_applications",
            get(authorized_applications::list),
        )
        .route(
            "/oauth/authorized_applications/{id}/revoke",
            post(authorized_applications::revoke),
        )
        .route(
            "/oauth/authorized_applications/{id}",
            delete(authorized_applications::revoke),
        )
        .route(
            "/oauth/device",
            get(device_verification::enter).post(device_verification::decide),
        )
        .route("/oauth/device/confirm", post(device_verification::confirm))
        .layer(axum::middleware::from_fn_with_state(
            state,
            crate::web::csrf::ensure_cookie,
        ));
    // Single-page apps (public clients with PKCE) call these from the browser, so they
    // answer CORS preflights, as GitLab does.
    let cors = crate::http::cors::for_clients(&[Method::GET, Method::POST]);
    let client_endpoints = Router::new()
        .route("/oauth/token", post(token::token))
        .route("/oauth/par", post(par::push))
        .route("/oauth/token/info", get(token_info::show))
        .route("/oauth/revoke", post(revoke::revoke))
        .layer(cors);
    // RFC 7591 / 7592: called with JSON by clients, browser-based MCP clients (the MCP
    // Inspector) included, from any origin; no cookies are involved.
    let registration_cors =
        crate::http::cors::for_clients(&[Method::GET, Method::POST, Method::PUT, Method::DELETE]);
    let registration_endpoints = Router::new()
        .route("/oauth/register", post(registration::register))
        .route(
            "/oauth/register/{client_id}",
            get(registration::read)
                .put(registration::update)
                .delete(registration::delete),
        )
        .layer(registration_cors);
    Router::new()
        .merge(pages)
        .merge(client_endpoints)
        .route("/oauth/introspect", post(introspect::introspect))
        .merge(registration_endpoints)
        .route(
            "/oauth/authorize_device",
            post(device_authorization::create),
        )
}
