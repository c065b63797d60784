//! `/admin/applications`: every OAuth application (users', groups', instance-wide and
//! dynamically registered) with its owner; instance-wide ones are created, edited (trusted
//! included: no consent screen) and renewed here, and any one may be deleted. A secret is
//! shown once, in the response that made it. Each change records an audit event.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::{Admin, PER_PAGE, TokenForm, nav, page_number, pager, param, query_pairs};
use crate::applications;
use crate::domain::application::{Application, ApplicationOwner};
use crate::domain::audit::{Action, AuditEvent};
use crate::domain::secret::SecretString;
use crate::http::client_ip::ClientIp;
use crate::state::AppState;
use crate::web::application_form::ApplicationForm;
use crate::web::applications::app_view;
use crate::web::csrf::Csrf;
use crate::web::form::{WebForm, WebFormPairs};
use crate::web::{WebError, page_with_status};

const BASE: &str = "/admin/applications";

/// Who owns an application, for people, with a link when there is a page.
fn owner_view(app: &Application, user: Option<&str>, group: Option<&str>) -> minijinja::Value {
    let (kind, label, link) = match (user, group) {
        (Some(u), _) => ("user", u.to_string(), Some(format!("/admin/users/{u}"))),
        (_, Some(g)) => ("group", g.to_string(), Some(format!("/groups/{g}"))),
        _ if app.is_dynamic() => ("dynamic", "Dynamic registration".into(), None),
        _ => ("instance", "Instance-wide".into(), None),
    };
    minijinja::context! { kind, label, link }
}

/// `GET /admin/applications[?page=N]`.
pub async fn index(
    State(state): State<AppState>,
    admin: Admin,
    csrf: Csrf,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let pairs = query_pairs(query.as_deref());
    let page = page_number(param(&pairs, "page"))?;
    let notice = match param(&pairs, "notice") {
        Some("deleted") => Some("The application was deleted."),
        _ => None,
    };
    let (apps, total) = state
        .store
        .admin_list_applications(PER_PAGE, (page - 1) * PER_PAGE)
        .await?;
    let rows: Vec<_> = apps
        .iter()
        .map(|a| {
            minijinja::context! {
                app => app_view(&a.application),
                owner => owner_view(&a.application, a.owner_username.as_deref(), a.group_full_path.as_deref()),
            }
        })
        .collect();
    state.templates.render(
        "admin_applications.html",
        minijinja::context! {
            title => "Applications",
            section => "applications",
            current_user => nav(admin.user()),
            csrf_token => csrf.token(),
            applications => rows,
            notice,
            pager => pager(&[], page, total),
        },
    )
}

fn render_new(
    state: &AppState,
    admin: &Admin,
    csrf: &Csrf,
    form: &ApplicationForm,
    errors: Vec<String>,
) -> Result<Response, WebError> {
    state.templates.render(
        "admin_application_new.html",
        minijinja::context! {
            title => "New instance-wide application",
            section => "applications",
            current_user => nav(admin.user()),
            csrf_token => csrf.token(),
            form => minijinja::Value::from(minijinja::value::Serde(form)),
            scopes => crate::web::scopes::checkboxes(&form.scopes, true),
            errors,
        },
    )
}

/// `GET /admin/applications/new`.
pub async fn new_form(
    State(state): State<AppState>,
    admin: Admin,
    csrf: Csrf,
) -> Result<Response, WebError> {
    let form = ApplicationForm::blank();
    render_new(&state, &admin, &csrf, &form, Vec::new())
}

#[derive(Default)]
struct Messages<'a> {
    secret: Option<&'a SecretString>,
    notice: Option<&'static str>,
    errors: Vec<String>,
}

