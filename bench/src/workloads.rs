//! The requests of each workload (W1–W8, the baseline, the code minting that feeds W3 and
//! the scripted seeding of W8's groups), and what a correct answer is for each.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::header::{self, HeaderName, HeaderValue};
use axum::http::response::Parts;
use axum::http::{Method, Request, StatusCode};
use base64::Engine;
use serde::Deserialize;

use crate::load::{Body, Rng, Workload};

/// A token pair as the token endpoint answers it.
#[derive(Clone, Debug, Deserialize)]
pub struct TokenPair {
    pub access_token: String,
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// With `openid` in the scope.
    #[serde(default)]
    pub id_token: Option<String>,
}

/// Shared FIFO of never-presented refresh tokens.
pub type RefreshPool = Arc<Mutex<VecDeque<String>>>;

pub fn basic(client_id: &str, secret: &str) -> HeaderValue {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}"));
    HeaderValue::from_str(&format!("Basic {encoded}")).unwrap_or(HeaderValue::from_static(""))
}

pub fn bearer(token: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("Bearer {token}")).unwrap_or(HeaderValue::from_static(""))
}

pub fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn post_form(path: &str, auth: Option<&HeaderValue>, body: Bytes) -> Request<Body> {
    let mut req = Request::new(body);
    *req.method_mut() = Method::POST;
    *req.uri_mut() = path.parse().unwrap_or_default();
    let h = req.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    if let Some(a) = auth {
        h.insert(header::AUTHORIZATION, a.clone());
    }
    req
}

fn get(path: &str, headers: &[(header::HeaderName, &HeaderValue)]) -> Request<Body> {
    let mut req = Request::new(Body::new());
    *req.uri_mut() = path.parse().unwrap_or_default();
    for (k, v) in headers {
        req.headers_mut().insert(k.clone(), (*v).clone());
    }
    req
}

fn expect_status(parts: &Parts, body: &Bytes, want: StatusCode) -> Result<(), String> {
    if parts.status == want {
        Ok(())
    } else {
        Err(format!(
            "{} instead of {want}: {}",
            parts.status,
            String::from_utf8_lossy(&body[..body.len().min(200)])
        ))
    }
}

fn token_pair(body: &Bytes) -> Result<TokenPair, String> {
    serde_json::from_slice(body).map_err(|e| format!("not a token response: {e}"))
}

/// The baseline: `GET /` on the hello-world server.
pub struct Hello;

impl Workload for Hello {
    fn next(&self, _: &mut Rng) -> Option<(Request<Body>, u8)> {
        Some((get("/", &[]), 0))
    }
    fn check(&self, _: u8, parts: &Parts, body: &Bytes) -> Result<(), String> {
        expect_status(parts, body, StatusCode::OK)
    }
}

/// W1: `client_credentials` with HTTP Basic.
pub struct ClientCredentials {
    pub basic: HeaderValue,
}

impl Workload for ClientCredentials {
    fn next(&self, _: &mut Rng) -> Option<(Request<Body>, u8)> {
        let body = Bytes::from_static(b"grant_type=client_credentials&scope=api");
        Some((post_form("/oauth/token", Some(&self.basic), body), 0))
    }
    fn check(&self, _: u8, parts: &Parts, body: &Bytes) -> Result<(), String> {
        expect_status(parts, body, StatusCode::OK)?;
        token_pair(body).map(|_| ())
    }
}

/// W2: `refresh_token` rotation. Each request presents a refresh token never presented
/// before, taken from the front of a FIFO pool; the new refresh token of each answer joins
/// the back, so the pool (pre-minted through the code flow) never runs dry and a token is
/// presented at least pool-size requests after it was minted.
pub struct Refresh {
    pub basic: HeaderValue,
    pub pool: RefreshPool,
    /// W8: each answer must carry an id_token of at least this many bytes.
    pub id_token: Option<usize>,
}

impl Workload for Refresh {
    fn next(&self, _: &mut Rng) -> Option<(Request<Body>, u8)> {
        let token = self.pool.lock().ok()?.pop_front()?;
        let body = form(&[("grant_type", "refresh_token"), ("refresh_token", &token)]);
        Some((post_form("/oauth/token", Some(&self.basic), body.into()), 0))
    }
    fn check(&self, _: u8, parts: &Parts, body: &Bytes) -> Result<(), String> {
        expect_status(parts, body, StatusCode::OK)?;
        let pair = token_pair(body)?;
        let refresh = pair.refresh_token.ok_or("no refresh_token in the answer")?;
        if let Ok(mut pool) = self.pool.lock() {
            pool.push_back(refresh);
        }
        if let Some(min) = self.id_token {
            let len = pair.id_token.as_ref().map_or(0, String::len);
            if len < min {
                return Err(format!("id_token of {len} bytes, expected at least {min}"));
            }
        }
        Ok(())
    }
}

