//! The public keys a client registers for `private_key_jwt` (RFC 7523 §2.2) and signed
//! request objects (RFC 9101): a JWK Set (RFC 7517 §5), given as `jwks` or fetched from
//! `jwks_uri` (RFC 7591 §2). Every key must be usable as registered: public, of a supported
//! type and size (P-256, Ed25519, RSA of at least 2048 bits), for signing; anything else
//! refuses the whole set, so a client learns at registration, not at its first request.

use serde_json::{Map, Value};

use super::jws::{self, JwsError};

/// The largest JWK Set accepted, in bytes of JSON (registered or fetched).
pub const MAX_JWKS_LEN: usize = 16 * 1024;
/// The most keys a set may hold (room for rotation, not a key store).
pub const MAX_KEYS: usize = 10;

/// A validated JWK Set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientKeys {
    keys: Vec<Map<String, Value>>,
}

/// The algorithm a key is used with: its own `alg`, else the one its type implies.
fn key_alg(jwk: &Map<String, Value>) -> Option<&str> {
    if let Some(alg) = jwk.get("alg") {
        return alg.as_str();
    }
    match jwk.get("kty").and_then(Value::as_str) {
        Some("EC") => Some("ES256"),
        Some("OKP") => Some("EdDSA"),
        Some("RSA") => Some("RS256"),
        _ => None,
    }
}

impl ClientKeys {
    /// Parses and checks a JWK Set given as JSON text.
    pub fn parse(text: &str) -> Result<ClientKeys, String> {
        if text.len() > MAX_JWKS_LEN {
            return Err(format!("is larger than {MAX_JWKS_LEN} bytes"));
        }
        // Strict, as every JWT we read: two readers must not disagree on a key's members.
        let value = crate::domain::jws::strict_json::parse_text(text)
            .ok_or_else(|| "is not valid JSON without duplicate members".to_string())?;
        ClientKeys::from_value(&value)
    }

    /// Checks a JWK Set given as a JSON value (RFC 7591 `jwks`).
    pub fn from_value(value: &Value) -> Result<ClientKeys, String> {
        let Some(Value::Array(keys)) = value.get("keys") else {
            return Err("is not a JWK Set (an object with a keys array)".into());
        };
        if keys.is_empty() {
            return Err("holds no key".into());
        }
        if keys.len() > MAX_KEYS {
            return Err(format!("holds more than {MAX_KEYS} keys"));
        }
        let mut checked = Vec::with_capacity(keys.len());
        for (i, key) in keys.iter().enumerate() {
            let Value::Object(jwk) = key else {
                return Err(format!("key {i} is not an object"));
            };
            check_key(jwk).map_err(|e| format!("key {i}: {}", describe(&e)))?;
            if let Some(kid) = jwk.get("kid") {
                let Some(kid) = kid.as_str() else {
                    return Err(format!("key {i}: its kid is not a string"));
                };
                if checked
                    .iter()
                    .any(|k: &Map<String, Value>| k.get("kid").and_then(Value::as_str) == Some(kid))
                {
                    return Err(format!("key {i}: two keys have the kid {kid}"));
                }
            }
            checked.push(jwk.clone());
        }
        Ok(ClientKeys { keys: checked })
    }

    /// The key a JWS with this header's `kid` and `alg` is verified with (RFC 7515 §4.1.4):
    /// the key with that `kid`; without a `kid`, the one key that fits `alg`, if only one
    /// does. `None` when no registered key can be meant.
    pub fn select(&self, kid: Option<&str>, alg: &str) -> Option<&Map<String, Value>> {
        let fits = |k: &&Map<String, Value>| {
            jws::public_key(alg, k).is_ok() && k.get("alg").is_none_or(|a| a.as_str() == Some(alg))
        };
        match kid {
            Some(kid) => self
                .keys
                .iter()
                .find(|k| k.get("kid").and_then(Value::as_str) == Some(kid))
                .filter(fits),
            None => {
                let mut candidates = self.keys.iter().filter(fits);
                match (candidates.next(), candidates.next()) {
                    (Some(only), None) => Some(only),
                    _ => None,
                }
            }
        }
    }

