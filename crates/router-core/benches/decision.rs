//! Criterion benchmarks of the routing decision (analyse + filter + select) over a
//! generated 400-model catalog, of request analysis on a large conversation, of the
//! explanation, and of a whole `Router::route` over a transport that answers at once; the
//! same decision over a 1,000-model union of four providers (issue 13).
//!
//! `cargo bench -p router-core --bench decision -- --warm-up-time 1 --measurement-time 3`

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use router_core::filter::{candidates, filter};
use router_core::quota::ProviderPolicy;
use router_core::select::pick_with_seed;
use router_core::{
    Billing, Body, CatalogSnapshot, CatalogSource, ChatRequest, ChatTransport, Clock, FixedCatalog, ModelId, ModelInfo,
    Ports, Provenance, QuotaPolicy, Router, RouterConfig, Timestamp, TransportError, UpstreamResponse,
};
use serde_json::{Value, json};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

const NOW: Timestamp = Timestamp::from_secs(1_787_140_800); // 2026-08-19T12:00:00Z

const VENDORS: [&str; 12] = [
    "openai",
    "anthropic",
    "google",
    "meta-llama",
    "mistralai",
    "qwen",
    "deepseek",
    "x-ai",
    "nvidia",
    "cohere",
    "microsoft",
    "z-ai",
];
const PARAMS: [&str; 22] = [
    "max_tokens",
    "temperature",
    "top_p",
    "stop",
    "seed",
    "response_format",
    "tools",
    "tool_choice",
    "structured_outputs",
    "include_reasoning",
    "reasoning",
    "frequency_penalty",
    "presence_penalty",
    "top_k",
    "logprobs",
    "top_logprobs",
    "repetition_penalty",
    "reasoning_effort",
    "logit_bias",
    "min_p",
    "max_completion_tokens",
    "verbosity",
];

/// A catalog shaped like the real `/models` listings: 400 models, 5% of them `:free`,
/// about 60% with image input, 40% with file input, most with tools and structured
/// outputs, several prices per paid model.
fn catalog(n: usize) -> CatalogSnapshot {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let models = (0..n)
        .map(|i| {
            let free = i % 20 == 7;
            let vendor = VENDORS[rng.random_range(0..VENDORS.len())];
            let id =
                format!("{vendor}/model-{i}-{}b-instruct{}", rng.random_range(1..400), if free { ":free" } else { "" });
            let mut m = ModelInfo::new(&id);
            m.name = format!("{vendor}: Model {i}");
            m.created = Some(1_700_000_000 + i as i64 * 86_400);
            m.context_length = Some([8_192, 32_768, 131_072, 200_000, 1_048_576][rng.random_range(0..5)]);
            m.max_completion_tokens = rng.random_bool(0.6).then(|| [4_096, 16_384, 65_536][rng.random_range(0..3)]);
            m.input_modalities = vec!["text".into()];
            for (modality, p) in [("image", 0.6), ("file", 0.38), ("video", 0.16), ("audio", 0.09)] {
                if rng.random_bool(p) {
                    m.input_modalities.push(modality.into());
                }
            }
            m.output_modalities = vec!["text".into()];
            let k = rng.random_range(8..PARAMS.len());
            m.supported_parameters = PARAMS[..k].iter().map(|p| (*p).to_owned()).collect();
            let price = |rng: &mut ChaCha8Rng| {
                if free { json!("0") } else { json!(format!("0.000000{}", rng.random_range(1..99))) }
            };
            m.pricing.0.insert("prompt".into(), price(&mut rng));
            m.pricing.0.insert("completion".into(), price(&mut rng));
            if !free && rng.random_bool(0.5) {
                m.pricing.0.insert("input_cache_read".into(), price(&mut rng));
                m.pricing.0.insert("web_search".into(), json!("0.01"));
            }
            m.tokenizer = Some("Other".into());
            m
        })
        .collect();
    CatalogSnapshot::new(models, CatalogSource::Memory, NOW)
}

/// The providers of the union benchmark: three declared ones beside OpenRouter.
const PROVIDERS: [(&str, Billing); 3] =
    [("groq", Billing::FreeTier), ("cerebras", Billing::FreeTier), ("ollama", Billing::Local)];

