//! The HTML templates, compiled into the binary and rendered with minijinja. Every template
//! ends in `.html`, so minijinja escapes every value; undefined variables are errors, so a
//! typo fails a test instead of rendering blank.

use axum::response::{Html, IntoResponse, Response};
use minijinja::{Environment, UndefinedBehavior};

use super::WebError;

const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("../../templates/layout.html")),
    ("sign_in.html", include_str!("../../templates/sign_in.html")),
    (
        "sign_out.html",
        include_str!("../../templates/sign_out.html"),
    ),
    ("profile.html", include_str!("../../templates/profile.html")),
    (
        "user_password.html",
        include_str!("../../templates/user_password.html"),
    ),
    ("message.html", include_str!("../../templates/message.html")),
    ("sign_up.html", include_str!("../../templates/sign_up.html")),
    (
        "password_new.html",
        include_str!("../../templates/password_new.html"),
    ),
    (
        "password_edit.html",
        include_str!("../../templates/password_edit.html"),
    ),
    (
        "confirmation_new.html",
        include_str!("../../templates/confirmation_new.html"),
    ),
    (
        "active_sessions.html",
        include_str!("../../templates/active_sessions.html"),
    ),
    (
        "two_factor.html",
        include_str!("../../templates/two_factor.html"),
    ),
    (
        "two_factor_sign_in.html",
        include_str!("../../templates/two_factor_sign_in.html"),
    ),
    ("error.html", include_str!("../../templates/error.html")),
    (
        "application_form.html",
        include_str!("../../templates/application_form.html"),
    ),
    (
        "applications.html",
        include_str!("../../templates/applications.html"),
    ),
    (
        "application.html",
        include_str!("../../templates/application.html"),
    ),
    (
        "authorize.html",
        include_str!("../../templates/authorize.html"),
    ),
    (
        "authorized_applications.html",
        include_str!("../../templates/authorized_applications.html"),
    ),
    ("device.html", include_str!("../../templates/device.html")),
    ("logout.html", include_str!("../../templates/logout.html")),
    ("groups.html", include_str!("../../templates/groups.html")),
    ("group.html", include_str!("../../templates/group.html")),
    (
        "group_fields.html",
        include_str!("../../templates/group_fields.html"),
    ),
    (
        "group_new.html",
        include_str!("../../templates/group_new.html"),
    ),
    (
        "group_edit.html",
        include_str!("../../templates/group_edit.html"),
    ),
    (
        "personal_access_tokens.html",
        include_str!("../../templates/personal_access_tokens.html"),
    ),
    (
        "admin_nav.html",
        include_str!("../../templates/admin_nav.html"),
    ),
    (
        "admin_pager.html",
        include_str!("../../templates/admin_pager.html"),
    ),
    (
        "admin_users.html",
        include_str!("../../templates/admin_users.html"),
    ),
    (
        "admin_user.html",
        include_str!("../../templates/admin_user.html"),
    ),
    (
        "admin_user_form.html",
        include_str!("../../templates/admin_user_form.html"),
    ),
    (
        "admin_applications.html",
        include_str!("../../templates/admin_applications.html"),
    ),
    (
        "admin_application_new.html",
        include_str!("../../templates/admin_application_new.html"),
    ),
    (
        "admin_application.html",
        include_str!("../../templates/admin_application.html"),
    ),
    (
        "admin_audit_events.html",
        include_str!("../../templates/admin_audit_events.html"),
    ),
];

pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    pub fn load() -> Result<Templates, minijinja::Error> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        for (name, source) in TEMPLATES {
            env.add_template(name, source)?;
        }
        Ok(Templates { env })
    }

    /// Renders `name` with `context` into an HTML response.
    pub fn render(&self, name: &str, context: minijinja::Value) -> Result<Response, WebError> {
        let template = self
            .env
            .get_template(name)
            .map_err(|e| WebError::Internal(e.to_string()))?;
        let html = template
            .render(context)
            .map_err(|e| WebError::Internal(format!("{name}: {e:#}")))?;
        Ok(Html(html).into_response())
    }

    /// Renders the error page; falls back to plain text if even that fails.
    pub fn render_error(&self, title: &str, message: &str) -> Response {
        let ctx = minijinja::context! { title, message, current_user => (), csrf_token => "" };
        match self
            .env
            .get_template("error.html")
            .and_then(|t| t.render(ctx))
        {
            Ok(html) => Html(html).into_response(),
            Err(_) => format!("{title}: {message}").into_response(),
        }
    }
}
