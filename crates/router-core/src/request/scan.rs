//! The visitors that read the body in one pass into counts and flags, without
//! building JSON values.

use crate::model::{CapSet, Capability};
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::fmt;

/// Fixed prompt-token cost of one non-text content part. Media travel as base64 or
/// URLs, so their length says nothing about their token cost; these are deliberately
/// generous figures (a high-detail image is about 1,000 tokens on most vision models).
const TOKENS_PER_IMAGE: u64 = 1_000;
const TOKENS_PER_AUDIO: u64 = 1_000;
const TOKENS_PER_FILE: u64 = 4_000;
const TOKENS_PER_VIDEO: u64 = 4_000;
/// Role markers and separators per message.
const TOKENS_PER_MESSAGE: u64 = 4;

/// A string borrowed from the body when it has no escapes, owned otherwise.
pub(super) enum Str<'a> {
    Borrowed(&'a str),
    Owned(String),
}

impl Str<'_> {
    pub(super) fn as_str(&self) -> &str {
        match self {
            Str::Borrowed(s) => s,
            Str::Owned(s) => s,
        }
    }
}

impl<'de> Deserialize<'de> for Str<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Str<'de>, E> {
                Ok(Str::Borrowed(s))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Str<'de>, E> {
                Ok(Str::Owned(s.to_owned()))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Str<'de>, E> {
                Ok(Str::Owned(s))
            }
        }
        d.deserialize_str(V)
    }
}

/// The body: its members in order, or "not an object".
pub(super) enum TopLevel<'a> {
    Object(Vec<(Str<'a>, Val<'a>)>),
    Other,
}

/// What was kept of a member's value while reading the body.
pub(super) enum Val<'a> {
    /// Skipped; its place is found from the keys around it.
    Skipped,
    /// `messages`, analysed on the way.
    Messages(Messages),
    /// Read as raw text because its key has escapes, so its place cannot be found later.
    Raw(&'a RawValue),
}

/// Implements every `visit_*` a lenient visitor does not care about: consume the
/// value and return `$default`.
macro_rules! ignore_others {
    ($default:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($default)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($default)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($default)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($default)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($default)
        }
    };
}

macro_rules! ignore_strings {
    ($default:expr) => {
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($default)
        }
    };
}

macro_rules! ignore_seqs {
    ($default:expr) => {
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok($default)
        }
    };
}

macro_rules! ignore_maps {
    ($default:expr) => {
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok($default)
        }
    };
}

impl<'de> Deserialize<'de> for TopLevel<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TopLevel<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a json object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TopLevel<'de>, A::Error> {
                let mut members = Vec::with_capacity(16);
                while let Some(key) = map.next_key::<Str<'de>>()? {
                    let value = match &key {
                        Str::Owned(_) => Val::Raw(map.next_value()?),
                        Str::Borrowed("messages") => Val::Messages(map.next_value()?),
                        Str::Borrowed(_) => {
                            map.next_value::<IgnoredAny>()?;
                            Val::Skipped
                        }
                    };
                    members.push((key, value));
                }
                Ok(TopLevel::Object(members))
            }
            ignore_others!(TopLevel::Other);
            ignore_strings!(TopLevel::Other);
            ignore_seqs!(TopLevel::Other);
        }
        d.deserialize_any(V)
    }
}

/// What the analysis takes from `messages`.
#[derive(Clone, Copy, Default)]
pub(super) struct Messages {
    pub(super) count: usize,
    pub(super) first_bad: Option<usize>,
    pub(super) caps: CapSet,
    pub(super) text_bytes: u64,
    pub(super) fixed: u64,
}

impl<'de> Deserialize<'de> for Messages {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Messages;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of messages")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Messages, A::Error> {
                let mut out = Messages::default();
                while let Some(m) = seq.next_element::<Message>()? {
                    match m {
                        Message::Object { content, tool_calls_len } => {
                            out.fixed += TOKENS_PER_MESSAGE + content.fixed;
                            out.text_bytes += content.text_bytes + tool_calls_len;
                            out.caps = out.caps.union(content.caps);
                        }
                        Message::Other => {
                            out.first_bad.get_or_insert(out.count);
                        }
                    }
                    out.count += 1;
                }
                Ok(out)
            }
            ignore_others!(Messages::default());
            ignore_strings!(Messages::default());
            ignore_maps!(Messages::default());
        }
        d.deserialize_any(V)
    }
}

