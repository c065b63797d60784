use super::test_keys::{es256, sign, sign_raw};
use super::*;
use serde_json::json;

#[test]
fn a_sound_token_verifies_under_its_key_only() {
    let key = es256();
    let token = sign(&key, &json!({"alg": "ES256"}), &json!({"a": 1}));
    let jws = Compact::parse(&token, 4096).unwrap();
    assert_eq!(jws.alg().unwrap(), "ES256");
    assert_eq!(jws.claims["a"], 1);
    jws.verify(key.jwk.as_object().unwrap()).unwrap();
    let other = es256();
    assert_eq!(
        jws.verify(other.jwk.as_object().unwrap()),
        Err(JwsError::BadSignature)
    );
}

#[test]
fn structure_is_strict() {
    let key = es256();
    let malformed = |t: &str| matches!(Compact::parse(t, 4096), Err(JwsError::Malformed(_)));
    let token = sign(&key, &json!({"alg": "ES256"}), &json!({}));
    assert!(malformed(&format!("{token}.x")));
    assert!(malformed(token.rsplit_once('.').unwrap().0));
    assert!(malformed(&format!("{token}=")));
    assert!(malformed(&sign_raw(
        &key,
        r#"{"alg":"ES256","alg":"none"}"#,
        "{}"
    )));
    assert!(malformed(&sign_raw(&key, r#"{"alg":"ES256"}"#, "[1]")));
    assert!(malformed(&sign_raw(
        &key,
        r#"{"alg":"ES256"}"#,
        "{\"a\":1e999}"
    )));
    assert!(malformed(&sign_raw(
        &key,
        r#"{"alg":"ES256","crit":["b64"]}"#,
        "{}"
    )));
    assert_eq!(
        Compact::parse(&token, token.len() - 1).unwrap_err(),
        JwsError::TooLarge
    );
    for alg in [json!("none"), json!("HS256"), json!(null), json!(["ES256"])] {
        let t = sign(&key, &json!({"alg": alg}), &json!({}));
        assert_eq!(
            Compact::parse(&t, 4096).unwrap().alg(),
            Err(JwsError::UnsupportedAlgorithm)
        );
    }
}

#[test]
fn audiences() {
    let accepted = ["https://a.example", "https://a.example/oauth/token"];
    assert!(audience_matches(
        Some(&json!("https://a.example")),
        &accepted
    ));
    assert!(audience_matches(
        Some(&json!(["x", "https://a.example/oauth/token"])),
        &accepted
    ));
    assert!(!audience_matches(
        Some(&json!("https://a.example/")),
        &accepted
    ));
    assert!(!audience_matches(Some(&json!([1, "x"])), &accepted));
    assert!(!audience_matches(None, &accepted));
}
