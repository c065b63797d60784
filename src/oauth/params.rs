//! OAuth request parameters: a flat map, with repeated parameters detected, because RFC
//! 6749 §3.1 and §3.2 say a parameter MUST NOT appear more than once. Unknown parameters
//! are kept (and ignored by the endpoints), as §3.1 requires.

use std::collections::HashMap;

use axum::extract::{FromRequest, Request};

use super::error::{ErrorCode, OAuthError};
use crate::http::body::{self, BodyError, BodyKind};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params {
    values: HashMap<String, String>,
    repeated: Vec<String>,
    /// Every value of `resource`, the one parameter that may be repeated (RFC 8707 §2).
    resource: Vec<String>,
}

impl Params {
    /// Parses `application/x-www-form-urlencoded` text (a query string or a body).
    pub fn from_form(bytes: &[u8]) -> Result<Params, OAuthError> {
        let pairs = body::parse_form_pairs(bytes).map_err(body_error)?;
        Ok(Self::from_pairs(pairs))
    }

    /// Parses a JSON object whose values are strings (numbers and booleans are taken as
    /// their text), as GitLab accepts JSON bodies at the token endpoint.
    pub fn from_json(bytes: &[u8]) -> Result<Params, OAuthError> {
        let map: serde_json::Map<String, serde_json::Value> =
            body::parse_json(bytes).map_err(body_error)?;
        let mut pairs = Vec::with_capacity(map.len());
        for (k, v) in map {
            let text = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                // doorkeeper #1876: a non-string value (an array `scope`) is a 400, not a 500.
                _ => {
                    return Err(OAuthError::with_description(
                        ErrorCode::InvalidRequest,
                        format!("The parameter {k} must be a string."),
                    ));
                }
            };
            pairs.push((k, text));
        }
        Ok(Self::from_pairs(pairs))
    }

    /// Parameters from name and value pairs (a signed request object's claims).
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Params {
        let mut p = Params::default();
        for (k, v) in pairs {
            if k == "resource" {
                p.resource.push(v);
                continue;
            }
            match p.values.entry(k) {
                std::collections::hash_map::Entry::Occupied(seen) => {
                    if !p.repeated.contains(seen.key()) {
                        p.repeated.push(seen.key().clone());
                    }
                }
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(v);
                }
            }
        }
        p
    }

    /// `invalid_request` when any parameter was sent twice (RFC 6749 §3.1, §3.2).
    pub fn reject_repeated(&self) -> Result<(), OAuthError> {
        match self.repeated.first() {
            Some(name) => Err(OAuthError::with_description(
                ErrorCode::InvalidRequest,
                format!("The parameter {name} was included more than once."),
            )),
            None => Ok(()),
        }
    }

    /// True when `name` was sent more than once.
    pub fn is_repeated(&self, name: &str) -> bool {
        self.repeated.iter().any(|r| r == name)
    }

    /// The value of `name`; an empty value counts as absent (RFC 6749 §3.1).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// RFC 8707 §2: the `resource` parameters (any number), validated; a malformed one is
    /// `invalid_target`.
    pub fn resources(&self) -> Result<crate::domain::resource::Resources, OAuthError> {
        let values: Vec<&str> = self.resource.iter().map(String::as_str).collect();
        crate::domain::resource::Resources::parse(&values)
            .map_err(|why| OAuthError::with_description(ErrorCode::InvalidTarget, why))
    }

    /// Sets `name` (one value), as a pushed request's authenticated client id.
    pub fn set(&mut self, name: &str, value: &str) {
        self.values.insert(name.to_string(), value.to_string());
    }

    /// Drops `name` (a credential that must not be stored with a pushed request).
    pub fn remove(&mut self, name: &str) {
        self.values.remove(name);
    }

    /// The parameters as `application/x-www-form-urlencoded` text (stored pushed requests;
    /// [`Params::from_form`] reads it back), in a stable order.
    pub fn to_form(&self) -> String {
        let mut keys: Vec<&String> = self.values.keys().collect();
        keys.sort();
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        for k in keys {
            form.append_pair(k, &self.values[k]);
        }
        for r in &self.resource {
            form.append_pair("resource", r);
        }
        form.finish()
    }

    /// The value of `name`, or `invalid_request` "Missing required parameter".
    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name).ok_or_else(|| OAuthError::missing(name))
    }
}

fn body_error(e: BodyError) -> OAuthError {
    OAuthError::with_description(
        ErrorCode::InvalidRequest,
        format!("The request body could not be read: {e}."),
    )
}

/// The parameters of a POST to an OAuth endpoint: a form body, or a JSON object (GitLab
/// accepts both). Anything else is `invalid_request`.
pub struct BodyParams(pub Params);

impl<S: Send + Sync> FromRequest<S> for BodyParams {
    type Rejection = super::response::TokenError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (kind, bytes) = body::read(req, state).await.map_err(body_error)?;
        let params = match kind {
            BodyKind::Form => Params::from_form(&bytes)?,
            BodyKind::Json => Params::from_json(&bytes)?,
        };
        Ok(BodyParams(params))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_detected_and_empty_ones_are_absent() {
        let p = Params::from_form(b"a=1&b=&a=2&c=x").unwrap();
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), None);
        assert!(p.reject_repeated().is_err());
        assert_eq!(
            p.require("b").unwrap_err().description,
            "Missing required parameter: b."
        );
        assert!(
            Params::from_form(b"a=1&c=x")
                .unwrap()
                .reject_repeated()
                .is_ok()
        );
    }

    #[test]
    fn json_values_must_be_scalars() {
        let p = Params::from_json(br#"{"grant_type":"refresh_token","n":5}"#).unwrap();
        assert_eq!(p.get("n"), Some("5"));
        assert!(Params::from_json(br#"{"scope":["a"]}"#).is_err());
        assert!(Params::from_form(b"x=%FF").is_err());
    }
}
