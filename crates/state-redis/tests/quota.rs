//! Two routers (two instances, each with its own Redis connections) on one real
//! `redis-server`, counting the account's day: through a Redis stall, a `FLUSHALL` and
//! a restart with nothing persisted, the shared day count stays the upstream calls
//! actually made, and the day's limit holds.

#[path = "support/redis_server.rs"]
mod redis_server;

use bytes::Bytes;
use redis_server::RedisServer;
use router_core::{
    Body, CatalogSnapshot, CatalogSource, ChatRequest, ChatTransport, Clock, FixedCatalog, ModelId, ModelInfo, Ports,
    QuotaPolicy, Router, RouterConfig, Secret, Timestamp, TransportError, UpstreamResponse,
};
use state_redis::{RedisConfig, RedisState};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const MODEL: &str = "a/one:free";

#[derive(Debug)]
struct WallClock;

#[async_trait::async_trait]
impl Clock for WallClock {
    fn now(&self) -> Timestamp {
        let ms = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_millis();
        Timestamp::from_millis(u64::try_from(ms).expect("millis"))
    }
}

/// Answers every request at once; counts the calls.
#[derive(Debug, Default)]
struct Upstream {
    calls: AtomicUsize,
}

#[async_trait::async_trait]
impl ChatTransport for Upstream {
    async fn send(&self, _: &ModelId, _: Bytes, _: bool) -> Result<UpstreamResponse, TransportError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(UpstreamResponse {
            status: 200,
            headers: vec![("content-type", "application/json".into())],
            body: Body::Full(Bytes::from_static(br#"{"id":"g","choices":[{"message":{"content":"hi"}}]}"#)),
            elapsed: Duration::from_millis(1),
        })
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

fn instance(redis: &RedisServer, upstream: &Arc<Upstream>, per_day: u32, timeout: Duration) -> Arc<Router> {
    let catalog = CatalogSnapshot::new(vec![free_model(MODEL)], CatalogSource::Memory, WallClock.now());
    let ports = Ports {
        catalog: Arc::new(FixedCatalog(Arc::new(catalog))),
        transport: upstream.clone(),
        clock: Arc::new(WallClock),
        store: None,
    };
    let config =
        RouterConfig { quota: QuotaPolicy { per_minute: None, per_day: Some(per_day) }, ..RouterConfig::default() };
    let mut redis_config = RedisConfig::new(Secret::new(redis.url()));
    redis_config.op_timeout = timeout;
    let shared = RedisState::new(redis_config).expect("redis url");
    let router = Arc::new(Router::new(ports, config).expect("router").with_shared(Arc::new(shared)));
    router.attach_shared();
    router
}

fn request() -> ChatRequest {
    ChatRequest::from_slice(
        format!(r#"{{"model":"{MODEL}","messages":[{{"role":"user","content":"hi"}}]}}"#).as_bytes(),
    )
    .expect("request")
}

async fn connected(routers: &[&Arc<Router>]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    for r in routers {
        while !r.shared_status().is_some_and(|s| s.connected) {
            assert!(Instant::now() < deadline, "timed out waiting for Redis");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// `n` requests at once, alternately on each router: how many were answered.
async fn burst(routers: &[&Arc<Router>], n: u64) -> usize {
    let mut tasks = Vec::new();
    for seed in 0..n {
        let r = Arc::clone(routers[usize::try_from(seed).expect("small") % routers.len()]);
        tasks.push(tokio::spawn(async move { r.route(&request(), seed).await.is_ok() }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += usize::from(t.await.expect("task"));
    }
    ok
}

fn day_key() -> String {
    format!("fmr:quota:openrouter:d:{}", WallClock.now().utc_day())
}

/// Waits (bounded) until the shared day count equals the upstream calls; returns both.
async fn settled(redis: &RedisServer, upstream: &Upstream) -> (usize, usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let counted = redis.get(&day_key()).and_then(|v| v.parse().ok()).unwrap_or(0);
        let calls = upstream.calls.load(Ordering::SeqCst);
        if counted == calls || Instant::now() >= deadline {
            return (counted, calls);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Traffic on both routers before, during and after a `DEBUG SLEEP` of `stall` (seconds):
/// each request is counted once, and the day stays open.
async fn a_stall_counts_each_request_once(stall: &str) {
    let redis = Arc::new(RedisServer::start_with(&["--enable-debug-command", "local"]));
    let upstream = Arc::new(Upstream::default());
    let a = instance(&redis, &upstream, 1000, Duration::from_millis(50));
    let b = instance(&redis, &upstream, 1000, Duration::from_millis(50));
    connected(&[&a, &b]).await;
    assert_eq!(burst(&[&a, &b], 200).await, 200);
    assert_eq!(settled(&redis, &upstream).await, (200, 200));

    let seconds: f64 = stall.parse().expect("seconds");
    let stop = Instant::now() + Duration::from_secs_f64(seconds + 0.8);
    let mut workers = Vec::new();
    for w in 0..4u64 {
        let r = if w % 2 == 0 { a.clone() } else { b.clone() };
        workers.push(tokio::spawn(async move {
            let (mut ok, mut seed) = (0usize, w * 10_000);
            while Instant::now() < stop {
                ok += usize::from(r.route(&request(), seed).await.is_ok());
                seed += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            ok
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = redis.clone();
    let stall = stall.to_owned();
    let stalled = tokio::task::spawn_blocking(move || r.command(&["DEBUG", "SLEEP", &stall]));
    let mut during = 0;
    for w in workers {
        during += w.await.expect("worker");
    }
    assert_eq!(stalled.await.expect("join"), "+OK");
    let local: u64 = [&a, &b].iter().filter_map(|r| r.shared_status()).map(|s| s.local_reservations).sum();
    assert!(local > 0, "some reservations were decided locally");
    let (counted, calls) = settled(&redis, &upstream).await;
    assert_eq!(calls, 200 + during);
    assert_eq!(counted, calls, "each request counted once");
    assert_eq!(burst(&[&a, &b], 20).await, 20, "the day is not spent");
    assert_eq!(settled(&redis, &upstream).await, (calls + 20, calls + 20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_stall_counts_each_request_once() {
    a_stall_counts_each_request_once("1.5").await;
}

/// Longer than the connection's own 2 s answer timeout: the connection is dropped and made
/// again while the scripts sent on it still run once Redis wakes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_longer_stall_counts_each_request_once() {
    a_stall_counts_each_request_once("3").await;
}

async fn the_day_holds_across_a_loss(lose: impl FnOnce(&mut RedisServer)) {
    let mut redis = RedisServer::start();
    let upstream = Arc::new(Upstream::default());
    let a = instance(&redis, &upstream, 40, Duration::from_secs(5));
    let b = instance(&redis, &upstream, 40, Duration::from_secs(5));
    connected(&[&a, &b]).await;
    assert_eq!(burst(&[&a, &b], 20).await, 20);
    assert_eq!(settled(&redis, &upstream).await, (20, 20));
    lose(&mut redis);
    connected(&[&a, &b]).await;
    // The heartbeats bring the day's count back without any request.
    assert_eq!(settled(&redis, &upstream).await, (20, 20));
    assert_eq!(burst(&[&a, &b], 60).await, 20);
    assert_eq!(settled(&redis, &upstream).await, (40, 40));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flushall_does_not_reopen_the_day() {
    the_day_holds_across_a_loss(|redis| assert_eq!(redis.command(&["FLUSHALL"]), "+OK")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_restart_does_not_reopen_the_day() {
    the_day_holds_across_a_loss(|redis| {
        redis.kill();
        std::thread::sleep(Duration::from_millis(600));
        redis.restart();
    })
    .await;
}
