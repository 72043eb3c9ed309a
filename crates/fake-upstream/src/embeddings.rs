//! `POST /embeddings`: deterministic vectors of each model's dimension (set with
//! [`FakeUpstream::set_embedding_dimension`](crate::FakeUpstream::set_embedding_dimension),
//! else [`DEFAULT_EMBEDDING_DIMENSION`]), as floats or base64, in OpenAI's list shape.
//! A model's behaviour other than `Ok` answers as it would on chat (a 429, a 500, ...);
//! a model given a batch limit refuses a larger batch as Gemini does.

use crate::behaviour::{Behaviour, Reply, reply};
use crate::respond::{JSON, RespBody, error, full, full_with, model_request};
use crate::shared::{Shared, read};
use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// The dimension of a model's vectors unless one is set.
pub const DEFAULT_EMBEDDING_DIMENSION: usize = 8;

/// The message of Gemini's 400 for a batch over its limit (reported for its
/// OpenAI-compatible endpoint in vercel/ai#16101, getzep/graphiti#647 and others).
pub const GEMINI_BATCH_ERROR: &str = "* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch";

pub(crate) async fn embeddings(shared: Arc<Shared>, req: Request<Incoming>) -> Response<RespBody> {
    let (request, model) = match model_request(req.into_body()).await {
        Ok(read) => read,
        Err(resp) => return resp,
    };
    shared.count_call(&model);
    shared.keep_request(|| crate::Recorded {
        model: model.clone(),
        body: request.clone(),
        authorization: None,
        headers: Vec::new(),
        stream: false,
    });
    let mut b = shared.behaviour_for(&model);
    while let Behaviour::Delay { first_byte, then } = b {
        tokio::time::sleep(first_byte).await;
        b = *then;
    }
    if b != Behaviour::Ok {
        let serial = shared.serial.fetch_add(1, Ordering::Relaxed);
        return match reply(&b, &model, false, &request, serial) {
            Reply::Full { status, headers, body } => full_with(status, headers, body),
            _ => error(500, "this behaviour has no embeddings answer"),
        };
    }
    let Some(inputs) = texts(request.get("input")) else {
        return error(400, "`input` must be a string, an array of strings or token ids");
    };
    if read(&shared.embedding_batch_limits).get(&model).is_some_and(|&limit| inputs.len() > limit) {
        // Google's error shape, with the message Gemini gives past 100 inputs.
        let body = json!({"error": {"code": 400, "message": GEMINI_BATCH_ERROR, "status": "INVALID_ARGUMENT"}});
        return full(400, JSON, Bytes::from(body.to_string()));
    }
    let native = read(&shared.embedding_dims).get(&model).copied().unwrap_or(DEFAULT_EMBEDDING_DIMENSION);
    let dim = request.get("dimensions").and_then(Value::as_u64).map_or(native, |d| (d as usize).min(native));
    let base64 = request.get("encoding_format").and_then(Value::as_str) == Some("base64");
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let v = vector(text, dim);
            let embedding = if base64 { json!(encode_base64(&v)) } else { json!(v) };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    let tokens: usize = inputs.iter().map(|t| t.len() / 4 + 1).sum();
    let answer = json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    });
    full(200, JSON, Bytes::from(answer.to_string()))
}

/// The inputs as texts (a token array as its numbers), or `None` for another form.
fn texts(input: Option<&Value>) -> Option<Vec<String>> {
    let one = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Array(tokens) if tokens.iter().all(Value::is_u64) => {
            Some(tokens.iter().map(ToString::to_string).collect::<Vec<_>>().join(" "))
        }
        _ => None,
    };
    match input? {
        Value::Array(items) if items.iter().all(Value::is_u64) => one(input?).map(|t| vec![t]),
        Value::Array(items) => items.iter().map(one).collect(),
        v => one(v).map(|t| vec![t]),
    }
}

/// A body for [`FakeUpstream::set_embedding_models`](crate::FakeUpstream::set_embedding_models):
/// OpenRouter's `/embeddings/models` list of these free (zero-priced) text embedding models.
pub fn embedding_models_json(free_ids: &[&str]) -> Value {
    let entry = |id: &&str| {
        json!({
            "id": id, "name": id, "created": 1_786_636_912, "context_length": 8192,
            "architecture": {"modality": "text->embeddings", "input_modalities": ["text"],
                             "output_modalities": ["embeddings"], "tokenizer": "Other"},
            "pricing": {"prompt": "0", "completion": "0"},
            "top_provider": {"context_length": 8192, "max_completion_tokens": null, "is_moderated": false},
            "supported_parameters": [], "expiration_date": null,
        })
    };
    json!({"data": free_ids.iter().map(entry).collect::<Vec<_>>()})
}

/// A unit vector of `dim` numbers that depends only on `text` and `dim`.
pub fn vector(text: &str, dim: usize) -> Vec<f32> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let raw: Vec<f32> = (0..dim as u64)
        .map(|i| {
            let mut z = h.wrapping_add(i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            ((z >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect();
    let norm = raw.iter().map(|x| x * x).sum::<f32>().sqrt().max(f32::MIN_POSITIVE);
    raw.into_iter().map(|x| x / norm).collect()
}

/// Little-endian `f32`s in standard base64 with padding, as OpenAI sends them.
pub fn encode_base64(v: &[f32]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_are_deterministic_unit_vectors() {
        let a = vector("hello", 8);
        assert_eq!(a, vector("hello", 8));
        assert_ne!(a, vector("hellp", 8));
        assert!((a.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-5);
        // 1.0f32 is 00 00 80 3f.
        assert_eq!(encode_base64(&[1.0]), "AACAPw==");
        assert_eq!(encode_base64(&[1.0, 1.0, 1.0]), "AACAPwAAgD8AAIA/");
    }
}
