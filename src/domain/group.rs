//! GitLab's groups and memberships: what a valid group is, the access levels, and who may
//! do what (GitLab's `GroupPolicy` for the parts Doorward has).

use super::user::{FieldErrors, validate_text};

/// GitLab's limit on nesting: a top-level group has depth 1, its deepest descendant 20.
pub const MAX_DEPTH: i64 = 20;

/// Paths a top-level group cannot take: they would shadow Doorward's (and GitLab's) own
/// routes under the instance root (GitLab's `TOP_LEVEL_ROUTES`, those that apply here).
pub const RESERVED_TOP_LEVEL: &[&str] = &[
    "-",
    ".well-known",
    "404.html",
    "422.html",
    "500.html",
    "503.html",
    "admin",
    "api",
    "apple-touch-icon.png",
    "assets",
    "dashboard",
    "explore",
    "favicon.ico",
    "favicon.png",
    "files",
    "groups",
    "health_check",
    "help",
    "import",
    "jwt",
    "login",
    "new",
    "oauth",
    "profile",
    "projects",
    "public",
    "robots.txt",
    "s",
    "search",
    "sitemap",
    "sitemap.xml",
    "snippets",
    "unsubscribes",
    "uploads",
    "user",
    "users",
    "v2",
];

/// Paths no group can take at any depth (GitLab's `GROUP_ROUTES`: they follow a group's
/// path in its own URLs).
pub const RESERVED_ANY_LEVEL: &[&str] = &["-"];

/// A group as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub id: i64,
    pub parent_id: Option<i64>,
    pub name: String,
    pub path: String,
    /// `parent/child`: the paths from the top-level group down, joined by `/`.
    pub full_path: String,
    pub description: String,
    pub visibility: Visibility,
    /// 1 for a top-level group.
    pub depth: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// GitLab's visibility levels, most private first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Visibility {
    Private,
    Internal,
    Public,
}

impl Visibility {
    pub fn parse(text: &str) -> Option<Visibility> {
        match text {
            "private" => Some(Visibility::Private),
            "internal" => Some(Visibility::Internal),
            "public" => Some(Visibility::Public),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Private => "private",
            Visibility::Internal => "internal",
            Visibility::Public => "public",
        }
    }
}

/// GitLab's access levels (`Gitlab::Access`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccessLevel(i64);

impl AccessLevel {
    pub const MINIMAL_ACCESS: AccessLevel = AccessLevel(5);
    pub const GUEST: AccessLevel = AccessLevel(10);
    pub const REPORTER: AccessLevel = AccessLevel(20);
    pub const DEVELOPER: AccessLevel = AccessLevel(30);
    pub const MAINTAINER: AccessLevel = AccessLevel(40);
    pub const OWNER: AccessLevel = AccessLevel(50);

    /// One of GitLab's six levels; anything else is refused.
    pub fn new(level: i64) -> Option<AccessLevel> {
        matches!(level, 5 | 10 | 20 | 30 | 40 | 50).then_some(AccessLevel(level))
    }

    pub fn value(self) -> i64 {
        self.0
    }

    /// The English name GitLab shows.
    pub fn name(self) -> &'static str {
        match self.0 {
            5 => "Minimal Access",
            10 => "Guest",
            20 => "Reporter",
            30 => "Developer",
            40 => "Maintainer",
            _ => "Owner",
        }
    }

    pub const ALL: [AccessLevel; 6] = [
        AccessLevel::MINIMAL_ACCESS,
        AccessLevel::GUEST,
        AccessLevel::REPORTER,
        AccessLevel::DEVELOPER,
        AccessLevel::MAINTAINER,
        AccessLevel::OWNER,
    ];
}

/// A membership as read: direct, or inherited from an ancestor (`source_group_id`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    pub group_id: i64,
    pub user_id: i64,
    pub access_level: AccessLevel,
    /// Unix seconds of 00:00 UTC of the expiry date: expired from then on.
    pub expires_at: Option<i64>,
    pub created_at: i64,
}

/// The validated fields of a group to create or change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupSettings {
    pub name: String,
    pub path: String,
    pub description: String,
    pub visibility: Visibility,
}

