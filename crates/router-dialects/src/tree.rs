//! A borrowed JSON tree for reading requests: strings borrowed from the body when they
//! have no escapes, objects as lists of members (no map, no copied keys). The
//! translations read a request through it as they would a `serde_json::Value`, with the
//! same accessors, at a fraction of the allocations, and copy its values on into the chat
//! body as they were (`Json::write_json`).

mod parse;

use crate::json_out::{Seq, string};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Number;
use std::borrow::Cow;
use std::fmt;

/// One JSON value.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Json<'a> {
    #[default]
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    /// Members in their order; a repeated key's last member is the one [`Json::get`] finds.
    Object(Vec<(Cow<'a, str>, Json<'a>)>),
}

/// The value `null`, for accessors that return a reference to nothing.
pub const NULL: Json<'static> = Json::Null;

impl<'a> Json<'a> {
    /// Reads a JSON text (one UTF-8 check for the whole body) in one pass of its own;
    /// what that leaves, and every error, is serde's.
    pub fn parse(bytes: &'a [u8]) -> Result<Json<'a>, serde_json::Error> {
        match std::str::from_utf8(bytes) {
            Ok(text) => parse::parse(text).map_or_else(|| serde_json::from_str(text), Ok),
            Err(_) => serde_json::from_slice(bytes),
        }
    }

    /// An object's member (the last one of that key), as `Value::get`.
    pub fn get(&self, key: &str) -> Option<&Json<'a>> {
        match self {
            Json::Object(members) => members.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Json::Number(n) => n.as_u64(),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Json<'a>]> {
        match self {
            Json::Array(a) => Some(a),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }

    pub fn is_string(&self) -> bool {
        matches!(self, Json::String(_))
    }

    pub fn is_number(&self) -> bool {
        matches!(self, Json::Number(_))
    }

    pub fn is_u64(&self) -> bool {
        matches!(self, Json::Number(n) if n.is_u64())
    }

    pub fn is_object(&self) -> bool {
        matches!(self, Json::Object(_))
    }

    /// The same value as a `serde_json::Value`.
    pub fn to_value(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => Value::Number(n.clone()),
            Json::String(s) => Value::String(s.to_string()),
            Json::Array(a) => Value::Array(a.iter().map(Json::to_value).collect()),
            Json::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.to_string(), v.to_value())).collect()),
        }
    }

    /// Its JSON text.
    pub fn to_json(&self) -> String {
        let mut out = Vec::new();
        self.write_json(&mut out);
        // Written from text that was UTF-8, with ASCII between.
        String::from_utf8(out).unwrap_or_default()
    }

    /// The value as JSON text into `out` (schemas, tool inputs, numbers copied on), in its
    /// members' order: the bytes serde writes for the tree, its strings written by
    /// [`string`] (serde's escaping went byte by byte through a long system prompt).
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Json::Null => out.extend_from_slice(b"null"),
            Json::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Json::Number(n) => {
                let _ = serde_json::to_writer(&mut *out, n);
            }
            Json::String(s) => string(out, s),
            Json::Array(items) => {
                let mut list = Seq::array(out);
                for item in items {
                    item.write_json(list.item());
                }
                list.end();
            }
            Json::Object(members) => {
                // Members by `item`: their keys come from outside and are escaped.
                let mut object = Seq::object(out);
                for (key, value) in kept(members) {
                    let o = object.item();
                    string(o, key);
                    o.push(b':');
                    value.write_json(o);
                }
                object.end();
            }
        }
    }
}

/// The members an object is written with: a repeated key once, with its last value (as
/// a map keeps it, and as [`Json::get`] reads it), at its last place.
fn kept<'m, 'a>(members: &'m [(Cow<'a, str>, Json<'a>)]) -> impl Iterator<Item = &'m (Cow<'a, str>, Json<'a>)> {
    members
        .iter()
        .enumerate()
        .filter(|(i, (key, _))| !members[i + 1..].iter().any(|(later, _)| later == key))
        .map(|(_, m)| m)
}

impl Serialize for Json<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => s.serialize_unit(),
            Json::Bool(b) => s.serialize_bool(*b),
            Json::Number(n) => n.serialize(s),
            Json::String(t) => s.serialize_str(t),
            Json::Array(a) => {
                let mut seq = s.serialize_seq(Some(a.len()))?;
                for v in a {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
            Json::Object(m) => {
                let mut map = s.serialize_map(None)?;
                for (k, v) in kept(m) {
                    map.serialize_entry(k.as_ref(), v)?;
                }
                map.end()
            }
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Json<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JsonVisitor(std::marker::PhantomData))
    }
}

struct JsonVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for JsonVisitor<'a> {
    type Value = Json<'a>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Json<'a>, E> {
        Ok(Json::Null)
    }
    fn visit_none<E>(self) -> Result<Json<'a>, E> {
        Ok(Json::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Json<'a>, E> {
        Ok(Json::Bool(b))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Json<'a>, E> {
        Ok(Json::Number(n.into()))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Json<'a>, E> {
        Ok(Json::Number(n.into()))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Json<'a>, E> {
        Ok(Number::from_f64(n).map_or(Json::Null, Json::Number))
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Json<'a>, E> {
        Ok(Json::String(Cow::Borrowed(s)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Json<'a>, E> {
        Ok(Json::String(Cow::Owned(s.to_owned())))
    }
    fn visit_string<E>(self, s: String) -> Result<Json<'a>, E> {
        Ok(Json::String(Cow::Owned(s)))
    }
    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Json<'a>, S::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(Json::Array(out))
    }
    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Json<'a>, M::Error> {
        let mut out = Vec::new();
        while let Some(key) = map.next_key::<Key<'a>>()? {
            out.push((key.0, map.next_value()?));
        }
        Ok(Json::Object(out))
    }
}

/// A member's name, borrowed when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match d.deserialize_str(JsonVisitor(std::marker::PhantomData))? {
            Json::String(s) => Ok(Key(s)),
            _ => Err(serde::de::Error::custom("a member's name must be a string")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn a_tree_is_written_as_serde_writes_it() {
        for text in [
            r#"{"a":[1,-2,3.5e10,"x\"y\u0001é",null,true,false,{"b":{}}],"c":"d","c":"e","":[]}"#,
            r#"[{"k\"ey":{"nested":[[],{}]}},"a long plain string, longer than a word",0]"#,
            r#""just a string""#,
            "12345678901234567890123",
        ] {
            let tree = Json::parse(text.as_bytes()).expect("json");
            let mut out = Vec::new();
            tree.write_json(&mut out);
            assert_eq!(out, serde_json::to_vec(&tree).unwrap_or_default(), "{text}");
        }
    }

    #[test]
    fn reads_and_writes_as_a_value_does() {
        let text = br#"{"a":[1,-2,3.5,"x\"y",null,true,{"b":{}}],"c":"d","c":"e"}"#;
        let tree = Json::parse(text).expect("json");
        let value: Value = serde_json::from_slice(text).expect("json");
        assert_eq!(tree.to_value(), value);
        assert_eq!(serde_json::from_str::<Value>(&tree.to_json()).expect("json"), value);
        assert_eq!(tree.get("c").and_then(Json::as_str), Some("e"));
        assert!(matches!(tree.get("a").and_then(|a| a.as_array()).map(|a| &a[3]), Some(Json::String(Cow::Owned(_)))));
        assert_eq!(json!(tree.get("a").and_then(|a| a.as_array()).map(|a| a[0].as_u64())), json!(1));
    }
}
