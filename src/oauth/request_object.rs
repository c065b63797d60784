//! RFC 9101 signed authorization requests: `request=<JWS>` on `/oauth/authorize` or in a
//! pushed request. The object, signed with a key the client registered, stands for the whole
//! request: its claims are the parameters, and those sent beside it are not used (§6.3),
//! except `client_id`, which must match (§5).

use super::client_keys;
use super::error::{ErrorCode, OAuthError};
use super::params::Params;
use crate::domain::jws::{self, Compact};
use crate::domain::request_object::{self, Expected, MAX_LEN};
use crate::http::body;
use crate::state::AppState;

/// The parameters to run: those the request object carries when `params` has `request`,
/// else `params` as they are. `client_id` is the request's (for a pushed request, the
/// authenticated client's). Any failure is `invalid_request_object`, with no code.
pub async fn resolve(state: &AppState, params: Params) -> Result<Params, OAuthError> {
    let Some(object) = params.get("request") else {
        return Ok(params);
    };
    let invalid = |why: String| OAuthError::new(ErrorCode::InvalidRequestObject).detail(why);
    let client_id = params.require("client_id")?;
    let app = state
        .store
        .application_by_uid(client_id)
        .await?
        .ok_or_else(|| OAuthError::new(ErrorCode::InvalidClient).detail("unknown client_id"))?;
    let jws = Compact::parse(object, MAX_LEN).map_err(|e| invalid(e.to_string()))?;
    let alg = jws.alg().map_err(|e| invalid(e.to_string()))?;
    // FAPI 2.0 §5.4.1: PS256, ES256 or EdDSA.
    if !jws::algorithms(state.config.fapi2()).contains(&alg) {
        return Err(invalid(format!("alg {alg} under the FAPI 2.0 profile")));
    }
    let keys = client_keys::keys_for(state, &app, jws.header_str("kid"), alg)
        .await
        .map_err(invalid)?;
    let expected = Expected {
        client_id,
        issuer: &state.config.external_url,
        now: state.clock.now(),
    };
    let parameters =
        request_object::verify(object, &keys, &expected).map_err(|e| invalid(e.to_string()))?;
    // The same rule as for parameters in a query or body: no control characters (a NUL
    // would reach PostgreSQL, which refuses it in text).
    if parameters
        .iter()
        .any(|(name, value)| body::check_text(name).is_err() || body::check_text(value).is_err())
    {
        return Err(invalid("a parameter holds a control character".into()));
    }
    Ok(Params::from_pairs(parameters))
}
