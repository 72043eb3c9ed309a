//! Reading OpenRouter's `GET /models` body into the core's `ModelInfo`, and writing a
//! model back in that schema.
//!
//! Real responses come in two shapes (`{"data":[...]}` with or without `total_count` and
//! `links`, and a bare array), carry many fields the router does not need, and use
//! `null` for "unknown". Each entry is read on its own so that one bad entry costs that
//! entry, never the catalog.

use crate::error::CatalogError;
use router_core::{ModelId, ModelInfo, Pricing, RawEntry, to_openrouter_json};
use serde::Deserialize;
use serde_json::{Map, Value};

/// Which of the two shapes a body had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyShape {
    /// `{"data":[...], ...}`.
    Wrapped,
    /// `[...]`.
    Bare,
}

/// An entry that could not be read and was left out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedEntry {
    /// Position in the list.
    pub index: usize,
    /// Its `id`, when it has a readable one.
    pub id: Option<String>,
    pub reason: String,
}

/// The models read from a body, in the order served.
#[derive(Clone, Debug, PartialEq)]
pub struct Parsed {
    pub models: Vec<ModelInfo>,
    /// How many entries were malformed and left out (`skipped_entries.len()`).
    pub skipped: usize,
    pub skipped_entries: Vec<SkippedEntry>,
    pub shape: BodyShape,
}

/// Price keys every entry carries. When one is missing or the whole `pricing` is
/// `null`, it is recorded as `null` ("unknown"), which the core's free rule treats as
/// not zero: an entry with no price information must never look free.
const REQUIRED_PRICES: [&str; 2] = ["prompt", "completion"];

/// Parses a `/models` body. Fails only when the body as a whole is not a model list;
/// a malformed entry is skipped, counted and logged with its id.
pub fn parse_models(body: &[u8]) -> Result<Parsed, CatalogError> {
    use serde_json::value::RawValue;
    #[derive(Deserialize)]
    struct Wrapped<'a> {
        #[serde(borrow, default)]
        data: Option<&'a RawValue>,
    }
    let invalid = |e: serde_json::Error| CatalogError::Body(format!("invalid json: {e}"));
    let top: &RawValue = serde_json::from_slice(body).map_err(invalid)?;
    fn list(raw: &RawValue) -> Result<Vec<&RawValue>, CatalogError> {
        serde_json::from_str(raw.get()).map_err(|e| CatalogError::Body(format!("invalid json: {e}")))
    }
    // Each entry is kept as served (its own text) and read on its own.
    let (entries, shape) = match top.get().as_bytes().first() {
        Some(b'[') => (list(top)?, BodyShape::Bare),
        Some(b'{') => match serde_json::from_str::<Wrapped<'_>>(top.get()).map_err(invalid)?.data {
            Some(data) if data.get().starts_with('[') => (list(data)?, BodyShape::Wrapped),
            Some(other) => {
                let v: Value = serde_json::from_str(other.get()).map_err(invalid)?;
                return Err(CatalogError::Body(format!("`data` is {}, not a list", kind_of(&v))));
            }
            None => return Err(CatalogError::Body("object without a `data` list".to_owned())),
        },
        _ => {
            let v: Value = serde_json::from_str(top.get()).map_err(invalid)?;
            return Err(CatalogError::Body(format!("top level is {}, not a list or object", kind_of(&v))));
        }
    };
    let mut models = Vec::with_capacity(entries.len());
    let mut skipped_entries = Vec::new();
    for (index, raw) in entries.into_iter().enumerate() {
        let entry: Value = serde_json::from_str(raw.get()).map_err(invalid)?;
        let id = entry.get("id").and_then(Value::as_str).map(str::to_owned);
        match model_from_entry(entry) {
            Ok(mut m) => {
                m.raw = Some(RawEntry::from_raw(raw));
                models.push(m);
            }
            Err(reason) => {
                tracing::warn!(index, id = id.as_deref().unwrap_or("<none>"), %reason, "skipping malformed catalog entry");
                skipped_entries.push(SkippedEntry { index, id, reason });
            }
        }
    }
    Ok(Parsed { models, skipped: skipped_entries.len(), skipped_entries, shape })
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The fields the router reads; everything else in an entry is ignored. Every field
/// accepts `null` as unknown; a present value of the wrong type makes the entry malformed.
#[derive(Deserialize)]
struct RawModel {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default, deserialize_with = "opt_i64")]
    created: Option<i64>,
    #[serde(default, deserialize_with = "opt_u64")]
    context_length: Option<u64>,
    #[serde(default)]
    architecture: Option<RawArchitecture>,
    #[serde(default)]
    pricing: Option<Map<String, Value>>,
    #[serde(default)]
    top_provider: Option<RawTopProvider>,
    #[serde(default)]
    supported_parameters: Option<Vec<String>>,
    #[serde(default)]
    expiration_date: Option<String>,
}

