//! Routing that loses no request while a model can answer: attempts budgeted by what
//! they cost, short waits instead of a 429, sticky sessions by rendezvous hashing, and
//! the opt-in quality-weighted pick; driven through a scripted fake transport and a
//! fake clock (no real time passes, no tokio).

use bytes::Bytes;
use futures_executor::block_on;
use futures_util::future::join_all;
use proptest::prelude::*;
use router_core::select::{pick_weighted, rng_from_seed};
use router_core::sticky::rendezvous;
use router_core::{
    Body, CatalogSnapshot, CatalogSource, ChatRequest, ChatTransport, Clock, CooldownCause, ErrorKind, FixedCatalog,
    HealthPolicy, ModelId, ModelInfo, PickKind, Ports, QuotaPolicy, RouteError, Router, RouterConfig, Timestamp,
    TransportError, UpstreamResponse,
};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

/// Noon UTC on a day in 2027.
const T0: Timestamp = Timestamp::from_secs(1_800_000_000 / 86_400 * 86_400 + 12 * 3600);

/// The chi-square critical values at p = 0.001 by degrees of freedom (1..=9): a fair
/// draw exceeds them once in a thousand runs, and the draws here are fixed by their
/// seeds and keys, so a pass is a pass every time.
const CHI2_P001: [f64; 9] = [10.83, 13.82, 16.27, 18.47, 20.52, 22.46, 24.32, 26.12, 27.88];

fn chi_square(counts: &[u64], expected: &[f64]) -> f64 {
    counts.iter().zip(expected).map(|(&c, &e)| (c as f64 - e).powi(2) / e).sum()
}

#[track_caller]
fn assert_fits(counts: &[u64], weights: &[f64]) {
    let n: u64 = counts.iter().sum();
    let total: f64 = weights.iter().sum();
    let expected: Vec<f64> = weights.iter().map(|w| n as f64 * w / total).collect();
    let chi = chi_square(counts, &expected);
    let critical = CHI2_P001[counts.len() - 2];
    assert!(chi < critical, "chi-square {chi:.2} >= {critical} for {counts:?} against {weights:?}");
}

// ---------------------------------------------------------------------------------------
// The fixture: a pool of free models, a paid one, a fake clock, a scripted transport
// ---------------------------------------------------------------------------------------

const PAID: &str = "p/paid";

fn model(id: &str, priced: bool) -> ModelInfo {
    let mut m = ModelInfo::new(id);
    m.context_length = Some(128_000);
    m.input_modalities = vec!["text".into()];
    m.output_modalities = vec!["text".into()];
    m.pricing.0.insert("prompt".into(), json!("0"));
    m.pricing.0.insert("completion".into(), json!(if priced { "0.000001" } else { "0" }));
    m
}

/// `n` free models `m00:free`, `m01:free`, ... and one paid model.
fn pool(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("m{i:02}:free")).collect()
}

fn snapshot(ids: &[String]) -> Arc<CatalogSnapshot> {
    let mut models: Vec<ModelInfo> = ids.iter().map(|id| model(id, false)).collect();
    models.push(model(PAID, true));
    Arc::new(CatalogSnapshot::new(models, CatalogSource::Memory, T0))
}

/// A clock that only moves when told to, and whose `sleep` moves it.
#[derive(Clone, Debug)]
struct Time(Arc<AtomicU64>);

impl Time {
    fn new() -> Self {
        Time(Arc::new(AtomicU64::new(T0.as_millis())))
    }

    fn advance(&self, d: Duration) {
        self.0.fetch_add(u64::try_from(d.as_millis()).expect("small"), Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl Clock for Time {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.load(Ordering::SeqCst))
    }

    async fn sleep(&self, duration: Duration) -> bool {
        self.advance(duration);
        true
    }
}

/// What a model does when called.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    Ok,
    /// A provider's 429 within milliseconds, with this `Retry-After` if any.
    RateLimited(Option<Duration>),
    /// A 503 within milliseconds.
    Overloaded,
    /// No first byte before the transport's timeout.
    Hang,
    /// A 429 that took this long to come back.
    SlowRateLimited(Duration),
}

/// How long the transport's first-byte timeout is, as a hanging model reports it.
const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(20);

