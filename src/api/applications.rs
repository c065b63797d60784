//! `/applications`: GitLab's admin API for instance-wide OAuth applications
//! (`lib/api/applications.rb`). Administrators only; applications users register on their
//! settings page are not reachable here, as in GitLab.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::auth::Caller;
use super::entities::{application, application_with_secret};
use super::error::ApiError;
use super::input::{ApiInput, NoParams, parse_query};
use super::pagination::Page;
use crate::applications;
use crate::domain::application::ApplicationSettings;
use crate::domain::application::{Application, validate_settings};
use crate::domain::audit::Action;
use crate::domain::scope::access;
use crate::state::AppState;
use crate::store::StoreError;

const NOT_FOUND: &str = "404 Application Not Found";
/// RFC 7523: a `private_key_jwt` client authenticates with its keys; it has no secret.
pub const NO_SECRET: &str =
    "This application authenticates with private_key_jwt and has no secret to renew.";

/// `POST /applications` fields: GitLab's, plus Doorward's `trusted` and `require_pkce`,
/// RFC 9126 §6's `require_pushed_authorization_requests`, and the Back-Channel Logout
/// registration (`backchannel_logout_uri`, `backchannel_logout_session_required`, as in
/// RFC 7591 metadata).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateApplication {
    name: Option<String>,
    /// One URI, or several separated by newlines (GitLab's form).
    redirect_uri: Option<String>,
    /// Space-separated, e.g. `read_user openid`.
    scopes: Option<String>,
    confidential: Option<bool>,
    trusted: Option<bool>,
    require_pkce: Option<bool>,
    require_pushed_authorization_requests: Option<bool>,
    backchannel_logout_uri: Option<String>,
    backchannel_logout_session_required: Option<bool>,
    /// RFC 7591 §2: `client_secret_basic` (the default), `client_secret_post`, `none` (a
    /// public client, as `confidential: false`) or `private_key_jwt` (RFC 7523, with `jwks`
    /// or `jwks_uri`; no secret).
    token_endpoint_auth_method: Option<String>,
    /// A JWK Set as JSON text: the client's public keys.
    jwks: Option<String>,
    jwks_uri: Option<String>,
}

