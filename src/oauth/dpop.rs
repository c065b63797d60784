//! RFC 9449 DPoP where requests arrive: the `DPoP` header read once, the proof verified
//! (`domain::dpop`, no I/O) and checked against replay in the store, at the token endpoint
//! and at every resource endpoint that reads an access token (the API, UserInfo, token
//! info). A bound token is accepted only as `Authorization: DPoP` with a proof by its key.

use axum::http::{HeaderMap, HeaderValue, Method, header};

use super::error::{ErrorCode, OAuthError};
use crate::domain::dpop::{self, Expected, IAT_WINDOW, VerifiedProof};
use crate::domain::secret;
use crate::state::AppState;
use crate::store::StoreError;

/// Why a proof was not accepted.
#[derive(Debug)]
pub enum ProofError {
    /// The proof does not hold; why, for people.
    Refused(String),
    /// Its replay record could not be written: the store failed, not the client.
    Store(StoreError),
}

impl From<String> for ProofError {
    fn from(why: String) -> ProofError {
        ProofError::Refused(why)
    }
}

impl From<&str> for ProofError {
    fn from(why: &str) -> ProofError {
        ProofError::Refused(why.to_string())
    }
}

/// The proof a request carries in its one `DPoP` header, verified for `method` and `path`
/// (on the external URL) and for `access_token` (`ath`) when one is presented with it, and
/// recorded so it cannot be used again. `Ok(None)`: no `DPoP` header.
async fn proof_of(
    state: &AppState,
    headers: &HeaderMap,
    method: &Method,
    path: &str,
    access_token: Option<&str>,
) -> Result<Option<VerifiedProof>, ProofError> {
    let mut values = headers.get_all("dpop").iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    // §4.3 check 1: exactly one DPoP header.
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
        )
        .into());
    }
    // §11.1: once per key and jti, for as long as its iat is acceptable.
    let seen = secret::hash(&format!("{}.{}", verified.jkt, verified.jti));
    let keep_until = verified.iat.max(now) + IAT_WINDOW + 1;
    let fresh = state
        .store
        .record_single_use_jwt(&seen, keep_until)
        .await
        .map_err(ProofError::Store)?;
    if !fresh {
        return Err("the DPoP proof was used before".into());
    }
    Ok(Some(verified))
}

/// The proof sent to one of our endpoints (the token endpoint, §5, or the PAR endpoint,
/// §10.1, at `path`): 400 `invalid_dpop_proof` when a `DPoP` header is there but does not
/// hold; a store failure is the store's error (503), not the client's.
pub async fn endpoint_proof(
    state: &AppState,
    headers: &HeaderMap,
    path: &str,
) -> Result<Option<VerifiedProof>, OAuthError> {
    if !headers.contains_key("dpop") {
        return Ok(None);
    }
    // On the heap, as at resource endpoints: most token requests carry no proof.
    Box::pin(proof_of(state, headers, &Method::POST, path, None))
        .await
        .map_err(|e| match e {
            ProofError::Refused(why) => OAuthError::with_description(
                ErrorCode::InvalidDpopProof,
                "The DPoP proof is invalid.",
            )
            .detail(why),
            ProofError::Store(e) => e.into(),
        })
}

/// The access token in the request's `Authorization: DPoP <token>` header (§7.1), if the
/// request uses that scheme with a token.
fn dpop_scheme_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("dpop"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty())
}

/// A token refused (unknown, expired, revoked, not an access token) while presented with
/// the `DPoP` scheme: §7.1's `DPoP` challenge with `invalid_token`, not a `Bearer` one.
/// `None` when the request did not use the scheme.
pub fn invalid_token_under_scheme(
    state: &AppState,
    headers: &HeaderMap,
    description: &str,
) -> Option<DpopRefusal> {
    dpop_scheme_token(headers).is_some().then(|| {
        DpopRefusal::token(
            crate::domain::jws::algorithms(state.config.fapi2()),
            description,
        )
    })
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
/// a token bound to a key (`bound_jkt`) needs the `DPoP` scheme carrying this very token
/// and a proof by that key for this very request (`htm`, `htu`, `ath`); an unbound one must
/// not claim the scheme. `Err` only when the store failed.
pub async fn check_resource_request(
    state: &AppState,
    headers: &HeaderMap,
    method: &Method,
    path: &str,
    token: &str,
    bound_jkt: Option<&str>,
) -> Result<Result<(), DpopRefusal>, StoreError> {
    let algs = crate::domain::jws::algorithms(state.config.fapi2());
    let scheme_token = dpop_scheme_token(headers);
    let Some(bound) = bound_jkt else {
        return Ok(match scheme_token {
            Some(_) => Err(DpopRefusal::token(
                algs,
                "The access token is not DPoP-bound: present it as a Bearer token.",
            )),
            None => Ok(()),
        });
    };
    // §7.1: only in the DPoP scheme's own header, not beside an empty one (the token then
    // came by a query or body parameter, or PRIVATE-TOKEN).
    if scheme_token != Some(token) {
        return Ok(Err(DpopRefusal::proof(
            algs,
            "The access token is DPoP-bound: present it with the DPoP scheme and a DPoP proof.",
        )));
    }
    // On the heap: only bound tokens get here, and the proof's futures (verification, the
    // replay record) would otherwise enlarge every resource request's future.
    let proof = match Box::pin(proof_of(state, headers, method, path, Some(token))).await {
        Ok(Some(proof)) => proof,
        Ok(None) => return Ok(Err(DpopRefusal::proof(algs, "The DPoP header is missing."))),
        Err(ProofError::Refused(why)) => return Ok(Err(DpopRefusal::proof(algs, why))),
        Err(ProofError::Store(e)) => return Err(e),
    };
    if !secret::constant_time_eq(proof.jkt.as_bytes(), bound.as_bytes()) {
        return Ok(Err(DpopRefusal::token(
            algs,
            "The DPoP proof is signed by another key than the access token's.",
        )));
    }
    Ok(Ok(()))
}