/// A transport that answers by script, yields once before answering (so that concurrent
/// requests interleave as they would on a real runtime), and checks every call: never a
/// paid model, never a model the router knows is cooling.
struct Scripted {
    script: Mutex<HashMap<String, Fault>>,
    calls: Mutex<Vec<String>>,
    router: OnceLock<Weak<Router>>,
    /// Moves the clock by this much on every call (a slow upstream).
    per_call: Duration,
    time: Time,
}

impl Scripted {
    fn new(time: &Time) -> Arc<Self> {
        Self::taking(time, Duration::ZERO)
    }

    /// A transport whose every call moves the clock by `per_call`.
    fn taking(time: &Time, per_call: Duration) -> Arc<Self> {
        Arc::new(Scripted {
            script: Mutex::new(HashMap::new()),
            calls: Mutex::new(Vec::new()),
            router: OnceLock::new(),
            per_call,
            time: time.clone(),
        })
    }

    fn set(&self, model: &str, fault: Fault) {
        self.script.lock().expect("script").insert(model.to_owned(), fault);
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().expect("calls").clone()
    }

    fn take_calls(&self) -> Vec<String> {
        std::mem::take(&mut *self.calls.lock().expect("calls"))
    }
}

/// Returns `Pending` once, so that other requests run before this one goes on.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