/// `POST /applications`: registers an instance-wide application; 200 with its secret, the
/// only time the secret is shown (GitLab documents 200 here, not 201).
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiInput(input): ApiInput<CreateApplication>,
) -> Result<Response, ApiError> {
    caller.require_scope(access::WRITE_API)?;
    caller.require_admin()?;
    let missing: Vec<String> = [
        ("name", &input.name),
        ("redirect_uri", &input.redirect_uri),
        ("scopes", &input.scopes),
    ]
    .iter()
    .filter(|(_, v)| v.is_none())
    .map(|(k, _)| format!("{k} is missing"))
    .collect();
    if !missing.is_empty() {
        return Err(ApiError::BadRequest(missing.join(", ")));
    }
    let settings = validate_settings(
        input.name.as_deref().unwrap_or_default(),
        input.redirect_uri.as_deref().unwrap_or_default(),
        input.scopes.as_deref().unwrap_or_default(),
        input.confidential.unwrap_or(true),
        input.require_pkce.unwrap_or(false),
        state.config.allow_http_redirect_uris,
    )
    .and_then(|s| {
        s.with_backchannel_logout(
            input.backchannel_logout_uri.as_deref().unwrap_or_default(),
            input.backchannel_logout_session_required.unwrap_or(false),
            state.config.backchannel_logout_allow_loopback,
        )
    })
    .and_then(|s| {
        s.with_auth_method(
            input
                .token_endpoint_auth_method
                .as_deref()
                .unwrap_or_default(),
            input.jwks.as_deref().unwrap_or_default(),
            input.jwks_uri.as_deref().unwrap_or_default(),
            state.config.backchannel_logout_allow_loopback,
        )
    })
    .map_err(ApiError::Validation)?;
    let settings = ApplicationSettings {
        require_par: input.require_pushed_authorization_requests.unwrap_or(false),
        ..settings
    };
    let (app, client_secret) = applications::register_application(
        &state.store,
        &state.clock,
        &settings,
        input.trusted.unwrap_or(false),
        None,
        &applications::creation_event(Some(caller.user.id)),
    )
    .await?;
    tracing::info!(
        application_id = app.id,
        by = caller.user.id,
        "application created through the API"
    );
    Ok(Json(application_with_secret(&app, client_secret.as_ref())).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    page: Option<i64>,
    per_page: Option<i64>,
    /// Doorward: `true` lists the dynamically registered clients (RFC 7591) instead.
    #[serde(default, deserialize_with = "crate::api::input::gitlab_bool")]
    dynamic: Option<bool>,
}

/// `GET /applications`: the instance-wide applications (with `dynamic=true` the
/// dynamically registered ones), paginated, without secrets.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    caller.require_scope(access::READ_API)?;
    caller.require_admin()?;
    let q: ListQuery = parse_query(query.as_deref())?;
    let page = Page::new(q.page, q.per_page)?;
    let dynamic = q.dynamic.unwrap_or(false);
    let (apps, total) = state
        .store
        .instance_applications(dynamic, page.per_page, page.offset())
        .await?;
    let body: Vec<_> = apps.iter().map(application).collect();
    let url = format!("{}/api/v4/applications", state.config.external_url);
    let kept: Vec<(String, String)> = if dynamic {
        vec![("dynamic".into(), "true".into())]
    } else {
        Vec::new()
    };
    Ok((page.headers(total, &url, &kept), Json(body)).into_response())
}

/// The instance-wide or dynamically registered application `raw` names; anything else
/// (unknown, not a number, or registered by a user or for a group) is GitLab's 404.
async fn instance_application(state: &AppState, raw: &str) -> Result<Application, ApiError> {
    let not_found = || ApiError::NotFound(NOT_FOUND.into());
    let id: i64 = raw.parse().map_err(|_| not_found())?;
    state
        .store
        .application_by_id(id)
        .await?
        .filter(|a| a.is_instance_wide() || a.is_dynamic())
        .ok_or_else(not_found)
}

fn gone(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::NotFound(NOT_FOUND.into()),
        other => other.into(),
    }
}

/// `DELETE /applications/:id`: 204. Its codes and tokens are deleted with it, so every
/// grant it holds ends at once.
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    _: NoParams,
) -> Result<Response, ApiError> {
    caller.require_scope(access::WRITE_API)?;
    caller.require_admin()?;
    let app = instance_application(&state, &id).await?;
    let audit = applications::event(Action::ApplicationDeleted, Some(caller.user.id), &app);
    state
        .store
        .delete_application(app.id, &audit, state.clock.now())
        .await
        .map_err(gone)?;
    tracing::info!(
        application_id = app.id,
        by = caller.user.id,
        "application deleted through the API"
    );
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /applications/:id/renew-secret`: 200 with the new secret; the old one stops
/// working at once.
pub async fn renew_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    _: NoParams,
) -> Result<Response, ApiError> {
    caller.require_scope(access::WRITE_API)?;
    caller.require_admin()?;
    let app = instance_application(&state, &id).await?;
    if app.uses_private_key_jwt() {
        return Err(ApiError::BadRequest(NO_SECRET.into()));
    }
    let client_secret = applications::renew_secret(
        &state.store,
        &state.clock,
        &app,
        &applications::event(Action::ApplicationSecretRenewed, Some(caller.user.id), &app),
    )
    .await
    .map_err(gone)?;
    tracing::info!(
        application_id = app.id,
        by = caller.user.id,
        "application secret renewed through the API"
    );
    Ok(Json(application_with_secret(&app, Some(&client_secret))).into_response())
}
