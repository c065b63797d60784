//! PKCE (`domain::pkce`, RFC 7636): a verifier answers its own challenge and no other, under
//! either method; malformed input never verifies and never panics.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::prelude::*;
use sha2::{Digest, Sha256};

use super::{config, hostile_string};
use crate::domain::pkce::{Method, is_well_formed, verify};

/// A well-formed verifier: 43 to 128 characters of the unreserved set (§4.1).
fn verifier() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._~-]{43,128}"
}

/// The S256 challenge of `verifier`, computed here independently of the crate (§4.2).
fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A character a verifier may not hold: ASCII outside the unreserved set, or not ASCII.
fn outside_the_set() -> impl Strategy<Value = char> {
    prop_oneof![
        prop::sample::select(
            " !\"#$%&'()*+,/:;<=>?@[\\]^`{|}\0\t\n\u{7f}"
                .chars()
                .collect::<Vec<_>>()
        ),
        proptest::char::range('\u{80}', '\u{10ffff}'),
    ]
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![Just(Method::Plain), Just(Method::S256)]
}

proptest! {
    #![proptest_config(config(256))]

    /// A verifier answers its own challenge under S256 and plain, and its S256 challenge is
    /// itself well formed (43 characters).
    #[test]
    fn a_verifier_answers_its_own_challenge(v in verifier()) {
        prop_assert!(is_well_formed(&v));
        let challenge = s256(&v);
        prop_assert_eq!(challenge.len(), 43);
        prop_assert!(is_well_formed(&challenge));
        prop_assert!(verify(Method::S256, &challenge, &v));
        prop_assert!(verify(Method::Plain, &v, &v));
        // Methods are not interchangeable.
        prop_assert!(!verify(Method::Plain, &challenge, &v));
        prop_assert!(!verify(Method::S256, &v, &v));
    }

    /// Another verifier (here: any other, and the same with one character changed) does
    /// not answer the challenge.
    #[test]
    fn another_verifier_does_not(v in verifier(), other in verifier(), at in any::<prop::sample::Index>()) {
        let challenge = s256(&v);
        if other != v {
            prop_assert!(!verify(Method::S256, &challenge, &other));
            prop_assert!(!verify(Method::Plain, &v, &other));
        }
        let i = at.index(v.len());
        let mut bytes = v.clone().into_bytes();
        bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
        let flipped = String::from_utf8(bytes).unwrap();
        prop_assert!(!verify(Method::S256, &challenge, &flipped));
        prop_assert!(!verify(Method::Plain, &v, &flipped));
    }

    /// A malformed verifier (too short, too long, or with any other character) never
    /// verifies, not even as its own plain challenge or against its own S256 challenge.
    #[test]
    fn malformed_verifiers_never_verify(
        v in prop_oneof![
            "[A-Za-z0-9._~-]{0,42}",
            "[A-Za-z0-9._~-]{129,160}",
            ("[A-Za-z0-9._~-]{20,60}", outside_the_set(), "[A-Za-z0-9._~-]{20,60}")
                .prop_map(|(a, b, c)| format!("{a}{b}{c}")),
        ],
        m in method(),
    ) {
        prop_assert!(!is_well_formed(&v));
        prop_assert!(!verify(m, &v, &v));
        prop_assert!(!verify(m, &s256(&v), &v));
    }

    /// Arbitrary challenge and verifier text and any method name: no panic; only the two
    /// exact method names parse, and they round-trip.
    #[test]
    fn arbitrary_input(challenge in hostile_string(140), v in hostile_string(140), name in prop_oneof![
        hostile_string(8),
        prop::sample::select(vec!["plain", "S256", "s256", "PLAIN", "S256 ", "sha256"]).prop_map(str::to_string),
    ]) {
        for m in [Method::Plain, Method::S256] {
            let ok = verify(m, &challenge, &v);
            prop_assert!(!ok || is_well_formed(&v));
        }
        match Method::parse(&name) {
            Some(m) => {
                prop_assert!(name == "plain" || name == "S256");
                prop_assert_eq!(m.as_str(), name.as_str());
            }
            None => prop_assert!(name != "plain" && name != "S256"),
        }
    }
}
