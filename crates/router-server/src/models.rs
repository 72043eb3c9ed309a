//! `GET /models`: the free models in OpenRouter's `/models` shape (each entry passed on
//! as upstream served it), a complete entry for `openrouter/free` itself, the envelope's
//! `total_count` and `links`, and OpenRouter's query filters.

use router_core::to_openrouter_json;
use router_core::{CatalogSnapshot, ModelInfo, RawEntry, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// The id clients send to be routed among the free models.
pub use router_core::ROUTER_MODEL_ID;

/// When `openrouter/free` appeared in OpenRouter's catalog (its own `created`), so that
/// the router's entry is dated like a real one.
pub const ROUTER_MODEL_CREATED: i64 = 1_769_917_427;

/// What the `openrouter/free` entry says about itself.
const ROUTER_DESCRIPTION: &str =
    "Routes each request to a free model that supports what it needs; the response's `model` names it.";

/// Query filters, each a comma-separated list whose items must all be supported.
#[derive(Debug, Default, Deserialize)]
pub struct ModelsQuery {
    pub supported_parameters: Option<String>,
    pub input_modalities: Option<String>,
    pub output_modalities: Option<String>,
}

fn items(list: Option<&str>) -> Vec<&str> {
    list.map(|l| l.split(',').map(str::trim).filter(|s| !s.is_empty() && *s != "all").collect()).unwrap_or_default()
}

fn has_all(have: &[String], want: &[&str]) -> bool {
    want.iter().all(|w| have.iter().any(|h| h == w))
}

/// The `openrouter/free` model as the router sees it: the union of the free models'
/// modalities and parameters and the largest context among them.
fn router_model(free: &[&ModelInfo]) -> ModelInfo {
    let union = |f: fn(&ModelInfo) -> &Vec<String>| -> Vec<String> {
        free.iter().flat_map(|m| f(m).iter().cloned()).collect::<BTreeSet<_>>().into_iter().collect()
    };
    let mut m = ModelInfo::new(ROUTER_MODEL_ID);
    m.name = "Free Models Router".into();
    m.created = Some(ROUTER_MODEL_CREATED);
    m.context_length = free.iter().filter_map(|m| m.context_length).max();
    m.max_completion_tokens = free.iter().filter_map(|m| m.max_completion_tokens).max();
    m.input_modalities = union(|m| &m.input_modalities);
    m.output_modalities = union(|m| &m.output_modalities);
    m.supported_parameters = union(|m| &m.supported_parameters);
    m.tokenizer = Some("Router".into());
    for key in ["prompt", "completion", "request", "image"] {
        m.pricing.0.insert(key.into(), json!("0"));
    }
    m
}

/// The `openrouter/free` entry, complete and typed like a real one.
fn router_entry(m: &ModelInfo) -> Value {
    let mut entry = to_openrouter_json(m);
    entry["description"] = json!(ROUTER_DESCRIPTION);
    entry["hugging_face_id"] = json!("");
    entry
}

/// One entry of the list: upstream's own text when the catalog kept it, else built.
#[derive(Debug)]
pub enum Entry {
    Served(RawEntry),
    Built(Value),
}

impl Serialize for Entry {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Entry::Served(raw) => raw.serialize(s),
            Entry::Built(v) => v.serialize(s),
        }
    }
}

fn entry(m: &ModelInfo) -> Entry {
    m.raw.clone().map_or_else(|| Entry::Built(to_openrouter_json(m)), Entry::Served)
}

/// `links` of the envelope: one page holds every model.
#[derive(Debug, Serialize)]
pub struct Links {
    pub next: Option<String>,
}

/// The `{"data":[...],"total_count":N,"links":{"next":null}}` body.
#[derive(Debug, Serialize)]
pub struct ModelList {
    pub data: Vec<Entry>,
    pub total_count: usize,
    pub links: Links,
}

/// The body: `openrouter/free` first, then the free models in id order.
pub fn list(snapshot: &CatalogSnapshot, now: Timestamp, q: &ModelsQuery) -> ModelList {
    let free: Vec<&ModelInfo> = snapshot.free_models(now).collect();
    let router = router_model(&free);
    let (params, inputs, outputs) = (
        items(q.supported_parameters.as_deref()),
        items(q.input_modalities.as_deref()),
        items(q.output_modalities.as_deref()),
    );
    let keep = |m: &ModelInfo| {
        has_all(&m.supported_parameters, &params)
            && has_all(&m.input_modalities, &inputs)
            && has_all(&m.output_modalities, &outputs)
    };
    let mut data = Vec::with_capacity(free.len() + 1);
    if !free.is_empty() && keep(&router) {
        data.push(Entry::Built(router_entry(&router)));
    }
    data.extend(free.into_iter().filter(|m| keep(m)).map(entry));
    ModelList { total_count: data.len(), data, links: Links { next: None } }
}

