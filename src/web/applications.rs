//! The applications settings pages (`/-/user_settings/applications`, GitLab's paths):
//! register, show, edit, renew the secret of and delete OAuth applications. Users manage
//! the applications they registered; administrators also manage the instance-wide ones
//! (made through the admin API) and may open any application. Anyone else gets 404, so
//! application ids reveal nothing. A secret is shown once, in the response that made it.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::application_form::ApplicationForm;
use super::csrf::Csrf;
use super::form::{WebForm, WebFormPairs};
use super::session::CurrentUser;
use super::{WebError, page_with_status};
use crate::applications;
use crate::domain::application::{Application, ApplicationOwner};
use crate::domain::audit::{Action, AuditEvent};
use crate::domain::clock::human;
use crate::domain::group::Group;
use crate::domain::secret::SecretString;
use crate::domain::user::User;
use crate::state::AppState;

pub const LIST_PATH: &str = "/-/user_settings/applications";

/// The forms that carry nothing but the CSRF token (renew, delete).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenForm {
    pub authenticity_token: String,
}

/// Every catalogue scope as a checkbox, ticked when `selected` names it.
fn scope_options(selected: &[String]) -> Vec<minijinja::Value> {
    super::scopes::checkboxes(selected, true)
}

/// What the application pages (settings and admin area) show of an application.
pub(crate) fn app_view(app: &Application) -> minijinja::Value {
    minijinja::context! {
        id => app.id,
        uid => &app.uid,
        name => &app.name,
        redirect_uris => app.redirect_uris(),
        scopes => app.scopes.to_string(),
        confidential => app.confidential,
        trusted => app.trusted,
        require_pkce => app.require_pkce,
        require_par => app.require_par,
        token_endpoint_auth_method => app.auth_method(),
        jwks => app.jwks.is_some(),
        jwks_uri => &app.jwks_uri,
        backchannel_logout_uri => &app.backchannel_logout_uri,
        instance_wide => app.is_instance_wide(),
        created_at => human(app.created_at),
    }
}

/// Whose applications a settings page manages.
pub enum AppScope<'a> {
    /// `/-/user_settings/applications`: the user's own applications and, for
    /// administrators, the instance-wide ones (and any application by id).
    User(&'a User),
    /// `/groups/<full_path>/-/settings/applications`: the group's applications, for any
    /// Owner of the group (the caller has checked the role).
    Group { user: &'a User, group: &'a Group },
}

impl AppScope<'_> {
    fn user(&self) -> &User {
        match self {
            AppScope::User(user) | AppScope::Group { user, .. } => user,
        }
    }

    /// The list page; each application's page is below it.
    fn base(&self) -> String {
        match self {
            AppScope::User(_) => LIST_PATH.to_string(),
            AppScope::Group { group, .. } => {
                format!("/groups/{}/-/settings/applications", group.full_path)
            }
        }
    }

    fn owner(&self) -> ApplicationOwner {
        match self {
            AppScope::User(user) => ApplicationOwner::User(user.id),
            AppScope::Group { group, .. } => ApplicationOwner::Group(group.id),
        }
    }

    fn may_manage(&self, app: &Application) -> bool {
        match self {
            AppScope::User(user) => user.is_admin || app.owner_id == Some(user.id),
            AppScope::Group { group, .. } => app.group_id == Some(group.id),
        }
    }

    /// The base path as template-safe text: a constant, or `/groups/` and a full path
    /// made of validated group paths (letters, digits, `_`, `-`, `.` and `/`), so nothing
    /// in it needs escaping (escaping would turn its `/` into `&#x2f;`).
    fn base_html(&self) -> minijinja::Value {
        minijinja::Value::from_safe_string(self.base())
    }

    fn title(&self) -> String {
        match self {
            AppScope::User(_) => "Applications".into(),
            AppScope::Group { group, .. } => format!("Applications of {}", group.full_path),
        }
    }
}

/// The list of the scope's applications (and, for administrators on their own page, the
/// instance-wide ones) with the registration form.
async fn render_list(
    state: &AppState,
    csrf: &Csrf,
    scope: &AppScope<'_>,
    form: &ApplicationForm,
    errors: Vec<String>,
    notice: Option<&str>,
) -> Result<Response, WebError> {
    let user = scope.user();
    let own = state.store.applications_of_owner(scope.owner()).await?;
    let instance = match scope {
        AppScope::User(u) if u.is_admin => Some(
            state
                .store
                .applications_of_owner(ApplicationOwner::Instance)
                .await?,
        ),
        _ => None,
    };
    state.templates.render(
        "applications.html",
        minijinja::context! {
            title => scope.title(),
            base => scope.base_html(),
            current_user => crate::web::session::nav(user),
            csrf_token => csrf.token(),
            applications => own.iter().map(app_view).collect::<Vec<_>>(),
            instance_applications => instance.map(|l| l.iter().map(app_view).collect::<Vec<_>>()),
            form => minijinja::Value::from(minijinja::value::Serde(form)),
            scopes => scope_options(&form.scopes),
            show_trusted => user.is_admin,
            errors,
            notice,
        },
    )
}

