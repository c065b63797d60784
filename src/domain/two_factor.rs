//! Two-factor authentication with TOTP (RFC 6238) and recovery codes: the rules, no I/O.
//!
//! An authenticator app and Doorward share a random 160-bit secret (RFC 4226 §4 asks for at
//! least 128 bits and recommends 160). A code is HMAC-SHA-1 of the 30-second time step,
//! truncated to 6 digits: the parameters every authenticator app supports and GitLab uses.
//! One step of clock skew either way is accepted (RFC 6238 §5.2 recommends at most one), and
//! verification returns the step a code matched, because the same section requires that a
//! verifier "MUST NOT accept the second attempt of the OTP after the successful validation":
//! the store accepts a step only if it is later than the last one used.
//!
//! The secret must be readable again to check codes, so unlike tokens it cannot be hashed: it
//! is encrypted with AES-256-GCM under a subkey of the master key, with the user's id as
//! associated data so that a ciphertext copied onto another account does not decrypt.
//! Recovery codes carry 80 random bits, so (as with tokens) a SHA-256 is all that is stored.

use std::fmt;

use totp_rs::{Algorithm, Builder, Totp};

use super::secret::{self, SecretString};

/// Digits of a code (RFC 4226 §5.3 allows 6 to 8; apps default to 6).
pub const DIGITS: u8 = 6;
/// Seconds in a time step (RFC 6238 §5.2 recommends 30).
pub const STEP_SECONDS: i64 = 30;
/// Steps of clock drift accepted either side of the current one (RFC 6238 §5.2).
const SKEW_STEPS: u16 = 1;
/// Bytes of a generated secret: 160 bits, RFC 4226 §4's recommendation.
const SECRET_BYTES: usize = 20;
/// How many recovery codes a user gets at a time.
pub const RECOVERY_CODE_COUNT: usize = 10;
/// Symbols of a recovery code: 16 symbols of 5 bits each = 80 random bits.
const RECOVERY_CODE_SYMBOLS: usize = 16;
/// Crockford's base32 alphabet: no I, L, O or U, so a code read aloud or copied by hand
/// survives; on input `i`/`l` are read as `1` and `o` as `0`.
const CROCKFORD: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// A TOTP shared secret in memory; `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret(Vec<u8>);

impl TotpSecret {
    /// A new random secret from the operating system.
    pub fn generate() -> TotpSecret {
        TotpSecret(secret::random_bytes::<SECRET_BYTES>().to_vec())
    }

    /// Reads the base32 text an authenticator app is given (spaces and case ignored).
    pub fn from_base32(text: &str) -> Option<TotpSecret> {
        let compact: String = text
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let bytes = totp_rs::Secret::try_from_base32(compact).ok()?;
        Some(TotpSecret(bytes.as_bytes().to_vec()))
    }

    pub fn from_bytes(bytes: &[u8]) -> TotpSecret {
        TotpSecret(bytes.to_vec())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The RFC 4648 base32 form (no padding) people type into an authenticator app.
    pub fn base32(&self) -> String {
        totp_rs::Secret::from(self.0.clone()).to_base32()
    }
}

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(<redacted>)")
    }
}

/// The generator for `secret` with `digits` digits. `None` only for a secret shorter than
/// RFC 4226's 128 bits, which Doorward never generates.
fn totp(secret: &TotpSecret, digits: u8) -> Option<Totp> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(digits)
        .with_skew(SKEW_STEPS)
        .with_step_duration(STEP_SECONDS as u64)
        .with_secret(secret.0.clone())
        .build()
        .ok()
}

/// The `otpauth://totp/…` URI (Google's Key URI format) that the QR code carries. Neither
/// `issuer` nor `account` may contain `:`, the label's separator.
pub fn otpauth_uri(secret: &TotpSecret, issuer: &str, account: &str) -> Option<String> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS)
        .with_step_duration(STEP_SECONDS as u64)
        .with_secret(secret.0.clone())
        .with_issuer(Some(issuer))
        .with_account_name(account)
        .build()
        .ok()?
        .to_url()
        .ok()
}

/// The time step of `unix_seconds`: T = floor(t / X) with T0 = 0 (RFC 6238 §4.2).
pub fn step_of(unix_seconds: i64) -> i64 {
    unix_seconds.max(0) / STEP_SECONDS
}

/// The code for `unix_seconds` with `digits` digits (6 in use; 8 for RFC 6238's vectors).
pub fn code_with_digits(secret: &TotpSecret, unix_seconds: i64, digits: u8) -> Option<String> {
    let time = u64::try_from(unix_seconds).ok()?;
    Some(totp(secret, digits)?.generate(time).to_string())
}

/// The 6-digit code an authenticator app shows at `unix_seconds`.
pub fn code_at(secret: &TotpSecret, unix_seconds: i64) -> Option<String> {
    code_with_digits(secret, unix_seconds, DIGITS)
}

