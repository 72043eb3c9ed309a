//! Test fixtures for the attempt steps: a router over a fixed catalog of free models
//! (OpenRouter's and declared providers'), a clock that stands still, and a run.

use super::attempt::Run;
use super::plan::{Chooser, plan};
use super::{Ports, Router, RouterConfig};
use crate::catalog::{CatalogSnapshot, CatalogSource};
use crate::model::{Billing, ModelInfo, Provenance};
use crate::ports::{Clock, FixedCatalog, MockChatTransport};
use crate::quota::{ProviderPolicy, QuotaPolicy};
use crate::request::ChatRequest;
use crate::select::rng_from_seed;
use crate::time::Timestamp;
use std::sync::Arc;

pub(super) const T0: Timestamp = Timestamp::from_secs(1_800_000_000);

struct Still;

#[async_trait::async_trait]
impl Clock for Still {
    fn now(&self) -> Timestamp {
        T0
    }
}

/// A free text model; `provider` declares it (`<provider>/<id>`), else it is OpenRouter's.
pub(super) fn free(id: &str, provider: Option<&str>) -> ModelInfo {
    let mut m = ModelInfo::new(id);
    m.context_length = Some(131_072);
    m.input_modalities = vec!["text".into()];
    m.output_modalities = vec!["text".into()];
    m.pricing.0.insert("prompt".into(), "0".into());
    m.pricing.0.insert("completion".into(), "0".into());
    m.provider = provider.map(|p| Provenance {
        provider: p.into(),
        upstream_id: id.rsplit('/').next().unwrap_or(id).into(),
        billing: Billing::FreeTier,
    });
    m
}

/// A router over `models` that sends nothing (the steps under test do not send), with
/// OpenRouter's account limited to `per_minute` requests and each `(provider, per_minute)`.
pub(super) fn router(models: Vec<ModelInfo>, per_minute: Option<u32>, providers: &[(&str, u32)]) -> Router {
    let snap = CatalogSnapshot::new(models, CatalogSource::Memory, T0);
    let ports = Ports {
        catalog: Arc::new(FixedCatalog(Arc::new(snap))),
        transport: Arc::new(MockChatTransport::new()),
        clock: Arc::new(Still),
        store: None,
    };
    let quota = QuotaPolicy { per_minute, per_day: None };
    let providers = providers
        .iter()
        .map(|&(name, n)| {
            let quota = QuotaPolicy { per_minute: Some(n), per_day: None };
            (name.to_owned(), ProviderPolicy { quota, ..ProviderPolicy::default() })
        })
        .collect();
    Router::new(ports, RouterConfig { quota, providers, ..RouterConfig::default() }).expect("no store")
}

pub(super) fn chat(model: &str) -> ChatRequest {
    let body = format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#);
    ChatRequest::from_slice(body.as_bytes()).expect("a valid request")
}

/// A fresh run of `req` over `router`'s catalog.
pub(super) fn run(router: &Router, req: &ChatRequest) -> Run {
    let snap = router.catalog();
    let reqs = router.config.candidate_requirements(req.requirements());
    Run::new(plan(&snap, req, &reqs, T0).expect("a servable plan"), rng_from_seed(7), T0)
}

pub(super) fn chooser() -> Chooser<'static> {
    Chooser::default()
}
