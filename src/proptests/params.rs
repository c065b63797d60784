//! Form, JSON and query parsing (`http::body`, `oauth::params`, `api::input`), the check of
//! every request target, the refusals each sink sends, and the parameter values parsed
//! after them (OpenID's `prompt`/`max_age`, the sign-in page's `return_to`).

use std::collections::HashMap;

use axum::http::Uri;
use axum::response::IntoResponse;
use proptest::prelude::*;

use super::{
    clean_string, config, form_like_bytes, hostile_string, input_bytes, refused_control, urlencode,
};
use crate::http::body::{self, BodyError, is_refused_control};
use crate::http::sink::Sink;
use crate::oauth::error::ErrorCode;
use crate::oauth::params::Params;
use crate::oauth::response::TokenError;

/// A strict form like the pages' (`deny_unknown_fields`, required fields).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct SignInLike {
    authenticity_token: String,
    username: String,
    password: String,
    #[serde(default)]
    remember_me: Option<String>,
}

/// A body refusal answered by every sink: never a 5xx.
fn assert_refused_as_4xx(e: &BodyError) -> Result<(), TestCaseError> {
    prop_assert!(e.status().is_client_error(), "{e:?} is {}", e.status());
    for sink in [Sink::Api, Sink::OAuthJson, Sink::Page] {
        let status = sink.refuse(clone_error(e)).status();
        prop_assert!(
            status.is_client_error(),
            "{sink:?} answers {e:?} with {status}"
        );
    }
    Ok(())
}

fn clone_error(e: &BodyError) -> BodyError {
    match e {
        BodyError::Malformed(m) => BodyError::Malformed(m.clone()),
        BodyError::TooLarge => BodyError::TooLarge,
        BodyError::UnsupportedMediaType => BodyError::UnsupportedMediaType,
        BodyError::InvalidUtf8 => BodyError::InvalidUtf8,
        BodyError::ControlCharacter => BodyError::ControlCharacter,
        other => BodyError::Malformed(other.to_string()),
    }
}

fn has_refused_control(s: &str) -> bool {
    s.chars().any(is_refused_control)
}

