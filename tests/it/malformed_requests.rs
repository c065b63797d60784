//! The malformed-request sweep (issue 10, "Proving it"): every route, on both backends, gets
//! bodies, query strings, paths and headers with NUL and other controls, invalid UTF-8,
//! overlong values, repeated parameters, wrong content types and truncated bodies, sent as raw
//! HTTP/1.1 on a socket (so nothing on the client side cleans them up). Each route is swept
//! unauthenticated and authenticated (a signed-in session with its CSRF token for pages, an
//! administrator's token for the API, client credentials in the body at the OAuth endpoints),
//! starting from a request that would succeed, so that the parsing behind authentication,
//! CSRF and client authentication is reached. Every answer must be below 500, and after each
//! route's batch every table holds as many rows as before (failed sign-ins and wrong device
//! codes excepted: they are counted against throttles by design, see [`MAY_CHANGE`]) and the
//! rows a request could change in place (users, applications, personal access tokens, groups
//! and their members) are as they were. At the end, a few of the unbroken requests are sent to
//! show that they do succeed and write: the refusals come from what was broken.
//!
//! `outside_review.rs` holds the first NUL cases of the outside review; this sweep goes
//! wider, and goes everywhere. `DOORWARD_SWEEP_VERBOSE=1` prints every request's answer.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use reqwest::cookie::CookieStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::both_backends;
use crate::support::oauth::{AppSpec, REDIRECT, code_for, consent_fields, register, token_request};
use crate::support::{ROOT_PASSWORD, TestApp, csrf_from};

/// An overlong value: under the 64 KiB body limit, so the parsers and handlers see it.
const OVERLONG: usize = 60 * 1024;

/// Stands for the mode's CSRF token in a route's fields.
const CSRF: &str = "{csrf}";

/// What answers a route, and so how it authenticates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Face {
    /// Probes and public documents: no credentials.
    Public,
    /// Pages: a session cookie and a CSRF token, or neither.
    Page,
    /// OAuth endpoints for clients: credentials in the body (or none).
    Client,
    /// The GitLab API: an administrator's token, or none.
    Api,
}

/// One route of the routers, with real ids, and a request to it that would succeed.
struct Route {
    method: &'static str,
    path: String,
    face: Face,
    /// The parameters of a request that would succeed: the query of a GET, else the body.
    /// [`CSRF`] is replaced by the mode's CSRF token.
    fields: Vec<(String, String)>,
    /// Fields that may legitimately repeat (checkbox groups).
    repeatable: &'static [&'static str],
    /// Fields whose overlong value is dropped by design rather than refused (the sign-in
    /// page's `return_to`: an unusable one is ignored, and the sign-in goes on).
    lenient: &'static [&'static str],
    /// The handler acts on a request without parameters (it takes none, or none of its
    /// parameters is required): with a valid credential, an empty request with a junk header
    /// beside it is a valid request, so header junk is sent to it only without credentials.
    acts_without_params: bool,
}

impl Route {
    fn new(method: &'static str, path: impl Into<String>, face: Face) -> Route {
        Route {
            method,
            path: path.into(),
            face,
            fields: Vec::new(),
            repeatable: &[],
            lenient: &[],
            acts_without_params: false,
        }
    }

    fn fields(mut self, fields: &[(&'static str, &str)]) -> Route {
        self.fields = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self
    }

    fn repeatable(mut self, names: &'static [&'static str]) -> Route {
        self.repeatable = names;
        self
    }

    fn lenient(mut self, names: &'static [&'static str]) -> Route {
        self.lenient = names;
        self
    }

    fn acts_without_params(mut self) -> Route {
        self.acts_without_params = true;
        self
    }

    fn in_query(&self) -> bool {
        matches!(self.method, "GET" | "HEAD")
    }
}

/// Who sends a batch: extra headers (cookie, token) and the CSRF token for forms.
struct Mode {
    name: &'static str,
    headers: Vec<(String, Vec<u8>)>,
    csrf: String,
}

/// One request, byte for byte.
#[derive(Clone)]
struct Raw {
    label: String,
    method: &'static str,
    target: Vec<u8>,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    /// Declares 512 bytes more than it sends, then half-closes: a truncated body.
    truncated: bool,
}

/// Sends `raw` on a fresh connection and returns the status of the answer.
async fn send(addr: &str, raw: &Raw) -> Result<u16, String> {
    let mut wire = Vec::with_capacity(raw.body.len() + raw.target.len() + 512);
    wire.extend_from_slice(raw.method.as_bytes());
    wire.push(b' ');
    wire.extend_from_slice(&raw.target);
    wire.extend_from_slice(b" HTTP/1.1\r\n");
    if !raw
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("host"))
    {
        wire.extend_from_slice(format!("Host: {addr}\r\n").as_bytes());
    }
    for (name, value) in &raw.headers {
        wire.extend_from_slice(name.as_bytes());
        wire.extend_from_slice(b": ");
        wire.extend_from_slice(value);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"Connection: close\r\n");
    let declared = raw.body.len() + if raw.truncated { 512 } else { 0 };
    if declared > 0 || !matches!(raw.method, "GET" | "HEAD") {
        wire.extend_from_slice(format!("Content-Length: {declared}\r\n").as_bytes());
    }
    wire.extend_from_slice(b"\r\n");
    wire.extend_from_slice(&raw.body);

    let mut conn = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    // The server may answer (and close) before it has read everything: keep reading anyway.
    let _ = conn.write_all(&wire).await;
    if raw.truncated {
        let _ = conn.shutdown().await;
    }
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        let mut buf = [0u8; 8192];
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    answer.extend_from_slice(&buf[..n]);
                    // The status line is all that is needed.
                    if answer.len() >= 12 && !raw.truncated {
                        break;
                    }
                }
            }
        }
    })
    .await;
    if read.is_err() && answer.len() < 12 {
        return Err("no answer within 20 s".into());
    }
    let head = String::from_utf8_lossy(&answer[..answer.len().min(12)]).to_string();
    head.strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no HTTP answer: {head:?}"))
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `k=v&…` from already encoded (or deliberately broken) parts.
fn join(pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        out.extend_from_slice(k);
        out.push(b'=');
        out.extend_from_slice(v);
    }
    out
}

/// A JSON object of `pairs`, with the value at `replace.0` (if any) replaced by the raw JSON
/// text `replace.1`.
fn json_object(pairs: &[(String, String)], replace: Option<(usize, &[u8])>) -> Vec<u8> {
    let mut out = b"{".to_vec();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(serde_json::to_string(k).unwrap().as_bytes());
        out.push(b':');
        match replace {
            Some((at, raw)) if at == i => out.extend_from_slice(raw),
            // Flags and numbers as JSON booleans and numbers, as python-gitlab sends them.
            _ if v == "true" || v == "false" || v.parse::<i64>().is_ok() => {
                out.extend_from_slice(v.as_bytes())
            }
            _ => out.extend_from_slice(serde_json::to_string(v).unwrap().as_bytes()),
        }
    }
    out.push(b'}');
    out
}

