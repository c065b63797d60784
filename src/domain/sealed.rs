//! Secrets at rest that must be readable again (unlike tokens, which are only hashed):
//! AES-256-GCM with aws-lc-rs under a purpose-bound subkey of the master key, in the
//! format `domain::two_factor` uses for TOTP secrets: `1 || nonce (96 random bits) ||
//! ciphertext || tag`. Associated data binds a ciphertext to what it belongs to, so a
//! value copied into another row does not decrypt.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

use super::secret;

/// Format byte in front of a sealed value, so the scheme can change later.
const SEALED_V1: u8 = 1;

fn aead_key(key: &[u8; 32]) -> Option<LessSafeKey> {
    UnboundKey::new(&AES_256_GCM, key)
        .ok()
        .map(LessSafeKey::new)
}

/// Encrypts `plaintext` under `key` with associated data `aad`. A random nonce per
/// encryption is safe for the few values one key ever seals (NIST SP 800-38D §8.3).
pub fn seal(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> Option<Vec<u8>> {
    let nonce_bytes = secret::random_bytes::<NONCE_LEN>();
    let mut sealed = plaintext.to_vec();
    aead_key(key)?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce_bytes),
            Aad::from(aad),
            &mut sealed,
        )
        .ok()?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
    out.push(SEALED_V1);
    out.extend_from_slice(&nonce_bytes);
    out.extend_from_slice(&sealed);
    Some(out)
}

/// Decrypts what [`seal`] made; `None` if the key, the associated data or a single byte
/// differs.
pub fn open(key: &[u8; 32], aad: &[u8], stored: &[u8]) -> Option<Vec<u8>> {
    let (&version, rest) = stored.split_first()?;
    if version != SEALED_V1 || rest.len() < NONCE_LEN {
        return None;
    }
    let (nonce, sealed) = rest.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut buf = sealed.to_vec();
    let plain = aead_key(key)?
        .open_in_place(nonce, Aad::from(aad), &mut buf)
        .ok()?;
    Some(plain.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_the_same_key_and_associated_data() {
        let key = [7u8; 32];
        let sealed = seal(&key, b"row-1", b"private key").unwrap();
        assert_eq!(open(&key, b"row-1", &sealed).unwrap(), b"private key");
        assert!(open(&key, b"row-2", &sealed).is_none());
        assert!(open(&[8u8; 32], b"row-1", &sealed).is_none());
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(open(&key, b"row-1", &tampered).is_none());
        assert_ne!(seal(&key, b"row-1", b"private key").unwrap(), sealed);
    }
}
