//! Resilience end to end: fallback, cooldowns, quotas, restarts and a soak, through the
//! real HTTP transport against the scripted fake upstream on loopback.

use catalog_openrouter::parse_models;
use fake_upstream::{Behaviour, FakeModel, FakeUpstream, models_json};
use router_core::{
    CatalogSnapshot, CatalogSource, ChatRequest, ChatTransport, Clock, ErrorKind, FixedCatalog, ModelId, Ports,
    QuotaPolicy, RouteError, Router, RouterConfig, Secret, StateStore, TransportError, UpstreamResponse,
};
use router_settings::SystemClock;
use state_file::FileStateStore;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use transport_http::{HttpTransport, TransportConfig};

/// Wraps the real transport and keeps a timeline: when each model was called, and when
/// the router first learned (from an answer) that the model should cool down.
struct Recording {
    inner: HttpTransport,
    sends: Mutex<Vec<(ModelId, Instant)>>,
    cooled: Mutex<HashMap<ModelId, (Instant, u32)>>,
}

#[async_trait::async_trait]
impl ChatTransport for Recording {
    async fn send(
        &self,
        model: &ModelId,
        body: bytes::Bytes,
        stream: bool,
    ) -> Result<UpstreamResponse, TransportError> {
        self.sends.lock().expect("lock").push((model.clone(), Instant::now()));
        let result = self.inner.send(model, body, stream).await;
        if let Err(e) = &result {
            // A rate limit cools a model at once; timeouts open the breaker at the third.
            let needed = match e.kind {
                ErrorKind::RateLimitedModel => 1,
                ErrorKind::Timeout => 3,
                _ => u32::MAX,
            };
            let mut cooled = self.cooled.lock().expect("lock");
            let entry = cooled.entry(model.clone()).or_insert((Instant::now(), 0));
            entry.1 += 1;
            if entry.1 < needed {
                entry.0 = Instant::now();
            }
        }
        result
    }
}

impl Recording {
    /// Calls that started more than `margin` after their model's cooldown was known. A
    /// request that picked the model just before may still be on its way: the margin
    /// covers that race, which lasts microseconds.
    fn calls_into_cooldown(&self, margin: Duration, cooled_models: &[&str]) -> Vec<String> {
        let cooled = self.cooled.lock().expect("lock");
        self.sends
            .lock()
            .expect("lock")
            .iter()
            .filter(|(m, at)| {
                cooled_models.contains(&m.as_str()) && cooled.get(m).is_some_and(|(known, _)| *at > *known + margin)
            })
            .map(|(m, _)| m.to_string())
            .collect()
    }
}

struct Setup {
    fake: FakeUpstream,
    router: Arc<Router>,
    transport: Arc<Recording>,
}

fn text_model(id: &str) -> FakeModel {
    FakeModel::free(id)
}

async fn setup(models: &[FakeModel], quota: QuotaPolicy, store: Option<Arc<dyn StateStore>>) -> Setup {
    let fake = FakeUpstream::start().await;
    let body = models_json(models).to_string();
    fake.set_models(body.clone());
    let parsed = parse_models(body.as_bytes()).expect("fixture catalog parses");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let snapshot = CatalogSnapshot::new(parsed.models, CatalogSource::Memory, clock.now());
    let inner = HttpTransport::new(TransportConfig {
        base_url: fake.base_url(),
        api_key: Some(Secret::new("sk-test-resilience")),
        first_byte_timeout: Duration::from_secs(2),
        ..TransportConfig::default()
    })
    .expect("transport");
    let transport = Arc::new(Recording { inner, sends: Mutex::default(), cooled: Mutex::default() });
    let ports =
        Ports { catalog: Arc::new(FixedCatalog(Arc::new(snapshot))), transport: transport.clone(), clock, store };
    let config = RouterConfig { quota, ..RouterConfig::default() };
    let router = Arc::new(Router::new(ports, config).expect("router"));
    Setup { fake, router, transport }
}

fn unlimited() -> QuotaPolicy {
    QuotaPolicy::UNLIMITED
}

