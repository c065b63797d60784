//! Address confirmation, as GitLab (Devise) does it: the link in the mail confirms on GET
//! (`/users/confirmation?confirmation_token=…`); `/users/confirmation/new` sends the link
//! again. Confirmation is soft: an unconfirmed user signs in as usual; only `email_verified`
//! and `confirmed_at` wait for it.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::csrf::Csrf;
use super::form::WebForm;
use super::message::Message;
use super::{WebError, page_with_status};
use crate::accounts::links;
use crate::http::client_ip::ClientIp;
use crate::state::AppState;

/// The one answer to a resend request, whether or not the address belongs to anyone.
pub const RESENT: &str = "If your email address exists in our database and is not confirmed yet, \
     you will receive an email with instructions for how to confirm it in a few minutes.";

#[derive(Deserialize)]
pub struct ConfirmQuery {
    #[serde(default)]
    confirmation_token: String,
}

/// Follows the link: used, superseded, expired and unknown tokens all get the same 404 page
/// and change nothing.
pub async fn confirm(
    State(state): State<AppState>,
    ip: ClientIp,
    Query(q): Query<ConfirmQuery>,
) -> Result<Response, WebError> {
    let confirmed = links::confirm(&state, &q.confirmation_token, &ip.0.to_string())
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?;
    Ok(match confirmed {
        Some(user) => {
            tracing::info!(user_id = user.id, "email address confirmed");
            Message::notice(
                "Email confirmed",
                "Your email address has been successfully confirmed.",
            )
            .link("/users/sign_in", "Sign in")
            .render(&state, StatusCode::OK)
        }
        None => Message::error(
            "Confirmation link invalid",
            "This confirmation link is invalid, already used or expired.",
        )
        .link("/users/confirmation/new", "Send a new confirmation link")
        .render(&state, StatusCode::NOT_FOUND),
    })
}

pub async fn new_form(State(state): State<AppState>, csrf: Csrf) -> Result<Response, WebError> {
    render_form(&state, &csrf, None)
}

fn render_form(state: &AppState, csrf: &Csrf, error: Option<&str>) -> Result<Response, WebError> {
    state.templates.render(
        "confirmation_new.html",
        minijinja::context! {
            title => "Resend confirmation instructions",
            current_user => (),
            csrf_token => csrf.token(),
            error,
        },
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResendForm {
    authenticity_token: String,
    #[serde(alias = "user[email]")]
    email: String,
}

/// Sends the link again to an address waiting for confirmation; the answer is the same
/// whatever the address, and a few requests a minute per address and account pass.
pub async fn resend(
    State(state): State<AppState>,
    csrf: Csrf,
    ip: ClientIp,
    WebForm(form): WebForm<ResendForm>,
) -> Result<Response, WebError> {
    csrf.verify(&form.authenticity_token)?;
    let now = state.clock.now();
    if state.mail_link_address_limit.check(ip.0, now).is_err() {
        let page = render_form(&state, &csrf, Some(TOO_MANY));
        return Ok(page_with_status(StatusCode::TOO_MANY_REQUESTS, page));
    }
    let email = form.email.trim();
    let awaiting = match !email.is_empty() && email.len() <= 255 {
        true => state.store.user_awaiting_confirmation(email).await?,
        false => None,
    };
    if let Some((user, address)) = awaiting
        && state.mail_link_account_limit.check(user.id, now).is_ok()
    {
        links::send_confirmation(&state, &user, &address)
            .await
            .map_err(|e| WebError::Internal(e.to_string()))?;
    }
    Ok(Message::notice("Confirmation instructions", RESENT)
        .link("/users/sign_in", "Sign in")
        .render(&state, StatusCode::OK))
}

/// Shown when one address asks too often; it says nothing about any account.
pub const TOO_MANY: &str = "Too many requests from your address. Wait a minute and try again.";