impl GroupSettings {
    /// Checks the fields on their own; where the group sits (reserved top-level names,
    /// depth, uniqueness, visibility against the parent) is [`check_placement`]'s.
    pub fn validate(
        name: &str,
        path: &str,
        description: &str,
        visibility: Visibility,
    ) -> Result<GroupSettings, FieldErrors> {
        let mut errors = FieldErrors::default();
        validate_text("name", name, true, &mut errors);
        validate_path(path, &mut errors);
        if description.chars().count() > 500 {
            errors.add("description", "is too long (maximum is 500 characters)");
        } else if description
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            errors.add("description", "cannot contain control characters");
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(GroupSettings {
            name: name.trim().to_string(),
            path: path.to_string(),
            description: description.trim().to_string(),
            visibility,
        })
    }
}

/// GitLab's namespace path rule (`Gitlab::PathRegex.namespace_format_regex`): letters,
/// digits, `_`, `-` and `.`; starting with a letter, digit or `_`; not ending in `.` or `-`,
/// nor in `.git` or `.atom`; at most 255 characters.
pub fn validate_path(path: &str, errors: &mut FieldErrors) {
    if path.is_empty() {
        errors.add("path", "can't be blank");
        return;
    }
    if path.chars().count() > 255 {
        errors.add("path", "is too long (maximum is 255 characters)");
        return;
    }
    let lower = path.to_ascii_lowercase();
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    if !path.chars().all(allowed)
        || path.starts_with(['-', '.'])
        || path.ends_with(['.', '-'])
        || lower.ends_with(".git")
        || lower.ends_with(".atom")
    {
        errors.add(
            "path",
            "can contain only letters, digits, '_', '-' and '.'. Cannot start with '-', end in '.', '.git' or '.atom'.",
        );
    }
}