#[derive(Default)]
struct Messages<'a> {
    /// A secret just generated: shown on this response only.
    secret: Option<&'a SecretString>,
    notice: Option<&'static str>,
    errors: Vec<String>,
}

/// One application: its facts, the edit form, and the renew and delete forms.
fn render_application(
    state: &AppState,
    csrf: &Csrf,
    scope: &AppScope<'_>,
    app: &Application,
    form: &ApplicationForm,
    m: Messages<'_>,
) -> Result<Response, WebError> {
    let user = scope.user();
    let mut res = state.templates.render(
        "application.html",
        minijinja::context! {
            title => format!("Application: {}", app.name),
            base => scope.base_html(),
            current_user => crate::web::session::nav(user),
            csrf_token => csrf.token(),
            app => app_view(app),
            secret => m.secret.map(SecretString::expose),
            form => minijinja::Value::from(minijinja::value::Serde(form)),
            scopes => scope_options(&form.scopes),
            show_trusted => user.is_admin,
            notice => m.notice,
            errors => m.errors,
        },
    )?;
    if m.secret.is_some() {
        // The secret must not outlive this response in a browser or proxy cache.
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    Ok(res)
}

/// The application `raw` names, if the scope manages it. Anything else gets the same 404
/// as an id that does not exist, so application ids reveal nothing.
async fn managed_application(
    state: &AppState,
    scope: &AppScope<'_>,
    raw: &str,
) -> Result<Application, WebError> {
    let id: i64 = raw.parse().map_err(|_| WebError::NotFound)?;
    state
        .store
        .application_by_id(id)
        .await?
        .filter(|a| scope.may_manage(a))
        .ok_or(WebError::NotFound)
}

/// The list page. The notice after a redirect is chosen from a fixed list, so the URL
/// cannot put arbitrary text on the page.
pub async fn list_in(
    state: &AppState,
    scope: &AppScope<'_>,
    csrf: &Csrf,
    query: Option<&str>,
) -> Result<Response, WebError> {
    let notice = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "notice")
        .and_then(|(_, v)| match v.as_ref() {
            "deleted" => Some("The application was deleted."),
            _ => None,
        });
    render_list(
        state,
        csrf,
        scope,
        &ApplicationForm::blank(),
        Vec::new(),
        notice,
    )
    .await
}

/// Registers an application for the scope and shows it with its secret.
pub async fn create_in(
    state: &AppState,
    scope: &AppScope<'_>,
    csrf: &Csrf,
    pairs: Vec<(String, String)>,
) -> Result<Response, WebError> {
    let form = ApplicationForm::from_pairs(pairs)?;
    csrf.verify(&form.authenticity_token)?;
    let user = scope.user();
    let settings = match form.settings(state, user.is_admin) {
        Ok(s) => s,
        Err(errors) => {
            let page = render_list(state, csrf, scope, &form, errors.sentences(), None).await;
            return Ok(page_with_status(StatusCode::UNPROCESSABLE_ENTITY, page));
        }
    };
    let (app, client_secret) = applications::register_application(
        &state.store,
        &state.clock,
        &settings,
        form.trusted,
        scope.owner(),
        &applications::creation_event(Some(user.id)),
    )
    .await?;
    tracing::info!(application_id = app.id, by = user.id, owner = ?scope.owner(), "application created");
    let m = Messages {
        secret: client_secret.as_ref(),
        notice: Some("The application was created."),
        ..Messages::default()
    };
    render_application(state, csrf, scope, &app, &ApplicationForm::of(&app), m)
}

/// One application's page.
pub async fn show_in(
    state: &AppState,
    scope: &AppScope<'_>,
    csrf: &Csrf,
    id: &str,
) -> Result<Response, WebError> {
    let app = managed_application(state, scope, id).await?;
    let form = ApplicationForm::of(&app);
    render_application(state, csrf, scope, &app, &form, Messages::default())
}