/// Checks a 6-digit `code` at `now`, one step of skew either way, and returns the time step
/// it matched. The caller must still refuse a step already used (RFC 6238 §5.2).
pub fn verify_code(secret: &TotpSecret, code: &str, now: i64) -> Option<i64> {
    let time = u64::try_from(now).ok()?;
    let step = totp(secret, DIGITS)?.check(code, time)?;
    i64::try_from(step).ok()
}

/// What a person typed into the "code" field, once cleaned up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// Six digits (spaces removed): an authenticator code.
    Code(String),
    /// A recovery code in its canonical form (lowercase, no separators).
    RecoveryCode(String),
    /// Neither: refused without touching the database.
    Malformed,
}

/// Sorts an attempt into a code or a recovery code. Spaces and dashes are ignored and case
/// does not matter, since people copy codes by hand.
pub fn classify(input: &str) -> Attempt {
    let compact: String = input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    if compact.len() == usize::from(DIGITS) && compact.bytes().all(|b| b.is_ascii_digit()) {
        return Attempt::Code(compact);
    }
    if compact.chars().count() != RECOVERY_CODE_SYMBOLS {
        return Attempt::Malformed;
    }
    let mut canonical = String::with_capacity(RECOVERY_CODE_SYMBOLS);
    for c in compact.chars().map(|c| c.to_ascii_lowercase()) {
        let c = match c {
            'o' => '0',
            'i' | 'l' => '1',
            c => c,
        };
        match u8::try_from(c) {
            Ok(b) if CROCKFORD.contains(&b) => {}
            _ => return Attempt::Malformed,
        }
        canonical.push(c);
    }
    Attempt::RecoveryCode(canonical)
}

/// New recovery codes as shown to the user (`xxxx-xxxx-xxxx-xxxx`), each 80 random bits.
pub fn generate_recovery_codes() -> Vec<SecretString> {
    (0..RECOVERY_CODE_COUNT)
        .map(|_| {
            let symbols = crockford(&secret::random_bytes::<10>());
            let groups: Vec<&str> = symbols
                .as_bytes()
                .chunks(4)
                .filter_map(|g| std::str::from_utf8(g).ok())
                .collect();
            SecretString::new(groups.join("-"))
        })
        .collect()
}

/// 80 bits as 16 Crockford base32 symbols.
fn crockford(bytes: &[u8; 10]) -> String {
    let mut bits = u128::from_be_bytes({
        let mut wide = [0u8; 16];
        wide[6..].copy_from_slice(bytes);
        wide
    });
    let mut out = [0u8; RECOVERY_CODE_SYMBOLS];
    for slot in out.iter_mut().rev() {
        *slot = CROCKFORD[(bits & 31) as usize];
        bits >>= 5;
    }
    out.iter().map(|&b| char::from(b)).collect()
}

/// What is stored for a recovery code: SHA-256 of its canonical form (see [`classify`]).
pub fn recovery_code_hash(code: &str) -> Option<[u8; 32]> {
    match classify(code) {
        Attempt::RecoveryCode(canonical) => Some(secret::hash(&canonical)),
        _ => None,
    }
}

/// Associated data binding a ciphertext to its account: the purpose and the user's id.
fn aad(user_id: i64) -> [u8; 18] {
    let mut out = [0u8; 18];
    out[..10].copy_from_slice(b"totp-user:");
    out[10..].copy_from_slice(&user_id.to_be_bytes());
    out
}

/// Encrypts `secret` for `user_id` with [`sealed`](super::sealed) (AES-256-GCM, the user id
/// as associated data, so a ciphertext moved to another account does not decrypt).
pub fn encrypt_secret(key: &[u8; 32], user_id: i64, secret: &TotpSecret) -> Option<Vec<u8>> {
    super::sealed::seal(key, &aad(user_id), &secret.0)
}

