//! Group input (`domain::group`, `groups`): paths, settings, visibility, access levels and
//! membership expiry dates parse or are refused without a panic, and what is accepted
//! keeps GitLab's rules.

use proptest::prelude::*;

use super::{config, hostile_string};
use crate::domain::group::{AccessLevel, GroupSettings, Visibility, parse_expiry, validate_path};
use crate::domain::user::FieldErrors;

/// GitLab's namespace path rule, restated: what `validate_path` must accept exactly.
fn gitlab_path(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    (1..=255).contains(&path.chars().count())
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !path.starts_with(['-', '.'])
        && !path.ends_with(['-', '.'])
        && !lower.ends_with(".git")
        && !lower.ends_with(".atom")
}

fn path_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9_.-]{0,12}",
        "[A-Za-z0-9_][A-Za-z0-9_.-]{0,10}(\\.git|\\.atom|\\.GIT)?",
        hostile_string(12),
        "[a-z]{250,260}",
    ]
}

proptest! {
    #![proptest_config(config(512))]

    /// Any path: accepted exactly when GitLab's rule accepts it.
    #[test]
    fn paths_follow_gitlabs_rule(path in path_like()) {
        let mut errors = FieldErrors::default();
        validate_path(&path, &mut errors);
        prop_assert_eq!(errors.is_empty(), gitlab_path(&path), "{:?}", path);
    }

    /// Any settings: no panic; accepted ones hold a valid path, a description of at most 500
    /// characters without controls (line breaks and tabs aside), and a trimmed name.
    #[test]
    fn settings_are_checked(
        name in hostile_string(20),
        path in path_like(),
        description in prop_oneof![hostile_string(40), "[a-z ]{495,505}"],
        visibility in prop::sample::select(vec![Visibility::Private, Visibility::Internal, Visibility::Public]),
    ) {
        if let Ok(settings) = GroupSettings::validate(&name, &path, &description, visibility) {
            prop_assert!(gitlab_path(&settings.path));
            prop_assert_eq!(settings.name.as_str(), name.trim());
            prop_assert!(!settings.name.is_empty());
            prop_assert!(description.chars().count() <= 500);
            prop_assert!(!description
                .chars()
                .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')));
        }
    }

    /// Visibility and access levels: only GitLab's names and numbers, round-tripping.
    #[test]
    fn visibility_and_levels(text in prop_oneof![
        hostile_string(10),
        prop::sample::select(vec!["private", "internal", "public", "Private", "PUBLIC", " public"]).prop_map(str::to_string),
    ], level in prop_oneof![any::<i64>(), prop::sample::select(vec![0i64, 5, 10, 20, 30, 40, 50, 60])]) {
        match Visibility::parse(&text) {
            Some(v) => prop_assert_eq!(v.as_str(), text.as_str()),
            None => prop_assert!(!matches!(text.as_str(), "private" | "internal" | "public")),
        }
        match AccessLevel::new(level) {
            Some(l) => {
                prop_assert_eq!(l.value(), level);
                prop_assert!(!l.name().is_empty());
            }
            None => prop_assert!(![5, 10, 20, 30, 40, 50].contains(&level)),
        }
        prop_assert_eq!(crate::groups::parse_level(level).is_ok(), AccessLevel::new(level).is_some());
    }

    /// Expiry dates: any text at any time gives the midnight of a day no earlier than today,
    /// or a refusal; a date from today on, written `YYYY-MM-DD`, gives its own midnight.
    #[test]
    fn expiry_dates(
        text in prop_oneof![hostile_string(12), "[0-9]{4}-[0-9]{2}-[0-9]{2}", "[0-9-]{8,12}"],
        now in prop_oneof![any::<i64>(), 0i64..4_102_444_800],
        days_ahead in 0i64..3650,
        today in 0i64..4_000_000_000,
    ) {
        if let Ok(at) = parse_expiry(&text, now) {
            prop_assert_eq!(at.rem_euclid(86_400), 0);
            prop_assert!(at >= now - now.rem_euclid(86_400));
        }
        let _ = crate::groups::parse_expiry(Some(&text), now);
        let midnight = today - today.rem_euclid(86_400) + days_ahead * 86_400;
        let date = time::OffsetDateTime::from_unix_timestamp(midnight).unwrap().date();
        let written = format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day());
        prop_assert_eq!(parse_expiry(&written, today), Ok(midnight));
    }
}
