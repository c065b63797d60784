//! The profile page: see and edit one's own account, change the password.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};

use super::csrf::Csrf;
use super::form::WebForm;
use super::session::CurrentUser;
use super::{WebError, page_with_status};
use crate::accounts::{self, AccountError, links};
use crate::domain::audit::{Action, AuditEvent};
use crate::domain::clock::human;
use crate::domain::password;
use crate::domain::secret::SecretString;
use crate::domain::user::{self, FieldErrors, Profile, User};
use crate::http::client_ip::ClientIp;
use crate::mail::Letter;
use crate::state::AppState;
use crate::store::StoreError;

/// The editable fields, as the form posts them.
#[derive(Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ProfileForm {
    #[serde(default, skip_serializing)]
    authenticity_token: String,
    name: String,
    email: String,
    #[serde(default)]
    public_email: String,
    #[serde(default)]
    website_url: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    organization: String,
    #[serde(default)]
    job_title: String,
    #[serde(default)]
    bio: String,
}

impl ProfileForm {
    fn of(u: &User) -> ProfileForm {
        ProfileForm {
            authenticity_token: String::new(),
            name: u.name.clone(),
            email: u.email.clone(),
            public_email: u.public_email.clone(),
            website_url: u.website_url.clone(),
            location: u.location.clone(),
            organization: u.organization.clone(),
            job_title: u.job_title.clone(),
            bio: u.bio.clone(),
        }
    }

    fn profile(&self) -> Profile {
        Profile {
            public_email: self.public_email.trim().to_string(),
            website_url: self.website_url.trim().to_string(),
            bio: self.bio.trim().to_string(),
            location: self.location.trim().to_string(),
            organization: self.organization.trim().to_string(),
            job_title: self.job_title.trim().to_string(),
        }
    }
}

#[derive(Default)]
struct Messages {
    notice: Option<String>,
    errors: Vec<String>,
    password_notice: Option<&'static str>,
    password_errors: Vec<String>,
}

fn render(
    state: &AppState,
    csrf: &Csrf,
    user: &User,
    form: &ProfileForm,
    m: Messages,
) -> Result<Response, WebError> {
    state.templates.render(
        "profile.html",
        minijinja::context! {
            title => "Profile",
            current_user => crate::web::session::nav(user),
            csrf_token => csrf.token(),
            user => minijinja::context! {
                username => &user.username,
                is_admin => user.is_admin,
                two_factor_enabled => user.two_factor_enabled,
                created_at => human(user.created_at),
                last_sign_in_at => user.last_sign_in_at.map(human),
                confirmed => user.confirmed_at.is_some(),
                unconfirmed_email => &user.unconfirmed_email,
            },
            form => minijinja::Value::from(minijinja::value::Serde(form)),
            notice => m.notice,
            errors => m.errors,
            password_notice => m.password_notice,
            password_errors => m.password_errors,
        },
    )
}

pub async fn show(
    State(state): State<AppState>,
    current: CurrentUser,
    csrf: Csrf,
) -> Result<Response, WebError> {
    render(
        &state,
        &csrf,
        &current.user,
        &ProfileForm::of(&current.user),
        Messages::default(),
    )
}

/// Saves the profile. A new address does not replace the old one here: it waits for the
/// link mailed to it (`accounts::links::change_email`), and the old one gets a notice.
pub async fn update(
    State(state): State<AppState>,
    current: CurrentUser,
    csrf: Csrf,
    ClientIp(ip): ClientIp,
    WebForm(form): WebForm<ProfileForm>,
) -> Result<Response, WebError> {
    csrf.verify(&form.authenticity_token)?;
    let (name, email) = (form.name.trim(), form.email.trim());
    let profile = form.profile();
    let mut errors = FieldErrors::default();
    user::validate_text("name", name, true, &mut errors);
    user::validate_email("email", email, &mut errors);
    user::validate_profile(&profile, &mut errors);
    let user = &current.user;
    let changes_email = !email.eq_ignore_ascii_case(&user.email);
    if errors.is_empty() && changes_email {
        let audit = AuditEvent::about_user(
            Action::EmailChangeRequested,
            Some(user.id),
            user.id,
            &user.username,
        )
        .from_ip(ip.to_string());
        match links::change_email(&state, user, email, false, audit).await {
            Ok(()) => {}
            Err(AccountError::Invalid(e)) => errors.0.extend(e.0),
            Err(AccountError::Store(StoreError::Conflict(field))) => {
                errors.add(field, "has already been taken")
            }
            Err(e) => return Err(WebError::Internal(e.to_string())),
        }
    }
    if errors.is_empty() {
        match state
            .store
            .update_profile(user.id, name, &user.email, &profile, state.clock.now())
            .await
        {
            Ok(()) => {
                let fresh = state
                    .store
                    .user_by_id(user.id)
                    .await?
                    .ok_or(WebError::NotFound)?;
                let notice = match changes_email {
                    true => format!(
                        "Profile was successfully updated. We sent a confirmation link to {email}: \
                         your address changes once you follow it."
                    ),
                    false => "Profile was successfully updated.".to_string(),
                };
                let m = Messages {
                    notice: Some(notice),
                    ..Messages::default()
                };
                return render(&state, &csrf, &fresh, &ProfileForm::of(&fresh), m);
            }
            Err(StoreError::Conflict(field)) => errors.add(field, "has already been taken"),
            Err(e) => return Err(e.into()),
        }
    }
    let m = Messages {
        errors: errors.sentences(),
        ..Messages::default()
    };
    Ok(page_with_status(
        StatusCode::UNPROCESSABLE_ENTITY,
        render(&state, &csrf, user, &form, m),
    ))
}

