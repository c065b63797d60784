//! A DPoP client key for the tests (RFC 9449): a fresh P-256 key per [`DpopKey`], its public
//! JWK and RFC 7638 thumbprint (§6.1, the `jkt`), and proofs (§4.2): good ones from
//! [`DpopKey::proof`], and from [`DpopKey::proof_with`] ones wrong in any single way the
//! server must refuse (§4.3: `typ`, `alg`, `jwk`, `htm`, `htu`, `iat`, `jti`, `ath`).
//!
//! Proofs are built by hand (header and claims JSON as given, base64url) and signed with
//! `jsonwebtoken::crypto::sign`, so the header may say anything, including an `alg` other than
//! the one the signature is made with.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// A client's DPoP key pair (ES256).
pub struct DpopKey {
    encoding: EncodingKey,
    jwk: Value,
}

/// Everything a proof says, to be changed one field at a time from
/// [`DpopKey::spec`]'s good values.
#[derive(Clone, Debug)]
pub struct ProofSpec {
    /// `htm`; `None` leaves the claim out.
    pub method: Option<String>,
    /// `htu`; `None` leaves the claim out.
    pub url: Option<String>,
    /// `iat`, seconds since the epoch; `None` leaves it out (`extra_claims` sends one of
    /// another type).
    pub iat: Option<i64>,
    /// `jti`; `None` leaves it out. Reuse one to replay.
    pub jti: Option<String>,
    /// `ath` exactly as sent (see [`ath`]); `None` leaves it out.
    pub ath: Option<String>,
    /// The header's `typ`; `None` leaves it out.
    pub typ: Option<String>,
    /// The header's `alg`; `None` leaves it out. The signature is ES256 whatever this says.
    pub alg: Option<String>,
    /// The header's `jwk`: this key's public JWK by default; another key's, a private one, or
    /// any JSON to lie about the key; `None` leaves it out.
    pub jwk: Option<Value>,
    /// Further claims, merged in last (`nonce`, an overriding `htm`...).
    pub extra_claims: Value,
    /// Further header members, merged in last.
    pub extra_header: Value,
}

impl DpopKey {
    /// A new random P-256 key.
    pub fn generate() -> DpopKey {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("P-256 key generation");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
            .expect("a generated key loads");
        // The uncompressed point: 0x04 || x || y, 32 bytes each.
        let point = pair.public_key().as_ref();
        assert_eq!(point.len(), 65, "an uncompressed P-256 point");
        let jwk = json!({
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        });
        DpopKey {
            encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
            jwk,
        }
    }

    /// The public JWK, as a proof's header carries it.
    pub fn jwk(&self) -> Value {
        self.jwk.clone()
    }

    /// The RFC 7638 SHA-256 thumbprint of the public key, base64url: what `cnf.jkt` and
    /// `dpop_jkt` hold. Computed here independently of the server's code.
    pub fn thumbprint(&self) -> String {
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            self.jwk["x"].as_str().expect("x"),
            self.jwk["y"].as_str().expect("y"),
        );
        URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
    }

    /// A good proof for a request: a fresh random `jti`, `iat` now, and the access token's
    /// `ath` when one is given.
    pub fn proof(&self, method: &str, url: &str, access_token: Option<&str>) -> String {
        let mut spec = self.spec(method, url);
        spec.ath = access_token.map(ath);
        self.proof_with(spec)
    }

    /// The good values of a proof for `method` and `url`, without `ath`: change what a test
    /// needs, then [`DpopKey::proof_with`].
    pub fn spec(&self, method: &str, url: &str) -> ProofSpec {
        ProofSpec {
            method: Some(method.to_string()),
            url: Some(url.to_string()),
            iat: Some(now()),
            jti: Some(fresh_jti()),
            ath: None,
            typ: Some("dpop+jwt".into()),
            alg: Some("ES256".into()),
            jwk: Some(self.jwk()),
            extra_claims: json!({}),
            extra_header: json!({}),
        }
    }

    /// A proof saying exactly what `spec` says, signed with this key (ES256).
    pub fn proof_with(&self, spec: ProofSpec) -> String {
        let mut header = serde_json::Map::new();
        if let Some(typ) = spec.typ {
            header.insert("typ".into(), json!(typ));
        }
        if let Some(alg) = spec.alg {
            header.insert("alg".into(), json!(alg));
        }
        if let Some(jwk) = spec.jwk {
            header.insert("jwk".into(), jwk);
        }
        merge(&mut header, spec.extra_header);
        let mut claims = serde_json::Map::new();
        if let Some(jti) = spec.jti {
            claims.insert("jti".into(), json!(jti));
        }
        if let Some(method) = spec.method {
            claims.insert("htm".into(), json!(method));
        }
        if let Some(url) = spec.url {
            claims.insert("htu".into(), json!(url));
        }
        if let Some(iat) = spec.iat {
            claims.insert("iat".into(), json!(iat));
        }
        if let Some(ath) = spec.ath {
            claims.insert("ath".into(), json!(ath));
        }
        merge(&mut claims, spec.extra_claims);
        self.sign_raw(
            &Value::Object(header).to_string(),
            &Value::Object(claims).to_string(),
        )
    }

    /// A compact JWS of the header and payload texts exactly as given (duplicate members,
    /// odd whitespace, not JSON at all), signed with this key under ES256.
    pub fn sign_raw(&self, header: &str, payload: &str) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let signature =
            jsonwebtoken::crypto::sign(input.as_bytes(), &self.encoding, Algorithm::ES256)
                .expect("ES256 signing");
        format!("{input}.{signature}")
    }
}

