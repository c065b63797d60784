//! `/users/sign_up`, when the instance allows it (`DOORWARD_SIGNUP=open|approval`; closed by
//! default, then 404). With `approval` the account waits in GitLab's
//! `blocked_pending_approval` state until an administrator approves it. A taken username and
//! a taken address get one and the same answer, so the form does not tell which is taken.

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
use crate::state::AppState;
use crate::store::StoreError;

/// The answer to a username or address already in use, whichever it is.
pub const TAKEN: &str = "That username or email address cannot be used. If you already have \
     an account, sign in or reset your password.";

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
    let user = match accounts::create_account(&state, &new_user, &password, audit).await {
        Ok(user) => user,
        Err(AccountError::Invalid(errors)) => {
            return Ok(again(StatusCode::UNPROCESSABLE_ENTITY, errors.sentences()));
        }
        Err(AccountError::Store(StoreError::Conflict(_))) => {
            return Ok(again(StatusCode::UNPROCESSABLE_ENTITY, vec![TAKEN.into()]));
        }
        Err(e) => return Err(WebError::Internal(e.to_string())),
    };
    tracing::info!(user_id = user.id, pending, "signed up");
    let message = match pending {
        true => Message::notice(
            "Account awaiting approval",
            "You have signed up successfully. Your account is awaiting approval from your \
             administrator: you can sign in once it is approved. We sent you a link to confirm \
             your email address.",
        ),
        false => Message::notice(
            "Welcome",
            "You have signed up successfully. We sent you a link to confirm your email address; \
             you can sign in now.",
        ),
    };
    Ok(message
        .link("/users/sign_in", "Sign in")
        .render(&state, StatusCode::CREATED))
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