#[derive(Deserialize)]
struct RawArchitecture {
    #[serde(default)]
    modality: Option<String>,
    #[serde(default)]
    input_modalities: Option<Vec<String>>,
    #[serde(default)]
    output_modalities: Option<Vec<String>>,
    #[serde(default)]
    tokenizer: Option<String>,
}

#[derive(Deserialize)]
struct RawTopProvider {
    #[serde(default, deserialize_with = "opt_u64")]
    context_length: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    max_completion_tokens: Option<u64>,
}

/// A count such as a context length: a non-negative integer, also when written as an
/// integral float (`8192.0`).
fn opt_u64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    use serde::de::Error;
    match Option::<serde_json::Number>::deserialize(d)? {
        None => Ok(None),
        Some(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 1.8e19).map(|f| f as u64))
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("expected a non-negative integer, got {n}"))),
    }
}

fn opt_i64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    use serde::de::Error;
    match Option::<serde_json::Number>::deserialize(d)? {
        None => Ok(None),
        Some(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18).map(|f| f as i64))
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("expected an integer, got {n}"))),
    }
}

fn model_from_entry(entry: Value) -> Result<ModelInfo, String> {
    if !entry.is_object() {
        return Err(format!("entry is {}, not an object", kind_of(&entry)));
    }
    let raw: RawModel = serde_json::from_value(entry).map_err(|e| e.to_string())?;
    let id = raw.id.trim();
    if id.is_empty() {
        return Err("empty id".to_owned());
    }
    let arch = raw.architecture.unwrap_or(RawArchitecture {
        modality: None,
        input_modalities: None,
        output_modalities: None,
        tokenizer: None,
    });
    // Older entries carry only `modality: "text+image->text"`; the lists win when present.
    let (mod_in, mod_out) = arch.modality.as_deref().map(split_modality).unwrap_or_default();
    let top = raw.top_provider.unwrap_or(RawTopProvider { context_length: None, max_completion_tokens: None });
    let mut pricing = raw.pricing.unwrap_or_default();
    for key in REQUIRED_PRICES {
        pricing.entry(key).or_insert(Value::Null);
    }
    Ok(ModelInfo {
        id: ModelId::new(id),
        name: raw.name.unwrap_or_default(),
        created: raw.created,
        context_length: raw.context_length.or(top.context_length),
        max_completion_tokens: top.max_completion_tokens,
        input_modalities: arch.input_modalities.unwrap_or(mod_in),
        output_modalities: arch.output_modalities.unwrap_or(mod_out),
        supported_parameters: raw.supported_parameters.unwrap_or_default(),
        pricing: Pricing(pricing.into_iter().collect()),
        tokenizer: arch.tokenizer,
        expiration_date: raw.expiration_date,
        raw: None,
        provider: None,
        family: None,
        embedding: router_core::model::EmbeddingQuirks::default(),
    })
}

/// `"text+image->text"` into `(["text","image"], ["text"])`.
fn split_modality(m: &str) -> (Vec<String>, Vec<String>) {
    let list = |s: &str| s.split('+').map(str::trim).filter(|x| !x.is_empty()).map(str::to_owned).collect();
    match m.split_once("->") {
        Some((i, o)) => (list(i), list(o)),
        None => (Vec::new(), Vec::new()),
    }
}

/// A model's `/models` entry as upstream served it when the catalog kept it, else
/// built by [`router_core::to_openrouter_json`].
pub fn openrouter_entry(m: &ModelInfo) -> Value {
    m.raw.as_ref().and_then(|r| serde_json::from_str(r.get()).ok()).unwrap_or_else(|| to_openrouter_json(m))
}

#[cfg(test)]
mod tests {
    use super::*;
    use router_core::{Timestamp, is_free};
    use serde_json::json;

