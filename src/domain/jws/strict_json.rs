//! JSON without duplicate members: serde_json keeps the last of two members silently, so
//! two readers of one proof could disagree on what it says; this reader refuses it.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::JwsError;
use super::key::decode_b64;

/// A segment that must be base64url of a UTF-8 JSON object without duplicate members.
pub(super) fn json_object(
    segment: &str,
    what: &'static str,
) -> Result<Map<String, Value>, JwsError> {
    let bytes = decode_b64(segment)
        .ok_or_else(|| JwsError::Malformed(format!("the {what} is not base64url")))?;
    match serde_json::from_slice::<Strict>(&bytes) {
        Ok(Strict(Value::Object(map))) => Ok(map),
        Ok(_) => Err(JwsError::Malformed(format!(
            "the {what} is not a JSON object"
        ))),
        Err(_) => Err(JwsError::Malformed(format!(
            "the {what} is not JSON without duplicate members"
        ))),
    }
}

/// JSON text whose objects, at every depth, name each member once (a registered JWK Set).
pub fn parse_text(text: &str) -> Option<Value> {
    serde_json::from_str::<Strict>(text).ok().map(|s| s.0)
}

/// A JSON value whose objects, at every depth, name each member once.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number out of range"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Strict::deserialize(deserializer).map(|s| s.0)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(name) = map.next_key::<String>()? {
            if members.contains_key(&name) {
                return Err(de::Error::custom("a duplicate member"));
            }
            let Strict(value) = map.next_value()?;
            members.insert(name, value);
        }
        Ok(Value::Object(members))
    }
}
