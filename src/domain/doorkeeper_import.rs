//! `doorward import doorkeeper` (issue 16): the rows read from a GitLab (doorkeeper)
//! database, and the rules that decide, without I/O, what each becomes at Doorward. The
//! source is read by `store::doorkeeper_source`, written by `store::doorkeeper_import`.

use std::collections::HashSet;

use serde::Serialize;

use super::user::{STATE_ACTIVE, STATE_BLOCKED, STATE_PENDING_APPROVAL};

/// A `users` row, in GitLab's shape.
#[derive(Clone, Debug)]
pub struct SourceUser {
    pub id: i64,
    pub username: String,
    pub email: String,
    /// Devise's bcrypt hash.
    pub encrypted_password: String,
    pub name: Option<String>,
    pub state: Option<String>,
    pub admin: bool,
    pub otp_required_for_login: bool,
    pub confirmed: bool,
}

/// An `oauth_applications` row.
#[derive(Clone, Debug)]
pub struct SourceApplication {
    pub id: i64,
    pub name: String,
    pub uid: String,
    /// The secret as the source stored it (plaintext, SHA-512 hex or PBKDF2).
    pub secret: String,
    /// One redirect URI per line.
    pub redirect_uri: String,
    pub scopes: String,
    pub confidential: bool,
    pub trusted: bool,
    pub owner_id: Option<i64>,
    pub owner_type: Option<String>,
}

/// An `oauth_access_tokens` row; times in Unix seconds.
#[derive(Clone, Debug)]
pub struct SourceToken {
    pub id: i64,
    pub token: String,
    pub refresh_token: Option<String>,
    pub resource_owner_id: Option<i64>,
    pub application_id: Option<i64>,
    pub expires_in: Option<i64>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    pub scopes: String,
    pub previous_refresh_token: Option<String>,
}

/// Everything the import reads from a source.
#[derive(Clone, Debug, Default)]
pub struct SourceData {
    pub users: Vec<SourceUser>,
    pub applications: Vec<SourceApplication>,
    pub access_tokens: Vec<SourceToken>,
    /// Counted only: codes live ten minutes, a client mid-flow starts again.
    pub access_grants: u64,
    pub openid_requests: u64,
    pub device_grants: u64,
}

/// The expiry of a token that doorkeeper let live for ever (`expires_in` NULL, GitLab
/// before 15.0): the last second of year 9999.
pub const NEVER_EXPIRES: i64 = 253_402_300_799;

/// PostgreSQL refuses NUL in text where SQLite keeps it, and no username, address, name,
/// URI or secret holds one: a source row with a NUL is skipped, on both backends alike.
fn storable<'a>(texts: impl IntoIterator<Item = Option<&'a str>>) -> bool {
    texts.into_iter().flatten().all(|t| !t.contains('\0'))
}

impl SourceUser {
    pub fn is_storable(&self) -> bool {
        storable([
            Some(self.username.as_str()),
            Some(&self.email),
            Some(&self.encrypted_password),
            self.name.as_deref(),
        ]) && !self.username.is_empty()
            && !self.email.is_empty()
    }
}

impl SourceApplication {
    pub fn is_storable(&self) -> bool {
        storable([
            Some(self.uid.as_str()),
            Some(&self.name),
            Some(&self.secret),
            Some(&self.redirect_uri),
            Some(&self.scopes),
        ]) && !self.uid.is_empty()
    }
}

impl SourceToken {
    pub fn is_storable(&self) -> bool {
        storable([
            Some(self.token.as_str()),
            self.refresh_token.as_deref(),
            Some(&self.scopes),
        ])
    }

    pub fn expires_at(&self) -> i64 {
        match self.expires_in {
            Some(seconds) => self.created_at.saturating_add(seconds),
            None => NEVER_EXPIRES,
        }
    }
}

