//! The JSON shapes of GitLab's user, application, personal access token, group and member
//! entities (`lib/api/entities/user*.rb`, `application*.rb`, `personal_access_token.rb`,
//! `group.rb`, `member.rb`, `membership.rb`): what
//! python-gitlab, omniauth-gitlab and other clients read. Fields
//! GitLab has and Doorward does not model are present with neutral values, so strict
//! clients find every key.

use serde::Serialize;
use serde_json::{Value, json};

use crate::domain::application::Application;
use crate::domain::clock::{date, iso8601};
use crate::domain::group::{Group, Membership};
use crate::domain::secret::SecretString;
use crate::domain::user::User;
use crate::store::personal_access_tokens::PersonalAccessToken;

/// An empty string as JSON `null`, as GitLab prints unset optional text.
fn none_if_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

/// A user as one of GitLab's four user entities. Serialised straight from the borrowed
/// row, without building a `serde_json::Value` map first: `GET /user` is the path bearer
/// validation is measured on, and the map's allocations were a visible share of it.
#[derive(Serialize)]
pub struct UserEntity<'a> {
    #[serde(flatten)]
    basic: UserBasic<'a>,
    #[serde(flatten)]
    public: Option<UserPublicPart<'a>>,
    #[serde(flatten)]
    own: Option<UserOwnPart<'a>>,
    #[serde(flatten)]
    admin: Option<UserAdminPart>,
}

/// `UserBasic`: what anyone may see in lists.
#[derive(Serialize)]
struct UserBasic<'a> {
    id: i64,
    username: &'a str,
    public_email: Option<&'a str>,
    name: &'a str,
    state: &'a str,
    locked: bool,
    avatar_url: Option<()>,
    web_url: String,
}

/// What `User` adds: a profile as other users see it.
#[derive(Serialize)]
struct UserPublicPart<'a> {
    created_at: String,
    bio: &'a str,
    location: &'a str,
    skype: &'a str,
    linkedin: &'a str,
    twitter: &'a str,
    discord: &'a str,
    website_url: &'a str,
    organization: &'a str,
    job_title: &'a str,
    pronouns: Option<()>,
    bot: bool,
    work_information: Option<&'a str>,
    followers: u32,
    following: u32,
    is_followed: bool,
    local_time: Option<()>,
}

/// What `UserPublic` adds: the caller's own account.
#[derive(Serialize)]
struct UserOwnPart<'a> {
    last_sign_in_at: Option<String>,
    /// `null` until the address is confirmed (GitLab's soft confirmation).
    confirmed_at: Option<String>,
    last_activity_on: Option<()>,
    email: &'a str,
    theme_id: u32,
    color_scheme_id: u32,
    projects_limit: u32,
    current_sign_in_at: Option<String>,
    identities: [(); 0],
    can_create_group: bool,
    can_create_project: bool,
    two_factor_enabled: bool,
    external: bool,
    private_profile: bool,
    commit_email: &'a str,
}

/// What `UserWithAdmin` adds.
#[derive(Serialize)]
struct UserAdminPart {
    is_admin: bool,
    note: Option<()>,
    namespace_id: Option<()>,
    created_by: Option<()>,
    email_reset_offered_at: Option<()>,
    using_license_seat: bool,
    is_auditor: bool,
    provisioned_by_group_id: Option<()>,
    enterprise_group_id: Option<()>,
    enterprise_group_associated_at: Option<()>,
}

/// `UserBasic`: what anyone may see in lists.
pub fn user_basic<'a>(u: &'a User, base_url: &str) -> UserEntity<'a> {
    UserEntity {
        basic: UserBasic {
            id: u.id,
            username: &u.username,
            public_email: none_if_empty(&u.public_email),
            name: &u.name,
            state: &u.state,
            locked: false,
            avatar_url: None,
            web_url: format!("{base_url}/{}", u.username),
        },
        public: None,
        own: None,
        admin: None,
    }
}

/// `User`: a profile as other users see it.
pub fn user_public<'a>(u: &'a User, base_url: &str) -> UserEntity<'a> {
    UserEntity {
        public: Some(UserPublicPart {
            created_at: iso8601(u.created_at),
            bio: &u.bio,
            location: &u.location,
            skype: "",
            linkedin: "",
            twitter: "",
            discord: "",
            website_url: &u.website_url,
            organization: &u.organization,
            job_title: &u.job_title,
            pronouns: None,
            bot: false,
            work_information: none_if_empty(&u.organization),
            followers: 0,
            following: 0,
            is_followed: false,
            local_time: None,
        }),
        ..user_basic(u, base_url)
    }
}

/// `UserPublic` (GitLab's name): the caller's own account, as `GET /user` returns it.
pub fn user_self<'a>(u: &'a User, base_url: &str) -> UserEntity<'a> {
    UserEntity {
        own: Some(UserOwnPart {
            last_sign_in_at: u.last_sign_in_at.map(iso8601),
            confirmed_at: u.confirmed_at.map(iso8601),
            last_activity_on: None,
            email: &u.email,
            theme_id: 1,
            color_scheme_id: 1,
            projects_limit: 0,
            current_sign_in_at: u.current_sign_in_at.map(iso8601),
            identities: [],
            can_create_group: false,
            can_create_project: false,
            two_factor_enabled: u.two_factor_enabled,
            external: false,
            private_profile: false,
            commit_email: &u.email,
        }),
        ..user_public(u, base_url)
    }
}

