//! RFC 7591 dynamic client registration (`POST /oauth/register`) and RFC 7592 management
//! of the registration (`GET`, `PUT`, `DELETE /oauth/register/<client_id>`), as GitLab 18
//! offers for MCP clients. Registration is open (no initial access token): anyone may
//! register, so what a registered client may do is narrow (`domain::client_registration`,
//! `Application::may_use_grant`, consent on every authorization) and registrations are
//! rate limited per address. The registration access token is the only credential of the
//! management endpoints; it is stored as a SHA-256 hash and is not an API token.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::bearer::Challenge;
use super::response::no_store;
use crate::applications;
use crate::domain::application::{Application, ApplicationSettings, ClientKeySource};
use crate::domain::audit::{Action, AuditEvent};
use crate::domain::client_registration::{
    self, AuthMethod, ClientMetadata, GRANT_TYPES, RegistrationError,
};
use crate::domain::secret::{self, APPLICATION_SECRET_PREFIX, REGISTRATION_TOKEN_PREFIX};
use crate::http::client_ip::ClientIp;
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::applications::DynamicRegistration;

/// Registrations one address may make per minute on one node (issue 13: at least 100).
pub const PER_ADDRESS_PER_MINUTE: u32 = 120;

/// `POST /oauth/register` (RFC 7591 §3): 201 with the client information.
pub async fn register(
    State(state): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !state.config.dynamic_client_registration {
        return StatusCode::NOT_FOUND.into_response();
    }
    if let Err(retry_after) = state.registration_limit.check(ip.0, state.clock.now()) {
        let mut res = error(
            StatusCode::TOO_MANY_REQUESTS,
            "temporarily_unavailable",
            "Too many registrations from this address; try again later.",
        );
        if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return res;
    }
    let (metadata, keys) = match read_metadata(&state, &headers, &body) {
        Ok((_, m, keys)) => (m, keys),
        Err(e) => return refused(e),
    };
    let uid = secret::generate_client_id();
    // A public client gets a secret it never sees (the column is required); nothing can
    // present it, and a presented secret is checked against it like any other.
    let client_secret = secret::generate(APPLICATION_SECRET_PREFIX);
    let registration_token = secret::generate(REGISTRATION_TOKEN_PREFIX);
    let method = metadata.token_endpoint_auth_method.as_str();
    let created = state
        .store
        .register_application(
            &uid,
            &secret::hash(client_secret.expose()),
            &settings(&metadata, keys),
            &DynamicRegistration {
                token_hash: &secret::hash(registration_token.expose()),
                token_endpoint_auth_method: method,
            },
            &AuditEvent::about_application(Action::ApplicationCreated, None, 0, "", "")
                .from_ip(ip.0.to_string())
                .with("registration", "dynamic"),
            state.clock.now(),
        )
        .await;
    let app = match created {
        Ok(app) => app,
        Err(e) => return store_error(e),
    };
    tracing::info!(
        application_id = app.id,
        client_id = %app.uid,
        method,
        "client registered dynamically"
    );
    let mut info = client_information(&state, &app);
    info.insert(
        "registration_access_token".into(),
        Value::String(registration_token.expose().to_string()),
    );
    if metadata.token_endpoint_auth_method.has_secret() {
        info.insert(
            "client_secret".into(),
            Value::String(client_secret.expose().to_string()),
        );
        // §3.2.1: 0 means the secret does not expire.
        info.insert("client_secret_expires_at".into(), json!(0));
    }
    no_store((StatusCode::CREATED, Json(Value::Object(info))).into_response())
}

/// `GET /oauth/register/<client_id>` (RFC 7592 §2.1): the current client information.
pub async fn read(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match registered_client(&state, &client_id, &headers).await {
        Ok(app) => no_store(Json(Value::Object(client_information(&state, &app))).into_response()),
        Err(res) => res,
    }
}

