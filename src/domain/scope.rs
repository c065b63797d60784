//! GitLab's scope catalogue and scope sets.
//!
//! The names are GitLab's (`lib/gitlab/auth.rb`), so tokens and applications move between
//! GitLab and Doorward unchanged; the descriptions are ours and are shown on consent and
//! token pages.

use std::fmt;

/// One scope of the catalogue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Scope {
    pub name: &'static str,
    pub description: &'static str,
    /// OpenID Connect scopes make sense for OAuth applications, not personal access tokens.
    pub oidc: bool,
}

const fn api(name: &'static str, description: &'static str) -> Scope {
    Scope {
        name,
        description,
        oidc: false,
    }
}
const fn oidc(name: &'static str, description: &'static str) -> Scope {
    Scope {
        name,
        description,
        oidc: true,
    }
}

/// Every scope Doorward knows, in the order GitLab lists them.
pub const CATALOGUE: &[Scope] = &[
    api(
        "api",
        "Full read and write access to the API, on behalf of the user.",
    ),
    api("read_api", "Read-only access to the whole API."),
    api(
        "read_user",
        "Read-only access to your profile through /user and to other users' public profiles.",
    ),
    api("create_runner", "Create runners."),
    api("manage_runner", "Manage (assign, update, delete) runners."),
    api(
        "k8s_proxy",
        "Make Kubernetes API calls through the agent for Kubernetes.",
    ),
    api("self_rotate", "Let the token rotate itself."),
    api(
        "read_repository",
        "Read-only access to repositories over Git-over-HTTP.",
    ),
    api(
        "write_repository",
        "Read and write access to repositories over Git-over-HTTP.",
    ),
    api(
        "read_registry",
        "Read-only access to container registry images.",
    ),
    api(
        "write_registry",
        "Read and write access to container registry images.",
    ),
    api(
        "read_virtual_registry",
        "Read-only access to the dependency proxy.",
    ),
    api(
        "write_virtual_registry",
        "Read and write access to the dependency proxy.",
    ),
    api(
        "read_observability",
        "Read-only access to observability data.",
    ),
    api("write_observability", "Write access to observability data."),
    api("ai_features", "Access to AI feature endpoints."),
    api(
        "sudo",
        "Act as any user of the instance (administrators only).",
    ),
    api(
        "admin_mode",
        "Perform administrative actions (administrators only).",
    ),
    api(
        "read_service_ping",
        "Download Service Ping payloads (administrators only).",
    ),
    oidc(
        "openid",
        "Sign you in with OpenID Connect: lets the application learn who you are.",
    ),
    oidc(
        "profile",
        "Read-only access to your profile (name, username, avatar) through OpenID Connect.",
    ),
    oidc(
        "email",
        "Read-only access to your primary email address through OpenID Connect.",
    ),
];

/// Looks a scope up by its exact (case-sensitive) name.
pub fn find(name: &str) -> Option<&'static Scope> {
    CATALOGUE.iter().find(|s| s.name == name)
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScopeError {
    #[error("unknown scope: {0}")]
    Unknown(String),
    #[error("at least one scope is required")]
    Empty,
}

/// A validated, de-duplicated set of catalogue scopes, kept in catalogue order so that its
/// text form is canonical.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScopeSet(Vec<&'static Scope>);

impl ScopeSet {
    /// Parses scope names separated by spaces, commas or newlines (the CLI takes
    /// `api,read_user`, OAuth takes `api read_user`). Unknown names are an error.
    pub fn parse(text: &str) -> Result<ScopeSet, ScopeError> {
        Self::from_names(
            text.split([' ', ',', '\n', '\r', '\t'])
                .filter(|s| !s.is_empty()),
        )
    }

    pub fn from_names<'a>(
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<ScopeSet, ScopeError> {
        let mut set = ScopeSet::default();
        for name in names {
            let scope = find(name).ok_or_else(|| ScopeError::Unknown(name.to_string()))?;
            if !set.0.contains(&scope) {
                set.0.push(scope);
            }
        }
        set.0
            .sort_by_key(|s| CATALOGUE.iter().position(|c| c == *s));
        Ok(set)
    }

    /// A set read back from storage: written by [`ScopeSet`]'s `Display` (or imported), so
    /// it is space-separated; a name the catalogue no longer knows grants nothing and is
    /// dropped rather than failing the whole row.
    pub fn from_stored(text: &str) -> ScopeSet {
        Self::from_names(text.split(' ').filter(|s| find(s).is_some())).unwrap_or_default()
    }

    /// Like [`ScopeSet::parse`], but an empty set is an error.
    pub fn parse_non_empty(text: &str) -> Result<ScopeSet, ScopeError> {
        let set = Self::parse(text)?;
        if set.0.is_empty() {
            Err(ScopeError::Empty)
        } else {
            Ok(set)
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|s| s.name == name)
    }

    /// True when the set holds at least one of `names`.
    pub fn contains_any(&self, names: &[&str]) -> bool {
        names.iter().any(|n| self.contains(n))
    }

    pub fn is_subset_of(&self, other: &ScopeSet) -> bool {
        self.0.iter().all(|s| other.0.contains(s))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &'static Scope> + '_ {
        self.0.iter().copied()
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|s| s.name).collect()
    }
}

/// Serialised as its text form (RFC 6749 §3.3: space-separated), as introspection's
/// `scope` member is.
impl serde::Serialize for ScopeSet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl fmt::Display for ScopeSet {
    /// Space-separated, as OAuth and the database store it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(s.name)?;
        }
        Ok(())
    }
}

/// What a token may do with the GitLab-compatible API. GitLab: `read_user` reads the user
/// endpoints, `read_api` reads everything, `api` reads and writes everything.
pub mod access {
    /// Scopes that allow reading `/user` and `GET /users`.
    pub const READ_USER: &[&str] = &["api", "read_api", "read_user"];
    /// Scopes that allow reading any API resource.
    pub const READ_API: &[&str] = &["api", "read_api"];
    /// Scopes that allow writing.
    pub const WRITE_API: &[&str] = &["api"];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_any_separator_dedupes_and_orders_canonically() {
        let set = ScopeSet::parse("read_user,api  read_user\nopenid").unwrap();
        assert_eq!(set.to_string(), "api read_user openid");
        assert!(set.contains("api") && !set.contains("read_api"));
    }

    #[test]
    fn unknown_scopes_and_case_changes_are_rejected() {
        assert_eq!(
            ScopeSet::parse("api bogus"),
            Err(ScopeError::Unknown("bogus".into()))
        );
        assert_eq!(
            ScopeSet::parse("API"),
            Err(ScopeError::Unknown("API".into()))
        );
        assert_eq!(ScopeSet::parse_non_empty("  "), Err(ScopeError::Empty));
    }

    #[test]
    fn stored_sets_drop_names_the_catalogue_does_not_know() {
        assert_eq!(
            ScopeSet::from_stored("read_user retired_scope api").to_string(),
            "api read_user"
        );
        assert!(ScopeSet::from_stored("").is_empty());
    }

    #[test]
    fn subsets() {
        let small = ScopeSet::parse("read_user").unwrap();
        let big = ScopeSet::parse("api read_user").unwrap();
        assert!(small.is_subset_of(&big));
        assert!(!big.is_subset_of(&small));
    }
}
