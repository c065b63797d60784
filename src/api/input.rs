//! `ApiInput<T>`: a JSON (python-gitlab) or form (curl) body, parsed strictly into `T`.
//! Bad bodies answer `{"message": ...}` with a 4xx.

use axum::extract::{FromRequest, Request};
use serde::de::{self, DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Deserializer};

use super::error::ApiError;
use crate::http::body::{self, BodyError, BodyKind};

pub struct ApiInput<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiInput<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // GitLab (Grape) also reads parameters from the query string; python-gitlab sends
        // some that way. A body, when present, wins; otherwise the query is the input.
        let query = req.uri().query().unwrap_or_default().to_owned();
        let (kind, bytes) = body::read(req, state).await?;
        if bytes.is_empty() {
            return Ok(ApiInput(body::parse_form(query.as_bytes())?));
        }
        Ok(ApiInput(body::parse(kind, &bytes)?))
    }
}

/// The body of an endpoint that takes no parameters (block, unblock, renew-secret, the
/// deletes): none at all (under any content type: python-gitlab names JSON even without a
/// body), or a form or JSON body that reads cleanly, whatever its fields (python-gitlab sends
/// `{}`, GitLab ignores unknown parameters). A body that cannot be read is refused as it is
/// everywhere else, so that a broken request never acts.
pub struct NoParams;

impl<S: Send + Sync> FromRequest<S> for NoParams {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (parts, stream) = req.into_parts();
        let bytes = axum::body::to_bytes(stream, body::MAX_BODY_BYTES)
            .await
            .map_err(|_| BodyError::Malformed("the request body could not be read".into()))?;
        if bytes.is_empty() {
            return Ok(NoParams);
        }
        let (kind, bytes) = body::read(Request::from_parts(parts, bytes.into()), state).await?;
        match kind {
            BodyKind::Form => {
                body::parse_form_pairs(&bytes)?;
            }
            BodyKind::Json => {
                body::parse_json::<IgnoredAny>(&bytes)?;
            }
        }
        Ok(NoParams)
    }
}

/// The longest `search` term: no searched field (username, name, email, token name) is
/// longer, so a longer term matches nothing; refusing it also keeps it out of `LIKE`, which
/// SQLite refuses past 50,000 bytes.
pub const MAX_SEARCH_LEN: usize = 255;

/// A list endpoint's `search` parameter: absent when empty, refused when longer than any
/// field it could match.
pub fn search_term(search: Option<&str>) -> Result<Option<String>, ApiError> {
    match search.filter(|s| !s.is_empty()) {
        Some(s) if s.chars().count() > MAX_SEARCH_LEN => Err(ApiError::BadRequest(format!(
            "search is too long (maximum is {MAX_SEARCH_LEN} characters)"
        ))),
        other => Ok(other.map(str::to_string)),
    }
}

/// Parses a query string strictly (unknown or duplicate parameters are errors).
pub fn parse_query<T: DeserializeOwned>(query: Option<&str>) -> Result<T, ApiError> {
    Ok(body::parse_form(query.unwrap_or_default().as_bytes())?)
}

/// An optional boolean as GitLab (Grape) reads one: JSON `true`/`false`, or text `true`,
/// `false`, `1`, `0`, `t`, `f`, `yes`, `no`, `on`, `off` in any case. python-gitlab puts
/// Python's `True` and `False` into query strings as they are, which a plain `bool` refuses.
/// Use with `#[serde(default, deserialize_with = "gitlab_bool")]`.
pub fn gitlab_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Bool(bool),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Bool(b) => Ok(Some(b)),
        Raw::Text(t) => match t.to_ascii_lowercase().as_str() {
            "true" | "1" | "t" | "yes" | "y" | "on" => Ok(Some(true)),
            "false" | "0" | "f" | "no" | "n" | "off" => Ok(Some(false)),
            _ => Err(de::Error::custom(format!("{t:?} is not a boolean"))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug, PartialEq)]
    struct Q {
        #[serde(default, deserialize_with = "gitlab_bool")]
        flag: Option<bool>,
    }

    #[test]
    fn booleans_are_read_as_gitlab_reads_them() {
        for (query, expected) in [
            ("flag=True", Some(true)),
            ("flag=false", Some(false)),
            ("flag=0", Some(false)),
            ("", None),
        ] {
            let q: Q = parse_query(Some(query)).unwrap();
            assert_eq!(q.flag, expected, "{query}");
        }
        assert!(parse_query::<Q>(Some("flag=maybe")).is_err());
        let json: Q = crate::http::body::parse_json(br#"{"flag": true}"#).unwrap();
        assert_eq!(json.flag, Some(true));
    }
}
