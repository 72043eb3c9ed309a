//! Embeddings never mix families: for any catalog of embedding and chat models (free or
//! paid, in any families) and any failures, an embeddings request calls only free
//! endpoints of the one family its `model` names, on the embeddings endpoint, and a chat
//! request never calls an embedding model. Driven through a recording fake transport.

use bytes::Bytes;
use futures_executor::block_on;
use proptest::prelude::*;
use router_core::embeddings::resolve;
use router_core::{
    Body, CatalogSnapshot, CatalogSource, ChatRequest, ChatTransport, Clock, Endpoint, ErrorKind, FixedCatalog,
    ModelId, ModelInfo, Ports, Router, RouterConfig, Timestamp, TransportError, UpstreamResponse,
};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const T0: Timestamp = Timestamp::from_secs(1_800_000_000);

struct Fixed;

impl Clock for Fixed {
    fn now(&self) -> Timestamp {
        T0
    }
}

/// Answers each model by its script (`true`: a 429) and records every call.
struct Recording {
    failing: BTreeMap<String, bool>,
    calls: Mutex<Vec<(Endpoint, String)>>,
}

impl Recording {
    fn answer(&self, endpoint: Endpoint, model: &ModelId) -> Result<UpstreamResponse, TransportError> {
        self.calls.lock().expect("calls").push((endpoint, model.to_string()));
        if self.failing.get(model.as_str()).copied().unwrap_or(false) {
            return Err(TransportError::new(ErrorKind::RateLimitedModel, "busy"));
        }
        let body = match endpoint {
            Endpoint::Embeddings => {
                json!({"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.5]}], "model": model.as_str()})
            }
            Endpoint::Chat => {
                json!({"choices": [{"message": {"role": "assistant", "content": "hi"}}], "model": model.as_str()})
            }
        };
        Ok(UpstreamResponse {
            status: 200,
            headers: Vec::new(),
            body: Body::Full(Bytes::from(body.to_string())),
            elapsed: Duration::ZERO,
        })
    }
}

#[async_trait::async_trait]
impl ChatTransport for Recording {
    async fn send(&self, model: &ModelId, _body: Bytes, _stream: bool) -> Result<UpstreamResponse, TransportError> {
        self.answer(Endpoint::Chat, model)
    }

    async fn send_to(
        &self,
        endpoint: Endpoint,
        model: &ModelId,
        _body: Bytes,
        _stream: bool,
    ) -> Result<UpstreamResponse, TransportError> {
        self.answer(endpoint, model)
    }
}

/// One model of the generated catalog: an embedding model (in family `family`) or a chat
/// model, free or paid, failing or not.
#[derive(Clone, Debug)]
struct Spec {
    embedding: bool,
    family: usize,
    free: bool,
    failing: bool,
}

fn info(i: usize, s: &Spec) -> ModelInfo {
    let mut m = ModelInfo::new(&format!("p{i}/m{i}:free"));
    m.output_modalities = vec![if s.embedding { "embeddings" } else { "text" }.into()];
    m.input_modalities = vec!["text".into()];
    m.context_length = Some(8192);
    m.pricing.0.insert("prompt".into(), json!(if s.free { "0" } else { "0.000001" }));
    m.pricing.0.insert("completion".into(), json!("0"));
    if s.embedding {
        m.family = Some(format!("family-{}", s.family).into());
    }
    m
}

fn spec() -> impl Strategy<Value = Spec> {
    (any::<bool>(), 0..3usize, any::<bool>(), any::<bool>()).prop_map(|(embedding, family, free, failing)| Spec {
        embedding,
        family,
        free,
        failing,
    })
}

proptest! {
    #[test]
    fn embeddings_stay_in_one_family_and_chat_never_reaches_them(
        specs in prop::collection::vec(spec(), 1..10),
        named in prop::option::of(0..13usize),
        seed in any::<u64>(),
    ) {
        let models: Vec<ModelInfo> = specs.iter().enumerate().map(|(i, s)| info(i, s)).collect();
        let snap = Arc::new(CatalogSnapshot::new(models.clone(), CatalogSource::Memory, T0));
        let failing = models.iter().zip(&specs).map(|(m, s)| (m.id.to_string(), s.failing)).collect();
        let transport = Arc::new(Recording { failing, calls: Mutex::new(Vec::new()) });
        let ports = Ports {
            catalog: Arc::new(FixedCatalog(snap.clone())),
            transport: transport.clone(),
            clock: Arc::new(Fixed),
            store: None,
        };
        let router = Router::new(ports, RouterConfig::default()).expect("no store");
        // A model by index, a family by name, or none (the default family).
        let name = named.map(|n| if n < 10 { format!("p{n}/m{n}:free") } else { format!("family-{}", n - 10) });
        if let Ok(resolved) = resolve(&snap, name.as_deref(), None, T0) {
            let req = ChatRequest::embeddings(Bytes::from_static(br#"{"input":"x"}"#), &resolved.family)
                .expect("an embeddings body");
            let routed = block_on(router.route(&req, seed));
            let family_of = |id: &str| snap.get(id).map(|e| e.info.family().to_owned());
            for (endpoint, model) in transport.calls.lock().expect("calls").iter() {
                prop_assert_eq!(*endpoint, Endpoint::Embeddings);
                let entry = snap.get(model).expect("a catalog model");
                prop_assert!(entry.info.is_embedding() && entry.is_free(T0), "{model} called");
                prop_assert_eq!(family_of(model), Some(resolved.family.clone()));
            }
            if let Ok(r) = routed {
                let answered = r.report.model.expect("a model answered");
                prop_assert_eq!(family_of(answered.as_str()), Some(resolved.family.clone()));
            }
        }
        transport.calls.lock().expect("calls").clear();
        let chat = ChatRequest::from_slice(br#"{"model":"openrouter/free","messages":[{"role":"user","content":"hi"}]}"#)
            .expect("a chat body");
        let _ = block_on(router.route(&chat, seed));
        for (endpoint, model) in transport.calls.lock().expect("calls").iter() {
            prop_assert_eq!(*endpoint, Endpoint::Chat);
            prop_assert!(!snap.get(model).expect("a catalog model").info.is_embedding(), "chat reached {model}");
        }
    }
}
