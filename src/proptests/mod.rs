//! Property tests of every parser and matcher (issue 10, "Proving it"): arbitrary input never
//! panics and is never refused with a 5xx, and each parser keeps the promise its own module
//! makes (round trips, exact matching, idempotent normalisation, refused controls).
//!
//! Each file tests one area through the functions the handlers call: `params` (form, JSON and
//! query parsing, the request-target check, the refusal sinks, OpenID's `prompt` and the
//! sign-in `return_to`), `basic` (HTTP Basic client credentials), `bearer` (the presented
//! access token and its challenges), `dpop` (DPoP proofs), `client_jwts` (client assertions, request objects and
//! registered key sets), `redirect_uri`, `scope`, `pkce`,
//! `user_code` (the device flow), `totp` (two-factor codes and recovery codes) and `groups`
//! (group paths, settings, visibility, access levels, membership expiry dates).

mod basic;
mod bearer;
mod client_jwts;
mod dpop;
mod groups;
mod params;
mod pkce;
mod redirect_uri;
mod scope;
mod totp;
mod user_code;

use proptest::prelude::*;
use proptest::test_runner::Config;

/// The runner's settings: `cases` inputs, and no regression files written into the source
/// tree (a failure prints its minimal input, which belongs in a unit test).
pub(crate) fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// One character as a hostile client would send it: mostly printable ASCII, the delimiters
/// of forms, URLs and headers, every C0 and C1 control, and anything else Unicode has.
pub(crate) fn hostile_char() -> impl Strategy<Value = char> {
    prop_oneof![
        6 => proptest::char::range(' ', '~'),
        3 => prop::sample::select(vec![
            '&', '=', '%', '+', ';', ':', ',', '#', '?', '/', '\\', '"', '\'', ' ', '\t', '\n',
            '\r', '\0', '-', '.', '_', '~', '@',
        ]),
        1 => proptest::char::range('\0', '\u{1f}'),
        1 => proptest::char::range('\u{7f}', '\u{9f}'),
        1 => prop::sample::select(vec!['\u{feff}', '\u{200b}', '\u{fffd}', '\u{2028}', 'é', 'ß', 'İ', '𝔘']),
        1 => any::<char>(),
    ]
}

/// A string of up to `max` hostile characters.
pub(crate) fn hostile_string(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(hostile_char(), 0..=max).prop_map(|chars| chars.into_iter().collect())
}

/// A hostile string without the characters the parsers refuse (see
/// [`crate::http::body::is_refused_control`]): what a well-behaved client may send.
pub(crate) fn clean_string(max: usize) -> impl Strategy<Value = String> {
    hostile_string(max).prop_map(|s| {
        s.chars()
            .filter(|c| !crate::http::body::is_refused_control(*c))
            .collect()
    })
}

/// A refused character: a C0 or C1 control or DEL, but not tab, line feed or carriage return.
pub(crate) fn refused_control() -> impl Strategy<Value = char> {
    prop_oneof![
        proptest::char::range('\0', '\u{8}'),
        proptest::char::range('\u{b}', '\u{c}'),
        proptest::char::range('\u{e}', '\u{1f}'),
        proptest::char::range('\u{7f}', '\u{9f}'),
    ]
}

/// One piece of something shaped like a form body or a query string: names, delimiters,
/// percent escapes (valid, truncated or of any byte) and raw bytes of any value.
fn form_token() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => "[a-z_\\[\\]]{1,8}".prop_map(String::into_bytes),
        3 => Just(b"&".to_vec()),
        3 => Just(b"=".to_vec()),
        1 => Just(b"+".to_vec()),
        3 => any::<u8>().prop_map(|b| format!("%{b:02X}").into_bytes()),
        1 => any::<u8>().prop_map(|b| format!("%{b:02x}").into_bytes()),
        1 => "%[0-9A-Za-z]?".prop_map(String::into_bytes),
        2 => any::<u8>().prop_map(|b| vec![b]),
        1 => hostile_string(4).prop_map(String::into_bytes),
    ]
}

/// Bytes shaped like a form body or a query string.
pub(crate) fn form_like_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(form_token(), 0..24).prop_map(|pieces| pieces.concat())
}

/// Any input a body or query could hold: structured like a form, or plain random bytes.
pub(crate) fn input_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => form_like_bytes(),
        1 => prop::collection::vec(any::<u8>(), 0..256),
    ]
}

/// `application/x-www-form-urlencoded` encoding of one value, as clients send it.
pub(crate) fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