/// `UserWithAdmin`: what administrators see of any account.
pub fn user_admin<'a>(u: &'a User, base_url: &str) -> UserEntity<'a> {
    UserEntity {
        admin: Some(UserAdminPart {
            is_admin: u.is_admin,
            note: None,
            namespace_id: None,
            created_by: None,
            email_reset_offered_at: None,
            using_license_seat: false,
            is_auditor: false,
            provisioned_by_group_id: None,
            enterprise_group_id: None,
            enterprise_group_associated_at: None,
        }),
        ..user_self(u, base_url)
    }
}

/// `Application`: GitLab's five keys, plus Doorward's `trusted`, `require_pkce`,
/// `require_pushed_authorization_requests` and `scopes` (space-separated, as registered).
/// Never the secret.
pub fn application(a: &Application) -> Value {
    json!({
        "id": a.id,
        "application_id": a.uid,
        "application_name": a.name,
        "callback_url": a.redirect_uri,
        "confidential": a.confidential,
        "trusted": a.trusted,
        "require_pkce": a.require_pkce,
        "require_pushed_authorization_requests": a.require_par,
        "scopes": a.scopes,
        "backchannel_logout_uri": a.backchannel_logout_uri,
        "backchannel_logout_session_required": a.backchannel_logout_session_required,
        "dynamically_registered": a.is_dynamic(),
        "token_endpoint_auth_method": a.auth_method(),
        "jwks": a.jwks,
        "jwks_uri": a.jwks_uri,
    })
}

/// `ApplicationWithSecret`: the answer to create and renew, the only responses that carry
/// the secret in clear.
/// A `private_key_jwt` client has no secret: `secret` is `null`.
pub fn application_with_secret(a: &Application, client_secret: Option<&SecretString>) -> Value {
    let mut v = application(a);
    if let Value::Object(m) = &mut v {
        let secret = client_secret.map(|s| Value::String(s.expose().to_string()));
        m.insert("secret".into(), secret.unwrap_or(Value::Null));
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
        "scopes": t.scopes.names(),
        "user_id": t.user_id,
        "last_used_at": t.last_used_at.map(iso8601),
        "active": t.is_active(now),
        "expires_at": t.expires_at.map(date),
    })
}

/// `Group`: GitLab's keys; settings about projects, runners and the like that Doorward
/// does not have carry GitLab's defaults.
pub fn group(g: &Group, base_url: &str) -> Value {
    json!({
        "id": g.id,
        "web_url": format!("{base_url}/groups/{}", g.full_path),
        "name": g.name,
        "path": g.path,
        "description": g.description,
        "visibility": g.visibility.as_str(),
        "share_with_group_lock": false,
        "require_two_factor_authentication": false,
        "two_factor_grace_period": 48,
        "project_creation_level": "developer",
        "auto_devops_enabled": Value::Null,
        "subgroup_creation_level": "owner",
        "emails_disabled": false,
        "emails_enabled": true,
        "mentions_disabled": Value::Null,
        "lfs_enabled": true,
        "default_branch_protection": 2,
        "avatar_url": Value::Null,
        "request_access_enabled": false,
        "full_path": g.full_path,
        "created_at": iso8601(g.created_at),
        "parent_id": g.parent_id,
    })
}

/// `Member`: the user's basic fields with the membership's level and expiry date.
pub fn member(u: &User, m: &Membership, base_url: &str) -> Value {
    json!({
        "id": u.id,
        "username": u.username,
        "name": u.name,
        "state": u.state,
        "locked": false,
        "avatar_url": Value::Null,
        "web_url": format!("{base_url}/{}", u.username),
        "access_level": m.access_level.value(),
        "created_at": iso8601(m.created_at),
        "expires_at": m.expires_at.map(date),
        "membership_state": "active",
    })
}

/// `Membership` of `GET /users/:id/memberships`: the group as a source.
pub fn membership(g: &Group, m: &Membership) -> Value {
    json!({
        "source_id": g.id,
        "source_name": g.name,
        "source_type": "Namespace",
        "access_level": m.access_level.value(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_user_entity_adds_its_keys_with_gitlabs_null_and_empty_values() {
        let u = User::example();
        let keys = |v: &Value| v.as_object().unwrap().len();
        let basic = serde_json::to_value(user_basic(&u, "https://id.example")).unwrap();
        let public = serde_json::to_value(user_public(&u, "https://id.example")).unwrap();
        let own = serde_json::to_value(user_self(&u, "https://id.example")).unwrap();
        let admin = serde_json::to_value(user_admin(&u, "https://id.example")).unwrap();
        assert_eq!(
            (keys(&basic), keys(&public), keys(&own), keys(&admin)),
            (8, 25, 40, 50)
        );
        assert_eq!(basic["web_url"], "https://id.example/ada");
        assert_eq!(basic["public_email"], Value::Null);
        assert_eq!(basic["avatar_url"], Value::Null);
        assert!(public.get("email").is_none());
        assert_eq!(public["bio"], "");
        assert_eq!(public["work_information"], Value::Null);
        assert_eq!(own["email"], "ada@example.com");
        assert_eq!(own["identities"], json!([]));
        assert_eq!(own["last_sign_in_at"], Value::Null);
        assert_eq!(own["confirmed_at"], Value::Null);
        assert!(own.get("is_admin").is_none());
        assert_eq!(admin["is_admin"], false);
        assert_eq!(admin["note"], Value::Null);
    }
}
