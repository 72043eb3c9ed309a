//! The routing service driven through `mockall` mocks of its four ports: success and the
//! routing report, fallback rules, refusals, cooldowns, quotas, persisted state, stream
//! commit and the `model` rewrite.
//!
//! The `#[automock]` mocks in `ports.rs` exist only for the crate's own unit tests, so the
//! mocks are declared again here with `mock!`.

use bytes::Bytes;
use futures_executor::block_on;
use futures_util::StreamExt;
use mockall::{Sequence, mock};
use router_core::health::HealthState;
use router_core::{
    Body, ByteStream, Catalog, CatalogSnapshot, CatalogSource, ChatRequest, ChatTransport, Clock, CooldownCause,
    ErrorKind, HealthPolicy, ModelId, ModelInfo, Ports, QuotaPolicy, QuotaScope, RouteError, RouteFailure, Routed,
    Router, RouterConfig, StateStore, StoreError, Timestamp, TransportError, UpstreamResponse,
};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;

mock! {
    pub Catalog {}
    impl Catalog for Catalog {
        fn snapshot(&self) -> Arc<CatalogSnapshot>;
    }
}

mock! {
    pub Clock {}
    impl Clock for Clock {
        fn now(&self) -> Timestamp;
    }
}

mock! {
    pub Store {}
    impl StateStore for Store {
        fn load(&self) -> Result<Option<HealthState>, StoreError>;
        fn save(&self, state: &HealthState) -> Result<(), StoreError>;
    }
}

mock! {
    pub Transport {}
    #[async_trait::async_trait]
    impl ChatTransport for Transport {
        async fn send(&self, model: &ModelId, body: Bytes, stream: bool) -> Result<UpstreamResponse, TransportError>;
    }
}

/// Noon UTC of 2027-01-15: on a minute boundary, twelve hours from either midnight.
const T0: Timestamp = Timestamp::from_secs(1_800_000_000 / 86_400 * 86_400 + 12 * 3600);

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn at(offset_secs: u64) -> Timestamp {
    T0.saturating_add(secs(offset_secs))
}

/// The catalog as text: `id context inputs params [flags]` per line, where the flags are
/// `priced` (a non-zero completion price), `router` (tokenizer `Router`) and
/// `expired` (an expiration date before `T0`).
const CATALOG: &str = "
    a/alpha:free      8000    text        tools
    b/beta:free       32000   text,image  tools,tool_choice
    c/gamma:free      128000  text        tools,structured_outputs
    d/delta:free      64000   text        -
    p/paid            128000  text,image  tools,tool_choice,structured_outputs  priced
    q/priced:free     128000  text,image  tools,tool_choice,structured_outputs  priced
    x/expired:free    128000  text,image  tools,tool_choice,structured_outputs  expired
    openrouter/auto   2000000 text,image  tools,tool_choice,structured_outputs  router
";

const PLAIN: [&str; 4] = ["a/alpha:free", "b/beta:free", "c/gamma:free", "d/delta:free"];
const TOOLS: [&str; 3] = ["a/alpha:free", "b/beta:free", "c/gamma:free"];

fn snapshot() -> Arc<CatalogSnapshot> {
    let models = CATALOG
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let mut m = ModelInfo::new(f[0]);
            m.context_length = f[1].parse().ok();
            m.input_modalities = f[2].split(',').map(String::from).collect();
            m.output_modalities = vec!["text".into()];
            m.supported_parameters = f[3].split(',').filter(|p| *p != "-").map(String::from).collect();
            let flags = f.get(4).copied().unwrap_or("");
            m.pricing.0.insert("prompt".into(), json!("0"));
            m.pricing.0.insert("completion".into(), json!(if flags == "priced" { "0.0000004" } else { "0" }));
            if flags == "router" {
                m.tokenizer = Some("Router".into());
            }
            if flags == "expired" {
                m.expiration_date = Some("2026-01-01".into());
            }
            m
        })
        .collect();
    Arc::new(CatalogSnapshot::new(models, CatalogSource::Memory, T0))
}

fn quiet_config(max_attempts: u32) -> RouterConfig {
    RouterConfig {
        max_attempts,
        deadline: secs(120),
        health: HealthPolicy::default(),
        quota: QuotaPolicy::UNLIMITED,
        ..RouterConfig::default()
    }
}

/// A settable clock behind a mockall `Clock`.
#[derive(Clone)]
struct Time(Arc<AtomicU64>);

impl Time {
    fn set(&self, t: Timestamp) {
        self.0.store(t.as_millis(), Ordering::SeqCst);
    }
}

/// Builds a router over the fixture catalog with the given transport (and store), and the
/// handle that moves its clock, which starts at `T0`.
fn router(transport: impl ChatTransport + 'static, store: Option<MockStore>, config: RouterConfig) -> (Router, Time) {
    let time = Time(Arc::new(AtomicU64::new(T0.as_millis())));
    let mut clock = MockClock::new();
    let t = time.clone();
    clock.expect_now().returning(move || Timestamp::from_millis(t.0.load(Ordering::SeqCst)));
    let mut catalog = MockCatalog::new();
    let snap = snapshot();
    catalog.expect_snapshot().returning(move || snap.clone());
    let ports = Ports {
        catalog: Arc::new(catalog),
        transport: Arc::new(transport),
        clock: Arc::new(clock),
        store: store.map(|s| Arc::new(s) as Arc<dyn StateStore>),
    };
    (Router::new(ports, config).expect("router"), time)
}