/// Minting codes: `GET /oauth/authorize` of a trusted application, signed in (a session
/// cookie), with a PKCE S256 challenge; the answer is a 302 to the client with `code`.
pub struct Authorize {
    pub cookie: HeaderValue,
    /// Path and query of the authorization request.
    pub path: String,
    pub codes: Arc<Mutex<Vec<String>>>,
    /// Stop after this many codes have been requested.
    pub limit: Option<usize>,
    pub issued: AtomicUsize,
}

impl Workload for Authorize {
    fn next(&self, _: &mut Rng) -> Option<(Request<Body>, u8)> {
        if let Some(limit) = self.limit
            && self.issued.fetch_add(1, Ordering::Relaxed) >= limit
        {
            return None;
        }
        Some((get(&self.path, &[(header::COOKIE, &self.cookie)]), 0))
    }
    fn check(&self, _: u8, parts: &Parts, body: &Bytes) -> Result<(), String> {
        expect_status(parts, body, StatusCode::FOUND)?;
        let location = parts
            .headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or("no Location")?;
        let url = url::Url::parse(location).map_err(|e| format!("bad Location: {e}"))?;
        let code = url
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .ok_or_else(|| format!("no code in {location}"))?;
        if let Ok(mut codes) = self.codes.lock() {
            codes.push(code);
        }
        Ok(())
    }
}

/// W3: `authorization_code` exchange with HTTP Basic and the PKCE verifier. Each code is
/// used once; the run ends early if the minted codes run out.
pub struct CodeExchange {
    pub basic: HeaderValue,
    pub codes: Vec<String>,
    pub next_code: AtomicUsize,
    pub redirect_uri: String,
    pub verifier: String,
    /// Every token pair issued (refresh tokens feed W2, access tokens the 10^3 table).
    pub issued: Arc<Mutex<Vec<TokenPair>>>,
}

impl Workload for CodeExchange {
    fn next(&self, _: &mut Rng) -> Option<(Request<Body>, u8)> {
        let code = self
            .codes
            .get(self.next_code.fetch_add(1, Ordering::Relaxed))?;
        let body = form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &self.redirect_uri),
            ("code_verifier", &self.verifier),
        ]);
        Some((post_form("/oauth/token", Some(&self.basic), body.into()), 0))
    }
    fn check(&self, _: u8, parts: &Parts, body: &Bytes) -> Result<(), String> {
        expect_status(parts, body, StatusCode::OK)?;
        let pair = token_pair(body)?;
        if let Ok(mut issued) = self.issued.lock() {
            issued.push(pair);
        }
        Ok(())
    }
}

/// W4: `GET /api/v4/user` with `Authorization: Bearer`, a random token of the set each time.
pub struct BearerUser {
    pub tokens: Vec<HeaderValue>,
}

impl Workload for BearerUser {
    fn next(&self, rng: &mut Rng) -> Option<(Request<Body>, u8)> {
        let token = &self.tokens[rng.below(self.tokens.len())];
        Some((get("/api/v4/user", &[(header::AUTHORIZATION, token)]), 0))
    }
    fn check(&self, _: u8, parts: &Parts, body: &Bytes) -> Result<(), String> {
        expect_status(parts, body, StatusCode::OK)
    }
}

/// W8a: `GET /oauth/userinfo` with `Authorization: Bearer` (tokens with `openid`), a
/// random token of the set each time. An answer shorter than `min_len` bytes is wrong, so
/// group claims cannot silently go missing.
pub struct Userinfo {
    pub tokens: Vec<HeaderValue>,
    pub min_len: usize,
}

impl Workload for Userinfo {
    fn next(&self, rng: &mut Rng) -> Option<(Request<Body>, u8)> {
        let token = &self.tokens[rng.below(self.tokens.len())];
        Some((get("/oauth/userinfo", &[(header::AUTHORIZATION, token)]), 0))
    }
    fn check(&self, _: u8, parts: &Parts, body: &Bytes) -> Result<(), String> {
        expect_status(parts, body, StatusCode::OK)?;
        if body.len() < self.min_len {
            return Err(format!(
                "{} bytes, expected at least {}: {}",
                body.len(),
                self.min_len,
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ));
        }
        Ok(())
    }
}

/// W5: `POST /oauth/introspect` of a random live token of the calling application, which
/// authenticates with HTTP Basic.
pub struct Introspect {
    pub basic: HeaderValue,
    pub bodies: Vec<Bytes>,
}