impl SourceUser {
    /// GitLab's `state` at Doorward: `active` and `blocked_pending_approval` as they are,
    /// every other state (blocked, ldap_blocked, deactivated, banned...) blocked.
    pub fn doorward_state(&self) -> &'static str {
        match self.state.as_deref().unwrap_or(STATE_ACTIVE) {
            STATE_ACTIVE => STATE_ACTIVE,
            STATE_PENDING_APPROVAL => STATE_PENDING_APPROVAL,
            _ => STATE_BLOCKED,
        }
    }
}

/// Why a source user cannot be brought in (the `reason` of a conflict).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictReason {
    /// Doorward has the username under another id.
    Username,
    /// Doorward has the id under another username.
    Id,
    /// The e-mail address belongs to another Doorward account.
    Email,
}

impl ConflictReason {
    /// The report's words for it.
    pub fn describe(self) -> &'static str {
        match self {
            ConflictReason::Username => "the username belongs to another Doorward user",
            ConflictReason::Id => "the id is, or was, another Doorward user's",
            ConflictReason::Email => "the e-mail address belongs to another Doorward user",
        }
    }
}

/// What Doorward already holds that bears on one source user.
#[derive(Clone, Debug, Default)]
pub struct TargetMatches {
    /// The username of the Doorward user with the source id.
    pub username_of_id: Option<String>,
    /// The id of the Doorward user with the source username (case-insensitive).
    pub id_of_username: Option<i64>,
    /// The id of the Doorward user with the source e-mail address (case-insensitive).
    pub id_of_email: Option<i64>,
    /// The source id was handed out here before to a user since deleted: taking it again
    /// would give a new person that user's OIDC `sub`.
    pub id_retired: bool,
}

/// What becomes of a source user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserDecision {
    Import,
    /// The same id and username are already here: that account, left as it is.
    Existing,
    Conflict(ConflictReason),
}

/// The rule: the same id and username (case-insensitive) is the same user; the
/// username, the id or the e-mail taken by another account is a conflict.
pub fn decide_user(user: &SourceUser, target: &TargetMatches) -> UserDecision {
    if let Some(username) = &target.username_of_id {
        return if username.eq_ignore_ascii_case(&user.username) {
            UserDecision::Existing
        } else {
            UserDecision::Conflict(ConflictReason::Id)
        };
    }
    if target.id_retired {
        return UserDecision::Conflict(ConflictReason::Id);
    }
    if target.id_of_username.is_some() {
        return UserDecision::Conflict(ConflictReason::Username);
    }
    if target.id_of_email.is_some() {
        return UserDecision::Conflict(ConflictReason::Email);
    }
    UserDecision::Import
}

/// The Doorward owner of a source application: a user's own application when doorkeeper's
/// polymorphic owner is a `User` (or names an id without a type) that is here; otherwise
/// the instance's.
pub fn application_owner(app: &SourceApplication, users_here: &HashSet<i64>) -> Option<i64> {
    let owner = app.owner_id?;
    let is_user = matches!(app.owner_type.as_deref(), None | Some("User"));
    (is_user && users_here.contains(&owner)).then_some(owner)
}

/// The refresh tokens doorkeeper already rotated away: each named by another row's
/// `previous_refresh_token` (the successor of a refresh), in their stored form.
pub fn rotated_refresh_tokens(tokens: &[SourceToken]) -> HashSet<&str> {
    tokens
        .iter()
        .filter_map(|t| t.previous_refresh_token.as_deref())
        .filter(|p| !p.is_empty())
        .collect()
}

/// What becomes of a source access token, before checking that it was imported already.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenDecision {
    /// Import the access token, and its refresh token when `with_refresh`.
    Import {
        with_refresh: bool,
    },
    Skip,
}

