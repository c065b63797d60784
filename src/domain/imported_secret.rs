//! The stored forms of secrets in a GitLab (doorkeeper) database, as the import reads them
//! and as a presented token or client secret is checked against them (issue 16; spec §2.2).
//! GitLab's `Gitlab::DoorkeeperSecretStoring` wrote three forms over the years, and an old
//! instance keeps them side by side: plaintext, PBKDF2-HMAC-SHA512 (20,000 iterations, empty
//! salt, 64-byte key, in passlib's `$pbkdf2-sha512$20000$$<checksum>`), and SHA-512 hex.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use sha2::{Digest, Sha512};

use super::secret;

/// The PHC-like prefix GitLab writes before a PBKDF2 checksum.
const PBKDF2_PREFIX: &str = "$pbkdf2-sha512$20000$$";
/// GitLab's iteration count (`Gitlab::DoorkeeperSecretStoring::Pbkdf2Sha512`).
const PBKDF2_ITERATIONS: u32 = 20_000;

/// How a source row keeps a secret. The numbers are the `form` column of
/// `imported_credentials`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoredForm {
    Plain = 0,
    Sha512 = 1,
    Pbkdf2 = 2,
}

impl StoredForm {
    /// Tells the form from the stored text, as GitLab's fallback lookup does: 128 lowercase
    /// hex is a SHA-512 digest, the passlib prefix PBKDF2, anything else plaintext.
    pub fn of(stored: &str) -> StoredForm {
        if is_sha512_hex(stored) {
            StoredForm::Sha512
        } else if stored.starts_with(PBKDF2_PREFIX) {
            StoredForm::Pbkdf2
        } else {
            StoredForm::Plain
        }
    }

    pub fn code(self) -> i16 {
        self as i16
    }

    pub fn name(self) -> &'static str {
        match self {
            StoredForm::Plain => "plain",
            StoredForm::Sha512 => "sha512",
            StoredForm::Pbkdf2 => "pbkdf2",
        }
    }
}

