//! "Forgot your password?": `/users/password/new` asks for a username or e-mail and mails a
//! single-use link (`/users/password/edit?reset_password_token=…`) that sets a new password.
//! The answer to a request is the same whether or not the account exists; a few requests a
//! minute pass per address and per account, and more get no mail (the account limit) or a
//! 429 that names no account (the address limit).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::confirmation::TOO_MANY;
use super::csrf::Csrf;
use super::form::WebForm;
use super::message::Message;
use super::{WebError, page_with_status};
use crate::accounts::{AccountError, links};
use crate::domain::secret::SecretString;
use crate::http::client_ip::ClientIp;
use crate::state::AppState;

/// Devise's paranoid answer, the same for every login.
pub const SENT: &str = "If your email address exists in our database, you will receive a \
     password recovery link at your email address in a few minutes.";

pub async fn new_form(State(state): State<AppState>, csrf: Csrf) -> Result<Response, WebError> {
    render_request_form(&state, &csrf, None)
}

fn render_request_form(
    state: &AppState,
    csrf: &Csrf,
    error: Option<&str>,
) -> Result<Response, WebError> {
    state.templates.render(
        "password_new.html",
        minijinja::context! {
            title => "Forgot your password?",
            current_user => (),
            csrf_token => csrf.token(),
            error,
        },
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestForm {
    authenticity_token: String,
    /// Username or e-mail; GitLab's form names it `user[email]`.
    #[serde(
        alias = "user[email]",
        alias = "email",
        alias = "username",
        alias = "user[login]"
    )]
    login: String,
}

pub async fn request(
    State(state): State<AppState>,
    csrf: Csrf,
    ip: ClientIp,
    WebForm(form): WebForm<RequestForm>,
) -> Result<Response, WebError> {
    csrf.verify(&form.authenticity_token)?;
    let now = state.clock.now();
    if state.mail_link_address_limit.check(ip.0, now).is_err() {
        let page = render_request_form(&state, &csrf, Some(TOO_MANY));
        return Ok(page_with_status(StatusCode::TOO_MANY_REQUESTS, page));
    }
    let login = form.login.trim();
    let user = match !login.is_empty() && login.len() <= 255 {
        true => state.store.user_by_login(login).await?,
        false => None,
    };
    if let Some(user) = user {
        if state.mail_link_account_limit.check(user.id, now).is_ok() {
            links::send_password_reset(&state, &user, &ip.0.to_string(), None)
                .await
                .map_err(|e| WebError::Internal(e.to_string()))?;
        } else {
            tracing::info!(
                user_id = user.id,
                "password reset request over the account's limit"
            );
        }
    }
    Ok(Message::notice("Check your email", SENT)
        .link("/users/sign_in", "Sign in")
        .render(&state, StatusCode::OK))
}

#[derive(Deserialize)]
pub struct EditQuery {
    #[serde(default)]
    reset_password_token: String,
}

fn invalid_link(state: &AppState) -> Response {
    Message::error(
        "Reset link invalid",
        "This password reset link is invalid, already used or expired.",
    )
    .link("/users/password/new", "Request a new link")
    .render(state, StatusCode::NOT_FOUND)
}

/// The new-password form, for a link that still works.
pub async fn edit_form(
    State(state): State<AppState>,
    csrf: Csrf,
    Query(q): Query<EditQuery>,
) -> Result<Response, WebError> {
    let works = links::reset_token_works(&state, &q.reset_password_token)
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?;
    if !works {
        return Ok(invalid_link(&state));
    }
    render_edit_form(&state, &csrf, &q.reset_password_token, &[])
}

fn render_edit_form(
    state: &AppState,
    csrf: &Csrf,
    token: &str,
    errors: &[String],
) -> Result<Response, WebError> {
    state.templates.render(
        "password_edit.html",
        minijinja::context! {
            title => "Change your password",
            current_user => (),
            csrf_token => csrf.token(),
            reset_password_token => token,
            errors => errors.to_vec(),
        },
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditForm {
    authenticity_token: String,
    #[serde(alias = "user[reset_password_token]")]
    reset_password_token: String,
    #[serde(alias = "user[password]")]
    password: String,
    #[serde(alias = "user[password_confirmation]")]
    password_confirmation: String,
}

pub async fn update(
    State(state): State<AppState>,
    csrf: Csrf,
    ip: ClientIp,
    WebForm(form): WebForm<EditForm>,
) -> Result<Response, WebError> {
    csrf.verify(&form.authenticity_token)?;
    let token = form.reset_password_token.as_str();
    let again = |errors: Vec<String>| {
        let page = render_edit_form(&state, &csrf, token, &errors);
        page_with_status(StatusCode::UNPROCESSABLE_ENTITY, page)
    };
    if form.password != form.password_confirmation {
        return Ok(again(vec![
            "Password confirmation doesn't match the password.".into(),
        ]));
    }
    let password = SecretString::new(form.password);
    match links::reset_password(&state, token, &password, &ip.0.to_string()).await {
        Ok(Some(user)) => {
            tracing::info!(user_id = user.id, "password reset");
            Ok(Message::notice(
                "Password changed",
                "Your password has been changed successfully. Every session of your account has been signed out.",
            )
            .link("/users/sign_in", "Sign in")
            .render(&state, StatusCode::OK))
        }
        Ok(None) => Ok(invalid_link(&state)),
        Err(AccountError::Invalid(errors)) => Ok(again(errors.sentences())),
        Err(e) => Err(WebError::Internal(e.to_string())),
    }
}
