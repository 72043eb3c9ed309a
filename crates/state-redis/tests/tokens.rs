//! A declared provider's budgets shared by two instances (two adapters, each with its own
//! connections) on one real `redis-server`: a budget is spent once across them, all of an
//! attempt's budgets or none are charged, a charge is corrected from the answer's usage,
//! and a request quota counts one per attempt beside a token budget.

#[path = "support/redis_server.rs"]
mod redis_server;

use redis_server::RedisServer;
use router_core::shared::{BudgetUnit, SharedBudget, TokenCorrection, TokenOutcome, TokenReserve};
use router_core::{Secret, SharedState, Timestamp};
use state_redis::{RedisConfig, RedisState};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn now() -> Timestamp {
    let ms = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_millis();
    Timestamp::from_millis(u64::try_from(ms).expect("millis"))
}

fn adapter(redis: &RedisServer) -> Arc<RedisState> {
    let mut config = RedisConfig::new(Secret::new(redis.url()));
    // Every reservation waits for Redis: the test is about what Redis decides.
    config.op_timeout = Duration::from_secs(5);
    Arc::new(RedisState::new(config).expect("redis url"))
}

fn budget(name: &str, per_minute: u64, at: Timestamp) -> SharedBudget {
    let day = at.utc_day();
    SharedBudget {
        name: name.into(),
        unit: BudgetUnit::Tokens,
        per_minute: Some(per_minute),
        per_day: None,
        day,
        day_ends: at.next_utc_midnight(),
    }
}

/// `n` reservations of `request` at once, alternating between the two instances.
async fn race(a: &Arc<RedisState>, b: &Arc<RedisState>, request: &TokenReserve, n: usize) -> Vec<TokenOutcome> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let store = Arc::clone(if i % 2 == 0 { a } else { b });
            let request = request.clone();
            tokio::spawn(async move { store.reserve_tokens(&request).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.expect("task").expect("Redis answers"));
    }
    outcomes
}