fn is_sha512_hex(text: &str) -> bool {
    text.len() == 128
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// True when `presented` is itself a stored form: someone holding a copy of the source
/// database must not be able to present what it holds (GitLab skips these inputs too).
pub fn is_stored_form(presented: &str) -> bool {
    StoredForm::of(presented) != StoredForm::Plain
}

/// True for a value shaped as doorkeeper makes them: 64 lowercase hex (GitLab's
/// `SecureRandom.hex(32)`: tokens, older secrets), optionally after a secret prefix ending in
/// `gloas-`, or 43 base64url characters (doorkeeper's default `urlsafe_base64(32)`, as the
/// PBKDF2 test vector). Only such values are worth the cost of a PBKDF2 (spec §2.1, §2.2).
pub fn is_doorkeeper_shaped(value: &str) -> bool {
    let body = value.rsplit_once("gloas-").map_or(value, |(_, body)| body);
    let hex = body.len() == 64
        && body
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let base64url = value.len() == 43
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    hex || base64url
}

/// The `secret_hash` of an application imported with a hashed secret until that secret is
/// first presented: no SHA-256 is all zeros, so nothing matches it natively, and any change
/// of the secret (renewal, a switch to `private_key_jwt`) replaces it, which ends the
/// imported forms' validity with it.
pub const IMPORTED_SECRET_MARKER: [u8; 32] = [0; 32];

/// `SHA512(plain).hexdigest`, GitLab's current form.
pub fn sha512_hex(plain: &str) -> String {
    hex::encode(Sha512::digest(plain.as_bytes()))
}

/// GitLab's PBKDF2 form of `plain`. About 20,000 HMAC-SHA512 computations (milliseconds of
/// CPU): callers run it off the async threads.
pub fn pbkdf2_form(plain: &str) -> String {
    let mut key = [0u8; 64];
    pbkdf2::pbkdf2_hmac::<Sha512>(plain.as_bytes(), b"", PBKDF2_ITERATIONS, &mut key);
    // passlib's "adapted base64": standard base64 with `.` for `+`, without padding.
    let checksum = STANDARD_NO_PAD.encode(key).replace('+', ".");
    format!("{PBKDF2_PREFIX}{checksum}")
}

/// The key under which the import records a plaintext source value: never the value.
pub fn plain_key(plain: &str) -> String {
    hex::encode(secret::hash(plain))
}

/// The `imported_credentials.stored` value for a source value: the stored form itself for
/// the hashed forms, [`plain_key`] for plaintext.
pub fn record_key(stored: &str) -> (StoredForm, String) {
    match StoredForm::of(stored) {
        StoredForm::Plain => (StoredForm::Plain, plain_key(stored)),
        form => (form, stored.to_string()),
    }
}

/// True when `presented` is the secret whose stored form is `stored` (constant time in the
/// compared digests). Plaintext compares hashes, so lengths leak nothing either.
pub fn matches(stored: &str, presented: &str) -> bool {
    if is_stored_form(presented) {
        return false;
    }
    let computed = match StoredForm::of(stored) {
        StoredForm::Plain => {
            return secret::constant_time_eq(&secret::hash(stored), &secret::hash(presented));
        }
        StoredForm::Sha512 => sha512_hex(presented),
        StoredForm::Pbkdf2 => pbkdf2_form(presented),
    };
    secret::constant_time_eq(computed.as_bytes(), stored.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// gitlabhq `spec/lib/gitlab/doorkeeper_secret_storing/token/pbkdf2_sha512_spec.rb`.
    const PLAIN: &str = "CzOBzBfU9F-HvsqfTaTXF4ivuuxYZuv3BoAK4pnvmyw";
    const PBKDF2: &str = "$pbkdf2-sha512$20000$$.c0G5XJVEew1TyeJk5TrkvB0VyOaTmDzPrsdNRED9vVeZlSyuG3G90F0ow23zUCiWKAVwmNnR/ceh.nJG3MdpQ";

    #[test]
    fn pbkdf2_matches_gitlabs_test_vector() {
        assert_eq!(pbkdf2_form(PLAIN), PBKDF2);
        assert_eq!(StoredForm::of(PBKDF2), StoredForm::Pbkdf2);
        assert!(matches(PBKDF2, PLAIN));
        assert!(!matches(
            PBKDF2,
            "CzOBzBfU9F-HvsqfTaTXF4ivuuxYZuv3BoAK4pnvmyx"
        ));
    }

    #[test]
    fn sha512_and_plain_forms_verify_and_the_stored_form_is_refused() {
        let token = "a".repeat(64);
        let stored = sha512_hex(&token);
        assert_eq!(stored.len(), 128);
        assert_eq!(StoredForm::of(&stored), StoredForm::Sha512);
        assert!(matches(&stored, &token));
        assert!(!matches(&stored, &stored), "the digest itself is no secret");
        assert!(!matches(PBKDF2, PBKDF2));
        assert_eq!(StoredForm::of(&token), StoredForm::Plain);
        assert!(matches(&token, &token));
        assert!(!matches(&token, &"b".repeat(64)));
        // A plaintext source that happens to hold a hash-shaped value cannot be matched by
        // presenting it: presented stored forms are refused before any comparison.
        assert!(!matches(&stored.to_uppercase(), &stored));
    }

    #[test]
    fn doorkeeper_shapes() {
        let hex = "0123456789abcdef".repeat(4);
        assert!(is_doorkeeper_shaped(&hex));
        assert!(is_doorkeeper_shaped(&format!("gloas-{hex}")));
        assert!(is_doorkeeper_shaped(&format!("acmegloas-{hex}")));
        assert!(is_doorkeeper_shaped(PLAIN));
        assert!(!is_doorkeeper_shaped(&hex.to_uppercase()));
        assert!(!is_doorkeeper_shaped(&hex[1..]));
        assert!(!is_doorkeeper_shaped(&PLAIN[1..]));
        assert!(!is_doorkeeper_shaped(&format!("{PLAIN}=")));
    }

    #[test]
    fn plaintext_values_are_recorded_by_their_hash_only() {
        let (form, key) = record_key("plain-secret");
        assert_eq!(form, StoredForm::Plain);
        assert_eq!(key, hex::encode(secret::hash("plain-secret")));
        assert_eq!(record_key(PBKDF2), (StoredForm::Pbkdf2, PBKDF2.to_string()));
    }
}