async fn render_application(
    state: &AppState,
    admin: &Admin,
    csrf: &Csrf,
    app: &Application,
    form: &ApplicationForm,
    m: Messages<'_>,
) -> Result<Response, WebError> {
    let user = match app.owner_id {
        Some(id) => state.store.user_by_id(id).await?.map(|u| u.username),
        None => None,
    };
    let group = match app.group_id {
        Some(id) => state.store.group_by_id(id).await?.map(|g| g.full_path),
        None => None,
    };
    let mut res = state.templates.render(
        "admin_application.html",
        minijinja::context! {
            title => format!("Application: {}", app.name),
            section => "applications",
            current_user => nav(admin.user()),
            csrf_token => csrf.token(),
            app => app_view(app),
            owner => owner_view(app, user.as_deref(), group.as_deref()),
            secret => m.secret.map(SecretString::expose),
            form => minijinja::Value::from(minijinja::value::Serde(form)),
            scopes => crate::web::scopes::checkboxes(&form.scopes, true),
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

async fn find(state: &AppState, raw: &str) -> Result<Application, WebError> {
    let id: i64 = raw.parse().map_err(|_| WebError::NotFound)?;
    state
        .store
        .application_by_id(id)
        .await?
        .ok_or(WebError::NotFound)
}

/// Only instance-wide applications are edited and renewed here; users and group Owners
/// manage their own.
fn require_instance_wide(app: &Application) -> Result<(), WebError> {
    if app.is_instance_wide() {
        Ok(())
    } else {
        Err(WebError::Forbidden(
            "Only instance-wide applications are edited here; their owners manage the others."
                .into(),
        ))
    }
}

fn event(action: Action, admin: &Admin, app: &Application, ip: std::net::IpAddr) -> AuditEvent {
    applications::event(action, Some(admin.user().id), app).from_ip(ip.to_string())
}

/// `POST /admin/applications`: registers an instance-wide application and shows its secret.
pub async fn create(
    State(state): State<AppState>,
    admin: Admin,
    csrf: Csrf,
    ClientIp(ip): ClientIp,
    WebFormPairs(pairs): WebFormPairs,
) -> Result<Response, WebError> {
    let form = ApplicationForm::from_pairs(pairs)?;
    csrf.verify(&form.authenticity_token)?;
    let settings = match form.settings(&state, true) {
        Ok(s) => s,
        Err(errors) => {
            let page = render_new(&state, &admin, &csrf, &form, errors.sentences());
            return Ok(page_with_status(StatusCode::UNPROCESSABLE_ENTITY, page));
        }
    };
    // The store fills in the new application's id, name and client id.
    let audit = applications::creation_event(Some(admin.user().id))
        .from_ip(ip.to_string())
        .with("trusted", form.trusted);
    let (app, client_secret) = applications::register_application(
        &state.store,
        &state.clock,
        &settings,
        form.trusted,
        ApplicationOwner::Instance,
        &audit,
    )
    .await?;
    let m = Messages {
        secret: client_secret.as_ref(),
        notice: Some("The application was created."),
        ..Messages::default()
    };
    render_application(&state, &admin, &csrf, &app, &ApplicationForm::of(&app), m).await
}

/// `GET /admin/applications/<id>`.
pub async fn show(
    State(state): State<AppState>,
    admin: Admin,
    csrf: Csrf,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let app = find(&state, &id).await?;
    let form = ApplicationForm::of(&app);
    render_application(&state, &admin, &csrf, &app, &form, Messages::default()).await
}

/// `POST /admin/applications/<id>`: saves the edit form of an instance-wide application.
pub async fn update(
    State(state): State<AppState>,
    admin: Admin,
    csrf: Csrf,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    WebFormPairs(pairs): WebFormPairs,
) -> Result<Response, WebError> {
    let form = ApplicationForm::from_pairs(pairs)?;
    csrf.verify(&form.authenticity_token)?;
    let app = find(&state, &id).await?;
    require_instance_wide(&app)?;
    let settings = match form.settings(&state, true) {
        Ok(s) => s,
        Err(errors) => {
            let m = Messages {
                errors: errors.sentences(),
                ..Messages::default()
            };
            let page = render_application(&state, &admin, &csrf, &app, &form, m).await;
            return Ok(page_with_status(StatusCode::UNPROCESSABLE_ENTITY, page));
        }
    };
    let audit = event(Action::ApplicationUpdated, &admin, &app, ip).with("trusted", form.trusted);
    state
        .store
        .update_application(app.id, &settings, form.trusted, &audit, state.clock.now())
        .await?;
    let fresh = find(&state, &id).await?;
    let m = Messages {
        notice: Some("The application was updated."),
        ..Messages::default()
    };
    render_application(
        &state,
        &admin,
        &csrf,
        &fresh,
        &ApplicationForm::of(&fresh),
        m,
    )
    .await
}

/// `POST /admin/applications/<id>/renew_secret`: shows the new secret once; the old one
/// stops working at once.
pub async fn renew_secret(
    State(state): State<AppState>,
    admin: Admin,
    csrf: Csrf,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    WebForm(form): WebForm<TokenForm>,
) -> Result<Response, WebError> {
    csrf.verify(&form.authenticity_token)?;
    let app = find(&state, &id).await?;
    require_instance_wide(&app)?;
    if app.uses_private_key_jwt() {
        return Err(WebError::BadRequest(
            crate::api::applications::NO_SECRET.into(),
        ));
    }
    let audit = event(Action::ApplicationSecretRenewed, &admin, &app, ip);
    let client_secret =
        applications::renew_secret(&state.store, &state.clock, &app, &audit).await?;
    let m = Messages {
        secret: Some(&client_secret),
        notice: Some("A new secret was generated. The previous secret no longer works."),
        ..Messages::default()
    };
    render_application(&state, &admin, &csrf, &app, &ApplicationForm::of(&app), m).await
}

/// `POST /admin/applications/<id>/delete`: deletes any application with everything it was
/// granted.
pub async fn delete(
    State(state): State<AppState>,
    admin: Admin,
    csrf: Csrf,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    WebForm(form): WebForm<TokenForm>,
) -> Result<Response, WebError> {
    csrf.verify(&form.authenticity_token)?;
    let app = find(&state, &id).await?;
    let audit = event(Action::ApplicationDeleted, &admin, &app, ip);
    state
        .store
        .delete_application(app.id, &audit, state.clock.now())
        .await?;
    Ok(Redirect::to(&format!("{BASE}?notice=deleted")).into_response())
}
