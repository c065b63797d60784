//! RFC 9126 pushed authorization requests: `POST /oauth/par` takes the authorization
//! parameters straight from the client (authenticated as at the token endpoint), checks them
//! as `/oauth/authorize` would, and answers with a one-time `request_uri` that
//! `/oauth/authorize?client_id=…&request_uri=…` then runs. The browser never carries the
//! parameters, so nobody on the way can read or change them.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::authorization_request::{self, AuthorizationRequest, AuthorizeError};
use super::authorization_response::{error_page, redirect_error_for};
use super::client_auth;
use super::consent;
use super::error::{ErrorCode, OAuthError};
use super::params::{BodyParams, Params};
use super::response::{TokenError, no_store};
use crate::domain::secret;
use crate::oidc::prompt;
use crate::state::AppState;

/// RFC 9126 §2.2: the `request_uri` is this URN and a random part.
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";
/// Seconds a pushed request can be started in (RFC 9126 §2.2: short). Once started at
/// `/oauth/authorize` it stays usable through sign-in and consent until its code is issued,
/// within the consent form's hour (`resolve`); only the code spends it.
pub const LIFETIME: i64 = 90;

/// Longest random part accepted from a `request_uri` (ours are 43 characters).
const MAX_HANDLE_LEN: usize = 128;

/// `POST /oauth/par`: 201 with a new `request_uri` (RFC 9126 §2.2), or the token endpoint's
/// error answers (§2.3): 401 `invalid_client`, 400 for a request `/oauth/authorize` would
/// refuse.
pub async fn push(
    State(state): State<AppState>,
    headers: HeaderMap,
    BodyParams(mut params): BodyParams,
) -> Result<Response, TokenError> {
    // §2.1: the client authenticates as at the token endpoint (a public one names itself),
    // before anything else about the request is judged: a bad client is 401 whatever else.
    let client = client_auth::require(&state, &headers, &params, client_auth::PAR).await?;
    // RFC 6749 §3.1: no parameter twice.
    params.reject_repeated()?;
    // §2.1: a pushed request cannot itself refer to a pushed request.
    if params.get("request_uri").is_some() {
        return Err(OAuthError::with_description(
            ErrorCode::InvalidRequest,
            "The request_uri parameter cannot be pushed.",
        )
        .into());
    }
    // §2.1: the client_id is the authenticated client's (Basic may stand for it).
    params.set("client_id", &client.application.uid);
    // §3: a signed request object may carry the parameters (RFC 9101); it then stands for
    // them all, and its client is the authenticated one.
    let mut params = super::request_object::resolve(&state, params).await?;
    if params.get("client_id") != Some(client.application.uid.as_str()) {
        return Err(OAuthError::new(ErrorCode::InvalidRequestObject)
            .detail("the request object is for another client")
            .into());
    }
    // RFC 9449 §10.1: a DPoP proof on the push binds the code to its key, as `dpop_jkt`
    // would; both, naming different keys, is refused.
    let proof = super::dpop::endpoint_proof(&state, &headers, "/oauth/par").await?;
    if let Some(proof) = proof {
        if params.get("dpop_jkt").is_some_and(|j| j != proof.jkt) {
            return Err(OAuthError::with_description(
                ErrorCode::InvalidDpopProof,
                "The dpop_jkt parameter names another key than the DPoP proof's.",
            )
            .into());
        }
        params.set("dpop_jkt", &proof.jkt);
    }
    // §2.1: "the same checks as for an authorization request": client, redirect URI,
    // response type, scopes, PKCE, resources, and the OpenID Connect prompt parameters.
    let request = authorization_request::validate(&state, &params)
        .await
        .map_err(|e| match e {
            AuthorizeError::Page(error) | AuthorizeError::Redirect { error, .. } => error,
        })?;
    if request.application.id != client.application.id {
        return Err(OAuthError::new(ErrorCode::InvalidClient)
            .detail("the authorization request names another client")
            .into());
    }
    prompt::parse(&params)?;
    // The client's credentials authenticated this push; they are not part of the request.
    for credential in ["client_secret", "client_assertion", "client_assertion_type"] {
        params.remove(credential);
    }
    let handle = secret::base64url(&secret::random_bytes::<32>());
    let now = state.clock.now();
    state
        .store
        .create_pushed_request(
            &secret::hash(&handle),
            client.application.id,
            &params.to_form(),
            now,
            now + LIFETIME,
        )
        .await?;
    tracing::info!(client_id = %client.application.uid, "authorization request pushed");
    let body = json!({
        "request_uri": format!("{REQUEST_URI_PREFIX}{handle}"),
        "expires_in": LIFETIME,
    });
    Ok(no_store((StatusCode::CREATED, Json(body)).into_response()))
}

