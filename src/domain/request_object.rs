//! Signed authorization requests (RFC 9101, JAR): `request=<JWS>` on `/oauth/authorize` or
//! in a pushed request, signed with a key the client registered. Checked with no I/O; the
//! claims then stand for the whole request (§6.3: parameters outside the object are not
//! used).

use serde_json::Value;

use super::client_keys::ClientKeys;
use super::jws::{self, Compact, JwsError};

/// RFC 9101 §4 and §10.8: the `typ` of a request object.
pub const TYPE: &str = "oauth-authz-req+jwt";
/// The longest request object accepted, in bytes.
pub const MAX_LEN: usize = 16 * 1024;
/// How far `exp` may be ahead of now, in seconds (FAPI 2.0 Message Signing §5.3.1: at most
/// an hour).
pub const MAX_LIFETIME: i64 = 3600;
/// Clock skew tolerated for `nbf` and `iat`, in seconds.
const SKEW: i64 = 60;

/// The claims of a JWT that are not authorization parameters (RFC 7519 §4.1).
const JWT_CLAIMS: &[&str] = &["iss", "aud", "exp", "iat", "nbf", "jti", "sub"];

#[derive(Clone, Copy, Debug)]
pub struct Expected<'a> {
    /// The `client_id` of the request carrying the object.
    pub client_id: &'a str,
    /// This server's issuer identifier, the object's audience (§4).
    pub issuer: &'a str,
    pub now: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestObjectError {
    #[error(transparent)]
    Jws(#[from] JwsError),
    #[error("the request object's typ is not oauth-authz-req+jwt")]
    WrongType,
    #[error("no registered key of the client matches the request object's kid and alg")]
    UnknownKey,
    #[error("the request object's iss or client_id is not the client's")]
    WrongClient,
    #[error("the request object's aud is not this server's issuer")]
    WrongAudience,
    #[error("the request object has expired, has no exp, or is not yet valid")]
    Expired,
    #[error("the request object holds a parameter that is not a string: {0}")]
    BadParameter(String),
    #[error("a request object cannot hold request or request_uri")]
    Nested,
}

/// The authorization parameters a request object carries, as name and text pairs
/// (`resource` may repeat, RFC 8707; a number is its decimal text; `claims` its JSON).
pub type Parameters = Vec<(String, String)>;

/// Checks `object` (RFC 9101 §6.1–6.3) and returns the parameters it carries.
pub fn verify(
    object: &str,
    keys: &ClientKeys,
    expected: &Expected<'_>,
) -> Result<Parameters, RequestObjectError> {
    let jws = Compact::parse(object, MAX_LEN)?;
    if !jws
        .header_str("typ")
        .is_some_and(|t| t.eq_ignore_ascii_case(TYPE))
    {
        return Err(RequestObjectError::WrongType);
    }
    let alg = jws.alg()?;
    let key = keys
        .select(jws.header_str("kid"), alg)
        .ok_or(RequestObjectError::UnknownKey)?;
    jws.verify(key)?;
    let claims = &jws.claims;
    // §4: iss is the client; §5: client_id inside equals the one outside.
    if jws.claim_str("iss") != Some(expected.client_id)
        || jws.claim_str("client_id") != Some(expected.client_id)
    {
        return Err(RequestObjectError::WrongClient);
    }
    if !jws::audience_matches(claims.get("aud"), &[expected.issuer]) {
        return Err(RequestObjectError::WrongAudience);
    }
    let exp = jws::time_claim(claims, "exp").ok_or(RequestObjectError::Expired)?;
    if exp <= expected.now || exp > expected.now + MAX_LIFETIME {
        return Err(RequestObjectError::Expired);
    }
    for name in ["nbf", "iat"] {
        if let Some(t) = claims.get(name) {
            match t.as_i64() {
                Some(t) if t <= expected.now + SKEW => {}
                _ => return Err(RequestObjectError::Expired),
            }
        }
    }
    if claims.contains_key("request") || claims.contains_key("request_uri") {
        return Err(RequestObjectError::Nested);
    }
    let mut parameters = Vec::with_capacity(claims.len());
    for (name, value) in claims {
        if JWT_CLAIMS.contains(&name.as_str()) {
            continue;
        }
        let bad = || RequestObjectError::BadParameter(name.chars().take(64).collect());
        match value {
            Value::String(s) => parameters.push((name.clone(), s.clone())),
            Value::Number(n) if n.is_i64() || n.is_u64() => {
                parameters.push((name.clone(), n.to_string()))
            }
            // OpenID Connect Core §5.5: `claims` is a JSON object, carried as its text.
            Value::Object(_) if name == "claims" => {
                parameters.push((name.clone(), value.to_string()))
            }
            // RFC 8707 §2: `resource` may name several resources.
            Value::Array(items) if name == "resource" => {
                for item in items {
                    parameters.push((name.clone(), item.as_str().ok_or_else(bad)?.to_string()));
                }
            }
            _ => return Err(bad()),
        }
    }
    Ok(parameters)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::jws::test_keys::{TestKey, es256, sign};
    use serde_json::json;

    const NOW: i64 = 1_700_000_000;
    const ISSUER: &str = "https://id.example";

    fn keys(key: &TestKey) -> ClientKeys {
        ClientKeys::from_value(&json!({ "keys": [key.jwk] })).unwrap()
    }

    fn claims() -> Value {
        json!({
            "iss": "app", "aud": ISSUER, "exp": NOW + 60, "client_id": "app",
            "response_type": "code", "redirect_uri": "https://app.example/cb",
            "scope": "openid", "max_age": 300, "resource": ["https://r1.example", "https://r2.example"],
            "claims": {"id_token": {"email": null}}
        })
    }

    fn header() -> Value {
        json!({"alg": "ES256", "typ": "oauth-authz-req+jwt"})
    }

    fn check(
        key: &TestKey,
        header: Value,
        claims: Value,
    ) -> Result<Parameters, RequestObjectError> {
        let expected = Expected {
            client_id: "app",
            issuer: ISSUER,
            now: NOW,
        };
        verify(&sign(key, &header, &claims), &keys(key), &expected)
    }

    fn with(mut v: Value, name: &str, member: Value) -> Value {
        v[name] = member;
        v
    }

    #[test]
    fn the_claims_become_the_parameters() {
        let key = es256();
        let mut params = check(&key, header(), claims()).unwrap();
        params.sort();
        let get = |n: &str| {
            params
                .iter()
                .filter(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(get("response_type"), ["code"]);
        assert_eq!(get("max_age"), ["300"]);
        assert_eq!(
            get("resource"),
            ["https://r1.example", "https://r2.example"]
        );
        assert_eq!(get("claims"), [r#"{"id_token":{"email":null}}"#]);
        assert_eq!(get("client_id"), ["app"]);
        assert!(get("iss").is_empty() && get("aud").is_empty() && get("exp").is_empty());
    }

    #[test]
    fn each_defect_is_refused() {
        let key = es256();
        let refused = |h: Value, c: Value| check(&key, h, c).unwrap_err();
        assert_eq!(
            refused(with(header(), "typ", json!("JWT")), claims()),
            RequestObjectError::WrongType
        );
        assert_eq!(
            refused(with(header(), "alg", json!("none")), claims()),
            RequestObjectError::Jws(JwsError::UnsupportedAlgorithm)
        );
        assert_eq!(
            refused(header(), with(claims(), "iss", json!("x"))),
            RequestObjectError::WrongClient
        );
        assert_eq!(
            refused(header(), with(claims(), "client_id", json!("x"))),
            RequestObjectError::WrongClient
        );
        assert_eq!(
            refused(header(), with(claims(), "aud", json!("https://other"))),
            RequestObjectError::WrongAudience
        );
        assert_eq!(
            refused(header(), with(claims(), "exp", json!(NOW - 1))),
            RequestObjectError::Expired
        );
        assert_eq!(
            refused(header(), with(claims(), "exp", json!(NOW + 7200))),
            RequestObjectError::Expired
        );
        assert_eq!(
            refused(header(), with(claims(), "nbf", json!(NOW + 600))),
            RequestObjectError::Expired
        );
        assert_eq!(
            refused(header(), with(claims(), "request_uri", json!("urn:x"))),
            RequestObjectError::Nested
        );
        assert!(matches!(
            refused(header(), with(claims(), "scope", json!(["openid"]))),
            RequestObjectError::BadParameter(_)
        ));
        assert!(matches!(
            refused(header(), with(claims(), "state", json!(1.5))),
            RequestObjectError::BadParameter(_)
        ));
        let mut c = claims();
        c.as_object_mut().unwrap().remove("exp");
        assert_eq!(refused(header(), c), RequestObjectError::Expired);
        // Signed by a key the client did not register.
        let other = es256();
        let expected = Expected {
            client_id: "app",
            issuer: ISSUER,
            now: NOW,
        };
        assert_eq!(
            verify(&sign(&other, &header(), &claims()), &keys(&key), &expected),
            Err(RequestObjectError::Jws(JwsError::BadSignature))
        );
    }
}
