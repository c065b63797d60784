use super::*;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
};
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::json;

const NOW: i64 = 1_700_000_000;
const URL: &str = "https://server.example.com/token";

/// A key that signs test proofs: its algorithm, private key and public JWK.
struct TestKey {
    alg: &'static str,
    encoding: EncodingKey,
    jwk: Value,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn es256() -> TestKey {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let point = pair.public_key().as_ref();
    assert_eq!(point.len(), 65);
    TestKey {
        alg: "ES256",
        encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
        jwk: json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..])}),
    }
}

fn ed25519() -> TestKey {
    let rng = SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    TestKey {
        alg: "EdDSA",
        encoding: EncodingKey::from_ed_der(pkcs8.as_ref()),
        jwk: json!({"kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key().as_ref())}),
    }
}

fn rsa(alg: &'static str) -> TestKey {
    use base64::engine::general_purpose::STANDARD;
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let der = pair.as_der().unwrap();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        STANDARD.encode(der.as_ref())
    );
    let encoding = EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
    let Jwk { algorithm, .. } = Jwk::from_encoding_key(&encoding, Algorithm::RS256).unwrap();
    let AlgorithmParameters::RSA(params) = algorithm else {
        panic!("not RSA")
    };
    TestKey {
        alg,
        encoding,
        jwk: json!({"kty": "RSA", "n": params.n, "e": params.e}),
    }
}

fn algorithm(alg: &str) -> Algorithm {
    match alg {
        "ES256" => Algorithm::ES256,
        "EdDSA" => Algorithm::EdDSA,
        "RS256" => Algorithm::RS256,
        "PS256" => Algorithm::PS256,
        other => panic!("{other}"),
    }
}

/// A compact JWS of the header and payload texts as given, signed with `key` under
/// `key.alg`.
fn sign_raw(key: &TestKey, header: &str, payload: &str) -> String {
    let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
    let signature =
        jsonwebtoken::crypto::sign(input.as_bytes(), &key.encoding, algorithm(key.alg)).unwrap();
    format!("{input}.{signature}")
}

fn sign(key: &TestKey, header: &Value, claims: &Value) -> String {
    sign_raw(key, &header.to_string(), &claims.to_string())
}

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

#[test]
fn header_refusals() {
    let key = es256();
    let refused = |h: Value| verify(&sign(&key, &h, &claims()), &expected()).unwrap_err();
    for typ in [
        json!("JWT"),
        json!("DPOP+JWT"),
        json!("application/dpop+jwt"),
        json!(null),
    ] {
        assert_eq!(
            refused(with(header(&key), "typ", typ)),
            ProofError::WrongType
        );
    }
    assert_eq!(refused(without(header(&key), "typ")), ProofError::WrongType);
    for alg in [
        json!("none"),
        json!("HS256"),
        json!("ES384"),
        json!("es256"),
        json!(7),
    ] {
        assert_eq!(
            refused(with(header(&key), "alg", alg)),
            ProofError::UnsupportedAlgorithm
        );
    }
    assert_eq!(
        refused(without(header(&key), "alg")),
        ProofError::UnsupportedAlgorithm
    );
    assert!(matches!(
        refused(with(header(&key), "crit", json!(["b64"]))),
        ProofError::Malformed(_)
    ));
    assert!(matches!(
        refused(without(header(&key), "jwk")),
        ProofError::BadKey(_)
    ));
    assert!(matches!(
        refused(with(header(&key), "jwk", json!("a key"))),
        ProofError::BadKey(_)
    ));
    // The header's alg must match the key type: an EC key under RS256 or EdDSA.
    for alg in ["RS256", "PS256", "EdDSA"] {
        assert!(matches!(
            refused(with(header(&key), "alg", json!(alg))),
            ProofError::BadKey(_)
        ));
    }
    // Another key's JWK: the signature does not verify under it.
    let other = es256();
    assert_eq!(
        refused(with(header(&key), "jwk", other.jwk.clone())),
        ProofError::BadSignature
    );
}

#[test]
fn key_refusals() {
    let key = es256();
    let refused = |jwk: Value| {
        verify(
            &sign(&key, &with(header(&key), "jwk", jwk), &claims()),
            &expected(),
        )
        .unwrap_err()
    };
    for member in PRIVATE_MEMBERS {
        let jwk = with(key.jwk.clone(), member, json!("AAAA"));
        assert!(matches!(refused(jwk), ProofError::BadKey(_)), "{member}");
    }
    for (name, value) in [
        ("crv", json!("P-384")),
        ("crv", json!("secp256k1")),
        ("kty", json!("OKP")),
        ("kty", json!("oct")),
        ("x", json!("AAAA")),
        ("y", json!(b64(&[1; 33]))),
        ("x", json!(5)),
        ("x", json!("not base64url!")),
        ("alg", json!("RS256")),
        ("use", json!("enc")),
    ] {
        let jwk = with(key.jwk.clone(), name, value);
        assert!(matches!(refused(jwk), ProofError::BadKey(_)), "{name}");
    }
    // The key's own alg and use, when right, are fine.
    let jwk = with(
        with(key.jwk.clone(), "alg", json!("ES256")),
        "use",
        json!("sig"),
    );
    assert!(
        verify(
            &sign(&key, &with(header(&key), "jwk", jwk), &claims()),
            &expected()
        )
        .is_ok()
    );
    // Coordinates of the right length that are not a point on the curve.
    let jwk = with(key.jwk.clone(), "y", json!(b64(&[7; 32])));
    assert_eq!(refused(jwk), ProofError::BadSignature);

    // An RSA key shorter than 2048 bits, or with a padded modulus.
    let rsa_key = rsa("RS256");
    let n = b64_member(rsa_key.jwk.as_object().unwrap(), "n").unwrap();
    let rsa_refused = |jwk: Value| {
        let h = json!({"typ": "dpop+jwt", "alg": "RS256", "jwk": jwk});
        verify(&sign(&rsa_key, &h, &claims()), &expected()).unwrap_err()
    };
    let short = with(rsa_key.jwk.clone(), "n", json!(b64(&n[..128])));
    assert!(matches!(rsa_refused(short), ProofError::BadKey(_)));
    let mut padded = vec![0];
    padded.extend_from_slice(&n);
    let padded = with(rsa_key.jwk.clone(), "n", json!(b64(&padded)));
    assert!(matches!(rsa_refused(padded), ProofError::BadKey(_)));
    let no_e = with(rsa_key.jwk.clone(), "e", json!(""));
    assert!(matches!(rsa_refused(no_e), ProofError::BadKey(_)));
    // An RSA key under ES256.
    let h = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": rsa_key.jwk});
    assert!(matches!(
        verify(&sign(&rsa_key, &h, &claims()), &expected()),
        Err(ProofError::BadKey(_))
    ));
}

#[test]
fn duplicate_members_are_refused() {
    let key = es256();
    let jwk = key.jwk.to_string();
    let good_header = format!(r#"{{"typ":"dpop+jwt","alg":"ES256","jwk":{jwk}}}"#);
    let good_claims = claims().to_string();
    assert!(verify(&sign_raw(&key, &good_header, &good_claims), &expected()).is_ok());
    for header in [
        format!(r#"{{"typ":"JWT","typ":"dpop+jwt","alg":"ES256","jwk":{jwk}}}"#),
        format!(r#"{{"typ":"dpop+jwt","alg":"ES256","jwk":{jwk},"jwk":{jwk}}}"#),
        format!(r#"{{"typ":"dpop+jwt","t\u0079p":"dpop+jwt","alg":"ES256","jwk":{jwk}}}"#),
    ] {
        assert!(matches!(
            verify(&sign_raw(&key, &header, &good_claims), &expected()),
            Err(ProofError::Malformed(_))
        ));
    }
    let x = key.jwk["x"].as_str().unwrap();
    let y = key.jwk["y"].as_str().unwrap();
    let nested = format!(
        r#"{{"typ":"dpop+jwt","alg":"ES256","jwk":{{"kty":"EC","crv":"P-256","x":"{x}","x":"{x}","y":"{y}"}}}}"#
    );
    assert!(matches!(
        verify(&sign_raw(&key, &nested, &good_claims), &expected()),
        Err(ProofError::Malformed(_))
    ));
    let payload = format!(r#"{{"jti":"a","htm":"GET","htm":"POST","htu":"{URL}","iat":{NOW}}}"#);
    assert!(matches!(
        verify(&sign_raw(&key, &good_header, &payload), &expected()),
        Err(ProofError::Malformed(_))
    ));
}

#[test]
fn structure_refusals() {
    let key = es256();
    let proof = sign(&key, &header(&key), &claims());
    let (input, signature) = proof.rsplit_once('.').unwrap();
    let (h, p) = input.split_once('.').unwrap();
    let malformed = |text: &str| matches!(verify(text, &expected()), Err(ProofError::Malformed(_)));
    for bad in [
        String::new(),
        ".".into(),
        "..".into(),
        "a.b".into(),
        format!("{h}.{p}"),
        format!("{proof}."),
        format!("{proof}.{signature}"),
        format!("{h}..{signature}"),
        format!("{h}.{p}."),
        format!(".{p}.{signature}"),
        format!("{h}=.{p}.{signature}"),
        format!("{h}.{p}={signature}"),
        format!("{h}.{p}.{signature}="),
        format!(" {proof}"),
        format!("{proof}\n"),
        format!("{}.{p}.{signature}", b64(b"[1,2]")),
        format!("{}.{p}.{signature}", b64(b"\xff\xfe")),
        format!("{}.{p}.{signature}", b64(b"{\"typ\":\"dpop+jwt\"")),
        format!(
            "{}.{p}.{signature}",
            b64("{\"typ\":\"dpop+jwt\"}x".as_bytes())
        ),
    ] {
        assert!(malformed(&bad), "{bad:?}");
    }
    // Standard base64 where base64url is needed.
    let std_sig = signature.replace('-', "+").replace('_', "/");
    if std_sig != signature {
        assert!(malformed(&format!("{input}.{std_sig}")));
    }
    // A payload that is not JSON, signed properly.
    let not_json = sign_raw(&key, &header(&key).to_string(), "not json");
    assert!(malformed(&not_json));
    let array = sign_raw(&key, &header(&key).to_string(), "[]");
    assert!(malformed(&array));
    // A valid proof with another valid payload spliced in.
    let other = sign(&key, &header(&key), &with(claims(), "htm", json!("GET")));
    let other_payload = other.split('.').nth(1).unwrap();
    assert_eq!(
        verify(&format!("{h}.{other_payload}.{signature}"), &expected()),
        Err(ProofError::BadSignature)
    );
    // Deep nesting is an error, not a stack overflow.
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let deep_header = format!(r#"{{"typ":"dpop+jwt","alg":"ES256","x":{deep}}}"#);
    assert!(matches!(
        verify(
            &format!("{}.{p}.{signature}", b64(deep_header.as_bytes())),
            &expected()
        ),
        Err(ProofError::TooLarge)
    ));
    let deep = format!("{}{}", "[".repeat(1_000), "]".repeat(1_000));
    let deep_header = format!(r#"{{"typ":"dpop+jwt","alg":"ES256","x":{deep}}}"#);
    assert!(malformed(&format!(
        "{}.{p}.{signature}",
        b64(deep_header.as_bytes())
    )));
}

#[test]
fn size_limit() {
    let key = es256();
    let padding = "x".repeat(MAX_PROOF_LEN);
    let proof = sign(&key, &header(&key), &with(claims(), "pad", json!(padding)));
    assert_eq!(verify(&proof, &expected()), Err(ProofError::TooLarge));
    assert_eq!(
        verify(&"a".repeat(MAX_PROOF_LEN + 1), &expected()),
        Err(ProofError::TooLarge)
    );
    // Just under the limit is fine.
    let base = sign(&key, &header(&key), &with(claims(), "pad", json!(""))).len();
    let room = (MAX_PROOF_LEN - base) * 3 / 4 - 4;
    let proof = sign(
        &key,
        &header(&key),
        &with(claims(), "pad", json!("x".repeat(room))),
    );
    assert!(proof.len() <= MAX_PROOF_LEN);
    assert!(verify(&proof, &expected()).is_ok());
}

#[test]
fn descriptions_are_printable_ascii() {
    // error_description (RFC 6749 §5.2): %x20-21 / %x23-5B / %x5D-7E.
    let errors = [
        malformed("the header is not base64url"),
        ProofError::TooLarge,
        ProofError::WrongType,
        ProofError::UnsupportedAlgorithm,
        bad_key("the jwk holds private key material"),
        ProofError::BadSignature,
        ProofError::WrongMethod,
        ProofError::WrongUrl,
        ProofError::Stale,
        ProofError::MissingJti,
        ProofError::WrongAth,
        ProofError::MissingAth,
    ];
    for e in errors {
        let text = e.to_string();
        assert!(
            text.bytes()
                .all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\'),
            "{text}"
        );
    }
}
