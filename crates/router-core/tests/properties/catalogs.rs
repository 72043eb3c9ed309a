//! Generated catalogs: each entry with the free verdict and the capabilities it was
//! generated with, for the oracle.

use crate::now;
use proptest::prelude::*;
use proptest::sample::select;
use router_core::{CatalogSnapshot, CatalogSource, ModelInfo};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A generated catalog entry and what the oracle knows about it.
#[derive(Clone, Debug)]
pub(crate) struct Gen {
    pub(crate) info: ModelInfo,
    /// Whether the free rule must accept it, from how it was generated.
    pub(crate) free: bool,
}

/// A price as served, and whether it is exactly zero.
pub(crate) fn price() -> impl Strategy<Value = (Value, bool)> {
    prop_oneof![
        6 => Just((json!("0"), true)),
        1 => (1usize..12).prop_map(|z| (json!(format!("0.{}", "0".repeat(z))), true)),
        1 => Just((json!(0), true)),
        1 => Just((json!(0.0), true)),
        1 => Just((json!("-0"), true)),
        1 => Just((json!("0e-7"), true)),
        // Tiny but not zero: a float conversion or a rounding would call these free.
        2 => (1usize..30, 1u32..10).prop_map(|(z, d)| (json!(format!("0.{}{d}", "0".repeat(z))), false)),
        1 => Just((json!("0.0000000001"), false)),
        1 => Just((json!("1e-12"), false)),
        1 => Just((json!("0.0000025"), false)),
        1 => Just((json!(0.0001), false)),
        1 => Just((json!("-1"), false)),
        // Unreadable: when unsure, a model is not free.
        1 => Just((json!(""), false)),
        1 => Just((json!("free"), false)),
        1 => Just((json!("0.0.0"), false)),
        1 => Just((Value::Null, false)),
        1 => Just((json!(true), false)),
    ]
}

/// A structured price (`overrides`-like): zero when every price inside is.
pub(crate) fn structured_price() -> impl Strategy<Value = (Value, bool)> {
    prop::collection::vec((price(), price()), 0..3).prop_map(|tiers| {
        let zero = tiers.iter().all(|((_, a), (_, b))| *a && *b);
        let list: Vec<Value> = tiers
            .into_iter()
            .map(|((p, _), (c, _))| json!({"min_prompt_tokens": 128_000, "prompt": p, "completion": c}))
            .collect();
        (Value::Array(list), zero)
    })
}

pub(crate) static PRICE_KEYS: [&str; 7] =
    ["prompt", "completion", "request", "image", "web_search", "input_cache_read", "internal_reasoning"];

/// A pricing map and whether it makes the model free: at least one price, all zero.
pub(crate) fn pricing() -> impl Strategy<Value = (BTreeMap<String, Value>, bool)> {
    let any_map = prop::collection::vec(
        prop_oneof![
            6 => (select(&PRICE_KEYS[..]), price()),
            1 => (Just("overrides"), structured_price()),
        ],
        0..6,
    )
    .prop_map(|entries| {
        let mut map: BTreeMap<String, (Value, bool)> = BTreeMap::new();
        for (k, v) in entries {
            map.insert(k.to_owned(), v);
        }
        // An entry listing no price at all is unknown, and unknown is not free.
        let zero = !map.is_empty() && map.values().all(|(_, z)| *z);
        (map.into_iter().map(|(k, (v, _))| (k, v)).collect(), zero)
    });
    prop_oneof![
        6 => Just((BTreeMap::from([("prompt".to_owned(), json!("0")), ("completion".to_owned(), json!("0"))]), true)),
        4 => any_map,
    ]
}

/// An expiration date and whether the model is still free at [`now`] because of it.
pub(crate) fn expiration() -> impl Strategy<Value = (Option<String>, bool)> {
    prop_oneof![
        24 => Just((None, true)),
        1 => Just((Some("2026-08-18".to_owned()), false)),
        1 => Just((Some("2026-08-19".to_owned()), true)), // free until the end of its day
        1 => Just((Some("2026-08-20".to_owned()), true)),
        1 => Just((Some("2027-01-01T00:00:00Z".to_owned()), true)),
        1 => Just((Some("soon".to_owned()), false)),
        1 => Just((Some(String::new()), false)),
        2 => (2024u32..2029, 1u32..=12, 1u32..=28).prop_map(|(y, m, d)| {
            let date = format!("{y:04}-{m:02}-{d:02}");
            let free = date.as_str() >= "2026-08-19";
            (Some(date), free)
        }),
    ]
}