impl Introspect {
    pub fn new(basic: HeaderValue, tokens: &[String]) -> Introspect {
        Introspect {
            basic,
            bodies: tokens
                .iter()
                .map(|t| Bytes::from(form(&[("token", t), ("token_type_hint", "access_token")])))
                .collect(),
        }
    }
}

impl Workload for Introspect {
    fn next(&self, rng: &mut Rng) -> Option<(Request<Body>, u8)> {
        let body = self.bodies[rng.below(self.bodies.len())].clone();
        Some((post_form("/oauth/introspect", Some(&self.basic), body), 0))
    }
    fn check(&self, _: u8, parts: &Parts, body: &Bytes) -> Result<(), String> {
        expect_status(parts, body, StatusCode::OK)?;
        if memchr(body, b"\"active\":true") {
            Ok(())
        } else {
            Err(format!(
                "inactive: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ))
        }
    }
}

fn memchr(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// W6: the password grant, for one of the seeded users at random.
pub struct Password {
    pub basic: HeaderValue,
    pub bodies: Vec<Bytes>,
}

impl Password {
    pub fn new(basic: HeaderValue, users: &[(String, String)]) -> Password {
        Password {
            basic,
            bodies: users
                .iter()
                .map(|(u, p)| {
                    Bytes::from(form(&[
                        ("grant_type", "password"),
                        ("username", u),
                        ("password", p),
                        ("scope", "api"),
                    ]))
                })
                .collect(),
        }
    }
}

impl Workload for Password {
    fn next(&self, rng: &mut Rng) -> Option<(Request<Body>, u8)> {
        let body = self.bodies[rng.below(self.bodies.len())].clone();
        Some((post_form("/oauth/token", Some(&self.basic), body), 0))
    }
    fn check(&self, _: u8, parts: &Parts, body: &Bytes) -> Result<(), String> {
        expect_status(parts, body, StatusCode::OK)?;
        token_pair(body).map(|_| ())
    }
}

/// W7: a weighted mix; the tag is the index of the workload that made the request.
pub struct Mix {
    pub parts: Vec<(u32, Arc<dyn Workload>)>,
}

impl Workload for Mix {
    fn next(&self, rng: &mut Rng) -> Option<(Request<Body>, u8)> {
        let total: u32 = self.parts.iter().map(|(w, _)| w).sum();
        let mut pick = (rng.next_u64() % u64::from(total.max(1))) as u32;
        for (i, (w, part)) in self.parts.iter().enumerate() {
            if pick < *w {
                return part.next(rng).map(|(req, _)| (req, i as u8));
            }
            pick -= w;
        }
        None
    }
    fn check(&self, tag: u8, parts: &Parts, body: &Bytes) -> Result<(), String> {
        match self.parts.get(usize::from(tag)) {
            Some((_, part)) => part.check(0, parts, body),
            None => Err("unknown tag".into()),
        }
    }
}

/// Seeding through the API (W8's groups, memberships and tokens): each POST of the list
/// sent once, in order, spread over the connections; every answer with the expected status
/// is kept (in the order the answers came).
pub struct Script {
    /// Path and body of each POST.
    pub posts: Vec<(String, Bytes)>,
    pub content_type: HeaderValue,
    /// The credentials: `PRIVATE-TOKEN` or `Authorization`, and its value.
    pub auth: (HeaderName, HeaderValue),
    pub want: StatusCode,
    pub next: AtomicUsize,
    pub answers: Mutex<Vec<Bytes>>,
}

impl Script {
    pub fn new(
        posts: Vec<(String, Bytes)>,
        content_type: &'static str,
        auth: (HeaderName, HeaderValue),
        want: StatusCode,
    ) -> Script {
        Script {
            posts,
            content_type: HeaderValue::from_static(content_type),
            auth,
            want,
            next: AtomicUsize::new(0),
            answers: Mutex::new(Vec::new()),
        }
    }
}

impl Workload for Script {
    fn next(&self, _: &mut Rng) -> Option<(Request<Body>, u8)> {
        let (path, body) = self.posts.get(self.next.fetch_add(1, Ordering::Relaxed))?;
        let mut req = Request::new(body.clone());
        *req.method_mut() = Method::POST;
        *req.uri_mut() = path.parse().unwrap_or_default();
        let h = req.headers_mut();
        h.insert(header::CONTENT_TYPE, self.content_type.clone());
        h.insert(self.auth.0.clone(), self.auth.1.clone());
        Some((req, 0))
    }
    fn check(&self, _: u8, parts: &Parts, body: &Bytes) -> Result<(), String> {
        expect_status(parts, body, self.want)?;
        if let Ok(mut answers) = self.answers.lock() {
            answers.push(body.clone());
        }
        Ok(())
    }
}
