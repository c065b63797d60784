//! `/admin/users`: the list (GitLab's `search_query` and `filter`) and the create and edit
//! forms. A user's page is `user_page`, its buttons `user_actions`.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};

use super::{Admin, PER_PAGE, check_text, nav, page_number, pager, param, query_pairs};
use crate::accounts::{self, AccountError};
use crate::domain::audit::{Action, AuditEvent};
use crate::domain::clock::human;
use crate::domain::secret::{self, SecretString};
use crate::domain::user::{
    self, FieldErrors, NewUser, Profile, STATE_ACTIVE, STATE_BLOCKED, STATE_PENDING_APPROVAL, User,
};
use crate::http::client_ip::ClientIp;
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::users::UserFilter;
use crate::web::csrf::Csrf;
use crate::web::form::WebForm;
use crate::web::{WebError, page_with_status};

/// GitLab's filter tabs of the admin user list, with their labels.
const FILTERS: &[(&str, &str)] = &[
    ("", "All"),
    ("active", "Active"),
    ("blocked", "Blocked"),
    ("blocked_pending_approval", "Pending approval"),
    ("admins", "Admins"),
    ("two_factor_enabled", "2FA enabled"),
    ("two_factor_disabled", "2FA disabled"),
];

/// The filter a tab name means; unknown names show everyone (GitLab ignores them too).
fn filter_of(name: &str, search: Option<String>) -> UserFilter {
    let mut f = UserFilter {
        search,
        // GitLab's admin search looks at e-mail addresses too.
        search_email: true,
        newest_first: true,
        ..UserFilter::default()
    };
    match name {
        "active" => f.state = Some(STATE_ACTIVE),
        "blocked" => f.state = Some(STATE_BLOCKED),
        "blocked_pending_approval" => f.state = Some(STATE_PENDING_APPROVAL),
        "admins" => f.admins = true,
        "two_factor_enabled" => f.two_factor = Some(true),
        "two_factor_disabled" => f.two_factor = Some(false),
        _ => {}
    }
    f
}

/// A state as people read it.
pub(super) fn state_label(state: &str) -> &'static str {
    match state {
        STATE_ACTIVE => "Active",
        STATE_BLOCKED => "Blocked",
        STATE_PENDING_APPROVAL => "Pending approval",
        _ => "Unknown",
    }
}

pub(super) fn user_view(u: &User) -> minijinja::Value {
    minijinja::context! {
        id => u.id,
        username => &u.username,
        name => &u.name,
        email => &u.email,
        unconfirmed_email => &u.unconfirmed_email,
        confirmed => u.confirmed_at.is_some(),
        state => &u.state,
        state_label => state_label(&u.state),
        is_admin => u.is_admin,
        two_factor => u.two_factor_enabled,
        created_at => human(u.created_at),
        last_sign_in_at => u.current_sign_in_at.map(human),
        link => format!("/admin/users/{}", u.username),
    }
}

/// `GET /admin/users[?search_query=…&filter=…&page=N]`.
pub async fn index(
    State(state): State<AppState>,
    admin: Admin,
    csrf: Csrf,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let pairs = query_pairs(query.as_deref());
    let search = param(&pairs, "search_query").unwrap_or_default().trim();
    check_text("search", search, crate::api::input::MAX_SEARCH_LEN)?;
    let filter_name = param(&pairs, "filter").unwrap_or_default();
    let page = page_number(param(&pairs, "page"))?;
    let filter = filter_of(
        filter_name,
        Some(search.to_string()).filter(|s| !s.is_empty()),
    );
    let (users, total) = state
        .store
        .list_users(&filter, PER_PAGE, (page - 1) * PER_PAGE)
        .await?;
    let tabs: Vec<_> = FILTERS
        .iter()
        .map(|&(name, label)| {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            if !name.is_empty() {
                q.append_pair("filter", name);
            }
            if !search.is_empty() {
                q.append_pair("search_query", search);
            }
            minijinja::context! {
                name,
                label,
                link => format!("?{}", q.finish()),
                current => name == filter_name,
            }
        })
        .collect();
    state.templates.render(
        "admin_users.html",
        minijinja::context! {
            title => "Users",
            section => "users",
            current_user => nav(admin.user()),
            csrf_token => csrf.token(),
            users => users.iter().map(user_view).collect::<Vec<_>>(),
            search_query => search,
            filter => filter_name,
            tabs,
            pager => pager(&[("search_query", search), ("filter", filter_name)], page, total),
        },
    )
}

