//! Proof Key for Code Exchange (RFC 7636).

use sha2::{Digest, Sha256};

use super::secret::{base64url, constant_time_eq};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Plain,
    S256,
}

impl Method {
    /// RFC 7636 §4.3: exactly `plain` or `S256` (case-sensitive).
    pub fn parse(s: &str) -> Option<Method> {
        match s {
            "plain" => Some(Method::Plain),
            "S256" => Some(Method::S256),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Plain => "plain",
            Method::S256 => "S256",
        }
    }
}

/// A `code_challenge` with its `code_challenge_method`, as an authorization code keeps them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    pub value: String,
    pub method: Method,
}

/// RFC 7636 §4.1/§4.2: 43 to 128 characters of `[A-Za-z0-9-._~]`, for verifiers and for
/// challenges alike (an S256 challenge is 43 base64url characters).
pub fn is_well_formed(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// RFC 7636 §4.6: does `verifier` answer `challenge` under `method`? Constant-time.
pub fn verify(method: Method, challenge: &str, verifier: &str) -> bool {
    if !is_well_formed(verifier) {
        return false;
    }
    match method {
        Method::Plain => constant_time_eq(verifier.as_bytes(), challenge.as_bytes()),
        Method::S256 => {
            let computed = base64url(&Sha256::digest(verifier.as_bytes()));
            constant_time_eq(computed.as_bytes(), challenge.as_bytes())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(verify(Method::S256, challenge, verifier));
        assert!(!verify(
            Method::S256,
            challenge,
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXX"
        ));
        assert!(!verify(Method::Plain, challenge, verifier));
        assert!(verify(Method::Plain, verifier, verifier));
    }

    #[test]
    fn gitlabs_documented_example() {
        // GitLab's docs: this verifier gives this S256 challenge.
        assert!(verify(
            Method::S256,
            "2i0WFA-0AerkjQm4X4oDEhqA17QIAKNjXpagHBXmO_U",
            "ks02i3jdikdo2k0dkfodf3m39rjfjsdk0wk349rj3jrhf"
        ));
    }

    #[test]
    fn verifier_shape() {
        assert!(!is_well_formed("short"));
        assert!(!is_well_formed(&"a".repeat(129)));
        assert!(!is_well_formed(&format!("{}+", "a".repeat(43))));
        assert!(is_well_formed(&"a~._-".repeat(9)));
        assert_eq!(Method::parse("s256"), None);
    }
}
