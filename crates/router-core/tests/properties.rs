//! Property tests over arbitrary catalogs and requests: the free rule against an
//! independent oracle, the pick is always a candidate, a non-free or unfit model is never
//! forwarded whatever upstream does, the pick depends only on the seed and the candidate
//! set, and picks are uniform (chi-square).
//!
//! Every generated catalog entry carries the verdict of the free rule and the
//! capabilities it was generated with, so that the oracle here does not reuse the core's
//! own code to decide what is free or what a request needs.

use bytes::Bytes;
use futures_executor::block_on;
use futures_util::StreamExt;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, RngSeed};
use router_core::filter::{candidates, check_entry, filter};
use router_core::select::pick_with_seed;
use router_core::time::parse_date;
use router_core::{
    Body, ByteStream, CatalogSnapshot, CatalogSource, ChatRequest, ChatTransport, Clock, ErrorKind, FixedCatalog,
    HealthPolicy, ModelId, ModelInfo, Ports, QuotaPolicy, RouteError, Router, RouterConfig, Timestamp, TransportError,
    UpstreamResponse, is_free,
};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CASES: u32 = 1_000;

fn config() -> Config {
    Config { cases: CASES, failure_persistence: None, ..Config::default() }
}

/// 2026-08-19T12:00:00Z, the generated catalogs' "now".
fn now() -> Timestamp {
    parse_date("2026-08-19").expect("date").saturating_add(Duration::from_secs(12 * 3600))
}

// ---------------------------------------------------------------------------------------
// Catalogs
// ---------------------------------------------------------------------------------------

/// A generated catalog entry and what the oracle knows about it.
#[derive(Clone, Debug)]
struct Gen {
    info: ModelInfo,
    /// Whether the free rule must accept it, from how it was generated.
    free: bool,
}

