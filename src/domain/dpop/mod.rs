//! DPoP proofs (RFC 9449), checked with no I/O: the structure and header of a proof JWT
//! (§4.2), its signature under the public key it carries, and its claims against the request
//! it came with (§4.3: `htm`, `htu`, `iat`, `jti` and, with an access token, `ath` from §7.1).
//! The key's RFC 7638 thumbprint, `jkt` (§6.1), is what an access token is bound to.
//!
//! What this module does not do: remember `jti`s (§11.1, replay: the caller stores the
//! returned `jti` for the `iat` window), and server-provided nonces (§8, §9: a `nonce` claim is
//! accepted and ignored).
//!
//! The JWS itself is read by [`super::jws`] (strict JSON, no `crit`, asymmetric algorithms,
//! the signature over the bytes received); this module adds the proof's own rules.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::jws::{Compact, JwsError};
#[cfg(test)]
use super::jws::{PRIVATE_MEMBERS, key::b64_member};
use super::secret::constant_time_eq;

/// The JWS algorithms accepted for proofs, as `dpop_signing_alg_values_supported` lists them
/// (RFC 9449 §5.1). Never `none`, never a MAC (§4.3, check 5).
pub use super::jws::ALGORITHMS;

/// The longest proof accepted, in bytes of the compact JWS.
pub const MAX_PROOF_LEN: usize = 8192;

/// How far a proof's `iat` may be from now, either way, in seconds (RFC 9449 §11.1).
pub const IAT_WINDOW: i64 = 300;

/// The longest `jti` accepted, in characters.
const MAX_JTI_CHARS: usize = 256;

/// The request a proof must match.
#[derive(Clone, Copy, Debug)]
pub struct Expected<'a> {
    /// The HTTP method, compared exactly (`htm`).
    pub method: &'a str,
    /// The request's URL; compared to `htu` after [`normalize_htu`] of both.
    pub url: &'a str,
    /// The current time, seconds since the epoch.
    pub now: i64,
    /// The access token presented with the proof, if any: then `ath` must be its hash.
    pub access_token: Option<&'a str>,
}

/// A proof that passed every check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedProof {
    /// The RFC 7638 SHA-256 thumbprint of the proof's key, base64url.
    pub jkt: String,
    /// The proof's unique identifier, to be remembered against replay.
    pub jti: String,
    /// When the proof says it was made.
    pub iat: i64,
    /// The proof's JWS algorithm, one of [`ALGORITHMS`].
    pub alg: &'static str,
}

/// Why a proof was refused. The descriptions are fixed text (never the proof's own content),
/// fit for an `error_description`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("malformed DPoP proof: {0}")]
    Malformed(String),
    #[error("the DPoP proof is too large")]
    TooLarge,
    #[error("the DPoP proof's typ is not dpop+jwt")]
    WrongType,
    #[error("the DPoP proof's alg is not supported")]
    UnsupportedAlgorithm,
    #[error("the DPoP proof's key is unusable: {0}")]
    BadKey(String),
    #[error("the DPoP proof's signature does not verify")]
    BadSignature,
    #[error("the DPoP proof's htm does not match the request's method")]
    WrongMethod,
    #[error("the DPoP proof's htu does not match the request's URL")]
    WrongUrl,
    #[error("the DPoP proof's iat is missing, not an integer, or too far from now")]
    Stale,
    #[error("the DPoP proof's jti is missing, empty, not a string, or too long")]
    MissingJti,
    #[error("the DPoP proof's ath does not match the access token")]
    WrongAth,
    #[error("the DPoP proof has no ath for the access token")]
    MissingAth,
}

impl From<JwsError> for ProofError {
    fn from(e: JwsError) -> Self {
        match e {
            JwsError::Malformed(what) => ProofError::Malformed(what),
            JwsError::TooLarge => ProofError::TooLarge,
            JwsError::UnsupportedAlgorithm => ProofError::UnsupportedAlgorithm,
            JwsError::BadKey(what) => ProofError::BadKey(what),
            JwsError::BadSignature => ProofError::BadSignature,
        }
    }
}

fn bad_key(what: &str) -> ProofError {
    ProofError::BadKey(what.to_string())
}

