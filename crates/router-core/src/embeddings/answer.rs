//! An embeddings answer read for what the router vouches for: as many vectors as inputs,
//! all of one dimension, and that dimension the family's (learned from its first answer
//! for each `dimensions` asked), so that a client never gets vectors of two spaces.

use super::request::Encoding;
use serde::Deserialize;
use serde::de::IgnoredAny;
use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

/// What an answer holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EmbeddingsAnswer {
    /// The vectors in `data`.
    pub vectors: usize,
    /// Their dimension (all equal).
    pub dimension: usize,
    /// Some came as arrays of numbers although base64 was asked for (a server that
    /// ignores `encoding_format`): see [`floats_to_base64`].
    pub floats_for_base64: bool,
}

/// Why an answer cannot be the client's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// Not an embeddings list.
    #[error("the answer is not an embeddings list: {0}")]
    Shape(String),
    /// Fewer or more vectors than inputs.
    #[error("the answer holds {got} vectors for {asked} inputs")]
    Count {
        /// Vectors in the answer.
        got: usize,
        /// Inputs in the request.
        asked: usize,
    },
    /// Vectors of several dimensions in one answer, or none at all.
    #[error("the answer's vectors are not all of one non-zero dimension")]
    Ragged,
    /// The family answered before with another dimension.
    #[error(
        "family `{family}` answered with {expected} dimensions before, and now with {got}; these vectors are not passed on"
    )]
    Mismatch {
        /// The family.
        family: String,
        /// The dimension of its first answer.
        expected: usize,
        /// This answer's.
        got: usize,
    },
}

#[derive(Deserialize)]
struct List {
    data: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    embedding: Vector,
}

/// A vector as it came, reduced to what is checked: how many numbers, or how many
/// base64 characters (padding left out). Read in one pass: an untagged enum would first
/// copy every number into serde's buffer to try each form in turn.
enum Vector {
    Floats(usize),
    Base64(usize),
}

impl<'de> Deserialize<'de> for Vector {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Form;
        impl<'de> serde::de::Visitor<'de> for Form {
            type Value = Vector;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array of numbers or a base64 string")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vector, A::Error> {
                // The numbers are only counted: skipped, never converted.
                let mut n = 0;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(Vector::Floats(n))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Vector, E> {
                Ok(Vector::Base64(s.trim_end_matches('=').len()))
            }
        }
        d.deserialize_any(Form)
    }
}

impl Vector {
    /// The dimension, when the form is one the client can read: numbers, or base64 when
    /// the client asked for it.
    fn dimension(&self, encoding: Encoding) -> Option<usize> {
        match (self, encoding) {
            (Vector::Floats(n), _) => Some(*n),
            (Vector::Base64(chars), Encoding::Base64) => {
                let bytes = chars * 3 / 4;
                (bytes % 4 == 0).then_some(bytes / 4)
            }
            (Vector::Base64(_), Encoding::Float) => None,
        }
    }
}

/// Reads `body`, an answer to a request of `inputs` inputs in `encoding`.
pub fn read_answer(body: &[u8], inputs: usize, encoding: Encoding) -> Result<EmbeddingsAnswer, AnswerError> {
    let list: List = serde_json::from_slice(body).map_err(|e| AnswerError::Shape(e.to_string()))?;
    if list.data.len() != inputs {
        return Err(AnswerError::Count { got: list.data.len(), asked: inputs });
    }
    let mut dims = list.data.iter().map(|i| i.embedding.dimension(encoding));
    let first = dims.next().flatten().filter(|&d| d > 0).ok_or(AnswerError::Ragged)?;
    if dims.any(|d| d != Some(first)) {
        return Err(AnswerError::Ragged);
    }
    let floats_for_base64 =
        encoding == Encoding::Base64 && list.data.iter().any(|i| matches!(i.embedding, Vector::Floats(_)));
    Ok(EmbeddingsAnswer { vectors: list.data.len(), dimension: first, floats_for_base64 })
}