pub async fn password_page() -> Redirect {
    Redirect::to(PASSWORD_EDIT_PATH)
}

/// GitLab's page of its own for changing the password; the profile page has the same form.
pub const PASSWORD_EDIT_PATH: &str = "/-/user_settings/password/edit";

/// The password page: the form, and after a post its errors or notice.
pub async fn password_edit(
    State(state): State<AppState>,
    current: CurrentUser,
    csrf: Csrf,
) -> Result<Response, WebError> {
    render_password_page(&state, &csrf, &current.user, None, &[])
}

fn render_password_page(
    state: &AppState,
    csrf: &Csrf,
    user: &User,
    notice: Option<&str>,
    errors: &[String],
) -> Result<Response, WebError> {
    state.templates.render(
        "user_password.html",
        minijinja::context! {
            title => "Password",
            current_user => crate::web::session::nav(user),
            csrf_token => csrf.token(),
            notice,
            errors => errors.to_vec(),
        },
    )
}

/// Both password forms post this; GitLab's `user[...]` names are accepted too.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordForm {
    authenticity_token: String,
    #[serde(alias = "user[current_password]")]
    current_password: String,
    #[serde(alias = "user[password]", alias = "password")]
    new_password: String,
    #[serde(alias = "user[password_confirmation]")]
    password_confirmation: String,
    /// Which page posted: `password` re-renders the password page, else the profile.
    #[serde(default)]
    from: String,
}

pub async fn change_password(
    State(state): State<AppState>,
    current: CurrentUser,
    csrf: Csrf,
    ClientIp(ip): ClientIp,
    WebForm(form): WebForm<PasswordForm>,
) -> Result<Response, WebError> {
    let own_page = form.from == "password";
    csrf.verify(&form.authenticity_token)?;
    let user = &current.user;
    let mut errors = Vec::new();
    let current_ok = state
        .hasher
        .verify(
            &SecretString::new(form.current_password),
            Some(&user.password_hash),
        )
        .await;
    if !current_ok {
        errors.push("Current password is invalid.".to_string());
    } else if form.new_password != form.password_confirmation {
        errors.push("Password confirmation doesn't match the new password.".to_string());
    } else if let Err(e) = password::validate_new_password(&form.new_password) {
        errors.push(format!("Password {e}."));
    }
    if !errors.is_empty() {
        if own_page {
            let page = render_password_page(&state, &csrf, user, None, &errors);
            return Ok(page_with_status(StatusCode::UNPROCESSABLE_ENTITY, page));
        }
        let m = Messages {
            password_errors: errors,
            ..Messages::default()
        };
        let page = render(&state, &csrf, user, &ProfileForm::of(user), m);
        return Ok(page_with_status(StatusCode::UNPROCESSABLE_ENTITY, page));
    }
    let hash = state
        .hasher
        .hash(&SecretString::new(form.new_password))
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?;
    state
        .store
        .set_password(
            user.id,
            &hash,
            Some(&current.session_hash),
            &AuditEvent::about_user(
                Action::PasswordChanged,
                Some(user.id),
                user.id,
                &user.username,
            )
            .from_ip(ip.to_string()),
            state.clock.now(),
        )
        .await?;
    tracing::info!(user_id = user.id, "password changed");
    accounts::notify(&state, user, &Letter::PasswordChanged).await;
    if own_page {
        let notice = Some("Password was successfully updated.");
        return render_password_page(&state, &csrf, user, notice, &[]);
    }
    let m = Messages {
        password_notice: Some("Password was successfully updated."),
        ..Messages::default()
    };
    Ok(render(&state, &csrf, user, &ProfileForm::of(user), m)?.into_response())
}
