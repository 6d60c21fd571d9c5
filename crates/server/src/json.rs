//! Request bodies: JSON only (`application/json`, any case, with parameters), at most
//! [`limits::MAX_BODY_BYTES`], nested at most [`MAX_JSON_DEPTH`] levels, and no object with a
//! key twice (`{"op":"update","op":"delete"}` is refused, not read as its last key). Errors name
//! the offending field as a JSON Pointer (RFC 6901: `/0/fields/name`).

use std::fmt;

use axum::body::Bytes;
use axum::http::HeaderMap;
use serde::de::{DeserializeOwned, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::error::ApiError;
use crate::limits;

/// The deepest nesting of arrays and objects in a request body.
pub const MAX_JSON_DEPTH: usize = 64;

/// Refuses a body that is not declared JSON (a missing Content-Type is taken as JSON).
pub(crate) fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    if let Some(ct) = headers.get(axum::http::header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or_default();
        let mime = ct.split(';').next().unwrap_or_default().trim();
        if !mime.eq_ignore_ascii_case("application/json") {
            return Err(ApiError::new(
                "unsupported_media_type",
                format!("send JSON (Content-Type: application/json), not `{ct}`"),
            )
            .at("Content-Type"));
        }
    }
    Ok(())
}

/// Parses a JSON body into a value, strictly (see the module's rules).
pub(crate) fn strict_value(headers: &HeaderMap, body: &Bytes) -> Result<Value, ApiError> {
    require_json(headers)?;
    strict_bytes(body)
}

/// Parses JSON text into a value, strictly (see the module's rules), whatever declared it.
pub(crate) fn strict_bytes(body: &[u8]) -> Result<Value, ApiError> {
    if body.len() > limits::MAX_BODY_BYTES {
        return Err(ApiError::new(
            "payload_too_large",
            format!("the body is larger than {} bytes", limits::MAX_BODY_BYTES),
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = Strict { depth: 0 }.deserialize(&mut de).and_then(|v| {
        de.end()?;
        Ok(v)
    });
    value.map_err(|e| {
        let code = if e.is_syntax() || e.is_eof() {
            "malformed_json"
        } else {
            "invalid_body"
        };
        ApiError::new(code, e.to_string())
    })
}

/// Parses a JSON body into `T`, strictly, naming the offending field as a JSON Pointer.
pub(crate) fn parse<T: DeserializeOwned>(headers: &HeaderMap, body: &Bytes) -> Result<T, ApiError> {
    let value = strict_value(headers, body)?;
    from_value(&value, "")
}

/// Reads `T` from a value; `prefix` is the value's own pointer in the request.
pub(crate) fn from_value<T: DeserializeOwned>(value: &Value, prefix: &str) -> Result<T, ApiError> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let path = pointer(e.path());
        let message = e.into_inner().to_string();
        // Internally tagged enums and unknown fields lose the path: take the name from the
        // message.
        let named = quoted(&message, "unknown field ")
            .or_else(|| quoted(&message, "missing field "))
            .or_else(|| quoted(&message, "duplicate field "));
        let field = match (path.is_empty(), named) {
            (false, _) => Some(format!("{prefix}{path}")),
            (true, Some(name)) => Some(format!("{prefix}/{}", escape(&name))),
            (true, None) => guess_field(value, &message)
                .map(|name| format!("{prefix}/{}", escape(&name)))
                .or_else(|| (!prefix.is_empty()).then(|| prefix.to_owned())),
        };
        let err = ApiError::new("invalid_body", message);
        match field {
            Some(f) => err.at(f),
            None => err,
        }
    })
}

/// A serde path as a JSON Pointer (`""` for the whole document).
pub(crate) fn pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => {
                out.push('/');
                out.push_str(&index.to_string());
            }
            Segment::Map { key } => {
                out.push('/');
                out.push_str(&escape(key));
            }
            Segment::Enum { variant } => {
                out.push('/');
                out.push_str(&escape(variant));
            }
            Segment::Unknown => {}
        }
    }
    out
}

