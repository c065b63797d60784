//! `ApiInput<T>`: a JSON (python-gitlab) or form (curl) body, parsed strictly into `T`.
//! Bad bodies answer `{"message": ...}` with a 4xx.

use axum::extract::{FromRequest, Request};
use serde::de::{self, DeserializeOwned};
use serde::{Deserialize, Deserializer};

use super::error::ApiError;
use crate::http::body;

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
