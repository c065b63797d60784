//! Request bodies for both faces: form-urlencoded or JSON, strictly parsed. Malformed
//! input, invalid UTF-8, duplicate or unknown fields and oversized bodies are errors the
//! caller turns into a 4xx in its own format; nothing is guessed or silently dropped.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

/// Largest request body accepted (forms and JSON are small; this stops memory abuse).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BodyError {
    #[error("the request body is too large")]
    TooLarge,
    #[error("unsupported content type; send application/x-www-form-urlencoded or application/json")]
    UnsupportedMediaType,
    #[error("the request body is not valid UTF-8")]
    InvalidUtf8,
    /// NUL and the other C0/C1 controls (tab, line feed and carriage return excepted) are
    /// refused wherever text enters: PostgreSQL cannot store NUL, and no field needs them.
    #[error("the request contains a control character")]
    ControlCharacter,
    #[error("{0}")]
    Malformed(String),
    /// The body did not arrive within `DOORWARD_BODY_READ_TIMEOUT_MS` (a client trickling
    /// its body, slowloris-style).
    #[error("the request body did not arrive in time")]
    TimedOut,
    /// The whole request took longer than `DOORWARD_REQUEST_TIMEOUT_MS` to answer.
    #[error("the request took too long to answer; try again")]
    Overdue,
}

impl BodyError {
    pub fn status(&self) -> StatusCode {
        match self {
            BodyError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            BodyError::TimedOut => StatusCode::REQUEST_TIMEOUT,
            BodyError::Overdue => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    Form,
    Json,
}

/// Reads the whole body (within the body limit) and notes its kind. A missing content type
/// with an empty body counts as an empty form.
pub async fn read<S: Send + Sync>(req: Request, state: &S) -> Result<(BodyKind, Bytes), BodyError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
    let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            BodyError::TooLarge
        } else {
            BodyError::Malformed("the request body could not be read".into())
        }
    })?;
    let kind = match content_type.as_deref() {
        Some("application/x-www-form-urlencoded") => BodyKind::Form,
        Some(ct) if ct == "application/json" || ct.ends_with("+json") => BodyKind::Json,
        None if bytes.is_empty() => BodyKind::Form,
        _ => return Err(BodyError::UnsupportedMediaType),
    };
    Ok((kind, bytes))
}

pub fn parse<T: DeserializeOwned>(kind: BodyKind, bytes: &[u8]) -> Result<T, BodyError> {
    match kind {
        BodyKind::Form => parse_form(bytes),
        BodyKind::Json => parse_json(bytes),
    }
}

/// Parses `application/x-www-form-urlencoded` (also used for query strings).
pub fn parse_form<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BodyError> {
    check_form_utf8(bytes)?;
    serde_urlencoded::from_bytes(bytes).map_err(|e| BodyError::Malformed(e.to_string()))
}

/// Parses form-urlencoded text into its pairs in order, repeated keys included (for forms
/// with repeated fields, like checkbox lists, and for OAuth's duplicate-parameter rule).
pub fn parse_form_pairs(bytes: &[u8]) -> Result<Vec<(String, String)>, BodyError> {
    check_form_utf8(bytes)?;
    Ok(url::form_urlencoded::parse(bytes).into_owned().collect())
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BodyError> {
    if std::str::from_utf8(bytes).is_err() {
        return Err(BodyError::InvalidUtf8);
    }
    let malformed = |e: serde_json::Error| BodyError::Malformed(format!("invalid JSON: {e}"));
    // Through a `Value` first, so escaped controls (`"\u0000"`) in any key or string are
    // seen before a typed field (or a `serde_json::Value` field) carries them to storage.
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(malformed)?;
    check_json_text(&value)?;
    // A `Value` keeps the last of a repeated key; the document is refused instead, as a
    // repeated form field is (RFC 6749 §3.2: no parameter more than once).
    serde_json::from_slice::<UniqueKeys>(bytes).map_err(malformed)?;
    serde_json::from_value(value).map_err(malformed)
}

/// A JSON document none of whose objects names a key twice (nothing else is kept).
struct UniqueKeys;

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UniqueKeys)
    }
}

impl<'de> serde::de::Visitor<'de> for UniqueKeys {
    type Value = UniqueKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<UniqueKeys, A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key) {
                return Err(serde::de::Error::custom("a key appears more than once"));
            }
            map.next_value::<UniqueKeys>()?;
        }
        Ok(UniqueKeys)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<UniqueKeys, A::Error> {
        while seq.next_element::<UniqueKeys>()?.is_some() {}
        Ok(UniqueKeys)
    }

    fn visit_bool<E>(self, _: bool) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }

    fn visit_i64<E>(self, _: i64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }

    fn visit_u64<E>(self, _: u64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }

    fn visit_f64<E>(self, _: f64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }

    fn visit_str<E>(self, _: &str) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }

    fn visit_unit<E>(self) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
}

/// Whether `c` is refused in text input: C0 and C1 controls and DEL, except tab, line feed
/// and carriage return (multi-line fields such as redirect URI lists use them).
pub fn is_refused_control(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\n' | '\r')
}