/// Every malformed request for `route` as `mode` sends it.
fn variants(route: &Route, mode: &Mode) -> Vec<Raw> {
    let base: Vec<(String, String)> = route
        .fields
        .iter()
        .map(|(k, v)| (k.clone(), v.replace(CSRF, &mode.csrf)))
        .collect();
    let encoded: Vec<(Vec<u8>, Vec<u8>)> = base
        .iter()
        .map(|(k, v)| (urlencode(k).into_bytes(), urlencode(v).into_bytes()))
        .collect();
    // A generic parameter for routes that take none.
    let encoded = if encoded.is_empty() {
        vec![(b"x".to_vec(), b"1".to_vec())]
    } else {
        encoded
    };
    let with_value = |i: usize, value: Vec<u8>| {
        let mut pairs = encoded.clone();
        pairs[i].1 = value;
        join(&pairs)
    };

    // The parameters, broken one way each.
    let mut inputs: Vec<(String, Vec<u8>)> = Vec::new();
    // A route that takes no parameters ignores unknown ones (as GitLab does): for its body,
    // only what cannot be read at all is malformed, not a long or repeated unknown field.
    let ignores_fields = base.is_empty() && !route.in_query();
    let names: Vec<String> = if base.is_empty() {
        vec!["x".to_string()]
    } else {
        base.iter().map(|(k, _)| k.clone()).collect()
    };
    for (i, ((k, v), name)) in encoded.iter().zip(&names).enumerate() {
        inputs.push((
            format!("%00 in {name}"),
            with_value(i, [v.as_slice(), b"%00"].concat()),
        ));
        inputs.push((
            format!("%00 alone as {name}"),
            with_value(i, b"%00".to_vec()),
        ));
        if !route.lenient.contains(&name.as_str()) && !ignores_fields {
            inputs.push((
                format!("overlong {name}"),
                with_value(i, vec![b'a'; OVERLONG]),
            ));
        }
        if !route.repeatable.contains(&name.as_str()) && !ignores_fields {
            let mut pairs = encoded.clone();
            pairs.push((k.clone(), v.clone()));
            inputs.push((format!("{name} repeated"), join(&pairs)));
            let mut pairs = encoded.clone();
            pairs.insert(0, (k.clone(), b"other".to_vec()));
            inputs.push((format!("{name} repeated, differently"), join(&pairs)));
        }
    }
    let first = |value: &[u8]| with_value(0, value.to_vec());
    inputs.extend([
        ("C0 controls".to_string(), first(b"a%01b%07c%1Bd%7F")),
        ("C1 control, encoded".to_string(), first(b"a%C2%85b")),
        ("C1 control, raw".to_string(), first(b"a\xc2\x85b")),
        ("invalid UTF-8, encoded".to_string(), first(b"%FF%FE")),
        ("overlong UTF-8, encoded".to_string(), first(b"%C0%AF")),
        ("lone surrogate, encoded".to_string(), first(b"%ED%A0%80")),
        ("invalid UTF-8, raw".to_string(), first(b"\xff\xfe")),
        (
            "NUL in a name".to_string(),
            [join(&encoded), b"&na%00me=1".to_vec()].concat(),
        ),
        (
            "invalid UTF-8 in a name".to_string(),
            [join(&encoded), b"&%C0%AF=1".to_vec()].concat(),
        ),
        (
            "raw invalid UTF-8 in a name".to_string(),
            [b"\xfe\xff=1&".to_vec(), join(&encoded)].concat(),
        ),
        ("only delimiters".to_string(), b"&&==&=%&".to_vec()),
    ]);
    if ignores_fields {
        inputs.retain(|(label, _)| label != "only delimiters");
    }

    let mut out = Vec::new();
    let path = route.path.as_bytes().to_vec();
    let base_input = join(&encoded);
    let target = |query: &[u8]| -> Vec<u8> {
        if query.is_empty() {
            path.clone()
        } else {
            [path.as_slice(), b"?", query].concat()
        }
    };
    let mut push = |label: String,
                    target: Vec<u8>,
                    headers: Vec<(String, Vec<u8>)>,
                    body: Vec<u8>,
                    truncated: bool| {
        out.push(Raw {
            label,
            method: route.method,
            target,
            headers,
            body,
            truncated,
        });
    };
    let form_ct = (
        "Content-Type".to_string(),
        b"application/x-www-form-urlencoded".to_vec(),
    );
    let with = |extra: &[(String, Vec<u8>)]| -> Vec<(String, Vec<u8>)> {
        mode.headers
            .iter()
            .cloned()
            .chain(extra.iter().cloned())
            .collect()
    };

    if route.in_query() {
        for (label, query) in &inputs {
            push(
                format!("query: {label}"),
                target(query),
                with(&[]),
                Vec::new(),
                false,
            );
        }
        // A body on a GET is read and ignored; broken ones change nothing either.
        for (label, body, ct) in [
            (
                "invalid UTF-8 body",
                b"x=\xff\xfe".to_vec(),
                &b"application/x-www-form-urlencoded"[..],
            ),
            (
                "NUL body",
                b"x=%00".to_vec(),
                b"application/x-www-form-urlencoded",
            ),
            (
                "multipart garbage",
                b"--x\r\n\0\xff".to_vec(),
                b"multipart/form-data; boundary=x",
            ),
        ] {
            push(
                format!("GET with {label}"),
                target(&base_input),
                with(&[("Content-Type".into(), ct.to_vec())]),
                body,
                false,
            );
        }
        push(
            "GET with a truncated body".into(),
            target(&base_input),
            with(std::slice::from_ref(&form_ct)),
            b"x=1".to_vec(),
            true,
        );
    } else {
        for (label, body) in &inputs {
            push(
                format!("form: {label}"),
                target(b""),
                with(std::slice::from_ref(&form_ct)),
                body.clone(),
                false,
            );
        }
        // The right body under the wrong content type, or under none.
        for (label, ct) in [
            ("text/plain", Some(&b"text/plain"[..])),
            ("application/json", Some(b"application/json")),
            ("application/xml", Some(b"application/xml")),
            (
                "a content type with raw bytes",
                Some(b"application/x-www-form-urlencoded\xff"),
            ),
            ("an empty content type", Some(b"")),
            ("no content type", None),
        ] {
            let headers = match ct {
                Some(ct) => with(&[("Content-Type".into(), ct.to_vec())]),
                None => with(&[]),
            };
            push(
                format!("form body as {label}"),
                target(b""),
                headers,
                base_input.clone(),
                false,
            );
        }
        push(
            "multipart garbage".into(),
            target(b""),
            with(&[(
                "Content-Type".into(),
                b"multipart/form-data; boundary=x".to_vec(),
            )]),
            [
                b"--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n\0\xff\r\n--x"
                    .as_slice(),
                &base_input,
            ]
            .concat(),
            false,
        );
        push(
            "multipart without a boundary".into(),
            target(b""),
            with(&[("Content-Type".into(), b"multipart/form-data".to_vec())]),
            base_input.clone(),
            false,
        );
        push(
            "binary junk".into(),
            target(b""),
            with(std::slice::from_ref(&form_ct)),
            b"\0\x01\x02\xff\xfe\x80=\x00&".to_vec(),
            false,
        );
        push(
            "truncated form".into(),
            target(b""),
            with(std::slice::from_ref(&form_ct)),
            base_input.clone(),
            true,
        );
        push(
            "truncated empty body".into(),
            target(b""),
            with(std::slice::from_ref(&form_ct)),
            Vec::new(),
            true,
        );
        // JSON bodies, for every endpoint (a page must refuse them too).
        let json_ct = ("Content-Type".to_string(), b"application/json".to_vec());
        let mut json_bodies: Vec<(String, Vec<u8>)> = Vec::new();
        let fields = if base.is_empty() {
            vec![("x".to_string(), "1".to_string())]
        } else {
            base.clone()
        };
        for (i, (k, v)) in fields.iter().enumerate() {
            let nul = serde_json::to_string(&format!("{v}\u{0}")).unwrap();
            json_bodies.push((
                format!("\\u0000 in {k}"),
                json_object(&fields, Some((i, nul.as_bytes()))),
            ));
        }
        let c1 = serde_json::to_string("a\u{85}b").unwrap();
        let long = serde_json::to_string(&"a".repeat(OVERLONG)).unwrap();
        json_bodies.extend([
            (
                "C1 control".to_string(),
                json_object(&fields, Some((0, c1.as_bytes()))),
            ),
            (
                "raw invalid UTF-8".to_string(),
                json_object(&fields, Some((0, b"\"\xff\xfe\""))),
            ),
            (
                "lone surrogate escape".to_string(),
                json_object(&fields, Some((0, br#""\ud800""#))),
            ),
            (
                "nested object".to_string(),
                json_object(&fields, Some((0, br#"{"a":["\u0000"]}"#))),
            ),
            (
                "array value".to_string(),
                json_object(&fields, Some((0, b"[1,2]"))),
            ),
            (
                "overlong value".to_string(),
                json_object(&fields, Some((0, long.as_bytes()))),
            ),
            (
                "NUL in a key".to_string(),
                [
                    b"{\"a\\u0000b\":1,".as_slice(),
                    &json_object(&fields, None)[1..],
                ]
                .concat(),
            ),
            (
                "truncated JSON".to_string(),
                json_object(&fields, None)[..json_object(&fields, None).len() / 2].to_vec(),
            ),
            ("a JSON array".to_string(), b"[1,\"\\u0000\"]".to_vec()),
            ("a JSON string".to_string(), b"\"\\u0000\"".to_vec()),
            (
                "JSON with trailing junk".to_string(),
                [json_object(&fields, None).as_slice(), b"\0\xff"].concat(),
            ),
        ]);
        // A repeated key: JSON's form of a repeated parameter.
        let mut repeated = fields.clone();
        repeated.push(fields[0].clone());
        if !route.repeatable.contains(&fields[0].0.as_str()) {
            json_bodies.push(("repeated key".to_string(), json_object(&repeated, None)));
        }
        if ignores_fields {
            json_bodies.retain(|(label, _)| label != "array value" && label != "overlong value");
        }
        for (label, body) in json_bodies {
            push(
                format!("json: {label}"),
                target(b""),
                with(std::slice::from_ref(&json_ct)),
                body,
                false,
            );
        }
        // A broken query beside a good body: refused before routing.
        for (label, query) in [
            ("%00", &b"x=%00"[..]),
            ("raw invalid UTF-8", b"x=\xff"),
            ("invalid UTF-8", b"%C0%AF=1"),
        ] {
            push(
                format!("good body, query with {label}"),
                target(query),
                with(std::slice::from_ref(&form_ct)),
                base_input.clone(),
                false,
            );
        }
    }

    // The path itself.
    for (label, suffix) in [
        ("%00", &b"%00"[..]),
        ("/%FF", b"/%FF"),
        ("raw /\\xff", b"/\xff"),
        ("%C2%85", b"%C2%85"),
        ("a broken escape", b"%G0%"),
    ] {
        let mut target = route.path.as_bytes().to_vec();
        target.extend_from_slice(suffix);
        push(
            format!("path with {label}"),
            target,
            with(&[]),
            Vec::new(),
            false,
        );
    }

    // Headers, with an empty body: junk in each header the application reads.
    let credentials = !mode.headers.is_empty();
    if !(credentials && route.acts_without_params && route.face == Face::Api) {
        let header_target = if route.in_query() {
            target(&base_input)
        } else {
            target(b"")
        };
        let mut junk: Vec<(&str, &str, Vec<u8>)> = vec![
            ("Basic \\0:\\0", "Authorization", b"Basic ADoA".to_vec()),
            (
                "Basic of junk bytes",
                "Authorization",
                b"Basic /_7/Af8=".to_vec(),
            ),
            (
                "Basic not base64",
                "Authorization",
                b"Basic %00%00".to_vec(),
            ),
            (
                "Bearer raw bytes",
                "Authorization",
                b"Bearer \xff\xfe\"'<junk>".to_vec(),
            ),
            (
                "Bearer with a prefix and junk",
                "Authorization",
                b"Bearer dwat-%00\x80".to_vec(),
            ),
            ("Bearer alone", "Authorization", b"Bearer".to_vec()),
            ("an unknown scheme", "Authorization", b"\xff \xfe".to_vec()),
            (
                "PRIVATE-TOKEN raw bytes",
                "PRIVATE-TOKEN",
                b"dwpat-\xff\x80".to_vec(),
            ),
            ("Origin raw bytes", "Origin", b"http://\xff".to_vec()),
            ("Origin null", "Origin", b"null".to_vec()),
            (
                "X-Forwarded-For junk",
                "X-Forwarded-For",
                b"1.2.3.4\xc2\x85, \xff".to_vec(),
            ),
            (
                "User-Agent raw bytes",
                "User-Agent",
                b"\xff\xfe\x80".to_vec(),
            ),
            (
                "Content-Type raw bytes",
                "Content-Type",
                b"\xff/\xfe".to_vec(),
            ),
            ("Accept junk", "Accept", b"\xff;q=\x80".to_vec()),
            // Refused by the HTTP layer before the application: still never a 5xx.
            ("NUL in a header", "X-Junk", b"a\0b".to_vec()),
            ("DEL in a header", "X-Junk", b"a\x7fb".to_vec()),
        ];
        // A junk cookie replaces the mode's own.
        let cookie_junk: Vec<(&str, Vec<u8>)> = vec![
            (
                "Cookie %00",
                b"doorward_session=%00; doorward_csrf=%00".to_vec(),
            ),
            (
                "Cookie raw bytes",
                b"doorward_session=\xff\xfe; doorward_csrf=\x80\x81".to_vec(),
            ),
            ("Cookie without names", b"=; ;;=\xff".to_vec()),
            (
                "Cookie quoted junk",
                b"doorward_session=\"\xff\"; doorward_csrf=\"\"".to_vec(),
            ),
        ];
        for (label, name, value) in junk.drain(..) {
            push(
                format!("header: {label}"),
                header_target.clone(),
                with(&[(name.to_string(), value)]),
                Vec::new(),
                false,
            );
        }
        for (label, value) in cookie_junk {
            let mut headers: Vec<(String, Vec<u8>)> = mode
                .headers
                .iter()
                .filter(|(k, _)| !k.eq_ignore_ascii_case("cookie"))
                .cloned()
                .collect();
            headers.push(("Cookie".to_string(), value));
            push(
                format!("header: {label}"),
                header_target.clone(),
                headers,
                Vec::new(),
                false,
            );
        }
        push(
            "header: Host raw bytes".into(),
            header_target.clone(),
            with(&[("Host".into(), b"\xff\xfe".to_vec())]),
            Vec::new(),
            false,
        );
    }
    out
}

/// What a malformed request could change besides row counts: the rows of the users,
/// applications and tokens the routes name (`None` once deleted), as text.
#[derive(Debug, PartialEq)]
struct Fingerprint(Vec<Option<String>>);

struct Fixture {
    /// Every route, with real ids.
    routes: Vec<Route>,
    /// The modes each face is swept in.
    page_modes: Vec<Mode>,
    api_modes: Vec<Mode>,
    user_ids: Vec<i64>,
    application_ids: Vec<i64>,
    token_ids: Vec<i64>,
    group_ids: Vec<i64>,
}

async fn fingerprint(app: &TestApp, f: &Fixture) -> Fingerprint {
    let store = &app.state.store;
    let mut rows = Vec::new();
    for id in &f.user_ids {
        rows.push(store.user_by_id(*id).await.unwrap().map(|u| {
            format!(
                "user {} {} {} {} {} {} {} {} {} {} {:?} {:?} {}",
                u.id,
                u.username,
                u.email,
                u.name,
                u.password_hash,
                u.is_admin,
                u.state,
                u.public_email,
                u.website_url,
                u.bio,
                u.last_sign_in_at,
                u.current_sign_in_at,
                u.two_factor_enabled,
            )
        }));
    }
    for id in &f.application_ids {
        rows.push(store.application_by_id(*id).await.unwrap().map(|a| {
            format!(
                "application {} {} {} {} {:?} {} {} {}",
                a.id,
                a.uid,
                hex::encode(&a.secret_hash),
                a.name,
                a.redirect_uri,
                a.scopes,
                a.confidential,
                a.trusted,
            )
        }));
    }
    for id in &f.token_ids {
        rows.push(
            store
                .personal_access_token_by_id(*id)
                .await
                .unwrap()
                .map(|t| {
                    format!(
                        "token {} {} {} {} {:?}",
                        t.id, t.name, t.scopes, t.revoked, t.expires_at
                    )
                }),
        );
    }
    for id in &f.group_ids {
        let group = store.group_by_id(*id).await.unwrap();
        let members = store.group_members(*id).await.unwrap();
        rows.push(group.map(|g| format!("group {g:?} members {members:?}")));
    }
    Fingerprint(rows)
}

async fn snapshot(app: &TestApp, f: &Fixture) -> Snapshot {
    (
        app.state.store.count_all_rows().await.unwrap(),
        fingerprint(app, f).await,
    )
}

type Snapshot = (Vec<(String, i64)>, Fingerprint);

/// What changed from `before` to `after`, tables that may change aside.
fn differences(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    for ((table, was), (_, is)) in before.0.iter().zip(&after.0) {
        if was != is && !MAY_CHANGE.iter().any(|(t, _)| t == table) {
            out.push(format!("{table} went from {was} to {is} rows"));
        }
    }
    for (was, is) in before.1.0.iter().zip(&after.1.0) {
        if was != is {
            out.push(format!("{was:?} became {is:?}"));
        }
    }
    out
}

/// A browser whose cookies can be read back for raw requests.
fn jar_browser(jar: &std::sync::Arc<reqwest::cookie::Jar>) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn cookie_header(app: &TestApp, jar: &reqwest::cookie::Jar) -> Vec<u8> {
    let url = url::Url::parse(&app.base).unwrap();
    jar.cookies(&url)
        .map(|v| v.as_bytes().to_vec())
        .unwrap_or_default()
}

/// Builds the world the routes act on, and the table of routes.
async fn fixture(app: &TestApp) -> Fixture {
    let admin = app.token_for("root", "api").await;
    let store = &app.state.store;
    let pat_id = |token: String| async move {
        let (pat, _) = store
            .personal_access_token_by_hash(&doorward::domain::secret::hash(&token))
            .await
            .unwrap()
            .unwrap();
        pat.id
    };
    let admin_id = pat_id(admin.clone()).await;
    let spare_token = app.token_for("root", "read_user").await;
    let spare_id = pat_id(spare_token).await;
    let victim = app.create_user("victim", "victim-password-123").await;
    let victim_id = victim["id"].as_i64().unwrap();
    let victim_token = app.token_for("victim", "api").await;
    let victim_token_id = pat_id(victim_token).await;
    // The victim is signed in somewhere: blocking would end that session.
    let victim_browser = app.new_browser();
    assert_eq!(
        app.sign_in_with(&victim_browser, "victim", "victim-password-123")
            .await
            .status(),
        303
    );

    // Root's own application (its pages; the client of the OAuth endpoints), authorized by
    // root (an authorized application, tokens to revoke and introspect); a second one root
    // never authorized (the consent page); an instance-wide one (the admin API).
    let owned = register(
        app,
        AppSpec {
            scopes: "api read_user openid profile email",
            ..Default::default()
        },
    )
    .await;
    let consent_client = register(
        app,
        AppSpec {
            scopes: "api read_user openid",
            ..Default::default()
        },
    )
    .await;
    let instance = register(
        app,
        AppSpec {
            owner: None,
            ..Default::default()
        },
    )
    .await;
    let code = code_for(app, &owned, &[("scope", "read_user openid")]).await;
    let res = token_request(
        app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &owned.redirect_uri),
        ],
        Some((&owned.client_id, &owned.secret)),
    )
    .await;
    assert_eq!(res.status(), 200);
    let tokens: serde_json::Value = res.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    // A device grant waiting for its user code.
    let res = reqwest::Client::new()
        .post(app.url("/oauth/authorize_device"))
        .basic_auth(&owned.client_id, Some(&owned.secret))
        .form(&[("scope", "read_user")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let device: serde_json::Value = res.json().await.unwrap();
    let user_code = device["user_code"].as_str().unwrap().to_string();

    // Groups: `swept` (root owns it, the victim is a developer), its subgroup `swept/child`,
    // and `swept-other`.
    let api = reqwest::Client::new();
    let create = |path: String, body: serde_json::Value| {
        let request = api
            .post(app.url(&path))
            .header("PRIVATE-TOKEN", &admin)
            .json(&body);
        async move {
            let res = request.send().await.unwrap();
            assert!(res.status().is_success(), "{path}: {}", res.status());
            res.json::<serde_json::Value>().await.unwrap()["id"]
                .as_i64()
                .unwrap_or_default()
        }
    };
    let group_id = create(
        "/api/v4/groups".into(),
        serde_json::json!({"name": "Swept", "path": "swept", "visibility": "private"}),
    )
    .await;
    let other_group_id = create(
        "/api/v4/groups".into(),
        serde_json::json!({"name": "Other", "path": "swept-other", "visibility": "private"}),
    )
    .await;
    let child_group_id = create(
        "/api/v4/groups".into(),
        serde_json::json!({"name": "Child", "path": "child", "parent_id": group_id, "visibility": "private"}),
    )
    .await;
    create(
        format!("/api/v4/groups/{group_id}/members"),
        serde_json::json!({"user_id": victim_id, "access_level": 30}),
    )
    .await;

    // Root's session, and a browser that has only been to the sign-in page.
    let session_jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let session_browser = jar_browser(&session_jar);
    assert_eq!(
        app.sign_in_with(&session_browser, "root", ROOT_PASSWORD)
            .await
            .status(),
        303
    );
    let session_csrf = app
        .csrf_token(&session_browser, "/-/user_settings/profile")
        .await;
    // An application owned by the group `swept`, registered on its settings page.
    let group_apps = "/groups/swept/-/settings/applications";
    let res = session_browser
        .post(app.url(group_apps))
        .form(&[
            ("authenticity_token", session_csrf.as_str()),
            ("name", "Group App"),
            ("redirect_uri", "https://group.example/cb"),
            ("scopes[]", "read_user"),
            ("confidential", "1"),
        ])
        .send()
        .await
        .unwrap();
    assert!(
        res.status().is_success(),
        "registering a group application: {}",
        res.status()
    );
    let page = res.text().await.unwrap();
    let marker = format!("{group_apps}/");
    let group_app_id: i64 = page
        .split(&marker)
        .skip(1)
        .find_map(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .expect("the group application's id on its page");
    let consent = {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("client_id", consent_client.client_id.as_str()),
                ("redirect_uri", consent_client.redirect_uri.as_str()),
                ("response_type", "code"),
                ("scope", "read_user"),
                ("state", "xyz"),
            ])
            .finish();
        let res = session_browser
            .get(app.url(&format!("/oauth/authorize?{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "the consent page");
        consent_fields(&res.text().await.unwrap())
    };
    let pre_jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let pre_browser = jar_browser(&pre_jar);
    let res = pre_browser
        .get(app.url("/users/sign_in"))
        .send()
        .await
        .unwrap();
    let pre_csrf = csrf_from(&res.text().await.unwrap());

    let page_modes = vec![
        Mode {
            name: "signed out (pre-session CSRF cookie)",
            headers: vec![("Cookie".into(), cookie_header(app, &pre_jar))],
            csrf: pre_csrf,
        },
        Mode {
            name: "signed in as root",
            headers: vec![("Cookie".into(), cookie_header(app, &session_jar))],
            csrf: session_csrf,
        },
    ];
    let api_modes = vec![
        Mode {
            name: "no token",
            headers: Vec::new(),
            csrf: String::new(),
        },
        Mode {
            name: "administrator's token",
            headers: vec![("PRIVATE-TOKEN".into(), admin.clone().into_bytes())],
            csrf: String::new(),
        },
    ];

    use Face::*;
    let expiry = time::OffsetDateTime::from_unix_timestamp(app.clock.now() + 30 * 86_400)
        .unwrap()
        .date()
        .to_string();
    let (owned_uid, owned_secret) = (owned.client_id.as_str(), owned.secret.as_str());
    let consent_form: Vec<(String, String)> = consent
        .iter()
        .map(|(k, v)| {
            let value = if k == "authenticity_token" {
                CSRF.to_string()
            } else {
                v.clone()
            };
            (k.clone(), value)
        })
        .chain([("decision".to_string(), "authorize".to_string())])
        .collect();
    let consent_query: Vec<(String, String)> = [
        ("client_id", consent_client.client_id.clone()),
        ("redirect_uri", consent_client.redirect_uri.clone()),
        ("response_type", "code".into()),
        ("scope", "read_user".into()),
        ("state", "xyz".into()),
        ("nonce", "n".into()),
        (
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        ),
        ("code_challenge_method", "S256".into()),
    ]
    .into_iter()
    .map(|(k, v): (&str, String)| (k.to_string(), v))
    .collect();
    let with_consent = |mut r: Route, fields: &[(String, String)]| {
        r.fields = fields.to_vec();
        r
    };
    let owned_page = format!("/-/user_settings/applications/{}", owned.id);
    let routes = vec![
        // Probes and public documents (src/http/mod.rs, src/oidc/mod.rs).
        Route::new("GET", "/-/health", Public),
        Route::new("GET", "/-/liveness", Public),
        Route::new("GET", "/-/readiness", Public),
        Route::new("GET", "/-/metrics", Public),
        Route::new("GET", "/.well-known/openid-configuration", Public),
        Route::new("GET", "/.well-known/oauth-authorization-server", Public),
        Route::new("GET", "/.well-known/webfinger", Public).fields(&[
            ("resource", "acct:root@localhost"),
            ("rel", "http://openid.net/specs/connect/1.0/issuer"),
        ]),
        Route::new("GET", "/oauth/discovery/keys", Public),
        Route::new("GET", "/-/jwks", Public),
        Route::new("GET", "/assets/doorward.css", Public),
        Route::new("OPTIONS", "/oauth/token", Public),
        Route::new("GET", "/no/such/page", Public),
        // Pages (src/web/mod.rs).
        Route::new("GET", "/", Page),
        Route::new("GET", "/users/sign_in", Page).fields(&[
            ("return_to", "/-/user_settings/profile"),
            ("login_hint", "root"),
            ("prompt", "login"),
        ]),
        Route::new("POST", "/users/sign_in", Page)
            .fields(&[
                ("authenticity_token", CSRF),
                ("username", "root"),
                ("password", ROOT_PASSWORD),
                ("return_to", "/-/user_settings/profile"),
            ])
            .lenient(&["return_to"]),
        Route::new("GET", "/users/sign_out", Page),
        Route::new("POST", "/users/sign_out", Page).fields(&[("authenticity_token", CSRF)]),
        Route::new("GET", "/users/two_factor", Page),
        Route::new("POST", "/users/two_factor", Page)
            .fields(&[("authenticity_token", CSRF), ("otp_attempt", "123456")]),
        Route::new("GET", "/-/profile/two_factor_auth", Page),
        Route::new("POST", "/-/profile/two_factor_auth", Page).fields(&[
            ("authenticity_token", CSRF),
            ("pin_code", "123456"),
            ("current_password", ROOT_PASSWORD),
        ]),
        Route::new("POST", "/-/profile/two_factor_auth/setup", Page)
            .fields(&[("authenticity_token", CSRF)]),
        Route::new("POST", "/-/profile/two_factor_auth/codes", Page).fields(&[
            ("authenticity_token", CSRF),
            ("current_password", ROOT_PASSWORD),
            ("otp_attempt", "123456"),
        ]),
        Route::new("POST", "/-/profile/two_factor_auth/disable", Page).fields(&[
            ("authenticity_token", CSRF),
            ("current_password", ROOT_PASSWORD),
            ("otp_attempt", "123456"),
        ]),
        Route::new("GET", "/-/user_settings/profile", Page),
        Route::new("POST", "/-/user_settings/profile", Page).fields(&[
            ("authenticity_token", CSRF),
            ("name", "Root Changed"),
            ("email", "root-changed@example.com"),
            ("public_email", ""),
            ("website_url", "https://root.example"),
            ("location", "Here"),
            ("organization", "Org"),
            ("job_title", "Admin"),
            ("bio", "Bio"),
        ]),
        Route::new("GET", "/-/user_settings/password", Page),
        Route::new("POST", "/-/user_settings/password", Page).fields(&[
            ("authenticity_token", CSRF),
            ("current_password", ROOT_PASSWORD),
            ("new_password", "a-new-password-123"),
            ("password_confirmation", "a-new-password-123"),
        ]),
        Route::new("GET", "/-/profile", Page),
        Route::new("GET", "/-/user_settings/applications", Page).fields(&[("notice", "created")]),
        Route::new("POST", "/-/user_settings/applications", Page)
            .fields(&[
                ("authenticity_token", CSRF),
                ("name", "Swept"),
                ("redirect_uri", "https://swept.example/cb"),
                ("scopes[]", "api"),
                ("scopes[]", "read_user"),
                ("confidential", "1"),
                ("require_pkce", "0"),
            ])
            .repeatable(&["scopes[]"]),
        Route::new("GET", owned_page.clone(), Page),
        Route::new("POST", owned_page.clone(), Page)
            .fields(&[
                ("authenticity_token", CSRF),
                ("name", "Renamed"),
                ("redirect_uri", "https://renamed.example/cb"),
                ("scopes[]", "api"),
                ("confidential", "1"),
            ])
            .repeatable(&["scopes[]"]),
        Route::new("POST", format!("{owned_page}/renew_secret"), Page)
            .fields(&[("authenticity_token", CSRF)]),
        Route::new("POST", format!("{owned_page}/delete"), Page)
            .fields(&[("authenticity_token", CSRF)]),
        Route::new("GET", "/profile/applications", Page),
        Route::new("GET", "/oauth/applications", Page),
        Route::new("GET", "/-/user_settings/personal_access_tokens", Page),
        Route::new("POST", "/-/user_settings/personal_access_tokens", Page)
            .fields(&[
                ("authenticity_token", CSRF),
                ("name", "swept"),
                ("expires_at", &expiry),
                ("scopes[]", "api"),
            ])
            .repeatable(&["scopes[]"]),
        Route::new(
            "POST",
            format!("/-/user_settings/personal_access_tokens/{spare_id}/revoke"),
            Page,
        )
        .fields(&[("authenticity_token", CSRF)]),
        Route::new("GET", "/profile/personal_access_tokens", Page),
        // Group pages (src/web/groups.rs, behind `/groups/{*rest}`).
        Route::new("GET", "/dashboard/groups", Page),
        Route::new("GET", "/groups/new", Page).fields(&[("parent_id", &group_id.to_string())]),
        Route::new("POST", "/groups", Page).fields(&[
            ("authenticity_token", CSRF),
            ("name", "Made"),
            ("path", "made"),
            ("description", "Made here"),
            ("visibility", "private"),
        ]),
        Route::new("GET", "/groups/swept", Page),
        Route::new("GET", "/groups/swept/-/edit", Page),
        Route::new("POST", "/groups/swept/-/edit", Page).fields(&[
            ("authenticity_token", CSRF),
            ("name", "Renamed"),
            ("description", "Changed"),
            ("visibility", "private"),
        ]),
        Route::new("POST", "/groups/swept-other/-/group_members", Page).fields(&[
            ("authenticity_token", CSRF),
            ("username", "victim"),
            ("access_level", "30"),
            ("expires_at", &expiry),
        ]),
        Route::new(
            "POST",
            format!("/groups/swept/-/group_members/{victim_id}"),
            Page,
        )
        .fields(&[
            ("authenticity_token", CSRF),
            ("access_level", "40"),
            ("expires_at", &expiry),
        ]),
        Route::new(
            "POST",
            format!("/groups/swept/-/group_members/{victim_id}/delete"),
            Page,
        )
        .fields(&[("authenticity_token", CSRF)]),
        Route::new("POST", "/groups/swept/child/-/leave", Page)
            .fields(&[("authenticity_token", CSRF)]),
        Route::new("POST", "/groups/swept/child/-/delete", Page)
            .fields(&[("authenticity_token", CSRF)]),
        Route::new("GET", group_apps, Page),
        Route::new("POST", group_apps, Page)
            .fields(&[
                ("authenticity_token", CSRF),
                ("name", "Swept"),
                ("redirect_uri", "https://swept.example/cb"),
                ("scopes[]", "api"),
                ("scopes[]", "read_user"),
                ("confidential", "1"),
            ])
            .repeatable(&["scopes[]"]),
        Route::new("GET", format!("{group_apps}/{group_app_id}"), Page),
        Route::new("POST", format!("{group_apps}/{group_app_id}"), Page)
            .fields(&[
                ("authenticity_token", CSRF),
                ("name", "Renamed"),
                ("redirect_uri", "https://renamed.example/cb"),
                ("scopes[]", "api"),
                ("confidential", "1"),
            ])
            .repeatable(&["scopes[]"]),
        Route::new(
            "POST",
            format!("{group_apps}/{group_app_id}/renew_secret"),
            Page,
        )
        .fields(&[("authenticity_token", CSRF)]),
        Route::new("POST", format!("{group_apps}/{group_app_id}/delete"), Page)
            .fields(&[("authenticity_token", CSRF)]),
        // OAuth pages (src/oauth/mod.rs) and the logout page (src/oidc/mod.rs).
        with_consent(Route::new("GET", "/oauth/authorize", Page), &consent_query),
        with_consent(Route::new("POST", "/oauth/authorize", Page), &consent_form),
        with_consent(
            Route::new("DELETE", "/oauth/authorize", Page),
            &consent_form,
        ),
        Route::new("GET", "/oauth/authorized_applications", Page),
        Route::new(
            "POST",
            format!("/oauth/authorized_applications/{}/revoke", owned.id),
            Page,
        )
        .fields(&[("authenticity_token", CSRF)]),
        Route::new(
            "DELETE",
            format!("/oauth/authorized_applications/{}", owned.id),
            Page,
        )
        .fields(&[("authenticity_token", CSRF)]),
        Route::new("GET", "/oauth/device", Page).fields(&[("user_code", &user_code)]),
        Route::new("POST", "/oauth/device", Page).fields(&[
            ("authenticity_token", CSRF),
            ("user_code", &user_code),
            ("decision", "authorize"),
        ]),
        Route::new("POST", "/oauth/device/confirm", Page)
            .fields(&[("authenticity_token", CSRF), ("user_code", &user_code)]),
        Route::new("GET", "/oauth/logout", Page).fields(&[
            ("client_id", owned_uid),
            ("post_logout_redirect_uri", REDIRECT),
            ("state", "xyz"),
        ]),
        Route::new("POST", "/oauth/logout", Page)
            .fields(&[
                ("authenticity_token", CSRF),
                ("client_id", owned_uid),
                ("post_logout_redirect_uri", REDIRECT),
                ("state", "xyz"),
                ("confirm", "yes"),
            ])
            // The client's `state` is echoed whatever its length.
            .lenient(&["state"]),
        // Issue 12's account pages (src/web/mod.rs). Mailed links: a token that works is
        // never in the sweep (it would be spent), so these start from unknown ones.
        Route::new("GET", "/users/password/new", Page),
        Route::new("POST", "/users/password", Page)
            .fields(&[("authenticity_token", CSRF), ("login", "nobody-known")]),
        Route::new("GET", "/users/password/edit", Page)
            .fields(&[("reset_password_token", "unknown-token")]),
        Route::new("POST", "/users/password/edit", Page).fields(&[
            ("authenticity_token", CSRF),
            ("reset_password_token", "unknown-token"),
            ("password", "a-new-password-123"),
            ("password_confirmation", "a-new-password-123"),
        ]),
        Route::new("GET", "/users/confirmation", Page)
            .fields(&[("confirmation_token", "unknown-token")]),
        Route::new("GET", "/users/confirmation/new", Page),
        Route::new("POST", "/users/confirmation", Page).fields(&[
            ("authenticity_token", CSRF),
            ("email", "nobody@example.com"),
        ]),
        Route::new("GET", "/users/sign_up", Page),
        Route::new("GET", "/-/user_settings/active_sessions", Page),
        Route::new("GET", "/-/user_settings/password/edit", Page),
        Route::new("GET", "/admin/users", Page).fields(&[("search_query", "root")]),
        Route::new("GET", "/admin/audit_events", Page),
        Route::new("GET", "/admin/applications", Page),
        // OAuth endpoints for clients (src/oauth/mod.rs, src/oidc/mod.rs).
        Route::new("POST", "/oauth/par", Client).fields(&[
            ("response_type", "code"),
            ("redirect_uri", REDIRECT),
            ("scope", "api"),
            ("client_id", owned_uid),
            ("client_secret", owned_secret),
        ]),
        Route::new("POST", "/oauth/token", Client).fields(&[
            ("grant_type", "client_credentials"),
            ("scope", "api"),
            ("client_id", owned_uid),
            ("client_secret", owned_secret),
        ]),
        Route::new("POST", "/oauth/token", Client).fields(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", owned_uid),
            ("client_secret", owned_secret),
        ]),
        Route::new("POST", "/oauth/token", Client).fields(&[
            ("grant_type", "password"),
            ("username", "root"),
            ("password", ROOT_PASSWORD),
            ("scope", "api"),
            ("client_id", owned_uid),
            ("client_secret", owned_secret),
        ]),
        Route::new("GET", "/oauth/token/info", Client).fields(&[("access_token", &access)]),
        // `token_type_hint` is a mere hint (RFC 7009 §2.1): an unusable one is ignored.
        Route::new("POST", "/oauth/revoke", Client)
            .fields(&[
                ("token", &access),
                ("token_type_hint", "access_token"),
                ("client_id", owned_uid),
                ("client_secret", owned_secret),
            ])
            .lenient(&["token_type_hint"]),
        Route::new("POST", "/oauth/introspect", Client)
            .fields(&[
                ("token", &access),
                ("token_type_hint", "access_token"),
                ("client_id", owned_uid),
                ("client_secret", owned_secret),
            ])
            .lenient(&["token_type_hint"]),
        Route::new("POST", "/oauth/authorize_device", Client).fields(&[
            ("scope", "read_user"),
            ("client_id", owned_uid),
            ("client_secret", owned_secret),
        ]),
        Route::new("GET", "/oauth/userinfo", Client).fields(&[("access_token", &access)]),
        Route::new("POST", "/oauth/userinfo", Client).fields(&[("access_token", &access)]),
        // The GitLab API (src/api/mod.rs).
        Route::new("GET", "/api/v4/user", Api),
        Route::new("GET", "/api/v4/users", Api).fields(&[
            ("page", "1"),
            ("per_page", "20"),
            ("search", "ro"),
            ("active", "true"),
            ("order_by", "id"),
            ("sort", "asc"),
        ]),
        Route::new("POST", "/api/v4/users", Api).fields(&[
            ("username", "swept"),
            ("email", "swept@example.com"),
            ("name", "Swept"),
            ("password", "swept-password-123"),
            ("admin", "false"),
        ]),
        Route::new("GET", format!("/api/v4/users/{victim_id}"), Api),
        Route::new("POST", format!("/api/v4/users/{victim_id}/block"), Api).acts_without_params(),
        Route::new("POST", format!("/api/v4/users/{victim_id}/unblock"), Api).acts_without_params(),
        Route::new("GET", format!("/api/v4/users/{victim_id}/memberships"), Api)
            .fields(&[("page", "1"), ("per_page", "20")]),
        Route::new("GET", "/api/v4/groups", Api).fields(&[
            ("page", "1"),
            ("per_page", "20"),
            ("search", "swe"),
            ("all_available", "true"),
            ("top_level_only", "false"),
        ]),
        Route::new("POST", "/api/v4/groups", Api).fields(&[
            ("name", "Made"),
            ("path", "made"),
            ("description", "Made here"),
            ("visibility", "private"),
        ]),
        Route::new("GET", format!("/api/v4/groups/{group_id}"), Api),
        Route::new("PUT", format!("/api/v4/groups/{group_id}"), Api)
            .fields(&[
                ("name", "Renamed"),
                ("description", "Changed"),
                ("visibility", "private"),
            ])
            .acts_without_params(),
        Route::new(
            "POST",
            format!("/api/v4/groups/{child_group_id}/transfer"),
            Api,
        )
        .fields(&[("group_id", &other_group_id.to_string())])
        .acts_without_params(),
        Route::new("GET", format!("/api/v4/groups/{group_id}/subgroups"), Api)
            .fields(&[("page", "1"), ("search", "chi")]),
        Route::new(
            "GET",
            format!("/api/v4/groups/{group_id}/descendant_groups"),
            Api,
        )
        .fields(&[("page", "1"), ("search", "chi")]),
        Route::new("GET", format!("/api/v4/groups/{group_id}/members"), Api)
            .fields(&[("page", "1"), ("query", "vic")]),
        Route::new(
            "POST",
            format!("/api/v4/groups/{other_group_id}/members"),
            Api,
        )
        .fields(&[
            ("user_id", &victim_id.to_string()),
            ("access_level", "30"),
            ("expires_at", &expiry),
        ]),
        Route::new("GET", format!("/api/v4/groups/{group_id}/members/all"), Api)
            .fields(&[("query", "vic")]),
        Route::new(
            "GET",
            format!("/api/v4/groups/{group_id}/members/all/{victim_id}"),
            Api,
        ),
        Route::new(
            "GET",
            format!("/api/v4/groups/{group_id}/members/{victim_id}"),
            Api,
        ),
        Route::new(
            "PUT",
            format!("/api/v4/groups/{group_id}/members/{victim_id}"),
            Api,
        )
        .fields(&[("access_level", "40"), ("expires_at", &expiry)]),
        Route::new(
            "DELETE",
            format!("/api/v4/groups/{group_id}/members/{victim_id}"),
            Api,
        )
        .acts_without_params(),
        Route::new("DELETE", format!("/api/v4/groups/{child_group_id}"), Api).acts_without_params(),
        Route::new("GET", "/api/v4/applications", Api).fields(&[("page", "1"), ("per_page", "20")]),
        Route::new("POST", "/api/v4/applications", Api).fields(&[
            ("name", "Swept"),
            ("redirect_uri", "https://swept.example/cb"),
            ("scopes", "api read_user"),
            ("confidential", "true"),
        ]),
        Route::new(
            "POST",
            format!("/api/v4/applications/{}/renew-secret", instance.id),
            Api,
        )
        .acts_without_params(),
        Route::new(
            "DELETE",
            format!("/api/v4/applications/{}", instance.id),
            Api,
        )
        .acts_without_params(),
        Route::new("GET", "/api/v4/personal_access_tokens", Api).fields(&[
            ("page", "1"),
            ("per_page", "20"),
            ("state", "active"),
            ("revoked", "false"),
            ("search", "te"),
        ]),
        Route::new("GET", "/api/v4/personal_access_tokens/self", Api),
        Route::new(
            "GET",
            format!("/api/v4/personal_access_tokens/{victim_token_id}"),
            Api,
        ),
        Route::new(
            "DELETE",
            format!("/api/v4/personal_access_tokens/{victim_token_id}"),
            Api,
        )
        .acts_without_params(),
        Route::new("DELETE", "/api/v4/personal_access_tokens/self", Api).acts_without_params(),
        Route::new("GET", "/api/v4/no/such/endpoint", Api),
    ];
    // The victim's confirmation mail is delivered in the background, which deletes its
    // queue row: let the queue drain first, so that delete is not taken for a request's
    // write (on a loaded machine the worker can be late).
    for _ in 0..200 {
        if app.state.store.mail_queue_len().await.unwrap() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        app.state.store.mail_queue_len().await.unwrap(),
        0,
        "the mail queue drains"
    );
    Fixture {
        routes,
        page_modes,
        api_modes,
        user_ids: vec![1, victim_id],
        application_ids: vec![owned.id, consent_client.id, instance.id, group_app_id],
        token_ids: vec![admin_id, spare_id, victim_token_id],
        group_ids: vec![group_id, other_group_id, child_group_id],
    }
}

/// Tables whose row count a refused request may legitimately change, and why.
const MAY_CHANGE: &[(&str, &str)] = &[
    (
        "sign_in_throttles",
        "a failed sign-in counts against the login's and the address's throttles, and a wrong \
         device user code against the user's and the address's (RFC 8628 §5.1): an overlong \
         username, password or user code is a well-formed wrong one, refused after it is counted",
    ),
    (
        "audit_events",
        "a failed sign-in of an existing account is recorded (issue 12: `sign_in_failed`): an \
         overlong password is a well-formed wrong one",
    ),
];

async fn sweep(app: &TestApp) {
    let started = Instant::now();
    let f = fixture(app).await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let no_mode = Mode {
        name: "anonymous",
        headers: Vec::new(),
        csrf: String::new(),
    };
    let mut failures: Vec<String> = Vec::new();
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut sent = 0usize;
    let verbose = std::env::var_os("DOORWARD_SWEEP_VERBOSE").is_some();
    for route in &f.routes {
        let modes: Vec<&Mode> = match route.face {
            Face::Public | Face::Client => vec![&no_mode],
            Face::Page => f.page_modes.iter().collect(),
            Face::Api => f.api_modes.iter().collect(),
        };
        let batch: Vec<(String, Raw)> = modes
            .iter()
            .flat_map(|mode| {
                variants(route, mode).into_iter().map(|raw| {
                    let what = format!(
                        "{} {} ({}): {}",
                        route.method, route.path, mode.name, raw.label
                    );
                    (what, raw)
                })
            })
            .collect();
        // Nothing written: checked after the route's batch; if something was, the batch is
        // sent again with a check after every request, to name the culprits.
        let before = snapshot(app, &f).await;
        for (what, raw) in &batch {
            sent += 1;
            let answer = send(&addr, raw).await;
            if verbose {
                eprintln!("{what}: {answer:?}");
            }
            match answer {
                Ok(status) => {
                    *statuses.entry(status).or_default() += 1;
                    if status >= 500 {
                        failures.push(format!("{what}: answered {status}"));
                    }
                }
                Err(e) => failures.push(format!("{what}: {e}")),
            }
        }
        let after = snapshot(app, &f).await;
        let changes = differences(&before, &after);
        if changes.is_empty() {
            continue;
        }
        failures.extend(
            changes
                .iter()
                .map(|c| format!("{} {}: {c}", route.method, route.path)),
        );
        let mut last = after;
        for (what, raw) in &batch {
            let _ = send(&addr, raw).await;
            let now = snapshot(app, &f).await;
            for change in differences(&last, &now) {
                failures.push(format!("  replayed, {what}: {change}"));
            }
            last = now;
        }
    }
    controls(app, &f, &addr).await;
    let mut summary = String::new();
    for (status, n) in &statuses {
        let _ = write!(summary, " {status}×{n}");
    }
    eprintln!(
        "malformed-request sweep on {:?}: {} routes, {sent} requests in {:.1} s;{summary}",
        app.backend,
        f.routes.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The request a route's variants start from, unbroken, as `mode` sends it.
fn base_request(route: &Route, mode: &Mode, content_type: &[u8], body: Option<&[u8]>) -> Raw {
    let pairs: Vec<(String, String)> = route
        .fields
        .iter()
        .map(|(k, v)| (k.clone(), v.replace(CSRF, &mode.csrf)))
        .collect();
    let encoded = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&pairs)
        .finish();
    let mut headers = mode.headers.clone();
    headers.push(("Content-Type".into(), content_type.to_vec()));
    Raw {
        label: "the unbroken request".into(),
        method: route.method,
        target: route.path.as_bytes().to_vec(),
        headers,
        body: body.map_or_else(|| encoded.into_bytes(), <[u8]>::to_vec),
        truncated: false,
    }
}

/// The sweep proves something only if the requests it breaks would succeed unbroken: a few
/// that write, sent as they are at the end, do succeed and write. The endpoints that take no
/// parameters act on an empty body and on python-gitlab's `{}`.
async fn controls(app: &TestApp, f: &Fixture, addr: &str) {
    let route = |method: &str, path: &str| {
        f.routes
            .iter()
            .find(|r| r.method == method && r.path == path)
            .unwrap_or_else(|| panic!("no route {method} {path}"))
    };
    let (signed_out, signed_in) = (&f.page_modes[0], &f.page_modes[1]);
    let admin = &f.api_modes[1];
    let anonymous = Mode {
        name: "anonymous",
        headers: Vec::new(),
        csrf: String::new(),
    };
    let form = b"application/x-www-form-urlencoded".as_slice();
    let json = b"application/json".as_slice();
    let victim = f.user_ids[1];
    let block = format!("/api/v4/users/{victim}/block");
    let unblock = format!("/api/v4/users/{victim}/unblock");
    let cases: Vec<(Raw, Option<&str>)> = vec![
        (
            base_request(route("POST", "/api/v4/users"), admin, form, None),
            Some("users"),
        ),
        (
            base_request(route("POST", "/api/v4/applications"), admin, form, None),
            Some("oauth_applications"),
        ),
        (
            base_request(route("POST", "/oauth/token"), &anonymous, form, None),
            Some("oauth_access_tokens"),
        ),
        (
            base_request(
                route("POST", "/oauth/authorize_device"),
                &anonymous,
                form,
                None,
            ),
            Some("oauth_device_grants"),
        ),
        (
            base_request(
                route("POST", "/-/user_settings/personal_access_tokens"),
                signed_in,
                form,
                None,
            ),
            Some("personal_access_tokens"),
        ),
        (
            base_request(
                route("POST", "/-/user_settings/applications"),
                signed_in,
                form,
                None,
            ),
            Some("oauth_applications"),
        ),
        (
            base_request(route("POST", "/oauth/authorize"), signed_in, form, None),
            Some("oauth_grants"),
        ),
        (
            base_request(route("POST", &block), admin, json, Some(b"")),
            None,
        ),
        (
            base_request(route("POST", &unblock), admin, json, Some(b"{}")),
            None,
        ),
        (
            base_request(route("POST", "/users/sign_in"), signed_out, form, None),
            Some("sessions"),
        ),
        (
            base_request(
                route("DELETE", "/api/v4/personal_access_tokens/self"),
                admin,
                json,
                Some(b""),
            ),
            None,
        ),
    ];
    for (raw, grows) in cases {
        let before = app.state.store.count_all_rows().await.unwrap();
        let status = send(addr, &raw).await.unwrap();
        let path = String::from_utf8_lossy(&raw.target).to_string();
        assert!(
            (200..400).contains(&status),
            "{} {path}, unbroken: {status}",
            raw.method
        );
        if let Some(table) = grows {
            let count =
                |rows: &[(String, i64)]| rows.iter().find(|(t, _)| t == table).map(|(_, n)| *n);
            let after = app.state.store.count_all_rows().await.unwrap();
            assert_eq!(
                count(&after),
                count(&before).map(|n| n + 1),
                "{} {path}, unbroken, adds a row to {table}",
                raw.method
            );
        }
    }
}

both_backends! {
    async fn malformed_requests_on_every_route_get_4xx_and_write_nothing(app: TestApp) {
        sweep(&app).await;
    }
}
