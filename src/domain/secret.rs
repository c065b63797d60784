//! High-entropy secrets (session ids, tokens, generated passwords) and how they are stored.
//!
//! Secrets are random bytes from the OS, encoded base64url, usually behind a recognisable
//! prefix so secret scanners can find leaked ones. The database keeps only SHA-256 of the
//! full string: a token has 256 bits of entropy, so a fast hash cannot be brute-forced and
//! validating a bearer token stays one indexed lookup.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

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

/// The body of an ordered token: base64url of 8 ordering bytes and 32 random bytes.
const ORDERED_BODY_LEN: usize = 54;

/// The last value [`ordered_id`] gave, so that values only increase within a process.
static LAST_ORDERED_ID: AtomicU64 = AtomicU64::new(0);

/// A value that increases with time: milliseconds since the epoch in the top 48 bits and a
/// counter in the low 16, never the same twice in a process. Big-endian, so byte order is
/// numeric order: rows keyed by it are appended at the right edge of their B-tree index
/// instead of landing on a random leaf page (issue 15: a random key dirties one 4 KiB page
/// of WAL per index per insert).
pub fn ordered_id() -> [u8; 8] {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    let candidate = now_ms << 16;
    let mut previous = LAST_ORDERED_ID.load(Ordering::Relaxed);
    loop {
        let next = candidate.max(previous + 1);
        match LAST_ORDERED_ID.compare_exchange_weak(
            previous,
            next,
            Ordering::Relaxed,
            Ordering::Relaxed,
        ) {
            Ok(_) => return next.to_be_bytes(),
            Err(seen) => previous = seen,
        }
    }
}

/// A new refresh chain identifier, from which the chain's OpenID Connect `sid` is derived:
/// unique (8 random bytes after 8 time-ordered ones). No index holds it: a chain is walked
/// by its rows' successor links (migration 0023).
pub fn new_family() -> [u8; 16] {
    let mut family = [0u8; 16];
    family[..8].copy_from_slice(&ordered_id());
    family[8..].copy_from_slice(&random_bytes::<8>());
    family
}

/// A new OAuth token or code: `prefix` followed by base64url of an [`ordered_id`] and 256
/// random bits (54 characters). The random part is the secret; the ordering part only
/// decides where the row's key goes in the index ([`token_key`]).
pub fn generate_ordered(prefix: &str) -> SecretString {
    let mut body = [0u8; 40];
    body[..8].copy_from_slice(&ordered_id());
    body[8..].copy_from_slice(&random_bytes::<32>());
    let mut s = String::with_capacity(prefix.len() + ORDERED_BODY_LEN);
    s.push_str(prefix);
    URL_SAFE_NO_PAD.encode_string(body, &mut s);
    SecretString(s)
}

/// The stored key of an OAuth access token, refresh token or code, by which it is looked up
/// (one indexed lookup, as before). For a token from [`generate_ordered`]: its 8 ordering
/// bytes, then the first 24 bytes of SHA-256 of the whole token, so new keys grow the
/// index at its right edge while the secret stays unrecoverable (192 bits of a hash of 256
/// random bits). For any other text (tokens issued before, imported ones, guesses): SHA-256
/// of the whole text, as [`hash`].
pub fn token_key(token: &str) -> [u8; 32] {
    let digest = hash(token);
    let Some(order) = ordered_part(token) else {
        return digest;
    };
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&order);
    key[8..].copy_from_slice(&digest[..24]);
    key
}

/// The ordering bytes of a token shaped as [`generate_ordered`] makes them: a prefix of
/// lowercase letters and `-`, then 54 base64url characters of 40 bytes.
fn ordered_part(token: &str) -> Option<[u8; 8]> {
    let (prefix, body) = token.split_at_checked(token.len().checked_sub(ORDERED_BODY_LEN)?)?;
    let well_formed_prefix = prefix.len() > 1
        && prefix.ends_with('-')
        && prefix[..prefix.len() - 1]
            .bytes()
            .all(|b| b.is_ascii_lowercase());
    if !well_formed_prefix {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(body).ok()?;
    bytes.get(..8)?.try_into().ok()
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
    fn ordered_tokens_key_in_issue_order_and_others_by_their_hash() {
        let tokens: Vec<SecretString> = (0..1000)
            .map(|_| generate_ordered(ACCESS_TOKEN_PREFIX))
            .collect();
        let keys: Vec<[u8; 32]> = tokens.iter().map(|t| token_key(t.expose())).collect();
        assert!(
            keys.windows(2).all(|w| w[0] < w[1]),
            "keys increase with issue order"
        );
        for (token, key) in tokens.iter().zip(&keys) {
            let t = token.expose();
            assert!(t.starts_with("dwat-") && t.len() == 5 + 54);
            assert_eq!(&key[8..], &hash(t)[..24]);
            assert_ne!(&key[..], &hash(t)[..]);
        }
        // Anything not shaped so, an older token among them, is keyed by its plain hash.
        let older = generate(ACCESS_TOKEN_PREFIX);
        for other in [
            older.expose(),
            "dwat-",
            "",
            "DWAT-x",
            &format!("d_{}", &tokens[0].expose()[2..]),
        ] {
            assert_eq!(token_key(other), hash(other), "{other}");
        }
        let upper = format!("DWAT-{}", &tokens[0].expose()[5..]);
        assert_eq!(token_key(&upper), hash(&upper));
        // The same secret under another ordering part is another key.
        let t = tokens[0].expose();
        let mut body = URL_SAFE_NO_PAD.decode(&t[5..]).unwrap();
        body[7] ^= 1;
        let forged = format!("dwat-{}", URL_SAFE_NO_PAD.encode(&body));
        assert_ne!(token_key(&forged), keys[0]);
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