/// The answer with every vector given as numbers re-encoded as base64 (little-endian
/// `f32`s, as OpenAI sends them), for a client that asked for base64 from a server that
/// ignores `encoding_format` (Ollama's, for one).
pub fn floats_to_base64(body: &[u8]) -> Result<Vec<u8>, AnswerError> {
    let mut answer: serde_json::Value = serde_json::from_slice(body).map_err(|e| AnswerError::Shape(e.to_string()))?;
    let items = answer.get_mut("data").and_then(serde_json::Value::as_array_mut);
    for item in items.into_iter().flatten() {
        let Some(slot) = item.get_mut("embedding") else { continue };
        if let Some(numbers) = slot.as_array() {
            // Narrowed to f32 as the wire form is; not a loss a client of base64 expects to keep.
            #[expect(clippy::cast_possible_truncation, reason = "base64 embeddings are f32s")]
            let bytes: Vec<u8> =
                numbers.iter().flat_map(|n| (n.as_f64().unwrap_or(0.0) as f32).to_le_bytes()).collect();
            *slot = serde_json::Value::String(base64(&bytes));
        }
    }
    serde_json::to_vec(&answer).map_err(|e| AnswerError::Shape(e.to_string()))
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            let sextet = (n >> (18 - 6 * i)) & 63;
            out.push(if i <= chunk.len() { char::from(ALPHABET[sextet as usize]) } else { '=' });
        }
    }
    out
}

/// Each family's dimension, learned from its first answer for each `dimensions` asked
/// (a family may shorten its vectors on request, and then only as asked).
#[derive(Clone, Debug, Default)]
pub struct Dimensions(BTreeMap<(String, Option<u32>), usize>);

impl Dimensions {
    /// Learns `got` for `family` asked for `asked`, or says it differs from what was learned.
    pub fn check(&mut self, family: &str, asked: Option<u32>, got: usize) -> Result<(), AnswerError> {
        match self.0.get(&(family.to_owned(), asked)) {
            Some(&expected) if expected != got => {
                Err(AnswerError::Mismatch { family: family.to_owned(), expected, got })
            }
            Some(_) => Ok(()),
            None => {
                self.0.insert((family.to_owned(), asked), got);
                Ok(())
            }
        }
    }

    /// The dimension learned for `family` at its native size, when it answered.
    pub fn native(&self, family: &str) -> Option<usize> {
        self.0.get(&(family.to_owned(), None)).copied()
    }
}

/// An embeddings answer as the attempt loop checks it before it becomes the client's: one
/// vector per input, all of one dimension, and that dimension its family's (learned from
/// the family's first answer). An endpoint that answers otherwise is a failed attempt, so
/// the request falls back to another endpoint of the family rather than failing.
#[derive(Clone, Copy, Debug)]
pub struct VectorCheck<'a> {
    /// The family the request is confined to.
    pub family: &'a str,
    /// The inputs sent: the vectors expected.
    pub inputs: usize,
    /// The encoding asked for.
    pub encoding: Encoding,
    /// `dimensions`, when asked for.
    pub dimensions: Option<u32>,
    /// Each family's dimension, as learned so far.
    pub learned: &'a Mutex<Dimensions>,
}

