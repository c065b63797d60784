//! Compact JWS (RFC 7515 §7.1) as Doorward receives them from clients: DPoP proofs
//! (RFC 9449), client assertions (RFC 7523) and request objects (RFC 9101). One reader for
//! all three, so each only adds its own header and claim rules.
//!
//! The reader is strict where JWT libraries are lenient: three non-empty base64url segments
//! without padding, header and payload JSON objects in which no member appears twice
//! (serde_json keeps the last of duplicates silently, so two readers could disagree on what
//! a token says), no `crit` (no extension is understood, RFC 7515 §4.1.11; this also refuses
//! unencoded payloads, RFC 7797), an asymmetric `alg` from [`ALGORITHMS`] (never `none`,
//! never a MAC), and a size cap. The signature is checked over the exact bytes received
//! with [`jsonwebtoken::crypto::verify`] and a key built from a JWK's validated members
//! ([`key`]).

use serde_json::{Map, Value};

pub mod key;
pub mod strict_json;
#[cfg(test)]
pub(crate) mod test_keys;

pub use key::{decode_b64, public_key};

/// The JWS algorithms Doorward verifies, for proofs, assertions and request objects alike
/// (the `*_alg_values_supported` of discovery). All asymmetric; FAPI 2.0 §5.4 allows PS256,
/// ES256 and EdDSA, and RS256 is what most client libraries sign with by default.
pub const ALGORITHMS: &[&str] = &["ES256", "EdDSA", "RS256", "PS256"];

/// The algorithms the FAPI 2.0 profile allows (§5.4.1: PS256, ES256, EdDSA).
pub const FAPI2_ALGORITHMS: &[&str] = &["ES256", "EdDSA", "PS256"];

/// The algorithms accepted from clients, under the FAPI 2.0 profile or not.
pub fn algorithms(fapi2: bool) -> &'static [&'static str] {
    if fapi2 { FAPI2_ALGORITHMS } else { ALGORITHMS }
}

/// JWK members that only a private or symmetric key has (RFC 7518 §6.2.2, §6.3.2, §6.4;
/// RFC 8037 §2): a key a client shows or registers is public.
pub const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Why a JWS was refused. The descriptions are fixed text (never the token's own content),
/// fit for an `error_description`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    #[error("malformed JWT: {0}")]
    Malformed(String),
    #[error("the JWT is too large")]
    TooLarge,
    #[error("the JWT's alg is not supported")]
    UnsupportedAlgorithm,
    #[error("the JWT's key is unusable: {0}")]
    BadKey(String),
    #[error("the JWT's signature does not verify")]
    BadSignature,
}

pub(crate) fn malformed(what: &str) -> JwsError {
    JwsError::Malformed(what.to_string())
}

pub(crate) fn bad_key(what: &str) -> JwsError {
    JwsError::BadKey(what.to_string())
}

/// A compact JWS whose structure is sound; its signature is not checked yet.
#[derive(Debug)]
pub struct Compact<'a> {
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
    signing_input: &'a str,
    signature: &'a str,
}

impl<'a> Compact<'a> {
    /// Splits and decodes `token` (at most `max_len` bytes): three base64url segments, a
    /// header and a payload that are JSON objects without duplicate members, no `crit`.
    pub fn parse(token: &'a str, max_len: usize) -> Result<Compact<'a>, JwsError> {
        if token.len() > max_len {
            return Err(JwsError::TooLarge);
        }
        let mut segments = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature), None) = (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) else {
            return Err(malformed("not a compact JWS of three segments"));
        };
        if header_b64.is_empty() || payload_b64.is_empty() || signature.is_empty() {
            return Err(malformed("an empty segment"));
        }
        let header = strict_json::json_object(header_b64, "header")?;
        if header.contains_key("crit") {
            return Err(malformed("the header has crit"));
        }
        let claims = strict_json::json_object(payload_b64, "payload")?;
        if decode_b64(signature).is_none() {
            return Err(malformed("the signature is not base64url"));
        }
        Ok(Compact {
            header,
            claims,
            signing_input: &token[..header_b64.len() + 1 + payload_b64.len()],
            signature,
        })
    }

    /// The header's `alg`, when it is one of [`ALGORITHMS`].
    pub fn alg(&self) -> Result<&str, JwsError> {
        match self.header.get("alg").and_then(Value::as_str) {
            Some(alg) if ALGORITHMS.contains(&alg) => Ok(alg),
            _ => Err(JwsError::UnsupportedAlgorithm),
        }
    }

    /// A string header member.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header.get(name).and_then(Value::as_str)
    }

    /// A string claim.
    pub fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    /// Checks the signature under `jwk` (a public key of the type and size the header's
    /// `alg` needs), over the bytes exactly as received.
    pub fn verify(&self, jwk: &Map<String, Value>) -> Result<(), JwsError> {
        let alg = self.alg()?;
        let (key, algorithm) = public_key(alg, jwk)?;
        match jsonwebtoken::crypto::verify(
            self.signature,
            self.signing_input.as_bytes(),
            &key,
            algorithm,
        ) {
            Ok(true) => Ok(()),
            _ => Err(JwsError::BadSignature),
        }
    }
}

/// Whether a JWT's `aud` (a string or an array of strings, RFC 7519 §4.1.3) names one of
/// `accepted`.
pub fn audience_matches(aud: Option<&Value>, accepted: &[&str]) -> bool {
    match aud {
        Some(Value::String(one)) => accepted.contains(&one.as_str()),
        Some(Value::Array(many)) => many
            .iter()
            .any(|a| a.as_str().is_some_and(|a| accepted.contains(&a))),
        _ => false,
    }
}

/// An integer claim (`exp`, `iat`, `nbf`): a JSON integer that fits in i64 (RFC 7519 §2
/// allows fractions; no client sends them, and comparing them would need care).
pub fn time_claim(claims: &Map<String, Value>, name: &str) -> Option<i64> {
    claims.get(name).and_then(Value::as_i64)
}

#[cfg(test)]
mod tests;
