//! The user claims GitLab gives relying parties (spec §4.2), shared by the id_token and
//! UserInfo. Everything is gated on `openid` by the callers; `email` switches between the
//! primary and the public address. Null and empty values are omitted, `false` is kept.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

use crate::domain::group::AccessLevel;
use crate::domain::scope::ScopeSet;
use crate::domain::user::User;
use crate::store::groups::GroupClaim;

/// Every claim Doorward can put in an id_token or a UserInfo answer (for discovery).
pub const SUPPORTED: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "at_hash",
    "sid",
    "name",
    "nickname",
    "preferred_username",
    "email",
    "email_verified",
    "website",
    "profile",
    "groups",
    "groups_direct",
    OWNER_CLAIM,
    MAINTAINER_CLAIM,
    DEVELOPER_CLAIM,
];

/// GitLab's claims of the groups a user belongs to directly at exactly one level.
pub const OWNER_CLAIM: &str = "https://gitlab.org/claims/groups/owner";
pub const MAINTAINER_CLAIM: &str = "https://gitlab.org/claims/groups/maintainer";
pub const DEVELOPER_CLAIM: &str = "https://gitlab.org/claims/groups/developer";

/// Core §5.3.2 (and GitLab, spec §4.1): an empty claim is omitted, not sent empty.
fn put(claims: &mut Map<String, Value>, name: &str, value: &str) {
    if !value.is_empty() {
        claims.insert(name.into(), Value::String(value.to_string()));
    }
}

/// `sub` (the user id as a string, GitLab's form, so existing relying parties keep their
/// mapping) and the profile claims of `user` for a token with `scopes`. `base_url` is the
/// external URL, for `profile` (GitLab's `web_url`, `BASE/username`).
///
/// `email_verified` is true exactly when the address given is the account's confirmed one
/// (the link in the confirmation mail was followed, or an administrator vouched for it); a
/// changed address counts only once confirmed, and until then the old one is given.
pub fn user_claims(user: &User, scopes: &ScopeSet, base_url: &str) -> Map<String, Value> {
    let mut claims = Map::new();
    claims.insert("sub".into(), Value::String(user.id.to_string()));
    put(&mut claims, "name", &user.name);
    put(&mut claims, "nickname", &user.username);
    put(&mut claims, "preferred_username", &user.username);
    // GitLab (spec §4.2): the email scope gives the primary address, else the public one.
    let email = if scopes.contains("email") {
        user.email.as_str()
    } else {
        user.public_email.as_str()
    };
    if !email.is_empty() {
        put(&mut claims, "email", email);
        let verified = user.confirmed_at.is_some() && email.eq_ignore_ascii_case(&user.email);
        claims.insert("email_verified".into(), Value::Bool(verified));
    }
    put(&mut claims, "website", &user.website_url);
    put(
        &mut claims,
        "profile",
        &format!("{base_url}/{}", user.username),
    );
    claims
}

/// A UserInfo answer: the profile claims of [`user_claims`] and GitLab's group claims,
/// serialised straight from the (possibly cached, shared) claim rows, so that a user in a
/// thousand groups costs no thousands of copied strings per answer.
#[derive(serde::Serialize)]
pub struct UserInfo<'a> {
    #[serde(flatten)]
    pub profile: Map<String, Value>,
    #[serde(flatten)]
    pub groups: UserInfoGroupClaims<'a>,
}

/// GitLab's UserInfo group claims (spec §4.2): `groups`, every group the user belongs to
/// directly or through an ancestor; and for Owner, Maintainer and Developer, the groups
/// where the direct membership is exactly that level, omitted when there are none. All
/// full paths. (The rows come from `Store::group_claims`: unexpired, Guest and above.)
pub struct UserInfoGroupClaims<'a>(pub &'a [GroupClaim]);