/// A pushed request being run at `/oauth/authorize`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pushed {
    /// Its row, spent when its code is issued.
    pub id: i64,
    /// As the client sent it; the consent form carries it, not the parameters.
    pub request_uri: String,
}

/// Why a `request_uri` is not run.
#[derive(Debug)]
pub enum Refused {
    /// Unknown, not ours, or another client's: nothing about it can be trusted enough to
    /// redirect to, so our error page says `invalid_request_uri`.
    Page(OAuthError),
    /// The client's own request, expired before its code was issued: its redirect URI was
    /// checked when it was pushed (and is checked again), so `invalid_request_uri` goes
    /// back there. A request already answered with a code gets the page instead: that
    /// answer went to the client, and a second one for the same `state` would contradict it.
    Expired { pushed: Params, error: OAuthError },
}

impl From<OAuthError> for Refused {
    fn from(error: OAuthError) -> Refused {
        Refused::Page(error)
    }
}

/// The parameters to run at `/oauth/authorize`: those pushed, when `params` names a
/// `request_uri` (everything else sent beside it is ignored, RFC 9126 §4, but `client_id`
/// must be the pushing client's), else `params` as they are. The first run starts the
/// request: from then on it lives [`consent::BINDING_LIFETIME`] (sign-in, two-factor and
/// the consent form's own hour) instead of the [`LIFETIME`] it had to be started in.
pub async fn resolve(
    state: &AppState,
    params: Params,
) -> Result<(Params, Option<Pushed>), Refused> {
    let Some(request_uri) = params.get("request_uri") else {
        return Ok((params, None));
    };
    let invalid = || OAuthError::new(ErrorCode::InvalidRequestUri);
    let handle = request_uri
        .strip_prefix(REQUEST_URI_PREFIX)
        .filter(|h| !h.is_empty() && h.len() <= MAX_HANDLE_LEN)
        .ok_or_else(|| invalid().detail("not one of our request_uri values"))?;
    let client_id = params.require("client_id")?;
    let row = state
        .store
        .pushed_request(&secret::hash(handle))
        .await
        .map_err(OAuthError::from)?
        .ok_or_else(|| invalid().detail("unknown request_uri"))?;
    let stored = Params::from_form(row.params.as_bytes())?;
    if stored.get("client_id") != Some(client_id) {
        return Err(invalid()
            .detail("request_uri pushed by another client")
            .into());
    }
    let now = state.clock.now();
    if row.used_at.is_some() {
        return Err(invalid()
            .detail("request_uri already answered with a code")
            .into());
    }
    let expired = || Refused::Expired {
        pushed: stored.clone(),
        error: invalid().detail("request_uri expired"),
    };
    if row.expires_at <= now {
        return Err(expired());
    }
    if row.started_at.is_none()
        && !state
            .store
            .start_pushed_request(row.id, now, now + consent::BINDING_LIFETIME)
            .await
            .map_err(OAuthError::from)?
    {
        // Used (another tab's consent) between the read and the start: our page.
        return Err(invalid()
            .detail("request_uri answered with a code meanwhile")
            .into());
    }
    let pushed = Pushed {
        id: row.id,
        request_uri: request_uri.to_string(),
    };
    Ok((stored, Some(pushed)))
}

/// The answer to a refused `request_uri`: our page, or `invalid_request_uri` back to the
/// client (with its `state` and `iss`, RFC 9207) when its own pushed request expired.
pub async fn refusal(state: &AppState, refused: Refused) -> Response {
    match refused {
        Refused::Page(error) => error_page(state, error),
        Refused::Expired { pushed, error } => {
            match authorization_request::validate(state, &pushed).await {
                Ok(request) => redirect_error_for(state, &request, &error),
                // The client changed since (a redirect URI removed): no redirect.
                Err(_) => error_page(state, error),
            }
        }
    }
}

/// Refuses a request that did not come pushed where pushing is required (the instance's
/// `DOORWARD_REQUIRE_PAR`, RFC 9126 §5, or the client's
/// `require_pushed_authorization_requests`, §6): `invalid_request`.
pub fn check_required(
    state: &AppState,
    request: &AuthorizationRequest,
    pushed: Option<&Pushed>,
) -> Result<(), OAuthError> {
    if pushed.is_none() && (state.config.require_par || request.application.require_par) {
        return Err(OAuthError::with_description(
            ErrorCode::InvalidRequest,
            "Pushed authorization requests are required: push the request to the pushed_authorization_request_endpoint first.",
        )
        .detail(format!("plain request by {}", request.application.uid)));
    }
    Ok(())
}
