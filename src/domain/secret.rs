//! High-entropy secrets (session ids, tokens, generated passwords) and how they are stored.
//!
//! Secrets are random bytes from the OS, encoded base64url, usually behind a recognisable
//! prefix so secret scanners can find leaked ones. The database keeps only SHA-256 of the
//! full string: a token has 256 bits of entropy, so a fast hash cannot be brute-forced and
//! validating a bearer token stays one indexed lookup.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Prefix of Doorward personal access tokens (GitLab's are `glpat-`).
pub const PERSONAL_ACCESS_TOKEN_PREFIX: &str = "dwpat-";
/// Prefix of OAuth access tokens.
pub const ACCESS_TOKEN_PREFIX: &str = "dwat-";
/// Prefix of OAuth refresh tokens.
pub const REFRESH_TOKEN_PREFIX: &str = "dwrt-";
/// Prefix of authorization codes.
pub const AUTHORIZATION_CODE_PREFIX: &str = "dwac-";
/// Prefix of application (client) secrets (GitLab's are `gloas-`).
pub const APPLICATION_SECRET_PREFIX: &str = "dwoas-";
/// RFC 7592 registration access tokens (the credential of `/oauth/register/<client_id>`).
pub const REGISTRATION_TOKEN_PREFIX: &str = "dwrat-";

/// A new application id (OAuth `client_id`): 64 lowercase hex digits, GitLab's format. It
/// is an identifier, not a secret, so it carries no prefix.
pub fn generate_client_id() -> String {
    hex::encode(random_bytes::<32>())
}

/// `n` random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // The OS RNG failing is not recoverable and must never degrade to weak randomness.
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut buf).expect("the operating system's random number generator failed");
    buf
}

/// A new secret: `prefix` followed by 256 random bits in base64url (43 characters).
pub fn generate(prefix: &str) -> SecretString {
    let mut s = String::with_capacity(prefix.len() + 43);
    s.push_str(prefix);
    URL_SAFE_NO_PAD.encode_string(random_bytes::<32>(), &mut s);
    SecretString(s)
}

/// SHA-256 of a secret, the only form in which it is stored.
pub fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Compares two byte strings in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// HMAC-SHA-256 of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so construction cannot fail.
    let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(message);
    mac.finalize().into_bytes().into()
}

pub fn base64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A secret in memory: never printed by `Debug` or `Display`, so it cannot reach a log by
/// accident.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(s: impl Into<String>) -> SecretString {
        SecretString(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn into_inner(self) -> String {
        self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

/// The instance master key (`DOORWARD_SECRET_KEY`), from which purpose-bound subkeys are
/// derived so that one leaked subkey reveals nothing about the others.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl MasterKey {
    /// Accepts any string of at least 32 characters (a generated key is 64 hex digits).
    pub fn from_config(material: &str) -> Result<MasterKey, &'static str> {
        let material = material.trim();
        if material.len() < 32 {
            return Err("DOORWARD_SECRET_KEY must be at least 32 characters");
        }
        Ok(MasterKey(Sha256::digest(material.as_bytes()).into()))
    }

    /// A fresh key in its textual form, for the key file.
    pub fn generate_material() -> SecretString {
        SecretString(hex::encode(random_bytes::<32>()))
    }

    /// A subkey for one purpose ("csrf", "encryption", ...).
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        hmac_sha256(&self.0, purpose.as_bytes())
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_prefixed_long_and_distinct() {
        let a = generate(PERSONAL_ACCESS_TOKEN_PREFIX);
        let b = generate(PERSONAL_ACCESS_TOKEN_PREFIX);
        assert!(a.expose().starts_with("dwpat-"));
        assert_eq!(a.expose().len(), 6 + 43);
        assert_ne!(a, b);
        assert!(
            a.expose()[6..]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }

    #[test]
    fn secrets_do_not_print() {
        let s = SecretString::new("hunter22");
        assert!(!format!("{s:?}").contains("hunter22"));
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn master_keys_need_enough_material_and_derive_distinct_subkeys() {
        assert!(MasterKey::from_config("short").is_err());
        let key = MasterKey::from_config(MasterKey::generate_material().expose()).ok();
        let key = key.unwrap_or_else(|| unreachable!());
        assert_ne!(key.derive("csrf"), key.derive("encryption"));
    }

    #[test]
    fn constant_time_eq_compares_content_and_length() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