/// Refuses text holding a control character (see [`is_refused_control`]).
pub fn check_text(text: &str) -> Result<(), BodyError> {
    if text.chars().any(is_refused_control) {
        Err(BodyError::ControlCharacter)
    } else {
        Ok(())
    }
}

fn check_json_text(value: &serde_json::Value) -> Result<(), BodyError> {
    match value {
        serde_json::Value::String(s) => check_text(s),
        serde_json::Value::Array(items) => items.iter().try_for_each(check_json_text),
        serde_json::Value::Object(map) => map.iter().try_for_each(|(k, v)| {
            check_text(k)?;
            check_json_text(v)
        }),
        _ => Ok(()),
    }
}

/// The form decoder replaces invalid UTF-8 with U+FFFD silently; check every decoded key
/// and value first so bad bytes are refused rather than stored mangled, and refuse
/// control characters.
fn check_form_utf8(bytes: &[u8]) -> Result<(), BodyError> {
    for part in bytes.split(|&b| b == b'&' || b == b'=') {
        check_text(&decode_component(part)?)?;
    }
    Ok(())
}

/// One decoded form or query component (`+` is a space), or `InvalidUtf8`. Borrowed when
/// there is nothing to decode (the common case), so the per-request check allocates nothing.
pub fn decode_component(part: &[u8]) -> Result<std::borrow::Cow<'_, str>, BodyError> {
    if !part.iter().any(|&b| b == b'%' || b == b'+') {
        return std::str::from_utf8(part)
            .map(std::borrow::Cow::Borrowed)
            .map_err(|_| BodyError::InvalidUtf8);
    }
    let plus_free: Vec<u8> = part
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    let decoded: Vec<u8> = percent_encoding::percent_decode(&plus_free).collect();
    String::from_utf8(decoded)
        .map(std::borrow::Cow::Owned)
        .map_err(|_| BodyError::InvalidUtf8)
}

/// Checks a request target: the percent-decoded path and every decoded query component
/// must be UTF-8 without control characters. Run once for every request, before routing.
pub fn check_target(uri: &axum::http::Uri) -> Result<(), BodyError> {
    // A path is not a form: `+` is a plus there, so only `%XX` is decoded.
    let path = percent_encoding::percent_decode(uri.path().as_bytes())
        .decode_utf8()
        .map_err(|_| BodyError::InvalidUtf8)?;
    check_text(&path)?;
    if let Some(query) = uri.query() {
        check_form_utf8(query.as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct SignIn {
        username: String,
        password: String,
    }

    #[test]
    fn forms_parse_strictly() {
        let ok: SignIn = parse_form(b"username=al%20ice&password=a+b").unwrap();
        assert_eq!(
            ok,
            SignIn {
                username: "al ice".into(),
                password: "a b".into()
            }
        );
        assert_eq!(
            parse_form::<SignIn>(b"username=%FF&password=x"),
            Err(BodyError::InvalidUtf8)
        );
        assert!(matches!(
            parse_form::<SignIn>(b"username=a&username=b&password=x"),
            Err(BodyError::Malformed(_))
        ));
        assert!(matches!(
            parse_form::<SignIn>(b"username=a&password=x&extra=1"),
            Err(BodyError::Malformed(_))
        ));
        assert!(matches!(
            parse_form::<SignIn>(b"username=a"),
            Err(BodyError::Malformed(_))
        ));
    }

    #[test]
    fn form_pairs_keep_repeated_keys_and_refuse_bad_utf8() {
        let pairs = parse_form_pairs(b"scopes%5B%5D=api&scopes%5B%5D=openid&name=a+b").unwrap();
        assert_eq!(
            pairs,
            [
                ("scopes[]".to_string(), "api".to_string()),
                ("scopes[]".to_string(), "openid".to_string()),
                ("name".to_string(), "a b".to_string()),
            ]
        );
        assert_eq!(parse_form_pairs(b""), Ok(Vec::new()));
        assert_eq!(
            parse_form_pairs(b"name=%C0%AF"),
            Err(BodyError::InvalidUtf8)
        );
    }

    #[test]
    fn json_parses_strictly() {
        let ok: SignIn = parse_json(br#"{"username":"a","password":"b"}"#).unwrap();
        assert_eq!(ok.username, "a");
        assert!(matches!(
            parse_json::<SignIn>(b"{"),
            Err(BodyError::Malformed(_))
        ));
        assert_eq!(
            parse_json::<SignIn>(b"{\"username\":\"\xff\"}"),
            Err(BodyError::InvalidUtf8)
        );
        // A repeated key, at any depth, is refused rather than settled for the last.
        for repeated in [
            &br#"{"username":"a","password":"b","username":"c"}"#[..],
            br#"{"a":[{"k":1,"k":2}]}"#,
            br#"{"a":{"b":{"c":1,"c":1}}}"#,
        ] {
            assert!(matches!(
                parse_json::<serde_json::Value>(repeated),
                Err(BodyError::Malformed(_))
            ));
        }
        assert!(parse_json::<serde_json::Value>(br#"{"a":{"k":1},"b":{"k":1},"c":[1,1]}"#).is_ok());
    }
}