/// One JSON Pointer reference token (`~` → `~0`, `/` → `~1`).
pub(crate) fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

fn quoted(message: &str, after: &str) -> Option<String> {
    let rest = &message[message.find(after)? + after.len()..];
    let rest = rest.strip_prefix('`')?;
    rest.split_once('`').map(|(name, _)| name.to_owned())
}

/// The field holding a value of the wrong type, when a message names only the type.
fn guess_field(value: &Value, message: &str) -> Option<String> {
    let object = value.as_object()?;
    let rest = message.strip_prefix("invalid type: ")?;
    let (kind, literal) = match rest.split_once(", expected") {
        Some((found, _)) => match found.split_once(' ') {
            Some((k, v)) => (k, Some(v.trim_matches('"').trim_matches('`'))),
            None => (found, None),
        },
        None => return None,
    };
    let matches_kind = |v: &Value| match kind {
        "string" => v.is_string(),
        "integer" | "floating" => v.is_number(),
        "boolean" => v.is_boolean(),
        "map" => v.is_object(),
        "sequence" => v.is_array(),
        "null" | "unit" => v.is_null(),
        _ => false,
    };
    let candidates: Vec<&String> = object
        .iter()
        .filter(|(k, v)| *k != "op" && matches_kind(v))
        .filter(|(_, v)| match (literal, v) {
            (Some(l), Value::String(s)) => s == l,
            (Some(l), other) if !other.is_string() => {
                serde_json::from_str::<Value>(l).ok().as_ref() == Some(*other)
            }
            _ => true,
        })
        .map(|(k, _)| k)
        .collect();
    match candidates.as_slice() {
        [one] => Some((*one).clone()),
        _ => None,
    }
}

/// A JSON value read with a depth limit and no duplicate keys.
struct Strict {
    depth: usize,
}

impl Strict {
    fn deeper<E: serde::de::Error>(&self) -> Result<Strict, E> {
        if self.depth >= MAX_JSON_DEPTH {
            return Err(E::custom(format!(
                "the body nests deeper than {MAX_JSON_DEPTH} levels"
            )));
        }
        Ok(Strict {
            depth: self.depth + 1,
        })
    }
}

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
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

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
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

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(self.deeper()?)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(self.deeper()?)?;
            if out.contains_key(&key) {
                return Err(serde::de::Error::custom(format!(
                    "duplicate key `{key}` in an object"
                )));
            }
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> Result<Value, ApiError> {
        strict_value(&HeaderMap::new(), &Bytes::from(text.to_owned()))
    }

    #[test]
    fn duplicate_keys_and_depth_are_refused() {
        assert!(
            json(r#"{"op":"update","op":"delete"}"#)
                .is_err_and(|e| e.message.contains("duplicate key `op`"))
        );
        assert!(json(r#"[{"a":1},{"a":2}]"#).is_ok());
        let deep = format!("{}1{}", "[".repeat(65), "]".repeat(65));
        assert!(json(&deep).is_err_and(|e| e.message.contains("deeper than 64")));
        let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(json(&deep).is_err());
        let ok = format!("{}1{}", "[".repeat(64), "]".repeat(64));
        assert!(json(&ok).is_ok());
        assert!(json(r#"{"a":1} x"#).is_err_and(|e| e.code == "malformed_json"));
    }

    #[test]
    fn media_types_ignore_case_and_parameters() {
        let mut h = HeaderMap::new();
        for ct in [
            "APPLICATION/JSON",
            "application/json; charset=utf-8",
            "Application/Json",
        ] {
            h.insert(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static(ct),
            );
            assert!(require_json(&h).is_ok(), "{ct}");
        }
        h.insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("text/plain"),
        );
        assert!(require_json(&h).is_err());
    }

    #[test]
    fn pointers_escape() {
        assert_eq!(escape("a/b~c"), "a~1b~0c");
    }
}
