//! Users: what a valid username, email and name are, and what a user may do.

/// A user account as stored. `password_hash` is an Argon2id PHC string.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub is_admin: bool,
    pub state: String,
    pub public_email: String,
    pub website_url: String,
    pub bio: String,
    pub location: String,
    pub organization: String,
    pub job_title: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_sign_in_at: Option<i64>,
    pub current_sign_in_at: Option<i64>,
    /// Set while the account has a confirmed TOTP authenticator.
    pub two_factor_enabled: bool,
    /// When `email` was confirmed (the link in the confirmation mail followed, or an
    /// administrator vouched for it); `None` until then. `email_verified` is this being set.
    pub confirmed_at: Option<i64>,
    /// A new address waiting for its confirmation; `email` stays in use until then.
    pub unconfirmed_email: Option<String>,
}

impl std::fmt::Debug for User {
    // The password hash stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("state", &self.state)
            .field("is_admin", &self.is_admin)
            .finish_non_exhaustive()
    }
}

pub const STATE_ACTIVE: &str = "active";
pub const STATE_BLOCKED: &str = "blocked";
/// GitLab's state of a sign-up waiting for an administrator (`DOORWARD_SIGNUP=approval`).
pub const STATE_PENDING_APPROVAL: &str = "blocked_pending_approval";

impl User {
    /// An active, non-admin account with only the required fields set, for unit tests.
    #[cfg(test)]
    pub(crate) fn example() -> User {
        User {
            id: 42,
            username: "ada".into(),
            email: "ada@example.com".into(),
            name: "Ada Lovelace".into(),
            password_hash: String::new(),
            is_admin: false,
            state: "active".into(),
            public_email: String::new(),
            website_url: String::new(),
            bio: String::new(),
            location: String::new(),
            organization: String::new(),
            job_title: String::new(),
            created_at: 0,
            updated_at: 0,
            last_sign_in_at: None,
            current_sign_in_at: None,
            two_factor_enabled: false,
            confirmed_at: None,
            unconfirmed_email: None,
        }
    }

    pub fn is_active(&self) -> bool {
        self.state == STATE_ACTIVE
    }
}

/// The profile fields a user (or an admin) may set besides the identity fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Profile {
    pub public_email: String,
    pub website_url: String,
    pub bio: String,
    pub location: String,
    pub organization: String,
    pub job_title: String,
}

/// A validated new account, ready to store once its password is hashed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewUser {
    pub username: String,
    pub email: String,
    pub name: String,
    pub is_admin: bool,
    pub profile: Profile,
    /// The address counts as confirmed from the start (the CLI, the first root, an
    /// administrator's `skip_confirmation`); otherwise a confirmation mail goes out.
    pub confirmed: bool,
    /// [`STATE_ACTIVE`], or [`STATE_PENDING_APPROVAL`] for a sign-up awaiting approval.
    pub state: &'static str,
}

/// Field-level validation errors, named after the field (GitLab's error JSON shape).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FieldErrors(pub Vec<(&'static str, String)>);

impl FieldErrors {
    pub fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.push((field, message.into()));
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// `Username is too short` style sentences, for pages and the CLI.
    pub fn sentences(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|(field, msg)| {
                let mut f = field.replace('_', " ");
                if let Some(first) = f.get_mut(0..1) {
                    first.make_ascii_uppercase();
                }
                format!("{f} {msg}")
            })
            .collect()
    }
}

const MAX_FIELD_LEN: usize = 255;

/// GitLab's username rule: letters, digits, `_`, `-` and `.`; it must not start with `-`,
/// end with `.` or `-`, or end in `.git` / `.atom`; 2 to 255 characters.
pub fn validate_username(username: &str, errors: &mut FieldErrors) {
    let len = username.chars().count();
    if username.is_empty() {
        errors.add("username", "can't be blank");
        return;
    }
    if len < 2 {
        errors.add("username", "is too short (minimum is 2 characters)");
    } else if len > MAX_FIELD_LEN {
        errors.add("username", "is too long (maximum is 255 characters)");
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    let lower = username.to_ascii_lowercase();
    if !username.chars().all(allowed)
        || username.starts_with('-')
        || username.ends_with(['.', '-'])
        || lower.ends_with(".git")
        || lower.ends_with(".atom")
    {
        errors.add(
            "username",
            "can contain only letters, digits, '_', '-' and '.'. Cannot start with '-' or end in '.', '.git' or '.atom'.",
        );
    }
}

/// A practical email check: one `@`, a non-empty local part, a dotted domain, no spaces or
/// control characters. Deliverability is not Doorward's concern.
pub fn validate_email(field: &'static str, email: &str, errors: &mut FieldErrors) {
    if email.is_empty() {
        errors.add(field, "can't be blank");
        return;
    }
    let valid = email.len() <= MAX_FIELD_LEN
        && !email
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"'))
        && match email.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            }
            None => false,
        }
        // Mail must be able to reach it: the mailer's own parser agrees (RFC 5321 syntax).
        && email.parse::<lettre::Address>().is_ok();
    if !valid {
        errors.add(field, "is invalid");
    }
}

