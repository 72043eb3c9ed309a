//! Token budgets settled from the answer's `usage`, and reserved in a shared store.

use super::*;
use crate::catalog::{CatalogSnapshot, CatalogSource};
use crate::error::RouteError;
use crate::model::{Billing, Provenance};
use crate::ports::{ChatTransport, Clock, FixedCatalog, SharedState};
use crate::quota::TokenPolicy;
use crate::router::{Ports, RouterConfig};
use crate::shared::{
    BudgetUnit, EventSink, ReserveOutcome, ReserveRequest, SharedError, SharedEvent, SharedStatus, TokenOutcome,
    TokenReserve,
};
use crate::upstream::{TransportError, UpstreamResponse};
use bytes::Bytes;
use futures_util::StreamExt;
use std::collections::VecDeque;
use std::sync::{Mutex, Weak};
use std::time::Duration;

// Mid-minute: a charge and its answer fall in one minute.
const T0: Timestamp = Timestamp::from_secs(1_800_000_030);
const MODEL: &str = "groq/m";

struct FixedClock;

#[async_trait::async_trait]
impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        T0
    }
}

/// Answers every request with 17 tokens of usage: a whole answer, or a stream whose
/// last chunk carries it.
struct Upstream;

#[async_trait::async_trait]
impl ChatTransport for Upstream {
    async fn send(&self, _: &ModelId, _: Bytes, stream: bool) -> Result<UpstreamResponse, TransportError> {
        let body = if stream {
            let chunks = [
                "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n",
                "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":5,\"total_tokens\":17}}\n\n",
                "data: [DONE]\n\n",
            ];
            Body::Stream(Box::pin(futures_util::stream::iter(chunks.map(|c| Ok(Bytes::from_static(c.as_bytes()))))))
        } else {
            let json = r#"{"id":"g","choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}"#;
            Body::Full(Bytes::from_static(json.as_bytes()))
        };
        let ct = if stream { "text/event-stream" } else { "application/json" };
        Ok(UpstreamResponse {
            status: 200,
            headers: vec![("content-type", ct.into())],
            body,
            elapsed: Duration::from_millis(1),
        })
    }
}

/// A shared store that answers token reservations from a script.
#[derive(Default)]
struct Store {
    answers: Mutex<VecDeque<Result<TokenOutcome, SharedError>>>,
    asked: Mutex<Vec<TokenReserve>>,
    corrected: Mutex<Vec<TokenCorrection>>,
}

#[async_trait::async_trait]
impl SharedState for Store {
    async fn reserve(&self, _: &ReserveRequest) -> Result<ReserveOutcome, SharedError> {
        Ok(ReserveOutcome::Reserved { minute: 1, day: 1 })
    }
    async fn reserve_tokens(&self, request: &TokenReserve) -> Result<TokenOutcome, SharedError> {
        self.asked.lock().expect("asked").push(request.clone());
        self.answers.lock().expect("answers").pop_front().expect("a scripted answer")
    }
    fn correct_tokens(&self, correction: TokenCorrection) {
        self.corrected.lock().expect("corrected").push(correction);
    }
    fn publish(&self, _: SharedEvent) {}
    fn status(&self) -> SharedStatus {
        SharedStatus { connected: true, instances: 2, ..SharedStatus::default() }
    }
    fn attach(&self, _: Weak<dyn EventSink>) {}
}

fn model() -> ModelInfo {
    let mut m = ModelInfo::new(MODEL);
    m.context_length = Some(131_072);
    m.max_completion_tokens = Some(32_768);
    m.input_modalities = vec!["text".into()];
    m.output_modalities = vec!["text".into()];
    m.provider = Some(Provenance { provider: "groq".into(), upstream_id: "m".into(), billing: Billing::FreeTier });
    m
}

fn router(per_minute: u64, store: Option<&Arc<Store>>) -> Arc<Router> {
    router_of(model(), Arc::new(Upstream), per_minute, store)
}

