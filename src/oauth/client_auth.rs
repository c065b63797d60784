//! Client authentication (RFC 6749 §2.3), the one entry for the token, pushed
//! authorization, revocation, introspection and device authorization endpoints:
//! [`require`] or [`optional`].
//!
//! A client authenticates with HTTP Basic (`client_id:client_secret`, each part
//! form-urlencoded before base64, §2.3.1), with `client_id` and `client_secret` in the
//! body, or with a JWT signed by a key it registered (`private_key_jwt`, RFC 7523 §2.2:
//! `client_assertion_type` and `client_assertion`); using two at once is `invalid_request`
//! (§2.3: one method per request). A public client sends only `client_id`. Secrets are
//! compared by their SHA-256 in constant time. A client registered for `private_key_jwt`
//! authenticates only so, and a client with a secret never with an assertion. Under the
//! FAPI 2.0 profile only `private_key_jwt` authenticates at all (FAPI 2.0 §5.3.2.1).

use axum::http::HeaderMap;
use axum::http::header;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::error::{ErrorCode, OAuthError};
use super::params::Params;
use crate::domain::application::Application;
use crate::domain::client_assertion::{self, ASSERTION_TYPE};
use crate::domain::jws::Compact;
use crate::domain::secret;
use crate::state::AppState;

/// Credentials as the request presented them, before any lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresentedCredentials {
    pub client_id: String,
    pub secret: Option<String>,
    pub via_basic: bool,
    /// A `private_key_jwt` assertion (RFC 7523 §2.2), not yet checked.
    pub assertion: Option<String>,
}

/// Extracts the client's credentials. `Ok(None)` when the request names no client at all.
pub fn presented(
    headers: &HeaderMap,
    params: &Params,
) -> Result<Option<PresentedCredentials>, OAuthError> {
    let basic = match headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        Some(value) => match value.split_once(' ') {
            // RFC 9110 §11.1: the scheme is case-insensitive (doorkeeper 5.9.0+ too).
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("basic") => {
                Some(decode_basic(rest.trim())?)
            }
            _ => None,
        },
        None => None,
    };
    let body_id = params.get("client_id");
    let body_secret = params.get("client_secret");
    if params.get("client_assertion").is_some() || params.get("client_assertion_type").is_some() {
        if basic.is_some() || body_secret.is_some() {
            return Err(OAuthError::with_description(
                ErrorCode::InvalidRequest,
                "Use only one client authentication method: a client assertion, HTTP Basic or client_secret, not two.",
            ));
        }
        return assertion_credentials(params, body_id).map(Some);
    }
    match basic {
        Some((id, secret)) => {
            // RFC 6749 §2.3: one authentication method per request (doorkeeper 5.9.5+).
            if body_secret.is_some() {
                return Err(OAuthError::with_description(
                    ErrorCode::InvalidRequest,
                    "Use only one client authentication method: HTTP Basic or client_secret in the body, not both.",
                ));
            }
            // doorkeeper 5.9.6+: a client_id contradicting the Basic credentials.
            if body_id.is_some_and(|b| b != id) {
                return Err(OAuthError::with_description(
                    ErrorCode::InvalidRequest,
                    "The client_id parameter does not match the HTTP Basic credentials.",
                ));
            }
            Ok(Some(PresentedCredentials {
                client_id: id,
                secret: Some(secret),
                via_basic: true,
                assertion: None,
            }))
        }
        None => Ok(body_id.map(|id| PresentedCredentials {
            client_id: id.to_string(),
            secret: body_secret.map(str::to_string),
            via_basic: false,
            assertion: None,
        })),
    }
}

/// RFC 7523 §2.2: `client_assertion_type` must be the JWT bearer type and `client_assertion`
/// one JWT; the client is the one the assertion names (`client_id`, optional, must agree).
fn assertion_credentials(
    params: &Params,
    body_id: Option<&str>,
) -> Result<PresentedCredentials, OAuthError> {
    let invalid = |why: &str| OAuthError::new(ErrorCode::InvalidClient).detail(why.to_string());
    if params.get("client_assertion_type") != Some(ASSERTION_TYPE) {
        return Err(invalid("client_assertion_type is not the JWT bearer type"));
    }
    let assertion = params
        .get("client_assertion")
        .ok_or_else(|| invalid("client_assertion_type without client_assertion"))?;
    let claimed = client_assertion::claimed_client(assertion)
        .ok_or_else(|| invalid("the client assertion names no client"))?;
    if body_id.is_some_and(|id| id != claimed) {
        return Err(invalid("client_id is not the client the assertion names"));
    }
    if crate::http::body::check_text(&claimed).is_err() {
        return Err(invalid("the client assertion names no client"));
    }
    Ok(PresentedCredentials {
        client_id: claimed,
        secret: None,
        via_basic: false,
        assertion: Some(assertion.to_string()),
    })
}

