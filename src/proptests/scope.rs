//! Scope strings (`domain::scope::ScopeSet`, and the authorization request's
//! `requested_scopes`): any text parses or is refused without a panic; a set's text form is
//! canonical and parses back to the same set.

use proptest::prelude::*;

use super::{config, hostile_string};
use crate::domain::application::Application;
use crate::domain::scope::{CATALOGUE, ScopeError, ScopeSet};
use crate::oauth::authorization_request::requested_scopes;
use crate::oauth::error::ErrorCode;

fn catalogue_name() -> impl Strategy<Value = &'static str> {
    prop::sample::select(CATALOGUE.iter().map(|s| s.name).collect::<Vec<_>>())
}

fn separator() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![" ", ",", "\n", "\r\n", "\t", "  ", " , "])
}

/// Names joined by random separators, with separators before and after.
fn joined(names: &[&str], seps: &[&str]) -> String {
    let mut text = String::from(seps[0]);
    for (i, name) in names.iter().enumerate() {
        text.push_str(name);
        text.push_str(seps[(i + 1) % seps.len()]);
    }
    text
}

fn application(scopes: &str) -> Application {
    Application {
        id: 1,
        uid: "client".into(),
        secret_hash: Vec::new(),
        name: "App".into(),
        redirect_uri: "https://app.example/cb".into(),
        scopes: ScopeSet::from_stored(scopes),
        confidential: true,
        trusted: false,
        require_pkce: false,
        require_par: false,
        owner_id: None,
        group_id: None,
        backchannel_logout_uri: None,
        backchannel_logout_session_required: false,
        registration_token_hash: None,
        token_endpoint_auth_method: None,
        jwks: None,
        jwks_uri: None,
        created_at: 0,
        updated_at: 0,
    }
}

proptest! {
    #![proptest_config(config(512))]

    /// Arbitrary text: no panic; a parsed set holds only catalogue scopes, and its text
    /// form parses back to itself.
    #[test]
    fn any_text_parses_or_is_refused(text in prop_oneof![
        hostile_string(40),
        (prop::collection::vec(prop_oneof![
            catalogue_name().prop_map(str::to_string),
            hostile_string(6),
            catalogue_name().prop_map(str::to_uppercase),
        ], 0..5), prop::collection::vec(separator(), 1..4))
            .prop_map(|(names, seps)| {
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                joined(&names, &seps)
            }),
    ]) {
        match ScopeSet::parse(&text) {
            Ok(set) => {
                for scope in set.iter() {
                    prop_assert!(CATALOGUE.contains(scope));
                }
                let shown = set.to_string();
                prop_assert_eq!(ScopeSet::parse(&shown).unwrap(), set.clone());
                prop_assert_eq!(ScopeSet::parse_non_empty(&text).is_ok(), !set.is_empty());
            }
            Err(ScopeError::Unknown(name)) => {
                prop_assert!(!name.is_empty());
                prop_assert!(CATALOGUE.iter().all(|s| s.name != name));
            }
            Err(ScopeError::Empty) => prop_assert!(false, "parse never reports Empty"),
        }
    }

    /// Catalogue names in any order, repeated, with any separators: the set of exactly those
    /// names, shown space-separated in catalogue order without repeats.
    #[test]
    fn display_is_canonical_and_reparses(
        names in prop::collection::vec(catalogue_name(), 0..10),
        seps in prop::collection::vec(separator(), 1..4),
    ) {
        let set = ScopeSet::parse(&joined(&names, &seps)).unwrap();
        for name in &names {
            prop_assert!(set.contains(name));
        }
        let expected: Vec<&str> = CATALOGUE
            .iter()
            .map(|s| s.name)
            .filter(|n| names.contains(n))
            .collect();
        prop_assert_eq!(set.names(), expected.clone());
        prop_assert_eq!(set.to_string(), expected.join(" "));
        prop_assert_eq!(ScopeSet::parse(&set.to_string()).unwrap(), set.clone());
        prop_assert_eq!(ScopeSet::from_names(names.iter().copied()).unwrap(), set);
    }

    /// Inclusion is set inclusion.
    #[test]
    fn subsets_are_set_inclusion(
        a in prop::collection::vec(catalogue_name(), 0..6),
        b in prop::collection::vec(catalogue_name(), 0..6),
    ) {
        let sa = ScopeSet::from_names(a.iter().copied()).unwrap();
        let sb = ScopeSet::from_names(b.iter().copied()).unwrap();
        let union = ScopeSet::from_names(a.iter().chain(b.iter()).copied()).unwrap();
        prop_assert!(sa.is_subset_of(&union) && sb.is_subset_of(&union));
        prop_assert!(sa.is_subset_of(&sa));
        prop_assert_eq!(sa.is_subset_of(&sb), a.iter().all(|n| b.contains(n)));
        prop_assert_eq!(sa.contains_any(&b), b.iter().any(|n| a.contains(n)));
    }

    /// The authorization request's `scope`: any text gives a non-empty subset of the
    /// application's scopes or `invalid_scope`, never a panic; space-separated registered
    /// names are granted as asked.
    #[test]
    fn requested_scopes_stay_within_the_application(
        registered in prop::collection::vec(catalogue_name(), 1..6),
        requested in proptest::option::of(prop_oneof![
            hostile_string(30),
            prop::collection::vec(catalogue_name(), 0..5).prop_map(|n| n.join(" ")),
        ]),
        asked in prop::collection::vec(any::<prop::sample::Index>(), 1..4),
    ) {
        let app = application(&registered.join(" "));
        let allowed = app.scopes.clone();
        match requested_scopes(&app, requested.as_deref()) {
            Ok(granted) => {
                prop_assert!(!granted.is_empty());
                prop_assert!(granted.is_subset_of(&allowed));
            }
            Err(e) => prop_assert_eq!(e.code, ErrorCode::InvalidScope),
        }
        let asked: Vec<&str> = asked.iter().map(|i| *i.get(&registered)).collect();
        let granted = requested_scopes(&app, Some(&asked.join(" "))).unwrap();
        prop_assert_eq!(granted, ScopeSet::from_names(asked.iter().copied()).unwrap());
        // Tabs, line feeds and commas are not OAuth's separator (RFC 6749 §3.3).
        let malformed = asked.join(",\t");
        if asked.len() > 1 {
            prop_assert_eq!(requested_scopes(&app, Some(&malformed)).unwrap_err().code, ErrorCode::InvalidScope);
        }
    }
}