fn router_of(
    model: ModelInfo,
    transport: Arc<dyn ChatTransport>,
    per_minute: u64,
    store: Option<&Arc<Store>>,
) -> Arc<Router> {
    let snap = CatalogSnapshot::new(vec![model], CatalogSource::Memory, T0);
    let ports =
        Ports { catalog: Arc::new(FixedCatalog(Arc::new(snap))), transport, clock: Arc::new(FixedClock), store: None };
    let mut config = RouterConfig::default();
    let tokens = TokenPolicy { per_minute: Some(per_minute), per_day: None };
    config.providers.insert("groq".into(), ProviderPolicy { tokens, ..ProviderPolicy::default() });
    let router = Router::new(ports, config).expect("router");
    Arc::new(match store {
        Some(s) => router.with_shared(s.clone()),
        None => router,
    })
}

fn request(max_tokens: u64, stream: bool) -> ChatRequest {
    let body = format!(
        r#"{{"model":"{MODEL}","max_tokens":{max_tokens},"stream":{stream},"messages":[{{"role":"user","content":"hi"}}]}}"#
    );
    ChatRequest::from_slice(body.as_bytes()).expect("request")
}

fn used(r: &Router) -> u64 {
    r.health_snapshot().providers.get("groq").map_or(0, |p| p.tokens.minute_used)
}

#[test]
fn a_whole_answer_s_usage_settles_its_charge() {
    let r = router(8_000, None);
    let first = futures_executor::block_on(r.route_metered(&request(7_000, false), 0)).expect("served");
    assert_eq!(first.report.max_tokens, Some(7_000));
    // Charged ~7,000 up front; the answer says 17 were spent.
    assert_eq!(used(&r), 17);
    // So the minute still takes another request of the same size.
    let second = futures_executor::block_on(r.route_metered(&request(7_000, false), 1)).expect("served again");
    assert_eq!(second.report.max_tokens, Some(7_000));
}

#[test]
fn without_settling_the_same_minute_is_spent() {
    // The same two requests through `route`, which counts only the charge: the second is
    // refused, so the test above shows the settling.
    let r = router(8_000, None);
    assert!(futures_executor::block_on(r.route(&request(7_000, false), 0)).is_ok());
    assert!(used(&r) > 7_000);
    let refused = futures_executor::block_on(r.route(&request(7_000, false), 1)).expect_err("spent");
    assert!(matches!(refused.error, RouteError::Quota { .. }), "{:?}", refused.error);
}

#[test]
fn a_stream_s_last_usage_settles_its_charge_when_it_ends() {
    let store = Arc::new(Store::default());
    let r = router(8_000, Some(&store));
    store.answers.lock().expect("answers").push_back(Ok(TokenOutcome::Reserved(vec![(7_005, 7_005)])));
    // The attempt loop reserves the tokens in the store (its one scripted answer).
    let routed = futures_executor::block_on(r.route_metered(&request(7_000, true), 0)).expect("served");
    assert_eq!(store.asked.lock().expect("asked").len(), 1, "reserved once, in the store");
    let charged = used(&r);
    assert!(charged > 7_000, "charged {charged}");
    let Body::Stream(stream) = routed.response.body else { panic!("a stream") };
    let text: Vec<_> = futures_executor::block_on(stream.collect::<Vec<_>>());
    assert_eq!(text.len(), 3, "passed on whole");
    assert_eq!(
        used(&r),
        charged - routed.report.max_tokens.expect("said") - request(7_000, true).requirements().prompt_tokens + 17
    );
    // The store is told too, for the windows of the charge.
    let corrected = store.corrected.lock().expect("corrected");
    assert_eq!(corrected.len(), 1);
    assert_eq!((corrected[0].used, corrected[0].budgets[0].name.as_str()), (17, "groq"));
    assert!(corrected[0].charged > 7_000);
}

/// Answers `/embeddings` with one vector and 3 tokens of usage.
struct Vectors;

#[async_trait::async_trait]
impl ChatTransport for Vectors {
    async fn send(&self, _: &ModelId, _: Bytes, _: bool) -> Result<UpstreamResponse, TransportError> {
        Err(TransportError::new(crate::upstream::ErrorKind::Protocol, "not a chat model"))
    }
    async fn send_to(
        &self,
        _: crate::upstream::Endpoint,
        _: &ModelId,
        _: Bytes,
        _: bool,
    ) -> Result<UpstreamResponse, TransportError> {
        let json = r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.6,0.8]}],"usage":{"prompt_tokens":3,"total_tokens":3}}"#;
        let body = Body::Full(Bytes::from_static(json.as_bytes()));
        Ok(UpstreamResponse { status: 200, headers: Vec::new(), body, elapsed: Duration::from_millis(1) })
    }
}

