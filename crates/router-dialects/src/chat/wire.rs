//! A chat answer or stream chunk as serde reads it, with no tree: borrowed strings, the
//! members a dialect needs, everything else skipped unread. Every member is lenient, as
//! upstreams differ: one of an unexpected type reads as absent (a number where text is
//! expected as its text), never as an unreadable answer.
//!
//! serde refuses an object that repeats a member; [`read`] then reads the JSON into a
//! tree (where the last one wins) and the same structure from it.

use super::types::ReadError;
use serde::Deserialize;
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

/// An answer's or a chunk's top level.
#[derive(Deserialize, Default)]
pub(super) struct Body<'a> {
    /// `Some` when the member is present (even `null`).
    #[serde(default, borrow, deserialize_with = "present")]
    pub id: Option<Textual<'a>>,
    #[serde(default, borrow, deserialize_with = "present")]
    pub model: Option<Textual<'a>>,
    #[serde(default)]
    pub created: Count,
    #[serde(default, borrow)]
    pub choices: First<Choice<'a>>,
    #[serde(default)]
    pub usage: Obj<UsageIn>,
    #[serde(default)]
    pub error: Option<Value>,
}

#[derive(Deserialize, Default)]
pub(super) struct Choice<'a> {
    /// `Some` when present (even `null`): a chunk's `delta` wins over its `message`.
    #[serde(default, borrow, deserialize_with = "present")]
    pub delta: Option<Obj<Message<'a>>>,
    #[serde(default, borrow)]
    pub message: Obj<Message<'a>>,
    #[serde(default, borrow)]
    pub finish_reason: Textual<'a>,
    /// Only text: a number there is a stop token's id.
    #[serde(default, borrow)]
    pub stop_reason: Str<'a>,
}

#[derive(Deserialize, Default)]
pub(super) struct Message<'a> {
    #[serde(default, borrow)]
    pub content: Content<'a>,
    #[serde(default, borrow)]
    pub reasoning: Str<'a>,
    #[serde(default, borrow)]
    pub reasoning_content: Str<'a>,
    #[serde(default, borrow)]
    pub refusal: Textual<'a>,
    #[serde(default, borrow)]
    pub tool_calls: Option<List<Obj<Call<'a>>>>,
}

#[derive(Deserialize, Default)]
pub(super) struct Call<'a> {
    #[serde(default)]
    pub index: Count,
    #[serde(default, borrow)]
    pub id: Textual<'a>,
    #[serde(default, borrow)]
    pub function: Obj<Function<'a>>,
}

#[derive(Deserialize, Default)]
pub(super) struct Function<'a> {
    #[serde(default, borrow)]
    pub name: Textual<'a>,
    #[serde(default, borrow)]
    pub arguments: Arguments<'a>,
}

#[derive(Deserialize, Default)]
pub(super) struct UsageIn {
    #[serde(default)]
    pub prompt_tokens: Count,
    #[serde(default)]
    pub completion_tokens: Count,
    #[serde(default)]
    pub total_tokens: Count,
    #[serde(default)]
    pub prompt_tokens_details: Obj<Details>,
    #[serde(default)]
    pub completion_tokens_details: Obj<Details>,
}

#[derive(Deserialize, Default)]
pub(super) struct Details {
    #[serde(default)]
    pub cached_tokens: Count,
    #[serde(default)]
    pub reasoning_tokens: Count,
}

#[derive(Deserialize, Default)]
struct Part<'a> {
    #[serde(default, borrow)]
    text: Str<'a>,
}