/// A price as served, and whether it is exactly zero.
fn price() -> impl Strategy<Value = (Value, bool)> {
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
fn structured_price() -> impl Strategy<Value = (Value, bool)> {
    prop::collection::vec((price(), price()), 0..3).prop_map(|tiers| {
        let zero = tiers.iter().all(|((_, a), (_, b))| *a && *b);
        let list: Vec<Value> = tiers
            .into_iter()
            .map(|((p, _), (c, _))| json!({"min_prompt_tokens": 128_000, "prompt": p, "completion": c}))
            .collect();
        (Value::Array(list), zero)
    })
}

static PRICE_KEYS: [&str; 7] =
    ["prompt", "completion", "request", "image", "web_search", "input_cache_read", "internal_reasoning"];

/// A pricing map and whether it makes the model free: at least one price, all zero.
fn pricing() -> impl Strategy<Value = (BTreeMap<String, Value>, bool)> {
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
fn expiration() -> impl Strategy<Value = (Option<String>, bool)> {
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

static VENDORS: [&str; 6] = ["meta-llama", "google", "qwen", "mistralai", "openrouter", "x-ai"];
static SUFFIXES: [&str; 8] = [":free", ":free", ":free", ":free", ":free", "", ":beta", ":FREE"];
static INPUTS: [&str; 4] = ["image", "file", "audio", "video"];
static PARAMS: [&str; 10] = [
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
fn subset(items: &'static [&'static str], p: f64) -> impl Strategy<Value = Vec<&'static str>> {
    prop::collection::vec(prop::bool::weighted(p), items.len())
        .prop_map(move |keep| items.iter().zip(keep).filter_map(|(i, k)| k.then_some(*i)).collect())
}

fn context() -> impl Strategy<Value = Option<u64>> {
    prop_oneof![
        2 => Just(None),
        4 => select(vec![1_000u64, 4_096, 8_192, 32_768, 131_072, 1_048_576]).prop_map(Some),
        1 => (1u64..2_000_000).prop_map(Some),
    ]
}

fn model(index: usize) -> impl Strategy<Value = Gen> {
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
fn catalog(max: usize) -> impl Strategy<Value = Vec<Gen>> {
    (0..=max).prop_flat_map(|n| (0..n).map(model).collect::<Vec<_>>())
}

fn snapshot_of(models: &[Gen]) -> Arc<CatalogSnapshot> {
    let infos = models.iter().map(|g| g.info.clone()).collect();
    Arc::new(CatalogSnapshot::new(infos, CatalogSource::Memory, now()))
}

// ---------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------

/// What a request needs, as the issue's table states it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Need {
    Input(&'static str),
    Output(&'static str),
    /// Any one of these supported parameters.
    Param(&'static [&'static str]),
}

impl Need {
    fn met_by(&self, m: &ModelInfo) -> bool {
        match self {
            Need::Input(x) => m.input_modalities.iter().any(|s| s == x),
            Need::Output(x) => m.output_modalities.iter().any(|s| s == x),
            Need::Param(any) => any.iter().any(|p| m.supported_parameters.iter().any(|s| s == p)),
        }
    }
}

/// A model the request names: an alias of the router, a catalog entry, or nothing known.
#[derive(Clone, Debug)]
enum Named {
    Alias(&'static str),
    Catalog(prop::sample::Index),
    Unknown,
}

#[derive(Clone, Debug)]
struct GenRequest {
    /// The body without `model` and `models`.
    body: Value,
    needs: BTreeSet<Need>,
    model: Option<Named>,
    models: Option<Vec<Named>>,
}

impl GenRequest {
    /// The body naming the given models, resolved against `catalog`.
    fn resolve(&self, catalog: &[Gen]) -> (ChatRequest, Vec<Option<Gen>>) {
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

fn part() -> impl Strategy<Value = (Value, Option<Need>)> {
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

fn message() -> impl Strategy<Value = (Value, Vec<Need>)> {
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

fn named() -> impl Strategy<Value = Named> {
    prop_oneof![
        2 => select(vec!["openrouter/free", "free"]).prop_map(Named::Alias),
        3 => any::<prop::sample::Index>().prop_map(Named::Catalog),
        1 => Just(Named::Unknown),
    ]
}

const TOOLS: &[&str] = &["tools"];
const TOOL_CHOICE: &[&str] = &["tool_choice"];
const JSON_MODE: &[&str] = &["response_format", "structured_outputs"];
const STRUCTURED: &[&str] = &["structured_outputs"];
const REASONING: &[&str] = &["reasoning", "include_reasoning"];
const LOGPROBS: &[&str] = &["logprobs"];
const TOP_LOGPROBS: &[&str] = &["top_logprobs"];

fn option(v: Value, need: Option<Need>) -> (Option<Value>, Option<Need>) {
    (Some(v), need)
}

fn request() -> impl Strategy<Value = GenRequest> {
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

// ---------------------------------------------------------------------------------------
// Ports: a recording transport with a fault script, a settable clock, a fixed catalog
// ---------------------------------------------------------------------------------------

/// What upstream does on one call.
#[derive(Clone, Debug)]
enum Fault {
    Answer,
    /// A stream whose first event is an error, or a 200 whose whole body is one.
    ErrorFirst(u16),
    /// A stream that fails after its first content chunk.
    FailMidStream,
    Fail(ErrorKind, Option<u16>),
}

static KINDS: [ErrorKind; 11] = [
    ErrorKind::RateLimitedModel,
    ErrorKind::RateLimitedAccount,
    ErrorKind::DailyCapReached,
    ErrorKind::ModelUnavailable,
    ErrorKind::ServerError,
    ErrorKind::Timeout,
    ErrorKind::Connection,
    ErrorKind::ContextTooLong,
    ErrorKind::BadRequest,
    ErrorKind::Auth,
    ErrorKind::Protocol,
];

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        3 => Just(Fault::Answer),
        1 => select(vec![429u16, 404, 500, 400]).prop_map(Fault::ErrorFirst),
        1 => Just(Fault::FailMidStream),
        5 => (select(&KINDS[..]), prop::option::of(select(vec![400u16, 401, 404, 429, 500, 502, 503])))
            .prop_map(|(k, s)| Fault::Fail(k, s)),
    ]
}

#[derive(Clone, Debug)]
struct Call {
    model: String,
    body: Value,
    stream: bool,
}

/// Plays a fault script (then answers) and records every call it gets.
#[derive(Debug, Default)]
struct Recorder {
    script: Mutex<VecDeque<Fault>>,
    calls: Mutex<Vec<Call>>,
}

impl Recorder {
    fn new(script: Vec<Fault>) -> Arc<Self> {
        Arc::new(Recorder { script: Mutex::new(script.into()), calls: Mutex::default() })
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("calls").clone()
    }
}

fn sse(items: Vec<Result<String, TransportError>>) -> Result<UpstreamResponse, TransportError> {
    let items: Vec<Result<Bytes, TransportError>> = items.into_iter().map(|i| i.map(Bytes::from)).collect();
    let body: ByteStream = Box::pin(futures_util::stream::iter(items));
    Ok(UpstreamResponse { status: 200, headers: Vec::new(), body: Body::Stream(body), elapsed: Duration::ZERO })
}

#[async_trait::async_trait]
impl ChatTransport for Recorder {
    async fn send(&self, model: &ModelId, body: Bytes, stream: bool) -> Result<UpstreamResponse, TransportError> {
        let parsed: Value = serde_json::from_slice(&body).expect("forwarded bodies are json");
        self.calls.lock().expect("calls").push(Call { model: model.to_string(), body: parsed, stream });
        let fault = self.script.lock().expect("script").pop_front().unwrap_or(Fault::Answer);
        let chunk = |text: &str| {
            format!("data: {}\n\n", json!({"model": "upstream/other-name", "choices": [{"delta": {"content": text}}]}))
        };
        match fault {
            Fault::Answer if stream => sse(vec![Ok(chunk("hel")), Ok(chunk("lo")), Ok("data: [DONE]\n\n".into())]),
            Fault::Answer => Ok(UpstreamResponse {
                status: 200,
                headers: Vec::new(),
                body: Body::Full(Bytes::from(
                    json!({"model": "upstream/other-name", "choices": [{"message": {"content": "hello"}}]}).to_string(),
                )),
                elapsed: Duration::ZERO,
            }),
            Fault::ErrorFirst(code) => {
                let event = json!({"error": {"code": code, "message": "provider error"}});
                if stream {
                    sse(vec![Ok(": OPENROUTER PROCESSING\n\n".into()), Ok(format!("data: {event}\n\n"))])
                } else {
                    Ok(UpstreamResponse {
                        status: 200,
                        headers: Vec::new(),
                        body: Body::Full(Bytes::from(event.to_string())),
                        elapsed: Duration::ZERO,
                    })
                }
            }
            Fault::FailMidStream if stream => {
                sse(vec![Ok(chunk("hel")), Err(TransportError::new(ErrorKind::Connection, "reset"))])
            }
            Fault::FailMidStream => Err(TransportError::new(ErrorKind::Connection, "reset")),
            Fault::Fail(kind, status) => {
                let mut e = TransportError::new(kind, "scripted failure").with_retry_after(Duration::from_secs(30));
                e.status = status;
                Err(e)
            }
        }
    }
}

#[derive(Debug, Clone)]
struct Time(Arc<AtomicU64>);

impl Clock for Time {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.load(Ordering::SeqCst))
    }
}

fn router(snap: Arc<CatalogSnapshot>, transport: Arc<Recorder>, config: RouterConfig) -> (Router, Time) {
    let time = Time(Arc::new(AtomicU64::new(now().as_millis())));
    let ports = Ports { catalog: Arc::new(FixedCatalog(snap)), transport, clock: Arc::new(time.clone()), store: None };
    (Router::new(ports, config).expect("no store to fail"), time)
}

fn router_config(max_attempts: u32, per_minute: Option<u32>) -> RouterConfig {
    RouterConfig {
        max_attempts,
        deadline: Duration::from_secs(120),
        health: HealthPolicy::default(),
        quota: QuotaPolicy { per_minute, per_day: None },
        ..RouterConfig::default()
    }
}

/// The candidates by the oracle: free by generation, meeting every generated need, and
/// within the token limits (those come from the core's estimate, which is not a rule).
fn oracle_candidates(
    models: &[Gen],
    snap: &CatalogSnapshot,
    req: &ChatRequest,
    needs: &BTreeSet<Need>,
) -> BTreeSet<String> {
    models
        .iter()
        .filter(|g| g.free && needs.iter().all(|n| n.met_by(&g.info)))
        .filter(|g| {
            let i = snap.index_of(g.info.id.as_str()).expect("listed");
            check_entry(snap, i, req.requirements(), now())
                .is_none_or(|r| r.context_needed.is_none() && r.completion_needed.is_none())
        })
        .map(|g| g.info.id.to_string())
        .collect()
}

fn candidate_ids(snap: &CatalogSnapshot, req: &ChatRequest, at: Timestamp) -> Vec<String> {
    filter(snap, req.requirements(), at).candidates.iter().map(|&i| snap.entries()[i].info.id.to_string()).collect()
}

// ---------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// The free rule agrees with the oracle on every generated entry, and filtering keeps
    /// exactly the free models that meet the request's needs.
    #[test]
    fn free_rule_and_filter_match_the_oracle(models in catalog(30), req in request()) {
        let snap = snapshot_of(&models);
        for g in &models {
            prop_assert_eq!(is_free(&g.info, now()), g.free, "{:?}", g.info);
            let entry = snap.get(g.info.id.as_str()).expect("listed");
            prop_assert_eq!(entry.is_free(now()), g.free);
        }
        let (chat, _) = req.resolve(&models);
        let got: BTreeSet<String> = candidate_ids(&snap, &chat, now()).into_iter().collect();
        prop_assert_eq!(got, oracle_candidates(&models, &snap, &chat, &req.needs));
        // The router's fast path agrees with the full filter, at every instant.
        for at in [now(), now().saturating_add(Duration::from_secs(86_400 * 30))] {
            let full = filter(&snap, chat.requirements(), at);
            prop_assert_eq!(candidates(&snap, chat.requirements(), at), full.candidates);
            prop_assert_eq!(full.rejected.len() + candidates(&snap, chat.requirements(), at).len(), snap.len());
        }
    }

    /// The pick is always a candidate; it is what `select` draws over the candidates in id
    /// order; and the first upstream call goes to it.
    #[test]
    fn the_pick_is_always_a_candidate(models in catalog(30), req in request(), seed in any::<u64>()) {
        let snap = snapshot_of(&models);
        let mut body = req.body.clone();
        body["model"] = json!("openrouter/free");
        let chat = ChatRequest::from_value(body).expect("valid");
        let candidates = candidate_ids(&snap, &chat, now());
        let transport = Recorder::new(Vec::new());
        let (r, _) = router(snap.clone(), transport.clone(), router_config(1, None));
        match r.explain(&chat, seed) {
            Ok(why) if !candidates.is_empty() => {
                let pick = why.pick.expect("a pick when there are candidates").to_string();
                prop_assert!(candidates.contains(&pick), "{} not in {:?}", pick, candidates);
                let listed: Vec<String> = why.candidates.iter().map(ToString::to_string).collect();
                prop_assert_eq!(&listed, &candidates);
                prop_assert_eq!(Some(&pick), pick_with_seed(&candidates, seed));
                let routed = block_on(r.route(&chat, seed)).expect("the transport answers");
                prop_assert_eq!(routed.report.model.map(|m| m.to_string()), Some(pick.clone()));
                prop_assert_eq!(routed.report.candidates, candidates.len());
                prop_assert_eq!(transport.calls().iter().map(|c| c.model.clone()).collect::<Vec<_>>(), vec![pick]);
            }
            explained => {
                prop_assert!(candidates.is_empty(), "explain failed with candidates: {:?}", explained.err());
                // No pick, and the error the request gets (in the explanation, or as the error).
                let error = match explained {
                    Ok(why) => {
                        prop_assert!(why.pick.is_none() && why.candidates.is_empty());
                        why.error
                    }
                    Err(e) => Some(e),
                };
                prop_assert!(matches!(error, Some(RouteError::NoCandidate { .. })), "{:?}", error);
                let failed = block_on(r.route(&chat, seed)).expect_err("no candidate");
                prop_assert_eq!(failed.error.status(), 404);
                prop_assert!(transport.calls().is_empty());
            }
        }
    }

    /// Whatever upstream does, every model that reaches the transport is free and meets
    /// the request's requirements; named paid or unknown models are refused before any
    /// call; no model is tried twice for one request; the answer names the model.
    #[test]
    fn a_non_free_model_is_never_forwarded(
        models in catalog(30),
        reqs in prop::collection::vec(request(), 1..4),
        script in prop::collection::vec(fault(), 0..12),
        max_attempts in 1u32..6,
        per_minute in prop::option::of(1u32..6),
        step_secs in select(vec![0u64, 1, 31, 600, 86_400]),
        seed in any::<u64>(),
    ) {
        let snap = snapshot_of(&models);
        let transport = Recorder::new(script);
        let (r, time) = router(snap.clone(), transport.clone(), router_config(max_attempts, per_minute));
        for (n, req) in reqs.iter().enumerate() {
            let at = now().saturating_add(Duration::from_secs(step_secs * n as u64));
            time.0.store(at.as_millis(), Ordering::SeqCst);
            let (chat, named) = req.resolve(&models);
            let before = transport.calls().len();
            let result = block_on(r.route(&chat, seed.wrapping_add(n as u64)));
            let calls = transport.calls().split_off(before);
            let mut seen = BTreeSet::new();
            for call in &calls {
                let index = snap.index_of(&call.model).expect("only catalog models are forwarded");
                let entry = &snap.entries()[index];
                let generated = models.iter().find(|g| g.info.id == entry.info.id).expect("generated");
                prop_assert!(is_free(&entry.info, at), "forwarded to non-free {}", call.model);
                prop_assert!(generated.free, "the oracle says {} is not free", call.model);
                prop_assert!(check_entry(&snap, index, chat.requirements(), at).is_none(), "{} is unfit", call.model);
                prop_assert!(req.needs.iter().all(|need| need.met_by(&entry.info)), "{} lacks {:?}", call.model, req.needs);
                prop_assert_eq!(&call.body["model"], &json!(call.model));
                prop_assert!(call.body.get("models").is_none() && call.body.get("route").is_none());
                prop_assert_eq!(call.stream, chat.is_stream());
                prop_assert!(seen.insert(call.model.clone()), "{} tried twice", call.model);
            }
            // Every call counts against the hard cap; only costly failures (not cheap,
            // not raced) against `max_attempts`.
            let config = r.config();
            prop_assert!(calls.len() <= config.max_upstream_calls as usize);
            let attempts = match &result {
                Ok(routed) => &routed.report.attempts,
                Err(failed) => &failed.report.attempts,
            };
            let cheap = |a: &router_core::Attempt| {
                matches!(a.failure, Some(ErrorKind::RateLimitedModel | ErrorKind::ModelUnavailable | ErrorKind::ServerError))
                    && a.elapsed < config.cheap_failure_bound
            };
            let costly = attempts.iter().filter(|a| a.failure.is_some() && !a.raced && !cheap(a)).count();
            prop_assert!(costly <= max_attempts as usize, "{} costly failures: {:?}", costly, attempts);
            if named.iter().any(|g| g.as_ref().is_none_or(|g| !g.free)) {
                prop_assert!(calls.is_empty(), "a request naming a paid or unknown model was forwarded");
                let failed = result.as_ref().err().map(|f| f.error.error_type());
                prop_assert!(matches!(failed, Some("paid_model_refused" | "unknown_model")), "{:?}", failed);
            }
            match result {
                Ok(routed) => {
                    let chosen = routed.report.model.clone().expect("a model").to_string();
                    prop_assert_eq!(calls.last().map(|c| c.model.clone()), Some(chosen.clone()));
                    let tried: Vec<String> = routed.report.attempts.iter().map(|a| a.model.to_string()).collect();
                    prop_assert_eq!(tried, calls.iter().map(|c| c.model.clone()).collect::<Vec<_>>());
                    match routed.response.body {
                        Body::Full(bytes) => {
                            let v: Value = serde_json::from_slice(&bytes).expect("json");
                            prop_assert_eq!(&v["model"], &json!(chosen));
                        }
                        Body::Stream(s) => {
                            let chunks: Vec<_> = block_on(s.collect());
                            let text: Vec<u8> = chunks.into_iter().flat_map(|c| c.expect("in-band").to_vec()).collect();
                            let text = String::from_utf8(text).expect("utf-8");
                            for payload in text.lines().filter_map(|l| l.strip_prefix("data: ")).filter(|p| p.starts_with('{')) {
                                let v: Value = serde_json::from_str(payload).expect("json event");
                                prop_assert_eq!(&v["model"], &json!(chosen));
                            }
                        }
                    }
                }
                Err(failed) => {
                    let tried: Vec<String> = failed.report.attempts.iter().map(|a| a.model.to_string()).collect();
                    prop_assert_eq!(tried, calls.iter().map(|c| c.model.clone()).collect::<Vec<_>>());
                    let json = failed.error.to_json();
                    prop_assert_eq!(json["error"]["code"].as_u64(), Some(u64::from(failed.error.status())));
                    prop_assert!(json["error"]["message"].is_string());
                }
            }
        }
    }

    /// The same seed and the same candidate set give the same pick, and the same
    /// sequence of fallbacks, whatever the catalog's order and whatever else it lists.
    #[test]
    fn the_pick_depends_only_on_the_seed_and_the_candidate_set(
        (models, shuffled) in catalog(30).prop_flat_map(|m| (Just(m.clone()), Just(m).prop_shuffle())),
        extra in prop::collection::vec(any::<u8>(), 0..5),
        req in request(),
        script in prop::collection::vec(fault(), 0..6),
        seed in any::<u64>(),
    ) {
        // The shuffled catalog also lists paid models, which cannot be candidates.
        let mut other: Vec<Gen> = shuffled;
        for (i, b) in extra.iter().enumerate() {
            let mut info = ModelInfo::new(&format!("paid-{b}/extra-{i}"));
            info.output_modalities = vec!["text".into()];
            info.pricing.0.insert("prompt".into(), json!("0.000001"));
            let at = usize::from(*b) % (other.len() + 1);
            other.insert(at, Gen { info, free: false });
        }
        let (a, b) = (snapshot_of(&models), snapshot_of(&other));
        let (chat, _) = req.resolve(&models);
        prop_assert_eq!(candidate_ids(&a, &chat, now()), candidate_ids(&b, &chat, now()));
        let picks: Vec<Option<String>> = [&a, &b]
            .iter()
            .map(|snap| {
                let (r, _) = router((*snap).clone(), Recorder::new(Vec::new()), router_config(3, None));
                r.explain(&chat, seed).ok().and_then(|e| e.pick).map(|m| m.to_string())
            })
            .collect();
        prop_assert_eq!(&picks[0], &picks[1]);
        let sequences: Vec<Vec<String>> = [a, b]
            .into_iter()
            .map(|snap| {
                let transport = Recorder::new(script.clone());
                let (r, _) = router(snap, transport.clone(), router_config(4, None));
                let _ = block_on(r.route(&chat, seed));
                transport.calls().into_iter().map(|c| c.model).collect()
            })
            .collect();
        prop_assert_eq!(&sequences[0], &sequences[1]);
    }
}

proptest! {
    #![proptest_config(config())]

    /// The forwarded body is the client's body with `model` replaced and the router-only
    /// fields left out, however the client formatted it; the formatting does not change
    /// what the request needs (spacing only adds to the prompt estimate).
    #[test]
    fn the_forwarded_body_is_the_request_with_the_model_replaced(
        models in catalog(5),
        req in request(),
        pretty in any::<bool>(),
    ) {
        let (parsed, _) = req.resolve(&models);
        let mut body = req.body.clone();
        body["model"] = json!("openrouter/free");
        let text = if pretty { serde_json::to_vec_pretty(&body) } else { serde_json::to_vec(&body) }.expect("json");
        let chat = ChatRequest::from_slice(&text).expect("valid");
        let forwarded: Value = serde_json::from_slice(&chat.body_for(&ModelId::new("x/y:free"))).expect("json");
        let mut expected = body.clone();
        let object = expected.as_object_mut().expect("an object");
        object.remove("route");
        object.insert("model".into(), json!("x/y:free"));
        prop_assert_eq!(forwarded, expected);
        // Tool definitions count as sent, so spacing may only add to the estimate.
        let (got, compact) = (chat.requirements(), parsed.requirements());
        prop_assert_eq!((got.caps, got.max_output_tokens), (compact.caps, compact.max_output_tokens));
        prop_assert!(got.prompt_tokens >= compact.prompt_tokens);
        if !pretty {
            prop_assert_eq!(got.prompt_tokens, compact.prompt_tokens);
        }
        prop_assert_eq!(chat.is_stream(), body.get("stream") == Some(&json!(true)));
    }
}

/// Any JSON value, with awkward strings.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e9f64..1e9).prop_map(|f| json!(f)),
        "\\PC{0,12}".prop_map(Value::from),
        Just(json!("quote \" backslash \\ newline \n tab \t, comma } brace")),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("[a-z\",:{} ]{0,4}", inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// A key as JSON text: plain, or with its first character `\u`-escaped.
fn key_text(key: &str, escaped: bool) -> String {
    match key.chars().next() {
        Some(c) if escaped && (c as u32) < 0x1_0000 => {
            let rest = serde_json::to_string(&key[c.len_utf8()..]).expect("json");
            format!("\"\\u{:04x}{}", c as u32, &rest[1..])
        }
        _ => serde_json::to_string(key).expect("json"),
    }
}

/// One member of a hand-written body: key, whether to escape it, value.
fn member() -> impl Strategy<Value = (String, bool, Value)> {
    let key = select(vec![
        "temperature",
        "model",
        "models",
        "route",
        "stream",
        "x",
        "a\"b",
        "tab\tkey",
        "ü",
        "😀",
        "",
        "messages",
    ]);
    (key, any::<bool>(), json_value()).prop_map(|(k, escaped, v)| {
        let v = match k {
            "model" => json!("openrouter/free"),
            "models" => json!(["free"]),
            "stream" => json!(false),
            "messages" => json!([{"role": "user", "content": [{"type": "text", "text": "hi"}], "extra": v}]),
            _ => v,
        };
        (k.to_owned(), escaped, v)
    })
}

proptest! {
    #![proptest_config(config())]

    /// Bodies written by hand, with any spacing, escaped and repeated keys: the forwarded
    /// body holds the last value of every key but `model` and the router-only fields,
    /// each value byte for byte as the client wrote it.
    #[test]
    fn members_are_found_and_forwarded_whatever_the_layout(
        members in prop::collection::vec((member(), any::<bool>()), 0..8),
        messages_at in any::<prop::sample::Index>(),
        spaces in prop::collection::vec(select(vec!["", " ", "\n", "\t", " \r\n  "]), 64),
    ) {
        let mut members: Vec<((String, bool, Value), bool)> = members;
        let first = (("messages".to_owned(), false, json!([{"role": "user", "content": "hello"}])), false);
        members.insert(messages_at.index(members.len() + 1), first);
        let mut ws = spaces.iter().cycle();
        let mut text = format!("{}{{", ws.next().expect("cycle"));
        let mut expected = serde_json::Map::new();
        let mut raw_values: BTreeMap<String, String> = BTreeMap::new();
        for (i, ((key, escaped, value), pretty)) in members.iter().enumerate() {
            let value_text = if *pretty { serde_json::to_string_pretty(value) } else { serde_json::to_string(value) }
                .expect("json");
            if i > 0 {
                text.push(',');
            }
            let w: Vec<&str> = (0..4).map(|_| *ws.next().expect("cycle")).collect();
            text.push_str(&format!("{}{}{}:{}{}{}", w[0], key_text(key, *escaped), w[1], w[2], value_text, w[3]));
            expected.insert(key.clone(), serde_json::from_str(&value_text).expect("json"));
            raw_values.insert(key.clone(), value_text);
        }
        text.push_str(&format!("}}{}", ws.next().expect("cycle")));
        let req = ChatRequest::from_slice(text.as_bytes()).expect("a valid request");
        let out = req.body_for(&ModelId::new("x/y:free"));
        let forwarded: Value = serde_json::from_slice(&out).expect("forwarded json");
        for k in ["models", "route"] {
            expected.remove(k);
            raw_values.remove(k);
        }
        expected.insert("model".into(), json!("x/y:free"));
        prop_assert_eq!(forwarded, Value::Object(expected), "{}", text);
        let out = String::from_utf8(out).expect("utf-8");
        for (key, raw) in raw_values.iter().filter(|(k, _)| k.as_str() != "model") {
            prop_assert!(out.contains(raw.as_str()), "{:?}'s value is not forwarded verbatim: {}", key, out);
        }
    }
}

#[test]
fn forwarding_keeps_the_clients_bytes_and_order() {
    // Spacing inside values is kept, the last of duplicate keys wins (as in a JSON map),
    // an escaped key is re-encoded, `model` comes first, router-only fields are dropped.
    let body = br#"{ "temperature" : 0.5, "model":"openrouter/free", "messages": [ {"role":"user", "content":"hi"} ],
        "models":["a:free"], "route":"fallback", "z\u0041":1, "temperature": 0.7 , "\u006dodel": "free" }"#;
    let req = ChatRequest::from_slice(body).expect("valid");
    // The escaped `model` key is the last `model`: `free`, the router alias.
    assert_eq!(req.targets(), [router_core::Target::AnyFree, router_core::Target::Model(ModelId::new("a:free"))]);
    let out = String::from_utf8(req.body_for(&ModelId::new("m:free"))).expect("utf-8");
    assert_eq!(out, r#"{"model":"m:free","messages":[ {"role":"user", "content":"hi"} ],"zA":1,"temperature":0.7}"#);
}

// ---------------------------------------------------------------------------------------
// Uniformity
// ---------------------------------------------------------------------------------------

/// `ln Γ(x)` for `x > 0` (Lanczos, g = 7, n = 9; about 15 significant digits).
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + 7.5;
    let a = G[1..].iter().enumerate().fold(G[0], |acc, (i, g)| acc + g / (x + i as f64 + 1.0));
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The regularised upper incomplete gamma function `Q(a, x)` (series below `a + 1`,
/// Lentz's continued fraction above, as in Numerical Recipes).
fn gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let front = (-x + a * x.ln() - ln_gamma(a)).exp();
    if x < a + 1.0 {
        let (mut sum, mut term, mut ap) = (1.0 / a, 1.0 / a, a);
        for _ in 0..10_000 {
            ap += 1.0;
            term *= x / ap;
            sum += term;
            if term.abs() < sum.abs() * 1e-16 {
                break;
            }
        }
        1.0 - sum * front
    } else {
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let (mut c, mut d) = (1.0 / tiny, 1.0 / b);
        let mut h = d;
        for i in 1..10_000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let delta = d * c;
            h *= delta;
            if (delta - 1.0).abs() < 1e-16 {
                break;
            }
        }
        front * h
    }
}

/// The p-value of Pearson's chi-square test that `counts` come from a uniform distribution.
fn uniform_p_value(counts: &[u64]) -> f64 {
    let n: u64 = counts.iter().sum();
    let expected = n as f64 / counts.len() as f64;
    let stat: f64 = counts.iter().map(|&o| (o as f64 - expected).powi(2) / expected).sum();
    gamma_q((counts.len() - 1) as f64 / 2.0, stat / 2.0)
}

#[test]
fn the_chi_square_p_value_matches_published_tables() {
    // (statistic, degrees of freedom, upper-tail probability) from standard tables.
    let table = [
        (10.828, 1.0, 0.001),
        (13.816, 2.0, 0.001),
        (27.877, 9.0, 0.001),
        (59.703, 30.0, 0.001),
        (3.841, 1.0, 0.05),
        (18.307, 10.0, 0.05),
    ];
    for (x, df, p) in table {
        let got = gamma_q(df / 2.0, x / 2.0);
        assert!((got - p).abs() < p * 0.01, "chi2({df}) > {x}: {got}, expected {p}");
    }
    // Closed forms for even degrees of freedom.
    for x in [0.5f64, 2.0, 7.0, 40.0] {
        assert!((gamma_q(1.0, x / 2.0) - (-x / 2.0).exp()).abs() < 1e-12);
        assert!((gamma_q(2.0, x / 2.0) - (-x / 2.0).exp() * (1.0 + x / 2.0)).abs() < 1e-12);
    }
}

#[test]
fn the_uniformity_test_catches_a_biased_picker() {
    // `seed % 16 % 10` favours six of ten candidates 2:1, the classic modulo bias.
    let mut counts = [0u64; 10];
    for seed in 0..20_000u64 {
        counts[(seed % 16 % 10) as usize] += 1;
    }
    assert!(uniform_p_value(&counts) < 1e-9);
    // A candidate that is never picked.
    let mut counts = [0u64; 10];
    for seed in 0..20_000u64 {
        counts[(seed % 9) as usize] += 1;
    }
    assert!(uniform_p_value(&counts) < 1e-9);
}

/// Family-wise significance: over all the cases of the property below, a uniform picker
/// fails with probability at most 0.001 (Bonferroni).
const ALPHA: f64 = 0.001;

proptest! {
    // A fixed seed: the cases, and so the verdict, are the same on every run.
    #![proptest_config(Config { rng_seed: RngSeed::Fixed(0x00F1_EE5E_ED00_0001), ..config() })]

    /// Over many seeds, every candidate of an arbitrary catalog is picked about equally
    /// often.
    #[test]
    fn picks_are_uniform_over_the_candidates(
        good in prop::collection::vec((select(&VENDORS[..4]), 0u32..1_000_000), 2..25),
        noise in catalog(20),
        base in any::<u64>(),
    ) {
        let mut models = noise;
        for (i, (vendor, n)) in good.into_iter().enumerate() {
            let mut info = ModelInfo::new(&format!("{vendor}/good-{n}-{i}:free"));
            info.output_modalities = vec!["text".into()];
            info.pricing.0.insert("prompt".into(), json!("0"));
            models.push(Gen { info, free: true });
        }
        let snap = snapshot_of(&models);
        let chat = ChatRequest::from_value(json!({"messages": [{"role": "user", "content": "hi"}]})).expect("valid");
        let candidates = filter(&snap, chat.requirements(), now()).candidates;
        let k = candidates.len();
        prop_assert!(k >= 2);
        let draws = 30 * k as u64;
        let mut counts = vec![0u64; k];
        for i in 0..draws {
            let pick = pick_with_seed(&candidates, base.wrapping_add(i)).expect("non-empty");
            counts[candidates.iter().position(|c| c == pick).expect("a candidate")] += 1;
        }
        let p = uniform_p_value(&counts);
        prop_assert!(p > ALPHA / f64::from(CASES), "p = {} for {:?}", p, counts);
        // The router draws its first pick exactly this way.
        let (r, _) = router(snap.clone(), Recorder::new(Vec::new()), router_config(1, None));
        for i in 0..3 {
            let pick = r.explain(&chat, base.wrapping_add(i)).expect("candidates").pick.expect("a pick");
            let expected = pick_with_seed(&candidates, base.wrapping_add(i)).expect("non-empty");
            prop_assert_eq!(pick.as_str(), snap.entries()[*expected].info.id.as_str());
        }
    }
}

#[test]
fn the_router_picks_every_candidate_equally_often() {
    // Ten free candidates among paid and unfit models; seeds 0..5000 through `route`.
    let mut models: Vec<ModelInfo> = (0..10)
        .map(|i| {
            let mut m = ModelInfo::new(&format!("v{}/m{i}:free", 9 - i));
            m.output_modalities = vec!["text".into()];
            m.supported_parameters = vec!["tools".into()];
            m.pricing.0.insert("prompt".into(), json!("0"));
            m
        })
        .collect();
    for i in 0..20 {
        let mut m = ModelInfo::new(&format!("paid/m{i}"));
        m.output_modalities = vec!["text".into()];
        m.supported_parameters = vec!["tools".into()];
        models.push(m);
        let mut m = ModelInfo::new(&format!("notools/m{i}:free"));
        m.output_modalities = vec!["text".into()];
        models.push(m);
    }
    let snap = Arc::new(CatalogSnapshot::new(models, CatalogSource::Memory, now()));
    let chat = ChatRequest::from_value(json!({
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "function", "function": {"name": "f"}}],
    }))
    .expect("valid");
    let (r, _) = router(snap, Recorder::new(Vec::new()), router_config(1, None));
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for seed in 0..5_000 {
        let routed = block_on(r.route(&chat, seed)).expect("routed");
        *counts.entry(routed.report.model.expect("a model").to_string()).or_default() += 1;
    }
    assert_eq!(counts.len(), 10, "{counts:?}");
    assert!(counts.keys().all(|k| k.ends_with(":free") && !k.starts_with("notools/")));
    let p = uniform_p_value(&counts.values().copied().collect::<Vec<_>>());
    assert!(p > ALPHA, "p = {p} for {counts:?}");
}

#[test]
fn picks_are_uniform_over_a_large_sample() {
    let candidates: Vec<usize> = (0..10).collect();
    let mut counts = [0u64; 10];
    for seed in 0..200_000 {
        counts[*pick_with_seed(&candidates, seed).expect("non-empty")] += 1;
    }
    let p = uniform_p_value(&counts);
    assert!(p > ALPHA, "p = {p} for {counts:?}");
}

// ---------------------------------------------------------------------------------------
// Declared providers: never billed, never beyond a quota
// ---------------------------------------------------------------------------------------

/// A generated declared provider: its billing, its limits and how many models it lists.
#[derive(Clone, Debug)]
struct GenProvider {
    name: &'static str,
    billing: router_core::Billing,
    per_minute: Option<u32>,
    per_day: Option<u32>,
    models: usize,
}

fn gen_provider(name: &'static str) -> impl Strategy<Value = GenProvider> {
    use router_core::Billing;
    (
        select(vec![Billing::FreeTier, Billing::Local, Billing::Billed]),
        proptest::option::of(1u32..5),
        proptest::option::of(1u32..8),
        1usize..4,
    )
        .prop_map(move |(billing, per_minute, per_day, models)| GenProvider {
            name,
            billing,
            per_minute,
            per_day,
            models,
        })
}

fn gen_providers() -> impl Strategy<Value = Vec<GenProvider>> {
    (
        proptest::option::of(gen_provider("groq")),
        proptest::option::of(gen_provider("cerebras")),
        proptest::option::of(gen_provider("ollama")),
    )
        .prop_map(|(a, b, c)| [a, b, c].into_iter().flatten().collect())
}

/// The union catalog: `or_models` free OpenRouter models, one paid one, and each
/// provider's models as `<provider>/m<i>` with its provenance.
fn union_of(providers: &[GenProvider], or_models: usize) -> Arc<CatalogSnapshot> {
    let mut models = Vec::new();
    let text_model = |id: &str| {
        let mut m = ModelInfo::new(id);
        m.input_modalities = vec!["text".into()];
        m.output_modalities = vec!["text".into()];
        m
    };
    for i in 0..or_models {
        let mut m = text_model(&format!("or/m{i}:free"));
        m.pricing.0.insert("prompt".into(), json!("0"));
        m.pricing.0.insert("completion".into(), json!("0"));
        models.push(m);
    }
    let mut paid = text_model("or/paid");
    paid.pricing.0.insert("prompt".into(), json!("0.000001"));
    models.push(paid);
    for p in providers {
        for i in 0..p.models {
            let mut m = text_model(&format!("{}/m{i}", p.name));
            m.provider = Some(router_core::Provenance {
                provider: p.name.into(),
                upstream_id: format!("m{i}").into(),
                billing: p.billing,
            });
            models.push(m);
        }
    }
    Arc::new(CatalogSnapshot::new(models, CatalogSource::Memory, now()))
}

/// Answers or fails as scripted, recording which model each call went to and when.
struct ProviderRecorder {
    time: Time,
    script: Mutex<VecDeque<Option<ErrorKind>>>,
    calls: Mutex<Vec<(String, Timestamp)>>,
}

#[async_trait::async_trait]
impl ChatTransport for ProviderRecorder {
    async fn send(&self, model: &ModelId, _body: Bytes, _stream: bool) -> Result<UpstreamResponse, TransportError> {
        self.calls.lock().expect("calls").push((model.to_string(), self.time.now()));
        match self.script.lock().expect("script").pop_front().flatten() {
            Some(kind) => Err(TransportError::new(kind, "scripted failure")),
            None => Ok(UpstreamResponse {
                status: 200,
                headers: Vec::new(),
                body: Body::Full(Bytes::from(json!({"choices": [{"message": {"content": "hello"}}]}).to_string())),
                elapsed: Duration::ZERO,
            }),
        }
    }
}

proptest! {
    #![proptest_config(Config { cases: 300, ..config() })]

    /// With any set of providers and quotas, and whatever upstream answers, no call goes
    /// to a model whose provider is not declared free_tier or local (nor to a paid
    /// OpenRouter model), and no provider gets more calls in a minute or a day than its
    /// quota allows.
    #[test]
    fn no_call_is_billed_or_beyond_a_providers_quota(
        providers in gen_providers(),
        or_models in 0usize..3,
        script in proptest::collection::vec(
            proptest::option::weighted(0.3, select(vec![
                ErrorKind::RateLimitedModel,
                ErrorKind::RateLimitedAccount,
                ErrorKind::DailyCapReached,
                ErrorKind::Connection,
                ErrorKind::ServerError,
                ErrorKind::Auth,
            ])),
            0..40,
        ),
        steps in proptest::collection::vec((0u64..40, any::<u64>()), 1..25),
    ) {
        use router_core::quota::ProviderPolicy;
        let snap = union_of(&providers, or_models);
        let time = Time(Arc::new(AtomicU64::new(now().as_millis())));
        let transport = Arc::new(ProviderRecorder {
            time: time.clone(),
            script: Mutex::new(script.into()),
            calls: Mutex::default(),
        });
        let mut config = router_config(3, None);
        for p in &providers {
            let quota = QuotaPolicy { per_minute: p.per_minute, per_day: p.per_day };
            config.providers.insert(p.name.to_owned(), ProviderPolicy { quota, ..ProviderPolicy::default() });
        }
        let ports = Ports {
            catalog: Arc::new(FixedCatalog(snap.clone())),
            transport: transport.clone(),
            clock: Arc::new(time.clone()),
            store: None,
        };
        let router = Router::new(ports, config).expect("no store");
        let body = br#"{"model":"openrouter/free","messages":[{"role":"user","content":"hi"}]}"#;
        let req = ChatRequest::from_slice(body).expect("valid");
        for (advance, seed) in steps {
            time.0.fetch_add(advance * 1000, Ordering::SeqCst);
            let _ = block_on(router.route(&req, seed));
        }
        let calls = transport.calls.lock().expect("calls").clone();
        let mut per_minute: BTreeMap<(String, u64), u32> = BTreeMap::new();
        let mut per_day: BTreeMap<(String, u64), u32> = BTreeMap::new();
        for (model, at) in &calls {
            let entry = snap.get(model).expect("a call goes to a listed model");
            prop_assert!(entry.is_free(*at), "{model} is not free");
            match &entry.info.provider {
                None => prop_assert!(model.ends_with(":free"), "{model}"),
                Some(p) => {
                    prop_assert!(p.billing != router_core::Billing::Billed, "{model} can bill");
                    *per_minute.entry((p.provider.to_string(), at.minute())).or_default() += 1;
                    *per_day.entry((p.provider.to_string(), at.utc_day())).or_default() += 1;
                }
            }
        }
        for p in &providers {
            for ((name, _), n) in per_minute.iter().filter(|((name, _), _)| name == p.name) {
                prop_assert!(p.per_minute.is_none_or(|l| *n <= l), "{name}: {n} calls in a minute");
            }
            for ((name, _), n) in per_day.iter().filter(|((name, _), _)| name == p.name) {
                prop_assert!(p.per_day.is_none_or(|l| *n <= l), "{name}: {n} calls in a day");
            }
        }
    }
}

/// Over a union of OpenRouter and two declared providers, `openrouter/free` draws
/// uniformly across every provider's candidates, and `<provider>/free` uniformly within
/// that provider's; a billed provider's models are never drawn.
#[test]
fn picks_are_uniform_over_a_multi_provider_union() {
    use router_core::Billing;
    let providers = [
        GenProvider { name: "groq", billing: Billing::FreeTier, per_minute: None, per_day: None, models: 3 },
        GenProvider { name: "ollama", billing: Billing::Local, per_minute: None, per_day: None, models: 4 },
        GenProvider { name: "cerebras", billing: Billing::Billed, per_minute: None, per_day: None, models: 3 },
    ];
    let snap = union_of(&providers, 3);
    let (r, _) = router(snap, Recorder::new(Vec::new()), router_config(1, None));
    let draw = |model: &str, n: u64| {
        let chat = ChatRequest::from_value(json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}))
            .expect("valid");
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for seed in 0..n {
            let routed = block_on(r.route(&chat, seed)).expect("routed");
            *counts.entry(routed.report.model.expect("a model").to_string()).or_default() += 1;
        }
        counts
    };
    let all = draw("openrouter/free", 10_000);
    assert_eq!(all.len(), 10, "3 OpenRouter + 3 groq + 4 ollama: {all:?}");
    assert!(!all.keys().any(|k| k.starts_with("cerebras/")), "{all:?}");
    let p = uniform_p_value(&all.values().copied().collect::<Vec<_>>());
    assert!(p > ALPHA, "p = {p} for {all:?}");
    let local = draw("ollama/free", 4_000);
    assert_eq!(local.len(), 4, "{local:?}");
    assert!(local.keys().all(|k| k.starts_with("ollama/")));
    let p = uniform_p_value(&local.values().copied().collect::<Vec<_>>());
    assert!(p > ALPHA, "p = {p} for {local:?}");
}