/// The user `username` names, or the 404 page.
pub(super) async fn find(state: &AppState, username: &str) -> Result<User, WebError> {
    state
        .store
        .user_by_username(username)
        .await?
        .ok_or(WebError::NotFound)
}

/// The create and edit form as posted; the checkboxes are absent when not ticked.
#[derive(Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct UserForm {
    #[serde(default, skip_serializing)]
    authenticity_token: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    admin: Option<String>,
    #[serde(default)]
    skip_confirmation: Option<String>,
}

impl UserForm {
    fn admin(&self) -> bool {
        self.admin.is_some()
    }
    fn skip_confirmation(&self) -> bool {
        self.skip_confirmation.is_some()
    }
    fn of(u: &User) -> UserForm {
        UserForm {
            username: u.username.clone(),
            name: u.name.clone(),
            email: u
                .unconfirmed_email
                .clone()
                .unwrap_or_else(|| u.email.clone()),
            admin: u.is_admin.then(|| "1".into()),
            ..UserForm::default()
        }
    }
}

fn render_form(
    state: &AppState,
    admin: &Admin,
    csrf: &Csrf,
    form: &UserForm,
    editing: Option<&User>,
    errors: Vec<String>,
) -> Result<Response, WebError> {
    state.templates.render(
        "admin_user_form.html",
        minijinja::context! {
            title => match editing { Some(u) => format!("Edit user: {}", u.username), None => "New user".into() },
            section => "users",
            current_user => nav(admin.user()),
            csrf_token => csrf.token(),
            form => minijinja::Value::from(minijinja::value::Serde(form)),
            admin_checked => form.admin(),
            skip_checked => form.skip_confirmation(),
            user => editing.map(user_view),
            errors,
        },
    )
}

/// `GET /admin/users/new`.
pub async fn new_form(
    State(state): State<AppState>,
    admin: Admin,
    csrf: Csrf,
) -> Result<Response, WebError> {
    render_form(
        &state,
        &admin,
        &csrf,
        &UserForm::default(),
        None,
        Vec::new(),
    )
}

/// The sentences of an account error a form can show, or the error page.
fn form_errors(e: AccountError) -> Result<Vec<String>, WebError> {
    match e {
        AccountError::Invalid(errors) => Ok(errors.sentences()),
        AccountError::Store(StoreError::Conflict(field)) => {
            let mut errors = FieldErrors::default();
            errors.add(field, "has already been taken");
            Ok(errors.sentences())
        }
        AccountError::Store(e) => Err(e.into()),
        other => Err(WebError::Internal(other.to_string())),
    }
}