/// The `ath` of an access token: base64url of its SHA-256 (RFC 9449 §4.2).
pub fn ath(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(access_token.as_bytes()))
}

/// Now, in seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// A new random `jti`: 16 random bytes, base64url.
pub fn fresh_jti() -> String {
    URL_SAFE_NO_PAD.encode(doorward::domain::secret::random_bytes::<16>())
}

/// Adds `extra`'s members to `into` (replacing those of the same name), when it is an object.
fn merge(into: &mut serde_json::Map<String, Value>, extra: Value) {
    if let Value::Object(extra) = extra {
        into.extend(extra);
    }
}

/// The `WWW-Authenticate` header of a refusal, or "".
pub fn challenge(res: &reqwest::Response) -> String {
    res.headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use doorward::domain::dpop::{Expected, ProofError, thumbprint, verify};

    const URL: &str = "https://doorward.example/oauth/token";

    fn expected(access_token: Option<&str>) -> Expected<'_> {
        Expected {
            method: "POST",
            url: URL,
            now: now(),
            access_token,
        }
    }

    /// The signer's proofs are what the server's verifier accepts, and its bad proofs are
    /// refused for the reason they were made bad.
    #[test]
    fn the_signer_agrees_with_the_verifier() {
        let key = DpopKey::generate();
        assert_eq!(thumbprint(&key.jwk()).unwrap(), key.thumbprint());
        let proof = key.proof("POST", URL, None);
        let verified = verify(&proof, &expected(None)).unwrap();
        assert_eq!(verified.jkt, key.thumbprint());
        let bound = key.proof("POST", URL, Some("tok"));
        assert!(verify(&bound, &expected(Some("tok"))).is_ok());
        assert_eq!(
            verify(&bound, &expected(Some("other"))),
            Err(ProofError::WrongAth)
        );
        // A fresh jti each time.
        assert_ne!(
            verify(&key.proof("POST", URL, None), &expected(None))
                .unwrap()
                .jti,
            verified.jti
        );

        let refused = |spec: ProofSpec| verify(&key.proof_with(spec), &expected(None));
        let good = || key.spec("POST", URL);
        assert!(refused(good()).is_ok());
        let mut spec = good();
        spec.method = Some("GET".into());
        assert_eq!(refused(spec), Err(ProofError::WrongMethod));
        let mut spec = good();
        spec.url = Some("https://doorward.example/other".into());
        assert_eq!(refused(spec), Err(ProofError::WrongUrl));
        let mut spec = good();
        spec.iat = Some(now() - 3600);
        assert_eq!(refused(spec), Err(ProofError::Stale));
        let mut spec = good();
        spec.typ = Some("JWT".into());
        assert_eq!(refused(spec), Err(ProofError::WrongType));
        let mut spec = good();
        spec.alg = Some("HS256".into());
        assert_eq!(refused(spec), Err(ProofError::UnsupportedAlgorithm));
        let mut spec = good();
        spec.jwk = Some(DpopKey::generate().jwk());
        assert_eq!(refused(spec), Err(ProofError::BadSignature));
        let mut spec = good();
        spec.jti = None;
        assert_eq!(refused(spec), Err(ProofError::MissingJti));
        let mut spec = good();
        spec.extra_claims = json!({"iat": "now"});
        assert_eq!(refused(spec), Err(ProofError::Stale));
    }
}