    /// The set as stored: compact JSON.
    pub fn to_json(&self) -> String {
        serde_json::json!({ "keys": self.keys }).to_string()
    }
}

/// One registered key: public, for signing, of a supported type and size.
fn check_key(jwk: &Map<String, Value>) -> Result<(), JwsError> {
    let alg = key_alg(jwk).ok_or_else(|| jws::bad_key("the key type is not EC, OKP or RSA"))?;
    if !jws::ALGORITHMS.contains(&alg) {
        return Err(JwsError::UnsupportedAlgorithm);
    }
    jws::public_key(alg, jwk).map(|_| ())
}

fn describe(e: &JwsError) -> String {
    match e {
        JwsError::BadKey(why) => why.clone(),
        JwsError::UnsupportedAlgorithm => "its alg is not one of ES256, EdDSA, RS256, PS256".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::jws::test_keys::{ed25519, es256, rsa};
    use serde_json::json;

    fn set(keys: Vec<Value>) -> String {
        json!({ "keys": keys }).to_string()
    }

    #[test]
    fn keys_are_selected_by_kid_or_by_being_the_only_fit() {
        let (ec, ed) = (es256(), ed25519());
        let mut ec_jwk = ec.jwk.clone();
        ec_jwk["kid"] = json!("ec-1");
        let keys = ClientKeys::parse(&set(vec![ec_jwk.clone(), ed.jwk.clone()])).unwrap();
        assert_eq!(keys.select(Some("ec-1"), "ES256"), ec_jwk.as_object());
        assert_eq!(keys.select(None, "ES256"), ec_jwk.as_object());
        assert_eq!(keys.select(None, "EdDSA"), ed.jwk.as_object());
        assert_eq!(keys.select(Some("ec-1"), "EdDSA"), None);
        assert_eq!(keys.select(Some("other"), "ES256"), None);
        assert_eq!(keys.select(None, "RS256"), None);
        // Two keys fit and no kid says which: none is guessed.
        let two = ClientKeys::parse(&set(vec![es256().jwk, es256().jwk])).unwrap();
        assert_eq!(two.select(None, "ES256"), None);
        assert_eq!(ClientKeys::parse(&keys.to_json()).unwrap(), keys);
    }

    #[test]
    fn unusable_sets_are_refused() {
        let ec = es256().jwk;
        let refused = |text: String| ClientKeys::parse(&text).unwrap_err();
        assert!(refused("{".into()).contains("JSON"));
        assert!(refused("[]".into()).contains("JWK Set"));
        assert!(refused(set(vec![])).contains("no key"));
        assert!(refused(set(vec![ec.clone(); MAX_KEYS + 1])).contains("more than"));
        let mut private = ec.clone();
        private["d"] = json!("AAAA");
        assert!(refused(set(vec![private])).contains("private"));
        let mut p384 = ec.clone();
        p384["crv"] = json!("P-384");
        assert!(refused(set(vec![p384])).contains("P-256"));
        let mut hmac = json!({"kty": "oct", "k": "c2VjcmV0"});
        assert!(refused(set(vec![hmac.clone()])).contains("key 0"));
        hmac["alg"] = json!("HS256");
        assert!(refused(set(vec![hmac])).contains("key 0"));
        let mut enc = ec.clone();
        enc["use"] = json!("enc");
        assert!(refused(set(vec![enc])).contains("sig"));
        let (mut a, mut b) = (ec.clone(), es256().jwk);
        a["kid"] = json!("k");
        b["kid"] = json!("k");
        assert!(refused(set(vec![a, b])).contains("two keys"));
        let mut numeric_kid = ec.clone();
        numeric_kid["kid"] = json!(1);
        assert!(refused(set(vec![numeric_kid])).contains("kid"));
        assert!(refused("x".repeat(MAX_JWKS_LEN + 1)).contains("larger"));
        // A 2048-bit RSA key is fine; PS256 is taken from the key's own alg.
        let mut ps = rsa("PS256").jwk;
        ps["alg"] = json!("PS256");
        let keys = ClientKeys::parse(&set(vec![ps])).unwrap();
        assert!(keys.select(None, "PS256").is_some());
        assert!(keys.select(None, "RS256").is_none());
    }
}