pub(crate) static VENDORS: [&str; 6] = ["meta-llama", "google", "qwen", "mistralai", "openrouter", "x-ai"];
pub(crate) static SUFFIXES: [&str; 8] = [":free", ":free", ":free", ":free", ":free", "", ":beta", ":FREE"];
pub(crate) static INPUTS: [&str; 4] = ["image", "file", "audio", "video"];
pub(crate) static PARAMS: [&str; 10] = [
    "tools",
    "tool_choice",
    "structured_outputs",
    "response_format",
    "reasoning",
    "include_reasoning",
    "logprobs",
    "top_logprobs",
    "max_tokens",
    "temperature",
];

/// Each item with probability `p`, in order.
pub(crate) fn subset(items: &'static [&'static str], p: f64) -> impl Strategy<Value = Vec<&'static str>> {
    prop::collection::vec(prop::bool::weighted(p), items.len())
        .prop_map(move |keep| items.iter().zip(keep).filter_map(|(i, k)| k.then_some(*i)).collect())
}

pub(crate) fn context() -> impl Strategy<Value = Option<u64>> {
    prop_oneof![
        2 => Just(None),
        4 => select(vec![1_000u64, 4_096, 8_192, 32_768, 131_072, 1_048_576]).prop_map(Some),
        1 => (1u64..2_000_000).prop_map(Some),
    ]
}

pub(crate) fn model(index: usize) -> impl Strategy<Value = Gen> {
    (
        (select(&VENDORS[..]), select(&SUFFIXES[..]), prop_oneof![9 => Just(None), 1 => Just(Some("Router"))]),
        pricing(),
        expiration(),
        (context(), prop::option::of(select(vec![256u64, 4_096, 16_384, 65_536]))),
        (
            prop::bool::weighted(0.95),
            subset(&INPUTS, 0.4),
            prop::bool::weighted(0.95),
            prop::bool::weighted(0.15),
            prop::bool::weighted(0.1),
        ),
        subset(&PARAMS, 0.75),
    )
        .prop_map(
            move |((vendor, suffix, tokenizer), (prices, zero), (expiry, unexpired), (ctx, max_out), modal, params)| {
                let (text_in, inputs, text_out, image_out, audio_out) = modal;
                let id = format!("{vendor}/model-{index}{suffix}");
                let mut info = ModelInfo::new(&id);
                info.name = format!("Model {index}");
                info.context_length = ctx;
                info.max_completion_tokens = max_out;
                info.input_modalities = text_in.then_some("text").into_iter().chain(inputs).map(String::from).collect();
                info.output_modalities = [(text_out, "text"), (image_out, "image"), (audio_out, "audio")]
                    .into_iter()
                    .filter(|(yes, _)| *yes)
                    .map(|(_, m)| m.to_owned())
                    .collect();
                info.supported_parameters = params.into_iter().map(String::from).collect();
                info.pricing.0 = prices;
                info.tokenizer = tokenizer.map(String::from);
                info.expiration_date = expiry;
                let free = id.ends_with(":free") && zero && tokenizer.is_none() && vendor != "openrouter" && unexpired;
                Gen { info, free }
            },
        )
}

/// A catalog of up to `max` models with distinct ids.
pub(crate) fn catalog(max: usize) -> impl Strategy<Value = Vec<Gen>> {
    (0..=max).prop_flat_map(|n| (0..n).map(model).collect::<Vec<_>>())
}

pub(crate) fn snapshot_of(models: &[Gen]) -> Arc<CatalogSnapshot> {
    let infos = models.iter().map(|g| g.info.clone()).collect();
    Arc::new(CatalogSnapshot::new(infos, CatalogSource::Memory, now()))
}