/// A form body of `pairs`, each name and value form-urlencoded.
fn encode_pairs(pairs: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

proptest! {
    #![proptest_config(config(256))]

    /// Arbitrary bytes as a form body or query string: no panic, every refusal a 4xx in every
    /// sink, and what is accepted holds no refused control and no replacement character that
    /// was not sent.
    #[test]
    fn form_parsers_take_any_bytes(bytes in input_bytes()) {
        let typed = body::parse_form::<HashMap<String, String>>(&bytes);
        let strict = body::parse_form::<SignInLike>(&bytes);
        let pairs = body::parse_form_pairs(&bytes);
        for e in [typed.as_ref().err(), strict.as_ref().err(), pairs.as_ref().err()]
            .into_iter()
            .flatten()
        {
            assert_refused_as_4xx(e)?;
        }
        match &pairs {
            Ok(pairs) => {
                // Exactly what the plain decoder gives: nothing was replaced with U+FFFD.
                let lossy: Vec<(String, String)> =
                    url::form_urlencoded::parse(&bytes).into_owned().collect();
                prop_assert_eq!(pairs, &lossy);
                for (k, v) in pairs {
                    prop_assert!(!has_refused_control(k) && !has_refused_control(v), "{k:?}={v:?}");
                }
                // The typed parsers accept the same text, or refuse it as malformed (duplicates,
                // unknown or missing fields), never as bad characters.
                if let Err(e) = &typed {
                    prop_assert!(matches!(e, BodyError::Malformed(_)), "{e:?}");
                }
            }
            Err(e) => {
                prop_assert!(matches!(e, BodyError::InvalidUtf8 | BodyError::ControlCharacter), "{e:?}");
                prop_assert!(typed.is_err() && strict.is_err());
            }
        }
        // OAuth's parameters: the same verdict, refused as `invalid_request` (400).
        match Params::from_form(&bytes) {
            Ok(_) => prop_assert!(pairs.is_ok()),
            Err(e) => {
                prop_assert!(pairs.is_err());
                prop_assert_eq!(e.code, ErrorCode::InvalidRequest);
                prop_assert_eq!(TokenError(e).into_response().status().as_u16(), 400);
            }
        }
        // The API's query parser.
        if let Err(e) = crate::api::input::parse_query::<HashMap<String, String>>(std::str::from_utf8(&bytes).ok()) {
            prop_assert!(e.into_response().status().is_client_error());
        }
    }

    /// Well-formed pairs of any text (controls aside) round-trip through form encoding, in
    /// order, repeats kept; OAuth's view takes the first value and reports the repeats.
    #[test]
    fn clean_pairs_round_trip(
        pairs in prop::collection::vec(
            (prop_oneof![clean_string(12), "[a-c]".prop_map(String::from)], clean_string(24)),
            0..8,
        )
    ) {
        let encoded = encode_pairs(&pairs);
        prop_assert_eq!(body::parse_form_pairs(encoded.as_bytes()).unwrap(), pairs.clone());
        let params = Params::from_form(encoded.as_bytes()).unwrap();
        let mut first: HashMap<&str, &str> = HashMap::new();
        let mut repeated = Vec::new();
        for (k, v) in &pairs {
            if first.contains_key(k.as_str()) {
                repeated.push(k.as_str());
            } else {
                first.insert(k, v);
            }
        }
        for (k, v) in &first {
            prop_assert_eq!(params.get(k), Some(*v).filter(|v| !v.is_empty()));
            prop_assert_eq!(params.is_repeated(k), repeated.contains(k));
        }
        prop_assert_eq!(params.reject_repeated().is_err(), !repeated.is_empty());
        // The same pairs as a JSON object (without repeats: JSON keeps the last) parse alike.
        let object: serde_json::Map<String, serde_json::Value> = pairs
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        let json = serde_json::to_vec(&object).unwrap();
        let from_json = Params::from_json(&json).unwrap();
        for (k, v) in &object {
            prop_assert_eq!(from_json.get(k), v.as_str().filter(|v| !v.is_empty()));
        }
        prop_assert!(from_json.reject_repeated().is_ok());
    }

    /// A refused control anywhere, in a name or a value, raw or percent-encoded, in a form,
    /// a JSON body (escaped), a query string or a path: refused, as `ControlCharacter`.
    #[test]
    fn a_control_character_anywhere_is_refused(
        before in clean_string(8),
        after in clean_string(8),
        control in refused_control(),
        in_name in any::<bool>(),
    ) {
        let tainted = format!("{before}{control}{after}");
        let pair = if in_name {
            (tainted.clone(), "value".to_string())
        } else {
            ("name".to_string(), tainted.clone())
        };
        let form = format!("ok=1&{}", encode_pairs(std::slice::from_ref(&pair)));
        prop_assert_eq!(body::parse_form_pairs(form.as_bytes()), Err(BodyError::ControlCharacter));
        prop_assert!(Params::from_form(form.as_bytes()).is_err());
        prop_assert!(body::parse_form::<HashMap<String, String>>(form.as_bytes()).is_err());
        // JSON escapes the control (`\u0000`); it is refused all the same, nested or not.
        let json = serde_json::json!({ "ok": "1", "nested": [{ pair.0.clone(): pair.1.clone() }] });
        prop_assert_eq!(
            body::parse_json::<serde_json::Value>(json.to_string().as_bytes()),
            Err(BodyError::ControlCharacter)
        );
        let flat = serde_json::json!({ pair.0.clone(): pair.1.clone() });
        prop_assert!(Params::from_json(flat.to_string().as_bytes()).is_err());
        // The request target: in the query, and percent-encoded in the path.
        let uri: Uri = format!("/oauth/token/info?{form}").parse().unwrap();
        prop_assert_eq!(body::check_target(&uri), Err(BodyError::ControlCharacter));
        let path: String = url::form_urlencoded::byte_serialize(tainted.as_bytes())
            .collect::<String>()
            .replace('+', "%20");
        let uri: Uri = format!("/api/v4/users/{path}").parse().unwrap();
        prop_assert_eq!(body::check_target(&uri), Err(BodyError::ControlCharacter));
    }

    /// Bytes that are not UTF-8, percent-encoded in a form or a target, or raw in a body:
    /// refused as `InvalidUtf8`, never decoded with replacement characters.
    #[test]
    fn invalid_utf8_is_refused(
        prefix in "[a-z]{0,4}",
        bad in prop_oneof![
            Just(vec![0xff]),
            Just(vec![0xc0, 0xaf]),
            Just(vec![0xed, 0xa0, 0x80]),
            Just(vec![0xe2, 0x82]),
            Just(vec![0xf4, 0x90, 0x80, 0x80]),
            (0x80u8..=0xbf).prop_map(|b| vec![b]),
        ],
        in_name in any::<bool>(),
    ) {
        let escaped: String = bad.iter().map(|b| format!("%{b:02X}")).collect();
        let part = format!("{prefix}{escaped}");
        let form = if in_name { format!("{part}=x") } else { format!("x={part}") };
        prop_assert_eq!(body::parse_form_pairs(form.as_bytes()), Err(BodyError::InvalidUtf8));
        let uri: Uri = format!("/oauth/authorize?{form}").parse().unwrap();
        prop_assert_eq!(body::check_target(&uri), Err(BodyError::InvalidUtf8));
        let uri: Uri = format!("/users/{part}").parse().unwrap();
        prop_assert_eq!(body::check_target(&uri), Err(BodyError::InvalidUtf8));
        let mut raw = b"x=".to_vec();
        raw.extend_from_slice(prefix.as_bytes());
        raw.extend_from_slice(&bad);
        prop_assert_eq!(body::parse_form_pairs(&raw), Err(BodyError::InvalidUtf8));
        let mut json = br#"{"x":""#.to_vec();
        json.extend_from_slice(&bad);
        json.extend_from_slice(br#""}"#);
        prop_assert_eq!(body::parse_json::<serde_json::Value>(&json), Err(BodyError::InvalidUtf8));
    }

    /// Arbitrary bytes as a JSON body, and JSON documents of hostile text: no panic, refusals
    /// are 4xx, and an accepted document holds no refused control in any key or string.
    #[test]
    fn json_parsers_take_any_bytes(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..128),
            prop::collection::vec((hostile_string(10), hostile_string(16)), 0..5).prop_map(|pairs| {
                let map: serde_json::Map<String, serde_json::Value> =
                    pairs.into_iter().map(|(k, v)| (k, serde_json::Value::String(v))).collect();
                serde_json::to_vec(&map).unwrap()
            }),
            prop::collection::vec((hostile_string(6), any::<i64>(), any::<bool>()), 0..4).prop_map(|items| {
                let value: Vec<serde_json::Value> = items
                    .into_iter()
                    .map(|(k, n, b)| serde_json::json!({ k: [n, b, null, {"x": 1.5}] }))
                    .collect();
                serde_json::to_vec(&value).unwrap()
            }),
        ]
    ) {
        match body::parse_json::<serde_json::Value>(&bytes) {
            Ok(value) => {
                fn clean(v: &serde_json::Value) -> bool {
                    match v {
                        serde_json::Value::String(s) => !has_refused_control(s),
                        serde_json::Value::Array(items) => items.iter().all(clean),
                        serde_json::Value::Object(map) => {
                            map.iter().all(|(k, v)| !has_refused_control(k) && clean(v))
                        }
                        _ => true,
                    }
                }
                prop_assert!(clean(&value));
            }
            Err(e) => assert_refused_as_4xx(&e)?,
        }
        if let Err(e) = body::parse_json::<SignInLike>(&bytes) {
            assert_refused_as_4xx(&e)?;
        }
        if let Err(e) = Params::from_json(&bytes) {
            prop_assert_eq!(e.code, ErrorCode::InvalidRequest);
            prop_assert_eq!(TokenError(e).into_response().status().as_u16(), 400);
        }
    }

    /// Any request target the HTTP layer accepts: `check_target` does not panic, refuses with
    /// a 4xx, and passes only targets whose decoded path and query components are clean UTF-8.
    #[test]
    fn request_targets(path in form_like_bytes(), query in proptest::option::of(form_like_bytes())) {
        let mut target = b"/".to_vec();
        target.extend(path.iter().filter(|b| !matches!(b, b'?' | b'#')));
        if let Some(q) = &query {
            target.push(b'?');
            target.extend(q.iter().filter(|b| **b != b'#'));
        }
        let Ok(uri) = Uri::try_from(target.as_slice()) else {
            // hyper refuses such a target with 400 before any of our code runs.
            return Ok(());
        };
        match body::check_target(&uri) {
            Ok(()) => {
                let decoded = percent_encoding::percent_decode(uri.path().as_bytes()).decode_utf8();
                prop_assert!(decoded.is_ok_and(|p| !has_refused_control(&p)));
                if let Some(q) = uri.query() {
                    prop_assert!(body::parse_form_pairs(q.as_bytes()).is_ok());
                }
            }
            Err(e) => assert_refused_as_4xx(&e)?,
        }
        let _ = Sink::for_path(uri.path());
    }

    /// Each decoded component is UTF-8 or refused; decoding never panics.
    #[test]
    fn components_decode_or_are_refused(part in input_bytes()) {
        match body::decode_component(&part) {
            Ok(text) => {
                let plus_free: Vec<u8> =
                    part.iter().map(|&b| if b == b'+' { b' ' } else { b }).collect();
                let expected: Vec<u8> = percent_encoding::percent_decode(&plus_free).collect();
                prop_assert_eq!(text.as_bytes(), expected.as_slice());
            }
            Err(e) => prop_assert_eq!(e, BodyError::InvalidUtf8),
        }
    }

    /// OpenID's `prompt`, `max_age`, `login_hint` of any authorization request: no panic,
    /// refusals are `invalid_request`, and what is accepted is consistent.
    #[test]
    fn oidc_prompt_parameters(
        prompt in proptest::option::of(prop_oneof![
            prop::collection::vec(
                prop::sample::select(vec!["none", "login", "consent", "select_account", "", "NONE"]),
                0..4,
            ).prop_map(|v| v.join(" ")),
            clean_string(12),
        ]),
        max_age in proptest::option::of(prop_oneof![any::<i64>().prop_map(|n| n.to_string()), clean_string(8)]),
        hint in proptest::option::of(clean_string(300)),
    ) {
        let mut pairs = Vec::new();
        for (k, v) in [("prompt", &prompt), ("max_age", &max_age), ("login_hint", &hint)] {
            if let Some(v) = v {
                pairs.push((k.to_string(), v.clone()));
            }
        }
        let params = Params::from_form(encode_pairs(&pairs).as_bytes()).unwrap();
        match crate::oidc::prompt::parse(&params) {
            Ok(p) => {
                prop_assert!(!(p.none && (p.login || p.consent)));
                prop_assert!(p.max_age.is_none_or(|a| a >= 0));
                prop_assert!(p.login_hint.is_none_or(|h| !h.is_empty() && h.len() <= 255));
                // The sign-in detour it may cause is a local path for any hint.
                let url = crate::oidc::prompt::sign_in_url(&encode_pairs(&pairs), hint.as_deref(), Some(1));
                prop_assert!(url.starts_with("/users/sign_in?return_to=/oauth/authorize%3F"));
                prop_assert!(!url.chars().any(|c| c.is_control() || c.is_whitespace()), "{url}");
            }
            Err(e) => prop_assert_eq!(e.code, ErrorCode::InvalidRequest),
        }
    }

    /// The sign-in page's `return_to`: only a local path is kept, whatever is sent.
    #[test]
    fn return_to_is_only_ever_a_local_path(raw in prop_oneof![
        hostile_string(24),
        hostile_string(24).prop_map(|s| format!("/{s}")),
        hostile_string(24).prop_map(|s| format!("//{s}")),
    ]) {
        if let Some(kept) = crate::web::sign_in::safe_return_to(&raw) {
            prop_assert_eq!(&kept, &raw);
            prop_assert!(kept.starts_with('/') && !kept.starts_with("//"));
            prop_assert!(!kept.contains('\\'));
            prop_assert!(!kept.chars().any(|c| c.is_control() || c.is_whitespace()));
            // Resolved against any origin, it stays on that origin.
            let base = url::Url::parse("https://doorward.example/").unwrap();
            let resolved = base.join(&kept).unwrap();
            prop_assert_eq!(resolved.origin(), base.origin());
        }
    }
}

/// The refusal helper itself refuses the one status it must not see.
#[test]
fn every_parsing_refusal_is_a_client_error() {
    for e in [
        BodyError::TooLarge,
        BodyError::UnsupportedMediaType,
        BodyError::InvalidUtf8,
        BodyError::ControlCharacter,
        BodyError::Malformed("x".into()),
    ] {
        assert!(e.status().is_client_error(), "{e:?}");
    }
    assert_eq!(urlencode("a b&c"), "a+b%26c");
}
