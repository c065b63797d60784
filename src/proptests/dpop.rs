//! DPoP proofs (`domain::dpop`, RFC 9449 §4.2–4.3): arbitrary text and mangled valid proofs
//! never panic and never verify; a properly signed proof verifies exactly when its header
//! and claims match the request (a model of §4.3's checks); `htu` normalisation is
//! idempotent.

use std::sync::LazyLock;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use proptest::prelude::*;
use serde_json::{Value, json};

use super::{config, hostile_string};
use crate::domain::dpop::{
    Expected, IAT_WINDOW, access_token_hash, normalize_htu, thumbprint, verify,
};

const NOW: i64 = 1_700_000_000;
const URL: &str = "https://server.example.com/token";
const TOKEN: &str = "an-access-token";

/// One P-256 key for every case: its private key and public JWK.
pub(super) static KEY: LazyLock<(EncodingKey, Value)> = LazyLock::new(|| {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .unwrap_or_else(|_| unreachable!("key generation"));
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
        .unwrap_or_else(|_| unreachable!("a generated key loads"));
    let point = pair.public_key().as_ref().to_vec();
    let jwk = json!({
        "kty": "EC",
        "crv": "P-256",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
    });
    (EncodingKey::from_ec_der(pkcs8.as_ref()), jwk)
});

/// A compact JWS of `header` and `claims`, signed with [`KEY`] under ES256 whatever the
/// header says.
pub(super) fn sign(header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = jsonwebtoken::crypto::sign(input.as_bytes(), &KEY.0, Algorithm::ES256)
        .unwrap_or_else(|e| unreachable!("signing: {e}"));
    format!("{input}.{signature}")
}

fn expected(access_token: Option<&str>) -> Expected<'_> {
    Expected {
        method: "POST",
        url: URL,
        now: NOW,
        access_token,
    }
}

/// A proof that verifies against `expected(None)` and `expected(Some(TOKEN))`.
fn valid_proof(jti: &str, iat_offset: i64) -> String {
    sign(
        &json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": KEY.1}),
        &json!({
            "jti": jti,
            "htm": "POST",
            "htu": URL,
            "iat": NOW + iat_offset,
            "ath": access_token_hash(TOKEN),
        }),
    )
}

/// A character of the compact serialisation: the base64url alphabet and the dot, with a
/// few that do not belong.
pub(super) fn jws_char() -> impl Strategy<Value = char> {
    prop_oneof![
        8 => prop::sample::select(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                .chars()
                .collect::<Vec<_>>()
        ),
        2 => Just('.'),
        1 => prop::sample::select(vec!['=', '+', '/', ' ', '\n', '\0', 'é']),
    ]
}

/// Text a hostile client might send where a JWS goes: anything, or the JWS alphabet.
pub(super) fn jws_like_text() -> impl Strategy<Value = String> {
    prop_oneof![
        hostile_string(300),
        prop::collection::vec(jws_char(), 0..400).prop_map(|c| c.into_iter().collect()),
    ]
}

/// A way to spoil a valid proof.
#[derive(Clone, Debug)]
pub(super) enum Mangle {
    /// Replace the character at this index with this one (when it differs).
    Replace(prop::sample::Index, char),
    /// Remove the character at this index.
    Remove(prop::sample::Index),
    /// Insert this character before this index.
    Insert(prop::sample::Index, char),
    /// Keep this many characters.
    Truncate(prop::sample::Index),
    /// Swap two of the three segments.
    Swap(usize, usize),
}

pub(super) fn mangle() -> impl Strategy<Value = Mangle> {
    prop_oneof![
        4 => (any::<prop::sample::Index>(), jws_char()).prop_map(|(i, c)| Mangle::Replace(i, c)),
        2 => any::<prop::sample::Index>().prop_map(Mangle::Remove),
        2 => (any::<prop::sample::Index>(), jws_char()).prop_map(|(i, c)| Mangle::Insert(i, c)),
        1 => any::<prop::sample::Index>().prop_map(Mangle::Truncate),
        1 => (0usize..3, 0usize..3).prop_map(|(a, b)| Mangle::Swap(a, b)),
    ]
}

/// `proof` spoiled by `how`, or `None` when `how` would leave it unchanged.
pub(super) fn apply(proof: &str, how: &Mangle) -> Option<String> {
    let mut chars: Vec<char> = proof.chars().collect();
    match how {
        Mangle::Replace(at, c) => {
            let i = at.index(chars.len());
            if chars[i] == *c {
                return None;
            }
            chars[i] = *c;
        }
        Mangle::Remove(at) => {
            chars.remove(at.index(chars.len()));
        }
        Mangle::Insert(at, c) => chars.insert(at.index(chars.len() + 1), *c),
        Mangle::Truncate(at) => chars.truncate(at.index(chars.len())),
        Mangle::Swap(a, b) => {
            if a == b {
                return None;
            }
            let mut segments: Vec<&str> = proof.split('.').collect();
            segments.swap(*a, *b);
            return Some(segments.join("."));
        }
    }
    Some(chars.into_iter().collect())
}