/// `PUT /oauth/register/<client_id>` (RFC 7592 §2.2): replaces the metadata, effective at
/// once. A client cannot turn from public to confidential or back (it would need a secret
/// it was never given, or keep one it should not have).
pub async fn update(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let app = match registered_client(&state, &client_id, &headers).await {
        Ok(app) => app,
        Err(res) => return res,
    };
    let (raw, metadata, keys) = match read_metadata(&state, &headers, &body) {
        Ok(read) => read,
        Err(e) => return refused(e),
    };
    // §2.2: the request carries the client's own id, and its secret if it sends one.
    if raw.get("client_id").and_then(Value::as_str) != Some(app.uid.as_str()) {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "client_id must be this client's identifier.",
        );
    }
    if let Some(presented) = raw.get("client_secret").and_then(Value::as_str)
        && !secret::constant_time_eq(&secret::hash(presented), &app.secret_hash)
    {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "client_secret does not match this client's secret.",
        );
    }
    if metadata.token_endpoint_auth_method.is_confidential() != app.confidential {
        return invalid_metadata(
            "token_endpoint_auth_method cannot change between a public (none) and a confidential method; register a new client.",
        );
    }
    let method = metadata.token_endpoint_auth_method.as_str();
    let now = state.clock.now();
    let settings = settings(&metadata, keys);
    if let Err(e) = state
        .store
        .update_registration(app.id, &settings, method, now)
        .await
    {
        return store_error(e);
    }
    let updated = Application {
        name: settings.name,
        redirect_uri: settings.redirect_uri,
        scopes: settings.scopes,
        token_endpoint_auth_method: Some(method.to_string()),
        jwks: settings.keys.jwks().map(str::to_string),
        jwks_uri: settings.keys.jwks_uri().map(str::to_string),
        updated_at: now,
        ..app
    };
    no_store(Json(Value::Object(client_information(&state, &updated))).into_response())
}

/// `DELETE /oauth/register/<client_id>` (RFC 7592 §2.3): 204; the client, its codes and
/// tokens and its registration token are gone at once.
pub async fn delete(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let app = match registered_client(&state, &client_id, &headers).await {
        Ok(app) => app,
        Err(res) => return res,
    };
    let audit = applications::event(Action::ApplicationDeleted, None, &app);
    if let Err(e) = state
        .store
        .delete_application(app.id, &audit, state.clock.now())
        .await
    {
        return store_error(e);
    }
    tracing::info!(application_id = app.id, client_id = %app.uid, "dynamic client deleted by itself");
    no_store(StatusCode::NO_CONTENT.into_response())
}

/// The dynamically registered client `client_id` whose registration access token the
/// request carries. RFC 7592 §2: an unknown client, another client's token, an access
/// token or none at all is 401 (RFC 6750 §3.1), so the answer never tells whether the
/// client exists.
async fn registered_client(
    state: &AppState,
    client_id: &str,
    headers: &HeaderMap,
) -> Result<Application, Response> {
    if !state.config.dynamic_client_registration {
        return Err(StatusCode::NOT_FOUND.into_response());
    }
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let Some(presented) = presented.filter(|t| !t.is_empty()) else {
        return Err(challenge(Challenge::Missing));
    };
    let invalid = || {
        challenge(Challenge::InvalidToken(
            "The registration access token is invalid.",
        ))
    };
    if crate::http::body::check_text(client_id).is_err() {
        return Err(invalid());
    }
    let app = match state.store.application_by_uid(client_id).await {
        Ok(found) => found,
        Err(e) => return Err(store_error(e)),
    };
    let Some(app) = app else {
        return Err(invalid());
    };
    let Some(expected) = &app.registration_token_hash else {
        return Err(invalid());
    };
    if !secret::constant_time_eq(&secret::hash(presented), expected) {
        return Err(invalid());
    }
    Ok(app)
}

