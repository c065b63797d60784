//! Two-factor input (`domain::two_factor`): what a person types into the code field is a
//! six-digit code, a recovery code in canonical form, or malformed, never a panic; codes
//! verify at their own time and step; secrets round-trip through base32.

use proptest::prelude::*;

use super::{config, hostile_string};
use crate::domain::two_factor::{
    Attempt, DIGITS, TotpSecret, classify, code_at, generate_recovery_codes, recovery_code_hash,
    step_of, verify_code,
};

/// Crockford's base32, as recovery codes are written (the module's own alphabet is private).
const CROCKFORD: &str = "0123456789abcdefghjkmnpqrstvwxyz";

fn secret() -> impl Strategy<Value = TotpSecret> {
    prop::collection::vec(any::<u8>(), 16..64).prop_map(|b| TotpSecret::from_bytes(&b))
}

/// A Unix time from 1970 to about 2100.
fn time() -> impl Strategy<Value = i64> {
    0i64..4_102_444_800
}

/// A recovery code as shown, then retyped: any case, dashes and spaces anywhere, and the
/// look-alikes Crockford reads as digits (`i`, `l` for 1, `o` for 0).
fn retyped(canonical: &str, upper: &[bool], noise: &[(usize, char)], lookalike: bool) -> String {
    let mut chars: Vec<char> = canonical
        .chars()
        .zip(upper.iter().cycle())
        .map(|(c, up)| {
            let c = match (lookalike, c) {
                (true, '1') => 'l',
                (true, '0') => 'O',
                _ => c,
            };
            if *up { c.to_ascii_uppercase() } else { c }
        })
        .collect();
    for (at, c) in noise {
        chars.insert(at % (chars.len() + 1), *c);
    }
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(config(512))]

    /// Any input: no panic; a code is six ASCII digits; a recovery code is sixteen symbols of
    /// Crockford's alphabet; classifying the canonical form again gives it back.
    #[test]
    fn any_input_is_classified(input in prop_oneof![
        hostile_string(24),
        "[0-9 -]{4,10}",
        "[0-9A-Za-z -]{14,22}",
    ]) {
        match classify(&input) {
            Attempt::Code(code) => {
                prop_assert_eq!(code.len(), usize::from(DIGITS));
                prop_assert!(code.bytes().all(|b| b.is_ascii_digit()));
                prop_assert_eq!(classify(&code), Attempt::Code(code.clone()));
            }
            Attempt::RecoveryCode(canonical) => {
                prop_assert_eq!(canonical.len(), 16);
                prop_assert!(canonical.chars().all(|c| CROCKFORD.contains(c)));
                prop_assert_eq!(classify(&canonical), Attempt::RecoveryCode(canonical.clone()));
                prop_assert!(recovery_code_hash(&input).is_some());
            }
            Attempt::Malformed => prop_assert_eq!(recovery_code_hash(&input), None),
        }
    }

    /// A recovery code retyped in any case, with any separators and look-alikes, is the same
    /// code: same canonical form, same stored hash.
    #[test]
    fn recovery_codes_survive_retyping(
        pick in 0usize..10,
        upper in prop::collection::vec(any::<bool>(), 1..8),
        noise in prop::collection::vec((any::<usize>(), prop::sample::select(vec!['-', ' ', '\t', '\n'])), 0..6),
        lookalike in any::<bool>(),
    ) {
        let codes = generate_recovery_codes();
        let shown = codes[pick].expose();
        let Attempt::RecoveryCode(canonical) = classify(shown) else {
            return Err(TestCaseError::fail(format!("{shown} is not a recovery code")));
        };
        let again = retyped(&canonical, &upper, &noise, lookalike);
        prop_assert_eq!(classify(&again), Attempt::RecoveryCode(canonical.clone()));
        prop_assert_eq!(recovery_code_hash(&again), recovery_code_hash(shown));
    }

    /// The code for a moment verifies at that moment, in that step; the same digits with
    /// anything else typed in never verify; and arbitrary text at any time never panics.
    #[test]
    fn codes_verify_at_their_own_time(s in secret(), t in time(), junk in hostile_string(10), any_time in any::<i64>()) {
        let code = code_at(&s, t).unwrap();
        prop_assert_eq!(code.len(), usize::from(DIGITS));
        // The step reported is this one, or (when two neighbouring steps happen to share
        // their six digits) a neighbour whose code is the same digits.
        let same_digits = |step: i64| code_at(&s, step * 30).as_deref() == Some(code.as_str());
        let step = verify_code(&s, &code, t).unwrap();
        prop_assert!((step - step_of(t)).abs() <= 1 && same_digits(step), "{step} for {t}");
        // One step of skew either way, not more.
        for later in [t + 30, t + 60, t + 90] {
            if let Some(step) = verify_code(&s, &code, later) {
                prop_assert!((step - step_of(later)).abs() <= 1 && same_digits(step));
            }
        }
        prop_assert_eq!(verify_code(&s, &format!("{code}{junk}"), t).is_some(), junk.is_empty());
        let _ = verify_code(&s, &junk, any_time);
        let _ = code_at(&s, any_time);
        let _ = step_of(any_time);
    }

    /// Base32 secrets: any text reads as a secret or as nothing, never a panic; a secret's
    /// base32 form reads back as the same secret, in any case and with spaces.
    #[test]
    fn secrets_round_trip_through_base32(s in secret(), text in hostile_string(40), spaced in any::<bool>()) {
        let _ = TotpSecret::from_base32(&text);
        let b32 = s.base32();
        prop_assert_eq!(TotpSecret::from_base32(&b32), Some(s.clone()));
        let typed: String = if spaced {
            b32.to_lowercase()
                .chars()
                .enumerate()
                .flat_map(|(i, c)| if i % 4 == 3 { vec![c, ' '] } else { vec![c] })
                .collect()
        } else {
            b32.to_lowercase()
        };
        prop_assert_eq!(TotpSecret::from_base32(&typed), Some(s));
    }
}
