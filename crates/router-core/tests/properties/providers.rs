//! Declared providers: no call is billed or beyond a provider's quota, and picks are
//! uniform over a multi-provider union.

use crate::ports::*;
use crate::uniformity::{ALPHA, uniform_p_value};
use crate::{config, now};
use bytes::Bytes;
use futures_executor::block_on;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::Config;
use router_core::{
    Body, CatalogSnapshot, CatalogSource, ChatRequest, ChatTransport, Clock, ErrorKind, FixedCatalog, ModelId,
    ModelInfo, Ports, QuotaPolicy, Router, Timestamp, TransportError, UpstreamResponse,
};
use serde_json::json;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