fn request(body: Value) -> ChatRequest {
    ChatRequest::from_value(body).expect("valid fixture request")
}

fn plain() -> ChatRequest {
    request(json!({"model": "openrouter/free", "messages": [{"role": "user", "content": "hi"}]}))
}

fn with_tools() -> ChatRequest {
    request(json!({
        "model": "openrouter/free",
        "messages": [{"role": "user", "content": "weather?"}],
        "tools": [{"type": "function", "function": {"name": "weather", "parameters": {}}}],
    }))
}

fn full(body: &str) -> Result<UpstreamResponse, TransportError> {
    Ok(UpstreamResponse {
        status: 200,
        headers: vec![("content-type", "application/json".into())],
        body: Body::Full(Bytes::from(body.to_owned())),
        elapsed: Duration::from_millis(5),
    })
}

fn answer() -> Result<UpstreamResponse, TransportError> {
    full(r#"{"id":"gen-1","model":"some-upstream-name","choices":[{"message":{"content":"hello"}}]}"#)
}

fn failure(kind: ErrorKind, status: Option<u16>) -> TransportError {
    let mut e = TransportError::new(kind, "upstream says no").with_elapsed(Duration::from_millis(3));
    e.status = status;
    e
}

fn stream(items: Vec<Result<&'static str, TransportError>>) -> Result<UpstreamResponse, TransportError> {
    let items: Vec<Result<Bytes, TransportError>> =
        items.into_iter().map(|i| i.map(|s| Bytes::from_static(s.as_bytes()))).collect();
    let body: ByteStream = Box::pin(futures_util::stream::iter(items));
    Ok(UpstreamResponse {
        status: 200,
        headers: vec![("content-type", "text/event-stream".into())],
        body: Body::Stream(body),
        elapsed: Duration::from_millis(5),
    })
}

/// The models a transport was called with, in order.
type Calls = Arc<Mutex<Vec<String>>>;

/// A transport whose answer to each call is `script(call_index, model)`; records the calls.
fn scripted(
    script: impl Fn(usize, &str) -> Result<UpstreamResponse, TransportError> + Send + Sync + 'static,
) -> (MockTransport, Calls) {
    let calls: Calls = Arc::default();
    let seen = calls.clone();
    let mut t = MockTransport::new();
    t.expect_send().returning(move |model, _body, _stream| {
        let mut seen = seen.lock().expect("calls");
        seen.push(model.to_string());
        script(seen.len() - 1, model.as_str())
    });
    (t, calls)
}

fn calls(c: &Calls) -> Vec<String> {
    c.lock().expect("calls").clone()
}

fn route(r: &Router, req: &ChatRequest, seed: u64) -> Result<Routed, RouteFailure> {
    block_on(r.route(req, seed))
}

fn attempts(report: &router_core::RouteReport) -> Vec<(String, Option<ErrorKind>)> {
    report.attempts.iter().map(|a| (a.model.to_string(), a.failure)).collect()
}

fn body_json(resp: &UpstreamResponse) -> Value {
    match &resp.body {
        Body::Full(b) => serde_json::from_slice(b).expect("json body"),
        Body::Stream(_) => panic!("expected a whole body"),
    }
}

/// Drains a routed stream into its text.
fn drain(routed: Routed) -> String {
    let Body::Stream(s) = routed.response.body else { panic!("expected a stream") };
    let chunks: Vec<Result<Bytes, TransportError>> = block_on(s.collect());
    let bytes: Vec<u8> = chunks.into_iter().flat_map(|c| c.expect("routed streams end in-band").to_vec()).collect();
    String::from_utf8(bytes).expect("utf-8 stream")
}

/// The JSON payloads of a stream's `data:` lines (`[DONE]` as a string).
fn events(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|p| serde_json::from_str(p).unwrap_or_else(|_| Value::String(p.to_owned())))
        .collect()
}

fn expect_failure(result: Result<Routed, RouteFailure>) -> RouteFailure {
    match result {
        Ok(r) => panic!("expected a failure, got an answer from {:?}", r.report.model),
        Err(f) => f,
    }
}

#[test]
fn success_names_the_model_and_the_attempt_count() {
    let mut t = MockTransport::new();
    t.expect_send()
        .times(1)
        .withf(|model, body, stream| {
            let body: Value = serde_json::from_slice(body).expect("forwarded body is json");
            model.as_str() == "b/beta:free"
                && !*stream
                && body["model"] == "b/beta:free"
                && body.get("models").is_none()
                && body.get("route").is_none()
                && body["temperature"] == 0.5
        })
        .returning(|_, _, _| answer());
    let (r, _) = router(t, None, quiet_config(3));
    // Only b/beta takes image input.
    let req = request(json!({
        "model": "openrouter/free", "models": ["openrouter/free"], "route": "fallback", "temperature": 0.5,
        "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}]}],
    }));
    let routed = route(&r, &req, 7).expect("routed");
    assert_eq!(routed.report.model, Some(ModelId::new("b/beta:free")));
    assert_eq!(routed.report.candidates, 1);
    assert_eq!(attempts(&routed.report), [("b/beta:free".to_owned(), None)]);
    assert_eq!(routed.report.upstream_time(), Duration::from_millis(5));
    let body = body_json(&routed.response);
    assert_eq!(body["model"], "b/beta:free", "the answer names the model that answered");
    assert_eq!(body["id"], "gen-1");
    assert_eq!(body["choices"][0]["message"]["content"], "hello");
}

