//! Signing key material, no I/O: generating RS256 and ES256 keys with aws-lc-rs, loading
//! them into jsonwebtoken, their public JWK (RFC 7517) and `kid`, the RFC 7638 thumbprint,
//! as GitLab's `kid` is.
//!
//! Keys travel between crates as PKCS#8 PEM text only: jsonwebtoken's `from_rsa_der`
//! wants PKCS#1 and fails only at the first signature when given PKCS#8, while
//! `from_rsa_pem` and `from_ec_pem` read PKCS#8 PEM (dependencies.md, pitfall 5). Every
//! loaded key signs and verifies a test token at once, so a bad key fails at start, not at
//! the first sign-in.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::domain::secret::{SecretString, base64url};

/// The JWS algorithms Doorward signs with (RFC 7518 §3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256 on a 2048-bit key: GitLab's, and the one every
    /// relying party supports (OIDC Core §15.1 makes it mandatory to implement).
    Rs256,
    /// ECDSA on P-256 with SHA-256: shorter tokens, faster signatures.
    Es256,
}

impl Alg {
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Es256 => "ES256",
        }
    }

    pub fn parse(text: &str) -> Option<Alg> {
        match text {
            "RS256" => Some(Alg::Rs256),
            "ES256" => Some(Alg::Es256),
            _ => None,
        }
    }

    fn jws(self) -> Algorithm {
        match self {
            Alg::Rs256 => Algorithm::RS256,
            Alg::Es256 => Algorithm::ES256,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key generation failed")]
    Generate,
    #[error("unusable signing key: {0}")]
    Format(#[from] jsonwebtoken::errors::Error),
    #[error("the signing key does not decrypt: is DOORWARD_SECRET_KEY the one it was made with?")]
    Decrypt,
    #[error("another key rotation ran at the same time; list the keys and retry if needed")]
    Concurrent,
    #[error("unknown signing algorithm {0:?}")]
    UnknownAlg(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// A public key as published in the JWKS (RFC 7517 §4, RFC 7518 §6).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PublicJwk {
    pub kty: &'static str,
    pub kid: String,
    #[serde(rename = "use")]
    pub use_: &'static str,
    pub alg: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
}

/// A private key ready to sign, with its public half.
pub struct SigningKey {
    pub alg: Alg,
    pub public: PublicJwk,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg)
            .field("kid", &self.public.kid)
            .finish_non_exhaustive()
    }
}

/// A new private key as PKCS#8 PEM.
pub fn generate(alg: Alg) -> Result<SecretString, KeyError> {
    let der = match alg {
        Alg::Rs256 => {
            let pair = aws_lc_rs::rsa::KeyPair::generate(KeySize::Rsa2048)
                .map_err(|_| KeyError::Generate)?;
            let der = pair.as_der().map_err(|_| KeyError::Generate)?;
            der.as_ref().to_vec()
        }
        Alg::Es256 => {
            let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                .map_err(|_| KeyError::Generate)?;
            let doc = pair.to_pkcs8v1().map_err(|_| KeyError::Generate)?;
            doc.as_ref().to_vec()
        }
    };
    Ok(SecretString::new(pkcs8_pem(&der)))
}

/// PEM armour (RFC 7468 §10) around PKCS#8 DER: base64 in lines of 64.
fn pkcs8_pem(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END PRIVATE KEY-----\n");
    out
}

/// RFC 7638 §3: SHA-256 of the required members in lexicographic order, no whitespace,
/// base64url. RSA: `e`, `kty`, `n`.
pub fn rsa_thumbprint(n: &str, e: &str) -> String {
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    base64url(&Sha256::digest(canonical.as_bytes()))
}

/// RFC 7638 §3.2: EC keys hash `crv`, `kty`, `x`, `y`.
pub fn ec_thumbprint(crv: &str, x: &str, y: &str) -> String {
    let canonical = format!(r#"{{"crv":"{crv}","kty":"EC","x":"{x}","y":"{y}"}}"#);
    base64url(&Sha256::digest(canonical.as_bytes()))
}

impl SigningKey {
    /// Loads a PKCS#8 PEM key, derives its public JWK and `kid`, and proves it can sign a
    /// token that its own public key verifies.
    pub fn from_pem(alg: Alg, pem: &SecretString) -> Result<SigningKey, KeyError> {
        let pem = pem.expose().as_bytes();
        let encoding = match alg {
            Alg::Rs256 => EncodingKey::from_rsa_pem(pem)?,
            Alg::Es256 => EncodingKey::from_ec_pem(pem)?,
        };
        let jwk = Jwk::from_encoding_key(&encoding, alg.jws())?;
        let (public, decoding) = match &jwk.algorithm {
            AlgorithmParameters::RSA(rsa) => (
                PublicJwk {
                    kty: "RSA",
                    kid: rsa_thumbprint(&rsa.n, &rsa.e),
                    use_: "sig",
                    alg: alg.as_str(),
                    n: Some(rsa.n.clone()),
                    e: Some(rsa.e.clone()),
                    crv: None,
                    x: None,
                    y: None,
                },
                DecodingKey::from_rsa_components(&rsa.n, &rsa.e)?,
            ),
            AlgorithmParameters::EllipticCurve(ec) => {
                let crv = serde_json::to_value(&ec.curve)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_else(|| "P-256".into());
                (
                    PublicJwk {
                        kty: "EC",
                        kid: ec_thumbprint(&crv, &ec.x, &ec.y),
                        use_: "sig",
                        alg: alg.as_str(),
                        n: None,
                        e: None,
                        crv: Some(crv),
                        x: Some(ec.x.clone()),
                        y: Some(ec.y.clone()),
                    },
                    DecodingKey::from_ec_components(&ec.x, &ec.y)?,
                )
            }
            _ => return Err(KeyError::UnknownAlg(alg.as_str().into())),
        };
        let key = SigningKey {
            alg,
            public,
            encoding,
            decoding,
        };
        key.self_test()?;
        Ok(key)
    }

    pub fn kid(&self) -> &str {
        &self.public.kid
    }

    /// A compact JWS of `claims` with `typ`, `alg` and `kid` in the header (GitLab's
    /// header, OIDC Core §10.1).
    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, KeyError> {
        self.sign_typed(claims, "JWT")
    }

    /// Signs with an explicit `typ` header (RFC 8725 §3.11), e.g. `logout+jwt`.
    pub fn sign_typed<T: Serialize>(&self, claims: &T, typ: &str) -> Result<String, KeyError> {
        let mut header = Header::new(self.alg.jws());
        header.typ = Some(typ.into());
        header.kid = Some(self.public.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.encoding)?)
    }

    /// Verifies the signature of `token` with this key; the claims are checked by the
    /// caller through `validation`.
    pub fn verify(
        &self,
        token: &str,
        validation: &Validation,
    ) -> Result<serde_json::Map<String, serde_json::Value>, KeyError> {
        Ok(jsonwebtoken::decode(token, &self.decoding, validation)?.claims)
    }

    /// A validation for tokens of this key's algorithm (exactly one algorithm: pitfall 6,
    /// RFC 8725 §3.1).
    pub fn validation(&self) -> Validation {
        Validation::new(self.alg.jws())
    }

    fn self_test(&self) -> Result<(), KeyError> {
        let probe = serde_json::json!({"probe": true, "exp": i64::MAX / 2});
        let token = self.sign(&probe)?;
        self.verify(&token, &self.validation())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_7638_section_3_1_example_thumbprint() {
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        assert_eq!(
            rsa_thumbprint(n, "AQAB"),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn generated_keys_sign_and_carry_their_thumbprint_as_kid() {
        for alg in [Alg::Rs256, Alg::Es256] {
            let pem = generate(alg).unwrap();
            assert!(pem.expose().starts_with("-----BEGIN PRIVATE KEY-----\n"));
            let key = SigningKey::from_pem(alg, &pem).unwrap();
            let token = key
                .sign(&serde_json::json!({"sub": "1", "exp": 4_000_000_000i64}))
                .unwrap();
            let header = jsonwebtoken::decode_header(&token).unwrap();
            assert_eq!(header.kid.as_deref(), Some(key.kid()));
            assert_eq!(header.typ.as_deref(), Some("JWT"));
            let claims = key.verify(&token, &key.validation()).unwrap();
            assert_eq!(claims["sub"], "1");
            let expected = match alg {
                Alg::Rs256 => rsa_thumbprint(
                    key.public.n.as_deref().unwrap(),
                    key.public.e.as_deref().unwrap(),
                ),
                Alg::Es256 => ec_thumbprint(
                    "P-256",
                    key.public.x.as_deref().unwrap(),
                    key.public.y.as_deref().unwrap(),
                ),
            };
            assert_eq!(key.kid(), expected);
            let jwk = serde_json::to_value(&key.public).unwrap();
            assert_eq!(jwk["use"], "sig");
            assert_eq!(jwk["alg"], alg.as_str());
        }
    }
}