/// Where a group with `path` may sit under `parent` (`None`: top level): reserved names,
/// GitLab's nesting limit, and a visibility no wider than the parent's.
pub fn check_placement(
    path: &str,
    visibility: Visibility,
    parent: Option<&Group>,
    subtree_height: i64,
) -> Result<(), FieldErrors> {
    let mut errors = FieldErrors::default();
    let lower = path.to_ascii_lowercase();
    let reserved = RESERVED_ANY_LEVEL.contains(&lower.as_str())
        || (parent.is_none() && RESERVED_TOP_LEVEL.contains(&lower.as_str()));
    if reserved {
        errors.add("path", format!("{path} is a reserved name"));
    }
    let depth = parent.map_or(1, |p| p.depth + 1);
    if depth + subtree_height > MAX_DEPTH {
        errors.add(
            "parent_id",
            format!("has too deep level of nesting (maximum is {MAX_DEPTH})"),
        );
    }
    if let Some(parent) = parent
        && visibility > parent.visibility
    {
        errors.add(
            "visibility_level",
            format!(
                "{} is not allowed since the parent group has a {} visibility.",
                visibility.as_str(),
                parent.visibility.as_str()
            ),
        );
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// What a user may do to a group, from their effective level there (the highest of their
/// unexpired direct and inherited memberships) and whether they are an administrator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Role {
    pub level: Option<AccessLevel>,
    pub admin: bool,
}

impl Role {
    /// GitLab: owners (and administrators) edit, transfer and delete a group and create
    /// its subgroups.
    pub fn can_admin_group(self) -> bool {
        self.admin || self.level >= Some(AccessLevel::OWNER)
    }

    /// GitLab: maintainers and owners manage members.
    pub fn can_manage_members(self) -> bool {
        self.admin || self.level >= Some(AccessLevel::MAINTAINER)
    }

    /// Whether this role may give `to` (or take away `from`) a membership: owners and
    /// administrators any level; maintainers up to Maintainer, and never an Owner's.
    pub fn can_set_level(self, from: Option<AccessLevel>, to: Option<AccessLevel>) -> bool {
        if self.admin || self.level >= Some(AccessLevel::OWNER) {
            return true;
        }
        self.level >= Some(AccessLevel::MAINTAINER)
            && from < Some(AccessLevel::OWNER)
            && to < Some(AccessLevel::OWNER)
    }

    pub fn is_member(self) -> bool {
        self.level.is_some()
    }
}

/// Whether a group is visible: public to everyone, internal to signed-in users, private
/// to its members (direct or inherited) and administrators (GitLab's visibility levels).
pub fn can_see(visibility: Visibility, signed_in: bool, role: Role) -> bool {
    match visibility {
        Visibility::Public => true,
        Visibility::Internal => signed_in,
        Visibility::Private => role.admin || role.is_member(),
    }
}

/// `YYYY-MM-DD` into the Unix time of 00:00 UTC that day (a membership is expired from
/// then on); dates before `today` are refused, as GitLab does ("cannot be a date in the
/// past"), today is accepted.
pub fn parse_expiry(text: &str, now: i64) -> Result<i64, String> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(text, &format)
        .map_err(|_| "expires_at must be a date in the form YYYY-MM-DD".to_string())?;
    let at = date.midnight().assume_utc().unix_timestamp();
    let today = time::OffsetDateTime::from_unix_timestamp(now)
        .map_err(|_| "the clock is out of range".to_string())?
        .date()
        .midnight()
        .assume_utc()
        .unix_timestamp();
    if at < today {
        return Err("expires_at cannot be a date in the past".into());
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(depth: i64, visibility: Visibility) -> Group {
        Group {
            id: 1,
            parent_id: None,
            name: "Acme".into(),
            path: "acme".into(),
            full_path: "acme".into(),
            description: String::new(),
            visibility,
            depth,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn paths_follow_gitlabs_rule() {
        for ok in ["acme", "a", "my_group", "a.b-c", "_x", "9lives"] {
            let mut e = FieldErrors::default();
            validate_path(ok, &mut e);
            assert!(e.is_empty(), "{ok}");
        }
        for bad in [
            "", "-a", ".a", "a.", "a-", "a.git", "A.ATOM", "a/b", "a b", "ü", "a<b",
        ] {
            let mut e = FieldErrors::default();
            validate_path(bad, &mut e);
            assert!(!e.is_empty(), "{bad:?}");
        }
    }

    #[test]
    fn reserved_names_depth_and_visibility_depend_on_the_parent() {
        assert!(check_placement("api", Visibility::Private, None, 0).is_err());
        assert!(check_placement("API", Visibility::Private, None, 0).is_err());
        let top = group(1, Visibility::Internal);
        assert!(check_placement("api", Visibility::Private, Some(&top), 0).is_ok());
        assert!(check_placement("-", Visibility::Private, Some(&top), 0).is_err());
        assert!(check_placement("x", Visibility::Public, Some(&top), 0).is_err());
        assert!(check_placement("x", Visibility::Internal, Some(&top), 0).is_ok());
        let deep = group(19, Visibility::Private);
        assert!(check_placement("x", Visibility::Private, Some(&deep), 0).is_ok());
        assert!(check_placement("x", Visibility::Private, Some(&deep), 1).is_err());
        let deepest = group(20, Visibility::Private);
        assert!(check_placement("x", Visibility::Private, Some(&deepest), 0).is_err());
    }

    #[test]
    fn maintainers_manage_members_below_owner_only() {
        let maintainer = Role {
            level: Some(AccessLevel::MAINTAINER),
            admin: false,
        };
        let m = Some(AccessLevel::MAINTAINER);
        let o = Some(AccessLevel::OWNER);
        assert!(maintainer.can_set_level(None, m));
        assert!(!maintainer.can_set_level(None, o));
        assert!(!maintainer.can_set_level(o, None));
        assert!(!maintainer.can_admin_group());
        let developer = Role {
            level: Some(AccessLevel::DEVELOPER),
            admin: false,
        };
        assert!(!developer.can_manage_members());
        assert!(!developer.can_set_level(None, Some(AccessLevel::GUEST)));
        let admin = Role {
            level: None,
            admin: true,
        };
        assert!(admin.can_set_level(o, None) && admin.can_admin_group());
    }

    #[test]
    fn levels_and_expiry_dates() {
        assert!(AccessLevel::new(15).is_none() && AccessLevel::new(60).is_none());
        assert_eq!(AccessLevel::new(40), Some(AccessLevel::MAINTAINER));
        // 2026-12-06 12:00 UTC.
        let now = 1_796_558_400;
        assert_eq!(
            crate::domain::clock::date(parse_expiry("2026-12-06", now).unwrap()),
            "2026-12-06"
        );
        assert!(parse_expiry("2026-12-05", now).is_err());
        assert!(parse_expiry("06/12/2026", now).is_err());
        assert_eq!(parse_expiry("2026-12-07", now).unwrap() - now, 12 * 3600);
    }

    #[test]
    fn visibility_decides_who_sees_a_group() {
        let outsider = Role {
            level: None,
            admin: false,
        };
        assert!(can_see(Visibility::Public, false, outsider));
        assert!(!can_see(Visibility::Internal, false, outsider));
        assert!(can_see(Visibility::Internal, true, outsider));
        assert!(!can_see(Visibility::Private, true, outsider));
    }
}