#[test]
fn the_model_is_written_into_bodies_that_lack_it() {
    let (t, _) = scripted(|_, _| full(r#"{"id":"gen-2","choices":[{"message":{"content":"x"}}]}"#));
    let (r, _) = router(t, None, quiet_config(3));
    let routed = route(&r, &plain(), 1).expect("routed");
    let chosen = routed.report.model.clone().expect("a model").to_string();
    let choices = json!([{"message": {"content": "x"}}]);
    assert_eq!(body_json(&routed.response), json!({"id": "gen-2", "choices": choices, "model": chosen}));
}

#[test]
fn retryable_failures_fall_back_to_another_candidate() {
    let cases = [
        (ErrorKind::RateLimitedModel, Some(429)),
        (ErrorKind::ModelUnavailable, Some(404)),
        (ErrorKind::ServerError, Some(500)),
        (ErrorKind::ServerError, Some(502)),
        (ErrorKind::ServerError, Some(503)),
        (ErrorKind::Timeout, None),
    ];
    for (kind, status) in cases {
        for seed in 0..10 {
            let (t, c) = scripted(move |i, _| if i == 0 { Err(failure(kind, status)) } else { answer() });
            let (r, _) = router(t, None, quiet_config(3));
            let routed = route(&r, &with_tools(), seed).expect("the second model answers");
            let c = calls(&c);
            assert_eq!(c.len(), 2, "{kind} seed {seed}");
            assert_ne!(c[0], c[1], "{kind} seed {seed}: fell back to the model that failed");
            assert!(c.iter().all(|m| TOOLS.contains(&m.as_str())), "{kind}: {c:?} are not all candidates");
            assert_eq!(attempts(&routed.report), [(c[0].clone(), Some(kind)), (c[1].clone(), None)]);
            assert_eq!(routed.report.model.as_ref().map(ModelId::as_str), Some(c[1].as_str()));
        }
    }
}

#[test]
fn fallback_never_returns_to_a_model_already_tried() {
    for seed in 0..20 {
        let mut t = MockTransport::new();
        let seen: Calls = Arc::default();
        let s = seen.clone();
        t.expect_send().times(4).returning(move |m, _, _| {
            s.lock().expect("calls").push(m.to_string());
            Err(failure(ErrorKind::ServerError, Some(502)))
        });
        let (r, _) = router(t, None, quiet_config(10));
        let f = expect_failure(route(&r, &plain(), seed));
        let c = calls(&seen);
        let distinct: BTreeSet<&str> = c.iter().map(String::as_str).collect();
        assert_eq!(distinct, BTreeSet::from(PLAIN), "seed {seed}: every candidate once, none twice: {c:?}");
        assert_eq!(f.report.attempts.len(), 4);
        assert_eq!(f.error.status(), 502);
        match &f.error {
            RouteError::Upstream { model, error } => {
                assert_eq!(model.as_str(), c[3], "the last error is reported");
                assert_eq!(error.kind, ErrorKind::ServerError);
            }
            other => panic!("unexpected error {other:?}"),
        }
    }
}

#[test]
fn non_retryable_errors_are_returned_without_retry() {
    let cases = [
        (ErrorKind::BadRequest, Some(400), 400),
        (ErrorKind::BadRequest, Some(422), 422),
        (ErrorKind::Auth, Some(401), 401),
        (ErrorKind::Auth, Some(402), 402),
        (ErrorKind::Auth, None, 401),
    ];
    for (kind, status, shown) in cases {
        let mut t = MockTransport::new();
        t.expect_send().times(1).returning(move |_, _, _| Err(failure(kind, status)));
        let (r, _) = router(t, None, quiet_config(5));
        let f = expect_failure(route(&r, &plain(), 3));
        assert_eq!(f.report.attempts.len(), 1, "{kind}");
        assert_eq!(f.error.status(), shown, "{kind}");
        assert!(matches!(&f.error, RouteError::Upstream { error, .. } if error.kind == kind), "{:?}", f.error);
        let json = f.error.to_json();
        assert_eq!(json["error"]["code"], shown);
        assert_eq!(json["error"]["metadata"]["error_type"], kind.as_str());
    }
}

#[test]
fn context_too_long_retries_only_larger_context_models() {
    let ctx = |id: &str| snapshot().get(id).and_then(|e| e.info.context_length).expect("fixture context");
    let mut first_models = BTreeSet::new();
    for seed in 0..40 {
        let (t, c) = scripted(|_, _| Err(failure(ErrorKind::ContextTooLong, Some(400))));
        let (r, _) = router(t, None, quiet_config(10));
        let f = expect_failure(route(&r, &plain(), seed));
        let c = calls(&c);
        let contexts: Vec<u64> = c.iter().map(|m| ctx(m)).collect();
        assert!(contexts.windows(2).all(|w| w[0] < w[1]), "seed {seed}: {c:?} {contexts:?}");
        assert_eq!(c.last().map(String::as_str), Some("c/gamma:free"), "seed {seed}: ends at the largest context");
        assert_eq!(f.error.status(), 400);
        first_models.insert(c[0].clone());
    }
    assert_eq!(first_models.len(), 4, "the seeds started from every candidate: {first_models:?}");
}

#[test]
fn a_models_list_is_tried_in_order() {
    let mut t = MockTransport::new();
    let mut seq = Sequence::new();
    let step = |t: &mut MockTransport, seq: &mut Sequence, id: &'static str, kind: Option<ErrorKind>| {
        t.expect_send().times(1).in_sequence(seq).withf(move |m, _, _| m.as_str() == id).returning(move |_, _, _| {
            match kind {
                Some(k) => Err(failure(k, None)),
                None => answer(),
            }
        });
    };
    step(&mut t, &mut seq, "c/gamma:free", Some(ErrorKind::ServerError));
    step(&mut t, &mut seq, "a/alpha:free", Some(ErrorKind::RateLimitedModel));
    step(&mut t, &mut seq, "d/delta:free", None);
    let (r, _) = router(t, None, quiet_config(3));
    let req = request(json!({
        "model": "c/gamma:free", "models": ["a/alpha:free", "d/delta:free", "b/beta:free"],
        "messages": [{"role": "user", "content": "hi"}],
    }));
    let routed = route(&r, &req, 99).expect("d answers");
    assert_eq!(
        attempts(&routed.report),
        [
            ("c/gamma:free".to_owned(), Some(ErrorKind::ServerError)),
            ("a/alpha:free".to_owned(), Some(ErrorKind::RateLimitedModel)),
            ("d/delta:free".to_owned(), None),
        ]
    );
}

#[test]
fn a_models_list_ending_in_the_router_falls_back_to_any_other_candidate() {
    for seed in 0..20 {
        let (t, c) = scripted(|i, _| if i == 0 { Err(failure(ErrorKind::ServerError, Some(500))) } else { answer() });
        let (r, _) = router(t, None, quiet_config(3));
        let req = request(json!({
            "models": ["d/delta:free", "openrouter/free"], "messages": [{"role": "user", "content": "hi"}],
        }));
        route(&r, &req, seed).expect("routed");
        let c = calls(&c);
        assert_eq!(c[0], "d/delta:free");
        assert!(c[1] != "d/delta:free" && PLAIN.contains(&c[1].as_str()), "seed {seed}: {c:?}");
    }
}

#[test]
fn paid_router_expired_and_unknown_ids_are_refused_and_never_forwarded() {
    let cases: [(Value, &str, &str); 7] = [
        (json!({"model": "p/paid"}), "paid_model_refused", "not a :free variant, non-zero price for completion"),
        (json!({"model": "q/priced:free"}), "paid_model_refused", "non-zero price for completion"),
        (json!({"model": "x/expired:free"}), "paid_model_refused", "free variant expired on 2026-01-01"),
        (json!({"model": "openrouter/auto"}), "paid_model_refused", "a router model"),
        (json!({"model": "a/alpha:free", "models": ["b/beta:free", "p/paid"]}), "paid_model_refused", "p/paid"),
        (json!({"model": "nobody/nothing:free"}), "unknown_model", "not in the catalog"),
        (json!({"models": ["openrouter/free", "nobody/nothing"]}), "unknown_model", "nobody/nothing"),
    ];
    for (fields, error_type, says) in cases {
        let mut t = MockTransport::new();
        t.expect_send().never();
        let (r, _) = router(t, None, quiet_config(3));
        let mut body = fields.clone();
        body["messages"] = json!([{"role": "user", "content": "hi"}]);
        let req = request(body);
        let f = expect_failure(route(&r, &req, 0));
        assert!(f.report.attempts.is_empty());
        assert_eq!(f.error.status(), 400, "{fields}");
        assert_eq!(f.error.error_type(), error_type, "{fields}");
        let message = f.error.to_string();
        assert!(message.contains(says), "{fields}: {message}");
        let json = f.error.to_json();
        assert_eq!(json["error"]["code"], 400);
        assert_eq!(json["error"]["message"], message);
        // The explanation refuses the same way, and does not forward either.
        assert_eq!(r.explain(&req, 0).err().map(|e| e.error_type()), Some(error_type));
    }
}

#[test]
fn a_rate_limited_model_is_not_picked_again_before_its_time() {
    let (t, c) = scripted(|i, _| {
        if i == 0 { Err(failure(ErrorKind::RateLimitedModel, Some(429)).with_retry_after(secs(30))) } else { answer() }
    });
    let (r, time) = router(t, None, quiet_config(3));
    route(&r, &plain(), 0).expect("the fallback answers");
    let limited = calls(&c)[0].clone();
    let cooling = r.cooldowns();
    assert_eq!(cooling.len(), 1);
    assert_eq!(cooling[0].0.as_str(), limited);
    assert_eq!((cooling[0].1.cause, cooling[0].1.until), (CooldownCause::RateLimited, Some(at(30))));

    time.set(at(10));
    let before = calls(&c).len();
    for seed in 1..=40 {
        route(&r, &plain(), seed).expect("routed");
    }
    let during = &calls(&c)[before..];
    assert_eq!(during.len(), 40, "one call per request");
    assert!(!during.contains(&limited), "{limited} was picked while cooling down");

    time.set(at(30));
    assert!(r.cooldowns().is_empty());
    let before = calls(&c).len();
    for seed in 1..=40 {
        route(&r, &plain(), seed).expect("routed");
    }
    assert!(calls(&c)[before..].contains(&limited), "{limited} is a candidate again once its cooldown ends");
}

#[test]
fn when_every_candidate_cools_down_the_answer_is_429_until_the_earliest_recovery() {
    let retry = |m: &str| match m {
        "a/alpha:free" => 40,
        "b/beta:free" => 20,
        _ => 60,
    };
    let mut t = MockTransport::new();
    let seen: Calls = Arc::default();
    let s = seen.clone();
    t.expect_send().times(4).returning(move |m, _, _| {
        let mut s = s.lock().expect("calls");
        s.push(m.to_string());
        if s.len() <= 3 {
            Err(failure(ErrorKind::RateLimitedModel, Some(429)).with_retry_after(secs(retry(m.as_str()))))
        } else {
            answer()
        }
    });
    let (r, time) = router(t, None, quiet_config(3));
    let f = expect_failure(route(&r, &with_tools(), 5));
    assert_eq!(f.error.status(), 429);
    assert_eq!(calls(&seen).len(), 3);

    time.set(at(5));
    let f = expect_failure(route(&r, &with_tools(), 6));
    assert!(f.report.attempts.is_empty());
    assert_eq!(f.error.status(), 429);
    assert_eq!(f.error.retry_after(), Some(secs(15)), "b/beta recovers first, at T0+20s");
    assert!(matches!(f.error, RouteError::AllCoolingDown { until, .. } if until == at(20)), "{:?}", f.error);
    assert_eq!(f.error.to_json()["error"]["metadata"]["retry_at"], at(20).to_string());
    assert_eq!(calls(&seen).len(), 3, "nothing was sent while every candidate cooled down");

    time.set(at(20));
    let routed = route(&r, &with_tools(), 7).expect("b/beta is back");
    assert_eq!(routed.report.model, Some(ModelId::new("b/beta:free")));
}

fn quota_config(per_minute: Option<u32>, per_day: Option<u32>) -> RouterConfig {
    RouterConfig {
        max_attempts: 3,
        deadline: secs(120),
        health: HealthPolicy::default(),
        quota: QuotaPolicy { per_minute, per_day },
        ..RouterConfig::default()
    }
}

#[test]
fn the_per_minute_quota_stops_upstream_calls_until_the_next_minute() {
    let mut t = MockTransport::new();
    t.expect_send().times(3).returning(|_, _, _| answer());
    let (r, time) = router(t, None, quota_config(Some(2), None));
    time.set(at(15));
    route(&r, &plain(), 1).expect("first");
    route(&r, &plain(), 2).expect("second");
    let f = expect_failure(route(&r, &plain(), 3));
    assert_eq!(f.error.status(), 429);
    assert_eq!(f.error.retry_after(), Some(secs(45)));
    assert!(
        matches!(&f.error, RouteError::Quota { block, .. } if block.scope == QuotaScope::Minute { limit: 2 }),
        "{:?}",
        f.error
    );
    assert_eq!(r.quota_report().minute_used, 2);
    time.set(at(60));
    route(&r, &plain(), 4).expect("a new minute");
}

#[test]
fn the_quota_counts_upstream_calls_not_requests() {
    let mut t = MockTransport::new();
    let mut n = 0;
    t.expect_send().times(2).returning(move |_, _, _| {
        n += 1;
        if n == 1 { Err(failure(ErrorKind::ServerError, Some(500))) } else { answer() }
    });
    let (r, _) = router(t, None, quota_config(Some(2), None));
    let routed = route(&r, &plain(), 1).expect("second attempt answers");
    assert_eq!(routed.report.attempts.len(), 2);
    let f = expect_failure(route(&r, &plain(), 2));
    assert_eq!(f.error.error_type(), "quota_exceeded");
    assert_eq!(f.error.retry_after(), Some(secs(60)));
}

#[test]
fn the_per_day_quota_stops_upstream_calls_until_midnight_utc() {
    let mut t = MockTransport::new();
    t.expect_send().times(4).returning(|_, _, _| answer());
    let (r, time) = router(t, None, quota_config(None, Some(3)));
    let an_hour_to_midnight = T0.next_utc_midnight().as_secs() - 3600;
    time.set(Timestamp::from_secs(an_hour_to_midnight));
    for seed in 0..3 {
        route(&r, &plain(), seed).expect("within the day's quota");
    }
    let f = expect_failure(route(&r, &plain(), 3));
    assert_eq!(f.error.retry_after(), Some(secs(3600)));
    assert!(
        matches!(&f.error, RouteError::Quota { block, .. } if block.scope == QuotaScope::Day { limit: 3 }),
        "{:?}",
        f.error
    );
    assert_eq!(f.error.to_json()["error"]["metadata"]["retry_at"], T0.next_utc_midnight().to_string());
    time.set(T0.next_utc_midnight());
    route(&r, &plain(), 4).expect("a new day");
}

#[test]
fn the_daily_cap_error_blocks_the_account_until_it_resets() {
    let mut t = MockTransport::new();
    let mut n = 0;
    t.expect_send().times(2).returning(move |_, _, _| {
        n += 1;
        if n == 1 { Err(failure(ErrorKind::DailyCapReached, Some(429)).with_reset_at(at(7200))) } else { answer() }
    });
    let (r, time) = router(t, None, quiet_config(3));
    let f = expect_failure(route(&r, &plain(), 1));
    assert_eq!(f.report.attempts.len(), 1, "an account-wide limit is not retried on another model");
    assert_eq!(f.error.status(), 429);
    assert_eq!(f.error.retry_after(), Some(secs(7200)));
    assert!(matches!(&f.error, RouteError::Quota { block, .. } if matches!(block.scope, QuotaScope::Upstream { .. })));

    time.set(at(3600));
    let f = expect_failure(route(&r, &plain(), 2));
    assert!(f.report.attempts.is_empty(), "the blocked account sends nothing");
    assert_eq!(f.error.retry_after(), Some(secs(3600)));

    time.set(at(7200));
    route(&r, &plain(), 3).expect("the cap has reset");
}

#[test]
fn the_account_rate_limit_blocks_for_its_retry_after() {
    let mut t = MockTransport::new();
    t.expect_send()
        .times(1)
        .returning(|_, _, _| Err(failure(ErrorKind::RateLimitedAccount, Some(429)).with_retry_after(secs(20))));
    let (r, _) = router(t, None, quiet_config(3));
    let f = expect_failure(route(&r, &plain(), 1));
    assert_eq!(f.error.retry_after(), Some(secs(20)));
    let f = expect_failure(route(&r, &plain(), 2));
    assert_eq!(f.error.retry_after(), Some(secs(20)));
    assert!(f.report.attempts.is_empty());
}

#[test]
fn state_is_loaded_from_the_store() {
    let policy = HealthPolicy::default();
    let mut saved = HealthState::default();
    let alpha = ModelId::new("a/alpha:free");
    let limited = TransportError::new(ErrorKind::RateLimitedModel, "x").with_retry_after(secs(100));
    saved.record_failure(&alpha, &limited, &policy, T0);
    let mut store = MockStore::new();
    store.expect_load().times(1).returning(move || Ok(Some(saved.clone())));
    let (t, c) = scripted(|_, _| answer());
    let (r, _) = router(t, Some(store), quiet_config(3));
    assert_eq!(r.cooldowns().first().map(|(id, _)| id.as_str()), Some("a/alpha:free"));
    for seed in 0..40 {
        route(&r, &plain(), seed).expect("routed");
    }
    assert!(!calls(&c).iter().any(|m| m == "a/alpha:free"), "the loaded cooldown is respected");
    let why = r.explain(&plain(), 0).expect("explained");
    assert_eq!(why.cooling.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["a/alpha:free"]);
}

#[test]
fn a_restart_does_not_reset_the_days_count() {
    let unlimited = QuotaPolicy::UNLIMITED;
    let mut saved = HealthState::default();
    for _ in 0..50 {
        saved.reserve(&unlimited, T0).expect("unlimited");
    }
    let mut store = MockStore::new();
    store.expect_load().returning(move || Ok(Some(saved.clone())));
    let mut t = MockTransport::new();
    t.expect_send().never();
    let (r, _) = router(t, Some(store), quota_config(None, Some(50)));
    let f = expect_failure(route(&r, &plain(), 0));
    assert!(matches!(&f.error, RouteError::Quota { block, .. } if block.scope == QuotaScope::Day { limit: 50 }));
}

#[test]
fn state_changes_are_persisted_once_per_change() {
    let mut store = MockStore::new();
    store.expect_load().times(1).returning(|| Ok(None));
    store
        .expect_save()
        .times(1)
        .withf(|s| {
            let beta = s.models.get("b/beta:free").expect("b/beta's cooldown is saved");
            beta.rate_limited_until == Some(at(30)) && s.quota.day.count == 1 && s.quota.minute.count == 1
        })
        .returning(|_| Ok(()));
    let mut t = MockTransport::new();
    t.expect_send()
        .times(1)
        .returning(|_, _, _| Err(failure(ErrorKind::RateLimitedModel, Some(429)).with_retry_after(secs(30))));
    let (r, _) = router(t, Some(store), quota_config(Some(20), Some(50)));
    let image = request(json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]}));
    expect_failure(route(&r, &image, 0));
    assert_eq!(r.persist(), Ok(true));
    assert_eq!(r.persist(), Ok(false), "nothing changed since the last save");
}

