//! Discovery: the provider metadata (OpenID Connect Discovery 1.0 §3, RFC 8414 §2), the
//! JWKS (spec §1.10) and WebFinger (Discovery §2, spec §1.11).
//!
//! Only what works is advertised: `token` and `implicit` only when the instance enables
//! the implicit grant, `registration_endpoint` only when dynamic registration is on, no
//! `form_post`. Request objects come by value (`request`, RFC 9101) or pushed (RFC 9126);
//! a `request_uri` is only ever one of our own pushed-request URNs, never fetched from the
//! client, so `request_uri_parameter_supported` stays false.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::claims;
use super::keys::KeyCache;
use crate::domain::scope::CATALOGUE;
use crate::oauth::grants::device_code;
use crate::state::AppState;

/// GitLab's caching of the JWKS and the discovery documents (spec §1.10).
const PUBLIC_CACHE: &str = "max-age=86400, public, must-revalidate, no-transform";

fn cached(body: Value) -> Response {
    let mut res = Json(body).into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(PUBLIC_CACHE),
    );
    res
}

fn unavailable(e: impl std::fmt::Display) -> Response {
    tracing::warn!(error = %e, "signing keys unavailable");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"error": "temporarily_unavailable"})),
    )
        .into_response()
}

/// The algorithms of the published keys, signing key first.
async fn signing_algs(state: &AppState, cache: &KeyCache) -> Result<Vec<&'static str>, Response> {
    let now = state.clock.now();
    let ring = cache.ring(&state.store, now).await.map_err(unavailable)?;
    let mut algs: Vec<&'static str> = Vec::new();
    for key in ring.published(now, state.config.id_token_lifetime) {
        if !algs.contains(&key.alg.as_str()) {
            algs.push(key.alg.as_str());
        }
    }
    Ok(algs)
}