/// Decodes `base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1); anything
/// malformed is `invalid_client`.
fn decode_basic(encoded: &str) -> Result<(String, String), OAuthError> {
    let invalid =
        || OAuthError::new(ErrorCode::InvalidClient).detail("malformed HTTP Basic credentials");
    let raw = STANDARD.decode(encoded).map_err(|_| invalid())?;
    let text = String::from_utf8(raw).map_err(|_| invalid())?;
    let (id, secret) = text.split_once(':').ok_or_else(invalid)?;
    let (id, secret) = (
        form_decode(id).ok_or_else(invalid)?,
        form_decode(secret).ok_or_else(invalid)?,
    );
    // No client id or secret holds a control character; a NUL must not reach the lookup
    // (PostgreSQL refuses NUL in text), so such credentials are simply wrong ones.
    if crate::http::body::check_text(&id).is_err()
        || crate::http::body::check_text(&secret).is_err()
    {
        return Err(invalid());
    }
    Ok((id, secret))
}

/// `application/x-www-form-urlencoded` decoding of one value: `+` is a space, `%XX` a byte.
fn form_decode(s: &str) -> Option<String> {
    let spaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

/// The authenticated client of a request.
#[derive(Clone, Debug)]
pub struct AuthenticatedClient {
    pub application: Application,
    /// True when the client proved who it is (a matching secret or a valid assertion;
    /// always, for confidential clients).
    pub with_secret: bool,
}

/// The endpoint a client authenticates at: its path, which (beside the issuer and the token
/// endpoint) is an audience an assertion may name (RFC 7523 §3 item 3, RFC 9126 §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint(pub &'static str);

pub const TOKEN: Endpoint = Endpoint("/oauth/token");
pub const PAR: Endpoint = Endpoint("/oauth/par");
pub const REVOCATION: Endpoint = Endpoint("/oauth/revoke");
pub const INTROSPECTION: Endpoint = Endpoint("/oauth/introspect");
pub const DEVICE_AUTHORIZATION: Endpoint = Endpoint("/oauth/authorize_device");

/// The authenticated client of a request that must name one (RFC 6749 §3.2.1, RFC 7009
/// §2.1, RFC 8628 §3.1). No credentials at all is `invalid_client`.
pub async fn require(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
    endpoint: Endpoint,
) -> Result<AuthenticatedClient, OAuthError> {
    optional(state, headers, params, endpoint)
        .await?
        .ok_or_else(|| OAuthError::new(ErrorCode::InvalidClient).detail("no client credentials"))
}

/// The authenticated client, or `None` when the request names no client (introspection
/// by bearer token; GitLab's refresh of a token issued without a client).
pub async fn optional(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
    endpoint: Endpoint,
) -> Result<Option<AuthenticatedClient>, OAuthError> {
    match presented(headers, params)? {
        Some(creds) => Ok(Some(authenticate(state, &creds, endpoint).await?)),
        None => Ok(None),
    }
}

/// Looks the client up and checks what it presented against how it registered. Every
/// failure is `invalid_client` (RFC 6749 §5.2).
async fn authenticate(
    state: &AppState,
    creds: &PresentedCredentials,
    endpoint: Endpoint,
) -> Result<AuthenticatedClient, OAuthError> {
    let invalid = |why: &str| OAuthError::new(ErrorCode::InvalidClient).detail(why.to_string());
    let app = state
        .store
        .application_by_uid(&creds.client_id)
        .await?
        .ok_or_else(|| invalid("unknown client_id"))?;
    // FAPI 2.0 §5.3.2.1 item 4: private_key_jwt (or mTLS, which Doorward lacks) only.
    if state.config.fapi2() && !app.uses_private_key_jwt() {
        return Err(invalid(
            "the FAPI 2.0 profile admits private_key_jwt clients only",
        ));
    }
    if app.uses_private_key_jwt() {
        let assertion = creds
            .assertion
            .as_deref()
            .ok_or_else(|| invalid("a private_key_jwt client without a client assertion"))?;
        // On the heap: its futures (keys, a jwks_uri fetch, the replay record) would
        // otherwise enlarge every client authentication's future, secrets' included.
        Box::pin(check_assertion(state, &app, assertion, endpoint))
            .await
            .map_err(|why| invalid(&why))?;
        return Ok(AuthenticatedClient {
            application: app,
            with_secret: true,
        });
    }
    if creds.assertion.is_some() {
        return Err(invalid("a client assertion from a client without keys"));
    }
    match &creds.secret {
        Some(presented) => {
            // Doorward's hash of the secret, or one imported from GitLab (issue 16).
            if !super::presented_token::application_secret_matches(
                state,
                app.id,
                &app.secret_hash,
                presented,
            )
            .await?
            {
                return Err(invalid("wrong client secret"));
            }
            Ok(AuthenticatedClient {
                application: app,
                with_secret: true,
            })
        }
        None if app.confidential => Err(invalid("confidential client without a secret")),
        None => Ok(AuthenticatedClient {
            application: app,
            with_secret: false,
        }),
    }
}

/// RFC 7523 §3: the assertion, signed by one of the client's keys, for this server, fresh,
/// and never seen before on any node (its `jti` is kept until its `exp`).
async fn check_assertion(
    state: &AppState,
    app: &Application,
    assertion: &str,
    endpoint: Endpoint,
) -> Result<(), String> {
    let (kid, alg) = match Compact::parse(assertion, client_assertion::MAX_ASSERTION_LEN) {
        Ok(jws) => (
            jws.header_str("kid").map(str::to_string),
            jws.alg().unwrap_or_default().to_string(),
        ),
        Err(e) => return Err(e.to_string()),
    };
    // Before any key is looked up (a jwks_uri fetch): only the asymmetric algorithms we
    // verify, never `none` or HMAC; FAPI 2.0 §5.4.1: PS256, ES256 or EdDSA under the profile.
    let fapi2 = state.config.fapi2();
    if !crate::domain::jws::algorithms(fapi2).contains(&alg.as_str()) {
        return Err(match fapi2 {
            true => format!("alg {alg:?} is not allowed by the FAPI 2.0 profile"),
            false => format!("alg {alg:?} is not an accepted signature algorithm"),
        });
    }
    let keys = super::client_keys::keys_for(state, app, kid.as_deref(), &alg).await?;
    let issuer = state.config.external_url.as_str();
    let token_endpoint = format!("{issuer}{}", TOKEN.0);
    let this_endpoint = format!("{issuer}{}", endpoint.0);
    // FAPI 2.0 §5.3.2.1 item 8: the issuer only, as a string.
    let audiences: Vec<&str> = if fapi2 {
        vec![issuer]
    } else {
        vec![issuer, &token_endpoint, &this_endpoint]
    };
    let now = state.clock.now();
    let expected = client_assertion::Expected {
        client_id: &app.uid,
        audiences: &audiences,
        now,
        audience_string_only: fapi2,
    };
    let verified =
        client_assertion::verify(assertion, &keys, &expected).map_err(|e| e.to_string())?;
    let seen = secret::hash(&format!("client_assertion\0{}\0{}", app.uid, verified.jti));
    let fresh = state
        .store
        // Kept past `exp` by the skew other nodes' clocks may have.
        .record_single_use_jwt(&seen, verified.exp.saturating_add(client_assertion::SKEW))
        .await
        .map_err(|e| format!("the assertion could not be recorded ({e})"))?;
    if !fresh {
        return Err("the client assertion was used before".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn basic(id: &str, secret: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let v = format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")));
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(&v).unwrap());
        h
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        // openid-client encodes `-` as %2D and spaces as `+`.
        let creds = presented(&basic("my%2Dapp", "dwoas%2Dab+c%3Ad"), &Params::default())
            .unwrap()
            .unwrap();
        assert_eq!(creds.client_id, "my-app");
        assert_eq!(creds.secret.as_deref(), Some("dwoas-ab c:d"));
        assert!(creds.via_basic);
    }

    #[test]
    fn one_method_only() {
        let body = Params::from_form(b"client_secret=x").unwrap();
        assert_eq!(
            presented(&basic("a", "b"), &body).unwrap_err().code,
            ErrorCode::InvalidRequest
        );
        let other_id = Params::from_form(b"client_id=zzz").unwrap();
        assert_eq!(
            presented(&basic("a", "b"), &other_id).unwrap_err().code,
            ErrorCode::InvalidRequest
        );
        let same_id = Params::from_form(b"client_id=a").unwrap();
        assert!(presented(&basic("a", "b"), &same_id).is_ok());
    }

    #[test]
    fn body_credentials_and_none() {
        let p = Params::from_form(b"client_id=a&client_secret=b").unwrap();
        let c = presented(&HeaderMap::new(), &p).unwrap().unwrap();
        assert_eq!(
            (c.client_id.as_str(), c.secret.as_deref(), c.via_basic),
            ("a", Some("b"), false)
        );
        assert_eq!(
            presented(&HeaderMap::new(), &Params::default()).unwrap(),
            None
        );
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
        assert_eq!(
            presented(&h, &Params::default()).unwrap_err().code,
            ErrorCode::InvalidClient
        );
    }
}
