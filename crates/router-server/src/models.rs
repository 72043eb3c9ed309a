//! `GET /models`: the free models in OpenRouter's `/models` shape, an entry for
//! `openrouter/free` itself, and OpenRouter's query filters.

use catalog_openrouter::to_openrouter_json;
use router_core::{CatalogSnapshot, ModelInfo, Timestamp};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// The id clients send to be routed among the free models.
pub const ROUTER_MODEL_ID: &str = "openrouter/free";

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

/// The `openrouter/free` entry: what routing can reach, as the union of the free
/// models' modalities and parameters and the largest context among them.
fn router_entry(free: &[&ModelInfo]) -> ModelInfo {
    let union = |f: fn(&ModelInfo) -> &Vec<String>| -> Vec<String> {
        free.iter().flat_map(|m| f(m).iter().cloned()).collect::<BTreeSet<_>>().into_iter().collect()
    };
    let mut m = ModelInfo::new(ROUTER_MODEL_ID);
    m.name = "Free Models Router".into();
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

/// The `{"data":[...]}` body: `openrouter/free` first, then the free models in id order.
pub fn list(snapshot: &CatalogSnapshot, now: Timestamp, q: &ModelsQuery) -> Value {
    let free: Vec<&ModelInfo> = snapshot.free_models(now).collect();
    let router = router_entry(&free);
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
        let mut entry = to_openrouter_json(&router);
        entry["description"] =
            json!("Routes each request to a free model that supports what it needs; the response's `model` names it.");
        data.push(entry);
    }
    data.extend(free.into_iter().filter(|m| keep(m)).map(to_openrouter_json));
    json!({ "data": data })
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
        let body = list(&snap, Timestamp::from_secs(1_800_000_000), &q);
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
}