fn minute_key(name: &str, at: Timestamp) -> String {
    format!("fmr:tokens:{name}:m:{}", at.minute())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_spend_one_token_budget_once() {
    let redis = RedisServer::start();
    let (a, b) = (adapter(&redis), adapter(&redis));
    // One instant for every reservation: all fall in one minute, whatever the wall clock does.
    let at = now();
    let request = TokenReserve { budgets: vec![budget("groq", 10_000, at)], tokens: 1_000, now: at };
    let mut reserved = 0;
    for outcome in race(&a, &b, &request, 40).await {
        match outcome {
            TokenOutcome::Reserved(counts) => {
                assert!(counts[0].0 <= 10_000, "{counts:?}");
                reserved += 1;
            }
            TokenOutcome::Full { budget, day, left } => assert_eq!((budget, day, left), (0, false, 0)),
        }
    }
    assert_eq!(reserved, 10, "10,000 tokens a minute take ten requests of 1,000, across both instances");
    assert_eq!(redis.get(&minute_key("groq", at)).as_deref(), Some("10000"));
    // The minute's counter expires a little after its minute.
    let reply = redis.command(&["PTTL", &minute_key("groq", at)]);
    let ttl: u64 = reply.trim_start_matches(':').trim().parse().expect("a TTL");
    assert!((1..=120_000).contains(&ttl), "{ttl}");
}

#[tokio::test]
async fn every_budget_of_an_attempt_or_none_is_charged_and_usage_corrects_them() {
    let redis = RedisServer::start();
    let (a, b) = (adapter(&redis), adapter(&redis));
    let at = now();
    // The provider's budget and the model's own.
    let budgets = vec![budget("groq", 10_000, at), budget("groq/m", 3_000, at)];
    let ask = |tokens| TokenReserve { budgets: budgets.clone(), tokens, now: at };
    assert_eq!(a.reserve_tokens(&ask(2_000)).await, Ok(TokenOutcome::Reserved(vec![(2_000, 2_000), (2_000, 2_000)])));
    // The model's budget cannot take 2,000 more: neither budget is charged.
    assert_eq!(b.reserve_tokens(&ask(2_000)).await, Ok(TokenOutcome::Full { budget: 1, day: false, left: 1_000 }));
    assert_eq!(redis.get(&minute_key("groq", at)).as_deref(), Some("2000"));
    // The answer said 150 tokens were spent: both minutes are given the rest back.
    let correction =
        TokenCorrection { budgets: budgets.clone(), at, minute: true, day: false, charged: 2_000, used: 150 };
    a.correct_tokens(correction);
    let deadline = Instant::now() + Duration::from_secs(10);
    while redis.get(&minute_key("groq/m", at)).as_deref() != Some("150") {
        assert!(Instant::now() < deadline, "the correction never arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(redis.get(&minute_key("groq", at)).as_deref(), Some("150"));
    let day_key = format!("fmr:tokens:groq:d:{}", at.utc_day());
    assert_eq!(redis.get(&day_key).as_deref(), Some("2000"), "the day was not asked to be corrected");
    // So the other instance's request fits now.
    assert_eq!(b.reserve_tokens(&ask(2_000)).await, Ok(TokenOutcome::Reserved(vec![(2_150, 4_000), (2_150, 4_000)])));
    // A correction never takes a counter below zero.
    b.correct_tokens(TokenCorrection { budgets, at, minute: true, day: true, charged: 1_000_000, used: 0 });
    while redis.get(&minute_key("groq", at)).as_deref() != Some("0") {
        assert!(Instant::now() < deadline, "the correction never arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(redis.get(&day_key).as_deref(), Some("0"));
}

mod routers {
    //! Two routers, each with its own adapter, in front of one free tier whose provider
    //! counts 8,000 tokens a minute.

    use super::*;
    use bytes::Bytes;
    use router_core::quota::{ProviderPolicy, TokenPolicy};
    use router_core::{
        Billing, Body, CatalogSnapshot, CatalogSource, ChatRequest, ChatTransport, Clock, FixedCatalog, ModelId,
        ModelInfo, Ports, Provenance, RouteError, Router, RouterConfig, TransportError, UpstreamResponse,
    };
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Debug)]
    struct WallClock;

    #[async_trait::async_trait]
    impl Clock for WallClock {
        fn now(&self) -> Timestamp {
            now()
        }
    }

    /// Answers at once, without `usage` (so each charge stands); counts the calls.
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

    fn instance(redis: &RedisServer, upstream: &Arc<Upstream>) -> Arc<Router> {
        let tokens = TokenPolicy { per_minute: Some(8_000), per_day: None };
        instance_with(redis, upstream, ProviderPolicy { tokens, ..ProviderPolicy::default() })
    }

    /// An instance whose provider `groq` keeps to `policy`.
    fn instance_with(redis: &RedisServer, upstream: &Arc<Upstream>, policy: ProviderPolicy) -> Arc<Router> {
        let mut m = ModelInfo::new("groq/m");
        m.context_length = Some(131_072);
        m.input_modalities = vec!["text".into()];
        m.output_modalities = vec!["text".into()];
        m.provider = Some(Provenance { provider: "groq".into(), upstream_id: "m".into(), billing: Billing::FreeTier });
        let catalog = CatalogSnapshot::new(vec![m], CatalogSource::Memory, now());
        let ports = Ports {
            catalog: Arc::new(FixedCatalog(Arc::new(catalog))),
            transport: upstream.clone(),
            clock: Arc::new(WallClock),
            store: None,
        };
        let mut config = RouterConfig::default();
        config.providers.insert("groq".into(), policy);
        let router = Arc::new(Router::new(ports, config).expect("router").with_shared(adapter(redis)));
        router.attach_shared();
        router
    }

    fn request() -> ChatRequest {
        let body = r#"{"model":"groq/m","max_tokens":3000,"messages":[{"role":"user","content":"hi"}]}"#;
        ChatRequest::from_slice(body.as_bytes()).expect("request")
    }

    /// Two instances behind one budget: the attempt loop reserves each attempt's tokens
    /// in Redis (`Router::share_budget`, in the admission step).
    #[tokio::test]
    async fn two_routers_spend_one_token_budget_once() {
        let redis = RedisServer::start();
        let upstream = Arc::new(Upstream::default());
        let (a, b) = (instance(&redis, &upstream), instance(&redis, &upstream));
        // Within one minute (a request takes milliseconds): wait out a minute about to end.
        while now().next_minute().saturating_since(now()) < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // About 3,005 tokens each (the prompt and the 3,000 asked for, charged up front).
        assert!(a.route_metered(&request(), 0).await.is_ok());
        assert!(b.route_metered(&request(), 1).await.is_ok());
        // A's own count says 3,005 of 8,000: alone it would send a third. Redis says 6,010.
        let refused = a.route_metered(&request(), 2).await.expect_err("the shared minute is spent");
        assert!(matches!(refused.error, RouteError::Quota { .. }), "{:?}", refused.error);
        assert!(refused.error.to_string().contains("shared by every instance"), "{}", refused.error);
        assert_eq!(upstream.calls.load(Ordering::SeqCst), 2, "nothing sent past the shared budget");
        let counted =
            || -> u64 { redis.get(&minute_key("groq", now())).and_then(|v| v.parse().ok()).expect("counted") };
        assert!((6_000..6_100).contains(&counted()), "{}", counted());
        // B's count is the store's now: it asks only for what the minute leaves, and is sent.
        let fourth = b.route_metered(&request(), 3).await.expect("what the minute leaves");
        assert!(fourth.report.max_tokens.is_some_and(|n| n < 2_000), "{:?}", fourth.report.max_tokens);
        assert_eq!(counted(), 8_000);
        // The minute is spent for both: nothing more is sent.
        assert!(a.route_metered(&request(), 4).await.is_err());
        assert!(b.route_metered(&request(), 5).await.is_err());
        assert_eq!((upstream.calls.load(Ordering::SeqCst), counted()), (3, 8_000));
    }

    /// Two instances behind a free tier that allows 3 requests a minute (no token
    /// budget): together they send 3, not 3 each (before, a declared provider's request
    /// quota was counted by each instance alone).
    #[tokio::test]
    async fn two_routers_keep_to_one_request_quota() {
        let redis = RedisServer::start();
        let upstream = Arc::new(Upstream::default());
        let quota = router_core::QuotaPolicy { per_minute: Some(3), per_day: None };
        let policy = || ProviderPolicy { quota, ..ProviderPolicy::default() };
        let (a, b) = (instance_with(&redis, &upstream, policy()), instance_with(&redis, &upstream, policy()));
        while now().next_minute().saturating_since(now()) < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(a.route(&request(), 0).await.is_ok());
        assert!(b.route(&request(), 1).await.is_ok());
        assert!(b.route(&request(), 2).await.is_ok());
        // A's own count says 1 of 3; Redis says 3.
        let refused = a.route(&request(), 3).await.expect_err("the shared minute is spent");
        assert!(matches!(refused.error, RouteError::Quota { .. }), "{:?}", refused.error);
        assert!(refused.error.to_string().contains("request quota shared by every instance"), "{}", refused.error);
        assert_eq!(upstream.calls.load(Ordering::SeqCst), 3, "nothing sent past the shared quota");
        let key = format!("fmr:requests:groq:m:{}", now().minute());
        assert_eq!(redis.get(&key).as_deref(), Some("3"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_spend_one_request_quota_once_beside_a_token_budget() {
    let redis = RedisServer::start();
    let (a, b) = (adapter(&redis), adapter(&redis));
    let at = now();
    // Groq's 30 requests a minute (here 6) and a token budget, each attempt 100 tokens.
    let requests = SharedBudget { unit: BudgetUnit::Requests, ..budget("groq", 6, at) };
    let request = TokenReserve { budgets: vec![requests, budget("groq", 100_000, at)], tokens: 100, now: at };
    let mut reserved = 0;
    for outcome in race(&a, &b, &request, 20).await {
        match outcome {
            TokenOutcome::Reserved(counts) => {
                assert!(counts[0].0 <= 6 && counts[1].0 == counts[0].0 * 100, "{counts:?}");
                reserved += 1;
            }
            TokenOutcome::Full { budget, day, left } => assert_eq!((budget, day, left), (0, false, 0)),
        }
    }
    assert_eq!(reserved, 6, "six requests a minute across both instances");
    let key = format!("fmr:requests:groq:m:{}", at.minute());
    assert_eq!(redis.get(&key).as_deref(), Some("6"));
    assert_eq!(redis.get(&minute_key("groq", at)).as_deref(), Some("600"), "tokens only for what was reserved");
}
