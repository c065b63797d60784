//! RFC 9449 DPoP where requests arrive: the `DPoP` header read once, the proof verified
//! (`domain::dpop`, no I/O) and checked against replay in the store, at the token endpoint
//! and at every resource endpoint that reads an access token (the API, UserInfo, token
//! info). A bound token is accepted only as `Authorization: DPoP` with a proof by its key.

use axum::http::{HeaderMap, HeaderValue, Method, header};

use super::error::{ErrorCode, OAuthError};
use crate::domain::dpop::{self, Expected, IAT_WINDOW, VerifiedProof};
use crate::domain::secret;
use crate::state::AppState;

/// The proof a request carries in its one `DPoP` header, verified for `method` and `path`
/// (on the external URL) and for `access_token` (`ath`) when one is presented with it, and
/// recorded so it cannot be used again. `Ok(None)`: no `DPoP` header. `Err`: why the proof
/// is refused, for people.
pub async fn proof_of(
    state: &AppState,
    headers: &HeaderMap,
    method: &Method,
    path: &str,
    access_token: Option<&str>,
) -> Result<Option<VerifiedProof>, String> {
    let mut values = headers.get_all("dpop").iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err("more than one DPoP header".into());
    }
    let proof = value
        .to_str()
        .map_err(|_| "the DPoP header is not text".to_string())?;
    let now = state.clock.now();
    let url = format!("{}{path}", state.config.external_url);
    let expected = Expected {
        method: method.as_str(),
        url: &url,
        now,
        access_token,
    };
    let verified = dpop::verify(proof, &expected).map_err(|e| e.to_string())?;
    // FAPI 2.0 §5.3.2.1 item 13: nothing more than 60 seconds ahead under the profile.
    if state.config.fapi2() && verified.iat > now + 60 {
        return Err("the DPoP proof's iat is more than 60 seconds ahead".into());
    }
    // FAPI 2.0 §5.4.1: PS256, ES256 or EdDSA under the profile.
    if !crate::domain::jws::algorithms(state.config.fapi2()).contains(&verified.alg) {
        return Err(format!(
            "the DPoP proof's alg {} is not allowed by the FAPI 2.0 profile",
            verified.alg
        ));
    }
    // §11.1: once per key and jti, for as long as its iat is acceptable.
    let seen = secret::hash(&format!("{}.{}", verified.jkt, verified.jti));
    let keep_until = verified.iat.max(now) + IAT_WINDOW + 1;
    let fresh = state
        .store
        .record_single_use_jwt(&seen, keep_until)
        .await
        .map_err(|e| format!("the proof could not be recorded ({e})"))?;
    if !fresh {
        return Err("the DPoP proof was used before".into());
    }
    Ok(Some(verified))
}

/// The token endpoint's proof (§5): `invalid_dpop_proof` (400) when a `DPoP` header is
/// there but does not hold.
pub async fn token_request_proof(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<VerifiedProof>, OAuthError> {
    proof_of(state, headers, &Method::POST, "/oauth/token", None)
        .await
        .map_err(|why| {
            OAuthError::with_description(ErrorCode::InvalidDpopProof, "The DPoP proof is invalid.")
                .detail(why)
        })
}

/// Whether the request's `Authorization` header uses the `DPoP` scheme (§7.1).
pub fn dpop_scheme(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("dpop"))
}

/// Why a resource request's token was refused for its sender constraint: a 401 with a
/// `WWW-Authenticate: DPoP` challenge (§7.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DpopRefusal {
    /// `invalid_dpop_proof` for any proof that does not hold (or none where one is needed),
    /// `invalid_token` only for a good proof by another key, or a bearer token sent with
    /// the DPoP scheme.
    pub error: &'static str,
    pub description: String,
    /// The algorithms the challenge offers (`algs`, §7.1): fewer under the FAPI 2.0 profile.
    pub algs: &'static [&'static str],
}

impl DpopRefusal {
    fn proof(algs: &'static [&'static str], description: impl Into<String>) -> DpopRefusal {
        DpopRefusal {
            error: "invalid_dpop_proof",
            description: description.into(),
            algs,
        }
    }

    fn token(algs: &'static [&'static str], description: impl Into<String>) -> DpopRefusal {
        DpopRefusal {
            error: "invalid_token",
            description: description.into(),
            algs,
        }
    }

    /// `DPoP algs="…", error="…", error_description="…"`.
    pub fn www_authenticate(&self) -> HeaderValue {
        let description = self.description.replace(['"', '\\'], "");
        let value = format!(
            "DPoP algs=\"{}\", error=\"{}\", error_description=\"{description}\"",
            self.algs.join(" "),
            self.error
        );
        HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("DPoP"))
    }
}

/// The path a request was sent to, as the client wrote it into `htu`: routers nested under
/// a prefix (the API under `/api/v4`) see only the rest, so the original URI comes first.
pub fn request_path(parts: &axum::http::request::Parts) -> &str {
    parts
        .extensions
        .get::<axum::extract::OriginalUri>()
        .map_or(parts.uri.path(), |u| u.0.path())
}

/// Checks the sender constraint of a live access token presented to a resource endpoint:
/// a token bound to a key (`bound_jkt`) needs the `DPoP` scheme and a proof by that key
/// for this very request (`htm`, `htu`, `ath`); an unbound one must not claim the scheme.
pub async fn check_resource_request(
    state: &AppState,
    headers: &HeaderMap,
    method: &Method,
    path: &str,
    token: &str,
    bound_jkt: Option<&str>,
) -> Result<(), DpopRefusal> {
    let algs = crate::domain::jws::algorithms(state.config.fapi2());
    let scheme = dpop_scheme(headers);
    let Some(bound) = bound_jkt else {
        return match scheme {
            true => Err(DpopRefusal::token(
                algs,
                "The access token is not DPoP-bound: present it as a Bearer token.",
            )),
            false => Ok(()),
        };
    };
    if !scheme {
        return Err(DpopRefusal::proof(
            algs,
            "The access token is DPoP-bound: present it with the DPoP scheme and a DPoP proof.",
        ));
    }
    let proof = proof_of(state, headers, method, path, Some(token))
        .await
        .map_err(|why| DpopRefusal::proof(algs, why))?
        .ok_or_else(|| DpopRefusal::proof(algs, "The DPoP header is missing."))?;
    if !secret::constant_time_eq(proof.jkt.as_bytes(), bound.as_bytes()) {
        return Err(DpopRefusal::token(
            algs,
            "The DPoP proof is signed by another key than the access token's.",
        ));
    }
    Ok(())
}