/// A 1,000-model union: the 400-model OpenRouter catalog and 200 models from each of
/// three declared providers (their capabilities drawn like OpenRouter's).
fn union(n: usize) -> CatalogSnapshot {
    let base = catalog(400);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut models: Vec<ModelInfo> = base.models().cloned().collect();
    let per_provider = (n - models.len()) / PROVIDERS.len();
    for (name, billing) in PROVIDERS {
        for i in 0..per_provider {
            let upstream = format!("model-{i}-{}b", rng.random_range(1..200));
            let mut m = ModelInfo::new(&format!("{name}/{upstream}"));
            m.context_length = Some([8_192, 32_768, 131_072][rng.random_range(0..3)]);
            m.input_modalities = vec!["text".into()];
            m.output_modalities = vec!["text".into()];
            let k = rng.random_range(4..PARAMS.len());
            m.supported_parameters = PARAMS[..k].iter().map(|p| (*p).to_owned()).collect();
            m.provider = Some(Provenance { provider: name.into(), upstream_id: upstream.as_str().into(), billing });
            models.push(m);
        }
    }
    CatalogSnapshot::new(models, CatalogSource::Memory, NOW)
}

/// A typical agent request: a system prompt, a few turns, tools.
fn typical_request() -> Vec<u8> {
    json!({
        "model": "openrouter/free",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant. Answer briefly and use the tools when useful."},
            {"role": "user", "content": "What is the weather in Paris today, and should I take an umbrella?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
                "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "{\"temp\":18,\"rain\":0.7}"},
        ],
        "tools": [{"type": "function", "function": {"name": "weather", "description": "Current weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
        "temperature": 0.3,
        "max_tokens": 1024,
    })
    .to_string()
    .into_bytes()
}

/// A 200-message conversation; every tenth user turn carries an image (every other one
/// inline as a 16 KB base64 data URL).
fn large_request() -> Vec<u8> {
    let data_url = format!("data:image/png;base64,{}", "iVBORw0KGgo".repeat(16 * 1024 / 11));
    let messages: Vec<Value> = (0..200)
        .map(|i| {
            let text = format!("Message {i}: {}", "some conversation text that goes on for a while. ".repeat(4));
            if i % 2 == 1 {
                json!({"role": "assistant", "content": text})
            } else if i % 10 == 0 {
                let url = if i % 20 == 0 { data_url.clone() } else { format!("https://example.invalid/{i}.png") };
                json!({"role": "user", "content": [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": url}}]})
            } else {
                json!({"role": "user", "content": text})
            }
        })
        .collect();
    json!({"model": "openrouter/free", "messages": messages, "max_tokens": 2048}).to_string().into_bytes()
}

struct Now;

impl Clock for Now {
    fn now(&self) -> Timestamp {
        NOW
    }
}

/// Answers at once with a small body that names no model, so the router writes it in,
/// and says something, so that it passes the empty-answer judgement as a real one would.
struct Instant;

#[async_trait::async_trait]
impl ChatTransport for Instant {
    async fn send(&self, _model: &ModelId, _body: Bytes, _stream: bool) -> Result<UpstreamResponse, TransportError> {
        Ok(UpstreamResponse {
            status: 200,
            headers: Vec::new(),
            body: Body::Full(Bytes::from_static(
                br#"{"id":"gen","choices":[{"message":{"content":"hi"},"finish_reason":"stop"}]}"#,
            )),
            elapsed: Duration::ZERO,
        })
    }
}

/// A router over `snap` with the instant transport, the fixed clock and `config`.
fn router(snap: Arc<CatalogSnapshot>, config: RouterConfig) -> Router {
    let ports = Ports {
        catalog: Arc::new(FixedCatalog(snap)),
        transport: Arc::new(Instant),
        clock: Arc::new(Now),
        store: None,
    };
    Router::new(ports, config).expect("no store")
}

/// Whole routes of `req`, each with the next seed.
fn bench_route(b: &mut criterion::Bencher<'_>, r: &Router, req: &ChatRequest) {
    let mut seed = 0u64;
    b.iter_batched(
        || {
            seed = seed.wrapping_add(1);
            seed
        },
        |seed| futures_executor::block_on(r.route(req, seed)).expect("routed"),
        BatchSize::SmallInput,
    );
}

fn benches(c: &mut Criterion) {
    let snap = Arc::new(catalog(400));
    let body = typical_request();
    let parsed = ChatRequest::from_slice(&body).expect("valid");
    let free = snap.free_models(NOW).count();
    let n_candidates = candidates(&snap, parsed.requirements(), NOW).len();
    eprintln!("catalog: {} models, {free} free, {n_candidates} candidates for the typical request", snap.len());

    let mut g = c.benchmark_group("decision");
    // What the router does per request: parse and analyse the body, keep the candidates,
    // draw one.
    g.bench_function("analyse+filter+select/400 models", |b| {
        let mut seed = 0u64;
        b.iter(|| {
            seed = seed.wrapping_add(1);
            let req = ChatRequest::from_slice(black_box(&body)).expect("valid");
            let c = candidates(&snap, req.requirements(), NOW);
            black_box(pick_with_seed(&c, seed).copied())
        });
    });
    g.bench_function("filter+select/400 models", |b| {
        let mut seed = 0u64;
        b.iter(|| {
            seed = seed.wrapping_add(1);
            let c = candidates(black_box(&snap), parsed.requirements(), NOW);
            black_box(pick_with_seed(&c, seed).copied())
        });
    });
    // The full record with a rejection per model, as `explain` builds it.
    g.bench_function("filter with rejections/400 models", |b| {
        b.iter(|| filter(black_box(&snap), parsed.requirements(), NOW));
    });
    g.bench_function("analyse/typical request", |b| {
        b.iter(|| ChatRequest::from_slice(black_box(&body)).expect("valid"));
    });
    g.finish();

    let large = large_request();
    let large_reqs = ChatRequest::from_slice(&large).expect("valid");
    eprintln!(
        "typical request: {} bytes; large request: {} bytes, {}",
        body.len(),
        large.len(),
        large_reqs.requirements().labels().join(", ")
    );
    let mut g = c.benchmark_group("analysis");
    g.throughput(Throughput::Bytes(large.len() as u64));
    g.bench_function("200 messages with images", |b| {
        b.iter(|| ChatRequest::from_slice(black_box(&large)).expect("valid"));
    });
    g.finish();

    let r = router(snap.clone(), RouterConfig { quota: QuotaPolicy::UNLIMITED, ..RouterConfig::default() });
    let mut g = c.benchmark_group("router");
    g.bench_function("explain/400 models", |b| {
        b.iter(|| r.explain(black_box(&parsed), 7).expect("explained"));
    });
    g.bench_function("route/instant transport", |b| bench_route(b, &r, &parsed));
    g.finish();
}

/// The routing decision over a 1,000-model union of four providers, and a whole route
/// with per-provider quotas (the declared providers' reservation on the path).
fn union_benches(c: &mut Criterion) {
    let snap = Arc::new(union(1_000));
    let body = typical_request();
    let parsed = ChatRequest::from_slice(&body).expect("valid");
    let n_candidates = candidates(&snap, parsed.requirements(), NOW).len();
    eprintln!("union: {} models, {n_candidates} candidates for the typical request", snap.len());
    let mut g = c.benchmark_group("union");
    g.bench_function("analyse+filter+select/1000-model union", |b| {
        let mut seed = 0u64;
        b.iter(|| {
            seed = seed.wrapping_add(1);
            let req = ChatRequest::from_slice(black_box(&body)).expect("valid");
            let c = candidates(&snap, req.requirements(), NOW);
            black_box(pick_with_seed(&c, seed).copied())
        });
    });
    let mut config = RouterConfig { quota: QuotaPolicy::UNLIMITED, ..RouterConfig::default() };
    for (name, _) in PROVIDERS {
        // Limits far above what the benchmark sends, so that every route is served.
        let quota = QuotaPolicy { per_minute: Some(u32::MAX), per_day: Some(u32::MAX) };
        config.providers.insert(name.to_owned(), ProviderPolicy { quota, ..ProviderPolicy::default() });
    }
    let r = router(snap.clone(), config);
    g.bench_function("route/1000-model union, per-provider quotas", |b| bench_route(b, &r, &parsed));
    g.finish();
}

criterion_group!(decision, benches, union_benches);
criterion_main!(decision);