/// What the analysis takes from one message or one content.
#[derive(Clone, Copy, Default)]
struct Content {
    caps: CapSet,
    text_bytes: u64,
    fixed: u64,
}

enum Message {
    Object { content: Content, tool_calls_len: u64 },
    Other,
}

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Message;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a message object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Message, A::Error> {
                // A key given twice counts once, at its last value.
                let (mut content, mut tool_calls_len) = (Content::default(), 0);
                while let Some(key) = map.next_key::<Str<'de>>()? {
                    match key.as_str() {
                        "content" => content = map.next_value()?,
                        // Assistant tool calls and their arguments are prompt text too.
                        "tool_calls" => tool_calls_len = map.next_value::<&RawValue>()?.get().len() as u64,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(Message::Object { content, tool_calls_len })
            }
            ignore_others!(Message::Other);
            ignore_strings!(Message::Other);
            ignore_seqs!(Message::Other);
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Content {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Content;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("message content")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Content, E> {
                Ok(Content { text_bytes: s.len() as u64, ..Content::default() })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Content, A::Error> {
                let mut out = Content::default();
                while let Some(part) = seq.next_element::<Part>()? {
                    match part.kind {
                        PartKind::Image => {
                            out.caps.insert(Capability::ImageInput);
                            out.fixed += TOKENS_PER_IMAGE;
                        }
                        PartKind::File => {
                            out.caps.insert(Capability::FileInput);
                            out.fixed += TOKENS_PER_FILE;
                        }
                        PartKind::Audio => {
                            out.caps.insert(Capability::AudioInput);
                            out.fixed += TOKENS_PER_AUDIO;
                        }
                        PartKind::Video => {
                            out.caps.insert(Capability::VideoInput);
                            out.fixed += TOKENS_PER_VIDEO;
                        }
                        PartKind::Other => out.text_bytes += part.text_bytes,
                    }
                }
                Ok(out)
            }
            ignore_others!(Content::default());
            ignore_maps!(Content::default());
        }
        d.deserialize_any(V)
    }
}

#[derive(Clone, Copy, Default)]
enum PartKind {
    Image,
    File,
    Audio,
    Video,
    /// Text, or anything the router does not know: its `text`, if any, is counted.
    #[default]
    Other,
}

impl<'de> Deserialize<'de> for PartKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PartKind;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a content part type")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<PartKind, E> {
                Ok(match s {
                    "image_url" => PartKind::Image,
                    "file" => PartKind::File,
                    "input_audio" => PartKind::Audio,
                    "video_url" | "input_video" => PartKind::Video,
                    _ => PartKind::Other,
                })
            }
            ignore_others!(PartKind::Other);
            ignore_seqs!(PartKind::Other);
            ignore_maps!(PartKind::Other);
        }
        d.deserialize_any(V)
    }
}

/// The UTF-8 length of a string value; zero for anything else.
struct TextLen(u64);

impl<'de> Deserialize<'de> for TextLen {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TextLen;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("text")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<TextLen, E> {
                Ok(TextLen(s.len() as u64))
            }
            ignore_others!(TextLen(0));
            ignore_seqs!(TextLen(0));
            ignore_maps!(TextLen(0));
        }
        d.deserialize_any(V)
    }
}

/// One content part: its type and the length of its `text`.
#[derive(Default)]
struct Part {
    kind: PartKind,
    text_bytes: u64,
}

impl<'de> Deserialize<'de> for Part {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Part;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a content part")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Part, A::Error> {
                let mut part = Part::default();
                while let Some(key) = map.next_key::<Str<'de>>()? {
                    match key.as_str() {
                        "type" => part.kind = map.next_value()?,
                        "text" => part.text_bytes = map.next_value::<TextLen>()?.0,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(part)
            }
            ignore_others!(Part::default());
            ignore_strings!(Part::default());
            ignore_seqs!(Part::default());
        }
        d.deserialize_any(V)
    }
}
