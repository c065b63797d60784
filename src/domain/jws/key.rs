//! A JWK as a verification key (RFC 7518 §6, RFC 8037 §2): a public key of the type and
//! size its `alg` needs (P-256 for ES256, Ed25519 for EdDSA, RSA of 2048 to 8192 bits),
//! its members decoded strictly. Used for DPoP proof keys (RFC 9449 §4.3 checks 5 and 7) and
//! for the keys clients register (RFC 7523, RFC 9101).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};

use super::{JwsError, PRIVATE_MEMBERS, bad_key};

/// The verification key for `alg` from `jwk`, once the JWK is a public key of the type and
/// size `alg` needs.
pub fn public_key(
    alg: &str,
    jwk: &Map<String, Value>,
) -> Result<(DecodingKey, Algorithm), JwsError> {
    if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
        return Err(bad_key("the jwk holds private key material"));
    }
    if let Some(key_alg) = jwk.get("alg")
        && key_alg.as_str() != Some(alg)
    {
        return Err(bad_key("the jwk's alg is not the header's"));
    }
    if let Some(key_use) = jwk.get("use")
        && key_use.as_str() != Some("sig")
    {
        return Err(bad_key("the jwk's use is not sig"));
    }
    let kty = jwk.get("kty").and_then(Value::as_str);
    let crv = jwk.get("crv").and_then(Value::as_str);
    match alg {
        "ES256" => {
            if kty != Some("EC") || crv != Some("P-256") {
                return Err(bad_key("ES256 needs an EC key on P-256"));
            }
            let x = fixed_member(jwk, "x", 32)?;
            let y = fixed_member(jwk, "y", 32)?;
            // The uncompressed point, 0x04 || x || y (SEC 1 §2.3.3), as aws-lc reads it.
            let mut point = Vec::with_capacity(65);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            Ok((DecodingKey::from_ec_der(&point), Algorithm::ES256))
        }
        "EdDSA" => {
            if kty != Some("OKP") || crv != Some("Ed25519") {
                return Err(bad_key("EdDSA needs an OKP key on Ed25519"));
            }
            let x = fixed_member(jwk, "x", 32)?;
            Ok((DecodingKey::from_ed_der(&x), Algorithm::EdDSA))
        }
        "RS256" | "PS256" => {
            if kty != Some("RSA") {
                return Err(bad_key("RS256 and PS256 need an RSA key"));
            }
            let n = b64_member(jwk, "n")?;
            let e = b64_member(jwk, "e")?;
            // RFC 7518 §6.3.1: unsigned big-endian, in the fewest octets.
            let (Some(&n0), Some(&e0)) = (n.first(), e.first()) else {
                return Err(bad_key("an empty RSA member"));
            };
            if n0 == 0 || e0 == 0 {
                return Err(bad_key("an RSA member with a leading zero octet"));
            }
            let bits = n.len() * 8 - n0.leading_zeros() as usize;
            if bits < 2048 {
                return Err(bad_key("the RSA modulus is shorter than 2048 bits"));
            }
            if bits > 8192 || e.len() > 8 {
                return Err(bad_key("the RSA key is too large"));
            }
            let algorithm = if alg == "RS256" {
                Algorithm::RS256
            } else {
                Algorithm::PS256
            };
            Ok((DecodingKey::from_rsa_raw_components(&n, &e), algorithm))
        }
        _ => Err(JwsError::UnsupportedAlgorithm),
    }
}

/// A JWK member that is base64url of some bytes.
pub(crate) fn b64_member(jwk: &Map<String, Value>, name: &str) -> Result<Vec<u8>, JwsError> {
    jwk.get(name)
        .and_then(Value::as_str)
        .and_then(decode_b64)
        .ok_or_else(|| bad_key("a key member is missing or not base64url"))
}

/// A JWK member that is base64url of exactly `len` bytes (RFC 7518 §6.2.1.2, RFC 8037 §2).
pub(super) fn fixed_member(
    jwk: &Map<String, Value>,
    name: &str,
    len: usize,
) -> Result<Vec<u8>, JwsError> {
    let bytes = b64_member(jwk, name)?;
    if bytes.len() != len {
        return Err(bad_key("a key coordinate has the wrong length"));
    }
    Ok(bytes)
}

/// Strict base64url without padding: the URL-safe alphabet only, no `=`, no stray bits.
pub fn decode_b64(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}
