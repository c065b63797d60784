//! `/oauth/authorized_applications`: the applications a user has authorized, each
//! revocable. Revoking kills the application's access and refresh tokens at once.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::domain::audit::{Action, AuditEvent};
use crate::domain::clock::human;
use crate::http::client_ip::ClientIp;
use crate::state::AppState;
use crate::web::WebError;
use crate::web::csrf::Csrf;
use crate::web::form::WebForm;
use crate::web::session::CurrentUser;

pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    csrf: Csrf,
) -> Result<Response, WebError> {
    let rows = state.store.authorized_applications(user.user.id).await?;
    // One entry per application: the union of scopes over its live tokens, latest date.
    let mut by_app: BTreeMap<i64, (Vec<&'static str>, i64)> = BTreeMap::new();
    for (app_id, scopes, at) in &rows {
        let entry = by_app.entry(*app_id).or_insert((Vec::new(), *at));
        for s in scopes.names() {
            if !entry.0.contains(&s) {
                entry.0.push(s);
            }
        }
        entry.1 = entry.1.max(*at);
    }
    let mut apps = Vec::new();
    for (app_id, (scopes, at)) in by_app {
        if let Some(app) = state.store.application_by_id(app_id).await? {
            apps.push(minijinja::context! {
                id => app.id,
                name => app.name,
                scopes => scopes.join(", "),
                authorized_at => human(at),
            });
        }
    }
    state.templates.render(
        "authorized_applications.html",
        minijinja::context! {
            title => "Authorized applications",
            current_user => crate::web::session::nav(&user.user),
            csrf_token => csrf.token(),
            apps,
        },
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeForm {
    authenticity_token: String,
}

/// `POST /oauth/authorized_applications/{id}/revoke` (and `DELETE …/{id}`, GitLab's verb).
pub async fn revoke(
    State(state): State<AppState>,
    user: CurrentUser,
    csrf: Csrf,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    WebForm(form): WebForm<RevokeForm>,
) -> Result<Response, WebError> {
    csrf.verify(&form.authenticity_token)?;
    let app_id: i64 = id.parse().map_err(|_| WebError::NotFound)?;
    let app = state
        .store
        .application_by_id(app_id)
        .await?
        .ok_or(WebError::NotFound)?;
    let audit = AuditEvent::about_application(
        Action::AuthorizationRevoked,
        Some(user.user.id),
        app.id,
        &app.name,
        &app.uid,
    )
    .from_ip(ip.to_string());
    let revoked = state
        .store
        .revoke_authorization(user.user.id, app_id, &audit, state.clock.now())
        .await?;
    tracing::info!(
        user_id = user.user.id,
        application_id = app_id,
        tokens = revoked,
        "authorization revoked"
    );
    Ok(Redirect::to("/oauth/authorized_applications").into_response())
}
