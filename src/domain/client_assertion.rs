//! `private_key_jwt` client authentication (RFC 7523 §2.2 and §3, OpenID Connect Core §9):
//! a JWT the client signs with a key it registered, checked with no I/O. The caller
//! remembers the returned `jti` until `exp` (§3 item 7: single use, across nodes).

use serde_json::Value;

use super::client_keys::ClientKeys;
use super::jws::{self, Compact, JwsError};

/// RFC 7523 §2.2: the `client_assertion_type` of a JWT client assertion.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The longest assertion accepted, in bytes.
pub const MAX_ASSERTION_LEN: usize = 8192;
/// How far `exp` may be ahead of `iat` (or of now, without `iat`), in seconds: an
/// assertion is made for one request.
pub const MAX_LIFETIME: i64 = 300;
/// Clock skew tolerated for `iat` and `nbf` in the future, in seconds.
pub const SKEW: i64 = 60;
const MAX_JTI_CHARS: usize = 256;

/// JWT types of other kinds (RFC 8725 §3.11): a DPoP proof, a request object or an access
/// token signed by the client's key is not an assertion.
const OTHER_TYPES: &[&str] = &[
    "dpop+jwt",
    "oauth-authz-req+jwt",
    "at+jwt",
    "jwt-bearer+jwt",
];

/// What the assertion must say.
#[derive(Clone, Copy, Debug)]
pub struct Expected<'a> {
    pub client_id: &'a str,
    /// The audiences that name this server at this endpoint (RFC 7523 §3 item 3).
    pub audiences: &'a [&'a str],
    pub now: i64,
    /// FAPI 2.0 §5.3.2.1 item 8: `aud` must be a single string, not an array.
    pub audience_string_only: bool,
}

