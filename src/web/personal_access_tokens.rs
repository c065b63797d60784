//! The personal access tokens settings page (`/-/user_settings/personal_access_tokens`,
//! GitLab's path): create a token, list the user's tokens, revoke one. A new token is shown
//! once, in the response that made it; only its SHA-256 is stored. As in GitLab, the form
//! can be prefilled from the query (`?name=CI&scopes=api,read_user`), which tools such as
//! glab link to.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};

use super::csrf::Csrf;
use super::form::{WebForm, WebFormPairs};
use super::session::CurrentUser;
use super::{WebError, page_with_status};
use crate::accounts::{self, AccountError};
use crate::domain::audit::{Action, AuditEvent};
use crate::domain::clock::{date, human};
use crate::domain::scope::{self, ScopeSet};
use crate::domain::secret::SecretString;
use crate::domain::user::{FieldErrors, User};
use crate::http::client_ip::ClientIp;
use crate::mail::Letter;
use crate::state::AppState;
use crate::store::personal_access_tokens::PersonalAccessToken;

pub const LIST_PATH: &str = "/-/user_settings/personal_access_tokens";

/// The creation form as posted. Scopes arrive as a checkbox group, one `scopes[]` pair per
/// ticked box, so the form is read from raw pairs rather than through `WebForm`.
#[derive(Serialize)]
struct NewTokenForm {
    #[serde(skip)]
    authenticity_token: String,
    name: String,
    expires_at: String,
    scopes: Vec<String>,
}

impl NewTokenForm {
    /// The empty form, expiring after GitLab's default lifetime.
    fn blank(now: i64) -> NewTokenForm {
        NewTokenForm {
            authenticity_token: String::new(),
            name: String::new(),
            expires_at: date(now + accounts::DEFAULT_TOKEN_LIFETIME_DAYS * 86_400),
            scopes: Vec::new(),
        }
    }

    /// Reads the posted pairs as strictly as `WebForm` does: unknown or repeated fields are
    /// refused, except the scope checkboxes (`scopes[]`, or `scopes` from hand-written
    /// clients).
    fn from_pairs(pairs: Vec<(String, String)>) -> Result<NewTokenForm, WebError> {
        let mut form = NewTokenForm {
            authenticity_token: String::new(),
            name: String::new(),
            expires_at: String::new(),
            scopes: Vec::new(),
        };
        let mut seen: Vec<String> = Vec::new();
        for (key, value) in pairs {
            if key == "scopes[]" || key == "scopes" {
                form.scopes.push(value);
                continue;
            }
            if seen.contains(&key) {
                return Err(unreadable(format!("duplicate field `{key}`")));
            }
            match key.as_str() {
                "authenticity_token" => form.authenticity_token = value,
                "name" => form.name = value,
                "expires_at" => form.expires_at = value,
                _ => return Err(unreadable(format!("unknown field `{key}`"))),
            }
            seen.push(key);
        }
        Ok(form)
    }

    /// Validates the whole form at once, so every mistake is reported together.
    fn validate(&self, now: i64) -> Result<(ScopeSet, i64), FieldErrors> {
        let mut date_errors = FieldErrors::default();
        let expires_at = accounts::token_expiry_from_date(&self.expires_at, now, &mut date_errors);
        // Unknown names are reported one by one; the known ones are checked as a set.
        let known = self
            .scopes
            .iter()
            .map(String::as_str)
            .filter(|s| scope::find(s).is_some());
        let scopes = ScopeSet::from_names(known).unwrap_or_default();
        let mut errors =
            accounts::validate_personal_access_token(&self.name, &scopes, expires_at, now);
        for unknown in self.scopes.iter().filter(|s| scope::find(s).is_none()) {
            errors.add("scopes", format!("include an unknown scope: {unknown}"));
        }
        errors.0.extend(date_errors.0);
        match expires_at {
            Some(e) if errors.is_empty() => Ok((scopes, e)),
            _ => Err(errors),
        }
    }
}

fn unreadable(detail: String) -> WebError {
    WebError::BadRequest(format!("The form could not be read ({detail})."))
}

/// The revoke form: nothing but the CSRF token.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeForm {
    authenticity_token: String,
}

/// The scopes a personal access token may hold (not OpenID Connect's), as checkboxes.
fn scope_options(selected: &[String]) -> Vec<minijinja::Value> {
    super::scopes::checkboxes(selected, false)
}

fn token_view(t: &PersonalAccessToken) -> minijinja::Value {
    minijinja::context! {
        id => t.id,
        name => &t.name,
        scopes => t.scopes.names().join(", "),
        created_at => human(t.created_at),
        last_used_at => t.last_used_at.map(human),
        expires_at => t.expires_at.map(date),
        revoked => t.revoked,
    }
}

#[derive(Default)]
struct Messages<'a> {
    /// A token just created: shown on this response only.
    new_token: Option<&'a SecretString>,
    notice: Option<&'static str>,
    errors: Vec<String>,
}

