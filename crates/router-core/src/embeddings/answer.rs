//! An embeddings answer read for what the router vouches for: as many vectors as inputs,
//! all of one dimension, and that dimension the family's (learned from its first answer
//! for each `dimensions` asked), so that a client never gets vectors of two spaces.

use super::request::Encoding;
use serde::Deserialize;
use serde::de::IgnoredAny;
use std::collections::BTreeMap;

/// What an answer holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EmbeddingsAnswer {
    /// The vectors in `data`.
    pub vectors: usize,
    /// Their dimension (all equal).
    pub dimension: usize,
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

#[derive(Deserialize)]
#[serde(untagged)]
enum Vector {
    /// The numbers are only counted (`IgnoredAny` takes no memory).
    Floats(Vec<IgnoredAny>),
    Base64(String),
}

impl Vector {
    fn dimension(&self, encoding: Encoding) -> Option<usize> {
        match (self, encoding) {
            (Vector::Floats(v), Encoding::Float) => Some(v.len()),
            (Vector::Base64(s), Encoding::Base64) => {
                let s = s.trim_end_matches('=');
                let bytes = s.len() * 3 / 4;
                (bytes % 4 == 0).then_some(bytes / 4)
            }
            _ => None,
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
    Ok(EmbeddingsAnswer { vectors: list.data.len(), dimension: first })
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
        check(floats, 1, Encoding::Base64, Err("the answer's vectors are not all of one non-zero dimension"));
        let ragged = r#"{"data":[{"embedding":[1]},{"embedding":[1,2]}]}"#;
        check(ragged, 2, Encoding::Float, Err("the answer's vectors are not all of one non-zero dimension"));
        assert!(read_answer(b"{}", 1, Encoding::Float).is_err());
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
}