#[test]
fn a_failed_save_is_retried_and_a_failed_load_is_an_error() {
    let mut store = MockStore::new();
    store.expect_load().returning(|| Ok(None));
    let mut seq = Sequence::new();
    store.expect_save().times(1).in_sequence(&mut seq).returning(|_| Err(StoreError("disk full".into())));
    store.expect_save().times(1).in_sequence(&mut seq).returning(|_| Ok(()));
    let (t, _) = scripted(|_, _| answer());
    let (r, _) = router(t, Some(store), quota_config(Some(20), Some(50)));
    route(&r, &plain(), 0).expect("routed");
    assert_eq!(r.persist(), Err(StoreError("disk full".into())));
    assert_eq!(r.save_status(), (1, Some("state store: disk full".into())), "counted and shown");
    assert_eq!(r.persist(), Ok(true), "still dirty after a failed save");
    assert_eq!(r.save_status(), (1, None), "cleared by the save that succeeds");

    let mut broken = MockStore::new();
    broken.expect_load().returning(|| Err(StoreError("corrupt state file".into())));
    let mut catalog = MockCatalog::new();
    catalog.expect_snapshot().returning(snapshot);
    let mut clock = MockClock::new();
    clock.expect_now().returning(|| T0);
    let ports = Ports {
        catalog: Arc::new(catalog),
        transport: Arc::new(MockTransport::new()),
        clock: Arc::new(clock),
        store: Some(Arc::new(broken)),
    };
    assert_eq!(Router::new(ports, quiet_config(3)).err(), Some(StoreError("corrupt state file".into())));
}