proptest! {
    #![proptest_config(config(256))]

    /// Arbitrary text, hostile or shaped like a JWS: no panic, never a verified proof.
    #[test]
    fn arbitrary_text_never_verifies(
        text in jws_like_text(),
        with_token in any::<bool>(),
    ) {
        let token = with_token.then_some(TOKEN);
        prop_assert!(verify(&text, &expected(token)).is_err());
    }

    /// Three segments of base64url of arbitrary bytes or arbitrary JSON-ish text, unsigned:
    /// no panic, never verified.
    #[test]
    fn arbitrary_segments_never_verify(
        header in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..200),
            hostile_string(200).prop_map(String::into_bytes),
            Just(json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": KEY.1}).to_string().into_bytes()),
            Just(json!({"typ": "dpop+jwt", "alg": "none", "jwk": KEY.1}).to_string().into_bytes()),
        ],
        payload in prop::collection::vec(any::<u8>(), 0..200),
        signature in prop::collection::vec(any::<u8>(), 0..100),
    ) {
        let text = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(&header),
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(&signature),
        );
        prop_assert!(verify(&text, &expected(None)).is_err());
        prop_assert!(verify(&text, &expected(Some(TOKEN))).is_err());
    }

    /// A valid proof verifies; spoiled in any one way, it never does, and never panics.
    #[test]
    fn mangled_proofs_never_verify(
        jti in "[A-Za-z0-9_-]{1,40}",
        iat_offset in -IAT_WINDOW..=IAT_WINDOW,
        how in mangle(),
        with_token in any::<bool>(),
    ) {
        let token = with_token.then_some(TOKEN);
        let proof = valid_proof(&jti, iat_offset);
        let verified = verify(&proof, &expected(token));
        prop_assert!(verified.is_ok(), "{:?}", verified);
        if let Some(spoiled) = apply(&proof, &how) {
            prop_assert!(verify(&spoiled, &expected(token)).is_err(), "{:?} verified", how);
        }
    }

    /// A proof signed properly with any mix of right and wrong header and claims verifies
    /// exactly when every §4.3 check passes, and then reports its own key, jti and iat.
    #[test]
    fn signed_proofs_verify_exactly_when_they_match(
        typ in prop::sample::select(vec!["dpop+jwt", "dpop+jwt", "JWT", "DPOP+JWT", ""]),
        alg in prop::sample::select(vec!["ES256", "ES256", "none", "HS256", "RS256", "EdDSA", "ES384"]),
        htm in prop::sample::select(vec!["POST", "POST", "GET", "post", ""]),
        htu in prop::sample::select(vec![
            URL,
            "HTTPS://server.EXAMPLE.com:443/token?x#y",
            "https://server.example.com/token/",
            "http://server.example.com/token",
            "https://server.example.com:8443/token",
            "server.example.com/token",
        ]),
        iat_offset in prop_oneof![
            3 => -IAT_WINDOW..=IAT_WINDOW,
            1 => -10 * IAT_WINDOW..=10 * IAT_WINDOW,
        ],
        jti in prop_oneof![4 => "[ -~]{1,20}", 1 => Just(String::new())],
        ath in prop::option::of(prop::sample::select(vec![TOKEN, "another-token"])),
        with_token in any::<bool>(),
    ) {
        let mut claims = json!({"jti": jti, "htm": htm, "htu": htu, "iat": NOW + iat_offset});
        if let Some(token) = ath {
            claims["ath"] = json!(access_token_hash(token));
        }
        let proof = sign(&json!({"typ": typ, "alg": alg, "jwk": KEY.1}), &claims);
        let token = with_token.then_some(TOKEN);
        let should = typ == "dpop+jwt"
            && alg == "ES256"
            && htm == "POST"
            && normalize_htu(htu).as_deref() == Some(URL)
            && iat_offset.abs() <= IAT_WINDOW
            && !jti.is_empty()
            && (token.is_none() || ath == Some(TOKEN));
        match verify(&proof, &expected(token)) {
            Ok(verified) => {
                prop_assert!(should);
                prop_assert_eq!(verified.jkt, thumbprint(&KEY.1).unwrap_or_default());
                prop_assert_eq!(verified.jti, jti);
                prop_assert_eq!(verified.iat, NOW + iat_offset);
            }
            Err(e) => prop_assert!(!should, "refused: {}", e),
        }
    }

    /// `htu` normalisation never panics, is idempotent, and yields only http(s) URLs
    /// without query or fragment.
    #[test]
    fn htu_normalisation_is_idempotent(
        url in prop_oneof![
            hostile_string(80),
            (
                prop::sample::select(vec!["http", "https", "HTTPS", "ftp", "hTtP"]),
                "[A-Za-z0-9.-]{0,20}",
                prop::option::of(0u32..70000),
                hostile_string(30),
            ).prop_map(|(scheme, host, port, rest)| match port {
                Some(port) => format!("{scheme}://{host}:{port}/{rest}"),
                None => format!("{scheme}://{host}/{rest}"),
            }),
        ],
    ) {
        if let Some(normal) = normalize_htu(&url) {
            let again = normalize_htu(&normal);
            prop_assert_eq!(again.as_deref(), Some(normal.as_str()));
            prop_assert!(normal.starts_with("http://") || normal.starts_with("https://"));
            prop_assert!(!normal.contains('?') && !normal.contains('#'));
        }
    }
}