/// Revoked rows are skipped; so are rows of users or applications not here (a token
/// without an application, which GitLab's client-less password grant makes, needs its user;
/// one with neither is nobody's). An expired row
/// comes in only for its refresh token, which GitLab lets outlive the access token (spec
/// §2.3), when doorkeeper did not rotate it away.
pub fn decide_token(
    token: &SourceToken,
    owner_here: bool,
    application_here: bool,
    rotated: &HashSet<&str>,
    now: i64,
) -> TokenDecision {
    let owner_ok = token.resource_owner_id.is_none() || owner_here;
    let application_ok = token.application_id.is_none() || application_here;
    let anyones = token.resource_owner_id.is_some() || token.application_id.is_some();
    if token.revoked_at.is_some()
        || !anyones
        || !owner_ok
        || !application_ok
        || token.token.is_empty()
        || !token.is_storable()
    {
        return TokenDecision::Skip;
    }
    let with_refresh = token
        .refresh_token
        .as_deref()
        .is_some_and(|r| !r.is_empty() && !rotated.contains(r));
    if token.expires_at() <= now && !with_refresh {
        return TokenDecision::Skip;
    }
    TokenDecision::Import { with_refresh }
}

/// Found, imported, existing and skipped rows of one table (found is the sum of the rest).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub found: u64,
    pub imported: u64,
    pub existing: u64,
    pub skipped: u64,
}

impl Counts {
    /// Rows only counted (codes, OpenID requests, device grants): all skipped.
    pub fn skipped_all(found: u64) -> Counts {
        Counts {
            found,
            skipped: found,
            ..Counts::default()
        }
    }

    pub fn imported(&mut self) {
        self.found += 1;
        self.imported += 1;
    }

    pub fn existing(&mut self) {
        self.found += 1;
        self.existing += 1;
    }

    pub fn skipped(&mut self) {
        self.found += 1;
        self.skipped += 1;
    }
}

/// One source user left out, as the report lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Conflict {
    pub table: &'static str,
    pub source_id: i64,
    pub username: String,
    pub reason: ConflictReason,
}