/// Saves the edit form.
pub async fn update_in(
    state: &AppState,
    scope: &AppScope<'_>,
    csrf: &Csrf,
    id: &str,
    pairs: Vec<(String, String)>,
) -> Result<Response, WebError> {
    let form = ApplicationForm::from_pairs(pairs)?;
    csrf.verify(&form.authenticity_token)?;
    let user = scope.user();
    let app = managed_application(state, scope, id).await?;
    let settings = match form.settings(state, user.is_admin) {
        Ok(s) => s,
        Err(errors) => {
            let m = Messages {
                errors: errors.sentences(),
                ..Messages::default()
            };
            let page = render_application(state, csrf, scope, &app, &form, m);
            return Ok(page_with_status(StatusCode::UNPROCESSABLE_ENTITY, page));
        }
    };
    // Only administrators see the trusted checkbox; for anyone else the flag stays as is.
    let trusted = if user.is_admin {
        form.trusted
    } else {
        app.trusted
    };
    let audit = AuditEvent::about_application(
        Action::ApplicationUpdated,
        Some(user.id),
        app.id,
        &settings.name,
        &app.uid,
    );
    state
        .store
        .update_application(app.id, &settings, trusted, &audit, state.clock.now())
        .await?;
    tracing::info!(application_id = app.id, by = user.id, "application updated");
    let fresh = state
        .store
        .application_by_id(app.id)
        .await?
        .ok_or(WebError::NotFound)?;
    let m = Messages {
        notice: Some("The application was updated."),
        ..Messages::default()
    };
    render_application(state, csrf, scope, &fresh, &ApplicationForm::of(&fresh), m)
}

/// Shows the new secret once; the old one stops working at once.
pub async fn renew_secret_in(
    state: &AppState,
    scope: &AppScope<'_>,
    csrf: &Csrf,
    id: &str,
    authenticity_token: &str,
) -> Result<Response, WebError> {
    csrf.verify(authenticity_token)?;
    let app = managed_application(state, scope, id).await?;
    if app.uses_private_key_jwt() {
        return Err(WebError::BadRequest(
            crate::api::applications::NO_SECRET.into(),
        ));
    }
    let audit = applications::event(
        Action::ApplicationSecretRenewed,
        Some(scope.user().id),
        &app,
    );
    let client_secret =
        applications::renew_secret(&state.store, &state.clock, &app, &audit).await?;
    tracing::info!(
        application_id = app.id,
        by = scope.user().id,
        "application secret renewed"
    );
    let m = Messages {
        secret: Some(&client_secret),
        notice: Some("A new secret was generated. The previous secret no longer works."),
        ..Messages::default()
    };
    render_application(state, csrf, scope, &app, &ApplicationForm::of(&app), m)
}

/// Deletes the application with its codes and tokens (ON DELETE CASCADE), so everything
/// it was granted is revoked at once.
pub async fn delete_in(
    state: &AppState,
    scope: &AppScope<'_>,
    csrf: &Csrf,
    id: &str,
    authenticity_token: &str,
) -> Result<Response, WebError> {
    csrf.verify(authenticity_token)?;
    let app = managed_application(state, scope, id).await?;
    let audit = applications::event(Action::ApplicationDeleted, Some(scope.user().id), &app);
    state
        .store
        .delete_application(app.id, &audit, state.clock.now())
        .await?;
    tracing::info!(
        application_id = app.id,
        by = scope.user().id,
        "application deleted"
    );
    Ok(Redirect::to(&format!("{}?notice=deleted", scope.base())).into_response())
}

/// `GET /-/user_settings/applications`.
pub async fn index(
    State(state): State<AppState>,
    current: CurrentUser,
    csrf: Csrf,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    list_in(
        &state,
        &AppScope::User(&current.user),
        &csrf,
        query.as_deref(),
    )
    .await
}

/// `POST /-/user_settings/applications`: registers an application owned by the user.
pub async fn create(
    State(state): State<AppState>,
    current: CurrentUser,
    csrf: Csrf,
    WebFormPairs(pairs): WebFormPairs,
) -> Result<Response, WebError> {
    create_in(&state, &AppScope::User(&current.user), &csrf, pairs).await
}

/// `GET /-/user_settings/applications/:id`.
pub async fn show(
    State(state): State<AppState>,
    current: CurrentUser,
    csrf: Csrf,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    show_in(&state, &AppScope::User(&current.user), &csrf, &id).await
}

/// `POST /-/user_settings/applications/:id`: saves the edit form.
pub async fn update(
    State(state): State<AppState>,
    current: CurrentUser,
    csrf: Csrf,
    Path(id): Path<String>,
    WebFormPairs(pairs): WebFormPairs,
) -> Result<Response, WebError> {
    update_in(&state, &AppScope::User(&current.user), &csrf, &id, pairs).await
}

/// `POST /-/user_settings/applications/:id/renew_secret`.
pub async fn renew_secret(
    State(state): State<AppState>,
    current: CurrentUser,
    csrf: Csrf,
    Path(id): Path<String>,
    WebForm(form): WebForm<TokenForm>,
) -> Result<Response, WebError> {
    let scope = AppScope::User(&current.user);
    renew_secret_in(&state, &scope, &csrf, &id, &form.authenticity_token).await
}

/// `POST /-/user_settings/applications/:id/delete`.
pub async fn delete(
    State(state): State<AppState>,
    current: CurrentUser,
    csrf: Csrf,
    Path(id): Path<String>,
    WebForm(form): WebForm<TokenForm>,
) -> Result<Response, WebError> {
    let scope = AppScope::User(&current.user);
    delete_in(&state, &scope, &csrf, &id, &form.authenticity_token).await
}