/// The metadata document. `oidc` adds the OpenID-only members.
pub fn metadata(state: &AppState, algs: &[&str], oidc: bool) -> Value {
    let base = &state.config.external_url;
    let implicit = state.config.implicit_grant;
    let mut response_types = vec!["code"];
    // RFC 8414 §2: grant types by the value sent as `grant_type`, so the device grant's URN
    // where GitLab says `device_code` (docs/compatibility.md).
    let mut grant_types = vec![
        "authorization_code",
        "refresh_token",
        "password",
        "client_credentials",
        device_code::GRANT_TYPE,
    ];
    // FAPI 2.0 §5.3.2.1 item 2: no password grant under the profile.
    if state.config.fapi2() {
        grant_types.retain(|g| *g != "password");
    }
    // Only when the instance enables it (RFC 9700 §2.1.2 advises against it).
    if implicit {
        response_types.push("token");
        grant_types.push("implicit");
    }
    let scopes: Vec<&str> = CATALOGUE.iter().map(|s| s.name).collect();
    // FAPI 2.0 §5.3.2.1: private_key_jwt only, PKCE with S256 only (docs/fapi.md).
    let fapi2 = state.config.fapi2();
    let auth_methods: &[&str] = if fapi2 {
        &["private_key_jwt"]
    } else {
        &[
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
            "none",
        ]
    };
    let pkce_methods: &[&str] = if fapi2 { &["S256"] } else { &["plain", "S256"] };
    let jws_algs = crate::domain::jws::algorithms(fapi2);
    let mut doc = json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/oauth/authorize"),
        "token_endpoint": format!("{base}/oauth/token"),
        "revocation_endpoint": format!("{base}/oauth/revoke"),
        "introspection_endpoint": format!("{base}/oauth/introspect"),
        "device_authorization_endpoint": format!("{base}/oauth/authorize_device"),
        // RFC 9126 §5.
        "pushed_authorization_request_endpoint": format!("{base}/oauth/par"),
        "require_pushed_authorization_requests": state.config.require_par,
        "jwks_uri": format!("{base}/oauth/discovery/keys"),
        "scopes_supported": scopes,
        "response_types_supported": response_types,
        "response_modes_supported": ["query", "fragment"],
        "grant_types_supported": grant_types,
        "token_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_methods_supported": auth_methods,
        // RFC 8414 §2: the algorithms of private_key_jwt assertions (RFC 7523).
        "token_endpoint_auth_signing_alg_values_supported": jws_algs,
        "revocation_endpoint_auth_signing_alg_values_supported": jws_algs,
        "introspection_endpoint_auth_signing_alg_values_supported": jws_algs,
        "code_challenge_methods_supported": pkce_methods,
        // RFC 9449 §5.1.
        "dpop_signing_alg_values_supported": jws_algs,
        // RFC 9101 §10.5: signed request objects, on /oauth/authorize and /oauth/par.
        "request_parameter_supported": true,
        "request_object_signing_alg_values_supported": jws_algs,
        // RFC 9207 §3: every authorization response carries `iss`.
        "authorization_response_iss_parameter_supported": true,
    });
    if state.config.dynamic_client_registration
        && let Value::Object(m) = &mut doc
    {
        // RFC 8414 §2 / RFC 7591 §3.
        m.insert(
            "registration_endpoint".into(),
            json!(format!("{base}/oauth/register")),
        );
    }
    if state.client_id_metadata.is_some()
        && let Value::Object(m) = &mut doc
    {
        // draft-ietf-oauth-client-id-metadata-document §5.
        m.insert("client_id_metadata_document_supported".into(), json!(true));
    }
    if oidc && let Value::Object(m) = &mut doc {
        m.extend([
            (
                "userinfo_endpoint".into(),
                json!(format!("{base}/oauth/userinfo")),
            ),
            (
                "end_session_endpoint".into(),
                json!(format!("{base}/oauth/logout")),
            ),
            ("subject_types_supported".into(), json!(["public"])),
            ("id_token_signing_alg_values_supported".into(), json!(algs)),
            ("claim_types_supported".into(), json!(["normal"])),
            ("claims_supported".into(), json!(claims::SUPPORTED)),
            (
                "prompt_values_supported".into(),
                json!(["none", "login", "consent"]),
            ),
            // Discovery §3: request_uri by reference (fetched from the client) is not
            // supported; RFC 9126's pushed URNs are advertised by their own endpoint.
            ("request_uri_parameter_supported".into(), json!(false)),
            ("claims_parameter_supported".into(), json!(false)),
            // Back-Channel Logout 1.0 §2.1: logout tokens are sent, always with `sid`.
            ("backchannel_logout_supported".into(), json!(true)),
            ("backchannel_logout_session_supported".into(), json!(true)),
        ]);
    }
    doc
}

/// `GET /.well-known/openid-configuration`.
pub async fn openid_configuration(State(state): State<AppState>) -> Response {
    match signing_algs(&state, &state.signing_keys).await {
        Ok(algs) => cached(metadata(&state, &algs, true)),
        Err(res) => res,
    }
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414): the same document, since
/// RFC 8414 §2 lets OpenID providers include their own members.
pub async fn authorization_server(State(state): State<AppState>) -> Response {
    openid_configuration(State(state)).await
}

/// `GET /oauth/discovery/keys` and `GET /-/jwks`: every published public key.
pub async fn jwks(State(state): State<AppState>) -> Response {
    let now = state.clock.now();
    match state.signing_keys.ring(&state.store, now).await {
        Ok(ring) => cached(json!({"keys": ring.jwks(now, state.config.id_token_lifetime)})),
        Err(e) => unavailable(e),
    }
}

#[derive(Deserialize)]
pub struct WebfingerQuery {
    resource: Option<String>,
}

/// `GET /.well-known/webfinger?resource=acct:…` (Discovery §2): names this issuer for any
/// resource, as GitLab does; 400 without `resource` (RFC 7033 §4.2).
pub async fn webfinger(State(state): State<AppState>, Query(q): Query<WebfingerQuery>) -> Response {
    let Some(resource) = q.resource.filter(|r| !r.is_empty()) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "resource parameter missing"})),
        )
            .into_response();
    };
    let mut res = Json(json!({
        "subject": resource,
        "links": [{
            "rel": "http://openid.net/specs/connect/1.0/issuer",
            "href": format!("{}/", state.config.external_url),
        }],
    }))
    .into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jrd+json"),
    );
    res
}
