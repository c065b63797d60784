//! HTTP Basic client credentials (`oauth::client_auth::presented`, RFC 6749 §2.3.1): what
//! any `Authorization` header decodes to, and the round trip of what clients encode.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::IntoResponse;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;

use super::{clean_string, config, hostile_string, refused_control, urlencode};
use crate::http::body::is_refused_control;
use crate::oauth::client_auth::{PresentedCredentials, presented};
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::oauth::params::Params;
use crate::oauth::response::TokenError;

fn with_authorization(value: &[u8]) -> Option<HeaderMap> {
    let value = HeaderValue::from_bytes(value).ok()?;
    let mut headers = HeaderMap::new();
    headers.insert(header::AUTHORIZATION, value);
    Some(headers)
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))`, as openid-client and authlib send it.
fn basic(scheme: &str, id: &str, secret: &str) -> HeaderMap {
    let encoded = STANDARD.encode(format!("{}:{}", urlencode(id), urlencode(secret)));
    with_authorization(format!("{scheme} {encoded}").as_bytes()).unwrap()
}

/// Every refusal is `invalid_client` (401) or `invalid_request` (400): never a 5xx.
fn assert_client_error(e: OAuthError) -> Result<(), TestCaseError> {
    prop_assert!(
        matches!(e.code, ErrorCode::InvalidClient | ErrorCode::InvalidRequest),
        "{e:?}"
    );
    let status = TokenError(e).into_response().status();
    prop_assert!(status == 400 || status == 401, "{status}");
    Ok(())
}

fn assert_clean(creds: &PresentedCredentials) -> Result<(), TestCaseError> {
    prop_assert!(
        !creds.client_id.chars().any(is_refused_control),
        "{creds:?}"
    );
    prop_assert!(
        !creds
            .secret
            .as_deref()
            .unwrap_or_default()
            .chars()
            .any(is_refused_control),
        "{creds:?}"
    );
    Ok(())
}

proptest! {
    #![proptest_config(config(512))]

    /// Any header value at all: no panic; a refusal is a 4xx; decoded credentials never
    /// carry a control character to the lookup.
    #[test]
    fn any_authorization_header(
        value in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..64),
            (prop::sample::select(vec!["Basic", "basic", "BASIC", "Bearer", "Basic  ", ""]),
             prop::collection::vec(any::<u8>(), 0..48))
                .prop_map(|(scheme, rest)| [scheme.as_bytes(), b" ", &rest].concat()),
            (prop::sample::select(vec!["Basic ", "basic ", " Basic "]), prop::collection::vec(any::<u8>(), 0..48))
                .prop_map(|(scheme, raw)| format!("{scheme}{}", STANDARD.encode(raw)).into_bytes()),
        ],
        body in prop_oneof![
            Just(String::new()),
            Just("client_id=a".to_string()),
            Just("client_secret=b".to_string()),
            clean_string(16).prop_map(|id| format!("client_id={}", urlencode(&id))),
        ],
    ) {
        // A value hyper would not accept never reaches us.
        let Some(headers) = with_authorization(&value) else { return Ok(()) };
        let params = Params::from_form(body.as_bytes()).unwrap();
        match presented(&headers, &params) {
            Ok(Some(creds)) => assert_clean(&creds)?,
            Ok(None) => {}
            Err(e) => assert_client_error(e)?,
        }
    }

    /// Whatever the client's id and secret (any text without controls: colons, `+`, `%`,
    /// spaces, non-ASCII), form-urlencoding each before base64 round-trips exactly, with any
    /// case of the scheme and whitespace around the credentials.
    #[test]
    fn encoded_credentials_round_trip(
        id in clean_string(24),
        secret in clean_string(48),
        scheme in prop::sample::select(vec!["Basic", "basic", "BASIC", "bAsIc"]),
        padded in any::<bool>(),
        same_id_in_body in any::<bool>(),
    ) {
        let headers = if padded {
            let encoded = STANDARD.encode(format!("{}:{}", urlencode(&id), urlencode(&secret)));
            with_authorization(format!("{scheme}   {encoded} \t").as_bytes()).unwrap()
        } else {
            basic(scheme, &id, &secret)
        };
        let body = if same_id_in_body && !id.is_empty() {
            format!("grant_type=x&client_id={}", urlencode(&id))
        } else {
            "grant_type=x".to_string()
        };
        let params = Params::from_form(body.as_bytes()).unwrap();
        let creds = presented(&headers, &params).unwrap().unwrap();
        prop_assert_eq!(creds, PresentedCredentials { client_id: id, secret: Some(secret), via_basic: true, assertion: None });
    }

    /// Unencoded credentials (what most clients actually send) decode to themselves when they
    /// hold nothing form encoding changes.
    #[test]
    fn plain_credentials_decode_to_themselves(
        id in "[A-Za-z0-9_.~-]{0,64}",
        secret in "[A-Za-z0-9_.~-]{0,64}",
    ) {
        let value = format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")));
        let headers = with_authorization(value.as_bytes()).unwrap();
        let creds = presented(&headers, &Params::default()).unwrap().unwrap();
        prop_assert_eq!(creds.client_id, id);
        prop_assert_eq!(creds.secret, Some(secret));
    }

    /// A control in the id or the secret, sent raw or percent-encoded: `invalid_client`, so a
    /// NUL never reaches the database (`Basic ADoA` is "\0:\0").
    #[test]
    fn controls_in_credentials_are_invalid_client(
        id in clean_string(12),
        secret in clean_string(12),
        control in refused_control(),
        at in 0usize..13,
        in_secret in any::<bool>(),
        encode in any::<bool>(),
    ) {
        let taint = |s: &str| {
            let mut chars: Vec<char> = s.chars().collect();
            chars.insert(at.min(chars.len()), control);
            chars.into_iter().collect::<String>()
        };
        let (id, secret) = if in_secret { (id, taint(&secret)) } else { (taint(&id), secret) };
        let headers = if encode {
            basic("Basic", &id, &secret)
        } else {
            let raw = format!("{id}:{secret}");
            with_authorization(format!("Basic {}", STANDARD.encode(raw)).as_bytes()).unwrap()
        };
        let e = presented(&headers, &Params::default()).unwrap_err();
        prop_assert_eq!(e.code, ErrorCode::InvalidClient);
    }

    /// Basic and a body secret together, or a body `client_id` that differs from Basic's:
    /// `invalid_request` (one method per request).
    #[test]
    fn one_authentication_method_per_request(
        id in "[a-z0-9]{1,16}",
        other in "[a-z0-9]{1,16}",
        secret in hostile_string(16),
    ) {
        let clean_secret: String = secret.chars().filter(|c| !is_refused_control(*c)).collect();
        let headers = basic("Basic", &id, &clean_secret);
        let both = Params::from_form(format!("client_secret={}", urlencode("x")).as_bytes()).unwrap();
        prop_assert_eq!(presented(&headers, &both).unwrap_err().code, ErrorCode::InvalidRequest);
        let other_id = Params::from_form(format!("client_id={other}").as_bytes()).unwrap();
        let verdict = presented(&headers, &other_id);
        if other == id {
            prop_assert!(verdict.is_ok());
        } else {
            prop_assert_eq!(verdict.unwrap_err().code, ErrorCode::InvalidRequest);
        }
    }
}