/// What an import did (or, in a dry run, would do).
#[derive(Clone, Debug, Default, Serialize)]
pub struct ImportCounts {
    pub users: Counts,
    pub applications: Counts,
    pub access_tokens: Counts,
    pub access_grants: Counts,
    pub openid_requests: Counts,
    pub device_grants: Counts,
    pub conflicts: Vec<Conflict>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: i64, username: &str) -> SourceUser {
        SourceUser {
            id,
            username: username.into(),
            email: format!("{username}@example.com"),
            encrypted_password: String::new(),
            name: None,
            state: None,
            admin: false,
            otp_required_for_login: false,
            confirmed: true,
        }
    }

    fn token(refresh: Option<&str>, previous: Option<&str>) -> SourceToken {
        SourceToken {
            id: 1,
            token: "t".into(),
            refresh_token: refresh.map(str::to_string),
            resource_owner_id: Some(2),
            application_id: Some(1),
            expires_in: Some(7200),
            created_at: 1_000,
            revoked_at: None,
            scopes: "api".into(),
            previous_refresh_token: previous.map(str::to_string),
        }
    }

    #[test]
    fn users_match_by_id_and_username_together_and_conflict_otherwise() {
        let alice = user(2, "Alice");
        let same = TargetMatches {
            username_of_id: Some("alice".into()),
            id_of_username: Some(2),
            id_of_email: Some(2),
            id_retired: true,
        };
        assert_eq!(decide_user(&alice, &same), UserDecision::Existing);
        let id_taken = TargetMatches {
            username_of_id: Some("bob".into()),
            ..TargetMatches::default()
        };
        assert_eq!(
            decide_user(&alice, &id_taken),
            UserDecision::Conflict(ConflictReason::Id)
        );
        let name_taken = TargetMatches {
            id_of_username: Some(9),
            ..TargetMatches::default()
        };
        assert_eq!(
            decide_user(&alice, &name_taken),
            UserDecision::Conflict(ConflictReason::Username)
        );
        let retired = TargetMatches {
            id_retired: true,
            ..TargetMatches::default()
        };
        assert_eq!(
            decide_user(&alice, &retired),
            UserDecision::Conflict(ConflictReason::Id)
        );
        let email_taken = TargetMatches {
            id_of_email: Some(9),
            ..TargetMatches::default()
        };
        assert_eq!(
            decide_user(&alice, &email_taken),
            UserDecision::Conflict(ConflictReason::Email)
        );
        assert_eq!(
            decide_user(&alice, &TargetMatches::default()),
            UserDecision::Import
        );
    }

    #[test]
    fn gitlab_states_map_to_three() {
        let mut u = user(3, "bob");
        for (gitlab, ours) in [
            (None, STATE_ACTIVE),
            (Some("active"), STATE_ACTIVE),
            (Some("blocked_pending_approval"), STATE_PENDING_APPROVAL),
            (Some("blocked"), STATE_BLOCKED),
            (Some("deactivated"), STATE_BLOCKED),
            (Some("banned"), STATE_BLOCKED),
        ] {
            u.state = gitlab.map(str::to_string);
            assert_eq!(u.doorward_state(), ours, "{gitlab:?}");
        }
    }

    #[test]
    fn applications_belong_to_users_here_and_to_the_instance_otherwise() {
        let here: HashSet<i64> = [2].into();
        let mut app = SourceApplication {
            id: 1,
            name: "a".into(),
            uid: "u".into(),
            secret: "s".into(),
            redirect_uri: String::new(),
            scopes: String::new(),
            confidential: true,
            trusted: false,
            owner_id: Some(2),
            owner_type: Some("User".into()),
        };
        assert_eq!(application_owner(&app, &here), Some(2));
        app.owner_type = None;
        assert_eq!(application_owner(&app, &here), Some(2));
        app.owner_type = Some("Namespace".into());
        assert_eq!(application_owner(&app, &here), None);
        app.owner_type = Some("User".into());
        app.owner_id = Some(40);
        assert_eq!(application_owner(&app, &here), None, "owner not imported");
        app.owner_id = None;
        assert_eq!(application_owner(&app, &here), None);
    }

    #[test]
    fn rotated_revoked_expired_and_orphaned_tokens() {
        let a = token(Some("ra"), None);
        let b = token(Some("rb"), Some("ra"));
        let all = [a.clone(), b.clone()];
        let rotated = rotated_refresh_tokens(&all);
        let now = 2_000;
        assert_eq!(
            decide_token(&a, true, true, &rotated, now),
            TokenDecision::Import {
                with_refresh: false
            },
            "A's refresh token was rotated into B"
        );
        assert_eq!(
            decide_token(&b, true, true, &rotated, now),
            TokenDecision::Import { with_refresh: true }
        );
        assert_eq!(
            decide_token(&b, false, true, &rotated, now),
            TokenDecision::Skip
        );
        assert_eq!(
            decide_token(&b, true, false, &rotated, now),
            TokenDecision::Skip
        );
        let mut revoked = b.clone();
        revoked.revoked_at = Some(1_500);
        assert_eq!(
            decide_token(&revoked, true, true, &rotated, now),
            TokenDecision::Skip
        );
        let late = 1_000 + 7_200;
        assert_eq!(
            decide_token(&a, true, true, &rotated, late),
            TokenDecision::Skip,
            "expired, and its refresh token was used"
        );
        assert_eq!(
            decide_token(&b, true, true, &rotated, late),
            TokenDecision::Import { with_refresh: true },
            "expired, but its refresh token still refreshes"
        );
        let mut clientless = b.clone();
        clientless.application_id = None;
        assert_eq!(
            decide_token(&clientless, true, false, &rotated, now),
            TokenDecision::Import { with_refresh: true },
            "GitLab's client-less password grant"
        );
        clientless.resource_owner_id = None;
        assert_eq!(
            decide_token(&clientless, false, false, &rotated, now),
            TokenDecision::Skip,
            "nobody's"
        );
        let mut forever = a.clone();
        forever.expires_in = None;
        assert_eq!(forever.expires_at(), NEVER_EXPIRES);
    }
}