fn request(model: &str, extra: &str) -> ChatRequest {
    let body = format!(r#"{{"model":{model:?},"messages":[{{"role":"user","content":"hi"}}]{extra}}}"#);
    ChatRequest::from_slice(body.as_bytes()).expect("valid request")
}

/// The model that answered, or the error's status and type.
async fn outcome(router: &Router, req: &ChatRequest, seed: u64) -> String {
    match router.route(req, seed).await {
        Ok(r) => format!(
            "ok {} after {}",
            r.report.model.map(|m| m.to_string()).unwrap_or_default(),
            r.report.attempts.len()
        ),
        Err(f) => format!("{} {}", f.error.status(), f.error.error_type()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallback_reaches_a_healthy_model_in_list_order() {
    let s = setup(&[text_model("a:free"), text_model("b:free"), text_model("c:free")], unlimited(), None).await;
    s.fake.set_behaviour("a:free", Behaviour::RateLimited { retry_after: None });
    s.fake.set_behaviour("b:free", Behaviour::NoEndpoints);
    let req = request("a:free", r#","models":["b:free","c:free"]"#);
    assert_eq!(outcome(&s.router, &req, 1).await, "ok c:free after 3");
    let order: Vec<String> = s.fake.requests().iter().map(|r| r.model.clone()).collect();
    assert_eq!(order, ["a:free", "b:free", "c:free"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cooled_down_model_is_not_called_again_before_its_time() {
    let s = setup(&[text_model("a:free"), text_model("b:free")], unlimited(), None).await;
    s.fake.set_behaviour("a:free", Behaviour::RateLimited { retry_after: Some(3600) });
    let only_a = request("a:free", "");
    assert_eq!(outcome(&s.router, &only_a, 1).await, "429 rate_limited_model");
    // Now cooling: refused at once, with the time left, and upstream is not called.
    let err = s.router.route(&only_a, 2).await.expect_err("cooling");
    assert_eq!(err.error.status(), 429);
    let retry = err.error.retry_after().expect("retry-after").as_secs();
    assert!((3590..=3600).contains(&retry), "retry-after {retry}");
    assert_eq!(s.fake.calls("a:free"), 1);
    // Random routing skips it too.
    for seed in 0..20 {
        assert_eq!(outcome(&s.router, &request("openrouter/free", ""), seed).await, "ok b:free after 1");
    }
    assert_eq!(s.fake.calls("a:free"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_candidate_cooling_answers_429_with_the_earliest_recovery() {
    let s = setup(&[text_model("a:free"), text_model("b:free")], unlimited(), None).await;
    s.fake.set_behaviour("a:free", Behaviour::RateLimited { retry_after: Some(200) });
    s.fake.set_behaviour("b:free", Behaviour::RateLimited { retry_after: Some(100) });
    let req = request("openrouter/free", "");
    assert_eq!(outcome(&s.router, &req, 1).await, "429 rate_limited_model");
    let err = s.router.route(&req, 2).await.expect_err("all cooling");
    assert!(matches!(err.error, RouteError::AllCoolingDown { .. }), "{:?}", err.error);
    let retry = err.error.retry_after().expect("retry-after").as_secs();
    assert!((90..=100).contains(&retry), "retry-after {retry} should be b's 100 s");
    assert_eq!(s.fake.total_calls(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_cap_stops_all_upstream_calls_until_its_reset() {
    let s = setup(&[text_model("a:free"), text_model("b:free")], unlimited(), None).await;
    let now_ms = SystemClock.now().as_millis();
    s.fake.set_behaviour("a:free", Behaviour::DailyCap { reset_ms: now_ms + 3_600_000 });
    let req = request("a:free", r#","models":["b:free"]"#);
    assert_eq!(outcome(&s.router, &req, 1).await, "429 quota_exceeded");
    for seed in 0..10 {
        assert_eq!(outcome(&s.router, &request("openrouter/free", ""), seed).await, "429 quota_exceeded");
    }
    // One call, the one that learned of the cap: b was never tried, nothing after.
    assert_eq!(s.fake.total_calls(), 1);
    let err = s.router.route(&req, 3).await.expect_err("blocked");
    let retry = err.error.retry_after().expect("retry-after").as_secs();
    assert!((3590..=3600).contains(&retry), "retry-after {retry}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_minute_limit_answers_429_without_calling_upstream() {
    crate::support::early_in_a_minute().await;
    let policy = QuotaPolicy { per_minute: Some(5), per_day: None };
    let s = setup(&[text_model("a:free")], policy, None).await;
    for seed in 0..5 {
        assert_eq!(outcome(&s.router, &request("openrouter/free", ""), seed).await, "ok a:free after 1");
    }
    let err = s.router.route(&request("openrouter/free", ""), 9).await.expect_err("limited");
    assert_eq!(err.error.status(), 429);
    assert!(err.error.retry_after().expect("retry-after") <= Duration::from_secs(60));
    assert_eq!(s.fake.total_calls(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_never_exceed_the_daily_quota() {
    let policy = QuotaPolicy { per_minute: None, per_day: Some(50) };
    let s = setup(&[text_model("a:free"), text_model("b:free")], policy, None).await;
    let tasks: Vec<_> = (0..200)
        .map(|seed| {
            let router = s.router.clone();
            tokio::spawn(async move { router.route(&request("openrouter/free", ""), seed).await.is_ok() })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        ok += usize::from(t.await.expect("task"));
    }
    assert_eq!(ok, 50);
    assert_eq!(s.fake.total_calls(), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_errors_are_returned_without_retry() {
    let s = setup(&[text_model("a:free"), text_model("b:free")], unlimited(), None).await;
    for (status, expected) in [(401, "401 auth"), (402, "402 auth"), (403, "403 auth")] {
        let body = format!(r#"{{"error":{{"code":{status},"message":"key problem"}}}}"#);
        s.fake.set_behaviour("a:free", Behaviour::Status { status, body });
        assert_eq!(outcome(&s.router, &request("a:free", r#","models":["b:free"]"#), 1).await, expected);
    }
    assert_eq!(s.fake.calls("b:free"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn StateStore> = Arc::new(FileStateStore::new(dir.path().join("state.json")));
    let policy = QuotaPolicy { per_minute: None, per_day: Some(3) };
    let models = [text_model("a:free"), text_model("b:free")];
    let first = setup(&models, policy, Some(store.clone())).await;
    first.fake.set_behaviour("a:free", Behaviour::RateLimited { retry_after: Some(3600) });
    assert_eq!(outcome(&first.router, &request("a:free", ""), 1).await, "429 rate_limited_model");
    assert_eq!(outcome(&first.router, &request("b:free", ""), 1).await, "ok b:free after 1");
    assert!(first.router.persist().expect("persist"));

    // A new process: same store, fresh upstream counters.
    let second = setup(&models, policy, Some(store)).await;
    let cooling: Vec<String> = second.router.cooldowns().iter().map(|(m, _)| m.to_string()).collect();
    assert_eq!(cooling, ["a:free"]);
    assert_eq!(outcome(&second.router, &request("b:free", ""), 1).await, "ok b:free after 1");
    // Two calls before the restart and one after: the day's quota of 3 is spent.
    assert_eq!(outcome(&second.router, &request("b:free", ""), 2).await, "429 quota_exceeded");
    assert_eq!(second.fake.total_calls(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallback_never_picks_a_model_that_lacks_a_requirement_or_is_paid() {
    let tools = |id: &str| FakeModel::free(id).with_params(&["tools", "tool_choice"]);
    let models = [
        tools("t1:free"),
        tools("t2:free"),
        text_model("plain:free"),
        FakeModel::paid("paid/tools", "0.000001").with_params(&["tools"]),
    ];
    let s = setup(&models, unlimited(), None).await;
    s.fake.set_behaviour("t1:free", Behaviour::RateLimited { retry_after: None });
    let req = request(
        "openrouter/free",
        r#","tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]"#,
    );
    for seed in 0..30 {
        assert_eq!(outcome(&s.router, &req, seed).await.split(" after").next(), Some("ok t2:free"));
    }
    assert_eq!(s.fake.calls("plain:free"), 0);
    assert_eq!(s.fake.calls("paid/tools"), 0);
}

/// The issue's bar: half of the candidates answer 429 and one times out; 2,000
/// concurrent requests must succeed at 99.9% or better, without calls into cooldowns.
/// Only the failures that first reveal a cooldown count against a request's attempts (one
/// per rate-limited model, three for the breaker), so at most two requests can run out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_2000_concurrent_requests_with_half_the_models_failing() {
    let ids: Vec<String> = (0..10).map(|i| format!("m{i}:free")).collect();
    let mut models: Vec<FakeModel> = ids.iter().map(|id| text_model(id)).collect();
    models.push(FakeModel::paid("paid/model", "0.000002"));
    let s = setup(&models, unlimited(), None).await;
    let limited: Vec<&str> = ids[..5].iter().map(String::as_str).collect();
    for (i, id) in limited.iter().enumerate() {
        let retry_after = if i % 2 == 0 { Some(3600) } else { None };
        s.fake.set_behaviour(id, Behaviour::RateLimited { retry_after });
    }
    s.fake.set_behaviour(&ids[5], Behaviour::Hang);

    let tasks: Vec<_> = (0..2000u64)
        .map(|seed| {
            let router = s.router.clone();
            let stream = seed % 4 == 0;
            tokio::spawn(async move {
                let req = request("openrouter/free", if stream { r#","stream":true"# } else { "" });
                match router.route(&req, seed).await {
                    Ok(r) => Ok(r.report.attempts.len()),
                    Err(f) => Err(f.error.to_json()),
                }
            })
        })
        .collect();
    let mut ok = 0;
    let mut errors = Vec::new();
    for t in tasks {
        match t.await.expect("no task panicked") {
            Ok(_) => ok += 1,
            Err(body) => errors.push(body),
        }
    }
    for e in &errors {
        assert!(e["error"]["code"].is_u64() && e["error"]["message"].is_string(), "malformed error {e}");
    }
    eprintln!("soak: {ok} of 2000 succeeded; upstream calls: {}", s.fake.total_calls());
    assert!(ok >= 1998, "{ok} of 2000 succeeded; errors: {:?}", &errors[..errors.len().min(5)]);
    assert_eq!(s.fake.calls("paid/model"), 0);
    let mut cooled = limited.clone();
    cooled.push(&ids[5]);
    let late = s.transport.calls_into_cooldown(Duration::from_millis(250), &cooled);
    assert!(late.is_empty(), "calls into a cooldown: {late:?}");
}

/// Random faults everywhere, streams and not: every request ends in a success or a
/// well-formed error, and nothing panics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_with_random_faults_always_answers_well_formed() {
    let ids: Vec<String> = (0..8).map(|i| format!("f{i}:free")).collect();
    let models: Vec<FakeModel> = ids.iter().map(|id| text_model(id)).collect();
    let s = setup(&models, unlimited(), None).await;
    let faults = [
        Behaviour::Ok,
        Behaviour::RateLimited { retry_after: None },
        Behaviour::NoEndpoints,
        Behaviour::Status { status: 503, body: r#"{"error":{"code":503,"message":"overloaded"}}"#.into() },
        Behaviour::MidStreamError,
        Behaviour::ErrorFirstInStream { code: 502 },
        Behaviour::Delay { first_byte: Duration::from_secs(3), then: Box::new(Behaviour::Ok) },
        Behaviour::OkWithoutModel,
    ];
    for (id, fault) in ids.iter().zip(faults) {
        s.fake.set_behaviour(id, fault);
    }
    let sem = Arc::new(tokio::sync::Semaphore::new(64));
    let tasks: Vec<_> = (0..2000u64)
        .map(|seed| {
            let (router, sem) = (s.router.clone(), sem.clone());
            tokio::spawn(async move {
                let _permit = sem.acquire_owned().await.expect("semaphore");
                let req = request("openrouter/free", if seed % 2 == 0 { r#","stream":true"# } else { "" });
                match router.route(&req, seed).await {
                    Ok(r) => {
                        if let router_core::Body::Stream(mut st) = r.response.body {
                            use futures_util::StreamExt;
                            while let Some(chunk) = st.next().await {
                                chunk.expect("committed streams end in-band, not with an error");
                            }
                        }
                        None
                    }
                    Err(f) => Some(f.error.to_json()),
                }
            })
        })
        .collect();
    for t in tasks {
        if let Some(e) = t.await.expect("no task panicked") {
            assert!(e["error"]["code"].is_u64() && e["error"]["message"].is_string(), "malformed error {e}");
        }
    }
}