#[test]
fn without_a_store_nothing_is_persisted() {
    let (t, _) = scripted(|_, _| answer());
    let (r, _) = router(t, None, quiet_config(3));
    route(&r, &plain(), 0).expect("routed");
    assert_eq!(r.persist(), Ok(false));
}

fn stream_request() -> ChatRequest {
    request(json!({"model": "openrouter/free", "stream": true, "messages": [{"role": "user", "content": "hi"}]}))
}

const HEL: &str =
    "data: {\"id\":\"1\",\"model\":\"upstream-name\",\"choices\":[{\"delta\":{\"content\":\"hel\"}}]}\n\n";
const LO: &str = "data: {\"id\":\"1\",\"model\":\"upstream-name\",\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n\n";
const DONE: &str = "data: [DONE]\n\n";

fn content(events: &[Value]) -> String {
    events.iter().filter_map(|e| e["choices"][0]["delta"]["content"].as_str()).collect()
}

#[test]
fn an_error_as_the_first_stream_event_falls_back() {
    let firsts: [fn() -> Result<UpstreamResponse, TransportError>; 3] = [
        || {
            stream(vec![
                Ok(": OPENROUTER PROCESSING\n\n"),
                Ok("data: {\"error\":{\"code\":429,\"message\":\"rate limited upstream\"}}\n\n"),
            ])
        },
        || stream(vec![Err(failure(ErrorKind::Connection, None))]),
        || stream(vec![Ok("data: {\"model\":\"x\",\"error\":{\"code\":502,\"mess"), Ok("age\":\"bad gateway\"}}\n\n")]),
    ];
    let kinds = [ErrorKind::RateLimitedModel, ErrorKind::Connection, ErrorKind::ServerError];
    for (first, kind) in firsts.into_iter().zip(kinds) {
        let mut t = MockTransport::new();
        let mut seq = Sequence::new();
        t.expect_send().times(1).in_sequence(&mut seq).withf(|_, _, s| *s).returning(move |_, _, _| first());
        t.expect_send()
            .times(1)
            .in_sequence(&mut seq)
            .withf(|_, _, s| *s)
            .returning(|_, _, _| stream(vec![Ok(HEL), Ok(LO), Ok(DONE)]));
        let (r, _) = router(t, None, quiet_config(3));
        let routed = route(&r, &stream_request(), 11).expect("the second model streams");
        let failed = routed.report.attempts[0].model.clone();
        let chosen = routed.report.model.clone().expect("a model");
        assert_ne!(failed, chosen);
        assert_eq!(attempts(&routed.report)[0].1, Some(kind));
        let text = drain(routed);
        let ev = events(&text);
        assert_eq!(content(&ev), "hello");
        assert!(ev.iter().filter(|e| e.is_object()).all(|e| e["model"] == chosen.as_str()), "{text}");
        assert_eq!(ev.last(), Some(&json!("[DONE]")));
        assert!(!text.contains("error"), "nothing of the failed attempt reaches the client: {text}");
        assert_eq!(r.stream_errors(), 0);
    }
}

