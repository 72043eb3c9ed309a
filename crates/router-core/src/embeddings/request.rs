//! An embeddings request body as OpenAI and OpenRouter define it: `input` as a string,
//! an array of strings, an array of token ids or an array of token-id arrays;
//! `dimensions`, `encoding_format` (`float` or `base64`), `user`. Read once to check its
//! forms and bounds; the body itself is forwarded as sent.

use serde::Deserialize;

/// The most inputs one request may embed (OpenAI's own limit per request).
pub const MAX_EMBEDDING_INPUTS: usize = 2048;

/// The most input one request may carry, in bytes: UTF-8 text, and 4 bytes per token id.
/// A free endpoint is a shared one; a larger batch is split by the client.
pub const MAX_EMBEDDING_INPUT_BYTES: usize = 4 * 1024 * 1024;

/// How the vectors come back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Encoding {
    /// Arrays of numbers.
    #[default]
    Float,
    /// Little-endian `f32`s, base64-encoded.
    Base64,
}

/// What the router needs from an embeddings body; the rest is forwarded untouched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmbeddingsRequest {
    /// `model` as sent; `None` when absent (the default family).
    pub model: Option<String>,
    /// How many vectors the answer must hold.
    pub inputs: usize,
    /// The input's size (see [`MAX_EMBEDDING_INPUT_BYTES`]).
    pub bytes: usize,
    /// `dimensions`, when asked for.
    pub dimensions: Option<u32>,
    /// `encoding_format`.
    pub encoding: Encoding,
}

/// Why a body is refused (a 400).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EmbeddingsError {
    /// Not JSON, or not an object.
    #[error("request body is not a valid json object: {0}")]
    Json(String),
    /// A member of the wrong form.
    #[error("`{field}` must be {expected}")]
    BadField {
        /// The member.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// `input` is absent or holds nothing to embed.
    #[error("`input` is required and must not be empty (nor hold an empty string or token array)")]
    EmptyInput,
    /// More inputs than [`MAX_EMBEDDING_INPUTS`].
    #[error("`input` holds {0} items; at most {MAX_EMBEDDING_INPUTS} are accepted per request")]
    TooManyInputs(usize),
    /// More input than [`MAX_EMBEDDING_INPUT_BYTES`].
    #[error("`input` holds {0} bytes; at most {MAX_EMBEDDING_INPUT_BYTES} are accepted per request")]
    TooLarge(usize),
}

/// `input`'s four forms.
#[derive(Deserialize)]
#[serde(untagged)]
enum Input {
    Text(String),
    Texts(Vec<String>),
    Tokens(Vec<u32>),
    TokenLists(Vec<Vec<u32>>),
}

#[derive(Deserialize)]
struct Body {
    #[serde(default)]
    model: Option<serde_json::Value>,
    #[serde(default)]
    input: Option<serde_json::Value>,
    #[serde(default)]
    dimensions: Option<serde_json::Value>,
    #[serde(default)]
    encoding_format: Option<serde_json::Value>,
    #[serde(default)]
    user: Option<serde_json::Value>,
}

const INPUT_FORMS: &str = "a string, an array of strings, an array of token ids or an array of token-id arrays";