/// The page: a new token if there is one, the creation form, and the user's active and
/// inactive tokens, newest first.
async fn render(
    state: &AppState,
    csrf: &Csrf,
    user: &User,
    form: &NewTokenForm,
    m: Messages<'_>,
) -> Result<Response, WebError> {
    let now = state.clock.now();
    let mut tokens = state.store.personal_access_tokens_of_user(user.id).await?;
    tokens.reverse();
    let (active, inactive): (Vec<_>, Vec<_>) = tokens.iter().partition(|t| t.is_active(now));
    let (earliest, latest) = accounts::token_expiry_bounds(now);
    let mut res = state.templates.render(
        "personal_access_tokens.html",
        minijinja::context! {
            title => "Personal access tokens",
            current_user => crate::web::session::nav(user),
            csrf_token => csrf.token(),
            new_token => m.new_token.map(SecretString::expose),
            form => minijinja::Value::from(minijinja::value::Serde(form)),
            scopes => scope_options(&form.scopes),
            earliest_expiry => earliest,
            latest_expiry => latest,
            max_lifetime_days => accounts::MAX_TOKEN_LIFETIME_DAYS,
            active_tokens => active.into_iter().map(token_view).collect::<Vec<_>>(),
            inactive_tokens => inactive.into_iter().map(token_view).collect::<Vec<_>>(),
            notice => m.notice,
            errors => m.errors,
        },
    )?;
    if m.new_token.is_some() {
        // The token must not outlive this response in a browser or proxy cache.
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    Ok(res)
}

/// `GET /-/user_settings/personal_access_tokens`.
pub async fn index(
    State(state): State<AppState>,
    current: CurrentUser,
    csrf: Csrf,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let mut form = NewTokenForm::blank(state.clock.now());
    let mut notice = None;
    // Prefill only: nothing here is written, so unknown parameters are ignored. The notice
    // is chosen from a fixed list, so the URL cannot put arbitrary text on the page.
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "name" => form.name = value.into_owned(),
            "scopes" => {
                form.scopes = value
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
            }
            "notice" if value == "revoked" => notice = Some("The token was revoked."),
            _ => {}
        }
    }
    let m = Messages {
        notice,
        ..Messages::default()
    };
    render(&state, &csrf, &current.user, &form, m).await
}

/// `POST /-/user_settings/personal_access_tokens`: creates a token and shows it once.
pub async fn create(
    State(state): State<AppState>,
    current: CurrentUser,
    csrf: Csrf,
    ClientIp(ip): ClientIp,
    WebFormPairs(pairs): WebFormPairs,
) -> Result<Response, WebError> {
    let form = NewTokenForm::from_pairs(pairs)?;
    csrf.verify(&form.authenticity_token)?;
    let user = &current.user;
    let invalid = |errors: FieldErrors| Messages {
        errors: errors.sentences(),
        ..Messages::default()
    };
    let (scopes, expires_at) = match form.validate(state.clock.now()) {
        Ok(valid) => valid,
        Err(errors) => {
            let page = render(&state, &csrf, user, &form, invalid(errors)).await;
            return Ok(page_with_status(StatusCode::UNPROCESSABLE_ENTITY, page));
        }
    };
    let audit = AuditEvent::about_user(
        Action::PersonalAccessTokenCreated,
        Some(user.id),
        user.id,
        &user.username,
    )
    .from_ip(ip.to_string());
    let issued = accounts::issue_personal_access_token(
        &state.store,
        &state.clock,
        user.id,
        &form.name,
        &scopes,
        Some(expires_at),
        &audit,
    )
    .await;
    let (token, record) = match issued {
        Ok(issued) => issued,
        Err(AccountError::Invalid(errors)) => {
            let page = render(&state, &csrf, user, &form, invalid(errors)).await;
            return Ok(page_with_status(StatusCode::UNPROCESSABLE_ENTITY, page));
        }
        Err(AccountError::Store(e)) => return Err(e.into()),
        Err(e @ (AccountError::Hashing | AccountError::Mail(_))) => {
            return Err(WebError::Internal(e.to_string()));
        }
    };
    tracing::info!(
        token_id = record.id,
        by = user.id,
        "personal access token created"
    );
    let letter = Letter::PersonalAccessTokenCreated {
        token_name: &record.name,
    };
    accounts::notify(&state, user, &letter).await;
    let m = Messages {
        new_token: Some(&token),
        notice: Some("Your new personal access token has been created."),
        ..Messages::default()
    };
    let blank = NewTokenForm::blank(state.clock.now());
    render(&state, &csrf, user, &blank, m).await
}

/// `POST /-/user_settings/personal_access_tokens/:id/revoke`: the token stops working at
/// once. Someone else's token is the same 404 as one that does not exist.
pub async fn revoke(
    State(state): State<AppState>,
    current: CurrentUser,
    csrf: Csrf,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    WebForm(form): WebForm<RevokeForm>,
) -> Result<Response, WebError> {
    csrf.verify(&form.authenticity_token)?;
    let id: i64 = id.parse().map_err(|_| WebError::NotFound)?;
    let user = &current.user;
    let audit = AuditEvent::about_user(
        Action::PersonalAccessTokenRevoked,
        Some(user.id),
        user.id,
        &user.username,
    )
    .from_ip(ip.to_string());
    state
        .store
        .revoke_personal_access_token(id, user.id, &audit, state.clock.now())
        .await?;
    tracing::info!(token_id = id, by = user.id, "personal access token revoked");
    Ok(Redirect::to(&format!("{LIST_PATH}?notice=revoked")).into_response())
}