/// Free-text fields: bounded length, no control characters, no markup. Output is escaped
/// anyway; refusing `<` and `>` keeps names plain text wherever other systems show them.
pub fn validate_text(field: &'static str, value: &str, required: bool, errors: &mut FieldErrors) {
    if value.trim().is_empty() {
        if required {
            errors.add(field, "can't be blank");
        }
        return;
    }
    if value.chars().count() > MAX_FIELD_LEN {
        errors.add(field, "is too long (maximum is 255 characters)");
    } else if value.chars().any(|c| c.is_control()) {
        errors.add(field, "cannot contain control characters");
    } else if value.contains(['<', '>']) {
        errors.add(field, "cannot contain HTML tags");
    }
}

/// A website must be an http(s) URL, so it is safe to render as a link.
pub fn validate_website(value: &str, errors: &mut FieldErrors) {
    if value.is_empty() {
        return;
    }
    let ok = url::Url::parse(value).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
    if !ok || value.len() > MAX_FIELD_LEN {
        errors.add("website_url", "must be an http or https URL");
    }
}

/// Validates every field of a new account.
pub fn validate_new_user(user: &NewUser) -> FieldErrors {
    let mut errors = FieldErrors::default();
    validate_username(&user.username, &mut errors);
    validate_email("email", &user.email, &mut errors);
    validate_text("name", &user.name, true, &mut errors);
    validate_profile(&user.profile, &mut errors);
    errors
}

pub fn validate_profile(profile: &Profile, errors: &mut FieldErrors) {
    if !profile.public_email.is_empty() {
        validate_email("public_email", &profile.public_email, errors);
    }
    validate_website(&profile.website_url, errors);
    validate_text("bio", &profile.bio, false, errors);
    validate_text("location", &profile.location, false, errors);
    validate_text("organization", &profile.organization, false, errors);
    validate_text("job_title", &profile.job_title, false, errors);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn username_ok(u: &str) -> bool {
        let mut e = FieldErrors::default();
        validate_username(u, &mut e);
        e.is_empty()
    }

    #[test]
    fn usernames_follow_gitlab_rules() {
        for ok in ["root", "a.b", "alice_01", "x-y", "ab"] {
            assert!(username_ok(ok), "{ok}");
        }
        for bad in [
            "", "a", "-lead", "trail.", "trail-", "repo.git", "x.atom", "sp ace", "a'b", "<b>",
            "é1",
        ] {
            assert!(!username_ok(bad), "{bad}");
        }
    }

    #[test]
    fn emails() {
        let check = |e: &str| {
            let mut errs = FieldErrors::default();
            validate_email("email", e, &mut errs);
            errs.is_empty()
        };
        assert!(check("a@example.com"));
        for bad in [
            "",
            "a",
            "a@b",
            "@b.com",
            "a@@b.com",
            "a b@c.com",
            "a@.com",
            "<a@b.com>",
        ] {
            assert!(!check(bad), "{bad}");
        }
    }

    #[test]
    fn names_reject_markup_and_control_characters() {
        let check = |n: &str| {
            let mut errs = FieldErrors::default();
            validate_text("name", n, true, &mut errs);
            errs.sentences()
        };
        assert!(check("Zoë O'Brien; DROP TABLE users;--").is_empty());
        assert_eq!(check("<script>"), vec!["Name cannot contain HTML tags"]);
        assert_eq!(
            check("a\u{0}b"),
            vec!["Name cannot contain control characters"]
        );
        assert_eq!(check(" "), vec!["Name can't be blank"]);
    }
}
