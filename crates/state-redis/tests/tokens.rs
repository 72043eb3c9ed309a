//! Token budgets shared by two instances (two adapters, each with its own connections) on
//! one real `redis-server`: a budget is spent once across them, all of an attempt's
//! budgets or none are charged, and a charge is corrected from the answer's usage.

#[path = "support/redis_server.rs"]
mod redis_server;

use redis_server::RedisServer;
use router_core::shared::{SharedBudget, TokenCorrection, TokenOutcome, TokenReserve};
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
        per_minute: Some(per_minute),
        per_day: None,
        day,
        day_ends: at.next_utc_midnight(),
    }
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
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = if i % 2 == 0 { Arc::clone(&a) } else { Arc::clone(&b) };
        let request = request.clone();
        tasks.push(tokio::spawn(async move { store.reserve_tokens(&request).await }));
    }
    let mut reserved = 0;
    for t in tasks {
        match t.await.expect("task").expect("Redis answers") {
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