#[test]
fn an_embeddings_request_is_charged_its_input_and_asks_for_no_output() {
    let mut m = model();
    m.output_modalities = vec!["embeddings".into()];
    let r = router_of(m, Arc::new(Vectors), 8_000, None);
    // `input`'s JSON text is 42 bytes: 11 tokens by the prompt estimate.
    let body = format!(r#"{{"model":"{MODEL}","input":["{}"]}}"#, "a".repeat(38));
    let req = ChatRequest::embeddings(Bytes::from(body), MODEL).expect("request");
    assert_eq!((req.requirements().prompt_tokens, req.requirements().context_needed()), (11, 0));
    // Charged the input up front (not the budget's whole minute, as for a chat request
    // that says no `max_tokens`), and no output asked for.
    let routed = futures_executor::block_on(r.route(&req, 0)).expect("served");
    assert_eq!((used(&r), routed.report.max_tokens), (11, Some(0)));
    // Settled to the answer's usage.
    futures_executor::block_on(r.route_metered(&req, 1)).expect("served");
    assert_eq!(used(&r), 11 + 3);
}

/// Charges `tokens` locally as the pick does (a prompt of none, for round numbers), then
/// asks the store.
fn share(r: &Router, tokens: u64) -> Result<(), (String, ProviderBlock)> {
    let info = r.ports.catalog.snapshot().get(MODEL).expect("listed").info.clone();
    {
        let mut health = r.health();
        health.provider_mut("groq").reserve("groq", &r.provider_policy("groq"), T0).expect("no request limit");
        r.charge_budget(&mut health, &info, tokens, T0);
    }
    let reqs = Requirements { prompt_tokens: 0, ..Requirements::default() };
    futures_executor::block_on(r.share_budget(&info, &reqs, Some(tokens), T0))
}

#[test]
fn the_shared_store_s_count_is_taken_and_its_refusal_gives_the_attempt_back() {
    let store = Arc::new(Store::default());
    let r = router(8_000, Some(&store));
    store.answers.lock().expect("answers").extend([
        Ok(TokenOutcome::Reserved(vec![(6_000, 6_000)])),
        Ok(TokenOutcome::Full { budget: 0, day: false, left: 500 }),
    ]);
    assert_eq!(share(&r, 1_000), Ok(()));
    let asked = store.asked.lock().expect("asked")[0].clone();
    assert_eq!(
        (asked.tokens, asked.budgets[0].name.as_str(), asked.budgets[0].per_minute),
        (1_000, "groq", Some(8_000))
    );
    // Another instance had spent 5,000: the store's count is this instance's now.
    assert_eq!(used(&r), 6_000);
    let requests = |r: &Router| r.health_snapshot().providers["groq"].quota.minute.count;
    assert_eq!(requests(&r), 1);
    let (name, block) = share(&r, 3_000).expect_err("full");
    assert_eq!(name, "groq");
    let ProviderBlock::Quota(QuotaBlock { scope: QuotaScope::Upstream { reason }, until }) = block else {
        panic!("a quota block: {block:?}")
    };
    assert!(reason.contains("500 left this minute"), "{reason}");
    assert_eq!(until, T0.next_minute());
    // The refused attempt is given back, and the store's word raises the local count
    // (another instance spent 1,500 more meanwhile): the pick leaves the budget alone.
    assert_eq!((used(&r), requests(&r)), (7_500, 1));
}

#[test]
fn without_the_store_an_instance_keeps_to_its_share() {
    let store = Arc::new(Store::default());
    let r = router(8_000, Some(&store));
    let down = || Err(SharedError::Unavailable("refused".into()));
    store.answers.lock().expect("answers").extend([Ok(TokenOutcome::Reserved(vec![(2_000, 2_000)])), down(), down()]);
    assert_eq!(share(&r, 2_000), Ok(()));
    // 2,000 counted when it last answered; two instances: 2,000 + 6,000 / 2 = 5,000.
    assert_eq!(share(&r, 3_000), Ok(()));
    assert_eq!(used(&r), 5_000);
    let (_, block) = share(&r, 1).expect_err("share spent");
    assert!(
        matches!(block, ProviderBlock::Quota(QuotaBlock { scope: QuotaScope::Upstream { ref reason }, .. }) if reason.contains("share"))
    );
    assert_eq!(used(&r), 5_000);
}

/// A router whose provider `groq` allows 5 requests a minute (no token budget), sharing
/// state through `store`.
fn router_with_quota(store: &Arc<Store>) -> Arc<Router> {
    let snap = CatalogSnapshot::new(vec![model()], CatalogSource::Memory, T0);
    let catalog = Arc::new(FixedCatalog(Arc::new(snap)));
    let ports = Ports { catalog, transport: Arc::new(Upstream), clock: Arc::new(FixedClock), store: None };
    let mut config = RouterConfig::default();
    let quota = crate::quota::QuotaPolicy { per_minute: Some(5), per_day: None };
    config.providers.insert("groq".into(), ProviderPolicy { quota, ..ProviderPolicy::default() });
    Arc::new(Router::new(ports, config).expect("router").with_shared(store.clone()))
}

/// Reserves one request locally as the pick does, then asks the store (no token budget).
fn share_request(r: &Router) -> Result<(), (String, ProviderBlock)> {
    let info = r.ports.catalog.snapshot().get(MODEL).expect("listed").info.clone();
    r.health().provider_mut("groq").reserve("groq", &r.provider_policy("groq"), T0).map_err(|b| ("local".into(), b))?;
    futures_executor::block_on(r.share_budget(&info, &Requirements::default(), None, T0))
}

fn requests(r: &Router) -> u32 {
    r.health_snapshot().providers["groq"].quota.minute.current(T0.minute())
}

#[test]
fn a_declared_providers_request_quota_is_counted_by_every_instance_together() {
    let store = Arc::new(Store::default());
    let r = router_with_quota(&store);
    store
        .answers
        .lock()
        .expect("answers")
        .extend([Ok(TokenOutcome::Reserved(vec![(3, 3)])), Ok(TokenOutcome::Full { budget: 0, day: false, left: 0 })]);
    assert_eq!(share_request(&r), Ok(()));
    let asked = store.asked.lock().expect("asked")[0].clone();
    let b = &asked.budgets[0];
    assert_eq!(
        (asked.budgets.len(), b.name.as_str(), b.unit, b.per_minute),
        (1, "groq", BudgetUnit::Requests, Some(5))
    );
    // Two requests of other instances this minute: the store's count is this one's now.
    assert_eq!(requests(&r), 3);
    let (name, block) = share_request(&r).expect_err("spent by the others");
    assert_eq!(name, "groq");
    let ProviderBlock::Quota(QuotaBlock { scope: QuotaScope::Upstream { reason }, until }) = block else {
        panic!("a quota block: {block:?}")
    };
    assert!(reason.contains("request quota shared by every instance is spent this minute"), "{reason}");
    assert_eq!(until, T0.next_minute());
    // Given back, then raised to the limit: the provider's other models are passed over
    // here without asking the store again.
    assert_eq!(requests(&r), 5);
    assert!(share_request(&r).is_err_and(|(name, _)| name == "local"));
    assert_eq!(store.asked.lock().expect("asked").len(), 2);
}

#[test]
fn without_the_store_an_instance_keeps_to_its_share_of_the_request_quota() {
    let store = Arc::new(Store::default());
    let r = router_with_quota(&store);
    let down = || Err(SharedError::Unavailable("refused".into()));
    store.answers.lock().expect("answers").extend([Ok(TokenOutcome::Reserved(vec![(1, 1)])), down(), down(), down()]);
    assert_eq!(share_request(&r), Ok(()));
    // 1 counted when it last answered; two instances: 1 + 4 / 2 = 3 for this one.
    assert_eq!(share_request(&r), Ok(()));
    assert_eq!(share_request(&r), Ok(()));
    let (_, block) = share_request(&r).expect_err("share spent");
    assert!(
        matches!(block, ProviderBlock::Quota(QuotaBlock { scope: QuotaScope::Upstream { ref reason }, .. }) if reason.contains("share of the request quota")),
        "{block:?}"
    );
    assert_eq!(requests(&r), 3, "the refused request was given back");
}
