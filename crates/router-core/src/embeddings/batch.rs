//! A batch larger than an endpoint takes in one call (Gemini's OpenAI-compatible endpoint
//! refuses more than 100 inputs), cut into chunks for one model and its answers joined
//! into one: indices renumbered in input order, `usage` summed. Only the cutting and the
//! joining are here; the server sends the chunks, each one a routed request.

use super::answer::AnswerError;
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::ops::Range;

/// The size of the first chunk of a request of `inputs` inputs, when it must be cut:
/// the smallest `max_batch_inputs` among the endpoints that may answer it (`limits`), so
/// that whichever answers can take it. `None` when every endpoint takes the whole batch.
pub fn first_chunk(inputs: usize, limits: impl IntoIterator<Item = Option<u32>>) -> Option<usize> {
    let smallest = limits.into_iter().flatten().min()?;
    let smallest = usize::try_from(smallest).unwrap_or(usize::MAX).max(1);
    (smallest < inputs).then_some(smallest)
}

/// The chunks of a request of `inputs` inputs whose first chunk was `first` inputs,
/// the rest cut for the model that answered it (`limit` a call; `None`: all at once).
pub fn chunks(inputs: usize, first: usize, limit: Option<u32>) -> Vec<Range<usize>> {
    let first = first.min(inputs);
    let step = limit.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX).max(1));
    let mut out = Vec::with_capacity(inputs.saturating_sub(first).div_ceil(step.min(inputs).max(1)) + 1);
    out.push(0..first);
    let mut at = first;
    while at < inputs {
        let end = at.saturating_add(step).min(inputs);
        out.push(at..end);
        at = end;
    }
    out
}

/// An embeddings body read for cutting: its members, and the items of its `input` array.
#[derive(Debug)]
pub struct Batch<'a> {
    members: BTreeMap<String, &'a RawValue>,
    items: Vec<&'a RawValue>,
}

/// Why a body or an answer could not be cut or joined.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BatchError(String);

impl<'a> Batch<'a> {
    /// Reads `body`, whose `input` is an array of several inputs (strings or token
    /// arrays; a single string or token array is one input and never cut).
    pub fn read(body: &'a [u8]) -> Result<Self, BatchError> {
        let members: BTreeMap<String, &'a RawValue> =
            serde_json::from_slice(body).map_err(|e| BatchError(format!("not a json object: {e}")))?;
        let input = members.get("input").ok_or_else(|| BatchError("no `input`".to_owned()))?;
        let items: Vec<&'a RawValue> =
            serde_json::from_str(input.get()).map_err(|e| BatchError(format!("`input` is not an array: {e}")))?;
        Ok(Batch { members, items })
    }

    /// The inputs in the body.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether it holds no input.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The body with `input` cut to `range`, every other member as sent.
    pub fn body(&self, range: Range<usize>) -> Vec<u8> {
        let items = self.items.get(range).unwrap_or_default();
        let mut out = Vec::with_capacity(items.iter().map(|i| i.get().len() + 1).sum::<usize>() + 256);
        out.push(b'{');
        for (i, (key, value)) in self.members.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_key(&mut out, key);
            if key == "input" {
                out.push(b'[');
                for (j, item) in items.iter().enumerate() {
                    if j > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(item.get().as_bytes());
                }
                out.push(b']');
            } else {
                out.extend_from_slice(value.get().as_bytes());
            }
        }
        out.push(b'}');
        out
    }
}

fn write_key(out: &mut Vec<u8>, key: &str) {
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, key);
    out.push(b':');
}

/// A chunk's answer: its vectors, its `usage`, and its other members.
struct Answer<'a> {
    data: Vec<BTreeMap<String, &'a RawValue>>,
    usage: Option<&'a RawValue>,
    rest: BTreeMap<String, &'a RawValue>,
}

