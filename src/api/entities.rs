//! The JSON shapes of GitLab's user, application and personal access token entities
//! (`lib/api/entities/user*.rb`, `application*.rb`, `personal_access_token.rb`): what
//! python-gitlab, omniauth-gitlab and other clients read. Fields
//! GitLab has and Doorward does not model are present with neutral values, so strict
//! clients find every key.

use serde_json::{Value, json};

use crate::domain::application::Application;
use crate::domain::clock::{date, iso8601};
use crate::domain::secret::SecretString;
use crate::domain::user::User;
use crate::store::tokens::PersonalAccessToken;

fn opt(s: &str) -> Value {
    if s.is_empty() {
        Value::Null
    } else {
        Value::String(s.to_string())
    }
}

fn text(s: &str) -> Value {
    Value::String(s.to_string())
}

/// `UserBasic`: what anyone may see in lists.
pub fn user_basic(u: &User, base_url: &str) -> Value {
    json!({
        "id": u.id,
        "username": u.username,
        "public_email": opt(&u.public_email),
        "name": u.name,
        "state": u.state,
        "locked": false,
        "avatar_url": Value::Null,
        "web_url": format!("{base_url}/{}", u.username),
    })
}

/// `User`: a profile as other users see it.
pub fn user_public(u: &User, base_url: &str) -> Value {
    let mut v = user_basic(u, base_url);
    if let Value::Object(m) = &mut v {
        m.extend([
            ("created_at".into(), text(&iso8601(u.created_at))),
            ("bio".into(), text(&u.bio)),
            ("location".into(), text(&u.location)),
            ("skype".into(), text("")),
            ("linkedin".into(), text("")),
            ("twitter".into(), text("")),
            ("discord".into(), text("")),
            ("website_url".into(), text(&u.website_url)),
            ("organization".into(), text(&u.organization)),
            ("job_title".into(), text(&u.job_title)),
            ("pronouns".into(), Value::Null),
            ("bot".into(), Value::Bool(false)),
            ("work_information".into(), opt(&u.organization)),
            ("followers".into(), json!(0)),
            ("following".into(), json!(0)),
            ("is_followed".into(), Value::Bool(false)),
            ("local_time".into(), Value::Null),
        ]);
    }
    v
}

/// `UserPublic` (GitLab's name): the caller's own account, as `GET /user` returns it.
pub fn user_self(u: &User, base_url: &str) -> Value {
    let mut v = user_public(u, base_url);
    if let Value::Object(m) = &mut v {
        m.extend([
            (
                "last_sign_in_at".into(),
                u.last_sign_in_at
                    .map(|t| text(&iso8601(t)))
                    .unwrap_or(Value::Null),
            ),
            ("confirmed_at".into(), text(&iso8601(u.created_at))),
            ("last_activity_on".into(), Value::Null),
            ("email".into(), text(&u.email)),
            ("theme_id".into(), json!(1)),
            ("color_scheme_id".into(), json!(1)),
            ("projects_limit".into(), json!(0)),
            (
                "current_sign_in_at".into(),
                u.current_sign_in_at
                    .map(|t| text(&iso8601(t)))
                    .unwrap_or(Value::Null),
            ),
            ("identities".into(), json!([])),
            ("can_create_group".into(), Value::Bool(false)),
            ("can_create_project".into(), Value::Bool(false)),
            (
                "two_factor_enabled".into(),
                Value::Bool(u.two_factor_enabled),
            ),
            ("external".into(), Value::Bool(false)),
            ("private_profile".into(), Value::Bool(false)),
            ("commit_email".into(), text(&u.email)),
        ]);
    }
    v
}

/// `UserWithAdmin`: what administrators see of any account.
pub fn user_admin(u: &User, base_url: &str) -> Value {
    let mut v = user_self(u, base_url);
    if let Value::Object(m) = &mut v {
        m.extend([
            ("is_admin".into(), Value::Bool(u.is_admin)),
            ("note".into(), Value::Null),
            ("namespace_id".into(), Value::Null),
            ("created_by".into(), Value::Null),
            ("email_reset_offered_at".into(), Value::Null),
            ("using_license_seat".into(), Value::Bool(false)),
            ("is_auditor".into(), Value::Bool(false)),
            ("provisioned_by_group_id".into(), Value::Null),
            ("enterprise_group_id".into(), Value::Null),
            ("enterprise_group_associated_at".into(), Value::Null),
        ]);
    }
    v
}

/// `Application`: GitLab's five keys, plus Doorward's `trusted`, `require_pkce` and
/// `scopes` (space-separated, as registered). Never the secret.
pub fn application(a: &Application) -> Value {
    json!({
        "id": a.id,
        "application_id": a.uid,
        "application_name": a.name,
        "callback_url": a.redirect_uri,
        "confidential": a.confidential,
        "trusted": a.trusted,
        "require_pkce": a.require_pkce,
        "scopes": a.scopes,
    })
}

/// `ApplicationWithSecret`: the answer to create and renew, the only responses that carry
/// the secret in clear.
pub fn application_with_secret(a: &Application, client_secret: &SecretString) -> Value {
    let mut v = application(a);
    if let Value::Object(m) = &mut v {
        m.insert("secret".into(), text(client_secret.expose()));
    }
    v
}

/// `PersonalAccessToken`: never the token itself, which exists only in the response that
/// created it. `expires_at` is a date, as GitLab stores it; Doorward has no descriptions.
pub fn personal_access_token(t: &PersonalAccessToken, now: i64) -> Value {
    json!({
        "id": t.id,
        "name": t.name,
        "revoked": t.revoked,
        "created_at": iso8601(t.created_at),
        "description": Value::Null,
        "scopes": t.scopes.split(' ').filter(|s| !s.is_empty()).collect::<Vec<_>>(),
        "user_id": t.user_id,
        "last_used_at": t.last_used_at.map(iso8601),
        "active": t.is_active(now),
        "expires_at": t.expires_at.map(date),
    })
}