fn ok_body(model: &str) -> Result<UpstreamResponse, TransportError> {
    let body = json!({"id": "gen-1", "model": model, "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}]});
    Ok(UpstreamResponse {
        status: 200,
        headers: vec![("content-type", "application/json".into())],
        body: Body::Full(Bytes::from(body.to_string())),
        elapsed: Duration::from_millis(5),
    })
}

#[async_trait::async_trait]
impl ChatTransport for Scripted {
    async fn send(&self, model: &ModelId, _body: Bytes, _stream: bool) -> Result<UpstreamResponse, TransportError> {
        let id = model.as_str();
        assert!(id.ends_with(":free") && id != PAID, "a call to a paid model: {id}");
        if let Some(router) = self.router.get().and_then(Weak::upgrade) {
            // A half-open model's probe is this very call.
            let cooling = router.cooldowns();
            let cooling: Vec<_> = cooling.iter().filter(|(_, c)| c.cause != CooldownCause::ProbeInFlight).collect();
            assert!(cooling.iter().all(|(m, _)| m != model), "a call to {id} while it cools: {cooling:?}");
        }
        self.calls.lock().expect("calls").push(id.to_owned());
        let fault = self.script.lock().expect("script").get(id).copied().unwrap_or(Fault::Ok);
        self.time.advance(self.per_call);
        YieldOnce(false).await;
        let quick = Duration::from_millis(4);
        match fault {
            Fault::Ok => ok_body(id),
            Fault::RateLimited(retry) => {
                let e = TransportError::new(ErrorKind::RateLimitedModel, "rate limited upstream").with_status(429);
                Err(retry.map_or(e.clone(), |r| e.with_retry_after(r)).with_elapsed(quick))
            }
            Fault::Overloaded => {
                Err(TransportError::new(ErrorKind::ServerError, "overloaded").with_status(503).with_elapsed(quick))
            }
            Fault::Hang => {
                Err(TransportError::new(ErrorKind::Timeout, "no first byte").with_elapsed(FIRST_BYTE_TIMEOUT))
            }
            Fault::SlowRateLimited(took) => Err(TransportError::new(ErrorKind::RateLimitedModel, "rate limited late")
                .with_status(429)
                .with_elapsed(took)),
        }
    }
}

fn config() -> RouterConfig {
    RouterConfig { quota: QuotaPolicy::UNLIMITED, health: HealthPolicy::default(), ..RouterConfig::default() }
}

fn router(ids: &[String], transport: &Arc<Scripted>, time: &Time, config: RouterConfig) -> Arc<Router> {
    let ports = Ports {
        catalog: Arc::new(FixedCatalog(snapshot(ids))),
        transport: transport.clone(),
        clock: Arc::new(time.clone()),
        store: None,
    };
    let router = Arc::new(Router::new(ports, config).expect("no store"));
    transport.router.set(Arc::downgrade(&router)).expect("set once");
    router
}

fn request(extra: serde_json::Value) -> ChatRequest {
    let mut body = json!({"model": "openrouter/free", "messages": [{"role": "user", "content": "hi"}]});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    ChatRequest::from_value(body).expect("valid request")
}

/// Each model at most once in one request's attempts.
#[track_caller]
fn assert_distinct(models: &[String]) {
    let set: BTreeSet<&String> = models.iter().collect();
    assert_eq!(set.len(), models.len(), "a model tried twice: {models:?}");
}

// ---------------------------------------------------------------------------------------
// 1. Attempts budgeted by time and cost
// ---------------------------------------------------------------------------------------

#[test]
fn cheap_failures_do_not_use_up_the_attempts() {
    let ids = pool(9);
    let time = Time::new();
    let t = Scripted::new(&time);
    // Every model but one answers 429 at once; one attempt is all a request may spend.
    for id in &ids[..8] {
        t.set(id, Fault::RateLimited(None));
    }
    let r = router(&ids, &t, &time, RouterConfig { max_attempts: 1, ..config() });
    for seed in 0..20 {
        // Cooldowns from the previous request are over.
        time.advance(Duration::from_secs(3600));
        let routed = block_on(r.route(&request(json!({})), seed)).expect("the one healthy model answers");
        assert_eq!(routed.report.model.as_ref().map(ModelId::as_str), Some(ids[8].as_str()));
        let calls = t.take_calls();
        assert_distinct(&calls);
        assert_eq!(calls.last(), Some(&ids[8]));
    }
}

#[test]
fn the_hard_cap_bounds_cheap_failures() {
    let ids = pool(9);
    let time = Time::new();
    let t = Scripted::new(&time);
    for id in &ids[..8] {
        t.set(id, Fault::Overloaded);
    }
    let r = router(&ids, &t, &time, RouterConfig { max_upstream_calls: 3, ..config() });
    let mut failed = 0;
    for seed in 0..20 {
        time.advance(Duration::from_secs(3600));
        let result = block_on(r.route(&request(json!({})), seed));
        let calls = t.take_calls();
        assert!(calls.len() <= 3, "{calls:?}");
        assert_distinct(&calls);
        if let Err(f) = result {
            failed += 1;
            assert_eq!(f.report.attempts.len(), 3);
            assert!(matches!(f.error, RouteError::Upstream { .. }), "{:?}", f.error);
        }
    }
    assert!(failed > 0, "with 8 of 9 models failing, some request must hit the cap of 3");
}

#[test]
fn slow_failures_and_timeouts_use_up_the_attempts() {
    let ids = pool(6);
    let time = Time::new();
    let t = Scripted::new(&time);
    t.set(&ids[0], Fault::SlowRateLimited(Duration::from_secs(3)));
    t.set(&ids[1], Fault::Hang);
    t.set(&ids[2], Fault::SlowRateLimited(Duration::from_secs(3)));
    t.set(&ids[3], Fault::Hang);
    t.set(&ids[4], Fault::SlowRateLimited(Duration::from_secs(3)));
    let r = router(&ids, &t, &time, RouterConfig { max_attempts: 2, ..config() });
    let mut saw_two_slow_failures = false;
    for seed in 0..40 {
        time.advance(Duration::from_secs(3600));
        let result = block_on(r.route(&request(json!({})), seed));
        let calls = t.take_calls();
        assert!(calls.len() <= 2, "two slow failures end the request: {calls:?}");
        if result.is_err() {
            saw_two_slow_failures = true;
            assert_eq!(calls.len(), 2);
        }
    }
    assert!(saw_two_slow_failures);
}

#[test]
fn the_deadline_bounds_cheap_failures() {
    let ids = pool(8);
    let time = Time::new();
    // Every call takes 40 s of the clock though each answer claims milliseconds.
    let t = Scripted::taking(&time, Duration::from_secs(40));
    for id in &ids {
        t.set(id, Fault::RateLimited(None));
    }
    // Attempts are no limit here: only the deadline is.
    let generous = RouterConfig { deadline: Duration::from_secs(100), max_attempts: 10, ..config() };
    let r = router(&ids, &t, &time, generous);
    let f = block_on(r.route(&request(json!({})), 1)).expect_err("all rate limited");
    // Calls at 0 s, 40 s, 80 s; none starts at 120 s.
    assert_eq!(f.report.attempts.len(), 3, "{:?}", f.report);
}

#[test]
fn cheap_failures_still_count_against_the_accounts_quota() {
    let ids = pool(9);
    let time = Time::new();
    let t = Scripted::new(&time);
    for id in &ids[..8] {
        t.set(id, Fault::RateLimited(None));
    }
    let quota = QuotaPolicy { per_minute: Some(4), per_day: None };
    let r = router(&ids, &t, &time, RouterConfig { quota, ..config() });
    let mut calls = 0;
    for seed in 0..10 {
        let result = block_on(r.route(&request(json!({})), seed));
        calls += t.take_calls().len();
        assert!(calls <= 4, "{calls} calls within one minute against a limit of 4");
        if let Err(f) = result {
            assert!(matches!(f.error, RouteError::Quota { .. } | RouteError::AllCoolingDown { .. }), "{:?}", f.error);
        }
    }
    assert_eq!(calls, 4);
}

/// The measure: half the pool answers 429, one model hangs, 300 requests at
/// once, and every one of them succeeds, never calling a cooling or paid model. The
/// rate limits are short (a second, as free providers often say) and each call takes
/// 20 ms, so models come back during the burst and are hit again and again.
#[test]
fn three_hundred_concurrent_requests_with_half_the_pool_429_and_one_hanging_all_succeed() {
    let ids = pool(10);
    let time = Time::new();
    let t = Scripted::taking(&time, Duration::from_millis(20));
    for id in ids.iter().take(5) {
        t.set(id, Fault::RateLimited(Some(Duration::from_secs(1))));
    }
    t.set(&ids[5], Fault::Hang);
    let r = router(&ids, &t, &time, config());
    let req = request(json!({}));
    let results = block_on(join_all((0..300u64).map(|seed| r.route(&req, seed))));
    let failures: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(failures.is_empty(), "{} of 300 failed, first: {:?}", failures.len(), failures.first());
    for routed in results.iter().flatten() {
        let models: Vec<String> = routed.report.attempts.iter().map(|a| a.model.to_string()).collect();
        assert_distinct(&models);
        let answered = routed.report.model.as_ref().expect("a model").as_str();
        assert!(ids[6..].iter().any(|m| m == answered), "{answered}");
    }
    assert!(t.calls().len() >= 300);
}

#[test]
fn sixty_sequential_requests_with_half_the_pool_429_all_succeed() {
    let ids = pool(10);
    let time = Time::new();
    let t = Scripted::new(&time);
    for id in ids.iter().take(5) {
        t.set(id, Fault::RateLimited(Some(Duration::from_secs(1))));
    }
    let r = router(&ids, &t, &time, config());
    for seed in 0..60u64 {
        // A request a second, and rate limits of a second: every request meets all five.
        time.advance(Duration::from_secs(1));
        let routed = block_on(r.route(&request(json!({"stream": false})), seed))
            .unwrap_or_else(|f| panic!("request {seed} failed: {f:?}"));
        let answered = routed.report.model.expect("a model");
        assert!(ids[5..].iter().any(|m| m == answered.as_str()));
        assert_distinct(&t.take_calls());
    }
}

// ---------------------------------------------------------------------------------------
// 2. A short wait instead of a 429
// ---------------------------------------------------------------------------------------

/// Every model answers 429 with `retry` once, then recovers; returns the router with
/// all of them cooling.
fn all_cooling(retry: Duration, config: RouterConfig) -> (Arc<Router>, Arc<Scripted>, Time, Vec<String>) {
    let ids = pool(3);
    let time = Time::new();
    let t = Scripted::new(&time);
    for id in &ids {
        t.set(id, Fault::RateLimited(Some(retry)));
    }
    let r = router(&ids, &t, &time, RouterConfig { max_cooling_wait: Duration::from_secs(5), ..config });
    let f = block_on(r.route(&request(json!({})), 1)).expect_err("every model is rate limited");
    assert_eq!(f.report.attempts.len(), 3);
    for id in &ids {
        t.set(id, Fault::Ok);
    }
    t.take_calls();
    (r, t, time, ids)
}

#[test]
fn a_request_waits_for_a_model_that_recovers_within_the_bound() {
    let (r, t, time, _) = all_cooling(Duration::from_secs(2), config());
    // The explanation says the request would wait rather than get the 429.
    let why = r.explain(&request(json!({})), 7).expect("explainable");
    assert!(matches!(why.error, Some(RouteError::AllCoolingDown { .. })));
    let would = why.wait_ms.expect("a wait within the bound");
    let start = time.now();
    let routed = block_on(r.route(&request(json!({})), 7)).expect("waits, then 200");
    let waited = routed.report.waited;
    assert!(waited >= Duration::from_secs(2) && waited <= Duration::from_millis(2500), "{waited:?}");
    assert_eq!(time.now().saturating_since(start), waited, "the clock's sleep was the wait");
    assert_eq!(Duration::from_millis(would), waited, "explain and route agree on the wait");
    assert_eq!(t.calls().len(), 1, "one call, after the wait");
}

#[test]
fn beyond_the_bound_or_the_deadline_the_answer_is_429() {
    let (r, t, _, _) = all_cooling(Duration::from_secs(30), config());
    assert_eq!(r.explain(&request(json!({})), 7).expect("explainable").wait_ms, None);
    let f = block_on(r.route(&request(json!({})), 7)).expect_err("30 s is beyond the 5 s bound");
    assert!(matches!(f.error, RouteError::AllCoolingDown { .. }), "{:?}", f.error);
    assert!(f.report.waited.is_zero());
    assert!(t.calls().is_empty(), "nothing is sent to a cooling model");

    let short = RouterConfig { deadline: Duration::from_secs(1), ..config() };
    let (r, t, _, _) = all_cooling(Duration::from_secs(2), short);
    let f = block_on(r.route(&request(json!({})), 7)).expect_err("2 s is past the 1 s deadline");
    assert!(matches!(f.error, RouteError::AllCoolingDown { .. }), "{:?}", f.error);
    assert!(t.calls().is_empty());

    let never = RouterConfig { max_cooling_wait: Duration::ZERO, ..config() };
    let ids = pool(1);
    let time = Time::new();
    let t = Scripted::new(&time);
    t.set(&ids[0], Fault::RateLimited(Some(Duration::from_secs(1))));
    let r = router(&ids, &t, &time, never);
    block_on(r.route(&request(json!({})), 1)).expect_err("rate limited");
    let f = block_on(r.route(&request(json!({})), 2)).expect_err("waiting is off");
    assert!(matches!(f.error, RouteError::AllCoolingDown { .. }));
}

#[test]
fn waiters_are_staggered_by_their_seeds() {
    let mut waits = BTreeSet::new();
    for seed in 0..20 {
        let (r, _, _, _) = all_cooling(Duration::from_secs(2), config());
        let routed = block_on(r.route(&request(json!({})), seed)).expect("waits, then 200");
        let w = routed.report.waited;
        assert!(w >= Duration::from_secs(2) && w <= Duration::from_secs(2) + config().wait_stagger, "{w:?}");
        waits.insert(w);
    }
    assert!(waits.len() >= 10, "twenty waiters should not wake together: {waits:?}");
}

#[test]
fn a_clock_that_cannot_sleep_keeps_the_429() {
    struct Frozen;
    impl Clock for Frozen {
        fn now(&self) -> Timestamp {
            T0
        }
    }
    let ids = pool(2);
    let time = Time::new();
    let t = Scripted::new(&time);
    for id in &ids {
        t.set(id, Fault::RateLimited(Some(Duration::from_secs(2))));
    }
    let ports = Ports {
        catalog: Arc::new(FixedCatalog(snapshot(&ids))),
        transport: t.clone(),
        clock: Arc::new(Frozen),
        store: None,
    };
    let r = Router::new(ports, config()).expect("router");
    block_on(r.route(&request(json!({})), 1)).expect_err("rate limited");
    let f = block_on(r.route(&request(json!({})), 1)).expect_err("no sleep, so 429");
    assert!(matches!(f.error, RouteError::AllCoolingDown { .. }));
}

// ---------------------------------------------------------------------------------------
// 3. Sticky sessions
// ---------------------------------------------------------------------------------------

fn first_pick(r: &Router, req: &ChatRequest, seed: u64) -> (ModelId, PickKind) {
    let e = r.explain(req, seed).expect("explainable");
    (e.pick.expect("a pick"), e.pick_kind.expect("a kind"))
}

#[test]
fn a_session_keeps_its_model_through_another_models_cooldown_and_moves_when_its_own_cools() {
    let ids = pool(6);
    let time = Time::new();
    let t = Scripted::new(&time);
    let r = router(&ids, &t, &time, config());
    let req = request(json!({"session_id": "conversation-42"}));
    // Every seed gives the session the same model.
    let (home, kind) = first_pick(&r, &req, 0);
    assert_eq!(kind, PickKind::Sticky);
    for seed in 1..50 {
        assert_eq!(first_pick(&r, &req, seed).0, home);
    }
    let routed = block_on(r.route(&req, 99)).expect("ok");
    assert_eq!(routed.report.model.as_ref(), Some(&home));
    assert_eq!(routed.report.pick, PickKind::Sticky);

    // Another model cools down: the session stays.
    let other = ids.iter().find(|id| id.as_str() != home.as_str()).expect("another").clone();
    t.set(&other, Fault::RateLimited(Some(Duration::from_secs(60))));
    let plain = request(json!({"model": other.clone()}));
    block_on(r.route(&plain, 1)).expect_err("the other model is rate limited");
    assert!(r.cooldowns().iter().any(|(m, _)| m.as_str() == other));
    t.take_calls();
    let routed = block_on(r.route(&req, 3)).expect("ok");
    assert_eq!(routed.report.model.as_ref(), Some(&home), "another model's cooldown moved the session");

    // Its own model cools down: the session moves, to the same place for every seed.
    t.set(home.as_str(), Fault::RateLimited(Some(Duration::from_secs(60))));
    let routed = block_on(r.route(&req, 4)).expect("falls back");
    let moved = routed.report.model.clone().expect("a model");
    assert_ne!(moved, home);
    assert_eq!(routed.report.pick, PickKind::Sticky);
    for seed in 5..20 {
        assert_eq!(first_pick(&r, &req, seed).0, moved);
    }
    // And comes back once its model recovers.
    time.advance(Duration::from_secs(61));
    t.set(home.as_str(), Fault::Ok);
    assert_eq!(first_pick(&r, &req, 21).0, home);
}

#[test]
fn the_session_key_comes_from_the_header_then_session_id_then_user() {
    let ids = pool(8);
    let time = Time::new();
    let t = Scripted::new(&time);
    let r = router(&ids, &t, &time, config());
    let by_user = first_pick(&r, &request(json!({"user": "alice"})), 1);
    assert_eq!(by_user.1, PickKind::Sticky);
    // The same key gives the same model whichever field carries it.
    assert_eq!(first_pick(&r, &request(json!({"session_id": "alice", "user": "bob"})), 2), by_user);
    let mut req = request(json!({"session_id": "carol", "user": "bob"}));
    req.set_session_key("alice").expect("a short key");
    assert_eq!(first_pick(&r, &req, 3), by_user);
    // Without a key the pick is the seeded uniform one.
    assert_eq!(first_pick(&r, &request(json!({})), 3).1, PickKind::Uniform);
    // A named model stays named.
    let named = request(json!({"model": ids[0].clone(), "user": "alice"}));
    assert_eq!(first_pick(&r, &named, 3), (ModelId::new(&ids[0]), PickKind::Named));
    // Sticky sessions off: uniform again.
    let off = router(&ids, &Scripted::new(&time), &time, RouterConfig { sticky_sessions: false, ..config() });
    assert_eq!(first_pick(&off, &request(json!({"user": "alice"})), 3).1, PickKind::Uniform);
}

#[test]
fn sessions_spread_uniformly_over_the_candidates() {
    let ids = pool(5);
    let mut counts = vec![0u64; ids.len()];
    for k in 0..10_000 {
        let key = format!("session-{k}");
        let i = rendezvous(&key, ids.iter().enumerate().map(|(i, id)| (i, id.as_str())), None).expect("a pick");
        counts[i] += 1;
    }
    assert_fits(&counts, &[1.0; 5]);
}

proptest! {
    /// Removing or cooling any model other than a session's never changes its pick,
    /// and the catalog's order does not matter.
    #[test]
    fn a_sessions_pick_moves_only_with_its_own_model(
        key in "[a-z0-9-]{1,24}",
        n in 2usize..12,
        gone in proptest::collection::btree_set(0usize..12, 0..6),
        shuffle in any::<u64>(),
    ) {
        let ids = pool(n);
        let all = rendezvous(&key, ids.iter().map(|id| (id.as_str(), id.as_str())), None).expect("a pick");
        let mut shuffled = ids.clone();
        let mut rng = rng_from_seed(shuffle);
        for i in (1..shuffled.len()).rev() {
            let j = usize::try_from(rand::RngExt::random_range(&mut rng, 0..=i as u64)).expect("small");
            shuffled.swap(i, j);
        }
        let again = rendezvous(&key, shuffled.iter().map(|id| (id.as_str(), id.as_str())), None);
        prop_assert_eq!(again, Some(all));
        let kept: Vec<&String> = ids.iter().enumerate().filter(|(i, id)| !gone.contains(i) || id.as_str() == all).map(|(_, id)| id).collect();
        let without = rendezvous(&key, kept.iter().map(|id| (id.as_str(), id.as_str())), None);
        prop_assert_eq!(without, Some(all));
    }

    /// The same holds through the router: cooling other models never moves a session.
    #[test]
    fn cooling_other_models_never_moves_a_session(key in "[a-z0-9]{1,16}", cooled in proptest::collection::btree_set(0usize..6, 0..5)) {
        let ids = pool(6);
        let time = Time::new();
        let t = Scripted::new(&time);
        let r = router(&ids, &t, &time, config());
        let mut req = request(json!({}));
        req.set_session_key(&key).expect("a short key");
        let (home, _) = first_pick(&r, &req, 0);
        for &i in &cooled {
            if ids[i] == home.as_str() {
                continue;
            }
            t.set(&ids[i], Fault::RateLimited(Some(Duration::from_secs(60))));
            let named = request(json!({"model": ids[i].clone()}));
            prop_assert!(block_on(r.route(&named, 0)).is_err());
        }
        prop_assert_eq!(first_pick(&r, &req, 1).0, home);
    }
}

// ---------------------------------------------------------------------------------------
// 4. The quality-weighted pick
// ---------------------------------------------------------------------------------------

#[test]
fn equal_weights_draw_uniformly_and_unequal_weights_match() {
    let items: Vec<usize> = (0..5).collect();
    for weights in [[1.0, 1.0, 1.0, 1.0, 1.0], [1.0, 2.0, 3.0, 4.0, 5.0], [0.5, 0.5, 4.0, 1.0, 0.25]] {
        let mut counts = vec![0u64; items.len()];
        for seed in 0..20_000 {
            let &i = pick_weighted(&items, |&i| weights[i], &mut rng_from_seed(seed)).expect("a pick");
            counts[i] += 1;
        }
        assert_fits(&counts, &weights);
    }
    // Zero weights are never drawn while another weight is positive.
    for seed in 0..1000 {
        let pick = pick_weighted(&items, |&i| if i == 2 { 1.0 } else { 0.0 }, &mut rng_from_seed(seed));
        assert_eq!(pick, Some(&2));
    }
    // The same seed and weights give the same pick.
    let w = |&i: &usize| [3.0, 1.0, 2.0, 0.5, 1.0][i];
    for seed in 0..100 {
        assert_eq!(
            pick_weighted(&items, w, &mut rng_from_seed(seed)),
            pick_weighted(&items, w, &mut rng_from_seed(seed))
        );
    }
}

#[test]
fn weighted_sessions_spread_by_weight() {
    let ids = pool(4);
    let weights = [1.0, 2.0, 3.0, 4.0];
    let w = |i: usize| weights[i];
    let mut counts = vec![0u64; 4];
    for k in 0..20_000 {
        let key = format!("s{k}");
        let i = rendezvous(&key, ids.iter().enumerate().map(|(i, id)| (i, id.as_str())), Some(&w)).expect("a pick");
        counts[i] += 1;
    }
    assert_fits(&counts, &weights);
}

#[test]
fn the_router_draws_by_configured_weight_when_asked() {
    let ids = pool(4);
    let time = Time::new();
    let t = Scripted::new(&time);
    let weights = [1.0, 2.0, 3.0, 4.0];
    let model_weights: BTreeMap<ModelId, f64> = ids.iter().zip(weights).map(|(id, w)| (ModelId::new(id), w)).collect();
    let r = router(&ids, &t, &time, RouterConfig { weighted: true, model_weights: model_weights.clone(), ..config() });
    let req = request(json!({}));
    let count = |r: &Router, req: &ChatRequest, expect: PickKind| {
        let mut counts = vec![0u64; 4];
        for seed in 0..8000 {
            let (m, kind) = first_pick(r, req, seed);
            assert_eq!(kind, expect);
            counts[ids.iter().position(|id| id == m.as_str()).expect("listed")] += 1;
        }
        counts
    };
    assert_fits(&count(&r, &req, PickKind::Weighted), &weights);
    // A request may ask for the uniform pick...
    let mut uniform = request(json!({}));
    uniform.set_weighted(false);
    assert_fits(&count(&r, &uniform, PickKind::Uniform), &[1.0; 4]);
    // ...and with weighting off by default, may ask for the weighted one.
    let off = router(&ids, &Scripted::new(&time), &time, RouterConfig { model_weights, ..config() });
    assert_fits(&count(&off, &req, PickKind::Uniform), &[1.0; 4]);
    let mut weighted = request(json!({}));
    weighted.set_weighted(true);
    assert_fits(&count(&off, &weighted, PickKind::Weighted), &weights);
    // The explanation lists the weights.
    let e = r.explain(&req, 1).expect("explainable");
    let listed: Vec<f64> = e.weights.iter().map(|w| w.weight).collect();
    assert_eq!(listed, weights);
}

#[test]
fn a_model_that_keeps_failing_is_drawn_less_often_but_still_drawn() {
    let ids = pool(2);
    let time = Time::new();
    let t = Scripted::new(&time);
    t.set(&ids[0], Fault::Overloaded);
    let r = router(&ids, &t, &time, RouterConfig { weighted: true, ..config() });
    // Fail m00 many times (named, so that each request reaches it), far apart so that
    // its breaker never stays open.
    for seed in 0..30 {
        time.advance(Duration::from_secs(3600));
        let _ = block_on(r.route(&request(json!({"model": ids[0].clone()})), seed));
    }
    let rates = r.success_rates_snapshot();
    assert!(rates.rate(&ModelId::new(&ids[0])) < 0.05);
    time.advance(Duration::from_secs(3600));
    let mut first = 0;
    for seed in 0..4000 {
        if first_pick(&r, &request(json!({})), seed).0.as_str() == ids[0] {
            first += 1;
        }
    }
    // Weight 0.05 against 1: about 4.8 % of the draws.
    assert!((100..=320).contains(&first), "{first} of 4000");
}

// ---------------------------------------------------------------------------------------
// 5. Measured success
// ---------------------------------------------------------------------------------------

/// A few hundred requests, each against its own scripted pool (a mix of healthy models,
/// quick 429s and 503s, and at most `max_attempts - 1` hanging ones): the share that
/// succeeded equals the share for which some model could have answered.
#[test]
fn measured_success_equals_possible_success() {
    let ids = pool(8);
    let time = Time::new();
    let t = Scripted::new(&time);
    let r = router(&ids, &t, &time, config());
    let mut rng = rng_from_seed(2026);
    let (mut possible, mut succeeded, mut total) = (0u32, 0u32, 0u32);
    for seed in 0..400u64 {
        // Long enough that every cooldown and breaker from the last request is over.
        time.advance(Duration::from_secs(3600));
        let mut hangs = 0;
        let mut any_ok = false;
        for id in &ids {
            let roll = rand::RngExt::random_range(&mut rng, 0..100u32);
            let fault = match roll {
                0..40 => Fault::RateLimited(None),
                40..60 => Fault::Overloaded,
                60..70 if hangs < 2 => {
                    hangs += 1;
                    Fault::Hang
                }
                _ if roll >= 92 => Fault::Ok,
                _ => Fault::RateLimited(Some(Duration::from_secs(10))),
            };
            any_ok |= fault == Fault::Ok;
            t.set(id, fault);
        }
        total += 1;
        possible += u32::from(any_ok);
        let result = block_on(r.route(&request(json!({})), seed));
        assert_distinct(&t.take_calls());
        succeeded += u32::from(result.is_ok());
        assert!(result.is_ok() || !any_ok, "request {seed} failed though a model could answer: {result:?}");
    }
    assert_eq!(succeeded, possible, "succeeded {succeeded} of {total}, possible {possible}");
    assert!(possible > 100 && possible < total, "the script should mix outcomes: {possible} of {total}");
    println!("measured success: {succeeded}/{total} succeeded, {possible}/{total} could have");
}