#[test]
fn a_mid_stream_failure_after_content_becomes_an_in_band_error_chunk() {
    let mut t = MockTransport::new();
    t.expect_send()
        .times(1)
        .returning(|_, _, _| stream(vec![Ok(HEL), Err(failure(ErrorKind::Connection, None).with_status(502))]));
    let (r, _) = router(t, None, quiet_config(3));
    let routed = route(&r, &stream_request(), 4).expect("committed");
    let chosen = routed.report.model.clone().expect("a model");
    assert_eq!(routed.report.attempts.len(), 1);
    let text = drain(routed);
    let ev = events(&text);
    assert_eq!(ev.len(), 3, "{text}");
    assert_eq!(ev[0]["model"], chosen.as_str());
    assert_eq!(ev[0]["choices"][0]["delta"]["content"], "hel");
    assert_eq!(ev[1]["model"], chosen.as_str());
    assert_eq!(ev[1]["error"]["code"], 502);
    assert_eq!(ev[1]["error"]["message"], "upstream says no");
    assert_eq!(ev[1]["choices"][0]["finish_reason"], "error");
    assert_eq!(ev[2], "[DONE]");
    assert_eq!(r.stream_errors(), 1);
}

#[test]
fn an_in_band_error_event_after_content_is_passed_on_with_the_model_rewritten() {
    let mut t = MockTransport::new();
    t.expect_send().times(1).returning(|_, _, _| {
        stream(vec![
            Ok(HEL),
            Ok("data: {\"model\":\"up\",\"error\":{\"code\":502,\"message\":\"provider died\"},\"choices\":[{\"finish_reason\":\"error\"}]}\n\n"),
            Ok(DONE),
        ])
    });
    let (r, _) = router(t, None, quiet_config(3));
    let routed = route(&r, &stream_request(), 4).expect("committed");
    let chosen = routed.report.model.clone().expect("a model");
    let ev = events(&drain(routed));
    assert_eq!(ev.len(), 3);
    assert_eq!(ev[1]["model"], chosen.as_str());
    assert_eq!(ev[1]["error"]["message"], "provider died");
    assert_eq!(r.stream_errors(), 1);
}