impl VectorCheck<'_> {
    /// Reads `body` and holds it to the family's dimension (learning it from a first answer).
    pub fn check(&self, body: &[u8]) -> Result<EmbeddingsAnswer, AnswerError> {
        let answer = read_answer(body, self.inputs, self.encoding)?;
        let mut learned = self.learned.lock().unwrap_or_else(PoisonError::into_inner);
        learned.check(self.family, self.dimensions, answer.dimension)?;
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(body: &str, inputs: usize, encoding: Encoding, expected: Result<usize, &str>) {
        let got = read_answer(body.as_bytes(), inputs, encoding).map(|a| a.dimension).map_err(|e| e.to_string());
        assert_eq!(got, expected.map_err(str::to_owned), "{body}");
    }

    #[test]
    fn vectors_are_counted_in_either_encoding() {
        let floats = r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2,0.3]}]}"#;
        check(floats, 1, Encoding::Float, Ok(3));
        // Three f32s are 12 bytes: 16 base64 characters.
        let b64 = r#"{"data":[{"embedding":"AAAAAAAAAAAAAAAA"},{"embedding":"AAAAAAAAAAAAAAAA"}]}"#;
        check(b64, 2, Encoding::Base64, Ok(3));
        check(b64, 1, Encoding::Base64, Err("the answer holds 2 vectors for 1 inputs"));
        check(b64, 2, Encoding::Float, Err("the answer's vectors are not all of one non-zero dimension"));
        let ragged = r#"{"data":[{"embedding":[1]},{"embedding":[1,2]}]}"#;
        check(ragged, 2, Encoding::Float, Err("the answer's vectors are not all of one non-zero dimension"));
        assert!(read_answer(b"{}", 1, Encoding::Float).is_err());
        let neither = r#"{"data":[{"embedding":{"values":[1]}}]}"#;
        let got = read_answer(neither.as_bytes(), 1, Encoding::Float).map_err(|e| e.to_string());
        assert!(got.as_ref().is_err_and(|e| e.contains("an array of numbers or a base64 string")), "{got:?}");
        // Numbers of every JSON form are counted, none read as a float.
        check(r#"{"data":[{"embedding":[-1.5e-3,0,7,1E2]}]}"#, 1, Encoding::Float, Ok(4));
    }

    #[test]
    fn numbers_asked_as_base64_are_re_encoded() {
        let floats =
            br#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[1.0,1.0,1.0]}],"model":"m"}"#;
        let read = read_answer(floats, 1, Encoding::Base64).expect("readable");
        assert!(read.floats_for_base64);
        assert!(!read_answer(floats, 1, Encoding::Float).expect("readable").floats_for_base64);
        let out: serde_json::Value =
            serde_json::from_slice(&floats_to_base64(floats).expect("re-encoded")).expect("json");
        assert_eq!(out["data"][0]["embedding"], "AACAPwAAgD8AAIA/");
        assert_eq!((out["model"].as_str(), out["data"][0]["index"].as_u64()), (Some("m"), Some(0)));
        assert_eq!(base64(&[0xff]), "/w==");
        assert_eq!(base64(&[1, 2]), "AQI=");
        let again = floats_to_base64(&floats_to_base64(floats).expect("once")).expect("twice");
        assert_eq!(read_answer(&again, 1, Encoding::Base64).expect("base64").dimension, 3);
    }

    #[test]
    fn a_family_keeps_the_dimension_of_its_first_answer() {
        let mut d = Dimensions::default();
        assert_eq!(d.check("f", None, 768), Ok(()));
        assert_eq!(d.check("f", None, 768), Ok(()));
        assert_eq!(d.check("f", Some(256), 256), Ok(()));
        assert_eq!(d.check("g", None, 1024), Ok(()));
        let e = d.check("f", None, 1024).expect_err("mismatch");
        assert_eq!(
            e.to_string(),
            "family `f` answered with 768 dimensions before, and now with 1024; these vectors are not passed on"
        );
        assert_eq!(d.native("f"), Some(768));
    }

    #[test]
    fn a_check_learns_the_first_dimension_and_refuses_another() {
        let learned = Mutex::new(Dimensions::default());
        let check =
            VectorCheck { family: "f", inputs: 1, encoding: Encoding::Float, dimensions: None, learned: &learned };
        assert_eq!(check.check(br#"{"data":[{"embedding":[1,2,3]}]}"#).map(|a| a.dimension), Ok(3));
        let other = check.check(br#"{"data":[{"embedding":[1,2]}]}"#);
        assert!(matches!(other, Err(AnswerError::Mismatch { expected: 3, got: 2, .. })), "{other:?}");
        assert!(matches!(check.check(b"{}"), Err(AnswerError::Shape(_))));
        assert_eq!(learned.lock().expect("lock").native("f"), Some(3));
    }
}