/// Reads a JSON object's bytes and hands its structure to `with`.
pub(super) fn read<R>(bytes: &[u8], with: impl FnOnce(Body<'_>) -> R) -> Result<R, ReadError> {
    // serde would read an array as a struct's members in order: only an object is tried.
    // One UTF-8 check of the whole, rather than one per string read.
    if bytes.trim_ascii_start().first() == Some(&b'{')
        && let Ok(text) = std::str::from_utf8(bytes)
        && let Ok(body) = serde_json::from_str::<Body<'_>>(text)
    {
        return Ok(with(body));
    }
    // Not JSON, not an object, or a repeated member: the tree tells which.
    let tree = serde_json::from_slice::<Value>(bytes)?;
    if !tree.is_object() {
        return Err(ReadError::NotObject);
    }
    Ok(with(Body::deserialize(&tree)?))
}

/// A member present, even as `null`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// The `visit_*` methods that read any other value as absent, skipping it.
macro_rules! absent_otherwise {
    ($out:ty) => {
        fn visit_bool<E>(self, _: bool) -> Result<$out, E> {
            Ok(Default::default())
        }
        fn visit_unit<E>(self) -> Result<$out, E> {
            Ok(Default::default())
        }
        fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<$out, M::Error> {
            while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(Default::default())
        }
        fn visit_seq<S: SeqAccess<'de>>(self, mut s: S) -> Result<$out, S::Error> {
            while s.next_element::<IgnoredAny>()?.is_some() {}
            Ok(Default::default())
        }
    };
}

macro_rules! absent_numbers {
    ($out:ty) => {
        fn visit_u64<E>(self, _: u64) -> Result<$out, E> {
            Ok(Default::default())
        }
        fn visit_i64<E>(self, _: i64) -> Result<$out, E> {
            Ok(Default::default())
        }
        fn visit_f64<E>(self, _: f64) -> Result<$out, E> {
            Ok(Default::default())
        }
    };
}

macro_rules! strings {
    ($out:ident) => {
        fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
            Ok($out(Some(Cow::Borrowed(s))))
        }
        fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
            Ok($out(Some(Cow::Owned(s.to_owned()))))
        }
        fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
            Ok($out(Some(Cow::Owned(s))))
        }
    };
}

/// Text only; anything else is absent.
#[derive(Default)]
pub(super) struct Str<'a>(pub Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Str<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("anything")
            }
            strings!(Str);
            absent_numbers!(Str<'a>);
            absent_otherwise!(Str<'a>);
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// Text, or a number written out (some providers send numeric ids); anything else is absent.
#[derive(Default)]
pub(super) struct Textual<'a>(pub Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for Textual<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Textual<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("anything")
            }
            strings!(Textual);
            fn visit_u64<E>(self, n: u64) -> Result<Self::Value, E> {
                Ok(Textual(Some(Cow::Owned(n.to_string()))))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Self::Value, E> {
                Ok(Textual(Some(Cow::Owned(n.to_string()))))
            }
            fn visit_f64<E>(self, n: f64) -> Result<Self::Value, E> {
                Ok(Textual(Some(Cow::Owned(
                    serde_json::Number::from_f64(n).map(|n| n.to_string()).unwrap_or_default(),
                ))))
            }
            absent_otherwise!(Textual<'a>);
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// Message content: text, or parts whose `text` is joined; anything else is absent.
#[derive(Default)]
pub(super) struct Content<'a>(pub Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for Content<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Content<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("anything")
            }
            strings!(Content);
            absent_numbers!(Content<'a>);
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Content(None))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Content(None))
            }
            fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<Self::Value, M::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Content(None))
            }
            fn visit_seq<S: SeqAccess<'de>>(self, mut s: S) -> Result<Self::Value, S::Error> {
                let mut joined = String::new();
                while let Some(part) = s.next_element::<Obj<Part<'de>>>()? {
                    if let Some(Part { text: Str(Some(t)) }) = part.0 {
                        joined.push_str(&t);
                    }
                }
                Ok(Content(Some(Cow::Owned(joined))))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A tool call's arguments: their text, or the JSON text of any other non-null value