/// An assertion that passed every check but replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedAssertion {
    pub jti: String,
    pub exp: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AssertionError {
    #[error(transparent)]
    Jws(#[from] JwsError),
    #[error("the client assertion's typ is that of another kind of JWT")]
    WrongType,
    #[error("no registered key of the client matches the assertion's kid and alg")]
    UnknownKey,
    #[error("the client assertion's iss is not the client_id")]
    WrongIssuer,
    #[error("the client assertion's sub is not the client_id")]
    WrongSubject,
    #[error("the client assertion's aud does not name this server")]
    WrongAudience,
    #[error("the client assertion has expired or has no exp")]
    Expired,
    #[error("the client assertion lives longer than five minutes, or is not yet valid")]
    BadLifetime,
    #[error("the client assertion's jti is missing, empty, or too long")]
    MissingJti,
}

/// The client an assertion says it is from (its `sub`, else its `iss`), read before any
/// check to find the client's keys: nothing is trusted until [`verify`] passes.
pub fn claimed_client(assertion: &str) -> Option<String> {
    let jws = Compact::parse(assertion, MAX_ASSERTION_LEN).ok()?;
    jws.claim_str("sub")
        .or_else(|| jws.claim_str("iss"))
        .map(str::to_string)
}

/// Checks a client assertion against the client's registered keys (RFC 7523 §3).
pub fn verify(
    assertion: &str,
    keys: &ClientKeys,
    expected: &Expected<'_>,
) -> Result<VerifiedAssertion, AssertionError> {
    let jws = Compact::parse(assertion, MAX_ASSERTION_LEN)?;
    if jws
        .header_str("typ")
        .is_some_and(|t| OTHER_TYPES.iter().any(|o| o.eq_ignore_ascii_case(t)))
    {
        return Err(AssertionError::WrongType);
    }
    let alg = jws.alg()?;
    let key = keys
        .select(jws.header_str("kid"), alg)
        .ok_or(AssertionError::UnknownKey)?;
    jws.verify(key)?;
    let claims = &jws.claims;
    // §3 items 1 and 2; OpenID Connect Core §9: iss and sub are both the client_id.
    if jws.claim_str("iss") != Some(expected.client_id) {
        return Err(AssertionError::WrongIssuer);
    }
    if jws.claim_str("sub") != Some(expected.client_id) {
        return Err(AssertionError::WrongSubject);
    }
    if !jws::audience_matches(claims.get("aud"), expected.audiences)
        || (expected.audience_string_only && !claims.get("aud").is_some_and(Value::is_string))
    {
        return Err(AssertionError::WrongAudience);
    }
    // §3 item 4: exp, in the future.
    let exp = jws::time_claim(claims, "exp").ok_or(AssertionError::Expired)?;
    if exp <= expected.now {
        return Err(AssertionError::Expired);
    }
    let iat = match claims.get("iat") {
        None => None,
        Some(_) => Some(jws::time_claim(claims, "iat").ok_or(AssertionError::BadLifetime)?),
    };
    // Checked arithmetic: the claims are the client's, and i64::MIN - i64::MAX wraps.
    let lifetime = exp.checked_sub(iat.unwrap_or(expected.now));
    if iat.is_some_and(|iat| iat > expected.now + SKEW)
        || exp > expected.now + MAX_LIFETIME + SKEW
        || lifetime.is_none_or(|l| l > MAX_LIFETIME)
    {
        return Err(AssertionError::BadLifetime);
    }
    // §3 item 5: not before.
    if let Some(nbf) = claims.get("nbf") {
        match nbf.as_i64() {
            Some(nbf) if nbf <= expected.now + SKEW => {}
            _ => return Err(AssertionError::BadLifetime),
        }
    }
    let jti = match claims.get("jti") {
        Some(Value::String(jti)) if !jti.is_empty() && jti.chars().count() <= MAX_JTI_CHARS => {
            jti.clone()
        }
        _ => return Err(AssertionError::MissingJti),
    };
    Ok(VerifiedAssertion { jti, exp })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::jws::test_keys::{TestKey, es256, sign};
    use serde_json::json;

    const NOW: i64 = 1_700_000_000;
    const ISSUER: &str = "https://id.example";
    const TOKEN_ENDPOINT: &str = "https://id.example/oauth/token";

    fn registered(key: &TestKey) -> ClientKeys {
        let mut jwk = key.jwk.clone();
        jwk["kid"] = json!("k1");
        ClientKeys::from_value(&json!({ "keys": [jwk] })).unwrap()
    }

    fn claims() -> Value {
        json!({"iss": "app", "sub": "app", "aud": TOKEN_ENDPOINT, "exp": NOW + 60, "iat": NOW, "jti": "j1"})
    }

    fn check(
        key: &TestKey,
        header: Value,
        claims: Value,
    ) -> Result<VerifiedAssertion, AssertionError> {
        let expected = Expected {
            client_id: "app",
            audiences: &[ISSUER, TOKEN_ENDPOINT],
            now: NOW,
            audience_string_only: false,
        };
        verify(&sign(key, &header, &claims), &registered(key), &expected)
    }

    fn with(mut v: Value, name: &str, member: Value) -> Value {
        v[name] = member;
        v
    }

    #[test]
    fn a_good_assertion_passes() {
        let key = es256();
        let header = json!({"alg": "ES256", "kid": "k1"});
        assert_eq!(
            check(&key, header.clone(), claims()),
            Ok(VerifiedAssertion {
                jti: "j1".into(),
                exp: NOW + 60
            })
        );
        // aud as an array naming the issuer; no kid with a single registered key; no iat.
        let mut c = with(claims(), "aud", json!(["x", ISSUER]));
        c.as_object_mut().unwrap().remove("iat");
        assert!(check(&key, json!({"alg": "ES256", "typ": "JWT"}), c).is_ok());
        let assertion = sign(&key, &header, &claims());
        assert_eq!(claimed_client(&assertion).as_deref(), Some("app"));
        assert_eq!(claimed_client("not a jwt"), None);
    }

    #[test]
    fn each_defect_is_refused() {
        let key = es256();
        let h = json!({"alg": "ES256", "kid": "k1"});
        let refused = |header: Value, claims: Value| check(&key, header, claims).unwrap_err();
        assert_eq!(
            refused(h.clone(), with(claims(), "iss", json!("other"))),
            AssertionError::WrongIssuer
        );
        assert_eq!(
            refused(h.clone(), with(claims(), "sub", json!("other"))),
            AssertionError::WrongSubject
        );
        assert_eq!(
            refused(h.clone(), with(claims(), "aud", json!("https://elsewhere"))),
            AssertionError::WrongAudience
        );
        assert_eq!(
            refused(h.clone(), with(claims(), "aud", json!(null))),
            AssertionError::WrongAudience
        );
        assert_eq!(
            refused(h.clone(), with(claims(), "exp", json!(NOW))),
            AssertionError::Expired
        );
        assert_eq!(
            refused(h.clone(), with(claims(), "exp", json!("soon"))),
            AssertionError::Expired
        );
        assert_eq!(
            refused(h.clone(), with(claims(), "exp", json!(NOW + 301))),
            AssertionError::BadLifetime
        );
        assert_eq!(
            refused(h.clone(), with(claims(), "iat", json!(NOW + 120))),
            AssertionError::BadLifetime
        );
        assert_eq!(
            refused(h.clone(), with(claims(), "nbf", json!(NOW + 120))),
            AssertionError::BadLifetime
        );
        assert_eq!(
            refused(h.clone(), with(claims(), "exp", json!(1e300))),
            AssertionError::Expired
        );
        let extreme = with(
            with(claims(), "exp", json!(i64::MAX)),
            "iat",
            json!(i64::MIN),
        );
        assert_eq!(refused(h.clone(), extreme), AssertionError::BadLifetime);
        assert_eq!(
            refused(h.clone(), with(claims(), "jti", json!(""))),
            AssertionError::MissingJti
        );
        assert_eq!(
            refused(h.clone(), with(claims(), "jti", json!(7))),
            AssertionError::MissingJti
        );
        assert_eq!(
            refused(with(h.clone(), "kid", json!("k2")), claims()),
            AssertionError::UnknownKey
        );
        assert_eq!(
            refused(with(h.clone(), "alg", json!("EdDSA")), claims()),
            AssertionError::UnknownKey
        );
        assert_eq!(
            refused(with(h.clone(), "alg", json!("none")), claims()),
            AssertionError::Jws(JwsError::UnsupportedAlgorithm)
        );
        assert_eq!(
            refused(with(h.clone(), "alg", json!("HS256")), claims()),
            AssertionError::Jws(JwsError::UnsupportedAlgorithm)
        );
        assert_eq!(
            refused(with(h.clone(), "typ", json!("dpop+jwt")), claims()),
            AssertionError::WrongType
        );
        // Signed by another key under the registered kid.
        let other = es256();
        let forged = sign(&other, &h, &claims());
        let expected = Expected {
            client_id: "app",
            audiences: &[ISSUER],
            now: NOW,
            audience_string_only: true,
        };
        let array_aud = with(claims(), "aud", json!([ISSUER]));
        assert_eq!(
            verify(&sign(&key, &h, &array_aud), &registered(&key), &expected),
            Err(AssertionError::WrongAudience)
        );
        let forged_aud = with(claims(), "aud", json!(ISSUER));
        assert_eq!(
            verify(&sign(&other, &h, &forged_aud), &registered(&key), &expected),
            Err(AssertionError::Jws(JwsError::BadSignature))
        );
        assert!(verify(&forged, &registered(&key), &expected).is_err());
    }
}
