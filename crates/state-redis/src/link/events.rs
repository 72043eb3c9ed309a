//! Events between instances: the subscriber (what the others publish, and a reload of
//! what was missed after every subscription) and the publisher (this instance's events,
//! kept until they are sent).

use super::inner::{Envelope, Inner, now_ms};
use crate::keys::millis;
use crate::script::StoredBlock;
use crate::{RECONNECT_MAX, RECONNECT_MIN};
use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use router_core::Timestamp;
use router_core::shared::{DEFAULT_QUOTA_SCOPE, SharedEvent};
use std::collections::BTreeMap;
use std::sync::{PoisonError, Weak};
use std::time::Duration;
use tokio::sync::mpsc;

/// Listens on the channel; after every (re)subscription reloads what it may have missed.
pub(super) async fn subscriber(weak: Weak<Inner>) {
    let mut backoff = RECONNECT_MIN;
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let channel = inner.keys.channel();
        let subscribed = async {
            let mut pubsub = inner.client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            redis::RedisResult::Ok(pubsub)
        };
        let pubsub = tokio::time::timeout(Duration::from_secs(2), subscribed).await;
        let Ok(Ok(pubsub)) = pubsub else {
            drop(inner);
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2).min(RECONNECT_MAX);
            continue;
        };
        backoff = RECONNECT_MIN;
        if let Some(mut conn) = inner.conn() {
            let _ = tokio::time::timeout(Duration::from_secs(5), inner.reload(&mut conn)).await;
        }
        let id = inner.id.clone();
        drop(inner);
        let mut messages = pubsub.into_on_message();
        while let Some(msg) = messages.next().await {
            let Some(inner) = weak.upgrade() else { return };
            let Ok(envelope) = serde_json::from_slice::<Envelope>(msg.get_payload_bytes()) else { continue };
            if envelope.from != id {
                inner.deliver(&envelope.event);
            }
        }
        // The connection ended (Redis went away): try again.
        tokio::time::sleep(backoff).await;
    }
}

/// Sends this instance's events: each is kept in Redis until it expires and published.
/// What cannot be sent waits (the latest per key) until Redis answers again.
pub(super) async fn publisher(weak: Weak<Inner>, mut rx: mpsc::UnboundedReceiver<SharedEvent>) {
    let mut pending: BTreeMap<String, SharedEvent> = BTreeMap::new();
    let mut serial = 0u64;
    loop {
        {
            let Some(inner) = weak.upgrade() else { return };
            let notified = inner.back.notified();
            tokio::select! {
                e = rx.recv() => match e {
                    Some(e) => {
                        // Events that keep no key still need an order-preserving slot.
                        let key = inner.keys.of_event(&e, DEFAULT_QUOTA_SCOPE).unwrap_or_else(|| {
                            serial += 1;
                            format!("~{serial:020}")
                        });
                        pending.insert(key, e);
                    }
                    None => return,
                },
                // Redis is back, or time to retry what is pending.
                () = notified => {
                    let sink = inner.sink.lock().unwrap_or_else(PoisonError::into_inner).as_ref().and_then(Weak::upgrade);
                    for e in sink.map(|s| s.current_events()).unwrap_or_default() {
                        if let Some(key) = inner.keys.of_event(&e, DEFAULT_QUOTA_SCOPE) {
                            pending.entry(key).or_insert(e);
                        }
                    }
                }
                () = tokio::time::sleep(RECONNECT_MAX) => {}
            }
        }
        let Some(inner) = weak.upgrade() else { return };
        if inner.is_down().is_some() || pending.is_empty() {
            continue;
        }
        let Some(mut conn) = inner.conn() else { continue };
        let now = Timestamp::from_millis(now_ms());
        let mut sent = Vec::new();
        for (key, event) in &pending {
            if send(&inner, &mut conn, key, event, now).await.is_err() {
                break;
            }
            sent.push(key.clone());
        }
        for k in sent {
            pending.remove(&k);
        }
    }
}

async fn send(
    inner: &Inner,
    conn: &mut ConnectionManager,
    key: &str,
    event: &SharedEvent,
    now: Timestamp,
) -> redis::RedisResult<()> {
    let envelope = Envelope { from: inner.id.clone(), event: event.clone() };
    let message = serde_json::to_string(&envelope).unwrap_or_default();
    let mut pipe = redis::pipe();
    pipe.atomic();
    match event {
        SharedEvent::Recovered { model } => {
            pipe.cmd("DEL").arg(inner.keys.probe(model)).arg(inner.keys.circuit_open(model)).ignore();
        }
        _ => {
            let ttl = match event.until() {
                Some(until) => millis(until.saturating_since(now)),
                None => millis(crate::UNAVAILABLE_TTL),
            };
            let value = match event {
                SharedEvent::AccountBlocked { until, reason } => {
                    serde_json::to_string(&StoredBlock { until: *until, reason: reason.clone() }).unwrap_or_default()
                }
                _ => serde_json::to_string(event).unwrap_or_default(),
            };
            if !key.starts_with('~') && event.until().is_none_or(|u| u > now) {
                pipe.cmd("SET").arg(key).arg(value).arg("PX").arg(ttl).ignore();
            }
            if let SharedEvent::CircuitOpen { model, .. } = event {
                // A failed probe: its claim lasts until the breaker half-opens again, so
                // that no instance that has not heard of the re-opening yet probes now.
                pipe.cmd("PEXPIRE").arg(inner.keys.probe(model)).arg(ttl).ignore();
            }
        }
    }
    pipe.cmd("PUBLISH").arg(inner.keys.channel()).arg(message).ignore();
    tokio::time::timeout(Duration::from_secs(1), pipe.query_async::<()>(conn))
        .await
        .map_err(|_| redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut)))?
}
