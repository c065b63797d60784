//! W9 (issue 14): `GET /api/v4/user` with a DPoP-bound token. Every request carries a fresh
//! proof (RFC 9449 §4: its own `jti`, `iat`, `htm`, `htu` and the token's `ath`), signed
//! here with ES256 as a client would, so the run pays what DPoP costs the server: one
//! signature verification and one replay-check insert per request, beside W4's lookup.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, bail};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use axum::body::Bytes;
use axum::http::header::{self, HeaderName, HeaderValue};
use axum::http::response::Parts;
use axum::http::{Method, Request, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};

use crate::client::Conn;
use crate::drive::{Rows, Runs, no_note};
use crate::load::{Body, Rng, Workload};
use crate::seed::World;
use crate::server::Process;
use crate::workloads as wl;

/// Tokens minted for the run (through the password grant, so a few).
const TOKENS: usize = 4;

/// A P-256 key and the header every proof of it carries.
pub struct Signer {
    key: EncodingKey,
    jwk: Value,
    /// A random prefix and a counter: every `jti` distinct.
    prefix: String,
    counter: AtomicU64,
}

impl Signer {
    pub fn generate() -> anyhow::Result<Signer> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| anyhow::anyhow!("P-256 key generation failed"))?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
            .map_err(|_| anyhow::anyhow!("the generated key does not load"))?;
        let point = pair.public_key().as_ref();
        if point.len() != 65 {
            bail!("not an uncompressed P-256 point");
        }
        let mut prefix = [0u8; 8];
        aws_lc_rs::rand::fill(&mut prefix).map_err(|_| anyhow::anyhow!("no randomness"))?;
        Ok(Signer {
            key: EncodingKey::from_ec_der(pkcs8.as_ref()),
            jwk: json!({
                "kty": "EC",
                "crv": "P-256",
                "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
            }),
            prefix: hex::encode(prefix),
            counter: AtomicU64::new(0),
        })
    }

    /// A proof for `method` `url`, with `ath` when a token goes with it.
    pub fn proof(&self, method: &str, url: &str, ath: Option<&str>) -> String {
        let mut header = Header::new(jsonwebtoken::Algorithm::ES256);
        header.typ = Some("dpop+jwt".into());
        header.jwk = serde_json::from_value(self.jwk.clone()).ok();
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let iat = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut claims = json!({
            "jti": format!("{}-{n}", self.prefix),
            "htm": method,
            "htu": url,
            "iat": iat,
        });
        if let (Some(ath), Value::Object(m)) = (ath, &mut claims) {
            m.insert("ath".into(), json!(ath));
        }
        jsonwebtoken::encode(&header, &claims, &self.key).unwrap_or_default()
    }
}

/// `ath`: base64url(SHA-256(token)).
fn ath(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(doorward::domain::secret::hash(token))
}

/// W9's requests: a random token of the set, each time with a new proof.
pub struct DpopUser {
    signer: Signer,
    url: String,
    /// (`Authorization: DPoP …`, the token's `ath`)
    tokens: Vec<(HeaderValue, String)>,
}

impl Workload for DpopUser {
    fn next(&self, rng: &mut Rng) -> Option<(Request<Body>, u8)> {
        let (auth, ath) = &self.tokens[rng.below(self.tokens.len())];
        let proof = self.signer.proof("GET", &self.url, Some(ath));
        let mut req = Request::new(Body::new());
        *req.uri_mut() = "/api/v4/user".parse().unwrap_or_default();
        let h = req.headers_mut();
        h.insert(header::AUTHORIZATION, auth.clone());
        h.insert(
            HeaderName::from_static("dpop"),
            HeaderValue::from_str(&proof).ok()?,
        );
        Some((req, 0))
    }
    fn check(&self, _: u8, parts: &Parts, body: &Bytes) -> Result<(), String> {
        if parts.status == StatusCode::OK {
            Ok(())
        } else {
            Err(format!(
                "{}: {}",
                parts.status,
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ))
        }
    }
}

/// W9, when wanted: mints DPoP-bound tokens for the first seeded user, then the sweep.
pub async fn dpop_reads(runs: &mut Runs<'_>, p: &Process, world: &World) -> anyhow::Result<()> {
    if !runs.s.wants("W9") {
        return Ok(());
    }
    let signer = Signer::generate()?;
    let base = format!("http://{}", world.addr);
    let (username, password) = world.users.first().context("no seeded user")?;
    let mut conn = Conn::open(world.addr).await?;
    let mut tokens = Vec::with_capacity(TOKENS);
    for _ in 0..TOKENS {
        let body = wl::form(&[
            ("grant_type", "password"),
            ("username", username),
            ("password", password),
            ("scope", "api"),
        ]);
        let mut req = Request::new(Bytes::from(body));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = "/oauth/token".parse()?;
        let h = req.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        h.insert(header::AUTHORIZATION, world.conf_basic.clone());
        let proof = signer.proof("POST", &format!("{base}/oauth/token"), None);
        h.insert(
            HeaderName::from_static("dpop"),
            HeaderValue::from_str(&proof)?,
        );
        let (parts, body) = conn.send(&req).await?;
        let answer: Value = serde_json::from_slice(&body)
            .with_context(|| format!("{}: not a token response", parts.status))?;
        if answer["token_type"] != "DPoP" {
            bail!("no DPoP-bound token: {answer}");
        }
        let token = answer["access_token"].as_str().context("no access_token")?;
        tokens.push((HeaderValue::from_str(&format!("DPoP {token}"))?, ath(token)));
    }
    let w = Arc::new(DpopUser {
        signer,
        url: format!("{base}/api/v4/user"),
        tokens,
    });
    let label = "DPoP: GET /api/v4/user (a proof per request)";
    runs.sweep(p, "W9", label, Rows::Count, w, no_note).await
}
