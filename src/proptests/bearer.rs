//! The presented access token (`oauth::bearer::presented`, RFC 6750 §2) and its challenges:
//! any header, query or body gives one token, `Missing` or `SeveralMethods`, never a panic;
//! exactly one carrier gives exactly its token.

use axum::http::{HeaderMap, HeaderValue, Uri, header};
use proptest::prelude::*;

use super::{config, form_like_bytes, hostile_string, urlencode};
use crate::oauth::bearer::{Challenge, Methods, PresentError, RequestTarget, presented};

const ALL_METHODS: [Methods; 4] = [
    Methods::HEADER_OR_QUERY,
    Methods::RFC6750,
    Methods::HEADER,
    Methods::GITLAB_API,
];

/// The places a token can travel, one flag each.
#[derive(Clone, Copy, Debug)]
struct Carriers {
    authorization: bool,
    query_access_token: bool,
    body_access_token: bool,
    private_token_header: bool,
    private_token_query: bool,
}

impl Carriers {
    /// How many of these `allowed` reads.
    fn read_by(self, allowed: Methods) -> usize {
        [
            self.authorization && allowed.header,
            self.query_access_token && allowed.query,
            self.body_access_token && allowed.body,
            self.private_token_header && allowed.gitlab_private_token,
            self.private_token_query && allowed.gitlab_private_token,
        ]
        .into_iter()
        .filter(|b| *b)
        .count()
    }
}

fn carriers() -> impl Strategy<Value = Carriers> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(a, q, b, h, p)| Carriers {
            authorization: a,
            query_access_token: q,
            body_access_token: b,
            private_token_header: h,
            private_token_query: p,
        })
}

proptest! {
    #![proptest_config(config(512))]

    /// Any `Authorization` and `PRIVATE-TOKEN` value, any query and any form body: no panic,
    /// and a token read is never empty.
    #[test]
    fn any_request_presents_at_most_one_token(
        authorization in proptest::option::of(prop_oneof![
            prop::collection::vec(any::<u8>(), 0..48),
            (prop::sample::select(vec!["Bearer", "bearer", "BEARER", "Basic", "Token", ""]),
             prop::collection::vec(any::<u8>(), 0..40))
                .prop_map(|(scheme, rest)| [scheme.as_bytes(), b" ", &rest].concat()),
        ]),
        private_token in proptest::option::of(prop::collection::vec(any::<u8>(), 0..40)),
        query in proptest::option::of(prop_oneof![
            form_like_bytes(),
            (prop::sample::select(vec!["access_token", "private_token"]), form_like_bytes())
                .prop_map(|(name, value)| [name.as_bytes(), b"=", &value].concat()),
        ]),
        body in prop::collection::vec(
            (prop::sample::select(vec!["access_token".to_string(), "x".to_string()]), hostile_string(12)),
            0..3,
        ),
    ) {
        let mut headers = HeaderMap::new();
        if let Some(v) = authorization.and_then(|v| HeaderValue::from_bytes(&v).ok()) {
            headers.insert(header::AUTHORIZATION, v);
        }
        if let Some(v) = private_token.and_then(|v| HeaderValue::from_bytes(&v).ok()) {
            headers.insert("private-token", v);
        }
        let mut target = b"/api/v4/user".to_vec();
        if let Some(q) = query {
            target.push(b'?');
            target.extend(q.into_iter().filter(|b| *b != b'#'));
        }
        // A target hyper would refuse never reaches us.
        let Ok(uri) = Uri::try_from(target.as_slice()) else { return Ok(()) };
        let parts = RequestTarget { uri: &uri, headers: &headers };
        for allowed in ALL_METHODS {
            match presented(&parts, Some(&body), allowed) {
                Ok(token) => prop_assert!(!token.is_empty()),
                Err(PresentError::Missing | PresentError::SeveralMethods) => {}
            }
        }
    }

    /// Exactly one carrier the endpoint reads gives exactly the token; none is `Missing`; two
    /// or more are `SeveralMethods` (RFC 6750 §2: a client MUST NOT use more than one).
    #[test]
    fn one_carrier_one_token(
        token in "[A-Za-z0-9._~+/=-]{1,64}",
        used in carriers(),
        scheme in prop::sample::select(vec!["Bearer", "bearer", "BEARER"]),
    ) {
        let mut headers = HeaderMap::new();
        if used.authorization {
            headers.insert(
                header::AUTHORIZATION,
                HeaderValue::from_str(&format!("{scheme} {token}")).unwrap(),
            );
        }
        if used.private_token_header {
            headers.insert("private-token", HeaderValue::from_str(&token).unwrap());
        }
        let mut query = vec!["page=1".to_string()];
        if used.query_access_token {
            query.push(format!("access_token={}", urlencode(&token)));
        }
        if used.private_token_query {
            query.push(format!("private_token={}", urlencode(&token)));
        }
        let uri: Uri = format!("/oauth/userinfo?{}", query.join("&")).parse().unwrap();
        let body: Vec<(String, String)> = if used.body_access_token {
            vec![("access_token".into(), token.clone()), ("x".into(), "y".into())]
        } else {
            vec![("access_token".into(), String::new())]
        };
        let parts = RequestTarget { uri: &uri, headers: &headers };
        for allowed in ALL_METHODS {
            let got = presented(&parts, Some(&body), allowed);
            match used.read_by(allowed) {
                0 => prop_assert_eq!(got, Err(PresentError::Missing)),
                1 => prop_assert_eq!(got, Ok(token.clone())),
                _ => prop_assert_eq!(got, Err(PresentError::SeveralMethods)),
            }
        }
    }

    /// A challenge of any text is a valid `WWW-Authenticate` value naming the Bearer scheme,
    /// with a 4xx status.
    #[test]
    fn challenges_are_well_formed(description in hostile_string(40), scope in hostile_string(20)) {
        for challenge in [
            Challenge::Missing,
            Challenge::InvalidRequest(&description),
            Challenge::InvalidToken(&description),
            Challenge::InsufficientScope { description: Some(&description), scope: &scope },
            Challenge::InsufficientScope { description: None, scope: &scope },
        ] {
            prop_assert!(challenge.status().is_client_error());
            // A valid header value by construction (non-ASCII text travels as obs-text).
            let value = challenge.www_authenticate();
            let bytes = value.as_bytes();
            prop_assert!(bytes == b"Bearer" || bytes.starts_with(b"Bearer realm=\"Doorward\""), "{value:?}");
            // The quoted strings stay well formed: no quote or backslash from the text.
            let quotes = bytes.iter().filter(|b| **b == b'"').count();
            prop_assert_eq!(quotes % 2, 0, "{:?}", value);
            prop_assert!(!bytes.contains(&b'\\'));
        }
    }
}