impl EmbeddingsRequest {
    /// Reads and checks `body`.
    pub fn read(body: &[u8]) -> Result<Self, EmbeddingsError> {
        // serde would read a struct from an array too, by position.
        if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(EmbeddingsError::Json("expected an object".to_owned()));
        }
        let body: Body = serde_json::from_slice(body).map_err(|e| EmbeddingsError::Json(e.to_string()))?;
        let model = match body.model {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s),
            Some(_) => return Err(EmbeddingsError::BadField { field: "model", expected: "a non-empty string" }),
        };
        let input = body.input.filter(|v| !v.is_null()).ok_or(EmbeddingsError::EmptyInput)?;
        let input: Input = serde_json::from_value(input)
            .map_err(|_| EmbeddingsError::BadField { field: "input", expected: INPUT_FORMS })?;
        let (inputs, bytes, empty) = match &input {
            Input::Text(s) => (1, s.len(), s.is_empty()),
            Input::Texts(v) => {
                (v.len(), v.iter().map(String::len).sum(), v.is_empty() || v.iter().any(String::is_empty))
            }
            Input::Tokens(v) => (1, v.len() * 4, v.is_empty()),
            Input::TokenLists(v) => {
                (v.len(), v.iter().map(|t| t.len() * 4).sum(), v.is_empty() || v.iter().any(Vec::is_empty))
            }
        };
        if empty {
            return Err(EmbeddingsError::EmptyInput);
        }
        if inputs > MAX_EMBEDDING_INPUTS {
            return Err(EmbeddingsError::TooManyInputs(inputs));
        }
        if bytes > MAX_EMBEDDING_INPUT_BYTES {
            return Err(EmbeddingsError::TooLarge(bytes));
        }
        let dimensions = match body.dimensions {
            None | Some(serde_json::Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .filter(|&n| n > 0)
                    .ok_or(EmbeddingsError::BadField { field: "dimensions", expected: "a positive integer" })?,
            ),
        };
        let encoding = match body.encoding_format.as_ref().map(|v| (v.is_null(), v.as_str())) {
            None | Some((true, _)) | Some((_, Some("float"))) => Encoding::Float,
            Some((_, Some("base64"))) => Encoding::Base64,
            Some(_) => {
                return Err(EmbeddingsError::BadField { field: "encoding_format", expected: "`float` or `base64`" });
            }
        };
        if body.user.as_ref().is_some_and(|u| !(u.is_null() || u.is_string())) {
            return Err(EmbeddingsError::BadField { field: "user", expected: "a string" });
        }
        Ok(EmbeddingsRequest { model, inputs, bytes, dimensions, encoding })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `body`: `(inputs, bytes)` or the error's text.
    fn check(body: &str, expected: Result<(usize, usize), &str>) {
        let got = EmbeddingsRequest::read(body.as_bytes()).map(|r| (r.inputs, r.bytes)).map_err(|e| e.to_string());
        assert_eq!(got, expected.map_err(str::to_owned), "{body}");
    }

    #[test]
    fn every_form_of_input_is_counted() {
        check(r#"{"input":"héllo"}"#, Ok((1, 6)));
        check(r#"{"model":"free","input":["a","bc"]}"#, Ok((2, 3)));
        check(r#"{"input":[1,2,3]}"#, Ok((1, 12)));
        check(r#"{"input":[[1],[2,3]]}"#, Ok((2, 12)));
    }

    #[test]
    fn malformed_and_oversized_bodies_are_refused() {
        check("[1]", Err("request body is not a valid json object: expected an object"));
        check("{", Err("request body is not a valid json object: EOF while parsing an object at line 1 column 1"));
        check("{}", Err("`input` is required and must not be empty (nor hold an empty string or token array)"));
        check(
            r#"{"input":[]}"#,
            Err("`input` is required and must not be empty (nor hold an empty string or token array)"),
        );
        check(
            r#"{"input":["a",""]}"#,
            Err("`input` is required and must not be empty (nor hold an empty string or token array)"),
        );
        check(r#"{"input":[1,"a"]}"#, Err(&format!("`input` must be {INPUT_FORMS}")));
        check(r#"{"input":"a","model":3}"#, Err("`model` must be a non-empty string"));
        check(r#"{"input":"a","dimensions":0}"#, Err("`dimensions` must be a positive integer"));
        check(r#"{"input":"a","encoding_format":"int8"}"#, Err("`encoding_format` must be `float` or `base64`"));
        check(r#"{"input":"a","user":1}"#, Err("`user` must be a string"));
        let many = format!(r#"{{"input":[{}]}}"#, vec!["\"a\""; MAX_EMBEDDING_INPUTS + 1].join(","));
        check(&many, Err("`input` holds 2049 items; at most 2048 are accepted per request"));
        let big = format!(r#"{{"input":"{}"}}"#, "a".repeat(MAX_EMBEDDING_INPUT_BYTES + 1));
        check(&big, Err("`input` holds 4194305 bytes; at most 4194304 are accepted per request"));
        let at_limit = format!(r#"{{"input":["{}"]}}"#, "a".repeat(MAX_EMBEDDING_INPUT_BYTES));
        check(&at_limit, Ok((1, MAX_EMBEDDING_INPUT_BYTES)));
    }

    #[test]
    fn options_are_read() {
        let r = EmbeddingsRequest::read(br#"{"input":"a","dimensions":256,"encoding_format":"base64","user":"u"}"#)
            .expect("valid");
        assert_eq!((r.dimensions, r.encoding, r.model), (Some(256), Encoding::Base64, None));
    }
}
