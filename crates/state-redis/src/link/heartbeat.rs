//! The heartbeat: says this instance is alive, counts the live ones, tells whether Redis
//! answers (backing off while it does not), brings Redis this instance's backlog and ends
//! its settling once every live instance has merged.

use super::inner::{Inner, describe, is_auth_error, now_ms};
use crate::keys::millis;
use crate::{HEARTBEAT_EVERY, INSTANCE_TTL, RECONNECT_MAX, RECONNECT_MIN};
use redis::aio::ConnectionManager;
use std::sync::atomic::Ordering;
use std::sync::{PoisonError, Weak};
use std::time::Duration;

/// Every [`HEARTBEAT_EVERY`]: says this instance is alive, counts the live ones, and
/// tells whether Redis answers; while it does not, retries with a growing back-off.
pub(super) async fn heartbeat(weak: Weak<Inner>) {
    let mut backoff = RECONNECT_MIN;
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let Some(mut conn) = inner.conn() else { return };
        let now = now_ms();
        let pipe = beat(&inner, now);
        let bound = inner.config.op_timeout.max(Duration::from_secs(1));
        type Beat = (Vec<String>, Vec<(String, f64)>);
        let wait = match tokio::time::timeout(bound, pipe.query_async::<Beat>(&mut conn)).await {
            Ok(Ok((live, merged))) => {
                inner.instances.store(u32::try_from(live.len()).unwrap_or(u32::MAX).max(1), Ordering::Relaxed);
                inner.set_refused(None);
                inner.set_down(None);
                backoff = RECONNECT_MIN;
                sync(&inner, &mut conn, bound).await;
                settle(&inner, &live, &merged, now_ms());
                HEARTBEAT_EVERY
            }
            Ok(Err(e)) if is_auth_error(&e) => {
                inner.set_refused(Some(describe(&e)));
                let wait = backoff;
                backoff = backoff.saturating_mul(2).min(RECONNECT_MAX);
                wait
            }
            failed => {
                let reason = match failed {
                    Ok(Err(e)) => describe(&e),
                    _ => format!("no answer within {bound:?}"),
                };
                inner.set_down(Some(reason));
                let wait = backoff;
                backoff = backoff.saturating_mul(2).min(RECONNECT_MAX);
                wait
            }
        };
        drop(inner);
        tokio::time::sleep(wait).await;
    }
}

/// One beat: this instance's liveness and last merge, the stale entries dropped, then
/// the live instances and when each last merged.
fn beat(inner: &Inner, now: u64) -> redis::Pipeline {
    let (key, merged) = (inner.keys.instances(), inner.keys.merged());
    let ttl = millis(INSTANCE_TTL);
    let mut pipe = redis::pipe();
    pipe.cmd("ZADD")
        .arg(&key)
        .arg(now)
        .arg(&inner.id)
        .ignore()
        .cmd("ZADD")
        .arg(&merged)
        .arg(inner.merged_at.load(Ordering::Acquire))
        .arg(&inner.id)
        .ignore()
        .cmd("ZREMRANGEBYSCORE")
        .arg(&key)
        .arg("-inf")
        .arg(now.saturating_sub(ttl))
        .ignore()
        .cmd("PEXPIRE")
        .arg(&key)
        .arg(ttl.saturating_mul(2))
        .ignore()
        // Instances gone for a day are forgotten (the live set says who counts).
        .cmd("ZREMRANGEBYSCORE")
        .arg(&merged)
        .arg("-inf")
        .arg(now.saturating_sub(86_400_000))
        .ignore()
        .cmd("PEXPIRE")
        .arg(&merged)
        .arg(ttl.saturating_mul(2))
        .ignore()
        .cmd("ZRANGE")
        .arg(&key)
        .arg(0)
        .arg(-1)
        .cmd("ZRANGE")
        .arg(&merged)
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES");
    pipe
}

/// Brings Redis this instance's backlog and own count (the router's sync message), so that
/// a backlog merges as soon as Redis answers again and a lost count is rebuilt without
/// waiting for traffic.
async fn sync(inner: &Inner, conn: &mut ConnectionManager, bound: Duration) {
    let sink = inner.sink.lock().unwrap_or_else(PoisonError::into_inner).as_ref().and_then(Weak::upgrade);
    let Some(sink) = sink else { return };
    let Some(request) = sink.sync_request() else { return };
    let outcome = inner.run(conn, &request, bound).await;
    sink.synced(&request, &outcome);
}

/// Notes when this instance has nothing uncounted left (`merged_at`, told to the others
/// with the next heartbeat), and ends this instance's settling once every other live
/// instance has said so recently and since settling began (one that cannot reach Redis
/// says nothing, so it holds the others back until it merges or leaves the live set
/// after [`INSTANCE_TTL`]).
fn settle(inner: &Inner, live: &[String], merged: &[(String, f64)], now: u64) {
    let sink = inner.sink.lock().unwrap_or_else(PoisonError::into_inner).as_ref().and_then(Weak::upgrade);
    if sink.is_none_or(|s| s.merged()) {
        inner.merged_at.store(now, Ordering::Release);
    }
    let from = inner.settle_from.load(Ordering::Acquire);
    if from == 0 {
        return;
    }
    // Said within the last few heartbeats: a merge older than that says nothing of now.
    let recent = now.saturating_sub(millis(HEARTBEAT_EVERY).saturating_mul(4)).max(from);
    let since = |id: &String| merged.iter().find(|(m, _)| m == id).map_or(0.0, |(_, at)| *at);
    #[expect(clippy::cast_precision_loss, reason = "milliseconds since 1970 are exact in an f64")]
    let all = live.iter().all(|id| *id == inner.id || since(id) >= recent as f64);
    if all {
        inner.settle_from.store(0, Ordering::Release);
    }
}
