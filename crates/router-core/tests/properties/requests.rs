//! Generated requests: what each needs, as the table states it, for the oracle.

use crate::catalogs::*;
use proptest::prelude::*;
use proptest::sample::select;
use router_core::{ChatRequest, ModelInfo};
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// What a request needs, as the table states it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Need {
    Input(&'static str),
    Output(&'static str),
    /// Any one of these supported parameters.
    Param(&'static [&'static str]),
}

impl Need {
    pub(crate) fn met_by(&self, m: &ModelInfo) -> bool {
        match self {
            Need::Input(x) => m.input_modalities.iter().any(|s| s == x),
            Need::Output(x) => m.output_modalities.iter().any(|s| s == x),
            Need::Param(any) => any.iter().any(|p| m.supported_parameters.iter().any(|s| s == p)),
        }
    }
}

/// A model the request names: an alias of the router, a catalog entry, or nothing known.
#[derive(Clone, Debug)]
pub(crate) enum Named {
    Alias(&'static str),
    Catalog(prop::sample::Index),
    Unknown,
}

#[derive(Clone, Debug)]
pub(crate) struct GenRequest {
    /// The body without `model` and `models`.
    pub(crate) body: Value,
    pub(crate) needs: BTreeSet<Need>,
    pub(crate) model: Option<Named>,
    pub(crate) models: Option<Vec<Named>>,
}

impl GenRequest {
    /// The body naming the given models, resolved against `catalog`.
    pub(crate) fn resolve(&self, catalog: &[Gen]) -> (ChatRequest, Vec<Option<Gen>>) {
        let mut named = Vec::new();
        let mut resolve = |n: &Named| -> String {
            match n {
                Named::Alias(a) => (*a).to_owned(),
                Named::Catalog(i) if !catalog.is_empty() => {
                    let g = &catalog[i.index(catalog.len())];
                    named.push(Some(g.clone()));
                    g.info.id.to_string()
                }
                Named::Catalog(_) | Named::Unknown => {
                    named.push(None);
                    "nobody/unknown-model:free".to_owned()
                }
            }
        };
        let mut body = self.body.clone();
        if let Some(m) = &self.model {
            body["model"] = json!(resolve(m));
        }
        if let Some(list) = &self.models {
            body["models"] = json!(list.iter().map(&mut resolve).collect::<Vec<_>>());
        }
        (ChatRequest::from_value(body).expect("generated requests are valid"), named)
    }
}

pub(crate) fn part() -> impl Strategy<Value = (Value, Option<Need>)> {
    prop_oneof![
        12 => "[a-z ]{0,80}".prop_map(|t| (json!({"type": "text", "text": t}), None)),
        2 => Just((json!({"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}), Some(Need::Input("image")))),
        1 => Just((json!({"type": "file", "file": {"filename": "a.pdf", "file_data": "data:,"}}), Some(Need::Input("file")))),
        1 => Just((json!({"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}), Some(Need::Input("audio")))),
        1 => Just((json!({"type": "video_url", "video_url": {"url": "https://example.invalid/v.mp4"}}), Some(Need::Input("video")))),
        1 => Just((json!({"type": "input_video", "video_url": {"url": "x"}}), Some(Need::Input("video")))),
        1 => Just((json!({"type": "refusal", "refusal": "no"}), None)),
    ]
}

pub(crate) fn message() -> impl Strategy<Value = (Value, Vec<Need>)> {
    let content = prop_oneof![
        3 => "\\PC{0,200}".prop_map(|s| (json!(s), Vec::new())),
        1 => prop::collection::vec(part(), 0..4).prop_map(|parts| {
            let needs = parts.iter().filter_map(|(_, n)| n.clone()).collect();
            (Value::Array(parts.into_iter().map(|(p, _)| p).collect()), needs)
        }),
    ];
    (select(vec!["system", "user", "assistant"]), content, prop::bool::weighted(0.1)).prop_map(
        |(role, (content, needs), tool_call)| {
            let mut m = json!({"role": role, "content": content});
            if tool_call {
                m["tool_calls"] =
                    json!([{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"x\":1}"}}]);
            }
            (m, needs)
        },
    )
}

pub(crate) fn named() -> impl Strategy<Value = Named> {
    prop_oneof![
        2 => select(vec!["openrouter/free", "free"]).prop_map(Named::Alias),
        3 => any::<prop::sample::Index>().prop_map(Named::Catalog),
        1 => Just(Named::Unknown),
    ]
}

pub(crate) const TOOLS: &[&str] = &["tools"];
pub(crate) const TOOL_CHOICE: &[&str] = &["tool_choice"];
pub(crate) const JSON_MODE: &[&str] = &["response_format", "structured_outputs"];
pub(crate) const STRUCTURED: &[&str] = &["structured_outputs"];
pub(crate) const REASONING: &[&str] = &["reasoning", "include_reasoning"];
pub(crate) const LOGPROBS: &[&str] = &["logprobs"];
pub(crate) const TOP_LOGPROBS: &[&str] = &["top_logprobs"];

pub(crate) fn option(v: Value, need: Option<Need>) -> (Option<Value>, Option<Need>) {
    (Some(v), need)
}

pub(crate) fn request() -> impl Strategy<Value = GenRequest> {
    let function = json!([{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]);
    let tools = prop_oneof![
        3 => Just((None, None)),
        1 => Just(option(json!([]), None)),
        2 => Just(option(function, Some(Need::Param(TOOLS)))),
    ];
    let tool_choice = prop_oneof![
        3 => Just((None, None)),
        1 => Just(option(json!("auto"), None)),
        1 => Just(option(json!("none"), None)),
        1 => Just(option(json!("required"), Some(Need::Param(TOOL_CHOICE)))),
        1 => Just(option(json!({"type": "function", "function": {"name": "weather"}}), Some(Need::Param(TOOL_CHOICE)))),
    ];
    let response_format = prop_oneof![
        3 => Just((None, None)),
        1 => Just(option(json!({"type": "text"}), None)),
        1 => Just(option(json!({"type": "json_object"}), Some(Need::Param(JSON_MODE)))),
        1 => Just(option(
            json!({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}),
            Some(Need::Param(STRUCTURED))
        )),
    ];
    let reasoning = prop_oneof![
        4 => Just((None, None)),
        1 => Just(option(json!({"effort": "high"}), Some(Need::Param(REASONING)))),
        1 => Just(option(json!({"max_tokens": 2000}), Some(Need::Param(REASONING)))),
        1 => Just(option(json!({"enabled": false}), None)),
        1 => Just(option(json!({"effort": "none"}), None)),
    ];
    let reasoning_effort = prop_oneof![
        4 => Just((None, None)),
        1 => Just(option(json!("low"), Some(Need::Param(REASONING)))),
        1 => Just(option(json!("none"), None)),
    ];
    let include_reasoning = prop_oneof![
        4 => Just((None, None)),
        1 => Just(option(json!(true), Some(Need::Param(REASONING)))),
        1 => Just(option(json!(false), None)),
    ];
    let logprobs = prop_oneof![
        4 => Just((None, None)),
        1 => Just(option(json!(true), Some(Need::Param(LOGPROBS)))),
        1 => Just(option(json!(false), None)),
    ];
    let top_logprobs = prop_oneof![
        4 => Just((None, None)),
        1 => (0u32..20).prop_map(|n| option(json!(n), Some(Need::Param(TOP_LOGPROBS)))),
    ];
    let modalities = prop_oneof![
        4 => Just((None, None)),
        1 => Just(option(json!(["text"]), None)),
        1 => Just(option(json!(["text", "image"]), Some(Need::Output("image")))),
        1 => Just(option(json!(["audio", "text"]), Some(Need::Output("audio")))),
    ];
    let tokens = prop::option::weighted(0.3, select(vec![1u64, 512, 4_000, 40_000, 300_000]));
    (
        prop::collection::vec(message(), 1..5),
        (tools, tool_choice, response_format),
        (reasoning, reasoning_effort, include_reasoning),
        (logprobs, top_logprobs, modalities),
        (tokens.clone(), tokens, any::<bool>(), prop::bool::weighted(0.2)),
        (prop::option::weighted(0.3, named()), prop::option::weighted(0.15, prop::collection::vec(named(), 0..4))),
    )
        .prop_map(
            |(messages, fields_a, fields_b, fields_c, (max_tokens, max_completion, stream, route), (model, models))| {
                let mut needs: BTreeSet<Need> = BTreeSet::from([Need::Output("text")]);
                let mut body = json!({"temperature": 0.7});
                let mut list = Vec::new();
                for (m, n) in messages {
                    list.push(m);
                    needs.extend(n);
                }
                body["messages"] = Value::Array(list);
                let (a, b, c) = fields_a;
                let (d, e, f) = fields_b;
                let (g, h, i) = fields_c;
                let names =
                    ["tools", "tool_choice", "response_format", "reasoning", "reasoning_effort", "include_reasoning"];
                for (name, (value, need)) in names.into_iter().zip([a, b, c, d, e, f]) {
                    if let Some(v) = value {
                        body[name] = v;
                    }
                    needs.extend(need);
                }
                for (name, (value, need)) in ["logprobs", "top_logprobs", "modalities"].into_iter().zip([g, h, i]) {
                    if let Some(v) = value {
                        body[name] = v;
                    }
                    needs.extend(need);
                }
                if let Some(n) = max_tokens {
                    body["max_tokens"] = json!(n);
                }
                if let Some(n) = max_completion {
                    body["max_completion_tokens"] = json!(n);
                }
                if stream {
                    body["stream"] = json!(true);
                }
                if route {
                    body["route"] = json!("fallback");
                }
                GenRequest { body, needs, model, models }
            },
        )
}