#[cfg(test)]
mod tests {
    use super::*;
    use router_core::CatalogSource;

    fn model(id: &str, inputs: &[&str], params: &[&str], price: &str) -> ModelInfo {
        let mut m = ModelInfo::new(id);
        m.context_length = Some(1000);
        m.input_modalities = inputs.iter().map(|s| (*s).to_owned()).collect();
        m.output_modalities = vec!["text".into()];
        m.supported_parameters = params.iter().map(|s| (*s).to_owned()).collect();
        m.pricing.0.insert("prompt".into(), json!(price));
        m.pricing.0.insert("completion".into(), json!(price));
        m
    }

    fn check(q: ModelsQuery, expected: &[&str]) {
        let snap = CatalogSnapshot::new(
            vec![
                model("a/text:free", &["text"], &["max_tokens"], "0"),
                model("b/vision:free", &["text", "image"], &["tools", "tool_choice"], "0"),
                model("c/paid", &["text", "image"], &["tools"], "0.001"),
            ],
            CatalogSource::Memory,
            Timestamp::from_secs(1_800_000_000),
        );
        let body = serde_json::to_value(list(&snap, Timestamp::from_secs(1_800_000_000), &q)).expect("json");
        assert_eq!(body["total_count"], body["data"].as_array().map_or(0, Vec::len));
        assert_eq!(body["links"], json!({"next": null}));
        let ids: Vec<&str> = body["data"].as_array().expect("data").iter().filter_map(|m| m["id"].as_str()).collect();
        assert_eq!(ids, expected, "{q:?}");
    }

    #[test]
    fn lists_free_models_and_filters() {
        check(ModelsQuery::default(), &["openrouter/free", "a/text:free", "b/vision:free"]);
        let tools = |s: &str| ModelsQuery { supported_parameters: Some(s.into()), ..ModelsQuery::default() };
        check(tools("tools"), &["openrouter/free", "b/vision:free"]);
        check(tools("tools,tool_choice"), &["openrouter/free", "b/vision:free"]);
        check(tools("tools,max_tokens"), &["openrouter/free"]);
        check(tools("logprobs"), &[]);
        let image = ModelsQuery { input_modalities: Some("image".into()), ..ModelsQuery::default() };
        check(image, &["openrouter/free", "b/vision:free"]);
        let all = ModelsQuery { input_modalities: Some("all".into()), ..ModelsQuery::default() };
        check(all, &["openrouter/free", "a/text:free", "b/vision:free"]);
    }

    #[test]
    fn entries_pass_through_as_served_and_the_router_entry_is_complete() {
        let served = r#"{"id":"a/text:free","canonical_slug":"a/text-2026","name":"A","created":1786680361,"context_length":1000,"architecture":{"modality":"text->text","input_modalities":["text"],"output_modalities":["text"],"tokenizer":"Other","instruct_type":null},"pricing":{"prompt":"0","completion":"0"},"top_provider":{"context_length":1000,"max_completion_tokens":500,"is_moderated":false},"per_request_limits":null,"supported_parameters":["tools"],"default_parameters":{},"supported_voices":null,"links":{"details":"/x"},"brand_new":{"kept":true}}"#;
        let mut m = model("a/text:free", &["text"], &["tools"], "0");
        m.max_completion_tokens = Some(500);
        let raw: Box<serde_json::value::RawValue> = serde_json::from_str(served).expect("json");
        m.raw = Some(RawEntry::from_raw(&raw));
        let now = Timestamp::from_secs(1_800_000_000);
        let snap = CatalogSnapshot::new(vec![m], CatalogSource::Memory, now);
        let text = serde_json::to_string(&list(&snap, now, &ModelsQuery::default())).expect("json");
        assert!(text.contains(served), "the served entry is passed on byte for byte: {text}");
        let body: Value = serde_json::from_str(&text).expect("json");
        let router = &body["data"][0];
        assert_eq!(router["id"], "openrouter/free");
        assert_eq!(router["created"], ROUTER_MODEL_CREATED);
        assert_eq!(router["canonical_slug"], "openrouter/free");
        assert_eq!(router["links"]["details"], "/api/v1/models/openrouter/free/endpoints");
        assert_eq!(
            router["top_provider"],
            json!({"context_length": 1000, "max_completion_tokens": 500, "is_moderated": false})
        );
        assert_eq!(router["architecture"]["tokenizer"], "Router");
        for member in ["per_request_limits", "default_parameters", "supported_voices"] {
            assert!(router.get(member).is_some(), "{member} missing");
        }
        assert!(router["pricing"].as_object().is_some_and(|p| p.values().all(|v| v == "0")));
    }
}