impl<'a> Answer<'a> {
    fn read(bytes: &'a [u8]) -> Result<Self, AnswerError> {
        let shape = |e: serde_json::Error| AnswerError::Shape(e.to_string());
        let mut rest: BTreeMap<String, &'a RawValue> = serde_json::from_slice(bytes).map_err(shape)?;
        let data = rest.remove("data").ok_or_else(|| AnswerError::Shape("no `data` list".to_owned()))?;
        let data = serde_json::from_str(data.get()).map_err(shape)?;
        let usage = rest.remove("usage");
        Ok(Answer { data, usage, rest })
    }
}

/// One answer of the chunks' answers (`answers`, in input order, each already checked):
/// the first answer's members (`object`, `model`, ...), every vector in input order with
/// `index` renumbered from 0, and `usage` summed member by member.
pub fn merge<B: AsRef<[u8]>>(answers: &[B]) -> Result<Vec<u8>, AnswerError> {
    let read: Vec<Answer<'_>> = answers.iter().map(|a| Answer::read(a.as_ref())).collect::<Result<_, _>>()?;
    let Some(first) = read.first() else { return Err(AnswerError::Shape("no answer to join".to_owned())) };
    let mut out = Vec::with_capacity(answers.iter().map(|a| a.as_ref().len()).sum::<usize>() + 64);
    out.push(b'{');
    for (key, value) in &first.rest {
        write_key(&mut out, key);
        out.extend_from_slice(value.get().as_bytes());
        out.push(b',');
    }
    write_key(&mut out, "data");
    out.push(b'[');
    let mut next = 0usize;
    for answer in &read {
        for item in in_order(&answer.data) {
            if next > 0 {
                out.push(b',');
            }
            write_item(&mut out, item, next);
            next += 1;
        }
    }
    out.push(b']');
    if let Some(usage) = summed_usage(&read) {
        out.push(b',');
        write_key(&mut out, "usage");
        out.extend_from_slice(&usage);
    }
    out.push(b'}');
    Ok(out)
}

/// A chunk's vectors in their `index` order (an item without one keeps its place).
fn in_order<'b, 'a>(data: &'b [BTreeMap<String, &'a RawValue>]) -> Vec<&'b BTreeMap<String, &'a RawValue>> {
    let mut items: Vec<(u64, &BTreeMap<String, &RawValue>)> = data
        .iter()
        .enumerate()
        .map(|(at, item)| {
            let index = item.get("index").and_then(|i| i.get().parse().ok());
            (index.unwrap_or(at as u64), item)
        })
        .collect();
    items.sort_by_key(|(index, _)| *index);
    items.into_iter().map(|(_, item)| item).collect()
}

/// An item with its `index` replaced by `index`.
fn write_item(out: &mut Vec<u8>, item: &BTreeMap<String, &RawValue>, index: usize) {
    out.push(b'{');
    for (key, value) in item.iter().filter(|(k, _)| *k != "index") {
        write_key(out, key);
        out.extend_from_slice(value.get().as_bytes());
        out.push(b',');
    }
    write_key(out, "index");
    out.extend_from_slice(index.to_string().as_bytes());
    out.push(b'}');
}