#[test]
fn an_error_body_with_status_200_falls_back() {
    let (t, c) =
        scripted(
            |i, _| {
                if i == 0 { full(r#"{"error":{"code":503,"message":"provider overloaded"}}"#) } else { answer() }
            },
        );
    let (r, _) = router(t, None, quiet_config(3));
    let routed = route(&r, &plain(), 2).expect("the second model answers");
    assert_eq!(calls(&c).len(), 2);
    assert_eq!(attempts(&routed.report)[0].1, Some(ErrorKind::ServerError));
}

/// Holds the first call to `held` until a second call to it has answered, the way a
/// request that picked a model waits on the wire while a concurrent one is refused first.
struct Racing {
    held: &'static str,
    calls: Calls,
    script: fn(&str) -> Result<UpstreamResponse, TransportError>,
    gate: Mutex<(bool, Option<Waker>)>,
}

#[async_trait::async_trait]
impl ChatTransport for Racing {
    async fn send(&self, model: &ModelId, _body: Bytes, _stream: bool) -> Result<UpstreamResponse, TransportError> {
        let nth = {
            let mut calls = self.calls.lock().expect("calls");
            calls.push(model.to_string());
            calls.iter().filter(|m| *m == self.held).count()
        };
        if model.as_str() == self.held && nth == 1 {
            std::future::poll_fn(|cx| {
                let mut gate = self.gate.lock().expect("gate");
                if gate.0 {
                    return Poll::Ready(());
                }
                gate.1 = Some(cx.waker().clone());
                Poll::Pending
            })
            .await;
        } else if model.as_str() == self.held {
            let mut gate = self.gate.lock().expect("gate");
            gate.0 = true;
            if let Some(w) = gate.1.take() {
                w.wake();
            }
        }
        (self.script)(model.as_str())
    }
}

#[test]
fn a_rate_limit_another_request_found_first_does_not_use_up_the_attempts() {
    let seen: Calls = Arc::default();
    let transport = Racing {
        held: "a/alpha:free",
        calls: seen.clone(),
        script: |model| {
            if model == "c/gamma:free" { answer() } else { Err(failure(ErrorKind::RateLimitedModel, Some(429))) }
        },
        gate: Mutex::default(),
    };
    let (r, _) = router(transport, None, quiet_config(2));
    let listed = request(json!({
        "model": "a/alpha:free",
        "models": ["a/alpha:free", "b/beta:free", "c/gamma:free"],
        "messages": [{"role": "user", "content": "hi"}],
    }));
    let alone = request(json!({"model": "a/alpha:free", "messages": [{"role": "user", "content": "hi"}]}));
    // `listed` picks alpha and waits; `alone` is refused by alpha, which starts its cooldown;
    // then `listed` gets its own 429 from alpha, a model already known to be cooling.
    let (first, second) = block_on(futures_util::future::join(r.route(&listed, 1), r.route(&alone, 2)));
    assert_eq!(expect_failure(second).error.status(), 429);
    let routed = first.expect("two attempts that count are enough to reach gamma");
    let report: Vec<_> = routed.report.attempts.iter().map(|a| (a.model.as_str(), a.failure, a.raced)).collect();
    assert_eq!(
        report,
        [
            ("a/alpha:free", Some(ErrorKind::RateLimitedModel), true),
            ("b/beta:free", Some(ErrorKind::RateLimitedModel), false),
            ("c/gamma:free", None, false),
        ]
    );
    assert_eq!(calls(&seen), ["a/alpha:free", "a/alpha:free", "b/beta:free", "c/gamma:free"]);
    // The two refusals from alpha are one rate limit: the base backoff, not a doubled one.
    let alpha = r.cooldowns().into_iter().find(|(id, _)| id.as_str() == "a/alpha:free").map(|(_, c)| c.until);
    assert_eq!(alpha, Some(Some(at(30))));
}
