//! The application form (`application_form.html`), shared by a user's or group's settings
//! pages and the admin area. Scopes arrive as a checkbox group, one `scopes[]` pair per
//! ticked box, so the form is read from raw pairs rather than through `WebForm`, as strictly:
//! unknown or repeated fields are refused.

use serde::Serialize;

use super::WebError;
use crate::domain::application::{Application, ApplicationSettings, validate_settings};
use crate::domain::user::FieldErrors;
use crate::state::AppState;

#[derive(Serialize)]
pub(crate) struct ApplicationForm {
    #[serde(skip)]
    pub authenticity_token: String,
    pub name: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub confidential: bool,
    pub require_pkce: bool,
    /// RFC 9126 §6 `require_pushed_authorization_requests`.
    pub require_par: bool,
    pub trusted: bool,
    pub backchannel_logout_uri: String,
    pub backchannel_logout_session_required: bool,
    /// `private_key_jwt`, or empty (a secret, or none, as `confidential` says).
    pub token_endpoint_auth_method: String,
    pub jwks: String,
    pub jwks_uri: String,
}

impl ApplicationForm {
    /// The empty form: confidential, as most applications run on a server.
    pub fn blank() -> ApplicationForm {
        ApplicationForm {
            authenticity_token: String::new(),
            name: String::new(),
            redirect_uri: String::new(),
            scopes: Vec::new(),
            confidential: true,
            require_pkce: false,
            require_par: false,
            trusted: false,
            backchannel_logout_uri: String::new(),
            backchannel_logout_session_required: false,
            token_endpoint_auth_method: String::new(),
            jwks: String::new(),
            jwks_uri: String::new(),
        }
    }

    pub fn of(app: &Application) -> ApplicationForm {
        ApplicationForm {
            authenticity_token: String::new(),
            name: app.name.clone(),
            redirect_uri: app.redirect_uri.clone(),
            scopes: app.scopes.names().into_iter().map(str::to_string).collect(),
            confidential: app.confidential,
            require_pkce: app.require_pkce,
            require_par: app.require_par,
            trusted: app.trusted,
            backchannel_logout_uri: app.backchannel_logout_uri.clone().unwrap_or_default(),
            backchannel_logout_session_required: app.backchannel_logout_session_required,
            token_endpoint_auth_method: if app.uses_private_key_jwt() {
                app.auth_method().to_string()
            } else {
                String::new()
            },
            jwks: app.jwks.clone().unwrap_or_default(),
            jwks_uri: app.jwks_uri.clone().unwrap_or_default(),
        }
    }

    /// Reads the posted pairs; an unticked checkbox is simply absent.
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Result<ApplicationForm, WebError> {
        let mut form = ApplicationForm {
            confidential: false,
            ..ApplicationForm::blank()
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
                "redirect_uri" => form.redirect_uri = value,
                "confidential" => form.confidential = checkbox(&key, &value)?,
                "require_pkce" => form.require_pkce = checkbox(&key, &value)?,
                "require_pushed_authorization_requests" => {
                    form.require_par = checkbox(&key, &value)?
                }
                "trusted" => form.trusted = checkbox(&key, &value)?,
                "backchannel_logout_uri" => form.backchannel_logout_uri = value,
                "backchannel_logout_session_required" => {
                    form.backchannel_logout_session_required = checkbox(&key, &value)?
                }
                "token_endpoint_auth_method" => form.token_endpoint_auth_method = value,
                "jwks" => form.jwks = value,
                "jwks_uri" => form.jwks_uri = value,
                _ => return Err(unreadable(format!("unknown field `{key}`"))),
            }
            seen.push(key);
        }
        Ok(form)
    }

    /// Validates the form. Only administrators (`may_trust`) may mark an application
    /// trusted, because a trusted application gets tokens without asking the user.
    pub fn settings(
        &self,
        state: &AppState,
        may_trust: bool,
    ) -> Result<ApplicationSettings, FieldErrors> {
        let checked = validate_settings(
            &self.name,
            &self.redirect_uri,
            &self.scopes.join(" "),
            self.confidential,
            self.require_pkce,
            state.config.allow_http_redirect_uris,
        )
        .and_then(|s| {
            s.with_backchannel_logout(
                &self.backchannel_logout_uri,
                self.backchannel_logout_session_required,
                state.config.backchannel_logout_allow_loopback,
            )
        })
        .and_then(|s| {
            s.with_auth_method(
                &self.token_endpoint_auth_method,
                &self.jwks,
                &self.jwks_uri,
                state.config.backchannel_logout_allow_loopback,
            )
        })
        .map(|s| ApplicationSettings {
            require_par: self.require_par,
            ..s
        });
        if self.trusted && !may_trust {
            let mut errors = checked.err().unwrap_or_default();
            errors.add("trusted", "can be set only by an administrator");
            return Err(errors);
        }
        checked
    }
}

fn checkbox(key: &str, value: &str) -> Result<bool, WebError> {
    match value {
        "1" | "on" | "true" => Ok(true),
        "0" | "off" | "false" => Ok(false),
        _ => Err(unreadable(format!("`{key}` must be 1 or 0"))),
    }
}

fn unreadable(detail: String) -> WebError {
    WebError::BadRequest(format!("The form could not be read ({detail})."))
}
