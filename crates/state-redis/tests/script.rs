//! The reservation script's contract, message by message, on a real `redis-server`: a
//! batch counts once however often it arrives, an attempt a batch already brought counts
//! nothing more, and a day counter lost with `FLUSHALL` is rebuilt from the instances'
//! own counts and the count the caller last saw.

#[path = "support/redis_server.rs"]
mod redis_server;

use redis_server::RedisServer;
use router_core::shared::{Batch, ReserveOutcome, ReserveRequest};
use router_core::{QuotaPolicy, Secret, SharedState, Timestamp};
use state_redis::{RedisConfig, RedisState};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now() -> Timestamp {
    let ms = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_millis();
    Timestamp::from_millis(u64::try_from(ms).expect("millis"))
}

fn state(redis: &RedisServer) -> RedisState {
    let mut config = RedisConfig::new(Secret::new(redis.url()));
    config.op_timeout = Duration::from_secs(5);
    RedisState::new(config).expect("redis url")
}

/// A message at `now` with the day limit 100: `count` or merge only, with `batches`, the
/// acknowledged total `known` and the instance's own acknowledged count `own`.
fn message(id: u64, count: bool, batches: Vec<Batch>, known: u32, own: u32) -> ReserveRequest {
    ReserveRequest {
        scope: "openrouter".into(),
        limits: QuotaPolicy { per_minute: None, per_day: Some(100) },
        now: now(),
        id,
        count,
        batches,
        known_minute: 0,
        known_day: known,
        own_day: own,
        probe: None,
    }
}

/// The day's count after `request`.
async fn check(state: &RedisState, request: ReserveRequest) -> u32 {
    match state.reserve(&request).await {
        Ok(ReserveOutcome::Reserved { day, .. }) => day,
        other => panic!("not reserved: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_and_attempts_count_once_and_a_lost_day_is_rebuilt() {
    let redis = RedisServer::start();
    let (a, b) = (state(&redis), state(&redis));
    let batch = |id, day| Batch { id, minute: 0, day };

    assert_eq!(check(&a, message(0, true, vec![], 0, 0)).await, 1);
    // A batch of two, then the same batch again (its answer was lost): counted once.
    assert_eq!(check(&a, message(1, true, vec![batch(7, 2)], 1, 1)).await, 4);
    assert_eq!(check(&a, message(2, true, vec![batch(7, 2)], 4, 1)).await, 5);
    // Attempt 8 gave up waiting and was sent alone: the heartbeat brings it as a batch
    // first, then its own late script runs and counts nothing more.
    assert_eq!(check(&a, message(3, false, vec![batch(8, 1)], 5, 4)).await, 6);
    assert_eq!(check(&a, message(8, true, vec![], 5, 4)).await, 6);
    // The other instance's ids are its own: its attempt 0 counts.
    assert_eq!(check(&b, message(0, true, vec![], 0, 0)).await, 7);

    // Redis loses everything. A (own count 6, last saw 6) comes first: the day is at least
    // what it knew; B's next message restores B's own count on top of A's.
    assert_eq!(redis.command(&["FLUSHALL"]), "+OK");
    assert_eq!(check(&a, message(9, false, vec![], 6, 6)).await, 6);
    assert_eq!(check(&b, message(1, false, vec![], 1, 1)).await, 7);
    assert_eq!(check(&a, message(10, true, vec![], 7, 6)).await, 8);
    let day = format!("fmr:quota:openrouter:d:{}", now().utc_day());
    assert_eq!(redis.get(&day).as_deref(), Some("8"));
    // Each instance's own count, by instance: A 7, B 1.
    let own = format!("fmr:quota:openrouter:i:{}", now().utc_day());
    assert_eq!(redis.command(&["HLEN", &own]), ":2");
    assert_eq!(redis.command(&["HGET", &own, a.instance_id()]), "7");
    assert_eq!(redis.command(&["HGET", &own, b.instance_id()]), "1");
    // A third instance's batch arrives with a refusal (the day limit is 1 here): counted
    // all the same (it was sent), and its keys expire too.
    let c = state(&redis);
    let mut spent = message(0, true, vec![batch(0, 1)], 0, 0);
    spent.limits.per_day = Some(1);
    assert!(matches!(c.reserve(&spent).await, Ok(ReserveOutcome::Blocked(_, Some((_, 9))))));
    // Every key expires (after the day and its slack), whatever the answer was.
    let counted = |s: &RedisState| format!("fmr:counted:{}:{}", s.instance_id(), now().utc_day());
    for key in [day, own, counted(&a), counted(&c)] {
        let ttl: i64 = redis.command(&["PTTL", &key]).trim_start_matches(':').parse().expect("a TTL");
        assert!(ttl > 0 && ttl <= 86_460_000, "{key}: {ttl}");
    }
}