/// (some providers send the object itself).
#[derive(Default)]
pub(super) struct Arguments<'a>(pub Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for Arguments<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        fn text<'a>(v: Value) -> Arguments<'a> {
            Arguments(Some(Cow::Owned(v.to_string())))
        }
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Arguments<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("anything")
            }
            strings!(Arguments);
            fn visit_u64<E>(self, n: u64) -> Result<Self::Value, E> {
                Ok(text(Value::from(n)))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Self::Value, E> {
                Ok(text(Value::from(n)))
            }
            fn visit_f64<E>(self, n: f64) -> Result<Self::Value, E> {
                Ok(text(Value::from(n)))
            }
            fn visit_bool<E>(self, b: bool) -> Result<Self::Value, E> {
                Ok(text(Value::Bool(b)))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Arguments(None))
            }
            fn visit_map<M: MapAccess<'de>>(self, m: M) -> Result<Self::Value, M::Error> {
                Value::deserialize(MapAccessDeserializer::new(m)).map(text)
            }
            fn visit_seq<S: SeqAccess<'de>>(self, s: S) -> Result<Self::Value, S::Error> {
                Value::deserialize(SeqAccessDeserializer::new(s)).map(text)
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A non-negative integer (a float truncated); anything else is absent.
#[derive(Default, Clone, Copy)]
pub(super) struct Count(pub Option<u64>);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Count;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("anything")
            }
            fn visit_u64<E>(self, n: u64) -> Result<Count, E> {
                Ok(Count(Some(n)))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Count, E> {
                Ok(Count(u64::try_from(n).ok()))
            }
            fn visit_f64<E>(self, f: f64) -> Result<Count, E> {
                Ok(Count((f.is_finite() && f >= 0.0).then_some(f as u64)))
            }
            fn visit_str<E>(self, _: &str) -> Result<Count, E> {
                Ok(Count(None))
            }
            absent_otherwise!(Count);
        }
        d.deserialize_any(V)
    }
}

/// An object read as `T`; anything else is absent.
pub(super) struct Obj<T>(pub Option<T>);

impl<T> Default for Obj<T> {
    fn default() -> Self {
        Obj(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Obj<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("anything")
            }
            fn visit_map<M: MapAccess<'de>>(self, m: M) -> Result<Obj<T>, M::Error> {
                T::deserialize(MapAccessDeserializer::new(m)).map(|t| Obj(Some(t)))
            }
            fn visit_seq<S: SeqAccess<'de>>(self, mut s: S) -> Result<Obj<T>, S::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Obj(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Obj<T>, E> {
                Ok(Obj(None))
            }
            fn visit_unit<E>(self) -> Result<Obj<T>, E> {
                Ok(Obj(None))
            }
            fn visit_str<E>(self, _: &str) -> Result<Obj<T>, E> {
                Ok(Obj(None))
            }
            absent_numbers!(Obj<T>);
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// An array's elements as `T`; anything else is an empty list.
pub(super) struct List<T>(pub Vec<T>);

impl<T> Default for List<T> {
    fn default() -> Self {
        List(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ListVisitor::<T, false>(PhantomData)).map(List)
    }
}

/// An array's first element as `T` (the router asks for one choice); anything else is absent.
pub(super) struct First<T>(pub Option<T>);

impl<T> Default for First<T> {
    fn default() -> Self {
        First(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for First<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ListVisitor::<T, true>(PhantomData)).map(|mut all| First(all.pop()))
    }
}

/// The elements of an array (only the first when `FIRST`), the rest skipped.
struct ListVisitor<T, const FIRST: bool>(PhantomData<T>);

impl<'de, T: Deserialize<'de>, const FIRST: bool> Visitor<'de> for ListVisitor<T, FIRST> {
    type Value = Vec<T>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("anything")
    }
    fn visit_seq<S: SeqAccess<'de>>(self, mut s: S) -> Result<Vec<T>, S::Error> {
        let mut out = Vec::new();
        if FIRST {
            out.extend(s.next_element::<T>()?);
            while s.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(out);
        }
        while let Some(t) = s.next_element::<T>()? {
            out.push(t);
        }
        Ok(out)
    }
    fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<Vec<T>, M::Error> {
        while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Vec::new())
    }
    fn visit_bool<E>(self, _: bool) -> Result<Vec<T>, E> {
        Ok(Vec::new())
    }
    fn visit_unit<E>(self) -> Result<Vec<T>, E> {
        Ok(Vec::new())
    }
    fn visit_str<E>(self, _: &str) -> Result<Vec<T>, E> {
        Ok(Vec::new())
    }
    absent_numbers!(Vec<T>);
}