/// The JSON body of a registration or update as sent, and validated (RFC 7591 §3.1: JSON
/// only), with the keys of a `private_key_jwt` client. Under the FAPI 2.0 profile only
/// `private_key_jwt` clients may register (FAPI 2.0 §5.3.2.1: no secrets, no public clients).
fn read_metadata(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Value, ClientMetadata, ClientKeySource), RegistrationError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(RegistrationError::metadata(
            "The registration must be sent as application/json.",
        ));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| RegistrationError::metadata("The registration is not valid JSON."))?;
    let metadata = client_registration::parse(&value)?;
    let method = metadata.token_endpoint_auth_method;
    if state.config.fapi2() && method != AuthMethod::PrivateKeyJwt {
        return Err(RegistrationError::metadata(format!(
            "token_endpoint_auth_method {} is not allowed by this server's FAPI 2.0 profile; use private_key_jwt.",
            method.as_str()
        )));
    }
    let keys = ClientKeySource::validate(
        method == AuthMethod::PrivateKeyJwt,
        metadata.jwks.as_deref().unwrap_or_default(),
        metadata.jwks_uri.as_deref().unwrap_or_default(),
        state.config.backchannel_logout_allow_loopback,
    )
    .map_err(|(field, why)| RegistrationError::metadata(format!("{field} {why}.")))?;
    Ok((value, metadata, keys))
}

/// RFC 7591 §3.2.2: 400 with the error.
fn refused(e: RegistrationError) -> Response {
    error(StatusCode::BAD_REQUEST, e.error, &e.description)
}

fn settings(m: &ClientMetadata, keys: ClientKeySource) -> ApplicationSettings {
    let name = m
        .client_name
        .clone()
        .unwrap_or_else(|| client_registration::default_name(&m.redirect_uris[0]));
    ApplicationSettings {
        name,
        redirect_uri: m.redirect_uris.join("\n"),
        scopes: m.scopes.clone(),
        confidential: m.token_endpoint_auth_method.is_confidential(),
        // The MCP authorization spec requires PKCE of every client; so does Doorward of
        // every client nobody vetted.
        require_pkce: true,
        require_par: m.require_par,
        backchannel_logout_uri: None,
        backchannel_logout_session_required: false,
        keys,
    }
}

/// RFC 7591 §3.2.1 client information (without the secrets, which only the registration
/// answer carries). Members without a value are left out, never `null`: the TypeScript
/// SDK's schemas refuse `null`.
fn client_information(state: &AppState, app: &Application) -> Map<String, Value> {
    let base = &state.config.external_url;
    let mut info = Map::new();
    info.insert("client_id".into(), json!(app.uid));
    info.insert("client_id_issued_at".into(), json!(app.created_at));
    info.insert("client_name".into(), json!(app.name));
    info.insert("redirect_uris".into(), json!(app.redirect_uris()));
    info.insert(
        "token_endpoint_auth_method".into(),
        json!(app.auth_method()),
    );
    if let Some(jwks) = app
        .jwks
        .as_deref()
        .and_then(|j| serde_json::from_str::<Value>(j).ok())
    {
        info.insert("jwks".into(), jwks);
    }
    if let Some(uri) = &app.jwks_uri {
        info.insert("jwks_uri".into(), json!(uri));
    }
    info.insert("grant_types".into(), json!(GRANT_TYPES));
    info.insert("response_types".into(), json!(["code"]));
    info.insert("scope".into(), json!(app.scopes.to_string()));
    info.insert(
        "require_pushed_authorization_requests".into(),
        json!(app.require_par),
    );
    info.insert(
        "registration_client_uri".into(),
        json!(format!("{base}/oauth/register/{}", app.uid)),
    );
    info
}

fn error(status: StatusCode, code: &str, description: &str) -> Response {
    no_store(
        (
            status,
            Json(json!({"error": code, "error_description": description})),
        )
            .into_response(),
    )
}

fn invalid_metadata(description: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_client_metadata",
        description,
    )
}

/// RFC 6750 §3: the challenge, and the same error in the JSON body (none for a request
/// without credentials, §3.1).
fn challenge(challenge: Challenge<'_>) -> Response {
    let mut res = match challenge.error() {
        Some(code) => {
            let body = json!({"error": code, "error_description": challenge.description()});
            (challenge.status(), Json(body)).into_response()
        }
        None => challenge.status().into_response(),
    };
    res = no_store(res);
    res.headers_mut()
        .insert(header::WWW_AUTHENTICATE, challenge.www_authenticate());
    res
}

fn store_error(e: StoreError) -> Response {
    match e {
        StoreError::NotFound => challenge(Challenge::InvalidToken(
            "The registration access token is invalid.",
        )),
        other => {
            tracing::warn!(error = %other, "registration store error");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "The server cannot register clients right now.",
            )
        }
    }
}
