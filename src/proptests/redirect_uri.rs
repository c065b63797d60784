//! Redirect URIs (`domain::redirect_uri`): registration checks and matching. Matching is
//! exact (RFC 9700 §4.1.3) except the port of a registered `http` loopback IP literal (RFC
//! 8252 §7.3): a URI matches itself, and a change of scheme, host, path or query never
//! matches.

use proptest::prelude::*;

use super::{config, hostile_string};
use crate::domain::redirect_uri::{RedirectUriError, csp_source, find_match, parse_list, validate};

/// A redirect URI in parts, to be changed one part at a time.
#[derive(Clone, Debug)]
struct Parts {
    scheme: &'static str,
    host: &'static str,
    port: Option<u16>,
    path: String,
    query: Option<String>,
}

impl Parts {
    fn render(&self) -> String {
        let mut s = format!("{}://{}", self.scheme, self.host);
        if let Some(port) = self.port {
            s.push_str(&format!(":{port}"));
        }
        s.push_str(&self.path);
        if let Some(q) = &self.query {
            s.push('?');
            s.push_str(q);
        }
        s
    }

    fn is_loopback_ip(&self) -> bool {
        self.scheme == "http" && LOOPBACK_IPS.contains(&self.host)
    }
}

const LOOPBACK_IPS: &[&str] = &["127.0.0.1", "[::1]", "127.0.0.2"];
const HOSTS: &[&str] = &[
    "app.example.com",
    "client.example",
    "localhost",
    "127.0.0.1",
    "[::1]",
    "127.0.0.2",
    "10.0.0.1",
];

fn path() -> impl Strategy<Value = String> {
    prop::collection::vec("[a-z0-9_~-]{1,6}", 0..4).prop_map(|segments| {
        let mut p = String::from("/");
        p.push_str(&segments.join("/"));
        p
    })
}

fn parts() -> impl Strategy<Value = Parts> {
    (
        prop::sample::select(vec!["https", "http"]),
        prop::sample::select(HOSTS.to_vec()),
        proptest::option::of(1024u16..65535),
        path(),
        proptest::option::of("[a-z]{1,5}=[a-z0-9]{0,5}"),
    )
        .prop_map(|(scheme, host, port, path, query)| Parts {
            scheme,
            host,
            port,
            path,
            query,
        })
}

/// One change to a URI that alters its scheme, host, path or query (never only its port).
#[derive(Clone, Debug)]
enum Change {
    Scheme,
    Host(&'static str),
    PathAppend(String),
    PathTrailingSlash,
    PathUpperCase,
    QueryAdd(String),
    QueryEdit,
    QueryEmpty,
    UserInfo,
    Fragment,
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        Just(Change::Scheme),
        prop::sample::select(HOSTS.to_vec()).prop_map(Change::Host),
        "[a-z0-9]{1,4}".prop_map(Change::PathAppend),
        Just(Change::PathTrailingSlash),
        Just(Change::PathUpperCase),
        "[a-z]{1,4}=[a-z]{0,4}".prop_map(Change::QueryAdd),
        Just(Change::QueryEdit),
        Just(Change::QueryEmpty),
        Just(Change::UserInfo),
        Just(Change::Fragment),
    ]
}

/// `parts` after `change`, rendered; `None` when the change would change nothing.
fn changed(parts: &Parts, change: &Change) -> Option<String> {
    let mut p = parts.clone();
    match change {
        Change::Scheme => p.scheme = if p.scheme == "https" { "http" } else { "https" },
        Change::Host(h) if *h == p.host => return None,
        Change::Host(h) => p.host = h,
        Change::PathAppend(s) => p.path = format!("{}{s}", p.path),
        Change::PathTrailingSlash => p.path.push('/'),
        Change::PathUpperCase if !p.path.chars().any(|c| c.is_ascii_lowercase()) => return None,
        Change::PathUpperCase => p.path = p.path.to_ascii_uppercase(),
        Change::QueryAdd(q) => {
            p.query = Some(match &p.query {
                Some(old) => format!("{old}&{q}"),
                None => q.clone(),
            })
        }
        Change::QueryEdit => p.query = Some(format!("{}x", p.query.as_deref().unwrap_or("q="))),
        Change::QueryEmpty if p.query.is_some() => p.query = None,
        Change::QueryEmpty => p.query = Some(String::new()),
        Change::UserInfo => {
            let rendered = p.render();
            return Some(rendered.replacen("://", "://user@", 1));
        }
        Change::Fragment => return Some(format!("{}#f", p.render())),
    }
    Some(p.render())
}

