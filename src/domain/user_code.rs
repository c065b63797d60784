//! Device flow user codes (RFC 8628 §6.1): short enough to type, from an alphabet without
//! vowels (no accidental words) or look-alikes (no 0/O, 1/I/L, 5/S).

use super::secret::random_bytes;

/// Twenty consonants, the RFC's example alphabet: 8 characters give 20^8 ≈ 2^34.6 codes,
/// enough with a 5-minute lifetime and rate-limited guessing (RFC 8628 §5.1).
pub const ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
pub const LEN: usize = 8;

/// A new code, shown as `XXXX-XXXX`.
pub fn generate() -> String {
    let mut code = String::with_capacity(LEN + 1);
    // Rejection sampling keeps every letter equally likely (256 is not a multiple of 20).
    let mut produced = 0;
    while produced < LEN {
        for b in random_bytes::<16>() {
            if b < 240 && produced < LEN {
                if produced == LEN / 2 {
                    code.push('-');
                }
                code.push(ALPHABET[usize::from(b % 20)] as char);
                produced += 1;
            }
        }
    }
    code
}

/// The canonical form of what a person typed: upper-cased, dashes and spaces removed.
/// `None` when it cannot be a code (wrong length or letters outside the alphabet).
pub fn normalize(input: &str) -> Option<String> {
    let code: String = input
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '\t'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == LEN && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_eight_letters_of_the_alphabet_with_a_dash() {
        for _ in 0..50 {
            let code = generate();
            assert_eq!(code.len(), 9);
            assert_eq!(&code[4..5], "-");
            assert_eq!(normalize(&code).map(|c| c.len()), Some(8));
        }
    }

    #[test]
    fn typed_codes_are_normalized() {
        assert_eq!(normalize("wdjb-mjht").as_deref(), Some("WDJBMJHT"));
        assert_eq!(normalize(" WDJB MJHT ").as_deref(), Some("WDJBMJHT"));
        assert_eq!(normalize("WDJB-MJH"), None);
        assert_eq!(
            normalize("WDJB-MJHA"),
            None,
            "vowels are not in the alphabet"
        );
        assert_eq!(normalize("0DJB-MJHT"), None);
    }
}