/// The answers' `usage` objects added up: each whole-number member summed, any other
/// member as the first answer said it; `None` when no answer had one.
fn summed_usage(read: &[Answer<'_>]) -> Option<Vec<u8>> {
    let mut total: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    let mut any = false;
    for usage in read.iter().filter_map(|a| a.usage) {
        let Ok(members) = serde_json::from_str::<BTreeMap<String, serde_json::Value>>(usage.get()) else { continue };
        any = true;
        for (key, value) in members {
            match (total.get_mut(&key), value.as_u64()) {
                (Some(sum), Some(n)) if sum.is_u64() => *sum = (sum.as_u64().unwrap_or(0).saturating_add(n)).into(),
                (Some(_), _) => {}
                (None, _) => {
                    total.insert(key, value);
                }
            }
        }
    }
    // A map of JSON values always serializes.
    any.then(|| serde_json::to_vec(&total).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn a_batch_is_cut_only_past_the_smallest_limit_of_its_endpoints() {
        assert_eq!(first_chunk(250, [Some(100), None, Some(200)]), Some(100));
        assert_eq!(first_chunk(100, [Some(100), None]), None, "at the limit it goes whole");
        assert_eq!(first_chunk(250, [None, None]), None);
        assert_eq!(first_chunk(250, []), None);
        assert_eq!(first_chunk(3, [Some(0)]), Some(1), "a limit of 0 is read as 1");
    }

    #[test]
    fn chunks_cover_every_input_once_in_order() {
        assert_eq!(chunks(250, 100, Some(100)), vec![0..100, 100..200, 200..250]);
        assert_eq!(chunks(250, 100, None), vec![0..100, 100..250], "the model that answered has no limit");
        assert_eq!(chunks(250, 100, Some(200)), vec![0..100, 100..250]);
        assert_eq!(chunks(5, 2, Some(2)), vec![0..2, 2..4, 4..5]);
        assert_eq!(chunks(3, 1, Some(0)), vec![0..1, 1..2, 2..3]);
    }

    #[test]
    fn a_chunk_keeps_every_member_but_the_inputs_cut() {
        let body = br#"{"model":"m","input":["a","b\"c",[1,2]],"dimensions":4,"encoding_format":"base64","user":"u"}"#;
        let batch = Batch::read(body).expect("readable");
        assert_eq!(batch.len(), 3);
        let cut: Value = serde_json::from_slice(&batch.body(1..3)).expect("json");
        assert_eq!(
            cut,
            json!({"model":"m","input":["b\"c",[1,2]],"dimensions":4,"encoding_format":"base64","user":"u"})
        );
        let all: Value = serde_json::from_slice(&batch.body(0..3)).expect("json");
        assert_eq!(all, serde_json::from_slice::<Value>(body).expect("json"));
        assert!(Batch::read(br#"{"input":"one"}"#).is_err(), "a single input is never cut");
        assert!(Batch::read(b"[1]").is_err());
    }

    fn answer(from: usize, n: usize, tokens: u64, reversed: bool) -> String {
        let mut data: Vec<Value> =
            (0..n).map(|i| json!({"object":"embedding","index":i,"embedding":[(from + i) as f64]})).collect();
        if reversed {
            data.reverse();
        }
        json!({"object":"list","model":"g/e","data":data,"usage":{"prompt_tokens":tokens,"total_tokens":tokens}})
            .to_string()
    }

    #[test]
    fn answers_are_joined_in_input_order_with_usage_summed() {
        let answers = [answer(0, 2, 3, false), answer(2, 3, 4, true), answer(5, 1, 5, false)];
        let joined: Value = serde_json::from_slice(&merge(&answers).expect("joined")).expect("json");
        let data = joined["data"].as_array().expect("data");
        let got: Vec<(u64, f64)> = data
            .iter()
            .map(|d| (d["index"].as_u64().expect("index"), d["embedding"][0].as_f64().expect("number")))
            .collect();
        assert_eq!(got, (0..6).map(|i| (i, i as f64)).collect::<Vec<_>>(), "one chunk came back reversed");
        assert!(data.iter().all(|d| d["object"] == "embedding"));
        assert_eq!((joined["object"].as_str(), joined["model"].as_str()), (Some("list"), Some("g/e")));
        assert_eq!(joined["usage"], json!({"prompt_tokens": 12, "total_tokens": 12}));
        let base64 = [r#"{"data":[{"embedding":"AACAPw=="}]}"#, r#"{"data":[{"embedding":"AAAAAA=="}]}"#];
        let joined: Value = serde_json::from_slice(&merge(&base64).expect("joined")).expect("json");
        assert_eq!(joined, json!({"data":[{"embedding":"AACAPw==","index":0},{"embedding":"AAAAAA==","index":1}]}));
        assert!(merge::<&[u8]>(&[]).is_err());
        assert!(merge(&[b"{}".as_slice()]).is_err(), "an answer without data");
    }
}