proptest! {
    #![proptest_config(config(512))]

    /// Arbitrary text: no panic anywhere, and what validates is a parseable absolute URI
    /// without whitespace, controls, fragment or user information.
    #[test]
    fn arbitrary_text(
        raw in prop_oneof![
            hostile_string(40),
            (prop::sample::select(vec!["https://", "http://", "http://127.0.0.1", "myapp:", "javascript:", "urn:ietf:wg:oauth:2.0:oob"]), hostile_string(30))
                .prop_map(|(prefix, rest)| format!("{prefix}{rest}")),
        ],
        allow_http in any::<bool>(),
        registered in prop::collection::vec(hostile_string(30), 0..3),
    ) {
        if validate(&raw, allow_http).is_ok() {
            prop_assert!(!raw.chars().any(|c| c.is_whitespace() || c.is_control()));
            prop_assert!(!raw.contains('#'));
            let url = url::Url::parse(&raw).unwrap();
            prop_assert!(url.username().is_empty() && url.password().is_none());
            // And it matches itself when registered.
            prop_assert_eq!(find_match(std::slice::from_ref(&raw), &raw), Some(raw.as_str()));
        }
        if let Some(m) = find_match(&registered, &raw) {
            prop_assert!(registered.iter().any(|r| r == m));
        }
        let _ = csp_source(&raw);
        match parse_list(&raw, allow_http) {
            Ok(list) => {
                prop_assert!(!list.is_empty() && list.len() <= 20);
                for (i, uri) in list.iter().enumerate() {
                    prop_assert!(validate(uri, allow_http).is_ok());
                    prop_assert!(!list[..i].contains(uri));
                }
            }
            Err((uri, _)) => prop_assert!(uri.is_empty() || raw.contains(&uri)),
        }
    }

    /// A registered URI matches itself; any change of scheme, host, path or query does not,
    /// and neither do user information or a fragment; a registered `http` loopback IP
    /// literal matches with any port (and only then).
    #[test]
    fn matching_is_exact_but_for_loopback_ports(
        registered in parts(),
        change in change(),
        other_port in proptest::option::of(1u16..65535),
        decoy in parts(),
    ) {
        let reg = registered.render();
        let list = vec![decoy.render(), reg.clone()];
        prop_assert_eq!(find_match(&list, &reg), Some(reg.as_str()));
        let only = std::slice::from_ref(&reg);
        if let Some(requested) = changed(&registered, &change) {
            prop_assert_eq!(find_match(only, &requested), None, "{} matched {}", requested, reg);
        }
        // Only the port differs.
        let moved = Parts { port: other_port, ..registered.clone() };
        let requested = moved.render();
        let expected = if requested == reg || registered.is_loopback_ip() {
            Some(reg.as_str())
        } else {
            None
        };
        prop_assert_eq!(find_match(only, &requested), expected, "{} against {}", requested, reg);
    }

    /// Registration refuses what the rules name, whatever the rest of the URI is.
    #[test]
    fn registration_rules(p in parts(), allow_http in any::<bool>()) {
        let uri = p.render();
        let verdict = validate(&uri, allow_http);
        let loopback_name = matches!(p.host, "localhost" | "127.0.0.1" | "[::1]" | "127.0.0.2");
        if p.scheme == "http" && !allow_http && !loopback_name {
            prop_assert_eq!(verdict, Err(RedirectUriError::InsecureHttp));
        } else {
            prop_assert_eq!(verdict, Ok(()));
        }
        prop_assert_eq!(validate(&format!("{uri}#x"), true), Err(RedirectUriError::Fragment));
        prop_assert_eq!(
            validate(&uri.replacen("://", "://u:p@", 1), true),
            Err(RedirectUriError::UserInfo)
        );
        prop_assert_eq!(validate(&format!("{uri} x"), true), Err(RedirectUriError::Invalid));
        prop_assert_eq!(validate(&format!("{uri}\0"), true), Err(RedirectUriError::Invalid));
        for scheme in ["javascript", "data", "file", "vbscript"] {
            let other = format!("{scheme}{}", &uri[p.scheme.len()..]);
            // Refused as a forbidden scheme, or before that as no valid URI at all.
            let verdict = validate(&other, true);
            prop_assert!(
                matches!(verdict, Err(RedirectUriError::ForbiddenScheme | RedirectUriError::Invalid)),
                "{other}: {verdict:?}"
            );
        }
        // A list of it, repeated and spread over lines, is one URI.
        let text = format!("{uri}\r\n{uri}\n\t{uri} ");
        if verdict_ok(&uri, allow_http) {
            prop_assert_eq!(parse_list(&text, allow_http), Ok(vec![uri.clone()]));
        }
        prop_assert!(csp_source(&uri).is_some());
    }
}

fn verdict_ok(uri: &str, allow_http: bool) -> bool {
    validate(uri, allow_http).is_ok()
}