impl Serialize for UserInfoGroupClaims<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let rows = self.0;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("groups", &Paths { rows, level: None })?;
        for (name, level) in [
            (OWNER_CLAIM, AccessLevel::OWNER),
            (MAINTAINER_CLAIM, AccessLevel::MAINTAINER),
            (DEVELOPER_CLAIM, AccessLevel::DEVELOPER),
        ] {
            if rows.iter().any(|r| r.direct_level == Some(level)) {
                let level = Some(level);
                map.serialize_entry(name, &Paths { rows, level })?;
            }
        }
        map.end()
    }
}

/// The full paths of `rows`, or of those whose direct level is `level`.
struct Paths<'a> {
    rows: &'a [GroupClaim],
    level: Option<AccessLevel>,
}

impl Serialize for Paths<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(
            self.rows
                .iter()
                .filter(|r| self.level.is_none() || r.direct_level == self.level)
                .map(|r| r.full_path.as_str()),
        )
    }
}

/// GitLab's id_token group claim (spec §4.2): `groups_direct`, the groups the user is a
/// direct member of (`[]` when none).
pub fn groups_direct(rows: &[GroupClaim]) -> Value {
    Value::Array(
        rows.iter()
            .filter(|r| r.direct_level.is_some())
            .map(|r| Value::String(r.full_path.clone()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_group_claims_list_full_paths_and_omit_empty_levels() {
        let row = |path: &str, level: Option<AccessLevel>| GroupClaim {
            full_path: path.into(),
            direct_level: level,
        };
        let rows = [
            row("acme", Some(AccessLevel::OWNER)),
            row("acme/infra", None),
            row("ops", Some(AccessLevel::DEVELOPER)),
            row("wiki", Some(AccessLevel::new(10).unwrap())),
        ];
        let mut profile = Map::new();
        profile.insert("sub".into(), Value::String("42".into()));
        let info = serde_json::to_value(UserInfo {
            profile,
            groups: UserInfoGroupClaims(&rows),
        })
        .unwrap();
        assert_eq!(
            info,
            serde_json::json!({
                "sub": "42",
                "groups": ["acme", "acme/infra", "ops", "wiki"],
                OWNER_CLAIM: ["acme"],
                DEVELOPER_CLAIM: ["ops"],
            })
        );
        let none = serde_json::to_value(UserInfoGroupClaims(&[])).unwrap();
        assert_eq!(none, serde_json::json!({"groups": []}));
    }

    fn user() -> User {
        User::example()
    }

    #[test]
    fn email_scope_gives_the_primary_address_and_empty_values_are_omitted() {
        let u = user();
        let openid = ScopeSet::parse("openid").unwrap();
        let c = user_claims(&u, &openid, "https://id.example");
        assert_eq!(c["sub"], "42");
        assert_eq!(c["nickname"], "ada");
        assert_eq!(c["profile"], "https://id.example/ada");
        assert!(!c.contains_key("email") && !c.contains_key("website"));
        let c = user_claims(
            &u,
            &ScopeSet::parse("openid email").unwrap(),
            "https://id.example",
        );
        assert_eq!(c["email"], "ada@example.com");
        assert_eq!(c["email_verified"], false);
        let mut confirmed = user();
        confirmed.confirmed_at = Some(1);
        let c = user_claims(
            &confirmed,
            &ScopeSet::parse("openid email").unwrap(),
            "https://id.example",
        );
        assert_eq!(c["email_verified"], true);
        confirmed.public_email = "ada@public.example".into();
        let c = user_claims(&confirmed, &openid, "https://id.example");
        assert_eq!(
            c["email_verified"], false,
            "a public address is not the confirmed one"
        );
        let mut public = user();
        public.public_email = "ada@public.example".into();
        public.website_url = "https://ada.example".into();
        let c = user_claims(&public, &openid, "https://id.example");
        assert_eq!(c["email"], "ada@public.example");
        assert_eq!(c["website"], "https://ada.example");
    }
}