/// Checks a DPoP proof (the `DPoP` header's value) against the request it came with
/// (RFC 9449 §4.3). On success, the key's thumbprint and the proof's `jti` and `iat`; the
/// caller checks that the `jti` was not seen before.
pub fn verify(proof: &str, expected: &Expected<'_>) -> Result<VerifiedProof, ProofError> {
    // §4.3 checks 2 and 3: one JWT, a compact JWS of three base64url segments.
    let jws = Compact::parse(proof, MAX_PROOF_LEN)?;
    // §4.3 checks 4 to 7: the header.
    if jws.header_str("typ") != Some("dpop+jwt") {
        return Err(ProofError::WrongType);
    }
    let alg = jws.alg()?;
    let alg = ALGORITHMS
        .iter()
        .find(|a| **a == alg)
        .copied()
        .unwrap_or_default();
    let Some(Value::Object(jwk)) = jws.header.get("jwk") else {
        return Err(bad_key("the header has no jwk object"));
    };
    // §4.3 check 6: the signature, by the key the proof carries.
    jws.verify(jwk)?;

    // §4.3 checks 8 to 12: the claims.
    let claims = &jws.claims;
    let jti = match claims.get("jti") {
        Some(Value::String(jti)) if !jti.is_empty() && jti.chars().count() <= MAX_JTI_CHARS => {
            jti.clone()
        }
        _ => return Err(ProofError::MissingJti),
    };
    if claims.get("htm").and_then(Value::as_str) != Some(expected.method) {
        return Err(ProofError::WrongMethod);
    }
    let htu = claims
        .get("htu")
        .and_then(Value::as_str)
        .and_then(normalize_htu)
        .ok_or(ProofError::WrongUrl)?;
    let url = normalize_htu(expected.url).ok_or(ProofError::WrongUrl)?;
    if htu != url {
        return Err(ProofError::WrongUrl);
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or(ProofError::Stale)?;
    if iat.abs_diff(expected.now) > IAT_WINDOW.unsigned_abs() {
        return Err(ProofError::Stale);
    }
    if let Some(token) = expected.access_token {
        let ath = match claims.get("ath") {
            None => return Err(ProofError::MissingAth),
            Some(Value::String(ath)) => ath,
            Some(_) => return Err(ProofError::WrongAth),
        };
        let wanted = access_token_hash(token);
        if !constant_time_eq(ath.as_bytes(), wanted.as_bytes()) {
            return Err(ProofError::WrongAth);
        }
    }

    let jkt = thumbprint(&Value::Object(jwk.clone()))?;
    Ok(VerifiedProof { jkt, jti, iat, alg })
}

/// The RFC 7638 JWK thumbprint with SHA-256, base64url without padding: the required members
/// only, in lexicographic order, without whitespace (§3). EC: `crv`, `kty`, `x`, `y`; OKP
/// (RFC 8037 §2): `crv`, `kty`, `x`; RSA: `e`, `kty`, `n`. Other key types (symmetric `oct`
/// among them) have no thumbprint here.
pub fn thumbprint(jwk: &Value) -> Result<String, ProofError> {
    let Value::Object(jwk) = jwk else {
        return Err(bad_key("the jwk is not an object"));
    };
    let member = |name: &str| -> Result<String, ProofError> {
        match jwk.get(name) {
            // A JSON string, escaped as serde_json does (RFC 8259 minimal escaping).
            Some(value @ Value::String(_)) => Ok(value.to_string()),
            _ => Err(bad_key("a required member is missing or not a string")),
        }
    };
    let canonical = match jwk.get("kty").and_then(Value::as_str) {
        Some("EC") => format!(
            r#"{{"crv":{},"kty":"EC","x":{},"y":{}}}"#,
            member("crv")?,
            member("x")?,
            member("y")?
        ),
        Some("OKP") => format!(
            r#"{{"crv":{},"kty":"OKP","x":{}}}"#,
            member("crv")?,
            member("x")?
        ),
        Some("RSA") => format!(
            r#"{{"e":{},"kty":"RSA","n":{}}}"#,
            member("e")?,
            member("n")?
        ),
        _ => return Err(bad_key("the key type is not EC, OKP or RSA")),
    };
    Ok(URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())))
}

/// The `ath` of an access token (RFC 9449 §4.2): base64url of its SHA-256, no padding.
pub fn access_token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

/// An `htu` as compared (RFC 9449 §4.3 check 9, RFC 3986 §6.2.2–6.2.3): an absolute `http`
/// or `https` URL with a host and no user information; scheme and host lowercased, the
/// default port dropped, an empty path made `/`, dot segments removed, without its query and
/// fragment. `None` for anything else, and for text with whitespace or ASCII controls (which
/// the URL parser would otherwise silently strip).
pub fn normalize_htu(url: &str) -> Option<String> {
    if url.is_empty()
        || url.len() > MAX_PROOF_LEN
        || url.chars().any(|c| c.is_ascii_control() || c == ' ')
    {
        return None;
    }
    let mut parsed = url::Url::parse(url).ok()?;
    if !matches!(parsed.scheme(), "http" | "https")
        || parsed.host().is_none()
        || !parsed.username().is_empty()
        || parsed.password().is_some()
    {
        return None;
    }
    parsed.set_query(None);
    parsed.set_fragment(None);
    Some(parsed.into())
}

#[cfg(test)]
mod tests;
