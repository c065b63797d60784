//! Device flow user codes (`domain::user_code`, RFC 8628 §6.1): the normaliser is total,
//! idempotent, and forgiving only of case, dashes and spaces.

use proptest::prelude::*;

use super::{config, hostile_string};
use crate::domain::user_code::{ALPHABET, LEN, generate, normalize};

fn code() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(ALPHABET.to_vec()), LEN)
        .prop_map(|letters| letters.into_iter().map(char::from).collect())
}

/// How a person might type `code`: any letter in lower case, and dashes, spaces and tabs
/// anywhere.
fn typed(code: &str, lower: &[bool], noise: &[(usize, char)]) -> String {
    let mut chars: Vec<char> = code
        .chars()
        .zip(lower.iter().cycle())
        .map(|(c, l)| if *l { c.to_ascii_lowercase() } else { c })
        .collect();
    for (at, c) in noise {
        chars.insert(at % (chars.len() + 1), *c);
    }
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(config(512))]

    /// Any text: no panic; a result is eight letters of the alphabet, and normalising it
    /// again changes nothing.
    #[test]
    fn normalisation_is_total_and_idempotent(input in prop_oneof![
        hostile_string(16),
        (code(), hostile_string(3), any::<prop::sample::Index>()).prop_map(|(c, extra, at)| {
            let mut chars: Vec<char> = c.chars().collect();
            let i = at.index(chars.len() + 1);
            for (k, x) in extra.chars().enumerate() {
                chars.insert((i + k).min(chars.len()), x);
            }
            chars.into_iter().collect()
        }),
    ]) {
        if let Some(code) = normalize(&input) {
            prop_assert_eq!(code.len(), LEN);
            prop_assert!(code.bytes().all(|b| ALPHABET.contains(&b)));
            prop_assert_eq!(normalize(&code), Some(code.clone()));
            // Only case and separators were dropped from what was typed.
            let kept: String = input
                .chars()
                .filter(|c| !matches!(c, '-' | ' ' | '\t'))
                .map(|c| c.to_ascii_uppercase())
                .collect();
            prop_assert_eq!(kept, code);
        }
    }

    /// Every way of typing a code (case, dashes, spaces, tabs) gives that code back.
    #[test]
    fn typing_variations_give_the_same_code(
        c in code(),
        lower in prop::collection::vec(any::<bool>(), 1..8),
        noise in prop::collection::vec((any::<usize>(), prop::sample::select(vec!['-', ' ', '\t'])), 0..6),
    ) {
        prop_assert_eq!(normalize(&typed(&c, &lower, &noise)), Some(c.clone()));
        let shown = format!("{}-{}", &c[..4], &c[4..]);
        prop_assert_eq!(normalize(&shown), Some(c));
    }

    /// A letter outside the alphabet (a vowel, a look-alike digit, anything else), a letter
    /// more or a letter less: not a code.
    #[test]
    fn anything_else_is_not_a_code(
        c in code(),
        at in any::<prop::sample::Index>(),
        wrong in prop_oneof![
            prop::sample::select("AEIOUYaeiouy015".chars().collect::<Vec<_>>()),
            proptest::char::range('\u{80}', '\u{10ffff}'),
            prop::sample::select(vec!['\0', '\n', '_', '.', '+']),
        ],
        drop_one in any::<bool>(),
    ) {
        let mut chars: Vec<char> = c.chars().collect();
        let i = at.index(LEN);
        chars[i] = wrong;
        prop_assert_eq!(normalize(&chars.iter().collect::<String>()), None);
        let mut short: Vec<char> = c.chars().collect();
        if drop_one {
            short.remove(i);
        } else {
            short.insert(i, 'B');
        }
        prop_assert_eq!(normalize(&short.iter().collect::<String>()), None);
    }
}

/// Generated codes are codes, shown as `XXXX-XXXX`.
#[test]
fn generated_codes_normalise_to_themselves() {
    for _ in 0..200 {
        let shown = generate();
        let code = normalize(&shown).unwrap();
        assert_eq!(shown, format!("{}-{}", &code[..4], &code[4..]));
        assert_eq!(
            normalize(&shown.to_lowercase().replace('-', " ")),
            Some(code)
        );
    }
}
