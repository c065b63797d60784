//! `private_key_jwt` clients for the tests (RFC 7523, RFC 9101): a client registered through
//! the admin API with a P-256 key, and the JWTs it signs: client assertions and request
//! objects, good ones and ones wrong in any single way. Keys are [`DpopKey`]s (any ES256
//! key will do); JWTs are built by hand so a header or claim may say anything.

use serde_json::{Value, json};

use super::TestApp;
use super::dpop::{DpopKey, fresh_jti, now};

pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
pub const KID: &str = "key-1";

/// A registered `private_key_jwt` client and its signing key.
pub struct KeyClient {
    pub client_id: String,
    pub redirect_uri: String,
    pub key: DpopKey,
    /// The admin API's answer when it was created.
    pub created: Value,
}

/// The public JWK Set of `key` under `kid`, as JSON text.
pub fn jwks(key: &DpopKey, kid: &str) -> String {
    let mut jwk = key.jwk();
    jwk["kid"] = json!(kid);
    jwk["use"] = json!("sig");
    json!({ "keys": [jwk] }).to_string()
}

/// Creates an instance-wide `private_key_jwt` client through `POST /api/v4/applications`,
/// with its keys given inline under [`KID`].
pub async fn register(app: &TestApp, scopes: &str) -> KeyClient {
    let key = DpopKey::generate();
    let body = json!({
        "name": "Key client",
        "redirect_uri": super::oauth::REDIRECT,
        "scopes": scopes,
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": jwks(&key, KID),
    });
    let (status, created) = create(app, &body).await;
    assert_eq!(status, 200, "{created}");
    KeyClient {
        client_id: created["application_id"].as_str().unwrap().to_string(),
        redirect_uri: super::oauth::REDIRECT.to_string(),
        key,
        created,
    }
}

/// `POST /api/v4/applications` as root: the status and the JSON answer.
pub async fn create(app: &TestApp, body: &Value) -> (u16, Value) {
    let admin = app.token_for("root", "api").await;
    let res = reqwest::Client::new()
        .post(app.url("/api/v4/applications"))
        .bearer_auth(admin)
        .json(body)
        .send()
        .await
        .unwrap();
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

impl KeyClient {
    /// The good claims of an assertion for `aud`: a fresh `jti`, a minute to live.
    pub fn assertion_claims(&self, aud: &str) -> Value {
        json!({
            "iss": self.client_id, "sub": self.client_id, "aud": aud,
            "iat": now(), "exp": now() + 60, "jti": fresh_jti(),
        })
    }

    /// A good assertion for `aud`.
    pub fn assertion(&self, aud: &str) -> String {
        self.sign(
            &json!({"alg": "ES256", "kid": KID}),
            &self.assertion_claims(aud),
        )
    }

    /// A JWT of this header and these claims, signed with the client's key (ES256).
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        self.key.sign_raw(&header.to_string(), &claims.to_string())
    }

    /// The form fields that authenticate with `assertion`.
    pub fn auth_fields(assertion: &str) -> [(&'static str, String); 2] {
        [
            ("client_assertion_type", ASSERTION_TYPE.to_string()),
            ("client_assertion", assertion.to_string()),
        ]
    }

    /// A good request object (RFC 9101) for `issuer` carrying `params`.
    pub fn request_object(&self, issuer: &str, params: Value) -> String {
        let mut claims = json!({
            "iss": self.client_id, "aud": issuer, "client_id": self.client_id,
            "exp": now() + 300, "nbf": now(), "jti": fresh_jti(),
        });
        if let (Value::Object(c), Value::Object(p)) = (&mut claims, params) {
            c.extend(p);
        }
        self.sign(
            &json!({"alg": "ES256", "kid": KID, "typ": "oauth-authz-req+jwt"}),
            &claims,
        )
    }
}

/// POSTs `form` to `path`; the status and JSON answer.
pub async fn post_form(app: &TestApp, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let res = reqwest::Client::new()
        .post(app.url(path))
        .form(form)
        .send()
        .await
        .unwrap();
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

/// An RSA signing key (2048 bits) for RS256 and PS256 JWTs, with its public JWK.
pub struct RsaKey {
    encoding: jsonwebtoken::EncodingKey,
    pub jwk: Value,
}

impl RsaKey {
    pub fn generate() -> RsaKey {
        use aws_lc_rs::encoding::AsDer;
        use base64::Engine;
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let der = pair.as_der().unwrap();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(der.as_ref())
        );
        let encoding = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
        let jwk =
            jsonwebtoken::jwk::Jwk::from_encoding_key(&encoding, jsonwebtoken::Algorithm::RS256)
                .unwrap();
        let jsonwebtoken::jwk::AlgorithmParameters::RSA(params) = jwk.algorithm else {
            panic!("not an RSA key")
        };
        RsaKey {
            encoding,
            jwk: json!({"kty": "RSA", "n": params.n, "e": params.e, "kid": "rsa-1"}),
        }
    }

    /// A JWT of `header` and `claims` signed under `alg` (RS256 or PS256), whatever the
    /// header says.
    pub fn sign(&self, alg: jsonwebtoken::Algorithm, header: &Value, claims: &Value) -> String {
        use base64::Engine;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = jsonwebtoken::crypto::sign(input.as_bytes(), &self.encoding, alg).unwrap();
        format!("{input}.{signature}")
    }
}
