//! Client authentication (RFC 6749 §2.3), the one entry for the token, revocation,
//! introspection and device authorization endpoints: [`require`] or [`optional`].
//!
//! A client authenticates with HTTP Basic (`client_id:client_secret`, each part
//! form-urlencoded before base64, §2.3.1) or with `client_id` and `client_secret` in the
//! body; using both is `invalid_request` (§2.3: one method per request). A public client
//! sends only `client_id`. Secrets are compared by their SHA-256 in constant time.

use axum::http::HeaderMap;
use axum::http::header;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::error::{ErrorCode, OAuthError};
use super::params::Params;
use crate::domain::application::Application;
use crate::domain::secret;
use crate::store::Store;

/// Credentials as the request presented them, before any lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresentedCredentials {
    pub client_id: String,
    pub secret: Option<String>,
    pub via_basic: bool,
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
            }))
        }
        None => Ok(body_id.map(|id| PresentedCredentials {
            client_id: id.to_string(),
            secret: body_secret.map(str::to_string),
            via_basic: false,
        })),
    }
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
    /// True when a secret was presented and matched (always, for confidential clients).
    pub with_secret: bool,
}

/// The authenticated client of a request that must name one (RFC 6749 §3.2.1, RFC 7009
/// §2.1, RFC 8628 §3.1). No credentials at all is `invalid_client`.
pub async fn require(
    store: &Store,
    headers: &HeaderMap,
    params: &Params,
) -> Result<AuthenticatedClient, OAuthError> {
    optional(store, headers, params)
        .await?
        .ok_or_else(|| OAuthError::new(ErrorCode::InvalidClient).detail("no client credentials"))
}

/// The authenticated client, or `None` when the request names no client (introspection
/// by bearer token; GitLab's refresh of a token issued without a client).
pub async fn optional(
    store: &Store,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Option<AuthenticatedClient>, OAuthError> {
    match presented(headers, params)? {
        Some(creds) => Ok(Some(authenticate(store, &creds).await?)),
        None => Ok(None),
    }
}

/// Looks the client up and checks its secret: a confidential client must present the right
/// secret; a public client may present none, but a wrong one fails (GitLab). Every failure
/// is `invalid_client` (RFC 6749 §5.2).
async fn authenticate(
    store: &Store,
    creds: &PresentedCredentials,
) -> Result<AuthenticatedClient, OAuthError> {
    let app = store
        .application_by_uid(&creds.client_id)
        .await?
        .ok_or_else(|| OAuthError::new(ErrorCode::InvalidClient).detail("unknown client_id"))?;
    match &creds.secret {
        Some(presented) => {
            if !secret::constant_time_eq(&secret::hash(presented), &app.secret_hash) {
                return Err(OAuthError::new(ErrorCode::InvalidClient).detail("wrong client secret"));
            }
            Ok(AuthenticatedClient {
                application: app,
                with_secret: true,
            })
        }
        None if app.confidential => Err(OAuthError::new(ErrorCode::InvalidClient)
            .detail("confidential client without a secret")),
        None => Ok(AuthenticatedClient {
            application: app,
            with_secret: false,
        }),
    }
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
