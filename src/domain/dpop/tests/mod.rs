use super::*;
use crate::domain::jws::test_keys::{TestKey, b64, ed25519, es256, rsa, sign, sign_raw};
use serde_json::json;

const NOW: i64 = 1_700_000_000;
const URL: &str = "https://server.example.com/token";

fn header(key: &TestKey) -> Value {
    json!({"typ": "dpop+jwt", "alg": key.alg, "jwk": key.jwk})
}

fn claims() -> Value {
    json!({"jti": "e1j3V_bKic8-LAEB", "htm": "POST", "htu": URL, "iat": NOW})
}

fn expected() -> Expected<'static> {
    Expected {
        method: "POST",
        url: URL,
        now: NOW,
        access_token: None,
    }
}

fn with(mut value: Value, name: &str, member: Value) -> Value {
    value[name] = member;
    value
}

fn without(mut value: Value, name: &str) -> Value {
    value.as_object_mut().unwrap().remove(name);
    value
}

#[test]
fn rfc7638_example_thumbprint() {
    // RFC 7638 §3.1, with members the thumbprint ignores.
    let jwk = json!({
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29"
    });
    assert_eq!(
        thumbprint(&jwk).unwrap(),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
}

#[test]
fn thumbprint_refusals() {
    assert!(thumbprint(&json!("RSA")).is_err());
    assert!(thumbprint(&json!({"kty": "oct", "k": "AAAA"})).is_err());
    assert!(thumbprint(&json!({"kty": "EC", "crv": "P-256", "x": "AA"})).is_err());
    assert!(thumbprint(&json!({"kty": "RSA", "n": 5, "e": "AQAB"})).is_err());
    assert!(thumbprint(&json!({"n": "AA", "e": "AQAB"})).is_err());
}

#[test]
fn access_token_hash_is_base64url_sha256() {
    // RFC 9449 §7.1's example access token and its ath (Figure 12 and the proof after it).
    assert_eq!(
        access_token_hash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
        "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
    );
}

#[test]
fn htu_normalization() {
    let n = |u: &str| normalize_htu(u);
    assert_eq!(
        n("HTTPS://Server.Example.COM:443/token?x=1#frag").as_deref(),
        Some("https://server.example.com/token")
    );
    assert_eq!(
        n("http://example.com:80").as_deref(),
        Some("http://example.com/")
    );
    assert_eq!(
        n("https://example.com:8443/a/./b/../c").as_deref(),
        Some("https://example.com:8443/a/c")
    );
    assert_eq!(
        n("https://example.com/Token").as_deref(),
        Some("https://example.com/Token")
    );
    assert_eq!(n("https://example.com"), n("https://example.com/"));
    assert_ne!(
        n("https://example.com/token"),
        n("https://example.com/token/")
    );
    assert_ne!(
        n("https://example.com/token"),
        n("http://example.com/token")
    );
    for bad in [
        "",
        "/token",
        "example.com/token",
        "ftp://example.com/",
        "file:///etc/passwd",
        "https://user:pw@example.com/",
        "https://exa mple.com/",
        "https://example.com/\ttoken",
        "https://example.com/token\n",
        " https://example.com/",
        "https://",
        "data:text/plain,x",
    ] {
        assert_eq!(n(bad), None, "{bad:?}");
    }
}

#[test]
fn valid_proofs_of_each_algorithm_verify() {
    for key in [es256(), ed25519(), rsa("RS256"), rsa("PS256")] {
        let proof = sign(&key, &header(&key), &claims());
        let verified = verify(&proof, &expected()).unwrap_or_else(|e| panic!("{}: {e}", key.alg));
        assert_eq!(verified.jkt, thumbprint(&key.jwk).unwrap());
        assert_eq!(verified.jti, "e1j3V_bKic8-LAEB");
        assert_eq!(verified.iat, NOW);
    }
}

#[test]
fn htu_and_iat_tolerance() {
    let key = es256();
    // The URL matches after normalisation of both sides; the query is not compared.
    let c = with(
        claims(),
        "htu",
        json!("HTTPS://SERVER.example.com:443/token"),
    );
    let proof = sign(&key, &header(&key), &c);
    let e = Expected {
        url: "https://server.example.com/token?foo=bar",
        ..expected()
    };
    assert!(verify(&proof, &e).is_ok());
    for iat in [NOW - IAT_WINDOW, NOW + IAT_WINDOW] {
        let proof = sign(&key, &header(&key), &with(claims(), "iat", json!(iat)));
        assert!(verify(&proof, &expected()).is_ok());
    }
    // A nonce, an exp and an aud are accepted and ignored, whatever their type.
    let c = with(
        with(with(claims(), "nonce", json!(1)), "exp", json!("x")),
        "aud",
        json!(5),
    );
    assert!(verify(&sign(&key, &header(&key), &c), &expected()).is_ok());
}

#[test]
fn access_token_binding() {
    let key = es256();
    let token = "an-access-token";
    let bound = Expected {
        access_token: Some(token),
        ..expected()
    };
    let good = with(claims(), "ath", json!(access_token_hash(token)));
    assert!(verify(&sign(&key, &header(&key), &good), &bound).is_ok());
    // Without an access token, an ath is ignored.
    assert!(verify(&sign(&key, &header(&key), &good), &expected()).is_ok());
    let other = with(claims(), "ath", json!(access_token_hash("another")));
    assert_eq!(
        verify(&sign(&key, &header(&key), &other), &bound),
        Err(ProofError::WrongAth)
    );
    let not_string = with(claims(), "ath", json!(42));
    assert_eq!(
        verify(&sign(&key, &header(&key), &not_string), &bound),
        Err(ProofError::WrongAth)
    );
    assert_eq!(
        verify(&sign(&key, &header(&key), &claims()), &bound),
        Err(ProofError::MissingAth)
    );
}

#[test]
fn claim_refusals() {
    let key = es256();
    let h = header(&key);
    let refused = |c: Value| verify(&sign(&key, &h, &c), &expected()).unwrap_err();
    assert_eq!(
        refused(with(claims(), "htm", json!("post"))),
        ProofError::WrongMethod
    );
    assert_eq!(
        refused(with(claims(), "htm", json!("GET"))),
        ProofError::WrongMethod
    );
    assert_eq!(
        refused(with(claims(), "htm", json!(["POST"]))),
        ProofError::WrongMethod
    );
    assert_eq!(refused(without(claims(), "htm")), ProofError::WrongMethod);
    for htu in [
        json!("https://server.example.com/token/"),
        json!("https://server.example.com/other"),
        json!("http://server.example.com/token"),
        json!("https://server.example.com:444/token"),
        json!("https://evil.example.com/token"),
        json!("/token"),
        json!(null),
    ] {
        assert_eq!(refused(with(claims(), "htu", htu)), ProofError::WrongUrl);
    }
    assert_eq!(refused(without(claims(), "htu")), ProofError::WrongUrl);
    for iat in [
        json!(NOW - IAT_WINDOW - 1),
        json!(NOW + IAT_WINDOW + 1),
        json!(0),
        json!(i64::MIN),
        json!(i64::MAX),
        json!(u64::MAX),
        json!(1.7e9),
        json!(NOW as f64),
        json!(NOW.to_string()),
        json!(null),
    ] {
        assert_eq!(refused(with(claims(), "iat", iat)), ProofError::Stale);
    }
    assert_eq!(refused(without(claims(), "iat")), ProofError::Stale);
    for jti in [json!(""), json!(5), json!(null), json!("x".repeat(257))] {
        assert_eq!(refused(with(claims(), "jti", jti)), ProofError::MissingJti);
    }
    assert_eq!(refused(without(claims(), "jti")), ProofError::MissingJti);
    // 256 characters (not bytes) is the limit.
    let long = "é".repeat(256);
    assert!(
        verify(
            &sign(&key, &h, &with(claims(), "jti", json!(long))),
            &expected()
        )
        .is_ok()
    );
    // A method is compared exactly; a URL must make sense on our side too.
    let proof = sign(&key, &h, &claims());
    let e = Expected {
        method: "post",
        ..expected()
    };
    assert_eq!(verify(&proof, &e), Err(ProofError::WrongMethod));
    let e = Expected {
        url: "not a url",
        ..expected()
    };
    assert_eq!(verify(&proof, &e), Err(ProofError::WrongUrl));
}

mod refusals;
