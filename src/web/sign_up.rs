//! `/users/sign_up`, when the instance allows it (`DOORWARD_SIGNUP=open|approval`; closed by
//! default, then 404). With `approval` the account waits in GitLab's
//! `blocked_pending_approval` state until an administrator approves it.
//!
//! A taken username or a taken address makes no account, but the page says exactly what it
//! says for a sign-up that worked ("check your email"), and the address given gets a mail
//! saying why nothing was made: so the form tells nobody whether an address (or a name) is
//! registered, and a person who mistyped still learns what happened.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::confirmation::TOO_MANY;
use super::csrf::Csrf;
use super::form::WebForm;
use super::message::Message;
use super::{WebError, page_with_status};
use crate::accounts::{self, AccountError};
use crate::config::SignUp;
use crate::domain::audit::{Action, AuditEvent};
use crate::domain::secret::SecretString;
use crate::domain::user::{NewUser, Profile, STATE_ACTIVE, STATE_PENDING_APPROVAL};
use crate::http::client_ip::ClientIp;
use crate::mail::Letter;
use crate::state::AppState;
use crate::store::StoreError;

#[derive(Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SignUpForm {
    #[serde(default, skip_serializing)]
    authenticity_token: String,
    #[serde(default, alias = "new_user[username]", alias = "user[username]")]
    username: String,
    #[serde(default, alias = "new_user[name]", alias = "user[name]")]
    name: String,
    #[serde(default, alias = "new_user[email]", alias = "user[email]")]
    email: String,
    #[serde(
        default,
        skip_serializing,
        alias = "new_user[password]",
        alias = "user[password]"
    )]
    password: String,
}

fn open_mode(state: &AppState) -> Result<SignUp, WebError> {
    match state.config.accounts.sign_up {
        SignUp::Closed => Err(WebError::NotFound),
        mode => Ok(mode),
    }
}

fn render(
    state: &AppState,
    csrf: &Csrf,
    form: &SignUpForm,
    errors: &[String],
) -> Result<Response, WebError> {
    state.templates.render(
        "sign_up.html",
        minijinja::context! {
            title => "Register",
            current_user => (),
            csrf_token => csrf.token(),
            form => minijinja::Value::from(minijinja::value::Serde(form)),
            errors => errors.to_vec(),
            approval => state.config.accounts.sign_up == SignUp::Approval,
        },
    )
}

pub async fn show(State(state): State<AppState>, csrf: Csrf) -> Result<Response, WebError> {
    open_mode(&state)?;
    render(&state, &csrf, &SignUpForm::default(), &[])
}

/// Whether sign-up accepts `email` under the domain allow-list (empty: any domain).
fn domain_allowed(allowed: &[String], email: &str) -> bool {
    let domain = email.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase());
    allowed.is_empty() || domain.is_some_and(|d| allowed.contains(&d))
}

pub async fn submit(
    State(state): State<AppState>,
    csrf: Csrf,
    ip: ClientIp,
    WebForm(form): WebForm<SignUpForm>,
) -> Result<Response, WebError> {
    let mode = open_mode(&state)?;
    csrf.verify(&form.authenticity_token)?;
    let again = |status: StatusCode, errors: Vec<String>| {
        page_with_status(status, render(&state, &csrf, &form, &errors))
    };
    if state.sign_up_limit.check(ip.0, state.clock.now()).is_err() {
        return Ok(again(StatusCode::TOO_MANY_REQUESTS, vec![TOO_MANY.into()]));
    }
    let email = form.email.trim();
    if !email.is_empty() && !domain_allowed(&state.config.accounts.sign_up_domains, email) {
        return Ok(again(
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["Email domain is not allowed for sign-up.".into()],
        ));
    }
    let pending = mode == SignUp::Approval;
    let new_user = NewUser {
        username: form.username.trim().to_string(),
        email: email.to_string(),
        name: form.name.trim().to_string(),
        is_admin: false,
        profile: Profile::default(),
        confirmed: false,
        state: if pending {
            STATE_PENDING_APPROVAL
        } else {
            STATE_ACTIVE
        },
    };
    let audit = AuditEvent::about_user(Action::UserSignedUp, None, 0, &new_user.username)
        .from_ip(ip.0.to_string())
        .with("pending_approval", pending);
    let password = SecretString::new(form.password.clone());
    match accounts::create_account(&state, &new_user, &password, audit).await {
        Ok(user) => tracing::info!(user_id = user.id, pending, "signed up"),
        Err(AccountError::Invalid(errors)) => {
            return Ok(again(StatusCode::UNPROCESSABLE_ENTITY, errors.sentences()));
        }
        Err(AccountError::Store(StoreError::Conflict(_))) => {
            tell_why_nothing_was_made(&state, &new_user).await?;
        }
        Err(e) => return Err(WebError::Internal(e.to_string())),
    }
    let message = match pending {
        true => Message::notice(
            "Check your email",
            "Thank you for registering. We sent a message to the address you gave: follow it to \
             confirm your address. Your account then waits for an administrator's approval \
             before you can sign in.",
        ),
        false => Message::notice(
            "Check your email",
            "Thank you for registering. We sent a message to the address you gave: follow it to \
             confirm your address.",
        ),
    };
    Ok(message
        .link("/users/sign_in", "Sign in")
        .render(&state, StatusCode::CREATED))
}

/// A sign-up that made no account: its address learns why (a taken username, or an address
/// that already has an account), by mail, and nobody else learns anything.
async fn tell_why_nothing_was_made(state: &AppState, new_user: &NewUser) -> Result<(), WebError> {
    let username_taken = state
        .store
        .user_by_username(&new_user.username)
        .await?
        .is_some();
    tracing::info!(username_taken, "sign-up refused: taken");
    let letter = Letter::SignUpNotCompleted {
        username_taken,
        username: &new_user.username,
    };
    state
        .mailer
        .send(
            &state.store,
            state.clock.now(),
            &new_user.email,
            &new_user.name,
            &letter,
        )
        .await
        .map_err(|e| WebError::Internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::domain_allowed;

    #[test]
    fn the_domain_list_is_exact_and_case_blind() {
        let allowed = vec!["example.com".to_string()];
        assert!(domain_allowed(&allowed, "ada@Example.COM"));
        assert!(!domain_allowed(&allowed, "ada@evil-example.com"));
        assert!(!domain_allowed(&allowed, "ada@sub.example.com"));
        assert!(!domain_allowed(&allowed, "no-at-sign"));
        assert!(domain_allowed(&[], "anyone@anywhere.test"));
    }
}