/// Decrypts what [`encrypt_secret`] made for this `user_id`; `None` if the key, the user or
/// a single byte differs.
pub fn decrypt_secret(key: &[u8; 32], user_id: i64, stored: &[u8]) -> Option<TotpSecret> {
    super::sealed::open(key, &aad(user_id), stored).map(TotpSecret)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B: the SHA-1 seed is the ASCII string "12345678901234567890".
    const RFC_SEED: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc_6238_appendix_b_sha1_vectors() {
        let secret = TotpSecret::from_bytes(RFC_SEED);
        for (time, expected) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(
                code_with_digits(&secret, time, 8).as_deref(),
                Some(expected),
                "T = {time}"
            );
        }
    }

    #[test]
    fn rfc_4226_appendix_d_values_truncate_to_six_digits() {
        // HOTP(counter 1) = 287082 and counter 2 = 359152 for the same seed (RFC 4226
        // Appendix D); TOTP at step 1 and 2 is HOTP at those counters.
        let secret = TotpSecret::from_bytes(RFC_SEED);
        assert_eq!(code_at(&secret, 59).as_deref(), Some("287082"));
        assert_eq!(code_at(&secret, 60).as_deref(), Some("359152"));
    }

    #[test]
    fn codes_verify_within_one_step_either_way_and_report_their_step() {
        let secret = TotpSecret::generate();
        let now = 1_700_000_015;
        let here = step_of(now);
        let code = code_at(&secret, now).unwrap_or_default();
        assert_eq!(verify_code(&secret, &code, now), Some(here));
        let previous = code_at(&secret, now - 30).unwrap_or_default();
        assert_eq!(verify_code(&secret, &previous, now), Some(here - 1));
        let next = code_at(&secret, now + 30).unwrap_or_default();
        assert_eq!(verify_code(&secret, &next, now), Some(here + 1));
        let stale = code_at(&secret, now - 60).unwrap_or_default();
        if stale != code && stale != previous && stale != next {
            assert_eq!(verify_code(&secret, &stale, now), None);
        }
        assert_eq!(verify_code(&secret, "12345", now), None);
        assert_eq!(verify_code(&secret, "+12345", now), None);
        assert_eq!(verify_code(&secret, "abcdef", now), None);
    }

    #[test]
    fn secrets_round_trip_through_base32_and_the_otpauth_uri() {
        let secret = TotpSecret::from_bytes(RFC_SEED);
        assert_eq!(secret.base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(
            TotpSecret::from_base32("gezd gnbv gy3t qojq gezd gnbv gy3t qojq"),
            Some(secret.clone())
        );
        assert_eq!(TotpSecret::from_base32("not base32!"), None);
        assert_eq!(
            otpauth_uri(&secret, "Doorward", "alice@id.example.com").as_deref(),
            Some(
                "otpauth://totp/Doorward:alice%40id.example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Doorward"
            )
        );
        assert_eq!(otpauth_uri(&secret, "Doorward", "a:b"), None);
        assert!(!format!("{secret:?}").contains("GEZD"));
        assert_eq!(TotpSecret::generate().as_bytes().len(), 20);
    }

    #[test]
    fn attempts_are_classified_leniently() {
        assert_eq!(classify(" 123 456 "), Attempt::Code("123456".into()));
        assert_eq!(
            classify("ABCD-EFGH-JKMN-PQRS"),
            Attempt::RecoveryCode("abcdefghjkmnpqrs".into())
        );
        // I, L and O read as 1, 1 and 0, as Crockford's base32 says.
        assert_eq!(
            classify("oill 2345 6789 abcd"),
            Attempt::RecoveryCode("011123456789abcd".into())
        );
        for bad in [
            "",
            "12345",
            "1234567",
            "uuuu-uuuu-uuuu-uuuu",
            "ééééééééééééééé1",
            "12345a",
        ] {
            assert_eq!(classify(bad), Attempt::Malformed, "{bad:?}");
        }
    }

    #[test]
    fn recovery_codes_are_distinct_well_formed_and_hash_canonically() {
        let codes = generate_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODE_COUNT);
        let mut seen = std::collections::HashSet::new();
        for code in &codes {
            let text = code.expose();
            assert_eq!(text.len(), 19, "{text}");
            assert_eq!(text.matches('-').count(), 3, "{text}");
            assert!(matches!(classify(text), Attempt::RecoveryCode(_)), "{text}");
            assert!(seen.insert(text.to_string()));
            assert_eq!(
                recovery_code_hash(text),
                recovery_code_hash(&text.to_uppercase().replace('-', " "))
            );
        }
        assert_eq!(recovery_code_hash("123456"), None);
    }

    #[test]
    fn crockford_encodes_all_eighty_bits() {
        assert_eq!(crockford(&[0; 10]), "0000000000000000");
        assert_eq!(crockford(&[0xff; 10]), "zzzzzzzzzzzzzzzz");
        assert_eq!(
            crockford(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 33]),
            "0000000000000011"
        );
    }

    #[test]
    fn encrypted_secrets_decrypt_only_with_the_same_key_and_user() {
        let key = [7u8; 32];
        let secret = TotpSecret::generate();
        let sealed = encrypt_secret(&key, 42, &secret).unwrap_or_default();
        assert_eq!(sealed.len(), 1 + 12 + 20 + 16);
        assert_eq!(sealed[0], 1, "the sealed-value format byte");
        assert!(!sealed.windows(20).any(|w| w == secret.as_bytes()));
        assert_eq!(decrypt_secret(&key, 42, &sealed), Some(secret.clone()));
        assert_eq!(decrypt_secret(&key, 43, &sealed), None);
        assert_eq!(decrypt_secret(&[8u8; 32], 42, &sealed), None);
        let mut tampered = sealed.clone();
        if let Some(last) = tampered.last_mut() {
            *last ^= 1;
        }
        assert_eq!(decrypt_secret(&key, 42, &tampered), None);
        assert_eq!(decrypt_secret(&key, 42, &sealed[..5]), None);
        // A fresh nonce each time: the same secret never encrypts to the same bytes.
        assert_ne!(encrypt_secret(&key, 42, &secret), Some(sealed));
    }
}
