//! Two routers (two instances, each with its own Redis connections) on one real
//! `redis-server` and one clock the test moves: a breaker opened on one instance holds
//! the model back on the other, and when it half-opens exactly one probe is sent by the
//! two together.

#[path = "support/redis_server.rs"]
#[expect(dead_code, reason = "the process-level tests read counters; this one does not")]
mod redis_server;

use bytes::Bytes;
use redis_server::RedisServer;
use router_core::{
    CatalogSnapshot, CatalogSource, ChatRequest, ChatTransport, Clock, CooldownCause, ErrorKind, FixedCatalog, ModelId,
    ModelInfo, Ports, QuotaPolicy, Router, RouterConfig, Secret, Timestamp, TransportError, UpstreamResponse,
};
use state_redis::{RedisConfig, RedisState};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BROKEN: &str = "a/broken:free";

/// Wall-clock time that only the test moves.
#[derive(Debug)]
struct TestClock(AtomicU64);

#[async_trait::async_trait]
impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.load(Ordering::SeqCst))
    }
}

/// Every model answers 500; counts the calls per model.
#[derive(Debug, Default)]
struct Failing {
    calls: Mutex<HashMap<String, usize>>,
}

impl Failing {
    fn calls(&self, model: &str) -> usize {
        self.calls.lock().expect("calls").get(model).copied().unwrap_or(0)
    }
}

#[async_trait::async_trait]
impl ChatTransport for Failing {
    async fn send(&self, model: &ModelId, _body: Bytes, _stream: bool) -> Result<UpstreamResponse, TransportError> {
        *self.calls.lock().expect("calls").entry(model.as_str().to_owned()).or_insert(0) += 1;
        // Long enough for concurrent requests to overlap the probe.
        tokio::time::sleep(Duration::from_millis(20)).await;
        Err(TransportError::new(ErrorKind::ServerError, "500 from the test"))
    }
}

fn free_model(id: &str) -> ModelInfo {
    let mut m = ModelInfo::new(id);
    m.context_length = Some(131_072);
    m.input_modalities = vec!["text".into()];
    m.output_modalities = vec!["text".into()];
    m.pricing.0.insert("prompt".into(), "0".into());
    m.pricing.0.insert("completion".into(), "0".into());
    m
}

fn instance(redis: &RedisServer, clock: &Arc<TestClock>, transport: &Arc<Failing>) -> Arc<Router> {
    let now = clock.now();
    let catalog = CatalogSnapshot::new(vec![free_model(BROKEN)], CatalogSource::Memory, now);
    let ports = Ports {
        catalog: Arc::new(FixedCatalog(Arc::new(catalog))),
        transport: transport.clone(),
        clock: clock.clone(),
        store: None,
    };
    let config = RouterConfig { quota: QuotaPolicy::UNLIMITED, ..RouterConfig::default() };
    let mut redis_config = RedisConfig::new(Secret::new(redis.url()));
    redis_config.op_timeout = Duration::from_secs(5);
    let shared = RedisState::new(redis_config).expect("redis url");
    let router = Arc::new(Router::new(ports, config).expect("router").with_shared(Arc::new(shared)));
    router.attach_shared();
    router
}

async fn wait_for(what: &str, ok: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn request() -> ChatRequest {
    ChatRequest::from_slice(
        format!(r#"{{"model":"{BROKEN}","messages":[{{"role":"user","content":"hi"}}]}}"#).as_bytes(),
    )
    .expect("request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breaker_opened_on_one_instance_lets_one_probe_through_in_total() {
    let redis = RedisServer::start();
    let start = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis();
    let clock = Arc::new(TestClock(AtomicU64::new(u64::try_from(start).expect("millis"))));
    let transport = Arc::new(Failing::default());
    let a = instance(&redis, &clock, &transport);
    let b = instance(&redis, &clock, &transport);
    for r in [&a, &b] {
        wait_for("the instances to reach Redis", || r.shared_status().is_some_and(|s| s.connected)).await;
    }

    // Three server errors on A open its breaker.
    for seed in 0..3 {
        assert!(a.route(&request(), seed).await.is_err());
    }
    assert_eq!(transport.calls(BROKEN), 3);
    let open_on =
        |r: &Router| r.cooldowns().iter().any(|(id, c)| id.as_str() == BROKEN && c.cause == CooldownCause::CircuitOpen);
    assert!(open_on(&a));
    // B learns it through Redis (well within the 100 ms propagation bound on loopback;
    // the wait is generous for a loaded CI machine).
    wait_for("B to learn the open breaker", || open_on(&b)).await;
    assert!(b.route(&request(), 7).await.is_err());
    assert_eq!(transport.calls(BROKEN), 3, "B leaves the model alone while the breaker is open");

    // The open period passes on both: twenty concurrent requests, half on each instance,
    // and a single probe between them.
    clock.0.fetch_add(61_000, Ordering::SeqCst);
    let mut tasks = Vec::new();
    for seed in 0..20 {
        let r = if seed % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move { r.route(&request(), seed).await.is_ok() }));
    }
    for t in tasks {
        assert!(!t.await.expect("task"), "the model only fails");
    }
    assert_eq!(transport.calls(BROKEN), 4, "one probe in total");
    // The failed probe re-opened the breaker, everywhere.
    wait_for("both breakers to re-open", || open_on(&a) && open_on(&b)).await;
}
