//! The JWTs clients sign with their registered keys (`domain::client_assertion`, RFC 7523;
//! `domain::request_object`, RFC 9101) and the key sets they register
//! (`domain::client_keys`): arbitrary text and mangled valid tokens never panic and never
//! verify; arbitrary JSON never panics as a key set; a valid token verifies exactly when its
//! claims say what the server expects.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::dpop::{KEY, apply, jws_like_text, mangle, sign};
use super::{config, hostile_string};
use crate::domain::client_assertion::{self, claimed_client};
use crate::domain::client_keys::ClientKeys;
use crate::domain::request_object;

const NOW: i64 = 1_700_000_000;
const ISSUER: &str = "https://id.example";

fn keys() -> ClientKeys {
    let mut jwk = KEY.1.clone();
    jwk["kid"] = json!("k1");
    ClientKeys::from_value(&json!({ "keys": [jwk] })).unwrap_or_else(|e| unreachable!("{e}"))
}

fn assertion_expected() -> client_assertion::Expected<'static> {
    client_assertion::Expected {
        client_id: "app",
        audiences: &[ISSUER],
        now: NOW,
        audience_string_only: false,
    }
}

fn object_expected() -> request_object::Expected<'static> {
    request_object::Expected {
        client_id: "app",
        issuer: ISSUER,
        now: NOW,
    }
}

fn assertion(jti: &str, lifetime: i64) -> String {
    sign(
        &json!({"alg": "ES256", "kid": "k1"}),
        &json!({"iss": "app", "sub": "app", "aud": ISSUER, "exp": NOW + lifetime, "jti": jti}),
    )
}

fn object(state: &str) -> String {
    sign(
        &json!({"alg": "ES256", "kid": "k1", "typ": "oauth-authz-req+jwt"}),
        &json!({"iss": "app", "aud": ISSUER, "client_id": "app", "exp": NOW + 60,
                "response_type": "code", "state": state}),
    )
}

/// JSON of any shape, a few levels deep, with hostile strings and extreme numbers.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        hostile_string(40).prop_map(Value::String),
        prop::sample::select(vec![
            "EC", "OKP", "RSA", "oct", "P-256", "Ed25519", "sig", "AQAB"
        ])
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "keys", "kty", "crv", "x", "y", "n", "e", "d", "kid", "alg", "use", "k"
                ])
                .prop_map(str::to_string),
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(config(256))]

    /// Arbitrary text, hostile or shaped like a JWS: no panic, never a client or request.
    #[test]
    fn arbitrary_text_never_verifies(
        text in jws_like_text(),
    ) {
        let _ = claimed_client(&text);
        prop_assert!(client_assertion::verify(&text, &keys(), &assertion_expected()).is_err());
        prop_assert!(request_object::verify(&text, &keys(), &object_expected()).is_err());
    }

    /// A valid assertion and request object verify; spoiled in any one way, never.
    #[test]
    fn mangled_tokens_never_verify(
        jti in "[A-Za-z0-9_-]{1,40}",
        lifetime in 1i64..=300,
        how in mangle(),
    ) {
        let good = assertion(&jti, lifetime);
        prop_assert!(client_assertion::verify(&good, &keys(), &assertion_expected()).is_ok());
        if let Some(spoiled) = apply(&good, &how) {
            prop_assert!(client_assertion::verify(&spoiled, &keys(), &assertion_expected()).is_err(), "{:?}", how);
        }
        let good = object(&jti);
        prop_assert!(request_object::verify(&good, &keys(), &object_expected()).is_ok());
        if let Some(spoiled) = apply(&good, &how) {
            prop_assert!(request_object::verify(&spoiled, &keys(), &object_expected()).is_err(), "{:?}", how);
        }
    }

    /// Signed claims of any shape: no panic; an assertion verifies only when iss, sub, aud,
    /// exp and jti say what they must.
    #[test]
    fn signed_claims_of_any_shape(claims in any_json(), header_extra in any_json()) {
        let mut header = json!({"alg": "ES256", "kid": "k1"});
        if let (Value::Object(h), Value::Object(extra)) = (&mut header, header_extra) {
            for (k, v) in extra {
                if k != "alg" && k != "kid" {
                    h.insert(k, v);
                }
            }
        }
        let token = sign(&header, &claims);
        if client_assertion::verify(&token, &keys(), &assertion_expected()).is_ok() {
            prop_assert_eq!(&claims["iss"], "app");
            prop_assert_eq!(&claims["sub"], "app");
        }
        let _ = request_object::verify(&token, &keys(), &object_expected());
    }

    /// Any JSON as a registered key set: no panic; a set that is accepted round-trips.
    #[test]
    fn key_sets_of_any_shape(value in any_json(), text in hostile_string(200)) {
        if let Ok(keys) = ClientKeys::from_value(&value) {
            prop_assert_eq!(ClientKeys::parse(&keys.to_json()), Ok(keys.clone()));
            let _ = keys.select(None, "ES256");
        }
        let _ = ClientKeys::parse(&text);
        let _ = ClientKeys::parse(&value.to_string());
    }
}
