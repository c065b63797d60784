//! Proofs that must be refused: header, key, duplicate members, structure, size; and the
//! refusals' descriptions.

use super::*;

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
        ProofError::Malformed("the header is not base64url".into()),
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