    /// A free text model in OpenRouter's schema, with fields the router ignores.
    const FREE_ENTRY: &str = r#"{
        "id": "acme/chat-7b:free", "canonical_slug": "acme/chat-7b-2026", "hugging_face_id": null,
        "name": "Acme: Chat 7B (free)", "created": 1786680361, "description": "a model",
        "context_length": 32768,
        "architecture": {"modality": "text+image->text", "input_modalities": ["text", "image"],
                         "output_modalities": ["text"], "tokenizer": "Other", "instruct_type": null},
        "pricing": {"prompt": "0", "completion": "0"},
        "top_provider": {"context_length": 32768, "max_completion_tokens": 4096, "is_moderated": false},
        "per_request_limits": null, "supported_parameters": ["max_tokens", "tools", "tool_choice"],
        "default_parameters": {}, "expiration_date": null, "links": {"details": "/x"},
        "reasoning": {"mandatory": false}
    }"#;

    const PAID_ENTRY: &str = r#"{"id": "acme/big", "name": "Acme: Big", "created": 1786000000,
        "context_length": 128000, "architecture": {"input_modalities": ["text"], "output_modalities": ["text"],
        "tokenizer": "Other"}, "pricing": {"prompt": "0.0000003", "completion": "0.0000012"},
        "top_provider": {"context_length": 128000, "max_completion_tokens": null}, "supported_parameters": []}"#;

    /// Parses `body` and checks the ids read, in order, and the ids (or `-` when none)
    /// of the skipped entries.
    fn check(body: &str, ids: &[&str], skipped: &[&str]) -> Parsed {
        let p = parse_models(body.as_bytes()).expect("a model list");
        let got: Vec<&str> = p.models.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(got, ids, "{body}");
        let got_skipped: Vec<&str> = p.skipped_entries.iter().map(|s| s.id.as_deref().unwrap_or("-")).collect();
        assert_eq!(got_skipped, skipped, "{body}");
        assert_eq!(p.skipped, skipped.len());
        p
    }

    #[test]
    fn both_shapes() {
        let wrapped = format!(r#"{{"data":[{FREE_ENTRY},{PAID_ENTRY}],"total_count":2,"links":{{"next":null}}}}"#);
        assert_eq!(check(&wrapped, &["acme/chat-7b:free", "acme/big"], &[]).shape, BodyShape::Wrapped);
        let plain = format!(r#"{{"data":[{PAID_ENTRY}]}}"#);
        assert_eq!(check(&plain, &["acme/big"], &[]).shape, BodyShape::Wrapped);
        let bare = format!("[{FREE_ENTRY},{PAID_ENTRY}]");
        assert_eq!(check(&bare, &["acme/chat-7b:free", "acme/big"], &[]).shape, BodyShape::Bare);
        check(r#"{"data":[]}"#, &[], &[]);
    }

    #[test]
    fn reads_the_fields_the_router_needs() {
        let p = check(&format!("[{FREE_ENTRY}]"), &["acme/chat-7b:free"], &[]);
        let m = &p.models[0];
        assert_eq!(m.name, "Acme: Chat 7B (free)");
        assert_eq!(m.created, Some(1_786_680_361));
        assert_eq!((m.context_length, m.max_completion_tokens), (Some(32768), Some(4096)));
        assert_eq!(m.input_modalities, ["text", "image"]);
        assert_eq!(m.output_modalities, ["text"]);
        assert_eq!(m.supported_parameters, ["max_tokens", "tools", "tool_choice"]);
        assert_eq!(m.tokenizer.as_deref(), Some("Other"));
        assert_eq!(m.pricing.0.get("prompt"), Some(&json!("0")));
        assert!(is_free(m, Timestamp::from_secs(1_786_680_361)));
        assert!(!is_free(&check(&format!("[{PAID_ENTRY}]"), &["acme/big"], &[]).models[0], Timestamp::default()));
    }

    #[test]
    fn nulls_are_unknown_and_unknown_fields_ignored() {
        let body = r#"[{"id": "acme/nulls:free", "name": null, "created": null, "context_length": null,
            "architecture": null, "top_provider": null, "supported_parameters": null, "expiration_date": null,
            "pricing": {"prompt": "0", "completion": "0"}, "brand_new_field": {"nested": [1, 2]}},
            {"id": "acme/partial:free", "architecture": {"modality": "text->text", "tokenizer": null},
             "top_provider": {"context_length": 8192.0}, "pricing": {"prompt": "0", "completion": "0"}}]"#;
        let p = check(body, &["acme/nulls:free", "acme/partial:free"], &[]);
        let m = &p.models[0];
        assert_eq!((m.name.as_str(), m.created, m.context_length, m.tokenizer.as_deref()), ("", None, None, None));
        assert!(m.input_modalities.is_empty() && m.supported_parameters.is_empty());
        let m = &p.models[1];
        // Modalities from the old `modality` string; the context length from top_provider.
        assert_eq!(
            (m.input_modalities.as_slice(), m.output_modalities.as_slice()),
            (&["text".to_owned()][..], &["text".to_owned()][..])
        );
        assert_eq!(m.context_length, Some(8192));
    }

    #[test]
    fn missing_prices_are_unknown_never_free() {
        let body = r#"[{"id": "acme/a:free", "pricing": null}, {"id": "acme/b:free"},
                       {"id": "acme/c:free", "pricing": {"prompt": "0"}}, {"id": "acme/d:free", "pricing": {}}]"#;
        let p = check(body, &["acme/a:free", "acme/b:free", "acme/c:free", "acme/d:free"], &[]);
        for m in &p.models {
            assert!(!is_free(m, Timestamp::default()), "{} looks free without prices", m.id);
            assert_eq!(m.pricing.0.get("completion"), Some(&Value::Null), "{}", m.id);
        }
    }

    #[test]
    fn tiny_prices_stay_exact() {
        let body = r#"[{"id": "acme/t:free", "pricing": {"prompt": "0.0000000000000000001", "completion": "0"}},
                       {"id": "acme/z:free", "pricing": {"prompt": "0.000", "completion": 0}}]"#;
        let p = check(body, &["acme/t:free", "acme/z:free"], &[]);
        assert_eq!(p.models[0].pricing.0.get("prompt"), Some(&json!("0.0000000000000000001")));
        assert!(!is_free(&p.models[0], Timestamp::default()));
        assert!(is_free(&p.models[1], Timestamp::default()));
    }

    #[test]
    fn malformed_entries_are_skipped_and_counted() {
        let body = format!(
            r#"{{"data":[{FREE_ENTRY}, "not an object", {{"name": "no id"}}, {{"id": ""}},
               {{"id": "acme/bad-ctx:free", "context_length": "long"}},
               {{"id": "acme/bad-mods", "architecture": {{"input_modalities": "text"}}}},
               {{"id": "acme/neg", "top_provider": {{"max_completion_tokens": -1}}}},
               {{"id": 42}}, {PAID_ENTRY}]}}"#
        );
        let p = check(
            &body,
            &["acme/chat-7b:free", "acme/big"],
            &["-", "-", "", "acme/bad-ctx:free", "acme/bad-mods", "acme/neg", "-"],
        );
        assert_eq!(p.skipped_entries[0].index, 1);
        assert!(p.skipped_entries[3].reason.contains("context_length") || p.skipped_entries[3].reason.contains("long"));
    }

    #[test]
    fn bodies_that_are_not_model_lists_fail() {
        for body in
            ["", "not json", "null", "42", r#"{"data": null}"#, r#"{"data": {"id": "x"}}"#, r#"{"models": []}"#, "[1,"]
        {
            assert!(matches!(parse_models(body.as_bytes()), Err(CatalogError::Body(_))), "{body}");
        }
    }

    #[test]
    fn openrouter_json_round_trips() {
        let body = format!(r#"[{FREE_ENTRY},{PAID_ENTRY},{{"id": "acme/bare"}}]"#);
        let p = check(&body, &["acme/chat-7b:free", "acme/big", "acme/bare"], &[]);
        let back: Vec<Value> = p.models.iter().map(to_openrouter_json).collect();
        assert_eq!(back[0]["architecture"]["modality"], json!("text+image->text"));
        assert_eq!(back[0]["top_provider"]["max_completion_tokens"], json!(4096));
        assert_eq!(back[1]["top_provider"]["max_completion_tokens"], Value::Null);
        assert_eq!(back[2]["architecture"]["modality"], Value::Null);
        assert_eq!(back[2]["links"]["details"], json!("/api/v1/models/acme/bare/endpoints"));
        let again = parse_models(&serde_json::to_vec(&back).expect("serialise")).expect("parse again");
        let known = |models: &[ModelInfo]| -> Vec<ModelInfo> {
            models
                .iter()
                .cloned()
                .map(|m| ModelInfo { raw: None, created: m.created.filter(|&c| c != 0), ..m })
                .collect()
        };
        assert_eq!(known(&again.models), known(&p.models));
    }

    #[test]
    fn keeps_each_entry_as_served() {
        let p = check(&format!("[{FREE_ENTRY},{PAID_ENTRY}]"), &["acme/chat-7b:free", "acme/big"], &[]);
        let served: Value = serde_json::from_str(FREE_ENTRY).expect("entry");
        assert_eq!(p.models[0].raw.as_ref().map(RawEntry::get), Some(FREE_ENTRY), "the entry's own text");
        let kept = openrouter_entry(&p.models[0]);
        assert_eq!(kept, served, "every field, unknown ones included");
        assert_eq!(kept["reasoning"], json!({"mandatory": false}));
        // The kept entry survives the cache's serde round trip.
        let text = serde_json::to_string(&p.models).expect("serialise");
        let back: Vec<ModelInfo> = serde_json::from_str(&text).expect("parse");
        assert_eq!(back, p.models);
        assert_eq!(openrouter_entry(&back[0]), served);
    }
}