/// `POST /admin/users`: creates the account with a password nobody knows, mails a
/// confirmation link (unless "skip confirmation") and a link to choose a password, as
/// GitLab does for accounts an administrator makes.
pub async fn create(
    State(state): State<AppState>,
    admin: Admin,
    csrf: Csrf,
    ClientIp(ip): ClientIp,
    WebForm(form): WebForm<UserForm>,
) -> Result<Response, WebError> {
    csrf.verify(&form.authenticity_token)?;
    let new_user = NewUser {
        username: form.username.trim().to_string(),
        email: form.email.trim().to_string(),
        name: form.name.trim().to_string(),
        is_admin: form.admin(),
        profile: Profile::default(),
        confirmed: form.skip_confirmation(),
        state: STATE_ACTIVE,
    };
    let password = SecretString::new(secret::base64url(&secret::random_bytes::<24>()));
    let audit = AuditEvent::about_user(
        Action::UserCreated,
        Some(admin.user().id),
        0,
        &new_user.username,
    )
    .from_ip(ip.to_string())
    .with("is_admin", new_user.is_admin);
    let created = match accounts::create_account(&state, &new_user, &password, audit).await {
        Ok(user) => user,
        Err(e) => {
            let page = render_form(&state, &admin, &csrf, &form, None, form_errors(e)?);
            return Ok(page_with_status(StatusCode::UNPROCESSABLE_ENTITY, page));
        }
    };
    tracing::info!(
        user_id = created.id,
        by = admin.user().id,
        "user created in the admin area"
    );
    // The account exists now whatever happens to the mail: say so, and how to send it again.
    let notice = match accounts::links::send_password_reset(
        &state,
        &created,
        &ip.to_string(),
        Some(admin.user().id),
    )
    .await
    {
        Ok(()) => "created",
        Err(e) => {
            tracing::error!(user_id = created.id, error = %e, "cannot send the new user's password link");
            "created_without_mail"
        }
    };
    Ok(Redirect::to(&format!(
        "/admin/users/{}?notice={notice}",
        created.username
    ))
    .into_response())
}

/// `GET /admin/users/<username>/edit`.
pub async fn edit_form(
    State(state): State<AppState>,
    admin: Admin,
    csrf: Csrf,
    Path(username): Path<String>,
) -> Result<Response, WebError> {
    let user = find(&state, &username).await?;
    render_form(
        &state,
        &admin,
        &csrf,
        &UserForm::of(&user),
        Some(&user),
        Vec::new(),
    )
}

/// `POST /admin/users/<username>`: saves the name, the admin flag and the address. A new
/// address waits for its confirmation unless "skip confirmation" is ticked.
pub async fn update(
    State(state): State<AppState>,
    admin: Admin,
    csrf: Csrf,
    ClientIp(ip): ClientIp,
    Path(username): Path<String>,
    WebForm(form): WebForm<UserForm>,
) -> Result<Response, WebError> {
    csrf.verify(&form.authenticity_token)?;
    let user = find(&state, &username).await?;
    let me = admin.user();
    let name = form.name.trim();
    let email = form.email.trim();
    let mut errors = FieldErrors::default();
    user::validate_text("name", name, true, &mut errors);
    user::validate_email("email", email, &mut errors);
    if user.id == me.id && !form.admin() {
        errors.add("admin", "cannot be removed from your own account");
    }
    let shown = |errors: Vec<String>| -> Result<Response, WebError> {
        let page = render_form(&state, &admin, &csrf, &form, Some(&user), errors);
        Ok(page_with_status(StatusCode::UNPROCESSABLE_ENTITY, page))
    };
    if !errors.is_empty() {
        return shown(errors.sentences());
    }
    let about = |action| {
        AuditEvent::about_user(action, Some(me.id), user.id, &user.username).from_ip(ip.to_string())
    };
    if name != user.name || form.admin() != user.is_admin {
        let mut audit = about(Action::UserUpdated);
        if name != user.name {
            audit = audit.with("name", name);
        }
        if form.admin() != user.is_admin {
            audit = audit.with("is_admin", form.admin());
        }
        let now = state.clock.now();
        state
            .store
            .admin_update_user(user.id, name, form.admin(), &audit, now)
            .await?;
    }
    let current = user.unconfirmed_email.as_deref().unwrap_or(&user.email);
    let email_changed = !email.eq_ignore_ascii_case(current)
        || (form.skip_confirmation()
            && (user.unconfirmed_email.is_some() || user.confirmed_at.is_none()));
    if email_changed {
        let confirmed = form.skip_confirmation();
        let action = if confirmed {
            Action::UserUpdated
        } else {
            Action::EmailChangeRequested
        };
        if let Err(e) =
            accounts::links::change_email(&state, &user, email, confirmed, about(action)).await
        {
            return shown(form_errors(e)?);
        }
    }
    tracing::info!(
        user_id = user.id,
        by = me.id,
        "user updated in the admin area"
    );
    Ok(Redirect::to(&format!("/admin/users/{}?notice=updated", user.username)).into_response())
}
